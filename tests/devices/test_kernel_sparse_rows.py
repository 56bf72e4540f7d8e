"""The sparse path of the numba pulse-train update (``devices/kernels/numba_cpu.py``): a tile
visits only the output rows of each sample that have a pulse (found by a search in the sample's
list of active rows), indexing the batch arrays in place. Bit for bit the numpy reference, in the
serial and the parallel twin (and exactly the same kernel run as one tile), on arrays of many
one-row tiles where active rows fall on the first, the last and scattered rows, and samples have
no active row or no active input."""

from __future__ import annotations

import numpy as np
import pytest
from kernel_cases import State, seed_of

import devices
from devices import _rng
from devices.kernels import ROUTE_PUSH_PULL, ROUTE_SINGLE, ROUTE_UNIDIRECTIONAL
from devices.kernels import numba_cpu as nb
from devices.kernels import reference as ref

FIELDS = ("G", "Gw", "W", "tau", "frozen", "cnt_up", "cnt_dn", "cnt_prog", "cnt_reset")
ROUTES = [(ROUTE_SINGLE, 1), (ROUTE_PUSH_PULL, 2), (ROUTE_UNIDIRECTIONAL, 2)]


def _sparse_trains(rng, B, n_out, n_in, bl):
    arr = devices.DeviceArray((n_out, n_in), devices.get("constant_step"), backend="numpy")
    BL = rng.integers(1, bl + 1, B)
    px = rng.uniform(0.2, 1.0, (B, n_in)) * (rng.random((B, n_in)) < 0.05)
    pd = rng.uniform(0.2, 1.0, (B, n_out)) * (rng.random((B, n_out)) < 0.15)
    pd[0, 0] = pd[0, -1] = 1.0  # the first and the last row (tile boundaries)
    px[0, :2] = 1.0
    pd[1] = 0.0  # a sample without an active row
    px[2] = 0.0  # a sample without an active input
    pd[3] = 0.0
    pd[3, n_out // 2] = 1.0  # one active row in the middle
    px[3, -1] = 1.0
    xbits = arr._draw_bits(px, BL, bl)
    dbits = arr._draw_bits(pd, BL, bl)
    xneg = rng.random((B, n_in)) < 0.5
    dneg = rng.random((B, n_out)) < 0.5
    return xbits, dbits, xneg, dneg


@pytest.mark.parametrize("twin", ["serial", "parallel"])
@pytest.mark.parametrize("name", ["constant_step", "soft_bounds", "epiram"])
@pytest.mark.parametrize(("route", "k"), ROUTES)
def test_sparse_rows_equal_reference_bit_for_bit(route, k, name, twin):
    dev = devices.get(name)
    if route == ROUTE_UNIDIRECTIONAL and name == "soft_bounds":
        pytest.skip("one unidirectional family is enough")
    seed = seed_of(route, k, name, twin)
    rng = np.random.default_rng(seed)
    n_out, n_in, B, bl = 23, 1100, 6, 40
    rows = nb._tile_rows(n_in, n_out)
    assert rows == 1  # many tiles: the search for each tile's first active row is exercised
    s0 = State(dev, (n_out, n_in), k, seed=3, rng=rng)
    xbits, dbits, xneg, dneg = _sparse_trains(rng, B, n_out, n_in, bl)
    bases = np.array([_rng.call_base(7, b) for b in range(B)], dtype=np.uint64)
    a, b = s0.copy(), s0.copy()
    ta = ref.pulse_update(*a.records(0.2), bases, xbits, dbits, xneg, dneg, n_out, n_in, route,
                          a.W, a.alpha, a.gref)  # fmt: skip
    kern = nb._update_ser if twin == "serial" else nb._update_par
    tb = kern(tuple(b.records(0.2)[0]), tuple(b.records(0.2)[1]), bases, xbits, dbits, xneg,
              dneg, n_out, n_in, route, b.W, float(b.alpha), float(b.gref), rows,
              nb._NO_TABLE, (0, 1))  # fmt: skip
    assert ta == tb > 0
    a.assert_equal(b)  # the reference (exact, or to an ulp where numpy's pow/log differ)
    # bit for bit the same kernel run as one tile of all rows (every sample on every row)
    c = s0.copy()
    tc = nb._update_ser(tuple(c.records(0.2)[0]), tuple(c.records(0.2)[1]), bases, xbits, dbits,
                        xneg, dneg, n_out, n_in, route, c.W, float(c.alpha), float(c.gref),
                        n_out, nb._NO_TABLE, (0, 1))  # fmt: skip
    assert tc == tb
    for key in FIELDS:
        np.testing.assert_array_equal(getattr(c, key), getattr(b, key), err_msg=key)
    # and with the parameter table in device-major order (what DeviceArray passes)
    e = s0.copy()
    st, pa = e.records(0.2)
    dm = np.asfortranarray(pa.prm)
    te = nb.pulse_update(st, pa, bases, xbits, dbits, xneg, dneg, n_out, n_in, route, e.W,
                         float(e.alpha), float(e.gref), prm_dm=dm)  # fmt: skip
    assert te == tb
    for key in FIELDS:
        np.testing.assert_array_equal(getattr(e, key), getattr(b, key), err_msg=key)
    # the first and the last row were written by sample 0
    N = n_out * n_in
    wrote = (b.cnt_up + b.cnt_dn) != (s0.cnt_up + s0.cnt_dn)
    per_syn = wrote[:N] | (wrote[N:] if k == 2 else False)
    rows_written = per_syn.reshape(n_out, n_in).any(axis=1)
    assert rows_written[0] and rows_written[-1]
    assert not rows_written.all()  # sparse: some rows got no pulse


def test_sparse_tile_rows():
    """Rows per tile of a batch without lanes: about ``tile_bytes`` of state at the batch's
    active inputs (their union over the samples), never fewer rows than the dense tiles nor
    more than the array, at least ``min_tiles`` tiles where the dense rows allow, and the dense
    rows unchanged when ``tile_bytes`` is 0."""
    per = nb._BYTES_PER_SYNAPSE
    n_in, n_out = 784, 256
    nzx = np.zeros((3, n_in), dtype=np.int64)
    ms = np.array([3, 2, 0])
    nzx[0, :3] = [5, 9, 700]
    nzx[1, :2] = [9, 11]  # 9 again: the union is 4 inputs
    rows = nb._sparse_rows
    assert rows(1, nzx, ms, n_in, n_out, 0, 1) == 1
    assert rows(1, nzx, ms, n_in, n_out, 40 * per * 4, 1) == 40
    assert rows(1, nzx, ms, n_in, n_out, 40 * per * 4 + per, 1) == 40  # whole rows, rounded down
    assert rows(1, nzx, ms, n_in, n_out, 1 << 30, 1) == n_out  # at most the array
    assert rows(3, nzx, ms, n_in, n_out, per, 1) == 3  # at least the dense tiles' rows
    assert rows(1, nzx, ms, n_in, n_out, 1 << 30, 8) == 32  # 8 tiles of 32 rows
    assert rows(1, nzx, ms, n_in, n_out, 1 << 30, 7) == 37  # ceil(256 / 7)
    assert rows(64, nzx, ms, n_in, n_out, 1 << 30, 8) == 64  # the dense rows win
    none = np.zeros(3, dtype=np.int64)  # no active input: counted as one
    assert rows(1, nzx, none, n_in, n_out, 10 * per, 1) == 10


@pytest.mark.parametrize("tile_bytes", [0, 3 * 272 * 2, 1 << 30])
def test_sparse_tiles_do_not_change_results(tile_bytes):
    """The serial and the parallel twin with sparse tiles of one row, a few rows and the whole
    array: the same state bit for bit (each synapse still sees the samples in order)."""
    dev = devices.get("constant_step")
    rng = np.random.default_rng(seed_of("tiles", tile_bytes))
    n_out, n_in, B, bl = 23, 1100, 6, 40
    s0 = State(dev, (n_out, n_in), 2, seed=3, rng=rng)
    xbits, dbits, xneg, dneg = _sparse_trains(rng, B, n_out, n_in, bl)
    bases = np.array([_rng.call_base(7, b) for b in range(B)], dtype=np.uint64)
    ends = []
    for kern, tb in ((nb._update_ser, 0), (nb._update_ser, tile_bytes),
                     (nb._update_par, tile_bytes)):  # fmt: skip
        s = s0.copy()
        st, pa = s.records(0.2)
        tot = kern(tuple(st), tuple(pa), bases, xbits, dbits, xneg, dneg, n_out, n_in,
                   ROUTE_PUSH_PULL, s.W, float(s.alpha), float(s.gref), 1, nb._NO_TABLE,
                   (tb, 4))  # fmt: skip
        ends.append((tot, s))
    assert ends[0][0] > 0
    for tot, s in ends[1:]:
        assert tot == ends[0][0]
        for key in FIELDS:
            np.testing.assert_array_equal(getattr(s, key), getattr(ends[0][1], key), err_msg=key)
