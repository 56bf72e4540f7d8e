"""``synapse-sim fit``: fit a device model to measured potentiation/depression cycles."""

from __future__ import annotations

import json
from pathlib import Path

from .common import jsonable, output_dir

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> None:
    """Register ``synapse-sim fit``."""
    p = subparsers.add_parser(
        "fit",
        help="fit a device model (NL labels, levels, Gmin/Gmax, noise) to measured cycles",
        description=(
            "Fit the exponential NL-label model and a look-up-table model to measured "
            "conductance-vs-pulse cycles in a CSV file (columns device,cycle,branch,pulse,"
            "conductance; device and cycle optional; see devices.fitting). Prints the fitted "
            "parameters with standard errors and the goodness of fit, writes NAME_fit.json and "
            "NAME_fit.png to --out."
        ),
    )
    p.add_argument("data", metavar="DATA.csv", help="measured cycles (CSV)")
    p.add_argument(
        "--method",
        choices=("markov", "curve"),
        default=None,
        help="markov: each reading given the previous one (noise through the state, the "
        "default); curve: least squares on a repeatable curve with read noise",
    )
    p.add_argument("--levels-ltp", type=int, default=None, metavar="N", help="LTP pulses")
    p.add_argument("--levels-ltd", type=int, default=None, metavar="N", help="LTD pulses")
    p.add_argument("--name", default=None, help="name of the fitted device (default: file stem)")
    p.add_argument("--out", default="runs/fit", metavar="DIR", help="output folder")
    p.add_argument("--json", action="store_true", help="print the fit as JSON")
    p.add_argument("--no-plots", action="store_true", help="do not write the figure")
    p.set_defaults(func=run)


def run(args) -> int:
    """Run ``synapse-sim fit``."""
    from devices.fitting import fit_csv

    name = args.name or Path(args.data).stem
    kwargs = {"name": name}
    for key in ("method", "levels_ltp", "levels_ltd"):
        if getattr(args, key) is not None:
            kwargs[key] = getattr(args, key)
    res = fit_csv(args.data, **kwargs)
    out = output_dir(args.out, "--out")
    record = jsonable(res.to_dict())
    (out / f"{name}_fit.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    written = [out / f"{name}_fit.json"]
    if not args.no_plots:
        import matplotlib

        matplotlib.use("Agg")
        ax = res.plot()
        ax.figure.savefig(out / f"{name}_fit.png", dpi=120, bbox_inches="tight")
        written.append(out / f"{name}_fit.png")
    if args.json:
        print(json.dumps(record, indent=2, sort_keys=True))
    else:
        print(res.summary())
        print("wrote " + ", ".join(str(p) for p in written))
    return 0
