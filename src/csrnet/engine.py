"""The torch-free inference engine: condition vector -> per-pixel network -> 3D lattice -> apply.

CSRNet's base network is a per-pixel MLP whose only dependence on the rest of the
image is the 32-d condition vector. Once that vector is known (from a downscaled
copy of the photo), the whole transform is a fixed function R^3 -> R^3, so it is
evaluated once on a lattice (49^3 points by default) and the lattice is applied to
every pixel at memory speed (:mod:`csrnet.lut`). ``exact=True`` runs the MLP on
every pixel instead, in tiles so memory stays bounded.

Everything here is numpy; this module must never import torch.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal, TypeVar

import numpy as np
from PIL import Image

from . import lut as _lut
from .errors import CsrnetError
from .weights import Model, load_model

__all__ = [
    "Layers",
    "condition_vector",
    "modulation",
    "modulated_layers",
    "Blend",
    "parse_style",
    "run_mlp",
    "bake_lut",
    "fit_lattice",
    "enhance",
    "DEFAULT_LUT_SIZE",
    "EXACT_BELOW_PIXELS",
]

#: Lattice size of the fast path, chosen by measurement (released checkpoint, 9 golden + 8
#: FiveK inputs, fitted lattice, min / mean dB vs exact mode): 33 -> 48.1 / 51.8, 41 -> 50.0 /
#: 53.3, 49 -> 51.5 / 54.5, 65 -> 53.5 / 56.2 — sampled at the nodes only, 65 gives 49.2 / 52.3.
#: 49 keeps >= 50 dB (tests/test_engine.py, bench/full_resolution.py) and bakes in less than half
#: the time of 65 (118k vs 275k network evaluations, the fixed cost of every photo).
DEFAULT_LUT_SIZE = 49
_TILE_PIXELS = 1 << 13  # 8k pixels: the 64-wide hidden layers stay in cache (65k tiles were 1.5x slower)
#: Below this many pixels ``enhance`` runs the network exactly even on the fast path: it is
#: then cheaper than fitting a lattice (the fit costs as much as ~1 MP of per-pixel MLP).
EXACT_BELOW_PIXELS = 1 << 20

ImageLike = TypeVar("ImageLike", np.ndarray, Image.Image)
ConditionSize = int | None | Literal["model"]


@dataclass(frozen=True)
class Layers:
    """The base network with the condition folded in: three affine maps (W: out x in, b: out)."""

    weights: tuple[np.ndarray, np.ndarray, np.ndarray]
    biases: tuple[np.ndarray, np.ndarray, np.ndarray]


# ---------------------------------------------------------------- condition network
def _conv_pad1(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 2, *, channels_last: bool = False, threads: int = 1) -> np.ndarray:
    """Zero-pad 1 then a valid strided convolution + ReLU, as the released condition net does.

    x: (C, H, W) float32; w: (O, C, k, k); returns (O, Ho, Wo) float32, or (Ho, Wo, O) with
    ``channels_last``. im2col in row strips (numpy has no convolution of its own; scipy's is
    single-channel and unstrided), so the patch matrix stays ~32 MB even when the net sees a
    full-resolution photo. Best for few input channels (the 3-channel first layer). With
    ``threads`` > 1 the strips run on that many threads (call it with BLAS on one thread: see
    :func:`single_threaded_blas`).
    """
    c, h, wd = x.shape
    o, _, k, _ = w.shape
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    ho = (h + 2 - k) // stride + 1
    wo = (wd + 2 - k) // stride + 1
    if ho < 1 or wo < 1:
        raise CsrnetError(f"image of {h}x{wd} pixels is too small for the condition network")
    wmat = np.ascontiguousarray(w.transpose(0, 2, 3, 1).reshape(o, k * k * c), np.float32)  # columns in (dy, dx, c) order
    out = np.empty((ho, wo, o), np.float32)
    rows = _strip_rows(ho, wo * c * k * k, threads)

    def strip(r0: int) -> None:
        r1 = min(ho, r0 + rows)
        # The patch matrix is built transposed, one (c, rows, wo) slab per kernel tap: each copy runs
        # along a whole output row, ~4x faster than gathering k-wide windows pixel by pixel.
        cols = np.empty((k, k, c, r1 - r0, wo), np.float32)
        for dy in range(k):
            y0 = dy + stride * r0
            for dx in range(k):
                cols[dy, dx] = xp[:, y0 : y0 + stride * (r1 - r0 - 1) + 1 : stride, dx : dx + stride * (wo - 1) + 1 : stride]
        acc = cols.reshape(k * k * c, -1).T @ wmat.T  # BLAS takes the transposed operands as they are
        acc += b
        out[r0:r1] = np.maximum(acc, 0, out=acc).reshape(r1 - r0, wo, o)

    _lut._run_blocks(strip, range(0, ho, rows), threads)
    return out if channels_last else np.ascontiguousarray(out.transpose(2, 0, 1))


def _strip_rows(ho: int, floats_per_row: int, threads: int) -> int:
    """Output rows per strip: a patch matrix of at most ~32 MB, and at least one strip per thread."""
    return max(1, min((1 << 23) // max(1, floats_per_row), -(-ho // max(1, threads))))


def _conv_pad1_hwc(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 2, *, threads: int = 1) -> np.ndarray:
    """:func:`_conv_pad1` on channels-last input (H, W, C) -> (Ho, Wo, O).

    The patch matrix is filled one kernel tap at a time from strided views, copying C
    contiguous floats per pixel: for the 32-channel layers this is 3-4x faster than
    :func:`_conv_pad1`'s channels-first gather (same sums, float32 rounding aside).
    """
    h, wd, c = x.shape
    o, _, k, _ = w.shape
    ho = (h + 2 - k) // stride + 1
    wo = (wd + 2 - k) // stride + 1
    if ho < 1 or wo < 1:
        raise CsrnetError(f"image of {h}x{wd} pixels is too small for the condition network")
    xp = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    wmat = np.ascontiguousarray(w.transpose(2, 3, 1, 0).reshape(k * k * c, o), np.float32)  # rows in (dy, dx, c) order
    out = np.empty((ho, wo, o), np.float32)
    rows = _strip_rows(ho, wo * c * k * k, threads)

    def strip(r0: int) -> None:
        r1 = min(ho, r0 + rows)
        patches = np.empty((r1 - r0, wo, k * k * c), np.float32)
        for dy in range(k):
            y0 = dy + stride * r0
            for dx in range(k):
                i = (dy * k + dx) * c
                patches[:, :, i : i + c] = xp[y0 : y0 + stride * (r1 - r0 - 1) + 1 : stride, dx : dx + stride * (wo - 1) + 1 : stride]
        acc = patches.reshape(-1, k * k * c) @ wmat
        acc += b
        out[r0:r1] = np.maximum(acc, 0).reshape(r1 - r0, wo, o)

    _lut._run_blocks(strip, range(0, ho, rows), threads)
    return out


def condition_features(model: Model, image: np.ndarray, *, threads: int = 1) -> np.ndarray:
    """Stride-8 feature map of the condition network: (H, W, 3) float in [0,1] -> (32, h, w).
    ``threads`` > 1: row strips on that many threads (with BLAS on one: :func:`single_threaded_blas`)."""
    t = model.tensors
    x = np.ascontiguousarray(np.moveaxis(np.asarray(image, np.float32), -1, 0))
    x = _conv_pad1(x, t["cond_net.conv1.weight"], t["cond_net.conv1.bias"], channels_last=True, threads=threads)
    for i in (2, 3):
        x = _conv_pad1_hwc(x, t[f"cond_net.conv{i}.weight"], t[f"cond_net.conv{i}.bias"], threads=threads)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def condition_vector(model: Model, image: np.ndarray, *, threads: int = 1) -> np.ndarray:
    """The 32-d condition vector of ``image`` (H, W, 3) float in [0,1]: conv features, global mean."""
    return condition_features(model, image, threads=threads).mean(axis=(1, 2), dtype=np.float64).astype(np.float32)


Modulation = list[tuple[np.ndarray, np.ndarray]]


def modulation(model: Model, cond: np.ndarray) -> Modulation:
    """The three layers' (1 + scale, shift) vectors for condition vector ``cond`` (32,)."""
    t = model.tensors
    cond = np.asarray(cond, np.float32).reshape(-1)
    return [
        (1.0 + t[f"cond_scale{i}.weight"] @ cond + t[f"cond_scale{i}.bias"], t[f"cond_shift{i}.weight"] @ cond + t[f"cond_shift{i}.bias"])
        for i in (1, 2, 3)
    ]


def modulated_layers(model: Model, cond: np.ndarray, mod: Modulation | None = None) -> Layers:
    """Fold global feature modulation ``h*(1+scale)+shift`` into the 1x1 convolutions.

    ``(W x + b) * (1 + s) + t == (diag(1+s) W) x + ((1+s) b + t)``, so the base network
    becomes a plain 3-64-64-3 MLP for this condition vector (or for a given modulation).
    """
    t = model.tensors
    mod = mod if mod is not None else modulation(model, cond)
    ws, bs = [], []
    for i, (scale, shift) in zip((1, 2, 3), mod):
        w = t[f"conv{i}.weight"][:, :, 0, 0]
        ws.append(np.ascontiguousarray((w * scale[:, None]).T, np.float32))  # stored (in, out) for x @ W
        bs.append((t[f"conv{i}.bias"] * scale + shift).astype(np.float32))
    return Layers(tuple(ws), tuple(bs))  # type: ignore[arg-type]


def run_mlp(layers: Layers, x: np.ndarray, tile: int = _TILE_PIXELS, *, threads: int = 1) -> np.ndarray:
    """Apply the folded base network to pixels ``x`` (N, 3) float32; returns (N, 3) float32, unclamped.
    ``threads`` > 1: the tiles run on that many threads (with BLAS on one: :func:`single_threaded_blas`)."""
    x = np.asarray(x, np.float32).reshape(-1, 3)
    out = np.empty_like(x)
    (w1, w2, w3), (b1, b2, b3) = layers.weights, layers.biases

    def run(i: int) -> None:
        h = x[i : i + tile] @ w1
        h += b1
        np.maximum(h, 0, out=h)
        h = h @ w2
        h += b2
        np.maximum(h, 0, out=h)
        out[i : i + tile] = h @ w3 + b3

    _lut._run_blocks(run, range(0, len(x), tile), threads)
    return out


@contextmanager
def single_threaded_blas() -> Iterator[bool]:
    """BLAS (OpenBLAS, MKL) on one thread inside, when entered from the main thread; the limits
    before come back on leaving. From other threads it changes nothing: OpenBLAS (0.3.31 here)
    ignores thread-count changes made outside the main thread, and callers that run csrnet on
    worker threads (``csrnet enhance``'s batch) limit BLAS around their pool themselves.
    Yields whether it limited BLAS.

    enhance's matrix products are small and split across csrnet's own threads instead. Left to
    its own threads, OpenBLAS keeps them spinning for a while after every product; on a 2-core
    machine they then compete with the lattice kernel: measured, a 6 MP enhance took 118-124 ms
    with BLAS threads and 107 ms with their spinning cut short (OPENBLAS_THREAD_TIMEOUT=4).
    """
    if threading.current_thread() is not threading.main_thread():
        yield False
        return
    from threadpoolctl import threadpool_limits  # a fresh scan (~1 ms) also finds BLAS libraries loaded late

    with threadpool_limits(limits=1, user_api="blas"):
        yield True


# ---------------------------------------------------------------- images in and out
def _as_float(image: np.ndarray | Image.Image) -> np.ndarray:
    """Any supported image -> (H, W, 3) float32 in [0, 1] (no copy for float32 input)."""
    if isinstance(image, Image.Image):
        image = np.asarray(_pil_rgb(image))
    arr = np.asarray(image)
    _check_array(arr)
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / 65535.0
    return arr.astype(np.float32, copy=False)


def _check_array(arr: np.ndarray) -> None:
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise CsrnetError(f"expected an H x W x 3 RGB image, got shape {arr.shape}")
    if arr.dtype not in (np.uint8, np.uint16, np.float32, np.float64):
        raise CsrnetError(f"unsupported dtype {arr.dtype} (use uint8, uint16 or float32 in [0, 1])")
    if min(arr.shape[:2]) < 1:
        raise CsrnetError(f"empty image of shape {arr.shape}")


def _pil_rgb(im: Image.Image) -> Image.Image:
    if im.mode != "RGB":
        raise CsrnetError(f"expected an RGB image, got mode {im.mode} (convert it first, or use csrnet.photo.read_photo)")
    return im


def _from_float(x: np.ndarray, like: np.ndarray) -> np.ndarray:
    """(H, W, 3) float -> the dtype of ``like``, clipped to its valid range."""
    if like.dtype == np.uint8:
        return np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if like.dtype == np.uint16:
        return np.clip(x * 65535.0 + 0.5, 0, 65535).astype(np.uint16)
    return np.clip(x, 0.0, 1.0).astype(like.dtype, copy=False)


def downscale(image: np.ndarray | Image.Image, long_edge: int | None, *, threads: int = 2) -> np.ndarray:
    """Antialiased copy whose long edge is ``long_edge`` px (never upscaled), as float32 (h, w, 3) in [0,1].

    Pillow's ``resize(..., BILINEAR, reducing_gap=3)`` on the image as float data, for every array
    type (so training and inference see the same statistics): first the means of integer-sized
    pixel boxes (Pillow's ``reduce``), then a bilinear resample of those. For 8- and 16-bit arrays
    both steps run in one pass of the compiled kernel (:func:`csrnet.lut.downscale_rgb`, both cores,
    straight from 8- or 16-bit RGB; the box means are never stored: Pillow's own reduce is
    single-threaded, needs a 4-byte-per-pixel copy of 8-bit RGB first and cannot reduce 16-bit RGB).
    Float photos take the box step in numpy (:func:`_box_reduce`) and the bilinear step, Pillow's
    algorithm on the float planes, in the kernel (:func:`csrnet.lut.resample_planes`; Pillow's own
    resize without the kernel). The result matches Pillow's float path to ~1e-7 and its 8-bit path
    to that path's rounding (~1/255), which PIL images take. Measured, 8-bit array to a 500 px copy:
    24 MP 88-95 ms with Pillow's 8-bit path, 17-20 ms with the kernel's box step; 6 MP 8.8 ms fused
    (13.6 ms as box step + kernel resample, 25-45 ms with Pillow's resample of the float planes).
    """
    if isinstance(image, Image.Image):
        h, w = image.height, image.width
    else:
        h, w = np.asarray(image).shape[:2]
    if long_edge is None or max(h, w) <= long_edge:
        return _as_float(image)
    scale = long_edge / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if isinstance(image, Image.Image):
        # Pillow's own 8-bit path: getting a PIL photo's pixels into numpy costs more than all of it
        # (~100 ms at 24 MP against ~25 ms); the copy differs from the float path by Pillow's rounding.
        small = _pil_rgb(image).resize(size, Image.Resampling.BILINEAR, reducing_gap=3.0)
        return np.asarray(small, np.float32) / 255.0
    arr = np.asarray(image)
    _check_array(arr)
    # Pillow's reducing_gap=3 first box-reduces by these integer factors, then resamples.
    fx, fy = int(w / size[0] / 3.0) or 1, int(h / size[1] / 3.0) or 1
    box: tuple[float, float, float, float] | None = (0.0, 0.0, w / fx, h / fy)
    if arr.dtype in (np.uint8, np.uint16):  # both steps in one pass of the kernel
        out = _lut.downscale_rgb(arr, fx, fy, box, size, threads=threads)  # type: ignore[arg-type]
        if out is not None:
            return np.ascontiguousarray(np.moveaxis(out, 0, -1))
    # float photos (and integer ones without the kernel): the box step in numpy, except for small
    # float photos, where Pillow reduces the float planes itself
    if arr.dtype in (np.uint8, np.uint16) or fx * fy >= 9:
        planes = np.moveaxis(_box_reduce(arr, fx, fy), -1, 0)
    else:
        planes, box = np.moveaxis(_as_float(arr), -1, 0), None

    if box is not None:
        out = _lut.resample_planes(planes, box, size, threads=threads)
        if out is not None:
            return np.ascontiguousarray(np.moveaxis(out, 0, -1))

    def plane(c: int) -> np.ndarray:
        im = Image.fromarray(np.ascontiguousarray(planes[c]), "F")
        return np.asarray(im.resize(size, Image.Resampling.BILINEAR, box=box, reducing_gap=None if box else 3.0))

    return np.stack([plane(c) for c in range(3)], axis=-1)


def _box_reduce(arr: np.ndarray, fx: int, fy: int) -> np.ndarray:
    """Means of ``fy`` x ``fx`` pixel boxes of a (H, W, 3) integer or float image -> float32 in [0, 1],
    with partial boxes at the right and bottom edges: Pillow's ``Image.reduce`` on float data.

    For float photos, and integer ones where the compiled kernel is missing: Pillow cannot reduce
    16-bit RGB, and converting a whole 24 MP photo to float channels first cost ~1.1 s (uint16) /
    ~0.3 s (float32) against ~0.15 / ~0.09 s here; the result equals the float path to ~1e-7.
    """
    h, w = arr.shape[:2]
    hh, ww = h // fy, w // fx
    rows = np.empty((-(-h // fy), w, 3), np.float32)
    acc = arr[0 : hh * fy : fy].astype(np.float32)
    for k in range(1, fy):
        acc += arr[k : hh * fy : fy]
    rows[:hh] = acc
    if h % fy:
        rows[hh] = arr[hh * fy :].sum(axis=0, dtype=np.float32)
    out = np.empty((rows.shape[0], -(-w // fx), 3), np.float32)
    acc = rows[:, 0 : ww * fx : fx].copy()
    for k in range(1, fx):
        acc += rows[:, k : ww * fx : fx]
    out[:, :ww] = acc
    if w % fx:
        out[:, ww] = rows[:, ww * fx :].sum(axis=1)
    ny = np.full(out.shape[0], fy, np.float32)
    ny[hh:] = h % fy or fy
    nx = np.full(out.shape[1], fx, np.float32)
    nx[ww:] = w % fx or fx
    scale = {np.dtype(np.uint8): 1.0 / 255.0, np.dtype(np.uint16): 1.0 / 65535.0}.get(arr.dtype, 1.0)
    out *= (np.float32(scale) / (ny[:, None] * nx[None, :]))[..., None]
    return out


def _condition_input(image: np.ndarray | Image.Image, model: Model, condition_size: ConditionSize) -> np.ndarray:
    if condition_size == "model":
        size = model.condition_size
    elif condition_size is None or isinstance(condition_size, int):
        size = condition_size
    else:
        raise CsrnetError(f"condition_size must be 'model', None or an int, got {condition_size!r}")
    if size is not None and size < 16:
        raise CsrnetError(f"condition_size {size} is too small (at least 16 px)")
    small = downscale(image, size)
    h, w = small.shape[:2]
    if h < 5 or w < 5:  # the 7x7 stride-2 first layer needs >= 5 px; replicated edges barely move a global mean
        small = np.pad(small, ((0, max(0, 5 - h)), (0, max(0, 5 - w)), (0, 0)), mode="edge")
    return small


# ---------------------------------------------------------------- the lattice
def identity_lattice(size: int) -> np.ndarray:
    """(size**3, 3) float32 grid of RGB points, red fastest then green then blue (.cube / Pillow order)."""
    v = np.linspace(0.0, 1.0, size, dtype=np.float32)
    b, g, r = np.meshgrid(v, v, v, indexing="ij")
    return np.stack([r.ravel(), g.ravel(), b.ravel()], axis=-1)


def bake_layers(layers: Layers, size: int = DEFAULT_LUT_SIZE, strength: float = 1.0, *, near: np.ndarray | None = None, threads: int = 1) -> np.ndarray:
    """Evaluate the folded network on a ``size``^3 lattice, with strength folded in; unclipped.

    near: optional (N, 3) colours in [0, 1]. Then, for odd ``size`` >= 33, the network runs only
    at the nodes of the cells these colours occupy (and their neighbours); every other node comes
    from a half-resolution lattice: see :func:`_photo_lattice`.
    """
    if not 2 <= size <= 256:
        raise CsrnetError(f"lattice size must be between 2 and 256, got {size}")
    grid = identity_lattice(size)
    if near is not None and size % 2 and size >= 33:
        table = _photo_lattice(layers, size, near, grid, threads)
    else:
        table = run_mlp(layers, grid, threads=threads)
    if strength != 1.0:
        table = grid + np.float32(strength) * (table - grid)
    return table


def _upsample_lattice(coarse: np.ndarray, n: int) -> np.ndarray:
    """(n**3, 3) lattice -> ((2n-1)**3, 3): the coarse nodes kept, the nodes between them linearly
    interpolated along each axis in turn (the same values trilinear interpolation gives there)."""
    c = coarse.reshape(n, n, n, 3)
    for axis in range(3):
        shape = list(c.shape)
        shape[axis] = 2 * n - 1
        fine = np.empty(shape, np.float32)
        even, odd, lo, hi = ([slice(None)] * 4 for _ in range(4))
        even[axis], odd[axis], lo[axis], hi[axis] = slice(0, None, 2), slice(1, None, 2), slice(0, -1), slice(1, None)
        fine[tuple(even)] = c
        fine[tuple(odd)] = 0.5 * (c[tuple(lo)] + c[tuple(hi)])
        c = fine
    return c.reshape(-1, 3)


def _photo_lattice(layers: Layers, size: int, colours: np.ndarray, grid: np.ndarray, threads: int = 1) -> np.ndarray:
    """The network on a ``size``^3 lattice (odd size), evaluated exactly only where a photo needs it.

    A photo's colours fill a small part of the colour cube (~5-20% of a 49^3 lattice's cells), and
    only the nodes of those cells are ever read when the lattice is applied to it. So: bake the
    ((size+1)/2)^3 lattice whose nodes are every other node of this one, interpolate the nodes
    between, and run the network exactly at the nodes of the cells ``colours`` (a downscaled copy of
    the photo) occupy, grown by one cell for colours the copy averaged away. A colour outside them
    still gets a smooth half-resolution value. Measured (uint8, fast vs exact, 9 golden + 18 FiveK
    photos + a 6 MP mosaic): as close to exact mode as the full bake (min / mean 51.48 / 55.22 dB vs
    51.51 / 55.29), with the network at 1/4-1/6 of the nodes and about half the bake time.
    """
    from scipy.ndimage import binary_dilation

    half = (size + 1) // 2
    table = _upsample_lattice(run_mlp(layers, identity_lattice(half), threads=threads), half)
    n = size - 1
    lower = np.zeros(size**3, bool)  # the lower corner of every cell a colour falls in
    lower[_lut._locate(np.asarray(colours, np.float32).reshape(-1, 3), size)[0]] = True
    cells = binary_dilation(lower.reshape(size, size, size)[:n, :n, :n])  # [b, g, r], red fastest like the table
    nodes = np.zeros((size, size, size), bool)
    for db in (0, 1):
        for dg in (0, 1):
            for dr in (0, 1):
                nodes[db : db + n, dg : dg + n, dr : dr + n] |= cells
    nodes[::2, ::2, ::2] = False  # the coarse bake has these exactly
    todo = np.flatnonzero(nodes)
    table[todo] = run_mlp(layers, grid[todo], threads=threads)
    return table


_FIT_SAMPLES = 1 << 13  # 8k colours (16k: +0.07 dB mean, twice the matrix work)


def _interp_matrix(points: np.ndarray, size: int):  # -> scipy.sparse.csr_matrix
    """Sparse (N, size**3) matrix of trilinear weights: ``M @ table`` interpolates ``table`` at ``points``."""
    from scipy import sparse

    base, f = _lut._locate(np.asarray(points).reshape(-1, 3), size)
    cols, vals = [], []
    for db in (0, 1):
        for dg in (0, 1):
            for dr in (0, 1):
                w = (f[:, 0] if dr else 1 - f[:, 0]) * (f[:, 1] if dg else 1 - f[:, 1]) * (f[:, 2] if db else 1 - f[:, 2])
                cols.append(base + dr + dg * size + db * size * size)
                vals.append(w)
    rows = np.tile(np.arange(len(points)), 8)
    return sparse.csr_matrix((np.concatenate(vals), (rows, np.concatenate(cols))), shape=(len(points), size**3))


def _conjugate_gradient(a, b: np.ndarray, x: np.ndarray, iters: int) -> np.ndarray:
    """Solve ``a @ x = b`` (``a`` symmetric positive definite) for the three colour channels at once
    (columns of b): a few conjugate-gradient steps, preconditioned by the diagonal of ``a``.

    Written out (a dozen lines) because scipy's ``cg`` takes one right-hand side at a time: the
    three channels share the matrix, so one sparse product per step serves all of them, and the
    vector work stays element-wise (multi-threaded BLAS dot products on these short vectors
    made scipy's loop several times slower on a busy 2-core machine). The diagonal (Jacobi)
    preconditioner matters here: how many colours touch a node varies by orders of magnitude.
    """
    dinv = (1.0 / a.diagonal())[:, None]
    r = b - a @ x
    z = r * dinv
    p = z.copy()
    rz = np.einsum("ij,ij->j", r, z)
    for _ in range(iters):
        ap = a @ p
        alpha = rz / np.maximum(np.einsum("ij,ij->j", p, ap), 1e-30)
        x = x + alpha * p
        r = r - alpha * ap
        z = r * dinv
        rz_new = np.einsum("ij,ij->j", r, z)
        p = z + (rz_new / np.maximum(rz, 1e-30)) * p
        rz = rz_new
    return x


def fit_lattice(
    layers: Layers,
    samples: np.ndarray,
    size: int = DEFAULT_LUT_SIZE,
    strength: float = 1.0,
    *,
    smooth: float = 0.1,
    iters: int = 5,
    photo_only: bool = False,
    threads: int = 1,
) -> np.ndarray:
    """A lattice fitted to the network on the image's own colours, not just sampled at the nodes.

    Trilinear interpolation is linear in the table, so the table minimising
    ``sum_p |interp(T, p) - f(p)|^2 + smooth * |T - T_sampled|^2`` over the photo's colours
    ``p`` is a sparse least-squares problem, solved by a few conjugate-gradient steps
    from the sampled table. The network bends sharply near black, where node sampling
    alone loses up to ~7 dB; fitting recovers 3-7 dB on the golden photos (see
    bench/full_resolution.py). Nodes no colour touches keep their sampled value.
    ``smooth`` and ``iters`` were chosen by measurement (uint8 fast vs exact, 9 golden + 18
    FiveK photos + a 6 MP mosaic, min / mean dB and worst pixel error in levels of 255): 5
    preconditioned steps with smooth 0.1 give 51.7 / 55.6 dB, 8 levels; 10 plain steps with
    smooth 1e-3 (the earlier default) 51.5 / 55.3 dB, 7 levels; the same preconditioned
    steps with smooth 1e-3 fit the sampled colours too closely: 51.8 / 55.6 dB but 14 levels.

    samples: (N, 3) float32 colours in [0, 1] (a downscaled copy of the photo).
    photo_only: evaluate the network exactly only at the nodes the photo's colours need (see
        :func:`_photo_lattice`); for applying the table to this photo (what :func:`enhance` does),
        not for reuse on others.
    """
    from scipy.sparse import identity

    pts = np.asarray(samples, np.float32).reshape(-1, 3)
    table = bake_layers(layers, size, strength, near=pts if photo_only else None, threads=threads)
    if len(pts) > _FIT_SAMPLES:  # an even, deterministic subset
        pts = pts[np.linspace(0, len(pts) - 1, _FIT_SAMPLES).astype(np.int64)]
    target = run_mlp(layers, pts, threads=threads).astype(np.float64)
    if strength != 1.0:
        target = pts + strength * (target - pts)
    m = _interp_matrix(pts, size).tocsc()
    active = np.flatnonzero(np.diff(m.indptr))  # nodes some colour touches; the rest keep their samples
    m = m[:, active]
    normal = (m.T @ m + smooth * identity(len(active), format="csr")).tocsr()
    start = table[active].astype(np.float64)
    table[active] = _conjugate_gradient(normal, m.T @ target + smooth * start, start, iters)
    return table


def bake_lut(
    image: np.ndarray | Image.Image,
    model: "Model | Blend | str",
    size: int = DEFAULT_LUT_SIZE,
    *,
    strength: float = 1.0,
    condition_size: ConditionSize = "model",
    fit: bool = True,
) -> np.ndarray:
    """The image's transform as a (size**3, 3) float32 table, red fastest (reshape to [b, g, r, 3]).

    Values are left unclipped (the network overshoots [0, 1] near black; clipping before
    interpolation costs several dB) — clip after applying. ``fit=True`` fits the table to
    the photo's own colours (:func:`fit_lattice`), which is what :func:`enhance` applies;
    ``fit=False`` samples the network at the nodes only, a neutral table for other photos.

    Example:
        >>> table = bake_lut(np.zeros((64, 64, 3), np.uint8), model, size=33)  # doctest: +SKIP
        >>> table.shape
        (35937, 3)
    """
    if not isinstance(model, Blend):
        model = load_model(model)
        if model.arch != "csrnet":
            raise CsrnetError(f"{model.arch} models are spatially varying: no single 3D LUT describes them")
    mix, small = _transforms(image, model, condition_size)
    tables = [w * (fit_lattice(layers, small, size, strength) if fit else bake_layers(layers, size, strength)) for layers, w in mix]
    return np.sum(tables, axis=0, dtype=np.float32)


# ---------------------------------------------------------------- style blends
@dataclass(frozen=True)
class Blend:
    """A weighted mix of models, usable wherever a model is (``enhance``, ``bake_lut``).

    ``mode="lut"`` mixes the models' transforms (their lattices, or per-pixel outputs in
    exact mode): any models. ``mode="modulation"`` mixes their (scale, shift) modulations
    and runs one base network: only for models sharing the base network (styles
    fine-tuned with ``--freeze base``). Weights are used as given (normalise them yourself).
    """

    parts: tuple[tuple[Model, float], ...]
    mode: Literal["lut", "modulation"] = "lut"

    def __post_init__(self) -> None:
        if not self.parts:
            raise CsrnetError("a style blend needs at least one model")
        if self.mode not in ("lut", "modulation"):
            raise CsrnetError(f"unknown blend mode {self.mode!r} (lut or modulation)")
        if any(m.arch != "csrnet" for m, _ in self.parts):
            raise CsrnetError("style blends take global CSRNet models only")
        if self.mode == "modulation":
            base = self.parts[0][0].tensors
            for m, _ in self.parts[1:]:
                if any(not np.array_equal(base[f"conv{i}.{k}"], m.tensors[f"conv{i}.{k}"]) for i in (1, 2, 3) for k in ("weight", "bias")):
                    raise CsrnetError(f"{m.name or 'a model'}: base network differs from {self.parts[0][0].name or 'the first'}; use the lut blend")


def parse_style(spec: str, mode: str = "lut") -> Blend:
    """``"modelA:0.7,modelB:0.3"`` -> :class:`Blend` (names or paths, as :func:`load_model` takes)."""
    parts = []
    for item in spec.split(","):
        name, sep, weight = item.strip().rpartition(":")
        if not sep or not name:
            raise CsrnetError(f"style {item!r}: expected MODEL:WEIGHT")
        try:
            parts.append((load_model(name), float(weight)))
        except ValueError:
            raise CsrnetError(f"style {item!r}: weight {weight!r} is not a number") from None
    return Blend(tuple(parts), mode)  # type: ignore[arg-type]


def _transforms(image: np.ndarray | Image.Image, model: Model | Blend, condition_size: ConditionSize, threads: int = 1) -> tuple[list[tuple[Layers, float]], np.ndarray]:
    """The weighted folded networks to mix, and the condition copy of the image."""
    if isinstance(model, Blend):
        small = _condition_input(image, model.parts[0][0], condition_size)
        per = [(m, w, modulation(m, condition_vector(m, _condition_input(image, m, condition_size), threads=threads))) for m, w in model.parts]
        if model.mode == "modulation":
            mixed = [(sum(w * mod[i][0] for _, w, mod in per), sum(w * mod[i][1] for _, w, mod in per)) for i in range(3)]
            return [(modulated_layers(per[0][0], None, mixed), 1.0)], small  # type: ignore[arg-type]
        return [(modulated_layers(m, None, mod), w) for m, w, mod in per], small
    small = _condition_input(image, model, condition_size)
    return [(modulated_layers(model, condition_vector(model, small, threads=threads)), 1.0)], small


def _run_mix(mix: list[tuple[Layers, float]], x: np.ndarray, threads: int = 1) -> np.ndarray:
    out = None
    for layers, w in mix:
        y = run_mlp(layers, x, threads=threads)
        out = y * np.float32(w) if out is None else out + y * np.float32(w)
    return out  # type: ignore[return-value]


# ---------------------------------------------------------------- the public call
def enhance(
    image: ImageLike,
    model: Model | Blend | str,
    *,
    strength: float = 1.0,
    exact: bool = False,
    lut_size: int | None = None,
    condition_size: ConditionSize = "model",
    threads: int = 2,
) -> ImageLike:
    """Retouch ``image`` with ``model``.

    Args:
        image: (H, W, 3) numpy array — uint8, uint16, or float32 in [0, 1] — or an RGB PIL image.
        model: a :class:`~csrnet.weights.Model`, a bundled model name, a weights path, or a :class:`Blend`.
        strength: ``out = input + strength * (enhanced - input)``; 0 returns the input, 1 the network output.
        exact: run the per-pixel network on every pixel (tiled) instead of the baked lattice.
            Images under :data:`EXACT_BELOW_PIXELS` run exactly anyway unless ``lut_size`` is
            given, because that is faster for them.
        lut_size: lattice size of the fast path (default :data:`DEFAULT_LUT_SIZE`; CSRNet-L: per grid
            cell, default :data:`csrnet.local.DEFAULT_GRID_LUT_SIZE`, see :func:`csrnet.local.enhance_image`).
        condition_size: long edge (px) of the copy the condition network sees: ``"model"`` uses
            the size stored in the weights, ``None`` the full-resolution image (the released code).
        threads: threads for applying the lattice.

    Returns:
        The enhanced image with the input's type, dtype and shape, clipped to the valid range.
    """
    if not isinstance(model, Blend):
        model = load_model(model)
    if strength == 0:
        if not isinstance(image, Image.Image):
            _check_array(np.asarray(image))
        return image.copy()
    if isinstance(model, Model) and model.arch != "csrnet":
        return _enhance_other(image, model, strength=strength, exact=exact, lut_size=lut_size, condition_size=condition_size, threads=threads)
    with single_threaded_blas() as limited:
        # On a worker thread (a batch already runs files in parallel) the condition net and the MLP
        # stay on the calling thread: sharing csrnet's pool between files made a folder batch slower.
        return _enhance_csrnet(image, model, strength, exact, lut_size, condition_size, threads, threads if limited else 1)


def _enhance_csrnet(image: ImageLike, model: Model | Blend, strength: float, exact: bool, lut_size: int | None,
                    condition_size: ConditionSize, threads: int, net_threads: int) -> ImageLike:
    mix, small = _transforms(image, model, condition_size, net_threads)
    w, h = image.size if isinstance(image, Image.Image) else np.asarray(image).shape[1::-1]
    if exact or (lut_size is None and w * h < EXACT_BELOW_PIXELS):
        x = _as_float(image)
        y = _run_mix(mix, x.reshape(-1, 3), net_threads).reshape(x.shape)
        if strength != 1.0:
            y = x + np.float32(strength) * (y - x)
        if isinstance(image, Image.Image):
            return Image.fromarray(_from_float(y, np.empty(0, np.uint8)), "RGB")
        return _from_float(y, np.asarray(image))
    size = lut_size or DEFAULT_LUT_SIZE
    table = sum(np.float32(wt) * fit_lattice(layers, small, size, strength, photo_only=True, threads=net_threads) for layers, wt in mix)
    if isinstance(image, Image.Image):
        return _lut.apply_lut_pil(_pil_rgb(image), table, size, threads=threads)
    arr = np.asarray(image)
    _check_array(arr)
    if arr.dtype in (np.uint8, np.uint16):
        return _lut.apply_lut_uint(arr, table, size, threads=threads)
    return _from_float(_lut.apply_lut_float(_as_float(arr), table, size, threads=threads), arr)


def _enhance_other(image: ImageLike, model: Model, **kwargs) -> ImageLike:
    """Architectures with their own engine module (CSRNet-L: :mod:`csrnet.local`)."""
    if model.arch == "csrnet-l":
        from .local import enhance_image

        return enhance_image(image, model, **kwargs)
    raise CsrnetError(f"no engine for architecture {model.arch!r}")
