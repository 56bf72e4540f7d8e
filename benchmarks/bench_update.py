"""Speed of DeviceArray.pulse() and DeviceArray.pulse_update(), numba beside the numpy reference.

Usage: python benchmarks/bench_update.py [--sizes 512 1024] [--repeats 5] [--quick] [--json OUT]

- pulse(): signed counts uniform in [-n, n] for n in (1, 8, 31) on every device of a differential
  array (both devices written): ns per device update. The cost should not grow with n.
- pulse_update(): batch 100, BL 31, ConstantStep and SoftBounds presets (aihwkit defaults,
  c2c 0.3, d2d spread), differential push-pull: ns per (sample x weight). Two regimes:
  "training" (x ~ U[0, 1], d ~ N(0, 0.01^2), lr 0.01: bl_management shortens the trains, few
  coincidences) and "dense" (x, d ~ U[-1, 1], lr 0.1: BL 31 for every sample, most synapses
  receive pulses every sample). Reported: median of the repeats after one warm-up call.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import devices  # noqa: E402


def _median_time(fn, repeats):
    fn()  # warm-up (JIT compile, caches)
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def bench_pulse(size, backend, nmax, repeats, preset="ag_a_si"):
    arr = devices.DeviceArray((size, size), devices.get(preset), seed=0, backend=backend)
    arr.program(np.random.default_rng(1).uniform(-0.5, 0.5, (size, size)), form="centered")
    rng = np.random.default_rng(2)
    n_p = rng.integers(-nmax, nmax + 1, (size, size))
    n_m = rng.integers(-nmax, nmax + 1, (size, size))
    n_p[n_p == 0] = 1
    n_m[n_m == 0] = -1
    t = _median_time(lambda: arr.pulse(n_p, n_m), repeats)
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

    t = _median_time(run, repeats)
    dens = info["coincidences"] / (batch * size * size)
    return t / (batch * size * size) * 1e9, float(np.mean(info["bl"])), dens


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--ref-repeats", type=int, default=1, help="repeats of the slow reference")
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.repeats = [128], 2
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
