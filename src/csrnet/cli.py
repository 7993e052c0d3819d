"""The ``csrnet`` command: argument parsing, progress and exit codes over the Python API.

Exit codes: 0 everything done (or already there); 1 some file failed or the batch was
interrupted; 2 usage error (bad option, unreadable model, nothing to do).
Every problem is reported as one line; no traceback reaches the user.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from . import runs
from .console import EXIT_FAILED, EXIT_OK, abort, fail, one_line, quiet_library_warnings
from .errors import CsrnetError
from .arch import architectures
from .io.formats import output_formats
from .threads import file_workers

class _Group(click.Group):
    """Turns CsrnetError (and stray errors) into one line and an exit code, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except CsrnetError as e:
            fail(str(e))
        except KeyboardInterrupt:
            abort("interrupted")
        except BrokenPipeError:  # `csrnet models --card | head`: the reader left; nothing to report
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush does not fail again
            sys.exit(EXIT_OK)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit):
            raise
        except Exception as e:  # a bug: still one line, with a hint to report it
            if os.environ.get("CSRNET_DEBUG"):
                raise
            fail(f"unexpected {type(e).__name__}: {e} (set CSRNET_DEBUG=1 for details; please report this)", EXIT_FAILED)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="csrnet-retouch")
def main() -> None:
    """CSRNet photo retouching: enhance photos, convert checkpoints, train and evaluate models."""


def _load(model: str):
    from .weights import load_model

    return load_model(model)


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("-o", "--output", "out_raw", default=None,
              help="Output folder (created if missing), or with one input an output file name (result.jpg); with --engine ray also "
                   "an object-store URL (s3://bucket/prefix). Default: beside each input.")
@click.option("-m", "--model", default=None, help="Bundled model name, .safetensors weights or released .pth. Default: auto.")
@click.option("-s", "--strength", type=click.FloatRange(0.0, 2.0), default=1.0, show_default=True, help="0 = original, 1 = full effect.")
@click.option("--exact", is_flag=True, help="Run the network on every pixel instead of the baked 3D lattice (slower).")
@click.option("--suffix", default=None, help="Added to output file names. Default: '_csrnet' beside inputs, '' with --output.")
@click.option("--format", "fmt", type=click.Choice(output_formats()), default=None, help="Output format. Default: the input's.")
@click.option("-q", "--quality", type=click.IntRange(1, 100), default=95, show_default=True, help="JPEG/WebP quality.")
@click.option("--long-edge", type=click.IntRange(16), default=None, help="Resize outputs to this long edge in pixels (never enlarged).")
@click.option("-r", "--recursive", is_flag=True, help="Descend into sub-folders of folder arguments.")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs (inputs are never replaced).")
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=file_workers(), show_default=True, help="Files processed at once.")
@click.option("--max-pixels", type=click.IntRange(1), default=None, help="Refuse larger images (decompression-bomb guard). Default 250 MP.")
@click.option("--style", default=None, help="Blend models instead of --model: 'modelA:0.7,modelB:0.3'.")
@click.option("--style-mode", type=click.Choice(["lut", "modulation"]), default="lut", show_default=True,
              help="Blend the models' transforms (any models) or their modulations (models sharing a base network).")
@click.option("--smooth", type=click.FloatRange(0.0, 60.0), default=0.5, show_default=True,
              help="Video: seconds of the centred window the look is averaged over (reset at cuts); 0 = every frame on its own.")
@click.option("--lut-per-clip", is_flag=True, help="Video: one look (3D LUT) for the whole clip, from sampled frames.")
@click.option("--crf", type=click.IntRange(0, 51), default=18, show_default=True, help="Video: libx264/libx265 CRF (lower = better).")
@click.option("--codec", type=click.Choice(["same", "h264", "hevc", "prores"]), default="same", show_default=True, help="Video: output codec.")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="ray: run the collection on Ray Data (a local instance, or --address); sources and -o may be fsspec URLs.")
@click.option("--address", default=None, help="With --engine ray: the cluster ('auto', 'ray://HOST:10001'); default: start a local instance.")
@click.option("--workers", type=click.IntRange(1), default=None, help="With --engine ray: actor-pool size (default: the cluster's CPUs).")
@click.option("--manifest", default=None, help="With --engine ray: where the Parquet manifest goes (default: OUT/csrnet-manifest.parquet).")
@click.option("--report", is_flag=True, help="With --engine ray: print a summary of the manifest at the end.")
@click.option("--watch", is_flag=True, help="Hot folder: keep running and enhance new photos as they arrive (Ctrl-C to stop).")
@click.option("--interval", type=click.FloatRange(0.05), default=1.0, show_default=True, help="With --watch: seconds between looks at the folders.")
def enhance(paths, out_raw, model, strength, exact, suffix, fmt, quality, long_edge, recursive, overwrite, jobs, max_pixels,
            style, style_mode, smooth, lut_per_clip, crf, codec, engine, address, workers, manifest, report, watch, interval) -> None:
    """Retouch photos and video clips (files, folders, globs; '-' reads stdin and writes stdout); outputs keep
    EXIF/ICC metadata (photos) and audio, timing and colour tags (video)."""
    from .batch import enhancer
    from .io.photo import DEFAULT_MAX_PIXELS

    quiet_library_warnings()
    if style and model:
        fail("give either --model or --style, not both")
    if engine == "ray":
        if watch or paths == ("-",):
            fail("--engine ray takes folders, files or URLs (not --watch or '-')")
        runs.enhance_on_ray(paths, out_raw, model or _default_model(), style=style, style_mode=style_mode, strength=strength, exact=exact, suffix=suffix, fmt=fmt,
                        quality=quality, long_edge=long_edge, recursive=recursive, overwrite=overwrite, max_pixels=max_pixels,
                        address=address, workers=workers, manifest=manifest, report=report)
        return
    out_dir = Path(out_raw) if out_raw is not None else None
    if style:
        from .pipeline import parse_style

        net = parse_style(style, style_mode)
    else:
        net = _load(model or _default_model())
    retouch = enhancer(net, strength=strength, exact=exact, long_edge=long_edge)
    options = {"fmt": fmt, "quality": quality, "overwrite": overwrite, "max_pixels": max_pixels or DEFAULT_MAX_PIXELS}
    if paths == ("-",):
        runs.enhance_stdio(retouch, out_dir, options)
        return
    out_file = runs.output_file(out_dir, paths)
    if out_file is None and out_dir is not None:
        if out_dir.exists() and not out_dir.is_dir():
            fail(f"{out_dir}: output path exists and is not a folder")
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            fail(f"{out_dir}: cannot create output folder ({e.strerror or e})")
    if suffix is None:
        suffix = "" if out_dir is not None else "_csrnet"
    if watch:
        if out_file is not None:
            fail("--watch writes into a folder: give -o FOLDER, not a file name")
        runs.watch(paths, recursive, out_dir, suffix, retouch, options, jobs, interval)
        return
    videos = [p for p in paths if runs.is_video_path(p)]
    if videos:  # clips run one at a time, each on every core; photos keep the batch below
        video_failed = runs.run_videos(videos, out_dir, suffix, net, strength, smooth, lut_per_clip, crf, codec, overwrite)
        paths = tuple(p for p in paths if p not in videos)
        if not paths:
            sys.exit(EXIT_FAILED if video_failed else EXIT_OK)
    runs.run_files(paths, recursive, out_dir, out_file, suffix, retouch, options, jobs)


def _default_model() -> str:
    from .weights import list_models

    if "auto" in list_models():
        return "auto"
    fail("no bundled default model in this install: pass --model WEIGHTS (a .safetensors file or the released .pth)")
    return ""


@main.command("lut")
@click.argument("photos", nargs=-1, required=True)
@click.option("-o", "--output", "output", type=click.Path(path_type=Path), default=None,
              help="Export: the .cube file to write (default: PHOTO's name with .cube). With --apply: output folder (default: beside each photo).")
@click.option("--size", type=click.Choice(["17", "33", "65"]), default="33", show_default=True, help="Export: LUT_3D_SIZE.")
@click.option("-m", "--model", default=None, help="Export: bundled model name, .safetensors or .pth. Default: auto.")
@click.option("-s", "--strength", type=click.FloatRange(0.0, 2.0), default=1.0, show_default=True, help="Export: 0 = identity, 1 = full effect.")
@click.option("--apply", "apply_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Apply this .cube file (ours or any tool's) to PHOTOS instead of exporting.")
@click.option("--suffix", default=None, help="With --apply: added to output names. Default: '_<cube name>' beside inputs, '' with -o.")
@click.option("--format", "fmt", type=click.Choice(output_formats()), default=None, help="With --apply: output format. Default: the input's.")
@click.option("-q", "--quality", type=click.IntRange(1, 100), default=95, show_default=True, help="JPEG quality.")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
def lut_cmd(photos, output, size, model, strength, apply_path, suffix, fmt, quality, overwrite) -> None:
    """Export a photo's look as a .cube 3D LUT (csrnet lut PHOTO -o look.cube), or apply one (--apply look.cube PHOTO...)."""
    if apply_path is None:
        from .looks import export_look

        if len(photos) != 1:
            fail("export takes one PHOTO (to apply a .cube file, use --apply LOOK.cube PHOTO...)")
        target = output if output is not None else Path(photos[0]).with_suffix(".cube")
        if runs.is_video_path(photos[0]):  # a clip's look: one lattice from frames sampled across it
            from .video import export_clip_lut

            click.echo(str(export_clip_lut(photos[0], target, model or _default_model(), size=int(size), strength=strength, overwrite=overwrite)))
            return
        click.echo(str(export_look(photos[0], target, model or _default_model(), size=int(size), strength=strength, overwrite=overwrite)))
        return
    from .batch import Report, Retouch, collect_inputs, plan_jobs, run_batch
    from .io.cube import apply_cube, read_cube
    from .weights import sha256_file

    look = read_cube(apply_path)
    retouch = Retouch(lambda pixels: apply_cube(pixels, look), {"look": f"{apply_path.name}@{sha256_file(apply_path)[:8]}"})
    if output is not None:
        output.mkdir(parents=True, exist_ok=True)
    suffix = ("" if output is not None else f"_{apply_path.stem}") if suffix is None else suffix
    own: list[Path] = []
    inputs, errors = collect_inputs(photos, exclude_suffix=suffix if output is None else "", own_outputs=own)
    jobs_list, plan_errors = plan_jobs(inputs, output, suffix=suffix, fmt=fmt)
    report = Report(errors=errors + plan_errors, own_outputs=len(own))
    # the same parallel file path as `csrnet enhance`, with the .cube's table in the lattice kernel
    report.results = run_batch(jobs_list, retouch, workers=file_workers(), fmt=fmt, quality=quality, overwrite=overwrite)
    for line in report.failures:
        click.echo(f"csrnet: failed: {line}", err=True)
    for result in report.results:
        if result.status == "done":
            click.echo(str(result.job.dst))
    click.echo(f"csrnet: {one_line(report.summary(done='done'))}", err=True)
    sys.exit(report.exit_code)


@main.command()
@click.argument("src", type=click.Path(path_type=Path))
@click.argument("dst", type=click.Path(path_type=Path))
@click.option("--condition-size", type=int, default=500, show_default=True, help="Long edge (px) the checkpoint's condition network was trained at; 0 = full resolution.")
@click.option("--overwrite", is_flag=True, help="Replace DST if it exists.")
def convert(src: Path, dst: Path, condition_size: int, overwrite: bool) -> None:
    """Convert a released CSRNet .pth checkpoint to torch-free safetensors weights."""
    from .weights import convert_checkpoint

    if dst.exists() and not overwrite:
        fail(f"{dst}: exists (use --overwrite to replace it)")
    model = convert_checkpoint(src, dst, condition_size=condition_size or None)
    click.echo(f"{dst}: {model.arch}, {model.num_parameters:,} parameters, condition size {model.condition_size}")


@main.command("models")
@click.argument("names", nargs=-1)
@click.option("--card", "show_card", is_flag=True, help="Print the full model card (of NAMES, or of every model).")
def models_cmd(names: tuple[str, ...], show_card: bool) -> None:
    """List the bundled models (csrnet models), or show some: csrnet models --card auto."""
    from .weights import list_models, load_model

    bundled = list_models()
    if not bundled:
        click.echo("no bundled models")
    unknown = [n for n in names if n not in bundled]
    if unknown:
        fail(f"no bundled model {unknown[0]!r} (bundled: {', '.join(bundled)})")
    for name, path in bundled.items():
        if names and name not in names:
            continue
        m = load_model(name)
        click.echo(f"{name}\t{m.arch}\t{m.num_parameters:,} params\t{m.description}")
        card = path.with_suffix(".md")
        if show_card and card.exists():
            click.echo(card.read_text())


@main.command()
@click.option("--pairs", "pairs_dir", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Training pairs: input/ + target/ folders matched by file name (or the released-code / 3D-LUT layouts).")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Run folder: checkpoints, log.csv, tb/, model.safetensors.")
@click.option("--val", "val_dir", type=click.Path(path_type=Path, file_okay=False), default=None, help="Separate validation pairs.")
@click.option("--val-fraction", type=click.FloatRange(0.0, 0.9), default=0.0, show_default=True, help="Hold out this share of --pairs for validation.")
@click.option("--list", "list_file", type=click.Path(path_type=Path, dir_okay=False), default=None, help="Train only on the names in this list file.")
@click.option("--init", default=None, help="Start from these weights (bundled name, .safetensors, released .pth).")
@click.option("--freeze", type=click.Choice(["base", "condition"]), default=None, help="Train only the conditional branch (base) or only the base network (condition).")
@click.option("--recipe", type=click.Choice(["fast", "paper"]), default="fast", show_default=True)
@click.option("--arch", type=click.Choice(sorted(architectures())), default=None,
              help="Network (default: the --init model's, else csrnet; csrnet-hist adds a colour-statistics branch).")
@click.option("--iters", type=click.IntRange(1), default=None, help="Training steps (default: the recipe's; schedules scale with it).")
@click.option("--condition-size", type=click.IntRange(16), default=None, help="Long edge (px) the condition network sees (default: the init model's, else 500).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--resume", is_flag=True, help="Continue a killed run from its last checkpoint.")
@click.option("--minutes", type=click.FloatRange(0.1), default=None, help="Stop (with a checkpoint and export) after this much wall time.")
@click.option("--threads", type=click.IntRange(1), default=None, help="CPU threads (default: the idle cores).")
@click.option("--device", default=None, help="torch device (default: cuda when available, else cpu).")
def train(pairs_dir, out_dir, val_dir, val_fraction, list_file, init, freeze, recipe, arch, iters, condition_size, seed, resume, minutes, threads, device) -> None:
    """Train or fine-tune a model on before/after pairs; exports torch-free weights with a model card."""
    try:
        from .training.train import train as run_train
    except ImportError:
        fail("training needs PyTorch: pip install 'csrnet-retouch[train]'")
    weights = run_train(pairs_dir, out_dir, val_dir=val_dir, val_fraction=val_fraction, list_file=list_file, init=init,
                        freeze=freeze, recipe=recipe, arch=arch, iters=iters, condition_size=condition_size, seed=seed,
                        resume=resume, max_seconds=minutes * 60 if minutes else None, threads=threads, device=device)
    from .weights import load_model

    metrics = load_model(weights).meta.get("metrics", {})
    for split in ("val", "train"):
        if metrics.get(f"{split}_psnr") is not None and metrics.get(f"{split}_identity_psnr") is not None:
            click.echo(f"{split} PSNR: {metrics[f'{split}_psnr']:.2f} dB (identity {metrics[f'{split}_identity_psnr']:.2f} dB)", err=True)
    click.echo(str(weights))


@main.command()
@click.option("--pairs", "pairs_dir", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Paired dataset: input/ + target/ folders (or the released-code / 3D-LUT layouts).")
@click.option("-m", "--model", "models", multiple=True,
              help="Model to score (bundled name, .safetensors or released .pth); repeatable. "
                   "The identity row (input vs target) is always included.")
@click.option("--report", "report_dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Write metrics.csv, metrics.md and contact_sheet.png to this folder.")
@click.option("--list", "list_file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Evaluate only the image names listed in this file (one per line).")
@click.option("--split", type=click.Choice(["test", "train"]), default="test", show_default=True,
              help="Which half of dataset layouts that have both.")
@click.option("--exact", is_flag=True, help="Run the network on every pixel instead of the baked 3D lattice.")
@click.option("--condition-size", default="model", show_default=True,
              help="Long edge (px) the condition network sees: 'model' (stored in the weights), 'full', or a number.")
def evaluate(pairs_dir, models, report_dir, list_file, split, exact, condition_size) -> None:
    """Score models against retouched targets: PSNR, SSIM, 3D-LUT SSIM, ΔE76, ΔE2000 per image and mean."""
    from .evaluation.evaluate import evaluate as run_evaluate

    if condition_size == "full":
        cs = None
    elif condition_size == "model":
        cs = "model"
    elif condition_size.isdigit():
        cs = int(condition_size)
    else:
        raise click.BadParameter("use 'model', 'full' or a number of pixels", param_hint="--condition-size")
    result = run_evaluate(pairs_dir, list(models), report_dir, exact=exact, condition_size=cs,
                          progress=True, list_file=list_file, split=split)
    click.echo(result.to_markdown(), nl=False)
    for kind, path in result.files.items():
        click.echo(f"{kind.replace('_', ' ')}: {path}", err=True)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (127.0.0.1: this computer only).")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("-m", "--model", default="auto", show_default=True, help="The page's default model: bundled name or .safetensors/.pth weights.")
@click.option("--max-pixels", type=click.IntRange(1), default=None, help="Refuse larger images (decompression-bomb guard). Default 250 MP.")
def web(host, port, model, max_pixels) -> None:
    """Start the local web app: retouch photos in the browser at http://HOST:PORT/ (no internet needed)."""
    try:
        import uvicorn

        from .web.app import create_app
    except ImportError:
        fail('the web app needs FastAPI and uvicorn: pip install "csrnet-retouch[web]"')
    from .io.photo import DEFAULT_MAX_PIXELS

    from .web.guards import LOOPBACK_HOSTS

    # the Host headers served: loopback names, plus the address asked for; listening on every
    # interface (0.0.0.0, ::) means being reached by any name, so the Host check is off then
    hosts = ["*"] if host in ("0.0.0.0", "::", "") else list(dict.fromkeys([*LOOPBACK_HOSTS, host]))
    app = create_app(model, max_pixels=max_pixels or DEFAULT_MAX_PIXELS, allowed_hosts=hosts)
    _check_port_free(host, port)
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"csrnet: serving on http://{shown}:{port}/ (Ctrl-C to stop)", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")


def _check_port_free(host: str, port: int) -> None:
    """Fail with one line, before saying "serving", when the address cannot be listened on."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, addr = infos[0]
        with socket.socket(family, kind, proto) as sock:
            sock.bind(addr)
    except OSError as e:
        reason = "the port is in use (another csrnet web or server?); choose another with --port" if e.errno in (98, 48, 10048) else (e.strerror or str(e))
        fail(f"cannot listen on {host}:{port}: {reason}")


if __name__ == "__main__":
    main()
