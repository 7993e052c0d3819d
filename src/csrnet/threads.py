"""The one thread policy of csrnet: how many threads, BLAS limits, and the kept worker pool.

Every caller (``csrnet.enhance`` from the API, the CLI batch, the web app) and every
architecture goes through here:

* :func:`default_threads` — the CPUs this process may run on (affinity, not a constant).
* :func:`run_blocks` — runs independent work items (row blocks of a kernel, tiles of the MLP,
  strips of a convolution) on a kept pool; the kernels and numpy release the GIL.
* :func:`network_threads` — entered around the model's matrix products: BLAS on one thread
  (its own spinning threads compete with the lattice kernel for the cores) and the products split
  across csrnet's pool instead.
  OpenBLAS (0.3.31 here) ignores thread-count changes made outside the main thread, so from
  another thread the network runs on that thread alone.
* :func:`parallel_files` — entered by callers that process several files at once (the CLI
  batch): BLAS on one thread for the whole pool (the files themselves fill the cores), and the
  network of each file on its own thread (sharing the pool between files made a folder slower).

The timings behind these choices: bench/results/design_timings.md.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

__all__ = ["default_threads", "file_workers", "lower_priority", "resolve", "run_blocks", "row_blocks", "network_threads",
           "parallel_files"]

_POOLS: dict[tuple[int, int], ThreadPoolExecutor] = {}
_POOLS_PID = 0
_POOLS_LOCK = threading.Lock()
_FILE_WORKERS = threading.local()


def default_threads() -> int:
    """The CPUs this process may use (its affinity mask where the OS has one), at least 1."""
    count = getattr(os, "process_cpu_count", None)  # Python 3.13+
    if count is not None:
        return max(1, count() or 1)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def file_workers() -> int:
    """Files processed at once by default (CLI batch, web app): two, or one on a single CPU. Two files
    overlap one's decode/encode with the other's compute; each file's kernels still use every CPU, and
    more files at once multiply memory (a 24 MP photo holds ~330 MB) without adding cores."""
    return min(2, default_threads())


def lower_priority(niceness: int = 10) -> None:
    """Lower the calling thread's CPU priority by ``niceness`` (Linux: per-thread nice; threads it
    starts later inherit it, and :func:`run_blocks` called from it runs on a kept pool of that
    priority). For a server's photo workers, so the thread answering light requests gets a core at
    once. A no-op where unsupported; raising the priority again would need privileges, so use it on
    dedicated threads."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), min(19, _niceness() + niceness))
    except (AttributeError, OSError):
        pass


def _niceness() -> int:
    """The calling thread's nice value (0 where the platform has no per-thread priorities)."""
    try:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    except (AttributeError, OSError):
        return 0


def resolve(threads: int | None) -> int:
    """``threads`` if given (at least 1), else :func:`default_threads`."""
    return default_threads() if threads is None else max(1, int(threads))


def _pool(threads: int) -> ThreadPoolExecutor:
    """A process-wide pool of ``threads`` threads at the caller's priority, kept between calls
    (starting threads for every call cost a noticeable share of a photo's time:
    bench/results/design_timings.md). One pool per (size, nice value): a low-priority caller (the web
    app's photo workers) never runs its blocks on normal-priority threads, whichever pool was made
    first — the pool's threads are started by a caller of that priority and inherit it. A forked
    child (e.g. a data-loader worker) gets new pools, not its parent's dead threads."""
    global _POOLS_PID
    with _POOLS_LOCK:
        if _POOLS_PID != os.getpid():
            _POOLS.clear()
            _POOLS_PID = os.getpid()
        key = (threads, _niceness())
        pool = _POOLS.get(key)
        if pool is None:
            pool = _POOLS[key] = ThreadPoolExecutor(threads, thread_name_prefix=f"csrnet-{threads}-nice{key[1]}")
        return pool


def run_blocks(work: Callable[[int], object], starts: Iterable[int], threads: int | None) -> None:
    """Call ``work(start)`` for every block start, on ``threads`` threads (None: :func:`default_threads`)
    when there is more than one block. Work items must not call this themselves (the pool would wait
    on itself)."""
    starts = list(starts)
    threads = resolve(threads)
    if threads > 1 and len(starts) > 1:
        list(_pool(threads).map(work, starts))
    else:
        for start in starts:
            work(start)


def row_blocks(rows: int, threads: int | None) -> tuple[int, range]:
    """Rows per block and the block starts: one block per thread (None: :func:`default_threads`)."""
    step = max(1, -(-rows // resolve(threads)))
    return step, range(0, rows, step)


@contextmanager
def network_threads(threads: int) -> Iterator[int]:
    """Around a model's matrix products: yields how many of csrnet's threads they may use.

    From the main thread (outside :func:`parallel_files`): BLAS is held to one thread inside and
    ``threads`` is yielded; the limits before come back on leaving. From any other thread: 1
    (nothing is changed; see the module docstring).
    """
    if getattr(_FILE_WORKERS, "active", False) or threading.current_thread() is not threading.main_thread():
        yield 1
        return
    from threadpoolctl import threadpool_limits  # a fresh scan also finds BLAS libraries loaded late

    with threadpool_limits(limits=1, user_api="blas"):
        yield threads


@contextmanager
def parallel_files(workers: int) -> Iterator[ThreadPoolExecutor]:
    """A pool of ``workers`` threads for processing files in parallel, with every native thread pool
    (BLAS, OpenMP) held to one thread meanwhile; each file's network runs on its worker's thread."""
    from threadpoolctl import threadpool_limits

    def mark() -> None:
        _FILE_WORKERS.active = True

    with threadpool_limits(limits=1):
        pool = ThreadPoolExecutor(workers, initializer=mark)
        try:
            yield pool
        except BaseException:  # Ctrl-C or an error: do not wait for the files in progress
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
