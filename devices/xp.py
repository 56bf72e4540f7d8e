"""The array module of a backend: numpy on the CPU, cupy on a GPU.

Array code in :mod:`devices` is written once over an array module ``xp`` (numpy or cupy), so the
CPU tests run the same lines a GPU runs. The few cupy-only operations (importing cupy, moving
arrays between host and GPU, DLPack) live here and import cupy lazily, inside the functions.

The counter-based normal deviates of :mod:`devices._rng` are also written here over ``xp`` (the
same formula, the same numbers), for the few host-side draws of :class:`devices.DeviceArray`
(RESET noise, reads of a subset of devices) that must stay on the GPU.
"""

from __future__ import annotations

import numpy as np

from . import _rng
from .backends import GPU_BACKENDS

__all__ = [
    "GPU_BACKENDS",
    "array_module",
    "asnumpy",
    "from_dlpack",
    "get_xp",
    "is_cupy_array",
    "normal",
    "pulse_trains",
    "to_device",
    "uniform",
]


def get_xp(backend: str):
    """Array module of a (resolved) backend: cupy for ``"cupy"``, numpy otherwise.

    Parameters
    ----------
    backend : str
        A resolved backend name (``"numpy"``, ``"numba"``, ``"cuda-sim"`` or ``"cupy"``).

    Returns
    -------
    module
        ``numpy`` or ``cupy``.
    """
    if backend in GPU_BACKENDS:
        import cupy

        return cupy
    return np


def is_cupy_array(a) -> bool:
    """Whether ``a`` is a cupy array (checked without importing cupy)."""
    return type(a).__module__.split(".")[0] == "cupy"


def array_module(a):
    """numpy or cupy, whichever ``a`` belongs to (numpy for anything that is not cupy)."""
    if is_cupy_array(a):
        import cupy

        return cupy
    return np


def asnumpy(a):
    """A numpy array with the values of ``a`` (a copy from the GPU for cupy arrays; numpy
    arrays and array-likes pass through ``numpy.asarray``)."""
    if is_cupy_array(a):
        return a.get()
    return np.asarray(a)


def to_device(a, xp, dtype=None):
    """``a`` as an array of the module ``xp`` (host to GPU copy when ``xp`` is cupy).

    Parameters
    ----------
    a : array_like
    xp : module
        numpy or cupy.
    dtype : dtype, optional
    """
    if xp is np:
        return np.asarray(asnumpy(a), dtype=dtype)
    return xp.asarray(a, dtype=dtype)


def from_dlpack(obj, xp):
    """Zero-copy view of a DLPack-capable object (e.g. a torch tensor) as an ``xp`` array.

    numpy accepts CPU tensors only; cupy accepts CUDA tensors (same device).
    """
    return xp.from_dlpack(obj)


def uniform(xp, base: int, j):
    """Counter-based uniforms in (0, 1), :func:`devices._rng.uniform_np` over ``xp``."""
    return _rng.uniform_xp(xp, base, j)


def normal(xp, base: int, idx):
    """Counter-based standard normals for device indices ``idx``, :func:`devices._rng.normal_np`
    over ``xp`` (the same numbers)."""
    return _rng.normal_xp(xp, base, idx)


def pulse_trains(xp, p, BL, bl: int, base: int):
    """Bit-packed Bernoulli pulse trains from the counter-based generator, over ``xp``.

    Bit ``t`` of row ``(b, r)`` is set when ``t < BL[b]`` and
    ``uniform(base, (b n + r) 64 nw + t) < p[b, r]`` (``nw = ceil(bl / 64)`` words per row), so
    the trains are a pure function of ``base`` and the probabilities: the CUDA kernel
    ``devices.kernels.cuda.pulse_trains`` draws the same bits on the GPU.

    Parameters
    ----------
    xp : module
        numpy or cupy.
    p : array, shape (batch, n)
        Probabilities in [0, 1].
    BL : array of int, shape (batch,)
        Train length of each sample (at most ``bl``).
    bl : int
        Longest train (sets the number of words).
    base : int
        Call base (:func:`devices._rng.call_base`).

    Returns
    -------
    array of uint64, shape (batch, n, ceil(bl / 64))
    """
    B, n = p.shape
    nw = (int(bl) + 63) // 64
    out = xp.zeros((B, n, nw), dtype=xp.uint64)
    t = xp.arange(nw * 64, dtype=xp.uint64)
    t_int = t.astype(xp.int64)
    shift = xp.arange(64, dtype=xp.uint64)
    for b in range(B):  # one sample at a time keeps the temporaries at n x 64 nw
        idx = (xp.arange(n, dtype=xp.uint64) + xp.uint64(b * n))[:, None] * xp.uint64(nw * 64)
        u = uniform(xp, base, idx + t[None, :])
        bits = (u < p[b][:, None]) & (t_int[None, :] < BL[b])
        words = bits.reshape(n, nw, 64).astype(xp.uint64) << shift
        out[b] = words.sum(axis=-1, dtype=xp.uint64)  # distinct bits: the sum is the OR
    return out
