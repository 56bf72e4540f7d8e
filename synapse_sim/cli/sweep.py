"""``synapse-sim sweep``: the command-line side of :mod:`synapse_sim.sweep`.

Registered in :mod:`synapse_sim.cli.app` through ``_add_sweep``; ``synapse-sim show`` calls
:func:`show_sweep` for files whose root attribute ``kind`` is ``"sweep"``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .argtypes import int_at_least

__all__ = ["add_sweep_parser", "cmd_sweep", "show_sweep"]


def add_sweep_parser(subparsers) -> None:
    """Add the ``sweep`` sub-command to ``subparsers``."""
    p = subparsers.add_parser(
        "sweep",
        help="device-variability sweep: parameters x random device instances",
        description="Run a sweep spec (TOML): the grid product of its axes, each point with "
        "several random device instances, plus the software twin once; writes sweep.h5 "
        "(resumable), sweep.md and PNGs to --out.",
    )
    p.add_argument("spec", help="sweep spec (TOML file)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (runs/NAME)")
    p.add_argument(
        "--workers",
        type=int_at_least(1),
        default=None,
        metavar="N",
        help="worker processes (default 1: serial; N > 1: local processes; with --gpus one "
        "per GPU)",
    )
    p.add_argument(
        "--backend",
        default=None,
        help="array backend of every run, replacing the spec's train.backend: auto (numba on "
        "the CPU), numpy, numba, cupy (GPU) or cuda-sim (tests)",
    )
    p.add_argument(
        "--gpus",
        type=_gpu_list,
        default=None,
        metavar="IDS",
        help="pin local worker processes to these GPUs, e.g. 0,1 (worker k sees only GPU "
        "IDS[k mod n] through CUDA_VISIBLE_DEVICES; needs --backend cupy); replaces the "
        "spec's sweep.gpus",
    )
    p.add_argument(
        "--dask", action="store_true", help="run on a Dask LocalCluster of --workers processes"
    )
    p.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDR",
        help="use a running Dask scheduler (Dask sends work with pickle: use a trusted network "
        "or tls://ADDR with TLS certificates in Dask's config; see docs/DISTRIBUTED.md)",
    )
    p.add_argument("--resume", action="store_true", help="run only the runs missing in sweep.h5")
    p.add_argument("--overwrite", action="store_true", help="replace an existing sweep.h5")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG figures")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_sweep)


def _gpu_list(text: str) -> list:
    """``--gpus 0,1`` -> ``[0, 1]`` (distinct integers >= 0)."""
    import argparse

    try:
        ids = [int(v) for v in text.split(",")]
    except ValueError:
        ids = None
    if not ids or any(i < 0 for i in ids) or len(set(ids)) != len(ids):
        raise argparse.ArgumentTypeError(
            f"must be distinct GPU ordinals separated by commas (e.g. 0,1), got {text!r}"
        )
    return ids


def cmd_sweep(args) -> int:
    """Run ``synapse-sim sweep``; returns the exit status."""
    from ..sweep import aggregate, format_sweep_table, load_spec, read_sweep, run_sweep

    spec = load_spec(args.spec)  # malformed spec: ValueError naming the key -> exit 2
    if args.resume and args.overwrite:
        raise ValueError("--resume and --overwrite exclude each other")
    if args.dask and args.scheduler:
        raise ValueError("--dask starts a LocalCluster; --scheduler uses a running one: pick one")
    executor = "dask" if (args.dask or args.scheduler) else None
    progress = not args.quiet and sys.stderr.isatty()
    try:
        result = run_sweep(
            spec,
            args.out,
            workers=args.workers,
            executor=executor,
            scheduler=args.scheduler,
            resume=args.resume,
            overwrite=args.overwrite,
            progress=progress,
            backend=args.backend,
            gpus=args.gpus,
        )
    except RuntimeError as exc:
        print(f"synapse-sim: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    res = read_sweep(result.path)
    table = format_sweep_table(aggregate(res))
    out = Path(args.out)
    (out / "sweep.md").write_text(table)
    files = [result.path, out / "sweep.md"]
    if not args.no_plots:
        from ..sweep.plots import save_sweep_plots

        files += save_sweep_plots(res, out)
    print(table, end="")
    print(
        f"{result.ran} runs trained, {result.skipped} already done, {result.elapsed:.1f} s; "
        f"wrote {', '.join(str(f) for f in files)}"
    )
    return 0


def show_sweep(path, *, as_json: bool = False) -> int:
    """Print a sweep file: the table of means ± std over instances, or (``as_json``) one JSON
    object per point and device instance."""
    from ..sweep import sweep_records
    from ..sweep.aggregate import sweep_report
    from .common import jsonable

    if as_json:
        print(json.dumps(jsonable(sweep_records(path)), indent=2, allow_nan=False))
    else:
        print(sweep_report(path), end="")
    return 0
