"""Counter-based random numbers shared by every kernel backend.

A draw is a pure function of ``(base, j)``: ``base`` mixes the array's 64-bit key with a call
counter, ``j`` indexes the device (and the stream). The same function is written for numpy/cupy
(vectorized, below) and for numba/CUDA (scalar, in the kernel modules), so every backend sees the
same draws, in any order and in parallel, without sharing a generator state. The mixer is the
SplitMix64 finalizer.

Normal deviates use a 256-layer ziggurat (Marsaglia and Tsang's layered rejection method, written
here from its description) on hashed 64-bit words: the normal of device ``i`` reads the hashes
``mix(base + 2 i PHI2 + k PHI)`` for ``k = 0, 1, ...``. The low 8 bits of a word pick a layer,
bit 8 the sign and the top 53 bits the uniform abscissa; in about 99% of the draws the point falls
inside the layer's core rectangle and one hash and one multiply give the deviate. Otherwise the
wedge is tested against the density with a further uniform, the base layer falls into the exact
tail sampler (Marsaglia 1964: ``r + t`` with ``t = -ln(u1)/r`` accepted when
``-2 ln(u2) > t^2``, repeated until accepted), and a rejected wedge point restarts from the next
hash. Every step is a rejection step of an exact sampler, so the deviates are standard normal in
distribution (to the 53-bit resolution of the uniforms), not an approximation of it.
"""

from __future__ import annotations

import math

import numpy as np

MASK64 = (1 << 64) - 1
PHI = 0x9E3779B97F4A7C15
PHI2 = 0xD1B54A32D192ED03
M1 = 0xBF58476D1CE4E5B9
M2 = 0x94D049BB133111EB
TWO_PI = 2.0 * math.pi
INV53 = 1.0 / float(1 << 53)
#: Stride of the normal streams: device ``i`` starts at ``base + i * PHI2x2`` (= 2 i PHI2).
PHI2X2 = (2 * PHI2) & MASK64

#: Number of ziggurat layers (a power of two: the layer is the word's low bits).
ZIG_LAYERS = 256
#: Start of the tail of the 256-layer ziggurat (the root of the equal-area condition).
ZIG_R = 3.6541528853610088


def _zig_tables(n: int = ZIG_LAYERS, r: float = ZIG_R):
    """Layer edges ``x`` (decreasing, ``x[n] = 0``) and densities ``f = exp(-x^2/2)``.

    Layer ``i`` is the box ``[0, x[i]] x [f(x[i]), f(x[i+1])]`` of area ``v``; the base layer
    (``i = 0``) is the rectangle below ``f(r)`` plus the tail beyond ``r``, taken as a box of
    width ``x[0] = v / f(r)``.
    """
    f_r = math.exp(-0.5 * r * r)
    v = r * f_r + math.sqrt(math.pi / 2.0) * math.erfc(r / math.sqrt(2.0))
    x = np.empty(n + 1)
    x[0] = v / f_r
    x[1] = r
    for i in range(1, n - 1):
        x[i + 1] = math.sqrt(-2.0 * math.log(v / x[i] + math.exp(-0.5 * x[i] * x[i])))
    x[n] = 0.0
    return x, np.exp(-0.5 * x * x), v


ZIG_X, ZIG_F, ZIG_V = _zig_tables()


def mix_int(z: int) -> int:
    """SplitMix64 finalizer on a Python int (64-bit wrap-around)."""
    z &= MASK64
    z = ((z ^ (z >> 30)) * M1) & MASK64
    z = ((z ^ (z >> 27)) * M2) & MASK64
    return z ^ (z >> 31)


def call_base(key: int, counter: int) -> int:
    """Per-call base value from an array key and a call counter."""
    return mix_int(key ^ ((counter * PHI) & MASK64))


def call_bases(key: int, counter: int, n: int) -> np.ndarray:
    """``[call_base(key, counter + b) for b in range(n)]`` as a uint64 array (one numpy pass)."""
    c = (np.arange(n, dtype=np.uint64) + np.uint64(counter & MASK64)) * np.uint64(PHI)
    with np.errstate(over="ignore"):
        return _mix_xp(np, np.uint64(key & MASK64) ^ c)


def _mix_xp(xp, z):
    z = z ^ (z >> xp.uint64(30))
    z = z * xp.uint64(M1)
    z = z ^ (z >> xp.uint64(27))
    z = z * xp.uint64(M2)
    return z ^ (z >> xp.uint64(31))


def uniform_xp(xp, base: int, j):
    """Uniform deviates in (0, 1) for stream indices ``j`` over the array module ``xp``."""
    j = xp.asarray(j, dtype=xp.uint64)
    with np.errstate(over="ignore"):
        h = _mix_xp(xp, xp.uint64(base) + j * xp.uint64(PHI2))
    return ((h >> xp.uint64(11)).astype(xp.float64) + 0.5) * INV53


def _open_unit(xp, h):
    return ((h >> xp.uint64(11)).astype(xp.float64) + 0.5) * INV53


def normal_xp(xp, base: int, idx):
    """Standard normal deviates for device indices ``idx`` over ``xp`` (the ziggurat above).

    Vectorized: all devices take their first hash; the few that fall outside the core
    rectangles continue, as a shrinking subset, with the next hashes of their own streams.
    """
    idx = xp.asarray(idx, dtype=xp.uint64)
    shape = idx.shape
    zx = xp.asarray(ZIG_X)
    zf = xp.asarray(ZIG_F)
    phi = xp.uint64(PHI)
    with np.errstate(over="ignore"):
        s = xp.uint64(base) + idx.ravel() * xp.uint64(PHI2X2)
        out = xp.empty(s.size, dtype=xp.float64)
        pend = xp.arange(s.size)
        k = xp.zeros(s.size, dtype=xp.uint64)
        while pend.size:
            sp = s[pend]
            h = _mix_xp(xp, sp + k[pend] * phi)
            k[pend] += xp.uint64(1)
            lay = (h & xp.uint64(ZIG_LAYERS - 1)).astype(xp.int64)
            x = (h >> xp.uint64(11)).astype(xp.float64) * INV53 * zx[lay]
            neg = ((h >> xp.uint64(8)) & xp.uint64(1)) != 0
            ok = x < zx[lay + 1]
            tail = ~ok & (lay == 0)
            if bool(tail.any()):
                ti = xp.nonzero(tail)[0]
                x[ti] = _tail(xp, sp[ti], k, pend[ti])
                ok |= tail
            wedge = ~ok
            if bool(wedge.any()):
                wi = xp.nonzero(wedge)[0]
                lw = lay[wi]
                u = _open_unit(xp, _mix_xp(xp, sp[wi] + k[pend[wi]] * phi))
                k[pend[wi]] += xp.uint64(1)
                xw = x[wi]
                ok[wi] = zf[lw] + u * (zf[lw + 1] - zf[lw]) < xp.exp(-0.5 * xw * xw)
            done = pend[ok]
            out[done] = xp.where(neg[ok], -x[ok], x[ok])
            pend = pend[~ok]
    return out.reshape(shape)


def _tail(xp, s, k, rows):
    """Exact tail beyond ``ZIG_R`` for the streams ``s`` (rows ``rows`` of the counters ``k``,
    advanced in place): ``r + t``, ``t = -ln(u1) / r``, accepted when ``-2 ln(u2) > t^2``."""
    phi = xp.uint64(PHI)
    res = xp.empty(s.size, dtype=xp.float64)
    todo = xp.arange(s.size)
    while todo.size:
        kk = k[rows[todo]]
        t = -xp.log(_open_unit(xp, _mix_xp(xp, s[todo] + kk * phi))) / ZIG_R
        y = -xp.log(_open_unit(xp, _mix_xp(xp, s[todo] + (kk + xp.uint64(1)) * phi)))
        k[rows[todo]] += xp.uint64(2)
        acc = y + y > t * t
        res[todo[acc]] = ZIG_R + t[acc]
        todo = todo[~acc]
    return res


def uniform_np(base: int, j):
    """Uniform deviates in (0, 1) for stream indices ``j`` (numpy reference)."""
    return uniform_xp(np, base, j)


def normal_np(base: int, idx):
    """Standard normal deviates for device indices ``idx`` (numpy reference)."""
    return normal_xp(np, base, idx)
