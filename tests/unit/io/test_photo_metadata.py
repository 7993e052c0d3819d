"""Photo metadata rules: ICC tone curves read as ICC.1 defines them, conversion to sRGB only where a
profile says the pixels are not sRGB, the size guard, one-line reasons, and which IFD0 tags of a
TIFF-structured source are carried into an output."""

from __future__ import annotations

import struct
import warnings

import numpy as np
import pytest
from PIL import Image, ImageCms

from csrnet.errors import PhotoError, TooLargeError
from csrnet.io import photo as P
from csrnet.io.photo import Photo, check_size, exif_from_tags, needs_conversion, reason, srgb_profile, to_srgb

X = np.linspace(0.0, 1.0, 101)


def _curv(*values: int) -> bytes:
    return b"curv\0\0\0\0" + struct.pack(f">I{len(values)}H", len(values), *values)


def _para(func: int, *params: float) -> bytes:
    return b"para\0\0\0\0" + struct.pack(">HH", func, 0) + b"".join(struct.pack(">i", round(p * 65536)) for p in params)


def test_reason_is_the_first_line_cut_at_200_characters():
    assert reason(ValueError("bad header\nmore detail")) == "bad header"
    assert reason(OSError("  padded  ")) == "padded"
    assert reason(ValueError("x" * 300)) == "x" * 200
    assert reason(KeyError()) == "KeyError" and reason(ValueError("  ")) == "ValueError"


def test_size_guard_counts_pixels_and_refuses_empty_images(tmp_path):
    check_size(tmp_path, 100, 10, 1000)  # exactly at the limit
    check_size(tmp_path, 1, 1, 1000)  # the smallest image
    with pytest.raises(TooLargeError, match="101x10 pixels is over the limit of 1,000"):
        check_size(tmp_path, 101, 10, 1000)
    for w, h in ((0, 10), (10, 0)):
        with pytest.raises(PhotoError, match="empty image"):
            check_size(tmp_path, w, h, 1000)


# ---------------------------------------------------------------- tone curves (ICC.1 10.6 curv, 10.18 para)
def test_curv_with_no_entry_is_the_identity():
    assert np.array_equal(P._trc(_curv())(X), X)


def test_curv_with_one_entry_is_a_gamma_in_8_8_fixed_point():
    np.testing.assert_allclose(P._trc(_curv(563))(X), X ** (563 / 256), rtol=1e-12)


def test_curv_table_is_interpolated_linearly():
    f = P._trc(_curv(0, 16384, 65535))  # (0, 0.25, 1) at x = 0, 0.5, 1
    np.testing.assert_allclose(f(np.array([0.0, 0.25, 0.5, 0.75, 1.0])), [0.0, 0.125, 0.25, 0.625, 1.0], atol=1e-5)  # 16384 / 65535


@pytest.mark.parametrize(
    "func, params, expected",
    [
        (0, (2.4,), lambda x: x**2.4),
        (1, (2.0, 2.0, -0.5), lambda x: np.where(x >= 0.25, np.maximum(2 * x - 0.5, 0) ** 2.0, 0.0)),
        (2, (2.0, 2.0, -0.5, 0.125), lambda x: np.where(x >= 0.25, np.maximum(2 * x - 0.5, 0) ** 2.0 + 0.125, 0.125)),
        # sRGB's own curve: Y = ((X + 0.055) / 1.055) ** 2.4 above 0.04045, X / 12.92 below
        (3, (2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045), lambda x: np.where(x >= 0.04045, (x / 1.055 + 0.055 / 1.055) ** 2.4, x / 12.92)),
        (4, (2.0, 0.5, 0.25, 0.5, 0.5, 0.125, 0.0625), lambda x: np.where(x >= 0.5, (0.5 * x + 0.25) ** 2 + 0.125, 0.5 * x + 0.0625)),
    ],
)
def test_parametric_curves_follow_icc_1(func, params, expected):
    got = P._trc(_para(func, *params))(X)
    np.testing.assert_allclose(got, expected(X), atol=2e-4)  # s15.16 parameters


def test_parametric_parameters_are_s15_16_fixed_point():
    assert P._trc(_para(0, 2.0))(np.array([0.5]))[0] == pytest.approx(0.25, abs=1e-12)


def test_unknown_curve_types_are_refused():
    with pytest.raises(ValueError, match="unsupported tone curve"):
        P._trc(b"sf32\0\0\0\0" + bytes(12))


# ---------------------------------------------------------------- sRGB conversion
def test_untagged_and_srgb_photos_are_left_alone():
    pixels = Image.new("RGB", (4, 4), (200, 30, 60))
    for icc in (None, b"", srgb_profile()):
        photo = Photo(pixels, icc_profile=icc)
        assert to_srgb(photo) is photo
    assert not needs_conversion(None) and not needs_conversion(b"") and not needs_conversion(srgb_profile())


def test_8_and_16_bit_adobe_rgb_convert_alike(adobe_rgb_icc):
    assert needs_conversion(adobe_rgb_icc)
    rng = np.random.default_rng(0)
    arr8 = rng.integers(0, 256, (16, 16, 3)).astype(np.uint8)
    out8 = to_srgb(Photo(Image.fromarray(arr8), icc_profile=adobe_rgb_icc))
    out16 = to_srgb(Photo(arr8.astype(np.uint16) * 257, icc_profile=adobe_rgb_icc))
    assert out8.icc_profile == srgb_profile() and out16.icc_profile == srgb_profile()
    assert out16.pixels.dtype == np.uint16 and out16.pixels.shape == (16, 16, 3)
    diff = np.abs(out16.pixels / 257.0 - np.asarray(out8.pixels, np.float64))
    assert diff.max() <= 2.0 and diff.mean() < 0.6  # LittleCMS (8-bit, perceptual) vs csrnet's float matrix/TRC path
    assert np.abs(out16.pixels.astype(np.int64) - arr8.astype(np.int64) * 257).max() > 257 * 5  # really converted


def test_16_bit_conversion_keeps_16_bit_precision(adobe_rgb_icc):
    ramp = np.arange(0, 65536, 16, dtype=np.uint16)  # 4096 levels
    img = np.stack([ramp, ramp, ramp], axis=-1).reshape(64, 64, 3)
    img[-1, -1] = 65535
    out = to_srgb(Photo(img, icc_profile=adobe_rgb_icc)).pixels
    assert len(np.unique(out[..., 1])) > 3000  # no 8-bit step
    assert out[0, 0].tolist() == [0, 0, 0] and out[-1, -1].tolist() == [65535, 65535, 65535]  # black and white stay


def test_unusable_profiles_are_ignored_with_a_warning():
    pixels = Image.new("RGB", (4, 4), (200, 30, 60))
    bad = b"\0" * 200  # neither sRGB nor a profile LittleCMS reads
    with pytest.warns(UserWarning, match="ignoring unusable ICC profile"):
        out = to_srgb(Photo(pixels, icc_profile=bad))
    assert out.icc_profile is None and out.pixels is pixels


def test_16_bit_with_a_lut_profile_is_unsupported_and_named():
    lab = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(Exception, match=r"\(Lab identity built-in\) is not supported"):
            P._array_to_srgb(np.zeros((2, 2, 3), np.uint16), lab)


def test_srgb_is_recognised_by_its_colorimetry_not_its_bytes():
    from tests.helpers import icc_v2

    srgb = bytearray(srgb_profile())
    srgb[24:36] = bytes(12)  # another creation date: other bytes, same colours
    assert P.is_srgb(bytes(srgb))
    matrix = P._matrix_shaper(srgb_profile()).matrix
    assert not P.is_srgb(icc_v2(matrix, 2.2, "sRGB primaries, gamma 2.2"))
    assert not P.is_srgb(icc_v2(matrix * 1.01, 2.2, "other primaries"))
    srgb[36:40] = b"xxxx"  # not an ICC profile (no 'acsp' signature)
    assert not P.is_srgb(bytes(srgb))


def _linear_srgb_icc() -> bytes:
    """sRGB's primaries with linear tone curves (curv with no entry): the pixels are linear-light sRGB."""
    from tests.helpers import icc_v2

    icc = bytearray(icc_v2(P._matrix_shaper(srgb_profile()).matrix, 1.0, "linear sRGB"))
    tag = b"curv\0\0\0\0" + struct.pack(">IH", 1, 256)  # gamma 1.0 in 8.8 fixed point
    assert tag in icc
    return bytes(icc)


def test_16_bit_linear_light_is_encoded_with_the_srgb_curve():
    x = np.linspace(0, 1, 700 * 3)  # 700 rows: several strips of 256
    img = np.round(x * 65535).astype(np.uint16).reshape(700, 1, 3)
    out = P._array_to_srgb(img, _linear_srgb_icc())
    lin = img / 65535.0
    want = np.where(lin <= 0.0031308, lin * 12.92, 1.055 * lin ** (1 / 2.4) - 0.055)  # IEC 61966-2-1
    assert np.abs(out.astype(np.float64) - want * 65535).max() <= 1.0


# ---------------------------------------------------------------- IFD0 tags carried from TIFF-structured sources
def test_exif_from_tags_keeps_descriptive_tags_only(tmp_path):
    ifd = Image.Exif()
    ifd[271], ifd[272], ifd[305], ifd[306], ifd[274] = "Nikon", "D850", "NX Studio", "2024:01:02 03:04:05", 6
    path = tmp_path / "a.tif"
    Image.new("RGB", (8, 6)).save(path, exif=ifd.tobytes())
    with Image.open(path) as im:
        out = Image.Exif()
        out.load(exif_from_tags(im))
        assert out[271] == "Nikon" and out[272] == "D850" and out[305] == "NX Studio" and out[274] == 6
        assert 256 not in out and 257 not in out and 273 not in out  # the source's own layout (width, height, strips)
        out.load(exif_from_tags(im, orientation=3))
        assert out[274] == 3


def test_exif_from_tags_of_a_bare_file_is_none_unless_oriented(tmp_path):
    path = tmp_path / "a.png"
    Image.new("RGB", (8, 6)).save(path)
    with Image.open(path) as im:
        assert exif_from_tags(im) is None
        e = Image.Exif()
        e.load(exif_from_tags(im, orientation=8))
        assert dict(e) == {274: 8}
