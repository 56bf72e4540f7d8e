"""Epoch time of a 784-256-128-10 relu MLP on MNIST-5k (4,000 images, batch 10), software vs
pulse backprop (bidirectional, unidirectional) and the stochastic pulse-train update, in one run.

Usage: python benchmarks/bench_train.py [--device epiram] [--rule stochastic] [--epochs 3]
[--cpu | --clock cpu] [--tree DIR] [--split] [--json OUT]

Each configuration trains ``--epochs`` epochs; the first epoch (JIT compilation, caches) is
dropped and the median of the others is reported with its ratio to the software epoch.
``--rule`` (repeatable) keeps only those device rules (default: bidirectional, unidirectional,
stochastic; the software run is always made); ``--cpu`` (or ``--clock cpu``) times the epochs in
process CPU time (all threads) instead of wall time (steadier on a shared machine); ``--tree
DIR`` imports the package from another checkout (an A/B of two trees with the same script, e.g.
``--tree ../main``); ``--split`` also reports the stochastic rule's CPU time per update, the
dense-update kernel's part and the host's rest.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import types
from pathlib import Path

RULES = ("bidirectional", "unidirectional", "stochastic")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", action="append", default=None)
    ap.add_argument("--rule", action="append", default=None, choices=RULES)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--cpu", action="store_true", help="epoch times in process CPU time")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall", help="cpu: as --cpu")
    ap.add_argument("--tree", type=Path, default=None, help="import the package from DIR")
    ap.add_argument(
        "--split", action="store_true", help="stochastic rule: CPU time per update, kernel vs host"
    )
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    sys.path.insert(0, str((args.tree or Path(__file__).parents[1]).resolve()))
    from synapse_sim.data.datasets import load_dataset
    from synapse_sim.studies import train as train_mod
    from synapse_sim.studies.train import RunSpec, TrainConfig, train

    args.cpu = args.cpu or args.clock == "cpu"
    if args.cpu:  # the trainer's epoch clock (time.perf_counter) read as process CPU time
        train_mod.time = types.SimpleNamespace(perf_counter=time.process_time)
    devs = args.device or ["epiram", "constant_step"]
    cfg = TrainConfig(
        dataset="mnist5k",
        hidden=(256, 128),
        activation="relu",
        loss="ce",
        init="uniform",
        batch_size=10,
        epochs=args.epochs,
        lr=(0.01,),
        seed=0,
    )
    data = load_dataset("mnist5k", seed=0)
    runs = [RunSpec(device="software")]
    for d in devs:
        for r in args.rule or RULES:
            runs.append(RunSpec(device=d, rule=r))
    split = _split_timers() if args.split else None
    res = train(cfg, runs, data=data, progress=False)
    print(f"package from {Path(train_mod.__file__).parents[2]}, epoch times in "
          f"{'process CPU' if args.cpu else 'wall'} seconds")  # fmt: skip
    soft = statistics.median(res.history["software"]["epoch_time"][1:])
    rows = []
    for label, h in res.history.items():
        t = statistics.median(h["epoch_time"][1:])
        rows.append(
            {
                "label": label,
                "epoch_s": t,
                "ratio_to_software": t / soft,
                "final_test_accuracy": h["test_accuracy"][-1],
            }
        )
        print(
            f"{label:28s} {t:7.3f} s/epoch   x{t / soft:5.2f}   "
            f"test acc {h['test_accuracy'][-1]:.3f}"
        )
    if split is not None:
        # the stochastic runs' updates after their first epoch (layers x batches)
        per_epoch = len(cfg.hidden) + 1
        per_epoch *= -(-data.x_train.shape[0] // cfg.batch_size)
        stochastic = "stochastic" in (args.rule or RULES)
        rows.append(split.report(skip=per_epoch, runs=len(devs) if stochastic else 0))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return rows


class _split_timers:
    """``--split``: process CPU time of each stochastic-rule update (``PulseRule.update``) and
    of the dense-update kernel inside it (``numba_cpu.pulse_update``); the rest of the update
    is the rule's host work (checks, probabilities, trains, bases, the kernel's arguments)."""

    def __init__(self):
        from devices.kernels import numba_cpu
        from learning_rules import pulse_bp

        self.calls: list[tuple[float, float]] = []
        kern, upd, k_acc = numba_cpu.pulse_update, pulse_bp.PulseRule.update, [0.0]

        def kernel(*a, **kw):
            t = time.process_time()
            try:
                return kern(*a, **kw)
            finally:
                k_acc[0] += time.process_time() - t

        def update(rule, *a, **kw):
            if rule.method != "stochastic":
                return upd(rule, *a, **kw)
            k_acc[0] = 0.0
            t = time.process_time()
            out = upd(rule, *a, **kw)
            self.calls.append((time.process_time() - t, k_acc[0]))
            return out

        numba_cpu.pulse_update, pulse_bp.PulseRule.update = kernel, update

    def report(self, skip: int, runs: int) -> dict:
        per_run = len(self.calls) // max(runs, 1)
        kept = [c for r in range(runs) for c in self.calls[r * per_run + skip : (r + 1) * per_run]]
        n = max(len(kept), 1)
        tot = 1e6 * sum(c[0] for c in kept) / n
        ker = 1e6 * sum(c[1] for c in kept) / n
        print(
            f"stochastic rule, CPU us per update (mean of {len(kept)} after epoch 1): {tot:.1f} "
            f"(kernel {ker:.1f}, host {tot - ker:.1f}, kernel share {ker / max(tot, 1e-9):.0%})"
        )
        return {
            "label": "stochastic update split",
            "update_us": tot,
            "kernel_us": ker,
            "host_us": tot - ker,
            "updates": len(kept),
        }


if __name__ == "__main__":
    main()
