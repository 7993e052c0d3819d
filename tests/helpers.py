"""Helpers shared by more than one test module (bench/ may import them too, as tests.helpers)."""

from __future__ import annotations

import struct

import numpy as np

from bench import common
from tests.conftest import need_module


def write_dng(path, srgb: np.ndarray, *, orientation: int = 1, neutral=(0.5, 1.0, 0.7)) -> None:
    """bench/common.py's synthetic-RAW writer (one copy), skipping outside CI when pidng is missing."""
    need_module("pidng")
    common.write_dng(path, srgb, orientation=orientation, neutral=neutral)


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
