"""``synapse-sim devices``: the table of the device presets (``--json``, ``--plot DIR``)."""

from __future__ import annotations

import json

from .common import format_columns, jsonable, output_dir, progress_bar

__all__ = ["add_parser", "run", "plot_presets"]


def add_parser(subparsers) -> None:
    """Register ``synapse-sim devices``."""
    p = subparsers.add_parser(
        "devices",
        help="list the device presets",
        description="Table of the device presets (published devices, ideal, aihwkit-style).",
    )
    p.add_argument("names", nargs="*", metavar="NAME", help="presets to show (default: all)")
    p.add_argument("--json", action="store_true", help="print devices.info() of every preset")
    p.add_argument("--plot", metavar="DIR", help="write one response figure per preset to DIR")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def plot_presets(names, out, *, quiet: bool) -> list:
    """One zoo figure per preset (``<name>.png`` in ``out``); return the paths."""
    from devices.plotting import save_preset_figure

    paths = []
    for name in progress_bar(names, quiet=quiet, desc="plotting presets"):
        path = out / f"{name}.png"
        save_preset_figure(name, path)
        paths.append(path)
    return paths


def run(args) -> int:
    """Run ``synapse-sim devices``."""
    import devices
    from devices.presets import TABLE_HEADER, table_rows

    names = args.names or devices.names()
    for name in names:
        devices.get(name)  # an unknown name raises ValueError with close matches
    if args.plot is not None:
        plot_presets(names, output_dir(args.plot, "--plot"), quiet=args.quiet)
    if args.json:
        records = [jsonable(devices.info(n)) for n in names]
        print(json.dumps(records, indent=2, allow_nan=False))
    else:
        print(format_columns(TABLE_HEADER, table_rows(names), markdown=False), end="")
        if args.plot is not None:
            print(f"wrote {len(names)} figures to {args.plot}")
    return 0
