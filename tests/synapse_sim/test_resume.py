"""``--resume``: a run stopped after epoch k and resumed ends bit for bit as an uninterrupted one.

The crash is simulated by an exception raised inside the results writer when epoch k + 1 of a
chosen run is about to be written (so epochs 1..k of that run, and every earlier run, reached the
file with their checkpoints); one test kills a real ``synapse-sim train`` with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from synapse_sim.results.store import ResultsWriter, ResumeMismatchError, read_results
from synapse_sim.studies.base import run_study
from synapse_sim.studies.train import RunSpec, TrainConfig, TrainStudy

CONFIG = TrainConfig(
    dataset="digits", hidden=(12,), epochs=3, max_train=150, seed=3, rounding="stochastic"
)
RUNS = [
    RunSpec(device="software"),
    RunSpec(device="epiram", rule="bidirectional"),
    RunSpec(device="ag_a_si", rule="unidirectional", overrides={"c2c_sigma": 0.02}),
    RunSpec(device="pcmo", rule="stochastic"),
]


class Crash(Exception):
    """The simulated crash."""


def _crash_at(monkeypatch, label: str, epoch: int):
    """Raise :class:`Crash` when epoch ``epoch`` (1-based) of run ``label`` is appended."""
    orig = ResultsWriter.append_epoch

    def append_epoch(self, lab, **metrics):
        if lab == label and self.epochs_done(lab) + 1 == epoch:
            raise Crash(f"simulated crash before epoch {epoch} of {lab}")
        return orig(self, lab, **metrics)

    monkeypatch.setattr(ResultsWriter, "append_epoch", append_epoch)


def _same(a: dict, b: dict) -> None:
    """Two results files hold the same numbers (epoch times aside), bit for bit."""
    assert list(a["runs"]) == list(b["runs"])
    for label in a["runs"]:
        ra, rb = a["runs"][label], b["runs"][label]
        assert ra["epochs_done"] == rb["epochs_done"] == CONFIG.epochs
        assert ra["complete"] and rb["complete"]
        for k, v in ra["metrics"].items():
            if k != "epoch_time":
                assert np.array_equal(v, rb["metrics"][k]), (label, k)
        assert set(ra["weights"]) == set(rb["weights"]) and ra["weights"]
        for k in ra["weights"]:
            assert ra["weights"][k].tobytes() == rb["weights"][k].tobytes(), (label, k)
        assert repr(ra["final"]) == repr(rb["final"]), label


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    res = run_study(TrainStudy(CONFIG, RUNS, save_weights=True, plots=False), out=out)
    return read_results(out / "results.h5"), res


@pytest.mark.parametrize(
    "label,epoch",
    [
        ("epiram-bidirectional", 2),
        pytest.param("pcmo-stochastic", 3, marks=pytest.mark.slow),
        pytest.param("software", 1, marks=pytest.mark.slow),
    ],
)
def test_resume_after_crash_is_bit_identical(tmp_path, monkeypatch, uninterrupted, label, epoch):
    with monkeypatch.context() as m:
        _crash_at(m, label, epoch)
        with pytest.raises(Crash):
            run_study(TrainStudy(CONFIG, RUNS, save_weights=True, plots=False), out=tmp_path)
    part = read_results(tmp_path / "results.h5")
    assert not part["complete"]
    # nothing computed is lost: every finished epoch is in the file
    assert part["runs"][label]["epochs_done"] == epoch - 1
    before = list(part["runs"]).index(label)
    for lab in list(part["runs"])[:before]:
        assert part["runs"][lab]["complete"]
    with pytest.raises(FileExistsError, match="--resume"):
        run_study(TrainStudy(CONFIG, RUNS, plots=False), out=tmp_path, mode="new")
    res = run_study(
        TrainStudy(CONFIG, RUNS, save_weights=True, plots=False), out=tmp_path, mode="resume"
    )
    full, full_res = uninterrupted
    done = read_results(tmp_path / "results.h5")
    assert done["complete"]
    _same(full, done)
    # the returned result matches too (history, and the live arrays' state)
    for lab in full_res.history:
        for k in full_res.history[lab]:
            if k != "epoch_time":
                assert full_res.history[lab][k] == res.history[lab][k], (lab, k)
        for a, b in zip(full_res.arrays[lab], res.arrays[lab], strict=True):
            if hasattr(a, "state_dict"):
                sa, sb = a.state_dict(), b.state_dict()
                for k in sa:
                    assert np.array_equal(sa[k], sb[k]), (lab, k)
    # a complete file drops its checkpoints and is not resumed again
    import h5py

    with h5py.File(tmp_path / "results.h5", "r") as f:
        assert not any("checkpoint" in f["runs"][lab] for lab in f["runs"])
    with pytest.raises(FileExistsError, match="nothing to resume"):
        run_study(TrainStudy(CONFIG, RUNS, plots=False), out=tmp_path, mode="resume")


def test_checkpoint_is_written_with_each_epoch(tmp_path, monkeypatch):
    _crash_at(monkeypatch, "epiram-bidirectional", 3)
    with pytest.raises(Crash):
        run_study(TrainStudy(CONFIG, RUNS[:2], plots=False), out=tmp_path)
    import h5py

    with h5py.File(tmp_path / "results.h5", "r") as f:
        g = f["runs/epiram-bidirectional"]
        assert int(g.attrs["epochs_done"]) == 2
        assert int(g["checkpoint/epoch"][()]) == 2
        assert set(g["checkpoint/layers"]) == {"layer0", "layer1"}
        assert "G" in g["checkpoint/layers/layer0"]


def test_resume_refuses_another_config(tmp_path, monkeypatch):
    with monkeypatch.context() as m:
        _crash_at(m, "epiram-bidirectional", 2)
        with pytest.raises(Crash):
            run_study(TrainStudy(CONFIG, RUNS[:2], plots=False), out=tmp_path)
    before = (tmp_path / "results.h5").read_bytes()
    other = TrainConfig(**{**CONFIG.to_dict(), "lr": (0.3,)})
    with pytest.raises(ResumeMismatchError, match=r"different configuration.*lr") as info:
        run_study(TrainStudy(other, RUNS[:2], plots=False), out=tmp_path, mode="resume")
    assert info.value.key == "config"
    with pytest.raises(ResumeMismatchError, match="runs"):
        run_study(TrainStudy(CONFIG, RUNS[:1], plots=False), out=tmp_path, mode="resume")
    assert (tmp_path / "results.h5").read_bytes() == before  # untouched


def test_resume_without_a_file_starts_a_new_run(tmp_path, uninterrupted):
    run_study(TrainStudy(CONFIG, RUNS, save_weights=True, plots=False), out=tmp_path, mode="resume")
    _same(uninterrupted[0], read_results(tmp_path / "results.h5"))


def test_cli_resume_and_overwrite_exclude_each_other(tmp_path, capsys):
    from synapse_sim.cli.app import main

    assert main(["train", "--resume", "--overwrite", "--out", str(tmp_path)]) == 2
    assert "--overwrite: not allowed with argument --resume" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_resume_after_kill_9(tmp_path):
    """A real ``synapse-sim train`` killed with SIGKILL part-way, then ``--resume``d, ends equal
    to an uninterrupted run (epoch times aside)."""
    args = [
        "train",
        "--dataset",
        "digits",
        "--hidden",
        "30",
        "--epochs",
        "4",
        "--device",
        "epiram",
        "--rule",
        "unidirectional",
        "--save-weights",
        "--quiet",
    ]
    cmd = [sys.executable, "-m", "synapse_sim.cli"]
    full, part = tmp_path / "full", tmp_path / "part"
    subprocess.run([*cmd, *args, "--out", str(full)], check=True, capture_output=True)
    proc = subprocess.Popen([*cmd, *args, "--out", str(part)], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            time.sleep(0.05)
            try:
                runs = read_results(part / "results.h5")["runs"]
            except (OSError, ValueError):
                continue
            if runs.get("epiram-unidirectional", {}).get("epochs_done", 0) >= 1:
                break
        assert proc.poll() is None, "the run finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    got = read_results(part / "results.h5")
    assert not got["complete"]
    assert got["runs"]["epiram-unidirectional"]["epochs_done"] < 4
    subprocess.run([*cmd, *args, "--out", str(part), "--resume"], check=True, capture_output=True)
    a, b = read_results(full / "results.h5"), read_results(part / "results.h5")
    for label in a["runs"]:
        for k, v in a["runs"][label]["metrics"].items():
            if k != "epoch_time":
                assert np.array_equal(v, b["runs"][label]["metrics"][k]), (label, k)
        for k, w in a["runs"][label]["weights"].items():
            assert w.tobytes() == b["runs"][label]["weights"][k].tobytes()


@pytest.mark.slow
def test_compare_resume_after_crash_is_bit_identical(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from synapse_sim.studies.compare import CompareConfig, CompareStudy

    cfg = CompareConfig(
        model="mlp", devices=("epiram",), rules=("unidirectional",), epochs=3, max_train=120
    )
    full, part = tmp_path / "full", tmp_path / "part"
    run_study(CompareStudy(cfg, save_weights=True, plots=False), out=full)
    labels = list(read_results(full / "results.h5")["runs"])
    assert len(labels) == 2
    with monkeypatch.context() as m:
        _crash_at(m, labels[1], 2)
        with pytest.raises(Crash):
            run_study(CompareStudy(cfg, save_weights=True, plots=False), out=part)
    assert read_results(part / "results.h5")["runs"][labels[1]]["epochs_done"] == 1
    run_study(CompareStudy(cfg, save_weights=True, plots=False), out=part, mode="resume")
    a, b = read_results(full / "results.h5"), read_results(part / "results.h5")
    assert b["complete"]
    for label in labels:
        for k, v in a["runs"][label]["metrics"].items():
            if k != "epoch_time":
                assert np.array_equal(v, b["runs"][label]["metrics"][k]), (label, k)
        for k, w in a["runs"][label]["weights"].items():
            assert w.tobytes() == b["runs"][label]["weights"][k].tobytes(), (label, k)
        assert repr(a["runs"][label]["final"]) == repr(b["runs"][label]["final"])
