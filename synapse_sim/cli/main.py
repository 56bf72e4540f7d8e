"""The ``synapse-sim`` command line.

Commands
--------
``synapse-sim devices``
    Table of the device presets; ``--json`` prints :func:`devices.info` of every preset,
    ``--plot DIR`` writes one response figure per preset.
``synapse-sim demo``
    The main job: NeuroSim's 400-100-10 network on MNIST-5k in software and on four presets
    with the bidirectional and unidirectional rules (``results.h5``, ``accuracy.png``,
    ``results.md`` in ``--out``, default ``runs/demo``).
``synapse-sim train``
    Train software and device configurations side by side (``--device``, ``--rule`` repeat).
``synapse-sim show PATH``
    The table of a results file (``--json``: one object per configuration).
``synapse-sim zoo``
    The device zoo: one PNG per preset and ``devices.md``.

Adding a command
----------------
Write two functions and list the first in :data:`COMMANDS`:

``_add_<name>(subparsers)``
    Adds the sub-parser with ``subparsers.add_parser(...)``, its options, and
    ``set_defaults(func=_cmd_<name>)``.
``_cmd_<name>(args) -> int``
    Runs the command and returns the exit status. Import heavy modules (torch, ...) inside
    the function so that ``--help`` stays fast. Bad user input raises ``ValueError`` /
    ``TypeError`` / ``OSError``; :func:`main` turns it into one ``synapse-sim: error: ...``
    line and exit status 2 (set ``SYNAPSE_SIM_TRACEBACK=1`` to see the traceback instead).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from .argtypes import int_at_least
from .bars import _add_bars, _cmd_bars  # noqa: F401  (synapse-sim bars)
from .continual import _add_continual, _cmd_continual  # noqa: F401  (continual)
from .qat import _add_qat, _cmd_qat  # noqa: F401  (synapse-sim qat)

__all__ = ["main", "build_parser", "COMMANDS"]

PROG = "synapse-sim"
_EXIT_USAGE = 2


class _UsageError(Exception):
    """A command-line error found by argparse (reported as one line, exit status 2)."""


class _Parser(argparse.ArgumentParser):
    """ArgumentParser that raises instead of printing usage and calling ``sys.exit``."""

    def error(self, message):
        raise _UsageError(message)


# ---------------------------------------------------------------------------- helpers
def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("synapse-sim")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "unknown"


def _progress(items: Sequence, *, quiet: bool, desc: str) -> Iterable:
    """tqdm bar over ``items``; off with ``--quiet`` or when stdout/stderr is not a terminal."""
    from tqdm import tqdm

    tty = sys.stdout.isatty() and sys.stderr.isatty()
    return tqdm(items, desc=desc, unit="device", disable=quiet or not tty, leave=False)


def _output_dir(path: str, option: str) -> Path:
    """Create ``path`` (with parents) and check that it is a writable directory."""
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise OSError(f"{option}: cannot create output directory '{path}': {reason}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise OSError(f"{option}: output directory '{path}' is not writable")
    return out


def _jsonable(obj):
    """Recursively convert to JSON-safe values: non-finite floats become ``None``."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):  # numpy scalars and arrays
        obj = obj.tolist()
        if isinstance(obj, list):
            return _jsonable(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    return str(obj)


def _siemens(g: float) -> str:
    """``3.84615e-08`` -> ``'38.5 nS'``."""
    for scale, unit in ((1e-3, "mS"), (1e-6, "uS"), (1e-9, "nS"), (1e-12, "pS")):
        if abs(g) >= scale:
            return f"{g / scale:.3g} {unit}"
    return f"{g:.3g} S"


_YEAR = re.compile(r"\b(?:19|20)\d{2}\b")
_CITATION = re.compile(r"^(?:[A-Z]\d+:\s*)?(?P<authors>[^']+?),\s*'[^']+',?\s*(?P<rest>.*)$")


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 3, 1)].rstrip() + "..."


def _short_citation(text: str, width: int = 40) -> str:
    """Short form of a citation: first author, venue (its abbreviation if given) and year.

    ``"S. H. Jo, T. Chang, ..., 'Title', Nano Letters 10(4):1297-1301, 2010"`` gives
    ``"Jo et al., Nano Letters 2010"``; text without an author list and quoted title is cut
    at its first sentence and to ``width`` characters.
    """
    text = " ".join(text.split())
    m = _CITATION.match(text)
    if not m:
        return _clip(re.split(r"[.;]", text, maxsplit=1)[0], width)
    authors = [a.strip() for a in m["authors"].split(",") if a.strip()]
    first = authors[0].replace(" et al.", "").split()[-1]
    lead = f"{first} et al." if len(authors) > 1 or "et al." in m["authors"] else first
    rest = m["rest"]
    abbr = re.match(r"[^(,]*\(([A-Z][A-Za-z]{1,9})\)", rest)
    venue = abbr[1] if abbr else re.split(r"\s\d|,|\(", rest, maxsplit=1)[0].strip()
    year = _YEAR.search(rest)
    tail = f" {year[0]}" if year else ""
    venue = _clip(venue, width - len(lead) - 2 - len(tail))
    return f"{lead}, {venue}{tail}"


def _format_table(header: Sequence[str], rows: Sequence[Sequence[str]], markdown: bool) -> str:
    """Column-aligned text table, or a (still aligned) markdown table."""
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]

    def line(cells):
        padded = [c.ljust(w) for c, w in zip(cells, widths, strict=True)]
        return "| " + " | ".join(padded) + " |" if markdown else "  ".join(padded).rstrip()

    sep = ["-" * w for w in widths]
    rule = "|-" + "-|-".join(sep) + "-|" if markdown else "  ".join(sep)
    return "\n".join([line(header), rule, *(line(r) for r in rows)]) + "\n"


# ---------------------------------------------------------------------------- device zoo
_TABLE_HEADER = (
    "name",
    "family",
    "levels LTP/LTD",
    "NL LTP/LTD",
    "Gmin",
    "Gmax",
    "c2c sigma",
    "citation",
)


def _device_rows(names: Sequence[str]) -> list[list[str]]:
    import devices

    rows = []
    for name in names:
        dev = devices.get(name)
        nl = "-"
        if hasattr(dev, "nl_ltp"):
            nl = f"{dev.nl_ltp:g}/{dev.nl_ltd:g}"
        rows.append(
            [
                name,
                type(dev).__name__,
                f"{dev.levels('ltp')}/{dev.levels('ltd')}",
                nl,
                _siemens(dev.gmin),
                _siemens(dev.gmax),
                f"{dev.variability.c2c_sigma:g}",
                _short_citation(dev.citation),
            ]
        )
    return rows


def _d2d_variant(dev):
    """The device with a device-to-device spread to draw as a band, and a label; or None.

    Models that carry their own spread (the step presets) use it; exponential and linear
    devices get ``sigma_nl=0.5`` (``specs/devices.md`` section 3).
    """
    import devices

    d2d = dev.variability.d2d
    if d2d is not None and d2d != type(d2d)():
        shown = {
            f.name: getattr(d2d, f.name)
            for f in dataclasses.fields(d2d)
            if getattr(d2d, f.name) and not isinstance(getattr(d2d, f.name), bool)
        }
        spread = ", ".join(f"{k.removeprefix('sigma_')}={v:g}" for k, v in shown.items())
        return dev, f"d2d sigma: {spread}"
    if isinstance(dev, devices.ExpDevice):
        return dev.with_variability(sigma_nl=0.5), "d2d sigma: nl=0.5"
    return None


def _plot_device(name: str, path: Path) -> None:
    """Save ``path``: the nominal response, plus a panel with a d2d band where one applies."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    import devices

    dev = devices.get(name)
    nominal = dev.with_variability(d2d=None)
    spread = _d2d_variant(dev)
    fig = Figure(figsize=(10 if spread else 5.5, 3.8), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2 if spread else 1, sharey=True, squeeze=False)[0]
    devices.plot_response(nominal, ax=axes[0])
    axes[0].set_title("nominal")
    if spread:
        model, label = spread
        devices.plot_response(model, ax=axes[1], seed=0)
        axes[1].set_title(label)
    fig.suptitle(f"{name} ({type(dev).__name__}): {_short_citation(dev.citation, 60)}")
    fig.savefig(path, dpi=100)


def _plot_all(names: Sequence[str], out: Path, *, quiet: bool) -> list[Path]:
    paths = []
    for name in _progress(names, quiet=quiet, desc="plotting presets"):
        path = out / f"{name}.png"
        _plot_device(name, path)
        paths.append(path)
    return paths


# ---------------------------------------------------------------------------- devices
def _add_devices(subparsers) -> None:
    p = subparsers.add_parser(
        "devices",
        help="list the device presets",
        description="Table of the device presets (published devices, ideal, aihwkit-style).",
    )
    p.add_argument("names", nargs="*", metavar="NAME", help="presets to show (default: all)")
    p.add_argument("--json", action="store_true", help="print devices.info() of every preset")
    p.add_argument("--plot", metavar="DIR", help="write one response figure per preset to DIR")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_devices)


def _cmd_devices(args) -> int:
    import devices

    names = args.names or devices.names()
    for name in names:
        devices.get(name)  # an unknown name raises ValueError with close matches
    if args.plot is not None:
        out = _output_dir(args.plot, "--plot")
        _plot_all(names, out, quiet=args.quiet)
    if args.json:
        records = [_jsonable(devices.info(n)) for n in names]
        print(json.dumps(records, indent=2, allow_nan=False))
    else:
        print(_format_table(_TABLE_HEADER, _device_rows(names), markdown=False), end="")
        if args.plot is not None:
            print(f"wrote {len(names)} figures to {args.plot}")
    return 0


# ---------------------------------------------------------------------------- zoo
def _add_zoo(subparsers) -> None:
    p = subparsers.add_parser(
        "zoo",
        help="write the device zoo (one figure per preset and devices.md)",
        description="Write the device zoo to --out: one PNG per preset and devices.md.",
    )
    p.add_argument("--out", default="runs/zoo", metavar="DIR", help="output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_zoo)


def _cmd_zoo(args) -> int:
    import devices

    out = _output_dir(args.out, "--out")
    names = devices.names()
    _plot_all(names, out, quiet=args.quiet)
    rows = _device_rows(names)
    table = _format_table(_TABLE_HEADER, rows, markdown=True)
    figures = "\n".join(f"![{n}]({n}.png)" for n in names)
    (out / "devices.md").write_text(
        "# Device presets\n\n"
        "Response figures: LTP pulses from Gmin, then LTD pulses from Gmax (normalized "
        "conductance); right panels show the device-to-device spread (5-95 % band).\n\n"
        f"{table}\n{figures}\n"
    )
    print(table, end="")
    print(f"wrote {len(names)} figures and devices.md to {out}")
    return 0


# ---------------------------------------------------------------------------- train
_positive_int = int_at_least(1)


def _add_train_options(p, *, epochs: int) -> None:
    p.add_argument(
        "--dataset", default="mnist5k", help="mnist5k, digits or idx:PATH (default mnist5k)"
    )
    p.add_argument(
        "--neurosim-input",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="NeuroSim input format: 20x20 crop, binarized (28x28 data only; "
        "default on, off for digits)",
    )
    p.add_argument(
        "--hidden",
        type=_positive_int,
        nargs="+",
        default=[100],
        metavar="N",
        help="hidden layer sizes (default 100)",
    )
    p.add_argument("--activation", default="sigmoid", help="sigmoid or relu")
    p.add_argument("--loss", default="sse", help="sse (NeuroSim) or ce (softmax)")
    p.add_argument("--init", default="neurosim", help="neurosim or uniform")
    p.add_argument("--epochs", type=int, default=epochs, help=f"epochs (default {epochs})")
    p.add_argument("--batch-size", type=int, default=1, help="batch size (default 1)")
    p.add_argument(
        "--lr",
        type=float,
        nargs="+",
        default=[0.4, 0.2],
        metavar="LR",
        help="learning rate, one per layer or one for all (default 0.4 0.2)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--device-seed", type=int, default=None, help="seed of the device draws")
    p.add_argument(
        "--rounding", default="nearest", help="pulse-count rounding: nearest or stochastic"
    )
    p.add_argument("--theta", type=float, default=0.5, help="dead-zone threshold (default 0.5)")
    p.add_argument("--n-max", type=int, default=None, help="max pulses per update")
    p.add_argument(
        "--refresh-threshold",
        type=float,
        default=0.9,
        help="unidirectional refresh threshold (default 0.9)",
    )
    p.add_argument("--refresh-mode", default="verify", help="ideal, open_loop or verify")
    p.add_argument("--max-train", type=int, default=None, help="use only N training images")
    _add_backend_option(p)
    p.add_argument("--save-weights", action="store_true", help="store final weights")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_backend_option(p) -> None:
    """``--backend`` of the training commands (checked by the trainer: a bad name or an
    unavailable GPU is a one-line error, exit 2)."""
    p.add_argument(
        "--backend",
        default="auto",
        help="array backend: auto (numba on the CPU), numpy, numba, cupy (GPU) or cuda-sim "
        "(tests; needs NUMBA_ENABLE_CUDASIM=1); default auto",
    )


def _config_from_args(args, dataset_default_neurosim=True):
    from ..studies.train import TrainConfig

    neurosim = bool(args.neurosim_input) and not args.dataset.startswith("digits")
    return TrainConfig(
        dataset=args.dataset,
        neurosim_input=neurosim,
        hidden=tuple(args.hidden),
        activation=args.activation,
        loss=args.loss,
        init=args.init,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=tuple(args.lr),
        seed=args.seed,
        device_seed=args.device_seed,
        rounding=args.rounding,
        theta=args.theta,
        n_max=args.n_max,
        refresh_threshold=args.refresh_threshold,
        refresh_mode=args.refresh_mode,
        max_train=args.max_train,
        backend=args.backend,
    )


def _add_train(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train an MLP on device presets beside its software twin",
        description="Train a multilayer perceptron in software and on device arrays with the "
        "same initial weights and data order; writes results.h5, PNGs and "
        "results.md to --out.",
    )
    p.add_argument(
        "--device",
        action="append",
        default=None,
        metavar="NAME",
        help="device preset or 'software' (repeat for several; default epiram)",
    )
    p.add_argument(
        "--rule",
        action="append",
        default=None,
        metavar="RULE",
        help="bidirectional, unidirectional, stochastic or adaptive (repeat; "
        "default bidirectional)",
    )
    p.add_argument("--mapping", default=None, help="reference or differential (default: by rule)")
    p.add_argument("--no-software", action="store_true", help="skip the software twin")
    p.add_argument("--out", default="runs/train", metavar="DIR", help="output folder")
    _add_train_options(p, epochs=5)
    p.set_defaults(func=_cmd_train)


def _cmd_train(args) -> int:
    from ..studies.experiments import run_training
    from ..studies.train import RunSpec, resolve_backend

    config = _config_from_args(args)
    resolve_backend(config.backend)  # an unavailable GPU fails before the output folder exists
    devs = args.device or ["epiram"]
    rules = args.rule or ["bidirectional"]
    runs = []
    if "software" in devs or not args.no_software:
        runs.append(RunSpec(device="software"))
    for d in devs:
        if d == "software":
            continue
        for r in rules:
            runs.append(RunSpec(device=d, rule=r, mapping=args.mapping))
    out = _output_dir(args.out, "--out")
    info = run_training(
        config,
        runs,
        out,
        progress=not args.quiet and sys.stderr.isatty(),
        save_weights=args.save_weights,
    )
    print(info["table"], end="")
    print(f"wrote {', '.join(str(f) for f in info['files'])}")
    return 0


# ---------------------------------------------------------------------------- demo
def _add_demo(subparsers) -> None:
    p = subparsers.add_parser(
        "demo",
        help="the main job: software vs four presets, bidirectional vs unidirectional",
        description="Train NeuroSim's 400-100-10 network on MNIST-5k in software and on the "
        "ideal, epiram, ag_a_si and pcmo presets with the bidirectional and "
        "unidirectional rules; writes results.h5, accuracy.png and results.md.",
    )
    p.add_argument("--out", default="runs/demo", metavar="DIR", help="output folder")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default 5)")
    _add_backend_option(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_demo)


def _cmd_demo(args) -> int:
    from ..studies.experiments import DEMO_CONFIG, demo_runs, run_training
    from ..studies.train import resolve_backend

    config = dataclasses.replace(DEMO_CONFIG, backend=args.backend)
    resolve_backend(config.backend)
    if args.epochs is not None:
        config = dataclasses.replace(config, epochs=args.epochs)
    out = _output_dir(args.out, "--out")
    info = run_training(config, demo_runs(), out, progress=not args.quiet and sys.stderr.isatty())
    print(info["table"], end="")
    print(f"wrote {', '.join(str(f) for f in info['files'])}")
    return 0


# ---------------------------------------------------------------------------- show
def _add_show(subparsers) -> None:
    p = subparsers.add_parser(
        "show",
        help="print the table of a results file",
        description="Print the table of a finished (or unfinished) results.h5.",
    )
    p.add_argument("path", help="results.h5 (or its folder)")
    p.add_argument("--json", action="store_true", help="one JSON object per configuration")
    p.set_defaults(func=_cmd_show)


#: Results kinds with their own view: root attribute ``kind`` -> "module:function" taking
#: ``(path, as_json=...)``. Other kinds (``train``, ``compare``) use the run table.
SHOW_BY_KIND = {
    "sweep": "synapse_sim.cli.sweep:show_sweep",
    "bars": "synapse_sim.cli.bars:show_bars",
    "continual": "synapse_sim.cli.continual:show_continual",
    "qat": "synapse_sim.cli.qat:show_qat",
}


def _results_kind(path: Path) -> str | None:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            kind = f.attrs.get("kind")
    except OSError:
        return None  # not HDF5: read_results below gives the clear error
    return kind.decode() if isinstance(kind, bytes) else kind


def _cmd_show(args) -> int:
    import importlib

    from ..results.store import summary_records
    from ..studies.experiments import markdown_report

    path = Path(args.path)
    if path.is_dir():
        single, sweep = path / "results.h5", path / "sweep.h5"
        path = sweep if sweep.exists() and not single.exists() else single
    if not path.exists():
        raise FileNotFoundError(f"no results file at '{path}'")
    view = SHOW_BY_KIND.get(_results_kind(path))
    if view is not None:
        module, func = view.split(":")
        return getattr(importlib.import_module(module), func)(path, as_json=args.json)
    if args.json:
        print(json.dumps(_jsonable(summary_records(path)), indent=2, allow_nan=False))
    else:
        print(markdown_report(path), end="")
    return 0


# ---------------------------------------------------------------------------- sweep
def _add_sweep(subparsers) -> None:
    from .sweep import add_sweep_parser  # synapse_sim/sweep_cli.py

    add_sweep_parser(subparsers)


# ---------------------------------------------------------------------------- compare
def _add_compare(subparsers) -> None:
    from ..studies.compare import _add_compare as add_compare_parser  # synapse_sim/nn/compare.py

    add_compare_parser(subparsers)


# ---------------------------------------------------------------------------- entry point
#: Sub-command registrars, in the order ``--help`` lists them.
COMMANDS: tuple[Callable, ...] = (
    _add_demo,
    _add_train,
    _add_compare,
    _add_sweep,
    _add_bars,
    _add_continual,
    _add_qat,
    _add_show,
    _add_devices,
    _add_zoo,
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every command of :data:`COMMANDS`."""
    parser = _Parser(
        prog=PROG,
        description="Hardware-aware neuromorphic simulation: learning with synapse devices.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in COMMANDS:
        add(subparsers)
    return parser


def _error(message: str) -> int:
    print(f"{PROG}: error: {' '.join(message.split())}", file=sys.stderr)
    return _EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status: 0 on success, 2 for bad arguments or input (one ``synapse-sim: error:``
        line on stderr, no traceback).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return _EXIT_USAGE
        return int(args.func(args) or 0)
    except SystemExit as exc:  # --help / --version
        return exc.code if isinstance(exc.code, int) else 0
    except BrokenPipeError:  # `synapse-sim devices | head`
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 0
    except (_UsageError, ValueError, TypeError, OSError) as exc:
        if os.environ.get("SYNAPSE_SIM_TRACEBACK"):
            raise
        return _error(str(exc) or type(exc).__name__)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
