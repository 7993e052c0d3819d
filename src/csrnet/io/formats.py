"""The one table of file formats, and the two calls that use it: :func:`read_photo`, :func:`write_photo`.

Each :class:`Format` row holds a format's extensions, MIME type, the bit depths it writes, how
to recognise it from its first bytes, its reader and its writer (None: read only), and what a
read-only format is written as. The CLI's ``--format`` choices (:func:`output_formats`), the
batch's default output (:func:`default_output`), the web app's media types (:func:`media_type`)
and folder scanning (:func:`input_extensions`) are all derived from it.

Adding a format: one :class:`Format` row in :data:`FORMATS` and, if it is written, one writer in
:mod:`csrnet.io.codecs` (or :func:`~csrnet.io.codecs.write_pillow` with Pillow's format name).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import CsrnetError, PhotoError, TooLargeError, UnsupportedFormatError
from . import codecs
from .atomic import atomic_write
from .photo import DEFAULT_MAX_PIXELS, Photo, reason, to_srgb

__all__ = [
    "FORMATS",
    "Format",
    "default_output",
    "detect_format",
    "format_for_path",
    "input_extensions",
    "media_type",
    "output_formats",
    "read_photo",
    "write_photo",
]

Reader = Callable[[Path, int, bytes, bool], Photo]
Writer = Callable[[Photo, Path, int], None]


@dataclass(frozen=True)
class Format:
    """One file format: what it is called, how it is recognised, read and written."""

    key: str  #: short name (``--format`` value, ``Photo.format``)
    name: str  #: human name
    extensions: tuple[str, ...]  #: lower-case, with the dot; the first is the one written
    mime: str
    depths: tuple[int, ...]  #: bits per channel written (read-only formats: those read)
    sniff: Callable[[bytes], bool] | None  #: recognises the file from its first 64 bytes
    reader: Reader
    writer: Writer | None = None  #: None: read only
    written_as: str = "tif"  #: for read-only formats: the format a retouched copy is written in

    @property
    def extension(self) -> str:
        return self.extensions[0]


def _pillow(path: Path, max_pixels: int, head: bytes, as_array: bool) -> Photo:
    return codecs.read_pillow(path, max_pixels, head, as_array=as_array)


def _heif(path: Path, max_pixels: int, head: bytes, as_array: bool) -> Photo:
    return codecs.read_pillow(path, max_pixels, head, heif=True)


def _tiff(path: Path, max_pixels: int, head: bytes, as_array: bool) -> Photo:
    return codecs.read_tiff(path, max_pixels)


def _raw(path: Path, max_pixels: int, head: bytes, as_array: bool) -> Photo:
    return codecs.decode_raw(path, max_pixels=max_pixels)


def _write_jpeg(photo: Photo, tmp: Path, quality: int) -> None:
    encoded = codecs.jpeg_from_array(photo, quality)  # libjpeg-turbo straight from numpy: Pillow's bytes
    if encoded is not None:
        tmp.write_bytes(encoded)
    else:
        codecs.write_pillow(photo, tmp, "JPEG", quality=quality)


def _write_png(photo: Photo, tmp: Path, quality: int) -> None:
    if isinstance(photo.pixels, np.ndarray):
        codecs.write_png_array(photo, tmp)
    else:
        codecs.write_pillow(photo, tmp, "PNG")


_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_HEIF_BRANDS = (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftyphevc", b"ftypheim")
_RAW_EXTENSIONS = tuple(
    ".dng .cr2 .cr3 .crw .nef .nrw .arw .srf .sr2 .raf .orf .rw2 .rwl .pef .srw .x3f .3fr .fff .iiq .erf .kdc .dcr .mrw .mos .raw".split()
)

#: Every format csrnet knows, in the order content sniffing tries them.
FORMATS: tuple[Format, ...] = (
    Format("jpg", "JPEG", (".jpg", ".jpeg"), "image/jpeg", (8,), lambda h: h.startswith(b"\xff\xd8\xff"), _pillow, _write_jpeg),
    Format("png", "PNG", (".png",), "image/png", (8, 16), lambda h: h.startswith(b"\x89PNG"), _pillow, _write_png),
    Format("tif", "TIFF", (".tif", ".tiff"), "image/tiff", (8, 16), lambda h: h[:4] in _TIFF_MAGIC, _tiff,
           lambda photo, tmp, quality: codecs.write_tiff(photo, tmp)),
    Format("webp", "WebP", (".webp",), "image/webp", (8,), lambda h: h[:4] == b"RIFF" and h[8:12] == b"WEBP", _pillow,
           lambda photo, tmp, quality: codecs.write_pillow(photo, tmp, "WEBP", quality=quality)),
    Format("bmp", "BMP", (".bmp",), "image/bmp", (8,), lambda h: h.startswith(b"BM"), _pillow),
    Format("gif", "GIF", (".gif",), "image/gif", (8,), lambda h: h.startswith(b"GIF8"), _pillow),
    Format("heif", "HEIC/HEIF", (".heic", ".heif", ".hif"), "image/heic", (8,), lambda h: h[4:12] in _HEIF_BRANDS, _heif, written_as="jpg"),
    # camera RAW files are mostly TIFF-structured: told by their extension, before sniffing (reader: rawpy)
    Format("raw", "camera RAW", _RAW_EXTENSIONS, "image/x-raw", (16,), None, _raw),
)
_BY_KEY = {f.key: f for f in FORMATS}
_BY_EXTENSION = {ext: f for f in FORMATS for ext in f.extensions}


def output_formats() -> list[str]:
    """Keys of the formats csrnet writes (the ``--format`` choices)."""
    return [f.key for f in FORMATS if f.writer is not None]


def input_extensions(*, with_gif: bool = False) -> frozenset[str]:
    """Extensions a folder scan picks up (GIF is read when named, but folders of GIFs are not photos)."""
    return frozenset(ext for f in FORMATS if with_gif or f.key != "gif" for ext in f.extensions)


def format_for_path(path: str | os.PathLike[str]) -> Format | None:
    """The format a file name's extension names (None for an unknown extension)."""
    return _BY_EXTENSION.get(Path(path).suffix.lower())


def _writable(key: str) -> Format:
    fmt = _BY_KEY.get(key)
    if fmt is None or fmt.writer is None:
        raise UnsupportedFormatError(f"unknown output format {key!r} (use {', '.join(output_formats())})")
    return fmt


def default_output(src: str | os.PathLike[str], fmt: str | None = None) -> Format:
    """The format a retouched copy of ``src`` is written in: ``fmt`` if given; else the source's own
    format if csrnet writes it, else the source format's ``written_as`` (camera RAW -> 16-bit TIFF,
    HEIC -> JPEG, BMP/GIF -> TIFF); unknown extensions -> TIFF."""
    if fmt is not None:
        return _writable(fmt)
    src_fmt = format_for_path(src)
    if src_fmt is None:
        return _BY_KEY["tif"]
    return src_fmt if src_fmt.writer is not None else _writable(src_fmt.written_as)


def media_type(path: str | os.PathLike[str]) -> str:
    """The MIME type of a file csrnet wrote, from its extension."""
    fmt = format_for_path(path)
    return fmt.mime if fmt else "application/octet-stream"


def detect_format(path: str | os.PathLike[str]) -> Format | None:
    """The format of the file at ``path`` from its content (first bytes; RAW files by their extension),
    or None when csrnet's table does not know it."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError:
        return None
    return _sniff(path, head) if head else None


def _sniff(path: Path, head: bytes) -> Format | None:
    by_name = format_for_path(path)
    others = [f for f in FORMATS if f.sniff is not None and f.sniff(head)]
    # the content decides over the name: a PNG/JPEG/WebP/GIF/BMP named .dng is not a RAW, but a
    # TIFF-structured file named .dng/.nef/... is one
    if by_name is not None and by_name.sniff is None and all(f.key == "tif" for f in others):
        return by_name
    return others[0] if others else None


def read_photo(path: str | os.PathLike[str], *, max_pixels: int = DEFAULT_MAX_PIXELS, convert_to_srgb: bool = True,
               as_array: bool = False) -> Photo:
    """Decode a photo file of any format in :data:`FORMATS` (and what else Pillow reads) with its metadata.

    16-bit PNG and TIFF come back as (H, W, 3) uint16 arrays, RAW files as 16-bit sRGB
    (:func:`csrnet.io.codecs.decode_raw`), everything else as an RGB PIL image. With
    ``convert_to_srgb`` (default) pixels tagged with another ICC profile are converted to sRGB and
    tagged sRGB. ``as_array``: 8-bit RGB JPEGs and PNGs whose pixels need no colour conversion come
    back as (H, W, 3) uint8 arrays (the same pixels, decoded faster and without a PIL image's
    4-byte-per-pixel copy, ready for numpy code; :func:`write_photo` encodes such arrays as JPEG byte
    for byte as Pillow would).

    Raises :class:`~csrnet.errors.PhotoError` (:class:`~csrnet.errors.TooLargeError` over
    ``max_pixels``, refused from the header before any pixel is decoded) with a one-line reason.
    """
    path = Path(path)
    if not path.exists():
        raise PhotoError(f"{path}: no such file")
    if path.is_dir():
        raise PhotoError(f"{path}: is a folder, not a photo")
    try:
        with open(path, "rb") as f:
            head = f.read(64)
        if not head:
            raise PhotoError(f"{path}: empty file (0 bytes)")
        fmt = _sniff(path, head)
        photo = (fmt.reader if fmt else _pillow)(path, max_pixels, head, as_array)
        if fmt is not None:
            photo = replace(photo, format=fmt.key)
    except CsrnetError:
        raise
    except Image.DecompressionBombError:  # Pillow's own guard (at twice its limit) spoke first: the project's message
        raise TooLargeError(f"{path}: image is over the limit of {max_pixels:,} pixels (possible decompression bomb; raise --max-pixels to allow)") from None
    except UnidentifiedImageError:
        raise PhotoError(f"{path}: not an image Pillow can read (unknown or corrupt format)") from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError, TypeError, IndexError, KeyError, RuntimeError) as e:
        raise PhotoError(f"{path}: cannot decode ({reason(e)})") from None
    return to_srgb(photo) if convert_to_srgb else photo


def write_photo(
    photo: Photo,
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    quality: int = 95,
    overwrite: bool = False,
) -> Path:
    """Encode ``photo`` to ``path`` (format from ``format`` or the extension), atomically, with its metadata.

    16-bit pixels are written as 16-bit TIFF (tifffile) or PNG (libpng via imagecodecs); into
    8-bit formats they are rounded to 8 bits. TIFFs (both depths) are written with tifffile:
    Deflate with horizontal predictor, ICC profile, resolution, EXIF (IFD0 tags plus the EXIF and
    GPS directories). Raises :class:`~csrnet.errors.OutputExistsError` if ``path`` exists and
    ``overwrite`` is false.
    """
    path = Path(path)
    fmt = _BY_KEY.get(format) if format else format_for_path(path)
    if fmt is None or fmt.writer is None:
        exts = ", ".join(_BY_KEY[k].extension for k in output_formats())
        raise UnsupportedFormatError(f"{path}: unknown output format (use {exts})")
    if not path.parent.is_dir():
        raise PhotoError(f"{path.parent}: output folder does not exist" if not path.parent.exists() else f"{path.parent}: is not a folder")
    writer = fmt.writer
    atomic_write(path, lambda tmp: writer(photo, tmp, quality), overwrite=overwrite)
    return path
