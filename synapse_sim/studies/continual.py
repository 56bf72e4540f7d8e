"""Continual-learning benchmarks and trainer (``specs/classp.md`` sections 4-5).

Benchmarks on data that ships: *permuted MNIST-5k* (task 0 the identity, task k a fixed seeded
pixel permutation; 10 shared outputs), *split MNIST-5k* (digit pairs {0,1}, ..., {8,9};
``task``-incremental: logits masked to the pair in training and test, ``class``-incremental:
10 outputs, no mask, ``domain``-incremental: 2 shared outputs) and *domain shift* (scikit-learn
digits, then MNIST-5k center-cropped to 24 x 24 and 3 x 3-average-pooled to 8 x 8; 10 shared
outputs). On user data, *pair*: one task per dataset (e.g. ``idx:`` folders of MNIST then
Fashion-MNIST, the paper's pair), evaluated on the datasets' test files. An MLP (ReLU, softmax
cross-entropy, optional float biases) is trained through the tasks in sequence with one optimizer
of :mod:`learning_rules.continual`; after every task every task is evaluated, giving the accuracy
matrix ``R[i, j]`` (test accuracy on task ``j`` after task ``i``).
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from learning_rules import FloatWeights
from learning_rules.continual import (
    CLASSP,
    EWC,
    OPTIMIZERS,
    SI,
    DeviceCLASSP,
    fisher_diagonal,
    make_optimizer,
    memory_bytes,
)
from learning_rules.pulse_bp import pulse_counts

from ..data.datasets import _digits_raw, _mnist5k_raw, batches, load_dataset
from .train import MLP, RunSpec, TrainConfig, build_layers, initial_weights

__all__ = [
    "BENCHMARKS",
    "SCENARIOS",
    "Task",
    "ContinualConfig",
    "split_digits_config",
    "ContinualResult",
    "make_tasks",
    "load_split",
    "mnist_to_8x8",
    "continual_metrics",
    "run_continual",
    "plot_accuracy_matrix",
]

BENCHMARKS = ("permuted", "split", "domain-shift", "pair")
SCENARIOS = ("task", "domain", "class")
SPLITS = ("package", "sklearn")
_DEFAULT_TEST_FRACTION = {"mnist5k": 0.2, "digits": 0.25}
_PAIRS = ((0, 1), (2, 3), (4, 5), (6, 7), (8, 9))


def _choice(name, value, choices):
    if value not in choices:
        import difflib

        close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=2)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(
            f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}{hint}"
        )


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


def _real_in(name, value, lo, hi):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number in ({lo}, {hi}), got {value!r}")
    if not lo < float(value) < hi:
        raise ValueError(f"{name} must be in ({lo}, {hi}), got {value!r}")
    return float(value)


@dataclass
class _Split:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    name: str


def load_split(
    dataset: str, *, seed: int = 0, split: str = "package", test_fraction: float | None = None
):
    """A dataset's train/test arrays under one of two stratified splits.

    Parameters
    ----------
    dataset : str
        ``mnist5k``, ``digits`` or ``idx:PATH`` (``split="package"`` only; the files give the
        split).
    seed : int
        Seed of the split.
    split : {"package", "sklearn"}
        ``package``: :func:`synapse_sim.data.datasets.load_dataset`'s seeded stratified split;
        ``sklearn``: ``sklearn.model_selection.train_test_split(test_size=test_fraction,
        stratify=y, random_state=seed)`` on the images in their stored order (the setting of
        ``specs/classp.md`` 9.3).
    test_fraction : float or None
        Held-out fraction in (0, 1) (default 0.2 for mnist5k, 0.25 for digits).

    Returns
    -------
    object with ``x_train``, ``y_train``, ``x_test``, ``y_test``, ``n_classes``, ``name``
    """
    _choice("split", split, SPLITS)
    seed = _pos_int("seed", seed, 0)
    if test_fraction is not None:
        test_fraction = _real_in("test_fraction", test_fraction, 0.0, 1.0)
    if split == "package":
        d = load_dataset(dataset, seed=seed, test_fraction=test_fraction)
        return _Split(d.x_train, d.y_train, d.x_test, d.y_test, d.n_classes, d.name)
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
    return _Split(c(xtr), c(ytr), c(xte), c(yte), 10, key)


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
    _choice("benchmark", benchmark, BENCHMARKS)
    _choice("scenario", scenario, SCENARIOS)
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


def continual_metrics(R) -> dict:
    """Metrics of an accumulated accuracy matrix ``R`` (T x T, row i = after task i).

    Returns
    -------
    dict
        ``average_accuracy`` (mean of the last row), ``backward_transfer``
        (mean_{j<T-1} R[T-1, j] - R[j, j]), ``forgetting``
        (mean_{j<T-1} max_{l in j..T-2} R[l, j] - R[T-1, j]), ``final_task_accuracy`` and
        ``mean_diagonal``. BWT and forgetting are 0 for a single task.
    """
    R = np.asarray(R, dtype=np.float64)
    if R.ndim != 2 or R.shape[0] != R.shape[1] or R.shape[0] < 1:
        raise ValueError(f"R must be a square T x T matrix with T >= 1, got shape {R.shape}")
    T = R.shape[0]
    last = R[T - 1]
    if T > 1:
        bwt = float(np.mean([last[j] - R[j, j] for j in range(T - 1)]))
        forg = float(np.mean([R[j : T - 1, j].max() - last[j] for j in range(T - 1)]))
    else:
        bwt = forg = 0.0
    return {
        "average_accuracy": float(last.mean()),
        "backward_transfer": bwt,
        "forgetting": forg,
        "final_task_accuracy": float(R[T - 1, T - 1]),
        "mean_diagonal": float(np.mean(np.diag(R))),
    }


@dataclass(frozen=True, kw_only=True)
class ContinualConfig:
    """A continual-learning run.

    Parameters
    ----------
    benchmark : {"permuted", "split", "domain-shift", "pair"}
    n_tasks : int
    scenario : {"task", "domain", "class"}
        Split only.
    dataset : str
        ``mnist5k`` or ``digits`` (permuted and split).
    task_data : tuple of str
        Pair only: the datasets, one task each (e.g. ``idx:`` folders of MNIST then
        Fashion-MNIST).
    split : {"package", "sklearn"}
        Train/test split of the built-in datasets (:func:`load_split`).
    split_seed : int or None
        Seed of the train/test split (default: ``seed``).
    test_fraction : float or None
        Held-out fraction of the built-in datasets (default 0.2 mnist5k, 0.25 digits).
    max_per_task : int or None
        Training images per task (first ones).
    hidden : tuple of int
    activation : {"relu", "sigmoid"}
    biases : bool
        Float biases (zero-initialized) in every layer, trained by the same optimizer (CLASSP:
        threshold and gradient accumulator included); never pulsed.
    epochs_per_task : int
    epochs_first_task : int or None
        Epochs of task 1 (default ``epochs_per_task``): the paper's shape, task 1 for ``E1``
        epochs (CLASSP unscaled), later tasks for ``E2`` epochs.
    batch_size : int
    optimizer : {"sgd", "adam", "adagrad", "classp", "ewc", "si"}
    lr : float
        Learning rate (CLASSP: ``alpha``) of the first task.
    lr_after : float or None
        Learning rate / ``alpha`` from task 2 on (default ``lr``).
    threshold, eps, p : float
        CLASSP.
    scaling_first_task : bool
        CLASSP: scale the steps in the first task too (default off: the paper's vision
        protocol).
    accumulator : {"gradient", "pulses"}
        CLASSP on devices or pulsed float weights.
    lam : float
        EWC lambda (default 5000, reference convention without 1/2).
    fisher : {"reference", "batch", "sample"}
        EWC Fisher estimator.
    si_c, si_xi : float
        Synaptic Intelligence strength ``c`` (default 0.1) and damping ``xi`` (default 1e-3).
    device : str
        ``software`` or a preset of :func:`devices.names`.
    pulse_step : float or None
        Software only: the weight matrices become an ideal linear device with this nominal step
        (``dw_nom``): every optimizer's change is rounded to whole pulses (half-step dead zone,
        cap ``n_max``) and the realized change is ``n * pulse_step`` (``specs/classp.md``
        9.3-9.4 use 0.005).
    n_max : int or None
        Pulse cap on devices.
    w_max : float or None
        Weight range (float weights are clipped to it; device range). ``None`` (software
        only): no clipping.
    seed : int
        Initial weights, batch order and (unless ``split_seed``) the train/test split.
    perm_seed : int
    """

    benchmark: str = "permuted"
    n_tasks: int = 3
    scenario: str = "class"
    dataset: str = "mnist5k"
    task_data: tuple = ()
    split: str = "package"
    split_seed: int | None = None
    test_fraction: float | None = None
    max_per_task: int | None = None
    hidden: tuple = (100,)
    activation: str = "relu"
    biases: bool = False
    epochs_per_task: int = 2
    epochs_first_task: int | None = None
    batch_size: int = 16
    optimizer: str = "classp"
    lr: float = 0.1
    lr_after: float | None = None
    threshold: float = 1e-5
    eps: float = 1e-5
    p: float = 1.0
    scaling_first_task: bool = False
    accumulator: str = "gradient"
    lam: float = 5000.0
    fisher: str = "reference"
    si_c: float = 0.1
    si_xi: float = 1e-3
    device: str = "software"
    pulse_step: float | None = None
    n_max: int | None = 31
    w_max: float | None = 1.0
    seed: int = 0
    perm_seed: int = 1234

    def __post_init__(self):
        _choice("benchmark", self.benchmark, BENCHMARKS)
        _choice("scenario", self.scenario, SCENARIOS)
        _choice("split", self.split, SPLITS)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("activation", self.activation, ("relu", "sigmoid"))
        _choice("accumulator", self.accumulator, ("gradient", "pulses"))
        _choice("fisher", self.fisher, ("reference", "batch", "sample"))
        _pos_int("n_tasks", self.n_tasks)
        if isinstance(self.task_data, str):
            raise ValueError(
                f"task_data must be a sequence of dataset names, got {self.task_data!r}"
            )
        object.__setattr__(self, "task_data", tuple(self.task_data))
        limit = {"split": 5, "domain-shift": 2, "pair": len(self.task_data)}.get(self.benchmark)
        if self.benchmark == "pair" and len(self.task_data) < 2:
            raise ValueError(
                "task_data must name at least two datasets for benchmark 'pair' (e.g. "
                f"'idx:MNIST_DIR' 'idx:FASHION_DIR'), got {self.task_data!r}"
            )
        if self.benchmark != "pair" and self.task_data:
            raise ValueError(f"task_data is only used by benchmark 'pair', got {self.task_data!r}")
        if limit is not None and self.n_tasks > limit:
            raise ValueError(
                f"n_tasks must be between 1 and {limit} for benchmark {self.benchmark!r}, "
                f"got {self.n_tasks}"
            )
        _pos_int("epochs_per_task", self.epochs_per_task)
        if self.epochs_first_task is not None:
            _pos_int("epochs_first_task", self.epochs_first_task)
        _pos_int("batch_size", self.batch_size)
        _pos_int("seed", self.seed, 0)
        if self.split_seed is not None:
            _pos_int("split_seed", self.split_seed, 0)
        if self.test_fraction is not None:
            _real_in("test_fraction", self.test_fraction, 0.0, 1.0)
        if self.max_per_task is not None:
            _pos_int("max_per_task", self.max_per_task)
        object.__setattr__(self, "hidden", tuple(_pos_int("hidden", h) for h in self.hidden))
        for name in ("lr", "si_xi"):
            v = getattr(self, name)
            if isinstance(v, bool) or not (
                isinstance(v, (int, float)) and v > 0 and math.isfinite(v)
            ):
                raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
        if not (
            isinstance(self.si_c, (int, float)) and self.si_c >= 0 and math.isfinite(self.si_c)
        ):
            raise ValueError(f"si_c must be a finite number >= 0, got {self.si_c!r}")
        if self.w_max is not None and not (
            isinstance(self.w_max, (int, float)) and self.w_max > 0 and math.isfinite(self.w_max)
        ):
            raise ValueError(f"w_max must be a finite number > 0 or None, got {self.w_max!r}")
        if self.lr_after is not None and not (
            isinstance(self.lr_after, (int, float)) and self.lr_after > 0
        ):
            raise ValueError(f"lr_after must be > 0 or None, got {self.lr_after!r}")
        if self.pulse_step is not None:
            if not (isinstance(self.pulse_step, (int, float)) and self.pulse_step > 0):
                raise ValueError(f"pulse_step must be > 0 or None, got {self.pulse_step!r}")
            if self.device != "software":
                raise ValueError(
                    f"pulse_step is for device 'software' (pulsed float weights), got device "
                    f"{self.device!r} (a preset has its own step)"
                )
        if self.device != "software":
            if self.w_max is None:
                raise ValueError("w_max must be a number on a device (the device range)")
            RunSpec(device=self.device)  # validates the preset name (close matches)
        self.optimizer_for(0)  # validates threshold / eps / p / lam

    @property
    def pulsed(self) -> bool:
        """Whether updates are rounded to pulses (a device preset or ``pulse_step``)."""
        return self.device != "software" or self.pulse_step is not None

    def epochs_for(self, task: int) -> int:
        """Epochs of task ``task`` (``epochs_first_task`` for task 0 when set)."""
        if task == 0 and self.epochs_first_task is not None:
            return self.epochs_first_task
        return self.epochs_per_task

    def optimizer_for(self, task: int):
        """The optimizer used in task ``task`` (CLASSP changes phase after task 0; every
        optimizer takes ``lr_after`` from task 1 on)."""
        lr = self.lr if task == 0 or self.lr_after is None else self.lr_after
        if self.optimizer == "classp":
            first = task == 0
            return CLASSP(
                lr=lr,
                threshold=self.threshold,
                eps=self.eps,
                p=self.p,
                scaling=self.scaling_first_task or not first,
            )
        if self.optimizer == "ewc":
            return make_optimizer("ewc", lr=lr, lam=self.lam)
        if self.optimizer == "si":
            return make_optimizer("si", lr=lr, c=self.si_c, xi=self.si_xi)
        return make_optimizer(self.optimizer, lr=lr)

    def load_tasks(self) -> list[Task]:
        """The tasks of this configuration (:func:`make_tasks` with its fields)."""
        return make_tasks(
            self.benchmark,
            self.n_tasks,
            scenario=self.scenario,
            dataset=self.dataset,
            seed=self.seed if self.split_seed is None else self.split_seed,
            perm_seed=self.perm_seed,
            max_per_task=self.max_per_task,
            task_data=self.task_data,
            split=self.split,
            test_fraction=self.test_fraction,
        )

    def to_dict(self) -> dict:
        """Plain dict (JSON-able)."""
        d = asdict(self)
        d["task_data"] = list(self.task_data)
        return d


#: ``specs/classp.md`` 9.3: digits / 16, train_test_split(test_size=0.3, stratify=y,
#: random_state=0), 5 digit-pair tasks, domain-incremental; MLP 64-100-2, ReLU, Glorot-uniform
#: weights, zero biases (float, trained by the same rule), mean CE; 5 epochs per task, batch 16;
#: weight matrices on an ideal linear device, dw_nom 0.005, n_max 31, no clipping.
_SPLIT_DIGITS_93 = {
    "benchmark": "split",
    "scenario": "domain",
    "n_tasks": 5,
    "dataset": "digits",
    "split": "sklearn",
    "split_seed": 0,
    "test_fraction": 0.3,
    "hidden": (100,),
    "activation": "relu",
    "biases": True,
    "epochs_per_task": 5,
    "batch_size": 16,
    "pulse_step": 0.005,
    "n_max": 31,
    "w_max": None,
}


def split_digits_config(**overrides) -> ContinualConfig:
    """The split-digits setting of ``specs/classp.md`` 9.3 (see ``_SPLIT_DIGITS_93``), with
    ``overrides`` (the rule: ``optimizer``, ``lr``, ...; ``seed``; or any other field)."""
    return ContinualConfig(**{**_SPLIT_DIGITS_93, **overrides})


@dataclass
class ContinualResult:
    """What :func:`run_continual` returns: the accuracy matrix, metrics, per-task history,
    final statistics (what goes into the results file), the trained layers and the path."""

    accuracy_matrix: np.ndarray
    metrics: dict
    history: dict
    final: dict
    layers: list = field(default_factory=list)
    path: Path | None = None


class _Net:
    """MLP on weight arrays with optional float biases (zeros) and softmax output."""

    def __init__(self, layers, activation, biases: bool):
        self.layers = list(layers)
        self.mlp = MLP(self.layers, activation, "ce")
        self.activation = activation
        self.biases = [np.zeros(layer.shape[0]) for layer in self.layers] if biases else None

    def forward(self, x, mask):
        acts, zs = [x], []
        a = x
        n = len(self.layers)
        for i, layer in enumerate(self.layers):
            z = layer.matmul(a)
            if self.biases is not None:
                z = z + self.biases[i]
            zs.append(z)
            if i < n - 1:
                if self.activation == "relu":
                    a = np.maximum(z, 0.0)
                else:
                    a = 0.5 * (1.0 + np.tanh(0.5 * z))
                acts.append(a)
        z = zs[-1] if mask is None else np.where(mask[None, :], zs[-1], -np.inf)
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        prob = e / e.sum(axis=1, keepdims=True)
        acts.append(prob)
        return acts, zs, prob

    def grads(self, x, y, mask, n_out):
        """Mean cross-entropy gradients: (weight grads, bias grads or [], loss)."""
        acts, zs, prob = self.forward(x, mask)
        t = np.eye(n_out)[y]
        loss = -np.log(np.clip(prob[np.arange(len(y)), y], 1e-12, None)).mean()
        deltas = self.mlp.backward(acts, zs, prob - t)
        b = x.shape[0]
        gw = [d.T @ a / b for d, a in zip(deltas, acts[:-1], strict=True)]
        gb = [d.mean(axis=0) for d in deltas] if self.biases is not None else []
        return gw, gb, float(loss)


def _evaluate(net: _Net, x, y, mask) -> float:
    correct = 0
    for s in range(0, x.shape[0], 1000):
        _, _, prob = net.forward(x[s : s + 1000], mask)
        correct += int(np.sum(prob.argmax(axis=1) == y[s : s + 1000]))
    return correct / max(x.shape[0], 1)


def _fisher(net, task, cfg, rng):
    """Diagonal Fisher of every weight matrix and bias vector (in that order)."""
    n = task.x_train.shape[0]
    n_par = len(net.layers) + (len(net.biases) if net.biases is not None else 0)
    lists = [[] for _ in range(n_par)]
    chunks = (
        (np.arange(i, i + 1) for i in range(n))
        if cfg.fisher == "sample"
        else batches(n, cfg.batch_size, rng)
    )
    for idx in chunks:
        gw, gb, _ = net.grads(task.x_train[idx], task.y_train[idx], task.mask, task.n_outputs)
        for li, g in enumerate([*gw, *gb]):
            lists[li].append(g)
    return [fisher_diagonal(gl, n, cfg.fisher) for gl in lists]


def _signed_counts(dw, step: float, n_max):
    """Signed pulse counts for change ``dw`` on an ideal linear device of step ``step``."""
    n = pulse_counts(np.abs(dw) / step, theta=0.5, rounding="nearest", n_max=n_max)
    return np.where(dw >= 0, n, -n)


def _device_stats(layers) -> dict:
    out = {}
    for layer in layers:
        if hasattr(layer, "counters"):
            for k, v in layer.counters().items():
                out[f"total_{k}"] = out.get(f"total_{k}", 0) + int(v)
    return out


def run_continual(
    config: ContinualConfig,
    *,
    out=None,
    label: str | None = None,
    writer=None,
    tasks: list[Task] | None = None,
    progress: bool | None = None,
) -> ContinualResult:
    """Train one MLP through the tasks in sequence and evaluate every task after each.

    Parameters
    ----------
    config : ContinualConfig
    out : str or Path, optional
        Directory for ``results.h5`` (``ResultsWriter(kind="continual")``) and
        ``accuracy_matrix_<label>.png``. Ignored when ``writer`` is given.
    label : str, optional
        Run label (default ``<optimizer>-<device>``).
    writer : ResultsWriter, optional
        Add the run to this open writer (several optimizers in one file); not closed here.
    tasks : list of Task, optional
        Use these tasks instead of :func:`make_tasks`.
    progress : bool, optional
        tqdm bar (default: when stderr is a terminal).

    Returns
    -------
    ContinualResult
    """
    from threadpoolctl import threadpool_limits

    cfg = config
    label = label or f"{cfg.optimizer}-{cfg.device}"
    if tasks is None:
        tasks = cfg.load_tasks()
    T = len(tasks)
    if progress is None:
        progress = sys.stderr.isatty()
    own_writer = False
    if writer is None and out is not None:
        from ..results.store import ResultsWriter

        writer = ResultsWriter(
            Path(out) / "results.h5", {"continual": cfg.to_dict()}, seed=cfg.seed, kind="continual"
        )
        own_writer = True
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            res = _run(cfg, tasks, T, label, writer, progress)
    except BaseException:
        if own_writer:
            writer.close(complete=False)
        raise
    if own_writer:
        writer.close(complete=True)
    if out is not None or writer is not None:
        dest = Path(out) if out is not None else writer.path.parent
        res.path = writer.path
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(1.2 * len(tasks) + 2, 1.0 * len(tasks) + 1.5), layout="constrained")
        FigureCanvasAgg(fig)
        plot_accuracy_matrix(
            res.accuracy_matrix,
            task_names=[t.name for t in tasks],
            title=label,
            ax=fig.add_subplot(),
        )
        fig.savefig(dest / f"accuracy_matrix_{label}.png", dpi=100)
    return res


def _run(cfg, tasks, T, label, writer, progress):
    n_out = tasks[0].n_outputs
    sizes = [tasks[0].x_train.shape[1], *cfg.hidden, n_out]
    w_init = math.inf if cfg.w_max is None else cfg.w_max
    W0 = initial_weights(sizes, "uniform", np.random.default_rng([cfg.seed, 1]), w_init)
    on_device = cfg.device != "software"
    if on_device:
        spec = RunSpec(device=cfg.device, rule="bidirectional")
        layers = build_layers(spec, TrainConfig(w_max=cfg.w_max, seed=cfg.seed), W0)
    elif cfg.pulse_step is not None:
        layers = [FloatWeights(W, w_max=cfg.w_max, step=cfg.pulse_step) for W in W0]
    else:
        layers = [FloatWeights(W, w_max=cfg.w_max) for W in W0]
    net = _Net(layers, cfg.activation, cfg.biases)
    data_rng = np.random.default_rng([cfg.seed, 2])
    opt0 = cfg.optimizer_for(0)
    states = [opt0.init_state(W.shape) for W in W0]
    bstates = [opt0.init_state(b.shape) for b in (net.biases or [])]
    if writer is not None:
        writer.add_run(
            label,
            device=cfg.device,
            rule=cfg.optimizer,
            dataset=cfg.dataset
            if cfg.benchmark in ("permuted", "split")
            else ",".join(cfg.task_data or [t.name for t in tasks]),
            epochs=T,
            config={"optimizer": opt0.to_dict()},
        )
    R = np.full((T, T), np.nan)
    history = {
        k: []
        for k in (
            "train_loss",
            "test_accuracy",
            "average_accuracy_seen",
            "pulses",
            "refreshes",
            "suppressed",
            "steps",
            "task_time",
        )
    }
    total_pulses = total_refreshes = 0
    written = [np.zeros(W.shape, dtype=bool) for W in W0]
    from tqdm.auto import tqdm

    n_steps = sum(
        math.ceil(t.x_train.shape[0] / cfg.batch_size) * cfg.epochs_for(k)
        for k, t in enumerate(tasks)
    )
    bar = tqdm(total=n_steps, desc=label, disable=not progress, leave=False, unit="batch")
    for k, task in enumerate(tasks):
        opt = cfg.optimizer_for(k)
        needs_w = isinstance(opt, (EWC, SI))
        dev_opt = (
            DeviceCLASSP(rule=opt, accumulator=cfg.accumulator, n_max=cfg.n_max)
            if cfg.pulsed and isinstance(opt, CLASSP)
            else None
        )
        t0 = time.perf_counter()
        pulses = refreshes = 0
        loss_sum = 0.0
        n_batches = 0
        masked = seen = 0
        n = task.x_train.shape[0]
        for _ in range(cfg.epochs_for(k)):
            for idx in batches(n, cfg.batch_size, data_rng):
                gw, gb, loss = net.grads(task.x_train[idx], task.y_train[idx], task.mask, n_out)
                loss_sum += loss
                n_batches += 1
                for li, (layer, g) in enumerate(zip(layers, gw, strict=True)):
                    if dev_opt is not None:
                        states[li], st = dev_opt.update(layer, g, states[li])
                        pulses += st["pulses"]
                        refreshes += st["refreshes"]
                        masked += int((~st["mask"]).sum())
                        seen += g.size
                        if st["counts"] is not None:
                            written[li] |= st["counts"] != 0
                        continue
                    w = layer.weights() if needs_w else None
                    if isinstance(opt, CLASSP):
                        dw, states[li], m = opt.update_masked(g, states[li])
                        masked += int((~m).sum())
                        seen += g.size
                    else:
                        dw, states[li] = opt.update(g, states[li], w=w)
                    if on_device:
                        res = layer.pulse_request(dw, theta=0.5, n_max=cfg.n_max)
                        pulses += int(res["pulses"])
                        up, dn = layer.nominal_step()
                        written[li] |= np.where(dw >= 0, dw / up, -dw / dn) >= 0.5
                    elif cfg.pulse_step is not None:
                        cnt = _signed_counts(dw, cfg.pulse_step, cfg.n_max)
                        pulses += int(np.abs(cnt).sum())
                        written[li] |= cnt != 0
                        layer.pulse(cnt)
                    else:
                        layer.add(dw)
                # biases: float, same rule (CLASSP with its gradient accumulator)
                for li, g in enumerate(gb):
                    b = net.biases[li]
                    if isinstance(opt, CLASSP):
                        dw, bstates[li], m = opt.update_masked(g, bstates[li])
                        masked += int((~m).sum())
                        seen += g.size
                    else:
                        dw, bstates[li] = opt.update(g, bstates[li], w=b if needs_w else None)
                    net.biases[li] = b + dw
                bar.update(1)
        if isinstance(opt, EWC):
            fish = _fisher(net, task, cfg, np.random.default_rng([cfg.seed, 4, k]))
            params = [layer.weights() for layer in layers] + list(net.biases or [])
            allst = [
                opt.consolidate(s, w, f)
                for s, w, f in zip(states + bstates, params, fish, strict=True)
            ]
            states, bstates = allst[: len(layers)], allst[len(layers) :]
        elif isinstance(opt, SI):
            states = [
                opt.consolidate(s, layer.weights()) for s, layer in zip(states, layers, strict=True)
            ]
            bstates = [
                opt.consolidate(s, b) for s, b in zip(bstates, net.biases or [], strict=True)
            ]
        for j, tj in enumerate(tasks):
            R[k, j] = _evaluate(net, tj.x_test, tj.y_test, tj.mask)
        total_pulses += pulses
        total_refreshes += refreshes
        metrics = {
            "train_loss": loss_sum / max(n_batches, 1),
            "test_accuracy": float(R[k, k]),
            "average_accuracy_seen": float(R[k, : k + 1].mean()),
            "pulses": float(pulses),
            "refreshes": float(refreshes),
            "suppressed": masked / seen if seen else 0.0,
            "steps": float(n_batches),
            "task_time": time.perf_counter() - t0,
        }
        for key, v in metrics.items():
            history[key].append(v)
        if writer is not None:
            writer.append_epoch(
                label, **metrics, **{f"accuracy_task{j}": float(R[k, j]) for j in range(T)}
            )
    bar.close()
    met = continual_metrics(R)
    final = {
        "accuracy_matrix": R.copy(),
        **met,
        "optimizer": cfg.optimizer,
        "memory_bytes": int(memory_bytes(states) + memory_bytes(bstates)),
        "total_pulses": int(total_pulses),
    }
    if cfg.pulsed:
        final.update(_device_stats(layers))
        final["written_fraction"] = float(
            sum(w.sum() for w in written) / sum(w.size for w in written)
        )
        final["total_refreshes_rule"] = int(total_refreshes)
    if writer is not None:
        writer.set_final(label, final)
        writer.mark_complete(label)
    return ContinualResult(R, met, history, final, layers)


def plot_accuracy_matrix(R, *, task_names=None, ax=None, title=None):
    """Heatmap of the accuracy matrix (row i = after task i, column j = task j).

    Parameters
    ----------
    R : array_like, shape (T, T)
    task_names : list of str, optional
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    R = np.asarray(R, dtype=np.float64)
    if R.ndim != 2:
        raise ValueError(f"R must be a 2-D matrix, got shape {R.shape}")
    if ax is None:
        _, ax = plt.subplots(figsize=(1.2 * R.shape[1] + 2, 1.0 * R.shape[0] + 1.5))
    im = ax.imshow(R, vmin=0, vmax=1, cmap="viridis")
    names = task_names or [str(j) for j in range(R.shape[1])]
    ax.set_xticks(range(R.shape[1]), names)
    ax.set_yticks(range(R.shape[0]), [f"after {n}" for n in names[: R.shape[0]]])
    for i in range(R.shape[0]):
        for j in range(R.shape[1]):
            if np.isfinite(R[i, j]):
                ax.text(
                    j,
                    i,
                    f"{R[i, j]:.2f}",
                    ha="center",
                    va="center",
                    color="w" if R[i, j] < 0.6 else "k",
                    fontsize=8,
                )
    ax.set_xlabel("evaluated task")
    ax.set_ylabel("trained through")
    if title:
        ax.set_title(title)
    ax.figure.colorbar(im, ax=ax, label="test accuracy")
    return ax
