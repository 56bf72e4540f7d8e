"""A multilayer perceptron whose layers are weight arrays (float or device), in numpy/cupy."""

from __future__ import annotations

import math

import numpy as np

from devices.xp import array_module

__all__ = ["ACTIVATIONS", "INITS", "LOSSES", "MLP", "initial_weights"]

#: Hidden activations of :class:`MLP`.
ACTIVATIONS = ("sigmoid", "relu")
#: Output losses of :class:`MLP`: sum of squared errors on sigmoid outputs, softmax
#: cross-entropy.
LOSSES = ("sse", "ce")
#: Initial weights of :func:`initial_weights`.
INITS = ("neurosim", "uniform")
_NEUROSIM_LEVELS = np.array([-1, -2 / 3, -1 / 3, 0, 1 / 3, 2 / 3, 1])


def _act(name, z):
    xp = array_module(z)
    if name == "sigmoid":
        return 0.5 * (1.0 + xp.tanh(0.5 * z))  # overflow-free logistic
    return xp.maximum(z, 0.0)


def _act_grad(name, z, a):
    if name == "sigmoid":
        return a * (1.0 - a)
    return (z > 0).astype(z.dtype)


class MLP:
    """A multilayer perceptron whose layers are :class:`learning_rules.WeightArray` s.

    The array code follows its inputs' array module: cupy inputs (with layers on the GPU) keep
    every activation and error on the GPU.

    Parameters
    ----------
    layers : list of WeightArray
        Weight arrays, input to output (shapes chain).
    activation : {"sigmoid", "relu"}
    loss : {"sse", "ce"}
    biases : bool
        Float biases (zeros) added to every layer's pre-activation (:attr:`biases`, one vector
        per layer; trained by the caller). Default: none.

    Attributes
    ----------
    biases : list of numpy.ndarray or None
    """

    def __init__(self, layers, activation="sigmoid", loss="sse", *, biases: bool = False):
        self.layers = list(layers)
        self.activation = activation
        self.loss = loss
        self.biases = [np.zeros(layer.shape[0]) for layer in self.layers] if biases else None

    def forward(self, x, mask=None):
        """Layer inputs (the output last) and pre-activations of ``x``.

        Parameters
        ----------
        x : array, shape (batch, n_in)
        mask : bool array, shape (n_out,), optional
            ``ce`` only: outputs outside the mask get probability 0 (logits set to -inf).

        Returns
        -------
        acts : list of arrays
            ``[x, hidden..., output]``.
        zs : list of arrays
            Pre-activations of every layer (biases included, before the mask).
        """
        acts = [x]
        zs = []
        a = x
        n = len(self.layers)
        for i, layer in enumerate(self.layers):
            z = layer.matmul(a)
            if self.biases is not None:
                z = z + self.biases[i]
            zs.append(z)
            if i < n - 1:
                a = _act(self.activation, z)
            elif self.loss == "sse":
                a = _act("sigmoid", z)
            else:
                zz = z if mask is None else array_module(z).where(mask[None, :], z, -np.inf)
                zz = zz - zz.max(axis=1, keepdims=True)
                e = array_module(zz).exp(zz)
                a = e / e.sum(axis=1, keepdims=True)
            acts.append(a)
        return acts, zs

    def loss_and_delta(self, out, t):
        """Loss per sample (summed over outputs) and dL/dz at the output layer."""
        xp = array_module(out)
        if self.loss == "sse":
            diff = t - out
            return xp.sum(diff * diff, axis=1), -2.0 * diff * out * (1.0 - out)
        p = xp.clip(out, 1e-12, 1.0)
        return -xp.sum(t * xp.log(p), axis=1), out - t

    def backward(self, acts, zs, delta_out):
        """Errors dL/dz of every layer (transposed reads of the arrays)."""
        deltas = [None] * len(self.layers)
        deltas[-1] = delta_out
        for i in range(len(self.layers) - 2, -1, -1):
            back = self.layers[i + 1].rmatmul(deltas[i + 1])
            deltas[i] = back * _act_grad(self.activation, zs[i], acts[i + 1])
        return deltas

    def mean_ce_grads(self, x, y, mask=None, n_out=None):
        """Gradients of the mean softmax cross-entropy over the batch (``loss="ce"``).

        Parameters
        ----------
        x : array, shape (batch, n_in)
        y : int array, shape (batch,)
        mask : bool array, optional
            Output mask (see :meth:`forward`).
        n_out : int, optional
            Number of outputs (default: the last layer's rows).

        Returns
        -------
        weight_grads : list of arrays
            ``dL/dW`` of every layer, shape of the layer.
        bias_grads : list of arrays
            ``dL/db`` of every layer (empty without biases).
        loss : float
            Mean cross-entropy.
        """
        acts, zs = self.forward(x, mask)
        prob = acts[-1]
        n_out = self.layers[-1].shape[0] if n_out is None else n_out
        t = np.eye(n_out)[y]
        loss = -np.log(np.clip(prob[np.arange(len(y)), y], 1e-12, None)).mean()
        deltas = self.backward(acts, zs, prob - t)
        b = x.shape[0]
        gw = [d.T @ a / b for d, a in zip(deltas, acts[:-1], strict=True)]
        gb = [d.mean(axis=0) for d in deltas] if self.biases is not None else []
        return gw, gb, float(loss)

    def predict(self, x, batch: int = 1000, mask=None):
        """Class predictions and outputs (reads in chunks of ``batch``)."""
        outs = []
        for s in range(0, x.shape[0], batch):
            acts, _ = self.forward(x[s : s + batch], mask)
            outs.append(acts[-1])
        out = array_module(outs[0]).concatenate(outs)
        return out.argmax(axis=1), out


def initial_weights(sizes, init, rng, w_max=1.0):
    """Initial weight matrices ``(n_out, n_in)`` for consecutive ``sizes``.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths, input first.
    init : {"neurosim", "uniform"}
        Uniform over {-1, -2/3, ..., 1} times ``w_max``, or Glorot-uniform (limited to
        ``w_max``).
    rng : numpy.random.Generator
    w_max : float

    Returns
    -------
    list of numpy.ndarray
    """
    Ws = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        if init == "neurosim":
            W = w_max * rng.choice(_NEUROSIM_LEVELS, size=(n_out, n_in))
        else:
            s = min(w_max, math.sqrt(6.0 / (n_in + n_out)))
            W = rng.uniform(-s, s, size=(n_out, n_in))
        Ws.append(W)
    return Ws
