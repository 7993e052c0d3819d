"""One format table: the CLI's --format choices, the default-output rule, folder scanning and the web
app's media types all come from csrnet.io.formats.FORMATS; WebP output is one row of it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import csrnet
from csrnet.batch import IMAGE_EXTENSIONS, output_path
from csrnet.cli import main
from csrnet.errors import UnsupportedFormatError
from csrnet.io.formats import FORMATS, default_output, format_for_path, input_extensions, media_type, output_formats, read_photo, write_photo
from csrnet.io.photo import Photo, srgb_profile

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def test_derived_lists():
    assert output_formats() == ["jpg", "png", "tif", "webp"]
    enhance_cmd = main.commands["enhance"]
    choices = next(p.type.choices for p in enhance_cmd.params if p.name == "fmt")
    assert list(choices) == output_formats()
    assert IMAGE_EXTENSIONS == input_extensions()
    assert {".jpg", ".jpeg", ".webp", ".heic", ".dng", ".nef"} <= IMAGE_EXTENSIONS and ".gif" not in IMAGE_EXTENSIONS
    for fmt in FORMATS:
        for ext in fmt.extensions:
            assert format_for_path("x" + ext.upper()) is fmt
    assert media_type("a.webp") == "image/webp" and media_type("a.tif") == "image/tiff" and media_type("a.xyz") == "application/octet-stream"


@pytest.mark.parametrize(
    "src, fmt, want",
    [("a.jpeg", None, "a_c.jpeg"), ("a.JPG", None, "a_c.JPG"), ("a.tiff", None, "a_c.tiff"), ("a.webp", None, "a_c.webp"),
     ("a.bmp", None, "a_c.tif"), ("a.heic", None, "a_c.jpg"), ("a.NEF", None, "a_c.tif"), ("a.xyz", None, "a_c.tif"),
     ("a.png", "jpg", "a_c.jpg"), ("a.jpeg", "jpg", "a_c.jpg"), ("a.dng", "webp", "a_c.webp")],
)
def test_default_output_rule(tmp_path, src, fmt, want):
    assert output_path(tmp_path / src, tmp_path, None, suffix="_c", fmt=fmt).name == want


def test_unknown_output_format_is_a_typed_error(tmp_path):
    with pytest.raises(UnsupportedFormatError, match="unknown output format"):
        default_output("a.jpg", "gif")
    photo = Photo(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(UnsupportedFormatError, match="use .jpg, .png, .tif, .webp"):
        write_photo(photo, tmp_path / "a.bmp")


def test_webp_output_keeps_metadata(tmp_path):
    src = tmp_path / "shot.jpg"
    exif = Image.Exif()
    exif[0x0110], exif[0x0112] = "Camera X", 6
    owl = Image.open(EXAMPLES / "gcompris_farm-owl.jpg").convert("RGB").resize((128, 96), Image.Resampling.LANCZOS)
    owl.save(src, quality=92, exif=exif.tobytes(), icc_profile=srgb_profile())
    res = CliRunner().invoke(main, ["enhance", str(src), "--format", "webp", "-q", "90"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "shot_csrnet.webp"
    with Image.open(out) as im:
        assert im.format == "WEBP" and im.size == (128, 96)
        assert im.getexif().get(0x0112) == 6 and im.getexif().get(0x0110) == "Camera X"
        assert im.info.get("icc_profile") == srgb_profile()
    photo = read_photo(out)
    assert photo.format == "webp"
    # a WebP input is written back as WebP by default (the output above is csrnet's own: left alone)
    owl.save(tmp_path / "camera.webp", quality=90)
    res = CliRunner().invoke(main, ["enhance", str(tmp_path / "camera.webp"), str(out), "-o", str(tmp_path / "again")])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "again").iterdir()) == ["camera.webp"]
    want = csrnet.enhance(np.asarray(Image.open(src).convert("RGB")), "auto").astype(float)
    got = np.asarray(Image.open(out).convert("RGB")).astype(float)
    assert 10 * np.log10(255**2 / np.mean((got - want) ** 2)) > 30  # lossy WebP at quality 90


def test_webp_keeps_alpha(tmp_path):
    rgba = np.zeros((32, 48, 4), np.uint8)
    rgba[..., :3] = 120
    rgba[..., 3] = np.linspace(0, 255, 48, dtype=np.uint8)[None]
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    photo = read_photo(tmp_path / "a.png")
    write_photo(photo.with_pixels(csrnet.enhance(photo.pixels, "auto")), tmp_path / "a.webp", quality=100)
    with Image.open(tmp_path / "a.webp") as im:
        assert im.mode == "RGBA"
        assert np.abs(np.asarray(im)[..., 3].astype(int) - rgba[..., 3]).max() <= 2
