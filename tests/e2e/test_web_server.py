"""The local server's protections and robustness (issue 17): Host allow-list, Origin check, no CORS,
HEAD, one file per request, download names, content-based formats, the project's pixel limit, and
light endpoints that never queue behind photo jobs."""

from __future__ import annotations

import io
import struct
import threading
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from tests.conftest import need_module

LOCAL = "http://127.0.0.1:8000"


@pytest.fixture(scope="module")
def app():
    need_module("fastapi")
    from csrnet.web.app import create_app

    return create_app(jobs=1)


@pytest.fixture
def client(app):
    from fastapi.testclient import TestClient

    return TestClient(app, base_url=LOCAL)


def _jpeg(w=320, h=200) -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def test_foreign_host_and_origin_are_refused(app, client):
    from fastapi.testclient import TestClient

    evil = TestClient(app, base_url="http://attacker.example")
    assert evil.get("/").status_code == 400  # DNS rebinding: a foreign Host header
    files = {"file": ("a.jpg", _jpeg(), "image/jpeg")}
    r = client.post("/api/enhance", files=files, headers={"Origin": "http://attacker.example"})
    assert r.status_code == 403 and "cross-site" in r.json()["error"]
    assert client.post("/api/enhance", files=files, headers={"Origin": "null"}).status_code == 403
    ok = client.post("/api/enhance", files=files, headers={"Origin": "http://127.0.0.1:8000"})
    assert ok.status_code == 200 and "access-control-allow-origin" not in ok.headers
    pre = client.options("/api/enhance", headers={"Origin": "http://attacker.example", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in pre.headers
    assert client.head("/").status_code == 200 and client.head("/api/models").status_code == 200


def test_one_file_per_request_and_name_caps(client):
    data = _jpeg()
    two = client.post("/api/enhance", files=[("file", ("a.jpg", data, "image/jpeg")), ("file", ("b.jpg", data, "image/jpeg"))])
    assert two.status_code == 400 and "one photo per request" in two.json()["error"]
    long_name = "é" * 300 + ".jpg"
    r = client.post("/api/enhance", files={"file": (long_name, data, "image/jpeg")})
    assert r.status_code == 200
    name = r.headers["content-disposition"].split("filename*=UTF-8''")[1]
    from urllib.parse import unquote

    assert len(unquote(name).encode()) <= 255 and unquote(name).endswith("_csrnet.jpg")


@pytest.mark.parametrize("upload_name, want", [("photo.txt", "photo_csrnet.jpg"), ("photo", "photo_csrnet.jpg"), ("DSC_1.JPG", "DSC_1_csrnet.JPG")])
def test_format_comes_from_the_content(client, upload_name, want):
    r = client.post("/api/enhance", files={"file": (upload_name, _jpeg(), "application/octet-stream")})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/jpeg" and f'filename="{want}"' in r.headers["content-disposition"]
    assert Image.open(io.BytesIO(r.content)).format == "JPEG"
    assert r.headers["x-csrnet-settings"].startswith("csrnet ") and "model auto@" in r.headers["x-csrnet-settings"]


def test_huge_png_gets_413_with_the_projects_message(client):
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)) + chunk(b"IEND", b"")
    r = client.post("/api/enhance", files={"file": ("bomb.png", png, "image/png")})
    assert r.status_code == 413 and "over the limit of 250,000,000 pixels" in r.json()["error"]


def test_models_never_wait_behind_photo_jobs(client):
    """With one job slot busy on a 12 MP photo, /api/models still answers at once."""
    big = _jpeg(4240, 2832)
    done = {}

    def heavy():
        t = time.perf_counter()
        done["status"] = client.post("/api/enhance", files={"file": ("big.jpg", big, "image/jpeg")}).status_code
        done["seconds"] = time.perf_counter() - t

    worker = threading.Thread(target=heavy)
    worker.start()
    time.sleep(0.15)
    waits = []
    while worker.is_alive() and len(waits) < 20:
        t = time.perf_counter()
        assert client.get("/api/models").status_code == 200
        waits.append(time.perf_counter() - t)
    worker.join(120)
    assert done["status"] == 200
    assert waits and max(waits) < max(0.5, done["seconds"] / 2)


# ---------------------------------------------------------------- the defaults: loopback only, 200 MiB uploads
MIB = 2**20


def _declared_upload(client, length: int):
    """A POST whose Content-Length says ``length`` bytes (the body itself is tiny: nothing is allocated)."""
    body = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\nxx\r\n--b--\r\n'
    return client.post("/api/enhance", content=body,
                       headers={"Content-Type": "multipart/form-data; boundary=b", "Content-Length": str(length)})


def test_default_upload_limit_is_200_mib_and_enforced(client):
    from csrnet.web.app import DEFAULT_MAX_UPLOAD_BYTES

    assert DEFAULT_MAX_UPLOAD_BYTES == 200 * MIB
    over = _declared_upload(client, 200 * MIB + 1)  # the app fixture uses create_app's default limit
    assert over.status_code == 413 and over.json()["error"] == "upload too large: the limit is 200 MiB"
    at = _declared_upload(client, 200 * MIB)  # exactly the limit is admitted (then refused as no image: 400)
    assert at.status_code == 400 and "too large" not in at.json()["error"]


def test_csrnet_web_listens_on_loopback_port_8000_with_the_default_limits(monkeypatch):
    """`csrnet web` with no options: uvicorn is asked for 127.0.0.1:8000 (never 0.0.0.0), and the app it
    serves answers loopback Host names only and refuses uploads over 200 MiB."""
    need_module("fastapi")
    import uvicorn
    from click.testing import CliRunner
    from fastapi.testclient import TestClient

    from csrnet import cli

    served = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.update(app=app, **kw))
    monkeypatch.setattr(cli, "_check_port_free", lambda host, port: served.update(checked=(host, port)))
    res = CliRunner().invoke(cli.main, ["web"])
    assert res.exit_code == 0, res.output
    assert served["host"] == "127.0.0.1" and served["port"] == 8000 and served["checked"] == ("127.0.0.1", 8000)
    assert "http://127.0.0.1:8000/" in res.output
    app = served["app"]
    assert TestClient(app, base_url="http://attacker.example").get("/").status_code == 400
    local = TestClient(app, base_url=LOCAL)
    assert local.get("/api/models").status_code == 200
    assert _declared_upload(local, 200 * MIB + 1).status_code == 413
    assert _declared_upload(local, 200 * MIB).status_code == 400
