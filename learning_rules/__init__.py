"""Learning rules that run on float weights and on device arrays alike.

Rules talk to weights through :class:`WeightArray` (``weights``, ``matmul``, ``rmatmul``,
``pulse``, ``nominal_step``, ``program``, ``refresh``); :class:`FloatWeights` is the software
baseline and :class:`devices.DeviceArray` the hardware. This package never imports
``synapse_sim``.
"""

from .pulse_bp import ROUNDINGS, RULES, PulseRule, fit_request, pulse_counts, route_counts
from .weights import FloatWeights, WeightArray

__all__ = [
    "PulseRule",
    "RULES",
    "ROUNDINGS",
    "pulse_counts",
    "route_counts",
    "fit_request",
    "FloatWeights",
    "WeightArray",
]
