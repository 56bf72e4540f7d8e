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

The configuration (:class:`ContinualConfig`, the split-digits setting) lives in
:mod:`~synapse_sim.studies.continual_config`; every name stays importable from here.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from learning_rules import FloatWeights
from learning_rules.continual import (
    CLASSP,
    EWC,
    SI,
    DeviceCLASSP,
    fisher_diagonal,
    memory_bytes,
)
from learning_rules.pulse_bp import pulse_counts

from ..data.datasets import batches, load_split
from ..data.tasks import BENCHMARKS, SCENARIOS, Task, make_tasks, mnist_to_8x8
from ..models.mlp import MLP, initial_weights
from .accuracy_matrix import continual_metrics, plot_accuracy_matrix
from .base import RunContext, run_study
from .checkpoint import restore_checkpoint, resume_point, run_checkpoint, write_epoch
from .continual_config import (
    DEFAULT_LR,
    DEFAULT_TASKS,
    MAX_PERMUTED_TASKS,
    SPLIT_DIGITS_RULES,
    ContinualConfig,
    split_digits_config,
)
from .train_arrays import build_layers
from .train_config import RunSpec, TrainConfig

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
