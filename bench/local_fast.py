"""CSRNet-L fast path (a grid of baked lattices, csrnet.arch.csrnet_l) vs exact mode: fidelity, speed, memory.

Fidelity: 8-bit PSNR of the fast path (``csrnet.enhance(x, model, lut_size=S)`` for the default
grid, ``bake_grid_for(..., refine=r)`` applied for the others; forced even where ``csrnet.enhance``
would run small photos exactly) against ``exact=True`` on held-out photos of every local task
(csrnet.training.local_tasks: split_photos + make_pair; tasks whose
input is the untouched photo share one row), at 256 px and at the photos' full 1024 px, for
lattice sizes S = 17, 25, 33 on the maps' cells and S = 13, 17 on a 2x finer grid, with every
bundled CSRNet-L model and any given by --models (default: /tmp/csrnet_2000/runs/*/csrnet-l/
model.safetensors, skipping those identical to a bundled one).

Speed and memory: a 12 MP JPEG mosaic of the 1024-px photos (bench/common.py's make_mosaic), decoded and enhanced in a fresh process per mode (peak RSS is that process's).
Prints Markdown and writes bench/results/local_fast.md.

    OMP_NUM_THREADS=1 python bench/local_fast.py               # 3 photos per task
    python bench/local_fast.py --photos 1 --no-mosaic           # quick look
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from common import PHOTOS, RESULTS, make_mosaic, peak_rss_mb, psnr, run_child

#: (refine, lattice size) pairs compared: lattices on the maps' own cells, and on a 2x finer grid.
CONFIGS = ((1, 17), (1, 25), (1, 33), (2, 13), (2, 17))
RUNS = "/tmp/csrnet_2000/runs/*/csrnet-l/model.safetensors"


def inputs(n_photos: int, px: int) -> list[tuple[str, str, np.ndarray]]:
    """(tasks sharing the input, photo name, uint8 input) for the first ``n_photos`` held-out photos."""
    from csrnet.kernels.resize import downscale
    from csrnet.training.local_tasks import LOCAL_TASKS, make_pair, split_photos

    _, held_out = split_photos(PHOTOS)
    out = []
    for p in held_out[:n_photos]:
        photo = downscale(np.asarray(Image.open(p).convert("RGB")), px)
        seen: list[tuple[list[str], np.ndarray]] = []
        for task in LOCAL_TASKS:
            x = np.round(make_pair(task, photo, p.stem)[0] * 255).astype(np.uint8)
            for tasks, y in seen:
                if np.array_equal(x, y):
                    tasks.append(task)
                    break
            else:
                seen.append(([task], x))
        out += [(", ".join(tasks), p.stem, x) for tasks, x in seen]
    return out


def fast_grid(x: np.ndarray, model, size: int, refine: int) -> np.ndarray:
    """The fast path on uint8 ``x`` with ``size``^3 lattices on a grid ``refine`` times finer than the
    maps' cells, whatever the photo size (``lut_size`` given: ``csrnet.enhance`` never runs it exactly)."""
    import csrnet
    from csrnet.arch.csrnet_l import DEFAULT_GRID_REFINE, bake_grid_for, local_maps
    from csrnet.pipeline import condition_copy
    from csrnet.threads import network_threads, resolve

    if refine == DEFAULT_GRID_REFINE:
        return csrnet.enhance(x, model, lut_size=size)
    with network_threads(resolve(None)) as threads:  # as csrnet.enhance runs it: BLAS on one thread, cells on all
        maps = local_maps(model, condition_copy(x, model, "model"), threads=threads)
        grid = bake_grid_for(model, maps, x.shape[:2], size, refine, 1.0, threads)
    return grid.apply_uint(x, threads=resolve(None))


def _name(refine: int, size: int) -> str:
    from csrnet.arch.csrnet_l import DEFAULT_GRID_LUT_SIZE, DEFAULT_GRID_REFINE

    default = (refine, size) == (DEFAULT_GRID_REFINE, DEFAULT_GRID_LUT_SIZE)
    return f"{'**' if default else ''}{size}³{', grid x2' if refine == 2 else ''}{'** (default)' if default else ''}"


def fidelity(models: dict[str, Path | str], n_photos: int) -> list[str]:
    import csrnet
    from csrnet.arch.csrnet_l import DEFAULT_GRID_LUT_SIZE, DEFAULT_GRID_REFINE

    default = (DEFAULT_GRID_REFINE, DEFAULT_GRID_LUT_SIZE)
    lines = [
        "| model | input (tasks) | size | photos | " + " | ".join(_name(*c) for c in CONFIGS) + " | default: max diff, pixels > 2 LSB |",
        "|---|---|---|---|" + "---|" * (len(CONFIGS) + 1),
    ]
    for px in (256, 1024):
        data = inputs(n_photos, px)
        for label, weights in models.items():
            model = csrnet.load_model(weights)
            groups: dict[str, dict] = {}
            for tasks, _, x in data:
                exact = csrnet.enhance(x, model, exact=True)
                g = groups.setdefault(tasks, {"shape": x.shape, "n": 0, "maxdiff": 0, "over2": [], **{c: [] for c in CONFIGS}})
                g["n"] += 1
                for refine, size in CONFIGS:
                    fast = fast_grid(x, model, size, refine)
                    g[refine, size].append(psnr(fast, exact))
                    if (refine, size) == default:
                        diff = np.abs(fast.astype(int) - exact).max(-1)
                        g["maxdiff"] = max(g["maxdiff"], int(diff.max()))
                        g["over2"].append(float(np.mean(diff > 2)))
            for tasks, g in groups.items():
                cols = " | ".join(f"{min(g[c]):.1f} / {np.mean(g[c]):.1f}" for c in CONFIGS)
                h, w = g["shape"][:2]
                lines.append(f"| {label} | {tasks} | {w}x{h} | {g['n']} | {cols} | {g['maxdiff']} LSB, {100 * max(g['over2']):.3f}% |")
                print(lines[-1], flush=True)
    return lines


def one(mode: str, path: Path, weights: str, out: Path) -> dict:
    """One 12 MP measurement in this (fresh) process."""
    import csrnet
    from csrnet.arch.csrnet_l import DEFAULT_GRID_LUT_SIZE, DEFAULT_GRID_REFINE, bake_grid_for, local_maps
    from csrnet.pipeline import condition_copy
    from csrnet.threads import network_threads, resolve

    res: dict = {}
    model = csrnet.load_model(weights)
    exact = mode == "exact"
    t = time.perf_counter()
    csrnet.enhance(np.full((900, 1200, 3), 90, np.uint8), model, exact=exact)  # imports, BLAS start-up
    res["first_call"] = time.perf_counter() - t
    t = time.perf_counter()
    x = np.asarray(Image.open(path).convert("RGB"))
    res["decode"] = time.perf_counter() - t
    t = time.perf_counter()
    y = csrnet.enhance(x, model, exact=exact)
    res["model"] = time.perf_counter() - t
    res["rss_mb"] = peak_rss_mb()
    np.save(out, y)
    if not exact:  # where the fast path's time goes (a second run, after the RSS reading), threaded as csrnet.enhance runs it
        size, refine, n = DEFAULT_GRID_LUT_SIZE, DEFAULT_GRID_REFINE, resolve(None)
        t0 = time.perf_counter()
        with network_threads(n) as threads:  # BLAS on one thread, the cells on csrnet's threads
            maps = local_maps(model, condition_copy(x, model, "model"), threads=threads)
            t1 = time.perf_counter()
            grid = bake_grid_for(model, maps, x.shape[:2], size, refine, 1.0, threads)
        t2 = time.perf_counter()
        grid.apply_uint(x, threads=n)
        res.update(maps=t1 - t0, bake=t2 - t1, apply=time.perf_counter() - t2, grid=list(grid.tables.shape[:2]), size=size)
    return res


def measure(mode: str, path: Path, weights: str, out: Path) -> dict:
    return run_child(__file__, "--one", mode, path, weights, out)


def mosaic(models: dict[str, Path | str], tmp: Path) -> list[str]:
    path = make_mosaic(12, tmp / "m12.jpg")
    lines = [
        "| model | mode | enhance s | peak RSS MB | PSNR vs exact | note |",
        "|---|---|---|---|---|---|",
    ]
    for label, weights in models.items():
        ex = measure("exact", path, str(weights), tmp / "exact.npy")
        fa = measure("fast", path, str(weights), tmp / "fast.npy")
        a, b = np.load(tmp / "fast.npy"), np.load(tmp / "exact.npy")
        fid, diff = psnr(a, b), int(np.abs(a.astype(int) - b).max())
        gh, gw = fa["grid"]
        size = fa["size"]
        lines.append(f"| {label} | exact (tiled per-pixel network) | {ex['model']:.2f} | {ex['rss_mb']:.0f} | | decode {ex['decode']:.2f} s |")
        lines.append(
            f"| {label} | fast ({gh}x{gw} nodes x {size}³ lattices) | {fa['model']:.2f} | {fa['rss_mb']:.0f} | {fid:.1f} dB (max {diff} LSB) "
            f"| {ex['model'] / fa['model']:.0f}x; maps {fa['maps']:.2f} + bake {fa['bake']:.2f} + apply {fa['apply']:.2f} s |"
        )
        print(*lines[-2:], sep="\n", flush=True)
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--one", nargs=4, help=argparse.SUPPRESS)
    ap.add_argument("--models", nargs="*", default=None, help=f"extra CSRNet-L weights (default: {RUNS})")
    ap.add_argument("--photos", type=int, default=3, help="held-out photos per task")
    ap.add_argument("--no-mosaic", action="store_true", help="skip the 12 MP time/memory rows")
    ap.add_argument("--out", type=Path, default=RESULTS / "local_fast.md")
    args = ap.parse_args()
    if args.one:
        mode, path, weights, out = args.one
        print(json.dumps(one(mode, Path(path), weights, Path(out))))
        return
    import csrnet
    from csrnet.kernels import lut

    tmp = Path(tempfile.mkdtemp(prefix="csrnet-local-fast-"))
    try:
        # every bundled CSRNet-L model, then the extra ones (snapshots: a job may be rewriting them) unless bundled
        models: dict[str, Path | str] = {
            f"{name} (shipped)": name for name in csrnet.weights.list_models() if csrnet.load_model(name).arch == "csrnet-l"
        }
        shipped = [csrnet.load_model(name).tensors for name in models.values()]
        for p in sorted(args.models if args.models is not None else glob.glob(RUNS)):
            copy = shutil.copy(p, tmp / f"{len(models)}.safetensors")
            model = csrnet.load_model(copy)
            if any(t.keys() == model.tensors.keys() and all(np.array_equal(t[k], model.tensors[k]) for k in t) for t in shipped):
                continue
            steps = model.meta.get("training", {}).get("iters", "?")
            models[f"{Path(p).parents[1].name} run, {steps} steps" if args.models is None else Path(p).stem] = copy
        started = time.strftime("%Y-%m-%d %H:%M")
        lines = [
            "# CSRNet-L fast path vs exact mode",
            "",
            (
                f"`{' '.join(['python', 'bench/local_fast.py', *sys.argv[1:]])}` ({started}; {os.cpu_count()} cores, "
                f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, C kernel {'built' if lut.HAVE_KERNEL else 'absent'}; "
                f"load average at start {os.getloadavg()[0]:.2f})."
            ),
            "",
            (
                "Fidelity: 8-bit PSNR (min / mean dB over photos) of the fast path against `exact=True`, first "
                f"{args.photos} held-out photos of `csrnet.training.local_tasks` (every local task; tasks whose input is the untouched "
                "photo share a row), uint8 input, condition copy 256 px. Columns: lattice size S³ per grid node; "
                "'grid x2': lattices on a grid twice as fine as the maps' cells (`csrnet.arch.csrnet_l.refine_maps`). Last column: "
                "the default's largest difference and its share of pixels off by more than 2 levels (worst photo)."
            ),
            "",
        ]
        lines += fidelity(models, args.photos)
        if not args.no_mosaic:
            lines += [
                "",
                (
                    "12 MP (4240x2832 JPEG mosaic of the 1024-px photos), `csrnet.enhance` on the decoded uint8 array, each "
                    "mode in a fresh process after a warm-up call (imports, BLAS start-up); peak RSS = the process's VmHWM, "
                    "decode included."
                ),
                "",
            ]
            lines += mosaic(models, tmp)
        text = "\n".join(lines) + "\n"
        print("\n" + text)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
