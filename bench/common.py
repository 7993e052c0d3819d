"""What the bench scripts share: paths, real-photo mosaics, peak RSS, PSNR, child-process measurements.

The scripts run as ``python bench/NAME.py`` from the repository root, so this folder is the script's
own and ``from common import ...`` needs no sys.path change. Only stdlib, numpy and Pillow are
imported here at module level: the fresh processes that measure peak memory import this module too.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PHOTOS = SHARED / "data" / "photos"
FIVEK_PAIRS = SHARED / "data" / "fivek_pairs"
#: The authors' released checkpoint (ECCV 2020), loadable by ``csrnet.load_model``.
RELEASED = SHARED / "reference" / "csrnet_official_eccv2020.pth"
RESULTS = ROOT / "bench" / "results"
EXAMPLES = ROOT / "examples"

#: Mosaic sizes: megapixels -> (width, height).
MOSAIC_SIZES = {6: (3000, 2000), 12: (4240, 2832), 24: (6000, 4000)}


def make_mosaic(mp: int, path: Path, offset: int = 0) -> Path:
    """A ``mp``-megapixel JPEG (q92) tiled from the real 1024-px photos at native resolution.

    Real detail, not an upscaled image: upscaled or noise images decode unrealistically fast or slow.
    ``offset`` starts the tiling at another photo, so several mosaics differ.
    """
    w, h = MOSAIC_SIZES[mp]
    photos = sorted(PHOTOS.glob("*.jpg"))
    canvas = Image.new("RGB", (w, h))
    i = offset
    for y in range(0, h, 680):
        for x in range(0, w, 1024):
            tile = Image.open(photos[i % len(photos)]).convert("RGB")
            canvas.paste(tile.crop((0, 0, 1024, 680)), (x, y))
            i += 1
    canvas.save(path, quality=92)
    return path


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB (VmHWM: unlike ru_maxrss it is not inherited across fork+exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """PSNR (dB) of two same-shape arrays, MSE in float64; ``inf`` when identical.

    8-bit images with the default peak; floats in [0, 1] with ``peak=1.0`` (clip them first).
    """
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(peak**2 / mse))


def to8(x: np.ndarray) -> np.ndarray:
    """Float [0, 1] image -> uint8, rounded and clipped (as ``csrnet.enhance`` returns uint8)."""
    from csrnet.kernels.pixels import from_float

    return from_float(np.asarray(x), np.uint8)


def run_child(script: str | Path, *args: object) -> dict:
    """Run ``python SCRIPT ARGS...`` in a fresh process (so its peak RSS is its own) and return the
    JSON object it prints on its last line of stdout."""
    r = subprocess.run([sys.executable, str(script), *map(str, args)], check=False, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(r.stderr)
    return json.loads(r.stdout.strip().splitlines()[-1])


def link_pairs(pairs, folder: Path) -> Path:
    """A pairs folder (FOLDER/input, FOLDER/target) of symlinks to ``pairs`` (csrnet.training.data.Pair): nothing copied."""
    for sub in ("input", "target"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for p in pairs:
        (folder / "input" / p.input.name).symlink_to(p.input)
        (folder / "target" / p.target.name).symlink_to(p.target)
    return folder


def write_dng(path: Path, srgb: np.ndarray, *, orientation: int = 1, neutral=(0.5, 1.0, 0.7)) -> None:
    """Mosaic an sRGB photo (H, W, 3 float [0,1]) into an RGGB Bayer DNG of a camera whose native RGB
    is linear sRGB scaled by ``neutral`` (so white balance matters). Needs pidng."""
    from pidng.core import RAW2DNG, DNGTags, Tag
    from pidng.defs import CalibrationIlluminant, CFAPattern, DNGVersion, PhotometricInterpretation

    h, w, _ = srgb.shape
    lin = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    cam = lin * np.asarray(neutral)
    mosaic = np.empty((h, w))
    mosaic[0::2, 0::2] = cam[0::2, 0::2, 0]
    mosaic[0::2, 1::2] = cam[0::2, 1::2, 1]
    mosaic[1::2, 0::2] = cam[1::2, 0::2, 1]
    mosaic[1::2, 1::2] = cam[1::2, 1::2, 2]
    black, white = 1024, 65535
    raw = np.round(black + mosaic * (white - black)).astype(np.uint16)
    xyz_to_srgb = np.array([[3.2404542, -1.5371385, -0.4985314], [-0.9692660, 1.8760108, 0.0415560], [0.0556434, -0.2040259, 1.0572252]])
    cm = np.diag(neutral) @ xyz_to_srgb  # XYZ -> camera RGB, as DNG's ColorMatrix1 wants
    t = DNGTags()
    for tag, value in [
        (Tag.ImageWidth, w), (Tag.ImageLength, h), (Tag.TileWidth, w), (Tag.TileLength, h),
        (Tag.Orientation, orientation), (Tag.PhotometricInterpretation, PhotometricInterpretation.Color_Filter_Array),
        (Tag.SamplesPerPixel, 1), (Tag.BitsPerSample, 16), (Tag.CFARepeatPatternDim, [2, 2]), (Tag.CFAPattern, CFAPattern.RGGB),
        (Tag.BlackLevel, black), (Tag.WhiteLevel, white), (Tag.ColorMatrix1, [[round(v * 10000), 10000] for v in cm.ravel()]),
        (Tag.CalibrationIlluminant1, CalibrationIlluminant.D65), (Tag.AsShotNeutral, [[round(v * 10000), 10000] for v in neutral]),
        (Tag.Make, "TestCam"), (Tag.Model, "Bayer 1"), (Tag.DNGVersion, DNGVersion.V1_4), (Tag.DNGBackwardVersion, DNGVersion.V1_2),
    ]:
        t.set(tag, value)
    r = RAW2DNG()
    r.options(t, path=str(path.parent), compress=False)
    r.convert(raw, filename=path.stem)
