"""The photo split of the bundled global models (``auto``, ``exposure``) and their small-photo loader.

scripts/train_default.py trains on the photos :func:`held_out` leaves in and measures the models'
cards on the others; bench/auto_ceiling.py measures its ceilings on the same held-out photos.
Research and training code: nothing on the ``enhance`` path imports it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["LONG_EDGE", "held_out", "load_small", "split"]

#: Long edge (px) of the photos the global models are trained and measured on.
LONG_EDGE = 384


def held_out(name: str, examples: Path | None = None) -> bool:
    """A fixed fifth of the photos (by the sha256 of the file name), plus any file of that name in
    ``examples`` (the repository's examples/ folder, shown in the README: never trained on)."""
    if examples is not None and (examples / name).exists():
        return True
    return int(hashlib.sha256(name.encode()).hexdigest(), 16) % 5 == 0


def split(photos: Iterable[Path], examples: Path | None = None) -> tuple[list[Path], list[Path]]:
    """(training photos, held-out photos) of ``photos``, in their order, by :func:`held_out`."""
    photos = list(photos)
    return [p for p in photos if not held_out(p.name, examples)], [p for p in photos if held_out(p.name, examples)]


def load_small(path: Path, long_edge: int = LONG_EDGE) -> np.ndarray:
    """A photo at ``long_edge`` px long edge (Pillow LANCZOS, never upscaled): (h, w, 3) float32 in [0, 1]."""
    im = Image.open(path).convert("RGB")
    im.thumbnail((long_edge, long_edge), Image.Resampling.LANCZOS)
    return np.asarray(im, np.float32) / 255
