"""How fast could the torch bridge train issue #15's MLP with no glue at all? (issue #15)

The bridge's epoch is torch's own work (autograd, relu, cross-entropy, the bias adds), the array
work that defines the results (the forward and backward reads, the pulse trains' draws, the
update kernels) and the bridge's glue around them (argument checks, conversions, the rule and
optimizer layers). This script measures what removing every line of that glue could gain: it
trains the benchmark network (``_timing.bridge_mlp``: 784-256-128-10 relu MLP, MNIST-5k, batch
10, lr 0.05, ``convert(..., device="constant_step", rule="stochastic")``) three ways,
alternated round by round in one process:

* ``package``: ``DeviceSGD(model, lr=0.05)``, the package as users run it;
* ``bare``: the same model, its reads through a bare autograd function (``x @ W.T`` on the
  arrays' cached weights, ``g @ W`` back, the rows stashed, no checks) and its updates through a
  bare loop (the biases' SGD step, then per layer the array's fused train setup and draws and
  the update kernel, called directly; no rule, no checks, no statistics). The same array work:
  the script checks that both end with the same conductances, bit for bit, so the bare
  path is a lower bound of the package's epoch on this machine, not a different workload;
* ``software``: the unconverted model with ``torch.optim.SGD``.

Printed: the median epoch of each (epochs after the first of each run), the ratios to the
software epoch, and, with ``--aihwkit-epoch S`` (aihwkit's epoch measured by
``bench_aihwkit.py --only mlp`` on the same machine), how many times faster than aihwkit each
would be. The bare path is a measurement device only: it skips checks the package must make.

Usage: python benchmarks/bridge_bound.py [--rounds 3] [--epochs 3] [--steps 400]
[--aihwkit-epoch S] [--json FILE]
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import time
import weakref
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import devices.kernels.numba_cpu as nc  # noqa: E402
import synapse_sim.nn.layers as layers  # noqa: E402
from benchmarks._timing import bridge_mlp  # noqa: E402
from synapse_sim.nn import DeviceSGD  # noqa: E402
from synapse_sim.nn.tensors import run_array_work  # noqa: E402

MODES = ("package", "bare", "software")


class _BareRead(torch.autograd.Function):
    """``y = x W^T`` on the cached weights; backward ``g W`` and the rows stashed (no checks)."""

    @staticmethod
    def forward(ctx, x, token, layer):  # noqa: D102
        xn = x.detach().numpy().astype(np.float64)
        a = layer.array
        a.array_reads["forward"] += xn.shape[0]
        ctx.layer, ctx.xn = layer, xn
        return torch.from_numpy((xn @ a._clean_weights().T).astype(np.float32))

    @staticmethod
    def backward(ctx, g):  # noqa: D102
        layer = ctx.layer
        gn = g.numpy().astype(np.float64)
        layer._pending.append((ctx.xn, gn))
        gx = None
        if ctx.needs_input_grad[0]:
            a = layer.array
            a.array_reads["backward"] += gn.shape[0]
            gx = torch.from_numpy((gn @ a._clean_weights()).astype(np.float32))
        return gx, torch.ones(1), None


def _bare_apply(self, x2d):
    """``DeviceLayer._apply_array`` for the bare path: the stash token's hook, then the read."""
    token = self.stash_token
    if self.__dict__.get("_token_hooked") is not token:
        token.register_post_accumulate_grad_hook(
            functools.partial(layers._on_token_grad, weakref.ref(self))
        )
        self.__dict__["_token_hooked"] = token
    return run_array_work(_BareRead.apply, x2d, token, self)


def _bare_update(a, x, d, lr, bl):
    """The array work of the stochastic rule's update of one layer (reference mapping)."""
    up, dn = a.nominal_step("bidirectional", "both")
    bits = a._fused_trains(x, d, lr, 0.5 * (up + dn), bl, True, True)
    _, xbits, dbits, xneg, dneg, bases, _ = bits
    W = a._clean_weights()
    return nc.pulse_update(a.state, a.params, bases, xbits, dbits, xneg, dneg, a.out_features,
                           a.in_features, 0, W.reshape(-1), a.alpha, a._gref_code(),
                           prm_dm=a._device_major_prm())  # fmt: skip


@torch.no_grad()
def _bare_step(opt, bl):
    for group, group_layers in zip(opt.param_groups, opt._layers, strict=True):
        lr = group["lr"]
        for p in group["params"]:
            if p.grad is not None:
                p.add_(p.grad, alpha=-lr)
        for layer in group_layers:
            got = layer.take_stash()
            if got is not None:
                run_array_work(_bare_update, layer.array, got[0], got[1], lr, bl)


def _train(mode, epochs, steps):
    """Seconds per epoch (all of them) and the final conductances of one run of ``mode``."""
    X, Y, soft, hw = bridge_mlp()
    if mode == "software":
        net, opt = soft, torch.optim.SGD(soft.parameters(), lr=0.05)
    else:
        net, opt = hw, DeviceSGD(hw, lr=0.05)
        ok = opt.rule.method == "stochastic" and hw[0].array.mapping == "reference"
        if mode == "bare" and not ok:
            raise SystemExit("the bare path is written for the stochastic rule, reference arrays")
    bare = mode == "bare"
    real_apply = layers.DeviceLayer._apply_array
    if bare:
        layers.DeviceLayer._apply_array = _bare_apply
    times = []
    try:
        for _ in range(epochs):
            t0 = time.perf_counter()
            for k in range(steps):
                opt.zero_grad()
                F.cross_entropy(net(X[10 * k : 10 * k + 10]), Y[10 * k : 10 * k + 10]).backward()
                if bare:
                    _bare_step(opt, opt.rule.bl)
                else:
                    opt.step()
            times.append(time.perf_counter() - t0)
    finally:
        layers.DeviceLayer._apply_array = real_apply
    G = [m.array.G.copy() for m in net.modules() if hasattr(m, "array")]
    return times, G


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=3, help="per run; the first is not counted")
    ap.add_argument("--steps", type=int, default=400, help="steps per epoch (400: all images)")
    ap.add_argument("--aihwkit-epoch", type=float, default=None,
                    help="aihwkit's epoch here (bench_aihwkit.py --only mlp), s")  # fmt: skip
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    for name in ("rounds", "steps"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    if args.epochs < 2:
        ap.error(f"--epochs must be at least 2 (the first is a warm-up), got {args.epochs}")
    if not 1 <= args.steps <= 400:
        ap.error(f"--steps must be in 1..400 (4,000 images, batch 10), got {args.steps}")
    if args.aihwkit_epoch is not None and not args.aihwkit_epoch > 0:
        ap.error(f"--aihwkit-epoch must be > 0 seconds, got {args.aihwkit_epoch}")
    times = {m: [] for m in MODES}
    same = True
    for r in range(args.rounds):
        ends = {}
        for mode in MODES if r % 2 == 0 else MODES[::-1]:
            ts, ends[mode] = _train(mode, args.epochs, args.steps)
            times[mode] += ts[1:]
        pairs = zip(ends["package"], ends["bare"], strict=True)
        same &= all(np.array_equal(p, q) for p, q in pairs)
        print(f"round {r + 1}/{args.rounds}: "
              + ", ".join(f"{m} {statistics.median(times[m][-(args.epochs - 1):]):.3f} s"
                          for m in MODES), flush=True)  # fmt: skip
    med = {m: statistics.median(v) for m, v in times.items()}
    out = {"median_s": med, "same_conductances": bool(same), "epochs": times,
           "steps": args.steps, "aihwkit_epoch_s": args.aihwkit_epoch}  # fmt: skip
    print(
        f"median s per epoch: package {med['package']:.3f}, bare {med['bare']:.3f}, "
        f"software {med['software']:.3f}"
    )
    print(
        f"bare / package {med['bare'] / med['package']:.3f}; to software: package "
        f"{med['package'] / med['software']:.2f}x, bare {med['bare'] / med['software']:.2f}x"
    )
    if args.aihwkit_epoch:
        print(
            f"times faster than aihwkit ({args.aihwkit_epoch:g} s): package "
            f"{args.aihwkit_epoch / med['package']:.2f}x, bare "
            f"{args.aihwkit_epoch / med['bare']:.2f}x"
        )
    print(f"package and bare ended with the same conductances: {same}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    if not same:
        raise SystemExit("the bare path diverged from the package's: it is not the same work")
    return out


if __name__ == "__main__":
    main()
