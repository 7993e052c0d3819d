"""The ways ``csrnet enhance`` runs, over the Python API: a batch of files (with -o FILE), a pipe, a hot
folder, video clips, and a collection on Ray. The command's options are parsed in :mod:`csrnet.cli`."""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

import click

from .console import EXIT_FAILED, EXIT_OK, fail, on_sigint, one_line
from .errors import CsrnetError

__all__ = ["enhance_on_ray", "enhance_stdio", "is_video_path", "output_file", "run_files", "run_videos", "watch"]


def enhance_on_ray(paths, out, model, *, suffix, report, **options) -> None:
    """``--engine ray``: :func:`csrnet.distributed.enhance_collection`, its summary line and exit code."""
    try:
        from .distributed import KeyboardInterruptWithSummary, enhance_collection, summarize
        import ray  # noqa: F401
    except ImportError:
        fail('--engine ray needs Ray Data and fsspec: pip install "csrnet-retouch[ray]"')
    try:
        summary = enhance_collection(list(paths), out, model, suffix=suffix if suffix is not None else ("" if out else "_csrnet"), **options)
    except KeyboardInterruptWithSummary as e:
        click.echo(f"csrnet: interrupted: {one_line(str(e.summary))}", err=True)
        sys.exit(EXIT_FAILED)
    except FileNotFoundError as e:
        fail(f"{e.filename or e}: no such file, folder or object", EXIT_FAILED)
    click.echo(f"csrnet: {one_line(str(summary))}", err=True)
    if report:
        click.echo(summarize(summary.manifest))
    sys.exit(summary.exit_code)


def is_video_path(path: str) -> bool:
    from .video import is_video

    return Path(path).is_file() and is_video(path)


def run_videos(videos, out_dir, suffix, net, strength, smooth, lut_per_clip, crf, codec, overwrite) -> bool:
    """``csrnet enhance clip.mp4 ...``: each clip in turn through :func:`csrnet.video.enhance_video`, a
    progress bar in frames, one line per problem. Returns whether any clip failed."""
    from tqdm import tqdm

    from .batch import output_path
    from .errors import OutputExistsError
    from .video import enhance_video, read_video_mark

    failed = False
    for name in videos:
        src = Path(name)
        mark = read_video_mark(src)
        if mark is not None:  # a clip csrnet wrote (e.g. a shell glob caught last run's outputs): retouching it again would double the edit
            click.echo(f"csrnet: {src}: a csrnet output ({one_line(mark)}); skipped", err=True)
            continue
        dst = output_path(src, src.parent, out_dir, suffix=suffix, fmt=None).with_suffix(src.suffix)
        if codec == "prores" and dst.suffix.lower() not in (".mov", ".mkv"):
            dst = dst.with_suffix(".mov")
        bar = tqdm(unit="frame", desc=one_line(src.name)[:40], file=sys.stderr, disable=None)

        def progress(done: int, total: int | None, bar=bar) -> None:
            if total and bar.total != total:
                bar.total = total
            bar.update(done - bar.n)

        try:
            report = enhance_video(src, dst, net, strength=strength, smooth=smooth, lut_per_clip=lut_per_clip, crf=crf,
                                   codec=codec, overwrite=overwrite, progress=progress)
        except OutputExistsError:
            bar.close()
            click.echo(f"csrnet: {dst}: exists (use --overwrite to replace it); skipped", err=True)
            continue
        except CsrnetError as e:
            bar.close()
            click.echo(f"csrnet: failed: {one_line(str(e))}", err=True)
            failed = True
            continue
        bar.close()
        click.echo(str(dst))
        click.echo(f"csrnet: {one_line(report.summary())}", err=True)
    return failed


def output_file(out: Path | None, paths: tuple[str, ...]) -> Path | None:
    """``-o NAME.ext``: an output file name (an extension csrnet writes, not an existing folder), or None."""
    from .io.formats import format_for_path

    if out is None or out.is_dir():
        return None
    fmt = format_for_path(out)
    if fmt is None or fmt.writer is None:
        return None
    if len(paths) != 1 or Path(paths[0]).is_dir() or any(c in paths[0] for c in "*?["):
        fail(f"-o {out} names one output file: give exactly one input photo (or -o FOLDER)")
    if out.exists() and os.path.samefile(out, paths[0]):
        fail(f"-o {out} is the input photo: an output never replaces an input (not a folder either)")
    return out


def run_files(paths, recursive, out_dir, out_file, suffix, retouch, options, jobs) -> None:
    """The batch: plan, run with a progress bar naming the current file, report, exit code."""
    from tqdm import tqdm

    from .batch import Job, Report, collect_inputs, plan_jobs, run_batch

    own: list[Path] = []
    inputs, errors = collect_inputs(paths, recursive=recursive, exclude_suffix=suffix if out_dir is None else "", own_outputs=own)
    if out_file is not None and inputs:
        if options["fmt"] is None:
            options = {**options, "fmt": _format_key(out_file)}
        jobs_list, plan_errors = [Job(inputs[0][0], out_file)], []
    else:
        jobs_list, plan_errors = plan_jobs(inputs, out_dir, suffix=suffix, fmt=options["fmt"])
    report = Report(errors=errors + plan_errors, own_outputs=len(own))
    if not jobs_list and not report.errors:
        if own:
            click.echo(f"csrnet: {report.summary()}", err=True)
            sys.exit(EXIT_OK)
        fail("no photos found in " + " ".join(paths))

    stop = threading.Event()
    previous = on_sigint(stop)
    bar = tqdm(total=len(jobs_list), unit="photo", disable=len(jobs_list) <= 1 or None, file=sys.stderr)
    lock = threading.Lock()

    def on_start(job) -> None:
        with lock:
            bar.set_postfix_str(one_line(job.src.name)[:40], refresh=True)

    def on_result(result) -> None:
        with lock:
            if result.status in ("failed", "conflict"):
                bar.write(f"csrnet: {result.status}: {one_line(result.message)}", file=sys.stderr)
            bar.update(1)

    try:
        report.results = run_batch(jobs_list, retouch, workers=jobs, stop=stop, on_start=on_start, on_result=on_result, **options)
    finally:
        bar.close()
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    report.interrupted = stop.is_set()
    for line in errors + plan_errors:
        click.echo(f"csrnet: failed: {one_line(line)}", err=True)
    if len(jobs_list) == 1 and report.count("done") == 1:
        click.echo(str(jobs_list[0].dst))
    click.echo(f"csrnet: {one_line(report.summary())}", err=True)
    if report.failures and len(report.failures) > 1:
        click.echo("csrnet: failures:\n  " + "\n  ".join(map(one_line, report.failures)), err=True)
    sys.exit(report.exit_code)


def _format_key(path: Path) -> str | None:
    from .io.formats import format_for_path

    fmt = format_for_path(path)
    return fmt.key if fmt is not None else None


def enhance_stdio(retouch, out: Path | None, options: dict) -> None:
    """``csrnet enhance -``: the photo on standard input, the result on standard output (or in ``-o FILE``),
    in the input's format (from its content) unless --format says otherwise."""
    import shutil
    import tempfile

    from .batch import Job, process
    from .io.formats import default_output, read_photo

    if out is None and sys.stdout.isatty():
        fail("standard output is a terminal: redirect it (csrnet enhance - > out.jpg) or give -o FILE")
    data = sys.stdin.buffer.read()
    if not data:
        fail("nothing on standard input")
    with tempfile.TemporaryDirectory(prefix="csrnet-stdin-") as tmp:
        src = Path(tmp) / "stdin"
        src.write_bytes(data)
        try:
            fmt = default_output(f"x.{read_photo(src, max_pixels=options['max_pixels']).format}", options["fmt"])
        except CsrnetError as e:
            fail(str(e).replace(str(src), "<stdin>"), EXIT_FAILED)
        dst = Path(tmp) / f"out{fmt.extension}"
        result = process(Job(src, dst), retouch, **{**options, "fmt": fmt.key, "overwrite": False})
        if result.status != "done":
            fail(result.message.replace(str(src), "<stdin>"), EXIT_FAILED)
        if out is not None:
            from .io.atomic import atomic_write

            atomic_write(out, lambda t: shutil.copyfile(dst, t), overwrite=options["overwrite"])
            click.echo(str(out))
        else:
            sys.stdout.buffer.write(dst.read_bytes())
            sys.stdout.buffer.flush()


def watch(paths, recursive, out_dir, suffix, retouch, options, jobs, interval) -> None:
    """Hot folder: every ``interval`` s, enhance the photos that appeared (once their size and time stop
    changing, so half-copied files wait); finished files are never redone (their outputs exist and
    carry the settings). Ctrl-C ends it after the files in progress."""
    from .batch import collect_inputs, plan_jobs, run_batch

    for p in paths:
        if not Path(p).is_dir():
            fail(f"{p}: --watch takes folders")
    stop = threading.Event()
    previous = on_sigint(stop)
    seen: dict[Path, tuple[int, int]] = {}
    handled: set[tuple[Path, tuple[int, int]]] = set()
    counts = {"done": 0, "failed": 0}
    click.echo(f"csrnet: watching {' '.join(paths)} (Ctrl-C to stop)", err=True)
    try:
        while not stop.is_set():
            inputs, _ = collect_inputs(paths, recursive=recursive, exclude_suffix=suffix if out_dir is None else "")
            ready = []
            for src, root in inputs:
                try:
                    st = src.stat()
                except OSError:
                    continue
                key = (st.st_size, st.st_mtime_ns)
                if seen.get(src) == key and (src, key) not in handled:
                    ready.append((src, root))
                    handled.add((src, key))
                seen[src] = key
            jobs_list, plan_errors = plan_jobs(ready, out_dir, suffix=suffix, fmt=options["fmt"])
            for line in plan_errors:
                click.echo(f"csrnet: failed: {one_line(line)}", err=True)
            for result in run_batch(jobs_list, retouch, workers=jobs, stop=stop, **options):
                if result.status == "done":
                    counts["done"] += 1
                    click.echo(str(result.job.dst))
                elif result.status in ("failed", "conflict"):
                    counts["failed"] += 1
                    click.echo(f"csrnet: {result.status}: {one_line(result.message)}", err=True)
            stop.wait(interval)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    click.echo(f"csrnet: stopped watching: {counts['done']} enhanced, {counts['failed']} failed", err=True)
    sys.exit(EXIT_FAILED if counts["failed"] else EXIT_OK)
