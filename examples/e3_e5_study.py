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
* The same with 5 training seeds (:data:`SEEDED`, ``--only x4_seeds x9_base_seeds x9_a1_seeds
  e5_n_max_seeds e5_theta_seeds e5_refresh_threshold_seeds``, and the E3 grid's
  ``e3_*_seeds``): each sweep above with the axis ``seed`` (the training seed: initial weights,
  data order) over 0..4, so every cell has 5 training seeds x 5 device seeds = 25 runs; the
  tables give mean ± std over the 25, the claims' differences paired by both seeds with their
  standard errors, and how much of the spread is the training seed's and how much the device
  seed's. Training seed 0 reruns the single-seed sweeps bit for bit (checked where both ran).

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
#: training seeds (initial weights, data order) of the ``*_seeds`` sweeps; each is paired with
#: every device seed 0..4 of the sweep it reruns
TRAIN_SEEDS = (0, 1, 2, 3, 4)
#: name -> the sweep of :data:`SWEEPS` it reruns with the training seed as an axis (``seed``,
#: :data:`TRAIN_SEEDS`); in run order: X4, X9, then E5's knobs
SEEDED = {
    "x4_seeds": "e3",
    "x9_base_seeds": "e5_base",
    "x9_a1_seeds": "e5_a1",
    **{f"e5_{knob}_seeds": f"e5_{knob}" for knob in KNOBS},
    # the rest of the E3 grid (with x4_seeds: the spec's full 4 x 3 grid)
    **{f"{base}_seeds": base for base in ("e3_nl_more", "e3_spread", "e3_epiram", "e3_product")},
}
#: the ``*_seeds`` sweeps of the claims X4, X9 and E5 (the E3 grid's are the rest)
CLAIMS = tuple(name for name in SEEDED if not name.startswith("e3_"))
SWEEPS.update({name: SWEEPS[base] for name, base in SEEDED.items()})
RULES = ("bidirectional", "unidirectional", "adaptive")


def spec_of(name: str) -> dict:
    """The sweep spec (dict) of ``name`` in :data:`SWEEPS` (a ``*_seeds`` sweep of
    :data:`SEEDED`: its base sweep with the axis ``seed`` over :data:`TRAIN_SEEDS` in place of
    ``train.seed``)."""
    if name in SEEDED:
        spec = spec_of(SEEDED[name])
        spec["sweep"]["name"] = name
        spec["train"].pop("seed", None)
        spec["axes"]["seed"] = {"values": list(TRAIN_SEEDS)}
        return spec
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
    return _product_table({k: v[:5] for k, v in acc.items()})


def _product_table(acc: dict) -> str:
    """The E3 grid's table of ``(device, rule, sigma_nl, spread) -> accuracies``: rows device
    x rule x Gmin/Gmax spread, columns sigma_nl, mean ± std ('-': not run)."""
    nls = (0.0, 0.5, 1.0, 2.0)
    lines = [
        "| device | rule | spread | " + " | ".join(f"sigma_nl {s:g}" for s in nls) + " |",
        "|---|---|---:|" + "---:|" * len(nls),
    ]
    for dev in ("ag_a_si", "epiram"):
        for rule in RULES:
            for g in (0.0, 0.1, 0.2):
                cells = [_pm(acc[(dev, rule, s, g)]) if (dev, rule, s, g) in acc else "-"
                         for s in nls]  # fmt: skip
                lines.append(f"| {dev} | {rule} | {g:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def e5_table(out: Path) -> str:
    return _x9_table(_acc(out, "e5_base"), _acc(out, "e5_a1"), (0.0, 0.0))


def _x9_table(base: dict, a1: dict, rest: tuple, seeded: bool = False) -> str:
    """X9's table of unidirectional without (``base``) and with A1 (``a1``) accuracies, keyed
    ``(device, "unidirectional", *rest)``; gains paired by seed; ``seeded``: (training seed x
    device seed) tables, with the gain's standard errors and a verdict."""
    head = ["preset", "unidirectional (A1 off)", "+ A1 (pulse_count=state)"]
    head += ["gain, SE", "runs where A1 wins", "A1"] if seeded else ["gain (paired by seed)"]
    head = ["preset", "runs", *head[1:]] if seeded else [*head, "seeds where A1 wins"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1 - seeded)]
    lines[-1] += "---|" if seeded else ""
    for dev in ("ag_a_si", "pcmo", "hzo_fefet"):
        b, s = base.get((dev, "unidirectional", *rest)), a1.get((dev, "unidirectional", *rest))
        if b is None or s is None or np.shape(b) != np.shape(s):
            lines.append(f"| {dev} | not run |" + " |" * (len(head) - 2))
            continue
        g = s - b
        wins = f"{int((g > 0).sum())}/{g.size}"
        if not seeded:
            lines.append(f"| {dev} | {_pm(b)} | {_pm(s)} | {_pm(g)} | {wins} |")
            continue
        se = max(_se(g))
        verdict = (
            "raises" if g.mean() - 2 * se > 0 else "lowers" if g.mean() + 2 * se < 0
            else "no difference beyond 2 SE"
        )  # fmt: skip
        lines.append(
            f"| {dev} | {g.size} | {_pm(b)} | {_pm(s)} | {_diff(g)} | {wins} | {verdict} |"
        )
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


def seeded_acc(out: Path, name: str) -> dict:
    """``(device, rule, other params) -> (training seed x device instance) accuracies (%)`` of
    the finished ``*_seeds`` sweep ``name``; ``other params`` are the point's swept values but
    the device, the rule and the seed, as sorted ``(name, value)`` pairs. Points with a run
    missing are left out."""
    if not (out / name / "sweep.h5").exists():
        return {}
    recs = [r for r in sweep_records(out / name) if r["point"] is not None]
    seeds = sorted({r["params"]["seed"] for r in recs})
    inst = sorted({r["instance"] for r in recs})
    cells: dict = {}
    for r in recs:
        if not r["complete"]:
            continue
        p = r["params"]
        other = tuple(sorted((k, v) for k, v in p.items() if k not in ("device", "rule", "seed")))
        acc = 100 * r["final_test_accuracy"]
        cells.setdefault((r["device"], r["rule"], other), {})[(p["seed"], r["instance"])] = acc
    return {
        key: np.array([[runs[(t, i)] for i in inst] for t in seeds])
        for key, runs in cells.items()
        if len(runs) == len(seeds) * len(inst)
    }


def _se(d) -> tuple[float, float]:
    """Standard error of the mean of paired differences ``d`` (training seed x device
    instance): over all runs, and from the training seeds' means (the runs of one training
    seed share its initial weights and data order, so they are not independent)."""
    d = np.asarray(d, dtype=float)
    return d.std(ddof=1) / np.sqrt(d.size), d.mean(axis=1).std(ddof=1) / np.sqrt(d.shape[0])


def _diff(d) -> str:
    """``mean (SE a / b)`` of paired differences: SE over all runs / from the training seeds'
    means."""
    a, b = _se(d)
    return f"{np.mean(d):+.1f} ({a:.1f} / {b:.1f})"


def x4_seeds_table(out: Path) -> str:
    """X4 with every (training seed, device seed) pair; drops paired by both seeds."""
    acc = seeded_acc(out, "x4_seeds")
    lines = [
        "| rule | runs | sigma_nl = 0 | sigma_nl = 1 | drop (0 -> 1), SE | "
        "drop - bidirectional's, SE | X4 (<= 1) |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    drop = {}
    for rule in RULES:
        a0 = acc.get(("ag_a_si", rule, (("sigma_nl", 0.0),)))
        a1 = acc.get(("ag_a_si", rule, (("sigma_nl", 1.0),)))
        if a0 is None or a1 is None or a0.shape != a1.shape:
            lines.append(f"| {rule} | not run | | | | | |")
            continue
        drop[rule] = a0 - a1
        rel = verdict = ""
        if rule != "bidirectional" and "bidirectional" in drop:
            d = drop[rule] - drop["bidirectional"]
            rel, se = _diff(d), max(_se(d))
            m = d.mean()
            verdict = (
                "holds" if m + 2 * se <= 1 else "misses" if m - 2 * se > 1
                else f"{'holds' if m <= 1 else 'misses'} by the mean, not beyond 2 SE"
            )  # fmt: skip
        lines.append(
            f"| {rule} | {a0.size} | {_pm(a0)} | {_pm(a1)} | {_diff(drop[rule])} | {rel} "
            f"| {verdict} |"
        )
    return "\n".join(lines)


def x9_seeds_table(out: Path) -> str:
    """X9 with every (training seed, device seed) pair; gains paired by both seeds."""
    base, a1 = seeded_acc(out, "x9_base_seeds"), seeded_acc(out, "x9_a1_seeds")
    return _x9_table(base, a1, ((),), seeded=True)


#: the named adaptive rule's defaults (the ``e5_n_max`` point n_max = 16 is the default rule)
KNOB_DEFAULT = {"n_max": 16, "theta": 0.5, "refresh_threshold": 0.9}


def e5_seeds_table(out: Path) -> str:
    """The adaptive rule with one knob changed, every (training seed, device seed) pair; the
    change paired by both seeds with the default rule."""
    acc: dict = {}
    for knob in KNOBS:
        for (dev, _, params), a in seeded_acc(out, f"e5_{knob}_seeds").items():
            acc[(dev, knob, dict(params)[knob])] = a
    lines = [
        "| preset | knob | value | runs | accuracy | change vs default, SE | beyond 2 SE |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for dev in ("ag_a_si", "pcmo"):
        ref = acc.get((dev, "n_max", KNOB_DEFAULT["n_max"]))
        if ref is not None:
            lines.append(f"| {dev} | default | | {ref.size} | {_pm(ref)} | | |")
        for knob, values in KNOBS.items():
            for v in values:
                a = acc.get((dev, knob, v))
                if v == KNOB_DEFAULT[knob] or a is None:
                    continue
                if ref is None or ref.shape != a.shape:
                    lines.append(f"| {dev} | {knob} | {v:g} | {a.size} | {_pm(a)} | | |")
                    continue
                d = a - ref
                big = "yes" if abs(d.mean()) > 2 * max(_se(d)) else "no"
                lines.append(
                    f"| {dev} | {knob} | {v:g} | {a.size} | {_pm(a)} | {_diff(d)} | {big} |"
                )
    return "\n".join(lines)


def variance_parts(a) -> dict:
    """Spread of one (training seed x device seed) table ``a``: ``all`` (std over all runs),
    ``train`` and ``device`` (std of the training seeds' means over device seeds, and of the
    device seeds' means over training seeds), ``resid`` (std of the interaction: what neither
    seed explains alone), and ``train_comp`` and ``device_comp``, the two-way random-effects
    estimates of the training-seed and device-seed components (std; a seed's means also carry
    the residual divided by the other seed's count, which these take out; 0 where negative)."""
    a = np.asarray(a, dtype=float)
    nt, nd = a.shape
    t, d = a.mean(axis=1).std(ddof=1), a.mean(axis=0).std(ddof=1)
    res = a - a.mean(axis=1, keepdims=True) - a.mean(axis=0, keepdims=True) + a.mean()
    ms_r = (res**2).sum() / ((nt - 1) * (nd - 1))
    return {
        "all": a.std(ddof=1),
        "train": t,
        "device": d,
        "resid": np.sqrt(ms_r),
        "train_comp": np.sqrt(max(0.0, t**2 - ms_r / nd)),
        "device_comp": np.sqrt(max(0.0, d**2 - ms_r / nt)),
    }


def variance_table(out: Path) -> str:
    """Where the spread of each cell comes from (:func:`variance_parts`)."""
    cells, first, same = [], {}, []
    for name in CLAIMS:
        for (dev, rule, params), a in seeded_acc(out, name).items():
            what = ", ".join(f"{k} {v:g}" for k, v in params) or "-"
            label = f"{name} {dev} {rule} {what}".removesuffix(" -")
            if a.tobytes() in first:  # the same runs, bit for bit, as an earlier cell
                same.append(f"{label} = {first[a.tobytes()]}")
                continue
            first[a.tobytes()] = label
            cells.append((name, dev, rule, what, a))
    keys = ("all", "train", "device", "resid", "train_comp", "device_comp")
    lines = [
        "| sweep | device | rule | point | runs | std (all) | std of training-seed means "
        "| std of device-seed means | residual std | training-seed component "
        "| device-seed component |",
        "|---|---|---|---|---:|" + "---:|" * len(keys),
    ]
    parts = []
    for name, dev, rule, what, a in cells:
        v = variance_parts(a)
        parts.append(v)
        lines.append(
            f"| {name} | {dev} | {rule} | {what} | {a.size} | "
            + " | ".join(f"{v[k]:.1f}" for k in keys)
            + " |"
        )
    if parts:
        med = {k: np.median([v[k] for v in parts]) for k in keys}
        lines.append(
            f"\nMedian over the {len(parts)} cells: std of training-seed means "
            f"{med['train']:.1f}, of device-seed means {med['device']:.1f}, residual "
            f"{med['resid']:.1f}; components: training seed {med['train_comp']:.1f}, device "
            f"seed {med['device_comp']:.1f}. The training-seed means spread more in "
            f"{sum(v['train'] > v['device'] for v in parts)} of {len(parts)} cells."
        )
    if same:
        lines.append("\nLeft out, the same 25 accuracies as a cell above: " + "; ".join(same) + ".")
    return "\n".join(lines)


def _grid_seeds(out: Path) -> dict:
    """``(device, rule, sigma_nl, spread) -> (training seed x device seed) accuracies`` of the
    E3 grid's ``*_seeds`` sweeps."""
    acc: dict = {}
    for name in ("x4_seeds", *(n for n in SEEDED if n.startswith("e3_"))):
        for (dev, rule, params), a in seeded_acc(out, name).items():
            p = dict(params)
            acc[(dev, rule, p.get("sigma_nl", 0.0), p.get(SPREAD, 0.0))] = a
    return acc


def product_seeds_table(out: Path) -> str:
    """The spec's full E3 grid with every (training seed, device seed) pair: rows device x
    rule x Gmin/Gmax spread, columns sigma_nl."""
    return _product_table(_grid_seeds(out))


def grid_effects_table(out: Path) -> str:
    """The E3 grid's two axes, per device and rule, paired by both seeds: spread 0.1 and 0.2
    against none (averaged over the four sigma_nl), and sigma_nl 2 against 0 (averaged over
    the three spreads); mean (SE over all runs / from the training seeds' means)."""
    acc = _grid_seeds(out)
    nls, spreads = (0.0, 0.5, 1.0, 2.0), (0.0, 0.1, 0.2)

    def effect(dev, rule, pairs):
        if any((dev, rule, *c) not in acc for pair in pairs for c in pair):
            return "-"
        d = np.mean([acc[(dev, rule, *b)] - acc[(dev, rule, *a)] for a, b in pairs], axis=0)
        return _diff(d)

    lines = [
        "| device | rule | spread 0.1 - none | spread 0.2 - none | sigma_nl 2 - 0 |",
        "|---|---|---:|---:|---:|",
    ]
    for dev in ("ag_a_si", "epiram"):
        for rule in RULES:
            cells = [effect(dev, rule, [((s, 0.0), (s, g)) for s in nls]) for g in spreads[1:]]
            cells.append(effect(dev, rule, [((0.0, g), (2.0, g)) for g in spreads]))
            lines.append(f"| {dev} | {rule} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def seed0_check(out: Path) -> str:
    """Whether the training-seed-0 runs of each ``*_seeds`` sweep equal, bit for bit (every
    epoch's test accuracy, the pulses), the runs of the sweep it reruns, where both are in
    ``out``."""

    def runs(name, seed0):
        got = {}
        for r in sweep_records(out / name):
            if r.get("device") == "software" or not r["complete"]:
                continue
            p = dict(r["params"])
            if seed0 and p.pop("seed") != 0:
                continue
            key = (r["device"], r["rule"], tuple(sorted(p.items())), r["seed"])
            got[key] = (list(r["test_accuracy"]), r["pulses"])
        return got

    lines = []
    for name, base in SEEDED.items():
        if not all((out / n / "sweep.h5").exists() for n in (name, base)):
            continue
        new, old = runs(name, True), runs(base, False)
        same = sum(new.get(k) == v for k, v in old.items())
        lines.append(
            f"{name}: {same} of {len(old)} runs of {base} equal bit for bit"
            + ("" if len(new) == len(old) else f" ({len(new)} seed-0 runs)")
        )
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
    if not any((args.out / name / "sweep.h5").exists() for name in SEEDED):
        return
    n = f"{len(TRAIN_SEEDS)} training seeds x 5 device seeds"
    se = "SE: standard error over all runs / from the training seeds' means"
    print(f"\nX4 with {n}: ag_a_si, mean ± std, differences paired by both seeds ({se})\n")
    print(x4_seeds_table(args.out))
    print(f"\nX9 with {n}: mean ± std, gain paired by both seeds ({se})\n")
    print(x9_seeds_table(args.out))
    print(f"\nE5 knobs with {n}: mean ± std, change paired by both seeds ({se})\n")
    print(e5_seeds_table(args.out))
    if any((args.out / name / "sweep.h5").exists() for name in SEEDED if name.startswith("e3_")):
        print(f"\nE3 full grid with {n}: final test accuracy (%), mean ± std ('-': not run)\n")
        print(product_seeds_table(args.out))
        print(f"\nE3 grid's axes with {n}: change in points, paired by both seeds ({se})\n")
        print(grid_effects_table(args.out))
    print(f"\nTraining seed or device seed: spread of each cell ({n})\n")
    print(variance_table(args.out))
    check = seed0_check(args.out)
    if check:
        print("\nTraining seed 0 against the single-seed sweeps:\n")
        print(check)


if __name__ == "__main__":
    main()
