"""Energy and latency of study runs (``docs/ENERGY.md``): meters over a run's device arrays,
per-epoch metrics, and the energy table of a results file.

A study that records energy (``train(..., energy=True)``, ``synapse-sim train --energy``) keeps
one :class:`devices.energy.EnergyMeter` per device array, updated once per epoch; each epoch adds
the metrics of :meth:`devices.energy.EnergyReport.metrics` to the run's history and the run's
final statistics get an ``energy`` group (the totals). The energy model goes into the file's
config under ``energy``. :func:`energy_records` reads them back; for a file written without
energy it estimates the write energy from the stored pulse totals at the mid-range conductance
of the preset (reads were not recorded then).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from devices.energy import EnergyMeter, EnergyModel, EnergyReport

__all__ = [
    "EnergyTracker",
    "resolve_energy",
    "energy_records",
    "energy_table",
    "ENERGY_METRICS",
]

#: Per-epoch metrics a run with energy recording adds to its history.
ENERGY_METRICS = tuple(EnergyReport().metrics())


def resolve_energy(energy) -> EnergyModel | None:
    """The energy model of a study's ``energy`` argument.

    Parameters
    ----------
    energy : None, bool, EnergyModel or dict
        None/False: no recording; True: ``EnergyModel()``; a dict: its fields
        (:meth:`EnergyModel.from_dict`).

    Returns
    -------
    EnergyModel or None
    """
    if energy is None or energy is False:
        return None
    if energy is True:
        return EnergyModel()
    if isinstance(energy, EnergyModel):
        return energy
    if isinstance(energy, Mapping):
        return EnergyModel.from_dict(energy)
    raise TypeError(
        f"energy must be None, a bool, a devices.energy.EnergyModel or a dict, got {energy!r}"
    )


class EnergyTracker:
    """Meters over the device arrays of one run (float weights are skipped).

    Parameters
    ----------
    layers : list
        The run's weight arrays.
    model : EnergyModel
    """

    def __init__(self, layers, model: EnergyModel):
        self.meters = [EnergyMeter(a, model) for a in layers if hasattr(a, "read_counts")]

    @property
    def active(self) -> bool:
        """Whether the run has device arrays to meter."""
        return bool(self.meters)

    def epoch(self) -> dict:
        """Metrics of the epoch just finished (empty without device arrays)."""
        if not self.meters:
            return {}
        rep = EnergyReport()
        for m in self.meters:
            rep = rep + m.update()
        return rep.metrics()

    def total(self) -> EnergyReport:
        """Everything metered so far, summed over the arrays."""
        rep = EnergyReport()
        for m in self.meters:
            rep = rep + m.total
        return rep

    def final(self) -> dict:
        """The ``energy`` group of the final statistics (totals; per array as ``layer<i>``)."""
        out = self.total().to_dict()
        for i, m in enumerate(self.meters):
            out[f"layer{i}"] = m.total.to_dict()
        return out


def _estimate(run: Mapping[str, Any]) -> dict | None:
    """Write energy of a run recorded without energy: its pulse totals at the mid-range
    conductance of its preset (with the run's overrides) and the preset's pulses."""
    import devices

    final = run.get("final", {})
    if "total_pulses_ltp" not in final:
        return None
    cfg = run.get("config") or {}
    try:
        dev = devices.get(run.get("device"), **(cfg.get("overrides") or {}))
    except (ValueError, TypeError):
        return None
    ltp, ltd, src = EnergyModel().pulses(dev)
    g = 0.5 * (dev.gmin + dev.gmax)
    n_up = int(final.get("total_pulses_ltp", 0)) + int(final.get("total_pulses_prog", 0))
    n_dn = int(final.get("total_pulses_ltd", 0)) + int(final.get("total_resets", 0))
    e = n_up * float(ltp.energy(g)) + n_dn * float(ltd.energy(g))
    return {
        "write_energy": e,
        "read_energy": None,
        "adc_energy": None,
        "dac_energy": None,
        "energy": None,
        "latency": None,
        "reads": None,
        "pulses": sum(int(final.get(f"total_pulses_{k}", 0)) for k in ("ltp", "ltd", "prog")),
        "pulse_source": src,
    }


def energy_records(results, *, estimate: bool = True) -> list[dict]:
    """One energy record per run of a results file (train / compare layout).

    Parameters
    ----------
    results : dict or path
        What :func:`synapse_sim.results.store.read_results` returns, or a path.
    estimate : bool
        For runs recorded without energy, estimate the write energy from the stored pulse
        totals (``basis`` ``"estimate"``); otherwise leave them out.

    Returns
    -------
    list of dict
        ``label``, ``device``, ``basis`` (``"recorded"`` or ``"estimate"``) and the fields of
        :meth:`devices.energy.EnergyReport.to_dict` (None where unknown).
    """
    from ..results.store import read_results

    if isinstance(results, (str, os.PathLike)):
        results = read_results(results)
    recs = []
    for label, run in results.get("runs", {}).items():
        fin = run.get("final", {}).get("energy")
        if isinstance(fin, Mapping):
            rec = {k: v for k, v in fin.items() if not isinstance(v, Mapping)}
            basis = "recorded"
        elif estimate and run.get("device") != "software":
            rec = _estimate(run)
            basis = "estimate"
            if rec is None:
                continue
        else:
            continue
        recs.append({"label": label, "device": run.get("device"), "basis": basis, **rec})
    return recs


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def energy_table(results, *, estimate: bool = False) -> str:
    """Markdown table of :func:`energy_records` ("" when no run has a record).

    The heading says what the numbers are: device-level energy of the arrays only.
    """
    recs = energy_records(results, estimate=estimate)
    if not recs:
        return ""
    head = (
        "Device-level energy and latency: the arrays only (no drivers, decoders, wires, sense "
        "amplifiers or digital logic; converters only where the arrays have them); "
        "docs/ENERGY.md.\n\n"
    )
    cols = [
        ("label", "label"),
        ("device", "device"),
        ("basis", "basis"),
        ("pulse_source", "pulses from"),
        ("write_energy", "write (J)"),
        ("read_energy", "read (J)"),
        ("adc_energy", "ADC (J)"),
        ("dac_energy", "DAC (J)"),
        ("energy", "total (J)"),
        ("latency", "latency (s)"),
        ("pulses", "pulses"),
        ("reads", "device reads"),
    ]
    lines = [
        "| " + " | ".join(c[1] for c in cols) + " |",
        "|" + "|".join(["---"] * 4 + ["---:"] * (len(cols) - 4)) + "|",
    ]
    for r in recs:
        lines.append("| " + " | ".join(_fmt(r.get(k)) for k, _ in cols) + " |")
    return head + "\n".join(lines) + "\n"
