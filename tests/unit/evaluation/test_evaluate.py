"""csrnet.evaluate: scores per image and mean, identity baseline, report files holding the returned numbers."""

import csv
import math

import numpy as np
import pytest
from PIL import Image

from csrnet.evaluation import metrics as M
from csrnet.errors import CsrnetError
from csrnet.evaluation.evaluate import IDENTITY, evaluate, read_csv
from csrnet.weights import Model, expected_shapes

from tests.conftest import PAIRS

GREY = 0.5


def _grey_model(name: str = "grey") -> Model:
    """A CSRNet whose weights are all zero except the last shift bias: every pixel -> (0.5, 0.5, 0.5)."""
    tensors = {k: np.zeros(s, np.float32) for k, s in expected_shapes("csrnet").items()}
    tensors["cond_shift3.bias"][:] = GREY
    return Model(tensors, {"arch": "csrnet", "condition_size": 64}, name=name)


def _write_pairs(root, n=2, h=40, w=56):
    rng = np.random.default_rng(0)
    (root / "input").mkdir(parents=True)
    (root / "target").mkdir()
    pairs = {}
    for i in range(n):
        x = rng.integers(0, 160, (h, w, 3), dtype=np.uint8)
        y = np.clip(x.astype(int) * 3 // 2 + 10, 0, 255).astype(np.uint8)
        Image.fromarray(x).save(root / "input" / f"im{i}.png")
        Image.fromarray(y).save(root / "target" / f"im{i}.png")
        pairs[f"im{i}"] = (x, y)
    return pairs


def _check_report_matches(result, report_dir):
    """Every number in the CSV and the Markdown table is the one in ``result``."""
    table = read_csv(report_dir / "metrics.csv")
    assert len(table) == len(result.rows) + len(result.models)
    for r in result.rows:
        for k, v in r.values().items():
            assert table[(r.model, r.image)][k] == pytest.approx(v, rel=1e-9)
    md = (report_dir / "metrics.md").read_text(encoding="utf-8")
    assert md == result.to_markdown()
    for model in result.models:
        mean = result.mean(model)
        for k, v in mean.items():
            assert table[(model, "mean")][k] == pytest.approx(v, rel=1e-9)
        row = next(line for line in md.splitlines() if line.startswith(f"| {model} |"))
        assert f"{mean['psnr']:.2f}" in row and f"{mean['ssim']:.4f}" in row and f"{mean['delta_e2000']:.2f}" in row


def test_evaluate_synthetic_pairs_identity_and_model(tmp_path):
    pairs = _write_pairs(tmp_path / "data")
    result = evaluate(tmp_path / "data", [_grey_model()], tmp_path / "report", exact=True, progress=False)
    assert result.models == [IDENTITY, "grey"] and result.images == ["im0", "im1"]
    grey = np.full((40, 56, 3), 128, np.uint8)  # 0.5 quantised to 8 bit
    for name, (x, y) in pairs.items():
        ident = next(r for r in result.scores(IDENTITY) if r.image == name)
        assert ident.values() == pytest.approx(M.compute_all(x, y))
        out = next(r for r in result.scores("grey") if r.image == name)
        assert out.psnr == pytest.approx(M.psnr(grey, y)) and out.delta_e76 == pytest.approx(M.delta_e76(grey, y))
    assert result.mean(IDENTITY)["psnr"] == pytest.approx(np.mean([M.psnr(x, y) for x, y in pairs.values()]))
    assert set(result.files) == {"csv", "markdown", "contact_sheet"}
    _check_report_matches(result, tmp_path / "report")
    sheet = Image.open(result.files["contact_sheet"])
    assert sheet.mode == "RGB" and sheet.width > 3 * 56 and sheet.height > 2 * 40


def test_evaluate_identity_only_without_report(tmp_path):
    _write_pairs(tmp_path / "data", n=1)
    result = evaluate(tmp_path / "data", [], progress=False)
    assert result.models == [IDENTITY] and len(result.rows) == 1 and result.files == {}
    assert "| identity |" in result.to_markdown()


def test_evaluate_reports_bad_input(tmp_path):
    with pytest.raises(CsrnetError, match="no such folder"):
        evaluate(tmp_path / "missing", [], progress=False)
    _write_pairs(tmp_path / "data", n=1)
    with pytest.raises(CsrnetError):
        evaluate(tmp_path / "data", [str(tmp_path / "nope.safetensors")], progress=False)


def test_same_model_twice_gets_distinct_columns(tmp_path):
    _write_pairs(tmp_path / "data", n=1, h=24, w=24)
    result = evaluate(tmp_path / "data", [_grey_model(), _grey_model()], exact=True, progress=False)
    assert result.models == [IDENTITY, "grey", "grey#2"]


def test_evaluate_released_checkpoint_on_shared_pairs(shared, ref_model, tmp_path):
    names = ["a4514", "a4980"]  # one dpe512 (341x512, SSIM f = 1), one 512x512 crop (f = 2)
    (tmp_path / "list.txt").write_text("\n".join(names) + "\n")
    result = evaluate(PAIRS, [ref_model], tmp_path / "rep", list_file=tmp_path / "list.txt", exact=True, progress=False)
    assert result.images == names and result.models == [IDENTITY, "csrnet_official_eccv2020"]
    # the identity row reproduces the input-vs-target PSNR published in the shared MANIFEST
    with open(PAIRS / "MANIFEST.csv", newline="") as f:
        manifest = {row["id"]: float(row["psnr_input_vs_target_db"]) for row in csv.DictReader(f)}
    for r in result.scores(IDENTITY):
        assert r.psnr == pytest.approx(manifest[r.image], abs=0.006)
    for r in result.rows:
        assert all(math.isfinite(v) for v in r.values().values())
        assert 0 < r.ssim <= 1 and 0 < r.ssim_matlab <= 1 and r.delta_e76 > 0 and r.delta_e2000 > 0
    _check_report_matches(result, tmp_path / "rep")
