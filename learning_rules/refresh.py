"""Refresh policies of the unidirectional rule (``specs/devices.md`` 5.2, issue 16).

A unidirectional pair only climbs; a refresh (read ``w``, RESET both devices, program ``w`` on the
side of its sign) gives the headroom back. Three triggers, chosen by
:attr:`learning_rules.PulseRule.refresh`:

``threshold`` (the default, unchanged)
    After an update, refresh pairs whose larger device is at ``refresh_threshold`` of the range
    or above unless the other device is within half a nominal step of its Gmin
    (:meth:`devices.DeviceArray.needs_refresh`). A weight at or above the threshold can never be
    brought below it, so every opposite pulse on such a pair triggers a RESET and a full
    re-program of about ``|w| P`` pulses.
``hysteresis``
    As ``threshold``, but the smaller device must also be at least ``refresh_margin`` of the
    range above its Gmin. A refresh lowers the larger device by the smaller one's level, so each
    refresh takes the pair at least ``refresh_margin`` below where it was (below
    ``refresh_threshold - refresh_margin`` whenever ``|w|`` allows), and a pair near its weight
    bound is refreshed once per ``refresh_margin P`` opposite pulses instead of on every one.
``preemptive``
    ``hysteresis``, and also before an update: a pair whose target device has fewer pulses left
    on its nominal LTP curve (``P_LTP - x``) than the update asks for is refreshed first, when
    its other device is more than half a nominal step above Gmin (spec option
    ``refresh="preemptive"``).

The helpers read the conductances of a differential :class:`devices.DeviceArray`; float weights
never flag a refresh.
"""

from __future__ import annotations

import numpy as np

from devices.xp import array_module

from .weights import pulse_counts

__all__ = ["REFRESH_POLICIES", "pair_levels", "hysteresis_mask", "preemptive_mask",
           "refreshes_by_weight"]  # fmt: skip

#: Refresh triggers of :class:`learning_rules.PulseRule` (``refresh=``).
REFRESH_POLICIES = ("threshold", "hysteresis", "preemptive")


def pair_levels(w) -> np.ndarray:
    """Levels ``g`` of both devices of every pair, shape ``(2, out, in)``: conductance above the
    device's own Gmin in units of the nominal range (as :meth:`~devices.DeviceArray.needs_refresh`
    measures them)."""
    G = w.conductances
    gmin = w.gmin_i.reshape(G.shape)
    return (G - gmin) / w.device.dG


def hysteresis_mask(w, mask, margin: float):
    """``mask`` restricted to pairs whose smaller device is at least ``margin`` above Gmin.

    The levels of :func:`pair_levels` (the same float operations), computed for the pairs of
    ``mask`` only: a refresh mask holds a few pairs, and the rule asks after every update, so
    the levels of the whole array cost more than the refresh itself
    (``benchmarks/bench_request.py --rule unidirectional --refresh hysteresis``)."""
    xp = array_module(mask)
    mask = xp.asarray(mask, dtype=bool)
    syn = xp.flatnonzero(mask)
    out = xp.zeros(mask.size, dtype=bool)
    if syn.size:
        G, gmin, dG = w.G, w.gmin_i, w.device.dG  # flat: G+ of pair s at s, G- at s + N
        gp = (G[syn] - gmin[syn]) / dG
        gm = (G[syn + mask.size] - gmin[syn + mask.size]) / dG
        out[syn[xp.minimum(gp, gm) >= margin]] = True
    return out.reshape(mask.shape)


def preemptive_mask(w, dW, *, method: str, theta: float, rounding: str, n_max):
    """Pairs to refresh before the update ``dW``: the target device (G+ for ``dW > 0``, G- for
    ``dW < 0``) has fewer pulses left on its nominal LTP curve than the update's count
    (nearest rounding with the dead zone ``theta``; with stochastic rounding the count rounded
    up), and its partner is more than half a nominal step above Gmin.

    Parameters
    ----------
    w : devices.DeviceArray
        Differential array.
    dW : ndarray, shape (out, in)
        Requested weight changes (after any rescaling).
    method, theta, rounding, n_max
        The rule's counting options (:class:`learning_rules.PulseRule`).

    Returns
    -------
    ndarray of bool, shape (out, in)
    """
    xp = array_module(dW)
    up, dn = w.nominal_step(method)
    r = xp.where(dW >= 0, dW / up, -dW / dn)
    if rounding == "nearest":
        n = pulse_counts(r, theta=theta, n_max=n_max)
    else:
        n = xp.ceil(r) if n_max is None else xp.minimum(xp.ceil(r), n_max)
    if not bool((n > 0).any()):
        return xp.zeros(dW.shape, dtype=bool)
    dev = w.device
    G = w.conductances
    tgt = xp.where(dW >= 0, G[0], G[1])
    left = dev.levels("ltp") - xp.asarray(dev.pulses(tgt, "ltp"))
    g = pair_levels(w)
    partner = xp.where(dW >= 0, g[1], g[0])
    return (n > 0) & (n > left) & (partner > 0.5 / dev.levels("ltp"))


def refreshes_by_weight(w, edges=(0.0, 0.25, 0.5, 0.75, 0.9, 1.0)) -> list[dict]:
    """Refreshes per synapse binned by the final weight magnitude ``|w| / w_max``.

    Parameters
    ----------
    w : devices.DeviceArray
    edges : sequence of float
        Bin edges of ``|w| / w_max`` (the last bin includes its upper edge).

    Returns
    -------
    list of dict
        Per bin: ``lo``, ``hi``, ``synapses`` (count) and ``refreshes`` (mean per synapse).
    """
    aw = np.abs(np.asarray(w.weights())) / w.w_max
    ref = np.asarray(w.pulse_counts()["refreshes"])
    rows = []
    for k, (lo, hi) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        last = k == len(edges) - 2
        sel = (aw >= lo) & ((aw <= hi) if last else (aw < hi))
        n = int(sel.sum())
        rows.append(
            {"lo": lo, "hi": hi, "synapses": n, "refreshes": float(ref[sel].mean()) if n else 0.0}
        )
    return rows
