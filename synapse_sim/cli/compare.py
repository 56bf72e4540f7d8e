"""``synapse-sim compare``: a torch CNN or MLP in software and on device presets side by side.

Options left out take the :class:`~synapse_sim.studies.compare.CompareConfig` defaults.
"""

from __future__ import annotations

from .common import add_overwrite_option, option_error, output_dir, show_progress, write_mode
from .train import given, report

__all__ = ["add_parser", "run"]

#: CompareConfig field -> option (where it is not the field's name with dashes).
OPTIONS = {"devices": "device", "rules": "rule", "software": "no-software"}


def add_parser(subparsers) -> None:
    """Register ``synapse-sim compare``."""
    p = subparsers.add_parser(
        "compare",
        help="train a torch CNN or MLP in software and on device presets side by side",
        description="Train a small torch CNN or MLP with plain SGD (software) and, converted "
        "to device-backed layers, with DeviceSGD on each preset and rule; writes results.h5, "
        "PNG figures and results.md to --out (read back with 'synapse-sim show').",
    )
    p.add_argument("--model", default=None, help="cnn or mlp (default cnn)")
    p.add_argument("--dataset", default=None, help="digits (default), mnist5k or idx:PATH")
    p.add_argument(
        "--device",
        dest="devices",
        action="append",
        default=None,
        metavar="PRESET",
        help="device preset (repeat; default ideal and epiram)",
    )
    p.add_argument(
        "--rule",
        dest="rules",
        action="append",
        default=None,
        metavar="RULE",
        help="bidirectional, unidirectional, stochastic or adaptive (repeat; default "
        "bidirectional)",
    )
    p.add_argument("--mapping", default=None, help="reference or differential (default: by rule)")
    p.add_argument(
        "--rounding",
        default=None,
        help="pulse-count rounding: nearest (default) or stochastic (lets small batch-mean "
        "updates through the dead zone)",
    )
    p.add_argument("--epochs", type=int, default=None, help="epochs (default 5)")
    p.add_argument("--batch-size", type=int, default=None, help="batch size (default 32)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default 0.1)")
    p.add_argument("--seed", type=int, default=None, help="seed (default 0)")
    p.add_argument("--max-train", type=int, default=None, help="use only N training images")
    p.add_argument(
        "--backend",
        default=None,
        help="array backend: auto (numba on the CPU), numpy, numba, cupy (GPU; needs torch "
        "with CUDA) or cuda-sim (tests; needs NUMBA_ENABLE_CUDASIM=1); default auto",
    )
    p.add_argument("--no-software", action="store_true", help="skip the software model")
    p.add_argument(
        "--save-weights", action="store_true", help="store final weights and biases (for infer)"
    )
    p.add_argument(
        "--energy",
        action="store_true",
        help="record device-level energy and latency per epoch (docs/ENERGY.md)",
    )
    p.add_argument("--out", default="runs/compare", metavar="DIR", help="output folder")
    add_overwrite_option(p, resume=True)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    """Run ``synapse-sim compare``."""
    from ..studies.base import run_study
    from ..studies.compare import CompareConfig, CompareStudy
    from ..studies.train import resolve_backend

    fields = ("model", "dataset", "devices", "rules", "mapping", "epochs", "batch_size", "lr")
    kw = given(args, (*fields, "seed", "max_train", "backend"))
    if args.rounding is not None:
        kw["rule_options"] = {"rounding": args.rounding}
    try:
        config = CompareConfig(**kw, software=not args.no_software)
    except (ValueError, TypeError) as exc:
        raise option_error(exc, OPTIONS) from None
    resolve_backend(config.backend)  # an unavailable GPU fails before the output folder exists
    out = output_dir(args.out, "--out")
    study = CompareStudy(config, save_weights=args.save_weights, energy=args.energy or None)
    return report(
        run_study(study, out=out, progress=show_progress(args.quiet), mode=write_mode(args))
    )
