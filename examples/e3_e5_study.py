"""E3 / X4 and E5 / X9 of specs/adaptive_bp.md: run the three sweeps and print the tables.

* E3 / X4 (``examples/e3_d2d.toml``): device-to-device spread of the nonlinearity labels
  (``sigma_nl`` 0 and 1) on ag_a_si for the bidirectional, unidirectional and adaptive rules,
  5 device instances. X4: the drop from ``sigma_nl = 0`` to ``1`` is no larger for unidirectional
  and adaptive than for bidirectional (1 point tolerance).
* E5 / X9 (``examples/e5_baseline.toml``, ``examples/e5_adaptive.toml``): the unidirectional rule
  with and without A1 (``pulse_count="state"``) on ag_a_si, pcmo and hzo_fefet, 5 device seeds.
  X9: A1 raises accuracy on pcmo and hzo_fefet and may lower it on ag_a_si.
* The rest of the E3 grid (the ``sigma_nl`` axis at no spread, the Gmin/Gmax spread axis at
  ``sigma_nl = 0``, and their product: the spec's 4 x 3 grid, on ag_a_si and epiram), 10 more
  device instances for X4, and the adaptive
  rule's other knobs (``n_max``, ``theta``, ``refresh_threshold``, one at a time) on ag_a_si and
  pcmo: :data:`SWEEPS` derives these from the TOML files.

``python examples/e3_e5_study.py --out runs/e3e5 --workers 2`` runs what is missing (resumable)
and prints the markdown tables of docs/REPRODUCTION.md ("E3 / X4 and E5 / X9");
``--report`` only prints them from finished sweeps.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import tomllib

from synapse_sim.sweep import run_sweep, sweep_records

HERE = Path(__file__).parent
SPREAD = "sigma_gmin+sigma_gmax"
KNOBS = {"n_max": [4, 16, 64], "theta": [0.25, 0.75], "refresh_threshold": [0.8, 0.95]}
#: name -> (TOML file, axes that replace the file's axes but its rule or None, changes to its
#: sections); in run order
SWEEPS = {
    "e3": ("e3_d2d.toml", None, {}),
    "e5_base": ("e5_baseline.toml", None, {}),
    "e5_a1": ("e5_adaptive.toml", None, {}),
    # the rest of the spec's E3 grid, cut: the sigma_nl axis at no spread, the spread axis at
    # sigma_nl = 0 (not their product)
    "e3_nl_more": ("e3_d2d.toml", {"device": ["ag_a_si", "epiram"], "sigma_nl": [0.5, 2.0]}, {}),
    "e3_spread": ("e3_d2d.toml", {"device": ["ag_a_si", "epiram"], SPREAD: [0.1, 0.2]}, {}),
    "e3_epiram": ("e3_d2d.toml", {"device": ["epiram"], "sigma_nl": [0.0, 1.0]}, {}),
    # the product of the two axes (with the sweeps above: the spec's full 4 x 3 grid)
    "e3_product": (
        "e3_d2d.toml",
        {"device": ["ag_a_si", "epiram"], "sigma_nl": [0.5, 1.0, 2.0], SPREAD: [0.1, 0.2]},
        {},
    ),
    # X4 with 10 more device instances (device_seed 5..14) of e3_d2d.toml's points
    "e3_x4_more": ("e3_d2d.toml", None, {"sweep": {"instances": 10, "first_device_seed": 5}}),
    # E5's other knobs, one at a time, on the named adaptive rule (n_max 16, theta 0.5,
    # refresh threshold 0.9 by default)
    **{
        f"e5_{knob}": (
            "e5_baseline.toml",
            {"device": ["ag_a_si", "pcmo"], knob: values},
            {"run": {"rule": "adaptive"}},
        )
        for knob, values in KNOBS.items()
    },
}
RULES = ("bidirectional", "unidirectional", "adaptive")


def spec_of(name: str) -> dict:
    """The sweep spec (dict) of ``name`` in :data:`SWEEPS`."""
    toml, axes, changes = SWEEPS[name]
    with open(HERE / toml, "rb") as f:
        spec = tomllib.load(f)
    for section, values in changes.items():
        spec[section].update(values)
    if axes is not None or changes:
        spec["sweep"]["name"] = name
    if axes is not None:
        spec["run"].pop("device", None)
        rest = {k: v for k, v in spec["axes"].items() if k not in ("sigma_nl", SPREAD)}
        spec["axes"] = {**rest, **{k: {"values": v} for k, v in axes.items()}}
    return spec


def _acc(out: Path, *names: str, concat: bool = False) -> dict:
    """``(device, rule, sigma_nl, spread) -> final test accuracies (%) in instance order`` of
    the finished sweeps among ``names``: a point run twice is taken once, or with ``concat``
    (sweeps of other device seeds) its instances are appended in the order of ``names``."""
    acc: dict = {}
    for name in names:
        if not (out / name / "sweep.h5").exists():
            continue
        recs = sorted(sweep_records(out / name), key=lambda r: (r.get("point", -1), r["instance"]))
        got: dict = {}
        for r in recs:
            if r.get("device") == "software" or not r.get("complete"):
                continue
            p = r["params"]
            key = (r["device"], r["rule"], p.get("sigma_nl", 0.0), p.get(SPREAD, 0.0))
            got.setdefault(key, []).append(100 * r["final_test_accuracy"])
        if concat:
            for k, v in got.items():
                acc[k] = acc.get(k, []) + v
        else:
            acc = {**got, **acc}
    return {k: np.asarray(v) for k, v in acc.items()}


def _pm(a) -> str:
    a = np.asarray(a, dtype=float)
    return f"{a.mean():.1f} ± {a.std(ddof=1):.1f}" if a.size > 1 else f"{a.mean():.1f}"


def e3_table(out: Path) -> str:
    acc = _acc(out, "e3", "e3_x4_more", concat=True)
    lines = [
        "| rule | instances | sigma_nl = 0 | sigma_nl = 1 | drop (0 -> 1) "
        "| drop - bidirectional's |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    drop = {}
    for rule in RULES:
        a0, a1 = acc.get(("ag_a_si", rule, 0.0, 0.0)), acc.get(("ag_a_si", rule, 1.0, 0.0))
        if a0 is None or a1 is None or len(a0) != len(a1):
            lines.append(f"| {rule} | not run | | | | |")
            continue
        drop[rule] = a0 - a1  # paired by device instance (same device_seed)
        rel = ""
        if rule != "bidirectional" and "bidirectional" in drop:
            rel = _pm(drop[rule] - drop["bidirectional"])  # same device seeds, paired
        lines.append(f"| {rule} | {a0.size} | {_pm(a0)} | {_pm(a1)} | {_pm(drop[rule])} | {rel} |")
    if len(drop) == 3:
        ok = all(drop[r].mean() <= drop["bidirectional"].mean() + 1.0 for r in RULES[1:])
        lines.append(
            f"\nX4 (drop of unidirectional and adaptive <= bidirectional's + 1): "
            f"{'holds' if ok else 'does not hold'}"
        )
    return "\n".join(lines)


def grid_table(out: Path) -> str:
    """Every E3 point that ran: rows device x rule, columns sigma_nl (spread 0) then spread
    (sigma_nl 0)."""
    acc = _acc(out, "e3", "e3_nl_more", "e3_spread", "e3_epiram")
    cols = [(s, 0.0) for s in (0.0, 0.5, 1.0, 2.0)] + [(0.0, g) for g in (0.1, 0.2)]
    head = [f"sigma_nl {s:g}" if g == 0 else f"spread {g:g}" for s, g in cols]
    lines = ["| device | rule | " + " | ".join(head) + " |", "|---|---|" + "---:|" * len(cols)]
    for dev in ("ag_a_si", "epiram"):
        for rule in RULES:
            cells = [_pm(acc[(dev, rule, *c)]) if (dev, rule, *c) in acc else "-" for c in cols]
            lines.append(f"| {dev} | {rule} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def product_table(out: Path) -> str:
    """The spec's full E3 grid: rows device x rule x Gmin/Gmax spread, columns sigma_nl."""
    acc = _acc(out, "e3", "e3_nl_more", "e3_spread", "e3_epiram", "e3_product")
    nls = (0.0, 0.5, 1.0, 2.0)
    lines = [
        "| device | rule | spread | " + " | ".join(f"sigma_nl {s:g}" for s in nls) + " |",
        "|---|---|---:|" + "---:|" * len(nls),
    ]
    for dev in ("ag_a_si", "epiram"):
        for rule in RULES:
            for g in (0.0, 0.1, 0.2):
                cells = [_pm(acc[(dev, rule, s, g)][:5]) if (dev, rule, s, g) in acc else "-"
                         for s in nls]  # fmt: skip
                lines.append(f"| {dev} | {rule} | {g:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def e5_table(out: Path) -> str:
    base, a1 = _acc(out, "e5_base"), _acc(out, "e5_a1")
    lines = [
        "| preset | unidirectional (A1 off) | + A1 (pulse_count=state) | gain (paired by seed) "
        "| seeds where A1 wins |",
        "|---|---:|---:|---:|---:|",
    ]
    for dev in ("ag_a_si", "pcmo", "hzo_fefet"):
        b, s = (
            base.get((dev, "unidirectional", 0.0, 0.0)),
            a1.get((dev, "unidirectional", 0.0, 0.0)),
        )
        if b is None or s is None or len(b) != len(s):
            lines.append(f"| {dev} | not run | | | |")
            continue
        g = s - b
        lines.append(f"| {dev} | {_pm(b)} | {_pm(s)} | {_pm(g)} | {int((g > 0).sum())}/{g.size} |")
    return "\n".join(lines)


def knob_table(out: Path) -> str:
    """The adaptive rule with one knob changed (E5), rows preset x knob value."""
    lines = ["| preset | knob | value | accuracy | n |", "|---|---|---:|---:|---:|"]
    for knob in KNOBS:
        if not (out / f"e5_{knob}" / "sweep.h5").exists():
            continue
        acc: dict = {}
        for r in sweep_records(out / f"e5_{knob}"):
            if r.get("complete") and r.get("device") != "software":
                key = (r["device"], r["params"][knob])
                acc.setdefault(key, []).append(100 * r["final_test_accuracy"])
        for (dev, value), a in sorted(acc.items()):
            lines.append(f"| {dev} | {knob} | {value:g} | {_pm(a)} | {len(a)} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/e3e5"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--report", action="store_true", help="only print the tables")
    ap.add_argument("--only", nargs="+", choices=list(SWEEPS), help="run only these sweeps")
    args = ap.parse_args(argv)
    if not args.report:
        for name in args.only or SWEEPS:
            run_sweep(spec_of(name), args.out / name, workers=args.workers, resume=True)
    print("E3 / X4: ag_a_si, final test accuracy (%), mean ± std over the device instances\n")
    print(e3_table(args.out))
    print("\nE3 grid: final test accuracy (%), mean ± std over 5 device instances ('-': not run)\n")
    print(grid_table(args.out))
    print("\nE3 full grid (sigma_nl x Gmin/Gmax spread): final test accuracy (%), mean ± std over")
    print("the first 5 device instances ('-': not run)\n")
    print(product_table(args.out))
    print("\nE5 / X9: final test accuracy (%), mean ± std over 5 device seeds\n")
    print(e5_table(args.out))
    print(
        "\nE5 knobs of the adaptive rule: final test accuracy (%), mean ± std over device seeds\n"
    )
    print(knob_table(args.out))


if __name__ == "__main__":
    main()
