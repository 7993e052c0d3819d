"""`csrnet enhance|lut|models` options that no other test ran (issue 19, "Never run"): -r mirrors
sub-folders and without it they are not entered, globs are expanded by csrnet, --style/--style-mode
blend as documented, -q sets the JPEG quality, `csrnet lut --size/-s`, `csrnet models --card`.

Outputs are compared with what the Python API gives for the same input (PNG outputs: exact pixels).
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import csrnet
from csrnet.cli import main
from csrnet.io.cube import read_cube
from csrnet.io.formats import read_photo
from csrnet.io.marks import read_mark
from csrnet.kernels.lattice import identity_lattice
from csrnet.weights import Model, save_model

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NAMES = ["gcompris_farm-owl.jpg", "gcompris_animal-giraffe.jpg", "cathedral_underexposed.jpg", "gcompris_monument-berlin-cathedral.jpg"]
CLI = [sys.executable, "-m", "csrnet.cli"]


def photo(path: Path, i: int, size=(96, 64)) -> Path:
    """A small real photo (example ``i``, shifted crop so no two are alike), in the format of ``path``'s suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.open(EXAMPLES / NAMES[i % len(NAMES)]).convert("RGB")
    w, h = im.size
    im = im.crop((i * 7 % (w // 4), i * 5 % (h // 4), w - 1, h - 1)).resize(size)
    im.save(path, quality=92) if path.suffix.lower() in (".jpg", ".jpeg") else im.save(path)
    return path


def invoke(*args) -> tuple[int, str]:
    r = CliRunner().invoke(main, [str(a) for a in args])
    assert r.exception is None or isinstance(r.exception, SystemExit), r.output
    return r.exit_code, r.output


def expected(src: Path, model, **kw) -> np.ndarray:
    """What the Python API makes of ``src`` (read as `csrnet enhance` reads it)."""
    return csrnet.enhance(read_photo(src, as_array=True).pixels, model, **kw)


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def one_error_line(output: str) -> str:
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("csrnet: error: ") and "Traceback" not in output, output
    return lines[0]


# ------------------------------------------------------------------------------------------ -r
def test_recursive_mirrors_sub_folders_and_without_it_they_are_not_entered(tmp_path):
    shoot = tmp_path / "shoot"
    srcs = {"a.png": 0, "b.jpg": 1, "day1/c.png": 2, "day1/night/d.png": 3, "day2/e.jpg": 4, ".hidden/f.png": 5}
    for rel, i in srcs.items():
        photo(shoot / rel, i)
    (shoot / "day1" / "notes.txt").write_text("not a photo")

    out = tmp_path / "out"
    code, output = invoke("enhance", shoot, "-r", "-o", out, "-m", "exposure", "--format", "png")
    assert code == 0, output
    want = {"a.png": "a.png", "b.png": "b.jpg", "day1/c.png": "day1/c.png", "day1/night/d.png": "day1/night/d.png", "day2/e.png": "day2/e.jpg"}
    assert files(out) == set(want)  # exact relative paths; hidden folders and non-photos left out
    for dst, src in want.items():  # each output is its own input's retouch, not a neighbour's
        assert np.array_equal(pixels(out / dst), expected(shoot / src, "exposure")), dst

    flat = tmp_path / "flat"
    code, output = invoke("enhance", shoot, "-o", flat, "-m", "exposure", "--format", "png")
    assert code == 0, output
    assert files(flat) == {"a.png", "b.png"} and not [p for p in flat.iterdir() if p.is_dir()]

    # -r without -o: each output beside its input, in every sub-folder
    code, output = invoke("enhance", shoot, "-r", "-m", "exposure")
    assert code == 0, output
    assert {f for f in files(shoot) if "_csrnet" in f} == {"a_csrnet.png", "b_csrnet.jpg", "day1/c_csrnet.png",
                                                           "day1/night/d_csrnet.png", "day2/e_csrnet.jpg"}


# ---------------------------------------------------------------------------------------- globs
def test_quoted_globs_are_expanded_by_csrnet(tmp_path):
    shoot = tmp_path / "shoot"
    for i, rel in enumerate(["x1.jpg", "x2.jpg", "y.png", "X3.JPG", "sub/x4.jpg", "x5.jpg.txt"]):
        photo(shoot / rel, i) if not rel.endswith(".txt") else (shoot / rel).write_text("no")
    # quoted, so the shell passes the pattern itself: csrnet expands it
    r = subprocess.run(" ".join(CLI) + " enhance 'shoot/*.jpg' -o out -m exposure", shell=True, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    assert files(tmp_path / "out") == {"x1.jpg", "x2.jpg"}
    assert "2 enhanced" in r.stderr

    code, output = invoke("enhance", f"{shoot}/x[13-4].*", f"{shoot}/*.png", "-o", tmp_path / "out2", "-m", "exposure", "--format", "png")
    assert code == 0, output
    assert files(tmp_path / "out2") == {"x1.png", "y.png"}
    assert np.array_equal(pixels(tmp_path / "out2" / "x1.png"), expected(shoot / "x1.jpg", "exposure"))

    code, output = invoke("enhance", f"{shoot}/**/*.jpg", "-o", tmp_path / "out3", "-m", "exposure")
    assert code == 0, output
    assert files(tmp_path / "out3") == {"x1.jpg", "x2.jpg", "x4.jpg"}  # ** descends; a glob's files keep their own names

    code, output = invoke("enhance", f"{shoot}/*.gif", "-o", tmp_path / "out4", "-m", "exposure")
    assert code == 1 and f"{shoot}/*.gif: no file matches" in output
    assert not (tmp_path / "out4").exists() or not files(tmp_path / "out4")


# --------------------------------------------------------------------------------- --style
@pytest.fixture
def shared_base_style(tmp_path) -> Path:
    """A style sharing auto's base network (as `csrnet train --freeze base` makes): other modulations."""
    auto = csrnet.load_model("auto")
    rng = np.random.default_rng(0)
    tensors = {k: v + rng.normal(0, 0.05, v.shape).astype(np.float32) if k.startswith(("cond_scale", "cond_shift")) else v.copy()
               for k, v in auto.tensors.items()}
    return save_model(Model(tensors, dict(auto.meta), name="mystyle"), tmp_path / "mystyle.safetensors")


def test_style_and_style_mode_blend_as_documented(tmp_path, shared_base_style):
    src = photo(tmp_path / "in" / "p.png", 2, size=(160, 120))
    out = tmp_path / "out"

    # lut (default): the models' transforms mixed; what the API's Blend gives, and halfway between the two models
    spec = "auto:0.5,exposure:0.5"
    code, output = invoke("enhance", src, "-o", out / "lut.png", "--style", spec)
    assert code == 0, output
    got = pixels(out / "lut.png")
    assert np.array_equal(got, expected(src, csrnet.parse_style(spec, "lut")))
    a, e = expected(src, "auto").astype(float), expected(src, "exposure").astype(float)
    assert np.abs(a - e).max() > 10  # the two looks differ, so "halfway" means something
    assert np.abs(got - (a + e) / 2).max() <= 1.0
    assert "(lut blend)" in read_mark(out / "lut.png")

    # modulation: one base network with the mixed modulations (models sharing a base network)
    spec = f"auto:0.6,{shared_base_style}:0.4"
    code, output = invoke("enhance", src, "-o", out / "mod.png", "--style", spec, "--style-mode", "modulation")
    assert code == 0, output
    got = pixels(out / "mod.png")
    assert np.array_equal(got, expected(src, csrnet.parse_style(spec, "modulation")))
    assert not np.array_equal(got, expected(src, csrnet.parse_style(spec, "lut")))
    assert "(modulation blend)" in read_mark(out / "mod.png")

    # bad styles: one line, exit 2, nothing written
    for args, says in [
        (["--style", "auto:0.5,exposure:0.5", "--style-mode", "modulation"], "base network differs"),
        (["--style", "nope:1"], "nope"),
        (["--style", "auto:lots"], "is not a number"),
        (["--style", "auto"], "expected MODEL:WEIGHT"),
        (["--style", "auto:1", "-m", "exposure"], "either --model or --style"),
        (["--style", "auto:1", "--style-mode", "average"], None),
    ]:
        code, output = invoke("enhance", src, "-o", out / "bad.png", *args)
        assert code == 2, (args, output)
        if says is not None:
            assert says in one_error_line(output), (args, output)
        assert not (out / "bad.png").exists()


# ------------------------------------------------------------------------------- -q (quality)
def test_q_sets_the_jpeg_quality(tmp_path):
    """-q is --quality (README: ``[-q QUALITY]``): the JPEG is what Pillow writes at that quality."""
    src = photo(tmp_path / "p.png", 1, size=(160, 120))
    api = expected(src, "exposure")
    sizes = {}
    for q in (30, 95):
        dst = tmp_path / f"q{q}.jpg"
        code, output = invoke("enhance", src, "-o", dst, "-m", "exposure", "-q", q)
        assert code == 0, output
        ref = io.BytesIO()
        Image.fromarray(api).save(ref, "JPEG", quality=q)
        with Image.open(dst) as got, Image.open(ref) as want:
            assert got.quantization == want.quantization
            assert np.array_equal(np.asarray(got), np.asarray(want))
        sizes[q] = dst.stat().st_size
    assert sizes[30] < sizes[95]
    for bad in ("0", "101"):
        code, output = invoke("enhance", src, "-o", tmp_path / "bad.jpg", "-m", "exposure", "-q", bad)
        assert code == 2 and "quality" in output.lower() and not (tmp_path / "bad.jpg").exists()


# ----------------------------------------------------------------------------------- csrnet lut
def test_lut_size_and_strength(tmp_path):
    src = photo(tmp_path / "p.png", 0, size=(160, 120))
    px = read_photo(src, as_array=True).pixels
    for size in (17, 33):  # 33 is the default, 17 is not
        cube = tmp_path / f"s{size}.cube"
        code, output = invoke("lut", src, "-o", cube, "--size", size, "-m", "exposure")
        assert code == 0 and output.strip() == str(cube), output
        lines = cube.read_text().splitlines()
        assert f"LUT_3D_SIZE {size}" in lines[:4]
        assert len([ln for ln in lines if ln[:1].isdigit()]) == size**3
        table = read_cube(cube).table.reshape(-1, 3)
        api = np.clip(csrnet.bake_lut(px, "exposure", size), 0, 1)
        assert np.abs(table - api).max() < 1e-5
    code, output = invoke("lut", src, "-o", tmp_path / "bad.cube", "--size", "20", "-m", "exposure")
    assert code == 2 and not (tmp_path / "bad.cube").exists()

    tables = {}
    for s in ("1", "0.5", "0"):
        code, output = invoke("lut", src, "-o", tmp_path / f"k{s}.cube", "--size", "17", "-s", s, "-m", "exposure")
        assert code == 0, output
        tables[s] = read_cube(tmp_path / f"k{s}.cube").table.reshape(-1, 3)
    ident = identity_lattice(17)
    assert np.abs(tables["0"] - ident).max() < 1e-6
    full, half = tables["1"], tables["0.5"]
    inside = (full > 0) & (full < 1)  # the file is clipped: halfway is exact where the full look was not
    assert inside.mean() > 0.8 and np.abs(full - ident).max() > 0.1
    assert np.abs(half - (ident + full) / 2)[inside].max() < 1e-5
    assert 'strength 0.5"' in (tmp_path / "k0.5.cube").read_text().splitlines()[0]


# -------------------------------------------------------------------------------- models --card
def test_models_card_prints_that_models_card():
    from csrnet.weights import list_models

    bundled = list_models()
    r = subprocess.run(CLI + ["models", "--card", "exposure"], capture_output=True, text=True, check=False)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    m = csrnet.load_model("exposure")
    card = bundled["exposure"].with_suffix(".md").read_text()
    assert r.stdout == f"exposure\t{m.arch}\t{m.num_parameters:,} params\t{m.description}\n{card}\n"

    r = subprocess.run(CLI + ["models", "--card", "auto", "csrnet-l-clahe"], capture_output=True, text=True, check=False)
    assert r.returncode == 0
    listed = [ln.split("\t")[0] for ln in r.stdout.splitlines() if "\t" in ln and ln.split("\t")[0] in bundled]
    assert listed == ["auto", "csrnet-l-clahe"]
    for name in ("auto", "csrnet-l-clahe"):
        assert bundled[name].with_suffix(".md").read_text() in r.stdout
    assert bundled["exposure"].with_suffix(".md").read_text() not in r.stdout

    r = subprocess.run(CLI + ["models", "--card", "nope"], capture_output=True, text=True, check=False)
    assert r.returncode == 2 and r.stdout == ""
    assert one_error_line(r.stderr).startswith("csrnet: error: no bundled model 'nope' (bundled: auto")
