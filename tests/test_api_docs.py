"""``make docs``: every public module imports, documents itself, and gets an HTML page."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _builder():
    spec = importlib.util.spec_from_file_location("build_api", ROOT / "docs" / "build_api.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_every_public_module_documents_itself(tmp_path):
    api = _builder()
    names = api.public_modules()
    assert {"devices", "learning_rules", "synapse_sim", "synapse_sim.results.store"} <= set(names)
    assert not any(part.startswith("_") for n in names for part in n.split("."))
    files, problems = api.build(tmp_path)
    assert problems == []
    assert len(files) == len(names) + 1
    index = (tmp_path / "index.html").read_text()
    for name in names:
        mod = importlib.import_module(name)
        page = (tmp_path / f"{name}.html").read_text()
        words = re.findall(r"[A-Za-z]{4,}", api.first_line(mod.__doc__))
        assert words and all(w in page for w in words[:3]), name  # the docstring is rendered
        for public in getattr(mod, "__all__", ()):
            assert public in page, (name, public)
        assert f'href="{name}.html"' in index


def test_a_module_without_docstring_is_a_problem(tmp_path, monkeypatch):
    api = _builder()
    pkg = tmp_path / "src" / "nodoc_pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text('"""A package."""\n')
    (pkg / "bare.py").write_text("X = 1\n")
    (pkg / "broken.py").write_text('"""Broken."""\nimport not_a_module_xyz\n')
    (pkg / "_private.py").write_text("Y = 2\n")
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    files, problems = api.build(tmp_path / "out", packages=("nodoc_pkg",))
    assert sorted(p.split(":")[0] for p in problems) == ["nodoc_pkg.bare", "nodoc_pkg.broken"]
    assert "no docstring" in " ".join(problems) and "import failed" in " ".join(problems)
    assert [f.name for f in files] == ["nodoc_pkg.html", "index.html"]
