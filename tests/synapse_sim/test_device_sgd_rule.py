"""``DeviceSGD``'s default rule is the one the model was converted for: ``convert(model,
rule="stochastic")`` followed by ``DeviceSGD(model, lr=...)`` trains with the stochastic rule
(it used to train with the bidirectional default, silently: the rule had to be named twice)."""

from __future__ import annotations

import copy
import io

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from learning_rules import PulseRule  # noqa: E402
from synapse_sim.nn import DeviceLinear, DeviceSGD, convert  # noqa: E402


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 3))


def _batch():
    g = torch.Generator().manual_seed(1)
    return torch.rand(6, 12, generator=g), torch.randint(0, 3, (6,), generator=g)


def _train(hw, opt, steps=3):
    x, y = _batch()
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(hw(x), y).backward()
        opt.step()
    return [layer.array.weights().copy() for layer in opt.device_layers]


@pytest.mark.parametrize("rule", ["stochastic", "unidirectional", "bidirectional"])
def test_default_rule_is_the_converted_rule_and_trains_as_if_named(rule):
    hw = convert(_model(), device="constant_step", rule=rule)
    assert {layer.converted_rule for layer in hw.modules() if hasattr(layer, "array")} == {rule}
    twin = copy.deepcopy(hw)
    opt = DeviceSGD(hw, lr=0.5)
    assert opt.rule == PulseRule.named(rule)
    got = _train(hw, opt)
    want = _train(twin, DeviceSGD(twin, lr=0.5, rule=rule))
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)
    assert opt.totals["pulses"] > 0


def test_stochastic_conversion_no_longer_trains_with_pulse_requests(monkeypatch):
    """The behaviour the default changes: the stochastic rule writes through the pulse-train
    update, never through the requested-change path of the bidirectional rule."""
    import devices

    calls = {"pulse_update": 0, "pulse_request": 0}
    for name in calls:
        orig = getattr(devices.DeviceArray, name)

        def spy(self, *a, _name=name, _orig=orig, **k):
            calls[_name] += 1
            return _orig(self, *a, **k)

        monkeypatch.setattr(devices.DeviceArray, name, spy)
    hw = convert(_model(), device="constant_step", rule="stochastic")
    _train(hw, DeviceSGD(hw, lr=0.5), steps=2)
    assert calls == {"pulse_update": 4, "pulse_request": 0}


def test_rule_options_apply_to_the_converted_rule():
    hw = convert(_model(), device="constant_step", rule="stochastic")
    opt = DeviceSGD(hw, lr=0.1, bl=7)
    assert opt.rule == PulseRule.named("stochastic", bl=7)


def test_a_pulse_rule_given_to_convert_is_the_default():
    rule = PulseRule.named("unidirectional", n_max=4, rounding="stochastic")
    hw = convert(_model(), device="constant_step", rule=rule)
    assert DeviceSGD(hw, lr=0.1).rule == rule


def test_an_explicit_rule_wins_over_the_converted_one():
    hw = convert(_model(), device="constant_step", rule="stochastic")
    assert DeviceSGD(hw, lr=0.1, rule="bidirectional").rule.method == "bidirectional"


def test_layers_built_directly_default_to_bidirectional():
    layer = DeviceLinear(4, 2, device="constant_step")
    assert layer.converted_rule is None
    assert DeviceSGD(layer, lr=0.1).rule == PulseRule.named("bidirectional")


def test_a_name_and_its_named_rule_count_as_one_rule():
    model = _model()
    hw = convert(model, device="constant_step", rule="stochastic", layers=["0"])
    hw = convert(hw, device="constant_step", rule=PulseRule.named("stochastic"), layers=["2"])
    assert DeviceSGD(hw, lr=0.1).rule.method == "stochastic"


def test_layers_converted_for_different_rules_need_an_explicit_rule():
    hw = convert(_model(), device="constant_step", rule="stochastic", layers=["0"])
    hw = convert(hw, device="constant_step", rule="unidirectional", layers=["2"])
    with pytest.raises(ValueError, match=r"different rules \('stochastic', 'unidirectional'\)"):
        DeviceSGD(hw, lr=0.1)
    # named, the layers are checked against it: unidirectional needs differential pairs
    with pytest.raises(ValueError, match="mapping='differential'"):
        DeviceSGD(hw, lr=0.1, rule="unidirectional")
    assert DeviceSGD(hw, lr=0.1, rule="stochastic").rule.method == "stochastic"


def test_the_default_rule_checks_the_layers_mapping():
    """rule=None resolves the rule after the groups are added, then checks every layer as a
    named rule does."""
    hw = convert(_model(), device="constant_step", rule="unidirectional")
    hw[0].converted_rule = "unidirectional"
    hw[2] = DeviceLinear(8, 3, device="constant_step", mapping="reference")
    with pytest.raises(ValueError, match="DeviceLinear has mapping='reference'"):
        DeviceSGD(hw, lr=0.1)


def test_the_converted_rule_survives_pickling_and_the_state_dict_resumes():
    hw = convert(_model(), device="constant_step", rule="stochastic")
    buf = io.BytesIO()
    torch.save(hw, buf)
    buf.seek(0)
    back = torch.load(buf, weights_only=False)
    assert back[0].converted_rule == "stochastic"
    opt = DeviceSGD(hw, lr=0.2)
    _train(hw, opt, steps=1)
    again = DeviceSGD(back, lr=0.2)
    again.load_state_dict(opt.state_dict())  # the same rule: accepted
    with pytest.raises(ValueError, match="saved with rule"):
        DeviceSGD(back, lr=0.2, rule="bidirectional").load_state_dict(opt.state_dict())


def test_the_layers_repr_names_the_converted_rule():
    hw = convert(_model(), device="constant_step", rule="stochastic")
    assert "rule='stochastic'" in repr(hw[0])
    hw = convert(_model(), device="constant_step", rule=PulseRule.named("adaptive"))
    assert "rule=PulseRule(method='unidirectional', ...)" in repr(hw[2])
    assert "rule=" not in repr(DeviceLinear(4, 2))
