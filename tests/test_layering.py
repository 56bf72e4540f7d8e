"""Imports only go down: ``synapse_sim -> learning_rules -> devices`` (DESIGN.md).

Run-time checks import a package in a fresh interpreter and look at ``sys.modules``; static
checks parse every ``.py`` file of a package with :mod:`ast`, so an import hidden in a function
is caught too.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: package -> top-level modules it must never import, anywhere in its source.
FORBIDDEN = {
    "devices": {"learning_rules", "synapse_sim", "torch"},
    "learning_rules": {"synapse_sim"},
}
#: package -> modules it may import only lazily, inside a function (never while being imported).
LAZY_ONLY = {"devices": {"cupy"}}
#: package -> modules that ``import package`` must not load.
NOT_LOADED = {
    "devices": ("torch", "cupy", "learning_rules", "synapse_sim"),
    "learning_rules": ("synapse_sim",),
}


@pytest.mark.parametrize("package", sorted(NOT_LOADED))
def test_import_does_not_load(package):
    code = (
        "import json, sys\n"
        f"import {package}\n"
        f"print(json.dumps([m for m in {list(NOT_LOADED[package])!r} if m in sys.modules]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert loaded == [], f"import {package} also imported {loaded}"


def _imports(tree: ast.AST):
    """Yield ``(top-level module, line, lazy)`` for every import in ``tree``.

    ``lazy`` is True inside a function body. ``importlib.import_module("x")`` and
    ``__import__("x")`` with a constant name count as imports.
    """

    def visit(node, lazy):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0], node.lineno, lazy
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0], node.lineno, lazy
        elif isinstance(node, ast.Call) and node.args:
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            arg = node.args[0]
            if name in ("import_module", "__import__") and isinstance(arg, ast.Constant):
                if isinstance(arg.value, str):
                    yield arg.value.split(".")[0], node.lineno, lazy
        inner = lazy or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        for child in ast.iter_child_nodes(node):
            yield from visit(child, inner)

    yield from visit(tree, False)


def _sources(package):
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no Python files under {package}/"
    return files


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_upward_imports_in_source(package):
    bad = []
    for path in _sources(package):
        tree = ast.parse(path.read_text(), filename=str(path))
        for module, line, lazy in _imports(tree):
            rel = path.relative_to(ROOT)
            if module in FORBIDDEN[package]:
                bad.append(f"{rel}:{line} imports {module}")
            elif module in LAZY_ONLY.get(package, ()) and not lazy:
                bad.append(f"{rel}:{line} imports {module} at import time (import it lazily)")
    assert not bad, "\n".join(bad)


def test_import_scanner_sees_hidden_imports():
    src = (
        "import os\n"
        "from torch import nn\n"
        "class A:\n"
        "    import cupy\n"
        "def f():\n"
        "    import cupy.random\n"
        "    importlib.import_module('synapse_sim.cli.main')\n"
    )
    found = sorted(_imports(ast.parse(src)))
    assert found == [
        ("cupy", 4, False),
        ("cupy", 6, True),
        ("os", 1, False),
        ("synapse_sim", 7, True),
        ("torch", 2, False),
    ]


def test_public_callables_have_docstrings():
    import devices

    missing = []
    for name in devices.__all__:
        obj = getattr(devices, name)
        if callable(obj):
            doc = obj.__doc__  # a class's own docstring; not inherited from its base class
            if not (doc and doc.strip()):
                missing.append(name)
    assert not missing, f"public names of devices without a docstring: {missing}"


def _module_constants(path: Path) -> dict[str, bool]:
    """Top-level assigned names of a file -> documented Sphinx-style (``#:`` comment above the
    assignment, or a string literal right below it)."""
    source = path.read_text()
    lines = source.splitlines()
    body = ast.parse(source).body
    out = {}
    for i, node in enumerate(body):
        if not isinstance(node, ast.Assign | ast.AnnAssign):
            continue
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        above = lines[node.lineno - 2].strip() if node.lineno > 1 else ""
        nxt = body[i + 1] if i + 1 < len(body) else None
        below = (
            isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
            and isinstance(nxt.value.value, str)
        )
        for t in targets:
            if isinstance(t, ast.Name):
                out[t.id] = above.startswith("#:") or below
    return out


def test_public_constants_are_documented():
    import devices

    constants = {n for n in devices.__all__ if not callable(getattr(devices, n))}
    found: dict[str, bool] = {}
    for path in _sources("devices"):
        if path.name == "__init__.py":
            continue
        for name, documented in _module_constants(path).items():
            if name in constants:
                found[name] = found.get(name, False) or documented
    assert set(found) == constants, f"cannot find where {constants - set(found)} are defined"
    missing = sorted(n for n, ok in found.items() if not ok)
    assert not missing, (
        "public constants of devices need a '#:' comment above (or a string below) their "
        f"assignment: {missing}"
    )
