"""Energy and latency recorded by training runs and shown by ``synapse-sim energy``."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

from devices.energy import EnergyModel, Pulse
from synapse_sim import RunSpec, TrainConfig, train
from synapse_sim.results.store import read_results
from synapse_sim.studies.energy import ENERGY_METRICS, energy_records, resolve_energy

CFG = TrainConfig(
    dataset="digits", hidden=(6,), epochs=2, batch_size=8, lr=(0.3, 0.15), max_train=80, seed=3
)
RUNS = [RunSpec(device="software"), RunSpec(device="epiram", rule="unidirectional")]


@pytest.fixture(scope="module")
def energy_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("energy")
    return train(CFG, RUNS, out=out, progress=False, energy=True), out


def test_energy_metrics_per_epoch_and_totals(energy_run):
    res, out = energy_run
    h = res.history["epiram-unidirectional"]
    assert set(ENERGY_METRICS) <= set(h)
    assert not set(ENERGY_METRICS) & set(res.history["software"])  # float weights: nothing
    assert all(v > 0 for v in h["energy_write_J"]) and all(v > 0 for v in h["energy_read_J"])
    tot = res.final["epiram-unidirectional"]["energy"]
    assert tot["energy"] == pytest.approx(sum(h["energy_J"]), rel=1e-12)
    assert tot["pulses"] == sum(
        res.final["epiram-unidirectional"][f"total_pulses_{k}"] for k in ("ltp", "ltd", "prog")
    )
    assert tot["pulse_source"] == "preset"
    # every sample is read forward through each array once, the test set once per epoch;
    # only the second array is read backward (no error goes below the first)
    from synapse_sim.data.datasets import load_dataset

    n_test = load_dataset("digits", seed=CFG.seed).x_test.shape[0]
    n_samples = CFG.epochs * CFG.max_train
    layers = res.arrays["epiram-unidirectional"]
    rc = [a.read_counts() for a in layers]
    assert tot["reads"] == sum(r["total"] for r in rc)
    assert [r["array_forward"] for r in rc] == [n_samples + CFG.epochs * n_test] * 2
    assert rc[1]["array_backward"] == n_samples and rc[0]["array_backward"] == 0
    assert rc[0]["forward"] == rc[0]["array_forward"] * layers[0].n_devices
    # stored in the file and in the root config
    f = read_results(out / "results.h5")
    assert f["config"]["energy"] == EnergyModel().to_dict()
    run = f["runs"]["epiram-unidirectional"]
    np.testing.assert_allclose(run["metrics"]["energy_J"], h["energy_J"], rtol=0)
    assert run["final"]["energy"]["energy"] == tot["energy"]
    from synapse_sim.studies.train import markdown_report

    assert "Device-level energy" in markdown_report(out / "results.h5")


def test_energy_off_adds_nothing(tmp_path):
    res = train(CFG, RUNS[1:], out=tmp_path, progress=False)
    assert not set(ENERGY_METRICS) & set(res.history["epiram-unidirectional"])
    assert "energy" not in res.final["epiram-unidirectional"]
    assert "energy" not in read_results(tmp_path / "results.h5")["config"]
    recs = energy_records(tmp_path / "results.h5")  # estimate from the pulse totals
    assert recs[0]["basis"] == "estimate" and recs[0]["write_energy"] > 0
    assert recs[0]["read_energy"] is None


def test_energy_scales_with_pulse_voltage_squared(tmp_path):
    m1 = EnergyModel(ltp=Pulse(1.0, 1e-6), ltd=Pulse(-1.0, 1e-6))
    m2 = m1.replace(ltp=Pulse(2.0, 1e-6), ltd=Pulse(-2.0, 1e-6))
    cfg = TrainConfig(**{**CFG.to_dict(), "epochs": 1})
    e1 = train(cfg, RUNS[1:], progress=False, energy=m1).final["epiram-unidirectional"]
    e2 = train(cfg, RUNS[1:], progress=False, energy=m2).final["epiram-unidirectional"]
    assert e2["energy"]["write_energy"] == pytest.approx(4 * e1["energy"]["write_energy"])
    assert e2["energy"]["read_energy"] == pytest.approx(e1["energy"]["read_energy"])


def test_cli_energy(energy_run):
    from synapse_sim.cli.app import main

    _, out = energy_run
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["energy", str(out)]) == 0
    text = buf.getvalue()
    assert "epiram-unidirectional" in text and "recorded" in text
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["energy", str(out / "results.h5"), "--json"]) == 0
    recs = json.loads(buf.getvalue())
    assert [r["label"] for r in recs] == ["epiram-unidirectional"]


def test_resolve_energy_rejects_bad_values():
    assert resolve_energy(None) is None and resolve_energy(False) is None
    assert resolve_energy({"v_read": 0.1}).v_read == 0.1
    with pytest.raises(TypeError, match="energy must be"):
        resolve_energy("yes")
    with pytest.raises(ValueError, match="v_read"):
        train(CFG, RUNS[1:], progress=False, energy={"v_read": -1.0})


@pytest.mark.slow
def test_energy_example_runs(tmp_path):
    """examples/energy_report.py (the table of docs/ENERGY.md): every device run has a recorded
    row, published presets are priced with their own pulses, the fitted device with the
    placeholder pulse."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "energy_report.py"
    spec = importlib.util.spec_from_file_location("energy_report", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with contextlib.redirect_stdout(io.StringIO()):
        table = mod.main(str(tmp_path))
    recs = {r["label"]: r for r in energy_records(tmp_path / "results.h5")}
    assert set(recs) == {
        "epiram-bidirectional",
        "taox_hfox-bidirectional",
        "ag_a_si-unidirectional",
        "example_fit-bidirectional",
    }
    assert all(r["basis"] == "recorded" for r in recs.values())
    assert recs["example_fit-bidirectional"]["pulse_source"] == "default"
    assert recs["epiram-bidirectional"]["pulse_source"] == "preset"
    # the same pulse count costs more with EpiRAM's 5 V / 5 us pulses than TaOx's 1.6 V / 50 ns
    per_pulse = {k: r["write_energy"] / r["pulses"] for k, r in recs.items()}
    assert per_pulse["epiram-bidirectional"] > 100 * per_pulse["taox_hfox-bidirectional"]
    assert table.count("| recorded |") == 4


def test_torch_layer_loads_a_state_saved_before_reads_were_counted():
    pytest.importorskip("torch")
    import devices
    from synapse_sim.nn.layers import DeviceLinear

    layer = DeviceLinear(3, 2, device="ideal", seed=0)
    layer.array.matmul(np.ones(3))
    st = layer.get_extra_state()
    other = DeviceLinear(3, 2, device="ideal", seed=0)
    other.set_extra_state(st)
    assert other.array.read_counts() == layer.array.read_counts()
    old = {k: v for k, v in st.items() if k not in devices.array.OPTIONAL_STATE_KEYS}
    other.set_extra_state(old)
    assert other.array.read_counts()["total"] == 0


def test_compare_records_energy_of_the_device_layers(tmp_path):
    pytest.importorskip("torch")
    from synapse_sim.studies.compare import compare

    kw = dict(
        model="mlp",
        dataset="digits",
        devices=["epiram"],
        rules=["bidirectional"],
        epochs=2,
        batch_size=16,
        lr=2.0,
        max_train=64,
        seed=1,
        progress=False,
    )
    res = compare(**kw, out=tmp_path, energy=True)
    h = res.history["epiram-bidirectional"]
    assert set(ENERGY_METRICS) <= set(h)
    assert not set(ENERGY_METRICS) & set(res.history["software"])
    assert all(v > 0 for v in h["energy_write_J"]) and all(v > 0 for v in h["energy_read_J"])
    tot = res.final["epiram-bidirectional"]["energy"]
    assert tot["energy"] == pytest.approx(sum(h["energy_J"]), rel=1e-12)
    assert tot["reads"] == sum(h["device_reads"])
    # metered from after programming: at most every read the arrays ever counted
    assert (
        0
        < tot["reads"]
        <= sum(a.read_counts()["total"] for a in res.arrays["epiram-bidirectional"])
    )
    f = read_results(tmp_path / "results.h5")
    assert f["config"]["energy"] == EnergyModel().to_dict()
    np.testing.assert_allclose(
        f["runs"]["epiram-bidirectional"]["metrics"]["energy_J"], h["energy_J"], rtol=0
    )
    # without energy the same run records none, and its training numbers are the same
    plain = compare(**kw)
    assert "energy" not in plain.final["epiram-bidirectional"]
    assert plain.history["epiram-bidirectional"]["test_accuracy"] == h["test_accuracy"]
