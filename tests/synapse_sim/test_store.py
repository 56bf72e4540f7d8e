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
    ResumeMismatchError,
    check_writable,
    format_table,
    read_results,
    results_kind,
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


# ----------------------------------------------------------------------------- write modes


def _content(path):
    """Everything of a results file but its time stamps."""
    res = read_results(path)
    res.pop("created"), res.pop("updated", None)
    return json.loads(json.dumps(res, sort_keys=True, default=lambda a: np.asarray(a).tolist()))


def test_mode_new_refuses_an_existing_file(tmp_path):
    path = tmp_path / "results.h5"
    _two_run_file(path)
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="exists; resume it or overwrite it"):
        ResultsWriter(path, CONFIG, seed=42, mode="new")
    assert path.read_bytes() == before  # nothing finished is lost
    with pytest.raises(ValueError, match="mode must be one of 'overwrite', 'new', 'resume'"):
        ResultsWriter(path, CONFIG, seed=42, mode="append")


def test_mode_overwrite_replaces(tmp_path):
    path = tmp_path / "results.h5"
    _two_run_file(path)
    ResultsWriter(path, CONFIG, seed=1, mode="overwrite").close()
    res = read_results(path)
    assert res["runs"] == {} and res["seed"] == 1


def test_mode_resume_continues_where_the_file_stopped(tmp_path):
    """A run interrupted after one epoch, resumed, ends equal to one written in one go."""
    whole, part = tmp_path / "whole.h5", tmp_path / "part.h5"
    _two_run_file(whole)
    w = ResultsWriter(part, CONFIG, seed=42, attrs={"plan": "a"})
    w.add_run("software", device="ideal", rule="sgd", dataset="mnist5k", epochs=2)
    w.append_epoch("software", test_accuracy=0.80, train_loss=1.0 - 0.80, pulses=0)
    del w  # killed: never closed

    r = ResultsWriter(part, CONFIG, seed=42, mode="resume", attrs={"plan": "a"})
    assert r.labels == ["software"] and r.completed == [] and r.epochs_done("software") == 1
    assert r.metrics("software")["test_accuracy"] == [0.80]
    r.append_epoch("software", test_accuracy=0.90, train_loss=1.0 - 0.90, pulses=0)
    r.add_run(
        "ag_a_si-unidirectional",
        device="ag_a_si",
        rule="pulse_backprop",
        dataset="mnist5k",
        epochs=3,
        config={"mode": "unidirectional", "max_pulses": 4},
    )
    for acc, p, q in ((0.5, 1000, 0), (0.6, 900, 2), (0.65, 800, 1)):
        r.append_epoch("ag_a_si-unidirectional", test_accuracy=acc, pulses=p, refreshes=q)
    r.set_final(
        "ag_a_si-unidirectional",
        {"saturated_fraction": 0.125, "backend": "numba", "per_layer": {"pulses": np.arange(2)}},
        weights={"W1": np.arange(12, dtype=np.float32).reshape(3, 4), "W2": np.eye(2)},
    )
    r.mark_complete("software")
    r.mark_complete("ag_a_si-unidirectional")
    r.close()
    assert _content(part) == _content(whole)
    with h5py.File(part, "r") as f:
        assert f.attrs["plan"] == "a"
    # resumed again: everything loads back, complete runs are never replaced
    again = ResultsWriter(part, CONFIG, seed=42, mode="resume", attrs={"plan": "a"})
    assert again.completed == ["software", "ag_a_si-unidirectional"]
    assert again.weights("ag_a_si-unidirectional")["W1"].dtype == np.float32
    with pytest.raises(ValueError, match="is complete"):
        again.add_run("software", device="x", rule="y", dataset="z", epochs=1, replace=True)


def test_mode_resume_refuses_another_kind_or_plan(tmp_path):
    path = tmp_path / "results.h5"
    ResultsWriter(path, {}, seed=0, kind="sweep", attrs={"plan_hash": "abc"}).close()
    with pytest.raises(ResumeMismatchError, match="kind 'sweep', not 'train'") as info:
        ResultsWriter(path, {}, seed=0, mode="resume")
    assert info.value.key == "kind"
    with pytest.raises(ResumeMismatchError, match="'plan_hash' is 'abc'") as info:
        ResultsWriter(path, {}, seed=0, kind="sweep", mode="resume", attrs={"plan_hash": "xyz"})
    assert info.value.key == "plan_hash"
    # a missing file with mode="resume" starts a new one
    fresh = tmp_path / "fresh.h5"
    ResultsWriter(fresh, {}, seed=0, mode="resume").close()
    assert read_results(fresh)["complete"]


def test_write_run_equals_the_step_by_step_calls(tmp_path):
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    wa = ResultsWriter(a, CONFIG, seed=3)
    wa.add_run("r", device="d", rule="u", dataset="digits", epochs=2, attrs={"point": 4})
    wa.append_epoch("r", test_accuracy=0.5, pulses=10)
    wa.append_epoch("r", test_accuracy=0.75, pulses=12)
    wa.set_final("r", {"n": 3, "per": {"x": np.arange(3)}}, weights={"layer0": np.ones((2, 2))})
    wa.mark_complete("r")
    wa.close()
    wb = ResultsWriter(b, CONFIG, seed=3)
    wb.write_run(
        "r",
        device="d",
        rule="u",
        dataset="digits",
        epochs=2,
        history={"test_accuracy": [0.5, 0.75], "pulses": [10, 12]},
        final={"n": 3, "per": {"x": np.arange(3)}},
        weights={"layer0": np.ones((2, 2))},
        attrs={"point": 4},
    )
    wb.close()
    assert _content(a) == _content(b)
    with h5py.File(b, "r") as f:
        assert f["runs/r"].attrs["point"] == 4
    with pytest.raises(ValueError, match="different lengths"):
        wb2 = ResultsWriter(tmp_path / "c.h5", {}, seed=0)
        wb2.write_run(
            "r", device="d", rule="u", dataset="x", epochs=2,
            history={"a": [1.0], "b": [1.0, 2.0]}, final={},
        )  # fmt: skip
    assert wb2.labels == []  # nothing half-added


def test_run_order_by_name_is_independent_of_completion_order(tmp_path):
    orders = []
    for i, labels in enumerate((["b", "a", "c"], ["c", "b", "a"])):
        path = tmp_path / f"{i}.h5"
        w = ResultsWriter(path, {}, seed=0, run_order="name")
        for label in labels:
            w.write_run(
                label, device="d", rule="r", dataset="x", epochs=1,
                history={"test_accuracy": [0.5]}, final={},
            )  # fmt: skip
        w.close()
        orders.append(list(read_results(path)["runs"]))
    assert orders == [["a", "b", "c"], ["a", "b", "c"]]


def test_snapshots_never_follow_a_planted_symlink(tmp_path):
    """The temporary file is created exclusively under a fresh name: a symlink planted at the
    old predictable name (results.h5.tmp) is never opened or overwritten."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.h5.tmp").symlink_to(victim)
    _two_run_file(out / "results.h5")
    assert victim.read_text() == "precious"
    assert read_results(out / "results.h5")["complete"]
    leftovers = [p.name for p in out.iterdir() if p.name not in ("results.h5", "results.h5.tmp")]
    assert leftovers == []
    assert oct((out / "results.h5").stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_failed_snapshot_leaves_no_temporary_file(tmp_path, monkeypatch):
    w = ResultsWriter(tmp_path / "results.h5", {}, seed=0)

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(h5py.File, "flush", boom)
    with pytest.raises(OSError, match="No space left"):
        w.add_run("r", device="d", rule="r", dataset="x", epochs=1)
    assert [p.name for p in tmp_path.iterdir()] == ["results.h5"]


def test_check_writable_names_the_folder(tmp_path, monkeypatch):
    import tempfile

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    with pytest.raises(OSError, match=r"the directory .* is not writable"):
        check_writable(tmp_path / "out" / "sweep.h5")


def test_results_kind(tmp_path):
    path = tmp_path / "s.h5"
    ResultsWriter(path, {}, seed=0, kind="sweep").close()
    assert results_kind(path) == "sweep"
    (tmp_path / "x.txt").write_text("not hdf5")
    assert results_kind(tmp_path / "x.txt") is None
    assert results_kind(tmp_path / "missing.h5") is None


@pytest.mark.parametrize("damage", ["config", "runs", "run_config"])
def test_read_damaged_file_names_what_is_wrong(tmp_path, damage):
    path = tmp_path / "results.h5"
    _two_run_file(path)
    with h5py.File(path, "r+") as f:
        if damage == "config":
            f.attrs["config"] = "{not json"
        elif damage == "runs":
            del f["runs"]
            f["runs"] = np.arange(3)
        else:
            f["runs/software"].attrs["config"] = "[1, 2"
    msg = {"config": "attribute 'config' is not valid JSON", "runs": "'runs' is not a group"}
    with pytest.raises(ValueError, match=msg.get(damage, "runs/software config")):
        read_results(path)
