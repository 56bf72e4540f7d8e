"""numba kernels of the quantizer family (quantize, dequantize, fake; nearest and stochastic).

One pass over the data, parallel over elements, with the same floating-point operations in the
same order as the numpy reference in :mod:`devices.quantizers`, so the two backends agree bit for
bit (tests/devices/test_quantizer_family.py). The quantizers call these through their
``backend=`` option; nothing here validates its input (the public methods do).

Layout: the input is a C-contiguous array viewed as ``(A, C, B)`` around the channel axis
(``C = 1``, ``B = size`` per tensor); element ``i`` belongs to channel ``(i // B) % C``. The
parallel loop runs over tasks of at most ``CHUNK`` consecutive elements inside one row of ``B``
(one channel), so the channel is found once per task, not once per element.

Affine family (:class:`Uniform`, :class:`LSQ`, :class:`StatsQ`), per channel ``c``::

    u = x / s_c
    u = min(max(u, clip_lo), clip_hi)          # only with pre_clip (LSQ, StatsQ)
    u = u * mult + add_c                       # Uniform: add = zero point; StatsQ: n, -0.5
    q = rounding(u), clipped to [q_lo, q_hi]
    value = s_c * (q + voff_c) / vdiv          # Uniform: voff = -z; StatsQ: +0.5, n

Rounding modes: 0 nearest (``rint``, half to even), 1 stochastic ``floor(u + xi)``, 2 sign
(``u >= 0 -> +1`` else ``-1``), 3 stochastic sign (``k = floor((u + 1) / 2 + xi)`` in ``{0, 1}``,
``q = 2k - 1``). Stochastic modes read uniform draws ``xi`` (drawn outside, same shape as ``x``).

Level tables (:class:`LevelGrid`): per channel a sorted table ``t`` of ``L`` entries;
``v = x / s_c``, index coordinate ``u = i + (v - t_i) / (t_{i+1} - t_i)`` with
``i = clip(searchsorted_right(t, v) - 1, 0, L - 2)``, ``u`` clipped to ``[0, L - 1]``, then
nearest or stochastic rounding; ``value = s_c * t[q]``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = [
    "MODE_NEAREST",
    "MODE_STOCHASTIC",
    "MODE_SIGN",
    "MODE_SIGN_STOCHASTIC",
    "affine_codes",
    "affine_fake",
    "affine_values",
    "table_codes",
    "table_fake",
    "table_values",
]

MODE_NEAREST = 0
MODE_STOCHASTIC = 1
MODE_SIGN = 2
MODE_SIGN_STOCHASTIC = 3


#: Elements per parallel task.
CHUNK = 16384


@njit(cache=True, inline="always")
def _n_tasks(n, B):
    """Number of tasks and tasks per row of ``B`` elements."""
    cpr = max((B + CHUNK - 1) // CHUNK, 1)
    return (n // B) * cpr if B > 0 else 0, cpr


@njit(cache=True, inline="always")
def _task(t, B, C, cpr):
    """Channel, first and one-past-last element of task ``t``."""
    r = t // cpr
    k = t - r * cpr
    start = r * B + k * CHUNK
    end = min(r * B + B, start + CHUNK)
    return r % C, start, end


@njit(cache=True, inline="always")
def _affine_code(xv, s, clip_lo, clip_hi, pre_clip, mult, add, q_lo, q_hi, mode, xi):
    u = xv / s
    if pre_clip:
        u = min(max(u, clip_lo), clip_hi)
    u = u * mult + add
    if mode == MODE_NEAREST:
        q = np.rint(u)
    elif mode == MODE_STOCHASTIC:
        q = np.floor(u + xi)
    elif mode == MODE_SIGN:
        return 1.0 if u >= 0 else -1.0
    else:
        k = min(max(np.floor((u + 1.0) / 2.0 + xi), 0.0), 1.0)
        return 2.0 * k - 1.0
    return min(max(q, q_lo), q_hi)


@njit(cache=True, parallel=True)
def affine_codes(x, s, add, B, C, pre_clip, clip_lo, clip_hi, mult, q_lo, q_hi, mode, noise, out):
    """Integer codes (int64) of the flat input ``x`` into ``out`` (affine family)."""
    stoch = mode == MODE_STOCHASTIC or mode == MODE_SIGN_STOCHASTIC
    tasks, cpr = _n_tasks(x.size, B)
    for t in prange(tasks):
        c, start, end = _task(t, B, C, cpr)
        sc = s[c]
        ad = add[c]
        if mode == MODE_NEAREST and pre_clip:  # branch-free loops vectorize
            for i in range(start, end):
                u = min(max(x[i] / sc, clip_lo), clip_hi) * mult + ad
                out[i] = np.int64(min(max(np.rint(u), q_lo), q_hi))
        elif mode == MODE_NEAREST:
            for i in range(start, end):
                out[i] = np.int64(min(max(np.rint(x[i] / sc * mult + ad), q_lo), q_hi))
        else:
            for i in range(start, end):
                xi = noise[i] if stoch else 0.0
                q = _affine_code(
                    x[i], sc, clip_lo, clip_hi, pre_clip, mult, ad, q_lo, q_hi, mode, xi
                )
                out[i] = np.int64(q)


@njit(cache=True, parallel=True)
def affine_fake(
    x, s, add, B, C, pre_clip, clip_lo, clip_hi, mult, q_lo, q_hi, mode, noise, voff, vdiv, out
):
    """Fake quantization ``dequantize(quantize(x))`` of the flat input into ``out`` (float64)."""
    stoch = mode == MODE_STOCHASTIC or mode == MODE_SIGN_STOCHASTIC
    tasks, cpr = _n_tasks(x.size, B)
    for t in prange(tasks):
        c, start, end = _task(t, B, C, cpr)
        sc = s[c]
        ad = add[c]
        vo = voff[c]
        if mode == MODE_NEAREST and pre_clip:  # branch-free loops vectorize
            for i in range(start, end):
                u = min(max(x[i] / sc, clip_lo), clip_hi) * mult + ad
                q = min(max(np.rint(u), q_lo), q_hi)
                out[i] = sc * (q + vo) / vdiv
        elif mode == MODE_NEAREST:
            for i in range(start, end):
                q = min(max(np.rint(x[i] / sc * mult + ad), q_lo), q_hi)
                out[i] = sc * (q + vo) / vdiv
        else:
            for i in range(start, end):
                xi = noise[i] if stoch else 0.0
                q = _affine_code(
                    x[i], sc, clip_lo, clip_hi, pre_clip, mult, ad, q_lo, q_hi, mode, xi
                )
                out[i] = sc * (q + vo) / vdiv


@njit(cache=True, parallel=True)
def affine_values(q, s, B, C, voff, vdiv, out):
    """Values ``s_c (q + voff_c) / vdiv`` of flat integer codes ``q`` into ``out``."""
    tasks, cpr = _n_tasks(q.size, B)
    for t in prange(tasks):
        c, start, end = _task(t, B, C, cpr)
        sc = s[c]
        vo = voff[c]
        for i in range(start, end):
            out[i] = sc * (np.float64(q[i]) + vo) / vdiv


@njit(cache=True, inline="always")
def _table_code(v, t, L, stochastic, xi):
    # searchsorted(t, v, side="right") - 1, clipped to [0, L - 2]
    lo = 0
    hi = L
    while lo < hi:
        mid = (lo + hi) // 2
        if t[mid] <= v:
            lo = mid + 1
        else:
            hi = mid
    i = min(max(lo - 1, 0), L - 2)
    ti = t[i]
    u = i + (v - ti) / (t[i + 1] - ti)
    u = min(max(u, 0.0), L - 1.0)
    q = np.floor(u + xi) if stochastic else np.rint(u)
    return np.int64(min(max(q, 0.0), L - 1.0))


@njit(cache=True, parallel=True)
def table_codes(x, s, tables, B, C, stochastic, noise, out):
    """Table indices of the flat input into ``out``; ``tables`` is ``(C, L)`` or ``(1, L)``."""
    L = tables.shape[1]
    per_channel = tables.shape[0] > 1
    tasks, cpr = _n_tasks(x.size, B)
    for k in prange(tasks):
        c, start, end = _task(k, B, C, cpr)
        t = tables[c] if per_channel else tables[0]
        sc = s[c]
        for i in range(start, end):
            xi = noise[i] if stochastic else 0.0
            out[i] = _table_code(x[i] / sc, t, L, stochastic, xi)


@njit(cache=True, parallel=True)
def table_fake(x, s, tables, B, C, stochastic, noise, out):
    """``s_c * t[q]`` for the flat input into ``out``."""
    L = tables.shape[1]
    per_channel = tables.shape[0] > 1
    tasks, cpr = _n_tasks(x.size, B)
    for k in prange(tasks):
        c, start, end = _task(k, B, C, cpr)
        t = tables[c] if per_channel else tables[0]
        sc = s[c]
        for i in range(start, end):
            xi = noise[i] if stochastic else 0.0
            out[i] = sc * t[_table_code(x[i] / sc, t, L, stochastic, xi)]


@njit(cache=True, parallel=True)
def table_values(q, s, tables, B, C, out):
    """``s_c * t[q]`` of flat table indices ``q`` into ``out``."""
    per_channel = tables.shape[0] > 1
    tasks, cpr = _n_tasks(q.size, B)
    for k in prange(tasks):
        c, start, end = _task(k, B, C, cpr)
        t = tables[c] if per_channel else tables[0]
        sc = s[c]
        for i in range(start, end):
            out[i] = sc * t[q[i]]
