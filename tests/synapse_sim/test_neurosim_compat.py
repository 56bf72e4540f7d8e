"""NeuroSim's converters and read on DeviceArray, the draws schedule, and ``neurosim_compat``.

The converters are checked against the analog read (limit cases: many bits equal no converter
within one step; NeuroSim's 1-bit threshold), the schedule against its definition, and compat
training against the self-contained NeuroSim-like loop of ``examples/neurosim_experiments.py``
(``docs/NEUROSIM.md`` section 2): with the noise off both must train the same weights.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import devices
from devices import UniformQuantizer
from devices.converters import PartialSumADC, neurosim_counts
from synapse_sim.data import load_dataset
from synapse_sim.results.store import read_results
from synapse_sim.studies import compat
from synapse_sim.studies.train import RunSpec, TrainConfig, initial_weights, train

ROOT = Path(__file__).resolve().parents[2]
RNG = np.random.default_rng(5)
W_INIT = RNG.integers(-3, 4, size=(30, 200)) / 3.0
X_BIN = (RNG.random((7, 200)) > 0.7).astype(float)


def _array(preset="epiram", mapping="reference", **kw):
    arr = devices.DeviceArray(
        W_INIT.shape, devices.get(preset), mapping=mapping, seed=3, backend="numpy", **kw
    )
    arr.program(W_INIT, mode="ideal", form="centered" if mapping == "differential" else "one_sided")
    return arr


# ------------------------------------------------------------------ reads and converters
def test_current_read_is_half_the_weighted_sum_on_the_reference_mapping():
    arr = _array(read="current")
    W = arr.weights()
    assert np.allclose(arr.matmul(X_BIN), 0.5 * X_BIN @ W.T, rtol=0, atol=1e-12)
    assert np.array_equal(W, _array().weights())  # the read scale leaves the weights alone
    d = RNG.standard_normal((7, 30))
    assert np.allclose(arr.rmatmul(d), d @ W, rtol=0, atol=1e-12)  # backward in weight units


def test_current_read_of_a_differential_pair_is_the_weighted_sum():
    arr = _array(mapping="differential", read="current")
    assert np.allclose(arr.matmul(X_BIN), X_BIN @ arr.weights().T, rtol=0, atol=1e-12)


@pytest.mark.parametrize("read, gain", [("current", 0.5), ("weight", 1.0)])
def test_partial_sum_adc_is_within_one_step_and_on_the_step_grid(read, gain):
    adc = PartialSumADC(bits=8)
    arr = _array(read=read, adc=adc)
    y = arr.matmul(X_BIN)
    exact = gain * X_BIN @ arr.weights().T
    step = gain * 2 * 200 / 255  # one step: rows / 255 current units = 2 rows / 255 weights
    err = y - exact
    assert np.all(np.abs(err) < step) and np.abs(err).max() > 0.05 * step
    k = y / step
    assert np.allclose(k, np.round(k), rtol=0, atol=1e-9)  # whole numbers of steps


def test_partial_sum_adc_has_no_clamp_at_full_scale():
    """NeuroSim compares each sum with the column's range, not with its largest value: a
    column current above ``rows * (Imax - Imin)`` reads more than ``2**bits - 1`` steps."""
    adc = PartialSumADC(bits=2)
    rows, i_range = 50, 2.0
    i_col = np.array([0.0, 1.5, 2.5]) * rows * i_range
    i_ref = np.full(3, 0.25 * rows * i_range)
    y = adc.digitize(i_col, i_ref, rows=rows, i_range=i_range)
    assert np.floor(i_col[2] / adc.step(rows, i_range)) > adc.levels
    assert np.all(np.abs(y - (i_col - i_ref) / i_range) < rows / adc.levels)
    assert y[2] > rows * adc.levels / adc.levels  # beyond the nominal full scale


@pytest.mark.parametrize("mapping", ["reference", "differential"])
def test_many_adc_bits_equal_no_converter_within_the_step(mapping):
    bits = 24
    a = _array(mapping=mapping, read="current", adc=PartialSumADC(bits=bits))
    b = _array(mapping=mapping, read="current")
    step = (0.5 if mapping == "reference" else 1.0) * 2 * 200 / (2**bits - 1)
    assert np.abs(a.matmul(X_BIN) - b.matmul(X_BIN)).max() < step


def test_dac_one_bit_is_neurosims_threshold_and_many_bits_are_transparent():
    dac1 = UniformQuantizer(bits=1, lo=0.0, hi=1.0)
    assert dac1(np.array([0.0, 0.49, 0.4999999, 0.5, 0.51, 1.0])).tolist() == [0, 0, 0, 1, 1, 1]
    a = _array(dac=dac1)
    x = RNG.random((4, 200))
    assert np.allclose(a.matmul(x), (x >= 0.5) @ a.weights().T, rtol=0, atol=1e-12)
    dac16 = UniformQuantizer(bits=16, lo=0.0, hi=1.0)
    b = _array(dac=dac16)
    bound = 0.5 * dac16.step * np.abs(b.weights()).sum(axis=1)
    assert np.all(np.abs(b.matmul(x) - x @ b.weights().T) <= bound + 1e-12)


def test_converters_forward_leaves_the_backward_read_exact():
    dac = UniformQuantizer(bits=1, lo=0.0, hi=1.0)
    d = RNG.standard_normal((3, 30))
    fwd = _array(dac=dac, adc=PartialSumADC(bits=4), converters="forward")
    assert np.array_equal(fwd.rmatmul(d), d @ fwd.weights())
    both = _array(dac=dac, converters="both")  # the DAC then also quantizes the errors
    assert np.allclose(both.rmatmul(d), dac(d) @ both.weights(), rtol=0, atol=1e-12)


def test_bad_converter_settings_name_the_parameter():
    with pytest.raises(ValueError, match="read"):
        _array(read="curent")
    with pytest.raises(ValueError, match="converters"):
        _array(converters="backward")
    with pytest.raises(ValueError, match="count"):
        _array(count="nearest")
    with pytest.raises(TypeError, match="adc"):
        _array(adc=8)
    with pytest.raises(ValueError, match="bits"):
        PartialSumADC(bits=0)


# ------------------------------------------------------------------ pulse counts
@pytest.mark.parametrize(
    "P, lost", [(97, {7, 14, 25, 28, 31, 50, 53, 56, 59, 62}), (100, {29, 57, 58}), (64, set())]
)
def test_neurosim_counts_lose_a_pulse_exactly_where_the_cast_falls_short(P, lost):
    k = np.arange(1, P + 1, dtype=float)
    got = neurosim_counts(k / P * 2.0, P, P, 2.0)
    assert set(k[got == k - 1].astype(int)) == lost
    assert np.all((got == k) | (got == k - 1))
    assert np.array_equal(neurosim_counts(-k / P * 2.0, P, P, 2.0), -got)


@pytest.mark.parametrize("P", [(97, 97), (64, 32), (100, 110)])
def test_neurosim_request_kernel_equals_the_array_code(P):
    from devices.converters import neurosim_request

    p_up, p_dn = P
    up, dn = 2.0 / p_up, 2.0 / p_dn
    k = RNG.integers(-40, 41, size=(50, 60)).astype(float)
    dW = np.where(k > 0, k * up, k * dn) + RNG.normal(0, 0.3, k.shape) * up
    dW[0, :5] = [0.0, 0.5 * up, -0.5 * dn, 7 * up, 14 * up]
    ref = neurosim_counts(dW, p_up, p_dn, 2.0)
    got = neurosim_request(dW, p_up, p_dn, up, dn)
    assert np.array_equal(got, np.where(ref > 0, ref * up, ref * dn))


def test_count_neurosim_on_the_array_sends_neurosims_counts():
    P = 97
    dev = devices.LinearDevice(gmin=1e-6, gmax=2e-6, levels_ltp=P, levels_ltd=P)
    dW = np.zeros((1, 4))
    dW[0] = np.array([7, 14, 8, -14]) * 2.0 / P
    for count, want in (("neurosim", [6, 13, 8, 13]), ("exact", [7, 14, 8, 14])):
        arr = devices.DeviceArray((1, 4), dev, mapping="reference", count=count, seed=0)
        arr.program(np.full((1, 4), -0.5) * np.array([1, 1, 1, -1]), mode="ideal")
        arr.pulse_request(dW)
        c = arr.pulse_counts()
        assert (c["ltp"] + c["ltd"])[0, 0].tolist() == want
    with pytest.raises(ValueError, match="rounding"):
        arr = devices.DeviceArray((1, 4), dev, mapping="reference", count="neurosim")
        arr.pulse_request(dW, rounding="stochastic")


# ------------------------------------------------------------------ schedule and config
def test_schedule_parsing_and_errors():
    assert compat.parse_schedule("draws:125x8000") == ("draws", 125, 8000)
    assert compat.parse_schedule("epochs:7") == ("epochs", 7, None)
    cfg = TrainConfig(schedule="epochs:3")
    assert cfg.epochs == 3 and cfg.schedule is None
    assert dataclasses.replace(cfg, epochs=4).epochs == 4
    d = TrainConfig(schedule="draws: 3 x 50")
    assert d.schedule == "draws:3x50" and d.epochs == 3
    for bad in ("draws:3", "epochs:0", "draws:0x10", "steps:5", 5):
        with pytest.raises(ValueError, match="schedule") as exc:
            TrainConfig(schedule=bad)
        assert exc.value.field == "schedule"


def test_block_orders_follow_the_schedule():
    rng_a, rng_b = np.random.default_rng(1), np.random.default_rng(1)
    blocks = compat.block_orders("draws:2x10", 50, 4, rng_a, None)
    assert [b.size for b in blocks] == [4, 4, 2]
    assert np.array_equal(np.concatenate(blocks), rng_b.integers(0, 50, size=10))


def test_config_defaults_leave_the_recorded_config_unchanged():
    d = TrainConfig().to_dict()
    assert not set(compat.CONFIG_DEFAULTS) & set(d)
    c = TrainConfig(neurosim_compat=True)
    assert c.neurosim_input and c.read == "current" and (c.dac_bits, c.adc_bits) == (1, 8)
    assert TrainConfig(**c.to_dict()) == c
    for kw in ({"loss": "ce"}, {"activation": "relu"}, {"rounding": "stochastic"}):
        with pytest.raises(ValueError, match="neurosim_compat"):
            TrainConfig(neurosim_compat=True, **kw)
    with pytest.raises(ValueError, match="adc_bits"):
        TrainConfig(adc_bits=0)


def test_epoch_schedule_is_the_epochs_run_and_draws_are_recorded(tmp_path):
    data = load_dataset("digits", seed=0)
    base = TrainConfig(dataset="digits", hidden=(8,), epochs=2, max_train=100, seed=1)
    runs = [RunSpec(device="epiram")]
    a = train(base, runs, data=data, progress=False)
    b = train(TrainConfig(**{**base.to_dict(), "schedule": "epochs:2"}), runs, data=data)
    for k in ("test_accuracy", "train_loss", "pulses"):
        assert a.history["epiram-bidirectional"][k] == b.history["epiram-bidirectional"][k]
    cfg = dataclasses.replace(base, schedule="draws:3x40", dac_bits=4, adc_bits=8)
    res = train(cfg, runs, data=data, out=tmp_path, progress=False)
    h = res.history["epiram-bidirectional"]
    assert len(h["test_accuracy"]) == 3
    k = np.array(h["train_accuracy"]) * 40  # per block of 40 draws
    assert np.allclose(k, np.round(k))
    rec = read_results(res.path)
    assert rec["config"]["schedule"] == "draws:3x40"
    assert rec["config"]["train"]["dac_bits"] == 4
    assert rec["runs"]["epiram-bidirectional"]["config"]["schedule"] == "draws:3x40"


def test_cli_options_reach_the_config():
    from synapse_sim.cli.app import build_parser
    from synapse_sim.cli.train import train_config

    args = build_parser().parse_args(
        ["train", "--neurosim-compat", "--schedule", "draws:125x8000", "--adc-bits", "6"]
    )
    cfg = train_config(args)
    assert cfg.neurosim_compat and cfg.schedule == "draws:125x8000" and cfg.epochs == 125
    assert (cfg.dac_bits, cfg.adc_bits, cfg.read) == (1, 6, "current")


# ------------------------------------------------------------------ compat = the loop
@pytest.fixture(scope="module")
def ne():
    path = ROOT / "examples" / "neurosim_experiments.py"
    spec = importlib.util.spec_from_file_location("neurosim_experiments", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    try:
        spec.loader.exec_module(mod)
        yield mod
    finally:
        sys.modules.pop(spec.name, None)


def _compare_with_loop(ne, preset, blocks, per_block):
    """Compat training and the loop (its NeuroSim behaviour less the two items compat does
    not build: the access transistor and the G clip), noise off, same initial weights and
    draws: the same test accuracies and weights."""
    data = load_dataset("mnist5k", seed=0, neurosim=True)
    cfg = TrainConfig(neurosim_compat=True, schedule=f"draws:{blocks}x{per_block}", seed=0)
    W0 = initial_weights([400, 100, 10], "neurosim", np.random.default_rng([0, 1]))
    nsc = dataclasses.replace(ne.NEUROSIM, access_ohm=0.0, clip="state")
    loop = ne.run_nslike(
        preset, nsc, data, presentations=blocks * per_block, every=per_block, seed=0,
        curve=ne.Curve.of(preset, c2c_sigma=0.0), W0=W0,
    )  # fmt: skip
    res = train(cfg, [RunSpec(device=preset, overrides={"c2c_sigma": 0.0})], data=data)
    lab = f"{preset}-bidirectional"
    assert res.history[lab]["test_accuracy"] == loop["acc"]
    assert sum(res.history[lab]["pulses"]) == sum(loop["pulses"])
    for a, b in zip(loop["W"], res.weights[lab], strict=True):
        assert np.allclose(a, b, rtol=0, atol=1e-12)
    assert loop["acc"][-1] > 0.4  # it learned something (chance: 0.1)


def test_compat_trains_what_the_neurosim_like_loop_trains(ne):
    _compare_with_loop(ne, "epiram", 2, 300)


@pytest.mark.slow
def test_compat_trains_what_the_neurosim_like_loop_trains_ag_a_si(ne):
    _compare_with_loop(ne, "ag_a_si", 2, 1000)


@pytest.mark.parametrize(
    "argv, kw",
    [
        ([], {}),
        (["--dataset", "digits"], {"dataset": "digits"}),
        (["--no-neurosim-input"], {"neurosim_input": False}),
        (
            ["--neurosim-input", "--dataset", "idx:/x"],
            {"neurosim_input": True, "dataset": "idx:/x"},
        ),
    ],
)
def test_cli_and_config_share_the_neurosim_input_default(argv, kw):
    """Issue #14 leftover: ``synapse-sim train`` and ``TrainConfig`` resolve the input format
    the same way (on for 28x28 data, off for digits), from the config's one default."""
    from synapse_sim.cli.app import build_parser
    from synapse_sim.cli.train import train_config

    cli = train_config(build_parser().parse_args(["train", *argv]))
    api = TrainConfig(**kw)
    assert cli.uses_neurosim_input == api.uses_neurosim_input
    assert cli.to_dict()["neurosim_input"] == api.to_dict()["neurosim_input"]
    assert (
        TrainConfig().uses_neurosim_input and not TrainConfig(dataset="digits").uses_neurosim_input
    )


def test_demo_note_explains_the_ideal_gap():
    from synapse_sim.cli.demo import ideal_note

    h = {"software": {"test_accuracy": [0.8, 0.9]}, "ideal-bidirectional": {"test_accuracy": [0.8]}}
    note = ideal_note(h)
    assert "10.0 points below software" in note and "1/1024" in note and "stochastic" in note
    assert ideal_note({"software": h["software"]}) == ""


def test_schedule_words_of_the_report_header():
    assert compat.schedule_words({"epochs": 5}) == "5 epochs"
    assert compat.schedule_words({"epochs": 10, "schedule": "draws:10x8000"}) == (
        "10 blocks of 8000 random draws"
    )
