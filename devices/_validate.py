"""Argument checks shared by the ``devices`` package (errors name parameter, value, allowed)."""

from __future__ import annotations

import difflib
import math
import numbers


def check_real(
    name: str, value, *, lo=None, hi=None, lo_open=False, hi_open=False, allow_inf=False
) -> float:
    """Return ``value`` as float after checking it is a real number inside the given bounds."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    v = float(value)
    if math.isnan(v) or (math.isinf(v) and not allow_inf):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if lo is not None and (v < lo or (lo_open and v == lo)):
        op = ">" if lo_open else ">="
        raise ValueError(f"{name} must be {op} {lo}, got {value!r}")
    if hi is not None and (v > hi or (hi_open and v == hi)):
        op = "<" if hi_open else "<="
        raise ValueError(f"{name} must be {op} {hi}, got {value!r}")
    return v


def check_int(name: str, value, *, lo=None, hi=None) -> int:
    """Return ``value`` as int after checking it is an integer inside ``[lo, hi]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, numbers.Real) and float(value).is_integer():
            value = int(value)
        else:
            raise TypeError(f"{name} must be an integer, got {value!r}")
    v = int(value)
    if lo is not None and v < lo:
        raise ValueError(f"{name} must be >= {lo}, got {value!r}")
    if hi is not None and v > hi:
        raise ValueError(f"{name} must be <= {hi}, got {value!r}")
    return v


def check_choice(name: str, value, choices) -> str:
    """Return ``value`` if it is one of ``choices``; otherwise raise with a close-match hint."""
    choices = tuple(choices)
    if value in choices:
        return value
    hint = ""
    if isinstance(value, str):
        close = difflib.get_close_matches(value, [str(c) for c in choices], n=3)
        if close:
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?"
    raise ValueError(
        f"{name} must be one of {', '.join(repr(c) for c in choices)}, got {value!r}{hint}"
    )
