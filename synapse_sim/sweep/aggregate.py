"""Reading a sweep back: records per run, mean and spread per point, the table."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .axes import is_number
from .kinds import STUDY_METRICS


# ---------------------------------------------------------------------------- reading
def _sweep_path(path) -> Path:
    p = Path(path)
    return p / "sweep.h5" if p.is_dir() else p


def is_sweep_file(path) -> bool:
    """True if ``path`` (or the ``sweep.h5`` in a folder) is a results file of kind ``"sweep"``."""
    from ..results.store import results_kind

    return results_kind(_sweep_path(path)) == "sweep"


def read_sweep(path) -> dict:
    """Read ``sweep.h5`` (or its folder) as plain Python/numpy objects.

    Returns
    -------
    dict
        What :func:`synapse_sim.results.store.read_results` returns (``config`` holds the sweep
        plan:
        ``axes``, ``points``, ``labels``, ``device_seeds``, ``spec``, ...), with only complete
        runs in ``runs``.
    """
    from ..results.store import read_results

    p = _sweep_path(path)
    res = read_results(p)
    if res.get("kind") != "sweep":
        raise ValueError(f"'{p}' is not a sweep file (kind {res.get('kind')!r})")
    res["runs"] = {k: v for k, v in res["runs"].items() if v.get("complete")}
    return res


def sweep_records(source) -> list[dict]:
    """One JSON-able dict per planned run (software twin first, then points x instances).

    Parameters
    ----------
    source : path or dict
        ``sweep.h5``, its folder, or what :func:`read_sweep` returns.

    Returns
    -------
    list of dict
        The keys of :func:`synapse_sim.results.store.summary_records` (``label``, ``device``,
        ``rule``, ``dataset``, ``epochs``, ``test_accuracy`` list, ``final_test_accuracy``,
        ``pulses``, ``refreshes``, final statistics, ...) plus ``point`` and ``instance`` (None
        for the software twin), ``params`` (swept values), ``seed`` (the device seed of the
        instance), ``train_seed`` and ``complete`` (the run is in the file). Runs not yet in
        the file have ``complete`` False and None metrics.
    """
    from ..results.store import summary_records

    res = source if isinstance(source, Mapping) else read_sweep(source)
    cfg = res["config"]
    done = summary_records({**res, "complete": True})
    by_label = {r["label"]: r for r in done}
    records = []
    seeds = cfg.get("device_seeds", [])
    study = cfg.get("study", "train")
    for label in cfg.get("labels", []):
        run = res["runs"].get(label)
        if run is not None:
            extra = run["config"]
            rec = dict(by_label[label])
            point, instance = extra.get("point"), extra.get("instance")
            params, dseed, tseed = (
                extra.get("params", {}),
                extra.get("device_seed"),
                extra.get("seed"),
            )
        else:
            software = label.startswith("software")
            point = None if software else int(label[1:].split("-")[0])
            instance = int(label.split("-i")[1]) if "-i" in label else None
            params = {} if software else cfg["points"][point]
            dseed = None if instance is None else seeds[instance]
            tseed = params.get("seed", cfg["train"].get("seed")) if study == "train" else dseed
            rec = {
                "label": label,
                "device": "software" if software else None,
                "rule": "software" if software else None,
                "dataset": cfg["train"].get("dataset"),
                "epochs": cfg["train"].get("epochs"),
                "epochs_done": 0,
                "test_accuracy": [],
                "final_test_accuracy": None,
                "final_train_accuracy": None,
                "pulses": None,
                "refreshes": None,
            }
        names = cfg.get("axis_names", list(params))
        params = {k: params[k] for k in [*names, *params] if k in params}
        rec.update(
            point=point,
            instance=instance,
            params=params,
            seed=dseed if point is not None or study != "train" else tseed,
            train_seed=tseed,
            complete=run is not None,
        )
        records.append(rec)
    return records


def _stats(values: list) -> tuple:
    if not values:
        return None, None
    arr = np.asarray(values, dtype=np.float64)
    mean = float(arr.mean())
    std = float(arr.std(ddof=1)) if arr.size > 1 else None
    return mean, std


def aggregate(source, metrics=None) -> list[dict]:
    """Mean and standard deviation over device instances, one dict per point.

    Parameters
    ----------
    source : path or dict
        ``sweep.h5``, its folder, what :func:`read_sweep` returns, or a list of
        :func:`sweep_records`.
    metrics : sequence of str, optional
        Record keys to aggregate (default per study kind, :data:`~.kinds.STUDY_METRICS`:
        final test accuracy, pulses and refreshes of ``train``; recovered bars, sigma, pulses
        and refreshes of ``bars``; reconstruction error, active fraction and code difference
        of ``lca``).

    Returns
    -------
    list of dict
        Per point, in grid order: ``point``, ``params``, ``n`` (complete instances),
        ``n_planned``, and for every metric ``<m>_mean``, ``<m>_std`` (sample standard
        deviation, ``ddof=1``; None with fewer than two instances) and ``<m>_values`` (one
        value per complete instance, in instance order). The software twin, if present, comes
        first with ``point`` None.
    """
    if metrics is None:
        metrics = STUDY_METRICS[_study(source)]
    records = source if isinstance(source, list) else sweep_records(source)
    groups: dict = {}
    for rec in records:
        groups.setdefault(rec["point"], []).append(rec)
    out = []
    for point, recs in groups.items():
        done = [r for r in recs if r["complete"]]
        row = {"point": point, "params": recs[0]["params"], "n": len(done), "n_planned": len(recs)}
        for m in metrics:
            vals = [r[m] for r in done if r.get(m) is not None]
            row[f"{m}_mean"], row[f"{m}_std"] = _stats(vals)
            row[f"{m}_values"] = vals
        out.append(row)
    return out


def _study(source) -> str:
    """Study kind of a sweep (a list of records: from its metrics)."""
    if isinstance(source, list):
        keys = {k for r in source for k in r}
        return next((s for s in ("bars", "lca") if STUDY_METRICS[s][0] in keys), "train")
    res = source if isinstance(source, Mapping) else read_sweep(source)
    return res["config"].get("study", "train")


#: Columns of :func:`format_sweep_table` per study kind: (metric, header, scale, format).
_COLUMNS = {
    "train": (
        ("final_test_accuracy", "final test acc (%)", 100, "{:.2f}"),
        ("pulses", "pulses", 1, "{:.4g}"),
        ("refreshes", "refreshes", 1, "{:.4g}"),
    ),
    "bars": (
        ("recovered_bars", "recovered bars", 1, "{:.1f}"),
        ("sigma", "sigma", 1, "{:.2f}"),
        ("pulses", "pulses", 1, "{:.4g}"),
        ("refreshes", "refreshes", 1, "{:.4g}"),
    ),
    "lca": (
        ("rel_error", "rel. reconstruction error", 1, "{:.4f}"),
        ("active", "active fraction", 1, "{:.3f}"),
        ("code_diff", "max code diff / max", 1, "{:.3f}"),
    ),
}


def _pm(mean, std, scale=1.0, fmt="{:.2f}") -> str:
    if mean is None:
        return "-"
    text = fmt.format(mean * scale)
    return text if std is None else f"{text} ± {fmt.format(std * scale)}"


def format_sweep_table(rows: list[dict], study: str | None = None) -> str:
    """Markdown table of :func:`aggregate` rows (mean ± std; accuracy in percent).

    ``study`` picks the columns (``train``, ``bars`` or ``lca``; :data:`~.kinds.STUDY_METRICS`;
    default: the kind whose first metric the rows hold).
    """
    if study is None:
        study = next(
            (k for k in ("bars", "lca") if any(f"{STUDY_METRICS[k][0]}_mean" in r for r in rows)),
            "train",
        )
    axes = []
    for r in rows:
        for k in r["params"]:
            if k not in axes:
                axes.append(k)
    columns = _COLUMNS[study]
    header = ["point", *axes, "n", *(c[1] for c in columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---:"] * len(header)) + "|"]
    for r in rows:
        cells = ["software" if r["point"] is None else str(r["point"])]
        cells += [
            "-"
            if k not in r["params"]
            else f"{r['params'][k]:g}"
            if is_number(r["params"][k])
            else str(r["params"][k])
            for k in axes
        ]
        cells.append(f"{r['n']}/{r['n_planned']}")
        for m, _, scale, fmt in columns:
            cells.append(_pm(r.get(f"{m}_mean"), r.get(f"{m}_std"), scale, fmt))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def sweep_report(source) -> str:
    """Header line and :func:`format_sweep_table` of a sweep file."""
    res = source if isinstance(source, Mapping) else read_sweep(source)
    cfg = res["config"]
    tr = cfg.get("train", {})
    study = cfg.get("study", "train")
    rows = aggregate(res)
    done = sum(r["n"] for r in rows)
    total = sum(r["n_planned"] for r in rows)
    swept = {p for k in cfg.get("axis_names", []) for p in k.split("+")}
    if study == "train":
        seed = "training seed from axis `seed`" if "seed" in swept else f"seed {res.get('seed')}"
        what = (
            f"device instances, dataset `{tr.get('dataset')}`, hidden {tr.get('hidden')}, "
            f"{tr.get('epochs')} epochs, {seed}"
        )
    else:
        fixed = ", ".join(f"{k} {v!r}" for k, v in tr.items() if k not in swept | {"seed"} and v)
        what = f"seeds, study `{study}` ({fixed})"
    head = (
        f"Sweep `{cfg.get('name')}`: {len(cfg.get('points', []))} points x "
        f"{len(cfg.get('device_seeds', []))} {what}; "
        f"{done}/{total} runs done{'' if res.get('complete') else ' (incomplete)'}.\n\n"
    )
    return head + format_sweep_table(rows, study)
