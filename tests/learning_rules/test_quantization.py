"""Oscillation tracker and confidence-guided annealing (specs/quantizers.md 3.2, 3.3)."""

from __future__ import annotations

import numpy as np
import pytest

from devices import LSQ, StatsQ, Uniform
from learning_rules.quantization import (
    OscillationTracker,
    cga_freeze_mask,
    cga_frozen_mask,
    cga_restore,
)

# -- oscillation tracker ---------------------------------------------------------------------


def test_worked_sequence():
    t = OscillationTracker()
    flips, events = [], []
    for q in [0, 1, 0, 1, 1, 2, 1]:
        t.update(np.array([q]))
        flips.append(t.last_flips)
        events.append(t.last_events)
    assert flips == [0, 1, 1, 1, 0, 1, 1]
    assert events == [0, 0, 1, 1, 0, 0, 1]  # oscillations at moves 2, 3 and 6
    assert t.flips.tolist() == [5] and t.events.tolist() == [3]
    assert t.steps == 6
    assert t.frequency[0] == pytest.approx(0.0293089501, abs=1e-10)


def test_ema_by_hand_and_per_weight_independence():
    # weight 0 oscillates every step after the first move; weight 1 only climbs;
    # weight 2 jumps two levels and back (counts once each way); weight 3 never moves.
    seq = np.array(
        [
            [0, 0, 0, 5],
            [1, 1, 2, 5],
            [0, 2, 0, 5],
            [1, 3, 2, 5],
            [0, 4, 2, 5],
        ]
    )
    t = OscillationTracker(momentum=0.5, tau=0.3)
    for row in seq:
        t.update(row)
    # weight 0: osc at moves 2, 3, 4 -> f = 0.5, 0.75, 0.875
    # weight 2: moves +, -, +, 0 -> osc at 2, 3 -> f = 0.5, 0.75, 0.375
    np.testing.assert_allclose(t.frequency, [0.875, 0.0, 0.375, 0.0])
    assert t.flips.tolist() == [4, 4, 3, 0]
    assert t.events.tolist() == [3, 0, 2, 0]
    assert t.oscillating_fraction() == 0.5
    assert t.oscillating_fraction(0.5) == 0.25
    assert t.oscillating_fraction(0.9) == 0.0


def test_first_move_never_counts_and_pause_keeps_direction():
    t = OscillationTracker()
    for q in [3, 2, 2, 2, 3]:  # down, pause, up: the up reverses the last nonzero move
        t.update([q])
    assert t.events.tolist() == [1]
    t2 = OscillationTracker()
    for q in [3, 2, 1, 0]:
        t2.update([q])
    assert t2.events.tolist() == [0] and t2.flips.tolist() == [3]
    assert t2.oscillating_fraction() == 0.0


def test_tracker_with_quantizer_codes_and_shapes():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 8))
    q = StatsQ(2)
    s = q.scale(w)
    t = OscillationTracker()
    t.update(q.quantize(w, s))
    t.update(q.quantize(w, s))  # no change
    assert t.last_flips == 0 and t.frequency.shape == (4, 8)
    with pytest.raises(ValueError, match="q_int"):
        t.update(np.zeros(3))
    with pytest.raises(ValueError, match="update"):
        OscillationTracker().oscillating_fraction()
    with pytest.raises(ValueError, match="momentum"):
        OscillationTracker(momentum=0.0)
    with pytest.raises(ValueError, match="tau"):
        OscillationTracker(tau=-1.0)
    t.reset()
    assert t.frequency is None and t.steps == 0


# -- CGA ---------------------------------------------------------------------------------------


def test_cga_worked_example():
    w = np.array([[0.3, -0.1, 0.05, -0.55]])
    q = StatsQ(2)
    np.testing.assert_array_equal(
        cga_freeze_mask(w, q, boundary_range=0.25)[0], [False, True, False, True]
    )
    assert cga_freeze_mask(w, q, boundary_range=0.005).all()
    assert cga_frozen_mask([0.7, -0.9, -0.3, -2.5], (-2, 1), 0.25).tolist() == [
        False,
        True,
        False,
        True,
    ]


def test_cga_mask_is_exactly_the_band():
    rng = np.random.default_rng(1)
    u = rng.uniform(-4.6, 3.6, size=5000)
    br = 0.1
    frozen = cga_frozen_mask(u, (-4, 3), br)
    # distance to the nearest interior boundary -3.5 .. 2.5
    bounds = np.arange(-4, 3) + 0.5
    dist = np.abs(u[:, None] - bounds[None, :]).min(axis=1)
    np.testing.assert_array_equal(frozen, dist > br)
    assert 0 < (~frozen).sum() < frozen.sum()


def test_cga_freezes_far_weights_and_keeps_their_codes():
    """After an AdamW-like step with weight decay, frozen latents and their codes are unchanged."""
    rng = np.random.default_rng(2)
    w = rng.normal(scale=0.3, size=(6, 50))
    for q, scale in [(LSQ(2), np.full(6, 0.2)), (StatsQ(3), None), (Uniform(4, 1.0), None)]:
        s = q.scale(w) if scale is None else q._prepare(w, scale)[1]
        br = 0.05
        frozen = cga_freeze_mask(w, q, s, boundary_range=br)
        u = q.pre_round(w, s)
        lo, hi = q.code_range
        fl = np.floor(u)
        inband = (np.abs(u - fl - 0.5) <= br) & (fl >= lo) & (fl <= hi - 1)
        np.testing.assert_array_equal(frozen, ~inband)
        assert frozen.any() and (~frozen).any()
        codes_before = q.quantize(w, s)
        # a step that would move every weight: gradient, momentum-like push and weight decay
        grad = rng.normal(size=w.shape)
        grad[frozen] = 0.0
        w_after = w - 0.05 * np.sign(grad + 1e-3) - 0.01 * w
        w_new = cga_restore(w_after, w, frozen)
        np.testing.assert_array_equal(w_new[frozen], w[frozen])  # bitwise
        assert np.all(w_new[~frozen] != w[~frozen])
        np.testing.assert_array_equal(q.quantize(w_new, s)[frozen], codes_before[frozen])
        # without the restore the step does change frozen codes (the test can fail)
        assert np.any(q.quantize(w_after, s)[frozen] != codes_before[frozen])


def test_cga_bad_arguments():
    with pytest.raises(ValueError, match="boundary_range"):
        cga_frozen_mask([0.1], (-2, 1), 0.5)
    with pytest.raises(ValueError, match="code_range"):
        cga_frozen_mask([0.1], (1, 1))
    with pytest.raises(ValueError, match="code_range"):
        cga_frozen_mask([0.1], "ab")
    with pytest.raises(ValueError, match="one shape"):
        cga_restore(np.zeros(2), np.zeros(3), np.zeros(2, bool))
