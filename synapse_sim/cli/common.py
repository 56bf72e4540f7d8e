"""Helpers shared by the command modules (public, so no command imports from ``main``)."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

__all__ = [
    "PROG",
    "output_dir",
    "add_overwrite_option",
    "add_hidden_option",
    "add_output_options",
    "write_mode",
    "given",
    "given_fields",
    "make_config",
    "run_into_out",
    "print_records",
    "fmt",
    "jsonable",
    "progress_bar",
    "show_progress",
    "format_columns",
    "results_kind",
    "option_error",
    "print_written",
]

#: The program name in messages.
PROG = "synapse-sim"


def add_overwrite_option(parser, *, resume: bool = False) -> None:
    """``--overwrite``: replace an existing ``results.h5`` in ``--out`` (refused otherwise);
    with ``resume``, also ``--resume`` (continue a killed run from its last finished epoch)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing results.h5 in --out (without it an existing file is refused, "
        "so finished work is never lost by accident)",
    )
    if resume:
        group.add_argument(
            "--resume",
            action="store_true",
            help="continue the results.h5 in --out of a run that stopped (killed, crashed): "
            "each configuration goes on from its last finished epoch and ends as an "
            "uninterrupted run would; the options must be the ones of that run",
        )


def add_hidden_option(parser, default: str) -> None:
    """``--hidden N [N ...]``: hidden layer sizes (``default`` is the help text's default)."""
    parser.add_argument(
        "--hidden",
        type=int,
        nargs="+",
        default=None,
        metavar="N",
        help=f"hidden sizes (default {default})",
    )


def add_output_options(parser, *, out: str, resume: bool = False) -> None:
    """The closing options of a study command: ``--seed``, ``--out`` (default ``out``),
    ``--overwrite`` (and ``--resume`` with ``resume``), ``--quiet``."""
    parser.add_argument("--seed", type=int, default=None, help="seed (default 0)")
    parser.add_argument("--out", default=out, metavar="DIR", help="output folder")
    add_overwrite_option(parser, resume=resume)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def given(args, fields) -> dict:
    """``field -> value`` of the options among ``fields`` that were given (not None; a list
    becomes a tuple)."""
    out = {}
    for name in fields:
        v = getattr(args, name, None)
        if v is not None:
            out[name] = tuple(v) if isinstance(v, list) else v
    return out


def given_fields(args, cls, exclude: Iterable[str] = ()) -> dict:
    """:func:`given` over the fields of the config dataclass ``cls`` (the option ``--a-b`` sets
    field ``a_b``), leaving out ``exclude`` (options of a field's name that mean something
    else and are turned into the field by the command itself)."""
    import dataclasses

    skip = set(exclude)
    return given(args, [f.name for f in dataclasses.fields(cls) if f.name not in skip])


def make_config(cls, kw: Mapping, options: Mapping[str, str]):
    """``cls(**kw)``, a bad value raised as a ``ValueError`` naming the option
    (:func:`option_error` with ``options``)."""
    try:
        return cls(**kw)
    except (ValueError, TypeError) as exc:
        raise option_error(exc, options) from None


def run_into_out(study, args):
    """Run ``study`` with :func:`~synapse_sim.studies.base.run_study` into ``--out`` (created
    and checked), with the progress of ``--quiet`` and the mode of ``--overwrite``/``--resume``;
    return what the study returns."""
    from ..studies.base import run_study

    out = output_dir(args.out, "--out")
    return run_study(study, out=out, progress=show_progress(args.quiet), mode=write_mode(args))


def print_records(records: Sequence[Mapping], as_json: bool, line) -> int:
    """Print ``records`` as indented JSON (``as_json``) or one ``line(record)`` each; 0."""
    if as_json:
        import json

        print(json.dumps(jsonable(list(records)), indent=2, allow_nan=False))
    else:
        for rec in records:
            print(line(rec))
    return 0


def fmt(value, spec: str = ".4f") -> str:
    """``value`` formatted with ``spec``, or ``-`` for None (and NaN)."""
    if value is None or value != value:
        return "-"
    return format(value, spec)


def write_mode(args) -> str:
    """The :class:`~synapse_sim.results.ResultsWriter` mode that ``--overwrite`` /
    ``--resume`` ask for (``"new"`` without either)."""
    if getattr(args, "resume", False):
        return "resume"
    return "overwrite" if getattr(args, "overwrite", False) else "new"


def output_dir(path: str, option: str) -> Path:
    """Create ``path`` (with parents) and check that it is a writable directory.

    Parameters
    ----------
    path : str
    option : str
        The option that named it (in the error message), e.g. ``"--out"``.

    Returns
    -------
    Path

    Raises
    ------
    OSError
        Cannot create it, or not writable (the message names the option and the path).
    """
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise OSError(f"{option}: cannot create output directory '{path}': {reason}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise OSError(f"{option}: output directory '{path}' is not writable")
    return out


def jsonable(obj):
    """Recursively convert to JSON-safe values: non-finite floats become ``None``."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):  # numpy scalars and arrays
        obj = obj.tolist()
        if isinstance(obj, list):
            return jsonable(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    return str(obj)


def show_progress(quiet: bool) -> bool:
    """Whether a command shows progress bars: not ``--quiet`` and stdout and stderr are
    terminals."""
    return not quiet and sys.stdout.isatty() and sys.stderr.isatty()


def progress_bar(items: Sequence, *, quiet: bool, desc: str, unit: str = "device") -> Iterable:
    """tqdm bar over ``items``; off with ``--quiet`` or when stdout/stderr is not a terminal."""
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit=unit, disable=not show_progress(quiet), leave=False)


def format_columns(header: Sequence[str], rows: Sequence[Sequence[str]], markdown: bool) -> str:
    """Column-aligned text table, or a (still aligned) markdown table."""
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]

    def line(cells):
        padded = [c.ljust(w) for c, w in zip(cells, widths, strict=True)]
        return "| " + " | ".join(padded) + " |" if markdown else "  ".join(padded).rstrip()

    sep = ["-" * w for w in widths]
    rule = "|-" + "-|-".join(sep) + "-|" if markdown else "  ".join(sep)
    return "\n".join([line(header), rule, *(line(r) for r in rows)]) + "\n"


def results_kind(path) -> str | None:
    """The root attribute ``kind`` of an HDF5 results file (``train``, ``sweep``, ``bars``,
    ...); None when the file cannot be read as HDF5 or has no kind
    (:func:`synapse_sim.results.store.results_kind`)."""
    from ..results.store import results_kind as kind_of

    return kind_of(path)


def option_error(exc: Exception, options: Mapping[str, str], default: str | None = None):
    """``exc`` as a ``ValueError`` prefixed with the command-line option of the config field
    it is about (``exc.field``, set by :func:`synapse_sim.studies.base.field_errors`).

    Parameters
    ----------
    exc : ValueError or TypeError
    options : mapping
        Config field -> option name without dashes, where it is not the field with ``-``
        for ``_``.
    default : str, optional
        Option named when the error carries no field.

    Returns
    -------
    ValueError
    """
    field = getattr(exc, "field", None)
    option = options.get(field, field.replace("_", "-")) if field else default
    if option is None:
        return exc
    return ValueError(f"--{option}: {exc}")


def print_written(files) -> None:
    """Print the ``wrote ...`` line of a command."""
    print(f"wrote {', '.join(str(f) for f in files)}")
