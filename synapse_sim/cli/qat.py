"""``synapse-sim qat``: low-bit quantization-aware training with and without CGA.

Registered in :data:`synapse_sim.cli.main.COMMANDS` through :func:`_add_qat`; :func:`show_qat`
prints the runs of a ``kind == "qat"`` results file for ``synapse-sim show``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

__all__ = ["is_qat_file", "show_qat"]


def _add_qat(subparsers) -> None:
    p = subparsers.add_parser(
        "qat",
        help="low-bit QAT: uniform / LSQ / StatsQ weights, with and without CGA",
        description="Train a small MLP with weights fake-quantized by each quantizer at each "
        "bit width, with and without confidence-guided annealing (CGA) in the last epochs, "
        "plus a float baseline; tracks weight oscillations every step. Writes results.h5, "
        "oscillation.png and results.md to --out.",
    )
    p.add_argument(
        "--bits",
        type=int,
        action="append",
        default=None,
        metavar="B",
        help="weight bit width, 1 to 8 (repeat for several; default 2, 3 and 4)",
    )
    p.add_argument(
        "--quantizer",
        action="append",
        default=None,
        metavar="NAME",
        help="uniform, lsq, statsq, levels:PRESET (2**B levels of a device preset's response) "
        "or levels:PRESET:full (all its levels); repeat for several; default uniform, lsq, statsq",
    )
    p.add_argument(
        "--device-levels",
        action="append",
        default=None,
        metavar="PRESET",
        help="also train with the weight levels of this device preset (same as "
        "--quantizer levels:PRESET; repeat for several; see 'synapse-sim devices')",
    )
    p.add_argument(
        "--act-bits",
        type=int,
        default=None,
        metavar="B",
        help="also quantize the hidden ReLU outputs (unsigned per-tensor LSQ, B bits)",
    )
    p.add_argument(
        "--split-seed", type=int, default=0, help="random_state of the train/test split (0)"
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--cga", dest="cga", action="store_const", const="cga", help="only runs with CGA"
    )
    mode.add_argument(
        "--no-cga", dest="cga", action="store_const", const="no-cga", help="only runs without CGA"
    )
    mode.add_argument(
        "--both",
        dest="cga",
        action="store_const",
        const="both",
        help="runs without and with CGA (the default)",
    )
    p.add_argument("--dataset", default="digits", help="digits or mnist5k (default digits)")
    p.add_argument("--epochs", type=int, default=20, help="epochs (default 20)")
    p.add_argument(
        "--cga-epochs",
        type=int,
        default=None,
        help="final constant-rate epochs in which CGA anneals (default max(1, epochs // 5))",
    )
    p.add_argument("--boundary-range", type=float, default=0.005, help="CGA band BR (0.005)")
    p.add_argument("--lr", type=float, default=3e-3, help="initial Adam rate (default 3e-3)")
    p.add_argument("--lr-min", type=float, default=1e-3, help="final rate (default 1e-3)")
    p.add_argument("--batch-size", type=int, default=32, help="batch size (default 32)")
    p.add_argument("--hidden", type=int, nargs="+", default=[128], metavar="N")
    p.add_argument("--no-float", action="store_true", help="skip the float baseline")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--out", default="runs/qat", metavar="DIR", help="output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_qat, cga="both")


_CGA = {"both": (False, True), "cga": (True,), "no-cga": (False,)}

#: run_qat parameter -> command-line option.
_OPTION_NAMES = {
    "quantizers": "quantizer",
    "cga_epochs": "cga-epochs",
    "boundary_range": "boundary-range",
    "lr_min": "lr-min",
    "batch_size": "batch-size",
    "act_bits": "act-bits",
    "split_seed": "split-seed",
}


def _option_of(message: str) -> str:
    """The option that a ``run_qat`` error message (starting with a parameter name) names."""
    name = message.split(" ", 1)[0]
    return _OPTION_NAMES.get(name, name.replace("_", "-"))


def _cmd_qat(args) -> int:
    from .main import _output_dir

    quantizers = [q.lower() for q in args.quantizer] if args.quantizer else []
    if args.device_levels:
        if not quantizers:
            quantizers = ["uniform", "lsq", "statsq"]
        quantizers += [f"levels:{name}" for name in args.device_levels]
    kwargs = {
        "dataset": args.dataset,
        "bits": tuple(args.bits) if args.bits else (2, 3, 4),
        "quantizers": tuple(quantizers) if quantizers else ("uniform", "lsq", "statsq"),
        "cga": _CGA[args.cga],
        "epochs": args.epochs,
        "seed": args.seed,
        "hidden": tuple(args.hidden),
        "batch_size": args.batch_size,
        "lr": args.lr,
        "lr_min": args.lr_min,
        "cga_epochs": args.cga_epochs,
        "boundary_range": args.boundary_range,
        "act_bits": args.act_bits,
        "split_seed": args.split_seed,
    }
    from ..studies.qat import check_qat_args, run_qat

    try:  # every argument is checked before the output folder is made or anything trains
        check_qat_args(**kwargs)
    except (ValueError, TypeError) as exc:
        option = _option_of(str(exc))
        if args.device_levels and option == "quantizer":
            option = "device-levels"
        raise ValueError(f"--{option}: {exc}") from None
    out = _output_dir(args.out, "--out")
    progress = not args.quiet and sys.stderr.isatty()
    res = run_qat(**kwargs, float_baseline=not args.no_float, out=out, progress=progress)
    print(res.table, end="")
    print(f"wrote {', '.join(str(f) for f in res.files)}")
    return 0


def is_qat_file(path) -> bool:
    """True when ``path`` is a results file whose root attribute ``kind`` is ``qat``.

    Parameters
    ----------
    path : str or Path
    """
    import h5py

    try:
        with h5py.File(path, "r") as f:
            kind = f.attrs.get("kind", "")
    except OSError:
        return False
    if isinstance(kind, bytes):
        kind = kind.decode()
    return kind == "qat"


def qat_records(path) -> list[dict]:
    """One record per run of a ``kind == "qat"`` file.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    list of dict
        ``label``, ``bits``, ``quantizer``, ``cga``, ``oscillating_fraction`` (None for the
        float baseline), ``final_test_accuracy``, ``anneal_events``, ``complete``.
    """
    from ..results.store import read_results

    res = read_results(Path(path))
    records = []
    for label, run in res["runs"].items():
        fin = run["final"]
        acc = run["metrics"].get("test_accuracy")
        last_acc = float(acc[-1]) if acc is not None and len(acc) else None
        osc = fin.get("oscillating_fraction")
        records.append(
            {
                "label": label,
                "bits": fin.get("bits", run["config"].get("bits")),
                "quantizer": fin.get("quantizer", run["config"].get("quantizer")),
                "cga": bool(fin.get("cga", run["config"].get("cga", False))),
                "act_bits": fin.get("act_bits", run["config"].get("act_bits", 32)),
                "oscillating_fraction": None if osc is None else float(osc),
                "final_test_accuracy": fin.get("final_test_accuracy", last_acc),
                "anneal_events": (
                    None if fin.get("quantizer") == "float" else fin.get("anneal_events")
                ),
                "complete": bool(run["complete"] and res["complete"]),
            }
        )
    return records


def show_qat(path, *, as_json: bool) -> int:
    """Print the runs of a QAT results file (``--json``: one object per run).

    Parameters
    ----------
    path : str or Path
    as_json : bool
    """
    from .main import _jsonable

    records = qat_records(path)
    if as_json:
        print(json.dumps(_jsonable(records), indent=2, allow_nan=False))
        return 0
    for r in records:
        acc = r["final_test_accuracy"]
        osc = r["oscillating_fraction"]
        osc_text = "-" if osc is None or osc != osc else f"{osc:.4f}"
        print(
            f"{r['label']}: test accuracy {'-' if acc is None else f'{acc:.4f}'}, "
            f"oscillating fraction {osc_text}, complete {r['complete']}"
        )
    return 0
