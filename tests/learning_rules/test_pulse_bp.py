"""Pulse backprop invariants (specs/adaptive_bp.md section 3.9)."""

import numpy as np
import pytest

import devices
from learning_rules import FloatWeights, PulseRule, fit_request, pulse_counts, route_counts


def _ideal(**kw):
    return devices.get("ideal", **kw)


def _pair(shape, mapping="reference", seed=0, form="one_sided", **kw):
    rng = np.random.default_rng(seed)
    W0 = rng.uniform(-0.5, 0.5, shape)
    arr = devices.DeviceArray(shape, _ideal(**kw), mapping=mapping, seed=seed)
    arr.program(W0, mode="ideal", form=form)
    return W0, arr


@pytest.mark.parametrize(
    "mapping,method",
    [
        ("reference", "bidirectional"),
        ("differential", "bidirectional"),
        ("differential", "unidirectional"),
    ],
)
def test_ideal_device_follows_sgd(mapping, method):
    """After one step every weight is within half a nominal step of SGD; after 10 steps the
    mean absolute difference is below one step."""
    shape = (8, 12)
    # push-pull needs both devices away from their bounds: the centered form
    form = "centered" if (mapping, method) == ("differential", "bidirectional") else "one_sided"
    W0, arr = _pair(shape, mapping, form=form)
    soft = FloatWeights(W0)
    rule = PulseRule(method=method, refresh_mode="ideal")
    sgd = PulseRule.named("software")
    rng = np.random.default_rng(1)
    step = arr.nominal_step(method)[0]
    for k in range(10):
        x = rng.uniform(0, 1, (1, shape[1]))
        d = rng.normal(0, 0.5, (1, shape[0]))
        rule.update(arr, x, d, 0.05, step=k)
        sgd.update(soft, x, d, 0.05)
        diff = np.abs(arr.weights() - soft.weights())
        if k == 0:
            assert diff.max() <= 0.5 * step + 1e-12
    assert diff.mean() < step


def test_pulse_counts_dead_zone_and_rounding():
    r = np.array([0.0, 0.49, 0.5, 1.49, 1.5, 7.2])
    assert pulse_counts(r).tolist() == [0, 0, 1, 1, 2, 7]
    assert pulse_counts(r, theta=0.25).tolist() == [0, 1, 1, 2, 2, 7]
    assert pulse_counts(r, n_max=1).tolist() == [0, 0, 1, 1, 1, 1]
    # stochastic rounding is unbiased
    rng = np.random.default_rng(0)
    n = pulse_counts(np.full(20000, 0.3), rounding="stochastic", rng=rng)
    assert abs(n.mean() - 0.3) < 4 * np.sqrt(0.21 / 20000)


def test_route_counts_unidirectional_never_negative():
    n = np.array([[3, -2, 0]])
    p, m = route_counts(n, "unidirectional", "differential")
    assert p.tolist() == [[3, 0, 0]] and m.tolist() == [[0, 2, 0]]
    p, m = route_counts(n, "bidirectional", "differential")
    assert p.tolist() == [[3, -2, 0]] and m.tolist() == [[-3, 2, 0]]
    p, m = route_counts(n, "bidirectional", "reference")
    assert m is None
    with pytest.raises(ValueError, match="differential"):
        route_counts(n, "unidirectional", "reference")


def test_unidirectional_applies_no_depression_and_refreshes_are_counted():
    shape = (10, 20)
    W0, arr = _pair(shape, "differential", seed=3, c2c_sigma=0.0)
    arr = devices.DeviceArray(shape, devices.get("epiram", c2c_sigma=0.0), seed=3)
    arr.program(W0, mode="ideal")
    rule = PulseRule.named("unidirectional", refresh_threshold=0.6)
    rng = np.random.default_rng(0)
    total_ref = 0
    for k in range(60):
        st = rule.update(arr, rng.uniform(0, 1, (1, 20)), rng.normal(0, 1, (1, 10)), 0.3, step=k)
        total_ref += st["refreshes"]
        # the refresh invariant: every pair below threshold or its other device near Gmin
        g = (arr.conductances - arr.device.gmin) / arr.device.dG
        hi, lo = g.max(axis=0), g.min(axis=0)
        assert np.all((hi < 0.6) | (lo <= 0.5 / arr.device.levels("ltp") + 1e-12))
    c = arr.counters()
    assert c["pulses_ltd"] == 0
    assert total_ref > 0 and c["refreshes"] == total_ref
    assert c["resets"] == 2 * total_ref


def test_refresh_keeps_weight_within_one_step():
    arr = devices.DeviceArray((20, 30), devices.get("pcmo", c2c_sigma=0.0), seed=0)
    rng = np.random.default_rng(0)
    W = rng.uniform(-1, 1, (20, 30))
    arr.program(W, mode="ideal", form="centered")
    before = arr.weights()
    arr.refresh(np.ones((20, 30), dtype=bool), mode="verify")
    after = arr.weights()
    # largest local step of the LTP curve: the first pulse from Gmin (concave curve)
    dev = arr.device
    local = (dev.conductance(1.0) - dev.gmin) * arr.alpha
    assert np.abs(after - before).max() <= local + 1e-12
    # one-sided: one device of each pair at Gmin
    g = arr.conductances
    assert np.all(np.isclose(g.min(axis=0), dev.gmin))


def test_a1_state_counts_equal_nominal_on_linear_device():
    shape = (6, 9)
    rng = np.random.default_rng(2)
    W0 = rng.uniform(-0.5, 0.5, shape)
    for method, mapping in (
        ("bidirectional", "reference"),
        ("unidirectional", "differential"),
        ("bidirectional", "differential"),
    ):
        x = rng.uniform(0, 1, (1, 9))
        d = rng.normal(0, 1, (1, 6))
        outs = []
        for pc in ("nominal", "state"):
            arr = devices.DeviceArray(
                shape, devices.get("ideal", levels_ltp=64, levels_ltd=64), mapping=mapping, seed=0
            )
            arr.program(
                W0, mode="ideal", form="centered" if method == "bidirectional" else "one_sided"
            )
            rule = PulseRule(method=method, pulse_count=pc, refresh_mode="ideal")
            st = rule.update(arr, x, d, 0.2)
            outs.append((arr.weights(), st["pulses"]))
        assert outs[0][1] == outs[1][1] > 0
        np.testing.assert_allclose(outs[0][0], outs[1][0], atol=1e-12)


def test_a2_fit_keeps_sign_and_leaves_fitting_requests():
    rng = np.random.default_rng(0)
    dW = rng.normal(0, 1, (5, 5))
    out = fit_request(dW, 4, 0.1, 0.1)
    assert np.all(np.sign(out) == np.sign(dW))
    assert np.abs(out).max() <= 0.4 + 1e-12
    small = dW * 1e-3
    assert fit_request(small, 4, 0.1, 0.1) is small


def test_a3_single_step():
    arr = devices.DeviceArray((4, 5), devices.get("ideal"), mapping="reference", seed=0)
    rule = PulseRule(method="bidirectional", n_max=1)
    before = arr.counters()["pulses_ltp"] + arr.counters()["pulses_ltd"]
    rule.update(arr, np.ones((1, 5)), np.full((1, 4), -1.0), 1.0)
    c = arr.pulse_counts()
    assert (c["ltp"] + c["ltd"]).max() == 1
    assert arr.counters()["pulses_ltp"] + arr.counters()["pulses_ltd"] - before == 20


def test_adaptive_named_rule():
    r = PulseRule.named("adaptive")
    assert (r.method, r.pulse_count, r.lr_fit, r.n_max) == ("unidirectional", "state", True, 16)


def test_rule_bad_inputs_name_parameter():
    with pytest.raises(ValueError, match="method"):
        PulseRule(method="bidirectionl")
    with pytest.raises(ValueError, match="did you mean"):
        PulseRule.named("unidirectinal")
    with pytest.raises(ValueError, match="theta"):
        PulseRule(theta=0)
    with pytest.raises(ValueError, match="n_max"):
        PulseRule(n_max=0)
    with pytest.raises(ValueError, match="lr_fit"):
        PulseRule(lr_fit=True)
    with pytest.raises(ValueError, match="lr"):
        PulseRule().update(FloatWeights(np.zeros((2, 2))), np.ones(2), np.ones(2), -1.0)
    with pytest.raises(ValueError, match="software"):
        PulseRule.named("software").update(
            devices.DeviceArray((2, 2), devices.get("ideal")), np.ones(2), np.ones(2), 0.1
        )


def test_stochastic_rule_expected_change_matches_sgd():
    """The pulse-train update on an ideal device moves weights by -lr d x on average."""
    shape = (6, 8)
    rng = np.random.default_rng(0)
    x = rng.uniform(0.2, 1, (1, 8))
    d = rng.normal(0, 0.2, (1, 6))
    lr = 0.05
    changes = []
    for s in range(200):
        arr = devices.DeviceArray(shape, devices.get("ideal"), mapping="reference", seed=s)
        w0 = arr.weights()
        PulseRule.named("stochastic").update(arr, x, d, lr)
        changes.append(arr.weights() - w0)
    mean = np.mean(changes, axis=0)
    se = np.std(changes, axis=0) / np.sqrt(len(changes)) + 1e-12
    expected = -lr * d.T @ x
    assert np.all(np.abs(mean - expected) < 4.5 * se + 1e-9)


def test_float_weights_pulse_and_protocol():
    from learning_rules import WeightArray, as_weight_array

    fw = FloatWeights(np.zeros((2, 3)), step=0.1)
    assert isinstance(fw, WeightArray)
    # a device array completes the protocol through its learning_rules adapter
    assert isinstance(
        as_weight_array(devices.DeviceArray((2, 3), devices.get("ideal"))), WeightArray
    )
    fw.pulse(np.array([[1, 2, 0], [0, 0, -3]]), np.array([[0, 1, 0], [0, 0, 0]]))
    np.testing.assert_allclose(fw.weights(), [[0.1, 0.1, 0], [0, 0, -0.3]])
    fw.add(np.full((2, 3), 5.0))
    assert fw.weights().max() == 1.0
