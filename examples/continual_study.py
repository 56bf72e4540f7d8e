"""Continual-learning study: CLASSP against SGD, Adam, AdaGrad and EWC (docs/CONTINUAL.md).

A small driver over :func:`synapse_sim.continual.run_continual`: permuted MNIST-5k and split
MNIST-5k (task-incremental), in software and on device presets, several seeds; prints markdown
tables (mean +- std over seeds) and writes every run (accuracy matrix included) as JSON.
Usage (the numbers of docs/CONTINUAL.md, about 5-6 minutes on 2 cores):

    python examples/continual_study.py --out runs/continual_study

Smaller: ``--seeds 0 --max-per-task 1000``; one benchmark: ``--benchmarks permuted``; SGD with
lr 1 (not in the default set): ``--optimizers sgd-1``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

from synapse_sim.continual import ContinualConfig, make_tasks, run_continual

# name -> ContinualConfig fields. Learning rates: the CLI defaults (SGD / EWC / CLASSP 0.1,
# Adam 1e-3, AdaGrad 0.01); CLASSP as in specs/classp.md 9.4 (alpha 0.1 in both phases, task 1
# unscaled, p 1, eps 1e-5, theta 1e-5).
OPTIMIZERS = {
    "sgd": {"optimizer": "sgd", "lr": 0.1},
    "adam": {"optimizer": "adam", "lr": 1e-3},
    "adagrad": {"optimizer": "adagrad", "lr": 0.01},
    "ewc-5000": {"optimizer": "ewc", "lr": 0.1, "lam": 5000.0},
    "ewc-500": {"optimizer": "ewc", "lr": 0.1, "lam": 500.0},
    "classp": {"optimizer": "classp", "lr": 0.1},
    # Pulse-count accumulator (specs/classp.md 9.4 variant); only meaningful on a device.
    "classp-pulses": {
        "optimizer": "classp",
        "lr": 0.1,
        "lr_after": 1.0,
        "eps": 1.0,
        "threshold": 0.0,
        "accumulator": "pulses",
    },
}
# Not in the default set: SGD with a step large enough to clear a coarse device's dead zone.
EXTRA = {"sgd-1": {"optimizer": "sgd", "lr": 1.0}}
DEFAULT = list(OPTIMIZERS)
OPTIMIZERS.update(EXTRA)
DEVICE_ONLY = {"classp-pulses"}
BENCHMARKS = {
    "permuted": {"benchmark": "permuted"},
    "split-task": {"benchmark": "split", "scenario": "task"},
}
COLUMNS = (
    ("average_accuracy", "ACC", "{:.3f}"),
    ("forgetting", "F", "{:.3f}"),
    ("backward_transfer", "BWT", "{:+.3f}"),
    ("final_task_accuracy", "final task", "{:.3f}"),
    ("mean_diagonal", "mean R[j,j]", "{:.3f}"),
)


def run_one(bench: str, device: str, name: str, seed: int, args, tasks) -> dict:
    cfg = ContinualConfig(
        **BENCHMARKS[bench],
        **OPTIMIZERS[name],
        n_tasks=args.tasks,
        max_per_task=args.max_per_task,
        epochs_per_task=args.epochs,
        hidden=(args.hidden,),
        device=device,
        seed=seed,
    )
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = run_continual(cfg, tasks=tasks, progress=False)
    fin = res.final
    return {
        "benchmark": bench,
        "device": device,
        "optimizer": name,
        "seed": seed,
        **res.metrics,
        "accuracy_matrix": res.accuracy_matrix.tolist(),
        "memory_bytes": fin["memory_bytes"],
        "pulses": fin["total_pulses"] if device != "software" else None,
        "written_fraction": fin.get("written_fraction"),
        "suppressed": float(np.mean(res.history["suppressed"])),
        "warnings": sorted({str(w.message).split(":")[0] for w in caught}),
        "seconds": time.perf_counter() - t0,
        "config": cfg.to_dict(),
    }


def _ms(values, fmt):
    v = np.asarray(values, dtype=float)
    if len(v) == 1:
        return fmt.format(v[0])
    return f"{fmt.format(v.mean())} +- {v.std(ddof=1):.3f}"


def table(rows: list[dict], bench: str, device: str) -> str:
    sel = [r for r in rows if r["benchmark"] == bench and r["device"] == device]
    names = [n for n in OPTIMIZERS if any(r["optimizer"] == n for r in sel)]
    head = ["optimizer", *(c[1] for c in COLUMNS), "state (KiB)"]
    if device != "software":
        head += ["pulses", "written"]
    head += ["suppressed"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n in names:
        rs = [r for r in sel if r["optimizer"] == n]
        cells = [n, *(_ms([r[k] for r in rs], f) for k, _, f in COLUMNS)]
        cells.append(f"{rs[0]['memory_bytes'] / 1024:.0f}")
        if device != "software":
            cells.append(f"{np.mean([r['pulses'] for r in rs]):.3g}")
            cells.append(f"{np.mean([r['written_fraction'] for r in rs]):.2f}")
        cells.append(f"{np.mean([r['suppressed'] for r in rs]):.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--benchmarks", nargs="+", default=list(BENCHMARKS), choices=BENCHMARKS)
    ap.add_argument("--devices", nargs="+", default=["software", "ideal", "epiram"])
    ap.add_argument("--optimizers", nargs="+", default=DEFAULT, choices=OPTIMIZERS)
    ap.add_argument("--tasks", type=int, default=5)
    ap.add_argument("--max-per-task", type=int, default=None, help="training images per task")
    ap.add_argument("--epochs", type=int, default=2, help="epochs per task")
    ap.add_argument("--hidden", type=int, default=100)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--out", type=Path, default=Path("runs/continual_study"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    t_all = time.perf_counter()
    for bench in args.benchmarks:
        for seed in args.seeds:
            kw = BENCHMARKS[bench]
            tasks = make_tasks(
                kw["benchmark"],
                args.tasks,
                scenario=kw.get("scenario", "class"),
                seed=seed,
                max_per_task=args.max_per_task,
            )
            for device in args.devices:
                for name in args.optimizers:
                    if device == "software" and name in DEVICE_ONLY:
                        continue
                    r = run_one(bench, device, name, seed, args, tasks)
                    rows.append(r)
                    warn = f"  [{'; '.join(r['warnings'])}]" if r["warnings"] else ""
                    print(
                        f"{bench:10s} {device:8s} {name:13s} seed {seed}: ACC "
                        f"{r['average_accuracy']:.3f} F {r['forgetting']:.3f} final "
                        f"{r['final_task_accuracy']:.3f} ({r['seconds']:.1f} s){warn}",
                        flush=True,
                    )
    (args.out / "continual_study.json").write_text(json.dumps(rows, indent=1))
    parts = [
        f"seeds {args.seeds}, {args.tasks} tasks, {args.epochs} epochs per task, "
        f"max_per_task {args.max_per_task}, hidden {args.hidden}; "
        f"{time.perf_counter() - t_all:.0f} s in all"
    ]
    for bench in args.benchmarks:
        for device in args.devices:
            parts.append(f"### {bench}, {device}\n\n{table(rows, bench, device)}")
    report = "\n\n".join(parts) + "\n"
    (args.out / "continual_study.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
