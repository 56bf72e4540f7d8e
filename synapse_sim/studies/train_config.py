"""The configuration of a :func:`~synapse_sim.studies.train.train` experiment.

:class:`TrainConfig` (data, network, schedule, seed; shared by every run) and :class:`RunSpec`
(one device preset or model, rule, mapping and overrides), both frozen and self-validating, and
the array backend check :func:`resolve_backend`.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

import devices
from devices import backends
from devices.fitting import model_from_dict, model_to_dict, with_overrides
from devices.validation import did_you_mean
from learning_rules import REFRESH_POLICIES, RULES, resolve_mapping

from ..models.mlp import ACTIVATIONS, INITS, LOSSES
from . import compat
from .base import field_errors

__all__ = ["BACKENDS", "TrainConfig", "RunSpec", "resolve_backend"]

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
        if (
            isinstance(self.seed, bool)
            or not isinstance(self.seed, (int, np.integer))
            or self.seed < 0
        ):
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
