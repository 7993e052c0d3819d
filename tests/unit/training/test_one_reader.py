"""One way to read pixels: an Adobe RGB-tagged pair is seen identically by the training loader,
`csrnet evaluate` and `csrnet enhance` (all through csrnet.io.formats.read_photo, converted to sRGB)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from click.testing import CliRunner
from PIL import Image

import csrnet
from csrnet.cli import main
from csrnet.evaluation.evaluate import IDENTITY, evaluate
from csrnet.evaluation.metrics import psnr, to_uint8
from csrnet.io.formats import read_photo
from csrnet.kernels.pixels import to_float
from csrnet.training.data import find_pairs, load_pairs
from tests.conftest import need_module

torch = need_module("torch")
from csrnet.training.train import _cache  # noqa: E402  (imports torch)

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def test_adobe_rgb_pair_is_seen_identically(tmp_path, adobe_rgb_icc):
    icc = adobe_rgb_icc
    root = tmp_path / "pairs"
    for sub in ("input", "target"):
        (root / sub).mkdir(parents=True)
    owl = Image.open(EXAMPLES / "gcompris_farm-owl.jpg").convert("RGB").resize((96, 64), Image.Resampling.LANCZOS)
    owl.save(root / "input" / "owl.png", icc_profile=icc)
    Image.eval(owl, lambda v: min(255, int(v * 1.3))).save(root / "target" / "owl.png", icc_profile=icc)

    stored = np.asarray(owl, np.float32) / 255.0  # the file's own (Adobe RGB) numbers
    seen = read_photo(root / "input" / "owl.png", as_array=True)  # what `csrnet enhance` hands the model
    assert seen.icc_profile == csrnet.io.photo.srgb_profile()
    x_enhance = to_float(seen.pixels)
    assert np.abs(x_enhance - stored).max() > 0.02  # converted to sRGB, not taken as is

    # the training loader (and its cache of tensors) sees the same pixels
    [(x_train, y_train)] = load_pairs(find_pairs(root))
    assert np.array_equal(x_train, x_enhance)
    [example] = _cache(find_pairs(root), 256, torch.device("cpu"), False)
    assert np.array_equal(example.x[0].permute(1, 2, 0).numpy(), x_enhance)

    # evaluate scores the pixels enhance sees, and the model's output enhance writes
    model = csrnet.load_model("auto")
    result = evaluate(root, [model], progress=False)
    scores = {(r.model, r.image): r for r in result.rows}
    assert scores[(IDENTITY, "owl")].psnr == psnr(to_uint8(x_enhance), to_uint8(y_train))
    res = CliRunner().invoke(main, ["enhance", str(root / "input" / "owl.png"), "-o", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    written = np.asarray(Image.open(tmp_path / "out" / "owl.png").convert("RGB"))
    assert np.array_equal(written, np.asarray(csrnet.enhance(seen.pixels, model)))
    assert scores[("auto", "owl")].psnr == psnr(written, to_uint8(y_train))


def test_cache_keeps_the_decoders_type_and_reads_back_exactly(tmp_path):
    """8-bit pairs are cached as uint8 (a quarter of float32's memory), 16-bit ones as float32; what
    training reads back is bit for bit read_rgb's float32, whole or at sampled pixels."""
    root = tmp_path / "pairs"
    for sub in ("input", "target"):
        (root / sub).mkdir(parents=True)
    rng = np.random.default_rng(0)
    eight = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    Image.fromarray(eight).save(root / "input" / "a.png")
    Image.fromarray(255 - eight).save(root / "target" / "a.png")
    sixteen = rng.integers(0, 65536, (40, 56, 3), dtype=np.uint16)
    import tifffile

    tifffile.imwrite(root / "input" / "b.tif", sixteen, photometric="rgb")
    tifffile.imwrite(root / "target" / "b.tif", 65535 - sixteen, photometric="rgb")

    pairs = find_pairs(root)
    examples = _cache(pairs, 32, torch.device("cpu"), False)
    assert [(e.stored_x.dtype, e.stored_y.dtype) for e in examples] == [(torch.uint8, torch.uint8), (torch.float32, torch.float32)]
    for example, (x, y) in zip(examples, load_pairs(pairs)):
        assert example.size == (40, 56)
        assert np.array_equal(example.x[0].permute(1, 2, 0).numpy(), x)
        assert np.array_equal(example.y[0].permute(1, 2, 0).numpy(), y)
        idx = torch.tensor([0, 17, 40 * 56 - 1])
        tx, ty = example.take(idx)
        assert tx.dtype == ty.dtype == torch.float32
        assert np.array_equal(tx[0].numpy(), x.reshape(-1, 3)[idx.numpy()].T)
        assert np.array_equal(ty[0].numpy(), y.reshape(-1, 3)[idx.numpy()].T)
        assert example.cond.dtype == torch.float32
