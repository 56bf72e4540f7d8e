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

Rules reach weights only through the protocol of :mod:`learning_rules.weights` (no test of the
concrete type), and the rule owns its default weight mapping (:data:`DEFAULT_MAPPING`,
:func:`default_mapping`, :func:`resolve_mapping`, :func:`program_form`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from devices.validation import check_bool, check_choice, check_int, check_real
from devices.xp import array_module

from .refresh import REFRESH_POLICIES, hysteresis_mask, preemptive_mask
from .weights import (
    ROUNDINGS,
    as_weight_array,
    pulse_counts,
    route,
    route_counts,
    total_pulses,
)

__all__ = [
    "PulseRule",
    "RULES",
    "ROUNDINGS",
    "DEFAULT_MAPPING",
    "DEFAULT_REFRESH_THRESHOLD",
    "default_mapping",
    "resolve_mapping",
    "program_form",
    "pulse_counts",
    "route_counts",
    "fit_request",
]

RULES = ("software", "bidirectional", "unidirectional", "stochastic", "adaptive")
#: Fraction of the range above which the unidirectional rule refreshes a pair (the default of
#: ``PulseRule.refresh_threshold``; the sparse-coding dictionary arrays use it too).
DEFAULT_REFRESH_THRESHOLD = 0.9
_METHODS = ("software", "bidirectional", "unidirectional", "stochastic")
_DEVICE_MAPPINGS = ("reference", "differential")

#: The weight mapping each update method uses by default (the one rule -> mapping table):
#: one device against a reference for bidirectional and stochastic updates, a differential pair
#: for unidirectional ones (``adaptive`` is unidirectional), plain floats for ``software``.
DEFAULT_MAPPING = {
    "software": "float",
    "bidirectional": "reference",
    "stochastic": "reference",
    "unidirectional": "differential",
}


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


def _as_rule(rule) -> PulseRule:
    if isinstance(rule, PulseRule):
        return rule
    return PulseRule.named(rule)


def default_mapping(rule) -> str:
    """The mapping a rule uses by default (:data:`DEFAULT_MAPPING`).

    Parameters
    ----------
    rule : str or PulseRule
        A name of :data:`RULES` or a rule.

    Returns
    -------
    str
        ``"reference"`` (bidirectional, stochastic), ``"differential"`` (unidirectional,
        adaptive) or ``"float"`` (software).
    """
    return _as_rule(rule).default_mapping


def resolve_mapping(rule, mapping: str | None = None) -> str:
    """The device mapping of ``rule``: ``mapping`` checked against the rule, or the rule's
    default when ``None``.

    Raises
    ------
    ValueError
        ``mapping`` is not ``"reference"`` / ``"differential"``, or the rule is unidirectional
        (or adaptive) and ``mapping="reference"``.
    """
    r = _as_rule(rule)
    if mapping is None:
        return r.default_mapping
    check_choice("mapping", mapping, _DEVICE_MAPPINGS)
    if r.method == "unidirectional" and mapping == "reference":
        name = rule if isinstance(rule, str) else r.method
        raise ValueError(f"rule {name!r} needs mapping='differential', got mapping='reference'")
    return mapping


def program_form(rule, mapping: str) -> str:
    """How initial weights are programmed for ``rule`` on ``mapping``: ``"centered"`` (both
    devices of a differential pair around mid-range) for bidirectional and stochastic rules on
    a differential pair, else ``"one_sided"`` (see :meth:`devices.DeviceArray.program`)."""
    r = _as_rule(rule)
    if r.method in ("bidirectional", "stochastic") and mapping == "differential":
        return "centered"
    return "one_sided"


def _check_finite(name: str, a) -> None:
    """Raise before any write when ``a`` holds NaN or infinite values (an update is atomic)."""
    xp = array_module(a)
    a = xp.asarray(a)
    if a.dtype.kind not in "fc" or bool(xp.isfinite(a.sum())):  # one reduction when fine
        return
    bad = int(a.size - int(xp.count_nonzero(xp.isfinite(a))))
    if bad:
        raise ValueError(
            f"{name} contains {bad} NaN or infinite value{'s' if bad > 1 else ''}; nothing was "
            "updated (the weights are unchanged): pass finite inputs"
        )


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
    refresh : {"threshold", "hysteresis", "preemptive"}
        Unidirectional refresh trigger (:mod:`learning_rules.refresh`): the plain threshold (the
        default), with hysteresis (the smaller device must also be ``refresh_margin`` above
        Gmin), or hysteresis plus a refresh before an update that asks for more pulses than the
        target device has left.
    refresh_margin : float
        Hysteresis margin in fractions of the range, in (0, ``refresh_threshold``).
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
    refresh_threshold: float = DEFAULT_REFRESH_THRESHOLD
    refresh_every: int = 1
    refresh_mode: str = "verify"
    refresh: str = "threshold"
    refresh_margin: float = 0.1
    pulse_count: str = "nominal"
    state_cap: float | None = None
    lr_fit: bool = False
    bl: int = 31
    stochastic_method: str = "bidirectional"

    def __post_init__(self):
        check_choice("method", self.method, _METHODS)
        check_choice("rounding", self.rounding, ROUNDINGS)
        check_choice("side", self.side, ("both", "plus"))
        check_choice("refresh_mode", self.refresh_mode, ("ideal", "open_loop", "verify"))
        check_choice("pulse_count", self.pulse_count, ("nominal", "state"))
        check_choice("refresh", self.refresh, REFRESH_POLICIES)
        check_choice(
            "stochastic_method", self.stochastic_method, ("bidirectional", "unidirectional")
        )
        check_real("theta", self.theta, lo=0.0, lo_open=True, hi=1.0)
        if self.n_max is not None:
            check_int("n_max", self.n_max, lo=1)
        check_real("refresh_threshold", self.refresh_threshold, lo=0.0, lo_open=True, hi=1.0)
        check_int("refresh_every", self.refresh_every, lo=1)
        check_real("refresh_margin", self.refresh_margin, lo=0.0, lo_open=True)
        if not self.refresh_margin < self.refresh_threshold:
            raise ValueError(
                f"refresh_margin must be below refresh_threshold ({self.refresh_threshold}), "
                f"got {self.refresh_margin}"
            )
        check_bool("lr_fit", self.lr_fit)
        if self.lr_fit and self.n_max is None:
            raise ValueError("lr_fit=True needs a finite n_max")
        if self.state_cap is not None:
            check_real("state_cap", self.state_cap, lo=1.0)
        check_int("bl", self.bl, lo=1, hi=256)

    @classmethod
    def named(cls, name: str, **overrides) -> PulseRule:
        """A named rule of the spec: ``software``, ``bidirectional``, ``unidirectional``,
        ``stochastic`` or ``adaptive`` (unidirectional + A1 + A2, ``n_max = 16``), with field
        overrides."""
        check_choice("rule", name, RULES)
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

    @property
    def default_mapping(self) -> str:
        """The weight mapping this rule uses unless told otherwise (:data:`DEFAULT_MAPPING`)."""
        return DEFAULT_MAPPING[self.method]

    def update(
        self, w, x, delta, lr: float, *, rng: np.random.Generator | None = None, step: int = 0
    ) -> dict:
        """Update weights ``w`` from one (mini-)batch.

        Parameters
        ----------
        w : WeightArray
            :class:`FloatWeights`, :class:`devices.DeviceArray` or any other implementation of
            the protocol (:func:`~learning_rules.weights.as_weight_array`).
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
        check_real("lr", lr, lo=0.0, lo_open=True)
        # an array whose pulse_update refuses non-finite x and d before any change (a device
        # array: one pass fused with the update's setup) is not checked twice; the rule's
        # checks then run only on a refusal, for their message
        checked = self.method == "stochastic" and getattr(w, "pulse_update_checks_finite", False)
        if not checked:
            _check_finite("x", x)
            _check_finite("delta", delta)
        w = as_weight_array(w)
        if self.method == "software":
            w.add(self.request(x, delta, lr))
            return {"pulses": 0, "refreshes": 0}
        if self.method == "stochastic":
            try:
                st = w.pulse_update(
                    x, delta, lr, self.bl, method=self.stochastic_method, side=self.side
                )
            except ValueError:
                if checked:  # the rule's message for non-finite inputs; else the array's error
                    _check_finite("x", x)
                    _check_finite("delta", delta)
                raise
            how = route(self.stochastic_method, w.mapping, self.side)
            mult = 2 if how == "push_pull" else 1
            refreshed = self._maybe_refresh(w, step, self.stochastic_method)
            return {"pulses": st["coincidences"] * mult, "refreshes": refreshed}
        dW = self.request(x, delta, lr)
        if self.lr_fit:
            up, dn = w.nominal_step(self.method, self.side)
            dW = fit_request(dW, self.n_max, up, dn)
        pre = 0
        if self.refresh == "preemptive" and self.method == "unidirectional":
            pre = self._preempt(w, dW)
        counting = dict(
            method=self.method,
            side=self.side,
            theta=self.theta,
            n_max=self.n_max,
            rounding=self.rounding,
            rng=rng,
        )
        if self.pulse_count == "state":
            n_plus, n_minus = w.state_counts(dW, state_cap=self.state_cap, **counting)
            pulses = total_pulses(n_plus, n_minus)
            if pulses:
                w.pulse(n_plus, n_minus)
            return {
                "pulses": pulses,
                "refreshes": pre + self._maybe_refresh(w, step, self.method),
            }
        # counts, routing and writes in one pass (one fused kernel on device arrays)
        thr = (
            self.refresh_threshold
            if (self.method == "unidirectional" and self.refresh_every == 1)
            else None
        )
        res = w.pulse_request(dW, refresh_threshold=thr, **counting)
        if res["needs_refresh"] is not None:
            refreshed = self._refresh(w, res["needs_refresh"])
        else:
            refreshed = self._maybe_refresh(w, step, self.method)
        return {"pulses": res["pulses"], "refreshes": pre + refreshed}

    def _refresh(self, w, mask) -> int:
        """Refresh the pairs of a threshold ``mask`` that the trigger keeps."""
        if not mask.any():
            return 0
        if self.refresh != "threshold":
            mask = hysteresis_mask(w, mask, self.refresh_margin)
            if not mask.any():
                return 0
        return int(w.refresh(mask, mode=self.refresh_mode))

    def _preempt(self, w, dW) -> int:
        """``refresh="preemptive"``: refresh pairs the update ``dW`` would run out of."""
        if not hasattr(w, "conductances") or getattr(w, "mapping", None) != "differential":
            return 0
        mask = preemptive_mask(
            w, dW, method=self.method, theta=self.theta, rounding=self.rounding,
            n_max=self.n_max,
        )  # fmt: skip
        return int(w.refresh(mask, mode=self.refresh_mode)) if mask.any() else 0

    def _maybe_refresh(self, w, step, method) -> int:
        if method != "unidirectional" or (step + 1) % self.refresh_every:
            return 0
        return self._refresh(w, w.needs_refresh(self.refresh_threshold))
