"""Torch-free inference for CSRNet-L (spatial feature modulation), at any photo size in bounded memory.

CSRNet-L (see :class:`csrnet.network.CSRNetL` for the design) adds to CSRNet a coarse
grid of per-cell scale/shift maps computed from the condition image's stride-8 features.
At inference:

1. the condition network sees a downscaled copy (``condition_size`` long edge), giving the
   32-d global vector and the coarse maps (C=262 channels on a grid of ~16x12 cells) — this
   is the only step that looks at more than one pixel, and it is tiny;
2. the per-pixel base network runs over the full-resolution photo in tiles; each tile
   upsamples the maps for its own pixels only (bilinear, or the fast guided filter with the
   tile's own luma as guide), so memory stays at a few tens of MB whatever the photo size.

Every output pixel depends only on its own colour, its own coordinates and the coarse
maps, never on the tile it falls in, so tiles join without seams (tests/test_local.py
checks tiled == untiled).

No lattice fast path: the modulation varies per pixel, and blending per-cell lattices
(bilateral-grid style) is only an approximation of it; see bench/local_tasks.py for the
measured gap. Everything here is numpy; this module must never import torch.
"""

from __future__ import annotations

import numpy as np

from . import engine as _engine
from .errors import CsrnetError
from .weights import Model

__all__ = ["LocalMaps", "local_maps", "enhance_local", "LOCAL_CHANNELS"]

#: Base-network width and output channels of CSRNet-L (the map channels are 2*(64+64+3)).
_BASE_NF, _OUT_NC = 64, 3
LOCAL_CHANNELS = (_BASE_NF, _BASE_NF, _BASE_NF, _BASE_NF, _OUT_NC, _OUT_NC)
_TILE_PIXELS = 1 << 15  # 32k pixels x 262 map channels x float32 ~ 34 MB per tile (x2 for guided)
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


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
        raise CsrnetError(f"{model.name or 'model'}: unsupported CSRNet-L settings map_pool={pool}, upsample={upsample!r}")
    return pool, upsample, float(meta.get("guided_eps", 1e-2))


def local_maps(model: Model, small: np.ndarray) -> LocalMaps:
    """Condition image (h, w, 3) float32 in [0,1] -> :class:`LocalMaps` (vector + coarse maps)."""
    t = model.tensors
    pool, upsample, eps = _settings(model)
    feats = _engine.condition_features(model, small)  # (32, fh, fw), stride 8
    vec = feats.mean(axis=(1, 2), dtype=np.float64).astype(np.float32)
    gh, gw = -(-feats.shape[1] // pool), -(-feats.shape[2] // pool)
    grid = np.concatenate([_adaptive_pool(feats, gh, gw), _coords(gh, gw)])
    # conv 3x3, pad 1, stride 1, ReLU: engine's zero-pad-1 convolution does exactly that.
    h = _engine._conv_pad1(grid, t["local_net.conv.weight"], t["local_net.conv.bias"], stride=1)
    head = t["local_net.head.weight"][:, :, 0, 0]
    maps = (np.tensordot(head, h, axes=(1, 0)) + t["local_net.head.bias"][:, None, None]).astype(np.float32)
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


def _interp_matrix(n_out: int, n_in: int, start: int, stop: int) -> np.ndarray:
    """(stop-start, n_in) weights of torch's bilinear resize (align_corners=False) from n_in to n_out."""
    dst = np.arange(start, stop, dtype=np.float64)
    src = np.maximum((dst + 0.5) * (n_in / n_out) - 0.5, 0.0)
    i0 = np.minimum(src.astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    lam = src - i0
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
    t = model.tensors
    th, tw, _ = x.shape
    m = _upsample(maps.b, wy, wx)
    if maps.a is not None:
        m += _upsample(maps.a, wy, wx) * (x @ _LUMA)[..., None]
    m = m.reshape(th * tw, -1)
    h = x.reshape(-1, 3)
    o = 0
    for i in (1, 2, 3):
        w = t[f"conv{i}.weight"][:, :, 0, 0]
        c = w.shape[0]
        scale = 1.0 + t[f"cond_scale{i}.weight"] @ maps.vec + t[f"cond_scale{i}.bias"]
        shift = t[f"cond_shift{i}.weight"] @ maps.vec + t[f"cond_shift{i}.bias"]
        z = h @ w.T + t[f"conv{i}.bias"]
        z *= scale + m[:, o : o + c]
        z += shift + m[:, o + c : o + 2 * c]
        o += 2 * c
        h = np.maximum(z, 0, out=z) if i < 3 else z
    return h.reshape(th, tw, 3)


def _tiles(h: int, w: int, tile_pixels: int) -> list[tuple[int, int, int, int]]:
    tw = min(w, 512)
    th = max(1, tile_pixels // tw)
    return [(r, min(h, r + th), c, min(w, c + tw)) for r in range(0, h, th) for c in range(0, w, tw)]


def enhance_local(
    image: np.ndarray,
    model: Model,
    *,
    strength: float = 1.0,
    exact: bool = True,
    condition_size: _engine.ConditionSize = "model",
    tile_pixels: int = _TILE_PIXELS,
) -> np.ndarray:
    """Enhance ``image`` with a CSRNet-L model at full resolution, tile by tile.

    Args:
        image: (H, W, 3) float32 RGB in [0, 1].
        model: a loaded CSRNet-L :class:`~csrnet.weights.Model` (meta arch ``"csrnet-l"``).
        strength: ``out = input + strength * (enhanced - input)``.
        exact: accepted for the engine's call signature; CSRNet-L always runs the exact
            per-pixel network (no lattice fast path, see the module docstring).
        condition_size: long edge of the condition copy: ``"model"`` (the trained size),
            ``None`` (full resolution) or an int.
        tile_pixels: pixels per tile (bounds memory; the result does not depend on it).

    Returns:
        (H, W, 3) float32, unclipped.

    Example:
        >>> out = enhance_local(np.random.rand(300, 200, 3).astype(np.float32), model, strength=1.0, exact=True)  # doctest: +SKIP
        >>> out.shape
        (300, 200, 3)
    """
    del exact  # one path only; kept for the engine's uniform call
    if model.arch != "csrnet-l":
        raise CsrnetError(f"{model.name or 'model'} is a {model.arch!r} model, not csrnet-l")
    x = np.asarray(image, np.float32)
    if x.ndim != 3 or x.shape[2] != 3:
        raise CsrnetError(f"expected an H x W x 3 RGB image, got shape {x.shape}")
    small = _engine._condition_input(x, model, condition_size)
    maps = local_maps(model, small)
    (gh, gw), (h, w) = maps.grid, x.shape[:2]
    out = np.empty_like(x)
    for r0, r1, c0, c1 in _tiles(h, w, tile_pixels):
        wy, wx = _interp_matrix(h, gh, r0, r1), _interp_matrix(w, gw, c0, c1)
        tile = np.ascontiguousarray(x[r0:r1, c0:c1])
        y = _run_tile(model, maps, tile, wy, wx)
        if strength != 1.0:
            y = tile + np.float32(strength) * (y - tile)
        out[r0:r1, c0:c1] = y
    return out
