"""Parity of the CUDA kernels with the numpy reference under the numba CUDA simulator.

Not collected by an ordinary test run (the file name does not start with ``test_``):
``tests/devices/test_cuda_kernels.py`` runs it in a subprocess with ``NUMBA_ENABLE_CUDASIM=1``,
which must be set before ``numba.cuda`` is first imported. Run it by hand with::

    NUMBA_ENABLE_CUDASIM=1 python -m pytest tests/devices/cuda_sim_kernels.py -q

The simulator runs one Python thread per CUDA thread: grids are small.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from kernel_cases import (
    RTOL,
    State,
    call_update,
    call_write,
    check_counters_land_in_their_fields,
    draw_trains,
    family_device,
    seed_of,
)

import devices
from devices import _rng
from devices.kernels import ROUTE_PUSH_PULL, ROUTE_SINGLE, ROUTE_UNIDIRECTIONAL
from devices.kernels import reference as ref

#: The family cases run under the (slow) simulator: one of each kernel code path.
FAMILIES = ("exp_d2d", "linear", "soft_bounds", "linear_step", "lut")

if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":  # pragma: no cover - guarded by the runner
    pytest.skip("needs NUMBA_ENABLE_CUDASIM=1", allow_module_level=True)


def cuda_mod():
    from devices.kernels import cuda

    assert cuda.SIMULATOR
    return cuda


# ------------------------------------------------------------------------------------ write
@pytest.mark.parametrize("c2c", [0.0, 0.03])
@pytest.mark.parametrize("family", FAMILIES)
def test_cuda_write_equals_reference(family, c2c, lut_device):
    """write(): c2c noise, frozen devices, endurance budgets, LTP/LTD and programming counts."""
    cu = cuda_mod()
    dev = family_device(family, lut_device)
    rng = np.random.default_rng(seed_of(family, c2c))
    s0 = State(dev, (6, 9), 2, seed=4, rng=rng)
    n = rng.integers(-s0.P, s0.P + 1, s0.G.size).astype(np.int64)
    n[rng.random(s0.G.size) < 0.2] = 0
    a, b = s0.copy(), s0.copy()
    for t, prog in enumerate((False, True)):
        base = np.uint64(_rng.call_base(0xDEADBEEF, t))
        call_write(ref, a, n, c2c, base, prog)
        call_write(cu, b, n, c2c, base, prog)
        a.assert_equal(b)
        n = rng.integers(-5, 6, s0.G.size).astype(np.int64)
    moved = a.G != s0.G
    assert moved.any() and not moved[s0.frozen == 1].any()


@pytest.mark.parametrize("family", ["exp_d2d", "linear_step", "lut"])
def test_cuda_write_sparse_equals_reference(family, lut_device):
    cu = cuda_mod()
    dev = family_device(family, lut_device)
    rng = np.random.default_rng(seed_of("sparse", family))
    s0 = State(dev, (5, 8), 2, seed=2, rng=rng)
    idx = rng.choice(s0.G.size, 30, replace=False)
    counts = rng.integers(-20, 21, idx.size)
    base = np.uint64(_rng.call_base(5, 5))
    a, b = s0.copy(), s0.copy()
    for mod, s in ((ref, a), (cu, b)):
        mod.write_sparse(*s.records(0.02), idx, counts, base, True)
    a.assert_equal(b)
    untouched = np.setdiff1d(np.arange(s0.G.size), idx)
    np.testing.assert_array_equal(b.G[untouched], s0.G[untouched])
    assert (b.cnt_prog - s0.cnt_prog).sum() == np.abs(counts).sum()


@pytest.mark.parametrize("sigma", [0.0, 0.05])
def test_cuda_read_noisy_equals_reference(sigma, rng):
    cu = cuda_mod()
    G = rng.uniform(1e-7, 5e-6, 300)
    base = np.uint64(_rng.call_base(12345, 3))
    o1, o2 = np.empty_like(G), np.empty_like(G)
    ref.read_noisy(G, sigma, base, o1)
    cu.read_noisy(G, sigma, base, o2)
    np.testing.assert_allclose(o1, o2, rtol=RTOL, atol=0)
    assert (o2 != G).any() == (sigma > 0)


# ------------------------------------------------------------------------------------ update
@pytest.mark.parametrize(
    ("route", "k", "bl"),
    [(ROUTE_SINGLE, 1, 31), (ROUTE_SINGLE, 2, 31), (ROUTE_PUSH_PULL, 2, 100),
     (ROUTE_UNIDIRECTIONAL, 2, 31)],
)  # fmt: skip
@pytest.mark.parametrize("family", ["exp_d2d", "linear_step", "lut"])
def test_cuda_pulse_update_equals_reference(family, route, k, bl, lut_device):
    """pulse_update for the three routes, multi-word trains, c2c, frozen and budgets."""
    cu = cuda_mod()
    dev = family_device(family, lut_device)
    rng = np.random.default_rng(seed_of("update", family, route, k, bl))
    n_out, n_in, B = 5, 7, 4
    s0 = State(dev, (n_out, n_in), k, seed=5, rng=rng)
    arr = devices.DeviceArray((n_out, n_in), dev, seed=1, backend="numpy")
    xbits, dbits, xneg, dneg = draw_trains(rng, arr, B, n_out, n_in, bl)
    bases = np.array([_rng.call_base(99, b) for b in range(B)], dtype=np.uint64)
    out = {}
    for mod, s in ((ref, a := s0.copy()), (cu, b := s0.copy())):
        out[mod] = call_update(mod, s, 0.03, bases, xbits, dbits, xneg, dneg, n_out, n_in, route)
    assert out[ref] == out[cu] > 0
    a.assert_equal(b)
    if route == ROUTE_UNIDIRECTIONAL:
        np.testing.assert_array_equal(b.cnt_dn, s0.cnt_dn)


# ------------------------------------------------------------------------------------ requests
@pytest.mark.parametrize(
    ("route", "k", "stochastic", "n_max", "thr"),
    [(ROUTE_SINGLE, 1, False, 0, 0.0), (ROUTE_PUSH_PULL, 2, False, 3, 0.6),
     (ROUTE_PUSH_PULL, 2, True, 0, 0.6), (ROUTE_UNIDIRECTIONAL, 2, True, 2, 0.0),
     (ROUTE_SINGLE, 2, False, 0, 0.5)],
)  # fmt: skip
@pytest.mark.parametrize("family", ["exp_d2d", "soft_bounds", "lut"])
def test_cuda_pulse_request_equals_reference(family, route, k, stochastic, n_max, thr, lut_device):
    """Deterministic (dead zone) and stochastic rounding, caps, refresh flags, NaN requests."""
    cu = cuda_mod()
    dev = family_device(family, lut_device)
    rng = np.random.default_rng(seed_of("request", family, route, k, stochastic, n_max))
    n_out, n_in = 6, 8
    s0 = State(dev, (n_out, n_in), k, seed=3, rng=rng)
    step = 1.0 / 32
    dW = rng.normal(0, 3 * step, s0.N)
    dW[:4] = 0.0
    dW[4] = np.nan
    dW[5] = -np.inf
    res = {}
    needs = {}
    for mod, s in ((ref, a := s0.copy()), (cu, b := s0.copy())):
        need = np.zeros(s0.N, dtype=bool)
        res[mod] = mod.pulse_request(
            *s.records(0.02), dW, step, 1.3 * step, 0.5, n_max, stochastic, route,
            np.uint64(11), np.uint64(12), thr, 0.5 / 32, dev.dG, need, s.W, s.alpha, s.gref,
        )  # fmt: skip
        needs[mod] = need
    assert res[ref] == res[cu]
    assert res[cu][0] > 0 and res[cu][1] == 2
    a.assert_equal(b)
    np.testing.assert_array_equal(needs[ref], needs[cu])
    if thr > 0 and k == 2:
        assert needs[cu].any()


# ------------------------------------------------------------------------------------ verify
@pytest.mark.parametrize("read_sigma", [0.0, 0.02])
@pytest.mark.parametrize("family", ["exp_d2d", "linear", "linear_step", "lut"])
def test_cuda_verify_equals_reference(family, read_sigma, lut_device):
    """Program-and-verify: same trains, same reads, same longest sequence."""
    cu = cuda_mod()
    dev = family_device(family, lut_device)
    rng = np.random.default_rng(seed_of("verify", family, read_sigma))
    s0 = State(dev, (4, 6), 2, seed=6, rng=rng)
    idx = rng.choice(s0.G.size, 20, replace=False)
    s0.G[idx] = s0.gmin_i[idx]
    target = dev.gmin + rng.uniform(0.05, 0.95, idx.size) * dev.dG
    x_t = np.minimum(dev.pulses(target, "ltp"), 2.0 * dev.levels("ltp"))
    pn = dev._nominal()[0]
    tol_g = 0.25 * dev.dG / dev.levels("ltp")
    out = {}
    for mod, s in ((ref, a := s0.copy()), (cu, b := s0.copy())):
        out[mod] = mod.verify(
            *s.records(0.01), idx, target, x_t, tol_g, 2 * dev.levels("ltp"), read_sigma,
            np.uint64(0x1234ABCD), 17, pn,
        )  # fmt: skip
    assert out[ref] == out[cu] > 1
    a.assert_equal(b)
    assert (b.cnt_prog > s0.cnt_prog).any()


def test_cuda_counters_land_in_their_fields():
    """Up pulses only in cnt_up, down only in cnt_dn, programming only in cnt_prog (the host
    wrappers unpack the records into the kernels' leading parameters)."""
    check_counters_land_in_their_fields(cuda_mod())


# ------------------------------------------------------------------------------------ trains
@pytest.mark.parametrize("bl", [31, 64, 100])
def test_cuda_pulse_trains_equal_xp_version(bl):
    """The GPU train kernel draws the bits of devices.xp.pulse_trains (numpy)."""
    from devices import xp

    cu = cuda_mod()
    rng = np.random.default_rng(bl)
    B, n = 3, 9
    p = rng.uniform(0, 1, (B, n))
    p[0, :2] = [0.0, 1.0]
    BL = np.array([bl, max(1, bl // 3), 1])
    base = _rng.call_base(77, bl)
    got = cu.pulse_trains(p, BL, bl, base)
    want = xp.pulse_trains(np, p, BL, bl, base)
    assert got.dtype == np.uint64 and got.shape == (B, n, (bl + 63) // 64)
    np.testing.assert_array_equal(got, want)
    assert np.bitwise_count(got[0, 0]).sum() == 0 and np.bitwise_count(got[0, 1]).sum() == bl
