"""The studies' and sweeps' progress bar in a Jupyter kernel without ipywidgets: tqdm falls back
to its text bar and warns about it when first imported; the package's bar does not show that
warning (it appeared in every notebook that ran a study, with the bar disabled)."""

from __future__ import annotations

import importlib
import io
import sys
import types
import warnings

import pytest
from tqdm import TqdmWarning

from synapse_sim.studies.base import progress_bar

_TQDM_FRONTENDS = ("tqdm.auto", "tqdm.autonotebook", "tqdm.notebook")


@pytest.fixture
def kernel_without_ipywidgets(monkeypatch):
    """A Jupyter kernel as ``tqdm.autonotebook`` detects one, with ipywidgets not installed,
    and tqdm's front ends not imported yet."""

    class ZMQInteractiveShell:  # a notebook's shell (not a Qt console's)
        pass

    fake = types.ModuleType("IPython")  # a module, not a package: IPython.html is not found
    fake.get_ipython = ZMQInteractiveShell
    monkeypatch.setitem(sys.modules, "IPython", fake)
    monkeypatch.setitem(sys.modules, "ipykernel.zmqshell", types.ModuleType("ipykernel.zmqshell"))
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import ipywidgets -> ImportError
    for name in [k for k in __import__("os").environ if k == "QT_API" or k.startswith("SPYDER")]:
        monkeypatch.delenv(name)

    def forget():
        for name in _TQDM_FRONTENDS:
            monkeypatch.delitem(sys.modules, name, raising=False)

    forget()
    return forget


def test_tqdm_itself_warns_there(kernel_without_ipywidgets):
    """The case is real: tqdm's automatic front end warns in such a kernel."""
    with pytest.warns(TqdmWarning, match="IProgress not found"):
        importlib.import_module("tqdm.auto")


def test_the_package_bar_does_not_warn_and_counts(kernel_without_ipywidgets):
    # recorded, not raised: tqdm warns inside a try whose except swallows an error
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        bar = progress_bar(range(4), disable=True)
        assert list(bar) == [0, 1, 2, 3]
        out = io.StringIO()
        bar = progress_bar(total=3, file=out, desc="points")
        bar.update(3)
        bar.close()
    assert not [w for w in seen if "IProgress" in str(w.message)], [str(w.message) for w in seen]
    assert bar.n == 3 and "points" in out.getvalue() and "3/3" in out.getvalue()
