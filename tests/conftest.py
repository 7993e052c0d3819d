"""Shared paths, fixtures, markers and the one skip rule.

The skip rule: a test whose requirement is missing (../shared, an optional test dependency, a
tool such as ffmpeg) skips only when the environment variable CI is unset; in CI it fails, so
CI never passes by skipping. Every such skip goes through :func:`need` (or its shorthands
:func:`need_shared`, :func:`need_module` and the ``shared`` / ``c_kernel`` fixtures). Only what CI
cannot have (a platform feature such as CPU affinity) may skip there, and its reason says so.
``.ci/run`` sets CI=true itself.

Markers (registered in pyproject.toml; ``--strict-markers``), applied here automatically:

* ``shared``: the test uses the ``shared`` fixture (directly or through ``ref_model``,
  ``ref_weights``, ``photo_u8`` or any fixture built on them).
* ``torch``: the test module imports torch at module level (a module global named ``torch``),
  or the test uses ``ref_model``/``ref_weights`` (converting the released .pth needs torch).
  A test that imports torch only inside its body (or runs it in a subprocess) says so with
  ``@pytest.mark.torch``.
* ``slow``: everything under tests/e2e/; a unit test over ~3 s carries ``@pytest.mark.slow``.
  ``python -m pytest -m "not slow"`` runs the fast part.

A test marked ``torch`` or ``shared`` (automatically or by hand) goes through :func:`need_module`
/ :func:`need_shared` before it runs, so the marker alone is enough to get the skip rule.
"""

from __future__ import annotations

import importlib
import os
import types
from pathlib import Path

import numpy as np
import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent  # the repository
DATA = TESTS / "data"  # small files the tests ship (tests/data)
E2E = TESTS / "e2e"
SHARED = ROOT.parent / "shared"
CHECKPOINT = SHARED / "reference" / "csrnet_official_eccv2020.pth"
GOLDEN = SHARED / "reference" / "golden"
PHOTOS = SHARED / "data" / "photos"
PAIRS = SHARED / "data" / "fivek_pairs"

#: Fixtures that mean "needs ../shared" and "needs torch" (marking is by the fixture closure).
SHARED_FIXTURES = frozenset({"shared", "ref_model", "ref_weights", "photo_u8"})
TORCH_FIXTURES = frozenset({"ref_model", "ref_weights"})


# ---------------------------------------------------------------- the one skip rule
def in_ci() -> bool:
    """True where the environment variable CI is set (non-empty)."""
    return bool(os.environ.get("CI"))


def need(condition: object, reason: str, *, required_in_ci: bool = True) -> None:
    """Go on if ``condition`` holds; otherwise skip the test (or the module, at import time)
    outside CI and fail it in CI. ``required_in_ci=False`` skips in CI too: only for what CI
    cannot have (hardware such as a GPU); nothing uses it today."""
    if condition:
        return
    if required_in_ci and in_ci():
        pytest.fail(f"{reason} (required in CI: the CI environment variable is set)")
    pytest.skip(reason, allow_module_level=True)


def need_module(name: str, *, required_in_ci: bool = True) -> types.ModuleType:
    """Import an optional test dependency by name (e.g. ``torch = need_module("torch")`` at the top of a
    module): skipped when absent outside CI, failed in CI (the test extra installs them all)."""
    try:
        return importlib.import_module(name)
    except ImportError as e:
        need(False, f"{name} not installed ({e})", required_in_ci=required_in_ci)
        raise  # not reached: need() skipped or failed


def need_shared() -> Path:
    """The shared folder; skip if it is missing outside CI, fail inside CI."""
    need(SHARED.is_dir(), f"../shared is absent ({SHARED})")
    return SHARED


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def shared() -> Path:
    return need_shared()


@pytest.fixture(scope="session")
def ref_model(shared):
    """The authors' released checkpoint, converted in memory (reading a .pth needs torch)."""
    need_module("torch")
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


@pytest.fixture(scope="session")
def adobe_rgb_icc() -> bytes:
    """An Adobe RGB (1998) ICC profile (tests/helpers.py; needs colour-science)."""
    from tests.helpers import adobe_rgb_icc as build

    return build()


@pytest.fixture
def c_kernel():
    """The compiled LUT kernel (csrnet.kernels._lut). Optional for users (setup.py builds it only
    where a C compiler exists and the package falls back to Pillow/numpy), required in CI: .ci/run
    installs a compiler when missing, so a kernel that fails to build fails the run."""
    from csrnet.kernels import lut

    need(lut.HAVE_KERNEL, "the C kernel was not built (no compiler at install time)")
    return lut._kernel


# ---------------------------------------------------------------- markers
def _imports_torch(module: types.ModuleType | None) -> bool:
    value = getattr(module, "torch", None)
    return isinstance(value, types.ModuleType) and value.__name__ == "torch"


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & SHARED_FIXTURES:
            item.add_marker(pytest.mark.shared)
        if fixtures & TORCH_FIXTURES or _imports_torch(getattr(item, "module", None)):
            item.add_marker(pytest.mark.torch)
        if E2E in item.path.parents:
            item.add_marker(pytest.mark.slow)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """The markers carry the skip rule: no test marked ``torch``/``shared`` runs without them."""
    if item.get_closest_marker("shared") is not None:
        need_shared()
    if item.get_closest_marker("torch") is not None:
        need_module("torch")
