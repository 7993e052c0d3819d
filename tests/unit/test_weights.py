"""Weights: conversion, metadata, and one-line refusals of bad checkpoints."""

import pickle

import numpy as np
import pytest

from tests.conftest import CHECKPOINT, need_module

torch = need_module("torch")

import csrnet  # noqa: E402
from csrnet.errors import CsrnetError  # noqa: E402
from csrnet.weights import Model, convert_checkpoint, load_model, save_model  # noqa: E402


def test_convert_and_reload(shared, tmp_path):
    m = convert_checkpoint(CHECKPOINT, tmp_path / "w.safetensors")
    back = load_model(tmp_path / "w.safetensors")
    assert back.num_parameters == 36489 and back.meta["num_parameters"] == 36489
    assert back.condition_size == 500 and back.arch == "csrnet"
    for k, v in m.tensors.items():
        assert np.array_equal(v, back.tensors[k])


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def _bad_files(tmp_path, shared):
    good = CHECKPOINT.read_bytes()
    (tmp_path / "trunc.pth").write_bytes(good[: len(good) // 2])
    (tmp_path / "empty.pth").write_bytes(b"")
    (tmp_path / "noise.safetensors").write_bytes(np.random.default_rng(0).bytes(300))
    sd = torch.load(CHECKPOINT, weights_only=True)
    torch.save({k: v for k, v in sd.items() if k != "conv3.bias"}, tmp_path / "missing.pth")
    torch.save({**sd, "conv1.weight": torch.zeros(32, 3, 1, 1)}, tmp_path / "shape.pth")
    with open(tmp_path / "evil.pth", "wb") as f:
        pickle.dump({"conv1.weight": Evil()}, f)
    torch.save({"x": Evil()}, tmp_path / "evil2.pth")
    return ["trunc.pth", "empty.pth", "noise.safetensors", "missing.pth", "shape.pth", "evil.pth", "evil2.pth"]


def test_bad_checkpoints_refused_in_one_line(shared, tmp_path, capsys):
    for name in _bad_files(tmp_path, shared):
        with pytest.raises(CsrnetError) as e:
            load_model(tmp_path / name)
        assert "\n" not in str(e.value) and name in str(e.value)
    assert "pwned" not in capsys.readouterr().out


def test_wrong_shapes_in_safetensors(tmp_path):
    m = Model({"conv1.weight": np.zeros((2, 2), np.float32)}, {"arch": "csrnet"})
    with pytest.raises(CsrnetError, match="not a csrnet checkpoint"):
        save_model(m, tmp_path / "x.safetensors")
    with pytest.raises(CsrnetError, match="no such"):
        csrnet.load_model(tmp_path / "absent.safetensors")
    with pytest.raises(CsrnetError, match="folder"):
        csrnet.load_model(tmp_path)
