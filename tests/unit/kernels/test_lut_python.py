"""The Python side of csrnet.kernels.lut on tiny inputs, against answers worked out independently:
cell lookup, trilinear weights, argument checks, the row blocks, the no-kernel fallbacks and the
lattice grid. Every test runs in milliseconds (the mutation run of bench/mutation.py uses them)."""

import numpy as np
import pytest
from PIL import Image

from csrnet.kernels import lut


def _grid(size: int) -> np.ndarray:
    v = np.linspace(0, 1, size)
    b, g, r = np.meshgrid(v, v, v, indexing="ij")
    return np.stack([r.ravel(), g.ravel(), b.ravel()], -1)


def _random_table(size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.2, 1.2, (size**3, 3)).astype(np.float32)


def _ref_interp(table: np.ndarray, size: int, pts: np.ndarray) -> np.ndarray:
    """Trilinear interpolation written out per point, float64 (the independent reference)."""
    t = np.asarray(table, np.float64).reshape(size, size, size, 3)  # [b, g, r]
    out = np.empty((len(pts), 3))
    for k, p in enumerate(np.clip(np.asarray(pts, np.float64), 0, 1)):
        x = p * (size - 1)
        i = np.minimum(np.floor(x).astype(int), size - 2)
        f = x - i
        acc = np.zeros(3)
        for db in (0, 1):
            for dg in (0, 1):
                for dr in (0, 1):
                    w = (f[0] if dr else 1 - f[0]) * (f[1] if dg else 1 - f[1]) * (f[2] if db else 1 - f[2])
                    acc += w * t[i[2] + db, i[1] + dg, i[0] + dr]
        out[k] = acc
    return out


def _affine(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A channel-mixing affine map's table (exact under trilinear interpolation): out = x @ m.T + c."""
    m = np.array([[0.2, 0.5, 0.1], [0.6, 0.1, 0.2], [0.1, 0.3, 0.5]])
    c = np.array([0.1, 0.05, 0.15])
    return (_grid(size) @ m.T + c).astype(np.float32), m, c


IMG = np.random.default_rng(7).integers(0, 256, (11, 13, 3)).astype(np.uint8)
IMG[0, :4] = [[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 0, 255]]


# ---------------------------------------------------------------- locate / trilinear
def test_locate_gives_lower_corner_index_red_fastest_and_fractions():
    pts = np.array([[0.0, 0.0, 0.0], [0.3, 0.55, 0.9], [1.0, 1.0, 1.0], [0.25, 0.0, 0.5]], np.float32)
    base, f = lut.locate(pts, 5)
    # x * 4: (1.2, 2.2, 3.6) -> cell (1, 2, 3); the top corner stays in the last cell (3, 3, 3)
    assert base.tolist() == [0, 1 + 5 * (2 + 5 * 3), 3 + 5 * (3 + 5 * 3), 1 + 5 * (0 + 5 * 2)]
    np.testing.assert_allclose(f, [[0, 0, 0], [0.2, 0.2, 0.6], [1, 1, 1], [0, 0, 0]], atol=1e-6)


def test_locate_clips_points_outside_the_cube():
    base, f = lut.locate(np.array([[-0.5, 1.5, 0.5]], np.float32), 3)
    assert base.tolist() == [0 + 3 * (1 + 3 * 1)]
    np.testing.assert_allclose(f, [[0, 1, 0]], atol=1e-6)


def test_trilinear_matches_reference_on_random_table():
    size, table = 5, _random_table(5, 1)
    pts = np.random.default_rng(2).uniform(-0.1, 1.1, (200, 3)).astype(np.float32)
    base, f = lut.locate(pts, size)
    np.testing.assert_allclose(lut.trilinear(table, base, f, size), _ref_interp(table, size, pts), atol=1e-5)


def test_apply_lut_array_matches_reference_in_tiles_and_threads():
    size, table = 6, _random_table(6, 3)
    img = np.random.default_rng(4).uniform(0, 1, (7, 9, 3)).astype(np.float32)
    ref = _ref_interp(table, size, img.reshape(-1, 3)).reshape(7, 9, 3)
    for tile, threads in ((1 << 18, 1), (5, 2), (1, 2)):
        out = lut.apply_lut_array(img, table, size, threads=threads, tile=tile)
        assert out.dtype == np.float32 and out.shape == (7, 9, 3)
        np.testing.assert_allclose(out, ref, atol=1e-5)


def test_apply_lut_array_accepts_4d_table_and_rejects_wrong_size():
    table, _, _ = _affine(5)
    img = IMG.astype(np.float32) / 255
    a = lut.apply_lut_array(img, table, 5)
    b = lut.apply_lut_array(img, table.reshape(5, 5, 5, 3), 5)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="does not match lattice size 6"):
        lut.apply_lut_array(img, table, 6)
    with pytest.raises(ValueError):
        lut.apply_lut_array(img, table.reshape(5, 25, 3), 5)


# ---------------------------------------------------------------- uint / float / PIL application
def _affine_expected(img: np.ndarray, peak: float) -> np.ndarray:
    _, m, c = _affine(5)
    return np.clip(np.floor((img / peak) @ m.T + c) * 0 + ((img / peak) @ m.T + c) * peak + 0.5, 0, peak)


@pytest.mark.parametrize("kernel", [True, False])
def test_apply_lut_uint8_gives_affine_map_exactly(monkeypatch, kernel):
    if not kernel:
        monkeypatch.setattr(lut, "_kernel", None)
    table, _, _ = _affine(5)
    out = lut.apply_lut_uint(IMG, table, 5, threads=2)
    assert out.dtype == np.uint8 and out.shape == IMG.shape
    assert np.abs(out.astype(float) - np.floor(_affine_expected(IMG.astype(float), 255))).max() <= 1
    assert out.flags.writeable and out.flags.owndata or out.base is not None
    out[0, 0] = 1  # ours to write


@pytest.mark.parametrize("kernel", [True, False])
def test_apply_lut_uint16_rounds_and_clips(monkeypatch, kernel):
    if not kernel:
        monkeypatch.setattr(lut, "_kernel", None)
    img = np.array([[[0, 0, 0], [65535, 65535, 65535], [65535, 0, 32768]]], np.uint16)
    table = np.zeros((8, 3), np.float32)
    table[:, 0] = 0.5  # red -> 0.5 everywhere: 0.5 * 65535 + 0.5 rounds to 32768
    table[:, 1] = 2.0  # green -> above the range: clipped to 65535
    table[:, 2] = -1.0  # blue -> below: clipped to 0
    out = lut.apply_lut_uint(img, table, 2)
    assert out.dtype == np.uint16
    assert out.reshape(-1, 3).tolist() == [[32768, 65535, 0]] * 3


@pytest.mark.parametrize("kernel", [True, False])
def test_apply_lut_uint16_follows_the_colour(monkeypatch, kernel):
    if not kernel:
        monkeypatch.setattr(lut, "_kernel", None)
    img = (IMG.astype(np.uint16) * 257)[:, :5]
    table, _, _ = _affine(5)
    out = lut.apply_lut_uint(img, table, 5)
    assert np.abs(out.astype(float) - np.floor(_affine_expected(img.astype(float), 65535))).max() <= 2


@pytest.mark.parametrize("kernel", [True, False])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_apply_lut_uint_writes_into_out_even_the_input(monkeypatch, kernel, dtype):
    if not kernel:
        monkeypatch.setattr(lut, "_kernel", None)
    img = IMG.astype(dtype) * (257 if dtype == np.uint16 else 1)
    table, _, _ = _affine(5)
    want = lut.apply_lut_uint(img, table, 5)
    out = np.zeros_like(img)
    assert lut.apply_lut_uint(img, table, 5, out=out) is out
    np.testing.assert_array_equal(out, want)
    same = img.copy()
    assert lut.apply_lut_uint(same, table, 5, out=same) is same
    np.testing.assert_array_equal(same, want)


@pytest.mark.parametrize("bad", [IMG.astype(np.float32), IMG[..., 0], np.zeros((4, 4, 4), np.uint8), np.zeros((4, 4, 3), np.int16)])
def test_apply_lut_uint_rejects_other_arrays(bad):
    with pytest.raises(ValueError, match="expected"):
        lut.apply_lut_uint(bad, _affine(5)[0], 5)


@pytest.mark.usefixtures("c_kernel")
def test_kernel_out_must_match_shape_dtype_and_be_contiguous():
    table, _, _ = _affine(5)
    for out in (np.zeros((11, 12, 3), np.uint8), np.zeros(IMG.shape, np.uint16), np.zeros((11, 26, 3), np.uint8)[:, ::2]):
        with pytest.raises(ValueError, match="out must be"):
            lut.apply_lut_uint(IMG, table, 5, out=out)


@pytest.mark.usefixtures("c_kernel")
@pytest.mark.parametrize("pixels", [1, 13, 14, 40])
def test_kernel_row_blocks_cover_every_row(monkeypatch, pixels):
    """Blocks of a few rows (pixels per block made tiny) give the same image as one block."""
    table = _random_table(5, 9)
    whole = lut.apply_lut_uint(IMG, table, 5, threads=1)
    fl = lut.apply_lut_float(IMG / 255.0, table, 5)
    monkeypatch.setattr(lut, "_KERNEL_PIXELS", pixels)
    for threads in (1, 2):
        np.testing.assert_array_equal(lut.apply_lut_uint(IMG, table, 5, threads=threads), whole)
        np.testing.assert_array_equal(lut.apply_lut_float(IMG / 255.0, table, 5, threads=threads), fl)


@pytest.mark.parametrize("kernel", [True, False])
def test_apply_lut_float_is_unclipped_reference(monkeypatch, kernel):
    if not kernel:
        monkeypatch.setattr(lut, "_kernel", None)
    table = _random_table(5, 5) * 1.5 - 0.3  # well outside [0, 1]
    img = np.random.default_rng(3).uniform(-0.2, 1.2, (6, 7, 3))  # float64, some outside [0, 1]
    out = lut.apply_lut_float(img, table, 5, threads=2)
    assert out.dtype == np.float32 and out.shape == (6, 7, 3)
    np.testing.assert_allclose(out, _ref_interp(table, 5, img.reshape(-1, 3)).reshape(6, 7, 3), atol=1e-5)
    assert out.max() > 1 and out.min() < 0


@pytest.mark.usefixtures("c_kernel")
def test_apply_lut_float_rejects_non_rgb_and_wrong_table():
    table, _, _ = _affine(5)
    with pytest.raises(ValueError, match="expected"):
        lut.apply_lut_float(np.zeros((4, 4), np.float32), table, 5)
    with pytest.raises(ValueError, match="expected"):
        lut.apply_lut_float(np.zeros((4, 4, 4), np.float32), table, 5)
    with pytest.raises(ValueError, match="does not match"):
        lut.apply_lut_float(np.zeros((4, 4, 3), np.float32), table, 4)


@pytest.mark.parametrize("kernel", [True, False])
def test_apply_lut_pil_returns_rgb_image_of_affine_map(monkeypatch, kernel):
    if not kernel:
        monkeypatch.setattr(lut, "_kernel", None)
    table, _, _ = _affine(5)
    out = lut.apply_lut_pil(Image.fromarray(IMG), table, 5)
    assert isinstance(out, Image.Image) and out.mode == "RGB" and out.size == (13, 11)
    assert np.abs(np.asarray(out).astype(float) - np.floor(_affine_expected(IMG.astype(float), 255))).max() <= 1


def test_pillow_fallback_with_more_nodes_than_pillow_takes(monkeypatch):
    """size > 65: Pillow's filter refuses it, so the numpy interpolation runs, rounded to 8 bits."""
    monkeypatch.setattr(lut, "_kernel", None)
    size = lut.PIL_MAX_SIZE + 2
    table = np.zeros((size**3, 3), np.float32)
    table[:] = [0.5, 2.0, -1.0]
    out = np.asarray(lut.apply_lut_pil(Image.fromarray(IMG), table, size))
    assert out.reshape(-1, 3).tolist() == [[128, 255, 0]] * (11 * 13)
    table = _grid(size).astype(np.float32)  # identity
    np.testing.assert_array_equal(np.asarray(lut.apply_lut_pil(Image.fromarray(IMG), table, size)), IMG)


def test_pillow_fallback_at_its_largest_size_uses_pillow(monkeypatch):
    monkeypatch.setattr(lut, "_kernel", None)
    size = lut.PIL_MAX_SIZE
    out = lut.apply_lut_pil(Image.fromarray(IMG), _grid(size).astype(np.float32), size)
    assert np.abs(np.asarray(out).astype(int) - IMG).max() <= 1


def test_pillow_fallback_in_strips_equals_one_filter(monkeypatch):
    """A >= 1 MP 8-bit image on 2 threads goes through Pillow in row strips: same pixels, every strip."""
    monkeypatch.setattr(lut, "_kernel", None)
    img = np.random.default_rng(0).integers(0, 256, (1024, 1024, 3)).astype(np.uint8)
    img[-1] = 255
    table = _random_table(3, 2).clip(0, 1)
    one = np.asarray(lut.apply_lut_pil(Image.fromarray(img), table, 3, threads=1))
    two = np.asarray(lut.apply_lut_pil(Image.fromarray(img), table, 3, threads=2))
    np.testing.assert_array_equal(one, two)
    assert np.abs(one[-1].astype(float) - np.floor(np.clip(_ref_interp(table, 3, img[-1] / 255.0) * 255 + 0.5, 0, 255))).max() <= 1


def test_pillow_fallback_keeps_overshoot_within_pillow_range(monkeypatch):
    """Table values beyond Pillow's fixed-point range are bounded, not wrapped: far above 1 stays white."""
    monkeypatch.setattr(lut, "_kernel", None)
    table = np.full((8, 3), 40.0, np.float32)
    table[:, 2] = -40.0
    out = np.asarray(lut.apply_lut_pil(Image.fromarray(IMG), table, 2))
    assert (out[..., :2] == 255).all() and (out[..., 2] == 0).all()
    table = np.zeros((8, 3), np.float32)
    table[4:, 0] = 3.0  # blue high corners overshoot: interpolation before clipping sees the bounded value
    out = np.asarray(lut.apply_lut_pil(Image.fromarray(np.array([[[0, 0, 85]]], np.uint8)), table, 2))
    assert abs(int(out[0, 0, 0]) - 170) <= 1  # 2.0 (bound) / 3 * 255, not 3.0 / 3 * 255 = 255


# ---------------------------------------------------------------- box means / resampling
@pytest.mark.usefixtures("c_kernel")
@pytest.mark.parametrize("dtype,peak", [(np.uint8, 255), (np.uint16, 65535)])
def test_box_means_with_partial_edge_boxes(dtype, peak):
    img = (np.random.default_rng(1).integers(0, 256, (7, 8, 3)) * (257 if dtype == np.uint16 else 1)).astype(dtype)
    for threads in (1, 2):
        out = lut.box_means(img, 3, 2, threads=threads)
        assert out.shape == (3, 4, 3) and out.dtype == np.float32
        for r in range(4):
            for c in range(3):
                want = img[2 * r : 2 * r + 2, 3 * c : 3 * c + 3].reshape(-1, 3).mean(0) / peak
                np.testing.assert_allclose(out[:, r, c], want, atol=1e-5)


@pytest.mark.usefixtures("c_kernel")
def test_resample_planes_equals_pillow_bilinear_with_box():
    planes = np.random.default_rng(2).uniform(0, 1, (3, 9, 12)).astype(np.float32)
    for box, size in (((0, 0, 12, 9), (5, 4)), ((1.5, 0.5, 11.0, 8.25), (4, 3)), ((0, 0, 12, 9), (12, 9))):
        out = lut.resample_planes(planes, box, size, threads=2)
        assert out.shape == (3, size[1], size[0])
        for ch in range(3):
            want = np.asarray(Image.fromarray(planes[ch], "F").resize(size, Image.BILINEAR, box=box))
            np.testing.assert_allclose(out[ch], want, atol=1e-5)


@pytest.mark.usefixtures("c_kernel")
def test_downscale_rgb_is_box_means_then_resample():
    img = np.random.default_rng(3).integers(0, 256, (13, 17, 3)).astype(np.uint8)
    box, size = (0.0, 0.0, 6.0, 5.0), (4, 3)
    want = lut.resample_planes(lut.box_means(img, 3, 3), box, size)
    for threads in (1, 2):
        np.testing.assert_allclose(lut.downscale_rgb(img, 3, 3, box, size, threads=threads), want, atol=1e-6)
    img16 = img.astype(np.uint16) * 257
    np.testing.assert_allclose(lut.downscale_rgb(img16, 3, 3, box, size), want, atol=1e-5)


def test_without_kernel_box_and_resample_helpers_return_none(monkeypatch):
    monkeypatch.setattr(lut, "_kernel", None)
    assert lut.box_means(IMG, 2, 2) is None
    assert lut.resample_planes(np.zeros((3, 4, 4), np.float32), (0, 0, 4, 4), (2, 2)) is None
    assert lut.downscale_rgb(IMG, 2, 2, (0, 0, 4, 4), (2, 2)) is None


@pytest.mark.parametrize("in_size,in0,in1,out_size", [(12, 0, 12, 5), (9, 0.5, 8.25, 3), (10, 0, 10, 10), (4, 0, 4, 3), (30, 2, 27, 4)])
def test_bilinear_taps_match_pillows_weights(in_size, in0, in1, out_size):
    """Each output of the taps equals Pillow's bilinear resize of the unit impulses (so each weight is right)."""
    bounds, weights = lut._bilinear_taps(in_size, in0, in1, out_size)
    assert bounds.dtype == np.int32 and bounds.shape == (out_size, 2) and weights.shape[0] == out_size
    mat = np.zeros((out_size, in_size))
    for i, (first, count) in enumerate(bounds):
        assert first >= 0 and first + count <= in_size and count <= weights.shape[1]
        mat[i, first : first + count] = weights[i, :count]
    for j in range(in_size):
        row = np.zeros((1, in_size), np.float32)
        row[0, j] = 1
        want = np.asarray(Image.fromarray(row, "F").resize((out_size, 1), Image.BILINEAR, box=(in0, 0, in1, 1)))[0]
        np.testing.assert_allclose(mat[:, j], want, atol=1e-6)


# ---------------------------------------------------------------- lattice grid
def _taps(n: int, cells: int, seed: int):
    rng = np.random.default_rng(seed)
    i0 = rng.integers(0, cells, n)
    idx = np.stack([i0, np.minimum(i0 + 1, cells - 1)], 1).astype(np.int32)
    return idx, rng.uniform(0, 1, n).astype(np.float32)


def _ref_grid(img: np.ndarray, tables: np.ndarray, size: int, rows, cols) -> np.ndarray:
    h, w = img.shape[:2]
    out = np.zeros((h, w, 3))
    for r in range(h):
        for c in range(w):
            for i in (0, 1):
                for j in (0, 1):
                    wt = (rows[1][r] if i else 1 - rows[1][r]) * (cols[1][c] if j else 1 - cols[1][c])
                    out[r, c] += wt * _ref_interp(tables[rows[0][r, i], cols[0][c, j]], size, img[r, c][None])[0]
    return out


GRID = np.stack([np.stack([_random_table(3, 10 * a + b) for b in range(3)]) for a in range(2)])  # (2, 3, 27, 3)
GIMG = np.random.default_rng(5).integers(0, 256, (5, 6, 3)).astype(np.uint8)
ROWS, COLS = _taps(5, 2, 1), _taps(6, 3, 2)


def test_apply_grid_array_matches_reference_per_pixel():
    ref = _ref_grid(GIMG / 255.0, GRID, 3, ROWS, COLS)
    for tile, threads in ((1 << 16, 1), (6, 2), (13, 2)):
        out = lut.apply_grid_array(GIMG / 255.0, GRID, 3, ROWS, COLS, threads=threads, tile=tile)
        assert out.dtype == np.float32 and out.shape == (5, 6, 3)
        np.testing.assert_allclose(out, ref, atol=1e-5)


@pytest.mark.parametrize("kernel", [True, False])
@pytest.mark.parametrize("dtype,peak", [(np.uint8, 255), (np.uint16, 65535)])
def test_apply_grid_uint_matches_reference_rounded(monkeypatch, kernel, dtype, peak):
    if not kernel:
        monkeypatch.setattr(lut, "_kernel", None)
    img = GIMG.astype(dtype) * (257 if dtype == np.uint16 else 1)
    tables = GRID * 3 - 1  # overshoots both ways
    ref = np.floor(np.clip(_ref_grid(img / peak, tables, 3, ROWS, COLS) * peak + 0.5, 0, peak))
    out = lut.apply_grid_uint(img, tables, 3, ROWS, COLS, threads=2)
    assert out.dtype == dtype and out.shape == img.shape
    assert np.abs(out.astype(float) - ref).max() <= 1
    assert np.mean(out == ref) > 0.9  # rounded to nearest, not up or down
    assert (ref == 0).any() and (ref == peak).any()  # the clipping is exercised
    assert (out[ref == 0] == 0).all() and (out[ref == peak] == peak).all()


@pytest.mark.usefixtures("c_kernel")
@pytest.mark.parametrize("pixels", [4, 24, 25, 100])
def test_apply_grid_uint_row_blocks_cover_every_row(monkeypatch, pixels):
    whole = lut.apply_grid_uint(GIMG, GRID, 3, ROWS, COLS, threads=1)
    monkeypatch.setattr(lut, "_KERNEL_PIXELS", pixels)
    for threads in (1, 2):
        np.testing.assert_array_equal(lut.apply_grid_uint(GIMG, GRID, 3, ROWS, COLS, threads=threads), whole)


def test_grid_and_taps_are_checked():
    with pytest.raises(ValueError, match="expected"):
        lut.apply_grid_uint(GIMG.astype(np.float32), GRID, 3, ROWS, COLS)
    with pytest.raises(ValueError, match="expected"):
        lut.apply_grid_uint(GIMG[..., :2], GRID, 3, ROWS, COLS)
    with pytest.raises(ValueError, match="expected"):
        lut.apply_grid_uint(GIMG[..., 0], GRID, 3, ROWS, COLS)
    for bad in (GRID[0], GRID.reshape(2, 3, 3, 9, 3), GRID[:, :, :8]):
        with pytest.raises(ValueError, match="are not"):
            lut.apply_grid_array(GIMG / 255.0, bad, 3, ROWS, COLS)
    bad_taps = [
        (ROWS[0][:4], ROWS[1]),  # too few rows
        (ROWS[0], ROWS[1][:4]),
        (ROWS[0][:, :1], ROWS[1]),
        (ROWS[0] - 1, ROWS[1]),  # negative cell
        (ROWS[0] * 0 + 2, ROWS[1]),  # past the last cell (2 rows of cells)
    ]
    for taps in bad_taps:
        with pytest.raises(ValueError, match="do not fit"):
            lut.apply_grid_uint(GIMG, GRID, 3, taps, COLS)
        with pytest.raises(ValueError, match="do not fit"):
            lut.apply_grid_array(GIMG / 255.0, GRID, 3, taps, COLS)
    last = (ROWS[0] * 0 + 1, ROWS[1])  # the last cell is allowed
    lut.apply_grid_uint(GIMG, GRID, 3, last, COLS)
    lut._check_taps((np.zeros((0, 2), np.int32), np.zeros(0, np.float32)), 0, 1)  # an empty image: no taps


# ---------------------------------------------------------------- the baked transforms
def test_lattice_methods_apply_its_table():
    table = _random_table(4, 11)
    lat = lut.Lattice(table, 4)
    np.testing.assert_array_equal(lat.apply_uint(IMG, threads=1), lut.apply_lut_uint(IMG, table, 4))
    out = np.empty_like(IMG)
    assert lat.apply_uint(IMG, out=out) is out
    np.testing.assert_array_equal(lat.apply_float(IMG / 255.0), lut.apply_lut_float(IMG / 255.0, table, 4))
    np.testing.assert_array_equal(np.asarray(lat.apply_pil(Image.fromarray(IMG))), lut.apply_lut_uint(IMG, table, 4))


def test_lattice_grid_methods_apply_its_tables():
    g = lut.LatticeGrid(GRID, 3, ROWS, COLS)
    want = lut.apply_grid_uint(GIMG, GRID, 3, ROWS, COLS)
    np.testing.assert_array_equal(g.apply_uint(GIMG, threads=2, out=np.empty_like(GIMG)), want)
    np.testing.assert_array_equal(g.apply_float(GIMG / 255.0), lut.apply_grid_array(GIMG / 255.0, GRID, 3, ROWS, COLS))
    pil = g.apply_pil(Image.fromarray(GIMG))
    assert pil.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(pil), want)


def test_checks_return_float32_tables_and_int32_taps():
    assert lut._check_table(np.zeros((8, 3)), 2).dtype == np.float32
    assert lut._check_grid(np.zeros((1, 1, 8, 3)), 2).dtype == np.float32
    idx, wt = lut._check_taps((np.zeros((4, 2), np.int64), np.zeros(4)), 4, 1)
    assert idx.dtype == np.int32 and wt.dtype == np.float32


@pytest.mark.parametrize("kernel", [True, False])
def test_uint16_rounds_to_nearest_of_65535_levels(monkeypatch, kernel):
    if not kernel:
        monkeypatch.setattr(lut, "_kernel", None)
    table = np.full((8, 3), 0.99, np.float32)
    out = lut.apply_lut_uint(np.zeros((1, 2, 3), np.uint16), table, 2)
    assert (out == 64880).all()  # 0.99 * 65535 = 64879.65


@pytest.mark.usefixtures("c_kernel")
def test_apply_grid_uint_row_blocks_of_a_tall_image(monkeypatch):
    img = np.random.default_rng(6).integers(0, 256, (9, 2, 3)).astype(np.uint8)
    rows, cols = _taps(9, 2, 3), _taps(2, 3, 4)
    whole = lut.apply_grid_uint(img, GRID, 3, rows, cols)
    np.testing.assert_allclose(whole, np.floor(np.clip(_ref_grid(img / 255.0, GRID, 3, rows, cols) * 255 + 0.5, 0, 255)), atol=1)
    monkeypatch.setattr(lut, "_KERNEL_PIXELS", 8)  # one row a block
    np.testing.assert_array_equal(lut.apply_grid_uint(img, GRID, 3, rows, cols, threads=2), whole)


@pytest.mark.usefixtures("c_kernel")
def test_downscale_rgb_box_axes_are_x_then_y():
    img = np.random.default_rng(8).integers(0, 256, (13, 17, 3)).astype(np.uint8)
    box, size = (1.0, 0.25, 5.5, 4.0), (3, 3)
    want = lut.resample_planes(lut.box_means(img, 3, 3), box, size)
    np.testing.assert_allclose(lut.downscale_rgb(img, 3, 3, box, size), want, atol=1e-6)


@pytest.mark.usefixtures("c_kernel")
def test_resample_planes_takes_float64_planes_as_float32():
    planes = np.random.default_rng(2).uniform(0, 1, (3, 9, 12))
    np.testing.assert_array_equal(lut.resample_planes(planes, (0, 0, 12, 9), (5, 4)),
                                  lut.resample_planes(planes.astype(np.float32), (0, 0, 12, 9), (5, 4)))


def test_pillow_fallback_at_65_nodes_is_pillows_filter(monkeypatch):
    from PIL import ImageFilter

    monkeypatch.setattr(lut, "_kernel", None)
    img = np.random.default_rng(3).integers(0, 256, (64, 64, 3)).astype(np.uint8)
    table = _random_table(65, 4).clip(0, 1)
    want = np.asarray(Image.fromarray(img).filter(ImageFilter.Color3DLUT(65, table)))
    np.testing.assert_array_equal(np.asarray(lut.apply_lut_pil(Image.fromarray(img), table, 65)), want)


def test_apply_grid_array_takes_float64_images_as_float32():
    x = GIMG / 255.0
    np.testing.assert_array_equal(lut.apply_grid_array(x, GRID, 3, ROWS, COLS), lut.apply_grid_array(x.astype(np.float32), GRID, 3, ROWS, COLS))
