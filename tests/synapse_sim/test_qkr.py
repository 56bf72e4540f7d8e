"""QKR attention (specs/quantizers.md 3.4 and 7.1): equals standard attention unquantized."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from synapse_sim.nn.attention import QKRAttention, StatsQLinear  # noqa: E402


def _reference_mha(attn: QKRAttention) -> torch.nn.MultiheadAttention:
    """torch's MultiheadAttention with the same W_q, W_k, W_v, zero q/k biases, same proj."""
    C, H = attn.dim, attn.num_heads
    mha = torch.nn.MultiheadAttention(C, H, bias=True, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.cat([attn.q_weight, attn.k_weight, attn.v.weight]))
        mha.in_proj_bias.copy_(torch.cat([torch.zeros(2 * C), attn.v.bias]))
        mha.out_proj.weight.copy_(attn.proj.weight)
        mha.out_proj.bias.copy_(attn.proj.bias)
    return mha


@pytest.mark.parametrize(("dim", "heads"), [(8, 1), (12, 3), (32, 4)])
@pytest.mark.parametrize("qkr", [True, False])
def test_unquantized_equals_standard_attention(dim, heads, qkr):
    g = torch.Generator().manual_seed(dim + heads)
    attn = QKRAttention(dim, heads, qkr=qkr, generator=g)
    with torch.no_grad():  # non-trivial v and proj biases
        attn.v.bias.normal_(generator=g)
        attn.proj.bias.normal_(generator=g)
    x = torch.randn(3, 7, dim, generator=g)
    ref, _ = _reference_mha(attn)(x, x, x, need_weights=False)
    torch.testing.assert_close(attn(x), ref, rtol=0, atol=1e-5)


def test_qk_weight_is_the_per_head_product():
    attn = QKRAttention(12, 3, generator=torch.Generator().manual_seed(1))
    w = attn.qk_weight().detach()
    assert w.shape == (36, 12)
    d = 4
    for h in range(3):
        wq = attn.q_weight[h * d : (h + 1) * d].detach()
        wk = attn.k_weight[h * d : (h + 1) * d].detach()
        torch.testing.assert_close(w[h * 12 : (h + 1) * 12], wq.T @ wk)
    # logits: x W_q^T (x W_k^T)^T per head equals x W_qk x^T
    x = torch.randn(2, 5, 12)
    lg = attn.logits(x).detach()
    q = (x @ attn.q_weight.detach().T).reshape(2, 5, 3, d).transpose(1, 2)
    k = (x @ attn.k_weight.detach().T).reshape(2, 5, 3, d).transpose(1, 2)
    torch.testing.assert_close(lg, q @ k.transpose(-2, -1) / 2.0, rtol=0, atol=1e-5)


@pytest.mark.parametrize("bits", [None, 2, 3])
@pytest.mark.parametrize("act_bits", [None, 4])
def test_gradients_reach_wq_and_wk(bits, act_bits):
    g = torch.Generator().manual_seed(3)
    attn = QKRAttention(16, 2, weight_bits=bits, act_bits=act_bits, generator=g)
    x = torch.randn(4, 6, 16, generator=g)
    target = torch.randn(4, 6, 16, generator=g)
    loss = torch.nn.functional.mse_loss(attn(x), target)
    loss.backward()
    for p in (attn.q_weight, attn.k_weight, attn.v.weight):
        assert p.grad is not None and torch.isfinite(p.grad).all()
        assert p.grad.abs().sum() > 0
    if act_bits is not None:
        assert attn.quant_u.lsq.step.grad.abs().sum() > 0


def test_quantized_qk_weight_on_statsq_grid():
    attn = QKRAttention(16, 2, weight_bits=2, generator=torch.Generator().manual_seed(4))
    wq = attn.quantized_qk_weight().detach().numpy()
    w = attn.qk_weight().detach().numpy()
    s = 2 * np.abs(w).mean(axis=1, keepdims=True)
    levels = np.array([-0.75, -0.25, 0.25, 0.75])
    np.testing.assert_allclose(
        np.abs(wq / s - levels[np.abs(wq / s - levels[:, None, None]).argmin(0)]).max(),
        0,
        atol=1e-5,
    )
    assert wq.shape == (32, 16)
    # QKR quantizes the product once: differs from the product of separately quantized weights
    plain = QKRAttention(
        16, 2, weight_bits=2, qkr=False, generator=torch.Generator().manual_seed(4)
    )
    x = torch.randn(2, 5, 16)
    assert not torch.allclose(attn.logits(x), plain.logits(x))


def test_statsq_linear_and_bad_arguments():
    lin = StatsQLinear(8, 4, bits=2, generator=torch.Generator().manual_seed(0))
    w = lin.quantized_weight().detach().numpy()
    assert all(len(np.unique(np.round(row, 6))) <= 4 for row in w)
    with pytest.raises(ValueError, match="divisible"):
        QKRAttention(10, 3)
    with pytest.raises(ValueError, match="weight_bits"):
        QKRAttention(8, 2, weight_bits=9)
    with pytest.raises(ValueError, match="act_bits"):
        QKRAttention(8, 2, act_bits=0)
    with pytest.raises(TypeError, match="qkr"):
        QKRAttention(8, 2, qkr=1)
    with pytest.raises(ValueError, match="shape"):
        QKRAttention(8, 2)(torch.zeros(2, 8))
