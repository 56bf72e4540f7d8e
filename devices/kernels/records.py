"""The two records every update kernel takes: :class:`DeviceState` and :class:`DeviceParams`.

A write reads and changes a device's conductance, its written conductance and drift clock, its
freeze flag and its pulse counters, and reads its endurance budget (:class:`DeviceState`); it
reads the family, the per-device parameter rows, the family constants, the look-up tables, the
cycle-to-cycle noise and the per-device lower bound (:class:`DeviceParams`). Both are typed
``NamedTuple``\\ s of flat arrays (and scalars): numba's nopython mode takes them as arguments
and unpacks them (:mod:`.numba_cpu`, and the fused batch-1 kernel of :mod:`.online`), the numpy
reference reads them by name, and the CUDA host wrappers unpack them at the launch
(:mod:`.cuda`; the CUDA kernels' parameters are checked against these field lists when that
module is imported). The field order is defined here, once.

Build records with :meth:`DeviceState.make` and :meth:`DeviceParams.make` (keyword arguments
only, so two counters cannot trade places): they refuse a missing or unknown field, a wrong
dtype, a wrong shape and one array given for two fields, naming the field.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

__all__ = ["DeviceState", "DeviceParams", "STATE_DTYPES", "FAMILIES", "field_property"]

#: dtype of each :class:`DeviceState` field (every field is one entry per device).
STATE_DTYPES = {
    "G": np.float64,
    "Gw": np.float64,
    "tau": np.float64,
    "frozen": np.uint8,
    "budget": np.float64,
    "cnt_up": np.int64,
    "cnt_dn": np.int64,
    "cnt_prog": np.int64,
    "cnt_reset": np.int64,
}

#: Fields that may also be float32 (all three together, following ``G``): an experiment with a
#: compact state (tests/devices/test_float32_state.py); a DeviceArray keeps float64.
CONDUCTANCE_FIELDS = ("G", "Gw", "tau")

#: Family codes a :class:`DeviceParams` may hold (see :mod:`devices.kernels`).
FAMILIES = (0, 1, 2)

#: Rows of the per-device parameter table ``prm`` (see ``DeviceModel.kernel_params``).
PRM_ROWS = 8
#: Entries of the family constants ``const``.
CONST_SIZE = 4


def _check_keys(cls, fields: dict) -> None:
    missing = [k for k in cls._fields if k not in fields]
    unknown = [k for k in fields if k not in cls._fields]
    if missing or unknown:
        raise TypeError(
            f"{cls.__name__} needs exactly the fields {cls._fields}; "
            + (f"missing {missing}" if missing else "")
            + ("; " if missing and unknown else "")
            + (f"unknown {unknown}" if unknown else "")
        )


def _check_array(owner: str, name: str, a: Any, dtype, shape: tuple) -> None:
    """``a`` is an array (numpy or one with the same attributes, e.g. cupy) of ``dtype`` and
    ``shape`` (``None`` entries: any length), contiguous."""
    if not hasattr(a, "dtype") or not hasattr(a, "shape"):
        raise TypeError(f"{owner}.{name} must be an array, got {type(a).__name__}")
    want = np.dtype(dtype)
    ok_shape = len(a.shape) == len(shape) and all(
        s is None or s == t for s, t in zip(shape, a.shape, strict=True)
    )
    if a.dtype != want or not ok_shape:
        shown = "(" + ", ".join("n" if s is None else str(s) for s in shape)
        shown += ",)" if len(shape) == 1 else ")"
        raise TypeError(
            f"{owner}.{name} must be an array of dtype {want} and shape {shown}, got dtype "
            f"{a.dtype} and shape {tuple(a.shape)}"
        )
    flags = getattr(a, "flags", None)
    if flags is not None and not flags.c_contiguous:
        raise ValueError(f"{owner}.{name} must be C-contiguous")


class DeviceState(NamedTuple):
    """What a write reads and changes, one entry per device (flat arrays of equal length).

    ``G`` conductance, ``Gw`` conductance when last written (drift starts from it), ``tau``
    time since that write, ``frozen`` (uint8: stuck or worn out), ``budget`` endurance budget
    in pulses (``inf``: none), ``cnt_up`` / ``cnt_dn`` potentiation / depression pulses,
    ``cnt_prog`` programming pulses, ``cnt_reset`` RESETs. ``G``, ``Gw`` and ``tau`` are float64,
    or all three float32 (:data:`CONDUCTANCE_FIELDS`; the kernels compute in float64 and round
    on store).
    """

    G: Any
    Gw: Any
    tau: Any
    frozen: Any
    budget: Any
    cnt_up: Any
    cnt_dn: Any
    cnt_prog: Any
    cnt_reset: Any

    @classmethod
    def make(cls, **fields) -> DeviceState:
        """A checked record from keyword fields (all required; see the module docs)."""
        _check_keys(cls, fields)
        want = dict(STATE_DTYPES)
        if getattr(fields["G"], "dtype", None) == np.float32:
            want.update(dict.fromkeys(CONDUCTANCE_FIELDS, np.float32))
        n = None
        for name in cls._fields:
            a = fields[name]
            _check_array(cls.__name__, name, a, want[name], (n,))
            n = a.shape[0] if n is None else n
        seen: dict[int, str] = {}
        for name in cls._fields:
            other = seen.setdefault(id(fields[name]), name)
            if other != name:
                raise ValueError(
                    f"DeviceState.{name} and DeviceState.{other} are the same array; every "
                    "field needs its own"
                )
        return cls(**fields)

    @property
    def n(self) -> int:
        """Number of devices."""
        return int(self.G.shape[0])


class DeviceParams(NamedTuple):
    """What a write reads about the devices: ``fam`` family code, ``prm`` per-device parameter
    rows (shape ``(8, n)``), ``const`` family constants (4), ``lut_up`` / ``lut_dn`` look-up
    tables (family 2; a placeholder otherwise), ``c2c`` cycle-to-cycle noise, ``gmin`` the
    per-device lower conductance bound (shape ``(n,)``; the refresh trigger reads it)."""

    fam: int
    prm: Any
    const: Any
    lut_up: Any
    lut_dn: Any
    c2c: float
    gmin: Any

    @classmethod
    def make(cls, **fields) -> DeviceParams:
        """A checked record from keyword fields (all required; see the module docs)."""
        _check_keys(cls, fields)
        fam, c2c = fields["fam"], fields["c2c"]
        if isinstance(fam, bool) or not isinstance(fam, (int, np.integer)) or fam not in FAMILIES:
            raise ValueError(f"DeviceParams.fam must be one of {FAMILIES}, got {fam!r}")
        try:
            c2c = float(c2c)
        except (TypeError, ValueError):
            raise TypeError(f"DeviceParams.c2c must be a real number, got {c2c!r}") from None
        if not (c2c >= 0.0 and np.isfinite(c2c)):
            raise ValueError(f"DeviceParams.c2c must be finite and >= 0, got {c2c!r}")
        prm = fields["prm"]
        _check_array(cls.__name__, "prm", prm, np.float64, (PRM_ROWS, None))
        _check_array(cls.__name__, "gmin", fields["gmin"], np.float64, (prm.shape[1],))
        _check_array(cls.__name__, "const", fields["const"], np.float64, (CONST_SIZE,))
        for name in ("lut_up", "lut_dn"):
            _check_array(cls.__name__, name, fields[name], np.float64, (None,))
            if fields[name].shape[0] < 2:
                raise ValueError(f"DeviceParams.{name} must hold at least 2 entries")
        return cls(**{**fields, "fam": int(fam), "c2c": c2c})

    @property
    def n(self) -> int:
        """Number of devices."""
        return int(self.gmin.shape[0])

    def with_c2c(self, c2c: float) -> DeviceParams:
        """The same parameters with another cycle-to-cycle noise."""
        return DeviceParams.make(**{**self._asdict(), "c2c": c2c})


def field_property(record: str, name: str) -> property:
    """A property of an owner object (:class:`devices.DeviceArray`) that reads field ``name`` of
    its record attribute ``record`` (``"state"`` or ``"params"``); an assignment rebuilds the
    record through ``make`` (checked; a refused value leaves the record as it was)."""

    def get(self):
        return getattr(getattr(self, record), name)

    def put(self, value):
        rec = getattr(self, record)
        setattr(self, record, type(rec).make(**{**rec._asdict(), name: value}))

    return property(get, put, doc=f"``{record}.{name}`` (:mod:`devices.kernels.records`).")
