"""Torch-free model weights: safetensors files with a JSON model card in their metadata.

A weights file holds the network's tensors under the released checkpoint's names
and, under the metadata key ``"csrnet"``, a JSON object describing them (the
torchvision-weights idea): architecture, parameter count, the long-edge size the
condition network was trained at, source, license, training data and metrics.

Only :func:`convert_checkpoint` (and :func:`load_model` given a ``.pth``) import torch.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .arch import get_architecture
from .model import Model
from .errors import MissingDependencyError, ModelError

__all__ = [
    "Model",
    "expected_shapes",
    "load_model",
    "save_model",
    "convert_checkpoint",
    "list_models",
    "bundled_dir",
    "sha256_file",
]

FORMAT_VERSION = 1
META_KEY = "csrnet"


def expected_shapes(arch: str) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape for ``arch`` (from the architecture registry); :class:`ModelError` for an unknown one."""
    return get_architecture(arch).tensor_shapes()


def validate(tensors: dict[str, np.ndarray], arch: str, source: str) -> dict[str, np.ndarray]:
    """Check names and shapes against ``arch``; return float32 contiguous copies."""
    try:
        shapes = expected_shapes(arch)
    except ModelError as e:  # name the file, not only the architecture
        raise ModelError(f"{source}: {e}") from None
    missing = sorted(set(shapes) - set(tensors))
    extra = sorted(set(tensors) - set(shapes))
    if missing or extra:
        detail = f"missing {missing[:3]}" if missing else f"unexpected {extra[:3]}"
        raise ModelError(f"{source}: not a {arch} checkpoint ({detail}{'...' if len(missing or extra) > 3 else ''})")
    out = {}
    for name, shape in shapes.items():
        t = np.asarray(tensors[name])
        if tuple(t.shape) != shape:
            raise ModelError(f"{source}: tensor {name} has shape {tuple(t.shape)}, expected {shape} for {arch}")
        if not np.all(np.isfinite(t)):
            raise ModelError(f"{source}: tensor {name} holds NaN or infinite values")
        out[name] = np.ascontiguousarray(t, dtype=np.float32)
    return out


def save_model(model: Model, path: str | os.PathLike[str]) -> Path:
    """Write ``model`` as safetensors with its card in the metadata (atomically)."""
    from safetensors.numpy import save_file

    path = Path(path)
    meta = dict(model.meta)
    meta.setdefault("arch", "csrnet")
    meta["format_version"] = FORMAT_VERSION
    meta["num_parameters"] = model.num_parameters
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        save_file(validate(model.tensors, meta["arch"], str(path)), str(tmp), metadata={META_KEY: json.dumps(meta, sort_keys=True)})
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _load_safetensors(path: Path) -> Model:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            raw_meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelError(f"{path}: not a readable weights file ({first})") from None
    try:
        meta = json.loads(raw_meta.get(META_KEY, "{}"))
    except json.JSONDecodeError:
        raise ModelError(f"{path}: corrupt model card in the weights metadata") from None
    arch = meta.get("arch", "csrnet")
    return Model(validate(tensors, arch, str(path)), meta, name=path.stem)


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _read_torch_checkpoint(path: Path) -> dict[str, np.ndarray]:
    """Read a ``.pth`` state dict safely (``weights_only=True``) as numpy arrays."""
    try:
        import torch
    except ImportError:
        raise MissingDependencyError(f"{path}: reading a .pth checkpoint needs PyTorch (pip install torch), or convert it elsewhere first") from None
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for bad files
        msg = str(e)
        if "weights_only" in msg or "Unsupported global" in msg or "UnpicklingError" in type(e).__name__:
            raise ModelError(f"{path}: refused: the checkpoint contains Python objects or code, not only tensors") from None
        first = msg.strip().splitlines()[0][:160] if msg.strip() else type(e).__name__
        raise ModelError(f"{path}: not a readable PyTorch checkpoint ({first})") from None
    if isinstance(obj, dict):
        for key in ("params_ema", "params", "state_dict", "model"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelError(f"{path}: not a state dict of tensors")
    return {k.removeprefix("module."): v.detach().float().cpu().numpy() for k, v in obj.items()}


def convert_checkpoint(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str] | None = None,
    *,
    condition_size: int | None = 500,
    meta: dict[str, Any] | None = None,
) -> Model:
    """Convert a released CSRNet ``.pth`` to a :class:`Model` (and write it to ``dst`` if given).

    ``condition_size`` records the long-edge size the checkpoint's condition network
    was trained at (500 px for the authors' FiveK release).
    """
    src = Path(src)
    if not src.is_file():
        raise ModelError(f"{src}: no such file")
    tensors = validate(_read_torch_checkpoint(src), "csrnet", str(src))
    card: dict[str, Any] = {
        "arch": "csrnet",
        "condition_size": condition_size,
        "source": f"converted from {src.name}",
        "source_sha256": sha256_file(src),
        "license": "as the source checkpoint (the authors' release: research use)",
    }
    card.update(meta or {})
    model = Model(tensors, card, name=src.stem)
    if dst is not None:
        save_model(model, dst)
    return model


def bundled_dir() -> Path:
    """Folder of the weights shipped inside the package."""
    return Path(__file__).with_name("models")


def list_models() -> dict[str, Path]:
    """Bundled model name -> weights path."""
    return {p.stem: p for p in sorted(bundled_dir().glob("*.safetensors"))}


def load_model(name_or_path: str | os.PathLike[str] | Model) -> Model:
    """Load a bundled model by name, a ``.safetensors`` weights file, or a released ``.pth``.

    Raises :class:`CsrnetError` with a one-line reason for anything else.
    """
    if isinstance(name_or_path, Model):
        return name_or_path
    bundled = list_models()
    key = str(name_or_path)
    if key in bundled and not Path(key).exists():
        model = _load_safetensors(bundled[key])
        model.name = key
        return model
    path = Path(key)
    if path.is_dir():
        raise ModelError(f"{path}: is a folder, not a weights file")
    if not path.exists():
        names = ", ".join(bundled) or "none"
        raise ModelError(f"{key}: no such model file or bundled model (bundled: {names})")
    with open(path, "rb") as f:
        head = f.read(8)
    if path.suffix in (".pth", ".pt", ".ckpt") or head[:2] in (b"PK", b"\x80\x02"):
        return convert_checkpoint(path)
    return _load_safetensors(path)
