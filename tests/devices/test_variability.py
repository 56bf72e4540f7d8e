"""Variability parts (specs/devices.md s.3; acceptance D7, D8, D9)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

import devices
from devices.nl import nl_from_a

BACKENDS = ("numpy", "numba")


def ideal_linear(**kw):
    return devices.get("ideal", **kw)


# ------------------------------------------------------------------------------------ D7
@pytest.mark.parametrize("backend", BACKENDS)
def test_c2c_write_noise_is_gaussian_with_sqrt_n_scaling(backend):
    """D7: ideal device, c2c 0.02, from mid-range, 10 000 writes of n = 9:
    (G1 - G0 - 9 dG/P) / (0.02 dG 3) ~ N(0, 1) (KS, p > 0.01)."""
    dev = ideal_linear(c2c_sigma=0.02)
    arr = devices.DeviceArray((100, 100), dev, mapping="reference", seed=2024, backend=backend)
    G0 = arr.G.copy()
    np.testing.assert_allclose(G0, 0.5 * (dev.gmin + dev.gmax))
    arr.pulse(np.full((100, 100), 9))
    z = (arr.G - G0 - 9 * dev.dG / dev.levels_ltp) / (0.02 * dev.dG * 3)
    assert stats.kstest(z, "norm").pvalue > 0.01
    assert abs(z.mean()) < 4 / 100 and abs(z.std() - 1) < 0.03
    # the next write draws fresh noise (independent of the first)
    G1 = arr.G.copy()
    arr.pulse(np.full((100, 100), -4))
    z2 = (arr.G - G1 + 4 * dev.dG / dev.levels_ltd) / (0.02 * dev.dG * 2)
    assert stats.kstest(z2, "norm").pvalue > 0.01
    assert abs(np.corrcoef(z, z2)[0, 1]) < 0.04


def test_c2c_zero_pulses_add_no_noise():
    dev = ideal_linear(c2c_sigma=0.05)
    arr = devices.DeviceArray((10, 10), dev, mapping="reference", seed=1, backend="numpy")
    G0 = arr.G.copy()
    n = np.zeros((10, 10), dtype=int)
    n[0] = 1
    arr.pulse(n)
    np.testing.assert_array_equal(arr.G[10:], G0[10:])
    assert np.all(arr.G[:10] != G0[:10])


def test_c2c_noise_on_step_models_scales_with_step_size():
    """Step models: the noise of one n-pulse write has the spread of n single noisy pulses,
    whose step shrinks with the distance to the bound: ``v = 1 + gamma u`` is multiplied by
    ``r + sigma dw |gamma| xi`` per pulse, so ``sd(u_n) = |v_0| sqrt((r^2 + s^2)^n - r^(2n))
    / |gamma|`` (``s = sigma dw |gamma|``); about normal for few pulses. (Before issue 15 this
    was ``sigma * step_0 * sqrt(n)``, which overstates the spread as n grows.)"""
    dev = devices.StepDevice(
        model="soft_bounds", dw_min=0.01, variability=devices.Variability().replace(c2c_sigma=0.3)
    )
    arr = devices.DeviceArray((100, 100), dev, mapping="reference", seed=5, backend="numpy")
    u0 = 0.2
    G0 = dev.gmin + (u0 - dev.b_min) / (dev.b_max - dev.b_min) * dev.dG
    arr.G[:] = G0
    n = 4
    arr.pulse(np.full((100, 100), n))
    u1 = dev.b_min + (arr.G - dev.gmin) / dev.dG * (dev.b_max - dev.b_min)
    mean_u = dev.b_max - (dev.b_max - u0) * (1 - dev.dw_min / dev.b_max) ** n
    gam = -1.0 / dev.b_max
    r = 1.0 + dev.dw_min * gam
    s = 0.3 * dev.dw_min * abs(gam)
    sd = abs(1.0 + gam * u0) * math.sqrt((r * r + s * s) ** n - r ** (2 * n)) / abs(gam)
    z = (u1 - mean_u) / sd
    assert stats.kstest(z, "norm").pvalue > 0.01


# ------------------------------------------------------------------------------------ D8
def recovered_labels(prm_row):
    with np.errstate(divide="ignore"):
        a = 1.0 / prm_row
    return np.array([nl_from_a(v) for v in a])


@pytest.mark.parametrize(("key", "sigma"), [("ag_a_si", 1.0), ("epiram", 0.3), ("pcmo", 0.5)])
def test_d2d_nl_labels_are_normal(key, sigma):
    """D8: sampled NL labels (recovered with nl_from_a of 1/prm[2]) ~ N(NL, sigma_nl)."""
    dev = devices.get(key, sigma_nl=sigma)
    prm, *_ = dev.kernel_params(4000, np.random.default_rng(99))
    nl_up = recovered_labels(prm[2])
    nl_dn = recovered_labels(prm[3])
    assert stats.kstest(nl_up, "norm", args=(dev.nl_ltp, sigma)).pvalue > 0.01
    assert stats.kstest(nl_dn, "norm", args=(dev.nl_ltd, sigma)).pvalue > 0.01
    assert abs(np.corrcoef(nl_up, nl_dn)[0, 1]) < 0.06  # independent draws by default


def test_d2d_nl_shared_draw_and_clipping():
    dev = devices.get("ag_a_si", sigma_nl=3.0, nl_shared=True)
    prm, *_ = dev.kernel_params(3000, np.random.default_rng(3))
    nl_up = recovered_labels(prm[2])
    nl_dn = recovered_labels(prm[3])
    inside = (np.abs(nl_up) < 8.99) & (np.abs(nl_dn) < 8.99)
    assert inside.sum() > 2000
    np.testing.assert_allclose(nl_up[inside] - 2.4, nl_dn[inside] + 4.88, atol=1e-8)
    assert np.max(np.abs(nl_up)) <= 9 + 1e-9 and np.max(np.abs(nl_dn)) <= 9 + 1e-9
    assert np.any(np.abs(nl_dn) > 8.999)  # some labels reached the clip
    assert np.any(nl_up < 0)  # crossing zero flips the curvature


def test_d2d_range_spreads_are_normal_and_valid():
    dev = devices.get("epiram", sigma_gmin=0.2, sigma_gmax=0.1)
    prm, *_ = dev.kernel_params(5000, np.random.default_rng(8))
    rel_max = prm[1] / dev.gmax - 1
    rel_min = prm[0] / dev.gmin - 1
    assert stats.kstest(rel_max, "norm", args=(0, 0.1)).pvalue > 0.01
    assert stats.kstest(rel_min, "norm", args=(0, 0.2)).pvalue > 0.01
    assert np.all(prm[0] > 0) and np.all(prm[0] < prm[1])


def test_d2d_redraws_keep_gmin_below_gmax():
    # ON/OFF of 1.25 with 30% spreads: many devices need redraws
    dev = devices.ExpDevice(
        gmin=0.8e-6,
        gmax=1e-6,
        variability=devices.Variability().replace(sigma_gmin=0.3, sigma_gmax=0.3),
    )
    prm, *_ = dev.kernel_params(20_000, np.random.default_rng(1))
    assert np.all(prm[0] > 0)
    assert np.all(prm[0] < prm[1])
    arr = devices.DeviceArray((50, 50), dev, seed=4, backend="numpy")
    assert np.all((arr.gmin_i > 0) & (arr.gmin_i < arr.gmax_i))


def test_d2d_levels_spread():
    dev = devices.get("hzo_fefet", sigma_levels=0.5)
    prm, *_ = dev.kernel_params(5000, np.random.default_rng(2))
    for row, P in ((prm[4], 32), (prm[5], 32)):
        assert np.all(row == np.round(row)) and row.min() == 2
        assert row.mean() == pytest.approx(P, rel=0.05)
    assert not np.array_equal(prm[4], prm[5])


def test_d2d_step_parameters():
    dev = devices.StepDevice(
        model="soft_bounds",
        up_down=0.1,
        variability=devices.Variability().replace(
            sigma_step=0.2, sigma_asym=0.05, sigma_bounds=0.1
        ),
    )
    prm, *_ = dev.kernel_params(5000, np.random.default_rng(6))
    dw = dev.dw_min
    beta = (prm[2] - prm[3]) / (2 * dw)
    spread = (prm[2] + prm[3]) / (2 * dw) - 1
    assert stats.kstest(beta, "norm", args=(0.1, 0.05)).pvalue > 0.01
    assert stats.kstest(spread, "norm", args=(0, 0.2)).pvalue > 0.01
    assert stats.kstest(prm[1] / dev.b_max - 1, "norm", args=(0, 0.1)).pvalue > 0.01
    assert stats.kstest(prm[0] / dev.b_min - 1, "norm", args=(0, 0.1)).pvalue > 0.01
    np.testing.assert_allclose(prm[4], -1.0 / prm[1])
    np.testing.assert_allclose(prm[5], -1.0 / prm[0])


def test_array_seed_fixes_device_draws():
    dev = devices.get("ag_a_si", sigma_nl=1.0, sigma_gmin=0.1)
    a = devices.DeviceArray((4, 5), dev, seed=10, backend="numpy")
    b = devices.DeviceArray((4, 5), dev, seed=10, backend="numba")
    c = devices.DeviceArray((4, 5), dev, seed=11, backend="numpy")
    np.testing.assert_array_equal(a.prm, b.prm)
    assert not np.array_equal(a.prm, c.prm)
    # mapping keeps nominal Gmin/Gmax: range spread shows up as weight error
    assert a.alpha == 1.0 / dev.dG
    assert np.any(a.weights() != 0)


# ------------------------------------------------------------------------------------ D9
def test_stuck_fractions_within_three_binomial_sd():
    p = {"p_stuck_gmin": 0.05, "p_stuck_gmax": 0.03, "p_stuck_random": 0.02}
    dev = devices.get("epiram", **p)
    arr = devices.DeviceArray((100, 100), dev, seed=77, backend="numpy")
    n = arr.n_devices
    for code, key in ((1, "p_stuck_gmin"), (2, "p_stuck_gmax"), (3, "p_stuck_random")):
        k = int((arr.stuck == code).sum())
        sd = math.sqrt(n * p[key] * (1 - p[key]))
        assert abs(k - n * p[key]) <= 3 * sd, (key, k)
    s = arr.stuck
    np.testing.assert_array_equal(arr.G[s == 1], arr.gmin_i[s == 1])
    np.testing.assert_array_equal(arr.G[s == 2], arr.gmax_i[s == 2])
    rnd = arr.G[s == 3]
    assert np.all((rnd >= dev.gmin) & (rnd <= dev.gmax))
    g = (rnd - dev.gmin) / dev.dG
    assert stats.kstest(g, "uniform").pvalue > 0.01
    assert arr.counters()["stuck"] == int((s > 0).sum())
    np.testing.assert_array_equal(arr.frozen[s > 0], 1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_stuck_devices_never_change(backend, one_numba_thread):
    dev = devices.get(
        "epiram",
        p_stuck_gmin=0.1,
        p_stuck_gmax=0.1,
        p_stuck_random=0.1,
        read_sigma=0.01,
        drift_nu=0.1,
    )
    arr = devices.DeviceArray((20, 30), dev, seed=3, backend=backend)
    stuck = arr.stuck > 0
    assert 0.2 < stuck.mean() < 0.4
    G0 = arr.G.copy()
    rng = np.random.default_rng(0)
    arr.pulse(rng.integers(-20, 20, (20, 30)), rng.integers(-20, 20, (20, 30)))
    arr.pulse_update(rng.uniform(-1, 1, (3, 30)), rng.uniform(-1, 1, (3, 20)), lr=0.3)
    arr.pulse_update(
        rng.uniform(-1, 1, (3, 30)), rng.uniform(-1, 1, (3, 20)), lr=0.3, method="unidirectional"
    )
    for mode in devices.PROGRAM_MODES:
        arr.program(rng.uniform(-1, 1, (20, 30)), mode=mode)
    arr.refresh(np.ones((20, 30), dtype=bool), mode="verify")
    arr.refresh(np.ones((20, 30), dtype=bool), mode="ideal")
    arr.age(1000.0)
    np.testing.assert_array_equal(arr.G[stuck], G0[stuck])
    assert np.any(arr.G[~stuck] != G0[~stuck])
    # pulses sent to stuck devices are still counted
    assert np.all(arr.cnt_reset[stuck] >= 1)
    assert (arr.cnt_up + arr.cnt_dn)[stuck].sum() > 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_endurance_freezes_after_exactly_n_pulses(backend, one_numba_thread):
    N = 10
    dev = ideal_linear(endurance_n50=N, levels_ltp=64, levels_ltd=64)
    arr = devices.DeviceArray((1, 4), dev, seed=0, mapping="reference", backend=backend)
    np.testing.assert_array_equal(arr.budget, N)
    step = dev.dG / 64
    G0 = arr.G.copy()
    # device 0: single pulses; device 1: one write of 15; device 2: 7 then 5; device 3: LTD/LTP mix
    for k in range(1, 16):
        arr.pulse(np.array([[1, 15 if k == 1 else 0, 7 if k == 1 else (5 if k == 2 else 0), 0]]))
        moved = min(k, N)
        assert arr.G[0] == pytest.approx(G0[0] + moved * step, rel=1e-12)
        assert arr.frozen[0] == (1 if k >= N else 0)
    assert arr.G[1] == pytest.approx(G0[1] + N * step, rel=1e-12)
    assert arr.G[2] == pytest.approx(G0[2] + N * step, rel=1e-12)
    for k in range(12):
        arr.pulse(np.array([[0, 0, 0, 1 if k % 2 else -1]]))
    assert arr.G[3] == pytest.approx(G0[3], rel=1e-12)  # ended after 10 pulses: 5 down, 5 up
    assert arr.frozen.tolist() == [1, 1, 1, 1]
    assert arr.counters()["worn_out"] == 4
    assert arr.cnt_up[0] == 15  # counted even when frozen
    G1 = arr.G.copy()
    arr.program(np.full((1, 4), 0.3), mode="verify")
    np.testing.assert_array_equal(arr.G, G1)


def test_endurance_counts_programming_pulses_and_resets():
    N = 6
    dev = ideal_linear(endurance_n50=N, levels_ltp=64, levels_ltd=64)
    arr = devices.DeviceArray((1, 2), dev, seed=0, backend="numpy")
    arr.program(np.array([[10 / 64, 0.0]]), mode="open_loop")
    # device G+: one RESET + 5 of its 10 programming pulses applied, then frozen
    assert arr.cnt_reset[0] == 1 and arr.cnt_prog[0] == 10
    assert arr.frozen[0] == 1
    assert arr.G[0] == pytest.approx(dev.gmin + 5 * dev.dG / 64, rel=1e-12)
    assert arr.frozen[2] == 0 and arr.cnt_reset[2] == 1


def test_endurance_budgets_are_lognormal():
    dev = ideal_linear(endurance_n50=1e6, endurance_sigma=0.5)
    arr = devices.DeviceArray((50, 50), dev, seed=9, backend="numpy")
    z = (np.log(arr.budget) - math.log(1e6)) / 0.5
    assert stats.kstest(z, "norm").pvalue > 0.01
    assert np.all(arr.budget == np.round(arr.budget))


def test_drift_log_slope_is_minus_nu():
    """D9: log G against log tau has slope -nu (noise-free), G(tau <= t0) = G_w."""
    nu, t0 = 0.07, 2.0
    dev = ideal_linear(drift_nu=nu, drift_t0=t0)
    arr = devices.DeviceArray((3, 4), dev, seed=1, mapping="reference", backend="numpy")
    arr.program(np.full((3, 4), 0.8))
    Gw = arr.G.copy()
    np.testing.assert_array_equal(arr.nu, nu)
    arr.age(1.5)  # tau < t0: no drift yet
    np.testing.assert_array_equal(arr.G, Gw)
    taus, logs = [1.5], [np.log(arr.G)]
    for dt in (0.5, 8.0, 90.0, 900.0, 9e4):
        arr.age(dt)
        taus.append(taus[-1] + dt)
        logs.append(np.log(arr.G))
    lt = np.log(np.array(taus[1:]) / t0)
    L = np.array(logs[1:])
    slopes = np.diff(L, axis=0) / np.diff(lt)[:, None]
    np.testing.assert_allclose(slopes, -nu, atol=1e-9, rtol=0)
    np.testing.assert_allclose(L[0], np.log(Gw), atol=1e-15)


def test_drift_write_restarts_from_drifted_value_and_clips_at_gmin():
    dev = ideal_linear(drift_nu=0.3, levels_ltp=64, levels_ltd=64)
    arr = devices.DeviceArray((1, 2), dev, seed=1, mapping="reference", backend="numpy")
    arr.program(np.array([[0.5, -0.99]]))
    arr.age(100.0)
    drifted = arr.G.copy()
    assert drifted[0] < 0.5 * (dev.gmin + dev.gmax) + 0.25 * dev.dG
    assert drifted[1] == dev.gmin  # clipped below at Gmin
    arr.pulse(np.array([[1, 0]]))
    assert arr.G[0] == pytest.approx(drifted[0] + dev.dG / 64, rel=1e-12)
    assert arr.tau[0] == 0.0 and arr.tau[1] == 100.0
    G1 = arr.G[0]
    arr.age(0.5)
    assert arr.G[0] == G1


def test_drift_exponent_spread_truncated_at_zero():
    dev = ideal_linear(drift_nu=0.05, drift_sigma_nu=0.05)
    arr = devices.DeviceArray((40, 50), dev, seed=2, backend="numpy")
    assert np.all(arr.nu >= 0)
    assert 0.05 < arr.nu.mean() < 0.07  # truncation at 0 raises the mean
    assert arr.nu.std() > 0.02


# --------------------------------------------------------------------------------- API
def test_variability_flat_replace_round_trip():
    v = devices.Variability().replace(
        sigma_nl=0.5,
        c2c_sigma=0.02,
        read_sigma=0.01,
        p_stuck_gmin=0.01,
        drift_nu=0.1,
        endurance_n50=1e7,
        reset_sigma=0.03,
    )
    assert v.d2d == devices.DeviceToDevice(sigma_nl=0.5)
    assert v.c2c == devices.CycleToCycle(sigma=0.02)
    assert v.read == devices.ReadNoise(sigma=0.01)
    assert v.stuck == devices.Stuck(p_gmin=0.01)
    assert v.drift == devices.Drift(nu=0.1)
    assert v.endurance == devices.Endurance(n50=1e7)
    flat = v.flat()
    assert flat["c2c_sigma"] == 0.02 and flat["reset_sigma"] == 0.03
    assert flat["sigma_nl"] == 0.5 and flat["endurance_n50"] == 1e7
    assert devices.Variability().replace(**flat).flat() == flat
    # parts compose and replacing one key keeps the others
    v2 = v.replace(c2c_sigma=0.0, read=None)
    assert v2.c2c_sigma == 0.0 and v2.read is None and v2.d2d == v.d2d


def test_variability_defaults_are_off():
    v = devices.Variability()
    assert v.c2c_sigma == 0 and v.read_sigma == 0
    flat = v.flat()
    assert math.isinf(flat["endurance_n50"]) and flat["drift_t0"] == 1.0
    arr = devices.DeviceArray((3, 3), devices.get("ideal"), seed=0, backend="numpy")
    assert np.all(np.isinf(arr.budget)) and np.all(arr.nu == 0) and np.all(arr.stuck == 0)
