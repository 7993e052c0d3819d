"""The torch module is the paper's network and reproduces the authors' outputs."""

import numpy as np
import pytest
from PIL import Image

from tests.conftest import CHECKPOINT, GOLDEN, golden_names, need_module

torch = need_module("torch")

from csrnet.training.network import CSRNet, count_parameters, create_model  # noqa: E402


def test_parameter_count_and_split():
    net = CSRNet()
    assert count_parameters(net) == 36489
    assert count_parameters(net.cond_net) == 23232
    base = sum(p.numel() for n, p in net.named_parameters() if n.startswith("conv"))
    assert base == 4611
    assert isinstance(create_model("csrnet"), CSRNet)
    with pytest.raises(ValueError, match="unknown architecture"):
        create_model("nope")


def test_loads_released_checkpoint_strictly(shared):
    net = CSRNet()
    net.load_state_dict(torch.load(CHECKPOINT, weights_only=True), strict=True)


@pytest.mark.parametrize("name", golden_names() or ["missing"])
def test_torch_module_reproduces_golden(shared, name):
    net = CSRNet()
    net.load_state_dict(torch.load(CHECKPOINT, weights_only=True))
    net.eval()
    x = np.asarray(Image.open(GOLDEN / f"{name}_input.png").convert("RGB"), np.float32) / 255
    ref = np.load(GOLDEN / f"{name}_official.npy")
    with torch.no_grad():
        out = net(torch.from_numpy(x).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()
    assert np.abs(out - ref).max() < 1e-6  # README: < 1e-6 on all nine golden photos (measured 1.9e-7 .. 4.8e-7)
