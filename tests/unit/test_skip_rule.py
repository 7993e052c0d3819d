"""The one skip rule (tests/conftest.py): a missing requirement skips a test on a developer's
machine and fails it in CI, so CI cannot pass by skipping."""

from __future__ import annotations

import pytest

from tests.conftest import need, need_module


def test_need_skips_outside_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        need(False, "missing thing")


def test_need_fails_in_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="required in CI"):
        need(False, "missing thing")


def test_need_module_fails_in_ci_for_a_missing_module(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="no_such_module_xyz"):
        need_module("no_such_module_xyz")


def test_need_passes_when_present(monkeypatch):
    monkeypatch.setenv("CI", "true")
    need(True, "present")
    assert need_module("json").__name__ == "json"


def test_c_kernel_fixture_is_required_in_ci(monkeypatch):
    """The C kernel is not exempt: a build that silently failed must not turn 28 tests into skips."""
    from csrnet.kernels import lut

    import tests.conftest as conftest

    monkeypatch.setenv("CI", "true")
    monkeypatch.setattr(lut, "HAVE_KERNEL", False)
    with pytest.raises(pytest.fail.Exception):
        conftest.c_kernel.__wrapped__()  # the fixture's function, called directly
