"""``csrnet enhance --engine ray``: a photo collection enhanced on Ray Data, from and to local folders or
object stores (``s3://bucket/prefix``, ``gs://...``, anything fsspec knows).

The driver streams the listing (fsspec ``walk``), names each output exactly as ``csrnet enhance`` does
(:func:`csrnet.batch.output_path`) and feeds the pairs to Ray Data in chunks; a pool of actors
(``map_batches`` with :class:`ray.data.ActorPoolStrategy`) loads the model once each and runs
:func:`csrnet.batch.process` — the CLI's own reader, retouch and writer — so outputs are byte-identical
to ``csrnet enhance`` (EXIF, ICC, 16-bit, RAW, format rules, naming). Ray's ``read_images`` is not used:
it drops all of that.

Guarantees: local outputs are written to a temporary name and renamed; object-store outputs are
retouched into a local temporary file and uploaded with one object put, so an output is either absent
or complete. Existing outputs are skipped, so a re-run resumes. One bad file is a manifest row with
status ``failed``, never a failed job. Actors are restarted and their batch retried when a worker
process dies. The manifest (Parquet: input, output, status, error, bytes, seconds, model, strength) is
written as results arrive and closed at the end or on Ctrl-C (a partial, valid manifest).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["FIELDS", "MANIFEST_NAME", "EnhanceWorker", "KeyboardInterruptWithSummary", "Summary", "enhance_collection", "list_jobs", "summarize"]

MANIFEST_NAME = "csrnet-manifest.parquet"
FIELDS = ("input", "output", "status", "error", "bytes", "seconds", "model", "strength")
#: Inputs handed to Ray per dataset execution: the driver never holds more of the listing than this.
CHUNK = 20_000


def _is_url(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def _fs(path: str, storage_options: dict | None):
    """(filesystem, path within it, URL prefix to put back) for a local path or URL."""
    import fsspec.core

    if not _is_url(path):
        local = path.removeprefix("file://")
        fs, _ = fsspec.core.url_to_fs(local)
        return fs, os.path.abspath(local), ""
    fs, inner = fsspec.core.url_to_fs(path, **(storage_options or {}))
    return fs, inner.rstrip("/"), path.split("://", 1)[0] + "://"


def _walk(fs, root: str, recursive: bool) -> Iterator[tuple[str, str]]:
    """(folder, file name) below ``root``, streamed folder by folder, hidden folders left out."""
    for base, dirs, names in fs.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []  # fsspec honours in-place pruning
        for name in sorted(names):
            yield base, name


def list_jobs(sources: Sequence[str], dst: str | None, *, suffix: str = "", fmt: str | None = None, recursive: bool = True,
              storage_options: dict | None = None) -> Iterator[dict[str, str]]:
    """Stream ``{"input", "output"}`` URL pairs: photos in each source folder (sub-folders too when
    ``recursive``; hidden names and other extensions left out, as ``csrnet enhance`` does) or each
    source file, with the output named by :func:`csrnet.batch.output_path` below ``dst`` (beside the
    input when ``dst`` is None)."""
    from .batch import output_path
    from .io.formats import input_extensions

    exts = input_extensions()
    if dst is not None:
        _, dst_root, dst_prefix = _fs(dst, storage_options)
    for src in sources:
        fs, root, prefix = _fs(src, storage_options)
        if fs.isdir(root):
            files, top = _walk(fs, root, recursive), root
        elif fs.isfile(root):
            files, top = iter([(os.path.dirname(root), os.path.basename(root))]), os.path.dirname(root)
        else:
            raise FileNotFoundError(f"{src}: no such file or folder")
        for base, name in files:
            if name.startswith(".") or Path(name).suffix.lower() not in exts:
                continue
            path = Path(base.rstrip("/"), name)
            if dst is None:
                out, out_prefix = output_path(path, Path(top), None, suffix=suffix, fmt=fmt), prefix
            else:
                out, out_prefix = output_path(path, Path(top), Path(dst_root), suffix=suffix, fmt=fmt), dst_prefix
            yield {"input": prefix + str(path), "output": out_prefix + str(out)}


class EnhanceWorker:
    """One Ray actor: loads the model once, then retouches batches of ``{"input", "output"}`` rows into
    manifest rows. Never raises for a bad file."""

    def __init__(self, model: str, strength: float = 1.0, exact: bool = False, long_edge: int | None = None,
                 fmt: str | None = None, quality: int = 95, overwrite: bool = False, max_pixels: int | None = None,
                 storage_options: dict | None = None, style: str | None = None, style_mode: str = "lut"):
        from .batch import describe_model, enhancer
        from .io.photo import DEFAULT_MAX_PIXELS
        from .pipeline import parse_style
        from .weights import load_model

        net = parse_style(style, style_mode) if style else load_model(model)
        self.retouch = enhancer(net, strength=strength, exact=exact, long_edge=long_edge)
        self.model, self.strength = describe_model(net), float(strength)
        self.options = {"fmt": fmt, "quality": quality, "overwrite": overwrite, "max_pixels": max_pixels or DEFAULT_MAX_PIXELS}
        self.storage_options = storage_options or {}

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        rows = [self.one(str(i), str(o)) for i, o in zip(batch["input"], batch["output"])]
        return {k: [r[k] for r in rows] for k in FIELDS}

    def one(self, src: str, dst: str) -> dict[str, Any]:
        t0 = time.perf_counter()
        row = {"input": src, "output": dst, "status": "failed", "error": "", "bytes": 0, "seconds": 0.0,
               "model": self.model, "strength": self.strength}
        try:
            row.update(self._run(src, dst))
        except Exception as e:  # noqa: BLE001 -- listing/transfer problems (permissions, network) are a row too
            row["error"] = f"{src}: {type(e).__name__}: {str(e).strip().splitlines()[0][:200] if str(e).strip() else ''}"
        row["seconds"] = time.perf_counter() - t0
        return row

    def _run(self, src: str, dst: str) -> dict[str, Any]:
        from .batch import Job, is_marked, process

        src_fs, src_path, _ = _fs(src, self.storage_options)
        dst_fs, dst_path, _ = _fs(dst, self.storage_options)
        if src_path == dst_path:
            return {"error": f"{src}: output would replace the input (choose another destination or a suffix)"}
        if not self.options["overwrite"] and dst_fs.exists(dst_path):
            if not _is_url(dst):
                r = process(Job(Path(src_path), Path(dst_path)), self.retouch, **self.options)  # skipped / conflict
                return {"status": r.status, "error": r.message}
            return {"status": "skipped", "error": f"{dst}: exists"}
        with tempfile.TemporaryDirectory(prefix="csrnet-ray-") as tmp:
            local_src = Path(src_path)
            if _is_url(src):
                local_src = Path(tmp, "in", os.path.basename(src_path))
                local_src.parent.mkdir()
                src_fs.get_file(src_path, str(local_src))
            if is_marked(local_src):  # a csrnet output among the inputs: never retouched twice
                return {"status": "skipped", "error": f"{src}: a csrnet output, left alone"}
            local_dst = Path(dst_path) if not _is_url(dst) else Path(tmp, "out", os.path.basename(dst_path))
            r = process(Job(local_src, local_dst), self.retouch, **self.options)
            message = r.message.replace(str(local_src), src).replace(str(local_dst), dst)
            if r.status != "done":
                return {"status": r.status, "error": message}
            if _is_url(dst):
                data = local_dst.read_bytes()
                dst_fs.pipe_file(dst_path, data)  # one object put: absent or complete
                return {"status": "done", "bytes": len(data)}
            return {"status": "done", "bytes": local_dst.stat().st_size}


@dataclass
class Summary:
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    startup_seconds: float = 0.0
    manifest: str | None = None
    interrupted: bool = False

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def files_per_second(self) -> float:
        return self.counts.get("done", 0) / self.seconds if self.seconds else 0.0

    @property
    def exit_code(self) -> int:
        return 1 if self.interrupted or self.counts.get("failed", 0) or self.counts.get("conflict", 0) else 0

    def __str__(self) -> str:
        parts = ", ".join(f"{n} {s}" for s, n in sorted(self.counts.items())) or "no photos"
        return (f"{parts} in {self.seconds:.1f} s ({self.files_per_second:.2f} files/s; Ray start {self.startup_seconds:.1f} s)"
                + (" — interrupted" if self.interrupted else "") + (f"; manifest {self.manifest}" if self.manifest else ""))


class _Manifest:
    """Parquet manifest written in row groups as results arrive; valid whenever closed."""

    def __init__(self, path: str, storage_options: dict | None):
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.schema = pa.schema([("input", pa.string()), ("output", pa.string()), ("status", pa.string()), ("error", pa.string()),
                                 ("bytes", pa.int64()), ("seconds", pa.float64()), ("model", pa.string()), ("strength", pa.float64())])
        fs, inner, _ = _fs(path, storage_options)
        if not _is_url(path):
            os.makedirs(os.path.dirname(inner) or ".", exist_ok=True)
        self._file = fs.open(inner, "wb")
        self._writer = pq.ParquetWriter(self._file, self.schema)
        self.rows: list[dict] = []
        self.counts: dict[str, int] = {}

    def add(self, row: dict) -> None:
        self.rows.append({k: row[k] for k in FIELDS})
        self.counts[row["status"]] = self.counts.get(row["status"], 0) + 1
        if len(self.rows) >= 1000:
            self.flush()

    def flush(self) -> None:
        import pyarrow as pa

        if self.rows:
            self._writer.write_table(pa.Table.from_pylist(self.rows, schema=self.schema))
            self.rows = []

    def close(self) -> None:
        self.flush()
        self._writer.close()
        self._file.close()


def _chunks(items: Iterable[dict], n: int) -> Iterator[list[dict]]:
    chunk: list[dict] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def enhance_collection(src: str | Sequence[str], dst: str | None, model: str = "auto", *, strength: float = 1.0,
                       workers: int | None = None, address: str | None = None, suffix: str = "", fmt: str | None = None,
                       overwrite: bool = False, manifest: str | None = None, storage_options: dict | None = None,
                       exact: bool = False, long_edge: int | None = None, quality: int = 95, max_pixels: int | None = None,
                       recursive: bool = True, batch_size: int = 4, progress: bool = True, style: str | None = None,
                       style_mode: str = "lut") -> Summary:
    """Enhance every photo under ``src`` (folders, files or URLs) into ``dst`` on Ray Data.

    Without ``address`` a local Ray instance is started (``workers`` CPUs, default all) and shut down
    at the end; with it (``"auto"``, ``"ray://host:10001"``) the job runs on that cluster, whose nodes
    need ``csrnet-retouch[ray]`` installed. A Ray instance already initialised in this process is used
    as is. ``workers`` is the actor-pool size (default: the cluster's CPUs). The manifest goes to
    ``manifest`` (default ``dst/csrnet-manifest.parquet``, or the current folder without ``dst``).
    ``style`` (``"modelA:0.7,modelB:0.3"``, :func:`csrnet.parse_style`) blends models instead of ``model``;
    it is checked here, before any worker starts.
    """
    import ray

    from .io.atomic import remove_stale_temporaries
    from .testpoint import checkpoint

    if style:
        from .pipeline import parse_style

        parse_style(style, style_mode)  # a bad spec is one error here, not one per actor
    sources = [src] if isinstance(src, str) else list(src)
    if manifest is None:
        manifest = (dst.rstrip("/") + "/" + MANIFEST_NAME) if dst is not None else MANIFEST_NAME
    t0 = time.perf_counter()
    started = False
    if not ray.is_initialized():
        if address:
            ray.init(address=address)
        else:
            ray.init(num_cpus=workers or os.cpu_count(), include_dashboard=False, log_to_driver=False)
        started = True
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = progress
        size = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        startup = time.perf_counter() - t0
        out = _Manifest(manifest, storage_options)
        summary = Summary(startup_seconds=startup, manifest=manifest)
        t1 = time.perf_counter()
        if dst is not None and not _is_url(dst):
            os.makedirs(dst, exist_ok=True)
        folders: set[str] = set()
        try:
            jobs = list_jobs(sources, dst, suffix=suffix, fmt=fmt, recursive=recursive, storage_options=storage_options)
            for chunk in _chunks(jobs, CHUNK):
                ds = ray.data.from_items(chunk).map_batches(
                    EnhanceWorker, batch_size=batch_size, batch_format="numpy",
                    compute=ray.data.ActorPoolStrategy(size=min(size, max(1, len(chunk)))),
                    fn_constructor_kwargs={"model": model, "strength": strength, "exact": exact, "long_edge": long_edge, "fmt": fmt,
                                           "quality": quality, "overwrite": overwrite, "max_pixels": max_pixels,
                                           "storage_options": storage_options, "style": style, "style_mode": style_mode},
                    # a killed worker process: Ray Data's actor pools default to max_restarts=-1 and
                    # max_task_retries=-1, so the actor is restarted and its batch retried (outputs are atomic,
                    # so files finished before the kill are found and skipped)
                    num_cpus=1)
                for row in ds.iter_rows():
                    out.add(row)
                    checkpoint("ray.row")  # test-only pause point (csrnet.testpoint); nothing when unset
                    if not _is_url(row["output"]):
                        folders.add(os.path.dirname(row["output"]))
        except KeyboardInterrupt:
            summary.interrupted = True
        finally:
            out.close()
        # a worker killed mid-write leaves a temporary file beside its (retried, complete) output: tidy up
        remove_stale_temporaries(Path(f) for f in sorted(folders))
        summary.counts = dict(out.counts)
        summary.seconds = time.perf_counter() - t1
        if summary.interrupted:
            raise KeyboardInterruptWithSummary(summary)
        return summary
    finally:
        if started:
            ray.shutdown()


class KeyboardInterruptWithSummary(KeyboardInterrupt):
    """Ctrl-C during :func:`enhance_collection`: the partial manifest is written; ``summary`` says what was done."""

    def __init__(self, summary: Summary):
        super().__init__(str(summary))
        self.summary = summary


def summarize(manifest_path: str, storage_options: dict | None = None, *, failures: int = 20) -> str:
    """A few lines on a manifest: counts by status, bytes written, time per photo, the first failures."""
    import pyarrow.parquet as pq

    fs, inner, _ = _fs(manifest_path, storage_options)
    with fs.open(inner, "rb") as f:
        rows = pq.read_table(f).to_pylist()
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    done = [r for r in rows if r["status"] == "done"]
    lines = [f"{manifest_path}: {len(rows)} photos: " + (", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none")]
    if done:
        total = sum(r["bytes"] for r in done)
        per = sum(r["seconds"] for r in done) / len(done)
        lines.append(f"written: {total / 1e6:.1f} MB; {per:.3f} s per photo in a worker")
    models = sorted({f"{r['model']} strength {r['strength']:g}" for r in rows})
    if models:
        lines.append("settings: " + "; ".join(models))
    failed = [r for r in rows if r["status"] in ("failed", "conflict")]
    for r in failed[:failures]:
        lines.append(f"  {r['status']}: {r['error'] or r['input']}")
    if len(failed) > failures:
        lines.append(f"  ... and {len(failed) - failures} more")
    return "\n".join(lines)
