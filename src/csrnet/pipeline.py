"""The one path from pixels to retouched pixels, for every architecture: ``enhance`` and ``bake_lut``.

This module does, once for every architecture (:mod:`csrnet.arch`): input coercion (PIL images,
uint8/uint16/float arrays, same type out), the condition copy, strength, the thread policy
(:mod:`csrnet.threads`) and the choice between exact mode and a baked lattice. The architecture
only computes; the kernels (:mod:`csrnet.kernels`) apply. Everything here is numpy: this module
must never import torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, TypeVar

import numpy as np
from PIL import Image

from .arch import get_architecture
from .arch.base import Architecture
from .arch.csrnet import Blend
from .errors import InvalidArgumentError
from .kernels.lattice import DEFAULT_LUT_SIZE
from .kernels.lut import Lattice, LatticeGrid
from .kernels.pixels import from_float, image_size, pil_rgb, to_float
from .kernels.resize import downscale
from .threads import network_threads, resolve
from .weights import Model, load_model

__all__ = ["Blend", "ConditionSize", "DEFAULT_LUT_SIZE", "bake_lut", "condition_copy", "enhance", "parse_style", "shrink", "transform"]

ImageLike = TypeVar("ImageLike", np.ndarray, Image.Image)
#: ``"model"`` (the long edge stored in the weights), ``None`` (full resolution, as the released
#: code runs it) or a long edge in pixels.
ConditionSize = int | None | Literal["model"]


def _resolve_model(model: Model | Blend | str) -> Model | Blend:
    return model if isinstance(model, Blend) else load_model(model)


def condition_copy(image: np.ndarray | Image.Image, model: Model | Blend, condition_size: ConditionSize = "model", *,
                   threads: int | None = None) -> np.ndarray:
    """The copy of ``image`` the condition network of ``model`` sees: (h, w, 3) float32 in [0, 1],
    long edge ``condition_size`` (see :data:`ConditionSize`), never upscaled, at least 5 px a side."""
    if condition_size == "model":
        size = model.condition_size
    elif condition_size is None or (isinstance(condition_size, int) and not isinstance(condition_size, bool)):
        size = condition_size
    else:
        raise InvalidArgumentError(f"condition_size must be 'model', None or an int, got {condition_size!r}")
    if size is not None and size < 16:
        raise InvalidArgumentError(f"condition_size {size} is too small (at least 16 px)")
    small = downscale(image, size, threads=threads)
    h, w = small.shape[:2]
    if h < 5 or w < 5:  # the 7x7 stride-2 first layer needs >= 5 px; replicated edges barely move a global mean
        small = np.pad(small, ((0, max(0, 5 - h)), (0, max(0, 5 - w)), (0, 0)), mode="edge")
    return small


def _copies(image: np.ndarray | Image.Image, condition_size: ConditionSize) -> Callable[[Model], np.ndarray]:
    """The condition copy per model, computed once per long edge (a blend's models may share it)."""
    made: dict[int | None, np.ndarray] = {}

    def copy(model: Model) -> np.ndarray:
        key = model.condition_size if condition_size == "model" else condition_size
        if key not in made:
            made[key] = condition_copy(image, model, condition_size)  # type: ignore[index]
        return made[key]  # type: ignore[index]

    return copy


def _state(image: np.ndarray | Image.Image, model: Model | Blend, condition_size: ConditionSize, net_threads: int):
    arch: Architecture = get_architecture(model.arch)
    return arch, arch.condition(model, _copies(image, condition_size), net_threads)


def _blend(x: np.ndarray, y: np.ndarray, strength: float) -> np.ndarray:
    """``x + strength * (y - x)`` into ``y`` (the paper's image interpolation), for strength != 1."""
    if strength != 1.0:
        y -= x
        y *= np.float32(strength)
        y += x
    return y


def shrink(image: ImageLike, long_edge: int) -> ImageLike:
    """``image`` with its long edge cut to ``long_edge`` px (never enlarged), same type and dtype:
    csrnet's antialiased resize (:func:`csrnet.kernels.resize.downscale`), rounded back."""
    h, w = image_size(image)
    if max(h, w) <= long_edge:
        return image
    # reducing_gap 1.5: box means down to at most 1.5x the size, then Pillow's bilinear (still antialiased:
    # its support widens with the scale); several times cheaper than the condition copy's 3 on large
    # photos, which keeps a preview cheaper than the full-size result
    small = downscale(image, long_edge, reducing_gap=1.5)
    if isinstance(image, Image.Image):
        return Image.fromarray(from_float(small, np.uint8), "RGB")
    return from_float(small, np.asarray(image).dtype)


def _apply(baked: Lattice | LatticeGrid, image: ImageLike, threads: int, inplace: bool = False) -> ImageLike:
    """A baked transform on ``image``, its type and dtype kept, clipped (into ``image`` with ``inplace``)."""
    if isinstance(image, Image.Image):
        return baked.apply_pil(pil_rgb(image), threads=threads)
    arr = np.asarray(image)
    if arr.dtype in (np.uint8, np.uint16):
        inplace = inplace and arr is image and arr.flags.c_contiguous and arr.flags.writeable
        return baked.apply_uint(arr, threads=threads, out=arr if inplace else None)
    return from_float(baked.apply_float(to_float(arr), threads=threads), arr.dtype)


def enhance(
    image: ImageLike,
    model: Model | Blend | str,
    *,
    strength: float = 1.0,
    exact: bool = False,
    lut_size: int | None = None,
    condition_size: ConditionSize = "model",
    threads: int | None = None,
    long_edge: int | None = None,
    inplace: bool = False,
) -> ImageLike:
    """Retouch ``image`` with ``model``.

    Args:
        image: (H, W, 3) numpy array — uint8, uint16, or float32 in [0, 1] — or an RGB PIL image.
        model: a :class:`~csrnet.weights.Model`, a bundled model name, a weights path, or a :class:`Blend`.
        strength: ``out = input + strength * (enhanced - input)``; 0 returns the input, 1 the network output.
        exact: run the per-pixel network on every pixel (tiled) instead of a baked lattice. Photos for
            which exact mode is cheaper (CSRNet: under 1 MP) run exactly anyway unless ``lut_size`` is given.
        lut_size: lattice size of the fast path (default: the architecture's, 49 for CSRNet, 17 per
            grid node for CSRNet-L).
        condition_size: long edge (px) of the copy the condition network sees: ``"model"`` uses
            the size stored in the weights, ``None`` the full-resolution image (the released code).
        threads: threads for the network and the lattice (default: the CPUs this process may use).
        long_edge: return the result with its long edge cut to this many pixels (never enlarged):
            the transform is computed from the whole photo, as at full size, and applied to an
            antialiased copy (:func:`shrink`) — a preview, or a resized export, of the same look,
            and faster than the full-size result.
        inplace: for a writable (H, W, 3) uint8/uint16 array on the lattice path, the result may be
            written into ``image`` itself (the input is then lost; saves a full-size copy — what the
            batch and the web app do with the pixels they decoded). Use the returned array.

    Returns:
        The enhanced image with the input's type and dtype, clipped to the valid range; its shape
        is the input's (or the resized one with ``long_edge``).

    Example:
        >>> out = enhance(np.zeros((64, 48, 3), np.uint8), "auto", strength=0.8)  # doctest: +SKIP
        >>> out.shape, out.dtype
        ((64, 48, 3), dtype('uint8'))
    """
    model = _resolve_model(model)
    h, w = image_size(image)
    out = image if long_edge is None else shrink(image, long_edge)  # what is written: the photo or a smaller copy
    if strength == 0:
        return out.copy() if out is image else out
    threads = resolve(threads)
    with network_threads(threads) as net_threads:
        arch, state = _state(image, model, condition_size, net_threads)  # from the whole photo, whatever its output size
        size = lut_size or arch.default_lut_size
        # a resized output always takes the lattice: its cost is fixed, and exact mode on the small copy
        # would make a preview of a large photo slower than the full-size result
        if exact or (lut_size is None and out is image and arch.prefers_exact(state, (h, w), size)):
            x = to_float(out)
            y = _blend(x, arch.run_exact(state, x, net_threads), strength)
            if isinstance(out, Image.Image):
                return Image.fromarray(from_float(y, np.uint8), "RGB")
            return from_float(y, np.asarray(out).dtype)
        baked = arch.bake(state, size, strength, image_size(out), net_threads)
    return _apply(baked, out, threads, inplace=inplace or out is not image)  # a resized copy is ours to overwrite


def transform(
    image: np.ndarray | Image.Image,
    model: Model | Blend | str,
    *,
    strength: float = 1.0,
    exact: bool = True,
    lut_size: int | None = None,
    condition_size: ConditionSize = "model",
    threads: int | None = None,
) -> np.ndarray:
    """:func:`enhance` without the final clipping and rounding: (H, W, 3) float32, unclipped — the
    network's raw output (as the released code returns it), for comparisons and training targets.

    ``exact=False`` applies the baked lattice (or lattice grid) in float, whatever the photo size.
    """
    model = _resolve_model(model)
    x = to_float(image)
    threads = resolve(threads)
    with network_threads(threads) as net_threads:
        arch, state = _state(image, model, condition_size, net_threads)
        if exact:
            return _blend(x, arch.run_exact(state, x, net_threads), strength)
        if strength == 0:
            return x.copy()
        baked = arch.bake(state, lut_size or arch.default_lut_size, strength, x.shape[:2], net_threads)
    return baked.apply_float(x, threads=threads)


def bake_lut(
    image: np.ndarray | Image.Image,
    model: Model | Blend | str,
    size: int = DEFAULT_LUT_SIZE,
    *,
    strength: float = 1.0,
    condition_size: ConditionSize = "model",
    fit: bool = True,
    threads: int | None = None,
) -> np.ndarray:
    """The image's transform as a (size**3, 3) float32 table, red fastest (reshape to [b, g, r, 3]).

    Values are left unclipped (the network overshoots [0, 1] near black; clipping before
    interpolation costs several dB) — clip after applying. ``fit=True`` fits the table to
    the photo's own colours (:func:`csrnet.kernels.lattice.fit_lattice`); ``fit=False`` samples the
    network at the nodes only, a neutral table for other photos. Only for architectures a single
    global LUT describes (CSRNet; not CSRNet-L, whose transform varies across the photo).

    Example:
        >>> table = bake_lut(np.zeros((64, 64, 3), np.uint8), model, size=33)  # doctest: +SKIP
        >>> table.shape
        (35937, 3)
    """
    model = _resolve_model(model)
    arch = get_architecture(model.arch)
    if not arch.single_lut:
        raise InvalidArgumentError(f"{arch.name} models are spatially varying: no single 3D LUT describes them")
    image_size(image)
    threads = resolve(threads)
    with network_threads(threads) as net_threads:
        arch, state = _state(image, model, condition_size, net_threads)
        return arch.bake_table(state, size, strength, fit=fit, threads=net_threads)


def parse_style(spec: str, mode: str = "lut") -> Blend:
    """``"modelA:0.7,modelB:0.3"`` -> :class:`Blend` (names or paths, as :func:`~csrnet.weights.load_model` takes)."""
    parts = []
    for item in spec.split(","):
        name, sep, weight = item.strip().rpartition(":")
        if not sep or not name:
            raise InvalidArgumentError(f"style {item!r}: expected MODEL:WEIGHT")
        try:
            parts.append((load_model(name), float(weight)))
        except ValueError:
            raise InvalidArgumentError(f"style {item!r}: weight {weight!r} is not a number") from None
    return Blend(tuple(parts), mode)  # type: ignore[arg-type]

