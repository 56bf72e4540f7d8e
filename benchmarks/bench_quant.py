"""Quantize / dequantize throughput of the quantizer family: numba kernels beside numpy.

Usage: python benchmarks/bench_quant.py [--size 4194304] [--repeats 7] [--quick] [--json OUT]

For every case (per tensor and per output channel, 4M float64 elements by default, a
2048 x 2048 weight): ``quantize`` (codes), ``dequantize`` (values of the codes) and ``fake``
(both in one pass), with ``backend="numpy"`` (the reference) and ``backend="numba"``
(devices/quantizers/kernels.py, bitwise equal). Reported: median seconds over the repeats after one
warm-up call (JIT compile), M elements per second, and the numpy / numba ratio measured in the
same run. Results go to ``--json`` (default benchmarks/bench_quant.json).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._timing import median_time  # noqa: E402
from devices.quantizers import LSQ, LevelGrid, StatsQ, Uniform  # noqa: E402


def _cases():
    """(name, per-channel?, factory(backend)) of the benchmarked quantizers."""
    grid = LevelGrid.from_device("epiram", n_states=16).table
    return [
        ("uniform-4b", False, lambda b: Uniform(4, 1.0, backend=b)),
        ("uniform-4b", True, lambda b: Uniform(4, axis=0, backend=b)),
        (
            "uniform-4b-stochastic",
            False,
            lambda b: Uniform(4, 1.0, rounding="stochastic", backend=b),
        ),
        ("lsq-3b", True, lambda b: LSQ(3, axis=0, backend=b)),
        ("statsq-2b", False, lambda b: StatsQ(2, axis=None, backend=b)),
        ("statsq-2b", True, lambda b: StatsQ(2, axis=0, backend=b)),
        ("levelgrid-epiram-16", False, lambda b: LevelGrid(grid, scaling="absmax", backend=b)),
        ("levelgrid-epiram-16", True, lambda b: LevelGrid(grid, axis=0, scaling="mean", backend=b)),
    ]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1 << 22, help="elements (default 4194304)")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="64k elements, 3 repeats")
    ap.add_argument("--json", type=Path, default=Path(__file__).with_name("bench_quant.json"))
    args = ap.parse_args(argv)
    size, repeats = (1 << 16, 3) if args.quick else (args.size, args.repeats)
    rows_n = 2048 if size >= 2048 * 16 else 64
    shape = (rows_n, size // rows_n)
    x = np.random.default_rng(0).normal(0.0, 0.5, shape)
    noise = np.random.default_rng(1).random(shape)

    import numba

    header = {
        "machine": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "numba_threads": numba.config.NUMBA_NUM_THREADS,
        "elements": int(x.size),
        "shape": list(shape),
        "repeats": repeats,
    }
    print(
        f"# {header['machine']}, {header['numba_threads']} numba threads, numpy "
        f"{np.__version__}, numba {numba.__version__}; {x.size:,} float64 elements {shape}, "
        f"median of {repeats}"
    )
    print(
        f"{'case':24s} {'scale':11s} {'op':10s} {'numpy s':>9s} {'numba s':>9s} "
        f"{'numba Me/s':>10s} {'ratio':>6s}"
    )
    # Settle the process first: the first few 32 MB allocations and the numba thread pool make
    # the first case's first calls several times slower than the rest (seen: 44 ms, then 9 ms).
    for b in ("numpy", "numba"):
        q0 = _cases()[0][2](b)
        for _ in range(8):
            q0.dequantize(q0.quantize(x), q0.scale(x))
    rows = []
    for name, per_channel, make in _cases():
        ref, fast = make("numpy"), make("numba")
        s = ref.scale(x)
        stochastic = getattr(ref, "rounding", "nearest") == "stochastic"
        kw = {"noise": noise} if stochastic else {}
        codes = ref.quantize(x, s, **kw)
        assert np.array_equal(codes, fast.quantize(x, s, **kw))  # the backends agree
        ops = {
            "quantize": lambda q, s=s, kw=kw: q.quantize(x, s, **kw),
            "dequantize": lambda q, s=s, codes=codes: q.dequantize(codes, s),
            "fake": lambda q, s=s, kw=kw: q.fake(x, s, **kw),
        }
        for op, fn in ops.items():
            t_np = median_time(lambda fn=fn, q=ref: fn(q), repeats)
            t_nb = median_time(lambda fn=fn, q=fast: fn(q), repeats)
            row = {
                "case": name,
                "scale": "per-channel" if per_channel else "per-tensor",
                "op": op,
                "numpy_s": t_np,
                "numba_s": t_nb,
                "numpy_Melem_s": x.size / t_np / 1e6,
                "numba_Melem_s": x.size / t_nb / 1e6,
                "ratio": t_np / t_nb,
            }
            rows.append(row)
            print(
                f"{name:24s} {row['scale']:11s} {op:10s} {t_np:9.4f} {t_nb:9.4f} "
                f"{row['numba_Melem_s']:10.1f} {row['ratio']:6.1f}"
            )
    if args.json:
        args.json.write_text(json.dumps({"header": header, "rows": rows}, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
