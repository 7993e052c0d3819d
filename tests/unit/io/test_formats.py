"""Photographers' formats: 16-bit PNG/TIFF, camera RAW (a generated DNG), HEIC, ICC conversion, EXIF orientation."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import csrnet
from csrnet.cli import main
from csrnet.io.codecs import decode_raw
from csrnet.io.formats import read_photo, write_photo
from csrnet.io.photo import Photo, is_srgb, srgb_profile

from tests.conftest import PHOTOS, need_module
from tests.helpers import write_dng


def _exif(orientation: int = 6, **sub) -> bytes:
    e = Image.Exif()
    e[0x0112] = orientation
    e[0x010F] = "TestCam"
    e[0x8769] = {0x829A: (1, 250), 0x8827: 400}
    return e.tobytes()


def _exif_of(path) -> dict:
    """IFD0 tags of ``path``'s EXIF, with the EXIF sub-directory under 0x8769 (read while the file is open)."""
    with Image.open(path) as im:
        exif = im.getexif()
        tags = dict(exif)
        tags[0x8769] = dict(exif.get_ifd(0x8769))
    return tags


def _photo_u16(shared) -> np.ndarray:
    """A real photo crop as 16-bit (8-bit values spread to 16 bits plus fine detail)."""
    im = Image.open(PHOTOS / "gcompris_animal-bison.jpg").convert("RGB").resize((192, 128), Image.Resampling.LANCZOS)
    return np.asarray(im).astype(np.uint16) * 257


# ---------------------------------------------------------------- 16-bit PNG / TIFF
@pytest.mark.parametrize("ext", ["png", "tif"])
def test_16bit_round_trip_keeps_bits_and_metadata(tmp_path, ext):
    rng = np.random.default_rng(0)
    px = rng.integers(0, 65536, (60, 90, 3), dtype=np.uint16)
    alpha = rng.integers(0, 65536, (60, 90), dtype=np.uint16)
    photo = Photo(px, exif=_exif(6), icc_profile=srgb_profile(), dpi=(300.0, 240.0), alpha=alpha)
    out = write_photo(photo, tmp_path / f"x.{ext}")
    back = read_photo(out)
    assert isinstance(back.pixels, np.ndarray) and back.pixels.dtype == np.uint16
    np.testing.assert_array_equal(back.pixels, px)
    np.testing.assert_array_equal(back.alpha, alpha)
    assert back.icc_profile == srgb_profile()
    assert back.dpi == pytest.approx((300.0, 240.0), abs=0.01)
    exif = _exif_of(out)
    assert exif[0x0112] == 6 and exif[0x010F] == "TestCam"
    assert exif[0x8769][0x8827] == 400  # the EXIF sub-directory survives (TIFF: appended by us)


def test_tiff_orientation_pixels_as_stored(tmp_path, ref_model):
    """Pillow's TIFF reader rotates by the EXIF tag; we must not: the pixels stay, the tag stays."""
    import tifffile

    for dtype, scale in ((np.uint8, 1), (np.uint16, 257)):
        stored = (np.random.default_rng(1).integers(0, 256, (60, 90, 3)) * scale).astype(dtype)
        src = tmp_path / f"o{scale}.tif"
        write_photo(Photo(stored if dtype == np.uint16 else Image.fromarray(stored), exif=_exif(6)), src)
        assert read_photo(src).size == (90, 60)
        out = tmp_path / f"o{scale}_out.tif"
        photo = read_photo(src)
        write_photo(photo.with_pixels(csrnet.enhance(photo.pixels, ref_model)), out)
        assert tifffile.imread(out).shape == (60, 90, 3)
        assert tifffile.imread(out).dtype == dtype
        assert _exif_of(out)[0x0112] == 6


def test_float_tiff_reads_as_16bit_with_its_tags(tmp_path):
    """A 32-bit float RGB TIFF (HDR and scientific tools write them; Pillow cannot open one) is read
    as 16-bit, its camera tags kept, and `csrnet enhance` writes a 16-bit TIFF."""
    import tifffile

    stored = np.random.default_rng(2).random((40, 70, 3), dtype=np.float32)
    src = tmp_path / "hdr.tif"
    tifffile.imwrite(src, stored, photometric="rgb", extratags=[(271, "s", 0, "csrnet-cam", True), (274, "H", 1, 6, True)])
    photo = read_photo(src)
    assert photo.pixels.dtype == np.uint16 and photo.pixels.shape == (40, 70, 3)
    np.testing.assert_array_equal(photo.pixels, (stored * 65535.0 + 0.5).astype(np.uint16))  # [0, 1] to 16 bits, rounded
    tags = Image.Exif()
    tags.load(photo.exif)
    assert tags[271] == "csrnet-cam" and tags[0x0112] == 6
    res = CliRunner().invoke(main, ["enhance", str(src)])
    assert res.exit_code == 0, res.output
    out = tifffile.imread(tmp_path / "hdr_csrnet.tif")
    assert out.dtype == np.uint16 and out.shape == (40, 70, 3)
    assert _exif_of(tmp_path / "hdr_csrnet.tif")[271] == "csrnet-cam"


def test_16bit_fast_path_has_no_8bit_banding(ref_model):
    """A smooth 16-bit gradient through the baked lattice keeps > 4096 distinct levels (8-bit would give <= 256)."""
    ramp = np.arange(65536, dtype=np.uint32).reshape(256, 256)
    img = np.stack([ramp, (ramp * 3 // 4), (ramp // 2)], axis=-1).astype(np.uint16)
    out = csrnet.enhance(img, ref_model, lut_size=65)  # lut_size forces the lattice path on a small image
    assert out.dtype == np.uint16
    for c in range(3):
        assert len(np.unique(out[..., c])) > 4096
    exact = csrnet.enhance(img, ref_model, exact=True).astype(np.float64)
    psnr = 10 * np.log10(65535.0**2 / np.mean((out - exact) ** 2))
    assert psnr > 45


def test_cli_16bit_tiff_stays_16bit(tmp_path, ref_weights, shared):
    import tifffile

    src = tmp_path / "in16.tif"
    write_photo(Photo(_photo_u16(shared), exif=_exif(1), icc_profile=srgb_profile()), src)
    res = CliRunner().invoke(main, ["enhance", str(src), "-m", str(ref_weights)])
    assert res.exit_code == 0, res.output
    out = tifffile.imread(tmp_path / "in16_csrnet.tif")
    assert out.dtype == np.uint16 and out.shape == (128, 192, 3)
    assert len(np.unique(out)) > 1024  # not 8-bit values spread out


# ---------------------------------------------------------------- colour management
def _expected_srgb(adobe: np.ndarray) -> np.ndarray:
    """Adobe RGB encoded [0, 1] -> sRGB encoded [0, 1] by colour-science (independent of our code)."""
    colour = need_module("colour")
    rgb = colour.RGB_to_RGB(adobe, "Adobe RGB (1998)", "sRGB", apply_cctf_decoding=True, apply_cctf_encoding=False)
    return colour.cctf_encoding(np.clip(rgb, 0, 1), function="sRGB")


def _adobe_test_image() -> np.ndarray:
    g = np.linspace(0.0, 1.0, 24)
    r, gg, b = np.meshgrid(g, g * 0.8 + 0.1, g[::-1] * 0.7 + 0.2, indexing="ij")
    return np.stack([r, gg, b], axis=-1).reshape(24, -1, 3)  # (24, 576, 3) in [0, 1]


def test_adobe_rgb_is_converted_to_srgb(tmp_path, adobe_rgb_icc, ref_weights):
    assert not is_srgb(adobe_rgb_icc) and is_srgb(srgb_profile())
    adobe = _adobe_test_image()
    want = _expected_srgb(adobe)
    # 8-bit JPEG-like path (LittleCMS through Pillow's ImageCms)
    src8 = tmp_path / "adobe8.png"
    Image.fromarray(np.round(adobe * 255).astype(np.uint8)).save(src8, icc_profile=adobe_rgb_icc)
    got8 = read_photo(src8)
    assert is_srgb(got8.icc_profile)
    assert np.abs(np.asarray(got8.pixels) / 255.0 - _expected_srgb(np.round(adobe * 255) / 255)).max() < 2.5 / 255
    # 16-bit path (float matrix/TRC, no 8-bit step)
    src16 = tmp_path / "adobe16.tif"
    write_photo(Photo(np.round(adobe * 65535).astype(np.uint16), icc_profile=adobe_rgb_icc), src16)
    got16 = read_photo(src16)
    assert got16.pixels.dtype == np.uint16 and is_srgb(got16.icc_profile)
    assert np.abs(got16.pixels / 65535.0 - want).max() < 2e-3
    # the enhanced output carries an sRGB profile, not the (now wrong) Adobe RGB one
    res = CliRunner().invoke(main, ["enhance", str(src8), str(src16), "-m", str(ref_weights)])
    assert res.exit_code == 0, res.output
    for out in ("adobe8_csrnet.png", "adobe16_csrnet.tif"):
        assert is_srgb(read_photo(tmp_path / out, convert_to_srgb=False).icc_profile)
    # untagged images are taken as sRGB: pixels untouched, no profile invented
    Image.fromarray(np.round(adobe * 255).astype(np.uint8)).save(tmp_path / "plain.png")
    plain = read_photo(tmp_path / "plain.png")
    assert plain.icc_profile is None
    np.testing.assert_array_equal(np.asarray(plain.pixels), np.round(adobe * 255).astype(np.uint8))


# ---------------------------------------------------------------- camera RAW
@pytest.fixture
def dng(tmp_path, shared):
    need_module("rawpy")
    im = Image.open(PHOTOS / "gcompris_animal-bison.jpg").convert("RGB")
    src = np.asarray(im, np.float64)[:192, :256] / 255.0  # a crop at full resolution: a sensor's own sampling
    path = tmp_path / "shot.dng"
    write_dng(path, src, orientation=6)
    return path, src


def test_raw_decodes_to_16bit_srgb_with_camera_wb(dng):
    path, src = dng
    photo = decode_raw(path)
    assert photo.pixels.dtype == np.uint16 and photo.pixels.shape == src.shape  # as stored: not rotated
    assert is_srgb(photo.icc_profile)
    exif = Image.Exif()
    exif.load(photo.exif)
    assert exif[0x0112] == 6 and exif[0x010F] == "TestCam"  # orientation in the tag, camera data kept
    got = photo.pixels[4:-4, 4:-4] / 65535.0  # demosaicing borders aside
    psnr = 10 * np.log10(1.0 / np.mean((got - src[4:-4, 4:-4]) ** 2))
    assert psnr > 28  # the camera white balance and colour matrix undo the simulated sensor (measured 32 dB)
    assert np.abs(got.mean(axis=(0, 1)) - src[4:-4, 4:-4].mean(axis=(0, 1))).max() < 0.02  # no colour cast, no auto-brighten


def test_raw_enhance_round_trip_via_cli(dng, ref_weights, ref_model):
    import tifffile

    path, src = dng
    res = CliRunner().invoke(main, ["enhance", str(path), "-m", str(ref_weights)])
    assert res.exit_code == 0, res.output
    out = path.with_name("shot_csrnet.tif")  # RAW -> 16-bit TIFF by default
    got = tifffile.imread(out)
    assert got.dtype == np.uint16 and got.shape == src.shape
    np.testing.assert_array_equal(got, csrnet.enhance(decode_raw(path).pixels, ref_model))
    assert _exif_of(out)[0x0112] == 6 and is_srgb(read_photo(out, convert_to_srgb=False).icc_profile)
    res = CliRunner().invoke(main, ["enhance", str(path), "-m", str(ref_weights), "--format", "jpg"])
    assert res.exit_code == 0, res.output
    with Image.open(path.with_name("shot_csrnet.jpg")) as im:
        assert im.size == (256, 192) and im.getexif()[0x0112] == 6


def test_bad_raw_is_one_line_error(tmp_path):
    need_module("rawpy")
    bad = tmp_path / "broken.nef"
    bad.write_bytes(b"not a raw file at all" * 10)
    with pytest.raises(csrnet.CsrnetError) as e:
        read_photo(bad)
    assert "broken.nef" in str(e.value) and "\n" not in str(e.value)


# ---------------------------------------------------------------- HEIC
def test_heic_in_jpeg_out(tmp_path, ref_weights):
    heif = need_module("pillow_heif")
    heif.register_heif_opener()
    rng = np.random.default_rng(3)
    arr = np.clip(rng.normal(128, 40, (64, 96, 3)), 0, 255).astype(np.uint8)
    e = Image.Exif()
    e[0x010F] = "Phone"
    src = tmp_path / "IMG_0001.HEIC"
    Image.fromarray(arr).save(src, format="HEIF", quality=95, exif=e.tobytes(), icc_profile=srgb_profile())
    photo = read_photo(src)
    assert photo.format == "heif" and photo.size == (96, 64)
    res = CliRunner().invoke(main, ["enhance", str(tmp_path), "-m", str(ref_weights)])  # found in a folder
    assert res.exit_code == 0, res.output
    out = tmp_path / "IMG_0001_csrnet.jpg"  # HEIC -> JPEG by default
    with Image.open(out) as im:
        assert im.size == (96, 64) and im.getexif()[0x010F] == "Phone"
        assert im.info.get("icc_profile") == srgb_profile()
