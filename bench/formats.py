"""24 MP timings of the photographers' formats: 16-bit TIFF and camera RAW (a generated DNG).

    python bench/formats.py [--model PATH] [--mp 24]

Prints a Markdown table: read / enhance / write seconds for a 16-bit TIFF (6000x4000),
and decode / enhance / write for a Bayer DNG of the same size (RAW -> 16-bit TIFF and
RAW -> JPEG). The test photo is a real shared photo upscaled to 24 MP; the DNG is that
photo mosaicked (bench/common.py's write_dng). Needs ../shared and pidng.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from common import PHOTOS, RELEASED, write_dng


def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def main() -> None:
    import csrnet
    from csrnet.io.formats import read_photo, write_photo
    from csrnet.io.photo import Photo, srgb_profile
    from csrnet.kernels.lattice import DEFAULT_LUT_SIZE
    from csrnet.threads import default_threads

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(RELEASED))
    ap.add_argument("--mp", type=float, default=24.0)
    args = ap.parse_args()
    model = csrnet.load_model(args.model)
    # one-time imports (scipy) and BLAS start-up are paid once per process, not per photo
    csrnet.enhance(np.zeros((1200, 900, 3), np.uint16), model)
    w = int(round((args.mp * 1e6 * 1.5) ** 0.5)) // 2 * 2
    h = int(round(w / 1.5)) // 2 * 2
    base = Image.open(PHOTOS / "gcompris_animal-bison.jpg").convert("RGB").resize((w, h), Image.Resampling.BICUBIC)
    u16 = np.asarray(base).astype(np.uint16) * 257
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tif = write_photo(Photo(u16, icc_profile=srgb_profile(), dpi=(300.0, 300.0)), tmp / "in16.tif")
        photo, t_read = timed(read_photo, tif)
        out, t_enh = timed(csrnet.enhance, photo.pixels, model)
        _, t_write = timed(write_photo, photo.with_pixels(out), tmp / "out16.tif")
        rows.append(("16-bit TIFF -> 16-bit TIFF", "read", t_read, t_enh, t_write))
        write_dng(tmp / "shot.dng", np.asarray(base, np.float64) / 255.0)
        raw, t_dec = timed(read_photo, tmp / "shot.dng")
        out, t_enh = timed(csrnet.enhance, raw.pixels, model)
        _, t_tif = timed(write_photo, raw.with_pixels(out), tmp / "raw.tif")
        _, t_jpg = timed(write_photo, raw.with_pixels(out), tmp / "raw.jpg")
        rows.append(("RAW (DNG) -> 16-bit TIFF", "decode", t_dec, t_enh, t_tif))
        rows.append(("RAW (DNG) -> JPEG", "decode", t_dec, t_enh, t_jpg))
    print(f"{w}x{h} ({w * h / 1e6:.1f} MP), {csrnet.__name__} fast path (lattice {DEFAULT_LUT_SIZE}), {default_threads()} threads, "
          "after a warm-up call\n")
    print("| path | read/decode s | enhance s | write s | total s |")
    print("|---|---:|---:|---:|---:|")
    for name, _, a, b, c in rows:
        print(f"| {name} | {a:.2f} | {b:.2f} | {c:.2f} | {a + b + c:.2f} |")


if __name__ == "__main__":
    main()
