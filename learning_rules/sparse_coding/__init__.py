"""Probabilistic sparse coding (ProSper's models with Expectation Truncation) and LCA.

``specs/sparse_coding.md``: :class:`BSC`, :class:`TSC`, :class:`DSC`, :class:`MCA`,
:class:`MMCA` and :class:`GSC` trained with Expectation Truncation and deterministic annealing
(shared machinery in :class:`ETModel`; Dask arrays are processed chunk by chunk; the dictionary
may live on a :class:`devices.DeviceArray`), the bars test (:func:`bars_dictionary`,
:func:`bars_data`, :func:`match_fields`), and LCA sparse inference (:func:`lca`) on float weights
or on a :class:`devices.DeviceArray`.
"""

from ._base import ETModel, StateSet
from ._kernels import (
    log_joint_linear,
    log_joint_linear_numba,
    log_joint_linear_reference,
    log_joint_max_numba,
    log_joint_max_reference,
    max_stats_numba,
    max_stats_reference,
)
from ._kernels_gsc import gsc_estep_numba, gsc_estep_reference
from .bars import (
    BARS_SETTINGS,
    RECOVERY_THRESHOLD,
    bars_data,
    bars_dictionary,
    fields_mosaic,
    match_fields,
    plot_fields,
)
from .bsc import BSC, TSC, LinearET, multi_cause_states, prior_mass
from .dsc import DSC, dsc_schedule
from .gsc import GSC, PSI_TYPES, SIGMA_TYPES, gsc_schedule
from .lca import lca, lca_dictionary, soft_threshold
from .mca import MCA, MMCA, W_TOL, max_superposition, mca_schedule, rho_of_T
from .schedule import SCHEDULE_DEFAULTS, Schedule, bsc_schedule, tsc_schedule

#: Estimator class of each model name.
MODELS = {"bsc": BSC, "tsc": TSC, "dsc": DSC, "mca": MCA, "mmca": MMCA, "gsc": GSC}

__all__ = [
    "BSC",
    "TSC",
    "DSC",
    "MCA",
    "MMCA",
    "GSC",
    "MODELS",
    "ETModel",
    "LinearET",
    "StateSet",
    "SIGMA_TYPES",
    "PSI_TYPES",
    "W_TOL",
    "Schedule",
    "SCHEDULE_DEFAULTS",
    "bsc_schedule",
    "tsc_schedule",
    "dsc_schedule",
    "mca_schedule",
    "gsc_schedule",
    "rho_of_T",
    "max_superposition",
    "multi_cause_states",
    "prior_mass",
    "log_joint_linear",
    "log_joint_linear_reference",
    "log_joint_linear_numba",
    "log_joint_max_reference",
    "log_joint_max_numba",
    "max_stats_reference",
    "max_stats_numba",
    "gsc_estep_reference",
    "gsc_estep_numba",
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
