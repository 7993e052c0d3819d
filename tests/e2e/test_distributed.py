"""``csrnet.distributed`` (``csrnet enhance --engine ray``) on a real local Ray instance: local folders and
an S3 endpoint (moto in server mode on 127.0.0.1, through the real s3fs client), outputs byte-identical to
the single-process CLI, the manifest, bad files, resume, and a worker process killed mid-run."""

import hashlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import need_module

ray = need_module("ray")
need_module("ray.data")
need_module("s3fs")
need_module("pyarrow")
moto_server = need_module("moto.server")

from csrnet.distributed import MANIFEST_NAME, enhance_collection, summarize
from csrnet.testpoint import pause_environ, resume, wait_paused

N_PHOTOS = 200  # "a few hundred small generated photos" (issue 15), plus the bad ones
BAD = {"truncated.jpg", "notes.jpg"}


@pytest.fixture(scope="module", autouse=True)
def ray_instance():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


def exif_bytes(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "TestCam"
    return exif.tobytes()


def photo(i: int, w: int, h: int) -> Image.Image:
    rng = np.random.default_rng(i)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x / w, y / h, (x + y) / (w + h)], axis=2) * rng.uniform(60, 220, 3) + rng.uniform(0, 30, 3)
    return Image.fromarray(np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8))


def make_collection(folder: Path, n: int = N_PHOTOS, size: tuple[int, int] = (96, 64)) -> list[Path]:
    """``n`` small photos in a folder and a sub-folder (JPEG with EXIF orientation, PNG, .JPG), plus the bad ones."""
    (folder / "sub").mkdir(parents=True)
    files = []
    for i in range(n):
        im = photo(i, *size)
        where = folder / "sub" if i % 3 == 0 else folder
        if i % 5 == 4:
            p = where / f"p{i:03d}.png"
            im.save(p)
        else:
            p = where / f"p{i:03d}{'.JPG' if i % 7 == 6 else '.jpg'}"
            im.save(p, "JPEG", quality=90, exif=exif_bytes(6 if i % 4 == 1 else 1))
        files.append(p)
    buf = io.BytesIO()
    photo(999, 96, 64).save(buf, "JPEG", quality=90)
    (folder / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])
    (folder / "notes.jpg").write_text("this is a text file, not a photo\n")
    (folder / "readme.txt").write_text("not an input")
    return files


def cli(src: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "csrnet.cli", "enhance", str(src), "-r", "-o", str(out), "-m", "auto"],
                          capture_output=True, text=True, check=False)


def digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST_NAME}


def manifest_rows(path) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(str(path)).to_pylist()


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    """(input folder, the CLI's outputs for it)."""
    root = tmp_path_factory.mktemp("collection")
    src = root / "in"
    make_collection(src)
    ref = root / "cli"
    r = cli(src, ref)
    assert r.returncode == 1 and "2 failed" in r.stderr, r.stderr  # the two bad files
    assert len(digests(ref)) == N_PHOTOS
    return src, ref


def test_local_folder_matches_cli_manifest_bad_files_and_resume(collection, tmp_path):
    src, ref = collection
    out = tmp_path / "out"
    summary = enhance_collection(str(src), str(out), "auto", workers=2, progress=False)
    assert summary.counts == {"done": N_PHOTOS, "failed": 2}, summary
    assert summary.exit_code == 1 and "files/s" in str(summary)
    assert digests(out) == digests(ref)  # byte-identical to `csrnet enhance`, same names and sub-folders

    rows = manifest_rows(out / MANIFEST_NAME)
    assert len(rows) == N_PHOTOS + 2 and {r["status"] for r in rows} == {"done", "failed"}
    assert set(rows[0]) == {"input", "output", "status", "error", "bytes", "seconds", "model", "strength"}
    failed = {Path(r["input"]).name: r["error"] for r in rows if r["status"] == "failed"}
    assert set(failed) == BAD and all(name in msg for name, msg in failed.items())
    for r in rows:
        assert r["model"].startswith("auto@") and r["strength"] == 1.0
        if r["status"] == "done":
            assert r["bytes"] == Path(r["output"]).stat().st_size > 0 and r["seconds"] > 0
    report = summarize(str(out / MANIFEST_NAME))
    assert f"{N_PHOTOS + 2} photos" in report and "2 failed" in report and "truncated.jpg" in report

    # a run interrupted part way: some outputs missing; the re-run writes exactly those
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != MANIFEST_NAME}
    missing = sorted(stamps)[::6]
    for p in missing:
        p.unlink()
    again = enhance_collection(str(src), str(out), "auto", workers=2, progress=False)
    assert again.counts == {"done": len(missing), "skipped": N_PHOTOS - len(missing), "failed": 2}, again
    assert digests(out) == digests(ref)
    for p, stamp in stamps.items():
        if p not in missing:
            assert p.stat().st_mtime_ns == stamp  # untouched
    rows = manifest_rows(out / MANIFEST_NAME)
    assert {Path(r["output"]) for r in rows if r["status"] == "done"} == set(missing)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3(collection):
    """A moto S3 server on 127.0.0.1 holding the collection under s3://photos/in/; yields storage options."""
    import s3fs

    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    options = {"key": "testing", "secret": "testing",
               "client_kwargs": {"endpoint_url": f"http://{host}:{port}", "region_name": "us-east-1"}}
    boto3 = need_module("boto3")
    client = boto3.client("s3", endpoint_url=options["client_kwargs"]["endpoint_url"], region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    client.create_bucket(Bucket="photos")
    client.create_bucket(Bucket="results")
    fs = s3fs.S3FileSystem(**options)
    src, _ = collection
    for p in src.rglob("*"):
        if p.is_file():
            fs.pipe_file(f"photos/in/{p.relative_to(src).as_posix()}", p.read_bytes())
    try:
        yield fs, options
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_bucket_to_bucket_and_bucket_to_local(collection, s3, tmp_path):
    fs, options = s3
    _, ref = collection
    expected = digests(ref)

    summary = enhance_collection("s3://photos/in", "s3://results/out", "auto", workers=2, storage_options=options, progress=False)
    assert summary.counts == {"done": N_PHOTOS, "failed": 2}, summary
    got = {k[len("results/out/"):]: hashlib.sha256(fs.cat_file(k)).hexdigest()
           for k in fs.find("results/out") if not k.endswith(MANIFEST_NAME)}
    assert got == expected
    with fs.open(f"results/out/{MANIFEST_NAME}", "rb") as f:
        import pyarrow.parquet as pq

        rows = pq.read_table(f).to_pylist()
    assert len(rows) == N_PHOTOS + 2 and all(r["input"].startswith("s3://photos/in/") for r in rows)
    assert {Path(r["input"]).name for r in rows if r["status"] == "failed"} == BAD
    assert "2 failed" in summarize(f"s3://results/out/{MANIFEST_NAME}", options)
    # resume on the bucket: nothing to do
    again = enhance_collection("s3://photos/in", "s3://results/out", "auto", workers=2, storage_options=options, progress=False)
    assert again.counts == {"skipped": N_PHOTOS, "failed": 2}

    out = tmp_path / "local"
    summary = enhance_collection("s3://photos/in", str(out), "auto", workers=2, storage_options=options, progress=False)
    assert summary.counts == {"done": N_PHOTOS, "failed": 2}
    assert digests(out) == expected


RUN = """
import json
import signal
import sys
# As in a terminal: Ctrl-C raises KeyboardInterrupt. A test run started in the background by a shell
# (`.ci/run &`) inherits SIGINT ignored, and Python then leaves it ignored in every child.
signal.signal(signal.SIGINT, signal.default_int_handler)
from csrnet.distributed import enhance_collection
try:
    summary = enhance_collection(sys.argv[1], sys.argv[2], "auto", workers=int(sys.argv[3]), batch_size=int(sys.argv[4]), progress=False)
except KeyboardInterrupt as e:
    print("interrupted:", e, flush=True)
    sys.exit(130)
print(json.dumps(summary.counts))
"""


def start_run(src: Path, out: Path, workers: int, batch_size: int, pauses: Path, *points: str,
              pause_timeout: float = 300.0) -> subprocess.Popen:
    """``enhance_collection`` in its own process and its own Ray instance (the driver owns it and shuts it down
    on Ctrl-C, as ``csrnet enhance --engine ray`` does), the driver and its workers pausing at ``points``
    (csrnet.testpoint: the workers inherit the environment through the raylet)."""
    pauses.mkdir()
    return subprocess.Popen([sys.executable, "-c", RUN, str(src), str(out), str(workers), str(batch_size)],
                            env=pause_environ(pauses, *points, timeout=pause_timeout), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_worker_killed_mid_run_job_completes(tmp_path):
    """Each worker pauses with its 2nd output's temporary file written (its batch not yet returned); one is
    killed there, the others go on. The dead worker's batch is retried on its restarted actor, and the
    temporary it left is removed at the end."""
    src = tmp_path / "in"
    make_collection(src, n=24, size=(1200, 800))
    ref = tmp_path / "cli"
    assert cli(src, ref).returncode == 1
    out, pauses = tmp_path / "out", tmp_path / "pauses"
    proc = start_run(src, out, 2, 2, pauses, "atomic.written:2")
    try:
        victim = wait_paused(pauses, "atomic.written:2", timeout=180, alive=lambda: proc.poll() is None)
        assert victim in _worker_pids(proc.pid)  # a worker of this run, not the driver
        os.kill(victim, signal.SIGKILL)
        assert len(list(out.rglob(f".*.{victim}.*.tmp"))) == 1  # what the kill left: one temporary, never renamed
        resume(pauses, "atomic.written:2")  # the other worker, and the restarted one, go on
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr[-3000:]
    counts = json.loads(stdout.strip().splitlines()[-1])
    assert digests(out) == digests(ref)  # every output present and correct, none half-written
    assert not [p for p in out.rglob("*") if p.name.startswith(".") or "tmp" in p.name.lower()]  # no temporaries left
    rows = manifest_rows(out / MANIFEST_NAME)
    assert len(rows) == 26 and sorted(r["input"] for r in rows) == sorted({r["input"] for r in rows})
    # a file the killed batch had finished (none if a bad file took its batch's other place) is skipped on the retry
    assert counts["failed"] == 2 and counts["done"] + counts.get("skipped", 0) == 24 and counts.get("skipped", 0) <= 1, counts


def _worker_pids(driver: int) -> set[int]:
    """PIDs of every process started below ``driver`` (Ray's raylet and its workers), from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [driver]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def test_summarize_and_missing_source(tmp_path):
    with pytest.raises(FileNotFoundError):
        enhance_collection(str(tmp_path / "nope"), str(tmp_path / "out"), "auto", workers=1, progress=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    s = enhance_collection(str(empty), str(tmp_path / "out2"), "auto", workers=1, progress=False)
    assert s.total == 0 and "0 photos" in summarize(s.manifest)


def test_ctrl_c_leaves_complete_outputs_and_partial_manifest_then_rerun_finishes(tmp_path):
    """The one worker pauses after its 3rd output, the driver after its 2nd manifest row; Ctrl-C there
    leaves exactly 3 outputs and 2 rows, and the re-run does exactly the rest."""
    src = tmp_path / "in"
    make_collection(src, n=24, size=(1200, 800))
    ref = tmp_path / "cli"
    assert cli(src, ref).returncode == 1
    out, pauses = tmp_path / "out", tmp_path / "pauses"
    proc = start_run(src, out, 1, 1, pauses, "atomic.done:3", "ray.row:2")
    try:
        worker = wait_paused(pauses, "atomic.done:3", timeout=180, alive=lambda: proc.poll() is None)
        assert wait_paused(pauses, "ray.row:2", timeout=120, alive=lambda: proc.poll() is None) == proc.pid != worker
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130 and "interrupted" in stdout, stderr[-3000:]
    rows = manifest_rows(out / MANIFEST_NAME)  # partial, but a valid Parquet file
    assert len(rows) == 2
    partial = digests(out)
    assert len(partial) == 3 and all(partial[k] == v for k, v in digests(ref).items() if k in partial)  # complete files only
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]  # no temporaries
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != MANIFEST_NAME}
    again = enhance_collection(str(src), str(out), "auto", workers=2, progress=False)
    assert again.counts == {"done": 21, "skipped": 3, "failed": 2}, again
    assert digests(out) == digests(ref)
    assert all(p.stat().st_mtime_ns == stamp for p, stamp in stamps.items())


def test_listing_names_outputs_like_the_cli(tmp_path):
    from csrnet.distributed import list_jobs

    src = tmp_path / "in"
    make_collection(src, n=6)
    (src / ".hidden").mkdir()
    (src / ".hidden" / "x.jpg").write_bytes(b"")
    (src / ".dot.jpg").write_bytes(b"")
    jobs = list(list_jobs([str(src)], None, suffix="_csrnet"))
    names = sorted(Path(j["input"]).relative_to(src).as_posix() for j in jobs)
    assert names == sorted([p.relative_to(src).as_posix() for p in src.rglob("p*")] + sorted(BAD))  # no hidden, no .txt
    for j in jobs:
        i, o = Path(j["input"]), Path(j["output"])
        assert o.parent == i.parent and o.name == i.stem + "_csrnet" + i.suffix  # beside, extension kept as spelled
    top = list(list_jobs([str(src)], str(tmp_path / "o"), fmt="png", recursive=False))
    assert top and all(Path(j["output"]).parent == tmp_path / "o" and j["output"].endswith(".png") for j in top)
    assert not any("/sub/" in j["input"] for j in top)


def test_cli_engine_ray_with_report(collection, tmp_path):
    """`csrnet enhance SRC -o DST --engine ray --report` (the running Ray instance is used as is)."""
    from click.testing import CliRunner

    from csrnet.cli import main

    src, ref = collection
    out = tmp_path / "ray-cli"
    r = CliRunner().invoke(main, ["enhance", str(src), "-r", "-o", str(out), "-m", "auto", "--engine", "ray", "--workers", "2", "--report"])
    assert r.exit_code == 1, r.output  # the collection holds bad files: exit 1, as the local engine
    assert (out / "csrnet-manifest.parquet").is_file()
    assert "failed" in r.output and "done" in r.output
    assert digests(out) == digests(ref)


def test_style_blend_equals_the_cli_and_a_bad_spec_is_one_error(tmp_path):
    """``--style`` on Ray: the same blend as the single-process CLI, byte for byte; a bad spec fails
    once, before any worker starts."""
    from csrnet.errors import CsrnetError

    src = tmp_path / "in"
    make_collection(src, n=6)
    style = "auto:0.6,exposure:0.4"
    ref = tmp_path / "cli"
    done = subprocess.run([sys.executable, "-m", "csrnet.cli", "enhance", str(src), "-r", "-o", str(ref), "--style", style],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 1, done.stderr[-2000:]  # the bad files
    out = tmp_path / "out"
    summary = enhance_collection(str(src), str(out), workers=2, progress=False, style=style)
    assert summary.counts == {"done": 6, "failed": 2}, summary
    assert digests(out) == digests(ref)
    plain = tmp_path / "plain"
    enhance_collection(str(src), str(plain), "auto", workers=2, progress=False)
    assert digests(plain) != digests(out)  # the blend is not the default model
    models = {r["model"] for r in manifest_rows(out / MANIFEST_NAME)}
    assert len(models) == 1 and "exposure@" in models.pop()
    with pytest.raises(CsrnetError, match="nosuchmodel"):
        enhance_collection(str(src), str(tmp_path / "bad"), workers=2, progress=False, style="auto:0.5,nosuchmodel:0.5")
    assert not (tmp_path / "bad").exists()
    from click.testing import CliRunner

    from csrnet.cli import main

    via_cli = tmp_path / "via_cli"  # the command line's --engine ray --style (Ray already running in this process)
    res = CliRunner().invoke(main, ["enhance", str(src), "-r", "-o", str(via_cli), "--engine", "ray", "--workers", "2", "--style", style])
    assert res.exit_code == 1 and digests(via_cli) == digests(ref), res.output
