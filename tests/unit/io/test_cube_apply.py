"""Applying a .cube: csrnet's own kernel for 8/16-bit [0, 1]-domain LUTs, float interpolation otherwise,
the input's type and dtype back, clipped and rounded like every other csrnet output."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from csrnet.errors import InvalidArgumentError
from csrnet.io.cube import CubeLUT, apply_cube
from csrnet.kernels.lattice import identity_lattice
from csrnet.kernels.lut import apply_lut_array, apply_lut_uint

RNG = np.random.default_rng(7)
TABLE = RNG.uniform(-0.2, 1.2, (9**3, 3)).astype(np.float32)  # overshoots both ends, as network tables do
SWAP = identity_lattice(2)[:, ::-1].copy()  # red <-> blue


def _constant(value: float, domain=(0.0, 1.0)) -> CubeLUT:
    return CubeLUT(np.full((8, 3), value, np.float32), 2, "", (domain[0],) * 3, (domain[1],) * 3)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_unit_domain_integers_get_the_enhance_kernel_pixels(dtype):
    peak = np.iinfo(dtype).max
    img = RNG.integers(0, peak + 1, (64, 96, 3)).astype(dtype)
    out = apply_cube(img, CubeLUT(TABLE, 9))
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, apply_lut_uint(img, TABLE, 9))


def test_unit_domain_pil_image_stays_pil():
    img = RNG.integers(0, 256, (16, 24, 3)).astype(np.uint8)
    out = apply_cube(Image.fromarray(img), CubeLUT(SWAP, 2))
    assert isinstance(out, Image.Image) and out.mode == "RGB" and out.size == (24, 16)
    np.testing.assert_array_equal(np.asarray(out), img[..., ::-1])


def test_other_domain_pil_image_stays_pil():
    img = RNG.integers(0, 256, (16, 24, 3)).astype(np.uint8)
    cube = CubeLUT(SWAP, 2, "", (0.0, 0.0, 0.0), (2.0, 2.0, 2.0))
    out = apply_cube(Image.fromarray(img), cube)
    assert isinstance(out, Image.Image) and out.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(out), apply_cube(img, cube))


def test_pil_images_other_than_rgb_are_refused():
    with pytest.raises(InvalidArgumentError):
        apply_cube(Image.new("L", (4, 4)), CubeLUT(SWAP, 2))


@pytest.mark.parametrize("shape", [(8, 8), (8, 8, 4), (8, 8, 1)])
def test_arrays_other_than_rgb_are_refused(shape):
    with pytest.raises(InvalidArgumentError):
        apply_cube(np.zeros(shape, np.uint8), CubeLUT(SWAP, 2))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_images_are_interpolated_and_clipped_to_0_1(dtype):
    img = RNG.uniform(0, 1, (32, 48, 3)).astype(dtype)
    out = apply_cube(img, CubeLUT(TABLE, 9))
    assert out.dtype == dtype and out.shape == img.shape
    want = np.clip(apply_lut_array(img, TABLE, 9), 0.0, 1.0)
    np.testing.assert_allclose(out, want, atol=1e-6)
    assert out.min() == 0.0 and out.max() == 1.0  # the table overshoots both ends


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("value,want", [(1.5, 1.0), (1.0, 1.0), (-0.5, 0.0), (0.0, 0.0)])
def test_outputs_are_clipped_to_the_dtype_range(dtype, value, want):
    peak = np.iinfo(dtype).max if dtype != np.float32 else 1.0
    img = np.zeros((4, 4, 3), dtype)
    img[0, 0] = peak
    for domain in ((0.0, 1.0), (0.0, 2.0)):
        out = apply_cube(img, _constant(value, domain))
        assert out.dtype == dtype
        assert np.all(out == want * peak), (domain, out.ravel()[:3])


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_domain_is_mapped_onto_the_table(dtype):
    peak = float(np.iinfo(dtype).max) if dtype != np.float32 else 1.0
    # identity table over [0.5, 2.5]: an input x comes out as (x - 0.5) / 2, clipped to [0, 1]
    levels = np.array([0.0, 0.5, 0.6, 1.0]) * peak
    img = np.repeat(levels.reshape(1, -1, 1), 3, axis=2).astype(dtype)
    cube = CubeLUT(identity_lattice(5), 5, "", (0.5, 0.5, 0.5), (2.5, 2.5, 2.5))
    out = apply_cube(img, cube).astype(np.float64)
    want = np.clip((levels / peak - 0.5) / 2.0, 0, 1) * peak
    if dtype != np.float32:
        want = np.floor(want + 0.5)  # rounded half up, as csrnet rounds everywhere
    np.testing.assert_allclose(out[0, :, 0], want, atol=1e-6 * peak)


def test_integers_round_half_up():
    # identity over [0, 2]: level x becomes x / 2; odd levels are halves and round up
    img = np.arange(8, dtype=np.uint8).reshape(1, 8, 1).repeat(3, axis=2)
    out = apply_cube(img, CubeLUT(identity_lattice(2), 2, "", (0.0,) * 3, (2.0,) * 3))
    assert out[0, :, 0].tolist() == [0, 1, 1, 2, 2, 3, 3, 4]
