"""Where on exposure faults a model falls short: bench/default_model.py's exposure set (held-out
photos, 3 faults of uniform ±2 EV each, seed 2026 + 1) split by the fault's EV (issue 18).

The second table splits each model's error in two: how far its output's exposure is off (the
linear-light gain, in EV, that brings the output closest to the original) and what is left after
that gain — the error of the curve's shape (contrast, black point, colour), not of its exposure.

    python bench/exposure_bins.py [--model auto --model exposure ...]   # writes bench/results/exposure_bins.md
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

import csrnet
from common import EXAMPLES, PHOTOS, ROOT, psnr, to8
from csrnet.training.degrade import exposure
from csrnet.training.heldout import load_small, split
from default_model import exposure_set

OUT = ROOT / "bench" / "results" / "exposure_bins.md"
BINS = [(-2.0, -1.0), (-1.0, 0.0), (0.0, 1.0), (1.0, 2.0)]
#: Gains (EV) searched for an output's best exposure: a grid, because the PSNR of a clipped 8-bit
#: image is not smooth enough in the gain for a bracketing search to be worth its code.
GAINS = np.linspace(-1.5, 1.5, 61)


def best_gain(out: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    """(EV, PSNR): the linear-light gain within ±1.5 EV that brings ``out`` (uint8) closest to ``ref``
    (uint8), and the PSNR it leaves (capped at 60 dB). EV > 0: the output is too dark by that much."""
    o = out.astype(np.float32) / 255
    scores = [min(psnr(to8(exposure(o, float(g))), ref), 60.0) for g in GAINS]
    i = int(np.argmax(scores))
    return float(GAINS[i]), scores[i]


def bin_means(table: np.ndarray) -> list[tuple[str, int, np.ndarray]]:
    """(label, count, column means) per EV bin of ``table`` (first column: the fault's EV), then "all"."""
    rows = [(f"[{lo:+.0f}, {hi:+.0f})", table[(table[:, 0] >= lo) & (table[:, 0] < hi)]) for lo, hi in BINS]
    return [(label, len(part), part[:, 1:].mean(0)) for label, part in rows + [("all", table)]]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", action="append", default=None, help="model name or weights file; repeatable")
    ap.add_argument("--seed", type=int, default=2026, help="bench/default_model.py's seed (its exposure set uses seed + 1)")
    args = ap.parse_args()
    names = args.model or ["auto", "exposure"]
    models = [csrnet.load_model(n) for n in names]
    _, held = split(sorted(PHOTOS.glob("*.jpg")), EXAMPLES)
    rows, split_rows = [], []
    for x, y, ev in exposure_set([load_small(p) for p in held], args.seed):
        outs = [csrnet.enhance(x, m) for m in models]
        rows.append([ev, min(psnr(x, y), 60.0), *[min(psnr(o, y), 60.0) for o in outs]])
        split_rows.append([ev, *[v for o in outs for v in best_gain(o, y)]])
    lines = ["| fault (EV) | photos | identity | " + " | ".join(f"`{n}`" for n in names) + " |", "|" + "---|" * (3 + len(names))]
    lines += [f"| {label} | {n} | " + " | ".join(f"{v:.2f}" for v in means) + " |" for label, n, means in bin_means(np.array(rows))]
    lines += ["", "Exposure or shape? Per model: the gain (EV) that brings its output closest to the original",
              "(mean; > 0: the output is too dark), and the PSNR left after that gain (the curve's shape).", "",
              "| fault (EV) | " + " | ".join(f"`{n}` EV off | `{n}` after gain" for n in names) + " |",
              "|" + "---|" * (1 + 2 * len(names))]
    lines += [f"| {label} | " + " | ".join(f"{m[0]:+.2f} | {m[1]:.2f}" for m in means.reshape(-1, 2)) + " |"
              for label, _, means in bin_means(np.array(split_rows))]
    text = "\n".join(["# Exposure faults by EV (bench/exposure_bins.py)", "",
                      f"`python bench/exposure_bins.py {' '.join(sys.argv[1:])}`".replace(" `", "`"),
                      "(8-bit PSNR to the original, capped at 60 dB; negative EV: too dark)", "", *lines]) + "\n"
    print(text)
    OUT.write_text(text)


if __name__ == "__main__":
    main()
