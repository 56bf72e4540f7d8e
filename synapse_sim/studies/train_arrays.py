"""The pieces of one training run: its weight arrays, its pulse rule and their statistics.

:func:`build_layers` programs the device arrays (or the software twin's float weights) of a
:class:`~synapse_sim.studies.train_config.RunSpec`, :func:`make_rule` builds its
:class:`learning_rules.PulseRule`; :func:`epoch_metrics` (the :data:`TRAIN_METRICS` of one epoch,
shared with :func:`synapse_sim.compare`), :func:`saturation` and :func:`final_stats` read them.
"""

from __future__ import annotations

import numpy as np

import devices
from devices.xp import get_xp, to_device
from learning_rules import FloatWeights, PulseRule, program_form

from . import compat
from .train_config import RunSpec, TrainConfig

__all__ = [
    "TRAIN_METRICS",
    "build_layers",
    "make_rule",
    "saturation",
    "epoch_metrics",
    "final_stats",
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
