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


# ----------------------------------------------------------------------------- write arithmetic
# A write of n pulses to a sloped step device computes r^n, log1p and expm1 from +, -, *, sqrt
# (repeated squaring, Taylor series on small arguments; the C library beyond), the same
# operations on every path, so that the SIMD lanes equal the scalar write and the reference.
def _nb_many(name, xs, ns=None):
    from numba import njit

    from devices.kernels import numba_cpu as nb

    @njit
    def run(kind, xs, ns, out):
        for i in range(xs.size):
            if kind == 0:
                out[i] = nb._log1p_series(xs[i])
            elif kind == 1:
                out[i] = nb._expm1_series(xs[i])
            elif kind == 2:
                out[i] = nb._pow_int(xs[i], ns[i])
            else:
                out[i] = nb._pow_int_bits(xs[i], ns[i], 8)

    out = np.empty_like(xs)
    kind = ("log1p", "expm1", "pow", "pow_bits").index(name)
    run(kind, xs, np.zeros(xs.size, np.int64) if ns is None else ns, out)
    return out


def _ulps(a, b):
    return np.abs(a - b) / np.spacing(np.abs(b))


def test_pow_int_is_repeated_squaring_on_every_path():
    """``r ** n`` for whole ``n``: the numba loop, its fixed-bit SIMD form and the numpy
    reference agree bit for bit; ``n = 0, 1`` are exact; against ``pow`` within ``2 n`` ulps
    (each squaring at most doubles the relative error)."""
    from devices.kernels import reference as ref

    rng = np.random.default_rng(4)
    r = rng.uniform(0.5, 1.5, 20000)
    n = rng.integers(0, 256, 20000)
    a = _nb_many("pow", r, n)
    np.testing.assert_array_equal(a, _nb_many("pow_bits", r, n))
    np.testing.assert_array_equal(a, ref.pow_int(r, n))
    np.testing.assert_array_equal(a[n == 0], 1.0)
    np.testing.assert_array_equal(a[n == 1], r[n == 1])
    want = r**n
    assert np.all(_ulps(a, want) <= np.maximum(2 * n, 1))
    # huge counts (a 20,000-pulse write): under- and overflow like pow, no NaN
    big = np.array([20000, 2**31 - 1])
    small = ref.pow_int(np.array([0.999, 0.999]), big)
    np.testing.assert_allclose(small, [0.999**20000, 0.0], rtol=2 * 20000 * 2.0**-52, atol=0)
    assert np.all(np.isinf(ref.pow_int(np.array([1.001, 1.001]), big)) == [False, True])


def test_series_are_within_an_ulp_of_the_c_library():
    """``log1p`` below ``LOG1P_SERIES_MAX`` and ``expm1`` below ``EXPM1_SERIES_MAX`` (uniform
    and log-uniform arguments down to 1e-20): within one ulp of the C library's, and the numpy
    reference's series equal numba's bit for bit; the dispatching functions switch to the
    library exactly at the thresholds."""
    import math

    from devices.kernels import reference as ref

    rng = np.random.default_rng(5)
    zmax, ymax = ref.LOG1P_SERIES_MAX, ref.EXPM1_SERIES_MAX
    z = np.concatenate([rng.uniform(0, zmax, 50000), 10 ** rng.uniform(-20, np.log10(zmax), 50000)])
    y = np.concatenate(
        [
            rng.uniform(-ymax, ymax, 50000),
            rng.choice([-1, 1], 50000) * 10 ** rng.uniform(-20, np.log10(ymax), 50000),
        ]
    )
    for name, x, lib, series in (("log1p", z, math.log1p, ref.log1p_series),
                                 ("expm1", y, math.expm1, ref.expm1_series)):  # fmt: skip
        a = _nb_many(name, x)
        want = np.array([lib(v) for v in x])
        assert _ulps(a, want).max() <= 1.0, name
        assert np.mean(a == want) > 0.7, name  # mostly the library's own rounding
        np.testing.assert_array_equal(series(x), a)
    assert ref.step_log1p(np.array([zmax]))[0] == math.log1p(zmax)
    assert ref.step_expm1(np.array([-ymax]))[0] == math.expm1(-ymax)
    # beyond the series, the reference takes the C library's values (the kernels' calls)
    far = np.concatenate([rng.uniform(zmax, 5.0, 2000), [np.inf, 1e300]])
    np.testing.assert_array_equal(ref.step_log1p(far), [math.log1p(v) for v in far])
    far = rng.uniform(-40.0, 40.0, 2000)
    far = np.concatenate([far[np.abs(far) >= ymax], [800.0, -np.inf]])
    want = [math.expm1(v) if v < 700 else np.inf for v in far]
    np.testing.assert_array_equal(ref.step_expm1(far), want)
    below = np.nextafter(zmax, 0.0)
    assert ref.step_log1p(np.array([below]))[0] == ref.log1p_series(below)
