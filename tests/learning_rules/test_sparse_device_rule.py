"""BSC with the dictionary on a device array under the unidirectional rule (spec section 9:
"unidirectional with refresh"): refreshes keep every pair below the threshold, only SET pulses
are sent, bad pulse options are named."""

from __future__ import annotations

import numpy as np
import pytest

import devices
from learning_rules.sparse_coding import BSC, bars_data, bars_dictionary

W_BARS = 10.0 * bars_dictionary(10)


def _data(seed=1, n=600):
    Y, _ = bars_data("bsc", {"W": W_BARS, "pi": 0.2, "sigma": 2.0}, n, seed)
    return Y


def _array(levels, seed=1, w_max=16.0):
    dev = devices.get("ideal", c2c_sigma=0, levels_ltp=levels, levels_ltd=levels)
    return devices.DeviceArray((25, 10), dev, w_max=w_max, seed=seed)


def test_unidirectional_refreshes_keep_pairs_below_threshold():
    Y = _data()
    runs = {}
    for method in ("bidirectional", "unidirectional"):
        arr = _array(16, w_max=11.0)  # bars of amplitude 10 take a device past 0.9
        m = BSC(10, h_prime=6, gamma=3, n_iter=15, random_state=1, weights=arr,
                pulse_options={"method": method})  # fmt: skip
        c0 = arr.counters()
        for _ in range(15):
            m.partial_fit(Y)
            if method == "unidirectional":  # every flagged pair was refreshed after the write
                assert not arr.needs_refresh(0.9).any()
        c1 = arr.counters()
        runs[method] = (m, {k: c1[k] - c0[k] for k in c1})
        np.testing.assert_array_equal(m.W_, arr.weights())
        assert np.isfinite(m.sigma_)
    bi, uni = runs["bidirectional"], runs["unidirectional"]
    assert bi[0].n_refreshes_ == 0 and uni[0].n_refreshes_ > 0  # pairs climb to the bars
    assert bi[1]["pulses_ltd"] > 0 and uni[1]["pulses_ltd"] == 0  # unidirectional: SET only


def test_unidirectional_step_realizes_the_m_step_within_half_a_step():
    """One EM step from the same start on a noise-free linear device: each weight lands within
    half a nominal step (the dead zone of nearest rounding) of the float M-step target."""
    Y = _data()
    kw = {"h_prime": 6, "gamma": 3, "n_iter": 1, "random_state": 1}
    a = BSC(10, **kw).fit(Y)
    for levels in (64, 2048):
        b = BSC(10, **kw, weights=_array(levels), pulse_options={"method": "unidirectional"})
        b.fit(Y)
        step = 16.0 / levels
        assert np.max(np.abs(a.W_ - b.W_)) <= 0.5 * step + 1e-9
        assert np.max(np.abs(a.W_ - b.W_)) > 0.05 * step  # not the float run itself
        assert b.n_pulses_ > 0


def test_pulse_options_unknown_key_names_choices():
    with pytest.raises(ValueError, match="pulse_options key must be one of .*got 'methd'; did "
                       "you mean 'method'"):  # fmt: skip
        BSC(10, n_iter=1, weights=_array(64), pulse_options={"methd": "unidirectional"}).fit(
            _data(n=50)
        )
