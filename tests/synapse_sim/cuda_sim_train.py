"""The trainers with ``backend="cuda-sim"`` equal the CPU backends: the GPU training path (device
arrays on the CUDA kernels, the MLP trainer, the pulse rules and the software twin written over
the array module) run end to end on a CPU under numba's CUDA simulator.

Not collected by an ordinary test run: ``tests/synapse_sim/test_train_backend.py`` runs it in a
subprocess with ``NUMBA_ENABLE_CUDASIM=1`` (the simulator must be on before ``numba.cuda`` is
first imported). By hand::

    NUMBA_ENABLE_CUDASIM=1 python -m pytest tests/synapse_sim/cuda_sim_train.py -q
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from synapse_sim.studies.train import RunSpec, TrainConfig, train

if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":  # pragma: no cover - guarded by the runner
    pytest.skip("needs NUMBA_ENABLE_CUDASIM=1", allow_module_level=True)

#: A tiny MLP (64-6-10 on 8x8 digits, 60 samples, batches of 10, 2 epochs): 12 updates of each
#: layer, small enough for the simulator (one Python thread per CUDA thread).
TINY = TrainConfig(
    dataset="digits", hidden=(6,), epochs=2, max_train=60, batch_size=10, lr=(0.4, 0.2), seed=1
)
#: Noisy devices: every kernel of the training step draws random numbers (write noise, read noise).
OVERRIDES = {"c2c_sigma": 0.02, "read_sigma": 0.01}
#: Metrics that must agree exactly (epoch_time is wall time).
EXACT = ("train_accuracy", "test_accuracy", "pulses", "refreshes")


def _run(backend, runs, config=TINY):
    import dataclasses

    cfg = dataclasses.replace(config, backend=backend)
    return train(cfg, runs, progress=False)


def _check(ref, sim, *, exact):
    assert set(ref.history) == set(sim.history)
    for label in ref.history:
        h, g = ref.history[label], sim.history[label]
        for k in EXACT:
            assert h[k] == g[k], (label, k, h[k], g[k])
        for k in ("train_loss", "test_loss", "saturated_high", "saturated_low"):
            if exact:
                assert h[k] == g[k], (label, k)
            else:
                np.testing.assert_allclose(h[k], g[k], rtol=1e-9, err_msg=f"{label} {k}")
        assert ref.final[label] == sim.final[label] or not exact, label
        for u, v in zip(ref.weights[label], sim.weights[label], strict=True):
            if exact:
                np.testing.assert_array_equal(u, v)
            else:
                np.testing.assert_allclose(u, v, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    ("rule", "mapping"),
    [
        ("bidirectional", "reference"),
        ("bidirectional", "differential"),
        ("unidirectional", None),
        ("stochastic", None),
        ("adaptive", None),
    ],
)
def test_mlp_trains_identically(rule, mapping):
    """cuda-sim == numba bit for bit (history, counters, weights); == numpy to rounding (the
    reference's vectorized expm1/log1p can differ in the last bit; accuracies and pulses equal)."""
    runs = [RunSpec(device="ag_a_si", rule=rule, mapping=mapping, overrides=OVERRIDES)]
    sim = _run("cuda-sim", runs)
    label = runs[0].label
    assert sim.arrays[label][0].backend == "cuda-sim"
    assert sum(sim.history[label]["pulses"]) > 0
    if rule == "unidirectional":
        assert sim.final[label]["total_pulses_ltd"] == 0
    _check(_run("numba", runs), sim, exact=True)
    _check(_run("numpy", runs), sim, exact=False)


def test_software_twin_and_stochastic_rounding_identical():
    """The software twin (float weights) and a run with stochastic rounding: the same history on
    cuda-sim and numba."""
    import dataclasses

    cfg = dataclasses.replace(TINY, rounding="stochastic", epochs=1)
    runs = [RunSpec(device="software"), RunSpec(device="epiram", overrides=OVERRIDES)]
    sim = _run("cuda-sim", runs, cfg)
    assert sim.history["software"]["test_accuracy"][0] > 0
    _check(_run("numba", runs, cfg), sim, exact=True)


def test_cli_train_records_backend(tmp_path, capsys):
    """``synapse-sim train --backend cuda-sim`` trains and records the backend; the same command
    with ``--backend numba`` gives the same table."""
    from synapse_sim.cli.app import main
    from synapse_sim.results.store import read_results

    args = ["train", "--dataset", "digits", "--device", "ag_a_si", "--hidden", "4",
            "--epochs", "1", "--max-train", "30", "--batch-size", "10", "--quiet"]  # fmt: skip
    tables = {}
    for backend in ("cuda-sim", "numba"):
        out = tmp_path / backend
        assert main([*args, "--out", str(out), "--backend", backend]) == 0
        tables[backend] = capsys.readouterr().out.split("wrote")[0]
        r = read_results(out / "results.h5")
        assert r["config"]["train"]["backend"] == backend
        assert r["config"]["backend"] == backend
        for run in r["runs"].values():
            assert json.loads(json.dumps(run["config"]))["backend"] == backend
    strip = [line.split("|")[:-2] for line in tables["numba"].splitlines()]  # time columns
    assert strip == [line.split("|")[:-2] for line in tables["cuda-sim"].splitlines()]


@pytest.mark.slow
def test_compare_torch_cnn_identical(tmp_path):
    """``compare`` (the torch CNN converted to device layers, DeviceSGD) with ``backend="cuda-sim"``
    gives the numba backend's history and weights bit for bit, and records the backend."""
    pytest.importorskip("torch")
    from synapse_sim.results.store import read_results
    from synapse_sim.studies.compare import compare

    kw = dict(model="cnn", dataset="digits", devices=("ag_a_si",),
              rules=("bidirectional", "unidirectional"), epochs=1, batch_size=16, max_train=32,
              lr=0.5, software=False, rule_options={"rounding": "stochastic"},
              device_overrides=OVERRIDES, plots=False)  # fmt: skip
    sim = compare(backend="cuda-sim", out=tmp_path, **kw)
    ref = compare(backend="numba", **kw)
    for label in ref.history:
        for k in (*EXACT, "train_loss", "test_loss"):
            assert ref.history[label][k] == sim.history[label][k], (label, k)
        for u, v in zip(ref.weights[label], sim.weights[label], strict=True):
            np.testing.assert_array_equal(u, v)
        assert sim.arrays[label][0].backend == "cuda-sim"
    assert sum(sim.history["ag_a_si-bidirectional"]["pulses"]) > 0
    r = read_results(sim.path)
    assert r["config"]["backend"] == "cuda-sim"
    assert all(run["config"]["backend"] == "cuda-sim" for run in r["runs"].values())


@pytest.mark.slow
def test_sweep_on_pinned_workers_equals_serial_numba(tmp_path):
    """``run_sweep(gpus=[3, 5], backend="cuda-sim")``: two spawned workers, each pinned to one
    'GPU' through CUDA_VISIBLE_DEVICES (recorded per run), give the serial numba sweep's
    results."""
    from synapse_sim.sweep import read_sweep, run_sweep

    spec = {
        "sweep": {"instances": 2, "software": False},
        "train": {"dataset": "digits", "hidden": [4], "epochs": 1, "max_train": 30,
                  "batch_size": 10},
        "run": {"device": "ag_a_si", "overrides": OVERRIDES},
        "axes": {"rule": ["bidirectional", "unidirectional"]},
    }  # fmt: skip
    gpu = run_sweep(spec, tmp_path / "gpu", gpus=[3, 5], backend="cuda-sim", progress=False)
    cpu = run_sweep(spec, tmp_path / "cpu", backend="numba", progress=False)
    assert gpu.complete and gpu.ran == 4
    a, b = read_sweep(gpu.path), read_sweep(cpu.path)
    assert a["config"]["gpus"] == [3, 5] and a["config"]["backend"] == "cuda-sim"
    seen = {run["config"]["cuda_visible_devices"] for run in a["runs"].values()}
    assert seen <= {"3", "5"} and seen
    for label, run in a["runs"].items():
        assert run["config"]["backend"] == "cuda-sim"
        for k, v in run["metrics"].items():
            if k != "epoch_time":
                np.testing.assert_array_equal(v, b["runs"][label]["metrics"][k], err_msg=k)
