"""The local web app (csrnet.web) through FastAPI's TestClient: page, models, enhance, preview, .cube, errors."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import csrnet
from csrnet.cli import main

from tests.conftest import need_module

LOCAL = "http://127.0.0.1:8000"  # the Host the server answers (loopback names only by default)

need_module("fastapi")
need_module("httpx")
create_app = need_module("csrnet.web.app").create_app
with warnings.catch_warnings():  # starlette >= 1.x nudges from httpx towards httpx2; both work
    warnings.simplefilter("ignore")
    TestClient = need_module("fastapi.testclient").TestClient

MAKE = 0x010F


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app(), base_url=LOCAL)


def _pixels(w: int = 96, h: int = 64, seed: int = 0) -> np.ndarray:
    """A smooth, somewhat dark colour field: the model has something to correct."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([x / w, y / h, 0.5 * (x + y) / (w + h)], -1) * 150 + 20
    return np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)


def _jpeg_with_exif(w: int = 96, h: int = 64) -> bytes:
    exif = Image.Exif()
    exif[MAKE] = "csrnet-test-camera"
    buf = io.BytesIO()
    Image.fromarray(_pixels(w, h), "RGB").save(buf, "JPEG", quality=92, exif=exif.tobytes())
    return buf.getvalue()


def _png(w: int = 96, h: int = 64) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(_pixels(w, h, seed=1), "RGB").save(buf, "PNG")
    return buf.getvalue()


def _post(client: TestClient, url: str, name: str, data: bytes, **fields):
    return client.post(url, files={"file": (name, data, "application/octet-stream")}, data={k: str(v) for k, v in fields.items()})


def _assert_one_line_error(r, status: int) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and "\n" not in body["error"] and "Traceback" not in body["error"]
    return body["error"]


def test_page_is_self_contained(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert 'src="/static/app.js"' in r.text and 'href="/static/style.css"' in r.text
    assets = [client.get("/static/app.js"), client.get("/static/style.css")]
    assert [a.status_code for a in assets] == [200, 200]
    assert assets[0].headers["content-type"].startswith(("text/javascript", "application/javascript"))
    page = r.text + "".join(a.text for a in assets)
    for part in ('type="file"', 'id="model"', 'type="range"', 'max="2"', 'value="1"', 'id="format"',
                 ">Enhance<", ">Download<", ">Export .cube<", "/api/enhance", "/api/lut", "/api/models", "dragover"):
        assert part in page, part
    assert "://" not in page  # no CDN, no external font: loads offline


def test_models_lists_bundled(client):
    r = client.get("/api/models")
    assert r.status_code == 200
    by_name = {m["name"]: m for m in r.json()}
    auto = by_name["auto"]
    assert auto["arch"] == "csrnet-hist" and auto["parameters"] == 40137 and auto["default"] and auto["description"]
    assert set(by_name) == set(csrnet.list_models())


def test_enhance_jpeg_equals_cli_and_keeps_exif(client, tmp_path):
    # larger than the 500-px condition copy, so the copy's decoding path shows in the bytes
    data = _jpeg_with_exif(1200, 800)
    r = _post(client, "/api/enhance", "holiday.jpg", data, strength=0.8)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/jpeg"
    assert r.headers["content-disposition"] == 'attachment; filename="holiday_csrnet.jpg"'
    with Image.open(io.BytesIO(r.content)) as im:
        assert im.format == "JPEG" and im.size == (1200, 800)
        assert im.getexif()[MAKE] == "csrnet-test-camera"
    # the same photo and settings through `csrnet enhance`: the same code path, the same bytes
    (tmp_path / "holiday.jpg").write_bytes(data)
    res = CliRunner().invoke(main, ["enhance", str(tmp_path / "holiday.jpg"), "-s", "0.8"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "holiday_csrnet.jpg").read_bytes() == r.content


def test_strength_zero_png_is_the_input(client):
    data = _png()
    r = _post(client, "/api/enhance", "flat.png", data, strength=0)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB")), _pixels(seed=1))
    full = _post(client, "/api/enhance", "flat.png", data, strength=1)
    assert not np.array_equal(np.asarray(Image.open(io.BytesIO(full.content))), _pixels(seed=1))


def _large_png() -> tuple[np.ndarray, bytes]:
    """The bundled underexposed example at 1280 x 854 (1.09 MP): over exact mode's 1 MP, so the lattice runs."""
    from pathlib import Path

    im = Image.open(Path(__file__).resolve().parents[2] / "examples" / "cathedral_underexposed.jpg").convert("RGB")
    pixels = np.asarray(im.resize((1280, 854), Image.Resampling.BICUBIC))
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG", compress_level=1)
    return pixels, buf.getvalue()


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255**2 / mse))


def test_enhance_strength_half_on_the_lattice_path_matches_exact_half(client):
    pixels, data = _large_png()
    r = _post(client, "/api/enhance", "big.png", data, strength=0.5)
    assert r.status_code == 200, r.text
    got = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB"))
    assert "strength 0.5" in r.headers["x-csrnet-settings"] and "mode lattice" in r.headers["x-csrnet-settings"]
    assert _psnr(got, csrnet.enhance(pixels, "auto", strength=0.5, exact=True)) >= 60  # measured 67.6 dB
    assert _psnr(got, csrnet.enhance(pixels, "auto", exact=True)) < 30  # measured 26.4 dB: not full strength


def test_lut_export_strength_half_matches_exact_half(client, tmp_path):
    from csrnet.io.cube import read_cube
    from csrnet.kernels.lut import apply_lut_uint

    pixels, data = _large_png()
    r = _post(client, "/api/lut", "big.png", data, strength=0.5)
    assert r.status_code == 200, r.text
    (tmp_path / "half.cube").write_bytes(r.content)
    cube = read_cube(tmp_path / "half.cube")
    got = apply_lut_uint(pixels, cube.table, cube.size)
    assert _psnr(got, csrnet.enhance(pixels, "auto", strength=0.5, exact=True)) >= 60  # measured 65.4 dB
    assert _psnr(got, csrnet.enhance(pixels, "auto", exact=True)) < 30


def test_output_formats(client):
    r = _post(client, "/api/enhance", "shot.jpg", _jpeg_with_exif(), format="png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.headers["content-disposition"].endswith('filename="shot_csrnet.png"')
    with Image.open(io.BytesIO(r.content)) as im:
        assert im.format == "PNG" and im.size == (96, 64)
    r = _post(client, "/api/enhance", "shot.jpg", _jpeg_with_exif(), format="tif")
    assert r.status_code == 200 and r.headers["content-type"] == "image/tiff"
    assert Image.open(io.BytesIO(r.content)).size == (96, 64)


def test_preview_is_smaller_and_close_to_full(client):
    data = _png(600, 400)
    r = _post(client, "/api/enhance", "wide.png", data, preview=300, format="png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    small = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB"), np.float32)
    assert small.shape == (200, 300, 3)
    full = Image.open(io.BytesIO(_post(client, "/api/enhance", "wide.png", data).content)).convert("RGB")
    assert full.size == (600, 400)

    def shrunk(im: Image.Image) -> np.ndarray:
        return np.asarray(im.resize((300, 200), Image.Resampling.BILINEAR, reducing_gap=3.0), np.float32)

    # the preview shows the look of the full-resolution result (the condition network sees
    # a 256-px copy either way), which differs clearly from the input
    assert np.abs(shrunk(full) - small).mean() < 1.5
    assert np.abs(shrunk(Image.fromarray(_pixels(600, 400, seed=1))) - small).mean() > 4


def test_jpeg_preview_is_the_full_photos_look_on_a_small_copy(client):
    data = _jpeg_with_exif(1200, 800)
    r = _post(client, "/api/enhance", "wide.jpg", data, preview=300, format="png")
    assert r.status_code == 200, r.text
    small = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB"))
    assert small.shape == (200, 300, 3)
    from csrnet.kernels.resize import downscale

    pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    # the preview is the look the full-size download gets (condition from the whole photo), on a small copy
    assert np.array_equal(small, csrnet.enhance(pixels, "auto", long_edge=300))
    shrunk = np.clip(downscale(pixels, 300) * 255 + 0.5, 0, 255).astype(np.uint8)
    full_then_small = np.clip(downscale(csrnet.enhance(pixels, "auto"), 300) * 255 + 0.5, 0, 255).astype(np.int16)
    assert np.abs(small.astype(np.int16) - full_then_small).mean() < 1.5  # as the download would look, shrunk
    assert shrunk.shape == small.shape


def test_bad_uploads_and_parameters(client):
    good = _png()
    msg = _assert_one_line_error(_post(client, "/api/enhance", "broken.jpg", b"\xff\xd8\xff\xe0 not really a jpeg"), 400)
    assert msg.startswith("broken.jpg:") and "/tmp" not in msg  # names the upload, not the server's temp file
    _assert_one_line_error(_post(client, "/api/enhance", "notes.txt", b"hello, this is text\n"), 400)
    _assert_one_line_error(_post(client, "/api/enhance", "empty.png", b""), 400)
    assert "unknown model" in _assert_one_line_error(_post(client, "/api/enhance", "a.png", good, model="nope"), 400)
    # a request cannot make the server open a file by naming it as a model
    _assert_one_line_error(_post(client, "/api/enhance", "a.png", good, model="/etc/passwd"), 400)
    assert "strength" in _assert_one_line_error(_post(client, "/api/enhance", "a.png", good, strength=3), 400)
    assert "strength" in _assert_one_line_error(_post(client, "/api/enhance", "a.png", good, strength="lots"), 400)
    assert "format" in _assert_one_line_error(_post(client, "/api/enhance", "a.png", good, format="gif"), 400)
    assert "quality" in _assert_one_line_error(_post(client, "/api/enhance", "a.png", good, quality=0), 400)
    assert "preview" in _assert_one_line_error(_post(client, "/api/enhance", "a.png", good, preview=2), 400)
    assert "file" in _assert_one_line_error(client.post("/api/enhance", data={"strength": "1"}), 400)
    assert "size" in _assert_one_line_error(_post(client, "/api/lut", "a.png", good, size=20), 400)


def test_too_large():
    data = _png()
    small_uploads = TestClient(create_app(max_upload_bytes=len(data) // 2), base_url=LOCAL)
    assert "too large" in _assert_one_line_error(_post(small_uploads, "/api/enhance", "a.png", data), 413)

    def chunks():  # no Content-Length: the body is counted as it streams in
        boundary = b"csrnetboundary"
        yield b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
        for i in range(0, len(data), 1000):
            yield data[i:i + 1000]
        yield b"\r\n--" + boundary + b"--\r\n"

    r = small_uploads.post("/api/enhance", content=chunks(), headers={"Content-Type": "multipart/form-data; boundary=csrnetboundary"})
    assert "too large" in _assert_one_line_error(r, 413)
    few_pixels = TestClient(create_app(max_pixels=1000), base_url=LOCAL)
    assert "over the limit" in _assert_one_line_error(_post(few_pixels, "/api/enhance", "a.png", data), 413)


def test_lut_export_is_the_cli_cube(client, tmp_path):
    from csrnet.io.cube import read_cube
    from csrnet.looks import export_look

    data = _jpeg_with_exif(1200, 800)  # over the condition copy's 500 px
    r = _post(client, "/api/lut", "look.jpg", data, size=17, strength=0.7)
    assert r.status_code == 200, r.text
    assert r.headers["content-disposition"] == 'attachment; filename="look_csrnet.cube"'
    (tmp_path / "got.cube").write_bytes(r.content)
    cube = read_cube(tmp_path / "got.cube")
    assert cube.size == 17 and cube.table.shape == (17**3, 3)
    (tmp_path / "look.jpg").write_bytes(data)
    export_look(tmp_path / "look.jpg", tmp_path / "cli.cube", "auto", size=17, strength=0.7)
    assert (tmp_path / "cli.cube").read_bytes() == r.content
    # the look `csrnet enhance` applies to this JPEG (decoded to an array, float condition copy)
    pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    table = np.clip(csrnet.bake_lut(pixels, "auto", 17, strength=0.7, fit=True), 0, 1).reshape(-1, 3)
    np.testing.assert_allclose(cube.table, table, atol=1e-6)
    msg = _assert_one_line_error(_post(client, "/api/lut", "look.jpg", data, model="csrnet-l-gradfilter"), 400)
    assert "no single 3D LUT" in msg


def test_default_model_from_a_file(tmp_path):
    path = csrnet.weights.bundled_dir() / "auto.safetensors"
    c = TestClient(create_app(str(path)), base_url=LOCAL)
    models = c.get("/api/models").json()
    assert models[0]["name"] == str(path) and models[0]["default"] and not models[0]["bundled"]
    assert _post(c, "/api/enhance", "a.png", _png()).status_code == 200


def test_cli_web_command(monkeypatch, tmp_path):
    runner = CliRunner()
    res = runner.invoke(main, ["web", "--help"])
    assert res.exit_code == 0 and "--port" in res.output and "--host" in res.output and "127.0.0.1" in res.output
    res = runner.invoke(main, ["web", "--model", str(tmp_path / "absent.safetensors")])  # fails before serving
    assert res.exit_code == 2 and "absent.safetensors" in res.output
    monkeypatch.setitem(sys.modules, "fastapi", None)  # as if the web extra were not installed
    monkeypatch.delitem(sys.modules, "csrnet.web.app")
    res = runner.invoke(main, ["web"])
    assert res.exit_code == 2 and 'pip install "csrnet-retouch[web]"' in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_web_module_does_not_import_torch():
    code = "import sys, json, csrnet.web; csrnet.web.create_app(); print(json.dumps('torch' in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) is False
