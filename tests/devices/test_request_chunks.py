"""The numba request kernel's chunked scan (``numba_cpu._request_chunk``): the synapses whose
request can write are listed branch-free a chunk at a time, written in order with their lines
prefetched ahead, reading the device-major parameter table when the array keeps one. None of
this may change a result: the serial and parallel twins, with and without the table, across
chunk boundaries, with dead-zone, full and non-finite chunks, end in the same state, counts,
flags and weight cache as the numpy reference."""

from __future__ import annotations

import numpy as np
import pytest

import devices
from devices import array_update
from devices.kernels import numba_cpu as nb

SHAPE = (7, 400)  # 2,800 synapses: two whole chunks and a partial one


def _requests(rng, kind):
    dW = rng.normal(0, 0.05, SHAPE) * (rng.random(SHAPE) < 0.3)
    if kind == "dead":  # every request inside the dead zone: nothing is written
        dW = np.full(SHAPE, 1e-9)
    elif kind == "full":  # every request writes: a chunk's list is full
        dW = rng.choice((-1.0, 1.0), SHAPE) * rng.uniform(0.02, 0.05, SHAPE)
    return dW


def _run(backend, mapping, method, kind, *, parallel=False, table=True, monkeypatch=None):
    monkeypatch.setattr(nb, "_PARALLEL_MIN", 0 if parallel else 1 << 21)
    monkeypatch.setattr(array_update, "_DEVICE_MAJOR_MAX_BYTES", (256 << 20) if table else 0)
    a = devices.DeviceArray(SHAPE, devices.get("constant_step"), seed=3, backend=backend,
                            mapping=mapping)  # fmt: skip
    a.program(np.random.default_rng(0).uniform(-0.5, 0.5, SHAPE), form="centered")
    rng = np.random.default_rng(9)
    out = []
    for _ in range(3):
        r = a.pulse_request(_requests(rng, kind), method=method, refresh_threshold=0.6)
        out.append((r["pulses"], None if r["needs_refresh"] is None else r["needs_refresh"].copy()))
    # only the numba kernels read the table: no copy is made on the other backends
    assert (a._device_major_prm() is not None) == (table and backend == "numba")
    return a, out


CASES = [("reference", "bidirectional"), ("differential", "bidirectional"),
         ("differential", "unidirectional")]  # fmt: skip


@pytest.mark.parametrize("mapping,method", CASES)
@pytest.mark.parametrize("kind", ["sparse", "dead", "full"])
def test_chunked_kernel_equals_reference(monkeypatch, mapping, method, kind):
    ref, ref_out = _run("numpy", mapping, method, kind, monkeypatch=monkeypatch)
    for parallel in (False, True):
        for table in (True, False):
            a, out = _run("numba", mapping, method, kind, parallel=parallel, table=table,
                          monkeypatch=monkeypatch)  # fmt: skip
            where = f"parallel={parallel} table={table}"
            for (p, f), (q, g) in zip(out, ref_out, strict=True):
                assert p == q, where
                assert (f is None and g is None) or np.array_equal(f, g), where
            for name in a.state._fields:
                np.testing.assert_allclose(
                    getattr(a.state, name),
                    getattr(ref.state, name),
                    rtol=0,
                    atol=1e-15,
                    err_msg=f"{name} {where}",
                )
            np.testing.assert_array_equal(a.weights(), a._clean_weights())
    if kind == "dead":
        assert all(p == 0 for p, _ in ref_out)
    if kind == "full":  # every synapse got a pulse on each call (one or two devices)
        assert all(p >= SHAPE[0] * SHAPE[1] for p, _ in ref_out)


@pytest.mark.parametrize("parallel", [False, True])
def test_non_finite_requests_are_counted_across_chunks(monkeypatch, parallel):
    monkeypatch.setattr(nb, "_PARALLEL_MIN", 0 if parallel else 1 << 21)
    a = devices.DeviceArray(SHAPE, devices.get("constant_step"), seed=3)
    G0 = a.G.copy()
    dW = np.zeros(SHAPE)
    flat = dW.reshape(-1)
    bad = [0, 1023, 1024, 2047, 2799]  # both ends of every chunk
    flat[bad] = [np.nan, np.inf, -np.inf, np.nan, np.nan]
    with pytest.raises(ValueError, match=f"dW contains {len(bad)} NaN or infinite"):
        a.pulse_request(dW)
    np.testing.assert_array_equal(a.G, G0)


def test_a_wrong_table_is_refused_by_name():
    a = devices.DeviceArray((4, 6), devices.get("constant_step"), seed=0)
    W = a._clean_weights().reshape(-1)
    need = np.zeros(1, dtype=bool)
    for bad in (np.ascontiguousarray(a.params.prm), np.asfortranarray(a.params.prm[:, :-1])):
        with pytest.raises(ValueError, match="prm_dm"):
            nb.pulse_request(a.state, a.params, np.full(24, 0.01), 0.001, 0.001, 0.5, 0, False, 0,
                             1, 2, 0.0, 0.0, 1.0, need, W, a.alpha, a._gref_code(),
                             prm_dm=bad)  # fmt: skip


def _listing_by_definition(dW, c0, c1, skip):
    """The synapses the write pass must see: outside the dead zone and nonzero, NaN included."""
    v = dW[c0:c1]
    return c0 + np.flatnonzero(~((np.abs(v) < skip) | (v == 0.0)))


@pytest.mark.parametrize("listed", [0.0, 0.05, 0.5, 1.0])
def test_listing_equals_its_definition(listed):
    """``_list_writes`` (64 synapses per bit mask, then a tail) lists exactly the synapses of the
    plain definition, in increasing order, over whole words, tails, empty and full ranges,
    non-finite requests and the stochastic rounding's zero dead zone."""
    rng = np.random.default_rng(int(listed * 100))
    lst = np.full(nb._CHUNK, -1, dtype=np.int64)
    flags = np.empty(nb._WORD, dtype=np.uint8)
    for trial in range(40):
        n = int(rng.integers(1, 3 * nb._CHUNK))
        dW = rng.normal(0.0, 1.0, n) * (rng.random(n) < 0.7)
        dW[rng.random(n) < 0.01] = rng.choice([np.nan, np.inf, -np.inf, -0.0])
        skip = float(np.quantile(np.abs(dW[np.isfinite(dW)]), 1.0 - listed)) if listed else 1e300
        if trial % 5 == 0:
            skip = 0.0  # stochastic rounding: only exact zeros stay off the list
        c0 = int(rng.integers(0, n))
        c1 = min(n, c0 + int(rng.integers(0, nb._CHUNK + 1)))
        want = _listing_by_definition(dW, c0, c1, skip)
        m = nb._list_writes(c0, c1, dW, skip, lst, flags)
        assert m == want.size
        np.testing.assert_array_equal(lst[:m], want)


def test_listing_of_a_whole_word_of_each_pattern():
    """Every flag position of a 64-synapse word is listed (a mask bit per position, the byte
    gather of each group of eight), and a single listed synapse at each position alone."""
    lst = np.empty(nb._CHUNK, dtype=np.int64)
    flags = np.empty(nb._WORD, dtype=np.uint8)
    for k in range(nb._WORD):
        dW = np.zeros(nb._WORD)
        dW[k] = 1.0
        assert nb._list_writes(0, nb._WORD, dW, 0.5, lst, flags) == 1 and lst[0] == k
    dW = np.ones(nb._WORD)
    assert nb._list_writes(0, nb._WORD, dW, 0.5, lst, flags) == nb._WORD
    np.testing.assert_array_equal(lst[: nb._WORD], np.arange(nb._WORD))
