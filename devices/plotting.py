"""Plots of device responses and array state (matplotlib imported lazily; ``ax=None`` makes one)."""

from __future__ import annotations

import numpy as np

__all__ = ["plot_response", "plot_array_state", "d2d_variant", "save_preset_figure"]


def _axes(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(5, 3.5))
    return ax


def plot_response(
    device, ax=None, *, n_devices: int = 200, seed: int = 0, normalized: bool = True, band=(5, 95)
):
    """LTP and LTD conductance vs pulse number, with device-to-device spread as a band.

    LTP pulses run from Gmin, then LTD pulses from Gmax, on one pulse axis (the usual
    potentiation/depression figure).

    Parameters
    ----------
    device : DeviceModel
        A model, e.g. ``devices.get("ag_a_si")``.
    ax : matplotlib.axes.Axes, optional
    n_devices : int
        Devices sampled for the spread band (only drawn when the model has a d2d spread).
    seed : int
        Seed of the device sample.
    normalized : bool
        Plot ``(G - Gmin) / (Gmax - Gmin)`` instead of siemens.
    band : (float, float)
        Percentiles of the band.

    Returns
    -------
    matplotlib.axes.Axes
    """
    from .kernels import reference as ref

    ax = _axes(ax)
    P_up, P_dn = device.levels("ltp"), device.levels("ltd")
    x_up = np.arange(P_up + 1, dtype=float)
    x_dn = np.arange(P_dn + 1, dtype=float)
    g_up = device.conductance(x_up, "ltp")
    g_dn = device.depressed(x_dn)
    scale = (lambda g: (g - device.gmin) / device.dG) if normalized else (lambda g: g)
    t_up = x_up
    t_dn = P_up + x_dn
    ax.plot(t_up, scale(g_up), color="C0", lw=1.8, label="LTP")
    ax.plot(t_dn, scale(g_dn), color="C3", lw=1.8, label="LTD")
    if device.variability.d2d is not None:
        rng = np.random.default_rng(seed)
        prm, const, lu, ld = device.kernel_params(n_devices, rng)
        if device.family == 0:
            P_i_dn = prm[5]
        elif device.family == 1:  # step models: each device's own branch length
            P_i_dn = (prm[1] - prm[0]) / prm[3]
        else:
            P_i_dn = np.full(n_devices, float(P_dn))
        cu = np.array(
            [
                ref.curve(device.family, np.full(n_devices, x), True, prm, const, lu, ld)
                for x in x_up
            ]
        )
        cd = np.array(
            [ref.curve(device.family, P_i_dn - x, False, prm, const, lu, ld) for x in x_dn]
        )
        for t, c, col in ((t_up, cu, "C0"), (t_dn, cd, "C3")):
            lo, hi = np.percentile(scale(c), band, axis=1)
            ax.fill_between(
                t, lo, hi, color=col, alpha=0.25, lw=0, label=f"d2d {band[0]}-{band[1]}%"
            )
    ax.set_xlabel("pulse number (LTP from Gmin, then LTD from Gmax)")
    ax.set_ylabel("normalized conductance" if normalized else "conductance [S]")
    ax.set_title(device.name or type(device).__name__)
    ax.legend(frameon=False, fontsize=8)
    return ax


def plot_array_state(array, ax=None, *, bins: int = 50):
    """Histogram of the normalized conductances of every device in a :class:`DeviceArray`.

    Parameters
    ----------
    array : DeviceArray
    ax : matplotlib.axes.Axes, optional
    bins : int

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = _axes(ax)
    dev = array.device
    g = (array.conductances - dev.gmin) / dev.dG
    labels = ["G+", "G-"] if array.n_per_synapse == 2 else ["G"]
    for k, lab in enumerate(labels):
        ax.hist(g[k].ravel(), bins=bins, range=(0, 1), alpha=0.6, label=lab)
    ax.set_xlabel("normalized conductance")
    ax.set_ylabel("devices")
    ax.legend(frameon=False, fontsize=8)
    return ax


def d2d_variant(dev):
    """The device with a device-to-device spread to draw as a band, and a label; or None.

    Models that carry their own spread (the step presets) use it; exponential devices get
    ``sigma_nl=0.5`` (``specs/devices.md`` section 3).

    Parameters
    ----------
    dev : DeviceModel

    Returns
    -------
    tuple of (DeviceModel, str) or None
    """
    import dataclasses

    from .models import ExpDevice

    d2d = dev.variability.d2d
    if d2d is not None and d2d != type(d2d)():
        shown = {
            f.name: getattr(d2d, f.name)
            for f in dataclasses.fields(d2d)
            if getattr(d2d, f.name) and not isinstance(getattr(d2d, f.name), bool)
        }
        spread = ", ".join(f"{k.removeprefix('sigma_')}={v:g}" for k, v in shown.items())
        return dev, f"d2d sigma: {spread}"
    if isinstance(dev, ExpDevice):
        return dev.with_variability(sigma_nl=0.5), "d2d sigma: nl=0.5"
    return None


def save_preset_figure(name: str, path) -> None:
    """Save the zoo figure of preset ``name`` to ``path`` (PNG): the nominal response, plus a
    panel with a device-to-device band where one applies (:func:`d2d_variant`).

    Parameters
    ----------
    name : str
        Preset name.
    path : str or Path
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from .presets import get, short_citation

    dev = get(name)
    nominal = dev.with_variability(d2d=None)
    spread = d2d_variant(dev)
    fig = Figure(figsize=(10 if spread else 5.5, 3.8), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2 if spread else 1, sharey=True, squeeze=False)[0]
    plot_response(nominal, ax=axes[0])
    axes[0].set_title("nominal")
    if spread:
        model, label = spread
        plot_response(model, ax=axes[1], seed=0)
        axes[1].set_title(label)
    fig.suptitle(f"{name} ({type(dev).__name__}): {short_citation(dev.citation, 60)}")
    fig.savefig(path, dpi=100)
