"""Device models as plain dicts and with overrides: how a fitted (or any) model travels through
run specifications, results files and sweep workers (``synapse_sim.RunSpec(device=model)``).

>>> import devices
>>> from devices.fitting import model_from_dict, model_to_dict, with_overrides
>>> m = devices.get("epiram")
>>> model_from_dict(model_to_dict(m)) == m
True
>>> with_overrides(m, c2c_sigma=0, levels_ltp=50).levels_ltp
50
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from collections.abc import Mapping

from ..models import DeviceModel, ExpDevice, LinearDevice, LUTDevice, StepDevice
from ..presets import apply_overrides
from ..validation import check_choice
from ..variability import Variability

__all__ = ["model_to_dict", "model_from_dict", "with_overrides", "load_model", "MODEL_FAMILIES"]

#: Device model classes by name (the ``family`` of :func:`model_to_dict`).
MODEL_FAMILIES = {c.__name__: c for c in (ExpDevice, LinearDevice, StepDevice, LUTDevice)}


def _part_classes() -> dict:
    """Variability part name -> its class (from the annotations of :class:`Variability`)."""
    hints = typing.get_type_hints(Variability)
    out = {}
    for f in dataclasses.fields(Variability):
        cls = [a for a in typing.get_args(hints[f.name]) if a is not type(None)]
        if cls and dataclasses.is_dataclass(cls[0]):
            out[f.name] = cls[0]
    return out


_PART_CLASSES = _part_classes()


def _plain(v):
    if isinstance(v, float) and not math.isfinite(v):
        return repr(v)  # "inf", "-inf", "nan": JSON without non-standard numbers
    if isinstance(v, (tuple, list)):
        return [_plain(x) for x in v]
    return v


def _number(v):
    if isinstance(v, str) and v in ("inf", "-inf", "nan"):
        return float(v)
    if isinstance(v, list):
        return tuple(_number(x) for x in v)
    return v


def model_to_dict(model: DeviceModel) -> dict:
    """A JSON-able dict of ``model`` (family, every field, variability part by part) that
    :func:`model_from_dict` turns back into an equal model."""
    if not isinstance(model, DeviceModel):
        raise TypeError(f"model must be a devices model, got {model!r}")
    out = {"family": type(model).__name__}
    for f in dataclasses.fields(model):
        if f.init and f.name != "variability":
            out[f.name] = _plain(getattr(model, f.name))
    var = model.variability
    vd = {"reset_sigma": var.reset_sigma}
    for part in _PART_CLASSES:
        obj = getattr(var, part)
        vd[part] = None if obj is None else {k: _plain(v) for k, v in vars(obj).items()}
    out["variability"] = vd
    json.dumps(out, allow_nan=False)  # a field no model should have fails here, not later
    return out


def model_from_dict(d: Mapping) -> DeviceModel:
    """The model of a :func:`model_to_dict` dict (validated by the model itself)."""
    if not isinstance(d, Mapping) or "family" not in d:
        raise TypeError(f"a device model dict needs a 'family' key, got {d!r}")
    cls = MODEL_FAMILIES[check_choice("device model family", d["family"], list(MODEL_FAMILIES))]
    kw = {k: _number(v) for k, v in d.items() if k not in ("family", "variability")}
    vd = dict(d.get("variability") or {})
    parts = {}
    for part, pcls in _PART_CLASSES.items():
        p = vd.get(part)
        parts[part] = None if p is None else pcls(**{k: _number(v) for k, v in p.items()})
    var = Variability(**parts, reset_sigma=vd.get("reset_sigma", 0.0))
    return cls(**kw, variability=var)


def with_overrides(model: DeviceModel, **overrides) -> DeviceModel:
    """``model`` with model fields and flat variability keys changed, as
    :func:`devices.get` changes a preset (``levels_ltp=64``, ``c2c_sigma=0``, ...).

    Raises
    ------
    ValueError
        An unknown key (with the keys allowed and a close match) or a bad value.
    """
    if not isinstance(model, DeviceModel):
        raise TypeError(f"model must be a devices model, got {model!r}")
    return apply_overrides(model, overrides)


def load_model(path) -> DeviceModel:
    """A device model from a JSON file: a :func:`model_to_dict` dict, or a fit record of
    :meth:`devices.fitting.FitResult.to_dict` (``synapse-sim fit`` writes ``NAME_fit.json``).

    Raises
    ------
    FileNotFoundError, ValueError
        No such file, or a JSON file that holds no device model (the message names the file).
    """
    from pathlib import Path

    path = Path(path)
    try:
        rec = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"device model file '{path}' is not JSON: {exc}") from None
    if isinstance(rec, Mapping) and isinstance(rec.get("model_dict"), Mapping):
        rec = rec["model_dict"]
    if not isinstance(rec, Mapping) or "family" not in rec:
        raise ValueError(
            f"device model file '{path}' holds no device model (a devices.fitting.model_to_dict "
            "dict, or a fit record written by synapse-sim fit)"
        )
    return model_from_dict(rec)
