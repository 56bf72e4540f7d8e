"""In-process A/B of whole training epochs: this tree's numba kernels against those of another
git revision, on issue #15's MLP.

Usage: python benchmarks/ab_epoch.py --rev REV [--source trainer|bridge]
       [--rule stochastic|bidirectional|unidirectional] [--rounds 4] [--epochs 3] [--json FILE]

``--source trainer``: the numpy trainer (``synapse-sim train``'s engine), 784-256-128-10 relu
MLP, MNIST-5k, batch 10, lr 0.01, constant_step with ``--rule``, and its software twin.
``--source bridge``: the same MLP through the torch bridge (``convert(..., rule="stochastic")``
+ ``DeviceSGD``, lr 0.05), and the unconverted model with ``torch.optim.SGD``.

Each round trains a fresh network for ``--epochs`` epochs with each tree's kernels (the order
swapped every round) and the software model, and keeps the median wall time of the epochs after
the first (which loads the kernels and settles the twin choice). The kernels of ``REV``
(``devices/kernels/numba_cpu.py`` at that revision, compiled beside this tree's:
``_timing.kernels_at``) replace
``pulse_update`` and ``pulse_request`` for the base runs; everything else is this tree's. The two
trees' runs must end with the same test accuracy (a kernel change meant to keep results bit for
bit). Printed: per round the three epoch times, then the medians and the ratios to software.
On a machine whose speed drifts from minute to minute, only ratios taken within a round are
comparable.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._timing import bridge_mlp, kernels_at  # noqa: E402

_NAMES = ("pulse_update", "pulse_request")


def _trainer(rule, n_epochs):
    from synapse_sim.data.datasets import load_dataset
    from synapse_sim.studies.train import RunSpec, TrainConfig, train

    data = load_dataset("mnist5k", seed=0)
    cfg = TrainConfig(dataset="mnist5k", hidden=(256, 128), activation="relu", loss="ce",
                      init="uniform", batch_size=10, epochs=n_epochs, lr=(0.01,),
                      seed=0)  # fmt: skip

    def run(spec):
        res = train(cfg, [spec], data=data, progress=False)
        (h,) = res.history.values()
        return statistics.median(h["epoch_time"][1:]), float(h["test_accuracy"][-1])

    return (lambda: run(RunSpec(device="constant_step", rule=rule)),
            lambda: run(RunSpec(device="software")))  # fmt: skip


def _bridge(rule, n_epochs):
    if rule != "stochastic":
        raise SystemExit("--source bridge trains the stochastic rule only (the issue's setting)")
    import torch
    import torch.nn.functional as F

    from synapse_sim.nn import DeviceSGD, convert

    torch.set_num_threads(1)
    X, Y, soft0, _ = bridge_mlp()
    init = {k: v.clone() for k, v in soft0.state_dict().items()}

    def fresh():
        soft0.load_state_dict(init)
        return soft0

    def epochs(net, opt):
        times = []
        for _ in range(n_epochs):
            t0 = time.perf_counter()
            for s in range(0, X.shape[0] - 10, 10):
                opt.zero_grad()
                F.cross_entropy(net(X[s : s + 10]), Y[s : s + 10]).backward()
                opt.step()
            times.append(time.perf_counter() - t0)
        with torch.no_grad():
            acc = float((net(X[:1000]).argmax(1) == Y[:1000]).float().mean())
        return statistics.median(times[1:]), acc

    def device():
        import copy

        hw = convert(copy.deepcopy(fresh()), device="constant_step", rule="stochastic")
        return epochs(hw, DeviceSGD(hw, lr=0.05, rule="stochastic"))

    def software():
        import copy

        net = copy.deepcopy(fresh())
        return epochs(net, torch.optim.SGD(net.parameters(), lr=0.05))

    return device, software


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rev", required=True, help="git revision of the base kernels")
    ap.add_argument("--source", choices=["trainer", "bridge"], default="trainer")
    ap.add_argument("--rule", choices=["stochastic", "bidirectional", "unidirectional"],
                    default="stochastic")  # fmt: skip
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=3, help="per run (at least 2)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    from devices.kernels import numba_cpu as nc

    if args.rounds < 1:
        raise SystemExit(f"--rounds must be >= 1, got {args.rounds}")
    if args.epochs < 2:
        raise SystemExit(f"--epochs must be at least 2 (the first is not timed), got {args.epochs}")
    device, software = (_trainer if args.source == "trainer" else _bridge)(args.rule, args.epochs)
    ours = {n: getattr(nc, n) for n in _NAMES}
    rounds = []
    with kernels_at(args.rev) as base:
        theirs = {n: getattr(base, n) for n in _NAMES}
        try:
            for r in range(args.rounds):
                row = {}
                for name in ("new", "base") if r % 2 == 0 else ("base", "new"):
                    for n in _NAMES:
                        setattr(nc, n, (ours if name == "new" else theirs)[n])
                    row[name], row[name + "_acc"] = device()
                for n in _NAMES:
                    setattr(nc, n, ours[n])
                row["software"], _ = software()
                if row["new_acc"] != row["base_acc"]:
                    raise AssertionError(f"the two kernels trained differently: {row}")
                rounds.append(row)
                print(f"round {r}: this tree {row['new']:.3f} s, {args.rev} {row['base']:.3f} s,"
                      f" software {row['software']:.3f} s (this tree / base "
                      f"{row['new'] / row['base']:.2f})", flush=True)  # fmt: skip
        finally:
            for n in _NAMES:
                setattr(nc, n, ours[n])
    med = {k: statistics.median(r[k] for r in rounds) for k in ("new", "base", "software")}
    per = [r["new"] / r["base"] for r in rounds]
    out = {"source": args.source, "rule": args.rule, "rev": args.rev, "rounds": rounds,
           "median_s": med, "new_over_software": med["new"] / med["software"],
           "base_over_software": med["base"] / med["software"],
           "new_over_base_per_round": per}  # fmt: skip
    print(f"medians: this tree {med['new']:.3f} s ({out['new_over_software']:.2f}x software), "
          f"{args.rev} {med['base']:.3f} s ({out['base_over_software']:.2f}x), software "
          f"{med['software']:.3f} s; this tree / base per round "
          + ", ".join(f"{v:.2f}" for v in per))  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
