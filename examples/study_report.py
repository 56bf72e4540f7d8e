"""Tables for docs/REPRODUCTION.md from the study's results files.

Usage: python examples/study_report.py runs/study [--ablation runs/study_refresh_ideal]

Reads ``runs/study/seed*/results.h5`` (examples/neurosim_study.py) and prints, per preset and
rule, the final test accuracy and the mean of the last three epochs (mean and standard deviation
over seeds), the published NeuroSim values beside them, the refresh cost, and the checks of the
expected findings of specs/adaptive_bp.md section 6.2 that this study can answer.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import devices
from synapse_sim.results.store import read_results

PRESETS = (
    "ag_a_si",
    "taox_hfox",
    "taox_tio2",
    "pcmo",
    "alox_hfo2",
    "gst_pcm",
    "epiram",
    "hzo_fefet",
    "ideal",
)
N_SYN = 400 * 100 + 100 * 10


def _load(folder: Path) -> dict:
    runs = {}
    for f in sorted(folder.glob("seed*/results.h5")):
        res = read_results(f)
        for label, r in res["runs"].items():
            if not r["complete"]:
                continue
            acc = np.asarray(r["metrics"]["test_accuracy"]) * 100
            runs.setdefault(label, []).append(
                {
                    "final": acc[-1],
                    "last3": acc[-3:].mean(),
                    "epochs": acc.size,
                    "refreshes": np.mean(r["metrics"]["refreshes"]),
                    "resets": r["final"].get("total_resets", 0) / acc.size,
                    "prog": r["final"].get("total_pulses_prog", 0) / acc.size,
                    "pulses": np.mean(r["metrics"]["pulses"]),
                }
            )
    return runs


def _ms(vals, key):
    v = np.array([x[key] for x in vals])
    return (v.mean(), v.std(ddof=1) if v.size > 1 else 0.0, v.size)


def _fmt(vals, key="last3"):
    if not vals:
        return "-"
    m, s, n = _ms(vals, key)
    return f"{m:.1f} ± {s:.1f}" if n > 1 else f"{m:.1f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--ablation", type=Path, default=None)
    args = ap.parse_args()
    runs = _load(args.folder)
    abl = {}
    if args.ablation is not None and (args.ablation / "results.h5").exists():
        for label, r in read_results(args.ablation / "results.h5")["runs"].items():
            acc = np.asarray(r["metrics"]["test_accuracy"]) * 100
            abl[label.split("-")[0]] = [{"final": acc[-1], "last3": acc[-3:].mean()}]
    pub = devices.published()["presets"]
    n_seeds = len(runs.get("software", []))
    print(
        f"seeds: {n_seeds}; accuracy in % on the 1,000 MNIST-5k test images, mean of the "
        "last 3 epochs (± std over seeds)\n"
    )
    print(
        "| preset | NeuroSim V3.0 | NeuroSim V2.0 | bidirectional | unidirectional | "
        "unidirectional, ideal refresh (seed 0) | uni - bi |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for p in PRESETS:
        v3 = pub[p]["online_accuracy_v3"]
        v2 = pub[p]["online_accuracy_v2"]
        bi, uni = runs.get(f"{p}-bidirectional", []), runs.get(f"{p}-unidirectional", [])
        d = _ms(uni, "last3")[0] - _ms(bi, "last3")[0] if bi and uni else float("nan")
        print(
            f"| {p} | {'-' if v3 is None else f'{v3 * 100:.0f}'} | "
            f"{'-' if v2 is None else f'{v2 * 100:.1f}'} | {_fmt(bi)} | {_fmt(uni)} | "
            f"{_fmt(abl.get(p, []))} | {d:+.1f} |"
        )
    bs = _fmt(runs.get("ideal-bidirectional-stoch", []))
    us = _fmt(runs.get("ideal-unidirectional-stoch", []))
    print(f"| ideal, stochastic rounding | - | - | {bs} | {us} | - | - |")
    print(f"| software twin | 96-97 (full MNIST) | | {_fmt(runs.get('software', []))} | | | |")
    print("\nfinal-epoch accuracy (noisy presets swing by several points between epochs):\n")
    print("| preset | bidirectional | unidirectional |")
    print("|---|---:|---:|")
    for p in PRESETS:
        print(
            f"| {p} | {_fmt(runs.get(f'{p}-bidirectional', []), 'final')} | "
            f"{_fmt(runs.get(f'{p}-unidirectional', []), 'final')} |"
        )
    print("\nrefresh cost of the unidirectional rule, per synapse and epoch (mean over seeds):\n")
    print("| preset | levels | refreshes | RESETs | programming pulses | update pulses |")
    print("|---|---:|---:|---:|---:|---:|")
    for p in PRESETS:
        uni = runs.get(f"{p}-unidirectional", [])
        if not uni:
            continue
        print(
            f"| {p} | {devices.get(p).levels_ltp} | {_ms(uni, 'refreshes')[0] / N_SYN:.2f} | "
            f"{_ms(uni, 'resets')[0] / N_SYN:.2f} | {_ms(uni, 'prog')[0] / N_SYN:.1f} | "
            f"{_ms(uni, 'pulses')[0] / N_SYN:.1f} |"
        )
    # checks
    g = {k: _ms(v, "last3")[0] for k, v in runs.items()}
    print("\nchecks (mean of the last 3 epochs, mean over seeds):")
    print(
        f"- X1 ideal stochastic rounding vs software: "
        f"{g['ideal-bidirectional-stoch'] - g['software']:+.1f} points (target within 1); "
        f"round-half-up: {g['ideal-bidirectional'] - g['software']:+.1f}"
    )
    for p, margin in (
        ("pcmo", 5),
        ("alox_hfo2", 10),
        ("hzo_fefet", -1),
        ("gst_pcm", -1),
        ("epiram", -1),
        ("ag_a_si", None),
    ):
        d = g[f"{p}-unidirectional"] - g[f"{p}-bidirectional"]
        want = "report sign" if margin is None else (f">= {margin}" if margin > 0 else ">= -1")
        print(f"- X3 {p}: uni - bi = {d:+.1f} points (expected {want})")
    for p in ("epiram", "gst_pcm"):
        print(
            f"- X3 {p}: uni vs software = {g[f'{p}-unidirectional'] - g['software']:+.1f} "
            "(expected within 3)"
        )
    lo = max(g["pcmo-bidirectional"], g["alox_hfo2-bidirectional"])
    hi = min(g["epiram-bidirectional"], g["gst_pcm-bidirectional"])
    print(f"- X5 min(epiram, gst_pcm) - max(pcmo, alox_hfo2) = {hi - lo:+.1f} (expected > 30)")
    order = sorted((p for p in PRESETS if p != "ideal"), key=lambda p: -g[f"{p}-bidirectional"])
    print("- X5 order, bidirectional (ours): " + " > ".join(order))
    pv = sorted(
        (p for p in PRESETS if pub[p]["online_accuracy_v3"] is not None),
        key=lambda p: -pub[p]["online_accuracy_v3"],
    )
    print("- order, NeuroSim V3.0: " + " > ".join(pv))


if __name__ == "__main__":
    main()
