"""What every csrnet command prints and returns: exit codes, one-line messages, warnings, Ctrl-C."""

from __future__ import annotations

import os
import signal
import sys
import threading

import click

from .io.atomic import remove_open_temporaries

__all__ = ["EXIT_OK", "EXIT_FAILED", "EXIT_USAGE", "abort", "fail", "on_sigint", "one_line", "quiet_library_warnings"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def one_line(text: str) -> str:
    """``text`` safe to print as one line: file-name bytes that are not UTF-8 as ``\\xNN``,
    control characters (a newline in a file name) escaped."""
    try:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def _error_line(message: str) -> None:
    click.echo(f"csrnet: error: {one_line(message)}", err=True)


def fail(message: str, code: int = EXIT_USAGE) -> None:
    _error_line(message)
    sys.exit(code)


def abort(message: str, code: int = EXIT_FAILED) -> None:
    """End the process now (a second Ctrl-C): one error line, the temporaries of files still being
    written removed, and no wait for worker threads (a normal exit would join them, i.e. wait for
    the files in progress)."""
    _error_line(message)
    remove_open_temporaries()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def quiet_library_warnings() -> None:
    """Pillow warns (file:line, on stderr) about corrupt EXIF and the like; the photo is still
    enhanced, and every real problem gets its own one-line message. Our own warnings (e.g. an
    unusable ICC profile) are shown as one "csrnet: warning:" line each."""
    import logging
    import warnings

    warnings.filterwarnings("ignore", module="PIL")
    logging.getLogger("tifffile").setLevel(logging.CRITICAL)  # it logs corrupt-file details besides raising
    warnings.showwarning = lambda message, *args, **kwargs: click.echo(f"csrnet: warning: {one_line(str(message))}", err=True)


def on_sigint(stop: threading.Event):
    """First Ctrl-C: finish the files in progress, start no new one; second: abort now."""

    def handler(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        click.echo("\ncsrnet: stopping after the current file(s) (Ctrl-C again to abort)", err=True)

    return signal.signal(signal.SIGINT, handler) if threading.current_thread() is threading.main_thread() else None
