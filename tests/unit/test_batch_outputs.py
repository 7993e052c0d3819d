"""The batch's file-level guarantees, with a cheap stand-in for the network (an inversion):
where outputs go, that they are written with the source's metadata and csrnet's mark, that an
existing output is skipped (same settings or not csrnet's) or reported as a conflict (other
settings), that one bad file fails alone with a one-line reason, and the report's counts."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from csrnet.batch import Job, Report, Result, Retouch, is_marked, output_path, plan_jobs, process, retouch_file, run_batch
from csrnet.errors import OutputExistsError, PhotoError
from csrnet.io.marks import read_mark


def _invert(pixels):
    if isinstance(pixels, Image.Image):
        return Image.fromarray(255 - np.asarray(pixels), "RGB")
    peak = np.iinfo(pixels.dtype).max
    return peak - pixels


INVERT = Retouch(_invert, {"look": "invert"})
OTHER = Retouch(_invert, {"look": "invert", "strength": 2})


def _half(pixels):
    arr = np.asarray(pixels)[::2, ::2]
    return Image.fromarray(np.ascontiguousarray(arr), "RGB") if isinstance(pixels, Image.Image) else np.ascontiguousarray(arr)


def _photo(path: Path, colour=(200, 100, 50), size=(32, 24), mode="RGB", **save) -> Path:
    Image.new(mode, size, colour).save(path, **save)
    return path


def _camera_exif() -> bytes:
    e = Image.Exif()
    e[271], e[272] = "Nikon", "D850"
    return e.tobytes()


# ---------------------------------------------------------------- output names and plans
def test_output_beside_the_source_with_suffix(tmp_path):
    assert output_path(tmp_path / "a" / "x.JPG", tmp_path, None, suffix="_c", fmt=None) == tmp_path / "a" / "x_c.JPG"


def test_output_folder_mirrors_the_sub_path_below_the_root(tmp_path):
    root, out = tmp_path / "in", tmp_path / "out"
    assert output_path(root / "2024" / "x.png", root, out, suffix="", fmt=None) == out / "2024" / "x.png"
    assert output_path(root / "x.png", root, out, suffix="", fmt="jpg") == out / "x.jpg"
    assert output_path(tmp_path / "elsewhere" / "x.png", root, out, suffix="_c", fmt=None) == out / "x_c.png"


def test_plan_pairs_inputs_with_outputs(tmp_path):
    a, b = _photo(tmp_path / "a.png"), _photo(tmp_path / "b.jpg")
    jobs, errors = plan_jobs([(a, tmp_path), (b, tmp_path)], tmp_path / "out", suffix="", fmt=None)
    assert errors == []
    assert jobs == [Job(a, tmp_path / "out" / "a.png"), Job(b, tmp_path / "out" / "b.jpg")]


def test_plan_refuses_an_output_that_would_replace_an_input(tmp_path):
    a = _photo(tmp_path / "a.png")
    jobs, errors = plan_jobs([(a, tmp_path)], None, suffix="", fmt=None)
    assert jobs == [] and len(errors) == 1 and "would replace an input" in errors[0] and str(a) in errors[0]


def test_plan_refuses_two_inputs_with_one_output(tmp_path):
    a, b = _photo(tmp_path / "x.png"), _photo(tmp_path / "x.jpg")
    jobs, errors = plan_jobs([(a, tmp_path), (b, tmp_path)], tmp_path / "out", suffix="", fmt="tif")
    assert jobs == [Job(a, tmp_path / "out" / "x.tif")]
    assert len(errors) == 1 and "also the output of" in errors[0] and str(b) in errors[0] and str(a) in errors[0]


def test_plan_takes_an_output_folder_inside_a_link_loop(tmp_path):
    """Such a folder cannot be created; the plan still pairs the file (its write fails alone, later)."""
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    a = _photo(tmp_path / "a.png")
    jobs, errors = plan_jobs([(a, tmp_path)], tmp_path / "loop" / "out", suffix="", fmt=None)
    assert errors == [] and jobs == [Job(a, tmp_path / "loop" / "out" / "a.png")]


def test_plan_refuses_an_output_that_is_an_input_through_a_link(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    a = _photo(real / "a.png")
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    jobs, errors = plan_jobs([(a, real)], tmp_path / "link", suffix="", fmt=None)
    assert jobs == [] and "would replace an input" in errors[0]


# ---------------------------------------------------------------- marked files
def test_only_csrnets_outputs_are_marked(tmp_path):
    src = _photo(tmp_path / "a.jpg")
    assert not is_marked(src)
    dst = retouch_file(src, tmp_path / "b.jpg", INVERT)
    assert is_marked(dst)
    (tmp_path / "b.nef").write_bytes(dst.read_bytes())  # a RAW extension: csrnet never writes one
    assert not is_marked(tmp_path / "b.nef")
    (tmp_path / "b.xyz").write_bytes(dst.read_bytes())  # an unknown extension: the content decides
    assert is_marked(tmp_path / "b.xyz")


# ---------------------------------------------------------------- writing one file
def test_retouch_file_writes_the_retouched_pixels_with_metadata_and_mark(tmp_path):
    src = _photo(tmp_path / "a.png", exif=_camera_exif(), dpi=(300, 300))
    dst = retouch_file(src, tmp_path / "deep" / "er" / "a.png", INVERT)
    assert dst == tmp_path / "deep" / "er" / "a.png"
    with Image.open(dst) as im:
        assert np.array_equal(np.asarray(im.convert("RGB")), 255 - np.asarray(Image.open(src).convert("RGB")))
        exif = im.getexif()
        assert exif[271] == "Nikon" and exif[272] == "D850"
        assert round(im.info["dpi"][0]) == 300
    assert read_mark(dst) == INVERT.mark


def test_retouch_file_honours_format_quality_and_overwrite(tmp_path):
    src = _photo(tmp_path / "a.png")
    noisy = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noisy).save(src)
    low = retouch_file(src, tmp_path / "low.jpg", INVERT, quality=30)
    high = retouch_file(src, tmp_path / "high.jpg", INVERT, quality=95)
    assert low.stat().st_size < high.stat().st_size
    tif = retouch_file(src, tmp_path / "x.out", INVERT, fmt="tif")
    assert Image.open(tif).format == "TIFF"
    with pytest.raises(OutputExistsError):
        retouch_file(src, low, INVERT)
    retouch_file(src, low, INVERT, overwrite=True, quality=95)
    assert low.stat().st_size == high.stat().st_size


def test_default_quality_is_95(tmp_path):
    src = tmp_path / "a.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(src)
    default = retouch_file(src, tmp_path / "d.jpg", INVERT)
    q95 = retouch_file(src, tmp_path / "q.jpg", INVERT, quality=95)
    assert default.read_bytes() == q95.read_bytes()
    process(Job(src, tmp_path / "p.jpg"), INVERT)
    assert (tmp_path / "p.jpg").read_bytes() == q95.read_bytes()


@pytest.mark.parametrize("name", ["a.jpg", "a.png"])
def test_8_bit_jpeg_and_png_pixels_reach_the_retouch_as_uint8_arrays(tmp_path, name):
    """Decoded straight to arrays (no PIL copy), which enhance may then overwrite in place."""
    seen = []

    def record(pixels):
        seen.append(type(pixels))
        return _invert(pixels)

    src = _photo(tmp_path / name)
    retouch_file(src, tmp_path / f"out_{name}", Retouch(record, {}))
    assert seen == [np.ndarray]


def test_a_resized_output_without_alpha(tmp_path):
    dst = retouch_file(_photo(tmp_path / "a.png", size=(32, 24)), tmp_path / "b.png", Retouch(_half, {"half": 1}))
    with Image.open(dst) as im:
        assert im.mode == "RGB" and im.size == (16, 12)


def test_retouch_file_refuses_photos_over_max_pixels(tmp_path):
    src = _photo(tmp_path / "a.png", size=(40, 30))
    with pytest.raises(PhotoError, match="1,000"):
        retouch_file(src, tmp_path / "b.png", INVERT, max_pixels=1000)
    assert not (tmp_path / "b.png").exists()


def test_alpha_follows_a_resized_output(tmp_path):
    src = tmp_path / "a.png"
    rgba = np.zeros((24, 32, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[:, :16, 3] = 0  # left half transparent
    Image.fromarray(rgba, "RGBA").save(src)
    dst = retouch_file(src, tmp_path / "b.png", Retouch(_half, {"half": 1}))
    with Image.open(dst) as im:
        assert im.mode == "RGBA" and im.size == (16, 12)
        alpha = np.asarray(im)[..., 3]
    assert alpha[:, :7].max() == 0 and alpha[:, 9:].min() == 255


def test_alpha_is_kept_as_is_at_full_size(tmp_path):
    src = tmp_path / "a.png"
    rgba = np.random.default_rng(1).integers(0, 256, (24, 32, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(src)
    dst = retouch_file(src, tmp_path / "b.png", INVERT)
    assert np.array_equal(np.asarray(Image.open(dst))[..., 3], rgba[..., 3])


# ---------------------------------------------------------------- process: done / skipped / conflict / failed
def test_process_writes_a_new_output(tmp_path):
    job = Job(_photo(tmp_path / "a.png"), tmp_path / "out" / "a.png")
    result = process(job, INVERT)
    assert result == Result(job, "done")
    assert read_mark(job.dst) == INVERT.mark


def test_existing_output_with_the_same_settings_is_skipped(tmp_path):
    job = Job(_photo(tmp_path / "a.png"), tmp_path / "b.png")
    process(job, INVERT)
    before = job.dst.stat().st_mtime_ns
    result = process(job, INVERT)
    assert result.status == "skipped" and result.message == f"{job.dst}: exists"
    assert job.dst.stat().st_mtime_ns == before


def test_existing_file_not_made_by_csrnet_is_skipped_not_replaced(tmp_path):
    job = Job(_photo(tmp_path / "a.png"), _photo(tmp_path / "b.png", colour=(1, 2, 3)))
    assert process(job, INVERT).status == "skipped"
    assert Image.open(job.dst).getpixel((0, 0)) == (1, 2, 3)


def test_existing_output_with_other_settings_is_a_conflict(tmp_path):
    job = Job(_photo(tmp_path / "a.png"), tmp_path / "b.png")
    process(job, OTHER)
    result = process(job, INVERT)
    assert result.status == "conflict" and result.job == job
    assert result.message == f"{job.dst}: exists, made with other settings (look invert, strength 2)"
    assert read_mark(job.dst) == OTHER.mark  # untouched


def test_conflict_message_keeps_parentheses_inside_the_settings(tmp_path):
    job = Job(_photo(tmp_path / "a.png"), tmp_path / "b.png")
    process(job, Retouch(_invert, {"model": "a@1*0.5+b@2*0.5 (lut blend)", "tag": "MAX"}))
    result = process(job, INVERT)
    assert result.message == f"{job.dst}: exists, made with other settings (model a@1*0.5+b@2*0.5 (lut blend), tag MAX)"


def test_overwrite_redoes_an_existing_output(tmp_path):
    job = Job(_photo(tmp_path / "a.png"), tmp_path / "b.png")
    process(job, OTHER)
    assert process(job, INVERT, overwrite=True).status == "done"
    assert read_mark(job.dst) == INVERT.mark


def test_a_race_lost_to_other_settings_is_a_conflict(tmp_path):
    job = Job(_photo(tmp_path / "a.png"), tmp_path / "b.png")

    def another_run_finishes_first(pixels):
        process(Job(job.src, job.dst), OTHER)
        return _invert(pixels)

    result = process(job, Retouch(another_run_finishes_first, INVERT.settings))
    assert result.status == "conflict" and read_mark(job.dst) == OTHER.mark


def test_process_passes_format_quality_and_max_pixels(tmp_path):
    src = _photo(tmp_path / "a.png", size=(40, 30))
    assert process(Job(src, tmp_path / "b.png"), INVERT, max_pixels=1000).status == "failed"
    assert process(Job(src, tmp_path / "c.xyz"), INVERT, fmt="tif").status == "done"
    assert Image.open(tmp_path / "c.xyz").format == "TIFF"
    noisy = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noisy).save(src)
    process(Job(src, tmp_path / "q30.jpg"), INVERT, quality=30)
    process(Job(src, tmp_path / "q95.jpg"), INVERT)
    assert (tmp_path / "q30.jpg").stat().st_size < (tmp_path / "q95.jpg").stat().st_size


def test_unreadable_input_fails_with_one_line_naming_it_once(tmp_path):
    src = tmp_path / "bad.jpg"
    src.write_bytes(b"not a photo")
    result = process(Job(src, tmp_path / "out.jpg"), INVERT)
    assert result.status == "failed"
    assert result.message.startswith(f"{src}: ") and result.message.count(str(src)) == 1 and "\n" not in result.message
    assert not (tmp_path / "out.jpg").exists()


def test_csrnet_errors_without_the_path_get_it(tmp_path):
    from csrnet.errors import InvalidArgumentError

    def refuse(pixels):
        raise InvalidArgumentError("strength must be in [0, 2]")

    src = _photo(tmp_path / "a.png")
    result = process(Job(src, tmp_path / "b.png"), Retouch(refuse, {}))
    assert result == Result(Job(src, tmp_path / "b.png"), "failed", f"{src}: strength must be in [0, 2]")


@pytest.mark.parametrize(
    "error, message",
    [
        (MemoryError(), "{src}: out of memory"),
        (PermissionError(13, "Permission denied"), "{src}: cannot write {dst} (Permission denied)"),
        (OSError("disk full"), "{src}: cannot write {dst} (disk full)"),
        (ZeroDivisionError("division by zero\nsecond line"), "{src}: unexpected ZeroDivisionError (division by zero); please report this"),
        (KeyError(), "{src}: unexpected KeyError (); please report this"),
    ],
)
def test_other_failures_are_one_line_results(tmp_path, error, message):
    def broken(pixels):
        raise error

    job = Job(_photo(tmp_path / "a.png"), tmp_path / "b.png")
    result = process(job, Retouch(broken, {}))
    assert result == Result(job, "failed", message.format(src=job.src, dst=job.dst))


def test_long_unexpected_messages_are_cut(tmp_path):
    def broken(pixels):
        raise RuntimeError("x" * 500)

    job = Job(_photo(tmp_path / "a.png"), tmp_path / "b.png")
    assert process(job, Retouch(broken, {})).message == f"{job.src}: unexpected RuntimeError ({'x' * 200}); please report this"


# ---------------------------------------------------------------- run_batch
def _jobs(tmp_path, n: int) -> list[Job]:
    src = tmp_path / "in"
    src.mkdir(exist_ok=True)
    return [Job(_photo(src / f"{i}.png", colour=(i, 0, 0)), tmp_path / "out" / f"{i}.png") for i in range(n)]


@pytest.mark.parametrize("workers", [1, 3])
def test_run_batch_returns_results_in_job_order_and_reports_each(tmp_path, workers):
    jobs = _jobs(tmp_path, 5)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "2.png").write_bytes(b"")  # not csrnet's: skipped
    started, finished = [], []
    results = run_batch(jobs, INVERT, workers=workers, on_start=started.append, on_result=finished.append)
    assert [r.job for r in results] == jobs
    assert [r.status for r in results] == ["done", "done", "skipped", "done", "done"]
    assert sorted(started, key=jobs.index) == jobs and sorted(finished, key=lambda r: jobs.index(r.job)) == results
    assert Image.open(jobs[4].dst).getpixel((0, 0)) == (251, 255, 255)


def test_run_batch_passes_options_to_each_file(tmp_path):
    jobs = _jobs(tmp_path, 2)
    run_batch(jobs, OTHER, workers=1)
    results = run_batch(jobs, INVERT, workers=2, overwrite=True)
    assert [r.status for r in results] == ["done", "done"] and all(read_mark(j.dst) == INVERT.mark for j in jobs)


def test_run_batch_default_workers_and_a_single_job(tmp_path):
    jobs = _jobs(tmp_path, 2)
    assert [r.status for r in run_batch(jobs, INVERT)] == ["done", "done"]
    assert [r.status for r in run_batch(jobs[:1], INVERT, workers=4, overwrite=True)] == ["done"]


def _threads_seen(tmp_path, n_jobs: int, workers: int) -> set[str]:
    names = set()

    def record(job):
        names.add(threading.current_thread().name)

    run_batch(_jobs(tmp_path, n_jobs), INVERT, workers=workers, on_start=record, overwrite=True)
    return names


@pytest.mark.parametrize("n_jobs, workers", [(3, 1), (1, 4), (1, 1)])
def test_one_worker_or_one_file_runs_in_the_callers_thread(tmp_path, n_jobs, workers):
    assert _threads_seen(tmp_path, n_jobs, workers) == {threading.current_thread().name}


@pytest.mark.parametrize("n", [2, 3])
def test_n_workers_run_n_files_at_once(tmp_path, n):
    together = threading.Barrier(n, timeout=10)  # every file waits until n of them run at the same time

    def meet(pixels):
        together.wait()
        return _invert(pixels)

    results = run_batch(_jobs(tmp_path, n), Retouch(meet, {}), workers=n)
    assert [r.status for r in results] == ["done"] * n, [r.message for r in results]


def test_no_more_files_at_once_than_workers(tmp_path):
    lock, running, most = threading.Lock(), [0], [0]

    def count(pixels):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        threading.Event().wait(0.05)
        with lock:
            running[0] -= 1
        return _invert(pixels)

    results = run_batch(_jobs(tmp_path, 6), Retouch(count, {}), workers=2)
    assert [r.status for r in results] == ["done"] * 6 and most[0] == 2


def test_stop_lets_no_new_file_start(tmp_path):
    jobs = _jobs(tmp_path, 4)
    stop = threading.Event()

    def stop_after_first(result):
        stop.set()

    results = run_batch(jobs, INVERT, workers=1, stop=stop, on_result=stop_after_first)
    assert [r.status for r in results] == ["done", "not started", "not started", "not started"]
    assert [r.job for r in results] == jobs
    assert not jobs[1].dst.exists()


def test_run_batch_removes_temporaries_a_killed_run_left(tmp_path):
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    jobs = _jobs(tmp_path, 1)
    (tmp_path / "out").mkdir()
    stale = tmp_path / "out" / f".0.png.{proc.pid}.0123abcd.tmp"
    stale.write_bytes(b"half")
    run_batch(jobs, INVERT, workers=1)
    assert not stale.exists() and sorted(os.listdir(tmp_path / "out")) == ["0.png"]


# ---------------------------------------------------------------- the report
def _report(*statuses: str, errors=(), own=0, interrupted=False) -> Report:
    job = Job(Path("a.png"), Path("b.png"))
    return Report([Result(job, s, f"m{i}" if s == "failed" else "") for i, s in enumerate(statuses)], list(errors), interrupted, own)


def test_report_counts_and_summary():
    r = _report("done", "done", "skipped", "failed", errors=["x: no such file"])
    assert r.count("done") == 2 and r.count("skipped") == 1 and r.count("conflict") == 0
    assert r.failures == ["x: no such file", "m3"]
    assert r.summary() == "2 enhanced, 1 skipped (output exists), 2 failed"
    assert r.summary("written") == "2 written, 1 skipped (output exists), 2 failed"
    assert r.exit_code == 1


def test_report_summary_mentions_own_outputs_interruption_and_conflicts():
    assert _report("done", own=1).summary() == "1 enhanced, 0 skipped (output exists), 0 failed, 1 csrnet output among the inputs left alone"
    assert _report(own=2).summary().endswith(", 2 csrnet outputs among the inputs left alone")
    r = _report("done", "not started", "not started", interrupted=True)
    assert r.summary() == "1 enhanced, 0 skipped (output exists), 0 failed, 2 not started (interrupted)"
    assert r.exit_code == 1
    one = _report("conflict").summary()
    assert one.endswith("; 1 output exists with other settings — use --overwrite or another -o/--suffix")
    two = _report("conflict", "conflict", "done").summary()
    assert two == ("1 enhanced, 0 skipped (output exists), 0 failed; 2 outputs exist with other settings — "
                   "use --overwrite or another -o/--suffix")
    assert _report("done", "skipped").exit_code == 0
