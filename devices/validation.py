"""The one set of argument checks for the whole package.

Every public function of ``devices``, ``learning_rules`` and ``synapse_sim`` checks its arguments
with these helpers, so that bad input gets one exception style everywhere: the message names the
parameter, the value and what is allowed, with a close-match suggestion for names
(:func:`did_you_mean`). ``TypeError`` for the wrong kind of value, ``ValueError`` for a value of
the right kind outside what is allowed.
"""

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
    hint = did_you_mean(value, choices)
    raise ValueError(
        f"{name} must be one of {', '.join(repr(c) for c in choices)}, got {value!r}{hint}"
    )


def did_you_mean(value, choices, *, n: int = 3) -> str:
    """Return ``"; did you mean 'x'?"`` for the close matches of ``value`` among ``choices``.

    Returns the empty string when ``value`` is not a string or nothing is close, so the result can
    always be appended to an error message.
    """
    if not isinstance(value, str):
        return ""
    close = difflib.get_close_matches(value, [str(c) for c in choices], n=n)
    return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def check_bool(name: str, value) -> bool:
    """Return ``value`` as bool after checking it is a bool (``numpy.bool_`` included)."""
    if isinstance(value, bool):
        return value
    try:
        import numpy as np

        if isinstance(value, np.bool_):
            return bool(value)
    except ImportError:  # pragma: no cover - numpy is a dependency
        pass
    raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")
