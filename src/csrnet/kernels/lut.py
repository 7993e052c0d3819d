"""Applying a baked 3D lattice to images.

Tables are (size**3, 3) float32, red fastest then green then blue — the order of
Adobe ``.cube`` files and of Pillow's :class:`~PIL.ImageFilter.Color3DLUT`.
Values may lie outside [0, 1]; results are clipped after interpolation.

8-, 16-bit and float32 images go through the compiled kernel (src/csrnet/kernels/_lut.c) in row
blocks on a small thread pool (it releases the GIL). Without it, 8-bit images use Pillow's
C filter (trilinear, fixed-point) and 16-bit and float images a vectorised numpy trilinear
interpolation in float32 (:func:`apply_lut_array`, also the reference the tests hold the
kernel to), so no 8-bit banding is introduced.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from ..threads import resolve, row_blocks, run_blocks

__all__ = [
    "HAVE_KERNEL",
    "PIL_MAX_SIZE",
    "GridTaps",
    "Lattice",
    "LatticeGrid",
    "apply_grid_array",
    "apply_grid_uint",
    "apply_lut_array",
    "apply_lut_float",
    "apply_lut_pil",
    "apply_lut_uint",
    "box_means",
    "downscale_rgb",
    "locate",
    "resample_planes",
    "trilinear",
]

try:  # the C kernel (src/csrnet/kernels/_lut.c), built at install time where a compiler exists
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


def _kernel_rgb(image: np.ndarray) -> tuple[np.ndarray, int, int, int]:
    """A (H, W, 3) uint8/uint16 image as the kernels read it: contiguous, with H, W and its bit depth."""
    image = np.ascontiguousarray(image)
    return image, image.shape[0], image.shape[1], {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}[image.dtype]


def box_means(image: np.ndarray, fx: int, fy: int, *, threads: int | None = None) -> np.ndarray | None:
    """Means of ``fy`` x ``fx`` pixel boxes of a (H, W, 3) uint8 or uint16 image, with partial boxes at
    the right and bottom edges (Pillow's ``Image.reduce``), as float32 planes (3, ceil(H/fy), ceil(W/fx))
    in [0, 1]; computed by the compiled kernel on row blocks across ``threads`` threads.
    Returns None without the kernel (callers fall back to numpy)."""
    if _kernel is None:
        return None
    image, h, w, bits = _kernel_rgb(image)
    ho, wo = -(-h // fy), -(-w // fx)
    out = np.empty((3, ho, wo), np.float32)
    step, starts = row_blocks(ho, threads)
    run_blocks(lambda r0: _kernel.box_reduce(image, out, h, w, fx, fy, r0, min(ho, r0 + step), bits), starts, threads)
    return out


def _bilinear_taps(in_size: int, in0: float, in1: float, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pillow's bilinear resampling taps along one axis (``precompute_coeffs`` in its Resample.c):
    output ``i`` is the sum of ``weights[i, k] * input[first + k]`` for ``k < count``, where the
    input span ``[in0, in1)`` (a resize box, as C floats) maps onto ``out_size`` outputs.
    Returns int32 (out_size, 2) ``(first, count)`` and float64 (out_size, ksize) weights."""
    span = float(np.float32(in1) - np.float32(in0))
    scale = span / out_size
    filterscale = max(scale, 1.0)
    support = filterscale  # the triangle filter's support is 1, stretched by the reduction
    ksize = int(np.ceil(support)) * 2 + 1
    center = float(np.float32(in0)) + (np.arange(out_size) + 0.5) * scale
    first = np.maximum(np.trunc(center - support + 0.5), 0).astype(np.int64)
    count = np.minimum(np.trunc(center + support + 0.5), in_size).astype(np.int64) - first
    k = np.arange(ksize)
    weights = np.maximum(0.0, 1.0 - np.abs((k + first[:, None] - center[:, None] + 0.5) * (1.0 / filterscale)))
    weights[k >= count[:, None]] = 0.0
    total = weights.sum(axis=1, keepdims=True)
    weights = np.divide(weights, total, out=weights, where=total != 0)
    if in_size >= ksize:
        # Every output reads exactly ksize inputs: windows near the far edge start earlier, with
        # leading zero weights (adding 0.0 first leaves each double sum unchanged), so the kernel's
        # inner loop has a fixed trip count and unrolls (bench/results/design_timings.md).
        shift = np.maximum(first + ksize - in_size, 0)
        dest = k[None, :] + shift[:, None]
        keep = dest < ksize  # only zero weights fall off the end
        padded = np.zeros_like(weights)
        padded[np.nonzero(keep)[0], dest[keep]] = weights[keep]
        weights, first, count = padded, first - shift, np.full(out_size, ksize)
    return np.stack([first, count], axis=1).astype(np.int32), np.ascontiguousarray(weights)


def resample_planes(planes: np.ndarray, box: tuple[float, float, float, float], size: tuple[int, int], *, threads: int | None = None) -> np.ndarray | None:
    """Pillow's ``Image.resize(size, BILINEAR, box=box)`` of each float32 plane of ``planes`` (3, H, W)
    -> (3, h, w) float32, by the compiled kernel on row blocks across ``threads`` threads (equal to
    Pillow's result to float32 rounding). Returns None without the kernel (callers use Pillow)."""
    if _kernel is None:
        return None
    planes = np.ascontiguousarray(planes, np.float32)
    _, h, w = planes.shape
    wo, ho = size
    hb, hk = _bilinear_taps(w, box[0], box[2], wo)
    vb, vk = _bilinear_taps(h, box[1], box[3], ho)
    out = np.empty((3, ho, wo), np.float32)
    step, starts = row_blocks(ho, threads)
    run_blocks(lambda r0: _kernel.resample(planes, out, h, w, ho, wo, hb, hk, hk.shape[1], vb, vk, vk.shape[1], r0, min(ho, r0 + step)),
                starts, threads)
    return out


def downscale_rgb(image: np.ndarray, fx: int, fy: int, box: tuple[float, float, float, float], size: tuple[int, int], *, threads: int | None = None) -> np.ndarray | None:
    """:func:`box_means` then :func:`resample_planes` of a (H, W, 3) uint8 or uint16 image in one pass
    of the compiled kernel (the box means are never stored): (3, h, w) float32 in [0, 1], equal to
    the two steps. Returns None without the kernel."""
    if _kernel is None:
        return None
    image, h, w, bits = _kernel_rgb(image)
    hr, wr = -(-h // fy), -(-w // fx)
    wo, ho = size
    hb, hk = _bilinear_taps(wr, box[0], box[2], wo)
    vb, vk = _bilinear_taps(hr, box[1], box[3], ho)
    out = np.empty((3, ho, wo), np.float32)
    step, starts = row_blocks(ho, threads)
    run_blocks(lambda r0: _kernel.downscale_rgb(image, out, h, w, fx, fy, ho, wo, hb, hk, hk.shape[1], vb, vk, vk.shape[1], r0, min(ho, r0 + step), bits),
                starts, threads)
    return out


def locate(points: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Lattice cells of ``points`` (N, 3) float in [0, 1] (clipped): flat index of each cell's lower
    corner (N,) and the fractions inside it (N, 3), red fastest as in the tables."""
    n = size - 1
    x = np.clip(points, 0.0, 1.0) * n
    idx = np.minimum(x.astype(np.int32), n - 1)
    return idx[:, 0] + size * (idx[:, 1] + size * idx[:, 2]), x - idx


def trilinear(table: np.ndarray, base: np.ndarray, f: np.ndarray, size: int) -> np.ndarray:
    """Trilinear values (N, 3) of ``table`` (nodes, 3) at cells ``base`` with fractions ``f`` (see :func:`locate`)."""
    fr, fg, fb = f[:, 0:1], f[:, 1:2], f[:, 2:3]
    c = [table[base + (dr + dg * size + db * size * size)] for db in (0, 1) for dg in (0, 1) for dr in (0, 1)]
    c00 = c[0] + fr * (c[1] - c[0])
    c10 = c[2] + fr * (c[3] - c[2])
    c01 = c[4] + fr * (c[5] - c[4])
    c11 = c[6] + fr * (c[7] - c[6])
    c0 = c00 + fg * (c10 - c00)
    c1 = c01 + fg * (c11 - c01)
    return c0 + fb * (c1 - c0)


def apply_lut_uint(image: np.ndarray, table: np.ndarray, size: int, *, threads: int | None = None,
                   out: np.ndarray | None = None) -> np.ndarray:
    """Apply ``table`` to a (H, W, 3) uint8 or uint16 array; returns the same dtype, clipped and rounded.
    ``out``: write the result there (it may be ``image`` itself: each pixel is read before it is written).

    Uses the compiled kernel on row blocks across ``threads`` threads (it releases the GIL);
    without it, Pillow's filter (8-bit) or the numpy interpolation (16-bit).
    """
    arr = np.ascontiguousarray(image)
    if arr.dtype not in (np.uint8, np.uint16) or arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) uint8 or uint16, got {arr.dtype} {arr.shape}")
    flat = np.ascontiguousarray(_check_table(table, size), np.float32)
    if _kernel is None:
        if arr.dtype == np.uint8:
            result = np.asarray(_apply_pillow(Image.fromarray(arr, "RGB"), flat, size, threads))
        else:
            y = apply_lut_array(arr.astype(np.float32) / 65535.0, flat, size, threads=threads)
            result = np.clip(y * 65535.0 + 0.5, 0, 65535).astype(np.uint16)
        if out is None:
            return result.copy() if arr.dtype == np.uint8 else result
        out[...] = result
        return out
    return _kernel_apply(arr, flat, size, 8 if arr.dtype == np.uint8 else 16, threads, out)


def _kernel_apply(arr: np.ndarray, flat: np.ndarray, size: int, bits: int, threads: int | None,
                  out: np.ndarray | None = None) -> np.ndarray:
    """The compiled kernel on (H, W, 3) contiguous ``arr`` in row blocks on ``threads`` threads (into ``out``)."""
    if out is None:
        out = np.empty_like(arr)
    elif out.shape != arr.shape or out.dtype != arr.dtype or not out.flags.c_contiguous:
        raise ValueError(f"out must be a contiguous {arr.dtype} array of shape {arr.shape}")
    padded = np.zeros((size**3, 4), np.float32)  # 4 floats a node: one vector load per corner (see _lut.c)
    padded[:, :3] = flat
    rows = max(1, _KERNEL_PIXELS // max(1, arr.shape[1]))
    starts = range(0, arr.shape[0], rows)

    def work(r0: int) -> None:
        _kernel.apply(arr[r0 : r0 + rows], out[r0 : r0 + rows], padded, size, bits)

    run_blocks(work, starts, threads)
    return out


def apply_lut_float(image: np.ndarray, table: np.ndarray, size: int, *, threads: int | None = None) -> np.ndarray:
    """Apply ``table`` to a (H, W, 3) float image in [0, 1] (colours are clipped to it first); returns
    float32 (H, W, 3), unclipped — :func:`apply_lut_array`'s result, from the compiled kernel where
    there is one (much faster)."""
    if _kernel is None:
        return apply_lut_array(image, table, size, threads=threads)
    arr = np.ascontiguousarray(image, np.float32)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) float, got {arr.shape}")
    return _kernel_apply(arr, np.ascontiguousarray(_check_table(table, size), np.float32), size, 32, threads)


def apply_lut_pil(image: Image.Image, table: np.ndarray, size: int, *, threads: int | None = None) -> Image.Image:
    """Apply ``table`` to an 8-bit RGB PIL image (the compiled kernel, else Pillow's C filter)."""
    if _kernel is not None:
        return Image.fromarray(apply_lut_uint(np.asarray(image), table, size, threads=threads), "RGB")
    return _apply_pillow(image, _check_table(table, size), size, threads)


def _apply_pillow(image: Image.Image, table: np.ndarray, size: int, threads: int | None) -> Image.Image:
    """Pillow's trilinear filter; row strips on ``threads`` threads pasted into one output image,
    so peak memory is the input, the output and a few strips."""
    if size > PIL_MAX_SIZE:
        arr = np.asarray(image, np.float32) / 255.0
        out = apply_lut_array(arr, table, size, threads=threads)
        return Image.fromarray(np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8), "RGB")
    filt = ImageFilter.Color3DLUT(size, np.clip(table, *_PIL_TABLE_RANGE), channels=3)
    w, h = image.size
    if resolve(threads) <= 1 or h * w < 1 << 20:
        return image.filter(filt)
    out = Image.new("RGB", (w, h))
    image.load()

    def strip(y0: int) -> None:
        box = (0, y0, w, min(h, y0 + _STRIP_ROWS))
        out.paste(image.crop(box).filter(filt), box)

    run_blocks(strip, range(0, h, _STRIP_ROWS), threads)
    return out


def apply_lut_array(image: np.ndarray, table: np.ndarray, size: int, *, threads: int | None = None, tile: int = 1 << 18) -> np.ndarray:
    """Trilinear interpolation of ``table`` at every pixel of ``image`` (H, W, 3) float in [0, 1].

    Returns float32 (H, W, 3), unclipped. Works in tiles of ``tile`` pixels (numpy releases
    the GIL in the gathers and arithmetic, so tiles run on ``threads`` threads).
    """
    table = _check_table(table, size)
    flat = np.asarray(image, np.float32).reshape(-1, 3)
    out = np.empty_like(flat)

    def work(i0: int) -> None:
        base, f = locate(flat[i0 : i0 + tile], size)
        out[i0 : i0 + tile] = trilinear(table, base, f, size)

    starts = range(0, len(flat), tile)
    run_blocks(work, starts, threads)
    return out.reshape(np.asarray(image).shape[:2] + (3,))


# ---------------------------------------------------------------- a grid of lattices (CSRNet-L)
#: Bilinear taps along one axis: (i0, i1) int cell indices (n, 2) and the weight of i1 (n,) float32.
GridTaps = tuple[np.ndarray, np.ndarray]


def _check_grid(tables: np.ndarray, size: int) -> np.ndarray:
    tables = np.asarray(tables, np.float32)
    if tables.ndim != 4 or tables.shape[2:] != (size**3, 3):
        raise ValueError(f"tables of shape {tables.shape} are not (gh, gw, {size}**3, 3)")
    return tables


def _check_taps(taps: GridTaps, n: int, cells: int) -> tuple[np.ndarray, np.ndarray]:
    idx, wt = np.ascontiguousarray(taps[0], np.int32), np.ascontiguousarray(taps[1], np.float32)
    if idx.shape != (n, 2) or wt.shape != (n,) or idx.min(initial=0) < 0 or idx.max(initial=0) >= cells:
        raise ValueError(f"taps of shapes {idx.shape}, {wt.shape} do not fit {n} pixels over {cells} cells")
    return idx, wt


def apply_grid_uint(image: np.ndarray, tables: np.ndarray, size: int, rows: GridTaps, cols: GridTaps, *, threads: int | None = None) -> np.ndarray:
    """Blend a grid of lattices per pixel on a (H, W, 3) uint8/uint16 array; same dtype out, clipped and rounded.

    ``tables`` (gh, gw, size**3, 3): one lattice per grid cell. Pixel (r, c) interpolates its
    colour in the lattices of cells (rows[0][r, i], cols[0][c, j]), i, j in {0, 1}, and mixes
    them with weights ``(rows[1][r] if i else 1 - rows[1][r]) * (cols[1][c] if j else 1 - cols[1][c])``.
    Compiled kernel on row blocks across ``threads`` threads; without it, :func:`apply_grid_array`.
    """
    arr = np.ascontiguousarray(image)
    if arr.dtype not in (np.uint8, np.uint16) or arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) uint8 or uint16, got {arr.dtype} {arr.shape}")
    tables = _check_grid(tables, size)
    gh, gw = tables.shape[:2]
    (yi, yw), (xi, xw) = _check_taps(rows, arr.shape[0], gh), _check_taps(cols, arr.shape[1], gw)
    peak = 255.0 if arr.dtype == np.uint8 else 65535.0
    if _kernel is None:
        y = apply_grid_array(arr.astype(np.float32) / np.float32(peak), tables, size, rows, cols, threads=threads)
        return np.clip(y * peak + 0.5, 0, peak).astype(arr.dtype)
    out = np.empty_like(arr)
    bits = 8 if arr.dtype == np.uint8 else 16
    padded = np.zeros((gh, gw, size**3, 4), np.float32)  # 4 floats a node, as for apply_lut_uint
    padded[..., :3] = tables
    block = max(1, (_KERNEL_PIXELS // 4) // max(1, arr.shape[1]))  # 4 lattices a pixel: smaller blocks balance better

    def work(r0: int) -> None:
        r1 = min(arr.shape[0], r0 + block)
        _kernel.apply_grid(arr[r0:r1], out[r0:r1], padded, gh, gw, size, bits, yi[r0:r1], yw[r0:r1], xi, xw)

    starts = range(0, arr.shape[0], block)
    run_blocks(work, starts, threads)
    return out


def apply_grid_array(
    image: np.ndarray, tables: np.ndarray, size: int, rows: GridTaps, cols: GridTaps, *, threads: int | None = None, tile: int = 1 << 16
) -> np.ndarray:
    """numpy version of :func:`apply_grid_uint` for (H, W, 3) float in [0, 1]; returns float32, unclipped.

    Row blocks of about ``tile`` pixels on ``threads`` threads (numpy releases the GIL in the
    gathers); 32 gathers a pixel, so several times slower than the kernel.
    """
    tables = _check_grid(tables, size)
    gh, gw = tables.shape[:2]
    x = np.asarray(image, np.float32)
    h, w = x.shape[:2]
    (yi, yw), (xi, xw) = _check_taps(rows, h, gh), _check_taps(cols, w, gw)
    yi, xi = yi.astype(np.int64), xi.astype(np.int64)  # flat node indices may pass 2**31
    flat = tables.reshape(-1, 3)
    cell = size**3
    out = np.empty((h, w, 3), np.float32)
    block = max(1, tile // max(1, w))

    def work(r0: int) -> None:
        r1 = min(h, r0 + block)
        base, f = locate(x[r0:r1].reshape(-1, 3), size)  # shared by the 4 cells' lattices
        ly, lx = np.repeat(yw[r0:r1], w)[:, None], np.tile(xw, r1 - r0)[:, None]
        acc = np.zeros((len(base), 3), np.float32)
        for i, wy in ((0, 1 - ly), (1, ly)):
            for j, wx in ((0, 1 - lx), (1, lx)):
                k = (np.repeat(yi[r0:r1, i], w) * gw + np.tile(xi[:, j], r1 - r0)) * cell + base
                acc += (wy * wx) * trilinear(flat, k, f, size)
        out[r0:r1] = acc.reshape(r1 - r0, w, 3)

    starts = range(0, h, block)
    run_blocks(work, starts, threads)
    return out


# ---------------------------------------------------------------- baked transforms
class Lattice:
    """One baked ``size``^3 lattice (``table`` (size**3, 3) float32, red fastest, unclipped): a global transform."""

    def __init__(self, table: np.ndarray, size: int) -> None:
        self.table, self.size = table, size

    def apply_uint(self, image: np.ndarray, *, threads: int | None = None, out: np.ndarray | None = None) -> np.ndarray:
        return apply_lut_uint(image, self.table, self.size, threads=threads, out=out)

    def apply_float(self, image: np.ndarray, *, threads: int | None = None) -> np.ndarray:
        return apply_lut_float(image, self.table, self.size, threads=threads)

    def apply_pil(self, image: Image.Image, *, threads: int | None = None) -> Image.Image:
        return apply_lut_pil(image, self.table, self.size, threads=threads)


class LatticeGrid:
    """A grid of baked lattices blended per pixel (``tables`` (gh, gw, size**3, 3); row and column
    taps as :func:`apply_grid_uint` takes them): a spatially varying transform."""

    def __init__(self, tables: np.ndarray, size: int, rows: GridTaps, cols: GridTaps) -> None:
        self.tables, self.size, self.rows, self.cols = tables, size, rows, cols

    def apply_uint(self, image: np.ndarray, *, threads: int | None = None, out: np.ndarray | None = None) -> np.ndarray:
        # ``out`` is a hint only: the grid kernel writes a new array (copying it back into ``out`` would
        # cost a full-size copy for nothing, since callers use the returned array)
        return apply_grid_uint(image, self.tables, self.size, self.rows, self.cols, threads=threads)

    def apply_float(self, image: np.ndarray, *, threads: int | None = None) -> np.ndarray:
        return apply_grid_array(image, self.tables, self.size, self.rows, self.cols, threads=threads)

    def apply_pil(self, image: Image.Image, *, threads: int | None = None) -> Image.Image:
        return Image.fromarray(self.apply_uint(np.asarray(image), threads=threads), "RGB")
