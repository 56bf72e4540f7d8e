"""``synapse-sim infer SOURCE``: a trained network on devices, test accuracy over time.

Parses the options into :class:`~synapse_sim.studies.infer.InferConfig` and runs
:class:`~synapse_sim.studies.infer.InferStudy` (``results.h5``, ``inference.png``,
``results.md`` in ``--out``); :func:`show_infer` prints a ``kind == "infer"`` file for
``synapse-sim show``.
"""

from __future__ import annotations

import json

from .argtypes import int_at_least
from .common import (
    add_overwrite_option,
    jsonable,
    option_error,
    output_dir,
    print_written,
    show_progress,
    write_mode,
)

__all__ = ["add_parser", "run", "show_infer"]


def add_parser(subparsers) -> None:
    """Register ``synapse-sim infer``."""
    p = subparsers.add_parser(
        "infer",
        help="program a trained network onto devices and follow its accuracy as they drift",
        description="Program the weights of a train or compare (--model mlp) results file "
        "(saved with --save-weights) "
        "onto device arrays of a preset, then measure test accuracy at times after programming "
        "with programming noise, drift and read noise (devices.inference), over several device "
        "instances, with and without global drift compensation. Writes results.h5, "
        "inference.png and results.md to --out.",
    )
    p.add_argument(
        "source",
        help="results.h5 of `synapse-sim train --save-weights` or `synapse-sim compare "
        "--model mlp --save-weights` (or its folder)",
    )
    p.add_argument("--run", default=None, help="run label in SOURCE (default software)")
    p.add_argument("--device", default=None, help="device preset (default gst_pcm)")
    p.add_argument(
        "--program", default=None, help="programming: ideal (default), open_loop or verify"
    )
    p.add_argument("--mapping", default=None, help="differential (default) or reference")
    p.add_argument(
        "--noise",
        default=None,
        help="inference model: pcm (Joshi et al. 2020, default), pcm_drift, constant or none",
    )
    p.add_argument(
        "--times",
        nargs="+",
        default=None,
        metavar="T",
        help="times after programming: seconds or with a unit s, min, h, d, w, mo, y "
        "(default 1s 1h 1d 1mo 1y)",
    )
    p.add_argument(
        "--instances", type=int_at_least(1), default=None, help="device instances (default 10)"
    )
    p.add_argument("--max-test", type=int_at_least(1), default=None, help="first N test images")
    p.add_argument(
        "--dac-bits",
        type=int,
        default=None,
        help="uniform DAC on [0, 1] at every layer input (as train --dac-bits)",
    )
    p.add_argument(
        "--adc-bits",
        type=int,
        default=None,
        help="NeuroSim's partial-sum ADC on every layer's column currents (as train --adc-bits)",
    )
    p.add_argument("--seed", type=int_at_least(0), default=None, help="seed (default 0)")
    p.add_argument("--out", default="runs/infer", metavar="DIR", help="output folder")
    add_overwrite_option(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    """Run ``synapse-sim infer``."""
    from pathlib import Path

    from ..studies.base import run_study
    from ..studies.infer import InferConfig, InferStudy

    src = Path(args.source)
    if src.is_dir():
        src = src / "results.h5"
    if not src.exists():
        raise FileNotFoundError(f"source: no results file at '{src}'")
    names = "run device program mapping noise instances max_test dac_bits adc_bits seed".split()
    kw = {k: getattr(args, k) for k in names if getattr(args, k) is not None}
    if args.times is not None:
        kw["times"] = tuple(args.times)
    try:
        config = InferConfig(source=str(src), **kw)
    except (ValueError, TypeError) as exc:
        raise option_error(exc, {}) from None
    out = output_dir(args.out, "--out")
    study = InferStudy(config)
    try:
        result = run_study(
            study, out=out, progress=show_progress(args.quiet), mode=write_mode(args)
        )
    except (ValueError, TypeError) as exc:
        raise option_error(exc, {}) from None
    print(result.table, end="")
    print_written(result.files)
    return 0


def show_infer(path, *, as_json: bool = False) -> int:
    """Print an ``infer`` results file: one line per time and run (``--json``: records)."""
    from ..studies.infer import format_time, infer_records

    recs = infer_records(path)
    if as_json:
        print(json.dumps(jsonable(recs), indent=2, allow_nan=False))
        return 0
    for r in recs:
        sw = r["software_accuracy"]
        print(f"{r['label']} (software {'-' if sw is None else f'{sw:.4f}'}):")
        for t, m, s in zip(r["time_s"], r["test_accuracy"], r["test_accuracy_std"], strict=True):
            print(f"  {format_time(t):>8}  {m:.4f} +- {s:.4f}")
    return 0
