"""The ``synapse-sim`` command line: one module per command (parse -> config -> run_study ->
print), the parser and entry point in :mod:`synapse_sim.cli.app`, shared helpers in
:mod:`synapse_sim.cli.common`.

``synapse_sim.cli.main`` is always the entry-point function (the module that defines it is
``app``, so importing a submodule never rebinds the name).
"""

__all__ = ["main"]


def main(argv=None) -> int:
    """Entry point of the ``synapse-sim`` console script (:func:`synapse_sim.cli.app.main`).

    The parser module is imported on the first call, so ``import synapse_sim.cli`` stays light.
    """
    from .app import main as run

    return run(argv)
