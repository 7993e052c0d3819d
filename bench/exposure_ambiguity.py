"""Can a global condition tell a dark exposure fault from a camera rendition? (issue 18)

The default model ``auto`` must finish camera renditions (brighten ~1 EV *and* add contrast, black
point, saturation: bench/fivek_statistics.py) yet only re-expose a photo that is merely too dark.
Both reach the model as "a dark photo". This script asks whether the condition network's own colour
features (:func:`csrnet.arch.layers.colour_statistics`, what ``csrnet-hist`` adds to the paper's
condition network) can tell the two apart, and whether the whole condition network of the trained
``auto`` does (its 32-d condition vector: convolutions and colour branch): a small classifier (MLP,
features -> 64 -> 64 -> 1) is trained on the training photos' exposure faults (uniform ±2 EV) and
editor's camera renditions (csrnet.training.rendition.edited_rendition), then asked about the
held-out photos'. If it cannot tell them apart, neither can a global model trained on both: it must
answer a dark photo with one edit, between re-exposing and finishing.

    python bench/exposure_ambiguity.py          # writes bench/results/exposure_ambiguity.md (~2.5 min on 2 cores)

Research code: needs torch (the bench extra).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import csrnet
from common import EXAMPLES, PHOTOS, ROOT, to8
from csrnet.arch.layers import colour_statistics, condition_vector
from csrnet.pipeline import condition_copy
from csrnet.training.degrade import exposure
from csrnet.training.heldout import load_small, split
from csrnet.training.rendition import edited_rendition
from exposure_bins import BINS

OUT = ROOT / "bench" / "results" / "exposure_ambiguity.md"


def features(x8: np.ndarray, model) -> tuple[np.ndarray, np.ndarray]:
    """(colour statistics (80,), ``model``'s condition vector (32,)) of an 8-bit image."""
    x = x8.astype(np.float32) / 255
    return colour_statistics(x), condition_vector(model, condition_copy(x, model))


def examples(photos: list, per_photo: int, seed: int, model) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """([colour statistics (n, 80), condition vectors (n, 32)], is_rendition (n,), EV of the exposure
    fault or nan (n,)): ``per_photo`` exposure faults and as many camera renditions of each photo,
    as 8-bit images, at 192 px."""
    rng = np.random.default_rng(seed)
    feats, labels, evs = [], [], []
    for path in photos:
        clean = load_small(path, 192)
        for _ in range(per_photo):
            ev = float(rng.uniform(-2.0, 2.0))
            rendition, _ = edited_rendition(clean, rng)
            for x, label, e in ((exposure(clean, ev), 0.0, ev), (rendition, 1.0, np.nan)):
                feats.append(features(to8(x), model))
                labels.append(label)
                evs.append(e)
    return [np.array([f[k] for f in feats]) for k in range(2)], np.array(labels, np.float32), np.array(evs)


def train_classifier(feats: np.ndarray, labels: np.ndarray, steps: int = 4000, seed: int = 0) -> torch.nn.Module:
    """A small MLP from a feature set (n, d) to the logit of "camera rendition" (Adam, batch 256)."""
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(feats.shape[1], 64), torch.nn.ReLU(),
                              torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1))
    opt = torch.optim.Adam(net.parameters(), 2e-3)
    f, t = torch.from_numpy(feats), torch.from_numpy(labels)[:, None]
    for _ in range(steps):
        i = torch.randint(0, len(f), (256,))
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(f[i]), t[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net


def called_rendition(net: torch.nn.Module, feats: np.ndarray) -> np.ndarray:
    """Boolean (n,): the classifier takes the example for a camera rendition."""
    with torch.no_grad():
        return net(torch.from_numpy(feats)).numpy()[:, 0] > 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-photo", type=int, default=12, help="exposure faults and renditions per training photo")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", default="auto", help="whose condition vector is the second feature set")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = csrnet.load_model(args.model)
    train, held = split(sorted(PHOTOS.glob("*.jpg")), EXAMPLES)
    f_train, y_train, _ = examples(train, args.per_photo, args.seed + 1, model)
    f_held, y_held, ev_held = examples(held, args.per_photo // 2, args.seed + 7, model)
    rendition = y_held > 0.5
    calls, accuracy = [], []
    for k in range(2):
        net = train_classifier(f_train[k], y_train, seed=args.seed)
        p_train, p_held = called_rendition(net, f_train[k]), called_rendition(net, f_held[k])
        calls.append(p_held)
        accuracy.append(f"{np.mean(p_train == (y_train > 0.5)):.1%} / {np.mean(p_held == rendition):.1%}")
    rows = [("held-out camera renditions", rendition)] + [
        (f"held-out exposure faults [{lo:+.0f}, {hi:+.0f}) EV", (ev_held >= lo) & (ev_held < hi)) for lo, hi in BINS]
    lines = [f"| examples | count | colour statistics (80) | `{args.model}`'s condition vector (32) |", "|---|---|---|---|",
             f"| accuracy, training / held-out | {len(y_train)} / {len(y_held)} | {accuracy[0]} | {accuracy[1]} |"]
    lines += [f"| {label} | {part.sum()} | {calls[0][part].mean():.0%} | {calls[1][part].mean():.0%} |" for label, part in rows]
    text = "\n".join([
        "# Dark exposure faults against camera renditions (bench/exposure_ambiguity.py)", "",
        f"`python bench/exposure_ambiguity.py --per-photo {args.per_photo} --seed {args.seed} --model {args.model}`:",
        "a classifier per feature set (`colour_statistics`, the csrnet-hist colour branch's input; the trained",
        f"model's condition vector), trained on {len(train)} training photos, tested on {len(held)} held-out photos.",
        "Cells below the accuracy row: the share the classifier calls a camera rendition.", "",
        *lines, ""]) + "\n"
    print(text)
    OUT.write_text(text)


if __name__ == "__main__":
    main()
