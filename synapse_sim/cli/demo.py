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
    return report(run_study(study, out=out, progress=show_progress(args.quiet)))
