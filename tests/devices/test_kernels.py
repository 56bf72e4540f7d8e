"""Kernels: the numba backend equals the numpy reference on the same random draws
(specs/devices.md s.5.4, DESIGN "Kernels and backends"; acceptance D14)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from kernel_cases import (
    FAMILIES,
    RTOL,
    State,
    call_update,
    call_write,
    draw_trains,
    family_device,
    seed_of,
)
from scipy import stats

import devices
from devices import _rng
from devices.kernels import ROUTE_PUSH_PULL, ROUTE_SINGLE, ROUTE_UNIDIRECTIONAL, get_kernels
from devices.kernels import numba_cpu as nb
from devices.kernels import reference as ref


def test_get_kernels():
    assert get_kernels("numpy") is ref
    assert get_kernels("numba") is nb
    for fn in ("write", "read_noisy", "pulse_update", "pulse_request"):
        f_ref, f_nb = getattr(ref, fn), getattr(nb, fn)
        sig = [inspect.signature(getattr(f, "py_func", f)) for f in (f_ref, f_nb)]
        assert list(sig[0].parameters) == list(sig[1].parameters), fn


# ------------------------------------------------------------------------------------ write
@pytest.mark.parametrize("prog", [False, True])
@pytest.mark.parametrize("c2c", [0.0, 0.03])
@pytest.mark.parametrize("family", FAMILIES)
def test_numba_write_equals_reference(family, c2c, prog, lut_device):
    """D14: write() with c2c noise, stuck/frozen devices and endurance budgets."""
    dev = family_device(family, lut_device)
    rng = np.random.default_rng(seed_of(family, c2c, prog))
    s0 = State(dev, (10, 20), 2, seed=4, rng=rng)
    n_dev = s0.G.size
    cap = int(1.5 * min(s0.P, 300))
    n = rng.integers(-cap, cap + 1, n_dev).astype(np.int64)
    n[rng.random(n_dev) < 0.2] = 0
    base = np.uint64(_rng.call_base(0xDEADBEEF, 7))
    a, b = s0.copy(), s0.copy()
    call_write(ref, a, n, c2c, base, prog)
    call_write(nb, b, n, c2c, base, prog)
    a.assert_equal(b)
    # the state did change where it could, and frozen devices did not
    moved = a.G != s0.G
    assert moved.any()
    assert not moved[s0.frozen == 1].any()
    # a second write on the evolved state stays in lockstep
    n2 = rng.integers(-5, 6, n_dev).astype(np.int64)
    base2 = np.uint64(_rng.call_base(0xDEADBEEF, 8))
    call_write(ref, a, n2, c2c, base2, prog)
    call_write(nb, b, n2, c2c, base2, prog)
    a.assert_equal(b)


def test_write_endurance_semantics_agree():
    """Both kernels apply only what is left of the budget, then freeze."""
    dev = devices.get("ideal", levels_ltp=64, levels_ltd=64)
    rng = np.random.default_rng(0)
    s0 = State(dev, (1, 8), 1, seed=0, rng=rng)
    s0.G[:] = dev.gmin + 0.5 * dev.dG
    s0.frozen[:] = 0
    s0.cnt_up[:] = 0
    s0.cnt_dn[:] = 0
    s0.cnt_prog[:] = 0
    s0.cnt_reset[:] = 0
    s0.budget[:] = [5, 5, 5, 5, np.inf, 1, 3, 10]
    n = np.array([3, 5, 7, -7, 100, 1, -2, 0], dtype=np.int64)
    for mod in (ref, nb):
        s = s0.copy()
        call_write(mod, s, n, 0.0, np.uint64(1), False)
        moved = np.round((s.G - s0.G) / (dev.dG / 64)).astype(int)
        assert moved.tolist() == [3, 5, 5, -5, 32, 1, -2, 0]
        assert s.frozen.tolist() == [0, 1, 1, 1, 0, 1, 0, 0]
        assert (s.cnt_up + s.cnt_dn).tolist() == np.abs(n).tolist()


# ------------------------------------------------------------------------------------ read
@pytest.mark.parametrize("sigma", [0.0, 0.02, 0.3])
def test_numba_read_noisy_equals_reference(sigma, rng):
    G = rng.uniform(1e-7, 5e-6, 5003)
    base = np.uint64(_rng.call_base(12345, 3))
    o1, o2 = np.empty_like(G), np.empty_like(G)
    ref.read_noisy(G, sigma, base, o1)
    nb.read_noisy(G, sigma, base, o2)
    np.testing.assert_allclose(o1, o2, rtol=RTOL, atol=0)
    if sigma:
        assert stats.kstest((o1 / G - 1) / sigma, "norm").pvalue > 0.01


# ------------------------------------------------------------------------------------ update
@pytest.mark.parametrize("bl", [31, 64, 200])
@pytest.mark.parametrize(
    ("route", "k"),
    [(ROUTE_SINGLE, 1), (ROUTE_SINGLE, 2), (ROUTE_PUSH_PULL, 2), (ROUTE_UNIDIRECTIONAL, 2)],
)
@pytest.mark.parametrize("family", ["exp_d2d", "soft_bounds", "linear_step", "lut"])
def test_numba_pulse_update_equals_reference(family, route, k, bl, lut_device):
    """D14: pulse_update for the three routes, multi-word trains (BL > 64), c2c, stuck and
    endurance; counts, states and the returned total agree."""
    dev = family_device(family, lut_device)
    rng = np.random.default_rng(seed_of(family, route, k, bl))
    n_out, n_in, B = 7, 11, 6
    s0 = State(dev, (n_out, n_in), k, seed=5, rng=rng)
    arr = devices.DeviceArray((n_out, n_in), dev, seed=1, backend="numpy")
    xbits, dbits, xneg, dneg = draw_trains(rng, arr, B, n_out, n_in, bl)
    assert xbits.shape[-1] == (bl + 63) // 64
    bases = np.array([_rng.call_base(99, b) for b in range(B)], dtype=np.uint64)
    a, b = s0.copy(), s0.copy()
    ta = call_update(ref, a, 0.03, bases, xbits, dbits, xneg, dneg, n_out, n_in, route)
    tb = call_update(nb, b, 0.03, bases, xbits, dbits, xneg, dneg, n_out, n_in, route)
    assert ta == tb > 0
    a.assert_equal(b)
    # the total is the number of coincidences
    want = sum(int(ref.coincidences(xbits[i], dbits[i]).sum()) for i in range(B))
    assert ta == want
    if route == ROUTE_UNIDIRECTIONAL:
        np.testing.assert_array_equal(a.cnt_dn, s0.cnt_dn)
    if route == ROUTE_SINGLE and k == 2:
        np.testing.assert_array_equal(a.G[n_out * n_in :], s0.G[n_out * n_in :])


def _untiled_update(s, c2c, bases, xbits, dbits, xneg, dneg, n_out, n_in, route):
    """The pre-tiling pulse_update: every sample on the whole array, one sample after another
    (one tile of all rows, serial)."""
    return nb._update_ser(
        *s.records(c2c), bases, xbits, dbits, xneg, dneg, n_out, n_in, route, s.W, s.alpha,
        s.gref, n_out, nb._NO_TABLE, (0, 1),
    )  # fmt: skip


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("tile_bytes", [1, 3 * 272 * 13, 1 << 18])
@pytest.mark.parametrize(("route", "k"), [(ROUTE_SINGLE, 1), (ROUTE_PUSH_PULL, 2),
                                          (ROUTE_UNIDIRECTIONAL, 2)])  # fmt: skip
@pytest.mark.parametrize("family", ["exp_d2d", "soft_bounds", "lut"])
def test_cache_blocked_update_equals_sample_after_sample(family, route, k, tile_bytes, parallel,
                                                         lut_device, monkeypatch):  # fmt: skip
    """Cache blocking (tiles of 1, 3 and all rows), serial and parallel over tiles: bit for bit
    the sample-after-sample pass (each synapse sees the samples in order with the same draws),
    and equal to the numpy reference."""
    dev = family_device(family, lut_device)
    rng = np.random.default_rng(seed_of(family, route, k, tile_bytes))
    n_out, n_in, B = 10, 13, 9
    s0 = State(dev, (n_out, n_in), k, seed=5, rng=rng)
    arr = devices.DeviceArray((n_out, n_in), dev, seed=1, backend="numpy")
    xbits, dbits, xneg, dneg = draw_trains(rng, arr, B, n_out, n_in, 31)
    bases = np.array([_rng.call_base(7, b) for b in range(B)], dtype=np.uint64)
    monkeypatch.setattr(nb, "_TILE_BYTES", tile_bytes)
    monkeypatch.setattr(nb, "_PARALLEL_MIN_UPDATE", 0 if parallel else 1 << 62)
    rows = nb._tile_rows(n_in, n_out)
    assert rows == {1: 1, 3 * 272 * 13: 3, 1 << 18: n_out}[tile_bytes]
    a, b, c = s0.copy(), s0.copy(), s0.copy()
    ta = _untiled_update(a, 0.05, bases, xbits, dbits, xneg, dneg, n_out, n_in, route)
    tb = call_update(nb, b, 0.05, bases, xbits, dbits, xneg, dneg, n_out, n_in, route)
    tc = call_update(ref, c, 0.05, bases, xbits, dbits, xneg, dneg, n_out, n_in, route)
    assert ta == tb == tc > 0
    for key in ("G", "Gw", "W", "tau", "frozen", "cnt_up", "cnt_dn", "cnt_prog", "cnt_reset"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key), err_msg=key)
    c.assert_equal(b)


def test_pulse_update_total_equals_counter_increase():
    dev = devices.get("ideal")
    rng = np.random.default_rng(3)
    n_out, n_in, B = 5, 9, 4
    s0 = State(dev, (n_out, n_in), 2, seed=5, rng=rng)
    s0.frozen[:] = 0
    s0.budget[:] = np.inf
    arr = devices.DeviceArray((n_out, n_in), dev, seed=1, backend="numpy")
    xbits, dbits, xneg, dneg = draw_trains(rng, arr, B, n_out, n_in, 100)
    bases = np.arange(B, dtype=np.uint64)
    for mod in (ref, nb):
        s = s0.copy()
        t = call_update(mod, s, 0.0, bases, xbits, dbits, xneg, dneg, n_out, n_in, 2)
        assert (s.cnt_up - s0.cnt_up).sum() == t
        s = s0.copy()
        t = call_update(mod, s, 0.0, bases, xbits, dbits, xneg, dneg, n_out, n_in, 1)
        assert (s.cnt_up + s.cnt_dn - s0.cnt_up - s0.cnt_dn).sum() == 2 * t


# ------------------------------------------------------------------------------------ rng
def test_counter_based_normals():
    base = _rng.call_base(2024, 0)
    z = _rng.normal_np(base, np.arange(100_000))
    assert stats.kstest(z, "norm").pvalue > 0.01
    u = _rng.uniform_np(base, np.arange(100_000))
    assert np.all((u > 0) & (u < 1))
    assert stats.kstest(u, "uniform").pvalue > 0.01
    # a pure function of (base, index): order and subsets do not matter
    idx = np.array([5, 99_999, 17])
    np.testing.assert_array_equal(_rng.normal_np(base, idx), z[idx])
    # different call counters give independent streams
    z2 = _rng.normal_np(_rng.call_base(2024, 1), np.arange(100_000))
    assert abs(np.corrcoef(z, z2)[0, 1]) < 0.01
    assert _rng.call_base(2024, 0) == base


# ------------------------------------------------------------------------------------ arrays
def run_ops(backend, seed=3):
    dev = devices.get("ag_a_si", sigma_nl=0.8, read_sigma=0.03, endurance_n50=300)
    arr = devices.DeviceArray((6, 9), dev, seed=seed, backend=backend)
    rng = np.random.default_rng(0)
    outs = []
    arr.pulse(rng.integers(-20, 21, (6, 9)), rng.integers(-20, 21, (6, 9)))
    for method, side in (("bidirectional", "both"), ("bidirectional", "plus"),
                         ("unidirectional", "both")):  # fmt: skip
        r = arr.pulse_update(
            rng.uniform(-1, 1, (5, 9)), rng.uniform(-1, 1, (5, 6)), lr=0.2, bl=100,
            method=method, side=side,
        )  # fmt: skip
        outs.append(r["coincidences"])
    outs.append(arr.matmul(rng.uniform(-1, 1, (2, 9))))
    arr.program(rng.uniform(-1, 1, (6, 9)), mode="open_loop")
    outs.append(arr.weights(noise=True))
    return arr, outs


def test_numba_and_numpy_arrays_agree(one_numba_thread):
    """D14 at the array level: the same seed gives the same run on both backends (~1e-12)."""
    a, oa = run_ops("numpy")
    b, ob = run_ops("numba")
    assert oa[:3] == ob[:3]
    for x, y in zip(oa[3:], ob[3:], strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(a.G, b.G, rtol=RTOL, atol=0)
    for k in ("cnt_up", "cnt_dn", "cnt_prog", "cnt_reset", "frozen"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k), err_msg=k)
