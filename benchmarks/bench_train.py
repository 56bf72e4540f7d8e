"""Epoch time of a 784-256-128-10 relu MLP on MNIST-5k (4,000 images, batch 10), software vs
pulse backprop (bidirectional, unidirectional) and the stochastic pulse-train update, in one run.

Usage: python benchmarks/bench_train.py [--device epiram] [--epochs 3] [--json OUT]

Each configuration trains ``--epochs`` epochs; the first epoch (JIT compilation, caches) is
dropped and the median of the others is reported with its ratio to the software epoch.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synapse_sim.data.datasets import load_dataset  # noqa: E402
from synapse_sim.studies.train import RunSpec, TrainConfig, train  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", action="append", default=None)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
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
        for r in ("bidirectional", "unidirectional", "stochastic"):
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
