"""The format table at work: a file's format from its content (the name only for camera RAW), what
read_photo returns and refuses, and where and how write_photo writes (format, quality, overwrite)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from csrnet.errors import OutputExistsError, PhotoError, TooLargeError, UnsupportedFormatError
from csrnet.io import formats
from csrnet.io.formats import default_output, detect_format, input_extensions, output_formats, read_photo, write_photo
from csrnet.io.photo import Photo
from tests.conftest import need_module


def _encoded(fmt: str, size=(12, 8), mode="RGB", **save) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, (10, 200, 30) if mode == "RGB" else 128).save(buf, fmt, **save)
    return buf.getvalue()


def _file(tmp_path, name: str, data: bytes):
    (tmp_path / name).write_bytes(data)
    return tmp_path / name


def _noise(h=32, w=32, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# ---------------------------------------------------------------- detecting
@pytest.mark.parametrize("fmt, key", [("JPEG", "jpg"), ("PNG", "png"), ("TIFF", "tif"), ("WEBP", "webp"), ("BMP", "bmp"), ("GIF", "gif")])
def test_content_decides_whatever_the_name(tmp_path, fmt, key):
    data = _encoded(fmt)
    for name in (f"a.{key}", "a.jpg", "a.png", "a.txt", "noext"):
        assert detect_format(_file(tmp_path, name, data)).key == key, name


def test_raw_is_told_by_its_name_when_the_content_is_tiff_or_unknown(tmp_path):
    tiff = _encoded("TIFF")
    assert detect_format(_file(tmp_path, "a.NEF", tiff)).key == "raw"
    assert detect_format(_file(tmp_path, "b.dng", tiff)).key == "raw"
    assert detect_format(_file(tmp_path, "c.cr3", b"\x00\x00\x00\x18ftypcrx " + bytes(64))).key == "raw"
    assert detect_format(_file(tmp_path, "d.dng", _encoded("PNG"))).key == "png"  # a PNG named .dng is a PNG
    assert detect_format(_file(tmp_path, "e.tif", tiff)).key == "tif"


def test_unknown_empty_or_missing_files_have_no_format(tmp_path):
    assert detect_format(_file(tmp_path, "a.jpg", b"hello, not an image at all")) is None
    assert detect_format(_file(tmp_path, "b.jpg", b"")) is None
    assert detect_format(_file(tmp_path, "c.dng", b"")) is None  # an empty file is no RAW, whatever its name
    assert detect_format(tmp_path / "missing.jpg") is None
    assert detect_format(tmp_path) is None


def test_heif_brands_are_recognised(tmp_path):
    for brand in (b"heic", b"heix", b"mif1", b"hevc", b"heim"):
        assert detect_format(_file(tmp_path, "a.bin", b"\x00\x00\x00\x18ftyp" + brand + bytes(52))).key == "heif"


def test_gif_is_read_when_named_but_not_picked_up_from_folders():
    assert ".gif" not in input_extensions() and ".gif" in input_extensions(with_gif=True)
    assert input_extensions() | {".gif"} == input_extensions(with_gif=True)


def test_read_only_formats_are_no_output_choice():
    assert "bmp" not in output_formats() and "raw" not in output_formats() and "heif" not in output_formats()
    for key in ("bmp", "gif", "raw", "heif", "nope"):
        with pytest.raises(UnsupportedFormatError):
            default_output("a.jpg", key)
    assert default_output("a.gif").key == "tif" and default_output("a.HEIC").key == "jpg"


# ---------------------------------------------------------------- reading
def test_read_photo_reports_the_detected_format(tmp_path):
    for fmt, key in (("JPEG", "jpg"), ("PNG", "png"), ("BMP", "bmp"), ("WEBP", "webp")):
        photo = read_photo(_file(tmp_path, f"x.{key}", _encoded(fmt)))
        assert photo.format == key and photo.size == (12, 8)
    assert read_photo(_file(tmp_path, "png.jpg", _encoded("PNG"))).format == "png"


def test_read_photo_of_an_unlisted_format_pillow_reads(tmp_path):
    photo = read_photo(_file(tmp_path, "a.ppm", _encoded("PPM")))
    assert photo.size == (12, 8) and np.asarray(photo.pixels)[0, 0].tolist() == [10, 200, 30]


def test_read_photo_as_array_gives_uint8_arrays(tmp_path):
    path = _file(tmp_path, "a.png", b"")
    Image.fromarray(_noise()).save(path)
    arr = read_photo(path, as_array=True).pixels
    assert isinstance(arr, np.ndarray) and arr.dtype == np.uint8 and np.array_equal(arr, _noise())
    assert isinstance(read_photo(path).pixels, Image.Image)


def test_read_photo_converts_to_srgb_only_when_asked(tmp_path, adobe_rgb_icc):
    path = _file(tmp_path, "a.png", b"")
    Image.new("RGB", (8, 8), (200, 60, 30)).save(path, icc_profile=adobe_rgb_icc)
    kept = read_photo(path, convert_to_srgb=False)
    assert kept.icc_profile == adobe_rgb_icc and kept.pixels.getpixel((0, 0)) == (200, 60, 30)
    converted = read_photo(path)
    assert converted.icc_profile != adobe_rgb_icc and converted.pixels.getpixel((0, 0)) != (200, 60, 30)


@pytest.mark.parametrize(
    "name, data, match",
    [
        ("empty.jpg", b"", "empty file"),
        ("junk.jpg", b"\x00" * 100, "not an image"),
        ("cut.png", _encoded("PNG", size=(64, 64))[:60], "cannot decode"),
    ],
)
def test_unreadable_files_are_photo_errors(tmp_path, name, data, match):
    with pytest.raises(PhotoError, match=match):
        read_photo(_file(tmp_path, name, data))


def test_missing_files_and_folders_are_photo_errors(tmp_path):
    with pytest.raises(PhotoError, match="no such file"):
        read_photo(tmp_path / "missing.jpg")
    with pytest.raises(PhotoError, match="is a folder"):
        read_photo(tmp_path)


def test_pillows_own_bomb_guard_is_reported_as_too_large(tmp_path, monkeypatch):
    path = _file(tmp_path, "a.bmp", _encoded("BMP", size=(40, 40)))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow refuses at twice its limit, before csrnet's check
    with pytest.raises(TooLargeError, match="image is over the limit of 100 pixels"):
        read_photo(path, max_pixels=100)


# ---------------------------------------------------------------- writing
@pytest.mark.parametrize("key, pil", [("jpg", "JPEG"), ("png", "PNG"), ("tif", "TIFF"), ("webp", "WEBP")])
def test_write_photo_format_argument_beats_the_extension(tmp_path, key, pil):
    out = write_photo(Photo(_noise()), tmp_path / "a.out", format=key)
    assert out == tmp_path / "a.out" and Image.open(out).format == pil
    assert Image.open(write_photo(Photo(Image.fromarray(_noise())), tmp_path / f"b.{key}")).format == pil


def test_write_photo_quality_reaches_the_encoders(tmp_path):
    for key in ("jpg", "webp"):
        low = write_photo(Photo(_noise(64, 64)), tmp_path / f"low.{key}", quality=20)
        high = write_photo(Photo(_noise(64, 64)), tmp_path / f"high.{key}")
        assert low.stat().st_size < high.stat().st_size, key
    pil_low = write_photo(Photo(Image.fromarray(_noise(64, 64))), tmp_path / "pil.jpg", quality=20)
    assert pil_low.read_bytes() == (tmp_path / "low.jpg").read_bytes()


def test_write_photo_pil_and_array_pixels_give_the_same_files(tmp_path):
    for key in ("jpg", "png"):
        a = write_photo(Photo(_noise()), tmp_path / f"a.{key}")
        b = write_photo(Photo(Image.fromarray(_noise())), tmp_path / f"b.{key}")
        assert np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))
        assert Image.open(a).format == Image.open(b).format


def test_write_photo_falls_back_to_pillow_for_jpegs_it_cannot_encode_itself(tmp_path):
    odd_exif = b"II*\x00" + bytes(20)  # EXIF without the "Exif\0\0" header: left to Pillow
    out = write_photo(Photo(_noise(), exif=odd_exif), tmp_path / "a.jpg")
    assert Image.open(out).format == "JPEG" and Image.open(out).size == (32, 32)


def test_write_photo_refuses_unknown_formats_listing_the_writable_ones(tmp_path):
    for path, fmt in ((tmp_path / "a.bmp", None), (tmp_path / "a.xyz", None), (tmp_path / "a.jpg", "gif"), (tmp_path / "a.jpg", "nope")):
        with pytest.raises(UnsupportedFormatError, match=r"\.jpg, \.png, \.tif, \.webp"):
            write_photo(Photo(_noise()), path, format=fmt)
        assert not path.exists()


def test_write_photo_needs_an_existing_folder(tmp_path):
    with pytest.raises(PhotoError, match="does not exist"):
        write_photo(Photo(_noise()), tmp_path / "missing" / "a.png")
    (tmp_path / "file").write_text("x")
    with pytest.raises(PhotoError, match="is not a folder"):
        write_photo(Photo(_noise()), tmp_path / "file" / "a.png")


def test_write_photo_replaces_only_when_asked(tmp_path):
    path = write_photo(Photo(_noise(seed=1)), tmp_path / "a.png")
    with pytest.raises(OutputExistsError):
        write_photo(Photo(_noise(seed=2)), path)
    assert np.array_equal(np.asarray(Image.open(path)), _noise(seed=1))
    write_photo(Photo(_noise(seed=2)), path, overwrite=True)
    assert np.array_equal(np.asarray(Image.open(path)), _noise(seed=2))


def test_every_format_row_is_consistent():
    for f in formats.FORMATS:
        assert f.extension == f.extensions[0] and all(e.startswith(".") and e == e.lower() for e in f.extensions)
        assert (f.writer is None) == (f.key not in output_formats())


def test_heic_is_read_even_before_anything_registered_pillow_heifs_opener(tmp_path, monkeypatch):
    pillow_heif = need_module("pillow_heif")
    pillow_heif.register_heif_opener()
    path = tmp_path / "a.heic"
    Image.new("RGB", (16, 8), (200, 100, 50)).save(path, format="HEIF")
    # a fresh process: Pillow knows no HEIF until csrnet registers the opener
    monkeypatch.setattr(Image, "ID", [i for i in Image.ID if i != "HEIF"])
    monkeypatch.delitem(Image.OPEN, "HEIF")
    photo = read_photo(path)
    assert photo.format == "heif" and photo.size == (16, 8)


def test_raw_files_obey_max_pixels(tmp_path):
    from tests.helpers import write_dng

    path = tmp_path / "a.dng"
    write_dng(path, np.full((64, 96, 3), 0.5, np.float32))
    assert read_photo(path).format == "raw"
    with pytest.raises(TooLargeError):
        read_photo(path, max_pixels=100)


def test_write_photo_default_quality_is_95(tmp_path):
    default = write_photo(Photo(_noise(48, 48)), tmp_path / "d.jpg")
    q95 = write_photo(Photo(_noise(48, 48)), tmp_path / "q.jpg", quality=95)
    assert default.read_bytes() == q95.read_bytes()
