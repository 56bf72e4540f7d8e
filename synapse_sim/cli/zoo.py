"""``synapse-sim zoo``: one response figure per preset and ``devices.md``."""

from __future__ import annotations

from .common import format_columns, output_dir
from .devices import plot_presets

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> None:
    """Register ``synapse-sim zoo``."""
    p = subparsers.add_parser(
        "zoo",
        help="write the device zoo (one figure per preset and devices.md)",
        description="Write the device zoo to --out: one PNG per preset and devices.md.",
    )
    p.add_argument("--out", default="runs/zoo", metavar="DIR", help="output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    """Run ``synapse-sim zoo``."""
    import devices
    from devices.presets import TABLE_HEADER, table_rows

    out = output_dir(args.out, "--out")
    names = devices.names()
    plot_presets(names, out, quiet=args.quiet)
    table = format_columns(TABLE_HEADER, table_rows(names), markdown=True)
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
