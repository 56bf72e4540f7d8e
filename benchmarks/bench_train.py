"""Epoch time of a 784-256-128-10 relu MLP on MNIST-5k (4,000 images, batch 10), software vs
pulse backprop (bidirectional, unidirectional) and the stochastic pulse-train update, in one run.

Usage: python benchmarks/bench_train.py [--device epiram] [--rule bidirectional] [--epochs 3]
[--clock wall|cpu] [--json OUT]

Each configuration trains ``--epochs`` epochs; the first epoch (JIT compilation, caches) is
dropped and the median of the others is reported with its ratio to the software epoch.
``--rule`` (repeatable) runs only the named device rules (the software run is always made);
``--clock cpu`` times the epochs by the process CPU time (``time.process_time``: all threads)
instead of the wall clock, for A/B runs on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import synapse_sim.studies.train as train_mod  # noqa: E402
from synapse_sim.data.datasets import load_dataset  # noqa: E402
from synapse_sim.studies.train import RunSpec, TrainConfig, train  # noqa: E402

_RULES = ("bidirectional", "unidirectional", "stochastic")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", action="append", default=None)
    ap.add_argument(
        "--rule",
        action="append",
        default=None,
        choices=_RULES,
        help="device rule to run (repeatable; default: all three)",
    )
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    devs = args.device or ["epiram", "constant_step"]
    rules = args.rule or list(_RULES)
    if args.clock == "cpu":
        # the study times an epoch with time.perf_counter: read the process CPU clock instead
        train_mod.time = SimpleNamespace(perf_counter=time.process_time)
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
        for r in rules:
            runs.append(RunSpec(device=d, rule=r))
    res = train(cfg, runs, data=data, progress=False)
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
