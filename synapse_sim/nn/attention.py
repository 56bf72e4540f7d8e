"""Query-key reparameterized attention (QKR; OFQ, Liu, Liu, Cheng, ICML 2023), in torch.

In low-bit attention the query and key weights meet in ``q k^T``, so their quantization errors
compound. QKR keeps ``W_q`` and ``W_k`` as the trained (latent) parameters but quantizes their
per-head product once (``specs/quantizers.md`` section 3.4)::

    W_qk^h = (W_q^h)^T W_k^h                  # C x C per head, stacked to (H C) x C
    u_h    = Q(W_qk^h) x_hat^T                # StatsQ per row of the stacked matrix
    logits = x_hat u_h * d^-0.5,   attention = softmax(logits) v

so one quantizer, not two coupled ones, sits between the weights and the attention logits.
Query and key biases are dropped; ``v`` keeps its bias. On a crossbar the array holds ``W_qk``
(``H C^2`` weights against ``2 C^2`` for ``W_q`` and ``W_k``).

:class:`QKRAttention` also runs the ordinary path (``qkr=False``: ``Q(W_q)``, ``Q(W_k)``
separately), so the two can be compared with the same latent weights. With ``weight_bits=None``
and ``act_bits=None`` nothing is quantized and both paths equal standard multi-head attention.

>>> import torch
>>> attn = QKRAttention(8, num_heads=2, weight_bits=3, generator=torch.Generator().manual_seed(0))
>>> attn(torch.zeros(1, 4, 8)).shape
torch.Size([1, 4, 8])
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from devices.validation import check_int

from .quant import LSQFakeQuant, statsq_fake_quant

__all__ = ["QKRAttention", "StatsQLinear", "ActQuant"]


def _glorot(out_f: int, in_f: int, generator) -> torch.Tensor:
    limit = math.sqrt(6.0 / (in_f + out_f))
    return (torch.rand(out_f, in_f, generator=generator) * 2.0 - 1.0) * limit


def _check_bits(name: str, bits):
    return None if bits is None else check_int(name, bits, lo=1, hi=8)


class StatsQLinear(nn.Module):
    """Linear layer with StatsQ per-output-channel weights (identity STE); float when ``bits=None``.

    Parameters
    ----------
    in_features, out_features : int
    bits : int or None
        Weight bit width (1 to 8) or None for float weights.
    bias : bool
    generator : torch.Generator, optional
        Source of the Glorot-uniform initial weights (biases start at zero).
    """

    def __init__(self, in_features, out_features, bits=None, bias=True, *, generator=None):
        super().__init__()
        self.bits = _check_bits("bits", bits)
        self.weight = nn.Parameter(_glorot(out_features, in_features, generator))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    def quantized_weight(self) -> torch.Tensor:
        """The (fake-quantized) weight."""
        if self.bits is None:
            return self.weight
        return statsq_fake_quant(self.weight, self.bits, axis=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x @ Q(W)^T + b``."""
        return F.linear(x, self.quantized_weight(), self.bias)


class ActQuant(nn.Module):
    """LSQ activation quantizer with learnable per-channel biases before and after (OFQ).

    ``y = LSQ(x + b_in) + b_out``; the step is initialized from the first batch
    (``2 mean|x| / sqrt(Q_P)``). Identity when ``bits=None``.

    Parameters
    ----------
    bits : int or None
        Bit width (1 to 8) or None (no quantization).
    channels : int
        Size of the last axis (per-channel steps and biases); 1 with ``per_channel=False``.
    signed : bool
        Signed codes, or unsigned (softmax probabilities).
    per_channel : bool
        One step and bias per channel of the last axis, or one per tensor.
    """

    def __init__(self, bits, channels: int, *, signed: bool = True, per_channel: bool = True):
        super().__init__()
        self.bits = _check_bits("bits", bits)
        self.lsq = None
        if self.bits is not None:
            n = int(channels) if per_channel else 1
            self.lsq = LSQFakeQuant(
                self.bits, signed=signed, axis=-1 if per_channel else None, num_channels=n
            )
            self.bias_in = nn.Parameter(torch.zeros(n))
            self.bias_out = nn.Parameter(torch.zeros(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Quantize ``x`` (identity without bits)."""
        if self.lsq is None:
            return x
        b_in = self.bias_in if self.bias_in.numel() > 1 else self.bias_in.reshape(())
        b_out = self.bias_out if self.bias_out.numel() > 1 else self.bias_out.reshape(())
        return self.lsq(x + b_in) + b_out


class QKRAttention(nn.Module):
    """Multi-head self-attention with query-key reparameterization (OFQ's QKR).

    Parameters
    ----------
    dim : int
        Embedding width ``C``.
    num_heads : int
        Heads ``H``; ``C`` must be divisible by ``H`` (head width ``d = C / H``).
    weight_bits : int or None
        StatsQ weight bit width for ``W_qk`` (or ``W_q``, ``W_k``), ``W_v`` and the output
        projection; None for float weights.
    act_bits : int or None
        LSQ bit width of the activations: the input ``x``, the key-side product ``u``, the
        softmax probabilities (unsigned) and ``v``; None for float activations.
    qkr : bool
        Quantize the per-head product ``W_qk`` once (True) or ``W_q`` and ``W_k`` separately
        (False, the ordinary path).
    generator : torch.Generator, optional
        Source of the initial weights.

    Attributes
    ----------
    q_weight, k_weight : torch.nn.Parameter
        Latent ``W_q``, ``W_k`` of shape ``(C, C)`` (rows ``h d .. (h+1) d`` belong to head
        ``h``); no query or key biases.
    v : StatsQLinear
        Value projection (with bias).
    proj : StatsQLinear
        Output projection.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 1,
        *,
        weight_bits=None,
        act_bits=None,
        qkr: bool = True,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        dim = check_int("dim", dim, lo=1)
        num_heads = check_int("num_heads", num_heads, lo=1)
        if dim % num_heads:
            raise ValueError(f"dim ({dim}) must be divisible by num_heads, got {num_heads}")
        if not isinstance(qkr, bool):
            raise TypeError(f"qkr must be a bool, got {qkr!r}")
        self.dim, self.num_heads, self.head_dim = dim, num_heads, dim // num_heads
        self.weight_bits = _check_bits("weight_bits", weight_bits)
        self.act_bits = _check_bits("act_bits", act_bits)
        self.qkr = qkr
        self.q_weight = nn.Parameter(_glorot(dim, dim, generator))
        self.k_weight = nn.Parameter(_glorot(dim, dim, generator))
        self.v = StatsQLinear(dim, dim, weight_bits, generator=generator)
        self.proj = StatsQLinear(dim, dim, weight_bits, generator=generator)
        a = self.act_bits
        self.quant_x = ActQuant(a, dim)
        self.quant_u = ActQuant(a, dim)  # QKR: u_h = W_qk^h x^T, per channel of C
        self.quant_q = ActQuant(a, dim)  # ordinary path: q and k activations
        self.quant_k = ActQuant(a, dim)
        self.quant_v = ActQuant(a, dim)
        self.quant_attn = ActQuant(a, 1, signed=False, per_channel=False)

    def qk_weight(self) -> torch.Tensor:
        """Stacked per-head product ``W_qk``, shape ``(H C, C)``: rows ``h C .. (h+1) C``
        hold ``(W_q^h)^T W_k^h``."""
        H, d, C = self.num_heads, self.head_dim, self.dim
        wq = self.q_weight.reshape(H, d, C)
        wk = self.k_weight.reshape(H, d, C)
        return torch.einsum("hdc,hde->hce", wq, wk).reshape(H * C, C)

    def quantized_qk_weight(self) -> torch.Tensor:
        """``Q(W_qk)`` (StatsQ per row of the stacked matrix), or ``W_qk`` in float."""
        w = self.qk_weight()
        return w if self.weight_bits is None else statsq_fake_quant(w, self.weight_bits, axis=0)

    def _wq(self, w: torch.Tensor) -> torch.Tensor:
        return w if self.weight_bits is None else statsq_fake_quant(w, self.weight_bits, axis=0)

    def logits(self, x_hat: torch.Tensor) -> torch.Tensor:
        """Attention logits ``(B, H, N, N)`` of quantized inputs ``x_hat`` ``(B, N, C)``."""
        B, N, C = x_hat.shape
        H, d = self.num_heads, self.head_dim
        scale = d**-0.5
        if self.qkr:
            wqk = self.quantized_qk_weight().reshape(H, C, C)
            u = torch.einsum("hce,bne->bhnc", wqk, x_hat)  # u_h^T: (B, H, N, C)
            u = self.quant_u(u)
            return torch.einsum("bic,bhjc->bhij", x_hat, u) * scale
        q = self.quant_q(F.linear(x_hat, self._wq(self.q_weight)))
        k = self.quant_k(F.linear(x_hat, self._wq(self.k_weight)))
        q = q.reshape(B, N, H, d).transpose(1, 2)
        k = k.reshape(B, N, H, d).transpose(1, 2)
        return (q @ k.transpose(-2, -1)) * scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Self-attention of ``x`` ``(B, N, C)`` -> ``(B, N, C)``."""
        if x.dim() != 3 or x.shape[-1] != self.dim:
            raise ValueError(f"x must have shape (batch, tokens, {self.dim}), got {tuple(x.shape)}")
        B, N, C = x.shape
        H, d = self.num_heads, self.head_dim
        x_hat = self.quant_x(x)
        attn = self.quant_attn(torch.softmax(self.logits(x_hat), dim=-1))
        v = self.quant_v(self.v(x_hat)).reshape(B, N, H, d).transpose(1, 2)
        out = (attn @ v).transpose(1, 2).reshape(B, N, C)
        return self.proj(out)
