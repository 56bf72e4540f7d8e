"""``python -m synapse_sim.cli``: the ``synapse-sim`` command."""

import sys

from .main import main

sys.exit(main())
