"""Device models: response curves, inverse, levels, closed forms (specs/devices.md s.1, s.6;
acceptance D3, D5, D13)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from conftest import JSON_PRESETS, PUBLISHED, STEP_PRESETS
from hypothesis import given, settings
from hypothesis import strategies as st

import devices
from devices.nl import nl_from_a, normalized_response

BACKENDS = ("numpy", "numba")


def ref_array(device, n, backend="numpy", seed=0):
    """Noise-free reference-mapping array of ``n`` devices (shape (1, n))."""
    return devices.DeviceArray(
        (1, n), device, mapping="reference", seed=seed, backend=backend, w_max=1.0
    )


def set_G(arr, G):
    arr.G[:] = G
    arr.Gw[:] = G


def step_u(dev, G):
    """Device value u of a step model from its conductance (nominal linear map)."""
    return dev.b_min + (G - dev.gmin) / dev.dG * (dev.b_max - dev.b_min)


def step_G(dev, u):
    return dev.gmin + (u - dev.b_min) / (dev.b_max - dev.b_min) * dev.dG


def step_iterate(dev, u0, n):
    """Per-pulse rule of the spec's section-6 table (noise-free), ``n`` signed pulses."""
    s = 1.0 if n > 0 else -1.0
    dw = dev.dw_min * (1.0 + s * dev.up_down)
    g_up, g_dn = {
        "constant_step": (0.0, 0.0),
        "soft_bounds": (1.0, 1.0),
        "linear_step": (dev.gamma_up, dev.gamma_down),
    }[dev.model]
    gam = -abs(g_up) / dev.b_max if s > 0 else -abs(g_dn) / dev.b_min
    u = u0
    for _ in range(abs(n)):
        u = min(max(u + s * dw * (1.0 + gam * u), dev.b_min), dev.b_max)
    return u


# ------------------------------------------------------------------------------------ D3
@settings(max_examples=150, deadline=None)
@given(
    a=st.floats(min_value=0.05, max_value=1e4) | st.floats(min_value=-1e4, max_value=-0.05),
    P=st.integers(min_value=2, max_value=2048),
    gmin=st.floats(min_value=0.0, max_value=1e-5),
    ratio=st.floats(min_value=1e-3, max_value=1e3),
)
def test_exp_curve_endpoints_inverse_and_monotone(a, P, gmin, ratio):
    gmax = gmin + max(gmin, 1e-7) * ratio
    nl = nl_from_a(a)
    dev = devices.ExpDevice(gmin=gmin, gmax=gmax, levels_ltp=P, levels_ltd=P, nl_ltp=nl, nl_ltd=nl)
    assert dev.a_ltp == pytest.approx(a, rel=1e-6)
    for branch in ("ltp", "ltd"):
        ends = dev.conductance([0.0, float(P)], branch)
        assert ends[0] == pytest.approx(gmin, rel=1e-12, abs=1e-12 * dev.dG)
        assert ends[1] == pytest.approx(gmax, rel=1e-12)
        x = np.concatenate([np.linspace(0, P, 257), np.arange(P + 1.0)])
        G = dev.conductance(x, branch)
        g = (G - gmin) / dev.dG
        ok = (g > 1e-6) & (g < 1 - 1e-6)
        np.testing.assert_allclose(dev.pulses(G[ok], branch), x[ok], rtol=1e-6)
        Gi = dev.conductance(np.arange(P + 1.0), branch)
        assert np.all(np.diff(Gi) > 0)
        assert np.unique(Gi).size == dev.n_states(branch) == P + 1


@pytest.mark.parametrize("a", [1e6, -1e6])
@pytest.mark.parametrize("P", [2, 97, 2048])
def test_huge_a_is_within_2e7_of_the_straight_line(a, P):
    dev = devices.ExpDevice(
        gmin=1e-7, gmax=5e-6, levels_ltp=P, levels_ltd=P, nl_ltp=nl_from_a(a), nl_ltd=nl_from_a(a)
    )
    x = np.linspace(0, P, 1001)
    lin = dev.gmin + dev.dG * x / P
    for branch in ("ltp", "ltd"):
        assert np.max(np.abs(dev.conductance(x, branch) - lin)) <= 2e-7 * dev.dG


def test_linear_limit_is_exactly_the_straight_line():
    lin = devices.LinearDevice(gmin=1e-7, gmax=5e-6, levels_ltp=50, levels_ltd=40)
    exp0 = devices.ExpDevice(gmin=1e-7, gmax=5e-6, levels_ltp=50, levels_ltd=40)
    assert math.isinf(lin.a_ltp) and math.isinf(lin.a_ltd)
    for branch, P in (("ltp", 50), ("ltd", 40)):
        x = np.linspace(0, P, 333)
        want = 1e-7 + (5e-6 - 1e-7) * x / P
        np.testing.assert_allclose(lin.conductance(x, branch), want, rtol=1e-12)
        np.testing.assert_array_equal(exp0.conductance(x, branch), lin.conductance(x, branch))
        np.testing.assert_allclose(lin.pulses(want, branch), x, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("nl", "a4"), [(2.40, 0.4992), (-4.88, -0.2003)])
def test_model_nl_labels(nl, a4):
    dev = devices.ExpDevice(gmin=1e-9, gmax=1e-8, nl_ltp=nl, nl_ltd=nl)
    assert round(dev.a_ltp, 4) == a4
    assert round(dev.a_ltd, 4) == a4


def test_conductance_matches_spec_formula():
    """f(x) = Gmin + B (1 - exp(-x/A)), B = dG / (1 - exp(-P/A)), A = a P (spec s.1)."""
    dev = devices.get("ag_a_si")
    for branch, P, a in (("ltp", 97, dev.a_ltp), ("ltd", 100, dev.a_ltd)):
        A = a * P
        B = dev.dG / (1 - math.exp(-P / A))
        x = np.linspace(0, P, 50)
        want = dev.gmin + B * (1 - np.exp(-x / A))
        np.testing.assert_allclose(dev.conductance(x, branch), want, rtol=1e-12)
        np.testing.assert_allclose(
            dev.pulses(want[1:-1], branch), -A * np.log(1 - (want[1:-1] - dev.gmin) / B), rtol=1e-9
        )


def test_conductance_clips_pulse_coordinate():
    dev = devices.get("epiram")
    assert dev.conductance(-5.0) == pytest.approx(dev.gmin, rel=1e-15)
    assert dev.conductance(10_000.0) == pytest.approx(dev.gmax, rel=1e-15)


# --------------------------------------------------------------------------------- shapes
def test_ltd_sign_convention():
    """Negative LTD label: first depression steps from Gmax are the largest; positive LTD label
    (GST PCM): depression steps grow toward Gmin (spec s.1)."""
    ag = devices.get("ag_a_si")
    steps = -np.diff(ag.depressed(np.arange(ag.levels_ltd + 1.0)))
    assert np.all(steps > 0) and np.all(np.diff(steps) < 0)
    gst = devices.get("gst_pcm")
    steps = -np.diff(gst.depressed(np.arange(gst.levels_ltd + 1.0)))
    assert np.all(steps > 0) and np.all(np.diff(steps) > 0)
    # positive LTP label: concave, the biggest steps near Gmin
    up = np.diff(ag.conductance(np.arange(ag.levels_ltp + 1.0)))
    assert np.all(np.diff(up) < 0)


@pytest.mark.parametrize("name", [*JSON_PRESETS, "constant_step"])
def test_preset_curves_monotone_and_anchored(name):
    dev = devices.get(name)
    P, Q = dev.levels("ltp"), dev.levels("ltd")
    up = dev.conductance(np.arange(P + 1.0), "ltp")
    dn = dev.depressed(np.arange(Q + 1.0))
    assert np.all(np.diff(up) > 0) and np.all(np.diff(dn) < 0)
    assert up[0] == pytest.approx(dev.gmin, rel=1e-12) and up[-1] == pytest.approx(dev.gmax)
    assert dn[0] == pytest.approx(dev.gmax, rel=1e-12) and dn[-1] == pytest.approx(dev.gmin)
    assert dev.n_states("ltp") == P + 1 and dev.n_states("ltd") == Q + 1


@pytest.mark.parametrize("name", STEP_PRESETS)
def test_step_preset_ltp_curve_follows_the_per_pulse_rule(name):
    dev = devices.get(name)
    p = np.array([0, 1, 7, 100, 600, 1200])
    want = [step_G(dev, step_iterate(dev, dev.b_min, int(k))) if k else dev.gmin for k in p]
    np.testing.assert_allclose(dev.conductance(p.astype(float), "ltp"), want, rtol=1e-9)
    np.testing.assert_allclose(dev.pulses(np.array(want[1:-1]), "ltp"), p[1:-1], rtol=1e-9)


@pytest.mark.parametrize(
    "dev",
    [
        devices.StepDevice(model="constant_step", up_down=0.2),
        devices.StepDevice(model="soft_bounds", up_down=0.2),
        devices.StepDevice(model="linear_step", gamma_up=0.5, gamma_down=0.5),
        # non-integer branch length (b_max - b_min) / dw_down
        devices.StepDevice(model="constant_step", up_down=0.3),
        devices.StepDevice(model="soft_bounds", up_down=0.3),
        devices.StepDevice(model="linear_step", gamma_up=0.5, gamma_down=0.5, up_down=0.3),
    ],
    ids=lambda d: f"{d.model}-{d.up_down}",
)
def test_step_depressed_equals_depression_pulses_from_gmax(dev):
    """``depressed(p)`` is documented as the conductance after p depression pulses from Gmax."""
    assert dev.depressed(0.0) == pytest.approx(dev.gmax, rel=1e-12)
    p = np.array([1, 10, 100, 500])
    want = np.array([step_G(dev, step_iterate(dev, dev.b_max, -int(k))) for k in p])
    np.testing.assert_allclose(dev.depressed(p.astype(float)), want, rtol=1e-9)
    np.testing.assert_allclose(dev.pulses(want, "ltd"), dev.branch_length("ltd") - p, rtol=1e-9)


# --------------------------------------------------------------------------------- levels
def test_levels_of_each_family(lut_device):
    dev = devices.ExpDevice(gmin=1e-9, gmax=1e-8, levels_ltp=97, levels_ltd=100, nl_ltp=2.4)
    assert (dev.levels("ltp"), dev.levels("ltd")) == (97, 100)
    assert (dev.levels_ltp, dev.levels_ltd) == (97, 100)
    assert (dev.n_states("ltp"), dev.n_states("ltd")) == (98, 101)
    step = devices.StepDevice(model="constant_step", dw_min=0.001, up_down=0.2)
    assert step.levels("ltp") == round(1.2 / 0.0012)
    assert step.levels("ltd") == round(1.2 / 0.0008)
    assert devices.get("constant_step").levels("ltp") == 1200
    assert (lut_device.levels("ltp"), lut_device.levels("ltd")) == (20, 15)
    assert lut_device.n_states("ltd") == 16


# --------------------------------------------------------------------------------- LUT
def test_lut_device_response(lut_device):
    d = lut_device
    ltp, ltd = np.array(d.ltp), np.array(d.ltd)
    assert d.gmin == ltp[0] and d.gmax == ltp[-1]
    np.testing.assert_allclose(d.conductance(np.arange(21.0)), ltp, rtol=1e-12)
    np.testing.assert_allclose(d.depressed(np.arange(16.0)), ltd, rtol=1e-12)
    # linear interpolation between integer pulse counts
    np.testing.assert_allclose(d.conductance(3.25), ltp[3] + 0.25 * (ltp[4] - ltp[3]), rtol=1e-12)
    x = np.linspace(0, 20, 81)
    np.testing.assert_allclose(d.pulses(d.conductance(x)), x, atol=1e-9)
    y = np.linspace(0, 15, 61)
    np.testing.assert_allclose(d.pulses(d.conductance(y, "ltd"), "ltd"), y, atol=1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
def test_lut_writes_walk_the_tables(lut_device, backend):
    d = lut_device
    arr = ref_array(d, 21, backend)
    set_G(arr, d.gmin)
    arr.pulse(np.arange(21)[None, :])
    np.testing.assert_allclose(arr.G, d.ltp, rtol=1e-12)
    set_G(arr, d.gmax)
    arr.pulse(-np.minimum(np.arange(21), 15)[None, :])
    np.testing.assert_allclose(arr.G, np.array(d.ltd)[np.minimum(np.arange(21), 15)], rtol=1e-12)


# ------------------------------------------------------------------------------------ D5
def d5_devices(lut):
    out = {name: devices.get(name, c2c_sigma=0) for name in (*JSON_PRESETS, *STEP_PRESETS)}
    out["ag_a_si_d2d"] = devices.get(
        "ag_a_si", c2c_sigma=0, sigma_nl=1.0, sigma_levels=0.1, sigma_gmax=0.05
    )
    out["soft_bounds_asym"] = devices.StepDevice(model="soft_bounds", up_down=0.3, dw_min=0.01)
    out["linear_step_gamma"] = devices.StepDevice(
        model="linear_step", gamma_up=0.4, gamma_down=1.7, up_down=-0.2, dw_min=0.01
    )
    out["lut"] = lut
    return out


D5_NAMES = (
    *JSON_PRESETS,
    *STEP_PRESETS,
    "ag_a_si_d2d",
    "soft_bounds_asym",
    "linear_step_gamma",
    "lut",
)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", D5_NAMES)
def test_n_single_writes_equal_one_write_of_n(name, backend, lut_device, one_numba_thread):
    """D5: a write of n pulses equals n writes of one pulse (noise-free), both directions,
    including clipping at x = 0 and x = P (|n| up to 1.5 P)."""
    dev = d5_devices(lut_device)[name]
    assert dev.variability.c2c_sigma == 0
    n_dev = 48
    rng = np.random.default_rng(7)
    a1 = ref_array(dev, n_dev, backend, seed=3)
    a2 = ref_array(dev, n_dev, backend, seed=3)
    np.testing.assert_array_equal(a1.prm, a2.prm)
    g0 = a1.gmin_i + rng.uniform(0, 1, n_dev) * (a1.gmax_i - a1.gmin_i)
    g0[:4] = a1.gmin_i[:4]
    g0[4:8] = a1.gmax_i[4:8]
    set_G(a1, g0)
    set_G(a2, g0)
    P = max(dev.levels("ltp"), dev.levels("ltd"))
    cap = min(int(1.5 * P), 400)
    n = rng.integers(-cap, cap + 1, n_dev)
    n[:2], n[2:4] = -3, cap
    n[4:6], n[6:8] = 3, -cap
    a1.pulse(n[None, :])
    for t in range(int(np.abs(n).max())):
        a2.pulse(np.where(np.abs(n) > t, np.sign(n), 0)[None, :])
    np.testing.assert_allclose(a1.G, a2.G, rtol=1e-9, atol=1e-12 * dev.dG)
    np.testing.assert_array_equal(a1.cnt_up, a2.cnt_up)
    np.testing.assert_array_equal(a1.cnt_dn, a2.cnt_dn)
    # clipping: pushing below Gmin / above Gmax stays at the bound (models that reach it)
    if isinstance(dev, devices.StepDevice) and dev.model != "constant_step":
        return
    np.testing.assert_allclose(a1.G[:2], a1.gmin_i[:2], rtol=1e-12)
    np.testing.assert_allclose(a1.G[4:6], a1.gmax_i[4:6], rtol=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    nl_up=st.floats(-6, 6),
    nl_dn=st.floats(-6, 6),
    P=st.integers(2, 300),
    g0=st.floats(0, 1),
    n=st.integers(-400, 400),
)
def test_n_single_writes_equal_one_write_property(nl_up, nl_dn, P, g0, n):
    """D5 for random labels, sizes, starting states and counts (numpy reference).

    Labels are kept within |NL| <= 6: beyond that (a -> -0.02 at NL = -9) the first pulse from
    Gmin moves g by ~exp(-44), below the float64 resolution of G itself (the state is stored
    as a conductance), so no implementation can meet 1e-9 relative there."""
    dev = devices.ExpDevice(
        gmin=1e-7, gmax=5e-6, levels_ltp=P, levels_ltd=max(2, P // 2), nl_ltp=nl_up, nl_ltd=nl_dn
    )
    a1, a2 = ref_array(dev, 1), ref_array(dev, 1)
    set_G(a1, dev.gmin + g0 * dev.dG)
    set_G(a2, dev.gmin + g0 * dev.dG)
    a1.pulse(np.array([[n]]))
    for _ in range(abs(n)):
        a2.pulse(np.array([[np.sign(n)]]))
    np.testing.assert_allclose(a1.G, a2.G, rtol=1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", [*PUBLISHED, "ideal", "constant_step"])
def test_full_range_write_reaches_the_other_bound(name, backend):
    """Clipping at x = P and x = 0: P_LTP pulses from Gmin reach Gmax; P_LTD from Gmax reach
    Gmin; more pulses do not move further."""
    dev = devices.get(name, c2c_sigma=0)
    dev = dataclasses.replace(dev, variability=devices.Variability())
    arr = ref_array(dev, 3, backend)
    set_G(arr, dev.gmin)
    P, Q = dev.levels("ltp"), dev.levels("ltd")
    arr.pulse(np.array([[P, P + 1, 3 * P]]))
    np.testing.assert_allclose(arr.G, dev.gmax, rtol=1e-12)
    arr.pulse(np.array([[-Q, -Q - 1, -3 * Q]]))
    np.testing.assert_allclose(arr.G, dev.gmin, rtol=1e-12, atol=1e-12 * dev.dG)


# ----------------------------------------------------------------------------------- D13
STEP_CASES = [
    devices.StepDevice(model="constant_step", dw_min=0.01, up_down=0.25),
    devices.StepDevice(model="soft_bounds", dw_min=0.01, up_down=-0.3),
    devices.StepDevice(model="soft_bounds", dw_min=0.002, b_min=-0.4, b_max=1.1),
    devices.StepDevice(model="linear_step", dw_min=0.01, gamma_up=0.3, gamma_down=0.8),
    devices.StepDevice(
        model="linear_step", dw_min=0.005, gamma_up=2.5, gamma_down=1.5, up_down=0.1
    ),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dev", STEP_CASES, ids=lambda d: f"{d.model}-{d.dw_min}-{d.up_down}")
def test_step_closed_forms_equal_per_pulse_iteration(dev, backend):
    """D13: the n-pulse closed forms equal per-pulse iteration of the section-6 rule."""
    rng = np.random.default_rng(11)
    n_dev = 40
    u0 = rng.uniform(dev.b_min, dev.b_max, n_dev)
    n = rng.integers(1, 400, n_dev) * rng.choice([-1, 1], n_dev)
    arr = ref_array(dev, n_dev, backend)
    set_G(arr, step_G(dev, u0))
    arr.pulse(n[None, :])
    want = np.array([step_iterate(dev, u, int(k)) for u, k in zip(u0, n, strict=True)])
    np.testing.assert_allclose(arr.G, step_G(dev, want), rtol=1e-9)


@pytest.mark.parametrize("u0", [-0.5, 0.0, 0.3, 0.59])
@pytest.mark.parametrize("n", [1, 5, 64, 333])
def test_spec_closed_forms_soft_bounds(u0, n):
    """Spec closed forms: up u_n = b_max - (b_max - u_0)(1 - dw/b_max)^n,
    down u_n = b_min + (u_0 - b_min)(1 - dw/|b_min|)^n; linear step affine map."""
    sb = devices.StepDevice(model="soft_bounds", dw_min=0.003)
    arr = ref_array(sb, 2)
    set_G(arr, step_G(sb, u0))
    arr.pulse(np.array([[n, -n]]))
    bmin, bmax, dw = sb.b_min, sb.b_max, sb.dw_min
    up = bmax - (bmax - u0) * (1 - dw / bmax) ** n
    dn = bmin + (u0 - bmin) * (1 - dw / abs(bmin)) ** n
    np.testing.assert_allclose(step_u(sb, arr.G), [up, dn], rtol=1e-9, atol=1e-12)

    ls = devices.StepDevice(model="linear_step", dw_min=0.003, gamma_up=0.7, gamma_down=0.2)
    arr = ref_array(ls, 2)
    set_G(arr, step_G(ls, u0))
    arr.pulse(np.array([[n, -n]]))
    want = []
    for s, gam in ((1.0, -0.7 / bmax), (-1.0, -0.2 / bmin)):
        r = 1 + s * dw * gam
        want.append(r**n * u0 + s * dw * (r**n - 1) / (r - 1))
    want = np.clip(want, bmin, bmax)
    np.testing.assert_allclose(step_u(ls, arr.G), want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("nl", "P"), [(2.4, 97), (0.5, 64), (3.68, 50), (1.75, 32), (0.04, 128)])
def test_soft_bounds_reproduces_exponential_ltp_curve(nl, P, backend):
    """D13: soft bounds with b_max = Gmin + B and step B (1 - exp(-1/A)) is the LTP curve f(p),
    p = 0..P (normalized units: Gmin -> 0, Gmax -> 1)."""
    exp = devices.ExpDevice(gmin=0.0, gmax=1.0, levels_ltp=P, levels_ltd=P, nl_ltp=nl)
    A = exp.a_ltp * P
    B = 1.0 / (1.0 - math.exp(-P / A))
    sb = devices.StepDevice(
        model="soft_bounds", b_min=-1.0, b_max=B, dw_min=B * (1 - math.exp(-1 / A)), gmin=0, gmax=1
    )
    arr = ref_array(sb, P + 1, backend)
    set_G(arr, step_G(sb, 0.0))
    p = np.arange(P + 1)
    arr.pulse(p[None, :])
    u = np.minimum(step_u(sb, arr.G), 1.0)
    f = exp.conductance(p.astype(float))
    np.testing.assert_allclose(u, f, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(f, normalized_response(p / P, exp.a_ltp), rtol=1e-12, atol=1e-15)


# --------------------------------------------------------------------------------- dataclass
def test_models_are_frozen_keyword_only_and_revalidate():
    dev = devices.get("epiram")
    with pytest.raises(dataclasses.FrozenInstanceError):
        dev.gmin = 0.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        devices.ExpDevice(1e-7, 1e-6)  # type: ignore[misc]
    with pytest.raises(ValueError, match="levels_ltp"):
        dataclasses.replace(dev, levels_ltp=1)
    var = dataclasses.replace(dev, levels_ltp=32)
    assert var.levels_ltp == 32 and dev.levels_ltp == 64
    assert var.nl_ltp == dev.nl_ltp


def test_kernel_params_nominal_and_sampled():
    dev = devices.get("ag_a_si", sigma_nl=0.5)
    prm, const, lu, ld = dev.kernel_params(5)
    assert prm.shape[1] == 5 and const.shape == (4,)
    np.testing.assert_array_equal(prm[2], 1.0 / dev.a_ltp)
    np.testing.assert_array_equal(prm[4], 97.0)
    prm2, *_ = dev.kernel_params(5, np.random.default_rng(0))
    assert np.all(prm2[2] != prm[2])
    prm3, *_ = dev.kernel_params(5, np.random.default_rng(0))
    np.testing.assert_array_equal(prm2, prm3)


def test_with_variability_and_describe():
    dev = devices.get("epiram").with_variability(read_sigma=0.02, p_stuck_gmin=0.01)
    assert dev.variability.read_sigma == 0.02
    assert dev.variability.stuck.p_gmin == 0.01
    assert dev.variability.c2c_sigma == 0.02  # epiram's own c2c is kept
    d = dev.describe()
    assert d["family"] == "ExpDevice" and d["levels_ltp"] == 64
    assert d["variability"]["read_sigma"] == 0.02
