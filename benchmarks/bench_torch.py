"""Epoch time of the torch bridge: the small CNN in software vs converted, and the bridge's
overhead over the numpy trainer for the same MLP, in one run.

Usage: python benchmarks/bench_torch.py [--epochs 3] [--dataset mnist5k] [--json OUT]

1. CNN (conv 1->8 3x3, pool, conv 8->16 3x3, pool, linear -> 10) on the dataset, batch 32,
   lr 0.1: software (``torch.optim.SGD``), converted on ``ideal`` and on ``epiram``
   (bidirectional, reference mapping, stochastic rounding), via :func:`synapse_sim.compare`.
2. The 784-256-128-10 relu MLP of ``benchmarks/bench_train.py`` (MNIST-5k, batch 10, lr 0.01,
   cross-entropy) on ``epiram`` with the bidirectional rule, through the torch bridge
   (:func:`synapse_sim.compare`, lr 0.1 on the batch-mean loss) and through the numpy trainer
   (:func:`synapse_sim.train`, lr 0.01 on the batch sum: the same requested steps); the
   software twins of both are timed too (initial weights differ: torch's vs Glorot).

Each configuration trains ``--epochs`` epochs; the first (JIT compilation, caches) is dropped
and the median of the others is reported. torch and BLAS run one thread (as in the trainers).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synapse_sim.data.datasets import load_dataset  # noqa: E402
from synapse_sim.studies.compare import compare  # noqa: E402
from synapse_sim.studies.train import RunSpec, TrainConfig, train  # noqa: E402


def _median(h):
    t = h["epoch_time"]
    return statistics.median(t[1:] if len(t) > 1 else t)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--dataset", default="mnist5k")
    ap.add_argument("--device", default="epiram", help="nonlinear preset (default epiram)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    import torch

    rows = []
    print(f"python {platform.python_version()}, torch {torch.__version__}, {args.dataset}")

    cnn = compare(
        "cnn",
        args.dataset,
        devices=["ideal", args.device],
        rules=["bidirectional"],
        epochs=args.epochs,
        batch_size=32,
        lr=0.1,
        seed=0,
        rule_options={"rounding": "stochastic"},
        progress=False,
    )
    soft = _median(cnn.history["software"])
    for label, h in cnn.history.items():
        t = _median(h)
        rows.append(
            {
                "bench": "cnn",
                "label": label,
                "epoch_s": t,
                "ratio_to_software": t / soft,
                "final_test_accuracy": h["test_accuracy"][-1],
            }
        )

    cfg = TrainConfig(
        dataset="mnist5k",
        hidden=(256, 128),
        activation="relu",
        loss="ce",
        init="uniform",
        batch_size=10,
        epochs=args.epochs,
        lr=(0.01,),
        seed=0,
    )
    data = load_dataset("mnist5k", seed=0)
    numpy_res = train(
        cfg,
        [RunSpec(device="software"), RunSpec(device=args.device, rule="bidirectional")],
        data=data,
        progress=False,
    )
    bridge = compare(
        "mlp",
        "mnist5k",
        devices=[args.device],
        rules=["bidirectional"],
        epochs=args.epochs,
        batch_size=10,
        lr=0.01 * 10,  # mean-reduced loss: the same step as the trainer's summed delta
        seed=0,
        progress=False,
    )
    for kind, res in (("mlp-numpy", numpy_res), ("mlp-torch-bridge", bridge)):
        for label, h in res.history.items():
            rows.append(
                {
                    "bench": kind,
                    "label": label,
                    "epoch_s": _median(h),
                    "final_test_accuracy": h["test_accuracy"][-1],
                }
            )
    dev_label = f"{args.device}-bidirectional"
    by = {(r["bench"], r["label"]): r for r in rows}
    for lab in ("software", dev_label):
        b, n = by[("mlp-torch-bridge", lab)], by[("mlp-numpy", lab)]
        b["ratio_to_numpy_trainer"] = b["epoch_s"] / n["epoch_s"]
    for r in rows:
        extra = ""
        if "ratio_to_software" in r:
            extra = f"x{r['ratio_to_software']:5.2f} vs software"
        if "ratio_to_numpy_trainer" in r:
            extra = f"x{r['ratio_to_numpy_trainer']:5.2f} vs numpy trainer"
        print(
            f"{r['bench']:17s} {r['label']:24s} {r['epoch_s']:7.3f} s/epoch  {extra:26s} "
            f"test acc {r['final_test_accuracy']:.3f}"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    main()
