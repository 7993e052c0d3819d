"""csrnet's mark (the EXIF Software tag of its outputs): its text, how it is added to a photo's EXIF
without losing the other tags, and how it is read back (only csrnet's own marks, from any file)."""

from __future__ import annotations

import importlib.metadata

import numpy as np
import pytest
from PIL import Image

from csrnet.io.marks import SOFTWARE_TAG, mark_exif, read_mark, settings_text

MARK = "csrnet 1.2 (model auto@1a2b3c4d, strength 1, mode lattice)"


def _exif(**tags) -> bytes:
    e = Image.Exif()
    for tag, value in tags.items():
        e[int(tag.removeprefix("t"))] = value
    return e.tobytes()


def _loaded(data: bytes) -> Image.Exif:
    e = Image.Exif()
    e.load(data)
    return e


def _jpeg(path, exif: bytes | None = None):
    im = Image.fromarray(np.zeros((8, 8, 3), np.uint8))
    im.save(path, "JPEG", **({"exif": exif} if exif else {}))
    return path


def test_settings_text_names_csrnet_its_version_and_the_settings_in_order():
    version = importlib.metadata.version("csrnet-retouch")
    text = settings_text({"model": "auto@1a2b3c4d", "strength": "0.5", "mode": "lattice"})
    assert text == f"csrnet {version} (model auto@1a2b3c4d, strength 0.5, mode lattice)"
    assert settings_text({}) == f"csrnet {version} ()"


def test_settings_text_from_a_source_tree_says_version_0(monkeypatch):
    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    assert settings_text({"strength": 1}) == "csrnet 0 (strength 1)"


def test_mark_exif_without_exif_holds_the_mark_only():
    e = _loaded(mark_exif(None, MARK))
    assert dict(e) == {SOFTWARE_TAG: MARK}
    assert dict(_loaded(mark_exif(b"", MARK))) == {SOFTWARE_TAG: MARK}


def test_mark_exif_keeps_the_other_tags_and_replaces_the_software():
    src = _exif(t271="Nikon", t272="D850", t274=6, t305="Lightroom")
    e = _loaded(mark_exif(src, MARK))
    assert e[271] == "Nikon" and e[272] == "D850" and e[274] == 6
    assert e[SOFTWARE_TAG] == MARK


def test_mark_exif_replaces_unreadable_exif_by_the_mark():
    for junk in (b"garbage", b"Exif\x00\x00MM\x00*garbage"):  # Pillow raises on the first, reads nothing from the second
        assert dict(_loaded(mark_exif(junk, MARK))) == {SOFTWARE_TAG: MARK}


def test_read_mark_of_a_marked_file(tmp_path):
    path = _jpeg(tmp_path / "a.jpg", mark_exif(_exif(t271="Nikon"), MARK))
    assert read_mark(path) == MARK
    assert read_mark(str(path)) == MARK


def test_read_mark_strips_trailing_nuls(tmp_path):
    path = _jpeg(tmp_path / "a.jpg", _exif(t305=MARK + "\x00\x00"))
    assert read_mark(path) == MARK


def test_read_mark_returns_the_text_as_written(tmp_path):
    for text in ("csrnet 2.0 (look X)", "csrnet 2.0 XX", "csrnet 0 ()"):
        assert read_mark(_jpeg(tmp_path / "a.jpg", _exif(t305=text))) == text


def test_read_mark_decodes_byte_strings(tmp_path, monkeypatch):
    path = _jpeg(tmp_path / "a.jpg", _exif(t271="Nikon"))
    real = Image.Image.getexif

    def software_as_bytes(self):
        e = real(self)
        e[SOFTWARE_TAG] = (MARK + " é").encode("latin-1")
        return e

    monkeypatch.setattr(Image.Image, "getexif", software_as_bytes)
    assert read_mark(path) == MARK + " é"


@pytest.mark.parametrize("software", [None, "Adobe Lightroom", "csrnet", "CSRNET 1.0 (x)", "my csrnet 1.0", "\x00csrnet 1.0 (x)"])
def test_files_without_csrnets_mark_have_none(tmp_path, software):
    path = _jpeg(tmp_path / "a.jpg", _exif(t305=software) if software else None)
    assert read_mark(path) is None


def test_non_images_and_missing_files_have_no_mark(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"not an image")
    assert read_mark(tmp_path / "a.jpg") is None
    assert read_mark(tmp_path / "missing.jpg") is None
    assert read_mark(tmp_path) is None


def test_a_hostile_header_never_raises(tmp_path, monkeypatch):
    path = _jpeg(tmp_path / "a.jpg", mark_exif(None, MARK))

    def explode(self):
        raise ZeroDivisionError("crafted header")

    monkeypatch.setattr(Image.Image, "getexif", explode)
    assert read_mark(path) is None
