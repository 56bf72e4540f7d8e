"""LevelGrid: a device's weight levels as a quantizer (specs/quantizers.md sections 5 and 7.1)."""

from __future__ import annotations

import numpy as np
import pytest

import devices
from devices import StatsQ, Uniform
from devices.models import ExpDevice, LinearDevice
from devices.quantizers import LevelGrid


def _linear(P):
    return LinearDevice(gmin=1e-7, gmax=5e-6, levels_ltp=P, levels_ltd=P)


def _away_from_midpoints(x, table, tol=1e-9):
    """Entries of ``x`` not within ``tol`` of a decision midpoint of ``table``."""
    mid = 0.5 * (table[1:] + table[:-1])
    return np.abs(x[..., None] - mid).min(axis=-1) > tol


@pytest.mark.parametrize("bits", range(2, 9))  # device models need P >= 2 pulses
def test_statsq_levels_equal_linear_device_reference_levels(bits):
    # a linear device with 2**b states against a mid-range reference has weights W (2k/P - 1)
    s = 0.37
    grid = LevelGrid.from_device(
        _linear(2**bits - 1), "reference", w_range=s * (2**bits - 1) / 2**bits
    )
    np.testing.assert_allclose(grid.table, StatsQ(bits, axis=None).levels(s), rtol=0, atol=1e-12)
    assert grid.n_levels == 2**bits and not np.any(np.isclose(grid.table, 0.0))


@pytest.mark.parametrize("bits", range(2, 9))
def test_level_grid_of_linear_device_equals_uniform(bits):
    r = 1.3
    grid = LevelGrid.from_device(_linear(2**bits - 2), "reference", w_range=r)
    uni = Uniform(bits, r)
    np.testing.assert_allclose(grid.table, uni.levels(), rtol=0, atol=1e-12)
    x = np.random.default_rng(bits).normal(0, r, 4000)
    keep = _away_from_midpoints(x, grid.table)
    np.testing.assert_allclose(grid.fake(x)[keep], uni.fake(x)[keep], rtol=0, atol=1e-12)
    offset = 2 ** (bits - 1) - 1  # table index of code 0
    np.testing.assert_array_equal(grid.quantize(x)[keep] - offset, uni.quantize(x)[keep])


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_mean_scaling_of_linear_table_equals_statsq_per_channel(bits):
    w = np.random.default_rng(bits).normal(0, 0.2, (16, 40))
    grid = LevelGrid.from_device(_linear(2**bits - 1), axis=0, scaling="mean")
    sq = StatsQ(bits, axis=0)
    np.testing.assert_allclose(grid.levels(grid.scale(w)), sq.levels(sq.scale(w)), atol=1e-12)
    a, b = grid.fake(w), sq.fake(w)
    assert np.mean(np.abs(a - b) < 1e-12) > 0.999  # identical up to exact ties


def test_nearest_entry_against_brute_force():
    grid = LevelGrid.from_device("epiram", "differential")
    t = grid.table
    assert grid.n_levels == 2 * devices.get("epiram").levels("ltp") + 1 and 0.0 in t
    x = np.random.default_rng(0).uniform(-1.3, 1.3, 20000)
    keep = _away_from_midpoints(x, t)
    brute = np.argmin(np.abs(x[:, None] - t), axis=1)
    np.testing.assert_array_equal(grid.quantize(x)[keep], brute[keep])
    np.testing.assert_array_equal(grid.fake(x)[keep], t[brute[keep]])
    # clipping: outside the table go to the outer entries
    assert grid.quantize([-5.0, 5.0]).tolist() == [0, grid.n_levels - 1]
    g = grid.grad_input(np.array([-5.0, 0.1, 5.0]))
    assert g.tolist() == [0.0, 1.0, 0.0]


@pytest.mark.parametrize(
    "grid",
    [
        LevelGrid.from_device("epiram"),
        LevelGrid.from_device("alox_hfo2", "differential", 0.5),
        LevelGrid.from_device("pcmo", n_states=8, axis=0, scaling="absmax"),
        LevelGrid(np.sort(np.random.default_rng(1).normal(size=(3, 9)), axis=1), axis=0),
    ],
    ids=["epiram", "alox-diff", "pcmo-8", "per-channel"],
)
def test_idempotence_and_code_round_trip(grid):
    x = np.random.default_rng(2).normal(0, 0.6, (3, 50))
    s = grid.scale(x)
    y = grid.fake(x, s)
    np.testing.assert_array_equal(grid.fake(y, s), y)
    lv = grid.levels(s)
    codes = np.arange(grid.n_levels)
    q = np.broadcast_to(codes, (3, grid.n_levels)).copy()
    np.testing.assert_array_equal(grid.quantize(grid.dequantize(q, s), s), q)
    # every output lies on its channel's levels
    lv2 = lv if lv.ndim == 2 else np.broadcast_to(lv, (3, lv.size))
    for c in range(3):
        assert np.all(np.isin(y[c], lv2[c]))


def test_per_channel_tables_equal_row_by_row_grids():
    rng = np.random.default_rng(3)
    tables = np.sort(rng.normal(size=(4, 6)), axis=1)
    x = rng.normal(size=(4, 30))
    grid = LevelGrid(tables, axis=0)
    y = grid.fake(x)
    for c in range(4):
        np.testing.assert_array_equal(y[c], LevelGrid(tables[c]).fake(x[c]))
    # channel axis 1 of a transposed input gives the same
    np.testing.assert_array_equal(LevelGrid(tables, axis=1).fake(x.T), y.T)


def test_nonlinear_preset_is_nonuniform_and_spans_the_range():
    for name in ("epiram", "ag_a_si", "gst_pcm", "alox_hfo2"):
        t = LevelGrid.from_device(name, w_range=2.0).table
        assert t[0] == pytest.approx(-2.0) and t[-1] == pytest.approx(2.0)
        assert t.size == devices.get(name).levels("ltp") + 1
        steps = np.diff(t)
        assert np.all(steps > 0)
        if devices.get(name).nl_ltp != 0:
            assert steps.max() / steps.min() > 1.01  # companded, not uniform
    lin = LevelGrid.from_device(_linear(7)).table
    np.testing.assert_allclose(np.diff(lin), 2.0 / 7, rtol=1e-12)


def test_n_states_subsamples_the_response():
    dev = ExpDevice(gmin=0.0, gmax=1.0, levels_ltp=60, levels_ltd=60, nl_ltp=2.0, nl_ltd=2.0)
    full = LevelGrid.from_device(dev).table
    sub = LevelGrid.from_device(dev, n_states=4).table
    np.testing.assert_allclose(sub, full[[0, 20, 40, 60]], atol=1e-12)


def test_stochastic_rounding_unbiased_and_seeded():
    grid = LevelGrid([-1.0, -0.1, 0.3, 1.0], rounding="stochastic")
    n = 100_000
    for x0 in (-0.55, 0.05, 0.8):
        y = grid.fake(np.full(n, x0), rng=np.random.default_rng(5))
        se = y.std() / np.sqrt(n)
        assert abs(y.mean() - x0) < 4 * se + 1e-12
        assert set(np.unique(y)) <= set(grid.table)
    a = grid.quantize(np.linspace(-1, 1, 99), rng=np.random.default_rng(7))
    b = grid.quantize(np.linspace(-1, 1, 99), rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"levels": [0.0, 0.0, 1.0]}, "strictly increasing"),
        ({"levels": [0.0, np.nan]}, "finite"),
        ({"levels": [1.0]}, "at least 2"),
        ({"levels": [[0.0, 1.0], [0.0, 2.0]]}, "need axis"),
        ({"levels": [0.0, 1.0], "scaling": "maxx"}, "scaling"),
        ({"levels": [0.0, 1.0], "rounding": "up"}, "rounding"),
        ({"levels": np.zeros((2, 2, 2))}, "1-D"),
    ],
)
def test_bad_construction(kwargs, match):
    levels = kwargs.pop("levels")
    with pytest.raises(ValueError, match=match):
        LevelGrid(levels, **kwargs)


def test_bad_device_arguments_and_channel_mismatch():
    with pytest.raises(ValueError, match="mapping"):
        LevelGrid.from_device("epiram", mapping="diff")
    with pytest.raises(ValueError, match="w_range"):
        LevelGrid.from_device("epiram", w_range=0.0)
    with pytest.raises(ValueError, match="n_states"):
        LevelGrid.from_device("epiram", n_states=1)
    with pytest.raises(ValueError, match="device preset"):
        LevelGrid.from_device("epirom")
    with pytest.raises(TypeError, match="device"):
        LevelGrid.from_device(3.0)
    grid = LevelGrid(np.sort(np.random.default_rng(0).normal(size=(3, 4)), axis=1), axis=0)
    with pytest.raises(ValueError, match="3 tables"):
        grid.fake(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="scale is required"):
        LevelGrid([0.0, 1.0], scaling="mean").dequantize([0, 1])
    with pytest.raises(ValueError, match=r"codes in \[0, 1\]"):
        LevelGrid([0.0, 1.0]).dequantize([2])
    with pytest.raises(ValueError, match="NaN"):
        LevelGrid([0.0, 1.0]).fake([np.nan])
