"""The ``synapse-sim`` command line: one module per command (parse -> config -> run_study ->
print), the parser and entry point in :mod:`synapse_sim.cli.main`, shared helpers in
:mod:`synapse_sim.cli.common`."""

__all__ = ["main"]


def main(argv=None) -> int:
    """Entry point of the ``synapse-sim`` console script (:func:`synapse_sim.cli.main.main`).

    The submodule :mod:`synapse_sim.cli.main` is imported on the first call only, so that once
    it is imported, ``synapse_sim.cli.main`` names the module (its ``build_parser`` too).
    """
    from .main import main as run

    return run(argv)
