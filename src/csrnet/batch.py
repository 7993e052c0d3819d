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

import numpy as np

from .errors import CsrnetError, OutputExistsError
from .io.atomic import remove_stale_temporaries
from .io.formats import default_output, format_for_path, input_extensions, read_photo, write_photo
from .io.marks import mark_exif, read_mark, settings_text
from .io.photo import DEFAULT_MAX_PIXELS
from .pipeline import Blend, enhance, shrink
from .threads import file_workers, parallel_files
from .weights import Model

__all__ = ["Job", "Result", "Report", "Retouch", "collect_inputs", "describe_model", "enhancer", "is_marked", "output_path", "plan_jobs", "process", "retouch_file", "run_batch", "IMAGE_EXTENSIONS"]

#: Extensions picked up when a folder is given (files named explicitly are always tried).
IMAGE_EXTENSIONS = input_extensions()


@dataclass(frozen=True)
class Job:
    src: Path
    dst: Path


@dataclass
class Result:
    job: Job
    status: str  # "done", "skipped" (output exists), "conflict" (output exists, other settings), "failed", "not started"
    message: str = ""


@dataclass
class Report:
    results: list[Result] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # inputs that could not even be planned
    interrupted: bool = False
    own_outputs: int = 0  # csrnet outputs found among the inputs and left alone

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def failures(self) -> list[str]:
        return self.errors + [r.message for r in self.results if r.status == "failed"]

    @property
    def exit_code(self) -> int:
        """0: everything done or already there; 1: some file failed, an output exists with other
        settings, or the batch was interrupted."""
        return 1 if self.failures or self.interrupted or self.count("conflict") else 0

    def summary(self, done: str = "enhanced") -> str:
        parts = [f"{self.count('done')} {done}", f"{self.count('skipped')} skipped (output exists)", f"{len(self.failures)} failed"]
        if self.own_outputs:
            parts.append(f"{self.own_outputs} csrnet output{'s' * (self.own_outputs != 1)} among the inputs left alone")
        if self.interrupted:
            parts.append(f"{self.count('not started')} not started (interrupted)")
        text = ", ".join(parts)
        if self.count("conflict"):
            n = self.count("conflict")
            text += f"; {n} output{'s' * (n != 1)} exist{'s' * (n == 1)} with other settings — use --overwrite or another -o/--suffix"
        return text


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


def collect_inputs(paths: Iterable[str], *, recursive: bool = False, exclude_suffix: str = "",
                   own_outputs: list[Path] | None = None) -> tuple[list[tuple[Path, Path]], list[str]]:
    """Expand files, folders and globs into (file, root) pairs; root is where output sub-paths start.

    Returns the inputs and one error line per argument that named nothing usable.
    In folders, hidden files and files whose stem ends with ``exclude_suffix`` are left out; files
    csrnet wrote (recognised by their mark, :mod:`csrnet.io.marks`, whatever their name or folder)
    are never inputs: they are appended to ``own_outputs`` when a list is given.
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
        if key in seen:
            continue
        seen.add(key)
        if is_marked(f):  # a csrnet output: retouching it again would double the edit
            if own_outputs is not None:
                own_outputs.append(f)
            continue
        unique.append((f, root))
    return unique, errors


def is_marked(path: Path) -> bool:
    """Whether ``path`` is a file csrnet wrote (formats csrnet writes only: RAW files never are)."""
    fmt = format_for_path(path)
    return (fmt is None or fmt.writer is not None) and read_mark(path) is not None


def output_path(src: Path, root: Path, out_dir: Path | None, *, suffix: str, fmt: str | None) -> Path:
    """Where ``src`` goes: ``out_dir`` mirroring the sub-path below ``root``, or beside ``src``; ``stem + suffix + ext``."""
    # the format table decides (csrnet.io.formats.default_output): the input's format where csrnet
    # writes it, keeping its extension as spelled (.jpeg stays .jpeg, .JPG stays .JPG); camera RAW
    # -> 16-bit TIFF, HEIC -> JPEG, others -> TIFF
    out = default_output(src, fmt)
    ext = src.suffix if fmt is None and src.suffix.lower() in out.extensions else out.extension
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


@dataclass(frozen=True)
class Retouch:
    """What a batch does to each photo: ``apply`` maps pixels (PIL image or uint8/uint16 array) to
    pixels of the same type (possibly resized), and ``settings`` say what it is — written into every
    output as csrnet's mark (:mod:`csrnet.io.marks`), so a re-run tells "done with these settings"
    from "done with others"."""

    apply: Callable[[Any], Any]
    settings: dict[str, object]

    @property
    def mark(self) -> str:
        return settings_text(self.settings)


def describe_model(model: Model | Blend) -> str:
    """``name@fingerprint`` of a model, or of each part of a blend with its weight."""
    if isinstance(model, Model):
        return f"{model.name or 'model'}@{model.fingerprint}"
    return "+".join(f"{describe_model(m)}*{w:g}" for m, w in model.parts) + f" ({model.mode} blend)"


def enhancer(model: Model | Blend, *, strength: float = 1.0, exact: bool = False, condition_size: int | str | None = "model",
             long_edge: int | None = None) -> Retouch:
    """The :class:`Retouch` of ``csrnet enhance``: :func:`csrnet.enhance` with these settings."""
    settings: dict[str, object] = {"model": describe_model(model), "strength": f"{strength:g}", "mode": "exact" if exact else "lattice"}
    if condition_size != "model":
        settings["condition"] = condition_size
    if long_edge:
        settings["long edge"] = long_edge

    def apply(pixels: Any) -> Any:
        # the pixels were decoded for this call alone (retouch_file), so the result may overwrite them
        return enhance(pixels, model, strength=strength, exact=exact, condition_size=condition_size, long_edge=long_edge,  # type: ignore[arg-type]
                       inplace=True)

    return Retouch(apply, settings)


def _resize_alpha(alpha: Any, size: tuple[int, int]) -> Any:
    """An alpha channel (PIL ``L`` image or (H, W) uint16 array) resized to ``size`` (w, h) as the colours were."""
    from PIL import Image

    if isinstance(alpha, Image.Image):
        return alpha.resize(size, Image.Resampling.BILINEAR, reducing_gap=3.0)
    planes = shrink(np.repeat(np.asarray(alpha)[..., None], 3, axis=2), max(size))
    return np.ascontiguousarray(planes[..., 0])


def _existing(job: Job, retouch: Retouch) -> Result:
    """The result for an output that exists: skipped if it carries these settings (or is not csrnet's),
    a conflict if csrnet made it with other settings."""
    mark = read_mark(job.dst)
    if mark is not None and mark != retouch.mark:
        return Result(job, "conflict", f"{job.dst}: exists, made with other settings ({mark.partition('(')[2].rstrip(')')})")
    return Result(job, "skipped", f"{job.dst}: exists")


def retouch_file(src: Path, dst: Path, retouch: Retouch, *, fmt: str | None = None, quality: int = 95,
                 overwrite: bool = False, max_pixels: int = DEFAULT_MAX_PIXELS) -> Path:
    """Read ``src``, retouch it and write ``dst`` (atomically, metadata kept, marked with the retouch's
    settings). Raises the typed :class:`~csrnet.errors.CsrnetError` of any problem."""
    photo = read_photo(src, max_pixels=max_pixels, as_array=True)
    out = photo.with_pixels(retouch.apply(photo.pixels))
    out.exif = mark_exif(photo.exif, retouch.mark)
    if out.alpha is not None and out.size != photo.size:
        out.alpha = _resize_alpha(out.alpha, out.size)
    dst.parent.mkdir(parents=True, exist_ok=True)
    return write_photo(out, dst, format=fmt, quality=quality, overwrite=overwrite)


def process(job: Job, retouch: Retouch, *, fmt: str | None = None, quality: int = 95, overwrite: bool = False,
            max_pixels: int = DEFAULT_MAX_PIXELS) -> Result:
    """:func:`retouch_file` for a batch: never raises for a bad file (the result says why)."""
    if job.dst.exists() and not overwrite:
        return _existing(job, retouch)
    try:
        retouch_file(job.src, job.dst, retouch, fmt=fmt, quality=quality, overwrite=overwrite, max_pixels=max_pixels)
    except OutputExistsError:  # another process finished it first
        return _existing(job, retouch)
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
              on_start: Callable[[Job], None] | None = None, on_result: Callable[[Result], None] | None = None,
              **options) -> list[Result]:
    """Process ``jobs`` with ``retouch`` (see :func:`process` for ``options``) on ``workers`` threads
    (decode, lattice and encode release the GIL, so files overlap across cores). Setting ``stop`` lets
    running files finish and starts no new one. Results come back in job order."""
    stop = stop or threading.Event()
    workers = file_workers() if workers is None else workers
    remove_stale_temporaries(sorted({j.dst.parent for j in jobs}))

    def one(job: Job) -> Result:
        if stop.is_set():
            return Result(job, "not started")
        if on_start:
            on_start(job)
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
