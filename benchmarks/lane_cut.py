"""Where the lanes of the pulse-train update pay: scalar rows against lane rows, forced, on the
same batch.

Usage: python benchmarks/lane_cut.py [--sizes 128x256 512x512] [--fractions 0.1 0.3 0.5 1.0]
       [--repeats 5] [--json FILE]

For each array size, train length (BL 31 at lr 0.01, and BL 1 at the same pulse probabilities)
and fraction of active inputs, one batch of 10 samples (x, d ~ U[-1, 1], the inactive inputs
zero; constant_step, no BL or update management) is drawn once and applied from the same state
three ways, with one numba thread: every row synapse by synapse (``mode`` 0), every row of a
sample with an active input through the lanes (``mode`` 2, with the lanes' own cuts off), and
the package's own choice (``numba_cpu.pulse_update``'s serial twin).
Printed per case: the fraction of synapses written per sample, the median wall time of each
and the ratios; the three must end in the same state (checked). ``numba_cpu._LANE_ROW`` is set
from this table: the lanes come out ahead once about a quarter of a row is written.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _forced_kernel(nc):
    """The serial twin of the update with its lane mode given (0 scalar rows, 2 lanes with
    every budget infinite) instead of decided, and with the lanes' cuts off: its lane helpers
    are compiled again from the package's source with ``_LANE_ROW`` so large that every row
    of a sample with an active input takes the lanes. Compiled like the package's twins."""
    import types

    from numba import njit

    glb = dict(nc.__dict__)
    glb["_LANE_ROW"] = 1 << 40

    def again(name, **opts):
        f = getattr(nc, name).py_func
        glb[name] = njit(error_model="numpy", **opts)(
            types.FunctionType(f.__code__, glb, f.__name__, f.__defaults__, f.__closure__)
        )

    again("_tile_lanes", parallel=nc._SERIAL_PIPELINE)
    tile_lanes, update_tile = glb["_tile_lanes"], nc._update_tile
    compact_all, pick_table = nc._compact_all, nc._pick_table

    @njit(parallel=nc._SERIAL_PIPELINE, error_model="numpy")
    def forced(st, pa, bases, xbits, dbits, xneg, dneg, n_out, n_in, route, W, alpha, gref, rows,
               prm_dm, mode):  # fmt: skip
        G, Gw, tau, frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset = st
        fam, prm, const, lut_up, lut_dn, c2c, gmin = pa
        tbl = pick_table(prm_dm, prm)
        nzx, ms = compact_all(xbits, n_in)
        nzd, md = compact_all(dbits, n_out)
        total = 0
        for t in range((n_out + rows - 1) // rows):
            if mode == 0:
                total += update_tile(t, rows, nzx, ms, G, Gw, tau, fam, const, lut_up, lut_dn,
                                     c2c, bases, frozen, budget, cnt_up, cnt_dn, cnt_prog,
                                     cnt_reset, (xbits, dbits, xneg, dneg, nzd, md), n_out, n_in,
                                     route, W, alpha, gref, tbl)  # fmt: skip
            else:
                total += tile_lanes(t, rows, nzx, ms, G, Gw, tau, fam, prm, const, lut_up,
                                    lut_dn, c2c, bases, frozen, budget, cnt_up, cnt_dn, cnt_prog,
                                    cnt_reset, xbits, dbits, xneg, dneg, n_out, n_in, route, W,
                                    alpha, gref, (mode == 2) | (mode == 4), mode >= 3)  # fmt: skip
        return total

    return forced


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["128x256", "512x512"])
    ap.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.3, 0.5, 1.0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    sizes = [_size(v) for v in args.sizes]
    for f in args.fractions:
        if not 0.0 < f <= 1.0:
            raise SystemExit(f"--fractions must lie in (0, 1], got {f}")
    if args.repeats < 1:
        raise SystemExit(f"--repeats must be >= 1, got {args.repeats}")
    import numba

    import devices
    from devices.kernels import numba_cpu as nc

    numba.set_num_threads(1)
    forced = _forced_kernel(nc)
    rows_out = []
    captured = []

    def capture(state, params, bases, xbits, dbits, xneg, dneg, n_out, n_in, route, W, alpha,
                gref, prm_dm=None):  # fmt: skip
        captured.append((tuple(state), tuple(params), bases, xbits, dbits, xneg, dneg, n_out,
                         n_in, route, W, float(alpha), float(gref), nc._tile_rows(n_in, n_out),
                         nc._table(prm_dm, params)))  # fmt: skip
        return 0

    rng = np.random.default_rng(0)
    real = nc.pulse_update
    try:
        for n_out, n_in in sizes:
            for bl, lr in ((31, 0.01), (1, 0.01 / 31)):
                for f in args.fractions:
                    a = devices.DeviceArray((n_out, n_in), devices.get("constant_step"), seed=1)
                    x = rng.uniform(-1, 1, (10, n_in))
                    x[rng.random((10, n_in)) > f] = 0.0
                    d = rng.uniform(-1, 1, (10, n_out))
                    captured.clear()
                    nc.pulse_update = capture
                    a.pulse_update(x, d, lr, bl=bl, bl_management=False, update_management=False)
                    nc.pulse_update = real
                    rows_out.append(_case(nc, forced, captured[0], args.repeats,
                                          n_out, n_in, bl, f))  # fmt: skip
    finally:
        nc.pulse_update = real
    if args.json:
        Path(args.json).write_text(json.dumps(rows_out, indent=1))
    return rows_out


def _size(text):
    """``OUTxIN`` as two positive integers."""
    parts = text.lower().split("x")
    if len(parts) == 2 and all(p.isdigit() and int(p) > 0 for p in parts):
        return int(parts[0]), int(parts[1])
    raise SystemExit(f"--sizes takes OUTxIN with positive integers (e.g. 128x256), got {text!r}")


def _case(nc, forced, call, repeats, n_out, n_in, bl, f):
    st0 = tuple(v.copy() for v in call[0])
    W0 = call[10].copy()
    xb, db = call[3], call[4]
    written = sum(int((xb[b][:, None, :] & db[b][None, :, :]).any(axis=2).sum())
                  for b in range(xb.shape[0])) / (xb.shape[0] * n_out * n_in)  # fmt: skip
    times = {"scalar": [], "lanes": [], "package": []}
    ends = {}
    for _ in range(repeats + 1):  # the first round compiles
        for name in times:
            st = tuple(v.copy() for v in st0)
            W = W0.copy()
            args = (st,) + call[1:10] + (W,) + call[11:]
            t = time.perf_counter()
            if name == "package":
                nc._update_ser(*args, (nc._TILE_BYTES, 1))  # the serial twin's sparse tiles
            else:
                forced(*args, 0 if name == "scalar" else 2)
            times[name].append(time.perf_counter() - t)
            ends[name] = st
    for name in ("lanes", "package"):
        if not all(np.array_equal(p, q) for p, q in zip(ends[name], ends["scalar"], strict=True)):
            raise AssertionError(f"{name} ended in another state than the scalar rows")
    med = {k: 1e6 * statistics.median(v[1:]) for k, v in times.items()}
    row = {"size": f"{n_out}x{n_in}", "bl": bl, "active": f, "written": written, **med,
           "lanes_over_scalar": med["lanes"] / med["scalar"],
           "package_over_scalar": med["package"] / med["scalar"]}  # fmt: skip
    print(
        f"{n_out}x{n_in} BL {bl:2d} active {f:.2f} written {written:.3f}: scalar "
        f"{med['scalar']:8.0f} us, lanes {med['lanes']:8.0f} us ({row['lanes_over_scalar']:.2f}),"
        f" package {med['package']:8.0f} us ({row['package_over_scalar']:.2f})",
        flush=True,
    )
    return row


if __name__ == "__main__":
    main()
