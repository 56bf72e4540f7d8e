"""Probabilistic sparse coding (ProSper's models with Expectation Truncation) and LCA.

``specs/sparse_coding.md``: :class:`BSC` and :class:`TSC` (Binary / Ternary Sparse Coding trained
with Expectation Truncation and deterministic annealing), the bars test (:func:`bars_dictionary`,
:func:`bars_data`, :func:`match_fields`), and LCA sparse inference (:func:`lca`) on float weights
or on a :class:`devices.DeviceArray`.
"""

from ._kernels import log_joint_linear, log_joint_linear_numba, log_joint_linear_reference
from .bars import (
    BARS_SETTINGS,
    RECOVERY_THRESHOLD,
    bars_data,
    bars_dictionary,
    fields_mosaic,
    match_fields,
    plot_fields,
)
from .bsc import BSC, TSC, multi_cause_states, prior_mass
from .lca import lca, lca_dictionary, soft_threshold
from .schedule import SCHEDULE_DEFAULTS, Schedule, bsc_schedule, tsc_schedule

__all__ = [
    "BSC",
    "TSC",
    "Schedule",
    "SCHEDULE_DEFAULTS",
    "bsc_schedule",
    "tsc_schedule",
    "multi_cause_states",
    "prior_mass",
    "log_joint_linear",
    "log_joint_linear_reference",
    "log_joint_linear_numba",
    "BARS_SETTINGS",
    "RECOVERY_THRESHOLD",
    "bars_dictionary",
    "bars_data",
    "match_fields",
    "fields_mosaic",
    "plot_fields",
    "lca",
    "lca_dictionary",
    "soft_threshold",
]
