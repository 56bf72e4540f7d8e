"""Plain-numpy reference kernels (the ground truth the fast kernels are tested against)."""

from __future__ import annotations

import math

import numpy as np

from .._rng import normal_np
from .._rng import uniform_np as _rng_uniform

_LIN_K = 1e-8


# ----------------------------------------------------------------------------- family curves
def _exp_fwd(u, k, e):
    """Normalized exponential response g(u) for shape k = 1/a (0: linear), e = expm1(-k)."""
    lin = np.abs(k) < _LIN_K
    ks = np.where(lin, 1.0, k)
    es = np.where(lin, 1.0, e)
    g = np.expm1(-ks * u) / es
    return np.where(lin, u, g)


def _exp_inv(g, k, e):
    lin = np.abs(k) < _LIN_K
    ks = np.where(lin, 1.0, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        u = -np.log1p(g * e) / ks
    return np.where(lin, g, u)


def _lut_inv(g, table):
    """Pulse coordinate of normalized conductance g on a strictly increasing table."""
    p = table.size - 1
    g = np.clip(g, table[0], table[-1])
    idx = np.clip(np.searchsorted(table, g, side="right") - 1, 0, p - 1)
    lo = table[idx]
    hi = table[idx + 1]
    return idx + (g - lo) / (hi - lo)


def _lut_fwd(x, table):
    p = table.size - 1
    x = np.clip(x, 0.0, p)
    idx = np.minimum(np.floor(x).astype(np.int64), p - 1)
    frac = x - idx
    return table[idx] + frac * (table[idx + 1] - table[idx])


def coordinate(fam, G, up, prm, const, lut_up, lut_dn):
    """Pulse coordinate ``x`` of conductances ``G`` on the LTP (``up``) or LTD branch.

    ``prm`` holds the per-device parameters of the elements of ``G`` (shape (8, G.size)).
    Returns ``(x, P)`` with ``P`` the branch length in pulses (array).
    """
    if fam == 0:
        gmin, gmax = prm[0], prm[1]
        k = prm[2] if up else prm[3]
        P = prm[4] if up else prm[5]
        e = prm[6] if up else prm[7]
        g = np.clip((G - gmin) / (gmax - gmin), 0.0, 1.0)
        return P * _exp_inv(g, k, e), P
    if fam == 1:
        # LTP: pulses up from b_min; LTD: P minus the pulses down from b_max
        u = _step_u(G, prm, const)
        bmin, bmax = prm[0], prm[1]
        dw, r, ustar, lin = _step_affine(prm, up)
        P = (bmax - bmin) / dw
        start = bmin if up else bmax
        with np.errstate(invalid="ignore", divide="ignore"):
            pa = np.log((u - ustar) / (start - ustar)) / np.log(np.where(lin, 0.5, r))
        p = np.where(lin, np.abs(u - start) / dw, pa)
        p = np.nan_to_num(p, nan=np.inf)
        return (p if up else P - p), P
    table = lut_up if up else lut_dn
    gmin, gmax = prm[0], prm[1]
    g = np.clip((G - gmin) / (gmax - gmin), 0.0, 1.0)
    P = np.full(G.shape, table.size - 1, dtype=np.float64)
    return _lut_inv(g, table), P


def _step_affine(prm, up):
    """Step, ratio ``r``, fixed point ``u*`` and linear flag of one branch of a step model:
    one pulse maps ``u -> r u + s dw``, so ``n`` pulses give ``u* + (u0 - u*) r^n``."""
    dw = prm[2] if up else prm[3]
    gam = prm[4] if up else prm[5]
    s = 1.0 if up else -1.0
    r = 1.0 + s * dw * gam
    lin = np.abs(r - 1.0) < 1e-15
    rs = np.where(lin, 0.5, r)
    ustar = np.where(lin, 0.0, s * dw / (1.0 - rs))
    return dw, r, ustar, lin


def _step_u(G, prm, const):
    gmin_n, gmax_n, bmin_n, bmax_n = const[0], const[1], const[2], const[3]
    u = bmin_n + (G - gmin_n) / (gmax_n - gmin_n) * (bmax_n - bmin_n)
    return np.clip(u, prm[0], prm[1])


def _step_G(u, const):
    gmin_n, gmax_n, bmin_n, bmax_n = const[0], const[1], const[2], const[3]
    return gmin_n + (u - bmin_n) / (bmax_n - bmin_n) * (gmax_n - gmin_n)


#: ``log1p`` / ``expm1`` of a write's noise by their Taylor series below these arguments, and
#: ``r^n`` by repeated squaring: the same operations as the compiled kernels (which read these
#: thresholds and series from here), so that every path computes the same numbers.
LOG1P_SERIES_MAX = 2.0**-12
EXPM1_SERIES_MAX = 2.0**-4


def pow_int(r, n):
    """``r ** n`` element-wise for whole ``n >= 0`` by repeated squaring (``numba_cpu._pow_int``:
    the same products in the same order)."""
    out = np.ones_like(r, dtype=np.float64)
    b = np.array(r, dtype=np.float64)
    k = np.asarray(n).astype(np.int64)
    with np.errstate(over="ignore"):  # squares past the last bit of n are not used
        while np.any(k > 0):
            out = np.where((k & 1) == 1, out * b, out)
            b = b * b
            k = k >> 1
    return out


def log1p_series(z):
    """``log1p(z)`` for ``0 <= z < LOG1P_SERIES_MAX`` (terms to ``z^5 / 5``)."""
    p = -0.25 + z * 0.2  # Horner, from the highest term
    p = 1.0 / 3.0 + z * p
    p = -0.5 + z * p
    p = 1.0 + z * p
    return z * p


def expm1_series(y):
    """``expm1(y)`` for ``abs(y) < EXPM1_SERIES_MAX`` (terms to ``y^9 / 9!``)."""
    p = 1.0 / 362880.0  # Horner, from the highest term
    p = 1.0 / 40320.0 + y * p
    p = 1.0 / 5040.0 + y * p
    p = 1.0 / 720.0 + y * p
    p = 1.0 / 120.0 + y * p
    p = 1.0 / 24.0 + y * p
    p = 1.0 / 6.0 + y * p
    p = 0.5 + y * p
    p = 1.0 + y * p
    return y * p


def _c_library(f, x):
    """The C library's ``f`` (Python's ``math``, what the compiled kernels call) element-wise;
    numpy's own ``log1p`` / ``expm1`` round differently in the last bit for some arguments."""
    out = np.empty(x.shape)
    for k, v in enumerate(x.tolist()):
        try:
            out[k] = f(v)
        except OverflowError:
            out[k] = math.inf
        except ValueError:
            out[k] = math.nan
    return out


def _series_or_library(x, inside, series, f):
    out = np.empty(x.shape)
    out[inside] = series(x[inside])
    far = ~inside
    if np.any(far):
        out[far] = _c_library(f, x[far])
    return out


def step_log1p(z):
    """``log1p`` of a step write's noise: the series below ``LOG1P_SERIES_MAX``, the C
    library's beyond (``z`` a 1-D array)."""
    return _series_or_library(z, z < LOG1P_SERIES_MAX, log1p_series, math.log1p)


def step_expm1(y):
    """``expm1`` of a step write's noise: the series below ``EXPM1_SERIES_MAX`` in magnitude,
    the C library's beyond (``y`` a 1-D array)."""
    return _series_or_library(y, np.abs(y) < EXPM1_SERIES_MAX, expm1_series, math.expm1)


def _step_noise(am, u0, r, rm, dw, gam, c2c, xi):
    """Cycle-to-cycle noise of ``am`` pulses of a step model with slope ``gam != 0``.

    One pulse is ``u <- u + s dw v + c2c dw |v| xi`` with ``v = 1 + gam u`` (the distance to the
    fixed point ``-1/gam``, e.g. to the bound for soft bounds), so ``v`` is multiplied by
    ``r + sigma xi`` per pulse (``r = 1 + s dw gam``, ``sigma = c2c dw |gam|``) and after ``n``
    pulses ``v_n = v_0 prod_k (r + sigma xi_k)``: mean ``v_0 r^n``, second moment
    ``v_0^2 (r^2 + sigma^2)^n``, and a sum of ``n`` independent terms in the logarithm. One pulse
    is applied exactly (a normal); ``n > 1`` pulses draw ``v_n = v_0 r^n exp(S xi - S^2 / 2)``
    with ``S^2 = n log(1 + (sigma / r)^2)``, the log-normal with the exact mean and variance
    (and the shape the product tends to). Returns ``u_n - E[u_n]``.
    """
    v0 = 1.0 + gam * u0
    out = c2c * dw * np.abs(v0) * xi
    k = am != 1.0  # the multi-pulse writes (only these need the log-normal factor)
    if np.any(k):
        eps = c2c * dw[k] * gam[k] / r[k]
        s2 = am[k] * step_log1p(eps * eps)
        out[k] = v0[k] * rm[k] * step_expm1(np.sqrt(s2) * xi[k] - 0.5 * s2) / gam[k]
    return out


def _apply(fam, G, m, prm, const, lut_up, lut_dn, c2c, xi):
    """New conductance after signed pulse counts m (all nonzero) on the selected devices."""
    up = m > 0
    am = np.abs(m).astype(np.float64)
    if fam == 0:
        gmin, gmax = prm[0], prm[1]
        dG = gmax - gmin
        k = np.where(up, prm[2], prm[3])
        P = np.where(up, prm[4], prm[5])
        e = np.where(up, prm[6], prm[7])
        g = np.clip((G - gmin) / dG, 0.0, 1.0)
        x0 = P * _exp_inv(g, k, e)
        x1 = np.clip(x0 + m, 0.0, P)
        G1 = gmin + dG * _exp_fwd(x1 / P, k, e)
        if c2c > 0:
            G1 = G1 + c2c * dG * np.sqrt(am) * xi
        return np.clip(G1, gmin, gmax)
    if fam == 1:
        bmin, bmax = prm[0], prm[1]
        u0 = _step_u(G, prm, const)
        s = np.where(up, 1.0, -1.0)
        dw = np.where(up, prm[2], prm[3])
        gam = np.where(up, prm[4], prm[5])
        r = 1.0 + s * dw * gam
        lin = np.abs(r - 1.0) < 1e-15
        rs = np.where(lin, 0.5, r)
        rm = pow_int(rs, am)
        un = np.where(lin, u0 + s * am * dw, rm * u0 + s * dw * (rm - 1.0) / (rs - 1.0))
        if c2c > 0:
            step0 = dw * np.abs(1.0 + gam * u0)
            noise = c2c * step0 * np.sqrt(am) * xi  # devices without a slope
            sl = ~lin
            if np.any(sl):
                noise[sl] = _step_noise(am[sl], u0[sl], rs[sl], rm[sl], dw[sl], gam[sl], c2c,
                                        xi[sl])  # fmt: skip
            un = un + noise
        return _step_G(np.clip(un, bmin, bmax), const)
    gmin, gmax = prm[0], prm[1]
    dG = gmax - gmin
    g = np.clip((G - gmin) / dG, 0.0, 1.0)
    G1 = np.empty_like(G)
    for up_sel, table in ((up, lut_up), (~up, lut_dn)):
        if not np.any(up_sel):
            continue
        p = table.size - 1
        x0 = _lut_inv(g[up_sel], table)
        x1 = np.clip(x0 + m[up_sel], 0.0, p)
        G1[up_sel] = gmin[up_sel] + dG[up_sel] * _lut_fwd(x1, table)
    if c2c > 0:
        G1 = G1 + c2c * dG * np.sqrt(am) * xi
    return np.clip(G1, gmin, gmax)


# ----------------------------------------------------------------------------- kernels
def write(state, params, n, base, prog):
    """Apply signed pulse counts ``n`` to the devices of ``state`` in place (see module docs)."""
    idx = np.flatnonzero(n)
    if idx.size == 0:
        return
    st = state
    m = n[idx]
    am = np.abs(m)
    used = st.cnt_up[idx] + st.cnt_dn[idx] + st.cnt_prog[idx] + st.cnt_reset[idx]
    if prog:
        st.cnt_prog[idx] += am
    else:
        st.cnt_up[idx] += np.where(m > 0, am, 0)
        st.cnt_dn[idx] += np.where(m < 0, am, 0)
    remaining = st.budget[idx] - used
    alive = (st.frozen[idx] == 0) & (remaining > 0)
    # endurance: apply only what is left of the budget, then freeze
    m_eff = np.where(am > remaining, np.sign(m) * np.floor(np.maximum(remaining, 0.0)), m)
    m_eff = m_eff.astype(np.int64)
    newly_frozen = (st.frozen[idx] == 0) & (used + am >= st.budget[idx])
    sel = alive & (m_eff != 0)
    if np.any(sel):
        j = idx[sel]
        pa = params
        xi = normal_np(base, j) if pa.c2c > 0 else None
        G1 = _apply(pa.fam, st.G[j], m_eff[sel], pa.prm[:, j], pa.const, pa.lut_up, pa.lut_dn,
                    pa.c2c, xi)  # fmt: skip
        st.G[j] = G1
        st.Gw[j] = G1
        st.tau[j] = 0.0
    st.frozen[idx[newly_frozen]] = 1


def write_sparse(state, params, idx, counts, base, prog):
    """:func:`write` for the devices ``idx`` (unique) only, with their counts."""
    n = np.zeros(state.G.size, dtype=np.int64)
    n[idx] = counts
    write(state, params, n, base, prog)


def read_noisy(G, sigma, base, out):
    """``out = G * (1 + sigma * xi)``, one normal per device."""
    xi = normal_np(base, np.arange(G.size))
    out[:] = G * (1.0 + sigma * xi)


def popcount64(a):
    """Number of set bits of each uint64 element."""
    return np.bitwise_count(a).astype(np.int64)


def coincidences(xbits, dbits):
    """Coincidence counts ``count[j, i] = sum_w popcount(xbits[i, w] & dbits[j, w])``."""
    both = dbits[:, None, :] & xbits[None, :, :]
    return popcount64(both).sum(axis=-1)


def pulse_update(state, params, bases, xbits, dbits, xneg, dneg, n_out, n_in, route, W, alpha,
                 gref, prm_dm=None):  # fmt: skip
    """Stochastic pulse-train update, one sample after another (see module docs); ``prm_dm``
    (the parameter table in device-major order, a layout hint of the numba kernel) is not
    used here."""
    N = n_out * n_in
    total = 0
    for b in range(xbits.shape[0]):
        c = coincidences(xbits[b], dbits[b])
        total += int(c.sum())
        s = np.where(dneg[b][:, None] != xneg[b][None, :], 1, -1)
        n, _ = _route(np.ravel(s * c), route, state.G.size)
        write(state, params, n, int(bases[b]), False)
    _refresh_cache(state.G, N, W, alpha, gref)
    return total


def _route(sn, route, n_dev):
    """Per-device counts for signed per-synapse counts ``sn``: one device (0), push-pull (1) or
    the potentiation side of the pair (2); also the number of device writes per synapse."""
    N = sn.size
    full = np.zeros(n_dev, dtype=np.int64)
    if route == 0:
        full[:N] = sn
        return full, 1
    if route == 1:
        full[:N] = sn
        full[N:] = -sn
        return full, 2
    full[:N] = np.maximum(sn, 0)
    full[N:] = np.maximum(-sn, 0)
    return full, 1


def _refresh_cache(G, N, W, alpha, gref):
    """Cached weights ``W = alpha (G+ - G-)`` (``gref < 0``) or ``alpha (G - gref)``."""
    W[:] = alpha * (G[:N] - (G[N:] if gref < 0 else gref))


def curve(fam, x, up, prm, const, lut_up, lut_dn):
    """Conductance at pulse coordinate ``x`` of the LTP (``up``) or LTD branch (inverse of
    :func:`coordinate`); ``x`` is clipped to the branch."""
    if fam == 0:
        gmin, gmax = prm[0], prm[1]
        k = prm[2] if up else prm[3]
        P = prm[4] if up else prm[5]
        e = prm[6] if up else prm[7]
        x = np.clip(x, 0.0, P)
        return gmin + (gmax - gmin) * _exp_fwd(x / P, k, e)
    if fam == 1:
        bmin, bmax = prm[0], prm[1]
        dw, r, ustar, lin = _step_affine(prm, up)
        P = (bmax - bmin) / dw
        p = np.maximum(x, 0.0) if up else np.maximum(P - x, 0.0)
        start = bmin if up else bmax
        s = 1.0 if up else -1.0
        rs = np.where(lin, 0.5, r)
        u = np.where(lin, start + s * p * dw, ustar + (start - ustar) * rs**p)
        return _step_G(np.clip(u, bmin, bmax), const)
    table = lut_up if up else lut_dn
    gmin, gmax = prm[0], prm[1]
    return gmin + (gmax - gmin) * _lut_fwd(x, table)


def pulse_request(state, params, dW, step_up, step_dn, theta, n_max, stochastic, route, base,
                  base_r, thr, half_step, dg_nom, need, W, alpha, gref, prm_dm=None):  # fmt: skip
    """Requested weight changes -> rounded pulse counts -> routed writes, in one pass.

    ``dW`` is flat (one entry per synapse). Counts: ``r = |dW| / step`` (step of the sign's
    direction), ``floor(r)`` plus one if ``frac(r) >= theta`` (or, ``stochastic``, with
    probability ``frac(r)`` from the counter RNG with ``base_r``), capped at ``n_max`` (0: no
    cap). Route as in :func:`pulse_update`. With ``thr > 0`` (differential arrays), ``need[s]``
    is set for written pairs whose larger device reaches ``thr`` while the other is above
    ``half_step`` above its own Gmin (``params.gmin``; normalized by the nominal range
    ``dg_nom``). The cached weights ``W`` are kept current (``alpha``, ``gref`` as in
    :func:`_refresh_cache`). Non-finite requests are skipped and counted. Returns
    ``(device pulses, non-finite requests)``. ``prm_dm`` (the numba kernel's device-major
    parameter table) is not used here.
    """
    N = dW.size
    finite = np.isfinite(dW)
    bad = int(N - finite.sum())
    dW = np.where(finite, dW, 0.0)
    r = np.where(dW > 0, dW / step_up, -dW / step_dn)
    fl = np.floor(r)
    frac = r - fl
    if stochastic:
        u = _rng_uniform(base_r, np.arange(N))
        n = fl + (u < frac)
    else:
        n = fl + (frac >= theta)
    n = n.astype(np.int64)
    if n_max > 0:
        n = np.minimum(n, n_max)
    n[dW == 0] = 0
    full, mult = _route(np.where(dW > 0, n, -n), route, state.G.size)
    write(state, params, full, base, False)
    G, gmin = state.G, params.gmin
    if thr > 0:
        touched = n > 0
        gp = (G[:N] - gmin[:N]) / dg_nom
        gm = (G[N:] - gmin[N:]) / dg_nom
        hit = touched & (np.maximum(gp, gm) >= thr) & (np.minimum(gp, gm) > half_step)
        need[hit] = True
    _refresh_cache(G, N, W, alpha, gref)
    return int(n.sum()) * mult, bad


def verify(state, params, idx, target, x_t, tol_g, cap, read_sigma, key, c0, prm_nom):
    """Program-and-verify devices ``idx`` (already RESET) toward conductances ``target``.

    Per device, iteration ``t``: read (read noise with the call base of counter
    ``c0 + t (1 + s)``, ``s = 1`` when ``read_sigma > 0``), locate the read conductance on the
    nominal LTP curve (``prm_nom``, shape (8, 1)), and send a train of half the remaining nominal
    distance ``x_t - x`` (one pulse when under 4) with the write base of counter
    ``c0 + t (1 + s) + s``, as long as the read is further than ``tol_g`` from the target, the
    train (predicted on the nominal curve) gets closer, the device is not frozen and at most
    ``cap`` pulses are used. A device that stops is done. Returns the largest number of trains
    sent to one device (the caller advances its counter by ``W (1 + s) + s``).
    """
    from .._rng import call_base

    s = 1 if read_sigma > 0 else 0
    key, c0 = int(key), int(c0)  # Python ints: 64-bit wrap-around without numpy warnings
    used = np.zeros(idx.size, dtype=np.int64)
    G, frozen = state.G, state.frozen
    fam, const, lut_up, lut_dn = params.fam, params.const, params.lut_up, params.lut_dn
    active = frozen[idx] == 0
    W = 0
    for t in range(4 * cap + 8):
        Gr = G[idx]
        if s:
            Gr = Gr * (1.0 + read_sigma * normal_np(call_base(key, c0 + t * (1 + s)), idx))
        err = np.abs(Gr - target)
        x_r, _ = coordinate(fam, Gr, True, prm_nom, const, lut_up, lut_dn)
        remaining = x_t - x_r
        chunk = np.where(remaining >= 4.0, np.floor(remaining / 2.0), 1.0).astype(np.int64)
        chunk = np.minimum(chunk, cap - used)
        nxt = curve(fam, x_r + chunk, True, prm_nom, const, lut_up, lut_dn)
        go = active & (err > tol_g) & (np.abs(nxt - target) < err) & (chunk > 0)
        active = go
        if not go.any():
            break
        write_sparse(state, params, idx[go], chunk[go], call_base(key, c0 + t * (1 + s) + s), True)
        used[go] += chunk[go]
        active &= frozen[idx] == 0
        W = t + 1
    return W
