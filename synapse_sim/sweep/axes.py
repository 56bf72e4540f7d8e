"""Sweep axes: ranges and value lists of the ``[axes]`` table, size limits, spec errors."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

#: Most values one axis may take (a longer range is refused before it is built).
MAX_AXIS_VALUES = 10_000
#: Most runs one sweep may plan (points x instances + the software twin), checked before the
#: plan is expanded or validated point by point.
MAX_RUNS = 100_000

RANGE_KEYS = ("start", "stop", "num", "step", "scale")


def suggest(key: str, valid) -> str:
    """``"; did you mean ..."`` for the close matches of ``key`` among ``valid`` (or "")."""
    import difflib

    close = difflib.get_close_matches(key, list(valid), n=2)
    return f"; did you mean {', '.join(map(repr, close))}?" if close else ""


class SpecError(ValueError):
    """A malformed sweep spec (the message names the key)."""


def fail(source: str, key: str, message: str):
    """Raise :class:`SpecError` naming the spec source and the key."""
    raise SpecError(f"sweep spec {source}: {key}: {message}")


def is_number(v) -> bool:
    """A real number (not a bool)."""
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def tidy(v: float) -> float:
    """Round away float noise of ranges (``0.30000000000000004`` -> ``0.3``)."""
    return float(f"{float(v):.12g}")


def range_values(source: str, key: str, table: Mapping) -> list:
    """The values of a range table: ``{values}``, ``{start, stop, num[, scale]}`` or
    ``{start, stop, step}``."""
    unknown = [k for k in table if k not in RANGE_KEYS and k != "values"]
    if unknown:
        fail(
            source,
            f"{key}.{unknown[0]}",
            f"unknown range key; a range is {{values = [...]}}, {{start, stop, num[, scale]}} "
            f"or {{start, stop, step}}{suggest(unknown[0], (*RANGE_KEYS, 'values'))}",
        )
    if "values" in table:
        if len(table) != 1:
            fail(source, key, "'values' cannot be combined with start/stop/num/step")
        values = table["values"]
        if not isinstance(values, list):
            fail(source, f"{key}.values", f"must be a list, got {values!r}")
        check_axis_size(source, f"{key}.values", len(values))
        return list(values)
    for k in ("start", "stop"):
        if k not in table:
            fail(source, key, f"a range needs '{k}' (got keys {sorted(table)})")
        if not is_number(table[k]) or not math.isfinite(table[k]):
            fail(source, f"{key}.{k}", f"must be a finite number, got {table[k]!r}")
    start, stop = table["start"], table["stop"]
    if ("num" in table) == ("step" in table):
        fail(source, key, "a range needs exactly one of 'num' and 'step'")
    scale = table.get("scale", "linear")
    if scale not in ("linear", "log"):
        fail(source, f"{key}.scale", f"must be 'linear' or 'log', got {scale!r}")
    if "num" in table:
        num = table["num"]
        if not isinstance(num, int) or isinstance(num, bool) or num < 1:
            fail(source, f"{key}.num", f"must be an integer >= 1, got {num!r}")
        check_axis_size(source, f"{key}.num", num)
        if num == 1 and start != stop:
            fail(source, f"{key}.num", "num = 1 needs start == stop")
        if scale == "log":
            if start <= 0 or stop <= 0:
                fail(source, key, f"a log range needs start, stop > 0, got {start!r}, {stop!r}")
            raw = np.geomspace(start, stop, num)
        else:
            raw = np.linspace(start, stop, num)
        ints = isinstance(start, int) and isinstance(stop, int)
    else:
        step = table["step"]
        if scale != "linear":
            fail(source, f"{key}.scale", "'step' ranges are linear; use 'num' for a log range")
        if not is_number(step) or not math.isfinite(step) or step == 0:
            fail(source, f"{key}.step", f"must be a finite non-zero number, got {step!r}")
        if (stop - start) * step < 0:
            fail(source, f"{key}.step", f"step {step!r} does not go from {start!r} to {stop!r}")
        span = (stop - start) / step
        check_axis_size(source, f"{key}.step", span + 1 if math.isfinite(span) else math.inf)
        n = int(math.floor(span + 1e-9)) + 1
        raw = start + step * np.arange(n)
        ints = all(isinstance(v, int) for v in (start, stop, step))
    if ints and all(float(v).is_integer() for v in raw):
        return [int(round(v)) for v in raw]
    return [tidy(v) for v in raw]


def check_axis_size(source: str, key: str, n: float) -> None:
    """Refuse an axis of more than :data:`MAX_AXIS_VALUES` values."""
    if n > MAX_AXIS_VALUES:
        fail(
            source,
            key,
            f"gives {n:.4g} values; an axis takes at most {MAX_AXIS_VALUES:,} "
            "(sweep.MAX_AXIS_VALUES): use fewer points or a coarser step",
        )


def check_plan_size(source: str, key: str, n_runs: float) -> None:
    """Refuse a plan of more than :data:`MAX_RUNS` runs."""
    if n_runs > MAX_RUNS:
        fail(
            source,
            key,
            f"plans {n_runs:.4g} runs; a sweep takes at most {MAX_RUNS:,} (sweep.MAX_RUNS): "
            "use fewer axis values or instances, or split it into several sweeps",
        )


def axis_values(source: str, key: str, value) -> tuple:
    """The values of ``axes.<key>`` (a list or a range table), checked and as a tuple."""
    where = f"axes.{key}"
    if isinstance(value, Mapping):
        values = range_values(source, where, value)
    elif isinstance(value, list):
        values = list(value)
    else:
        fail(
            source,
            where,
            f"must be a list or a range table ({{values = [...]}} or {{start, stop, num}}), "
            f"got {value!r}",
        )
    if not values:
        fail(source, where, "empty axis: give at least one value")
    out = []
    for v in values:
        if isinstance(v, list):
            v = tuple(v)
        if isinstance(v, Mapping) or v is None:
            fail(source, where, f"values must be numbers, strings or lists, got {v!r}")
        if isinstance(v, float) and not math.isfinite(v):
            fail(source, where, f"values must be finite, got {v!r}")
        if v in out:
            fail(source, where, f"duplicate value {v!r}")
        out.append(v)
    return tuple(out)


def axis_parts(
    source: str, key: str, seen: dict, refused: Mapping[str, str], fixed: Mapping[str, str]
) -> list[str]:
    """The parameters axis ``key`` sets (``"a+b"`` -> ``["a", "b"]``), checked.

    No empty name, none of ``refused`` (name -> why), none set by an earlier axis (``seen``:
    name -> axis, updated here), none fixed elsewhere in the spec (``fixed``: name -> where).
    """
    parts = key.split("+")
    if any(not p for p in parts):
        fail(source, f"axes.{key}", "bad axis name (use 'a+b' to set two parameters)")
    for p in parts:
        if p in refused:
            fail(source, f"axes.{key}", f"{p!r} cannot be an axis: {refused[p]}")
        if p in seen:
            fail(source, f"axes.{key}", f"parameter {p!r} is already set by axes.{seen[p]}")
        if p in fixed:
            fail(source, f"axes.{key}", f"parameter {p!r} is also fixed in {fixed[p]}")
        seen[p] = key
    return parts
