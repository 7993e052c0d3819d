"""A local web app over the Python API: ``csrnet web`` serves one page and three JSON/file endpoints.

- ``GET /``: the page (inline HTML/CSS/JS, no network): choose or drop a photo, pick a model,
  strength and output format, see before/after, download the full-resolution result or the
  photo's look as a ``.cube`` LUT.
- ``GET /api/models``: the models the page can use (bundled ones, plus the server's default).
- ``POST /api/enhance`` (multipart: file, model, strength, format, quality, preview): the photo
  retouched exactly as ``csrnet enhance`` does it (:func:`csrnet.photo.read_photo` ->
  :func:`csrnet.enhance` -> :func:`csrnet.photo.write_photo`, so EXIF, ICC, 16-bit and RAW
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
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import FastAPI, File, Form, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

try:  # FastAPI's form parser; import it here so a missing package fails at start, not per request
    import python_multipart  # noqa: F401
except ImportError:  # python-multipart < 0.0.13
    import multipart  # noqa: F401

from .errors import CsrnetError
from .photo import DEFAULT_MAX_PIXELS

__all__ = ["DEFAULT_MAX_UPLOAD_BYTES", "LUT_SIZES", "create_app"]

#: Largest request body accepted (bytes); larger uploads get 413.
DEFAULT_MAX_UPLOAD_BYTES = 200 * 1024 * 1024
LUT_SIZES = (17, 33, 65)
_MEDIA_TYPES = {".jpg": "image/jpeg", ".png": "image/png", ".tif": "image/tiff"}
_FORMAT_ALIASES = {"jpg": "jpg", "jpeg": "jpg", "png": "png", "tif": "tif", "tiff": "tif"}
_OVER_PIXEL_LIMIT = "pixels is over the limit of"  # csrnet.photo's message for the max-pixels guard
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
    """The upload's base name without folders, control characters or quotes; ``photo`` if nothing is left."""
    name = re.split(r"[\\/]", filename or "")[-1]
    name = "".join(c for c in name if c.isprintable() and c not in '"<>|*?:').strip().lstrip(".")
    return name[:200] or "photo"


def _disposition(name: str) -> str:
    """A Content-Disposition header for a download named ``name`` (RFC 6266, UTF-8 names via filename*)."""
    ascii_name = name.encode("ascii", "replace").decode("ascii").replace("?", "_")
    if ascii_name == name:
        return f'attachment; filename="{name}"'
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"


class _UploadLimit:
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
        response = _error(413, self._message())
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


def create_app(
    default_model: str = "auto",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    *,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    jobs: int = 2,
) -> FastAPI:
    """The web app: ``default_model`` (bundled name or weights file) is loaded now, so a bad one fails at start.

    ``max_pixels`` refuses larger photos from their header (as ``csrnet enhance --max-pixels``);
    ``max_upload_bytes`` caps the request body; ``jobs`` photos are processed at once.
    """
    from .weights import list_models, load_model

    models: dict[str, Any] = {}  # name -> Model, loaded once
    models_lock = threading.Lock()
    work_slots = threading.BoundedSemaphore(max(1, jobs))

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
    app.add_middleware(_UploadLimit, limit=max_upload_bytes)

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

    def guarded(work: Callable[[], Response]) -> Response:
        """Run ``work`` in a job slot; turn every failure into a one-line JSON error."""
        try:
            with work_slots:
                return work()
        except _HttpError as e:
            return _error(e.status, str(e))
        except CsrnetError as e:
            return _error(413 if _OVER_PIXEL_LIMIT in str(e) else 400, str(e))
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
                yield src, name
            except CsrnetError as e:
                raise CsrnetError(str(e).replace(str(src), name).replace(tmp, "")) from None

    def check_strength(strength: float) -> float:
        if not math.isfinite(strength) or not 0.0 <= strength <= 2.0:
            raise _HttpError(400, f"strength must be between 0 and 2, got {strength:g}")
        return float(strength)

    @app.get("/", response_class=HTMLResponse)
    def page() -> HTMLResponse:
        return HTMLResponse(_PAGE.replace("__DEFAULT_MODEL__", _html_escape(default_model)))

    @app.get("/api/models")
    def api_models() -> Response:
        def work() -> Response:
            names = list(dict.fromkeys([default_model, *list_models()]))
            out = []
            for name in names:
                m = get_model(name)
                out.append({
                    "name": name,
                    "arch": m.arch,
                    "description": m.description,
                    "parameters": m.num_parameters,
                    "bundled": name in list_models(),
                    "default": name == default_model,
                })
            return JSONResponse(out)

        return guarded(work)

    @app.post("/api/enhance")
    def api_enhance(
        file: Annotated[UploadFile, File()],
        model: Annotated[str, Form()] = default_model,
        strength: Annotated[float, Form()] = 1.0,
        format: Annotated[str | None, Form()] = None,
        quality: Annotated[int, Form()] = 95,
        preview: Annotated[int | None, Form()] = None,
    ) -> Response:
        def work() -> Response:
            from .batch import output_path
            from .engine import downscale, enhance
            from .photo import read_photo, write_photo

            s = check_strength(strength)
            fmt = _FORMAT_ALIASES.get((format or "").strip().lower()) if (format or "").strip() else None
            if (format or "").strip() and fmt is None:
                raise _HttpError(400, f"format must be jpg, png or tif, got {format!r}")
            if not 1 <= quality <= 100:
                raise _HttpError(400, f"quality must be between 1 and 100, got {quality}")
            if preview is not None and not 16 <= preview <= 8192:
                raise _HttpError(400, f"preview must be a long edge between 16 and 8192 px, got {preview}")
            net = get_model(model)
            with uploaded(file) as (src, name):
                photo = read_photo(src, max_pixels=max_pixels, jpeg_array=True)  # as the CLI reads it
                if preview is not None and max(photo.size) > preview:
                    photo = photo.with_pixels(_shrink(photo.pixels, preview, downscale))
                    photo.alpha = None  # a preview shows colours only
                out = enhance(photo.pixels, net, strength=s)
                dst_name = output_path(Path(name), Path(), None, suffix="_csrnet", fmt=fmt).name
                dst = src.with_name("out" + Path(dst_name).suffix)
                write_photo(photo.with_pixels(out), dst, format=fmt, quality=quality)
                data = dst.read_bytes()
            return Response(data, media_type=_MEDIA_TYPES.get(dst.suffix, "application/octet-stream"),
                            headers={"Content-Disposition": _disposition(dst_name)})

        return guarded(work)

    @app.post("/api/lut")
    def api_lut(
        file: Annotated[UploadFile, File()],
        model: Annotated[str, Form()] = default_model,
        strength: Annotated[float, Form()] = 1.0,
        size: Annotated[int, Form()] = 33,
    ) -> Response:
        def work() -> Response:
            from .cube import format_cube
            from .engine import bake_lut
            from .photo import read_photo

            s = check_strength(strength)
            if size not in LUT_SIZES:
                raise _HttpError(400, f"size must be one of {', '.join(map(str, LUT_SIZES))}, got {size}")
            net = get_model(model)
            with uploaded(file) as (src, name):
                photo = read_photo(src, max_pixels=max_pixels, jpeg_array=True)  # as `csrnet lut` reads it
                table = bake_lut(photo.pixels, net, size, strength=s, fit=True)
            # the title csrnet.cube.export_look writes, so the file equals `csrnet lut`'s
            model_name = net.meta.get("name")
            title = f"csrnet look of {name}" + (f", model {model_name}" if model_name else "") + (f", strength {s:g}" if s != 1.0 else "")
            text = format_cube(table, size, title=title)
            return Response(text.encode("ascii", "replace"), media_type="text/plain; charset=us-ascii",
                            headers={"Content-Disposition": _disposition(f"{Path(name).stem}_csrnet.cube")})

        return guarded(work)

    return app


def _shrink(pixels: Any, long_edge: int, downscale: Callable) -> Any:
    """``pixels`` (RGB PIL image, (H, W, 3) uint8 or uint16 array) with its long edge cut to ``long_edge``, same type."""
    import numpy as np
    from PIL import Image

    small = downscale(pixels, long_edge)  # float32 [0, 1], csrnet's own antialiased resize
    if isinstance(pixels, Image.Image):
        return Image.fromarray(np.clip(small * 255.0 + 0.5, 0, 255).astype(np.uint8), "RGB")
    top = float(np.iinfo(pixels.dtype).max)
    return np.clip(small * top + 0.5, 0, top).astype(pixels.dtype)


def _html_escape(text: str) -> str:
    import html

    return html.escape(text, quote=True)


_PAGE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>csrnet — photo retouching</title>
<style>
  :root { font-family: system-ui, sans-serif; color: #222; background: #f4f4f2; }
  body { margin: 0 auto; max-width: 1400px; padding: 1rem 1.5rem; }
  h1 { font-size: 1.3rem; margin: 0 0 .8rem; }
  form { display: flex; flex-wrap: wrap; gap: .8rem 1.4rem; align-items: center; }
  label { display: flex; gap: .4rem; align-items: center; }
  #drop { border: 2px dashed #999; border-radius: 8px; padding: .8rem 1.2rem; background: #fff; cursor: pointer; }
  #drop.over { border-color: #2a6; background: #eefbf2; }
  button { font: inherit; padding: .35rem .9rem; border-radius: 6px; border: 1px solid #777; background: #fff; cursor: pointer; }
  button.primary { background: #2a6; color: #fff; border-color: #2a6; }
  button:disabled { opacity: .5; cursor: default; }
  #strength { width: 12rem; }
  #status { min-height: 1.3em; margin: .7rem 0 0; color: #555; }
  #error { min-height: 1.3em; margin: .2rem 0; color: #b00; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
  #view { display: grid; grid-template-columns: 1fr 1fr; gap: 1rem; margin-top: .5rem; }
  figure { margin: 0; }
  figcaption { font-size: .9rem; color: #555; margin-bottom: .3rem; }
  canvas { max-width: 100%; height: auto; background: #ddd; display: block; }
  .note { font-size: .8rem; color: #666; margin-top: 1rem; }
</style>
</head>
<body>
<h1>csrnet — learned photo retouching</h1>
<form id="form" onsubmit="return false">
  <label id="drop" for="file"><span id="dropText">Choose a photo or drop it here</span>
    <input id="file" name="file" type="file" accept="image/*,.dng,.cr2,.cr3,.nef,.arw,.raf,.orf,.rw2,.pef,.heic,.heif,.tif,.tiff" hidden></label>
  <label>Model <select id="model" name="model"><option value="__DEFAULT_MODEL__">__DEFAULT_MODEL__</option></select></label>
  <label>Strength <input id="strength" name="strength" type="range" min="0" max="1.5" step="0.01" value="1">
    <output id="strengthValue">1.00</output></label>
  <label>Format <select id="format" name="format">
    <option value="">same as input</option><option value="jpg">JPEG</option><option value="png">PNG</option><option value="tif">TIFF</option></select></label>
  <label>LUT size <select id="lutSize"><option>17</option><option selected>33</option><option>65</option></select></label>
  <button id="enhance" class="primary" type="button" disabled>Enhance</button>
  <button id="download" type="button" disabled>Download</button>
  <button id="cube" type="button" disabled>Export .cube</button>
</form>
<p id="status"></p>
<p id="error" role="alert"></p>
<div id="view">
  <figure><figcaption>Before</figcaption><canvas id="before" width="0" height="0"></canvas></figure>
  <figure><figcaption>After (strength <span id="afterStrength">1.00</span>)</figcaption><canvas id="after" width="0" height="0"></canvas></figure>
</div>
<p class="note">Everything runs on this computer. The preview is a smaller copy; moving the strength slider
blends it in the browser, <i>before + s·(after − before)</i>, which is how strength works. Above 1 the
blend extrapolates from the clipped preview, so very bright or dark areas can differ a little from the
download, which is computed on the server at full resolution with the chosen strength.</p>
<script>
"use strict";
const PREVIEW = 1200;
const $ = (id) => document.getElementById(id);
let photo = null, beforeData = null, enhancedData = null, pending = false;

function setError(msg) { $("error").textContent = msg ? String(msg).split("\n")[0] : ""; }
function setStatus(msg) { $("status").textContent = msg || ""; }
function busy(on) {
  pending = on;
  for (const id of ["enhance", "download", "cube"]) $(id).disabled = on || !photo;
}

async function post(url, fields) {
  const body = new FormData();
  body.append("file", photo, photo.name);
  for (const [k, v] of Object.entries(fields)) if (v !== null && v !== "") body.append(k, v);
  let res;
  try { res = await fetch(url, { method: "POST", body }); }
  catch (e) { throw new Error("cannot reach the csrnet server (is `csrnet web` still running?)"); }
  if (!res.ok) {
    let msg = res.status + " " + res.statusText;
    try { msg = (await res.json()).error || msg; } catch (e) {}
    throw new Error(msg);
  }
  return res;
}

function fileName(res, fallback) {
  const cd = res.headers.get("Content-Disposition") || "";
  let m = /filename\*=UTF-8''([^;]+)/i.exec(cd);
  if (m) return decodeURIComponent(m[1]);
  m = /filename="([^"]*)"/i.exec(cd);
  return m ? m[1] : fallback;
}

async function toImageData(blob) {
  const url = URL.createObjectURL(blob);
  try {
    const img = new Image();
    img.src = url;
    await img.decode();
    const c = document.createElement("canvas");
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    const ctx = c.getContext("2d");
    ctx.drawImage(img, 0, 0);
    return ctx.getImageData(0, 0, c.width, c.height);
  } finally { URL.revokeObjectURL(url); }
}

function show(canvas, data) {
  canvas.width = data.width; canvas.height = data.height;
  canvas.getContext("2d").putImageData(data, 0, 0);
}

let frame = 0;
function blend() {
  frame = 0;
  const s = parseFloat($("strength").value);
  $("strengthValue").textContent = $("afterStrength").textContent = s.toFixed(2);
  if (!beforeData || !enhancedData || beforeData.width !== enhancedData.width || beforeData.height !== enhancedData.height) return;
  const b = beforeData.data, e = enhancedData.data;
  const out = new ImageData(beforeData.width, beforeData.height);
  const o = out.data;  // Uint8ClampedArray: rounds and clips to 0..255
  for (let i = 0; i < b.length; i += 4) {
    o[i] = b[i] + s * (e[i] - b[i]);
    o[i + 1] = b[i + 1] + s * (e[i + 1] - b[i + 1]);
    o[i + 2] = b[i + 2] + s * (e[i + 2] - b[i + 2]);
    o[i + 3] = 255;
  }
  show($("after"), out);
}

async function choose(file) {
  if (!file || pending) return;
  photo = file; beforeData = enhancedData = null;
  $("dropText").textContent = file.name;
  setError(""); busy(true); setStatus("Reading " + file.name + " …");
  for (const id of ["before", "after"]) { $(id).width = 0; $(id).height = 0; }
  try {
    const res = await post("/api/enhance", { model: $("model").value, strength: 0, preview: PREVIEW, format: "jpg", quality: 92 });
    beforeData = await toImageData(await res.blob());
    show($("before"), beforeData);
    setStatus(file.name + ": " + "press Enhance");
  } catch (e) { setError(e.message); setStatus(""); }
  busy(false);
}

async function enhancePreview() {
  if (!photo || pending) return;
  setError(""); busy(true); setStatus("Enhancing preview …");
  try {
    const t = performance.now();
    const res = await post("/api/enhance", { model: $("model").value, strength: 1, preview: PREVIEW, format: "jpg", quality: 92 });
    enhancedData = await toImageData(await res.blob());
    blend();
    setStatus("Preview ready in " + Math.round(performance.now() - t) + " ms; move the strength slider, then Download.");
  } catch (e) { setError(e.message); setStatus(""); }
  busy(false);
}

async function save(url, fields, fallback, what) {
  if (!photo || pending) return;
  setError(""); busy(true); setStatus(what + " …");
  try {
    const t = performance.now();
    const res = await post(url, fields);
    const blob = await res.blob();
    const name = fileName(res, fallback);
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob); a.download = name;
    document.body.appendChild(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    setStatus("Saved " + name + " (" + (blob.size / 1e6).toFixed(2) + " MB, " + Math.round(performance.now() - t) + " ms)");
  } catch (e) { setError(e.message); setStatus(""); }
  busy(false);
}

$("file").addEventListener("change", (e) => choose(e.target.files[0]));
const drop = $("drop");
for (const ev of ["dragenter", "dragover"]) document.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.add("over"); });
for (const ev of ["dragleave", "drop"]) document.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.remove("over"); });
document.addEventListener("drop", (e) => { if (e.dataTransfer && e.dataTransfer.files.length) choose(e.dataTransfer.files[0]); });
$("strength").addEventListener("input", () => { if (!frame) frame = requestAnimationFrame(blend); });
$("model").addEventListener("change", () => { enhancedData = null; if (photo) enhancePreview(); });
$("enhance").addEventListener("click", enhancePreview);
$("download").addEventListener("click", () => save("/api/enhance",
  { model: $("model").value, strength: $("strength").value, format: $("format").value, quality: 95 }, "photo_csrnet", "Enhancing at full resolution"));
$("cube").addEventListener("click", () => save("/api/lut",
  { model: $("model").value, strength: $("strength").value, size: $("lutSize").value }, "look_csrnet.cube", "Baking the .cube LUT"));

fetch("/api/models").then((r) => r.json()).then((list) => {
  if (!Array.isArray(list)) throw new Error(list.error || "cannot list models");
  const sel = $("model"); sel.innerHTML = "";
  for (const m of list) {
    const o = document.createElement("option");
    o.value = m.name;
    o.textContent = m.name + " (" + m.arch + ", " + m.parameters.toLocaleString() + " params)";
    o.title = m.description; o.selected = !!m.default;
    sel.appendChild(o);
  }
}).catch((e) => setError("models: " + e.message));
</script>
</body>
</html>
"""
