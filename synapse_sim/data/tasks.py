"""Continual-learning tasks on data that ship (``specs/classp.md`` section 4).

*Permuted* (task 0 the identity, task k a fixed seeded pixel permutation; shared outputs),
*split* (digit pairs {0,1}, ..., {8,9}; ``task``-incremental: outputs masked to the pair,
``class``-incremental: 10 outputs, ``domain``-incremental: 2 shared outputs), *domain shift*
(scikit-learn digits, then MNIST-5k cropped to 24 x 24 and 3 x 3-average-pooled to 8 x 8) and
*pair* (one task per user dataset, e.g. ``idx:`` folders of MNIST then Fashion-MNIST).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from devices.validation import check_choice

from .datasets import load_split

__all__ = ["BENCHMARKS", "SCENARIOS", "Task", "make_tasks", "mnist_to_8x8"]

#: Continual-learning benchmarks of :func:`make_tasks`.
BENCHMARKS = ("permuted", "split", "domain-shift", "pair")
#: Scenarios of the split benchmark.
SCENARIOS = ("task", "domain", "class")
_PAIRS = ((0, 1), (2, 3), (4, 5), (6, 7), (8, 9))


def _pos_int(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


@dataclass
class Task:
    """One task: train/test arrays, its name and the output mask (None: all outputs)."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_outputs: int
    mask: np.ndarray | None = None


def mnist_to_8x8(x):
    """MNIST images ``(n, 784)`` -> ``(n, 64)``: central 24 x 24, then 3 x 3 average pooling.

    Values stay in [0, 1] (the domain-shift benchmark's MNIST task, ``specs/classp.md`` 4.3).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 784:
        raise ValueError(f"x must have shape (n, 784) (28 x 28 images), got {x.shape}")
    n = x.shape[0]
    img = x.reshape(n, 28, 28)[:, 2:26, 2:26]
    return np.ascontiguousarray(img.reshape(n, 8, 3, 8, 3).mean(axis=(2, 4)).reshape(n, 64))


def _task_name(dataset: str) -> str:
    if dataset.lower().startswith("idx:"):
        return Path(dataset[4:]).expanduser().name or dataset
    return dataset


def make_tasks(
    benchmark: str,
    n_tasks: int = 5,
    *,
    scenario: str = "class",
    dataset: str = "mnist5k",
    seed: int = 0,
    perm_seed: int = 1234,
    max_per_task: int | None = None,
    task_data: tuple = (),
    split: str = "package",
    test_fraction: float | None = None,
) -> list[Task]:
    """The tasks of a benchmark.

    Parameters
    ----------
    benchmark : {"permuted", "split", "domain-shift", "pair"}
        ``domain-shift``: task 0 scikit-learn digits (/16), task 1 MNIST-5k cropped to 24 x 24
        and 3 x 3-average-pooled to 8 x 8 (:func:`mnist_to_8x8`); 64 inputs, 10 shared outputs.
        ``pair``: one task per dataset of ``task_data`` (same number of pixels), outputs shared
        (as many as the largest number of classes).
    n_tasks : int
        Permuted: any number >= 1; split: 1 to 5; domain-shift: 1 or 2; pair: 1 to
        ``len(task_data)``.
    scenario : {"task", "domain", "class"}
        Split only.
    dataset : str
        Permuted and split: ``mnist5k`` (default) or ``digits``.
    seed : int
        Seed of the stratified train/test split.
    perm_seed : int
        Seed of the pixel permutations.
    max_per_task : int or None
        Keep only the first this many training images of each task.
    task_data : tuple of str
        Pair only: two (or more) dataset names, e.g. ``("idx:~/mnist", "idx:~/fashion")``.
    split : {"package", "sklearn"}
        Train/test split of the built-in datasets (see :func:`load_split`).
    test_fraction : float or None
        Held-out fraction of the built-in datasets.

    Returns
    -------
    list of Task
    """
    check_choice("benchmark", benchmark, BENCHMARKS)
    check_choice("scenario", scenario, SCENARIOS)
    n_tasks = _pos_int("n_tasks", n_tasks)
    if max_per_task is not None:
        max_per_task = _pos_int("max_per_task", max_per_task)
    limit = {"split": 5, "domain-shift": 2, "pair": len(task_data)}.get(benchmark)
    if benchmark == "pair" and len(task_data) < 2:
        raise ValueError(
            "task_data must name at least two datasets for benchmark 'pair' (e.g. "
            f"'idx:MNIST_DIR' 'idx:FASHION_DIR'), got {tuple(task_data)!r}"
        )
    if benchmark != "pair" and task_data:
        raise ValueError(
            f"task_data is only used by benchmark 'pair', got {tuple(task_data)!r} for "
            f"benchmark {benchmark!r}"
        )
    if limit is not None and n_tasks > limit:
        raise ValueError(
            f"n_tasks must be between 1 and {limit} for benchmark {benchmark!r}, got {n_tasks}"
        )

    def cut(x, y):
        return (x, y) if max_per_task is None else (x[:max_per_task], y[:max_per_task])

    kw = {"seed": seed, "split": split, "test_fraction": test_fraction}
    tasks = []
    if benchmark in ("domain-shift", "pair"):
        if benchmark == "domain-shift":
            dig = load_split("digits", **kw)
            mn = load_split("mnist5k", **kw)
            parts = [
                ("digits", dig.x_train, dig.y_train, dig.x_test, dig.y_test, 10),
                (
                    "mnist5k-8x8",
                    mnist_to_8x8(mn.x_train),
                    mn.y_train,
                    mnist_to_8x8(mn.x_test),
                    mn.y_test,
                    10,
                ),
            ]
        else:
            parts = []
            for name in task_data[:n_tasks]:
                is_idx = isinstance(name, str) and name.strip().lower().startswith("idx:")
                d = load_split(name, seed=seed) if is_idx else load_split(name, **kw)
                parts.append(
                    (_task_name(name), d.x_train, d.y_train, d.x_test, d.y_test, d.n_classes)
                )
            dims = {p[1].shape[1] for p in parts}
            if len(dims) != 1:
                raise ValueError(
                    "task_data datasets must have the same number of pixels, got "
                    + ", ".join(f"{p[0]}: {p[1].shape[1]}" for p in parts)
                )
        n_out = max(p[5] for p in parts)
        for name, xtr, ytr, xte, yte, _ in parts[:n_tasks]:
            xtr, ytr = cut(xtr, ytr)
            tasks.append(Task(name, xtr, ytr, xte, yte, n_out))
        return tasks
    data = load_split(dataset, **kw)
    if benchmark == "permuted":
        rng = np.random.default_rng(perm_seed)
        d = data.x_train.shape[1]
        xtr, ytr = cut(data.x_train, data.y_train)
        for k in range(n_tasks):
            perm = np.arange(d) if k == 0 else rng.permutation(d)
            tasks.append(
                Task(
                    f"perm{k}", xtr[:, perm], ytr, data.x_test[:, perm], data.y_test, data.n_classes
                )
            )
        return tasks
    for k in range(n_tasks):
        pair = _PAIRS[k]
        tr = np.isin(data.y_train, pair)
        te = np.isin(data.y_test, pair)
        xtr, ytr = cut(data.x_train[tr], data.y_train[tr])
        xte, yte = data.x_test[te], data.y_test[te]
        mask = None
        n_out = 10
        if scenario == "domain":
            ytr, yte, n_out = ytr % 2, yte % 2, 2
        elif scenario == "task":
            mask = np.zeros(10, dtype=bool)
            mask[list(pair)] = True
        tasks.append(Task(f"{pair[0]}v{pair[1]}", xtr, ytr, xte, yte, n_out, mask))
    return tasks
