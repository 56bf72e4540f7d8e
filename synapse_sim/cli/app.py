"""The ``synapse-sim`` command line: the parser of every command and the entry point.

Commands (one module each under :mod:`synapse_sim.cli`)
-------------------------------------------------------
``demo``, ``train``, ``compare``, ``sweep``, ``bars``, ``continual``, ``qat``, ``show``,
``devices``, ``zoo``, ``fit``.

Adding a command
----------------
Write ``synapse_sim/cli/<name>.py`` with two functions and list the first in
:data:`COMMANDS`:

``add_parser(subparsers)``
    Adds the sub-parser with ``subparsers.add_parser(...)``, its options (default None where
    the study's config has the default) and ``set_defaults(func=run)``.
``run(args) -> int``
    parse -> config -> :func:`synapse_sim.studies.base.run_study` -> print; returns the exit
    status. Import heavy modules (torch, ...) inside the function so that ``--help`` stays
    fast. Bad user input raises ``ValueError`` / ``TypeError`` / ``OSError`` (a config error
    becomes ``--option: message`` through :func:`synapse_sim.cli.common.option_error`);
    :func:`main` turns it into one ``synapse-sim: error: ...`` line and exit status 2 (set
    ``SYNAPSE_SIM_TRACEBACK=1`` to see the traceback instead). Shared helpers live in
    :mod:`synapse_sim.cli.common`, never here.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from . import bars, compare, continual, demo, devices, energy, fit, infer, qat, show, train, zoo
from .common import PROG
from .sweep import add_sweep_parser

__all__ = ["main", "build_parser", "COMMANDS"]

_EXIT_USAGE = 2

#: Sub-command registrars, in the order ``--help`` lists them.
COMMANDS: tuple[Callable, ...] = (
    demo.add_parser,
    train.add_parser,
    compare.add_parser,
    add_sweep_parser,
    bars.add_parser,
    continual.add_parser,
    qat.add_parser,
    show.add_parser,
    devices.add_parser,
    zoo.add_parser,
    fit.add_parser,
    energy.add_parser,
    infer.add_parser,
)


class _UsageError(Exception):
    """A command-line error found by argparse (reported as one line, exit status 2)."""


class _Parser(argparse.ArgumentParser):
    """ArgumentParser that raises instead of printing usage and calling ``sys.exit``."""

    def error(self, message):
        raise _UsageError(message)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("synapse-sim")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "unknown"


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
