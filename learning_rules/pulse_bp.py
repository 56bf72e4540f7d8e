"""Pulse backpropagation on discrete-conductance synapses (``specs/adaptive_bp.md``).

From the backprop input ``x`` and error ``delta`` a layer requests ``dW = -lr delta^T x`` (summed
over the batch). :class:`PulseRule` turns the request into pulse counts (rounding per nominal
step with a dead zone, optional cap) and routes them to the devices:

``bidirectional``
    LTP for ``n > 0`` and LTD for ``n < 0`` on the single device of the reference mapping
    (NeuroSim's scheme); on a differential pair push-pull (``side="both"``) or G+ only
    (``side="plus"``). LTP/LTD asymmetry acts.
``unidirectional`` (Lim et al. 2017)
    Potentiation pulses only: on G+ to raise and on G- to lower the weight; saturated pairs are
    refreshed (read, reset both, re-program) after every ``refresh_every`` steps.
``stochastic``
    The array's in-array pulse-train update (:meth:`devices.DeviceArray.pulse_update`).
``software``
    Float SGD, ``W <- clip(W + dW, -1, 1)`` (the software twin).

The adaptive switches of spec section 3.7: A1 ``pulse_count="state"`` (counts from each device's
present conductance on the nominal curve), A2 ``lr_fit=True`` (scale a layer's request so its
largest element fits ``n_max`` nominal steps, keeping its direction), A3 ``n_max=1``. The named
rule ``adaptive`` is ``unidirectional`` + A1 + A2 with ``n_max=16``.

The array code is written over the array module of its inputs (numpy, or cupy when a layer's
weights live on the GPU, :mod:`devices.xp`): with a GPU device array the inputs ``x``, errors
``delta``, requests and pulse counts stay on the GPU. Two host steps remain, by design: the
uniforms of ``rounding="stochastic"`` on float weights come from the numpy generator ``rng``
(the same numbers on every backend) and go down once per update, and A1
(``pulse_count="state"``) evaluates the device's nominal inverse curve
(:meth:`devices.DeviceModel.pulses`, numpy) on the host.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from devices.xp import array_module, asnumpy, to_device

from .weights import FloatWeights

__all__ = ["PulseRule", "RULES", "ROUNDINGS", "pulse_counts", "route_counts", "fit_request"]

RULES = ("software", "bidirectional", "unidirectional", "stochastic", "adaptive")
ROUNDINGS = ("nearest", "stochastic")
_METHODS = ("software", "bidirectional", "unidirectional", "stochastic")


def _choice(name, value, choices):
    if value not in choices:
        import difflib

        close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=2)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(
            f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}{hint}"
        )
    return value


def pulse_counts(
    r,
    *,
    theta: float = 0.5,
    rounding: str = "nearest",
    n_max: int | None = None,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Whole pulse counts for requests ``r`` measured in nominal steps (``r >= 0``).

    ``nearest``: ``floor(r) + (frac(r) >= theta)`` (``theta = 0.5`` is round half up; requests
    below ``theta`` steps give no pulse: the dead zone). ``stochastic``:
    ``floor(r) + Bernoulli(frac(r))``. Then capped at ``n_max``.

    Parameters
    ----------
    r : ndarray
        Non-negative requested changes in units of the nominal step (numpy or cupy; the
        counts come back in the same module).
    theta : float
        Dead-zone threshold in (0, 1].
    rounding : {"nearest", "stochastic"}
    n_max : int or None
        Cap per update.
    rng : numpy.random.Generator
        Required for stochastic rounding (its uniforms are copied to the GPU for cupy ``r``).

    Returns
    -------
    ndarray of int64
    """
    xp = array_module(r)
    fl = xp.floor(r)
    frac = r - fl
    if rounding == "nearest":
        n = fl + (frac >= theta)
    else:
        if rng is None:
            raise ValueError("rng is required for rounding='stochastic'")
        u = rng.random(r.shape)
        n = fl + ((u if xp is np else to_device(u, xp)) < frac)
    if n_max is not None:
        n = xp.minimum(n, n_max)
    return n.astype(xp.int64)


def fit_request(dW, n_max: int, step_up: float, step_down: float) -> np.ndarray:
    """A2: scale ``dW`` by one factor so that no element exceeds ``n_max`` nominal steps of its
    direction; a request that already fits is returned unchanged (signs never change)."""
    pos = max(float(dW.max()), 0.0) if dW.size else 0.0
    neg = max(-float(dW.min()), 0.0) if dW.size else 0.0
    s = 1.0
    if pos > n_max * step_up:
        s = min(s, n_max * step_up / pos)
    if neg > n_max * step_down:
        s = min(s, n_max * step_down / neg)
    return dW * s if s < 1.0 else dW


def route_counts(n, method: str, mapping: str, side: str = "both"):
    """Signed per-synapse counts -> ``(n_plus, n_minus)`` for :meth:`pulse`.

    ``unidirectional`` returns only non-negative counts (LTP on G+ for ``n > 0``, on G- for
    ``n < 0``); ``bidirectional`` push-pull returns ``(n, -n)``; G+ only or the reference mapping
    return ``(n, None)``.
    """
    if method == "unidirectional":
        if mapping not in ("differential", "float"):
            raise ValueError("rule 'unidirectional' needs mapping='differential'")
        xp = array_module(n)
        return xp.maximum(n, 0), xp.maximum(-n, 0)
    if mapping == "differential" and side == "both":
        return n, -n
    return n, None


@dataclass(frozen=True, kw_only=True)
class PulseRule:
    """Pulse backprop update rule; one instance serves every layer.

    Parameters
    ----------
    method : {"software", "bidirectional", "unidirectional", "stochastic"}
    rounding : {"nearest", "stochastic"}
        Pulse-count rounding (``nearest`` with the ``theta`` dead zone).
    theta : float
        Dead-zone threshold in nominal steps, in (0, 1].
    n_max : int or None
        Maximum pulses per synapse and update (None: unlimited; the device range bounds it).
    side : {"both", "plus"}
        Bidirectional on a differential pair: push-pull, or G+ only.
    refresh_threshold : float
        Unidirectional: refresh pairs whose larger device passes this normalized conductance.
    refresh_every : int
        Unidirectional: check for refreshes every this many updates.
    refresh_mode : {"ideal", "open_loop", "verify"}
        Programming used by a refresh.
    pulse_count : {"nominal", "state"}
        A1: ``state`` computes counts from each device's present conductance on the nominal
        curve (one read per update).
    state_cap : float or None
        A1: limit counts to this multiple of the nominal count (at least 1).
    lr_fit : bool
        A2: scale each layer's request to fit ``n_max`` steps (needs ``n_max``).
    bl : int
        Stochastic: desired pulse-train length.
    stochastic_method : {"bidirectional", "unidirectional"}
        Stochastic: routing of the coincidence counts.
    """

    method: str = "bidirectional"
    rounding: str = "nearest"
    theta: float = 0.5
    n_max: int | None = None
    side: str = "both"
    refresh_threshold: float = 0.9
    refresh_every: int = 1
    refresh_mode: str = "verify"
    pulse_count: str = "nominal"
    state_cap: float | None = None
    lr_fit: bool = False
    bl: int = 31
    stochastic_method: str = "bidirectional"

    def __post_init__(self):
        _choice("method", self.method, _METHODS)
        _choice("rounding", self.rounding, ROUNDINGS)
        _choice("side", self.side, ("both", "plus"))
        _choice("refresh_mode", self.refresh_mode, ("ideal", "open_loop", "verify"))
        _choice("pulse_count", self.pulse_count, ("nominal", "state"))
        _choice("stochastic_method", self.stochastic_method, ("bidirectional", "unidirectional"))
        if not (isinstance(self.theta, (int, float)) and 0 < self.theta <= 1):
            raise ValueError(f"theta must be in (0, 1], got {self.theta!r}")
        if self.n_max is not None and (
            not isinstance(self.n_max, (int, np.integer)) or self.n_max < 1
        ):
            raise ValueError(f"n_max must be a positive integer or None, got {self.n_max!r}")
        if not (0 < self.refresh_threshold <= 1):
            raise ValueError(f"refresh_threshold must be in (0, 1], got {self.refresh_threshold!r}")
        if not (isinstance(self.refresh_every, (int, np.integer)) and self.refresh_every >= 1):
            raise ValueError(f"refresh_every must be an integer >= 1, got {self.refresh_every!r}")
        if self.lr_fit and self.n_max is None:
            raise ValueError("lr_fit=True needs a finite n_max")
        if self.state_cap is not None and not self.state_cap >= 1:
            raise ValueError(f"state_cap must be >= 1 or None, got {self.state_cap!r}")
        if not (isinstance(self.bl, (int, np.integer)) and 1 <= self.bl <= 256):
            raise ValueError(f"bl must be an integer in [1, 256], got {self.bl!r}")

    @classmethod
    def named(cls, name: str, **overrides) -> PulseRule:
        """A named rule of the spec: ``software``, ``bidirectional``, ``unidirectional``,
        ``stochastic`` or ``adaptive`` (unidirectional + A1 + A2, ``n_max = 16``), with field
        overrides."""
        _choice("rule", name, RULES)
        if name == "adaptive":
            base = {"method": "unidirectional", "pulse_count": "state", "lr_fit": True, "n_max": 16}
        else:
            base = {"method": name}
        base.update(overrides)
        return cls(**base)

    def replace(self, **changes) -> PulseRule:
        """Copy with fields changed."""
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ the update
    def request(self, x, delta, lr: float) -> np.ndarray:
        """Requested change ``dW = -lr * delta^T x`` summed over the batch (in the array module
        of ``x``: on the GPU for cupy inputs)."""
        xp = array_module(x)
        x2 = xp.atleast_2d(x)
        d2 = xp.atleast_2d(delta)
        return (-lr * d2).T @ x2  # scale the small factor, not the (out, in) product

    def update(
        self, w, x, delta, lr: float, *, rng: np.random.Generator | None = None, step: int = 0
    ) -> dict:
        """Update weights ``w`` from one (mini-)batch.

        Parameters
        ----------
        w : WeightArray
            :class:`FloatWeights` or :class:`devices.DeviceArray`.
        x : ndarray, shape (batch, in) or (in,)
            Layer inputs (numpy, or cupy for weights on the GPU).
        delta : ndarray, shape (batch, out) or (out,)
            Errors dL/dz of the layer outputs (same array module as ``x``).
        lr : float
            Learning rate of this layer.
        rng : numpy.random.Generator, optional
            For stochastic rounding on float weights and with ``pulse_count="state"``
            (device arrays draw their own counter-based numbers in the fused path).
        step : int
            Index of this update (for ``refresh_every``).

        Returns
        -------
        dict
            ``pulses`` (pulse events sent: sum of |counts| over devices), ``refreshes``.
        """
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr!r}")
        if self.method == "software":
            if not isinstance(w, FloatWeights):
                raise ValueError(
                    "rule 'software' trains float weights (FloatWeights), not a device array"
                )
            w.add(self.request(x, delta, lr))
            return {"pulses": 0, "refreshes": 0}
        mapping = getattr(w, "mapping", "float")
        if self.method == "stochastic":
            if isinstance(w, FloatWeights):
                raise ValueError("rule 'stochastic' needs a device array")
            st = w.pulse_update(
                x, delta, lr, self.bl, method=self.stochastic_method, side=self.side
            )
            mult = (
                2
                if (
                    mapping == "differential"
                    and self.stochastic_method == "bidirectional"
                    and self.side == "both"
                )
                else 1
            )
            refreshed = self._maybe_refresh(w, step, self.stochastic_method)
            return {"pulses": st["coincidences"] * mult, "refreshes": refreshed}
        dW = self.request(x, delta, lr)
        up, dn = w.nominal_step(self.method, self.side)
        if self.lr_fit:
            dW = fit_request(dW, self.n_max, up, dn)
        if self.pulse_count == "nominal" and hasattr(w, "pulse_request"):
            # device arrays: counts, routing and writes in one fused kernel pass
            thr = (
                self.refresh_threshold
                if (self.method == "unidirectional" and self.refresh_every == 1)
                else None
            )
            res = w.pulse_request(
                dW,
                method=self.method,
                side=self.side,
                theta=self.theta,
                n_max=self.n_max,
                rounding=self.rounding,
                refresh_threshold=thr,
            )
            if res["needs_refresh"] is not None:
                mask = res["needs_refresh"]
                refreshed = int(w.refresh(mask, mode=self.refresh_mode)) if mask.any() else 0
            else:
                refreshed = self._maybe_refresh(w, step, self.method)
            return {"pulses": res["pulses"], "refreshes": refreshed}
        if self.pulse_count == "state" and not isinstance(w, FloatWeights):
            n_plus, n_minus = self._state_counts(w, dW, up, dn, rng)
        else:
            xp = array_module(dW)
            r = xp.where(dW >= 0, dW / up, -dW / dn)
            n = pulse_counts(r, theta=self.theta, rounding=self.rounding, n_max=self.n_max, rng=rng)
            n = xp.where(dW >= 0, n, -n)
            n_plus, n_minus = route_counts(n, self.method, mapping, self.side)
        xp = array_module(n_plus)
        total = xp.abs(n_plus).sum()
        if n_minus is not None:
            total = total + xp.abs(n_minus).sum()
        pulses = int(total)
        if pulses:
            w.pulse(n_plus, n_minus)
        refreshed = self._maybe_refresh(w, step, self.method)
        return {"pulses": pulses, "refreshes": refreshed}

    def _maybe_refresh(self, w, step, method) -> int:
        if method != "unidirectional" or (step + 1) % self.refresh_every:
            return 0
        if isinstance(w, FloatWeights):
            return 0
        mask = w.needs_refresh(self.refresh_threshold)
        return int(w.refresh(mask, mode=self.refresh_mode)) if mask.any() else 0

    def _state_counts(self, w, dW, up, dn, rng):
        """A1: per-device counts from the present conductance on the nominal curve."""
        dev = w.device
        G = w.read_conductances(noise=True)
        xp = array_module(G)
        dW = to_device(dW, xp) if xp is not np else dW
        alpha = w.alpha
        pos = dW >= 0
        mag = xp.abs(dW)

        def coord(Gd, branch):
            # the device model's nominal inverse curve is numpy code: evaluated on the host
            if xp is np:
                return dev.pulses(Gd, branch)
            return to_device(dev.pulses(asnumpy(Gd), branch), xp)

        def one(Gd, dG, potentiate, nominal):
            branch_up = potentiate
            tgt = xp.clip(Gd + xp.where(potentiate, dG, -dG), dev.gmin, dev.gmax)
            xa = xp.where(branch_up, coord(Gd, "ltp"), coord(Gd, "ltd"))
            xb = xp.where(branch_up, coord(tgt, "ltp"), coord(tgt, "ltd"))
            r = xp.abs(xb - xa)
            if self.state_cap is not None:
                r = xp.minimum(r, xp.maximum(self.state_cap * nominal, 1.0))
            return pulse_counts(
                r, theta=self.theta, rounding=self.rounding, n_max=self.n_max, rng=rng
            )

        nominal = xp.where(pos, mag / up, mag / dn)
        if self.method == "unidirectional":
            # G+ rises for dW > 0, G- rises for dW < 0; both on the LTP branch
            target_dev = xp.where(pos, G[0], G[1])
            n = one(target_dev, mag / alpha, xp.ones_like(pos), nominal)
            return xp.where(pos, n, 0), xp.where(pos, 0, n)
        if w.mapping == "reference":
            n = one(G[0], mag / alpha, pos, nominal)
            return xp.where(pos, n, -n), None
        if self.side == "plus":
            n = one(G[0], mag / alpha, pos, nominal)
            return xp.where(pos, n, -n), None
        half = mag / (2 * alpha)
        n_p = one(G[0], half, pos, nominal)
        n_m = one(G[1], half, ~pos, nominal)
        return xp.where(pos, n_p, -n_p), xp.where(pos, -n_m, n_m)
