"""Random global degradations of well-exposed photos, to train a model that undoes them.

The default model is trained degrade-and-restore style (Distort-and-Recover, exposure
correction work): the target is a good photo, the input is the same photo after a random
chain of the global edits retouching fixes. Every operation is per-pixel or uses one
global statistic, so CSRNet can represent its inverse wherever no information is clipped.

All functions take and return (H, W, 3) float32 sRGB in [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["OPERATIONS", "srgb_to_linear", "linear_to_srgb", "random_degradation"]


# The sRGB transfer functions (IEC 61966-2-1), two lines each; written out rather than
# importing colour-science so the data generator needs only numpy.
def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * x ** (1 / 2.4) - 0.055).astype(np.float32)


def exposure(x: np.ndarray, ev: float) -> np.ndarray:
    """Scale linear light by 2**ev (clipping highlights, as a camera would)."""
    return linear_to_srgb(srgb_to_linear(x) * 2.0**ev)


def gamma(x: np.ndarray, g: float) -> np.ndarray:
    return np.power(np.clip(x, 0, 1), g, dtype=np.float32)


def contrast(x: np.ndarray, a: float) -> np.ndarray:
    """``a*I + (1-a)*mean(I)``: the paper's contrast, around the image mean."""
    return np.clip(a * x + (1 - a) * x.mean(), 0, 1).astype(np.float32)


def levels(x: np.ndarray, black: float, white: float) -> np.ndarray:
    """Raise the black point / lower the white point (a washed-out or dim print)."""
    return (black + (white - black) * x).astype(np.float32)


def white_balance(x: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """Per-channel gains in linear light, normalised to keep the green channel."""
    return linear_to_srgb(srgb_to_linear(x) * (np.asarray(gains, np.float32) / gains[1]))


def saturation(x: np.ndarray, a: float) -> np.ndarray:
    """``a*I + (1-a)*mean(R,G,B)``: the paper's saturation."""
    grey = x.mean(axis=2, keepdims=True)
    return np.clip(a * x + (1 - a) * grey, 0, 1).astype(np.float32)


def tone_curve(x: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """A monotone piecewise-linear curve through (i/n, knots[i])."""
    grid = np.linspace(0, 1, len(knots))
    return np.interp(x, grid, knots).astype(np.float32)


def _random_curve(rng: np.random.Generator) -> np.ndarray:
    steps = rng.dirichlet(np.full(6, 3.0))
    return np.concatenate([[0.0], np.cumsum(steps)])


OPERATIONS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "exposure": lambda x, r: exposure(x, float(r.uniform(-2.0, 2.0))),
    "gamma": lambda x, r: gamma(x, float(np.exp(r.uniform(np.log(0.6), np.log(1.7))))),
    "contrast": lambda x, r: contrast(x, float(r.uniform(0.55, 1.45))),
    "levels": lambda x, r: levels(x, float(r.uniform(0.0, 0.12)), float(r.uniform(0.82, 1.0))),
    "white_balance": lambda x, r: white_balance(x, np.exp(r.uniform(-0.3, 0.3, 3))),
    "saturation": lambda x, r: saturation(x, float(r.uniform(0.3, 1.6))),
    "tone_curve": lambda x, r: tone_curve(x, _random_curve(r)),
}


def random_degradation(x: np.ndarray, rng: np.random.Generator, *, max_ops: int = 3) -> tuple[np.ndarray, list[str]]:
    """Apply 1..max_ops distinct random operations in random order; returns the image and their names."""
    names = list(rng.choice(sorted(OPERATIONS), size=int(rng.integers(1, max_ops + 1)), replace=False))
    for name in names:
        x = OPERATIONS[name](x, rng)
    return x, names
