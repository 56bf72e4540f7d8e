"""The configuration of a continual-learning run (see :mod:`synapse_sim.studies.continual`).

:class:`ContinualConfig` (benchmark, tasks, network, optimizer and its hyperparameters, device),
frozen and self-validating, its defaults (:data:`DEFAULT_LR`, :data:`DEFAULT_TASKS`,
:data:`MAX_PERMUTED_TASKS`) and the split-digits setting of ``specs/classp.md`` 9.3
(:func:`split_digits_config`, :data:`SPLIT_DIGITS_RULES`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from devices.validation import check_choice, check_real
from learning_rules.continual import CLASSP, OPTIMIZERS, make_optimizer

from ..data.datasets import SPLITS
from ..data.tasks import BENCHMARKS, SCENARIOS, Task, make_tasks
from .base import field_errors
from .train_config import RunSpec

__all__ = [
    "DEFAULT_LR",
    "DEFAULT_TASKS",
    "MAX_PERMUTED_TASKS",
    "ContinualConfig",
    "split_digits_config",
    "SPLIT_DIGITS_RULES",
]


#: Default learning rate (CLASSP: ``alpha``) of each optimizer.
DEFAULT_LR = {"classp": 0.1, "sgd": 0.1, "ewc": 0.1, "si": 0.1, "adam": 1e-3, "adagrad": 0.01}
#: Default number of tasks of each benchmark (``pair``: one per dataset of ``task_data``).
DEFAULT_TASKS = {"permuted": 5, "split": 5, "domain-shift": 2}
#: Most tasks of a ``permuted`` sequence: each task holds its own permuted copy of the data and
#: the accuracy matrix grows with the square of the count (checked before anything is built).
MAX_PERMUTED_TASKS = 100


def _pos_int(name, value, minimum=1):
    with field_errors(name):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _choice(name, value, choices):
    with field_errors(name):
        check_choice(name, value, choices)


@dataclass(frozen=True, kw_only=True)
class ContinualConfig:
    """A continual-learning run.

    Parameters
    ----------
    benchmark : {"permuted", "split", "domain-shift", "pair"}
    n_tasks : int or None
        Number of tasks (default :data:`DEFAULT_TASKS`: 5 permuted and split, 2 domain-shift,
        every dataset of ``task_data`` for pair).
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
    lr : float or None
        Learning rate (CLASSP: ``alpha``) of the first task (default :data:`DEFAULT_LR`: 0.1
        for CLASSP, SGD, EWC and SI, 1e-3 for Adam, 0.01 for AdaGrad).
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
    n_tasks: int | None = None
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
    lr: float | None = None
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
        if self.n_tasks is None:
            pair = self.benchmark == "pair"
            n = max(len(self.task_data), 1) if pair else DEFAULT_TASKS[self.benchmark]
            object.__setattr__(self, "n_tasks", n)
        if self.lr is None:
            object.__setattr__(self, "lr", DEFAULT_LR[self.optimizer])
        _pos_int("n_tasks", self.n_tasks)
        with field_errors("task_data"):
            if isinstance(self.task_data, str):
                raise ValueError(
                    f"task_data must be a sequence of dataset names, got {self.task_data!r}"
                )
            object.__setattr__(self, "task_data", tuple(self.task_data))
            if self.benchmark == "pair" and len(self.task_data) < 2:
                raise ValueError(
                    "task_data must name at least two datasets for benchmark 'pair' (e.g. "
                    f"'idx:MNIST_DIR' 'idx:FASHION_DIR'), got {self.task_data!r}"
                )
            if self.benchmark != "pair" and self.task_data:
                raise ValueError(
                    f"task_data is only used by benchmark 'pair', got {self.task_data!r}"
                )
        limit = {
            "permuted": MAX_PERMUTED_TASKS,
            "split": 5,
            "domain-shift": 2,
            "pair": len(self.task_data),
        }.get(self.benchmark)
        with field_errors("n_tasks"):
            if limit is not None and self.n_tasks > limit:
                raise ValueError(
                    f"n_tasks must be between 1 and {limit} for benchmark {self.benchmark!r}, "
                    f"got {self.n_tasks}"
                    + (
                        " (MAX_PERMUTED_TASKS: every permuted task holds its own copy of the data)"
                        if self.benchmark == "permuted"
                        else ""
                    )
                )
        _pos_int("epochs_per_task", self.epochs_per_task)
        if self.epochs_first_task is not None:
            _pos_int("epochs_first_task", self.epochs_first_task)
        _pos_int("batch_size", self.batch_size)
        _pos_int("seed", self.seed, 0)
        if self.split_seed is not None:
            _pos_int("split_seed", self.split_seed, 0)
        with field_errors("test_fraction"):
            v = self.test_fraction
            if v is not None and (
                isinstance(v, bool)
                or not isinstance(v, (int, float, np.integer, np.floating))
                or not 0.0 < float(v) < 1.0
            ):
                raise ValueError(f"test_fraction must be in (0.0, 1.0), got {v!r}")
        if self.max_per_task is not None:
            _pos_int("max_per_task", self.max_per_task)
        object.__setattr__(self, "hidden", tuple(_pos_int("hidden", h) for h in self.hidden))
        for name in ("lr", "si_xi"):
            v = getattr(self, name)
            with field_errors(name):
                if isinstance(v, bool) or not (
                    isinstance(v, (int, float)) and v > 0 and math.isfinite(v)
                ):
                    raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
        with field_errors("si_c"):
            v = self.si_c
            if not (isinstance(v, (int, float)) and v >= 0 and math.isfinite(v)):
                raise ValueError(f"si_c must be a finite number >= 0, got {v!r}")
        with field_errors("w_max"):
            v = self.w_max
            if v is not None and not (isinstance(v, (int, float)) and v > 0 and math.isfinite(v)):
                raise ValueError(f"w_max must be a finite number > 0 or None, got {v!r}")
            if self.device != "software" and v is None:
                raise ValueError("w_max must be a number on a device (the device range)")
        with field_errors("lr_after"):
            v = self.lr_after
            if v is not None and not (isinstance(v, (int, float)) and v > 0):
                raise ValueError(f"lr_after must be > 0 or None, got {v!r}")
        with field_errors("pulse_step"):
            v = self.pulse_step
            if v is not None:
                if not (isinstance(v, (int, float)) and v > 0):
                    raise ValueError(f"pulse_step must be > 0 or None, got {v!r}")
                if self.device != "software":
                    raise ValueError(
                        f"pulse_step is for device 'software' (pulsed float weights), got "
                        f"device {self.device!r} (a preset has its own step)"
                    )
        if self.device != "software":
            with field_errors("device"):
                RunSpec(device=self.device)  # validates the preset name (close matches)
        for name, lo_open in (("threshold", False), ("eps", False), ("p", True), ("lam", False)):
            with field_errors(name):
                check_real(name, getattr(self, name), lo=0.0, lo_open=lo_open)
        with field_errors("optimizer"):
            self.optimizer_for(0)

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


#: The rules of ``specs/classp.md`` 9.3 (fields of :class:`ContinualConfig`): SGD lr 0.1; CLASSP
#: alpha 0.1 (task 1, unscaled) then 0.03 (scaled), theta 1e-5, eps 1e-5, p 1; the
#: pulse-accumulator variant (eps 1 pulse, theta 0, alpha 0.3 after task 1).
SPLIT_DIGITS_RULES = {
    "sgd": {"optimizer": "sgd", "lr": 0.1},
    "classp": {
        "optimizer": "classp",
        "lr": 0.1,
        "lr_after": 0.03,
        "threshold": 1e-5,
        "eps": 1e-5,
        "p": 1.0,
        "accumulator": "gradient",
    },
    "classp-pulses": {
        "optimizer": "classp",
        "lr": 0.1,
        "lr_after": 0.3,
        "threshold": 0.0,
        "eps": 1.0,
        "p": 1.0,
        "accumulator": "pulses",
    },
}


def split_digits_config(**overrides) -> ContinualConfig:
    """The split-digits setting of ``specs/classp.md`` 9.3 (see ``_SPLIT_DIGITS_93``), with
    ``overrides`` (the rule: ``optimizer``, ``lr``, ...; ``seed``; or any other field)."""
    return ContinualConfig(**{**_SPLIT_DIGITS_93, **overrides})
