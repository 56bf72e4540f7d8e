"""The converter of the device arrays: :class:`UniformQuantizer` quantizes DAC inputs and ADC
outputs (numpy or cupy arrays)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..validation import check_bool, check_int, check_real
from ..xp import array_module

__all__ = ["UniformQuantizer"]


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
        check_bool("stochastic", self.stochastic)

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
        xp = array_module(x)
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
