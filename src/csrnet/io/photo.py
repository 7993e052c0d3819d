"""Reading and writing photos with their metadata, atomically.

A :class:`Photo` is the RGB pixels the engine works on plus everything needed to
write the result back the way the original was: EXIF (orientation tag and camera
data), ICC profile, resolution, and an alpha channel set aside. Pixels are never
rotated: the EXIF orientation travels with the file, so viewers show the result the
way they showed the original.

Formats (see :mod:`csrnet.io.formats`, the one table of them) in: JPEG, PNG (8 and 16 bit), TIFF (8 and 16 bit, read with tifffile so the
pixels come as stored), camera RAW through rawpy/LibRaw ,
HEIC/HEIF through the optional pillow-heif, and whatever else Pillow reads.
Formats out: JPEG, PNG and TIFF; 16-bit pixels stay 16-bit in PNG and TIFF.

Mode handling (documented in the README): RGB as is; grayscale, palette and CMYK are
converted to RGB (the output is RGB); an alpha channel (RGBA, LA, palette
transparency) is kept aside and written back to PNG/TIFF, dropped for JPEG; 16-bit
images stay 16-bit as (H, W, 3) uint16 arrays.

Colour management: the model was trained on sRGB photos, so an input whose ICC
profile is not sRGB (Adobe RGB, Display P3, ProPhoto, CMYK ...) is converted to sRGB
on reading and the output is tagged with an sRGB profile. Untagged inputs are taken
as sRGB and stay untagged; sRGB-tagged inputs keep their profile bytes.
"""


from __future__ import annotations

import io
import struct
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms

from ..errors import PhotoError, TooLargeError, UnsupportedFormatError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "EXIF_IFD",
    "GPS_IFD",
    "IFD0_KEEP",
    "Photo",
    "check_size",
    "exif_from_tags",
    "exif_from_tifffile",
    "image_to_srgb",
    "is_srgb",
    "needs_conversion",
    "reason",
    "srgb_profile",
    "to_srgb",
]

#: Refuse images above this many pixels before decoding them (decompression bombs).
#: 250 MP admits every camera sold today (the largest are ~150-200 MP).
DEFAULT_MAX_PIXELS = 250_000_000
# IFD0 tags carried from TIFF and RAW sources (the rest of a TIFF's IFD0 describes its own
# pixel layout and must not leak into another file).
EXIF_IFD = 0x8769
GPS_IFD = 0x8825
IFD0_KEEP = {270: "s", 271: "s", 272: "s", 274: "H", 305: "s", 306: "s", 315: "s", 33432: "s"}
# The EXIF IFD's (signed) rational tags (EXIF 2.32): tifffile reads a rational as a flat (num, den, ...)
# tuple and forgets its type, and Pillow knows no types for this IFD (it has them for the GPS IFD).
_EXIF_RATIONALS = frozenset({33434, 33437, 37122, 37377, 37378, 37379, 37380, 37381, 37382, 37386, 37888, 37889,
                             37890, 37891, 37892, 37893, 41483, 41486, 41487, 41493, 41988, 42034, 42240})


@dataclass
class Photo:
    """Pixels plus the metadata to write back.

    pixels: RGB ``PIL.Image`` or (H, W, 3) ``uint8`` array (8-bit sources) or (H, W, 3) ``uint16`` array (16-bit sources).
    alpha: the alpha channel (PIL ``L`` image for 8-bit, (H, W) ``uint16`` array for 16-bit) or None.
    icc_profile: the profile of ``pixels`` (sRGB after :func:`read_photo` converted them) or None (sRGB).
    format: our key of the source format: jpg, png, tif, raw or heif.
    """

    pixels: Image.Image | np.ndarray
    exif: bytes | None = None
    icc_profile: bytes | None = None
    dpi: tuple[float, float] | None = None
    alpha: Image.Image | np.ndarray | None = None
    format: str = "png"
    path: Path | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        if isinstance(self.pixels, Image.Image):
            return self.pixels.size
        return self.pixels.shape[1], self.pixels.shape[0]

    def with_pixels(self, pixels: Image.Image | np.ndarray) -> "Photo":
        return replace(self, pixels=pixels)


def reason(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:200]


def check_size(path: Path, w: int, h: int, max_pixels: int) -> None:
    if w * h > max_pixels:
        raise TooLargeError(f"{path}: {w}x{h} pixels is over the limit of {max_pixels:,} (possible decompression bomb; raise --max-pixels to allow)")
    if w < 1 or h < 1:
        raise PhotoError(f"{path}: empty image ({w}x{h})")


# ---------------------------------------------------------------- colour management
@lru_cache(maxsize=1)
def srgb_profile() -> bytes:
    """The ICC profile written into converted outputs (LittleCMS's built-in sRGB)."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _srgb_decode(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def _srgb_encode(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * np.maximum(x, 0.0031308) ** (1 / 2.4) - 0.055).astype(np.float32)


def _icc_tags(icc: bytes) -> dict[bytes, bytes]:
    """Tag signature -> tag bytes from the ICC tag table (ICC.1 section 7.3)."""
    (count,) = struct.unpack_from(">I", icc, 128)
    tags = {}
    for i in range(min(count, 1000)):
        sig, off, size = struct.unpack_from(">4sII", icc, 132 + 12 * i)
        tags[sig] = icc[off : off + size]
    return tags


def _s15(data: bytes, off: int, n: int) -> np.ndarray:
    return np.array(struct.unpack_from(f">{n}i", data, off), np.float64) / 65536.0


def _trc(tag: bytes) -> Callable[[np.ndarray], np.ndarray]:
    """An ICC ``curv`` or ``para`` tone curve as a function on [0, 1] (ICC.1 10.6, 10.18)."""
    kind = tag[:4]
    if kind == b"curv":
        (n,) = struct.unpack_from(">I", tag, 8)
        if n == 0:
            return lambda x: x
        if n == 1:
            gamma = struct.unpack_from(">H", tag, 12)[0] / 256.0
            return lambda x: np.power(x, gamma)
        table = np.array(struct.unpack_from(f">{n}H", tag, 12), np.float32) / 65535.0
        grid = np.linspace(0.0, 1.0, n, dtype=np.float32)
        return lambda x: np.interp(x, grid, table).astype(np.float32)
    if kind == b"para":
        (func,) = struct.unpack_from(">H", tag, 8)
        nparams = {0: 1, 1: 3, 2: 4, 3: 5, 4: 7}[func]
        g, a, b, c, d, e, f = list(_s15(tag, 12, nparams)) + [0.0] * (7 - nparams)
        if func == 0:
            return lambda x: np.power(x, g)
        if func == 1:
            return lambda x: np.where(x >= -b / a, np.power(np.maximum(a * x + b, 0), g), 0.0)
        if func == 2:
            return lambda x: np.where(x >= -b / a, np.power(np.maximum(a * x + b, 0), g) + c, c)
        if func == 3:
            return lambda x: np.where(x >= d, np.power(np.maximum(a * x + b, 0), g), c * x)
        return lambda x: np.where(x >= d, np.power(np.maximum(a * x + b, 0), g) + e, c * x + f)
    raise ValueError(f"unsupported tone curve type {kind!r}")


@dataclass(frozen=True)
class _MatrixShaper:
    """An RGB matrix/TRC profile: linear = trc(encoded); XYZ(D50) = matrix @ linear."""

    matrix: np.ndarray  # (3, 3), columns are the red, green, blue colorants
    trcs: tuple[Callable[[np.ndarray], np.ndarray], ...]


def _matrix_shaper(icc: bytes) -> _MatrixShaper | None:
    """Parse an RGB matrix/TRC display profile; None for any other kind (LUT-based, CMYK, gray)."""
    try:
        if icc[16:20] != b"RGB " or icc[36:40] != b"acsp":
            return None
        tags = _icc_tags(icc)
        cols = [_s15(tags[s], 8, 3) for s in (b"rXYZ", b"gXYZ", b"bXYZ")]
        trcs = tuple(_trc(tags[s]) for s in (b"rTRC", b"gTRC", b"bTRC"))
    except (KeyError, ValueError, struct.error, ZeroDivisionError):
        return None
    return _MatrixShaper(np.stack(cols, axis=1), trcs)


@lru_cache(maxsize=64)
def is_srgb(icc: bytes) -> bool:
    """True if ``icc`` is an sRGB profile (colorants within 0.002, tone curves within 0.002 of sRGB's)."""
    ms, ref = _matrix_shaper(icc), _matrix_shaper(srgb_profile())
    if ms is None or ref is None:
        return False
    if not np.allclose(ms.matrix, ref.matrix, atol=2e-3):
        return False
    x = np.linspace(0.0, 1.0, 256, dtype=np.float32)
    return all(np.abs(trc(x) - _srgb_decode(x)).max() < 2e-3 for trc in ms.trcs)


def _profile_name(icc: bytes) -> str:
    try:
        return ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc))).strip() or "unnamed"
    except (OSError, ImageCms.PyCMSError, TypeError, ValueError):
        return "unreadable"


def _array_to_srgb(arr: np.ndarray, icc: bytes, *, rows: int = 256) -> np.ndarray:
    """(H, W, 3) uint16 in a matrix/TRC profile -> uint16 sRGB, in float32 (no 8-bit step).

    LittleCMS (ImageCms) cannot hold 16-bit RGB images in Pillow, so the matrix/TRC model
    is evaluated here: decode the tone curves, map through XYZ (D50) to linear sRGB, clip
    (relative colorimetric), encode with the sRGB curve.
    """
    ms, ref = _matrix_shaper(icc), _matrix_shaper(srgb_profile())
    if ms is None or ref is None:
        raise UnsupportedFormatError(f"16-bit image with a non-matrix ICC profile ({_profile_name(icc)}) is not supported: convert it to sRGB first")
    m = (np.linalg.inv(ref.matrix) @ ms.matrix).astype(np.float32)
    out = np.empty_like(arr)
    for y in range(0, arr.shape[0], rows):  # strips: bounded float memory
        x = arr[y : y + rows].astype(np.float32) / 65535.0
        lin = np.stack([ms.trcs[c](x[..., c]) for c in range(3)], axis=-1).astype(np.float32)
        s = _srgb_encode(np.clip(lin @ m.T, 0.0, 1.0))
        out[y : y + rows] = np.clip(s * 65535.0 + 0.5, 0, 65535).astype(np.uint16)
    return out


def image_to_srgb(im: Image.Image, icc: bytes) -> Image.Image:
    """8-bit image of any ImageCms mode (RGB, L, CMYK ...) with profile ``icc`` -> sRGB RGB image (LittleCMS)."""
    src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    dst = ImageCms.ImageCmsProfile(io.BytesIO(srgb_profile()))
    return ImageCms.profileToProfile(im, src, dst, renderingIntent=ImageCms.Intent.PERCEPTUAL, outputMode="RGB")


def needs_conversion(icc: bytes | None) -> bool:
    return bool(icc) and not is_srgb(icc)  # type: ignore[arg-type]


def to_srgb(photo: Photo) -> Photo:
    """``photo`` with its pixels converted to sRGB and tagged with :func:`srgb_profile` (unchanged if sRGB or untagged)."""
    if not needs_conversion(photo.icc_profile):
        return photo
    icc = photo.icc_profile
    assert icc is not None
    try:
        if isinstance(photo.pixels, np.ndarray):
            pixels: Image.Image | np.ndarray = _array_to_srgb(photo.pixels, icc)
        else:
            pixels = image_to_srgb(photo.pixels, icc)
    except (OSError, ImageCms.PyCMSError, ValueError) as e:
        warnings.warn(f"{photo.path}: ignoring unusable ICC profile ({reason(e)}); treating the image as sRGB", stacklevel=2)
    else:
        return replace(photo, pixels=pixels, icc_profile=srgb_profile())
    return replace(photo, icc_profile=None)


# ---------------------------------------------------------------- EXIF
def exif_from_tags(im: Image.Image, orientation: int | None = None) -> bytes | None:
    """EXIF bytes from a TIFF-structured file's IFD0 (TIFF, DNG, most RAWs) opened lazily by Pillow.

    Keeps the descriptive IFD0 tags (camera, date, orientation, copyright) and the EXIF and
    GPS sub-IFDs; drops the tags that describe the source file's own pixel layout.
    """
    src = im.getexif()
    out = Image.Exif()
    for tag in IFD0_KEEP:
        if tag in src:
            out[tag] = src[tag]
    for ifd in (EXIF_IFD, GPS_IFD):
        sub = src.get_ifd(ifd) if ifd in src else {}
        if sub:
            out[ifd] = {k: v for k, v in sub.items() if not isinstance(v, dict)}
    if orientation is not None:
        out[0x0112] = orientation
    return out.tobytes() if len(out) else None


def _tifffile_value(ifd: int, tag: int, value):
    """A value tifffile read from an EXIF or GPS sub-IFD, as Pillow must be given it: rationals (which
    tifffile flattens to (num, den, num, den ...)) paired into IFDRationals, enums as ints."""
    from PIL import TiffTags
    from PIL.TiffImagePlugin import IFDRational

    info = TiffTags.lookup(tag, ifd)
    rational = tag in _EXIF_RATIONALS if ifd == EXIF_IFD else info.type in (TiffTags.RATIONAL, TiffTags.SIGNED_RATIONAL)
    if rational and isinstance(value, tuple) and value and len(value) % 2 == 0:
        pairs = tuple(IFDRational(n, d) for n, d in zip(value[::2], value[1::2]))
        return pairs[0] if len(pairs) == 1 else pairs
    return int(value) if hasattr(value, "value") else value


def exif_from_tifffile(path: Path, orientation: int | None) -> bytes | None:
    """Like :func:`exif_from_tags`, through tifffile (it reads any TIFF-based RAW's IFD0);
    only the orientation for files that are not TIFF-based (CR3, RAF ...). ``orientation``
    (when given) replaces the file's; None when nothing is left to keep."""
    import tifffile

    out = Image.Exif()
    try:
        with tifffile.TiffFile(path) as tf:
            tags = tf.pages.first.tags
            for code in IFD0_KEEP:
                if code in tags:
                    v = tags[code].value
                    out[code] = int(v) if IFD0_KEEP[code] == "H" else v
            for code, registry in ((EXIF_IFD, tifffile.TIFF.EXIF_TAGS), (GPS_IFD, tifffile.TIFF.GPS_TAGS)):
                sub = tags[code].value if code in tags else None
                if isinstance(sub, dict):
                    known = {registry.get(k): v for k, v in sub.items() if registry.get(k) is not None}
                    out[code] = {k: _tifffile_value(code, k, v) for k, v in known.items() if not isinstance(v, dict)}
    except (tifffile.TiffFileError, OSError, ValueError, KeyError, TypeError):
        out = Image.Exif()
    if orientation is not None:
        out[0x0112] = orientation
    return out.tobytes() if len(out) else None
