"""Video (csrnet.video, csrnet.video_color): round trips, colour conversions, temporal stability,
cuts, the per-clip lattice and bad inputs — on small clips made here with PyAV."""

from __future__ import annotations

import hashlib
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import csrnet
from csrnet import video, video_io, video_look
from csrnet.errors import (
    InvalidArgumentError,
    MissingDependencyError,
    OutputExistsError,
    PhotoError,
    UnsupportedFormatError,
)
from csrnet.video_color import PIXEL_FORMATS, YuvSpec, pack_planes, unpack_into
from tests.conftest import ROOT, need_module

av = need_module("av")  # the video extra (csrnet.video itself imports PyAV only when it runs)

EXAMPLES = ROOT / "examples"
W, H = 160, 96


def _photo(name: str, scale: float = 1.3) -> np.ndarray:
    im = Image.open(EXAMPLES / name).convert("RGB")
    return np.asarray(im.resize((int(W * scale * 1.6), int(H * scale * 1.6)), Image.Resampling.BILINEAR))


_SCENES: dict[str, np.ndarray] = {}


def scene(name: str, i: int, n: int) -> np.ndarray:
    """Frame i of n of a slow pan across an example photo, (H, W, 3) uint8."""
    if name not in _SCENES:
        _SCENES[name] = _photo(name)
    img = _SCENES[name]
    x = int((img.shape[1] - W) * i / max(1, n - 1))
    y = int((img.shape[0] - H) * i / max(1, n - 1) * 0.5)
    return np.ascontiguousarray(img[y : y + H, x : x + W])


def make_clip(path: Path, frames, *, pix_fmt: str = "yuv420p", fps: int = 30, audio: bool = True, rotation: int = 0,
              trc: int = 1, pts: list[int] | None = None, time_base: Fraction | None = None, crf: int = 12,
              chapters: list[dict] | None = None) -> Path:
    """Encode ``frames`` (a list of (H, W, 3) uint8 RGB) with libx264 (BT.709 limited range tags), with
    an AAC tone unless ``audio`` is False; ``pts``/``time_base``: explicit (variable) timestamps."""
    out = av.open(str(path), "w")
    if chapters:
        out.set_chapters(chapters)
    vs = out.add_stream("libx264", rate=fps)
    vs.width, vs.height, vs.pix_fmt = frames[0].shape[1], frames[0].shape[0], pix_fmt
    vs.options = {"crf": str(crf), "preset": "veryfast"}
    cc = vs.codec_context
    cc.colorspace, cc.color_primaries, cc.color_trc, cc.color_range = 1, 1, trc, 1
    if time_base is not None:
        vs.time_base = cc.time_base = time_base
    if rotation:
        vs.set_display_rotation(rotation)
    if audio:
        aud = out.add_stream("aac", rate=48000)
        aud.layout = "stereo"
    for i, rgb in enumerate(frames):
        f = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pix_fmt, dst_colorspace=1, dst_color_range=1)
        f.pts = i if pts is None else pts[i]
        if time_base is not None:
            f.time_base = time_base
        for p in vs.encode(f):
            out.mux(p)
    if audio:
        seconds = len(frames) / fps
        tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(int(48000 * seconds)) / 48000)).astype(np.float32)
        for k in range(0, len(tone), 1024):
            af = av.AudioFrame.from_ndarray(np.ascontiguousarray(np.stack([tone[k : k + 1024]] * 2)), format="fltp", layout="stereo")
            af.sample_rate, af.pts = 48000, k
            for p in aud.encode(af):
                out.mux(p)
        for p in aud.encode():
            out.mux(p)
    for p in vs.encode():
        out.mux(p)
    out.close()
    return path


def read_clip(path: Path) -> dict:
    """What a round trip must keep: frames (planes), times, duration, rotation, tags, audio packet bytes."""
    with av.open(str(path)) as c:
        audio = [bytes(p) for s in c.streams.audio[:1] for p in c.demux(s) if p.size]
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        frames, times, first = [], [], None
        for f in c.decode(vs):
            dtype = np.uint16 if "10" in f.format.name else np.uint8
            frames.append([np.frombuffer(p, dtype).reshape(p.height, -1)[:, : p.width].copy() for p in f.planes])
            times.append(round(float(f.pts * f.time_base), 6))
            first = first or f
        return {
            "frames": frames, "times": times, "format": first.format.name, "rotation": first.rotation,
            "tags": (first.colorspace, first.color_primaries, first.color_trc, first.color_range),
            "duration": c.duration, "audio": hashlib.sha256(b"".join(audio)).hexdigest(), "audio_packets": len(audio),
        }


def luma_means(clip: dict) -> np.ndarray:
    scale = 4.0 if clip["format"].endswith("10le") else 1.0
    return np.array([f[0].mean() / scale for f in clip["frames"]])


def leftovers(folder: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


@pytest.fixture(scope="module")
def clip8(tmp_path_factory) -> Path:
    """24 frames of a pan, 8-bit 4:2:0, AAC track, rotation 90."""
    folder = tmp_path_factory.mktemp("clip8")
    return make_clip(folder / "pan.mp4", [scene("gcompris_farm-owl.jpg", i, 24) for i in range(24)], rotation=90)


@pytest.fixture(scope="module")
def model():
    return csrnet.load_model("auto")


# ---------------------------------------------------------------- round trips
def test_round_trip_8bit_keeps_frames_timing_audio_rotation_tags(clip8, tmp_path, model):
    seen = []
    report = video.enhance_video(clip8, tmp_path / "out.mp4", model, progress=lambda done, total: seen.append((done, total)))
    a, b = read_clip(clip8), read_clip(tmp_path / "out.mp4")
    assert len(b["frames"]) == len(a["frames"]) == report.frames == 24
    assert b["times"] == a["times"] and b["duration"] == a["duration"]
    assert b["audio"] == a["audio"] and b["audio_packets"] == a["audio_packets"] > 0  # stream copy, byte for byte
    assert (b["format"], b["rotation"], b["tags"]) == (a["format"], a["rotation"], a["tags"]) == ("yuv420p", 90, (1, 1, 1, 1))
    assert report.copied_streams == ["audio #1 (aac)"] and report.encoder == "libx264" and report.mode == "smoothed 0.5 s"
    assert seen[-1] == (24, 24) and len(seen) == 24
    with av.open(str(tmp_path / "out.mp4")) as c:  # marked as csrnet's, as photos are (EXIF Software)
        assert c.metadata["comment"].startswith("csrnet ") and "model auto@" in c.metadata["comment"]
    assert abs(luma_means(b).mean() - luma_means(a).mean()) > 1  # it did retouch
    assert leftovers(tmp_path, {"out.mp4"}) == []


@pytest.mark.parametrize("pix_fmt", ["yuv420p10le", "yuv422p10le"])
def test_round_trip_10bit_stays_10bit(tmp_path, model, pix_fmt):
    chapters = [{"id": 1, "start": 0, "end": 200, "time_base": Fraction(1, 1000), "metadata": {"title": "Intro"}},
                {"id": 2, "start": 200, "end": 400, "time_base": Fraction(1, 1000), "metadata": {"title": "Main"}}]
    src = make_clip(tmp_path / "in.mkv", [scene("gcompris_animal-giraffe.jpg", i, 12) for i in range(12)], pix_fmt=pix_fmt, chapters=chapters)
    report = video.enhance_video(src, tmp_path / "out.mkv", model)
    a, b = read_clip(src), read_clip(tmp_path / "out.mkv")
    assert b["format"] == a["format"] == pix_fmt and report.out_pix_fmt == pix_fmt
    with av.open(str(tmp_path / "out.mkv")) as c:
        assert [ch["metadata"]["title"] for ch in c.chapters()] == ["Intro", "Main"]
    assert b["times"] == a["times"] and b["audio"] == a["audio"] and len(b["frames"]) == 12
    assert max(int(f[0].max()) for f in b["frames"]) > 255  # really 10-bit codes


def test_variable_frame_rate_timestamps_kept(tmp_path, model):
    pts = [0, 33, 66, 150, 183, 300, 333, 366, 500, 533]  # milliseconds, irregular
    src = make_clip(tmp_path / "vfr.mkv", [scene("gcompris_farm-owl.jpg", i, 10) for i in range(10)], pts=pts,
                    time_base=Fraction(1, 1000), audio=False)
    video.enhance_video(src, tmp_path / "out.mkv", model)
    assert read_clip(tmp_path / "out.mkv")["times"] == read_clip(src)["times"] == [p / 1000 for p in pts]


def test_strength_zero_is_lossless_with_crf_0(clip8, tmp_path, model):
    video.enhance_video(clip8, tmp_path / "same.mp4", model, strength=0.0, crf=0)
    a, b = read_clip(clip8), read_clip(tmp_path / "same.mp4")
    assert all(np.array_equal(x, y) for fa, fb in zip(a["frames"], b["frames"]) for x, y in zip(fa, fb))


def test_prores_raises_bit_depth_and_copies_subtitles(tmp_path, model):
    src = tmp_path / "sub.mkv"
    out = av.open(str(src), "w")
    vs = out.add_stream("libx264", rate=30)
    vs.width, vs.height, vs.pix_fmt = W, H, "yuv420p"
    st = out.add_mux_stream("subrip")
    st.time_base = Fraction(1, 1000)
    for i in range(6):
        for p in vs.encode(av.VideoFrame.from_ndarray(scene("gcompris_farm-owl.jpg", i, 6), format="rgb24").reformat(format="yuv420p")):
            out.mux(p)
        if i in (1, 4):
            pkt = av.Packet(b"line %d" % i)
            pkt.stream, pkt.pts, pkt.dts, pkt.duration, pkt.time_base = st, i * 33, i * 33, 30, Fraction(1, 1000)
            out.mux(pkt)
    for p in vs.encode():
        out.mux(p)
    out.close()
    with pytest.warns(UserWarning, match="cannot go into a mov file"):
        report = video.enhance_video(src, tmp_path / "out.mov", model, codec="prores")
    assert report.encoder == "prores_ks" and report.out_pix_fmt == "yuv422p10le"
    assert report.dropped_streams == ["subtitle #1 (srt)"]  # MOV takes text subtitles as mov_text only: dropped, with a warning
    assert read_clip(tmp_path / "out.mov")["format"] == "yuv422p10le"
    video.enhance_video(src, tmp_path / "out.mkv", model)
    with av.open(str(tmp_path / "out.mkv")) as c:
        assert [bytes(p) for p in c.demux(c.streams.subtitles[0]) if p.size] == [b"line 1", b"line 4"]


# ---------------------------------------------------------------- colour
@pytest.mark.parametrize("pix_fmt", sorted(PIXEL_FORMATS))
@pytest.mark.parametrize("matrix,rng", [(1, 1), (6, 2), (9, 1)])
def test_pack_identity_unpack_is_exact(pix_fmt, matrix, rng):
    """Every code of every format survives packing, the identity lattice (the composed YUV -> RGB -> YUV
    map) and unpacking, odd frame sizes included."""
    from csrnet.kernels.lattice import fit_lattice
    from csrnet.kernels.lut import apply_lut_uint

    spec = YuvSpec.of(pix_fmt, matrix, rng, 1080)
    g = np.random.default_rng(1)
    h, w = 21, 37
    ch, cw = -(-h // (1 << spec.sy)), -(-w // (1 << spec.sx))
    dtype = np.uint8 if spec.bits == 8 else np.uint16
    y, cb, cr = (g.integers(0, 1 << spec.bits, shape).astype(dtype) for shape in ((h, w), (ch, cw), (ch, cw)))
    packed = pack_planes(y, cb, cr, spec, threads=2)
    peak = 255.0 if spec.bits == 8 else 65535.0
    table = fit_lattice(spec.compose(lambda c: c), packed.reshape(-1, 3) / np.float32(peak), 33)
    out = [np.zeros_like(y), np.zeros_like(cb), np.zeros_like(cr)]
    unpack_into(apply_lut_uint(packed, table, 33), tuple(out), spec, spec, threads=2)
    for got, want in zip(out, (y, cb, cr)):
        assert np.array_equal(got, want)


def test_yuv_rgb_matrices():
    spec = YuvSpec.of("yuv420p10le", 1, 1, 1080)  # BT.709 limited range, 10-bit
    white, black = spec.rgb(np.array([940, 512, 512]) / spec.domain_scale), spec.rgb(np.array([64, 512, 512]) / spec.domain_scale)
    assert np.allclose(white, 1, atol=1e-6) and np.allclose(black, 0, atol=1e-6)
    red = spec.yuv(np.array([1.0, 0, 0], np.float32)) * spec.domain_scale
    assert np.allclose(red, [64 + 876 * 0.2126, 512 - 896 * 0.5 * 0.2126 / 0.9278, 960.0], atol=0.01)  # BT.709: Y' Kr, Pr 0.5
    assert YuvSpec.of("yuv420p", 2, 0, 480).kr == 0.299 and YuvSpec.of("yuv420p", 2, 0, 1080).kr == 0.2126  # unspecified: by height
    assert YuvSpec.of("yuvj420p", 5, 0, 480).full_range
    with pytest.raises(UnsupportedFormatError, match="matrix"):
        YuvSpec.of("yuv420p", 10, 1, 1080)
    with pytest.raises(UnsupportedFormatError, match="pixel format"):
        YuvSpec.of("rgb24", 1, 1, 1080)


def test_cut_signature_is_the_same_at_8_and_10_bits():
    """Cut detection reads 10-bit planes as the same picture as 8-bit ones."""
    g = np.random.default_rng(2)
    y8 = g.integers(16, 236, (96, 160)).astype(np.uint8)
    c8 = [g.integers(16, 241, (48, 80)).astype(np.uint8) for _ in range(2)]
    s8 = video_look.cut_signature(video_look.thumbnail((y8, *c8), YuvSpec.of("yuv420p", 1, 1, 96)))
    s10 = video_look.cut_signature(video_look.thumbnail((y8.astype(np.uint16) << 2, *(c.astype(np.uint16) << 2 for c in c8)),
                                            YuvSpec.of("yuv420p10le", 1, 1, 96)))
    assert np.abs(s8[0] - s10[0]).sum() < 0.02 and np.allclose(s8[1], s10[1], atol=1e-3)
    assert not video_look.is_cut(s8, s10)


def test_per_frame_output_matches_the_photo_path(tmp_path, model):
    """Without smoothing each frame gets what csrnet.enhance gives its RGB (lossless encode): the YUV
    lattice and the 4:2:0 round trip stay within 40 dB of exact mode."""
    frames = [scene("gcompris_animal-giraffe.jpg", i, 4) for i in range(4)]
    src = make_clip(tmp_path / "in.mp4", frames, audio=False, crf=0)
    video.enhance_video(src, tmp_path / "out.mp4", model, smooth=0, crf=0)
    spec = YuvSpec.of("yuv420p", 1, 1, H)
    for fa, fb in zip(read_clip(src)["frames"], read_clip(tmp_path / "out.mp4")["frames"]):
        rgb_in, rgb_out = (np.clip(spec.rgb(pack_planes(*f, spec) / np.float32(255)), 0, 1) for f in (fa, fb))
        want = csrnet.enhance(rgb_in, model, exact=True)
        assert 10 * np.log10(1 / np.mean((rgb_out - want) ** 2)) >= 40.0


# ---------------------------------------------------------------- temporal stability and cuts
def test_smoothing_lowers_flicker_of_a_steady_clip(tmp_path, model):
    """Mean brightness steady, but each frame's contrast (and so its condition) differs: per-frame
    retouching flickers; the smoothed look hardly does. (Nor is a contrast jump taken for a cut.)"""
    g = np.random.default_rng(3)
    still = _photo("gcompris_animal-giraffe.jpg")[10 : 10 + H, 20 : 20 + W].astype(np.float32)
    frames = []
    for _ in range(30):
        img = still.mean() + (still - still.mean()) * g.uniform(0.6, 1.4) + g.normal(0, 3, still.shape)
        frames.append(np.clip(img + 0.5, 0, 255).astype(np.uint8))
    src = make_clip(tmp_path / "steady.mp4", frames, audio=False)
    smooth_rep = video.enhance_video(src, tmp_path / "smooth.mp4", model, smooth=1.0)
    video.enhance_video(src, tmp_path / "frame.mp4", model, smooth=0)
    f_in, f_frame, f_smooth = (video.flicker(luma_means(read_clip(p))) for p in (src, tmp_path / "frame.mp4", tmp_path / "smooth.mp4"))
    assert smooth_rep.cuts == []
    assert f_frame > 5 * f_in  # the per-frame look flickers
    assert f_smooth < 0.25 * f_frame


def test_cut_resets_the_smoothing(tmp_path, model, monkeypatch):
    """An underexposed shot cut to an overexposed one: right after the cut the smoothed look is the new
    shot's own (as per-frame retouching gives it), not dragged by the previous shot's brightening."""
    g = np.random.default_rng(5)
    dark = _photo("gcompris_animal-giraffe.jpg")[10 : 10 + H, 20 : 20 + W].astype(np.float32) * 0.3
    bright = _photo("gcompris_farm-owl.jpg")[10 : 10 + H, 20 : 20 + W].astype(np.float32) * 1.5
    frames = [np.clip(img + g.normal(0, 2, img.shape) + 0.5, 0, 255).astype(np.uint8) for img in [dark] * 15 + [bright] * 15]
    src = make_clip(tmp_path / "cut.mp4", frames, audio=False)
    rep = video.enhance_video(src, tmp_path / "smooth.mp4", model, smooth=1.0)
    video.enhance_video(src, tmp_path / "frame.mp4", model, smooth=0)
    monkeypatch.setattr(video_look, "CUT_THRESHOLD", 2.0)  # no cut is ever detected
    video.enhance_video(src, tmp_path / "dragged.mp4", model, smooth=1.0)
    assert rep.cuts == [pytest.approx(0.5)]
    smooth, frame, dragged = (luma_means(read_clip(tmp_path / f"{n}.mp4")) for n in ("smooth", "frame", "dragged"))
    after, before = slice(15, 18), slice(12, 15)
    reset_err, dragged_err = np.abs(smooth[after] - frame[after]).mean(), np.abs(dragged[after] - frame[after]).mean()
    assert reset_err < 1.0 and dragged_err > 5 * reset_err + 4.0
    assert np.abs(smooth[before] - frame[before]).mean() < 1.0  # nor does the next shot leak backwards


def test_per_clip_lut_is_one_transform(tmp_path, model):
    frames = [scene("gcompris_animal-giraffe.jpg", i, 12) for i in range(12)]
    frames[9] = frames[2]  # the same picture twice: one lattice gives it the same output
    src = make_clip(tmp_path / "in.mp4", frames, audio=False, crf=0)
    rep = video.enhance_video(src, tmp_path / "clip.mp4", model, lut_per_clip=True, crf=0)
    assert rep.mode == "per-clip"
    out = read_clip(tmp_path / "clip.mp4")["frames"]
    assert all(np.array_equal(a, b) for a, b in zip(out[2], out[9]))
    # the exported .cube is the same look, in RGB
    from csrnet.io.cube import apply_cube, read_cube

    cube = video.export_clip_lut(src, tmp_path / "clip.cube", model)
    look = read_cube(cube)
    assert look.size == 33 and "whole clip" in look.title
    spec = YuvSpec.of("yuv420p", 1, 1, H)
    fa = read_clip(src)["frames"][5]
    rgb_in = np.clip(spec.rgb(pack_planes(*fa, spec) / np.float32(255)), 0, 1)
    rgb_out = np.clip(spec.rgb(pack_planes(*out[5], spec) / np.float32(255)), 0, 1)
    via_cube = apply_cube((rgb_in * 255 + 0.5).astype(np.uint8), look).astype(np.float32) / 255
    assert 10 * np.log10(1 / np.mean((rgb_out - via_cube) ** 2)) >= 35.0
    table = video.bake_clip_lut(src, model, size=17)
    assert table.shape == (17**3, 3) and table.dtype == np.float32


def test_style_blend(tmp_path):
    blend = csrnet.parse_style("auto:0.5,exposure:0.5")
    src = make_clip(tmp_path / "short.mp4", [scene("gcompris_farm-owl.jpg", i, 24) for i in range(6)], audio=False)
    assert video.enhance_video(src, tmp_path / "blend.mp4", blend).frames == 6
    assert video.bake_clip_lut(src, blend, size=9).shape == (9**3, 3)


def test_long_clips_are_sampled_by_seeking(tmp_path, model, monkeypatch):
    frames = [scene("gcompris_animal-giraffe.jpg", i, 40) for i in range(40)]
    out = av.open(str(tmp_path / "kf.mp4"), "w")
    vs = out.add_stream("libx264", rate=30)
    vs.width, vs.height, vs.pix_fmt, vs.options = W, H, "yuv420p", {"g": "4", "preset": "veryfast"}
    for i, rgb in enumerate(frames):
        f = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        f.pts = i
        for p in vs.encode(f):
            out.mux(p)
    for p in vs.encode():
        out.mux(p)
    out.close()
    monkeypatch.setattr(video_look, "SEEK_ABOVE", 0.5)
    clip = video_io.probe(tmp_path / "kf.mp4")
    engine = video_look.Engine(model, video.get_architecture(model.arch), clip, clip.spec, 1.0, None, 1)
    picked = video_look.sample_seeking(clip, engine)
    assert [round(p.t * 30) for p in picked] == list(range(0, 40, 4))  # one keyframe per seek
    assert video.bake_clip_lut(tmp_path / "kf.mp4", model, size=9).shape == (9**3, 3)


def test_spatially_varying_models_run_per_frame_only(clip8, tmp_path):
    local = csrnet.load_model("csrnet-l-clahe")
    src = make_clip(tmp_path / "short.mp4", [scene("gcompris_farm-owl.jpg", i, 24) for i in range(6)], audio=False)
    rep = video.enhance_video(src, tmp_path / "local.mp4", local)
    assert rep.frames == 6 and len(read_clip(tmp_path / "local.mp4")["frames"]) == 6
    with pytest.raises(InvalidArgumentError, match="spatially varying"):
        video.enhance_video(clip8, tmp_path / "x.mp4", local, lut_per_clip=True)
    with pytest.raises(InvalidArgumentError, match="spatially varying"):
        video.bake_clip_lut(clip8, local)
    assert leftovers(tmp_path, {"short.mp4", "local.mp4"}) == []


# ---------------------------------------------------------------- bad inputs
def _truncated(data: bytes, keep: float) -> bytes:
    return data[: int(len(data) * keep)]


@pytest.fixture(scope="module")
def bad_inputs(clip8, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad")
    faststart = folder / "faststart.mp4"
    with av.open(str(clip8)) as inp, av.open(str(faststart), "w", options={"movflags": "+faststart"}) as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        for p in inp.demux():
            if p.size:
                p.stream = streams[p.stream.index]
                out.mux(p)
    files = {
        "empty.mp4": b"",
        "zeros.mp4": bytes(4096),
        "jpeg.mp4": (EXAMPLES / "gcompris_farm-owl.jpg").read_bytes(),
        "moov_lost.mp4": _truncated(clip8.read_bytes(), 0.6),  # a download cut before the index at the end
        "truncated.mp4": _truncated(faststart.read_bytes(), 0.6),  # index first, media cut short
    }
    paths = {}
    for name, data in files.items():
        (folder / name).write_bytes(data)
        paths[name] = folder / name
    audio_only = folder / "audio_only.m4a"
    with av.open(str(clip8)) as inp, av.open(str(audio_only), "w", format="mp4") as out:
        a = out.add_stream_from_template(inp.streams.audio[0])
        for p in inp.demux(inp.streams.audio[0]):
            if p.size:
                p.stream = a
                out.mux(p)
    paths["audio_only.mp4"] = audio_only
    mkv = folder / "clip.mkv"
    with av.open(str(clip8)) as inp, av.open(str(mkv), "w") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        for p in inp.demux():
            if p.size:
                p.stream = streams[p.stream.index]
                out.mux(p)
    (folder / "truncated.mkv").write_bytes(_truncated(mkv.read_bytes(), 0.6))
    paths["truncated.mkv"] = folder / "truncated.mkv"
    paths["missing.mp4"] = folder / "missing.mp4"
    return paths


@pytest.mark.parametrize("name,match", [
    ("missing.mp4", "no such file"), ("empty.mp4", "empty"), ("zeros.mp4", "not a readable video"), ("jpeg.mp4", "an image"),
    ("moov_lost.mp4", "not a readable video"), ("truncated.mp4", "truncated|corrupt"), ("truncated.mkv", "truncated"),
    ("audio_only.mp4", "no video stream"),
])
def test_bad_input_is_one_line_and_leaves_nothing(bad_inputs, tmp_path, model, name, match):
    with pytest.raises(PhotoError, match=match) as err:
        video.enhance_video(bad_inputs[name], tmp_path / "out.mp4", model)
    assert "\n" not in str(err.value)
    assert leftovers(tmp_path, set()) == []


def test_hdr_is_refused(tmp_path, model):
    src = make_clip(tmp_path / "pq.mp4", [scene("gcompris_farm-owl.jpg", i, 3) for i in range(3)], trc=16, audio=False)
    with pytest.raises(UnsupportedFormatError, match="HDR video \\(PQ"):
        video.enhance_video(src, tmp_path / "out.mp4", model)
    with pytest.raises(UnsupportedFormatError, match="HDR"):
        video.bake_clip_lut(src, model)
    assert leftovers(tmp_path, {"pq.mp4"}) == []


def test_output_rules(clip8, tmp_path, model):
    (tmp_path / "out.mp4").write_bytes(b"keep")
    with pytest.raises(OutputExistsError):
        video.enhance_video(clip8, tmp_path / "out.mp4", model)
    assert (tmp_path / "out.mp4").read_bytes() == b"keep"
    with pytest.raises(UnsupportedFormatError, match=".gif"):
        video.enhance_video(clip8, tmp_path / "out.gif", model)
    with pytest.raises(InvalidArgumentError, match="smooth"):
        video.enhance_video(clip8, tmp_path / "o.mp4", model, smooth=-1)
    with pytest.raises(InvalidArgumentError, match="codec"):
        video.enhance_video(clip8, tmp_path / "o.mp4", model, codec="mpeg2")
    assert leftovers(tmp_path, {"out.mp4"}) == []


def test_missing_pyav_is_a_typed_error(clip8, tmp_path, model, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(MissingDependencyError, match="csrnet-retouch\\[video\\]"):
        video.enhance_video(clip8, tmp_path / "out.mp4", model)


def test_is_video_and_flicker():
    assert video.is_video("a/B.MP4") and video.is_video("x.mkv") and video.is_video(Path("y.mov"))
    assert not video.is_video("photo.jpg") and not video.is_video("clip")
    assert video.flicker([0.5, 0.5, 0.5]) == 0.0
    assert video.flicker([0.0, 0.1, 0.0, 0.1]) == pytest.approx(np.std([0.1, -0.1, 0.1]))
    assert video.flicker([0.0, 0.0, 1.0, 1.0], cuts=[2]) == 0.0


def test_cli_routes_clips_and_photos(clip8, tmp_path):
    """`csrnet enhance clip.mp4 photo.jpg -o out/` retouches both; `csrnet lut clip.mp4` writes clip.cube."""
    from click.testing import CliRunner

    from csrnet.cli import main

    clip = tmp_path / "holiday.mp4"
    clip.write_bytes(clip8.read_bytes())
    photo = tmp_path / "still.jpg"
    Image.fromarray(scene("gcompris_farm-owl.jpg", 0, 1)).save(photo, quality=90)
    r = CliRunner().invoke(main, ["enhance", str(clip), str(photo), "-o", str(tmp_path / "out"), "--smooth", "0.3"])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["holiday.mp4", "still.jpg"]
    assert len(read_clip(tmp_path / "out" / "holiday.mp4")["frames"]) == len(read_clip(clip)["frames"])
    again = CliRunner().invoke(main, ["enhance", str(clip), "-o", str(tmp_path / "out")])
    assert again.exit_code == 0 and "exists" in again.output
    # a glob that catches last run's outputs (here: beside the input, _csrnet suffix) skips them, never retouches twice
    beside = CliRunner().invoke(main, ["enhance", str(clip)])
    assert beside.exit_code == 0 and (tmp_path / "holiday_csrnet.mp4").is_file(), beside.output
    stamp = (tmp_path / "holiday_csrnet.mp4").stat().st_mtime_ns
    glob = CliRunner().invoke(main, ["enhance", str(clip), str(tmp_path / "holiday_csrnet.mp4"), str(tmp_path / "out" / "holiday.mp4")])
    assert glob.exit_code == 0 and glob.output.count("a csrnet output (") == 2, glob.output
    assert not (tmp_path / "holiday_csrnet_csrnet.mp4").exists() and not (tmp_path / "out" / "holiday_csrnet.mp4").exists()
    assert (tmp_path / "holiday_csrnet.mp4").stat().st_mtime_ns == stamp
    assert video.read_video_mark(clip) is None and video.read_video_mark(photo) is None
    r = CliRunner().invoke(main, ["lut", str(clip), "--size", "17"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "holiday.cube").read_text().count("\n") > 17**3
