"""Baking a per-pixel colour map into a 3D lattice: sampling, the photo-driven partial bake, the fit.

A *colour map* is any function from (N, 3) float32 colours in [0, 1] to (N, 3) float32 colours —
CSRNet's base network for one condition vector is one. Tables are (size**3, 3) float32, red
fastest (the order of :mod:`csrnet.kernels.lut` and of ``.cube`` files), unclipped.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import InvalidArgumentError
from .lut import locate

__all__ = [
    "ColourMap",
    "DEFAULT_LUT_SIZE",
    "conjugate_gradient",
    "fit_lattice",
    "identity_lattice",
    "interp_matrix",
    "sample_lattice",
    "upsample_lattice",
]

#: (N, 3) float32 colours in [0, 1] -> (N, 3) float32 colours (unclipped).
ColourMap = Callable[[np.ndarray], np.ndarray]

#: Lattice size of the fast path, chosen by measurement (released checkpoint, 9 golden + 8
#: FiveK inputs, fitted lattice, min / mean dB vs exact mode; `python bench/lattice_size.py`,
#: bench/results/lattice_size.md): 33 -> 48.5 / 52.4, 41 -> 50.3 / 53.7, 49 -> 51.7 / 55.0,
#: 65 -> 53.5 / 56.6 — sampled at the nodes only, 65 gives 49.2 / 52.3. 49 keeps >= 50 dB on
#: those photos and bakes in less than half the time of 65 (118k vs 275k network evaluations,
#: the fixed cost of every photo).
DEFAULT_LUT_SIZE = 49


def identity_lattice(size: int) -> np.ndarray:
    """(size**3, 3) float32 grid of RGB points, red fastest then green then blue (.cube / Pillow order)."""
    v = np.linspace(0.0, 1.0, size, dtype=np.float32)
    b, g, r = np.meshgrid(v, v, v, indexing="ij")
    return np.stack([r.ravel(), g.ravel(), b.ravel()], axis=-1)


def sample_lattice(f: ColourMap, size: int = DEFAULT_LUT_SIZE, strength: float = 1.0, *, near: np.ndarray | None = None) -> np.ndarray:
    """Evaluate the colour map ``f`` on a ``size``^3 lattice, with strength folded in; unclipped.

    near: optional (N, 3) colours in [0, 1]. Then, for odd ``size`` >= 33, ``f`` runs only
    at the nodes of the cells these colours occupy (and their neighbours); every other node comes
    from a half-resolution lattice: see :func:`_photo_lattice`.
    """
    if not 2 <= size <= 256:
        raise InvalidArgumentError(f"lattice size must be between 2 and 256, got {size}")
    grid = identity_lattice(size)
    if near is not None and size % 2 and size >= 33:
        table = _photo_lattice(f, size, near, grid)
    else:
        table = f(grid)
    if strength != 1.0:
        table = grid + np.float32(strength) * (table - grid)
    return table


def upsample_lattice(coarse: np.ndarray, n: int) -> np.ndarray:
    """(n**3, 3) lattice -> ((2n-1)**3, 3): the coarse nodes kept, the nodes between them linearly
    interpolated along each axis in turn (the same values trilinear interpolation gives there)."""
    c = coarse.reshape(n, n, n, 3)
    for axis in range(3):
        shape = list(c.shape)
        shape[axis] = 2 * n - 1
        fine = np.empty(shape, np.float32)
        even, odd, lo, hi = ([slice(None)] * 4 for _ in range(4))
        even[axis], odd[axis], lo[axis], hi[axis] = slice(0, None, 2), slice(1, None, 2), slice(0, -1), slice(1, None)
        fine[tuple(even)] = c
        fine[tuple(odd)] = 0.5 * (c[tuple(lo)] + c[tuple(hi)])
        c = fine
    return c.reshape(-1, 3)


def _photo_lattice(f: ColourMap, size: int, colours: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """The network on a ``size``^3 lattice (odd size), evaluated exactly only where a photo needs it.

    A photo's colours fill a small part of the colour cube (~5-20% of a 49^3 lattice's cells), and
    only the nodes of those cells are ever read when the lattice is applied to it. So: bake the
    ((size+1)/2)^3 lattice whose nodes are every other node of this one, interpolate the nodes
    between, and run the network exactly at the nodes of the cells ``colours`` (a downscaled copy of
    the photo) occupy, grown by one cell for colours the copy averaged away. A colour outside them
    still gets a smooth half-resolution value. Measured (uint8, fast vs exact, 9 golden + 18 FiveK
    photos + a 6 MP mosaic): as close to exact mode as the full bake (min / mean 51.48 / 55.22 dB vs
    51.51 / 55.29), with the network at 1/4-1/6 of the nodes and about half the bake time.
    """
    from scipy.ndimage import binary_dilation

    half = (size + 1) // 2
    table = upsample_lattice(f(identity_lattice(half)), half)
    n = size - 1
    lower = np.zeros(size**3, bool)  # the lower corner of every cell a colour falls in
    lower[locate(np.asarray(colours, np.float32).reshape(-1, 3), size)[0]] = True
    cells = binary_dilation(lower.reshape(size, size, size)[:n, :n, :n])  # [b, g, r], red fastest like the table
    nodes = np.zeros((size, size, size), bool)
    for db in (0, 1):
        for dg in (0, 1):
            for dr in (0, 1):
                nodes[db : db + n, dg : dg + n, dr : dr + n] |= cells
    nodes[::2, ::2, ::2] = False  # the coarse bake has these exactly
    todo = np.flatnonzero(nodes)
    table[todo] = f(grid[todo])
    return table


_FIT_SAMPLES = 1 << 13  # 8k colours (16k: +0.07 dB mean, twice the matrix work)


def interp_matrix(points: np.ndarray, size: int):  # -> scipy.sparse.csr_matrix
    """Sparse (N, size**3) matrix of trilinear weights: ``M @ table`` interpolates ``table`` at ``points``."""
    from scipy import sparse

    base, f = locate(np.asarray(points).reshape(-1, 3), size)
    cols, vals = [], []
    for db in (0, 1):
        for dg in (0, 1):
            for dr in (0, 1):
                w = (f[:, 0] if dr else 1 - f[:, 0]) * (f[:, 1] if dg else 1 - f[:, 1]) * (f[:, 2] if db else 1 - f[:, 2])
                cols.append(base + dr + dg * size + db * size * size)
                vals.append(w)
    rows = np.tile(np.arange(len(points)), 8)
    return sparse.csr_matrix((np.concatenate(vals), (rows, np.concatenate(cols))), shape=(len(points), size**3))


def conjugate_gradient(a, b: np.ndarray, x: np.ndarray, iters: int) -> np.ndarray:
    """Solve ``a @ x = b`` (``a`` symmetric positive definite) for the three colour channels at once
    (columns of b): a few conjugate-gradient steps, preconditioned by the diagonal of ``a``.

    Written out (a dozen lines) because scipy's ``cg`` takes one right-hand side at a time: the
    three channels share the matrix, so one sparse product per step serves all of them, and the
    vector work stays element-wise (multi-threaded BLAS dot products on these short vectors
    made scipy's loop several times slower on a busy 2-core machine). The diagonal (Jacobi)
    preconditioner matters here: how many colours touch a node varies by orders of magnitude.
    """
    dinv = (1.0 / a.diagonal())[:, None]
    r = b - a @ x
    z = r * dinv
    p = z.copy()
    rz = np.einsum("ij,ij->j", r, z)
    for _ in range(iters):
        ap = a @ p
        alpha = rz / np.maximum(np.einsum("ij,ij->j", p, ap), 1e-30)
        x = x + alpha * p
        r = r - alpha * ap
        z = r * dinv
        rz_new = np.einsum("ij,ij->j", r, z)
        p = z + (rz_new / np.maximum(rz, 1e-30)) * p
        rz = rz_new
    return x


def fit_lattice(
    f: ColourMap,
    samples: np.ndarray,
    size: int = DEFAULT_LUT_SIZE,
    strength: float = 1.0,
    *,
    smooth: float = 0.1,
    iters: int = 5,
    photo_only: bool = False,
) -> np.ndarray:
    """A lattice fitted to the colour map ``f`` (the network) on the image's own colours, not just sampled at the nodes.

    Trilinear interpolation is linear in the table, so the table minimising
    ``sum_p |interp(T, p) - f(p)|^2 + smooth * |T - T_sampled|^2`` over the photo's colours
    ``p`` is a sparse least-squares problem, solved by a few conjugate-gradient steps
    from the sampled table. The network bends sharply near black, where node sampling
    alone loses up to ~7 dB; fitting recovers 3-7 dB on the golden photos (see
    bench/full_resolution.py). Nodes no colour touches keep their sampled value.
    ``smooth`` and ``iters`` were chosen by measurement (uint8 fast vs exact, 9 golden + 18
    FiveK photos + a 6 MP mosaic, min / mean dB and worst pixel error in levels of 255): 5
    preconditioned steps with smooth 0.1 give 51.7 / 55.6 dB, 8 levels; 10 plain steps with
    smooth 1e-3 (the earlier default) 51.5 / 55.3 dB, 7 levels; the same preconditioned
    steps with smooth 1e-3 fit the sampled colours too closely: 51.8 / 55.6 dB but 14 levels.
    On the 153 shared photos the default is 50.3 / 58.8 dB, worst 19 levels on 7 of 786k pixels
    (``python bench/lattice_size.py --photos``).

    samples: (N, 3) float32 colours in [0, 1] (a downscaled copy of the photo).
    photo_only: evaluate the network exactly only at the nodes the photo's colours need (see
        :func:`_photo_lattice`); for applying the table to this photo (what :func:`csrnet.enhance` does),
        not for reuse on others.
    """
    from scipy.sparse import identity

    pts = np.asarray(samples, np.float32).reshape(-1, 3)
    table = sample_lattice(f, size, strength, near=pts if photo_only else None)
    if len(pts) > _FIT_SAMPLES:  # an even, deterministic subset
        pts = pts[np.linspace(0, len(pts) - 1, _FIT_SAMPLES).astype(np.int64)]
    target = f(pts).astype(np.float64)
    if strength != 1.0:
        target = pts + strength * (target - pts)
    m = interp_matrix(pts, size).tocsc()
    active = np.flatnonzero(np.diff(m.indptr))  # nodes some colour touches; the rest keep their samples
    m = m[:, active]
    normal = (m.T @ m + smooth * identity(len(active), format="csr")).tocsr()
    start = table[active].astype(np.float64)
    table[active] = conjugate_gradient(normal, m.T @ target + smooth * start, start, iters)
    return table
