"""Video looks: the per-frame condition state, cut detection, smoothing over time and per-clip sampling.

A frame's look comes from its condition state (:meth:`Engine.analyse`, on *anchor* frames); the states
of a shot's anchors are averaged over a centred window (:func:`smoothed_arrays`), never across a cut
(:func:`is_cut`), and the frames between anchors take the look interpolated between the two around
them (:func:`bracket`). ``lut_per_clip`` and :func:`csrnet.video.bake_clip_lut` use the mean state of
frames sampled across the clip (:func:`sample`, :func:`clip_state`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .arch.base import Architecture
from .arch.csrnet import Blend, GlobalState
from .arch.csrnet_l import LocalMaps, LocalState
from .arch.layers import Layers, run_mlp
from .errors import PhotoError
from .kernels.lattice import fit_lattice
from .kernels.lut import Lattice, LatticeGrid, apply_lut_uint
from .kernels.resize import downscale
from .threads import run_blocks
from .video_color import YuvSpec, pack_planes, rgb16_to_yuv, unpack_into, yuv_to_rgb16
from .video_io import Clip, frame_planes, import_av, open_clip, why
from .weights import Model

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
SAMPLES_PER_CLIP = 48  # frames sampled for lut_per_clip / bake_clip_lut
SEEK_ABOVE = 120.0  # seconds: longer clips are sampled by seeking, not by decoding every frame


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


def thumbnail(planes, spec: YuvSpec, long_edge: int = 240) -> np.ndarray:
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


def cut_signature(thumb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What cut detection compares: the thumbnail's colour histogram and its luma structure (block
    means about 32 px wide, zero mean, unit variance)."""
    luma = thumb.mean(axis=2)
    k = max(1, luma.shape[1] // 32)
    h, w = luma.shape[0] // k * k, luma.shape[1] // k * k
    blocks = luma[:h, :w].reshape(h // k, k, w // k, k).mean(axis=(1, 3))
    blocks -= blocks.mean()
    sd = float(blocks.std())
    return _histogram(thumb), blocks / sd if sd > 1e-4 else blocks


def is_cut(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> bool:
    """Whether signatures ``a`` and ``b`` of consecutive frames are on either side of a cut."""
    colour = 0.5 * float(np.abs(a[0] - b[0]).sum())
    if colour <= CUT_THRESHOLD:
        return False
    structure = float((a[1] * b[1]).mean()) if a[1].shape == b[1].shape else 0.0
    return structure < CUT_CORRELATION


@dataclass
class Frame:
    """A decoded frame on its way through the pipeline. *Anchors* (a frame every
    :attr:`csrnet.video_pipeline.Run.interval` seconds, and every shot's first frame) carry a condition
    state; the frames between take the look interpolated between the anchors around them."""

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


def rebuild(template: Any, arrays: list[np.ndarray]) -> Any:
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
    return rebuild(template, [np.asarray(a, np.float32) for a in arrays])


def rgb_map(state: GlobalState, threads: int) -> Callable[[np.ndarray], np.ndarray]:
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


class Engine:
    """One clip's per-frame work: analysis (condition state, cut histogram) and the transform."""

    def __init__(self, net: Model | Blend, arch: Architecture, clip: Clip, out_spec: YuvSpec, strength: float, lut_size: int | None,
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

    def analyse(self, item: Frame) -> None:
        """Condition state and colours of ``item``'s frame (sets its fields)."""
        planes = frame_planes(item.frame, self.spec)
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

    def packed(self, item: Frame) -> np.ndarray:
        if item.packed is None:
            item.packed = pack_planes(*frame_planes(item.frame, self.spec), self.spec, threads=self.threads)
        return item.packed

    def table(self, state: GlobalState, colours: np.ndarray, *, photo_only: bool) -> np.ndarray:
        """The YUV lattice of a CSRNet state, fitted to ``colours`` (kernel-domain YUV)."""
        f = self.spec.compose(rgb_map(state, self.threads), self.strength)
        return fit_lattice(f, colours, self.size, 1.0, photo_only=photo_only)

    def apply_table(self, item: Frame, table: np.ndarray, out_planes: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        """``item``'s frame through a YUV lattice into ``out_planes``: pack, kernel and unpack run
        band by band (a band's packed codes stay in cache), the bands spread over the threads."""
        spec, out = self.spec, self.out_spec
        planes = None if item.packed is not None else frame_planes(item.frame, spec)
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

    def apply_baked(self, item: Frame, baked: Lattice | LatticeGrid, out_planes: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        """``item``'s frame through an RGB bake (spatially varying models) into ``out_planes``: the
        packed codes converted to RGB and back in numpy (:func:`csrnet.video_color.yuv_to_rgb16`)."""
        rgb = yuv_to_rgb16(self.packed(item), self.spec, threads=self.threads)
        packed = rgb16_to_yuv(baked.apply_uint(rgb, threads=self.threads), self.spec, threads=self.threads)
        unpack_into(packed, out_planes, self.spec, self.out_spec, threads=self.threads)


def lerp_baked(a: Lattice | LatticeGrid, b: Lattice | LatticeGrid, lam: float) -> Lattice | LatticeGrid:
    """The bake a fraction ``lam`` of the way from ``a`` to ``b`` (same kind and size)."""
    if isinstance(a, LatticeGrid) and isinstance(b, LatticeGrid) and a.tables.shape == b.tables.shape:
        return LatticeGrid(a.tables + np.float32(lam) * (b.tables - a.tables), a.size, a.rows, a.cols)
    if isinstance(a, Lattice) and isinstance(b, Lattice) and a.table.shape == b.table.shape:
        return Lattice(a.table + np.float32(lam) * (b.table - a.table), a.size)
    return a if lam < 0.5 else b


# ---------------------------------------------------------------- smoothing over time
def smoothed_arrays(anchor: Frame, anchors: list[Frame], half: float) -> list[np.ndarray] | None:
    """An anchor's state arrays averaged over the anchors of its shot within the window (``half``
    seconds either side; triangular weights, centred), computed once; None for states that cannot
    be smoothed."""
    if anchor.smoothed is None and anchor.arrays is not None:
        if half > 0:
            near = [(1.0 - abs(e.t - anchor.t) / half, e.arrays) for e in anchors
                    if e.shot == anchor.shot and abs(e.t - anchor.t) < half]
            total = sum(w for w, _ in near)
            anchor.smoothed = [np.asarray(sum(np.float32(w / total) * arr[i] for w, arr in near), np.float32)
                               for i in range(len(anchor.arrays))]
        else:
            anchor.smoothed = anchor.arrays
    return anchor.smoothed


def bracket(item: Frame, anchors: list[Frame]) -> tuple[Frame, Frame | None, float]:
    """The anchors around ``item`` in its shot (the later one None when there is none yet, or
    ``item`` is an anchor) and ``item``'s position between them."""
    before = [e for e in anchors if e.shot == item.shot and e.t <= item.t]
    after = [e for e in anchors if e.shot == item.shot and e.t > item.t]
    a = before[-1] if before else after[0]
    b = after[0] if (before and after and not item.anchor) else None
    return a, b, 0.0 if b is None else (item.t - a.t) / (b.t - a.t)


# ---------------------------------------------------------------- per-clip sampling
def sample(clip: Clip, engine: Engine) -> list[Frame]:
    """Analysed frames spread evenly over the clip (:data:`SAMPLES_PER_CLIP` of them): a decoding pass
    over the whole clip, or for clips over :data:`SEEK_ABOVE` seconds one seek (to the keyframe
    before each sample time) per sample, falling back to the pass where seeking fails."""
    av = import_av()
    if clip.duration and clip.duration > SEEK_ABOVE:
        try:
            return sample_seeking(clip, engine)
        except (av.error.FFmpegError, PhotoError, ValueError):
            pass  # some files cannot seek: read them through
    container = open_clip(clip.path)
    try:
        vs = container.streams[clip.index]
        vs.thread_type = "AUTO"
        expected = clip.frames or (int(clip.duration * clip.rate) if clip.duration and clip.rate else 0)
        stride = max(1, expected // SAMPLES_PER_CLIP) if expected else 1
        picked: list[Frame] = []
        try:
            for i, frame in enumerate(container.decode(vs)):
                if i % stride == 0:
                    picked.append(_sampled(frame, clip, engine))
        except av.error.FFmpegError as e:
            raise PhotoError(f"{clip.path}: corrupt video data ({why(e)})") from None
    finally:
        container.close()
    if not picked:
        raise PhotoError(f"{clip.path}: no decodable video frames")
    if len(picked) > SAMPLES_PER_CLIP:
        picked = [picked[int(i)] for i in np.linspace(0, len(picked) - 1, SAMPLES_PER_CLIP)]
    return picked


def _sampled(frame, clip: Clip, engine: Engine) -> Frame:
    item = Frame(frame, frame.pts or 0, 0, float((frame.pts or 0) * clip.time_base))
    engine.analyse(item)
    item.frame = item.packed = None
    return item


def sample_seeking(clip: Clip, engine: Engine) -> list[Frame]:
    """:func:`sample` by seeking: one seek (to the keyframe before) per sample time, distinct frames only."""
    container = open_clip(clip.path)
    try:
        vs = container.streams[clip.index]
        vs.thread_type = "AUTO"
        start = float(vs.start_time * clip.time_base) if vs.start_time is not None else 0.0
        picked: dict[int, Frame] = {}
        for k in range(SAMPLES_PER_CLIP):
            target = start + (k + 0.5) * clip.duration / SAMPLES_PER_CLIP  # type: ignore[operator]
            container.seek(int(target / clip.time_base), stream=vs, backward=True)
            frame = next(iter(container.decode(vs)), None)
            if frame is not None and frame.pts is not None and frame.pts not in picked:
                picked[frame.pts] = _sampled(frame, clip, engine)
    finally:
        container.close()
    if len(picked) < min(8, SAMPLES_PER_CLIP):
        raise PhotoError(f"{clip.path}: seeking found {len(picked)} distinct frames")
    return [picked[k] for k in sorted(picked)]


def clip_state(picked: list[Frame]) -> tuple[GlobalState, np.ndarray]:
    """The mean state of sampled frames and their colours (kernel-domain YUV, up to 4096 a frame)."""
    state = _mean_state([(1.0, p.arrays) for p in picked], picked[0].state)  # type: ignore[misc]
    colours = [p.colours[np.linspace(0, len(p.colours) - 1, min(4096, len(p.colours))).astype(np.int64)] for p in picked]  # type: ignore[index]
    return state, np.concatenate(colours)
