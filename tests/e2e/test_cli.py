"""The csrnet command end to end, in subprocesses as a user runs it."""

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import CHECKPOINT, PHOTOS


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "csrnet.cli", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def folder(tmp_path, shared):
    src = tmp_path / "in"
    src.mkdir()
    for p in sorted(PHOTOS.glob("*.jpg"))[:3]:
        im = Image.open(p)
        im.thumbnail((400, 400))
        im.save(src / p.name, quality=90)
    (src / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    return src


def test_folder_with_corrupt_file(folder, ref_weights, tmp_path):
    before = {p.name: digest(p) for p in folder.iterdir()}
    out = tmp_path / "out"
    r = run("enhance", folder, "-o", out, "-m", ref_weights)
    assert r.returncode == 1, r.stderr
    assert "corrupt.jpg" in r.stderr and "Traceback" not in r.stderr
    assert "3 enhanced" in r.stderr and "1 failed" in r.stderr
    outputs = sorted(p.name for p in out.iterdir())
    assert outputs == sorted(n for n in before if n != "corrupt.jpg")
    for p in out.iterdir():
        with Image.open(p) as im:
            im.load()
    assert {p.name: digest(p) for p in folder.iterdir()} == before  # inputs untouched
    # a second run skips what exists, writes nothing new
    stamp = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    r2 = run("enhance", folder, "-o", out, "-m", ref_weights)
    assert "3 skipped" in r2.stderr
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamp
    r3 = run("enhance", folder, "-o", out, "-m", ref_weights, "--overwrite", "--format", "png")
    assert r3.returncode == 1 and len(list(out.glob("*.png"))) == 3


def test_single_file_beside_input_and_usage_errors(folder, ref_weights):
    photo = next(p for p in sorted(folder.iterdir()) if p.name != "corrupt.jpg")
    r = run("enhance", photo, "-m", ref_weights, "-s", "0.5")
    assert r.returncode == 0, r.stderr
    out = photo.with_name(photo.stem + "_csrnet.jpg")
    assert out.exists() and r.stdout.strip() == str(out)
    r = run("enhance", photo, "-m", folder / "nope.safetensors")
    assert r.returncode == 2 and "nope.safetensors" in r.stderr and "Traceback" not in r.stderr
    r = run("enhance", photo, "-m", ref_weights, "--strength", "9")
    assert r.returncode == 2
    r = run("enhance", folder / "absent.jpg", "-m", ref_weights)
    assert r.returncode == 1 and "absent.jpg" in r.stderr
    r = run("enhance", photo, "-m", ref_weights, "-o", photo)  # output "folder" is a file
    assert r.returncode == 2 and "not a folder" in r.stderr


def test_refuses_to_replace_input(folder, ref_weights):
    before = {p.name: digest(p) for p in folder.iterdir()}
    r = run("enhance", folder, "-o", folder, "-m", ref_weights, "--overwrite")
    assert r.returncode == 1 and "would replace an input" in r.stderr
    assert {p.name: digest(p) for p in folder.iterdir() if p.name in before} == before


@pytest.mark.torch  # the subprocess reads the released .pth
def test_convert_command(shared, tmp_path):
    dst = tmp_path / "ref.safetensors"
    r = run("convert", CHECKPOINT, dst)
    assert r.returncode == 0, r.stderr
    assert "36,489 parameters" in r.stdout
    import csrnet

    m = csrnet.load_model(dst)
    assert m.condition_size == 500 and m.meta["source_sha256"].startswith("22f905d2")
    r = run("convert", CHECKPOINT, dst)
    assert r.returncode == 2 and "exists" in r.stderr
