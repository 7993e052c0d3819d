"""Where a blind default model loses on FiveK: the network, or the condition it infers? (issue 18)

    python bench/fivek_ceiling.py [--model auto] [--model FILE ...]

Per shared FiveK pair (camera rendition -> expert C, 8-bit PSNR), for each model:
- **model**: ``csrnet.enhance`` as shipped; **strength 1.3 / 1.6**: the same edit pushed further
  (does the model merely under-correct?);
- **oracle condition**: the model's own base network with its 32-d condition vector optimised for
  that pair against the expert's target (Adam, 300 steps, MSE on 20k random pixels) — what the
  network could do if the condition network guessed the expert's intent;
- **oracle cubic**: a per-pair least-squares cubic polynomial colour map (20 terms per channel), a
  ceiling for global colour transforms of this kind.
Also the median tone statistics (csrnet.training.rendition.photo_statistics) of the inputs, the
experts' versions and each model's outputs. Writes bench/results/fivek_ceiling.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import csrnet
from csrnet.arch import get_architecture
from csrnet.kernels.pixels import from_float
from csrnet.kernels.resize import downscale
from csrnet.training.data import find_pairs, read_rgb
from csrnet.training.rendition import photo_statistics

from common import FIVEK_PAIRS, RESULTS, psnr

STATS = ("log2_mean_luminance", "luma_std", "chroma", "p1", "p99")


def oracle_condition(model, x8: np.ndarray, y8: np.ndarray, steps: int = 300, seed: int = 0) -> np.ndarray:
    """The model's output with the condition vector fitted to the target (torch; training-only code)."""
    import torch
    import torch.nn.functional as F

    net = get_architecture(model.arch).torch_module()().eval()
    net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in model.tensors.items()})
    for p in net.parameters():
        p.requires_grad_(False)
    x = torch.from_numpy(x8.astype(np.float32) / 255).permute(2, 0, 1)[None]
    y = torch.from_numpy(y8.astype(np.float32) / 255).permute(2, 0, 1)[None]
    small = torch.from_numpy(downscale(x8, model.condition_size)).permute(2, 0, 1)[None]
    cond = net.condition(small).clone().requires_grad_(True)
    opt = torch.optim.Adam([cond], lr=0.05)
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(x.shape[2] * x.shape[3], generator=g)[:20000]
    xs, ys = x.flatten(2)[:, :, idx][..., None], y.flatten(2)[:, :, idx][..., None]
    for _ in range(steps):
        opt.zero_grad()
        F.mse_loss(net.base(xs, cond), ys).backward()
        opt.step()
    with torch.no_grad():
        out = net.base(x, cond).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    return from_float(out, np.uint8)


def oracle_cubic(x8: np.ndarray, y8: np.ndarray) -> np.ndarray:
    x = x8.reshape(-1, 3) / 255.0
    terms = [np.ones(len(x))] + [x[:, i] for i in range(3)]
    terms += [x[:, i] * x[:, j] for i in range(3) for j in range(i, 3)]
    terms += [x[:, i] * x[:, j] * x[:, k] for i in range(3) for j in range(i, 3) for k in range(j, 3)]
    a = np.stack(terms, 1)
    w, *_ = np.linalg.lstsq(a, y8.reshape(-1, 3) / 255.0, rcond=None)
    return from_float(np.clip(a @ w, 0, 1).reshape(y8.shape).astype(np.float32), np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", action="append", default=None, help="bundled name or weights file (repeatable; default auto)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(2)
    names = args.model or ["auto"]
    models = {n if n in csrnet.list_models() else f"{Path(n).parent.name}/{Path(n).stem}": csrnet.load_model(n) for n in names}
    pairs = find_pairs(FIVEK_PAIRS)
    cols = ["model", "strength 1.3", "strength 1.6", "oracle condition"]
    rows: dict[str, list[float]] = {}
    stats: dict[str, list[dict]] = {"FiveK inputs": [], "expert C": []}
    cubic, ident = [], []
    for pair in pairs:
        x8, y8 = from_float(read_rgb(pair.input), np.uint8), from_float(read_rgb(pair.target), np.uint8)
        ident.append(psnr(x8, y8))
        cubic.append(psnr(oracle_cubic(x8, y8), y8))
        stats["FiveK inputs"].append(photo_statistics(x8.astype(np.float32) / 255))
        stats["expert C"].append(photo_statistics(y8.astype(np.float32) / 255))
        for label, m in models.items():
            out = csrnet.enhance(x8, m)
            stats.setdefault(f"`{label}` outputs", []).append(photo_statistics(out.astype(np.float32) / 255))
            vals = [psnr(out, y8), psnr(csrnet.enhance(x8, m, strength=1.3), y8), psnr(csrnet.enhance(x8, m, strength=1.6), y8),
                    psnr(oracle_condition(m, x8, y8), y8)]
            rows.setdefault(label, []).append(vals)  # type: ignore[arg-type]
            print(pair.name, label, " ".join(f"{v:.2f}" for v in vals), flush=True)
    lines = ["# FiveK: the network or the condition? (bench/fivek_ceiling.py)", "",
             f"`python bench/fivek_ceiling.py {' '.join('--model ' + n for n in names)}` — 18 shared pairs, 8-bit PSNR to expert C, mean", "",
             "| model | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for label, vals in rows.items():
        mean = np.mean(np.array(vals), axis=0)
        lines.append(f"| `{label}` | " + " | ".join(f"{v:.2f}" for v in mean) + " |")
    lines += ["", f"Identity {np.mean(ident):.2f} dB; per-pair cubic colour map (oracle) {np.mean(cubic):.2f} dB.", "",
              "Median tone statistics (sRGB luma std, chroma = mean max-min, p1/p99 = luma percentiles):", "",
              "| photos | " + " | ".join(STATS) + " |", "|---|" + "---|" * len(STATS)]
    for label, rs in stats.items():
        lines.append(f"| {label} | " + " | ".join(f"{np.median([r[k] for r in rs]):.3f}" for k in STATS) + " |")
    text = "\n".join(lines) + "\n"
    (RESULTS / "fivek_ceiling.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
