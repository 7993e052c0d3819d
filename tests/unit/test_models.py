"""The bundled default model: loads without torch, its card matches its weights, it helps held-out photos."""

import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import csrnet
from csrnet.training.degrade import exposure, random_degradation
from csrnet.weights import bundled_dir, sha256_file

from tests.conftest import ROOT

MARGIN = 2.0  # dB; measured 8.0 vs 4.3 dB mean gain at the commit that shipped `exposure`
EXAMPLES = ROOT / "examples"


@pytest.mark.parametrize("name", ["auto", "exposure"])
def test_bundled_and_card_matches_hash(name):
    assert name in csrnet.list_models()
    model = csrnet.load_model(name)
    assert model.arch == "csrnet" and model.num_parameters == 36489
    card = (bundled_dir() / f"{name}.md").read_text()
    digest = re.search(r"sha256\*\*: `([0-9a-f]{64})`", card).group(1)
    assert digest == sha256_file(bundled_dir() / f"{name}.safetensors")
    assert (ROOT / "docs" / f"{name}_before_after.png").exists()
    for key in ("training_data", "training_licenses", "command", "metrics"):
        assert key in model.meta
    metrics = model.meta["metrics"]
    if name == "auto":  # the default leaves good photos alone (issue 4's do-no-harm figure)
        assert metrics["do_no_harm_psnr"] >= 30.0
    else:  # the exposure specialist: +6 dB on held-out exposure faults (it moves clean photos more; see its card)
        assert metrics["heldout_gain_db"] >= 6.0
        assert f"{metrics['mix_restored_psnr']} dB" in card
    assert metrics["heldout_degraded_restored_psnr"] > metrics["heldout_degraded_identity_psnr"]
    assert metrics["fivek_model_psnr"] > metrics["fivek_identity_psnr"] + 2
    assert f"{metrics['do_no_harm_psnr']} dB" in card  # the card shows the measured numbers


def _psnr(a, b):
    return 10 * np.log10(255**2 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def test_improves_held_out_degraded_photos():
    """Exposure faults on the example photos, which were never trained on (scripts/train_default.py
    holds them out), are clearly corrected; random chains of milder faults improve on average."""
    model = csrnet.load_model("auto")
    rng = np.random.default_rng(123)
    exposure_gains, chain_gains = [], []
    for path in sorted(EXAMPLES.glob("gcompris_*.jpg")):
        im = Image.open(path).convert("RGB")
        im.thumbnail((384, 384))
        clean = np.asarray(im)
        for ev in (-1.5, 1.0):
            bad = np.clip(exposure(clean.astype(np.float32) / 255, ev) * 255 + 0.5, 0, 255).astype(np.uint8)
            exposure_gains.append(_psnr(csrnet.enhance(bad, model), clean) - _psnr(bad, clean))
        for _ in range(6):
            bad, _ops = random_degradation(clean.astype(np.float32) / 255, rng)
            bad = np.clip(bad * 255 + 0.5, 0, 255).astype(np.uint8)
            chain_gains.append(_psnr(csrnet.enhance(bad, model), clean) - _psnr(bad, clean))
    assert np.mean(exposure_gains) > 2.0, exposure_gains
    assert np.median(chain_gains) > -3.0, chain_gains  # the weak spot (mild faults get over-corrected), see the card


def test_exposure_model_recovers_more_exposure_than_auto():
    """On held-out example photos put 0.75-1.5 EV off, the exposure specialist lands closer to the
    original than `auto` (which hedges between seven kinds of fault); both beat identity."""
    models = {name: csrnet.load_model(name) for name in ("auto", "exposure")}
    gains: dict[str, list[float]] = {name: [] for name in models}
    for path in sorted(EXAMPLES.glob("gcompris_*.jpg")):
        im = Image.open(path).convert("RGB")
        im.thumbnail((384, 384))
        clean = np.asarray(im)
        for ev in (-1.5, -0.75, 0.75, 1.0):
            bad = np.clip(exposure(clean.astype(np.float32) / 255, ev) * 255 + 0.5, 0, 255).astype(np.uint8)
            for name, model in models.items():
                gains[name].append(_psnr(csrnet.enhance(bad, model), clean) - _psnr(bad, clean))
    assert np.mean(gains["auto"]) > 1.0, gains
    assert np.mean(gains["exposure"]) > np.mean(gains["auto"]) + MARGIN, gains


def test_readme_first_command_runs_offline(tmp_path):
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "csrnet.cli", "enhance", str(EXAMPLES / "cathedral_underexposed.jpg"), "-o", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    result = np.asarray(Image.open(out / "cathedral_underexposed.jpg"), np.float64)
    before = np.asarray(Image.open(EXAMPLES / "cathedral_underexposed.jpg"), np.float64)
    assert result.mean() > before.mean() + 10  # the dark example comes out brighter
    r = subprocess.run([sys.executable, "-m", "csrnet.cli", "models"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("auto")


def test_style_mix_weights_one_zero_equal_first(ref_model):
    auto = csrnet.load_model("auto")
    x = np.asarray(Image.open(EXAMPLES / "cathedral_underexposed.jpg").convert("RGB"))
    for mode in ("lut",):
        mix = csrnet.Blend(((auto, 1.0), (ref_model, 0.0)), mode=mode)
        assert np.array_equal(csrnet.enhance(x, mix), csrnet.enhance(x, auto))
        assert np.array_equal(csrnet.enhance(x, mix, lut_size=33), csrnet.enhance(x, auto, lut_size=33))


def test_models_lists_every_bundled_model_with_a_description():
    from click.testing import CliRunner

    from csrnet.cli import main

    res = CliRunner().invoke(main, ["models"])
    assert res.exit_code == 0, res.output
    rows = [line.split("\t") for line in res.output.splitlines()]
    assert [r[0] for r in rows] == sorted(csrnet.list_models())
    assert all(len(r) == 4 and r[3].strip() for r in rows), rows  # name, arch, parameters, description
