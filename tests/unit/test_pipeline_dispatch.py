"""csrnet.pipeline's dispatch on tiny images with the bundled models (no torch, no shared data): the
condition copy, exact vs baked, strength, input and output types, in place, long_edge, transform,
bake_lut and parse_style. Expected results are built from the architecture's own steps
(condition -> run_exact / bake -> apply), so each test pins what enhance chooses and passes on.
Every test runs in well under a second (used by bench/mutation.py)."""

import numpy as np
import pytest
from PIL import Image

import csrnet
from csrnet import pipeline as P
from csrnet.arch import get_architecture
from csrnet.arch import csrnet as arch_csrnet
from csrnet.errors import InvalidArgumentError
from csrnet.kernels.lattice import sample_lattice
from csrnet.kernels.pixels import from_float, to_float
from csrnet.kernels.resize import downscale

AUTO = csrnet.load_model("auto")
LOCAL = csrnet.load_model("csrnet-l-clahe")
ARCH = get_architecture("csrnet")


def _img(h=24, w=32, seed=0, dtype=np.uint8):
    peak = 255 if dtype == np.uint8 else 65535
    a = np.random.default_rng(seed).integers(0, peak + 1, (h, w, 3)).astype(dtype)
    a[0, :2] = [[0, 0, 0], [peak, peak, peak]]
    return a


IMG = _img()


def _state(image, model=AUTO, condition_size="model"):
    arch = get_architecture(model.arch)
    return arch, arch.condition(model, lambda m: P.condition_copy(image, m, condition_size), 1)


def _exact(image, strength=1.0, model=AUTO, condition_size="model"):
    arch, state = _state(image, model, condition_size)
    x = to_float(image)
    y = arch.run_exact(state, x, 1)
    return x + np.float32(strength) * (y - x) if strength != 1 else y


def _baked(image, size, strength=1.0, model=AUTO, out_shape=None, target=None):
    arch, state = _state(image, model)
    target = image if target is None else target
    shape = out_shape or (np.asarray(target).shape[:2] if not isinstance(target, Image.Image) else (target.height, target.width))
    return arch.bake(state, size, strength, shape, 1)


# ---------------------------------------------------------------- the condition copy
def test_condition_copy_uses_the_models_long_edge_by_default():
    img = _img(300, 120)
    small = P.condition_copy(img, AUTO)
    assert AUTO.condition_size == 256 and small.shape == (256, 102, 3) and small.dtype == np.float32
    np.testing.assert_array_equal(small, downscale(img, 256))


def test_condition_copy_with_an_int_or_none():
    img = _img(40, 60)
    np.testing.assert_array_equal(P.condition_copy(img, AUTO, 16), downscale(img, 16))
    assert P.condition_copy(img, AUTO, 16).shape[:2] == (11, 16)
    assert P.condition_copy(img, AUTO, None).shape == (40, 60, 3)
    np.testing.assert_allclose(P.condition_copy(img, AUTO, None), img / 255.0, atol=1e-6)
    assert P.condition_copy(img, AUTO, 100).shape == (40, 60, 3)  # never upscaled


@pytest.mark.parametrize("bad", [15, 0, -3])
def test_condition_copy_below_16_px_is_refused(bad):
    with pytest.raises(InvalidArgumentError, match="too small"):
        P.condition_copy(IMG, AUTO, bad)


@pytest.mark.parametrize("bad", [True, False, 20.0, "big", "Model"])
def test_condition_copy_takes_only_model_none_or_int(bad):
    with pytest.raises(InvalidArgumentError, match="must be 'model', None or an int"):
        P.condition_copy(IMG, AUTO, bad)


def test_condition_copy_of_16_px_is_accepted():
    assert max(P.condition_copy(IMG, AUTO, 16).shape[:2]) == 16


@pytest.mark.parametrize("shape,want", [((3, 40), (5, 40)), ((40, 2), (40, 5)), ((4, 4), (5, 5)), ((5, 6), (5, 6))])
def test_condition_copy_pads_thin_images_to_5_px_by_replicating_edges(shape, want):
    img = _img(*shape)
    small = P.condition_copy(img, AUTO, None)
    assert small.shape == want + (3,)
    h, w = shape
    np.testing.assert_allclose(small[:h, :w], img / 255.0, atol=1e-6)
    np.testing.assert_array_equal(small[h:], np.broadcast_to(small[h - 1 : h], small[h:].shape))
    np.testing.assert_array_equal(small[:, w:], np.broadcast_to(small[:, w - 1 : w], small[:, w:].shape))


def test_condition_size_reaches_the_condition_network():
    img = _img(64, 96, 3)
    a = P.enhance(img, AUTO, exact=True, condition_size=16)
    np.testing.assert_array_equal(a, from_float(_exact(img, condition_size=16), np.uint8))
    assert not np.array_equal(a, P.enhance(img, AUTO, exact=True, condition_size=None))
    np.testing.assert_array_equal(P.transform(img, AUTO, condition_size=16), _exact(img, condition_size=16))


# ---------------------------------------------------------------- exact vs baked
def test_small_photo_runs_exactly_by_default():
    out = P.enhance(IMG, "auto")
    np.testing.assert_array_equal(out, from_float(_exact(IMG), np.uint8))
    np.testing.assert_array_equal(out, P.enhance(IMG, AUTO, exact=True))


def test_lut_size_given_takes_the_lattice():
    out = P.enhance(IMG, AUTO, lut_size=9)
    np.testing.assert_array_equal(out, _baked(IMG, 9).apply_uint(IMG))
    assert not np.array_equal(out, P.enhance(IMG, AUTO, exact=True))


def test_exact_wins_over_lut_size():
    np.testing.assert_array_equal(P.enhance(IMG, AUTO, exact=True, lut_size=9), from_float(_exact(IMG), np.uint8))


def test_large_photo_takes_the_default_lattice(monkeypatch):
    monkeypatch.setattr(arch_csrnet, "EXACT_BELOW_PIXELS", 100)  # this 24x32 photo counts as large
    out = P.enhance(IMG, AUTO)
    np.testing.assert_array_equal(out, _baked(IMG, 49).apply_uint(IMG))
    assert not np.array_equal(out, from_float(_exact(IMG), np.uint8))


def test_spatially_varying_model_bakes_a_grid():
    img = _img(20, 28, 4)
    out = P.enhance(img, LOCAL, lut_size=5)
    np.testing.assert_array_equal(out, _baked(img, 5, model=LOCAL).apply_uint(img))
    np.testing.assert_array_equal(P.enhance(img, LOCAL, exact=True), from_float(_exact(img, model=LOCAL), np.uint8))


# ---------------------------------------------------------------- strength
def test_strength_zero_returns_a_copy_of_the_input():
    for image in (IMG, Image.fromarray(IMG)):
        out = P.enhance(image, AUTO, strength=0)
        assert out is not image
        np.testing.assert_array_equal(np.asarray(out), np.asarray(image))
    out = P.enhance(IMG, AUTO, strength=0, lut_size=9)
    out[0, 0] = 7
    assert IMG[0, 0].tolist() == [0, 0, 0]


def test_strength_zero_with_long_edge_returns_the_shrunk_photo():
    np.testing.assert_array_equal(P.enhance(IMG, AUTO, strength=0, long_edge=16), P.shrink(IMG, 16))


@pytest.mark.parametrize("strength", [0.5, 1.5])
def test_strength_mixes_input_and_network_output_exact(strength):
    np.testing.assert_array_equal(P.enhance(IMG, AUTO, strength=strength, exact=True),
                                  from_float(_exact(IMG, strength), np.uint8))


def test_strength_is_folded_into_the_lattice():
    np.testing.assert_array_equal(P.enhance(IMG, AUTO, strength=0.5, lut_size=9), _baked(IMG, 9, 0.5).apply_uint(IMG))


def test_blend_helper_mixes_into_y():
    x = np.full((1, 1, 3), 0.2, np.float32)
    y = np.full((1, 1, 3), 0.6, np.float32)
    out = P._blend(x, y, 0.25)
    assert out is y
    np.testing.assert_allclose(out, 0.3, atol=1e-7)
    y1 = np.full((1, 1, 3), 0.6, np.float32)
    assert P._blend(x, y1, 1.0) is y1 and y1[0, 0, 0] == np.float32(0.6)


# ---------------------------------------------------------------- types in and out
@pytest.mark.parametrize("exact", [True, False])
def test_uint16_in_uint16_out(exact):
    img = _img(dtype=np.uint16)
    out = P.enhance(img, AUTO, exact=exact, lut_size=None if exact else 9)
    assert out.dtype == np.uint16 and out.shape == img.shape
    want = from_float(_exact(img), np.uint16) if exact else _baked(img, 9).apply_uint(img)
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("exact", [True, False])
def test_float_in_same_float_out_clipped(dtype, exact):
    img = (IMG / 255.0).astype(dtype)
    out = P.enhance(img, AUTO, exact=exact, lut_size=None if exact else 9, strength=1.8)
    assert out.dtype == dtype and out.shape == img.shape
    raw = _exact(img, 1.8) if exact else _baked(img, 9, 1.8).apply_float(to_float(img))
    np.testing.assert_allclose(out, np.clip(raw, 0, 1), atol=1e-6)
    assert (raw < 0).any() and out.min() == 0  # the clipping is exercised


@pytest.mark.parametrize("exact", [True, False])
def test_pil_in_pil_out(exact):
    out = P.enhance(Image.fromarray(IMG), AUTO, exact=exact, lut_size=None if exact else 9)
    assert isinstance(out, Image.Image) and out.mode == "RGB" and out.size == (32, 24)
    want = from_float(_exact(IMG), np.uint8) if exact else _baked(IMG, 9).apply_uint(IMG)
    np.testing.assert_array_equal(np.asarray(out), want)


def test_non_rgb_pil_is_refused():
    with pytest.raises(InvalidArgumentError):
        P.enhance(Image.fromarray(IMG).convert("L"), AUTO, lut_size=9)


def test_threads_do_not_change_the_result():
    a = P.enhance(IMG, AUTO, lut_size=9, threads=1)
    np.testing.assert_array_equal(a, P.enhance(IMG, AUTO, lut_size=9, threads=2))
    np.testing.assert_array_equal(P.enhance(IMG, AUTO, threads=2), P.enhance(IMG, AUTO, threads=1))


# ---------------------------------------------------------------- in place
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_inplace_writes_into_a_writable_contiguous_input(dtype):
    img = _img(dtype=dtype)
    want = P.enhance(img, AUTO, lut_size=9)
    assert not np.array_equal(want, img)
    work = img.copy()
    out = P.enhance(work, AUTO, lut_size=9, inplace=True)
    assert out is work
    np.testing.assert_array_equal(out, want)


def test_without_inplace_the_input_is_kept():
    work = IMG.copy()
    out = P.enhance(work, AUTO, lut_size=9)
    assert out is not work
    np.testing.assert_array_equal(work, IMG)


def test_inplace_is_skipped_for_views_and_read_only_arrays():
    big = np.concatenate([IMG, IMG], axis=1)
    view = big[:, ::2]  # not contiguous
    keep = view.copy()
    out = P.enhance(view, AUTO, lut_size=9, inplace=True)
    assert out is not view
    np.testing.assert_array_equal(view, keep)
    ro = IMG.copy()
    ro.flags.writeable = False
    out = P.enhance(ro, AUTO, lut_size=9, inplace=True)
    assert out is not ro
    np.testing.assert_array_equal(ro, IMG)
    np.testing.assert_array_equal(out, P.enhance(IMG, AUTO, lut_size=9))


def test_inplace_is_ignored_on_the_exact_path():
    work = IMG.copy()
    out = P.enhance(work, AUTO, inplace=True)
    assert out is not work
    np.testing.assert_array_equal(work, IMG)


# ---------------------------------------------------------------- long_edge
@pytest.mark.parametrize("image", [IMG, Image.fromarray(IMG)], ids=["array", "pil"])
def test_long_edge_applies_the_whole_photos_lattice_to_a_shrunk_copy(image):
    small = P.shrink(image, 16)
    out = P.enhance(image, AUTO, long_edge=16)  # small photo, but a resized output always takes the lattice
    assert type(out) is type(small)
    want = _baked(IMG, 49, out_shape=(12, 16)).apply_uint(np.asarray(small))
    np.testing.assert_array_equal(np.asarray(out), want)
    np.testing.assert_array_equal(np.asarray(image), IMG)  # the input is untouched


def test_long_edge_above_the_photo_keeps_it_and_its_input():
    work = IMG.copy()
    out = P.enhance(work, AUTO, long_edge=100)
    np.testing.assert_array_equal(out, P.enhance(IMG, AUTO))  # exact, as without long_edge
    assert out is not work
    np.testing.assert_array_equal(work, IMG)


def test_shrink_cuts_the_long_edge_keeps_type_and_never_enlarges():
    assert P.shrink(IMG, 32) is IMG and P.shrink(IMG, 40) is IMG
    s = P.shrink(IMG, 16)
    assert s.shape == (12, 16, 3) and s.dtype == np.uint8
    np.testing.assert_array_equal(s, from_float(downscale(IMG, 16, reducing_gap=1.5), np.uint8))
    s16 = P.shrink(IMG.astype(np.uint16) * 257, 16)
    assert s16.dtype == np.uint16 and np.abs(s16.astype(int) - s.astype(int) * 257).max() <= 257
    f = P.shrink((IMG / 255.0).astype(np.float32), 16)
    assert f.dtype == np.float32 and f.shape == (12, 16, 3)
    p = P.shrink(Image.fromarray(IMG), 16)
    assert isinstance(p, Image.Image) and p.mode == "RGB" and p.size == (16, 12)
    np.testing.assert_array_equal(np.asarray(p), from_float(downscale(Image.fromarray(IMG), 16, reducing_gap=1.5), np.uint8))
    tall = _img(40, 10)
    assert P.shrink(tall, 20).shape == (20, 5, 3)


def test_shrink_reducing_gap_is_15():
    img = _img(96, 128, 9)
    np.testing.assert_array_equal(P.shrink(img, 20), from_float(downscale(img, 20, reducing_gap=1.5), np.uint8))
    assert not np.array_equal(P.shrink(img, 20), from_float(downscale(img, 20), np.uint8))


# ---------------------------------------------------------------- transform
def test_transform_exact_is_the_unclipped_network_output():
    out = P.transform(IMG, "auto")
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, _exact(IMG))
    np.testing.assert_allclose(P.transform(IMG, AUTO, strength=1.7), _exact(IMG, 1.7), atol=1e-6)
    assert out.min() < 0 or out.max() > 1 or P.transform(IMG, AUTO, strength=1.7).max() > 1


def test_transform_baked_applies_the_lattice_in_float():
    x = to_float(IMG)
    np.testing.assert_array_equal(P.transform(IMG, AUTO, exact=False, lut_size=9), _baked(IMG, 9).apply_float(x))
    np.testing.assert_array_equal(P.transform(IMG, AUTO, exact=False), _baked(IMG, 49).apply_float(x))
    np.testing.assert_array_equal(P.transform(IMG, AUTO, exact=False, lut_size=9, strength=0.3), _baked(IMG, 9, 0.3).apply_float(x))
    zero = P.transform(IMG, AUTO, exact=False, strength=0)
    np.testing.assert_array_equal(zero, x)
    f = (IMG / 255.0).astype(np.float32)
    assert P.transform(f, AUTO, exact=False, strength=0) is not f


# ---------------------------------------------------------------- bake_lut / parse_style
def test_bake_lut_fitted_and_sampled_tables():
    arch, state = _state(IMG)
    t = P.bake_lut(IMG, "auto", 9)
    assert t.shape == (729, 3) and t.dtype == np.float32
    np.testing.assert_array_equal(t, arch.bake_table(state, 9, 1.0, fit=True, threads=1))
    s = P.bake_lut(IMG, AUTO, 9, fit=False, strength=0.5)
    np.testing.assert_array_equal(s, arch.bake_table(state, 9, 0.5, fit=False, threads=1))
    assert not np.array_equal(P.bake_lut(IMG, AUTO, 9, fit=False), t)
    assert P.bake_lut(IMG, AUTO, fit=False).shape == (49**3, 3)


def test_bake_lut_condition_size_is_passed_on():
    img = _img(64, 96, 3)
    arch, state = _state(img, condition_size=16)
    np.testing.assert_array_equal(P.bake_lut(img, AUTO, 5, condition_size=16, fit=False), arch.bake_table(state, 5, 1.0, fit=False, threads=1))


def test_bake_lut_refuses_spatially_varying_models_and_bad_images():
    with pytest.raises(InvalidArgumentError, match="spatially varying"):
        P.bake_lut(IMG, LOCAL, 5)
    with pytest.raises(InvalidArgumentError):
        P.bake_lut(IMG[..., 0], AUTO, 5)


def test_parse_style_builds_a_blend():
    b = P.parse_style(" auto:0.7, exposure:0.3 ")
    assert isinstance(b, P.Blend) and b.mode == "lut"
    assert [(m.name, w) for m, w in b.parts] == [("auto", 0.7), ("exposure", 0.3)]
    assert P.parse_style("auto:1", "modulation").mode == "modulation"


@pytest.mark.parametrize("spec,msg", [("auto", "expected MODEL:WEIGHT"), (":0.5", "expected MODEL:WEIGHT"),
                                      ("auto:0.5,exposure", "expected MODEL:WEIGHT"), ("auto:heavy", "is not a number")])
def test_parse_style_refuses_malformed_items(spec, msg):
    with pytest.raises(InvalidArgumentError, match=msg):
        P.parse_style(spec)


def test_blend_of_one_model_matches_the_model():
    blend = P.parse_style("auto:1")
    np.testing.assert_array_equal(P.enhance(IMG, blend, exact=True), P.enhance(IMG, AUTO, exact=True))
    half = P.Blend(((AUTO, 0.5), (AUTO, 0.5)))
    np.testing.assert_allclose(P.transform(IMG, half), _exact(IMG), atol=1e-5)


def test_blend_shares_one_condition_copy_per_long_edge(monkeypatch):
    calls = []
    real = P.condition_copy

    def counting(image, model, size="model", **kw):
        calls.append(size)
        return real(image, model, size, **kw)

    monkeypatch.setattr(P, "condition_copy", counting)
    P.transform(IMG, P.Blend(((AUTO, 0.5), (AUTO, 0.5))))
    assert len(calls) == 1
    calls.clear()
    P.transform(IMG, AUTO, condition_size=16)
    assert calls == [16]


def test_spatially_varying_model_chooses_by_its_own_cost_rule():
    img = _img(20, 28, 4)
    arch, state = _state(img, LOCAL)
    size = arch.default_lut_size
    exact = arch.prefers_exact(state, (20, 28), size)
    want = from_float(_exact(img, model=LOCAL), np.uint8) if exact else _baked(img, size, model=LOCAL).apply_uint(img)
    np.testing.assert_array_equal(P.enhance(img, LOCAL), want)


def test_transform_baked_for_a_spatially_varying_model():
    img = _img(20, 28, 4)
    np.testing.assert_array_equal(P.transform(img, LOCAL, exact=False, lut_size=5),
                                  _baked(img, 5, model=LOCAL).apply_float(to_float(img)))


def test_blend_of_models_with_different_condition_sizes_gives_each_its_copy():
    import dataclasses

    small = dataclasses.replace(AUTO, meta={**AUTO.meta, "condition_size": 16})
    assert small.condition_size == 16
    blend = P.Blend(((AUTO, 0.5), (small, 0.5)))
    img = _img(64, 96, 3)
    want = 0.5 * _exact(img) + 0.5 * _exact(img, model=small)
    np.testing.assert_allclose(P.transform(img, blend), want, atol=1e-5)
    np.testing.assert_allclose(P.transform(img, P.Blend(((small, 0.5), (AUTO, 0.5)))), want, atol=1e-5)


def test_parse_style_splits_the_weight_at_the_last_colon(tmp_path):
    import shutil
    from pathlib import Path

    path = tmp_path / "a:b.safetensors"
    shutil.copy(Path(csrnet.__file__).parent / "models" / "auto.safetensors", path)
    b = P.parse_style(f"{path}:0.5")
    assert len(b.parts) == 1 and b.parts[0][1] == 0.5
