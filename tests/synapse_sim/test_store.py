"""Tests for synapse_sim.results.store: HDF5 layout, round trip, crash safety, summaries."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time

import h5py
import numpy as np
import pytest

from synapse_sim.results.store import (
    SCHEMA_VERSION,
    ResultsWriter,
    format_table,
    read_results,
    summary_records,
)

CONFIG = {"dataset": "mnist5k", "lr": 0.1, "layers": [784, 100, 10], "scale": np.float32(0.5)}


def _two_run_file(path, close=True):
    w = ResultsWriter(path, CONFIG, seed=42)
    w.add_run("software", device="ideal", rule="sgd", dataset="mnist5k", epochs=2)
    w.add_run(
        "ag_a_si-unidirectional",
        device="ag_a_si",
        rule="pulse_backprop",
        dataset="mnist5k",
        epochs=3,
        config={"mode": "unidirectional", "max_pulses": 4},
    )
    for acc in (0.80, 0.90):
        w.append_epoch("software", test_accuracy=acc, train_loss=1.0 - acc, pulses=0)
    for acc, p, r in ((0.5, 1000, 0), (0.6, 900, 2), (0.65, 800, 1)):
        w.append_epoch("ag_a_si-unidirectional", test_accuracy=acc, pulses=p, refreshes=r)
    weights = {"W1": np.arange(12, dtype=np.float32).reshape(3, 4), "W2": np.eye(2)}
    w.set_final(
        "ag_a_si-unidirectional",
        {"saturated_fraction": 0.125, "backend": "numba", "per_layer": {"pulses": np.arange(2)}},
        weights=weights,
    )
    w.mark_complete("software")
    w.mark_complete("ag_a_si-unidirectional")
    if close:
        w.close()
    return w, weights


# ----------------------------------------------------------------------------- round trip


def test_round_trip(tmp_path):
    path = tmp_path / "out" / "results.h5"
    _, weights = _two_run_file(path)
    r = read_results(path)
    assert r["schema_version"] == SCHEMA_VERSION == 1
    assert r["seed"] == 42 and r["kind"] == "train" and r["complete"] is True
    assert r["config"] == {**CONFIG, "scale": 0.5}
    assert {"python", "synapse_sim", "numpy", "numba", "h5py"} <= set(r["versions"])
    assert list(r["runs"]) == ["software", "ag_a_si-unidirectional"]
    sw = r["runs"]["software"]
    assert (sw["device"], sw["rule"], sw["dataset"], sw["epochs"]) == ("ideal", "sgd", "mnist5k", 2)
    assert sw["complete"] is True and sw["config"] == {} and sw["weights"] == {}
    assert np.array_equal(sw["metrics"]["test_accuracy"], [0.8, 0.9])
    assert sw["metrics"]["test_accuracy"].dtype == np.float64
    hw = r["runs"]["ag_a_si-unidirectional"]
    assert hw["config"] == {"mode": "unidirectional", "max_pulses": 4}
    assert np.array_equal(hw["metrics"]["pulses"], [1000, 900, 800])
    assert hw["final"]["saturated_fraction"] == 0.125 and hw["final"]["backend"] == "numba"
    assert np.array_equal(hw["final"]["per_layer"]["pulses"], [0, 1])
    for name, arr in weights.items():
        assert hw["weights"][name].dtype == arr.dtype
        assert np.array_equal(hw["weights"][name], arr)


def test_layout_with_plain_h5py(tmp_path):
    path = tmp_path / "results.h5"
    _two_run_file(path)
    with h5py.File(path, "r") as f:
        assert int(f.attrs["schema_version"]) == 1 and bool(f.attrs["complete"])
        assert json.loads(f.attrs["config"])["lr"] == 0.1
        g = f["runs/ag_a_si-unidirectional"]
        assert g.attrs["device"] == "ag_a_si" and int(g.attrs["epochs"]) == 3
        assert g["test_accuracy"].shape == (3,) and g["test_accuracy"].dtype == np.float64
        assert float(g["final/saturated_fraction"][()]) == 0.125
        assert g["weights/W1"].shape == (3, 4)
    assert not os.path.exists(str(path) + ".tmp")


def test_missing_metric_in_an_epoch_is_nan(tmp_path):
    path = tmp_path / "r.h5"
    with ResultsWriter(path, {}, seed=0) as w:
        w.add_run("a", device="d", rule="r", dataset="x", epochs=3)
        w.append_epoch("a", test_accuracy=0.1)
        w.append_epoch("a", test_accuracy=0.2, refreshes=3)
        w.append_epoch("a", refreshes=1)
    m = read_results(path)["runs"]["a"]["metrics"]
    assert np.array_equal(m["test_accuracy"], [0.1, 0.2, np.nan], equal_nan=True)
    assert np.array_equal(m["refreshes"], [np.nan, 3, 1], equal_nan=True)
    rec = summary_records(path)[0]
    assert rec["test_accuracy"] == [0.1, 0.2, None] and rec["refreshes"] == 4


# ----------------------------------------------------------------------------- snapshots


def test_readable_after_every_change_and_complete_flags(tmp_path):
    path = tmp_path / "results.h5"
    w = ResultsWriter(path, {"a": 1}, seed=1, kind="sweep")
    r = read_results(path)
    assert r["runs"] == {} and r["complete"] is False and r["kind"] == "sweep"
    w.add_run("software", device="ideal", rule="sgd", dataset="digits", epochs=4)
    assert read_results(path)["runs"]["software"]["metrics"] == {}
    for epoch in range(4):
        w.append_epoch("software", test_accuracy=0.1 * epoch, pulses=epoch)
        r = read_results(path)
        run = r["runs"]["software"]
        assert run["metrics"]["test_accuracy"].shape == (epoch + 1,)
        assert run["metrics"]["test_accuracy"][-1] == pytest.approx(0.1 * epoch)
        assert r["complete"] is False and run["complete"] is False
    w.mark_complete("software")
    r = read_results(path)
    assert r["runs"]["software"]["complete"] is True and r["complete"] is False
    assert summary_records(r)[0]["complete"] is False  # file not complete yet
    w.close()
    r = read_results(path)
    assert r["complete"] is True and summary_records(r)[0]["complete"] is True


def test_context_manager_marks_incomplete_on_error(tmp_path):
    path = tmp_path / "r.h5"
    with pytest.raises(RuntimeError):
        with ResultsWriter(path, {}, seed=0) as w:
            w.add_run("a", device="d", rule="r", dataset="x", epochs=1)
            raise RuntimeError("boom")
    assert read_results(path)["complete"] is False
    with pytest.raises(ValueError, match="closed"):
        w.append_epoch("a", test_accuracy=0.5)


def test_close_false(tmp_path):
    path = tmp_path / "r.h5"
    w = ResultsWriter(path, {}, seed=0)
    w.close(complete=False)
    w.close()  # second close does nothing
    assert read_results(path)["complete"] is False


_CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    from synapse_sim.results.store import ResultsWriter

    w = ResultsWriter(sys.argv[1], {"job": "crash"}, seed=0)
    w.add_run("hw", device="dev", rule="rule", dataset="digits", epochs=10**6)
    w.set_final("hw", {"x": 1.0}, weights={"W": np.random.default_rng(0).random((300, 300))})
    epoch = 0
    while True:
        w.append_epoch("hw", test_accuracy=0.5, pulses=epoch)
        epoch += 1
        print(epoch, flush=True)
    """
)


@pytest.mark.parametrize("delay", [0.0, 0.002, 0.005, 0.009, 0.014])
def test_kill_9_leaves_a_readable_file(tmp_path, delay):
    path = tmp_path / "results.h5"
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        lines = 0
        while lines < 3 and time.monotonic() < deadline:
            if proc.stdout.readline():
                lines += 1
            elif proc.poll() is not None:
                pytest.fail(f"child exited early: {proc.stderr.read()}")
        assert lines == 3
        time.sleep(delay)  # kill at a varying point of a snapshot write
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    r = read_results(path)
    assert r["complete"] is False
    run = r["runs"]["hw"]
    assert run["complete"] is False
    n = run["metrics"]["pulses"].size
    assert n >= 3
    assert np.array_equal(run["metrics"]["pulses"], np.arange(n))
    assert run["weights"]["W"].shape == (300, 300)
    assert summary_records(r)[0]["complete"] is False


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, "0.5", None, [1.0]])
def test_non_finite_or_non_number_metric_rejected(tmp_path, bad):
    w = ResultsWriter(tmp_path / "r.h5", {}, seed=0)
    w.add_run("a", device="d", rule="r", dataset="x", epochs=1)
    with pytest.raises(ValueError, match="train_loss"):
        w.append_epoch("a", test_accuracy=0.5, train_loss=bad)
    # nothing was appended by the failed call
    assert w.epochs_done("a") == 0
    assert read_results(tmp_path / "r.h5")["runs"]["a"]["metrics"] == {}


def test_accuracy_must_be_a_fraction(tmp_path):
    w = ResultsWriter(tmp_path / "r.h5", {}, seed=0)
    w.add_run("a", device="d", rule="r", dataset="x", epochs=1)
    with pytest.raises(ValueError, match=r"test_accuracy.*\[0, 1\]"):
        w.append_epoch("a", test_accuracy=91.0)


def test_unknown_and_duplicate_labels(tmp_path):
    w = ResultsWriter(tmp_path / "r.h5", {}, seed=0)
    w.add_run("software", device="d", rule="r", dataset="x", epochs=1)
    with pytest.raises(ValueError, match=r"'hardware'.*'software'"):
        w.append_epoch("hardware", test_accuracy=0.5)
    with pytest.raises(ValueError, match="already"):
        w.add_run("software", device="d", rule="r", dataset="x", epochs=1)
    with pytest.raises(ValueError, match="/"):
        w.add_run("a/b", device="d", rule="r", dataset="x", epochs=1)
    with pytest.raises(ValueError, match="unknown run label"):
        w.set_final("nope", {})
    with pytest.raises(ValueError, match="reserved"):
        w.append_epoch("software", final=1.0)
    w.mark_complete("software")
    with pytest.raises(ValueError, match="complete"):
        w.append_epoch("software", test_accuracy=0.5)


def test_bad_constructor_arguments(tmp_path):
    with pytest.raises(TypeError, match="config"):
        ResultsWriter(tmp_path / "r.h5", {"f": object()}, seed=0)
    with pytest.raises(ValueError, match="seed"):
        ResultsWriter(tmp_path / "r.h5", {}, seed=-1)
    with pytest.raises(ValueError, match="directory"):
        ResultsWriter(tmp_path, {}, seed=0)


def test_bad_final_values(tmp_path):
    w = ResultsWriter(tmp_path / "r.h5", {}, seed=0)
    w.add_run("a", device="d", rule="r", dataset="x", epochs=1)
    with pytest.raises(TypeError, match="final"):
        w.set_final("a", {"thing": object()})
    with pytest.raises(TypeError, match="W"):
        w.set_final("a", {}, weights={"W": np.array(["x", "y"])})


def test_unwritable_directory_fails_at_construction(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a directory should be")
    target = blocker / "sub" / "results.h5"
    with pytest.raises(OSError) as info:
        ResultsWriter(target, {}, seed=0)
    assert str(target) in str(info.value)


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores permissions"
)
def test_read_only_directory_fails_at_construction(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(OSError, match="not writable"):
            ResultsWriter(ro / "results.h5", {}, seed=0)
    finally:
        ro.chmod(0o700)


# ----------------------------------------------------------------------------- reading errors


def test_read_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.h5"):
        read_results(tmp_path / "nothing.h5")


def test_read_not_hdf5(tmp_path):
    path = tmp_path / "fake.h5"
    path.write_bytes(b"this is not an HDF5 file" * 10)
    with pytest.raises(ValueError, match="fake.h5"):
        read_results(path)


def test_read_hdf5_without_schema_version(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(ValueError, match=r"other.h5.*schema_version"):
        read_results(path)


# ----------------------------------------------------------------------------- summaries


def test_summary_records(tmp_path):
    path = tmp_path / "results.h5"
    _two_run_file(path)
    records = summary_records(read_results(path))
    json.dumps(records)  # JSON-able
    assert [r["label"] for r in records] == ["software", "ag_a_si-unidirectional"]
    sw, hw = records
    assert sw["test_accuracy"] == [0.8, 0.9] and sw["final_test_accuracy"] == 0.9
    assert sw["pulses"] == 0 and sw["refreshes"] is None and sw["complete"] is True
    assert hw["pulses"] == 2700 and isinstance(hw["pulses"], int) and hw["refreshes"] == 3
    assert hw["final_test_accuracy"] == 0.65 and hw["epochs"] == 3
    assert hw["saturated_fraction"] == 0.125 and hw["backend"] == "numba"
    assert "per_layer.pulses" not in hw  # arrays are not scalars
    assert (hw["device"], hw["rule"], hw["dataset"]) == ("ag_a_si", "pulse_backprop", "mnist5k")


def test_summary_of_run_without_epochs(tmp_path):
    path = tmp_path / "r.h5"
    w = ResultsWriter(path, {}, seed=0)
    w.add_run("empty", device="d", rule="r", dataset="x", epochs=5)
    w.set_final("empty", {"pulses": 7})  # clashes with the per-epoch total
    rec = summary_records(path)[0]
    assert rec["test_accuracy"] == [] and rec["final_test_accuracy"] is None
    assert rec["pulses"] is None and rec["final_pulses"] == 7 and rec["complete"] is False


def test_format_table(tmp_path):
    path = tmp_path / "results.h5"
    _two_run_file(path)
    table = format_table(summary_records(path))
    lines = table.strip().splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("| label | device | rule |") and "complete" in lines[0]
    assert set(lines[1].replace("|", "").replace(":", "")) == {"-"}
    assert lines[2] == "| software | ideal | sgd | 90.00 | 0 | - | yes |"
    assert (
        lines[3] == "| ag_a_si-unidirectional | ag_a_si | pulse_backprop | 65.00 | 2700 | 3 | yes |"
    )
    incomplete = format_table([{"label": "x|y", "final_test_accuracy": None, "complete": False}])
    assert "| x\\|y | - | - | - | - | - | no |" in incomplete
