"""Converters and weight grids: uniform quantizers and the low-bit QAT quantizer family.

:class:`UniformQuantizer` (:mod:`.converter`) is the converter the device arrays use for their
DAC and ADC. The quantizer family (``specs/quantizers.md`` sections 1-3, 5) shares one interface
(:class:`Quantizer`, :mod:`.base`): :class:`Uniform` (symmetric or affine, nearest or stochastic
rounding; :mod:`.uniform`), :class:`LSQ` (learned step size, with its gradient formulas as numpy
functions; :mod:`.lsq`), :class:`StatsQ` (the OFQ weight quantizer, scale ``2 mean|W_c|`` per
output channel, no zero level; :mod:`.statsq`) and :class:`LevelGrid` (the nearest entry of a
sorted table, e.g. the weight levels of a device preset; :mod:`.level_grid`). Everything here is
plain numpy with optional numba kernels (:mod:`.kernels`, bitwise equal; ``backend=`` is checked
by :func:`devices.backends.resolve` over :data:`devices.backends.CPU_BACKENDS`); the torch
straight-through versions live in :mod:`synapse_sim.nn.quant`.
"""

from __future__ import annotations

from .base import (
    AUTO_NUMBA_MIN_SIZE,
    BACKENDS,
    LSQ_MIN_STEP,
    QUANTIZER_BACKENDS,
    ROUNDING_MODES,
    STAT_MIN_SCALE,
    Quantizer,
)
from .converter import UniformQuantizer
from .level_grid import DEVICE_MAPPINGS, LEVEL_SCALINGS, LevelGrid
from .lsq import LSQ, lsq_bounds, lsq_fake_quant, lsq_gradients
from .statsq import StatsQ, statsq_scale
from .uniform import Uniform

__all__ = [
    "UniformQuantizer",
    "Quantizer",
    "Uniform",
    "LSQ",
    "StatsQ",
    "LevelGrid",
    "ROUNDING_MODES",
    "BACKENDS",
    "QUANTIZER_BACKENDS",
    "AUTO_NUMBA_MIN_SIZE",
    "LSQ_MIN_STEP",
    "STAT_MIN_SCALE",
    "LEVEL_SCALINGS",
    "DEVICE_MAPPINGS",
    "lsq_bounds",
    "lsq_fake_quant",
    "lsq_gradients",
    "statsq_scale",
]
