"""CSRNet-L: torch/numpy equivalence, tiling without seams, weights, and the shipped model's gain."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from csrnet.errors import CsrnetError
from csrnet import transform as enhance_local
from csrnet.weights import Model, expected_shapes, load_model, save_model

from tests.conftest import DATA, PHOTOS, need_module

torch = need_module("torch")
from csrnet.training.network import CSRNet, CSRNetL, count_parameters, create_model  # noqa: E402

#: Bundled CSRNet-L models (src/csrnet/models/csrnet-l-TASK); each has a CSRNet baseline trained by the
#: same loop on the same pairs in tests/data/csrnet_TASK_baseline.safetensors.
SHIPPED_TASKS = ["gradfilter", "clarity", "clahe"]


def _random_model(
    upsample: str, map_pool: int = 2, seed: int = 0, condition_size: int | None = 64, zero_mean: bool = False
) -> tuple[CSRNetL, Model]:
    torch.manual_seed(seed)
    net = CSRNetL(upsample=upsample, map_pool=map_pool, zero_mean=zero_mean).eval()
    with torch.no_grad():  # the head starts at zero (== CSRNet); give the spatial branch something to do
        for p in net.local_net.parameters():
            p.normal_(0, 0.1)
    tensors = {k: v.numpy().copy() for k, v in net.state_dict().items()}
    meta = {"arch": "csrnet-l", "condition_size": condition_size, "map_pool": map_pool, "upsample": upsample}
    if zero_mean:
        meta["zero_mean"] = True
    return net, Model(tensors, meta, name=f"random-{upsample}")


def _image(h: int, w: int, seed: int = 1) -> np.ndarray:
    """Smooth-ish random image in [0,1]."""
    rng = np.random.default_rng(seed)
    small = rng.random((max(2, h // 8), max(2, w // 8), 3)).astype(np.float32)
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(small[..., c], "F").resize((w, h), Image.Resampling.BILINEAR)) for c in range(3)], -1)


def test_parameters_and_registry() -> None:
    assert count_parameters(CSRNetL()) == 54959 <= 2 * count_parameters(CSRNet())
    assert isinstance(create_model("csrnet-l"), CSRNetL)
    names = dict(CSRNetL().state_dict())
    assert {k: tuple(v.shape) for k, v in names.items()} == expected_shapes("csrnet-l")


def test_untrained_csrnet_l_is_csrnet() -> None:
    net = CSRNetL().eval()
    x = torch.rand(1, 3, 40, 56)
    with torch.no_grad():
        assert torch.equal(net(x), net.glob(x))


@pytest.mark.parametrize("upsample", ["bilinear", "guided"])
@pytest.mark.parametrize("shape", [(37, 53), (120, 90)])
@pytest.mark.parametrize("zero_mean", [False, True])
def test_numpy_matches_torch(upsample: str, shape: tuple[int, int], zero_mean: bool) -> None:
    net, model = _random_model(upsample, condition_size=None, zero_mean=zero_mean)
    img = _image(*shape)
    with torch.no_grad():
        ref = net(torch.from_numpy(img).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()
    out = enhance_local(img, model, strength=1.0, exact=True, condition_size=None)
    assert out.shape == img.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, ref, atol=2e-5)
    if zero_mean:  # the option changes the output (so this compares two different models, not one twice)
        plain = enhance_local(img, Model(model.tensors, {**model.meta, "zero_mean": False}), strength=1.0, exact=True, condition_size=None)
        assert np.abs(plain - out).max() > 1e-3


@pytest.mark.parametrize("upsample", ["bilinear", "guided"])
def test_condition_on_downscaled_copy_matches_torch(upsample: str) -> None:
    from csrnet.kernels.resize import downscale

    net, model = _random_model(upsample, condition_size=48)
    img = _image(150, 101)
    small = downscale(img, 48)
    with torch.no_grad():
        ref = net(torch.from_numpy(img).permute(2, 0, 1)[None], torch.from_numpy(small).permute(2, 0, 1)[None])
    out = enhance_local(img, model, strength=1.0, exact=True)
    np.testing.assert_allclose(out, ref[0].permute(1, 2, 0).numpy(), atol=2e-5)


@pytest.mark.parametrize("upsample", ["bilinear", "guided"])
def test_tiles_join_without_seams(upsample: str) -> None:
    _, model = _random_model(upsample)
    img = _image(301, 517)
    from csrnet.arch.csrnet_l import local_maps, run_exact
    from csrnet.pipeline import condition_copy

    maps = local_maps(model, condition_copy(img, model))
    whole = run_exact(img, model, maps, tile_pixels=10**9)
    assert np.array_equal(enhance_local(img, model, exact=True), run_exact(img, model, maps))
    for tile in (997, 4096):  # tiles split rows and (517 > 512) columns at odd places
        tiled = run_exact(img, model, maps, tile_pixels=tile, threads=2)
        np.testing.assert_allclose(tiled, whole, atol=1e-6, rtol=0)


def test_forward_points_equals_forward() -> None:
    net, _ = _random_model("guided")
    x, c = torch.rand(1, 3, 33, 47), torch.rand(1, 3, 40, 56)
    iy, ix = torch.randint(0, 33, (64,)), torch.randint(0, 47, (64,))
    coords = torch.stack([(2 * ix + 1) / 47 - 1, (2 * iy + 1) / 33 - 1], -1)[None].float()
    with torch.no_grad():
        pts = net.forward_points(x[:, :, iy, ix], coords, c)
        torch.testing.assert_close(pts, net(x, c)[:, :, iy, ix], atol=1e-6, rtol=0)


def test_strength_and_errors(tmp_path: Path) -> None:
    _, model = _random_model("guided")
    img = _image(64, 80)
    full = enhance_local(img, model, strength=1.0, exact=True)
    half = enhance_local(img, model, strength=0.5, exact=True)
    np.testing.assert_allclose(half, img + 0.5 * (full - img), atol=1e-6)
    np.testing.assert_array_equal(enhance_local(img, model, strength=0.0, exact=True), img)
    path = save_model(model, tmp_path / "l.safetensors")
    again = load_model(path)
    assert again.arch == "csrnet-l" and again.meta["upsample"] == "guided"
    np.testing.assert_array_equal(enhance_local(img, again, strength=1.0, exact=True), full)
    with pytest.raises(CsrnetError, match="unknown architecture 'csrnet-x'"):
        enhance_local(img, Model(model.tensors, {"arch": "csrnet-x"}), strength=1.0, exact=True)
    with pytest.raises(CsrnetError, match="H x W x 3"):
        enhance_local(img[..., :2], model, strength=1.0, exact=True)


@pytest.mark.parametrize("task", SHIPPED_TASKS)
def test_shipped_model_card_and_size(task: str) -> None:
    model = load_model(f"csrnet-l-{task}")
    assert model.arch == "csrnet-l"
    path = Path(__import__("csrnet").weights.bundled_dir()) / f"csrnet-l-{task}.safetensors"
    assert path.stat().st_size < 1 << 20
    assert path.with_suffix(".md").is_file()
    assert model.meta["data"]["task"] == task and model.meta["license"]


@pytest.mark.parametrize("task", SHIPPED_TASKS)
def test_shipped_csrnet_l_beats_csrnet_on_held_out_photos(shared: Path, task: str) -> None:
    """The bundled CSRNet-L vs a CSRNet trained by the same loop on the same pairs, 6 held-out photos."""
    from csrnet.arch.layers import condition_vector, modulated_layers, run_mlp
    from csrnet.kernels.resize import downscale
    from csrnet.training.local_tasks import make_pair, split_photos
    from PIL import Image

    local, glob = load_model(f"csrnet-l-{task}"), load_model(DATA / f"csrnet_{task}_baseline.safetensors")
    _, held_out = split_photos(PHOTOS)
    gains = []
    for p in held_out[:6]:
        photo = downscale(np.asarray(Image.open(p).convert("RGB")), 256)
        x, y = make_pair(task, photo, p.stem)
        layers = modulated_layers(glob, condition_vector(glob, downscale(x, glob.condition_size)))
        g = run_mlp(layers, x.reshape(-1, 3)).reshape(x.shape)
        lo = enhance_local(x, local, strength=1.0, exact=True)

        def psnr(a: np.ndarray) -> float:
            return float(-10 * np.log10(np.mean((np.round(np.clip(a, 0, 1) * 255) / 255 - np.round(y * 255) / 255) ** 2)))

        gains.append(psnr(lo) - psnr(g))
    assert np.mean(gains) >= 2.0, gains
    assert min(gains) > 0, gains


def test_shadow_task_lifts_regions_not_tones() -> None:
    """The shadows task's target depends on a pixel's surroundings, not only its colour: the same grey
    is lifted inside a dark region and left alone inside a bright one (no tone curve can do that)."""
    need_module("cv2")
    from csrnet.training.local_tasks import make_pair

    x = np.full((64, 128, 3), 0.25, np.float32)
    x[:, 64:] = 0.75  # dark left half, bright right half
    probe = np.zeros((64, 128), bool)
    probe[::4, ::4] = True  # sparse pixels of one grey in both halves
    x[probe] = 0.45
    inp, y = make_pair("shadows", x, "probe")
    assert np.array_equal(inp, x)
    in_dark, in_bright = y[:, 8:56][probe[:, 8:56]], y[:, 72:120][probe[:, 72:120]]
    assert in_dark.min() > 0.45 + 0.2  # lifted by well over a stop
    assert np.abs(in_bright - 0.45).max() < 0.01  # untouched
    assert y[:, 72:120][~probe[:, 72:120]].min() > 0.74  # the bright region itself is untouched
