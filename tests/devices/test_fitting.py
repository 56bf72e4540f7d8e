"""Fitting a preset to measured cycles (``devices.fitting``; issue 18 part 3).

Curves are sampled from known presets through the real write path (a ``DeviceArray`` pulsed one
pulse at a time, :func:`devices.fitting.sample_cycles`) and fitted back.

Tolerances
----------
* Noise-free data lie exactly on the model curve, so the fit is limited only by the optimizer
  (``xtol = ftol = 1e-14`` on O(1) normalized parameters): labels to 1e-6 (the tolerance of
  :func:`devices.a_from_nl` in the spec, D2), the range to 1e-9 of ``dG``, levels exactly.
* With cycle-to-cycle noise the estimates are random. The fit reports standard errors from the
  information of the one-step transitions; an estimate must lie within 4 of its standard
  errors of the truth (two-sided probability of a failure per parameter about 6e-5 for a
  calibrated error; seeds are fixed). The standard errors themselves are checked against the
  spread of estimates over seeds (slow test), so they cannot be inflated to make the check pass.
* The noise level: the maximum-likelihood ``sigma`` of ``n`` Gaussian residuals has standard
  error ``sigma / sqrt(2 n)``; the check is 4 of those.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings

import numpy as np
import pytest

import devices
from devices import fitting as F

NOISY = ("ag_a_si", "epiram", "pcmo")


def _norm(dev, g):
    return (g - dev.gmin) / dev.dG


@pytest.fixture(scope="module")
def noisy_fits():
    """Five measured cycles of each preset with its own cycle-to-cycle noise, fitted."""
    out = {}
    for name in NOISY:
        dev = devices.get(name)
        data = F.sample_cycles(dev, n_cycles=5, seed=7)
        out[name] = (dev, data, devices.fit(**data))
    return out


# ------------------------------------------------------------------------- noise-free recovery
@pytest.mark.parametrize("name", ["ag_a_si", "epiram", "pcmo", "taox_hfox", "hzo_fefet", "ideal"])
def test_noise_free_curves_recover_the_preset_exactly(name):
    dev = devices.get(name, c2c_sigma=0)
    res = devices.fit(**F.sample_cycles(dev, n_cycles=1 if name == "ideal" else 2))
    m = res.model
    assert (m.levels_ltp, m.levels_ltd) == (dev.levels_ltp, dev.levels_ltd)
    assert m.nl_ltp == pytest.approx(dev.nl_ltp, abs=1e-6)
    assert m.nl_ltd == pytest.approx(dev.nl_ltd, abs=1e-6)
    assert abs(m.gmin - dev.gmin) < 1e-9 * dev.dG
    assert abs(m.gmax - dev.gmax) < 1e-9 * dev.dG
    assert m.variability.c2c_sigma == 0
    # the fitted model reproduces the data through the package's own model code
    for b in ("ltp", "ltd"):
        assert res.goodness["exp"][b]["rmse"] < 1e-9 * dev.dG
        assert res.goodness["exp"][b]["r2"] > 1 - 1e-12
    # the look-up table of noise-free data is the curve itself
    p = np.arange(dev.levels_ltp + 1)
    np.testing.assert_allclose(
        res.lut.conductance(p, "ltp"), dev.conductance(p), atol=1e-6 * dev.dG
    )


def test_readings_every_few_pulses_and_a_single_sweep():
    dev = devices.get("pcmo", c2c_sigma=0)
    d = F.sample_cycles(dev, every=7)
    assert d["pulses_ltp"][0][1] == 7 and d["pulses_ltp"][0][-1] == dev.levels_ltp
    m = devices.fit(d["pulses_ltp"][0], d["g_ltp"][0], d["pulses_ltd"][0], d["g_ltd"][0]).model
    assert m.nl_ltp == pytest.approx(dev.nl_ltp, abs=1e-6)
    assert m.nl_ltd == pytest.approx(dev.nl_ltd, abs=1e-6)


def test_curve_method_equals_markov_on_noise_free_data():
    dev = devices.get("epiram", c2c_sigma=0)
    d = F.sample_cycles(dev)
    a, b = devices.fit(**d).model, devices.fit(**d, method="curve").model
    assert a.nl_ltp == pytest.approx(b.nl_ltp, abs=1e-9)
    assert a.gmax == pytest.approx(b.gmax, rel=1e-12)


# ------------------------------------------------------------------------- noisy recovery
@pytest.mark.parametrize("name", NOISY)
def test_noisy_cycles_recover_parameters_within_their_standard_errors(noisy_fits, name):
    dev, _, res = noisy_fits[name]
    m, se = res.model, res.se
    assert (m.levels_ltp, m.levels_ltd) == (dev.levels_ltp, dev.levels_ltd)
    for key in ("nl_ltp", "nl_ltd"):
        # the check must be informative: a standard error below one NL unit
        assert 0 < se[key] < 1.0, (key, se[key])
        assert abs(getattr(m, key) - getattr(dev, key)) <= 4 * se[key], (key, getattr(m, key))
    # readings clipped at the bounds pin the range exactly (the model clips to Gmin/Gmax)
    for key in ("gmin", "gmax"):
        err = abs(getattr(m, key) - getattr(dev, key))
        assert err <= max(4 * se[key], 1e-9 * dev.dG), (key, err, se[key])


@pytest.mark.parametrize("name", NOISY)
def test_noise_level_recovered_within_its_statistical_tolerance(noisy_fits, name):
    dev, data, res = noisy_fits[name]
    sigma = dev.variability.c2c_sigma
    n = sum(len(g) - 1 for b in ("ltp", "ltd") for g in data[f"g_{b}"])
    tol = 4 * sigma / math.sqrt(2 * n)  # independent of the fit's own standard error
    assert abs(res.model.variability.c2c_sigma - sigma) <= tol
    assert res.se["c2c_sigma"] == pytest.approx(sigma / math.sqrt(2 * n), rel=0.1)


def test_curve_fit_of_noisy_data_is_range_biased_where_the_markov_fit_is_not(noisy_fits):
    # with 3.5 % per pulse the mean sweep never reaches the bounds: a curve through the
    # readings shrinks the range by several standard errors, the transition likelihood does not
    dev, data, res = noisy_fits["ag_a_si"]
    curve = devices.fit(**data, method="curve").model
    assert _norm(dev, curve.gmax) < 0.97
    assert abs(_norm(dev, res.model.gmax) - 1) < 1e-9
    # the curve fit has no standard errors for its curve parameters (correlated residuals)
    cres = devices.fit(**data, method="curve")
    assert math.isnan(cres.se["nl_ltp"]) and cres.se["c2c_sigma"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["epiram", "ag_a_si"])
def test_standard_errors_match_the_spread_over_seeds(name):
    """The reported standard errors describe the real scatter: z-scores over 10 seeds."""
    dev = devices.get(name)
    z = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for seed in range(10):
            r = devices.fit(**F.sample_cycles(dev, n_cycles=4, seed=100 + seed))
            z.append(
                [(getattr(r.model, k) - getattr(dev, k)) / r.se[k] for k in ("nl_ltp", "nl_ltd")]
            )
    z = np.array(z)
    # calibrated errors give z ~ N(0, 1): the mean of 10 within 4/sqrt(10), the rms of 20 values
    # within [0.4, 1.8] (chi-square with 20 dof: 0.4^2 * 20 = 3.2 and 1.8^2 * 20 = 65 are both
    # beyond its 1e-4 quantiles)
    assert np.all(np.abs(z.mean(0)) < 4 / math.sqrt(10)), z
    rms = math.sqrt(float(np.mean(z**2)))
    assert 0.4 < rms < 1.8, z


# ------------------------------------------------------------------------- several devices
def _d2d_sample(n_dev, seed):
    """Per-device models with drawn labels and ranges (the draws are known to the test)."""
    rng = np.random.default_rng(seed)
    base = devices.get("ag_a_si", c2c_sigma=0)
    nl = np.column_stack(
        [
            base.nl_ltp + 0.5 * rng.standard_normal(n_dev),
            base.nl_ltd + 0.5 * rng.standard_normal(n_dev),
        ]
    )
    gmax = base.gmax * (1 + 0.05 * rng.standard_normal(n_dev))
    gmin = base.gmin * (1 + 0.1 * rng.standard_normal(n_dev))
    data = {"pulses_ltp": [], "g_ltp": [], "pulses_ltd": [], "g_ltd": [], "device_ids": []}
    for i in range(n_dev):
        dev = dataclasses.replace(
            base, nl_ltp=nl[i, 0], nl_ltd=nl[i, 1], gmin=gmin[i], gmax=gmax[i]
        )
        d = F.sample_cycles(dev)
        for k in data:
            data[k] += d[k] if k != "device_ids" else [f"dev{i}"]
    return base, nl, gmin, gmax, data


def test_several_devices_give_the_sampled_device_to_device_spread():
    base, nl, gmin, gmax, data = _d2d_sample(12, seed=3)
    res = devices.fit(**data)
    assert res.device_ids == tuple(f"dev{i}" for i in range(12))
    got = np.array([[m.nl_ltp, m.nl_ltd] for m in res.device_models])
    np.testing.assert_allclose(got, nl, atol=1e-6)
    d2d = res.model.variability.d2d
    # noise-free: every label is exact, so the spread is the sample spread of the draws
    want = math.sqrt(np.mean(np.var(nl, axis=0, ddof=1)))
    assert d2d.sigma_nl == pytest.approx(want, abs=1e-6)
    assert d2d.sigma_gmax == pytest.approx(np.std(gmax, ddof=1) / gmax.mean(), rel=1e-6)
    assert d2d.sigma_gmin == pytest.approx(np.std(gmin, ddof=1) / gmin.mean(), rel=1e-6)
    # and the sample spread is close to the sampled sigma (chi with 22 dof: 4 SE = 4 * 0.5 /
    # sqrt(2 * 22) = 0.30)
    assert abs(d2d.sigma_nl - 0.5) < 0.30
    assert res.model.nl_ltp == pytest.approx(nl[:, 0].mean(), abs=1e-6)
    assert res.se["nl_ltp"] == pytest.approx(np.std(nl[:, 0], ddof=1) / math.sqrt(12), rel=1e-6)


def test_curve_method_on_several_noisy_devices():
    dev = devices.get("pcmo", sigma_nl=0.5)
    res = devices.fit(**F.sample_cycles(dev, n_devices=3, seed=5), method="curve")
    assert res.model.variability.d2d.sigma_nl > 0
    assert all(math.isnan(s["nl_ltp"]) for s in res.device_se)
    assert math.isfinite(res.se["nl_ltp"])  # spread of the device labels


@pytest.mark.slow
def test_device_to_device_spread_through_a_device_array_with_noise():
    """d2d and c2c together, sampled by the array itself: sigma_nl within its statistical
    tolerance (pooled spread of 2 x 15 labels; estimation noise subtracted)."""
    dev = devices.get("pcmo", sigma_nl=0.6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        data = F.sample_cycles(dev, n_devices=16, n_cycles=2, seed=11)
        res = devices.fit(**data)
    d2d = res.model.variability.d2d
    # the pooled sample variance of 2 x 15 labels estimates s_tot^2 = 0.6^2 + mean(se_i^2) with
    # standard error s_tot^2 sqrt(2 / 30); through sigma = sqrt(var - mean(se_i^2)) that is a
    # standard error of s_tot^2 / (0.6 sqrt(60)) on sigma_nl
    se_i = np.array([[s["nl_ltp"], s["nl_ltd"]] for s in res.device_se])
    assert 0 < se_i.max() < 0.6  # estimation noise is present but does not swamp the spread
    s_tot2 = 0.36 + float(np.mean(se_i**2))
    assert abs(d2d.sigma_nl - 0.6) < 4 * s_tot2 / (0.6 * math.sqrt(60))
    n = sum(len(g) - 1 for g in data["g_ltp"] + data["g_ltd"])
    assert abs(res.model.variability.c2c_sigma - 0.01) < 4 * 0.01 / math.sqrt(2 * n)


# ------------------------------------------------------------------------- training
@pytest.mark.slow
def test_fitted_preset_trains_like_the_preset_it_came_from():
    """One-layer digits classifier, pulse backprop on a reference-mapped array: the preset and
    its fit (from five noisy cycles) reach the same test accuracy within 4 standard errors of
    the run-to-run spread (device seeds), while a different device (Ag:a-Si) does not."""
    from sklearn.datasets import load_digits

    from learning_rules import PulseRule

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    idx = np.random.default_rng(0).permutation(len(X))
    X, y = X[idx], y[idx]
    Xtr, Ttr, Xte, yte = X[:800], np.eye(10)[y[:800]], X[1200:], y[1200:]
    rule = PulseRule(method="bidirectional")

    def accuracy(model, seed):
        arr = devices.DeviceArray((10, 64), model, mapping="reference", seed=seed, backend="numpy")
        for x, t in zip(Xtr, Ttr, strict=True):
            a = 1.0 / (1.0 + np.exp(-arr.matmul(x)))
            rule.update(arr, x, (a - t) * a * (1 - a), 0.5)
        return float(np.mean(np.argmax(Xte @ arr.weights().T, axis=1) == yte))

    true = devices.get("epiram")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        fitted = devices.fit(**F.sample_cycles(true, n_cycles=5, seed=3)).model
    seeds = range(4)
    acc = {
        k: np.array([accuracy(m, s) for s in seeds])
        for k, m in (("true", true), ("fit", fitted), ("other", devices.get("ag_a_si")))
    }

    def se(a, b):
        return math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)

    assert acc["true"].mean() > 0.7, acc
    gap = abs(acc["fit"].mean() - acc["true"].mean())
    assert gap <= 4 * se(acc["fit"], acc["true"]), acc
    assert abs(acc["other"].mean() - acc["true"].mean()) > 4 * se(acc["other"], acc["true"]), acc


# ------------------------------------------------------------------------- plot, summary, CSV
def test_plot_and_summary(noisy_fits):
    mpl = pytest.importorskip("matplotlib")
    mpl.use("Agg")
    import matplotlib.pyplot as plt

    _, _, res = noisy_fits["pcmo"]
    ax = res.plot()
    assert ax.get_xlabel().startswith("pulse number")
    assert len(ax.get_lines()) >= 5  # data sweeps + 2 fit curves + 2 table curves
    fig, ax2 = plt.subplots()
    assert res.plot(ax=ax2, normalized=True) is ax2
    plt.close("all")
    rec = json.loads(json.dumps(res.to_dict()))
    assert rec["params"]["nl_ltp"] == res.model.nl_ltp
    assert rec["model"]["family"] == "ExpDevice" and len(rec["lut"]["ltp"]) == 51
    text = res.summary()
    assert "NL LTP" in text and "c2c sigma" in text and "R^2" in text
    assert res.params["levels_ltp"] == 50


def test_csv_round_trip_and_example_file(tmp_path):
    dev = devices.get("epiram", c2c_sigma=0)
    data = F.sample_cycles(dev, n_cycles=2, n_devices=2)
    path = tmp_path / "m.csv"
    F.write_csv(path, data)
    head = path.read_text().splitlines()[0]
    assert head == ",".join(F.CSV_COLUMNS)
    back = F.read_csv(path)
    assert back["device_ids"] == ["d0", "d0", "d1", "d1"]
    res = F.fit_csv(path)
    assert res.model.name == "m"
    assert res.model.nl_ltp == pytest.approx(0.5, abs=1e-5)  # 9 significant digits in the file
    # the shipped example (examples/make_example_measurements.py) fits its known device
    from importlib import resources

    ex = resources.files("devices").joinpath("data/example_measurements.csv")
    r = F.fit_csv(ex)
    assert len(r.device_ids) == 3
    for key, want in (("nl_ltp", 1.8), ("nl_ltd", -2.6)):
        assert abs(getattr(r.model, key) - want) <= 4 * r.se[key]


def test_csv_layout_variants(tmp_path):
    path = tmp_path / "v.csv"
    p = np.arange(11)
    g = 1e-6 + 1e-6 * (1 - np.exp(-p / 5))
    rows = ["# comment", "Branch,Pulse,Conductance"]
    rows += [f"potentiation,{a},{float(b)!r}" for a, b in zip(p, g, strict=True)]
    rows += [f"Depression,{a},{float(b)!r}" for a, b in zip(p, g[::-1], strict=True)]
    path.write_text("\n".join(rows) + "\n")
    r = F.fit_csv(path)
    assert r.device_ids == ("0",)
    bad = tmp_path / "bad.csv"
    bad.write_text("branch,pulse,conductance\nup,0,1e-6\n")
    with pytest.raises(ValueError, match="branch"):
        F.read_csv(bad)
    bad.write_text("branch,pulse\nltp,0\n")
    with pytest.raises(ValueError, match="conductance"):
        F.read_csv(bad)
    bad.write_text("branch,pulse,conductance\nltp,0,abc\n")
    with pytest.raises(ValueError, match="row 1"):
        F.read_csv(bad)


# ------------------------------------------------------------------------- bad input
def _ok():
    p = np.arange(11.0)
    return p, 1e-6 + 1e-7 * p, p, 2e-6 - 1e-7 * p


@pytest.mark.parametrize(
    "change, match",
    [
        ({0: np.arange(10.0)}, "pulses_ltp and g_ltp must have the same length"),
        ({2: np.r_[0, 2, 1, np.arange(3.0, 11)]}, "pulses_ltd must be strictly increasing"),
        ({1: np.r_[np.nan, np.ones(10)]}, "g_ltp must be finite"),
        ({0: np.arange(11.0) + 0.5}, "pulses_ltp must be whole pulse numbers"),
        ({0: np.arange(2.0), 1: np.ones(2)}, "at least 3"),
        ({3: -np.ones(11)}, "g_ltd must be conductances >= 0"),
        ({1: [[1e-6, 2e-6, 3e-6]]}, "pulses_ltp has 1 sweeps but g_ltp has 1|same length"),
    ],
)
def test_bad_input_names_the_parameter(change, match):
    args = list(_ok())
    for i, v in change.items():
        args[i] = v
    with pytest.raises(ValueError, match=match):
        devices.fit(*args)


def test_bad_options():
    args = _ok()
    with pytest.raises(ValueError, match="method must be one of"):
        devices.fit(*args, method="markow")
    with pytest.raises(ValueError, match="levels_ltp must be >= 10"):
        devices.fit(*args, levels_ltp=5)
    with pytest.raises(ValueError, match="device ids for ltp"):
        devices.fit(*args, device_ids=["a", "b"])
    with pytest.raises(TypeError, match="pulses_ltp must be a sequence of numbers"):
        devices.fit(object(), *args[1:])


@pytest.mark.slow
def test_fit_device_example_runs(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "examples" / "fit_device.py"
    fig = tmp_path / "fit.png"
    out = subprocess.run(
        [sys.executable, str(script), "", str(fig)], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert "NL LTP" in out.stdout and fig.stat().st_size > 10_000
