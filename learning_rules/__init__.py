"""Learning rules that run on float weights and on device arrays alike.

Rules talk to weights through the complete :class:`WeightArray` protocol (reads, pulses, pulse
requests, state counts, refresh, mapping, saturation); :class:`FloatWeights` is the software
baseline and :class:`devices.DeviceArray` the hardware (completed by :class:`DeviceWeights`).
Optimizers (SGD ... CLASSP, one definition each) live in :mod:`learning_rules.optimizers`. This
package never imports ``synapse_sim``.
"""

from .pulse_bp import (
    DEFAULT_MAPPING,
    ROUNDINGS,
    RULES,
    PulseRule,
    default_mapping,
    fit_request,
    program_form,
    pulse_counts,
    resolve_mapping,
    route_counts,
)
from .refresh import REFRESH_POLICIES, refreshes_by_weight
from .weights import DeviceWeights, FloatWeights, WeightArray, as_weight_array, route

__all__ = [
    "PulseRule",
    "RULES",
    "ROUNDINGS",
    "DEFAULT_MAPPING",
    "default_mapping",
    "resolve_mapping",
    "program_form",
    "pulse_counts",
    "route",
    "route_counts",
    "REFRESH_POLICIES",
    "refreshes_by_weight",
    "fit_request",
    "FloatWeights",
    "DeviceWeights",
    "WeightArray",
    "as_weight_array",
]
