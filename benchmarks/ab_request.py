"""In-process A/B of pulse backprop's request kernel: this tree's ``numba_cpu._request_ser``
against the same kernel at another git revision, on calls captured from training.

Usage: python benchmarks/ab_request.py --rev REV [--device constant_step]
[--rule bidirectional|unidirectional] [--calls 40] [--rounds 5] [--no-flush] [--parallel]

The kernel's calls on the two large layers of ``bench_train.py``'s MLP (784-256-128-10, batch
10, MNIST-5k) are captured during a short training run (``layout_request.capture``), then
replayed in order on two copies of the captured state, one per kernel, the two kernels called
alternately call by call (the order swapped every call), so that each per-call ratio compares
calls made under the same load. Between two calls a 4 MiB buffer is summed (``--no-flush``:
not), a stand-in for the rest of a training step. Printed per layer: each kernel's median call
time (wall, microseconds), the median and quartiles of the per-call ratio over all rounds, and
whether the two copies ended in the same state (they must, when the change keeps results bit
for bit). ``--parallel``: each tree's parallel twin (``_request_par``) instead, given this
process's numba thread count where it takes a group count (trees since 2026-12-06).
"""

from __future__ import annotations

import inspect
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._timing import ab_ratios, kernels_at  # noqa: E402
from benchmarks.layout_request import captured, parser  # noqa: E402


def main(argv=None):
    ap = parser(__doc__, 5)
    ap.add_argument("--rev", required=True, help="git revision of the base kernel")
    ap.add_argument("--parallel", action="store_true", help="the parallel twins instead")
    args, got, flush = captured(ap, argv)
    from devices.kernels import numba_cpu as new

    rows = []
    with kernels_at(args.rev) as base:
        kerns = (new._request_ser, _compatible(base._request_ser))
        if args.parallel:
            kerns = (_compatible(new._request_par), _compatible(base._request_par))
        for n, calls in sorted(got.items(), reverse=True):
            rows.append(_layer(n, calls, kerns, args.rounds, flush))
    return rows


def _compatible(kern):
    """``kern`` called with the serial twin's arguments of this tree: a revision before the
    device-major table (``prm_dm``, the last argument) takes one argument fewer; a parallel twin
    with a group count (``groups``) gets numba's thread count, as ``pulse_request`` gives it."""
    params = inspect.signature(kern.py_func).parameters
    if "groups" in params:
        from devices.kernels.twins import numba_threads

        groups = numba_threads()
        return lambda *a: kern(*a, groups)
    if "prm_dm" in params:
        return kern
    return lambda *a: kern(*a[:-1])


def _copy(calls):
    """Fresh copies of the first call's state and weight cache."""
    return [np.array(f, copy=True) for f in calls[0][0]], calls[0][15].copy()


def _layer(n, calls, kerns, rounds, flush):
    times = ([], [])
    for r in range(rounds + 1):  # round 0 compiles both and checks the end states
        copies = [_copy(calls), _copy(calls)]
        for k, a in enumerate(calls):
            for i in (0, 1) if (k + r) % 2 == 0 else (1, 0):
                state, W = copies[i]
                args = (tuple(state), a[1], *a[2:15], W, *a[16:])
                if flush is not None:
                    flush.sum()
                t0 = time.perf_counter()
                kerns[i](*args)
                if r:
                    times[i].append(time.perf_counter() - t0)
        if r == 0:
            same = all(
                np.array_equal(p, q)
                for p, q in zip(
                    copies[0][0] + [copies[0][1]], copies[1][0] + [copies[1][1]], strict=True
                )  # fmt: skip
            )
    row = {"synapses": n, **ab_ratios(times), "same_state": same}
    print(
        f"{n:7d} synapses: this tree {row['new_us']:7.1f} us, base {row['base_us']:7.1f} us per"
        f" call; per-call ratio median {row['ratio_median']:.3f} (quartiles"
        f" {row['ratio_q1']:.3f}-{row['ratio_q3']:.3f}); same state {same}",
        flush=True,
    )
    return row


if __name__ == "__main__":
    main()
