"""Fused batch-1 update of one layer: request, rounding, routing, writes and refresh in one call.

The online (batch-1) pulse-backprop loop spends most of its time in Python between small numpy
operations: the ``(out, in)`` request ``dW = -lr d^T x``, the pulse-request kernel over every
synapse, the refresh mask and the refresh itself (read, RESET, program-and-verify).
:func:`layer_step` does all of it for one layer and one presentation in a single numba call and
computes exactly what :meth:`learning_rules.PulseRule.update` (with
:meth:`devices.DeviceArray.refresh`) computes (the same per-device functions of
:mod:`.numba_cpu`, the same counter-based random numbers, the same order of call bases), so a
fused run equals the general one bit for bit.

Two shortcuts make it fast and change no result:

* ``dW[j, i] = (-lr d[j]) x[i]`` is one product (the general path's ``(out, 1) @ (1, in)`` matmul
  has a single term per element), formed where it is used instead of stored.
* With nearest rounding a request below ``theta`` nominal steps sends no pulse; a row whose largest
  request ``|(-lr d[j])| max|x|`` is below that never sends one (rounding is monotone), and a zero
  input never does, so only rows that can write and nonzero inputs are visited.

Covered: bidirectional and unidirectional routing with nominal pulse counts, nearest or
stochastic rounding, refresh after every step (``refresh_every=1``) with ``verify`` or ``ideal``
programming, no read noise and no RESET noise. The caller (``synapse_sim.models.online``) checks
these and uses the general path otherwise.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from numba import njit

from .cache import drop_stale_cache
from .numba_cpu import (
    call_base_one,
    count_one,
    flag_refresh_one,
    nominal_x_one,
    route_write,
    verify_one,
)

# this module's kernels inline the per-device functions of numba_cpu.py (and its tables)
_HERE = Path(__file__).parent
drop_stale_cache(__file__, str(_HERE / "numba_cpu.py"), str(_HERE.parent / "_rng.py"))

__all__ = [
    "layer_step",
    "make_buffers",
    "pack",
    "FP_SLOTS",
    "IP_SLOTS",
    "REFRESH_VERIFY",
    "REFRESH_IDEAL",
]

#: Refresh programming codes of :func:`layer_step`.
REFRESH_VERIFY = 0
REFRESH_IDEAL = 1


# fmt: off
@njit(cache=True, parallel=True, error_model="numpy")  # serial loop; see numba_cpu._SERIAL_NOTE
def _layer_step(x, d, fp, ip, key, prm, const, lut_up, lut_dn, G, Gw, tau, frozen, budget,
                cnt_up, cnt_dn, cnt_prog, cnt_reset, W, gmin_i, gmax_i, pn, const_n, lut_n,
                refreshes, nz, flagged, buf_i, buf_t, buf_x):
    neg_lr, step_up, step_dn, theta, c2c = -fp[0], fp[1], fp[2], fp[3], fp[4]
    alpha, gref, thr, half_step, margin = fp[5], fp[6], fp[7], fp[8], fp[9]
    dg_nom, w_max, tol_g = fp[10], fp[11], fp[12]
    n_max, stochastic, route, fam = ip[0], ip[1] != 0, ip[2], ip[3]
    mode, cap, counter = ip[4], ip[5], ip[6]
    n_out = d.size
    n_in = x.size
    N = n_out * n_in
    for i in range(n_in):
        if not math.isfinite(x[i]):
            return -1, 0, 0
    for j in range(n_out):
        if not math.isfinite(d[j]):
            return -1, 0, 0
    # the two call bases of DeviceArray.pulse_request (writes, stochastic rounding)
    base = call_base_one(key, counter)
    base_r = call_base_one(key, counter + 1)
    counter += 2
    ip[6] = counter
    k_nz = 0
    xmax = 0.0
    for i in range(n_in):
        if x[i] != 0.0:
            nz[k_nz] = i
            k_nz += 1
            if abs(x[i]) > xmax:
                xmax = abs(x[i])
    skip = 0.0 if stochastic else theta * min(step_up, step_dn)
    total = 0
    bad = 0
    nf = 0
    for j in range(n_out):
        a = neg_lr * d[j]
        if a == 0.0 or abs(a) * xmax < skip:
            continue
        for q in range(k_nz):
            i = nz[q]
            s = j * n_in + i
            v = a * x[i]
            if abs(v) < skip or v == 0.0:
                continue
            if not math.isfinite(v):
                bad += 1
                continue
            n = count_one(v, s, step_up, step_dn, theta, n_max, stochastic, base_r)
            if n == 0:
                continue
            total += route_write(s, N, 1 if v > 0.0 else -1, n, route, G, Gw, tau, fam, prm,
                                 const, lut_up, lut_dn, c2c, base, frozen, budget, cnt_up,
                                 cnt_dn, cnt_prog, cnt_reset, W, alpha, gref)
            if thr > 0.0 and flag_refresh_one(s, N, G, gmin_i, dg_nom, thr, half_step):
                if margin > 0.0:
                    gp = (G[s] - gmin_i[s]) / dg_nom
                    gm = (G[N + s] - gmin_i[N + s]) / dg_nom
                    if (gp if gp < gm else gm) < margin:
                        continue
                flagged[nf] = s
                nf += 1
    if nf == 0:
        return total, bad, 0
    # refresh (DeviceArray.refresh): read w, targets of the one-sided form, RESET, program
    for k in range(nf):
        s = flagged[k]
        w = alpha * (G[s] - G[N + s])
        w = -w_max if w < -w_max else (w_max if w > w_max else w)
        sp = s
        sm = N + s
        aw = abs(w) / alpha
        act_p = max(gmin_i[sp], gmin_i[sm] + aw)
        act_m = max(gmin_i[sm], gmin_i[sp] + aw)
        buf_i[k] = sp
        buf_i[nf + k] = sm
        buf_t[k] = act_p if w >= 0 else act_m - aw
        buf_t[nf + k] = act_p - aw if w >= 0 else act_m
    for k in range(2 * nf):
        i = buf_i[k]
        cnt_reset[i] += 1
        if frozen[i] == 0:
            g = gmin_i[i]
            G[i] = g if g < gmax_i[i] else gmax_i[i]
            Gw[i] = G[i]
            tau[i] = 0.0
            used = cnt_up[i] + cnt_dn[i] + cnt_prog[i] + cnt_reset[i]
            if used >= budget[i]:
                frozen[i] = 1
    if mode == 1:  # ideal: set the conductances
        for k in range(2 * nf):
            i = buf_i[k]
            if frozen[i] == 0:
                t = buf_t[k]
                G[i] = gmin_i[i] if t < gmin_i[i] else (gmax_i[i] if t > gmax_i[i] else t)
                Gw[i] = G[i]
                tau[i] = 0.0
    else:  # verify: devices whose target lies above Gmin, toward it
        m = 0
        capf = float(cap)
        for k in range(2 * nf):
            i = buf_i[k]
            if buf_t[k] > gmin_i[i] + 1e-12 * dg_nom:
                buf_i[m] = i
                buf_t[m] = buf_t[k]
                # the nominal LTP coordinate of the target (DeviceModel.pulses), at most cap
                xt = nominal_x_one(fam, buf_t[k], pn, const_n, lut_n)
                buf_x[m] = xt if xt < capf else capf
                m += 1
        wmax = 0
        for k in range(m):
            wk = verify_one(k, G, Gw, tau, buf_i[:m], buf_t[:m], buf_x[:m], tol_g, cap, 0.0,
                            key, counter, fam, prm, const, lut_up, lut_dn, pn, c2c,
                            frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset)
            if wk > wmax:
                wmax = wk
        ip[6] = counter + wmax
    for k in range(nf):
        s = flagged[k]
        refreshes[s] += 1
        W[s] = alpha * (G[s] - G[N + s])
    return total, bad, nf
# fmt: on


#: Slots of the packed scalars of :func:`layer_step`.
FP_SLOTS = ("lr", "step_up", "step_dn", "theta", "c2c", "alpha", "gref", "thr", "half_step",
            "margin", "dg_nom", "w_max", "tol_g")  # fmt: skip
IP_SLOTS = ("n_max", "stochastic", "route", "fam", "mode", "cap", "counter")


def pack(**values) -> tuple[np.ndarray, np.ndarray]:
    """The packed scalars ``(fp, ip)`` of :func:`layer_step` from keyword values named as in
    :data:`FP_SLOTS` and :data:`IP_SLOTS` (all required)."""
    fp = np.array([float(values[k]) for k in FP_SLOTS])
    ip = np.array([int(values[k]) for k in IP_SLOTS], dtype=np.int64)
    return fp, ip


def layer_step(x, d, fp, ip, key, prm, const, lut_up, lut_dn, G, Gw, tau, frozen, budget,
               cnt_up, cnt_dn, cnt_prog, cnt_reset, W, gmin_i, gmax_i, pn, const_n, lut_n,
               refreshes, buffers):  # fmt: skip
    """One layer's batch-1 update: ``dW = -lr d^T x`` to pulses, writes and refreshes.

    Parameters
    ----------
    x : numpy.ndarray, shape (in,)
        Layer input (float64, contiguous).
    d : numpy.ndarray, shape (out,)
        Error of the layer output.
    fp, ip : numpy.ndarray
        Packed scalars (:func:`pack`): learning rate, nominal steps, dead zone, c2c, mapping
        (``alpha``, ``gref < 0``: differential pair), refresh threshold (0: none), half a
        nominal LTP step, hysteresis margin (0: the plain trigger), nominal range, weight range,
        verify tolerance in siemens; cap ``n_max`` (0: none), stochastic rounding, route, family,
        refresh programming (:data:`REFRESH_VERIFY` / :data:`REFRESH_IDEAL`), verify pulse cap and
        the array's call counter (advanced in place as ``DeviceArray._next_base`` would).
    key : numpy.uint64
        The array's random key.
    prm, const, lut_up, lut_dn
        Device parameters (``DeviceArray`` state).
    G, Gw, tau, frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset, refreshes
        Array state, updated in place.
    W : numpy.ndarray
        Flat cached weights, kept current.
    gmin_i, gmax_i : numpy.ndarray
        Per-device bounds.
    pn, const_n, lut_n : numpy.ndarray
        Nominal device parameters (shape (8,)), constants and LTP table
        (``DeviceModel.kernel_params(1, None)``), for the verify targets' pulse coordinates.
    buffers : tuple of numpy.ndarray
        Scratch space from :func:`make_buffers` (reused across calls).

    Returns
    -------
    (int, int, int)
        Device pulses sent (``-1`` when ``x`` or ``d`` is not finite: nothing was changed),
        non-finite requests skipped, pairs refreshed.
    """
    nz, flagged, buf_i, buf_t, buf_x = buffers
    return _layer_step(x, d, fp, ip, key, prm, const, lut_up, lut_dn, G, Gw, tau, frozen, budget,
                       cnt_up, cnt_dn, cnt_prog, cnt_reset, W, gmin_i, gmax_i, pn, const_n, lut_n,
                       refreshes, nz, flagged, buf_i, buf_t, buf_x)  # fmt: skip


def make_buffers(n_out: int, n_in: int) -> tuple:
    """Scratch arrays of :func:`layer_step` for an ``(n_out, n_in)`` layer."""
    N = n_out * n_in
    return (
        np.empty(n_in, dtype=np.int64),
        np.empty(N, dtype=np.int64),
        np.empty(2 * N, dtype=np.int64),
        np.empty(2 * N),
        np.empty(2 * N),
    )
