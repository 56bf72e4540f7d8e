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
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from devices.validation import check_choice, check_real
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

from ..data.datasets import SPLITS, batches, load_split
from ..data.tasks import BENCHMARKS, SCENARIOS, Task, make_tasks, mnist_to_8x8
from ..models.mlp import MLP, initial_weights
from .accuracy_matrix import continual_metrics, plot_accuracy_matrix
from .base import RunContext, field_errors, run_study
from .checkpoint import restore_checkpoint, resume_point, run_checkpoint, write_epoch
from .train import RunSpec, TrainConfig, build_layers

__all__ = [
    "DEFAULT_LR",
    "DEFAULT_TASKS",
    "MAX_PERMUTED_TASKS",
    "BENCHMARKS",
    "SCENARIOS",
    "Task",
    "ContinualConfig",
    "ContinualStudy",
    "split_digits_config",
    "SPLIT_DIGITS_RULES",
    "ContinualResult",
    "make_tasks",
    "load_split",
    "mnist_to_8x8",
    "continual_metrics",
    "run_continual",
    "plot_accuracy_matrix",
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
    #: the trained network and the optimizer state of its weight matrices and biases (in that
    #: order) after the last task, for diagnostics (e.g. CLASSP's accumulators per output unit)
    net: MLP | None = None
    opt_states: list = field(default_factory=list)


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
        gw, gb, _ = net.mean_ce_grads(
            task.x_train[idx], task.y_train[idx], task.mask, task.n_outputs
        )
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
    study = ContinualStudy(config, label=label, tasks=tasks)
    return run_study(study, out=out if writer is None else None, progress=progress, writer=writer)


class ContinualStudy:
    """The :class:`~synapse_sim.studies.base.Study` of :func:`run_continual`.

    Parameters
    ----------
    config : ContinualConfig
    label : str, optional
        Run label (default ``<optimizer>-<device>``).
    tasks : list of Task, optional
        Use these tasks instead of :meth:`ContinualConfig.load_tasks`.
    checkpoints : bool
        With a results file, store a checkpoint (weights or device state, biases, optimizer
        states with their CLASSP/EWC/SI accumulators, data order, accuracy matrix so far) after
        every task, so that a killed run resumes bit for bit from its last finished task
        (``run_study(mode="resume")``, ``--resume``).
    """

    kind = "continual"
    uses_torch = False

    def __init__(self, config: ContinualConfig, *, label=None, tasks=None, checkpoints=True):
        self.config = config
        self.label = label or f"{config.optimizer}-{config.device}"
        self.tasks = tasks
        self.seed = config.seed
        self.checkpoints = bool(checkpoints)

    def prepare(self) -> None:
        """Load the tasks (a missing dataset fails before any file is written)."""
        if self.tasks is None:
            self.tasks = self.config.load_tasks()

    def results_config(self) -> dict:
        """Root config of ``results.h5``."""
        return {"continual": self.config.to_dict()}

    def execute(self, ctx: RunContext) -> ContinualResult:
        """Train through the tasks (see :func:`run_continual`)."""
        return _run(self.config, self.tasks, len(self.tasks), self.label, ctx, self.checkpoints)

    def save_outputs(self, result: ContinualResult, out: Path) -> list[Path]:
        """``accuracy_matrix_<label>.png``."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        n = len(self.tasks)
        fig = Figure(figsize=(1.2 * n + 2, 1.0 * n + 1.5), layout="constrained")
        FigureCanvasAgg(fig)
        plot_accuracy_matrix(
            result.accuracy_matrix,
            task_names=[t.name for t in self.tasks],
            title=self.label,
            ax=fig.add_subplot(),
        )
        png = Path(out) / f"accuracy_matrix_{self.label}.png"
        fig.savefig(png, dpi=100)
        return [png]


def _evaluate(net: MLP, task: Task) -> float:
    pred, _ = net.predict(task.x_test, 1000, task.mask)
    return int(np.sum(pred == task.y_test)) / max(task.x_test.shape[0], 1)


def _typed_state(saved, template: dict) -> dict:
    """An optimizer state read from a checkpoint, as arrays of the dtypes of ``template``
    (a fresh state of the same optimizer; 0-d entries come back from the file as scalars)."""
    return {
        k: np.array(v, dtype=np.asarray(template[k]).dtype if k in template else None)
        for k, v in saved.items()
    }


def _run(cfg, tasks, T, label, ctx: RunContext, checkpoints: bool = True):
    writer = ctx.writer
    # a run found in a resumed file continues from its checkpoint (or starts again)
    resumed = set(writer.labels) if writer is not None else set()
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
    net = MLP(layers, cfg.activation, "ce", biases=cfg.biases)
    data_rng = np.random.default_rng([cfg.seed, 2])
    opt0 = cfg.optimizer_for(0)
    states = [opt0.init_state(W.shape) for W in W0]
    bstates = [opt0.init_state(b.shape) for b in (net.biases or [])]
    if writer is not None and not (label in resumed and writer.checkpoint(label)):
        writer.add_run(
            label,
            device=cfg.device,
            rule=cfg.optimizer,
            dataset=cfg.dataset
            if cfg.benchmark in ("permuted", "split")
            else ",".join(cfg.task_data or [t.name for t in tasks]),
            epochs=T,
            config={"optimizer": opt0.to_dict()},
            replace=True,
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
    task_steps = [
        math.ceil(t.x_train.shape[0] / cfg.batch_size) * cfg.epochs_for(k)
        for k, t in enumerate(tasks)
    ]
    rngs = {"data": data_rng}

    def snapshot(done: int) -> dict:
        ckpt = run_checkpoint(done, 0, layers, rngs)
        ckpt["continual"] = {
            "accuracy_matrix": R.copy(),
            "states": {f"s{i}": dict(st) for i, st in enumerate(states + bstates)},
            "biases": {f"b{i}": b for i, b in enumerate(net.biases or [])},
            "written": {f"w{i}": w for i, w in enumerate(written)},
            "total_pulses": np.int64(total_pulses),
            "total_refreshes": np.int64(total_refreshes),
        }
        return ckpt

    def restore(ckpt) -> tuple[int, int]:
        nonlocal total_pulses, total_refreshes
        done, step = restore_checkpoint(ckpt, layers, rngs)
        c = ckpt["continual"]
        R[...] = c["accuracy_matrix"]
        allst = [_typed_state(c["states"][f"s{i}"], st) for i, st in enumerate(states + bstates)]
        states[:], bstates[:] = allst[: len(states)], allst[len(states) :]
        for i in range(len(net.biases or [])):
            net.biases[i] = np.array(c["biases"][f"b{i}"], dtype=np.float64)
        written[:] = [np.array(c["written"][f"w{i}"], dtype=bool) for i in range(len(written))]
        total_pulses, total_refreshes = int(c["total_pulses"]), int(c["total_refreshes"])
        return done, step

    first, _ = resume_point(writer, label, resumed, history, restore)
    bar = ctx.bar(sum(task_steps), label)
    bar.update(sum(task_steps[:first]))
    for k, task in enumerate(tasks):
        if k < first:
            continue
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
                x, y = task.x_train[idx], task.y_train[idx]
                gw, gb, loss = net.mean_ce_grads(x, y, task.mask, n_out)
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
            R[k, j] = _evaluate(net, tj)
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
        if writer is not None:  # the task and its checkpoint, atomically
            write_epoch(
                writer,
                label,
                {**metrics, **{f"accuracy_task{j}": float(R[k, j]) for j in range(T)}},
                partial(snapshot, k + 1) if checkpoints else None,
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
    if writer is not None and label not in writer.completed:
        writer.set_final(label, final)
        writer.mark_complete(label)
    return ContinualResult(R, met, history, final, layers, net=net, opt_states=states + bstates)
