"""csrnet-hist (CSRNet + a colour-statistics branch in the condition network): the statistics bit
for bit in torch and numpy, the engine against the torch network, and the ways a model meets it
(weights validation, initialising from a CSRNet, fine-tuning it, style blends)."""

from __future__ import annotations

import numpy as np
import pytest

import csrnet
from csrnet.arch.csrnet import Blend
from csrnet.arch.layers import COLOUR_BINS, colour_statistics
from csrnet.errors import ModelError
from csrnet.kernels.resize import downscale
from csrnet.weights import Model, expected_shapes, load_model, save_model

from tests.conftest import need_module

torch = need_module("torch")
from csrnet.training.network import CSRNet, CSRNetHist, count_parameters, create_model  # noqa: E402
from csrnet.training.network import colour_statistics as torch_statistics  # noqa: E402


def _hist_model(seed: int = 0, condition_size: int = 64) -> tuple[CSRNetHist, Model]:
    torch.manual_seed(seed)
    net = CSRNetHist().eval()
    with torch.no_grad():  # the branch's output layer starts at zero; give it something to do
        net.cond_hist2.weight.normal_(0, 0.3)
        net.cond_hist2.bias.normal_(0, 0.1)
    tensors = {k: v.numpy().copy() for k, v in net.state_dict().items()}
    return net, Model(tensors, {"arch": "csrnet-hist", "condition_size": condition_size}, name="random-hist")


def _image(h: int, w: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).random((h, w, 3), dtype=np.float32)


def test_parameters_and_registry() -> None:
    assert count_parameters(CSRNetHist()) == 40137 == count_parameters(CSRNet()) + 3648
    assert isinstance(create_model("csrnet-hist"), CSRNetHist)
    assert {k: tuple(v.shape) for k, v in CSRNetHist().state_dict().items()} == expected_shapes("csrnet-hist")


def test_colour_statistics_by_hand() -> None:
    """Cumulative fractions at the bins' upper edges; a value on an edge belongs to the bin above, 1.0 to the last."""
    x = np.array([[[0.0, 0.5, 1.0], [1 / 16, 0.25, 0.25]]], np.float32)  # 1 x 2 pixels
    s = colour_statistics(x).reshape(5, COLOUR_BINS)
    np.testing.assert_array_equal(s[0, [0, 1, 15]], [0.5, 1.0, 1.0])  # R: 0 in bin 0, 1/16 in bin 1
    np.testing.assert_array_equal(s[1, [3, 4, 7, 8]], [0.0, 0.5, 0.5, 1.0])  # G: 0.25 in bin 4, 0.5 in bin 8
    np.testing.assert_array_equal(s[2, [3, 4, 14, 15]], [0.0, 0.5, 0.5, 1.0])  # B: 1.0 clipped into the last bin
    assert s[4, 15] == 1.0 and s[4, 3] == 0.5 and s[4, 2] == 0.0  # chroma: 1.0 and 0.1875 (bin 3)
    assert np.all(np.diff(s, axis=1) >= 0)


@pytest.mark.parametrize("shape", [(170, 256, 3), (7, 9, 3), (1, 1, 3)])
def test_colour_statistics_equal_in_torch_and_numpy(shape) -> None:
    x = _image(*shape[:2])
    x.reshape(-1, 3)[:3] = [[1, 1, 1], [0, 0, 0], [0.5, 0.0625, 0.9375]][: x.size // 3]  # values on bin edges
    t = torch_statistics(torch.from_numpy(x).permute(2, 0, 1)[None])[0].numpy()
    np.testing.assert_array_equal(t, colour_statistics(x))


def test_engine_matches_the_torch_network() -> None:
    net, model = _hist_model()
    x8 = (np.random.default_rng(2).random((120, 160, 3)) * 255).astype(np.uint8)
    x = x8.astype(np.float32) / 255
    out = csrnet.enhance(x, model, exact=True)
    small = downscale(x8, 64)
    with torch.no_grad():
        ref = net(torch.from_numpy(x).permute(2, 0, 1)[None], torch.from_numpy(small).permute(2, 0, 1)[None])
        plain = CSRNet().eval()
        plain.load_state_dict({k: v for k, v in net.state_dict().items() if "hist" not in k})
        without = plain(torch.from_numpy(x).permute(2, 0, 1)[None], torch.from_numpy(small).permute(2, 0, 1)[None])
    ref = ref[0].permute(1, 2, 0).clamp(0, 1).numpy()
    assert np.abs(out - ref).max() < 1e-6
    assert np.abs(ref - without[0].permute(1, 2, 0).clamp(0, 1).numpy()).max() > 0.05  # the branch matters


def test_weights_round_trip_and_validation(tmp_path) -> None:
    _, model = _hist_model()
    path = save_model(model, tmp_path / "h.safetensors")
    back = load_model(path)
    assert back.arch == "csrnet-hist" and back.num_parameters == 40137
    broken = {k: v for k, v in model.tensors.items() if k != "cond_hist2.bias"}
    with pytest.raises(ModelError, match="cond_hist2.bias"):
        save_model(Model(broken, {"arch": "csrnet-hist"}), tmp_path / "b.safetensors")
    with pytest.raises(ModelError, match="unexpected"):  # a csrnet-hist's tensors labelled as plain csrnet
        save_model(Model(model.tensors, {"arch": "csrnet"}), tmp_path / "c.safetensors")


def test_a_csrnet_initialises_it_unchanged() -> None:
    """With the branch's output layer at zero (its initial state) it is the CSRNet it was loaded from."""
    torch.manual_seed(3)
    plain = CSRNet().eval()
    hist = CSRNetHist().eval()
    hist.load_state_dict(plain.state_dict(), strict=False)
    x = torch.rand(2, 3, 40, 56)
    with torch.no_grad():
        assert torch.equal(hist(x), plain(x))


def test_blends_take_it() -> None:
    _, a = _hist_model(0)
    _, b = _hist_model(1)
    x = _image(48, 64)
    mixed = csrnet.enhance(x, Blend(((a, 0.5), (b, 0.5))), exact=True)
    expect = 0.5 * csrnet.transform(x, a, exact=True) + 0.5 * csrnet.transform(x, b, exact=True)
    np.testing.assert_allclose(mixed, np.clip(expect, 0, 1), atol=1e-6)
