"""Weight-noise injection for hardware-aware training (the forward and backward reads of a
training step see noisy weights; the stored weights and their updates stay exact)."""

from __future__ import annotations

import numpy as np

from devices.validation import check_real
from devices.xp import array_module, to_device

__all__ = ["NoisyWeights", "noisy_layers"]


class NoisyWeights:
    """A read-only view of a weight array whose reads add Gaussian weight noise.

    Each :meth:`matmul` (the forward read of a training step) draws a fresh noise matrix
    ``sigma * max|W| * xi`` and adds it to the layer's weights; :meth:`rmatmul` (the backward
    read of the same step) uses the same noisy matrix, so the gradient is the gradient of the
    network the forward pass saw (noise injection as in hardware-aware training, e.g. Joshi et
    al. 2020). Updates go to the wrapped layer, not to this view.

    Parameters
    ----------
    layer : WeightArray
        The wrapped layer (``weights()``, ``shape``).
    sigma : float
        Noise standard deviation relative to the layer's largest weight magnitude (> 0).
    rng : numpy.random.Generator
    """

    def __init__(self, layer, sigma: float, rng: np.random.Generator):
        self.layer = layer
        self.sigma = check_real("weight_noise", sigma, lo=0.0, lo_open=True)
        self.rng = rng
        self._W = None

    @property
    def shape(self) -> tuple[int, int]:
        """``(out, in)`` of the wrapped layer."""
        return self.layer.shape

    def matmul(self, x):
        """Forward read ``x W_noisy^T`` with a fresh noise draw."""
        W = self.layer.weights()
        xp = array_module(W)
        scale = self.sigma * float(xp.max(xp.abs(W))) if W.size else 0.0
        noise = to_device(self.rng.standard_normal(W.shape), xp)
        self._W = W + scale * noise
        return x @ self._W.T

    def rmatmul(self, d):
        """Backward read ``d W_noisy`` with the noise of the last forward read."""
        if self._W is None:
            raise RuntimeError("rmatmul() needs a matmul() first (the forward read)")
        return d @ self._W


def noisy_layers(layers, sigma: float, rng: np.random.Generator) -> list:
    """:class:`NoisyWeights` views of ``layers`` (one generator shared, drawn in layer order)."""
    return [NoisyWeights(layer, sigma, rng) for layer in layers]
