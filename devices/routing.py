"""Pulse routing: which devices of a synapse receive its signed pulse count (coded once).

A synapse's signed count ``n`` reaches its devices in one of three ways:

``"unidirectional"``
    LTP only: ``n`` pulses on G+ for ``n > 0``, ``|n|`` on G- for ``n < 0`` (differential pairs;
    float weights take it as plain signed steps).
``"push_pull"``
    ``+n`` on G+ and ``-n`` on G- (bidirectional on both devices of a differential pair).
``"single"``
    ``n`` on one device: the reference mapping, G+ only with ``side="plus"``, float weights.

:func:`route` names the way, :func:`route_code` gives the kernels' code for it
(:data:`devices.kernels.ROUTE_SINGLE` ...), :func:`route_counts` splits counts on the host.
:class:`devices.DeviceArray` and the learning rules' weight protocol
(``learning_rules.weights``) both use these functions.
"""

from __future__ import annotations

from .kernels import ROUTE_PUSH_PULL, ROUTE_SINGLE, ROUTE_UNIDIRECTIONAL
from .xp import array_module

__all__ = ["ROUTES", "route", "route_code", "route_counts"]

#: How a synapse's signed count reaches its devices (see :func:`route`).
ROUTES = ("unidirectional", "single", "push_pull")

_CODES = {
    "unidirectional": ROUTE_UNIDIRECTIONAL,
    "single": ROUTE_SINGLE,
    "push_pull": ROUTE_PUSH_PULL,
}


def route(method: str, mapping: str, side: str = "both") -> str:
    """Which devices of a synapse receive its signed count ``n`` (see the module docs).

    Parameters
    ----------
    method : {"bidirectional", "unidirectional"}
    mapping : {"differential", "reference", "float"}
    side : {"both", "plus"}
        ``"plus"`` writes G+ only (a differential pair's other device stays put).

    Returns
    -------
    str
        ``"unidirectional"``, ``"push_pull"`` or ``"single"``.

    Raises
    ------
    ValueError
        ``unidirectional`` on the reference mapping.
    """
    if method == "unidirectional":
        if mapping not in ("differential", "float"):
            raise ValueError(
                f"method='unidirectional' needs mapping='differential', got mapping={mapping!r}"
            )
        return "unidirectional"
    if mapping == "differential" and side == "both":
        return "push_pull"
    return "single"


def route_code(method: str, mapping: str, side: str = "both") -> int:
    """The kernels' route code (``ROUTE_*`` of :mod:`devices.kernels`) of :func:`route`."""
    return _CODES[route(method, mapping, side)]


def route_counts(n, method: str, mapping: str, side: str = "both"):
    """Signed per-synapse counts -> ``(n_plus, n_minus)`` for ``pulse(n_plus, n_minus)``.

    ``unidirectional`` returns only non-negative counts (LTP on G+ for ``n > 0``, on G- for
    ``n < 0``); ``push_pull`` returns ``(n, -n)``; ``single`` returns ``(n, None)``
    (:func:`route`). ``n`` may be numpy or cupy.
    """
    how = route(method, mapping, side)
    if how == "unidirectional":
        xp = array_module(n)
        return xp.maximum(n, 0), xp.maximum(-n, 0)
    if how == "push_pull":
        return n, -n
    return n, None
