"""The counter-based normal generator (a ziggurat on hashed words, devices/_rng.py): its tables,
its distribution (KS, moments, tails, the tail sampler alone) and numba = numpy bit for bit."""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest
from scipy import stats

from devices import _rng
from devices.kernels import numba_cpu as nb

N_DRAWS = 1_000_000


@pytest.fixture(scope="module")
def draws():
    return _rng.normal_np(_rng.call_base(99, 4), np.arange(N_DRAWS))


@numba.njit(cache=False)
def _nb_normals(base, idx):
    out = np.empty(idx.size)
    for k in range(idx.size):
        out[k] = nb._normal(base, idx[k])
    return out


def test_tables_have_equal_areas():
    """Every layer (box of width x[i] between the densities at x[i] and x[i+1]) has area v; the
    base layer (rectangle below f(r) plus the tail) too; the top layer closes at x = 0."""
    x, f, v = _rng.ZIG_X, _rng.ZIG_F, _rng.ZIG_V
    n = _rng.ZIG_LAYERS
    assert x.size == n + 1 and x[n] == 0.0 and np.all(np.diff(x) < 0)
    np.testing.assert_allclose(f, np.exp(-0.5 * x * x), rtol=0, atol=0)
    areas = x[1:n] * (f[2:] - f[1:n])
    np.testing.assert_allclose(areas, v, rtol=1e-11)
    tail = math.sqrt(math.pi / 2) * math.erfc(_rng.ZIG_R / math.sqrt(2))
    assert x[1] * f[1] + tail == pytest.approx(v, rel=1e-14)
    assert x[0] * f[1] == pytest.approx(v, rel=1e-14)
    # the n boxes cover the half-curve (area sqrt(pi/2)) with about 0.7% to spare
    assert 0.99 < math.sqrt(math.pi / 2) / (n * v) < 1.0


def test_normal_distribution(draws):
    z = draws
    assert stats.kstest(z, "norm").pvalue > 0.001
    se = 1 / math.sqrt(z.size)
    assert abs(z.mean()) < 5 * se
    assert abs(z.var() - 1) < 5 * math.sqrt(2) * se
    assert abs(stats.skew(z)) < 5 * math.sqrt(6) * se
    assert abs(stats.kurtosis(z)) < 5 * math.sqrt(24) * se
    # the sign is fair and independent of the magnitude
    assert abs((z > 0).mean() - 0.5) < 5 * 0.5 * se
    big = np.abs(z) > 1.5
    assert abs((z[big] > 0).mean() - 0.5) < 5 * 0.5 / math.sqrt(big.sum())


@pytest.mark.parametrize("c", [2.0, 3.0, _rng.ZIG_R, 4.0])
def test_normal_tails(draws, c):
    """Two-sided tail counts beyond c agree with 2 sf(c) (binomial, 5 sigma), including beyond r,
    where only the tail sampler produces values."""
    p = 2 * stats.norm.sf(c)
    n = int((np.abs(draws) > c).sum())
    mu = p * draws.size
    assert abs(n - mu) < 5 * math.sqrt(mu) + 1


def test_tail_sampler_is_the_truncated_normal():
    """The exact tail sampler alone: KS against the normal truncated to (r, inf)."""
    m = 50_000
    k = np.zeros(m, dtype=np.uint64)
    s = np.arange(m, dtype=np.uint64) * np.uint64(_rng.PHI2X2) + np.uint64(12345)
    t = _rng._tail(np, s, k, np.arange(m))
    r = _rng.ZIG_R
    assert np.all(t > r) and np.all(k >= 2) and np.all(k % 2 == 0)
    assert stats.kstest(t, stats.truncnorm(r, np.inf).cdf).pvalue > 0.001


def test_normals_are_a_pure_function_of_base_and_index(draws):
    idx = np.array([7, N_DRAWS - 1, 0, 123_456])
    np.testing.assert_array_equal(_rng.normal_np(_rng.call_base(99, 4), idx), draws[idx])
    np.testing.assert_array_equal(
        _rng.normal_np(_rng.call_base(99, 4), idx.reshape(2, 2)), draws[idx].reshape(2, 2)
    )
    other = _rng.normal_np(_rng.call_base(99, 5), np.arange(100_000))
    assert abs(np.corrcoef(draws[:100_000], other)[0, 1]) < 0.02
    # neighbouring devices are uncorrelated (their streams interleave in the hash input)
    assert abs(np.corrcoef(draws[:-1], draws[1:])[0, 1]) < 0.01


def test_numba_normal_equals_numpy_bit_for_bit(draws):
    """Includes the rare wedge and tail draws (about 1% of the indices)."""
    base = _rng.call_base(99, 4)
    idx = np.arange(200_000, dtype=np.int64)
    np.testing.assert_array_equal(_nb_normals(np.uint64(base), idx), draws[:200_000])
    tail = np.flatnonzero(np.abs(draws) > _rng.ZIG_R).astype(np.int64)
    assert tail.size > 100
    np.testing.assert_array_equal(_nb_normals(np.uint64(base), tail), draws[tail])


@pytest.mark.parametrize("key", [0, 3, 2**63 + 11, 2**64 - 1])
@pytest.mark.parametrize("counter", [0, 5, 2**63, 2**64 - 3])
def test_call_bases_equal_call_base(key, counter):
    """The vectorized per-call bases of a batch (``call_bases``) are the scalar ``call_base``
    of each counter, including counters that wrap around 2**64."""
    got = _rng.call_bases(key, counter, 7)
    want = [_rng.call_base(key, (counter + b) & _rng.MASK64) for b in range(7)]
    assert got.dtype == np.uint64
    assert [int(v) for v in got] == want
