"""Reading and writing photos with their metadata, atomically.

A :class:`Photo` is the RGB pixels the engine works on plus everything needed to
write the result back the way the original was: EXIF (orientation tag and camera
data), ICC profile, resolution, and an alpha channel set aside. Pixels are never
rotated: the EXIF orientation travels with the file, so viewers show the result the
way they showed the original.

Formats in: JPEG, PNG (8 and 16 bit), TIFF (8 and 16 bit, read with tifffile so the
pixels come as stored), camera RAW through rawpy/LibRaw (:data:`RAW_EXTENSIONS`),
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
import os
import struct
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, UnidentifiedImageError

from .errors import CsrnetError

__all__ = [
    "Photo",
    "read_photo",
    "write_photo",
    "atomic_write",
    "decode_raw",
    "srgb_profile",
    "is_srgb",
    "FORMATS",
    "DEFAULT_MAX_PIXELS",
    "RAW_EXTENSIONS",
    "HEIF_EXTENSIONS",
    "RAW_DECODE",
]

#: Refuse images above this many pixels before decoding them (decompression bombs).
#: 250 MP admits every camera sold today (the largest are ~150-200 MP).
DEFAULT_MAX_PIXELS = 250_000_000
#: Output format name -> (Pillow format, file extension).
FORMATS = {"jpg": ("JPEG", ".jpg"), "png": ("PNG", ".png"), "tif": ("TIFF", ".tif")}
_FORMAT_OF_PIL = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "TIFF": "tif", "HEIF": "heif", "AVIF": "heif"}
#: Camera RAW file extensions decoded with rawpy (LibRaw).
RAW_EXTENSIONS = frozenset(
    ".dng .cr2 .cr3 .crw .nef .nrw .arw .srf .sr2 .raf .orf .rw2 .rwl .pef .srw .x3f .3fr .fff .iiq .erf .kdc .dcr .mrw .mos .raw".split()
)
#: HEIC/HEIF extensions (phone photos), read through pillow-heif when it is installed.
HEIF_EXTENSIONS = frozenset({".heic", ".heif", ".hif"})

#: How RAW files are developed (rawpy ``postprocess`` arguments), chosen to hand the
#: model what it was trained on, an sRGB rendering, while inventing nothing:
#: - ``use_camera_wb``: the white balance the camera recorded ("as shot");
#: - ``output_color=sRGB``, ``gamma=(2.4, 12.92)``: sRGB primaries and the sRGB tone curve
#:   (LibRaw's default is the BT.709 curve);
#: - ``no_auto_bright``: the exposure as shot; LibRaw's default auto-brightening clips the
#:   brightest 1% of pixels, and CSRNet itself corrects exposure;
#: - ``output_bps=16``: 16-bit output, so nothing is lost before the model;
#: - ``user_flip=0``: pixels as stored; the camera's orientation goes into the EXIF tag
#:   (the same rule as for every other format);
#: - demosaicing: LibRaw's default (AHD), highlights clipped (LibRaw's default).
RAW_DECODE = {"use_camera_wb": True, "output_bps": 16, "gamma": (2.4, 12.92), "no_auto_bright": True, "user_flip": 0}
# LibRaw flip code -> EXIF orientation
_FLIP_TO_ORIENTATION = {0: 1, 3: 3, 5: 8, 6: 6}
# IFD0 tags carried from TIFF and RAW sources (the rest of a TIFF's IFD0 describes its own
# pixel layout and must not leak into another file).
_EXIF_IFD = 0x8769
_GPS_IFD = 0x8825
_IFD0_KEEP = {270: "s", 271: "s", 272: "s", 274: "H", 305: "s", 306: "s", 315: "s", 33432: "s"}


@dataclass
class Photo:
    """Pixels plus the metadata to write back.

    pixels: RGB ``PIL.Image`` (8-bit) or (H, W, 3) ``uint16`` array (16-bit sources).
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


def _reason(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:200]


def _check_size(path: Path, w: int, h: int, max_pixels: int) -> None:
    if w * h > max_pixels:
        raise CsrnetError(f"{path}: {w}x{h} pixels is over the limit of {max_pixels:,} (possible decompression bomb; raise --max-pixels to allow)")
    if w < 1 or h < 1:
        raise CsrnetError(f"{path}: empty image ({w}x{h})")


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
        raise CsrnetError(f"16-bit image with a non-matrix ICC profile ({_profile_name(icc)}) is not supported: convert it to sRGB first")
    m = (np.linalg.inv(ref.matrix) @ ms.matrix).astype(np.float32)
    out = np.empty_like(arr)
    for y in range(0, arr.shape[0], rows):  # strips: bounded float memory
        x = arr[y : y + rows].astype(np.float32) / 65535.0
        lin = np.stack([ms.trcs[c](x[..., c]) for c in range(3)], axis=-1).astype(np.float32)
        s = _srgb_encode(np.clip(lin @ m.T, 0.0, 1.0))
        out[y : y + rows] = np.clip(s * 65535.0 + 0.5, 0, 65535).astype(np.uint16)
    return out


def _image_to_srgb(im: Image.Image, icc: bytes) -> Image.Image:
    """8-bit image of any ImageCms mode (RGB, L, CMYK ...) with profile ``icc`` -> sRGB RGB image (LittleCMS)."""
    src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    dst = ImageCms.ImageCmsProfile(io.BytesIO(srgb_profile()))
    return ImageCms.profileToProfile(im, src, dst, renderingIntent=ImageCms.Intent.PERCEPTUAL, outputMode="RGB")


def _needs_conversion(icc: bytes | None) -> bool:
    return bool(icc) and not is_srgb(icc)  # type: ignore[arg-type]


def to_srgb(photo: Photo) -> Photo:
    """``photo`` with its pixels converted to sRGB and tagged with :func:`srgb_profile` (unchanged if sRGB or untagged)."""
    if not _needs_conversion(photo.icc_profile):
        return photo
    icc = photo.icc_profile
    assert icc is not None
    try:
        if isinstance(photo.pixels, np.ndarray):
            pixels: Image.Image | np.ndarray = _array_to_srgb(photo.pixels, icc)
        else:
            pixels = _image_to_srgb(photo.pixels, icc)
    except (OSError, ImageCms.PyCMSError, ValueError) as e:
        warnings.warn(f"{photo.path}: ignoring unusable ICC profile ({_reason(e)}); treating the image as sRGB", stacklevel=2)
    else:
        return replace(photo, pixels=pixels, icc_profile=srgb_profile())
    return replace(photo, icc_profile=None)


# ---------------------------------------------------------------- EXIF
def _exif_from_tags(im: Image.Image, orientation: int | None = None) -> bytes | None:
    """EXIF bytes from a TIFF-structured file's IFD0 (TIFF, DNG, most RAWs) opened lazily by Pillow.

    Keeps the descriptive IFD0 tags (camera, date, orientation, copyright) and the EXIF and
    GPS sub-IFDs; drops the tags that describe the source file's own pixel layout.
    """
    src = im.getexif()
    out = Image.Exif()
    for tag in _IFD0_KEEP:
        if tag in src:
            out[tag] = src[tag]
    for ifd in (_EXIF_IFD, _GPS_IFD):
        sub = src.get_ifd(ifd) if ifd in src else {}
        if sub:
            out[ifd] = {k: v for k, v in sub.items() if not isinstance(v, dict)}
    if orientation is not None:
        out[0x0112] = orientation
    return out.tobytes() if len(out) else None


def _exif_from_tifffile(path: Path, orientation: int | None) -> bytes | None:
    """Like :func:`_exif_from_tags`, through tifffile (it reads any TIFF-based RAW's IFD0);
    only the orientation for files that are not TIFF-based (CR3, RAF ...). ``orientation``
    (when given) replaces the file's; None when nothing is left to keep."""
    import tifffile

    out = Image.Exif()
    try:
        with tifffile.TiffFile(path) as tf:
            tags = tf.pages.first.tags
            for code in _IFD0_KEEP:
                if code in tags:
                    v = tags[code].value
                    out[code] = int(v) if _IFD0_KEEP[code] == "H" else v
            for code, registry in ((_EXIF_IFD, tifffile.TIFF.EXIF_TAGS), (_GPS_IFD, tifffile.TIFF.GPS_TAGS)):
                sub = tags[code].value if code in tags else None
                if isinstance(sub, dict):
                    known = {registry.get(k): v for k, v in sub.items() if registry.get(k) is not None}
                    out[code] = {k: (int(v) if hasattr(v, "value") else v) for k, v in known.items() if not isinstance(v, dict)}
    except (tifffile.TiffFileError, OSError, ValueError, KeyError, TypeError):
        out = Image.Exif()
    if orientation is not None:
        out[0x0112] = orientation
    return out.tobytes() if len(out) else None


def _orientation(exif: bytes | None) -> int | None:
    if not exif:
        return None
    e = Image.Exif()
    e.load(exif)
    return e.get(0x0112)


# ---------------------------------------------------------------- readers
def _split_modes(im: Image.Image) -> tuple[Image.Image | np.ndarray, Image.Image | np.ndarray | None]:
    """Decoded image of any mode -> (RGB pixels, alpha or None)."""
    mode = im.mode
    if mode == "P" and ("transparency" in im.info):
        im = im.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        alpha = im.getchannel("A")
        return im.convert("RGB"), alpha
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(im)
        if mode == "I" and (arr.min() < 0 or arr.max() > 65535):
            raise CsrnetError(f"unsupported 32-bit integer image (values {arr.min()}..{arr.max()})")
        return np.repeat(arr.astype(np.uint16)[..., None], 3, axis=2), None
    if mode == "F":
        raise CsrnetError("unsupported floating-point image mode F")
    if mode == "RGB":
        return im, None
    return im.convert("RGB"), None  # L, 1, P, CMYK, YCbCr, LAB, HSV


def _rgb16(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(H, W), (H, W, 2), (H, W, 3) or (H, W, 4+) uint16 -> ((H, W, 3) RGB, (H, W) alpha or None)."""
    if arr.ndim == 2:
        arr = arr[..., None]
    c = arr.shape[2]
    alpha = arr[..., c - 1].copy() if c in (2, 4) else None
    rgb = np.repeat(arr[..., :1], 3, axis=2) if c <= 2 else arr[..., :3]
    return np.ascontiguousarray(rgb, dtype=np.uint16), alpha


def _png_bit_depth(head: bytes) -> int | None:
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        return head[24]
    return None


def _read_png16(path: Path) -> np.ndarray:
    import imagecodecs  # libpng; Pillow truncates 16-bit RGB PNG to 8 bits

    return imagecodecs.png_decode(path.read_bytes())


def _heif_opener() -> None:
    try:
        import pillow_heif
    except ImportError:
        raise CsrnetError("reading HEIC/HEIF needs pillow-heif: pip install 'csrnet-retouch[heif]'") from None
    pillow_heif.register_heif_opener()


def _read_pillow(path: Path, max_pixels: int, head: bytes, jpeg_array: bool = False) -> Photo:
    if path.suffix.lower() in HEIF_EXTENSIONS or head[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftyphevc", b"ftypheim"):
        _heif_opener()
    # Pillow refuses images over 2 x MAX_IMAGE_PIXELS (179 MP by default) on its own, below the
    # documented limit; raise its cap so max_pixels decides (only ever raised, so thread-safe).
    if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < max_pixels:
        Image.MAX_IMAGE_PIXELS = max_pixels
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(path) as im:
            _check_size(path, *im.size, max_pixels)
            info = dict(im.info)
            fmt = _FORMAT_OF_PIL.get(im.format or "", "png")
            exif = info.get("exif")
            icc = info.get("icc_profile") or None
            if _png_bit_depth(head) == 16:
                pixels, alpha = _rgb16(_read_png16(path))
            elif jpeg_array and im.format == "JPEG" and im.mode == "RGB" and not _needs_conversion(icc) and (array := _jpeg_pixels(path, im.size)) is not None:
                pixels, alpha = array, None
            else:
                im.load()
                if icc and im.mode in ("L", "CMYK") and _needs_conversion(icc):
                    im, icc = _image_to_srgb(im, icc), srgb_profile()  # gray/CMYK profiles cannot tag an RGB output
                pixels, alpha = _split_modes(im)  # a loaded image outlives the with-block (only the file closes)
    dpi = info.get("dpi")
    return Photo(
        pixels=pixels,
        exif=exif if isinstance(exif, bytes) and exif else None,
        icc_profile=icc,
        dpi=tuple(float(v) for v in dpi) if dpi else None,  # type: ignore[arg-type]
        alpha=alpha,
        format=fmt,
        path=path,
    )


def _jpeg_pixels(path: Path, size: tuple[int, int]) -> np.ndarray | None:
    """An RGB JPEG's pixels as an (H, W, 3) uint8 array, decoded by libjpeg-turbo through imagecodecs:
    the same pixels as Pillow's decode (checked on every JPEG in the shared data), ~90 instead of
    ~140 ms at 24 MP, and without the ~130 ms copy out of a PIL image that numpy code then needs.
    None (use Pillow) for a file that does not end with the JPEG end marker: libjpeg fills a
    truncated file with grey where Pillow reports it, so those keep Pillow's error."""
    import imagecodecs

    data = path.read_bytes()
    if not data.endswith(b"\xff\xd9"):
        return None
    try:
        arr = imagecodecs.jpeg8_decode(data)
    except imagecodecs.Jpeg8Error:
        return None
    if arr.ndim != 3 or arr.shape != (size[1], size[0], 3) or arr.dtype != np.uint8:
        return None
    return arr


def _tiff_resolution(page) -> tuple[float, float] | None:
    tags = page.tags
    if 282 not in tags or 283 not in tags:
        return None
    unit = tags[296].value if 296 in tags else 2
    per_inch = {2: 1.0, 3: 2.54}.get(int(unit))
    if per_inch is None:
        return None
    x, y = (tags[t].value for t in (282, 283))
    x, y = (v[0] / v[1] if isinstance(v, tuple) else float(v) for v in (x, y))
    return (round(x * per_inch, 4), round(y * per_inch, 4))


def _read_tiff(path: Path, max_pixels: int) -> Photo:
    """TIFF through tifffile: the pixels as stored (Pillow's libtiff reader applies the EXIF
    orientation to them), 16-bit kept, ICC tag 34675, resolution tags, EXIF."""
    import tifffile

    with tifffile.TiffFile(path) as tf:
        page = tf.pages.first
        _check_size(path, page.imagewidth, page.imagelength, max_pixels)
        photometric = int(page.photometric)
        if photometric not in (1, 2) or page.dtype is None:  # palette, CMYK, YCbCr ...: Pillow converts them
            return _read_pillow(path, max_pixels, b"")
        arr = page.asarray()
        if page.planarconfig == 2 and arr.ndim == 3:  # separate planes: (S, H, W)
            arr = np.moveaxis(arr, 0, -1)
        icc = page.tags[34675].value if 34675 in page.tags else None
        dpi = _tiff_resolution(page)
    try:
        with Image.open(path) as im:  # lazily, for the EXIF directories only: no pixel is decoded
            exif = _exif_from_tags(im)
    except (UnidentifiedImageError, OSError):  # layouts Pillow cannot open (floating-point RGB ...)
        exif = _exif_from_tifffile(path, None)
    if arr.dtype.kind == "f":  # floating-point TIFF: [0, 1] -> 16 bits
        arr = np.clip(np.nan_to_num(arr) * 65535.0 + 0.5, 0, 65535).astype(np.uint16)
    elif arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    elif arr.dtype not in (np.uint8, np.uint16):
        raise CsrnetError(f"{path}: unsupported TIFF sample type {arr.dtype}")
    rgb, alpha = _rgb16(arr)  # the same channel logic for both depths
    if arr.dtype == np.uint8:
        rgb8 = Image.fromarray(rgb.astype(np.uint8), "RGB")
        alpha8 = Image.fromarray(alpha.astype(np.uint8), "L") if alpha is not None else None
        if icc and (not isinstance(icc, bytes) or icc[16:20] != b"RGB "):
            icc = None
        return Photo(rgb8, exif, icc, dpi, alpha8, "tif", path)
    return Photo(rgb, exif, icc if isinstance(icc, bytes) else None, dpi, alpha, "tif", path)


def decode_raw(path: str | os.PathLike[str], *, max_pixels: int = DEFAULT_MAX_PIXELS, **options) -> Photo:
    """Develop a camera RAW file to 16-bit sRGB with rawpy/LibRaw (see :data:`RAW_DECODE`).

    ``options`` override :data:`RAW_DECODE` (any ``rawpy.Params`` argument). Returns a
    :class:`Photo` with (H, W, 3) uint16 pixels as stored on the sensor (not rotated),
    EXIF with the camera's orientation and camera data where the file is TIFF-based
    (DNG, NEF, CR2, ARW ...), and an sRGB ICC profile.
    """
    path = Path(path)
    try:
        import rawpy
    except ImportError:
        raise CsrnetError("reading camera RAW needs rawpy: pip install rawpy") from None
    params = {**RAW_DECODE, "output_color": rawpy.ColorSpace.sRGB, **options}
    try:
        with rawpy.imread(str(path)) as raw:
            sizes = raw.sizes
            _check_size(path, sizes.width, sizes.height, max_pixels)
            rgb = raw.postprocess(**params)
    except rawpy.LibRawError as e:
        raise CsrnetError(f"{path}: cannot decode camera RAW ({type(e).__name__}: {_reason(e) or 'unsupported'})") from None
    orientation = _FLIP_TO_ORIENTATION.get(sizes.flip, 1) if params.get("user_flip", -1) == 0 else 1
    try:
        with Image.open(path) as im:
            exif = _exif_from_tags(im, orientation)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError):  # Pillow cannot open it (e.g. a CFA-only DNG)
        exif = _exif_from_tifffile(path, orientation)
    return Photo(np.ascontiguousarray(rgb, dtype=np.uint16), exif, srgb_profile(), None, None, "raw", path)


def read_photo(path: str | os.PathLike[str], *, max_pixels: int = DEFAULT_MAX_PIXELS, convert_to_srgb: bool = True, jpeg_array: bool = False) -> Photo:
    """Decode a photo file (JPEG, PNG, TIFF, camera RAW, HEIC and what Pillow reads) with its metadata.

    16-bit PNG and TIFF come back as (H, W, 3) uint16 arrays, RAW files as 16-bit sRGB
    (:func:`decode_raw`), everything else as an RGB PIL image. With ``convert_to_srgb``
    (default) pixels tagged with another ICC profile are converted to sRGB and tagged sRGB.
    ``jpeg_array``: RGB JPEGs whose pixels need no colour conversion come back as (H, W, 3) uint8
    arrays (the same pixels, decoded faster, ready for numpy code; :func:`write_photo` encodes
    such arrays as JPEG byte for byte as Pillow would).

    Raises :class:`CsrnetError` with a one-line reason for a missing, unreadable,
    truncated, non-image or oversized file. Images over ``max_pixels`` are refused
    from their header, before any pixel is decoded.
    """
    path = Path(path)
    if not path.exists():
        raise CsrnetError(f"{path}: no such file")
    if path.is_dir():
        raise CsrnetError(f"{path}: is a folder, not a photo")
    try:
        with open(path, "rb") as f:
            head = f.read(64)
        if not head:
            raise CsrnetError(f"{path}: empty file (0 bytes)")
        # the content decides over the name: a PNG/JPEG/WebP/GIF/BMP named .dng is not a RAW
        not_raw = head.startswith((b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM")) or head[8:12] == b"WEBP"
        if path.suffix.lower() in RAW_EXTENSIONS and not not_raw:
            photo = decode_raw(path, max_pixels=max_pixels)
        elif head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
            photo = _read_tiff(path, max_pixels)
        else:
            photo = _read_pillow(path, max_pixels, head, jpeg_array)
    except CsrnetError:
        raise
    except Image.DecompressionBombError as e:
        raise CsrnetError(f"{path}: refused, {_reason(e)}") from None
    except UnidentifiedImageError:
        raise CsrnetError(f"{path}: not an image Pillow can read (unknown or corrupt format)") from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError, TypeError, IndexError, KeyError, RuntimeError) as e:
        raise CsrnetError(f"{path}: cannot decode ({_reason(e)})") from None
    return to_srgb(photo) if convert_to_srgb else photo


# ---------------------------------------------------------------- writers
def atomic_write(path: Path, write, *, overwrite: bool = False) -> None:
    """Call ``write(tmp_path)`` then move the finished file to ``path`` in one step.

    The temporary file sits beside ``path`` (same file system) and is removed on any
    failure, so ``path`` is either absent or complete. Without ``overwrite`` the move
    is a hard link, which fails if ``path`` appeared meanwhile (another process), so an
    existing file is never replaced.
    """
    # The name is cut to 40 characters (<= 160 bytes): a full 255-byte name plus the
    # suffix would exceed the file system's limit and make a valid output unwritable.
    tmp = path.with_name(f".{path.name[:40]}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        write(tmp)
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise CsrnetError(f"{path}: exists (use --overwrite to replace it)") from None
            except OSError:  # file systems without hard links: check, then rename
                if path.exists():
                    raise CsrnetError(f"{path}: exists (use --overwrite to replace it)") from None
                os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _to_pil(photo: Photo, fmt: str) -> Image.Image:
    px = photo.pixels
    if isinstance(px, np.ndarray):  # 16-bit pixels into an 8-bit format: round to 8 bits
        px = Image.fromarray(px if px.dtype == np.uint8 else _to8(px), "RGB")
    alpha = photo.alpha
    if alpha is not None and fmt in ("png", "tif"):
        if isinstance(alpha, np.ndarray):
            alpha = Image.fromarray(_to8(alpha), "L")
        px = px.copy()
        px.putalpha(alpha)
    return px


def _to8(a: np.ndarray) -> np.ndarray:
    return ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def write_photo(
    photo: Photo,
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    quality: int = 95,
    overwrite: bool = False,
) -> Path:
    """Encode ``photo`` to ``path`` (format from ``format`` or the extension), atomically, with its metadata.

    16-bit pixels are written as 16-bit TIFF (tifffile) or PNG (libpng via imagecodecs);
    as JPEG they are reduced to 8 bits. TIFFs (both depths) are written with tifffile:
    Deflate with horizontal predictor, ICC profile, resolution, EXIF (IFD0 tags plus the
    EXIF and GPS directories).
    """
    path = Path(path)
    fmt = format or {".jpg": "jpg", ".jpeg": "jpg", ".png": "png", ".tif": "tif", ".tiff": "tif"}.get(path.suffix.lower())
    if fmt not in FORMATS:
        raise CsrnetError(f"{path}: unknown output format (use .jpg, .png or .tif)")
    if not path.parent.is_dir():
        raise CsrnetError(f"{path.parent}: output folder does not exist" if not path.parent.exists() else f"{path.parent}: is not a folder")
    sixteen = isinstance(photo.pixels, np.ndarray) and photo.pixels.dtype == np.uint16

    def write(tmp: Path) -> None:
        if fmt == "tif":
            _write_tiff(photo, tmp)
            return
        if sixteen and fmt == "png":
            _write_png16(photo, tmp)
            return
        if fmt == "jpg" and (encoded := _jpeg_from_array(photo, quality)) is not None:
            tmp.write_bytes(encoded)
            return
        im = _to_pil(photo, fmt)
        kwargs: dict = {}
        if photo.icc_profile:
            kwargs["icc_profile"] = photo.icc_profile
        if photo.exif:
            kwargs["exif"] = photo.exif
        if photo.dpi:
            kwargs["dpi"] = photo.dpi
        if fmt == "jpg":
            kwargs.update(quality=quality)
        im.save(tmp, FORMATS[fmt][0], **kwargs)

    atomic_write(path, write, overwrite=overwrite)
    return path


def _jpeg_from_array(photo: Photo, quality: int) -> bytes | None:
    """The JPEG file Pillow's ``save(quality=..., exif=..., icc_profile=..., dpi=...)`` writes for
    8-bit array pixels, byte for byte (tested), from libjpeg-turbo through imagecodecs: no copy into
    a PIL image (~60 ms at 24 MP) and a faster encoder. The metadata segments are laid out as Pillow
    lays them out (JFIF density, then APP1 EXIF, then APP2 ICC chunks) because imagecodecs writes
    none. None (use Pillow) for anything else: PIL pixels, 16 bits, alpha, or metadata Pillow
    would refuse or treat specially."""
    px, exif, icc, dpi = photo.pixels, photo.exif, photo.icc_profile, photo.dpi
    if not isinstance(px, np.ndarray) or px.dtype != np.uint8 or px.ndim != 3 or px.shape[2] != 3 or photo.alpha is not None:
        return None
    if exif and (not exif.startswith(b"Exif\x00\x00") or len(exif) > 65533):
        return None
    if icc and len(icc) > 255 * _ICC_CHUNK:
        return None
    density = tuple(round(v) for v in dpi) if dpi else None
    if density and not all(0 < v < 65536 for v in density):
        return None
    import imagecodecs

    encoded = imagecodecs.jpeg8_encode(np.ascontiguousarray(px), level=quality)
    if encoded[:4] != b"\xff\xd8\xff\xe0" or encoded[6:11] != b"JFIF\x00":
        return None
    end = 4 + struct.unpack(">H", encoded[4:6])[0]
    app0 = bytearray(encoded[2:end])
    if density:  # units 1 (dots per inch), X and Y density, as Pillow passes dpi to libjpeg
        app0[11:16] = struct.pack(">BHH", 1, *density)
    segments = [b"\xff\xd8", bytes(app0)]
    if exif:
        segments.append(b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif)
    if icc:
        chunks = [icc[i : i + _ICC_CHUNK] for i in range(0, len(icc), _ICC_CHUNK)]
        for i, chunk in enumerate(chunks):
            segments.append(b"\xff\xe2" + struct.pack(">H", len(chunk) + 16) + b"ICC_PROFILE\x00" + bytes((i + 1, len(chunks))) + chunk)
    segments.append(encoded[end:])
    return b"".join(segments)


_ICC_CHUNK = 65519  # profile bytes per APP2 segment (65535 less the length field and 14-byte header)


def _write_tiff(photo: Photo, tmp: Path) -> None:
    import tifffile

    if isinstance(photo.pixels, np.ndarray):
        data, alpha = photo.pixels, photo.alpha
        if isinstance(alpha, Image.Image):
            alpha = np.asarray(alpha).astype(np.uint16) * 257
    else:
        data, alpha = np.asarray(photo.pixels), photo.alpha
        if isinstance(alpha, np.ndarray):
            alpha = _to8(alpha)
    if alpha is not None:
        data = np.concatenate([data, np.asarray(alpha, data.dtype)[..., None]], axis=2)
    exif = Image.Exif()
    _bad_exif = (SyntaxError, ValueError, OSError, KeyError, IndexError, struct.error)
    if photo.exif:
        try:
            exif.load(photo.exif)
        except _bad_exif:  # an unparseable EXIF block is not carried into the TIFF; the photo still is
            exif = Image.Exif()
    extratags: list[tuple] = []
    for tag, dtype in _IFD0_KEEP.items():
        value = exif.get(tag)
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if value is None or (dtype == "H" and not isinstance(value, int)):
            continue
        extratags.append((tag, dtype, 0 if dtype == "s" else 1, str(value).rstrip("\x00") if dtype == "s" else value, True))
    try:
        subifds = {tag: exif.get_ifd(tag) for tag in (_EXIF_IFD, _GPS_IFD) if tag in exif and exif.get_ifd(tag)}
    except _bad_exif:  # sub-directory offsets pointing nowhere
        subifds = {}
    # tifffile refuses to write the EXIF/GPS pointer tags: write placeholders numbered one
    # below (so the directory stays sorted), renamed and pointed by _append_subifds
    extratags += [(tag - 1, "I", 1, 0, True) for tag in subifds]
    if photo.icc_profile:
        extratags.append((34675, "B", len(photo.icc_profile), photo.icc_profile, True))
    tifffile.imwrite(
        tmp, data, photometric="rgb", compression="zlib", predictor=True, extrasamples=("unassalpha",) if alpha is not None else None,
        extratags=extratags, resolution=tuple(photo.dpi) if photo.dpi else None,
        resolutionunit="INCH" if photo.dpi else None, metadata=None, maxworkers=2, rowsperstrip=64,
    )
    if subifds:
        _append_subifds(tmp, subifds)


def _append_subifds(path: Path, subifds: dict[int, dict]) -> None:
    """Append the EXIF/GPS directories to a TIFF written by tifffile and point IFD0 at them.

    tifffile writes no EXIF sub-directory, so Pillow's IFD serializer (which lays out a
    directory for a given file offset) writes each one at the end of the file, tifffile's
    tag rewriting sets the placeholder's value to that offset, and the placeholder's tag
    number (``tag - 1``) is set to the real one.
    """
    import tifffile
    from PIL import TiffImagePlugin

    with tifffile.TiffFile(path, mode="r+b") as tf:
        fh = tf.filehandle
        prefix = b"II" if tf.byteorder == "<" else b"MM"
        for tag, values in subifds.items():
            ifd = TiffImagePlugin.ImageFileDirectory_v2(ifh=prefix + (b"*\x00" if prefix == b"II" else b"\x00*") + b"\x00" * 4, group=tag)
            for k, v in values.items():
                if not isinstance(v, dict):
                    ifd[k] = v
            fh.seek(0, os.SEEK_END)
            offset = fh.tell()
            if offset % 2:
                fh.write(b"\x00")
                offset += 1
            fh.write(ifd.tobytes(offset))
            placeholder = tf.pages.first.tags[tag - 1]
            placeholder.overwrite(offset)
            fh.seek(placeholder.offset)
            fh.write(struct.pack(tf.byteorder + "H", tag))


def _write_png16(photo: Photo, tmp: Path) -> None:
    """16-bit PNG: pixels encoded by libpng (imagecodecs; Pillow has no 16-bit RGB mode), then
    the metadata chunks (iCCP, eXIf, pHYs) inserted after IHDR with pypng's chunk tools."""
    import zlib

    import imagecodecs
    import png

    data = photo.pixels
    if photo.alpha is not None:
        alpha = photo.alpha if isinstance(photo.alpha, np.ndarray) else np.asarray(photo.alpha).astype(np.uint16) * 257
        data = np.concatenate([data, alpha[..., None].astype(np.uint16)], axis=2)
    encoded = imagecodecs.png_encode(np.ascontiguousarray(data), level=3)
    extra: list[tuple[bytes, bytes]] = []
    if photo.icc_profile:
        extra.append((b"iCCP", b"icc\x00\x00" + zlib.compress(photo.icc_profile)))
    if photo.exif:
        extra.append((b"eXIf", photo.exif[6:] if photo.exif.startswith(b"Exif\x00\x00") else photo.exif))
    if photo.dpi:
        extra.append((b"pHYs", struct.pack(">IIB", round(photo.dpi[0] / 0.0254), round(photo.dpi[1] / 0.0254), 1)))
    chunks = list(png.Reader(bytes=encoded).chunks())
    with open(tmp, "wb") as f:
        png.write_chunks(f, chunks[:1] + extra + chunks[1:])
