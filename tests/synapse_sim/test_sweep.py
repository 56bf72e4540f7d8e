"""Device-variability sweeps: spec expansion, executors, crash-safe resume, aggregation, CLI."""

from __future__ import annotations

import json
import math
import os
import signal
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from synapse_sim.cli.app import main
from synapse_sim.sweep import (
    aggregate,
    expand,
    format_sweep_table,
    gpu_worker_env,
    is_sweep_file,
    load_spec,
    parse_spec,
    read_sweep,
    run_sweep,
    sweep_records,
)
from synapse_sim.sweep.aggregate import sweep_report

ROOT = Path(__file__).resolve().parents[2]
TINY_TRAIN = {"dataset": "digits", "hidden": [8], "epochs": 2, "max_train": 150}


def _spec(**axes):
    return {
        "sweep": {"instances": 2, "save_weights": True},
        "train": TINY_TRAIN,
        "run": {"device": "ag_a_si"},
        "axes": axes or {"sigma_nl": [0.0, 1.5], "levels_ltp+levels_ltd": [16, 64]},
    }


@pytest.fixture(scope="module")
def serial_sweep(tmp_path_factory):
    """A finished serial sweep: 2 x 2 points x 2 instances + software (weights stored)."""
    out = tmp_path_factory.mktemp("serial")
    run_sweep(_spec(), out, progress=False)
    return out / "sweep.h5"


def _content(path):
    """Everything of a sweep file that must not depend on execution (no times)."""
    res = read_sweep(path)
    runs = {}
    for label, run in res["runs"].items():
        runs[label] = {
            "attrs": {k: run[k] for k in ("device", "rule", "dataset", "epochs", "config")},
            "metrics": {k: v.tolist() for k, v in run["metrics"].items() if k != "epoch_time"},
            "final": json.dumps(run["final"], sort_keys=True, default=str),
            "weights": {k: v.tolist() for k, v in run["weights"].items()},
        }
    return {"config": res["config"], "seed": res["seed"], "complete": res["complete"], "runs": runs}


# ---------------------------------------------------------------------------- expansion
def test_expand_grid_and_seeds():
    spec = parse_spec(
        {
            "sweep": {"instances": 3, "first_device_seed": 10},
            "train": TINY_TRAIN,
            "run": {"device": "ag_a_si", "overrides": {"c2c_sigma": 0.0}},
            "axes": {
                "sigma_nl": {"start": 0.0, "stop": 1.0, "num": 3},
                "rule": ["bidirectional", "unidirectional"],
            },
        }
    )
    assert spec.n_points == 6 and spec.n_instances == 3
    tasks = expand(spec)
    assert len(tasks) == 1 + 6 * 3
    assert tasks[0].label == "software" and tasks[0].run["device"] == "software"
    dev = tasks[1:]
    assert [t.label for t in dev[:4]] == ["p0000-i00", "p0000-i01", "p0000-i02", "p0001-i00"]
    # last axis fastest; instance k uses device seed 10 + k at every point
    assert [t.params for t in dev[::3]] == [
        {"sigma_nl": s, "rule": r}
        for s in (0.0, 0.5, 1.0)
        for r in ("bidirectional", "unidirectional")
    ]
    assert {t.train["device_seed"] for t in dev if t.instance == 2} == {12}
    assert all(t.train["seed"] == 0 for t in tasks)
    assert dev[3].run["rule"] == "unidirectional" and dev[3].run["mapping"] == "differential"
    assert dev[0].run["overrides"] == {"c2c_sigma": 0.0, "sigma_nl": 0.0}
    assert len({t.label for t in tasks}) == len(tasks)


@pytest.mark.parametrize(
    ("axis", "values"),
    [
        ([0.1, 0.2], (0.1, 0.2)),
        ({"values": [3, 1]}, (3, 1)),
        ({"start": 0.0, "stop": 0.3, "num": 4}, (0.0, 0.1, 0.2, 0.3)),
        ({"start": 0, "stop": 0.3, "step": 0.1}, (0.0, 0.1, 0.2, 0.3)),
        ({"start": 0.001, "stop": 0.1, "num": 3, "scale": "log"}, (0.001, 0.01, 0.1)),
        ({"start": 0.5, "stop": 0.5, "num": 1}, (0.5,)),
    ],
)
def test_ranges(axis, values):
    spec = parse_spec(
        {"train": TINY_TRAIN, "run": {"device": "epiram"}, "axes": {"c2c_sigma": axis}}
    )
    assert spec.axes["c2c_sigma"] == values


def test_integer_ranges_and_linked_axes():
    spec = parse_spec(
        {
            "sweep": {"device_seeds": [7, 3]},
            "train": TINY_TRAIN,
            "run": {"device": "ag_a_si"},
            "axes": {"levels_ltp+levels_ltd": {"start": 16, "stop": 64, "step": 16}},
        }
    )
    assert spec.axes["levels_ltp+levels_ltd"] == (16, 32, 48, 64)
    assert all(isinstance(v, int) for v in spec.axes["levels_ltp+levels_ltd"])
    tasks = expand(spec)
    assert tasks[-1].run["overrides"] == {"levels_ltp": 64, "levels_ltd": 64}
    assert [t.train["device_seed"] for t in tasks[1:3]] == [7, 3]


def test_example_spec_is_valid():
    spec = load_spec(ROOT / "examples" / "sweep_d2d_levels.toml")
    assert spec.n_points >= 4 and spec.n_instances >= 2
    assert any(k in spec.axes for k in ("sigma_nl", "sigma_gmin"))
    assert any("levels" in k for k in spec.axes)


def test_training_seed_axis_pairs_training_and_device_seeds(tmp_path):
    """``seed`` as an axis: every (training seed, device seed) pair runs once, and the run of
    training seed s is bit for bit the run of a sweep with ``train.seed = s``; records of runs
    not yet in the file name their point's training seed."""
    spec = {
        "sweep": {"instances": 2, "software": False},
        "train": TINY_TRAIN,
        "run": {"device": "ag_a_si"},
        "axes": {"seed": [0, 3]},
    }
    tasks = expand(spec)
    assert [(t.train["seed"], t.train["device_seed"]) for t in tasks] == [
        (0, 0),
        (0, 1),
        (3, 0),
        (3, 1),
    ]
    res = run_sweep(spec, tmp_path / "axis", progress=False)
    one = {**spec, "train": {**TINY_TRAIN, "seed": 3}, "axes": {}}
    assert [t.train for t in expand(one)] == [t.train for t in tasks[2:]]
    ref = run_sweep(one, tmp_path / "fixed", progress=False)
    got, want = _content(res.path)["runs"], _content(ref.path)["runs"]
    for k in (0, 1):
        a, b = got[f"p0001-i{k:02d}"], want[f"p0000-i{k:02d}"]
        assert (a["metrics"], a["final"]) == (b["metrics"], b["final"])
    assert got["p0000-i00"]["metrics"] != got["p0001-i00"]["metrics"]
    recs = sweep_records(res.path)
    assert [(r["train_seed"], r["seed"]) for r in recs] == [(0, 0), (0, 1), (3, 0), (3, 1)]
    assert "training seed from axis `seed`" in sweep_report(res.path)
    assert "seed 3" in sweep_report(ref.path)
    with h5py.File(res.path, "r+") as f:
        del f["runs/p0001-i01"]
    miss = sweep_records(res.path)[-1]
    assert miss["complete"] is False and (miss["train_seed"], miss["seed"]) == (3, 1)


# ---------------------------------------------------------------------------- malformed specs
BASE_TOML = """
[train]
dataset = "digits"
hidden = [8]
epochs = 1
max_train = 50
[run]
device = "ag_a_si"
"""

BAD_SPECS = [
    ("[bogus]\nx = 1\n", "bogus"),
    ("[sweep]\ninstanses = 2\n", "sweep.instanses"),
    ("[sweep]\ninstances = 0\n", "sweep.instances"),
    ("[sweep]\ndevice_seeds = []\n", "sweep.device_seeds"),
    ("[axes]\nsigma_nl = []\n", "axes.sigma_nl"),
    ("[axes]\nsigma_nlx = [0.1]\n", "axes.sigma_nlx"),
    ("[axes]\nsigma_nl = [-1.0]\n", "axes.sigma_nl"),
    ("[axes]\nsigma_nl = {start = 0.0, stop = 1.0, num = 0}\n", "axes.sigma_nl.num"),
    ("[axes]\nsigma_nl = {start = 0.0, stop = 1.0, n = 3}\n", "axes.sigma_nl.n"),
    ("[axes]\nsigma_nl = {start = 0.0, num = 3}\n", "axes.sigma_nl"),
    ("[axes]\nsigma_nl = {start = 1.0, stop = 0.0, step = 0.5}\n", "axes.sigma_nl.step"),
    ("[axes]\nsigma_gmin = {start = 0.0, stop = 1.0, num = 3, scale = 'log'}\n", "axes.sigma_gmin"),
    ("[axes]\nsigma_nl = 0.5\n", "axes.sigma_nl"),
    ("[axes]\nlevels_ltp = [16, 16]\n", "axes.levels_ltp"),
    ("[axes]\nlevels_ltp = [2.5]\n", "axes.levels_ltp"),
    ("[axes]\ndevice = ['ag_a_si', 'nope']\n", "axes.device"),
    ("[axes]\nrule = ['backprop']\n", "axes.rule"),
    ("[axes]\nseed = [-1]\n", "axes.seed"),
    ("[axes]\nseed = [1.5]\n", "axes.seed"),
    ("[axes]\nseed = [true]\n", "axes.seed"),
    ("[axes]\nseed = ['0']\n", "axes.seed"),
    ("[axes]\ndevice_seed = [1, 2]\n", "axes.device_seed"),
    ("[axes]\nepochs = [0]\n", "axes.epochs"),
    ("[axes]\nbackend = ['numpy', 'numba']\n", "axes.backend"),
    ("[sweep]\ngpus = [0, 0]\n", "sweep.gpus"),
    ("[sweep]\ngpus = [-1]\n", "sweep.gpus"),
    ("[sweep]\ngpus = '0,1'\n", "sweep.gpus"),
    ("[sweep]\ngpus = []\n", "sweep.gpus"),
]


@pytest.mark.parametrize(("extra", "key"), BAD_SPECS, ids=[k for _, k in BAD_SPECS])
def test_malformed_spec_rejected_naming_key(tmp_path, capsys, extra, key):
    path = tmp_path / "spec.toml"
    path.write_text(BASE_TOML + extra)
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        load_spec(path)
    rc = main(["sweep", str(path), "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("synapse-sim: error:"), err
    assert key in lines[0] and "Traceback" not in err
    assert not (tmp_path / "out" / "sweep.h5").exists()


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[train]\nhiden = [8]\n[run]\ndevice = 'ag_a_si'\n", "train.hiden"),
        ("[train]\nepochs = 0\n[run]\ndevice = 'ag_a_si'\n", "train.epochs"),
        ("[train]\nepochs = 1\n", "run.device"),
        ("[run]\ndevice = 'ag_a_si'\ncolor = 1\n", "run.color"),
        ("[run]\ndevice = 'ag_a_si'\noverrides = {foo = 1}\n", "run.overrides.foo"),
        ("[run\ndevice = 1\n", "invalid TOML"),
        ("[train]\nseed = 0\n[run]\ndevice = 'ag_a_si'\n[axes]\nseed = [1, 2]\n", "axes.seed"),
    ],
)
def test_malformed_spec_other_sections(tmp_path, text, key):
    path = tmp_path / "spec.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        load_spec(path)


# ---------------------------------------------------------------------------- executors
def test_dask_local_cluster_equals_serial(serial_sweep, tmp_path):
    pytest.importorskip("distributed")
    res = run_sweep(_spec(), tmp_path, workers=2, executor="dask", progress=False)
    assert res.complete and res.ran == 9
    serial, dask = _content(serial_sweep), _content(res.path)
    assert serial == dask
    assert all(run["weights"] for run in dask["runs"].values())


def test_local_processes_equal_serial(serial_sweep, tmp_path):
    res = run_sweep(_spec(), tmp_path, workers=2, progress=False)  # processes by default
    assert res.complete
    assert _content(serial_sweep) == _content(res.path)


def test_kill_and_resume_equals_uninterrupted(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(
        textwrap.dedent(
            """
            [sweep]
            instances = 3
            [train]
            dataset = "digits"
            hidden = [16]
            epochs = 2
            max_train = 400
            [run]
            device = "ag_a_si"
            [axes]
            sigma_nl = {start = 0.0, stop = 1.5, num = 4}
            c2c_sigma = [0.0, 0.02]
            """
        )
    )
    out = tmp_path / "killed"
    path = out / "sweep.h5"
    cmd = [sys.executable, "-m", "synapse_sim.cli.app", "sweep", str(spec), "--out", str(out)]
    proc = subprocess.Popen([*cmd, "--quiet", "--no-plots"], cwd=ROOT)
    done = 0
    deadline = time.monotonic() + 300  # generous: a loaded machine
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if path.exists():
                with h5py.File(path, "r", locking=False) as f:
                    done = len(f["runs"])
                if done >= 3:
                    break
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert 3 <= done < 25, f"the sweep was not killed midway ({done} runs written)"
    partial = read_sweep(path)  # readable, finished runs intact
    assert not partial["complete"]
    n_killed = len(partial["runs"])
    assert 0 < n_killed < 25
    recs = sweep_records(path)
    assert {r["label"] for r in recs if r["complete"]} == set(partial["runs"])

    rc = main(["sweep", str(spec), "--out", str(out), "--quiet", "--no-plots"])
    assert rc == 2  # an existing file needs --resume
    assert main(["sweep", str(spec), "--out", str(out), "--resume", "--quiet", "--no-plots"]) == 0
    ref = run_sweep(load_spec(spec), tmp_path / "ref", progress=False)
    resumed, uninterrupted = _content(path), _content(ref.path)
    assert resumed["complete"] and uninterrupted["complete"]
    assert set(resumed["runs"]) == set(uninterrupted["runs"]) and len(resumed["runs"]) == 25
    # every run's metrics and final statistics equal (config differs only in the spec source)
    for label, run in uninterrupted["runs"].items():
        assert resumed["runs"][label] == run, label
    with h5py.File(path, "r") as a, h5py.File(ref.path, "r") as b:
        assert list(a["runs"]) == list(b["runs"])


def test_resume_refuses_other_spec(serial_sweep, tmp_path):
    import shutil

    out = tmp_path / "other"
    out.mkdir()
    shutil.copy(serial_sweep, out / "sweep.h5")
    with pytest.raises(ValueError, match="different spec"):
        run_sweep(_spec(sigma_nl=[0.0, 0.5]), out, resume=True, progress=False)
    again = run_sweep(_spec(), out, resume=True, progress=False)
    assert again.ran == 0 and again.skipped == 9 and again.complete


# ---------------------------------------------------------------------------- aggregation
def test_aggregate_matches_hand_computation(serial_sweep):
    recs = sweep_records(serial_sweep)
    rows = aggregate(serial_sweep)
    assert rows[0]["point"] is None and rows[0]["n"] == 1
    assert rows[0]["final_test_accuracy_std"] is None
    assert [r["point"] for r in rows[1:]] == [0, 1, 2, 3]
    for row in rows[1:]:
        mine = [r for r in recs if r["point"] == row["point"]]
        assert row["n"] == row["n_planned"] == 2
        for m in ("final_test_accuracy", "pulses", "refreshes"):
            vals = [r[m] for r in mine]
            assert row[f"{m}_values"] == vals
            assert math.isclose(row[f"{m}_mean"], statistics.fmean(vals), rel_tol=1e-12)
            assert math.isclose(row[f"{m}_std"], statistics.stdev(vals), rel_tol=1e-12, abs_tol=0)
    # a hand-made set of records: mean 0.6, sample std 0.1
    fake = [
        {"point": 0, "params": {"x": 1}, "complete": True, "final_test_accuracy": a}
        for a in (0.5, 0.6, 0.7)
    ] + [{"point": 0, "params": {"x": 1}, "complete": False, "final_test_accuracy": None}]
    (row,) = aggregate(fake, metrics=("final_test_accuracy",))
    assert row["n"] == 3 and row["n_planned"] == 4
    assert math.isclose(row["final_test_accuracy_mean"], 0.6)
    assert math.isclose(row["final_test_accuracy_std"], 0.1)
    table = format_sweep_table([row])
    assert "60.00 ± 10.00" in table and "3/4" in table


def test_show_json_on_sweep_file(serial_sweep, capsys):
    assert is_sweep_file(serial_sweep) and is_sweep_file(serial_sweep.parent)
    assert main(["show", str(serial_sweep), "--json"]) == 0
    recs = json.loads(capsys.readouterr().out)
    assert len(recs) == 1 + 4 * 2
    for rec in recs:
        for key in (
            "params",
            "seed",
            "complete",
            "device",
            "rule",
            "dataset",
            "epochs",
            "test_accuracy",
            "final_test_accuracy",
            "pulses",
            "refreshes",
        ):
            assert key in rec, key
        assert rec["complete"] is True
        assert len(rec["test_accuracy"]) == 2
    dev = [r for r in recs if r["point"] is not None]
    assert dev[0]["params"] == {"sigma_nl": 0.0, "levels_ltp+levels_ltd": 16}
    assert [r["seed"] for r in dev[:2]] == [0, 1]
    assert {r["device"] for r in dev} == {"ag_a_si"} and recs[0]["device"] == "software"
    assert main(["show", str(serial_sweep.parent)]) == 0  # folder -> sweep.h5, text table
    out = capsys.readouterr().out
    assert "final test acc (%)" in out and "± " in out


def test_records_list_missing_runs(serial_sweep, tmp_path):
    import shutil

    part = tmp_path / "sweep.h5"
    shutil.copy(serial_sweep, part)
    with h5py.File(part, "r+") as f:  # as if the job had died before these runs
        del f["runs/p0003-i01"]
        del f["runs/p0002-i00"]
        f.attrs["complete"] = False
    recs = {r["label"]: r for r in sweep_records(part)}
    assert len(recs) == 9
    miss = recs["p0003-i01"]
    assert miss["complete"] is False and miss["final_test_accuracy"] is None
    assert miss["params"] == {"sigma_nl": 1.5, "levels_ltp+levels_ltd": 64} and miss["seed"] == 1
    rows = aggregate(part)
    assert [r["n"] for r in rows] == [1, 2, 2, 1, 1]
    assert rows[3]["final_test_accuracy_std"] is None


def test_plots(serial_sweep, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from synapse_sim.sweep.plots import plot_sweep, plot_sweep_heatmap, save_sweep_plots

    ax = plot_sweep(serial_sweep, "sigma_nl")
    assert len(ax.lines) >= 2
    ax = plot_sweep_heatmap(serial_sweep, "sigma_nl", "levels_ltp+levels_ltd")
    assert ax.images
    with pytest.raises(ValueError, match="x: 'nope'"):
        plot_sweep(serial_sweep, "nope")
    paths = save_sweep_plots(serial_sweep, tmp_path)
    assert len(paths) == 3 and all(p.stat().st_size > 0 for p in paths)


def test_cli_sweep_end_to_end(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text(
        BASE_TOML + "[sweep]\ninstances = 2\nsoftware = false\n[axes]\nsigma_gmin = [0.0, 0.1]\n"
    )
    out = tmp_path / "out"
    assert main(["sweep", str(spec), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "sigma_gmin" in printed and "2/2" in printed
    for name in ("sweep.h5", "sweep.md", "sweep_sigma_gmin.png"):
        assert (out / name).stat().st_size > 0
    res = read_sweep(out)
    assert res["complete"] and res["kind"] == "sweep" and len(res["runs"]) == 4
    assert not any(p.name.endswith(".tmp") for p in out.iterdir())
    # the file also reads with the single-run reader (same group layout)
    from synapse_sim.results.store import read_results

    assert set(read_results(out / "sweep.h5")["runs"]) == set(res["runs"])
    assert np.isfinite(res["runs"]["p0000-i00"]["metrics"]["test_accuracy"]).all()


# ---------------------------------------------------------------------------- backend and GPUs
def test_backend_recorded_and_not_in_plan(serial_sweep, tmp_path):
    """Each run records the backend it trained on; the backend is not part of the plan, so a
    sweep resumes on another backend (it cannot be an axis: see BAD_SPECS)."""
    import shutil

    res = read_sweep(serial_sweep)
    assert res["config"]["backend"] == "auto" and res["config"]["gpus"] is None
    assert {run["config"]["backend"] for run in res["runs"].values()} == {"numba"}
    assert all("cuda_visible_devices" not in run["config"] for run in res["runs"].values())
    spec = parse_spec(_spec())
    spec_np = parse_spec({**_spec(), "train": {**TINY_TRAIN, "backend": "numpy"}})
    assert spec.plan_hash() == spec_np.plan_hash()
    assert all(t.train["backend"] == "numpy" for t in spec_np.tasks())
    assert spec.plan_hash() != parse_spec(_spec(sigma_nl=[0.0, 0.5])).plan_hash()
    out = tmp_path / "resume"
    out.mkdir()
    shutil.copy(serial_sweep, out / "sweep.h5")
    again = run_sweep(_spec(), out, resume=True, progress=False, backend="numpy")
    assert again.ran == 0 and again.skipped == 9


def test_gpu_worker_env_round_robin():
    assert gpu_worker_env([3, 5]) == [{"CUDA_VISIBLE_DEVICES": "3"}, {"CUDA_VISIBLE_DEVICES": "5"}]
    envs = gpu_worker_env((1, 0), workers=5)
    assert [e["CUDA_VISIBLE_DEVICES"] for e in envs] == ["1", "0", "1", "0", "1"]
    assert gpu_worker_env([np.int64(2)], workers=3) == [{"CUDA_VISIBLE_DEVICES": "2"}] * 3
    for bad, match in (
        ([0, 0], "each GPU once"),
        ([], "non-empty list"),
        ([-1], "integers >= 0"),
        ([True], "integers >= 0"),
        ("0,1", "non-empty list"),
        ([0.5], "integers >= 0"),
    ):
        with pytest.raises(ValueError, match=f"gpus must .*{match}"):
            gpu_worker_env(bad)
    with pytest.raises(
        ValueError, match=r"workers \(1\) must be at least the number of gpus \(2\)"
    ):
        gpu_worker_env([0, 1], workers=1)
    with pytest.raises(ValueError, match="workers must be an integer >= 1"):
        gpu_worker_env([0], workers=0)


def _probe(barrier, limit_threads):
    """A stand-in task of the processes executor: waits until every worker holds a task (so each
    worker answers), then reports its process id and environment."""
    barrier.wait(timeout=300)
    return {
        "pid": os.getpid(),
        "gpu": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "threads": os.environ.get("NUMBA_NUM_THREADS"),
        "limit": limit_threads,
    }


def test_local_workers_each_see_their_gpu():
    """The processes executor with gpus: every worker process sees exactly its GPU (round robin
    over the workers as they start), and one thread."""
    import multiprocessing

    from synapse_sim.sweep.executors import run_processes as _processes

    parent = os.environ.get("CUDA_VISIBLE_DEVICES")
    with multiprocessing.get_context("spawn").Manager() as manager:
        barrier = manager.Barrier(3)
        out = list(_processes([barrier] * 3, workers=3, gpus=(7, 2), fn=_probe))
    assert os.environ.get("CUDA_VISIBLE_DEVICES") == parent  # the parent is left alone
    assert len({r["pid"] for r in out}) == 3  # three workers, one task each
    assert sorted(r["gpu"] for r in out) == ["2", "7", "7"]
    assert all(r["threads"] == "1" and r["limit"] is True for r in out)


def test_gpus_validation(tmp_path, capsys):
    spec = _spec()
    with pytest.raises(ValueError, match="gpus needs backend 'cupy'.*got 'auto'"):
        run_sweep(spec, tmp_path, gpus=[0], progress=False)
    with pytest.raises(ValueError, match="gpus pins local worker processes.*LocalCUDACluster"):
        run_sweep(spec, tmp_path, gpus=[0], executor="dask", backend="cupy", progress=False)
    with pytest.raises(ValueError, match="gpus pins local worker processes"):
        run_sweep(spec, tmp_path, gpus=[0], executor="serial", backend="cupy", progress=False)
    with pytest.raises(ValueError, match=r"workers \(1\) must be at least"):
        run_sweep(spec, tmp_path, gpus=[0, 1], workers=1, backend="cupy", progress=False)
    with pytest.raises(ValueError, match="gpus must name each GPU once"):
        run_sweep(spec, tmp_path, gpus=[1, 1], backend="cupy", progress=False)
    with pytest.raises(ValueError, match="backend must be one of"):
        run_sweep(spec, tmp_path, backend="gpu", progress=False)
    with pytest.raises(ValueError, match=r"train\.backend: backend must be one of"):
        parse_spec({**spec, "train": {**TINY_TRAIN, "backend": "gpu"}})
    assert not (tmp_path / "sweep.h5").exists()
    path = tmp_path / "s.toml"
    path.write_text(BASE_TOML)
    for extra, expected in (
        (["--gpus", "0,x"], "argument --gpus: must be distinct GPU ordinals"),
        (["--gpus", "1,1"], "argument --gpus: must be distinct GPU ordinals"),
        (["--gpus", "0", "--backend", "numba"], "gpus needs backend 'cupy'"),
        (["--backend", "cuppy"], "did you mean 'cupy'"),
    ):
        rc = main(["sweep", str(path), "--out", str(tmp_path / "o"), "--quiet", *extra])
        err = capsys.readouterr().err
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert rc == 2 and len(lines) == 1 and expected in lines[0], err
    assert not (tmp_path / "o" / "sweep.h5").exists()


def test_cupy_sweep_without_gpu_fails_before_writing(tmp_path, capsys):
    from devices.gpu import gpu_backend_status

    ok, why = gpu_backend_status()
    if ok:  # pragma: no cover - only on a GPU machine
        pytest.skip("a GPU is usable here")
    path = tmp_path / "s.toml"
    path.write_text(BASE_TOML + "[sweep]\ngpus = [0, 1]\n")
    assert load_spec(path).gpus == (0, 1)
    rc = main(["sweep", str(path), "--out", str(tmp_path / "o"), "--quiet", "--backend", "cupy"])
    err = capsys.readouterr().err
    assert rc == 2 and "backend='cupy' is not available" in err and " ".join(why.split()) in err
    assert not (tmp_path / "o" / "sweep.h5").exists()


# ------------------------------------------------------------------ limits and bad input
@pytest.mark.parametrize(
    ("patch", "key"),
    [
        ({"sweep": {"instances": 1_000_000_000}}, "sweep.instances: plans 1e+09 runs"),
        ({"axes": {"c2c_sigma": {"start": 0.0, "stop": 1.0, "step": 1e-9}}}, "c2c_sigma.step"),
        (
            {"axes": {"c2c_sigma": {"start": 0, "stop": 1, "num": 1_000_000}, "sigma_nl": [0]}},
            "c2c_sigma.num: gives 1e+06 values",
        ),
        (
            {
                "axes": {
                    "c2c_sigma": {"start": 0, "stop": 1, "num": 1000},
                    "sigma_nl": {"start": 0, "stop": 1, "num": 1000},
                }
            },
            "axes: plans 2e+06 runs",
        ),
    ],
)
def test_huge_plans_are_refused_before_expansion(patch, key):
    spec = {**_spec(), **{k: v for k, v in patch.items() if k != "sweep"}}
    if "sweep" in patch:
        spec["sweep"] = {**spec["sweep"], **patch["sweep"]}
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=key.replace("+", r"\+").replace(".", r"\.")):
        parse_spec(spec)
    assert time.perf_counter() - t0 < 30  # refused, not expanded (generous: loaded machines)


def test_binary_spec_file_is_named(tmp_path):
    path = tmp_path / "spec.toml"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ValueError, match=r"not a TOML text file \(not valid UTF-8"):
        load_spec(path)


def test_bad_scheduler_leaves_no_file_and_a_plain_rerun_works(tmp_path):
    pytest.importorskip("distributed")
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        with pytest.raises(RuntimeError, match="sweep stopped after 0 of"):
            run_sweep(_spec(), tmp_path, scheduler="tcp://127.0.0.1:9", progress=False)
    assert not (tmp_path / "sweep.h5").exists()  # nothing blocks a plain rerun
    assert list(tmp_path.iterdir()) == []


def test_workers_exit_when_the_sweep_is_killed(tmp_path):
    """kill -9 of the process running the sweep ends its worker processes too."""
    psutil = pytest.importorskip("psutil")
    (tmp_path / "slow_task.py").write_text(
        "import time\n\ndef slow(task, limit_threads):\n    time.sleep(600)\n"
    )
    script = textwrap.dedent(
        """
        import sys
        from synapse_sim.sweep.executors import run_processes
        from slow_task import slow
        if __name__ == "__main__":
            for _ in run_processes(range(4), workers=2, fn=slow):
                pass
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, cwd=tmp_path)
    try:
        parent = psutil.Process(proc.pid)
        deadline = time.time() + 240
        workers = []
        while time.time() < deadline and len(workers) < 2:
            workers = [
                c for c in parent.children() if "resource_tracker" not in " ".join(c.cmdline())
            ]
            time.sleep(0.5)
        assert len(workers) >= 2, "workers did not start"
        time.sleep(3)  # let them import and take a task
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        gone, alive = psutil.wait_procs(workers, timeout=60)
        assert alive == [], f"workers still running after their parent died: {alive}"
    finally:
        if proc.poll() is None:
            proc.kill()
