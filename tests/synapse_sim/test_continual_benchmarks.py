"""Continual-learning benchmarks, metrics, trainer, store and CLI (specs/classp.md 4-5, 9)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from synapse_sim.cli.app import main
from synapse_sim.results.store import read_results
from synapse_sim.studies.continual import (
    SPLIT_DIGITS_RULES,
    ContinualConfig,
    continual_metrics,
    load_split,
    make_tasks,
    mnist_to_8x8,
    plot_accuracy_matrix,
    run_continual,
    split_digits_config,
)
from synapse_sim.studies.train import initial_weights


def test_metrics_worked_example():
    R = [[0.95, 0.10, 0.12], [0.96, 0.93, 0.15], [0.70, 0.85, 0.94]]
    m = continual_metrics(R)
    assert m["average_accuracy"] == pytest.approx((0.70 + 0.85 + 0.94) / 3, abs=1e-12)
    assert m["backward_transfer"] == pytest.approx(-0.165, abs=1e-12)
    assert m["forgetting"] == pytest.approx(0.17, abs=1e-12)
    assert m["final_task_accuracy"] == 0.94
    assert m["mean_diagonal"] == pytest.approx((0.95 + 0.93 + 0.94) / 3)
    # forgetting uses the best earlier accuracy, BWT the accuracy right after training
    R2 = [[0.5, 0.0], [0.9, 0.8]]
    assert continual_metrics(R2)["backward_transfer"] == pytest.approx(0.4)
    assert continual_metrics(R2)["forgetting"] == pytest.approx(-0.4)
    assert continual_metrics([[0.7]])["forgetting"] == 0.0
    with pytest.raises(ValueError, match="R must be a square"):
        continual_metrics([[1.0, 2.0]])


def test_tasks():
    perm = make_tasks("permuted", 3, max_per_task=50)
    assert [t.x_train.shape for t in perm] == [(50, 784)] * 3
    np.testing.assert_array_equal(perm[0].y_train, perm[1].y_train)
    # same images, permuted pixels: sorted rows agree, pixels do not
    np.testing.assert_array_equal(np.sort(perm[1].x_train, 1), np.sort(perm[0].x_train, 1))
    assert not np.array_equal(perm[1].x_train, perm[0].x_train)
    again = make_tasks("permuted", 3, max_per_task=50)
    np.testing.assert_array_equal(again[2].x_test, perm[2].x_test)
    split = make_tasks("split", 5, scenario="task")
    assert [set(np.unique(t.y_test)) for t in split] == [{0, 1}, {2, 3}, {4, 5}, {6, 7}, {8, 9}]
    assert split[2].mask.nonzero()[0].tolist() == [4, 5]
    dom = make_tasks("split", 2, scenario="domain")
    assert dom[1].n_outputs == 2 and set(np.unique(dom[1].y_train)) == {0, 1}
    with pytest.raises(ValueError, match="n_tasks must be between 1 and 5"):
        make_tasks("split", 6)
    with pytest.raises(ValueError, match="benchmark.*'permuted'"):
        make_tasks("permute", 2)


def test_plot_accuracy_matrix():
    import matplotlib

    matplotlib.use("Agg")
    ax = plot_accuracy_matrix(np.array([[0.9, 0.1], [0.8, 0.95]]), task_names=["a", "b"])
    assert len(ax.texts) == 4
    import matplotlib.pyplot as plt

    plt.close(ax.figure)


def _run(opt, **kw):
    cfg = ContinualConfig(
        benchmark="permuted",
        n_tasks=3,
        max_per_task=1000,
        hidden=(100,),
        epochs_per_task=2,
        optimizer=opt,
        **kw,
    )
    return run_continual(cfg, progress=False)


def test_classp_forgets_less_than_sgd_on_permuted_mnist5k():
    """3 permuted tasks, 1,000 images each, 784-100-10, 2 epochs per task, batch 16.

    Measured (seed 0): SGD lr 0.1 F 0.085, final task 0.837, ACC 0.793; CLASSP (alpha 0.1,
    unscaled in task 1, theta 1e-5, p 1, eps 1e-5) F 0.016, final 0.833, ACC 0.839.
    """
    sgd = _run("sgd")
    cl = _run("classp")
    fs, fc = sgd.metrics["forgetting"], cl.metrics["forgetting"]
    print(f"SGD {sgd.metrics}\nCLASSP {cl.metrics}")
    assert fc <= 0.5 * fs
    assert fs > 0.03  # SGD does forget here (the test can fail)
    assert cl.metrics["final_task_accuracy"] >= sgd.metrics["final_task_accuracy"] - 0.05
    assert cl.metrics["average_accuracy"] > sgd.metrics["average_accuracy"]
    # the threshold suppresses most element updates
    assert min(cl.history["suppressed"]) > 0.5
    assert sgd.final["memory_bytes"] == 0
    assert cl.final["memory_bytes"] == 8 * (784 * 100 + 100 * 10)


def test_results_file_and_device_run(tmp_path):
    cfg = ContinualConfig(
        benchmark="permuted",
        n_tasks=2,
        max_per_task=200,
        hidden=(20,),
        epochs_per_task=1,
        optimizer="classp",
        device="ideal",
        lr_after=0.3,
    )
    res = run_continual(cfg, out=tmp_path, progress=False)
    r = read_results(tmp_path / "results.h5")
    assert r["kind"] == "continual" and r["complete"]
    run = r["runs"]["classp-ideal"]
    assert run["complete"] and run["metrics"]["test_accuracy"].size == 2
    fin = run["final"]
    np.testing.assert_array_equal(fin["accuracy_matrix"], res.accuracy_matrix)
    assert fin["accuracy_matrix"].shape == (2, 2)
    assert fin["optimizer"] == "classp"
    assert fin["total_pulses"] > 0
    assert fin["total_pulses_ltp"] + fin["total_pulses_ltd"] == fin["total_pulses"]
    for key in ("average_accuracy", "forgetting", "backward_transfer", "memory_bytes"):
        assert key in fin
    assert (tmp_path / "accuracy_matrix_classp-ideal.png").stat().st_size > 0


def test_ewc_run_consolidates(recwarn):
    cfg = ContinualConfig(
        n_tasks=2, max_per_task=200, hidden=(20,), epochs_per_task=1, optimizer="ewc", lam=10.0
    )
    res = run_continual(cfg, progress=False)
    # two stored tasks: anchor + Fisher per weight per task
    assert res.final["memory_bytes"] == 2 * 2 * 8 * (784 * 20 + 20 * 10)


def test_cli_end_to_end_and_show(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(
        [
            "continual",
            "--benchmark",
            "split",
            "--scenario",
            "task",
            "--tasks",
            "2",
            "--optimizer",
            "sgd",
            "--epochs-per-task",
            "1",
            "--max-per-task",
            "200",
            "--hidden",
            "20",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert rc == 0
    assert "average accuracy" in capsys.readouterr().out
    assert main(["show", str(out), "--json"]) == 0
    recs = json.loads(capsys.readouterr().out)
    assert len(recs) == 1
    rec = recs[0]
    assert rec["optimizer"] == "sgd" and rec["complete"] is True
    R = np.array(rec["accuracy_matrix"])
    assert R.shape == (2, 2)
    assert rec["average_accuracy"] == pytest.approx(R[-1].mean())
    assert rec["forgetting"] == pytest.approx(R[0, 0] - R[1, 0])
    assert R[1, 1] > 0.9  # task-incremental pairs are easy


@pytest.mark.parametrize(
    "args, word",
    [
        (["--tasks", "0"], "--tasks"),
        (["--optimizer", "clasp"], "--optimizer"),
        (["--benchmark", "rotated"], "--benchmark"),
        (["--threshold", "-1"], "--threshold"),
        (["--device", "epirm"], "--device"),
        (["--epochs-per-task", "0"], "--epochs-per-task"),
        (["--tasks", "7", "--benchmark", "split"], "--tasks"),
        (["--lam", "-3", "--optimizer", "ewc"], "--lam"),
    ],
)
def test_cli_bad_arguments_one_line(tmp_path, capsys, args, word):
    rc = main(["continual", *args, "--out", str(tmp_path / "x"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("synapse-sim: error:") and word in err
    assert not (tmp_path / "x").exists()


# ---------------------------------------------------------------------------- new benchmarks
def test_mnist_to_8x8_by_hand():
    img = np.zeros((28, 28))
    img[2:5, 2:5] = 0.9  # first pooled cell, full
    img[25, 25] = 0.9  # last cell of the central 24 x 24: one of nine pixels
    img[0, 0] = img[27, 27] = 1.0  # outside the crop
    out = mnist_to_8x8(img.reshape(1, 784))
    assert out.shape == (1, 64)
    assert out[0, 0] == pytest.approx(0.9)
    assert out[0, 63] == pytest.approx(0.1)
    assert out.sum() == pytest.approx(1.0)
    x = np.random.default_rng(0).random((5, 784))
    y = mnist_to_8x8(x)
    assert y.min() >= 0 and y.max() <= 1
    np.testing.assert_allclose(y.mean(axis=1), x.reshape(5, 28, 28)[:, 2:26, 2:26].mean((1, 2)))
    with pytest.raises(ValueError, match="x must have shape"):
        mnist_to_8x8(np.zeros((2, 64)))


def test_load_split_sklearn_and_package():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_split("digits", seed=0, split="sklearn", test_fraction=0.3)
    b = load_digits()
    xtr, xte, ytr, yte = train_test_split(
        b.data / 16.0, b.target, test_size=0.3, stratify=b.target, random_state=0
    )
    np.testing.assert_array_equal(d.x_train, xtr)
    np.testing.assert_array_equal(d.y_test, yte)
    assert d.x_train.shape == (1257, 64) and d.n_classes == 10
    m = load_split("mnist5k", seed=3, split="sklearn")
    assert m.x_test.shape == (1000, 784)
    assert np.bincount(m.y_test).tolist() == [100] * 10  # stratified
    p = load_split("mnist5k", seed=3)
    assert p.x_test.shape == (1000, 784) and not np.array_equal(p.x_test, m.x_test)
    with pytest.raises(ValueError, match="split.*'package'"):
        load_split("digits", split="scikit")
    with pytest.raises(ValueError, match="split='sklearn' needs dataset"):
        load_split("idx:/nowhere", split="sklearn")
    with pytest.raises(ValueError, match="test_fraction must be in"):
        load_split("digits", test_fraction=1.0)


def test_domain_shift_tasks():
    tasks = make_tasks("domain-shift", 2, seed=1)
    assert [t.name for t in tasks] == ["digits", "mnist5k-8x8"]
    assert all(t.x_train.shape[1] == 64 and t.n_outputs == 10 and t.mask is None for t in tasks)
    assert tasks[0].x_train.shape[0] == 1347  # 75 % of 1,797
    mn = load_split("mnist5k", seed=1)
    np.testing.assert_array_equal(tasks[1].x_test, mnist_to_8x8(mn.x_test))
    np.testing.assert_array_equal(tasks[1].y_train, mn.y_train)
    for t in tasks:
        assert t.x_train.min() >= 0 and t.x_train.max() <= 1
        assert set(np.unique(t.y_test)) == set(range(10))
    assert len(make_tasks("domain-shift", 1)) == 1
    with pytest.raises(ValueError, match="between 1 and 2 for benchmark 'domain-shift'"):
        make_tasks("domain-shift", 3)


def test_domain_shift_run_learns_both_domains():
    cfg = ContinualConfig(
        benchmark="domain-shift", n_tasks=2, epochs_per_task=3, optimizer="sgd", biases=True
    )
    res = run_continual(cfg, progress=False)
    R = res.accuracy_matrix
    print(R)
    assert R[0, 0] > 0.85  # digits
    assert R[1, 1] > 0.7  # MNIST-5k at 8 x 8 is harder
    assert R[0, 1] < R[1, 1]  # before training on MNIST-8x8 it is worse on it
    # biases: 100 + 10 more parameters, no optimizer state for SGD
    assert res.final["memory_bytes"] == 0
    cl = run_continual(
        ContinualConfig(benchmark="domain-shift", n_tasks=2, optimizer="classp", biases=True),
        progress=False,
    )
    assert cl.final["memory_bytes"] == 8 * (64 * 100 + 100 * 10 + 100 + 10)


def _write_idx(path, arr, code):
    arr = np.asarray(arr)
    head = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    path.write_bytes(head + arr.astype(">u1").tobytes())


def _idx_folder(root, name, n_classes, axis, seed):
    """Synthetic 6 x 6 IDX data set: class c lights row (axis 0) or column (axis 1) c."""
    rng = np.random.default_rng(seed)
    folder = root / name
    folder.mkdir()
    for part, n in (("train", 120), ("t10k", 60)):
        y = np.arange(n) % n_classes
        x = rng.integers(0, 60, size=(n, 6, 6))
        for i, c in enumerate(y):
            if axis == 0:
                x[i, c, :] = 250
            else:
                x[i, :, c] = 250
        _write_idx(folder / f"{part}-images-idx3-ubyte", x, 0x08)
        _write_idx(folder / f"{part}-labels-idx1-ubyte", y, 0x08)
    return f"idx:{folder}"


def test_pair_benchmark_on_idx_files(tmp_path):
    a = _idx_folder(tmp_path, "mnistlike", 4, 0, 0)
    b = _idx_folder(tmp_path, "fashionlike", 3, 1, 1)
    tasks = make_tasks("pair", 2, task_data=(a, b))
    assert [t.name for t in tasks] == ["mnistlike", "fashionlike"]
    assert [t.x_train.shape for t in tasks] == [(120, 36), (120, 36)]
    assert [t.x_test.shape[0] for t in tasks] == [60, 60]  # evaluated on the test files
    assert all(t.n_outputs == 4 for t in tasks)  # shared outputs: the larger class count
    # the paper's shape: task 1 for E1 epochs unscaled, then task 2 for E2 epochs scaled
    cfg = ContinualConfig(
        benchmark="pair",
        n_tasks=2,
        task_data=(a, b),
        hidden=(16,),
        epochs_first_task=4,
        epochs_per_task=1,
        batch_size=8,
        optimizer="classp",
        lr_after=0.05,
    )
    assert [cfg.epochs_for(k) for k in range(2)] == [4, 1]
    assert not cfg.optimizer_for(0).scaling and cfg.optimizer_for(1).scaling
    res = run_continual(cfg, progress=False, out=tmp_path / "run")
    assert res.history["steps"] == [4 * 15, 15]
    assert res.accuracy_matrix.shape == (2, 2)
    assert res.accuracy_matrix[0, 0] > 0.9 and res.accuracy_matrix[1, 1] > 0.6
    r = read_results(tmp_path / "run" / "results.h5")
    assert r["config"]["continual"]["task_data"] == [a, b]
    with pytest.raises(ValueError, match="task_data must name at least two datasets"):
        ContinualConfig(benchmark="pair", task_data=(a,))
    with pytest.raises(ValueError, match="task_data is only used by benchmark 'pair'"):
        ContinualConfig(benchmark="permuted", task_data=(a, b))
    c = tmp_path / "other"
    c.mkdir()
    _write_idx(c / "train-images-idx3-ubyte", np.zeros((4, 5, 5)), 0x08)
    _write_idx(c / "train-labels-idx1-ubyte", np.zeros(4), 0x08)
    _write_idx(c / "t10k-images-idx3-ubyte", np.zeros((2, 5, 5)), 0x08)
    _write_idx(c / "t10k-labels-idx1-ubyte", np.zeros(2), 0x08)
    with pytest.raises(ValueError, match="same number of pixels"):
        make_tasks("pair", 2, task_data=(a, f"idx:{c}"))


def test_cli_pair_and_errors(tmp_path, capsys):
    a = _idx_folder(tmp_path, "A", 4, 0, 0)
    b = _idx_folder(tmp_path, "B", 4, 1, 1)
    out = tmp_path / "run"
    args = ["continual", "--benchmark", "pair", "--task-data", a, b, "--optimizer", "si"]
    args += ["--epochs-first-task", "3", "--epochs-per-task", "1", "--hidden", "8", "--quiet"]
    assert main([*args, "--out", str(out)]) == 0
    assert main(["show", str(out), "--json"]) == 0
    rec = json.loads(capsys.readouterr().out.split("\n", 2)[-1])[0]
    assert rec["optimizer"] == "si" and np.array(rec["accuracy_matrix"]).shape == (2, 2)
    for bad, word in (
        (["--benchmark", "pair"], "--task-data"),
        (["--benchmark", "pair", "--task-data", a, str(tmp_path / "nothing")], "--task-data"),
        (["--benchmark", "domain-shift", "--tasks", "3"], "--tasks"),
        (["--pulse-step", "0.01", "--device", "ideal"], "--pulse-step"),
        (["--optimizer", "si", "--si-c", "-1"], "--si-c"),
        (["--split", "scikit"], "--split"),
    ):
        rc = main(["continual", *bad, "--out", str(tmp_path / "x"), "--quiet"])
        err = capsys.readouterr().err
        assert rc == 2 and len(err.strip().splitlines()) == 1 and word in err, (bad, err)
        assert not (tmp_path / "x").exists()


def test_pulsed_float_weights_biases_and_si_run():
    cfg = ContinualConfig(
        benchmark="split",
        scenario="domain",
        n_tasks=2,
        dataset="digits",
        hidden=(20,),
        biases=True,
        epochs_per_task=1,
        pulse_step=0.01,
        w_max=None,
        optimizer="si",
    )
    res = run_continual(cfg, progress=False)
    n_w = 64 * 20 + 20 * 2
    n_b = 20 + 2
    # SI: five floats per parameter plus a one-byte flag per array
    assert res.final["memory_bytes"] == 5 * 8 * (n_w + n_b) + 4
    assert res.final["total_pulses"] > 0 and 0 < res.final["written_fraction"] <= 1
    W0 = initial_weights([64, 20, 2], "uniform", np.random.default_rng([0, 1]), np.inf)
    for layer, Wi in zip(res.layers, W0, strict=True):
        n = (layer.weights() - Wi) / 0.01
        np.testing.assert_allclose(n, np.round(n), atol=1e-6)
    # lr_after applies to every optimizer; same seed, same run
    a = ContinualConfig(optimizer="sgd", lr=0.1, lr_after=0.01)
    assert a.optimizer_for(0).lr == 0.1 and a.optimizer_for(2).lr == 0.01
    again = run_continual(cfg, progress=False)
    np.testing.assert_array_equal(again.accuracy_matrix, res.accuracy_matrix)
    with pytest.raises(ValueError, match="pulse_step is for device 'software'"):
        ContinualConfig(pulse_step=0.01, device="ideal")
    with pytest.raises(ValueError, match="epochs_first_task"):
        ContinualConfig(epochs_first_task=0)


def test_cli_spec_93_setting_matches_the_api(tmp_path, capsys):
    """The CLI options reach every field of the 9.3 setting: same accuracy matrix as the API."""
    args = "--benchmark split --scenario domain --tasks 2 --dataset digits --split sklearn "
    args += "--split-seed 0 --test-fraction 0.3 --biases --epochs-per-task 5 --pulse-step 0.005 "
    args += "--no-clip --optimizer classp --lr 0.1 --lr-after 0.03 --seed 1 --quiet"
    assert main(["continual", *args.split(), "--out", str(tmp_path / "c")]) == 0
    capsys.readouterr()
    assert main(["show", str(tmp_path / "c"), "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)[0]
    cfg = ContinualConfig(
        benchmark="split",
        scenario="domain",
        n_tasks=2,
        dataset="digits",
        split="sklearn",
        split_seed=0,
        test_fraction=0.3,
        biases=True,
        epochs_per_task=5,
        pulse_step=0.005,
        w_max=None,
        optimizer="classp",
        lr=0.1,
        lr_after=0.03,
        seed=1,
    )
    res = run_continual(cfg, progress=False)
    np.testing.assert_array_equal(np.array(rec["accuracy_matrix"]), res.accuracy_matrix)
    assert rec["pulses"] == res.final["total_pulses"] > 0


def test_result_exposes_the_trained_net_and_classp_state():
    """``ContinualResult.net`` is the trained network (it reproduces the last row of R) and
    ``opt_states`` holds CLASSP's accumulators: weight matrices then biases, A >= 0, and the
    output units of classes never seen (class-incremental, 2 of 5 tasks) gather A only from
    the gradients that pushed them down, far less than the trained units'."""
    cfg = split_digits_config(scenario="class", n_tasks=2, **SPLIT_DIGITS_RULES["classp"])
    res = run_continual(cfg, progress=False)
    tasks = cfg.load_tasks()
    for j, t in enumerate(tasks):
        pred, _ = res.net.predict(t.x_test, 1000, t.mask)
        assert np.mean(pred == t.y_test) == res.accuracy_matrix[-1, j]
    shapes = [layer.weights().shape for layer in res.layers] + [b.shape for b in res.net.biases]
    assert [s["acc"].shape for s in res.opt_states] == shapes
    assert all((s["acc"] >= 0).all() for s in res.opt_states)
    A_out = res.opt_states[1]["acc"].mean(axis=1)
    assert A_out[4:].max() < 0.5 * A_out[:4].min(), A_out
