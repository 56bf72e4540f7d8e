"""Fixtures shared by the tests of ``tests/synapse_sim``."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def load_example():
    """``load_example(name)``: the module ``examples/<name>.py`` (its ``main`` not run)."""

    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod

    return load
