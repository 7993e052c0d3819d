"""A loaded model: tensors and the card that describes them (no loading or saving here: :mod:`csrnet.weights`)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Model"]


@dataclass
class Model:
    """A loaded model: float32 numpy tensors plus the metadata card.

    ``condition_size`` is the long-edge size (pixels) the condition network was
    trained at, or ``None`` when it was trained on full-resolution inputs.
    """

    tensors: dict[str, np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)
    name: str = ""

    @property
    def arch(self) -> str:
        return str(self.meta.get("arch", "csrnet"))

    @property
    def condition_size(self) -> int | None:
        size = self.meta.get("condition_size")
        return None if size is None else int(size)

    @property
    def description(self) -> str:
        """One line for listings: the card's summary, else the local task a CSRNet-L learned, else its source."""
        if self.meta.get("summary"):
            return str(self.meta["summary"])
        if self.meta.get("task"):
            return f"local look ({self.meta['task']}), {self.meta.get('source', 'trained here')}"
        return str(self.meta.get("source", ""))

    @property
    def fingerprint(self) -> str:
        """8 hex digits of a SHA-256 over the tensors (names and values): tells weights apart whatever their file name."""
        h = hashlib.sha256()
        for name in sorted(self.tensors):
            h.update(name.encode())
            h.update(np.ascontiguousarray(self.tensors[name], np.float32).tobytes())
        return h.hexdigest()[:8]

    @property
    def num_parameters(self) -> int:
        return int(sum(t.size for t in self.tensors.values()))

    def __repr__(self) -> str:
        return f"Model(name={self.name!r}, arch={self.arch!r}, params={self.num_parameters}, condition_size={self.condition_size})"
