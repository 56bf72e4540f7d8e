"""``synapse-sim qat``: low-bit quantization-aware training with and without CGA.

Options left out take the :class:`~synapse_sim.studies.qat.QATConfig` defaults;
:func:`show_qat` prints the runs of a ``kind == "qat"`` results file for ``synapse-sim show``.
"""

from __future__ import annotations

from pathlib import Path

from .common import (
    add_hidden_option,
    add_output_options,
    fmt,
    given_fields,
    make_config,
    print_records,
    results_kind,
    run_into_out,
)

__all__ = ["add_parser", "run", "is_qat_file", "qat_records", "show_qat"]


def add_parser(subparsers) -> None:
    """Register ``synapse-sim qat`` (option defaults: QATConfig's)."""
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
        "--split-seed", type=int, default=None, help="random_state of the train/test split (0)"
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
    p.add_argument("--dataset", default=None, help="digits or mnist5k (default digits)")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default 20)")
    p.add_argument(
        "--cga-epochs",
        type=int,
        default=None,
        help="final constant-rate epochs in which CGA anneals (default max(1, epochs // 5))",
    )
    p.add_argument("--boundary-range", type=float, default=None, help="CGA band BR (0.005)")
    p.add_argument("--lr", type=float, default=None, help="initial Adam rate (default 3e-3)")
    p.add_argument("--lr-min", type=float, default=None, help="final rate (default 1e-3)")
    p.add_argument("--batch-size", type=int, default=None, help="batch size (default 32)")
    add_hidden_option(p, "128")
    p.add_argument("--no-float", action="store_true", help="skip the float baseline")
    add_output_options(p, out="runs/qat", resume=True)
    p.set_defaults(func=run, cga=None)


_CGA = {"both": (False, True), "cga": (True,), "no-cga": (False,)}

#: QATConfig field -> option (where it is not the field's name with dashes).
OPTIONS = {"quantizers": "quantizer", "float_baseline": "no-float"}


def run(args) -> int:
    """Run ``synapse-sim qat``."""
    from ..studies.qat import QUANTIZERS, QATConfig, QATStudy

    kw = given_fields(args, QATConfig, exclude=("cga",))  # --cga/--no-cga/--both: below
    quantizers = [q.lower() for q in args.quantizer] if args.quantizer else []
    if args.device_levels:
        quantizers = (quantizers or list(QUANTIZERS)) + [f"levels:{n}" for n in args.device_levels]
    if quantizers:
        kw["quantizers"] = tuple(quantizers)
    if args.cga is not None:
        kw["cga"] = _CGA[args.cga]
    options = dict(OPTIONS)
    if args.device_levels:
        options["quantizers"] = "device-levels"
    # every option is checked before the output folder is made or anything trains
    config = make_config(QATConfig, {**kw, "float_baseline": not args.no_float}, options)
    res = run_into_out(QATStudy(config), args)
    print(res.table, end="")
    print(f"wrote {', '.join(str(f) for f in res.files)}")
    return 0


def is_qat_file(path) -> bool:
    """True when ``path`` is a results file whose root attribute ``kind`` is ``qat``.

    Parameters
    ----------
    path : str or Path
    """
    return results_kind(path) == "qat"


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
    return print_records(
        qat_records(path),
        as_json,
        lambda r: (
            f"{r['label']}: test accuracy {fmt(r['final_test_accuracy'])}, "
            f"oscillating fraction {fmt(r['oscillating_fraction'])}, complete {r['complete']}"
        ),
    )
