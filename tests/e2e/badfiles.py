"""The bad-input corpus: small, generated at test time (no binary file is committed).

Each :class:`Case` names one file (or folder, link) that ``build`` writes into a corpus
folder, the category it belongs to, and what ``csrnet enhance`` must do with it:

- ``"ok"``: enhanced; the output exists, is complete and decodes.
- ``"fail"``: one ``csrnet: failed: <path>: <reason>`` line, matching ``reason``; no output.
- ``"tiny"``: an image whose condition copy is under 5 px on a side. Photographers expect it to
  work (``"ok"``); until the engine pads such copies it must at least fail cleanly ("too small").
- ``"ignored"``: not a photo file (a folder named photo.jpg): left out of the batch, no line.

Source photos are three shared photos reduced to 160 px (test inputs stay tiny and fast).
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms

PHOTO_NAMES = ("gcompris_animal-bison.jpg", "gcompris_animal-chameleon.jpg", "gcompris_animal-crocodile.jpg")
#: An error line's reason for files Pillow cannot decode (unknown format, corrupt, truncated, empty).
UNREADABLE = r"not an image|cannot decode|cannot identify|truncated|empty"
#: An error line's reason for images refused from their header.
REFUSED = r"over the limit|decompression bomb|refused"


@dataclass(frozen=True)
class Sources:
    """Small real photos (RGB uint8 arrays) the generators encode, crop and damage."""

    photos: tuple[np.ndarray, ...]

    @staticmethod
    def from_folder(folder: Path, long_edge: int = 160) -> "Sources":
        out = []
        for name in PHOTO_NAMES:
            with Image.open(folder / name) as im:
                im = im.convert("RGB")
                im.thumbnail((long_edge, long_edge))
                out.append(np.asarray(im))
        return Sources(tuple(out))

    def encoded(self, i: int, fmt: str, **kw) -> bytes:
        return encode(Image.fromarray(self.photos[i % len(self.photos)]), fmt, **kw)


@dataclass(frozen=True)
class Case:
    name: str  # file name inside the corpus folder (str; surrogate escapes stand for non-UTF-8 bytes)
    category: str
    expect: str  # "ok" | "fail" | "tiny" | "ignored"
    make: Callable[[Path, Sources], None] = field(compare=False, repr=False)
    reason: str = ""  # regex the failure line must match (expect == "fail")
    explicit: bool = False  # passed by name on the command line (a folder scan would not pick it up)
    alpha: bool = False  # output (PNG/TIFF) must carry the input's alpha channel
    sixteen: bool = False  # output (PNG/TIFF) must stay 16-bit
    orientation: int | None = None  # EXIF orientation the output must carry

    @property
    def id(self) -> str:
        name = os.fsencode(self.name).decode("ascii", "backslashreplace").replace("\n", "\\n")
        return f"{self.category}-{name if len(name) <= 40 else name[:20] + '...' + name[-16:]}"


def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _bytes(data: bytes | Callable[[Sources], bytes]) -> Callable[[Path, Sources], None]:
    def make(path: Path, src: Sources) -> None:
        path.write_bytes(data(src) if callable(data) else data)

    return make


# ------------------------------------------------------------------ hand-built headers
# Bombs are a few hundred bytes whose header promises billions of pixels; Pillow's writers
# refuse to make them, so the headers are packed by hand from each format's spec.
def png_header(w: int, h: int) -> bytes:
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def jpeg_header(w: int, h: int) -> bytes:
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, h, w, 3) + b"\x01\x11\x00\x02\x11\x00\x03\x11\x00"
    return b"\xff\xd8" + sof + b"\xff\xd9"


def tiff_header(w: int, h: int) -> bytes:
    tags = [(256, 4, 1, w), (257, 4, 1, h), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1), (273, 4, 1, 8), (277, 3, 1, 1), (278, 4, 1, h), (279, 4, 1, 16)]
    ifd = struct.pack("<H", len(tags)) + b"".join(struct.pack("<HHII", t, typ, n, v) if typ == 4 else struct.pack("<HHIHH", t, typ, n, v, 0) for t, typ, n, v in tags) + b"\0\0\0\0"
    return b"II*\x00" + struct.pack("<I", 24) + b"\0" * 16 + ifd


def bmp_header(w: int, h: int) -> bytes:
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + len(info) + 64, 0, 0, 14 + len(info)) + info + b"\0" * 64


def exif_bytes(orientation: int = 1, make: str = "TestCam") -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = make
    return exif.tobytes()


def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def with_jpeg_segment(jpeg: bytes, marker: int, payload: bytes) -> bytes:
    """Insert an APPn segment right after SOI (payload up to 65533 bytes)."""
    return jpeg[:2] + struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload + jpeg[2:]


def png_with_chunk(png: bytes, tag: bytes, data: bytes) -> bytes:
    """Insert a chunk right after IHDR (which is always 8 + 25 bytes in)."""
    body = struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
    return png[:33] + body + png[33:]


def _noise(n: int, seed: int, prefix: bytes = b"") -> bytes:
    return prefix + np.random.default_rng(seed).bytes(n)


def _truncated(i: int, fmt: str, frac: float, **kw) -> Callable[[Sources], bytes]:
    def data(src: Sources) -> bytes:
        full = src.encoded(i, fmt, **kw)
        return full[: int(len(full) * frac)]

    return data


def _solid(w: int, h: int, fmt: str, mode: str = "RGB") -> Callable[[Sources], bytes]:
    def data(src: Sources) -> bytes:
        rng = np.random.default_rng(w * 7 + h)
        arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        return encode(Image.fromarray(arr).convert(mode), fmt)

    return data


def _photo(i: int, fmt: str, convert: Callable[[Image.Image], Image.Image] = lambda im: im, **kw) -> Callable[[Sources], bytes]:
    def data(src: Sources) -> bytes:
        return encode(convert(Image.fromarray(src.photos[i % len(src.photos)])), fmt, **kw)

    return data


def _alpha_of(im: Image.Image) -> Image.Image:
    w, h = im.size
    ramp = np.tile(np.linspace(0, 255, w, dtype=np.uint8), (h, 1))
    return Image.fromarray(ramp, "L")


def _rgba(im: Image.Image) -> Image.Image:
    out = im.convert("RGBA")
    out.putalpha(_alpha_of(im))
    return out


def _la(im: Image.Image) -> Image.Image:
    out = im.convert("LA")
    out.putalpha(_alpha_of(im))
    return out


def _palette_transparent(im: Image.Image) -> Image.Image:
    p = im.quantize(64)
    p.info["transparency"] = 0
    return p


def _gray16_png(src: Sources) -> bytes:
    arr = (np.asarray(Image.fromarray(src.photos[0]).convert("L"), np.uint16) * 257).astype(np.uint16)
    return encode(Image.fromarray(arr), "PNG")  # uint16 2-D -> mode I;16


def _rgb16_png(src: Sources) -> bytes:
    import png  # pypng: Pillow cannot write 16-bit RGB PNG

    arr = src.photos[1].astype(np.uint16) * 257 + 3
    buf = io.BytesIO()
    png.Writer(arr.shape[1], arr.shape[0], bitdepth=16, greyscale=False).write(buf, arr.reshape(arr.shape[0], -1).tolist())
    return buf.getvalue()


def _tiff16(channels: int) -> Callable[[Sources], bytes]:
    def data(src: Sources) -> bytes:
        import tifffile

        arr = src.photos[2].astype(np.uint16) * 257
        if channels == 1:
            arr = arr[..., 0]
        elif channels == 4:
            arr = np.concatenate([arr, np.full(arr.shape[:2] + (1,), 40000, np.uint16)], axis=2)
        buf = io.BytesIO()
        tifffile.imwrite(buf, arr, photometric="minisblack" if channels == 1 else "rgb", extrasamples=[2] if channels == 4 else None)
        return buf.getvalue()

    return data


def _tiff_float(src: Sources) -> bytes:
    import tifffile

    buf = io.BytesIO()
    tifffile.imwrite(buf, src.photos[0].astype(np.float32) / 255, photometric="rgb")
    return buf.getvalue()


def _oriented(i: int, fmt: str, orientation: int) -> Callable[[Sources], bytes]:
    def data(src: Sources) -> bytes:
        return src.encoded(i, fmt, exif=exif_bytes(orientation))

    return data


def _jpeg_app(marker: int, payload: bytes | Callable[[], bytes]) -> Callable[[Sources], bytes]:
    def data(src: Sources) -> bytes:
        return with_jpeg_segment(src.encoded(0, "JPEG", quality=85), marker, payload() if callable(payload) else payload)

    return data


def _png_chunk(tag: bytes, payload: bytes) -> Callable[[Sources], bytes]:
    def data(src: Sources) -> bytes:
        return png_with_chunk(src.encoded(1, "PNG"), tag, payload)

    return data


def _symlink(target: str) -> Callable[[Path, Sources], None]:
    def make(path: Path, src: Sources) -> None:
        path.symlink_to(target)

    return make


def _mkdir(path: Path, src: Sources) -> None:
    path.mkdir()


def _loop_pair(other: str) -> Callable[[Path, Sources], None]:
    def make(path: Path, src: Sources) -> None:
        path.symlink_to(other)  # `other` links back to this name

    return make


def _cases() -> list[Case]:
    cases: list[Case] = []
    add = cases.append

    # zero-byte files, every extension a folder scan picks up, plus .dng (named explicitly)
    for ext in (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp", ".dng"):
        add(Case(f"zero_{ext[1:]}{ext}", "zero_byte", "fail", _bytes(b""), UNREADABLE, explicit=ext == ".dng"))

    # random bytes, plain and behind each format's magic number
    for ext in (".jpg", ".png", ".tif", ".dng"):
        for n in (1, 7, 64, 512, 4096):
            for seed in (0, 1):
                add(Case(f"noise_{n}_{seed}_{ext[1:]}{ext}", "random_bytes", "fail", _bytes(_noise(n, seed * 1000 + n)), UNREADABLE, explicit=ext == ".dng"))
    magics = {".jpg": b"\xff\xd8\xff\xe0", ".png": b"\x89PNG\r\n\x1a\n", ".tif": b"II*\x00", ".tiff": b"MM\x00*", ".webp": b"RIFF\x00\x01\x00\x00WEBPVP8 ", ".bmp": b"BM"}
    for ext, magic in magics.items():
        for n in (16, 300, 3000):
            add(Case(f"magic_{n}_{ext[1:]}{ext}", "random_bytes", "fail", _bytes(_noise(n, n, magic)), UNREADABLE + r"|over the limit|unsupported"))

    # real photos cut at 10 / 50 / 90 %
    formats = {"jpg": ("JPEG", {"quality": 90}), "prog.jpg": ("JPEG", {"quality": 90, "progressive": True}), "png": ("PNG", {}), "tif": ("TIFF", {"compression": "tiff_adobe_deflate"}), "webp": ("WEBP", {"quality": 80})}
    for i in range(3):
        for ext, (fmt, kw) in formats.items():
            for frac in (0.1, 0.5, 0.9):
                add(Case(f"cut{i}_{int(frac * 100)}_{ext.replace('.', '_')}.{ext}", "truncated", "fail", _bytes(_truncated(i, fmt, frac, **kw)), UNREADABLE))

    # right content, wrong extension (decoded by content; the output format follows the name)
    for i, (fmt, ext) in enumerate([("PNG", ".jpg"), ("JPEG", ".png"), ("TIFF", ".jpg"), ("WEBP", ".png"), ("BMP", ".tif"), ("PNG", ".tif"), ("JPEG", ".tif"), ("TIFF", ".png"), ("PNG", ".dng"), ("JPEG", ".webp")]):
        add(Case(f"really_{fmt.lower()}_{i}{ext}", "wrong_extension", "ok", _bytes(_photo(i, fmt)), explicit=ext == ".dng"))

    # decompression bombs: tiny files whose headers promise far more than the 250 MP limit
    for name, data in [
        ("bomb_100k.png", png_header(100_000, 100_000)),
        ("bomb_wide.png", png_header(300_000_000, 1)),
        ("bomb_16k.png", png_header(16_000, 16_000)),
        ("bomb_65k.jpg", jpeg_header(65_000, 65_000)),
        ("bomb_20k.jpg", jpeg_header(20_000, 20_000)),
        ("bomb_100k.tif", tiff_header(100_000, 100_000)),
        ("bomb_1m.tif", tiff_header(1_000_000, 1_000)),
        ("bomb_100k_bmp.bmp", bmp_header(100_000, 100_000)),
    ]:
        add(Case(name, "bomb", "fail", _bytes(data), REFUSED))

    # extreme shapes: the condition network needs a copy at least 5 px on each side
    for w, h, expect in [(1, 1, "tiny"), (2, 3, "tiny"), (4, 4, "tiny"), (1, 20000, "tiny"), (20000, 1, "tiny"), (4, 3000, "tiny"), (20000, 5, "tiny"),
                         (5, 5, "ok"), (8, 8, "ok"), (5, 400, "ok"), (3000, 40, "ok")]:
        for fmt, ext in (("PNG", ".png"), ("JPEG", ".jpg")):
            if fmt == "JPEG" and w * h > 100_000 and min(w, h) > 1:
                continue
            add(Case(f"shape_{w}x{h}{ext}", "extreme_size", expect, _bytes(_solid(w, h, fmt)), r"too small"))

    # 16-bit and other deep images
    add(Case("gray16.png", "sixteen_bit", "ok", _bytes(_gray16_png), sixteen=True))
    add(Case("rgb16.png", "sixteen_bit", "ok", _bytes(_rgb16_png), sixteen=True))
    add(Case("gray16.tif", "sixteen_bit", "ok", _bytes(_tiff16(1)), sixteen=True))
    add(Case("rgb16.tif", "sixteen_bit", "ok", _bytes(_tiff16(3)), sixteen=True))
    add(Case("rgba16.tif", "sixteen_bit", "ok", _bytes(_tiff16(4)), sixteen=True, alpha=True))
    add(Case("float32.tif", "sixteen_bit", "ok", _bytes(_tiff_float), sixteen=True))  # read as 16-bit

    # colour modes: converted to RGB, alpha kept for PNG/TIFF
    modes = [
        ("cmyk.jpg", _photo(0, "JPEG", lambda im: im.convert("CMYK"), quality=90), False),
        ("cmyk.tif", _photo(1, "TIFF", lambda im: im.convert("CMYK")), False),
        ("palette_transparent.png", _photo(2, "PNG", _palette_transparent), True),
        ("palette.png", _photo(0, "PNG", lambda im: im.quantize(32)), False),
        ("palette.bmp", _photo(1, "BMP", lambda im: im.quantize(16)), False),
        ("la.png", _photo(2, "PNG", _la), True),
        ("rgba.png", _photo(0, "PNG", _rgba), True),
        ("rgba.tif", _photo(1, "TIFF", _rgba), True),
        ("rgba_webp.webp", _photo(2, "WEBP", _rgba, lossless=True), False),  # .webp outputs are TIFF; checked below
        ("gray.jpg", _photo(0, "JPEG", lambda im: im.convert("L")), False),
        ("bilevel.png", _photo(1, "PNG", lambda im: im.convert("1")), False),
        ("bilevel_g4.tif", _photo(2, "TIFF", lambda im: im.convert("1"), compression="group4"), False),
        ("ycbcr.jpg", _photo(0, "JPEG", lambda im: im, subsampling=2), False),
        ("rgba_named.jpg", _photo(1, "PNG", _rgba), False),  # alpha dropped for JPEG output
    ]
    for name, data, alpha in modes:
        add(Case(name, "modes", "ok", _bytes(data), alpha=alpha or name == "rgba_webp.webp"))

    # the eight EXIF orientations in JPEG, PNG and TIFF: tag carried over, pixels not rotated
    for fmt, ext in (("JPEG", ".jpg"), ("PNG", ".png"), ("TIFF", ".tif")):
        for o in range(1, 9):
            add(Case(f"orient{o}{ext}", "orientation", "ok", _bytes(_oriented(o, fmt, o)), orientation=o))

    # corrupted EXIF and ICC blocks: the photo is still enhanced (metadata bytes carried or dropped)
    icc = srgb_icc
    meta = [
        ("exif_garbage.jpg", _jpeg_app(0xE1, b"Exif\x00\x00" + _noise(200, 5))),
        ("exif_bad_offset.jpg", _jpeg_app(0xE1, b"Exif\x00\x00II*\x00\xf0\xff\xff\x0f" + b"\0" * 40)),
        ("exif_huge_count.jpg", _jpeg_app(0xE1, b"Exif\x00\x00II*\x00\x08\x00\x00\x00\xff\xff" + b"\x12\x01\x03\x00" * 10)),
        ("exif_truncated.jpg", _jpeg_app(0xE1, exif_bytes(6)[:18])),
        ("exif_empty.jpg", _jpeg_app(0xE1, b"Exif\x00\x00")),
        ("icc_garbage.jpg", _jpeg_app(0xE2, b"ICC_PROFILE\x00\x01\x01" + _noise(300, 6))),
        ("icc_truncated.jpg", _jpeg_app(0xE2, lambda: b"ICC_PROFILE\x00\x01\x01" + icc()[:100])),
        ("icc_missing_chunk.jpg", _jpeg_app(0xE2, lambda: b"ICC_PROFILE\x00\x01\x02" + icc()[:200])),
        ("icc_bad_zlib.png", _png_chunk(b"iCCP", b"icc\x00\x00" + _noise(100, 7))),
        ("icc_garbage.png", _png_chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(_noise(300, 8)))),
        ("exif_garbage.png", _png_chunk(b"eXIf", _noise(120, 9))),
        ("exif_bad_offset.png", _png_chunk(b"eXIf", b"MM\x00*\x7f\xff\xff\xff" + b"\0" * 20)),
    ]
    for name, data in meta:
        add(Case(name, "metadata", "ok", _bytes(data)))

    # names: non-UTF-8 bytes, very long, unusual characters (good and corrupt files)
    long_stem = "L" * (255 - 4)
    names = [
        (os.fsdecode(b"caf\xe9.jpg"), "ok"),
        (os.fsdecode(b"\xff\xfe_latin1_\xe0.png"), "ok"),
        (os.fsdecode(b"broken_\xe9\xff.jpg"), "fail"),
        (long_stem + ".jpg", "ok"),
        ("é" * 120 + ".png", "ok"),
        ("L" * 240 + "_bad.tif", "fail"),
        ("spaces and ünïcödé 写真 🦔.jpg", "ok"),
        ("-dash [x] *star? $HOME.png", "ok"),
        ("line\nbreak.jpg", "fail"),
        ("UPPER.JPG", "ok"),
    ]
    for i, (name, expect) in enumerate(names):
        data = _photo(i, "PNG" if name.lower().endswith(".png") else "TIFF" if name.endswith(".tif") else "JPEG")
        add(Case(name, "names", expect, _bytes(_noise(100, i) if expect == "fail" else data), UNREADABLE))

    # file-system oddities
    add(Case("photo.jpg", "filesystem", "ignored", _mkdir))
    add(Case("loop_a.jpg", "filesystem", "fail", _loop_pair("loop_b.jpg"), r"looping|broken"))
    add(Case("loop_b.jpg", "filesystem", "fail", _loop_pair("loop_a.jpg"), r"looping|broken"))
    add(Case("loop_self.png", "filesystem", "fail", _symlink("loop_self.png"), r"looping|broken"))
    add(Case("dangling.jpg", "filesystem", "fail", _symlink("nowhere/absent.jpg"), r"looping|broken"))
    add(Case("fifo.jpg", "filesystem", "fail", lambda p, s: os.mkfifo(p), r"not a regular file"))
    return cases


CASES: list[Case] = _cases()


def build(folder: Path, src: Sources, cases: list[Case] = CASES) -> list[Path]:
    """Write every case into ``folder``; returns the paths to name explicitly on the command line."""
    folder.mkdir(parents=True, exist_ok=True)
    explicit = []
    for case in cases:
        case.make(folder / case.name, src)
        if case.explicit:
            explicit.append(folder / case.name)
    return explicit
