"""How camera renditions differ from finished photos, measured on the shared FiveK pairs, and the
training sampler fitted to it (issue 18).

    python bench/fivek_statistics.py            # measure, fit, print tables; writes bench/results/fivek_statistics.md

1. Each of the 18 FiveK pairs (input rendition -> expert C): exposure, contrast, saturation and
   white-balance gains and the input's black/white points (csrnet.training.rendition.pair_statistics).
2. The same statistics for the bundled photos (finished photos, the training targets) against
   themselves are all neutral; their own tone statistics are compared with the FiveK targets'.
3. The sampler: csrnet.training.rendition.camera_rendition's distribution is fitted by moment
   matching — the mean and standard deviation of each statistic over simulated pairs (training
   photos -> sampled renditions, fixed random numbers) against the FiveK pairs' — with Nelder–Mead.
   The fitted numbers go into csrnet.training.rendition.FIVEK_FIT (by hand, from this output).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

from common import ROOT, SHARED
from csrnet.training.data import find_pairs, read_rgb
from csrnet.training.heldout import load_small, split
from csrnet.training.rendition import FIVEK_FIT, STATISTICS, Rendition, camera_rendition, pair_statistics, photo_statistics, set_black_point

PAIRS = SHARED / "data" / "fivek_pairs"
PHOTOS = SHARED / "data" / "photos"
OUT = ROOT / "bench" / "results" / "fivek_statistics.md"


def fivek_table() -> dict[str, np.ndarray]:
    rows = {}
    for pair in find_pairs(PAIRS):
        rows[pair.input.stem] = pair_statistics(read_rgb(pair.input), read_rgb(pair.target))
    return {k: np.array([r[k] for r in rows.values()]) for k in STATISTICS} | {"_names": np.array(list(rows))}


def simulated(dist: Rendition, photos: list[np.ndarray], draws: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)  # the same seed for every candidate: common random numbers
    rows = [pair_statistics(camera_rendition(p, rng, dist), p) for p in photos for _ in range(draws)]
    return {k: np.array([r[k] for r in rows]) for k in STATISTICS}


def robust(v: np.ndarray) -> tuple[float, float]:
    """(median, spread): the spread is the interquartile range / 1.349 (a standard deviation for normal
    data), so a few photos with extreme grey-world ratios do not steer the fit."""
    q1, q2, q3 = np.percentile(v, [25, 50, 75])
    return float(q2), float((q3 - q1) / 1.349)


def mismatch(sim: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> float:
    """Squared differences of medians and spreads, in units of the FiveK spread."""
    total = 0.0
    for k in STATISTICS:
        (m_s, s_s), (m_r, s_r) = robust(sim[k]), robust(ref[k])
        scale = max(s_r, 0.02)
        total += ((m_s - m_r) / scale) ** 2 + ((s_s - s_r) / scale) ** 2
    return total


def summary_rows(title: str, stats: dict[str, np.ndarray]) -> list[str]:
    return [f"| {title} | {k} | {robust(stats[k])[0]:+.3f} | {robust(stats[k])[1]:.3f} | {stats[k].mean():+.3f} | {stats[k].std():.3f} "
            f"| {stats[k].min():+.3f} | {stats[k].max():+.3f} |" for k in STATISTICS]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=160, help="long edge of the photos used in the fit")
    ap.add_argument("--draws", type=int, default=2, help="renditions per photo in the fit")
    ap.add_argument("--iters", type=int, default=400, help="Nelder-Mead evaluations")
    ap.add_argument("--every", type=int, default=3, help="fit on every n-th training photo")
    ap.add_argument("--black-point", type=float, default=None,
                    help="set the training photos' black point first (rendition.set_black_point: luma 1st percentile "
                         "at most this), as scripts/train_default.py --black-point does to the camera faults' targets")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    t0 = time.perf_counter()
    ref = fivek_table()
    train, _ = split(sorted(PHOTOS.glob("*.jpg")), ROOT / "examples")
    photos = [load_small(p, args.size) for p in train[:: args.every]]
    if args.black_point is not None:
        photos = [set_black_point(p, args.black_point) for p in photos]
    finished = [photo_statistics(p) for p in photos]
    start = FIVEK_FIT
    before = mismatch(simulated(start, photos, args.draws, 0), ref)
    res = minimize(lambda v: mismatch(simulated(Rendition.from_vector(v), photos, args.draws, 0), ref),
                   start.as_vector(), method="Nelder-Mead", options={"maxfev": args.iters, "xatol": 1e-3, "fatol": 1e-3})
    fit = Rendition.from_vector(res.x)
    sim = simulated(fit, photos, args.draws, 1)  # fresh random numbers: not the ones it was fitted on
    lines = [
        "# FiveK renditions vs finished photos, and the fitted training sampler",
        "",
        f"`python bench/fivek_statistics.py --size {args.size} --draws {args.draws} --iters {args.iters} --every {args.every}"
        + (f" --black-point {args.black_point}" if args.black_point is not None else "") + "` "
        f"({time.perf_counter() - t0:.0f} s; {len(ref['ev'])} FiveK pairs, {len(photos)} training photos)",
        "",
        "Statistics (csrnet.training.rendition.STATISTICS): " + "; ".join(f"`{k}`: {v}" for k, v in STATISTICS.items()),
        "",
        "| pairs | statistic | median | spread (IQR/1.349) | mean | sd | min | max |",
        "|---|---|---|---|---|---|---|---|",
        *summary_rows("FiveK input -> expert C", ref),
        *summary_rows("simulated (fitted sampler, fresh draws)", sim),
        "",
        "Per FiveK pair:",
        "",
        "| pair | " + " | ".join(STATISTICS) + " |",
        "|---|" + "---|" * len(STATISTICS),
        *[f"| {n} | " + " | ".join(f"{ref[k][i]:+.2f}" for k in STATISTICS) + " |" for i, n in enumerate(ref["_names"])],
        "",
        "Finished photos (the training targets) against the FiveK experts' versions: "
        f"luma 1st percentile {np.mean([f['p1'] for f in finished]):.3f} (FiveK targets: see per-pair black_in "
        f"minus the gap), 99th {np.mean([f['p99'] for f in finished]):.3f}, chroma {np.mean([f['chroma'] for f in finished]):.3f}.",
        "",
        f"Fit: mismatch {before:.2f} at the start -> {res.fun:.2f} ({res.nfev} evaluations).",
        "",
        "```python",
        "FIVEK_FIT = Rendition(" + ", ".join(f"{name}=({m:.3f}, {s:.3f})" for name, (m, s)
                                           in zip(("ev", "black", "white", "saturation", "warm", "tint"),
                                                  [getattr(fit, f) for f in ("ev", "black", "white", "saturation", "warm", "tint")])) + ")",
        "```",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
