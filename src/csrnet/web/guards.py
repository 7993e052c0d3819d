"""What a localhost server that accepts uploads needs: cross-site protection and a memory budget.

* :data:`LOOPBACK_HOSTS` — the ``Host`` headers served by default (Starlette's TrustedHostMiddleware
  refuses others: a page on another site that re-points its DNS name at 127.0.0.1, "DNS
  rebinding", cannot talk to the server).
* :class:`OriginCheck` — a POST whose ``Origin`` is another site is refused (403): browsers send
  ``Origin`` with cross-site form and fetch requests, so another page cannot make this server
  retouch or read files. No CORS headers are ever sent, so other origins cannot read answers.
* :class:`UploadLimit` — request bodies over the byte limit get 413 (from Content-Length, or counted).
* :class:`PixelBudget` — photos are admitted by their pixel count read from the header (a 731 KB
  single-colour PNG can hold 240 MP), so memory follows the pixels being worked on, not the number
  of requests; :func:`release_memory` hands freed heap back to the OS after large jobs.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from PIL import Image

__all__ = ["LARGE_JOB_PIXELS", "LOOPBACK_HOSTS", "OriginCheck", "PixelBudget", "UploadLimit", "photo_pixels", "release_memory"]

LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "::1", "[::1]"]


class OriginCheck:
    """ASGI middleware: 403 for state-changing requests (POST, PUT, PATCH, DELETE) whose ``Origin``
    header names a host outside ``allowed_hosts`` (or is ``null``). Requests without ``Origin``
    (curl, scripts, the CLI) pass."""

    def __init__(self, app: Any, allowed_hosts: list[str]) -> None:
        self.app = app
        self.allowed = {h.strip("[]").lower() for h in allowed_hosts}

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT", "PATCH", "DELETE"):
            origin = dict(scope.get("headers") or []).get(b"origin")
            if origin is not None and not self._allowed(origin.decode("latin-1")):
                from starlette.responses import JSONResponse

                response = JSONResponse({"error": "cross-site request refused: this server only answers its own page"}, status_code=403)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _allowed(self, origin: str) -> bool:
        if "*" in self.allowed:
            return True
        try:
            host = urlsplit(origin).hostname
        except ValueError:
            return False
        return host is not None and host.lower() in self.allowed


class UploadLimit:
    """ASGI middleware: answer 413 when a request body is over ``limit`` bytes.

    Refused from the Content-Length header when there is one; otherwise the body is
    counted while it streams in and the app's own answer is replaced by the 413.
    """

    class _TooLarge(Exception):
        pass

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    def _message(self) -> str:
        return f"upload too large: the limit is {self.limit / 2**20:.4g} MiB"

    async def _send_413(self, send: Callable) -> None:
        from starlette.responses import JSONResponse

        response = JSONResponse({"error": self._message()}, status_code=413)
        await send({"type": "http.response.start", "status": 413, "headers": response.raw_headers})
        await send({"type": "http.response.body", "body": response.body})

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            await self._send_413(send)
            return
        state = {"received": 0, "over": False, "started": False}

        async def counted_receive() -> dict:
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > self.limit:
                    state["over"] = True
                    raise self._TooLarge
            return message

        async def guarded_send(message: dict) -> None:
            if state["over"]:
                return  # the app's answer to a cut-off body; the 413 goes out instead
            state["started"] = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except self._TooLarge:
            pass
        if state["over"] and not state["started"]:
            await self._send_413(send)


def photo_pixels(path: Path) -> int | None:
    """The pixel count of the photo at ``path`` from its header (Pillow opens lazily, decodes nothing),
    or None when Pillow cannot tell (camera RAW, corrupt files: the reader decides those)."""
    try:
        with Image.open(path) as im:
            return im.width * im.height
    except Exception:  # noqa: BLE001 -- any header Pillow cannot read
        return None


class PixelBudget:
    """A semaphore counted in pixels: :meth:`reserve` waits until the photo's pixels fit beside the
    photos being worked on. A photo larger than the whole budget waits until it has it to itself."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, int(capacity))
        self.used = 0
        self._cond = threading.Condition()

    @contextlib.contextmanager
    def reserve(self, path: Path, default_fraction: float = 0.25) -> Iterator[int]:
        pixels = photo_pixels(path)
        need = min(self.capacity, pixels if pixels is not None else int(self.capacity * default_fraction))
        with self._cond:
            self._cond.wait_for(lambda: self.used + need <= self.capacity)
            self.used += need
        try:
            yield need
        finally:
            with self._cond:
                self.used -= need
                self._cond.notify_all()


_LIBC: Any = None


#: Jobs of at least this many pixels also run a full garbage collection afterwards (see release_memory).
LARGE_JOB_PIXELS = 50_000_000


def release_memory(pixels: int = LARGE_JOB_PIXELS) -> None:
    """Give freed heap pages back to the OS after a job of ``pixels`` pixels (glibc ``malloc_trim``,
    called through ctypes, which drops the GIL; a no-op elsewhere): without it a server that once
    decoded a 240 MP photo keeps holding gigabytes.

    A full ``gc.collect()`` runs only after large jobs (``pixels >= LARGE_JOB_PIXELS``): it holds the
    GIL for tens of milliseconds, and run after every photo it was most of the GIL time under load
    (py-spy: 70 % of GIL samples), which made light requests wait. Pixel arrays are freed by
    reference counting; the collection is for the rare cycle (an exception's traceback) holding one.
    """
    global _LIBC
    if pixels >= LARGE_JOB_PIXELS:
        gc.collect()
    if _LIBC is None:
        name = ctypes.util.find_library("c") if os.name == "posix" else None
        try:
            _LIBC = ctypes.CDLL(name) if name else False
        except OSError:
            _LIBC = False
    if _LIBC and hasattr(_LIBC, "malloc_trim"):
        _LIBC.malloc_trim(0)
