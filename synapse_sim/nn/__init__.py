"""The torch bridge: device-backed layers, model conversion and a hardware optimizer.

>>> import torch
>>> from synapse_sim.nn import DeviceSGD, convert
>>> model = torch.nn.Sequential(torch.nn.Linear(4, 3))
>>> hw = convert(model, device="ideal", rule="bidirectional")
>>> opt = DeviceSGD(hw, lr=0.1, rule="bidirectional")
>>> type(hw[0]).__name__
'DeviceLinear'

:class:`DeviceLinear` and :class:`DeviceConv2d` keep their weight matrix in a
:class:`devices.DeviceArray`; forward and input-gradient passes are array reads
(``matmul`` / ``rmatmul``), the weight update is done by :class:`DeviceSGD` through a
:class:`learning_rules.PulseRule`, and biases stay digital. :func:`convert` swaps the
``nn.Linear`` / ``nn.Conv2d`` layers of an existing model. Module and optimizer state dicts
carry the device state as tensors (``torch.load(..., weights_only=True)``).

CUDA tensors work with ``backend="cupy"`` (state in cupy arrays, tensors cross through DLPack
without copies; ``docs/GPU.md``); CPU backends take CPU tensors.

:func:`synapse_sim.compare` (module :mod:`synapse_sim.studies.compare`) trains a small CNN or MLP
in software and on device presets side by side (``synapse-sim compare``).
"""

from __future__ import annotations

import importlib

__all__ = [
    "DeviceLinear",
    "DeviceConv2d",
    "DeviceLayer",
    "DeviceSGD",
    "convert",
    "default_mapping",
    "SUPPORTED_LAYERS",
    "QKRAttention",
    "StatsQLinear",
    "ActQuant",
    "LevelGridFakeQuant",
    "level_grid_fake_quant",
]

#: Public name -> submodule. Loaded on first access, so that ``synapse_sim.studies.compare`` (the
#: ``synapse-sim compare`` parser) imports without torch.
_LAZY = {
    "DeviceLinear": ".layers",
    "DeviceConv2d": ".layers",
    "DeviceLayer": ".layers",
    "DeviceSGD": ".optim",
    "convert": ".conversion",
    "default_mapping": ".conversion",
    "SUPPORTED_LAYERS": ".conversion",
    "QKRAttention": ".attention",
    "StatsQLinear": ".attention",
    "ActQuant": ".attention",
    "LevelGridFakeQuant": ".quant",
    "level_grid_fake_quant": ".quant",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'synapse_sim.nn' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted([*globals(), *_LAZY])
