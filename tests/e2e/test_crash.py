"""Crash safety (issue 7), at known states.

Each test pauses csrnet at a named point (:mod:`csrnet.testpoint`, enabled by the test-only
environment variable ``CSRNET_TEST_PAUSE``) and kills or interrupts it exactly there, so what must be
on disk is exact whatever the machine's speed:

* SIGKILL after the 3rd output: exactly the first 3 outputs, complete, no temporary; the re-run does
  exactly the other 3, leaves the first 3 untouched and equals an uninterrupted run;
* SIGKILL with the 2nd output's temporary file written but not renamed: nothing under the 2nd
  output's name; the re-run removes the stale temporary and finishes;
* Ctrl-C while the 2nd output is being written: that file is finished, no new one starts, exit 1 and
  the summary count them;
* a second Ctrl-C aborts at once ("csrnet: error: interrupted", exit 1) while a file is still in
  progress, leaving no temporary and no partial output;
* two processes on one folder never corrupt a file;
* a training run killed with its checkpoint's temporary file written leaves the previous
  checkpoint in place, and ``--resume`` carries on from it.

Batches run with ``--jobs 1`` so files go by in name order and the pause is in the main thread.
"""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from csrnet.io.atomic import TEMPORARY_NAME
from csrnet.testpoint import pause_environ, resume, wait_paused
from tests.conftest import PHOTOS, need_module

N_PHOTOS = 6
STOPPING = "csrnet: stopping after the current file(s) (Ctrl-C again to abort)"


def cmd(*args: object) -> list[str]:
    return [sys.executable, "-m", "csrnet.cli", *map(str, args)]


def outputs(folder: Path) -> dict[str, bytes]:
    """Every entry of the output folder (hidden ones too) -> its bytes."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.exists() else {}


def stamps(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file of ``folder`` -> (inode, mtime in ns): a file written again changes."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def summary_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if re.match(r"csrnet: \d+ enhanced", ln)]
    assert len(lines) == 1, stderr
    return lines[0]


@contextmanager
def paused_run(args: list[object], pauses: Path, *points: str) -> Iterator[subprocess.Popen]:
    """``csrnet`` started with pause points (stdout/stderr as byte pipes); killed on leaving if still running."""
    pauses.mkdir(exist_ok=True)
    proc = subprocess.Popen(cmd(*args), env=pause_environ(pauses, *points), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        proc.stdout.close()
        proc.stderr.close()


def wait_pause(proc: subprocess.Popen, pauses: Path, point: str) -> None:
    """Block until ``proc`` itself announced its pause at ``point`` (bounded)."""
    assert wait_paused(pauses, point, timeout=120, alive=lambda: proc.poll() is None) == proc.pid


def read_stderr_until(proc: subprocess.Popen, text: str, timeout: float = 30.0) -> str:
    """What ``proc`` wrote on stderr up to and including ``text`` (bounded; fails if it ends first)."""
    seen = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stderr, selectors.EVENT_READ)
        while text.encode() not in seen:
            left = deadline - time.monotonic()
            assert left > 0, f"{text!r} not printed within {timeout:g} s: {seen!r}"
            if sel.select(left):
                chunk = os.read(proc.stderr.fileno(), 65536)
                assert chunk, f"the process ended before printing {text!r}: {seen!r}"
                seen += chunk
    return seen.decode()


@pytest.fixture(scope="module")
def batch(shared, ref_weights, tmp_path_factory) -> tuple[Path, dict[str, bytes], list[object]]:
    """Six ~1000 px photos, the outputs of an uninterrupted run, and its arguments (without -o)."""
    root = tmp_path_factory.mktemp("crash")
    src = root / "in"
    src.mkdir()
    for p in sorted(PHOTOS.glob("*.jpg"))[:N_PHOTOS]:
        (src / p.name).write_bytes(p.read_bytes())
    args: list[object] = ["enhance", src, "-m", ref_weights, "--exact", "--jobs", "1"]
    r = subprocess.run(cmd(*args, "-o", root / "reference"), capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    reference = outputs(root / "reference")
    assert sorted(reference) == sorted(p.name for p in src.iterdir()) and len(reference) == N_PHOTOS
    return src, reference, args


def test_sigkill_after_three_outputs_then_rerun_does_exactly_the_rest(batch, tmp_path) -> None:
    src, reference, args = batch
    names = sorted(reference)
    before = outputs(src)
    out = tmp_path / "out"
    with paused_run([*args, "-o", out], tmp_path / "pauses", "atomic.done:3") as proc:
        wait_pause(proc, tmp_path / "pauses", "atomic.done:3")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert outputs(out) == {n: reference[n] for n in names[:3]}  # the first three, complete; no temporary
    kept = stamps(out)

    r = subprocess.run(cmd(*args, "-o", out), capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    assert summary_line(r.stderr) == "csrnet: 3 enhanced, 3 skipped (output exists), 0 failed"
    assert outputs(out) == reference  # same files, same bytes, no temporaries left
    assert {n: stamps(out)[n] for n in kept} == kept  # the finished ones were not written again
    assert outputs(src) == before


def test_sigkill_mid_write_leaves_nothing_under_the_final_name(batch, tmp_path) -> None:
    _, reference, args = batch
    first, second = sorted(reference)[:2]
    out = tmp_path / "out"
    with paused_run([*args, "-o", out], tmp_path / "pauses", "atomic.written:2") as proc:
        wait_pause(proc, tmp_path / "pauses", "atomic.written:2")  # 2nd output: temporary complete, not renamed
        pid = proc.pid
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    left = outputs(out)
    assert not (out / second).exists()
    assert left.pop(first) == reference[first]
    [(temporary, _)] = left.items()  # and exactly one other entry: the 2nd output's temporary file
    m = TEMPORARY_NAME.match(temporary)
    assert m and int(m.group(1)) == pid and temporary.startswith(f".{second[:40]}."), temporary

    r = subprocess.run(cmd(*args, "-o", out), capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    assert summary_line(r.stderr) == "csrnet: 5 enhanced, 1 skipped (output exists), 0 failed"
    assert outputs(out) == reference  # the stale temporary is gone


def test_ctrl_c_finishes_the_current_file_and_starts_no_new_one(batch, tmp_path) -> None:
    _, reference, args = batch
    names = sorted(reference)
    out = tmp_path / "out"
    with paused_run([*args, "-o", out], tmp_path / "pauses", "atomic.written:2") as proc:
        wait_pause(proc, tmp_path / "pauses", "atomic.written:2")  # in the middle of writing the 2nd output
        proc.send_signal(signal.SIGINT)
        head = read_stderr_until(proc, STOPPING)
        resume(tmp_path / "pauses", "atomic.written:2")
        _, rest = proc.communicate(timeout=60)
    stderr = head + rest.decode()
    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr and "csrnet: error" not in stderr
    assert summary_line(stderr) == "csrnet: 2 enhanced, 0 skipped (output exists), 0 failed, 4 not started (interrupted)"
    assert outputs(out) == {n: reference[n] for n in names[:2]}  # the 2nd finished, complete; no temporary


def test_second_ctrl_c_aborts_at_once(batch, tmp_path) -> None:
    """Not resumed: the process is held inside the 2nd output's write, so only the abort can end it."""
    _, reference, args = batch
    first = min(reference)
    out = tmp_path / "out"
    with paused_run([*args, "-o", out], tmp_path / "pauses", "atomic.written:2") as proc:
        wait_pause(proc, tmp_path / "pauses", "atomic.written:2")
        proc.send_signal(signal.SIGINT)
        head = read_stderr_until(proc, STOPPING)  # the first one was handled: the next one is the second
        proc.send_signal(signal.SIGINT)
        _, rest = proc.communicate(timeout=30)
    stderr = head + rest.decode()
    assert proc.returncode == 1, stderr
    assert stderr.splitlines()[-1] == "csrnet: error: interrupted", stderr
    assert "Traceback" not in stderr and not re.search(r"\d+ enhanced", stderr)
    assert outputs(out) == {first: reference[first]}  # the 2nd output's temporary removed, nothing partial


def test_second_ctrl_c_aborts_at_once_with_parallel_files(batch, tmp_path) -> None:
    """As above with two file workers: the held file is in a worker thread, not the main one, and the
    abort must not wait for it (the pool's shutdown used to join it: 39 s here, until the pause timed out)."""
    _, reference, args = batch
    out = tmp_path / "out"
    parallel = [*args[: args.index("--jobs")], "--jobs", "2", "-o", out]
    with paused_run(parallel, tmp_path / "pauses", "atomic.written:1") as proc:
        wait_pause(proc, tmp_path / "pauses", "atomic.written:1")
        proc.send_signal(signal.SIGINT)
        head = read_stderr_until(proc, STOPPING)
        proc.send_signal(signal.SIGINT)
        _, rest = proc.communicate(timeout=15)
    stderr = head + rest.decode()
    assert proc.returncode == 1 and stderr.splitlines()[-1] == "csrnet: error: interrupted", stderr
    files = outputs(out)
    assert not [n for n in files if n.startswith(".")], files  # the held file's temporary removed by the abort
    assert files == {n: reference[n] for n in files}  # whatever finished is complete


def test_two_processes_on_one_folder(batch, tmp_path) -> None:
    _, reference, args = batch
    out = tmp_path / "out"
    procs = [subprocess.Popen(cmd(*args, "-o", out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 0 and "Traceback" not in err, err
    # each file enhanced by exactly one of them (the loser of a race skips), nothing corrupt
    enhanced = [int(re.search(r"csrnet: (\d+) enhanced", err).group(1)) for _, err in results]
    assert sum(enhanced) == N_PHOTOS, results
    assert outputs(out) == reference


@pytest.mark.torch
def test_killed_training_keeps_the_previous_checkpoint_and_resumes_from_it(shared, tmp_path) -> None:
    """Killed with the 3rd checkpoint in its temporary file: last.pt is the 2nd, complete. Resumed and
    killed again at its 2nd checkpoint: last.pt is iteration 3. Resumed to the end: iteration 6."""
    torch = need_module("torch")
    from csrnet.training import train as train_mod

    pairs = tmp_path / "pairs"
    for sub in ("input", "target"):
        (pairs / sub).mkdir(parents=True)
        for n in ("a4514", "a4553"):
            (pairs / sub / f"{n}.png").symlink_to(shared / "data" / "fivek_pairs" / sub / f"{n}.png")
    run = tmp_path / "run"
    settings = {"iters": 6, "seed": 1, "checkpoint_every": 1, "condition_size": 64, "batch": 2, "pixels": 256, "progress": False}
    code = f"from csrnet.training.train import train; train({str(pairs)!r}, {str(run)!r}, resume=True, **{settings!r})"
    ckpt = run / "checkpoints" / train_mod.CHECKPOINT_NAME

    def iteration() -> int:
        return int(torch.load(ckpt, map_location="cpu", weights_only=True)["iteration"])  # loads: never half-written

    for k, (point, expected) in enumerate([("train.written:3", 2), ("train.written:2", 3)]):
        pauses = tmp_path / f"pauses{k}"
        pauses.mkdir()
        proc = subprocess.Popen([sys.executable, "-c", code], env=pause_environ(pauses, point))
        try:
            assert wait_paused(pauses, point, timeout=120, alive=lambda p=proc: p.poll() is None) == proc.pid
            assert len(list(ckpt.parent.glob(f".{ckpt.name}.{proc.pid}.*.tmp"))) == 1  # the next one, not yet in place
        finally:
            proc.kill()
            proc.wait(timeout=30)
        assert iteration() == expected
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    assert iteration() == settings["iters"]
    assert not list(ckpt.parent.glob(".*.tmp"))  # the killed runs' temporaries removed
