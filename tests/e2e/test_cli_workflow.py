"""`csrnet enhance` as photographers use it (issue 17): own outputs are never inputs, other settings are
reported, -o FILE, huge PNGs refused by the project's limit, extension case kept, pipes, --long-edge,
the hot folder, and the small commands."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from PIL import Image

import csrnet
from csrnet.cli import main
from csrnet.io.marks import read_mark

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CLI = [sys.executable, "-m", "csrnet.cli"]


def _shoot(folder: Path, n: int = 2, size=(240, 160), ext=".jpg") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    names = ["gcompris_farm-owl.jpg", "gcompris_animal-giraffe.jpg", "cathedral_underexposed.jpg"]
    out = []
    for i in range(n):
        p = folder / f"DSC_{i:04d}{ext}"
        Image.open(EXAMPLES / names[i % 3]).convert("RGB").resize(size).save(p, quality=92)
        out.append(p)
    return out


def test_own_outputs_are_never_inputs(tmp_path):
    shoot = tmp_path / "shoot"
    _shoot(shoot)
    r = CliRunner().invoke(main, ["enhance", str(shoot)])
    assert r.exit_code == 0, r.output
    firsts = sorted(shoot.glob("*_csrnet.jpg"))
    assert len(firsts) == 2 and all(read_mark(p) for p in firsts)
    # renamed copies of outputs, anywhere, are still recognised
    shutil.copy(firsts[0], shoot / "renamed.jpg")
    r = CliRunner().invoke(main, ["enhance", str(shoot), "-o", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["DSC_0000.jpg", "DSC_0001.jpg"]
    assert "3 csrnet outputs among the inputs left alone" in r.output
    assert not list(tmp_path.rglob("*_csrnet_csrnet*"))


def test_rerun_with_other_settings_is_reported(tmp_path):
    shoot = tmp_path / "shoot"
    _shoot(shoot)
    out = tmp_path / "out"
    assert CliRunner().invoke(main, ["enhance", str(shoot), "-o", str(out)]).exit_code == 0
    same = CliRunner().invoke(main, ["enhance", str(shoot), "-o", str(out)])
    assert same.exit_code == 0 and "2 skipped" in same.output
    other = CliRunner().invoke(main, ["enhance", str(shoot), "-o", str(out), "-s", "0.5"])
    assert other.exit_code == 1
    assert "2 outputs exist with other settings — use --overwrite or another -o/--suffix" in other.output
    assert "strength 1" in read_mark(out / "DSC_0000.jpg")
    redo = CliRunner().invoke(main, ["enhance", str(shoot), "-o", str(out), "-s", "0.5", "--overwrite"])
    assert redo.exit_code == 0 and "strength 0.5" in read_mark(out / "DSC_0000.jpg")


def test_output_file_name(tmp_path):
    [src] = _shoot(tmp_path / "in", 1)
    r = CliRunner().invoke(main, ["enhance", str(src), "-o", str(tmp_path / "result.png")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "result.png").is_file() and Image.open(tmp_path / "result.png").format == "PNG"
    _shoot(tmp_path / "two", 2)
    r = CliRunner().invoke(main, ["enhance", str(tmp_path / "two"), "-o", str(tmp_path / "result.jpg")])
    assert r.exit_code == 2 and "names one output file" in r.output and not (tmp_path / "result.jpg").exists()


def test_extension_case_is_kept(tmp_path):
    _shoot(tmp_path, 1, ext=".JPG")
    r = CliRunner().invoke(main, ["enhance", str(tmp_path / "DSC_0000.JPG")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "DSC_0000_csrnet.JPG").is_file()


def _png_header_only(path: Path, w: int, h: int) -> None:
    """A PNG that claims w x h pixels (nothing behind it): the pixel limit must refuse it from the header."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def test_huge_png_gets_the_projects_limit(tmp_path):
    _png_header_only(tmp_path / "bomb.png", 30000, 30000)  # 900 MP
    r = CliRunner().invoke(main, ["enhance", str(tmp_path / "bomb.png")])
    assert r.exit_code == 1
    assert "over the limit of 250,000,000 pixels" in r.output and "--max-pixels" in r.output


def test_stdin_to_stdout_and_long_edge(tmp_path):
    [src] = _shoot(tmp_path / "in", 1, size=(600, 400))
    piped = subprocess.run(CLI + ["enhance", "-", "--long-edge", "300"], input=src.read_bytes(), capture_output=True, check=True)
    direct = CliRunner().invoke(main, ["enhance", str(src), "-o", str(tmp_path / "out"), "--long-edge", "300"])
    assert direct.exit_code == 0, direct.output
    assert piped.stdout == (tmp_path / "out" / src.name).read_bytes()
    assert Image.open(tmp_path / "out" / src.name).size == (300, 200)
    bad = subprocess.run(CLI + ["enhance", "-"], input=b"not a photo", capture_output=True)
    assert bad.returncode == 1 and bad.stdout == b"" and b"<stdin>" in bad.stderr and len(bad.stderr.splitlines()) == 1


def test_lut_default_name_and_model_cards(tmp_path):
    [src] = _shoot(tmp_path, 1)
    r = CliRunner().invoke(main, ["lut", str(src)])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "DSC_0000.cube").read_text().startswith('TITLE "csrnet look of DSC_0000.jpg, model auto"')
    r = CliRunner().invoke(main, ["models", "--card", "exposure"])
    assert r.exit_code == 0 and r.output.startswith("exposure\t") and "# `exposure`" in r.output and "# `auto`" not in r.output
    r = CliRunner().invoke(main, ["models", "nope"])
    assert r.exit_code == 2 and "no bundled model 'nope'" in r.output


def test_broken_pipe_and_busy_port():
    out = subprocess.run(" ".join(CLI) + " models --card | head -n 1", shell=True, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("auto") and "Error" not in out.stderr and out.stderr == ""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = subprocess.run(CLI + ["web", "--port", str(port)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "serving" not in r.stderr
    assert r.stderr.strip().splitlines() == [f"csrnet: error: cannot listen on 127.0.0.1:{port}: the port is in use (another csrnet web or server?); choose another with --port"]


def test_watch_folder(tmp_path):
    hot, out = tmp_path / "hot", tmp_path / "out"
    hot.mkdir()
    proc = subprocess.Popen(CLI + ["enhance", str(hot), "-o", str(out), "--watch", "--interval", "0.2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _shoot(tmp_path / "staging", 2)
        for p in sorted((tmp_path / "staging").iterdir()):
            os.replace(p, hot / p.name)
        (hot / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(list(out.glob("DSC_*.jpg"))) < 2:
            time.sleep(0.2)
        assert sorted(p.name for p in out.glob("*.jpg")) == ["DSC_0000.jpg", "DSC_0001.jpg"]
        first = (out / "DSC_0000.jpg").stat().st_mtime_ns
        time.sleep(1.0)  # several more looks: finished files are never redone
        assert (out / "DSC_0000.jpg").stat().st_mtime_ns == first
    finally:
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1  # the broken file failed
    assert stderr.count("broken.jpg") == 1 and "stopped watching: 2 enhanced, 1 failed" in stderr
    assert stdout.count("DSC_") == 2
    assert np.asarray(Image.open(out / "DSC_0000.jpg")).shape == (160, 240, 3)
    assert csrnet  # the package imports
