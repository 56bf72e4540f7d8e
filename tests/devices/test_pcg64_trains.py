"""The compiled PCG64 train drawer (``devices._pcg64``) of the stochastic pulse-train update: it
must give the bits of the numbers numpy's generator hands out (``random(dtype=float32)``: the
low, then the high half of each 64-bit output) and leave the generator in numpy's state, while
leaping over the numbers that decide no bit. Compared here against numpy's own draws packed by
``array_update._pack_trains`` (the block path it replaces), and its leaps against
``PCG64.advance``."""

from __future__ import annotations

import numpy as np
import pytest

from devices import _pcg64, array_update


def _numpy_trains(rng, thx, thd, BL, used, nw):
    """The block path: numpy's 32-bit outputs (``_raw32``), packed."""
    B, nx = thx.shape
    xb = np.zeros((B, nx, nw), np.uint64)
    db = np.zeros((B, thd.shape[1], nw), np.uint64)
    raw = array_update._raw32(rng, B * (nx + thd.shape[1]) * used)
    split = B * nx * used
    array_update._pack_trains(raw[:split], 8, thx, BL, used, xb)
    array_update._pack_trains(raw[split:], 8, thd, BL, used, db)
    return xb, db


def _thresholds(r, B, n, zero=0.5, one=0.1):
    th = np.ceil(r.uniform(0, 1, (B, n)).astype(np.float32) * np.float32(2**24))
    th = th.astype(np.uint32)
    th[r.random((B, n)) < zero] = 0  # probability 0: no bit, no number looked at
    th[r.random((B, n)) < one] = 1 << 24  # probability 1: every bit below BL[b]
    return th


@pytest.mark.parametrize("seed", range(6))
def test_bits_and_state_are_numpys(seed):
    r = np.random.default_rng(seed)
    for _ in range(60):
        B = int(r.integers(0, 6))
        nx, nd = int(r.integers(1, 12)), int(r.integers(1, 12))
        bl = int(r.choice([1, 2, 3, 31, 64, 65, 130]))
        BL = r.integers(1, bl + 1, size=B).astype(np.int64)
        used = int(BL.max()) if B else 1
        nw = (bl + 63) // 64
        zero = float(r.choice([0.0, 0.5, 0.95]))
        thx, thd = _thresholds(r, B, nx, zero), _thresholds(r, B, nd, zero)
        g_ref = np.random.default_rng(int(r.integers(2**32)))
        for _ in range(int(r.integers(0, 3))):  # 0, 1 or 2 halves drawn: a pending half or not
            g_ref.random(dtype=np.float32)
        if r.random() < 0.3:
            g_ref.bit_generator.random_raw(int(r.integers(1, 3000)))
        g = np.random.default_rng()
        g.bit_generator.state = g_ref.bit_generator.state
        xb_ref, db_ref = _numpy_trains(g_ref, thx, thd, BL, used, nw)
        xb, db = np.zeros_like(xb_ref), np.zeros_like(db_ref)
        _pcg64.draw_trains(g.bit_generator, thx, thd, BL, used, xb, db)
        np.testing.assert_array_equal(xb, xb_ref)
        np.testing.assert_array_equal(db, db_ref)
        assert g.bit_generator.state == g_ref.bit_generator.state
        assert g.random(3).tolist() == g_ref.random(3).tolist()


def test_long_runs_of_silent_trains_are_leapt_exactly():
    """A batch whose trains are nearly all of probability 0 (numbers leapt over by thousands)
    still ends on numpy's state and bits."""
    B, nx, nd, used = 16, 3000, 500, 31
    BL = np.full(B, used, np.int64)
    thx = np.zeros((B, nx), np.uint32)
    thd = np.zeros((B, nd), np.uint32)
    thx[3, 2999] = thx[11, 5] = 1 << 23
    thd[15, 499] = 1 << 22
    g_ref = np.random.default_rng(3)
    g_ref.random(dtype=np.float32)  # a pending half
    g = np.random.default_rng()
    g.bit_generator.state = g_ref.bit_generator.state
    xb_ref, db_ref = _numpy_trains(g_ref, thx, thd, BL, used, 1)
    xb, db = np.zeros_like(xb_ref), np.zeros_like(db_ref)
    _pcg64.draw_trains(g.bit_generator, thx, thd, BL, used, xb, db)
    assert xb_ref.any() and db_ref.any()
    np.testing.assert_array_equal(xb, xb_ref)
    np.testing.assert_array_equal(db, db_ref)
    assert g.bit_generator.state == g_ref.bit_generator.state


@pytest.mark.parametrize("k", [1, 2, 3, 12, 13, 1000, 2**31 + 5, 2**63 + 2**40 + 1])
def test_leap_is_numpys_advance(k):
    """``k`` steps by the jump table equal ``PCG64.advance(k)``."""
    bg = np.random.PCG64(11)
    s_hi, s_lo, table, _, _ = _pcg64.read_state(bg)
    hi, lo = _pcg64._leap(s_hi, s_lo, np.uint64(k), table)
    bg.advance(k)
    assert (int(hi) << 64) | int(lo) == bg.state["state"]["state"]


def test_output_function_is_numpys():
    """One step and the XSL-RR output give numpy's next 64-bit output."""
    bg = np.random.PCG64(5)
    s_hi, s_lo, table, _, _ = _pcg64.read_state(bg)
    for _ in range(5):
        s_hi, s_lo = (np.uint64(v) for v in _pcg64._leap(s_hi, s_lo, np.uint64(1), table))
        assert int(_pcg64._output(s_hi, s_lo)) == int(bg.random_raw())


def test_jump_table_composes():
    """Row ``i`` is the map of ``2^i`` steps: row ``i + 1`` is row ``i`` applied twice."""
    inc = np.random.PCG64(2).state["state"]["inc"]
    t = _pcg64.jump_table(inc)
    mask = (1 << 128) - 1
    assert (int(t[0, 0]) << 64 | int(t[0, 1])) == _pcg64.MULTIPLIER
    assert (int(t[0, 2]) << 64 | int(t[0, 3])) == inc
    for i in range(5):
        a = int(t[i, 0]) << 64 | int(t[i, 1])
        c = int(t[i, 2]) << 64 | int(t[i, 3])
        s = 12345
        twice = (a * ((a * s + c) & mask) + c) & mask
        a2 = int(t[i + 1, 0]) << 64 | int(t[i + 1, 1])
        c2 = int(t[i + 1, 2]) << 64 | int(t[i + 1, 3])
        assert (a2 * s + c2) & mask == twice
