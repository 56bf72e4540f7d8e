"""Mechanism check X7 of specs/adaptive_bp.md: bidirectional updates drag weights toward w*.

On the reference mapping a device under a balanced stream of up and down pulses settles at the
symmetry point g* of its LTP/LTD steps, i.e. weight w* = 2 g* - 1 (specs/devices.md 5.1). This
script trains the NeuroSim reference network on MNIST-5k in software and on ag_a_si, pcmo and
alox_hfo2 (bidirectional), then compares, over synapses whose device received at least 100
pulses, the mean final weight with the software twin's. Usage:
python examples/symmetry_point_drift.py --epochs 5
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
from scipy.optimize import brentq

import devices
from synapse_sim.studies.experiments import NEUROSIM_REFERENCE
from synapse_sim.studies.train import RunSpec, train


def symmetry_point(name: str) -> float:
    """Normalized g* where single LTP and LTD steps are equal (noise-free nominal device)."""
    d = devices.get(name)

    def diff(g):
        G = d.gmin + g * d.dG
        up = d.conductance(d.pulses(G, "ltp") + 1, "ltp") - G
        dn = G - d.conductance(d.pulses(G, "ltd") - 1, "ltd")
        return up - dn

    grid = np.linspace(1e-4, 1 - 1e-4, 2001)
    vals = np.array([diff(g) for g in grid])
    roots = [
        brentq(diff, a, b)
        for a, b, va, vb in zip(grid[:-1], grid[1:], vals[:-1], vals[1:], strict=True)
        if va * vb < 0
    ]
    return roots[0] if roots else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--min-pulses", type=int, default=100)
    ap.add_argument("--layer", type=int, default=1, help="0: input-hidden, 1: hidden-output")
    args = ap.parse_args()
    presets = ("ag_a_si", "pcmo", "alox_hfo2")
    cfg = dataclasses.replace(NEUROSIM_REFERENCE, epochs=args.epochs, seed=0)
    res = train(
        cfg,
        [RunSpec(device="software")] + [RunSpec(device=p, rule="bidirectional") for p in presets],
        progress=False,
    )
    print(f"layer {args.layer}; synapses whose device received >= {args.min_pulses} pulses")
    print("| preset | g* | w* = 2g*-1 | synapses | mean w (device - software) | expected |")
    print("|---|---:|---:|---:|---:|---|")
    for p in presets:
        g = symmetry_point(p)
        L = args.layer
        arr = res.arrays[f"{p}-bidirectional"][L]
        c = arr.pulse_counts()
        busy = (c["ltp"][0] + c["ltd"][0]) >= args.min_pulses
        diff = res.weights[f"{p}-bidirectional"][L][busy] - res.weights["software"][L][busy]
        mean = f"{diff.mean():+.3f}" if busy.any() else "n/a"
        print(
            f"| {p} | {g:.4f} | {2 * g - 1:+.3f} | {int(busy.sum())} | {mean} | "
            f"{'lower' if g < 0.5 else 'higher'} |"
        )


if __name__ == "__main__":
    main()
