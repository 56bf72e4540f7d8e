"""The E4 table of ``examples/neurosim_e4.py``: its rank correlation and its sweep spec."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="module")
def e4(load_example):
    return load_example("neurosim_e4")


def test_spearman_matches_scipy_with_ties(e4):
    from scipy.stats import spearmanr

    rng = np.random.default_rng(0)
    for _ in range(20):
        a = rng.integers(0, 5, 8).astype(float)  # ties
        b = rng.normal(size=8)
        if np.unique(a).size > 1:
            assert e4.spearman(a, b) == pytest.approx(spearmanr(a, b).statistic, abs=1e-12)
    x = np.arange(8.0)
    assert e4.spearman(x, x**3) == pytest.approx(1.0)
    assert e4.spearman(x, -x) == pytest.approx(-1.0)
    assert np.isnan(e4.spearman(x, np.ones(8)))


def test_sweep_spec_is_valid_and_plans_every_run(e4):
    from synapse_sim.sweep import expand, parse_spec

    spec = parse_spec(e4.sweep_spec("draws:3x100", 1, e4.PRESETS, e4.RULES, [False, True]))
    tasks = expand(spec)
    assert len(tasks) == 8 * 2 * 2 + 1  # points and the software twin
    kinds = {(t.run["device"], t.run["rule"], t.train.get("neurosim_compat")) for t in tasks[1:]}
    assert len(kinds) == 32
    assert all(t.train["schedule"] == "draws:3x100" and t.train["seed"] == 1 for t in tasks)
    assert e4.NEUROSIM_SOFTWARE - e4.NEUROSIM_PUBLISHED["epiram"] == pytest.approx(4.5)


def _fake_dirs(tmp_path, monkeypatch, recs_by_dir):
    """Output directories with a seed0/sweep.h5 each, read through a stand-in for
    ``sweep_records`` that returns ``recs_by_dir[dir name]``."""
    import synapse_sim.sweep as sweep

    dirs = []
    for name in recs_by_dir:
        d = tmp_path / name / "seed0"
        d.mkdir(parents=True)
        (d / "sweep.h5").write_bytes(b"")
        dirs.append(tmp_path / name)
    monkeypatch.setattr(sweep, "sweep_records", lambda p: recs_by_dir[Path(p).parents[1].name])
    return dirs


def _rec(acc, device=None, rule=None, compat=None):
    if device is None:
        return {"complete": True, "test_accuracy": [acc], "point": None, "params": {}}
    params = {"device": device, "rule": rule, "neurosim_compat": compat}
    return {"complete": True, "test_accuracy": [acc], "point": 0, "params": params}


def test_report_merges_directories_and_refuses_clashes(e4, tmp_path, monkeypatch):
    a, b = _fake_dirs(tmp_path, monkeypatch, {
        "bid": [_rec(0.9), _rec(0.8, "epiram", "bidirectional", True)],
        "uni": [_rec(0.9), _rec(0.7, "epiram", "unidirectional", True)],
    })  # fmt: skip
    runs, software, _ = e4.collect(a, 1, [b])
    assert software == {0: pytest.approx(90.0)}
    assert runs[("epiram", "bidirectional", True)] == {0: pytest.approx(80.0)}
    assert runs[("epiram", "unidirectional", True)] == {0: pytest.approx(70.0)}
    table = e4.report(a, 1, merge=[b])
    assert "bid. compat" in table and "uni. compat" in table
    # the same run in two directories, or twins of one seed that differ: refused
    with pytest.raises(SystemExit, match="also in another directory"):
        e4.collect(a, 1, [a])
    c, d = _fake_dirs(tmp_path, monkeypatch, {"x": [_rec(0.9)], "y": [_rec(0.91)]})
    with pytest.raises(SystemExit, match="software twin of seed 0"):
        e4.collect(c, 1, [d])
