"""The condition copy: an antialiased small copy of a photo, as the condition network sees it.

Pillow's ``resize(..., BILINEAR, reducing_gap=3)`` semantics on float data, for every pixel type,
computed by the compiled kernel where it exists (see :func:`downscale`).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from . import lut
from .pixels import check_rgb, pil_rgb, to_float

__all__ = ["downscale", "box_reduce"]


def downscale(image: np.ndarray | Image.Image, long_edge: int | None, *, threads: int | None = None,
              reducing_gap: float = 3.0) -> np.ndarray:
    """Antialiased copy whose long edge is ``long_edge`` px (never upscaled), as float32 (h, w, 3) in [0,1].

    Pillow's ``resize(..., BILINEAR, reducing_gap=3)`` on the image as float data, for every array
    type (so training and inference see the same statistics): first the means of integer-sized
    pixel boxes (Pillow's ``reduce``), then a bilinear resample of those. For 8- and 16-bit arrays
    both steps run in one pass of the compiled kernel (:func:`csrnet.kernels.lut.downscale_rgb`, both cores,
    straight from 8- or 16-bit RGB; the box means are never stored: Pillow's own reduce is
    single-threaded, needs a 4-byte-per-pixel copy of 8-bit RGB first and cannot reduce 16-bit RGB).
    Float photos take the box step in numpy (:func:`box_reduce`) and the bilinear step, Pillow's
    algorithm on the float planes, in the kernel (:func:`csrnet.kernels.lut.resample_planes`; Pillow's own
    resize without the kernel). The result matches Pillow's float path to ~1e-7 and its 8-bit path
    to that path's rounding (~1/255), which PIL images take. Timings: bench/results/design_timings.md.
    """
    if isinstance(image, Image.Image):
        h, w = image.height, image.width
    else:
        h, w = np.asarray(image).shape[:2]
    if long_edge is None or max(h, w) <= long_edge:
        return to_float(image)
    scale = long_edge / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if isinstance(image, Image.Image):
        # Pillow's own 8-bit path: getting a PIL photo's pixels into numpy costs more than all of it
        # (bench/results/design_timings.md); the copy differs from the float path by Pillow's rounding.
        small = pil_rgb(image).resize(size, Image.Resampling.BILINEAR, reducing_gap=reducing_gap)
        return np.asarray(small, np.float32) / 255.0
    arr = np.asarray(image)
    check_rgb(arr)
    # Pillow's reducing_gap first box-reduces by these integer factors, then resamples.
    fx, fy = int(w / size[0] / reducing_gap) or 1, int(h / size[1] / reducing_gap) or 1
    box: tuple[float, float, float, float] | None = (0.0, 0.0, w / fx, h / fy)
    if arr.dtype in (np.uint8, np.uint16):  # both steps in one pass of the kernel
        out = lut.downscale_rgb(arr, fx, fy, box, size, threads=threads)  # type: ignore[arg-type]
        if out is not None:
            return np.ascontiguousarray(np.moveaxis(out, 0, -1))
    # float photos (and integer ones without the kernel): the box step in numpy, except for small
    # float photos, where Pillow reduces the float planes itself
    if arr.dtype in (np.uint8, np.uint16) or fx * fy >= 9:
        planes = np.moveaxis(box_reduce(arr, fx, fy), -1, 0)
    else:
        planes, box = np.moveaxis(to_float(arr), -1, 0), None

    if box is not None:
        out = lut.resample_planes(planes, box, size, threads=threads)
        if out is not None:
            return np.ascontiguousarray(np.moveaxis(out, 0, -1))

    def plane(c: int) -> np.ndarray:
        im = Image.fromarray(np.ascontiguousarray(planes[c]), "F")
        return np.asarray(im.resize(size, Image.Resampling.BILINEAR, box=box, reducing_gap=None if box else reducing_gap))

    return np.stack([plane(c) for c in range(3)], axis=-1)


def box_reduce(arr: np.ndarray, fx: int, fy: int) -> np.ndarray:
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
