"""``synapse-sim show PATH``: the table of a results file, whatever study wrote it.

The file's root attribute ``kind`` (read once, :func:`~synapse_sim.cli.common.results_kind`)
picks the view: :data:`SHOW_BY_KIND` for the kinds with their own view, the run table of
:func:`synapse_sim.studies.train.markdown_report` for ``train`` and ``compare``.
"""

from __future__ import annotations

import json
from pathlib import Path

from .common import jsonable, results_kind

__all__ = ["add_parser", "run", "SHOW_BY_KIND"]

#: Results kinds with their own view: root attribute ``kind`` -> "module:function" taking
#: ``(path, as_json=...)``. Other kinds (``train``, ``compare``) use the run table.
SHOW_BY_KIND = {
    "sweep": "synapse_sim.cli.sweep:show_sweep",
    "bars": "synapse_sim.cli.bars:show_bars",
    "continual": "synapse_sim.cli.continual:show_continual",
    "qat": "synapse_sim.cli.qat:show_qat",
    "infer": "synapse_sim.cli.infer:show_infer",
}


def add_parser(subparsers) -> None:
    """Register ``synapse-sim show``."""
    p = subparsers.add_parser(
        "show",
        help="print the table of a results file",
        description="Print the table of a finished (or unfinished) results.h5.",
    )
    p.add_argument("path", help="results.h5 (or its folder)")
    p.add_argument("--json", action="store_true", help="one JSON object per configuration")
    p.set_defaults(func=run)


def run(args) -> int:
    """Run ``synapse-sim show``."""
    import importlib

    from ..results.store import summary_records
    from ..studies.train import markdown_report

    path = Path(args.path)
    if path.is_dir():
        single, sweep = path / "results.h5", path / "sweep.h5"
        path = sweep if sweep.exists() and not single.exists() else single
    if not path.exists():
        raise FileNotFoundError(f"no results file at '{path}'")
    view = SHOW_BY_KIND.get(results_kind(path))
    if view is not None:
        module, func = view.split(":")
        return getattr(importlib.import_module(module), func)(path, as_json=args.json)
    if args.json:
        print(json.dumps(jsonable(summary_records(path)), indent=2, allow_nan=False))
    else:
        print(markdown_report(path), end="")
    return 0
