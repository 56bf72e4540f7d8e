"""Study kinds of a sweep besides ``train``: ``bars`` (sparse coding on the bars test) and ``lca``.

``[sweep] study = "bars"`` makes every run a :class:`~synapse_sim.studies.bars.BarsConfig`
(``[bars]`` holds the base fields; :func:`~synapse_sim.studies.bars.bars_point` runs it) and
``study = "lca"`` an :class:`~synapse_sim.studies.lca_device.LCAConfig` (``[lca]``;
:func:`~synapse_sim.studies.lca_device.lca_point`). An axis is a field of the config (``model``,
``device``, ``rule``, ``iterations``, ``program``, ...) or a device parameter, which goes into
the config's ``overrides`` (``"levels_ltp+levels_ltd" = [16, 64]``, ``nl_ltp``,
``sigma_gmax``, ...). Instance ``k`` sets the config's ``seed`` to ``device_seeds[k]`` (the
bars test draws its data, its initialization and its device array from that one seed). The
software twin of ``bars`` is the float run of every instance seed (labels ``software-i00``,
...); ``lca`` compares with the float dictionary inside every run and has no twin.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

from .axes import axis_parts, axis_values, check_plan_size, fail, suggest

#: Study kinds a sweep runs (``[sweep] study``).
SWEEP_STUDIES = ("train", "bars", "lca")

#: Metrics :func:`~synapse_sim.sweep.aggregate` averages by default, per study kind.
STUDY_METRICS = {
    "train": ("final_test_accuracy", "pulses", "refreshes"),
    "bars": ("recovered_bars", "sigma", "pulses", "refreshes"),
    "lca": ("rel_error", "active", "code_diff"),
}


def config_class(study: str):
    """The config dataclass of a study kind other than ``train``."""
    if study == "bars":
        from ..studies.bars import BarsConfig

        return BarsConfig
    if study == "lca":
        from ..studies.lca_device import LCAConfig

        return LCAConfig
    raise ValueError(f"study must be one of 'bars', 'lca', got {study!r}")


def point_config(base, axes_keys, params: Mapping, seed: int):
    """The config of one run: ``base`` with the point's fields, device overrides and ``seed``."""
    fields = {f.name for f in dataclasses.fields(base)}
    kw, dev = {}, {}
    for key in axes_keys:
        value = params[key]
        for part in key.split("+"):
            (kw if part in fields else dev)[part] = value
    d = base.to_dict()
    return type(base)(**{**d, **kw, "overrides": {**d["overrides"], **dev}, "seed": seed})


def software_config(base, seed: int):
    """The float twin of a ``bars`` run: no device, no overrides, the bidirectional rule."""
    return dataclasses.replace(base, device=None, overrides={}, rule="bidirectional", seed=seed)


def parse_study(study: str, source: str, table: Mapping, ax: Mapping, n_instances: int):
    """Validate the ``[<study>]`` table and the axes of a ``bars`` or ``lca`` sweep.

    Returns
    -------
    base : BarsConfig or LCAConfig
    axes : dict
        Axis name -> tuple of values.
    """
    cls = config_class(study)
    fields = [f.name for f in dataclasses.fields(cls)]
    for key in table:
        if key == "seed":
            fail(source, f"{study}.seed", "seeds come from sweep.instances / sweep.device_seeds")
        if key not in fields:
            fail(source, f"{study}.{key}", f"unknown {cls.__name__} field{suggest(key, fields)}")
    try:
        base = cls(**table)
    except (TypeError, ValueError) as exc:
        where = getattr(exc, "field", None)
        fail(source, f"{study}.{where}" if where else study, str(exc))
    axes: dict[str, tuple] = {}
    seen: dict[str, str] = {}
    seeds = "seeds come from sweep.instances / sweep.device_seeds"
    refused = {
        "seed": seeds,
        "device_seed": seeds,
        "overrides": "device parameters are axes by their own names",
    }
    fixed = {k: f"[{study}]" for k in (*table, *base.overrides)}
    for key, value in ax.items():
        axis_parts(source, key, seen, refused, fixed)
        axes[key] = axis_values(source, key, value)
        check_plan_size(source, "axes", math.prod(len(v) for v in axes.values()) * n_instances)
    first = {k: vs[0] for k, vs in axes.items()}
    for key, values in axes.items():  # every value (with the other axes' first) names its axis
        for v in values:
            try:
                point_config(base, axes, {**first, key: v}, 0)
            except (TypeError, ValueError) as exc:
                odd = [p for p in key.split("+") if p not in fields]
                hint = (
                    f" ({', '.join(map(repr, odd))}: not a {cls.__name__} field, so a device "
                    f"parameter{suggest(odd[0], fields)})"
                    if odd
                    else ""
                )
                fail(source, f"axes.{key}", f"{exc}{hint}")
    return base, axes


def check_points(spec) -> None:
    """Build the config of every point (a combination of valid values may still be refused)."""
    for i, params in enumerate(spec.points()):
        try:
            point_config(spec.train, spec.axes, params, spec.device_seeds[0])
        except (TypeError, ValueError) as exc:
            shown = ", ".join(f"{k}={v!r}" for k, v in params.items())
            fail(spec.source, "axes", f"point {i} ({shown}): {exc}")


def run_config_task(task: Mapping) -> dict:
    """Run one ``bars`` or ``lca`` task (what :func:`~synapse_sim.sweep.run_task` returns)."""
    cfg = config_class(task["study"])(**task["train"])
    if task["study"] == "bars":
        from ..studies.bars import bars_point

        r = bars_point(cfg)
        final = {
            "recovered_bars": int(r["recovered_bars"]),
            "sigma": float(r["sigma"]),
            "p_active": float(r["p_active"]),
            "matched_cost_max": float(max(r["matched_costs"])),
            "test_score": float(r["test_score"]),
            "log_likelihood": float(r["log_likelihood"][-1]),
        }
        history = {k: [float(x) for x in v] for k, v in r["history"].items()}
        device = cfg.device or "software"
        rule = cfg.rule if cfg.device else "software"
    else:
        from ..studies.lca_device import lca_point

        final, history, device, rule = lca_point(cfg), {}, cfg.device, cfg.program
    return {
        "label": task["label"],
        "history": history,
        "final": final,
        "weights": None,
        "device": device,
        "rule": rule,
        "dataset": "bars",
        "epochs": len(history.get("sigma", [])),
        "backend": None,
        "cuda_visible_devices": None,
    }
