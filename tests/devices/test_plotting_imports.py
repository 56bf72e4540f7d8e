"""Plot helpers (Agg backend) and the import layering of the devices package."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import devices

mpl = pytest.importorskip("matplotlib")
mpl.use("Agg")


@pytest.mark.parametrize("name", ["ag_a_si", "constant_step"])
def test_plot_response_returns_axes(name):
    import matplotlib.pyplot as plt

    dev = devices.get(name, sigma_nl=0.5) if name == "ag_a_si" else devices.get(name)
    ax = devices.plot_response(dev, n_devices=20)
    assert ax.get_xlabel().startswith("pulse number")
    lines = ax.get_lines()
    assert len(lines) == 2
    x_up, g_up = lines[0].get_data()
    assert x_up[0] == 0 and g_up[0] == pytest.approx(0.0) and g_up[-1] == pytest.approx(1.0)
    assert len(ax.collections) == 2  # the d2d bands
    fig, ax2 = plt.subplots()
    assert devices.plot_response(dev, ax=ax2, normalized=False) is ax2
    plt.close("all")


def _band_at(ax, k, t):
    """(lower, upper) of the k-th fill_between band at abscissa t."""
    v = ax.collections[k].get_paths()[0].vertices
    ys = v[np.isclose(v[:, 0], t), 1]
    return ys.min(), ys.max()


@pytest.mark.parametrize(
    "name",
    [
        "ag_a_si",
        "constant_step",
        "soft_bounds",
    ],
)
def test_plot_response_ltd_band_starts_at_each_devices_gmax(name):
    import matplotlib.pyplot as plt

    dev = devices.get(name, sigma_gmax=0.1) if name == "ag_a_si" else devices.get(name)
    n, seed = 200, 3
    ax = devices.plot_response(dev, n_devices=n, seed=seed)
    prm, const, *_ = dev.kernel_params(n, np.random.default_rng(seed))
    if dev.family == 1:
        gmax_i = dev.gmin + (prm[1] - dev.b_min) / (dev.b_max - dev.b_min) * dev.dG
    else:
        gmax_i = prm[1]
    want = np.percentile((gmax_i - dev.gmin) / dev.dG, [5, 95])
    got = _band_at(ax, 1, dev.levels("ltp"))  # 0 depression pulses
    np.testing.assert_allclose(got, want, atol=1e-3)
    plt.close("all")


def test_plot_array_state_returns_axes():
    import matplotlib.pyplot as plt

    arr = devices.DeviceArray((4, 5), devices.get("epiram"), seed=0, backend="numpy")
    arr.program(np.random.default_rng(0).uniform(-1, 1, (4, 5)))
    fig, ax = plt.subplots()
    assert devices.plot_array_state(arr, ax=ax) is ax
    assert sum(p.get_height() for p in ax.patches) == 40
    plt.close("all")


def test_importing_devices_pulls_in_neither_torch_cupy_nor_upper_layers():
    code = (
        "import sys, devices, devices.array, devices.kernels.reference\n"
        "bad = [m for m in ('torch', 'cupy', 'learning_rules', 'synapse_sim', 'matplotlib')\n"
        "       if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
