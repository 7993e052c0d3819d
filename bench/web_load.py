"""The web app under load, on loopback only (bounded in count and time): latency, errors, memory.

    python bench/web_load.py                 # 20 concurrent 12 MP enhances + three 240 MP PNG "bombs"
    python bench/web_load.py --quick         # 6 concurrent 6 MP enhances, one 240 MP PNG

Starts ``csrnet web`` in a child process on a free 127.0.0.1 port, then:
1. N concurrent ``POST /api/enhance`` of different real-detail JPEG mosaics (12 MP): errors, p50/p95
   latency, while a poller hits ``GET /api/models`` every 50 ms (its p50/p95: light endpoints must not
   queue behind photo jobs);
2. three single-colour 240 MP PNGs (~0.7 MB each, under the 250 MP limit) posted at once: the
   server's peak RSS while they run and its RSS a few seconds after (memory handed back).
The server's memory is read from /proc/PID/status (VmRSS, VmHWM). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path


from common import make_mosaic


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status_mb(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _flat_png(w: int, h: int) -> bytes:
    """A single-colour RGB PNG of w x h written row by row with zlib (Pillow would need the whole image)."""
    import struct

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    comp = zlib.compressobj(9)
    row = b"\x00" + bytes((90, 120, 150)) * w
    parts = [comp.compress(row) for _ in range(h)]
    parts.append(comp.flush())
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b""))


#: The light-endpoint poller (run as ``python -c _POLLER URL``): GET URL every 50 ms until a line arrives
#: on stdin, then print each request's seconds.
_POLLER = """
import sys, threading, time, httpx
url, stop, out = sys.argv[1], threading.Event(), []
threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
httpx.get(url, timeout=30)
print("ready", flush=True)
while not stop.is_set():
    t = time.perf_counter()
    httpx.get(url, timeout=30)  # a new connection each time, as the figures before this change
    out.append(time.perf_counter() - t)
    stop.wait(0.05)
print(" ".join(f"{x:.6f}" for x in out))
"""


def _start_server() -> tuple[subprocess.Popen, str]:
    """``csrnet web`` on a free loopback port, once it answers; (process, base URL)."""
    import httpx

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "csrnet.cli", "web", "--port", str(port)], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/api/models", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    return server, base


def _post(url: str, name: str, data: bytes, timeout: float = 600, **fields) -> tuple[int, float]:
    import httpx

    t = time.perf_counter()
    r = httpx.post(url, files={"file": (name, data, "application/octet-stream")}, data={"format": "jpg", **fields}, timeout=timeout)
    return r.status_code, time.perf_counter() - t


def _bombs(count: int) -> tuple[list[int], float, float, float, float]:
    """``count`` single-colour 240 MP PNGs posted at once to a fresh server (so its peak is theirs):
    (sorted status codes, PNG size in MB, seconds, server peak RSS MB, server RSS MB 3 s after)."""
    server, base = _start_server()
    try:
        png = _flat_png(20000, 12000)  # 240 MP
        results: list[tuple[int, float]] = []
        threads = [threading.Thread(target=lambda i=i: results.append(_post(base + "/api/enhance", f"flat{i}.png", png)))
                   for i in range(count)]
        t1 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join(1800)
        wall = time.perf_counter() - t1
        peak = _status_mb(server.pid, "VmHWM")
        time.sleep(3)
        after = _status_mb(server.pid, "VmRSS")
    finally:
        server.terminate()
        server.wait(60)
    return sorted(c for c, _ in results), len(png) / 1e6, wall, peak, after


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-bombs", action="store_true", help="skip the 240 MP PNGs (the concurrency figures only)")
    args = ap.parse_args()
    n, mp = (6, 6) if args.quick else (20, 12)
    bombs = 1 if args.quick else 3
    import httpx

    server, base = _start_server()
    try:
        idle_mb = _status_mb(server.pid, "VmRSS")
        with tempfile.TemporaryDirectory() as tmp:
            photos = [make_mosaic(mp, Path(tmp) / f"m{i}.jpg", offset=3 * i).read_bytes() for i in range(min(n, 6))]
        # 0. one photo at a time: the page's 1200 px preview vs the full-size download (median of 3)
        _post(base + "/api/enhance", "warm.jpg", photos[0])
        preview_s = statistics.median(_post(base + "/api/enhance", "p.jpg", photos[0], preview=1200)[1] for _ in range(3))
        full_s = statistics.median(_post(base + "/api/enhance", "f.jpg", photos[0])[1] for _ in range(3))
        # 1. concurrent enhances with a light-endpoint poller
        results: list[tuple[int, float]] = []
        # The poller is a process of its own: in this process the 20 uploading threads would hold the
        # client's GIL, and the poller's figures would measure the client, not the server.
        poller = subprocess.Popen([sys.executable, "-c", _POLLER, base + "/api/models"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        poller.stdout.readline()  # "ready": its first request is answered
        t0 = time.perf_counter()
        workers = [threading.Thread(target=lambda i=i: results.append(_post(base + "/api/enhance", f"p{i}.jpg", photos[i % len(photos)])))
                   for i in range(n)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(900)
        wall = time.perf_counter() - t0
        light = [float(x) for x in poller.communicate("stop\n", timeout=60)[0].split()]
        load_peak = _status_mb(server.pid, "VmHWM")
        errors = sum(code != 200 for code, _ in results)
        lat = sorted(s for _, s in results)
        q = statistics.quantiles(light, n=20) if len(light) >= 2 else [float("nan")] * 19
    finally:
        server.terminate()
        server.wait(60)
    bomb = None if args.no_bombs else _bombs(bombs)
    print("\n| measurement | value |\n|---|---|")
    print(f"| one {mp} MP JPEG: 1200 px preview / full-size download (request to answer, median of 3) | {preview_s:.3f} s / {full_s:.3f} s |")
    print(f"| {n} concurrent {mp} MP enhances: errors | {errors} |")
    print(f"| latency p50 / p95 | {statistics.median(lat):.2f} s / {lat[int(0.95 * (len(lat) - 1))]:.2f} s (all done in {wall:.1f} s) |")
    print(f"| `GET /api/models` meanwhile: p50 / p95 ({len(light)} requests) | {statistics.median(light) * 1000:.0f} ms / {q[18] * 1000:.0f} ms |")
    print(f"| server RSS idle / peak under that load | {idle_mb:.0f} MB / {load_peak:.0f} MB |")
    if bomb is not None:
        codes, png_mb, bomb_wall, bomb_peak, after_mb = bomb
        print(f"| {bombs} x 240 MP single-colour PNG ({png_mb:.1f} MB each) at once: status | {codes} in {bomb_wall:.1f} s |")
        print(f"| server peak RSS with them / RSS 3 s after | {bomb_peak:.0f} MB / {after_mb:.0f} MB |")
    print(f"\nmachine: {os.cpu_count()} cores; load average before: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
