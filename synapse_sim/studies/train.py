"""Train a multilayer perceptron on device arrays beside its software twin.

One :class:`TrainConfig` (data, network, schedule, seed) and a list of :class:`RunSpec` (device
preset or ``software``, rule, mapping, overrides). Every run starts from the same initial weights
and sees the same data order; the software twin uses :class:`learning_rules.FloatWeights` with
float SGD. The fast path is numpy/numba; torch is not needed.

``TrainConfig(backend="cupy")`` trains on a GPU: the device arrays keep their state in cupy
arrays, the training data go to the GPU once per run, and the network's array code (written over
the array module, numpy or cupy) keeps activations, errors and requests on the GPU
(``docs/GPU.md``). ``backend="cuda-sim"`` runs the same path on a CPU under numba's CUDA
simulator (tests).

The configuration lives in :mod:`~synapse_sim.studies.train_config`, the pieces of a run (arrays,
rule, per-epoch metrics) in :mod:`~synapse_sim.studies.train_arrays`, the result and its report in
:mod:`~synapse_sim.studies.train_report`; every name stays importable from here.
"""

from __future__ import annotations

import math
import time
from functools import partial
from pathlib import Path

import numpy as np

from devices.xp import asnumpy, get_xp, to_device
from learning_rules import PulseRule

from ..data.datasets import Dataset, batches, load_dataset
from ..models.mlp import ACTIVATIONS, LOSSES, MLP, initial_weights
from ..models.noisy import noisy_layers
from ..models.online import online_trainer
from . import compat
from .base import RunContext, run_study
from .checkpoint import restore_checkpoint, resume_point, run_checkpoint, write_epoch
from .energy import ENERGY_METRICS, EnergyTracker, resolve_energy
from .health import check_epoch
from .train_arrays import (
    TRAIN_METRICS,
    build_layers,
    epoch_metrics,
    final_stats,
    make_rule,
    saturation,
)
from .train_config import BACKENDS, RunSpec, TrainConfig, resolve_backend
from .train_report import TrainResult, markdown_report, save_report, write_final

__all__ = [
    "TrainConfig",
    "RunSpec",
    "TrainResult",
    "train",
    "MLP",
    "ACTIVATIONS",
    "LOSSES",
    "BACKENDS",
    "resolve_backend",
    "TrainStudy",
    "build_layers",
    "make_rule",
    "initial_weights",
    "final_stats",
    "saturation",
    "TRAIN_METRICS",
    "epoch_metrics",
    "markdown_report",
    "save_report",
]


def train(
    config: TrainConfig,
    runs,
    *,
    out=None,
    progress: bool | None = None,
    data: Dataset | None = None,
    save_weights: bool = False,
    blas_threads: int | None = 1,
    energy=None,
) -> TrainResult:
    """Train every run of ``runs`` with the same initial weights and data order.

    Parameters
    ----------
    config : TrainConfig
    runs : list of RunSpec (or device names / ``(device, rule)`` tuples)
    out : str or Path, optional
        Directory for ``results.h5`` (written crash-safe after every epoch).
    progress : bool, optional
        Show a tqdm bar (default: when stderr is a terminal).
    data : Dataset, optional
        Use this dataset instead of loading ``config.dataset``.
    save_weights : bool
        Store final weights in the results file.
    blas_threads : int or None
        BLAS threads while training (default 1: the per-step matrices are small and the numba
        kernels carry the parallelism); ``None`` leaves BLAS alone.
    energy : None, bool, devices.energy.EnergyModel or dict
        Record device-level energy and latency per epoch (``True``: the default
        :class:`devices.energy.EnergyModel`; see :mod:`synapse_sim.studies.energy`).

    Returns
    -------
    TrainResult
    """
    study = TrainStudy(
        config, runs, data=data, save_weights=save_weights, plots=False, energy=energy
    )
    return run_study(study, out=out, progress=progress, threads=blas_threads, outputs=False)


class TrainStudy:
    """The :class:`~synapse_sim.studies.base.Study` of :func:`train`.

    Parameters
    ----------
    config : TrainConfig
    runs : list of RunSpec (or device names / ``(device, rule)`` tuples)
    data : Dataset, optional
        Use this dataset instead of loading ``config.dataset``.
    save_weights : bool
        Store final weights in the results file.
    plots : bool
        :meth:`save_outputs` writes the PNG figures (it always writes ``results.md``).
    checkpoints : bool
        With a results file, store each run's checkpoint with every epoch (in the same atomic
        snapshot), so that a killed run resumes bit for bit (``run_study(mode="resume")``,
        ``--resume``); a file closed complete drops them.
    energy : None, bool, devices.energy.EnergyModel or dict
        Record device-level energy and latency (see :func:`train`). A resumed run meters the
        epochs it runs; its final energy totals cover those epochs only.
    """

    kind = "train"
    uses_torch = False

    def __init__(
        self,
        config: TrainConfig,
        runs,
        *,
        data=None,
        save_weights=False,
        plots=True,
        checkpoints=True,
        energy=None,
    ):
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        self.config = config
        self.runs = [_as_spec(r) for r in runs]
        if not self.runs:
            raise ValueError("runs must name at least one configuration")
        labels = [r.label for r in self.runs]
        if len(set(labels)) != len(labels):
            raise ValueError(f"run labels must be unique, got {labels}")
        self.data = data
        self.save_weights = save_weights
        self.plots = plots
        self.checkpoints = bool(checkpoints)
        self.seed = int(config.seed)
        self.energy = resolve_energy(energy)

    def prepare(self) -> None:
        """Resolve the backend (before any data loading or file writing), load the data."""
        config = self.config
        self.backend = resolve_backend(config.backend)
        if self.data is None:
            self.data = load_dataset(
                config.dataset, seed=config.seed, neurosim=config.uses_neurosim_input
            )
        xtr = self.data.x_train
        if config.max_train is not None:
            xtr = xtr[: config.max_train]
        self.sizes = [xtr.shape[1], *config.hidden, self.data.n_classes]

    def results_config(self) -> dict:
        """Root config of ``results.h5``."""
        energy = {} if self.energy is None else {"energy": self.energy.to_dict()}
        return {
            **energy,
            "train": self.config.to_dict(),
            **compat.schedule_record(self.config),
            "runs": [r.to_dict() for r in self.runs],
            "sizes": self.sizes,
            "backend": self.backend,
            "dataset_info": {
                k: v for k, v in self.data.info.items() if isinstance(v, (str, int, float, bool))
            },
        }

    def execute(self, ctx: RunContext) -> TrainResult:
        """Train every run (see :func:`train`)."""
        config, data, backend = self.config, self.data, self.backend
        xp = get_xp(backend)
        xtr, ytr = data.x_train, data.y_train
        if config.max_train is not None:
            xtr, ytr = xtr[: config.max_train], ytr[: config.max_train]
        n_classes = data.n_classes
        rng = np.random.default_rng([config.seed, 1])
        W0 = initial_weights(self.sizes, config.init, rng, config.w_max)
        lrs = config.layer_lr(len(W0))
        # the data go to the backend's memory once per call (the GPU for cupy)
        eye = xp.eye(n_classes)
        xtr_d, ytr_d = to_device(xtr, xp), to_device(ytr, xp)
        xte_d, yte_d = to_device(data.x_test, xp), to_device(data.y_test, xp)
        writer = ctx.writer
        # runs found in a resumed file continue from their checkpoint (or start again)
        resumed = set(writer.labels) if writer is not None else set()
        if writer is not None:
            for r in self.runs:
                if r.label in resumed and writer.checkpoint(r.label) is not None:
                    continue
                writer.add_run(
                    r.label,
                    device=r.device_name,
                    rule=r.rule,
                    dataset=config.dataset,
                    epochs=config.epochs,
                    config={
                        "mapping": r.mapping,
                        "overrides": r.overrides,
                        "rule_options": r.rule_options,
                        "backend": backend,
                        **compat.schedule_record(config),
                    },
                    replace=True,
                )
        history, final, weights, arrays = {}, {}, {}, {}
        kind, _, per_block = compat.parse_schedule(compat.config_schedule(config))
        n_seen = xtr.shape[0] if kind == "epochs" else per_block  # presentations per block
        n_batches = math.ceil(n_seen / config.batch_size)
        for spec in self.runs:
            layers = build_layers(spec, config, W0)
            rule = (
                make_rule(spec, config)
                if spec.device != "software"
                else PulseRule.named("software")
            )
            net = eval_net = MLP(layers, config.activation, config.loss)
            if config.weight_noise > 0 and spec.device == "software":
                noise_rng = np.random.default_rng([config.seed, 4])
                noisy = noisy_layers(layers, config.weight_noise, noise_rng)
                net = MLP(noisy, config.activation, config.loss)
            # batch 1 on the CPU: fused presentations when every setting is covered (same numbers,
            # the same pulse and read counts, so metered runs take it too)
            fast = (
                online_trainer(net, rule, lrs)
                if config.batch_size == 1 and xp is np and net is eval_net
                else None
            )
            data_rng = np.random.default_rng([config.seed, 2])
            round_rng = np.random.default_rng([config.seed, 3])
            hist = {k: [] for k in TRAIN_METRICS}
            if self.energy is not None and EnergyTracker(layers, self.energy).active:
                hist.update({k: [] for k in ENERGY_METRICS})
            rngs = {"data": data_rng, "round": round_rng}
            first, step = resume_point(
                writer,
                spec.label,
                resumed,
                hist,
                partial(restore_checkpoint, layers=layers, rngs=rngs),
            )
            # metered from the (restored) state on: a resumed run meters the epochs it runs
            meter = EnergyTracker(layers, self.energy) if self.energy is not None else None
            bar = ctx.bar(config.epochs * n_batches, spec.label)
            bar.update(first * n_batches)
            warned, sat0 = False, sum(saturation(layers))
            for _epoch in range(first, config.epochs):
                t0 = time.perf_counter()
                # accumulated where the arrays live: no host round trip per step for them
                correct = 0
                loss_sum = 0.0
                pulses = refreshes = 0
                order = compat.block_orders(
                    compat.config_schedule(config),
                    xtr.shape[0],
                    config.batch_size,
                    data_rng,
                    batches,
                )
                perm = to_device(np.concatenate(order), xp)  # one copy per epoch
                if fast is not None:
                    correct, loss_sum, pulses, refreshes = fast.epoch(
                        xtr_d, ytr_d, eye, perm, step, bar
                    )
                    step += len(order)
                    order = []
                start = 0
                for idx in order:
                    ib = perm[start : start + idx.size]
                    start += idx.size
                    yb = ytr_d[ib]
                    acts, zs = net.forward(xtr_d[ib])
                    loss, d_out = net.loss_and_delta(acts[-1], eye[yb])
                    correct = correct + xp.sum(acts[-1].argmax(axis=1) == yb)
                    loss_sum = loss_sum + loss.sum()
                    deltas = net.backward(acts, zs, d_out)
                    for li, layer in enumerate(layers):
                        st = rule.update(
                            layer, acts[li], deltas[li], lrs[li], rng=round_rng, step=step
                        )
                        pulses += st["pulses"]
                        refreshes += st["refreshes"]
                    step += 1
                    bar.update(1)
                correct, loss_sum = int(correct), float(loss_sum)
                elapsed = time.perf_counter() - t0
                pred, outp = eval_net.predict(xte_d)
                tl, _ = net.loss_and_delta(outp, eye[yte_d])
                metrics = epoch_metrics(
                    layers,
                    n_seen,
                    correct,
                    loss_sum,
                    xp.mean(pred == yte_d),
                    tl.mean(),
                    pulses,
                    refreshes,
                    elapsed,
                )
                warned = check_epoch(
                    spec.label, _epoch + 1, metrics, config.lr, warned=warned, start=sat0
                )
                if meter is not None:
                    metrics.update(meter.epoch())
                for k, v in metrics.items():
                    hist[k].append(v)
                if writer is not None:  # the epoch and its checkpoint, atomically
                    ckpt = partial(run_checkpoint, _epoch + 1, step, layers, rngs)
                    write_epoch(writer, spec.label, metrics, ckpt if self.checkpoints else None)
            bar.close()
            history[spec.label] = hist
            final[spec.label] = final_stats(layers)
            if meter is not None and meter.active:
                final[spec.label]["energy"] = meter.final()
            weights[spec.label] = [asnumpy(layer.weights()) for layer in layers]
            arrays[spec.label] = layers
            if writer is not None and spec.label not in writer.completed:
                write_final(
                    writer, spec.label, final[spec.label], weights[spec.label], self.save_weights
                )
        return TrainResult(history, final, weights, arrays)

    def save_outputs(self, result: TrainResult, out: Path) -> list[Path]:
        """PNG figures (when :attr:`plots`) and ``results.md``; sets ``result.files``."""
        return save_report(result, out, plots=self.plots)


def _as_spec(r) -> RunSpec:
    if isinstance(r, RunSpec):
        return r
    if isinstance(r, str):
        return RunSpec(device=r) if r == "software" else RunSpec(device=r)
    if isinstance(r, (tuple, list)) and len(r) == 2:
        return RunSpec(device=r[0], rule=r[1])
    raise TypeError(
        f"runs must hold RunSpec objects, device names or (device, rule) pairs, got {r!r}"
    )
