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
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

import devices
from devices import backends
from devices.fitting import model_from_dict, model_to_dict, with_overrides
from devices.validation import did_you_mean
from devices.xp import asnumpy, get_xp, to_device
from learning_rules import (
    REFRESH_POLICIES,
    RULES,
    FloatWeights,
    PulseRule,
    program_form,
    resolve_mapping,
)

from ..data.datasets import Dataset, batches, load_dataset
from ..models.mlp import ACTIVATIONS, INITS, LOSSES, MLP, initial_weights
from ..models.noisy import noisy_layers
from ..models.online import online_trainer
from . import compat
from .base import RunContext, field_errors, run_study
from .checkpoint import restore_checkpoint, resume_point, run_checkpoint, write_epoch
from .energy import ENERGY_METRICS, EnergyTracker, energy_table, resolve_energy
from .health import check_epoch

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

#: Per-epoch metrics of :func:`train` (and of :func:`synapse_sim.compare`).
TRAIN_METRICS = (
    "train_accuracy",
    "train_loss",
    "test_accuracy",
    "test_loss",
    "pulses",
    "refreshes",
    "saturated_high",
    "saturated_low",
    "epoch_time",
)
#: Array backends of the trainers (``devices.DeviceArray``'s ``backend``): ``auto`` is numba on
#: the CPU, ``cupy`` the GPU, ``cuda-sim`` the GPU code path under numba's CUDA simulator (tests).
BACKENDS = backends.ARRAY_BACKENDS


def _err(name, value, allowed):
    exc = ValueError(f"{name} must be {allowed}, got {value!r}")
    exc.field = name  # the config field (the command line names its option)
    raise exc


def resolve_backend(backend: str) -> str:
    """Check an array backend name and that it can run here; return the resolved name.

    Parameters
    ----------
    backend : {"auto", "numpy", "numba", "cupy", "cuda-sim"}

    Returns
    -------
    str
        ``numba`` for ``auto`` (the CPU, also on a GPU machine), otherwise ``backend``.

    Raises
    ------
    ValueError
        Unknown name (with the choices), or ``cupy``/``cuda-sim`` unavailable here (with the
        reason: cupy not installed, no usable GPU, ...). See :func:`devices.backends.resolve`.
    """
    return backends.resolve(backend, BACKENDS)


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """What is trained, on what, for how long (shared by all runs of an experiment).

    Parameters
    ----------
    dataset : str
        ``mnist5k``, ``digits`` or ``idx:PATH``.
    neurosim_input : bool or None
        NeuroSim's input format (central 20x20 crop, binarized at 0.5); 28x28 data only.
        None (default): on for every dataset except ``digits`` (8x8); recorded resolved
        (:attr:`uses_neurosim_input`). ``synapse-sim train`` uses the same default.
    hidden : tuple of int
        Hidden layer sizes (NeuroSim reference: ``(100,)``).
    activation : {"sigmoid", "relu"}
        Hidden activation.
    loss : {"sse", "ce"}
        Sum of squared errors on sigmoid outputs (NeuroSim) or softmax cross-entropy.
    batch_size : int
    epochs : int
    lr : tuple of float
        Learning rate per weight layer (one value is used for every layer).
    init : {"neurosim", "uniform"}
        Initial weights: uniform over {-1, -2/3, ..., 1} (times ``w_max``), or Glorot-uniform.
    w_max : float
        Weight range [-w_max, w_max] for devices and for the clipped software twin.
    seed : int
        Seed of the initial weights, the data order, the rounding draws and the device draws.
    device_seed : int or None
        Seed of the device instances (default: derived from ``seed``).
    rounding : {"nearest", "stochastic"}
    theta : float
    n_max : int or None
    refresh_threshold : float
    refresh_mode : {"ideal", "open_loop", "verify"}
    refresh : {"threshold", "hysteresis", "preemptive"}
        Refresh policy of unidirectional rules (:class:`learning_rules.PulseRule`,
        ``docs/REFRESH.md``); the default is the spec's trigger. Recorded only when not the
        default.
    refresh_margin : float
        Hysteresis margin of ``hysteresis`` / ``preemptive`` (fraction of the range, below
        ``refresh_threshold``). Recorded only when not the default.
    bl : int
        Stochastic pulse-train length.
    max_train : int or None
        Use only the first ``max_train`` training samples (quick runs).
    backend : {"auto", "numpy", "numba", "cupy", "cuda-sim"}
        Array backend of every device array (``auto``: numba on the CPU; ``cupy``: state and
        training on the GPU; ``cuda-sim``: the GPU code path under numba's CUDA simulator, for
        tests). The name is checked here; whether it can run is checked when training starts.
    weight_noise : float
        Hardware-aware training of the software twin: the forward and backward reads of every
        training step see Gaussian weight noise of this standard deviation relative to the
        layer's largest weight (:class:`synapse_sim.models.noisy.NoisyWeights`); test accuracy
        is measured without it. 0 (default): off (and left out of the recorded config).
    schedule : str or None
        ``"epochs:E"`` (one shuffled pass per epoch; sets ``epochs`` and is stored as None) or
        ``"draws:BxN"`` (``B`` blocks of ``N`` images drawn with replacement, the test set
        evaluated after every block, metrics per block; NeuroSim: ``draws:125x8000``; sets
        ``epochs = B``). None: ``epochs:<epochs>``. ``results.h5`` records the schedule that
        ran (root config ``schedule``; :mod:`synapse_sim.studies.compat`).
    dac_bits : int or None
        A uniform DAC on ``[0, 1]`` at the input of every device array (forward read).
    adc_bits : int or None
        NeuroSim's partial-sum ADC on the column sums of every device array (forward read;
        :class:`devices.converters.PartialSumADC`).
    read : {"weight", "current"}
        Forward read scale of the device arrays (``current``: column minus reference current,
        half the weighted sum on the reference mapping; :mod:`devices.converters`).
    neurosim_compat : bool
        Train the device runs the way MLP+NeuroSim V3.0's hardware does (binarized inputs,
        1-bit DAC, current-mode read, 8-bit partial-sum ADC, converters on the forward read
        only, NeuroSim's pulse counts and initial programming; ``docs/NEUROSIM.md``). Needs
        ``loss="sse"``, ``activation="sigmoid"``, ``rounding="nearest"``; sets
        ``neurosim_input``, ``read``, and ``dac_bits=1`` / ``adc_bits=8`` unless given. The
        software twin stays the float network (NeuroSim's software mode).
    """

    dataset: str = "mnist5k"
    neurosim_input: bool | None = None
    hidden: tuple = (100,)
    activation: str = "sigmoid"
    loss: str = "sse"
    batch_size: int = 1
    epochs: int = 5
    lr: tuple = (0.4, 0.2)
    init: str = "neurosim"
    w_max: float = 1.0
    seed: int = 0
    device_seed: int | None = None
    rounding: str = "nearest"
    theta: float = 0.5
    n_max: int | None = None
    refresh_threshold: float = 0.9
    refresh_mode: str = "verify"
    refresh: str = "threshold"
    refresh_margin: float = 0.1
    bl: int = 31
    max_train: int | None = None
    backend: str = "auto"
    weight_noise: float = 0.0
    schedule: str | None = None
    dac_bits: int | None = None
    adc_bits: int | None = None
    read: str = "weight"
    neurosim_compat: bool = False

    def __post_init__(self):
        for k, v in compat.compat_fields(self).items():
            object.__setattr__(self, k, v)
        hidden = self.hidden
        if isinstance(hidden, (str, bytes)) or not hasattr(hidden, "__iter__"):
            _err("hidden", hidden, "a list of positive layer sizes, e.g. [100] or [256, 128]")
        if any(isinstance(h, bool) or not isinstance(h, (int, np.integer)) for h in hidden):
            _err("hidden", hidden, "a list of positive integer layer sizes, e.g. [100]")
        object.__setattr__(self, "hidden", tuple(int(h) for h in hidden))
        if any(h < 1 for h in self.hidden):
            _err("hidden", self.hidden, "positive layer sizes")
        lr = self.lr if isinstance(self.lr, (tuple, list)) else (self.lr,)
        object.__setattr__(self, "lr", tuple(float(v) for v in lr))
        if not self.lr or any(not (v > 0 and math.isfinite(v)) for v in self.lr):
            _err("lr", self.lr, "positive finite learning rates")
        if len(self.lr) not in (1, len(self.hidden) + 1):
            _err("lr", self.lr, f"one value or {len(self.hidden) + 1} (one per layer)")
        if self.activation not in ACTIVATIONS:
            _err("activation", self.activation, f"one of {ACTIVATIONS}")
        if self.loss not in LOSSES:
            _err("loss", self.loss, f"one of {LOSSES}")
        if self.init not in INITS:
            _err("init", self.init, f"one of {INITS}")
        for name in ("batch_size", "epochs"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                _err(name, v, "an integer >= 1")
        if not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            _err("seed", self.seed, "an integer >= 0")
        ds = self.device_seed
        if ds is not None and (isinstance(ds, bool) or not isinstance(ds, (int, np.integer))):
            _err("device_seed", ds, "None or an integer >= 0")
        if ds is not None and ds < 0:
            _err("device_seed", ds, "None or an integer >= 0")
        if self.max_train is not None and self.max_train < 1:
            _err("max_train", self.max_train, "None or an integer >= 1")
        if not self.w_max > 0:
            _err("w_max", self.w_max, "> 0")
        if self.refresh not in REFRESH_POLICIES:
            _err("refresh", self.refresh, f"one of {REFRESH_POLICIES}")
        rm, allowed = (
            self.refresh_margin,
            f"a number in (0, {self.refresh_threshold}) (below refresh_threshold)",
        )
        if (
            isinstance(rm, bool)
            or not isinstance(rm, (int, float))
            or not 0 < rm < self.refresh_threshold
        ):
            _err("refresh_margin", rm, allowed)
        if not (isinstance(self.weight_noise, (int, float)) and 0 <= self.weight_noise < 10):
            _err("weight_noise", self.weight_noise, "a number in [0, 10)")
        if not isinstance(self.backend, str) or self.backend not in BACKENDS:
            with field_errors("backend"):
                resolve_backend(self.backend)  # raises with the choices

    def layer_lr(self, n_layers: int) -> tuple:
        """Learning rate of each of ``n_layers`` layers."""
        return self.lr * n_layers if len(self.lr) == 1 else self.lr

    @property
    def uses_neurosim_input(self) -> bool:
        """Whether the data are read in NeuroSim's format (``neurosim_input`` resolved)."""
        return compat.resolve_neurosim_input(self)

    def to_dict(self) -> dict:
        """Plain dict (JSON-able); ``neurosim_input`` resolved, ``weight_noise`` and the NeuroSim
        fields only where they are not the default (so the recorded config of other runs is what
        it was)."""
        d = compat.drop_defaults(dataclasses.asdict(self))
        if not d["weight_noise"]:
            d.pop("weight_noise")
        for k, default in (("refresh", "threshold"), ("refresh_margin", 0.1)):
            if d[k] == default:  # recorded only when set (older records stay as they were)
                d.pop(k)
        d["neurosim_input"] = self.uses_neurosim_input
        return d


@dataclass(frozen=True, kw_only=True)
class RunSpec:
    """One configuration trained side by side with the others.

    Parameters
    ----------
    device : str or devices.DeviceModel
        ``"software"`` (float twin), a preset name of :func:`devices.names`, or a device model
        (e.g. ``devices.fit(...).model``, a fitted device; a dict of
        :func:`devices.fitting.model_to_dict` is turned back into the model).
    rule : str
        ``software``, ``bidirectional``, ``unidirectional``, ``stochastic`` or ``adaptive``.
    mapping : {"reference", "differential"} or None
        Default: ``reference`` for bidirectional and stochastic (NeuroSim's scheme),
        ``differential`` for unidirectional and adaptive.
    overrides : dict
        Device overrides passed to :func:`devices.get` (e.g. ``{"c2c_sigma": 0}``; for a model,
        :func:`devices.fitting.with_overrides`).
    rule_options : dict
        Extra :class:`learning_rules.PulseRule` fields.
    label : str or None
        Name of the run in the results (default ``device-rule`` or ``software``).
    """

    device: str | devices.DeviceModel
    rule: str = "bidirectional"
    mapping: str | None = None
    overrides: dict = field(default_factory=dict)
    rule_options: dict = field(default_factory=dict)
    label: str | None = None

    def __post_init__(self):
        if isinstance(self.device, Mapping):  # a model saved by to_dict()
            object.__setattr__(self, "device", model_from_dict(self.device))
        is_model = isinstance(self.device, devices.DeviceModel)
        if self.device == "software":
            object.__setattr__(self, "rule", "software")
        else:
            names = devices.names()
            if not is_model and self.device not in names:
                hint = did_you_mean(self.device, names)
                raise ValueError(
                    f"device must be 'software' or one of {', '.join(names)}, got "
                    f"{self.device!r}{hint}"
                )
            if self.rule not in RULES or self.rule == "software":
                raise ValueError(
                    f"rule for a device must be one of "
                    f"{', '.join(r for r in RULES if r != 'software')}, got "
                    f"{self.rule!r}"
                )
            # the rule owns its default mapping and the mappings it accepts
            object.__setattr__(self, "mapping", resolve_mapping(self.rule, self.mapping))
            self.device_model()  # validate overrides now
        if self.label is None:
            lab = "software" if self.device == "software" else f"{self.device_name}-{self.rule}"
            object.__setattr__(self, "label", lab)

    @property
    def device_name(self) -> str:
        """The preset name, ``software``, or a model's name (``custom`` when it has none)."""
        if isinstance(self.device, devices.DeviceModel):
            return self.device.name or "custom"
        return self.device

    def device_model(self) -> devices.DeviceModel:
        """The device model of the run, overrides applied."""
        if isinstance(self.device, devices.DeviceModel):
            return with_overrides(self.device, **self.overrides)
        return devices.get(self.device, **self.overrides)

    def to_dict(self) -> dict:
        """Plain dict (JSON-able; a device model as :func:`devices.fitting.model_to_dict`)."""
        if isinstance(self.device, devices.DeviceModel):
            d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
            return copy.deepcopy({**d, "device": model_to_dict(self.device)})
        return dataclasses.asdict(self)


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes
    ----------
    history : dict
        ``label -> {metric: list per epoch}``.
    final : dict
        ``label -> dict`` of final statistics.
    weights : dict
        ``label -> list`` of final weight matrices (numpy arrays, also for the GPU backend).
    arrays : dict
        ``label -> list`` of the trained weight arrays (device arrays or float weights).
    path : Path or None
        The results file, if one was written.
    table : str
        The markdown table of ``results.md`` (when the report was written).
    files : list of Path
        Files written (results file, figures, ``results.md``).
    """

    history: dict
    final: dict
    weights: dict
    arrays: dict
    path: Path | None = None
    table: str = ""
    files: list = field(default_factory=list)


def _device_seed(config: TrainConfig, layer: int) -> int:
    base = config.device_seed if config.device_seed is not None else config.seed
    return int(np.random.SeedSequence([int(base), 7, layer]).generate_state(1)[0])


def build_layers(spec: RunSpec, config: TrainConfig, W0):
    """Weight arrays of one run, programmed with the initial weights ``W0`` (on the backend of
    ``config``: the software twin's float weights are cupy arrays for ``backend="cupy"``)."""
    if spec.device == "software":
        xp = get_xp(config.backend)
        return [FloatWeights(to_device(W, xp), w_max=config.w_max) for W in W0]
    model = spec.device_model()
    layers = []
    form = program_form(spec.rule, spec.mapping)
    for i, W in enumerate(W0):
        arr = devices.DeviceArray(
            W.shape,
            model,
            mapping=spec.mapping,
            seed=_device_seed(config, i),
            w_max=config.w_max,
            backend=config.backend,
            **compat.array_options(config, spec),
        )
        compat.program_initial(arr, W, form, config.neurosim_compat)
        layers.append(arr)
    return layers


def make_rule(spec: RunSpec, config: TrainConfig) -> PulseRule:
    """The :class:`learning_rules.PulseRule` of a run (config defaults, then rule options)."""
    opts = {
        "rounding": config.rounding,
        "theta": config.theta,
        "refresh_threshold": config.refresh_threshold,
        "refresh_mode": config.refresh_mode,
        "refresh": config.refresh,
        "refresh_margin": config.refresh_margin,
        "bl": config.bl,
    }
    if config.n_max is not None:
        opts["n_max"] = config.n_max
    opts.update(spec.rule_options)
    if spec.rule == "adaptive":
        opts.pop("n_max", None) if config.n_max is None else None
    return PulseRule.named(spec.rule, **opts)


def saturation(layers) -> tuple[float, float]:
    """Fractions of devices saturated high and low over all device arrays of ``layers``
    (``(0.0, 0.0)`` for float weights)."""
    hi = lo = n = 0.0
    for layer in layers:
        if hasattr(layer, "saturation"):
            s = layer.saturation()
            k = layer.n_devices
            hi += s["high"] * k
            lo += s["low"] * k
            n += k
    return (hi / n, lo / n) if n else (0.0, 0.0)


def epoch_metrics(
    layers, n_train: int, correct, loss_sum, test_accuracy, test_loss, pulses, refreshes, elapsed
) -> dict:
    """The :data:`TRAIN_METRICS` of one epoch (shared by :func:`train` and
    :func:`synapse_sim.compare`): training accuracy and mean loss from the epoch's sums over
    ``n_train`` samples, the test numbers, the pulses and refreshes sent, the saturated
    fractions of ``layers`` now, and the epoch's wall time."""
    sat_hi, sat_lo = saturation(layers)
    return {
        "train_accuracy": correct / n_train,
        "train_loss": loss_sum / n_train,
        "test_accuracy": float(test_accuracy),
        "test_loss": float(test_loss),
        "pulses": float(pulses),
        "refreshes": float(refreshes),
        "saturated_high": sat_hi,
        "saturated_low": sat_lo,
        "epoch_time": elapsed,
    }


def final_stats(layers) -> dict:
    """Device counters and saturation of every device array of ``layers`` (``layer<i>``
    dicts) and their totals (``total_<counter>``); empty for float weights."""
    stats = {}
    totals = {}
    for i, layer in enumerate(layers):
        if hasattr(layer, "counters"):
            c = layer.counters()
            s = layer.saturation()
            c["saturated_high"] = s["high"]
            c["saturated_low"] = s["low"]
            stats[f"layer{i}"] = c
            for k, v in c.items():
                if k.startswith("saturated"):
                    continue
                totals[k] = totals.get(k, 0) + v
    stats.update({f"total_{k}": v for k, v in totals.items()})
    return stats


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
            # batch 1 on the CPU: fused presentations when every setting is covered (same numbers;
            # the fused kernel does not count array reads, so metered runs take the general path)
            fast = (
                online_trainer(net, rule, lrs)
                if config.batch_size == 1 and xp is np and net is eval_net and self.energy is None
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


def write_final(writer, label: str, final: dict, weights: list, save_weights: bool, biases=()):
    """Final statistics (and, when ``save_weights``, the weight matrices as ``layer<i>`` and
    any ``biases`` as ``bias<i>``) of run ``label``, which is then marked complete."""
    w = {f"layer{i}": W for i, W in enumerate(weights)} if save_weights else None
    w = w if w is None else {**w, **{f"bias{i}": b for i, b in enumerate(biases)}}
    writer.set_final(label, final, weights=w)
    writer.mark_complete(label)


def markdown_report(results_path) -> str:
    """Markdown table of a results file in the train layout (one row per configuration)."""
    from ..results.store import format_table, read_results, summary_records

    res = read_results(results_path)
    recs = summary_records(res)
    cfg = res["config"].get("train", {})
    head = (
        f"Dataset `{cfg.get('dataset')}`, network {res['config'].get('sizes')}, "
        f"{compat.schedule_words(cfg)}, batch {cfg.get('batch_size')}, lr {cfg.get('lr')}, "
        f"seed {res['seed']}.\n\n"
    )
    return head + format_table(recs) + "\n" + _energy_section(res)


def _energy_section(res) -> str:
    """The energy table of a file whose runs recorded energy ("" otherwise)."""
    table = energy_table(res)
    return "\n" + table + "\n" if table else ""


def save_report(result: TrainResult, out: Path, *, plots: bool = True) -> list[Path]:
    """Write the PNG figures (``plots``) and ``results.md`` of a train-layout result into
    ``out``; return the paths written (the results file first) and keep them in
    ``result.files``."""
    from ..results.plots import save_run_plots

    files = [result.path]
    if plots:
        files += save_run_plots(result, out)
    table = markdown_report(result.path)
    (Path(out) / "results.md").write_text(table)
    files.append(Path(out) / "results.md")
    result.table = table
    result.files = files
    return files


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
