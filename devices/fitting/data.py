"""Measured-style data: :func:`sample_cycles` from a model, the CSV layout (:func:`read_csv`,
:func:`write_csv`) and :func:`fit_csv`."""

from __future__ import annotations

import csv
import os

import numpy as np

from ..models import DeviceModel
from ..validation import check_choice, check_int, check_real
from ._estimators import BRANCH_ALIASES, CSV_COLUMNS
from .estimate import fit
from .result import FitResult


# ----------------------------------------------------------------------------- data
def sample_cycles(
    model: DeviceModel,
    *,
    n_cycles: int = 1,
    n_devices: int = 1,
    seed: int | None = 0,
    every: int = 1,
) -> dict:
    """Measured-style cycles of a model, driven pulse by pulse through a :class:`DeviceArray`.

    Each device first receives ``levels_ltd`` single depression pulses (to start near Gmin),
    then every cycle ``levels_ltp`` single potentiation pulses and ``levels_ltd`` single
    depression pulses, read after every ``every``-th pulse (and at pulse 0). Device-to-device
    spread and cycle-to-cycle noise of the model apply (one array, reference mapping, numpy
    backend).

    Parameters
    ----------
    model : DeviceModel
    n_cycles, n_devices : int
    seed : int or None
        Seed of the array (device draws and write noise).
    every : int
        Read after every this many pulses.

    Returns
    -------
    dict
        ``pulses_ltp``, ``g_ltp``, ``pulses_ltd``, ``g_ltd`` (lists of sweeps) and
        ``device_ids``; ``fit(**data)`` fits it.
    """
    from ..array import DeviceArray

    n_cycles = check_int("n_cycles", n_cycles, lo=1)
    n_devices = check_int("n_devices", n_devices, lo=1)
    every = check_int("every", every, lo=1)
    arr = DeviceArray((1, n_devices), model, mapping="reference", seed=seed, backend="numpy")
    P1, P2 = model.levels("ltp"), model.levels("ltd")
    one = np.ones((1, n_devices), dtype=np.int64)
    for _ in range(P2):
        arr.pulse(-one)
    out = {"pulses_ltp": [], "g_ltp": [], "pulses_ltd": [], "g_ltd": [], "device_ids": []}
    for _ in range(n_cycles):
        for b, P, sign in (("ltp", P1, 1), ("ltd", P2, -1)):
            reads = [arr.conductances[0, 0].copy()]
            for p in range(1, P + 1):
                arr.pulse(sign * one)
                if p % every == 0 or p == P:
                    reads.append(arr.conductances[0, 0].copy())
            pulses = np.unique(np.r_[np.arange(0, P + 1, every), P]).astype(float)
            G = np.array(reads).T
            out[f"pulses_{b}"] += [pulses.copy() for _ in range(n_devices)]
            out[f"g_{b}"] += list(G)
        out["device_ids"] += [f"d{i}" for i in range(n_devices)]
    return out


def write_csv(path, data: dict) -> None:
    """Write sweeps (the dict of :func:`sample_cycles`) in the CSV layout of this module."""
    ids = data.get("device_ids") or ["0"] * len(data["g_ltp"])
    ids_ltd = data.get("device_ids_ltd") or ids
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(CSV_COLUMNS)
        for b, dev_ids in (("ltp", ids), ("ltd", ids_ltd)):
            cycle: dict = {}
            for p, g, d in zip(data[f"pulses_{b}"], data[f"g_{b}"], dev_ids, strict=True):
                c = cycle[d] = cycle.get(d, -1) + 1
                for pv, gv in zip(p, g, strict=True):
                    w.writerow([d, c, b, int(pv), f"{gv:.9g}"])


def read_csv(path) -> dict:
    """Read the CSV layout of this module into the keyword arguments of :func:`fit`.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    dict
        ``pulses_ltp``, ``g_ltp``, ``pulses_ltd``, ``g_ltd``, ``device_ids``,
        ``device_ids_ltd``.
    """
    path = os.fspath(path)
    with open(path, newline="") as fh:
        lines = [ln for ln in fh if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise ValueError(f"{path}: no data (expected a header {','.join(CSV_COLUMNS)})")
    reader = csv.DictReader(lines)
    cols = [c.strip().lower() for c in (reader.fieldnames or [])]
    reader.fieldnames = cols
    for c in ("branch", "pulse", "conductance"):
        if c not in cols:
            raise ValueError(
                f"{path}: column {c!r} is missing; the header has {cols} "
                f"(expected {','.join(CSV_COLUMNS)})"
            )
    groups: dict = {}
    for ln, row in enumerate(reader, start=2):
        where = f"{path}, data row {ln - 1}"
        b = BRANCH_ALIASES.get(str(row["branch"]).strip().lower())
        if b is None:
            check_choice(f"branch ({where})", str(row["branch"]).strip(), tuple(BRANCH_ALIASES))
        try:
            pulse = float(row["pulse"])
            g = float(row["conductance"])
            cyc = int(row.get("cycle") or 0)
        except (TypeError, ValueError):
            raise ValueError(
                f"{where}: pulse, conductance and cycle must be numbers, got {row!r}"
            ) from None
        check_real(f"conductance ({where})", g, lo=0.0)
        dev = str(row.get("device") or "0").strip()
        groups.setdefault((b, dev, cyc), []).append((pulse, g))
    out = {
        "pulses_ltp": [],
        "g_ltp": [],
        "pulses_ltd": [],
        "g_ltd": [],
        "device_ids": [],
        "device_ids_ltd": [],
    }
    for (b, dev, _cyc), rows in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][2])):
        rows.sort()
        out[f"pulses_{b}"].append(np.array([r[0] for r in rows]))
        out[f"g_{b}"].append(np.array([r[1] for r in rows]))
        out["device_ids" if b == "ltp" else "device_ids_ltd"].append(dev)
    for b in ("ltp", "ltd"):
        if not out[f"g_{b}"]:
            raise ValueError(f"{path}: no {b.upper()} readings (branch column)")
    return out


def fit_csv(path, **kwargs) -> FitResult:
    """:func:`fit` on a CSV file of the layout of this module (the ``synapse-sim fit`` command).

    Parameters
    ----------
    path : str or os.PathLike
    **kwargs
        Keywords of :func:`fit` (``method``, ``levels_ltp``, ``levels_ltd``, ``name``).

    Returns
    -------
    FitResult
    """
    data = read_csv(path)
    if "name" not in kwargs:
        kwargs["name"] = os.path.splitext(os.path.basename(os.fspath(path)))[0]
    return fit(**data, **kwargs)
