"""``synapse-sim bars``: the bars test of probabilistic sparse coding (``specs/sparse_coding.md``).

Parses the options into :func:`synapse_sim.studies.bars.run_bars` (the study: data, EM loop,
``results.h5`` and ``fields.png``) and prints the recovered bars, pi, sigma and the likelihood
curve; :func:`show_bars` prints a ``kind == "bars"`` file for ``synapse-sim show``.
"""

from __future__ import annotations

import numpy as np

from ..studies.bars import BARS_MODELS, BARS_W_RANGE, run_bars
from .argtypes import int_at_least
from .common import add_overwrite_option, output_dir, results_kind, show_progress, write_mode

__all__ = ["BARS_MODELS", "BARS_W_RANGE", "run_bars", "add_parser", "run", "show_bars"]


def _preset(name: str) -> str:
    """argparse type: a device preset name."""
    import argparse

    import devices

    if name not in devices.names():
        raise argparse.ArgumentTypeError(
            f"unknown device preset {name!r}; choose from {', '.join(devices.names())}"
        )
    return name


def add_parser(subparsers) -> None:
    """Register ``synapse-sim bars``."""
    p = subparsers.add_parser(
        "bars",
        help="the bars test of probabilistic sparse coding (BSC, TSC, DSC, MCA, MMCA, GSC)",
        description="Generate the 5x5 bars data (H = 10) from the model, train it with the "
        "published setting (Expectation Truncation, annealing, data truncation) and report "
        "recovered bars, pi, sigma and the likelihood curve; writes results.h5 and fields.png "
        "to --out. With --device the dictionary lives on a device array of that preset.",
    )
    p.add_argument("--model", default="bsc", choices=BARS_MODELS, help="model (default bsc)")
    p.add_argument(
        "--seed", type=int_at_least(0), default=0, help="seed of data and init (default 0)"
    )
    p.add_argument("--out", default="runs/bars", metavar="DIR", help="output folder")
    add_overwrite_option(p)
    p.add_argument(
        "--iterations",
        type=int_at_least(1),
        default=None,
        metavar="N",
        help="EM iterations (default: the published setting: bsc 150, tsc 300, dsc 100, mca "
        "300, mmca 300, gsc 150); the schedule is stretched",
    )
    p.add_argument(
        "--device",
        default=None,
        type=_preset,
        metavar="PRESET",
        help="hold W on a differential device array of this preset (weight range +-16; "
        "default: float weights)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar and no curve printout")
    p.set_defaults(func=run)


def run(args) -> int:
    """Run ``synapse-sim bars``."""
    out = output_dir(args.out, "--out")
    info = run_bars(
        args.model,
        args.seed,
        out,
        iterations=args.iterations,
        progress=show_progress(args.quiet),
        device=args.device,
        mode=write_mode(args),
    )
    ll = info["log_likelihood"]
    from learning_rules.sparse_coding import BARS_SETTINGS

    cfg = BARS_SETTINGS[args.model]
    pi_txt = (
        f"{info['pi']:.4f}"
        if isinstance(info["pi"], float)
        else "[" + ", ".join(f"{p:.3f}" for p in info["pi"]) + "]"
    )
    print(f"model: {info['model']}  seed: {args.seed}  iterations: {len(ll)}")
    print(f"recovered bars: {info['recovered_bars']}/10 (matched cost < 1.0)")
    print(f"pi: {pi_txt} (true {cfg['pi']})  sigma: {info['sigma']:.4f} (true {cfg['sigma']})")
    if args.device is not None:
        print(f"device: {args.device}  pulses: {info['pulses']}")
    print(f"log-likelihood per point: first {ll[0]:.4f}, last {ll[-1]:.4f}")
    if not args.quiet:
        stride = max(1, len(ll) // 10)
        curve = ", ".join(f"{t}: {ll[t]:.3f}" for t in range(0, len(ll), stride))
        print(f"log-likelihood curve (iteration: value): {curve}")
    print(f"wrote {', '.join(str(f) for f in info['files'])}")
    return 0


def is_bars_file(path) -> bool:
    """True when ``path`` is an HDF5 results file with the root attribute ``kind == "bars"``."""
    return results_kind(path) == "bars"


def show_bars(path, as_json: bool = False) -> int:
    """Print a bars results file (model, recovered bars, pi, sigma, log-likelihood curve).

    Parameters
    ----------
    path : path
        ``results.h5`` written by ``synapse-sim bars``.
    as_json : bool
        One JSON object per run (a list) instead of a text summary.

    Returns
    -------
    int
        Exit status 0.
    """
    import json

    from ..results.store import read_results

    res = read_results(path)
    records = []
    for label, run in res["runs"].items():
        final = run["final"]
        pi = final.get("pi")
        if isinstance(pi, np.ndarray):
            pi = pi.tolist() if pi.ndim else float(pi)
        records.append(
            {
                "model": label,
                "recovered_bars": final.get("recovered_bars"),
                "pi": pi,
                "sigma": final.get("sigma"),
                "log_likelihood": [float(v) for v in run["metrics"].get("log_likelihood", [])],
            }
        )
    if as_json:
        print(json.dumps(records, indent=2))
    else:
        for r in records:
            ll = r["log_likelihood"]
            last = f"{ll[-1]:.4f}" if ll else "-"
            pi = r["pi"]
            pi = (
                f"{pi:.4f}"
                if isinstance(pi, float)
                else "[" + ", ".join(f"{p:.3f}" for p in pi) + "]"
            )
            print(
                f"{r['model']}: recovered bars {r['recovered_bars']}/10, pi {pi}, "
                f"sigma {r['sigma']:.4f}, final log-likelihood {last} ({len(ll)} iterations)"
            )
    return 0
