"""The torch-free engine: equivalence with the authors' outputs, fast-path fidelity, the API contract."""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import csrnet
from csrnet.arch.layers import condition_vector, modulated_layers, run_mlp
from csrnet.kernels import lut
from csrnet.kernels.resize import box_reduce, downscale
from csrnet.threads import network_threads

from tests.conftest import GOLDEN, PHOTOS, ROOT, golden_names

EXAMPLES = ROOT / "examples"


def psnr(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)


@pytest.mark.parametrize("name", golden_names() or ["missing"])
def test_exact_mode_reproduces_golden(ref_model, name):
    x = np.asarray(Image.open(GOLDEN / f"{name}_input.png").convert("RGB"))
    raw = np.load(GOLDEN / f"{name}_official.npy")
    out = csrnet.enhance(x.astype(np.float32) / 255, ref_model, exact=True, condition_size=None)
    assert out.dtype == np.float32 and out.shape == x.shape
    # README: max difference < 1e-6 on all nine golden photos (measured 3.0e-7 .. 7.8e-7)
    assert np.abs(out - np.clip(raw, 0, 1)).max() < 1e-6
    assert np.abs(csrnet.transform(x, ref_model, exact=True, condition_size=None) - raw).max() < 1e-6  # unclipped too


@pytest.mark.parametrize("name", golden_names() or ["missing"])
def test_fast_path_within_50db_of_exact(ref_model, name):
    x = np.asarray(Image.open(GOLDEN / f"{name}_input.png").convert("RGB"))
    exact = csrnet.enhance(x, ref_model, exact=True)
    fast = csrnet.enhance(x, ref_model, lut_size=csrnet.pipeline.DEFAULT_LUT_SIZE)  # an explicit size forces the lattice path
    assert psnr(fast, exact, 255) >= 50.0
    assert np.array_equal(csrnet.enhance(x, ref_model), exact)  # small photos run exactly anyway


def test_fast_path_on_large_photo(ref_model, shared):
    """A 2048-px mosaic of real photos: the lattice is fitted on a 500-px copy, applied to all pixels."""
    tiles = [Image.open(p).convert("RGB").resize((1024, 768)) for p in sorted(PHOTOS.glob("*.jpg"))[:4]]
    mosaic = Image.new("RGB", (2048, 1536))
    for i, t in enumerate(tiles):
        mosaic.paste(t, ((i % 2) * 1024, (i // 2) * 768))
    exact = np.asarray(csrnet.enhance(mosaic, ref_model, exact=True))
    fast = np.asarray(csrnet.enhance(mosaic, ref_model))
    assert psnr(fast, exact, 255) >= 50.0


def test_condition_size_choices(ref_model, photo_u8):
    """'model' downscales to the stored size; None uses full resolution; an int is a long edge."""
    full = downscale(photo_u8, None)
    assert full.shape == photo_u8.shape
    small = downscale(photo_u8, 500)
    assert max(small.shape[:2]) == 500
    a = csrnet.enhance(photo_u8, ref_model, condition_size="model")
    b = csrnet.enhance(photo_u8, ref_model, condition_size=500)
    assert np.array_equal(a, b)
    c = csrnet.enhance(photo_u8, ref_model, condition_size=None)
    assert not np.array_equal(a, c)
    with pytest.raises(csrnet.CsrnetError):
        csrnet.enhance(photo_u8, ref_model, condition_size="big")


@pytest.mark.parametrize("stored", [96, 300])
def test_condition_size_model_is_the_size_stored_in_the_weights(stored):
    """``condition_size="model"`` (the default) takes the long edge from the weights' metadata: the
    same result as that size passed explicitly, and not the same as the released checkpoint's 500
    or ``auto``'s 256 (sizes a hard-coded default could pick)."""
    import dataclasses

    x = np.asarray(Image.open(EXAMPLES / "cathedral_underexposed.jpg").convert("RGB").resize((640, 427)))  # over 500 px
    auto = csrnet.load_model("auto")
    model = dataclasses.replace(auto, meta={**auto.meta, "condition_size": stored})
    assert model.condition_size == stored
    got = csrnet.enhance(x, model, exact=True)
    assert np.array_equal(got, csrnet.enhance(x, model, exact=True, condition_size=stored))
    for other in {96, 256, 300, 500, None} - {stored}:
        assert not np.array_equal(got, csrnet.enhance(x, model, exact=True, condition_size=other)), other
    # a blend takes each model's stored size too
    blend = csrnet.Blend(((model, 1.0),))
    assert np.array_equal(csrnet.enhance(x, blend, exact=True), got)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("exact", [False, True])
def test_api_dtypes_and_strength(ref_model, photo_u8, dtype, exact):
    x = photo_u8[:200, :300]
    if dtype == np.uint16:
        x = x.astype(np.uint16) * 257
    elif dtype == np.float32:
        x = x.astype(np.float32) / 255
    full = csrnet.enhance(x, ref_model, exact=exact)
    assert full.dtype == dtype and full.shape == x.shape
    if dtype == np.float32:
        assert full.min() >= 0 and full.max() <= 1
    same = csrnet.enhance(x, ref_model, strength=0.0, exact=exact)
    assert np.array_equal(same, x) and same is not x
    assert np.array_equal(csrnet.enhance(x, ref_model, strength=1.0, exact=exact), full)
    half = csrnet.enhance(x, ref_model, strength=0.5, exact=True).astype(np.float64)
    expect = (x.astype(np.float64) + csrnet.enhance(x, ref_model, exact=True).astype(np.float64)) / 2
    peak = {np.uint8: 255, np.uint16: 65535, np.float32: 1.0}[dtype]
    # interpolation happens before clipping, so compare where the full output was not clipped
    assert psnr(half, expect, peak) > 40


def test_pil_in_pil_out(ref_model, photo_u8):
    im = Image.fromarray(photo_u8)
    out = csrnet.enhance(im, ref_model)
    assert isinstance(out, Image.Image) and out.mode == "RGB" and out.size == im.size
    # the condition copy of a PIL image is Pillow's 8-bit one (rounded), so the two may differ by a level
    assert np.abs(np.asarray(out).astype(int) - csrnet.enhance(photo_u8, ref_model)).max() <= 1
    exact = csrnet.enhance(im, ref_model, exact=True)
    assert isinstance(exact, Image.Image)
    assert csrnet.enhance(im, ref_model, strength=0).tobytes() == im.tobytes()


def test_bad_images_rejected(ref_model):
    for bad in (np.zeros((4, 4)), np.zeros((4, 4, 4), np.uint8), np.zeros((4, 4, 3), np.int64)):
        with pytest.raises(csrnet.CsrnetError):
            csrnet.enhance(bad, ref_model)
    with pytest.raises(csrnet.CsrnetError, match="mode"):
        csrnet.enhance(Image.new("L", (32, 32)), ref_model)


@pytest.mark.parametrize("shape", [(1200, 1800), (1201, 1799), (3001, 1003)])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_downscale_box_step_matches_pillow(shape, dtype):
    """8- and 16-bit photos are box-reduced by the kernel (or numpy) before Pillow's resampling: the
    same as Pillow's own reduce + resample on the float image, partial edge boxes included, and
    within Pillow's 8-bit rounding of its 8-bit path."""
    rng = np.random.default_rng(sum(shape))
    small = rng.random((shape[0] // 50 + 2, shape[1] // 50 + 2, 3)).astype(np.float32)
    img = np.stack([np.asarray(Image.fromarray(small[..., c], "F").resize(shape[::-1], Image.Resampling.BICUBIC)) for c in range(3)], -1)
    top = np.iinfo(dtype).max
    ints = np.round(np.clip(img, 0, 1) * top).astype(dtype)
    as_float = ints.astype(np.float32) / top  # Pillow's path: float channels, reduce, resample
    for edge in (max(shape) // 7, max(shape) // 13):  # Pillow's box step 2 x 2 (float photos leave it to Pillow), then 4 x 4
        a, b = downscale(ints, edge), downscale(as_float, edge)
        assert a.shape == b.shape and max(a.shape[:2]) == edge and a.dtype == np.float32
        assert np.abs(a - b).max() < 1e-5
        assert np.abs(downscale(ints, edge, threads=1) - a).max() == 0
    if dtype == np.uint8:  # PIL images take Pillow's 8-bit path, which rounds to 8 bits after each of its two steps
        pillow8 = downscale(Image.fromarray(ints), edge)
        assert pillow8.shape == a.shape and np.abs(a - pillow8).max() <= 1.5 / 255


@pytest.mark.usefixtures("c_kernel")
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_box_means_kernel_matches_numpy(dtype):
    """The kernel's box means equal numpy's (resize.box_reduce) for odd sizes and factors, partial boxes included."""
    rng = np.random.default_rng(3)
    for shape in [(1, 1), (5, 7), (37, 53), (301, 517)]:
        img = rng.integers(0, np.iinfo(dtype).max + 1, size=(*shape, 3), dtype=dtype)
        for fx, fy in [(1, 1), (2, 3), (4, 1), (6, 6), (40, 9)]:
            for threads in (1, 2, 3):
                got = lut.box_means(img, fx, fy, threads=threads)
                ref = np.moveaxis(box_reduce(img, fx, fy), -1, 0)
                assert got.shape == ref.shape == (3, -(-shape[0] // fy), -(-shape[1] // fx))
                np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6)


def test_lattice_matches_network(ref_model, photo_u8):
    """A baked table, sampled at its nodes, equals the per-pixel network there."""
    table = csrnet.bake_lut(photo_u8, ref_model, size=9, fit=False)
    assert table.shape == (9**3, 3) and table.dtype == np.float32
    layers = modulated_layers(ref_model, condition_vector(ref_model, downscale(photo_u8, 500)))
    node = np.array([[1.0, 0.5, 0.0]], np.float32)  # r=8, g=4, b=0 on a 9-lattice, red fastest
    assert np.allclose(table[0 * 81 + 4 * 9 + 8], run_mlp(layers, node)[0], atol=1e-6)
    fitted = csrnet.bake_lut(photo_u8, ref_model, size=9)
    assert fitted.shape == table.shape and not np.array_equal(fitted, table)


def test_photo_lattice_exact_where_the_photo_needs_it(ref_model, photo_u8):
    """enhance's lattice runs the network only at the nodes of the cells the photo's (downscaled)
    colours occupy: there it equals the full bake; elsewhere it is the half-resolution lattice."""
    from csrnet.kernels.lattice import identity_lattice, sample_lattice, upsample_lattice
    from csrnet.kernels.lut import apply_lut_array

    small = downscale(photo_u8, 500)
    layers = modulated_layers(ref_model, condition_vector(ref_model, small))
    f = lambda colours: run_mlp(layers, colours)  # noqa: E731
    full, part = sample_lattice(f, 49), sample_lattice(f, 49, near=small)
    coarse = sample_lattice(f, 25)
    upsampled = upsample_lattice(coarse, 25)
    # the upsampled half-resolution lattice is what trilinear interpolation of it gives at every node
    assert np.allclose(upsampled, apply_lut_array(identity_lattice(49)[None], coarse, 25)[0], atol=1e-5)
    idx = np.minimum((small.reshape(-1, 3) * 48).astype(np.int64), 47)
    corner = np.unique(idx[:, 0] + 49 * (idx[:, 1] + 49 * idx[:, 2]))
    for d in (0, 1, 49, 50, 2401, 2402, 2450, 2451):  # the 8 corners of every occupied cell
        assert np.allclose(part[corner + d], full[corner + d], atol=1e-6)
    skipped = ~np.isclose(part, full, atol=1e-6).all(axis=1)
    assert 0.5 < skipped.mean() < 1  # most nodes were not evaluated ...
    assert np.array_equal(part[skipped], upsampled[skipped])  # ... and come from the coarse lattice


def test_threads_give_the_same_numbers(ref_model, photo_u8):
    """The condition net's strips and the MLP's tiles split across threads give the same sums as one
    thread (each row's products are unchanged), and enhance does not depend on its thread count."""
    small = downscale(photo_u8, 500)
    one = condition_vector(ref_model, small)
    with network_threads(3):
        assert np.array_equal(condition_vector(ref_model, small, threads=3), one)
        layers = modulated_layers(ref_model, one)
        pts = small.reshape(-1, 3)
        assert np.array_equal(run_mlp(layers, pts, tile=1000, threads=3), run_mlp(layers, pts, tile=1000))
    for exact in (False, True):
        a = csrnet.enhance(photo_u8, ref_model, exact=exact, lut_size=49, threads=1)
        assert np.array_equal(csrnet.enhance(photo_u8, ref_model, exact=exact, lut_size=49, threads=3), a)


def test_network_threads_nests_and_restores():
    """From the main thread: BLAS on one thread inside, nested calls included, the limits before
    restored on leaving. From another thread it changes nothing (OpenBLAS ignores those changes)."""
    import threading

    from threadpoolctl import threadpool_info

    def blas_threads():
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

    before = blas_threads()
    with network_threads(2) as n:
        assert n == 2 and all(n == 1 for n in blas_threads())
        with network_threads(2):
            assert all(n == 1 for n in blas_threads())
        assert all(n == 1 for n in blas_threads())
    assert blas_threads() == before
    seen = []

    def worker():
        with network_threads(2) as n:
            seen.append(blas_threads() if n == 1 else None)

    t = threading.Thread(target=worker)
    t.start()
    t.join(20)
    assert seen == [before] and blas_threads() == before


def test_conjugate_gradient_solves_the_fit_system():
    """The preconditioned CG of the lattice fit converges to the direct solution of its normal equations."""
    from scipy.sparse import identity
    from scipy.sparse.linalg import spsolve

    from csrnet.kernels.lattice import conjugate_gradient, interp_matrix

    rng = np.random.default_rng(0)
    pts = (rng.random((3000, 3)) ** 3).astype(np.float32)  # crowded near black, as photos are
    m = interp_matrix(pts, 9).tocsc()
    normal = (m.T @ m + 1e-3 * identity(9**3)).tocsr()
    b = m.T @ rng.random((3000, 3))
    want = np.stack([spsolve(normal.tocsc(), b[:, c]) for c in range(3)], -1)
    got = conjugate_gradient(normal, b, np.zeros_like(b), 300)
    assert np.abs(got - want).max() < 1e-6 * np.abs(want).max()
    few = conjugate_gradient(normal, b, np.zeros_like(b), 5)  # the fit's 5 steps cut the residual ~60x here
    assert np.linalg.norm(normal @ few - b) < 0.03 * np.linalg.norm(b)


def test_style_blend(ref_model, photo_u8):
    """Weights (1, 0) give the first model; a half/half blend lies between the two."""
    import dataclasses

    other = dataclasses.replace(ref_model, tensors={**ref_model.tensors, "cond_shift3.bias": ref_model.tensors["cond_shift3.bias"] + 0.2})
    x = photo_u8
    for mode in ("lut", "modulation"):
        blend = csrnet.Blend(((ref_model, 1.0), (other, 0.0)), mode=mode)
        for kwargs in ({"exact": True}, {"lut_size": 33}):
            assert np.array_equal(csrnet.enhance(x, blend, **kwargs), csrnet.enhance(x, ref_model, **kwargs))
    a = csrnet.enhance(x, ref_model, exact=True).astype(float)
    b = csrnet.enhance(x, other, exact=True).astype(float)
    mid = csrnet.enhance(x, csrnet.Blend(((ref_model, 0.5), (other, 0.5))), exact=True).astype(float)
    assert min(a.mean(), b.mean()) < mid.mean() < max(a.mean(), b.mean())
    table = csrnet.bake_lut(x, csrnet.Blend(((ref_model, 1.0), (other, 0.0))), size=17)
    assert np.array_equal(table, csrnet.bake_lut(x, ref_model, size=17))
    different_base = dataclasses.replace(other, tensors={**other.tensors, "conv1.bias": other.tensors["conv1.bias"] + 1})
    with pytest.raises(csrnet.CsrnetError, match="base network differs"):
        csrnet.Blend(((ref_model, 0.5), (different_base, 0.5)), mode="modulation")
    with pytest.raises(csrnet.CsrnetError, match="MODEL:WEIGHT"):
        csrnet.parse_style("justaname")


def test_enhance_path_does_not_import_torch(ref_weights, tmp_path):
    code = f"""
import sys, numpy as np, csrnet
from csrnet.io.formats import read_photo, write_photo
m = csrnet.load_model({str(ref_weights)!r})
x = (np.random.default_rng(0).random((64, 80, 3)) * 255).astype(np.uint8)
csrnet.enhance(x, m); csrnet.enhance(x, m, exact=True); csrnet.bake_lut(x, m, size=17)
import csrnet.cli, csrnet.batch
assert 'torch' not in sys.modules, 'torch was imported'
print('ok')
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "ok" in out.stdout
