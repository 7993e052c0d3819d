"""csrnet.kernels.lattice on small lattices and simple colour maps whose answers are known exactly:
node order, strength, the half-resolution upsampling, the photo-driven partial bake, the
interpolation matrix, the preconditioned conjugate gradient and the least-squares fit (checked
against a dense solve). Every test runs in milliseconds (used by bench/mutation.py)."""

import numpy as np
import pytest
from scipy.ndimage import binary_dilation

from csrnet.errors import InvalidArgumentError
from csrnet.kernels import lattice
from csrnet.kernels.lut import apply_lut_array


def cube(x: np.ndarray) -> np.ndarray:
    """A curved colour map (float32), with channel mixing, that no lattice reproduces exactly."""
    x = np.asarray(x, np.float32)
    return (x**3 + 0.25 * x[:, [1, 2, 0]] ** 2 - 0.1).astype(np.float32)


class Counting:
    def __init__(self, f):
        self.f, self.points = f, []

    def __call__(self, x):
        self.points.append(np.array(x))
        return self.f(x)


PTS = np.random.default_rng(0).uniform(0, 1, (300, 3)).astype(np.float32)


# ---------------------------------------------------------------- nodes, sampling, upsampling
def test_identity_lattice_is_red_fastest_then_green_then_blue():
    g = lattice.identity_lattice(3)
    assert g.shape == (27, 3) and g.dtype == np.float32
    assert g[0].tolist() == [0, 0, 0] and g[-1].tolist() == [1, 1, 1]
    assert g[1].tolist() == [0.5, 0, 0] and g[3].tolist() == [0, 0.5, 0] and g[9].tolist() == [0, 0, 0.5]
    assert g[2 + 3 * 1 + 9 * 2].tolist() == [1, 0.5, 1]


def test_sample_lattice_evaluates_the_map_at_every_node():
    f = Counting(cube)
    t = lattice.sample_lattice(f, 5)
    assert len(f.points) == 1 and len(f.points[0]) == 125
    np.testing.assert_array_equal(t, cube(lattice.identity_lattice(5)))


@pytest.mark.parametrize("strength", [0.0, 0.5, 1.7])
def test_sample_lattice_folds_strength_in(strength):
    g = lattice.identity_lattice(5)
    t = lattice.sample_lattice(cube, 5, strength)
    np.testing.assert_allclose(t, g + strength * (cube(g) - g), atol=1e-6)
    assert t.dtype == np.float32


@pytest.mark.parametrize("size", [0, 1, 257, 300])
def test_sample_lattice_rejects_sizes_outside_2_to_256(size):
    with pytest.raises(InvalidArgumentError, match="between 2 and 256"):
        lattice.sample_lattice(cube, size)


def test_sample_lattice_accepts_2_and_256(monkeypatch):
    assert lattice.sample_lattice(cube, 2).shape == (8, 3)
    monkeypatch.setattr(lattice, "identity_lattice", lambda size: np.zeros((1, 3), np.float32))  # 256**3 nodes are not needed
    assert lattice.sample_lattice(cube, 256).shape == (1, 3)


@pytest.mark.parametrize("n", [2, 3, 4])
def test_upsample_lattice_keeps_coarse_nodes_and_interpolates_between(n):
    coarse = np.random.default_rng(n).uniform(-0.5, 1.5, (n**3, 3)).astype(np.float32)
    fine = lattice.upsample_lattice(coarse, n)
    m = 2 * n - 1
    assert fine.shape == (m**3, 3) and fine.dtype == np.float32
    np.testing.assert_array_equal(fine.reshape(m, m, m, 3)[::2, ::2, ::2], coarse.reshape(n, n, n, 3))
    np.testing.assert_allclose(fine, apply_lut_array(lattice.identity_lattice(m)[None], coarse, n)[0], atol=1e-6)


def _expected_photo_nodes(size: int, colours: np.ndarray) -> np.ndarray:
    """Nodes run exactly: the 8 corners of each occupied cell and of its face neighbours, minus the even nodes."""
    n = size - 1
    cells = np.zeros((n, n, n), bool)
    for c in colours:
        i = np.minimum((np.clip(c, 0, 1) * n).astype(int), n - 1)
        cells[i[2], i[1], i[0]] = True
    cells = binary_dilation(cells)
    nodes = np.zeros((size,) * 3, bool)
    for b, g, r in zip(*np.nonzero(cells)):
        nodes[b : b + 2, g : g + 2, r : r + 2] = True
    nodes[::2, ::2, ::2] = False
    return nodes.ravel()


def test_photo_lattice_runs_the_map_only_near_the_photo_colours():
    size, half = 33, 17
    colours = np.array([[0.1, 0.2, 0.3], [0.9, 0.05, 0.5], [0.5, 0.5, 0.5], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]], np.float32)
    f = Counting(cube)
    t = lattice.sample_lattice(f, size, near=colours)
    grid = lattice.identity_lattice(size)
    exact = _expected_photo_nodes(size, colours)
    assert len(f.points) == 2 and len(f.points[0]) == half**3 and len(f.points[1]) == exact.sum()
    coarse = lattice.upsample_lattice(cube(lattice.identity_lattice(half)), half)
    np.testing.assert_allclose(t[exact], cube(grid[exact]), atol=1e-6)
    np.testing.assert_allclose(t[~exact], coarse[~exact], atol=1e-6)
    assert np.abs(coarse[exact] - cube(grid[exact])).max() > 1e-4  # the two really differ there


def test_photo_lattice_with_strength():
    colours = PTS[:20]
    g = lattice.identity_lattice(33)
    full = lattice.sample_lattice(cube, 33, near=colours)
    np.testing.assert_allclose(lattice.sample_lattice(cube, 33, 0.4, near=colours), g + 0.4 * (full - g), atol=1e-6)


@pytest.mark.parametrize("size", [31, 34, 5])
def test_near_is_ignored_below_33_or_for_even_sizes(size):
    f = Counting(cube)
    t = lattice.sample_lattice(f, size, near=PTS[:5])
    assert len(f.points) == 1
    np.testing.assert_array_equal(t, cube(lattice.identity_lattice(size)))


# ---------------------------------------------------------------- interpolation matrix and CG
def test_interp_matrix_interpolates_like_the_lut():
    size = 4
    table = np.random.default_rng(1).uniform(0, 1, (size**3, 3))
    pts = np.vstack([PTS[:50], [[0, 0, 0], [1, 1, 1], [1, 0, 0.5]]]).astype(np.float32)
    m = lattice.interp_matrix(pts, size)
    assert m.shape == (len(pts), size**3)
    np.testing.assert_allclose(np.asarray(m.sum(axis=1)).ravel(), 1, atol=1e-6)
    np.testing.assert_allclose(m @ table, apply_lut_array(pts[None], table.astype(np.float32), size)[0], atol=1e-5)
    assert m[len(pts) - 3, 0] == pytest.approx(1) and m[len(pts) - 2, size**3 - 1] == pytest.approx(1)


def _spd(n: int, seed: int) -> np.ndarray:
    r = np.random.default_rng(seed).uniform(-1, 1, (n, n))
    return r @ r.T + np.diag(np.random.default_rng(seed + 1).uniform(0.5, 20, n))


def _textbook_pcg(a, b, x, iters):
    """Jacobi-preconditioned CG, one column at a time (the reference)."""
    out = []
    for j in range(b.shape[1]):
        xj = x[:, j].copy()
        r = b[:, j] - a @ xj
        z = r / np.diag(a)
        p = z.copy()
        for _ in range(iters):
            ap = a @ p
            alpha = (r @ z) / (p @ ap)
            xj = xj + alpha * p
            r_new = r - alpha * ap
            z_new = r_new / np.diag(a)
            p = z_new + ((r_new @ z_new) / (r @ z)) * p
            r, z = r_new, z_new
        out.append(xj)
    return np.stack(out, 1)


@pytest.mark.parametrize("iters", [0, 1, 2, 3])
def test_conjugate_gradient_steps_equal_textbook_pcg(iters):
    a = _spd(6, 3)
    b = np.random.default_rng(4).uniform(-1, 1, (6, 3))
    x0 = np.random.default_rng(5).uniform(-1, 1, (6, 3))
    np.testing.assert_allclose(lattice.conjugate_gradient(a, b, x0, iters), _textbook_pcg(a, b, x0, iters), rtol=1e-9, atol=1e-9)


def test_conjugate_gradient_solves_in_n_steps_and_stays_finite_at_zero_residual():
    a = _spd(5, 7)
    b = np.random.default_rng(8).uniform(-1, 1, (5, 3))
    x = lattice.conjugate_gradient(a, b, np.zeros((5, 3)), 12)
    np.testing.assert_allclose(a @ x, b, atol=1e-8)
    z = lattice.conjugate_gradient(a, np.zeros((5, 3)), np.zeros((5, 3)), 3)
    assert np.isfinite(z).all() and (z == 0).all()


# ---------------------------------------------------------------- the fit
def _dense_fit(f, pts, size, strength, smooth):
    """The least-squares problem of fit_lattice solved exactly (dense), over the touched nodes."""
    g = lattice.identity_lattice(size).astype(np.float64)
    sampled = g + strength * (f(g.astype(np.float32)).astype(np.float64) - g)
    target = pts + strength * (f(pts).astype(np.float64) - pts)
    m = lattice.interp_matrix(pts, size).toarray()
    active = np.flatnonzero(np.abs(m).sum(0) > 0)
    ma = m[:, active]
    lhs = ma.T @ ma + smooth * np.eye(len(active))
    rhs = ma.T @ target + smooth * sampled[active]
    out = sampled.copy()
    out[active] = np.linalg.solve(lhs, rhs)
    return out, active


@pytest.mark.parametrize("strength", [1.0, 0.6])
def test_fit_lattice_converges_to_the_least_squares_table(strength):
    pts = PTS[:40] * 0.6  # colours in the lower part of the cube: some nodes untouched
    want, active = _dense_fit(cube, pts, 4, strength, 0.1)
    got = lattice.fit_lattice(cube, pts, 4, strength, smooth=0.1, iters=200)
    assert got.dtype == np.float32 and got.shape == (64, 3)
    assert 0 < len(active) < 64
    np.testing.assert_allclose(got, want, atol=2e-5)


def test_fit_lattice_fits_the_samples_better_than_node_sampling():
    pts = PTS[:200]
    sampled = lattice.sample_lattice(cube, 5)
    fitted = lattice.fit_lattice(cube, pts, 5)
    err = lambda t: np.abs(apply_lut_array(pts[None], t, 5)[0] - cube(pts)).mean()  # noqa: E731
    assert err(fitted) < 0.7 * err(sampled)


def test_fit_lattice_smooth_pulls_towards_the_sampled_table():
    pts = PTS[:60]
    sampled = lattice.sample_lattice(cube, 4)
    loose = lattice.fit_lattice(cube, pts, 4, smooth=1e-3, iters=50)
    tight = lattice.fit_lattice(cube, pts, 4, smooth=100.0, iters=50)
    assert np.abs(tight - sampled).max() < 0.2 * np.abs(loose - sampled).max()


def test_fit_lattice_defaults_are_size_49_smooth_01_five_steps():
    pts = PTS[:100]
    got = lattice.fit_lattice(cube, pts)
    np.testing.assert_array_equal(got, lattice.fit_lattice(cube, pts, 49, 1.0, smooth=0.1, iters=5, photo_only=False))
    assert not np.array_equal(got, lattice.fit_lattice(cube, pts, 49, 1.0, smooth=0.1, iters=4))
    assert not np.array_equal(got, lattice.fit_lattice(cube, pts, 49, 1.0, smooth=0.2, iters=5))
    assert not np.array_equal(got, lattice.fit_lattice(cube, pts, 49, 1.0, smooth=0.1, iters=5, photo_only=True))


def test_fit_lattice_takes_an_even_subset_of_many_colours(monkeypatch):
    pts = PTS[:31]
    monkeypatch.setattr(lattice, "_FIT_SAMPLES", 7)
    sub = pts[np.linspace(0, 30, 7).astype(np.int64)]
    got = lattice.fit_lattice(cube, pts, 4, iters=20)
    monkeypatch.setattr(lattice, "_FIT_SAMPLES", 1000)
    np.testing.assert_array_equal(got, lattice.fit_lattice(cube, sub, 4, iters=20))
    assert not np.array_equal(got, lattice.fit_lattice(cube, pts, 4, iters=20))


def test_fit_lattice_accepts_an_image_shaped_sample():
    img = PTS[:60].reshape(6, 10, 3)
    np.testing.assert_array_equal(lattice.fit_lattice(cube, img, 4), lattice.fit_lattice(cube, PTS[:60], 4))


def test_fit_lattice_photo_only_bakes_exactly_near_the_colours_only():
    pts = np.array([[0.1, 0.1, 0.1], [0.12, 0.08, 0.11]], np.float32)
    f = Counting(cube)
    t = lattice.fit_lattice(f, pts, 33, photo_only=True)
    assert len(f.points[0]) == 17**3  # the coarse bake first
    coarse = lattice.upsample_lattice(cube(lattice.identity_lattice(17)), 17)
    far = lattice.identity_lattice(33).max(1) > 0.5
    np.testing.assert_allclose(t[far], coarse[far], atol=1e-7)
    full = lattice.fit_lattice(cube, pts, 33)
    np.testing.assert_allclose(full[far], cube(lattice.identity_lattice(33)[far]), atol=1e-7)


def test_fit_lattice_strength_two_is_blended_too():
    pts = PTS[:40]
    want, _ = _dense_fit(cube, pts, 4, 2.0, 0.1)
    np.testing.assert_allclose(lattice.fit_lattice(cube, pts, 4, 2.0, smooth=0.1, iters=200), want, atol=5e-5)


BOUNDARY = np.array([[0.5 - 1e-12, 0.25 - 1e-12, 0.75 - 1e-12]])  # float64 just below a node; float32 rounds onto it


def test_photo_lattice_locates_colours_as_float32():
    a = lattice.sample_lattice(cube, 33, near=BOUNDARY)
    np.testing.assert_array_equal(a, lattice.sample_lattice(cube, 33, near=BOUNDARY.astype(np.float32)))


def test_fit_lattice_takes_samples_as_float32():
    pts = np.vstack([BOUNDARY, PTS[:20]])
    np.testing.assert_array_equal(lattice.fit_lattice(cube, pts, 5), lattice.fit_lattice(cube, pts.astype(np.float32), 5))


def test_interp_matrix_has_a_column_per_node_even_when_untouched():
    m = lattice.interp_matrix(PTS[:10] * 0.3, 5)
    assert m.shape == (10, 125)
