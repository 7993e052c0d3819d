"""Test-only pause points: a test stops a csrnet process at a named point and kills or interrupts it there.

Nothing here is for users. The crash tests (tests/e2e/test_crash.py) need csrnet killed at a known
state ("3 outputs finished", "the 2nd output's temporary file written, not yet renamed") instead of
at a moment that depends on how fast photos go by. The code calls :func:`checkpoint` at a few named
points; it returns at once unless the environment variable ``CSRNET_TEST_PAUSE`` (read once, at
import) names that point:

``CSRNET_TEST_PAUSE="atomic.written:2"``
    the 2nd time this process passes ``atomic.written`` it pauses (several: ``"a:1,b:3"``);
``CSRNET_TEST_PAUSE_DIR=/some/folder``
    where it says so and waits (required with ``CSRNET_TEST_PAUSE``);
``CSRNET_TEST_PAUSE_TIMEOUT=300``
    seconds it waits at most before going on (so a forgotten process never hangs for ever).

Pausing creates ``<dir>/<name>-<n>.<pid>.paused`` and waits (in short sleeps, which Ctrl-C handlers
interrupt as usual) until ``<dir>/<name>-<n>.resume`` exists. The test side of that protocol is
:func:`pause_environ`, :func:`wait_paused` and :func:`resume`.

Points (each counted per process, across threads):

``atomic.written``
    :func:`csrnet.io.atomic.atomic_write`: the temporary file is complete, the final name not yet taken;
``atomic.done``
    :func:`csrnet.io.atomic.atomic_write`: the output is under its final name, the temporary gone;
``ray.row``
    :func:`csrnet.distributed.enhance_collection` (the driver): a manifest row was received and added;
``train.written``
    the training checkpoint's temporary file is complete and synced, ``last.pt`` not yet replaced.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

__all__ = ["PAUSE", "PAUSE_DIR", "PAUSE_TIMEOUT", "checkpoint", "pause_environ", "resume", "wait_paused"]

PAUSE, PAUSE_DIR, PAUSE_TIMEOUT = "CSRNET_TEST_PAUSE", "CSRNET_TEST_PAUSE_DIR", "CSRNET_TEST_PAUSE_TIMEOUT"


def _parse(spec: str) -> dict[str, int]:
    """``"a:1,b:3"`` -> ``{"a": 1, "b": 3}``; empty -> ``{}``."""
    plan: dict[str, int] = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        name, sep, count = item.rpartition(":")
        if not sep or not name or not count.isdigit() or int(count) < 1:
            raise ValueError(f"{PAUSE}={spec!r}: expected NAME:N[,NAME:N...] with N >= 1")
        plan[name] = int(count)
    return plan


_PLAN: dict[str, int] = _parse(os.environ.get(PAUSE, ""))
_SEEN: dict[str, int] = {}
_LOCK = threading.Lock()


def checkpoint(name: str) -> None:
    """Mark that this process passed point ``name``; pause there if ``CSRNET_TEST_PAUSE`` asks to.

    Costs one dictionary lookup on an empty dictionary when the variable is unset.
    """
    if name not in _PLAN:
        return
    with _LOCK:
        _SEEN[name] = n = _SEEN.get(name, 0) + 1
    if n == _PLAN[name]:
        _pause(name, n)


def _pause(name: str, n: int) -> None:
    """Announce the pause at the ``n``-th pass of ``name`` and wait for the test to resume it (or kill it)."""
    folder = os.environ.get(PAUSE_DIR)
    if not folder:
        raise RuntimeError(f"{PAUSE} is set but {PAUSE_DIR} is not")
    Path(folder, f"{name}-{n}.{os.getpid()}.paused").touch()
    go = Path(folder, f"{name}-{n}.resume")
    deadline = time.monotonic() + float(os.environ.get(PAUSE_TIMEOUT, "300"))
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.01)


# ---------------------------------------------------------------- the test's side of the protocol
def pause_environ(folder: Path, *points: str, timeout: float = 300.0, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a process that pauses at each of ``points`` (``"name:n"``), announcing in ``folder``."""
    env = dict(os.environ if base is None else base)
    env.update({PAUSE: ",".join(points), PAUSE_DIR: str(folder), PAUSE_TIMEOUT: f"{timeout:g}"})
    return env


def wait_paused(folder: Path, point: str, *, timeout: float = 120.0, alive: Callable[[], bool] = lambda: True) -> int:
    """Wait until a process announced its pause at ``point`` (``"name:n"``) in ``folder``; returns its PID.

    Raises ``TimeoutError`` after ``timeout`` seconds and ``RuntimeError`` as soon as ``alive()`` is false
    (the process ended without reaching the point).
    """
    name, _, n = point.rpartition(":")
    deadline = time.monotonic() + timeout
    while True:
        found = sorted(Path(folder).glob(f"{name}-{n}.*.paused"))
        if found:
            return int(found[0].name.rsplit(".", 2)[1])
        if not alive():
            raise RuntimeError(f"the process ended before reaching {point}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"no process paused at {point} within {timeout:g} s")
        time.sleep(0.01)


def resume(folder: Path, point: str) -> None:
    """Let every process paused (or still to pause) at ``point`` (``"name:n"``) go on."""
    name, _, n = point.rpartition(":")
    Path(folder, f"{name}-{n}.resume").touch()
