"""Sparse coding on device arrays through the sweep engine (docs/SPARSE_CODING.md).

Runs the sweep specs of ``examples/sparse_device_sweep/`` (BSC with the dictionary on a device
array vs levels, NL and device-to-device spread, each with the bidirectional and the
unidirectional rule; LCA on the presets) and writes the tables (mean ± std over the seeds):

    NUMBA_NUM_THREADS=1 python examples/sparse_device_sweep.py --workers 2

Each sweep writes ``<out>/<name>/sweep.h5`` and can be resumed (``--resume``); the tables go
to stdout and ``<out>/tables.md``. ``--only levels nl`` runs a subset.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from synapse_sim.sweep import aggregate, load_spec, read_sweep, run_sweep
from synapse_sim.sweep.aggregate import sweep_report

SPECS = Path(__file__).with_name("sparse_device_sweep")
PARTS = ("levels", "coarse", "nl", "presets", "d2d", "lca")


def full_recoveries(res) -> dict:
    """Point -> number of seeds with all 10 bars (bars sweeps)."""
    rows = aggregate(res, metrics=("recovered_bars",))
    return {r["point"]: sum(v == 10 for v in r["recovered_bars_values"]) for r in rows}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS))
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--out", default="runs/sparse_device_sweep")
    p.add_argument("--resume", action="store_true")
    args = p.parse_args(argv)
    out = Path(args.out)
    text = []
    for part in args.only:
        spec = load_spec(SPECS / f"{part}.toml")
        t0 = time.perf_counter()
        run_sweep(
            spec,
            out / part,
            workers=args.workers,
            resume=args.resume,
            overwrite=not args.resume,
            progress=None,
        )
        res = read_sweep(out / part)
        block = f"### {part}\n\n" + sweep_report(res)
        if spec.study == "bars":
            full = full_recoveries(res)
            block += "\nseeds with all 10 bars per point: " + ", ".join(
                f"{'software' if k is None else k}: {v}/{spec.n_instances}" for k, v in full.items()
            )
            block += "\n"
        block += f"\n({time.perf_counter() - t0:.0f} s wall, {args.workers} worker(s))\n"
        print(block, flush=True)
        text.append(block)
    (out / "tables.md").write_text("\n".join(text))


if __name__ == "__main__":
    main()
