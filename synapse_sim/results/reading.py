"""Reading the results store: :func:`read_results`, :func:`summary_records`,
:func:`format_table` (re-exported by :mod:`synapse_sim.results.store`)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .h5io import (
    SCHEMA_VERSION,
    attr_value,
    open_h5,
    read_value,
)

__all__ = ["read_results", "summary_records", "format_table"]

# ----------------------------------------------------------------------------- reading


def _json_attr(path: Path, where: str, text: Any) -> Any:
    """A JSON attribute of a results file, or a ValueError naming the file and attribute."""
    try:
        return json.loads(text)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{str(path)!r}: attribute {where!r} is not valid JSON ({exc}); the file is damaged "
            "or was not written by synapse_sim"
        ) from None


def read_results(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a results file written by :class:`ResultsWriter`.

    Parameters
    ----------
    path : str or os.PathLike
        The HDF5 file.

    Returns
    -------
    dict
        ``schema_version`` (int), ``created`` (ISO str), ``versions`` (dict),
        ``config`` (dict), ``seed`` (int), ``kind`` (str), ``complete`` (bool) and
        ``runs``: label -> ``{"device", "rule", "dataset", "epochs", "complete",
        "config", "metrics": {name: float64 array}, "final": {...},
        "weights": {...}}`` (weights empty when none were stored). Scalars are Python
        objects, arrays numpy arrays.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        The file is not HDF5, has no ``schema_version`` (not a results file), or was
        written with a newer schema. The message names the path.
    """
    path = Path(os.fspath(path))
    if not path.exists():
        raise FileNotFoundError(f"results file not found: {str(path)!r}")
    if path.is_dir():
        raise ValueError(f"results path {str(path)!r} is a directory, not an HDF5 file")
    if not h5py.is_hdf5(path):
        raise ValueError(f"{str(path)!r} is not an HDF5 file (not a synapse_sim results file)")
    try:
        f = open_h5(path, "r")
    except OSError as exc:
        raise ValueError(f"cannot open results file {str(path)!r} as HDF5: {exc}") from exc
    with f:
        if "schema_version" not in f.attrs:
            raise ValueError(
                f"{str(path)!r} is not a synapse_sim results file: no 'schema_version' attribute"
            )
        version = int(f.attrs["schema_version"])
        if version > SCHEMA_VERSION:
            raise ValueError(
                f"{str(path)!r} has schema_version {version}; this synapse_sim reads "
                f"versions up to {SCHEMA_VERSION} (upgrade synapse-sim)"
            )
        attrs = {k: attr_value(v) for k, v in f.attrs.items()}
        out: dict[str, Any] = {
            "schema_version": version,
            "created": attrs.get("created", ""),
            "versions": _json_attr(path, "versions", attrs.get("versions", "{}")),
            "config": _json_attr(path, "config", attrs.get("config", "{}")),
            "seed": int(attrs["seed"]) if "seed" in attrs else None,
            "kind": attrs.get("kind", ""),
            "complete": bool(attrs.get("complete", False)),
            "runs": {},
        }
        if "updated" in attrs:
            out["updated"] = attrs["updated"]
        runs = f.get("runs")
        if runs is not None and not isinstance(runs, h5py.Group):
            raise ValueError(f"{str(path)!r}: 'runs' is not a group (unexpected layout)")
        for label in runs if runs is not None else ():
            g = runs[label]
            if not isinstance(g, h5py.Group):
                raise ValueError(f"{str(path)!r}: runs/{label} is not a group (unexpected layout)")
            ga = {k: attr_value(v) for k, v in g.attrs.items()}
            metrics, final, weights = {}, {}, {}
            for name, obj in g.items():
                if name == "final" and isinstance(obj, h5py.Group):
                    final = read_value(obj)
                elif name == "weights" and isinstance(obj, h5py.Group):
                    weights = {k: np.asarray(obj[k][()]) for k in obj}
                elif isinstance(obj, h5py.Dataset):
                    metrics[name] = np.asarray(obj[()], dtype=np.float64)
            out["runs"][label] = {
                "device": ga.get("device", ""),
                "rule": ga.get("rule", ""),
                "dataset": ga.get("dataset", ""),
                "epochs": int(ga.get("epochs", 0)),
                "epochs_done": int(
                    ga.get("epochs_done", max((v.size for v in metrics.values()), default=0))
                ),
                "complete": bool(ga.get("complete", False)),
                "config": _json_attr(path, f"runs/{label} config", ga.get("config", "{}")),
                "metrics": metrics,
                "final": final,
                "weights": weights,
            }
    return out


# ----------------------------------------------------------------------------- summaries


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _total(series: np.ndarray | None) -> int | float | None:
    if series is None:
        return None
    finite = series[np.isfinite(series)]
    if finite.size == 0:
        return None
    total = float(finite.sum())
    return int(round(total)) if total.is_integer() else total


def summary_records(results: Mapping[str, Any] | str | os.PathLike[str]) -> list[dict[str, Any]]:
    """One JSON-able summary dict per run.

    Parameters
    ----------
    results : dict or path
        What :func:`read_results` returns, or a results file path.

    Returns
    -------
    list of dict
        In file order, each with ``label``, ``device``, ``rule``, ``dataset``,
        ``epochs`` (planned), ``epochs_done``, ``seed``, ``test_accuracy`` (list per
        epoch, NaN as None), ``final_test_accuracy`` and ``final_train_accuracy``
        (last epoch's value or None), ``pulses`` and ``refreshes`` (sums over epochs,
        int when whole, None when not recorded), ``complete`` (the run is complete
        AND the file is complete), plus every scalar of ``final`` (nested groups as
        ``"group.name"``; a name that clashes with the keys above gets a ``final_``
        prefix).
    """
    if isinstance(results, (str, os.PathLike)):
        results = read_results(results)
    file_complete = bool(results.get("complete", False))
    records = []
    for label, run in results.get("runs", {}).items():
        metrics = run.get("metrics", {})
        test_acc = metrics.get("test_accuracy")
        train_acc = metrics.get("train_accuracy")
        acc_list = [] if test_acc is None else [_finite_or_none(float(v)) for v in test_acc]
        record: dict[str, Any] = {
            "label": label,
            "device": run.get("device"),
            "rule": run.get("rule"),
            "dataset": run.get("dataset"),
            "epochs": run.get("epochs"),
            "epochs_done": run.get(
                "epochs_done", max((len(v) for v in metrics.values()), default=0)
            ),
            "seed": results.get("seed"),
            "test_accuracy": acc_list,
            "final_test_accuracy": acc_list[-1] if acc_list else None,
            "final_train_accuracy": (
                _finite_or_none(float(train_acc[-1]))
                if train_acc is not None and len(train_acc)
                else None
            ),
            "pulses": _total(metrics.get("pulses")),
            "refreshes": _total(metrics.get("refreshes")),
            "complete": bool(run.get("complete", False)) and file_complete,
        }

        def add_scalars(prefix: str, mapping: Mapping[str, Any], rec: dict[str, Any]) -> None:
            for key, value in mapping.items():
                name = f"{prefix}{key}"
                if isinstance(value, Mapping):
                    add_scalars(f"{name}.", value, rec)
                    continue
                if isinstance(value, np.ndarray):
                    if value.ndim != 0:
                        continue
                    value = value.item()
                if isinstance(value, np.generic):
                    value = value.item()
                if not isinstance(value, (bool, int, float, str)):
                    continue
                if name in rec:
                    name = f"final_{name}"
                rec[name] = _finite_or_none(value)

        add_scalars("", run.get("final", {}), record)
        records.append(record)
    return records


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return str(value).replace("|", "\\|").replace("\n", " ")


def format_table(records: list[Mapping[str, Any]]) -> str:
    """Render :func:`summary_records` output as a markdown table.

    Parameters
    ----------
    records : list of dict
        Records with ``label``, ``device``, ``rule``, ``final_test_accuracy`` (a
        fraction, shown in percent with two decimals), ``pulses``, ``refreshes`` and
        ``complete``; missing values show as ``-``.

    Returns
    -------
    str
        The table, header and separator first, one row per record, ending in a newline.
    """
    header = ["label", "device", "rule", "final test acc (%)", "pulses", "refreshes", "complete"]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] * 3 + ["---:"] * 3 + ["---"]) + "|",
    ]
    for rec in records:
        acc = rec.get("final_test_accuracy")
        acc_text = "-" if acc is None else f"{100.0 * float(acc):.2f}"
        complete = rec.get("complete")
        row = [
            _cell(rec.get("label")),
            _cell(rec.get("device")),
            _cell(rec.get("rule")),
            acc_text,
            _cell(rec.get("pulses")),
            _cell(rec.get("refreshes")),
            "-" if complete is None else ("yes" if complete else "no"),
        ]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"
