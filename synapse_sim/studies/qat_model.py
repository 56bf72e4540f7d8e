"""The torch model of the QAT study: a fake-quantized MLP, its training step and evaluation.

:class:`QuantLinear` fake-quantizes its weight per output channel with one quantizer of the
family (uniform, LSQ, StatsQ, or the levels of a device preset); :class:`QATMLP` chains them with
ReLU (optionally LSQ-quantized activations). See :mod:`synapse_sim.studies.qat`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from devices import LSQ, StatsQ, Uniform
from devices.quantizers import LSQ_MIN_STEP, LevelGrid
from devices.validation import check_choice, check_int
from learning_rules.quantization import cga_freeze_mask, cga_restore

from ..nn.quant import (
    LSQFakeQuant,
    level_grid_fake_quant,
    statsq_fake_quant,
    uniform_fake_quant,
)
from .qat_config import FLOAT_BITS, QUANTIZERS, device_level_grid, parse_levels

__all__ = ["QuantLinear", "QATMLP", "train_step", "evaluate"]


class QuantLinear(nn.Module):
    """Linear layer whose weight is fake-quantized per output channel in the forward pass.

    Parameters
    ----------
    in_features, out_features : int
        Layer size; the weight has shape ``(out_features, in_features)``.
    quantizer : {"uniform", "lsq", "statsq", "levels:PRESET", "levels:PRESET:full"} or None
        Weight quantizer; None keeps the weight in float.
    bits : int
        Weight bit width, 1 to 8 (ignored without a quantizer; for ``levels:PRESET:full`` the
        table sets it).
    generator : torch.Generator, optional
        Source of the Glorot-uniform initial weights (biases start at zero).

    Attributes
    ----------
    core : devices.Quantizer or None
        The numpy quantizer that defines the grid, the integer codes and the pre-rounding
        codes (``Uniform(bits, axis=0)``, ``LSQ(bits, axis=0)`` or ``StatsQ(bits, axis=0)``).
    lsq : LSQFakeQuant or None
        Holds the learnable step of an LSQ layer.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        quantizer: str | None = None,
        bits: int = 4,
        *,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        limit = math.sqrt(6.0 / (in_features + out_features))
        w = (torch.rand(out_features, in_features, generator=generator) * 2.0 - 1.0) * limit
        self.weight = nn.Parameter(w)
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.quantizer = quantizer
        self.bits = FLOAT_BITS if quantizer is None else check_int("bits", bits, lo=1, hi=8)
        self.lsq = None
        levels = parse_levels(quantizer) if isinstance(quantizer, str) else None
        if quantizer is None:
            self.core = None
        elif levels is not None:
            self.core = device_level_grid(levels[0], self.bits, levels[1])
            self.bits = self.core.bits
        elif quantizer == "uniform":
            self.core = Uniform(self.bits, axis=0)
        elif quantizer == "statsq":
            self.core = StatsQ(self.bits, axis=0)
        elif quantizer == "lsq":
            self.core = LSQ(self.bits, signed=True, axis=0)
            self.lsq = LSQFakeQuant(self.bits, signed=True, axis=0, num_channels=out_features)
            with torch.no_grad():
                s0 = self.core.scale(w.double().numpy()).reshape(-1)
                self.lsq.step.copy_(torch.as_tensor(s0, dtype=torch.float32))
                self.lsq.initialized.fill_(True)
        else:
            check_choice("quantizer", quantizer, QUANTIZERS)

    def quantized_weight(self) -> torch.Tensor:
        """The fake-quantized weight (with its straight-through gradient)."""
        w = self.weight
        if self.quantizer is None:
            return w
        if self.quantizer == "uniform":
            return uniform_fake_quant(w, self.core)
        if self.quantizer == "statsq":
            return statsq_fake_quant(w, self.bits, axis=0)
        if isinstance(self.core, LevelGrid):
            return level_grid_fake_quant(w, self.core, ste="identity")
        return self.lsq(w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x @ Q(W).T + b``."""
        return F.linear(x, self.quantized_weight(), self.bias)

    def scale(self) -> np.ndarray:
        """Current step per output channel, shape ``(out_features, 1)`` (float64)."""
        if self.core is None:
            raise ValueError("a float layer has no quantizer scale")
        if self.quantizer == "lsq":
            s = self.lsq.step.detach().double().numpy().reshape(-1, 1)
            return np.maximum(s, LSQ_MIN_STEP)
        return self.core.scale(self.weight.detach().double().numpy())

    def codes(self, scale=None) -> np.ndarray:
        """Integer codes of the current weight (int64, shape of the weight).

        Parameters
        ----------
        scale : array_like, optional
            Step to quantize with; default :meth:`scale`.
        """
        s = self.scale() if scale is None else scale
        return self.core.quantize(self.weight.detach().double().numpy(), s)

    def frozen_mask(self, boundary_range: float = 0.005) -> np.ndarray:
        """CGA mask of this layer's weights (True: frozen), from the current weight and scale.

        Parameters
        ----------
        boundary_range : float
            Band half-width ``BR`` around each rounding boundary, in code units.
        """
        return cga_freeze_mask(self.weight, self.core, self.scale(), boundary_range)


class QATMLP(nn.Module):
    """MLP of :class:`QuantLinear` layers with ReLU between them.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths, input first (``[64, 128, 10]``).
    quantizer : str or None
        Weight quantizer of every layer (see :class:`QuantLinear`); None for the float baseline.
    bits : int
        Weight bit width.
    seed : int
        Seed of the initial weights: one seed gives the same initial latent weights for every
        quantizer.
    act_bits : int, optional
        Quantize every hidden ReLU output with an unsigned per-tensor LSQ of this many bits
        (gradient-scale ``N`` = the layer width); call :meth:`init_activation_steps` before
        training. None keeps activations in float.

    Attributes
    ----------
    act_quant : torch.nn.ModuleList
        One :class:`~synapse_sim.nn.quant.LSQFakeQuant` per hidden layer (empty without
        ``act_bits``).
    """

    def __init__(
        self,
        sizes,
        quantizer: str | None = None,
        bits: int = 4,
        seed: int = 0,
        act_bits: int | None = None,
    ):
        super().__init__()
        g = torch.Generator().manual_seed(int(seed))
        self.layers = nn.ModuleList(
            QuantLinear(a, b, quantizer, bits, generator=g)
            for a, b in zip(sizes[:-1], sizes[1:], strict=True)
        )
        self.quantizer = quantizer
        self.bits = self.layers[0].bits
        self.act_bits = None if act_bits is None else check_int("act_bits", act_bits, lo=1, hi=8)
        self.act_quant = nn.ModuleList(
            []
            if act_bits is None
            else [
                LSQFakeQuant(self.act_bits, signed=False, axis=None, n=int(w)) for w in sizes[1:-1]
            ]
        )

    @torch.no_grad()
    def init_activation_steps(self, x: torch.Tensor) -> None:
        """Initialize every activation step to ``2 mean|a| / sqrt(Q_P)`` on the batch ``x``.

        Layers are initialized in order, each seeing the already quantized activations of the
        layers before it.

        Parameters
        ----------
        x : torch.Tensor
            Inputs (the first 256 training samples in :func:`run_qat`).
        """
        if not len(self.act_quant):
            return
        for aq in self.act_quant:
            aq.initialized.fill_(True)
        h = x
        for i, layer in enumerate(self.layers[:-1]):
            h = torch.relu(layer(h))
            aq = self.act_quant[i]
            s0 = aq.core.scale(h.double().numpy())
            aq.step.fill_(float(s0))
            h = aq(h)

    @property
    def quantized(self) -> bool:
        """True when the weights are quantized."""
        return self.quantizer is not None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of ``x``."""
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = torch.relu(x)
                if len(self.act_quant):
                    x = self.act_quant[i](x)
        return x

    def codes(self) -> np.ndarray:
        """Integer codes of all quantized weights, flattened and concatenated."""
        return np.concatenate([layer.codes().ravel() for layer in self.layers])

    @property
    def n_weights(self) -> int:
        """Number of (quantized) weights, biases excluded."""
        return sum(layer.weight.numel() for layer in self.layers)


def train_step(
    model: QATMLP,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    cga: bool = False,
    boundary_range: float = 0.005,
) -> dict:
    """One optimizer step on a batch, with confidence-guided annealing when ``cga``.

    With ``cga`` the frozen mask of every layer is computed from the weights and scale before
    the step; frozen weights get a zero gradient and, after ``optimizer.step()``, their latent
    values before the step back (:func:`~learning_rules.quantization.cga_restore`), bitwise.
    Biases and an LSQ step keep training.

    Parameters
    ----------
    model : QATMLP
    optimizer : torch.optim.Optimizer
    x, y : torch.Tensor
        Inputs ``(batch, features)`` and int64 labels.
    cga : bool
        Anneal with CGA (needs a quantized model).
    boundary_range : float
        CGA band half-width in code units.

    Returns
    -------
    dict
        ``loss`` (float), ``frozen_fraction`` (share of weights frozen, 0 without CGA) and
        ``frozen``: one boolean mask per layer (empty list without CGA).
    """
    model.train()
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    held = []
    if cga:
        if not model.quantized:
            raise ValueError("cga needs a quantized model (quantizer is None)")
        for layer in model.layers:
            frozen = layer.frozen_mask(boundary_range)
            layer.weight.grad[torch.from_numpy(frozen)] = 0.0
            held.append((layer, frozen, layer.weight.detach().numpy().copy()))
    optimizer.step()
    masks = []
    if held:
        with torch.no_grad():
            for layer, frozen, before in held:
                kept = cga_restore(layer.weight.detach().numpy(), before, frozen)
                layer.weight.copy_(torch.from_numpy(kept))
                masks.append(frozen)
    n_frozen = sum(int(m.sum()) for m in masks)
    return {
        "loss": float(loss.detach()),
        "frozen_fraction": n_frozen / model.n_weights if masks else 0.0,
        "frozen": masks,
    }


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Accuracy and mean cross-entropy of ``model`` on ``(x, y)`` (quantized forward pass).

    Parameters
    ----------
    model : torch.nn.Module
    x, y : torch.Tensor

    Returns
    -------
    accuracy, loss : float
    """
    model.eval()
    logits = model(x)
    loss = float(F.cross_entropy(logits, y))
    acc = float((logits.argmax(1) == y).double().mean())
    return acc, loss
