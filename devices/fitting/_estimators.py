"""Estimators of :mod:`devices.fitting` (internal): the response curve, the sweeps, the
curve and Markov fits of one device, the look-up-table model and the goodness of fit."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..models import DeviceModel, ExpDevice, LUTDevice
from ..nl import NL_MAX, a_from_nl, nl_from_a
from ..variability import CycleToCycle, Variability

#: Columns of the CSV layout (``device`` and ``cycle`` are optional).
CSV_COLUMNS = ("device", "cycle", "branch", "pulse", "conductance")
#: Estimators of :func:`fit`.
METHODS = ("markov", "curve")

BRANCH_ALIASES = {"ltp": "ltp", "potentiation": "ltp", "ltd": "ltd", "depression": "ltd"}
#: Largest |k| = 1/|a| allowed (NL = 9, the end of the label range).
_K_MAX = 1.0 / abs(a_from_nl(NL_MAX))
_K_LIN = 1e-6  # below this |k| the response uses its second-order series (smooth through 0)
NOISE_FREE_RMS = 1e-9  # rms curve residual (fraction of the range) below which data are exact
MIN_POINTS = 3  # readings per branch


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


def parse_sweeps(branch, pulses, g, ids) -> list[_Sweep]:
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
    if n < MIN_POINTS:
        raise ValueError(f"{gn} has {n} readings in all; at least {MIN_POINTS} are needed")
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


def fit_device(sweeps, P, method, name) -> _DeviceFit:
    data = _prepare(sweeps, P)
    theta, rms = _fit_curve(data)
    n_tr = sum(t[0].size for t in data.trans.values())
    pin = (False, False)
    se_n = np.zeros((4, 4))
    se_sigma = 0.0
    if rms < NOISE_FREE_RMS:
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


def lut_model(sweeps, P, name, var):
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
        name=f"{name}lut_model",
        citation="look-up table of measurements (devices.fitting.fit)",
    )


# ----------------------------------------------------------------------------- goodness
def curve_at(model: DeviceModel, branch, p):
    if branch == "ltp":
        return model.conductance(np.clip(p, 0, model.branch_length("ltp")), "ltp")
    return model.depressed(np.clip(p, 0, model.branch_length("ltd")))


def step_at(model: DeviceModel, branch, g0, n):
    L = model.branch_length(branch)
    x0 = model.pulses(np.clip(g0, model.gmin, model.gmax), branch)
    x1 = np.clip(x0 + (n if branch == "ltp" else -n), 0.0, L)
    return model.conductance(x1, branch)


def _r2(y, pred):
    ss = float(np.sum((y - y.mean()) ** 2))
    res = float(np.sum((y - pred) ** 2))
    return 1.0 - res / ss if ss > 0 else (1.0 if res == 0 else -math.inf)


def goodness_of_fit(sweeps_by_model) -> dict:
    """RMSE [S] and R^2 of the noise-free curve and of the one-step prediction, per branch."""
    out = {}
    for b in ("ltp", "ltd"):
        y, pc, d1, dp = [], [], [], []
        for mdl, sweeps in sweeps_by_model:
            for s in (s for s in sweeps if s.branch == b):
                y.append(s.g)
                pc.append(curve_at(mdl, b, s.pulses))
                if s.g.size > 1:
                    d1.append(np.diff(s.g))
                    dp.append(step_at(mdl, b, s.g[:-1], np.diff(s.pulses)) - s.g[:-1])
        y, pc = np.concatenate(y), np.concatenate(pc)
        rec = {"rmse": float(np.sqrt(np.mean((y - pc) ** 2))), "r2": _r2(y, pc)}
        if d1:
            d1, dp = np.concatenate(d1), np.concatenate(dp)
            rec["rmse_step"] = float(np.sqrt(np.mean((d1 - dp) ** 2)))
            rec["r2_step"] = _r2(d1, dp)
        rec["n"] = int(y.size)
        out[b] = rec
    return out
