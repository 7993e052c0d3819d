"""Train the bundled models ``auto`` and ``exposure`` from the license-clean photos in ../shared/data/photos.

    python scripts/train_default.py --faults camera-mix --threads 1              # auto (issue 18)
    python scripts/train_default.py --faults exposure                           # exposure
    python scripts/train_default.py --faults camera-mix --weights W.safetensors # re-measure, re-card

Each kind has its recipe (``KINDS[...]["recipe"]``: network, photos and pixels per step, steps,
degraded variants per photo); a command-line option overrides one part of it, e.g.
``--variants 32`` (bench: more variants keep finished photos closer to themselves).

Targets: the photos themselves (long edge 384 px); inputs: the same photos after synthetic faults:
``--faults camera-mix`` (the model ``auto``) camera-like renditions (csrnet.training.rendition, fitted
to the FiveK pairs by bench/fivek_statistics.py) 55 %, exposure faults 25 %, random global faults 20 %;
its recipe's ``--black-point 0.03`` makes a camera rendition's target the photo with an editor's black
point (rendition.set_black_point: a third of the bundled photos have a matte, raised black that the
FiveK experts never leave) and renders it with the sampler fitted for such photos (FIVEK_FIT_EDITED);
``--faults mix`` (the previous ``auto``) 1-3 random faults of seven kinds (csrnet.training.degrade);
``--faults exposure`` (the model ``exposure``) an exposure change of up to ±2 EV. Every third (camera-mix) or
fourth example is left clean (``--identity-every``). Photos whose names hash into the held-out fifth, and the ones copied to examples/, are
never trained on (csrnet.training.heldout, shared with bench/auto_ceiling.py and bench/default_model.py).
Writes NAME.safetensors and its card NAME.md into ``--out`` (default: src/csrnet/models) and
docs/NAME_before_after.png, with the measured numbers.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from csrnet.kernels.pixels import from_float
from csrnet.training.heldout import LONG_EDGE, load_small, split
from csrnet.training.rendition import EDITOR_BLACK_POINT

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PHOTOS = SHARED / "data" / "photos"
EXAMPLES = ROOT / "examples"  # the README's photos: held out too
MODELS = ROOT / "src" / "csrnet" / "models"
CONDITION_SIZE = 256  # global faults need no more; 4x cheaper than 500 px to train and run


def to8(x: np.ndarray) -> np.ndarray:
    return from_float(x, np.uint8)


def augment(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random crop (60-100 % of each side) and flip, so the condition network cannot memorise photos."""
    h, w = x.shape[:2]
    ch, cw = int(h * rng.uniform(0.6, 1.0)), int(w * rng.uniform(0.6, 1.0))
    y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    x = x[y0 : y0 + ch, x0 : x0 + cw]
    return np.ascontiguousarray(x[:, ::-1] if rng.random() < 0.5 else x)


#: A fault: fn(x, rng) -> (degraded, names of the faults, the target it stands for: ``x`` itself, or
#: ``x`` as an editor would finish it).
Fault = Callable[[np.ndarray, np.random.Generator], tuple[np.ndarray, list[str], np.ndarray]]


def exposure_fault(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, list[str], np.ndarray]:
    """An exposure change of uniform(-2, 2) EV (csrnet.training.degrade's), named like random_degradation's."""
    from csrnet.training.degrade import OPERATIONS

    return OPERATIONS["exposure"](x, rng), ["exposure"], x


def mix_fault(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, list[str], np.ndarray]:
    """1-3 random global faults (csrnet.training.degrade.random_degradation)."""
    from csrnet.training.degrade import random_degradation

    return (*random_degradation(x, rng), x)


def camera_fault(x: np.ndarray, rng: np.random.Generator, black_point: float | None = None) -> tuple[np.ndarray, list[str], np.ndarray]:
    """A camera-like rendition (csrnet.training.rendition, fitted to the FiveK pairs), named like random_degradation's.
    With ``black_point``, the rendition is made of, and stands for, ``x`` with its black point set
    (rendition.set_black_point): an editor's version, not the photo's own matte finish."""
    from csrnet.training.rendition import camera_rendition, edited_rendition

    if black_point is None:
        return camera_rendition(x, rng), ["camera"], x
    rendition, edited = edited_rendition(x, rng, black_point)
    return rendition, ["camera"], edited


#: The ``camera`` recipe's faults (the default model ``auto``): camera renditions most of the time,
#: exposure faults (so the specialist ``exposure`` is not needed for them) and the random mix of
#: global faults. Every third example is left clean besides (the recipe's identity_every).
CAMERA_MIX = (("camera", 0.55), ("exposure", 0.25), ("mix", 0.20))


def camera_mix_fault(x: np.ndarray, rng: np.random.Generator, shares: tuple[tuple[str, float], ...] | None = None,
                     black_point: float | None = None) -> tuple[np.ndarray, list[str], np.ndarray]:
    names, weights = zip(*(shares or CAMERA_MIX))
    return fault_maker(str(rng.choice(names, p=np.array(weights) / sum(weights))), black_point)(x, rng)


def fault_maker(faults: str, black_point: float | None = None) -> Fault:
    """``faults`` -> its :data:`Fault`; ``black_point``: camera_fault's."""
    from functools import partial

    if faults == "camera":
        return partial(camera_fault, black_point=black_point)
    if faults == "camera-mix":
        return partial(camera_mix_fault, black_point=black_point)
    return {"mix": mix_fault, "exposure": exposure_fault}[faults]


def write_pairs(photos: list[Path], root: Path, variants: int, seed: int, identity_every: int, faults: str = "mix",
                black_point: float | None = None) -> list[dict]:
    """``black_point``: camera faults' targets get their black point set (camera_fault); the others keep the photo's."""
    degrade = fault_maker(faults, black_point)
    (root / "input").mkdir(parents=True)
    (root / "target").mkdir()
    rng = np.random.default_rng(seed)
    rows = []
    for p in photos:
        full = load_small(p)
        for v in range(variants):
            name = f"{p.stem}__{v}"
            target = augment(full, rng)
            if identity_every and v % identity_every == identity_every - 1:
                degraded, ops = target, ["none"]  # do-no-harm examples
            else:
                degraded, ops, target = degrade(target, rng)
            Image.fromarray(to8(degraded)).save(root / "input" / f"{name}.png")
            Image.fromarray(to8(target)).save(root / "target" / f"{name}.png")
            rows.append({"name": name, "ops": "+".join(ops)})
    return rows


def psnr8(a: np.ndarray, b: np.ndarray) -> float:
    """8-bit PSNR (csrnet.evaluation.metrics.psnr) capped at 60 dB, as bench/default_model.py caps it:
    one unchanged photo (an exposure fault of ~0 EV) would otherwise make a mean infinite."""
    from csrnet.evaluation.metrics import psnr

    return min(60.0, psnr(a, b))


def _held_out_gain(model, held: list[Path], seed: int, degrade) -> tuple[float, float]:
    """Mean PSNR (identity, model) over 3 faults per held-out photo."""
    import csrnet

    rng = np.random.default_rng(seed + 1000)
    ident, restored = [], []
    for p in held:
        target = to8(load_small(p))
        for _ in range(3):
            d8 = to8(degrade(target.astype(np.float32) / 255, rng)[0])
            ident.append(psnr8(d8, target))
            restored.append(psnr8(csrnet.enhance(d8, model), target))
    return float(np.mean(ident)), float(np.mean(restored))


def measure(model, held: list[Path], seed: int, faults: str = "mix") -> dict:
    """Held-out: degraded vs restored PSNR on the model's own faults (and on the mix, for a
    specialist), do-no-harm on clean photos, FiveK pairs out of distribution."""
    import csrnet
    from csrnet.training.data import find_pairs, read_rgb

    ident, restored = _held_out_gain(model, held, seed, fault_maker("camera" if faults == "camera-mix" else faults))
    harm = [psnr8(csrnet.enhance(t, model), t) for t in (to8(load_small(p)) for p in held)]
    fivek_id, fivek_out = [], []
    for pair in find_pairs(SHARED / "data" / "fivek_pairs"):
        x, y = to8(read_rgb(pair.input)), to8(read_rgb(pair.target))
        fivek_id.append(psnr8(x, y))
        fivek_out.append(psnr8(csrnet.enhance(x, model), y))
    out = {
        "heldout_photos": len(held),
        "heldout_degraded_identity_psnr": round(ident, 2),
        "heldout_degraded_restored_psnr": round(restored, 2),
        "heldout_gain_db": round(restored - ident, 2),
        "do_no_harm_psnr": round(float(np.mean(harm)), 2),
        "fivek_identity_psnr": round(float(np.mean(fivek_id)), 2),
        "fivek_model_psnr": round(float(np.mean(fivek_out)), 2),
    }
    if faults != "mix":
        mix_ident, mix_restored = _held_out_gain(model, held, seed, fault_maker("mix"))
        out.update(mix_identity_psnr=round(mix_ident, 2), mix_restored_psnr=round(mix_restored, 2))
    if faults == "camera-mix":
        exp_ident, exp_restored = _held_out_gain(model, held, seed, fault_maker("exposure"))
        out.update(exposure_identity_psnr=round(exp_ident, 2), exposure_restored_psnr=round(exp_restored, 2))
    return out


def sheet(model, held: list[Path], out: Path, seed: int, faults: str = "mix", label: str = "auto") -> None:
    """Rows: degraded held-out photo | restored | original."""
    import csrnet
    from PIL import ImageDraw

    rng = np.random.default_rng(seed + 7)
    # camera-mix: four camera renditions, then the cases where it does little: an exposure fault, a
    # finished photo (left alone) and a random mild fault (cannot be told from the photo's own look)
    kinds = ["camera"] * 4 + ["exposure", "none", "mix"] if faults == "camera-mix" else [faults] * 5
    tiles = []
    for p, kind in zip(held, kinds):
        t = load_small(p)
        d, ops, _ = (t, ["none (a finished photo)"], t) if kind == "none" else fault_maker(kind)(t, rng)
        d8 = to8(d)
        tiles.append([(d8, "input: " + "+".join(ops)), (csrnet.enhance(d8, model), label), (to8(t), "original")])
    w = 300
    cells = [[Image.fromarray(a).resize((w, int(w * a.shape[0] / a.shape[1]))) for a, _ in row] for row in tiles]
    heights = [max(c.height for c in row) + 18 for row in cells]
    canvas = Image.new("RGB", (3 * w + 8, sum(heights)), "white")
    y = 0
    draw = ImageDraw.Draw(canvas)
    for row, labels, h in zip(cells, tiles, heights):
        for i, (c, (_, label)) in enumerate(zip(row, labels)):
            canvas.paste(c, (i * (w + 4), y + 16))
            draw.text((i * (w + 4) + 2, y + 2), label[:48], fill="black")
        y += h
    canvas.save(out)


LIMITATIONS = """
## Limitations (measured; per-fault figures on 16 held-out photos; ceilings: `python bench/auto_ceiling.py`)
The model fixes clear exposure faults (−1.5 EV: 14.5 → 19.0 dB; +1 EV: 16.2 → 21.2 dB) and lifts the
FiveK inputs by 3.7 dB, but it cannot tell a mild cast, contrast or saturation change from a photo's
natural look and nudges all photos toward a typical one (white balance 29.4 → 26.4 dB, saturation
30.3 → 26.4 dB), so on the random mix of faults it gains only a fraction of a dB — short of the +6 dB
target, which no corrector that sees only the degraded photo came near: on the same mix an exposure
shift learned from the photo's brightness gains +0.03 dB, grey-world white balance −2.84 dB and
histogram matching −4.13 dB, and a clean photo moved to a typical brightness is 25.7 dB from itself
(bench/results/auto_ceiling.md). Use `--strength` below 1 for well-exposed photos, `--model exposure`
for photos whose fault is exposure alone (+6.3 dB on held-out exposure faults, see its card), or
fine-tune on your own pairs.
"""


KINDS = {
    "mix": dict(
        name="auto", title="csrnet's bundled default model",
        summary="default: undoes exposure, white-balance, contrast, saturation and tone-curve faults",
        purpose="to undo common global faults of\nwell-exposed photos: exposure ±2 EV, gamma, contrast, black/white point, white-balance casts,\n"
                "saturation and tone curves, 1–3 at a time (`csrnet.training.degrade`)",
        variants="then 1–3 random degradations", row="degraded held-out photos (3 random degradations each)",
        recipe=dict(arch="csrnet", batch=4, pixels=8192, iters=10000, variants=16, identity_every=4)),
    "camera-mix": dict(
        name="auto", title="csrnet's bundled default model",
        summary="default, for any photo: takes flat, dark camera renditions to a finished look, corrects exposure and "
                "other global faults, leaves finished photos nearly alone",
        purpose="to take camera renditions of\nphotos (darker, flatter, duller, off in white balance: `csrnet.training.rendition`, fitted to how the\n"
                "FiveK camera renditions differ from the experts' versions) to the finished photo, and to undo exposure\n"
                "faults (±2 EV) and random global faults (`csrnet.training.degrade`)",
        variants="then a camera rendition (55 %) — made from, and trained toward, the photo with an editor's black "
                 "point (luma 1st percentile at most 0.03) —, an exposure fault (25 %) or 1–3 random faults (20 %)",
        row="held-out camera renditions (3 per photo; the reference is the photo's own finish)",
        recipe=dict(arch="csrnet-hist", batch=16, pixels=2048, iters=5000, variants=32, black_point=EDITOR_BLACK_POINT,
                    identity_every=3)),
    "exposure": dict(
        name="exposure", title="csrnet's bundled exposure model",
        summary="instead of auto for a photo that is only too dark or too bright (up to 2 EV): corrects exposure further "
                "than auto, but also moves finished photos (night, snow, low key)",
        purpose="to undo exposure faults of\nwell-exposed photos: up to ±2 EV in linear light, highlights clipped (`csrnet.training.degrade.exposure`)",
        variants="then one exposure change of uniform ±2 EV", row="held-out photos, 3 random exposures (±2 EV) each",
        recipe=dict(arch="csrnet", batch=4, pixels=8192, iters=10000, variants=16, identity_every=4)),
}


def limitations(faults: str, metrics: dict) -> str:
    if faults == "mix":
        return LIMITATIONS.lstrip()
    if faults == "camera-mix":
        return f"""## What it does and where it does little (measured; the full table: `python bench/default_model.py`)
It is trained for the photos cameras produce — flat, dark, dull renditions with a white-balance
error — and lifts the 18 FiveK camera renditions from {metrics['fivek_identity_psnr']} to {metrics['fivek_model_psnr']} dB against
the expert's edit, more than Pillow's autocontrast, equalize, grey-world or auto levels + gamma
(bench/results/default_model.md). It leaves finished photos nearly alone (do-no-harm
{metrics['do_no_harm_psnr']} dB) and fixes exposure faults ({metrics['exposure_identity_psnr']} → {metrics['exposure_restored_psnr']} dB), though the specialist
`exposure` model goes further on pure exposure faults (its card) at the price of moving clean photos.
It does little on mild casts, contrast or saturation changes of an already finished photo
(random mix {metrics['mix_identity_psnr']} → {metrics['mix_restored_psnr']} dB): from one photo alone such a change cannot be told
from the photo's own look (bench/results/auto_ceiling.md). It never sees the expert's taste — FiveK
is validation only (it sets the sampler's statistics) — so it brings camera renditions to the look of
the bundled photos with an editor's black point, not to expert C's. A photo finished with a matte,
raised black keeps it; a camera rendition of one gets deeper blacks than its own finish, so the camera
row above, measured against the photo's own finish, understates what it is trained for: against the
edited photo see `python bench/default_model.py`, "camera → edited".
"""
    return f"""## Limitations (measured by `python scripts/train_default.py --faults exposure`)
It corrects brightness the way an exposure change alters it and knows nothing of casts, contrast or
saturation faults: on the random mix of faults `auto` is trained for it scores
{metrics['mix_restored_psnr']} dB against identity {metrics['mix_identity_psnr']} dB (`auto`'s card has its own figure). It also moves
clean photos toward a typical brightness (do-no-harm {metrics['do_no_harm_psnr']} dB, below the 30 dB asked of the default
`auto`), so a photo that is dark or bright on purpose (night, snow, low key) gets brighter or darker:
use it on photos with an exposure fault, with `--strength` below 1 where the fault is mild.
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--iters", type=int, default=None, help="training steps (default: the kind's recipe, KINDS)")
    ap.add_argument("--variants", type=int, default=None, help="degraded variants per photo (default: the kind's recipe)")
    ap.add_argument("--faults", choices=sorted(KINDS), default="camera-mix",
                    help="camera-mix: the model auto; exposure: the model exposure; mix: the previous auto")
    ap.add_argument("--arch", choices=("csrnet", "csrnet-hist"), default=None,
                    help="csrnet-hist: the condition network also reads colour histograms (csrnet.arch.csrnet.CSRNetHist); "
                         "default: the kind's recipe")
    ap.add_argument("--shares", default=None,
                    help="camera-mix's shares of fault kinds, e.g. camera=0.5,exposure=0.35,mix=0.15 (default: CAMERA_MIX)")
    ap.add_argument("--black-point", type=float, default=None,
                    help="camera faults: set the target's black point first (luma 1st percentile at most this; "
                         "csrnet.training.rendition.set_black_point), as an editor would. Renditions then come from "
                         "FIVEK_FIT_EDITED, fitted for 0.03: another value wants its own fit "
                         "(bench/fivek_statistics.py --black-point V)")
    ap.add_argument("--identity-every", type=int, default=None,
                    help="leave every n-th example clean (do-no-harm examples; default: the kind's recipe, 3 or 4)")
    ap.add_argument("--batch", type=int, default=None, help="photos per step (default: the kind's recipe)")
    ap.add_argument("--pixels", type=int, default=None, help="pixels per photo and step (default: the kind's recipe)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: the idle cores)")
    ap.add_argument("--minutes", type=float, default=None, help="stop early after this much wall time")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--run", type=Path, default=None, help="run folder (default: a temporary one)")
    ap.add_argument("--init", type=Path, default=None, help="start from these weights (longer training in steps)")
    ap.add_argument("--lr", type=float, default=None, help="learning rate (default: the fast recipe's)")
    ap.add_argument("--pairs", type=Path, default=None,
                    help="train on this pairs folder (kept) instead of writing new pairs: reuse one from --keep-pairs")
    ap.add_argument("--keep-pairs", type=Path, default=None, help="write the pairs here and keep them")
    ap.add_argument("--weights", type=Path, default=None,
                    help="skip training: measure these weights (a finished run of the same recipe) and write the card")
    ap.add_argument("--out", type=Path, default=MODELS, help="where NAME.safetensors and NAME.md go (default: the bundled models)")
    args = ap.parse_args()
    from csrnet.training.train import train
    from csrnet.weights import load_model, save_model, sha256_file

    if args.shares:
        global CAMERA_MIX
        CAMERA_MIX = tuple((k, float(v)) for k, v in (part.split("=") for part in args.shares.split(",")))
    kind = KINDS[args.faults]
    for key, value in kind["recipe"].items():  # what is not given on the command line: the kind's recipe
        if getattr(args, key) is None:
            setattr(args, key, value)
    name = kind["name"]
    photos = sorted(PHOTOS.glob("*.jpg"))
    train_photos, held = split(photos, EXAMPLES)
    licenses = {r["file"]: r["license"] for r in csv.DictReader(open(PHOTOS / "MANIFEST.csv"))}
    work = Path(tempfile.mkdtemp(prefix=f"csrnet-{name}-"))
    run = args.run or work / "run"
    t0 = time.time()
    if args.weights:  # measured and carded again, not trained: the minutes are the training run's
        weights, minutes = args.weights, float(load_model(args.weights).meta.get("train_minutes", 0.0))
    else:
        pairs = args.pairs or args.keep_pairs or work / "pairs"
        if args.pairs is None:
            write_pairs(train_photos, pairs, args.variants, args.seed, identity_every=args.identity_every, faults=args.faults,
                        black_point=args.black_point)
        weights = train(pairs, run, recipe="fast", iters=args.iters, seed=args.seed, condition_size=CONDITION_SIZE,
                        init=args.init, lr=args.lr, arch=args.arch, threads=args.threads,
                        batch=args.batch, pixels=args.pixels,
                        max_seconds=args.minutes * 60 if args.minutes else None, val_fraction=0.05)
        minutes = (time.time() - t0) / 60
    model = load_model(weights)
    metrics = measure(model, held, args.seed, args.faults)
    lic_counts: dict[str, int] = {}
    for p in train_photos:
        lic_counts[licenses.get(p.name, "?")] = lic_counts.get(licenses.get(p.name, "?"), 0) + 1
    model.meta.update(
        summary=kind["summary"],
        source="trained by scripts/train_default.py (this repository)",
        training_data=f"{len(train_photos)} photos of ../shared/data/photos x {args.variants} degradations (held out: {len(held)})",
        training_licenses=lic_counts,
        license="weights: CC-BY-SA-4.0 (share-alike terms of some training photos; see the card)",
        command=model.meta.get("command") if args.weights else " ".join(["python", "scripts/train_default.py"] + sys.argv[1:]),
        train_minutes=round(minutes, 1),
        metrics=metrics,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    dst = save_model(model, args.out / f"{name}.safetensors")
    sheet(model, held, (ROOT / "docs" if args.out == MODELS else args.out) / f"{name}_before_after.png", args.seed, args.faults, name)
    mix_row = "" if args.faults == "mix" else (
        f"| random mixes of faults, 3 per photo | {metrics['mix_identity_psnr']} dB | {metrics['mix_restored_psnr']} dB |\n")
    if args.faults == "camera-mix":
        mix_row += (f"| exposure faults (±2 EV), 3 per photo | {metrics['exposure_identity_psnr']} dB "
                    f"| {metrics['exposure_restored_psnr']} dB |\n")
    tr = model.meta.get("training", {})
    network = ("CSRNet with a colour-statistics branch in its condition network (`csrnet-hist`, "
               f"{model.num_parameters:,} parameters: `csrnet.arch.csrnet.CSRNetHist`)" if model.arch == "csrnet-hist"
               else f"CSRNet ({model.num_parameters:,} parameters)")
    clean_share = {3: "every third", 4: "every fourth"}.get(args.identity_every, f"one in {args.identity_every}")
    card = f"""# `{name}` — {kind['title']}

{network}, trained by this repository's own code {kind['purpose']}, with {clean_share} example left
undegraded so good photos are left alone.

- **Data**: {len(train_photos)} photos from `../shared/data/photos` (long edge {LONG_EDGE} px), {args.variants} variants each (random crop and flip, {kind['variants']}).
  Held out, never trained on: {len(held)} photos (a fixed fifth by name hash, plus `examples/`).
  Licenses of the training photos: {json.dumps(lic_counts)}. Attributions: `../shared/data/photos/MANIFEST.csv`.
  Because some are CC-BY-SA / GPL, the weights are offered under CC-BY-SA-4.0.
- **Recipe**: `csrnet.training.train` fast recipe (L1 on {tr.get('pixels_per_image', args.pixels)} random pixels of each of
  {tr.get('batch', args.batch)} photos per step, condition network on a {CONDITION_SIZE}-px copy), {tr.get('iters', args.iters)} steps,
  seed {tr.get('seed', args.seed)}; {minutes:.1f} min on 2 CPU cores.
- **Reproduce**: `{model.meta['command']}`
- **Weights sha256**: `{sha256_file(dst)}`

## Measured (held-out photos, 8-bit PSNR)
| check | identity | {name} |
|---|---|---|
| {kind['row']} | {metrics['heldout_degraded_identity_psnr']} dB | {metrics['heldout_degraded_restored_psnr']} dB (+{metrics['heldout_gain_db']} dB) |
{mix_row}| do-no-harm: clean held-out photos, output vs input | — | {metrics['do_no_harm_psnr']} dB |
| out of distribution: 18 FiveK pairs (input → expert C) | {metrics['fivek_identity_psnr']} dB | {metrics['fivek_model_psnr']} dB |

{limitations(args.faults, metrics)}
![before/after](../../../docs/{name}_before_after.png)
"""
    (args.out / f"{name}.md").write_text(card)
    print(card)
    shutil.rmtree(work / "pairs", ignore_errors=True)


if __name__ == "__main__":
    main()
