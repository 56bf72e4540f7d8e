"""Small networks and state comparisons shared by the batch-1 (online) path's tests.

Not a test file (the name does not start with ``test_``); pytest puts this folder on
``sys.path``, so the test modules import it by name.
"""

from __future__ import annotations

import numpy as np

import devices
from synapse_sim.models.mlp import MLP
from synapse_sim.studies.train import initial_weights


def small_net(**array_kw):
    """A 6-4-3 sigmoid network of device arrays (pcmo, differential pairs by default)."""
    W0 = initial_weights([6, 4, 3], "neurosim", np.random.default_rng(0))
    dev = array_kw.pop("device", devices.get("pcmo"))
    mapping = array_kw.pop("mapping", "differential")
    layers = []
    for W in W0:
        a = devices.DeviceArray(W.shape, dev, mapping=mapping, seed=1, **array_kw)
        a.program(W)
        layers.append(a)
    return MLP(layers)


def arrays_equal(a, b):
    """Assert two arrays' whole state and call counter equal."""
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:  # conductances, counters, read counts, call counter, ...
        np.testing.assert_array_equal(sa[k], sb[k], err_msg=k)
    assert a.counter == b.counter
