"""Continual-learning benchmarks and trainer (``specs/classp.md`` sections 4-5).

Benchmarks on data that ships: *permuted MNIST-5k* (task 0 the identity, task k a fixed seeded
pixel permutation; 10 shared outputs) and *split MNIST-5k* (digit pairs {0,1}, ..., {8,9};
``task``-incremental: logits masked to the pair in training and test, ``class``-incremental:
10 outputs, no mask, ``domain``-incremental: 2 shared outputs). An MLP
(:class:`synapse_sim.training.MLP`, no biases, softmax cross-entropy) is trained through the tasks
in sequence with one optimizer of :mod:`learning_rules.continual`; after every task every task is
evaluated, giving the accuracy matrix ``R[i, j]`` (test accuracy on task ``j`` after task ``i``).
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
    DeviceCLASSP,
    fisher_diagonal,
    make_optimizer,
    memory_bytes,
)

from .datasets import batches, load_dataset
from .training import MLP, RunSpec, TrainConfig, build_layers, initial_weights

__all__ = [
    "BENCHMARKS",
    "SCENARIOS",
    "Task",
    "ContinualConfig",
    "ContinualResult",
    "make_tasks",
    "continual_metrics",
    "run_continual",
    "plot_accuracy_matrix",
]

BENCHMARKS = ("permuted", "split")
SCENARIOS = ("task", "domain", "class")
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


def make_tasks(
    benchmark: str,
    n_tasks: int = 5,
    *,
    scenario: str = "class",
    dataset: str = "mnist5k",
    seed: int = 0,
    perm_seed: int = 1234,
    max_per_task: int | None = None,
) -> list[Task]:
    """The tasks of a benchmark.

    Parameters
    ----------
    benchmark : {"permuted", "split"}
    n_tasks : int
        Permuted: any number >= 1; split: 1 to 5.
    scenario : {"task", "domain", "class"}
        Split only.
    dataset : str
        ``mnist5k`` (default) or ``digits``.
    seed : int
        Seed of the stratified train/test split.
    perm_seed : int
        Seed of the pixel permutations.
    max_per_task : int or None
        Keep only the first this many training images of each task.

    Returns
    -------
    list of Task
    """
    _choice("benchmark", benchmark, BENCHMARKS)
    _choice("scenario", scenario, SCENARIOS)
    n_tasks = _pos_int("n_tasks", n_tasks)
    if max_per_task is not None:
        max_per_task = _pos_int("max_per_task", max_per_task)
    if benchmark == "split" and n_tasks > 5:
        raise ValueError(f"n_tasks must be between 1 and 5 for benchmark 'split', got {n_tasks}")
    data = load_dataset(dataset, seed=seed)
    tasks = []
    if benchmark == "permuted":
        rng = np.random.default_rng(perm_seed)
        d = data.x_train.shape[1]
        xtr, ytr = data.x_train, data.y_train
        if max_per_task is not None:
            xtr, ytr = xtr[:max_per_task], ytr[:max_per_task]
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
        xtr, ytr = data.x_train[tr], data.y_train[tr]
        if max_per_task is not None:
            xtr, ytr = xtr[:max_per_task], ytr[:max_per_task]
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
    benchmark : {"permuted", "split"}
    n_tasks : int
    scenario : {"task", "domain", "class"}
        Split only.
    dataset : str
        ``mnist5k`` or ``digits``.
    max_per_task : int or None
        Training images per task (first ones).
    hidden : tuple of int
    activation : {"relu", "sigmoid"}
    epochs_per_task : int
    batch_size : int
    optimizer : {"sgd", "adam", "adagrad", "classp", "ewc"}
    lr : float
        Learning rate (CLASSP: ``alpha`` of the first task).
    lr_after : float or None
        CLASSP: ``alpha`` from task 2 on (default ``lr``).
    threshold, eps, p : float
        CLASSP.
    scaling_first_task : bool
        CLASSP: scale the steps in the first task too (default off: the paper's vision
        protocol).
    accumulator : {"gradient", "pulses"}
        CLASSP on devices.
    lam : float
        EWC lambda (default 5000, reference convention without 1/2).
    fisher : {"reference", "batch", "sample"}
        EWC Fisher estimator.
    device : str
        ``software`` or a preset of :func:`devices.names`.
    n_max : int or None
        Pulse cap on devices.
    w_max : float
        Weight range (float weights are clipped to it; device range).
    seed : int
    perm_seed : int
    """

    benchmark: str = "permuted"
    n_tasks: int = 3
    scenario: str = "class"
    dataset: str = "mnist5k"
    max_per_task: int | None = None
    hidden: tuple = (100,)
    activation: str = "relu"
    epochs_per_task: int = 2
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
    device: str = "software"
    n_max: int | None = 31
    w_max: float = 1.0
    seed: int = 0
    perm_seed: int = 1234

    def __post_init__(self):
        _choice("benchmark", self.benchmark, BENCHMARKS)
        _choice("scenario", self.scenario, SCENARIOS)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("activation", self.activation, ("relu", "sigmoid"))
        _choice("accumulator", self.accumulator, ("gradient", "pulses"))
        _choice("fisher", self.fisher, ("reference", "batch", "sample"))
        _pos_int("n_tasks", self.n_tasks)
        if self.benchmark == "split" and self.n_tasks > 5:
            raise ValueError(
                f"n_tasks must be between 1 and 5 for benchmark 'split', got {self.n_tasks}"
            )
        _pos_int("epochs_per_task", self.epochs_per_task)
        _pos_int("batch_size", self.batch_size)
        _pos_int("seed", self.seed, 0)
        if self.max_per_task is not None:
            _pos_int("max_per_task", self.max_per_task)
        object.__setattr__(self, "hidden", tuple(_pos_int("hidden", h) for h in self.hidden))
        for name in ("lr", "w_max"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v > 0 and math.isfinite(v)):
                raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
        if self.lr_after is not None and not self.lr_after > 0:
            raise ValueError(f"lr_after must be > 0 or None, got {self.lr_after!r}")
        if self.device != "software":
            RunSpec(device=self.device)  # validates the preset name (close matches)
        self.optimizer_for(0)  # validates threshold / eps / p / lam

    def optimizer_for(self, task: int):
        """The optimizer used in task ``task`` (CLASSP changes phase after task 0)."""
        if self.optimizer == "classp":
            first = task == 0
            return CLASSP(
                lr=self.lr if first or self.lr_after is None else self.lr_after,
                threshold=self.threshold,
                eps=self.eps,
                p=self.p,
                scaling=self.scaling_first_task or not first,
            )
        if self.optimizer == "ewc":
            return make_optimizer("ewc", lr=self.lr, lam=self.lam)
        return make_optimizer(self.optimizer, lr=self.lr)

    def to_dict(self) -> dict:
        """Plain dict (JSON-able)."""
        return asdict(self)


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


def _forward(net: MLP, x, mask):
    acts, zs = net.forward(x)
    z = zs[-1]
    if mask is not None:
        z = np.where(mask[None, :], z, -np.inf)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    prob = e / e.sum(axis=1, keepdims=True)
    return acts, zs, prob


def _evaluate(net: MLP, task: Task) -> float:
    correct = 0
    for s in range(0, task.x_test.shape[0], 1000):
        _, _, prob = _forward(net, task.x_test[s : s + 1000], task.mask)
        correct += int(np.sum(prob.argmax(axis=1) == task.y_test[s : s + 1000]))
    return correct / max(task.x_test.shape[0], 1)


def _grads(net: MLP, x, y, mask, n_out):
    acts, zs, prob = _forward(net, x, mask)
    t = np.eye(n_out)[y]
    loss = -np.log(np.clip(prob[np.arange(len(y)), y], 1e-12, None)).mean()
    deltas = net.backward(acts, zs, prob - t)
    b = x.shape[0]
    return [d.T @ a / b for d, a in zip(deltas, acts[:-1], strict=True)], float(loss), prob


def _fisher(net, task, cfg, rng):
    n = task.x_train.shape[0]
    if cfg.fisher == "sample":
        lists = [[] for _ in net.layers]
        for i in range(n):
            gs, _, _ = _grads(
                net, task.x_train[i : i + 1], task.y_train[i : i + 1], task.mask, task.n_outputs
            )
            for li, g in enumerate(gs):
                lists[li].append(g)
    else:
        lists = [[] for _ in net.layers]
        for idx in batches(n, cfg.batch_size, rng):
            gs, _, _ = _grads(net, task.x_train[idx], task.y_train[idx], task.mask, task.n_outputs)
            for li, g in enumerate(gs):
                lists[li].append(g)
    return [fisher_diagonal(gl, n, cfg.fisher) for gl in lists]


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
        tasks = make_tasks(
            cfg.benchmark,
            cfg.n_tasks,
            scenario=cfg.scenario,
            dataset=cfg.dataset,
            seed=cfg.seed,
            perm_seed=cfg.perm_seed,
            max_per_task=cfg.max_per_task,
        )
    T = len(tasks)
    if progress is None:
        progress = sys.stderr.isatty()
    own_writer = False
    if writer is None and out is not None:
        from .store import ResultsWriter

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
    W0 = initial_weights(sizes, "uniform", np.random.default_rng([cfg.seed, 1]), cfg.w_max)
    on_device = cfg.device != "software"
    if on_device:
        spec = RunSpec(device=cfg.device, rule="bidirectional")
        layers = build_layers(spec, TrainConfig(w_max=cfg.w_max, seed=cfg.seed), W0)
    else:
        layers = [FloatWeights(W, w_max=cfg.w_max) for W in W0]
    net = MLP(layers, cfg.activation, "ce")
    data_rng = np.random.default_rng([cfg.seed, 2])
    opt0 = cfg.optimizer_for(0)
    states = [opt0.init_state(W.shape) for W in W0]
    if writer is not None:
        writer.add_run(
            label,
            device=cfg.device,
            rule=cfg.optimizer,
            dataset=cfg.dataset,
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
            "task_time",
        )
    }
    total_pulses = total_refreshes = 0
    written = [np.zeros(W.shape, dtype=bool) for W in W0]
    from tqdm.auto import tqdm

    n_steps = sum(math.ceil(t.x_train.shape[0] / cfg.batch_size) for t in tasks)
    bar = tqdm(
        total=n_steps * cfg.epochs_per_task,
        desc=label,
        disable=not progress,
        leave=False,
        unit="batch",
    )
    for k, task in enumerate(tasks):
        opt = cfg.optimizer_for(k)
        dev_opt = (
            DeviceCLASSP(rule=opt, accumulator=cfg.accumulator, n_max=cfg.n_max)
            if on_device and isinstance(opt, CLASSP)
            else None
        )
        t0 = time.perf_counter()
        pulses = refreshes = 0
        loss_sum = 0.0
        n_batches = 0
        masked = seen = 0
        n = task.x_train.shape[0]
        for _ in range(cfg.epochs_per_task):
            for idx in batches(n, cfg.batch_size, data_rng):
                gs, loss, _ = _grads(net, task.x_train[idx], task.y_train[idx], task.mask, n_out)
                loss_sum += loss
                n_batches += 1
                for li, (layer, g) in enumerate(zip(layers, gs, strict=True)):
                    if dev_opt is not None:
                        states[li], st = dev_opt.update(layer, g, states[li])
                        pulses += st["pulses"]
                        refreshes += st["refreshes"]
                        masked += int((~st["mask"]).sum())
                        seen += g.size
                        if st["counts"] is not None:
                            written[li] |= st["counts"] != 0
                        continue
                    w = layer.weights() if isinstance(opt, EWC) else None
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
                    else:
                        layer.add(dw)
                bar.update(1)
        if isinstance(opt, EWC):
            fish = _fisher(net, task, cfg, np.random.default_rng([cfg.seed, 4, k]))
            states = [
                opt.consolidate(s, layer.weights(), f)
                for s, layer, f in zip(states, layers, fish, strict=True)
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
        "memory_bytes": int(memory_bytes(states)),
        "total_pulses": int(total_pulses),
    }
    if on_device:
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
