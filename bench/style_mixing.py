"""Style mixing, measured: blend two style models by their lattices or by their modulations.

    python bench/style_mixing.py [--iters N]

Style models: the released checkpoint's conditional branch fine-tuned (`--freeze base`, so all
share one base network) to map expert C's rendition of the three FiveK photos in
../shared/data/fivek_experts to expert A, B, D or E's. No raw inputs ship with those photos, so
expert C plays the "before"; all three photos are used for training (this measures how the blend
behaves, not how the styles generalise). For weights w, the blended output is compared with the
same blend of the two experts' renditions, w*X + (1-w)*Y. Prints a table; writes docs/style_mixing.png.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from common import RELEASED, ROOT, SHARED

EXPERTS = SHARED / "data" / "fivek_experts"
LONG_EDGE = 512
PAIRS_TO_MIX = [("A", "E"), ("B", "D")]
WEIGHTS = [0.0, 0.25, 0.5, 0.75, 1.0]


def load(path: Path, size: tuple[int, int] | None = None) -> Image.Image:
    im = Image.open(path).convert("RGB")
    if size is None:
        im.thumbnail((LONG_EDGE, LONG_EDGE), Image.Resampling.LANCZOS)
        return im
    return im.resize(size, Image.Resampling.LANCZOS)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=None)
    args = ap.parse_args()
    import csrnet
    from csrnet.evaluation.metrics import psnr
    from csrnet.training.train import train

    stems = sorted({p.name.rsplit("_", 1)[0] for p in EXPERTS.glob("*_C.jpg")})
    src = {s: load(EXPERTS / f"{s}_C.jpg") for s in stems}
    renditions = {(s, e): np.asarray(load(EXPERTS / f"{s}_{e}.jpg", src[s].size)) for s in stems for e in "ABDE"}
    tmp = Path(tempfile.mkdtemp(prefix="csrnet-mix-"))
    models = {}
    try:
        for expert in sorted({e for pair in PAIRS_TO_MIX for e in pair}):
            folder = tmp / expert
            (folder / "input").mkdir(parents=True)
            (folder / "target").mkdir()
            for s in stems:
                src[s].save(folder / "input" / f"{s}.png")
                Image.fromarray(renditions[(s, expert)]).save(folder / "target" / f"{s}.png")
            weights = train(folder, tmp / f"run_{expert}", init=str(RELEASED), freeze="base", iters=args.iters, seed=0, progress=False)
            models[expert] = csrnet.load_model(weights)
            models[expert].name = f"expert{expert}"
        print("\n| blend | w (first) | PSNR lut blend | PSNR modulation blend |\n|---|---|---|---|")
        totals = {"lut": [], "modulation": []}
        sheet_rows = []
        for x, y in PAIRS_TO_MIX:
            for w in WEIGHTS:
                row = {}
                for mode in ("lut", "modulation"):
                    blend = csrnet.Blend(((models[x], w), (models[y], 1 - w)), mode=mode)
                    vals = []
                    for s in stems:
                        out = csrnet.enhance(np.asarray(src[s]), blend, lut_size=65)
                        target = np.clip(w * renditions[(s, x)] + (1 - w) * renditions[(s, y)] + 0.5, 0, 255).astype(np.uint8)
                        vals.append(psnr(out, target))
                        if s == stems[0] and (x, y) == PAIRS_TO_MIX[0]:
                            sheet_rows.append((mode, w, out))
                    row[mode] = float(np.mean(vals))
                    totals[mode].append(row[mode])
                print(f"| {x}:{w:g} + {y}:{1 - w:g} | {w:g} | {row['lut']:.2f} | {row['modulation']:.2f} |")
        print(f"| mean | | {np.mean(totals['lut']):.2f} | {np.mean(totals['modulation']):.2f} |")
        # picture: rows = modes, columns = weights, for the first photo and the first pair
        thumbs = {(m, w): Image.fromarray(o).resize((256, int(256 * o.shape[0] / o.shape[1]))) for m, w, o in sheet_rows}
        h = next(iter(thumbs.values())).height
        canvas = Image.new("RGB", (len(WEIGHTS) * 260 + 90, 2 * (h + 20)), "white")
        draw = ImageDraw.Draw(canvas)
        for r, mode in enumerate(("lut", "modulation")):
            draw.text((4, r * (h + 20) + h // 2), mode, fill="black")
            for c, w in enumerate(WEIGHTS):
                canvas.paste(thumbs[(mode, w)], (90 + c * 260, r * (h + 20) + 16))
                draw.text((90 + c * 260, r * (h + 20) + 2), f"{PAIRS_TO_MIX[0][0]} {w:g} / {PAIRS_TO_MIX[0][1]} {1 - w:g}", fill="black")
        (ROOT / "docs").mkdir(exist_ok=True)
        canvas.save(ROOT / "docs" / "style_mixing.png")
        print("\npicture: docs/style_mixing.png")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
