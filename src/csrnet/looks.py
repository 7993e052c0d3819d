"""A photo's look as a ``.cube`` file: the one place that reads the photo, bakes and titles the table.

``csrnet lut PHOTO -o LOOK.cube`` and the web app's export both come here, so their files are equal.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .io.cube import format_cube, write_cube
from .io.formats import read_photo
from .io.photo import DEFAULT_MAX_PIXELS
from .pipeline import Blend, bake_lut
from .weights import Model, load_model

__all__ = ["bake_look", "export_look", "look_text", "look_title"]


def look_title(photo_name: str, model: Model | Blend, strength: float = 1.0) -> str:
    """The ``TITLE`` of an exported look: the photo, the model's name and the strength if not 1."""
    name = model.name if isinstance(model, Model) else "+".join(m.name or "model" for m, _ in model.parts)
    return f"csrnet look of {photo_name}" + (f", model {name}" if name else "") + (f", strength {strength:g}" if strength != 1.0 else "")


def bake_look(photo_path: str | os.PathLike[str], model: Model | Blend | str, *, size: int = 33, strength: float = 1.0,
              max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[np.ndarray, Model | Blend]:
    """The (size**3, 3) table ``model`` applies to the photo at ``photo_path`` (:func:`csrnet.bake_lut`,
    ``fit=True``: fitted to the photo's own colours; nodes they do not reach keep the network's value,
    so it also suits other shots), and the loaded model. JPEGs are read as ``csrnet enhance`` reads them."""
    net = model if isinstance(model, Blend) else load_model(model)
    photo = read_photo(photo_path, max_pixels=max_pixels, as_array=True)
    return bake_lut(photo.pixels, net, size, strength=strength, fit=True), net


def export_look(photo_path: str | os.PathLike[str], cube_path: str | os.PathLike[str], model: Model | Blend | str, *,
                size: int = 33, strength: float = 1.0, overwrite: bool = False) -> Path:
    """Bake the transform ``model`` applies to the photo at ``photo_path`` and write it as a .cube file
    (clipped to [0, 1]); ``model`` is a Model, a bundled name or a weights path."""
    table, net = bake_look(photo_path, model, size=size, strength=strength)
    return write_cube(cube_path, table, size, title=look_title(Path(photo_path).name, net, strength), overwrite=overwrite)


def look_text(photo_path: str | os.PathLike[str], display_name: str, model: Model | Blend, *, size: int = 33,
              strength: float = 1.0, max_pixels: int = DEFAULT_MAX_PIXELS) -> str:
    """The text :func:`export_look` would write, titled with ``display_name`` (the web app's download)."""
    table, net = bake_look(photo_path, model, size=size, strength=strength, max_pixels=max_pixels)
    return format_cube(table, size, title=look_title(display_name, net, strength))


