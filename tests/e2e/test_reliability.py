"""The bad-input corpus through ``csrnet enhance`` (issue 7): no traceback, one line per bad
file naming it and the reason, documented exit codes, inputs byte-identical, no temporary
files, every output complete. The corpus (tests/e2e/badfiles.py) is generated into tmp_path and
run as ONE batch (a subprocess per file would cost a second each); each case then checks its
own line and output. Bad checkpoints go through the command in-process (click's runner).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from csrnet.batch import output_path
from csrnet.console import one_line as _one_line

from tests.conftest import PHOTOS, need_module
from tests.e2e.badfiles import CASES, Case, Sources, build, png_header

#: Cases that fail today, with the fix requested from the owner (notes/reliability_requests.md).
#: strict: when the fix lands the test XPASSes, which fails, so the marker gets removed.
KNOWN = {
}


def run(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The command as a user runs it; stderr/stdout as text, file-name bytes kept as escapes."""
    r = subprocess.run([sys.executable, "-m", "csrnet.cli", *map(str, args)], capture_output=True, cwd=cwd)
    return subprocess.CompletedProcess(r.args, r.returncode, r.stdout.decode("utf-8", "backslashreplace"), r.stderr.decode("utf-8", "backslashreplace"))


def snapshot(folder: Path) -> dict[str, str]:
    """Every entry below ``folder`` -> sha256 of a regular file, the target of a link, or its kind."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            key = os.fsencode(p.relative_to(folder)).hex()
            if p.is_symlink():
                out[key] = "link:" + os.readlink(p)
            elif p.is_file():
                out[key] = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                out[key] = "dir" if p.is_dir() else "special"
    return out


def temporaries(*folders: Path) -> list[str]:
    return [str(p) for f in folders for p in f.rglob("*") if p.name.endswith(".tmp") or ".tmp" in p.name]


def failed_lines(stderr: str) -> list[str]:
    """The per-file ``csrnet: failed:`` lines printed while the batch runs (not the final list)."""
    head = stderr.split("csrnet: failures:")[0]
    return [ln for ln in head.splitlines() if ln.startswith("csrnet: failed: ")]


def line_for(lines: list[str], path: Path) -> list[str]:
    prefix = f"csrnet: failed: {_one_line(str(path))}: "
    return [ln for ln in lines if ln.startswith(prefix)]


_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
              6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90}  # as ImageOps.exif_transpose


def stored_and_orientation(path: Path) -> tuple[Image.Image, int]:
    """The pixels as stored in the file (grayscale) and its EXIF orientation (1 if none).

    TIFF is read with tifffile: Pillow's TIFF reader applies the orientation itself.
    """
    with open(path, "rb") as f:
        is_tiff = f.read(4) in (b"II*\x00", b"MM\x00*")
    if is_tiff:
        import tifffile

        with tifffile.TiffFile(path) as tf:
            page = tf.pages[0]
            arr = page.asarray()
            tag = page.tags.get(274)
            orientation = int(tag.value) if tag is not None else 1
        arr = arr[..., :3] if arr.ndim == 3 else arr
        arr8 = (arr // 257).astype(np.uint8) if arr.dtype == np.uint16 else arr.astype(np.uint8)
        im = Image.fromarray(arr8).convert("L")
        return im, orientation
    with Image.open(path) as im:
        try:
            orientation = int(im.getexif().get(0x0112, 1))
        except (SyntaxError, ValueError, OSError):  # the corpus's corrupt EXIF blocks
            orientation = 1
        return im.convert("L"), orientation


def displayed(path: Path) -> np.ndarray:
    """Grayscale pixels the way an EXIF-honouring viewer shows the file."""
    im, o = stored_and_orientation(path)
    return np.asarray(im.transpose(_TRANSPOSE[o]) if o in _TRANSPOSE else im, np.float64)


def decodes(path: Path) -> Image.Image:
    with Image.open(path) as im:
        im.load()
        return im.copy()


def png_bit_depth(path: Path) -> int:
    return path.read_bytes()[24]  # IHDR: signature 8, length 4, type 4, width 4, height 4, then depth


@dataclass
class CorpusRun:
    folder: Path
    out: Path
    before: dict[str, str]
    after: dict[str, str]
    result: subprocess.CompletedProcess
    lines: list[str]


@pytest.fixture(scope="module")
def sources(shared) -> Sources:
    return Sources.from_folder(PHOTOS)


@pytest.fixture(scope="module")
def corpus(sources, ref_weights, tmp_path_factory) -> CorpusRun:
    root = tmp_path_factory.mktemp("corpus")
    folder = root / "in"
    explicit = build(folder, sources)
    before = snapshot(folder)
    out = root / "out"
    r = run("enhance", folder, *explicit, "-o", out, "-m", ref_weights, "--exact", "--jobs", "2")
    return CorpusRun(folder, out, before, snapshot(folder), r, failed_lines(r.stderr))


def _param(case: Case):
    marks = [pytest.mark.xfail(strict=True, reason=KNOWN[case.id])] if case.id in KNOWN else []
    return pytest.param(case, id=case.id, marks=marks)


def test_corpus_size() -> None:
    """The issue asks for at least 200 cases; every category is represented."""
    cats = {c.category for c in CASES}
    assert len(CASES) >= 200 and len(cats) >= 12, (len(CASES), cats)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_case(corpus: CorpusRun, case: Case) -> None:
    src = corpus.folder / case.name
    dst = output_path(src, corpus.folder, corpus.out, suffix="", fmt=None)
    mine = line_for(corpus.lines, src)
    if case.expect == "tiny" and mine:
        case = Case(case.name, case.category, "fail", case.make, r"too small")
    elif case.expect == "tiny":
        case = Case(case.name, case.category, "ok", case.make)
    if case.expect in ("fail", "ignored"):
        assert not os.path.lexists(dst), f"{dst} written for a bad input"
    if case.expect == "ignored":
        assert mine == []
        return
    if case.expect == "fail":
        assert len(mine) == 1, f"expected one line naming {src}, got {mine}"
        reason = mine[0].split(f"{_one_line(str(src))}: ", 1)[1]
        assert re.search(case.reason, reason, re.I), f"reason {reason!r} does not match {case.reason!r}"
        assert "\n" not in reason and len(mine[0]) < 600
        return
    assert mine == [], mine
    out = decodes(dst)  # complete: decodes to the end
    inp, _ = stored_and_orientation(src) if src.suffix.lower() != ".dng" else (decodes(src), 1)
    stored_out, o_out = stored_and_orientation(dst)
    assert stored_out.size == inp.size, "pixels must not be rotated or resized"
    if case.alpha and dst.suffix in (".png", ".tif"):
        assert "A" in out.mode, f"alpha dropped: {out.mode}"
        with Image.open(src) as im:
            a_in = np.asarray(im.convert("RGBA").getchannel("A"))
        if dst.suffix == ".png":
            assert np.array_equal(np.asarray(out.getchannel("A")), a_in)
    if dst.suffix == ".jpg":
        assert out.mode in ("RGB", "L"), out.mode  # JPEG: alpha dropped (README: Modes)
    if case.sixteen:
        if dst.suffix == ".png":
            assert png_bit_depth(dst) == 16
        else:
            import tifffile

            assert tifffile.imread(dst).dtype == np.uint16
    if case.orientation is not None:
        a, b = displayed(src), displayed(dst)
        assert a.shape == b.shape, f"shown as {b.shape}, original shown as {a.shape}"
        assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.8, "shown rotated or flipped against the original"


def test_corpus_batch_contract(corpus: CorpusRun) -> None:
    r = corpus.result
    assert r.returncode == 1, r.stderr[-2000:]
    assert "Traceback" not in r.stderr and "Warning:" not in r.stderr, r.stderr[-3000:]
    assert corpus.after == corpus.before, "an input changed, appeared or vanished"
    assert temporaries(corpus.folder, corpus.out) == []
    expected_fail = [c for c in CASES if c.expect == "fail"]
    n_failed = len(corpus.lines)
    tiny_failed = sum(1 for c in CASES if c.expect == "tiny" and line_for(corpus.lines, corpus.folder / c.name))
    assert n_failed == len(expected_fail) + tiny_failed + sum(c.id in KNOWN for c in CASES if c.expect == "ok")
    summary = [ln for ln in r.stderr.splitlines() if re.match(r"csrnet: \d+ enhanced", ln)]
    assert len(summary) == 1 and f"{n_failed} failed" in summary[0], summary
    assert f"{len(list(corpus.out.rglob('*.*')))} enhanced" in summary[0]
    # all failures listed again at the end, one per line
    tail = r.stderr.split("csrnet: failures:\n", 1)[1].splitlines()
    assert sorted(ln.strip() for ln in tail) == sorted(ln.removeprefix("csrnet: failed: ") for ln in corpus.lines)
    # every stderr line is ours: a message, the failure list, or progress
    for ln in r.stderr.splitlines():
        assert ln.startswith(("csrnet: ", "  ")) or "photo" in ln or not ln.strip(), ln


def test_other_output_formats(sources, ref_weights, tmp_path) -> None:
    """Alpha kept in TIFF and dropped in JPEG; 16-bit kept in TIFF; corrupt metadata written as TIFF."""
    by_stem = {Path(c.name).stem: c for c in CASES if c.category in ("modes", "sixteen_bit", "metadata") and c.expect == "ok"}
    cases = list(by_stem.values())  # one per stem: with --format, a.jpg and a.png would both become a.tif
    folder = tmp_path / "in"
    build(folder, sources, cases)
    before = snapshot(folder)
    for fmt in ("tif", "jpg"):
        out = tmp_path / fmt
        r = run("enhance", folder, "-o", out, "-m", ref_weights, "--exact", "--format", fmt)
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
        for c in cases:
            dst = out / (Path(c.name).stem + "." + fmt)
            im = decodes(dst)
            if fmt == "jpg":
                assert im.mode == "RGB"
            elif c.alpha:
                assert "A" in im.mode or im.mode == "RGBA", (c.name, im.mode)
            if fmt == "tif" and c.sixteen:
                import tifffile

                assert tifffile.imread(dst).dtype == np.uint16
        assert temporaries(out) == []
    assert snapshot(folder) == before


def test_single_file_exit_codes(sources, ref_weights, tmp_path) -> None:
    good = tmp_path / "good.jpg"
    good.write_bytes(sources.encoded(0, "JPEG"))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header(100_000, 100_000))
    album = tmp_path / "album.jpg"
    album.mkdir()
    before = snapshot(tmp_path)

    r = run("enhance", good, "-o", tmp_path / "new" / "nested", "-m", ref_weights)  # output folder created
    assert r.returncode == 0 and r.stdout.strip() == str(tmp_path / "new" / "nested" / "good.jpg"), r.stderr
    r = run("enhance", good, "-o", tmp_path / "new" / "nested", "-m", ref_weights)  # already there
    assert r.returncode == 0 and "1 skipped" in r.stderr
    r = run("enhance", bad, "-m", ref_weights)
    assert r.returncode == 1 and f"csrnet: failed: {bad}: " in r.stderr
    r = run("enhance", bomb, "-m", ref_weights)
    assert r.returncode == 1 and re.search(rf"{bomb}: .*(over the limit|decompression bomb)", r.stderr)
    r = run("enhance", good, "-m", ref_weights, "--max-pixels", "100")
    assert r.returncode == 1 and "over the limit of 100" in r.stderr
    r = run("enhance", album, "-m", ref_weights)  # a folder named photo.jpg holding nothing
    assert r.returncode == 2 and "no photos found" in r.stderr and "album.jpg" in r.stderr
    bad_bytes = bad.read_bytes()
    r = run("enhance", good, "-m", ref_weights, "-o", bad)  # an existing photo file as the output name: never replaced
    assert r.returncode == 0 and "1 skipped" in r.stderr and bad.read_bytes() == bad_bytes
    r = run("enhance", good, "-m", ref_weights, "-o", good)  # the input itself
    assert r.returncode == 2 and "never replaces an input" in r.stderr
    r = run("enhance", good, "-m", ref_weights, "-o", bad / "sub")  # below a file
    assert r.returncode == 2 and str(bad / "sub") in r.stderr
    r = run("enhance", good, "-m", ref_weights, "--jobs", "0")
    assert r.returncode == 2
    long_name = tmp_path / ("L" * 251 + ".jpg")  # 255 bytes: fine, but not with "_csrnet" added
    long_name.write_bytes(sources.encoded(1, "JPEG"))
    r = run("enhance", long_name, "-m", ref_weights)
    assert r.returncode == 1 and "name too long" in r.stderr.lower() and r.stderr.count("\n") <= 3, r.stderr
    after = snapshot(tmp_path)
    assert {k: v for k, v in after.items() if k in before} == before
    assert temporaries(tmp_path) == []
    assert "Traceback" not in r.stderr


def test_stale_temporaries_of_a_killed_run_are_removed(sources, ref_weights, tmp_path) -> None:
    """SIGKILL cannot clean up; the next run removes temporaries whose process is gone."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(sources.encoded(0, "JPEG"))
    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    stale = out / f".a.jpg.{dead}.0123abcd.tmp"
    stale.write_bytes(b"half a jpeg")
    alive = out / f".b.jpg.{os.getpid()}.0123abcd.tmp"  # a live process's file: kept
    alive.write_bytes(b"in progress")
    r = run("enhance", folder, "-o", out, "-m", ref_weights)
    assert r.returncode == 0, r.stderr
    assert not stale.exists() and alive.exists()
    decodes(out / "a.jpg")


# ------------------------------------------------------------------ checkpoints
class _Evil:
    """Unpickling calls os.mkdir(marker): proof that loading ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def _bad_checkpoints(folder: Path, ref: Path, marker: Path) -> dict[str, str]:
    """Write the bad checkpoints; name -> regex of the reason."""
    import torch
    from safetensors.numpy import save_file

    import csrnet

    model = csrnet.load_model(ref)
    t = dict(model.tensors)
    meta = {"csrnet": '{"arch": "csrnet", "condition_size": 500}'}
    good = ref.read_bytes()
    cases: dict[str, str] = {}
    for frac in (0.1, 0.5, 0.9, 0.999):
        (folder / f"cut{int(frac * 1000)}.safetensors").write_bytes(good[: int(len(good) * frac)])
        cases[f"cut{int(frac * 1000)}.safetensors"] = "not a readable weights file"
    (folder / "empty.safetensors").write_bytes(b"")
    (folder / "noise.safetensors").write_bytes(np.random.default_rng(0).bytes(400))
    (folder / "huge_header.safetensors").write_bytes((2**62).to_bytes(8, "little") + b"{}")
    cases.update({"empty.safetensors": "not a readable", "noise.safetensors": "not a readable", "huge_header.safetensors": "not a readable"})
    save_file({k: v for k, v in t.items() if k != "conv3.bias"}, str(folder / "missing.safetensors"), metadata=meta)
    save_file({**t, "extra.weight": np.zeros(3, np.float32)}, str(folder / "extra.safetensors"), metadata=meta)
    save_file({**t, "conv1.weight": np.zeros((32, 3, 1, 1), np.float32)}, str(folder / "shape.safetensors"), metadata=meta)
    save_file({**t, "conv1.bias": np.full(64, np.nan, np.float32)}, str(folder / "nan.safetensors"), metadata=meta)
    save_file(t, str(folder / "badjson.safetensors"), metadata={"csrnet": "{not json"})
    save_file(t, str(folder / "arch.safetensors"), metadata={"csrnet": '{"arch": "resnet9000"}'})
    cases.update({"missing.safetensors": "not a csrnet checkpoint.*missing", "extra.safetensors": "unexpected", "shape.safetensors": "shape",
                  "nan.safetensors": "NaN", "badjson.safetensors": "corrupt model card", "arch.safetensors": "unknown architecture"})
    sd = {k: torch.from_numpy(v) for k, v in t.items()}
    torch.save({k: v for k, v in sd.items() if k != "conv1.bias"}, folder / "missing.pth")
    torch.save({**sd, "conv2.weight": torch.zeros(3, 3)}, folder / "shape.pth")
    cases.update({"missing.pth": "missing", "shape.pth": "shape"})
    torch.save(sd, folder / "whole.pth")
    whole = (folder / "whole.pth").read_bytes()
    (folder / "cut.pth").write_bytes(whole[: len(whole) // 2])
    (folder / "empty.pth").write_bytes(b"")
    cases.update({"cut.pth": "not a readable PyTorch checkpoint", "empty.pth": "not a readable PyTorch checkpoint"})
    evil = _Evil(marker)
    for name in ("evil_pickle.pth", "evil_pickle.safetensors", "evil_pickle.ckpt"):
        with open(folder / name, "wb") as f:
            pickle.dump({"conv1.weight": evil}, f, protocol=2)
        cases[name] = "refused|not a readable"
    torch.save({"conv1.weight": evil}, folder / "evil_torch.pth")
    torch.save({"conv1.weight": evil}, folder / "evil_torch.safetensors")  # a zip named .safetensors
    cases.update({"evil_torch.pth": "refused.*code", "evil_torch.safetensors": "refused|not a readable"})
    (folder / "folder.safetensors").mkdir()
    cases["folder.safetensors"] = "is a folder"
    (folder / "whole.pth").unlink()
    return cases


def test_bad_checkpoints_are_refused(shared, ref_weights, sources, tmp_path) -> None:
    need_module("torch")
    from click.testing import CliRunner

    from csrnet.cli import main

    models = tmp_path / "models"
    models.mkdir()
    marker = tmp_path / "PWNED"
    cases = _bad_checkpoints(models, ref_weights, marker)
    photo = tmp_path / "p.jpg"
    photo.write_bytes(sources.encoded(0, "JPEG"))
    before = snapshot(tmp_path)
    runner = CliRunner()
    for name, reason in sorted(cases.items()):
        r = runner.invoke(main, ["enhance", str(photo), "-m", str(models / name), "-o", str(tmp_path / "out")])
        lines = r.stderr.strip().splitlines()
        assert r.exit_code == 2, (name, r.exit_code, r.stderr, r.exception)
        assert len(lines) == 1 and lines[0].startswith(f"csrnet: error: {models / name}: "), (name, lines)
        assert re.search(reason, lines[0]), (name, lines[0])
        assert not marker.exists(), f"loading {name} ran code"
    assert len(cases) >= 20
    assert snapshot(tmp_path) == before | {k: v for k, v in snapshot(tmp_path).items() if k not in before and v == "dir"}
    assert list((tmp_path / "out").glob("*")) == []
    # and once as a real process: the pickle's code does not run, exit 2, no traceback
    r = run("enhance", photo, "-m", models / "evil_pickle.pth")
    assert r.returncode == 2 and "Traceback" not in r.stderr and not marker.exists(), r.stderr


def test_tiny_images_are_enhanced(ref_model) -> None:
    import csrnet

    for h, w in ((1, 1), (4, 4), (1, 20000), (3, 700)):
        img = np.full((h, w, 3), 90, np.uint8)
        assert csrnet.enhance(img, ref_model, exact=True).shape == img.shape
