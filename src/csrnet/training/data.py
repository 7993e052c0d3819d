"""Paired retouching datasets: finding input/target pairs, decoding them, synthetic operations.

Three folder layouts are recognised by :func:`find_pairs`:

* **ours** — ``ROOT/input/NAME.ext`` and ``ROOT/target/NAME.ext``, matched by file stem
  (extensions may differ, e.g. a 16-bit TIFF input and an 8-bit JPEG target).
* **the released CSRNet code** (``codes/options/train/train_Enhance.yml``) —
  ``ROOT/raw_input_{train,test}/`` and ``ROOT/expert_C_{train,test}/``; ``split`` picks which.
* **the 480p protocol of the 3D-LUT line of work** (Image-Adaptive-3DLUT, AdaInt, SepLUT) —
  ``ROOT/input/JPG/480p/NAME.jpg`` and ``ROOT/expertC/JPG/480p/NAME.jpg`` with name lists
  ``train.txt``/``test.txt`` (AdaInt, SepLUT) or ``train_input.txt`` + ``train_label.txt`` /
  ``test.txt`` (Image-Adaptive-3DLUT, whose training set is the union of its two lists).
  ``input/PNG/480p_16bits_XYZ_WB`` is used instead of ``input/JPG/480p`` only when the JPEG
  folder is absent.

A list file (one stem per line, blank lines and ``#`` comments ignored) restricts any
layout to the names it lists; a listed name with no file is a mismatch.

Mismatches — a file without partner, input and target of different sizes, an unreadable
file, a listed name without file — are all collected and raised together as one
:class:`~csrnet.errors.CsrnetError` naming them, before any training starts, so nothing
silently trains on a shrunk set.

Images are decoded to float32 RGB in [0, 1] by :func:`read_rgb`, through the same reader and
colour management as inference (:func:`csrnet.io.formats.read_photo`).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import CsrnetError
from ..io.codecs import png_bit_depth
from ..io.formats import read_photo
from ..kernels.pixels import as_array, to_float

__all__ = [
    "Pair",
    "IMAGE_SUFFIXES",
    "find_pairs",
    "read_pixels",
    "read_rgb",
    "image_size",
    "load_pairs",
    "split_pairs",
    "OPERATIONS",
    "apply_operation",
]

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg")
_MAX_LISTED = 8  # mismatches named in the one-line error before "... and N more"


@dataclass(frozen=True)
class Pair:
    """One training example: an input photo and its retouched target (same pixel size)."""

    name: str
    input: Path
    target: Path


# ------------------------------------------------------------------------------ decoding
def read_rgb(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode a photo to RGB float32 through the reader inference uses (:func:`csrnet.io.formats.read_photo`).

    So training, evaluation and ``csrnet enhance`` see the same pixels: ICC-tagged photos (Adobe RGB,
    Display P3 ...) are converted to sRGB, 16-bit PNG/TIFF keep their precision, camera RAW is developed
    the same way, grey/palette/CMYK become RGB, alpha is dropped, and EXIF orientation is *not*
    applied (pairs must stay pixel-aligned exactly as stored).

    Returns:
        (H, W, 3) float32 array in [0, 1] (:func:`csrnet.kernels.pixels.to_float` of the decoded pixels).

    Raises:
        CsrnetError: unreadable or unsupported file, naming it.

    Example:
        >>> img = read_rgb("photo.png")  # doctest: +SKIP
        >>> img.shape, img.dtype          # doctest: +SKIP
        ((341, 512, 3), dtype('float32'))
    """
    return np.ascontiguousarray(to_float(read_pixels(path)))


def read_pixels(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode a photo as :func:`read_rgb` does, but keep the decoder's own type: (H, W, 3) uint8 for
    8-bit files, uint16 for 16-bit ones and developed RAW, float32 for float TIFF; ``to_float`` of it
    is exactly :func:`read_rgb`'s result (training caches 8-bit pixels so, in a quarter of the memory).

    Raises:
        CsrnetError: unreadable or unsupported file, naming it.
    """
    return as_array(read_photo(path, as_array=True).pixels)


def image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(height, width) of an image from its header only (no full decode).

    Raises:
        CsrnetError: the file cannot be opened as an image.
    """
    path = Path(path)
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(str(path)) as tf:
                page = tf.pages[0]
                return int(page.imagelength), int(page.imagewidth)
        with open(path, "rb") as f:
            is_png = png_bit_depth(f.read(32)) is not None
        if is_png:
            with open(path, "rb") as f:
                f.seek(16)
                w, h = struct.unpack(">II", f.read(8))
            return int(h), int(w)
        with Image.open(path) as im:
            return im.height, im.width
    except Exception as e:
        first = str(e).strip().splitlines()[0][:120] if str(e).strip() else type(e).__name__
        raise CsrnetError(f"{path}: unreadable image ({first})") from None


# ------------------------------------------------------------------------------ layouts
def _read_list(list_file: Path) -> list[str]:
    """Stems listed one per line (an extension or folder prefix, if present, is stripped)."""
    try:
        lines = list_file.read_text().splitlines()
    except OSError as e:
        raise CsrnetError(f"{list_file}: cannot read list file ({e.strerror})") from None
    names = []
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            names.append(Path(line).stem if Path(line).suffix.lower() in IMAGE_SUFFIXES else Path(line).name)
    return names


def _index_folder(folder: Path) -> tuple[dict[str, Path], list[str]]:
    """stem -> image path in ``folder``; also the stems present with more than one extension."""
    found: dict[str, Path] = {}
    dupes: list[str] = []
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."):
            if p.stem in found:
                dupes.append(p.stem)
            else:
                found[p.stem] = p
    return found, dupes


def _resolve_layout(root: Path, split: str) -> tuple[Path, Path, list[Path]]:
    """(input folder, target folder, default list files) for the layout found under ``root``."""
    if (root / "input").is_dir() and (root / "target").is_dir():
        return root / "input", root / "target", []
    if (root / f"raw_input_{split}").is_dir() and (root / f"expert_C_{split}").is_dir():
        return root / f"raw_input_{split}", root / f"expert_C_{split}", []
    lut_target = root / "expertC" / "JPG" / "480p"
    if lut_target.is_dir():
        lut_input = root / "input" / "JPG" / "480p"
        if not lut_input.is_dir():
            lut_input = root / "input" / "PNG" / "480p_16bits_XYZ_WB"
        if split == "train" and (root / "train.txt").is_file():
            lists = [root / "train.txt"]
        elif split == "train" and (root / "train_input.txt").is_file():
            lists = [p for p in (root / "train_input.txt", root / "train_label.txt") if p.is_file()]
        elif (root / f"{split}.txt").is_file():
            lists = [root / f"{split}.txt"]
        else:
            lists = []
        return lut_input, lut_target, lists
    raise CsrnetError(
        f"{root}: no paired dataset found (expected input/ and target/ folders, "
        f"raw_input_{split}/ and expert_C_{split}/, or expertC/JPG/480p/ with input/JPG/480p/)"
    )


def _format_problems(root: Path, problems: Sequence[str]) -> str:
    shown = "; ".join(problems[:_MAX_LISTED])
    more = f"; ... and {len(problems) - _MAX_LISTED} more" if len(problems) > _MAX_LISTED else ""
    return f"{root}: {len(problems)} mismatched pair(s): {shown}{more}"


def find_pairs(root: str | os.PathLike[str], list_file: str | os.PathLike[str] | None = None, *, split: str = "train") -> list[Pair]:
    """Match inputs to targets by file stem and check every pair before training.

    Args:
        root: dataset folder in one of the layouts in the module docstring.
        list_file: optional text file of stems (one per line) restricting the set;
            for the 3D-LUT layout, ``ROOT/train.txt`` etc. are used when not given.
        split: ``"train"`` or ``"test"``: which half of the released-code and 3D-LUT
            layouts to read (ignored for the ``input/`` + ``target/`` layout).

    Returns:
        Pairs sorted by name; every input/target has the same (H, W) and a readable header.

    Raises:
        CsrnetError: no layout found, no pairs, or any mismatch (each named: missing
        partner, size mismatch, unreadable file, listed name without file,
        ambiguous stem with two extensions).
    """
    root = Path(root)
    if not root.is_dir():
        raise CsrnetError(f"{root}: no such folder")
    in_dir, tgt_dir, lists = _resolve_layout(root, split)
    if list_file is not None:
        lists = [Path(list_file)]
    inputs, in_dupes = _index_folder(in_dir)
    targets, tgt_dupes = _index_folder(tgt_dir)
    problems = [f"{s}: several files with this name in {in_dir.name}/" for s in in_dupes]
    problems += [f"{s}: several files with this name in {tgt_dir.name}/" for s in tgt_dupes]

    if lists:
        wanted = list(dict.fromkeys(n for lf in lists for n in _read_list(lf)))
        for n in wanted:
            if n not in inputs and n not in targets:
                problems.append(f"{n}: listed but has no input and no target file")
        names = [n for n in wanted if n in inputs or n in targets]
    else:
        names = sorted(set(inputs) | set(targets))
    pairs = []
    for n in sorted(names):
        if n not in targets:
            problems.append(f"{inputs[n].name}: input without target in {tgt_dir.name}/")
            continue
        if n not in inputs:
            problems.append(f"{targets[n].name}: target without input in {in_dir.name}/")
            continue
        try:
            hi, wi = image_size(inputs[n])
            ht, wt = image_size(targets[n])
        except CsrnetError as e:
            problems.append(str(e))
            continue
        if (hi, wi) != (ht, wt):
            problems.append(f"{n}: input is {wi}x{hi} but target is {wt}x{ht}")
            continue
        pairs.append(Pair(n, inputs[n], targets[n]))
    if problems:
        raise CsrnetError(_format_problems(root, problems))
    if not pairs:
        raise CsrnetError(f"{root}: no image pairs found in {in_dir} and {tgt_dir}")
    return pairs


def load_pairs(pairs: Iterable[Pair], progress: bool = False, *, as_float: bool = True) -> list[tuple[np.ndarray, np.ndarray]]:
    """Decode every pair once (input, target), each (H, W, 3) float32 in [0, 1] (:func:`read_rgb`),
    or, with ``as_float=False``, in the decoder's own type (:func:`read_pixels`).

    Every file is decoded before returning; all failures (a header that parsed but a
    body that does not, a size that changed) are raised together in one CsrnetError.
    """
    pairs = list(pairs)
    items = pairs
    if progress:
        from tqdm import tqdm

        items = tqdm(pairs, desc="decoding pairs", unit="pair", leave=False)
    out: list[tuple[np.ndarray, np.ndarray]] = []
    problems: list[str] = []
    for p in items:
        try:
            x, y = (read_rgb(p.input), read_rgb(p.target)) if as_float else (read_pixels(p.input), read_pixels(p.target))
        except CsrnetError as e:
            problems.append(str(e))
            continue
        if x.shape != y.shape:
            problems.append(f"{p.name}: input is {x.shape[1]}x{x.shape[0]} but target is {y.shape[1]}x{y.shape[0]}")
            continue
        out.append((x, y))
    if problems:
        raise CsrnetError(_format_problems(pairs[0].input.parent.parent if pairs else Path("."), problems))
    return out


def split_pairs(pairs: Sequence[Pair], fraction: float, seed: int = 0) -> tuple[list[Pair], list[Pair]]:
    """Random (seeded) split into (train, validation); ``fraction`` of the pairs (at least one) go to validation."""
    if not 0.0 <= fraction < 1.0:
        raise CsrnetError(f"validation fraction must be in [0, 1), got {fraction}")
    if fraction == 0.0:
        return list(pairs), []
    n_val = max(1, round(len(pairs) * fraction))
    if n_val >= len(pairs):
        raise CsrnetError(f"validation fraction {fraction} leaves no training pairs out of {len(pairs)}")
    order = np.random.default_rng(seed).permutation(len(pairs))
    val = sorted((pairs[i] for i in order[:n_val]), key=lambda p: p.name)
    train = sorted((pairs[i] for i in order[n_val:]), key=lambda p: p.name)
    return train, val


# ------------------------------------------------------------------- simulated operations
def _tone_curve(x: np.ndarray, t: Sequence[float] = (3 / 8, 2 / 8, 1 / 8, 2 / 8)) -> np.ndarray:
    """The paper's piecewise-linear curve: sum_i t_i * clip(L*x - i, 0, 1), L = len(t)."""
    L = len(t)
    return sum(ti * np.clip(L * x - i, 0.0, 1.0) for i, ti in enumerate(t)).astype(np.float32)


def _saturation(x: np.ndarray, a: float) -> np.ndarray:
    grey = x.mean(axis=2, keepdims=True)
    return a * x + (1 - a) * grey


def _contrast(x: np.ndarray, a: float) -> np.ndarray:
    return a * x + (1 - a) * x.mean()


#: The paper's simulated retouching operations (ECCV 2020, Sec. 3 / TMM Sec. III), on
#: (H, W, 3) float32 in [0, 1]. Outputs are *not* clipped (the paper studies the
#: mapping itself); callers clip when writing images.
OPERATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "brightness x1.5": lambda x: 1.5 * x,
    "brightness x0.5": lambda x: 0.5 * x,
    "tone curve L=4": _tone_curve,
    "contrast 1.5": lambda x: _contrast(x, 1.5),
    "saturation 1.5": lambda x: _saturation(x, 1.5),
    "white balance (1.2, 1.0, 0.8)": lambda x: x * np.array([1.2, 1.0, 0.8], np.float32),
}


def apply_operation(name: str, image: np.ndarray) -> np.ndarray:
    """Apply one of :data:`OPERATIONS` to an (H, W, 3) float32 image; result float32 (unclipped)."""
    try:
        op = OPERATIONS[name]
    except KeyError:
        raise CsrnetError(f"unknown operation {name!r} (known: {', '.join(OPERATIONS)})") from None
    return np.asarray(op(image), dtype=np.float32)
