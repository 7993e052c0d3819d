"""The metrics' input rules and size limits: 16-bit quantisation, refused dtypes, the smallest images
SSIM takes, identical images, and the downsampling factor of the MATLAB protocol at its boundaries."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from csrnet.errors import CsrnetError
from csrnet.evaluation import metrics as M


def _pair(h: int, w: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-40, 41, a.shape), 0, 255).astype(np.uint8)
    return a, b


def _side_by_side(img: np.ndarray) -> np.ndarray:
    x = img.astype(np.float64)
    return np.concatenate([x[..., 0], x[..., 1], x[..., 2]], axis=1)


def _valid_gaussian_ssim(x: np.ndarray, y: np.ndarray) -> float:
    # scikit-image's Gaussian SSIM with its 5-px border cropped is the mean over the 'valid' windows
    return structural_similarity(x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)


def test_uint16_is_rounded_half_up_to_8_bit():
    x = np.arange(65536, dtype=np.uint16)
    got = M.to_uint8(np.stack([x, x[::-1], x], axis=-1).reshape(256, 256, 3))
    want = (2 * x.astype(np.int64) * 255 + 65535) // (2 * 65535)  # floor(x * 255 / 65535 + 0.5), in integers
    assert np.array_equal(got[..., 0].ravel(), want) and np.array_equal(got[..., 1].ravel(), want[::-1])


@pytest.mark.parametrize("dtype", [np.int32, np.int16, np.bool_, np.uint32])
def test_other_dtypes_are_refused(dtype):
    with pytest.raises(CsrnetError, match="unsupported dtype"):
        M.to_uint8(np.zeros((4, 4, 3), dtype))


def test_psnr_of_identical_images_is_inf_without_warnings():
    a, _ = _pair(16, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert M.psnr(a, a.copy()) == math.inf


def test_ssim_takes_images_down_to_11_pixels_a_side():
    a, b = _pair(11, 11)
    assert M.ssim(a, b) == pytest.approx(np.mean([_valid_gaussian_ssim(a[..., c].astype(float), b[..., c].astype(float)) for c in range(3)]))
    for h, w in ((10, 11), (11, 10), (10, 10)):
        with pytest.raises(CsrnetError, match="at least 11x11"):
            M.ssim(*_pair(h, w))


def test_ssim_matlab_takes_layouts_down_to_11_pixels():
    a, b = _pair(11, 4)  # side by side: 11 x 12, f = 1
    assert M.ssim_matlab(a, b) == pytest.approx(_valid_gaussian_ssim(_side_by_side(a), _side_by_side(b)), rel=1e-9)
    for h, w in ((10, 40), (40, 3)):  # 10 x 120 and 40 x 9
        with pytest.raises(CsrnetError, match="at least 11x11"):
            M.ssim_matlab(*_pair(h, w))


def test_ssim_matlab_factor_uses_three_times_the_width_of_tall_images():
    # min(H, 3W) = min(600, 300) -> f = round(1.17) = 1: no downsampling (4W would give f = 2)
    a, b = _pair(600, 100, seed=2)
    assert M.ssim_matlab(a, b) == pytest.approx(_valid_gaussian_ssim(_side_by_side(a), _side_by_side(b)), rel=1e-9)


def test_ssim_matlab_factor_rounds_half_up_at_384_pixels():
    # min(H, 3W) = 384 -> 384 / 256 = 1.5 -> f = 2 (MATLAB rounds halves away from zero): 2x2 block means
    a, b = _pair(384, 128, seed=3)

    def blocks(img):
        return _side_by_side(img.astype(np.float64).reshape(192, 2, 64, 2, 3).mean(axis=(1, 3)))

    assert M.ssim_matlab(a, b) == pytest.approx(_valid_gaussian_ssim(blocks(a), blocks(b)), rel=1e-9)


def test_matlab_round_below_one():
    assert M._matlab_round(0.5) == 1 and M._matlab_round(0.49) == 0 and M._matlab_round(0.0) == 0
    assert M._matlab_round(-0.5) == -1 and M._matlab_round(-0.49) == 0
