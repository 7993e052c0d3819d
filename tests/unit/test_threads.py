"""The one thread policy: the default follows the CPUs this process may use; file workers keep the
network on their own thread; the network gives the same numbers on any thread count."""

from __future__ import annotations

import os
import threading
import time
import subprocess
import sys

import numpy as np
import pytest

import csrnet
from csrnet import threads


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this platform")
def test_default_threads_follow_cpu_affinity():
    code = "import os, csrnet.threads as t; os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]}); print(t.default_threads())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"
    assert threads.default_threads() == len(os.sched_getaffinity(0))
    assert threads.resolve(None) == threads.default_threads() and threads.resolve(3) == 3


def test_file_workers_run_the_network_on_their_own_thread():
    seen = []

    def probe(_):
        with threads.network_threads(4) as n:
            seen.append(n)

    with threads.network_threads(4) as n:
        assert n == 4  # the main thread: BLAS limited, the network may use csrnet's pool
    with threads.parallel_files(2) as pool:
        list(pool.map(probe, range(4)))
    assert seen == [1, 1, 1, 1]


def test_csrnet_l_exact_same_on_any_thread_count():
    model = csrnet.load_model("csrnet-l-clarity")
    x = (np.random.default_rng(1).random((300, 700, 3)) * 255).astype(np.uint8)
    one = csrnet.enhance(x, model, exact=True, threads=1)
    assert np.array_equal(csrnet.enhance(x, model, exact=True, threads=3), one)


def _nice() -> int:
    """The calling thread's nice value."""
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.skipif(not hasattr(os, "setpriority") or not hasattr(threading, "get_native_id"),
                    reason="per-thread priorities are a Linux feature this platform lacks")
def test_lower_priority_lowers_only_the_calling_thread_and_is_inherited():
    """The web app's photo workers: their thread (and threads it starts) get a higher nice value; the
    thread that answers light requests keeps its own."""
    from csrnet.threads import lower_priority

    before, seen = _nice(), {}

    def child() -> None:
        seen["child"] = _nice()

    def worker() -> None:
        lower_priority(5)
        seen["worker"] = _nice()
        t = threading.Thread(target=child)
        t.start()
        t.join()

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen == {"worker": min(19, before + 5), "child": min(19, before + 5)}
    assert _nice() == before


@pytest.mark.skipif(not hasattr(os, "setpriority") or not hasattr(threading, "get_native_id"),
                    reason="per-thread priorities are a Linux feature this platform lacks")
def test_kernel_blocks_run_at_the_callers_priority_whichever_pool_came_first():
    """The web app's photo workers lower their priority; the kernels' blocks they start must run at
    that priority even when a normal-priority caller made the kept pool first (and vice versa)."""
    from csrnet.threads import lower_priority, run_blocks

    def blocks__nice() -> set[int]:
        seen: set[int] = set()
        lock = threading.Lock()

        def work(_: int) -> None:
            with lock:
                seen.add(_nice())
            time.sleep(0.01)  # so several pool threads take part

        run_blocks(work, range(8), 3)
        return seen

    before = _nice()
    assert blocks__nice() == {before}  # the normal pool exists from here on
    low: dict[str, set[int]] = {}

    def worker() -> None:
        lower_priority(4)
        low["blocks"] = blocks__nice()

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert low["blocks"] == {min(19, before + 4)}
    assert blocks__nice() == {before}  # the normal pool was not lowered by the low caller
