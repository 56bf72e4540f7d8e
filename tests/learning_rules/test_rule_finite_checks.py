"""``PulseRule.update`` checks ``x`` and ``delta`` for NaN and infinite values once.

A device array's ``pulse_update`` refuses non-finite inputs itself before any change
(``pulse_update_checks_finite``; in the numba path inside the compiled setup of the update), so
the stochastic rule does not make a second pass over them: its own checks run only when the
array refuses, to give the rule's message. Weight arrays that do not declare the attribute are
checked by the rule first, as before.
"""

import numpy as np
import pytest

import devices
import learning_rules.pulse_bp as pbp
from learning_rules import PulseRule


@pytest.fixture
def count_checks(monkeypatch):
    calls = []
    real = pbp._check_finite

    def spy(name, a):
        calls.append(name)
        return real(name, a)

    monkeypatch.setattr(pbp, "_check_finite", spy)
    return calls


def _arr(backend="numba"):
    return devices.DeviceArray((3, 4), devices.get("constant_step"), seed=0, backend=backend)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_device_array_inputs_are_not_checked_twice(count_checks, backend):
    arr = _arr(backend)
    assert arr.pulse_update_checks_finite is True
    rng = np.random.default_rng(0)
    st = PulseRule.named("stochastic").update(arr, rng.random((2, 4)), rng.random((2, 3)), 0.5)
    assert st["pulses"] > 0
    assert count_checks == []  # the array's own check was the only pass


class _Undeclared:
    """A device array behind a wrapper that does not declare its own finite checks."""

    def __init__(self, arr):
        self._arr = arr
        self.updates = 0

    def __getattr__(self, name):
        if name == "pulse_update_checks_finite":
            raise AttributeError(name)
        return getattr(self._arr, name)

    def pulse_update(self, *a, **k):
        self.updates += 1
        return self._arr.pulse_update(*a, **k)


def test_arrays_without_the_declaration_are_checked_by_the_rule(count_checks):
    w = _Undeclared(_arr())
    x = np.ones((2, 4))
    PulseRule.named("stochastic").update(w, x, np.ones((2, 3)), 0.1)
    assert count_checks == ["x", "delta"] and w.updates == 1
    x[0, 1] = np.inf
    with pytest.raises(ValueError, match=r"x contains 1 NaN or infinite value.*unchanged"):
        PulseRule.named("stochastic").update(w, x, np.ones((2, 3)), 0.1)
    assert w.updates == 1  # refused by the rule, before the array was asked


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("where", ["x", "delta"])
def test_a_refusal_by_the_array_gives_the_rule_message_and_changes_nothing(backend, where):
    arr = _arr(backend)
    before = arr.state_dict()
    counter = arr.counter
    x, d = np.ones((2, 4)), np.ones((2, 3))
    (x if where == "x" else d)[1, 0] = np.nan
    (x if where == "x" else d)[0, 2] = -np.inf
    with pytest.raises(ValueError, match=rf"^{where} contains 2 NaN or infinite values.*unchanged"):
        PulseRule.named("stochastic").update(arr, x, d, 0.1)
    after = arr.state_dict()
    assert arr.counter == counter
    for k, v in before.items():
        np.testing.assert_array_equal(after[k], v, err_msg=k)


def test_other_refusals_by_the_array_pass_through():
    arr = _arr()
    with pytest.raises(ValueError, match=r"x must have shape \(4,\) or \(batch, 4\)"):
        PulseRule.named("stochastic").update(arr, np.ones((2, 5)), np.ones((2, 3)), 0.1)
    with pytest.raises(ValueError, match="same batch size"):
        PulseRule.named("stochastic").update(arr, np.ones((2, 4)), np.ones((3, 3)), 0.1)


def test_pulse_backprop_rules_still_check_first(count_checks):
    arr = _arr()
    PulseRule.named("bidirectional").update(arr, np.ones((2, 4)), np.ones((2, 3)), 0.01)
    assert count_checks == ["x", "delta"]
