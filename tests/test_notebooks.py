"""The notebooks of ``notebooks/``: stored executed, and a fresh run has the same structure.

The notebooks are committed with their outputs, so that the repository page shows their figures;
``make notebooks`` (``python tests/test_notebooks.py execute notebooks/*.ipynb``) regenerates
them in place. The default run checks the stored copy: every code cell executed in order, no
error, figures present, and a ``# check`` cell that asserts a number the notebook shows. The
``gate`` run executes each notebook again in a fresh kernel (1.5-3.5 minutes each on a loaded
2-core machine): any error fails, an ``ImportError`` included (an API rename must not pass as a
skip), and the fresh outputs must have the stored structure (the same code cells with outputs,
the same kinds of output in each).

The kernel spec is written to a temporary ``JUPYTER_PATH`` and points at ``sys.executable``, so
no ``ipykernel install`` is needed and a ``python3`` kernel of another environment is never
picked up.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import nbclient
import nbformat
import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
KERNEL = "synapse-sim-tests"


def write_kernel_spec(jupyter_dir: Path) -> str:
    """Write a kernel spec for this interpreter under ``jupyter_dir``; return its name."""
    spec = jupyter_dir / "kernels" / KERNEL
    spec.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel = {"argv": argv, "display_name": "synapse-sim tests", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel))
    return KERNEL


def execute(path: Path, kernel_name: str) -> nbformat.NotebookNode:
    """Execute a copy of the notebook at ``path`` (outputs cleared first); return it.

    Raises ``nbclient.exceptions.CellExecutionError`` on the first failing cell.
    """
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    client = nbclient.NotebookClient(
        nb,
        timeout=600,
        kernel_name=kernel_name,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    # the kernel spec is temporary: store the plain python3 kernel in the file
    nb.metadata["kernelspec"] = {
        "display_name": "Python 3",
        "language": "python",
        "name": "python3",
    }
    return nb


def structure(nb: nbformat.NotebookNode) -> list[tuple[int, tuple]]:
    """Per code cell with outputs: its index and the sorted kinds of its outputs.

    A kind is the output type with its MIME types (``display_data``, ``execute_result``) or its
    stream name. stderr is left out: warnings (a first numba compile, a deprecation) come and go.
    """
    out = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        kinds = set()
        for o in cell.outputs:
            if o.output_type == "stream":
                if o.name == "stdout":
                    kinds.add(("stream", "stdout"))
            else:
                kinds.add((o.output_type, *sorted(o.get("data", {}))))
        if kinds:
            out.append((i, tuple(sorted(kinds))))
    return out


def _outputs(nb):
    return [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]


@pytest.fixture
def kernel_name(tmp_path, monkeypatch):
    """A kernel spec for this interpreter, found first through ``JUPYTER_PATH``."""
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    return write_kernel_spec(tmp_path / "jupyter")


def test_device_zoo_notebook_exists():
    assert NOTEBOOK_DIR / "01_device_zoo.ipynb" in NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_stored_executed(path):
    """The stored copy: valid, every code cell run in order, no error, figures, an assert cell."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    counts = [c.execution_count for c in code if c.source.strip()]
    assert None not in counts, f"{path.name}: run `make notebooks` (a cell is not executed)"
    assert counts == list(range(1, len(counts) + 1)), f"{path.name}: not run top to bottom"
    errors = [o for o in _outputs(nb) if o.output_type == "error"]
    assert not errors, f"{path.name}: stored error {errors[0].ename}: {errors[0].evalue}"
    assert any("image/png" in o.get("data", {}) for o in _outputs(nb)), f"{path.name}: no figure"
    asserts = [c for c in code if c.source.lstrip().startswith("# check")]
    assert asserts and all("assert " in c.source for c in asserts), (
        f"{path.name}: needs a '# check' cell that asserts a number the notebook shows"
    )


@pytest.mark.gate  # 1.5-3.5 minutes per notebook on the loaded 2-core machine
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes_like_stored(path, kernel_name):
    """A fresh run: no error (ImportError included), same structure as the stored outputs."""
    fresh = execute(path, kernel_name)  # CellExecutionError fails the test
    assert any("image/png" in o.get("data", {}) for o in _outputs(fresh)), path.name
    stored = nbformat.read(path, as_version=4)
    assert structure(fresh) == structure(stored), (
        f"{path.name}: the stored outputs differ in structure from a fresh run; "
        "run `make notebooks` and commit"
    )


def main(argv: list[str]) -> int:
    """``python tests/test_notebooks.py execute NB...``: execute notebooks in place."""
    if len(argv) < 2 or argv[0] != "execute":
        print("usage: python tests/test_notebooks.py execute NOTEBOOK.ipynb ...", file=sys.stderr)
        return 2
    os.environ.setdefault("MPLBACKEND", "Agg")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["JUPYTER_PATH"] = tmp
        name = write_kernel_spec(Path(tmp))
        for arg in argv[1:]:
            path = Path(arg).resolve()
            t0 = time.perf_counter()
            nb = execute(path, name)
            nbformat.write(nb, path)
            print(f"{path.name}: executed in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
