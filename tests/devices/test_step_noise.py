"""Step models under many pulses: finite states for every preset and count, bounds that keep
their sign, and the n-pulse closed form of a noisy soft-bounds write against n single noisy
pulses (issue 15)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

import devices
from devices.variability import CycleToCycle, Variability

BACKENDS = ("numpy", "numba")


# ----------------------------------------------------------------------------- finite states
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(devices.names()),
    count=st.sampled_from([0, 1, -1, 7, -31, 1800, -1800, 20000, -20000, 2**31 - 1, -(2**31)]),
    mapping=st.sampled_from(["reference", "differential"]),
    seed=st.integers(0, 2**16),
    backend=st.sampled_from(BACKENDS),
)
def test_no_pulse_count_gives_a_non_finite_state(name, count, mapping, seed, backend):
    """Any preset (full variability), any count: conductances and weights stay finite and
    within each device's own bounds, and a later read product is finite."""
    arr = devices.DeviceArray((8, 250), devices.get(name), mapping=mapping, seed=seed,
                              backend=backend, w_max=0.6)  # fmt: skip
    n = np.full(arr.shape, count, dtype=np.int64)
    arr.pulse(n, None if mapping == "reference" else -n)
    arr.pulse(-n, None if mapping == "reference" else n)
    assert np.all(np.isfinite(arr.G))
    assert np.all(arr.G >= arr.gmin_i - 1e-18) and np.all(arr.G <= arr.gmax_i + 1e-18)
    assert np.all(np.isfinite(arr.weights()))
    assert np.all(np.isfinite(arr.matmul(np.ones(arr.in_features))))


@pytest.mark.parametrize("backend", BACKENDS)
def test_issue_reproducer_soft_bounds_20000_pulses(backend):
    """The reproducer of issue 15: 20,000 pulses on 20,000 soft-bounds devices, no NaN, and
    every device at its upper bound (the multiplicative noise vanishes there)."""
    a = devices.DeviceArray((1, 20000), devices.get("soft_bounds"), mapping="reference",
                            w_max=0.6, seed=5, backend=backend)  # fmt: skip
    a.pulse(np.full((1, 20000), 20000))
    assert not np.isnan(a.weights()).any()
    # devices whose noise-free distance to the bound shrank below 1e-9 sit at the bound
    r = 1.0 + a.prm[2] * a.prm[4]
    there = r**20000 < 1e-9
    assert there.mean() > 0.8
    np.testing.assert_allclose(a.G[there], a.gmax_i[there], rtol=1e-8)
    assert np.all(a.G <= a.gmax_i * (1 + 1e-12))


@pytest.mark.parametrize("model", ["soft_bounds", "linear_step"])
def test_drawn_bounds_keep_their_sign(model):
    """Device-to-device bounds (sigma 0.3: a bound crosses zero for about 0.07% of devices
    without the clip) stay on their side of zero, at least 5% of the nominal bound."""
    dev = devices.get(model)
    prm, *_ = dev.kernel_params(400_000, np.random.default_rng(1))
    assert prm[0].max() <= 0.05 * dev.b_min
    assert prm[1].min() >= 0.05 * dev.b_max
    # the clip touches only the tail: the bulk of the draw is unchanged
    assert np.mean(prm[1] == 0.05 * dev.b_max) < 0.002
    # a step towards a bound never overshoots it (r = 1 + s dw gamma stays in (0, 1))
    assert np.all(1.0 + prm[2] * prm[4] > 0) and np.all(1.0 - prm[3] * prm[5] > 0)


def test_constant_step_bounds_draw_unchanged():
    """constant_step has no slope, so its bounds draw is left as it was (seeded results of
    constant-step arrays do not change)."""
    dev = devices.get("constant_step")
    rng = np.random.default_rng(3)
    prm, *_ = dev.kernel_params(200_000, np.random.default_rng(3))
    xi_b = rng.standard_normal((2, 200_000))
    d2d = dev.variability.d2d
    bmax = dev.b_max * (1.0 + d2d.sigma_bounds * xi_b[0])
    bmin = dev.b_min * (1.0 + d2d.sigma_bounds * xi_b[1])
    ok = bmin < bmax
    np.testing.assert_array_equal(prm[1][ok], bmax[ok])
    np.testing.assert_array_equal(prm[0][ok], bmin[ok])


# ----------------------------------------------------------------------------- soft-bounds noise
def _per_pulse(dev, c2c, u0, n, n_dev, seed):
    """``n`` single noisy pulses of the section-6 rule (clipped after each pulse), ``n_dev``
    devices from ``u0``; the definition the closed form must match in distribution."""
    rng = np.random.default_rng(seed)
    s = 1.0 if n > 0 else -1.0
    dw = dev.dw_min * (1.0 + s * dev.up_down)
    gam = -1.0 / dev.b_max if s > 0 else -1.0 / dev.b_min
    u = np.full(n_dev, float(u0))
    for _ in range(abs(n)):
        v = 1.0 + gam * u
        u = u + s * dw * v + c2c * dw * np.abs(v) * rng.standard_normal(n_dev)
        np.clip(u, dev.b_min, dev.b_max, out=u)
    return u


def _closed_form(dev, c2c, u0, n, n_dev, seed, backend):
    """One write of ``n`` pulses to ``n_dev`` devices (reference mapping, c2c noise only)."""
    var = Variability(c2c=CycleToCycle(sigma=c2c))
    arr = devices.DeviceArray((1, n_dev), dev, mapping="reference", variability=var, seed=seed,
                              backend=backend)  # fmt: skip
    G0 = dev.gmin + (u0 - dev.b_min) / (dev.b_max - dev.b_min) * dev.dG
    arr.G[:] = G0
    arr.Gw[:] = G0
    arr.pulse(np.full((1, n_dev), n))
    return dev.b_min + (arr.G - dev.gmin) / dev.dG * (dev.b_max - dev.b_min)


#: The preset's step and bounds with a large c2c noise (relative noise 1% of the distance per
#: pulse, so the product of factors departs visibly from a normal) and the preset itself.
NOISY = devices.StepDevice(model="soft_bounds", dw_min=0.01, b_min=-1.0, b_max=1.0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("dev", "c2c", "u0", "n"),
    [
        (NOISY, 1.0, 0.0, 1),
        (NOISY, 1.0, 0.0, 2),
        (NOISY, 1.0, -0.5, 10),
        (NOISY, 1.0, 0.2, 50),
        (NOISY, 1.0, -0.8, 200),
        (NOISY, 1.0, 0.3, -600),
        (NOISY, 0.5, -0.9, 1000),
        (NOISY, 0.5, 0.9, -1000),
        (devices.StepDevice(model="soft_bounds"), 0.3, 0.0, 600),
        (devices.StepDevice(model="soft_bounds", up_down=0.2, dw_min=0.004), 1.0, 0.4, -1000),
    ],
    ids=lambda v: v.model if hasattr(v, "model") else str(v),
)
def test_soft_bounds_n_pulse_write_matches_n_single_pulses(dev, c2c, u0, n, backend):
    """KS test: one write of n pulses has the distribution of n single noisy pulses (mean,
    spread and shape), for n up to 1,000, both directions."""
    m = 3000
    want = _per_pulse(dev, c2c, u0, n, m, seed=abs(n) + 7)
    got = _closed_form(dev, c2c, u0, n, m, seed=abs(n) + 8, backend=backend)
    ks = stats.ks_2samp(got, want)
    assert ks.pvalue > 1e-3, (ks, got.mean(), want.mean(), got.std(), want.std())
    # moments on their own (the KS statistic is dominated by the bulk)
    se = want.std() / np.sqrt(m)
    assert abs(got.mean() - want.mean()) < 5 * np.sqrt(2) * se
    assert got.std() == pytest.approx(want.std(), rel=0.1)


def test_ks_test_rejects_the_old_sqrt_n_scaling():
    """Power check: the former closed form (normal noise of the first step times sqrt(n)) is
    rejected by the same test at n = 200 and n = 600."""
    dev = NOISY
    for n in (200, 600):
        want = _per_pulse(dev, 1.0, -0.8, n, 3000, seed=1)
        s, dw, gam = 1.0, dev.dw_min, -1.0 / dev.b_max
        r = 1.0 + s * dw * gam
        u0 = -0.8
        mean = r**n * u0 + s * dw * (r**n - 1.0) / (r - 1.0)
        xi = np.random.default_rng(2).standard_normal(3000)
        old = np.clip(mean + 1.0 * dw * abs(1.0 + gam * u0) * np.sqrt(n) * xi, -1.0, 1.0)
        assert stats.ks_2samp(old, want).pvalue < 1e-6


@pytest.mark.parametrize("backend", BACKENDS)
def test_soft_bounds_5000_pulses_saturate_at_the_bound(backend):
    """A 5,000-pulse write on the preset ends at the bound (formerly 0.986 b_max on average:
    noise scaled by sqrt(n) and clipped)."""
    dev = devices.StepDevice(model="soft_bounds")
    u = _closed_form(dev, 0.3, 0.0, 5000, 4000, seed=3, backend=backend)
    assert u.mean() > 0.9995 * dev.b_max
    u = _closed_form(dev, 0.3, 0.0, -5000, 4000, seed=3, backend=backend)
    assert u.mean() < 0.9995 * dev.b_min


@pytest.mark.parametrize("n", [1, 3, 40, 1000])
def test_soft_bounds_numba_equals_reference(n):
    """The numba kernel draws the same numbers and computes the same closed form."""
    dev = NOISY
    a = _closed_form(dev, 1.0, 0.1, n, 500, seed=9, backend="numpy")
    b = _closed_form(dev, 1.0, 0.1, n, 500, seed=9, backend="numba")
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
