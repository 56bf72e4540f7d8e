"""``devices.plot_response`` and ``devices.plot_array_state`` on the Agg backend."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402

import devices  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _bands(ax):
    return [c for c in ax.collections if isinstance(c, PolyCollection)]


@pytest.mark.parametrize("name", devices.names())
def test_response_lines_are_the_model_curves(name):
    dev = devices.get(name)
    ax = devices.plot_response(dev)
    lines = ax.get_lines()
    assert [ln.get_label() for ln in lines] == ["LTP", "LTD"]
    p_up, p_dn = dev.levels("ltp"), dev.levels("ltd")
    x_up, x_dn = np.arange(p_up + 1.0), np.arange(p_dn + 1.0)
    ltp, ltd = lines
    np.testing.assert_array_equal(ltp.get_xdata(), x_up)
    np.testing.assert_array_equal(ltd.get_xdata(), p_up + x_dn)
    np.testing.assert_allclose(ltp.get_ydata(), (dev.conductance(x_up) - dev.gmin) / dev.dG)
    np.testing.assert_allclose(ltd.get_ydata(), (dev.depressed(x_dn) - dev.gmin) / dev.dG)


def test_response_in_siemens():
    dev = devices.get("pcmo")
    ax = devices.plot_response(dev, normalized=False)
    ltp, ltd = ax.get_lines()
    x = np.arange(dev.levels_ltp + 1.0)
    np.testing.assert_allclose(ltp.get_ydata(), dev.conductance(x))
    assert ltp.get_ydata()[0] == pytest.approx(dev.gmin)
    assert ltp.get_ydata()[-1] == pytest.approx(dev.gmax)
    assert ltd.get_ydata()[0] == pytest.approx(dev.gmax)
    assert ltd.get_ydata()[-1] == pytest.approx(dev.gmin)


def test_band_only_with_device_to_device_spread():
    nominal = devices.get("ag_a_si")
    assert nominal.variability.d2d is None
    assert _bands(devices.plot_response(nominal)) == []
    spread = devices.get("ag_a_si", sigma_nl=1.0)
    bands = _bands(devices.plot_response(spread))
    assert len(bands) == 2  # LTP and LTD
    # the step presets carry their own spread; without it there is no band
    assert len(_bands(devices.plot_response(devices.get("constant_step")))) == 2
    no_d2d = devices.get("constant_step").with_variability(d2d=None)
    assert _bands(devices.plot_response(no_d2d)) == []


def test_nl_band_pins_the_end_points_and_brackets_the_nominal_curve():
    dev = devices.get("ag_a_si", sigma_nl=1.0)
    ax = devices.plot_response(dev, n_devices=400, seed=3)
    ltp_band = _bands(ax)[0]
    verts = ltp_band.get_paths()[0].vertices
    x_up = np.arange(dev.levels_ltp + 1.0)
    lo = np.array([verts[(verts[:, 0] == x), 1].min() for x in x_up])
    hi = np.array([verts[(verts[:, 0] == x), 1].max() for x in x_up])
    # an NL spread changes the shape, never the end points Gmin and Gmax
    assert lo[0] == pytest.approx(0.0, abs=1e-12) and hi[0] == pytest.approx(0.0, abs=1e-12)
    assert lo[-1] == pytest.approx(1.0) and hi[-1] == pytest.approx(1.0)
    nominal = ax.get_lines()[0].get_ydata()
    assert np.all(lo <= nominal + 1e-12) and np.all(nominal <= hi + 1e-12)
    assert np.max(hi - lo) > 0.05


def test_given_axes_are_used():
    fig, (ax1, ax2) = plt.subplots(1, 2)
    n_figs = len(plt.get_fignums())
    out = devices.plot_response(devices.get("epiram"), ax=ax2)
    assert out is ax2
    assert len(ax2.get_lines()) == 2 and len(ax1.get_lines()) == 0
    arr = devices.DeviceArray((4, 5), devices.get("epiram"), seed=0)
    assert devices.plot_array_state(arr, ax=ax1) is ax1
    assert len(plt.get_fignums()) == n_figs


def test_new_axes_without_ax():
    n_figs = len(plt.get_fignums())
    ax = devices.plot_response(devices.get("epiram"))
    assert len(plt.get_fignums()) == n_figs + 1
    assert ax.get_title() == "epiram"


def _hist_counts(ax):
    return [sum(p.get_height() for p in bars) for bars in ax.containers]


@pytest.mark.parametrize("mapping", devices.MAPPINGS)
def test_array_state_histogram_counts_every_device(mapping):
    arr = devices.DeviceArray((16, 24), devices.get("pcmo"), seed=0, mapping=mapping)
    rng = np.random.default_rng(0)
    for _ in range(20):
        arr.pulse(rng.integers(-3, 4, size=arr.shape))
    ax = devices.plot_array_state(arr, bins=30)
    counts = _hist_counts(ax)
    assert len(counts) == arr.n_per_synapse
    assert all(c == 16 * 24 for c in counts)
    assert sum(counts) == arr.n_devices
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == (["G+", "G-"] if mapping == "differential" else ["G"])


def test_array_state_counts_devices_at_the_bounds():
    arr = devices.DeviceArray((8, 8), devices.get("epiram"), seed=0, mapping="reference")
    arr.pulse(np.full(arr.shape, 500))  # every device saturates at Gmax (g = 1)
    ax = devices.plot_array_state(arr)
    assert _hist_counts(ax) == [arr.n_devices]
