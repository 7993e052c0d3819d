"""Fast vs paper training recipe on the same data and CPU budget; and leave-some-out fine-tuning.

Part 1 (recipes): the 18 shared FiveK pairs are split 12 train / 6 held out (seeded).
Each recipe trains from the same start (from scratch, seed 0; and from the released
checkpoint with ``freeze="base"``) for the same budget of process CPU time. Each run's
length is planned from a short calibration so that its whole lr schedule fits the budget
(the paper recipe's milestones scale with it). Printed: held-out PSNR (8-bit RGB, mean over
images) reached after each CPU minute.

Part 2 (leave-some-out): 3 folds over the 18 pairs (12 train / 6 held out); the released
checkpoint's conditional branch is fine-tuned with the fast recipe's defaults
(``--init ... --freeze base``). Printed: held-out PSNR of identity, the released
checkpoint as-is, and the fine-tuned model, with the wall and CPU time of each fine-tune.

One torch thread is used throughout: CPU time is then a fair measure on a shared machine
(two threads on a busy 2-core box spend most of their time spinning). Run:

    python bench/train_recipes.py [--budget-scratch 180] [--budget-finetune 60] [--skip-recipes] [--skip-folds]

Measured (2-core shared VM, 1 thread, torch 2.13 CPU; held-out PSNR in dB, identity 16.03):

    start                  recipe CPU-s/step steps  t=0  0.5min 1min  2min  3min  final
    scratch                fast   0.117      1226   7.28 22.06  20.88 23.02 21.91 21.63
    scratch                paper  0.767       222   7.28  7.45   8.38 10.46 10.90 10.90
    released, freeze base  fast   0.134       348  16.80 26.15  23.81             23.63
    released, freeze base  paper  0.705        71  16.82 22.45  22.22             22.24

    leave-some-out (3 folds 12/6, released checkpoint, --freeze base, fast defaults = 150 steps):
    identity 17.52, released as-is 16.70, fine-tuned 22.14 (34 CPU-s a fold); 300 steps: 21.66.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import csrnet
from csrnet.training.data import find_pairs, load_pairs, split_pairs
from csrnet.training.train import psnr8, train

from common import FIVEK_PAIRS, RELEASED, link_pairs


def _rows(run: Path) -> list[dict[str, str]]:
    with open(run / "log.csv", newline="") as f:
        return list(csv.DictReader(f))


def _calibrate(recipe: str, kw: dict, tmp: Path) -> float:
    """CPU seconds per step of ``recipe`` (median of a few steps after warm-up)."""
    run = tmp / f"calib_{recipe}_{kw.get('freeze')}"
    train(kw["pairs"], run, recipe=recipe, iters=12, progress=False, val_every=10**9, init=kw.get("init"), freeze=kw.get("freeze"))
    cpu = [float(r["cpu_seconds"]) for r in _rows(run) if r["loss"]]
    shutil.rmtree(run)
    return float(np.median(np.diff(cpu[2:])))


def recipes(tmp: Path, budget_scratch: float, budget_finetune: float) -> None:
    pairs = find_pairs(FIVEK_PAIRS)
    tr, va = split_pairs(pairs, 1 / 3, seed=0)
    train_dir, val_dir = link_pairs(tr, tmp / "train"), link_pairs(va, tmp / "val")
    starts = [("scratch", None, None, budget_scratch), ("released, freeze base", str(RELEASED), "base", budget_finetune)]
    print(f"\n== Fast vs paper recipe: {len(tr)} train / {len(va)} held-out shared FiveK pairs, 1 thread ==")
    header = f"{'start':<22} {'recipe':<6} {'s/step':>6} {'steps':>6} {'t=0':>6}" + "".join(f" {f'{m:g}min':>6}" for m in (0.5, 1, 2, 3)) + f" {'final':>6}"
    print(header)
    for label, init, freeze, budget in starts:
        for recipe in ("fast", "paper"):
            kw = dict(pairs=train_dir, init=init, freeze=freeze)
            spi = _calibrate(recipe, kw, tmp)
            steps = max(10, int(budget / spi * 0.95))
            run = tmp / f"{recipe}_{freeze}"
            val_every = max(1, steps // 24)
            t = time.perf_counter()
            train(train_dir, run, val_dir=val_dir, recipe=recipe, iters=steps, init=init, freeze=freeze, progress=False, val_every=val_every,
                  max_cpu_seconds=budget * 1.05)
            rows = [r for r in _rows(run) if r["val_psnr"]]
            cpu = np.array([float(r["cpu_seconds"]) for r in rows])
            val = np.array([float(r["val_psnr"]) for r in rows])

            def at(minutes: float) -> str:
                ok = cpu <= minutes * 60 + 1e-9
                return f"{val[ok][-1]:6.2f}" if minutes * 60 <= budget * 1.05 and ok.any() else f"{'':>6}"

            line = f"{label:<22} {recipe:<6} {spi:6.3f} {int(rows[-1]['iter']):6d} {val[0]:6.2f}" + "".join(f" {at(m)}" for m in (0.5, 1, 2, 3))
            print(line + f" {val[-1]:6.2f}   (identity {float(rows[0]['val_identity_psnr']):.2f} dB; wall {time.perf_counter() - t:.0f} s)", flush=True)


def folds(tmp: Path, k: int = 3, iters: int | None = None, lr: float | None = None) -> None:
    pairs = find_pairs(FIVEK_PAIRS)
    order = np.random.default_rng(0).permutation(len(pairs))
    released = csrnet.load_model(RELEASED)
    how = "fast recipe defaults" if iters is None and lr is None else f"fast recipe, iters={iters or 'default'}, lr={lr or 'default'}"
    print(f"\n== Leave-some-out: fine-tune the released checkpoint's conditional branch ({how}, --freeze base), {k} folds ==")
    print(f"{'fold':<5} {'train':>5} {'held':>5} {'identity':>9} {'released':>9} {'fine-tuned':>10} {'wall s':>7} {'CPU s':>6}")
    totals = []
    for f in range(k):
        held = [pairs[i] for i in order[f::k]]
        rest = [pairs[i] for i in order if pairs[i] not in held]
        root = tmp / f"fold{f}"
        train_dir, val_dir = link_pairs(rest, root / "train"), link_pairs(held, root / "val")
        images = load_pairs(held)
        ident = np.mean([psnr8(x, y) for x, y in images])
        rel = np.mean([psnr8(csrnet.enhance(x, released), y) for x, y in images])
        t, c = time.perf_counter(), time.process_time()
        weights = train(train_dir, root / "run", val_dir=val_dir, init=str(RELEASED), freeze="base", progress=False, iters=iters, lr=lr)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        tuned = csrnet.load_model(weights)
        ft = np.mean([psnr8(csrnet.enhance(x, tuned), y) for x, y in images])  # the torch-free engine, as users run it
        totals.append((ident, rel, ft, wall, cpu))
        print(f"{f:<5} {len(rest):5d} {len(held):5d} {ident:9.2f} {rel:9.2f} {ft:10.2f} {wall:7.0f} {cpu:6.0f}", flush=True)
    m = np.mean(totals, axis=0)
    print(f"{'mean':<5} {'':>5} {'':>5} {m[0]:9.2f} {m[1]:9.2f} {m[2]:10.2f} {m[3]:7.0f} {m[4]:6.0f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget-scratch", type=float, default=180.0, help="CPU seconds per run from scratch")
    ap.add_argument("--budget-finetune", type=float, default=60.0, help="CPU seconds per run from the released checkpoint")
    ap.add_argument("--skip-recipes", action="store_true")
    ap.add_argument("--skip-folds", action="store_true")
    ap.add_argument("--ft-iters", type=int, default=None, help="fine-tune steps in the folds (default: the recipe's)")
    ap.add_argument("--ft-lr", type=float, default=None, help="fine-tune lr in the folds (default: the recipe's)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as d:
        if not args.skip_recipes:
            recipes(Path(d) / "recipes", args.budget_scratch, args.budget_finetune)
        if not args.skip_folds:
            folds(Path(d) / "folds", iters=args.ft_iters, lr=args.ft_lr)


if __name__ == "__main__":
    main()
