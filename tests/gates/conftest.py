"""Shared fixtures of the gate tests.

Every acceptance gate carries ``@pytest.mark.gate`` in its own file (the spec gates that sit
beside the unit tests of their module too), so ``make gates`` (``pytest -m gate``) runs them and
``make test`` (``-m "not slow and not gate"``) does not.
"""

from __future__ import annotations

import contextlib
import io
import json

import pytest


def _entry_point():
    """The ``synapse-sim`` console script (pyproject ``[project.scripts]``), loaded in-process."""
    from importlib.metadata import entry_points

    (ep,) = entry_points(group="console_scripts", name="synapse-sim")
    return ep.load()


@pytest.fixture(scope="session")
def synapse_cli():
    """Run ``synapse-sim CMD ARGS --out OUT --quiet`` and return ``show OUT --json``'s records.

    The gates drive the study commands through the command line a user types (in-process, so
    that numba compiles once per session), which keeps them independent of module paths.
    """
    main = _entry_point()

    def run(*argv, out):
        with contextlib.redirect_stdout(io.StringIO()):
            rc = main([*map(str, argv), "--out", str(out), "--quiet"])
        assert rc == 0, argv
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            assert main(["show", str(out), "--json"]) == 0
        return json.loads(buf.getvalue())

    return run
