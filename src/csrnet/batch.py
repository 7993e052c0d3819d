"""Batch retouching of files: input discovery, output naming, the worker pool and the report.

The CLI and the web app call this; it owns the file-level guarantees:
inputs are only read; an output is written to a temporary file and renamed, so it
is either absent or complete; an existing output is skipped (``overwrite=False``), which
makes an interrupted batch resumable by running the same command again; one bad file
is reported and the batch goes on.
"""

from __future__ import annotations

import glob
import os
import stat
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import CsrnetError, OutputExistsError
from .io.atomic import remove_stale_temporaries
from .io.formats import default_output, input_extensions, read_photo, write_photo
from .io.photo import DEFAULT_MAX_PIXELS
from .pipeline import Blend, enhance
from .threads import file_workers, parallel_files
from .weights import Model

__all__ = ["Job", "Result", "Report", "Retouch", "collect_inputs", "enhancer", "output_path", "plan_jobs", "process", "run_batch", "IMAGE_EXTENSIONS"]

#: Extensions picked up when a folder is given (files named explicitly are always tried).
IMAGE_EXTENSIONS = input_extensions()


@dataclass(frozen=True)
class Job:
    src: Path
    dst: Path


@dataclass
class Result:
    job: Job
    status: str  # "done", "skipped", "failed", "not started"
    message: str = ""


@dataclass
class Report:
    results: list[Result] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # inputs that could not even be planned
    interrupted: bool = False

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def failures(self) -> list[str]:
        return self.errors + [r.message for r in self.results if r.status == "failed"]

    @property
    def exit_code(self) -> int:
        """0: everything done or already there; 1: some file failed or the batch was interrupted."""
        return 1 if self.failures or self.interrupted else 0

    def summary(self) -> str:
        parts = [f"{self.count('done')} enhanced", f"{self.count('skipped')} skipped (output exists)", f"{len(self.failures)} failed"]
        if self.interrupted:
            parts.append(f"{self.count('not started')} not started (interrupted)")
        return ", ".join(parts)


def _has_magic(s: str) -> bool:
    return any(c in s for c in "*?[")


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # a looping symbolic link: is_dir() raises instead of answering
        return False


def _not_regular(p: Path) -> str | None:
    """Why ``p`` cannot be read as a photo file (None if it is a regular file or a link to one).

    Pipes and devices are refused here: opening a FIFO for reading would block the batch forever.
    """
    try:
        st = p.stat()
    except OSError as e:
        return "broken or looping symbolic link" if p.is_symlink() else f"cannot read ({e.strerror or e})"
    return None if stat.S_ISREG(st.st_mode) else "not a regular file (a pipe, socket or device)"


def collect_inputs(paths: Iterable[str], *, recursive: bool = False, exclude_suffix: str = "") -> tuple[list[tuple[Path, Path]], list[str]]:
    """Expand files, folders and globs into (file, root) pairs; root is where output sub-paths start.

    Returns the inputs and one error line per argument that named nothing usable.
    In folders, hidden files and files whose stem ends with ``exclude_suffix`` (our own
    earlier outputs) are left out.
    """
    found: list[tuple[Path, Path]] = []
    errors: list[str] = []

    def from_folder(folder: Path) -> None:
        walker = os.walk(folder) if recursive else [(str(folder), [], [e.name for e in os.scandir(folder) if not _is_dir(e)])]
        for dirpath, dirnames, filenames in walker:
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                p = Path(dirpath, name)
                if name.startswith(".") or p.suffix.lower() not in IMAGE_EXTENSIONS:
                    continue
                if exclude_suffix and p.stem.endswith(exclude_suffix):
                    continue
                problem = _not_regular(p)
                if problem:  # named, not silently skipped: the user expects every photo in the folder
                    errors.append(f"{p}: {problem}")
                    continue
                found.append((p, folder))

    for arg in paths:
        p = Path(arg)
        try:
            if p.is_dir():
                from_folder(p)
            elif p.is_file():
                found.append((p, p.parent))
            elif _has_magic(arg):
                matches = sorted(glob.glob(arg, recursive=True))
                files = [Path(m) for m in matches if Path(m).is_file()]
                if not files:
                    errors.append(f"{arg}: no file matches")
                found.extend((f, f.parent) for f in files)
            elif p.is_symlink():
                errors.append(f"{arg}: broken or looping symbolic link")
            elif p.exists():
                errors.append(f"{arg}: not a regular file (a pipe, socket or device)")
            else:
                errors.append(f"{arg}: no such file or folder")
        except OSError as e:
            errors.append(f"{arg}: cannot read ({e.strerror or e})")
    seen: set[Path] = set()
    unique = []
    for f, root in found:
        key = Path(os.path.realpath(f))  # unlike Path.resolve(), never raises on a link loop
        if key not in seen:
            seen.add(key)
            unique.append((f, root))
    return unique, errors


def output_path(src: Path, root: Path, out_dir: Path | None, *, suffix: str, fmt: str | None) -> Path:
    """Where ``src`` goes: ``out_dir`` mirroring the sub-path below ``root``, or beside ``src``; ``stem + suffix + ext``."""
    # the format table decides (csrnet.io.formats.default_output): the input's format where csrnet
    # writes it, keeping its extension's spelling (.jpeg stays .jpeg); camera RAW -> 16-bit TIFF,
    # HEIC -> JPEG, others -> TIFF
    out = default_output(src, fmt)
    suffix_in = src.suffix.lower()
    ext = suffix_in if fmt is None and suffix_in in out.extensions else out.extension
    name = src.stem + suffix + ext
    if out_dir is None:
        return src.with_name(name)
    try:
        rel = src.parent.relative_to(root)
    except ValueError:
        rel = Path()
    return out_dir / rel / name


def plan_jobs(inputs: list[tuple[Path, Path]], out_dir: Path | None, *, suffix: str, fmt: str | None) -> tuple[list[Job], list[str]]:
    """Pair each input with its output; refuse outputs that would replace an input or collide."""
    jobs, errors, taken = [], [], {}
    sources = {src.resolve() for src, _ in inputs}
    for src, root in inputs:
        dst = output_path(src, root, out_dir, suffix=suffix, fmt=fmt)
        key = dst.resolve() if dst.parent.exists() else dst.absolute()
        if key in sources:
            errors.append(f"{src}: output {dst} would replace an input (choose another --output folder or a --suffix)")
        elif key in taken:
            errors.append(f"{src}: output {dst} is also the output of {taken[key]} (use --format or separate folders)")
        else:
            taken[key] = src
            jobs.append(Job(src, dst))
    return jobs, errors


#: What a batch does to each photo's pixels (PIL image or uint8/uint16 array in, the same type out).
Retouch = Callable[[Any], Any]


def enhancer(model: Model | Blend, *, strength: float = 1.0, exact: bool = False, condition_size: int | str | None = "model") -> Retouch:
    """The :data:`Retouch` of ``csrnet enhance``: :func:`csrnet.enhance` with these settings."""
    return lambda pixels: enhance(pixels, model, strength=strength, exact=exact, condition_size=condition_size)  # type: ignore[arg-type]


def process(job: Job, retouch: Retouch, *, fmt: str | None = None, quality: int = 95, overwrite: bool = False,
            max_pixels: int = DEFAULT_MAX_PIXELS) -> Result:
    """Read, retouch and write one file; never raises for a bad file (the result says why)."""
    if job.dst.exists() and not overwrite:
        return Result(job, "skipped", f"{job.dst}: exists")
    try:
        photo = read_photo(job.src, max_pixels=max_pixels, jpeg_array=True)
        out = retouch(photo.pixels)
        job.dst.parent.mkdir(parents=True, exist_ok=True)
        write_photo(photo.with_pixels(out), job.dst, format=fmt, quality=quality, overwrite=overwrite)
    except OutputExistsError as e:  # another process finished it first
        return Result(job, "skipped", str(e))
    except CsrnetError as e:
        msg = str(e)
        return Result(job, "failed", msg if msg.startswith(str(job.src)) else f"{job.src}: {msg}")
    except MemoryError:
        return Result(job, "failed", f"{job.src}: out of memory")
    except OSError as e:  # writing: disk full, permission denied ...
        return Result(job, "failed", f"{job.src}: cannot write {job.dst} ({e.strerror or e})")
    except Exception as e:  # a decoder/encoder bug on a hostile file must not end the whole batch
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
        return Result(job, "failed", f"{job.src}: unexpected {type(e).__name__} ({first}); please report this")
    return Result(job, "done")


def run_batch(jobs: list[Job], retouch: Retouch, *, workers: int | None = None, stop: threading.Event | None = None,
              on_result: Callable[[Result], None] | None = None, **options) -> list[Result]:
    """Process ``jobs`` with ``retouch`` (see :func:`process` for ``options``) on ``workers`` threads (decode, lattice and encode release the GIL, so files
    overlap across cores). Setting ``stop`` lets running files finish and starts no new one.
    Results come back in job order."""
    stop = stop or threading.Event()
    workers = file_workers() if workers is None else workers
    remove_stale_temporaries(sorted({j.dst.parent for j in jobs}))

    def one(job: Job) -> Result:
        if stop.is_set():
            return Result(job, "not started")
        result = process(job, retouch, **options)
        if on_result:
            on_result(result)
        return result

    if workers <= 1 or len(jobs) <= 1:
        return [one(j) for j in jobs]
    # Files already run in parallel; multi-threaded BLAS inside each would oversubscribe the
    # cores, and OpenBLAS's spinning threads then slow the small lattice solve (csrnet.threads).
    with parallel_files(workers) as pool:
        return list(pool.map(one, jobs))
