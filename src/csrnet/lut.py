"""Applying a baked 3D lattice to images.

Tables are (size**3, 3) float32, red fastest then green then blue — the order of
Adobe ``.cube`` files and of Pillow's :class:`~PIL.ImageFilter.Color3DLUT`.
Values may lie outside [0, 1]; results are clipped after interpolation.

8-bit images go through Pillow's C filter (trilinear, fixed-point), split into row
strips on a small thread pool because the filter releases the GIL. 16-bit and float
images use a vectorised numpy trilinear interpolation in float32, so no 8-bit
banding is introduced.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image, ImageFilter

__all__ = ["apply_lut_pil", "apply_lut_array", "apply_lut_uint", "PIL_MAX_SIZE", "HAVE_KERNEL"]

try:  # the C kernel (src/csrnet/_lut.c), built at install time where a compiler exists
    from . import _lut as _kernel
except ImportError:
    _kernel = None
#: Whether the compiled kernel is in use (else Pillow's filter for 8-bit, numpy for 16-bit).
HAVE_KERNEL = _kernel is not None
_KERNEL_PIXELS = 1 << 20  # pixels per work item: enough to amortise the call, small enough to balance

#: Largest lattice Pillow's filter accepts.
PIL_MAX_SIZE = 65
# Pillow stores tables as 16-bit fixed point; it saturates far outside [0, 1], so keep
# the overshoot the network produces but bound it safely inside Pillow's range.
_PIL_TABLE_RANGE = (-1.0, 2.0)
_STRIP_ROWS = 256


def _check_table(table: np.ndarray, size: int) -> np.ndarray:
    table = np.asarray(table, np.float32)
    if table.shape not in ((size**3, 3), (size, size, size, 3)):
        raise ValueError(f"table of shape {table.shape} does not match lattice size {size}")
    return table.reshape(size**3, 3)


def apply_lut_uint(image: np.ndarray, table: np.ndarray, size: int, *, threads: int = 2) -> np.ndarray:
    """Apply ``table`` to a (H, W, 3) uint8 or uint16 array; returns the same dtype, clipped and rounded.

    Uses the compiled kernel on row blocks across ``threads`` threads (it releases the GIL);
    without it, Pillow's filter (8-bit) or the numpy interpolation (16-bit).
    """
    arr = np.ascontiguousarray(image)
    if arr.dtype not in (np.uint8, np.uint16) or arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) uint8 or uint16, got {arr.dtype} {arr.shape}")
    flat = np.ascontiguousarray(_check_table(table, size), np.float32)
    if _kernel is None:
        if arr.dtype == np.uint8:
            return np.asarray(_apply_pillow(Image.fromarray(arr, "RGB"), flat, size, threads)).copy()
        y = apply_lut_array(arr.astype(np.float32) / 65535.0, flat, size, threads=threads)
        return np.clip(y * 65535.0 + 0.5, 0, 65535).astype(np.uint16)
    out = np.empty_like(arr)
    bits = 8 if arr.dtype == np.uint8 else 16
    padded = np.zeros((size**3, 4), np.float32)  # 4 floats a node: one vector load per corner (see _lut.c)
    padded[:, :3] = flat
    rows = max(1, _KERNEL_PIXELS // max(1, arr.shape[1]))
    starts = range(0, arr.shape[0], rows)

    def work(r0: int) -> None:
        _kernel.apply(arr[r0 : r0 + rows], out[r0 : r0 + rows], padded, size, bits)

    if threads > 1 and len(starts) > 1:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(work, starts))
    else:
        for r0 in starts:
            work(r0)
    return out


def apply_lut_pil(image: Image.Image, table: np.ndarray, size: int, *, threads: int = 2) -> Image.Image:
    """Apply ``table`` to an 8-bit RGB PIL image (the compiled kernel, else Pillow's C filter)."""
    if _kernel is not None:
        return Image.fromarray(apply_lut_uint(np.asarray(image), table, size, threads=threads), "RGB")
    return _apply_pillow(image, _check_table(table, size), size, threads)


def _apply_pillow(image: Image.Image, table: np.ndarray, size: int, threads: int) -> Image.Image:
    """Pillow's trilinear filter; row strips on ``threads`` threads pasted into one output image,
    so peak memory is the input, the output and a few strips."""
    if size > PIL_MAX_SIZE:
        arr = np.asarray(image, np.float32) / 255.0
        out = apply_lut_array(arr, table, size, threads=threads)
        return Image.fromarray(np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8), "RGB")
    filt = ImageFilter.Color3DLUT(size, np.clip(table, *_PIL_TABLE_RANGE), channels=3)
    w, h = image.size
    if threads <= 1 or h * w < 1 << 20:
        return image.filter(filt)
    out = Image.new("RGB", (w, h))
    image.load()

    def strip(y0: int) -> None:
        box = (0, y0, w, min(h, y0 + _STRIP_ROWS))
        out.paste(image.crop(box).filter(filt), box)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(strip, range(0, h, _STRIP_ROWS)))
    return out


def apply_lut_array(image: np.ndarray, table: np.ndarray, size: int, *, threads: int = 2, tile: int = 1 << 18) -> np.ndarray:
    """Trilinear interpolation of ``table`` at every pixel of ``image`` (H, W, 3) float in [0, 1].

    Returns float32 (H, W, 3), unclipped. Works in tiles of ``tile`` pixels (numpy releases
    the GIL in the gathers and arithmetic, so tiles run on ``threads`` threads).
    """
    table = _check_table(table, size)
    flat = np.asarray(image, np.float32).reshape(-1, 3)
    out = np.empty_like(flat)
    n = size - 1
    offsets = [dr + dg * size + db * size * size for db in (0, 1) for dg in (0, 1) for dr in (0, 1)]

    def work(i0: int) -> None:
        x = np.clip(flat[i0 : i0 + tile], 0.0, 1.0) * n
        idx = np.minimum(x.astype(np.int32), n - 1)
        f = x - idx
        base = idx[:, 0] + size * (idx[:, 1] + size * idx[:, 2])
        fr, fg, fb = f[:, 0:1], f[:, 1:2], f[:, 2:3]
        c = [table[base + o] for o in offsets]  # 8 corners, (N, 3) each
        c00 = c[0] + fr * (c[1] - c[0])
        c10 = c[2] + fr * (c[3] - c[2])
        c01 = c[4] + fr * (c[5] - c[4])
        c11 = c[6] + fr * (c[7] - c[6])
        c0 = c00 + fg * (c10 - c00)
        c1 = c01 + fg * (c11 - c01)
        out[i0 : i0 + tile] = c0 + fb * (c1 - c0)

    starts = range(0, len(flat), tile)
    if threads > 1 and len(flat) > tile:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(work, starts))
    else:
        for s in starts:
            work(s)
    return out.reshape(np.asarray(image).shape[:2] + (3,))
