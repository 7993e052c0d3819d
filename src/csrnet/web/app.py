"""A local web app over the Python API: ``csrnet web`` serves one page and three JSON/file endpoints.

- ``GET /``: the page (``static/index.html``, ``app.js``, ``style.css``: package data, no network):
  choose or drop a photo, pick a model,
  strength and output format, see before/after, download the full-resolution result or the
  photo's look as a ``.cube`` LUT.
- ``GET /api/models``: the models the page can use (bundled ones, plus the server's default).
- ``GET /api/formats``: the output formats csrnet writes (from :mod:`csrnet.io.formats`' table).
- ``POST /api/enhance`` (multipart: file, model, strength, format, quality, preview): the photo
  retouched exactly as ``csrnet enhance`` does it (:func:`csrnet.io.formats.read_photo` ->
  :func:`csrnet.enhance` -> :func:`csrnet.io.formats.write_photo`, so EXIF, ICC, 16-bit and RAW
  are handled alike and the bytes equal the CLI's); ``preview=N`` first shrinks the photo to
  an N-px long edge (the page's quick preview).
- ``POST /api/lut`` (multipart: file, model, strength, size): the photo's look as a ``.cube``
  file, the same text ``csrnet lut PHOTO -o LOOK.cube`` writes.

Errors are JSON ``{"error": "<one line>"}``: 400 for a bad photo, model or parameter, 413 for
an upload over the byte limit or a photo over ``max_pixels``, 500 (one line, details in the
server log) for anything unexpected. The CPU work runs in worker threads (at most ``jobs`` at
once), so the server keeps answering. Only bundled models and the server's default model can
be chosen by a request (a request cannot make the server open an arbitrary file).
This module never imports torch.
"""

from __future__ import annotations

import logging
import math
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..batch import enhancer, retouch_file
from ..errors import CsrnetError, MissingDependencyError, TooLargeError
from ..io.formats import FORMATS, default_output, detect_format, media_type, output_formats
from ..io.photo import DEFAULT_MAX_PIXELS
from ..looks import look_text
from ..threads import file_workers, lower_priority
from ..weights import list_models, load_model
from .guards import LOOPBACK_HOSTS, OriginCheck, PixelBudget, UploadLimit, release_memory

__all__ = ["DEFAULT_MAX_UPLOAD_BYTES", "LUT_SIZES", "create_app"]

#: Largest request body accepted (bytes); larger uploads get 413.
DEFAULT_MAX_UPLOAD_BYTES = 200 * 1024 * 1024
LUT_SIZES = (17, 33, 65)
STATIC = Path(__file__).with_name("static")
_log = logging.getLogger("csrnet.web")


class _HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _one_line(text: str, limit: int = 400) -> str:
    """``text`` as one printable line of at most ``limit`` characters."""
    line = " ".join("".join(c if c.isprintable() else " " for c in str(text)).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": _one_line(message) or "error"}, status_code=status)


def _safe_name(filename: str | None) -> str:
    """The upload's base name without folders, control characters or quotes; ``photo`` if nothing is left;
    at most 200 bytes in UTF-8 (so a download name with its suffix stays within 255 bytes)."""
    name = re.split(r"[\\/]", filename or "")[-1]
    name = "".join(c for c in name if c.isprintable() and c not in '"<>|*?:').strip().lstrip(".")
    stem, ext = (name[: -len(Path(name).suffix)], Path(name).suffix) if len(Path(name).suffix) <= 9 else (name, "")
    room = 200 - len(ext.encode())
    stem = stem.encode()[:room].decode("utf-8", "ignore")
    return (stem + ext) if stem else (("photo" + ext) if ext else "photo")


def _disposition(name: str) -> str:
    """A Content-Disposition header for a download named ``name`` (RFC 6266, UTF-8 names via filename*)."""
    ascii_name = name.encode("ascii", "replace").decode("ascii").replace("?", "_")
    if ascii_name == name:
        return f'attachment; filename="{name}"'
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"


def create_app(
    default_model: str = "auto",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    *,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    jobs: int | None = None,
    pixel_budget: int | None = None,
    allowed_hosts: list[str] | None = None,
) -> FastAPI:
    """The web app: ``default_model`` (bundled name or weights file) is loaded now, so a bad one fails at start.

    ``max_pixels`` refuses larger photos from their header (as ``csrnet enhance --max-pixels``);
    ``max_upload_bytes`` caps the request body; at most ``jobs`` photos are processed at once, and
    at most ``pixel_budget`` pixels (default: ``max_pixels``) are decoded at once, so memory follows
    the photos' sizes, not their count. ``allowed_hosts``: the Host headers served (default: the
    loopback names; DNS rebinding protection) — cross-site POSTs (an ``Origin`` of another host)
    are refused, and no CORS headers are ever sent.
    """
    _require_form_parser()
    models: dict[str, Any] = {}  # name -> Model, loaded once
    models_lock = threading.Lock()
    # Photo jobs run on their own threads, at a lower CPU priority (their kernels run on a kept pool of that priority: csrnet.threads),
    # so the event loop answering light requests (/api/models, the page) gets a core at once.
    photo_workers = ThreadPoolExecutor(max(1, file_workers() if jobs is None else jobs),
                                       thread_name_prefix="csrnet-web-photo", initializer=lower_priority)
    budget = PixelBudget(pixel_budget or max_pixels)
    hosts = list(allowed_hosts or LOOPBACK_HOSTS)

    def get_model(name: str):
        if name != default_model and name not in list_models():
            known = ", ".join(dict.fromkeys([default_model, *list_models()]))
            raise _HttpError(400, f"unknown model {name!r} (choose one of: {known})")
        with models_lock:
            if name not in models:
                models[name] = load_model(name)
            return models[name]

    get_model(default_model)

    app = FastAPI(title="csrnet", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(UploadLimit, limit=max_upload_bytes)
    app.add_middleware(OriginCheck, allowed_hosts=hosts)
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    app.add_middleware(TrustedHostMiddleware, allowed_hosts=hosts)  # outermost: a foreign Host is refused first

    @app.exception_handler(RequestValidationError)
    async def _invalid(request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors()[:3]:
            where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "form"))
            parts.append(f"{where}: {err.get('msg', 'invalid')}" if where else str(err.get("msg", "invalid")))
        return _error(400, "; ".join(parts) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request, exc: Exception) -> JSONResponse:  # last resort; endpoints catch their own
        _log.error("unexpected error", exc_info=exc)
        return _error(500, f"unexpected {type(exc).__name__} (see the server log)")

    def guarded(work: Callable[[], Response], *, heavy: bool = True) -> Response:
        """Run ``work`` (in a job slot when ``heavy``: light requests never queue behind photos);
        turn every failure into a one-line JSON error."""
        try:
            if not heavy:
                return work()
            return photo_workers.submit(work).result()  # waits in FastAPI's thread, runs in a photo worker
        except _HttpError as e:
            return _error(e.status, str(e))
        except CsrnetError as e:
            return _error(413 if isinstance(e, TooLargeError) else 400, str(e))
        except MemoryError:
            return _error(413, "out of memory: the photo is too large for this server")
        except Exception as e:  # noqa: BLE001 -- a bug or a decoder crash: one line to the page, details to the log
            _log.error("unexpected error", exc_info=e)
            first = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
            return _error(500, f"unexpected {type(e).__name__}" + (f": {first}" if first else "") + " (see the server log)")

    @contextmanager
    def uploaded(file: UploadFile) -> Iterator[tuple[Path, str]]:
        """The upload as a file in a temporary folder (kept suffix: RAW is told by it) and its display name.

        Error messages that name the temporary file name the uploaded file instead.
        """
        name = _safe_name(file.filename)
        suffix = Path(name).suffix.lower()
        suffix = suffix if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) else ""
        with tempfile.TemporaryDirectory(prefix="csrnet-web-") as tmp:
            src = Path(tmp) / f"upload{suffix}"
            with open(src, "wb") as f:
                file.file.seek(0)
                shutil.copyfileobj(file.file, f, 1 << 20)
            if src.stat().st_size == 0:
                raise _HttpError(400, f"{name}: empty upload")
            try:
                with budget.reserve(src) as pixels:  # decoding waits while other photos hold the pixel budget
                    try:
                        yield src, name
                    finally:
                        release_memory(pixels)
            except CsrnetError as e:
                raise type(e)(str(e).replace(str(src), name).replace(tmp, "")) from None  # same type: same status

    def check_strength(strength: float) -> float:
        if not math.isfinite(strength) or not 0.0 <= strength <= 2.0:
            raise _HttpError(400, f"strength must be between 0 and 2, got {strength:g}")
        return float(strength)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    async def one_file(request: Request) -> None:
        """Exactly one ``file`` field (a second one would be silently ignored)."""
        form = await request.form()
        if len(form.getlist("file")) > 1:
            raise StarletteHTTPException(400, "one photo per request: the form has several 'file' fields")

    @app.api_route("/", methods=["GET", "HEAD"])
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")

    def model_list() -> list[dict[str, Any]]:
        out = []
        for name in dict.fromkeys([default_model, *list_models()]):
            m = get_model(name)
            out.append({
                "name": name,
                "arch": m.arch,
                "description": m.description,
                "parameters": m.num_parameters,
                "bundled": name in list_models(),
                "default": name == default_model,
            })
        return out

    listing = model_list()  # every model loaded once, now: the light endpoint answers from memory

    @app.api_route("/api/models", methods=["GET", "HEAD"])
    async def api_models() -> Response:
        # async: served on the event loop itself, never waiting for a worker thread busy with photos
        return JSONResponse(listing)

    @app.api_route("/api/formats", methods=["GET", "HEAD"])
    async def api_formats() -> Response:
        """The output formats (from the format table): the page's Format menu."""
        return JSONResponse([{"key": f.key, "name": f.name, "extension": f.extension, "mime": f.mime, "depths": list(f.depths)}
                             for f in FORMATS if f.key in output_formats()])

    @app.post("/api/enhance", dependencies=[Depends(one_file)])
    def api_enhance(
        file: Annotated[UploadFile, File()],
        model: Annotated[str, Form()] = default_model,
        strength: Annotated[float, Form()] = 1.0,
        format: Annotated[str | None, Form()] = None,
        quality: Annotated[int, Form()] = 95,
        preview: Annotated[int | None, Form()] = None,
        long_edge: Annotated[int | None, Form()] = None,
    ) -> Response:
        def work() -> Response:
            s = check_strength(strength)
            fmt = _output_format(format)
            if not 1 <= quality <= 100:
                raise _HttpError(400, f"quality must be between 1 and 100, got {quality}")
            edge = preview if preview is not None else long_edge
            if edge is not None and not 16 <= edge <= 16384:
                raise _HttpError(400, f"preview/long_edge must be a long edge between 16 and 16384 px, got {edge}")
            net = get_model(model)
            retouch = enhancer(net, strength=s, long_edge=edge)  # what `csrnet enhance [--long-edge N]` does
            with uploaded(file) as (src, name):
                out_fmt = default_output(_content_name(src, name), fmt)  # the format from the content, not the name
                dst_name = _download_name(name, out_fmt)
                dst = retouch_file(src, src.with_name("out" + out_fmt.extension), retouch, fmt=out_fmt.key,
                                   quality=quality, max_pixels=max_pixels)
                data = dst.read_bytes()
            return Response(data, media_type=media_type(dst),
                            headers={"Content-Disposition": _disposition(dst_name), "X-Csrnet-Settings": retouch.mark})

        return guarded(work)

    @app.post("/api/lut", dependencies=[Depends(one_file)])
    def api_lut(
        file: Annotated[UploadFile, File()],
        model: Annotated[str, Form()] = default_model,
        strength: Annotated[float, Form()] = 1.0,
        size: Annotated[int, Form()] = 33,
    ) -> Response:
        def work() -> Response:
            s = check_strength(strength)
            if size not in LUT_SIZES:
                raise _HttpError(400, f"size must be one of {', '.join(map(str, LUT_SIZES))}, got {size}")
            net = get_model(model)
            with uploaded(file) as (src, name):
                text = look_text(src, name, net, size=size, strength=s, max_pixels=max_pixels)  # `csrnet lut`'s file
            return Response(text.encode("ascii", "replace"), media_type="text/plain; charset=us-ascii",
                            headers={"Content-Disposition": _disposition(f"{Path(name).stem}_csrnet.cube"),
                                     "X-Csrnet-Settings": enhancer(net, strength=s).mark})

        return guarded(work)

    return app


def _require_form_parser() -> None:
    """FastAPI's form parser is imported per request; check for it when the app is made instead."""
    try:
        import python_multipart  # noqa: F401
    except ImportError:  # python-multipart < 0.0.13
        try:
            import multipart  # noqa: F401
        except ImportError:
            raise MissingDependencyError('the web app needs python-multipart: pip install "csrnet-retouch[web]"') from None


def _output_format(requested: str | None) -> str | None:
    """The form's ``format`` as a key of the format table (None: the input's); 400 for an unknown one."""
    text = (requested or "").strip().lower()
    if not text:
        return None
    for fmt in FORMATS:
        if fmt.key in output_formats() and (text == fmt.key or "." + text in fmt.extensions):
            return fmt.key
    raise _HttpError(400, f"format must be one of {', '.join(output_formats())}, got {requested!r}")


def _content_name(src: Path, name: str) -> str:
    """``name`` when its extension matches the file's content, else a name with the content's extension
    (a JPEG uploaded as ``photo.txt`` or without extension comes back as JPEG, not TIFF)."""
    fmt = detect_format(src)
    if fmt is None or Path(name).suffix.lower() in fmt.extensions:
        return name
    return Path(name).stem + fmt.extension


def _download_name(name: str, fmt) -> str:
    """``<stem>_csrnet<ext>``: the upload's extension as spelled when it names the output format."""
    stem, ext = Path(name).stem, Path(name).suffix
    return stem + "_csrnet" + (ext if ext.lower() in fmt.extensions else fmt.extension)
