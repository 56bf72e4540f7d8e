"""``synapse-sim demo``: the main job (NeuroSim's network, software vs four presets x two rules)."""

from __future__ import annotations

from .common import output_dir, show_progress
from .train import add_backend_option, report

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> None:
    """Register ``synapse-sim demo``."""
    p = subparsers.add_parser(
        "demo",
        help="the main job: software vs four presets, bidirectional vs unidirectional",
        description="Train NeuroSim's 400-100-10 network on MNIST-5k in software and on the "
        "ideal, epiram, ag_a_si and pcmo presets with the bidirectional and "
        "unidirectional rules; writes results.h5, accuracy.png and results.md.",
    )
    p.add_argument("--out", default="runs/demo", metavar="DIR", help="output folder")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default 5)")
    add_backend_option(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    """Run ``synapse-sim demo``."""
    import dataclasses

    from ..studies.base import run_study
    from ..studies.experiments import DEMO_CONFIG, demo_runs
    from ..studies.train import TrainStudy, resolve_backend

    changes = {
        k: v for k, v in (("backend", args.backend), ("epochs", args.epochs)) if v is not None
    }
    config = dataclasses.replace(DEMO_CONFIG, **changes)
    resolve_backend(config.backend)
    out = output_dir(args.out, "--out")
    study = TrainStudy(config, demo_runs())
    result = run_study(study, out=out, progress=show_progress(args.quiet))
    note = ideal_note(result.history)
    if note:
        (out / "results.md").write_text(result.table + "\n" + note + "\n")
        result.table += "\n" + note + "\n"
    return report(result)


def ideal_note(history: dict) -> str:
    """The line under the demo's table that says why the ideal device trails software (empty
    when the table has no ideal bidirectional run or no software twin)."""
    ideal, sw = history.get("ideal-bidirectional"), history.get("software")
    if ideal is None or sw is None:
        return ""
    import devices

    P = devices.get("ideal").levels("ltp")
    gap = 100.0 * (sw["test_accuracy"][-1] - ideal["test_accuracy"][-1])
    return (
        f"Why ideal-bidirectional is {gap:.1f} points below software: pulse counts are rounded "
        f"half up, so a requested change below half a step (a step is 1/{P} of the weight range "
        "on this noise-free linear device) sends no pulse: the dead zone of every "
        "pulse-programmed device (physics, not a bug). With stochastic rounding (`synapse-sim "
        "train --device ideal --rounding stochastic`) the same device tracks software within 2 "
        "points (gate tests/gates/test_gates_neurosim.py, 2 epochs of 2,000 images)."
    )
