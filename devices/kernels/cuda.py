"""numba CUDA kernels; same names, host signatures and random draws as :mod:`.reference`.

The host functions pick a grid (one CUDA thread per device, per synapse or per programmed
device) and launch ``@cuda.jit`` kernels on arrays that expose the CUDA array interface: cupy
arrays on a GPU, plain numpy arrays under the numba CUDA simulator (``NUMBA_ENABLE_CUDASIM=1`` set
before ``numba.cuda`` is first imported), which runs every CUDA thread as a Python thread, so the
logic of these kernels is tested on CPU machines against the reference. Scalar results (pulse
totals, skipped requests, the longest verify sequence) are accumulated with atomics in a small
device array and read back once at the end of a call.

This module imports ``numba.cuda`` at import time; :func:`devices.kernels.get_kernels` imports it
only when a CUDA backend is asked for, so ``import devices`` never loads it.

Per-element math is the same as :mod:`.numba_cpu` (the same closed forms in the same order), so
under the simulator (Python floats, the C library's ``expm1``/``log1p``) results equal the
reference to rounding; on a GPU, libdevice's math functions and fused multiply-add contraction
can differ in the last bits (parity to a relative 1e-12, not bit for bit).
"""

from __future__ import annotations

import contextlib
import math
import warnings

import numpy as np
from numba import config as _nb_config
from numba import cuda

from .._rng import INV53, M1, M2, PHI, PHI2, TWO_PI

#: True when the kernels run under the numba CUDA simulator (numpy arrays, Python threads).
SIMULATOR = bool(_nb_config.ENABLE_CUDASIM)


#: Threads per block (small under the simulator: one Python thread per CUDA thread).
THREADS = 32 if SIMULATOR else 256

_M1 = np.uint64(M1)
_M2 = np.uint64(M2)
_PHI2 = np.uint64(PHI2)
_MASK_PHI = np.uint64(PHI)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_ONE = np.uint64(1)
_TWO = np.uint64(2)
_LIN_K = 1e-8


# ----------------------------------------------------------------------------- device functions
@cuda.jit(device=True)
def _mix(z):
    z = z ^ (z >> _S30)
    z = z * _M1
    z = z ^ (z >> _S27)
    z = z * _M2
    return z ^ (z >> _S31)


@cuda.jit(device=True)
def _uniform(base, j):
    h = _mix(base + j * _PHI2)
    return (float(h >> _S11) + 0.5) * INV53


@cuda.jit(device=True)
def _normal(base, i):
    j = np.uint64(i) * _TWO
    u1 = _uniform(base, j)
    u2 = _uniform(base, j + _ONE)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(TWO_PI * u2)


@cuda.jit(device=True)
def _call_base(key, counter):
    return _mix(key ^ (np.uint64(counter) * _MASK_PHI))


@cuda.jit(device=True)
def _clip(v, lo, hi):
    return lo if v < lo else (hi if v > hi else v)


@cuda.jit(device=True)
def _exp_fwd(u, k, e):
    if abs(k) < _LIN_K:
        return u
    return math.expm1(-k * u) / e


@cuda.jit(device=True)
def _exp_inv(g, k, e):
    if abs(k) < _LIN_K:
        return g
    return -math.log1p(g * e) / k


@cuda.jit(device=True)
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


@cuda.jit(device=True)
def _lut_fwd(x, table):
    p = table.size - 1
    x = _clip(x, 0.0, float(p))
    idx = int(math.floor(x))
    if idx > p - 1:
        idx = p - 1
    return table[idx] + (x - idx) * (table[idx + 1] - table[idx])


@cuda.jit(device=True)
def _apply_one(fam, G, m, i, prm, const, lut_up, lut_dn, c2c, base):
    """New conductance of device ``i`` after ``m`` (nonzero) signed pulses."""
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
            rm = r if am == 1.0 else r**am
            un = rm * u0 + s * dw * (rm - 1.0) / (r - 1.0)
        if c2c > 0.0:
            un += c2c * dw * abs(1.0 + gam * u0) * math.sqrt(am) * _normal(base, i)
        un = _clip(un, bmin, bmax)
        return gmin_n + (un - bmin_n) / (bmax_n - bmin_n) * (gmax_n - gmin_n)
    gmin = prm[0, i]
    gmax = prm[1, i]
    dG = gmax - gmin
    g = _clip((G - gmin) / dG, 0.0, 1.0)
    if up:
        p = float(lut_up.size - 1)
        x1 = _clip(_lut_inv(g, lut_up) + m, 0.0, p)
        G1 = gmin + dG * _lut_fwd(x1, lut_up)
    else:
        p = float(lut_dn.size - 1)
        x1 = _clip(_lut_inv(g, lut_dn) + m, 0.0, p)
        G1 = gmin + dG * _lut_fwd(x1, lut_dn)
    if c2c > 0.0:
        G1 += c2c * dG * math.sqrt(am) * _normal(base, i)
    return _clip(G1, gmin, gmax)


@cuda.jit(device=True)
def _write_one(i, m, G, Gw, tau, fam, prm, const, lut_up, lut_dn, c2c, base, frozen, budget,
               cnt_up, cnt_dn, cnt_prog, cnt_reset, prog):  # fmt: skip
    """Counters, endurance and the write of ``m`` signed pulses on device ``i``."""
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


@cuda.jit(device=True)
def _route_write(s, N, sgn, c, route, G, Gw, tau, fam, prm, const, lut_up, lut_dn, c2c, base,
                 frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset):  # fmt: skip
    """Route ``sgn * c`` pulses of synapse ``s``: one device (0), push-pull (1) or the
    potentiation side of the pair (2). Returns the device pulses sent."""
    if route == 0:
        _write_one(s, sgn * c, G, Gw, tau, fam, prm, const, lut_up, lut_dn, c2c, base, frozen,
                   budget, cnt_up, cnt_dn, cnt_prog, cnt_reset, False)  # fmt: skip
        return c
    if route == 1:
        _write_one(s, sgn * c, G, Gw, tau, fam, prm, const, lut_up, lut_dn, c2c, base, frozen,
                   budget, cnt_up, cnt_dn, cnt_prog, cnt_reset, False)  # fmt: skip
        _write_one(N + s, -sgn * c, G, Gw, tau, fam, prm, const, lut_up, lut_dn, c2c, base,
                   frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset, False)  # fmt: skip
        return 2 * c
    tgt = s if sgn > 0 else N + s
    _write_one(tgt, c, G, Gw, tau, fam, prm, const, lut_up, lut_dn, c2c, base, frozen, budget,
               cnt_up, cnt_dn, cnt_prog, cnt_reset, False)  # fmt: skip
    return c


@cuda.jit(device=True)
def _weight(s, N, G, alpha, gref):
    if gref < 0.0:
        return alpha * (G[s] - G[N + s])
    return alpha * (G[s] - gref)


@cuda.jit(device=True)
def _count(v, s, step_up, step_dn, theta, n_max, stochastic, base_r):
    """Whole pulses for request ``v`` (dead zone ``theta`` or stochastic rounding), capped."""
    r = v / step_up if v > 0.0 else -v / step_dn
    fl = math.floor(r)
    frac = r - fl
    n = int(fl)
    if stochastic:
        if _uniform(base_r, np.uint64(s)) < frac:
            n += 1
    elif frac >= theta:
        n += 1
    if n_max > 0 and n > n_max:
        n = n_max
    return n


@cuda.jit(device=True)
def _nominal_x(fam, G, pn, const, lut_up):
    """Pulse coordinate of ``G`` on the nominal LTP curve (reference.coordinate, up branch)."""
    if fam == 0:
        g = _clip((G - pn[0]) / (pn[1] - pn[0]), 0.0, 1.0)
        return pn[4] * _exp_inv(g, pn[2], pn[6])
    if fam == 1:
        bmin = pn[0]
        u = _clip(const[2] + (G - const[0]) / (const[1] - const[0]) * (const[3] - const[2]),
                  pn[0], pn[1])  # fmt: skip
        dw = pn[2]
        r = 1.0 + dw * pn[4]
        if abs(r - 1.0) < 1e-15:
            return abs(u - bmin) / dw
        ustar = dw / (1.0 - r)
        ratio = (u - ustar) / (bmin - ustar)
        if not ratio > 0.0:
            return math.inf
        return math.log(ratio) / math.log(r)
    g = _clip((G - pn[0]) / (pn[1] - pn[0]), 0.0, 1.0)
    return _lut_inv(g, lut_up)


@cuda.jit(device=True)
def _nominal_G(fam, x, pn, const, lut_up):
    """Conductance at coordinate ``x`` of the nominal LTP curve (reference.curve, up branch)."""
    if fam == 0:
        P = pn[4]
        return pn[0] + (pn[1] - pn[0]) * _exp_fwd(_clip(x, 0.0, P) / P, pn[2], pn[6])
    if fam == 1:
        bmin = pn[0]
        bmax = pn[1]
        dw = pn[2]
        p = x if x > 0.0 else 0.0
        r = 1.0 + dw * pn[4]
        if abs(r - 1.0) < 1e-15:
            u = bmin + p * dw
        else:
            ustar = dw / (1.0 - r)
            u = ustar + (bmin - ustar) * r**p
        u = _clip(u, bmin, bmax)
        return const[0] + (u - const[2]) / (const[3] - const[2]) * (const[1] - const[0])
    return pn[0] + (pn[1] - pn[0]) * _lut_fwd(x, lut_up)


# ----------------------------------------------------------------------------- kernels
@cuda.jit
def _k_write(G, Gw, tau, n, fam, prm, const, lut_up, lut_dn, c2c, base, frozen, budget, cnt_up,
             cnt_dn, cnt_prog, cnt_reset, prog):  # fmt: skip
    i = cuda.grid(1)
    if i < G.size and n[i] != 0:
        _write_one(i, n[i], G, Gw, tau, fam, prm, const, lut_up, lut_dn, c2c, base, frozen,
                   budget, cnt_up, cnt_dn, cnt_prog, cnt_reset, prog)  # fmt: skip


@cuda.jit
def _k_write_sparse(G, Gw, tau, idx, counts, fam, prm, const, lut_up, lut_dn, c2c, base, frozen,
                    budget, cnt_up, cnt_dn, cnt_prog, cnt_reset, prog):  # fmt: skip
    k = cuda.grid(1)
    if k < idx.size and counts[k] != 0:
        _write_one(idx[k], counts[k], G, Gw, tau, fam, prm, const, lut_up, lut_dn, c2c, base,
                   frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset, prog)  # fmt: skip


@cuda.jit
def _k_read(G, sigma, base, out):
    i = cuda.grid(1)
    if i < G.size:
        out[i] = G[i] * (1.0 + sigma * _normal(base, i))


@cuda.jit
def _k_update(G, Gw, tau, fam, prm, const, lut_up, lut_dn, c2c, bases, frozen, budget, cnt_up,
              cnt_dn, cnt_prog, cnt_reset, xbits, dbits, xneg, dneg, n_in, N, route, W, alpha,
              gref, tot):  # fmt: skip
    """One thread per synapse: the samples one after another (the device state is per synapse,
    so threads never share a device)."""
    s = cuda.grid(1)
    if s >= N:
        return
    j = s // n_in
    i = s - j * n_in
    acc = 0
    for b in range(xbits.shape[0]):
        c = 0
        for w in range(xbits.shape[2]):
            c += cuda.popc(xbits[b, i, w] & dbits[b, j, w])
        if c == 0:
            continue
        sgn = 1 if dneg[b, j] != xneg[b, i] else -1
        acc += c
        _route_write(s, N, sgn, c, route, G, Gw, tau, fam, prm, const, lut_up, lut_dn, c2c,
                     bases[b], frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset)  # fmt: skip
    W[s] = _weight(s, N, G, alpha, gref)
    if acc != 0:
        cuda.atomic.add(tot, 0, acc)


@cuda.jit
def _k_request(G, Gw, tau, dW, step_up, step_dn, theta, n_max, stochastic, route, fam, prm,
               const, lut_up, lut_dn, c2c, base, base_r, frozen, budget, cnt_up, cnt_dn,
               cnt_prog, cnt_reset, thr, half_step, gmin_dev, dg_nom, need, W, alpha, gref,
               tot):  # fmt: skip
    s = cuda.grid(1)
    N = dW.size
    if s >= N:
        return
    v = dW[s]
    if not math.isfinite(v):
        cuda.atomic.add(tot, 1, 1)
        return
    if v != 0.0:
        n = _count(v, s, step_up, step_dn, theta, n_max, stochastic, base_r)
        if n > 0:
            sent = _route_write(s, N, 1 if v > 0.0 else -1, n, route, G, Gw, tau, fam, prm,
                                const, lut_up, lut_dn, c2c, base, frozen, budget, cnt_up,
                                cnt_dn, cnt_prog, cnt_reset)  # fmt: skip
            cuda.atomic.add(tot, 0, sent)
            if thr > 0.0:
                gp = (G[s] - gmin_dev[s]) / dg_nom
                gm = (G[N + s] - gmin_dev[N + s]) / dg_nom
                hi = gp if gp > gm else gm
                lo = gm if gp > gm else gp
                if hi >= thr and lo > half_step:
                    need[s] = True
    W[s] = _weight(s, N, G, alpha, gref)


@cuda.jit
def _k_verify(G, Gw, tau, idx, target, x_t, tol_g, cap, read_sigma, key, c0, fam, prm, const,
              lut_up, lut_dn, pn, c2c, frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset,
              tot):  # fmt: skip
    k = cuda.grid(1)
    if k >= idx.size:
        return
    s = 1 if read_sigma > 0.0 else 0
    i = idx[k]
    used = 0
    live = frozen[i] == 0
    w = 0
    for t in range(4 * cap + 8):
        Gr = G[i]
        if s == 1:
            Gr = Gr * (1.0 + read_sigma * _normal(_call_base(key, c0 + t * (1 + s)), i))
        err = abs(Gr - target[k])
        x_r = _nominal_x(fam, Gr, pn, const, lut_up)
        rem = x_t[k] - x_r
        chunk = int(math.floor(rem / 2.0)) if rem >= 4.0 else 1
        if chunk > cap - used:
            chunk = cap - used
        nxt = _nominal_G(fam, x_r + chunk, pn, const, lut_up)
        if not (live and err > tol_g and abs(nxt - target[k]) < err and chunk > 0):
            break
        _write_one(i, chunk, G, Gw, tau, fam, prm, const, lut_up, lut_dn, c2c,
                   _call_base(key, c0 + t * (1 + s) + s), frozen, budget, cnt_up, cnt_dn,
                   cnt_prog, cnt_reset, True)  # fmt: skip
        used += chunk
        w = t + 1
        live = frozen[i] == 0
    if w > 0:
        cuda.atomic.max(tot, 0, w)


@cuda.jit
def _k_trains(p, BL, base, nw, out):
    """One thread per row ``(b, r)``: the bits of :func:`devices.xp.pulse_trains`."""
    k = cuda.grid(1)
    n = p.shape[1]
    if k >= p.shape[0] * n:
        return
    b = k // n
    r = k - b * n
    pr = p[b, r]
    L = BL[b]
    row = np.uint64(k) * np.uint64(nw * 64)
    for w in range(nw):
        word = np.uint64(0)
        for q in range(64):
            t = w * 64 + q
            if t < L and _uniform(base, row + np.uint64(t)) < pr:
                word |= _ONE << np.uint64(q)
        out[b, r, w] = word


# ----------------------------------------------------------------------------- host side
@contextlib.contextmanager
def _launching():
    """Under the simulator, the 64-bit hash runs on numpy scalars, which wrap around as CUDA
    integers do but warn about it; the wrap-around is the intended arithmetic, so exactly that
    warning is silenced for the duration of a launch (no-op on a GPU)."""
    if not SIMULATOR:
        yield
        return
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message=r"(?s).*overflow encountered in scalar (multiply|add)",
            category=RuntimeWarning,
        )
        yield


def _blocks(n: int) -> int:
    return max(1, (int(n) + THREADS - 1) // THREADS)


def _launch(kernel, n, *args):
    """Launch ``kernel`` with one thread per item of ``n``."""
    with _launching():
        kernel[_blocks(n), THREADS](*args)


def _like(G, a, dtype):
    """``a`` as a contiguous array of ``dtype`` on the device (array module) of ``G``."""
    if isinstance(G, np.ndarray):
        return np.ascontiguousarray(a, dtype=dtype)
    from ..xp import array_module

    xp = array_module(G)
    return xp.ascontiguousarray(xp.asarray(a, dtype=dtype))


def _scalars(tot):
    """Host copy of a small result array (one transfer at the end of a call)."""
    return tot if isinstance(tot, np.ndarray) else tot.get()


def write(G, Gw, tau, n, fam, prm, const, lut_up, lut_dn, c2c, base, frozen, budget, cnt_up,
          cnt_dn, cnt_prog, cnt_reset, prog):  # fmt: skip
    """Apply signed pulse counts ``n`` to flat device arrays in place (see module docs)."""
    if G.size == 0:
        return
    _launch(_k_write, G.size,
        G, Gw, tau, n, int(fam), prm, const, lut_up, lut_dn, float(c2c), np.uint64(base), frozen,
        budget, cnt_up, cnt_dn, cnt_prog, cnt_reset, bool(prog),
    )  # fmt: skip


def write_sparse(G, Gw, tau, idx, counts, fam, prm, const, lut_up, lut_dn, c2c, base, frozen,
                 budget, cnt_up, cnt_dn, cnt_prog, cnt_reset, prog):  # fmt: skip
    """:func:`write` for the devices ``idx`` (unique) only, with their counts."""
    idx = _like(G, idx, np.int64)
    if idx.size == 0:
        return
    counts = _like(G, counts, np.int64)
    _launch(_k_write_sparse, idx.size,
        G, Gw, tau, idx, counts, int(fam), prm, const, lut_up, lut_dn, float(c2c),
        np.uint64(base), frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset, bool(prog),
    )  # fmt: skip


def read_noisy(G, sigma, base, out):
    """``out = G * (1 + sigma * xi)``, one normal per device."""
    if G.size == 0:
        return
    _launch(_k_read, G.size, G, float(sigma), np.uint64(base), out)


def pulse_update(G, Gw, tau, fam, prm, const, lut_up, lut_dn, c2c, bases, frozen, budget,
                 cnt_up, cnt_dn, cnt_prog, cnt_reset, xbits, dbits, xneg, dneg, n_out, n_in,
                 route, W, alpha, gref):  # fmt: skip
    """Stochastic pulse-train update, one sample after another (see module docs)."""
    N = int(n_out) * int(n_in)
    tot = _like(G, np.zeros(1), np.int64)
    if N == 0:
        return 0
    _launch(_k_update, N,
        G, Gw, tau, int(fam), prm, const, lut_up, lut_dn, float(c2c), _like(G, bases, np.uint64),
        frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset, xbits, dbits, xneg, dneg,
        int(n_in), N, int(route), W, float(alpha), float(gref), tot,
    )  # fmt: skip
    return int(_scalars(tot)[0])


def pulse_request(G, Gw, tau, dW, step_up, step_dn, theta, n_max, stochastic, route, fam, prm,
                  const, lut_up, lut_dn, c2c, base, base_r, frozen, budget, cnt_up, cnt_dn,
                  cnt_prog, cnt_reset, thr, half_step, gmin_dev, dg_nom, need, W, alpha,
                  gref):  # fmt: skip
    """Requested weight changes -> rounded pulse counts -> routed writes, in one pass."""
    tot = _like(G, np.zeros(2), np.int64)
    if dW.size:
        _launch(_k_request, dW.size,
            G, Gw, tau, dW, float(step_up), float(step_dn), float(theta), int(n_max),
            bool(stochastic), int(route), int(fam), prm, const, lut_up, lut_dn, float(c2c),
            np.uint64(base), np.uint64(base_r), frozen, budget, cnt_up, cnt_dn, cnt_prog,
            cnt_reset, float(thr), float(half_step), gmin_dev, float(dg_nom), need, W,
            float(alpha), float(gref), tot,
        )  # fmt: skip
    res = _scalars(tot)
    return int(res[0]), int(res[1])


def verify(G, Gw, tau, idx, target, x_t, tol_g, cap, read_sigma, key, c0, fam, prm, const,
           lut_up, lut_dn, prm_nom, c2c, frozen, budget, cnt_up, cnt_dn, cnt_prog,
           cnt_reset):  # fmt: skip
    """Program-and-verify devices ``idx`` toward ``target`` (see the reference docstring)."""
    idx = _like(G, idx, np.int64)
    if idx.size == 0:
        return 0
    tot = _like(G, np.zeros(1), np.int64)
    pn = _like(G, prm_nom[:, 0], np.float64)
    _launch(_k_verify, idx.size,
        G, Gw, tau, idx, _like(G, target, np.float64), _like(G, x_t, np.float64), float(tol_g),
        int(cap), float(read_sigma), np.uint64(key), int(c0), int(fam), prm, const, lut_up,
        lut_dn, pn, float(c2c), frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset, tot,
    )  # fmt: skip
    return int(_scalars(tot)[0])


def pulse_trains(p, BL, bl, base):
    """Bit-packed Bernoulli trains from the counter-based generator, drawn on the device of
    ``p``: the same bits as :func:`devices.xp.pulse_trains` (see there)."""
    B, n = p.shape
    nw = (int(bl) + 63) // 64
    from ..xp import array_module

    out = array_module(p).zeros((B, n, nw), dtype=np.uint64)
    if B * n:
        _launch(_k_trains, B * n, _like(p, p, np.float64), _like(p, BL, np.int64),
                np.uint64(base), nw, out)  # fmt: skip
    return out
