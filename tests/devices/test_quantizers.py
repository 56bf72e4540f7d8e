"""Uniform quantizer used for DAC inputs and ADC outputs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import devices


@pytest.mark.parametrize("bits", [1, 2, 3, 8, 16])
def test_levels_and_step(bits):
    q = devices.UniformQuantizer(bits=bits, lo=-1.5, hi=2.5)
    lv = q.levels()
    assert lv.size == 2**bits
    assert lv[0] == -1.5 and lv[-1] == pytest.approx(2.5)
    np.testing.assert_allclose(np.diff(lv), q.step)
    assert q.step == pytest.approx(4.0 / (2**bits - 1))


def test_docstring_example_and_one_bit():
    q = devices.UniformQuantizer(bits=2, lo=0.0, hi=3.0)
    assert q(np.array([0.2, 1.6, 7.0])).tolist() == [0.0, 2.0, 3.0]
    one = devices.UniformQuantizer(bits=1, lo=-1.0, hi=1.0)
    assert one(np.array([-5.0, -0.2, 0.2, 5.0])).tolist() == [-1.0, -1.0, 1.0, 1.0]


@settings(max_examples=100, deadline=None)
@given(
    bits=st.integers(1, 12),
    lo=st.floats(-100, 100),
    width=st.floats(1e-3, 100),
    x=st.lists(st.floats(-300, 300), min_size=1, max_size=50),
)
def test_round_to_nearest_level_within_range(bits, lo, width, x):
    q = devices.UniformQuantizer(bits=bits, lo=lo, hi=lo + width)
    x = np.array(x)
    y = q(x)
    lv = q.levels()
    # outputs are levels, clipped to [lo, hi], and the nearest level of the clipped input
    dist = np.abs(y[:, None] - lv[None, :]).min(axis=1)
    assert np.all(dist <= 1e-9 * max(1.0, abs(lo) + width))
    assert np.all((y >= lo - 1e-9) & (y <= lo + width + 1e-9))
    xc = np.clip(x, lo, lo + width)
    assert np.all(np.abs(y - xc) <= 0.5 * q.step * (1 + 1e-9) + 1e-9)


def test_stochastic_rounding_is_unbiased():
    q = devices.UniformQuantizer(bits=3, lo=0.0, hi=7.0, stochastic=True)
    rng = np.random.default_rng(0)
    x = np.full(200_000, 2.3)
    y = q(x, rng)
    assert set(np.unique(y)) == {2.0, 3.0}
    assert y.mean() == pytest.approx(2.3, abs=4 * 0.46 / np.sqrt(x.size))
    # deterministic for a seeded generator
    np.testing.assert_array_equal(y, q(x, np.random.default_rng(0)))


def test_quantizer_is_frozen():
    import dataclasses

    q = devices.UniformQuantizer(bits=4, lo=0, hi=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        q.bits = 3  # type: ignore[misc]
