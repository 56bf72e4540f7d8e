"""The numbers of docs/INFERENCE.md: a trained MLP on PCM devices, accuracy over a year.

MNIST-5k in NeuroSim's input format (20x20, binarized), a sigmoid 400-100-10 MLP trained in
software with softmax cross-entropy (10 epochs, batch 16, lr 0.1, Glorot init), once plainly
and once with hardware-aware training (``weight_noise``). Each network is saved with its weights
(``results.h5``), then read back and programmed onto the gst_pcm preset (differential pairs)
with the ``pcm`` inference model (Joshi et al. 2020: G-dependent programming noise, per-device
drift exponents, 1/f read noise): test accuracy at 1 s, 1 h, 1 day, 30 days and 1 year over
``--instances`` device instances, as read and with global drift compensation. A last run uses
program-and-verify programming (the preset's own levels and cycle-to-cycle noise under the
same model). Usage:

python examples/inference_over_time.py --out runs/inference_example [--instances 10]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from synapse_sim.data.datasets import load_dataset
from synapse_sim.studies.infer import InferConfig, format_time, infer
from synapse_sim.studies.train import TrainConfig, train


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/inference_example"))
    ap.add_argument("--instances", type=int, default=10)
    ap.add_argument("--verify-instances", type=int, default=10)
    ap.add_argument("--weight-noise", type=float, default=0.2)
    ap.add_argument("--epochs", type=int, default=10)
    args = ap.parse_args(argv)
    data = load_dataset("mnist5k", seed=0, neurosim=True)
    rows = []
    for wn in (0.0, args.weight_noise):
        src = args.out / f"train_wn{wn:g}"
        cfg = TrainConfig(dataset="mnist5k", neurosim_input=True, hidden=(100,), loss="ce",
                          init="uniform", lr=(0.1,), batch_size=16, epochs=args.epochs,
                          weight_noise=wn)  # fmt: skip
        t = time.perf_counter()
        train(cfg, ["software"], data=data, out=src, save_weights=True, progress=False)
        print(f"trained (weight noise {wn:g}) in {time.perf_counter() - t:.1f} s")
        modes = [("ideal", args.instances)] + (
            [("verify", args.verify_instances)] if not wn else []
        )
        for program, n in modes:
            t = time.perf_counter()
            res = infer(
                InferConfig(source=str(src / "results.h5"), program=program, instances=n),
                data=data,
                out=args.out / f"infer_wn{wn:g}_{program}",
                progress=False,
            )
            print(f"infer {program} x {n} instances in {time.perf_counter() - t:.1f} s")
            for lab, s in res.summary().items():
                cells = [f"{m:.4f} +- {sd:.4f}" for m, sd in zip(s["mean"], s["std"], strict=True)]
                gdc = "yes" if lab.endswith("-gdc") else "no"
                rows.append((f"{wn:g}", program, gdc, n, f"{res.software_accuracy:.4f}", cells))
    head = ["weight noise", "programming", "drift comp.", "instances", "software"]
    head += [format_time(t) for t in InferConfig().times]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for wn, program, gdc, n, sw, cells in rows:
        lines.append(f"| {wn} | {program} | {gdc} | {n} | {sw} | " + " | ".join(cells) + " |")
    table = "\n".join(lines) + "\n"
    print(table)
    (args.out / "inference_table.md").write_text(table)


if __name__ == "__main__":
    main()
