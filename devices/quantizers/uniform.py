"""The uniform quantizer of the QAT family: symmetric (narrow or full range) or affine,
nearest or stochastic rounding (``specs/quantizers.md`` section 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..validation import check_bool, check_choice
from .base import (
    ROUNDING_MODES,
    STAT_MIN_SCALE,
    Quantizer,
    as_input,
    check_axis,
    check_backend,
    check_bits,
    draw_noise,
    expand_param,
    norm_axis,
    reduce_channels,
)

__all__ = ["Uniform"]


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
        kernels of :mod:`devices.quantizers.kernels` (bitwise equal), or numba for inputs of at
        least ``AUTO_NUMBA_MIN_SIZE`` elements.

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
        check_bits(self.bits)
        check_axis(self.axis)
        check_backend(self.backend)
        check_bool("narrow", self.narrow)
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
            x = as_input("x", x)
            axis = norm_axis(self.axis, x.ndim)
            r = reduce_channels(np.abs(x), axis, np.max)
            return np.maximum(r, STAT_MIN_SCALE) / self._divisor()
        s = (self._hi if self.symmetric else self._hi - self._lo) / self._divisor()
        if x is None:
            return s
        x = np.asarray(x)
        return expand_param("range", s, x.shape, norm_axis(self.axis, x.ndim), positive=True)

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
            xi = draw_noise(u.shape, rng, noise)
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
