"""The weight protocol shared by float matrices and device arrays.

A learning rule only talks to weights through this small protocol, so the same rule and the same
trainer run on ideal float weights (the software twin) and on :class:`devices.DeviceArray`:

``shape``
    ``(out_features, in_features)``.
``weights(noise=False)``
    Read the effective weight matrix.
``matmul(x)`` / ``rmatmul(d)``
    Forward ``x W^T`` and backward ``d W`` reads.
``pulse(n_plus, n_minus=None)``
    Apply signed pulse counts.
``nominal_step(method, side)``
    Weight change of one pulse event (up, down).
``program(W)``
    Write weights.
``refresh(mask)`` / ``needs_refresh(threshold)``
    Re-program saturated pairs (differential device arrays; a no-op for float weights).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from devices.xp import array_module, is_cupy_array

__all__ = ["WeightArray", "FloatWeights"]


@runtime_checkable
class WeightArray(Protocol):
    """Structural type of anything a learning rule can train (see module docs)."""

    @property
    def shape(self) -> tuple[int, int]: ...  # noqa: D102

    def weights(self, noise: bool = False) -> np.ndarray: ...  # noqa: D102

    def matmul(self, x) -> np.ndarray: ...  # noqa: D102

    def rmatmul(self, d) -> np.ndarray: ...  # noqa: D102

    def pulse(self, n_plus, n_minus=None) -> None: ...  # noqa: D102

    def nominal_step(self, method: str = "bidirectional", side: str = "both"): ...  # noqa: D102

    def program(self, W, **kwargs) -> None: ...  # noqa: D102


class FloatWeights:
    """A plain float weight matrix that satisfies :class:`WeightArray` (the software baseline).

    The matrix lives where ``W`` lives: a numpy array on the CPU, or a cupy array on the GPU
    (then reads and updates stay on the GPU, and inputs must be cupy arrays too).

    Parameters
    ----------
    W : array_like, shape (out, in)
        Initial weights (copied; a cupy array keeps the weights on the GPU).
    w_max : float or None
        Weights are clipped to ``[-w_max, w_max]`` after every change (NeuroSim's software mode
        clips to [-1, 1]); ``None`` disables clipping.
    step : float
        Weight change of one pulse when a pulse rule drives these weights (an ideal linear device
        with continuous levels).
    """

    mapping = "float"

    def __init__(self, W, *, w_max: float | None = 1.0, step: float = 1.0 / 1024):
        xp = array_module(W)
        W = xp.array(W, dtype=xp.float64)
        if W.ndim != 2:
            raise ValueError(f"W must be a 2-D weight matrix, got shape {W.shape}")
        if not bool(xp.all(xp.isfinite(W))):
            raise ValueError("W contains NaN or infinite weights")
        if w_max is not None and not w_max > 0:
            raise ValueError(f"w_max must be > 0 or None, got {w_max!r}")
        if not step > 0:
            raise ValueError(f"step must be > 0, got {step!r}")
        self.w_max = w_max
        self.step = float(step)
        self.W = self._clip(W)

    @property
    def _xp(self):
        """Array module of the weights (numpy, or cupy on the GPU)."""
        return array_module(self.W)

    def _asarray(self, name, a):
        """``a`` as a float64 array of the weights' module; a GPU array given to CPU weights is
        refused with what to do (instead of cupy's implicit-conversion error)."""
        xp = self._xp
        if xp is np and is_cupy_array(a):
            raise TypeError(
                f"{name} is a cupy (GPU) array but these weights are a numpy array: pass numpy "
                "arrays, or build FloatWeights from a cupy array"
            )
        return xp.asarray(a, dtype=xp.float64)

    def _clip(self, W):
        return array_module(W).clip(W, -self.w_max, self.w_max) if self.w_max is not None else W

    @property
    def shape(self) -> tuple[int, int]:
        """``(out_features, in_features)``."""
        return self.W.shape

    def weights(self, noise: bool = False) -> np.ndarray:
        """The weight matrix (a copy; ``noise`` is accepted for protocol compatibility)."""
        return self.W.copy()

    def matmul(self, x) -> np.ndarray:
        """``x W^T``."""
        return self._asarray("x", x) @ self.W.T

    def rmatmul(self, d) -> np.ndarray:
        """``d W``."""
        return self._asarray("d", d) @ self.W

    def add(self, dW) -> None:
        """Software update ``W <- clip(W + dW)``."""
        self.W = self._clip(self.W + dW)

    def pulse(self, n_plus, n_minus=None) -> None:
        """Ideal pulses: ``W += step * (n_plus - n_minus)`` (then clipped)."""
        n = self._asarray("n_plus", n_plus)
        if n_minus is not None:
            n = n - self._asarray("n_minus", n_minus)
        self.add(self.step * n)

    def nominal_step(self, method: str = "bidirectional", side: str = "both"):
        """``(step, step)``."""
        return self.step, self.step

    def program(self, W, **kwargs) -> None:
        """Set the weights (keyword options of device programming are ignored)."""
        W = self._asarray("W", W)
        if W.shape != self.W.shape:
            raise ValueError(f"W must have shape {self.W.shape}, got {W.shape}")
        self.W = self._clip(W.copy())

    def needs_refresh(self, threshold: float = 0.9) -> np.ndarray:
        """Never: float weights do not saturate."""
        return self._xp.zeros(self.W.shape, dtype=bool)

    def refresh(self, mask, **kwargs) -> int:
        """No-op (returns 0)."""
        return 0
