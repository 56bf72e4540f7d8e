"""Fit a device preset to measured potentiation/depression cycles (``specs/devices.md`` s.1-3).

A measurement is a set of *sweeps*: an LTP sweep reads the conductance after 0, 1, 2, ...
identical potentiation pulses, an LTD sweep after 0, 1, 2, ... depression pulses (pulse numbers
count from the start of the sweep; 0 is the state before its first pulse, and readings may skip
pulses). Several cycles and several devices may be given.

What is fitted
--------------
The exponential NL-label model of :class:`devices.ExpDevice`: one ``Gmin``/``Gmax`` pair, and
per branch the pulse count ``P_b`` (the largest pulse number of that branch's sweeps unless
given) and the shape ``a_b = A_b / P_b``, reported as the NeuroSim label ``NL_b`` through the
same mapping as :mod:`devices.nl`. The LTP sweep follows ``f_LTP(p)`` from Gmin and the LTD
sweep walks ``f_LTD`` back from Gmax.

Two estimators (``method``):

``"markov"`` (default)
    The model's own noise: a write moves the state along its branch and adds
    ``c2c_sigma * dG * N(0, 1)`` per pulse, then clips to ``[Gmin, Gmax]``, so a sweep is a Markov
    chain and the mean of the next reading given the present one is exact,
    ``mu = f_b(clip(f_b^-1(G) +- n, 0, P_b))``. The parameters and ``c2c_sigma`` maximize the
    likelihood of every one-step transition (Gaussian, censored where readings sit exactly at a
    clipped bound), starting from the curve fit below. This is unbiased where the curve fit is
    not: with cycle-to-cycle noise the *mean* sweep never reaches the bounds (readings are
    clipped there and pulled back), so a curve through the data underestimates the range.
    Standard errors come from the Gauss-Newton information of the transitions.
``"curve"``
    Least squares of every reading against the noise-free curve (the usual NeuroSim-style fit);
    right for a reproducible curve seen through read noise. ``c2c_sigma`` is still estimated
    from the one-step residuals (in the model's units) at the fitted parameters.

Noise-free data (readings on the curve to 1e-9 of the range) are fitted by the curve fit alone,
which is then exact.

Several devices: every device is fitted on its own sweeps; the nominal model takes the mean
labels and range, the pooled ``c2c_sigma``, and a device-to-device spread
(:class:`devices.DeviceToDevice`): ``sigma_nl`` from the spread of the labels of both branches
(less the mean squared standard error of a label, so that estimation noise is not counted as
spread) and relative ``sigma_gmin``/``sigma_gmax``. A spread of the pulse counts is not
estimated (every device shares the measurement protocol).

The alternative look-up-table model (:class:`devices.LUTDevice`) is the cycle-averaged curve at
every integer pulse number (missing pulse numbers interpolated), made monotone by isotonic
regression; with strong cycle-to-cycle noise it inherits the range bias of a mean curve.

CSV layout (:func:`read_csv`, :func:`write_csv`, :func:`fit_csv`)
----------------------------------------------------------------
One reading per row, a header line, ``#`` comment lines allowed::

    device,cycle,branch,pulse,conductance
    d0,0,ltp,0,1.02e-06
    d0,0,ltp,1,1.31e-06
    ...
    d0,0,ltd,0,9.97e-06

``device`` (any label; optional column, default one device) and ``cycle`` (integer; optional,
default 0) name the sweep together with ``branch`` (``ltp``/``ltd``, also ``potentiation`` /
``depression``, any case); ``pulse`` is the pulse number within the sweep (integer >= 0);
``conductance`` is in siemens.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
from dataclasses import dataclass, field

import numpy as np

from .models import DeviceModel, ExpDevice, LUTDevice
from .nl import NL_MAX, a_from_nl, nl_from_a
from .validation import check_choice, check_int, check_real
from .variability import CycleToCycle, DeviceToDevice, Variability

__all__ = [
    "FitResult",
    "fit",
    "fit_csv",
    "read_csv",
    "write_csv",
    "sample_cycles",
    "CSV_COLUMNS",
    "METHODS",
]

#: Columns of the CSV layout (``device`` and ``cycle`` are optional).
CSV_COLUMNS = ("device", "cycle", "branch", "pulse", "conductance")
#: Estimators of :func:`fit`.
METHODS = ("markov", "curve")

_BRANCH_ALIASES = {"ltp": "ltp", "potentiation": "ltp", "ltd": "ltd", "depression": "ltd"}
#: Largest |k| = 1/|a| allowed (NL = 9, the end of the label range).
_K_MAX = 1.0 / abs(a_from_nl(NL_MAX))
_K_LIN = 1e-6  # below this |k| the response uses its second-order series (smooth through 0)
_NOISE_FREE = 1e-9  # rms curve residual (fraction of the range) below which data are exact
_MIN_POINTS = 3  # readings per branch


# ----------------------------------------------------------------------------- the curve
def _resp(u, k):
    """Normalized response ``g(u) = expm1(-k u) / expm1(-k)`` with ``k = 1/a`` (series near 0)."""
    if abs(k) < _K_LIN:
        return u + 0.5 * k * u * (1.0 - u)
    return np.expm1(-k * u) / math.expm1(-k)


def _resp_inv(g, k):
    """Inverse of :func:`_resp` on ``g`` in [0, 1]."""
    if abs(k) < _K_LIN:
        return g - 0.5 * k * g * (1.0 - g)
    with np.errstate(divide="ignore"):  # g = 1 at the largest |k|: -inf -> u = inf, clipped
        return -np.log1p(g * math.expm1(-k)) / k


def _nl_from_k(k: float) -> float:
    if abs(k) < 1e-12:
        return 0.0
    return float(np.clip(nl_from_a(1.0 / k), -NL_MAX, NL_MAX))


# ----------------------------------------------------------------------------- input
@dataclass(frozen=True)
class _Sweep:
    branch: str
    pulses: np.ndarray
    g: np.ndarray
    device: str


def _sweep_list(name, value) -> list:
    """One sweep (1-D), several (list of 1-D or a 2-D array) -> list of 1-D float arrays."""
    if isinstance(value, np.ndarray) and value.ndim == 2:
        return [np.asarray(r, dtype=np.float64) for r in value]
    if isinstance(value, (list, tuple)) and value and np.ndim(value[0]) == 1:
        return [np.asarray(v, dtype=np.float64) for v in value]
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a sequence of numbers, got {value!r:.80}") from None
    if arr.ndim != 1:
        raise ValueError(
            f"{name} must be one sweep (1-D) or a list of sweeps, got shape {arr.shape}"
        )
    return [arr]


def _sweeps(branch, pulses, g, ids) -> list[_Sweep]:
    pn, gn = f"pulses_{branch}", f"g_{branch}"
    ps, gs = _sweep_list(pn, pulses), _sweep_list(gn, g)
    if len(ps) != len(gs):
        raise ValueError(f"{pn} has {len(ps)} sweeps but {gn} has {len(gs)}")
    if ids is None:
        ids = ["0"] * len(ps)
    ids = [str(i) for i in ids]
    if len(ids) != len(ps):
        raise ValueError(
            f"device ids for {branch} must name each of its {len(ps)} sweeps, got {len(ids)} ids"
        )
    out = []
    for j, (p, gv) in enumerate(zip(ps, gs, strict=True)):
        where = f" (sweep {j})" if len(ps) > 1 else ""
        if p.shape != gv.shape:
            raise ValueError(
                f"{pn} and {gn} must have the same length{where}, got {p.size} and {gv.size}"
            )
        if not np.all(np.isfinite(p)):
            raise ValueError(f"{pn} must be finite (no NaN/inf){where}")
        if not np.all(np.isfinite(gv)):
            raise ValueError(f"{gn} must be finite (no NaN/inf){where}")
        if np.any(p < 0) or np.any(p != np.round(p)):
            raise ValueError(f"{pn} must be whole pulse numbers >= 0{where}")
        if np.any(np.diff(p) <= 0):
            raise ValueError(
                f"{pn} must be strictly increasing within a sweep{where}, got "
                f"{p[:8].tolist()}{'...' if p.size > 8 else ''}"
            )
        if np.any(gv < 0):
            raise ValueError(f"{gn} must be conductances >= 0 (siemens){where}")
        out.append(_Sweep(branch, p, gv, ids[j]))
    n = sum(s.pulses.size for s in out)
    if n < _MIN_POINTS:
        raise ValueError(f"{gn} has {n} readings in all; at least {_MIN_POINTS} are needed")
    return out


# ----------------------------------------------------------------------------- one device
@dataclass
class _Data:
    """Readings of one device in normalized units ``y = (G - lo) / (hi - lo)``."""

    lo: float
    hi: float
    P: tuple  # (P_ltp, P_ltd)
    curve: dict  # branch -> (pulse coordinate on the rising curve, y)
    trans: dict  # branch -> (y0, y1, n pulses)

    @property
    def scale(self):
        return self.hi - self.lo


def _prepare(sweeps, P):
    g_all = np.concatenate([s.g for s in sweeps])
    lo, hi = float(g_all.min()), float(g_all.max())
    if not hi > lo:
        raise ValueError("the conductances of a device are all equal; nothing to fit")
    curve, trans = {}, {}
    for b, Pb in zip(("ltp", "ltd"), P, strict=True):
        ss = [s for s in sweeps if s.branch == b]
        x = np.concatenate([s.pulses for s in ss])
        if b == "ltd":
            x = Pb - x
        y = (np.concatenate([s.g for s in ss]) - lo) / (hi - lo)
        curve[b] = (x, y)
        t = [(s.g[:-1], s.g[1:], np.diff(s.pulses)) for s in ss if s.g.size > 1]
        y0 = (np.concatenate([a for a, _, _ in t]) - lo) / (hi - lo) if t else np.zeros(0)
        y1 = (np.concatenate([c for _, c, _ in t]) - lo) / (hi - lo) if t else np.zeros(0)
        n = np.concatenate([d for _, _, d in t]) if t else np.zeros(0)
        trans[b] = (y0, y1, n)
    return _Data(lo, hi, tuple(P), curve, trans)


def _curve_y(theta, b, x, P):
    gmin, gmax, k1, k2 = theta[:4]
    k = k1 if b == "ltp" else k2
    return gmin + (gmax - gmin) * _resp(np.clip(x / P, 0.0, 1.0), k)


def _step_mu(theta, b, y0, n, P):
    """Mean of the next reading after ``n`` pulses from ``y0`` (the model's write rule)."""
    gmin, gmax, k1, k2 = theta[:4]
    d = gmax - gmin
    k = k1 if b == "ltp" else k2
    u0 = _resp_inv(np.clip((y0 - gmin) / d, 0.0, 1.0), k)
    u1 = np.clip(u0 + (n if b == "ltp" else -n) / P, 0.0, 1.0)
    return gmin + d * _resp(u1, k)


def _curve_resid(theta, data):
    return np.concatenate(
        [
            _curve_y(theta, b, x, Pb) - y
            for (b, (x, y)), Pb in zip(data.curve.items(), data.P, strict=True)
        ]
    )


def _fit_curve(data):
    """Least squares of the readings against the noise-free curves, from the best ``k`` of a
    grid for each branch (range at the data extremes)."""
    from scipy.optimize import least_squares

    start = [0.0, 1.0, 0.0, 0.0]
    grid = np.r_[-np.geomspace(_K_MAX, 1e-3, 60), 0.0, np.geomspace(1e-3, _K_MAX, 60)]
    for i, (b, Pb) in enumerate(zip(("ltp", "ltd"), data.P, strict=True)):
        x, y = data.curve[b]
        sse = [np.sum((_curve_y([0.0, 1.0, k, k], b, x, Pb) - y) ** 2) for k in grid]
        start[2 + i] = float(grid[int(np.argmin(sse))])
    r = least_squares(
        _curve_resid,
        start,
        args=(data,),
        bounds=([-1.0, 0.5, -_K_MAX, -_K_MAX], [0.5, 2.0, _K_MAX, _K_MAX]),
        xtol=1e-15,
        ftol=1e-15,
        gtol=1e-15,
        max_nfev=5000,
    )
    return r.x, float(np.sqrt(2.0 * r.cost / r.fun.size))


def _censored(data, tol=1e-12):
    """Bounds where readings pile up: two or more transitions that land exactly on the data
    extreme (the model clips there). Counting destinations, not readings, keeps the reading
    shared by the end of one sweep and the start of the next from counting twice."""
    y1 = np.concatenate([t[1] for t in data.trans.values()])
    return int(np.sum(y1 <= tol)) >= 2, int(np.sum(y1 >= 1.0 - tol)) >= 2


def _nll(theta, log_sigma, data, pin, jac=False):
    """Negative log-likelihood of all one-step transitions (censored Gaussian)."""
    from scipy.special import log_ndtr

    gmin, gmax = theta[0], theta[1]
    s = math.exp(log_sigma) * (gmax - gmin)
    total = 0.0
    for b, Pb in zip(("ltp", "ltd"), data.P, strict=True):
        y0, y1, n = data.trans[b]
        if y0.size == 0:
            continue
        mu = _step_mu(theta, b, y0, n, Pb)
        st = s * np.sqrt(n)
        z = (y1 - mu) / st
        lo = (y1 <= gmin + 1e-12) if pin[0] else np.zeros(y1.size, bool)
        hi = (y1 >= gmax - 1e-12) if pin[1] else np.zeros(y1.size, bool)
        mid = ~(lo | hi)
        total += np.sum(np.log(st[mid]) + 0.5 * z[mid] ** 2)
        total -= np.sum(log_ndtr(z[lo])) + np.sum(log_ndtr(-z[hi]))
    return float(total)


def _sigma_mle(theta, data, pin, start):
    """c2c sigma (fraction of the range) maximizing the likelihood at fixed curve parameters."""
    from scipy.optimize import minimize_scalar

    r = minimize_scalar(
        lambda ls: _nll(theta, ls, data, pin),
        bounds=(start - 6.0, start + 6.0),
        method="bounded",
        options={"xatol": 1e-10},
    )
    return float(r.x)


def _step_rms(theta, data):
    """RMS of the one-step residuals per sqrt(pulse), as a fraction of the fitted range."""
    r = []
    for b, Pb in zip(("ltp", "ltd"), data.P, strict=True):
        y0, y1, n = data.trans[b]
        if y0.size:
            r.append((y1 - _step_mu(theta, b, y0, n, Pb)) / np.sqrt(n))
    r = np.concatenate(r) if r else np.zeros(1)
    return float(np.sqrt(np.mean(r**2)) / (theta[1] - theta[0]))


def _fit_markov(data, theta0):
    """Maximum likelihood of the transitions; bounds enter through smooth transforms
    (``gmin = -exp(v) <= 0``, ``gmax = 1 + exp(v)``, ``k = K_MAX tanh(v)``) so that BFGS runs
    unconstrained. A bound where readings pile up is pinned there (censored readings)."""
    from scipy.optimize import minimize

    pin = _censored(data)
    th = np.array(theta0, dtype=float)
    # free bounds start well outside the readings: near the readings the transform's slope
    # vanishes (a start at gmax = 1 + 1e-6 would stay there)
    th[0] = 0.0 if pin[0] else min(th[0], -0.05)
    th[1] = 1.0 if pin[1] else max(th[1], 1.05)
    free = [i for i in range(4) if not (i < 2 and pin[i])]
    ls0 = math.log(max(_step_rms(th, data), 1e-12))

    def to_v(t):
        fw = {
            0: lambda g: math.log(-g),
            1: lambda g: math.log(g - 1.0),
            2: lambda k: math.atanh(np.clip(k / _K_MAX, -0.999999, 0.999999)),
        }
        return [fw[min(i, 2)](t[i]) for i in free]

    def unpack(v):
        t = th.copy()
        for j, i in enumerate(free):
            t[i] = (-math.exp(v[j]), 1.0 + math.exp(v[j]), _K_MAX * math.tanh(v[j]))[min(i, 2)]
        return t, v[-1]

    def obj(v):
        if not np.all(np.isfinite(v)) or np.any(np.abs(v[:-1]) > 50):
            return np.inf
        t, ls = unpack(v)
        return _nll(t, ls, data, pin)

    best = None
    for start in (th, *_k_starts(th)):
        r = minimize(obj, np.append(to_v(start), ls0), method="BFGS", options={"gtol": 1e-8})
        if np.isfinite(r.fun) and (best is None or r.fun < best.fun):
            best = r
    theta, log_sigma = unpack(best.x)
    log_sigma = _sigma_mle(theta, data, pin, log_sigma)
    return theta, math.exp(log_sigma), pin, free


def _k_starts(th):
    """Extra starts for the likelihood search (the curve fit can sit in a biased basin)."""
    for k1, k2 in ((th[2], -th[3]), (-th[2], th[3])):
        t = th.copy()
        t[2], t[3] = k1, k2
        yield t


def _se(theta, sigma, data, free):
    """Standard errors of the free curve parameters (Gauss-Newton information of the
    transitions) and of sigma (``sigma / sqrt(2 n)``)."""
    s = sigma * (theta[1] - theta[0])
    rows = []
    for b, Pb in zip(("ltp", "ltd"), data.P, strict=True):
        y0, y1, n = data.trans[b]
        if y0.size == 0:
            continue
        J = np.empty((y0.size, len(free)))
        for j, i in enumerate(free):
            h = 1e-6 * max(1.0, abs(theta[i]))
            tp, tm = theta.copy(), theta.copy()
            tp[i] += h
            tm[i] -= h
            J[:, j] = (_step_mu(tp, b, y0, n, Pb) - _step_mu(tm, b, y0, n, Pb)) / (2 * h)
        rows.append(J / (s * np.sqrt(n))[:, None])
    J = np.concatenate(rows)
    cov = np.full((4, 4), 0.0)
    try:
        sub = np.linalg.pinv(J.T @ J)
    except np.linalg.LinAlgError:  # pragma: no cover - pinv does not raise on finite input
        sub = np.full((len(free), len(free)), np.inf)
    cov[np.ix_(free, free)] = sub
    n_tr = J.shape[0]
    return cov, sigma / math.sqrt(2.0 * n_tr)


@dataclass(frozen=True)
class _DeviceFit:
    device_id: str
    model: ExpDevice
    se: dict
    n_transitions: int
    pinned: tuple


def _fit_one(sweeps, P, method, name) -> _DeviceFit:
    data = _prepare(sweeps, P)
    theta, rms = _fit_curve(data)
    n_tr = sum(t[0].size for t in data.trans.values())
    pin = (False, False)
    se_n = np.zeros((4, 4))
    se_sigma = 0.0
    if rms < _NOISE_FREE:
        sigma = 0.0
    elif method == "markov" and n_tr >= 5:
        theta, sigma, pin, free = _fit_markov(data, theta)
        se_n, se_sigma = _se(theta, sigma, data, free)
    else:  # curve fit with noise: no standard errors for the curve parameters
        se_n = np.full((4, 4), np.nan)
        pin = _censored(data)
        sigma = math.exp(_sigma_mle(theta, data, pin, math.log(max(_step_rms(theta, data), 1e-12))))
        if n_tr:
            se_sigma = sigma / math.sqrt(2.0 * n_tr)
    sc, lo = data.scale, data.lo
    g0, g1 = lo + sc * theta[0], lo + sc * theta[1]
    nl1, nl2 = _nl_from_k(theta[2]), _nl_from_k(theta[3])
    var = Variability(c2c=CycleToCycle(sigma=sigma)) if sigma > 0 else Variability()
    model = ExpDevice(
        gmin=max(g0, 0.0),
        gmax=g1,
        levels_ltp=P[0],
        levels_ltd=P[1],
        nl_ltp=nl1,
        nl_ltd=nl2,
        variability=var,
        name=name,
        citation="fitted to measurements (devices.fitting.fit)",
    )
    sd = np.sqrt(np.maximum(np.diag(se_n), 0.0))  # NaN (not computed) stays NaN
    se = {
        "gmin": sc * sd[0],
        "gmax": sc * sd[1],
        "nl_ltp": _nl_se(theta[2], sd[2]),
        "nl_ltd": _nl_se(theta[3], sd[3]),
        "c2c_sigma": se_sigma,
    }
    return _DeviceFit(sweeps[0].device, model, se, n_tr, pin)


def _nl_se(k, sd_k):
    """Delta-method standard error of a label from the standard error of ``k = 1/a``."""
    if sd_k == 0 or math.isnan(sd_k):
        return float(sd_k)
    h = 1e-5
    lo, hi = max(k - h, -_K_MAX), min(k + h, _K_MAX)
    return abs(_nl_from_k(hi) - _nl_from_k(lo)) / (hi - lo) * sd_k


# ----------------------------------------------------------------------------- table model
def _pava(y, w):
    """Weighted isotonic (non-decreasing) regression by pool-adjacent-violators."""
    vals, wts, cnt = [], [], []
    for v, ww in zip(y, w, strict=True):
        vals.append(v)
        wts.append(ww)
        cnt.append(1)
        while len(vals) > 1 and vals[-2] > vals[-1]:
            v2, w2, c2 = vals.pop(), wts.pop(), cnt.pop()
            vals[-1] = (vals[-1] * wts[-1] + v2 * w2) / (wts[-1] + w2)
            wts[-1] += w2
            cnt[-1] += c2
    return np.repeat(vals, cnt)


def _mean_curve(sweeps, P):
    """Mean conductance at every pulse number 0..P of a branch (pulse numbers of the sweep)."""
    grid = np.arange(P + 1, dtype=float)
    acc, cnt = np.zeros(P + 1), np.zeros(P + 1)
    for s in sweeps:
        inside = (grid >= s.pulses[0]) & (grid <= s.pulses[-1])
        acc[inside] += np.interp(grid[inside], s.pulses, s.g)
        cnt[inside] += 1
    have = cnt > 0
    return np.interp(grid, grid[have], acc[have] / cnt[have]), np.maximum(cnt, 1e-9)


def _lut(sweeps, P, name, var):
    up_s = [s for s in sweeps if s.branch == "ltp"]
    dn_s = [s for s in sweeps if s.branch == "ltd"]
    up, wu = _mean_curve(up_s, P[0])
    dn, wd = _mean_curve(dn_s, P[1])
    span = max(up.max(), dn.max()) - min(up.min(), dn.min())
    eps = 1e-9 * span  # splits ties of the isotonic fit so the table is strictly monotone
    up = _pava(up, wu) + eps * np.arange(up.size)
    dn = -_pava(-dn, wd) - eps * np.arange(dn.size)
    return LUTDevice(
        ltp=tuple(up),
        ltd=tuple(dn),
        variability=var,
        name=f"{name}_lut",
        citation="look-up table of measurements (devices.fitting.fit)",
    )


# ----------------------------------------------------------------------------- goodness
def _curve_of(model: DeviceModel, branch, p):
    if branch == "ltp":
        return model.conductance(np.clip(p, 0, model.branch_length("ltp")), "ltp")
    return model.depressed(np.clip(p, 0, model.branch_length("ltd")))


def _step_of(model: DeviceModel, branch, g0, n):
    L = model.branch_length(branch)
    x0 = model.pulses(np.clip(g0, model.gmin, model.gmax), branch)
    x1 = np.clip(x0 + (n if branch == "ltp" else -n), 0.0, L)
    return model.conductance(x1, branch)


def _r2(y, pred):
    ss = float(np.sum((y - y.mean()) ** 2))
    res = float(np.sum((y - pred) ** 2))
    return 1.0 - res / ss if ss > 0 else (1.0 if res == 0 else -math.inf)


def _goodness(sweeps_by_model) -> dict:
    """RMSE [S] and R^2 of the noise-free curve and of the one-step prediction, per branch."""
    out = {}
    for b in ("ltp", "ltd"):
        y, pc, d1, dp = [], [], [], []
        for mdl, sweeps in sweeps_by_model:
            for s in (s for s in sweeps if s.branch == b):
                y.append(s.g)
                pc.append(_curve_of(mdl, b, s.pulses))
                if s.g.size > 1:
                    d1.append(np.diff(s.g))
                    dp.append(_step_of(mdl, b, s.g[:-1], np.diff(s.pulses)) - s.g[:-1])
        y, pc = np.concatenate(y), np.concatenate(pc)
        rec = {"rmse": float(np.sqrt(np.mean((y - pc) ** 2))), "r2": _r2(y, pc)}
        if d1:
            d1, dp = np.concatenate(d1), np.concatenate(dp)
            rec["rmse_step"] = float(np.sqrt(np.mean((d1 - dp) ** 2)))
            rec["r2_step"] = _r2(d1, dp)
        rec["n"] = int(y.size)
        out[b] = rec
    return out


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
        descriptions of the fitted models (:meth:`devices.DeviceModel.describe`)."""
        return {
            "method": self.method,
            "params": self.params,
            "se": {k: float(v) for k, v in self.se.items()},
            "goodness": self.goodness,
            "device_ids": list(self.device_ids),
            "model": self.model.describe(),
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
                    ax.plot(off[b] + x, scale(_curve_of(dm, b, x)), color=c, lw=0.6, alpha=0.4)
        for b, c in (("ltp", "C0"), ("ltd", "C3")):
            x = np.linspace(0, m.levels(b), 400)
            ax.plot(
                off[b] + x,
                scale(_curve_of(m, b, x)),
                color=c,
                lw=2.0,
                label=f"exp fit {b.upper()} (NL {getattr(m, 'nl_' + b):+.2f})",
            )
            xl = np.arange(self.lut.levels(b) + 1)
            ax.plot(
                off[b] + xl,
                scale(_curve_of(self.lut, b, xl)),
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
    up = _sweeps("ltp", pulses_ltp, g_ltp, device_ids)
    dn = _sweeps("ltd", pulses_ltd, g_ltd, device_ids_ltd)
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
            if n_b < _MIN_POINTS:
                raise ValueError(
                    f"device {i!r} has {n_b} {b.upper()} readings; at least {_MIN_POINTS} are "
                    f"needed (g_{b})"
                )
        fits.append(_fit_one(ss, tuple(P), method, f"{name}_{i}"))
    model, se = _combine(fits, tuple(P), name)
    d2d = model.variability.d2d  # a table model takes only the range part of the spread
    lut_var = Variability(
        c2c=model.variability.c2c,
        d2d=None
        if d2d is None
        else DeviceToDevice(sigma_gmin=d2d.sigma_gmin, sigma_gmax=d2d.sigma_gmax),
    )
    lut = _lut(up + dn, tuple(P), name, lut_var)
    lut = _with_c2c(lut, [(lut, up + dn)])
    by_dev = [(f.model, [s for s in up + dn if s.device == f.device_id]) for f in fits]
    # the exponential model is judged device by device (each against its own fit)
    good = {"exp": _goodness(by_dev), "lut": _goodness([(lut, up + dn)])}
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
                r.append((s.g[1:] - _step_of(mdl, s.branch, s.g[:-1], n)) / np.sqrt(n))
    if not r:
        return model
    sigma = float(np.sqrt(np.mean(np.concatenate(r) ** 2)) / model.dG)
    if sigma < _NOISE_FREE:
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


# ----------------------------------------------------------------------------- data
def sample_cycles(
    model: DeviceModel,
    *,
    n_cycles: int = 1,
    n_devices: int = 1,
    seed: int | None = 0,
    every: int = 1,
) -> dict:
    """Measured-style cycles of a model, driven pulse by pulse through a :class:`DeviceArray`.

    Each device first receives ``levels_ltd`` single depression pulses (to start near Gmin),
    then every cycle ``levels_ltp`` single potentiation pulses and ``levels_ltd`` single
    depression pulses, read after every ``every``-th pulse (and at pulse 0). Device-to-device
    spread and cycle-to-cycle noise of the model apply (one array, reference mapping, numpy
    backend).

    Parameters
    ----------
    model : DeviceModel
    n_cycles, n_devices : int
    seed : int or None
        Seed of the array (device draws and write noise).
    every : int
        Read after every this many pulses.

    Returns
    -------
    dict
        ``pulses_ltp``, ``g_ltp``, ``pulses_ltd``, ``g_ltd`` (lists of sweeps) and
        ``device_ids``; ``fit(**data)`` fits it.
    """
    from .array import DeviceArray

    n_cycles = check_int("n_cycles", n_cycles, lo=1)
    n_devices = check_int("n_devices", n_devices, lo=1)
    every = check_int("every", every, lo=1)
    arr = DeviceArray((1, n_devices), model, mapping="reference", seed=seed, backend="numpy")
    P1, P2 = model.levels("ltp"), model.levels("ltd")
    one = np.ones((1, n_devices), dtype=np.int64)
    for _ in range(P2):
        arr.pulse(-one)
    out = {"pulses_ltp": [], "g_ltp": [], "pulses_ltd": [], "g_ltd": [], "device_ids": []}
    for _ in range(n_cycles):
        for b, P, sign in (("ltp", P1, 1), ("ltd", P2, -1)):
            reads = [arr.conductances[0, 0].copy()]
            for p in range(1, P + 1):
                arr.pulse(sign * one)
                if p % every == 0 or p == P:
                    reads.append(arr.conductances[0, 0].copy())
            pulses = np.unique(np.r_[np.arange(0, P + 1, every), P]).astype(float)
            G = np.array(reads).T
            out[f"pulses_{b}"] += [pulses.copy() for _ in range(n_devices)]
            out[f"g_{b}"] += list(G)
        out["device_ids"] += [f"d{i}" for i in range(n_devices)]
    return out


def write_csv(path, data: dict) -> None:
    """Write sweeps (the dict of :func:`sample_cycles`) in the CSV layout of this module."""
    ids = data.get("device_ids") or ["0"] * len(data["g_ltp"])
    ids_ltd = data.get("device_ids_ltd") or ids
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(CSV_COLUMNS)
        for b, dev_ids in (("ltp", ids), ("ltd", ids_ltd)):
            cycle: dict = {}
            for p, g, d in zip(data[f"pulses_{b}"], data[f"g_{b}"], dev_ids, strict=True):
                c = cycle[d] = cycle.get(d, -1) + 1
                for pv, gv in zip(p, g, strict=True):
                    w.writerow([d, c, b, int(pv), f"{gv:.9g}"])


def read_csv(path) -> dict:
    """Read the CSV layout of this module into the keyword arguments of :func:`fit`.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    dict
        ``pulses_ltp``, ``g_ltp``, ``pulses_ltd``, ``g_ltd``, ``device_ids``,
        ``device_ids_ltd``.
    """
    path = os.fspath(path)
    with open(path, newline="") as fh:
        lines = [ln for ln in fh if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise ValueError(f"{path}: no data (expected a header {','.join(CSV_COLUMNS)})")
    reader = csv.DictReader(lines)
    cols = [c.strip().lower() for c in (reader.fieldnames or [])]
    reader.fieldnames = cols
    for c in ("branch", "pulse", "conductance"):
        if c not in cols:
            raise ValueError(
                f"{path}: column {c!r} is missing; the header has {cols} "
                f"(expected {','.join(CSV_COLUMNS)})"
            )
    groups: dict = {}
    for ln, row in enumerate(reader, start=2):
        where = f"{path}, data row {ln - 1}"
        b = _BRANCH_ALIASES.get(str(row["branch"]).strip().lower())
        if b is None:
            check_choice(f"branch ({where})", str(row["branch"]).strip(), tuple(_BRANCH_ALIASES))
        try:
            pulse = float(row["pulse"])
            g = float(row["conductance"])
            cyc = int(row.get("cycle") or 0)
        except (TypeError, ValueError):
            raise ValueError(
                f"{where}: pulse, conductance and cycle must be numbers, got {row!r}"
            ) from None
        check_real(f"conductance ({where})", g, lo=0.0)
        dev = str(row.get("device") or "0").strip()
        groups.setdefault((b, dev, cyc), []).append((pulse, g))
    out = {
        "pulses_ltp": [],
        "g_ltp": [],
        "pulses_ltd": [],
        "g_ltd": [],
        "device_ids": [],
        "device_ids_ltd": [],
    }
    for (b, dev, _cyc), rows in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][2])):
        rows.sort()
        out[f"pulses_{b}"].append(np.array([r[0] for r in rows]))
        out[f"g_{b}"].append(np.array([r[1] for r in rows]))
        out["device_ids" if b == "ltp" else "device_ids_ltd"].append(dev)
    for b in ("ltp", "ltd"):
        if not out[f"g_{b}"]:
            raise ValueError(f"{path}: no {b.upper()} readings (branch column)")
    return out


def fit_csv(path, **kwargs) -> FitResult:
    """:func:`fit` on a CSV file of the layout of this module (the ``synapse-sim fit`` command).

    Parameters
    ----------
    path : str or os.PathLike
    **kwargs
        Keywords of :func:`fit` (``method``, ``levels_ltp``, ``levels_ltd``, ``name``).

    Returns
    -------
    FitResult
    """
    data = read_csv(path)
    if "name" not in kwargs:
        kwargs["name"] = os.path.splitext(os.path.basename(os.fspath(path)))[0]
    return fit(**data, **kwargs)
