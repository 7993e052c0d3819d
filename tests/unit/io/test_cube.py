""".cube export and apply, verified with real tools: ffmpeg's lut3d filter and colour-science's reader."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import csrnet
from csrnet.cli import main
from csrnet.io.cube import apply_cube, read_cube, write_cube
from csrnet.errors import CsrnetError
from csrnet.kernels.lut import apply_lut_array

from tests.conftest import PHOTOS, need, need_module


def _psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    return float(10 * np.log10(peak**2 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)))


def _ffmpeg() -> str:
    exe = shutil.which("ffmpeg")
    need(exe, "ffmpeg not installed (.ci/run installs it)")
    return exe


@pytest.fixture
def photo_png(tmp_path, shared):
    """A real photo as lossless PNG (so ffmpeg and Pillow decode the very same pixels)."""
    path = tmp_path / "bison.png"
    Image.open(PHOTOS / "gcompris_animal-bison.jpg").convert("RGB").resize((512, 384), Image.Resampling.LANCZOS).save(path)
    return path


def _ffmpeg_apply(src, cube, dst, interp: str) -> np.ndarray:
    subprocess.run([_ffmpeg(), "-loglevel", "error", "-y", "-i", str(src), "-vf", f"lut3d=file={cube}:interp={interp}", str(dst)], check=True)
    return np.asarray(Image.open(dst).convert("RGB"))


def test_export_matches_enhance_in_ffmpeg(tmp_path, photo_png, ref_weights):
    runner = CliRunner()
    cube = tmp_path / "look.cube"
    res = runner.invoke(main, ["lut", str(photo_png), "-o", str(cube), "-m", str(ref_weights)])
    assert res.exit_code == 0, res.output
    text = cube.read_text().splitlines()
    assert text[0].startswith('TITLE "csrnet look of bison.png') and "LUT_3D_SIZE 33" in text
    assert "DOMAIN_MIN 0.0 0.0 0.0" in text and "DOMAIN_MAX 1.0 1.0 1.0" in text
    res = runner.invoke(main, ["enhance", str(photo_png), "-m", str(ref_weights), "--suffix", "_enh"])
    assert res.exit_code == 0, res.output
    enhanced = np.asarray(Image.open(tmp_path / "bison_enh.png"))
    original = np.asarray(Image.open(photo_png))
    assert _psnr(original, enhanced) < 35  # the look is not the identity, so the match below means something
    for interp in ("trilinear", "tetrahedral"):  # ours, and ffmpeg's default
        assert _psnr(_ffmpeg_apply(photo_png, cube, tmp_path / f"ff_{interp}.png", interp), enhanced) >= 45
    # --apply: our engine on the same file agrees with ffmpeg (and so with enhance)
    res = runner.invoke(main, ["lut", "--apply", str(cube), str(photo_png), "--format", "png"])
    assert res.exit_code == 0, res.output
    applied = np.asarray(Image.open(tmp_path / "bison_look.png"))
    assert _psnr(applied, enhanced) >= 45
    assert _psnr(applied, _ffmpeg_apply(photo_png, cube, tmp_path / "ff.png", "trilinear")) >= 50


def test_colour_science_reads_the_same_table(tmp_path, photo_png, ref_model):
    colour = need_module("colour")
    image = np.asarray(Image.open(photo_png))
    table = csrnet.bake_lut(image, ref_model, 17, strength=0.8)
    path = write_cube(tmp_path / "t.cube", table, 17, title="test look")
    lut = colour.read_LUT(str(path))
    assert lut.size == 17 and lut.name == "test look"
    ours = np.clip(table, 0, 1).reshape(17, 17, 17, 3)  # [b, g, r]
    np.testing.assert_allclose(lut.table, ours.transpose(2, 1, 0, 3), atol=1e-6)  # colour indexes [r, g, b]
    pts = np.random.default_rng(0).random((2000, 3)).astype(np.float32)
    np.testing.assert_allclose(lut.apply(pts), apply_lut_array(pts[None], np.clip(table, 0, 1), 17)[0], atol=1e-5)
    back = read_cube(path)
    assert back.size == 17 and back.title == "test look"
    np.testing.assert_allclose(back.table, np.clip(table, 0, 1), atol=1e-6)


def test_foreign_cube_with_domain_and_16bit_is_smooth(tmp_path):
    # a hand-written 2-point cube from another tool: swaps red and blue, input domain 0..2
    nodes = [(b, g, r) for b in (0, 1) for g in (0, 1) for r in (0, 1)]  # red fastest
    body = "\n".join(f"{b} {g} {r}" for b, g, r in nodes)
    path = tmp_path / "swap.cube"
    path.write_text(f"# comment\nTITLE \"swap\"\nLUT_3D_SIZE 2\nDOMAIN_MIN 0 0 0\nDOMAIN_MAX 2 2 2\n\n{body}\n")
    cube = read_cube(path)
    assert cube.domain_max == (2.0, 2.0, 2.0)
    ramp = np.arange(65536, dtype=np.uint32).reshape(256, 256)
    img = np.stack([ramp, ramp // 2, 65535 - ramp], axis=-1).astype(np.uint16)
    out = apply_cube(img, cube)
    assert out.dtype == np.uint16
    want = np.stack([img[..., 2], img[..., 1], img[..., 0]], axis=-1) / 2.0  # swapped, halved by the domain
    assert np.abs(out - want).max() <= 1.0
    assert len(np.unique(out[..., 0])) > 4096  # 16-bit in, no 8-bit steps
    pil = apply_cube(Image.fromarray((img >> 8).astype(np.uint8)), cube)
    assert isinstance(pil, Image.Image) and pil.size == (256, 256)


def test_bad_cube_files_are_one_line_errors(tmp_path):
    cases = {
        "short.cube": "LUT_3D_SIZE 2\n0 0 0\n1 1 1\n",
        "none.cube": "TITLE \"x\"\n0 0 0\n",
        "oned.cube": "LUT_1D_SIZE 2\n0 0 0\n1 1 1\n",
        "junk.cube": "LUT_3D_SIZE 2\nhello world\n",
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(CsrnetError) as e:
            read_cube(tmp_path / name)
        assert name in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(CsrnetError):
        write_cube(tmp_path / "x.cube", np.zeros((7, 3)), 2)
