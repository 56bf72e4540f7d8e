"""The NeuroSim reference study on MNIST-5k (docs/REPRODUCTION.md).

NeuroSim's reference setup (400-100-10 sigmoid MLP, no biases, 20x20 binarized input, batch 1,
lr 0.4 / 0.2, weights in [-1, 1], initial weights uniform over {-1, -2/3, ..., 1}, squared error)
trained on the 4,000 MNIST-5k training images for ``--epochs`` epochs, in software and on every
published preset with the bidirectional rule (reference mapping, NeuroSim's scheme) and the
unidirectional rule (differential pair, refresh at 0.9, verify programming); the ideal device
also with stochastic rounding. One results file per seed in ``--out``.

Usage: python examples/neurosim_study.py --epochs 10 --seeds 0 --out runs/study
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from synapse_sim.studies.experiments import NEUROSIM_REFERENCE, markdown_report
from synapse_sim.studies.train import RunSpec, train

PRESETS = (
    "ag_a_si",
    "taox_hfox",
    "taox_tio2",
    "pcmo",
    "alox_hfo2",
    "gst_pcm",
    "epiram",
    "hzo_fefet",
    "ideal",
)


def runs():
    out = [RunSpec(device="software")]
    for p in PRESETS:
        out.append(RunSpec(device=p, rule="bidirectional"))
        out.append(RunSpec(device=p, rule="unidirectional"))
    out.append(
        RunSpec(
            device="ideal",
            rule="bidirectional",
            label="ideal-bidirectional-stoch",
            rule_options={"rounding": "stochastic"},
        )
    )
    out.append(
        RunSpec(
            device="ideal",
            rule="unidirectional",
            label="ideal-unidirectional-stoch",
            rule_options={"rounding": "stochastic"},
        )
    )
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--out", type=Path, default=Path("runs/study"))
    ap.add_argument("--progress", action="store_true")
    args = ap.parse_args()
    for seed in args.seeds:
        cfg = dataclasses.replace(NEUROSIM_REFERENCE, epochs=args.epochs, seed=seed)
        t = time.time()
        out = args.out / f"seed{seed}"
        train(cfg, runs(), out=out, progress=args.progress)
        print(f"seed {seed}: {time.time() - t:.0f} s")
        print(markdown_report(out / "results.h5"))


if __name__ == "__main__":
    main()
