"""Bad inputs of issue #19 get a clear error (parameter, value, what is allowed), checked before
anything is allocated or written; updates are atomic on NaN input."""

from __future__ import annotations

import struct
import warnings

import numpy as np
import pytest

import devices
from learning_rules import PulseRule
from synapse_sim.data.datasets import MAX_IDX_CLASSES, load_dataset


def _idx(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + np.ascontiguousarray(arr, dtype=">u1").tobytes()


def _folder(path, *, n_train=20, n_test=6, y_train=None, y_test=None):
    rng = np.random.default_rng(0)
    y_train = np.arange(n_train) % 3 if y_train is None else np.asarray(y_train)
    y_test = np.arange(n_test) % 3 if y_test is None else np.asarray(y_test)
    files = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 4, 4), dtype=np.uint8),
        "train-labels-idx1-ubyte": y_train,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 4, 4), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": y_test,
    }
    path.mkdir(parents=True, exist_ok=True)
    for name, arr in files.items():
        if arr.dtype.kind in "iu" and arr.ndim == 1 and arr.size and arr.max() > 255:
            data = bytes([0, 0, 0x0C, 1]) + struct.pack(">I", arr.size)
            data += np.asarray(arr, dtype=">i4").tobytes()
        else:
            data = _idx(np.asarray(arr, dtype=np.uint8))
        (path / name).write_bytes(data)
    return path


def test_idx_folder_that_is_fine_loads(tmp_path):
    ds = load_dataset(f"idx:{_folder(tmp_path)}")
    assert ds.n_classes == 3 and ds.x_train.shape == (20, 16)


def test_idx_label_too_large_is_refused_before_allocating(tmp_path):
    y = np.arange(20) % 3
    y[4] = 100000
    with pytest.raises(ValueError, match=r"train label 100000 .* 0 \.\. 999") as info:
        load_dataset(f"idx:{_folder(tmp_path, y_train=y)}")
    assert "train-labels-idx1-ubyte" in str(info.value)
    y[4] = MAX_IDX_CLASSES - 1  # the limit itself is allowed
    ds = load_dataset(f"idx:{_folder(tmp_path / 'ok', y_train=y, y_test=np.arange(6) % 3)}")
    assert ds.n_classes == MAX_IDX_CLASSES


def test_idx_test_labels_unseen_in_training_are_an_error(tmp_path):
    with pytest.raises(ValueError, match=r"test labels \[7\] never occur in the training"):
        load_dataset(f"idx:{_folder(tmp_path, y_test=[0, 1, 2, 7, 0, 1])}")


@pytest.mark.parametrize("split", ["train", "test"])
def test_idx_folder_with_zero_images_names_the_file(tmp_path, split):
    kw = {"n_train": 0} if split == "train" else {"n_test": 0}
    with pytest.raises(ValueError, match=rf"the {split} images file .* holds 0 images"):
        load_dataset(f"idx:{_folder(tmp_path, **kw)}")


def test_pulse_rule_update_is_atomic_on_nan_input():
    arr = devices.DeviceArray((3, 4), devices.get("epiram"), seed=0)
    before = arr.state_dict()
    x = np.ones((2, 4))
    x[1, 2] = np.nan
    for rule in ("bidirectional", "unidirectional", "stochastic", "adaptive", "software"):
        with pytest.raises(ValueError, match=r"x contains 1 NaN or infinite value.*unchanged"):
            PulseRule.named(rule).update(arr, x, np.ones((2, 3)), 0.1)
    with pytest.raises(ValueError, match=r"delta contains 2 NaN"):
        PulseRule.named("bidirectional").update(
            arr, np.ones((1, 4)), np.array([[np.inf, np.nan, 1.0]]), 0.1
        )
    after = arr.state_dict()
    for k in before:
        assert np.array_equal(before[k], after[k]), k


def test_train_config_device_seed_and_hidden_name_the_field():
    from synapse_sim.studies.train import TrainConfig

    with pytest.raises(ValueError, match=r"device_seed must be None or an integer >= 0, got -5"):
        TrainConfig(device_seed=-5)
    with pytest.raises(ValueError, match=r"hidden must be a list of positive layer sizes.*got 8"):
        TrainConfig(hidden=8)
    with pytest.raises(ValueError, match=r"hidden must be a list of positive integer"):
        TrainConfig(hidden=(8.5,))
    assert TrainConfig(device_seed=np.int64(3), hidden=[np.int32(4)]).hidden == (4,)
    for bad in (True, -1, 1.5):  # a bool is no seed (as for device_seed)
        with pytest.raises(ValueError, match=rf"seed must be an integer >= 0, got {bad!r}"):
            TrainConfig(seed=bad)
    assert TrainConfig(seed=np.int64(2)).seed == 2


def test_cli_device_seed_negative_is_a_one_line_error(tmp_path, capsys):
    from synapse_sim.cli.app import main

    rc = main(["train", "--dataset", "digits", "--device-seed", "-5", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert "--device-seed: device_seed must be None or an integer >= 0, got -5" in err
    assert not (tmp_path / "results.h5").exists()


def test_sweep_spec_hidden_int_names_key_value_and_form():
    from synapse_sim.sweep.spec import parse_spec

    spec = {"train": {"dataset": "digits", "hidden": 8}, "run": {"device": "epiram"}}
    with pytest.raises(ValueError, match=r"train\.hidden: hidden must be a list .* got 8"):
        parse_spec(spec, "s.toml")


def test_continual_tasks_limit_is_checked_before_building(monkeypatch):
    import sys

    from synapse_sim.studies import continual

    def no_build(*a, **k):  # pragma: no cover - the check must come first
        raise AssertionError("tasks were built")

    for module in {continual, sys.modules[continual.ContinualConfig.__module__]}:
        monkeypatch.setattr(module, "make_tasks", no_build)
    with pytest.raises(ValueError, match=r"n_tasks must be between 1 and 100 .*'permuted'.*100000"):
        continual.ContinualConfig(benchmark="permuted", n_tasks=100000)
    assert continual.ContinualConfig(benchmark="permuted", n_tasks=100).n_tasks == 100


def test_cli_continual_tasks_100000_is_a_one_line_error(tmp_path, capsys):
    from synapse_sim.cli.app import main

    rc = main(["continual", "--tasks", "100000", "--out", str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err and "--tasks" in err and "100000" in err


def test_huge_learning_rate_warns_about_saturation():
    from synapse_sim.studies.health import TrainingHealthWarning
    from synapse_sim.studies.train import TrainConfig, train

    cfg = TrainConfig(dataset="digits", hidden=(12,), epochs=2, max_train=100, lr=1e6)
    with pytest.warns(TrainingHealthWarning, match=r"epiram-bidirectional.*saturated.*lr=") as rec:
        res = train(cfg, ["epiram"], progress=False)
    assert len([w for w in rec if w.category is TrainingHealthWarning]) == 1  # once per run
    h = res.history["epiram-bidirectional"]
    assert h["saturated_high"][0] + h["saturated_low"][0] > 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainingHealthWarning)  # a sane lr: no warning
        train(TrainConfig(dataset="digits", hidden=(12,), epochs=1, max_train=100), ["epiram"])


def test_non_finite_loss_stops_the_run():
    from synapse_sim.studies.health import check_epoch

    with pytest.raises(FloatingPointError, match=r"run 'a': train_loss is nan after epoch 3"):
        check_epoch("a", 3, {"train_loss": float("nan"), "test_loss": 1.0}, (0.1,))
    assert check_epoch("a", 1, {"train_loss": 1.0, "saturated_high": 0.1}, 0.1) is False
    # saturation present from the start (one-sided programming) is not the learning rate's
    sat = {"train_loss": 1.0, "saturated_low": 0.6}
    assert check_epoch("a", 1, sat, 0.1, start=0.5) is False
    with pytest.warns(RuntimeWarning, match=r"60% of the devices .*\(30% before training\)"):
        assert check_epoch("a", 1, sat, 0.1, start=0.3) is True


def test_device_array_load_state_dict_refuses_nan():
    arr = devices.DeviceArray((3, 4), devices.get("epiram"), seed=0)
    before = arr.state_dict()
    bad = dict(before)
    bad["G"] = before["G"].copy()
    bad["G"].flat[2] = np.nan
    with pytest.raises(ValueError, match=r"state\['G'\] contains 1 NaN"):
        arr.load_state_dict(bad)
    for k, v in arr.state_dict().items():
        assert np.array_equal(v, before[k]), k


def test_converted_model_load_state_dict_refuses_nan():
    torch = pytest.importorskip("torch")
    from synapse_sim.nn import convert

    m = convert(torch.nn.Sequential(torch.nn.Linear(4, 3)), device="epiram")
    sd = m.state_dict()
    es = dict(sd["0._extra_state"])
    g = es["G"]
    es["G"] = (g.numpy() if hasattr(g, "numpy") else np.asarray(g)).astype(np.float64)
    es["G"].flat[0] = np.nan
    sd["0._extra_state"] = es
    with pytest.raises(ValueError, match="NaN"):
        m.load_state_dict(sd)
