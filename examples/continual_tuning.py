"""Every rule's learning rate tuned on the same grid, in software and on the coarse ``epiram``.

docs/CONTINUAL.md said CLASSP is "far more robust to a coarse pulse step" than the
gradient-proportional rules, comparing them at their software rates, at which Adam and AdaGrad
send no pulse on ``epiram`` (issue 17). Here SGD, Adam, AdaGrad and CLASSP (alpha in both phases)
each get the same grid of rates on each device; the rate is chosen by ACC on seed 0 and the chosen
rate is then run on seeds 0-2 (the table reports those three). ``--rules ewc-500 si`` adds EWC
(lambda 500) and SI (c 0.1), whose rate is that of their SGD step. Setting: permuted MNIST-5k,
3 tasks of 1,000 training images, 2 epochs per task, batch 16, MLP 784-100-10 (the gate setting
of tests/gates/test_gates_continual.py). Selection uses the test images (there is no validation
split); it favours every rule alike.

    python examples/continual_tuning.py --devices epiram     # about 150 s on 2 busy cores
    python examples/continual_tuning.py --devices software   # about 95 s
    python examples/continual_tuning.py --rules ewc-500 si   # EWC and SI, both devices
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from synapse_sim.studies.continual import ContinualConfig, run_continual

GRID = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
#: rule -> ContinualConfig fields other than the rate (EWC and SI: the rate is their SGD's)
RULES = {
    "sgd": {"optimizer": "sgd"},
    "adam": {"optimizer": "adam"},
    "adagrad": {"optimizer": "adagrad"},
    "classp": {"optimizer": "classp"},
    "ewc-500": {"optimizer": "ewc", "lam": 500.0},
    "si": {"optimizer": "si", "si_c": 0.1, "si_xi": 1e-3},
}
#: the rates docs/CONTINUAL.md used (the CLI defaults)
DEFAULT_RATE = {
    "sgd": 0.1,
    "adam": 1e-3,
    "adagrad": 0.01,
    "classp": 0.1,
    "ewc-500": 0.1,
    "si": 0.1,
}
SETTING = {
    "benchmark": "permuted",
    "n_tasks": 3,
    "max_per_task": 1000,
    "epochs_per_task": 2,
    "batch_size": 16,
}


def run(rule: str, lr: float, device: str, seed: int):
    """Metrics and pulses of one run."""
    cfg = ContinualConfig(**SETTING, **RULES[rule], lr=lr, device=device, seed=seed)
    r = run_continual(cfg, progress=False)
    m = r.metrics
    return {
        "acc": m["average_accuracy"],
        "f": m["forgetting"],
        "final": m["final_task_accuracy"],
        "pulses": r.final.get("total_pulses", 0),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--devices", nargs="+", default=["software", "epiram"])
    ap.add_argument("--rules", nargs="+", choices=list(RULES), default=list(RULES)[:4])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    best = {}
    for device in a.devices:
        print(f"\n### grid, {device}, seed {a.seeds[0]}: ACC (pulses)\n")
        print("| rule | " + " | ".join(f"{lr:g}" for lr in GRID) + " |")
        print("|---|" + "---|" * len(GRID))
        for rule in a.rules:
            res = {lr: run(rule, lr, device, a.seeds[0]) for lr in GRID}
            cells = [f"{r['acc']:.3f} ({r['pulses']:.2g})" for r in res.values()]
            print(f"| {rule} | " + " | ".join(cells) + " |", flush=True)
            lr_best = max(GRID, key=lambda lr, res=res: res[lr]["acc"])
            best[device, rule] = (lr_best, res[lr_best])
    print(f"\n### chosen rate (by ACC on seed {a.seeds[0]}), seeds {a.seeds}: mean +- std\n")
    print("| device | rule | rate | ACC | F | final task | pulses | ACC at the default rate |")
    print("|---|---|---|---|---|---|---|---|")
    for (device, rule), (lr, first) in best.items():
        rows = [first] + [run(rule, lr, device, s) for s in a.seeds[1:]]
        m = {k: np.array([r[k] for r in rows], dtype=float) for k in rows[0]}
        sd = {k: v.std(ddof=1) if len(v) > 1 else 0.0 for k, v in m.items()}
        dflt = np.mean([run(rule, DEFAULT_RATE[rule], device, s)["acc"] for s in a.seeds])
        print(
            f"| {device} | {rule} | {lr:g} | {m['acc'].mean():.3f} +- {sd['acc']:.3f} | "
            f"{m['f'].mean():.3f} +- {sd['f']:.3f} | {m['final'].mean():.3f} +- "
            f"{sd['final']:.3f} | {m['pulses'].mean():.3g} | {dflt:.3f} |",
            flush=True,
        )
    print(f"\n({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
