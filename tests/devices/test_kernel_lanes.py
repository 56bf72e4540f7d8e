"""The lane-by-lane (SIMD) path of the numba pulse-train update for step devices, without a slope
("linear lanes") and with one ("sloped lanes", soft bounds): bit for bit the numpy reference and
the scalar path, on every route, with cycle-to-cycle noise (including the ziggurat's slow draws
and, for the sloped lanes, noise too large for the series of ``log1p`` / ``expm1``, which the
scalar write finishes with the C library), frozen devices and endurance budgets that run out
during the batch; and it is taken only where it applies."""

from __future__ import annotations

import numpy as np
import pytest
from kernel_cases import State, call_update, seed_of

import devices
from devices import _rng
from devices.kernels import ROUTE_PUSH_PULL, ROUTE_SINGLE, ROUTE_UNIDIRECTIONAL
from devices.kernels import numba_cpu as nb
from devices.kernels import reference as ref

FIELDS = ("G", "Gw", "W", "tau", "frozen", "cnt_up", "cnt_dn", "cnt_prog", "cnt_reset")
ALL = np.full(3, 40, dtype=np.int64)  # three samples with every input active
ROUTES = [(ROUTE_SINGLE, 1), (ROUTE_SINGLE, 2), (ROUTE_PUSH_PULL, 2), (ROUTE_UNIDIRECTIONAL, 2)]


def _dense_trains(rng, B, n_out, n_in, bl, p_in=0.9):
    """Trains in which most lanes of a row coincide (the lanes path) except two sparse samples
    (the scalar path inside a linear tile) and one empty sample."""
    BL = np.full(B, bl)
    arr = devices.DeviceArray((n_out, n_in), devices.get("constant_step"), backend="numpy")
    px = rng.uniform(0.3, 1.0, (B, n_in)) * (rng.random((B, n_in)) < p_in)
    pd = rng.uniform(0.3, 1.0, (B, n_out))
    px[1] = 0.0
    px[2] = 0.0
    px[2, :3] = 0.5  # a few active inputs: below the dense threshold
    pd[3] *= 0.02  # sparse coincidences in every row of this sample
    xbits = arr._draw_bits(px, BL, bl)
    dbits = arr._draw_bits(pd, BL, bl)
    xneg = rng.random((B, n_in)) < 0.5
    dneg = rng.random((B, n_out)) < 0.5
    return xbits, dbits, xneg, dneg


def _run_both(dev, route, k, bl, c2c, seed, budgets=True, n_out=6, n_in=40, B=8):
    rng = np.random.default_rng(seed)
    s0 = State(dev, (n_out, n_in), k, seed=5, rng=rng)
    if not budgets:
        s0.budget[:] = np.inf
    xbits, dbits, xneg, dneg = _dense_trains(rng, B, n_out, n_in, bl)
    bases = np.array([_rng.call_base(11, b) for b in range(B)], dtype=np.uint64)
    a, b = s0.copy(), s0.copy()
    ta = call_update(ref, a, c2c, bases, xbits, dbits, xneg, dneg, n_out, n_in, route)
    tb = call_update(nb, b, c2c, bases, xbits, dbits, xneg, dneg, n_out, n_in, route)
    return s0, a, b, ta, tb


@pytest.mark.parametrize("budgets", [True, False])
@pytest.mark.parametrize("c2c", [0.0, 0.3])
@pytest.mark.parametrize("bl", [31, 100])
@pytest.mark.parametrize(("route", "k"), ROUTES)
def test_lanes_equal_reference_bit_for_bit(route, k, bl, c2c, budgets):
    """constant_step (family 1, no slope): every state field equals the numpy reference exactly
    (the operations are +, -, *, / and sqrt in the same order), for one- and two-word trains,
    with and without noise, with frozen devices and budgets (30% of the devices have 1-39
    pulses left) or none."""
    dev = devices.get("constant_step")
    s0, a, b, ta, tb = _run_both(dev, route, k, bl, c2c, seed_of(route, k, bl, c2c, budgets),
                                 budgets=budgets)  # fmt: skip
    assert ta == tb > 0
    for key in FIELDS:
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key), err_msg=key)
    # the work happened: devices were written, and budgets froze some during the batch
    grew = b.cnt_up + b.cnt_dn > s0.cnt_up + s0.cnt_dn
    N = grew.size // k
    assert (grew[:N] | grew[N:]).mean() > 0.5 if k == 2 else grew.mean() > 0.5
    if budgets:
        assert (b.frozen > s0.frozen).any()


def test_lane_path_is_taken_and_sees_slow_draws():
    """The case above takes the lanes: the tile is linear, and the dense rows have enough
    coinciding lanes; some written lanes need the ziggurat's slow draw (the scalar fix-up)."""
    dev = devices.get("constant_step")
    rng = np.random.default_rng(3)
    n_out, n_in, B, bl = 6, 40, 8, 31
    s0 = State(dev, (n_out, n_in), 2, seed=5, rng=rng)
    xbits, dbits, xneg, dneg = _dense_trains(rng, B, n_out, n_in, bl)
    _, ms = nb._compact_all(xbits, n_in)
    mode = nb._lane_mode
    assert mode(1, ms, n_out, n_in, ROUTE_PUSH_PULL, s0.prm, s0.budget) == 1
    s0.budget[:] = np.inf
    assert mode(1, ms, n_out, n_in, ROUTE_PUSH_PULL, s0.prm, s0.budget) == 2
    # a batch without a sample of enough active inputs, or another family: no lanes
    few = np.full_like(ms, (n_in - 1) // nb._DENSE_SAMPLE)
    assert mode(1, few, n_out, n_in, ROUTE_PUSH_PULL, s0.prm, s0.budget) == 0
    assert mode(0, ms, n_out, n_in, ROUTE_PUSH_PULL, s0.prm, s0.budget) == 0
    cnt = np.empty(n_in, dtype=np.int64)
    sg = np.empty(n_in, dtype=np.int64)
    dense = 0
    for b in range(B):
        for j in range(n_out):
            tot, nnz = nb._lane_counts(xbits[b, :, 0], dbits[b, j, 0], xneg[b], dneg[b, j], cnt, sg)
            assert tot == int(ref.coincidences(xbits[b], dbits[b])[j].sum())
            dense += nnz * nb._LANE_ROW >= n_in
    assert 20 <= dense < B * n_out  # both paths occur
    # slow draws among the written lanes of one row
    m = np.ones(4000, dtype=np.int64)
    z, ok = np.empty(4000), np.empty(4000, dtype=np.bool_)
    base = _rng.call_base(11, 0)
    bad = nb._lane_normals(np.uint64(base), 0, m, z, ok)
    assert bad == (~ok).sum()
    assert 10 < bad < 100  # about 1.5% of the ziggurat's draws
    want = _rng.normal_np(base, np.arange(4000))
    np.testing.assert_array_equal(z[ok], want[ok])
    # the slow draws, found a word of eight lanes at a time, then equal the reference everywhere
    nb._lane_slow_normals(np.uint64(base), 0, z, ok, ok.view(np.uint64))
    assert ok.all()
    np.testing.assert_array_equal(z, want)
    # lanes without pulses need no draw: never marked, not counted
    m[::2] = 0
    bad = nb._lane_normals(np.uint64(base), 0, m, z, ok)
    assert bad == (~ok).sum() and ok[::2].all() and 5 < bad < 60


@pytest.mark.parametrize("family", ["soft_bounds", "linear_step", "exp_d2d"])
def test_lane_modes(family):
    """A tile with any slope (soft_bounds, linear_step; also one device of a constant_step tile
    given a slope, on either side of the pair) takes the sloped lanes (3, 4 with every budget
    infinite), a tile without one the linear lanes (1, 2), another family the scalar path."""
    from kernel_cases import family_device

    dev = family_device(family, None) if family != "exp_d2d" else devices.get("ag_a_si")
    rng = np.random.default_rng(1)
    s0 = State(dev, (4, 40), 2, seed=5, rng=rng)
    if dev.family == 1:
        assert nb._lane_mode(1, ALL, 4, 40, ROUTE_PUSH_PULL, s0.prm, s0.budget) == 3
        s0.budget[:] = np.inf
        assert nb._lane_mode(1, ALL, 4, 40, ROUTE_PUSH_PULL, s0.prm, s0.budget) == 4
    else:
        assert nb._lane_mode(dev.family, ALL, 4, 40, ROUTE_PUSH_PULL, s0.prm, s0.budget) == 0
    step = devices.get("constant_step")
    s1 = State(step, (4, 40), 2, seed=5, rng=rng)
    s1.prm[4, 17] = 0.3  # one device of the tile with a slope
    assert nb._lane_mode(1, ALL, 4, 40, ROUTE_PUSH_PULL, s1.prm, s1.budget) == 3
    # the partner side is checked too
    s1.prm[4, 17] = 0.0
    s1.prm[5, 160 + 5] = -0.2
    assert nb._lane_mode(1, ALL, 4, 40, ROUTE_PUSH_PULL, s1.prm, s1.budget) == 3
    assert nb._lane_mode(1, ALL, 4, 40, ROUTE_SINGLE, s1.prm, s1.budget) == 1


SLOPED = ["soft_bounds", "linear_step"]


def _sloped_device(family):
    from kernel_cases import family_device

    return family_device(family, None)


@pytest.mark.parametrize("budgets", [True, False])
@pytest.mark.parametrize("bl", [31, 100])
@pytest.mark.parametrize(("route", "k"), ROUTES)
@pytest.mark.parametrize("family", SLOPED)
def test_sloped_lanes_equal_reference_bit_for_bit(family, route, k, bl, budgets):
    """Step devices with a slope and device-to-device variation (soft_bounds, linear_step),
    c2c 0.3 (mostly within the series' range): every state field equals the numpy reference
    exactly, for one- and two-word trains (up to 100 pulses per write), with frozen devices and
    budgets or none; the writes carry several pulses (the closed form and the log-normal noise)."""
    dev = _sloped_device(family)
    seed = seed_of(family, route, k, bl, budgets)
    s0, a, b, ta, tb = _run_both(dev, route, k, bl, 0.3, seed, budgets=budgets)
    assert ta == tb > 0
    for key in FIELDS:
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key), err_msg=key)
    pulses = (b.cnt_up + b.cnt_dn) - (s0.cnt_up + s0.cnt_dn)
    written = pulses > 0
    assert written.mean() > 0.3 and (pulses > 1).sum() > written.sum() // 2


@pytest.mark.parametrize(("route", "k"), ROUTES)
@pytest.mark.parametrize("family", SLOPED)
def test_sloped_lanes_hand_large_noise_to_the_scalar_write(family, route, k, monkeypatch):
    """Noise too large for the series (``(c2c dw gam / r)^2`` above ``LOG1P_SERIES_MAX`` on
    most devices): those lanes are finished by the scalar write (the C library's ``log1p`` /
    ``expm1``, as the reference computes them there), bit for bit the reference; and the same
    as the reference run with the numba scalar write, sample after sample."""
    dev = _sloped_device(family)
    c2c = {"soft_bounds": 30.0, "linear_step": 3.0}[family]  # step sizes 0.001 and 0.01
    _, a0, b0, ta0, tb0 = _run_both(dev, route, k, 31, c2c, seed_of(family, route, k, 3))
    monkeypatch.setattr(ref, "write", nb.write)  # the reference's per-sample writes, numba's
    s0, a, b, ta, tb = _run_both(dev, route, k, 31, c2c, seed_of(family, route, k, 3))
    assert ta0 == tb0 > 0 and ta == tb > 0
    for key in FIELDS:
        np.testing.assert_array_equal(getattr(a0, key), getattr(b0, key), err_msg=key)
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key), err_msg=key)
    # the case is out of the series' range for most devices, and has multi-pulse writes
    eps = c2c * s0.prm[2] * s0.prm[4] / (1.0 + s0.prm[2] * s0.prm[4])
    assert np.mean(eps * eps >= ref.LOG1P_SERIES_MAX) > 0.5
    assert ((b.cnt_up + b.cnt_dn) - (s0.cnt_up + s0.cnt_dn) > 1).any()


def test_array_update_unchanged_by_thread_count_and_tiling(monkeypatch):
    """A 64 x 300 constant_step array, aihwkit's dense setting: the parallel run over tiles of
    one row equals the serial run of one tile bit for bit, and the numpy backend."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (12, 300))
    d = rng.uniform(-1, 1, (12, 64))
    w0 = rng.uniform(-0.1, 0.1, (64, 300))
    out = {}
    for name, tile, par, backend in (
        ("serial", 1 << 40, 1 << 62, "numba"),
        ("parallel", 1, 0, "numba"),
        ("numpy", None, None, "numpy"),
    ):
        if tile is not None:
            monkeypatch.setattr(nb, "_TILE_BYTES", tile)
            monkeypatch.setattr(nb, "_PARALLEL_MIN_UPDATE", par)
        arr = devices.DeviceArray((64, 300), devices.get("constant_step"), seed=2, backend=backend)
        arr.program(w0)
        info = arr.pulse_update(x, d, 0.01, 31, bl_management=False, update_management=False)
        out[name] = (arr.weights(), np.asarray(arr.G).copy(), info["coincidences"])
    for name in ("parallel", "numpy"):
        np.testing.assert_array_equal(out[name][1], out["serial"][1], err_msg=name)
        np.testing.assert_array_equal(out[name][0], out["serial"][0], err_msg=name)
        assert out[name][2] == out["serial"][2]
