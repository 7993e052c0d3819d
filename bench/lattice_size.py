"""Lattice size, measured: how close the fast path (a baked lattice) comes to exact mode, and its cost.

    python bench/lattice_size.py --photos              # what bench/results/lattice_size.md holds (~6 min on 2 busy cores)
    python bench/lattice_size.py                       # the README's set only: 9 golden + 18 FiveK inputs + a 6 MP mosaic
    python bench/lattice_size.py --sizes 33 49 65 --sampled 65 --no-write

Reproduces two README claims ("Why it is fast"): the lattice-size sweep (min / mean PSNR in dB of
``csrnet.enhance`` through a lattice against ``csrnet.enhance(exact=True)``, released weights) and
"at most 8 levels of 255 off on any pixel" (the largest |fast - exact| over every pixel and channel
of every photo, uint8). Tables: the README's set; its first 17 photos (9 golden + the first 8 FiveK
inputs by name, the set the README's first sweep was measured on: its node-sampled 65³ row,
49.2 / 52.3 dB, is reproduced exactly); with --photos, the 1024-px photos of ../shared/data/photos.
Rows:

* ``fitted N³``: the fast path itself, ``csrnet.enhance(x, model, lut_size=N)`` (a lattice fitted to
  the photo's colours, the network run exactly only at the nodes they need); N = 49 is the default.
* ``sampled N³``: the network sampled at the nodes only (``csrnet.bake_lut(..., fit=False)``), no
  fit, applied with the same kernel: what the fit adds.

Seconds: mean per photo of the fast path (condition network + bake + fit + apply) on the photos under
2 MP, and the 6 MP mosaic alone (median of 3 calls), on whatever cores this machine has.
Writes the tables to bench/results/lattice_size.md (unless --no-write).
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import FIVEK_PAIRS, PHOTOS, RELEASED, RESULTS, SHARED, make_mosaic, psnr
from PIL import Image

GOLDEN = SHARED / "reference" / "golden"


def readme_set(tmp: Path, fivek: int = 18, mosaic: bool = True) -> list[tuple[str, np.ndarray]]:
    """The README's photos: the 9 golden inputs, the (first ``fivek``) FiveK inputs and one 6 MP mosaic of the 1024-px photos."""
    paths = sorted(GOLDEN.glob("*_input.png")) + sorted((FIVEK_PAIRS / "input").iterdir())[:fivek]
    photos = [(p.name, np.asarray(Image.open(p).convert("RGB"))) for p in paths]
    if mosaic:
        path = make_mosaic(6, tmp / "mosaic6.jpg")
        photos.append(("6 MP mosaic", np.asarray(Image.open(path).convert("RGB"))))
    return photos


def photos_set() -> list[tuple[str, np.ndarray]]:
    return [(p.name, np.asarray(Image.open(p).convert("RGB"))) for p in sorted(PHOTOS.glob("*.jpg"))]


def lattice_path(x: np.ndarray, model, size: int, fitted: bool) -> np.ndarray:
    import csrnet
    from csrnet.kernels.lut import Lattice

    if fitted:
        return csrnet.enhance(x, model, lut_size=size)
    return Lattice(csrnet.bake_lut(x, model, size, fit=False), size).apply_uint(x)


def measure(photos: list[tuple[str, np.ndarray]], model, variants: list[tuple[int, bool]]) -> dict:
    """(variant, photo name) -> {"psnr", "worst", "seconds", "big"} for every photo and lattice variant."""
    import csrnet

    csrnet.enhance(photos[0][1], model, lut_size=33)  # imports (scipy) and BLAS start-up, not timed
    records = {}
    for name, x in photos:
        exact = csrnet.enhance(x, model, exact=True).astype(np.int16)
        big = x.shape[0] * x.shape[1] > 2_000_000
        for v in variants:
            times = []
            for _ in range(3 if big else 1):
                t = time.perf_counter()
                fast = lattice_path(x, model, *v)
                times.append(time.perf_counter() - t)
            records[v, name] = {"psnr": psnr(fast, exact), "worst": int(np.abs(fast.astype(np.int16) - exact).max()),
                                "seconds": float(np.median(times)), "big": big}
    return records


def aggregate(records: dict, variants: list[tuple[int, bool]], names: list[str]) -> list[dict]:
    rows = []
    for size, fitted in variants:
        recs = [(n, records[(size, fitted), n]) for n in names]
        worst_name, worst = max(recs, key=lambda r: r[1]["worst"])
        small = [r["seconds"] for _, r in recs if not r["big"]]
        big = [r["seconds"] for _, r in recs if r["big"]]
        rows.append({
            "lattice": f"{'fitted' if fitted else 'sampled'} {size}³" + (" (default)" if fitted and size == 49 else ""),
            "min": min(r["psnr"] for _, r in recs), "mean": float(np.mean([r["psnr"] for _, r in recs])),
            "worst": worst["worst"], "worst_photo": worst_name,
            "seconds": float(np.mean(small)) if small else None, "big": float(np.median(big)) if big else None,
        })
    return rows


def table(rows: list[dict], n_small: int, has_big: bool) -> str:
    head = f"| lattice | min dB | mean dB | max \\|fast − exact\\| (levels of 255) | worst photo | s per photo (mean of {n_small} ≤ 1 MP) |"
    sep = "|---|---:|---:|---:|---|---:|"
    if has_big:
        head += " s, 6 MP mosaic (median of 3) |"
        sep += "---:|"
    lines = [head, sep]
    for r in rows:
        line = f"| {r['lattice']} | {r['min']:.2f} | {r['mean']:.2f} | {r['worst']} | {r['worst_photo']} | {r['seconds']:.3f} |"
        if has_big:
            line += f" {r['big']:.3f} |"
        lines.append(line)
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[33, 41, 49, 57, 65], help="fitted lattice sizes (odd)")
    ap.add_argument("--sampled", type=int, nargs="*", default=[49, 65], help="sizes also measured sampled at the nodes only")
    ap.add_argument("--photos", action="store_true", help="also the 1024-px photos of ../shared/data/photos (a second table)")
    ap.add_argument("--fivek", type=int, default=18, help="how many of the 18 FiveK inputs (sorted by name) join the golden ones")
    ap.add_argument("--no-mosaic", action="store_true", help="leave the 6 MP mosaic out of the first set")
    ap.add_argument("--weights", default=str(RELEASED), help="model (default: the released checkpoint, as in the README)")
    ap.add_argument("--no-write", action="store_true", help="print only; do not write bench/results/lattice_size.md")
    args = ap.parse_args()
    import csrnet

    model = csrnet.load_model(args.weights)
    variants = [(s, True) for s in args.sizes] + [(s, False) for s in args.sampled]
    tmp = Path(tempfile.mkdtemp(prefix="csrnet-lattice-"))
    out = []
    try:
        first = readme_set(tmp, args.fivek, not args.no_mosaic)
        names = [n for n, _ in first]
        title = f"9 golden + {min(args.fivek, 18)} FiveK inputs" + ("" if args.no_mosaic else " + a 6 MP mosaic")
        sets = [(first, [(title + (" (the README's set)" if args.fivek >= 18 and not args.no_mosaic else ""), names)])]
        if args.fivek > 8:  # the README's sweep was measured on the first 8 FiveK inputs: the same numbers, that subset
            sets[0][1].append(("9 golden + 8 FiveK inputs (the set of the README's first sweep)", names[:9 + 8]))
        if args.photos:
            photos = photos_set()
            sets.append((photos, [(f"the {len(photos)} photos of ../shared/data/photos (1024 px)", [n for n, _ in photos])]))
        for photos, subsets in sets:
            t = time.perf_counter()
            records = measure(photos, model, variants)
            for title, subset in subsets:
                n_small = sum(not records[variants[0], n]["big"] for n in subset)
                rows = aggregate(records, variants, subset)
                text = (f"{title}; uint8 fast path vs `csrnet.enhance(exact=True)`, model {Path(args.weights).name}:\n\n"
                        + table(rows, n_small, n_small < len(subset)))
                print(text + "\n", flush=True)
                out.append(text)
            print(f"({time.perf_counter() - t:.0f} s)\n", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    load = os.getloadavg()[0]
    footer = f"machine: {os.cpu_count()} cores; load average at the end: {load:.2f} (other jobs share it: the seconds are indicative)"
    print(footer)
    if not args.no_write:
        cmd = " ".join(["python bench/lattice_size.py", *sys.argv[1:]])
        header = f"`{cmd}` ({datetime.date.today().isoformat()}):\n\n"
        (RESULTS / "lattice_size.md").write_text(header + "\n\n".join(out) + "\n\n" + footer + "\n")


if __name__ == "__main__":
    main()
