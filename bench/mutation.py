"""Mutation testing of csrnet's core modules (issue 19): do the fast unit tests fail when the code is wrong?

Command (from the repository root, in the project's venv; mutmut 3 comes with the ``bench`` extra)::

    python bench/mutation.py                    # every module, report in bench/results/ (see the report for times)
    python bench/mutation.py --module cube      # one module (repeat --module for several)
    python bench/mutation.py --list             # the modules, their source files and test subsets
    python bench/mutation.py --module cube --show-survivors   # print each surviving mutant's diff

Other options: ``--jobs N`` (mutants tested at once, default 2), ``--nice N`` (default 5: other work on
the machine keeps priority; mutmut's timeouts count CPU seconds, so niceness causes no false timeouts),
``--keep`` (keep the scratch project, e.g. for ``mutmut browse`` in it), ``--no-report``.

Tool: mutmut 3 (maintained; ``pip install mutmut``). It mutates each function of the chosen file,
records which tests call which function, then tests every mutant in a fork of one warm process with
only the tests that reach the mutated function (``pytest -x``) — a mutant costs a fraction of a
second to a few seconds, where cosmic-ray would start a fresh interpreter (and re-import numpy,
scipy and the test modules) per mutant.

How a module is run: a scratch project in the temporary folder, outside the repository, holding
symbolic links to tests/, examples/, docs/, bench/ and ../shared (tests/conftest.py finds the shared
data beside the project root), a copy of src/ as committed (git HEAD: another engineer's edit in
progress never reaches the mutants; ``--worktree`` takes the working tree as it is; files git does
not track, such as the compiled kernel, come from the working tree) and a copy of pyproject.toml
with a generated ``[tool.mutmut]`` section (``only_mutate`` = the module's file, the module's test files). mutmut copies every file
under src/ into ``<scratch>/mutants/`` (so the compiled kernel ``csrnet/kernels/_lut*.so``, the
bundled ``models/*.safetensors`` and ``web/static`` are there), puts that copy first on sys.path
(ahead of the editable install's src/), and writes only under the scratch folder, which is deleted
afterwards. Nothing is written into the repository but the report.

Counting: every mutant mutmut makes in the module's scope is tested; a survivor may be *judged
equivalent* (no test can observe it) by bench/mutation_equivalents.toml: named mutants (function +
the exact change, each with a reason) and a few rules (e.g. the message text of a ``raise``), each
with its reason; the report lists every mutant so judged. Kill rate = (killed + timeout) / (mutants -
judged equivalent); a timeout (the tests ran past mutmut's CPU limit, e.g. an endless loop) is a
detected mutant. "no tests" mutants (a function no selected test reaches) count as survivors.

The report: bench/results/mutation.md (regenerated from bench/results/mutation.json, which keeps
each module's last run, so running one module updates its row and keeps the others).
"""

from __future__ import annotations

import argparse
import datetime as dt
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
RESULTS = ROOT / "bench" / "results"
EQUIVALENTS = Path(__file__).with_name("mutation_equivalents.toml")


@dataclass(frozen=True)
class Module:
    """One module under mutation: its file, the fast tests that guard it, and optionally which of its
    functions are in scope (mutmut mutant-name globs, e.g. ``csrnet.batch.x_process__mutmut_*``)."""

    source: str
    tests: tuple[str, ...]
    functions: tuple[str, ...] = ()
    deselect: tuple[str, ...] = ()  # test ids left out (slow, and nothing they add)
    note: str = ""


def _fn(module: str, *names: str) -> tuple[str, ...]:
    return tuple(f"{module}.{n}__mutmut_*" for n in names)


MODULES: dict[str, Module] = {
    "pipeline": Module("src/csrnet/pipeline.py", ("tests/unit/test_pipeline_dispatch.py",),
                       note="tiny images with the bundled auto and csrnet-l-clahe models; tests/unit/test_pipeline.py, seconds a mutant on the reference model, is left out"),
    "lattice": Module("src/csrnet/kernels/lattice.py", ("tests/unit/kernels/test_lattice_fit.py",)),
    "lut": Module(
        "src/csrnet/kernels/lut.py",
        ("tests/unit/kernels/test_lut_python.py", "tests/unit/kernels/test_lut_kernel.py", "tests/unit/io/test_cube_apply.py"),
        note="Python side only; the C kernel (_lut.c) is not mutated",
    ),
    "photo": Module(
        "src/csrnet/io/photo.py",
        ("tests/unit/io/test_photo.py", "tests/unit/io/test_formats.py", "tests/unit/io/test_photo_metadata.py",
         "tests/unit/io/test_exif_subdirectories.py"),
    ),
    "marks": Module("src/csrnet/io/marks.py", ("tests/unit/io/test_marks.py",)),
    "formats": Module(
        "src/csrnet/io/formats.py",
        ("tests/unit/io/test_format_table.py", "tests/unit/io/test_formats.py", "tests/unit/io/test_format_detection.py"),
    ),
    "cube": Module(
        "src/csrnet/io/cube.py",
        ("tests/unit/io/test_cube.py", "tests/unit/io/test_cube_files.py", "tests/unit/io/test_cube_apply.py"),
        # 2-3 s each, round trips through colour-science and ffmpeg; test_cube_files.py checks the text itself
        deselect=("tests/unit/io/test_cube.py::test_colour_science_reads_the_same_table",
                  "tests/unit/io/test_cube.py::test_export_matches_enhance_in_ffmpeg"),
    ),
    "atomic": Module("src/csrnet/io/atomic.py", ("tests/unit/io/test_photo.py", "tests/unit/io/test_atomic.py")),
    "metrics": Module("src/csrnet/evaluation/metrics.py", ("tests/unit/evaluation/test_metrics.py", "tests/unit/evaluation/test_metrics_inputs.py")),
    "batch": Module(
        "src/csrnet/batch.py",
        ("tests/unit/test_errors.py", "tests/unit/io/test_format_table.py", "tests/unit/test_batch_outputs.py"),
        functions=_fn("csrnet.batch", "x_output_path", "x_plan_jobs", "x_is_marked", "x__existing", "x_retouch_file", "x_process",
                      "x_run_batch", "xǁReportǁcount", "xǁReportǁsummary"),
        note="the write / skip / conflict part: output naming, planning, retouch_file, process, run_batch, the report's counts",
    ),
}

STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", 36: "timeout",
          -24: "timeout", 24: "timeout", 152: "timeout", 255: "timeout", None: "not checked", -11: "segfault", -9: "segfault"}


# ---------------------------------------------------------------- equivalent mutants
@dataclass
class Change:
    """A mutant as text: its name, its function and the lines it removes and adds."""

    name: str
    removed: list[str]
    added: list[str]

    @property
    def function(self) -> str:
        return self.name.rpartition("__mutmut_")[0]

    def text(self) -> str:
        return " / ".join(self.removed) + "  ->  " + " / ".join(self.added)


@dataclass
class Equivalents:
    mutants: list[dict] = field(default_factory=list)  # name, removed, added, reason
    rules: list[dict] = field(default_factory=list)  # id, reason, sub: [[pattern, replacement]...], optional functions

    @classmethod
    def load(cls, path: Path = EQUIVALENTS) -> "Equivalents":
        data = tomllib.loads(path.read_text("utf-8")) if path.exists() else {}
        return cls(data.get("mutant", []), data.get("rule", []))

    def judge(self, c: Change) -> tuple[str, str] | None:
        """(entry, reason) if ``c`` is judged equivalent, else None."""
        for e in self.mutants:
            same_function = e["name"].rpartition("__mutmut_")[0] == c.function
            if same_function and _norm(e["removed"]) == _norm(" / ".join(c.removed)) and _norm(e["added"]) == _norm(" / ".join(c.added)):
                return e["name"], e["reason"]
        for r in self.rules:
            if r.get("functions") and not any(fnmatch.fnmatch(c.function, f) for f in r["functions"]):
                continue
            if c.removed and c.added and _rewrite(c.removed, r["sub"]) == _rewrite(c.added, r["sub"]):
                return "rule " + r["id"], r["reason"]
        return None


def _norm(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip()


def _rewrite(lines: list[str], subs: list[list[str]]) -> str:
    s = _norm(" ".join(lines))
    for pattern, repl in subs:
        s = re.sub(pattern, repl, s)
    return _norm(s)


# ---------------------------------------------------------------- one module
def _mutmut() -> str:
    exe = Path(sys.executable).with_name("mutmut")
    return str(exe) if exe.exists() else (shutil.which("mutmut") or "mutmut")


def _toml_list(items) -> str:
    return "[" + ", ".join(json.dumps(str(i)) for i in items) + "]"


def _scratch_project(name: str, mod: Module, worktree: bool) -> tuple[Path, Path]:
    scratch = Path(tempfile.mkdtemp(prefix=f"csrnet-mutation-{name}-"))
    project = scratch / "project"
    project.mkdir()
    for d in ("tests", "examples", "docs", "bench"):  # tests/helpers.py imports bench.common
        (project / d).symlink_to(ROOT / d, target_is_directory=True)
    # src/: the committed sources (git HEAD), so that edits in progress in the working tree (another
    # engineer's deliberate bug, say) never reach the mutants; files git does not track (the compiled
    # kernel _lut*.so above all) come from the working tree
    shutil.copytree(ROOT / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    if not worktree:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", "HEAD", "src"], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(project)], input=archive, check=True)
    if SHARED.is_dir():  # tests/conftest.py: ROOT.parent / "shared", ROOT being <project>/mutants
        (project / "shared").symlink_to(SHARED, target_is_directory=True)
    text = re.sub(r"(?ms)^\[tool\.mutmut\].*?(?=^\[|\Z)", "", (ROOT / "pyproject.toml").read_text("utf-8"))
    args = ["-p", "no:cacheprovider", "-m", "not slow"] + [f"--deselect={t}" for t in mod.deselect]
    text += (
        "\n[tool.mutmut]  # generated by bench/mutation.py\n"
        'source_paths = ["src"]\n'
        f"only_mutate = {_toml_list([mod.source])}\n"
        f"pytest_add_cli_args_test_selection = {_toml_list(mod.tests)}\n"
        f"pytest_add_cli_args = {_toml_list(args)}\n"
        'also_copy = ["examples", "docs", "bench"]\n'
        "use_git_change_detection = false\n"
        # fork each mutant from a server that never ran a test: forking the process that ran them (mutmut's
        # default) copies locks held by its worker threads, and a mutant's tests then hang on them (seen in
        # the TIFF/RAW metadata tests) and would be counted as timeouts, i.e. as killed
        'process_isolation = "forkserver"\n'
    )
    (project / "pyproject.toml").write_text(text, "utf-8")
    return scratch, project


def _diffs(project: Path, names: list[str], source: str) -> dict[str, Change]:
    """Each mutant's removed/added lines (mutmut's own diff, read in the scratch project)."""
    from mutmut.configuration import reset_config
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    here = os.getcwd()
    os.chdir(project)
    try:
        reset_config()
        out = {}
        for n in names:
            diff = get_diff_for_mutant(n, path=source)
            lines = diff.splitlines()[2:]
            out[n] = Change(n, [ln[1:].strip() for ln in lines if ln.startswith("-")], [ln[1:].strip() for ln in lines if ln.startswith("+")])
        return out
    finally:
        os.chdir(here)
        reset_config()


def run_module(name: str, mod: Module, *, jobs: int, nice: int, keep: bool, equivalents: Equivalents, worktree: bool = False) -> dict:
    missing = [t for t in mod.tests if not (ROOT / t).exists()]
    if missing:
        print(f"   warning: test files missing, left out: {', '.join(missing)}", flush=True)
        mod = replace(mod, tests=tuple(t for t in mod.tests if t not in missing))
    if not mod.tests:
        raise SystemExit(f"{name}: no test files (mutmut would run the whole suite)")
    scratch, project = _scratch_project(name, mod, worktree)
    log = scratch / "mutmut.log"
    t0 = time.monotonic()
    try:
        with open(log, "w") as out:
            cmd = [_mutmut(), "run", "--max-children", str(jobs), *mod.functions]
            proc = subprocess.run(cmd, cwd=project, stdout=out, stderr=subprocess.STDOUT,
                                  preexec_fn=(lambda: os.nice(nice)) if nice else None)
        seconds = time.monotonic() - t0
        meta = project / "mutants" / (mod.source + ".meta")
        if proc.returncode != 0 or not meta.exists():
            tail = log.read_text(errors="replace")[-3000:]
            raise SystemExit(f"{name}: mutmut failed (exit {proc.returncode}); log {log}:\n{tail}")
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        if mod.functions:
            codes = {k: v for k, v in codes.items() if any(fnmatch.fnmatch(k, f) for f in mod.functions)}
        status = {k: STATUS.get(v, "suspicious") for k, v in codes.items()}
        open_ = [k for k, s in status.items() if s not in ("killed", "timeout")]
        changes = _diffs(project, open_, mod.source)
    finally:
        if not keep:
            shutil.rmtree(scratch, ignore_errors=True)
    equivalent, survivors = [], []
    for k in open_:
        c = changes[k]
        verdict = equivalents.judge(c) if status[k] == "survived" else None
        row = {"name": k, "status": status[k], "change": c.text()}
        if verdict:
            row["by"], row["reason"] = verdict
            equivalent.append(row)
        else:
            survivors.append(row)
    counts = {s: sum(v == s for v in status.values()) for s in ("killed", "survived", "timeout", "no tests", "suspicious", "segfault", "not checked")}
    total = len(status)
    detected = counts["killed"] + counts["timeout"]
    denom = total - len(equivalent)
    return {
        "module": name, "source": mod.source, "tests": list(mod.tests), "deselect": list(mod.deselect), "functions": list(mod.functions),
        "note": mod.note, "date": dt.datetime.now().isoformat(timespec="seconds"), "seconds": round(seconds, 1),
        "mutants": total, **counts, "equivalent": len(equivalent),
        "kill_rate": round(100.0 * detected / denom, 1) if denom else 100.0,
        "equivalents": equivalent, "survivors": survivors, "scratch": str(scratch) if keep else None,
    }


# ---------------------------------------------------------------- report
def _version(pkg: str) -> str:
    from importlib.metadata import version

    return version(pkg)


def table(rows: list[dict]) -> str:
    head = "| module | file | mutants | killed | survived | timeout | no tests | judged equivalent | kill rate (non-equivalent) | run time |\n"
    head += "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    lines = []
    for r in rows:
        other = r["suspicious"] + r["segfault"] + r["not checked"]
        survived = r["survived"] - r["equivalent"] + other
        lines.append(f"| {r['module']} | {r['source'].removeprefix('src/')} | {r['mutants']} | {r['killed']} | {survived} | {r['timeout']} | "
                     f"{r['no tests']} | {r['equivalent']} | {r['kill_rate']:.1f} % | {r['seconds'] / 60:.1f} min |")
    tot = {k: sum(r[k] for r in rows) for k in ("mutants", "killed", "timeout", "no tests", "equivalent", "seconds")}
    surv = sum(r["survived"] - r["equivalent"] + r["suspicious"] + r["segfault"] + r["not checked"] for r in rows)
    denom = tot["mutants"] - tot["equivalent"]
    rate = 100.0 * (tot["killed"] + tot["timeout"]) / denom if denom else 100.0
    lines.append(f"| **all** | | {tot['mutants']} | {tot['killed']} | {surv} | {tot['timeout']} | {tot['no tests']} | {tot['equivalent']} | "
                 f"{rate:.1f} % | {tot['seconds'] / 60:.1f} min |")
    return head + "\n".join(lines) + "\n"


def write_report(rows: list[dict], command: str) -> Path:
    order = list(MODULES)
    rows = sorted(rows, key=lambda r: order.index(r["module"]) if r["module"] in order else 99)
    out = [
        "# Mutation testing (issue 19)",
        "",
        f"Generated by `bench/mutation.py` on {dt.date.today().isoformat()} — mutmut {_version('mutmut')}, pytest {_version('pytest')}, "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, `--jobs` as in the command below.",
        "",
        f"Command: `{command}`. Each module's row comes from its last run (date and time in the details below); "
        f"run time of those runs together {sum(r['seconds'] for r in rows) / 60:.1f} min (mutmut's fork server, 2 mutants at once, "
        "on a machine shared with other test runs). A full run is `python bench/mutation.py`.",
        "",
        "Survived = not killed and not judged equivalent (\"no tests\": mutants in functions no selected test reaches, also survivors). "
        "Kill rate = (killed + timeout) / (mutants - judged equivalent).",
        "",
        table(rows),
    ]
    missing = [m for m in MODULES if m not in {r["module"] for r in rows}]
    if missing:
        out += [f"Not run yet (no result in bench/results/mutation.json): {', '.join(missing)} — configured in MODULES with "
                "their existing unit tests; their subsets run the reference-model tests of tests/unit/test_pipeline.py and "
                "tests/unit/kernels/test_lut_kernel.py, each mutant for seconds, so expect an hour or more each on 2 cores.", ""]
    out += [
        "## Modules, tests and scope",
        "",
    ]
    for r in rows:
        scope = f"; functions: {', '.join(f.split('.')[-1].removesuffix('__mutmut_*') for f in r['functions'])}" if r["functions"] else ""
        des = f"; deselected: {', '.join(d.split('::')[-1] for d in r['deselect'])}" if r["deselect"] else ""
        note = f" ({r['note']})" if r.get("note") else ""
        out.append(f"* **{r['module']}** (`{r['source']}`{note}), run {r['date']}, {r['seconds']:.0f} s: tests {', '.join(f'`{t}`' for t in r['tests'])}{des}{scope}.")
    out += ["", "## Mutants judged equivalent", "",
            "Named mutants and rules are kept in `bench/mutation_equivalents.toml`, each with its reason.", ""]
    for r in rows:
        if not r["equivalents"]:
            continue
        out.append(f"### {r['module']} ({len(r['equivalents'])})")
        out.append("")
        for e in r["equivalents"]:
            by = e["by"] if e["by"].startswith("rule ") else "listed"
            out.append(f"* `{e['name'].split('.')[-1]}` `{e['change']}` — {by}: {e['reason']}")
        out.append("")
    out += ["## Surviving mutants", ""]
    any_left = False
    for r in rows:
        if r["survivors"]:
            any_left = True
            out.append(f"### {r['module']} ({len(r['survivors'])})")
            out.append("")
            out += [f"* `{s['name'].split('.')[-1]}` ({s['status']}) `{s['change']}`" for s in r["survivors"]]
            out.append("")
    if not any_left:
        out.append("None.")
    path = RESULTS / "mutation.md"
    path.write_text("\n".join(out).rstrip() + "\n", "utf-8")
    return path


def _terminate(signum, frame):  # kill/SIGTERM: unwind, so the scratch project is removed
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    import signal

    signal.signal(signal.SIGTERM, _terminate)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--module", action="append", choices=list(MODULES), help="run this module (repeatable; default: all)")
    p.add_argument("--jobs", type=int, default=2, help="mutants tested at once (default 2)")
    p.add_argument("--nice", type=int, default=5, help="niceness of the mutmut processes (default 5)")
    p.add_argument("--worktree", action="store_true", help="mutate the working tree's src/ as it is (default: the committed sources, git HEAD)")
    p.add_argument("--keep", action="store_true", help="keep the scratch project(s) (printed)")
    p.add_argument("--no-report", action="store_true", help="do not update bench/results/mutation.{json,md}")
    p.add_argument("--show-survivors", action="store_true", help="print every surviving mutant's change")
    p.add_argument("--list", action="store_true", help="list the modules and their tests, run nothing")
    p.add_argument("--report-only", action="store_true", help="rewrite bench/results/mutation.md from mutation.json, run nothing")
    args = p.parse_args(argv)
    names = args.module or list(MODULES)
    if args.list:
        for n in names:
            m = MODULES[n]
            print(f"{n:9} {m.source}\n          tests: {' '.join(m.tests)}" + (f"\n          scope: {' '.join(m.functions)}" if m.functions else ""))
        return 0
    if args.report_only:
        rows = list(json.loads((RESULTS / "mutation.json").read_text()).values())
        print(f"report: {write_report(rows, 'python bench/mutation.py --module NAME, per module (dates below)')}")
        return 0
    equivalents = Equivalents.load()
    rows = []
    t0 = time.monotonic()
    for n in names:
        print(f"== {n} ({MODULES[n].source})", flush=True)
        r = run_module(n, MODULES[n], jobs=args.jobs, nice=args.nice, keep=args.keep, equivalents=equivalents, worktree=args.worktree)
        rows.append(r)
        print(f"   {r['mutants']} mutants: {r['killed']} killed, {r['survived'] - r['equivalent']} survived, {r['timeout']} timeout, "
              f"{r['no tests']} no tests, {r['equivalent']} judged equivalent -> {r['kill_rate']:.1f} % in {r['seconds']:.0f} s"
              + (f"; scratch kept: {r['scratch']}" if r["scratch"] else ""), flush=True)
        if args.show_survivors:
            for s in r["survivors"]:
                print(f"   {s['status']:9} {s['name'].split('.')[-1]}: {s['change']}")
    print()
    print(table(rows))
    print(f"total {(time.monotonic() - t0) / 60:.1f} min")
    if not args.no_report:
        RESULTS.mkdir(parents=True, exist_ok=True)
        store = RESULTS / "mutation.json"
        old = json.loads(store.read_text()) if store.exists() else {}
        old.update({r["module"]: r for r in rows})
        store.write_text(json.dumps(old, indent=1, ensure_ascii=False) + "\n", "utf-8")
        command = "python bench/mutation.py " + " ".join(argv if argv is not None else sys.argv[1:])
        print(f"report: {write_report(list(old.values()), command.strip())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
