"""Torch straight-through quantizers: uniform STE, LSQ with a learnable step, StatsQ, LevelGrid.

The forward passes follow the numpy cores of :mod:`devices.quantizers` formula for formula
(round half to even, explicit clips), so values agree with them; the backward passes are the
straight-through estimators of ``specs/quantizers.md`` section 1, written with the two idioms

- ``ste_round(u)``: value ``round(u)``, gradient 1;
- ``grad_scale(s, k)``: value ``s``, gradient times ``k``.

>>> import torch
>>> from synapse_sim.nn.quant import LSQFakeQuant
>>> fq = LSQFakeQuant(bits=3, axis=None, init_step=0.25)
>>> fq(torch.tensor([0.37, -0.52, 0.05, 1.3])).tolist()
[0.25, -0.5, 0.0, 0.75]
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from devices.quantizers import (
    LSQ,
    LSQ_MIN_STEP,
    STAT_MIN_SCALE,
    LevelGrid,
    StatsQ,
    Uniform,
    lsq_bounds,
)
from devices.validation import check_choice

__all__ = [
    "ste_round",
    "ste_sign",
    "grad_scale",
    "uniform_fake_quant",
    "lsq_fake_quant",
    "statsq_fake_quant",
    "UniformFakeQuant",
    "LSQFakeQuant",
    "StatsQFakeQuant",
    "level_grid_fake_quant",
    "LevelGridFakeQuant",
]

_STE = ("clipped", "identity")


def ste_round(u: torch.Tensor) -> torch.Tensor:
    """Round half to even in the forward pass, identity gradient (Bengio et al. 2013).

    Parameters
    ----------
    u : torch.Tensor
        Pre-rounding values.
    """
    return torch.round(u).detach() + (u - u.detach())


def ste_sign(u: torch.Tensor) -> torch.Tensor:
    """``sign`` with ``sign(0) = +1`` in the forward pass, identity gradient.

    Parameters
    ----------
    u : torch.Tensor
        Values.
    """
    s = torch.where(u >= 0, torch.ones_like(u), -torch.ones_like(u))
    return s.detach() + (u - u.detach())


def grad_scale(s: torch.Tensor, k: float) -> torch.Tensor:
    """Value ``s``, gradient multiplied by ``k`` (LSQ's step-gradient scale).

    Parameters
    ----------
    s : torch.Tensor
        Tensor (usually the step).
    k : float
        Gradient factor.
    """
    sk = s * k
    return s.detach() + (sk - sk.detach())


def _channel_view(t: torch.Tensor, x: torch.Tensor, axis) -> torch.Tensor:
    """Reshape a per-channel tensor (``(C,)`` or broadcast shape) to broadcast against ``x``."""
    if axis is None or t.dim() == 0:
        return t.reshape(())
    ax = axis % x.dim()
    shape = [1] * x.dim()
    shape[ax] = x.shape[ax]
    if t.numel() not in (1, x.shape[ax]):
        raise ValueError(
            f"step must have 1 or {x.shape[ax]} entries (one per channel along axis {ax}), "
            f"got shape {tuple(t.shape)}"
        )
    return t.reshape(shape) if t.numel() == x.shape[ax] else t.reshape(())


def _reduce_channels(a: torch.Tensor, axis, fn) -> torch.Tensor:
    if axis is None:
        return fn(a)
    ax = axis % a.dim()
    others = [i for i in range(a.dim()) if i != ax]
    return fn(a, dim=others, keepdim=True) if others else a


def _as_tensor(a, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a), dtype=like.dtype, device=like.device)


def uniform_fake_quant(
    x: torch.Tensor,
    quantizer: Uniform,
    scale=None,
    *,
    ste: str = "clipped",
    noise: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Fake-quantize ``x`` with a :class:`devices.Uniform` quantizer and a straight-through grad.

    Parameters
    ----------
    x : torch.Tensor
        Input.
    quantizer : devices.Uniform
        Bits, range, narrow/full, axis and rounding mode.
    scale : array_like or torch.Tensor, optional
        Step; default ``quantizer.scale(x)`` (from the range, or ``max|x|``), without gradient.
    ste : {"clipped", "identity"}
        ``"clipped"``: gradient 1 inside the range, 0 where the input was clipped;
        ``"identity"``: 1 everywhere.
    noise : torch.Tensor, optional
        Uniform ``[0, 1)`` draws of the shape of ``x`` for stochastic rounding.
    generator : torch.Generator, optional
        Draws the noise when ``noise`` is not given.

    Returns
    -------
    torch.Tensor
        ``s * (q - z)``, shape of ``x``.
    """
    if not isinstance(quantizer, Uniform):
        raise TypeError(f"quantizer must be a devices.Uniform, got {type(quantizer).__name__}")
    check_choice("ste", ste, _STE)
    if torch.isnan(x).any():
        raise ValueError("x must not contain NaN")
    x_np = x.detach().cpu().double().numpy()
    s_np = quantizer.scale(x_np) if scale is None else quantizer._prepare(x_np, scale)[1]
    s = _as_tensor(s_np, x)
    z = _as_tensor(quantizer.zero_point(s_np), x)
    lo, hi = quantizer.code_range
    u = x / s + z
    uc = torch.clamp(u, lo, hi)
    if ste == "identity":
        uc = uc.detach() + (u - u.detach())
    one_bit = quantizer.symmetric and quantizer.bits == 1
    if quantizer.rounding == "stochastic":
        if noise is None:
            noise = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        elif noise.shape != x.shape:
            raise ValueError(f"noise must have the shape of x {tuple(x.shape)}")
        xi = noise.to(dtype=x.dtype, device=x.device)
        if one_bit:
            k = torch.clamp(torch.floor((uc.detach() + 1.0) / 2.0 + xi), 0, 1)
            q_val = 2.0 * k - 1.0
        else:
            q_val = torch.clamp(torch.floor(uc.detach() + xi), lo, hi)
        q = q_val + (uc - uc.detach())
    elif one_bit:
        q = ste_sign(uc)
    else:
        q = ste_round(uc)
    return s * (q - z)


def lsq_fake_quant(
    x: torch.Tensor,
    step: torch.Tensor,
    bits: int,
    signed: bool = True,
    axis: int | None = None,
    n: int | None = None,
) -> torch.Tensor:
    """LSQ fake quantization with gradients for ``x`` and the step (Esser et al. 2020).

    Forward ``s * round(clip(x / s, -Q_N, Q_P))``; backward ``dx`` = 1 inside the range, 0
    outside; ``ds`` = ``round(u) - u`` inside, ``-Q_N`` / ``Q_P`` outside, times
    ``g = 1 / sqrt(N Q_P)``. Matches :func:`devices.lsq_gradients`.

    Parameters
    ----------
    x : torch.Tensor
        Input.
    step : torch.Tensor
        Step, scalar or one per channel along ``axis`` (``(C,)``); clamped below at 1e-5.
    bits : int
        Bit width, 1 to 8.
    signed : bool
        Signed or unsigned codes.
    axis : int or None
        Channel axis of a per-channel step.
    n : int, optional
        ``N`` of the gradient scale; default the number of elements one step serves.
    """
    qn, qp = lsq_bounds(bits, signed)
    if n is None:
        n = x.numel() if axis is None else x.numel() // max(x.shape[axis % x.dim()], 1)
    k = 1.0 / math.sqrt(n * qp)
    s = _channel_view(grad_scale(step, k), x, axis).clamp_min(LSQ_MIN_STEP)
    uc = torch.clamp(x / s, -qn, qp)
    q = ste_sign(uc) if (signed and bits == 1) else ste_round(uc)
    return q * s


def statsq_fake_quant(w: torch.Tensor, bits: int, axis: int | None = 0) -> torch.Tensor:
    """StatsQ fake quantization (OFQ) with the identity straight-through gradient.

    ``s_c = 2 mean|W_c|`` (no gradient), ``n = 2**(bits-1)``,
    ``u = clip(W/s_c, -1, 1 - 1e-6) n - 0.5``, ``Q = s_c (clip(round(u), -n, n-1) + 0.5) / n``;
    ``dQ/dW = 1`` everywhere. Matches :class:`devices.StatsQ`.

    Parameters
    ----------
    w : torch.Tensor
        Weights.
    bits : int
        Bit width, 1 to 8.
    axis : int or None
        Output-channel axis, or None for one scale per tensor.
    """
    nq = StatsQ(bits, axis=axis).n
    wd = w.detach()
    s = (2.0 * _reduce_channels(wd.abs(), axis, torch.mean)).clamp_min(STAT_MIN_SCALE)
    u = torch.clamp(wd / s, -1.0, 1.0 - 1e-6) * nq - 0.5
    q = torch.clamp(torch.round(u), -nq, nq - 1)
    return (s * (q + 0.5) / nq) + (w - wd)


class UniformFakeQuant(nn.Module):
    """Module form of :func:`uniform_fake_quant` (no learnable parameters).

    Parameters
    ----------
    bits : int
        Bit width, 1 to 8.
    range, narrow, axis, rounding
        As :class:`devices.Uniform`.
    ste : {"clipped", "identity"}
        Straight-through variant.
    """

    def __init__(
        self,
        bits: int,
        range=None,  # the name used by devices.Uniform
        *,
        narrow: bool = True,
        axis: int | None = None,
        rounding: str = "nearest",
        ste: str = "clipped",
    ):
        super().__init__()
        self.quantizer = Uniform(bits, range, narrow=narrow, axis=axis, rounding=rounding)
        self.ste = check_choice("ste", ste, _STE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Fake-quantize ``x``."""
        return uniform_fake_quant(x, self.quantizer, ste=self.ste)


class LSQFakeQuant(nn.Module):
    """LSQ fake quantizer with a learnable step (per tensor or per channel).

    The step is initialized on the first forward pass from the data as
    ``2 mean|x| / sqrt(Q_P)`` (per channel along ``axis``) unless ``init_step`` is given.

    Parameters
    ----------
    bits : int
        Bit width, 1 to 8.
    signed : bool
        Signed (weights) or unsigned (activations after ReLU/softmax) codes.
    axis : int or None
        Channel axis (0: output channels of a weight) or None for one step.
    num_channels : int
        Number of channels along ``axis`` (ignored when ``axis`` is None).
    init_step : float, optional
        Initial step; skips the data-based initialization.
    n : int, optional
        ``N`` of the gradient scale (default: elements per step).
    """

    def __init__(
        self,
        bits: int,
        signed: bool = True,
        axis: int | None = 0,
        num_channels: int = 1,
        init_step: float | None = None,
        n: int | None = None,
    ):
        super().__init__()
        self.core = LSQ(bits, signed=signed, axis=axis)
        shape = () if axis is None else (int(num_channels),)
        value = 1.0 if init_step is None else float(init_step)
        self.step = nn.Parameter(torch.full(shape, value, dtype=torch.float32))
        self.register_buffer("initialized", torch.tensor(init_step is not None))
        self.n = n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Fake-quantize ``x``; the step receives the LSQ gradient."""
        if not bool(self.initialized):
            with torch.no_grad():
                s0 = self.core.scale(x.detach().cpu().double().numpy())
                self.step.copy_(torch.as_tensor(np.asarray(s0).reshape(self.step.shape)))
                self.initialized.fill_(True)
        step = self.step.to(x.dtype)
        return lsq_fake_quant(x, step, self.core.bits, self.core.signed, self.core.axis, n=self.n)


class StatsQFakeQuant(nn.Module):
    """Module form of :func:`statsq_fake_quant` (no learnable parameters).

    Parameters
    ----------
    bits : int
        Bit width, 1 to 8.
    axis : int or None
        Output-channel axis, or None.
    """

    def __init__(self, bits: int, axis: int | None = 0):
        super().__init__()
        self.core = StatsQ(bits, axis=axis)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        """Fake-quantize the weight ``w``."""
        return statsq_fake_quant(w, self.core.bits, self.core.axis)


def level_grid_fake_quant(
    x: torch.Tensor, grid: LevelGrid, scale=None, *, ste: str = "clipped"
) -> torch.Tensor:
    """Fake-quantize ``x`` to the nearest entry of a :class:`devices.quantizers.LevelGrid` table.

    Same forward as ``grid.fake`` (index coordinate rounded half to even, clipped to the table;
    nearest rounding only), straight-through backward.

    Parameters
    ----------
    x : torch.Tensor
        Input.
    grid : devices.quantizers.LevelGrid
        Table, axis and scaling (``rounding="nearest"``).
    scale : array_like or torch.Tensor, optional
        Step; default ``grid.scale(x)`` (no gradient).
    ste : {"clipped", "identity"}
        ``"clipped"``: gradient 1 between the outer entries, 0 outside; ``"identity"``: 1
        everywhere (StatsQ's choice).

    Returns
    -------
    torch.Tensor
        Shape of ``x``.
    """
    if not isinstance(grid, LevelGrid):
        raise TypeError(f"grid must be a devices.quantizers.LevelGrid, got {type(grid).__name__}")
    if grid.rounding != "nearest":
        raise ValueError(
            f"level_grid_fake_quant supports rounding='nearest', got {grid.rounding!r}"
        )
    check_choice("ste", ste, _STE)
    if torch.isnan(x).any():
        raise ValueError("x must not contain NaN")
    xd = x.detach()
    if scale is None:
        s_np = grid.scale(xd.cpu().double().numpy())
    else:
        s_np = grid._prepare(xd.cpu().double().numpy(), scale)[1]
    s = _as_tensor(s_np, x)
    v = xd / s
    table = torch.as_tensor(grid.table.copy(), dtype=x.dtype, device=x.device)
    L = table.shape[-1]
    if grid.per_channel_table:
        ax = grid.axis % x.dim()
        if x.shape[ax] != table.shape[0]:
            raise ValueError(
                f"per-channel levels have {table.shape[0]} tables, but the input has "
                f"{x.shape[ax]} channels along axis {ax}"
            )
        vm = v.movedim(ax, 0)
        rows = vm.reshape(vm.shape[0], -1).contiguous()
        i = (torch.searchsorted(table, rows, right=True) - 1).clamp(0, L - 2)
        lo, hi = table.gather(1, i), table.gather(1, i + 1)
        u = (i + (rows - lo) / (hi - lo)).clamp(0, L - 1)
        q = torch.round(u).long().clamp(0, L - 1)
        val = table.gather(1, q).reshape(vm.shape).movedim(0, ax)
        inside = ((rows >= table[:, :1]) & (rows <= table[:, -1:])).reshape(vm.shape).movedim(0, ax)
    else:
        flat = v.reshape(-1).contiguous()
        i = (torch.searchsorted(table, flat, right=True) - 1).clamp(0, L - 2)
        lo, hi = table[i], table[i + 1]
        u = (i + (flat - lo) / (hi - lo)).clamp(0, L - 1)
        q = torch.round(u).long().clamp(0, L - 1)
        val = table[q].reshape(v.shape)
        inside = (v >= table[0]) & (v <= table[-1])
    out = s * val
    if ste == "identity":
        return out + (x - xd)
    return out + (x - xd) * inside.to(x.dtype)


class LevelGridFakeQuant(nn.Module):
    """Module form of :func:`level_grid_fake_quant` (no learnable parameters).

    Parameters
    ----------
    grid : devices.quantizers.LevelGrid
        The table (e.g. ``LevelGrid.from_device("epiram", n_states=8, axis=0,
        scaling="mean")``).
    ste : {"clipped", "identity"}
        Straight-through variant.
    """

    def __init__(self, grid: LevelGrid, ste: str = "clipped"):
        super().__init__()
        if not isinstance(grid, LevelGrid):
            raise TypeError(
                f"grid must be a devices.quantizers.LevelGrid, got {type(grid).__name__}"
            )
        self.grid = grid
        self.ste = check_choice("ste", ste, _STE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Fake-quantize ``x``."""
        return level_grid_fake_quant(x, self.grid, ste=self.ste)
