"""synapse_sim beside IBM aihwkit on aihwkit's own work, in one run (issue 15).

Usage: python benchmarks/bench_aihwkit.py --aihwkit-python PY [--only dense|mlp]
[--rounds 3] [--sizes 512 1024] [--repeats 5] [--epochs 2] [--json OUT]

``PY`` is a Python interpreter that imports ``aihwkit`` (it needs only numpy, torch and aihwkit;
BENCHMARKS.md says how aihwkit 1.2.0 was built here); this script and synapse_sim's side run
in the interpreter that starts it. Every measurement runs in a fresh child process
(``benchmarks/_peer_child.py``), the two sides alternated round by round (aihwkit first in
even rounds, synapse_sim first in odd ones), so a change of the machine's speed hits both.
Each side runs with its own default thread settings.

1. ``dense``: aihwkit's tile benchmark, exactly: ``AnalogTile(n, n,
   SingleRPUConfig(device=ConstantStepDevice()))`` (and ``SoftBoundsDevice()``) with
   ``update_bl_management = False``, ``update_management = False``, ``desired_bl = 31``,
   ``set_learning_rate(0.01)``, weights U[-0.1, 0.1], ``tile.update(x, d)`` with x, d of shape
   (100, n) U[-1, 1]; against ``DeviceArray((n, n), devices.get(preset), mapping=...)
   .pulse_update(x, d, 0.01, bl=31, bl_management=False, update_management=False)`` on the same
   numbers, for one device per weight (``mapping="reference"``: aihwkit's layout, the same
   device work) and our default differential pair (two devices written per weight; no aihwkit
   counterpart). Also BL 1 at the same pulse probabilities (lr scaled by 1/31). Reported: ns per
   sample x weight (median of ``--repeats`` calls after a warm-up; wall, and process CPU time
   of all threads) and aihwkit's time over ours.
2. ``mlp``: the 784-256-128-10 relu MLP on MNIST-5k (4,000 training images, batch 10, lr 0.05,
   cross-entropy, torch seed 0): torch software (``torch.optim.SGD``) and, in aihwkit's process,
   ``convert_to_analog(model, SingleRPUConfig(device=ConstantStepDevice()))`` trained by
   ``AnalogSGD`` (aihwkit's defaults otherwise), in ours ``convert(model,
   device="constant_step", rule="stochastic")`` trained by ``DeviceSGD(rule="stochastic")``.
   ``--epochs`` epochs each after one warm-up epoch; median seconds per epoch, the ratio to the
   software epoch timed in the same process, and the test accuracy after training (the two
   simulators' devices and read paths differ: aihwkit's default forward has its I/O noise and
   converters, ours reads the conductances exactly, so the accuracies are not a like-for-like
   comparison).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CHILD = Path(__file__).resolve().parent / "_peer_child.py"
SIDES = ("aihwkit", "synapse_sim")
#: Presets with an aihwkit counterpart (ConstantStepDevice, SoftBoundsDevice).
PRESETS = ("constant_step", "soft_bounds")


def _run(py, side, task, tmp):
    path = Path(tmp) / f"task_{side}.json"
    path.write_text(json.dumps(task))
    res = subprocess.run([py, str(CHILD), side, str(path)], capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"{side} child failed (exit {res.returncode}):\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def _check_aihwkit(py):
    res = subprocess.run(
        [py, "-c", "import aihwkit, torch; print(aihwkit.__version__, torch.__version__)"],
        capture_output=True, text=True,
    )  # fmt: skip
    if res.returncode != 0:
        raise SystemExit(
            f"--aihwkit-python {py!r} cannot import aihwkit and torch:\n{res.stderr[-1500:]}\n"
            "Build aihwkit as BENCHMARKS.md's section on this script says."
        )
    return res.stdout.split()


def _mnist(tmp):
    sys.path.insert(0, str(ROOT))
    from synapse_sim.data.datasets import load_dataset

    data = load_dataset("mnist5k", seed=0)
    path = Path(tmp) / "mnist5k.npz"
    f32, i64 = np.float32, np.int64
    np.savez(path, x_train=data.x_train.astype(f32), y_train=data.y_train.astype(i64),
             x_test=data.x_test.astype(f32), y_test=data.y_test.astype(i64))  # fmt: skip
    return str(path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--aihwkit-python", required=True, help="an interpreter that has aihwkit")
    ap.add_argument("--only", choices=("dense", "mlp"), default=None)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    ap.add_argument("--presets", nargs="+", default=["constant_step", "soft_bounds"])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--torch-threads", type=int, default=0, help="mlp: torch threads (0: default)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    for name in ("rounds", "repeats", "epochs"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    if args.torch_threads < 0:
        ap.error(f"--torch-threads must be >= 0, got {args.torch_threads}")
    if min(args.sizes) < 1:
        ap.error(f"--sizes must be at least 1, got {args.sizes}")
    bad = sorted(set(args.presets) - set(PRESETS))
    if bad:
        ap.error(f"--presets must be among {PRESETS} (aihwkit's counterparts), got {bad}")
    versions = _check_aihwkit(args.aihwkit_python)
    print(f"aihwkit {versions[0]} (torch {versions[1]}, {args.aihwkit_python}); synapse_sim from "
          f"{ROOT} (python {sys.version.split()[0]})")  # fmt: skip
    py = {"aihwkit": args.aihwkit_python, "synapse_sim": sys.executable}
    out = {"aihwkit": versions[0], "dense": [], "mlp": []}
    with tempfile.TemporaryDirectory() as tmp:
        tasks = []
        if args.only in (None, "dense"):
            tasks.append({"task": "dense", "sizes": args.sizes, "presets": args.presets,
                          "mappings": ["reference", "differential"], "bls": [31, 1],
                          "lr": 0.01, "batch": 100, "repeats": args.repeats})  # fmt: skip
        if args.only in (None, "mlp"):
            tasks.append({"task": "mlp", "data": _mnist(tmp), "batch": 10, "lr": 0.05,
                          "epochs": args.epochs, "torch_threads": args.torch_threads})  # fmt: skip
        for task in tasks:
            for r in range(args.rounds):
                order = SIDES if r % 2 == 0 else SIDES[::-1]
                res = {side: _run(py[side], side, task, tmp) for side in order}
                out[task["task"]].append(res)
                print(f"# {task['task']} round {r + 1}/{args.rounds} done", flush=True)
    _report(out)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


def _report(out):
    if out["dense"]:
        print("\n## dense tile update: ns per sample x weight (median over rounds of the "
              "medians of the calls), aihwkit's time / ours")  # fmt: skip
        print(
            f"{'size':>5} {'preset':<14} {'mapping':<13} {'BL':>3} {'aihwkit wall':>12} "
            f"{'ours wall':>10} {'aihwkit CPU':>11} {'ours CPU':>9} {'ratio (rounds)':>22}"
        )

        def key_of(r):
            return r["size"], r["preset"], r["mapping"], r["bl"]

        def find(rows, key):
            return next((r for r in rows if key_of(r) == key), None)

        for key in [key_of(r) for r in out["dense"][0]["synapse_sim"]]:
            ours = [find(rnd["synapse_sim"], key) for rnd in out["dense"]]
            peer = [find(rnd["aihwkit"], (*key[:2], "reference", key[3])) for rnd in out["dense"]]
            ow = statistics.median(o["wall_ns"] for o in ours)
            oc = statistics.median(o["cpu_ns"] for o in ours)
            if all(p is not None for p in peer):
                pw = statistics.median(p["wall_ns"] for p in peer)
                pc = statistics.median(p["cpu_ns"] for p in peer)
                rat = [p["wall_ns"] / o["wall_ns"] for p, o in zip(peer, ours, strict=True)]
                tag = "" if key[2] == "reference" else " (aihwkit 1 device)"
                ratio = f"{statistics.median(rat):.2f} ({min(rat):.2f}-{max(rat):.2f}){tag}"
                print(f"{key[0]:>5} {key[1]:<14} {key[2]:<13} {key[3]:>3} {pw:>12.2f} {ow:>10.2f} "
                      f"{pc:>11.2f} {oc:>9.2f} {ratio:>22}")  # fmt: skip
    if out["mlp"]:
        print("\n## MNIST-5k MLP, batch 10: s per epoch (median over rounds)")
        for side in SIDES:
            rs = [rnd[side] for rnd in out["mlp"]]
            sw = statistics.median(r["software_s"] for r in rs)
            dv = statistics.median(r["device_s"] for r in rs)
            rat = [r["device_s"] / r["software_s"] for r in rs]
            acc = statistics.median(r["device_test_acc"] for r in rs)
            print(
                f"{side:<12} torch threads {rs[0]['torch_threads']}: software {sw:.3f} s, "
                f"device {dv:.3f} s ({statistics.median(rat):.2f}x its software epoch; rounds "
                f"{min(rat):.2f}-{max(rat):.2f}), device test accuracy {acc:.3f}"
            )
        rat = [rnd["aihwkit"]["device_s"] / rnd["synapse_sim"]["device_s"] for rnd in out["mlp"]]
        print(
            f"aihwkit's device epoch / ours: {statistics.median(rat):.2f} (rounds "
            f"{min(rat):.2f}-{max(rat):.2f})"
        )


if __name__ == "__main__":
    main()
