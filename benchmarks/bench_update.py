"""Speed of DeviceArray.pulse() and DeviceArray.pulse_update(), numba beside the numpy reference.

Usage: python benchmarks/bench_update.py [--sizes 512 1024] [--repeats 5] [--quick] [--json OUT]
       python benchmarks/bench_update.py --dense [--sizes 512 1024] [--repeats 5] [--json OUT]
       python benchmarks/bench_update.py --backend cupy [--sizes 4096] [--json OUT]
       python benchmarks/bench_update.py --backend cupy --dense [--sizes 512 1024 4096] [--json OUT]

- pulse(): signed counts uniform in [-n, n] for n in (1, 8, 31) on every device of a differential
  array (both devices written): ns per device update. The cost should not grow with n.
- pulse_update(): batch 100, BL 31, ConstantStep and SoftBounds presets (aihwkit defaults,
  c2c 0.3, d2d spread), differential push-pull: ns per (sample x weight). Two regimes:
  "training" (x ~ U[0, 1], d ~ N(0, 0.01^2), lr 0.01: bl_management shortens the trains, few
  coincidences) and "dense" (x, d ~ U[-1, 1], lr 0.1: BL 31 for every sample, most synapses
  receive pulses every sample). Reported: median of the repeats after one warm-up call.
- ``--backend cupy`` (a GPU): the same two operations on the GPU backend (state in cupy arrays,
  numba CUDA kernels), 4096x4096 by default, inputs already on the GPU, timed with a device
  synchronisation after each call: pulse() in G device updates per second and ns per device,
  pulse_update() (batch 100, BL 31) in ns per (sample x weight), with the pulse trains drawn
  on the host (trains="host", the CPU backends' trains) and on the GPU (trains="device").
  With ``--dense``: aihwkit's tile benchmark (below) on the GPU, default sizes 512, 1024 and
  4096, trains drawn on the host and on the GPU.
  Exits with the reason when no GPU is usable. ``--backend cuda-sim`` runs the same code under
  numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``; tiny sizes only: a smoke test of the GPU
  path on a CPU).
- ``--dense``: aihwkit's own tile benchmark (issue 15), exactly: 512x512 and 1024x1024,
  batch 100, BL 31, x and d ~ U[-1, 1], lr 0.01, no BL or update management, weights
  U[-0.1, 0.1], constant_step and soft_bounds, ns per (sample x weight) including the drawing of
  the trains; plus the same at BL 1 with the same pulse probabilities (lr scaled by 1/31).
  Each on two weight layouts: our default differential pair (two devices per weight, both
  written: the call issue 15 names) and one device per weight (``mapping="reference"``), the
  layout of aihwkit's ``SingleRPUConfig`` and so the same device work as aihwkit's figure.
- ``--sparse``: the torch bridge's regime (the MNIST MLP's first layer at batch 10): 784 inputs,
  ``--sizes`` output rows (default 256 1024 4096), batch 10, BL 1, in every sample 30 active
  inputs and 10 active error rows (probability 1: exactly 300 coincidences per sample), on a
  differential constant_step array: microseconds per call and per coincidence, the host side
  (train drawing) included. Most rows of such a batch have no pulse.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import devices  # noqa: E402
from benchmarks._timing import median_time, median_times  # noqa: E402


def bench_pulse(size, backend, nmax, repeats, preset="ag_a_si"):
    arr = devices.DeviceArray((size, size), devices.get(preset), seed=0, backend=backend)
    arr.program(np.random.default_rng(1).uniform(-0.5, 0.5, (size, size)), form="centered")
    rng = np.random.default_rng(2)
    n_p = rng.integers(-nmax, nmax + 1, (size, size))
    n_m = rng.integers(-nmax, nmax + 1, (size, size))
    n_p[n_p == 0] = 1
    n_m[n_m == 0] = -1
    t = median_time(lambda: arr.pulse(n_p, n_m), repeats)
    return t / arr.n_devices * 1e9


def bench_update(size, backend, preset, regime, repeats, batch=100, bl=31):
    arr = devices.DeviceArray((size, size), devices.get(preset), seed=0, backend=backend)
    rng = np.random.default_rng(3)
    if regime == "training":
        x = rng.uniform(0, 1, (batch, size))
        d = rng.normal(0, 0.01, (batch, size))
        lr = 0.01
    else:
        x = rng.uniform(-1, 1, (batch, size))
        d = rng.uniform(-1, 1, (batch, size))
        lr = 0.1
    info = {}

    def run():
        info.update(arr.pulse_update(x, d, lr, bl))

    t = median_time(run, repeats)
    dens = info["coincidences"] / (batch * size * size)
    return t / (batch * size * size) * 1e9, float(np.mean(info["bl"])), dens


#: aihwkit 1.2.0's CPU tile (ConstantStep defaults) on the same workload, measured side by side
#: on the 2-core machine (issue 15): ns per (sample x weight).
AIHWKIT_NS = (19.0, 33.0)


def bench_dense(size, preset, bl, repeats, batch=100, lr=0.01, backend="numba", trains="host",
                mapping="differential"):  # fmt: skip
    """aihwkit's tile benchmark: a ``size`` x ``size`` array, weights U[-0.1, 0.1],
    x and d ~ U[-1, 1] of shape (batch, size), lr 0.01, no BL or update management. ``bl`` below
    31 keeps the pulse probabilities of BL 31 (lr scaled by bl / 31), so the same coincidence
    rate per pulse slot is measured with shorter trains.

    Returns
    -------
    (float, float, float)
        Wall ns and CPU ns (all threads) per (sample x weight), device pulses per
        (sample x weight)."""
    from devices.xp import get_xp

    on = get_xp(backend).asarray  # inputs already where the state lives (the GPU for cupy)
    arr = devices.DeviceArray((size, size), devices.get(preset), seed=0, backend=backend,
                              trains=trains, mapping=mapping)  # fmt: skip
    rng = np.random.default_rng(3)
    arr.program(on(rng.uniform(-0.1, 0.1, (size, size))))
    x = on(rng.uniform(-1, 1, (batch, size)))
    d = on(rng.uniform(-1, 1, (batch, size)))
    lr_bl = lr * bl / 31
    info = {}

    def run():
        info.update(arr.pulse_update(x, d, lr_bl, bl, bl_management=False,
                                     update_management=False))  # fmt: skip

    t, c = median_times(run, repeats)
    work = batch * size * size
    return t / work * 1e9, c / work * 1e9, info["coincidences"] / work


#: The dense rows' weight layouts: our default, a differential pair (two devices per weight,
#: both written by a push-pull update: the call issue 15 names), and one device per weight
#: against a reference (``mapping="reference"``), the layout of aihwkit's ``SingleRPUConfig``
#: (one device per cross-point): the same device work as the aihwkit figure.
DENSE_MAPPINGS = ("differential", "reference")


def dense_rows(sizes, repeats, backend="numba", mappings=DENSE_MAPPINGS):
    """The dense rows of issue 15 (constant_step, soft_bounds; BL 31 and BL 1; each mapping)."""
    import numba

    rows = []
    print(f"# dense (aihwkit tile benchmark): {numba.get_num_threads()} numba threads, "
          f"load average {os.getloadavg()[0]:.1f}; "
          f"aihwkit 1.2.0 measured {AIHWKIT_NS[0]:.0f}-{AIHWKIT_NS[1]:.0f} ns "
          "(SingleRPUConfig: one device per weight, like mapping 'reference')")  # fmt: skip
    # on the GPU also with the trains drawn there (trains="device"); the CPU draws them on the host
    train_modes = ("host",) if backend in ("numba", "numpy") else ("host", "device")
    for mapping, size, preset, trains in itertools.product(
        mappings, sizes, ("constant_step", "soft_bounds"), train_modes
    ):
        res = {bl: bench_dense(size, preset, bl, repeats, backend=backend, trains=trains,
                               mapping=mapping)
               for bl in (31, 1)}  # fmt: skip
        tag = f"{size:5d}  {mapping[:4]}  {preset:13s} {trains:6s}"
        for bl, (ns, cpu, dens) in res.items():
            rows.append({"op": "dense", "backend": backend, "trains": trains, "size": size,
                         "mapping": mapping, "preset": preset, "bl": bl,
                         "ns_per_sample_weight": ns, "cpu_ns_per_sample_weight": cpu,
                         "pulses_per_sample_weight": dens,
                         "x_vs_aihwkit": [AIHWKIT_NS[0] / ns, AIHWKIT_NS[1] / ns]})  # fmt: skip
            # aihwkit was measured with ConstantStep on one device per weight: a like-for-like
            # ratio for that preset with the reference mapping only
            like = preset == "constant_step" and mapping == "reference"
            peer = "aihwkit" if like else "aihwkit's figure (yardstick)"
            print(f"dense {tag} BL {bl:2d}  "
                  f"wall {ns:7.2f} ns/(sample*weight)  cpu {cpu:7.2f}  "
                  f"{AIHWKIT_NS[0] / ns:5.1f}-{AIHWKIT_NS[1] / ns:5.1f}x "
                  f"{peer}  (device pulses/(sample*device side) {dens:.2f})")  # fmt: skip
        print(f"dense {tag} BL 31 / BL 1: {res[31][0] / res[1][0]:.2f}")
    return rows


def sparse_rows(sizes, repeats, n_in=784, batch=10, nx=30, nd=10):
    """The ``--sparse`` benchmark (module docs): per size, median microseconds per call."""
    import time

    rows = []
    for n_out in sizes:
        arr = devices.DeviceArray((n_out, n_in), devices.get("constant_step"),
                                  mapping="differential", seed=0)  # fmt: skip
        rng = np.random.default_rng(1)
        calls = []
        for _ in range(repeats + 1):
            x = np.zeros((batch, n_in))
            d = np.zeros((batch, n_out))
            for b in range(batch):
                x[b, rng.choice(n_in, nx, replace=False)] = rng.choice((-1.0, 1.0), nx)
                d[b, rng.choice(n_out, nd, replace=False)] = rng.choice((-1.0, 1.0), nd)
            calls.append((x, d))
        times = []
        for k, (x, d) in enumerate(calls):
            t0 = time.process_time()
            info = arr.pulse_update(x, d, 1.0, bl=1, bl_management=False,
                                    update_management=False)  # fmt: skip
            if k:  # the first call compiles / warms up
                times.append(time.process_time() - t0)
        us = 1e6 * float(np.median(times))
        coinc = info["coincidences"]
        rows.append({"op": "pulse_update_sparse", "size": n_out, "n_in": n_in, "batch": batch,
                     "us_per_call_cpu": us, "coincidences": coinc,
                     "ns_per_coincidence": 1e3 * us / coinc})  # fmt: skip
        print(f"sparse  {n_out:5d} x {n_in}  batch {batch}  cpu {us:8.1f} us/call  "
              f"{coinc} coincidences  {1e3 * us / coinc:6.1f} ns/coincidence")  # fmt: skip
    return rows


def _gpu_rows(backend, sizes, repeats, batch=100, bl=31):
    """pulse() and pulse_update() on a CUDA backend (cupy, or cuda-sim for a smoke run)."""
    from devices.xp import get_xp

    xp = get_xp(backend)
    if xp is np:
        sync = lambda: None  # noqa: E731 - the simulator runs synchronously
    else:
        sync = xp.cuda.Device().synchronize

    def timed(fn):
        def run():
            fn()
            sync()

        return median_time(run, repeats)

    rows = []
    for size in sizes:
        rng = np.random.default_rng(2)
        for nmax in (1, 8, 31):
            arr = devices.DeviceArray((size, size), devices.get("ag_a_si"), seed=0, backend=backend)
            arr.program(rng.uniform(-0.5, 0.5, (size, size)), form="centered")
            n_p = rng.integers(-nmax, nmax + 1, (size, size))
            n_m = rng.integers(-nmax, nmax + 1, (size, size))
            n_p[n_p == 0] = 1
            n_m[n_m == 0] = -1
            n_p, n_m = xp.asarray(n_p), xp.asarray(n_m)
            t = timed(lambda a=arr, p=n_p, m=n_m: a.pulse(p, m))
            ns = t / arr.n_devices * 1e9
            rows.append({"op": "pulse", "backend": backend, "size": size, "n_max": nmax,
                         "ns_per_device": ns, "g_updates_per_s": 1.0 / ns})  # fmt: skip
            print(f"pulse        {size:5d}  |n|<={nmax:2d}  {backend} {ns:8.4f} ns/device  "
                  f"{1.0 / ns:7.2f} G device updates/s")  # fmt: skip
        for preset, regime, trains in itertools.product(
            ("constant_step", "soft_bounds"), ("training", "dense"), ("host", "device")
        ):
            arr = devices.DeviceArray(
                (size, size), devices.get(preset), seed=0, backend=backend, trains=trains
            )
            r = np.random.default_rng(3)
            if regime == "training":
                x, d, lr = r.uniform(0, 1, (batch, size)), r.normal(0, 0.01, (batch, size)), 0.01
            else:
                x, d, lr = r.uniform(-1, 1, (batch, size)), r.uniform(-1, 1, (batch, size)), 0.1
            x, d = xp.asarray(x), xp.asarray(d)
            info = {}
            t = timed(lambda a=arr, x=x, d=d, lr=lr, o=info: o.update(a.pulse_update(x, d, lr, bl)))
            ns = t / (batch * size * size) * 1e9
            dens = info["coincidences"] / (batch * size * size)
            rows.append({"op": "pulse_update", "backend": backend, "size": size,
                         "preset": preset, "regime": regime, "trains": trains, "batch": batch,
                         "bl": bl, "ns_per_sample_weight": ns,
                         "mean_bl": float(np.mean(info["bl"])),
                         "pulses_per_sample_weight": dens})  # fmt: skip
            print(f"pulse_update {size:5d}  {preset:13s} {regime:8s} trains={trains:6s} "
                  f"{backend} {ns:8.4f} ns/(sample*weight)  "
                  f"(pulses/(sample*weight) {dens:.2f})")  # fmt: skip
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=None, help="default 512 1024 (cpu), "
                    "4096 (cupy)")  # fmt: skip
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--ref-repeats", type=int, default=1, help="repeats of the slow reference")
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    ap.add_argument(
        "--dense",
        action="store_true",
        help="only aihwkit's tile benchmark (issue 15): 512 and 1024, batch 100, BL 31 and BL 1",
    )
    ap.add_argument(
        "--sparse",
        action="store_true",
        help="only the torch bridge's sparse regime: 784 inputs, batch 10, 300 coincidences",
    )
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument(
        "--backend",
        choices=("cpu", "cupy", "cuda-sim"),
        default="cpu",
        help="cpu: numba beside the numpy reference (default); cupy: the GPU backend",
    )
    args = ap.parse_args(argv)
    if args.backend != "cpu":
        from devices.gpu import cuda_sim_status, gpu_backend_status

        ok, why = (gpu_backend_status if args.backend == "cupy" else cuda_sim_status)()
        if not ok:
            sys.exit(f"bench_update.py --backend {args.backend}: not available: {why}")
        sizes = args.sizes or ([4096] if args.backend == "cupy" else [16])
        print(f"# {why}, numpy {np.__version__}")
        if args.dense:  # aihwkit's tile benchmark on the GPU backend
            rows = dense_rows(args.sizes or [512, 1024, 4096], args.repeats, backend=args.backend)
        else:
            rows = _gpu_rows(args.backend, sizes, args.repeats)
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1))
        return rows
    if args.sparse:
        rows = sparse_rows(args.sizes or [256, 1024, 4096], args.repeats)
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1))
        return rows
    if args.sizes is None:
        args.sizes = [512, 1024]
    if args.quick:
        args.sizes, args.repeats = [128], 2
    if args.dense:
        rows = dense_rows(args.sizes, args.repeats)
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1))
        return rows
    import numba

    rows = []
    print(
        f"# {platform.processor() or platform.machine()}, {numba.config.NUMBA_NUM_THREADS} "
        f"numba threads, numpy {np.__version__}, numba {numba.__version__}"
    )
    for size in args.sizes:
        for nmax in (1, 8, 31):
            ref = bench_pulse(size, "numpy", nmax, args.ref_repeats)
            fast = bench_pulse(size, "numba", nmax, args.repeats)
            rows.append(
                {
                    "op": "pulse",
                    "size": size,
                    "n_max": nmax,
                    "ns_numba": fast,
                    "ns_numpy": ref,
                    "speedup": ref / fast,
                }
            )
            print(
                f"pulse        {size:5d}  |n|<={nmax:2d}            numba {fast:7.2f} ns/device"
                f"   numpy {ref:7.2f}   x{ref / fast:5.1f}"
            )
        for preset in ("constant_step", "soft_bounds"):
            for regime in ("training", "dense"):
                fast, bl_mean, dens = bench_update(size, "numba", preset, regime, args.repeats)
                if size <= 512 or args.quick:
                    ref, _, _ = bench_update(
                        size, "numpy", preset, regime, args.ref_repeats, batch=10
                    )
                else:
                    ref = float("nan")
                rows.append(
                    {
                        "op": "pulse_update",
                        "size": size,
                        "preset": preset,
                        "regime": regime,
                        "ns_numba": fast,
                        "ns_numpy": ref,
                        "speedup": ref / fast,
                        "mean_bl": bl_mean,
                        "pulses_per_sample_weight": dens,
                    }
                )
                print(
                    f"pulse_update {size:5d}  {preset:13s} {regime:8s} numba {fast:7.2f} "
                    f"ns/(sample*weight)  numpy {ref:7.2f}  x{ref / fast:6.1f}  "
                    f"(mean BL {bl_mean:.1f}, pulses/(sample*weight) {dens:.2f})"
                )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    main()
