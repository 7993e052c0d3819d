"""Atomic file output: a file is either absent or complete, and never replaced unless asked."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from ..errors import OutputExistsError
from ..testpoint import checkpoint

__all__ = ["atomic_write", "remove_open_temporaries", "remove_stale_temporaries", "TEMPORARY_NAME"]

_OPEN: set[Path] = set()  # temporaries being written now, by any thread (remove_open_temporaries)
_OPEN_LOCK = threading.Lock()


def atomic_write(path: Path, write: Callable[[Path], object], *, overwrite: bool = False) -> None:
    """Call ``write(tmp_path)`` then move the finished file to ``path`` in one step.

    The temporary file sits beside ``path`` (same file system) and is removed on any
    failure, so ``path`` is either absent or complete. Without ``overwrite`` the move
    is a hard link, which fails if ``path`` appeared meanwhile (another process), so an
    existing file is never replaced.
    """
    # The name is cut to 40 characters (<= 160 bytes): a full 255-byte name plus the
    # suffix would exceed the file system's limit and make a valid output unwritable.
    tmp = path.with_name(f".{path.name[:40]}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    with _OPEN_LOCK:
        _OPEN.add(tmp)
    try:
        write(tmp)
        checkpoint("atomic.written")  # test-only pause point (csrnet.testpoint); nothing when unset
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise OutputExistsError(f"{path}: exists (use --overwrite to replace it)") from None
            except OSError:  # file systems without hard links: check, then rename
                if path.exists():
                    raise OutputExistsError(f"{path}: exists (use --overwrite to replace it)") from None
                os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        with _OPEN_LOCK:
            _OPEN.discard(tmp)
    checkpoint("atomic.done")


def remove_open_temporaries() -> int:
    """Delete the temporaries other threads are writing right now (for an abort that will not wait
    for them: a second Ctrl-C); returns the count. Their outputs never appear under the final name."""
    with _OPEN_LOCK:
        paths = list(_OPEN)
    removed = 0
    for tmp in paths:
        try:
            tmp.unlink()
            removed += 1
        except OSError:
            pass
    return removed


#: Temporary files of :func:`atomic_write`: ``.<name>.<pid>.<8 hex>.tmp``.
TEMPORARY_NAME = re.compile(r"^\..*\.(\d+)\.[0-9a-f]{8}\.tmp$", re.DOTALL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(folders: Iterable[Path]) -> int:
    """Delete temporary files a killed run left in ``folders`` (their process is gone); returns the count.

    A SIGKILL leaves no chance to clean up, so the next run does it. Files of live
    processes (another csrnet writing to the same folder) and of this process are kept.
    """
    removed = 0
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for e in entries:
            m = TEMPORARY_NAME.match(e.name)
            if m and int(m.group(1)) != os.getpid() and not _alive(int(m.group(1))):
                try:
                    os.unlink(e.path)
                    removed += 1
                except OSError:
                    pass
    return removed
