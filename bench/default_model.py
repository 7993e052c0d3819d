"""The default model against identity, the classic blind corrections and the other bundled models (issue 18).

    python bench/default_model.py                         # the bundled models; writes bench/results/default_model.md
    python bench/default_model.py --model NAME_OR_FILE    # add candidates (repeatable), e.g. a fresh training's weights

Test sets (8-bit PSNR to the reference, mean over photos; ΔE2000 mean, CIE Lab D65, for FiveK):
- **FiveK**: the 18 shared pairs, camera-default input rendition -> expert C (research licence:
  validation only, never trained on);
- **camera**: held-out photos (csrnet.training.heldout, never trained on) turned into camera-like
  renditions by csrnet.training.rendition.camera_rendition (2 draws per photo, fixed seed), against
  the photo's own finish;
- **camera → edited**: the same photos with an editor's black point (rendition.set_black_point, luma
  1st percentile at most 0.03: a third of the photos are finished with a matte, raised black), made
  into renditions by the sampler fitted for such photos (FIVEK_FIT_EDITED), against the edited photo:
  what `auto` is trained for since the fifth session;
- **exposure**: held-out photos with an exposure fault of uniform ±2 EV (3 per photo, fixed seed);
- **mix**: held-out photos with 1-3 random global faults (csrnet.training.degrade, 3 per photo);
- **do no harm**: clean held-out photos, output vs input.

Blind corrections (what users have at hand): Pillow ``ImageOps.autocontrast(cutoff=1)``,
``ImageOps.equalize``, grey-world white balance (channel means equalised in linear light) and
"auto levels + gamma": per-image 0.5/99.5 % luma levels, then the gamma that brings the mean luma
to mid-grey 0.5 (clipped to [1/2.2, 2.2]).
The speed row: the model stage (``csrnet.enhance`` on an in-memory 24 MP array, median of 3).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

import csrnet
from csrnet.evaluation.metrics import delta_e2000
from csrnet.training.data import find_pairs, read_rgb
from csrnet.training.degrade import exposure, linear_to_srgb, random_degradation, srgb_to_linear
from csrnet.training.heldout import load_small, split
from csrnet.training.rendition import camera_rendition, edited_rendition

from common import EXAMPLES, PHOTOS, ROOT, SHARED, make_mosaic, psnr, to8

PAIRS = SHARED / "data" / "fivek_pairs"
OUT = ROOT / "bench" / "results" / "default_model.md"
LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)

Method = Callable[[np.ndarray], np.ndarray]  # uint8 (H, W, 3) -> uint8 (H, W, 3)


def autocontrast(x: np.ndarray) -> np.ndarray:
    return np.asarray(ImageOps.autocontrast(Image.fromarray(x), cutoff=1))


def equalize(x: np.ndarray) -> np.ndarray:
    return np.asarray(ImageOps.equalize(Image.fromarray(x)))


def grey_world(x: np.ndarray) -> np.ndarray:
    lin = srgb_to_linear(x.astype(np.float32) / 255)
    means = lin.reshape(-1, 3).mean(axis=0) + 1e-6
    return to8(linear_to_srgb(lin * (means.mean() / means)))


def levels_gamma(x: np.ndarray) -> np.ndarray:
    f = x.astype(np.float32) / 255
    lo, hi = np.percentile(f @ LUMA, [0.5, 99.5])
    f = np.clip((f - lo) / max(hi - lo, 1e-3), 0, 1)
    mean = float((f @ LUMA).mean())
    g = float(np.clip(np.log(0.5) / np.log(min(max(mean, 1e-3), 0.999)), 1 / 2.2, 2.2))
    return to8(f**g)


def model_method(model) -> Method:
    return lambda x: csrnet.enhance(x, model)


def test_sets(seed: int) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """name -> [(input uint8, reference uint8)]."""
    fivek = [(to8(read_rgb(p.input)), to8(read_rgb(p.target))) for p in find_pairs(PAIRS)]
    _, held = split(sorted(PHOTOS.glob("*.jpg")), EXAMPLES)
    clean = [load_small(p) for p in held]
    rng = np.random.default_rng(seed)
    camera = [(to8(camera_rendition(c, rng)), to8(c)) for c in clean for _ in range(2)]
    rng = np.random.default_rng(seed + 3)
    camera_edited = [tuple(map(to8, edited_rendition(c, rng))) for c in clean for _ in range(2)]
    expo = [(x, y) for x, y, _ in exposure_set(clean, seed)]
    rng = np.random.default_rng(seed + 2)
    mix = [(to8(random_degradation(c, rng)[0]), to8(c)) for c in clean for _ in range(3)]
    harm = [(to8(c), to8(c)) for c in clean]
    return {"FiveK": fivek, "camera": camera, "camera → edited": camera_edited, "exposure": expo, "mix": mix,
            "do no harm": harm}


def exposure_set(clean: list[np.ndarray], seed: int) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """[(input uint8, reference uint8, EV)]: 3 exposure faults of uniform ±2 EV per clean photo, as
    csrnet.training.degrade.OPERATIONS["exposure"] draws them (seed + 1); bench/exposure_bins.py bins them by EV."""
    rng = np.random.default_rng(seed + 1)
    out = []
    for c in clean:
        for _ in range(3):
            ev = float(rng.uniform(-2.0, 2.0))
            out.append((to8(exposure(c, ev)), to8(c), ev))
    return out


def score(method: Method, pairs: list[tuple[np.ndarray, np.ndarray]], with_de: bool) -> tuple[float, float | None]:
    outs = [(method(x), y) for x, y in pairs]
    p = float(np.mean([min(psnr(o, y), 60.0) for o, y in outs]))
    return p, (float(np.mean([delta_e2000(o, y) for o, y in outs])) if with_de else None)


def model_seconds(model, photo: np.ndarray) -> float:
    csrnet.enhance(photo, model)
    return statistics.median(_timed(lambda: csrnet.enhance(photo, model)) for _ in range(3))


def _timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", action="append", default=[], help="a candidate model (name or weights file); repeatable")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--candidates-only", action="store_true",
                    help="screening: only identity and the --model candidates (no baselines, no bundled models)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    sets = test_sets(args.seed)
    methods: dict[str, Method] = {"identity": lambda x: x, "autocontrast (1 %)": autocontrast, "equalize": equalize,
                                  "grey world": grey_world, "auto levels + gamma": levels_gamma}
    models = {}
    if args.candidates_only:
        methods = {"identity": methods["identity"]}
    for name in ([] if args.candidates_only else ["auto", "exposure"]) + args.model:
        label = name if name in csrnet.list_models() else f"{Path(name).parent.name}/{Path(name).stem}"
        models[label] = csrnet.load_model(name)
        methods[f"model `{label}`"] = model_method(models[label])
    header = ["method", "FiveK PSNR", "FiveK ΔE2000", *[f"{k} PSNR" for k in sets if k != "FiveK"]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, method in methods.items():
        cells = []
        for name, pairs in sets.items():
            p, de = score(method, pairs, with_de=name == "FiveK")
            cells += [f"{p:.2f}"] + ([f"{de:.2f}"] if de is not None else [])
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    sizes = {k: len(v) for k, v in sets.items()}
    text = ["# The default model against blind corrections (bench/default_model.py)", "",
            f"`python bench/default_model.py {' '.join(sys.argv[1:])}`".replace(" `", "`"),
            f"(seed {args.seed}; pairs per set: {sizes}; PSNR capped at 60 dB per photo)", "", *lines]
    if not args.no_speed:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            big = np.asarray(Image.open(make_mosaic(24, Path(tmp) / "m.jpg")).convert("RGB"))
        text += ["", "| model | model stage, 24 MP in memory (median of 3) |", "|---|---|"]
        text += [f"| `{label}` | {model_seconds(m, big):.3f} s |" for label, m in models.items()]
    OUT.parent.mkdir(exist_ok=True)
    args.out.write_text("\n".join(text) + "\n")
    print("\n".join(text))


if __name__ == "__main__":
    main()
