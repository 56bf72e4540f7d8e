"""Sparse-coding study: bars-test recovery per model, E-step cost vs H' and gamma, BSC with the
dictionary on device arrays, LCA on device presets (docs/SPARSE_CODING.md).

Usage (the numbers of docs/SPARSE_CODING.md; parts can be run separately):

    python examples/sparse_coding_study.py --part recovery --models bsc dsc --seeds 0-9
    python examples/sparse_coding_study.py --part recovery --models mca mmca --seeds 0-4 --steps 150
    python examples/sparse_coding_study.py --part recovery --models gsc --seeds 0-4 --n 2000
    python examples/sparse_coding_study.py --part timing
    python examples/sparse_coding_study.py --part device --seeds 0-1
    python examples/sparse_coding_study.py --part lca

Each part prints a markdown table and writes JSON to ``--out`` (default ``runs/sparse_study``).
``--steps`` and ``--n`` shorten the published settings (spec section 7); the table says so.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import devices
from learning_rules.sparse_coding import (
    BARS_SETTINGS,
    BSC,
    MODELS,
    Schedule,
    bars_data,
    bars_dictionary,
    match_fields,
)
from synapse_sim.studies.lca_device import LCAConfig, lca_point

W_BARS = 10.0 * bars_dictionary(10)


def _seeds(text: str) -> list[int]:
    if "-" in text:
        a, b = text.split("-")
        return list(range(int(a), int(b) + 1))
    return [int(s) for s in text.split(",")]


def _anneal(text: str) -> list[tuple]:
    t0, end = text.split(":")
    return [(0, float(t0)), (float(end), 1.0)]


def _truth(name):
    cfg = BARS_SETTINGS[name]
    keys = {"dsc": ("values", "pi", "sigma"), "gsc": ("pi", "mu", "psi_sq", "sigma_sq")}
    return {k: cfg[k] for k in keys.get(name, ("pi", "sigma"))}


def bars_run(name, seed, steps=None, n=None, weights=None, T=None):
    """One bars run of ``name`` at the published setting (optionally shortened; ``T`` replaces
    the temperature curve, e.g. ``[(0, 5.0), (0.8, 1.0)]``)."""
    cfg = BARS_SETTINGS[name]
    steps = cfg["steps"] if steps is None else steps
    N = cfg["N"] if n is None else n
    Y, _ = bars_data(name, {"W": W_BARS, **_truth(name)}, N, seed)
    Y = Y[: int(cfg["train_fraction"] * N)]
    sched = Schedule(steps, T=cfg["T"] if T is None else T, Ncut_factor=cfg["Ncut_factor"])
    kw = {"values": cfg["values"]} if name == "dsc" else {}
    t0 = time.perf_counter()
    m = MODELS[name](
        10, h_prime=cfg["h_prime"], gamma=cfg["gamma"], schedule=sched, random_state=seed,
        weights=weights, **kw,
    )  # fmt: skip
    m.fit(Y)
    dt = time.perf_counter() - t0
    fields = m.W_ * m.mu_ if name == "gsc" else m.W_
    truth = W_BARS * cfg["mu"] if name == "gsc" else W_BARS
    _, costs, n_rec = match_fields(fields, truth, sign_invariant=name == "tsc")
    pi = np.asarray(m.pi_)
    return {
        "model": name,
        "seed": seed,
        "steps": steps,
        "T": [list(p) for p in (cfg["T"] if T is None else T)],
        "N": N,
        "recovered": n_rec,
        "cost_max_recovered": float(costs[costs < 1.0].max()) if n_rec else None,
        "pi": pi.tolist(),
        "sigma": float(m.sigma_),
        "L_last": float(m.log_likelihood_[-1]),
        "seconds": dt,
        "pulses": int(m.n_pulses_),
    }


def part_recovery(args):
    rows = []
    for name in args.models:
        for seed in args.seeds:
            r = bars_run(name, seed, args.steps, args.n, T=args.T)
            rows.append(r)
            print(json.dumps(r), flush=True)
    print("\n| model | N | steps | seeds | all 10 bars | mean bars | pi | sigma | s/run |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.models:
        rs = [r for r in rows if r["model"] == name]
        pis = np.array([r["pi"] for r in rs])
        if pis.ndim == 1:
            pi_txt = f"{pis.min():.3f}-{pis.max():.3f}"
        else:
            pi_txt = "mean " + ", ".join(f"{v:.3f}" for v in pis.mean(axis=0)[:3])
        sig = [r["sigma"] for r in rs]
        print(
            f"| {name} | {rs[0]['N']} | {rs[0]['steps']} | {len(rs)} | "
            f"{sum(r['recovered'] == 10 for r in rs)}/{len(rs)} | "
            f"{np.mean([r['recovered'] for r in rs]):.1f} | {pi_txt} | "
            f"{min(sig):.2f}-{max(sig):.2f} | {np.mean([r['seconds'] for r in rs]):.0f} |"
        )
    return rows


def part_timing(args):
    """Seconds per EM iteration of BSC (N = 900, H = 10, D = 25) vs H' and gamma."""
    Y, _ = bars_data("bsc", {"W": W_BARS, **_truth("bsc")}, 900, 0)
    rows = []
    for hp, g in ((4, 2), (6, 3), (6, 5), (8, 3), (8, 5), (10, 5), (10, 10)):
        for backend in ("numba", "numpy"):
            m = BSC(10, h_prime=hp, gamma=g, n_iter=100, random_state=0, backend=backend)
            m.partial_fit(Y)  # compile / warm up
            reps = 5
            t0 = time.perf_counter()
            for _ in range(reps):
                m.partial_fit(Y)
            dt = (time.perf_counter() - t0) / reps
            rows.append({"h_prime": hp, "gamma": g, "states": m._ss.n_states, backend: dt})
    merged = {}
    for r in rows:
        merged.setdefault((r["h_prime"], r["gamma"]), {}).update(r)
    print("\n| H' | gamma | states per point | numba s/iter | numpy s/iter |")
    print("|---|---|---|---|---|")
    for (hp, g), r in merged.items():
        print(f"| {hp} | {g} | {r['states']} | {r['numba']:.3f} | {r['numpy']:.3f} |")
    return list(merged.values())


def part_device(args):
    """BSC bars with W on device arrays (w_range 16, full EM step, nominal pulse rule)."""
    presets = {
        "ideal-2048": devices.get("ideal", c2c_sigma=0, levels_ltp=2048, levels_ltd=2048),
        "ideal-64": devices.get("ideal", c2c_sigma=0, levels_ltp=64, levels_ltd=64),
        "ag_a_si": devices.get("ag_a_si"),
        "epiram": devices.get("epiram"),
    }
    rows = []
    for seed in args.seeds:
        rows.append({"device": "float", **bars_run("bsc", seed, args.steps)})
        print(json.dumps(rows[-1]), flush=True)
        for label, dev in presets.items():
            arr = devices.DeviceArray((25, 10), dev, w_max=16.0, seed=seed)
            rows.append({"device": label, **bars_run("bsc", seed, args.steps, weights=arr)})
            print(json.dumps(rows[-1]), flush=True)
    print("\n| weights | seeds | recovered bars per seed | sigma | pi | pulses per device |")
    print("|---|---|---|---|---|---|")
    for label in ["float", *presets]:
        rs = [r for r in rows if r["device"] == label]
        rec = ", ".join(str(r["recovered"]) for r in rs)
        sig = ", ".join(f"{r['sigma']:.2f}" for r in rs)
        pis = ", ".join(f"{r['pi']:.3f}" for r in rs)
        per_dev = np.mean([r["pulses"] for r in rs]) / 500
        print(f"| {label} | {len(rs)} | {rec} | {sig} | {pis} | {per_dev:.0f} |")
    return rows


def part_lca(args):
    """LCA codes (non-negative threshold 0.5) of bars images (pi 0.2, noise 0.2) with the unit-norm
    bars dictionary: float against presets programmed with read-verify and open loop, over the
    device instances ``--seeds`` (the max code difference is a max statistic: one device's draw
    can move it, so the table reports the median over instances and the spread). One
    measurement is :func:`synapse_sim.studies.lca_device.lca_point`."""
    rows = []
    for name in ("ideal", "ag_a_si", "epiram", "taox_hfox"):
        for mode in ("verify", "open_loop"):
            per = [
                lca_point(LCAConfig(device=name, program=mode, seed=seed)) for seed in args.seeds
            ]
            if not rows:
                rows.append({"weights": "float", "rel_error": per[0]["rel_error_float"],
                             "active": per[0]["active_float"], "dcode": 0.0})  # fmt: skip
            med = {k: float(np.median([r[k] for r in per])) for k in per[0]}
            rows.append(
                {
                    "weights": f"{name} ({mode})",
                    "seeds": list(args.seeds),
                    "rel_error": med["rel_error"],
                    "active": med["active"],
                    "dcode": med["code_diff"],
                    "dcode_per_seed": [r["code_diff"] for r in per],
                    "w_error": med["w_error"],
                }
            )
    print(f"\nmedians over device seeds {list(args.seeds)}")
    print(
        "| dictionary | rel. reconstruction error | active fraction | max code diff / max | range |"
    )
    print("|---|---|---|---|---|")
    for r in rows:
        per = r.get("dcode_per_seed", [0.0])
        rng = f"{min(per):.3f}-{max(per):.3f}"
        print(
            f"| {r['weights']} | {r['rel_error']:.4f} | {r['active']:.3f} | {r['dcode']:.3f} "
            f"| {rng} |"
        )
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--part", choices=("recovery", "timing", "device", "lca"), required=True)
    p.add_argument("--models", nargs="+", default=["bsc"], choices=sorted(MODELS))
    p.add_argument("--seeds", type=_seeds, default=[0])
    p.add_argument("--steps", type=int, default=None, help="shorten the EM runs")
    p.add_argument("--n", type=int, default=None, help="number of points (default: published)")
    p.add_argument(
        "--T",
        type=_anneal,
        default=None,
        help="temperature curve T0:END (T0 -> 1 at fraction END of the steps), e.g. 5:0.8",
    )
    p.add_argument("--out", default="runs/sparse_study")
    args = p.parse_args(argv)
    fn = {"recovery": part_recovery, "timing": part_timing, "device": part_device}.get(
        args.part, part_lca
    )
    rows = fn(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = args.part if args.part != "recovery" else "recovery_" + "_".join(args.models)
    if args.T is not None:
        tag += f"_T{args.T[0][1]:g}-{args.T[1][0]:g}"
    (out / f"{tag}.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
