"""NL labels and the normalized shape ``a`` (specs/devices.md sections 1-2; acceptance D2)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import PUBLISHED
from hypothesis import given, settings
from hypothesis import strategies as st

import devices
from devices.nl import C_NL, a_from_nl, gap_to_diagonal, nl_from_a, normalized_response
from devices.nl_vec import a_from_nl_array

# Section 2 table of the spec: NL -> a.
SPEC_TABLE = {
    0.04: 31.566827,
    0.5: 2.519877,
    1.0: 1.251653,
    2.0: 0.609035,
    2.4: 0.499181,
    3.0: 0.386830,
    4.0: 0.269089,
    4.88: 0.200303,
    6.0: 0.135619,
    9.0: 0.022810,
}

labels = st.floats(min_value=-9.0, max_value=9.0, allow_nan=False).filter(lambda v: abs(v) >= 1e-6)
shapes = st.floats(min_value=0.05, max_value=1e4) | st.floats(min_value=-1e4, max_value=-0.05)


def brute_gap(a, n=200_001):
    u = np.linspace(0.0, 1.0, n)
    return float(np.max(np.abs(normalized_response(u, a) - u)))


# --------------------------------------------------------------------------------- D2
@pytest.mark.parametrize("key", PUBLISHED)
@pytest.mark.parametrize("branch", ["ltp", "ltd"])
def test_a_from_nl_matches_json_a_norm(key, branch):
    rec = devices.published()["presets"][key]
    a = a_from_nl(rec[f"nl_{branch}"])
    assert a == pytest.approx(rec[f"a_norm_{branch}"], abs=1e-6, rel=0)


@pytest.mark.parametrize(("nl", "a"), sorted(SPEC_TABLE.items()))
def test_a_from_nl_matches_spec_table(nl, a):
    assert a_from_nl(nl) == pytest.approx(a, abs=1e-6, rel=0)
    assert a_from_nl(-nl) == pytest.approx(-a, abs=1e-6, rel=0)


def test_published_neurosim_rounding():
    assert round(a_from_nl(2.40), 4) == 0.4992
    assert round(a_from_nl(-4.88), 4) == -0.2003


@settings(max_examples=300, deadline=None)
@given(labels)
def test_nl_round_trip(nl):
    a = a_from_nl(nl)
    assert math.copysign(1.0, a) == math.copysign(1.0, nl)
    assert nl_from_a(a) == pytest.approx(nl, abs=1e-9, rel=0)


def test_nl_round_trip_grid():
    grid = np.concatenate([np.linspace(-9, 9, 1801), np.geomspace(1e-6, 1e-2, 40)])
    grid = grid[np.abs(grid) >= 1e-6]
    back = np.array([nl_from_a(a_from_nl(v)) for v in grid])
    np.testing.assert_allclose(back, grid, rtol=0, atol=1e-9)


@pytest.mark.parametrize("nl", [0.0, -0.0, 5e-7, -9.9e-7])
def test_tiny_labels_are_linear(nl):
    a = a_from_nl(nl)
    assert math.isinf(a)
    assert nl_from_a(a) == 0.0
    assert math.isinf(a_from_nl_array(np.array([nl]))[0])


# --------------------------------------------------------------------------------- D(a)
@settings(max_examples=40, deadline=None)
@given(shapes)
def test_gap_closed_form_equals_brute_force_maximum(a):
    assert gap_to_diagonal(a) == pytest.approx(brute_gap(a), abs=2e-9, rel=1e-6)


@settings(max_examples=200, deadline=None)
@given(shapes)
def test_gap_is_even_and_reflection_identity(a):
    assert gap_to_diagonal(a) == gap_to_diagonal(-a)
    u = np.linspace(0, 1, 101)
    np.testing.assert_allclose(
        normalized_response(u, -a), 1 - normalized_response(1 - u, a), atol=1e-12
    )


def test_gap_strictly_decreasing_and_limits():
    a = np.geomspace(1e-3, 1e7, 2000)
    d = np.array([gap_to_diagonal(v) for v in a])
    assert np.all(np.diff(d) < 0)
    for small in (1e-3, 1e-4, 1e-5):  # -> 1 as a -> 0+ (D = 1 - a + a ln a + O(exp(-1/a)))
        assert gap_to_diagonal(small) == pytest.approx(1 - small + small * math.log(small))
    for big in (1e4, 1e5, 1e6):
        assert gap_to_diagonal(big) * 8 * big == pytest.approx(1.0, rel=1e-6)
    assert gap_to_diagonal(1e9) == 0.0


def test_one_nl_unit_is_007_perpendicular():
    assert pytest.approx(0.07 * math.sqrt(2)) == C_NL
    a = a_from_nl(1.0)
    # the largest perpendicular distance of g_a to the diagonal is 0.07
    assert brute_gap(a) / math.sqrt(2) == pytest.approx(0.07, rel=1e-6)


def test_sign_convention_curvature():
    u = np.linspace(0.01, 0.99, 99)
    assert np.all(normalized_response(u, a_from_nl(3.0)) > u)  # concave, above diagonal
    assert np.all(normalized_response(u, a_from_nl(-3.0)) < u)  # convex, below diagonal


# --------------------------------------------------------------------------------- response
@settings(max_examples=200, deadline=None)
@given(shapes)
def test_normalized_response_endpoints_and_monotone(a):
    g = normalized_response(np.linspace(0, 1, 513), a)
    assert g[0] == 0.0
    assert g[-1] == pytest.approx(1.0, rel=1e-12, abs=1e-12)
    assert np.all(np.diff(g) > 0)


def test_normalized_response_linear_limit():
    u = np.linspace(0, 1, 1001)
    np.testing.assert_array_equal(normalized_response(u, math.inf), u)
    assert np.max(np.abs(normalized_response(u, 1e6) - u)) < 2e-7
    assert np.max(np.abs(normalized_response(u, -1e6) - u)) < 2e-7


# --------------------------------------------------------------------------------- vectorized
@settings(max_examples=50, deadline=None)
@given(st.lists(labels, min_size=1, max_size=30))
def test_vectorized_a_from_nl_agrees_with_root_finder(nls):
    nl = np.array(nls)
    vec = a_from_nl_array(nl)
    ref = np.array([a_from_nl(v) for v in nl])
    np.testing.assert_allclose(vec, ref, rtol=1e-6, atol=0)


def test_vectorized_dense_grid():
    nl = np.linspace(-9, 9, 9001)
    nl = nl[np.abs(nl) >= 1e-6]
    vec = a_from_nl_array(nl)
    ref = np.array([a_from_nl(v) for v in nl])
    np.testing.assert_allclose(vec, ref, rtol=1e-6, atol=0)
    assert np.all(np.sign(vec) == np.sign(nl))


@pytest.mark.parametrize("bad", [np.nan, np.inf, 9.5, -9.01])
def test_vectorized_rejects_bad_labels(bad):
    with pytest.raises(ValueError, match="nl"):
        a_from_nl_array(np.array([0.5, bad]))
