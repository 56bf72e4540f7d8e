"""Would one record per device make the pulse-request kernel's writes cheaper? (issue #15)

Issue #15 asks for a compact per-device state, one record per device instead of parallel arrays,
because a write touches a dozen arrays. This script answers it for the request kernel of pulse
backprop (``numba_cpu._request_ser``), without a second kernel: it captures the kernel's calls on
the two large layers of ``bench_train.py``'s MLP (784-256-128-10, batch 10, MNIST-5k,
constant_step by default) during a short training run, then replays the same calls, in order,
on copies of the captured state laid out three ways:

* ``arrays``: today's layout, one contiguous array per field;
* ``records``: the eight 8-byte fields a write reads or changes (``G``, ``Gw``, ``tau``,
  ``budget`` and the four counters) as strided views of one 64-byte record per device (one
  cache line), the ``frozen`` flags apart; the kernel is the same source, compiled for strided
  arrays;
* ``records+prm``: also the parameter rows device-major (``prm`` in Fortran order: a device's
  eight parameters on one line).

Between two calls a 4 MiB buffer is summed (``--no-flush``: not), a stand-in for the rest of a
training step (the reads of the weights, the activations). Each round replays every layout once,
alternated; printed are the medians over rounds of each layout's median call time (wall,
microseconds), and whether every layout ends in the same state (it must: the same kernel on the
same values).

Usage: python benchmarks/layout_request.py [--device constant_step] [--rule bidirectional]
[--calls 40] [--rounds 7] [--no-flush]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import devices.kernels.numba_cpu as nc  # noqa: E402
from benchmarks._timing import serial_twins  # noqa: E402
from synapse_sim.data.datasets import load_dataset  # noqa: E402
from synapse_sim.studies.train import RunSpec, TrainConfig, train  # noqa: E402

LAYOUTS = ("arrays", "records", "records+prm")
#: the record's fields, in DeviceState order, and their slot in a record (frozen: apart)
_SLOTS = {"G": 0, "Gw": 1, "tau": 2, "budget": 3, "cnt_up": 4, "cnt_dn": 5, "cnt_prog": 6,
          "cnt_reset": 7}  # fmt: skip
_FIELDS = ("G", "Gw", "tau", "frozen", "budget", "cnt_up", "cnt_dn", "cnt_prog", "cnt_reset")


def capture(device: str, rule: str, calls: int, skip: int = 300) -> dict:
    """The request kernel's arguments of ``calls`` calls per large layer (copies, taken after
    ``skip`` calls), from one epoch of training; keyed by the layer's synapse count."""
    real = nc._request_ser
    got: dict = {}
    seen = [0]

    def spy(*a):
        seen[0] += 1
        n = a[2].size
        if n >= 10_000 and seen[0] > skip and len(got.setdefault(n, [])) < calls:
            got[n].append(copy.deepcopy(a))
        return real(*a)

    nc._request_ser = spy
    try:
        cfg = TrainConfig(dataset="mnist5k", hidden=(256, 128), activation="relu", loss="ce",
                          init="uniform", batch_size=10, epochs=1, lr=(0.01,), seed=0)  # fmt: skip
        with serial_twins(nc):  # every call through the spied serial twin
            train(cfg, [RunSpec(device=device, rule=rule)],
                  data=load_dataset("mnist5k", seed=0), progress=False)  # fmt: skip
    finally:
        nc._request_ser = real
    if not got or any(len(v) < calls for v in got.values()):
        raise SystemExit(f"captured {[len(v) for v in got.values()]} calls, asked for {calls}")
    return got


def laid_out(state: tuple, params: tuple, layout: str) -> tuple[tuple, tuple]:
    """Copies of the kernel's state and parameter tuples in ``layout``."""
    if layout == "arrays":
        return tuple(np.array(f, copy=True) for f in state), params
    n = state[0].size
    rec = np.zeros((n, 8))
    as_int = rec.view(np.int64)
    out = []
    for name, f in zip(_FIELDS, state, strict=True):
        if name == "frozen":
            out.append(np.array(f, copy=True))
            continue
        view = (as_int if f.dtype == np.int64 else rec)[:, _SLOTS[name]]
        view[:] = f
        out.append(view)
    if layout == "records+prm":
        params = (params[0], np.asfortranarray(params[1]), *params[2:])
    return tuple(out), params


def replay(calls: list, layout: str, flush: np.ndarray | None) -> tuple[float, tuple]:
    """Median wall time (us) of the calls replayed in order on one copy of the first call's
    state in ``layout``, and the final state (contiguous copies of its fields and the weight
    cache)."""
    state, params = laid_out(calls[0][0], calls[0][1], layout)
    W = calls[0][15].copy()
    times = []
    for a in calls:
        # the layouts' own parameter tables, not the device-major copy pulse_request passes
        args = (state, params, *a[2:15], W, *a[16:18], nc._NO_TABLE)
        if flush is not None:
            flush.sum()
        t0 = time.perf_counter()
        nc._request_ser(*args)
        times.append(time.perf_counter() - t0)
    return 1e6 * statistics.median(times), [np.array(f) for f in state] + [W]


def parser(doc: str, rounds: int) -> argparse.ArgumentParser:
    """The options of a replay of captured calls (this script's, and ``ab_request.py``'s)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--device", default="constant_step")
    ap.add_argument("--rule", default="bidirectional", choices=("bidirectional", "unidirectional"))
    ap.add_argument("--calls", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=rounds)
    ap.add_argument("--no-flush", action="store_true")
    return ap


def captured(ap: argparse.ArgumentParser, argv) -> tuple:
    """Parsed and checked options, the captured calls and the flush buffer (or None)."""
    args = ap.parse_args(argv)
    for name, v in (("--calls", args.calls), ("--rounds", args.rounds)):
        if v < 1:
            raise SystemExit(f"{name} must be >= 1, got {v}")
    got = capture(args.device, args.rule, args.calls)
    return args, got, None if args.no_flush else np.ones((4 << 20) // 8)


def main(argv=None):
    args, got, flush = captured(parser(__doc__, 7), argv)
    rows = []
    for n, calls in sorted(got.items(), reverse=True):
        ends = {lay: replay(calls, lay, flush)[1] for lay in LAYOUTS}  # also compiles
        same = all(
            all(np.array_equal(a, b) for a, b in zip(e, ends["arrays"], strict=True))
            for e in ends.values()
        )
        med = {lay: [] for lay in LAYOUTS}
        for _ in range(args.rounds):
            for lay in LAYOUTS:
                med[lay].append(replay(calls, lay, flush)[0])
        row = {lay: statistics.median(v) for lay, v in med.items()}
        rows.append({"synapses": n, "same_state": same, **row})
        print(
            f"{n:7d} synapses: us per call "
            + ", ".join(f"{lay} {row[lay]:.0f}" for lay in LAYOUTS)
            + f" (records / arrays {row['records'] / row['arrays']:.2f}); same state {same}",
            flush=True,
        )
    return rows


if __name__ == "__main__":
    main()
