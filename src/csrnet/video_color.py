"""YUV <-> RGB for video frames, in numpy: the clip's own matrix and range, its bit depth kept.

A decoded frame's planes are packed into one (H, W, 3) array of (Y, Cb, Cr) codes — uint8 for
8-bit clips, uint16 holding ``code << (16 - bits)`` for 10- and 12-bit ones — which the lattice
kernel (:func:`csrnet.kernels.lut.apply_lut_uint`) reads as colours in [0, 1]. For global CSRNet
models the YUV -> RGB conversion, the network and the RGB -> YUV conversion are composed into one
lattice over that YUV cube (:meth:`YuvSpec.compose`), so no per-pixel conversion is done at all;
spatially varying models (CSRNet-L) go through :func:`yuv_to_rgb16` / :func:`rgb16_to_yuv`.

Why numpy and not PyAV's ``VideoFrame.reformat`` (libswscale): its usual ``rgb24`` target would cut
10-bit video to 8 bits; ``rgb48le`` keeps the depth, but swscale resamples chroma with its own
filters both ways, so a frame converted there and back is not
the frame it was (measured, yuv420p10le -> rgb48le -> yuv420p10le, BT.709 limited: exact on smooth
content, up to 370 codes off on detailed chroma). Here the conversion is float32 affine algebra
(exact to the last code at 10 and 12 bits), and chroma is repeated up and box-averaged back down over
the same 2x2 (or 2x1) blocks, so a frame the transform leaves alone comes back code for code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .errors import UnsupportedFormatError
from .threads import run_blocks

__all__ = [
    "MATRICES",
    "PIXEL_FORMATS",
    "YuvSpec",
    "pack_planes",
    "plane_view",
    "rgb16_to_yuv",
    "unpack_into",
    "yuv_to_rgb16",
]

#: H.273 MatrixCoefficients code -> (name, Kr, Kb).
MATRICES: dict[int, tuple[str, float, float]] = {
    1: ("BT.709", 0.2126, 0.0722),
    4: ("FCC", 0.30, 0.11),
    5: ("BT.601 (BT.470BG)", 0.299, 0.114),
    6: ("BT.601 (SMPTE 170M)", 0.299, 0.114),
    7: ("SMPTE 240M", 0.212, 0.087),
    9: ("BT.2020", 0.2627, 0.0593),
}
_MATRIX_NAMES = {0: "RGB/GBR", 8: "YCgCo", 10: "BT.2020 constant luminance", 11: "SMPTE 2085", 12: "chromaticity-derived",
                 13: "chromaticity-derived constant luminance", 14: "ICtCp"}

#: Planar YUV pixel formats read and written: name -> (bits, log2 chroma width step, log2 chroma height step, full range).
PIXEL_FORMATS: dict[str, tuple[int, int, int, bool]] = {
    "yuv420p": (8, 1, 1, False), "yuvj420p": (8, 1, 1, True),
    "yuv422p": (8, 1, 0, False), "yuvj422p": (8, 1, 0, True),
    "yuv444p": (8, 0, 0, False), "yuvj444p": (8, 0, 0, True),
    "yuv420p10le": (10, 1, 1, False), "yuv422p10le": (10, 1, 0, False), "yuv444p10le": (10, 0, 0, False),
    "yuv420p12le": (12, 1, 1, False), "yuv422p12le": (12, 1, 0, False), "yuv444p12le": (12, 0, 0, False),
}


@dataclass(frozen=True)
class YuvSpec:
    """How one clip's codes map to RGB: bit depth, chroma subsampling, matrix and range."""

    pix_fmt: str
    bits: int
    sx: int  # log2 of the chroma step along x (1 for 4:2:0 and 4:2:2)
    sy: int  # log2 of the chroma step along y (1 for 4:2:0)
    kr: float
    kb: float
    full_range: bool
    matrix_name: str

    @classmethod
    def of(cls, pix_fmt: str, colorspace: int, color_range: int, height: int) -> YuvSpec:
        """The spec of a frame: its pixel format, H.273 matrix code and range code (0 unspecified,
        1 limited, 2 full). An unspecified matrix is guessed as players do: BT.709 above 576 lines,
        else BT.601; an unspecified range is limited (full for the ``yuvj`` formats)."""
        if pix_fmt not in PIXEL_FORMATS:
            raise UnsupportedFormatError(f"pixel format {pix_fmt} is not supported (planar YUV 4:2:0/4:2:2/4:4:4, 8/10/12-bit)")
        bits, sx, sy, full = PIXEL_FORMATS[pix_fmt]
        if colorspace in (2, 3) or colorspace is None:  # unspecified / reserved
            colorspace = 1 if height > 576 else 6
        if colorspace not in MATRICES:
            name = _MATRIX_NAMES.get(colorspace, f"code {colorspace}")
            raise UnsupportedFormatError(f"colour matrix {name} is not supported (BT.709, BT.601, BT.2020, SMPTE 240M, FCC)")
        name, kr, kb = MATRICES[colorspace]
        return cls(pix_fmt, bits, sx, sy, kr, kb, full or color_range == 2, name)

    def with_format(self, pix_fmt: str) -> YuvSpec:
        """The same matrix and range in another pixel format (an encoder's)."""
        bits, sx, sy, full = PIXEL_FORMATS[pix_fmt]
        return YuvSpec(pix_fmt, bits, sx, sy, self.kr, self.kb, self.full_range or full, self.matrix_name)

    # ------------------------------------------------------------ codes <-> kernel domain <-> RGB
    @property
    def dtype(self) -> np.dtype:
        """dtype of the packed (H, W, 3) array: uint8 for 8-bit, uint16 (codes shifted up) above."""
        return np.dtype(np.uint8 if self.bits == 8 else np.uint16)

    @property
    def shift(self) -> int:
        """Bits a code is shifted up by in the packed array."""
        return 0 if self.bits == 8 else 16 - self.bits

    @property
    def domain_scale(self) -> float:
        """Codes per unit of the kernel's domain: the kernel reads a packed value v as v / 255 or v / 65535."""
        return 255.0 if self.bits == 8 else 65535.0 / (1 << self.shift)

    @property
    def domain_max(self) -> float:
        """The largest code, in kernel-domain units (exactly 1.0 at 8 bits)."""
        return ((1 << self.bits) - 1) / self.domain_scale

    def _offsets(self) -> tuple[float, float, float, float]:
        """(Y offset, Y scale, chroma offset, chroma scale) in codes (H.273)."""
        m = float(1 << (self.bits - 8))
        if self.full_range:
            top = float((1 << self.bits) - 1)
            return 0.0, top, float(1 << (self.bits - 1)), top
        return 16.0 * m, 219.0 * m, 128.0 * m, 224.0 * m

    def _ypbpr_from_rgb(self) -> np.ndarray:
        kr, kb = self.kr, self.kb
        kg = 1.0 - kr - kb
        return np.array([[kr, kg, kb],
                         [-0.5 * kr / (1 - kb), -0.5 * kg / (1 - kb), 0.5],
                         [0.5, -0.5 * kg / (1 - kr), -0.5 * kb / (1 - kr)]], np.float64)

    def to_rgb(self) -> tuple[np.ndarray, np.ndarray]:
        """(A, a): ``rgb = x @ A + a`` for kernel-domain YUV ``x`` (N, 3); float64."""
        oy, sy, oc, sc = self._offsets()
        d = self.domain_scale
        codes_to_ypbpr = np.diag([d / sy, d / sc, d / sc])  # x -> (Y', Pb, Pr) before offsets
        off = np.array([-oy / sy, -oc / sc, -oc / sc])
        inv = np.linalg.inv(self._ypbpr_from_rgb())
        return codes_to_ypbpr @ inv.T, off @ inv.T

    def from_rgb(self) -> tuple[np.ndarray, np.ndarray]:
        """(B, b): ``x = rgb @ B + b`` (kernel-domain YUV from RGB); float64."""
        oy, sy, oc, sc = self._offsets()
        d = self.domain_scale
        m = self._ypbpr_from_rgb()
        return (m.T * np.array([sy, sc, sc])) / d, np.array([oy, oc, oc]) / d

    def rgb(self, x: np.ndarray) -> np.ndarray:
        """Kernel-domain YUV (..., 3) -> RGB float32, unclipped."""
        a, off = self.to_rgb()
        return (np.asarray(x, np.float32).reshape(-1, 3) @ a.astype(np.float32) + off.astype(np.float32)).reshape(np.shape(x))

    def yuv(self, rgb: np.ndarray) -> np.ndarray:
        """RGB (..., 3) -> kernel-domain YUV float32."""
        b, off = self.from_rgb()
        return (np.asarray(rgb, np.float32).reshape(-1, 3) @ b.astype(np.float32) + off.astype(np.float32)).reshape(np.shape(rgb))

    def compose(self, rgb_map: Callable[[np.ndarray], np.ndarray], strength: float = 1.0) -> Callable[[np.ndarray], np.ndarray]:
        """A colour map on kernel-domain YUV: this clip's YUV -> RGB, ``rgb_map`` blended by
        ``strength``, RGB -> YUV; unclipped, like the photo path's tables (the kernel clips to the
        code range after interpolating, and a player clips out-of-gamut colours when it converts
        for display, as the photo path clips RGB after interpolating). The network sees the
        unclipped RGB of lattice nodes a little outside the gamut (it is smooth there), so cells
        that straddle the gamut's edge interpolate without a kink."""
        to_a, to_b = (m.astype(np.float32) for m in self.to_rgb())
        from_a, from_b = (m.astype(np.float32) for m in self.from_rgb())
        s = np.float32(strength)

        def f(x: np.ndarray) -> np.ndarray:
            rgb = np.asarray(x, np.float32).reshape(-1, 3) @ to_a + to_b
            out = rgb_map(rgb)
            if s != 1:
                out = rgb + s * (out - rgb)
            return out @ from_a + from_b

        return f


# ---------------------------------------------------------------- planes <-> packed (H, W, 3)
def _band_rows(h: int, step: int, threads: int | None) -> tuple[int, range]:
    """Row bands (a multiple of the chroma step) for ``threads`` threads."""
    from .threads import resolve

    rows = max(step, -(-h // max(1, resolve(threads))))
    rows += -rows % step
    return rows, range(0, h, rows)


def plane_view(plane, dtype: np.dtype, height: int, width: int) -> np.ndarray:
    """A writable (height, width) numpy view of one PyAV plane (its rows padded to ``line_size``)."""
    buf = np.frombuffer(plane, dtype)
    return buf.reshape(-1, plane.line_size // dtype.itemsize)[:height, :width]


def pack_planes(y: np.ndarray, cb: np.ndarray, cr: np.ndarray, spec: YuvSpec, threads: int | None = None) -> np.ndarray:
    """Y, Cb, Cr code planes -> (He, We, 3) ``spec.dtype`` packed codes (shifted up above 8 bits),
    chroma repeated over its block (nearest: unpacking averages the same blocks back). He, We are
    H, W rounded up to whole chroma blocks, the extra rows/columns repeating the last ones."""
    h, w = y.shape
    fy, fx = 1 << spec.sy, 1 << spec.sx
    he, we = -(-h // fy) * fy, -(-w // fx) * fx
    out = np.empty((he, we, 3), spec.dtype)
    s = spec.shift
    rows, starts = _band_rows(he, fy, threads)

    def band(r0: int) -> None:
        r1 = min(he, r0 + rows)
        c0, c1 = r0 // fy, r1 // fy
        o = out[r0:r1]
        yy = y[r0 : min(r1, h)]
        if s:
            np.left_shift(yy, s, out=o[: len(yy), :w, 0])
        else:
            o[: len(yy), :w, 0] = yy
        if len(yy) < r1 - r0:
            o[len(yy):, :w, 0] = o[len(yy) - 1, :w, 0]
        if we > w:
            o[:, w:, 0] = o[:, w - 1 : w, 0]
        for ch, plane in ((1, cb), (2, cr)):
            p = plane[c0:c1]
            if s:
                p = np.left_shift(p, s)
            for dy in range(fy):  # one strided copy per position in the block: long inner loops
                for dx in range(fx):
                    o[dy::fy, dx::fx, ch] = p

    run_blocks(band, starts, threads)
    return out


def unpack_into(packed: np.ndarray, planes: tuple[np.ndarray, np.ndarray, np.ndarray], spec: YuvSpec, out: YuvSpec,
                threads: int | None = None) -> None:
    """Packed (He, We, 3) codes of ``spec`` -> the Y, Cb, Cr planes (views, written in place) of
    pixel format ``out``: chroma box-averaged over ``out``'s blocks, codes rounded to ``out``'s bit depth."""
    py, pcb, pcr = planes
    h, w = py.shape
    fy, fx = 1 << out.sy, 1 << out.sx
    he, we = packed.shape[:2]
    if he % fy or we % fx:
        raise ValueError("packed frame does not hold whole chroma blocks of the output format")
    deep = spec.bits > 8  # packed as uint16 codes << shift, else uint8 codes
    down = (16 if deep else 8) - out.bits  # bits to drop (negative: an 8-bit source into a deeper format)
    top = (1 << out.bits) - 1
    wide = np.uint32 if deep else np.uint16
    n = fy * fx
    rows, starts = _band_rows(he, max(fy, 1 << spec.sy), threads)

    def codes(v: np.ndarray, k: int) -> np.ndarray:
        """``v`` (a sum of 2**(k - down) packed values) rounded to output codes, in place where it can."""
        if k <= 0:
            return v << -k if k else v
        v >>= k - 1  # round half up without overflowing: drop all but one bit, add it, drop it
        v += 1
        v >>= 1
        if deep:  # the kernel's 65535 is above the top code << shift: it rounds up past the top
            np.minimum(v, top, out=v)
        return v

    def band(r0: int) -> None:
        r1 = min(he, r0 + rows)
        o = packed[r0:r1]
        yy = o[: max(0, min(r1, h) - r0), :w, 0]
        dst = py[r0 : r0 + len(yy)]
        if down == 0:
            dst[...] = yy
        elif down < 0:
            dst[...] = yy.astype(np.uint16) << -down
        else:
            dst[...] = codes(yy.copy(), down)
        c0, c1 = r0 // fy, r1 // fy
        for ch, plane in ((1, pcb), (2, pcr)):
            acc = o[0::fy, 0::fx, ch].astype(wide)
            for dy in range(fy):
                for dx in range(fx):
                    if dy or dx:
                        acc += o[dy::fy, dx::fx, ch]
            plane[c0:c1] = codes(acc, n.bit_length() - 1 + down)[: plane.shape[0] - c0, : plane.shape[1]]

    run_blocks(band, starts, threads)


def yuv_to_rgb16(packed: np.ndarray, spec: YuvSpec, threads: int | None = None) -> np.ndarray:
    """Packed YUV codes (H, W, 3) -> RGB uint16 (H, W, 3), clipped (for the lattice-grid kernel)."""
    a, off = (m.astype(np.float32) for m in spec.to_rgb())
    norm = np.float32(1.0 / (255.0 if spec.bits == 8 else 65535.0))
    out = np.empty(packed.shape, np.uint16)
    rows, starts = _band_rows(packed.shape[0], 1, threads)

    def band(r0: int) -> None:
        x = packed[r0 : r0 + rows].astype(np.float32) * norm
        rgb = x @ (a * np.float32(65535.0)) + off * np.float32(65535.0)
        np.clip(rgb, 0, 65535, out=rgb)
        rgb += 0.5
        out[r0 : r0 + rows] = rgb

    run_blocks(band, starts, threads)
    return out


def rgb16_to_yuv(rgb: np.ndarray, spec: YuvSpec, threads: int | None = None) -> np.ndarray:
    """RGB uint16 (H, W, 3) -> packed YUV codes of ``spec`` (its dtype; the inverse of :func:`yuv_to_rgb16`)."""
    b, off = (m.astype(np.float32) for m in spec.from_rgb())
    peak = np.float32(255.0 if spec.bits == 8 else 65535.0)
    top = np.float32(spec.domain_max) * peak
    out = np.empty(rgb.shape, spec.dtype)
    rows, starts = _band_rows(rgb.shape[0], 1, threads)

    def band(r0: int) -> None:
        x = rgb[r0 : r0 + rows].astype(np.float32) * np.float32(1.0 / 65535.0)
        y = x @ (b * peak) + off * peak
        np.clip(y, 0, top, out=y)
        y += 0.5
        out[r0 : r0 + rows] = y

    run_blocks(band, starts, threads)
    return out
