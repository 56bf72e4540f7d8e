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


def bars_table(res) -> str:
    """Markdown table of a bars sweep: mean ± std over the seeds, and the seeds with all bars."""
    rows = aggregate(res)
    axes = res["config"]["axis_names"]
    head = [*axes, "recovered bars", "all 10", "sigma", "pulses", "refreshes"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [str(r["params"].get(k, "float")) for k in axes]
        full = sum(v == 10 for v in r["recovered_bars_values"])
        cells += [
            f"{r['recovered_bars_mean']:.1f} ± {r['recovered_bars_std']:.1f}",
            f"{full}/{r['n']}",
            f"{r['sigma_mean']:.2f} ± {r['sigma_std']:.2f}",
            f"{r['pulses_mean']:.0f}",
            f"{r['refreshes_mean']:.1f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


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
        if spec.study == "bars":
            block = f"### {part}\n\n" + bars_table(res)
        else:
            block = f"### {part}\n\n" + sweep_report(res)
        block += f"\n({time.perf_counter() - t0:.0f} s wall, {args.workers} worker(s))\n"
        print(block, flush=True)
        text.append(block)
    (out / "tables.md").write_text("\n".join(text))


if __name__ == "__main__":
    main()
