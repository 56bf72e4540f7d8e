"""The quantizer family of devices.quantizers: Uniform, LSQ, StatsQ (specs/quantizers.md 1-3)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import devices
from devices import LSQ, StatsQ, Uniform

BITS = range(1, 9)


def _family(bits):
    """One instance of every quantizer kind at ``bits`` (per tensor and per channel)."""
    return [
        Uniform(bits, 1.5),
        Uniform(bits, 1.5, narrow=False),
        Uniform(bits, (-0.7, 2.0)),
        Uniform(bits, np.array([0.5, 1.0, 2.0]), axis=0),
        Uniform(bits, axis=0),
        LSQ(bits),
        LSQ(bits, signed=False, axis=None),
        StatsQ(bits),
        StatsQ(bits, axis=None),
    ]


def _on_levels(y, levels, axis):
    """True where every entry of ``y`` equals (to 1e-12) one of its channel's levels."""
    if levels.ndim == 1:
        d = np.abs(y[..., None] - levels)
    else:  # (C, L), channel on axis 0
        d = np.abs(y[..., None] - levels.reshape(levels.shape[0], *[1] * (y.ndim - 1), -1))
    return np.all(d.min(axis=-1) <= 1e-12 * max(1.0, np.abs(levels).max()))


# -- worked examples of the spec ---------------------------------------------------------------


def test_affine_worked_example():
    q = Uniform(4, (-0.3, 1.2))
    x = [-0.3, 0.0, 0.33, 1.2, 1.5]
    s = q.scale()
    assert s == pytest.approx(0.1)
    assert q.zero_point(s) == 3
    assert q.quantize(x).tolist() == [0, 3, 6, 15, 15]
    np.testing.assert_allclose(q.fake(x), [-0.3, 0.0, 0.3, 1.2, 1.2], atol=1e-15)
    assert 0.0 in q.levels()


def test_symmetric_examples_and_one_bit():
    q = Uniform(4, 1.0)
    assert q.scale() == pytest.approx(1 / 7)
    assert q.code_range == (-7, 7)
    assert q.levels().size == 15 and 0.0 in q.levels()
    full = Uniform(4, 1.0, narrow=False)
    assert full.code_range == (-8, 7) and full.scale() == 1 / 8
    assert full.levels().size == 16
    one = Uniform(1, 2.0)
    assert one.levels().tolist() == [-2.0, 2.0]
    assert one.quantize([-3.0, -0.1, 0.0, 0.1]).tolist() == [-1, -1, 1, 1]  # sign(0) = +1
    assert one.fake([0.0]).tolist() == [2.0]


def test_lsq_worked_example():
    v = [0.37, -0.52, 0.05, 1.3]
    q = LSQ(3, axis=None)
    assert q.bounds == (4, 3)
    assert q.quantize(v, 0.25).tolist() == [1, -2, 0, 3]
    np.testing.assert_allclose(q.fake(v, 0.25), [0.25, -0.5, 0.0, 0.75], atol=0)
    np.testing.assert_allclose(q.grad_input(v, 0.25), [1, 1, 1, 0])
    np.testing.assert_allclose(q.grad_step(v, 0.25), [-0.48, 0.08, -0.2, 3], atol=1e-12)
    assert q.grad_factor(v) == pytest.approx(1 / np.sqrt(12), abs=1e-10)
    gv, gs = devices.lsq_gradients(v, 0.25, bits=3)
    np.testing.assert_array_equal(gv, [1, 1, 1, 0])
    assert gs.shape == () and float(gs) == pytest.approx(0.6928203230, abs=1e-10)


@pytest.mark.parametrize(
    "bits, u, q, out",
    [
        (2, [0.7, -0.9, -0.3, -2.5], [1, -1, 0, -2], [0.375, -0.125, 0.125, -0.375]),
        (3, [1.9, -1.3, -0.1, -4.5], [2, -1, 0, -4], [0.3125, -0.0625, 0.0625, -0.4375]),
    ],
)
def test_statsq_worked_example(bits, u, q, out):
    w = np.array([[0.3, -0.1, 0.05, -0.55]])
    sq = StatsQ(bits)
    assert sq.scale(w).tolist() == [[0.5]]
    np.testing.assert_allclose(sq.pre_round(w)[0], u, atol=1e-12)
    assert sq.quantize(w)[0].tolist() == q
    np.testing.assert_allclose(sq.fake(w)[0], out, atol=1e-15)


def test_statsq_grid_has_no_zero():
    assert StatsQ(2).levels(1.0).tolist() == [-0.75, -0.25, 0.25, 0.75]
    np.testing.assert_allclose(StatsQ(3).levels(8.0), [-7, -5, -3, -1, 1, 3, 5, 7])
    np.testing.assert_allclose(StatsQ(4).levels(16.0), np.arange(-15, 16, 2))
    for bits in BITS:
        lv = StatsQ(bits).levels(0.37)
        assert lv.size == 2**bits
        assert np.all(lv != 0.0)
        np.testing.assert_allclose(lv, -lv[::-1], atol=1e-15)  # symmetric
    # even an all-zero-ish row maps away from zero
    w = np.random.default_rng(0).normal(size=(6, 10))
    assert np.all(StatsQ(2).fake(w) != 0.0)


def test_statsq_scale_definition():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(5, 7))
    s = devices.statsq_scale(w)
    assert s.shape == (5, 1)
    for c in range(5):
        assert s[c, 0] == pytest.approx(2 * np.mean(np.abs(w[c])), rel=1e-14)
    assert devices.statsq_scale(w, axis=None) == pytest.approx(2 * np.abs(w).mean())
    conv = rng.normal(size=(4, 3, 2, 2))
    np.testing.assert_allclose(
        StatsQ(3).scale(conv).ravel(), 2 * np.abs(conv).reshape(4, -1).mean(axis=1)
    )
    # an all-zero row cannot divide by zero
    w[2] = 0.0
    out = StatsQ(2).fake(w)
    assert np.all(np.isfinite(out)) and np.all(np.abs(out[2]) < 1e-11)
    # weights at or beyond s_c clip to the outer levels
    big = np.array([[1.0, -1.0, 0.0, 0.0]])  # s = 1
    assert StatsQ(2).fake(big)[0, :2].tolist() == [0.75, -0.75]


def test_lsq_init_scale():
    w = np.random.default_rng(2).normal(size=(4, 9))
    s = LSQ(4).scale(w)
    assert s.shape == (4, 1)
    np.testing.assert_allclose(s[:, 0], 2 * np.abs(w).mean(axis=1) / np.sqrt(7))
    assert LSQ(4, axis=None).scale(np.zeros(3)) == 1e-5


# -- invariants over the whole family --------------------------------------------------------


@pytest.mark.parametrize("bits", BITS)
def test_outputs_on_levels_codes_in_range_and_idempotent(bits):
    rng = np.random.default_rng(bits)
    x = rng.normal(scale=1.2, size=(3, 40))
    for q in _family(bits):
        s = q.scale(x)
        y = q.fake(x, s)
        codes = q.quantize(x, s)
        assert codes.dtype == np.int64 and codes.shape == x.shape
        lo, hi = q.code_range
        assert codes.min() >= lo and codes.max() <= hi
        assert set(np.unique(codes)) <= set(q.codes().tolist())
        assert _on_levels(y, q.levels(s), q.axis), q
        # idempotence with the scale held fixed
        np.testing.assert_array_equal(q.fake(y, s), y)
        # quantize(dequantize(q)) == q for every valid code
        all_codes = np.broadcast_to(q.codes(), (3, q.codes().size))
        np.testing.assert_array_equal(q.quantize(q.dequantize(all_codes, s), s), all_codes)


def test_range_clipping():
    x = np.array([-10.0, -1.0, 0.2, 1.0, 10.0])
    q = Uniform(3, 1.0)
    y = q.fake(x)
    assert y[0] == -1.0 and y[-1] == 1.0 and y[1] == -1.0 and y[3] == 1.0
    a = Uniform(3, (-0.5, 2.0))
    ya = a.fake(x)
    assert ya.min() >= a.levels()[0] and ya.max() <= a.levels()[-1] + 1e-15
    assert ya[0] == a.levels()[0] and ya[-1] == a.levels()[-1]
    lsq = LSQ(2, axis=None)
    assert lsq.fake(x, 0.5).tolist() == [-1.0, -1.0, 0.0, 0.5, 0.5]
    assert np.all(np.isfinite(Uniform(4, 1.0).fake(np.array([np.inf, -np.inf]))))


def test_per_channel_shapes_and_broadcasting():
    rng = np.random.default_rng(3)
    w = rng.normal(size=(3, 4, 5))
    r = np.array([0.5, 1.0, 2.0])
    q = Uniform(3, r, axis=0)
    s = q.scale(w)
    assert s.shape == (3, 1, 1)
    np.testing.assert_allclose(s.ravel(), r / 3)
    assert q.levels().shape == (3, 7)
    y = q.fake(w)
    assert y.shape == w.shape
    for c in range(3):
        assert np.abs(y[c]).max() <= r[c] + 1e-12
        np.testing.assert_array_equal(y[c], Uniform(3, float(r[c])).fake(w[c]))
    # a per-channel step may be given as (C,) or in the broadcast shape
    lsq = LSQ(4)
    steps = np.array([0.1, 0.2, 0.3])
    np.testing.assert_array_equal(lsq.fake(w, steps), lsq.fake(w, steps.reshape(3, 1, 1)))
    # dynamic per-channel range: each channel's max hits its outer level
    d = Uniform(4, axis=0)
    yd = d.fake(w)
    np.testing.assert_allclose(
        np.abs(yd).reshape(3, -1).max(axis=1), np.abs(w).reshape(3, -1).max(1)
    )
    # per-channel affine ranges
    aff = Uniform(2, (np.array([-1.0, 0.0]), np.array([1.0, 3.0])), axis=0)
    assert aff.levels().shape == (2, 4)
    np.testing.assert_allclose(aff.levels()[1], [0, 1, 2, 3])
    # other channel axis
    assert Uniform(3, axis=1).scale(w).shape == (1, 4, 1)
    assert StatsQ(2, axis=-1).scale(w).shape == (1, 1, 5)


def test_lsq_gradient_formulas_per_channel():
    rng = np.random.default_rng(4)
    v = rng.normal(size=(3, 6))
    s = np.array([0.2, 0.3, 0.5])
    g_out = rng.normal(size=v.shape)
    gv, gs = devices.lsq_gradients(v, s, bits=3, axis=0, grad_output=g_out)
    assert gs.shape == (3,)
    for c in range(3):
        u = v[c] / s[c]
        inside = (u > -4) & (u < 3)
        np.testing.assert_array_equal(gv[c], g_out[c] * inside)
        elem = np.where(u <= -4, -4.0, np.where(u >= 3, 3.0, np.rint(np.clip(u, -4, 3)) - u))
        k = 1 / np.sqrt(6 * 3)
        assert gs[c] == pytest.approx(k * np.sum(g_out[c] * elem), rel=1e-12)


def test_clipped_ste_of_uniform():
    q = Uniform(3, 1.0)
    x = np.array([-2.0, -0.5, 0.0, 0.7, 1.5])
    assert q.grad_input(x).tolist() == [0, 1, 1, 1, 0]
    assert q.grad_input(x, ste="identity").tolist() == [1] * 5
    assert StatsQ(2).grad_input([[5.0, -0.1]]).tolist() == [[1.0, 1.0]]


# -- stochastic rounding ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "q, x",
    [
        (Uniform(3, 1.0, rounding="stochastic"), 0.3),
        (Uniform(3, 1.0, rounding="stochastic"), -0.61),
        (Uniform(4, (0.0, 1.0), rounding="stochastic"), 0.4321),
        (Uniform(1, 1.0, rounding="stochastic"), 0.25),
    ],
)
def test_stochastic_rounding_unbiased(q, x):
    n = 100_000
    xs = np.full(n, x)
    y = q.fake(xs, rng=np.random.default_rng(0))
    s = float(q.scale())
    gap = 2 * s if q.bits == 1 else s
    lower = np.floor((x - q.levels()[0]) / gap) * gap + q.levels()[0]
    assert set(np.round(np.unique(y), 12)) <= {round(lower, 12), round(lower + gap, 12)}
    p = (x - lower) / gap
    se = gap * np.sqrt(p * (1 - p) / n)
    assert abs(y.mean() - x) < 4 * se
    # a seed reproduces the draws; explicit noise gives the same result as the generator
    np.testing.assert_array_equal(y, q.fake(xs, rng=np.random.default_rng(0)))
    noise = np.random.default_rng(0).random(n)
    np.testing.assert_array_equal(y, q.fake(xs, noise=noise))


def test_nearest_rounding_is_biased_where_stochastic_is_not():
    """The unbiasedness check can fail: nearest rounding of 0.3 at step 1/3 gives 1/3."""
    xs = np.full(1000, 0.3)
    assert abs(Uniform(3, 1.0).fake(xs).mean() - 0.3) > 0.03


def test_stochastic_needs_rng():
    with pytest.raises(ValueError, match="rng"):
        Uniform(3, 1.0, rounding="stochastic").fake([0.1])


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [Uniform, LSQ, StatsQ])
@pytest.mark.parametrize("bits", [0, 9, -1])
def test_bad_bits(cls, bits):
    with pytest.raises(ValueError, match="bits"):
        cls(bits)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"range": (1.0, -1.0)}, "lo <= hi"),
        ({"range": (float("nan"), 1.0)}, "range"),
        ({"range": -1.0}, "range"),
        ({"range": 0.0}, "range"),
        ({"range": (0.0, 0.0)}, "range"),
        ({"range": (1.0, 2.0, 3.0)}, "range"),
        ({"range": np.array([1.0, 2.0])}, "axis"),
        ({"range": 1.0, "rounding": "nearst"}, "rounding.*did you mean 'nearest'"),
    ],
)
def test_bad_uniform_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Uniform(4, **kwargs)


def test_bad_inputs_and_scales():
    with pytest.raises(ValueError, match="x must not contain NaN"):
        Uniform(4, 1.0).fake([np.nan])
    with pytest.raises(ValueError, match="axis"):
        StatsQ(2, axis=2).fake(np.ones((2, 3)))
    with pytest.raises(ValueError, match="axis"):
        LSQ(2, axis=0).scale(np.float64(1.0))
    with pytest.raises(ValueError, match="scale must have 1 or 3 entries"):
        LSQ(2).fake(np.ones((3, 2)), [0.1, 0.2])
    with pytest.raises(ValueError, match="scale must be a scalar"):
        LSQ(2, axis=None).fake(np.ones(3), [0.1, 0.2])
    with pytest.raises(ValueError, match="scale"):
        StatsQ(2).fake(np.ones((2, 2)), scale=[0.0, 1.0])
    with pytest.raises(ValueError, match="range must have 1 or 2 entries"):
        Uniform(3, np.array([1.0, 2.0, 3.0]), axis=0).fake(np.ones((2, 4)))
    with pytest.raises(ValueError, match="q must hold codes"):
        StatsQ(2).dequantize([[5]], [1.0])
    with pytest.raises(ValueError, match="scale is required"):
        LSQ(2).levels()
    with pytest.raises(TypeError, match="axis"):
        StatsQ(2, axis=0.5)


@settings(max_examples=60, deadline=None)
@given(
    bits=st.integers(1, 8),
    r=st.floats(1e-3, 1e3),
    x=st.lists(st.floats(-1e4, 1e4), min_size=1, max_size=30),
)
def test_uniform_rounds_to_nearest_level(bits, r, x):
    q = Uniform(bits, r)
    x = np.array(x)
    y = q.fake(x)
    lv = q.levels()
    xc = np.clip(x, lv[0], lv[-1])
    nearest = np.abs(xc[:, None] - lv[None, :]).min(axis=1)
    np.testing.assert_allclose(np.abs(y - xc), nearest, atol=1e-9 * r)


# -- numba backend: bitwise equal to the numpy reference ----------------------------------------


def _backend_pair(q):
    import dataclasses

    from devices.quantizers import LevelGrid

    if isinstance(q, LevelGrid):
        kw = {"axis": q.axis, "scaling": q.scaling, "rounding": q.rounding}
        return LevelGrid(q.table, backend="numpy", **kw), LevelGrid(q.table, backend="numba", **kw)
    return dataclasses.replace(q, backend="numpy"), dataclasses.replace(q, backend="numba")


def _backend_cases():
    from devices.quantizers import LevelGrid

    rng = np.random.default_rng(11)
    return [
        Uniform(3, 1.5),
        Uniform(1, 1.5),
        Uniform(4, (-0.7, 2.0)),
        Uniform(4, np.linspace(0.5, 2.0, 6), axis=0),
        Uniform(3, axis=0),
        Uniform(2, axis=1),
        Uniform(5, 1.0, narrow=False, axis=2),
        Uniform(3, 1.0, rounding="stochastic"),
        Uniform(1, 1.0, rounding="stochastic"),
        Uniform(4, (-0.2, 1.0), axis=0, rounding="stochastic"),
        LSQ(3),
        LSQ(1),
        LSQ(8, signed=False, axis=None),
        StatsQ(2),
        StatsQ(1),
        StatsQ(4, axis=None),
        StatsQ(3, axis=1),
        LevelGrid.from_device("epiram", n_states=8, axis=0, scaling="mean"),
        LevelGrid(np.sort(rng.normal(size=(6, 7)), axis=1), axis=0),
        LevelGrid(np.sort(rng.normal(size=(5, 4)), axis=1), axis=1, scaling="absmax"),
        LevelGrid([-1.0, 0.0, 0.3, 1.0], rounding="stochastic"),
    ]


@pytest.mark.parametrize("q", _backend_cases(), ids=repr)
def test_numba_backend_bitwise_equals_numpy(q):
    ref, fast = _backend_pair(q)
    x = np.random.default_rng(3).normal(0, 1.0, (6, 5, 40))
    x[0, 0, :4] = [0.0, -0.0, 1e9, -1e9]
    # exact ties of the uniform grids: half-integer codes
    noise = np.random.default_rng(4).random(x.shape)
    for method in ("quantize", "fake"):
        a = getattr(ref, method)(x, noise=noise)
        b = getattr(fast, method)(x, noise=noise)
        assert a.dtype == b.dtype and a.shape == b.shape == x.shape
        np.testing.assert_array_equal(a, b)
        assert np.array_equal(np.signbit(a), np.signbit(b))
    s = ref.scale(x)
    codes = ref.quantize(x, s, noise=noise)
    np.testing.assert_array_equal(ref.dequantize(codes, s), fast.dequantize(codes, s))
    # the same generator state gives the same draws on both backends
    rng_a, rng_b = np.random.default_rng(9), np.random.default_rng(9)
    np.testing.assert_array_equal(ref.fake(x, rng=rng_a), fast.fake(x, rng=rng_b))


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_numba_backend_exact_ties(bits):
    """Codes exactly half way between levels round half to even on both backends."""
    q = Uniform(bits, float(2 ** (bits - 1) - 1), axis=None)  # step 1: x = k + 0.5 is a tie
    x = np.arange(-(2 ** (bits - 1)), 2 ** (bits - 1)) + 0.5
    ref, fast = _backend_pair(q)
    np.testing.assert_array_equal(ref.quantize(x), fast.quantize(x))
    assert np.all(ref.quantize(x)[np.abs(x) < 2 ** (bits - 1) - 1] % 2 == 0)


def test_auto_backend_switches_on_size_and_bad_backend():
    from devices.quantizers import AUTO_NUMBA_MIN_SIZE, LevelGrid

    q = StatsQ(3, axis=0)
    assert q.backend == "auto"
    assert q._kernels(AUTO_NUMBA_MIN_SIZE - 1) is None
    assert q._kernels(AUTO_NUMBA_MIN_SIZE) is not None
    assert StatsQ(3, backend="numpy")._kernels(10**9) is None
    assert StatsQ(3, backend="numba")._kernels(1) is not None
    x = np.random.default_rng(0).normal(size=(64, AUTO_NUMBA_MIN_SIZE // 32))
    np.testing.assert_array_equal(q.fake(x), StatsQ(3, axis=0, backend="numpy").fake(x))
    for make in (
        lambda: Uniform(3, backend="cuda"),
        lambda: LSQ(3, backend="numbaa"),
        lambda: StatsQ(3, backend=None),
        lambda: LevelGrid([0.0, 1.0], backend="gpu"),
    ):
        with pytest.raises(ValueError, match="backend"):
            make()
