"""Video (issue 16): speed against the codec alone, flicker, cut response and round trips.

    python bench/video.py [--seconds 8] [--repeats 3] [--no-4k] [--quick]

Clips are made here from the shared photos (real 1024-px JPEGs tiled into a canvas, never upscaled):
three shots of a slow pan and zoom across different photos, cut at 3 s and 6 s, with a lighting
change (the light falls to 55 % over one second) in the middle shot and a little per-frame sensor
noise (sigma 1.5 levels), H.264 (libx264 medium, CRF 18) at 30 frames/s with an AAC track.

* Speed: frames/s of ``enhance_video`` (default settings: smoothed 0.5 s) against PyAV decode +
  encode alone with the same encoder settings (``csrnet.video.encoder_options``), the two alternating
  (--repeats pairs at 1080p, best of each; one pair at 4K unless --no-4k); CPU time per frame as well.
* Flicker: standard deviation of the frame-to-frame change in mean luma (Y plane), leaving out the
  two cut transitions, for the input and the per-frame / smoothed / per-clip outputs; and what the
  retouch adds to it (flicker and jitter of output - input).
* Cut response: the first 3 frames after each cut, mean |mean luma of the smoothed output - the
  per-frame output| (the new shot's own look), with cut detection and with it switched off.
* Round trips: frame count, duration, AAC packets (bytes), pixel format, rotation, 8- and 10-bit.

Prints a Markdown report and writes it to bench/results/video.md. The machine is shared: timings are noisy.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import PHOTOS, RESULTS
from PIL import Image

FPS = 30
CUTS_AT = (3.0, 6.0)  # seconds


def canvas(photos: list[Path], cols: int, rows: int, offset: int) -> np.ndarray:
    """A cols x rows grid of 1024x768 photos (from ``offset``, cyclically) at native resolution, float32 RGB in [0, 1]."""
    out = np.zeros((rows * 768, cols * 1024, 3), np.float32)
    for i in range(cols * rows):
        p = photos[(offset + i) % len(photos)]
        r, c = divmod(i, cols)
        out[r * 768 : (r + 1) * 768, c * 1024 : (c + 1) * 1024] = np.asarray(Image.open(p).convert("RGB"), np.float32) / 255.0
    return out


def shot_frame(canvas_img: np.ndarray, u: float, w: int, h: int) -> np.ndarray:
    """Frame at progress u in [0, 1] of a slow pan (left to right) and zoom out (crop 1.0 -> 1.12 x the frame)."""
    ch, cw = canvas_img.shape[:2]
    zoom = 1.0 + 0.12 * u
    cw_, ch_ = min(cw, int(w * zoom)), min(ch, int(h * zoom))
    x0 = int(u * (cw - cw_))
    y0 = int((ch - ch_) * (0.3 + 0.4 * u))
    crop = canvas_img[y0 : y0 + ch_, x0 : x0 + cw_]
    if (cw_, ch_) == (w, h):
        return crop
    planes = [np.asarray(Image.fromarray(np.ascontiguousarray(crop[..., k])).resize((w, h), Image.Resampling.BILINEAR)) for k in range(3)]
    return np.stack(planes, -1)


def make_clip(path: Path, w: int, h: int, seconds: float, pix_fmt: str = "yuv420p", rotation: int = 0, seed: int = 0) -> dict:
    """Write the test clip; returns its facts (frames, cut frame indices)."""
    import av

    photos = sorted(p for p in PHOTOS.glob("*.jpg") if Image.open(p).size == (1024, 768))
    cols, rows = (4, 3) if w > 2048 else (3, 2)
    n_shot = cols * rows
    canvases = [canvas(photos, cols, rows, k * n_shot + 7 * seed) for k in range(3)]
    n = round(seconds * FPS)
    cuts = [round(c / 8.0 * seconds * FPS) for c in CUTS_AT]
    bounds = [0, *cuts, n]
    rng = np.random.default_rng(seed)
    out = av.open(str(path), "w")
    vs = out.add_stream("libx264", rate=FPS)
    vs.width, vs.height, vs.pix_fmt = w, h, pix_fmt
    vs.options = {"crf": "18", "preset": "medium"}
    cc = vs.codec_context
    cc.colorspace, cc.color_primaries, cc.color_trc, cc.color_range = 1, 1, 1, 1
    if rotation:
        vs.set_display_rotation(rotation)
    aud = out.add_stream("aac", rate=48000)
    aud.layout = "stereo"
    for i in range(n):
        s = max(k for k in range(3) if bounds[k] <= i)
        u = (i - bounds[s]) / max(1, bounds[s + 1] - bounds[s] - 1)
        img = shot_frame(canvases[s], u, w, h)
        if s == 1:  # the light falls to 55 % over one second in the middle of the shot
            mid = (bounds[1] + bounds[2]) / 2
            g = 1.0 - 0.45 * float(np.clip((i - mid + FPS / 2) / FPS, 0, 1))
            img = img * np.float32(g)
        img = img + rng.normal(0, 1.5 / 255, img.shape).astype(np.float32)
        rgb = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pix_fmt, dst_colorspace=1, dst_color_range=1)
        frame.pts = i
        for p in vs.encode(frame):
            out.mux(p)
    t = np.arange(int(48000 * n / FPS)) / 48000
    tone = (0.2 * np.sin(2 * np.pi * 440 * t) * (1 + 0.5 * np.sin(2 * np.pi * 0.5 * t))).astype(np.float32)
    for k in range(0, len(tone), 1024):
        chunk = np.ascontiguousarray(np.stack([tone[k : k + 1024]] * 2))
        af = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
        af.sample_rate, af.pts = 48000, k
        for p in aud.encode(af):
            out.mux(p)
    for stream in (aud, vs):
        for p in stream.encode():
            out.mux(p)
    out.close()
    return {"frames": n, "cuts": cuts}


def facts(path: Path) -> dict:
    """Frame count, duration, per-frame mean luma (Y in [0, 1] of its range), AAC packet digest, format, rotation."""
    import av

    with av.open(str(path)) as c:
        audio = hashlib.sha256()
        packets = 0
        for p in c.demux(c.streams.audio[0]):
            if p.size:
                audio.update(bytes(p))
                packets += 1
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        vs.thread_type = "AUTO"
        means, pts, fmt, rot = [], [], "", 0
        for f in c.decode(vs):
            bits = 10 if "10" in f.format.name else 8
            y = np.frombuffer(f.planes[0], np.uint16 if bits > 8 else np.uint8).reshape(f.height, -1)[:, : f.width]
            scale = 1 << (bits - 8)
            means.append((float(y.mean()) - 16 * scale) / (219 * scale))
            pts.append(f.pts)
            fmt, rot = f.format.name, f.rotation
        duration = float(c.duration / 1e6) if c.duration else 0.0
        stream_duration = float(vs.duration * vs.time_base) if vs.duration else 0.0
    return {"frames": len(means), "means": np.array(means), "pts": pts, "audio": audio.hexdigest(), "audio_packets": packets,
            "format": fmt, "rotation": rot, "duration": duration, "stream_duration": stream_duration}


def codec_alone(src: Path, dst: Path) -> tuple[float, float, int]:
    """PyAV decode + encode with enhance_video's encoder settings: (wall s, CPU s, frames)."""
    import av

    from csrnet.video import encoder_options

    t, c = time.perf_counter(), time.process_time()
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vs = inp.streams.video[0]
        vs.thread_type = "AUTO"
        os_ = out.add_stream("libx264", rate=vs.average_rate)
        os_.width, os_.height, os_.pix_fmt = vs.width, vs.height, vs.codec_context.pix_fmt
        os_.time_base = vs.time_base
        os_.codec_context.time_base = vs.time_base
        os_.options = encoder_options("libx264", 18, os_.pix_fmt)
        n = 0
        for f in inp.decode(vs):
            f.pict_type = 0
            for p in os_.encode(f):
                out.mux(p)
            n += 1
        for p in os_.encode():
            out.mux(p)
    return time.perf_counter() - t, time.process_time() - c, n


def timed_enhance(src: Path, dst: Path, model, **kwargs):
    from csrnet.video import enhance_video

    t, c = time.perf_counter(), time.process_time()
    report = enhance_video(src, dst, model, overwrite=True, **kwargs)
    return time.perf_counter() - t, time.process_time() - c, report


def speed_row(name: str, src: Path, tmp: Path, model, repeats: int) -> tuple:
    """Codec alone and enhance_video alternately ``repeats`` times: (name, frames, codec fps, enhance fps,
    best-time ratio, per-pair ratios, codec CPU ms/frame, enhance CPU ms/frame, the last report)."""
    codec_runs, enh_runs = [], []
    for _ in range(repeats):
        codec_runs.append(codec_alone(src, tmp / "codec.mp4"))
        enh_runs.append(timed_enhance(src, tmp / "smoothed.mp4", model))
    n = codec_runs[0][2]
    cw, cc = min(r[0] for r in codec_runs), min(r[1] for r in codec_runs)
    ew, ec = min(r[0] for r in enh_runs), min(r[1] for r in enh_runs)
    pairs = [e[0] / c[0] for c, e in zip(codec_runs, enh_runs)]
    print(f"speed {name}: codec {n / cw:.1f} fps, enhance {n / ew:.1f} fps, pairs {[round(p, 2) for p in pairs]}", file=sys.stderr)
    return name, n, n / cw, n / ew, ew / cw, pairs, cc / n * 1000, ec / n * 1000, enh_runs[-1][2]


def jitter(means: np.ndarray, cuts: list[int]) -> float:
    """Standard deviation of the second difference of a per-frame series, leaving out the cut transitions."""
    d2 = np.diff(np.asarray(means, np.float64), 2)  # d2[i] spans frames i .. i + 2
    keep = np.ones(len(d2), bool)
    for c in cuts:
        keep[max(0, c - 2) : c] = False
    return float(np.std(d2[keep]))


def cut_response(smoothed: np.ndarray, per_frame: np.ndarray, cuts: list[int], k: int = 3) -> float:
    """Mean |smoothed - per-frame| mean luma (in levels of 255) over the first ``k`` frames after each cut."""
    return float(np.mean([abs(smoothed[c + j] - per_frame[c + j]) for c in cuts for j in range(k)])) * 255


def main() -> None:
    import csrnet
    from csrnet import video_look
    from csrnet.video import flicker

    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=8.0, help="length of the 1080p clip (the 4K one is 3 s)")
    ap.add_argument("--no-4k", action="store_true")
    ap.add_argument("--quick", action="store_true", help="480x270 instead of 1080p, no 4K (for trying changes)")
    ap.add_argument("--model", default="auto")
    ap.add_argument("--repeats", type=int, default=3, help="codec / enhance pairs timed at 1080p")
    ap.add_argument("--out", type=Path, default=RESULTS / "video.md")
    args = ap.parse_args()
    model = csrnet.load_model(args.model)
    w, h = (480, 270) if args.quick else (1920, 1080)
    lines = [f"`python bench/video.py{' --quick' if args.quick else ''}` ({os.cpu_count()} CPUs, shared machine: timings are noisy), "
             f"model `{args.model}`, {time.strftime('%Y-%m-%d')}", ""]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = tmp / "clip.mp4"
        t0 = time.perf_counter()
        clip = make_clip(src, w, h, args.seconds, rotation=90)
        print(f"made {w}x{h} clip: {clip['frames']} frames in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        cuts = clip["cuts"]
        inp = facts(src)
        # --- speed: codec alone and enhance_video (defaults) alternately, REPEATS pairs; best of each
        speed_rows = [speed_row(f"{w}x{h} H.264 8-bit", src, tmp, model, args.repeats)]
        report = speed_rows[0][-1]
        # --- looks
        pf_w, _, _ = timed_enhance(src, tmp / "per_frame.mp4", model, smooth=0)
        pc_w, _, _ = timed_enhance(src, tmp / "per_clip.mp4", model, lut_per_clip=True)
        saved = video_look.CUT_THRESHOLD
        video_look.CUT_THRESHOLD = 2.0  # never: smoothing runs across the cuts
        try:
            nr_w, _, _ = timed_enhance(src, tmp / "no_reset.mp4", model)
        finally:
            video_look.CUT_THRESHOLD = saved
        outs = {name: facts(tmp / f"{name}.mp4") for name in ("smoothed", "per_frame", "per_clip", "no_reset")}
        detected = [round(t * FPS) for t in report.cuts]
        # --- 10-bit round trip (2 s)
        src10 = tmp / "clip10.mp4"
        make_clip(src10, w, h, 2.0, pix_fmt="yuv420p10le", rotation=90, seed=1)
        in10 = facts(src10)
        timed_enhance(src10, tmp / "out10.mp4", model)
        out10 = facts(tmp / "out10.mp4")
        # --- 4K speed (3 s)
        if not (args.no_4k or args.quick):
            src4 = tmp / "clip4k.mp4"
            t0 = time.perf_counter()
            c4 = make_clip(src4, 3840, 2160, 3.0, seed=2)
            print(f"made 4K clip: {c4['frames']} frames in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
            speed_rows.append(speed_row("3840x2160 H.264 8-bit", src4, tmp, model, 1))

    lines += [f"Clip: {w}x{h}, {clip['frames']} frames at {FPS} frames/s, 3 shots (cuts at frames {cuts[0]} and {cuts[1]}), slow pan + zoom "
              "over tiled shared photos, a lighting change (to 55 % in 1 s) in shot 2, sensor noise sigma 1.5 levels, "
              "libx264 medium CRF 18 + AAC, rotation 90.", ""]
    lines += [f"## Speed (decode -> enhance -> encode, libx264 medium CRF 18 both; runs alternate, best of {args.repeats} at {w}x{h}, 1 at 4K)",
              "",
              "| clip | frames | codec alone fps | enhance_video fps | time ratio (target <= 1.5 at 1080p) | time ratio, each pair | "
              "CPU ms/frame codec | CPU ms/frame enhance | CPU ratio |",
              "|---|---:|---:|---:|---:|---|---:|---:|---:|"]
    for name, n_, a, b, r, pairs, ca, cb, _ in speed_rows:
        lines.append(f"| {name} | {n_} | {a:.1f} | {b:.1f} | {r:.2f} | {' / '.join(f'{p:.2f}' for p in pairs)} | {ca:.0f} | {cb:.0f} | {cb / ca:.2f} |")
    lines += ["", f"Other modes at {w}x{h} (one run each): per-frame {clip['frames'] / pf_w:.1f} fps, per-clip {clip['frames'] / pc_w:.1f} fps "
              f"(includes its sampling pass), smoothing without cut reset {clip['frames'] / nr_w:.1f} fps.", ""]
    fl_in = flicker(inp["means"], cuts)
    lines += ["## Flicker (std of frame-to-frame change in mean luma, levels of 255; cut transitions left out)", "",
              "Added flicker: the same statistic of (output - input) mean luma, i.e. what the retouch itself adds, its slow "
              "adaptation (to the lighting change, to the pan) included. Added jitter: the standard deviation of the second "
              "difference of (output - input) mean luma, which a slow adaptation hardly moves and frame-to-frame flicker does.", "",
              "| output | flicker | vs input (target smoothed <= 1.1) | added flicker | added jitter |", "|---|---:|---:|---:|---:|",
              f"| input | {fl_in * 255:.3f} | 1.00 | — | — |"]
    for name, label in (("per_frame", "per-frame (smooth 0)"), ("smoothed", "smoothed 0.5 s (default)"), ("per_clip", "per-clip lattice"),
                        ("no_reset", "smoothed, no cut reset")):
        f_ = flicker(outs[name]["means"], cuts)
        added = flicker(outs[name]["means"] - inp["means"], cuts)
        lines.append(f"| {label} | {f_ * 255:.3f} | {f_ / fl_in:.2f} | {added * 255:.3f} | {jitter(outs[name]['means'] - inp['means'], cuts) * 255:.3f} |")
    lines += ["", "## Cuts", "",
              f"True cuts at frames {cuts}; detected at {detected} (histogram distance > {video_look.CUT_THRESHOLD} with structure "
              f"correlation < {video_look.CUT_CORRELATION}).", "",
              "First 3 frames after each cut, mean |mean luma - the per-frame output's| (levels of 255; 0 = the new shot's own look):", "",
              "| smoothing | after the cut |", "|---|---:|",
              f"| with cut reset (default) | {cut_response(outs['smoothed']['means'], outs['per_frame']['means'], cuts):.2f} |",
              f"| without (window spans the cut) | {cut_response(outs['no_reset']['means'], outs['per_frame']['means'], cuts):.2f} |", ""]

    def check(a: dict, b: dict) -> str:
        ok = {
            "frames": a["frames"] == b["frames"],
            "timestamps": a["pts"] == b["pts"],
            "duration": abs(a["duration"] - b["duration"]) < 1e-3 and abs(a["stream_duration"] - b["stream_duration"]) < 1e-3,
            "audio bytes": a["audio"] == b["audio"] and a["audio_packets"] == b["audio_packets"],
            "pixel format": a["format"] == b["format"],
            "rotation": a["rotation"] == b["rotation"],
        }
        return ", ".join(f"{k} {'same' if v else 'DIFFERENT'}" for k, v in ok.items())

    lines += ["## Round trips", "",
              "| clip | in | out | checks |", "|---|---|---|---|",
              f"| 8-bit smoothed | {inp['frames']} frames, {inp['duration']:.3f} s, {inp['format']} | {outs['smoothed']['frames']} frames, "
              f"{outs['smoothed']['duration']:.3f} s, {outs['smoothed']['format']} | {check(inp, outs['smoothed'])} |",
              f"| 8-bit per-clip | {inp['frames']} frames | {outs['per_clip']['frames']} frames | {check(inp, outs['per_clip'])} |",
              f"| 10-bit smoothed | {in10['frames']} frames, {in10['duration']:.3f} s, {in10['format']} | {out10['frames']} frames, "
              f"{out10['duration']:.3f} s, {out10['format']} | {check(in10, out10)} |", ""]
    text = "\n".join(lines)
    print(text)
    if not args.quick:
        args.out.write_text(text + "\n")
        print(f"written to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
