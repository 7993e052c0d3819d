"""Pixel types in and out of the engine: checks and conversions to and from float32 in [0, 1].

The one place that defines how 8-bit, 16-bit and float pixels map to the network's [0, 1]
floats and back (inference, training and evaluation all go through here).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..errors import InvalidArgumentError

__all__ = ["check_rgb", "pil_rgb", "as_array", "to_float", "from_float", "image_size"]


def check_rgb(arr: np.ndarray) -> None:
    """Raise :class:`~csrnet.errors.InvalidArgumentError` unless ``arr`` is a non-empty (H, W, 3)
    uint8, uint16, float32 or float64 array."""
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise InvalidArgumentError(f"expected an H x W x 3 RGB image, got shape {arr.shape}")
    if arr.dtype not in (np.uint8, np.uint16, np.float32, np.float64):
        raise InvalidArgumentError(f"unsupported dtype {arr.dtype} (use uint8, uint16 or float32 in [0, 1])")
    if min(arr.shape[:2]) < 1:
        raise InvalidArgumentError(f"empty image of shape {arr.shape}")


def pil_rgb(im: Image.Image) -> Image.Image:
    """``im`` itself if it is an RGB PIL image; otherwise :class:`~csrnet.errors.InvalidArgumentError`."""
    if im.mode != "RGB":
        raise InvalidArgumentError(f"expected an RGB image, got mode {im.mode} (convert it first, or use csrnet.read_photo)")
    return im


def image_size(image: np.ndarray | Image.Image) -> tuple[int, int]:
    """(height, width) of a checked RGB array or PIL image."""
    if isinstance(image, Image.Image):
        pil_rgb(image)
        return image.height, image.width
    arr = np.asarray(image)
    check_rgb(arr)
    return arr.shape[0], arr.shape[1]


def as_array(image: np.ndarray | Image.Image) -> np.ndarray:
    """Any supported image -> (H, W, 3) array of its own type (uint8, uint16 or float32; no copy for
    arrays), checked to be RGB."""
    arr = np.asarray(pil_rgb(image)) if isinstance(image, Image.Image) else np.asarray(image)
    check_rgb(arr)
    return arr


def to_float(image: np.ndarray | Image.Image) -> np.ndarray:
    """Any supported image -> (H, W, 3) float32 in [0, 1]: integers divided by 255 or 65535, float32
    taken as is (no copy).

    Example:
        >>> to_float(np.full((2, 2, 3), 255, np.uint8)).max()
        1.0
    """
    arr = as_array(image)
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / 65535.0
    return arr.astype(np.float32, copy=False)


def from_float(x: np.ndarray, dtype: np.dtype | type) -> np.ndarray:
    """(H, W, 3) float -> ``dtype`` (uint8, uint16 rounded; floats), clipped to its valid range."""
    dtype = np.dtype(dtype)
    if dtype == np.uint8:
        return np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if dtype == np.uint16:
        return np.clip(x * 65535.0 + 0.5, 0, 65535).astype(np.uint16)
    return np.clip(x, 0.0, 1.0).astype(dtype, copy=False)
