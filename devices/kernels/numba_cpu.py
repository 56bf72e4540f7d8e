"""Numba CPU kernels; same names, signatures and random draws as :mod:`.reference`."""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .._rng import INV53, M1, M2, PHI2, TWO_PI

_M1 = np.uint64(M1)
_M2 = np.uint64(M2)
_PHI2 = np.uint64(PHI2)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_ONE = np.uint64(1)
_TWO = np.uint64(2)
_LIN_K = 1e-8


@njit(cache=True, inline="always")
def _mix(z):
    z = z ^ (z >> _S30)
    z = z * _M1
    z = z ^ (z >> _S27)
    z = z * _M2
    return z ^ (z >> _S31)


@njit(cache=True, inline="always")
def _uniform(base, j):
    h = _mix(base + j * _PHI2)
    return (float(h >> _S11) + 0.5) * INV53


@njit(cache=True, inline="always")
def _normal(base, i):
    j = np.uint64(i) * _TWO
    u1 = _uniform(base, j)
    u2 = _uniform(base, j + _ONE)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(TWO_PI * u2)


@njit(cache=True, inline="always")
def _clip(v, lo, hi):
    return lo if v < lo else (hi if v > hi else v)


@njit(cache=True, inline="always")
def _exp_fwd(u, k, e):
    if abs(k) < _LIN_K:
        return u
    return math.expm1(-k * u) / e


@njit(cache=True, inline="always")
def _exp_inv(g, k, e):
    if abs(k) < _LIN_K:
        return g
    return -math.log1p(g * e) / k


@njit(cache=True, inline="always")
def _lut_inv(g, table):
    p = table.size - 1
    g = _clip(g, table[0], table[p])
    lo = 0
    hi = p
    # largest idx with table[idx] <= g, capped at p - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if table[mid] <= g:
            lo = mid
        else:
            hi = mid
    return lo + (g - table[lo]) / (table[lo + 1] - table[lo])


@njit(cache=True, inline="always")
def _lut_fwd(x, table):
    p = table.size - 1
    x = _clip(x, 0.0, float(p))
    idx = int(math.floor(x))
    if idx > p - 1:
        idx = p - 1
    return table[idx] + (x - idx) * (table[idx + 1] - table[idx])


@njit(cache=True, inline="always")
def _apply_one(fam, G, m, i, prm, const, lut_up, lut_dn, c2c, base):
    """New conductance of device i after m (nonzero) signed pulses."""
    am = float(abs(m))
    up = m > 0
    if fam == 0:
        gmin = prm[0, i]
        gmax = prm[1, i]
        dG = gmax - gmin
        if up:
            k = prm[2, i]
            P = prm[4, i]
            e = prm[6, i]
        else:
            k = prm[3, i]
            P = prm[5, i]
            e = prm[7, i]
        g = _clip((G - gmin) / dG, 0.0, 1.0)
        x0 = P * _exp_inv(g, k, e)
        x1 = _clip(x0 + m, 0.0, P)
        G1 = gmin + dG * _exp_fwd(x1 / P, k, e)
        if c2c > 0.0:
            G1 += c2c * dG * math.sqrt(am) * _normal(base, i)
        return _clip(G1, gmin, gmax)
    if fam == 1:
        bmin = prm[0, i]
        bmax = prm[1, i]
        gmin_n = const[0]
        gmax_n = const[1]
        bmin_n = const[2]
        bmax_n = const[3]
        u0 = _clip(bmin_n + (G - gmin_n) / (gmax_n - gmin_n) * (bmax_n - bmin_n), bmin, bmax)
        if up:
            s = 1.0
            dw = prm[2, i]
            gam = prm[4, i]
        else:
            s = -1.0
            dw = prm[3, i]
            gam = prm[5, i]
        r = 1.0 + s * dw * gam
        if abs(r - 1.0) < 1e-15:
            un = u0 + s * am * dw
        else:
            rm = r**am
            un = rm * u0 + s * dw * (rm - 1.0) / (r - 1.0)
        if c2c > 0.0:
            un += c2c * dw * abs(1.0 + gam * u0) * math.sqrt(am) * _normal(base, i)
        un = _clip(un, bmin, bmax)
        return gmin_n + (un - bmin_n) / (bmax_n - bmin_n) * (gmax_n - gmin_n)
    gmin = prm[0, i]
    gmax = prm[1, i]
    dG = gmax - gmin
    g = _clip((G - gmin) / dG, 0.0, 1.0)
    table = lut_up if up else lut_dn
    p = float(table.size - 1)
    x0 = _lut_inv(g, table)
    x1 = _clip(x0 + m, 0.0, p)
    G1 = gmin + dG * _lut_fwd(x1, table)
    if c2c > 0.0:
        G1 += c2c * dG * math.sqrt(am) * _normal(base, i)
    return _clip(G1, gmin, gmax)


@njit(cache=True, inline="always")
def _write_one(
    i,
    m,
    G,
    Gw,
    tau,
    fam,
    prm,
    const,
    lut_up,
    lut_dn,
    c2c,
    base,
    frozen,
    budget,
    cnt_up,
    cnt_dn,
    cnt_prog,
    cnt_reset,
    prog,
):
    am = abs(m)
    used = cnt_up[i] + cnt_dn[i] + cnt_prog[i] + cnt_reset[i]
    if prog:
        cnt_prog[i] += am
    elif m > 0:
        cnt_up[i] += am
    else:
        cnt_dn[i] += am
    if frozen[i] != 0:
        return
    remaining = budget[i] - used
    if remaining <= 0.0:
        frozen[i] = 1
        return
    m_eff = m
    if am > remaining:
        r = int(math.floor(remaining))
        m_eff = r if m > 0 else -r
    if used + am >= budget[i]:
        frozen[i] = 1
    if m_eff == 0:
        return
    G1 = _apply_one(fam, G[i], m_eff, i, prm, const, lut_up, lut_dn, c2c, base)
    G[i] = G1
    Gw[i] = G1
    tau[i] = 0.0


# Small arrays run serially: a parallel launch costs more than it saves there, and under CPU
# contention (BLAS threads, other processes) it can stall for milliseconds.
_PARALLEL_MIN = 1 << 17


def _write_body(
    G,
    Gw,
    tau,
    n,
    fam,
    prm,
    const,
    lut_up,
    lut_dn,
    c2c,
    base,
    frozen,
    budget,
    cnt_up,
    cnt_dn,
    cnt_prog,
    cnt_reset,
    prog,
):
    base = np.uint64(base)
    for i in prange(G.size):
        m = n[i]
        if m != 0:
            _write_one(
                i,
                m,
                G,
                Gw,
                tau,
                fam,
                prm,
                const,
                lut_up,
                lut_dn,
                c2c,
                base,
                frozen,
                budget,
                cnt_up,
                cnt_dn,
                cnt_prog,
                cnt_reset,
                prog,
            )


_write_par = njit(cache=True, parallel=True)(_write_body)
_write_ser = njit(cache=True)(_write_body)


def write(
    G,
    Gw,
    tau,
    n,
    fam,
    prm,
    const,
    lut_up,
    lut_dn,
    c2c,
    base,
    frozen,
    budget,
    cnt_up,
    cnt_dn,
    cnt_prog,
    cnt_reset,
    prog,
):
    """Apply signed pulse counts ``n`` to flat device arrays in place (see module docs)."""
    kern = _write_par if G.size >= _PARALLEL_MIN else _write_ser
    kern(
        G,
        Gw,
        tau,
        n,
        fam,
        prm,
        const,
        lut_up,
        lut_dn,
        c2c,
        np.uint64(base),
        frozen,
        budget,
        cnt_up,
        cnt_dn,
        cnt_prog,
        cnt_reset,
        bool(prog),
    )


def _read_body(G, sigma, base, out):
    base = np.uint64(base)
    for i in prange(G.size):
        out[i] = G[i] * (1.0 + sigma * _normal(base, i))


_read_par = njit(cache=True, parallel=True)(_read_body)
_read_ser = njit(cache=True)(_read_body)


def read_noisy(G, sigma, base, out):
    """``out = G * (1 + sigma * xi)``, one normal per device."""
    kern = _read_par if G.size >= _PARALLEL_MIN else _read_ser
    kern(G, float(sigma), np.uint64(base), out)


@njit(cache=True, inline="always")
def _popcount(x):
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return int((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


def _update_body(
    G,
    Gw,
    tau,
    fam,
    prm,
    const,
    lut_up,
    lut_dn,
    c2c,
    bases,
    frozen,
    budget,
    cnt_up,
    cnt_dn,
    cnt_prog,
    cnt_reset,
    xbits,
    dbits,
    xneg,
    dneg,
    n_out,
    n_in,
    route,
):
    N = n_out * n_in
    nw = xbits.shape[2]
    rowtot = np.zeros(n_out, dtype=np.int64)
    nzx = np.empty(n_in, dtype=np.int64)
    total = 0
    for b in range(xbits.shape[0]):
        base = bases[b]
        xb = xbits[b]
        db = dbits[b]
        # compact the rows whose train has any pulse: only those can coincide
        m = 0
        for i in range(n_in):
            any_bit = False
            for w in range(nw):
                if xb[i, w] != 0:
                    any_bit = True
            if any_bit:
                nzx[m] = i
                m += 1
        if m == 0:
            continue
        for j in prange(n_out):
            acc = 0
            for t in range(m):
                i = nzx[t]
                c = 0
                for w in range(nw):
                    c += _popcount(xb[i, w] & db[j, w])
                if c == 0:
                    continue
                acc += c
                sgn = 1 if dneg[b, j] != xneg[b, i] else -1
                ip = j * n_in + i
                # route: one write (single device / unidirectional side) or two (push-pull)
                nq = 2 if route == 1 else 1
                for q in range(nq):
                    if route == 0:
                        tgt, mq = ip, sgn * c
                    elif route == 1:
                        tgt, mq = (ip, sgn * c) if q == 0 else (N + ip, -sgn * c)
                    else:
                        tgt, mq = (ip if sgn > 0 else N + ip), c
                    _write_one(
                        tgt,
                        mq,
                        G,
                        Gw,
                        tau,
                        fam,
                        prm,
                        const,
                        lut_up,
                        lut_dn,
                        c2c,
                        base,
                        frozen,
                        budget,
                        cnt_up,
                        cnt_dn,
                        cnt_prog,
                        cnt_reset,
                        False,
                    )
            rowtot[j] = acc
        total += rowtot.sum()
        rowtot[:] = 0
    return total


_update_par = njit(cache=True, parallel=True)(_update_body)
_update_ser = njit(cache=True)(_update_body)


def pulse_update(
    G,
    Gw,
    tau,
    fam,
    prm,
    const,
    lut_up,
    lut_dn,
    c2c,
    bases,
    frozen,
    budget,
    cnt_up,
    cnt_dn,
    cnt_prog,
    cnt_reset,
    xbits,
    dbits,
    xneg,
    dneg,
    n_out,
    n_in,
    route,
):
    """Stochastic pulse-train update, one sample after another (see module docs)."""
    return int(
        (_update_par if G.size >= _PARALLEL_MIN else _update_ser)(
            G,
            Gw,
            tau,
            fam,
            prm,
            const,
            lut_up,
            lut_dn,
            c2c,
            np.asarray(bases, dtype=np.uint64),
            frozen,
            budget,
            cnt_up,
            cnt_dn,
            cnt_prog,
            cnt_reset,
            xbits,
            dbits,
            xneg,
            dneg,
            n_out,
            n_in,
            route,
        )
    )
