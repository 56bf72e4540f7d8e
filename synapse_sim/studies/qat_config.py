"""The configuration and data of a QAT study (see :mod:`synapse_sim.studies.qat`).

:class:`QATConfig` (the grid bits x quantizers x CGA, the schedule, the oscillation tracker),
frozen and self-validating, with :func:`check_qat_args`; the quantizer names (:data:`QUANTIZERS`,
the device-level ``"levels:PRESET"`` family: :func:`parse_levels`, :func:`device_level_grid`) and
the spec's train/test split (:func:`load_split`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np

from devices.quantizers import LevelGrid
from devices.validation import check_choice, check_int, check_real

from ..data.datasets import load_split as _load_split_data
from .base import field_errors

__all__ = [
    "QUANTIZERS",
    "FLOAT_BITS",
    "LEVELS_PREFIX",
    "DATASETS",
    "TEST_FRACTION",
    "QATConfig",
    "check_qat_args",
    "parse_levels",
    "device_level_grid",
    "load_split",
]

#: Weight quantizers :func:`run_qat` trains with.
QUANTIZERS = ("uniform", "lsq", "statsq")
#: ``bits`` recorded for the float baseline.
FLOAT_BITS = 32
#: Prefix of the device-level quantizers (``"levels:epiram"``, ``"levels:epiram:full"``).
LEVELS_PREFIX = "levels:"


def parse_levels(name: str) -> tuple[str, bool] | None:
    """``(preset, full)`` of a ``"levels:PRESET[:full]"`` quantizer name, else None.

    Parameters
    ----------
    name : str

    Returns
    -------
    tuple or None

    Raises
    ------
    ValueError
        An unknown preset (the message suggests close names) or a bad suffix.
    """
    if not isinstance(name, str) or not name.lower().startswith(LEVELS_PREFIX):
        return None
    from devices import names as preset_names

    parts = name[len(LEVELS_PREFIX) :].split(":")
    if len(parts) > 2 or (len(parts) == 2 and parts[1].lower() != "full"):
        raise ValueError(
            f"quantizers entry {name!r} must be 'levels:PRESET' or 'levels:PRESET:full'"
        )
    check_choice("quantizers (device preset)", parts[0], preset_names())
    return parts[0], len(parts) == 2


def device_level_grid(preset: str, bits: int, full: bool = False) -> LevelGrid:
    """The per-output-channel LevelGrid that ``"levels:PRESET"`` trains with.

    Parameters
    ----------
    preset : str
        Device preset name.
    bits : int
        ``2**bits`` states sampled from the LTP response (ignored when ``full``).
    full : bool
        All ``P + 1`` states of the preset.

    Returns
    -------
    devices.quantizers.LevelGrid
        Reference mapping, ``axis=0``, ``scaling="mean"``.
    """
    return LevelGrid.from_device(
        preset, "reference", n_states=None if full else 2**bits, axis=0, scaling="mean"
    )


#: Datasets :func:`run_qat` accepts.
DATASETS = ("digits", "mnist5k")
#: Held-out fraction of each dataset in the spec's split (section 7.2).
TEST_FRACTION = {"digits": 0.3, "mnist5k": 0.2}


def load_split(dataset: str, split_seed: int = 0):
    """The spec's stratified split of a built-in dataset (``sklearn.model_selection``).

    Parameters
    ----------
    dataset : {"digits", "mnist5k"}
    split_seed : int
        ``random_state`` of ``train_test_split`` (0 in the spec).

    Returns
    -------
    x_train, y_train, x_test, y_test : numpy.ndarray
    """
    check_choice("dataset", dataset, DATASETS)
    d = _load_split_data(
        dataset, seed=split_seed, split="sklearn", test_fraction=TEST_FRACTION[dataset]
    )
    return d.x_train, d.y_train, d.x_test, d.y_test


def _as_tuple(name: str, value, kinds) -> tuple:
    if isinstance(value, kinds) or not isinstance(value, Iterable):
        value = (value,)
    out = tuple(value)
    if not out:
        raise ValueError(f"{name} must not be empty")
    return out


def _check_bits_list(bits) -> tuple[int, ...]:
    out = []
    for b in _as_tuple("bits", bits, (int, np.integer, str)):
        if isinstance(b, bool) or not isinstance(b, int | np.integer) or not 1 <= b <= 8:
            raise ValueError(f"bits must be integers from 1 to 8, got {b!r}")
        if int(b) not in out:
            out.append(int(b))
    return tuple(out)


def _check_quantizers(quantizers) -> tuple[str, ...]:
    out = []
    for q in _as_tuple("quantizers", quantizers, (str,)):
        if isinstance(q, str) and q.lower().startswith(LEVELS_PREFIX):
            preset, full = parse_levels(q)
            name = f"{LEVELS_PREFIX}{preset}" + (":full" if full else "")
        else:
            name = check_choice(
                "quantizers",
                q.lower() if isinstance(q, str) else q,
                (*QUANTIZERS, "levels:PRESET"),
            )
        if name not in out:
            out.append(name)
    return tuple(out)


def _check_cga(cga) -> tuple[bool, ...]:
    out = []
    for c in _as_tuple("cga", cga, (bool, np.bool_)):
        if not isinstance(c, bool | np.bool_):
            raise ValueError(f"cga must be True, False or a tuple of them, got {c!r}")
        if bool(c) not in out:
            out.append(bool(c))
    return tuple(out)


def check_qat_args(**kwargs) -> dict:
    """Validate and normalize the arguments of :func:`run_qat` (without training anything).

    Parameters
    ----------
    **kwargs
        ``dataset``, ``bits``, ``quantizers``, ``cga``, ``epochs``, ``seed``, ``hidden``,
        ``batch_size``, ``lr``, ``lr_min``, ``cga_epochs``, ``boundary_range``, ``momentum``,
        ``tau``, ``max_train``, ``act_bits``, ``split_seed`` as :func:`run_qat` (the
        :class:`QATConfig` fields).

    Returns
    -------
    dict
        The same keys, with tuples for the sequences and ``cga_epochs`` resolved.

    Raises
    ------
    ValueError, TypeError
        A bad argument; the message starts with the parameter's name and ``exc.field`` is
        the parameter.
    """
    d = asdict(QATConfig(**kwargs))
    del d["float_baseline"]
    return d


@dataclass(frozen=True, kw_only=True)
class QATConfig:
    """A QAT study: the grid bits x quantizers x CGA (plus a float baseline); validates and
    normalizes itself (tuples for the sequences, ``cga_epochs`` resolved). The fields are the
    parameters of :func:`run_qat`."""

    dataset: str = "digits"
    bits: tuple = (2, 3, 4)
    quantizers: tuple = QUANTIZERS
    cga: tuple = (False, True)
    epochs: int = 20
    seed: int = 0
    hidden: tuple = (128,)
    batch_size: int = 32
    lr: float = 3e-3
    lr_min: float = 1e-3
    cga_epochs: int | None = None
    boundary_range: float = 0.005
    momentum: float = 0.01
    tau: float = 0.005
    max_train: int | None = None
    act_bits: int | None = None
    split_seed: int = 0
    float_baseline: bool = True

    def __post_init__(self):
        for name, value in _normalized(**{k: v for k, v in asdict(self).items()}).items():
            object.__setattr__(self, name, value)


def _normalized(
    *,
    dataset,
    bits,
    quantizers,
    cga,
    epochs,
    seed,
    hidden,
    batch_size,
    lr,
    lr_min,
    cga_epochs,
    boundary_range,
    momentum,
    tau,
    max_train,
    act_bits,
    split_seed,
    float_baseline,
) -> dict:
    with field_errors("dataset"):
        out = {"dataset": check_choice("dataset", dataset, DATASETS)}
    with field_errors("bits"):
        out["bits"] = _check_bits_list(bits)
    with field_errors("quantizers"):
        out["quantizers"] = _check_quantizers(quantizers)
    with field_errors("cga"):
        out["cga"] = _check_cga(cga)
    with field_errors("epochs"):
        out["epochs"] = epochs = check_int("epochs", epochs, lo=1)
    with field_errors("seed"):
        out["seed"] = check_int("seed", seed, lo=0)
    with field_errors("batch_size"):
        out["batch_size"] = check_int("batch_size", batch_size, lo=1)
    with field_errors("hidden"):
        out["hidden"] = tuple(
            check_int("hidden", h, lo=1) for h in _as_tuple("hidden", hidden, (int, np.integer))
        )
    with field_errors("lr"):
        out["lr"] = lr = check_real("lr", lr, lo=0.0, lo_open=True)
    with field_errors("lr_min"):
        out["lr_min"] = lr_min = check_real("lr_min", lr_min, lo=0.0)
        if lr_min > lr:
            raise ValueError(f"lr_min must be <= lr ({lr}), got {lr_min}")
    with field_errors("boundary_range"):
        out["boundary_range"] = check_real(
            "boundary_range", boundary_range, lo=0.0, hi=0.5, hi_open=True
        )
    with field_errors("momentum"):
        out["momentum"] = check_real("momentum", momentum, lo=0.0, hi=1.0, lo_open=True)
    with field_errors("tau"):
        out["tau"] = check_real("tau", tau, lo=0.0)
    with field_errors("epochs" if cga_epochs is None else "cga_epochs"):
        if cga_epochs is None:
            if True in out["cga"] and epochs < 2:
                raise ValueError(
                    f"epochs must be >= 2 for a run with CGA (CGA anneals after ordinary QAT), "
                    f"got {epochs}"
                )
            cga_epochs = max(1, epochs // 5) if epochs >= 2 else 0
    with field_errors("cga_epochs"):
        cga_epochs = check_int("cga_epochs", cga_epochs, lo=0)
        if cga_epochs > epochs - 1:
            raise ValueError(
                f"cga_epochs must be smaller than epochs ({epochs}): CGA anneals after "
                f"ordinary QAT, got {cga_epochs}"
            )
        if True in out["cga"] and cga_epochs < 1:
            raise ValueError(
                f"cga_epochs must be >= 1 when a CGA run is asked for, got {cga_epochs}"
            )
    out["cga_epochs"] = cga_epochs
    with field_errors("max_train"):
        out["max_train"] = None if max_train is None else check_int("max_train", max_train, lo=1)
    with field_errors("act_bits"):
        out["act_bits"] = None if act_bits is None else check_int("act_bits", act_bits, lo=1, hi=8)
    with field_errors("split_seed"):
        out["split_seed"] = check_int("split_seed", split_seed, lo=0)
    out["float_baseline"] = bool(float_baseline)
    return out
