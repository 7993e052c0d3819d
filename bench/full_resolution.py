"""Full-resolution speed, memory and fidelity: the released-code torch forward vs csrnet's torch-free pipeline.

Prints a Markdown table for 6, 12 and 24 MP photos with real detail (mosaics of the
1024-px photos in ../shared/data/photos, saved as JPEG q92 — not upscaled images, which
decode unrealistically fast). Each measurement runs in its own process so peak RSS is its own.

    python bench/full_resolution.py            # all sizes, batch of 8 x 24 MP
    python bench/full_resolution.py --quick    # 6 MP only, batch of 2

Rows: Pillow JPEG decode+encode alone (the floor); torch forward as the released code runs it
(condition net on the full-resolution input; 6 and 12 MP only); ``csrnet.enhance(exact=True)``
(per-pixel MLP, tiled); ``csrnet.enhance`` fast path (fitted 49^3 lattice). "model stage" =
everything but decode/encode.
Then `csrnet enhance` on one 24 MP file (latency) and on a folder of 8 (throughput), and
`csrnet lut --apply LOOK.cube` on the same folder (LOOK.cube exported from its first photo with
`csrnet lut PHOTO -o LOOK.cube`, not timed), each against the files' own decode+encode.
With --quick both use 6 MP files, 2 of them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from common import RELEASED, make_mosaic, peak_rss_mb, psnr, run_child


def one(mode: str, path: Path, weights: Path) -> dict:
    """Run one measurement in this (fresh) process."""
    out: dict = {}
    if mode == "codec":
        t = time.perf_counter()
        im = Image.open(path)
        im.load()
        t1 = time.perf_counter()
        im.save(path.with_suffix(".codec.jpg"), quality=95)
        out.update(decode=t1 - t, encode=time.perf_counter() - t1)
    elif mode == "torch":
        import torch

        from csrnet.training.network import CSRNet

        torch.set_num_threads(os.cpu_count() or 1)
        net = CSRNet()
        net.load_state_dict(torch.load(RELEASED, weights_only=True))
        net.eval()
        x = np.asarray(Image.open(path).convert("RGB"))
        t = time.perf_counter()
        with torch.no_grad():
            y = net(torch.from_numpy(x).permute(2, 0, 1)[None].float().div_(255))
            y = (y[0].clamp_(0, 1).mul_(255).add_(0.5)).byte().permute(1, 2, 0).numpy()
        out["model"] = time.perf_counter() - t
    else:
        import csrnet

        model = csrnet.load_model(weights)
        # warm up on a small image: one-time imports (scipy) and BLAS start-up are paid once per
        # process, not per photo; they are reported separately as "first call".
        t = time.perf_counter()
        csrnet.enhance(Image.new("RGB", (1200, 900), (90, 60, 30)), model, exact=(mode == "exact"))
        out["first_call"] = time.perf_counter() - t
        # decoded pixels in, pixels out, as the torch row times it (a PIL image in and out adds two
        # 18-72 MB copies that belong to decoding and encoding)
        x = np.asarray(Image.open(path).convert("RGB"))
        times = []
        for _ in range(1 if mode == "exact" else 5):  # fast: median of 5 photos' worth (single calls vary by 10-60 ms)
            t = time.perf_counter()
            y = csrnet.enhance(x, model, exact=(mode == "exact"))
            times.append(time.perf_counter() - t)
        out["model"] = float(np.median(times))
        np.save(path.with_suffix(f".{mode}.npy"), np.asarray(y)[::4, ::4])  # for the fidelity check
    out["rss_mb"] = peak_rss_mb()
    return out


def measure(mode: str, path: Path, weights: Path) -> dict:
    return run_child(__file__, "--one", mode, path, weights)


def timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(r.stderr)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--one", nargs=3)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.one:
        mode, path, weights = args.one
        print(json.dumps(one(mode, Path(path), Path(weights))))
        return
    import csrnet
    from csrnet.weights import save_model

    tmp = Path(tempfile.mkdtemp(prefix="csrnet-bench-"))
    try:
        weights = save_model(csrnet.load_model(RELEASED), tmp / "ref.safetensors")
        sizes = [6] if args.quick else [6, 12, 24]
        rows = []
        for mp in sizes:
            path = make_mosaic(mp, tmp / f"m{mp}.jpg")
            codec = measure("codec", path, weights)
            floor = codec["decode"] + codec["encode"]
            rows.append((f"{mp} MP", "Pillow JPEG decode+encode (floor)", floor, codec["rss_mb"], ""))
            torch_t = None
            if mp <= 12:
                # torch's forward varies 10-15 s from run to run here: at 6 MP, where the ratio is
                # closest to its target, take the median of 3 runs (each in a fresh process)
                trs = [measure("torch", path, weights) for _ in range(3 if mp == 6 else 1)]
                torch_t = float(np.median([t["model"] for t in trs]))
                note = f"median of {len(trs)}: " + ", ".join(f"{t['model']:.2f}" for t in trs) if len(trs) > 1 else ""
                rows.append((f"{mp} MP", "torch forward, released-code style", torch_t, max(t["rss_mb"] for t in trs), note))
            ex = measure("exact", path, weights)
            fa = measure("fast", path, weights)
            fid = psnr(np.load(path.with_suffix(".fast.npy")), np.load(path.with_suffix(".exact.npy")).astype(np.float64))
            rows.append((f"{mp} MP", "engine exact (tiled MLP)", ex["model"], ex["rss_mb"], ""))
            speed = f", {torch_t / fa['model']:.0f}x torch" if torch_t else ""
            rows.append((f"{mp} MP", "engine fast (fitted 49^3 lattice)", fa["model"], fa["rss_mb"], f"{fid:.1f} dB vs exact{speed}; first call in a process +{fa['first_call']:.2f} s"))
        print("\n| size | stage | seconds | peak RSS (MB) | note |\n|---|---|---|---|---|")
        for size, name, secs, rss, note in rows:
            print(f"| {size} | {name} | {secs:.2f} | {rss:.0f} | {note} |")

        # the command itself: one 24 MP photo, and a folder of 8 (or 2 with --quick)
        mp = sizes[-1]
        n = 2 if args.quick else 8
        folder = tmp / "batch"
        folder.mkdir()
        files = [make_mosaic(mp, folder / f"p{i}.jpg", offset=7 * i) for i in range(n)]
        codecs = [measure("codec", f, weights) for f in files]
        floor = sum(c["decode"] + c["encode"] for c in codecs)
        for f in folder.glob("*.codec.jpg"):
            f.unlink()
        cli = [sys.executable, "-m", "csrnet.cli", "enhance", "-m", str(weights)]
        single = timed(cli + [str(files[0]), "-o", str(tmp / "single")])
        startup = timed([sys.executable, "-c", "import csrnet.cli"])
        batch = timed(cli + [str(folder), "-o", str(tmp / "out")])
        # the same folder through a .cube exported from the first photo (the export is not timed)
        look = tmp / "look.cube"
        timed([sys.executable, "-m", "csrnet.cli", "lut", str(files[0]), "-o", str(look), "-m", str(weights)])
        cube = timed([sys.executable, "-m", "csrnet.cli", "lut", "--apply", str(look), str(folder), "-o", str(tmp / "cube_out")])
        print(f"\n| command ({mp} MP JPEG) | seconds | vs decode+encode |\n|---|---|---|")
        print(f"| Pillow decode+encode of the {n} files, sequential (floor) | {floor:.2f} | 1.00x |")
        print(f"| `csrnet enhance` folder of {n} | {batch:.2f} | {batch / floor:.2f}x |")
        print(f"| `csrnet lut --apply LOOK.cube` folder of {n} | {cube:.2f} | {cube / floor:.2f}x |")
        print(f"| `csrnet enhance` one photo (latency; incl. {startup:.2f} s Python start-up) | {single:.2f} | |")
        print(f"\nmachine: {os.cpu_count()} cores; load average before: {os.getloadavg()[0]:.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
