"""The compiled LUT kernel agrees with the numpy reference interpolation and with Pillow's filter."""

import numpy as np
import pytest
from PIL import Image, ImageFilter

from csrnet.kernels import lut


def _table(size: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth, overshooting table (like the network's): a colour mix plus a curve, beyond [0, 1]."""
    grid = np.stack(np.meshgrid(*[np.linspace(0, 1, size)] * 3, indexing="ij")[::-1], -1).reshape(-1, 3)
    mix = rng.uniform(-0.3, 1.3, (3, 3)).astype(np.float32)
    return (grid @ mix.T + 0.2 * np.sin(6 * grid)).astype(np.float32)


@pytest.mark.usefixtures("c_kernel")
@pytest.mark.parametrize("dtype,peak", [(np.uint8, 255), (np.uint16, 65535)])
@pytest.mark.parametrize("size", [2, 17, 65, 97])
def test_kernel_matches_numpy_reference(dtype, peak, size):
    rng = np.random.default_rng(size)
    img = rng.integers(0, peak + 1, (37, 53, 3)).astype(dtype)
    img[0, :3] = [[0, 0, 0], [peak, peak, peak], [0, peak, 0]]  # the lattice's corners
    table = _table(size, rng)
    ref = np.clip(lut.apply_lut_array(img.astype(np.float32) / peak, table, size, threads=1) * peak + 0.5, 0, peak)
    for threads in (1, 3):
        out = lut.apply_lut_uint(img, table, size, threads=threads)
        assert out.dtype == dtype and out.shape == img.shape
        assert np.abs(out.astype(np.float64) - np.floor(ref)).max() <= 1  # float32 rounding at .5 only
        assert np.mean(out == np.floor(ref)) > 0.99


@pytest.mark.usefixtures("c_kernel")
def test_kernel_matches_pillow_and_splits_rows():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (1500, 900, 3)).astype(np.uint8)  # > 1 MP: several row blocks
    table = np.clip(_table(33, rng), 0, 1)
    ours = np.asarray(lut.apply_lut_pil(Image.fromarray(img), table, 33, threads=2))
    pillow = np.asarray(Image.fromarray(img).filter(ImageFilter.Color3DLUT(33, table)))
    assert np.abs(ours.astype(int) - pillow).max() <= 1
    with pytest.raises(ValueError):
        lut._kernel.apply(img, np.empty((2, 2, 3), np.uint8), table, 33, 8)


@pytest.mark.parametrize("dtype,peak", [(np.uint8, 255), (np.uint16, 65535)])
def test_fallback_without_kernel_agrees(monkeypatch, dtype, peak):
    """Installs without a C compiler use Pillow (8-bit) and numpy (16-bit): same results within 1 LSB."""
    rng = np.random.default_rng(1)
    img = rng.integers(0, peak + 1, (1200, 900, 3)).astype(dtype)
    table = np.clip(_table(33, rng), 0, 1)
    ref = np.clip(lut.apply_lut_array(img.astype(np.float32) / peak, table, 33) * peak + 0.5, 0, peak).astype(np.int64)
    monkeypatch.setattr(lut, "_kernel", None)
    out = lut.apply_lut_uint(img, table, 33)
    assert out.dtype == dtype
    assert np.abs(out.astype(np.int64) - ref).max() <= (1 if dtype == np.uint8 else 2)
    if dtype == np.uint8:
        pil = np.asarray(lut.apply_lut_pil(Image.fromarray(img), table, 33))
        assert np.abs(pil.astype(np.int64) - ref).max() <= 1


@pytest.mark.usefixtures("c_kernel")
@pytest.mark.parametrize("size", [2, 17, 49])
def test_float_kernel_matches_numpy_reference(size):
    """float32 photos: the kernel gives apply_lut_array's unclipped values (colours outside [0, 1] clipped first)."""
    rng = np.random.default_rng(size)
    img = rng.uniform(-0.2, 1.2, (37, 53, 3)).astype(np.float32)
    img[0, :3] = [[0, 0, 0], [1, 1, 1], [0, 1, 0]]
    table = _table(size, rng)
    ref = lut.apply_lut_array(img, table, size, threads=1)
    for threads in (1, 3):
        out = lut.apply_lut_float(img, table, size, threads=threads)
        assert out.dtype == np.float32 and out.shape == img.shape
        np.testing.assert_allclose(out, ref, atol=2e-6)
    assert out.min() < 0 or out.max() > 1  # unclipped, like the reference
    img[1, 1] = np.nan  # no index outside the table: NaN reads as 0
    assert np.isfinite(lut.apply_lut_float(img, table, size)).all()


def _box_means_in_child(img: np.ndarray) -> np.ndarray:
    return lut.box_means(img, 2, 2, threads=2)


@pytest.mark.usefixtures("c_kernel")
def test_kept_thread_pool_survives_fork():
    """The kernel's threads are kept between calls (csrnet.lut._pool); a forked child (a data-loader
    worker, say) inherits the pool object but not its threads, and must still finish its work."""
    import multiprocessing

    img = np.random.default_rng(0).integers(0, 256, size=(64, 48, 3), dtype=np.uint8)
    here = lut.box_means(img, 2, 2, threads=2)  # the parent's pool now exists
    with multiprocessing.get_context("fork").Pool(1) as pool:
        there = pool.apply_async(_box_means_in_child, (img,)).get(timeout=60)
    np.testing.assert_array_equal(here, there)


@pytest.mark.usefixtures("c_kernel")
@pytest.mark.parametrize(
    "shape,size,box",
    [
        ((2001, 1500), (500, 334), (0.0, 0.0, 1500.0, 2001.0)),  # a 6 MP photo's condition copy after the 2 x 1 box step
        ((1001, 751), (77, 100), (0.0, 0.0, 750.5, 1000.5)),  # partial edge boxes: the span ends inside the last pixel
        ((5, 7), (2, 1), (0.0, 0.0, 7.0, 5.0)),
        ((3, 900), (500, 3), (0.0, 0.0, 900.0, 3.0)),  # one axis unchanged
    ],
)
def test_resample_planes_matches_pillow(shape, size, box):
    """The kernel's bilinear resample equals Pillow's resize of each float plane (to float32 rounding),
    for any split of the output rows across threads."""
    planes = np.random.default_rng(shape[0]).random((3, *shape)).astype(np.float32)
    ref = np.stack([np.asarray(Image.fromarray(p, "F").resize(size, Image.Resampling.BILINEAR, box=box, reducing_gap=None)) for p in planes])
    for threads in (1, 2, 7):
        got = lut.resample_planes(planes, box, size, threads=threads)
        assert got.shape == ref.shape and got.dtype == np.float32
        assert np.abs(got - ref).max() <= 1.2e-7


def test_bilinear_taps_are_normalised_and_inside():
    first_count, weights = lut._bilinear_taps(1000, 0.0, 999.5, 333)
    first, count = first_count.T
    assert (first >= 0).all() and (first + count <= 1000).all() and (count <= weights.shape[1]).all()
    assert np.allclose(weights.sum(axis=1), 1.0) and (weights >= 0).all()


@pytest.mark.usefixtures("c_kernel")
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_fused_downscale_equals_the_two_steps(dtype):
    """downscale_rgb (box means and resample in one pass) gives exactly box_means then resample_planes,
    partial edge boxes and any split of the output rows included."""
    rng = np.random.default_rng(7)
    top = np.iinfo(dtype).max
    for (h, w), edge in [((601, 900), 100), ((1201, 1799), 171), ((903, 301), 69), ((37, 53), 20)]:
        img = (rng.random((h, w, 3)) * top).astype(dtype)
        scale = edge / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        fx, fy = int(w / size[0] / 3.0) or 1, int(h / size[1] / 3.0) or 1
        box = (0.0, 0.0, w / fx, h / fy)
        two = lut.resample_planes(lut.box_means(img, fx, fy, threads=1), box, size, threads=1)
        for threads in (1, 2, 5):
            assert np.array_equal(lut.downscale_rgb(img, fx, fy, box, size, threads=threads), two)
