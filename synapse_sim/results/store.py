"""The HDF5 results store: one crash-safe file per run.

:class:`ResultsWriter` keeps everything in memory and, after every change, writes a
complete snapshot to ``path + ".tmp"``, flushes and fsyncs it, and renames it onto
``path`` with :func:`os.replace`. The file at ``path`` is therefore always a complete,
readable snapshot: a crash (even ``kill -9``) at any moment leaves either the previous
snapshot or the new one, never a half-written file. The root attribute ``complete`` is
True only after :meth:`ResultsWriter.close` with ``complete=True``.

:func:`read_results` returns the file as plain Python and numpy objects,
:func:`summary_records` flattens it into one JSON-able dict per run, and
:func:`format_table` renders those records as a markdown table. The layout is
documented in ``docs/results-format.md``.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import importlib.metadata
import json
import math
import os
import platform
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

__all__ = [
    "SCHEMA_VERSION",
    "WRITE_MODES",
    "ResultsWriter",
    "ResumeMismatchError",
    "check_writable",
    "results_kind",
    "format_table",
    "package_versions",
    "read_results",
    "summary_records",
]

SCHEMA_VERSION = 1
"""Version of the file layout written by :class:`ResultsWriter`."""

_RESERVED_RUN_NAMES = frozenset({"final", "weights", "checkpoint"})

#: What :class:`ResultsWriter` does with an existing file: replace it (``"overwrite"``), refuse
#: it (``"new"``), or load it and continue (``"resume"``).
WRITE_MODES = ("overwrite", "new", "resume")
#: Orders of the ``runs`` group: as added, or by label (independent of completion order).
RUN_ORDERS = ("insertion", "name")
#: Attribute names of a run group that :class:`ResultsWriter` writes itself.
_RUN_ATTRS = ("device", "rule", "dataset", "config", "epochs", "epochs_done", "complete")
#: Root attribute names that :class:`ResultsWriter` writes itself.
_ROOT_ATTRS = ("schema_version", "created", "updated", "versions", "config", "seed", "kind")

# The process umask, read once: snapshot files are made by mkstemp (mode 0600) and given the
# permissions a plain open() would give them.
_UMASK = os.umask(0)
os.umask(_UMASK)


class ResumeMismatchError(ValueError):
    """``mode="resume"`` found a file written for something else (another kind or plan).

    Attributes
    ----------
    key : str
        The root attribute that differs (``"kind"`` or a key of ``attrs``).
    """

    def __init__(self, message: str, key: str) -> None:
        super().__init__(message)
        self.key = key


# ----------------------------------------------------------------------------- helpers


def _dist_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def package_versions() -> dict[str, str]:
    """Versions of Python, synapse-sim and the main dependencies.

    Versions come from package metadata (``importlib.metadata``); nothing is imported
    to find them, so torch is never imported here. A package that is not installed is
    left out (synapse-sim itself reports ``"0+unknown"``).

    Returns
    -------
    dict of str to str
        Keys ``python``, ``synapse_sim``, ``numpy``, ``numba``, ``h5py``, ``hdf5`` and
        ``torch`` (the last only when installed).
    """
    versions = {
        "python": platform.python_version(),
        "synapse_sim": _dist_version("synapse-sim") or "0+unknown",
        "numpy": np.__version__,
        "h5py": h5py.__version__,
        "hdf5": h5py.version.hdf5_version,
    }
    for dist in ("numba", "torch"):
        v = _dist_version(dist)
        if v is not None:
            versions[dist] = v
    return versions


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (Path, os.PathLike)):
        return os.fspath(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=repr)
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serializable")


def _to_json(name: str, value: Any) -> str:
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a dict, got {type(value).__name__}")
    try:
        return json.dumps(dict(value), default=_json_default, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be JSON-serializable: {exc}") from exc


def _check_name(kind: str, name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(f"{kind} must be a non-empty str, got {name!r}")
    if "/" in name or name in (".", ".."):
        raise ValueError(f"{kind} {name!r} must not contain '/' or be '.' or '..'")
    return name


def _check_str(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {value!r}")
    return value


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _metric_value(label: str, name: str, value: Any) -> float:
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        raise ValueError(
            f"metric {name!r} of run {label!r} must be a finite real number, got {value!r}"
        )
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(
            f"metric {name!r} of run {label!r} must be a finite real number, got {value!r}"
        )
    if name.endswith("accuracy") and not (0.0 <= value <= 1.0):
        raise ValueError(
            f"metric {name!r} of run {label!r} must be a fraction in [0, 1], got {value!r}"
        )
    return value


def _stat_value(where: str, value: Any) -> Any:
    """Validate and normalize one value of ``final``/``weights`` (recursing into dicts)."""
    if isinstance(value, Mapping):
        return {
            _check_name(f"key in {where}", k): _stat_value(f"{where}/{k}", v)
            for k, v in value.items()
        }
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    try:
        arr = np.array(value)  # copy: later changes by the caller do not leak in
    except Exception as exc:  # pragma: no cover - numpy raises many kinds here
        raise TypeError(f"{where} must be a number, str or numeric array: {exc}") from exc
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{where} must be a number, str, bool or numeric (bool/int/float) array, "
            f"got {type(value).__name__} with dtype {arr.dtype}"
        )
    return arr


def _write_value(group: h5py.Group, name: str, value: Any) -> None:
    if isinstance(value, dict):
        sub = group.create_group(name)
        for k, v in value.items():
            _write_value(sub, k, v)
    elif isinstance(value, str):
        group.create_dataset(name, data=value, dtype=h5py.string_dtype("utf-8"))
    else:
        group.create_dataset(name, data=value)


def _read_value(obj: h5py.Group | h5py.Dataset) -> Any:
    if isinstance(obj, h5py.Group):
        return {k: _read_value(obj[k]) for k in obj}
    if h5py.check_string_dtype(obj.dtype) is not None:
        data = obj.asstr()[()]
        return data if isinstance(data, str) else np.asarray(data, dtype=object)
    data = obj[()]
    if isinstance(data, np.ndarray) and data.ndim > 0:
        return data
    return np.asarray(data).item()


def _attr(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.generic):
        return value.item()
    return value


def _check_attrs(where: str, attrs: Mapping[str, Any] | None, reserved) -> dict[str, Any]:
    """Extra HDF5 attributes: str keys (not reserved) -> str, bool, int or float values."""
    if attrs is None:
        return {}
    if not isinstance(attrs, Mapping):
        raise TypeError(f"{where} must be a dict or None, got {type(attrs).__name__}")
    out = {}
    for key, value in attrs.items():
        _check_name(f"key of {where}", key)
        if key in reserved:
            raise ValueError(f"{where} key {key!r} is reserved (reserved: {sorted(reserved)})")
        if isinstance(value, (bool, np.bool_)):
            value = np.bool_(value)
        elif isinstance(value, (int, np.integer)):
            value = np.int64(value)
        elif isinstance(value, (float, np.floating)):
            value = np.float64(value)
        elif not isinstance(value, str):
            raise TypeError(
                f"{where}[{key!r}] must be a str, bool, int or float, got {type(value).__name__}"
            )
        out[key] = value
    return out


def results_kind(path: str | os.PathLike[str]) -> str | None:
    """The ``kind`` of a results file (``"train"``, ``"sweep"``, ``"bars"``, ...), or None.

    None when ``path`` is not a readable HDF5 file with a ``kind`` attribute; never raises for a
    missing or foreign file, so commands can dispatch on it.
    """
    p = Path(os.fspath(path))
    try:
        if not p.is_file() or not h5py.is_hdf5(p):
            return None
        with _open_h5(p, "r") as f:
            kind = f.attrs.get("kind")
    except OSError:
        return None
    return _attr(kind) if kind is not None else None


def check_writable(path: str | os.PathLike[str]) -> None:
    """Check that a results file can be written at ``path`` (creating missing folders).

    Commands call this before any work, so a read-only ``--out`` fails at once with a message
    naming the folder, not after the first run with a raw HDF5 error.

    Raises
    ------
    OSError
        The folder cannot be created, or is not writable (the message says "not writable" and
        names the folder and the results file).
    """
    path = Path(os.fspath(path))
    directory = path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(
            exc.errno,
            f"cannot create the directory {str(directory)!r} for results file "
            f"{str(path)!r}: {exc.strerror or exc}",
            str(directory),
        ) from exc
    try:
        fd, probe = tempfile.mkstemp(prefix=".probe-", suffix=".tmp", dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OSError(
            exc.errno,
            f"cannot write results file {str(path)!r}: the directory "
            f"{str(directory)!r} is not writable ({exc.strerror or exc})",
            str(directory),
        ) from exc


def _fsync_dir(directory: Path) -> None:
    # Make the rename durable; not possible on every platform (e.g. Windows).
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _open_h5(path: str | Path, mode: str) -> h5py.File:
    # File locking is useless for snapshot files (renamed into place) and fails on some
    # cluster file systems; turn it off where this HDF5 supports that.
    try:
        return h5py.File(path, mode, locking=False)
    except (TypeError, ValueError):  # pragma: no cover - very old HDF5
        return h5py.File(path, mode)


# ----------------------------------------------------------------------------- writer


class ResultsWriter:
    """Write one run's results to an HDF5 file, crash-safe.

    Everything is kept in memory; after every :meth:`add_run`, :meth:`append_epoch`,
    :meth:`set_final` and :meth:`mark_complete` a full snapshot is written to
    ``path + ".tmp"``, flushed, fsynced and renamed onto ``path``
    (:func:`os.replace`), so the file at ``path`` is always complete and readable.

    Parameters
    ----------
    path : str or os.PathLike
        The results file (e.g. ``out/results.h5``). Missing parent directories are
        created; an existing file is replaced by the first snapshot.
    config : dict
        The run configuration, stored as JSON in the root attribute ``config``. Numpy
        scalars/arrays and paths are converted; other objects are a ``TypeError``.
    seed : int
        The run's seed (>= 0), stored in the root attribute ``seed``.
    kind : str, default "train"
        What produced the file (``"train"``, ``"sweep"``, ...).
    mode : {"overwrite", "new", "resume"}, default "overwrite"
        What to do with an existing file: replace it with the first snapshot; refuse it
        (:class:`FileExistsError`, so finished work is never lost by accident); or load it
        (runs, epochs, final statistics, weights, extra attributes) and continue writing to it.
        ``"resume"`` on a missing file starts a new one.
    attrs : dict, optional
        Extra root attributes (str -> str, bool, int or float), e.g. a sweep's ``plan_hash``.
        With ``mode="resume"`` each must equal the stored value (a file written for another
        plan raises :class:`ResumeMismatchError`).
    run_order : {"insertion", "name"}, default "insertion"
        Order of the runs in the file: as added, or sorted by label (runs added in completion
        order by parallel workers then read back in the same order every time).
    check_config : bool, default False
        With ``mode="resume"``: the stored ``config`` must equal ``config`` (a file from a
        different configuration raises :class:`ResumeMismatchError` with key ``"config"``
        naming the fields that differ). Training studies resume only their own config; a sweep
        checks its plan through ``attrs`` instead.

    Raises
    ------
    OSError
        The directory cannot be created or written (the message names the path).
    FileExistsError
        ``mode="new"`` and the file exists.
    ResumeMismatchError
        ``mode="resume"`` and the file holds another ``kind`` or other ``attrs``.
    TypeError, ValueError
        Bad ``config``, ``seed``, ``kind``, ``mode``, ``attrs`` or ``run_order``; a file to
        resume that is not a readable results file.

    Examples
    --------
    >>> with ResultsWriter("out/results.h5", {"lr": 0.1}, seed=0) as w:  # doctest: +SKIP
    ...     w.add_run("software", device="ideal", rule="sgd", dataset="mnist5k", epochs=2)
    ...     w.append_epoch("software", test_accuracy=0.91, pulses=0)
    ...     w.set_final("software", {"saturated_fraction": 0.0})
    ...     w.mark_complete("software")
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        config: Mapping[str, Any],
        seed: int,
        kind: str = "train",
        *,
        mode: str = "overwrite",
        attrs: Mapping[str, Any] | None = None,
        run_order: str = "insertion",
        check_config: bool = False,
    ) -> None:
        from devices.validation import check_bool, check_choice

        self._check_config = check_bool("check_config", check_config)
        mode = check_choice("mode", mode, WRITE_MODES)
        self._run_order = check_choice("run_order", run_order, RUN_ORDERS)
        self._attrs = _check_attrs("attrs", attrs, _ROOT_ATTRS + ("complete",))
        self._config_json = _to_json("config", config)
        self._seed = _check_int("seed", seed, 0)
        kind = _check_str("kind", kind)
        if not kind:
            raise ValueError("kind must be a non-empty str, got ''")
        self._kind = kind
        self.path = Path(os.fspath(path))
        if self.path.is_dir():
            raise ValueError(f"results path {str(self.path)!r} is a directory; give a file path")
        check_writable(self.path)
        self._created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        self._versions_json = json.dumps(package_versions(), sort_keys=True)
        self._runs: dict[str, dict[str, Any]] = {}
        self._complete = False
        self._closed = False
        self._defer = False
        #: With ``mode="resume"``: whether the loaded file was closed complete (else False).
        self.resumed_complete = False
        exists = self.path.exists()
        if exists and mode == "new":
            raise FileExistsError(
                errno.EEXIST,
                f"results file {str(self.path)!r} exists; resume it or overwrite it explicitly "
                "(mode='resume' / 'overwrite'; on the command line --resume / --overwrite)",
                str(self.path),
            )
        if exists and mode == "resume":
            self._load()
        else:
            self._snapshot()

    # -- setup ---------------------------------------------------------------------------

    # -- context manager -----------------------------------------------------------------

    def __enter__(self) -> ResultsWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(complete=exc_type is None)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"ResultsWriter({str(self.path)!r}, runs={list(self._runs)}, {state})"

    # -- public API ----------------------------------------------------------------------

    @property
    def labels(self) -> list[str]:
        """Labels of the runs added so far, in order."""
        return list(self._runs)

    def epochs_done(self, label: str) -> int:
        """Number of epochs appended to run ``label``."""
        return self._run(label)["n_epochs"]

    @property
    def completed(self) -> list[str]:
        """Labels of the runs marked complete (after ``mode="resume"``: also those loaded)."""
        return [label for label, run in self._runs.items() if run["complete"]]

    def metrics(self, label: str) -> dict[str, list[float]]:
        """The per-epoch series of run ``label`` so far (copies)."""
        return {k: list(v) for k, v in self._run(label)["metrics"].items()}

    def weights(self, label: str) -> dict[str, np.ndarray] | None:
        """The weights stored for run ``label`` (None if none were stored)."""
        w = self._run(label)["weights"]
        return None if w is None else {k: v.copy() for k, v in w.items()}

    def add_run(
        self,
        label: str,
        *,
        device: str,
        rule: str,
        dataset: str,
        epochs: int,
        config: Mapping[str, Any] | None = None,
        attrs: Mapping[str, Any] | None = None,
        replace: bool = False,
    ) -> None:
        """Add a run (one configuration) as group ``runs/<label>``.

        Parameters
        ----------
        label : str
            Unique, non-empty, without ``/`` (e.g. ``"software"``,
            ``"ag_a_si-unidirectional"``).
        device, rule, dataset : str
            Names stored as attributes of the run group.
        epochs : int
            Planned number of epochs (>= 0).
        config : dict, optional
            Extra per-run configuration, stored as JSON.
        attrs : dict, optional
            Extra attributes of the run group (str -> str, bool, int or float).
        replace : bool, default False
            Replace a run of the same label that is not complete (e.g. one loaded by
            ``mode="resume"`` that stopped part-way), instead of raising.

        Raises
        ------
        ValueError
            Bad or duplicate label (a complete run is never replaced), negative ``epochs``, or
            the writer is closed.
        """
        self._check_open()
        label = _check_name("run label", label)
        if label in self._runs and not (replace and not self._runs[label]["complete"]):
            state = "is complete" if self._runs[label]["complete"] else "was already added"
            raise ValueError(f"run label {label!r} {state}; labels must be unique")
        self._runs.pop(label, None)
        self._runs[label] = {
            "device": _check_str("device", device),
            "rule": _check_str("rule", rule),
            "dataset": _check_str("dataset", dataset),
            "epochs": _check_int("epochs", epochs, 0),
            "config": _to_json("config", config),
            "complete": False,
            "n_epochs": 0,
            "metrics": {},
            "final": {},
            "weights": None,
            "checkpoint": None,
            "attrs": _check_attrs(f"attrs of run {label!r}", attrs, _RUN_ATTRS),
        }
        self._snapshot()

    def write_run(
        self,
        label: str,
        *,
        device: str,
        rule: str,
        dataset: str,
        epochs: int,
        history: Mapping[str, Any],
        final: Mapping[str, Any],
        weights: Mapping[str, Any] | None = None,
        config: Mapping[str, Any] | None = None,
        attrs: Mapping[str, Any] | None = None,
    ) -> None:
        """Add a finished run in one snapshot: its whole history, final statistics, weights.

        What :meth:`add_run`, one :meth:`append_epoch` per epoch, :meth:`set_final` and
        :meth:`mark_complete` would write, in one atomic step (a sweep adds each run as it
        arrives from a worker). A run of the same label that is not complete is replaced.

        Parameters
        ----------
        history : dict
            Metric name -> sequence of per-epoch values (equal lengths; finite reals).
        final, weights, config, attrs
            As for :meth:`set_final` and :meth:`add_run`.
        """
        self._check_open()
        label = _check_name("run label", label)
        series = {}
        lengths = set()
        for name, values in history.items():
            if name in _RESERVED_RUN_NAMES:
                raise ValueError(
                    f"metric name {name!r} is reserved (reserved: {sorted(_RESERVED_RUN_NAMES)})"
                )
            vals = [_metric_value(label, name, v) for v in np.asarray(values).ravel()]
            series[name] = vals
            lengths.add(len(vals))
        if len(lengths) > 1:
            raise ValueError(f"history of run {label!r} has series of different lengths")
        outer = not self._defer
        self._defer = True  # one snapshot at the end
        try:
            self.add_run(
                label,
                device=device,
                rule=rule,
                dataset=dataset,
                epochs=epochs,
                config=config,
                attrs=attrs,
                replace=True,
            )
            run = self._runs[label]
            run["metrics"] = series
            run["n_epochs"] = lengths.pop() if lengths else 0
            self.set_final(label, final, weights)
            run["complete"] = True
        except BaseException:
            self._runs.pop(label, None)
            raise
        finally:
            self._defer = not outer
        if outer:
            self._snapshot()

    def append_epoch(self, label: str, **metrics: float) -> None:
        """Append one epoch of scalar metrics to run ``label``.

        Every series of the run grows by one value; a metric not given in this epoch
        (or first given in a later epoch) is stored as NaN for the epochs it misses.

        Parameters
        ----------
        label : str
            A label given to :meth:`add_run`.
        **metrics : float
            Finite real numbers, e.g. ``train_accuracy``, ``test_accuracy``,
            ``train_loss``, ``test_loss``, ``pulses``, ``refreshes``,
            ``saturated_fraction``. Names ending in ``accuracy`` must be fractions in
            ``[0, 1]``.

        Raises
        ------
        ValueError
            Unknown label, no metrics, a metric that is not a finite number (the
            message names it), a reserved name (``final``, ``weights``), or a run
            already marked complete.
        """
        self._check_open()
        run = self._run(label)
        if run["complete"]:
            raise ValueError(f"run {label!r} is marked complete; cannot append epochs")
        if not metrics:
            raise ValueError(f"append_epoch({label!r}) needs at least one metric")
        values = {}
        for name, value in metrics.items():
            if name in _RESERVED_RUN_NAMES:
                raise ValueError(
                    f"metric name {name!r} is reserved (reserved: {sorted(_RESERVED_RUN_NAMES)})"
                )
            values[name] = _metric_value(label, name, value)
        n = run["n_epochs"]
        series = run["metrics"]
        for name, value in values.items():
            series.setdefault(name, [math.nan] * n).append(value)
        for values_list in series.values():
            if len(values_list) == n:
                values_list.append(math.nan)
        run["n_epochs"] = n + 1
        self._snapshot()

    def set_final(
        self,
        label: str,
        stats: Mapping[str, Any],
        weights: Mapping[str, Any] | None = None,
    ) -> None:
        """Store final device statistics (and optionally weights) of run ``label``.

        Each call replaces the stored statistics; weights are replaced only when given.

        Parameters
        ----------
        label : str
            A label given to :meth:`add_run`.
        stats : dict
            Name -> number, bool, str, numeric array, or a nested dict of those
            (written as a subgroup of ``final``).
        weights : dict, optional
            Name -> numeric array (stored with its dtype and shape in ``weights``).

        Raises
        ------
        ValueError
            Unknown label, or a key containing ``/``.
        TypeError
            A value that is not a number, str or numeric array.
        """
        self._check_open()
        run = self._run(label)
        if not isinstance(stats, Mapping):
            raise TypeError(f"stats must be a dict, got {type(stats).__name__}")
        final = _stat_value(f"final statistics of run {label!r}", dict(stats))
        if weights is not None:
            if not isinstance(weights, Mapping):
                raise TypeError(f"weights must be a dict or None, got {type(weights).__name__}")
            stored = {}
            for name, w in weights.items():
                _check_name(f"weight name in run {label!r}", name)
                arr = _stat_value(f"weights[{name!r}] of run {label!r}", w)
                if not isinstance(arr, np.ndarray):
                    arr = np.asarray(arr)
                if arr.dtype.kind not in "biuf":
                    raise TypeError(
                        f"weights[{name!r}] of run {label!r} must be a numeric array, "
                        f"got {type(w).__name__}"
                    )
                stored[name] = arr
            run["weights"] = stored
        run["final"] = final
        self._snapshot()

    def checkpoint(self, label: str) -> dict[str, Any] | None:
        """The checkpoint stored for run ``label`` (see :meth:`set_checkpoint`), or None."""
        return self._run(label).get("checkpoint")

    def set_checkpoint(self, label: str, state: Mapping[str, Any] | None) -> None:
        """Store (or, with None, drop) the checkpoint of run ``label``: what a study needs to
        continue the run bit for bit (weights or device state, counters, RNG states, epoch).

        Written as the group ``runs/<label>/checkpoint`` of the same crash-safe snapshots as
        the metrics; together with :meth:`append_epoch` inside :meth:`transaction` an epoch
        and its checkpoint reach the file in one atomic step. :meth:`close` with
        ``complete=True`` drops every checkpoint.

        Parameters
        ----------
        label : str
        state : dict or None
            Name -> number, str, numeric array or nested dict of those (as for
            :meth:`set_final`).
        """
        self._check_open()
        run = self._run(label)
        if state is not None:
            if not isinstance(state, Mapping):
                raise TypeError(f"state must be a dict or None, got {type(state).__name__}")
            state = _stat_value(f"checkpoint of run {label!r}", dict(state))
        run["checkpoint"] = state
        self._snapshot()

    @contextlib.contextmanager
    def transaction(self):
        """Group changes into one snapshot: inside the block nothing is written; at its end
        (without an exception) one snapshot holds every change, so they reach the file
        together or not at all. Nested blocks write once, at the outermost end."""
        self._check_open()
        outer = not self._defer
        self._defer = True
        try:
            yield self
        finally:
            if outer:
                self._defer = False
        if outer:
            self._snapshot()

    def mark_complete(self, label: str) -> None:
        """Mark run ``label`` as finished (its group's ``complete`` attribute is True)."""
        self._check_open()
        self._run(label)["complete"] = True
        self._snapshot()

    def close(self, complete: bool = True) -> None:
        """Write the last snapshot and close the writer.

        Parameters
        ----------
        complete : bool, default True
            Value of the root attribute ``complete``; pass False when the job stopped
            early (the runs' checkpoints stay in the file, so it can be resumed; a complete
            file drops them). Closing an already closed writer does nothing.
        """
        if self._closed:
            return
        self._complete = bool(complete)
        if self._complete:  # finished: nothing left to resume from
            for run in self._runs.values():
                run["checkpoint"] = None
        self._snapshot()
        self._closed = True

    # -- internals -----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"ResultsWriter for {str(self.path)!r} is closed")

    def _run(self, label: str) -> dict[str, Any]:
        try:
            return self._runs[label]
        except (KeyError, TypeError):
            known = ", ".join(repr(k) for k in self._runs) or "none yet"
            raise ValueError(
                f"unknown run label {label!r}; runs added with add_run: {known}"
            ) from None

    def _match_config(self, where: str, stored_json: Any) -> None:
        try:
            stored = json.loads(stored_json)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: its config attribute is not valid JSON") from None
        mine = json.loads(self._config_json)
        if stored == mine:
            return
        keys = sorted(set(stored) | set(mine), key=str)
        differ = [k for k in keys if stored.get(k) != mine.get(k)]
        details = []
        for k in differ[:5]:
            a, b = stored.get(k), mine.get(k)
            if isinstance(a, dict) and isinstance(b, dict):
                sub = sorted((s for s in set(a) | set(b) if a.get(s) != b.get(s)), key=str)[:5]
                details += [f"{k}.{s}: file {a.get(s)!r}, now {b.get(s)!r}" for s in sub]
            else:
                details.append(f"{k}: file {a!r}, now {b!r}")
        raise ResumeMismatchError(
            f"{where}: it was written for a different configuration ("
            + "; ".join(details)
            + "); resume with the same options, or use --overwrite / another --out",
            "config",
        )

    def _load(self) -> None:
        """Load an existing file for ``mode="resume"`` (checks kind and ``attrs``)."""
        where = f"cannot resume {str(self.path)!r}"
        try:
            f = _open_h5(self.path, "r")
        except OSError as exc:
            raise ValueError(f"{where}: not a readable HDF5 file ({exc})") from None
        with f:
            root = {k: _attr(v) for k, v in f.attrs.items()}
            if "schema_version" not in root:
                raise ValueError(f"{where}: not a synapse_sim results file")
            if root.get("kind") != self._kind:
                raise ResumeMismatchError(
                    f"{where}: it holds kind {root.get('kind')!r}, not {self._kind!r}", "kind"
                )
            for key, value in self._attrs.items():
                if root.get(key) != _attr(value):
                    raise ResumeMismatchError(
                        f"{where}: its {key!r} is {root.get(key)!r}, this run's is "
                        f"{_attr(value)!r} (written for something else)",
                        key,
                    )
            if self._check_config:
                self._match_config(where, root.get("config", "{}"))
            self._created = root.get("created", self._created)
            self.resumed_complete = bool(root.get("complete", False))
            for label, g in f["runs"].items() if "runs" in f else ():
                ga = {k: _attr(v) for k, v in g.attrs.items()}
                run = {
                    "device": ga.get("device", ""),
                    "rule": ga.get("rule", ""),
                    "dataset": ga.get("dataset", ""),
                    "epochs": int(ga.get("epochs", 0)),
                    "config": ga.get("config", "{}"),
                    "complete": bool(ga.get("complete", False)),
                    "n_epochs": int(ga.get("epochs_done", 0)),
                    "metrics": {},
                    "final": {},
                    "weights": None,
                    "checkpoint": None,
                    "attrs": {k: g.attrs[k] for k in g.attrs if k not in _RUN_ATTRS},
                }
                for name, obj in g.items():
                    if name == "final" and isinstance(obj, h5py.Group):
                        run["final"] = _read_value(obj)
                    elif name == "checkpoint" and isinstance(obj, h5py.Group):
                        run["checkpoint"] = _read_value(obj)
                    elif name == "weights" and isinstance(obj, h5py.Group):
                        run["weights"] = {k: np.asarray(obj[k][()]) for k in obj}
                    elif isinstance(obj, h5py.Dataset):
                        run["metrics"][name] = [float(v) for v in np.asarray(obj[()]).ravel()]
                self._runs[label] = run

    def _snapshot(self) -> None:
        if self._defer:
            return
        # A fresh, exclusively created temporary file in the results folder (never a
        # predictable name that a planted symlink could redirect), renamed onto the path.
        directory = self.path.parent
        try:
            fd, name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=directory)
        except OSError as exc:
            raise OSError(
                exc.errno,
                f"cannot write results file {str(self.path)!r}: {exc.strerror or exc}",
                str(self.path),
            ) from exc
        tmp = Path(name)
        try:
            os.fchmod(fd, 0o666 & ~_UMASK)
            os.close(fd)
            with _open_h5(tmp, "w") as f:
                self._write(f)
                f.flush()
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise OSError(
                exc.errno,
                f"cannot write results snapshot {str(tmp)!r} -> {str(self.path)!r}: "
                f"{exc.strerror or exc}",
                str(self.path),
            ) from exc
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        _fsync_dir(directory)

    def _write(self, f: h5py.File) -> None:
        f.attrs["schema_version"] = np.int64(SCHEMA_VERSION)
        f.attrs["created"] = self._created
        f.attrs["updated"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        f.attrs["versions"] = self._versions_json
        f.attrs["config"] = self._config_json
        f.attrs["seed"] = np.int64(self._seed)
        f.attrs["kind"] = self._kind
        f.attrs["complete"] = np.bool_(self._complete)
        for key, value in self._attrs.items():
            f.attrs[key] = value
        by_name = self._run_order == "name"
        runs = f.create_group("runs", track_order=not by_name)
        for label in sorted(self._runs) if by_name else self._runs:
            run = self._runs[label]
            g = runs.create_group(label, track_order=True)
            for key in ("device", "rule", "dataset"):
                g.attrs[key] = run[key]
            g.attrs["epochs"] = np.int64(run["epochs"])
            g.attrs["epochs_done"] = np.int64(run["n_epochs"])
            g.attrs["complete"] = np.bool_(run["complete"])
            g.attrs["config"] = run["config"]
            for key, value in run["attrs"].items():
                g.attrs[key] = value
            for name, values in run["metrics"].items():
                g.create_dataset(name, data=np.asarray(values, dtype=np.float64))
            final = g.create_group("final", track_order=True)
            for name, value in run["final"].items():
                _write_value(final, name, value)
            if run["weights"] is not None:
                wg = g.create_group("weights", track_order=True)
                for name, arr in run["weights"].items():
                    wg.create_dataset(name, data=arr)
            if run.get("checkpoint") is not None:
                _write_value(g, "checkpoint", run["checkpoint"])


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
        f = _open_h5(path, "r")
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
        attrs = {k: _attr(v) for k, v in f.attrs.items()}
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
            ga = {k: _attr(v) for k, v in g.attrs.items()}
            metrics, final, weights = {}, {}, {}
            for name, obj in g.items():
                if name == "final" and isinstance(obj, h5py.Group):
                    final = _read_value(obj)
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
