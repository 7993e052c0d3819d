"""Adobe Cube LUT (``.cube``) files: write a photo's baked look, read and apply anyone's.

Format (Adobe "Cube LUT Specification 1.0"): ``TITLE "..."``, ``LUT_3D_SIZE N``,
``DOMAIN_MIN r g b``, ``DOMAIN_MAX r g b`` then N^3 lines of ``R G B`` with red
changing fastest — the order of :func:`csrnet.bake_lut` tables, so no reordering is
needed. Resolve's ``LUT_3D_INPUT_RANGE lo hi`` is read as a domain too.

Exported tables are clipped to [0, 1]: DaVinci Resolve, Photoshop and most viewers
clamp (or mis-handle) values outside the output range, and ffmpeg clips after
interpolating anyway, so a clipped table is what every tool shows alike (the PSNR
cost against ``csrnet enhance`` is measured in tests/unit/io/test_cube.py and the report).
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import CsrnetError, InvalidArgumentError
from ..kernels.lut import apply_lut_float, apply_lut_pil, apply_lut_uint
from .atomic import atomic_write

__all__ = ["CubeLUT", "read_cube", "write_cube", "format_cube", "apply_cube"]


@dataclass(frozen=True)
class CubeLUT:
    """A 3D LUT: ``table`` (size**3, 3) float32, red fastest; inputs are mapped from [domain_min, domain_max]."""

    table: np.ndarray
    size: int
    title: str = ""
    domain_min: tuple[float, float, float] = (0.0, 0.0, 0.0)
    domain_max: tuple[float, float, float] = (1.0, 1.0, 1.0)


def format_cube(table: np.ndarray, size: int, *, title: str = "csrnet", clip: bool = True, decimals: int = 6) -> str:
    """The text of a .cube file for ``table`` (size**3, 3), red fastest, domain [0, 1]."""
    table = np.asarray(table, np.float64).reshape(-1, 3)
    if table.shape[0] != size**3:
        raise CsrnetError(f"table of {table.shape[0]} rows does not match LUT_3D_SIZE {size}")
    if not 2 <= size <= 256:
        raise CsrnetError(f"LUT_3D_SIZE must be between 2 and 256, got {size}")
    if clip:
        table = np.clip(table, 0.0, 1.0)
    title = title.replace('"', "'").replace("\n", " ")
    head = f'TITLE "{title}"\nLUT_3D_SIZE {size}\nDOMAIN_MIN 0.0 0.0 0.0\nDOMAIN_MAX 1.0 1.0 1.0\n'
    buf = io.StringIO()
    np.savetxt(buf, table, fmt=f"%.{decimals}f", delimiter=" ")
    return head + buf.getvalue()


def write_cube(
    path: str | os.PathLike[str], table: np.ndarray, size: int, *, title: str = "csrnet", clip: bool = True, overwrite: bool = False
) -> Path:
    """Write ``table`` (size**3, 3), red fastest, as a .cube file, atomically; values clipped to [0, 1] unless ``clip=False``."""
    path = Path(path)
    text = format_cube(table, size, title=title, clip=clip)
    if not path.parent.is_dir():
        raise CsrnetError(f"{path.parent}: output folder does not exist")
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="ascii", errors="replace"), overwrite=overwrite)
    return path


_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_TRIPLE = re.compile(rf"^\s*({_NUMBER})\s+({_NUMBER})\s+({_NUMBER})\s*$")


def read_cube(path: str | os.PathLike[str]) -> CubeLUT:
    """Parse a 3D .cube file (Adobe, Resolve and IRIDAS flavours). 1D-only files are refused.

    Raises :class:`CsrnetError` with a one-line reason (file and line) for a malformed file.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as e:
        raise CsrnetError(f"{path}: cannot read ({e.strerror or e})") from None
    title, size, size1d = "", None, None
    dmin, dmax = [0.0] * 3, [1.0] * 3
    values: list[tuple[float, float, float]] = []
    for n, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = _TRIPLE.match(line)
        if m:
            values.append((float(m[1]), float(m[2]), float(m[3])))
            continue
        key, _, rest = line.partition(" ")
        key, rest = key.upper(), rest.strip()
        try:
            if key == "TITLE":
                title = rest.strip('"')
            elif key == "LUT_3D_SIZE":
                size = int(rest)
            elif key == "LUT_1D_SIZE":
                size1d = int(rest)
            elif key == "DOMAIN_MIN":
                dmin = [float(v) for v in rest.split()][:3]
            elif key == "DOMAIN_MAX":
                dmax = [float(v) for v in rest.split()][:3]
            elif key == "LUT_3D_INPUT_RANGE":
                lo, hi = (float(v) for v in rest.split()[:2])
                dmin, dmax = [lo] * 3, [hi] * 3
            elif key in ("LUT_1D_INPUT_RANGE",):
                pass
            else:
                raise ValueError
        except ValueError:
            raise CsrnetError(f"{path}:{n}: not a .cube line: {raw.strip()[:60]!r}") from None
    if size is None:
        raise CsrnetError(f"{path}: no LUT_3D_SIZE (1D-only LUTs are not supported)" if size1d else f"{path}: not a .cube file (no LUT_3D_SIZE)")
    if not 2 <= size <= 256:
        raise CsrnetError(f"{path}: LUT_3D_SIZE {size} out of range 2..256")
    if size1d:  # a 1D shaper would precede the 3D table; we do not apply shapers
        raise CsrnetError(f"{path}: 1D+3D .cube files are not supported (LUT_1D_SIZE {size1d})")
    if len(values) != size**3:
        raise CsrnetError(f"{path}: {len(values)} table rows, expected {size**3} for LUT_3D_SIZE {size}")
    if any(hi <= lo for lo, hi in zip(dmin, dmax)) or len(dmin) != 3 or len(dmax) != 3:
        raise CsrnetError(f"{path}: bad domain {dmin} .. {dmax}")
    return CubeLUT(np.asarray(values, np.float32), size, title, tuple(dmin), tuple(dmax))  # type: ignore[arg-type]


def apply_cube(image: np.ndarray | Image.Image, cube: CubeLUT, *, threads: int | None = None) -> np.ndarray | Image.Image:
    """Apply ``cube`` with the same lattice kernel ``csrnet enhance`` uses; returns the input's type and
    dtype, clipped.

    8- and 16-bit images with a [0, 1] domain go straight through the compiled kernel
    (:func:`csrnet.kernels.lut.apply_lut_uint`: 16-bit outputs have no 8-bit steps); other domains
    and float images interpolate in float32 (:func:`csrnet.kernels.lut.apply_lut_float`).
    """
    unit = cube.domain_min == (0.0, 0.0, 0.0) and cube.domain_max == (1.0, 1.0, 1.0)
    if isinstance(image, Image.Image):
        if image.mode != "RGB":
            raise InvalidArgumentError(f"expected an RGB image, got mode {image.mode}")
        if unit:
            return apply_lut_pil(image, cube.table, cube.size, threads=threads)
        return Image.fromarray(apply_cube(np.asarray(image), cube, threads=threads), "RGB")
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise InvalidArgumentError(f"expected an H x W x 3 RGB image, got shape {arr.shape}")
    if unit and arr.dtype in (np.uint8, np.uint16):
        return apply_lut_uint(arr, cube.table, cube.size, threads=threads)
    scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(arr.dtype, 1.0)
    x = arr.astype(np.float32) / np.float32(scale)
    if not unit:
        lo, hi = np.asarray(cube.domain_min, np.float32), np.asarray(cube.domain_max, np.float32)
        x = (x - lo) / (hi - lo)
    y = apply_lut_float(x, cube.table, cube.size, threads=threads)
    if arr.dtype in (np.uint8, np.uint16):
        return np.clip(y * scale + 0.5, 0, scale).astype(arr.dtype)
    return np.clip(y, 0.0, 1.0).astype(arr.dtype, copy=False)
