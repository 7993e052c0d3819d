"""Learn-your-own-style, measured: leave-some-out on the 18 shared FiveK pairs (input -> expert C).

    python bench/style_learning.py [--folds 3] [--inits auto,released] [--lut-size 17]

Per fold the other pairs are the user's "before/after edits". Methods:
  identity                    the unedited input
  global LUT (least squares)  one fixed 3D LUT fitted to all training pixels — the "one preset" a
                              user would otherwise make (the trilinear weights of csrnet.kernels.lattice)
  fine-tune INIT              `csrnet train --init INIT --freeze base` with default settings
Prints mean held-out PSNR / dE76 per method and the training time on this machine.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from common import FIVEK_PAIRS, RELEASED, link_pairs


def fit_global_lut(xs: list[np.ndarray], ys: list[np.ndarray], size: int, smooth: float = 1e-2) -> np.ndarray:
    """Least-squares 3D LUT (size^3, red fastest) mapping every training input pixel to its target."""
    from scipy.sparse import identity
    from scipy.sparse.linalg import cg

    from csrnet.kernels.lattice import identity_lattice, interp_matrix

    x = np.concatenate([a.reshape(-1, 3) for a in xs])
    y = np.concatenate([b.reshape(-1, 3) for b in ys]).astype(np.float64)
    step = max(1, len(x) // 400_000)
    x, y = x[::step], y[::step]
    m = interp_matrix(x, size)
    prior = identity_lattice(size).astype(np.float64)  # untouched nodes stay identity
    normal = (m.T @ m + smooth * identity(size**3, format="csr")).tocsr()
    rhs = m.T @ y + smooth * prior
    out = np.empty_like(prior)
    for c in range(3):
        out[:, c], _ = cg(normal, rhs[:, c], x0=prior[:, c], maxiter=200)
    return out.astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--inits", default="auto,released")
    ap.add_argument("--lut-size", type=int, default=17)
    ap.add_argument("--iters", type=int, default=None, help="fine-tune steps (default: the recipe's)")
    args = ap.parse_args()

    import csrnet
    from csrnet.training.data import find_pairs, read_rgb
    from csrnet.kernels.lut import apply_lut_array
    from csrnet.evaluation.metrics import delta_e76, psnr, to_uint8
    from csrnet.training.train import train

    pairs = find_pairs(FIVEK_PAIRS)
    data = {p.name: (to_uint8(read_rgb(p.input)), to_uint8(read_rgb(p.target))) for p in pairs}
    order = np.random.default_rng(0).permutation(len(pairs))
    folds = [[pairs[i] for i in order[k :: args.folds]] for k in range(args.folds)]
    inits = {"auto": "auto", "released": str(RELEASED)}
    scores: dict[str, list[tuple[float, float]]] = {}
    seconds: dict[str, float] = {}
    tmp = Path(tempfile.mkdtemp(prefix="csrnet-style-"))
    try:
        for k, held in enumerate(folds):
            train_pairs = [p for p in pairs if p not in held]

            def score(name: str, outputs: list[np.ndarray]) -> None:
                for p, out in zip(held, outputs):
                    scores.setdefault(name, []).append((psnr(out, data[p.name][1]), delta_e76(out, data[p.name][1])))

            score("identity", [data[p.name][0] for p in held])
            t = time.perf_counter()
            table = fit_global_lut([data[p.name][0].astype(np.float32) / 255 for p in train_pairs],
                                   [data[p.name][1].astype(np.float32) / 255 for p in train_pairs], args.lut_size)
            lut_name = f"global {args.lut_size}^3 LUT (least squares)"
            seconds[lut_name] = seconds.get(lut_name, 0) + time.perf_counter() - t
            score(lut_name,
                  [to_uint8(np.clip(apply_lut_array(data[p.name][0].astype(np.float32) / 255, table, args.lut_size), 0, 1)) for p in held])
            folder = link_pairs(train_pairs, tmp / f"fold{k}")
            for name in args.inits.split(","):
                init = inits[name]
                if name == "released":
                    score("released checkpoint as is", [csrnet.enhance(data[p.name][0], csrnet.load_model(init)) for p in held])
                t = time.perf_counter()
                weights = train(folder, tmp / f"run{k}_{name}", init=init, freeze="base", iters=args.iters, seed=0, progress=False)
                ft_name = f"fine-tune {name} (--freeze base)"
                seconds[ft_name] = seconds.get(ft_name, 0) + time.perf_counter() - t
                model = csrnet.load_model(weights)
                score(ft_name, [csrnet.enhance(data[p.name][0], model) for p in held])
        print(f"\n{args.folds}-fold leave-some-out on {len(pairs)} FiveK pairs (input -> expert C), held-out means\n")
        print("| method | PSNR (dB) | dE76 | train time per fold (s) |\n|---|---|---|---|")
        for name, vals in scores.items():
            t = f"{seconds[name] / args.folds:.0f}" if name in seconds else "—"
            print(f"| {name} | {np.mean([v[0] for v in vals]):.2f} | {np.mean([v[1] for v in vals]):.2f} | {t} |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
