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
  structure of consecutive frames marks a cut (:func:`csrnet.video_look.is_cut`), and the window never reaches
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

Modules: this one is the public API (the checks of the arguments and the entry points);
:mod:`csrnet.video_io` probes and opens clips and picks the encoder settings; :mod:`csrnet.video_look`
holds the per-frame condition state, cut detection, smoothing over time and per-clip sampling;
:mod:`csrnet.video_pipeline` runs the reader / calling / writer threads; :mod:`csrnet.video_color`
converts between YUV and RGB.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .arch import get_architecture
from .arch.base import Architecture
from .arch.csrnet import Blend
from .errors import (
    CsrnetError,
    InvalidArgumentError,
    OutputExistsError,
    UnsupportedFormatError,
)
from .io.atomic import atomic_write
from .io.marks import settings_text
from .kernels.lattice import fit_lattice
from .threads import resolve
from .video_io import (
    CODECS,
    encoder_options,
    import_av,
    output_format,
    pick_encoder,
    probe,
    read_video_mark,
)
from .video_look import Engine, clip_state, rgb_map, sample
from .video_pipeline import Run
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
    "read_video_mark",
]

#: File suffixes routed to the video path (lower case).
VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mts", ".m2ts", ".ts", ".mxf", ".mpg", ".mpeg",
                            ".wmv", ".flv", ".3gp", ".ogv"})
#: Output containers by suffix (FFmpeg muxer names).
_MUXERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi",
           ".ts": "mpegts", ".mts": "mpegts", ".m2ts": "mpegts"}


def is_video(path: str | Path) -> bool:
    """Whether ``path`` names a video file (by suffix: .mp4, .mov, .mkv, .webm ...): for routing, no file is read."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


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
    clip = probe(Path(src))
    threads = resolve(threads)
    with threadpool_limits(limits=1, user_api="blas"):
        engine = Engine(net, arch, clip, clip.spec, strength, None, threads)
        state, colours = clip_state(sample(clip, engine))
        rgb = np.clip(clip.spec.rgb(colours), 0.0, 1.0)
        return fit_lattice(rgb_map(state, threads), rgb, int(size), float(strength))


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
    import_av()
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
    clip = probe(src)
    encoder = pick_encoder(codec, clip)
    if encoder in ("libx264", "libx265") and crf > 51:
        raise InvalidArgumentError(f"crf must be between 0 and 51 for {encoder}, got {crf}")
    out_fmt = output_format(encoder, clip.spec)
    threads = resolve(threads)
    with threadpool_limits(limits=1, user_api="blas"):
        engine = Engine(net, arch, clip, clip.spec.with_format(out_fmt), strength, lut_size, threads)
        table = None
        if lut_per_clip:
            state, colours = clip_state(sample(clip, engine))
            table = engine.table(state, colours, photo_only=False)
        mode = "per-clip" if lut_per_clip else (f"smoothed {smooth:g} s" if smooth > 0 else "per-frame")
        mark = settings_text({"model": _describe(net), "strength": f"{strength:g}", "video": mode})
        run = Run(clip, engine, smooth=0.0 if lut_per_clip else float(smooth), fixed_table=table, encoder=encoder, out_fmt=out_fmt,
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
