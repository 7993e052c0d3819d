"""Strength on the default (lattice) path, on a photo large enough for the lattice: ``enhance``,
``bake_lut`` and ``csrnet lut -s``. (The web app's strength is tested in tests/e2e/test_web.py.)

Each result at strength 0.5 and 2 is compared with exact mode at the same strength (measured
61-68 dB) and must be far from the full-strength result (20-26 dB), so a fast path that bakes at
full strength fails."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import csrnet
from csrnet.arch.csrnet import CSRNet, EXACT_BELOW_PIXELS
from csrnet.cli import main
from csrnet.io.cube import read_cube
from csrnet.kernels.lattice import identity_lattice
from csrnet.kernels.lut import apply_lut_uint

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255**2 / mse))


@pytest.fixture(scope="module")
def large() -> np.ndarray:
    """The bundled underexposed example enlarged to 1.09 MP: over the exact-mode threshold."""
    im = Image.open(EXAMPLES / "cathedral_underexposed.jpg").convert("RGB")
    x = np.asarray(im.resize((1280, 854), Image.Resampling.BICUBIC))
    assert x.shape[0] * x.shape[1] >= EXACT_BELOW_PIXELS
    return x


@pytest.fixture(scope="module")
def model():
    return csrnet.load_model("auto")


@pytest.fixture(scope="module")
def exact(large, model):
    """Exact mode's result per strength (the reference the fast path must match)."""
    return {s: csrnet.enhance(large, model, strength=s, exact=True) for s in (0.5, 1.0, 2.0)}


@pytest.mark.parametrize("strength", [0.5, 2.0])
def test_enhance_default_path_applies_strength(large, model, exact, monkeypatch, strength):
    baked = []
    real_bake = CSRNet.bake

    def spy(self, state, size, s, shape, threads):
        baked.append(s)
        return real_bake(self, state, size, s, shape, threads)

    monkeypatch.setattr(CSRNet, "bake", spy)
    out = csrnet.enhance(large, model, strength=strength)
    assert baked == [strength]  # the lattice path ran, asked for this strength
    assert psnr(out, exact[strength]) >= 58  # measured 61.2 (s=2) / 67.6 (s=0.5) dB
    assert psnr(out, exact[1.0]) < 30  # measured 20.3 / 26.4 dB: not the full-strength look


def test_bake_lut_folds_strength_into_the_table(large, model):
    """The fitted table is linear in strength: identity + s * (full table - identity)."""
    full = csrnet.bake_lut(large, model, 33)
    half = csrnet.bake_lut(large, model, 33, strength=0.5)
    grid = identity_lattice(33)
    np.testing.assert_allclose(half, grid + 0.5 * (full - grid), rtol=0, atol=1e-5)  # measured 1.2e-7
    assert np.abs(half - full).max() > 0.1


def test_bake_lut_half_strength_applied_matches_exact_half(large, model, exact):
    table = np.clip(csrnet.bake_lut(large, model, 33, strength=0.5), 0, 1)
    out = apply_lut_uint(large, table, 33)
    assert psnr(out, exact[0.5]) >= 60  # measured 65.4 dB
    assert psnr(out, exact[1.0]) < 30


def test_lut_command_strength_is_in_the_cube(large, exact, tmp_path):
    Image.fromarray(large).save(tmp_path / "big.png")
    res = CliRunner().invoke(main, ["lut", str(tmp_path / "big.png"), "-o", str(tmp_path / "half.cube"), "-s", "0.5"])
    assert res.exit_code == 0, res.output
    cube = read_cube(tmp_path / "half.cube")
    assert cube.size == 33
    out = apply_lut_uint(large, cube.table, cube.size)
    assert psnr(out, exact[0.5]) >= 60  # measured 65.4 dB (the same table, clipped)
    assert psnr(out, exact[1.0]) < 30
