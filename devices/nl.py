"""Nonlinearity labels (NL) of the exponential conductance model and the normalized shape ``a``.

NeuroSim labels a response curve by ``NL``; one NL unit is a perpendicular distance of 0.07 between
the normalized response ``g_a(u) = (1 - exp(-u/a)) / (1 - exp(-1/a))`` and the diagonal
(``specs/devices.md`` section 2). This module implements that definition and inverts it by root
finding; no lookup table is shipped.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq

__all__ = ["C_NL", "NL_MAX", "gap_to_diagonal", "a_from_nl", "nl_from_a", "normalized_response"]

#: Perpendicular distance of one NL unit, ``0.07 * sqrt(2)`` measured vertically.
C_NL = 0.07 * math.sqrt(2.0)
#: Largest |NL| the package accepts (the published table spans 0.01 .. 9.00).
NL_MAX = 9.0
_LINEAR_NL = 1e-6
_LINEAR_A = 1e8


def gap_to_diagonal(a: float) -> float:
    """Largest vertical gap ``D(a) = max_u |g_a(u) - u|`` of the normalized response.

    Parameters
    ----------
    a : float
        Normalized shape parameter (``A / P``), either sign, nonzero.

    Returns
    -------
    float
        ``D(a)`` in [0, 1); ``D(a) = D(-a)``; ``0`` for ``|a| >= 1e8`` (linear).
    """
    a = abs(float(a))
    if not a > 0:
        raise ValueError(f"a must be nonzero, got {a!r}")
    if a >= _LINEAR_A:
        return 0.0
    if a > 1e3:
        # series: D ~ 1/(8a) - 1/(384 a^3); the closed form below cancels catastrophically here
        return 1.0 / (8.0 * a) - 1.0 / (384.0 * a**3)
    e = -math.expm1(-1.0 / a)  # E = 1 - exp(-1/a)
    return 1.0 / e - a + a * math.log(a * e)


def a_from_nl(nl: float) -> float:
    """Normalized shape ``a`` for a NeuroSim nonlinearity label.

    Solves ``D(a) = C_NL * |NL|`` for ``a > 0`` (Brent on ``log a`` in ``[1e-4, 1e7]``, relative
    tolerance 1e-12) and attaches the sign of ``NL``.

    Parameters
    ----------
    nl : float
        Nonlinearity label in ``[-9, 9]``; ``|NL| < 1e-6`` is linear.

    Returns
    -------
    float
        ``a``; ``math.inf`` (with the sign of NL, ``+inf`` for 0) for a linear label.

    Examples
    --------
    >>> round(a_from_nl(2.40), 4), round(a_from_nl(-4.88), 4)
    (0.4992, -0.2003)
    """
    try:
        nl = float(nl)
    except (TypeError, ValueError):
        raise TypeError(f"nl must be a real number, got {nl!r}") from None
    if not math.isfinite(nl) or abs(nl) > NL_MAX:
        raise ValueError(f"nl must be a finite label in [-{NL_MAX}, {NL_MAX}], got {nl!r}")
    if abs(nl) < _LINEAR_NL:
        return math.copysign(math.inf, nl) if nl != 0 else math.inf
    target = C_NL * abs(nl)

    def fn(log_a: float) -> float:
        return gap_to_diagonal(math.exp(log_a)) - target

    log_a = brentq(fn, math.log(1e-4), math.log(1e7), xtol=1e-14, rtol=1e-12, maxiter=500)
    return math.copysign(math.exp(log_a), nl)


def nl_from_a(a: float) -> float:
    """Nonlinearity label of a normalized shape ``a`` (inverse of :func:`a_from_nl`).

    Parameters
    ----------
    a : float
        Normalized shape, nonzero; ``inf`` gives 0.

    Returns
    -------
    float
        ``sign(a) * D(|a|) / C_NL``.
    """
    a = float(a)
    if math.isnan(a) or a == 0:
        raise ValueError(f"a must be a nonzero number, got {a!r}")
    if math.isinf(a):
        return 0.0
    return math.copysign(gap_to_diagonal(a) / C_NL, a)


def normalized_response(u, a):
    """Normalized response ``g_a(u)`` on ``u`` in [0, 1] (vectorized; ``a = inf`` is linear).

    Parameters
    ----------
    u : array_like
        Normalized pulse coordinate.
    a : float
        Normalized shape parameter.

    Returns
    -------
    numpy.ndarray
        ``g_a(u)``.
    """
    u = np.asarray(u, dtype=np.float64)
    if math.isinf(a) or abs(a) >= _LINEAR_A:
        return u.copy()
    k = 1.0 / a
    return np.expm1(-k * u) / math.expm1(-k)
