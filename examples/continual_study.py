"""Continual-learning study: CLASSP against SGD, Adam, AdaGrad, EWC and SI (docs/CONTINUAL.md).

A small driver over :func:`synapse_sim.studies.continual.run_continual`: permuted MNIST-5k, split
MNIST-5k (task-incremental) and digits -> MNIST-5k at 8 x 8 (domain shift), in software and on
device presets, several seeds; prints markdown tables (mean +- std over seeds) and writes every
run (accuracy matrix included) as JSON. Usage (the numbers of docs/CONTINUAL.md, about 5-6
minutes on 2 cores):

    python examples/continual_study.py --out runs/continual_study

Smaller: ``--seeds 0 --max-per-task 1000``; one benchmark: ``--benchmarks permuted``; SGD with
lr 1 (not in the default set): ``--optimizers sgd-1``. ``--gate93`` instead runs the split-digits
setting of ``specs/classp.md`` 9.3 (pulsed float weights, dw_nom 0.005) for its rules and
variants over ``--seeds`` (the 9.3 table of docs/CONTINUAL.md; seconds).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

from synapse_sim.studies.continual import ContinualConfig, run_continual, split_digits_config

# name -> ContinualConfig fields. Learning rates: the CLI defaults (SGD / EWC / CLASSP 0.1,
# Adam 1e-3, AdaGrad 0.01); CLASSP as in specs/classp.md 9.4 (alpha 0.1 in both phases, task 1
# unscaled, p 1, eps 1e-5, theta 1e-5).
OPTIMIZERS = {
    "sgd": {"optimizer": "sgd", "lr": 0.1},
    "adam": {"optimizer": "adam", "lr": 1e-3},
    "adagrad": {"optimizer": "adagrad", "lr": 0.01},
    "ewc-5000": {"optimizer": "ewc", "lr": 0.1, "lam": 5000.0},
    "ewc-500": {"optimizer": "ewc", "lr": 0.1, "lam": 500.0},
    "si": {"optimizer": "si", "lr": 0.1, "si_c": 0.1, "si_xi": 1e-3},
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
EXTRA = {
    "sgd-1": {"optimizer": "sgd", "lr": 1.0},
    # the reference code's vision setting: alpha 0.2, theta 0 (task 1 unscaled, then scaled)
    "classp-ref": {"optimizer": "classp", "lr": 0.2, "threshold": 0.0},
}
DEFAULT = list(OPTIMIZERS)
OPTIMIZERS.update(EXTRA)
DEVICE_ONLY = {"classp-pulses"}
BENCHMARKS = {
    "permuted": {"benchmark": "permuted"},
    "split-task": {"benchmark": "split", "scenario": "task"},
    "domain-shift": {"benchmark": "domain-shift"},
}
MAX_TASKS = {"domain-shift": 2}
# On user data (not in the default set): one task per dataset of --task-data, e.g.
# --benchmarks pair --task-data mnist5k idx:FASHION_DIR --epochs-first-task 4 --epochs 1
PAIR = {"pair": {"benchmark": "pair"}}

# Rules of the specs/classp.md 9.3 table
# (split digits: synapse_sim.studies.continual.split_digits_config).
GATE93_RULES = {
    "SGD lr 0.1": {"optimizer": "sgd", "lr": 0.1},
    "CLASSP 0.1 -> 0.03": {"optimizer": "classp", "lr": 0.1, "lr_after": 0.03},
    "CLASSP 0.1 -> 0.1": {"optimizer": "classp", "lr": 0.1},
    "CLASSP pulses, eps 1, 0.1 -> 0.3, theta 0": {
        "optimizer": "classp",
        "lr": 0.1,
        "lr_after": 0.3,
        "eps": 1.0,
        "threshold": 0.0,
        "accumulator": "pulses",
    },
    "SGD 0.1 -> 0.02": {"optimizer": "sgd", "lr": 0.1, "lr_after": 0.02},
    "SGD 0.1 -> 0.015": {"optimizer": "sgd", "lr": 0.1, "lr_after": 0.015},
    "EWC (SGD 0.1), lambda 5000": {"optimizer": "ewc", "lr": 0.1, "lam": 5000.0},
    "SI (SGD 0.1), c 0.1": {"optimizer": "si", "lr": 0.1, "si_c": 0.1},
    "SI (SGD 0.1), c 1": {"optimizer": "si", "lr": 0.1, "si_c": 1.0},
}
COLUMNS = (
    ("average_accuracy", "ACC", "{:.3f}"),
    ("forgetting", "F", "{:.3f}"),
    ("backward_transfer", "BWT", "{:+.3f}"),
    ("final_task_accuracy", "final task", "{:.3f}"),
    ("mean_diagonal", "mean R[j,j]", "{:.3f}"),
)


def bench_kw(bench: str, args) -> dict:
    """ContinualConfig fields of a benchmark (tasks, data, epochs, batch)."""
    kw = dict({**BENCHMARKS, **PAIR}[bench])
    if bench == "pair":
        kw["task_data"] = tuple(args.task_data)
        kw["n_tasks"] = len(args.task_data)
    else:
        kw["n_tasks"] = min(args.tasks, MAX_TASKS.get(bench, args.tasks))
    kw.update(
        max_per_task=args.max_per_task,
        epochs_per_task=args.epochs,
        epochs_first_task=args.epochs_first_task,
        batch_size=args.batch_size,
        hidden=(args.hidden,),
    )
    return kw


def run_one(bench: str, device: str, name: str, seed: int, args, tasks) -> dict:
    cfg = ContinualConfig(**bench_kw(bench, args), **OPTIMIZERS[name], device=device, seed=seed)
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


def gate93(args) -> None:
    """The 9.3 table: mean +- std over the seeds for every rule of GATE93_RULES."""
    rows = []
    lines = [
        "| rule | ACC | F | final task | pulses |",
        "|---|---|---|---|---|",
    ]
    for name, kw in GATE93_RULES.items():
        res = []
        for seed in args.seeds:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = run_continual(split_digits_config(**kw, seed=seed), progress=False)
            res.append(r)
            rows.append(
                {
                    "rule": name,
                    "seed": seed,
                    **r.metrics,
                    "accuracy_matrix": r.accuracy_matrix.tolist(),
                    "pulses": r.final["total_pulses"],
                }
            )
        cells = [
            _ms([r.metrics["average_accuracy"] for r in res], "{:.3f}"),
            _ms([r.metrics["forgetting"] for r in res], "{:.3f}"),
            _ms([r.metrics["final_task_accuracy"] for r in res], "{:.3f}"),
            f"{np.mean([r.final['total_pulses'] for r in res]):.3g}",
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    (args.out / "gate93.json").write_text(json.dumps(rows, indent=1))
    report = f"seeds {args.seeds}\n\n" + "\n".join(lines) + "\n"
    (args.out / "gate93.md").write_text(report)
    print(report)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--benchmarks", nargs="+", default=list(BENCHMARKS), choices=[*BENCHMARKS, *PAIR]
    )
    ap.add_argument("--task-data", nargs="+", default=[], help="pair: one dataset per task")
    ap.add_argument("--devices", nargs="+", default=["software", "ideal", "epiram"])
    ap.add_argument("--optimizers", nargs="+", default=DEFAULT, choices=OPTIMIZERS)
    ap.add_argument("--tasks", type=int, default=5)
    ap.add_argument("--max-per-task", type=int, default=None, help="training images per task")
    ap.add_argument("--epochs", type=int, default=2, help="epochs per task")
    ap.add_argument("--epochs-first-task", type=int, default=None, help="epochs of task 1")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--hidden", type=int, default=100)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--out", type=Path, default=Path("runs/continual_study"))
    ap.add_argument("--gate93", action="store_true", help="run the 9.3 split-digits table only")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.gate93:
        gate93(args)
        return
    rows = []
    t_all = time.perf_counter()
    for bench in args.benchmarks:
        for seed in args.seeds:
            tasks = ContinualConfig(**bench_kw(bench, args), seed=seed).load_tasks()
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
        f"seeds {args.seeds}, {args.tasks} tasks (domain shift 2, pair one per --task-data), "
        f"{args.epochs} epochs per task (first task {args.epochs_first_task or args.epochs}), "
        f"batch {args.batch_size}, "
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
