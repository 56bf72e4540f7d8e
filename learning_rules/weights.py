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

    Parameters
    ----------
    W : array_like, shape (out, in)
        Initial weights (copied).
    w_max : float or None
        Weights are clipped to ``[-w_max, w_max]`` after every change (NeuroSim's software mode
        clips to [-1, 1]); ``None`` disables clipping.
    step : float
        Weight change of one pulse when a pulse rule drives these weights (an ideal linear device
        with continuous levels).
    """

    mapping = "float"

    def __init__(self, W, *, w_max: float | None = 1.0, step: float = 1.0 / 1024):
        W = np.array(W, dtype=np.float64)
        if W.ndim != 2:
            raise ValueError(f"W must be a 2-D weight matrix, got shape {W.shape}")
        if not np.all(np.isfinite(W)):
            raise ValueError("W contains NaN or infinite weights")
        if w_max is not None and not w_max > 0:
            raise ValueError(f"w_max must be > 0 or None, got {w_max!r}")
        if not step > 0:
            raise ValueError(f"step must be > 0, got {step!r}")
        self.w_max = w_max
        self.step = float(step)
        self.W = self._clip(W)

    def _clip(self, W):
        return np.clip(W, -self.w_max, self.w_max) if self.w_max is not None else W

    @property
    def shape(self) -> tuple[int, int]:
        """``(out_features, in_features)``."""
        return self.W.shape

    def weights(self, noise: bool = False) -> np.ndarray:
        """The weight matrix (a copy; ``noise`` is accepted for protocol compatibility)."""
        return self.W.copy()

    def matmul(self, x) -> np.ndarray:
        """``x W^T``."""
        return np.asarray(x, dtype=np.float64) @ self.W.T

    def rmatmul(self, d) -> np.ndarray:
        """``d W``."""
        return np.asarray(d, dtype=np.float64) @ self.W

    def add(self, dW) -> None:
        """Software update ``W <- clip(W + dW)``."""
        self.W = self._clip(self.W + dW)

    def pulse(self, n_plus, n_minus=None) -> None:
        """Ideal pulses: ``W += step * (n_plus - n_minus)`` (then clipped)."""
        n = np.asarray(n_plus, dtype=np.float64)
        if n_minus is not None:
            n = n - np.asarray(n_minus, dtype=np.float64)
        self.add(self.step * n)

    def nominal_step(self, method: str = "bidirectional", side: str = "both"):
        """``(step, step)``."""
        return self.step, self.step

    def program(self, W, **kwargs) -> None:
        """Set the weights (keyword options of device programming are ignored)."""
        W = np.asarray(W, dtype=np.float64)
        if W.shape != self.W.shape:
            raise ValueError(f"W must have shape {self.W.shape}, got {W.shape}")
        self.W = self._clip(W.copy())

    def needs_refresh(self, threshold: float = 0.9) -> np.ndarray:
        """Never: float weights do not saturate."""
        return np.zeros(self.W.shape, dtype=bool)

    def refresh(self, mask, **kwargs) -> int:
        """No-op (returns 0)."""
        return 0
