"""Tests for synapse_sim.data.datasets: built-in datasets, IDX folders, NeuroSim format, batches."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from synapse_sim.data.datasets import (
    Dataset,
    batches,
    dataset_names,
    load_dataset,
    read_idx,
    stratified_split,
)

# ----------------------------------------------------------------------------- helpers


def _idx_bytes(arr: np.ndarray, type_code: int = 0x08) -> bytes:
    dtype = {0x08: ">u1", 0x0B: ">i2", 0x0D: ">f4"}[type_code]
    header = bytes([0, 0, type_code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + np.ascontiguousarray(arr, dtype=dtype).tobytes()


def _write_idx_folder(folder: Path, *, gz: bool, shape=(28, 28), n_train=30, n_test=12, seed=1):
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, *shape), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, *shape), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    # every class occurs in training (n_classes == 10; test labels unseen there are refused)
    arrays["train-labels-idx1-ubyte"][:10] = np.arange(10)
    folder.mkdir(parents=True, exist_ok=True)
    for name, arr in arrays.items():
        data = _idx_bytes(arr)
        if gz:
            (folder / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return arrays


# ----------------------------------------------------------------------------- built-ins


def test_dataset_names():
    assert dataset_names() == ["mnist5k", "digits"]


def test_mnist5k_sizes_types_and_range():
    ds = load_dataset("mnist5k")
    assert isinstance(ds, Dataset)
    assert ds.x_train.shape == (4000, 784) and ds.x_test.shape == (1000, 784)
    assert ds.y_train.shape == (4000,) and ds.y_test.shape == (1000,)
    assert ds.x_train.dtype == np.float64 and ds.y_train.dtype == np.int64
    assert ds.image_shape == (28, 28) and ds.n_classes == 10
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() == 1.0
    # pixels were 0..255 integers: every value is k/255
    assert np.allclose(ds.x_test * 255, np.round(ds.x_test * 255))
    assert ds.info["split"] == "stratified" and ds.info["seed"] == 0


def test_mnist5k_stratified_exactly():
    ds = load_dataset("mnist5k", seed=3)
    # 500 per class: 100 test and 400 train per class
    assert np.array_equal(np.bincount(ds.y_test, minlength=10), np.full(10, 100))
    assert np.array_equal(np.bincount(ds.y_train, minlength=10), np.full(10, 400))


def test_digits_stratified_within_one_sample():
    ds = load_dataset("digits", seed=5)
    y_all = np.concatenate([ds.y_train, ds.y_test])
    counts = np.bincount(y_all, minlength=10)
    test_counts = np.bincount(ds.y_test, minlength=10)
    assert y_all.size == 1797 and ds.x_train.shape[1] == 64 and ds.image_shape == (8, 8)
    assert np.all(np.abs(test_counts - 0.25 * counts) <= 1.0)
    # classes are interleaved, not in blocks
    assert len(np.unique(ds.y_test[:30])) > 3
    assert ds.x_train.max() == 1.0 and ds.x_train.min() == 0.0


def test_test_fraction_option():
    ds = load_dataset("digits", test_fraction=0.5)
    counts = np.bincount(np.concatenate([ds.y_train, ds.y_test]))
    assert np.all(np.abs(np.bincount(ds.y_test) - 0.5 * counts) <= 1.0)
    with pytest.raises(ValueError, match="test_fraction"):
        load_dataset("digits", test_fraction=1.0)


def test_split_deterministic_and_seed_dependent():
    a = load_dataset("mnist5k", seed=7)
    b = load_dataset("mnist5k", seed=7)
    c = load_dataset("mnist5k", seed=8)
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.x_test, c.x_test)
    # different seeds put different digits in the test set, not only in another order
    rows_a = {r.tobytes() for r in a.x_test}
    rows_c = {r.tobytes() for r in c.x_test}
    assert rows_a != rows_c


def test_stratified_split_is_a_partition():
    y = np.repeat(np.arange(4), [10, 7, 3, 2])
    train, test = stratified_split(y, 0.3, np.random.default_rng(0))
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(y.size))
    # every class with >= 2 samples is on both sides
    assert set(y[train]) == set(y[test]) == {0, 1, 2, 3}
    assert np.all(np.abs(np.bincount(y[test]) - 0.3 * np.bincount(y)) <= 1.0)


def test_split_is_the_whole_dataset_once():
    from sklearn.datasets import load_digits

    ds = load_dataset("digits", seed=2)
    raw = load_digits()
    full = np.column_stack([raw.data / 16.0, raw.target])
    split = np.vstack(
        [
            np.column_stack([ds.x_train, ds.y_train]),
            np.column_stack([ds.x_test, ds.y_test]),
        ]
    )
    # the same multiset of (image, label) rows: nothing lost, nothing duplicated
    assert np.array_equal(np.unique(full, axis=0), np.unique(split, axis=0))
    assert split.shape == full.shape
    assert np.array_equal(full[np.lexsort(full.T[::-1])], split[np.lexsort(split.T[::-1])])


# ----------------------------------------------------------------------------- NeuroSim format


def test_crop_takes_the_center():
    full = load_dataset("mnist5k", seed=1)
    cropped = load_dataset("mnist5k", seed=1, crop=20)
    assert cropped.image_shape == (20, 20) and cropped.x_train.shape == (4000, 400)
    expected = full.x_train.reshape(-1, 28, 28)[:, 4:24, 4:24].reshape(-1, 400)
    assert np.array_equal(cropped.x_train, expected)
    assert np.array_equal(cropped.y_train, full.y_train)


def test_binarize_threshold():
    full = load_dataset("digits")
    binary = load_dataset("digits", binarize=0.5)
    assert set(np.unique(binary.x_train)) == {0.0, 1.0}
    assert np.array_equal(binary.x_train, (full.x_train >= 0.5).astype(np.float64))
    # 8/16 == 0.5 exactly is on the "1" side
    assert np.all(binary.x_train[full.x_train == 0.5] == 1.0)


def test_neurosim_shorthand():
    ns = load_dataset("mnist5k", neurosim=True)
    explicit = load_dataset("mnist5k", crop=20, binarize=0.5)
    assert ns.image_shape == (20, 20)
    assert np.array_equal(ns.x_train, explicit.x_train)
    assert set(np.unique(ns.x_test)) == {0.0, 1.0}
    assert ns.info["neurosim"] is True and ns.info["crop"] == 20


def test_neurosim_on_digits_is_an_error_naming_the_dataset():
    with pytest.raises(ValueError, match="digits"):
        load_dataset("digits", neurosim=True)


def test_neurosim_conflicting_crop():
    with pytest.raises(ValueError, match="crop=20"):
        load_dataset("mnist5k", neurosim=True, crop=16)


def test_crop_too_large():
    with pytest.raises(ValueError, match=r"crop=20.*8x8"):
        load_dataset("digits", crop=20)


@pytest.mark.parametrize(
    "kwargs, exc",
    [
        ({"binarize": 1.5}, ValueError),
        ({"crop": 0}, ValueError),
        ({"seed": -1}, ValueError),
        ({"seed": 1.5}, TypeError),
    ],
)
def test_bad_options(kwargs, exc):
    with pytest.raises(exc, match=next(iter(kwargs))):
        load_dataset("digits", **kwargs)


# ----------------------------------------------------------------------------- names


def test_unknown_name_lists_valid_and_suggests():
    with pytest.raises(ValueError) as info:
        load_dataset("mnist")
    msg = str(info.value)
    assert "'mnist'" in msg and "mnist5k" in msg and "digits" in msg and "idx:PATH" in msg
    assert "did you mean 'mnist5k'" in msg


def test_unknown_name_without_close_match():
    with pytest.raises(ValueError) as info:
        load_dataset("cifar10")
    assert "did you mean" not in str(info.value) and "mnist5k" in str(info.value)


# ----------------------------------------------------------------------------- IDX


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path, gz):
    arrays = _write_idx_folder(tmp_path / "mnist", gz=gz)
    ds = load_dataset(f"idx:{tmp_path / 'mnist'}")
    assert ds.image_shape == (28, 28) and ds.n_classes == 10
    assert ds.x_train.shape == (30, 784) and ds.x_test.shape == (12, 784)
    assert np.array_equal(ds.x_train * 255, arrays["train-images-idx3-ubyte"].reshape(30, -1))
    assert np.array_equal(ds.x_test * 255, arrays["t10k-images-idx3-ubyte"].reshape(12, -1))
    assert np.array_equal(ds.y_train, arrays["train-labels-idx1-ubyte"])
    assert np.array_equal(ds.y_test, arrays["t10k-labels-idx1-ubyte"])
    assert ds.y_train.dtype == np.int64 and ds.info["split"] == "files"
    # the NeuroSim format works on 28x28 IDX data
    ns = load_dataset(f"idx:{tmp_path / 'mnist'}", neurosim=True)
    assert ns.x_train.shape == (30, 400) and set(np.unique(ns.x_train)) <= {0.0, 1.0}


def test_read_idx_other_dtypes(tmp_path):
    arr = np.arange(-6, 6, dtype=np.int16).reshape(3, 4)
    (tmp_path / "a.idx").write_bytes(_idx_bytes(arr, 0x0B))
    out = read_idx(tmp_path / "a.idx")
    assert out.dtype == np.int16 and np.array_equal(out, arr)
    farr = np.linspace(0, 1, 6, dtype=np.float32).reshape(2, 3)
    (tmp_path / "f.idx").write_bytes(_idx_bytes(farr, 0x0D))
    assert np.array_equal(read_idx(tmp_path / "f.idx"), farr)


def test_idx_missing_file_names_it(tmp_path):
    folder = tmp_path / "mnist"
    _write_idx_folder(folder, gz=False)
    (folder / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError) as info:
        load_dataset(f"idx:{folder}")
    assert "t10k-labels-idx1-ubyte" in str(info.value) and str(folder) in str(info.value)


def test_idx_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_dataset(f"idx:{tmp_path / 'nowhere'}")


def test_idx_bad_magic_names_the_file(tmp_path):
    folder = tmp_path / "mnist"
    _write_idx_folder(folder, gz=False)
    path = folder / "train-images-idx3-ubyte"
    data = bytearray(path.read_bytes())
    data[0:2] = b"\x08\x03"
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.*magic"):
        load_dataset(f"idx:{folder}")


def test_idx_truncated_data(tmp_path):
    folder = tmp_path / "mnist"
    _write_idx_folder(folder, gz=False)
    path = folder / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte.*data bytes"):
        load_dataset(f"idx:{folder}")


def test_idx_count_mismatch(tmp_path):
    folder = tmp_path / "mnist"
    _write_idx_folder(folder, gz=True)
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(_idx_bytes(np.zeros(29, np.uint8)))
    )
    with pytest.raises(ValueError, match="differ in count"):
        load_dataset(f"idx:{folder}")


def test_idx_rejects_test_fraction_and_corrupt_gzip(tmp_path):
    folder = tmp_path / "mnist"
    _write_idx_folder(folder, gz=True)
    with pytest.raises(ValueError, match="test_fraction"):
        load_dataset(f"idx:{folder}", test_fraction=0.2)
    (folder / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz"):
        load_dataset(f"idx:{folder}")


# ----------------------------------------------------------------------------- batches


def test_batches_cover_an_epoch_once():
    rng = np.random.default_rng(0)
    parts = list(batches(103, 10, rng))
    assert [p.size for p in parts] == [10] * 10 + [3]
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(103))
    assert len(list(batches(103, 10, np.random.default_rng(0), drop_last=True))) == 10


def test_batches_same_order_for_same_generator_state():
    first = np.concatenate(list(batches(50, 8, np.random.default_rng(11))))
    second = np.concatenate(list(batches(50, 8, np.random.default_rng(11))))
    assert np.array_equal(first, second)
    # exactly one permutation per epoch is drawn from the generator
    assert np.array_equal(first, np.random.default_rng(11).permutation(50))
    rng = np.random.default_rng(11)
    epoch1 = np.concatenate(list(batches(50, 8, rng)))
    epoch2 = np.concatenate(list(batches(50, 8, rng)))
    assert not np.array_equal(epoch1, epoch2)


def test_batches_validation():
    with pytest.raises(ValueError, match="batch_size"):
        list(batches(10, 0, np.random.default_rng()))
    with pytest.raises(TypeError, match="rng"):
        list(batches(10, 2, 0))
