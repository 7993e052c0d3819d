"""Crash safety (issue 7): SIGKILL mid-batch then re-run equals an uninterrupted run; Ctrl-C stops
cleanly after the current file; two processes on one folder never corrupt a file; a killed
training run never leaves a half-written checkpoint.
"""

from __future__ import annotations

import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import PHOTOS, need_module

N_PHOTOS = 6


def cmd(*args: object) -> list[str]:
    return [sys.executable, "-m", "csrnet.cli", *map(str, args)]


def outputs(folder: Path) -> dict[str, bytes]:
    """Every entry of the output folder (hidden ones too) -> its bytes."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.exists() else {}


def finished(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if not p.name.startswith(".")] if folder.exists() else []


def wait_for(predicate, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, "the command ended before it could be interrupted"
        assert time.monotonic() < deadline, "timed out waiting for the command"
        time.sleep(0.01)


def check_complete(folder: Path) -> None:
    for p in finished(folder):
        with Image.open(p) as im:
            im.load()


def enhanced_count(stderr: str) -> int:
    m = re.search(r"csrnet: (\d+) enhanced", stderr)
    assert m, stderr
    return int(m.group(1))


@pytest.fixture(scope="module")
def batch(shared, ref_weights, tmp_path_factory) -> tuple[Path, dict[str, bytes], list[str]]:
    """Six ~1000 px photos, and the outputs of an uninterrupted run (--exact --jobs 1: slow enough to interrupt)."""
    root = tmp_path_factory.mktemp("crash")
    src = root / "in"
    src.mkdir()
    for p in sorted(PHOTOS.glob("*.jpg"))[:N_PHOTOS]:
        (src / p.name).write_bytes(p.read_bytes())
    args = ["enhance", src, "-m", ref_weights, "--exact", "--jobs", "1"]
    r = subprocess.run(cmd(*args, "-o", root / "reference"), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return src, outputs(root / "reference"), args


def test_sigkill_then_rerun_equals_uninterrupted(batch, tmp_path) -> None:
    src, reference, args = batch
    before = outputs(src)
    out = tmp_path / "out"
    proc = subprocess.Popen(cmd(*args, "-o", out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: len(finished(out)) >= 2, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = finished(out)
    assert 2 <= len(done) < N_PHOTOS, "killed too late to mean anything"
    check_complete(out)  # whatever is there under its final name is complete
    assert all(p.name.endswith(".tmp") for p in out.iterdir() if p.name.startswith("."))

    r = subprocess.run(cmd(*args, "-o", out), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert f"{len(done)} skipped" in r.stderr and f"{N_PHOTOS - len(done)} enhanced" in r.stderr
    assert outputs(out) == reference  # same files, same bytes, no temporaries left
    assert outputs(src) == before


def test_ctrl_c_stops_after_the_current_file(batch, tmp_path) -> None:
    src, reference, args = batch
    out = tmp_path / "out"
    proc = subprocess.Popen(cmd(*args, "-o", out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: len(finished(out)) >= 1, proc)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr and "stopping after the current file" in stderr
    done = finished(out)
    assert 1 <= len(done) < N_PHOTOS
    assert f"{len(done)} enhanced" in stderr and f"{N_PHOTOS - len(done)} not started (interrupted)" in stderr
    assert outputs(out) == {p.name: reference[p.name] for p in done}  # complete, no temporaries


def test_two_processes_on_one_folder(batch, tmp_path) -> None:
    src, reference, args = batch
    out = tmp_path / "out"
    procs = [subprocess.Popen(cmd(*args, "-o", out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=120) for p in procs]
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 0 and "Traceback" not in err, err
    # each file enhanced by exactly one of them (the loser of a race skips), nothing corrupt
    assert sum(enhanced_count(err) for _, err in results) == N_PHOTOS
    assert outputs(out) == reference


@pytest.mark.torch
def test_killed_training_never_leaves_a_half_written_checkpoint(shared, tmp_path) -> None:
    """SIGKILL at random moments while train() checkpoints every step: last.pt always loads,
    and --resume carries on from it."""
    torch = need_module("torch")
    from csrnet.training import train as train_mod

    pairs = tmp_path / "pairs"
    for sub in ("input", "target"):
        (pairs / sub).mkdir(parents=True)
        for n in ("a4514", "a4553"):
            (pairs / sub / f"{n}.png").symlink_to(shared / "data" / "fivek_pairs" / sub / f"{n}.png")
    run = tmp_path / "run"
    settings = dict(iters=400, seed=1, checkpoint_every=1, condition_size=64, batch=2, pixels=256, progress=False)
    code = f"from csrnet.training.train import train; train({str(pairs)!r}, {str(run)!r}, resume=True, **{settings!r})"
    ckpt = run / "checkpoints" / train_mod.CHECKPOINT_NAME
    rng = random.Random(0)
    iterations = []
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", code])
        seen = ckpt.stat().st_mtime_ns if ckpt.exists() else 0
        wait_for(lambda: ckpt.exists() and ckpt.stat().st_mtime_ns != seen, proc, timeout=120)
        time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        state = torch.load(ckpt, map_location="cpu", weights_only=True)  # never half-written
        iterations.append(int(state["iteration"]))
    assert 0 < iterations[0] <= iterations[1] <= iterations[2] < settings["iters"], iterations
