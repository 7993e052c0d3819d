"""Training: a short run learns, resume after SIGKILL equals an uninterrupted run, export loads."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import CHECKPOINT, ROOT, need, need_module
from tests.conftest import PAIRS as SHARED_PAIRS

torch = need_module("torch")

import csrnet  # noqa: E402
from csrnet.errors import CsrnetError  # noqa: E402
from csrnet.testpoint import pause_environ, wait_paused  # noqa: E402
from csrnet.training.train import train  # noqa: E402

PAIRS = ("a4514", "a4553", "a4725")  # three dark FiveK inputs, identity PSNR ~15.5 dB
# Small, fast settings: the condition network sees a 96 px copy, 2 images x 1024 pixels a step.
FAST = dict(condition_size=96, batch=2, pixels=1024, progress=False)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread: fast and stable on a busy 2-core machine (no OpenMP oversubscription)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def few_pairs(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pairs folder of symlinks to three shared FiveK pairs (nothing copied)."""
    src = SHARED_PAIRS
    root = tmp_path_factory.mktemp("pairs")
    for sub in ("input", "target"):
        (root / sub).mkdir()
        for n in PAIRS:
            (root / sub / f"{n}.png").symlink_to(src / sub / f"{n}.png")
    return root


def _log(run: Path) -> list[dict[str, str]]:
    with open(run / "log.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_short_run_lowers_loss_beats_identity_and_exports(few_pairs: Path, tmp_path: Path) -> None:
    weights = train(few_pairs, tmp_path / "run", iters=150, lr=3e-3, seed=0, checkpoint_every=50, **FAST)
    rows = [r for r in _log(tmp_path / "run") if r["loss"]]
    first = np.mean([float(r["loss"]) for r in rows[:10]])
    last = np.mean([float(r["loss"]) for r in rows[-10:]])
    assert last < 0.7 * first, (first, last)

    model = csrnet.load_model(weights)
    m = model.meta
    assert m["metrics"]["train_psnr"] > m["metrics"]["train_identity_psnr"] + 3.0, m["metrics"]
    assert m["condition_size"] == 96 and m["training"]["iters"] == 150 and m["training"]["recipe"] == "fast"
    assert m["data"]["train_count"] == 3 and m["training"]["seed"] == 0

    # The exported file runs in the torch-free engine and beats identity there too.
    from csrnet.training.data import read_rgb
    from csrnet.training.train import psnr8

    x = read_rgb(few_pairs / "input" / f"{PAIRS[0]}.png")
    y = read_rgb(few_pairs / "target" / f"{PAIRS[0]}.png")
    out = csrnet.enhance(x, model)
    assert out.shape == x.shape and out.dtype == np.float32
    assert psnr8(out, y) > psnr8(x, y) + 2.0


@pytest.mark.slow
def test_resume_after_sigkill_equals_uninterrupted(few_pairs: Path, tmp_path: Path) -> None:
    settings = dict(iters=40, seed=3, checkpoint_every=5, lr=2e-3, **FAST)
    full = csrnet.load_model(train(few_pairs, tmp_path / "full", **settings))

    run = tmp_path / "killed"
    code = (
        "import torch; torch.set_num_threads(1); from csrnet.training.train import train; "
        f"train({str(few_pairs)!r}, {str(run)!r}, **{settings!r})"
    )
    # Killed at a known state (csrnet.testpoint): the 3rd checkpoint (iteration 15) written to its
    # temporary but not yet in place, so last.pt holds iteration 10 and a stale temporary lies beside it.
    pauses = tmp_path / "pauses"
    pauses.mkdir()
    env = pause_environ(pauses, "train.written:3", base=dict(os.environ, PYTHONPATH=str(ROOT / "src")))
    proc = subprocess.Popen([sys.executable, "-c", code], env=env)
    try:
        wait_paused(pauses, "train.written:3", timeout=120, alive=lambda: proc.poll() is None)
    finally:
        proc.kill()
        proc.wait()
    ckpt = run / "checkpoints" / "last.pt"
    assert torch.load(ckpt, weights_only=True)["iteration"] == 10
    assert len(list(ckpt.parent.glob(".last.pt.*.tmp"))) == 1  # the 3rd checkpoint, never put in place

    resumed = csrnet.load_model(train(few_pairs, run, resume=True, **settings))
    assert resumed.meta["training"]["iters"] == 40
    for name, t in full.tensors.items():
        np.testing.assert_allclose(resumed.tensors[name], t, rtol=0, atol=1e-6, err_msg=name)
    assert [r["iter"] for r in _log(run)] == [str(i) for i in range(1, 41)]
    assert sorted(p.name for p in ckpt.parent.iterdir() if p.name.startswith(".")) == []  # the stale temporary removed


def test_freeze_base_changes_only_the_conditional_branch(few_pairs: Path, tmp_path: Path) -> None:
    ref = CHECKPOINT
    need(ref.is_file(), f"reference checkpoint absent ({ref})")
    init = csrnet.load_model(ref)
    tuned = csrnet.load_model(train(few_pairs, tmp_path / "ft", init=str(ref), freeze="base", iters=6, **FAST))
    for name, t in init.tensors.items():
        same = np.array_equal(tuned.tensors[name], t)
        assert same == name.startswith(("conv1.", "conv2.", "conv3.")), name
    assert tuned.meta["training"]["freeze"] == "base" and tuned.meta["training"]["init"] == ref.name


def test_refuses_to_overwrite_or_resume_with_other_settings(few_pairs: Path, tmp_path: Path) -> None:
    train(few_pairs, tmp_path / "r", iters=2, **FAST)
    with pytest.raises(CsrnetError, match="holds a checkpoint"):
        train(few_pairs, tmp_path / "r", iters=2, **FAST)
    with pytest.raises(CsrnetError, match="different settings.*seed"):
        train(few_pairs, tmp_path / "r", iters=2, seed=1, resume=True, **FAST)


def test_paper_recipe_schedule_and_bad_data_fail_before_training(few_pairs: Path, tmp_path: Path) -> None:
    from csrnet.training.train import TrainConfig, _lr_factor

    cfg = TrainConfig("csrnet", "paper", 600, 0, None, None, None, 1e-4, 1, 0, ())
    assert [_lr_factor(cfg, i) for i in (0, 99, 100, 250, 599)] == [1.0, 1.0, 0.5, 0.25, 0.03125]
    bad = tmp_path / "bad"
    (bad / "input").mkdir(parents=True)
    (bad / "target").mkdir()
    (bad / "input" / "lonely.png").symlink_to(few_pairs / "input" / f"{PAIRS[0]}.png")
    with pytest.raises(CsrnetError, match="lonely.png: input without target"):
        train(bad, tmp_path / "never", iters=1, **FAST)
    assert not (tmp_path / "never").exists()


def test_paper_recipe_runs_on_whole_images_and_records_their_size(few_pairs: Path, tmp_path: Path) -> None:
    model = csrnet.load_model(train(few_pairs, tmp_path / "p", recipe="paper", iters=2, progress=False))
    assert model.meta["training"]["recipe"] == "paper" and model.meta["training"]["batch"] == 1
    assert model.meta["training"]["lr"] == 1e-4
    assert model.meta["condition_size"] == 512  # the shared pairs' long edge: what the condition net saw


@pytest.mark.slow
def test_csrnet_l_trains_on_pixel_subsets_from_a_csrnet_init(few_pairs: Path, tmp_path: Path) -> None:
    init = train(few_pairs, tmp_path / "g", iters=3, **FAST)
    weights = train(few_pairs, tmp_path / "l", arch="csrnet-l", init=str(init), freeze="base", iters=4, **FAST)
    model = csrnet.load_model(weights)
    base = csrnet.load_model(init)
    assert model.arch == "csrnet-l" and model.meta["training"]["iters"] == 4
    for name in ("conv1.weight", "conv3.bias"):  # frozen base network kept from the CSRNet init
        np.testing.assert_array_equal(model.tensors[name], base.tensors[name])
    assert any(np.abs(v).max() > 0 for k, v in model.tensors.items() if k.startswith("local_net.head"))


def test_csrnet_hist_from_a_csrnet_init_and_fine_tuned_without_naming_its_arch(few_pairs: Path, tmp_path: Path) -> None:
    """A CSRNet initialises csrnet-hist (its branch trains, everything else starts from the init);
    fine-tuning that model without ``arch`` keeps its architecture (as ``csrnet train --init auto``)."""
    init = train(few_pairs, tmp_path / "g", iters=2, **FAST)
    hist = csrnet.load_model(train(few_pairs, tmp_path / "h", arch="csrnet-hist", init=str(init), freeze="base", iters=3, **FAST))
    assert hist.arch == "csrnet-hist"
    assert np.abs(hist.tensors["cond_hist2.weight"]).max() > 0  # started at zero, trained
    np.testing.assert_array_equal(hist.tensors["conv2.weight"], csrnet.load_model(init).tensors["conv2.weight"])
    hist_path = tmp_path / "h" / "model.safetensors"
    tuned = csrnet.load_model(train(few_pairs, tmp_path / "t", init=str(hist_path), iters=2, **FAST))
    assert tuned.arch == "csrnet-hist"
