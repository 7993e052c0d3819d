"""CSRNet vs CSRNet-L on local-enhancement tasks built from real photos (issue 5).

Steps (all by default; pick with --steps):

* ``build``  — local-task pairs (csrnet.training.local_tasks) from ../shared/data/photos at --size px long
  edge; every 5th photo (sorted) held out. Plus the shared FiveK pairs (seeded 2/3 : 1/3 split).
  Written to --work (outside the repository).
* ``train``  — for each task: CSRNet and CSRNet-L with the same loop (a mirror of csrnet.training.train's
  "fast" recipe on pixel subsets, see train_one), the same data, iterations, batch and seed; condition size = --size (so the condition net sees the
  whole training image). --ablation adds CSRNet-L variants on --ablation-tasks: bilinear vs guided
  upsampling, map pool 1/2/4 (grid stride 8/16/32 px of the condition image).
* ``eval``   — PSNR/SSIM (8-bit RGB, SSIM Gaussian sigma 1.5) on the held-out pairs for identity,
  CSRNet and CSRNet-L, all through the torch-free inference path in exact mode
  (``csrnet.transform(x, model, exact=True)``: the per-pixel network on every pixel, unclipped).
* ``speed``  — full-resolution time and peak memory at 12 MP (4000x3000) for both models, each in
  a fresh subprocess (this script with --speed-one; peak RSS = that process's VmHWM).

Results: a markdown table printed and written to bench/results/local_tasks.md (+ .json), and a
picture bench/results/local_tasks.png (one held-out photo per task: input, CSRNet, CSRNet-L, target).

    python bench/local_tasks.py --work /tmp/csrnet_local --iters 250 --ablation

The committed bench/results/local_tasks.md/.json are the 2000-step runs:

    python bench/local_tasks.py --work /tmp/csrnet_2000 --iters 2000 --steps build,train \
        --tasks clahe,clarity,shadows,fusion,gradfilter,vignetting,global,fivek --control-seeds 1,2,3,4
    python bench/local_tasks.py --work /tmp/csrnet_2000 --iters 2000 --steps eval,speed \
        --tasks gradfilter,clarity,clahe,vignetting,shadows,fusion,global,fivek --control-seeds 1,2,3,4

(``--export gradfilter,clarity,clahe`` on the eval run ships those models), and the ablation table
kept in that file is from the 250-step run above (--ablation); the global-control ablations
(csrnet-l/drop50, /center, /lr03) were trained with ``train_one`` on the 2000-step pairs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from csrnet import enhance, transform
from csrnet.kernels.lattice import identity_lattice, interp_matrix
from csrnet.kernels.lut import apply_lut_array
from csrnet.kernels.resize import downscale
from csrnet.training.data import find_pairs, read_rgb, split_pairs
from csrnet.training.local_tasks import LOCAL_TASKS, TASKS, make_pair, split_photos
from csrnet.weights import Model, load_model, save_model

from common import FIVEK_PAIRS, PHOTOS, RESULTS, ROOT, peak_rss_mb, run_child

# csrnet.training.network (torch) is imported where a network is trained: the --speed-one
# processes, whose peak memory is measured, stay torch-free like csrnet.enhance itself.

#: Ablation variants of CSRNet-L: name -> (constructor kwargs). "csrnet-l" is the shipped default.
VARIANTS: dict[str, dict] = {
    "csrnet-l": {},  # guided upsampling, map_pool 2; trained with warm 0.25 (below)
    "csrnet-l/nowarm": {},  # the same, both branches from the first step (the recipe until 2026-11-27)
    "csrnet-l/bilinear": {"upsample": "bilinear"},
    "csrnet-l/pool1": {"map_pool": 1},
    "csrnet-l/pool4": {"map_pool": 4},
    "csrnet-l/drop50": {},  # training option below: the spatial branch is off for half of the images
    "csrnet-l/center": {},  # training option below: the maps' per-image mean is penalised
    "csrnet-l/lr03": {},  # training option below: the spatial branch learns at 0.3x the learning rate
    "csrnet-l/zeromean": {"zero_mean": True},  # the maps lose their per-image mean: photo-wide looks go global
    "csrnet-l/warm50": {},  # training option below: global branch alone for the first half of the steps
    "csrnet-l/warm50zm": {"zero_mean": True},  # warm50 with zero-mean maps
}
#: Training options of variants: ``drop`` = probability that an image of a batch is trained through the
#: global branch alone (CSRNet-L's own ``glob`` CSRNet), so the global branch must stand on its own.
#: ``center`` = weight of a penalty on the squared per-image mean of the spatial maps, so the spatial branch
#: carries spatial variation and leaves the photo-wide look to the global branch.
#: ``local_lr`` = learning-rate factor of the spatial branch (``local_net``).
#: ``warm`` = fraction of the steps, at the start, trained through the global branch alone (CSRNet first, then
#: the spatial branch joins from its zero start).
TRAIN_OPTS: dict[str, dict] = {
    "csrnet-l": {"warm": 0.25},
    "csrnet-l/drop50": {"drop": 0.5},
    "csrnet-l/center": {"center": 1.0},
    "csrnet-l/lr03": {"local_lr": 0.3},
    "csrnet-l/warm50": {"warm": 0.5},
    "csrnet-l/warm50zm": {"warm": 0.5},
}


# ------------------------------------------------------------------------------ build
def _save(arr: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.round(np.clip(arr, 0, 1) * 255).astype(np.uint8), "RGB").save(path)


def build(work: Path, size: int, tasks: list[str]) -> None:
    """Write WORK/TASK/{train,test}/{input,target}/NAME.png for every task (+ fivek)."""
    train, test = split_photos(PHOTOS)
    for split, photos in (("train", train), ("test", test)):
        for p in tqdm(photos, desc=f"pairs ({split})"):
            photo = downscale(np.asarray(Image.open(p).convert("RGB")), size)
            for task in tasks:
                if task == "fivek":
                    continue
                x, y = make_pair(task, photo, p.stem)
                _save(x, work / task / split / "input" / f"{p.stem}.png")
                _save(y, work / task / split / "target" / f"{p.stem}.png")
    if "fivek" in tasks:
        tr, te = split_pairs(find_pairs(FIVEK_PAIRS), 1 / 3, seed=0)
        for split, pairs in (("train", tr), ("test", te)):
            for pair in pairs:
                _save(downscale(read_rgb(pair.input), size), work / "fivek" / split / "input" / f"{pair.name}.png")
                _save(downscale(read_rgb(pair.target), size), work / "fivek" / split / "target" / f"{pair.name}.png")


# ------------------------------------------------------------------------------ train
# csrnet.training.train's "fast" recipe trains a spatial model (no ``base``/``condition`` methods) on whole
# images; for CSRNet-L that upsamples 262 modulation channels to every pixel of every image
# (~6 s per step here, measured), far beyond this benchmark's CPU budget. So this minimal loop
# mirrors the fast recipe (L1; Adam betas (0.9, 0.99), lr 1e-3, 3% warm-up, cosine to 1/100;
# batch 4 images, 4096 random pixels each, the condition net on the whole image; draws seeded
# by (seed, step)) and uses it for *both* models, via CSRNetL.forward_points for CSRNet-L and
# CSRNet.base for CSRNet — same data, same pixels, same steps.
BATCH, PIXELS, LR, WARMUP, FINAL = 4, 4096, 1e-3, 0.03, 0.01


def _lr(it: int, iters: int) -> float:
    warm = max(1, int(WARMUP * iters))
    if it < warm:
        return LR * (it + 1) / warm
    t = (it - warm) / max(1, iters - warm)
    return LR * (FINAL + (1 - FINAL) * 0.5 * (1 + np.cos(np.pi * t)))


def _point_loss(net, images: list, it: int, seed: int, drop: float = 0.0, center: float = 0.0):
    import torch
    import torch.nn.functional as F

    from csrnet.training import network

    maps: list = []
    hook = net.local_net["head"].register_forward_hook(lambda m, i, o: maps.append(o)) if center else None

    rng = np.random.default_rng([seed, it])
    drops = np.random.default_rng([seed, it, 1]).random(BATCH) < drop  # own stream: drop=0 draws the same pixels
    outs, ys = [], []
    for k, i in enumerate(rng.choice(len(images), size=BATCH, replace=False)):
        x, y = images[i]  # (1,3,H,W) tensors; the condition image is x itself (long edge = condition size)
        h, w = x.shape[-2:]
        idx = torch.from_numpy(rng.integers(0, h * w, size=PIXELS))
        cols = x.flatten(2)[:, :, idx]
        ys.append(y.flatten(2)[:, :, idx])
        if isinstance(net, network.CSRNetL) and drops[k]:
            outs.append(net.glob.base(cols[..., None], net.glob.condition(x))[..., 0])
        elif isinstance(net, network.CSRNetL):
            iy, ix = idx // w, idx % w
            coords = torch.stack([(2 * ix + 1) / w - 1, (2 * iy + 1) / h - 1], -1)[None].float()
            outs.append(net.forward_points(cols, coords, x))
        else:
            outs.append(net.base(cols[..., None], net.condition(x))[..., 0])
    loss = F.l1_loss(torch.cat(outs), torch.cat(ys))
    if hook is not None:
        hook.remove()
        loss = loss + center * torch.stack([m.mean(dim=(2, 3)).pow(2).mean() for m in maps]).mean()
    return loss


def run_dir(work: Path, task: str, arch: str, seed: int) -> Path:
    """WORK/runs/TASK/ARCH for seed 0, WORK/runs-seedN/TASK/ARCH for other seeds."""
    return work / ("runs" if seed == 0 else f"runs-seed{seed}") / task / arch.replace("/", "-")


def train_one(work: Path, task: str, arch: str, iters: int, size: int, seed: int) -> Path:
    """Train ``arch`` (csrnet, or a csrnet-l variant name) on WORK/TASK/train; returns the weights path."""
    import torch

    from csrnet.training import network

    out = run_dir(work, task, arch, seed)
    weights = out / "model.safetensors"
    if weights.exists():
        return weights
    kwargs = VARIANTS.get(arch)
    torch.manual_seed(seed)
    net = network.CSRNet() if kwargs is None else network.CSRNetL(**kwargs)
    pairs = find_pairs(work / task / "train")
    images = [tuple(torch.from_numpy(read_rgb(p)).permute(2, 0, 1)[None].contiguous() for p in (pair.input, pair.target)) for pair in pairs]
    opts = dict(TRAIN_OPTS.get(arch, {}))
    local_lr = opts.pop("local_lr", 1.0)
    warm = opts.pop("warm", 0.0)
    local = [p for n, p in net.named_parameters() if n.startswith("local_net.")]
    rest = [p for n, p in net.named_parameters() if not n.startswith("local_net.")]
    groups = [{"params": rest, "scale": 1.0}] + ([{"params": local, "scale": local_lr}] if local else [])
    opt = torch.optim.Adam(groups, lr=LR, betas=(0.9, 0.99))
    t0, smooth = time.perf_counter(), None
    bar = tqdm(range(iters), desc=f"{task} {arch}", leave=False)
    for it in bar:
        for g in opt.param_groups:
            g["lr"] = _lr(it, iters) * g["scale"]
        loss = _point_loss(net, images, it, seed, **(dict(opts, drop=1.0) if it < warm * iters else opts))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        smooth = float(loss) if smooth is None else 0.95 * smooth + 0.05 * float(loss)
        bar.set_postfix(loss=f"{smooth:.4f}", refresh=False)
    meta = {
        "arch": "csrnet" if kwargs is None else "csrnet-l",
        "condition_size": size,
        "source": "trained with bench/local_tasks.py",
        "data": {"task": task, "pairs": str(work / task / "train"), "train_count": len(pairs)},
        "training": {"loop": "bench/local_tasks.py (fast-recipe mirror, pixel subsets)", "iters": iters, "batch": BATCH,
                     "pixels_per_image": PIXELS, "lr": LR, "seed": seed, "seconds": round(time.perf_counter() - t0, 1),
                     **TRAIN_OPTS.get(arch, {})},
    }
    if kwargs is not None:
        meta.update({"map_pool": net.map_pool, "upsample": net.upsample, "guided_eps": net.guided_eps, "variant": arch})
        if net.zero_mean:
            meta["zero_mean"] = True
    state = {k: v.detach().numpy().astype(np.float32) for k, v in net.state_dict().items()}
    out.mkdir(parents=True, exist_ok=True)
    return save_model(Model(state, meta, name=task), weights)


# ------------------------------------------------------------------------------ eval
def predict(model: Model, x: np.ndarray) -> np.ndarray:
    """Torch-free inference, float32 (H,W,3) unclipped: CSRNet exact MLP or CSRNet-L tiled."""
    return transform(x, model, exact=True, condition_size="model")


def _u8(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)


def scores(out: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """(PSNR dB, SSIM) on 8-bit RGB; SSIM with an 11x11 Gaussian window, sigma 1.5."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    a, b = _u8(out), _u8(target)
    ssim = structural_similarity(a, b, channel_axis=2, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)
    return float(peak_signal_noise_ratio(b, a, data_range=255)), float(ssim)


def evaluate(work: Path, task: str, models: dict[str, Model], limit: int | None = None) -> dict[str, tuple[float, float]]:
    """Mean (PSNR, SSIM) on WORK/TASK/test for identity and each model."""
    pairs = find_pairs(work / task / "test")[:limit]
    acc: dict[str, list[tuple[float, float]]] = {"identity": []}
    for pair in pairs:
        x, y = read_rgb(pair.input), read_rgb(pair.target)
        acc["identity"].append(scores(x, y))
        for name, model in models.items():
            acc.setdefault(name, []).append(scores(predict(model, x), y))
    return {k: (float(np.mean([s[0] for s in v])), float(np.mean([s[1] for s in v]))) for k, v in acc.items()}


def global_ceiling(work: Path, task: str, size: int = 17) -> tuple[float, float]:
    """Mean (PSNR, SSIM) of the best single colour transform per held-out pair: a ``size``^3 3D LUT
    fitted by least squares from that pair's input to its target (an oracle: it sees the target).

    It measures how local a task is: what no global model, however well trained, can exceed.
    """
    from scipy.sparse import identity
    from scipy.sparse.linalg import spsolve

    grid = identity_lattice(size).astype(np.float64)
    acc = []
    for pair in find_pairs(work / task / "test"):
        x, y = read_rgb(pair.input), read_rgb(pair.target)
        m = interp_matrix(x.reshape(-1, 3), size)
        normal = (m.T @ m + 1e-4 * identity(size**3)).tocsc()  # the small ridge fills nodes no colour touches
        rhs = m.T @ y.reshape(-1, 3).astype(np.float64) + 1e-4 * grid
        table = np.stack([spsolve(normal, rhs[:, c]) for c in range(3)], -1).astype(np.float32)
        acc.append(scores(apply_lut_array(x, table, size), y))
    return float(np.mean([a[0] for a in acc])), float(np.mean([a[1] for a in acc]))


def picture(work: Path, tasks: list[str], models: dict[str, dict[str, Model]], path: Path) -> None:
    """One held-out photo per task: input | CSRNet | CSRNet-L | target, rows = tasks."""
    rows = []
    for task in tasks:
        pair = find_pairs(work / task / "test")[1]
        x, y = read_rgb(pair.input), read_rgb(pair.target)
        tiles = [x, predict(models[task]["csrnet"], x), predict(models[task]["csrnet-l"], x), y]
        h = 192
        rows.append(np.concatenate([np.asarray(Image.fromarray(_u8(t)).resize((round(t.shape[1] * h / t.shape[0]), h))) for t in tiles], 1))
    width = max(r.shape[1] for r in rows)
    grid = np.concatenate([np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows])
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).save(path)


def seed_table(args, tasks: list[str], seeds: list[int], record: dict) -> list[str]:
    """Both models retrained with other seeds on ``tasks`` (by the train step): held-out PSNR per seed, mean and spread."""
    lines = [
        "",
        f"Seed spread (held-out PSNR dB; seed {args.seed} is the table above; same pairs, loop and budget):",
        "",
        "| task | seed | CSRNet | CSRNet-L | CSRNet-L − CSRNet |",
        "|---|---|---|---|---|",
    ]
    for task in tasks:
        rows = {args.seed: (record["tasks"][task]["csrnet"]["psnr"], record["tasks"][task]["csrnet-l"]["psnr"])}
        for seed in seeds:
            ms = {}
            for arch in ("csrnet", "csrnet-l"):
                ms[arch] = load_model(run_dir(args.work, task, arch, seed) / "model.safetensors")
            res = evaluate(args.work, task, ms)
            rows[seed] = (res["csrnet"][0], res["csrnet-l"][0])
        for seed, (a, b) in rows.items():
            lines.append(f"| {task} | {seed} | {a:.2f} | {b:.2f} | {b - a:+.2f} dB |")
        a, b = np.array([r[0] for r in rows.values()]), np.array([r[1] for r in rows.values()])
        lines.append(f"| {task} | mean ± sd | {a.mean():.2f} ± {a.std(ddof=1):.2f} | {b.mean():.2f} ± {b.std(ddof=1):.2f} | {(b - a).mean():+.2f} dB |")
        record.setdefault("seeds", {})[task] = {str(k): {"csrnet": v[0], "csrnet-l": v[1]} for k, v in rows.items()}
    return lines


# ------------------------------------------------------------------------------ speed
def speed_one(weights: Path, mode: str) -> dict:
    """One 12 MP measurement in this (fresh) process: ``csrnet.enhance`` on a float32 image."""
    model = load_model(weights)
    rng = np.random.default_rng(0)
    # A smooth, photo-like 12 MP test image (random noise would not change the network's cost).
    small = rng.random((30, 40, 3)).astype(np.float32)
    img = np.stack([np.asarray(Image.fromarray(small[..., c], "F").resize((4000, 3000), Image.Resampling.BICUBIC)) for c in range(3)], -1)
    img = img.clip(0, 1).astype(np.float32)
    base = peak_rss_mb()
    t0 = time.perf_counter()
    enhance(img, model, exact=(mode == "exact"))  # CSRNet-L: tiled exact mode or the lattice grid
    dt = time.perf_counter() - t0
    peak = peak_rss_mb()
    return {"seconds": dt, "peak": peak, "extra": peak - base}


def speed(weights: Path, mode: str) -> tuple[float, float, float]:
    """(seconds, peak RSS MB, peak RSS above the loaded 12 MP input MB) in a fresh process."""
    r = run_child(__file__, "--speed-one", weights, mode)
    return r["seconds"], r["peak"], r["extra"]


# ------------------------------------------------------------------------------ export
def _training_photos() -> list[dict[str, str]]:
    import csv

    rows = {r["file"]: r for r in csv.DictReader(open(PHOTOS / "MANIFEST.csv", newline=""))}
    train, _ = split_photos(PHOTOS)
    return [rows[p.name] for p in train]


def export(work: Path, task: str, record: dict, command: str) -> Path:
    """Ship runs/TASK/csrnet-l as src/csrnet/models/csrnet-l-TASK.{safetensors,md} and the CSRNet
    baseline (same loop, same pairs) as tests/data/csrnet_TASK_baseline.safetensors."""
    from collections import Counter

    photos = _training_photos()
    licenses = Counter(r["license"] for r in photos)
    lic_text = ", ".join(f"{k} ({v})" for k, v in licenses.most_common())
    res = record["tasks"][task]
    metrics = {
        "held_out_pairs": record["test_pairs"][task],
        "psnr": {k: round(v["psnr"], 2) for k, v in res.items() if k in ("identity", "csrnet", "csrnet-l")},
        "ssim": {k: round(v["ssim"], 4) for k, v in res.items() if k in ("identity", "csrnet", "csrnet-l")},
        "convention": "8-bit RGB, mean over held-out photos; SSIM Gaussian 11x11 sigma 1.5",
    }
    model = load_model(work / "runs" / task / "csrnet-l" / "model.safetensors")
    model.meta.update(
        {
            "source": "trained with bench/local_tasks.py",
            "task": task,
            "data": {
                "task": task,
                "photos": "../shared/data/photos (every 5th by name held out)",
                "train_count": len(photos),
                "size": record["size"],
            },
            "license": f"trained on photos under {lic_text}; attributions and share-alike notes in csrnet-l-{task}.md",
            "command": command,
            "metrics": metrics,
        }
    )
    model.meta["data"].pop("pairs", None)
    dst = ROOT / "src" / "csrnet" / "models" / f"csrnet-l-{task}.safetensors"
    save_model(model, dst)
    base = load_model(work / "runs" / task / "csrnet" / "model.safetensors")
    base.meta["data"].pop("pairs", None)
    (ROOT / "tests" / "data").mkdir(parents=True, exist_ok=True)
    save_model(base, ROOT / "tests" / "data" / f"csrnet_{task}_baseline.safetensors")
    p, s = metrics["psnr"], metrics["ssim"]
    md = [
        f"# csrnet-l-{task}: CSRNet-L {TASK_TITLE.get(task, '')}".rstrip(),
        "",
        f"CSRNet-L (spatial feature modulation, {model.num_parameters:,} parameters; design in `csrnet/training/network.py:CSRNetL`) "
        f"trained on the `{task}` local task of `csrnet.training.local_tasks`: {TASK_DOC.get(task, task)}",
        "",
        "Run it: `csrnet enhance --model csrnet-l-" + task + " photo.jpg` (any size; the condition net sees a "
        f"{model.condition_size} px copy; the per-pixel network is baked into a grid of 3D lattices, or runs in tiles with `--exact`).",
        "",
        "## Data",
        f"- {len(photos)} real photographs from `../shared/data/photos` (every 5th photo by sorted name held out, never trained on), "
        f"downscaled to {record['size']} px long edge; pairs made by `csrnet.training.local_tasks.make_pair('{task}', ...)`.",
        f"- Licenses of the training photos: {lic_text}. CC-BY / CC-BY-SA / GPL / LGPL items require attribution and may carry "
        "share-alike terms; whether weights are a derivative work is unsettled, so the attributions are kept here.",
        "",
        "## Training",
        f"- Command: `{command}`",
        f"- Loop: bench/local_tasks.py `train_one` (mirror of csrnet.training.train's fast recipe on pixel subsets): "
        f"{model.meta['training']['iters']} steps x {BATCH} images x {PIXELS} pixels, Adam lr {LR}, seed {record['seed']}; "
        f"the first {model.meta['training'].get('warm', 0):.0%} of the steps train the global branch alone (CSRNet), then the "
        "spatial branch joins from its zero start.",
        "",
        f"## Results ({metrics['held_out_pairs']} held-out photos, {metrics['convention']})",
        "",
        "| | identity | CSRNet (same data, same loop) | CSRNet-L (this model) |",
        "|---|---|---|---|",
        f"| PSNR dB | {p['identity']:.2f} | {p['csrnet']:.2f} | {p['csrnet-l']:.2f} |",
        f"| SSIM | {s['identity']:.4f} | {s['csrnet']:.4f} | {s['csrnet-l']:.4f} |",
        "",
        "## Training photos (file, license, attribution)",
        "",
        *[f"- {r['file']} — {r['license']} — {r['attribution']}" for r in photos],
        "",
    ]
    dst.with_suffix(".md").write_text("\n".join(md))
    return dst


#: Card titles: "CSRNet-L for ..." per task.
TASK_TITLE = {"gradfilter": "for a graduated-filter look", "clarity": "for a clarity (local contrast) look"}

TASK_DOC = {
    "gradfilter": "the top of the photo darkened by 1 EV (linear light) with a soft gradient from 10% to 55% of the "
    "height, like a graduated ND filter; the model learns to apply it to any photo.",
    "clahe": "CLAHE local contrast enhancement (scikit-image equalize_adapthist, clip 0.01).",
    "clarity": "a Lightroom-style \"clarity\" look: on CIELAB L*, the detail above an edge-preserving base "
    "(OpenCV bilateral filter, spatial sigma 4% of the long edge) is boosted x2.5, so local contrast rises "
    "without halos along strong edges.",
    "shadows": "regional shadow lifting (local tone mapping): a gain of up to +2 EV for regions whose edge-aware "
    "(bilateral) base luminance is dark, so the same grey is lifted in a dark region and left alone in a bright one.",
    "fusion": "exposure fusion (OpenCV Mertens fusion of the 0, +1, +2 EV versions).",
    "vignetting": "vignetting removal (synthetic radial falloff 1 - s r^2 in linear light -> original).",
}


# ------------------------------------------------------------------------------ main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/csrnet_local"))
    ap.add_argument("--size", type=int, default=256, help="long edge of the pairs and the condition size")
    ap.add_argument("--iters", type=int, default=250)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tasks", default=",".join([*LOCAL_TASKS, "fusion", "global", "fivek"]))
    ap.add_argument("--steps", default="build,train,eval,speed")
    ap.add_argument("--ablation", action="store_true", help="also train/evaluate the CSRNet-L variants")
    ap.add_argument("--ablation-tasks", default="clahe")
    ap.add_argument("--control-seeds", default="", help="also train and evaluate both models with these extra seeds "
                    "(comma-separated) on --control-tasks, to show the seed-to-seed spread")
    ap.add_argument("--control-tasks", default="global")
    ap.add_argument("--export", default="", help="after eval: ship these tasks' CSRNet-L (comma-separated; + CSRNet baselines for tests)")
    ap.add_argument("--speed-one", nargs=2, metavar=("WEIGHTS", "MODE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.speed_one:
        print(json.dumps(speed_one(Path(args.speed_one[0]), args.speed_one[1])))
        return
    tasks = args.tasks.split(",")
    steps = set(args.steps.split(","))
    for t in tasks:
        if t not in TASKS and t != "fivek":
            ap.error(f"unknown task {t}")
    if "build" in steps:
        build(args.work, args.size, tasks)
    runs: dict[str, list[str]] = {t: ["csrnet", "csrnet-l"] for t in tasks}
    if args.ablation:
        for t in args.ablation_tasks.split(","):
            runs.setdefault(t, ["csrnet", "csrnet-l"]).extend(v for v in VARIANTS if v != "csrnet-l")
    paths: dict[str, dict[str, Path]] = {}
    order = [(t, a) for t, archs in runs.items() for a in archs[:2]] + [(t, a) for t, archs in runs.items() for a in archs[2:]]
    for task, arch in order:  # the main comparison first, ablation variants after
        paths.setdefault(task, {})[arch] = (
            train_one(args.work, task, arch, args.iters, args.size, args.seed)
            if "train" in steps
            else run_dir(args.work, task, arch, args.seed) / "model.safetensors"
        )
    seeds = [int(x) for x in filter(None, args.control_seeds.split(","))]
    control = [t for t in args.control_tasks.split(",") if t in tasks]
    if "train" in steps:
        for task, seed, arch in ((t, sd, a) for t in control for sd in seeds for a in ("csrnet", "csrnet-l")):
            train_one(args.work, task, arch, args.iters, args.size, seed)
    lines, record = [], {"iters": args.iters, "size": args.size, "seed": args.seed, "tasks": {}}
    if "eval" in steps:
        models = {t: {a: load_model(p) for a, p in d.items() if p.exists()} for t, d in paths.items()}
        lines += [
            f"Held-out PSNR (dB) / SSIM, pairs at {args.size} px long edge; both models trained by the same loop "
            f"(fast-recipe mirror), {args.iters} iterations x {BATCH} images x {PIXELS} pixels, seed {args.seed}, same pairs.",
            "",
            "| task | test pairs | identity | CSRNet | CSRNet-L | CSRNet-L − CSRNet | global ceiling |",
            "|---|---|---|---|---|---|---|",
        ]
        ablation = []
        for task in tqdm(runs, desc="eval"):
            res = evaluate(args.work, task, models[task])
            n = len(find_pairs(args.work / task / "test"))
            record.setdefault("test_pairs", {})[task] = n
            record["tasks"][task] = {k: {"psnr": v[0], "ssim": v[1]} for k, v in res.items()}
            f = lambda k: f"{res[k][0]:.2f} / {res[k][1]:.3f}"
            res["global ceiling"] = global_ceiling(args.work, task)
            record["tasks"][task]["global ceiling"] = {"psnr": res["global ceiling"][0], "ssim": res["global ceiling"][1]}
            lines.append(
                f"| {task} | {n} | {f('identity')} | {f('csrnet')} | {f('csrnet-l')} | {res['csrnet-l'][0] - res['csrnet'][0]:+.2f} dB "
                f"| {f('global ceiling')} |"
            )
            for v in (v for v in runs[task][2:] if v in res):
                ablation.append(f"| {task} | {f('csrnet')} | {f('csrnet-l')} | {v.split('/')[1]}: {f(v)} |")
        lines += [
            "",
            "Global ceiling: per held-out pair, the best single 17^3 3D LUT fitted by least squares from its input to its "
            "own target (an oracle that sees the target) — what no global model can exceed; the lower it is, the more "
            "local the task.",
        ]
        params = {a: models[tasks[0]][a].num_parameters for a in ("csrnet", "csrnet-l")}
        lines += ["", f"Parameters: CSRNet {params['csrnet']:,}, CSRNet-L {params['csrnet-l']:,} ({params['csrnet-l'] / params['csrnet']:.2f}x)."]
        record["params"] = params
        if ablation:
            lines += [
                "",
                "Ablation (held-out PSNR / SSIM): global-only (= CSRNet), CSRNet-L as shipped (guided upsampling, "
                "map pool 2 = grid stride 16 px of the condition image), and one change at a time.",
                "",
                "| task | global only (CSRNet) | CSRNet-L (guided, pool 2) | variant |",
                "|---|---|---|---|",
                *ablation,
            ]
        if seeds:
            lines += seed_table(args, control, seeds, record)
        local = [t for t in tasks if t in LOCAL_TASKS]
        picture(args.work, local, models, RESULTS / "local_tasks.png")
    if "speed" in steps:
        task = tasks[0]
        lines += ["", "Full resolution, 12 MP (4000x3000) float32 input, 2 CPU cores, fresh process each:", ""]
        lines += ["| model | mode | seconds | peak RSS MB | RSS above input MB |", "|---|---|---|---|---|"]
        record["speed"] = {}
        for arch, mode in (("csrnet", "fast"), ("csrnet", "exact"), ("csrnet-l", "fast (lattice grid)"), ("csrnet-l", "exact (tiled)")):
            t, peak, extra = speed(paths[task][arch], mode.split()[0])
            record["speed"][f"{arch} {mode}"] = {"seconds": t, "peak_rss_mb": peak, "above_input_mb": extra}
            lines.append(f"| {arch} | {mode} | {t:.1f} | {peak:.0f} | {extra:.0f} |")
    text = "\n".join(lines)
    print(text)
    if lines:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "local_tasks.md").write_text(text + "\n")
        (RESULTS / "local_tasks.json").write_text(json.dumps(record, indent=1) + "\n")
    for task in filter(None, args.export.split(",")):
        print("shipped", export(args.work, task, record, "python " + " ".join(sys.argv)))


if __name__ == "__main__":
    main()
