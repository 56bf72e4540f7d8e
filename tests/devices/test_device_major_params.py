"""The device-major parameter table of the numba pulse-train update (``DeviceArray.
_device_major_prm``, ``numba_cpu.pulse_update(prm_dm=...)``): the same results as the row-major
table, bit for bit, on a sparse MNIST-like batch (the synapse-by-synapse rows read it) and a
dense one (the lanes keep the row-major table); built once and kept, rebuilt when ``prm`` is
assigned, not kept above the size limit, not pickled; a wrong table is refused by name."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import devices
from devices import array_update
from devices.kernels import numba_cpu as nb


def _batches(rng, n_out, n_in, active, calls=3, batch=6):
    out = []
    for _ in range(calls):
        x = rng.normal(size=(batch, n_in)) * (rng.random((batch, n_in)) < active)
        d = rng.normal(size=(batch, n_out)) * (rng.random((batch, n_out)) < 0.5)
        out.append((x, d))
    return out


@pytest.mark.parametrize("name", ["constant_step", "epiram", "soft_bounds"])
@pytest.mark.parametrize("active", [0.1, 0.9])  # sparse rows / dense lanes
def test_same_results_with_and_without_the_device_major_table(monkeypatch, name, active):
    rng = np.random.default_rng(11)
    shape = (40, 300)
    arrs = [devices.DeviceArray(shape, devices.get(name), mapping="differential", seed=4)
            for _ in range(2)]  # fmt: skip
    batches = _batches(rng, *shape, active)
    for k, arr in enumerate(arrs):
        # the second array never keeps a copy: every call reads the row-major table
        monkeypatch.setattr(array_update, "_DEVICE_MAJOR_MAX_BYTES", (1 << 40) if k == 0 else 0)
        for x, d in batches:
            arr.pulse_update(x, d, 0.05, bl=20)
        assert (arr._device_major_prm() is None) == (k == 1)
    for f in arrs[0].state._fields:
        np.testing.assert_array_equal(getattr(arrs[0].state, f), getattr(arrs[1].state, f), f)
    np.testing.assert_array_equal(arrs[0].weights(), arrs[1].weights())


def test_the_table_is_kept_and_rebuilt_when_prm_is_assigned():
    arr = devices.DeviceArray((8, 16), devices.get("constant_step"), seed=0)
    t = arr._device_major_prm()
    assert t.flags.f_contiguous and np.array_equal(t, arr.prm)
    assert arr._device_major_prm() is t  # kept
    arr.prm = arr.prm * 1.0  # a new table
    t2 = arr._device_major_prm()
    assert t2 is not t and np.array_equal(t2, arr.prm)
    for clone in (copy.deepcopy(arr), pickle.loads(pickle.dumps(arr))):
        assert "_prm_dm" not in clone.__dict__
        assert np.array_equal(clone._device_major_prm(), arr.prm)


def test_a_wrong_table_is_refused_by_name():
    arr = devices.DeviceArray((4, 6), devices.get("constant_step"), seed=0)
    st, pa = arr.state, arr.params
    x = np.ones((1, 6))
    d = np.ones((1, 4))
    _, xbits, dbits, xneg, dneg, bases, _ = arr._fused_trains(x, d, 0.1, 0.01, 4, True, True)
    W = arr._clean_weights().reshape(-1)
    for bad in (np.ascontiguousarray(pa.prm), np.asfortranarray(pa.prm[:, :-1])):
        with pytest.raises(ValueError, match="prm_dm"):
            nb.pulse_update(st, pa, bases, xbits, dbits, xneg, dneg, 4, 6, 1, W, arr.alpha,
                            arr._gref_code(), prm_dm=bad)  # fmt: skip
