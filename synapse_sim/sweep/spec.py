"""Sweep specs: parsing and validation of the TOML/dict spec, the plan and its expansion."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from devices.fitting import model_from_dict, model_to_dict, with_overrides

#: Most values one axis may take (a longer range is refused before it is built).
MAX_AXIS_VALUES = 10_000
#: Most runs one sweep may plan (points x instances + the software twin), checked before the
#: plan is expanded or validated point by point.
MAX_RUNS = 100_000

_SECTIONS = ("sweep", "train", "run", "axes")
_SWEEP_KEYS = (
    "name",
    "instances",
    "first_device_seed",
    "device_seeds",
    "software",
    "save_weights",
    "gpus",
)
_RUN_KEYS = ("device", "rule", "mapping", "overrides", "rule_options")
_RUN_AXES = ("device", "rule", "mapping")
_RANGE_KEYS = ("start", "stop", "num", "step", "scale")


def _train_fields() -> tuple[str, ...]:
    from ..studies.train import TrainConfig

    return tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name != "device_seed")


def _suggest(key: str, valid) -> str:
    import difflib

    close = difflib.get_close_matches(key, list(valid), n=2)
    return f"; did you mean {', '.join(map(repr, close))}?" if close else ""


class _SpecError(ValueError):
    pass


def _fail(source: str, key: str, message: str):
    raise _SpecError(f"sweep spec {source}: {key}: {message}")


def check_gpus(name: str, gpus) -> tuple:
    """``gpus`` as a tuple of distinct GPU ordinals (integers >= 0)."""
    if (
        not isinstance(gpus, (list, tuple))
        or not gpus
        or any(not isinstance(g, (int, np.integer)) or isinstance(g, bool) or g < 0 for g in gpus)
    ):
        raise ValueError(
            f"{name} must be a non-empty list of GPU ordinals (integers >= 0, as "
            f"CUDA_VISIBLE_DEVICES takes them), got {gpus!r}"
        )
    if len(set(gpus)) != len(gpus):
        raise ValueError(f"{name} must name each GPU once, got {list(gpus)!r}")
    return tuple(int(g) for g in gpus)


def gpu_worker_env(gpus, workers: int | None = None) -> list[dict]:
    """Environment of each local worker process pinned to a GPU.

    Worker ``k`` (in the order the workers start) sees only GPU ``gpus[k % len(gpus)]``: its
    ``CUDA_VISIBLE_DEVICES`` is that one ordinal, so inside the worker it is device 0 and cupy
    and numba use it without further setup.

    Parameters
    ----------
    gpus : sequence of int
        GPU ordinals (as ``CUDA_VISIBLE_DEVICES`` takes them), each once.
    workers : int, optional
        Number of workers, at least ``len(gpus)`` (default: one per GPU); more workers share
        the GPUs round robin.

    Returns
    -------
    list of dict
        One ``{"CUDA_VISIBLE_DEVICES": "<ordinal>"}`` per worker.
    """
    gpus = check_gpus("gpus", gpus)
    if workers is None:
        workers = len(gpus)
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    if workers < len(gpus):
        raise ValueError(
            f"workers ({workers}) must be at least the number of gpus ({len(gpus)}): every GPU "
            "gets a worker"
        )
    return [{"CUDA_VISIBLE_DEVICES": str(gpus[k % len(gpus)])} for k in range(int(workers))]


def is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _tidy(v: float) -> float:
    """Round away float noise of ranges (``0.30000000000000004`` -> ``0.3``)."""
    return float(f"{float(v):.12g}")


def _range_values(source: str, key: str, table: Mapping) -> list:
    unknown = [k for k in table if k not in _RANGE_KEYS and k != "values"]
    if unknown:
        _fail(
            source,
            f"{key}.{unknown[0]}",
            f"unknown range key; a range is {{values = [...]}}, {{start, stop, num[, scale]}} "
            f"or {{start, stop, step}}{_suggest(unknown[0], (*_RANGE_KEYS, 'values'))}",
        )
    if "values" in table:
        if len(table) != 1:
            _fail(source, key, "'values' cannot be combined with start/stop/num/step")
        values = table["values"]
        if not isinstance(values, list):
            _fail(source, f"{key}.values", f"must be a list, got {values!r}")
        _check_axis_size(source, f"{key}.values", len(values))
        return list(values)
    for k in ("start", "stop"):
        if k not in table:
            _fail(source, key, f"a range needs '{k}' (got keys {sorted(table)})")
        if not is_number(table[k]) or not math.isfinite(table[k]):
            _fail(source, f"{key}.{k}", f"must be a finite number, got {table[k]!r}")
    start, stop = table["start"], table["stop"]
    if ("num" in table) == ("step" in table):
        _fail(source, key, "a range needs exactly one of 'num' and 'step'")
    scale = table.get("scale", "linear")
    if scale not in ("linear", "log"):
        _fail(source, f"{key}.scale", f"must be 'linear' or 'log', got {scale!r}")
    if "num" in table:
        num = table["num"]
        if not isinstance(num, int) or isinstance(num, bool) or num < 1:
            _fail(source, f"{key}.num", f"must be an integer >= 1, got {num!r}")
        _check_axis_size(source, f"{key}.num", num)
        if num == 1 and start != stop:
            _fail(source, f"{key}.num", "num = 1 needs start == stop")
        if scale == "log":
            if start <= 0 or stop <= 0:
                _fail(source, key, f"a log range needs start, stop > 0, got {start!r}, {stop!r}")
            raw = np.geomspace(start, stop, num)
        else:
            raw = np.linspace(start, stop, num)
        ints = isinstance(start, int) and isinstance(stop, int)
    else:
        step = table["step"]
        if scale != "linear":
            _fail(source, f"{key}.scale", "'step' ranges are linear; use 'num' for a log range")
        if not is_number(step) or not math.isfinite(step) or step == 0:
            _fail(source, f"{key}.step", f"must be a finite non-zero number, got {step!r}")
        if (stop - start) * step < 0:
            _fail(source, f"{key}.step", f"step {step!r} does not go from {start!r} to {stop!r}")
        span = (stop - start) / step
        _check_axis_size(source, f"{key}.step", span + 1 if math.isfinite(span) else math.inf)
        n = int(math.floor(span + 1e-9)) + 1
        raw = start + step * np.arange(n)
        ints = all(isinstance(v, int) for v in (start, stop, step))
    if ints and all(float(v).is_integer() for v in raw):
        return [int(round(v)) for v in raw]
    return [_tidy(v) for v in raw]


def _check_axis_size(source: str, key: str, n: float) -> None:
    if n > MAX_AXIS_VALUES:
        _fail(
            source,
            key,
            f"gives {n:.4g} values; an axis takes at most {MAX_AXIS_VALUES:,} "
            "(sweep.MAX_AXIS_VALUES): use fewer points or a coarser step",
        )


def _check_plan_size(source: str, key: str, n_runs: float) -> None:
    if n_runs > MAX_RUNS:
        _fail(
            source,
            key,
            f"plans {n_runs:.4g} runs; a sweep takes at most {MAX_RUNS:,} (sweep.MAX_RUNS): "
            "use fewer axis values or instances, or split it into several sweeps",
        )


def _axis_values(source: str, key: str, value) -> tuple:
    where = f"axes.{key}"
    if isinstance(value, Mapping):
        values = _range_values(source, where, value)
    elif isinstance(value, list):
        values = list(value)
    else:
        _fail(
            source,
            where,
            f"must be a list or a range table ({{values = [...]}} or {{start, stop, num}}), "
            f"got {value!r}",
        )
    if not values:
        _fail(source, where, "empty axis: give at least one value")
    out = []
    for v in values:
        if isinstance(v, list):
            v = tuple(v)
        if isinstance(v, Mapping) or v is None:
            _fail(source, where, f"values must be numbers, strings or lists, got {v!r}")
        if isinstance(v, float) and not math.isfinite(v):
            _fail(source, where, f"values must be finite, got {v!r}")
        if v in out:
            _fail(source, where, f"duplicate value {v!r}")
        out.append(v)
    return tuple(out)


@dataclass(frozen=True)
class SweepTask:
    """One training run of a sweep (a point x a device instance, or the software twin).

    Attributes
    ----------
    label : str
        Group name in ``sweep.h5`` (``p0003-i01``, or ``software``).
    point : int or None
        Index of the point (None for the software twin).
    instance : int or None
        Index of the device instance at the point (None for the software twin).
    params : dict
        Swept parameter values of the point (axis name -> value).
    train : dict
        :class:`TrainConfig` fields of the run (with its ``device_seed``).
    run : dict
        :class:`RunSpec` fields of the run.
    save_weights : bool
        Return (and store) the final weights.
    """

    label: str
    point: int | None
    instance: int | None
    params: dict
    train: dict
    run: dict
    save_weights: bool = False

    def to_dict(self) -> dict:
        """Plain dict (JSON-able)."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class SweepSpec:
    """A parsed, validated sweep spec (see the module docstring for the file format).

    Attributes
    ----------
    train : TrainConfig
        The base experiment.
    run : dict
        Fixed ``device`` (a preset name, or a device model such as a fitted one), ``rule``,
        ``mapping``, ``overrides`` and ``rule_options``.
    axes : dict
        Axis name -> tuple of values, in spec order (``"a+b"`` sets ``a`` and ``b``).
    device_seeds : tuple of int
        Seed of each device instance; instance ``k`` uses ``device_seeds[k]`` at every point.
    software : bool
        Train the software twin once as a reference.
    save_weights : bool
        Store the final weights of every run.
    gpus : tuple of int or None
        Pin local worker processes to these GPUs (:func:`gpu_worker_env`).
    name : str
    source : str
        Where the spec came from (file path or ``<dict>``), for messages.
    raw : dict
        The spec as given (JSON-able), stored in the file.
    """

    train: Any
    run: dict
    axes: dict
    device_seeds: tuple
    software: bool = True
    save_weights: bool = False
    gpus: tuple | None = None
    name: str = "sweep"
    source: str = "<dict>"
    raw: dict = field(default_factory=dict, compare=False)

    @property
    def n_points(self) -> int:
        """Number of points (product of the axis lengths; 1 without axes)."""
        return math.prod(len(v) for v in self.axes.values())

    @property
    def n_instances(self) -> int:
        """Number of device instances per point."""
        return len(self.device_seeds)

    def points(self) -> list[dict]:
        """Parameter values of every point, in grid order (last axis fastest)."""
        keys = list(self.axes)
        return [
            dict(zip(keys, combo, strict=True)) for combo in itertools.product(*self.axes.values())
        ]

    def tasks(self) -> list[SweepTask]:
        """Every run of the sweep: the software twin first, then points x instances."""
        return expand(self)

    def plan_hash(self) -> str:
        """SHA-256 of the expanded runs (what a resumed sweep must match; the backend, which says
        where runs train and not what, is left out)."""
        plan = []
        for t in self.tasks():
            d = t.to_dict()
            d["train"] = {k: v for k, v in d["train"].items() if k != "backend"}
            plan.append(d)
        blob = json.dumps(plan, sort_keys=True, default=_jsonable)
        return hashlib.sha256(blob.encode()).hexdigest()


def _jsonable(obj):
    import devices
    from devices.fitting import model_to_dict

    if isinstance(obj, devices.DeviceModel):
        return model_to_dict(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"not JSON-serializable: {obj!r}")


def _device(device, **overrides):
    """A preset by name or a device model, with overrides (both validated)."""
    import devices

    if isinstance(device, Mapping):
        device = model_from_dict(device)
    if isinstance(device, devices.DeviceModel):
        return with_overrides(device, **overrides)
    return devices.get(device, **overrides)


def _split_params(axes_keys, params: Mapping) -> tuple[dict, dict, dict]:
    """Split a point's params into run fields, train fields and device overrides."""
    train_fields = set(_train_fields())
    run_kw, train_kw, dev_kw = {}, {}, {}
    for key in axes_keys:
        value = params[key]
        for part in key.split("+"):
            if part in _RUN_AXES:
                run_kw[part] = value
            elif part in train_fields:
                train_kw[part] = list(value) if isinstance(value, tuple) else value
            else:
                dev_kw[part] = value
    return run_kw, train_kw, dev_kw


def parse_spec(spec: Mapping, source: str = "<dict>") -> SweepSpec:
    """Validate a sweep spec given as a dict (the parsed TOML).

    Parameters
    ----------
    spec : dict
        Sections ``sweep``, ``train``, ``run`` and ``axes`` (see the module docstring).
    source : str
        Name used in error messages (the file path).

    Returns
    -------
    SweepSpec

    Raises
    ------
    ValueError
        A malformed spec: unknown section or key, empty axis, bad range, a parameter the device
        does not accept or a bad value; the message names the key (``axes.sigma_nl: ...``).
    """
    import devices
    from learning_rules import RULES

    from ..studies.train import RunSpec, TrainConfig, make_rule

    if not isinstance(spec, Mapping):
        raise _SpecError(f"sweep spec {source}: must be a table/dict, got {type(spec).__name__}")
    for key in spec:
        if key not in _SECTIONS:
            _fail(
                source,
                key,
                f"unknown section; sections are {', '.join(_SECTIONS)}{_suggest(key, _SECTIONS)}",
            )
    for key in _SECTIONS:
        if key in spec and not isinstance(spec[key], Mapping):
            _fail(source, key, f"must be a table, got {spec[key]!r}")
    sw = dict(spec.get("sweep", {}))
    tr = dict(spec.get("train", {}))
    rn = dict(spec.get("run", {}))
    ax = dict(spec.get("axes", {}))

    # [sweep]
    for key in sw:
        if key not in _SWEEP_KEYS:
            _fail(
                source,
                f"sweep.{key}",
                f"unknown key; valid keys: {', '.join(_SWEEP_KEYS)}{_suggest(key, _SWEEP_KEYS)}",
            )
    if "device_seeds" in sw and ("instances" in sw or "first_device_seed" in sw):
        _fail(
            source,
            "sweep.device_seeds",
            "give either device_seeds or instances (with first_device_seed), not both",
        )
    if "device_seeds" in sw:
        seeds = sw["device_seeds"]
        if (
            not isinstance(seeds, list)
            or not seeds
            or any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in seeds)
        ):
            _fail(
                source,
                "sweep.device_seeds",
                f"must be a non-empty list of integers >= 0, got {seeds!r}",
            )
        _check_plan_size(source, "sweep.device_seeds", len(seeds))
        if len(set(seeds)) != len(seeds):
            _fail(source, "sweep.device_seeds", f"seeds must be distinct, got {seeds!r}")
        device_seeds = tuple(seeds)
    else:
        n = sw.get("instances", 1)
        first = sw.get("first_device_seed", 0)
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            _fail(source, "sweep.instances", f"must be an integer >= 1, got {n!r}")
        _check_plan_size(source, "sweep.instances", n)
        if not isinstance(first, int) or isinstance(first, bool) or first < 0:
            _fail(source, "sweep.first_device_seed", f"must be an integer >= 0, got {first!r}")
        device_seeds = tuple(range(first, first + n))
    for key in ("software", "save_weights"):
        if key in sw and not isinstance(sw[key], bool):
            _fail(source, f"sweep.{key}", f"must be true or false, got {sw[key]!r}")
    gpus = None
    if "gpus" in sw:
        try:
            gpus = check_gpus("gpus", sw["gpus"])
        except ValueError as exc:
            _fail(source, "sweep.gpus", str(exc).removeprefix("gpus "))
    name = sw.get("name", "sweep")
    if not isinstance(name, str) or not name:
        _fail(source, "sweep.name", f"must be a non-empty string, got {name!r}")

    # [train]
    train_fields = _train_fields()
    for key in tr:
        if key == "device_seed":
            _fail(
                source,
                "train.device_seed",
                "device seeds come from sweep.instances / sweep.device_seeds",
            )
        if key not in train_fields:
            _fail(source, f"train.{key}", f"unknown TrainConfig field{_suggest(key, train_fields)}")
    try:
        base = TrainConfig(**tr)
    except (TypeError, ValueError) as exc:
        bad = next((k for k in tr if k in str(exc)), None)
        _fail(source, f"train.{bad}" if bad else "train", str(exc))

    # [run]
    for key in rn:
        if key not in _RUN_KEYS:
            _fail(
                source,
                f"run.{key}",
                f"unknown key; valid keys: {', '.join(_RUN_KEYS)}{_suggest(key, _RUN_KEYS)}",
            )
    for key in ("overrides", "rule_options"):
        if key in rn and not isinstance(rn[key], Mapping):
            _fail(source, f"run.{key}", f"must be a table, got {rn[key]!r}")
    device = rn.get("device")
    if isinstance(device, devices.DeviceModel | Mapping):
        # a device model (e.g. a fitted one), kept as devices.fitting.model_to_dict writes it
        try:
            device = model_to_dict(_device(device))
        except (TypeError, ValueError) as exc:
            _fail(source, "run.device", str(exc))
    run = {
        "device": device,
        "rule": rn.get("rule", "bidirectional"),
        "mapping": rn.get("mapping"),
        "overrides": dict(rn.get("overrides", {})),
        "rule_options": dict(rn.get("rule_options", {})),
    }

    # [axes]
    axes: dict[str, tuple] = {}
    seen: dict[str, str] = {}
    for key, value in ax.items():
        parts = key.split("+")
        if any(not p for p in parts):
            _fail(source, f"axes.{key}", "bad axis name (use 'a+b' to set two parameters)")
        for p in parts:
            if p in ("seed", "device_seed"):
                _fail(
                    source,
                    f"axes.{key}",
                    f"{p!r} cannot be an axis: instances come from "
                    "sweep.instances / sweep.device_seeds",
                )
            if p == "backend":
                _fail(
                    source,
                    f"axes.{key}",
                    "'backend' cannot be an axis: it says where runs train, not what they "
                    "compute (set train.backend, or --backend)",
                )
            if p in seen:
                _fail(source, f"axes.{key}", f"parameter {p!r} is already set by axes.{seen[p]}")
            if p in run["overrides"]:
                _fail(source, f"axes.{key}", f"parameter {p!r} is also fixed in run.overrides")
            if p in tr:
                _fail(source, f"axes.{key}", f"parameter {p!r} is also fixed in [train]")
            if p in _RUN_AXES and p in rn:
                _fail(source, f"axes.{key}", f"parameter {p!r} is also fixed in [run]")
            seen[p] = key
        axes[key] = _axis_values(source, key, value)
        _check_plan_size(
            source, "axes", math.prod(len(v) for v in axes.values()) * len(device_seeds) + 1
        )

    devs = list(axes.get("device", ())) or ([run["device"]] if run["device"] else [])
    if not devs:
        _fail(source, "run.device", "name a device preset (run.device or axes.device)")
    for key in ("device", "rule", "mapping"):
        values = [v for k, vs in axes.items() if key in k.split("+") for v in vs]
        allowed = {
            "device": devices.names(),
            "rule": [r for r in RULES if r != "software"],
            "mapping": list(devices.MAPPINGS),
        }[key]
        where = f"axes.{seen[key]}" if key in seen else f"run.{key}"
        for v in values or ([run[key]] if run[key] is not None else []):
            if key == "device" and isinstance(v, Mapping):
                continue  # a device model (e.g. a fitted one) instead of a preset name
            if v not in allowed:
                _fail(
                    source,
                    where,
                    f"must be one of {', '.join(allowed)}, got {v!r}{_suggest(str(v), allowed)}",
                )
    for key, value in run["overrides"].items():
        for d in devs:
            try:
                _device(d, **{key: value})
            except (TypeError, ValueError) as exc:
                _fail(source, f"run.overrides.{key}", str(exc))
    # every axis value on its own: names the key of a parameter the device does not accept
    for key, values in axes.items():
        for v in values:
            run_kw, train_kw, dev_kw = _split_params([key], {key: v})
            if train_kw:
                try:
                    TrainConfig(**{**base.to_dict(), **train_kw})
                except (TypeError, ValueError) as exc:
                    _fail(source, f"axes.{key}", str(exc))
            for d in devs:
                try:
                    _device(d, **dev_kw)
                except (TypeError, ValueError) as exc:
                    _fail(source, f"axes.{key}", f"device {d!r}: {exc}")
    out = SweepSpec(
        train=base,
        run=run,
        axes=axes,
        device_seeds=device_seeds,
        software=sw.get("software", True),
        save_weights=sw.get("save_weights", False),
        gpus=gpus,
        name=name,
        source=source,
        raw=json.loads(json.dumps(dict(spec), default=_jsonable)),
    )
    # every combination (a device may reject a combination of otherwise valid values)
    for i, params in enumerate(out.points()):
        run_kw, train_kw, dev_kw = _split_params(axes, params)
        try:
            rs = RunSpec(
                device=run_kw.get("device", run["device"]),
                rule=run_kw.get("rule", run["rule"]),
                mapping=run_kw.get("mapping", run["mapping"]),
                overrides={**run["overrides"], **dev_kw},
                rule_options=run["rule_options"],
            )
            cfg = TrainConfig(**{**base.to_dict(), **train_kw})
            make_rule(rs, cfg)
        except (TypeError, ValueError) as exc:
            shown = ", ".join(f"{k}={v!r}" for k, v in params.items())
            key = "run.rule_options" if run["rule_options"] and "rule" not in str(exc) else "axes"
            _fail(source, key, f"point {i} ({shown}): {exc}")
    return out


def load_spec(path: str | os.PathLike) -> SweepSpec:
    """Read and validate a sweep spec TOML file (stdlib :mod:`tomllib`).

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    SweepSpec

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        Invalid TOML or a malformed spec (the message names the key).
    """
    import tomllib

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sweep spec not found: '{path}'")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise _SpecError(f"sweep spec {path}: invalid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise _SpecError(
            f"sweep spec {path}: not a TOML text file (not valid UTF-8; is it a binary file?)"
        ) from None
    return parse_spec(data, source=str(path))


def as_spec(spec) -> SweepSpec:
    if isinstance(spec, SweepSpec):
        return spec
    if isinstance(spec, Mapping):
        return parse_spec(spec)
    if isinstance(spec, (str, os.PathLike)):
        return load_spec(spec)
    raise TypeError(f"spec must be a SweepSpec, a dict or a TOML path, got {type(spec).__name__}")


def expand(spec) -> list[SweepTask]:
    """All runs of a sweep: the software twin (if asked), then every point x instance.

    Parameters
    ----------
    spec : SweepSpec, dict or path

    Returns
    -------
    list of SweepTask
        In canonical order. Instance ``k`` of every point uses ``device_seeds[k]`` (common
        random numbers across points); the training seed is ``train.seed`` everywhere.
    """
    from ..studies.train import RunSpec, TrainConfig

    spec = as_spec(spec)
    base = spec.train.to_dict()
    tasks = []
    if spec.software:
        tasks.append(
            SweepTask(
                label="software",
                point=None,
                instance=None,
                params={},
                train=TrainConfig(**base).to_dict(),
                run=RunSpec(device="software").to_dict(),
                save_weights=spec.save_weights,
            )
        )
    width = max(4, len(str(spec.n_points - 1)))
    iwidth = max(2, len(str(spec.n_instances - 1)))
    for i, params in enumerate(spec.points()):
        run_kw, train_kw, dev_kw = _split_params(spec.axes, params)
        rs = RunSpec(
            device=run_kw.get("device", spec.run["device"]),
            rule=run_kw.get("rule", spec.run["rule"]),
            mapping=run_kw.get("mapping", spec.run["mapping"]),
            overrides={**spec.run["overrides"], **dev_kw},
            rule_options=spec.run["rule_options"],
        )
        for k, ds in enumerate(spec.device_seeds):
            cfg = TrainConfig(**{**base, **train_kw, "device_seed": ds})
            tasks.append(
                SweepTask(
                    label=f"p{i:0{width}d}-i{k:0{iwidth}d}",
                    point=i,
                    instance=k,
                    params=dict(params),
                    train=cfg.to_dict(),
                    run=rs.to_dict(),
                    save_weights=spec.save_weights,
                )
            )
    return tasks
