"""Pulse routing is defined once (devices.routing) and used by DeviceArray and the weight
protocol of learning_rules."""

from __future__ import annotations

import numpy as np
import pytest

import devices
import learning_rules
from devices.kernels import ROUTE_PUSH_PULL, ROUTE_SINGLE, ROUTE_UNIDIRECTIONAL
from devices.routing import route, route_code, route_counts


@pytest.mark.parametrize(
    ("method", "mapping", "side", "how", "code"),
    [
        ("bidirectional", "differential", "both", "push_pull", ROUTE_PUSH_PULL),
        ("bidirectional", "differential", "plus", "single", ROUTE_SINGLE),
        ("bidirectional", "reference", "both", "single", ROUTE_SINGLE),
        ("bidirectional", "float", "both", "single", ROUTE_SINGLE),
        ("unidirectional", "differential", "both", "unidirectional", ROUTE_UNIDIRECTIONAL),
        ("unidirectional", "float", "both", "unidirectional", ROUTE_UNIDIRECTIONAL),
    ],
)
def test_route_table(method, mapping, side, how, code):
    assert route(method, mapping, side) == how
    assert route_code(method, mapping, side) == code


def test_unidirectional_needs_a_pair():
    with pytest.raises(ValueError, match="needs mapping='differential'.*reference"):
        route_code("unidirectional", "reference")
    arr = devices.DeviceArray((2, 3), devices.get("ideal"), mapping="reference", seed=0)
    with pytest.raises(ValueError, match="needs mapping='differential'"):
        arr.pulse_update(np.ones((1, 3)), np.ones((1, 2)), 0.1, method="unidirectional")


def test_learning_rules_use_the_devices_definition():
    assert learning_rules.route is route and learning_rules.route_counts is route_counts
    n = np.array([[3, -2, 0]])
    p, m = route_counts(n, "unidirectional", "differential")
    np.testing.assert_array_equal(p, [[3, 0, 0]])
    np.testing.assert_array_equal(m, [[0, 2, 0]])
    p, m = route_counts(n, "bidirectional", "differential")
    np.testing.assert_array_equal(m, -n)
    assert route_counts(n, "bidirectional", "reference")[1] is None


def test_array_routes_as_route_counts():
    """pulse_request's kernel routing equals route_counts + pulse (ideal device, no noise)."""
    dev = devices.get("ideal")
    dW = np.array([[0.3, -0.2, 0.0], [-0.5, 0.1, 0.25]])
    for method, mapping, side in [
        ("bidirectional", "differential", "both"),
        ("bidirectional", "differential", "plus"),
        ("unidirectional", "differential", "both"),
        ("bidirectional", "reference", "both"),
    ]:
        a = devices.DeviceArray((2, 3), dev, mapping=mapping, seed=1, backend="numpy")
        b = devices.DeviceArray((2, 3), dev, mapping=mapping, seed=1, backend="numpy")
        a.pulse_request(dW, method=method, side=side)
        up, dn = b.nominal_step(method, side)
        n = np.where(dW >= 0, np.floor(dW / up + 0.5), -np.floor(-dW / dn + 0.5)).astype(int)
        b.pulse(*route_counts(n, method, mapping, side))
        np.testing.assert_array_equal(a.G, b.G, err_msg=f"{method} {mapping} {side}")
