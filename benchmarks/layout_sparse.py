"""Would one record per device make the sparse pulse-train update cheaper? (issue #15)

The companion of ``layout_request.py`` for the stochastic pulse-train update
(``numba_cpu._update_ser``), on calls captured from real training on MNIST-5k (784-256-128-10
relu MLP, batch 10, ``constant_step``, stochastic rule), from one of two sources:

* ``trainer``: the numpy trainer (``synapse_sim.train``, lr 0.01, as ``bench_train.py``);
* ``bridge``: the torch bridge (``convert(..., rule="stochastic")`` + ``DeviceSGD``, lr 0.05,
  as ``bench_torch.py --only step``).

The calls of the two large layers are captured (copies of the first call's state and of every
call's trains), then replayed in order on two copies of that state: one in today's layout (one
contiguous array per field), one laid out as ``layout_request.laid_out(..., "records")`` (the
eight 8-byte fields a write reads or changes as strided views of one 64-byte record per device,
``frozen`` apart). The same kernel source runs on both (compiled for strided arrays on the
second), both with the captured device-major parameter table, called alternately call by call
(the order swapped every call and every round; 4 MiB summed between calls, a stand-in for the
rest of a training step). Printed per layer: each layout's median call time (wall,
microseconds), the median and quartiles of the per-call ratio records / arrays, and whether the
two copies ended in the same state (they must: the same kernel on the same values).

``--twins`` replays the same captured calls on today's layout through the kernel's parallel
twin (``numba_cpu._update_par``, numba's threads) and its serial twin instead (ratio parallel /
serial; the same results, tested in ``tests/devices/test_kernels.py``).

``--rev REV`` replays the same captured calls on today's layout through this tree's serial twin
and through the serial twin of ``devices/kernels/numba_cpu.py`` at git revision ``REV``
(``_timing.kernels_at``; ratio this tree / REV): an in-process A/B of a kernel change on the
update calls of real training.

``--rev REV --parallel`` does the same through the two trees' parallel twins.

``--busy`` runs a spinning child process beside the replay for its whole length (another
process holding a core, as on a shared machine); each layer's line then also gives the total
time of each side, where a parallel region's stalls show up.

Usage: python benchmarks/layout_sparse.py [--source trainer|bridge] [--calls 40] [--rounds 5]
[--twins | --rev REV [--parallel]] [--busy]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import inspect
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import devices.kernels.numba_cpu as nc  # noqa: E402
from benchmarks._timing import ab_ratios, bridge_mlp, kernels_at, serial_twins  # noqa: E402
from benchmarks.layout_request import laid_out  # noqa: E402
from synapse_sim.data.datasets import load_dataset  # noqa: E402


def _train(source: str) -> None:
    if source == "trainer":
        from synapse_sim.studies.train import RunSpec, TrainConfig, train

        cfg = TrainConfig(dataset="mnist5k", hidden=(256, 128), activation="relu", loss="ce",
                          init="uniform", batch_size=10, epochs=1, lr=(0.01,), seed=0)  # fmt: skip
        train(cfg, [RunSpec(device="constant_step", rule="stochastic")],
              data=load_dataset("mnist5k", seed=0), progress=False)  # fmt: skip
        return
    import torch.nn.functional as F

    from synapse_sim.nn import DeviceSGD

    X, Y, soft, hw = bridge_mlp()
    opt = DeviceSGD(hw, lr=0.05, rule="stochastic")
    for k in range(X.shape[0] // 10):
        opt.zero_grad()
        F.cross_entropy(hw(X[10 * k : 10 * k + 10]), Y[10 * k : 10 * k + 10]).backward()
        opt.step()


def capture(source: str, calls: int, skip: int = 300) -> dict:
    """Per large layer (keyed by its synapse count): a copy of the state and weight cache at the
    first captured call, and the arguments of ``calls`` calls (taken after ``skip`` calls)."""
    real = nc._update_ser
    got: dict = {}
    seen = [0]

    def spy(*a):
        seen[0] += 1
        n = a[7] * a[8]
        if n >= 10_000 and seen[0] > skip:
            d = got.setdefault(n, {"calls": []})
            if not d["calls"]:
                d["state"] = [np.array(f, copy=True) for f in a[0]]
                d["W"] = a[10].copy()
            if len(d["calls"]) < calls:
                d["calls"].append(copy.deepcopy(a[:10]) + a[11:])
        return real(*a)

    nc._update_ser = spy
    try:
        with serial_twins(nc):  # every call through the spied serial twin
            _train(source)
    finally:
        nc._update_ser = real
    if not got or any(len(v["calls"]) < calls for v in got.values()):
        raise SystemExit(f"captured {[len(v['calls']) for v in got.values()]} calls, asked {calls}")
    return got


def _arity(kernel):
    """How many arguments ``kernel`` takes (a jitted kernel, or since 2026-12-06's twenty-fifth
    session the Python function calling the rows and lane kernels: ``*args``, None: all)."""
    ps = inspect.signature(getattr(kernel, "py_func", kernel)).parameters.values()
    return None if any(p.kind is p.VAR_POSITIONAL for p in ps) else len(ps)


def _layer(n, d, rounds, flush, twins=False, base=None, parallel=False):
    params = d["calls"][0][1]
    # records, arrays (ab_ratios: records / arrays); --twins: parallel, serial on arrays;
    # --rev: this tree's serial twin, the base's, on arrays
    lays = ("arrays", "arrays") if (twins or base) else ("records", "arrays")
    kerns = (
        nc._update_par if twins or parallel else nc._update_ser,
        (base._update_par if parallel else base._update_ser) if base else nc._update_ser,
    )
    # a kernel of another revision may take fewer trailing arguments (``sparse``, the sparse
    # tiles' size and least count, is new in 2026-12-06's tree): each gets as many as it takes
    arity = [_arity(k) for k in kerns]
    times = ([], [])
    for r in range(rounds + 1):  # round 0 compiles both and checks the end states
        copies = []
        for lay in lays:
            st, _ = laid_out(tuple(d["state"]), params, lay)
            copies.append((st, d["W"].copy()))
        for k, a in enumerate(d["calls"]):
            for i in (0, 1) if (k + r) % 2 == 0 else (1, 0):
                st, W = copies[i]
                if flush is not None:
                    flush.sum()
                t0 = time.perf_counter()
                kerns[i](*(tuple(st), *a[1:10], W, *a[10:])[: arity[i]])
                if r:
                    times[i].append(time.perf_counter() - t0)
        if r == 0:
            ends = [[np.array(f) for f in st] + [W] for st, W in copies]
            same = all(np.array_equal(p, q) for p, q in zip(*ends, strict=True))
    row = {"synapses": n, **ab_ratios(times), "same_state": same}
    row["new_total_ms"], row["base_total_ms"] = (1e3 * sum(t) for t in times)
    a, b = ("records", "arrays")
    if twins or base:
        a, b = ("parallel", "serial") if twins else ("this tree", "base")
    print(
        f"{n:7d} synapses: {a} {row['new_us']:7.1f} us, {b} {row['base_us']:7.1f} us per"
        f" call; {a} / {b} per call, median {row['ratio_median']:.3f} (quartiles"
        f" {row['ratio_q1']:.3f}-{row['ratio_q3']:.3f}); totals {row['new_total_ms']:.1f} /"
        f" {row['base_total_ms']:.1f} ms; same state {same}",
        flush=True,
    )
    return row


def _spin():
    while True:
        pass


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", default="bridge", choices=("trainer", "bridge"))
    ap.add_argument("--calls", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no-flush", action="store_true")
    ap.add_argument("--twins", action="store_true", help="parallel vs serial twin, arrays")
    ap.add_argument("--rev", default=None, help="git revision: this tree's kernel against its")
    ap.add_argument("--busy", action="store_true", help="a spinning process beside the replay")
    ap.add_argument("--parallel", action="store_true", help="with --rev: the parallel twins")
    args = ap.parse_args(argv)
    if args.parallel and not args.rev:
        raise SystemExit("--parallel compares two trees' parallel twins: give --rev too")
    if args.rev and args.twins:
        raise SystemExit("--rev and --twins are separate comparisons: give one")
    for name, v in (("--calls", args.calls), ("--rounds", args.rounds)):
        if v < 1:
            raise SystemExit(f"{name} must be >= 1, got {v}")
    got = capture(args.source, args.calls)
    flush = None if args.no_flush else np.ones((4 << 20) // 8)
    spinner = None
    if args.busy:
        import multiprocessing

        spinner = multiprocessing.get_context("spawn").Process(target=_spin, daemon=True)
        spinner.start()
    try:
        with kernels_at(args.rev) if args.rev else contextlib.nullcontext() as base:
            return [
                _layer(n, d, args.rounds, flush, args.twins, base, args.parallel)
                for n, d in sorted(got.items(), reverse=True)
            ]
    finally:
        if spinner is not None:
            spinner.terminate()


if __name__ == "__main__":
    main()
