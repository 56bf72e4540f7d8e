"""The weight protocol (learning_rules.weights): FloatWeights and the DeviceArray adapter are
interchangeable under a rule, pulse semantics are coded once, rules own their default mapping."""

import numpy as np
import pytest

import devices
from learning_rules import (
    DEFAULT_MAPPING,
    RULES,
    DeviceWeights,
    FloatWeights,
    PulseRule,
    WeightArray,
    as_weight_array,
    default_mapping,
    program_form,
    pulse_counts,
    resolve_mapping,
    route,
    route_counts,
)
from learning_rules.continual import CLASSP, DeviceCLASSP


def _array(mapping="differential", seed=1, form="one_sided", **kw):
    arr = devices.DeviceArray((4, 5), devices.get("ideal", **kw), mapping=mapping, seed=seed)
    arr.program(np.random.default_rng(seed).uniform(-0.4, 0.4, (4, 5)), mode="ideal", form=form)
    return arr


def test_as_weight_array_keeps_complete_objects_and_adapts_device_arrays():
    fw = FloatWeights(np.zeros((2, 3)))
    assert as_weight_array(fw) is fw
    arr = _array()
    assert not isinstance(arr, WeightArray)  # lacks state_counts and add natively
    w = as_weight_array(arr)
    assert isinstance(w, DeviceWeights) and isinstance(w, WeightArray)
    assert w.array is arr and as_weight_array(w) is w
    # the adapter is a view: reads, counters and mapping are the array's own
    assert w.shape == arr.shape and w.mapping == arr.mapping
    np.testing.assert_array_equal(w.weights(), arr.weights())
    assert w.counters() == arr.counters()
    with pytest.raises(TypeError, match="lacks"):
        as_weight_array(np.zeros((2, 3)))


def test_refusals_name_the_rule():
    with pytest.raises(ValueError, match="software"):
        as_weight_array(_array()).add(np.zeros((4, 5)))
    with pytest.raises(ValueError, match="stochastic"):
        FloatWeights(np.zeros((2, 2))).pulse_update(np.ones(2), np.ones(2), 0.1)


@pytest.mark.parametrize("method", ["bidirectional", "unidirectional"])
@pytest.mark.parametrize("rounding", ["nearest", "stochastic"])
def test_float_pulse_request_is_counts_route_and_pulse(method, rounding):
    """FloatWeights.pulse_request == pulse_counts + route_counts + pulse on the same draws."""
    rng = np.random.default_rng(3)
    W0 = rng.uniform(-0.5, 0.5, (6, 7))
    dW = rng.normal(scale=0.03, size=(6, 7))
    a, b = FloatWeights(W0, step=0.01), FloatWeights(W0, step=0.01)
    res = a.pulse_request(
        dW, method=method, theta=0.3, n_max=2, rounding=rounding, rng=np.random.default_rng(9)
    )
    n = pulse_counts(
        np.abs(dW) / 0.01, theta=0.3, rounding=rounding, n_max=2, rng=np.random.default_rng(9)
    )
    n = np.where(dW >= 0, n, -n)
    n_plus, n_minus = route_counts(n, method, "float")
    b.pulse(n_plus, n_minus)
    np.testing.assert_array_equal(a.weights(), b.weights())
    assert res["pulses"] == np.abs(n).sum() > 0 and res["needs_refresh"] is None


def test_float_state_counts_are_the_nominal_counts():
    fw = FloatWeights(np.zeros((3, 3)), step=0.1)
    dW = np.array([[0.26, -0.14, 0.04], [0.0, -0.3, 0.151], [1.0, -1.0, 0.049]])
    n_plus, n_minus = fw.state_counts(dW, method="unidirectional")
    assert n_plus.tolist() == [[3, 0, 0], [0, 0, 2], [10, 0, 0]]
    assert n_minus.tolist() == [[0, 1, 0], [0, 3, 0], [0, 10, 0]]
    assert fw.weights().max() == 0  # counted, not applied


def test_device_state_counts_match_nominal_on_a_linear_device():
    """A1 on an ideal (linear) device away from its bounds counts the nominal pulses."""
    arr = as_weight_array(_array(form="centered", read_sigma=0.0))
    up, dn = arr.nominal_step("bidirectional")
    dW = np.random.default_rng(4).uniform(-4.3, 4.3, arr.shape) * up
    n_plus, n_minus = arr.state_counts(dW, method="bidirectional")
    n = pulse_counts(np.abs(dW) / up)
    np.testing.assert_array_equal(np.abs(n_plus), n)
    np.testing.assert_array_equal(n_minus, -n_plus)


def test_route_is_coded_once():
    assert route("unidirectional", "differential") == "unidirectional"
    assert route("unidirectional", "float") == "unidirectional"
    assert route("bidirectional", "differential") == "push_pull"
    assert route("bidirectional", "differential", "plus") == "single"
    assert route("bidirectional", "reference") == "single"
    assert route("bidirectional", "float") == "single"
    with pytest.raises(ValueError, match="differential"):
        route("unidirectional", "reference")


def test_rules_own_their_default_mapping():
    assert DEFAULT_MAPPING == {
        "software": "float",
        "bidirectional": "reference",
        "stochastic": "reference",
        "unidirectional": "differential",
    }
    got = {r: default_mapping(r) for r in RULES}
    assert got["adaptive"] == "differential" and got["software"] == "float"
    assert default_mapping(PulseRule.named("adaptive")) == "differential"
    assert PulseRule(method="stochastic").default_mapping == "reference"
    assert resolve_mapping("bidirectional") == "reference"
    assert resolve_mapping("bidirectional", "differential") == "differential"
    with pytest.raises(ValueError, match="needs mapping='differential'"):
        resolve_mapping("adaptive", "reference")
    with pytest.raises(ValueError, match="did you mean 'reference'"):
        resolve_mapping("bidirectional", "referense")
    with pytest.raises(ValueError, match="did you mean"):
        default_mapping("unidirectinal")
    assert program_form("bidirectional", "differential") == "centered"
    assert program_form("stochastic", "reference") == "one_sided"
    assert program_form("unidirectional", "differential") == "one_sided"


class _Recorder(FloatWeights):
    """A third implementation of the protocol: records the calls a rule makes."""

    mapping = "float"

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.calls = []

    def pulse_request(self, dW, **options):
        self.calls.append(("pulse_request", options["method"], options["rounding"]))
        return super().pulse_request(dW, **options)

    def state_counts(self, dW, **options):
        self.calls.append(("state_counts", options["method"], options["state_cap"]))
        return super().state_counts(dW, **options)


def test_rules_drive_any_protocol_implementation():
    rng = np.random.default_rng(0)
    x, d = rng.normal(size=(2, 3)), rng.normal(size=(2, 4))
    w = _Recorder(np.zeros((4, 3)), step=0.01)
    PulseRule.named("bidirectional", rounding="stochastic").update(w, x, d, 0.1, rng=rng)
    PulseRule.named("adaptive", state_cap=2.0).update(w, x, d, 0.1, rng=rng)
    DeviceCLASSP(rule=CLASSP(lr=0.05)).update(w, rng.normal(size=(4, 3)), {"acc": np.zeros((4, 3))})
    assert w.calls == [
        ("pulse_request", "bidirectional", "stochastic"),
        ("state_counts", "unidirectional", 2.0),
        ("pulse_request", "bidirectional", "nearest"),
    ]


def test_float_saturation_counts_weights_at_the_clip():
    fw = FloatWeights(np.array([[1.0, -1.0, 0.2, 1.0]]), w_max=1.0)
    assert fw.saturation() == {"high": 0.5, "low": 0.25}
    assert FloatWeights(np.ones((2, 2)), w_max=None).saturation() == {"high": 0.0, "low": 0.0}
    assert fw.n_devices == 0


def test_float_weights_bad_arguments():
    with pytest.raises(ValueError, match="w_max"):
        FloatWeights(np.zeros((2, 2)), w_max=0)
    with pytest.raises(ValueError, match="step"):
        FloatWeights(np.zeros((2, 2)), step=-1.0)
    with pytest.raises(TypeError, match="step"):
        FloatWeights(np.zeros((2, 2)), step="big")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_float_weights_refuse_non_finite_updates_and_stay_unchanged(bad):
    from learning_rules import FloatWeights

    w = FloatWeights(np.linspace(-0.5, 0.5, 12).reshape(3, 4))
    before = w.weights().copy()
    dW = np.zeros((3, 4))
    dW[1, 2] = bad
    with pytest.raises(ValueError, match="1 NaN or infinite"):
        w.add(dW)
    np.testing.assert_array_equal(w.weights(), before)
    with pytest.raises(ValueError, match="NaN or infinite"):
        w.pulse(np.full((3, 4), np.nan))
    np.testing.assert_array_equal(w.weights(), before)
    w.add(np.full((3, 4), 0.1))  # a finite update still applies
    np.testing.assert_allclose(w.weights(), np.clip(before + 0.1, -1, 1))
