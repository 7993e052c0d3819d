"""EXIF sub-directories (the EXIF IFD and the GPS IFD) survive every output format that carries EXIF
(JPEG, PNG 8/16-bit, TIFF 8/16-bit, WebP), reading back, and `csrnet enhance` from and to TIFF.
README: "EXIF (orientation, camera, date, GPS) ... carried over"."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from csrnet.cli import main
from csrnet.io.formats import read_photo, write_photo
from csrnet.io.photo import Photo, exif_from_tifffile

EXIF_IFD, GPS_IFD = 0x8769, 0x8825
# exposure time, exposure bias (signed), ISO, date taken
SUB = {0x829A: IFDRational(1, 250), 0x9204: IFDRational(-1, 3), 0x8827: 400, 0x9003: "2024:05:01 10:11:12"}
GPS = {0: b"\x02\x02\x00\x00", 1: "N", 2: (48.0, 51.0, 24.24), 3: "E", 4: (2.0, 21.0, 7.5), 6: 35.0}


def _exif() -> bytes:
    e = Image.Exif()
    e[0x0112] = 6
    e[0x010F] = "TestCam"
    e[EXIF_IFD] = SUB
    e[GPS_IFD] = GPS
    return e.tobytes()


def _subdirs_in_file(path) -> tuple[dict, dict]:
    with Image.open(path) as im:
        exif = im.getexif()
        return dict(exif.get_ifd(EXIF_IFD)), dict(exif.get_ifd(GPS_IFD))


def _subdirs_in_bytes(exif: bytes | None) -> tuple[dict, dict]:
    assert exif
    e = Image.Exif()
    e.load(exif)
    return dict(e.get_ifd(EXIF_IFD)), dict(e.get_ifd(GPS_IFD))


def _pixels(dtype) -> np.ndarray:
    px = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    return px.astype(np.uint16) * 257 if dtype == np.uint16 else px


@pytest.mark.parametrize("name, dtype", [("a.jpg", np.uint8), ("a.png", np.uint8), ("a.png", np.uint16),
                                         ("a.tif", np.uint8), ("a.tif", np.uint16), ("a.webp", np.uint8)])
def test_written_file_keeps_exif_and_gps_directories(tmp_path, name, dtype):
    out = write_photo(Photo(_pixels(dtype), exif=_exif()), tmp_path / name)
    sub, gps = _subdirs_in_file(out)
    assert sub == SUB and gps == GPS
    back_sub, back_gps = _subdirs_in_bytes(read_photo(out).exif)  # and csrnet reads them back
    assert back_sub == SUB and back_gps == GPS


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_tiff_gps_directory_reads_back_through_tifffile(tmp_path, dtype):
    """tifffile, an independent reader, finds the GPS directory csrnet's TIFF writer appends; csrnet's
    tifffile-based EXIF reader (float TIFFs, RAWs Pillow cannot open) keeps it too."""
    import tifffile

    out = write_photo(Photo(_pixels(dtype), exif=_exif()), tmp_path / "a.tif")
    with tifffile.TiffFile(out) as tf:
        tags = tf.pages.first.tags
        gps = tags[GPS_IFD].value
        exif = tags[EXIF_IFD].value
    assert gps["GPSLatitudeRef"] == "N" and gps["GPSLongitudeRef"] == "E"
    lat = np.asarray(gps["GPSLatitude"], float).reshape(3, 2)
    assert np.allclose(lat[:, 0] / lat[:, 1], (48, 51, 24.24))
    assert exif["ISOSpeedRatings"] == 400
    sub, gps = _subdirs_in_bytes(exif_from_tifffile(out, None))
    assert gps == GPS and sub == SUB
    # rationals stay rationals (tifffile hands them over as flat (num, den, ...) tuples)
    assert all(isinstance(v, IFDRational) for v in (sub[0x829A], sub[0x9204], gps[6], *gps[2], *gps[4]))


@pytest.mark.parametrize("src_name, fmt", [("in.tif", None), ("in.jpg", "tif"), ("in.tif", "jpg")])
def test_cli_enhance_keeps_gps(tmp_path, src_name, fmt):
    write_photo(Photo(_pixels(np.uint8), exif=_exif()), tmp_path / src_name)
    args = ["enhance", str(tmp_path / src_name), "-o", str(tmp_path / "out")] + (["--format", fmt] if fmt else [])
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    (out,) = (tmp_path / "out").iterdir()
    sub, gps = _subdirs_in_file(out)
    assert gps == GPS and sub == SUB
