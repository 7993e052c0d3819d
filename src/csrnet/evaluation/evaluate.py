"""Evaluate models on paired data: per-image and mean metrics, CSV + Markdown report, contact sheet.

For every pair ``(input, target)`` found by :func:`csrnet.training.data.find_pairs`, each model's
output ``csrnet.enhance(input, model)`` is quantised to 8 bit (as the saved image would
be) and compared with the target by every metric of :data:`csrnet.evaluation.metrics.METRICS`.
An ``identity`` row (the input itself against the target) is always included: it is the
baseline a model has to beat.

Report files (``report_dir``):

* ``metrics.csv`` — one row per (model, image) plus one ``mean`` row per model; columns
  ``model, image, psnr, ssim, ssim_matlab, delta_e76, delta_e2000``, values to 10
  significant digits.
* ``metrics.md`` — :meth:`EvalResult.to_markdown` (mean table, per-image PSNR table).
* ``contact_sheet.png`` — rows are images; columns input, each model, target; labelled.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..errors import CsrnetError
from ..io.formats import read_photo
from ..kernels.pixels import to_float
from ..pipeline import ConditionSize, enhance
from ..training.data import find_pairs, read_rgb
from ..weights import Model, load_model
from . import metrics as _m

__all__ = ["IDENTITY", "ImageScores", "EvalResult", "evaluate", "write_csv", "read_csv", "contact_sheet"]

#: Label of the input-vs-target baseline row.
IDENTITY = "identity"
_THUMB = 200  # contact-sheet thumbnail long edge (px)
_HEADERS = {
    "psnr": "PSNR (dB) ↑",
    "ssim": "SSIM ↑",
    "ssim_matlab": "SSIM 3D-LUT ↑",
    "delta_e76": "ΔE76 ↓",
    "delta_e2000": "ΔE2000 ↓",
}


@dataclass(frozen=True)
class ImageScores:
    """All metrics of one model's result on one image (``model`` is :data:`IDENTITY` for the input)."""

    model: str
    image: str
    psnr: float
    ssim: float
    ssim_matlab: float
    delta_e76: float
    delta_e2000: float

    def values(self) -> dict[str, float]:
        """Metric name -> value, in :data:`csrnet.evaluation.metrics.METRICS` order."""
        return {k: getattr(self, k) for k in _m.METRICS}


@dataclass
class EvalResult:
    """Per-image scores of every model (identity first) and the files written, if any."""

    models: list[str]
    images: list[str]
    rows: list[ImageScores]
    files: dict[str, Path] = field(default_factory=dict)

    def scores(self, model: str) -> list[ImageScores]:
        """The per-image rows of ``model`` in image order."""
        return [r for r in self.rows if r.model == model]

    def mean(self, model: str) -> dict[str, float]:
        """Mean of each metric over the images for ``model`` (arithmetic mean of per-image values)."""
        rows = self.scores(model)
        if not rows:
            raise KeyError(model)
        return {k: float(np.mean([r.values()[k] for r in rows])) for k in _m.METRICS}

    @property
    def means(self) -> dict[str, dict[str, float]]:
        """model -> metric -> mean, for every model (identity included)."""
        return {m: self.mean(m) for m in self.models}

    def to_markdown(self) -> str:
        """A mean table (one row per model) and a per-image PSNR table (one column per model)."""
        n = len(self.images)
        lines = [
            f"Mean over {n} image{'s' if n != 1 else ''} (8-bit sRGB; {IDENTITY} = input vs target)",
            "",
            "| model | " + " | ".join(_HEADERS[k] for k in _m.METRICS) + " |",
            "|---|" + "---:|" * len(_m.METRICS),
        ]
        for model in self.models:
            mean = self.mean(model)
            lines.append(f"| {model} | " + " | ".join(_fmt(k, mean[k]) for k in _m.METRICS) + " |")
        lines += ["", "PSNR (dB) per image", "", "| image | " + " | ".join(self.models) + " |", "|---|" + "---:|" * len(self.models)]
        by_key = {(r.model, r.image): r for r in self.rows}
        for image in self.images:
            lines.append(f"| {image} | " + " | ".join(_fmt("psnr", by_key[(m, image)].psnr) for m in self.models) + " |")
        lines += [
            "",
            "SSIM: Gaussian 11x11, sigma 1.5, per RGB channel. SSIM 3D-LUT: Wang's ssim.m with automatic "
            "downsampling on the RGB array, as in the 3D-LUT/AdaInt MATLAB scripts. ΔE: CIELAB (sRGB, D65).",
        ]
        return "\n".join(lines) + "\n"


def _fmt(metric: str, value: float) -> str:
    if math.isinf(value):
        return "inf"
    return f"{value:.2f}" if metric in ("psnr", "delta_e76", "delta_e2000") else f"{value:.4f}"


# ------------------------------------------------------------------------------ CSV
_CSV_FIELDS = ["model", "image", *_m.METRICS]


def write_csv(result: EvalResult, path: str | os.PathLike[str]) -> Path:
    """Per-image rows then one ``image == "mean"`` row per model; floats to 10 significant digits."""
    path = Path(path)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(_CSV_FIELDS)
        for r in result.rows:
            w.writerow([r.model, r.image, *(f"{v:.10g}" for v in r.values().values())])
        for model in result.models:
            w.writerow([model, "mean", *(f"{v:.10g}" for v in result.mean(model).values())])
    return path


def read_csv(path: str | os.PathLike[str]) -> dict[tuple[str, str], dict[str, float]]:
    """(model, image) -> metric -> value from a :func:`write_csv` file (``image`` may be ``"mean"``)."""
    with open(path, newline="") as f:
        return {(row["model"], row["image"]): {k: float(row[k]) for k in _m.METRICS} for row in csv.DictReader(f)}


# ------------------------------------------------------------------------------ contact sheet
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)  # scalable when Pillow has FreeType
    except TypeError:  # very old Pillow: fixed bitmap font
        return ImageFont.load_default()


def _thumb(image_u8: np.ndarray, size: int = _THUMB) -> Image.Image:
    """Antialiased RGB thumbnail whose long edge is at most ``size`` px."""
    im = Image.fromarray(image_u8, "RGB")
    im.thumbnail((size, size), Image.Resampling.LANCZOS)
    return im


def contact_sheet(
    thumbs: Sequence[Sequence[Image.Image]],
    columns: Sequence[str],
    row_labels: Sequence[str],
    captions: Sequence[Sequence[str]] | None = None,
    cell: int = _THUMB,
) -> Image.Image:
    """Grid of thumbnails: one row per image, one column per ``columns`` label.

    Args:
        thumbs: ``thumbs[i][j]`` the thumbnail (long edge <= ``cell``) of image i in column j.
        columns: column titles (e.g. ``input``, model names, ``target``).
        row_labels: one label per row (the image name), written above the row.
        captions: optional text under each thumbnail (e.g. its PSNR), same nesting as ``thumbs``.
        cell: thumbnail box size in px.

    Returns:
        An RGB image on a white background.
    """
    pad, title_h, label_h, cap_h = 8, 26, 18, 18 if captions else 0
    font_title, font = _font(16), _font(13)
    col_w = cell + pad
    # each row is as tall as its tallest thumbnail, so landscape rows leave no empty band
    row_hs = [label_h + max(im.height for im in row) + cap_h + pad for row in thumbs]
    width = pad + col_w * len(columns)
    height = title_h + sum(row_hs) + pad
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    for j, title in enumerate(columns):
        x0 = pad + j * col_w
        draw.text((x0 + cell // 2, title_h // 2), _clip_text(draw, title, font_title, cell), fill="black", font=font_title, anchor="mm")
    y0 = title_h
    for i, row in enumerate(thumbs):
        inner = row_hs[i] - label_h - cap_h - pad
        draw.text((pad, y0 + 2), row_labels[i], fill=(90, 90, 90), font=font)
        for j, im in enumerate(row):
            x0 = pad + j * col_w
            ty = y0 + label_h
            sheet.paste(im, (x0 + (cell - im.width) // 2, ty + (inner - im.height) // 2))
            if captions:
                draw.text((x0 + cell // 2, ty + inner + cap_h // 2 + 1), captions[i][j], fill="black", font=font, anchor="mm")
        y0 += row_hs[i]
    return sheet


def _clip_text(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> str:
    """``text`` shortened with an ellipsis so it fits ``width`` px."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


# ------------------------------------------------------------------------------ evaluate
def _model_label(spec: str | Model, model: Model, taken: set[str]) -> str:
    """A short unique column name: the model's name, else the file stem, else the spec."""
    base = model.name or (Path(spec).stem if isinstance(spec, (str, os.PathLike)) else "model") or "model"
    label, k = base, 2
    while label in taken or label in (IDENTITY, "input", "target"):
        label, k = f"{base}#{k}", k + 1
    taken.add(label)
    return label


def evaluate(
    pairs_dir: str | os.PathLike[str],
    models: Sequence[str | os.PathLike[str] | Model],
    report_dir: str | os.PathLike[str] | None = None,
    *,
    exact: bool = False,
    condition_size: ConditionSize = "model",
    progress: bool = True,
    list_file: str | os.PathLike[str] | None = None,
    split: str = "test",
) -> EvalResult:
    """Score each model (and the identity baseline) on every pair of ``pairs_dir``.

    Args:
        pairs_dir: a paired dataset in any layout :func:`csrnet.training.data.find_pairs` knows.
        models: bundled names, weight files (``.safetensors`` or the released ``.pth``) or
            loaded :class:`~csrnet.weights.Model` objects; may be empty (identity only).
        report_dir: if given (created if missing), ``metrics.csv``, ``metrics.md`` and
            ``contact_sheet.png`` are written there; their paths are in ``result.files``.
        exact: run each model per pixel instead of the baked lattice.
        condition_size: passed to :func:`csrnet.enhance` (``"model"``, ``None`` = full
            resolution as in the released code, or a long edge in px).
        progress: show a tqdm bar over the images.
        list_file: optional list of names restricting the pairs.
        split: ``"test"`` (default) or ``"train"`` half of layouts that have both.

    Returns:
        :class:`EvalResult` with rows for :data:`IDENTITY` and each model, for every image.

    Raises:
        CsrnetError: no pairs / mismatched pairs, unreadable model or image.
    """
    pairs = find_pairs(pairs_dir, list_file, split=split)
    taken: set[str] = set()
    loaded: list[tuple[str, Model]] = []
    for spec in models:
        model = load_model(spec)
        loaded.append((_model_label(spec, model, taken), model))
    labels = [IDENTITY] + [label for label, _ in loaded]

    items = pairs
    if progress:
        from tqdm import tqdm

        items = tqdm(pairs, desc="evaluating", unit="image")
    rows: list[ImageScores] = []
    thumbs: list[list[Image.Image]] = []
    captions: list[list[str]] = []
    for pair in items:
        # the input exactly as `csrnet enhance` reads it and hands it to the model (same reader, colour
        # management, pixel type); scored on 8 bits like a saved file
        model_in = read_photo(pair.input, as_array=True).pixels
        target8 = _m.to_uint8(read_rgb(pair.target))
        outputs = [_m.to_uint8(to_float(model_in))]
        outputs += [_m.to_uint8(to_float(enhance(model_in, model, exact=exact, condition_size=condition_size))) for _, model in loaded]
        scores = [ImageScores(label, pair.name, **_m.compute_all(out, target8)) for label, out in zip(labels, outputs)]
        rows += scores
        if report_dir is not None:
            thumbs.append([_thumb(o) for o in outputs] + [_thumb(target8)])
            captions.append([f"{s.psnr:.2f} dB   dE76 {s.delta_e76:.1f}" for s in scores] + [""])  # ASCII: the default font lacks Greek

    result = EvalResult(models=labels, images=[p.name for p in pairs], rows=rows)
    if report_dir is not None:
        out_dir = Path(report_dir)
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CsrnetError(f"{out_dir}: cannot create report folder ({e.strerror})") from None
        result.files["csv"] = write_csv(result, out_dir / "metrics.csv")
        md = out_dir / "metrics.md"
        md.write_text(result.to_markdown(), encoding="utf-8")
        result.files["markdown"] = md
        sheet = contact_sheet(thumbs, ["input"] + labels[1:] + ["target"], result.images, captions)
        png = out_dir / "contact_sheet.png"
        sheet.save(png, optimize=True)
        result.files["contact_sheet"] = png
    return result
