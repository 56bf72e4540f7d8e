"""Where a GPU ``pulse()`` call goes: the write kernel alone against the whole call, the bytes it
moves against the card's copy bandwidth, and every CUDA kernel's registers and local memory.

Usage: python benchmarks/gpu_kernels.py [--size 4096] [--repeats 5] [--json OUT]
       NUMBA_ENABLE_CUDASIM=1 python benchmarks/gpu_kernels.py --backend cuda-sim --size 8

On the H200 (2026-12-04) ``pulse()`` ran at 6.6-6.9 G device updates per second at 4096 x 4096,
about 620 bytes per device at the card's copy bandwidth, against the ~200 bytes its fields need
(BENCHMARKS.md, "GPU"). This script splits that time (a lead for the next GPU session):

- ``call``: ``DeviceArray.pulse(n_plus, n_minus)`` as a user calls it (input checks, the count
  vector, the kernel, the totals read back), a differential ag_a_si array, |n| <= 8;
- ``kernel``: the same write kernel launched alone on the same counts
  (:func:`devices.kernels.cuda.write`);
- ``copy``: a device-to-device copy of up to 1 GiB (as many bytes as the state and parameter
  arrays hold, if fewer), for the bandwidth the kernel could reach (bytes read plus written);
- the registers per thread and local memory (spills) of each compiled kernel
  (numba's ``get_regs_per_thread`` / ``get_local_mem_per_thread``; "n/a" under the simulator).

Times are medians of ``--repeats`` calls after one warm-up call, each ended by a device
synchronisation. Under the simulator (``--backend cuda-sim``) the code path runs and the times
mean nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import devices  # noqa: E402
from benchmarks._timing import median_time  # noqa: E402


def _kernel_resources(kc):
    """(name, signature, registers per thread, local bytes per thread) of every compiled kernel
    of the module ``kc``; registers and local memory are None where numba cannot tell."""
    rows = []
    for name in sorted(vars(kc)):
        if not name.startswith("_k_"):
            continue
        disp = getattr(kc, name)
        try:  # {signature: value} over the compiled signatures
            regs = disp.get_regs_per_thread()
            local = disp.get_local_mem_per_thread()
        except Exception:  # the simulator's kernels have no compiled code
            rows.append((name, "", None, None))
            continue
        for sig in regs:
            rows.append((name, str(sig), int(regs[sig]), int(local[sig])))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=4096, help="rows = columns (default 4096)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--backend", choices=("cupy", "cuda-sim"), default="cupy")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.size < 1:
        ap.error(f"--size must be a positive integer, got {args.size}")
    if args.repeats < 1:
        ap.error(f"--repeats must be a positive integer, got {args.repeats}")
    from devices.gpu import cuda_sim_status, gpu_backend_status

    ok, why = (gpu_backend_status if args.backend == "cupy" else cuda_sim_status)()
    if not ok:
        sys.exit(f"gpu_kernels.py --backend {args.backend}: not available: {why}")
    from devices.kernels import cuda as kc
    from devices.xp import get_xp

    xp = get_xp(args.backend)
    sync = (lambda: None) if xp is np else xp.cuda.Device().synchronize

    def timed(fn):
        def run():
            fn()
            sync()

        return median_time(run, args.repeats)

    size = args.size
    rng = np.random.default_rng(2)
    arr = devices.DeviceArray((size, size), devices.get("ag_a_si"), seed=0, backend=args.backend)
    arr.program(rng.uniform(-0.5, 0.5, (size, size)), form="centered")
    n_p = rng.integers(-8, 9, (size, size))
    n_m = rng.integers(-8, 9, (size, size))
    n_p, n_m = xp.asarray(n_p), xp.asarray(n_m)
    n_flat = xp.ascontiguousarray(xp.concatenate([n_p.ravel(), n_m.ravel()]).astype(xp.int64))
    N = arr.n_devices
    t_call = timed(lambda: arr.pulse(n_p, n_m))
    t_kernel = timed(lambda: kc.write(arr.state, arr.params, n_flat, np.uint64(1), False))
    # the bytes of the per-device arrays the kernel is handed (state and parameters), and of
    # the counts; a write reads and writes the state, reads the parameters and the counts
    per_dev = [a for a in (*arr.state, *arr.params) if hasattr(a, "nbytes") and a.size >= N]
    state_bytes = sum(int(a.nbytes) for a in arr.state if hasattr(a, "nbytes") and a.size >= N)
    field_bytes = sum(int(a.nbytes) for a in per_dev)
    moved = field_bytes + state_bytes + int(n_flat.nbytes)  # state twice (read and written)
    # the copy's bandwidth needs a buffer well past the L2 cache, not the state's full size
    buf = xp.empty(max(min(field_bytes, 1 << 30) // 8, 1), dtype=xp.float64)
    out = xp.empty_like(buf)
    t_copy = timed(lambda: out.__setitem__(Ellipsis, buf))
    copy_bw = 2 * buf.nbytes / t_copy
    row = {
        "backend": args.backend,
        "size": size,
        "devices": N,
        "call_ns_per_device": 1e9 * t_call / N,
        "kernel_ns_per_device": 1e9 * t_kernel / N,
        "kernel_share_of_call": t_kernel / t_call,
        "bytes_per_device_fields": moved / N,
        "kernel_bytes_per_device_at_copy_bandwidth": t_kernel * copy_bw / N,
        "copy_bandwidth_GBps": copy_bw / 1e9,
        "kernels": [
            {"kernel": k, "signature": s, "registers": r, "local_bytes": loc}
            for k, s, r, loc in _kernel_resources(kc)
        ],
    }
    print(f"# {why}; {size} x {size} ag_a_si differential ({N} devices), |n| <= 8")
    print(f"call    {row['call_ns_per_device']:8.4f} ns/device")
    print(f"kernel  {row['kernel_ns_per_device']:8.4f} ns/device "
          f"({100 * row['kernel_share_of_call']:.0f}% of the call)")  # fmt: skip
    print(f"fields  {row['bytes_per_device_fields']:6.0f} bytes/device read + written; at the copy "
          f"bandwidth ({row['copy_bandwidth_GBps']:.0f} GB/s) the kernel's time moves "
          f"{row['kernel_bytes_per_device_at_copy_bandwidth']:.0f}")  # fmt: skip
    for k in row["kernels"]:
        regs = "n/a" if k["registers"] is None else k["registers"]
        loc = "n/a" if k["local_bytes"] is None else k["local_bytes"]
        print(f"{k['kernel']:18s} registers {regs!s:>4}  local bytes {loc!s:>5}")
    if args.json:
        args.json.write_text(json.dumps(row, indent=1))
    return row


if __name__ == "__main__":
    main()
