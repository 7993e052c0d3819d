"""Photo IO: metadata round trips, no overwrite, atomic writes."""

import io

import numpy as np
import pytest
from PIL import Image, ImageCms

from csrnet.errors import CsrnetError
from csrnet.io.atomic import atomic_write
from csrnet.io.formats import read_photo, write_photo


def _exif_bytes(orientation: int = 6) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation
    exif[0x010F] = "TestCam"  # Make
    exif[0x0110] = "Model X"
    return exif.tobytes()


def _srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.fixture
def tagged_jpeg(tmp_path):
    rng = np.random.default_rng(1)
    arr = (rng.random((60, 90, 3)) * 255).astype(np.uint8)
    path = tmp_path / "in.jpg"
    Image.fromarray(arr).save(path, quality=95, exif=_exif_bytes(), icc_profile=_srgb_icc(), dpi=(300, 300))
    return path


@pytest.mark.parametrize("fmt", ["jpg", "png", "tif"])
def test_exif_and_icc_round_trip(tagged_jpeg, tmp_path, fmt):
    photo = read_photo(tagged_jpeg)
    assert photo.exif and photo.icc_profile
    out = write_photo(photo, tmp_path / f"out.{fmt}")
    back = read_photo(out)
    assert back.icc_profile == photo.icc_profile
    with Image.open(out) as im:
        exif = im.getexif()
        assert exif[0x0112] == 6 and exif[0x010F] == "TestCam"
    if fmt == "tif":  # Pillow's libtiff reader applies the orientation itself; look at the stored pixels
        import tifffile

        assert tifffile.imread(out).shape[:2] == (60, 90)
    else:
        assert Image.open(out).size == (90, 60)  # pixels not rotated
    if fmt == "jpg":
        assert back.exif == photo.exif  # the very same bytes


def test_no_overwrite_and_atomic(tagged_jpeg, tmp_path):
    photo = read_photo(tagged_jpeg)
    dst = tmp_path / "o.png"
    dst.write_bytes(b"precious")
    with pytest.raises(CsrnetError, match="exists"):
        write_photo(photo, dst)
    assert dst.read_bytes() == b"precious"
    write_photo(photo, dst, overwrite=True)
    assert Image.open(dst).size == (90, 60)

    def broken(tmp):
        tmp.write_bytes(b"half a file")
        raise OSError("disk full")

    target = tmp_path / "never.png"
    with pytest.raises(OSError):
        atomic_write(target, broken)
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_modes_are_normalised(tmp_path):
    rgba = Image.new("RGBA", (20, 10), (10, 20, 30, 128))
    rgba.save(tmp_path / "a.png")
    photo = read_photo(tmp_path / "a.png")
    assert photo.pixels.mode == "RGB" and photo.alpha is not None
    write_photo(photo, tmp_path / "b.png")
    assert Image.open(tmp_path / "b.png").mode == "RGBA"
    Image.new("L", (20, 10), 7).save(tmp_path / "g.png")
    assert read_photo(tmp_path / "g.png").pixels.mode == "RGB"
    Image.new("CMYK", (20, 10)).save(tmp_path / "c.jpg")
    assert read_photo(tmp_path / "c.jpg").pixels.mode == "RGB"


def test_bad_files_give_one_line_errors(tmp_path, tagged_jpeg):
    (tmp_path / "zero.jpg").write_bytes(b"")
    (tmp_path / "noise.png").write_bytes(np.random.default_rng(0).bytes(500))
    data = tagged_jpeg.read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    for name in ("zero.jpg", "noise.png", "cut.jpg", "missing.jpg"):
        with pytest.raises(CsrnetError) as e:
            read_photo(tmp_path / name)
        assert "\n" not in str(e.value) and name in str(e.value)
    big = io.BytesIO()
    Image.new("RGB", (3000, 3000)).save(big, "PNG")
    (tmp_path / "big.png").write_bytes(big.getvalue())
    with pytest.raises(CsrnetError, match="limit"):
        read_photo(tmp_path / "big.png", max_pixels=1_000_000)


@pytest.mark.parametrize("quality", [75, 95, 100])
def test_as_array_path_matches_pillow(tagged_jpeg, tmp_path, quality):
    """``as_array=True`` (what ``csrnet enhance`` reads with): the same pixels as Pillow's decode,
    as a uint8 array, with the same metadata; written back, the same bytes as Pillow's encoder,
    metadata segments included (a multi-segment ICC profile and fractional dpi too)."""
    plain, fast = read_photo(tagged_jpeg), read_photo(tagged_jpeg, as_array=True)
    assert isinstance(plain.pixels, Image.Image) and isinstance(fast.pixels, np.ndarray) and fast.pixels.dtype == np.uint8
    assert np.array_equal(np.asarray(plain.pixels), fast.pixels)
    assert (plain.exif, plain.icc_profile, plain.dpi) == (fast.exif, fast.icc_profile, fast.dpi)
    big_icc = bytes(range(256)) * 300  # 76.8 kB: two APP2 segments
    for photo in (fast, fast.with_pixels(fast.pixels[::-1].copy())):
        for meta in ({}, {"icc_profile": big_icc, "dpi": (72.4, 96.6)}, {"exif": None, "icc_profile": None, "dpi": None}):
            from dataclasses import replace

            p = replace(photo, **meta)
            ours = write_photo(p, tmp_path / "ours.jpg", quality=quality, overwrite=True).read_bytes()
            kwargs = {k: v for k, v in (("exif", p.exif), ("icc_profile", p.icc_profile), ("dpi", p.dpi)) if v}
            buf = io.BytesIO()
            Image.fromarray(p.pixels).save(buf, "JPEG", quality=quality, **kwargs)
            assert ours == buf.getvalue()


def test_as_array_path_keeps_truncation_errors(tagged_jpeg, tmp_path):
    """libjpeg fills a truncated JPEG with grey; the array path leaves such files to Pillow, which reports them."""
    data = tagged_jpeg.read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) * 2 // 3])
    for as_array in (False, True):
        with pytest.raises(CsrnetError, match="truncated|cannot decode"):
            read_photo(cut, as_array=as_array)
