"""Compile time of the numba kernels on a fresh install: what a user's first run waits for.

Usage: python benchmarks/bench_compile.py [--workload online] [--tree DIR] [--json OUT]

Each workload runs in a child process with an empty numba cache directory (``NUMBA_CACHE_DIR``
set to a new temporary folder, so nothing compiled before is reused), as on a fresh clone:

* ``online``: one epoch of the digits MLP (``hidden=(12,)``, 100 images) at batch 1 on epiram,
  bidirectional: the fused batch-1 kernel (:mod:`devices.kernels.online`);
* ``backprop``: the same at batch 10 on constant_step with the bidirectional and the
  unidirectional rule: the request kernel and its refresh;
* ``stochastic``: the same at batch 10 with the stochastic pulse-train rule: the update kernel
  (the digits MLP's small layers take the dense lanes);
* ``bridge``: the first 40 steps of issue #15's torch-bridge MLP (784-256-128-10 on MNIST-5k,
  ``convert(..., device="constant_step", rule="stochastic")``, ``DeviceSGD`` lr 0.05, batch
  10; needs torch): the update kernel's sparse rows, which are all this training takes;
* ``mnist_backprop``: 40 steps of the numpy trainer on issue #15's MLP (784-256-128-10,
  MNIST-5k, batch 10, lr 0.01) on constant_step with the bidirectional rule: both twins of the
  request kernel (the 784-256 layer is large enough for the parallel one).

Printed per workload: the child's wall time, the time spent compiling (numba's compile events,
top-level kernels only: a kernel's own callees are part of its time) and the five kernels that
took longest. ``--tree DIR`` imports the package from another checkout (an A/B of two trees).
The workloads' training itself takes well under a second; the rest is compilation.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

WORKLOADS = {
    "online": ("epiram", "bidirectional", 1),
    "backprop": ("constant_step", ("bidirectional", "unidirectional"), 10),
    "stochastic": ("constant_step", "stochastic", 10),
    "bridge": ("constant_step", "stochastic", 10),
    "mnist_backprop": ("constant_step", "bidirectional", 10),
}

_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from numba.core import event

spans, stack = {}, []


class Listener(event.Listener):  # compile events nest: a kernel's callees compile inside it
    def on_start(self, ev):
        stack.append(time.perf_counter())

    def on_end(self, ev):
        t = stack.pop()
        if not stack:  # a top-level compile
            name = ev.data["dispatcher"].py_func.__qualname__
            spans[name] = spans.get(name, 0.0) + time.perf_counter() - t


event.register("numba:compile", Listener())
sys.path.insert(0, sys.argv[1])
from synapse_sim.studies.train import RunSpec, TrainConfig, train

name, (device, rules, batch) = sys.argv[3], json.loads(sys.argv[2])
if name == "bridge":
    sys.path.insert(0, sys.argv[1] + "/benchmarks")
    import torch
    from _timing import bridge_mlp
    from synapse_sim.nn import DeviceSGD

    X, Y, soft, hw = bridge_mlp()
    opt = DeviceSGD(hw, lr=0.05, rule=rules)
    for s in range(0, 40 * batch, batch):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(hw(X[s : s + batch]), Y[s : s + batch]).backward()
        opt.step()
else:
    rules = [rules] if isinstance(rules, str) else rules
    cfg = TrainConfig(dataset="digits", hidden=(12,), epochs=1, max_train=100, batch_size=batch)
    if name == "mnist_backprop":
        cfg = TrainConfig(dataset="mnist5k", hidden=(256, 128), epochs=1, max_train=40 * batch,
                          batch_size=batch, lr=0.01)  # fmt: skip
    train(cfg, [RunSpec(device=device, rule=r) for r in rules], progress=False)
print(json.dumps({"wall_s": time.perf_counter() - t0, "kernels": spans}))
"""


def run_workload(name: str, tree: Path) -> dict:
    """One workload in a child process with an empty numba cache; its timings."""
    with tempfile.TemporaryDirectory(prefix="synapse_sim_compile_") as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, MPLBACKEND="Agg")
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, str(tree), json.dumps(WORKLOADS[name]), name],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    if out.returncode != 0:
        raise RuntimeError(f"workload {name!r} failed:\n{out.stderr[-3000:]}")
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["workload"] = name
    res["compile_s"] = sum(res["kernels"].values())
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workload", action="append", choices=sorted(WORKLOADS), default=None)
    ap.add_argument("--tree", type=Path, default=Path(__file__).resolve().parents[1])
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    tree = args.tree.resolve()
    if not (tree / "devices" / "kernels").is_dir():
        ap.error(f"--tree must be a checkout of synapse_sim, got {tree}")
    print(f"package from {tree}; each workload in a fresh process with an empty numba cache")
    rows = []
    for name in args.workload or list(WORKLOADS):
        res = run_workload(name, tree)
        top = sorted(res["kernels"].items(), key=lambda kv: -kv[1])[:5]
        print(
            f"{name:11s} wall {res['wall_s']:7.1f} s, compiling {res['compile_s']:7.1f} s; "
            + ", ".join(f"{k} {v:.1f}" for k, v in top)
        )
        rows.append(res)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    main()
