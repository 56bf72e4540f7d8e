"""Refresh ablations of the NeuroSim study (unidirectional rule, docs/REFRESH.md).

Two experiments on the setup of examples/neurosim_study.py:

``--mode ideal-refresh`` (default)
    Refreshes set the conductances directly (``refresh_mode="ideal"``) instead of write-verify
    with cycle-to-cycle noise; isolates how much of the unidirectional result is programming
    error. ``python examples/refresh_ablation.py --epochs 10 --out runs/study_refresh_ideal``
``--mode x8``
    The refresh-cost table (X8) for every preset under the three refresh triggers of
    :class:`learning_rules.PulseRule` (``threshold``, ``hysteresis`` with ``--margin``,
    ``preemptive``): refreshes, RESETs, programming and update pulses per synapse and epoch, the
    final test accuracy, and refreshes per synapse binned by the final ``|w|``.
    ``python examples/refresh_ablation.py --mode x8 --epochs 2 --out runs/x8``
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import devices
from learning_rules.refresh import refreshes_by_weight
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
)
POLICIES = ("threshold", "hysteresis", "preemptive")
EDGES = (0.0, 0.25, 0.5, 0.75, 0.9, 1.0)


def ideal_refresh(args):
    cfg = dataclasses.replace(
        NEUROSIM_REFERENCE, epochs=args.epochs, seed=args.seed, refresh_mode="ideal"
    )
    runs = [
        RunSpec(device=p, rule="unidirectional", label=f"{p}-unidirectional-ideal-refresh")
        for p in PRESETS
    ]
    t = time.time()
    train(cfg, runs, out=args.out, progress=False)
    print(f"{time.time() - t:.0f} s")
    print(markdown_report(args.out / "results.h5"))


def x8(args):
    cfg = dataclasses.replace(NEUROSIM_REFERENCE, epochs=args.epochs, seed=args.seed)
    presets = args.preset or (*PRESETS, "ideal")
    runs = [
        RunSpec(
            device=p,
            rule="unidirectional",
            rule_options={"refresh": pol, "refresh_margin": args.margin},
            label=f"{p}-{pol}",
        )
        for p in presets
        for pol in POLICIES
    ]
    t = time.time()
    res = train(cfg, runs, out=args.out, progress=False)
    print(f"{time.time() - t:.0f} s, {args.epochs} epochs x 4,000 presentations, seed {args.seed}")
    print(
        "\n| preset | levels | trigger | refreshes | RESETs | programming pulses | update pulses "
        "| test accuracy |\n|---|---:|---|---:|---:|---:|---:|---:|"
    )
    by_w = {pol: [[0, 0.0] for _ in EDGES[:-1]] for pol in POLICIES}
    for p in presets:
        for pol in POLICIES:
            lab = f"{p}-{pol}"
            f = res.final[lab]
            n = sum(a.out_features * a.in_features for a in res.arrays[lab]) * args.epochs
            upd = f["total_pulses_ltp"] + f["total_pulses_ltd"]
            acc = res.history[lab]["test_accuracy"][-1]
            print(
                f"| {p} | {devices.get(p).levels('ltp')} | {pol} | {f['total_refreshes'] / n:.2f} "
                f"| {f['total_resets'] / n:.2f} | {f['total_pulses_prog'] / n:.1f} "
                f"| {upd / n:.1f} | {100 * acc:.1f} |"
            )
            for layer in res.arrays[lab]:
                for k, row in enumerate(refreshes_by_weight(layer, EDGES)):
                    by_w[pol][k][0] += row["synapses"]
                    by_w[pol][k][1] += row["refreshes"] * row["synapses"]
    head = " | ".join(f"{lo:g}-{hi:g}" for lo, hi in zip(EDGES[:-1], EDGES[1:], strict=True))
    print(
        f"\nRefreshes per synapse and epoch by final |w| (all presets pooled):\n\n"
        f"| trigger | {head} |\n|---|" + "---:|" * (len(EDGES) - 1)
    )
    for pol in POLICIES:
        cells = " | ".join(f"{s / c / args.epochs:.2f} ({c})" if c else "-" for c, s in by_w[pol])
        print(f"| {pol} | {cells} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=("ideal-refresh", "x8"), default="ideal-refresh")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--margin", type=float, default=0.1, help="hysteresis margin (x8)")
    ap.add_argument("--preset", action="append", default=None, help="x8: presets (default all)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if args.out is None:
        args.out = Path("runs/study_refresh_ideal" if args.mode == "ideal-refresh" else "runs/x8")
    (ideal_refresh if args.mode == "ideal-refresh" else x8)(args)


if __name__ == "__main__":
    main()
