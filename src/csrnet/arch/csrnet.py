"""CSRNet (ECCV 2020), the global network: inference for the pipeline, and style blends.

The base network is a per-pixel MLP whose only dependence on the rest of the image is the 32-d
condition vector. Once that vector is known (from the condition copy), global feature modulation
folds into the MLP's weights (:func:`~csrnet.arch.layers.modulated_layers`) and the whole
transform is one fixed colour map R^3 -> R^3: the fast path bakes it into a lattice fitted to
the photo's colours (:func:`csrnet.kernels.lattice.fit_lattice`); exact mode runs the MLP on
every pixel in tiles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from ..errors import InvalidArgumentError
from ..kernels.lattice import DEFAULT_LUT_SIZE, fit_lattice, sample_lattice
from ..kernels.lut import Lattice
from .base import Architecture, CopyFn, get_architecture, register
from .layers import COLOUR_BINS, Layers, condition_vector, modulated_layers, modulation, run_mlp

if TYPE_CHECKING:
    from ..model import Model

__all__ = ["Blend", "CSRNet", "CSRNetHist", "GlobalState", "EXACT_BELOW_PIXELS", "csrnet_shapes", "hist_shapes"]

#: Below this many pixels exact mode is cheaper than fitting a lattice (the fit costs as much as
#: ~1 MP of per-pixel MLP), so the pipeline runs small photos exactly.
EXACT_BELOW_PIXELS = 1 << 20


def csrnet_shapes(in_nc: int = 3, out_nc: int = 3, nf: int = 64, cf: int = 32) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes of the released checkpoint (36,489 parameters)."""
    shapes: dict[str, tuple[int, ...]] = {
        "cond_net.conv1.weight": (cf, in_nc, 7, 7),
        "cond_net.conv1.bias": (cf,),
        "cond_net.conv2.weight": (cf, cf, 3, 3),
        "cond_net.conv2.bias": (cf,),
        "cond_net.conv3.weight": (cf, cf, 3, 3),
        "cond_net.conv3.bias": (cf,),
        "conv1.weight": (nf, in_nc, 1, 1),
        "conv1.bias": (nf,),
        "conv2.weight": (nf, nf, 1, 1),
        "conv2.bias": (nf,),
        "conv3.weight": (out_nc, nf, 1, 1),
        "conv3.bias": (out_nc,),
    }
    for i, c in ((1, nf), (2, nf), (3, out_nc)):
        for kind in ("scale", "shift"):
            shapes[f"cond_{kind}{i}.weight"] = (c, cf)
            shapes[f"cond_{kind}{i}.bias"] = (c,)
    return shapes


def hist_shapes(cf: int = 32, hidden: int = 32) -> dict[str, tuple[int, ...]]:
    """The colour-statistics branch of ``csrnet-hist``: 5 cumulative histograms -> hidden -> cf (3,648 parameters)."""
    return {
        "cond_hist1.weight": (hidden, 5 * COLOUR_BINS),
        "cond_hist1.bias": (hidden,),
        "cond_hist2.weight": (cf, hidden),
        "cond_hist2.bias": (cf,),
    }


@dataclass(frozen=True)
class Blend:
    """A weighted mix of CSRNet models, usable wherever a model is (``enhance``, ``bake_lut``).

    ``mode="lut"`` mixes the models' transforms (their lattices, or per-pixel outputs in
    exact mode): any models. ``mode="modulation"`` mixes their (scale, shift) modulations
    and runs one base network: only for models sharing the base network (styles
    fine-tuned with ``--freeze base``). Weights are used as given (normalise them yourself).
    """

    parts: tuple[tuple[Model, float], ...]
    mode: Literal["lut", "modulation"] = "lut"

    def __post_init__(self) -> None:
        if not self.parts:
            raise InvalidArgumentError("a style blend needs at least one model")
        if self.mode not in ("lut", "modulation"):
            raise InvalidArgumentError(f"unknown blend mode {self.mode!r} (lut or modulation)")
        if any(not isinstance(get_architecture(m.arch), CSRNet) for m, _ in self.parts):
            raise InvalidArgumentError("style blends take global CSRNet models only")
        if self.mode == "modulation":
            base = self.parts[0][0].tensors
            for m, _ in self.parts[1:]:
                if any(not np.array_equal(base[f"conv{i}.{k}"], m.tensors[f"conv{i}.{k}"]) for i in (1, 2, 3) for k in ("weight", "bias")):
                    raise InvalidArgumentError(f"{m.name or 'a model'}: base network differs from {self.parts[0][0].name or 'the first'}; use the lut blend")

    @property
    def arch(self) -> str:
        return CSRNet.name

    @property
    def condition_size(self) -> int | None:
        return self.parts[0][0].condition_size


@dataclass(frozen=True)
class GlobalState:
    """CSRNet's state for one photo: the folded networks to mix with their weights, and the
    condition copy whose colours the lattice is fitted to."""

    mix: list[tuple[Layers, float]]
    colours: np.ndarray


@register
class CSRNet(Architecture):
    """The paper's network: condition vector -> global feature modulation -> per-pixel MLP."""

    name = "csrnet"
    single_lut = True
    default_lut_size = DEFAULT_LUT_SIZE
    torch_class = "csrnet.training.network:CSRNet"

    def tensor_shapes(self) -> dict[str, tuple[int, ...]]:
        return csrnet_shapes()

    def condition(self, model: Model | Blend, copy: CopyFn, threads: int) -> GlobalState:
        parts = model.parts if isinstance(model, Blend) else ((model, 1.0),)
        small = copy(parts[0][0])
        per = [(m, w, modulation(m, condition_vector(m, copy(m), threads=threads))) for m, w in parts]
        if isinstance(model, Blend) and model.mode == "modulation":
            mixed = [(sum(w * mod[i][0] for _, w, mod in per), sum(w * mod[i][1] for _, w, mod in per)) for i in range(3)]
            return GlobalState([(modulated_layers(per[0][0], None, mixed), 1.0)], small)  # type: ignore[arg-type]
        return GlobalState([(modulated_layers(m, None, mod), w) for m, w, mod in per], small)

    def run_exact(self, state: GlobalState, x: np.ndarray, threads: int) -> np.ndarray:
        flat = x.reshape(-1, 3)
        out = None
        for layers, w in state.mix:
            y = run_mlp(layers, flat, threads=threads)
            out = y * np.float32(w) if out is None else out + y * np.float32(w)
        return out.reshape(x.shape)  # type: ignore[union-attr]

    def prefers_exact(self, state: GlobalState, shape: tuple[int, int], lut_size: int) -> bool:
        return shape[0] * shape[1] < EXACT_BELOW_PIXELS

    def bake(self, state: GlobalState, size: int, strength: float, shape: tuple[int, int], threads: int) -> Lattice:
        # the network runs exactly only at the lattice nodes this photo's colours need (photo_only)
        table = sum(np.float32(w) * fit_lattice(_colour_map(layers, threads), state.colours, size, strength, photo_only=True)
                    for layers, w in state.mix)
        return Lattice(table, size)  # type: ignore[arg-type]

    def bake_table(self, state: GlobalState, size: int, strength: float, *, fit: bool, threads: int) -> np.ndarray:
        tables = [w * (fit_lattice(_colour_map(layers, threads), state.colours, size, strength) if fit
                       else sample_lattice(_colour_map(layers, threads), size, strength)) for layers, w in state.mix]
        return np.sum(tables, axis=0, dtype=np.float32)


@register
class CSRNetHist(CSRNet):
    """CSRNet whose condition network also sees colour statistics (this project's variant, 40,137 parameters).

    Beside the paper's three convolutions and global mean, a small branch reads cumulative
    histograms of R, G, B, luma and chroma of the condition copy
    (:func:`~csrnet.arch.layers.colour_statistics`) and adds its 32-d output to the condition
    vector: ``cond = mean(convs(x)) + W2 relu(W1 hist(x) + b1) + b2``. Everything after the
    condition vector — modulation, base network, lattice — is the paper's. With ``W2 = b2 = 0`` it
    is exactly the CSRNet whose tensors it shares (so a CSRNet initialises it).
    """

    name = "csrnet-hist"
    torch_class = "csrnet.training.network:CSRNetHist"

    def tensor_shapes(self) -> dict[str, tuple[int, ...]]:
        return {**csrnet_shapes(), **hist_shapes()}


def _colour_map(layers: Layers, threads: int):
    return lambda colours: run_mlp(layers, colours, threads=threads)
