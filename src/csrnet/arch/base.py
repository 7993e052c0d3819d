"""The interface every architecture implements (torch-free), and the registry that finds them by name.

An architecture is one module under :mod:`csrnet.arch` holding one :class:`Architecture`
subclass, registered with :func:`register`. The pipeline (:mod:`csrnet.pipeline`) is the only
caller; it never asks which architecture it holds. The steps, in the order the pipeline runs them:

1. :meth:`~Architecture.condition` — from the small condition copy of the photo, everything the
   per-pixel network needs (a condition vector, maps ...): the *state*.
2. either :meth:`~Architecture.run_exact` — the per-pixel network on every pixel, in tiles —
3. or :meth:`~Architecture.bake` — the state's transform baked into a lattice (or a grid of them),
   which the kernels apply (:class:`csrnet.kernels.lut.Lattice`, :class:`~csrnet.kernels.lut.LatticeGrid`);
   :meth:`~Architecture.prefers_exact` says when exact mode is cheaper for a photo of that size.
4. :attr:`~Architecture.single_lut` — whether one global ``.cube`` can describe the transform
   (:meth:`~Architecture.bake_table` then gives it).

Weights (:mod:`csrnet.weights`) take tensor names and shapes from :meth:`~Architecture.tensor_shapes`;
training takes the torch module from :meth:`~Architecture.torch_module`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..errors import ModelError
from ..kernels.lut import Lattice, LatticeGrid

if TYPE_CHECKING:
    from ..model import Model

__all__ = ["Architecture", "CopyFn", "register", "get_architecture", "architectures"]

#: The pipeline's condition copy of the photo for a model: (h, w, 3) float32 in [0, 1].
CopyFn = Callable[["Model"], np.ndarray]


class Architecture(ABC):
    """One network family's inference, torch-free. Subclasses are stateless singletons."""

    #: the name stored in a weights file's card (``meta["arch"]``)
    name: ClassVar[str]
    #: whether one global 3D LUT describes the transform (False for spatially varying ones)
    single_lut: ClassVar[bool]
    #: lattice size of the fast path when the caller gives none
    default_lut_size: ClassVar[int]
    #: ``module:Class`` of the torch definition used for training (imported only when asked for)
    torch_class: ClassVar[str]

    @abstractmethod
    def tensor_shapes(self) -> dict[str, tuple[int, ...]]:
        """Tensor name -> shape of a weights file of this architecture."""

    @abstractmethod
    def condition(self, model: Any, copy: CopyFn, threads: int) -> Any:
        """The state the per-pixel network needs, from the condition copies ``copy(model)``."""

    @abstractmethod
    def run_exact(self, state: Any, x: np.ndarray, threads: int) -> np.ndarray:
        """The per-pixel network on (H, W, 3) float32 ``x`` in [0, 1]: (H, W, 3) float32, unclipped."""

    @abstractmethod
    def prefers_exact(self, state: Any, shape: tuple[int, int], lut_size: int) -> bool:
        """Whether exact mode is cheaper than baking for a photo of ``shape`` (H, W)."""

    @abstractmethod
    def bake(self, state: Any, size: int, strength: float, shape: tuple[int, int], threads: int) -> Lattice | LatticeGrid:
        """The transform for a photo of ``shape``, baked with ``strength`` folded in."""

    def bake_table(self, state: Any, size: int, strength: float, *, fit: bool, threads: int) -> np.ndarray:
        """One global (size**3, 3) table; only where :attr:`single_lut`."""
        raise NotImplementedError(f"{self.name}: no single 3D LUT describes this architecture")

    def torch_module(self) -> type:
        """The torch ``nn.Module`` class of this architecture (imports torch)."""
        import importlib

        module, _, cls = self.torch_class.partition(":")
        return getattr(importlib.import_module(module), cls)


_REGISTRY: dict[str, Architecture] = {}


def register(cls: type[Architecture]) -> type[Architecture]:
    """Class decorator: add an architecture to the registry under its :attr:`~Architecture.name`."""
    _REGISTRY[cls.name] = cls()
    return cls


def get_architecture(name: str) -> Architecture:
    """The registered architecture called ``name``; :class:`~csrnet.errors.ModelError` for an unknown one."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ModelError(f"unknown architecture {name!r} (known: {', '.join(sorted(_REGISTRY))})") from None


def architectures() -> dict[str, Architecture]:
    """Name -> architecture, for every registered one."""
    return dict(_REGISTRY)
