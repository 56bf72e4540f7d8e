"""The trainer: gates G2/G3 of specs/adaptive_bp.md, reproducibility, results file."""

import numpy as np
import pytest

from synapse_sim.results.store import read_results
from synapse_sim.studies.train import RunSpec, TrainConfig, train

DIGITS = TrainConfig(dataset="digits", hidden=(100,), epochs=5, lr=(0.4, 0.2), seed=0)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("digits")
    runs = [
        RunSpec(device="software"),
        RunSpec(device="epiram", rule="bidirectional"),
        RunSpec(device="epiram", rule="unidirectional"),
    ]
    return train(DIGITS, runs, out=out, save_weights=True), out


def test_software_twin_reaches_90_percent_on_digits(digits_run):
    """G2 on the final epoch (not the best one): measured 0.958 (seed 0, epochs 0.749 ... 0.958)."""
    res, _ = digits_run
    assert res.history["software"]["test_accuracy"][-1] >= 0.90


@pytest.mark.parametrize(
    ("label", "floor"),
    # G3 asks >= 0.50 (chance 0.10); final epoch measured (seed 0): bidirectional 0.822,
    # unidirectional 0.944. The floors leave ~10 points for a deliberate change of the physics.
    [("epiram-bidirectional", 0.70), ("epiram-unidirectional", 0.85)],
)
def test_learns_on_device_preset(digits_run, label, floor):
    res, _ = digits_run
    acc = res.history[label]["test_accuracy"]
    assert acc[-1] >= floor
    assert res.history[label]["pulses"][0] > 0


def test_unidirectional_run_uses_no_depression(digits_run):
    res, _ = digits_run
    fin = res.final["epiram-unidirectional"]
    assert fin["total_pulses_ltd"] == 0
    assert fin["total_refreshes"] == sum(res.history["epiram-unidirectional"]["refreshes"])
    assert res.final["epiram-bidirectional"]["total_pulses_ltd"] > 0


def test_results_file_round_trip(digits_run):
    res, out = digits_run
    r = read_results(out / "results.h5")
    assert r["complete"] is True or r["complete"] == True  # noqa: E712
    assert set(r["runs"]) == set(res.history)
    for label, h in res.history.items():
        np.testing.assert_allclose(r["runs"][label]["metrics"]["test_accuracy"], h["test_accuracy"])
        assert r["runs"][label]["complete"]
        np.testing.assert_allclose(r["runs"][label]["weights"]["layer0"], res.weights[label][0])
    assert r["config"]["train"]["epochs"] == 5


def test_same_seed_reproduces_history_and_weights():
    cfg = TrainConfig(
        dataset="digits", hidden=(20,), epochs=2, max_train=300, seed=4, rounding="stochastic"
    )
    runs = [
        RunSpec(device="ag_a_si", rule="unidirectional"),
        RunSpec(device="pcmo", rule="stochastic"),
    ]
    a = train(cfg, runs)
    b = train(cfg, runs)
    for label in a.history:
        assert a.history[label]["test_accuracy"] == b.history[label]["test_accuracy"]
        assert a.history[label]["pulses"] == b.history[label]["pulses"]
        for wa, wb in zip(a.weights[label], b.weights[label], strict=False):
            assert np.array_equal(wa, wb)
    c = train(TrainConfig(**{**cfg.to_dict(), "seed": 5}), runs)
    assert any(
        not np.array_equal(wa, wc)
        for wa, wc in zip(a.weights["pcmo-stochastic"], c.weights["pcmo-stochastic"], strict=False)
    )


def test_all_runs_start_from_the_same_weights():
    cfg = TrainConfig(
        dataset="digits", hidden=(16,), epochs=1, max_train=1, batch_size=1, lr=(1e-9,)
    )
    res = train(
        cfg,
        [
            RunSpec(device="software"),
            RunSpec(device="ideal", rule="bidirectional"),
            RunSpec(device="ideal", rule="unidirectional"),
        ],
    )
    ws = res.weights
    for label in ("ideal-bidirectional", "ideal-unidirectional"):
        for w_soft, w_dev in zip(ws["software"], ws[label], strict=False):
            np.testing.assert_allclose(w_dev, w_soft, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"epochs": 0}, "epochs"),
        ({"epochs": -3}, "epochs"),
        ({"lr": (0.1, 0.2, 0.3)}, "lr"),
        ({"lr": -0.1}, "lr"),
        ({"activation": "tanh"}, "activation"),
        ({"loss": "mse"}, "loss"),
        ({"batch_size": 0}, "batch_size"),
        ({"hidden": (0,)}, "hidden"),
        ({"init": "he"}, "init"),
    ],
)
def test_config_errors_name_parameter(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"device": "epiramm"}, "did you mean 'epiram'"),
        ({"device": "epiram", "rule": "sgd"}, "rule"),
        ({"device": "epiram", "rule": "unidirectional", "mapping": "reference"}, "differential"),
        ({"device": "epiram", "overrides": {"levels": 3}}, "override"),
    ],
)
def test_runspec_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RunSpec(**kwargs)
