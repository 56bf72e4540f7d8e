"""Sweeps of the sparse-coding studies (``[sweep] study = "bars"`` / ``"lca"``): the plan, bad
keys, aggregation, bit-for-bit reproducibility, and the one engine they share with train."""

from __future__ import annotations

import numpy as np
import pytest

from synapse_sim.studies.bars import BarsConfig, bars_point
from synapse_sim.studies.lca_device import LCAConfig, lca_point
from synapse_sim.sweep import (
    aggregate,
    expand,
    format_sweep_table,
    parse_spec,
    read_sweep,
    run_sweep,
    run_task,
    sweep_records,
)


def _bars(**axes):
    return {
        "sweep": {"study": "bars", "instances": 2, "first_device_seed": 3},
        "bars": {"model": "bsc", "iterations": 2, "device": "ideal",
                 "overrides": {"c2c_sigma": 0.0}},
        "axes": axes or {"levels_ltp+levels_ltd": [16, 64]},
    }  # fmt: skip


def test_bars_plan_seeds_overrides_and_float_twins():
    spec = parse_spec(_bars(**{"levels_ltp+levels_ltd": [16, 64], "rule": ["unidirectional"]}))
    tasks = expand(spec)
    labels = [t.label for t in tasks]
    assert labels == ["software-i00", "software-i01", "p0000-i00", "p0000-i01", "p0001-i00",
                      "p0001-i01"]  # fmt: skip
    assert {t.study for t in tasks} == {"bars"}
    # instance k sets the one seed of the bars test (data, initialization, device array)
    assert [t.train["seed"] for t in tasks] == [3, 4, 3, 4, 3, 4]
    for t in tasks[:2]:  # the float run of each seed: no device, no overrides
        assert t.point is None and t.train["device"] is None and t.train["overrides"] == {}
        BarsConfig(**t.train)
    last = tasks[-1].train
    assert last["overrides"] == {"c2c_sigma": 0.0, "levels_ltp": 64, "levels_ltd": 64}
    assert last["rule"] == "unidirectional" and last["iterations"] == 2
    # the plan hash depends on the plan: another seed, another hash
    other = _bars(**{"levels_ltp+levels_ltd": [16, 64], "rule": ["unidirectional"]})
    other["sweep"]["first_device_seed"] = 4
    assert parse_spec(other).plan_hash() != spec.plan_hash()


def test_train_is_the_default_study():
    spec = parse_spec({"train": {"dataset": "digits", "hidden": [8], "epochs": 1},
                       "run": {"device": "ideal"}, "axes": {"c2c_sigma": [0.0]}})  # fmt: skip
    assert spec.study == "train" and all(t.study == "train" for t in spec.tasks())
    with pytest.raises(ValueError, match="section \\[bars\\] does not belong to sweep.study"):
        parse_spec({"bars": {}, "run": {"device": "ideal"}})


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda s: s["sweep"].update(study="bras"), "sweep.study: must be one of train, bars, lca, "
         "got 'bras'; did you mean 'bars'"),
        (lambda s: s["bars"].update(iteration=3), "bars.iteration: unknown BarsConfig field; did "
         "you mean 'iterations'"),
        (lambda s: s["bars"].update(seed=3), "bars.seed: seeds come from sweep.instances"),
        (lambda s: s["bars"].update(rule="sideways"), "bars.rule: rule must be one of"),
        (lambda s: s.update(train={"epochs": 1}), "train: section [train] does not belong to "
         "sweep.study = 'bars'"),
        (lambda s: s.update(axes={"levles_ltp": [16]}), "did you mean 'levels_ltp'"),
        (lambda s: s.update(axes={"iteration": [3]}), "not a BarsConfig field, so a device "
         "parameter; did you mean 'iterations'"),
        (lambda s: s.update(axes={"seed": [1, 2]}), "'seed' cannot be an axis"),
        (lambda s: s.update(axes={"c2c_sigma": [0.1]}), "parameter 'c2c_sigma' is also fixed in "
         "[bars]"),
        (lambda s: s.update(axes={"rule": ["bidirectional", "sidewys"]}), "axes.rule: rule must "
         "be one of 'bidirectional', 'unidirectional', got 'sidewys'"),
        (lambda s: s["sweep"].update(gpus=[0]), "sweep.gpus: study 'bars' runs on the CPU"),
        (lambda s: s["bars"].update(device=None), "overrides {'c2c_sigma': 0.0} needs a device"),
    ],
)  # fmt: skip
def test_bars_spec_bad_keys_name_key_value_and_choices(edit, needle):
    spec = _bars()
    edit(spec)
    with pytest.raises(ValueError) as info:
        parse_spec(spec)
    assert needle in str(info.value), str(info.value)


def test_lca_spec_has_no_software_twin_and_checks_its_keys():
    axes = {"device": ["ideal", "epiram"], "program": ["verify", "open_loop"]}
    base = {"sweep": {"study": "lca", "instances": 2}, "lca": {"n_points": 10, "n_steps": 20},
            "axes": axes}  # fmt: skip
    spec = parse_spec(base)
    assert [t.label for t in spec.tasks()][:2] == ["p0000-i00", "p0000-i01"]
    assert len(spec.tasks()) == 8 and not spec.software
    with pytest.raises(ValueError, match="sweep.software: study 'lca' compares"):
        parse_spec({**base, "sweep": {"study": "lca", "software": True}})
    with pytest.raises(ValueError, match="program must be one of .*got 'verfy'"):
        parse_spec({**base, "axes": {"program": ["verfy"]}})
    with pytest.raises(ValueError, match="section \\[bars\\] does not belong"):
        parse_spec({**base, "bars": {}})


def test_bars_sweep_is_reproducible_and_aggregates_over_seeds(tmp_path):
    spec = _bars(**{"levels_ltp+levels_ltd": [16, 64]})
    first = run_sweep(spec, tmp_path / "a", progress=False)
    again = run_sweep(spec, tmp_path / "b", progress=False)
    assert first.complete and first.ran == 6
    ra, rb = read_sweep(first.path), read_sweep(again.path)
    assert set(ra["runs"]) == set(rb["runs"]) and len(ra["runs"]) == 6
    for label, run in ra["runs"].items():  # bit for bit: every metric and final value
        other = rb["runs"][label]
        assert run["final"] == other["final"], label
        for k, v in run["metrics"].items():
            assert np.array_equal(np.asarray(v), np.asarray(other["metrics"][k])), (label, k)
    # the sweep runs what bars_point runs on the same config
    task = expand(parse_spec(spec))[3]
    direct = bars_point(BarsConfig(**task.train))
    final = ra["runs"][task.label]["final"]
    assert final["recovered_bars"] == direct["recovered_bars"]
    assert final["sigma"] == direct["sigma"]
    assert list(ra["runs"][task.label]["metrics"]["pulses"]) == direct["history"]["pulses"]
    assert sum(direct["history"]["pulses"]) == direct["pulses"] > 0
    # aggregation: mean and sample std over the seeds of each point, software first
    recs = sweep_records(first.path)
    rows = aggregate(first.path)
    assert [r["point"] for r in rows] == [None, 0, 1]
    for row in rows:
        vals = [r["sigma"] for r in recs if r["point"] == row["point"]]
        assert row["n"] == 2 and row["sigma_values"] == vals
        assert row["sigma_mean"] == pytest.approx(np.mean(vals), rel=1e-12)
        assert row["sigma_std"] == pytest.approx(np.std(vals, ddof=1), rel=1e-12)
        assert row["recovered_bars_mean"] is not None
    assert rows[0]["pulses_mean"] == 0  # float weights send no pulses
    assert rows[1]["pulses_mean"] < rows[2]["pulses_mean"]  # 16 levels: coarser steps
    table = format_sweep_table(rows)
    assert "recovered bars" in table.splitlines()[0] and "| software |" in table


def test_run_task_of_a_bars_task_equals_the_sweep_file(tmp_path):
    spec = _bars(rule=["unidirectional"])
    res = run_sweep(spec, tmp_path, progress=False)
    task = expand(parse_spec(spec))[-1]
    got = run_task(task)
    run = read_sweep(res.path)["runs"][task.label]
    assert got["final"]["recovered_bars"] == run["final"]["recovered_bars"]
    assert got["rule"] == run["rule"] == "unidirectional"
    assert got["history"]["sigma"] == list(run["metrics"]["sigma"])


def test_lca_sweep_ideal_device_equals_float(tmp_path):
    spec = {"sweep": {"study": "lca", "instances": 2}, "lca": {"n_points": 20, "n_steps": 50},
            "axes": {"device": ["ideal", "epiram"], "program": ["verify"]}}  # fmt: skip
    res = run_sweep(spec, tmp_path, progress=False)
    rows = aggregate(res.path)
    ideal, epiram = rows
    assert ideal["code_diff_values"] == [0.0, 0.0]  # exact programming of an ideal device
    assert all(v > 0 for v in epiram["code_diff_values"])
    direct = lca_point(LCAConfig(device="epiram", n_points=20, n_steps=50, seed=1))
    assert epiram["code_diff_values"][1] == direct["code_diff"]
    assert "max code diff" in format_sweep_table(rows)


def test_bars_device_axis_with_a_rule_axis_and_no_base_device():
    """A rule other than bidirectional needs a device: valid when the device is itself an axis."""
    spec = parse_spec({"sweep": {"study": "bars", "software": False}, "bars": {},
                       "axes": {"device": ["ideal", "epiram"],
                                "rule": ["bidirectional", "unidirectional"]}})  # fmt: skip
    assert [(t.train["device"], t.train["rule"]) for t in spec.tasks()] == [
        ("ideal", "bidirectional"), ("ideal", "unidirectional"),
        ("epiram", "bidirectional"), ("epiram", "unidirectional"),
    ]  # fmt: skip
    with pytest.raises(ValueError, match="axes.rule: rule 'unidirectional' needs a device"):
        parse_spec({"sweep": {"study": "bars"}, "axes": {"rule": ["unidirectional"]}})
