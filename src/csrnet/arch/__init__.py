"""Architectures, torch-free: one module per network family, found by name through the registry.

Adding one means: a module here with an :class:`~csrnet.arch.base.Architecture` subclass decorated
with :func:`~csrnet.arch.base.register` and imported below, and its torch class in
:mod:`csrnet.training.network` (named by ``torch_class``).
"""

from . import csrnet, csrnet_l  # noqa: F401  (importing registers them)
from .base import Architecture, architectures, get_architecture, register

__all__ = ["Architecture", "architectures", "get_architecture", "register"]
