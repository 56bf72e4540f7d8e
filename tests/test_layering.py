"""Imports only go down: ``synapse_sim -> learning_rules -> devices`` (DESIGN.md), and inside
``synapse_sim``: ``cli -> sweep -> studies -> {nn, models, data, results}`` (one layer each; the
four bottom subpackages import none of each other); no module imports another module's
``_private`` name.

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
        "    importlib.import_module('synapse_sim.cli.app')\n"
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


# ----------------------------------------------------------------------------- synapse_sim layers
#: synapse_sim subpackage -> its layer. A module may import a subpackage of a lower layer only
#: (its own subpackage too); ``synapse_sim/__init__.py`` re-exports from any of them.
SYNAPSE_SIM_LAYERS = {
    "cli": 4,
    "sweep": 3,
    "studies": 2,
    "nn": 1,
    "models": 1,
    "data": 1,
    "results": 1,
}
#: Known imports of another module's private name, each owned by a pending change (issue 14:
#: the torch bridge, the sweep rework, the sparse-coding cleanup). Remove an entry when it is
#: fixed; a new private import anywhere fails the test.
KNOWN_PRIVATE_IMPORTS = {
    ("learning_rules/sparse_coding/bsc.py", "_PI_MIN"),
    ("learning_rules/sparse_coding/bsc.py", "_SIGMA_MIN"),
    ("learning_rules/sparse_coding/mca.py", "_SIGMA_MIN"),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _absolute(path: Path, node: ast.ImportFrom) -> str:
    """The absolute module of a ``from ... import`` (relative imports resolved)."""
    if node.level == 0:
        return node.module or ""
    mod = _module_name(path)
    base = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (ROOT / rel).with_suffix(".py").is_file() or (ROOT / rel / "__init__.py").is_file()


def _synapse_sim_targets(path: Path, tree: ast.AST):
    """Yield ``(line, absolute target module)`` of every synapse_sim import in ``tree``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            target = _absolute(path, node)
            if target == "synapse_sim":
                for alias in node.names:
                    yield node.lineno, f"synapse_sim.{alias.name}"
            else:
                yield node.lineno, target
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                yield node.lineno, node.args[0].value


def _layer_violations(files) -> list:
    bad = []
    for path in files:
        mod = _module_name(path).split(".")
        if len(mod) < 2:
            continue  # synapse_sim/__init__.py re-exports from every layer
        me = mod[1]
        tree = ast.parse(path.read_text(), filename=str(path))
        for line, target in _synapse_sim_targets(path, tree):
            parts = target.split(".")
            if parts[0] != "synapse_sim" or (len(parts) > 1 and parts[1] == me):
                continue
            other = parts[1] if len(parts) > 1 else None
            mine = SYNAPSE_SIM_LAYERS.get(me)
            if mine is None:
                continue  # a top-level module of synapse_sim (none today)
            if other not in SYNAPSE_SIM_LAYERS or SYNAPSE_SIM_LAYERS[other] >= mine:
                bad.append(f"{path.relative_to(ROOT)}:{line} ({me}) imports {target}")
    return bad


def test_synapse_sim_layers():
    assert set(SYNAPSE_SIM_LAYERS) == {
        p.name for p in (ROOT / "synapse_sim").iterdir() if (p / "__init__.py").is_file()
    }, "every synapse_sim subpackage needs a layer in SYNAPSE_SIM_LAYERS"
    bad = _layer_violations(_sources("synapse_sim"))
    assert not bad, "imports must go down cli -> sweep -> studies -> {nn, models, data, " + (
        "results}:\n" + "\n".join(bad)
    )


def _private_imports(files) -> list:
    """``(file, name, line)`` of every ``from X import _name`` where ``_name`` is not a module."""
    out = []
    for path in files:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or node.module == "__future__":
                continue
            target = _absolute(path, node)
            for alias in node.names:
                name = alias.name
                if name.startswith("_") and not name.startswith("__"):
                    if not _is_module(f"{target}.{name}"):  # a private module is fine
                        out.append((str(path.relative_to(ROOT)), name, node.lineno))
    return out


def test_no_private_names_across_modules():
    files = [p for pkg in ("devices", "learning_rules", "synapse_sim") for p in _sources(pkg)]
    found = _private_imports(files)
    new = [f"{f}:{line} imports {n}" for f, n, line in found if (f, n) not in KNOWN_PRIVATE_IMPORTS]
    assert not new, "no module imports another module's _private name:\n" + "\n".join(new)


def test_layer_and_private_scanners_catch_violations(tmp_path, monkeypatch):
    pkg = ROOT / "synapse_sim"
    nn_file = pkg / "nn" / "__init__.py"
    studies_file = pkg / "studies" / "__init__.py"
    src = {
        nn_file: "from ..studies import train\nfrom synapse_sim.cli import main\n",
        studies_file: "from ..data.datasets import _digits_raw\nfrom .. import cli\n"
        "from .base import run_study\nfrom devices import _rng\n",
    }
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: src[self])
    bad = _layer_violations([nn_file, studies_file])
    assert bad == [
        "synapse_sim/nn/__init__.py:1 (nn) imports synapse_sim.studies",
        "synapse_sim/nn/__init__.py:2 (nn) imports synapse_sim.cli",
        "synapse_sim/studies/__init__.py:2 (studies) imports synapse_sim.cli",
    ]
    assert _private_imports([studies_file]) == [
        ("synapse_sim/studies/__init__.py", "_digits_raw", 1)
    ]
