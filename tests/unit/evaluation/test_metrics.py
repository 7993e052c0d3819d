"""Each metric against values known independently of this code (published tables, closed forms, hand sums)."""

import math

import numpy as np
import pytest

from csrnet.evaluation import metrics as M
from csrnet.errors import CsrnetError

# Sharma, Wu & Dalal (2005), "The CIEDE2000 color-difference formula: implementation notes,
# supplementary test data, and mathematical observations", Table 1: (Lab1, Lab2, ΔE00),
# pairs 1, 2, 3, 7, 13, 17, 24, 25, 34.
SHARMA_2005 = [
    ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
    ((50.0, 3.1571, -77.2803), (50.0, 0.0, -82.7485), 2.8615),
    ((50.0, 2.8361, -74.0200), (50.0, 0.0, -82.7485), 3.4412),
    ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
    ((50.0, 2.4900, -0.0010), (50.0, -2.4900, 0.0009), 7.1792),
    ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
    ((50.0, 2.5, 0.0), (50.0, 3.1736, 0.5854), 1.0000),
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
    ((2.0776, 0.0795, -1.1350), (0.9033, -0.0636, -0.5514), 0.9082),
]

# sRGB (D65) primaries in CIELAB as published by B. Lindbloom's calculator / MATLAB rgb2lab.
# scikit-image's sRGB matrix and white point differ in the 4th digit, hence a 5e-3 tolerance.
SRGB_LAB = [
    ((255, 0, 0), (53.2408, 80.0925, 67.2032)),
    ((0, 255, 0), (87.7347, -86.1827, 83.1793)),
    ((0, 0, 255), (32.2970, 79.1875, -107.8602)),
    ((255, 255, 255), (100.0, 0.0, 0.0)),
    ((0, 0, 0), (0.0, 0.0, 0.0)),
]


def _flat(rgb, h=16, w=16) -> np.ndarray:
    return np.broadcast_to(np.array(rgb, np.uint8), (h, w, 3)).copy()


def _textured(h=64, w=80, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("lab1, lab2, expected", SHARMA_2005)
def test_ciede2000_matches_sharma_2005(lab1, lab2, expected):
    got = float(M.delta_e2000_map(np.array([lab1]), np.array([lab2]))[0])
    assert got == pytest.approx(expected, abs=1e-4)
    # symmetric, as the published data are
    assert float(M.delta_e2000_map(np.array([lab2]), np.array([lab1]))[0]) == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("rgb, lab", SRGB_LAB)
def test_srgb_to_lab_matches_published_values(rgb, lab):
    assert M.rgb_to_lab(_flat(rgb, 1, 1))[0, 0] == pytest.approx(lab, abs=5e-3)


def test_delta_e76_hand_computed():
    # (50, 2.5, 0) vs (73, 25, -18): sqrt(23^2 + 22.5^2 + 18^2) = sqrt(1359.25)
    assert float(M.delta_e76_map(np.array([50.0, 2.5, 0.0]), np.array([73.0, 25.0, -18.0]))) == pytest.approx(36.86800, abs=1e-5)
    # pure sRGB red vs pure blue, from the published Lab values above:
    # sqrt((53.2408-32.2970)^2 + (80.0925-79.1875)^2 + (67.2032+107.8602)^2) = 176.3141
    assert M.delta_e76(_flat((255, 0, 0)), _flat((0, 0, 255))) == pytest.approx(176.3141, abs=5e-3)


def test_delta_e_images_average_per_pixel():
    a = np.concatenate([_flat((255, 0, 0), 4, 4), _flat((0, 0, 0), 4, 4)], axis=1)
    b = np.concatenate([_flat((0, 0, 255), 4, 4), _flat((0, 0, 0), 4, 4)], axis=1)
    assert M.delta_e76(a, b) == pytest.approx(176.3141 / 2, abs=5e-3)  # half the pixels identical
    lab_r, lab_b = np.array(SRGB_LAB[0][1]), np.array(SRGB_LAB[2][1])
    expected00 = float(M.delta_e2000_map(lab_r[None], lab_b[None])[0]) / 2
    assert M.delta_e2000(a, b) == pytest.approx(expected00, abs=5e-3)


def test_psnr_of_known_mse():
    a = _flat((100, 100, 100))
    assert M.psnr(a, a + 10) == pytest.approx(10 * math.log10(255**2 / 100), abs=1e-9)  # MSE 100 -> 28.1308 dB
    assert M.psnr(a, a + 10) == pytest.approx(28.1308, abs=1e-4)
    b = a.copy()
    b[::2, :, :] += 16  # half the samples off by 16: MSE 256 / 2 = 128 -> 27.0587 dB
    assert M.psnr(a, b) == pytest.approx(27.0587, abs=1e-4)
    assert M.psnr(a, a) == math.inf


def test_float_inputs_are_quantised_to_8_bit():
    a = _textured()
    f = a.astype(np.float32) / 255 + np.float32(0.4 / 255)  # rounds back to a
    assert np.array_equal(M.to_uint8(f), a)
    assert M.psnr(f, a) == math.inf
    assert np.array_equal(M.to_uint8(np.array([[[-0.2, 1.7, 0.5 / 255]]], np.float32)), [[[0, 255, 1]]])
    assert np.array_equal(M.to_uint8(a.astype(np.uint16) * 257), a)
    for fn in (M.ssim, M.ssim_matlab, M.delta_e76, M.delta_e2000):
        assert fn(f, a) == pytest.approx(fn(a, a))


@pytest.mark.parametrize("fn", [M.ssim, M.ssim_matlab])
def test_ssim_identical_is_one(fn):
    a = _textured()
    assert fn(a, a) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("fn", [M.ssim, M.ssim_matlab])
@pytest.mark.parametrize("p, q", [(100, 110), (20, 200), (0, 255)])
def test_ssim_of_flat_images_closed_form(fn, p, q):
    # flat images: no variance, so SSIM = (2pq + C1) / (p^2 + q^2 + C1), C1 = (0.01 * 255)^2
    c1 = (0.01 * 255) ** 2
    expected = (2 * p * q + c1) / (p * p + q * q + c1)
    assert fn(_flat((p, p, p), 40, 40), _flat((q, q, q), 40, 40)) == pytest.approx(expected, rel=1e-9)


def test_ssim_is_mean_of_per_channel_grey_ssim():
    a, b = _textured(seed=1), _textured(seed=2)
    b = (a // 2 + b // 2).astype(np.uint8)  # correlated, so SSIM is far from 0
    per_channel = [M.ssim(np.repeat(a[..., c : c + 1], 3, 2), np.repeat(b[..., c : c + 1], 3, 2)) for c in range(3)]
    assert M.ssim(a, b) == pytest.approx(np.mean(per_channel), rel=1e-9)
    assert 0.2 < M.ssim(a, b) < 0.9


def _wang_ssim_valid(x: np.ndarray, y: np.ndarray) -> float:
    """Independent direct-sum SSIM (Wang 2004), 11x11 Gaussian sigma 1.5, 'valid' windows only."""
    t = np.arange(-5, 6)
    g = np.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / (2 * 1.5**2))
    g /= g.sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    vals = []
    for i in range(x.shape[0] - 10):
        for j in range(x.shape[1] - 10):
            px, py = x[i : i + 11, j : j + 11], y[i : i + 11, j : j + 11]
            mx, my = (g * px).sum(), (g * py).sum()
            vx, vy = (g * (px - mx) ** 2).sum(), (g * (py - my) ** 2).sum()
            cxy = (g * (px - mx) * (py - my)).sum()
            vals.append((2 * mx * my + c1) * (2 * cxy + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2)))
    return float(np.mean(vals))


def test_ssim_matlab_without_downsampling_equals_direct_wang_sum_on_side_by_side_planes():
    # min(H, 3W) = 20 -> f = 1; MATLAB sees the R, G, B planes side by side as a 20 x 66 matrix
    a, b = _textured(20, 22, seed=3), _textured(20, 22, seed=4)
    b = (a * 0.7 + b * 0.3).astype(np.uint8)
    side_a = np.concatenate([a[..., 0], a[..., 1], a[..., 2]], axis=1).astype(np.float64)
    side_b = np.concatenate([b[..., 0], b[..., 1], b[..., 2]], axis=1).astype(np.float64)
    assert M.ssim_matlab(a, b) == pytest.approx(_wang_ssim_valid(side_a, side_b), rel=1e-9)


def test_ssim_matlab_downsampling_by_two_is_block_mean():
    # min(H, 3W) = 400 -> f = round(1.5625) = 2. With an even size the 2x2 box filter at the
    # kept (odd, 1-based) positions never touches the padding: a plain 2x2 block mean.
    rng = np.random.default_rng(5)
    a = rng.integers(0, 256, (400, 200, 3)).astype(np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-40, 41, a.shape), 0, 255).astype(np.uint8)

    def blocks(img):
        x = img.astype(np.float64)
        x = x.reshape(200, 2, 100, 2, 3).mean(axis=(1, 3))
        return np.concatenate([x[..., 0], x[..., 1], x[..., 2]], axis=1)

    from skimage.metrics import structural_similarity

    # skimage's Gaussian SSIM with its 5-px border cropped averages exactly the 'valid' windows
    expected = structural_similarity(
        blocks(a), blocks(b), gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
    )
    assert M.ssim_matlab(a, b) == pytest.approx(expected, rel=1e-9)


def test_ssim_matlab_box_filter_alignment_matches_matlab_symmetric_padding():
    # imfilter([1 2 3; 4 5 6; 7 8 9], ones(3)/9, 'symmetric') — hand-worked corner value:
    # padded top-left 3x3 = [1 1 2; 1 1 2; 4 4 5] -> 21/9
    x = np.arange(1, 10, dtype=np.float64).reshape(3, 3)
    out = M._box_same_symmetric(x, 3)
    assert out[0, 0] == pytest.approx(21 / 9)
    assert out[1, 1] == pytest.approx(5.0)
    # even kernel (f = 2) averages the sample and its right/lower neighbours; the last row/column mirrors itself
    out2 = M._box_same_symmetric(x, 2)
    assert out2[0, 0] == pytest.approx((1 + 2 + 4 + 5) / 4)
    assert out2[2, 2] == pytest.approx(9.0)


def test_matlab_round_is_half_away_from_zero():
    assert M._matlab_round(2.5) == 3 and M._matlab_round(1.5) == 2 and M._matlab_round(-2.5) == -3


def test_metrics_reject_mismatched_or_tiny_images():
    with pytest.raises(CsrnetError, match="differ in size"):
        M.psnr(_flat((1, 2, 3), 8, 8), _flat((1, 2, 3), 8, 9))
    with pytest.raises(CsrnetError, match="11x11"):
        M.ssim(_flat((1, 2, 3), 8, 8), _flat((1, 2, 3), 8, 8))
    with pytest.raises(CsrnetError, match="H x W x 3"):
        M.psnr(np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.uint8))


def test_compute_all_agrees_with_single_metrics():
    a, b = _textured(seed=6), _textured(seed=7)
    got = M.compute_all(a, b)
    assert list(got) == list(M.METRICS)
    for name in M.METRICS:
        assert got[name] == pytest.approx(getattr(M, name)(a, b), rel=1e-12)


# ------------------------------------------------------------------ real image pairs, independent implementations
def _fivek_pairs(count: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """The first ``count`` shared FiveK pairs (input, expert C target), 8-bit RGB."""
    from PIL import Image

    from tests.conftest import PAIRS, need_shared

    need_shared()
    names = sorted(p.name for p in (PAIRS / "input").glob("*.png"))[:count]
    assert len(names) == count
    return [(n, np.asarray(Image.open(PAIRS / "input" / n).convert("RGB")), np.asarray(Image.open(PAIRS / "target" / n).convert("RGB")))
            for n in names]


@pytest.mark.shared
def test_ssim_equals_scikit_image_gaussian_population_ssim_on_fivek_pairs():
    """Real pairs (SSIM 0.63-0.92): a window of another sigma (1.0: 0.0035-0.014 off) or sample
    covariance (1.5e-4-2.5e-4 off) would fail the 1e-6 tolerance (measured difference: 0)."""
    from skimage.metrics import structural_similarity

    for name, a, b in _fivek_pairs(4):
        want = structural_similarity(a.astype(np.float64), b.astype(np.float64), gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False, data_range=255, channel_axis=-1)
        assert M.ssim(a, b) == pytest.approx(want, abs=1e-6), name
        assert 0.6 < want < 0.95


@pytest.mark.shared
def test_ssim_equals_direct_wang_sum_on_a_real_crop():
    """The direct-sum SSIM above (no scikit-image), per channel, on a 40 x 48 crop of a real pair."""
    (_, a, b), = _fivek_pairs(1)
    a, b = a[100:140, 200:248], b[100:140, 200:248]
    want = np.mean([_wang_ssim_valid(a[..., c].astype(np.float64), b[..., c].astype(np.float64)) for c in range(3)])
    assert M.ssim(a, b) == pytest.approx(want, abs=1e-9)


@pytest.mark.shared
def test_psnr_equals_numpy_mse_and_scikit_image_on_fivek_pairs():
    from skimage.metrics import peak_signal_noise_ratio

    for name, a, b in _fivek_pairs(6):
        mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
        assert M.psnr(a, b) == pytest.approx(10 * np.log10(255**2 / mse), abs=1e-9), name
        assert M.psnr(a, b) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255), abs=1e-9), name


@pytest.mark.shared
def test_delta_e_equals_colour_science_on_fivek_pairs():
    """ΔE76 and ΔE2000 against colour-science's own sRGB -> XYZ -> CIELAB (D65, 2°) and ΔE formulas;
    the sRGB matrices differ in the 4th digit, so the means differ by up to 1.8e-3 (measured)."""
    from tests.conftest import need_module

    colour = need_module("colour")
    d65 = colour.CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"]["D65"]

    def lab(x: np.ndarray) -> np.ndarray:
        return colour.XYZ_to_Lab(colour.sRGB_to_XYZ(x / 255.0), d65)

    for name, a, b in _fivek_pairs(3):
        la, lb = lab(a[::2, ::2]), lab(b[::2, ::2])
        assert M.delta_e76(a[::2, ::2], b[::2, ::2]) == pytest.approx(colour.delta_E(la, lb, method="CIE 1976").mean(), abs=5e-3), name
        assert M.delta_e2000(a[::2, ::2], b[::2, ::2]) == pytest.approx(colour.delta_E(la, lb, method="CIE 2000").mean(), abs=5e-3), name
