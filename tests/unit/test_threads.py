"""The one thread policy: the default follows the CPUs this process may use; file workers keep the
network on their own thread; the network gives the same numbers on any thread count."""

from __future__ import annotations

import os
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
