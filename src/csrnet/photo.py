"""Reading and writing photos with their metadata, atomically.

A :class:`Photo` is the RGB pixels the engine works on plus everything needed to
write the result back the way the original was: EXIF (unchanged bytes, so the
orientation tag and camera data survive), ICC profile, resolution, and an alpha
channel set aside. Pixels are never rotated: the EXIF orientation travels with the
file, so viewers show the result the way they showed the original.

Mode handling (documented in the README): RGB as is; grayscale, palette and CMYK are
converted to RGB (the output is RGB); an alpha channel (RGBA, LA, palette
transparency) is kept aside and written back to PNG/TIFF, dropped for JPEG; 16-bit
images stay 16-bit as (H, W, 3) uint16 arrays.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import CsrnetError

__all__ = ["Photo", "read_photo", "write_photo", "atomic_write", "FORMATS", "DEFAULT_MAX_PIXELS"]

#: Refuse images above this many pixels before decoding them (decompression bombs).
#: 250 MP admits every camera sold today (the largest are ~150-200 MP).
DEFAULT_MAX_PIXELS = 250_000_000
#: Output format name -> (Pillow format, file extension).
FORMATS = {"jpg": ("JPEG", ".jpg"), "png": ("PNG", ".png"), "tif": ("TIFF", ".tif")}
_FORMAT_OF_PIL = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "TIFF": "tif"}


@dataclass
class Photo:
    """Pixels plus the metadata to write back.

    pixels: RGB ``PIL.Image`` (8-bit) or (H, W, 3) ``uint16`` array (16-bit sources).
    alpha: the alpha channel (same kind and size as the pixels) or None.
    """

    pixels: Image.Image | np.ndarray
    exif: bytes | None = None
    icc_profile: bytes | None = None
    dpi: tuple[float, float] | None = None
    alpha: Image.Image | np.ndarray | None = None
    format: str = "png"  # our format key of the source: jpg, png or tif
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


def read_photo(path: str | os.PathLike[str], *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Photo:
    """Decode a photo file (JPEG, PNG, TIFF and what Pillow reads) with its metadata.

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
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                if w * h > max_pixels:
                    raise CsrnetError(f"{path}: {w}x{h} pixels is over the limit of {max_pixels:,} (possible decompression bomb; raise --max-pixels to allow)")
                if w < 1 or h < 1:
                    raise CsrnetError(f"{path}: empty image ({w}x{h})")
                im.load()
                info = dict(im.info)
                fmt = _FORMAT_OF_PIL.get(im.format or "", "png")
                exif = info.get("exif")
                if exif is None and im.format == "TIFF":
                    tiff_exif = im.getexif()
                    exif = tiff_exif.tobytes() if len(tiff_exif) else None
                pixels, alpha = _split_modes(im)
                if isinstance(pixels, Image.Image) and pixels is im:
                    pixels = im.copy()
    except CsrnetError:
        raise
    except Image.DecompressionBombError as e:
        raise CsrnetError(f"{path}: refused, {_reason(e)}") from None
    except UnidentifiedImageError:
        raise CsrnetError(f"{path}: not an image Pillow can read (unknown or corrupt format)") from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError, TypeError, IndexError, KeyError) as e:
        raise CsrnetError(f"{path}: cannot decode ({_reason(e)})") from None
    dpi = info.get("dpi")
    return Photo(
        pixels=pixels,
        exif=exif if isinstance(exif, bytes) and exif else None,
        icc_profile=info.get("icc_profile") or None,
        dpi=tuple(float(v) for v in dpi) if dpi else None,  # type: ignore[arg-type]
        alpha=alpha,
        format=fmt,
        path=path,
    )


def atomic_write(path: Path, write, *, overwrite: bool = False) -> None:
    """Call ``write(tmp_path)`` then move the finished file to ``path`` in one step.

    The temporary file sits beside ``path`` (same file system) and is removed on any
    failure, so ``path`` is either absent or complete. Without ``overwrite`` the move
    is a hard link, which fails if ``path`` appeared meanwhile (another process), so an
    existing file is never replaced.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
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
        px = Image.fromarray(((px.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8), "RGB")
    if photo.alpha is not None and fmt in ("png", "tif") and isinstance(photo.alpha, Image.Image):
        px = px.copy()
        px.putalpha(photo.alpha)
    return px


def write_photo(
    photo: Photo,
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    quality: int = 95,
    overwrite: bool = False,
) -> Path:
    """Encode ``photo`` to ``path`` (format from ``format`` or the extension), atomically, with its metadata.

    16-bit pixels are written as 16-bit TIFF (tifffile) or PNG; as JPEG they are reduced to 8 bits.
    """
    path = Path(path)
    fmt = format or {".jpg": "jpg", ".jpeg": "jpg", ".png": "png", ".tif": "tif", ".tiff": "tif"}.get(path.suffix.lower())
    if fmt not in FORMATS:
        raise CsrnetError(f"{path}: unknown output format (use .jpg, .png or .tif)")
    if not path.parent.is_dir():
        raise CsrnetError(f"{path.parent}: output folder does not exist" if not path.parent.exists() else f"{path.parent}: is not a folder")
    sixteen = isinstance(photo.pixels, np.ndarray) and photo.pixels.dtype == np.uint16 and fmt in ("png", "tif")

    def write(tmp: Path) -> None:
        if sixteen and fmt == "tif":
            _write_tiff16(photo, tmp)
            return
        if sixteen and fmt == "png":
            _write_png16(photo, tmp)
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
        elif fmt == "tif":
            kwargs.update(compression="tiff_adobe_deflate")
        im.save(tmp, FORMATS[fmt][0], **kwargs)

    atomic_write(path, write, overwrite=overwrite)
    return path


def _write_tiff16(photo: Photo, tmp: Path) -> None:
    import tifffile

    data = photo.pixels
    if photo.alpha is not None and isinstance(photo.alpha, np.ndarray):
        data = np.concatenate([data, photo.alpha[..., None].astype(np.uint16)], axis=2)
    extratags = []
    if photo.icc_profile:
        extratags.append((34675, 7, len(photo.icc_profile), photo.icc_profile, True))
    res = (photo.dpi, "INCH") if photo.dpi else None
    tifffile.imwrite(tmp, data, photometric="rgb", compression="zlib", extratags=extratags, resolution=res, metadata=None)


def _write_png16(photo: Photo, tmp: Path) -> None:
    # Written by hand (standard library zlib + struct, ~20 lines): Pillow has no 16-bit RGB
    # mode, so it cannot write a 16-bit RGB PNG, and the alternatives (OpenCV, pypng) add a
    # large or unmaintained dependency for one chunk layout that the PNG spec fixes.
    import struct
    import zlib

    arr = np.ascontiguousarray(photo.pixels.astype(">u2"))
    h, w, _ = arr.shape
    raw = b"".join(b"\x00" + arr[y].tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    parts = [b"\x89PNG\r\n\x1a\n", chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))]
    if photo.icc_profile:
        parts.append(chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(photo.icc_profile)))
    if photo.exif:
        exif = photo.exif[6:] if photo.exif.startswith(b"Exif\x00\x00") else photo.exif
        parts.append(chunk(b"eXIf", exif))
    parts += [chunk(b"IDAT", zlib.compress(raw, 6)), chunk(b"IEND", b"")]
    tmp.write_bytes(b"".join(parts))
