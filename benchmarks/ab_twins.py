"""Epochs with the measured choice of serial or parallel twin (``devices/kernels/twins.py``)
against the fixed size thresholds alone (the choice switched off), alternated in one process.

Usage: python benchmarks/ab_twins.py [--source trainer|bridge] [--rule R ...] [--rounds 3]
[--epochs 3] [--busy] [--json OUT]

``--source trainer``: the numpy trainer's 784-256-128-10 relu MLP on MNIST-5k at batch 10 and
lr 0.01 (``bench_train.py``'s set-up) on ``constant_step``, one training per rule and mode,
median of epochs 2.. each; the modes alternate in order round by round. Also reported: the
wall time per epoch inside the pulse-train update and pulse-request host functions
(``numba_cpu.pulse_update`` / ``pulse_request``), and the software epoch of the same round.

``--source bridge``: ``bench_torch.py``'s converted MLP (``convert(..., rule="stochastic")`` on
``constant_step`` + ``DeviceSGD``, lr 0.05, torch at one thread), one model trained on, whole
epochs alternated between the modes, with a software epoch each round.

``--busy``: a spinning child process holds one core throughout (a shared machine). The
choice's estimates per call site are printed at the end (us per call, serial / parallel).
Results are bit for bit the same in both modes; this measures time only.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RULES = ("stochastic", "unidirectional", "bidirectional")


def _spin():  # pragma: no cover - child process
    while True:
        pass


class _Modes:
    """Switch the measured choice on ("choice") or off ("fixed": thresholds as before)."""

    def __init__(self):
        from devices.kernels import numba_cpu

        self.nc = numba_cpu
        self.on = (numba_cpu._ADAPT_MIN_UPDATE, numba_cpu._ADAPT_MIN)
        self.kernel_s = 0.0
        self.last_sites = None
        for name in ("pulse_update", "pulse_request"):
            setattr(numba_cpu, name, self._timed(getattr(numba_cpu, name)))

    def _timed(self, fn):
        def call(*a, **kw):
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                self.kernel_s += time.perf_counter() - t

        return call

    def set(self, mode: str) -> None:
        off = (1 << 62, 1 << 62)
        self.nc._ADAPT_MIN_UPDATE, self.nc._ADAPT_MIN = self.on if mode == "choice" else off

    def sites(self) -> list[dict]:
        return [
            {
                "site": list(map(str, k)),
                "calls_serial_parallel": list(c.calls),
                "us_serial_parallel": [None if e is None else 1e6 * e for e in c.est],
                "in_use": "parallel" if c.cur else "serial",
                "tries": c.probes,
            }
            for k, c in self.nc._SITES.items()
        ]


def _order(r):
    return ("choice", "fixed") if r % 2 == 0 else ("fixed", "choice")


def _trainer(args, modes) -> list[dict]:
    from synapse_sim.data.datasets import load_dataset
    from synapse_sim.studies.train import RunSpec, TrainConfig, train

    cfg = TrainConfig(dataset="mnist5k", hidden=(256, 128), activation="relu", loss="ce",
                      init="uniform", batch_size=10, epochs=args.epochs, lr=(0.01,),
                      seed=0)  # fmt: skip
    data = load_dataset("mnist5k", seed=0)
    rows = []
    for r in range(args.rounds):
        for rule in ("software", *args.rule):
            for mode in _order(r) if rule != "software" else ("-",):
                if mode != "-":
                    modes.set(mode)
                modes.nc._SITES.clear()
                spec = RunSpec(device="software" if rule == "software" else "constant_step",
                               rule=None if rule == "software" else rule)  # fmt: skip
                modes.kernel_s = 0.0
                (h,) = train(cfg, [spec], data=data, progress=False).history.values()
                ep = statistics.median(h["epoch_time"][1:])
                if mode == "choice":  # the sites of the newest training with the choice
                    modes.last_sites = modes.sites()
                rows.append({"round": r, "rule": rule, "mode": mode, "epoch_s": ep,
                             "kernel_s_per_epoch": modes.kernel_s / args.epochs})  # fmt: skip
                k = modes.kernel_s / args.epochs
                print(f"round {r} {rule:15s} {mode:6s} epoch {ep:.3f} s, in the kernels' host "
                      f"functions {k:.3f} s/epoch", flush=True)  # fmt: skip
    return rows


def _bridge(args, modes) -> list[dict]:
    import torch
    import torch.nn.functional as F

    from benchmarks._timing import bridge_mlp
    from synapse_sim.nn import DeviceSGD

    torch.set_num_threads(1)
    X, Y, soft, hw = bridge_mlp()
    s_opt = torch.optim.SGD(soft.parameters(), lr=0.05)
    h_opt = DeviceSGD(hw, lr=0.05, rule="stochastic")

    def epoch(net, opt):
        t0 = time.perf_counter()
        for s in range(0, X.shape[0] - 10, 10):
            opt.zero_grad()
            F.cross_entropy(net(X[s : s + 10]), Y[s : s + 10]).backward()
            opt.step()
        return time.perf_counter() - t0

    epoch(hw, h_opt)  # warm-up: compilation, caches
    epoch(soft, s_opt)
    rows = []
    for r in range(args.rounds):
        for mode in _order(r):
            modes.set(mode)
            modes.kernel_s = 0.0
            ep = epoch(hw, h_opt)
            rows.append({"round": r, "rule": "stochastic", "mode": mode, "epoch_s": ep,
                         "kernel_s_per_epoch": modes.kernel_s})  # fmt: skip
        rows.append({"round": r, "rule": "software", "mode": "-", "epoch_s": epoch(soft, s_opt)})
        print(" ".join(f"{x['rule']}/{x['mode']} {x['epoch_s']:.3f}" for x in rows[-3:]),
              flush=True)  # fmt: skip
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", choices=("trainer", "bridge"), default="trainer")
    ap.add_argument("--rule", action="append", choices=RULES, default=None)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=3, help="trainer: epochs per training")
    ap.add_argument("--busy", action="store_true", help="a spinning process beside the run")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    args.rule = args.rule or list(RULES)
    spinner = None
    if args.busy:
        spinner = mp.get_context("spawn").Process(target=_spin, daemon=True)
        spinner.start()
    try:
        modes = _Modes()
        rows = (_trainer if args.source == "trainer" else _bridge)(args, modes)
    finally:
        if spinner is not None:
            spinner.terminate()
    soft = statistics.median(x["epoch_s"] for x in rows if x["rule"] == "software")
    print(f"\nmedians over {args.rounds} rounds ({args.source}{', busy' if args.busy else ''}); "
          f"software epoch {soft:.3f} s")  # fmt: skip
    summary = []
    for rule in args.rule if args.source == "trainer" else ["stochastic"]:
        med = {}
        for mode in ("fixed", "choice"):
            sel = [x for x in rows if x["rule"] == rule and x["mode"] == mode]
            med[mode] = (statistics.median(x["epoch_s"] for x in sel),
                         statistics.median(x["kernel_s_per_epoch"] for x in sel))  # fmt: skip
        ep = {(x["mode"], x["round"]): x["epoch_s"] for x in rows if x["rule"] == rule}
        per_round = [ep["choice", r] / ep["fixed", r] for r in range(args.rounds)]
        s = {"rule": rule, "fixed_epoch_s": med["fixed"][0], "choice_epoch_s": med["choice"][0],
             "fixed_kernel_s": med["fixed"][1], "choice_kernel_s": med["choice"][1],
             "choice_over_fixed_per_round": per_round, "software_epoch_s": soft}  # fmt: skip
        summary.append(s)
        print(f"{rule:15s} epoch fixed {med['fixed'][0]:.3f} s ({med['fixed'][0] / soft:.2f}x "
              f"software), choice {med['choice'][0]:.3f} s ({med['choice'][0] / soft:.2f}x); "
              f"choice/fixed per round {', '.join(f'{v:.2f}' for v in per_round)}; kernels "
              f"{med['fixed'][1]:.3f} -> {med['choice'][1]:.3f} s/epoch")  # fmt: skip
    sites = modes.last_sites if modes.last_sites is not None else modes.sites()
    for x in sites:
        print("site", x["site"], "calls", x["calls_serial_parallel"], "us/call",
              [None if e is None else round(e) for e in x["us_serial_parallel"]],
              "in use:", x["in_use"], "tries", x["tries"])  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "summary": summary, "sites": sites},
                                        indent=1))  # fmt: skip
    return summary


if __name__ == "__main__":
    main()
