"""`csrnet lut`: the exported .cube names its model; `--apply` runs the lattice kernel on a folder
with the batch's guarantees (parallel files, atomic outputs, skip existing)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from click.testing import CliRunner
from PIL import Image

from csrnet.cli import main
from csrnet.io.cube import read_cube
from csrnet.kernels.lut import apply_lut_uint

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_cube_title_names_the_model_and_apply_uses_the_kernel(tmp_path):
    src = tmp_path / "shots"
    src.mkdir()
    for i, name in enumerate(["gcompris_farm-owl.jpg", "gcompris_animal-giraffe.jpg", "cathedral_underexposed.jpg"]):
        Image.open(EXAMPLES / name).convert("RGB").resize((160, 120)).save(src / f"p{i}.jpg", quality=90)
    runner = CliRunner()
    res = runner.invoke(main, ["lut", str(src / "p0.jpg"), "-o", str(tmp_path / "look.cube"), "-m", "exposure", "-s", "0.8"])
    assert res.exit_code == 0, res.output
    first = (tmp_path / "look.cube").read_text().splitlines()[0]
    assert first == 'TITLE "csrnet look of p0.jpg, model exposure, strength 0.8"'

    res = runner.invoke(main, ["lut", "--apply", str(tmp_path / "look.cube"), str(src), "-o", str(tmp_path / "out"), "--format", "png"])
    assert res.exit_code == 0, res.output
    cube = read_cube(tmp_path / "look.cube")
    for i in range(3):
        x = np.asarray(Image.open(src / f"p{i}.jpg").convert("RGB"))
        got = np.asarray(Image.open(tmp_path / "out" / f"p{i}.png"))
        assert np.array_equal(got, apply_lut_uint(x, cube.table, cube.size))
    again = runner.invoke(main, ["lut", "--apply", str(tmp_path / "look.cube"), str(src), "-o", str(tmp_path / "out"), "--format", "png"])
    assert again.exit_code == 0 and "3 skipped" in again.output
