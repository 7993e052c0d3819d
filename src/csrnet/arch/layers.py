"""The building blocks every CSRNet-family architecture shares, in numpy (torch-free).

The condition network (three strided convolutions, each after a 1-pixel zero pad), global
feature modulation ``h * (1 + scale) + shift`` and the per-pixel base network (three 1x1
convolutions = an MLP on colours). Architectures (:mod:`csrnet.arch.csrnet`,
:mod:`csrnet.arch.csrnet_l`) compose these; this module must never import torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InvalidArgumentError
from ..threads import run_blocks

if TYPE_CHECKING:
    from ..model import Model

__all__ = [
    "Layers",
    "Modulation",
    "TILE_PIXELS",
    "conv_pad1",
    "conv_pad1_hwc",
    "COLOUR_BINS",
    "colour_statistics",
    "condition_features",
    "condition_vector",
    "modulation",
    "modulated_layers",
    "plain_layers",
    "run_mlp",
]

TILE_PIXELS = 1 << 13  # 8k pixels: the 64-wide hidden layers stay in cache (bench/results/design_timings.md)


@dataclass(frozen=True)
class Layers:
    """The base network with the condition folded in: three affine maps (W: out x in, b: out)."""

    weights: tuple[np.ndarray, np.ndarray, np.ndarray]
    biases: tuple[np.ndarray, np.ndarray, np.ndarray]


def conv_pad1(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 2, *, channels_last: bool = False, threads: int = 1) -> np.ndarray:
    """Zero-pad 1 then a valid strided convolution + ReLU, as the released condition net does.

    x: (C, H, W) float32; w: (O, C, k, k); returns (O, Ho, Wo) float32, or (Ho, Wo, O) with
    ``channels_last``. im2col in row strips (numpy has no convolution of its own; scipy's is
    single-channel and unstrided), so the patch matrix stays ~32 MB even when the net sees a
    full-resolution photo. Best for few input channels (the 3-channel first layer). With
    ``threads`` > 1 the strips run on that many threads (call it with BLAS on one thread: see
    :func:`csrnet.threads.network_threads`).
    """
    c, h, wd = x.shape
    o, _, k, _ = w.shape
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    ho = (h + 2 - k) // stride + 1
    wo = (wd + 2 - k) // stride + 1
    if ho < 1 or wo < 1:
        raise InvalidArgumentError(f"image of {h}x{wd} pixels is too small for the condition network")
    wmat = np.ascontiguousarray(w.transpose(0, 2, 3, 1).reshape(o, k * k * c), np.float32)  # columns in (dy, dx, c) order
    out = np.empty((ho, wo, o), np.float32)
    rows = _strip_rows(ho, wo * c * k * k, threads)

    def strip(r0: int) -> None:
        r1 = min(ho, r0 + rows)
        # The patch matrix is built transposed, one (c, rows, wo) slab per kernel tap: each copy runs
        # along a whole output row, much faster than gathering k-wide windows pixel by pixel.
        cols = np.empty((k, k, c, r1 - r0, wo), np.float32)
        for dy in range(k):
            y0 = dy + stride * r0
            for dx in range(k):
                cols[dy, dx] = xp[:, y0 : y0 + stride * (r1 - r0 - 1) + 1 : stride, dx : dx + stride * (wo - 1) + 1 : stride]
        acc = cols.reshape(k * k * c, -1).T @ wmat.T  # BLAS takes the transposed operands as they are
        acc += b
        out[r0:r1] = np.maximum(acc, 0, out=acc).reshape(r1 - r0, wo, o)

    run_blocks(strip, range(0, ho, rows), threads)
    return out if channels_last else np.ascontiguousarray(out.transpose(2, 0, 1))


def _strip_rows(ho: int, floats_per_row: int, threads: int) -> int:
    """Output rows per strip: a patch matrix of at most ~32 MB, and at least one strip per thread."""
    return max(1, min((1 << 23) // max(1, floats_per_row), -(-ho // max(1, threads))))


def conv_pad1_hwc(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 2, *, threads: int = 1) -> np.ndarray:
    """:func:`conv_pad1` on channels-last input (H, W, C) -> (Ho, Wo, O).

    The patch matrix is filled one kernel tap at a time from strided views, copying C
    contiguous floats per pixel: for the 32-channel layers this is several times faster than
    :func:`conv_pad1`'s channels-first gather (same sums, float32 rounding aside).
    """
    h, wd, c = x.shape
    o, _, k, _ = w.shape
    ho = (h + 2 - k) // stride + 1
    wo = (wd + 2 - k) // stride + 1
    if ho < 1 or wo < 1:
        raise InvalidArgumentError(f"image of {h}x{wd} pixels is too small for the condition network")
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

    run_blocks(strip, range(0, ho, rows), threads)
    return out


def condition_features(model: Model, image: np.ndarray, *, threads: int = 1) -> np.ndarray:
    """Stride-8 feature map of the condition network: (H, W, 3) float in [0,1] -> (32, h, w).
    ``threads`` > 1: row strips on that many threads (with BLAS on one: :func:`csrnet.threads.network_threads`)."""
    t = model.tensors
    x = np.ascontiguousarray(np.moveaxis(np.asarray(image, np.float32), -1, 0))
    x = conv_pad1(x, t["cond_net.conv1.weight"], t["cond_net.conv1.bias"], channels_last=True, threads=threads)
    for i in (2, 3):
        x = conv_pad1_hwc(x, t[f"cond_net.conv{i}.weight"], t[f"cond_net.conv{i}.bias"], threads=threads)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


#: Bins of each cumulative histogram in :func:`colour_statistics`.
COLOUR_BINS = 16
#: Rec. 709 luma weights on the sRGB values, applied as three float32 products summed left to right
#: (the torch twin, :func:`csrnet.training.network.colour_statistics`, rounds the same way).
_LUMA = (np.float32(0.2126), np.float32(0.7152), np.float32(0.0722))


def colour_statistics(image: np.ndarray) -> np.ndarray:
    """Cumulative histograms of R, G, B, luma and chroma (max - min) of ``image`` (H, W, 3) float in [0, 1]:
    (5 * COLOUR_BINS,) float32, each the fraction of pixels at or below the bin's upper edge.

    The input of the colour-statistics branch of the ``csrnet-hist`` condition network: black and
    white points, exposure and saturation read off directly, which the convolutions' global mean
    only approximates. Exact bin counts, so torch and numpy agree bit for bit.
    """
    x = np.asarray(image, np.float32).reshape(-1, 3)
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    channels = (r, g, b, r * _LUMA[0] + g * _LUMA[1] + b * _LUMA[2], x.max(axis=1) - x.min(axis=1))
    out = []
    for c in channels:
        idx = np.minimum(np.floor(np.clip(c, 0, 1) * np.float32(COLOUR_BINS)), COLOUR_BINS - 1).astype(np.int64)
        counts = np.bincount(idx, minlength=COLOUR_BINS).cumsum()
        out.append(counts.astype(np.float32) / np.float32(len(x)))
    return np.concatenate(out)


def condition_vector(model: Model, image: np.ndarray, *, threads: int = 1) -> np.ndarray:
    """The 32-d condition vector of ``image`` (H, W, 3) float in [0,1]: conv features, global mean;
    plus, for ``csrnet-hist`` weights, the colour-statistics branch
    ``cond_hist2(relu(cond_hist1(colour_statistics(image))))``."""
    v = condition_features(model, image, threads=threads).mean(axis=(1, 2), dtype=np.float64).astype(np.float32)
    t = model.tensors
    if "cond_hist1.weight" in t:
        h = np.maximum(t["cond_hist1.weight"] @ colour_statistics(image) + t["cond_hist1.bias"], 0)
        v = v + t["cond_hist2.weight"] @ h + t["cond_hist2.bias"]
    return v.astype(np.float32)


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


def run_mlp(
    layers: Layers,
    x: np.ndarray,
    tile: int = TILE_PIXELS,
    *,
    threads: int = 1,
    scales: Sequence[np.ndarray] | None = None,
    shifts: Sequence[np.ndarray] | None = None,
) -> np.ndarray:
    """The base network — three affine maps, ReLU after the first two — on pixels ``x`` (N, 3) float32;
    returns (N, 3) float32, unclipped. The one implementation of the (modulated) MLP.

    Global modulation is folded into ``layers`` (:func:`modulated_layers`). Per-pixel modulation
    (CSRNet-L) passes the plain layers and, for each layer, ``scales[i]``/``shifts[i]`` of shape
    (N, C): ``h = (x @ W + b) * scales[i] + shifts[i]``. ``threads`` > 1: the tiles of ``tile``
    pixels run on that many threads (with BLAS on one: :func:`csrnet.threads.network_threads`).
    """
    x = np.asarray(x, np.float32).reshape(-1, 3)
    out = np.empty_like(x)
    ws, bs = layers.weights, layers.biases
    last = len(ws) - 1

    def run(i: int) -> None:
        h = x[i : i + tile]
        for k, (w, b) in enumerate(zip(ws, bs)):
            h = h @ w
            h += b
            if scales is not None and shifts is not None:
                h *= scales[k][i : i + tile]
                h += shifts[k][i : i + tile]
            if k < last:
                np.maximum(h, 0, out=h)
        out[i : i + tile] = h

    run_blocks(run, range(0, len(x), tile), threads)
    return out


def plain_layers(model: Model) -> Layers:
    """The base network's own affine maps, unmodulated (weights stored (in, out) for ``x @ W``)."""
    t = model.tensors
    ws = tuple(np.ascontiguousarray(t[f"conv{i}.weight"][:, :, 0, 0].T, np.float32) for i in (1, 2, 3))
    return Layers(ws, tuple(t[f"conv{i}.bias"] for i in (1, 2, 3)))  # type: ignore[arg-type]
