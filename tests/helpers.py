"""Helpers shared by more than one test module (bench/ may import them too, as tests.helpers)."""

from __future__ import annotations

import struct

import numpy as np

from tests.conftest import need_module


def write_dng(path, srgb: np.ndarray, *, orientation: int = 1, neutral=(0.5, 1.0, 0.7)) -> None:
    """Mosaic an sRGB photo (H, W, 3 float [0,1]) into an RGGB Bayer DNG of a camera whose
    native RGB is linear sRGB scaled by ``neutral`` (so white balance matters)."""
    need_module("pidng")
    from pidng.core import RAW2DNG, DNGTags, Tag
    from pidng.defs import CFAPattern, CalibrationIlluminant, DNGVersion, PhotometricInterpretation

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


def icc_v2(colorants: np.ndarray, gamma: float, name: str) -> bytes:
    """A minimal ICC v2 RGB display profile (matrix/TRC), written from the ICC.1 layout."""

    def s15(v: float) -> bytes:
        return struct.pack(">i", round(v * 65536))

    def xyz(v) -> bytes:
        return b"XYZ \0\0\0\0" + b"".join(s15(c) for c in v)

    desc = b"desc\0\0\0\0" + struct.pack(">I", len(name) + 1) + name.encode() + b"\0" + b"\0" * 8 + b"\0\0\0" + b"\0" * 67
    curv = b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"
    tags = [(b"desc", desc), (b"cprt", b"text\0\0\0\0public domain\0"), (b"wtpt", xyz((0.9642, 1.0, 0.8249)))]
    tags += [(s, xyz(colorants[:, i])) for i, s in enumerate((b"rXYZ", b"gXYZ", b"bXYZ"))]
    tags += [(s, curv) for s in (b"rTRC", b"gTRC", b"bTRC")]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for sig, body in tags:
        body += b"\0" * (-len(body) % 4)
        table += struct.pack(">4sII", sig, offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = struct.pack(">I4sI4s4s4s12s4s", size, b"\0\0\0\0", 0x02100000, b"mntr", b"RGB ", b"XYZ ", b"\0" * 12, b"acsp")
    header += b"\0" * (68 - len(header)) + s15(0.9642) + s15(1.0) + s15(0.8249)
    header += b"\0" * (128 - len(header))
    return header + struct.pack(">I", len(tags)) + table + data


def adobe_rgb_icc() -> bytes:
    """An Adobe RGB (1998) ICC v2 profile built from colour-science's primaries (independent of our code)."""
    colour = need_module("colour")
    cs = colour.RGB_COLOURSPACES["Adobe RGB (1998)"]
    d65 = colour.xy_to_XYZ(cs.whitepoint)
    d50 = np.array([0.9642, 1.0, 0.8249])
    cat = colour.adaptation.matrix_chromatic_adaptation_VonKries(d65, d50, transform="Bradford")
    return icc_v2(cat @ cs.matrix_RGB_to_XYZ, 563 / 256, "Adobe RGB (1998) test")
