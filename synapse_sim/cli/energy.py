"""``synapse-sim energy RESULTS.h5``: device-level energy and latency of the runs of a results
file (``docs/ENERGY.md``).

Runs trained with ``--energy`` show what was recorded (writes, reads, converters, latency).
Other runs show an estimate of the write energy from their stored pulse totals at the preset's
mid-range conductance (reads were not counted then; ``-`` where unknown).
"""

from __future__ import annotations

import json
from pathlib import Path

from .common import jsonable

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> None:
    """Register ``synapse-sim energy``."""
    p = subparsers.add_parser(
        "energy",
        help="device-level energy and latency of the runs of a results file",
        description="Print the device-level energy (arrays only, no periphery) and latency of "
        "every run of a train/compare results.h5: recorded with --energy, or estimated from "
        "the stored pulse totals.",
    )
    p.add_argument("path", help="results.h5 (or its folder)")
    p.add_argument("--json", action="store_true", help="one JSON object per run")
    p.set_defaults(func=run)


def run(args) -> int:
    """Run ``synapse-sim energy``."""
    from ..studies.energy import energy_records, energy_table

    path = Path(args.path)
    if path.is_dir():
        path = path / "results.h5"
    if not path.exists():
        raise FileNotFoundError(f"no results file at '{path}'")
    if args.json:
        print(json.dumps(jsonable(energy_records(path)), indent=2, allow_nan=False))
        return 0
    table = energy_table(path, estimate=True)
    print(table or "no device runs with pulse counts in this file", end="\n" if not table else "")
    return 0
