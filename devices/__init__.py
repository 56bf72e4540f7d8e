"""Synapse-device physics: device models, presets, variability, device arrays and their kernels.

This package imports neither ``learning_rules`` nor ``synapse_sim``, and never imports torch or
cupy.

>>> import devices
>>> arr = devices.DeviceArray((10, 20), devices.get("epiram"), seed=0)
>>> arr.weights().shape
(10, 20)
"""

from .array import MAPPINGS, METHODS, PROGRAM_MODES, DeviceArray
from .converters import PartialSumADC
from .fitting import FitResult, fit, fit_csv
from .models import DeviceModel, ExpDevice, LinearDevice, LUTDevice, StepDevice
from .nl import a_from_nl, nl_from_a, normalized_response
from .plotting import plot_array_state, plot_response
from .presets import get, info, names, published
from .quantizers import (
    LSQ,
    QUANTIZER_BACKENDS,
    ROUNDING_MODES,
    LevelGrid,
    Quantizer,
    StatsQ,
    Uniform,
    UniformQuantizer,
    lsq_bounds,
    lsq_fake_quant,
    lsq_gradients,
    statsq_scale,
)
from .variability import (
    CycleToCycle,
    DeviceToDevice,
    Drift,
    Endurance,
    ReadNoise,
    Stuck,
    Variability,
)

__all__ = [
    "DeviceArray",
    "MAPPINGS",
    "METHODS",
    "PROGRAM_MODES",
    "DeviceModel",
    "ExpDevice",
    "LinearDevice",
    "LUTDevice",
    "StepDevice",
    "a_from_nl",
    "nl_from_a",
    "normalized_response",
    "plot_response",
    "plot_array_state",
    "get",
    "info",
    "names",
    "published",
    "UniformQuantizer",
    "PartialSumADC",
    "Quantizer",
    "Uniform",
    "LSQ",
    "StatsQ",
    "LevelGrid",
    "QUANTIZER_BACKENDS",
    "ROUNDING_MODES",
    "lsq_bounds",
    "lsq_fake_quant",
    "lsq_gradients",
    "statsq_scale",
    "Variability",
    "DeviceToDevice",
    "CycleToCycle",
    "Stuck",
    "ReadNoise",
    "Drift",
    "Endurance",
    "fit",
    "fit_csv",
    "FitResult",
]
