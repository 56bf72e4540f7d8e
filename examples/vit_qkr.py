"""A tiny vision transformer on 8x8 digits: fp32 against W2/W3 StatsQ, with and without QKR.

Usage: python examples/vit_qkr.py [--seeds 0] [--epochs 20] [--bits 2 3] [--act-bits B]
                                  [--json OUT]

Model: the 8x8 digits (/16, the stratified 70/30 split of
``synapse_sim.studies.qat.load_split``) cut
into 16 patches of 2x2 pixels, a linear patch embedding to ``dim`` 32 plus a class token and
learned position embeddings, 2 pre-norm transformer blocks (2 heads, MLP 32-64-32, GELU), a
linear head on the class token. Quantized runs use StatsQ per output channel (identity STE) on
every weight inside the blocks (attention ``v`` and output projection, both MLP layers, and
``W_q``/``W_k``): separately in the ordinary path, or as the per-head product ``W_qk`` with QKR
(:class:`synapse_sim.nn.attention.QKRAttention`). The patch embedding and the head stay in
float; activations stay in float unless ``--act-bits`` is given (LSQ with per-channel biases on
the attention inputs, ``u``/``q``/``k``, the probabilities and ``v``). Adam, batch 64, cosine
from 3e-3 to 1e-5. Every configuration of a seed starts from the same latent weights and sees
the same data order. One seed (5 runs of 20 epochs) takes about a minute on one CPU core.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synapse_sim.nn.attention import QKRAttention, StatsQLinear  # noqa: E402
from synapse_sim.studies.qat import load_split  # noqa: E402


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(LN(x))``, then ``x + MLP(LN(x))``."""

    def __init__(self, dim, heads, mlp, bits, act_bits, qkr, g):
        super().__init__()
        self.n1 = nn.LayerNorm(dim)
        self.attn = QKRAttention(
            dim, heads, weight_bits=bits, act_bits=act_bits, qkr=qkr, generator=g
        )
        self.n2 = nn.LayerNorm(dim)
        self.fc1 = StatsQLinear(dim, mlp, bits, generator=g)
        self.fc2 = StatsQLinear(mlp, dim, bits, generator=g)

    def forward(self, x):
        x = x + self.attn(self.n1(x))
        return x + self.fc2(F.gelu(self.fc1(self.n2(x))))


class TinyViT(nn.Module):
    """16 patches of 2x2 pixels of an 8x8 image, class token, ``depth`` blocks, linear head."""

    def __init__(self, bits=None, act_bits=None, qkr=False, *, dim=32, depth=2, heads=2, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.embed = nn.Linear(4, dim)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, 17, dim, generator=g) * 0.02)
        self.blocks = nn.ModuleList(
            Block(dim, heads, 2 * dim, bits, act_bits, qkr, g) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 10)
        with torch.no_grad():
            for lin in (self.embed, self.head):
                limit = math.sqrt(6.0 / sum(lin.weight.shape))
                lin.weight.copy_((torch.rand(lin.weight.shape, generator=g) * 2 - 1) * limit)
                lin.bias.zero_()

    def forward(self, img):
        b = img.shape[0]
        p = img.reshape(b, 4, 2, 4, 2).permute(0, 1, 3, 2, 4).reshape(b, 16, 4)
        x = torch.cat([self.cls.expand(b, -1, -1), self.embed(p)], dim=1) + self.pos
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.norm(x)[:, 0])


def train(model, data, epochs, seed, lr=3e-3, lr_min=1e-5, batch=64):
    x, y, xt, yt = data
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng([seed, 1])
    steps = epochs * math.ceil(len(x) / batch)
    step = 0
    for _ in range(epochs):
        model.train()
        for idx in np.array_split(rng.permutation(len(x)), math.ceil(len(x) / batch)):
            t = lr_min + 0.5 * (lr - lr_min) * (1 + math.cos(math.pi * step / steps))
            for grp in opt.param_groups:
                grp["lr"] = t
            opt.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
            step += 1
    model.eval()
    with torch.no_grad():
        return float((model(xt).argmax(1) == yt).double().mean())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--bits", type=int, nargs="+", default=[2, 3])
    ap.add_argument("--act-bits", type=int, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    x_tr, y_tr, x_te, y_te = load_split("digits", 0)
    data = (
        torch.as_tensor(x_tr, dtype=torch.float32).reshape(-1, 8, 8),
        torch.as_tensor(y_tr),
        torch.as_tensor(x_te, dtype=torch.float32).reshape(-1, 8, 8),
        torch.as_tensor(y_te),
    )
    configs = [("fp32", None, False)]
    for b in args.bits:
        configs += [(f"W{b} StatsQ", b, False), (f"W{b} StatsQ + QKR", b, True)]
    acc: dict[str, list[float]] = {}
    t0 = time.perf_counter()
    for seed in args.seeds:
        for name, bits, qkr in configs:
            torch.manual_seed(seed)
            act = args.act_bits if bits is not None else None
            model = TinyViT(bits, act, qkr, seed=seed)
            acc.setdefault(name, []).append(train(model, data, args.epochs, seed))
            print(f"seed {seed} {name:18s} {100 * acc[name][-1]:.2f} %", file=sys.stderr)
    a = f", A{args.act_bits}" if args.act_bits else ""
    print(
        f"\nTiny ViT on digits ({args.epochs} epochs{a}, seeds {args.seeds}, "
        f"{time.perf_counter() - t0:.0f} s)\n"
    )
    print("| model | test acc. (%) mean | per seed |")
    print("|---|---:|---|")
    for name, v in acc.items():
        per = ", ".join(f"{100 * a:.1f}" for a in v)
        print(f"| {name} | {100 * np.mean(v):.2f} | {per} |")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"settings": vars(args) | {"json": str(args.json)}, "accuracy": acc}, indent=1
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
