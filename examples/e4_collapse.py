"""Why unidirectional `neurosim_compat` collapses on pcmo and hzo_fefet at 1 M presentations.

E4 at NeuroSim's scale (docs/REPRODUCTION.md) has the unidirectional rule on pcmo freeze (seed
1: 55% from block 19 on, seed 0: 10%) and on hzo_fefet decline to chance (seed 2: 64% -> 10%
over 125 blocks). This script reruns those runs (NeuroSim's 400-100-10 network, MNIST-5k,
batch 1, ``draws:Bx8000``, the seed as in ``examples/neurosim_e4.py``) and changes one thing,
the rounding of requested changes to pulse counts: ``nearest`` (the rule's default: a dead
zone of half a step, ``theta = 0.5``) against ``stochastic`` (a request of ``r`` steps gets
``floor(r)`` pulses plus one with probability ``frac(r)``: no dead zone).

For each run it prints the test accuracy and the device pulses per block, and from the final
weights (read back) the state of the output layer on the 1,000 test images: the pre-activation
``z2 = (W2 h) / 2`` (compat's half-sum read, without the ADC's rounding; ``h`` the 1-bit hidden
activation ``sigmoid(W1 x / 2) >= 0.5``), the sigmoid's slope ``out (1 - out)``, and the largest
request of the output layer per image, ``lr2 * |out - t| * out (1 - out)`` (``h`` is 0 or 1),
in units of the output array's nominal step: below 0.5 the dead zone drops it.

Usage::

    python examples/e4_collapse.py --out runs/e4_collapse
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from synapse_sim.data.datasets import load_dataset
from synapse_sim.studies.train import RunSpec, TrainConfig, train

#: (preset, seed, blocks of 8,000 draws): the collapses of the 1 M E4 table.
CASES = (("pcmo", 1, 22), ("hzo_fefet", 2, 125))
ROUNDINGS = ("nearest", "stochastic")
LR = (0.4, 0.2)


def output_state(W1, W2, data, lr2: float, step: float) -> dict:
    """The output layer's pre-activation, slope and largest request (in steps) on the test set."""
    x = data.x_test
    h = (1.0 / (1.0 + np.exp(-0.5 * (x @ W1.T))) >= 0.5).astype(float)
    z2 = 0.5 * (h @ W2.T)
    out = 1.0 / (1.0 + np.exp(-z2))
    t = np.eye(W2.shape[0])[data.y_test]
    slope = out * (1.0 - out)
    req = lr2 * np.abs(out - t) * slope  # per output unit; times h in {0, 1}
    return {
        "z2_median": float(np.median(z2)),
        "z2_p99": float(np.percentile(z2, 99)),
        "slope_median": float(np.median(slope)),
        "largest_request_steps_median": float(np.median(req.max(axis=1)) / step),
        "accuracy_read_back": float((out.argmax(axis=1) == data.y_test).mean()),
    }


def run(preset: str, seed: int, blocks: int, rounding: str) -> dict:
    cfg = TrainConfig(
        dataset="mnist5k", neurosim_input=True, hidden=(100,), lr=LR, batch_size=1,
        init="neurosim", seed=seed, schedule=f"draws:{blocks}x8000", neurosim_compat=True,
    )  # fmt: skip
    spec = RunSpec(device=preset, rule="unidirectional", rule_options={"rounding": rounding})
    t0 = time.time()
    res = train(cfg, [spec], progress=False)
    label = [k for k in res.history if k != "software"][-1]
    h = res.history[label]
    W1, W2 = (np.asarray(w) for w in res.weights[label])
    data = load_dataset("mnist5k", seed=seed, neurosim=True)
    # the output array's nominal step of a unidirectional request, in weight units
    step = float(res.arrays[label][1].nominal_step("unidirectional", "both")[0])
    return {
        "preset": preset,
        "seed": seed,
        "rounding": rounding,
        "test_accuracy": [float(a) for a in h["test_accuracy"]],
        "pulses": [float(p) for p in h["pulses"]],
        "seconds": time.time() - t0,
        **output_state(W1, W2, data, LR[1], step),
    }


def table(rows: list[dict]) -> str:
    head = (
        "| preset | seed | rounding | acc. first 3 / last 3 blocks | pulses per block, first / "
        "last | z2 median (p99) | out (1-out) median | largest output request (steps) |"
    )
    lines = [head, "|---|---:|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        a, p = np.asarray(r["test_accuracy"]) * 100, np.asarray(r["pulses"])
        lines.append(
            f"| {r['preset']} | {r['seed']} | {r['rounding']} | {a[:3].mean():.1f} / "
            f"{a[-3:].mean():.1f} | {p[0]:.3g} / {p[-1]:.3g} | {r['z2_median']:+.1f} "
            f"({r['z2_p99']:+.1f}) | {r['slope_median']:.4f} | "
            f"{r['largest_request_steps_median']:.3f} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for preset, seed, blocks in CASES:
        for rounding in ROUNDINGS:
            r = run(preset, seed, blocks, rounding)
            rows.append(r)
            print(f"{preset} seed {seed} {rounding}: {100 * r['test_accuracy'][-1]:.1f}% "
                  f"({r['seconds']:.0f} s)", flush=True)  # fmt: skip
    (args.out / "e4_collapse.json").write_text(json.dumps(rows, indent=1))
    text = table(rows)
    (args.out / "e4_collapse.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
