"""Paired-dataset discovery and decoding (csrnet.data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from csrnet.training.data import OPERATIONS, apply_operation, find_pairs, load_pairs, read_rgb, split_pairs
from csrnet.errors import CsrnetError

from tests.conftest import PAIRS, need_module


def _png(path: Path, h: int = 8, w: int = 12, value: int = 100) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), value, np.uint8)).save(path)
    return path


def test_shared_pairs_found_and_decoded(shared: Path) -> None:
    pairs = find_pairs(PAIRS)
    assert len(pairs) == 18
    assert all(p.input.stem == p.target.stem == p.name for p in pairs)
    x = read_rgb(pairs[0].input)
    assert x.dtype == np.float32 and x.ndim == 3 and x.shape[2] == 3
    assert 0.0 <= x.min() and x.max() <= 1.0


def test_missing_partner_named(tmp_path: Path) -> None:
    _png(tmp_path / "input" / "alpha.png")
    _png(tmp_path / "target" / "alpha.png")
    _png(tmp_path / "input" / "bravo.png")
    _png(tmp_path / "target" / "charlie.jpg")
    with pytest.raises(CsrnetError) as e:
        find_pairs(tmp_path)
    msg = str(e.value)
    assert "2 mismatched" in msg and "bravo.png: input without target" in msg and "charlie.jpg: target without input" in msg
    assert "alpha" not in msg


def test_size_mismatch_and_unreadable_named(tmp_path: Path) -> None:
    _png(tmp_path / "input" / "wide.png", 8, 12)
    _png(tmp_path / "target" / "wide.png", 8, 10)
    _png(tmp_path / "input" / "ok.png")
    (tmp_path / "target" / "ok.png").write_bytes(b"not an image at all")
    with pytest.raises(CsrnetError) as e:
        find_pairs(tmp_path)
    msg = str(e.value)
    assert "wide: input is 12x8 but target is 10x8" in msg
    assert "ok.png: unreadable image" in msg


def test_truncated_body_reported_when_decoding(tmp_path: Path) -> None:
    _png(tmp_path / "input" / "a.png", 64, 64)
    good = _png(tmp_path / "target" / "a.png", 64, 64).read_bytes()
    (tmp_path / "target" / "a.png").write_bytes(good[: len(good) // 2])  # header intact, body cut
    pairs = find_pairs(tmp_path)
    with pytest.raises(CsrnetError, match="a.png"):
        load_pairs(pairs)


def test_list_file_restricts_and_reports_unknown_names(tmp_path: Path) -> None:
    for n in ("a", "b", "c"):
        _png(tmp_path / "input" / f"{n}.png")
        _png(tmp_path / "target" / f"{n}.png")
    lst = tmp_path / "subset.txt"
    lst.write_text("# a comment\na\nc.png\n\n")
    assert [p.name for p in find_pairs(tmp_path, lst)] == ["a", "c"]
    lst.write_text("a\nzulu\n")
    with pytest.raises(CsrnetError, match="zulu: listed but has no input"):
        find_pairs(tmp_path, lst)


def test_lut_480p_layout_with_split_lists(tmp_path: Path) -> None:
    for n in ("a0001", "a0002", "a4501"):
        _png(tmp_path / "input" / "JPG" / "480p" / f"{n}.jpg")
        _png(tmp_path / "expertC" / "JPG" / "480p" / f"{n}.jpg")
    (tmp_path / "train_input.txt").write_text("a0001\n")  # Image-Adaptive-3DLUT: train = both lists
    (tmp_path / "train_label.txt").write_text("a0002\n")
    (tmp_path / "test.txt").write_text("a4501\n")
    assert [p.name for p in find_pairs(tmp_path)] == ["a0001", "a0002"]
    assert [p.name for p in find_pairs(tmp_path, split="test")] == ["a4501"]
    (tmp_path / "train.txt").write_text("a0002\n")  # AdaInt/SepLUT single list wins
    assert [p.name for p in find_pairs(tmp_path)] == ["a0002"]


def test_released_code_layout(tmp_path: Path) -> None:
    _png(tmp_path / "raw_input_train" / "x.png")
    _png(tmp_path / "expert_C_train" / "x.png")
    _png(tmp_path / "raw_input_test" / "y.png")
    _png(tmp_path / "expert_C_test" / "y.png")
    assert [p.name for p in find_pairs(tmp_path)] == ["x"]
    assert [p.name for p in find_pairs(tmp_path, split="test")] == ["y"]


def test_read_rgb_16bit_png_tiff_and_8bit(tmp_path: Path) -> None:
    png = need_module("png")
    import tifffile

    rng = np.random.default_rng(0)
    a16 = rng.integers(0, 65536, size=(5, 7, 3), dtype=np.uint16)
    png.from_array(a16.reshape(5, -1), "RGB;16").save(str(tmp_path / "deep.png"))
    np.testing.assert_array_equal(read_rgb(tmp_path / "deep.png"), a16.astype(np.float32) / 65535)
    tifffile.imwrite(tmp_path / "deep.tif", a16, photometric="rgb")
    np.testing.assert_array_equal(read_rgb(tmp_path / "deep.tif"), a16.astype(np.float32) / 65535)
    g8 = rng.integers(0, 256, size=(5, 7), dtype=np.uint8)
    Image.fromarray(g8).save(tmp_path / "grey.png")
    out = read_rgb(tmp_path / "grey.png")
    assert out.shape == (5, 7, 3)
    np.testing.assert_array_equal(out[..., 1], g8 / np.float32(255))
    Image.fromarray(np.full((6, 6, 3), 200, np.uint8)).save(tmp_path / "j.jpg", quality=95)
    assert abs(float(read_rgb(tmp_path / "j.jpg").mean()) - 200 / 255) < 0.01


def test_split_pairs_is_seeded_and_disjoint(shared: Path) -> None:
    pairs = find_pairs(PAIRS)
    tr, va = split_pairs(pairs, 0.25, seed=3)
    assert len(va) == round(18 * 0.25) and len(tr) + len(va) == 18
    assert not {p.name for p in tr} & {p.name for p in va}
    assert split_pairs(pairs, 0.25, seed=3) == (tr, va)
    assert split_pairs(pairs, 0.25, seed=4) != (tr, va)


def test_simulated_operations_match_the_paper_formulas() -> None:
    x = np.random.default_rng(1).random((4, 5, 3), dtype=np.float32)
    np.testing.assert_allclose(apply_operation("brightness x1.5", x), 1.5 * x, rtol=1e-6)
    np.testing.assert_allclose(apply_operation("contrast 1.5", x), 1.5 * x - 0.5 * x.mean(), rtol=1e-5, atol=1e-6)
    t = np.array([3, 2, 1, 2]) / 8
    v = np.float32(0.6)  # L*v = 2.4: the first two segments full, the third at 0.4
    curve = apply_operation("tone curve L=4", np.full((1, 1, 3), v))
    np.testing.assert_allclose(curve[0, 0, 0], t[0] + t[1] + 0.4 * t[2], rtol=1e-6)
    assert set(OPERATIONS) >= {"brightness x1.5", "brightness x0.5", "tone curve L=4", "contrast 1.5"}
    with pytest.raises(CsrnetError):
        apply_operation("sharpen", x)
