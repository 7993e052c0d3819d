"""Atomic outputs: a file is absent or complete, never replaced unless asked, and the temporaries a
killed run leaves behind are recognised and cleaned up by the next run (only those of dead processes)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import csrnet.testpoint as testpoint
from csrnet.errors import OutputExistsError
from csrnet.io.atomic import TEMPORARY_NAME, atomic_write, remove_stale_temporaries


def _writer(text: str, seen: list | None = None):
    def write(tmp):
        if seen is not None:
            seen.append(tmp)
        tmp.write_text(text)

    return write


def test_new_file_is_written_and_no_temporary_is_left(tmp_path):
    seen: list = []
    atomic_write(tmp_path / "out.txt", _writer("new", seen))
    assert (tmp_path / "out.txt").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
    tmp = seen[0]
    assert tmp.parent == tmp_path and TEMPORARY_NAME.match(tmp.name)  # the next run can recognise it
    assert int(TEMPORARY_NAME.match(tmp.name).group(1)) == os.getpid()


def test_existing_file_is_kept_by_default(tmp_path):
    (tmp_path / "out.txt").write_text("old")
    with pytest.raises(OutputExistsError):
        atomic_write(tmp_path / "out.txt", _writer("new"))
    assert (tmp_path / "out.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_existing_file_is_replaced_with_overwrite(tmp_path):
    (tmp_path / "out.txt").write_text("old")
    atomic_write(tmp_path / "out.txt", _writer("new"), overwrite=True)
    assert (tmp_path / "out.txt").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_without_hard_links_an_existing_file_is_still_kept(tmp_path, monkeypatch):
    def no_links(src, dst):
        raise PermissionError("hard links not supported")

    monkeypatch.setattr(os, "link", no_links)
    atomic_write(tmp_path / "a.txt", _writer("new"))
    assert (tmp_path / "a.txt").read_text() == "new"
    with pytest.raises(OutputExistsError):
        atomic_write(tmp_path / "a.txt", _writer("other"))
    assert (tmp_path / "a.txt").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_failed_write_leaves_nothing(tmp_path):
    def fail(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "out.txt", fail)
    assert list(tmp_path.iterdir()) == []


def test_longest_file_name_is_writable(tmp_path):
    name = "é" * 125 + ".jpg"  # 254 bytes in UTF-8: the temporary's name must still fit the 255-byte limit
    atomic_write(tmp_path / name, _writer("x"))
    assert (tmp_path / name).read_text() == "x"


def test_pause_points_see_the_temporary_then_the_output(tmp_path, monkeypatch):
    """The crash tests pause at these points: at atomic.written the temporary is complete and the
    name not yet taken; at atomic.done the output is in place and the temporary gone."""
    states = []

    def pause(name, n):
        states.append((name, n, sorted(p.name.startswith(".") for p in tmp_path.iterdir()), (tmp_path / "out.txt").exists()))

    monkeypatch.setattr(testpoint, "_PLAN", {"atomic.written": 1, "atomic.done": 1})
    monkeypatch.setattr(testpoint, "_SEEN", {})
    monkeypatch.setattr(testpoint, "_pause", pause)
    atomic_write(tmp_path / "out.txt", _writer("new"))
    assert states == [("atomic.written", 1, [True], False), ("atomic.done", 1, [False], True)]


# ---------------------------------------------------------------- stale temporaries
def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _temporary(folder, pid: int, name: str = "photo.jpg"):
    path = folder / f".{name}.{pid}.0123abcd.tmp"
    path.write_text("partial")
    return path


def test_temporaries_of_dead_processes_are_removed_and_counted(tmp_path):
    dead = _dead_pid()
    a, b = _temporary(tmp_path, dead, "a.jpg"), _temporary(tmp_path, dead, "b.png")
    other = tmp_path / "sub"
    other.mkdir()
    c = _temporary(other, dead)
    assert remove_stale_temporaries([tmp_path, other]) == 3
    assert not a.exists() and not b.exists() and not c.exists()
    assert other.is_dir()


def test_temporaries_of_live_processes_and_other_files_are_kept(tmp_path):
    # default signal handling (a parent started with nohup would make it ignore SIGHUP): any signal ends it
    code = "import signal, time; [signal.signal(s, signal.SIG_DFL) for s in (signal.SIGHUP, signal.SIGINT)]; print(flush=True); time.sleep(60)"
    sleeper = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        sleeper.stdout.readline()  # ready
        mine = _temporary(tmp_path, os.getpid())
        theirs = _temporary(tmp_path, sleeper.pid)
        keep = [tmp_path / "photo.jpg", tmp_path / ".photo.jpg.123.tmp", tmp_path / ".photo.jpg.123.0123abcd.tmp.bak"]
        for p in keep:
            p.write_text("x")
        assert remove_stale_temporaries([tmp_path]) == 0
        assert mine.exists() and theirs.exists() and all(p.exists() for p in keep)
        with pytest.raises(subprocess.TimeoutExpired):  # only asked whether it lives, never signalled
            sleeper.wait(timeout=0.3)
    finally:
        sleeper.kill()
        sleeper.wait()


def test_processes_we_may_not_signal_count_as_alive(tmp_path, monkeypatch):
    def not_allowed(pid, sig):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "kill", not_allowed)
    kept = _temporary(tmp_path, 999_999)
    assert remove_stale_temporaries([tmp_path]) == 0
    assert kept.exists()


def test_missing_or_unreadable_folders_are_skipped(tmp_path):
    dead = _dead_pid()
    stale = _temporary(tmp_path, dead)
    assert remove_stale_temporaries([tmp_path / "missing", tmp_path]) == 1
    assert not stale.exists()


# ---------------------------------------------------------------- an abort that does not wait (second Ctrl-C)
def test_open_temporaries_are_removed_and_their_outputs_never_appear(tmp_path):
    from csrnet.io.atomic import remove_open_temporaries

    counts = []

    def write_then_abort(tmp):
        tmp.write_text("half")
        (tmp_path / "not-ours.tmp").write_text("x")
        counts.append(remove_open_temporaries())  # what the Ctrl-C handler does, here mid-write
        counts.append(remove_open_temporaries())  # already gone: nothing more to remove

    with pytest.raises(OSError):
        atomic_write(tmp_path / "out.txt", write_then_abort)
    assert counts == [1, 0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not-ours.tmp"]


def test_finished_writes_are_no_longer_open(tmp_path):
    from csrnet.io.atomic import remove_open_temporaries

    atomic_write(tmp_path / "a.txt", _writer("a"))
    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "b.txt", lambda tmp: (_ for _ in ()).throw(RuntimeError("failed")))
    assert remove_open_temporaries() == 0
    assert (tmp_path / "a.txt").read_text() == "a"


def test_every_open_temporary_is_counted(tmp_path):
    from csrnet.io.atomic import remove_open_temporaries

    counts = []

    def inner(tmp):
        tmp.write_text("b")
        counts.append(remove_open_temporaries())

    def outer(tmp):
        tmp.write_text("a")
        with pytest.raises(OSError):
            atomic_write(tmp_path / "b.txt", inner)

    with pytest.raises(OSError):
        atomic_write(tmp_path / "a.txt", outer)
    assert counts == [2] and list(tmp_path.iterdir()) == []
