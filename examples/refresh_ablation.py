"""Ablation of the study: unidirectional rule with ideal re-programming on refresh.

Same setup as examples/neurosim_study.py, but refreshes set the conductances directly
(``refresh_mode="ideal"``) instead of write-verify with cycle-to-cycle noise; isolates how much
of the unidirectional result is programming error. Usage:
python examples/refresh_ablation.py --epochs 10 --out runs/study_refresh_ideal
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
)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("runs/study_refresh_ideal"))
    args = ap.parse_args()
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


if __name__ == "__main__":
    main()
