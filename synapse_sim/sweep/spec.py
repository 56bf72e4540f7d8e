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

from .axes import (
    MAX_AXIS_VALUES,  # noqa: F401 (re-exported)
    MAX_RUNS,  # noqa: F401 (re-exported)
    SpecError,
    axis_parts,
    axis_values,
    check_plan_size,
    fail,
    is_number,  # noqa: F401 (re-exported)
    suggest,
)
from .kinds import SWEEP_STUDIES, check_points, parse_study, point_config, software_config

_SECTIONS = ("sweep", "train", "run", "bars", "lca", "axes")
_SWEEP_KEYS = (
    "study",
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


def _train_fields() -> tuple[str, ...]:
    from ..studies.train import TrainConfig

    return tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name != "device_seed")


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
    study : {"train", "bars", "lca"}
        Study kind; for ``bars`` and ``lca``, ``train`` holds the fields of the study's config
        (:mod:`synapse_sim.sweep.kinds`) and ``run`` is empty.
    """

    label: str
    point: int | None
    instance: int | None
    params: dict
    train: dict
    run: dict
    save_weights: bool = False
    study: str = "train"

    def to_dict(self) -> dict:
        """Plain dict (JSON-able)."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class SweepSpec:
    """A parsed, validated sweep spec (see the module docstring for the file format).

    Attributes
    ----------
    train : TrainConfig, BarsConfig or LCAConfig
        The base experiment (the config of the study kind).
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
    study : {"train", "bars", "lca"}
        Study kind of every run (:mod:`synapse_sim.sweep.kinds`).
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
    study: str = "train"

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
            if d["study"] == "train":
                del d["study"]  # the plans of train sweeps hash as before the study kinds
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
        raise SpecError(f"sweep spec {source}: must be a table/dict, got {type(spec).__name__}")
    for key in spec:
        if key not in _SECTIONS:
            fail(
                source,
                key,
                f"unknown section; sections are {', '.join(_SECTIONS)}{suggest(key, _SECTIONS)}",
            )
    for key in _SECTIONS:
        if key in spec and not isinstance(spec[key], Mapping):
            fail(source, key, f"must be a table, got {spec[key]!r}")
    sw = dict(spec.get("sweep", {}))
    tr = dict(spec.get("train", {}))
    rn = dict(spec.get("run", {}))
    ax = dict(spec.get("axes", {}))

    # [sweep]
    for key in sw:
        if key not in _SWEEP_KEYS:
            fail(
                source,
                f"sweep.{key}",
                f"unknown key; valid keys: {', '.join(_SWEEP_KEYS)}{suggest(key, _SWEEP_KEYS)}",
            )
    if "device_seeds" in sw and ("instances" in sw or "first_device_seed" in sw):
        fail(
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
            fail(
                source,
                "sweep.device_seeds",
                f"must be a non-empty list of integers >= 0, got {seeds!r}",
            )
        check_plan_size(source, "sweep.device_seeds", len(seeds))
        if len(set(seeds)) != len(seeds):
            fail(source, "sweep.device_seeds", f"seeds must be distinct, got {seeds!r}")
        device_seeds = tuple(seeds)
    else:
        n = sw.get("instances", 1)
        first = sw.get("first_device_seed", 0)
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            fail(source, "sweep.instances", f"must be an integer >= 1, got {n!r}")
        check_plan_size(source, "sweep.instances", n)
        if not isinstance(first, int) or isinstance(first, bool) or first < 0:
            fail(source, "sweep.first_device_seed", f"must be an integer >= 0, got {first!r}")
        device_seeds = tuple(range(first, first + n))
    for key in ("software", "save_weights"):
        if key in sw and not isinstance(sw[key], bool):
            fail(source, f"sweep.{key}", f"must be true or false, got {sw[key]!r}")
    gpus = None
    if "gpus" in sw:
        try:
            gpus = check_gpus("gpus", sw["gpus"])
        except ValueError as exc:
            fail(source, "sweep.gpus", str(exc).removeprefix("gpus "))
    name = sw.get("name", "sweep")
    if not isinstance(name, str) or not name:
        fail(source, "sweep.name", f"must be a non-empty string, got {name!r}")
    study = sw.get("study", "train")
    if study not in SWEEP_STUDIES:
        fail(
            source,
            "sweep.study",
            f"must be one of {', '.join(SWEEP_STUDIES)}, got {study!r}"
            f"{suggest(str(study), SWEEP_STUDIES)}",
        )
    own = ("train", "run") if study == "train" else (study,)
    for key in ("train", "run", "bars", "lca"):
        if key in spec and key not in own:
            fail(source, key, f"section [{key}] does not belong to sweep.study = {study!r}")
    if study != "train":
        return _parse_config_sweep(spec, sw, ax, study, source, device_seeds, gpus, name)

    # [train]
    train_fields = _train_fields()
    for key in tr:
        if key == "device_seed":
            fail(
                source,
                "train.device_seed",
                "device seeds come from sweep.instances / sweep.device_seeds",
            )
        if key not in train_fields:
            fail(source, f"train.{key}", f"unknown TrainConfig field{suggest(key, train_fields)}")
    try:
        base = TrainConfig(**tr)
    except (TypeError, ValueError) as exc:
        bad = next((k for k in tr if k in str(exc)), None)
        fail(source, f"train.{bad}" if bad else "train", str(exc))

    # [run]
    for key in rn:
        if key not in _RUN_KEYS:
            fail(
                source,
                f"run.{key}",
                f"unknown key; valid keys: {', '.join(_RUN_KEYS)}{suggest(key, _RUN_KEYS)}",
            )
    for key in ("overrides", "rule_options"):
        if key in rn and not isinstance(rn[key], Mapping):
            fail(source, f"run.{key}", f"must be a table, got {rn[key]!r}")
    device = rn.get("device")
    if isinstance(device, devices.DeviceModel | Mapping):
        # a device model (e.g. a fitted one), kept as devices.fitting.model_to_dict writes it
        try:
            device = model_to_dict(_device(device))
        except (TypeError, ValueError) as exc:
            fail(source, "run.device", str(exc))
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
    # ``seed`` (the training seed: initial weights, data order) may be an axis; the device
    # seeds stay the instances'
    refused = {
        "device_seed": "device seeds come from sweep.instances / sweep.device_seeds",
        "backend": "it says where runs train, not what they compute (set train.backend, or "
        "--backend)",
    }
    fixed = {
        **{k: "[run]" for k in _RUN_AXES if k in rn},
        **{k: "[train]" for k in tr},
        **{k: "run.overrides" for k in run["overrides"]},
    }
    for key, value in ax.items():
        axis_parts(source, key, seen, refused, fixed)
        axes[key] = axis_values(source, key, value)
        check_plan_size(
            source, "axes", math.prod(len(v) for v in axes.values()) * len(device_seeds) + 1
        )

    devs = list(axes.get("device", ())) or ([run["device"]] if run["device"] else [])
    if not devs:
        fail(source, "run.device", "name a device preset (run.device or axes.device)")
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
                fail(
                    source,
                    where,
                    f"must be one of {', '.join(allowed)}, got {v!r}{suggest(str(v), allowed)}",
                )
    for key, value in run["overrides"].items():
        for d in devs:
            try:
                _device(d, **{key: value})
            except (TypeError, ValueError) as exc:
                fail(source, f"run.overrides.{key}", str(exc))
    # every axis value on its own: names the key of a parameter the device does not accept
    for key, values in axes.items():
        for v in values:
            run_kw, train_kw, dev_kw = _split_params([key], {key: v})
            if train_kw:
                try:
                    TrainConfig(**{**base.to_dict(), **train_kw})
                except (TypeError, ValueError) as exc:
                    fail(source, f"axes.{key}", str(exc))
            for d in devs:
                try:
                    _device(d, **dev_kw)
                except (TypeError, ValueError) as exc:
                    fail(source, f"axes.{key}", f"device {d!r}: {exc}")
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
            fail(source, key, f"point {i} ({shown}): {exc}")
    return out


def _parse_config_sweep(spec, sw, ax, study, source, device_seeds, gpus, name) -> SweepSpec:
    """The rest of :func:`parse_spec` for the ``bars`` and ``lca`` study kinds."""
    software = sw.get("software", study == "bars")
    if software and study == "lca":
        fail(source, "sweep.software", "study 'lca' compares with float codes in every run")
    if gpus is not None:
        fail(source, "sweep.gpus", f"study {study!r} runs on the CPU")
    base, axes = parse_study(study, source, spec.get(study, {}), ax, len(device_seeds))
    out = SweepSpec(
        train=base,
        run={},
        axes=axes,
        device_seeds=device_seeds,
        software=software,
        save_weights=sw.get("save_weights", False),
        name=name,
        source=source,
        raw=json.loads(json.dumps(dict(spec), default=_jsonable)),
        study=study,
    )
    check_points(out)
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
        raise SpecError(f"sweep spec {path}: invalid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise SpecError(
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
        random numbers across points); the training seed is the point's ``seed`` where
        ``seed`` is an axis, else ``train.seed`` (the software twin always uses ``train.seed``).
    """
    from ..studies.train import RunSpec, TrainConfig

    spec = as_spec(spec)
    if spec.study != "train":
        return _config_tasks(spec)
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


def _config_tasks(spec: SweepSpec) -> list[SweepTask]:
    """:func:`expand` for the ``bars`` and ``lca`` kinds: each instance sets the config's seed."""
    width = max(4, len(str(spec.n_points - 1)))
    iwidth = max(2, len(str(spec.n_instances - 1)))
    tasks = []

    def task(label, point, k, params, cfg):
        return SweepTask(
            label=label,
            point=point,
            instance=k,
            params=dict(params),
            train=cfg.to_dict(),
            run={},
            save_weights=spec.save_weights,
            study=spec.study,
        )

    if spec.software:
        for k, ds in enumerate(spec.device_seeds):
            cfg = software_config(spec.train, ds)
            tasks.append(task(f"software-i{k:0{iwidth}d}", None, k, {}, cfg))
    for i, params in enumerate(spec.points()):
        for k, ds in enumerate(spec.device_seeds):
            cfg = point_config(spec.train, spec.axes, params, ds)
            tasks.append(task(f"p{i:0{width}d}-i{k:0{iwidth}d}", i, k, params, cfg))
    return tasks
