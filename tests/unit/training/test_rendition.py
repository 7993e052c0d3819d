"""Camera renditions and the editor's black point (csrnet.training.rendition, scripts/train_default.py)."""

import importlib.util

import numpy as np
from PIL import Image

from csrnet.training.rendition import EDITOR_BLACK_POINT, FIVEK_FIT_EDITED, camera_rendition, set_black_point
from tests.conftest import ROOT

LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)


def _p1(x: np.ndarray) -> float:
    return float(np.percentile(x @ LUMA, 1))


def _matte(seed: int, lift: float = 0.2, shape=(48, 64)) -> np.ndarray:
    """A photo finished with a raised black: a tone field in [lift, 0.95] with mild colour, the channels
    moving together as in real photos."""
    rng = np.random.default_rng(seed)
    tone = rng.random((*shape, 1))
    colour = np.clip(tone + 0.04 * rng.standard_normal((*shape, 3)), 0, 1)
    return (lift + (0.95 - lift) * colour).astype(np.float32)


def test_set_black_point_brings_a_matte_photo_down_and_keeps_its_order():
    x = _matte(0)
    out = set_black_point(x, 0.03)
    assert abs(_p1(out) - 0.03) < 2e-3, _p1(out)
    assert out.dtype == np.float32 and out.min() >= 0 and out.max() <= 1
    flat_in, flat_out = x.reshape(-1), out.reshape(-1)
    order = np.argsort(flat_in, kind="stable")
    assert np.all(np.diff(flat_out[order]) >= -1e-6)  # a levels change: monotonic, no colour swaps
    assert abs(float(out.max()) - float(x.max())) < 0.02  # the white stays where it was


def test_set_black_point_leaves_a_photo_with_deep_blacks_alone():
    x = _matte(1, lift=0.0)
    assert _p1(x) < 0.03
    assert set_black_point(x, 0.03) is x


def _train_default():
    spec = importlib.util.spec_from_file_location("train_default", ROOT / "scripts" / "train_default.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _read(path) -> np.ndarray:
    return np.asarray(Image.open(path), np.float32) / 255


def test_write_pairs_sets_the_black_point_of_camera_targets_only(tmp_path):
    td = _train_default()
    photos = []
    for i in range(2):
        photos.append(tmp_path / f"matte{i}.png")
        Image.fromarray((_matte(10 + i) * 255).round().astype(np.uint8)).save(photos[-1])
    for black_point, root in ((None, tmp_path / "own"), (EDITOR_BLACK_POINT, tmp_path / "edited")):
        rows = td.write_pairs(photos, root, variants=8, seed=0, identity_every=4, faults="camera", black_point=black_point)
        for row in rows:
            x, y = _read(root / "input" / f"{row['name']}.png"), _read(root / "target" / f"{row['name']}.png")
            if row["ops"] == "none":  # finished photos stay as they are, and are their own target
                assert np.array_equal(x, y) and _p1(y) > 0.15
            elif black_point is None:
                assert _p1(y) > 0.15
            else:
                assert _p1(y) <= EDITOR_BLACK_POINT + 2 / 255, (row, _p1(y))
        assert sum(r["ops"] == "camera" for r in rows) == 12


def test_edited_sampler_renders_edited_photos_darker_with_raised_blacks():
    """FIVEK_FIT_EDITED (fitted for photos with the editor's black point): on average its renditions are
    darker and flatter than the photo, as the FiveK inputs are against the experts' versions."""
    rng = np.random.default_rng(3)
    y = set_black_point(_matte(4), EDITOR_BLACK_POINT)
    xs = [camera_rendition(y, rng, FIVEK_FIT_EDITED) for _ in range(16)]
    assert np.mean([(x @ LUMA).mean() for x in xs]) < 0.8 * (y @ LUMA).mean()
    assert np.mean([_p1(x) for x in xs]) > _p1(y) + 0.02
    assert np.mean([np.percentile(x @ LUMA, 99) for x in xs]) < np.percentile(y @ LUMA, 99) - 0.1
