"""Wall time of a 16-point device-variability sweep on 1 and 2 workers (local processes and a
Dask LocalCluster), and the speed-up of 2 workers over 1 (target: >= 1.7x on 2 cores).

Usage: python benchmarks/bench_sweep.py [--repeat 1] [--max-train 4000] [--json OUT]

The sweep: ``ag_a_si`` with the bidirectional rule, ``sigma_nl`` x ``c2c_sigma`` (4 x 4 points,
one device instance each, no software twin), a 400-64-10 network on MNIST-5k (NeuroSim input,
``--max-train`` images, 2 epochs). Every timing includes starting the workers (spawned processes
or the LocalCluster) and writing ``sweep.h5``; the in-process serial executor is timed as well.
All executors must produce the same results (checked).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synapse_sim.sweep import parse_spec, read_sweep, run_sweep, run_task  # noqa: E402


def make_spec(max_train: int):
    return parse_spec(
        {
            "sweep": {"name": "bench", "instances": 1, "software": False},
            "train": {
                "dataset": "mnist5k",
                "neurosim_input": True,
                "hidden": [64],
                "epochs": 2,
                "max_train": max_train,
            },
            "run": {"device": "ag_a_si", "rule": "bidirectional"},
            "axes": {
                "sigma_nl": {"start": 0.0, "stop": 1.5, "num": 4},
                "c2c_sigma": [0.0, 0.01, 0.02, 0.035],
            },
        }
    )


def _accuracies(path):
    res = read_sweep(path)
    return {k: r["metrics"]["test_accuracy"].tolist() for k, r in res["runs"].items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=1, help="runs of each setting (median)")
    ap.add_argument("--max-train", type=int, default=4000)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    spec = make_spec(args.max_train)
    assert spec.n_points == 16
    settings = [
        ("serial", "serial", 1),
        ("processes", "processes", 1),
        ("processes", "processes", 2),
        ("dask", "dask", 1),
        ("dask", "dask", 2),
    ]
    rows, ref = [], None
    with tempfile.TemporaryDirectory() as tmp:
        run_task(spec.tasks()[0])  # numba caches and the dataset of this process
        for name, executor, workers in settings:
            times = []
            for i in range(args.repeat):
                out = Path(tmp) / f"{name}-{workers}-{i}"
                t0 = time.perf_counter()
                run_sweep(spec, out, workers=workers, executor=executor, progress=False)
                times.append(time.perf_counter() - t0)
                acc = _accuracies(out / "sweep.h5")
                ref = acc if ref is None else ref
                assert acc == ref, f"{name} x{workers}: results differ from the serial run"
            rows.append({"executor": name, "workers": workers, "wall_s": statistics.median(times)})
    base = {r["executor"]: r["wall_s"] for r in rows if r["workers"] == 1}
    print(f"16-point sweep, {os.cpu_count()} cores, max_train={args.max_train}")
    for r in rows:
        r["speedup_vs_1_worker"] = base[r["executor"]] / r["wall_s"]
        r["speedup_vs_serial"] = base["serial"] / r["wall_s"]
        print(
            f"{r['executor']:10s} workers={r['workers']}  {r['wall_s']:7.2f} s   "
            f"x{r['speedup_vs_1_worker']:4.2f} vs 1 worker   "
            f"x{r['speedup_vs_serial']:4.2f} vs serial"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    main()
