"""Where the pulse-request kernel's time goes in ``bench_train.py``'s epoch (issue #15).

The 784-256-128-10 relu MLP on MNIST-5k (batch 10, lr 0.01) trains with a pulse-backprop rule
on a device preset while the numba request kernel (``numba_cpu._request_ser``, every layer here
is below the parallel size) is timed in place: its calls are wrapped, so the state is as cold
or warm as training leaves it (process CPU time, ``time.process_time``: the kernel is serial,
so on a shared machine this is its work without the waits for a core). Per layer: calls,
synapses written per call (a pulse count of at least one), the kernel time per call and per
device write. The unidirectional rule's refreshes (``DeviceArray.refresh``, host code around
the verify kernel) are timed the same way: calls, pairs per call, time per call (mean, and the
median without the first call, which loads the kernels) and per epoch; and the rule's side of
every update's refresh (``PulseRule._refresh``: the mask test, the trigger's own mask under
``--refresh hysteresis``, then ``DeviceArray.refresh``). ``--tree DIR`` imports the package from
another checkout (an A/B of two trees with the same script).
The ``copy`` variant below repeats ``_request_ser``'s writes on purpose (the ablations are edits
of them); it keeps the kernel's earlier synapse-by-synapse scan (before the chunked, branch-free
list and the prefetch of 2026-12-03), so ``copy`` now also measures what that change saves.

``--ablation NAME`` runs, on every other batch, a timing-only variant of the kernel and reports
its time against the real kernel's on the same layers (both timed in the same process,
interleaved batch by batch, so the machine's load falls on both): ``copy`` (the same kernel
compiled again: the noise of the method itself), ``noise`` (no cycle-to-cycle draw), ``book``
(no bookkeeping: freeze flags, budgets, pulse counters), ``stores`` (no written-conductance and
drift-clock stores), ``writes`` (no device write at all: the scan, the counts and the weight
cache only). Every variant but ``copy`` changes the training (on its batches): timing only.

Usage: python benchmarks/bench_request.py [--device constant_step] [--rule bidirectional]
[--epochs 2] [--ablation copy] [--refresh hysteresis] [--tree DIR] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
from numba import njit


def _tree() -> Path:
    """The checkout to import the package from: ``--tree DIR`` of the command line (read here,
    before the imports below), else this script's own."""
    argv = sys.argv[1:]
    for k, a in enumerate(argv):
        if a == "--tree" and k + 1 < len(argv):
            return Path(argv[k + 1]).resolve()
        if a.startswith("--tree="):
            return Path(a.split("=", 1)[1]).resolve()
    return Path(__file__).resolve().parents[1]


sys.path.insert(0, str(_tree()))

from _timing import serial_twins  # noqa: E402  (this script's folder, whatever --tree says)

import devices.array_program as prog  # noqa: E402
import devices.kernels.numba_cpu as nc  # noqa: E402
from learning_rules.pulse_bp import PulseRule  # noqa: E402
from synapse_sim.data.datasets import load_dataset  # noqa: E402
from synapse_sim.studies.train import RunSpec, TrainConfig, train  # noqa: E402

ABLATIONS = ("none", "copy", "noise", "book", "stores", "writes")
_CODE = {"copy": 0, "noise": 1, "book": 2, "stores": 3, "writes": 4}


@njit(cache=False, inline="always", error_model="numpy")
def _write_variant(i, m, G, Gw, tau, fam, prm, const, lut_up, lut_dn, c2c, base, frozen, budget,
                   cnt_up, cnt_dn, cnt_prog, cnt_reset, v):  # fmt: skip
    """``numba_cpu._write_one`` with the part ``v`` names left out (timing only)."""
    if v == 2:
        m_eff = m
    else:
        m_eff = nc._write_book(i, m, frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset, False)
    if m_eff == 0:
        return
    G1 = nc._apply_one(fam, G[i], m_eff, i, prm, const, lut_up, lut_dn,
                       0.0 if v == 1 else c2c, base)  # fmt: skip
    G[i] = G1
    if v != 3:
        Gw[i] = G1
        tau[i] = 0.0


@njit(cache=False, parallel=True, error_model="numpy")  # as numba_cpu's serial twins
def _request_variant(st, pa, dW, step_up, step_dn, theta, n_max, stochastic, route, base, base_r,
                     thr, half_step, dg_nom, need, W, alpha, gref, prm_dm, v):  # fmt: skip
    """``numba_cpu._request_ser`` with the write variant ``v`` (0: the same writes)."""
    G, Gw, tau, frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset = st
    fam, prm, const, lut_up, lut_dn, c2c, gmin = pa
    prm = nc._pick_table(prm_dm, prm)  # as the kernel
    N = dW.size
    total = 0
    bad = 0
    skip = 0.0 if stochastic else theta * min(step_up, step_dn)
    for s in range(N):
        x = dW[s]
        if abs(x) < skip or x == 0.0:
            continue
        if not math.isfinite(x):
            bad += 1
            continue
        n = nc._count(x, s, step_up, step_dn, theta, n_max, stochastic, base_r)
        if n == 0:
            continue
        nq = 2 if route == 1 else 1
        if v != 4:
            sgn = 1 if x > 0.0 else -1
            for q in range(nq):
                tgt, mq = nc._route_target(s, N, sgn, n, route, q)
                _write_variant(tgt, mq, G, Gw, tau, fam, prm, const, lut_up, lut_dn, c2c, base,
                               frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset, v)  # fmt: skip
        W[s] = alpha * (G[s] - (G[N + s] if gref < 0.0 else gref))
        total += n * nq
        if thr > 0.0:
            need[s] = nc._flag_refresh(s, N, G, gmin, dg_nom, thr, half_step)
    return total, bad


def _written(dW, step_up, step_dn, theta):
    """Synapses with a pulse count of at least one (nearest rounding, the dead zone)."""
    a = np.abs(dW)
    r = np.where(dW > 0, a / step_up, a / step_dn)
    return int(np.count_nonzero((np.floor(r) + (r - np.floor(r) >= theta)) > 0))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="constant_step")
    ap.add_argument("--rule", default="bidirectional", choices=("bidirectional", "unidirectional"))
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--ablation", default="none", choices=ABLATIONS)
    ap.add_argument(
        "--refresh", default="threshold", choices=("threshold", "hysteresis"),
        help="the unidirectional rule's refresh trigger",
    )  # fmt: skip
    ap.add_argument(
        "--tree", type=Path, default=None,
        help="import the package from DIR (an A/B of two checkouts with the same script)",
    )  # fmt: skip
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    print(f"package from {Path(prog.__file__).resolve().parents[1]}")
    real = nc._request_ser
    acc: dict = {}
    calls = {"n": 0}

    def timed(*a):
        route, N = int(a[8]), a[2].size
        k = calls["n"]
        calls["n"] += 1
        alt = args.ablation != "none" and (k // 3) % 2 == 1  # 3 layers: whole batches
        t0 = time.process_time()
        if alt:
            r = _request_variant(*a, _CODE[args.ablation])
        else:
            r = real(*a)
        dt = time.process_time() - t0
        if k >= 12:  # after the first batches of both kernels (compilation, first touches)
            d = acc.setdefault((route, N), {"real": [0.0, 0], "variant": [0.0, 0], "syn": 0})
            d["variant" if alt else "real"][0] += dt
            d["variant" if alt else "real"][1] += 1
            if not alt:
                d["syn"] += _written(a[2], a[3], a[4], a[5])
        return r

    refresh = prog.Programming.refresh
    ref = {"calls": 0, "s": 0.0, "pairs": 0, "each": []}

    def timed_refresh(self, mask, **kw):
        t0 = time.process_time()
        n = refresh(self, mask, **kw)
        dt = time.process_time() - t0
        ref["s"] += dt
        ref["each"].append(dt)
        ref["calls"] += 1
        ref["pairs"] += n
        return n

    # the rule's side of a refresh (PulseRule._refresh: the mask test, the trigger's own mask,
    # then DeviceArray.refresh), per call with a flagged pair or none
    rule_refresh = PulseRule._refresh
    rule = {"calls": 0, "s": 0.0}

    def timed_rule_refresh(self, w, mask):
        t0 = time.process_time()
        n = rule_refresh(self, w, mask)
        rule["s"] += time.process_time() - t0
        rule["calls"] += 1
        return n

    nc._request_ser = timed
    prog.Programming.refresh = timed_refresh
    PulseRule._refresh = timed_rule_refresh
    try:
        cfg = TrainConfig(dataset="mnist5k", hidden=(256, 128), activation="relu", loss="ce",
                          init="uniform", batch_size=10, epochs=args.epochs, lr=(0.01,),
                          seed=0, refresh=args.refresh)  # fmt: skip
        with serial_twins(nc):  # every call through the timed serial twin
            train(cfg, [RunSpec(device=args.device, rule=args.rule)],
                  data=load_dataset("mnist5k", seed=0), progress=False)  # fmt: skip
    finally:
        nc._request_ser = real
        prog.Programming.refresh = refresh
        PulseRule._refresh = rule_refresh
    rows = []
    for (route, N), d in sorted(acc.items(), key=lambda kv: -kv[0][1]):
        t, c = d["real"]
        syn = d["syn"] / c
        writes = syn * (2 if route == 1 else 1)
        row = {
            "synapses": N,
            "route": route,
            "calls": c,
            "written_per_call": syn,
            "written_fraction": syn / N,
            "kernel_us_per_call": t / c * 1e6,
            "ns_per_device_write": t / c / max(writes, 1.0) * 1e9,
        }
        line = (
            f"{N:7d} synapses  written {syn:8.0f} ({syn / N:5.1%})  kernel "
            f"{row['kernel_us_per_call']:7.1f} us/call  {row['ns_per_device_write']:6.1f} ns/write"
        )
        if args.ablation != "none":
            tv, cv = d["variant"]
            row["variant_over_real"] = (tv / cv) / (t / c)
            line += f"  {args.ablation}/real {row['variant_over_real']:.3f}"
        rows.append(row)
        print(line)
    if ref["calls"]:
        c = ref["calls"]
        med = float(np.median(ref["each"][1:] or ref["each"]))  # without the first (loading)
        rows.append(
            {
                "refresh_calls_per_epoch": c / args.epochs,
                "refresh_pairs_per_call": ref["pairs"] / c,
                "refresh_us_per_call": ref["s"] / c * 1e6,
                "refresh_median_us_per_call": med * 1e6,
                "refresh_s_per_epoch": ref["s"] / args.epochs,
            }
        )
        print(
            f"refresh: {c / args.epochs:.0f} calls/epoch, {ref['pairs'] / c:.1f} pairs/call, "
            f"{ref['s'] / c * 1e6:.1f} us/call, {ref['s'] / args.epochs:.3f} s/epoch "
            f"(median {med * 1e6:.1f} us/call after the first)"
        )
    if rule["calls"]:
        c = rule["calls"]
        rows.append(
            {
                "rule_refresh_calls_per_epoch": c / args.epochs,
                "rule_refresh_us_per_call": rule["s"] / c * 1e6,
                "rule_refresh_s_per_epoch": rule["s"] / args.epochs,
            }
        )
        print(
            f"rule refresh ({args.refresh}, every update): {c / args.epochs:.0f} calls/epoch, "
            f"{rule['s'] / c * 1e6:.1f} us/call, {rule['s'] / args.epochs:.3f} s/epoch"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    main()
