"""The ``synapse-sim`` command line: one module per command (parse -> config -> run -> print)."""

from .main import main

__all__ = ["main"]
