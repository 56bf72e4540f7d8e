"""Inference over time on devices: the whole accuracy curve of a 784-256-128-10 MLP on MNIST-5k.

Usage: python benchmarks/bench_infer.py [--instances 10] [--repeats 3] [--quick] [--json OUT]

The network (784-256-128-10, relu, softmax cross-entropy, no biases) is trained once in software
(3 epochs, not timed). Timed, median over ``--repeats`` after one warm-up call:

- ``curve-ideal``: :func:`synapse_sim.studies.infer.infer` with the default 5 times (1 s ... 1 y)
  x ``--instances`` device instances, gst_pcm preset, ideal programming, the ``pcm`` inference
  model (Joshi et al. 2020), with and without global drift compensation (2 accuracies per
  point), 1,000 test images; per evaluation point = total / (times x instances);
- ``curve-verify``: the same with program-and-verify programming (2 instances, 1 repeat);
- ``torch-float``: the plain torch float forward of the same network on the same test images,
  repeated once per evaluation point of ``curve-ideal`` (the baseline of the same work without
  devices).

Results go to ``--json`` (default benchmarks/bench_infer.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._timing import median_times  # noqa: E402
from synapse_sim.data.datasets import load_dataset  # noqa: E402
from synapse_sim.studies.infer import DEFAULT_TIMES, InferConfig, Network, infer  # noqa: E402
from synapse_sim.studies.train import TrainConfig, train  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="2 instances, 1 repeat, 1 epoch")
    ap.add_argument("--json", type=Path, default=Path(__file__).with_name("bench_infer.json"))
    args = ap.parse_args(argv)
    n_inst, repeats, epochs = (2, 1, 1) if args.quick else (args.instances, args.repeats, 3)
    data = load_dataset("mnist5k", seed=0)
    t = time.perf_counter()
    cfg = TrainConfig(dataset="mnist5k", hidden=(256, 128), activation="relu", loss="ce",
                      init="uniform", lr=(0.01,), batch_size=32, epochs=epochs)  # fmt: skip
    r = train(cfg, ["software"], data=data, progress=False)
    train_s = time.perf_counter() - t
    net = Network(r.weights["software"], None, ("relu", "relu"))
    n_pts = len(DEFAULT_TIMES) * n_inst
    rows = []
    out = {}

    def curve(program, n):
        def fn():
            out[program] = infer(
                InferConfig(instances=n, program=program), network=net, data=data, progress=False
            )

        return fn

    wall, cpu = median_times(curve("ideal", n_inst), repeats)
    rows.append(("curve-ideal", n_pts, wall, cpu))
    n_v = 2
    wall_v, cpu_v = median_times(curve("verify", n_v), 1)
    rows.append(("curve-verify", len(DEFAULT_TIMES) * n_v, wall_v, cpu_v))
    import torch

    model = torch.nn.Sequential(
        torch.nn.Linear(784, 256, bias=False), torch.nn.ReLU(),
        torch.nn.Linear(256, 128, bias=False), torch.nn.ReLU(),
        torch.nn.Linear(128, 10, bias=False),
    ).double()  # fmt: skip
    with torch.no_grad():
        for m, W in zip([model[0], model[2], model[4]], net.weights, strict=True):
            m.weight.copy_(torch.from_numpy(W))
    xt = torch.from_numpy(data.x_test)

    def torch_fn():
        with torch.no_grad():
            for _ in range(n_pts):
                model(xt).argmax(1)

    wall_t, cpu_t = median_times(torch_fn, repeats)
    rows.append(("torch-float", n_pts, wall_t, cpu_t))
    acc = {k: v.accuracy[next(iter(v.accuracy))].mean(axis=0).tolist() for k, v in out.items()}
    report = {
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "train_seconds": train_s,
        "software_accuracy": out["ideal"].software_accuracy,
        "mean_accuracy_per_time": acc,
        "times_s": list(DEFAULT_TIMES),
        "rows": [
            {"case": c, "points": p, "wall_s": w, "cpu_s": u, "wall_per_point_s": w / p}
            for c, p, w, u in rows
        ],
        "ratio_curve_ideal_over_torch": wall / wall_t,
    }
    print(f"{'case':14s} {'points':>6s} {'wall s':>8s} {'cpu s':>8s} {'s/point':>8s}")
    for c, p, w, u in rows:
        print(f"{c:14s} {p:6d} {w:8.3f} {u:8.3f} {w / p:8.4f}")
    print(f"software accuracy {out['ideal'].software_accuracy:.4f}; curve (ideal): {acc['ideal']}")
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
