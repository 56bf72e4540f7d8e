"""Training on a device model instead of a preset name (a fitted device: issue 18 part 3)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import devices
from devices import fitting as F
from synapse_sim import RunSpec, TrainConfig, train
from synapse_sim.results.store import read_results

CFG = TrainConfig(
    dataset="digits", hidden=(12,), epochs=2, batch_size=4, lr=(0.3, 0.15), max_train=240, seed=5
)


def test_model_object_trains_bit_for_bit_like_its_preset_name(tmp_path):
    by_name = RunSpec(device="epiram", rule="unidirectional", overrides={"c2c_sigma": 0.01})
    by_model = RunSpec(
        device=devices.get("epiram"),
        rule="unidirectional",
        overrides={"c2c_sigma": 0.01},
        label="model",
    )
    assert by_model.device_name == "epiram" and by_model.mapping == by_name.mapping
    res = train(CFG, [by_name, by_model], out=tmp_path, progress=False)
    a, b = res.history[by_name.label], res.history["model"]
    for k in ("test_accuracy", "train_loss", "pulses", "refreshes"):
        assert a[k] == b[k], k
    for wa, wb in zip(res.weights[by_name.label], res.weights["model"], strict=True):
        np.testing.assert_array_equal(wa, wb)
    f = read_results(tmp_path / "results.h5")
    assert f["runs"]["model"]["device"] == "epiram"
    stored = f["config"]["runs"][1]["device"]
    assert F.model_from_dict(stored) == devices.get("epiram")
    # the stored run spec rebuilds the run
    again = RunSpec(**f["config"]["runs"][1])
    assert again == by_model


def test_model_round_trip_for_every_preset_and_a_lut_fit():
    for name in devices.names():
        m = devices.get(name)
        assert F.model_from_dict(F.model_to_dict(m)) == m
    m = devices.get("pcmo", sigma_nl=0.4, p_stuck_gmax=0.01, drift_nu=0.05, read_sigma=0.02)
    assert F.model_from_dict(F.model_to_dict(m)) == m
    data = F.sample_cycles(devices.get("epiram", c2c_sigma=0), n_cycles=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lut = devices.fit(**data).lut
    back = F.model_from_dict(F.model_to_dict(lut))
    assert type(back) is type(lut)
    g = np.linspace(lut.gmin, lut.gmax, 7)
    np.testing.assert_array_equal(back.pulses(g, "ltp"), lut.pulses(g, "ltp"))


def test_bad_model_inputs_are_clear():
    m = devices.get("epiram")
    with pytest.raises(ValueError, match="levles_ltp"):
        RunSpec(device=m, overrides={"levles_ltp": 3})
    with pytest.raises(ValueError, match="rule"):
        RunSpec(device=m, rule="sgd")
    with pytest.raises(ValueError, match="family"):
        F.model_from_dict({"family": "ExpDevise", "gmin": 1.0, "gmax": 2.0})
    with pytest.raises(TypeError, match="family"):
        F.model_from_dict({"gmin": 1.0})
    assert RunSpec(device=F.with_overrides(m, name=""), rule="bidirectional").label == (
        "custom-bidirectional"
    )


@pytest.mark.slow
def test_fitted_device_trains_like_the_preset_it_came_from():
    """The epiram preset and its fit (five noisy cycles) trained through ``train`` over four
    device seeds: mean test accuracies within 4 standard errors of each other; a different
    device (Ag:a-Si) is further apart than that."""
    true = devices.get("epiram")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        fitted = devices.fit(**F.sample_cycles(true, n_cycles=5, seed=3), name="epiram_fit").model
    cfg = TrainConfig(**{**CFG.to_dict(), "epochs": 3, "max_train": 600})
    runs = [
        RunSpec(device=true, rule="bidirectional", label="true"),
        RunSpec(device=fitted, rule="bidirectional", label="fit"),
        RunSpec(device="ag_a_si", rule="bidirectional", label="other"),
    ]
    acc = {r.label: [] for r in runs}
    for seed in range(4):
        c = TrainConfig(**{**cfg.to_dict(), "device_seed": 100 + seed})
        res = train(c, runs, progress=False)
        for r in runs:
            acc[r.label].append(res.history[r.label]["test_accuracy"][-1])
    acc = {k: np.array(v) for k, v in acc.items()}

    def se(a, b):
        return math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size + 1e-6)

    assert acc["true"].mean() > 0.45, acc  # it learns (chance: 0.1)
    assert abs(acc["fit"].mean() - acc["true"].mean()) <= 4 * se(acc["fit"], acc["true"]), acc
    assert abs(acc["other"].mean() - acc["true"].mean()) > 4 * se(acc["other"], acc["true"]), acc


def test_sweep_over_a_device_model(tmp_path):
    """A sweep spec may name a device model (Python dict specs): the plan, its hash and the runs
    carry the model; a sweep over the preset's model equals the sweep over its name."""
    from synapse_sim.sweep.run import run_sweep
    from synapse_sim.sweep.spec import expand, parse_spec

    train_kw = {"dataset": "digits", "hidden": [6], "epochs": 1, "batch_size": 8, "max_train": 64}

    def spec(device):
        return {
            "sweep": {"instances": 1, "software": False},
            "train": train_kw,
            "run": {"device": device, "rule": "bidirectional"},
            "axes": {"c2c_sigma": [0.0, 0.02]},
        }

    fitted = F.with_overrides(devices.get("pcmo"), name="my_pcmo")
    sp = parse_spec(spec(fitted))
    tasks = expand(sp)
    assert [F.model_from_dict(t.run["device"]) for t in tasks] == [fitted] * 2
    assert sp.run["device"] == F.model_to_dict(fitted)  # JSON-able in the file's config
    assert parse_spec(spec(F.model_to_dict(fitted))).plan_hash() == sp.plan_hash()
    with pytest.raises(ValueError, match="sigma_nll"):
        parse_spec({**spec(fitted), "axes": {"sigma_nll": [0.1]}})
    by_model = run_sweep(spec(devices.get("pcmo")), tmp_path / "m", progress=False)
    by_name = run_sweep(spec("pcmo"), tmp_path / "n", progress=False)
    rm, rn = read_results(by_model.path)["runs"], read_results(by_name.path)["runs"]
    assert list(rm) == list(rn)
    for label in rm:
        assert rm[label]["device"] == "pcmo"
        assert rm[label]["metrics"]["test_accuracy"] == rn[label]["metrics"]["test_accuracy"]


def test_cli_fit_then_train_on_the_fitted_device(tmp_path, capsys):
    """``synapse-sim fit data.csv`` writes NAME_fit.json; ``synapse-sim train --device
    NAME_fit.json`` trains on that device (the run is named after it)."""
    from synapse_sim.cli.app import main

    data = tmp_path / "meas.csv"
    F.write_csv(data, F.sample_cycles(devices.get("epiram"), n_cycles=2, seed=1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert main(["fit", str(data), "--out", str(tmp_path), "--no-plots", "--name", "mine"]) == 0
    fit_file = tmp_path / "mine_fit.json"
    model = F.load_model(fit_file)
    assert model.name == "mine" and isinstance(model, devices.ExpDevice)
    out = tmp_path / "train"
    argv = ["train", "--dataset", "digits", "--hidden", "6", "--epochs", "1", "--max-train", "40"]
    argv += ["--device", str(fit_file), "--no-software", "--quiet", "--out", str(out)]
    assert main(argv) == 0
    f = read_results(out / "results.h5")
    assert list(f["runs"]) == ["mine-bidirectional"]
    assert F.model_from_dict(f["config"]["runs"][0]["device"]) == model
    (tmp_path / "bad.json").write_text('{"a": 1}')
    with pytest.raises(ValueError, match="holds no device model"):
        F.load_model(tmp_path / "bad.json")
    capsys.readouterr()
    bad = ["--device", str(tmp_path / "bad.json"), "--quiet", "--out", str(tmp_path / "t2")]
    assert main(argv[:-6] + bad) != 0
    assert "holds no device model" in capsys.readouterr().err
