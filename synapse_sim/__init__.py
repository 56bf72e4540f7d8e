"""synapse_sim: the simulator a user drives.

Studies (:func:`train` beside a software twin, :func:`compare`, :func:`run_continual`,
:func:`run_qat`, :func:`run_bars`, all on :func:`run_study`), datasets, the crash-safe HDF5
store, sweeps, plots and the ``synapse-sim`` command line (docs/ARCHITECTURE.md). Names that
import torch (the bridge, compare, QAT) are imported lazily (first use), so that
``import synapse_sim`` does not import torch.
"""

from __future__ import annotations

import importlib

from .data import Dataset, batches, dataset_names, load_dataset
from .models import MLP
from .results import ResultsWriter, format_table, read_results, summary_records
from .studies.bars import BarsConfig, run_bars
from .studies.base import Study, run_study
from .studies.continual import ContinualConfig, run_continual
from .studies.train import RunSpec, TrainConfig, TrainResult, train
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
    "Study",
    "run_study",
    "ContinualConfig",
    "run_continual",
    "BarsConfig",
    "run_bars",
    "CompareConfig",
    "QATConfig",
    "run_qat",
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
    "CompareConfig": ".studies.compare",
    "QATConfig": ".studies.qat",
    "run_qat": ".studies.qat",
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
