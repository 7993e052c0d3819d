"""Per-format readers and writers (the codecs behind :mod:`csrnet.io.formats`' table).

Readers return a :class:`~csrnet.io.photo.Photo` (pixels as stored, metadata beside them); writers
take a Photo and a temporary path (the table's caller makes the write atomic). Which format a
file is, and which reader or writer handles it, is decided by the table, not here.
"""

from __future__ import annotations

import os
import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import MissingDependencyError, PhotoError, UnsupportedFormatError
from .photo import (
    DEFAULT_MAX_PIXELS,
    EXIF_IFD,
    GPS_IFD,
    IFD0_KEEP,
    Photo,
    check_size,
    exif_from_tags,
    exif_from_tifffile,
    image_to_srgb,
    needs_conversion,
    reason,
    srgb_profile,
)

__all__ = [
    "RAW_DECODE",
    "decode_raw",
    "jpeg_from_array",
    "png_bit_depth",
    "read_pillow",
    "read_tiff",
    "write_pillow",
    "write_png_array",
    "write_tiff",
]

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
            raise UnsupportedFormatError(f"unsupported 32-bit integer image (values {arr.min()}..{arr.max()})")
        return np.repeat(arr.astype(np.uint16)[..., None], 3, axis=2), None
    if mode == "F":
        raise UnsupportedFormatError("unsupported floating-point image mode F")
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


def png_bit_depth(head: bytes) -> int | None:
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
        raise MissingDependencyError("reading HEIC/HEIF needs pillow-heif: pip install 'csrnet-retouch[heif]'") from None
    pillow_heif.register_heif_opener()


def read_pillow(path: Path, max_pixels: int, head: bytes, *, as_array: bool = False, heif: bool = False) -> Photo:
    """Any format Pillow opens (``heif``: register pillow-heif's opener first); 16-bit PNGs through
    libpng; with ``as_array``, 8-bit RGB JPEGs and PNGs that need no colour conversion as uint8
    arrays (libjpeg-turbo / libpng through imagecodecs: the same pixels, without a PIL image's
    4-byte-per-pixel copy)."""
    if heif:
        _heif_opener()
    # Pillow refuses images over 2 x MAX_IMAGE_PIXELS (179 MP by default) on its own, below the
    # documented limit; raise its cap so max_pixels decides (only ever raised, so thread-safe).
    if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < max_pixels:
        Image.MAX_IMAGE_PIXELS = max_pixels
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(path) as im:
            check_size(path, *im.size, max_pixels)
            info = dict(im.info)
            fmt = (im.format or "").lower()
            exif = info.get("exif")
            icc = info.get("icc_profile") or None
            if png_bit_depth(head) == 16:
                pixels, alpha = _rgb16(_read_png16(path))
            elif as_array and im.format == "JPEG" and im.mode == "RGB" and not needs_conversion(icc) and (array := _jpeg_pixels(path, im.size)) is not None:
                pixels, alpha = array, None
            elif as_array and im.format == "PNG" and im.mode == "RGB" and png_bit_depth(head) == 8 and not needs_conversion(icc) \
                    and (decoded := _png8_pixels(path, im.size)) is not None:
                (pixels, late_exif), alpha = decoded, None
                exif = exif or late_exif
            else:
                im.load()
                if icc and im.mode in ("L", "CMYK") and needs_conversion(icc):
                    im, icc = image_to_srgb(im, icc), srgb_profile()  # gray/CMYK profiles cannot tag an RGB output
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


def _png8_pixels(path: Path, size: tuple[int, int]) -> tuple[np.ndarray, bytes | None] | None:
    """An 8-bit RGB PNG's pixels as an (H, W, 3) uint8 array (libpng through imagecodecs: the same
    pixels as Pillow) and its eXIf chunk wherever it sits (Pillow reads one after the image data only
    when it decodes the pixels itself). libpng sees only the critical chunks, so a damaged ancillary
    chunk (eXIf, iCCP, text) cannot make it print warnings; None (use Pillow, and its error messages)
    for anything pypng or libpng will not read."""
    import io

    import imagecodecs
    import png

    data = path.read_bytes()
    try:
        chunks = list(png.Reader(bytes=data).chunks())
        critical = io.BytesIO()
        png.write_chunks(critical, [(k, b) for k, b in chunks if k in (b"IHDR", b"PLTE", b"IDAT", b"IEND")])
        del data
        arr = imagecodecs.png_decode(critical.getbuffer())
    except (png.Error, imagecodecs.PngError, ValueError, EOFError):
        return None
    if arr.shape != (size[1], size[0], 3) or arr.dtype != np.uint8:
        return None
    exif = next((body for kind, body in chunks if kind == b"eXIf"), None)
    return arr, (b"Exif\x00\x00" + exif if exif and not exif.startswith(b"Exif\x00\x00") else exif)


def _jpeg_pixels(path: Path, size: tuple[int, int]) -> np.ndarray | None:
    """An RGB JPEG's pixels as an (H, W, 3) uint8 array, decoded by libjpeg-turbo through imagecodecs:
    the same pixels as Pillow's decode (checked on every JPEG in the shared data), faster, and without
    the copy out of a PIL image that numpy code then needs (bench/results/design_timings.md).
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


def read_tiff(path: Path, max_pixels: int) -> Photo:
    """TIFF through tifffile: the pixels as stored (Pillow's libtiff reader applies the EXIF
    orientation to them), 16-bit kept, ICC tag 34675, resolution tags, EXIF."""
    import tifffile

    with tifffile.TiffFile(path) as tf:
        page = tf.pages.first
        check_size(path, page.imagewidth, page.imagelength, max_pixels)
        photometric = int(page.photometric)
        if photometric not in (1, 2) or page.dtype is None:  # palette, CMYK, YCbCr ...: Pillow converts them
            return read_pillow(path, max_pixels, b"")
        arr = page.asarray()
        if page.planarconfig == 2 and arr.ndim == 3:  # separate planes: (S, H, W)
            arr = np.moveaxis(arr, 0, -1)
        icc = page.tags[34675].value if 34675 in page.tags else None
        dpi = _tiff_resolution(page)
    try:
        with Image.open(path) as im:  # lazily, for the EXIF directories only: no pixel is decoded
            exif = exif_from_tags(im)
    except (UnidentifiedImageError, OSError):  # layouts Pillow cannot open (floating-point RGB ...)
        exif = exif_from_tifffile(path, None)
    if arr.dtype.kind == "f":  # floating-point TIFF: [0, 1] -> 16 bits
        arr = np.clip(np.nan_to_num(arr) * 65535.0 + 0.5, 0, 65535).astype(np.uint16)
    elif arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    elif arr.dtype not in (np.uint8, np.uint16):
        raise UnsupportedFormatError(f"{path}: unsupported TIFF sample type {arr.dtype}")
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
        raise MissingDependencyError("reading camera RAW needs rawpy: pip install rawpy") from None
    params = {**RAW_DECODE, "output_color": rawpy.ColorSpace.sRGB, **options}
    try:
        with rawpy.imread(str(path)) as raw:
            sizes = raw.sizes
            check_size(path, sizes.width, sizes.height, max_pixels)
            rgb = raw.postprocess(**params)
    except rawpy.LibRawError as e:
        raise PhotoError(f"{path}: cannot decode camera RAW ({type(e).__name__}: {reason(e) or 'unsupported'})") from None
    orientation = _FLIP_TO_ORIENTATION.get(sizes.flip, 1) if params.get("user_flip", -1) == 0 else 1
    try:
        with Image.open(path) as im:
            exif = exif_from_tags(im, orientation)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError):  # Pillow cannot open it (e.g. a CFA-only DNG)
        exif = exif_from_tifffile(path, orientation)
    return Photo(np.ascontiguousarray(rgb, dtype=np.uint16), exif, srgb_profile(), None, None, "raw", path)


# ---------------------------------------------------------------- writers
def to_pil(photo: Photo, *, keep_alpha: bool) -> Image.Image:
    """The pixels as an 8-bit RGB (or RGBA with ``keep_alpha`` and an alpha channel) PIL image."""
    px = photo.pixels
    if isinstance(px, np.ndarray):  # 16-bit pixels into an 8-bit format: round to 8 bits
        px = Image.fromarray(px if px.dtype == np.uint8 else _to8(px), "RGB")
    alpha = photo.alpha
    if alpha is not None and keep_alpha:
        if isinstance(alpha, np.ndarray):
            alpha = Image.fromarray(_to8(alpha), "L")
        px = px.copy()
        px.putalpha(alpha)
    return px


def _to8(a: np.ndarray) -> np.ndarray:
    return ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def jpeg_from_array(photo: Photo, quality: int) -> bytes | None:
    """The JPEG file Pillow's ``save(quality=..., exif=..., icc_profile=..., dpi=...)`` writes for
    8-bit array pixels, byte for byte (tested), from libjpeg-turbo through imagecodecs: no copy into
    a PIL image and a faster encoder. The metadata segments are laid out as Pillow
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


def write_tiff(photo: Photo, tmp: Path) -> None:
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
    for tag, dtype in IFD0_KEEP.items():
        value = exif.get(tag)
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if value is None or (dtype == "H" and not isinstance(value, int)):
            continue
        extratags.append((tag, dtype, 0 if dtype == "s" else 1, str(value).rstrip("\x00") if dtype == "s" else value, True))
    try:
        subifds = {tag: exif.get_ifd(tag) for tag in (EXIF_IFD, GPS_IFD) if tag in exif and exif.get_ifd(tag)}
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


def write_png_array(photo: Photo, tmp: Path) -> None:
    """PNG from (H, W, 3) uint8 or uint16 array pixels: encoded by libpng (imagecodecs; Pillow has no
    16-bit RGB mode, and for 8 bits it would first copy the pixels into a 4-byte-per-pixel image), then
    the metadata chunks (iCCP, eXIf, pHYs) inserted after IHDR with pypng's chunk tools."""
    import zlib

    import imagecodecs
    import png

    data = photo.pixels
    sixteen = data.dtype == np.uint16
    if photo.alpha is not None:
        alpha = np.asarray(photo.alpha)
        if sixteen and alpha.dtype != np.uint16:
            alpha = alpha.astype(np.uint16) * 257
        elif not sixteen and alpha.dtype != np.uint8:
            alpha = ((alpha.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
        data = np.concatenate([data, alpha[..., None].astype(data.dtype)], axis=2)
    encoded = imagecodecs.png_encode(np.ascontiguousarray(data), level=3 if sixteen else 6)  # 6: Pillow's default
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


def write_pillow(photo: Photo, tmp: Path, pil_format: str, *, quality: int = 95) -> None:
    """Encode through Pillow as ``pil_format`` (JPEG, PNG, WEBP ...) with ICC, EXIF and resolution;
    16-bit pixels are rounded to 8 bits, alpha is kept where the format has it."""
    im = to_pil(photo, keep_alpha=pil_format in ("PNG", "TIFF", "WEBP"))
    kwargs: dict = {}
    if photo.icc_profile:
        kwargs["icc_profile"] = photo.icc_profile
    if photo.exif:
        kwargs["exif"] = photo.exif
    if photo.dpi and pil_format != "WEBP":
        kwargs["dpi"] = photo.dpi
    if pil_format in ("JPEG", "WEBP"):
        kwargs.update(quality=quality)
    im.save(tmp, pil_format, **kwargs)
