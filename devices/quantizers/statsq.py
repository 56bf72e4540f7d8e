"""StatsQ, the OFQ weight quantizer: scale ``2 mean|W_c|`` per output channel, no zero level
(``specs/quantizers.md`` section 3).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import (
    STAT_MIN_SCALE,
    Quantizer,
    as_input,
    check_axis,
    check_backend,
    check_bits,
    norm_axis,
    reduce_channels,
)

__all__ = ["StatsQ", "statsq_scale"]


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
    w = as_input("w", w)
    ax = norm_axis(check_axis(axis), w.ndim)
    return np.maximum(2.0 * reduce_channels(np.abs(w), ax, np.mean), STAT_MIN_SCALE)


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
        check_bits(self.bits)
        check_axis(self.axis)
        check_backend(self.backend)

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
        return np.ones_like(as_input("x", x))
