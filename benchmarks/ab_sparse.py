"""In-process A/B of the sparse pulse-train update kernel: this tree's ``devices/kernels/
numba_cpu.py`` against the same file at another git revision, call by call on two identical
arrays (the regime of ``bench_update.py --sparse``: 784 inputs, batch 10, BL 1, 30 active inputs
and 10 active error rows per sample, 3,000 coincidences per call, differential constant_step).

Usage: python benchmarks/ab_sparse.py --rev REV [--repeats 60] [--sizes 256 1024 4096]
       python benchmarks/ab_sparse.py --rev REV --dense [--repeats 8] [--sizes 512]
           [--preset soft_bounds]

``--dense``: issue #15's dense row instead (aihwkit's tile benchmark: a square constant_step
array of each size, batches of 100 samples with x, d ~ U[-1, 1], no BL or update management;
BL 31 at lr 0.01 and BL 1 at the same pulse probabilities, lr 0.01 / 31), through
``DeviceArray.pulse_update`` with each tree's kernels; printed in ns per sample x weight.
``--preset``: the dense row on another device preset (default constant_step).

On a shared machine whose speed drifts by 1.5x from one minute to the next, separate runs of
two trees cannot resolve a 20% change; here both kernels are loaded in one process and called
alternately on the same inputs (the order swapped every call), so each ratio compares calls
made under the same load. The kernel of ``REV`` is written to a temporary module beside this
tree's (``devices/kernels/_ab_rev.py``, removed afterwards) so that it compiles against the
same helpers. Printed per size: the median kernel wall time of each, the median and quartiles
of the per-call ratio, and whether the two arrays' states ended equal (they must, when the
change is meant to keep results bit for bit).
"""

from __future__ import annotations

import argparse
import inspect
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._timing import ab_ratios, kernels_at  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rev", required=True, help="git revision of the base kernel")
    ap.add_argument("--repeats", type=int, default=60)
    ap.add_argument("--sizes", type=int, nargs="+", default=None)
    ap.add_argument("--dense", action="store_true", help="issue #15's dense row (see above)")
    ap.add_argument("--preset", default="constant_step", help="the dense row's device preset")
    args = ap.parse_args(argv)
    import devices
    from devices.kernels import numba_cpu as new

    sizes = args.sizes or ([512] if args.dense else [256, 1024, 4096])
    with kernels_at(args.rev) as base:
        if args.dense:
            return [_dense(devices, new, base, n, bl, args.repeats, args.preset) for n in sizes
                    for bl in (31, 1)]  # fmt: skip
        return [_size(devices, new, base, n, args.repeats) for n in sizes]


def _takes(mod, name):
    return name in inspect.signature(mod.pulse_update).parameters


def _size(devices, new, base, n_out, repeats, n_in=784, batch=10, nx=30, nd=10):
    arrs = [
        devices.DeviceArray(
            (n_out, n_in), devices.get("constant_step"), mapping="differential", seed=0
        )  # fmt: skip
        for _ in range(2)
    ]
    rng = np.random.default_rng(1)
    times = ([], [])
    for k in range(repeats + 1):  # the first call compiles / warms up
        x = np.zeros((batch, n_in))
        d = np.zeros((batch, n_out))
        for b in range(batch):
            x[b, rng.choice(n_in, nx, replace=False)] = rng.choice((-1.0, 1.0), nx)
            d[b, rng.choice(n_out, nd, replace=False)] = rng.choice((-1.0, 1.0), nd)
        order = [0, 1] if k % 2 == 0 else [1, 0]
        for i in order:
            a = arrs[i]
            up, dn = a.nominal_step("bidirectional", "both")
            _, xbits, dbits, xneg, dneg, bases, _ = a._fused_trains(
                x, d, 1.0, 0.5 * (up + dn), 1, False, False
            )
            W = a._clean_weights().reshape(-1)
            mod = new if i == 0 else base
            # what DeviceArray.pulse_update passes, where the kernel takes it
            kw = {"prm_dm": a._device_major_prm()} if _takes(mod, "prm_dm") else {}
            t0 = time.perf_counter()
            mod.pulse_update(
                a.state, a.params, bases, xbits, dbits, xneg, dneg, n_out, n_in, 1, W, a.alpha,
                a._gref_code(), **kw,
            )  # fmt: skip
            if k:
                times[i].append(time.perf_counter() - t0)
    same = all(
        np.array_equal(getattr(arrs[0].state, f), getattr(arrs[1].state, f))
        for f in arrs[0].state._fields
    )
    row = {"size": n_out, **ab_ratios(times), "same_state": same}
    print(
        f"{n_out:5d} x {n_in}: this tree {row['new_us']:7.1f} us, base {row['base_us']:7.1f} us;"
        f" per-call ratio median {row['ratio_median']:.3f} (quartiles {row['ratio_q1']:.3f}-"
        f"{row['ratio_q3']:.3f}); same state {same}",
        flush=True,
    )
    return row


def _dense(devices, new, base, n, bl, repeats, preset="constant_step", batch=100):
    arrs = [devices.DeviceArray((n, n), devices.get(preset), seed=0) for _ in range(2)]
    arrs[1]._k = base  # the array's kernel module: the base tree's for the second array
    rng = np.random.default_rng(1)
    lr = 0.01 if bl == 31 else 0.01 / 31
    times = ([], [])
    for k in range(repeats + 1):  # the first call compiles / warms up
        x = rng.uniform(-1, 1, (batch, n))
        d = rng.uniform(-1, 1, (batch, n))
        for i in [0, 1] if k % 2 == 0 else [1, 0]:
            t0 = time.perf_counter()
            arrs[i].pulse_update(x, d, lr, bl=bl, bl_management=False, update_management=False)
            if k:
                times[i].append(time.perf_counter() - t0)
    same = all(
        np.array_equal(getattr(arrs[0].state, f), getattr(arrs[1].state, f))
        for f in arrs[0].state._fields
    )
    row = {"size": n, "bl": bl, **ab_ratios(times), "same_state": same}
    per = 1e3 / (batch * n * n)  # us per call -> ns per sample x weight
    print(
        f"{preset} {n} x {n} BL {bl:2d}: this tree {row['new_us'] * per:6.2f} ns, base "
        f"{row['base_us'] * per:6.2f} ns per sample x weight; per-call ratio median "
        f"{row['ratio_median']:.3f} (quartiles {row['ratio_q1']:.3f}-{row['ratio_q3']:.3f}); "
        f"same state {same}",
        flush=True,
    )
    return row


if __name__ == "__main__":
    main()
