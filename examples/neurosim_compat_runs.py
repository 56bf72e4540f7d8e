"""``neurosim_compat`` on and off, beside NeuroSim's own numbers on our split (issue #16).

Trains NeuroSim's 400-100-10 network on MNIST-5k (20x20 binarized, batch 1, lr 0.4 / 0.2,
bidirectional rule, one device per synapse against the mid-range reference) with NeuroSim's
schedule of random draws (``--schedule draws:BxN``), once with ``TrainConfig(neurosim_compat=
True)`` and once with our default behaviour (same initial weights, same draws), plus the
software twin, and prints a markdown table: accuracy at the end (mean of the last three
evaluations) per preset, beside NeuroSim V3.0 run on the same split (issue #16: EpiRAM 89.8%,
Ag:a-Si 70.6%, mean of the last 5 of 25 x 8,000 draws).

Usage::

    python examples/neurosim_compat_runs.py --schedule draws:10x8000 --out runs/ns_compat
    # the two halves in parallel, then the table:
    python examples/neurosim_compat_runs.py --schedule draws:10x8000 --out runs/ns_compat --only on
    python examples/neurosim_compat_runs.py --schedule draws:10x8000 --out runs/ns_compat --only off
    python examples/neurosim_compat_runs.py --out runs/ns_compat --report

Each half writes ``<out>/<on|off>-seed<S>/results.h5`` (``synapse-sim show`` reads them).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from synapse_sim import RunSpec, TrainConfig, read_results, train
from synapse_sim.data import load_dataset

#: NeuroSim V3.0 itself on our MNIST-5k split (issue #16), 200,000 presentations.
NEUROSIM_ON_OUR_SPLIT = {"epiram": 89.8, "ag_a_si": 70.6}
PRESETS = ("epiram", "ag_a_si")


def run_half(mode: str, schedule: str, presets, seed: int, out: Path) -> Path:
    """Train compat ``on`` (device runs only) or ``off`` (software twin and device runs)."""
    on = mode == "on"
    cfg = TrainConfig(neurosim_input=True, neurosim_compat=on, schedule=schedule, seed=seed)
    runs = ([] if on else [RunSpec(device="software")]) + [RunSpec(device=p) for p in presets]
    data = load_dataset("mnist5k", seed=0, neurosim=True)
    dest = out / f"{mode}-seed{seed}"
    dest.mkdir(parents=True, exist_ok=True)
    res = train(cfg, runs, data=data, out=dest, progress=False)
    return res.path


def last3(acc) -> float:
    """Mean of the last three evaluations, in percent."""
    return 100.0 * float(np.mean(np.asarray(acc)[-3:]))


def report(out: Path) -> str:
    """The markdown table of every ``<out>/<on|off>-seed*/results.h5``."""
    rows = {}
    sched = {}
    for path in sorted(out.glob("*-seed*/results.h5")):
        mode, seed = path.parent.name.split("-seed")
        res = read_results(path)
        sched[mode] = res["config"].get("schedule", f"epochs:{res['config']['train']['epochs']}")
        for label, run in res["runs"].items():
            acc = run["metrics"]["test_accuracy"]
            dev = label.split("-")[0]
            rows.setdefault((dev, mode), []).append((int(seed), last3(acc), 100 * acc[-1]))
    lines = [
        f"Schedules: {sched}. Cells: mean of the last three test evaluations (final one in "
        "brackets), per seed.",
        "",
        "| preset | ours (compat off) | neurosim_compat | NeuroSim itself on our split |",
        "|---|---:|---:|---:|",
    ]

    def cell(key):
        vals = rows.get(key, [])
        return ", ".join(f"{m:.1f} ({f:.1f})" for _, m, f in sorted(vals)) or "-"

    for dev in ("software", *PRESETS):
        ns = NEUROSIM_ON_OUR_SPLIT.get(dev)
        ns_cell = f"{ns:.1f}" if ns is not None else "-"
        on = cell((dev, "on")) if dev != "software" else "(float twin)"
        lines.append(f"| {dev} | {cell((dev, 'off'))} | {on} | {ns_cell} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--schedule", default="draws:10x8000", help="draws:BxN or epochs:E")
    p.add_argument("--presets", nargs="+", default=list(PRESETS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--only", choices=("on", "off"), default=None, help="one half only")
    p.add_argument("--out", type=Path, default=Path("runs/ns_compat"))
    p.add_argument("--report", action="store_true", help="only print the table of --out")
    a = p.parse_args(argv)
    if not a.report:
        for seed in a.seeds:
            for mode in [a.only] if a.only else ["off", "on"]:
                print("wrote", run_half(mode, a.schedule, a.presets, seed, a.out), flush=True)
    print(report(a.out))


if __name__ == "__main__":
    main()
