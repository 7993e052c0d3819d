"""Shared fixtures. Tests that need ../shared skip only when it is absent and CI is unset."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CHECKPOINT = SHARED / "reference" / "csrnet_official_eccv2020.pth"
GOLDEN = SHARED / "reference" / "golden"
PHOTOS = SHARED / "data" / "photos"
PAIRS = SHARED / "data" / "fivek_pairs"


def need_shared() -> Path:
    """The shared folder; skip if it is missing outside CI, fail inside CI."""
    if not SHARED.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"shared material missing at {SHARED} (CI must have it)")
        pytest.skip("../shared is absent (not in CI)")
    return SHARED


@pytest.fixture(scope="session")
def shared() -> Path:
    return need_shared()


@pytest.fixture(scope="session")
def ref_model(shared):
    """The authors' released checkpoint, converted in memory."""
    import csrnet

    return csrnet.load_model(CHECKPOINT)


@pytest.fixture(scope="session")
def ref_weights(ref_model, tmp_path_factory) -> Path:
    """The released checkpoint as a torch-free .safetensors file."""
    from csrnet.weights import save_model

    return save_model(ref_model, tmp_path_factory.mktemp("w") / "ref.safetensors")


def golden_names() -> list[str]:
    if not GOLDEN.is_dir():
        return []
    return sorted(p.name[: -len("_input.png")] for p in GOLDEN.glob("*_input.png"))


@pytest.fixture
def photo_u8(shared) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(PHOTOS / "gcompris_animal-bison.jpg").convert("RGB"))
