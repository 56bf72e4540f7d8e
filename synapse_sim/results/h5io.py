"""Low-level pieces of the HDF5 results store shared by :mod:`.writer` and :mod:`.reading`:
the layout constants, value checks and conversions, and crash-safe file helpers.

The public entry points are re-exported by :mod:`synapse_sim.results.store`.
"""

from __future__ import annotations

import contextlib
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
    "RUN_ORDERS",
    "ResumeMismatchError",
    "package_versions",
    "results_kind",
    "check_writable",
    "RESERVED_RUN_NAMES",
    "ROOT_ATTRS",
    "RUN_ATTRS",
    "UMASK",
    "attr_value",
    "check_attrs",
    "check_int",
    "check_name",
    "check_str",
    "fsync_dir",
    "metric_value",
    "open_h5",
    "read_value",
    "stat_value",
    "to_json",
    "write_value",
]

SCHEMA_VERSION = 1
"""Version of the file layout written by :class:`ResultsWriter`."""

RESERVED_RUN_NAMES = frozenset({"final", "weights", "checkpoint"})

#: What :class:`ResultsWriter` does with an existing file: replace it (``"overwrite"``), refuse
#: it (``"new"``), or load it and continue (``"resume"``).
WRITE_MODES = ("overwrite", "new", "resume")
#: Orders of the ``runs`` group: as added, or by label (independent of completion order).
RUN_ORDERS = ("insertion", "name")
#: Attribute names of a run group that :class:`ResultsWriter` writes itself.
RUN_ATTRS = ("device", "rule", "dataset", "config", "epochs", "epochs_done", "complete")
#: Root attribute names that :class:`ResultsWriter` writes itself.
ROOT_ATTRS = ("schema_version", "created", "updated", "versions", "config", "seed", "kind")

# The process umask, read once: snapshot files are made by mkstemp (mode 0600) and given the
# permissions a plain open() would give them.
UMASK = os.umask(0)
os.umask(UMASK)


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


def to_json(name: str, value: Any) -> str:
    """``value`` (a dict or None) as sorted JSON; a ``TypeError`` naming ``name`` if not."""
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a dict, got {type(value).__name__}")
    try:
        return json.dumps(dict(value), default=_json_default, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be JSON-serializable: {exc}") from exc


def check_name(kind: str, name: Any) -> str:
    """A run label or group name: a non-empty str without ``/`` (``kind`` in messages)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"{kind} must be a non-empty str, got {name!r}")
    if "/" in name or name in (".", ".."):
        raise ValueError(f"{kind} {name!r} must not contain '/' or be '.' or '..'")
    return name


def check_str(name: str, value: Any) -> str:
    """``value`` if it is a str, else a ``TypeError`` naming ``name``."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {value!r}")
    return value


def check_int(name: str, value: Any, minimum: int) -> int:
    """``value`` as an int >= ``minimum`` (bools refused), else an error naming ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def metric_value(label: str, name: str, value: Any) -> float:
    """One epoch value of metric ``name`` of run ``label``: a finite float (accuracies in
    [0, 1]), else a ``ValueError`` naming both."""
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


def stat_value(where: str, value: Any) -> Any:
    """Validate and normalize one value of ``final``/``weights`` (recursing into dicts)."""
    if isinstance(value, Mapping):
        return {
            check_name(f"key in {where}", k): stat_value(f"{where}/{k}", v)
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


def write_value(group: h5py.Group, name: str, value: Any) -> None:
    """Write a value checked by :func:`stat_value` into ``group`` (dicts as subgroups)."""
    if isinstance(value, dict):
        sub = group.create_group(name)
        for k, v in value.items():
            write_value(sub, k, v)
    elif isinstance(value, str):
        group.create_dataset(name, data=value, dtype=h5py.string_dtype("utf-8"))
    else:
        group.create_dataset(name, data=value)


def read_value(obj: h5py.Group | h5py.Dataset) -> Any:
    """Read what :func:`write_value` wrote (0-d data as Python scalars)."""
    if isinstance(obj, h5py.Group):
        return {k: read_value(obj[k]) for k in obj}
    if h5py.check_string_dtype(obj.dtype) is not None:
        data = obj.asstr()[()]
        return data if isinstance(data, str) else np.asarray(data, dtype=object)
    data = obj[()]
    if isinstance(data, np.ndarray) and data.ndim > 0:
        return data
    return np.asarray(data).item()


def attr_value(value: Any) -> Any:
    """An HDF5 attribute as a plain Python value (bytes decoded, numpy scalars unwrapped)."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.generic):
        return value.item()
    return value


def check_attrs(where: str, attrs: Mapping[str, Any] | None, reserved) -> dict[str, Any]:
    """Extra HDF5 attributes: str keys (not reserved) -> str, bool, int or float values."""
    if attrs is None:
        return {}
    if not isinstance(attrs, Mapping):
        raise TypeError(f"{where} must be a dict or None, got {type(attrs).__name__}")
    out = {}
    for key, value in attrs.items():
        check_name(f"key of {where}", key)
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
        with open_h5(p, "r") as f:
            kind = f.attrs.get("kind")
    except OSError:
        return None
    return attr_value(kind) if kind is not None else None


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


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (where the platform allows it)."""
    # Make the rename durable; not possible on every platform (e.g. Windows).
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def open_h5(path: str | Path, mode: str) -> h5py.File:
    """``h5py.File(path, mode)`` without HDF5 file locking (where this HDF5 supports it)."""
    # File locking is useless for snapshot files (renamed into place) and fails on some
    # cluster file systems; turn it off where this HDF5 supports that.
    try:
        return h5py.File(path, mode, locking=False)
    except (TypeError, ValueError):  # pragma: no cover - very old HDF5
        return h5py.File(path, mode)
