"""Counter-based random numbers shared by every kernel backend.

A draw is a pure function of ``(base, j)``: ``base`` mixes the array's 64-bit key with a call
counter, ``j`` indexes the device (and the stream). The same function is written for numpy
(vectorized, below) and for numba/CUDA (scalar, in the kernel modules), so every backend sees the
same draws, in any order and in parallel, without sharing a generator state. The mixer is the
SplitMix64 finalizer; the normal deviate is Box-Muller on two 53-bit uniforms.
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


def mix_int(z: int) -> int:
    """SplitMix64 finalizer on a Python int (64-bit wrap-around)."""
    z &= MASK64
    z = ((z ^ (z >> 30)) * M1) & MASK64
    z = ((z ^ (z >> 27)) * M2) & MASK64
    return z ^ (z >> 31)


def call_base(key: int, counter: int) -> int:
    """Per-call base value from an array key and a call counter."""
    return mix_int(key ^ ((counter * PHI) & MASK64))


def _mix_np(z):
    z = z ^ (z >> np.uint64(30))
    z = z * np.uint64(M1)
    z = z ^ (z >> np.uint64(27))
    z = z * np.uint64(M2)
    return z ^ (z >> np.uint64(31))


def uniform_np(base: int, j):
    """Uniform deviates in (0, 1) for stream indices ``j`` (numpy reference)."""
    j = np.asarray(j, dtype=np.uint64)
    with np.errstate(over="ignore"):
        h = _mix_np(np.uint64(base) + j * np.uint64(PHI2))
    return ((h >> np.uint64(11)).astype(np.float64) + 0.5) * INV53


def normal_np(base: int, idx):
    """Standard normal deviates for device indices ``idx`` (numpy reference)."""
    idx = np.asarray(idx, dtype=np.uint64)
    u1 = uniform_np(base, idx * np.uint64(2))
    u2 = uniform_np(base, idx * np.uint64(2) + np.uint64(1))
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(TWO_PI * u2)
