"""synapse_sim: the simulator a user drives.

Training beside a software twin (:func:`train`), datasets, the crash-safe HDF5 store, plots and
the ``synapse-sim`` command line. Names from the torch bridge are imported lazily (first use),
so that ``import synapse_sim`` does not import torch.
"""

from __future__ import annotations

import importlib

from .data import Dataset, batches, dataset_names, load_dataset
from .results import ResultsWriter, format_table, read_results, summary_records
from .studies.train import MLP, RunSpec, TrainConfig, TrainResult, train
from .sweep import aggregate, load_spec, read_sweep, run_sweep, sweep_records

__all__ = [
    "Dataset",
    "batches",
    "dataset_names",
    "load_dataset",
    "ResultsWriter",
    "read_results",
    "summary_records",
    "format_table",
    "MLP",
    "RunSpec",
    "TrainConfig",
    "TrainResult",
    "train",
    "DeviceLinear",
    "DeviceConv2d",
    "DeviceSGD",
    "convert",
    "compare",
    "load_spec",
    "run_sweep",
    "read_sweep",
    "sweep_records",
    "aggregate",
]

#: Public names provided by submodules that import heavy dependencies (torch), loaded on
#: first attribute access: ``name -> module``.
_LAZY: dict[str, str] = {
    "DeviceLinear": ".nn",
    "DeviceConv2d": ".nn",
    "DeviceSGD": ".nn",
    "convert": ".nn",
    "compare": ".studies.compare",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'synapse_sim' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted([*globals(), *_LAZY])
