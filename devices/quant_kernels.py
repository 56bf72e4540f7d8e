"""numba kernels of the quantizer family (quantize, dequantize, fake; nearest and stochastic).

One pass over the data, parallel over elements, with the same floating-point operations in the
same order as the numpy reference in :mod:`devices.quantizers`, so the two backends agree bit for
bit (tests/devices/test_quantizer_family.py). The quantizers call these through their
``backend=`` option; nothing here validates its input (the public methods do).

Layout: the input is a C-contiguous array viewed as ``(A, C, B)`` around the channel axis
(``C = 1``, ``B = size`` per tensor); element ``i`` belongs to channel ``(i // B) % C``.

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
    n = x.size
    stoch = mode == MODE_STOCHASTIC or mode == MODE_SIGN_STOCHASTIC
    for i in prange(n):
        c = (i // B) % C
        xi = noise[i] if stoch else 0.0
        out[i] = np.int64(
            _affine_code(x[i], s[c], clip_lo, clip_hi, pre_clip, mult, add[c], q_lo, q_hi, mode, xi)
        )


@njit(cache=True, parallel=True)
def affine_fake(
    x, s, add, B, C, pre_clip, clip_lo, clip_hi, mult, q_lo, q_hi, mode, noise, voff, vdiv, out
):
    """Fake quantization ``dequantize(quantize(x))`` of the flat input into ``out`` (float64)."""
    n = x.size
    stoch = mode == MODE_STOCHASTIC or mode == MODE_SIGN_STOCHASTIC
    for i in prange(n):
        c = (i // B) % C
        xi = noise[i] if stoch else 0.0
        q = _affine_code(x[i], s[c], clip_lo, clip_hi, pre_clip, mult, add[c], q_lo, q_hi, mode, xi)
        out[i] = s[c] * (q + voff[c]) / vdiv


@njit(cache=True, parallel=True)
def affine_values(q, s, B, C, voff, vdiv, out):
    """Values ``s_c (q + voff_c) / vdiv`` of flat integer codes ``q`` into ``out``."""
    for i in prange(q.size):
        c = (i // B) % C
        out[i] = s[c] * (np.float64(q[i]) + voff[c]) / vdiv


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
    for i in prange(x.size):
        c = (i // B) % C
        t = tables[c] if per_channel else tables[0]
        xi = noise[i] if stochastic else 0.0
        out[i] = _table_code(x[i] / s[c], t, L, stochastic, xi)


@njit(cache=True, parallel=True)
def table_fake(x, s, tables, B, C, stochastic, noise, out):
    """``s_c * t[q]`` for the flat input into ``out``."""
    L = tables.shape[1]
    per_channel = tables.shape[0] > 1
    for i in prange(x.size):
        c = (i // B) % C
        t = tables[c] if per_channel else tables[0]
        xi = noise[i] if stochastic else 0.0
        out[i] = s[c] * t[_table_code(x[i] / s[c], t, L, stochastic, xi)]


@njit(cache=True, parallel=True)
def table_values(q, s, tables, B, C, out):
    """``s_c * t[q]`` of flat table indices ``q`` into ``out``."""
    per_channel = tables.shape[0] > 1
    for i in prange(q.size):
        c = (i // B) % C
        t = tables[c] if per_channel else tables[0]
        out[i] = s[c] * t[q[i]]
