"""The sweeps of ``examples/e3_e5_study.py``: the E3 grid they plan, and its table."""

from __future__ import annotations

import json

import numpy as np
import pytest


@pytest.fixture(scope="module")
def e3(load_example):
    return load_example("e3_e5_study")


def _grid_key(e3, t):
    """The E3 grid point (device, rule, sigma_nl, spread) of a planned run."""
    p = t.params
    return (t.run["device"], t.run["rule"], float(p.get("sigma_nl", 0)), float(p.get(e3.SPREAD, 0)))


def _grid(e3):
    """The spec's E3 grid: ag_a_si and epiram x the rules x sigma_nl x Gmin/Gmax spread."""
    devs, nls, spreads = ("ag_a_si", "epiram"), (0.0, 0.5, 1.0, 2.0), (0.0, 0.1, 0.2)
    return {(d, r, s, g) for d in devs for r in e3.RULES for s in nls for g in spreads}


def test_e3_sweeps_cover_the_full_grid_once(e3):
    """The E3 sweeps together plan every (device, rule, sigma_nl, spread) point of the spec's
    4 x 3 grid on ag_a_si and epiram with 5 device instances, and no point twice."""
    from synapse_sim.sweep import expand, parse_spec

    seen = {}
    for name in ("e3", "e3_nl_more", "e3_spread", "e3_epiram", "e3_product"):
        for t in expand(parse_spec(e3.spec_of(name))):
            seen.setdefault(_grid_key(e3, t), set()).add(t.instance)
    assert set(seen) == _grid(e3)
    assert all(len(v) == 5 for v in seen.values())


def test_seeded_sweeps_plan_every_seed_pair_once(e3):
    """Each ``*_seeds`` sweep plans every point of the sweep it reruns with every (training
    seed, device seed) pair exactly once, and its training-seed-0 runs are that sweep's runs
    (the same TrainConfig and RunSpec: bit for bit the single-seed tables)."""
    from synapse_sim.sweep import expand, parse_spec

    def plan(name):
        return [t for t in expand(parse_spec(e3.spec_of(name))) if t.point is not None]

    assert list(e3.SEEDED)[:3] == ["x4_seeds", "x9_base_seeds", "x9_a1_seeds"]
    for name, base in e3.SEEDED.items():
        new, old = plan(name), plan(base)
        seen = {}
        for t in new:
            point = tuple(sorted((k, v) for k, v in t.params.items() if k != "seed"))
            key = (point, t.train["seed"], t.train["device_seed"])
            seen[key] = seen.get(key, 0) + 1
        points = {tuple(sorted(t.params.items())) for t in old}
        want = {(p, s, d) for p in points for s in e3.TRAIN_SEEDS for d in range(5)}
        assert set(seen) == want and set(seen.values()) == {1}, name
        as_set = [sorted(map(json.dumps, (t.train, t.run))) for t in old]
        seed0 = [sorted(map(json.dumps, (t.train, t.run))) for t in new if t.train["seed"] == 0]
        assert sorted(seed0) == sorted(as_set), name


def test_variance_parts_split_additive_seed_effects(e3):
    """A table that is a training-seed effect plus a device-seed effect has no residual, and
    its components are the two effects' spreads; pure interaction noise leaves the means'
    spread at about residual / sqrt(5) and components near 0."""
    rng = np.random.default_rng(1)
    t, d = rng.normal(0, 3, 5), rng.normal(0, 1, 5)
    v = e3.variance_parts(70 + t[:, None] + d[None, :])
    assert v["resid"] == pytest.approx(0, abs=1e-9)
    assert v["train"] == pytest.approx(t.std(ddof=1)) == pytest.approx(v["train_comp"])
    assert v["device"] == pytest.approx(d.std(ddof=1)) == pytest.approx(v["device_comp"])
    noise = rng.normal(0, 5, (200, 200))
    w = e3.variance_parts(noise)
    assert w["resid"] == pytest.approx(5, rel=0.02)
    assert w["train"] == pytest.approx(5 / np.sqrt(200), rel=0.15)
    assert w["train_comp"] < 0.2 and w["device_comp"] < 0.2


def test_seeded_e3_sweeps_cover_the_full_grid_with_every_seed_pair(e3):
    """x4_seeds and the ``e3_*_seeds`` sweeps together plan the spec's 4 x 3 grid on ag_a_si
    and epiram with each of the 5 x 5 (training seed, device seed) pairs, no run twice."""
    from synapse_sim.sweep import expand, parse_spec

    seen = {}
    for name in ("x4_seeds", *(n for n in e3.SEEDED if n.startswith("e3_"))):
        for t in expand(parse_spec(e3.spec_of(name))):
            pairs = seen.setdefault(_grid_key(e3, t), [])
            pairs.append((t.train["seed"], t.train["device_seed"]))
    assert set(seen) == _grid(e3)
    want = sorted((s, d) for s in e3.TRAIN_SEEDS for d in range(5))
    assert all(sorted(v) == want for v in seen.values())


def test_seeded_acc_tables_by_training_and_device_seed(e3, tmp_path):
    """seeded_acc puts run (training seed s, instance k) at [s, k] of its cell's table, and
    leaves out a cell with a run missing."""
    import h5py

    from synapse_sim.sweep import run_sweep, sweep_records

    spec = {
        "sweep": {"instances": 2, "software": False},
        "train": {"dataset": "digits", "hidden": [8], "epochs": 1, "max_train": 100},
        "run": {"device": "ag_a_si"},
        "axes": {"rule": ["bidirectional", "unidirectional"], "seed": [0, 1]},
    }
    res = run_sweep(spec, tmp_path / "s", progress=False)
    acc = e3.seeded_acc(tmp_path, "s")
    assert set(acc) == {("ag_a_si", r, ()) for r in ("bidirectional", "unidirectional")}
    for r in sweep_records(res.path):
        a = acc[("ag_a_si", r["rule"], ())]
        assert a.shape == (2, 2)
        assert a[r["params"]["seed"], r["instance"]] == 100 * r["final_test_accuracy"]
    with h5py.File(res.path, "r+") as f:
        del f["runs/p0003-i01"]  # unidirectional, training seed 1, instance 1
    assert set(e3.seeded_acc(tmp_path, "s")) == {("ag_a_si", "bidirectional", ())}


def test_grid_effects_are_paired_differences_averaged_over_the_other_axis(e3, monkeypatch):
    """A grid whose cells are a per-(training seed, device seed) base plus an effect of the
    spread and one of sigma_nl gives those effects exactly, with zero standard error."""
    rng = np.random.default_rng(0)
    base = rng.normal(70, 8, (5, 5))
    spread_fx, nl_fx = {0.0: 0.0, 0.1: -2.0, 0.2: -6.0}, {0.0: 0.0, 0.5: 1.0, 1.0: 0.0, 2.0: 3.0}
    acc = {
        (dev, rule, s, g): base + spread_fx[g] + nl_fx[s]
        for dev, rule, s, g in _grid(e3)
        if (dev, rule) != ("epiram", "adaptive")  # one row not run
    }
    monkeypatch.setattr(e3, "_grid_seeds", lambda out: acc)
    lines = e3.grid_effects_table(None).splitlines()
    assert (
        lines[2]
        == "| ag_a_si | bidirectional | -2.0 (0.0 / 0.0) | -6.0 (0.0 / 0.0) | +3.0 (0.0 / 0.0) |"
    )
    assert lines[-1] == "| epiram | adaptive | - | - | - |"
