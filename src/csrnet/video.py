"""Video: retouch clips frame by frame without flicker, keeping bit depth, timing, audio and metadata.

``enhance_video(src, dst, model)`` decodes a clip with PyAV (FFmpeg's libraries, from PyAV's wheels),
retouches every frame and encodes it again; every audio and subtitle stream is copied packet for
packet (no re-encoding), and frame timestamps (variable frame rate too), rotation, colour tags and
the bit depth (8-bit yuv420p, 10-bit yuv420p10le/yuv422p10le ...) are kept.

How a frame is retouched (global CSRNet models):

* A frame's small condition copy (the model's long edge, from a half-resolution copy of the
  planes for large frames) gives its condition vector, folded into the per-pixel network.
* **Temporal stability**: a per-frame model reacts to every frame's noise and texture, so the
  look — and the brightness — flickers. The folded network (affine in the condition vector, so
  this is smoothing the vector) is averaged over a centred window of ``smooth`` seconds with
  triangular weights, within the shot only: a jump in both the colour histogram and the picture
  structure of consecutive frames marks a cut (:func:`_is_cut`), and the window never reaches
  across one, so the first frames after a cut take the new shot's look at once. The window looks
  ahead ``smooth / 2`` seconds (those frames are held). The condition is computed on *anchor*
  frames (every ``smooth / 6`` s, at most 0.1 s apart, and every shot's first frame), and the frames
  between take the lattice interpolated between their anchors' (per-frame mode: every frame).
* **Colour**: the clip's YUV -> RGB (its own matrix and range), the network and RGB -> YUV are
  composed into one 3D lattice over the YUV codes (:meth:`csrnet.video_color.YuvSpec.compose`),
  fitted to the frame's colours, and applied to the packed codes with the project's C kernel
  (10/12-bit codes as uint16), so no per-pixel colour conversion runs at all.
* ``lut_per_clip``: one lattice for the whole clip, from the mean of sampled frames' networks
  and fitted to their colours (a first decoding pass); :func:`bake_clip_lut` gives it as a
  ``.cube`` table.

Spatially varying models (CSRNet-L) get their per-frame maps smoothed the same way and their
lattice grid applied to RGB converted in numpy (:func:`csrnet.video_color.yuv_to_rgb16`).

HDR clips (PQ or HLG transfer) are refused: the models were trained on SDR photos, and applying
them to PQ/HLG code values would be silently wrong.

Pipeline: a reader thread demuxes, decodes and analyses (condition vector, cut detection); the
calling thread smooths, bakes and applies; a writer thread encodes and muxes (PyAV releases the
GIL inside the codecs, numpy and the lattice kernel release it too), so the two cores overlap.
Output is written atomically (:func:`csrnet.io.atomic.atomic_write`): a failed or interrupted run
leaves no file.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import queue
import struct
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from .arch import get_architecture
from .arch.base import Architecture
from .arch.csrnet import Blend, GlobalState
from .arch.csrnet_l import LocalMaps, LocalState
from .arch.layers import Layers, run_mlp
from .errors import (
    CsrnetError,
    InvalidArgumentError,
    MissingDependencyError,
    OutputExistsError,
    PhotoError,
    UnsupportedFormatError,
)
from .io.atomic import atomic_write
from .io.marks import settings_text
from .kernels.lattice import fit_lattice
from .kernels.lut import Lattice, LatticeGrid, apply_lut_uint
from .kernels.resize import downscale
from .threads import resolve, run_blocks
from .video_color import (
    PIXEL_FORMATS,
    YuvSpec,
    pack_planes,
    plane_view,
    rgb16_to_yuv,
    unpack_into,
    yuv_to_rgb16,
)
from .weights import Model, load_model

__all__ = [
    "CODECS",
    "VIDEO_SUFFIXES",
    "VideoReport",
    "bake_clip_lut",
    "encoder_options",
    "enhance_video",
    "export_clip_lut",
    "flicker",
    "is_video",
]

#: File suffixes routed to the video path (lower case).
VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mts", ".m2ts", ".ts", ".mxf", ".mpg", ".mpeg",
                            ".wmv", ".flv", ".3gp", ".ogv"})
#: Output containers by suffix (FFmpeg muxer names).
_MUXERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi",
           ".ts": "mpegts", ".mts": "mpegts", ".m2ts": "mpegts"}
#: ``codec`` values of :func:`enhance_video` (``same``: the input's codec, where one of these encoders fits it).
CODECS = ("same", "h264", "hevc", "prores")
_ENCODERS = {"h264": "libx264", "hevc": "libx265", "prores": "prores_ks", "vp9": "libvpx-vp9", "av1": "libsvtav1"}
#: H.273 transfer characteristics of HDR video: SMPTE ST 2084 (PQ) and ARIB STD-B67 (HLG).
_HDR_TRANSFERS = {16: "PQ (SMPTE ST 2084)", 18: "HLG (ARIB STD-B67)"}
#: Cut detection (consecutive frames, from point-sampled thumbnails): a cut is a jump in the colour
#: histogram (total-variation distance of 8x8x8 RGB histograms above CUT_THRESHOLD) together with a
#: change of picture structure (correlation of 32-px-wide luma thumbnails, gain and offset removed,
#: below CUT_CORRELATION) — a lighting, exposure or tint change moves the histogram but keeps the
#: structure, a pan keeps the histogram. Measured on bench/video.py's 1080p clip: within shots
#: histogram <= 0.07 (95th percentile; lighting change included) and correlation >= 0.96, at its
#: cuts 0.56-0.75 and 0.05-0.09; per-frame tint / contrast jitter on a still shot: histogram up to
#: 0.8 but correlation 1.0.
CUT_THRESHOLD = 0.3
CUT_CORRELATION = 0.9
_SAMPLES_PER_CLIP = 48  # frames sampled for lut_per_clip / bake_clip_lut
_SEEK_ABOVE = 120.0  # seconds: longer clips are sampled by seeking, not by decoding every frame
_QUEUE = 6  # frames in flight between the threads


def is_video(path: str | Path) -> bool:
    """Whether ``path`` names a video file (by suffix: .mp4, .mov, .mkv, .webm ...): for routing, no file is read."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def _av():
    try:
        import av
    except ImportError:
        raise MissingDependencyError('video needs PyAV: pip install "csrnet-retouch[video]"') from None
    return av


def _why(e: BaseException) -> str:
    """One line for an FFmpeg error (its strerror, without the file name PyAV appends)."""
    text = getattr(e, "strerror", None) or str(e) or type(e).__name__
    return str(text).splitlines()[0].strip().rstrip(".")


@dataclass
class VideoReport:
    """What :func:`enhance_video` did."""

    src: Path
    dst: Path
    frames: int
    duration: float  # seconds, first frame's start to last frame's end
    width: int
    height: int
    pix_fmt: str
    out_pix_fmt: str
    encoder: str
    mode: str  # "smoothed 0.5 s", "per-frame" or "per-clip"
    cuts: list[float] = field(default_factory=list)  # times (s) of the frames that start a new shot
    copied_streams: list[str] = field(default_factory=list)
    dropped_streams: list[str] = field(default_factory=list)
    seconds: float = 0.0  # wall time

    @property
    def fps(self) -> float:
        """Frames processed per second of wall time."""
        return self.frames / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        streams = f", copied {', '.join(self.copied_streams)}" if self.copied_streams else ""
        return (f"{self.dst}: {self.frames} frames, {self.duration:.2f} s, {self.width}x{self.height} {self.out_pix_fmt} {self.encoder}, "
                f"{self.mode}, {len(self.cuts)} cut(s){streams}; {self.fps:.1f} frames/s")


# ---------------------------------------------------------------- reading the clip
@dataclass
class _Clip:
    """The facts of a clip, read from its header and first frame."""

    path: Path
    index: int  # video stream index
    codec: str
    width: int
    height: int
    pix_fmt: str
    spec: YuvSpec
    color_range: int
    colorspace: int
    color_primaries: int
    color_trc: int
    display_matrix: list[int] | None
    rotation: int
    time_base: Fraction
    rate: Fraction | None
    frames: int  # from the index, 0 when unknown
    duration: float | None  # the video stream's declared duration (s), None when unknown
    container_duration: float | None  # the container's (all streams), None when unknown
    sample_aspect_ratio: Fraction | None


def _video_stream(container, path: Path):
    av = _av()
    streams = [s for s in container.streams.video if not (s.disposition & av.stream.Disposition.attached_pic)]
    if not streams:
        raise PhotoError(f"{path}: no video stream")
    return streams[0]


def _open(path: Path):
    av = _av()
    if not path.is_file():
        raise PhotoError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    if path.stat().st_size == 0:
        raise PhotoError(f"{path}: empty file")
    try:
        container = av.open(str(path), metadata_errors="replace")
    except av.error.FFmpegError as e:
        raise PhotoError(f"{path}: not a readable video ({_why(e)})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise PhotoError(f"{path}: cannot open ({e})") from None
    name = container.format.name or ""
    if name == "image2" or name.endswith("_pipe"):
        container.close()
        raise PhotoError(f"{path}: an image ({name.removesuffix('_pipe')}), not a video")
    return container


def _probe(path: Path) -> _Clip:
    """Open ``path``, decode its first frame and check it can be processed (typed errors otherwise)."""
    av = _av()
    container = _open(path)
    try:
        vs = _video_stream(container, path)
        if vs.codec_context is None:
            raise UnsupportedFormatError(f"{path}: no decoder for its {vs.codec.name if vs.codec else 'unknown'} video")
        vs.thread_type = "AUTO"
        first = None
        try:
            for packet in container.demux(vs):
                for frame in packet.decode():
                    first = frame
                    break
                if first is not None:
                    break
        except av.error.FFmpegError as e:
            raise PhotoError(f"{path}: corrupt video data ({_why(e)})") from None
        if first is None:
            raise PhotoError(f"{path}: no decodable video frames (corrupt or truncated)")
        trc = int(first.color_trc or vs.codec_context.color_trc or 0)
        if trc in _HDR_TRANSFERS:
            raise UnsupportedFormatError(f"{path}: HDR video ({_HDR_TRANSFERS[trc]} transfer) is not supported: the models are trained "
                                         "on SDR photos; convert it to SDR (BT.709) first")
        fmt = first.format.name
        colorspace = int(first.colorspace or vs.codec_context.colorspace or 2)
        color_range = int(first.color_range or vs.codec_context.color_range or 0)
        try:
            spec = YuvSpec.of(fmt, colorspace, color_range, first.height)
        except UnsupportedFormatError as e:
            raise UnsupportedFormatError(f"{path}: {e}") from None
        matrix = None
        for sd in first.side_data:
            if str(sd.type).endswith("DISPLAYMATRIX") and sd.buffer_size >= 36:
                matrix = list(struct.unpack("<9i", bytes(sd)[:36]))
        declared = float(vs.duration * vs.time_base) if vs.duration and vs.time_base else None
        return _Clip(
            path=path, index=vs.index, codec=getattr(vs.codec_context.codec, "canonical_name", None) or vs.codec_context.name,
            width=first.width, height=first.height, pix_fmt=fmt, spec=spec,
            color_range=color_range, colorspace=int(first.colorspace or vs.codec_context.colorspace or 2),  # 2: unspecified
            color_primaries=int(first.color_primaries or vs.codec_context.color_primaries or 2), color_trc=trc or 2,
            display_matrix=matrix, rotation=int(first.rotation or 0), time_base=vs.time_base or Fraction(1, 90000),
            rate=vs.average_rate or vs.guessed_rate, frames=int(vs.frames or 0), duration=declared,
            container_duration=container.duration / 1_000_000 if container.duration else None,
            sample_aspect_ratio=vs.sample_aspect_ratio,
        )
    finally:
        container.close()


def _planes(frame, spec: YuvSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Numpy views (Y, Cb, Cr) of a frame's planes."""
    dtype = np.dtype("<u2") if spec.bits > 8 else np.dtype(np.uint8)
    h, w = frame.height, frame.width
    ch, cw = -(-h // (1 << spec.sy)), -(-w // (1 << spec.sx))
    p = frame.planes
    return plane_view(p[0], dtype, h, w), plane_view(p[1], dtype, ch, cw), plane_view(p[2], dtype, ch, cw)


# ---------------------------------------------------------------- per-frame analysis and transforms
def _models(net: Model | Blend) -> list[Model]:
    return [m for m, _ in net.parts] if isinstance(net, Blend) else [net]


def _analysis_image(planes, spec: YuvSpec, long_edge: int | None) -> tuple[np.ndarray, np.ndarray | None]:
    """The image the condition copies are taken from, and the packed frame when that is it.

    Large frames: the chroma planes with a box-averaged luma plane at their resolution (a quarter
    of the pixels for 4:2:0), which the downscale to the condition size averages anyway; frames
    under twice the condition size at that resolution (and full-resolution conditions): the packed
    frame itself."""
    y, cb, cr = planes
    fy, fx = 1 << spec.sy, 1 << spec.sx
    h, w = y.shape
    ch, cw = h // fy, w // fx
    if long_edge is None or (fy == fx == 1) or max(ch, cw) < 2 * long_edge:
        packed = pack_planes(y, cb, cr, spec, threads=1)
        return packed, packed
    acc = y[: ch * fy : fy, : cw * fx : fx].astype(np.uint16)
    for dy in range(fy):
        for dx in range(fx):
            if dy or dx:
                acc += y[dy : ch * fy : fy, dx : cw * fx : fx]
    n = fy * fx
    out = np.empty((ch, cw, 3), spec.dtype)
    s = spec.shift
    luma = (acc + n // 2) // n
    out[..., 0] = luma << s if s else luma
    for c, plane in ((1, cb), (2, cr)):
        out[..., c] = plane[:ch, :cw] << s if s else plane[:ch, :cw]
    return out, None


def _histogram(rgb: np.ndarray) -> np.ndarray:
    """Normalised 8x8x8 RGB histogram of a small (h, w, 3) float image in [0, 1]."""
    q = np.minimum((rgb.reshape(-1, 3) * 8).astype(np.int32), 7)
    counts = np.bincount(q[:, 0] * 64 + q[:, 1] * 8 + q[:, 2], minlength=512).astype(np.float32)
    return counts / max(1.0, counts.sum())


def _thumbnail(planes, spec: YuvSpec, long_edge: int = 240) -> np.ndarray:
    """A point-sampled RGB thumbnail (about ``long_edge`` px) of a frame's planes, float32 in [0, 1]:
    enough for a colour histogram, at a fraction of the cost of an antialiased copy."""
    y, cb, cr = planes
    h, w = y.shape
    step = max(1, max(h, w) // long_edge)
    rows, cols = np.arange(0, h, step), np.arange(0, w, step)
    codes = np.empty((len(rows), len(cols), 3), np.float32)
    codes[..., 0] = y[::step, ::step]
    codes[..., 1] = cb[np.ix_(rows >> spec.sy, cols >> spec.sx)]
    codes[..., 2] = cr[np.ix_(rows >> spec.sy, cols >> spec.sx)]
    codes *= np.float32(1.0 / spec.domain_scale)  # raw codes -> the kernel domain spec.rgb takes
    return np.clip(spec.rgb(codes), 0.0, 1.0)


def _signature(thumb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What cut detection compares: the thumbnail's colour histogram and its luma structure (block
    means about 32 px wide, zero mean, unit variance)."""
    luma = thumb.mean(axis=2)
    k = max(1, luma.shape[1] // 32)
    h, w = luma.shape[0] // k * k, luma.shape[1] // k * k
    blocks = luma[:h, :w].reshape(h // k, k, w // k, k).mean(axis=(1, 3))
    blocks -= blocks.mean()
    sd = float(blocks.std())
    return _histogram(thumb), blocks / sd if sd > 1e-4 else blocks


def _is_cut(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> bool:
    """Whether signatures ``a`` and ``b`` of consecutive frames are on either side of a cut."""
    colour = 0.5 * float(np.abs(a[0] - b[0]).sum())
    if colour <= CUT_THRESHOLD:
        return False
    structure = float((a[1] * b[1]).mean()) if a[1].shape == b[1].shape else 0.0
    return structure < CUT_CORRELATION


@dataclass
class _Frame:
    """A decoded frame on its way through the pipeline. *Anchors* (a frame every :attr:`_Run.interval`
    seconds, and every shot's first frame) carry a condition state; the frames between take the
    look interpolated between the anchors around them."""

    frame: Any  # av.VideoFrame (dropped once processed)
    pts: int
    duration: int
    t: float  # seconds
    shot: int = 0
    anchor: bool = False
    state: Any = None  # anchors: the architecture's state (the template that smoothed arrays rebuild)
    arrays: list[np.ndarray] | None = None  # anchors: the state's arrays to smooth (None: not smoothable)
    colours: np.ndarray | None = None  # anchors: (N, 3) kernel-domain YUV of the condition copy
    packed: np.ndarray | None = None  # the packed codes, when analysis already made them
    smoothed: list[np.ndarray] | None = None  # anchors: the smoothed arrays, once computed
    table: Any = None  # anchors: the baked YUV lattice (global models) or RGB bake (others), once computed


def _state_arrays(state: Any) -> list[np.ndarray] | None:
    """The arrays of an architecture state that smoothing averages (None: not smoothable)."""
    if isinstance(state, GlobalState):
        return [a for layers, _ in state.mix for a in (*layers.weights, *layers.biases)]
    if isinstance(state, LocalState):
        m = state.maps
        return [m.vec, m.b] + ([] if m.a is None else [m.a])
    return None


def _rebuild(template: Any, arrays: list[np.ndarray]) -> Any:
    """``template`` with its smoothable arrays replaced by ``arrays``."""
    if isinstance(template, GlobalState):
        mix = []
        for k, (_, w) in enumerate(template.mix):
            a = arrays[6 * k : 6 * k + 6]
            mix.append((Layers(tuple(a[:3]), tuple(a[3:])), w))  # type: ignore[arg-type]
        return GlobalState(mix, template.colours)
    if isinstance(template, LocalState):
        return LocalState(template.model, LocalMaps(arrays[0], arrays[2] if len(arrays) > 2 else None, arrays[1]))
    return template


def _mean_state(entries: list[tuple[float, list[np.ndarray]]], template: Any) -> Any:
    """Weighted mean of states (weights need not sum to 1)."""
    total = sum(w for w, _ in entries)
    arrays = [sum(np.float32(w / total) * a[i] for w, a in entries) for i in range(len(entries[0][1]))]
    return _rebuild(template, [np.asarray(a, np.float32) for a in arrays])


def _rgb_map(state: GlobalState, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    """The folded network(s) of a CSRNet state as one colour map (a blend's outputs mixed by weight)."""
    mix = state.mix

    def f(c: np.ndarray) -> np.ndarray:
        out = None
        for layers, w in mix:
            y = run_mlp(layers, c, threads=threads)
            if w != 1.0:
                y *= np.float32(w)
            out = y if out is None else out + y
        return out  # type: ignore[return-value]

    return f


class _Engine:
    """One clip's per-frame work: analysis (condition state, cut histogram) and the transform."""

    def __init__(self, net: Model | Blend, arch: Architecture, clip: _Clip, out_spec: YuvSpec, strength: float, lut_size: int | None,
                 threads: int) -> None:
        spec = clip.spec
        self.net, self.arch, self.spec, self.out_spec = net, arch, spec, out_spec
        self.strength, self.threads = float(strength), threads
        self.global_lut = arch.single_lut
        if lut_size:
            self.size = int(lut_size)
        else:
            # Measured (auto model, 11 shared photos as 4:2:0 BT.709 frames, PSNR of the RGB result against
            # exact mode, min / mean dB): 8-bit 49.9 / 51.8 at 33, 49, 65 alike (the 8-bit 4:2:0 output's own
            # rounding dominates); 10-bit 52.7 / 60.2 at 33, 52.8 / 62.0 at 49, 52.8 / 63.0 at 65.
            self.size = (33 if spec.bits == 8 else 49) if self.global_lut else arch.default_lut_size
        self.first = _models(net)[0]
        self.shape = (clip.height, clip.width)

    def analyse(self, item: _Frame) -> None:
        """Condition state and colours of ``item``'s frame (sets its fields)."""
        planes = _planes(item.frame, self.spec)
        source, packed = _analysis_image(planes, self.spec, self.first.condition_size)
        item.packed = packed
        made: dict[int | None, tuple[np.ndarray, np.ndarray]] = {}

        def small(m: Model) -> tuple[np.ndarray, np.ndarray]:
            key = m.condition_size
            if key not in made:
                yuv = downscale(source, key, threads=1)
                h, w = yuv.shape[:2]
                if h < 5 or w < 5:
                    yuv = np.pad(yuv, ((0, max(0, 5 - h)), (0, max(0, 5 - w)), (0, 0)), mode="edge")
                made[key] = (yuv, np.clip(self.spec.rgb(yuv), 0.0, 1.0))
            return made[key]

        item.state = self.arch.condition(self.net, lambda m: small(m)[1], 1)
        item.arrays = _state_arrays(item.state)
        item.colours = small(self.first)[0].reshape(-1, 3)
        item.anchor = True

    def packed(self, item: _Frame) -> np.ndarray:
        if item.packed is None:
            item.packed = pack_planes(*_planes(item.frame, self.spec), self.spec, threads=self.threads)
        return item.packed

    def table(self, state: GlobalState, colours: np.ndarray, *, photo_only: bool) -> np.ndarray:
        """The YUV lattice of a CSRNet state, fitted to ``colours`` (kernel-domain YUV)."""
        f = self.spec.compose(_rgb_map(state, self.threads), self.strength)
        return fit_lattice(f, colours, self.size, 1.0, photo_only=photo_only)

    def apply_table(self, item: _Frame, table: np.ndarray, out_planes: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        """``item``'s frame through a YUV lattice into ``out_planes``: pack, kernel and unpack run
        band by band (a band's packed codes stay in cache), the bands spread over the threads."""
        spec, out = self.spec, self.out_spec
        planes = None if item.packed is not None else _planes(item.frame, spec)
        h = out_planes[0].shape[0]
        step = max(1 << spec.sy, 1 << out.sy)
        rows = max(step, 64 // step * step)

        def band(r0: int) -> None:
            r1 = min(h, r0 + rows)
            if planes is None:
                packed = item.packed[r0 : r0 + -(-(r1 - r0) // step) * step]  # type: ignore[index]
            else:
                y, cb, cr = planes
                packed = pack_planes(y[r0:r1], cb[r0 >> spec.sy : -(-r1 >> spec.sy)], cr[r0 >> spec.sy : -(-r1 >> spec.sy)], spec, threads=1)
            res = apply_lut_uint(packed, table, self.size, threads=1)
            py, pcb, pcr = out_planes
            unpack_into(res, (py[r0:r1], pcb[r0 >> out.sy : -(-r1 >> out.sy)], pcr[r0 >> out.sy : -(-r1 >> out.sy)]), spec, out, threads=1)

        run_blocks(band, range(0, h, rows), self.threads)

    def bake(self, state: Any) -> Lattice | LatticeGrid:
        """Any architecture's bake of ``state`` for this clip's (packed) frame size, in RGB."""
        fy, fx = 1 << self.spec.sy, 1 << self.spec.sx
        shape = (-(-self.shape[0] // fy) * fy, -(-self.shape[1] // fx) * fx)
        return self.arch.bake(state, self.size, self.strength, shape, self.threads)

    def apply_baked(self, item: _Frame, baked: Lattice | LatticeGrid, out_planes: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        """``item``'s frame through an RGB bake (spatially varying models) into ``out_planes``: the
        packed codes converted to RGB and back in numpy (:func:`csrnet.video_color.yuv_to_rgb16`)."""
        rgb = yuv_to_rgb16(self.packed(item), self.spec, threads=self.threads)
        packed = rgb16_to_yuv(baked.apply_uint(rgb, threads=self.threads), self.spec, threads=self.threads)
        unpack_into(packed, out_planes, self.spec, self.out_spec, threads=self.threads)


def _lerp_baked(a: Lattice | LatticeGrid, b: Lattice | LatticeGrid, lam: float) -> Lattice | LatticeGrid:
    """The bake a fraction ``lam`` of the way from ``a`` to ``b`` (same kind and size)."""
    if isinstance(a, LatticeGrid) and isinstance(b, LatticeGrid) and a.tables.shape == b.tables.shape:
        return LatticeGrid(a.tables + np.float32(lam) * (b.tables - a.tables), a.size, a.rows, a.cols)
    if isinstance(a, Lattice) and isinstance(b, Lattice) and a.table.shape == b.table.shape:
        return Lattice(a.table + np.float32(lam) * (b.table - a.table), a.size)
    return a if lam < 0.5 else b


# ---------------------------------------------------------------- encoder settings
def encoder_options(encoder: str, crf: int, pix_fmt: str) -> dict[str, str]:
    """The encoder options :func:`enhance_video` uses (bench/video.py times the codec alone with these)."""
    if encoder == "libx264":
        return {"crf": str(crf), "preset": "medium"}
    if encoder == "libx265":
        return {"crf": str(crf), "preset": "medium", "x265-params": "log-level=error"}
    if encoder == "prores_ks":
        return {"profile": "4444" if pix_fmt.startswith("yuv444") else "hq", "vendor": "apl0"}
    if encoder == "libvpx-vp9":
        return {"crf": str(crf), "b": "0", "row-mt": "1"}
    if encoder == "libsvtav1":
        return {"crf": str(crf)}
    return {}


def _encoder(codec: str, clip: _Clip) -> str:
    av = _av()
    if codec == "same":
        name = _ENCODERS.get(clip.codec)
        if name is None:
            raise UnsupportedFormatError(f"{clip.path}: cannot re-encode {clip.codec} video; choose codec h264, hevc or prores")
    elif codec in CODECS:
        name = _ENCODERS[codec]
    else:
        raise InvalidArgumentError(f"unknown codec {codec!r} (choose {', '.join(CODECS)})")
    try:
        av.codec.Codec(name, "w")
    except ValueError:  # av.codec.codec.UnknownCodecError
        raise MissingDependencyError(f"this PyAV build has no {name} encoder") from None
    return name


def _output_format(encoder: str, spec: YuvSpec) -> str:
    """The encoder's pixel format closest to the clip's: same one if it can; else never fewer bits,
    then never coarser chroma, then the nearest."""
    av = _av()
    names = [f.name for f in (av.codec.Codec(encoder, "w").video_formats or [])]
    if spec.pix_fmt in names:
        return spec.pix_fmt
    ours = [n for n in names if n in PIXEL_FORMATS]
    if not ours:
        raise UnsupportedFormatError(f"the {encoder} encoder takes none of the planar YUV formats csrnet writes")

    def cost(n: str) -> tuple:
        bits, sx, sy, full = PIXEL_FORMATS[n]
        return (bits < spec.bits, sx > spec.sx or sy > spec.sy, full != spec.full_range and n.startswith("yuvj"),
                abs(bits - spec.bits), abs(sx - spec.sx) + abs(sy - spec.sy))

    return min(ours, key=cost)


def _check_args(strength: float, smooth: float, crf: int) -> None:
    if not (isinstance(strength, (int, float)) and math.isfinite(strength)):
        raise InvalidArgumentError(f"strength must be a finite number, got {strength!r}")
    if not (isinstance(smooth, (int, float)) and math.isfinite(smooth) and 0 <= smooth <= 60):
        raise InvalidArgumentError(f"smooth must be between 0 and 60 seconds, got {smooth!r}")
    if not (isinstance(crf, numbers.Integral) and 0 <= crf <= 63):
        raise InvalidArgumentError(f"crf must be an integer between 0 and 63, got {crf!r}")


def _describe(net: Model | Blend) -> str:
    """``name@fingerprint`` of a model or of each part of a blend, as ``csrnet.batch.describe_model``
    (not imported: the batch may route videos here, and the imports must not make a cycle)."""
    if isinstance(net, Model):
        return f"{net.name or 'model'}@{net.fingerprint}"
    return "+".join(f"{_describe(m)}*{w:g}" for m, w in net.parts) + f" ({net.mode} blend)"


def _load(model: Model | Blend | str) -> tuple[Model | Blend, Architecture]:
    net = model if isinstance(model, Blend) else load_model(model)
    return net, get_architecture(net.arch)


# ---------------------------------------------------------------- the threads
class _Stop(Exception):
    """Another thread failed: leave quietly."""


class _Pipe:
    """A bounded queue between two threads that gives up when the run is stopped."""

    def __init__(self, stop: threading.Event, size: int = _QUEUE) -> None:
        self.q: queue.Queue = queue.Queue(size)
        self.stop = stop

    def put(self, item: Any) -> None:
        while True:
            if self.stop.is_set():
                raise _Stop
            try:
                self.q.put(item, timeout=0.1)
                return
            except queue.Full:
                pass

    def get(self) -> Any:
        while True:
            if self.stop.is_set():
                raise _Stop
            try:
                return self.q.get(timeout=0.1)
            except queue.Empty:
                pass


_EOF = object()


class _Run:
    """One enhance_video run: reader thread -> this thread -> writer thread."""

    def __init__(self, clip: _Clip, engine: _Engine, *, smooth: float, fixed_table: np.ndarray | None, encoder: str, out_fmt: str,
                 crf: int, progress: Callable[[int, int | None], object] | None, mark: str = "") -> None:
        self.clip, self.engine, self.half = clip, engine, smooth / 2
        self.mark = mark
        #: seconds between anchors (frames whose condition is computed): every frame when not smoothing;
        #: else a sixth of the window (at most 0.1 s), so each window averages six or more of them
        self.interval = min(0.1, smooth / 6)
        self.fixed_table, self.encoder, self.out_fmt, self.crf = fixed_table, encoder, out_fmt, crf
        self.progress = progress
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.cuts: list[float] = []
        self.frames = 0
        self.first_t: float | None = None
        self.last_end = 0.0
        self.copied: list[str] = []
        self.dropped: list[str] = []

    # -------------------------------------------------------------- reader
    def _read(self, container, vs, sources: list, copied: dict, pipe: _Pipe) -> None:
        av = _av()
        clip, analyse = self.clip, self.fixed_table is None
        prev_pts, prev_dur, previous, shot, count, anchor_t = None, 0, None, 0, 0, None
        spans: dict[int, list[float]] = {}  # stream index -> [first start, last end] (s)
        default_dur = round(1 / (clip.rate * clip.time_base)) if clip.rate else 1

        def seen(index: int, start: float, end: float) -> None:
            span = spans.setdefault(index, [start, end])
            span[0], span[1] = min(span[0], start), max(span[1], end)

        try:
            for packet in container.demux([vs, *sources]):
                if packet.stream.index != vs.index:
                    if packet.size and (packet.dts is not None or packet.pts is not None):
                        if packet.dts is None:
                            packet.dts = packet.pts
                        if packet.pts is not None and packet.time_base:
                            start = float(packet.pts * packet.time_base)
                            seen(packet.stream.index, start, start + float((packet.duration or 0) * packet.time_base))
                        packet.stream = copied[packet.stream.index]
                        pipe.put(("packet", packet))
                    continue
                for frame in packet.decode():
                    if (frame.width, frame.height) != (clip.width, clip.height) or frame.format.name != clip.pix_fmt:
                        raise UnsupportedFormatError(f"{clip.path}: the video changes size or pixel format mid-stream "
                                                     f"({clip.width}x{clip.height} {clip.pix_fmt} -> {frame.width}x{frame.height} {frame.format.name})")
                    pts = frame.pts
                    if pts is None:
                        pts = 0 if prev_pts is None else prev_pts + (prev_dur or default_dur)
                    elif prev_pts is not None and pts <= prev_pts:
                        pts = prev_pts + 1  # the encoder needs strictly increasing timestamps
                    dur = int(frame.duration or 0)
                    item = _Frame(frame, pts, dur, float(pts * clip.time_base))
                    if analyse:
                        signature = _signature(_thumbnail(_planes(frame, clip.spec), clip.spec))
                        cut = previous is not None and _is_cut(signature, previous)
                        if cut:
                            shot += 1
                            self.cuts.append(item.t)
                        previous, item.shot = signature, shot
                        if cut or anchor_t is None or item.t - anchor_t >= self.interval - 1e-6:
                            self.engine.analyse(item)
                            anchor_t = item.t
                    seen(vs.index, item.t, item.t + float((dur or default_dur) * clip.time_base))
                    prev_pts, prev_dur, count = pts, dur, count + 1
                    pipe.put(("frame", item))
        except av.error.FFmpegError as e:
            raise PhotoError(f"{clip.path}: corrupt video data ({_why(e)})") from None
        if count == 0:
            raise PhotoError(f"{clip.path}: no decodable video frames")
        # A download cut short: the streams end well before the declared duration (the video stream's
        # where the container has one, else the container's over every stream read). Fewer frames than
        # the index lists alone is not enough: an edit list (a clip trimmed without re-encoding) drops some.
        video_span = spans[vs.index][1] - spans[vs.index][0]
        all_span = max(e for _, e in spans.values()) - min(b for b, _ in spans.values())
        declared, span = (clip.duration, video_span) if clip.duration else (clip.container_duration, all_span)
        if declared and span < declared - max(0.25, 0.02 * declared):
            raise PhotoError(f"{clip.path}: truncated: {count}{f' of {clip.frames}' if clip.frames else ''} frames, "
                             f"the streams end at {span:.2f} s of {declared:.2f} s")
        pipe.put(_EOF)

    # -------------------------------------------------------------- writer
    def _write(self, out, ostream, pipe: _Pipe) -> None:
        av = _av()
        try:
            self._encode(out, ostream, pipe)
        except (av.error.FFmpegError, OSError) as e:
            raise CsrnetError(f"cannot write the video ({_why(e)})") from None

    def _encode(self, out, ostream, pipe: _Pipe) -> None:
        while True:
            item = pipe.get()
            if item is _EOF:
                break
            kind, x = item
            if kind == "frame":
                for p in ostream.encode(x):
                    out.mux(p)
            else:
                out.mux(x)
        for p in ostream.encode(None):
            out.mux(p)

    def _thread(self, target, *args) -> threading.Thread:
        def body() -> None:
            try:
                target(*args)
            except _Stop:
                pass
            except BaseException as e:  # noqa: BLE001 - handed to the calling thread
                self.errors.append(e)
                self.stop.set()

        t = threading.Thread(target=body, name=f"csrnet-video-{target.__name__.strip('_')}", daemon=True)
        t.start()
        return t

    # -------------------------------------------------------------- the calling thread
    def _smoothed(self, anchor: _Frame, anchors: list[_Frame]) -> list[np.ndarray] | None:
        """An anchor's state arrays averaged over the anchors of its shot within the window
        (triangular weights, centred); None for states that cannot be smoothed."""
        if anchor.smoothed is None and anchor.arrays is not None:
            if self.half > 0:
                near = [(1.0 - abs(e.t - anchor.t) / self.half, e.arrays) for e in anchors
                        if e.shot == anchor.shot and abs(e.t - anchor.t) < self.half]
                total = sum(w for w, _ in near)
                anchor.smoothed = [np.asarray(sum(np.float32(w / total) * arr[i] for w, arr in near), np.float32)
                                   for i in range(len(anchor.arrays))]
            else:
                anchor.smoothed = anchor.arrays
        return anchor.smoothed

    def _table(self, anchor: _Frame, anchors: list[_Frame]) -> np.ndarray:
        if anchor.table is None:
            state = _rebuild(anchor.state, self._smoothed(anchor, anchors))  # type: ignore[arg-type]
            anchor.table = self.engine.table(state, anchor.colours, photo_only=True)  # type: ignore[arg-type]
        return anchor.table

    def _baked(self, anchor: _Frame, anchors: list[_Frame]) -> Lattice | LatticeGrid:
        if anchor.table is None:
            arrays = self._smoothed(anchor, anchors)
            anchor.table = self.engine.bake(anchor.state if arrays is None else _rebuild(anchor.state, arrays))
        return anchor.table  # type: ignore[return-value]

    def _bracket(self, item: _Frame, anchors: list[_Frame]) -> tuple[_Frame, _Frame | None, float]:
        """The anchors around ``item`` in its shot (the later one None when there is none yet, or
        ``item`` is an anchor) and ``item``'s position between them."""
        before = [e for e in anchors if e.shot == item.shot and e.t <= item.t]
        after = [e for e in anchors if e.shot == item.shot and e.t > item.t]
        a = before[-1] if before else after[0]
        b = after[0] if (before and after and not item.anchor) else None
        return a, b, 0.0 if b is None else (item.t - a.t) / (b.t - a.t)

    def _emit(self, item: _Frame, anchors: list[_Frame], out_pipe: _Pipe) -> None:
        av = _av()
        engine, clip = self.engine, self.clip
        vf = av.VideoFrame(clip.width, clip.height, self.out_fmt)
        out_planes = _planes(vf, engine.out_spec)
        if self.fixed_table is not None:
            engine.apply_table(item, self.fixed_table, out_planes)
        else:
            a, b, lam = self._bracket(item, anchors)
            if engine.global_lut:
                table = self._table(a, anchors)
                if b is not None:  # the look moves smoothly between anchors: interpolate their lattices
                    table = table + np.float32(lam) * (self._table(b, anchors) - table)
                engine.apply_table(item, table, out_planes)
            else:
                baked = self._baked(a, anchors)
                if b is not None:
                    baked = _lerp_baked(baked, self._baked(b, anchors), lam)
                engine.apply_baked(item, baked, out_planes)
        vf.pts, vf.time_base = item.pts, clip.time_base
        if item.duration:
            vf.duration = item.duration
        vf.color_range = 2 if engine.out_spec.full_range else clip.color_range
        vf.colorspace, vf.color_primaries, vf.color_trc = clip.colorspace, clip.color_primaries, clip.color_trc
        item.frame = item.packed = None
        if self.first_t is None:
            self.first_t = item.t
        self.last_end = item.t + float(item.duration * clip.time_base) if item.duration else item.t
        self.frames += 1
        out_pipe.put(("frame", vf))
        if self.progress is not None:
            self.progress(self.frames, self.clip.frames or None)

    def run(self, tmp: Path, fmt: str) -> None:
        av = _av()
        clip = self.clip
        container = _open(clip.path)
        out = None
        threads: list[threading.Thread] = []
        try:
            vs = container.streams[clip.index]
            vs.thread_type = "AUTO"
            try:
                out = av.open(str(tmp), "w", format=fmt)
            except av.error.FFmpegError as e:
                raise CsrnetError(f"cannot write {fmt} video ({_why(e)})") from None
            out.metadata.update({k: v for k, v in container.metadata.items()
                                 if k.lower() not in ("encoder", "major_brand", "minor_version", "compatible_brands", "duration")
                                 and not (k.lower() == "comment" and v.startswith("csrnet "))})
            if self.mark and not any(k.lower() == "comment" for k in out.metadata):
                out.metadata["comment"] = self.mark  # csrnet's mark, as photos carry it in EXIF Software
            try:
                chapters = container.chapters()
                if chapters:
                    out.set_chapters(chapters)
            except (av.error.FFmpegError, ValueError, TypeError, KeyError):
                warnings.warn(f"{clip.path}: its chapters could not be copied", stacklevel=3)
            ostream = self._video_out(out, vs)
            copied = {}
            for s in container.streams:
                if s.index == clip.index or s.type not in ("audio", "subtitle"):
                    if s.type == "data" and "timecode" in s.metadata:
                        self.copied.append(f"timecode {s.metadata['timecode']}")  # the muxer writes a new track from it
                    elif s.index != clip.index:
                        self.dropped.append(f"{s.type} #{s.index}")
                    continue
                label = f"{s.type} #{s.index} ({s.codec_context.name if s.codec_context else '?'})"
                try:
                    o = out.add_stream_from_template(s)
                except (av.error.FFmpegError, ValueError) as e:
                    self.dropped.append(label)
                    warnings.warn(f"{clip.path}: {label} cannot go into a {fmt} file; dropped ({_why(e)})", stacklevel=3)
                    continue
                o.metadata.update({k: v for k, v in s.metadata.items() if k.lower() in ("language", "title", "handler_name")})
                o.disposition = s.disposition
                copied[s.index] = o
                self.copied.append(label)
            try:
                out.start_encoding()
            except av.error.FFmpegError as e:
                raise UnsupportedFormatError(f"cannot write this clip's streams as {fmt} ({_why(e)}); choose another output "
                                             "container (e.g. .mkv) or codec") from None
            read_pipe, write_pipe = _Pipe(self.stop), _Pipe(self.stop)
            sources = [s for s in container.streams if s.index in copied]
            threads = [self._thread(self._read, container, vs, sources, copied, read_pipe), self._thread(self._write, out, ostream, write_pipe)]
            self._loop(read_pipe, write_pipe)
            threads[1].join()
            if self.errors:
                raise self.errors[0]
            try:
                out.close()
            except (av.error.FFmpegError, OSError) as e:
                raise CsrnetError(f"cannot write the video ({_why(e)})") from None
            finally:
                out = None
        except _Stop:
            raise (self.errors[0] if self.errors else CsrnetError(f"{clip.path}: video processing stopped")) from None
        except BaseException:
            self.stop.set()
            raise
        finally:
            self.stop.set()
            for t in threads:
                t.join(timeout=30)
            container.close()
            if out is not None:
                with contextlib.suppress(Exception):  # a failed run: the temporary output is deleted anyway
                    out.close()

    def _ready(self, item: _Frame, anchors: list[_Frame], last: _Frame, eof: bool) -> bool:
        """Whether every anchor ``item``'s look depends on has its full smoothing window decoded."""
        if eof or self.fixed_table is not None or self.half <= 0 or last.shot != item.shot:
            return True
        b = item if item.anchor else next((e for e in anchors if e.t > item.t), None)
        return b is not None and last.t - b.t >= self.half

    def _loop(self, read_pipe: _Pipe, write_pipe: _Pipe) -> None:
        pending: deque = deque()  # items in arrival order; frames wait for their look-ahead
        anchors: list[_Frame] = []  # anchors still within reach of a frame to come
        last: _Frame | None = None
        eof = False
        while True:
            if not eof:
                got = read_pipe.get()
                if got is _EOF:
                    eof = True
                else:
                    pending.append(got)
                    if got[0] == "frame":
                        last = got[1]
                        if last.anchor:
                            anchors.append(last)
            while pending:
                kind, x = pending[0]
                if kind == "frame":
                    if not self._ready(x, anchors, last, eof):  # type: ignore[arg-type]
                        break
                    self._emit(x, anchors, write_pipe)
                    # an anchor is needed while a later frame may still interpolate from it or smooth with it
                    while len(anchors) > 1 and anchors[1].t <= x.t and anchors[0].t < x.t - self.half:
                        anchors.pop(0)
                else:
                    write_pipe.put(pending[0])
                pending.popleft()
            if eof and not pending:
                write_pipe.put(_EOF)
                return

    def _video_out(self, out, vs):
        clip, spec = self.clip, self.engine.out_spec
        ostream = out.add_stream(self.encoder, rate=clip.rate or Fraction(25))
        cc = ostream.codec_context
        ostream.width, ostream.height, ostream.pix_fmt = clip.width, clip.height, self.out_fmt
        ostream.time_base = clip.time_base
        cc.time_base = clip.time_base
        if clip.sample_aspect_ratio:
            cc.sample_aspect_ratio = clip.sample_aspect_ratio
        cc.color_range = 2 if spec.full_range else clip.color_range
        cc.colorspace, cc.color_primaries, cc.color_trc = clip.colorspace, clip.color_primaries, clip.color_trc
        ostream.options = encoder_options(self.encoder, self.crf, self.out_fmt)
        if clip.display_matrix is not None:
            ostream.set_display_matrix(clip.display_matrix)
        ostream.metadata.update({k: v for k, v in vs.metadata.items() if k.lower() in ("language", "title", "handler_name", "timecode")})
        for s in vs.container.streams:  # a MOV/MP4 timecode track is not copied, but its start time is kept
            if s.type == "data" and "timecode" in s.metadata and "timecode" not in ostream.metadata:
                ostream.metadata["timecode"] = s.metadata["timecode"]
        ostream.disposition = vs.disposition
        return ostream


# ---------------------------------------------------------------- per-clip sampling
def _sample(clip: _Clip, engine: _Engine) -> list[_Frame]:
    """Analysed frames spread evenly over the clip (:data:`_SAMPLES_PER_CLIP` of them): a decoding pass
    over the whole clip, or for clips over :data:`_SEEK_ABOVE` seconds one seek (to the keyframe
    before each sample time) per sample, falling back to the pass where seeking fails."""
    av = _av()
    if clip.duration and clip.duration > _SEEK_ABOVE:
        try:
            return _sample_seeking(clip, engine)
        except (av.error.FFmpegError, PhotoError, ValueError):
            pass  # some files cannot seek: read them through
    container = _open(clip.path)
    try:
        vs = container.streams[clip.index]
        vs.thread_type = "AUTO"
        expected = clip.frames or (int(clip.duration * clip.rate) if clip.duration and clip.rate else 0)
        stride = max(1, expected // _SAMPLES_PER_CLIP) if expected else 1
        picked: list[_Frame] = []
        try:
            for i, frame in enumerate(container.decode(vs)):
                if i % stride == 0:
                    picked.append(_sampled(frame, clip, engine))
        except av.error.FFmpegError as e:
            raise PhotoError(f"{clip.path}: corrupt video data ({_why(e)})") from None
    finally:
        container.close()
    if not picked:
        raise PhotoError(f"{clip.path}: no decodable video frames")
    if len(picked) > _SAMPLES_PER_CLIP:
        picked = [picked[int(i)] for i in np.linspace(0, len(picked) - 1, _SAMPLES_PER_CLIP)]
    return picked


def _sampled(frame, clip: _Clip, engine: _Engine) -> _Frame:
    item = _Frame(frame, frame.pts or 0, 0, float((frame.pts or 0) * clip.time_base))
    engine.analyse(item)
    item.frame = item.packed = None
    return item


def _sample_seeking(clip: _Clip, engine: _Engine) -> list[_Frame]:
    container = _open(clip.path)
    try:
        vs = container.streams[clip.index]
        vs.thread_type = "AUTO"
        start = float(vs.start_time * clip.time_base) if vs.start_time is not None else 0.0
        picked: dict[int, _Frame] = {}
        for k in range(_SAMPLES_PER_CLIP):
            target = start + (k + 0.5) * clip.duration / _SAMPLES_PER_CLIP  # type: ignore[operator]
            container.seek(int(target / clip.time_base), stream=vs, backward=True)
            frame = next(iter(container.decode(vs)), None)
            if frame is not None and frame.pts is not None and frame.pts not in picked:
                picked[frame.pts] = _sampled(frame, clip, engine)
    finally:
        container.close()
    if len(picked) < min(8, _SAMPLES_PER_CLIP):
        raise PhotoError(f"{clip.path}: seeking found {len(picked)} distinct frames")
    return [picked[k] for k in sorted(picked)]


def _clip_state(picked: list[_Frame]) -> tuple[GlobalState, np.ndarray]:
    """The mean state of sampled frames and their colours (kernel-domain YUV, up to 4096 a frame)."""
    state = _mean_state([(1.0, p.arrays) for p in picked], picked[0].state)  # type: ignore[misc]
    colours = [p.colours[np.linspace(0, len(p.colours) - 1, min(4096, len(p.colours))).astype(np.int64)] for p in picked]  # type: ignore[index]
    return state, np.concatenate(colours)


def bake_clip_lut(src: str | Path, model: Model | Blend | str, size: int = 33, strength: float = 1.0, *,
                  threads: int | None = None) -> np.ndarray:
    """The look of a whole clip as one (size**3, 3) RGB table, red fastest (``.cube`` order), unclipped:
    the mean of sampled frames' networks (CSRNet models), fitted to their colours — what
    ``enhance_video(..., lut_per_clip=True)`` applies. Write it with :func:`export_clip_lut` or
    :func:`csrnet.io.cube.write_cube`."""
    from threadpoolctl import threadpool_limits

    net, arch = _load(model)
    if not arch.single_lut:
        raise InvalidArgumentError(f"{arch.name} models are spatially varying: no single 3D LUT describes them")
    if not 2 <= int(size) <= 129:
        raise InvalidArgumentError(f"lattice size must be between 2 and 129, got {size}")
    _check_args(strength, 0, 18)
    clip = _probe(Path(src))
    threads = resolve(threads)
    with threadpool_limits(limits=1, user_api="blas"):
        engine = _Engine(net, arch, clip, clip.spec, strength, None, threads)
        state, colours = _clip_state(_sample(clip, engine))
        rgb = np.clip(clip.spec.rgb(colours), 0.0, 1.0)
        return fit_lattice(_rgb_map(state, threads), rgb, int(size), float(strength))


def export_clip_lut(src: str | Path, cube_path: str | Path, model: Model | Blend | str, *, size: int = 33, strength: float = 1.0,
                    overwrite: bool = False) -> Path:
    """``csrnet lut clip.mp4 -o clip.cube``: :func:`bake_clip_lut` written as a .cube file (clipped to [0, 1], atomically)."""
    from .io.cube import write_cube
    from .looks import look_title

    net, _ = _load(model)
    table = bake_clip_lut(src, net, size, strength)
    return write_cube(cube_path, table, int(size), title=look_title(Path(src).name, net, strength) + " (whole clip)", overwrite=overwrite)


# ---------------------------------------------------------------- the entry point
def enhance_video(
    src: str | Path,
    dst: str | Path,
    model: Model | Blend | str,
    *,
    strength: float = 1.0,
    smooth: float = 0.5,
    lut_per_clip: bool = False,
    crf: int = 18,
    codec: str = "same",
    overwrite: bool = False,
    progress: Callable[[int, int | None], object] | None = None,
    lut_size: int | None = None,
    threads: int | None = None,
) -> VideoReport:
    """Retouch every frame of the clip ``src`` with ``model`` and write ``dst`` (atomically).

    Args:
        src: any file PyAV can read (MP4, MOV, MKV, WebM ...); planar YUV 8/10/12-bit, SDR.
        dst: output path; its suffix picks the container (.mp4, .mov, .mkv, .webm, .avi, .ts).
        model: a bundled name, weights path, :class:`~csrnet.weights.Model` or :class:`~csrnet.pipeline.Blend`.
        strength: 0 = original, 1 = full effect.
        smooth: width (seconds) of the centred window the per-frame look is averaged over, reset at
            cuts; 0 = every frame on its own (flickers).
        lut_per_clip: one lattice for the whole clip (CSRNet models), from sampled frames.
        crf: the encoder's constant-rate factor (libx264/libx265 0-51; ignored by ProRes).
        codec: ``same`` (the input's: H.264, HEVC, ProRes, VP9 or AV1), ``h264``, ``hevc`` or ``prores``.
        overwrite: replace an existing ``dst``.
        progress: called as ``progress(frames_done, frames_total_or_None)`` after each frame.
        lut_size: lattice size (default 33 for 8-bit clips, 49 above; CSRNet-L: its grid default).
        threads: threads for the network and the kernels (default: the CPUs this process may use).

    Returns:
        A :class:`VideoReport`.

    Raises:
        PhotoError: missing, corrupt or truncated input, no video stream (no output is left).
        UnsupportedFormatError: HDR (PQ/HLG), a pixel format or matrix that is not handled, an output
            container that cannot hold the streams.
        OutputExistsError: ``dst`` exists and ``overwrite`` is False.
        MissingDependencyError: PyAV is not installed.
    """
    from threadpoolctl import threadpool_limits

    started = time.perf_counter()
    _av()
    _check_args(strength, smooth, crf)
    if lut_size is not None and not (isinstance(lut_size, numbers.Integral) and 2 <= lut_size <= 129):
        raise InvalidArgumentError(f"lattice size must be an integer between 2 and 129, got {lut_size!r}")
    src, dst = Path(src), Path(dst)
    fmt = _MUXERS.get(dst.suffix.lower())
    if fmt is None:
        raise UnsupportedFormatError(f"{dst}: cannot write {dst.suffix or 'suffix-less'} video files "
                                     f"(use {', '.join(sorted(set(_MUXERS)))})")
    if dst.exists() and not overwrite:
        raise OutputExistsError(f"{dst}: exists (use --overwrite to replace it)")
    if src.exists() and dst.exists() and src.resolve() == dst.resolve():
        raise InvalidArgumentError(f"{dst}: the output would replace the input")
    if not dst.parent.is_dir():
        raise CsrnetError(f"{dst.parent}: output folder does not exist")
    net, arch = _load(model)
    if lut_per_clip and not arch.single_lut:
        raise InvalidArgumentError(f"{arch.name} models are spatially varying: no single lattice describes a clip (drop lut_per_clip)")
    clip = _probe(src)
    encoder = _encoder(codec, clip)
    if encoder in ("libx264", "libx265") and crf > 51:
        raise InvalidArgumentError(f"crf must be between 0 and 51 for {encoder}, got {crf}")
    out_fmt = _output_format(encoder, clip.spec)
    threads = resolve(threads)
    with threadpool_limits(limits=1, user_api="blas"):
        engine = _Engine(net, arch, clip, clip.spec.with_format(out_fmt), strength, lut_size, threads)
        table = None
        if lut_per_clip:
            state, colours = _clip_state(_sample(clip, engine))
            table = engine.table(state, colours, photo_only=False)
        mode = "per-clip" if lut_per_clip else (f"smoothed {smooth:g} s" if smooth > 0 else "per-frame")
        mark = settings_text({"model": _describe(net), "strength": f"{strength:g}", "video": mode})
        run = _Run(clip, engine, smooth=0.0 if lut_per_clip else float(smooth), fixed_table=table, encoder=encoder, out_fmt=out_fmt,
                   crf=crf, progress=progress, mark=mark)
        atomic_write(dst, lambda tmp: run.run(tmp, fmt), overwrite=overwrite)
    return VideoReport(src, dst, run.frames, max(0.0, run.last_end - (run.first_t or 0.0)), clip.width, clip.height, clip.pix_fmt, out_fmt,
                       encoder, mode, run.cuts, run.copied, run.dropped, time.perf_counter() - started)


def flicker(luma_means: np.ndarray | list[float], cuts: list[int] | None = None) -> float:
    """The flicker metric: standard deviation of the frame-to-frame change in mean luma, leaving out
    the changes into frames listed in ``cuts`` (frame indices that start a shot)."""
    d = np.diff(np.asarray(luma_means, np.float64))
    if cuts:
        keep = np.ones(len(d), bool)
        keep[[c - 1 for c in cuts if 0 < c <= len(d)]] = False
        d = d[keep]
    return float(np.std(d)) if len(d) else 0.0
