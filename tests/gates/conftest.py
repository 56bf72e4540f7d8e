"""Gate tests that live in other test files.

Some acceptance gates of the specs sit beside the unit tests of their module (in files this
folder does not own). They keep their place; this hook adds the ``gate`` marker to them, so that
``make gates`` (``pytest -m gate``) runs them and ``make test`` (``-m "not slow and not gate"``)
does not. Each entry names the test (node id without parameters), the claim it guards and its
time measured on the shared 2-core machine. Once a file carries ``@pytest.mark.gate`` itself, its
entry goes.

The hook runs once per session over every collected item, so it applies whenever this folder is
collected with the others (``pytest``, ``make test``, ``make gates``: ``testpaths = tests``).
"""

from __future__ import annotations

import contextlib
import io
import json

import pytest

_DL = "tests/learning_rules/test_dictionary_learning.py::"
_SC = "tests/learning_rules/test_sparse_coding.py::"
_SM = "tests/learning_rules/test_sparse_models.py::"
_DASK = "tests/learning_rules/test_sparse_dask.py::"

#: node id (without ``[params]``) -> the claim it guards (spec section or doc)
EXTERNAL_GATES = {
    # specs/dictionary_learning.md section 10, docs/DICTIONARY_LEARNING.md "Acceptance checks on
    # the planted problems" (the whole table: 20 tests, about 3.5 minutes on 2 cores)
    _DL + "test_d1_bcd_monotone_10_seeds": "D1: BCD never increases f, 10 seeds",
    _DL + "test_d2_planted_nmf_10_seeds": "D2 P-NMF: matched cosine >= 0.95",
    _DL + "test_d2_planted_subspace_10_seeds": "D2 P-sub: principal angle <= 5 deg",
    _DL + "test_d3_supervision_pays_10_seeds": "D3 P-disc: SDL 0.84 against MF-LR 0.49",
    _DL + "test_d4_online_dl_matches_sklearn": "D4: online DL vs scikit-learn's batch DL",
    _DL + "test_d4_nmf_vs_sklearn_10_seeds": "D4: NMF vs scikit-learn's NMF",
    _DL + "test_d5_large_xi_is_pca_5_seeds": "D5: xi -> infinity gives PCA",
    _DL + "test_d6_ideal_device_5_seeds": "D6: the ideal device equals float BCD",
    # specs/sparse_coding.md SC2 / SC5 / SC8, docs/SPARSE_CODING.md "Acceptance checks"
    _SC + "test_tsc_em_monotone_exact_published": "SC2: exact TSC EM is monotone, seeds 0-4",
    _SC + "test_em_monotone_published_sizes": "SC2: BSC EM monotone at the published sizes",
    _SM + "test_dsc_em_monotone_exact_published": "SC2: exact DSC EM is monotone, seeds 0-4",
    _SM + "test_device_em_ideal_equals_float_published": "SC8: ideal device == float, seeds 0-4",
    _DASK + "test_dask_distributed_local_cluster": "SC5: EM on a Dask LocalCluster == serial",
}


@pytest.hookimpl(tryfirst=True)  # before -m deselects: `-m gate` must see the marker
def pytest_collection_modifyitems(config, items):
    seen = set()
    for item in items:
        base = item.nodeid.split("[", 1)[0]
        if base in EXTERNAL_GATES:
            item.add_marker(pytest.mark.gate)
            seen.add(base)
    # a renamed or removed gate must not drop out of CI silently: if its file was collected
    # whole (no `file::test` selection on the command line), the test must be there
    if any("::" in str(arg) for arg in config.args):
        return
    files = {item.nodeid.split("::", 1)[0] for item in items}
    lost = [n for n in EXTERNAL_GATES if n.split("::", 1)[0] in files and n not in seen]
    if lost:
        raise pytest.UsageError(f"gate tests listed in tests/gates/conftest.py not found: {lost}")


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
