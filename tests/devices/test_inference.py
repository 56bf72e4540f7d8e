"""The inference model of ``devices.inference``: programming noise, drift, 1/f read noise."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

import devices
from devices.inference import (
    INFERENCE_MODELS,
    InferenceNoise,
    ProgrammedArray,
    draw_drift_exponents,
    drift_conductance,
    inference_model,
)


def _programmed(model, w=0.5, shape=(200, 100), device="ideal", seed=0, rng_seed=1):
    arr = devices.DeviceArray(shape, devices.get(device), seed=seed)
    arr.program(np.full(shape, w))
    return arr, ProgrammedArray(arr, model, np.random.default_rng(rng_seed))


def test_none_model_leaves_weights_exactly():
    arr, pa = _programmed(inference_model("none"), w=0.3)
    for t in (1.0, 3600.0, 3.15e7):
        np.testing.assert_array_equal(pa.weights(t), arr.weights())


def test_drift_law_log_slope_is_minus_nu():
    """Noise-free power law: log x against log t has slope -nu_i for every device, flat before
    t0."""
    m = InferenceNoise(nu_offset=0.07, nu_min=0.0, sigma_nu_offset=0.02, t0=20.0)
    _, pa = _programmed(m, w=0.8, shape=(20, 10))
    x0 = drift_conductance(pa.xp, pa.nu, 20.0, m.t0)
    np.testing.assert_array_equal(drift_conductance(pa.xp, pa.nu, 5.0, m.t0), x0)
    act = pa.xp > 0
    t1, t2 = 1e3, 1e7
    x1 = drift_conductance(pa.xp, pa.nu, t1, m.t0)[act]
    x2 = drift_conductance(pa.xp, pa.nu, t2, m.t0)[act]
    slope = (np.log(x2) - np.log(x1)) / (math.log(t2) - math.log(t1))
    np.testing.assert_allclose(slope, -pa.nu[act], atol=1e-9)
    assert np.std(pa.nu[act]) > 0.01  # per-device exponents, not one shared value


def test_drift_exponent_statistics_follow_the_pcm_law():
    """Mean and spread of nu at fixed g match the truncated normal of the published law, and
    nu depends on G: low conductances drift faster and spread more."""
    m = inference_model("pcm")
    rng = np.random.default_rng(3)
    n = 40000
    means = []
    for g in (0.02, 0.1, 0.8):
        nu = draw_drift_exponents(m, np.full(n, g), rng)
        mu, sd = (float(v) for v in m.nu_stats(g))
        a = (0.0 - mu) / sd
        tn = stats.truncnorm(a, np.inf, loc=mu, scale=sd)
        assert abs(nu.mean() - tn.mean()) < 4 * tn.std() / math.sqrt(n)
        assert abs(nu.std() / tn.std() - 1) < 0.03
        assert nu.min() >= 0
        means.append(nu.mean())
    assert means[0] > means[1] > means[2]
    mu_hi, sd_hi = m.nu_stats(1.0)
    assert float(mu_hi) == pytest.approx(0.049) and float(sd_hi) == pytest.approx(0.008)


def test_programming_noise_has_the_g_dependent_spread():
    m = inference_model("pcm")
    for w in (0.2, 0.7):
        arr, pa = _programmed(m, w=w)
        k = pa.xp.reshape(2, *arr.shape)[0]  # the active devices (G+)
        target = w  # x of G+ above its partner's Gmin on the ideal preset: w / w_max
        sig = float(m.prog_sigma(target))
        n = k.size
        assert abs(k.mean() - target) < 4 * sig / math.sqrt(n)
        # chi-square bound on the sample variance
        lo, hi = stats.chi2.ppf([0.0005, 0.9995], n - 1) / (n - 1)
        assert lo < k.var(ddof=1) / sig**2 < hi
    assert m.prog_sigma(0.8) > m.prog_sigma(0.1) > m.prog_sigma(0.0) > 0


def test_read_noise_grows_with_time_since_programming():
    m = inference_model("pcm").with_overrides(
        prog_coeff=(0.0, 0.0, 0.0), nu_min=0.0, nu_max=0.0, sigma_nu_min=0.0, sigma_nu_max=0.0
    )
    arr, pa = _programmed(m, w=0.5)
    act = pa.xp.reshape(2, *arr.shape)[0].ravel()
    sd = []
    for t in (1.0, 3.15e7):
        x = (pa.conductances(t).reshape(2, -1)[0] - pa.gmin.reshape(2, -1)[0]) / pa.dG
        rel = x / act - 1
        sd.append(rel.std())
        assert sd[-1] == pytest.approx(float(m.read_sigma(0.5, t)), rel=0.03)
    ratio = math.sqrt(math.log((3.15e7 + 250e-9) / 5e-7) / math.log((1 + 250e-9) / 5e-7))
    assert sd[1] / sd[0] == pytest.approx(ratio, rel=0.05)
    # devices left at Gmin by one-sided programming read back exactly
    np.testing.assert_array_equal(pa.conductances(1e6).reshape(2, -1)[1], pa.gmin.reshape(2, -1)[1])


def test_stuck_devices_neither_drift_nor_get_programming_noise():
    dev = devices.get("ideal", p_stuck_gmax=0.3)
    arr = devices.DeviceArray((30, 30), dev, seed=2)
    arr.program(np.full((30, 30), 0.4))
    pa = ProgrammedArray(arr, inference_model("pcm_drift"), np.random.default_rng(0))
    stuck = np.asarray(arr.frozen) > 0
    assert stuck.any()
    np.testing.assert_array_equal(pa.conductances(1e7, noise=False)[stuck], arr.G[stuck])


def test_reference_read_scales_with_drift():
    m = InferenceNoise(nu_offset=0.05, nu_min=0.05, nu_max=0.05, t0=1.0)
    _, pa = _programmed(m, w=0.5, shape=(10, 10))
    r0, r1 = pa.reference_read(1.0), pa.reference_read(1e6)
    assert r1 / r0 == pytest.approx(1e6**-0.05, rel=1e-12)


def test_registry_and_overrides():
    assert {"none", "pcm", "pcm_drift", "constant"} <= set(INFERENCE_MODELS)
    m = inference_model("pcm", t0=1.0)
    assert m.t0 == 1.0 and inference_model("pcm").t0 == 20.0
    with pytest.raises(ValueError, match="did you mean 'pcm'"):
        inference_model("pcn")
    with pytest.raises(ValueError, match="unknown inference-noise parameter 't_0'.*'t0'"):
        inference_model("pcm", t_0=1.0)
    with pytest.raises(ValueError, match="prog_coeff must hold 3"):
        InferenceNoise(prog_coeff=(0.1, 0.2))
    with pytest.raises(ValueError, match="t0 must be > 0"):
        InferenceNoise(t0=0.0)
    with pytest.raises(ValueError, match="nu_max must be >= nu_min"):
        InferenceNoise(nu_min=0.1, nu_max=0.05)
    _, pa = _programmed(inference_model("pcm"), shape=(2, 2))
    with pytest.raises(ValueError, match="t must be >= 0"):
        pa.weights(-1.0)
    with pytest.raises(TypeError, match="InferenceNoise"):
        ProgrammedArray(devices.DeviceArray((2, 2), devices.get("ideal")), "pcm", None)
