"""The video pipeline of one :func:`csrnet.video.enhance_video` run (:class:`Run`).

A reader thread demuxes, decodes and analyses (condition vector, cut detection); the calling thread
smooths, bakes and applies; a writer thread encodes and muxes (PyAV releases the GIL inside the
codecs, numpy and the lattice kernel release it too), so the two cores overlap. Audio and subtitle
packets are copied through to the writer as they come, without re-encoding; metadata, chapters,
rotation and colour tags are carried over.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import warnings
from collections import deque
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CsrnetError, PhotoError, UnsupportedFormatError
from .kernels.lut import Lattice, LatticeGrid
from .io.marks import is_mark
from .video_io import Clip, encoder_options, frame_planes, import_av, open_clip, why
from .video_look import (
    Engine,
    Frame,
    bracket,
    cut_signature,
    is_cut,
    lerp_baked,
    rebuild,
    smoothed_arrays,
    thumbnail,
)

_QUEUE = 6  # frames in flight between the threads


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


class Run:
    """One enhance_video run: reader thread -> this thread -> writer thread."""

    def __init__(self, clip: Clip, engine: Engine, *, smooth: float, fixed_table: np.ndarray | None, encoder: str, out_fmt: str,
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
        av = import_av()
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
                    item = Frame(frame, pts, dur, float(pts * clip.time_base))
                    if analyse:
                        signature = cut_signature(thumbnail(frame_planes(frame, clip.spec), clip.spec))
                        cut = previous is not None and is_cut(signature, previous)
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
            raise PhotoError(f"{clip.path}: corrupt video data ({why(e)})") from None
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
        av = import_av()
        try:
            self._encode(out, ostream, pipe)
        except (av.error.FFmpegError, OSError) as e:
            raise CsrnetError(f"cannot write the video ({why(e)})") from None

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
    def _table(self, anchor: Frame, anchors: list[Frame]) -> np.ndarray:
        if anchor.table is None:
            state = rebuild(anchor.state, smoothed_arrays(anchor, anchors, self.half))  # type: ignore[arg-type]
            anchor.table = self.engine.table(state, anchor.colours, photo_only=True)  # type: ignore[arg-type]
        return anchor.table

    def _baked(self, anchor: Frame, anchors: list[Frame]) -> Lattice | LatticeGrid:
        if anchor.table is None:
            arrays = smoothed_arrays(anchor, anchors, self.half)
            anchor.table = self.engine.bake(anchor.state if arrays is None else rebuild(anchor.state, arrays))
        return anchor.table  # type: ignore[return-value]

    def _emit(self, item: Frame, anchors: list[Frame], out_pipe: _Pipe) -> None:
        av = import_av()
        engine, clip = self.engine, self.clip
        vf = av.VideoFrame(clip.width, clip.height, self.out_fmt)
        out_planes = frame_planes(vf, engine.out_spec)
        if self.fixed_table is not None:
            engine.apply_table(item, self.fixed_table, out_planes)
        else:
            a, b, lam = bracket(item, anchors)
            if engine.global_lut:
                table = self._table(a, anchors)
                if b is not None:  # the look moves smoothly between anchors: interpolate their lattices
                    table = table + np.float32(lam) * (self._table(b, anchors) - table)
                engine.apply_table(item, table, out_planes)
            else:
                baked = self._baked(a, anchors)
                if b is not None:
                    baked = lerp_baked(baked, self._baked(b, anchors), lam)
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
        av = import_av()
        clip = self.clip
        container = open_clip(clip.path)
        out = None
        threads: list[threading.Thread] = []
        try:
            vs = container.streams[clip.index]
            vs.thread_type = "AUTO"
            try:
                out = av.open(str(tmp), "w", format=fmt)
            except av.error.FFmpegError as e:
                raise CsrnetError(f"cannot write {fmt} video ({why(e)})") from None
            out.metadata.update({k: v for k, v in container.metadata.items()
                                 if k.lower() not in ("encoder", "major_brand", "minor_version", "compatible_brands", "duration")
                                 and not (k.lower() == "comment" and is_mark(v))})
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
                    warnings.warn(f"{clip.path}: {label} cannot go into a {fmt} file; dropped ({why(e)})", stacklevel=3)
                    continue
                o.metadata.update({k: v for k, v in s.metadata.items() if k.lower() in ("language", "title", "handler_name")})
                o.disposition = s.disposition
                copied[s.index] = o
                self.copied.append(label)
            try:
                out.start_encoding()
            except av.error.FFmpegError as e:
                raise UnsupportedFormatError(f"cannot write this clip's streams as {fmt} ({why(e)}); choose another output "
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
                raise CsrnetError(f"cannot write the video ({why(e)})") from None
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

    def _ready(self, item: Frame, anchors: list[Frame], last: Frame, eof: bool) -> bool:
        """Whether every anchor ``item``'s look depends on has its full smoothing window decoded."""
        if eof or self.fixed_table is not None or self.half <= 0 or last.shot != item.shot:
            return True
        b = item if item.anchor else next((e for e in anchors if e.t > item.t), None)
        return b is not None and last.t - b.t >= self.half

    def _loop(self, read_pipe: _Pipe, write_pipe: _Pipe) -> None:
        pending: deque = deque()  # items in arrival order; frames wait for their look-ahead
        anchors: list[Frame] = []  # anchors still within reach of a frame to come
        last: Frame | None = None
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
