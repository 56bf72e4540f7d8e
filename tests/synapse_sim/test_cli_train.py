"""``synapse-sim train`` / ``show`` / ``demo``: end to end on tiny settings, and their errors."""

import json
import struct

import numpy as np
import pytest

from synapse_sim.cli.app import main
from synapse_sim.results.store import read_results

TINY = ["--dataset", "digits", "--hidden", "12", "--epochs", "2", "--max-train", "200", "--quiet"]


def _one_line_error(rc, err):
    assert rc == 2
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("synapse-sim: error:")


def test_train_end_to_end_and_show_json(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(
        [
            "train",
            *TINY,
            "--device",
            "epiram",
            "--device",
            "pcmo",
            "--rule",
            "bidirectional",
            "--rule",
            "unidirectional",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "| epiram-unidirectional |" in printed
    for f in ("results.h5", "accuracy.png", "weights.png", "conductance.png", "results.md"):
        assert (out / f).stat().st_size > 0
    res = read_results(out / "results.h5")
    assert res["complete"]
    assert set(res["runs"]) == {
        "software",
        "epiram-bidirectional",
        "epiram-unidirectional",
        "pcmo-bidirectional",
        "pcmo-unidirectional",
    }
    assert main(["show", str(out / "results.h5"), "--json"]) == 0
    recs = json.loads(capsys.readouterr().out)
    assert len(recs) == 5
    for rec in recs:
        for key in (
            "device",
            "rule",
            "dataset",
            "epochs",
            "test_accuracy",
            "final_test_accuracy",
            "pulses",
            "refreshes",
            "complete",
        ):
            assert key in rec
        assert rec["dataset"] == "digits" and rec["epochs"] == 2 and rec["complete"] is True
        assert len(rec["test_accuracy"]) == 2
        assert rec["final_test_accuracy"] == rec["test_accuracy"][-1]
    by = {r["label"]: r for r in recs}
    assert by["software"]["pulses"] == 0
    assert by["epiram-unidirectional"]["refreshes"] > 0
    assert by["epiram-bidirectional"]["refreshes"] == 0
    # the table form
    assert main(["show", str(out)]) == 0
    assert "pcmo-bidirectional" in capsys.readouterr().out


def _write_idx(folder, n_train=60, n_test=20):
    rng = np.random.default_rng(0)
    folder.mkdir()
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        imgs = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        (folder / f"{prefix}-images-idx3-ubyte").write_bytes(
            struct.pack(">IIII", 0x0803, n, 28, 28) + imgs.tobytes()
        )
        (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(
            struct.pack(">II", 0x0801, n) + labels.tobytes()
        )


def test_train_on_user_idx_folder(tmp_path, capsys):
    _write_idx(tmp_path / "mnist")
    out = tmp_path / "idx_run"
    rc = main(
        [
            "train",
            "--dataset",
            f"idx:{tmp_path / 'mnist'}",
            "--hidden",
            "8",
            "--epochs",
            "1",
            "--device",
            "ideal",
            "--quiet",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    res = read_results(out / "results.h5")
    assert res["config"]["sizes"] == [400, 8, 10]  # NeuroSim 20x20 crop by default
    assert res["runs"]["ideal-bidirectional"]["dataset"].startswith("idx:")


@pytest.mark.parametrize(
    "extra,expected",
    [
        (["--device", "epiramm"], "did you mean 'epiram'"),
        (["--device", "epiram", "--rule", "sgd"], "rule"),
        (["--epochs", "-1"], "epochs"),
        (["--epochs", "0"], "epochs"),
        (["--dataset", "idx:/nonexistent/folder"], "/nonexistent/folder"),
        (["--dataset", "mnist"], "did you mean"),
        (["--lr", "0.1", "0.2", "0.3"], "lr"),
        (["--out", "/proc/forbidden/run"], "cannot create output directory"),
        (["--hidden", "0"], "must be >= 1"),
        (["--backend", "gpu"], "backend must be one of 'auto', 'numpy', 'numba', 'cupy'"),
        (["--backend", "cuppy"], "did you mean 'cupy'"),
    ],
)
def test_train_bad_arguments(extra, expected, capsys):
    argv = ["train", "--dataset", "digits", "--epochs", "1", "--quiet", "--out", "/tmp/unused"]
    rc = main(argv + extra)
    err = capsys.readouterr().err
    _one_line_error(rc, err)
    assert expected in err


def test_show_missing_file(tmp_path, capsys):
    rc = main(["show", str(tmp_path / "nope.h5")])
    err = capsys.readouterr().err
    _one_line_error(rc, err)
    assert "nope.h5" in err


def test_interrupted_training_is_marked_incomplete(tmp_path, monkeypatch, capsys):
    """A run that dies mid-way leaves a readable file that says it is not complete."""
    import synapse_sim.models.online as online
    import synapse_sim.studies.train as tr
    from synapse_sim.models.online import OnlineTrainer

    calls = {"n": 0}

    def dying(orig, count=lambda *a: 1):
        def call(*a, **k):
            calls["n"] += count(*a)
            if calls["n"] > 600:  # software: 2 epochs x 200 samples, then epiram dies in its 2nd
                raise KeyboardInterrupt
            return orig(*a, **k)

        return call

    # the software twin steps through MLP.backward; batch-1 device runs go through the fused
    # OnlineTrainer: whole presentations per kernel call (present_block, k0 .. k1), or one
    # presentation at a time through OnlineTrainer._apply: count presentations on all three
    monkeypatch.setattr(tr.MLP, "backward", dying(tr.MLP.backward))
    monkeypatch.setattr(OnlineTrainer, "_apply", dying(OnlineTrainer._apply))
    block = online._kern.present_block
    monkeypatch.setattr(online._kern, "present_block", dying(block, lambda *a: a[3] - a[2]))
    out = tmp_path / "dead"
    rc = main(["train", *TINY, "--device", "epiram", "--out", str(out)])
    assert rc == 130
    res = read_results(out / "results.h5")
    assert res["complete"] is False or res["complete"] == False  # noqa: E712
    assert res["runs"]["software"]["complete"]  # the finished run is kept
    assert not res["runs"]["epiram-bidirectional"]["complete"]
    assert main(["show", str(out), "--json"]) == 0
    recs = {r["label"]: r for r in json.loads(capsys.readouterr().out)}
    assert recs["epiram-bidirectional"]["complete"] is False
    assert recs["software"]["complete"] is False  # the file as a whole is incomplete


def test_demo_main_job_end_to_end(tmp_path, capsys):
    """`synapse-sim demo` (one epoch): software + four presets x two rules, files and table."""
    out = tmp_path / "demo"
    assert main(["demo", "--epochs", "1", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    for f in ("results.h5", "accuracy.png", "results.md"):
        assert (out / f).stat().st_size > 0
    res = read_results(out / "results.h5")
    assert res["complete"]
    labels = set(res["runs"])
    assert labels == {"software"} | {
        f"{d}-{r}"
        for d in ("ideal", "epiram", "ag_a_si", "pcmo")
        for r in ("bidirectional", "unidirectional")
    }
    for label in labels:
        assert f"| {label} |" in printed
    # one epoch of NeuroSim's network on MNIST-5k already learns in software
    assert res["runs"]["software"]["metrics"]["test_accuracy"][0] > 0.5


def test_existing_results_are_refused_without_overwrite(tmp_path, capsys):
    """A second run into the same --out never replaces finished work by accident."""
    out = tmp_path / "run"
    tiny = ["train", *TINY[:-1], "--epochs", "1", "--quiet", "--device", "ideal", "--out", str(out)]
    assert main(tiny) == 0
    before = (out / "results.h5").read_bytes()
    capsys.readouterr()
    rc = main(tiny)
    err = capsys.readouterr().err
    _one_line_error(rc, err)
    assert "exists" in err and "--overwrite" in err
    assert (out / "results.h5").read_bytes() == before
    assert main([*tiny, "--overwrite"]) == 0
    assert read_results(out / "results.h5")["complete"]


def test_fit_command_recovers_the_example_device(tmp_path, capsys):
    """``synapse-sim fit`` on the shipped example (made from NL +1.8 / -2.6, 60 pulses, 1 %
    cycle-to-cycle noise: examples/make_example_measurements.py) writes the fit and a figure."""
    from importlib import resources

    data = resources.files("devices") / "data" / "example_measurements.csv"
    assert main(["fit", str(data), "--out", str(tmp_path), "--json"]) == 0
    fit = json.loads(capsys.readouterr().out)
    p = fit["params"]
    assert abs(p["nl_ltp"] - 1.8) < 0.3 and abs(p["nl_ltd"] + 2.6) < 0.5
    assert p["levels_ltp"] == 60 and abs(p["c2c_sigma"] - 0.01) < 0.002
    assert (tmp_path / "example_measurements_fit.png").stat().st_size > 1000
    rc = main(["fit", str(tmp_path / "missing.csv")])
    _one_line_error(rc, capsys.readouterr().err)
