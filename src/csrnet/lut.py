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

__all__ = ["apply_lut_pil", "apply_lut_array", "PIL_MAX_SIZE"]

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


def apply_lut_pil(image: Image.Image, table: np.ndarray, size: int, *, threads: int = 2) -> Image.Image:
    """Apply ``table`` to an 8-bit RGB PIL image with Pillow's C trilinear filter.

    Row strips are filtered on ``threads`` threads and pasted into one output image, so
    peak memory is the input, the output and a few strips.
    """
    table = _check_table(table, size)
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
