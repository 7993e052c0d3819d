"""Image-quality metrics of the retouching literature: PSNR, SSIM (two protocols), CIE ΔE76 and ΔE2000.

Every metric takes two RGB images of the same shape and returns one float (the mean
over the image). Inputs are **8-bit sRGB**: ``uint8`` (H, W, 3) arrays are used as they
are; ``uint16`` and float arrays in [0, 1] are first quantised to 8 bit exactly as a
saved 8-bit image would be (:func:`to_uint8`: ``round(x * 255)``, clipped), so the
numbers are those of the files a user would compare.

Conventions (see ``paper/NOTES.md``, "Evaluation conventions seen in the field"):

* :func:`psnr` — over all R, G, B samples, peak 255 (MATLAB ``psnr(im2double(a), im2double(b))``).
* :func:`ssim` — Wang et al. 2004 with an 11x11 Gaussian window (sigma 1.5), K = (0.01, 0.03),
  L = 255, population (co)variances, per channel then averaged, border of 5 px excluded
  (scikit-image ``structural_similarity`` with ``gaussian_weights=True``).
* :func:`ssim_matlab` — the SSIM of the 3D-LUT line of work (Image-Adaptive-3DLUT's
  ``average_psnr_ssim.m``, copied by AdaInt's ``fivek_calculate_metrics.m``), which calls
  Zhou Wang's ``ssim.m`` "with automatic downsampling" on the RGB uint8 images. See its docstring
  for the exact (quirky) computation reproduced here.
* :func:`delta_e76`, :func:`delta_e2000` — CIELAB of sRGB under D65 / 2° observer (MATLAB
  ``rgb2lab`` defaults, scikit-image ``rgb2lab``); mean per-pixel CIE76 (Euclidean) and
  CIEDE2000 differences. The 3D-LUT papers' "ΔE" is :func:`delta_e76`.

The CSRNet release's colour metric (L2 in OpenCV's 8-bit Lab, which scales L to 0..255 and
offsets a, b by 128) is *not* a ΔE and is deliberately not provided.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from ..errors import CsrnetError

try:  # an optional dependency: only evaluation needs it
    from skimage import color
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity
except ImportError:  # pragma: no cover - depends on the environment
    raise CsrnetError("evaluation metrics need scikit-image (pip install 'csrnet-retouch[eval]' or pip install scikit-image)") from None

__all__ = [
    "METRICS",
    "to_uint8",
    "rgb_to_lab",
    "delta_e76_map",
    "delta_e2000_map",
    "psnr",
    "ssim",
    "ssim_matlab",
    "matlab_layout",
    "delta_e76",
    "delta_e2000",
    "compute_all",
]

#: Metric names in report order, and whether larger is better.
METRICS: dict[str, bool] = {"psnr": True, "ssim": True, "ssim_matlab": True, "delta_e76": False, "delta_e2000": False}

_SSIM_SIGMA = 1.5
_SSIM_RADIUS = 5  # 11 x 11 window
_K1, _K2, _L = 0.01, 0.03, 255.0


# ------------------------------------------------------------------------------ inputs
def to_uint8(image: np.ndarray) -> np.ndarray:
    """An RGB image as 8-bit samples, the way a saved 8-bit file would hold it.

    Args:
        image: (H, W, 3) ``uint8`` (returned unchanged), ``uint16`` (scaled by 255/65535)
            or float in [0, 1] (values outside are clipped).

    Returns:
        (H, W, 3) uint8, ``round(x * 255)`` with halves rounded up (as :func:`csrnet.enhance` does).
    """
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise CsrnetError(f"expected an H x W x 3 RGB image, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.uint16:
        return np.clip(arr.astype(np.float64) * (255.0 / 65535.0) + 0.5, 0, 255).astype(np.uint8)
    if np.issubdtype(arr.dtype, np.floating):
        return np.clip(arr.astype(np.float64) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    raise CsrnetError(f"unsupported dtype {arr.dtype} (use uint8, uint16 or float in [0, 1])")


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both images as uint8 (H, W, 3), checked to have the same shape."""
    a8, b8 = to_uint8(a), to_uint8(b)
    if a8.shape != b8.shape:
        raise CsrnetError(f"images differ in size: {a8.shape[1]}x{a8.shape[0]} vs {b8.shape[1]}x{b8.shape[0]}")
    return a8, b8


# ------------------------------------------------------------------------------ colour
def rgb_to_lab(image: np.ndarray) -> np.ndarray:
    """sRGB (8-bit, see :func:`to_uint8`) -> CIELAB, D65 white, 2° observer.

    Returns:
        (H, W, 3) float64: L in [0, 100], a and b roughly in [-128, 127].

    Example:
        >>> rgb_to_lab(np.array([[[255, 0, 0]]], np.uint8)).round(2)  # doctest: +NORMALIZE_WHITESPACE
        array([[[53.24, 80.09, 67.2 ]]])
    """
    return color.rgb2lab(to_uint8(image).astype(np.float64) / 255.0, illuminant="D65", observer="2")


def delta_e76_map(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """Per-pixel CIE76 colour difference (Euclidean distance in CIELAB) of (..., 3) Lab arrays."""
    return color.deltaE_cie76(np.asarray(lab1, np.float64), np.asarray(lab2, np.float64))


def delta_e2000_map(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """Per-pixel CIEDE2000 colour difference (kL = kC = kH = 1) of (..., 3) Lab arrays."""
    return color.deltaE_ciede2000(np.asarray(lab1, np.float64), np.asarray(lab2, np.float64))


def delta_e76(a: np.ndarray, b: np.ndarray) -> float:
    """Mean CIE76 ΔE between two sRGB images (8-bit, see :func:`to_uint8`); 0 when identical."""
    a8, b8 = _pair(a, b)
    return float(delta_e76_map(rgb_to_lab(a8), rgb_to_lab(b8)).mean())


def delta_e2000(a: np.ndarray, b: np.ndarray) -> float:
    """Mean CIEDE2000 ΔE between two sRGB images (8-bit, see :func:`to_uint8`); 0 when identical."""
    a8, b8 = _pair(a, b)
    return float(delta_e2000_map(rgb_to_lab(a8), rgb_to_lab(b8)).mean())


# ------------------------------------------------------------------------------ PSNR / SSIM
def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB over all 8-bit R, G, B samples (peak 255); ``inf`` for identical images."""
    a8, b8 = _pair(a, b)
    if np.array_equal(a8, b8):
        return math.inf
    return float(peak_signal_noise_ratio(a8, b8, data_range=255))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM (Gaussian 11x11 window, sigma 1.5), per RGB channel on 8-bit values, averaged.

    Population statistics (``use_sample_covariance=False``) as in Wang et al. 2004; the
    5-pixel border where the window leaves the image is excluded from the mean.
    """
    a8, b8 = _pair(a, b)
    if min(a8.shape[:2]) < 2 * _SSIM_RADIUS + 1:
        raise CsrnetError(f"SSIM needs images of at least 11x11 pixels, got {a8.shape[1]}x{a8.shape[0]}")
    return float(
        structural_similarity(
            a8.astype(np.float64),
            b8.astype(np.float64),
            gaussian_weights=True,
            sigma=_SSIM_SIGMA,
            use_sample_covariance=False,
            data_range=_L,
            channel_axis=-1,
        )
    )


def _matlab_round(x: float) -> int:
    """MATLAB ``round``: halves away from zero (Python's ``round`` goes to even)."""
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


def _box_same_symmetric(x: np.ndarray, f: int) -> np.ndarray:
    """MATLAB ``imfilter(x, ones(f)/f^2, 'symmetric', 'same')`` of a 2-D array.

    Hand-written because the alignment of an even-sized kernel matters here: MATLAB puts
    the kernel origin at ``floor((f + 1) / 2)`` (1-based), so output ``i`` averages inputs
    ``i - (c - 1) .. i + f - c``; scipy's ``uniform_filter`` centres even kernels the other
    way. ``np.pad(mode="symmetric")`` mirrors including the edge sample, like MATLAB.
    """
    c = (f + 1) // 2  # 1-based origin
    before, after = c - 1, f - c
    p = np.pad(x, ((before, after), (before, after)), mode="symmetric")
    h, w = x.shape
    out = np.zeros_like(x, dtype=np.float64)
    for dy in range(f):
        for dx in range(f):
            out += p[dy : dy + h, dx : dx + w]
    return out / (f * f)


def _gauss_valid(x: np.ndarray) -> np.ndarray:
    """MATLAB ``filter2(fspecial('gaussian', 11, 1.5), x, 'valid')`` of a 2-D float64 array."""
    t = np.arange(-_SSIM_RADIUS, _SSIM_RADIUS + 1, dtype=np.float64)
    g = np.exp(-(t**2) / (2 * _SSIM_SIGMA**2))
    g /= g.sum()  # fspecial's 2-D kernel is the outer product of this normalised 1-D one
    y = ndimage.correlate1d(ndimage.correlate1d(x, g, axis=0, mode="constant"), g, axis=1, mode="constant")
    r = _SSIM_RADIUS
    return y[r:-r, r:-r]  # 'valid': only windows fully inside the array


def matlab_layout(image: np.ndarray) -> np.ndarray:
    """The 2-D matrix MATLAB's 2-subscript indexing sees in an (H, W, 3) array: (H, 3W), channels side by side."""
    return np.concatenate([image[..., c] for c in range(image.shape[2])], axis=1)


def ssim_matlab(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM as computed by the 3D-LUT protocol: Zhou Wang's ``ssim.m`` with automatic downsampling, on RGB.

    Image-Adaptive-3DLUT ships Wang's 2009 ``ssim.m`` (which shadows MATLAB's toolbox
    ``ssim``) and calls ``ssim(uint8_rgb_result, uint8_rgb_gt)``. On an H x W x 3 array
    that script does, literally:

    1. ``[M, N] = size(img)`` gives M = H, N = 3W (MATLAB folds trailing dimensions), so the
       downsampling factor is ``f = max(1, round(min(H, 3W) / 256))`` (2 for 480p images).
    2. If f > 1: each channel is box-filtered (``imfilter(img, ones(f)/f^2, 'symmetric', 'same')``),
       then ``img(1:f:end, 1:f:end)`` keeps every f-th row and every f-th column *of the
       (H, 3W) matrix with the R, G and B planes side by side*.
    3. SSIM (11x11 Gaussian, sigma 1.5, K = (0.01, 0.03), L = 255) over the 'valid' region of
       that 2-D matrix, so some windows straddle the R|G and G|B seams; the mean of the map.

    No luma conversion is made. For f = 1 the original script would stop with an error
    (``filter2`` on a 3-D array); here the same (H, 3W) layout is used for it too, so the
    definition is continuous across image sizes. Values differ from :func:`ssim` by about
    1e-2 (downsampling, seams, no per-channel mean) and are the ones to compare with the
    3D-LUT / AdaInt tables. Inputs are 8-bit (see :func:`to_uint8`).
    """
    a8, b8 = _pair(a, b)
    h, w, _ = a8.shape
    f = max(1, _matlab_round(min(h, 3 * w) / 256))
    x = a8.astype(np.float64)
    y = b8.astype(np.float64)
    if f > 1:
        x = np.stack([_box_same_symmetric(x[..., c], f) for c in range(3)], axis=-1)
        y = np.stack([_box_same_symmetric(y[..., c], f) for c in range(3)], axis=-1)
    x2, y2 = matlab_layout(x)[::f, ::f], matlab_layout(y)[::f, ::f]
    if min(x2.shape) < 2 * _SSIM_RADIUS + 1:
        raise CsrnetError(f"SSIM needs at least 11x11 pixels after downsampling, got {x2.shape[1]}x{x2.shape[0]}")
    c1, c2 = (_K1 * _L) ** 2, (_K2 * _L) ** 2
    mu1, mu2 = _gauss_valid(x2), _gauss_valid(y2)
    s11 = _gauss_valid(x2 * x2) - mu1 * mu1
    s22 = _gauss_valid(y2 * y2) - mu2 * mu2
    s12 = _gauss_valid(x2 * y2) - mu1 * mu2
    ssim_map = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1 * mu1 + mu2 * mu2 + c1) * (s11 + s22 + c2))
    return float(ssim_map.mean())


# ------------------------------------------------------------------------------ all at once
def compute_all(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Every metric of :data:`METRICS` for result ``a`` against reference ``b`` (8-bit RGB, same shape).

    Lab conversion is done once for both ΔE metrics.
    """
    a8, b8 = _pair(a, b)
    lab_a, lab_b = rgb_to_lab(a8), rgb_to_lab(b8)
    return {
        "psnr": psnr(a8, b8),
        "ssim": ssim(a8, b8),
        "ssim_matlab": ssim_matlab(a8, b8),
        "delta_e76": float(delta_e76_map(lab_a, lab_b).mean()),
        "delta_e2000": float(delta_e2000_map(lab_a, lab_b).mean()),
    }
