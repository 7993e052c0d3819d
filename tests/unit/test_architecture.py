"""The architecture registry: names, shapes and torch modules come from it, and a new architecture
plugs into the pipeline, weights and CLI without touching them."""

from __future__ import annotations

import numpy as np
import pytest

import csrnet
from csrnet.arch import architectures, get_architecture
from csrnet.arch.base import Architecture, CopyFn
from csrnet.errors import ModelError
from csrnet.kernels.lattice import identity_lattice
from csrnet.kernels.lut import Lattice
from csrnet.model import Model
from csrnet.weights import expected_shapes, load_model, save_model


def test_registry_lists_both_families():
    archs = architectures()
    assert set(archs) >= {"csrnet", "csrnet-l"}
    assert archs["csrnet"].single_lut and not archs["csrnet-l"].single_lut
    assert sum(int(np.prod(s)) for s in expected_shapes("csrnet").values()) == 36489
    assert set(expected_shapes("csrnet")) < set(expected_shapes("csrnet-l"))
    with pytest.raises(ModelError, match="unknown architecture 'nope'"):
        get_architecture("nope")


@pytest.mark.torch
def test_torch_modules_come_from_the_registry():
    from csrnet.training.network import CSRNet, CSRNetL, count_parameters

    assert get_architecture("csrnet").torch_module() is CSRNet
    assert get_architecture("csrnet-l").torch_module() is CSRNetL
    for name, arch in architectures().items():
        net = arch.torch_module()()
        assert {k: tuple(v.shape) for k, v in net.state_dict().items()} == expected_shapes(name)
        assert count_parameters(net) == sum(int(np.prod(s)) for s in expected_shapes(name).values())
        assert callable(net.subset_loss)


class Gain(Architecture):
    """A toy architecture: multiply colours by a learned gain (one tensor)."""

    name = "toy-gain"
    single_lut = True
    default_lut_size = 9
    torch_class = "builtins:object"

    def tensor_shapes(self):
        return {"gain": (3,)}

    def condition(self, model, copy: CopyFn, threads: int):
        copy(model)  # the pipeline's condition copy is available
        return model.tensors["gain"]

    def run_exact(self, state, x, threads):
        return x * state

    def prefers_exact(self, state, shape, lut_size):
        return False

    def bake(self, state, size, strength, shape, threads):
        return Lattice(self.bake_table(state, size, strength, fit=False, threads=threads), size)

    def bake_table(self, state, size, strength, *, fit, threads):
        grid = identity_lattice(size)
        return grid + np.float32(strength) * (grid * state - grid)


def test_a_new_architecture_needs_only_its_module(monkeypatch, tmp_path):
    """Registering one class is enough for weights validation, enhance (both paths), strength and bake_lut."""
    import csrnet.arch.base as base

    monkeypatch.setitem(base._REGISTRY, Gain.name, Gain())
    model = Model({"gain": np.array([1.0, 0.5, 0.25], np.float32)}, {"arch": "toy-gain", "condition_size": 64}, name="toy")
    path = save_model(model, tmp_path / "toy.safetensors")
    loaded = load_model(path)
    assert loaded.arch == "toy-gain" and loaded.num_parameters == 3
    x = np.full((40, 60, 3), 200, np.uint8)
    for kwargs in ({"exact": True}, {}, {"lut_size": 9}):
        out = csrnet.enhance(x, loaded, **kwargs)
        assert out.dtype == np.uint8 and np.abs(out.astype(int) - [200, 100, 50]).max() <= 1
    half = csrnet.enhance(x, loaded, strength=0.5, exact=True)
    assert np.abs(half.astype(int) - [200, 150, 125]).max() <= 1
    assert csrnet.bake_lut(x, loaded, size=9).shape == (9**3, 3)
    with pytest.raises(ModelError, match="tensor gain has shape"):
        save_model(Model({"gain": np.zeros(4, np.float32)}, {"arch": "toy-gain"}), tmp_path / "bad.safetensors")


def test_no_single_lut_for_spatial_models():
    clahe = csrnet.load_model("csrnet-l-clahe")
    with pytest.raises(csrnet.CsrnetError, match="spatially varying"):
        csrnet.bake_lut(np.zeros((32, 32, 3), np.uint8), clahe)
