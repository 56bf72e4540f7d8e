"""The fit itself: :func:`fit` (one or several devices, both estimators)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..models import ExpDevice
from ..validation import check_choice, check_int
from ..variability import CycleToCycle, DeviceToDevice, Variability
from ._estimators import (
    METHODS,
    MIN_POINTS,
    NOISE_FREE_RMS,
    fit_device,
    goodness_of_fit,
    lut_model,
    parse_sweeps,
    step_at,
)
from .result import FitResult


# ----------------------------------------------------------------------------- fit
def fit(
    pulses_ltp,
    g_ltp,
    pulses_ltd,
    g_ltd,
    *,
    device_ids=None,
    device_ids_ltd=None,
    levels_ltp: int | None = None,
    levels_ltd: int | None = None,
    method: str = "markov",
    name: str = "fitted",
) -> FitResult:
    """Fit the exponential NL-label model (and a look-up table) to measured cycles.

    Parameters
    ----------
    pulses_ltp, g_ltp : array_like or list of array_like
        LTP sweeps: pulse numbers (0 = before the first pulse of the sweep, strictly increasing)
        and conductances [S]. One sweep as 1-D arrays, several as lists of 1-D arrays (or 2-D
        arrays, one sweep per row).
    pulses_ltd, g_ltd : array_like or list of array_like
        LTD sweeps, pulse numbers counting depression pulses from the start of the sweep.
    device_ids : sequence, optional
        The device of each LTP sweep (and of each LTD sweep when ``device_ids_ltd`` is not
        given; then both branches need the same number of sweeps). Default: one device.
    device_ids_ltd : sequence, optional
        The device of each LTD sweep.
    levels_ltp, levels_ltd : int, optional
        Pulse counts ``P`` of the model; default the largest pulse number of the branch.
    method : {"markov", "curve"}
        Estimator (module docstring): the likelihood of the one-step transitions under the
        model's cycle-to-cycle noise, or least squares against the noise-free curve.
    name : str
        Name of the fitted model.

    Returns
    -------
    FitResult

    Raises
    ------
    ValueError
        Lengths that differ, pulse numbers not strictly increasing or not whole numbers, NaN or
        infinite values, fewer than 3 readings in a branch, all conductances equal.

    Examples
    --------
    >>> import devices
    >>> data = devices.fitting.sample_cycles(devices.get("epiram", c2c_sigma=0))
    >>> r = devices.fit(**data)
    >>> round(r.model.nl_ltp, 6), r.model.levels_ltp
    (0.5, 64)
    """
    method = check_choice("method", method, METHODS)
    if device_ids_ltd is None:
        device_ids_ltd = device_ids
    up = parse_sweeps("ltp", pulses_ltp, g_ltp, device_ids)
    dn = parse_sweeps("ltd", pulses_ltd, g_ltd, device_ids_ltd)
    P = []
    for b, given, ss in (("ltp", levels_ltp, up), ("ltd", levels_ltd, dn)):
        top = int(max(s.pulses[-1] for s in ss))
        if given is None:
            if top < 2:
                raise ValueError(f"pulses_{b} reach pulse {top}; at least 2 pulses are needed")
            P.append(top)
        else:
            P.append(check_int(f"levels_{b}", given, lo=max(2, top), hi=10**7))
    ids = list(dict.fromkeys([s.device for s in up + dn]))
    fits = []
    for i in ids:
        ss = [s for s in up + dn if s.device == i]
        for b in ("ltp", "ltd"):
            n_b = sum(s.pulses.size for s in ss if s.branch == b)
            if n_b < MIN_POINTS:
                raise ValueError(
                    f"device {i!r} has {n_b} {b.upper()} readings; at least {MIN_POINTS} are "
                    f"needed (g_{b})"
                )
        fits.append(fit_device(ss, tuple(P), method, f"{name}_{i}"))
    model, se = _combine(fits, tuple(P), name)
    d2d = model.variability.d2d  # a table model takes only the range part of the spread
    lut_var = Variability(
        c2c=model.variability.c2c,
        d2d=None
        if d2d is None
        else DeviceToDevice(sigma_gmin=d2d.sigma_gmin, sigma_gmax=d2d.sigma_gmax),
    )
    lut = lut_model(up + dn, tuple(P), name, lut_var)
    lut = _with_c2c(lut, [(lut, up + dn)])
    by_dev = [(f.model, [s for s in up + dn if s.device == f.device_id]) for f in fits]
    # the exponential model is judged device by device (each against its own fit)
    good = {"exp": goodness_of_fit(by_dev), "lut": goodness_of_fit([(lut, up + dn)])}
    return FitResult(
        model=model,
        lut=lut,
        device_models=tuple(f.model for f in fits),
        device_ids=tuple(ids),
        device_se=tuple(dict(f.se) for f in fits),
        se=se,
        goodness=good,
        method=method,
        sweeps=tuple(up + dn),
    )


def _with_c2c(model, sweeps_by_model):
    """Copy of ``model`` with c2c sigma re-estimated by least squares of its one-step residuals."""
    r = []
    for mdl, sweeps in sweeps_by_model:
        for s in sweeps:
            if s.g.size > 1:
                n = np.diff(s.pulses)
                r.append((s.g[1:] - step_at(mdl, s.branch, s.g[:-1], n)) / np.sqrt(n))
    if not r:
        return model
    sigma = float(np.sqrt(np.mean(np.concatenate(r) ** 2)) / model.dG)
    if sigma < NOISE_FREE_RMS:
        return model.with_variability(model.variability.replace(c2c=None))
    return model.with_variability(model.variability.replace(c2c_sigma=sigma))


def _combine(fits, P, name):
    """Nominal model (and its standard errors) from one or several device fits."""
    if len(fits) == 1:
        f = fits[0]
        return dataclasses.replace(f.model, name=name), dict(f.se)
    ms = [f.model for f in fits]
    nl = np.array([[m.nl_ltp, m.nl_ltd] for m in ms])
    g0 = np.array([m.gmin for m in ms])
    g1 = np.array([m.gmax for m in ms])
    w = np.array([f.n_transitions for f in fits], dtype=float)
    s2 = np.array([m.variability.c2c_sigma for m in ms]) ** 2
    sigma = float(np.sqrt(np.sum(w * s2) / np.sum(w))) if w.sum() > 0 else 0.0
    n = len(fits)
    # spread of the labels less the part explained by estimation noise (both branches pooled)
    # (standard errors not computed, NaN for method="curve", subtract nothing)
    se_nl = np.nan_to_num(np.array([[f.se["nl_ltp"], f.se["nl_ltd"]] for f in fits]), nan=0.0)
    var_nl = np.var(nl, axis=0, ddof=1) - np.mean(se_nl**2, axis=0)
    sigma_nl = float(math.sqrt(max(float(np.mean(var_nl)), 0.0)))
    d2d = DeviceToDevice(
        sigma_nl=sigma_nl,
        sigma_gmin=float(np.std(g0, ddof=1) / g0.mean()) if g0.mean() > 0 else 0.0,
        sigma_gmax=float(np.std(g1, ddof=1) / g1.mean()),
    )
    var = Variability(c2c=CycleToCycle(sigma=sigma) if sigma > 0 else None, d2d=d2d)
    model = ExpDevice(
        gmin=float(g0.mean()),
        gmax=float(g1.mean()),
        levels_ltp=P[0],
        levels_ltd=P[1],
        nl_ltp=float(nl[:, 0].mean()),
        nl_ltd=float(nl[:, 1].mean()),
        variability=var,
        name=name,
        citation="fitted to measurements of several devices (devices.fitting.fit)",
    )
    se = {
        "gmin": float(np.std(g0, ddof=1) / math.sqrt(n)),
        "gmax": float(np.std(g1, ddof=1) / math.sqrt(n)),
        "nl_ltp": float(np.std(nl[:, 0], ddof=1) / math.sqrt(n)),
        "nl_ltd": float(np.std(nl[:, 1], ddof=1) / math.sqrt(n)),
        "c2c_sigma": float(np.std(np.sqrt(s2), ddof=1) / math.sqrt(n)),
    }
    return model, se
