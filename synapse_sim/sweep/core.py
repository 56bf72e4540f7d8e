"""Device-variability sweeps: Monte Carlo over device instances and parameters.

A sweep spec (a TOML file or a dict) names a base experiment (:class:`TrainConfig` fields), the
fixed parts of every device run (preset, rule, mapping, fixed overrides), the **axes** (any
device or variability parameter, the preset, the rule, or a training field, each as a list or a
range) and the number of random device **instances** per point. :func:`expand` turns it into the
grid product of the axes; every point x instance is one training run of one device configuration
on the base experiment, and the software twin is trained once per sweep as a reference.

:func:`run_sweep` runs the missing runs serially, on local processes
(:class:`concurrent.futures.ProcessPoolExecutor`) or on Dask distributed (a ``LocalCluster`` or
an existing scheduler), and writes one crash-safe HDF5 file, ``sweep.h5`` (layout in
``docs/results-format.md``). Only the calling process writes; each finished run is added by
copying the file, appending the run's group, fsyncing and renaming the copy onto the file, so a
crash (even ``kill -9``) never corrupts finished runs, and ``resume=True`` runs only what is
missing. Every run takes its seeds from the spec, so results do not depend on the executor, the
worker or the order of execution.

:func:`sweep_records`, :func:`aggregate` and :func:`format_sweep_table` read the file back;
plots are in :mod:`synapse_sim.sweep.plots`.

Spec format
-----------
.. code-block:: toml

    [sweep]                 # optional
    name = "d2d_levels"
    instances = 3           # device instances per point: device_seed = first_device_seed + k
    first_device_seed = 0   # (or device_seeds = [11, 12, 13])
    software = true         # train the software twin once as a reference
    save_weights = false

    [train]                 # the base experiment: TrainConfig fields
    dataset = "digits"
    hidden = [16]
    epochs = 2
    max_train = 400

    [run]                   # fixed parts of every device run
    device = "ag_a_si"
    rule = "bidirectional"
    overrides = { c2c_sigma = 0.0 }

    [axes]                  # grid product of the axes
    sigma_nl = { start = 0.0, stop = 2.0, num = 3 }      # linear range, both ends included
    "levels_ltp+levels_ltd" = [16, 32, 64]               # one axis setting both parameters

GPUs
----
``train.backend = "cupy"`` (or ``run_sweep(backend="cupy")``, ``--backend cupy``) trains every
run on a GPU. ``gpus = [0, 1]`` in ``[sweep]`` (``run_sweep(gpus=...)``, ``--gpus 0,1``) runs
the runs on local worker processes pinned to those GPUs: worker ``k`` sees only GPU
``gpus[k % len(gpus)]`` through ``CUDA_VISIBLE_DEVICES`` (:func:`gpu_worker_env`), one worker
per GPU unless ``workers`` asks for more. The backend says where runs train, not what they
compute: it is not part of the plan a resumed sweep must match, and it cannot be an axis. For
Dask on several GPUs use dask-cuda's ``LocalCUDACluster`` (``docs/GPU.md``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import hashlib
import itertools
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from devices import backends

__all__ = [
    "SweepSpec",
    "SweepTask",
    "SweepResult",
    "load_spec",
    "parse_spec",
    "expand",
    "run_sweep",
    "run_task",
    "read_sweep",
    "sweep_records",
    "aggregate",
    "format_sweep_table",
    "is_sweep_file",
    "gpu_worker_env",
    "THREAD_ENV",
]

#: Environment of a worker process that shares the machine with other workers: one thread for
#: numba and for every BLAS/OpenMP library (set before they are imported).
THREAD_ENV = {
    "NUMBA_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
}

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
#: Backends that run CUDA kernels (``gpus`` pins their workers; ``cuda-sim`` for tests).
_GPU_BACKENDS = backends.CUDA_KERNEL_BACKENDS
_RUN_KEYS = ("device", "rule", "mapping", "overrides", "rule_options")
_RUN_AXES = ("device", "rule", "mapping")
_RANGE_KEYS = ("start", "stop", "num", "step", "scale")
_METRICS = ("final_test_accuracy", "pulses", "refreshes")


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


def _check_gpus(name: str, gpus) -> tuple:
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
    gpus = _check_gpus("gpus", gpus)
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


def _is_number(v) -> bool:
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
        return list(values)
    for k in ("start", "stop"):
        if k not in table:
            _fail(source, key, f"a range needs '{k}' (got keys {sorted(table)})")
        if not _is_number(table[k]) or not math.isfinite(table[k]):
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
        if not _is_number(step) or not math.isfinite(step) or step == 0:
            _fail(source, f"{key}.step", f"must be a finite non-zero number, got {step!r}")
        if (stop - start) * step < 0:
            _fail(source, f"{key}.step", f"step {step!r} does not go from {start!r} to {stop!r}")
        n = int(math.floor((stop - start) / step + 1e-9)) + 1
        raw = start + step * np.arange(n)
        ints = all(isinstance(v, int) for v in (start, stop, step))
    if ints and all(float(v).is_integer() for v in raw):
        return [int(round(v)) for v in raw]
    return [_tidy(v) for v in raw]


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
        Fixed ``device``, ``rule``, ``mapping``, ``overrides`` and ``rule_options``.
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
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"not JSON-serializable: {obj!r}")


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
        if len(set(seeds)) != len(seeds):
            _fail(source, "sweep.device_seeds", f"seeds must be distinct, got {seeds!r}")
        device_seeds = tuple(seeds)
    else:
        n = sw.get("instances", 1)
        first = sw.get("first_device_seed", 0)
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            _fail(source, "sweep.instances", f"must be an integer >= 1, got {n!r}")
        if not isinstance(first, int) or isinstance(first, bool) or first < 0:
            _fail(source, "sweep.first_device_seed", f"must be an integer >= 0, got {first!r}")
        device_seeds = tuple(range(first, first + n))
    for key in ("software", "save_weights"):
        if key in sw and not isinstance(sw[key], bool):
            _fail(source, f"sweep.{key}", f"must be true or false, got {sw[key]!r}")
    gpus = None
    if "gpus" in sw:
        try:
            gpus = _check_gpus("gpus", sw["gpus"])
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
    run = {
        "device": rn.get("device"),
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
            if v not in allowed:
                _fail(
                    source,
                    where,
                    f"must be one of {', '.join(allowed)}, got {v!r}{_suggest(str(v), allowed)}",
                )
    for key, value in run["overrides"].items():
        for d in devs:
            try:
                devices.get(d, **{key: value})
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
                    devices.get(d, **dev_kw)
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
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise _SpecError(f"sweep spec {path}: invalid TOML: {exc}") from None
    return parse_spec(data, source=str(path))


def _as_spec(spec) -> SweepSpec:
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

    spec = _as_spec(spec)
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


# ---------------------------------------------------------------------------- one run
def _limit_threads() -> None:
    """One thread for numba and BLAS in this process (a worker among several)."""
    os.environ.update(THREAD_ENV)
    if "numba" in sys.modules:
        with contextlib.suppress(Exception):
            import numba

            numba.set_num_threads(1)
    with contextlib.suppress(Exception):
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)


def run_task(task, limit_threads: bool = False) -> dict:
    """Train one run of a sweep and return its results as plain data.

    Runs in a worker process (or in the calling process for the serial executor). The result
    depends only on ``task``: every seed comes from the spec.

    Parameters
    ----------
    task : SweepTask or dict
    limit_threads : bool
        Use one numba/BLAS thread (several workers share the machine).

    Returns
    -------
    dict
        ``label``, ``history`` (metric -> list per epoch), ``final`` (final device
        statistics), ``weights`` (``layer<i>`` -> array, or None), ``device``, ``rule``,
        ``dataset``, ``epochs``, ``backend`` (resolved) and ``cuda_visible_devices`` (the
        worker's ``CUDA_VISIBLE_DEVICES`` for the CUDA backends, else None).
    """
    from ..studies.train import RunSpec, TrainConfig, resolve_backend, train

    if limit_threads:
        _limit_threads()
    if isinstance(task, SweepTask):
        task = task.to_dict()
    config = TrainConfig(**task["train"])
    rs = RunSpec(**task["run"])
    backend = resolve_backend(config.backend)
    res = train(config, [rs], progress=False, blas_threads=1)
    label = rs.label
    weights = None
    if task.get("save_weights"):
        weights = {f"layer{i}": np.asarray(w) for i, w in enumerate(res.weights[label])}
    return {
        "label": task["label"],
        "history": {k: [float(v) for v in vs] for k, vs in res.history[label].items()},
        "final": res.final[label],
        "weights": weights,
        "device": rs.device,
        "rule": rs.rule,
        "dataset": config.dataset,
        "epochs": config.epochs,
        "backend": backend,
        "cuda_visible_devices": (
            os.environ.get("CUDA_VISIBLE_DEVICES") if backend in _GPU_BACKENDS else None
        ),
    }


# ---------------------------------------------------------------------------- the file
def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class _SweepWriter:
    """Crash-safe writer of ``sweep.h5`` (only the parent process writes).

    Every :meth:`add` copies the file to ``<path>.tmp``, appends the run's group there, flushes,
    fsyncs and renames it onto ``<path>``: the file is always a complete snapshot.
    """

    def __init__(self, path: Path, config: dict, seed: int, tasks: list, *, resume: bool):
        from ..results.store import package_versions

        self.path = path
        self.tmp = Path(os.fspath(path) + ".tmp")
        self.tasks = {t.label: t for t in tasks}
        self.done: set[str] = set()
        path.parent.mkdir(parents=True, exist_ok=True)
        if resume and path.exists():
            self._check_resume(config)
            return
        from ..results.store import _open_h5

        with _open_h5(self.tmp, "w") as f:
            f.attrs["schema_version"] = np.int64(1)
            f.attrs["created"] = _now()
            f.attrs["updated"] = _now()
            f.attrs["versions"] = json.dumps(package_versions(), sort_keys=True)
            f.attrs["config"] = json.dumps(config, sort_keys=True, default=_jsonable)
            f.attrs["seed"] = np.int64(seed)
            f.attrs["kind"] = "sweep"
            f.attrs["complete"] = np.bool_(False)
            f.attrs["plan_hash"] = config["plan_hash"]
            f.attrs["n_runs"] = np.int64(len(tasks))
            f.create_group("runs")  # children listed by name: canonical order
        self._commit()

    def _check_resume(self, config: dict) -> None:
        from ..results.store import _open_h5

        try:
            with _open_h5(self.path, "r") as f:
                kind = f.attrs.get("kind")
                kind = kind.decode() if isinstance(kind, bytes) else kind
                if kind != "sweep":
                    raise ValueError(f"--resume: '{self.path}' is not a sweep file (kind {kind!r})")
                old = f.attrs.get("plan_hash")
                old = old.decode() if isinstance(old, bytes) else old
                if old != config["plan_hash"]:
                    raise ValueError(
                        f"--resume: '{self.path}' was written for a different spec (its runs "
                        "differ from this spec's); use a new --out folder or --overwrite"
                    )
                runs = f.get("runs")
                for label in runs if runs is not None else ():
                    if label in self.tasks and bool(runs[label].attrs.get("complete", False)):
                        self.done.add(label)
        except OSError as exc:
            raise ValueError(f"--resume: cannot read '{self.path}': {exc}") from None

    def _commit(self) -> None:
        from ..results.store import _fsync_dir

        fd = os.open(self.tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(self.tmp, self.path)
        _fsync_dir(self.path.parent)

    def add(self, result: dict) -> None:
        """Append one finished run (atomically)."""
        from ..results.store import _open_h5, _stat_value, _write_value

        task = self.tasks[result["label"]]
        shutil.copyfile(self.path, self.tmp)
        with _open_h5(self.tmp, "r+") as f:
            runs = f["runs"]
            if task.label in runs:  # an incomplete group (never written by this writer)
                del runs[task.label]
            g = runs.create_group(task.label, track_order=True)
            g.attrs["device"] = result["device"]
            g.attrs["rule"] = result["rule"]
            g.attrs["dataset"] = result["dataset"]
            n = len(next(iter(result["history"].values()), []))
            g.attrs["epochs"] = np.int64(result["epochs"])
            g.attrs["epochs_done"] = np.int64(n)
            g.attrs["complete"] = np.bool_(True)
            extra = {
                "point": task.point,
                "instance": task.instance,
                "params": task.params,
                "seed": task.train["seed"],
                "device_seed": task.train["device_seed"],
                "mapping": task.run["mapping"],
                "overrides": task.run["overrides"],
                "rule_options": task.run["rule_options"],
                "train": task.train,
                "backend": result.get("backend"),
            }
            if result.get("cuda_visible_devices") is not None:
                extra["cuda_visible_devices"] = result["cuda_visible_devices"]
            g.attrs["config"] = json.dumps(extra, sort_keys=True, default=_jsonable)
            g.attrs["point"] = np.int64(-1 if task.point is None else task.point)
            g.attrs["instance"] = np.int64(-1 if task.instance is None else task.instance)
            g.attrs["params"] = json.dumps(task.params, sort_keys=True, default=_jsonable)
            ds = task.train["device_seed"]
            g.attrs["device_seed"] = np.int64(-1 if ds is None else ds)
            for name, values in result["history"].items():
                g.create_dataset(name, data=np.asarray(values, dtype=np.float64))
            final = g.create_group("final", track_order=True)
            stats = _stat_value(f"final statistics of {task.label}", dict(result["final"]))
            for name, value in stats.items():
                _write_value(final, name, value)
            if result.get("weights") is not None:
                wg = g.create_group("weights", track_order=True)
                for name, arr in result["weights"].items():
                    wg.create_dataset(name, data=np.asarray(arr))
            self.done.add(task.label)
            f.attrs["updated"] = _now()
            f.attrs["complete"] = np.bool_(self.done >= set(self.tasks))
            f.flush()
        self._commit()

    def close(self) -> None:
        """Set the root ``complete`` flag (all planned runs are in the file)."""
        from ..results.store import _open_h5

        complete = self.done >= set(self.tasks)
        with _open_h5(self.path, "r") as f:
            if bool(f.attrs["complete"]) == complete:
                return
        shutil.copyfile(self.path, self.tmp)
        with _open_h5(self.tmp, "r+") as f:
            f.attrs["complete"] = np.bool_(complete)
            f.attrs["updated"] = _now()
        self._commit()


# ---------------------------------------------------------------------------- executors
@contextlib.contextmanager
def _env(values: Mapping[str, str]):
    """Set environment variables for processes started inside the block, then restore."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _serial(todo, **_):
    for task in todo:
        yield run_task(task)


def _init_worker(slots) -> None:
    """Initializer of a local worker: one numba/BLAS thread, and with ``slots`` (a queue of
    ``CUDA_VISIBLE_DEVICES`` values, one per worker) its own GPU, set before anything in this
    fresh process touches CUDA."""
    _limit_threads()
    if slots is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = slots.get(timeout=120)


def _processes(todo, *, workers, gpus=None, fn=None, **_):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    fn = run_task if fn is None else fn
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters: env set before imports
    slots = None
    if gpus:
        slots = ctx.Queue()
        for env in gpu_worker_env(gpus, workers):  # worker k takes the k-th value as it starts
            slots.put(env["CUDA_VISIBLE_DEVICES"])
    ex = ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=_init_worker, initargs=(slots,)
    )
    try:
        with _env(THREAD_ENV):  # workers are spawned (inheriting this env) by submit
            futures = [ex.submit(fn, t, True) for t in todo]
        for fut in as_completed(futures):
            yield fut.result()
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


_DASK_PRE_SPAWN = ("MALLOC_TRIM_THRESHOLD_", "PYTHONHASHSEED")


def _dask(todo, *, workers, scheduler, client, **_):
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ImportError(
            "the Dask executor needs dask[distributed]: pip install 'synapse-sim[distributed]'"
        ) from None
    own = []
    try:
        if client is None:
            if scheduler is not None:
                client = Client(scheduler)
            else:
                # distributed sets its pre-spawn variables in this process too: put them back
                saved = {k: os.environ.get(k) for k in (*THREAD_ENV, *_DASK_PRE_SPAWN)}
                try:
                    cluster = LocalCluster(
                        n_workers=workers,
                        threads_per_worker=1,
                        processes=True,
                        env=THREAD_ENV,
                        dashboard_address=None,
                    )
                finally:
                    for k, v in saved.items():
                        if v is None:
                            os.environ.pop(k, None)
                        else:
                            os.environ[k] = v
                own.append(cluster)
                client = Client(cluster)
            own.insert(0, client)
        futures = [client.submit(run_task, t, True, pure=False) for t in todo]
        try:
            for fut in as_completed(futures):
                yield fut.result()
                fut.release()
        finally:
            client.cancel([f for f in futures if not f.done()])
    finally:
        for obj in own:
            with contextlib.suppress(Exception):
                obj.close()


@dataclass
class SweepResult:
    """What :func:`run_sweep` returns.

    Attributes
    ----------
    path : Path
        ``sweep.h5``.
    ran : int
        Runs trained by this call.
    skipped : int
        Runs already in the file (``resume=True``).
    complete : bool
        Every planned run is in the file.
    elapsed : float
        Wall time in seconds.
    """

    path: Path
    ran: int
    skipped: int
    complete: bool
    elapsed: float


def run_sweep(
    spec,
    out,
    *,
    workers: int | None = None,
    executor: str | None = None,
    scheduler: str | None = None,
    client=None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool | None = None,
    backend: str | None = None,
    gpus=None,
) -> SweepResult:
    """Run a sweep and write ``out/sweep.h5``.

    Parameters
    ----------
    spec : SweepSpec, dict or path of a TOML file
    out : str or Path
        Output folder (created).
    workers : int, optional
        Worker processes (``processes`` executor, or the workers of a new Dask LocalCluster);
        default 1, or one per GPU with ``gpus``.
    executor : {"serial", "processes", "dask"}, optional
        Default: ``dask`` when ``scheduler`` or ``client`` is given, ``processes`` when
        ``workers > 1``, else ``serial``.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://HOST:PORT``).
    client : distributed.Client, optional
        Use this Dask client (e.g. of a LocalCluster made in a notebook).
    resume : bool
        Keep the runs already in ``sweep.h5`` (which must come from the same spec) and run
        only the missing ones.
    overwrite : bool
        Replace an existing ``sweep.h5`` (otherwise an existing file is an error unless
        ``resume``).
    progress : bool, optional
        tqdm bar over points (default: when stderr is a terminal).
    backend : {"auto", "numpy", "numba", "cupy", "cuda-sim"}, optional
        Array backend of every run; replaces the spec's ``train.backend``. Not part of the
        plan: a sweep may be resumed on another backend (each run records its own).
    gpus : sequence of int, optional
        Pin the local worker processes to these GPUs (replaces the spec's ``sweep.gpus``):
        worker ``k`` gets ``CUDA_VISIBLE_DEVICES=gpus[k % len(gpus)]``
        (:func:`gpu_worker_env`). Needs backend ``cupy`` (``cuda-sim`` for tests) and the
        ``processes`` executor (the default with ``gpus``).

    Returns
    -------
    SweepResult

    Raises
    ------
    ValueError
        Bad spec or arguments, an existing file without ``resume``/``overwrite``, a file
        from another spec with ``resume``, or a backend that cannot run here (checked before
        anything is written, except with a Dask ``scheduler``/``client``: their workers may
        have GPUs this process has not).
    RuntimeError
        A run failed (the finished runs stay in the file; fix and resume).

    Notes
    -----
    The ``processes`` and ``dask`` executors start fresh (spawned) worker processes with one
    numba/BLAS thread each (:data:`THREAD_ENV`); as with any spawned process, a script that
    calls this must guard its entry point with ``if __name__ == "__main__":``.
    """
    t0 = time.perf_counter()
    spec = _as_spec(spec)
    if backend is not None:
        spec = dataclasses.replace(spec, train=dataclasses.replace(spec.train, backend=backend))
    gpus = _check_gpus("gpus", gpus) if gpus is not None else spec.gpus
    if workers is None:
        workers = len(gpus) if gpus else 1
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    remote = scheduler is not None or client is not None
    if executor is None:
        executor = "dask" if remote else ("processes" if workers > 1 or gpus else "serial")
    runners = {"serial": _serial, "processes": _processes, "dask": _dask}
    if executor not in runners:
        raise ValueError(f"executor must be one of {', '.join(runners)}, got {executor!r}")
    if gpus:
        if executor != "processes":
            raise ValueError(
                f"gpus pins local worker processes to GPUs (executor 'processes'), got executor "
                f"{executor!r}; for Dask on several GPUs start dask-cuda's LocalCUDACluster and "
                "pass its client or scheduler address (docs/GPU.md)"
            )
        if spec.train.backend not in _GPU_BACKENDS:
            raise ValueError(
                f"gpus needs backend 'cupy' (train.backend or --backend), got "
                f"{spec.train.backend!r}"
            )
        gpu_worker_env(gpus, workers)  # workers >= len(gpus)
    if not remote:
        from ..studies.train import resolve_backend

        resolve_backend(spec.train.backend)  # e.g. no GPU here: say so before writing
    out = Path(out)
    path = out / "sweep.h5"
    if path.exists() and not resume and not overwrite:
        raise ValueError(
            f"'{path}' exists; use --resume to finish it or --overwrite to start again"
        )
    tasks = spec.tasks()
    config = {
        "name": spec.name,
        "spec": spec.raw,
        "source": spec.source,
        "train": spec.train.to_dict(),
        "run": spec.run,
        "axes": {k: list(v) for k, v in spec.axes.items()},
        "axis_names": list(spec.axes),
        "device_seeds": list(spec.device_seeds),
        "software": spec.software,
        "save_weights": spec.save_weights,
        "backend": spec.train.backend,
        "gpus": list(gpus) if gpus else None,
        "points": spec.points(),
        "labels": [t.label for t in tasks],
        "plan_hash": spec.plan_hash(),
    }
    writer = _SweepWriter(path, config, int(spec.train.seed), tasks, resume=resume)
    todo = [t for t in tasks if t.label not in writer.done]
    skipped = len(tasks) - len(todo)
    if progress is None:
        progress = sys.stderr.isatty()
    # the bar counts points (the software twin is one); a point is done with its last instance
    key = {t.label: ("software" if t.point is None else t.point) for t in tasks}
    left: dict = {}
    for t in todo:
        left[key[t.label]] = left.get(key[t.label], 0) + 1
    n_keys = len(set(key.values()))
    from tqdm.auto import tqdm

    bar = tqdm(
        total=n_keys,
        initial=n_keys - len(left),
        desc=f"sweep {spec.name}",
        unit="point",
        disable=not progress,
        leave=False,
    )
    ran = 0
    try:
        for result in runners[executor](
            todo, workers=workers, scheduler=scheduler, client=client, gpus=gpus
        ):
            writer.add(result)
            ran += 1
            k = key[result["label"]]
            left[k] -= 1
            if left[k] == 0:
                bar.update(1)
    except (KeyboardInterrupt, ImportError):
        raise
    except Exception as exc:
        raise RuntimeError(
            f"sweep stopped after {ran} of {len(todo)} runs ({type(exc).__name__}: {exc}); "
            f"finished runs are in '{path}': fix the cause and run again with resume"
        ) from exc
    finally:
        bar.close()
    writer.close()
    complete = writer.done >= {t.label for t in tasks}
    return SweepResult(path, ran, skipped, complete, time.perf_counter() - t0)


# ---------------------------------------------------------------------------- reading
def _sweep_path(path) -> Path:
    p = Path(path)
    return p / "sweep.h5" if p.is_dir() else p


def is_sweep_file(path) -> bool:
    """True if ``path`` is an HDF5 file whose root attribute ``kind`` is ``"sweep"``."""
    import h5py

    from ..results.store import _open_h5

    p = _sweep_path(path)
    if not p.is_file() or not h5py.is_hdf5(p):
        return False
    with _open_h5(p, "r") as f:
        kind = f.attrs.get("kind")
    return (kind.decode() if isinstance(kind, bytes) else kind) == "sweep"


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
            software = label == "software"
            point = None if software else int(label[1:].split("-")[0])
            instance = None if software else int(label.split("-i")[1])
            params = {} if software else cfg["points"][point]
            dseed = None if software else seeds[instance]
            tseed = cfg["train"].get("seed")
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
            seed=dseed if point is not None else tseed,
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


def aggregate(source, metrics=_METRICS) -> list[dict]:
    """Mean and standard deviation over device instances, one dict per point.

    Parameters
    ----------
    source : path or dict
        ``sweep.h5``, its folder, what :func:`read_sweep` returns, or a list of
        :func:`sweep_records`.
    metrics : sequence of str
        Record keys to aggregate (default final test accuracy, pulses, refreshes).

    Returns
    -------
    list of dict
        Per point, in grid order: ``point``, ``params``, ``n`` (complete instances),
        ``n_planned``, and for every metric ``<m>_mean``, ``<m>_std`` (sample standard
        deviation, ``ddof=1``; None with fewer than two instances) and ``<m>_values`` (one
        value per complete instance, in instance order). The software twin, if present, comes
        first with ``point`` None.
    """
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


def _pm(mean, std, scale=1.0, fmt="{:.2f}") -> str:
    if mean is None:
        return "-"
    text = fmt.format(mean * scale)
    return text if std is None else f"{text} ± {fmt.format(std * scale)}"


def format_sweep_table(rows: list[dict]) -> str:
    """Markdown table of :func:`aggregate` rows (accuracy in percent, mean ± std)."""
    axes = []
    for r in rows:
        for k in r["params"]:
            if k not in axes:
                axes.append(k)
    header = ["point", *axes, "n", "final test acc (%)", "pulses", "refreshes"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---:"] * len(header)) + "|"]
    for r in rows:
        cells = ["software" if r["point"] is None else str(r["point"])]
        cells += [
            "-"
            if k not in r["params"]
            else f"{r['params'][k]:g}"
            if _is_number(r["params"][k])
            else str(r["params"][k])
            for k in axes
        ]
        cells.append(f"{r['n']}/{r['n_planned']}")
        cells.append(_pm(r.get("final_test_accuracy_mean"), r.get("final_test_accuracy_std"), 100))
        cells.append(_pm(r.get("pulses_mean"), r.get("pulses_std"), fmt="{:.4g}"))
        cells.append(_pm(r.get("refreshes_mean"), r.get("refreshes_std"), fmt="{:.4g}"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def sweep_report(source) -> str:
    """Header line and :func:`format_sweep_table` of a sweep file."""
    res = source if isinstance(source, Mapping) else read_sweep(source)
    cfg = res["config"]
    tr = cfg.get("train", {})
    rows = aggregate(res)
    done = sum(r["n"] for r in rows)
    total = sum(r["n_planned"] for r in rows)
    head = (
        f"Sweep `{cfg.get('name')}`: {len(cfg.get('points', []))} points x "
        f"{len(cfg.get('device_seeds', []))} device instances, dataset `{tr.get('dataset')}`, "
        f"hidden {tr.get('hidden')}, {tr.get('epochs')} epochs, seed {res.get('seed')}; "
        f"{done}/{total} runs done{'' if res.get('complete') else ' (incomplete)'}.\n\n"
    )
    return head + format_sweep_table(rows)
