"""Training CSRNet on paired photos: the released recipe and a CPU-friendly one.

Two recipes (``recipe=``):

``"paper"`` — the authors' released configuration (``codes/options/train/train_Enhance.yml``),
exactly: L1 loss; Adam, lr 1e-4, betas (0.9, 0.99), no weight decay; batch 1 of whole
images, reshuffled every epoch; 600,000 iterations with the lr halved at 100k, 200k,
300k, 400k and 500k (milestones scaled proportionally when ``iters`` is given); no
crops, no augmentation; the condition network sees the full-resolution input.

``"fast"`` — ours, designed from the model's structure for CPUs:

* The base network is a per-pixel MLP; its only link to the rest of the image is the
  32-d condition vector. So the loss is taken on a random subset of pixels
  (:data:`FAST_PIXELS` per image) of the full-resolution pair, while the condition network
  sees the *whole* image — downscaled to ``condition_size`` long edge with
  :func:`csrnet.kernels.resize.downscale`, the very function inference uses, so the condition
  statistics at training and inference match. The base network's cost per step drops
  by an order of magnitude and becomes independent of photo size.
* Several images per step (:data:`FAST_BATCH`): each gets its own condition vector; the
  gradient averages over different images instead of following one photo at a time.
* All pairs are decoded once and kept in memory (8-bit inputs and targets as uint8, others
  and the downscaled condition copies as float32), so no step decodes a file.
* Adam at a higher lr (:data:`FAST_LR`, 1e-3 from scratch; :data:`FAST_FINETUNE_LR` when
  starting from ``init``), betas (0.9, 0.99), a short linear warm-up then cosine decay to
  1/100 of the peak — short runs need the decay to settle.
* Default length: :data:`FAST_ITERS` steps from scratch, :data:`FAST_FINETUNE_ITERS` from
  ``init`` (a step's cost is independent of the number of pairs, so a fine-tune on ~20
  pairs takes well under a minute on a laptop CPU; bench/results/design_timings.md). Measured with
  bench/train_recipes.py (3 folds, 12 train / 6 held-out shared FiveK pairs, released
  checkpoint, ``freeze="base"``): held-out PSNR 22.14 dB after 150 steps
  against 21.66 dB after 300 steps and 17.52 dB identity — on a dozen photos the
  32k-parameter conditional branch peaks early and then slowly overfits.

Both recipes are deterministic given ``seed``: the images (and pixels) drawn at step ``i``
depend only on ``(seed, i)``, the model is initialised from ``seed``, and checkpoints
carry the optimizer and RNG states — so ``resume=True`` after a kill ends with the same
weights as an uninterrupted run.

Freezing: ``freeze="base"`` trains only the conditional branch (the condition network and
the six GFM ``Linear`` layers that turn its vector into scales and shifts) — the paper's
way of adapting the expert-C model to another style. ``freeze="condition"`` trains only the
base network's three 1x1 convolutions.

Outputs in ``out_dir``: ``checkpoints/last.pt`` (torch, written atomically),
``log.csv`` (iteration, seconds, loss, lr, validation PSNR), TensorBoard scalars under
``tb/`` when ``torch.utils.tensorboard`` (the ``tensorboard`` package) is importable, and
the exported torch-free ``model.safetensors`` with its model card.
"""

from __future__ import annotations

import csv
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from ..arch import get_architecture
from ..errors import CsrnetError
from ..io.atomic import remove_stale_temporaries
from ..kernels.pixels import to_float
from ..kernels.resize import downscale
from ..testpoint import checkpoint
from ..threads import default_threads as cpu_threads
from ..weights import Model, load_model, save_model
from .data import Pair, find_pairs, image_size, load_pairs, split_pairs

__all__ = [
    "train",
    "TrainConfig",
    "psnr8",
    "PAPER_ITERS",
    "FAST_ITERS",
    "FAST_FINETUNE_ITERS",
    "FAST_BATCH",
    "FAST_PIXELS",
    "FAST_LR",
    "FAST_FINETUNE_LR",
    "default_threads",
]

Recipe = Literal["fast", "paper"]
Freeze = Literal["base", "condition"] | None

PAPER_ITERS = 600_000
PAPER_LR = 1e-4
PAPER_MILESTONES = (100_000, 200_000, 300_000, 400_000, 500_000)
BETAS = (0.9, 0.99)

FAST_ITERS = 2000
FAST_FINETUNE_ITERS = 150
FAST_BATCH = 4
FAST_PIXELS = 8192
FAST_LR = 1e-3
FAST_FINETUNE_LR = 5e-4
FAST_WARMUP = 0.03
FAST_FINAL_LR_RATIO = 0.01

CHECKPOINT_NAME = "last.pt"
WEIGHTS_NAME = "model.safetensors"
_BASE_PARAMS = ("conv1.", "conv2.", "conv3.")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a run's result; stored in checkpoints to validate ``resume``."""

    arch: str
    recipe: str
    iters: int
    seed: int
    freeze: str | None
    init: str | None
    condition_size: int | None
    lr: float
    batch: int
    pixels: int
    train_names: tuple[str, ...]


# ------------------------------------------------------------------------ small helpers
def psnr8(output: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor) -> float:
    """PSNR (dB) on 8-bit RGB: both images clamped to [0, 1] and rounded to 1/255 steps.

    Args:
        output, target: same-shape float arrays/tensors, values nominally in [0, 1].
    """
    o = torch.as_tensor(output, dtype=torch.float32).clamp(0, 1).mul(255).round()
    t = torch.as_tensor(target, dtype=torch.float32).clamp(0, 1).mul(255).round()
    mse = torch.mean((o - t) ** 2).item()
    return float("inf") if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def _to_chw(image: np.ndarray, device: torch.device) -> torch.Tensor:
    """(H, W, 3) array -> (1, 3, H, W) tensor of its type on ``device``."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None].to(device)


def _atomic_torch_save(obj: dict[str, Any], path: Path) -> None:
    """torch.save to a temporary file in the same folder, fsync, then os.replace (never half-written).
    The temporary is named as csrnet.io.atomic's, so a killed run's is removed by the next run."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        checkpoint("train.written")  # test-only pause point (csrnet.testpoint); nothing when unset
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _trainable(model: torch.nn.Module, freeze: Freeze) -> list[torch.nn.Parameter]:
    """Mark frozen parameters (requires_grad=False) and return the trainable ones, in name order."""
    if freeze not in (None, "base", "condition"):
        raise CsrnetError(f"freeze must be 'base', 'condition' or None, got {freeze!r}")
    params = []
    for name, p in model.named_parameters():
        is_base = name.removeprefix("glob.").startswith(_BASE_PARAMS)  # CSRNet-L nests CSRNet as "glob"
        train_it = freeze is None or (freeze == "base" and not is_base) or (freeze == "condition" and is_base)
        p.requires_grad_(train_it)
        if train_it:
            params.append(p)
    return params


def _lr_factor(config: TrainConfig, it: int) -> float:
    """Multiplier of the peak lr at (0-based) step ``it``."""
    if config.recipe == "paper":
        scale = config.iters / PAPER_ITERS
        return 0.5 ** sum(it >= round(m * scale) for m in PAPER_MILESTONES)
    warm = max(1, round(FAST_WARMUP * config.iters))
    if it < warm:
        return (it + 1) / warm
    progress = (it - warm) / max(1, config.iters - warm)
    return FAST_FINAL_LR_RATIO + (1 - FAST_FINAL_LR_RATIO) * 0.5 * (1 + math.cos(math.pi * progress))


class _Logger:
    """CSV rows (always) and TensorBoard scalars (when importable); both resume-aware."""

    FIELDS = ("iter", "seconds", "cpu_seconds", "loss", "lr", "val_psnr", "val_identity_psnr")

    def __init__(self, out_dir: Path, start_iter: int) -> None:
        self.path = out_dir / "log.csv"
        rows = []
        if start_iter > 0 and self.path.exists():  # drop rows written after the checkpoint
            with open(self.path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["iter"]) <= start_iter]
        with open(self.path, "w", newline="") as f:
            w = csv.DictWriter(f, self.FIELDS)
            w.writeheader()
            w.writerows(rows)
        self.tb = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(out_dir / "tb"), purge_step=start_iter + 1 if start_iter else None)
        except Exception:  # tensorboard not installed: CSV only
            self.tb = None

    def log(self, **row: float | int | None) -> None:
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, self.FIELDS).writerow({k: ("" if v is None else v) for k, v in row.items()})
        if self.tb is not None:
            for k, v in row.items():
                if k not in ("iter", "seconds", "cpu_seconds") and v is not None:
                    self.tb.add_scalar(k, v, row["iter"])

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


# ------------------------------------------------------------------------------- data
@dataclass
class _Example:
    """One cached pair on the training device: full-size input/target and the condition copy.

    Pixels of 8-bit files are kept as uint8 (a quarter of float32's memory, so a FiveK-sized set
    fits on a laptop) and made float32 in [0, 1] when read, by the same division
    :func:`csrnet.kernels.pixels.to_float` does, so training sees exactly the values it would if
    they were cached as float32. Others (16-bit, RAW, float) are kept as float32: torch's uint16
    lacks indexing on some devices.
    """

    name: str
    stored_x: torch.Tensor  # (1, 3, H, W), uint8 or float32
    stored_y: torch.Tensor  # (1, 3, H, W), uint8 or float32
    cond: torch.Tensor  # (1, 3, h, w) float32: what the condition network sees

    @property
    def x(self) -> torch.Tensor:
        """(1, 3, H, W) float32 input in [0, 1]."""
        return _as_float(self.stored_x)

    @property
    def y(self) -> torch.Tensor:
        """(1, 3, H, W) float32 target in [0, 1]."""
        return _as_float(self.stored_y)

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the input and target."""
        return int(self.stored_x.shape[2]), int(self.stored_x.shape[3])

    def take(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(1, 3, K) float32 input and target at the flat pixel indices ``idx`` (K of them)."""
        return _as_float(self.stored_x.flatten(2)[:, :, idx]), _as_float(self.stored_y.flatten(2)[:, :, idx])


def _as_float(t: torch.Tensor) -> torch.Tensor:
    return t.float() / 255.0 if t.dtype == torch.uint8 else t


def _cache(pairs: Sequence[Pair], condition_size: int | None, device: torch.device, progress: bool) -> list[_Example]:
    images = load_pairs(pairs, progress=progress, as_float=False)
    out = []
    for p, (x, y) in zip(pairs, images):
        fx = to_float(x)  # converted once: the condition copy's source, and the cached input unless uint8
        small = downscale(fx, condition_size)
        stored_x = x if x.dtype == np.uint8 else fx
        stored_y = y if y.dtype == np.uint8 else to_float(y)
        out.append(_Example(p.name, _to_chw(stored_x, device), _to_chw(stored_y, device), _to_chw(small, device)))
    return out


def _resolve_data(
    pairs_dir: Path, val_dir: Path | None, val_fraction: float, seed: int, list_file: Path | None = None
) -> tuple[list[Pair], list[Pair]]:
    """(train, validation) pairs; the validation folder is read with ``split="test"``
    (the released-code and 3D-LUT layouts keep both splits under one root)."""
    pairs = find_pairs(pairs_dir, list_file, split="train")
    if val_dir is not None:
        if val_fraction:
            raise CsrnetError("give either a validation folder or a validation fraction, not both")
        return pairs, find_pairs(val_dir, split="test")
    return split_pairs(pairs, val_fraction, seed)


# ---------------------------------------------------------------------------- steps
def _paper_batch(config: TrainConfig, n: int, it: int) -> int:
    """Index of the image at step ``it``: a fresh permutation per epoch, seeded by (seed, epoch)."""
    epoch, pos = divmod(it, n)
    return int(np.random.default_rng([config.seed, epoch]).permutation(n)[pos])


def _fast_loss(model: torch.nn.Module, data: list[_Example], config: TrainConfig, it: int) -> torch.Tensor:
    """L1 on ``config.pixels`` random pixels of ``config.batch`` random images at step ``it``, as the
    architecture's torch module computes it (``subset_loss``: its own way of sampling pixels)."""
    rng = np.random.default_rng([config.seed, it])
    picks = rng.choice(len(data), size=config.batch, replace=len(data) < config.batch)
    return model.subset_loss([data[i] for i in picks], config.pixels, rng)


def _paper_loss(model: torch.nn.Module, data: list[_Example], config: TrainConfig, it: int) -> torch.Tensor:
    ex = data[_paper_batch(config, len(data), it)]
    return F.l1_loss(model(ex.x), ex.y)  # condition network on the full-resolution input


@torch.no_grad()
def _predict(model: torch.nn.Module, ex: _Example) -> torch.Tensor:
    """Inference as the engine does it: condition on the downscaled copy, base on the full image."""
    return model(ex.x, ex.cond)


@torch.no_grad()
def _validate(model: torch.nn.Module, data: list[_Example]) -> float:
    was_training = model.training
    model.eval()
    value = float(np.mean([psnr8(_predict(model, ex), ex.y) for ex in data]))
    model.train(was_training)
    return value


# ---------------------------------------------------------------------------- train
def _load_init(model: torch.nn.Module, src: Model, init: str, arch: str) -> None:
    """Load the weights ``src`` (read from ``init``, named in errors) into ``model``."""
    state = {k: torch.from_numpy(np.array(v, copy=True)) for k, v in src.tensors.items()}
    if src.arch == arch:
        model.load_state_dict(state, strict=True)
        return
    own = model.state_dict()
    if set(state) <= set(own) and all(own[k].shape == t.shape for k, t in state.items()):
        model.load_state_dict(state, strict=False)  # e.g. a CSRNet initialising CSRNet-L's global part
        return
    raise CsrnetError(f"{init}: is a {src.arch} model, cannot initialise a {arch} network from it")


def _default_condition_size(condition_size: int | None, init_model: Model | None) -> int:
    """Fast recipe: the explicit size, else the init model's, else 500 (the released model's)."""
    if condition_size is not None:
        return condition_size
    if init_model is not None and init_model.condition_size is not None:
        return init_model.condition_size
    return 500


def train(
    pairs_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    val_dir: str | os.PathLike[str] | None = None,
    val_fraction: float = 0.0,
    list_file: str | os.PathLike[str] | None = None,
    init: str | os.PathLike[str] | None = None,
    freeze: Freeze = None,
    recipe: Recipe = "fast",
    iters: int | None = None,
    seed: int = 0,
    resume: bool = False,
    arch: str | None = None,
    condition_size: int | None = None,
    checkpoint_every: int | None = None,
    val_every: int | None = None,
    lr: float | None = None,
    batch: int = FAST_BATCH,
    pixels: int = FAST_PIXELS,
    device: str | torch.device | None = None,
    progress: bool = True,
    max_seconds: float | None = None,
    max_cpu_seconds: float | None = None,
    threads: int | None = None,
) -> Path:
    """Train (or fine-tune) a CSRNet on paired photos and export torch-free weights.

    Args:
        pairs_dir: training pairs (any layout :func:`csrnet.training.data.find_pairs` reads).
            Every mismatch is reported by name before anything trains.
        out_dir: run folder (created): checkpoints, ``log.csv``, ``tb/``, ``model.safetensors``.
        val_dir: validation pairs (read with ``split="test"``, so the same root of a
            released-code or 3D-LUT layout gives its test half); or ``val_fraction`` of
            ``pairs_dir`` held out (seeded).
        list_file: optional list of stems restricting ``pairs_dir`` (see ``find_pairs``).
        init: weights to start from (bundled name, ``.safetensors``, released ``.pth``).
        freeze: ``"base"`` (train only the conditional branch), ``"condition"`` (only the
            base network) or None (everything).
        recipe: ``"fast"`` or ``"paper"`` (see the module docstring).
        iters: training steps; default 600,000 (paper), or :data:`FAST_ITERS` /
            :data:`FAST_FINETUNE_ITERS` (fast, from scratch / from ``init``).
        seed: makes model initialisation and data sampling reproducible.
        resume: continue from ``out_dir/checkpoints/last.pt`` (same settings required);
            starts afresh when no checkpoint exists yet.
        arch: architecture name in the registry (:func:`csrnet.arch.architectures`); default
            the ``init`` model's (so fine-tuning ``auto``, a ``csrnet-hist``, keeps its branch), else ``"csrnet"``.
        condition_size: long edge (px) of the condition network's input (fast recipe);
            default: the init model's, else 500. The paper recipe conditions on full
            images and records their median long edge.
        checkpoint_every: steps between checkpoints (default iters/10); one is always written at the end.
        val_every: steps between validations (default: as ``checkpoint_every``).
        lr: peak learning rate override (default: recipe's).
        batch, pixels: fast recipe's images per step and pixels per image.
        device: torch device; default CUDA when available, else CPU.
        progress: show a tqdm bar with loss and ETA.
        max_seconds, max_cpu_seconds: stop early (with a checkpoint and export) after this
            much wall time / CPU time of this process; the lr schedule still assumes
            ``iters``. For time-budget comparisons (CPU time is robust to a busy machine).
        threads: torch CPU threads for this run; default :func:`default_threads` (fewer
            on a busy machine, where threads that wait for busy cores cost more than they bring).

    Returns:
        Path of the exported ``model.safetensors`` (loads with :func:`csrnet.load_model`).

    Raises:
        CsrnetError: bad data (mismatches named), bad arguments, a run folder that already
        holds a checkpoint without ``resume``, or a checkpoint from different settings.
    """
    if recipe not in ("fast", "paper"):
        raise CsrnetError(f"recipe must be 'fast' or 'paper', got {recipe!r}")
    init_model = load_model(init) if init is not None else None
    if arch is None:
        arch = init_model.arch if init_model is not None else "csrnet"
    before = torch.get_num_threads()
    torch.set_num_threads(threads if threads is not None else default_threads())
    try:
        return _train(
            pairs_dir, out_dir, val_dir=val_dir, val_fraction=val_fraction, list_file=list_file, init=init, init_model=init_model,
            freeze=freeze, recipe=recipe, iters=iters, seed=seed, resume=resume, arch=arch,
            condition_size=condition_size, checkpoint_every=checkpoint_every, val_every=val_every, lr=lr,
            batch=batch, pixels=pixels, device=device, progress=progress, max_seconds=max_seconds,
            max_cpu_seconds=max_cpu_seconds,
        )
    finally:
        torch.set_num_threads(before)


def default_threads() -> int:
    """torch's thread count, reduced to the cores left idle by the 1-minute load average.

    The networks' operations are small, so OpenMP threads that must wait for busy cores
    cost far more than they bring (bench/results/design_timings.md).
    """
    n = torch.get_num_threads()
    try:
        idle = cpu_threads() - os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average on this platform
        return n
    return max(1, min(n, int(idle + 0.5)))


def _train(
    pairs_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    val_dir: str | os.PathLike[str] | None,
    val_fraction: float,
    list_file: str | os.PathLike[str] | None,
    init: str | os.PathLike[str] | None,
    init_model: Model | None,
    freeze: Freeze,
    recipe: Recipe,
    iters: int | None,
    seed: int,
    resume: bool,
    arch: str,
    condition_size: int | None,
    checkpoint_every: int | None,
    val_every: int | None,
    lr: float | None,
    batch: int,
    pixels: int,
    device: str | torch.device | None,
    progress: bool,
    max_seconds: float | None,
    max_cpu_seconds: float | None,
) -> Path:
    """:func:`train` with the thread count already set."""
    if iters is not None and iters < 1:
        raise CsrnetError(f"iters must be positive, got {iters}")
    out = Path(out_dir)
    ckpt_dir = out / "checkpoints"
    ckpt_path = ckpt_dir / CHECKPOINT_NAME
    if ckpt_path.exists() and not resume:
        raise CsrnetError(f"{out}: holds a checkpoint already; resume it (--resume) or choose another output folder")
    dev = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))

    train_pairs, val_pairs = _resolve_data(
        Path(pairs_dir), None if val_dir is None else Path(val_dir), val_fraction, seed, None if list_file is None else Path(list_file)
    )

    torch.manual_seed(seed)
    model = get_architecture(arch).torch_module()().to(dev)
    if init_model is not None:
        _load_init(model, init_model, str(init), arch)
        model.to(dev)

    # Condition size must be known before caching the condition copies.
    if recipe == "paper":
        # The released recipe conditions on the full image; record the size it saw (median
        # long edge of the training inputs) so inference downscales to that.
        cond_size = int(np.median([max(image_size(p.input)) for p in train_pairs]))
    else:
        cond_size = _default_condition_size(condition_size, init_model)
    train_data = _cache(train_pairs, cond_size, dev, progress)
    val_data = _cache(val_pairs, cond_size, dev, progress)

    if iters is not None:
        n_iters = iters
    else:
        n_iters = PAPER_ITERS if recipe == "paper" else (FAST_FINETUNE_ITERS if init is not None else FAST_ITERS)
    peak_lr = lr if lr is not None else (PAPER_LR if recipe == "paper" else (FAST_FINETUNE_LR if init is not None else FAST_LR))
    config = TrainConfig(
        arch=arch,
        recipe=recipe,
        iters=n_iters,
        seed=seed,
        freeze=freeze,
        init=None if init is None else str(init),
        condition_size=cond_size,
        lr=peak_lr,
        batch=batch if recipe == "fast" else 1,
        pixels=pixels if recipe == "fast" else 0,
        train_names=tuple(p.name for p in train_pairs),
    )
    params = _trainable(model, freeze)
    if not params:
        raise CsrnetError("nothing to train: every parameter is frozen")
    opt = torch.optim.Adam(params, lr=peak_lr, betas=BETAS, weight_decay=0.0)

    start = 0
    elapsed0 = cpu0 = 0.0
    if resume and ckpt_path.exists():
        start, elapsed0, cpu0 = _restore(ckpt_path, model, opt, config)
    ckpt_every = checkpoint_every or max(1, n_iters // 10)
    val_every = val_every or ckpt_every

    out.mkdir(parents=True, exist_ok=True)
    ckpt_dir.mkdir(exist_ok=True)
    remove_stale_temporaries([ckpt_dir])  # a killed run's half-saved checkpoint
    logger = _Logger(out, start)
    identity_psnr = float(np.mean([psnr8(ex.x, ex.y) for ex in val_data])) if val_data else None
    step_loss = _paper_loss if recipe == "paper" else _fast_loss

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n_iters, initial=start, desc=f"train ({recipe})", unit="it", dynamic_ncols=True)
    t0 = time.perf_counter() - elapsed0
    c0 = time.process_time() - cpu0
    if start == 0 and val_data:  # where the run starts from (identity, init or random)
        logger.log(iter=0, seconds=0.0, cpu_seconds=0.0, loss=None, lr=None, val_psnr=_validate(model, val_data), val_identity_psnr=identity_psnr)
        t0, c0 = time.perf_counter(), time.process_time()
    model.train()
    it = start
    val_psnr = None
    smoothed = None
    try:
        while it < n_iters:
            for g in opt.param_groups:
                g["lr"] = peak_lr * _lr_factor(config, it)
            loss = step_loss(model, train_data, config, it)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            it += 1
            loss_v = float(loss.detach())
            smoothed = loss_v if smoothed is None else 0.95 * smoothed + 0.05 * loss_v
            out_of_time = (max_seconds is not None and time.perf_counter() - t0 >= max_seconds) or (
                max_cpu_seconds is not None and time.process_time() - c0 >= max_cpu_seconds
            )
            val_psnr = None
            if val_data and (it % val_every == 0 or it == n_iters or out_of_time):
                val_psnr = _validate(model, val_data)
            logger.log(
                iter=it,
                seconds=round(time.perf_counter() - t0, 3),
                cpu_seconds=round(time.process_time() - c0, 3),
                loss=loss_v,
                lr=opt.param_groups[0]["lr"],
                val_psnr=val_psnr,
                val_identity_psnr=identity_psnr if val_psnr is not None else None,
            )
            if it % ckpt_every == 0 or it == n_iters or out_of_time:
                _checkpoint(ckpt_path, model, opt, config, it, time.perf_counter() - t0, time.process_time() - c0)
            if bar is not None:
                bar.update(1)
                post = {"loss": f"{smoothed:.4f}"}
                if val_psnr is not None:
                    post["val"] = f"{val_psnr:.2f}dB"
                bar.set_postfix(post, refresh=False)
            if out_of_time:
                break
    finally:
        if bar is not None:
            bar.close()
        logger.close()

    final_val = _validate(model, val_data) if val_data else None
    train_psnr = _validate(model, train_data)
    train_identity = float(np.mean([psnr8(ex.x, ex.y) for ex in train_data]))
    meta = _model_card(config, Path(pairs_dir), it, len(val_data), final_val, identity_psnr, train_psnr, train_identity, init_model)
    tensors = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    return save_model(Model(tensors, meta, name=out.name), out / WEIGHTS_NAME)


def _checkpoint(
    path: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, config: TrainConfig, it: int, seconds: float, cpu_seconds: float
) -> None:
    state = {
        "iteration": it,
        "seconds": float(seconds),
        "cpu_seconds": float(cpu_seconds),
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()},
    }
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    _atomic_torch_save(state, path)


def _restore(path: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, config: TrainConfig) -> tuple[int, float, float]:
    """Load a checkpoint (weights_only) into model/optimizer; returns (iteration, wall and CPU seconds so far)."""
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:
        raise CsrnetError(f"{path}: unreadable checkpoint ({str(e).strip().splitlines()[0][:120] if str(e).strip() else type(e).__name__})") from None
    saved = state.get("config", {})
    mine = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()}
    diff = sorted(k for k in mine if saved.get(k) != mine[k])
    if diff:
        raise CsrnetError(f"{path}: was written with different settings ({', '.join(diff)}); resume with the same ones or use a new output folder")
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    if "cuda_rng" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return int(state["iteration"]), float(state.get("seconds", 0.0)), float(state.get("cpu_seconds", 0.0))


def _model_card(
    config: TrainConfig,
    pairs_dir: Path,
    done_iters: int,
    n_val: int,
    val_psnr: float | None,
    val_identity: float | None,
    train_psnr: float,
    train_identity: float,
    init_model: Model | None,
) -> dict[str, Any]:
    def r(v: float | None) -> float | None:
        return None if v is None else round(float(v), 3)

    card: dict[str, Any] = {
        "arch": config.arch,
        "condition_size": config.condition_size,
        "source": "trained with csrnet train",
        "data": {"pairs": pairs_dir.resolve().name, "train_count": len(config.train_names), "val_count": n_val},
        "training": {
            "recipe": config.recipe,
            "iters": done_iters,
            "planned_iters": config.iters,
            "seed": config.seed,
            "lr": config.lr,
            "batch": config.batch,
            "pixels_per_image": config.pixels or None,
            "init": None if config.init is None else Path(config.init).name,
            "freeze": config.freeze,
        },
        "metrics": {
            "val_psnr": r(val_psnr),
            "val_identity_psnr": r(val_identity),
            "train_psnr": r(train_psnr),
            "train_identity_psnr": r(train_identity),
            "psnr_convention": "8-bit RGB, mean over images; identity = input vs target",
        },
    }
    if init_model is not None and init_model.meta.get("license"):
        card["license"] = init_model.meta["license"]
    return card
