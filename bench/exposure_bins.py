"""Where on exposure faults a model falls short: bench/default_model.py's exposure set (held-out
photos, 3 faults of uniform ±2 EV each, seed 2026 + 1) split by the fault's EV (issue 18).

    python bench/exposure_bins.py [--model auto --model exposure ...]   # writes bench/results/exposure_bins.md
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

import csrnet
from common import EXAMPLES, PHOTOS, ROOT, psnr
from csrnet.training.heldout import load_small, split
from default_model import exposure_set

OUT = ROOT / "bench" / "results" / "exposure_bins.md"
BINS = [(-2.0, -1.0), (-1.0, 0.0), (0.0, 1.0), (1.0, 2.0)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", action="append", default=None, help="model name or weights file; repeatable")
    ap.add_argument("--seed", type=int, default=2026, help="bench/default_model.py's seed (its exposure set uses seed + 1)")
    args = ap.parse_args()
    names = args.model or ["auto", "exposure"]
    models = [csrnet.load_model(n) for n in names]
    _, held = split(sorted(PHOTOS.glob("*.jpg")), EXAMPLES)
    rows = [[ev, min(psnr(x, y), 60.0), *[min(psnr(csrnet.enhance(x, m), y), 60.0) for m in models]]
            for x, y, ev in exposure_set([load_small(p) for p in held], args.seed)]
    table = np.array(rows)
    lines = ["| fault (EV) | photos | identity | " + " | ".join(f"`{n}`" for n in names) + " |", "|" + "---|" * (3 + len(names))]
    for lo, hi in BINS:
        part = table[(table[:, 0] >= lo) & (table[:, 0] < hi)]
        lines.append(f"| [{lo:+.0f}, {hi:+.0f}) | {len(part)} | " + " | ".join(f"{v:.2f}" for v in part[:, 1:].mean(0)) + " |")
    lines.append(f"| all | {len(table)} | " + " | ".join(f"{v:.2f}" for v in table[:, 1:].mean(0)) + " |")
    text = "\n".join(["# Exposure faults by EV (bench/exposure_bins.py)", "",
                      f"`python bench/exposure_bins.py {' '.join(sys.argv[1:])}`".replace(" `", "`"),
                      "(8-bit PSNR to the original, capped at 60 dB; negative EV: too dark)", "", *lines]) + "\n"
    print(text)
    OUT.write_text(text)


if __name__ == "__main__":
    main()
