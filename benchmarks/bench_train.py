"""Epoch time of a 784-256-128-10 relu MLP on MNIST-5k (4,000 images, batch 10), software vs
pulse backprop (bidirectional, unidirectional) and the stochastic pulse-train update, in one run.

Usage: python benchmarks/bench_train.py [--device epiram] [--rule stochastic] [--epochs 3]
[--cpu] [--tree DIR] [--json OUT]

Each configuration trains ``--epochs`` epochs; the first epoch (JIT compilation, caches) is
dropped and the median of the others is reported with its ratio to the software epoch.
``--rule`` (repeatable) keeps only those rules (default: bidirectional, unidirectional,
stochastic); ``--cpu`` times the epochs in process CPU time (all threads) instead of wall time
(steadier on a shared machine); ``--tree DIR`` imports the package from another checkout (an
A/B of two trees with the same script, e.g. ``--tree ../main``).
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
    ap.add_argument("--tree", type=Path, default=None, help="import the package from DIR")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    sys.path.insert(0, str((args.tree or Path(__file__).parents[1]).resolve()))
    from synapse_sim.data.datasets import load_dataset
    from synapse_sim.studies import train as train_mod
    from synapse_sim.studies.train import RunSpec, TrainConfig, train

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
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    main()
