"""`csrnet train` and `csrnet evaluate` from the command line (issue 19, "Never run"): --val-fraction
holds out the seeded share of the pairs, --freeze condition leaves the condition branch's weights
untouched and trains the base network, TensorBoard gets the scalars log.csv has; evaluate prints the
PSNR/SSIM/ΔE that computing them on the same data gives.

A tiny paired folder (input/ + target/, small crops of the repository's example photos, each target
a different global edit) keeps a few training steps to seconds.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import csrnet
from csrnet.cli import main
from tests.conftest import need_module

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NAMES = ["gcompris_farm-owl.jpg", "gcompris_animal-giraffe.jpg", "cathedral_underexposed.jpg", "gcompris_monument-berlin-cathedral.jpg"]
BASE = ("conv1.", "conv2.", "conv3.")  # the per-pixel base network; everything else is the conditional branch


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> Path:
    """4 pairs, 96x64; targets brightened by different gammas, so every pair has its own identity PSNR."""
    root = tmp_path_factory.mktemp("pairs")
    (root / "input").mkdir()
    (root / "target").mkdir()
    for i, (name, gamma) in enumerate(zip(NAMES, (0.55, 0.7, 0.8, 0.9))):
        x = np.asarray(Image.open(EXAMPLES / name).convert("RGB").resize((96, 64)), np.float64) / 255
        y = np.clip(np.round(255 * x**gamma * np.array([1.0, 0.97, 0.92])), 0, 255).astype(np.uint8)
        Image.fromarray(np.round(255 * x).astype(np.uint8)).save(root / "input" / f"p{i}.png")
        Image.fromarray(y).save(root / "target" / f"p{i}.png")
    return root


def psnr8(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255**2 / mse))


def load(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def cli(*args):
    """The command in this process (torch is imported already; a subprocess would import it again)."""
    r = CliRunner().invoke(main, [str(a) for a in args])
    assert r.exception is None or isinstance(r.exception, SystemExit), r.output
    return r


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM as documented (Gaussian 11x11 window, sigma 1.5, population statistics, per RGB channel, the
    5-px border left out), written out with scipy's Gaussian filter (not csrnet's code)."""
    from scipy.ndimage import gaussian_filter

    def blur(v):
        return gaussian_filter(v, 1.5, truncate=3.5, mode="reflect")  # radius int(3.5 * 1.5 + 0.5) = 5

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    values = []
    for ch in range(3):
        x, y = a[..., ch].astype(np.float64), b[..., ch].astype(np.float64)
        mx, my = blur(x), blur(y)
        vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
        s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
        values.append(s[5:-5, 5:-5].mean())
    return float(np.mean(values))


def lab(u8: np.ndarray) -> np.ndarray:
    """8-bit sRGB -> CIELAB (D65, 2°), written out from the sRGB and CIE definitions (not csrnet's code)."""
    c = u8.astype(np.float64) / 255
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]])
    t = (lin @ m.T) / np.array([0.95047, 1.0, 1.08883])
    f = np.where(t > (6 / 29) ** 3, np.cbrt(t), t / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


@pytest.mark.torch  # `csrnet train` imports torch
def test_train_val_fraction_freeze_condition_and_tensorboard(pairs, tmp_path):
    need_module("torch")
    need_module("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from csrnet.training.data import find_pairs, split_pairs

    run = tmp_path / "run"
    iters = 6
    r = cli("train", "--pairs", pairs, "--out", run, "--init", "auto", "--freeze", "condition",
            "--val-fraction", "0.5", "--iters", iters, "--seed", 3, "--threads", 1, "--device", "cpu")
    assert r.exit_code == 0, r.output
    weights = run / "model.safetensors"
    assert r.stdout.strip().splitlines()[-1] == str(weights)

    # --val-fraction 0.5: 2 of the 4 pairs held out (the seeded split), never trained on
    train_set, val_set = split_pairs(find_pairs(pairs), 0.5, 3)
    assert len(train_set) == len(val_set) == 2
    model = csrnet.load_model(weights)
    assert model.meta["data"]["train_count"] == 2 and model.meta["data"]["val_count"] == 2
    identity = {p.name: psnr8(load(p.input), load(p.target)) for p in train_set + val_set}
    assert len({round(v, 2) for v in identity.values()}) == 4  # the split is visible in the identity PSNRs
    printed = dict(re.findall(r"^(val|train) PSNR: [\d.]+ dB \(identity ([\d.]+) dB\)$", r.stderr, re.MULTILINE))
    assert float(printed["val"]) == pytest.approx(np.mean([identity[p.name] for p in val_set]), abs=0.006)
    assert float(printed["train"]) == pytest.approx(np.mean([identity[p.name] for p in train_set]), abs=0.006)
    import torch

    ckpt = torch.load(run / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
    assert list(ckpt["config"]["train_names"]) == [p.name for p in train_set]

    # --freeze condition: the conditional branch is auto's, bit for bit; the base network moved
    auto = csrnet.load_model("auto")
    assert set(model.tensors) == set(auto.tensors)
    for key, value in model.tensors.items():
        if key.startswith(BASE):
            assert np.abs(value - auto.tensors[key]).max() > 1e-6, f"{key} did not train"
        else:
            assert np.array_equal(value, auto.tensors[key]), f"{key} changed although frozen"
    assert model.meta["training"]["freeze"] == "condition" and model.meta["training"]["iters"] == iters

    # TensorBoard: event files under tb/ holding the scalars log.csv has
    assert list((run / "tb").glob("events.out.tfevents.*"))
    acc = EventAccumulator(str(run / "tb"))
    acc.Reload()
    assert {"loss", "lr", "val_psnr", "val_identity_psnr"} <= set(acc.Tags()["scalars"])
    with open(run / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for tag in ("loss", "lr", "val_psnr"):
        logged = {int(row["iter"]): float(row[tag]) for row in rows if row[tag]}
        events = {e.step: e.value for e in acc.Scalars(tag)}
        assert sorted(events) == sorted(logged), tag
        assert all(events[k] == pytest.approx(v, rel=1e-5) for k, v in logged.items()), tag
    assert sorted(e.step for e in acc.Scalars("loss")) == list(range(1, iters + 1))
    assert {0, iters} <= {e.step for e in acc.Scalars("val_psnr")}  # before training and at the end


def test_evaluate_prints_the_metrics_of_the_same_data(pairs, tmp_path):
    from csrnet.evaluation import metrics

    report = tmp_path / "report"
    r = cli("evaluate", "--pairs", pairs, "-m", "exposure", "--report", report)
    assert r.exit_code == 0, r.output

    want: dict[str, dict[str, list[float]]] = {"identity": {}, "exposure": {}}
    per_image_psnr = {}
    for p in sorted((pairs / "input").iterdir()):
        x, y = load(p), load(pairs / "target" / p.name)
        for label, out in (("identity", x), ("exposure", csrnet.enhance(x, "exposure"))):
            scores = {
                "psnr": psnr8(out, y),  # by hand
                "ssim": ssim(out, y),  # by hand
                "ssim_matlab": metrics.ssim_matlab(out, y),
                "delta_e76": float(np.linalg.norm(lab(out) - lab(y), axis=-1).mean()),  # by hand
                "delta_e2000": metrics.delta_e2000(out, y),
            }
            for k, v in scores.items():
                want[label].setdefault(k, []).append(v)
            per_image_psnr[(label, p.stem)] = scores["psnr"]
    means = {label: {k: float(np.mean(v)) for k, v in d.items()} for label, d in want.items()}
    assert means["exposure"]["psnr"] != pytest.approx(means["identity"]["psnr"], abs=0.05)

    # the mean table on stdout: | model | PSNR | SSIM | SSIM 3D-LUT | ΔE76 | ΔE2000 |
    table = {}
    for line in r.stdout.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 6 and cells[0] in ("identity", "exposure"):
            table[cells[0]] = dict(zip(("psnr", "ssim", "ssim_matlab", "delta_e76", "delta_e2000"), map(float, cells[1:])))
    assert set(table) == {"identity", "exposure"}, r.stdout
    for label, printed_means in table.items():
        for k, printed in printed_means.items():
            half_unit = 0.00005 if k.startswith("ssim") else 0.005
            assert printed == pytest.approx(means[label][k], abs=half_unit + 1e-4), (label, k)
    # the per-image PSNR table
    for line in r.stdout.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 3 and re.fullmatch(r"p\d", cells[0]):
            assert float(cells[1]) == pytest.approx(per_image_psnr[("identity", cells[0])], abs=0.005)
            assert float(cells[2]) == pytest.approx(per_image_psnr[("exposure", cells[0])], abs=0.005)

    # metrics.csv: the same values to 10 significant digits
    from csrnet.evaluation.evaluate import read_csv

    rows = read_csv(report / "metrics.csv")
    for label in ("identity", "exposure"):
        for k in ("psnr", "ssim", "ssim_matlab", "delta_e2000"):
            assert rows[(label, "mean")][k] == pytest.approx(means[label][k], rel=1e-8), (label, k)
        assert rows[(label, "mean")]["delta_e76"] == pytest.approx(means[label]["delta_e76"], rel=1e-5), label
    assert (report / "contact_sheet.png").is_file() and "metrics.csv" in r.stderr
