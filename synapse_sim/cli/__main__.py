"""``python -m synapse_sim.cli``: the ``synapse-sim`` command."""

import sys

from .app import main

sys.exit(main())
