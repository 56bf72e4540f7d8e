"""Experiments E1a and E1c of specs/adaptive_bp.md (expected findings X1 and X2).

E1a: symmetric nonlinearity, LTP +NL / LTD -NL for NL in {0, ..., 6}, 64 levels, EpiRAM's
Gmin/Gmax, no noise. E1c: linear noise-free device with 8 ... 1024 levels. Bidirectional rule
(reference mapping, round-half-up dead zone and, for E1c, also stochastic rounding), NeuroSim's
reference network on MNIST-5k. Prints the final accuracies and Spearman's rho.
Usage: python examples/e1_response_sweeps.py --epochs 10 --out runs/e1
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from synapse_sim.studies.experiments import NEUROSIM_REFERENCE
from synapse_sim.studies.train import RunSpec, train


def _last3(h):
    return float(np.mean(h["test_accuracy"][-3:]) * 100)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("runs/e1"))
    args = ap.parse_args()
    cfg = dataclasses.replace(NEUROSIM_REFERENCE, epochs=args.epochs, seed=args.seed)
    nls = [0, 1, 2, 3, 4, 5, 6]
    runs = [RunSpec(device="software")]
    runs += [
        RunSpec(
            device="epiram",
            rule="bidirectional",
            label=f"nl{nl}",
            overrides={"nl_ltp": float(nl), "nl_ltd": -float(nl), "c2c_sigma": 0.0},
        )
        for nl in nls
    ]
    levels = [8, 16, 32, 64, 128, 256, 1024]
    for rounding in ("nearest", "stochastic"):
        runs += [
            RunSpec(
                device="ideal",
                rule="bidirectional",
                label=f"levels{p}-{rounding}",
                overrides={"levels_ltp": p, "levels_ltd": p},
                rule_options={"rounding": rounding},
            )
            for p in levels
        ]
    res = train(cfg, runs, out=args.out, progress=False)
    h = res.history
    soft = _last3(h["software"])
    print(f"software: {soft:.1f}% (mean of the last 3 epochs)\n")
    print("E1a | NL | " + " | ".join(str(n) for n in nls) + " | Spearman rho")
    acc = [_last3(h[f"nl{n}"]) for n in nls]
    rho = spearmanr(nls, acc).statistic
    print("accuracy (%) | | " + " | ".join(f"{a:.1f}" for a in acc) + f" | {rho:+.2f}")
    print("\nE1c | levels | " + " | ".join(str(p) for p in levels) + " | Spearman rho")
    for rounding in ("nearest", "stochastic"):
        acc = [_last3(h[f"levels{p}-{rounding}"]) for p in levels]
        rho = spearmanr(levels, acc).statistic
        print(f"{rounding} | | " + " | ".join(f"{a:.1f}" for a in acc) + f" | {rho:+.2f}")


if __name__ == "__main__":
    main()
