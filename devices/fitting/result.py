"""What :func:`devices.fitting.fit` returns: :class:`FitResult`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..models import ExpDevice, LUTDevice
from ._estimators import curve_at
from .model_dict import model_to_dict


# ----------------------------------------------------------------------------- result
@dataclass(frozen=True)
class FitResult:
    """What :func:`fit` found.

    Attributes
    ----------
    model : ExpDevice
        The fitted nominal device: labels, levels, range, ``c2c`` noise and (several devices)
        the device-to-device spread. Use it like a preset (``devices.DeviceArray(shape,
        result.model)``, ``dataclasses.replace``).
    lut : LUTDevice
        The look-up-table alternative (cycle-averaged, monotone), with the same variability
        (``c2c`` re-estimated on the table's own one-step residuals).
    device_models : tuple of ExpDevice
        One fitted model per device (in the order of :attr:`device_ids`).
    device_ids : tuple of str
    device_se : tuple of dict
        Standard errors of each device's fit (keys as :attr:`se`).
    se : dict
        Standard errors of the nominal ``gmin``, ``gmax`` [S], ``nl_ltp``, ``nl_ltd``,
        ``c2c_sigma`` (one device: from the likelihood; several: the standard error of the mean
        over devices). 0 where a value is exact (noise-free data, or a bound pinned at readings
        clipped there); NaN where not computed (the curve parameters of ``method="curve"``
        on noisy data: its residuals are correlated along a sweep). A bound the readings never
        reach is estimated at (or just beyond) the extreme reading, like any end point
        estimated from data; its standard error then understates the uncertainty.
    goodness : dict
        ``{"exp": {branch: {...}}, "lut": {...}}``; per branch ``rmse`` [S] and ``r2`` of the
        readings against the noise-free curve, ``rmse_step`` [S] and ``r2_step`` of the one-step
        prediction of each conductance change, and ``n`` readings.
    method : str
    sweeps : tuple
        The readings (for :meth:`plot`).
    """

    model: ExpDevice
    lut: LUTDevice
    device_models: tuple
    device_ids: tuple
    device_se: tuple
    se: dict
    goodness: dict
    method: str
    sweeps: tuple = field(repr=False)

    @property
    def params(self) -> dict:
        """The fitted nominal parameters as a flat dict (JSON-able)."""
        m = self.model
        d2d = m.variability.d2d
        return {
            "gmin": m.gmin,
            "gmax": m.gmax,
            "levels_ltp": m.levels_ltp,
            "levels_ltd": m.levels_ltd,
            "nl_ltp": m.nl_ltp,
            "nl_ltd": m.nl_ltd,
            "a_ltp": m.a_ltp,
            "a_ltd": m.a_ltd,
            "c2c_sigma": m.variability.c2c_sigma,
            "sigma_nl": d2d.sigma_nl if d2d else 0.0,
            "sigma_gmin": d2d.sigma_gmin if d2d else 0.0,
            "sigma_gmax": d2d.sigma_gmax if d2d else 0.0,
            "n_devices": len(self.device_ids),
        }

    def to_dict(self) -> dict:
        """JSON-able record: parameters, standard errors, goodness of fit, and the
        descriptions of the fitted models (:meth:`devices.DeviceModel.describe`), and the
        fitted model as :func:`devices.fitting.model_to_dict` (``model_dict``: what
        ``synapse-sim train --device FIT.json`` and :func:`devices.fitting.load_model` read)."""
        return {
            "method": self.method,
            "params": self.params,
            "se": {k: float(v) for k, v in self.se.items()},
            "goodness": self.goodness,
            "device_ids": list(self.device_ids),
            "model": self.model.describe(),
            "model_dict": model_to_dict(self.model),
            "lut": self.lut.describe(),
            "device_models": [m.describe() for m in self.device_models],
        }

    def summary(self) -> str:
        """A few lines of text: parameters with standard errors, and goodness of fit."""
        p, se = self.params, self.se
        lines = [
            f"fitted {self.model.name!r} ({self.method}; {p['n_devices']} device(s), "
            f"{sum(1 for s in self.sweeps)} sweeps)",
            f"  Gmin = {p['gmin']:.4e} S +- {se['gmin']:.1e}   Gmax = {p['gmax']:.4e} S "
            f"+- {se['gmax']:.1e}",
            f"  levels LTP/LTD = {p['levels_ltp']} / {p['levels_ltd']}",
            f"  NL LTP = {p['nl_ltp']:+.3f} +- {se['nl_ltp']:.3f}   NL LTD = {p['nl_ltd']:+.3f} "
            f"+- {se['nl_ltd']:.3f}   (a = {p['a_ltp']:.4g} / {p['a_ltd']:.4g})",
            f"  c2c sigma = {p['c2c_sigma']:.4f} +- {se['c2c_sigma']:.4f} (fraction of range)",
        ]
        if p["n_devices"] > 1:
            lines.append(
                f"  d2d: sigma_nl = {p['sigma_nl']:.3f}, sigma_gmin = {p['sigma_gmin']:.3f}, "
                f"sigma_gmax = {p['sigma_gmax']:.3f}"
            )
        for kind in ("exp", "lut"):
            for b in ("ltp", "ltd"):
                g = self.goodness[kind][b]
                extra = (
                    f", step RMSE {g['rmse_step']:.3e} S, step R^2 {g['r2_step']:.4f}"
                    if "r2_step" in g
                    else ""
                )
                lines.append(
                    f"  {kind} {b.upper()}: RMSE {g['rmse']:.3e} S, R^2 {g['r2']:.4f}{extra}"
                )
        return "\n".join(lines)

    def plot(self, ax=None, *, normalized: bool = False):
        """Readings vs the fitted curves (LTP pulses, then LTD pulses on one axis).

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
        normalized : bool
            Plot ``(G - Gmin) / (Gmax - Gmin)`` of the nominal model instead of siemens.

        Returns
        -------
        matplotlib.axes.Axes
        """
        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(6, 3.8))
        m = self.model
        scale = (lambda g: (g - m.gmin) / m.dG) if normalized else (lambda g: g)
        P1 = m.levels_ltp
        off = {"ltp": 0, "ltd": P1}
        first = True
        for s in self.sweeps:
            ax.plot(
                off[s.branch] + s.pulses,
                scale(s.g),
                ".",
                ms=2.5,
                color="0.55",
                alpha=0.6,
                label="measured" if first else None,
            )
            first = False
        many = len(self.device_models) > 1
        if many:
            for dm in self.device_models:
                for b, c in (("ltp", "C0"), ("ltd", "C3")):
                    x = np.linspace(0, dm.levels(b), 200)
                    ax.plot(off[b] + x, scale(curve_at(dm, b, x)), color=c, lw=0.6, alpha=0.4)
        for b, c in (("ltp", "C0"), ("ltd", "C3")):
            x = np.linspace(0, m.levels(b), 400)
            ax.plot(
                off[b] + x,
                scale(curve_at(m, b, x)),
                color=c,
                lw=2.0,
                label=f"exp fit {b.upper()} (NL {getattr(m, 'nl_' + b):+.2f})",
            )
            xl = np.arange(self.lut.levels(b) + 1)
            ax.plot(
                off[b] + xl,
                scale(curve_at(self.lut, b, xl)),
                "--",
                color=c,
                lw=1.0,
                label=f"table {b.upper()}",
            )
        ax.set_xlabel("pulse number (LTP sweep, then LTD sweep)")
        ax.set_ylabel("normalized conductance" if normalized else "conductance [S]")
        ax.set_title(m.name or "fitted device")
        ax.legend(frameon=False, fontsize=7)
        return ax
