"""How much can any blind global corrector gain on `auto`'s held-out faults? Simple estimators beside `auto`.

    python bench/auto_ceiling.py          # ~1 min on 2 cores; needs ../shared/data/photos

A model that sees only the degraded photo cannot know how the original looked; this script
measures how much that costs, on the held-out split of scripts/train_default.py
(csrnet.training.heldout; 8-bit PSNR to the original, mean over photos):

1. Exposure faults alone (uniform ±2 EV, 4 per held-out photo): identity; `auto`; the bundled
   `exposure` model (trained on these faults alone, never on these photos); the best
   brightness-only estimate (posterior-mean EV given the degraded photo's mean log luminance,
   with the training photos' brightness as the prior); the true EV undone (what clipping leaves).
2. The card's mix (1–3 random faults, 3 per held-out photo, the same draws as the card):
   identity; `auto`; `exposure`; an exposure shift learned on the training photos as a function of the
   degraded photo's brightness (empirical Bayes); grey-world white balance; histogram matching to
   the training photos' median luminance quantiles; `auto` at strengths 0.5–1.5.
3. The cost of not knowing a photo's brightness: each clean held-out photo moved to the training
   photos' median brightness, vs itself (capped at 60 dB).
4. The README's example photo, underexposed by 1.5 EV, vs its original: identity, `auto`, `exposure`.
"""

from __future__ import annotations

import sys

import numpy as np

import csrnet
from csrnet.training.degrade import exposure, random_degradation, srgb_to_linear
from csrnet.training.heldout import load_small, split

from common import EXAMPLES, PHOTOS, psnr, to8

LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)
QUANTILES = np.linspace(0, 1, 257)
STRENGTHS = (0.5, 0.75, 1.0, 1.25, 1.5)


def log_brightness(x: np.ndarray) -> float:
    """log2 of the mean linear luminance of an sRGB float image."""
    return float(np.log2(np.mean(srgb_to_linear(x) @ LUMA) + 1e-6))


def f8(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) / 255


def main() -> None:
    if not PHOTOS.exists():
        sys.exit(f"{PHOTOS}: not found (this benchmark needs ../shared)")
    train_photos, held_photos = split(sorted(PHOTOS.glob("*.jpg")), EXAMPLES)  # the split of the bundled models
    train = [f8(to8(load_small(p))) for p in train_photos]
    held = [to8(load_small(p)) for p in held_photos]
    model = csrnet.load_model("auto")
    specialist = csrnet.load_model("exposure")  # the bundled model trained on exposure faults alone
    b_train = np.array([log_brightness(t) for t in train])

    # 1. exposure faults alone
    grid = np.linspace(-2, 2, 401)

    def posterior_ev(b: float) -> float:  # p(ev | b) ∝ Σ_j N(b − ev − b0_j; 0, 0.15²), ev ~ U(−2, 2)
        w = np.exp(-0.5 * ((b - grid[:, None] - b_train[None]) / 0.15) ** 2).sum(1)
        return float((grid * w).sum() / w.sum())

    rng = np.random.default_rng(7)
    rows = []
    for t8 in held:
        for _ in range(4):
            ev = float(rng.uniform(-2, 2))
            d8 = to8(exposure(f8(t8), ev))
            rows.append((abs(ev), psnr(d8, t8), psnr(csrnet.enhance(d8, model), t8), psnr(csrnet.enhance(d8, specialist), t8),
                         psnr(to8(exposure(f8(d8), -posterior_ev(log_brightness(f8(d8))))), t8),
                         min(psnr(to8(exposure(f8(d8), -ev)), t8), 60.0)))
    r = np.array(rows)
    print(f"## 1. Exposure faults alone (uniform ±2 EV, {len(held)} held-out photos × 4; PSNR dB, true EV capped at 60)\n")
    print("| fault size (EV) | n | identity | `auto` | `exposure` | brightness-only estimate | true EV undone |")
    print("|---|---|---|---|---|---|---|")
    for lo, hi in [(0, 0.5), (0.5, 1), (1, 1.5), (1.5, 2.01)]:
        m = (r[:, 0] >= lo) & (r[:, 0] < hi)
        print(f"| {lo}–{min(hi, 2)} | {m.sum()} | " + " | ".join(f"{v:.2f}" for v in r[m, 1:].mean(0)) + " |")
    print("| all | " + f"{len(r)} | " + " | ".join(f"{v:.2f}" for v in r[:, 1:].mean(0)) + " |")

    # 2. the card's mix; the empirical-Bayes shift is learned on training photos under the same mix
    rng = np.random.default_rng(3)
    bs, shifts = [], []
    for t in train:
        for _ in range(20):
            b = log_brightness(f8(to8(random_degradation(t, rng)[0])))
            bs.append(b)
            shifts.append(log_brightness(t) - b)
    bs_a, sh_a = np.array(bs), np.array(shifts)
    edges = np.quantile(bs_a, np.linspace(0, 1, 21))
    centres = 0.5 * (edges[1:] + edges[:-1])
    mean_shift = np.array([sh_a[(bs_a >= lo) & (bs_a <= hi)].mean() for lo, hi in zip(edges[:-1], edges[1:])])
    ref_q = np.median([np.quantile(t @ LUMA, QUANTILES) for t in train], axis=0)

    def grey_world(x: np.ndarray) -> np.ndarray:
        m = x.reshape(-1, 3).mean(0)
        return np.clip(x * (m.mean() / np.maximum(m, 1e-4)), 0, 1)

    def histogram_match(x: np.ndarray) -> np.ndarray:
        lum = x @ LUMA
        q = np.maximum.accumulate(np.quantile(lum, QUANTILES) + np.arange(len(QUANTILES)) * 1e-7)
        return np.clip(x * ((np.interp(lum, q, ref_q) + 1e-3) / (lum + 1e-3))[..., None], 0, 1)

    rng = np.random.default_rng(1000)  # the draws of scripts/train_default.py's measure(seed=0)
    mix, by_strength = [], {s: [] for s in STRENGTHS}
    for t8 in held:
        for _ in range(3):
            d8 = to8(random_degradation(f8(t8), rng)[0])
            d = f8(d8)
            for st in STRENGTHS:
                by_strength[st].append(psnr(csrnet.enhance(d8, model, strength=st), t8))
            shift = float(np.interp(log_brightness(d), centres, mean_shift))
            mix.append((psnr(d8, t8), psnr(csrnet.enhance(d8, model), t8), psnr(csrnet.enhance(d8, specialist), t8),
                        psnr(to8(exposure(d, shift)), t8),
                        psnr(to8(grey_world(d)), t8), psnr(to8(histogram_match(d)), t8)))
    m = np.array(mix).mean(0)
    print(f"\n## 2. The card's mix of 1–3 faults ({len(held)} held-out photos × 3; PSNR dB, gain over identity)\n")
    print("| identity | `auto` | `exposure` | learned brightness shift | grey-world white balance | histogram matching |")
    print("|---|---|---|---|---|---|")
    print(f"| {m[0]:.2f} | " + " | ".join(f"{v:.2f} ({v - m[0]:+.2f})" for v in m[1:]) + " |")
    print("\n`auto` at other strengths on the same mix (a model that over- or under-corrects on average gains here):\n")
    print("| strength | " + " | ".join(f"{st:g}" for st in STRENGTHS) + " |")
    print("|---|" + "---|" * len(STRENGTHS))
    print("| PSNR dB | " + " | ".join(f"{np.mean(by_strength[st]):.2f}" for st in STRENGTHS) + " |")

    # 3. the cost of not knowing a photo's brightness
    target = float(np.median(b_train))
    moved = [min(60.0, psnr(to8(exposure(f8(t8), target - log_brightness(f8(t8)))), t8)) for t8 in held]
    print("\n## 3. Clean held-out photos moved to the training photos' median brightness, vs themselves\n")
    print(f"mean {np.mean(moved):.2f} dB, median {np.median(moved):.2f} dB (training photos' log2 brightness sd {b_train.std():.2f} EV)")

    # 4. the README's example photo (the original darkened by 1.5 EV) at full size
    from PIL import Image

    bad = np.asarray(Image.open(EXAMPLES / "cathedral_underexposed.jpg").convert("RGB"))
    ref = np.asarray(Image.open(EXAMPLES / "gcompris_monument-berlin-cathedral.jpg").convert("RGB"))
    print("\n## 4. examples/cathedral_underexposed.jpg (−1.5 EV) vs its original, 1024 px\n")
    print("| identity | `auto` | `exposure` |\n|---|---|---|")
    print(f"| {psnr(bad, ref):.2f} | {psnr(csrnet.enhance(bad, model), ref):.2f} | {psnr(csrnet.enhance(bad, specialist), ref):.2f} |")


if __name__ == "__main__":
    main()
