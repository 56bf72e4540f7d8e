"""Refresh triggers of the unidirectional rule: threshold (default), hysteresis, preemptive."""

from __future__ import annotations

import numpy as np
import pytest

import devices
from learning_rules import PulseRule
from learning_rules.refresh import hysteresis_mask, pair_levels, refreshes_by_weight


def _array(shape=(4, 5), seed=0, **over):
    dev = devices.get("pcmo", c2c_sigma=0.0, **over)
    return devices.DeviceArray(shape, dev, mapping="differential", seed=seed)


def _spy(arr):
    """Record (levels before, weights before, levels after, weights after, mask) per refresh."""
    calls = []
    orig = arr.refresh

    def refresh(mask, **kw):
        g0, w0 = pair_levels(arr), arr.weights()
        n = orig(mask, **kw)
        calls.append((g0, w0, pair_levels(arr), arr.weights(), np.asarray(mask).copy()))
        return n

    arr.refresh = refresh
    return calls


def _update(rule, arr, dW, k):
    """Updates that request the change ``dW`` (one per input column); returns refreshes."""
    # request = -lr delta^T x: one-hot inputs write dW column by column
    refreshed = 0
    for i in range(arr.shape[1]):
        xi = np.zeros((1, arr.shape[1]))
        xi[0, i] = 1.0
        refreshed += rule.update(arr, xi, -dW[None, :, i], 1.0, step=k)["refreshes"]
    return refreshed


@pytest.mark.parametrize("mode", ["verify", "ideal"])
def test_hysteresis_invariants(mode):
    arr = _array(seed=3)
    rng = np.random.default_rng(0)
    arr.program(rng.uniform(-0.8, 0.8, arr.shape))
    margin, thr = 0.15, 0.9
    rule = PulseRule.named(
        "unidirectional", refresh="hysteresis", refresh_margin=margin, refresh_mode=mode
    )
    calls = _spy(arr)
    step = arr.nominal_step("unidirectional")[0]
    half = 0.5 / arr.device.levels("ltp")
    for k in range(150):
        _update(rule, arr, 3.0 * step * rng.standard_normal(arr.shape), k)
        g = pair_levels(arr)
        hi, lo = g.max(axis=0), g.min(axis=0)
        # after every update: below the threshold, or the partner below the margin
        assert np.all((hi < thr) | (lo < margin))
    assert len(calls) > 5
    for g0, w0, g1, w1, mask in calls:
        # only pairs with their smaller device at the margin or above are refreshed
        assert np.all(g0.min(axis=0)[mask] >= margin)
        # the refresh lowers the larger device by at least the margin (less one verify step)
        assert np.all(g1.max(axis=0)[mask] <= g0.max(axis=0)[mask] - margin + 1.5 * half)
        # ... and leaves the smaller one at Gmin
        assert np.all(g1.min(axis=0)[mask] <= half)
        # below the threshold by the margin whenever |w| allows it
        small = mask & (np.abs(w0) < thr - margin - 2 * step)
        assert np.all(g1.max(axis=0)[small] < thr - margin)
        # the weight is kept within one pulse step at the target (noise-free device; the
        # device's own local step on its nominal LTP curve, D11)
        np.testing.assert_array_less(np.abs(w1 - w0)[mask], _local_step(arr, w0[mask]) + 1e-12)


def _local_step(arr, w):
    """Weight change of one LTP pulse at the conductance that holds ``|w|`` above Gmin."""
    dev = arr.device
    x = dev.pulses(dev.gmin + np.abs(w) / arr.alpha, "ltp")
    return arr.alpha * (dev.conductance(x + 1, "ltp") - dev.conductance(x, "ltp"))


def _saturating(policy, n=300):
    """A pair near its weight bound (w = 0.95) receiving alternating opposite requests (a
    linear noise-free device of 50 levels, so that the weight stays put)."""
    dev = devices.get("ideal", levels_ltp=50, levels_ltd=50)
    arr = devices.DeviceArray((1, 1), dev, mapping="differential", seed=2)
    arr.program(np.array([[0.95]]))
    rule = PulseRule.named("unidirectional", refresh=policy, refresh_margin=0.1)
    step = arr.nominal_step("unidirectional")[0]
    total = 0
    for k in range(n):
        total += _update(rule, arr, np.array([[step if k % 2 else -step]]), k)
    return total, float(arr.weights()[0, 0])


def test_hysteresis_cuts_refreshes_on_a_saturating_pair():
    n_thr, w_thr = _saturating("threshold")
    n_hys, w_hys = _saturating("hysteresis")
    # the plain trigger refreshes on (nearly) every opposite pulse: ~n/2
    assert n_thr >= 100
    # with a margin of 0.1 of the range (5 of pcmo's 50 pulses) at most one in ~5
    assert n_hys * 4 <= n_thr
    assert n_hys >= 1
    # both keep the weight near its bound
    assert abs(w_thr - 0.95) < 0.1 and abs(w_hys - 0.95) < 0.1


def test_default_trigger_unchanged():
    r = PulseRule.named("unidirectional")
    assert r.refresh == "threshold"
    arr = _array(seed=5)
    arr.program(np.random.default_rng(1).uniform(-0.5, 0.5, arr.shape))
    rng = np.random.default_rng(2)
    step = arr.nominal_step("unidirectional")[0]
    for k in range(60):
        _update(r, arr, 4.0 * step * rng.standard_normal(arr.shape), k)
        # D11: below the threshold or the partner within half a step of Gmin
        g = pair_levels(arr)
        half = 0.5 / arr.device.levels("ltp")
        assert np.all((g.max(axis=0) < 0.9) | (g.min(axis=0) <= half))


def _preempt_case(policy):
    dev = devices.get("ideal", levels_ltp=50, levels_ltd=50)
    arr = devices.DeviceArray((1, 1), dev, mapping="differential", seed=0)
    arr.program(np.array([[0.55]]), form="centered")  # g+ = 0.775, g- = 0.225
    rule = PulseRule.named("unidirectional", refresh=policy)
    step = arr.nominal_step("unidirectional")[0]
    n = _update(rule, arr, np.array([[15 * step]]), 0)  # 15 pulses; G+ has 11.25 left
    return n, float(arr.weights()[0, 0]), step


def test_preemptive_refreshes_before_a_request_that_does_not_fit():
    n_pre, w_pre, step = _preempt_case("preemptive")
    n_thr, w_thr, _ = _preempt_case("threshold")
    assert n_pre == 1
    # the whole request lands: 0.55 + 15 steps
    assert abs(w_pre - (0.55 + 15 * step)) <= step
    # without it G+ saturates and the request is cut to the headroom
    assert w_thr < 0.55 + 12 * step


def test_preemptive_leaves_fitting_requests_alone():
    dev = devices.get("ideal", levels_ltp=50, levels_ltd=50)
    arr = devices.DeviceArray((1, 1), dev, mapping="differential", seed=0)
    arr.program(np.array([[0.2]]), form="centered")
    rule = PulseRule.named("unidirectional", refresh="preemptive")
    step = arr.nominal_step("unidirectional")[0]
    assert _update(rule, arr, np.array([[3 * step]]), 0) == 0


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"refresh": "sometimes"}, "refresh"),
        ({"refresh_margin": 0.95}, "refresh_margin"),
        ({"refresh_margin": 0.0}, "refresh_margin"),
    ],
)
def test_bad_refresh_options(kw, match):
    with pytest.raises(ValueError, match=match):
        PulseRule.named("unidirectional", **kw)


def test_refreshes_by_weight_bins():
    arr = _array(shape=(2, 2))
    arr.program(np.array([[0.1, 0.5], [0.95, -1.0]]))
    arr.refresh(np.array([[False, False], [True, True]]), mode="ideal")
    rows = refreshes_by_weight(arr, (0.0, 0.25, 0.9, 1.0))
    assert [r["synapses"] for r in rows] == [1, 1, 2]
    assert [r["refreshes"] for r in rows] == [0.0, 0.0, 1.0]


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_hysteresis_mask_equals_the_whole_array_levels(backend):
    """The mask is computed on the flagged pairs only: the same mask as the levels of every
    pair (:func:`pair_levels`) would give, with stuck devices and pairs on both sides."""
    dev = devices.get("pcmo", c2c_sigma=0.05, p_stuck_gmax=0.05, p_stuck_random=0.05)
    arr = devices.DeviceArray((13, 21), dev, mapping="differential", seed=3, backend=backend)
    rng = np.random.default_rng(4)
    arr.program(rng.uniform(-0.9, 0.9, arr.shape), mode="verify")
    arr.pulse_request(rng.normal(0, 0.2, arr.shape), method="unidirectional")
    g = pair_levels(arr)
    for p in (0.0, 0.01, 0.3, 1.0):
        mask = rng.random(arr.shape) < p
        for margin in (0.05, 0.1, 0.3):
            want = mask & (np.minimum(g[0], g[1]) >= margin)
            got = hysteresis_mask(arr, mask, margin)
            assert got.dtype == bool and got.shape == arr.shape
            assert np.array_equal(got, want)
            if p == 1.0 and margin == 0.05:
                assert 0 < got.sum() < got.size
