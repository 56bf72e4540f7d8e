"""Converters and weight grids: uniform quantizers and the low-bit QAT quantizer family.

:class:`UniformQuantizer` is the converter the device arrays use for their DAC and ADC.
The quantizer family (``specs/quantizers.md`` sections 1-3) shares one interface
(:class:`Quantizer`): :class:`Uniform` (symmetric or affine, nearest or stochastic rounding),
:class:`LSQ` (learned step size, with its gradient formulas as numpy functions) and
:class:`StatsQ` (the OFQ weight quantizer, scale ``2 mean|W_c|`` per output channel, no zero
level) and :class:`LevelGrid` (the nearest entry of a sorted table, e.g. the weight levels of a
device preset: ``specs/quantizers.md`` section 5). Everything here is plain numpy; the torch
straight-through versions live in :mod:`synapse_sim.nn.quant`.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .backends import CPU_BACKENDS
from .validation import check_choice, check_int, check_real

__all__ = [
    "UniformQuantizer",
    "Quantizer",
    "Uniform",
    "LSQ",
    "StatsQ",
    "LevelGrid",
    "ROUNDING_MODES",
    "BACKENDS",
    "LEVEL_SCALINGS",
    "DEVICE_MAPPINGS",
    "lsq_bounds",
    "lsq_fake_quant",
    "lsq_gradients",
    "statsq_scale",
]


@dataclass(frozen=True, kw_only=True)
class UniformQuantizer:
    """Uniform quantizer with ``2**bits`` levels on ``[lo, hi]`` (values outside are clipped).

    Parameters
    ----------
    bits : int
        Bit width, 1 to 16. One bit gives the two levels ``lo`` and ``hi``.
    lo, hi : float
        Range, ``lo < hi``. A symmetric converter uses ``lo = -hi``.
    stochastic : bool
        Round stochastically (probability proportional to the distance to each neighbour)
        instead of to the nearest level.

    Examples
    --------
    >>> q = UniformQuantizer(bits=2, lo=0.0, hi=3.0)
    >>> q(np.array([0.2, 1.6, 7.0])).tolist()
    [0.0, 2.0, 3.0]
    """

    bits: int
    lo: float
    hi: float
    stochastic: bool = False

    def __post_init__(self):
        check_int("bits", self.bits, lo=1, hi=16)
        lo = check_real("lo", self.lo)
        hi = check_real("hi", self.hi)
        if not lo < hi:
            raise ValueError(f"lo must be < hi, got lo={self.lo!r}, hi={self.hi!r}")
        if not isinstance(self.stochastic, bool):
            raise TypeError(f"stochastic must be a bool, got {self.stochastic!r}")

    @property
    def step(self) -> float:
        """Distance between neighbouring levels."""
        return (self.hi - self.lo) / (2**self.bits - 1)

    def levels(self) -> np.ndarray:
        """All representable values."""
        return self.lo + self.step * np.arange(2**self.bits)

    def __call__(self, x, rng: np.random.Generator | None = None):
        """Quantize ``x`` (any array module with numpy semantics: numpy or cupy).

        Parameters
        ----------
        x : array_like
            Values.
        rng : numpy.random.Generator, optional
            Required when ``stochastic`` is set.
        """
        xp = _array_module(x)
        x = xp.asarray(x, dtype=xp.float64)
        if bool(xp.any(xp.isnan(x))):
            raise ValueError("cannot quantize NaN values")
        r = (xp.clip(x, self.lo, self.hi) - self.lo) / self.step
        if self.stochastic:
            if rng is None:
                raise ValueError("rng is required for stochastic rounding")
            f = xp.floor(r)
            r = f + (xp.asarray(rng.random(r.shape)) < (r - f))
        else:
            r = xp.floor(r + 0.5)
        return self.lo + self.step * xp.clip(r, 0, 2**self.bits - 1)


def _array_module(x):
    mod = type(x).__module__.split(".")[0]
    if mod == "cupy":  # pragma: no cover - GPU only
        import cupy

        return cupy
    return np


# --------------------------------------------------------------------------------------------
# Quantizer family for low-bit weights and quantization-aware training (specs/quantizers.md)
# --------------------------------------------------------------------------------------------

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


def _check_backend(backend) -> str:
    return check_choice("backend", backend, BACKENDS)


def _numba_kernels():
    """The numba kernel module, or None when numba cannot be imported."""
    try:
        from . import quant_kernels
    except ImportError:  # pragma: no cover - numba is a dependency
        return None
    return quant_kernels


def _layout(shape: tuple, axis) -> tuple[int, int]:
    """``(B, C)`` of the ``(A, C, B)`` view of a C-contiguous array around ``axis``."""
    if axis is None:
        return max(int(np.prod(shape, dtype=np.int64)), 1), 1
    return int(np.prod(shape[axis + 1 :], dtype=np.int64)), int(shape[axis])


def _flat_channels(a: np.ndarray, C: int) -> np.ndarray:
    """A per-tensor or per-channel parameter as a contiguous float64 vector of length C."""
    a = np.asarray(a, dtype=np.float64)
    if a.size == 1:
        return np.full(C, float(a.reshape(())))
    return np.ascontiguousarray(a.reshape(-1))


def _check_bits(bits) -> int:
    return check_int("bits", bits, lo=1, hi=8)


def _check_axis_arg(axis):
    if axis is None:
        return None
    if isinstance(axis, bool) or not isinstance(axis, int | np.integer):
        raise TypeError(f"axis must be None or an integer, got {axis!r}")
    return int(axis)


def _as_input(name: str, x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if np.isnan(x).any():
        raise ValueError(f"{name} must not contain NaN")
    return x


def _norm_axis(axis, ndim: int, name: str = "axis"):
    """Return ``axis`` as a non-negative index into an array of ``ndim`` dimensions."""
    if axis is None:
        return None
    if ndim == 0 or not -ndim <= axis < ndim:
        raise ValueError(
            f"{name}={axis} is out of range for an input with {ndim} dimension(s); per-channel "
            "quantization needs an input with at least one dimension (or use axis=None)"
        )
    return axis % ndim


def _channel_shape(shape: tuple, axis) -> tuple:
    """Shape of a per-channel parameter that broadcasts against an input of ``shape``."""
    if axis is None:
        return ()
    return tuple(n if i == axis else 1 for i, n in enumerate(shape))


def _reduce_channels(a: np.ndarray, axis, fn) -> np.ndarray:
    """Apply the reduction ``fn`` over every axis but ``axis`` (all axes when ``axis`` is None)."""
    if axis is None:
        return np.asarray(fn(a))
    others = tuple(i for i in range(a.ndim) if i != axis)
    return fn(a, axis=others, keepdims=True)


def _expand_param(name: str, value, shape: tuple, axis, *, positive: bool) -> np.ndarray:
    """Broadcastable float array from a per-tensor or per-channel parameter.

    A per-channel parameter may be given with one entry per channel (1-D) or already in the
    broadcast shape.
    """
    v = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if positive and np.any(v <= 0):
        raise ValueError(f"{name} must be > 0, got {value!r}")
    target = _channel_shape(shape, axis)
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


def _per_channel_1d(s: np.ndarray) -> np.ndarray:
    """A broadcast-shaped per-channel parameter as a 1-D array (a 0-d array stays 0-d)."""
    return s.reshape(-1) if s.ndim else s


class _KernelCalls(NamedTuple):
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
        x = _as_input("x", x)
        axis = _norm_axis(self.axis, x.ndim)
        if scale is None:
            s = self.scale(x)
        else:
            s = self._check_scale(scale, x.shape, axis)
        return x, s

    def _check_scale(self, scale, shape, axis) -> np.ndarray:
        return _expand_param("scale", scale, shape, axis, positive=True)

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
        s = self._check_scale(scale, q.shape, _norm_axis(self.axis, q.ndim))
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
        k = _numba_kernels()
        if k is None and backend == "numba":  # pragma: no cover - numba is a dependency
            raise ImportError("backend='numba' needs numba (pip install numba)")
        return k

    def _stochastic(self) -> bool:
        return getattr(self, "rounding", "nearest") == "stochastic"

    def _affine_spec(self, s_flat: np.ndarray) -> dict:
        """Kernel parameters of the affine family (see :mod:`devices.quant_kernels`)."""
        z = _flat_channels(self._offset(s_flat), s_flat.size)
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
        axis = _norm_axis(self.axis, x.ndim)
        B, C = _layout(x.shape, axis)
        s_flat = _flat_channels(s, C)
        calls = self._kernel_calls(k, x.shape, axis, s_flat, B, C)
        if what == "values":
            q = np.ascontiguousarray(x, dtype=np.int64).reshape(-1)
            out = np.empty(q.size, dtype=np.float64)
            calls.values(q, out)
            return out.reshape(x.shape)
        xf = np.ascontiguousarray(x, dtype=np.float64).reshape(-1)
        if calls.stochastic:
            xi = np.ascontiguousarray(_draw_noise(x.shape, rng, noise)).reshape(-1)
        else:
            xi = np.empty(0)
        if what == "codes":
            out = np.empty(xf.size, dtype=np.int64)
            calls.codes(xf, xi, out)
        else:
            out = np.empty(xf.size, dtype=np.float64)
            calls.fake(xf, xi, out)
        return out.reshape(x.shape)

    def _kernel_calls(self, k, shape, axis, s_flat, B, C) -> _KernelCalls:
        """The affine-family kernels bound to this quantizer's parameters."""
        spec = self._affine_spec(s_flat)
        mode = spec["mode"]
        voff, vdiv = spec["voff"], spec["vdiv"]
        params = (s_flat, spec["add"], B, C, spec["pre_clip"], spec["clip_lo"], spec["clip_hi"],
                  spec["mult"], spec["q_lo"], spec["q_hi"], mode)  # fmt: skip
        return _KernelCalls(
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


def _draw_noise(shape, rng, noise) -> np.ndarray:
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


@dataclass(frozen=True, eq=False)
class Uniform(Quantizer):
    """Uniform quantizer: symmetric (narrow or full range) or affine (Jacob et al. 2018).

    Parameters
    ----------
    bits : int
        Bit width, 1 to 8.
    range : None, float, array_like or (lo, hi)
        ``None``: symmetric with ``r = max|x|`` (per tensor or per channel), read from the data.
        A scalar (or a 1-D array with one entry per channel) ``r > 0``: symmetric on
        ``[-r, r]``. A tuple or list ``(lo, hi)`` (scalars or per-channel arrays, ``lo <= hi``):
        affine, widened to include 0.
    narrow : bool
        Symmetric only. Narrow range (default): ``s = r / (2**(bits-1) - 1)``, codes
        ``-(2**(bits-1)-1) .. 2**(bits-1)-1`` (``2**bits - 1`` levels with 0). Full range:
        ``s = r / 2**(bits-1)``, codes ``-2**(bits-1) .. 2**(bits-1)-1``. One bit is binary
        ``{-r, +r}`` (codes -1, +1, ``sign(0) = +1``) either way.
    axis : int or None
        Channel axis of per-channel ranges/scales (0 for output channels), or None.
    rounding : {"nearest", "stochastic"}
        Round half to even, or ``floor(u + xi)``, ``xi ~ U[0, 1)`` (unbiased inside the range).
    backend : {"auto", "numpy", "numba"}
        Kernels of ``quantize`` / ``dequantize`` / ``fake``: the numpy reference, the numba
        kernels of :mod:`devices.quant_kernels` (bitwise equal), or numba for inputs of at least
        ``AUTO_NUMBA_MIN_SIZE`` elements.

    Examples
    --------
    >>> q = Uniform(4, (-0.3, 1.2))
    >>> q.quantize([-0.3, 0.0, 0.33, 1.2, 1.5]).tolist()
    [0, 3, 6, 15, 15]
    >>> Uniform(4, 1.0).code_range
    (-7, 7)
    """

    bits: int
    range: object = None
    narrow: bool = True
    axis: int | None = None
    rounding: str = "nearest"
    backend: str = "auto"

    def __post_init__(self):
        _check_bits(self.bits)
        _check_axis_arg(self.axis)
        _check_backend(self.backend)
        if not isinstance(self.narrow, bool):
            raise TypeError(f"narrow must be a bool, got {self.narrow!r}")
        check_choice("rounding", self.rounding, ROUNDING_MODES)
        r = self.range
        if r is None:
            kind, lo, hi = "dynamic", None, None
        elif isinstance(r, tuple | list):
            if len(r) != 2:
                raise ValueError(f"range as a pair must be (lo, hi), got {r!r}")
            lo = np.asarray(r[0], dtype=np.float64)
            hi = np.asarray(r[1], dtype=np.float64)
            if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
                raise ValueError(f"range must be finite (no NaN or inf), got {r!r}")
            if np.any(lo > hi):
                raise ValueError(f"range must have lo <= hi, got lo={r[0]!r}, hi={r[1]!r}")
            lo, hi = np.minimum(lo, 0.0), np.maximum(hi, 0.0)
            if np.any(hi - lo <= 0):
                raise ValueError(f"range must have lo < hi after widening to 0, got {r!r}")
            kind = "affine"
        else:
            if isinstance(r, bool):
                raise TypeError(f"range must be None, a number or (lo, hi), got {r!r}")
            try:
                hi = np.asarray(r, dtype=np.float64)
            except (TypeError, ValueError):
                raise TypeError(f"range must be None, a number or (lo, hi), got {r!r}") from None
            if not np.all(np.isfinite(hi)) or np.any(hi <= 0):
                raise ValueError(f"range must be finite and > 0, got {r!r}")
            kind, lo = "symmetric", -hi
        if kind != "dynamic":
            if max(lo.ndim, hi.ndim) > 1:
                raise ValueError(f"range entries must be scalars or 1-D arrays, got {r!r}")
            if max(lo.size, hi.size) > 1 and self.axis is None:
                raise ValueError("a per-channel range (arrays) needs axis (e.g. axis=0)")
        object.__setattr__(self, "_kind", kind)
        object.__setattr__(self, "_lo", lo)
        object.__setattr__(self, "_hi", hi)

    @property
    def symmetric(self) -> bool:
        """True for a symmetric grid (range None or a scalar)."""
        return self._kind != "affine"

    @property
    def code_range(self) -> tuple[int, int]:
        """Smallest and largest integer code ``(q_min, q_max)``."""
        b = self.bits
        if not self.symmetric:
            return 0, 2**b - 1
        if b == 1:
            return -1, 1
        if self.narrow:
            return -(2 ** (b - 1) - 1), 2 ** (b - 1) - 1
        return -(2 ** (b - 1)), 2 ** (b - 1) - 1

    def codes(self) -> np.ndarray:
        """All valid integer codes, ascending (``[-1, 1]`` for one symmetric bit)."""
        if self.symmetric and self.bits == 1:
            return np.array([-1, 1])
        return super().codes()

    def _divisor(self) -> float:
        b = self.bits
        if not self.symmetric:
            return 2.0**b - 1
        if b == 1:
            return 1.0
        return 2.0 ** (b - 1) - 1 if self.narrow else 2.0 ** (b - 1)

    def scale(self, x=None) -> np.ndarray:
        """Step ``s``: from the given range, or from ``max|x|`` when ``range`` is None.

        Parameters
        ----------
        x : array_like, optional
            Input (needed for ``range=None``; with a given range it only sets the broadcast
            shape of a per-channel step).
        """
        if self._kind == "dynamic":
            if x is None:
                raise ValueError("x is required to compute the scale when range is None")
            x = _as_input("x", x)
            axis = _norm_axis(self.axis, x.ndim)
            r = _reduce_channels(np.abs(x), axis, np.max)
            return np.maximum(r, STAT_MIN_SCALE) / self._divisor()
        s = (self._hi if self.symmetric else self._hi - self._lo) / self._divisor()
        if x is None:
            return s
        x = np.asarray(x)
        return _expand_param("range", s, x.shape, _norm_axis(self.axis, x.ndim), positive=True)

    def _default_scale(self):
        return None if self._kind == "dynamic" else self.scale()

    def zero_point(self, scale) -> np.ndarray:
        """Integer zero point ``z = clip(round(-lo / s), 0, 2**bits - 1)`` (0 if symmetric).

        Parameters
        ----------
        scale : array_like
            The step.
        """
        s = np.asarray(scale, dtype=np.float64)
        if self.symmetric:
            return np.zeros_like(s)
        lo = self._lo
        if lo.size > 1 and s.ndim > 1:
            lo = lo.reshape(s.shape)
        return np.clip(np.rint(-lo / s), 0, 2**self.bits - 1)

    def _offset(self, s):
        return self.zero_point(s)

    def _affine_spec(self, s_flat):
        spec = super()._affine_spec(s_flat)
        stochastic = self.rounding == "stochastic"
        if self.symmetric and self.bits == 1:
            spec["mode"] = 3 if stochastic else 2
        else:
            spec["mode"] = 1 if stochastic else 0
        return spec

    def _round(self, u, rng, noise):
        lo, hi = self.code_range
        one_bit = self.symmetric and self.bits == 1
        if self.rounding == "stochastic":
            xi = _draw_noise(u.shape, rng, noise)
            if one_bit:  # round in index space k = (q + 1) / 2, spacing 2 s
                k = np.clip(np.floor((u + 1.0) / 2.0 + xi), 0, 1)
                return 2.0 * k - 1.0
            return np.clip(np.floor(u + xi), lo, hi)
        if one_bit:
            return np.where(u >= 0, 1.0, -1.0)
        return np.clip(np.rint(u), lo, hi)

    def grad_input(self, x, scale=None, *, ste: str = "clipped") -> np.ndarray:
        """Straight-through derivative ``d fake / d x``.

        Parameters
        ----------
        x : array_like
            Input.
        scale : array_like, optional
            Step; default ``self.scale(x)``.
        ste : {"clipped", "identity"}
            ``"clipped"``: 1 where ``q_min <= u <= q_max``, 0 where the input was clipped;
            ``"identity"``: 1 everywhere.
        """
        lo, hi = self.code_range

        def inside(x, s):
            u = self._u_raw(x, s)
            return (u >= lo) & (u <= hi)

        return self._ste_grad(x, scale, ste, inside)


def lsq_bounds(bits: int, signed: bool = True) -> tuple[int, int]:
    """LSQ code bounds ``(Q_N, Q_P)``: codes run from ``-Q_N`` to ``Q_P``.

    Signed: ``Q_N = 2**(bits-1)``, ``Q_P = 2**(bits-1) - 1``; one signed bit is ``sign`` with
    ``Q_N = Q_P = 1``. Unsigned: ``Q_N = 0``, ``Q_P = 2**bits - 1``.

    Parameters
    ----------
    bits : int
        Bit width, 1 to 8.
    signed : bool
        Signed or unsigned codes.
    """
    b = _check_bits(bits)
    if not signed:
        return 0, 2**b - 1
    if b == 1:
        return 1, 1
    return 2 ** (b - 1), 2 ** (b - 1) - 1


def _lsq_codes(u: np.ndarray, bits: int, signed: bool) -> np.ndarray:
    qn, qp = lsq_bounds(bits, signed)
    uc = np.clip(u, -qn, qp)
    if signed and bits == 1:
        return np.where(uc >= 0, 1.0, -1.0)
    return np.rint(uc)


def lsq_fake_quant(v, step, bits: int, signed: bool = True, axis=None) -> np.ndarray:
    """LSQ forward (Esser et al. 2020): ``s * round(clip(v / s, -Q_N, Q_P))``.

    Parameters
    ----------
    v : array_like
        Values.
    step : array_like
        Step ``s`` (scalar, or one per channel along ``axis``); clamped below at ``1e-5``.
    bits : int
        Bit width, 1 to 8.
    signed : bool
        Signed or unsigned codes (see :func:`lsq_bounds`).
    axis : int or None
        Channel axis of a per-channel step.

    Examples
    --------
    >>> lsq_fake_quant([0.37, -0.52, 0.05, 1.3], 0.25, bits=3).tolist()
    [0.25, -0.5, 0.0, 0.75]
    """
    return LSQ(bits, signed=signed, axis=axis).fake(v, step)


def lsq_gradients(v, step, bits: int, signed: bool = True, axis=None, grad_output=None, n=None):
    """LSQ backward: gradients of a loss with respect to ``v`` and to the step ``s``.

    Element-wise (``u = v / s``)::

        d v_hat / d v = 1 if -Q_N < u < Q_P else 0
        d v_hat / d s = round(u) - u inside;  -Q_N if u <= -Q_N;  Q_P if u >= Q_P

    and the step gradient is summed over the elements each step serves and multiplied by the
    gradient scale ``g = 1 / sqrt(N * Q_P)``.

    Parameters
    ----------
    v : array_like
        Values.
    step : array_like
        Step (scalar, or one per channel along ``axis``).
    bits : int
        Bit width, 1 to 8.
    signed : bool
        Signed or unsigned codes.
    axis : int or None
        Channel axis of a per-channel step.
    grad_output : array_like, optional
        Upstream gradient ``dL / d v_hat`` (default ones).
    n : int, optional
        ``N`` of the gradient scale; default the number of elements one step serves.

    Returns
    -------
    grad_v : numpy.ndarray
        ``dL / dv``, shape of ``v``.
    grad_step : numpy.ndarray
        ``dL / ds`` including the factor ``g``, with the shape of ``step``.

    Examples
    --------
    >>> gv, gs = lsq_gradients([0.37, -0.52, 0.05, 1.3], 0.25, bits=3)
    >>> gv.tolist(), round(float(gs), 10)
    ([1.0, 1.0, 1.0, 0.0], 0.692820323)
    """
    quant = LSQ(bits, signed=signed, axis=axis)
    v, s = quant._prepare(v, step)
    g_out = np.ones_like(v) if grad_output is None else np.asarray(grad_output, np.float64)
    if g_out.shape != v.shape:
        raise ValueError(f"grad_output must have the shape of v {v.shape}, got {g_out.shape}")
    grad_v = g_out * quant.grad_input(v, s)
    k = quant.grad_factor(v, n=n)
    ax = _norm_axis(axis, v.ndim)
    grad_s = k * _reduce_channels(g_out * quant.grad_step(v, s), ax, np.sum)
    return grad_v, np.reshape(grad_s, np.shape(step))


@dataclass(frozen=True)
class LSQ(Quantizer):
    """Learned step size quantizer (LSQ; Esser et al., ICLR 2020).

    The step is a trained parameter held by the caller (the torch module
    :class:`synapse_sim.nn.quant.LSQFakeQuant` holds it as a ``Parameter``); ``scale(x)`` gives
    the initial value ``2 mean|x| / sqrt(Q_P)``.

    Parameters
    ----------
    bits : int
        Bit width, 1 to 8.
    signed : bool
        Signed codes ``-Q_N .. Q_P`` (weights) or unsigned ``0 .. 2**bits - 1`` (activations
        after ReLU or softmax).
    axis : int or None
        Channel axis for one step per channel (0, the output channels, by default) or None.
    backend : {"auto", "numpy", "numba"}
        Kernels (see :class:`Uniform`).
    """

    bits: int
    signed: bool = True
    axis: int | None = 0
    backend: str = "auto"

    def __post_init__(self):
        _check_bits(self.bits)
        _check_axis_arg(self.axis)
        _check_backend(self.backend)
        if not isinstance(self.signed, bool):
            raise TypeError(f"signed must be a bool, got {self.signed!r}")

    @property
    def bounds(self) -> tuple[int, int]:
        """``(Q_N, Q_P)``, see :func:`lsq_bounds`."""
        return lsq_bounds(self.bits, self.signed)

    @property
    def code_range(self) -> tuple[int, int]:
        """Smallest and largest integer code ``(-Q_N, Q_P)``."""
        qn, qp = self.bounds
        return -qn, qp

    def codes(self) -> np.ndarray:
        """All valid integer codes, ascending (``[-1, 1]`` for one signed bit)."""
        if self.signed and self.bits == 1:
            return np.array([-1, 1])
        return super().codes()

    def scale(self, x) -> np.ndarray:
        """Initial step ``2 mean|x| / sqrt(Q_P)`` (per tensor or per channel), at least 1e-5.

        Parameters
        ----------
        x : array_like
            Values the step serves.
        """
        x = _as_input("x", x)
        axis = _norm_axis(self.axis, x.ndim)
        m = _reduce_channels(np.abs(x), axis, np.mean)
        return np.maximum(2.0 * m / np.sqrt(self.bounds[1]), LSQ_MIN_STEP)

    def _check_scale(self, scale, shape, axis):
        s = _expand_param("scale", scale, shape, axis, positive=False)
        return np.maximum(s, LSQ_MIN_STEP)

    def _u_raw(self, x, s):
        return x / s

    def _round(self, u, rng, noise):
        return _lsq_codes(u, self.bits, self.signed)

    def _stochastic(self) -> bool:
        return False

    def _affine_spec(self, s_flat):
        spec = super()._affine_spec(s_flat)
        qn, qp = self.bounds
        # LSQ adds no offset (u = x / s): adding -0.0 is the identity, signed zeros included
        spec.update(pre_clip=True, clip_lo=float(-qn), clip_hi=float(qp), add=-0.0 * spec["add"])
        spec["mode"] = 2 if (self.signed and self.bits == 1) else 0
        return spec

    def grad_input(self, x, scale=None) -> np.ndarray:
        """``d v_hat / d v``: 1 where ``-Q_N < v/s < Q_P``, else 0.

        Parameters
        ----------
        x : array_like
            Values.
        scale : array_like, optional
            Step; default ``self.scale(x)``.
        """
        x, s = self._prepare(x, scale)
        qn, qp = self.bounds
        u = x / s
        return ((u > -qn) & (u < qp)).astype(np.float64)

    def grad_step(self, x, scale=None) -> np.ndarray:
        """Element-wise ``d v_hat / d s`` (without the gradient scale).

        ``round(u) - u`` inside the range, ``-Q_N`` at or below it, ``Q_P`` at or above it.

        Parameters
        ----------
        x : array_like
            Values.
        scale : array_like, optional
            Step; default ``self.scale(x)``.
        """
        x, s = self._prepare(x, scale)
        qn, qp = self.bounds
        u = x / s
        inside = _lsq_codes(u, self.bits, self.signed) - u
        return np.where(u <= -qn, -float(qn), np.where(u >= qp, float(qp), inside))

    def grad_factor(self, x, n=None) -> float:
        """Gradient scale ``g = 1 / sqrt(N * Q_P)``.

        Parameters
        ----------
        x : array_like
            Values (sets ``N``: the whole tensor, or one channel's elements).
        n : int, optional
            Explicit ``N`` (e.g. the number of features for activations).
        """
        if n is None:
            x = np.asarray(x)
            axis = _norm_axis(self.axis, x.ndim)
            n = x.size if axis is None else x.size // max(x.shape[axis], 1)
        n = check_int("n", n, lo=1)
        return 1.0 / np.sqrt(n * self.bounds[1])


def statsq_scale(w, axis=0) -> np.ndarray:
    """StatsQ scale ``s_c = 2 mean_j |W_cj|`` per output channel (at least 1e-12).

    Parameters
    ----------
    w : array_like
        Weights; the mean runs over every axis but ``axis``.
    axis : int or None
        Output-channel axis, or None for one scale for the whole tensor.

    Returns
    -------
    numpy.ndarray
        The scale in the broadcast shape of ``w`` (``(C, 1)`` for a 2-D weight).
    """
    w = _as_input("w", w)
    ax = _norm_axis(_check_axis_arg(axis), w.ndim)
    return np.maximum(2.0 * _reduce_channels(np.abs(w), ax, np.mean), STAT_MIN_SCALE)


@dataclass(frozen=True)
class StatsQ(Quantizer):
    """StatsQ weight quantizer of OFQ (Liu, Liu, Cheng, ICML 2023), per output channel.

    With ``n = 2**(bits-1)`` and ``s_c = 2 mean|W_c|`` (recomputed on every call, no
    gradient)::

        u = clip(W / s_c, -1, 1 - 1e-6) * n - 0.5
        q = clip(round(u), -n, n - 1)
        Q(W) = s_c (q + 0.5) / n

    The grid is symmetric with **no zero level**: ``s {+-0.25, +-0.75}`` at 2 bits. The
    backward pass is the identity (see :mod:`synapse_sim.nn.quant`).

    Parameters
    ----------
    bits : int
        Bit width, 1 to 8.
    axis : int or None
        Output-channel axis (0) or None for one scale per tensor.
    backend : {"auto", "numpy", "numba"}
        Kernels (see :class:`Uniform`).

    Examples
    --------
    >>> StatsQ(2).fake([[0.3, -0.1, 0.05, -0.55]]).tolist()
    [[0.375, -0.125, 0.125, -0.375]]
    """

    bits: int
    axis: int | None = 0
    backend: str = "auto"

    def __post_init__(self):
        _check_bits(self.bits)
        _check_axis_arg(self.axis)
        _check_backend(self.backend)

    @property
    def n(self) -> int:
        """Half the number of levels, ``2**(bits-1)``."""
        return 2 ** (self.bits - 1)

    @property
    def code_range(self) -> tuple[int, int]:
        """Smallest and largest integer code ``(-n, n - 1)``."""
        return -self.n, self.n - 1

    def scale(self, x) -> np.ndarray:
        """``s_c = 2 mean|W_c|`` (see :func:`statsq_scale`).

        Parameters
        ----------
        x : array_like
            Weights.
        """
        return statsq_scale(x, self.axis)

    def _u_raw(self, x, s):
        return np.clip(x / s, -1.0, 1.0 - 1e-6) * self.n - 0.5

    def pre_round(self, x, scale=None) -> np.ndarray:
        """Pre-rounding code ``u = clip(W / s, -1, 1 - 1e-6) n - 0.5`` (in ``[-n - 0.5, n - 0.5)``).

        Parameters
        ----------
        x : array_like
            Weights.
        scale : array_like, optional
            Scale; default ``self.scale(x)``.
        """
        x, s = self._prepare(x, scale)
        return self._u_raw(x, s)

    def _value(self, q, s):
        return s * (q + 0.5) / self.n

    def _stochastic(self) -> bool:
        return False

    def _affine_spec(self, s_flat):
        spec = super()._affine_spec(s_flat)
        C = s_flat.size
        spec.update(
            pre_clip=True,
            clip_lo=-1.0,
            clip_hi=1.0 - 1e-6,
            mult=float(self.n),
            add=np.full(C, -0.5),
            voff=np.full(C, 0.5),
            vdiv=float(self.n),
            mode=0,
        )
        return spec

    def grad_input(self, x, scale=None) -> np.ndarray:
        """Identity straight-through derivative: ones everywhere (clipped entries included).

        Parameters
        ----------
        x : array_like
            Weights.
        scale : array_like, optional
            Unused; kept for one signature across the family.
        """
        return np.ones_like(_as_input("x", x))


# --------------------------------------------------------------------------------------------
# A device is a quantizer with a level table (specs/quantizers.md section 5)
# --------------------------------------------------------------------------------------------

#: How :class:`LevelGrid` scales its table to the data: not at all, to ``max|x|``, or with the
#: StatsQ statistic ``2 mean|x|``.
LEVEL_SCALINGS = ("fixed", "absmax", "mean")
#: Weight mappings of :meth:`LevelGrid.from_device`.
DEVICE_MAPPINGS = ("reference", "differential")


def _check_table(levels, axis) -> np.ndarray:
    try:
        t = np.array(levels, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"levels must be a 1-D or 2-D array of numbers, got {levels!r}") from None
    if t.ndim not in (1, 2):
        raise ValueError(
            f"levels must be 1-D (one table) or 2-D (one table per channel), got shape {t.shape}"
        )
    if t.shape[-1] < 2:
        raise ValueError(f"levels must hold at least 2 entries per table, got shape {t.shape}")
    if not np.all(np.isfinite(t)):
        raise ValueError("levels must be finite (no NaN or inf)")
    if np.any(np.diff(t, axis=-1) <= 0):
        raise ValueError("levels must be strictly increasing along the last axis")
    if t.ndim == 2 and axis is None:
        raise ValueError("per-channel tables (2-D levels) need axis (e.g. axis=0)")
    t.setflags(write=False)
    return t


class LevelGrid(Quantizer):
    """Quantize to the nearest entry of a sorted table of levels (a device's weight levels).

    The code of ``x`` is the index of the nearest table entry (boundaries at the midpoints
    between neighbours). Internally ``x / s`` is mapped to the *index coordinate*
    ``u = i + (v - t_i) / (t_{i+1} - t_i)`` for ``t_i <= v <= t_{i+1}`` (piecewise linear, so
    the midpoint of two entries sits at ``u = i + 0.5``); nearest rounding is
    ``clip(rint(u), 0, L - 1)`` (an exact midpoint goes to the even index) and stochastic
    rounding ``floor(u + xi)``, which picks the upper neighbour with probability
    ``(v - t_i) / (t_{i+1} - t_i)`` (unbiased between the outer entries). CGA reads ``u``:
    the distance of ``u`` to ``floor(u) + 0.5`` is the distance to the nearest midpoint divided
    by the local spacing.

    A uniform quantizer is the LevelGrid of a linear device: ``Uniform(b, r)`` (narrow) has the
    table of a linear device with ``P = 2**b - 2`` pulses against a mid-range reference, and
    StatsQ the table of one with ``P = 2**b - 1`` (:meth:`from_device`).

    Parameters
    ----------
    levels : array_like
        Strictly increasing table, shape ``(L,)``, or one table per channel, ``(C, L)`` (needs
        ``axis``). ``L >= 2``.
    axis : int or None
        Channel axis of per-channel tables and scales, or None (one table, one scale).
    scaling : {"fixed", "absmax", "mean"}
        How the table is scaled to the data (the step ``s``; levels are ``s * table``):
        ``"fixed"``: ``s = 1`` (the table is in the units of ``x``); ``"absmax"``:
        ``s_c = max|x_c| / max|t_c|``; ``"mean"``: ``s_c = 2 mean|x_c| (L - 1) / L / max|t_c|``,
        the StatsQ statistic (the LevelGrid of a linear ``2**b``-level table then equals
        :class:`StatsQ` at ``b`` bits).
    rounding : {"nearest", "stochastic"}
        Nearest entry, or stochastic rounding between the two neighbours.
    backend : {"auto", "numpy", "numba"}
        Kernels (see :class:`Uniform`).

    Attributes
    ----------
    table : numpy.ndarray
        The (read-only) table.
    bits : int
        ``ceil(log2(L))``, the bits needed to address the table (informational; at most 8 is
        not required).

    Examples
    --------
    >>> g = LevelGrid([-1.0, -0.2, 0.1, 1.0])
    >>> g.quantize([-0.7, -0.5, 0.0, 0.6]).tolist()
    [0, 1, 2, 3]
    >>> g.fake([-0.7, -0.5, 0.0, 0.6]).tolist()
    [-1.0, -0.2, 0.1, 1.0]
    """

    def __init__(
        self,
        levels,
        *,
        axis=None,
        scaling: str = "fixed",
        rounding: str = "nearest",
        backend: str = "auto",
    ):
        self.backend = _check_backend(backend)
        self.axis = _check_axis_arg(axis)
        self.table = _check_table(levels, self.axis)
        self.scaling = check_choice("scaling", scaling, LEVEL_SCALINGS)
        self.rounding = check_choice("rounding", rounding, ROUNDING_MODES)
        self.n_levels = int(self.table.shape[-1])
        self.bits = max(1, int(np.ceil(np.log2(self.n_levels))))

    def __repr__(self) -> str:
        return (
            f"LevelGrid(<{self.n_levels} levels"
            f"{'' if self.table.ndim == 1 else f' x {self.table.shape[0]} channels'}>, "
            f"axis={self.axis}, scaling={self.scaling!r}, rounding={self.rounding!r})"
        )

    @property
    def per_channel_table(self) -> bool:
        """True when every channel has its own table."""
        return self.table.ndim == 2

    @property
    def code_range(self) -> tuple[int, int]:
        """Smallest and largest code: table indices ``(0, L - 1)``."""
        return 0, self.n_levels - 1

    # -- construction from a device --------------------------------------------------------
    @classmethod
    def from_device(
        cls,
        device,
        mapping: str = "reference",
        w_range: float = 1.0,
        *,
        n_states: int | None = None,
        axis=None,
        scaling: str = "fixed",
        rounding: str = "nearest",
        backend: str = "auto",
    ) -> LevelGrid:
        """The weight levels of a device, from its LTP response ``G(p)``, ``p = 0..P``.

        Parameters
        ----------
        device : str or devices.DeviceModel
            A preset name (:func:`devices.names`) or a device model (its nominal response;
            device-to-device variability is not sampled).
        mapping : {"reference", "differential"}
            ``"reference"``: one device against the mid-range reference,
            ``w = 2 w_range (G - G_ref) / (Gmax - Gmin)``: ``P + 1`` levels in
            ``[-w_range, w_range]``. ``"differential"``: a pair with unidirectional updates
            (one device at Gmin, the other along its LTP branch),
            ``w = +-w_range (G(p) - Gmin) / (Gmax - Gmin)``: ``2P + 1`` levels, 0 included.
        w_range : float
            Weight range ``W > 0`` (the ``w_max`` of :class:`devices.DeviceArray`).
        n_states : int, optional
            Use ``n_states`` equally spaced pulse coordinates ``p_k = k P / (n_states - 1)``
            instead of every whole pulse (a coarser programming step with the same response
            shape; fractional coordinates follow the model's continuous response). ``None``:
            ``P + 1`` states.
        axis, scaling, rounding, backend
            As :class:`LevelGrid`.

        Returns
        -------
        LevelGrid

        Examples
        --------
        >>> from devices.models import LinearDevice
        >>> dev = LinearDevice(gmin=0.0, gmax=1.0, levels_ltp=3, levels_ltd=3)
        >>> np.round(LevelGrid.from_device(dev, w_range=0.75).table, 12).tolist()
        [-0.75, -0.25, 0.25, 0.75]
        """
        from .models import DeviceModel
        from .presets import get

        if isinstance(device, str):
            model = get(device)
        elif isinstance(device, DeviceModel):
            model = device
        else:
            raise TypeError(
                f"device must be a preset name or a devices.DeviceModel, got {device!r}"
            )
        mapping = check_choice("mapping", mapping, DEVICE_MAPPINGS)
        w = check_real("w_range", w_range, lo=0.0, lo_open=True)
        P = int(model.levels("ltp"))
        if n_states is None:
            p = np.arange(P + 1, dtype=np.float64)
        else:
            n = check_int("n_states", n_states, lo=2)
            p = np.arange(n, dtype=np.float64) * (P / (n - 1))
            p[-1] = P
        G = np.asarray(model.conductance(p, "ltp"), dtype=np.float64)
        if mapping == "reference":
            g_ref = 0.5 * (model.gmin + model.gmax)
            table = 2.0 * w * (G - g_ref) / model.dG
        else:
            g = w * (G - model.gmin) / model.dG
            g[0] = 0.0
            table = np.concatenate([-g[:0:-1], g])
        if np.any(np.diff(table) <= 0):
            raise ValueError(
                f"device {getattr(model, 'name', '') or type(model).__name__!r} gives levels "
                "that are not strictly increasing (response saturates); use fewer n_states"
            )
        return cls(table, axis=axis, scaling=scaling, rounding=rounding, backend=backend)

    # -- geometry ---------------------------------------------------------------------------
    def _table_for(self, shape, axis) -> np.ndarray:
        """The table as ``(C, L)`` for per-channel use along ``axis`` (or ``(L,)``)."""
        if not self.per_channel_table:
            return self.table
        c = shape[axis] if axis is not None and len(shape) else None
        if c != self.table.shape[0]:
            raise ValueError(
                f"per-channel levels have {self.table.shape[0]} tables, but the input has "
                f"{c} channels along axis {self.axis} (shape {tuple(shape)})"
            )
        return self.table

    def _tmax(self) -> np.ndarray:
        return np.abs(self.table).max(axis=-1)

    def scale(self, x=None) -> np.ndarray:
        """Step ``s`` per tensor or per channel (see ``scaling``), in the broadcast shape of ``x``.

        Parameters
        ----------
        x : array_like, optional
            Data (required unless ``scaling="fixed"``).
        """
        if self.scaling == "fixed":
            if x is None:
                return np.asarray(1.0)
            x = np.asarray(x)
            axis = _norm_axis(self.axis, x.ndim)
            return np.ones(_channel_shape(x.shape, axis))
        if x is None:
            raise ValueError(f"x is required to compute the scale with scaling={self.scaling!r}")
        x = _as_input("x", x)
        axis = _norm_axis(self.axis, x.ndim)
        tmax = self._tmax()
        if self.per_channel_table:
            self._table_for(x.shape, axis)
            tmax = tmax.reshape(_channel_shape(x.shape, axis))
        if self.scaling == "absmax":
            r = _reduce_channels(np.abs(x), axis, np.max)
        else:
            L = self.n_levels
            r = 2.0 * _reduce_channels(np.abs(x), axis, np.mean) * (L - 1) / L
        return np.maximum(r, STAT_MIN_SCALE) / tmax

    def _default_scale(self):
        return np.asarray(1.0) if self.scaling == "fixed" else None

    def _per_row(self, a: np.ndarray, axis, fn) -> np.ndarray:
        """Apply ``fn(rows, table)`` with channels first (per-channel tables), else directly."""
        if not self.per_channel_table:
            return fn(a, self.table)
        t = self._table_for(a.shape, axis)
        moved = np.moveaxis(a, axis, 0)
        out = np.empty(moved.shape, dtype=np.float64)
        for c in range(t.shape[0]):
            out[c] = fn(moved[c], t[c])
        return np.moveaxis(out, 0, axis)

    @staticmethod
    def _index_coordinate(v: np.ndarray, t: np.ndarray) -> np.ndarray:
        i = np.clip(np.searchsorted(t, v, side="right") - 1, 0, t.size - 2)
        lo = t[i]
        return i + (v - lo) / (t[i + 1] - lo)

    def _u_raw(self, x, s):
        axis = _norm_axis(self.axis, x.ndim)
        v = x / s
        u = self._per_row(v, axis, self._index_coordinate)
        return np.clip(u, 0.0, self.n_levels - 1.0)

    def _round(self, u, rng, noise):
        hi = self.n_levels - 1
        if self.rounding == "stochastic":
            xi = _draw_noise(u.shape, rng, noise)
            return np.clip(np.floor(u + xi), 0, hi)
        return np.clip(np.rint(u), 0, hi)

    def _kernel_calls(self, k, shape, axis, s_flat, B, C):
        tables = self._table_for(shape, axis)
        tables = np.ascontiguousarray(tables.reshape(-1, self.n_levels))
        stochastic = self.rounding == "stochastic"
        return _KernelCalls(
            stochastic=stochastic,
            values=lambda q, out: k.table_values(q, s_flat, tables, B, C, out),
            codes=lambda xf, xi, out: k.table_codes(xf, s_flat, tables, B, C, stochastic, xi, out),
            fake=lambda xf, xi, out: k.table_fake(xf, s_flat, tables, B, C, stochastic, xi, out),
        )

    def _value(self, q, s):
        axis = _norm_axis(self.axis, q.ndim)
        idx = q.astype(np.int64)
        return s * self._per_row(idx, axis, lambda k, t: t[k])

    def dequantize(self, q, scale=None) -> np.ndarray:
        """Values ``s * table[q]`` of table indices ``q``.

        Parameters
        ----------
        q : array_like of int
            Indices in ``[0, L - 1]``.
        scale : array_like, optional
            The step used to quantize (default 1 with ``scaling="fixed"``; required otherwise).
        """
        if scale is None:
            if self.scaling != "fixed":
                raise ValueError(f"scale is required to dequantize with scaling={self.scaling!r}")
            scale = 1.0
        return super().dequantize(q, scale)

    def levels(self, scale=None) -> np.ndarray:
        """Representable values: ``s * table``, shape ``(L,)`` or ``(C, L)``.

        Parameters
        ----------
        scale : array_like, optional
            Scalar step or one per channel (default 1 with ``scaling="fixed"``).
        """
        s = self._levels_scale(scale, f"with scaling={self.scaling!r}")
        if s.ndim == 0 or s.size == 1:
            return float(s.reshape(())) * self.table
        return s.reshape(-1, 1) * self.table

    def midpoints(self) -> np.ndarray:
        """Decision boundaries of the unscaled table, shape ``(L - 1,)`` or ``(C, L - 1)``."""
        return 0.5 * (self.table[..., 1:] + self.table[..., :-1])

    def grad_input(self, x, scale=None, *, ste: str = "clipped") -> np.ndarray:
        """Straight-through derivative ``d fake / d x``.

        Parameters
        ----------
        x : array_like
            Input.
        scale : array_like, optional
            Step; default ``self.scale(x)``.
        ste : {"clipped", "identity"}
            ``"clipped"``: 1 between the outer entries, 0 outside; ``"identity"``: 1 everywhere.
        """

        def inside(x, s):
            axis = _norm_axis(self.axis, x.ndim)
            return self._per_row(x / s, axis, lambda r, t: (r >= t[0]) & (r <= t[-1]))

        return self._ste_grad(x, scale, ste, inside)
