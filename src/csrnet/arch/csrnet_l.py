"""Torch-free inference for CSRNet-L (spatial feature modulation), at any photo size in bounded memory.

CSRNet-L (see :class:`csrnet.training.network.CSRNetL` for the design) adds to CSRNet a coarse
grid of per-cell scale/shift maps computed from the condition image's stride-8 features.
At inference, the condition network sees a downscaled copy (``condition_size`` long edge),
giving the 32-d global vector and the coarse maps (C=262 channels on a grid of ~16x12
cells) — the only step that looks at more than one pixel, and it is tiny. Then:

* exact mode (``exact=True``): the per-pixel base network runs over the full-resolution
  photo in tiles; each tile upsamples the maps for its own pixels only (bilinear, or the
  fast guided filter with the tile's own luma as guide), so memory stays at a few tens of MB
  whatever the photo size. Every output pixel depends only on its own colour, its own
  coordinates and the coarse maps, never on the tile it falls in, so tiles join without
  seams (tests/unit/arch/test_csrnet_l.py checks tiled == untiled).
* fast path (``exact=False``), a grid of baked lattices like a bilateral grid: at every
  node of a grid twice as fine as the maps' cells (:func:`refine_maps`; the bilinearly
  upsampled maps there are exact) the per-pixel network is sampled on a ``size``^3 colour
  lattice (:func:`bake_grid`) with that node's modulation — for guided upsampling
  ``b + a*luma(colour)``, the lattice colour's own luma, so the guided term is exact inside
  each lattice. Each pixel looks its colour up in the lattices of the 4 nodes around it and
  blends them bilinearly, with exact mode's resampling convention (:func:`grid_taps`;
  :func:`csrnet.kernels.lut.apply_grid_uint`, a C kernel for 8/16-bit). The approximations are
  blending the nodes' outputs instead of their modulations, and the lattice's trilinear
  interpolation: >= 51.8 dB PSNR from exact mode on held-out photos of the local tasks with
  17^3 lattices, and an order of magnitude faster (bench/local_fast.py). Baking the ~650 nodes costs
  about as much as 0.8 MP of exact mode, so the pipeline (``csrnet.enhance``)
  runs smaller photos exactly (:meth:`CSRNetL.prefers_exact`).

Everything here is numpy; this module must never import torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InvalidArgumentError
from ..kernels.lattice import identity_lattice
from ..kernels.lut import GridTaps, LatticeGrid
from ..threads import run_blocks
from .base import Architecture, CopyFn, register
from .csrnet import csrnet_shapes
from .layers import conv_pad1, condition_features, modulation, plain_layers, run_mlp

if TYPE_CHECKING:
    from ..model import Model

__all__ = [
    "CSRNetL",
    "DEFAULT_GRID_LUT_SIZE",
    "DEFAULT_GRID_REFINE",
    "LOCAL_CHANNELS",
    "LocalMaps",
    "bake_grid",
    "bake_grid_for",
    "csrnet_l_shapes",
    "grid_taps",
    "local_maps",
    "refine_maps",
    "run_exact",
]

#: Base-network width and output channels of CSRNet-L (the map channels are 2*(64+64+3)).
_BASE_NF, _OUT_NC = 64, 3
LOCAL_CHANNELS = (_BASE_NF, _BASE_NF, _BASE_NF, _BASE_NF, _OUT_NC, _OUT_NC)
_TILE_PIXELS = 1 << 15  # 32k pixels x 262 map channels x float32 ~ 34 MB per tile (x2 for guided)
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
#: Lattice size per grid node on the fast path, by measurement (bench/local_fast.py, held-out
#: photos of the local tasks, 7 models): with the 2x grid below, 17 keeps >= 51.8 dB from exact
#: mode (>= 54.0 dB with the bundled models); 13 bakes in half the time but drops to 49.0 dB.
#: Every node is baked: the fast path's fixed cost.
DEFAULT_GRID_LUT_SIZE = 17
#: Lattices are baked on a grid this many times finer than the maps' cells (:func:`refine_maps`):
#: blending outputs instead of modulations errs most where the maps change fastest; halving the
#: blend distance cut the worst pixels of a clarity model from 14 to 4 levels of 255 (1024-px
#: photos) for 3.7x the bake, where 33^3 lattices on the cells alone leave them at 14.
DEFAULT_GRID_REFINE = 2
#: ``enhance_image`` takes the fast path only when the bake evaluates at most this many lattice
#: points per photo pixel: a baked point costs ~0.5 us, an exact pixel ~2.5 us (one core).
_BAKE_POINTS_PER_PIXEL = 4


class LocalMaps:
    """Everything CSRNet-L needs from the condition image, on the coarse grid.

    Attributes:
        vec: (32,) global condition vector.
        a: (gh, gw, 262) guided-filter slope per cell (``None`` for bilinear upsampling).
        b: (gh, gw, 262) per-cell maps (bilinear) or guided-filter intercept.
    """

    def __init__(self, vec: np.ndarray, a: np.ndarray | None, b: np.ndarray) -> None:
        self.vec, self.a, self.b = vec, a, b

    @property
    def grid(self) -> tuple[int, int]:
        return self.b.shape[0], self.b.shape[1]


def _adaptive_pool(x: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """torch's ``adaptive_avg_pool2d`` on (C, H, W): bins [floor(i*H/o), ceil((i+1)*H/o))."""
    _, h, w = x.shape
    rows = [(i * h // out_h, -(-(i + 1) * h // out_h)) for i in range(out_h)]
    cols = [(j * w // out_w, -(-(j + 1) * w // out_w)) for j in range(out_w)]
    return np.stack(
        [np.stack([x[:, r0:r1, c0:c1].mean(axis=(1, 2)) for c0, c1 in cols], -1) for r0, r1 in rows], -2
    ).astype(np.float32)


def _box3(x: np.ndarray) -> np.ndarray:
    """3x3 mean with edge replication on (C, h, w) (torch: replicate pad + avg_pool2d(3, 1))."""
    p = np.pad(x, ((0, 0), (1, 1), (1, 1)), mode="edge")
    h, w = x.shape[1:]
    return sum(p[:, dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)) / np.float32(9)


def _coords(h: int, w: int) -> np.ndarray:
    """(2, h, w) pixel-centre coordinates (y, x) in [-1, 1], as network.coord_channels."""
    ys = (np.arange(h, dtype=np.float32) + 0.5) / h * 2 - 1
    xs = (np.arange(w, dtype=np.float32) + 0.5) / w * 2 - 1
    return np.stack(np.meshgrid(ys, xs, indexing="ij")).astype(np.float32)


def _settings(model: Model) -> tuple[int, str, float]:
    meta = model.meta
    pool = int(meta.get("map_pool", 2))
    upsample = str(meta.get("upsample", "guided"))
    if upsample not in ("bilinear", "guided") or pool < 1:
        raise InvalidArgumentError(f"{model.name or 'model'}: unsupported CSRNet-L settings map_pool={pool}, upsample={upsample!r}")
    return pool, upsample, float(meta.get("guided_eps", 1e-2))


def local_maps(model: Model, small: np.ndarray, *, threads: int = 1) -> LocalMaps:
    """Condition image (h, w, 3) float32 in [0,1] -> :class:`LocalMaps` (vector + coarse maps)."""
    t = model.tensors
    pool, upsample, eps = _settings(model)
    feats = condition_features(model, small, threads=threads)  # (32, fh, fw), stride 8
    vec = feats.mean(axis=(1, 2), dtype=np.float64).astype(np.float32)
    gh, gw = -(-feats.shape[1] // pool), -(-feats.shape[2] // pool)
    grid = np.concatenate([_adaptive_pool(feats, gh, gw), _coords(gh, gw)])
    # conv 3x3, pad 1, stride 1, ReLU: engine's zero-pad-1 convolution does exactly that.
    h = conv_pad1(grid, t["local_net.conv.weight"], t["local_net.conv.bias"], stride=1)
    head = t["local_net.head.weight"][:, :, 0, 0]
    maps = (np.tensordot(head, h, axes=(1, 0)) + t["local_net.head.bias"][:, None, None]).astype(np.float32)
    if model.meta.get("zero_mean"):  # CSRNetL(zero_mean=True): the maps carry no photo-wide part
        maps -= maps.mean(axis=(1, 2), keepdims=True, dtype=np.float64).astype(np.float32)
    if upsample == "bilinear":
        return LocalMaps(vec, None, np.ascontiguousarray(np.moveaxis(maps, 0, -1)))
    luma = np.tensordot(np.asarray(small, np.float32), _LUMA, axes=(2, 0))[None]
    guide = _adaptive_pool(luma, gh, gw)
    mean_i, mean_p = _box3(guide), _box3(maps)
    cov = _box3(guide * maps) - mean_i * mean_p
    var = _box3(guide * guide) - mean_i * mean_i
    a = cov / (var + np.float32(eps))
    b = mean_p - a * mean_i
    return LocalMaps(vec, np.ascontiguousarray(np.moveaxis(a, 0, -1)), np.ascontiguousarray(np.moveaxis(b, 0, -1)))


def _taps(n_out: int, n_in: int, start: int, stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """torch's bilinear resize (align_corners=False, clamped) from n_in to n_out, output rows start..stop:
    the two source indices i0, i1 (int64) and the weight ``lam`` of i1 (float64)."""
    dst = np.arange(start, stop, dtype=np.float64)
    src = np.maximum((dst + 0.5) * (n_in / n_out) - 0.5, 0.0)
    i0 = np.minimum(src.astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, src - i0


def grid_taps(n_out: int, n_in: int, refine: int = 1) -> GridTaps:
    """The taps of exact mode's bilinear resize (as :func:`_interp_matrix` uses them) for the lattice grid kernel: ((n_out, 2) int32, (n_out,) float32).

    ``refine`` > 1: the taps into the grid of :func:`refine_maps` (nodes every 1/refine cell), which
    interpolate the same maps at every pixel.
    """
    i0, i1, lam = _taps(n_out, n_in, 0, n_out)
    if refine > 1:
        last = (n_in - 1) * refine
        pos = np.minimum(i0 + lam, n_in - 1) * refine  # the clamped source position, in refined steps
        i0 = np.minimum(pos.astype(np.int64), last)
        i1, lam = np.minimum(i0 + 1, last), pos - i0
    return np.stack([i0, i1], 1).astype(np.int32), lam.astype(np.float32)


def refine_maps(maps: LocalMaps, refine: int) -> LocalMaps:
    """The maps at every 1/refine cell step between the cell centres: ((gh-1)*refine+1, (gw-1)*refine+1, C).

    Exact mode's bilinear upsampling is bilinear between neighbouring cell centres, so these are
    exactly the values (guided: slopes and intercepts) it gives pixels at those positions; the
    fast path bakes a lattice at each, halving (refine=2) the distance its blending spans.
    """
    if refine == 1:
        return maps
    gh, gw = maps.grid

    def weights(n: int) -> np.ndarray:
        pos = np.arange((n - 1) * refine + 1, dtype=np.float64) / refine
        i0 = np.minimum(pos.astype(np.int64), n - 1)
        i1 = np.minimum(i0 + 1, n - 1)
        m = np.zeros((len(pos), n), np.float64)
        np.add.at(m, (np.arange(len(pos)), i0), 1 - (pos - i0))
        np.add.at(m, (np.arange(len(pos)), i1), pos - i0)
        return m

    wy, wx = weights(gh), weights(gw)

    def up(g: np.ndarray) -> np.ndarray:  # (gh, gw, C) -> (Y, X, C)
        return np.ascontiguousarray(np.tensordot(wy, np.tensordot(wx, g, axes=(1, 1)), axes=(1, 1)), np.float32)

    return LocalMaps(maps.vec, None if maps.a is None else up(maps.a), up(maps.b))


def _interp_matrix(n_out: int, n_in: int, start: int, stop: int) -> np.ndarray:
    """(stop-start, n_in) weights of torch's bilinear resize (align_corners=False) from n_in to n_out."""
    i0, i1, lam = _taps(n_out, n_in, start, stop)
    dst = np.arange(start, stop)
    m = np.zeros((len(dst), n_in), np.float64)
    np.add.at(m, (np.arange(len(dst)), i0), 1 - lam)
    np.add.at(m, (np.arange(len(dst)), i1), lam)
    return m.astype(np.float32)


def _upsample(grid: np.ndarray, wy: np.ndarray, wx: np.ndarray) -> np.ndarray:
    """(gh, gw, C) -> (th, tw, C) with separable weights wy (th, gh), wx (tw, gw)."""
    rows = np.tensordot(wy, grid, axes=(1, 0))  # (th, gw, C)
    return np.einsum("xg,ygc->yxc", wx, rows, optimize=True)


def _run_tile(model: Model, maps: LocalMaps, x: np.ndarray, wy: np.ndarray, wx: np.ndarray) -> np.ndarray:
    """Base network on one tile x (th, tw, 3) with the maps resized to its pixels; returns (th, tw, 3)."""
    th, tw, _ = x.shape
    m = _upsample(maps.b, wy, wx)
    if maps.a is not None:
        m += _upsample(maps.a, wy, wx) * (x @ _LUMA)[..., None]
    m = m.reshape(th * tw, -1)
    scales, shifts, o = [], [], 0
    for scale, shift in modulation(model, maps.vec):  # global modulation plus the maps at each pixel
        c = len(scale)
        scales.append(scale + m[:, o : o + c])
        shifts.append(shift + m[:, o + c : o + 2 * c])
        o += 2 * c
    y = run_mlp(plain_layers(model), x.reshape(-1, 3), tile=th * tw, scales=scales, shifts=shifts)
    return y.reshape(th, tw, 3)


def _tiles(h: int, w: int, tile_pixels: int) -> list[tuple[int, int, int, int]]:
    tw = min(w, 512)
    th = max(1, tile_pixels // tw)
    return [(r, min(h, r + th), c, min(w, c + tw)) for r in range(0, h, th) for c in range(0, w, tw)]


def bake_grid(model: Model, maps: LocalMaps, size: int = DEFAULT_GRID_LUT_SIZE, strength: float = 1.0, *, threads: int = 1) -> np.ndarray:
    """Sample each grid cell's per-pixel network on a ``size``^3 colour lattice.

    For cell k and lattice colour c, the network is the one a pixel of colour c at the cell's
    centre runs: global modulation plus the cell's maps ``b_k`` (``+ a_k * luma(c)`` when
    guided). The modulation is affine in luma(c) inside a cell, so each layer is one product
    ``h @ [W*S_k | W*A_k]`` and ``z = P + luma(c) * Q`` (S_k, A_k: the cell's scale and slope).

    Returns:
        (gh, gw, size**3, 3) float32, red fastest (as :func:`csrnet.kernels.lattice.identity_lattice`),
        unclipped, with ``strength`` folded in (``c + strength * (f(c) - c)``).
    """
    if not 2 <= size <= 129:
        raise InvalidArgumentError(f"lattice size must be between 2 and 129, got {size}")
    t = model.tensors
    (gh, gw), cells = maps.grid, maps.grid[0] * maps.grid[1]
    b = maps.b.reshape(cells, -1)
    a = None if maps.a is None else maps.a.reshape(cells, -1)
    # Per cell and layer, one (in + 1, out or 2 out) matrix: the folded weights, bias last.
    mats, o = [], 0
    for i, (scale, shift) in zip((1, 2, 3), modulation(model, maps.vec)):
        w = t[f"conv{i}.weight"][:, :, 0, 0].T  # (in, out)
        c = w.shape[1]
        wb = np.concatenate([w, t[f"conv{i}.bias"][None]])  # (in + 1, out)
        m = wb[None] * (scale + b[:, None, o : o + c])  # (cells, in + 1, out)
        m[:, -1] += shift + b[:, o + c : o + 2 * c]
        if a is not None:
            q = wb[None] * a[:, None, o : o + c]
            q[:, -1] += a[:, o + c : o + 2 * c]
            m = np.concatenate([m, q], 2)
        mats.append(np.ascontiguousarray(m, np.float32))
        o += 2 * c
    grid = identity_lattice(size)
    lum = (grid @ _LUMA)[:, None]
    ones = np.concatenate([grid, np.ones((len(grid), 1), np.float32)], 1)
    out = np.empty((cells, len(grid), 3), np.float32)
    chunk = 2048  # lattice points per product: the (chunk, 128) activations stay in cache

    def cell(k: int) -> None:
        for p0 in range(0, len(grid), chunk):
            h = ones[p0 : p0 + chunk]
            for i, m in enumerate(mats):
                z = h @ m[k] if i == 0 else h @ m[k, :-1] + m[k, -1]
                if a is not None:
                    c = z.shape[1] // 2
                    q = z[:, c:]
                    q *= lum[p0 : p0 + chunk]
                    z = z[:, :c]
                    z += q
                h = np.maximum(z, 0, out=z) if i < 2 else z
            out[k, p0 : p0 + chunk] = h

    # The products are small: threaded BLAS only adds spinning (bench/results/design_timings.md),
    # so the pipeline holds BLAS to one thread
    # (csrnet.threads.network_threads) and the cells are split across csrnet's threads instead.
    run_blocks(cell, range(cells), threads)
    if strength != 1.0:
        out = grid + np.float32(strength) * (out - grid)
    return out.reshape(gh, gw, len(grid), 3)


def run_exact(x: np.ndarray, model: Model, maps: LocalMaps, *, tile_pixels: int = _TILE_PIXELS, threads: int = 1) -> np.ndarray:
    """Exact mode: the per-pixel network over (H, W, 3) float32 ``x``, tile by tile (tiles on
    ``threads`` threads); float32, unclipped. The result does not depend on the tiling."""
    (gh, gw), (h, w) = maps.grid, x.shape[:2]
    out = np.empty_like(x)
    tiles = _tiles(h, w, tile_pixels)

    def one(k: int) -> None:
        r0, r1, c0, c1 = tiles[k]
        wy, wx = _interp_matrix(h, gh, r0, r1), _interp_matrix(w, gw, c0, c1)
        out[r0:r1, c0:c1] = _run_tile(model, maps, np.ascontiguousarray(x[r0:r1, c0:c1]), wy, wx)

    run_blocks(one, range(len(tiles)), threads)
    return out


def csrnet_l_shapes(nf: int = 64, out_nc: int = 3, cf: int = 32) -> dict[str, tuple[int, ...]]:
    """CSRNet's tensors plus the spatial branch ``local_net``."""
    return {
        **csrnet_shapes(nf=nf, out_nc=out_nc, cf=cf),
        "local_net.conv.weight": (cf, cf + 2, 3, 3),
        "local_net.conv.bias": (cf,),
        "local_net.head.weight": (2 * (2 * nf + out_nc), cf, 1, 1),
        "local_net.head.bias": (2 * (2 * nf + out_nc),),
    }


@dataclass(frozen=True)
class LocalState:
    model: Model
    maps: LocalMaps


@register
class CSRNetL(Architecture):
    """CSRNet-L: CSRNet plus spatial feature modulation from coarse maps (local effects)."""

    name = "csrnet-l"
    single_lut = False
    default_lut_size = DEFAULT_GRID_LUT_SIZE
    torch_class = "csrnet.training.network:CSRNetL"
    #: lattice grid nodes per map cell along each axis on the fast path (:func:`refine_maps`)
    refine = DEFAULT_GRID_REFINE

    def tensor_shapes(self) -> dict[str, tuple[int, ...]]:
        return csrnet_l_shapes()

    def condition(self, model: Model, copy: CopyFn, threads: int) -> LocalState:
        return LocalState(model, local_maps(model, copy(model), threads=threads))

    def run_exact(self, state: LocalState, x: np.ndarray, threads: int) -> np.ndarray:
        return run_exact(x, state.model, state.maps, threads=threads)

    def prefers_exact(self, state: LocalState, shape: tuple[int, int], lut_size: int) -> bool:
        # exact mode is cheaper when the bake evaluates more than _BAKE_POINTS_PER_PIXEL lattice
        # points per pixel (small photos, or a very fine grid from a large condition size)
        gh, gw = state.maps.grid
        nodes = ((gh - 1) * self.refine + 1) * ((gw - 1) * self.refine + 1)
        return nodes * lut_size**3 > _BAKE_POINTS_PER_PIXEL * shape[0] * shape[1]

    def bake(self, state: LocalState, size: int, strength: float, shape: tuple[int, int], threads: int) -> LatticeGrid:
        return bake_grid_for(state.model, state.maps, shape, size, self.refine, strength, threads)


def bake_grid_for(model: Model, maps: LocalMaps, shape: tuple[int, int], size: int = DEFAULT_GRID_LUT_SIZE,
                  refine: int = DEFAULT_GRID_REFINE, strength: float = 1.0, threads: int = 1) -> LatticeGrid:
    """The fast path's baked tables (on the refined grid) with the row/column taps of an (H, W) photo."""
    tables = bake_grid(model, refine_maps(maps, refine), size, strength, threads=threads)
    return LatticeGrid(tables, size, grid_taps(shape[0], maps.grid[0], refine), grid_taps(shape[1], maps.grid[1], refine))
