"""Learned step size quantization (LSQ, Esser et al. 2020): the quantizer and its gradient
formulas as numpy functions (``specs/quantizers.md`` section 2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..validation import check_bool, check_int
from .base import (
    LSQ_MIN_STEP,
    Quantizer,
    as_input,
    check_axis,
    check_backend,
    check_bits,
    expand_param,
    norm_axis,
    reduce_channels,
)

__all__ = ["LSQ", "lsq_bounds", "lsq_fake_quant", "lsq_gradients"]


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
    b = check_bits(bits)
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
    ax = norm_axis(axis, v.ndim)
    grad_s = k * reduce_channels(g_out * quant.grad_step(v, s), ax, np.sum)
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
        check_bits(self.bits)
        check_axis(self.axis)
        check_backend(self.backend)
        check_bool("signed", self.signed)

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
        x = as_input("x", x)
        axis = norm_axis(self.axis, x.ndim)
        m = reduce_channels(np.abs(x), axis, np.mean)
        return np.maximum(2.0 * m / np.sqrt(self.bounds[1]), LSQ_MIN_STEP)

    def _check_scale(self, scale, shape, axis):
        s = expand_param("scale", scale, shape, axis, positive=False)
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
            axis = norm_axis(self.axis, x.ndim)
            n = x.size if axis is None else x.size // max(x.shape[axis], 1)
        n = check_int("n", n, lo=1)
        return 1.0 / np.sqrt(n * self.bounds[1])
