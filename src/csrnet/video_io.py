"""Video input and output: PyAV, probing and opening a clip, its planes, and the encoder settings.

What the rest of the video code (:mod:`csrnet.video`, :mod:`csrnet.video_look`, :mod:`csrnet.video_pipeline`)
knows about a clip comes from :func:`probe` (a :class:`Clip`, with typed errors for files that cannot be
processed: missing, corrupt, not a video, HDR, unhandled pixel formats); PyAV itself is imported only
when a clip is read (:func:`import_av`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from .errors import (
    CsrnetError,
    InvalidArgumentError,
    MissingDependencyError,
    PhotoError,
    UnsupportedFormatError,
)
from .io.marks import is_mark
from .video_color import PIXEL_FORMATS, YuvSpec, plane_view

#: ``codec`` values of :func:`csrnet.video.enhance_video` (``same``: the input's codec, where one of these encoders fits it).
CODECS = ("same", "h264", "hevc", "prores")
_ENCODERS = {"h264": "libx264", "hevc": "libx265", "prores": "prores_ks", "vp9": "libvpx-vp9", "av1": "libsvtav1"}
#: H.273 transfer characteristics of HDR video: SMPTE ST 2084 (PQ) and ARIB STD-B67 (HLG).
_HDR_TRANSFERS = {16: "PQ (SMPTE ST 2084)", 18: "HLG (ARIB STD-B67)"}


def import_av():
    """PyAV, imported on first use (:class:`~csrnet.errors.MissingDependencyError` when it is not installed)."""
    try:
        import av
    except ImportError:
        raise MissingDependencyError('video needs PyAV: pip install "csrnet-retouch[video]"') from None
    return av


def why(e: BaseException) -> str:
    """One line for an FFmpeg error (its strerror, without the file name PyAV appends)."""
    text = getattr(e, "strerror", None) or str(e) or type(e).__name__
    return str(text).splitlines()[0].strip().rstrip(".")


# ---------------------------------------------------------------- reading the clip
@dataclass
class Clip:
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


def video_stream(container, path: Path):
    """The clip's first video stream that is not an attached picture (cover art)."""
    av = import_av()
    streams = [s for s in container.streams.video if not (s.disposition & av.stream.Disposition.attached_pic)]
    if not streams:
        raise PhotoError(f"{path}: no video stream")
    return streams[0]


def open_clip(path: Path):
    """``path`` opened with PyAV for reading (typed errors: missing, empty, unreadable, an image)."""
    av = import_av()
    if not path.is_file():
        raise PhotoError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    if path.stat().st_size == 0:
        raise PhotoError(f"{path}: empty file")
    try:
        container = av.open(str(path), metadata_errors="replace")
    except av.error.FFmpegError as e:
        raise PhotoError(f"{path}: not a readable video ({why(e)})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise PhotoError(f"{path}: cannot open ({e})") from None
    name = container.format.name or ""
    if name == "image2" or name.endswith("_pipe"):
        container.close()
        raise PhotoError(f"{path}: an image ({name.removesuffix('_pipe')}), not a video")
    return container


def read_video_mark(path: Path) -> str | None:
    """csrnet's mark of a clip it wrote (the container's ``comment`` tag, :mod:`csrnet.io.marks`'s text),
    or None: no mark, or not a readable video. Reads the header only."""
    try:
        container = open_clip(Path(path))
    except CsrnetError:
        return None
    try:
        comment = next((v for k, v in container.metadata.items() if k.lower() == "comment"), None)
    finally:
        container.close()
    return comment if is_mark(comment) else None


def probe(path: Path) -> Clip:
    """Open ``path``, decode its first frame and check it can be processed (typed errors otherwise)."""
    av = import_av()
    container = open_clip(path)
    try:
        vs = video_stream(container, path)
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
            raise PhotoError(f"{path}: corrupt video data ({why(e)})") from None
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
        return Clip(
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


def frame_planes(frame, spec: YuvSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Numpy views (Y, Cb, Cr) of a frame's planes."""
    dtype = np.dtype("<u2") if spec.bits > 8 else np.dtype(np.uint8)
    h, w = frame.height, frame.width
    ch, cw = -(-h // (1 << spec.sy)), -(-w // (1 << spec.sx))
    p = frame.planes
    return plane_view(p[0], dtype, h, w), plane_view(p[1], dtype, ch, cw), plane_view(p[2], dtype, ch, cw)


# ---------------------------------------------------------------- encoder settings
def encoder_options(encoder: str, crf: int, pix_fmt: str) -> dict[str, str]:
    """The encoder options :func:`csrnet.video.enhance_video` uses (bench/video.py times the codec alone with these)."""
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


def pick_encoder(codec: str, clip: Clip) -> str:
    """The FFmpeg encoder for ``codec`` (``same``: the clip's own codec's), checked to be in this PyAV build."""
    av = import_av()
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


def output_format(encoder: str, spec: YuvSpec) -> str:
    """The encoder's pixel format closest to the clip's: same one if it can; else never fewer bits,
    then never coarser chroma, then the nearest."""
    av = import_av()
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
