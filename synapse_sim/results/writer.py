"""The crash-safe writer of the results store: :class:`ResultsWriter`.

See :mod:`synapse_sim.results.store` (which re-exports it) and ``docs/results-format.md``.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .h5io import (
    RESERVED_RUN_NAMES,
    ROOT_ATTRS,
    RUN_ATTRS,
    RUN_ORDERS,
    SCHEMA_VERSION,
    UMASK,
    WRITE_MODES,
    ResumeMismatchError,
    attr_value,
    check_attrs,
    check_int,
    check_name,
    check_str,
    check_writable,
    fsync_dir,
    metric_value,
    open_h5,
    package_versions,
    read_value,
    stat_value,
    to_json,
    write_value,
)

__all__ = ["ResultsWriter"]

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
        self._attrs = check_attrs("attrs", attrs, ROOT_ATTRS + ("complete",))
        self._config_json = to_json("config", config)
        self._seed = check_int("seed", seed, 0)
        kind = check_str("kind", kind)
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
        label = check_name("run label", label)
        if label in self._runs and not (replace and not self._runs[label]["complete"]):
            state = "is complete" if self._runs[label]["complete"] else "was already added"
            raise ValueError(f"run label {label!r} {state}; labels must be unique")
        self._runs.pop(label, None)
        self._runs[label] = {
            "device": check_str("device", device),
            "rule": check_str("rule", rule),
            "dataset": check_str("dataset", dataset),
            "epochs": check_int("epochs", epochs, 0),
            "config": to_json("config", config),
            "complete": False,
            "n_epochs": 0,
            "metrics": {},
            "final": {},
            "weights": None,
            "checkpoint": None,
            "attrs": check_attrs(f"attrs of run {label!r}", attrs, RUN_ATTRS),
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
        label = check_name("run label", label)
        series = {}
        lengths = set()
        for name, values in history.items():
            if name in RESERVED_RUN_NAMES:
                raise ValueError(
                    f"metric name {name!r} is reserved (reserved: {sorted(RESERVED_RUN_NAMES)})"
                )
            vals = [metric_value(label, name, v) for v in np.asarray(values).ravel()]
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
            if name in RESERVED_RUN_NAMES:
                raise ValueError(
                    f"metric name {name!r} is reserved (reserved: {sorted(RESERVED_RUN_NAMES)})"
                )
            values[name] = metric_value(label, name, value)
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
        final = stat_value(f"final statistics of run {label!r}", dict(stats))
        if weights is not None:
            if not isinstance(weights, Mapping):
                raise TypeError(f"weights must be a dict or None, got {type(weights).__name__}")
            stored = {}
            for name, w in weights.items():
                check_name(f"weight name in run {label!r}", name)
                arr = stat_value(f"weights[{name!r}] of run {label!r}", w)
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
            state = stat_value(f"checkpoint of run {label!r}", dict(state))
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
            f = open_h5(self.path, "r")
        except OSError as exc:
            raise ValueError(f"{where}: not a readable HDF5 file ({exc})") from None
        with f:
            root = {k: attr_value(v) for k, v in f.attrs.items()}
            if "schema_version" not in root:
                raise ValueError(f"{where}: not a synapse_sim results file")
            if root.get("kind") != self._kind:
                raise ResumeMismatchError(
                    f"{where}: it holds kind {root.get('kind')!r}, not {self._kind!r}", "kind"
                )
            for key, value in self._attrs.items():
                if root.get(key) != attr_value(value):
                    raise ResumeMismatchError(
                        f"{where}: its {key!r} is {root.get(key)!r}, this run's is "
                        f"{attr_value(value)!r} (written for something else)",
                        key,
                    )
            if self._check_config:
                self._match_config(where, root.get("config", "{}"))
            self._created = root.get("created", self._created)
            self.resumed_complete = bool(root.get("complete", False))
            for label, g in f["runs"].items() if "runs" in f else ():
                ga = {k: attr_value(v) for k, v in g.attrs.items()}
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
                    "attrs": {k: g.attrs[k] for k in g.attrs if k not in RUN_ATTRS},
                }
                for name, obj in g.items():
                    if name == "final" and isinstance(obj, h5py.Group):
                        run["final"] = read_value(obj)
                    elif name == "checkpoint" and isinstance(obj, h5py.Group):
                        run["checkpoint"] = read_value(obj)
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
            os.fchmod(fd, 0o666 & ~UMASK)
            os.close(fd)
            with open_h5(tmp, "w") as f:
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
        fsync_dir(directory)

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
                write_value(final, name, value)
            if run["weights"] is not None:
                wg = g.create_group("weights", track_order=True)
                for name, arr in run["weights"].items():
                    wg.create_dataset(name, data=arr)
            if run.get("checkpoint") is not None:
                write_value(g, "checkpoint", run["checkpoint"])
