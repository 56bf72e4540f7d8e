"""DeviceArray.pulse_request: the fused count -> route -> write kernel of pulse backprop."""

import numpy as np
import pytest

import devices
from learning_rules import pulse_counts, route_counts

CASES = [
    ("bidirectional", "reference", "both"),
    ("bidirectional", "differential", "both"),
    ("bidirectional", "differential", "plus"),
    ("unidirectional", "differential", "both"),
]


@pytest.mark.parametrize("method,mapping,side", CASES)
@pytest.mark.parametrize("name", ["ag_a_si", "constant_step", "ideal"])
@pytest.mark.parametrize("rounding", ["nearest", "stochastic"])
def test_numba_equals_reference(method, mapping, side, name, rounding):
    out = {}
    for be in ("numpy", "numba"):
        a = devices.DeviceArray((40, 60), devices.get(name), seed=1, backend=be, mapping=mapping)
        a.program(np.random.default_rng(0).uniform(-0.5, 0.5, (40, 60)), form="centered")
        rng = np.random.default_rng(5)
        sent, flags = [], []
        for k in range(3):
            r = a.pulse_request(
                rng.normal(0, 0.05, (40, 60)),
                method=method,
                side=side,
                rounding=rounding,
                n_max=5 if k == 1 else None,
                refresh_threshold=0.6,
            )
            sent.append(r["pulses"])
            flags.append(None if r["needs_refresh"] is None else r["needs_refresh"].copy())
        out[be] = (a.G.copy(), sent, flags, a.counters())
    np.testing.assert_allclose(out["numba"][0], out["numpy"][0], rtol=0, atol=1e-12 * 1e-3)
    assert out["numba"][1] == out["numpy"][1]
    assert out["numba"][3] == out["numpy"][3]
    for fa, fb in zip(out["numba"][2], out["numpy"][2], strict=True):
        assert (fa is None and fb is None) or np.array_equal(fa, fb)


@pytest.mark.parametrize("method,mapping,side", CASES)
def test_nearest_equals_composed_rule(method, mapping, side):
    """The fused kernel applies the same counts as pulse_counts + route_counts + pulse."""
    dev = devices.get("pcmo", c2c_sigma=0.0)
    W0 = np.random.default_rng(3).uniform(-0.4, 0.4, (12, 16))
    a = devices.DeviceArray((12, 16), dev, seed=0, mapping=mapping)
    b = devices.DeviceArray((12, 16), dev, seed=0, mapping=mapping)
    for arr in (a, b):
        arr.program(W0, form="centered")
    dW = np.random.default_rng(4).normal(0, 0.08, (12, 16))
    res = a.pulse_request(dW, method=method, side=side, theta=0.4, n_max=3)
    up, dn = b.nominal_step(method, side)
    r = np.where(dW >= 0, dW / up, -dW / dn)
    n = pulse_counts(r, theta=0.4, n_max=3)
    n = np.where(dW >= 0, n, -n)
    n_plus, n_minus = route_counts(n, method, mapping, side)
    b.pulse(n_plus, n_minus)
    np.testing.assert_array_equal(a.G, b.G)
    assert res["pulses"] == int(
        np.abs(n_plus).sum() + (0 if n_minus is None else np.abs(n_minus).sum())
    )


def test_stochastic_rounding_is_unbiased():
    a = devices.DeviceArray((100, 100), devices.get("ideal"), mapping="reference", seed=0)
    step = a.nominal_step()[0]
    w0 = a.weights()
    a.pulse_request(np.full((100, 100), 0.3 * step), rounding="stochastic")
    frac = np.mean((a.weights() - w0) / step)
    assert abs(frac - 0.3) < 4 * np.sqrt(0.21 / 10_000)


def test_non_finite_requests_leave_state_untouched():
    a = devices.DeviceArray((3, 4), devices.get("ideal"), mapping="reference", seed=0)
    dW = np.full((3, 4), 0.01)
    dW[1, 2] = np.nan
    dW[0, 0] = np.inf
    G0 = a.G.copy()
    with pytest.raises(ValueError, match="2 NaN or infinite"):
        a.pulse_request(dW)
    assert np.all(np.isfinite(a.G))
    assert a.G.reshape(3, 4)[1, 2] == G0.reshape(3, 4)[1, 2]
    assert a.G.reshape(3, 4)[0, 0] == G0.reshape(3, 4)[0, 0]


def test_weight_cache_stays_current():
    for mapping in ("reference", "differential"):
        a = devices.DeviceArray((20, 30), devices.get("ag_a_si"), mapping=mapping, seed=0)
        rng = np.random.default_rng(0)
        for _ in range(3):
            a.pulse_request(rng.normal(0, 0.1, (20, 30)))
            a.pulse_update(rng.uniform(0, 1, (2, 30)), rng.normal(0, 0.3, (2, 20)), 0.2)
            np.testing.assert_allclose(a.weights(), a._weights_from(a.G), atol=1e-15)
            mask = rng.random((20, 30)) < 0.2
            if mapping == "differential":
                a.refresh(mask | a.needs_refresh(0.5), mode="verify")
                np.testing.assert_allclose(a.weights(), a._weights_from(a.G), atol=1e-15)
            a.program(rng.uniform(-1, 1, (20, 30)), mode="open_loop", mask=mask)
            np.testing.assert_allclose(a.weights(), a._weights_from(a.G), atol=1e-15)
            a.program(rng.uniform(-1, 1, (20, 30)), mode="ideal", mask=~mask)
            np.testing.assert_allclose(a.weights(), a._weights_from(a.G), atol=1e-15)


@pytest.mark.parametrize("name", ["ag_a_si", "soft_bounds", "ideal"])
def test_sparse_write_numba_equals_reference(name):
    out = {}
    for be in ("numpy", "numba"):
        a = devices.DeviceArray((30, 40), devices.get(name), seed=3, backend=be)
        rng = np.random.default_rng(1)
        a.program(rng.uniform(-1, 1, (30, 40)), mode="verify")
        a.refresh(rng.random((30, 40)) < 0.3, mode="open_loop")
        out[be] = (a.G.copy(), a.counters())
    np.testing.assert_allclose(out["numba"][0], out["numpy"][0], rtol=1e-12, atol=0)
    assert out["numba"][1] == out["numpy"][1]


def test_flags_match_needs_refresh_for_written_pairs():
    a = devices.DeviceArray((30, 30), devices.get("epiram", c2c_sigma=0.0), seed=2)
    a.program(np.random.default_rng(0).uniform(-1, 1, (30, 30)))
    dW = np.random.default_rng(1).normal(0, 0.2, (30, 30))
    res = a.pulse_request(dW, method="unidirectional", refresh_threshold=0.7)
    full = a.needs_refresh(0.7)
    written = np.abs(dW) >= 0.5 * a.nominal_step("unidirectional")[0]
    np.testing.assert_array_equal(res["needs_refresh"], full & written)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"dW": np.zeros((2, 2))}, "dW must have shape"),
        ({"dW": np.full((3, 4), np.nan)}, "dW contains 12 NaN or infinite values"),
        ({"method": "sideways"}, "method"),
        ({"rounding": "up"}, "rounding"),
        ({"theta": 0.0}, "theta"),
        ({"n_max": 0}, "n_max"),
        ({"refresh_threshold": 1.5}, "refresh_threshold"),
    ],
)
def test_bad_inputs(kwargs, match):
    a = devices.DeviceArray((3, 4), devices.get("ideal"))
    kw = {"dW": np.zeros((3, 4)), **kwargs}
    with pytest.raises((ValueError, TypeError), match=match):
        a.pulse_request(kw.pop("dW"), **kw)


def test_one_sided_programming_absorbs_gmin_spread():
    """With a device-to-device Gmin spread, one-sided programming still gives the target w."""
    dev = devices.get("ag_a_si", c2c_sigma=0.0, sigma_gmin=0.3)
    a = devices.DeviceArray((20, 20), dev, seed=0)
    W = np.random.default_rng(0).uniform(-0.9, 0.9, (20, 20))
    a.program(W, mode="ideal")
    np.testing.assert_allclose(a.weights(), W, atol=1e-9)


@pytest.mark.parametrize(
    "name,kw",
    [
        ("ag_a_si", {}),
        ("ag_a_si", {"read_sigma": 0.02}),
        ("soft_bounds", {}),
        ("constant_step", {"read_sigma": 0.01}),
        ("lut", {}),
        ("pcmo", {"endurance_n50": 60.0}),
    ],
)
def test_verify_kernel_numba_equals_reference(name, kw):
    """Program-and-verify and refresh: same conductances, counters and call counter."""
    if name == "lut":
        ltp = np.linspace(1e-6, 1e-5, 21) ** 1.0 + np.linspace(0, 1e-7, 21)
        dev = devices.LUTDevice(
            ltp=tuple(np.sort(ltp)),
            ltd=tuple(np.sort(ltp)[::-1][:16]),
            variability=devices.Variability(c2c=devices.CycleToCycle(sigma=0.01)),
        )
    else:
        dev = devices.get(name, **kw)
    out = {}
    for be in ("numpy", "numba"):
        a = devices.DeviceArray((20, 30), dev, seed=3, backend=be)
        rng = np.random.default_rng(1)
        a.program(rng.uniform(-1, 1, (20, 30)), mode="verify")
        a.refresh(rng.random((20, 30)) < 0.3, mode="verify")
        a.refresh(a.needs_refresh(0.5))
        out[be] = (a.G.copy(), a.counters(), a.counter)
    np.testing.assert_allclose(out["numba"][0], out["numpy"][0], rtol=1e-12, atol=0)
    assert out["numba"][1:] == out["numpy"][1:]


def test_verify_reaches_tolerance_on_noise_free_device():
    dev = devices.get("epiram", c2c_sigma=0.0)
    a = devices.DeviceArray((20, 30), dev, seed=0)
    W = np.random.default_rng(0).uniform(-0.95, 0.95, (20, 30))
    a.program(W, mode="verify")
    # within one local LTP step of the target (half a nominal step of tolerance, concave curve)
    first = (dev.conductance(1.0) - dev.gmin) * a.alpha
    assert np.abs(a.weights() - W).max() <= first + 1e-12
