"""The shared interface of the quantizer family (:class:`Quantizer`) and the helpers its
members use: argument checks, the per-channel layout, the numba kernel dispatch.

These helpers are the package's own (``devices.quantizers.*`` modules import them); users import
the quantizers from :mod:`devices.quantizers`.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from ..backends import CPU_BACKENDS, resolve
from ..validation import check_choice, check_int

__all__ = [
    "Quantizer",
    "ROUNDING_MODES",
    "BACKENDS",
    "QUANTIZER_BACKENDS",
    "AUTO_NUMBA_MIN_SIZE",
    "LSQ_MIN_STEP",
    "STAT_MIN_SCALE",
]


#: Rounding modes of :class:`Uniform`: round half to even, or stochastic (Gupta et al. 2015).
ROUNDING_MODES = ("nearest", "stochastic")

#: Backends of the quantizer family: plain numpy (the reference), numba (one parallel pass,
#: bitwise equal), or auto (numba for inputs of at least ``AUTO_NUMBA_MIN_SIZE`` elements).
BACKENDS = CPU_BACKENDS
#: ``BACKENDS`` under the name :mod:`devices` exports it with.
QUANTIZER_BACKENDS = BACKENDS
#: Smallest input that ``backend="auto"`` sends to the numba kernels.
AUTO_NUMBA_MIN_SIZE = 1 << 18

#: Smallest LSQ step (the reference clamps the learned step here).
LSQ_MIN_STEP = 1e-5
#: Smallest statistic-based scale (an all-zero channel cannot divide by zero).
STAT_MIN_SCALE = 1e-12


def check_backend(backend) -> str:
    """``backend`` if it is one of :data:`BACKENDS` and runs here (:func:`devices.backends.resolve`;
    ``"auto"`` stays ``"auto"``: numba or numpy is chosen per call by the input size)."""
    if backend != "auto":
        resolve(backend, BACKENDS)
    return backend


def numba_kernels():
    """The numba kernel module, or None when numba cannot be imported."""
    try:
        from . import kernels
    except ImportError:  # pragma: no cover - numba is a dependency
        return None
    return kernels


def layout(shape: tuple, axis) -> tuple[int, int]:
    """``(B, C)`` of the ``(A, C, B)`` view of a C-contiguous array around ``axis``."""
    if axis is None:
        return max(int(np.prod(shape, dtype=np.int64)), 1), 1
    return int(np.prod(shape[axis + 1 :], dtype=np.int64)), int(shape[axis])


def flat_channels(a: np.ndarray, C: int) -> np.ndarray:
    """A per-tensor or per-channel parameter as a contiguous float64 vector of length C."""
    a = np.asarray(a, dtype=np.float64)
    if a.size == 1:
        return np.full(C, float(a.reshape(())))
    return np.ascontiguousarray(a.reshape(-1))


def check_bits(bits) -> int:
    return check_int("bits", bits, lo=1, hi=8)


def check_axis(axis):
    if axis is None:
        return None
    if isinstance(axis, bool) or not isinstance(axis, int | np.integer):
        raise TypeError(f"axis must be None or an integer, got {axis!r}")
    return int(axis)


def as_input(name: str, x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if np.isnan(x).any():
        raise ValueError(f"{name} must not contain NaN")
    return x


def norm_axis(axis, ndim: int, name: str = "axis"):
    """Return ``axis`` as a non-negative index into an array of ``ndim`` dimensions."""
    if axis is None:
        return None
    if ndim == 0 or not -ndim <= axis < ndim:
        raise ValueError(
            f"{name}={axis} is out of range for an input with {ndim} dimension(s); per-channel "
            "quantization needs an input with at least one dimension (or use axis=None)"
        )
    return axis % ndim


def channel_shape(shape: tuple, axis) -> tuple:
    """Shape of a per-channel parameter that broadcasts against an input of ``shape``."""
    if axis is None:
        return ()
    return tuple(n if i == axis else 1 for i, n in enumerate(shape))


def reduce_channels(a: np.ndarray, axis, fn) -> np.ndarray:
    """Apply the reduction ``fn`` over every axis but ``axis`` (all axes when ``axis`` is None)."""
    if axis is None:
        return np.asarray(fn(a))
    others = tuple(i for i in range(a.ndim) if i != axis)
    return fn(a, axis=others, keepdims=True)


def expand_param(name: str, value, shape: tuple, axis, *, positive: bool) -> np.ndarray:
    """Broadcastable float array from a per-tensor or per-channel parameter.

    A per-channel parameter may be given with one entry per channel (1-D) or already in the
    broadcast shape.
    """
    v = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if positive and np.any(v <= 0):
        raise ValueError(f"{name} must be > 0, got {value!r}")
    target = channel_shape(shape, axis)
    if axis is None:
        if v.size != 1:
            raise ValueError(
                f"{name} must be a scalar for per-tensor quantization (axis=None), "
                f"got shape {v.shape}"
            )
        return v.reshape(())
    n = shape[axis]
    if v.size == 1:
        return np.broadcast_to(v.reshape(()), target).copy()
    if v.size == n and (v.ndim == 1 or v.shape == target):
        return v.reshape(target)
    raise ValueError(
        f"{name} must have 1 or {n} entries (one per channel along axis {axis}), "
        f"got shape {v.shape}"
    )


def per_channel_1d(s: np.ndarray) -> np.ndarray:
    """A broadcast-shaped per-channel parameter as a 1-D array (a 0-d array stays 0-d)."""
    return s.reshape(-1) if s.ndim else s


class KernelCalls(NamedTuple):
    """A quantizer's numba kernels with its parameters bound (see ``Quantizer._kernel_run``)."""

    stochastic: bool  # whether codes/fake read uniform draws
    values: Callable  # (q, out): values of int64 codes
    codes: Callable  # (x, xi, out): int64 codes of float64 inputs
    fake: Callable  # (x, xi, out): fake-quantized values


class Quantizer(abc.ABC):
    """Common interface of the quantizer family.

    A quantizer maps a real array ``x`` to integer codes and back:
    ``quantize(x) -> q``, ``dequantize(q, scale) -> x_hat``, ``fake(x) = dequantize(quantize(x))``.
    The scale (step) is a scalar for per-tensor quantization (``axis=None``) or one value per
    channel along ``axis`` (kept in the broadcast shape, e.g. ``(C, 1)`` for a 2-D weight).
    ``scale=None`` in any method means ``self.scale(x)``.

    Attributes
    ----------
    bits : int
        Bit width, 1 to 8.
    axis : int or None
        Channel axis for per-channel scales; None for one scale per tensor.
    """

    bits: int
    axis: int | None
    backend: str = "auto"

    # -- to be provided by subclasses ---------------------------------------------------------
    @property
    @abc.abstractmethod
    def code_range(self) -> tuple[int, int]:
        """Smallest and largest integer code ``(q_min, q_max)``."""

    def codes(self) -> np.ndarray:
        """All valid integer codes, ascending."""
        lo, hi = self.code_range
        return np.arange(lo, hi + 1)

    @abc.abstractmethod
    def scale(self, x) -> np.ndarray:
        """The step (per tensor or per channel, in the broadcast shape of ``x``)."""

    def _offset(self, s: np.ndarray) -> np.ndarray:
        """Integer offset ``z`` with ``x_hat = s * (q - z)`` (nonzero for affine grids only)."""
        return np.zeros_like(s)

    def _u_raw(self, x: np.ndarray, s: np.ndarray) -> np.ndarray:
        """Unclipped pre-rounding code."""
        return x / s + self._offset(s)

    def _round(self, u: np.ndarray, rng, noise) -> np.ndarray:
        lo, hi = self.code_range
        return np.clip(np.rint(u), lo, hi)

    # -- shared machinery ---------------------------------------------------------------------
    def _prepare(self, x, scale):
        x = as_input("x", x)
        axis = norm_axis(self.axis, x.ndim)
        if scale is None:
            s = self.scale(x)
        else:
            s = self._check_scale(scale, x.shape, axis)
        return x, s

    def _check_scale(self, scale, shape, axis) -> np.ndarray:
        return expand_param("scale", scale, shape, axis, positive=True)

    def pre_round(self, x, scale=None) -> np.ndarray:
        """Pre-rounding code ``u`` clipped to the code range (what CGA measures)."""
        x, s = self._prepare(x, scale)
        lo, hi = self.code_range
        return np.clip(self._u_raw(x, s), lo, hi)

    def quantize(self, x, scale=None, *, rng=None, noise=None) -> np.ndarray:
        """Integer codes of ``x`` (int64 array of the shape of ``x``).

        Parameters
        ----------
        x : array_like
            Values (NaN raises ``ValueError``).
        scale : array_like, optional
            Step, scalar or per channel; default ``self.scale(x)``.
        rng : numpy.random.Generator, optional
            Source of the rounding noise for stochastic rounding.
        noise : array_like, optional
            Uniform ``[0, 1)`` draws of the shape of ``x`` for stochastic rounding (instead of
            ``rng``), so that other backends can be compared on the same draws.
        """
        x, s = self._prepare(x, scale)
        k = self._kernels(x.size)
        if k is not None:
            return self._kernel_run(k, "codes", x, s, rng, noise)
        return self._round(self._u_raw(x, s), rng, noise).astype(np.int64)

    def dequantize(self, q, scale) -> np.ndarray:
        """Values ``s * (q - z)`` of integer codes ``q``.

        Parameters
        ----------
        q : array_like of int
            Codes inside :attr:`code_range`.
        scale : array_like
            The step used to quantize.
        """
        q = np.asarray(q)
        lo, hi = self.code_range
        if q.size and (q.min() < lo or q.max() > hi):
            raise ValueError(f"q must hold codes in [{lo}, {hi}], got values outside")
        s = self._check_scale(scale, q.shape, norm_axis(self.axis, q.ndim))
        k = self._kernels(q.size)
        if k is not None:
            return self._kernel_run(k, "values", q, s, None, None)
        return self._value(q.astype(np.float64), s)

    def _value(self, q: np.ndarray, s: np.ndarray) -> np.ndarray:
        return s * (q - self._offset(s))

    def _ste_grad(self, x, scale, ste: str, inside) -> np.ndarray:
        """Straight-through ``d fake / d x``: ones (``ste="identity"``), or the float mask
        ``inside(x, s)`` of the inputs that were not clipped (``ste="clipped"``)."""
        check_choice("ste", ste, ("clipped", "identity"))
        x, s = self._prepare(x, scale)
        if ste == "identity":
            return np.ones_like(x)
        return inside(x, s).astype(np.float64)

    def fake(self, x, scale=None, *, rng=None, noise=None) -> np.ndarray:
        """Fake quantization ``dequantize(quantize(x))`` (same shape and dtype float64)."""
        x, s = self._prepare(x, scale)
        k = self._kernels(x.size)
        if k is not None:
            return self._kernel_run(k, "fake", x, s, rng, noise)
        q = self._round(self._u_raw(x, s), rng, noise)
        return self._value(q, s)

    __call__ = fake

    # -- numba backend ------------------------------------------------------------------------
    def _kernels(self, size: int):
        """The numba kernel module when this call should use it, else None."""
        backend = getattr(self, "backend", "numpy")
        if backend == "numpy" or (backend == "auto" and size < AUTO_NUMBA_MIN_SIZE):
            return None
        k = numba_kernels()
        if k is None and backend == "numba":  # pragma: no cover - numba is a dependency
            raise ImportError("backend='numba' needs numba (pip install numba)")
        return k

    def _stochastic(self) -> bool:
        return getattr(self, "rounding", "nearest") == "stochastic"

    def _affine_spec(self, s_flat: np.ndarray) -> dict:
        """Kernel parameters of the affine family (see :mod:`devices.quantizers.kernels`)."""
        z = flat_channels(self._offset(s_flat), s_flat.size)
        lo, hi = self.code_range
        return {
            "pre_clip": False,
            "clip_lo": 0.0,
            "clip_hi": 0.0,
            "mult": 1.0,
            "add": z,
            "q_lo": float(lo),
            "q_hi": float(hi),
            "mode": 0,
            "voff": -z,
            "vdiv": 1.0,
        }

    def _kernel_run(self, k, what: str, x: np.ndarray, s: np.ndarray, rng, noise) -> np.ndarray:
        """``what`` ("codes", "fake" or "values") of ``x`` with the numba kernels ``k``."""
        axis = norm_axis(self.axis, x.ndim)
        B, C = layout(x.shape, axis)
        s_flat = flat_channels(s, C)
        calls = self._kernel_calls(k, x.shape, axis, s_flat, B, C)
        if what == "values":
            q = np.ascontiguousarray(x, dtype=np.int64).reshape(-1)
            out = np.empty(q.size, dtype=np.float64)
            calls.values(q, out)
            return out.reshape(x.shape)
        xf = np.ascontiguousarray(x, dtype=np.float64).reshape(-1)
        if calls.stochastic:
            xi = np.ascontiguousarray(draw_noise(x.shape, rng, noise)).reshape(-1)
        else:
            xi = np.empty(0)
        if what == "codes":
            out = np.empty(xf.size, dtype=np.int64)
            calls.codes(xf, xi, out)
        else:
            out = np.empty(xf.size, dtype=np.float64)
            calls.fake(xf, xi, out)
        return out.reshape(x.shape)

    def _kernel_calls(self, k, shape, axis, s_flat, B, C) -> KernelCalls:
        """The affine-family kernels bound to this quantizer's parameters."""
        spec = self._affine_spec(s_flat)
        mode = spec["mode"]
        voff, vdiv = spec["voff"], spec["vdiv"]
        params = (s_flat, spec["add"], B, C, spec["pre_clip"], spec["clip_lo"], spec["clip_hi"],
                  spec["mult"], spec["q_lo"], spec["q_hi"], mode)  # fmt: skip
        return KernelCalls(
            stochastic=mode in (k.MODE_STOCHASTIC, k.MODE_SIGN_STOCHASTIC),
            values=lambda q, out: k.affine_values(q, s_flat, B, C, voff, vdiv, out),
            codes=lambda xf, xi, out: k.affine_codes(xf, *params, xi, out),
            fake=lambda xf, xi, out: k.affine_fake(xf, *params, xi, voff, vdiv, out),
        )

    def _default_scale(self):
        """Step known without data (a given range), else None."""
        return None

    def _levels_scale(self, scale, missing: str) -> np.ndarray:
        """The checked step of :meth:`levels` (``missing`` ends the error when there is none)."""
        if scale is None:
            scale = self._default_scale()
            if scale is None:
                raise ValueError(f"scale is required for the levels {missing}")
        s = np.asarray(scale, dtype=np.float64)
        if not np.all(np.isfinite(s)) or np.any(s <= 0):
            raise ValueError(f"scale must be finite and > 0, got {scale!r}")
        return s

    def levels(self, scale=None) -> np.ndarray:
        """Representable values, ascending: shape ``(L,)`` per tensor, ``(C, L)`` per channel.

        Parameters
        ----------
        scale : array_like, optional
            Scalar step, or one step per channel. Required unless the quantizer has a fixed
            range (:class:`Uniform` with ``range`` given).
        """
        s = self._levels_scale(scale, f"of {type(self).__name__}")
        s = s.reshape(-1, 1) if s.ndim else s
        q = self.codes().astype(np.float64)
        return self._value(q, s)


def draw_noise(shape, rng, noise) -> np.ndarray:
    if noise is not None:
        xi = np.asarray(noise, dtype=np.float64)
        if xi.shape != tuple(shape):
            raise ValueError(f"noise must have the shape of x {tuple(shape)}, got {xi.shape}")
        if np.any((xi < 0) | (xi >= 1)):
            raise ValueError("noise must hold uniform draws in [0, 1)")
        return xi
    if rng is None:
        raise ValueError("stochastic rounding needs rng (a numpy Generator) or noise")
    return rng.random(shape)
