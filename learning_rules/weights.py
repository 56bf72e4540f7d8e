"""The weight protocol shared by float matrices and device arrays.

A learning rule only talks to weights through :class:`WeightArray`, so the same rule and the
same trainer run on ideal float weights (the software twin, :class:`FloatWeights`) and on
:class:`devices.DeviceArray` (through :class:`DeviceWeights`, see below), with no test of the
concrete type anywhere in a rule:

``shape``, ``mapping``
    ``(out_features, in_features)``; ``"float"``, ``"reference"`` or ``"differential"``.
``weights(noise=False)``, ``matmul(x)``, ``rmatmul(d)``
    Read the effective weight matrix; forward ``x W^T`` and backward ``d W`` reads.
``add(dW)``
    A software update (float weights only; a device array refuses it).
``pulse(n_plus, n_minus=None)``
    Apply signed pulse counts.
``nominal_step(method, side)``
    Weight change of one pulse event ``(up, down)``.
``pulse_request(dW, *, method, side, theta, n_max, rounding, refresh_threshold, rng)``
    Round a requested change to whole pulses of the nominal step (dead zone ``theta``, cap
    ``n_max``), route and apply them; returns ``{"pulses", "needs_refresh"}``.
``state_counts(dW, *, method, side, theta, n_max, rounding, state_cap, rng)``
    The counts of the adaptive rule's A1 (from each device's present conductance on the
    nominal curve), ``(n_plus, n_minus)``, not applied.
``pulse_update(x, d, lr, bl, *, method, side)``
    The in-array stochastic pulse-train update (device arrays only).
``program(W)``, ``needs_refresh(threshold)``, ``refresh(mask, mode=...)``, ``saturation()``
    Write weights; refresh saturated differential pairs (never needed on float weights);
    fractions saturated high and low.

The pulse semantics every implementation shares are here too: :func:`pulse_counts` (rounding
with the dead zone) and, re-exported from :mod:`devices.routing` where they are coded once,
:func:`route` / :func:`route_counts` (which device of a synapse receives which pulses).
:func:`as_weight_array` is the one place where an object that lacks part of the protocol (a
:class:`devices.DeviceArray` today lacks ``state_counts`` and ``add``) is wrapped in its adapter;
rules call it on entry.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from devices.routing import ROUTES, route, route_counts
from devices.validation import check_real
from devices.xp import array_module, asnumpy, is_cupy_array, to_device

__all__ = [
    "WeightArray",
    "FloatWeights",
    "DeviceWeights",
    "as_weight_array",
    "pulse_counts",
    "route",
    "route_counts",
    "total_pulses",
    "ROUNDINGS",
    "ROUTES",
]

#: Pulse-count roundings.
ROUNDINGS = ("nearest", "stochastic")


# ---------------------------------------------------------------------------- pulse semantics
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


def _signed_counts(dW, up, dn, *, theta, rounding, n_max, rng):
    """Signed counts of request ``dW`` in nominal steps ``up`` / ``dn`` (the rule's rounding)."""
    xp = array_module(dW)
    r = xp.where(dW >= 0, dW / up, -dW / dn)
    n = pulse_counts(r, theta=theta, rounding=rounding, n_max=n_max, rng=rng)
    return xp.where(dW >= 0, n, -n)


def total_pulses(n_plus, n_minus) -> int:
    """Pulse events of routed counts: ``sum |n_plus| + sum |n_minus|``."""
    xp = array_module(n_plus)
    total = xp.abs(n_plus).sum()
    if n_minus is not None:
        total = total + xp.abs(n_minus).sum()
    return int(total)


# ---------------------------------------------------------------------------- the protocol
@runtime_checkable
class WeightArray(Protocol):
    """Structural type of anything a learning rule can train (see module docs)."""

    mapping: str

    @property
    def shape(self) -> tuple[int, int]: ...  # noqa: D102

    def weights(self, noise: bool = False) -> np.ndarray: ...  # noqa: D102

    def matmul(self, x) -> np.ndarray: ...  # noqa: D102

    def rmatmul(self, d) -> np.ndarray: ...  # noqa: D102

    def add(self, dW) -> None: ...  # noqa: D102

    def pulse(self, n_plus, n_minus=None) -> None: ...  # noqa: D102

    def nominal_step(self, method: str = "bidirectional", side: str = "both"): ...  # noqa: D102

    def pulse_request(self, dW, **options) -> dict: ...  # noqa: D102

    def state_counts(self, dW, **options): ...  # noqa: D102

    def pulse_update(self, x, d, lr: float, bl: int = 31, **options) -> dict: ...  # noqa: D102

    def program(self, W, **kwargs) -> None: ...  # noqa: D102

    def needs_refresh(self, threshold: float = 0.9): ...  # noqa: D102

    def refresh(self, mask, **kwargs) -> int: ...  # noqa: D102

    def saturation(self) -> dict: ...  # noqa: D102


#: The members of :class:`WeightArray` (``isinstance`` on a runtime protocol recomputes them on
#: every call, too slow for a per-update check).
_PROTOCOL = (
    "shape",
    "mapping",
    "weights",
    "matmul",
    "rmatmul",
    "add",
    "pulse",
    "nominal_step",
    "pulse_request",
    "state_counts",
    "pulse_update",
    "program",
    "needs_refresh",
    "refresh",
    "saturation",
)
#: Per type: ``"complete"`` (implements the protocol), ``"adapt"`` (a device array that
#: :class:`DeviceWeights` completes) or the members it lacks.
_KIND: dict[type, str | tuple] = {}


def as_weight_array(w) -> WeightArray:
    """``w`` itself when it implements the whole :class:`WeightArray` protocol (a structural
    check, no concrete type), else ``w`` wrapped in :class:`DeviceWeights`.

    Raises
    ------
    TypeError
        ``w`` is neither a weight array nor a device array (names what is missing).
    """
    kind = _KIND.get(type(w))
    if kind is None:  # the first object of its type: look at its members once
        if all(hasattr(w, m) for m in _PROTOCOL):
            kind = "complete"
        else:
            kind = tuple(m for m in _DEVICE_NEEDS if not hasattr(w, m)) or "adapt"
        _KIND[type(w)] = kind
    if kind == "complete":
        return w
    if kind != "adapt":
        raise TypeError(
            f"w must implement the weight protocol (learning_rules.WeightArray) or be a "
            f"devices.DeviceArray; {type(w).__name__} lacks {', '.join(kind)}"
        )
    return DeviceWeights(w)


class FloatWeights:
    """A plain float weight matrix that implements :class:`WeightArray` (the software baseline).

    The matrix lives where ``W`` lives: a numpy array on the CPU, or a cupy array on the GPU
    (then reads and updates stay on the GPU, and inputs must be cupy arrays too). Pulses are
    those of an ideal linear device with continuous levels: ``step`` per pulse, any count,
    no saturation but the clip at ``w_max``.

    Parameters
    ----------
    W : array_like, shape (out, in)
        Initial weights (copied; a cupy array keeps the weights on the GPU).
    w_max : float or None
        Weights are clipped to ``[-w_max, w_max]`` after every change (NeuroSim's software mode
        clips to [-1, 1]); ``None`` disables clipping.
    step : float
        Weight change of one pulse when a pulse rule drives these weights.
    """

    mapping = "float"
    #: Float weights hold no devices (a device-weighted average of saturation ignores them).
    n_devices = 0

    def __init__(self, W, *, w_max: float | None = 1.0, step: float = 1.0 / 1024):
        xp = array_module(W)
        W = xp.array(W, dtype=xp.float64)
        if W.ndim != 2:
            raise ValueError(f"W must be a 2-D weight matrix, got shape {W.shape}")
        if not bool(xp.all(xp.isfinite(W))):
            raise ValueError("W contains NaN or infinite weights")
        if w_max is not None:
            w_max = check_real("w_max", w_max, lo=0.0, lo_open=True)
        self.w_max = w_max
        self.step = check_real("step", step, lo=0.0, lo_open=True)
        self.W = self._clip(W)

    @property
    def _xp(self):
        """Array module of the weights (numpy, or cupy on the GPU)."""
        return array_module(self.W)

    def _asarray(self, name, a):
        """``a`` as a float64 array of the weights' module; a GPU array given to CPU weights is
        refused with what to do (instead of cupy's implicit-conversion error)."""
        xp = self._xp
        if xp is np and is_cupy_array(a):
            raise TypeError(
                f"{name} is a cupy (GPU) array but these weights are a numpy array: pass numpy "
                "arrays, or build FloatWeights from a cupy array"
            )
        return xp.asarray(a, dtype=xp.float64)

    def _clip(self, W):
        return array_module(W).clip(W, -self.w_max, self.w_max) if self.w_max is not None else W

    @property
    def shape(self) -> tuple[int, int]:
        """``(out_features, in_features)``."""
        return self.W.shape

    def weights(self, noise: bool = False) -> np.ndarray:
        """The weight matrix (a copy; ``noise`` is accepted for protocol compatibility)."""
        return self.W.copy()

    def matmul(self, x) -> np.ndarray:
        """``x W^T``."""
        return self._asarray("x", x) @ self.W.T

    def rmatmul(self, d) -> np.ndarray:
        """``d W``."""
        return self._asarray("d", d) @ self.W

    def add(self, dW) -> None:
        """Software update ``W <- clip(W + dW)``.

        Raises
        ------
        ValueError
            If ``dW`` holds NaN or infinite values (the weights are left unchanged).
        """
        W = self.W + dW
        if not bool(self._xp.isfinite(W).all()):
            bad = int((~self._xp.isfinite(W)).sum())
            raise ValueError(
                f"dW holds {bad} NaN or infinite value(s); the weights are left unchanged"
            )
        self.W = self._clip(W)

    def pulse(self, n_plus, n_minus=None) -> None:
        """Ideal pulses: ``W += step * (n_plus - n_minus)`` (then clipped)."""
        n = self._asarray("n_plus", n_plus)
        if n_minus is not None:
            n = n - self._asarray("n_minus", n_minus)
        self.add(self.step * n)

    def nominal_step(self, method: str = "bidirectional", side: str = "both"):
        """``(step, step)``."""
        return self.step, self.step

    def _counts(
        self,
        dW,
        *,
        method: str = "bidirectional",
        side: str = "both",
        theta: float = 0.5,
        n_max: int | None = None,
        rounding: str = "nearest",
        rng: np.random.Generator | None = None,
    ):
        up, dn = self.nominal_step(method, side)
        dW = self._asarray("dW", dW)
        n = _signed_counts(dW, up, dn, theta=theta, rounding=rounding, n_max=n_max, rng=rng)
        return route_counts(n, method, self.mapping, side)

    def pulse_request(self, dW, *, refresh_threshold: float | None = None, **counting) -> dict:
        """Round ``dW`` to whole ideal pulses and apply them (the device array's fused path,
        written out).

        Parameters
        ----------
        dW : array_like, shape (out, in)
            Requested weight changes.
        refresh_threshold : float or None
            Accepted for the protocol and ignored (float weights never need a refresh).
        **counting
            ``method``, ``side``, ``theta``, ``n_max`` and ``rounding`` as
            :meth:`devices.DeviceArray.pulse_request`, and ``rng`` (needed for
            ``rounding="stochastic"``).

        Returns
        -------
        dict
            ``pulses`` (pulse events applied) and ``needs_refresh`` (None: never).
        """
        n_plus, n_minus = self._counts(dW, **counting)
        pulses = total_pulses(n_plus, n_minus)
        if pulses:
            self.pulse(n_plus, n_minus)
        return {"pulses": pulses, "needs_refresh": None}

    def state_counts(self, dW, *, state_cap: float | None = None, **counting):
        """A1 counts: on an ideal linear device every state gives the nominal counts
        (``state_cap`` has nothing to cap; ``counting`` as :meth:`pulse_request`).

        Returns
        -------
        (n_plus, n_minus)
            Routed counts (not applied).
        """
        return self._counts(dW, **counting)

    def pulse_update(self, x, d, lr: float, bl: int = 31, **options) -> dict:
        """Not available: the stochastic pulse-train update needs a device array.

        Raises
        ------
        ValueError
            Always.
        """
        raise ValueError(
            "rule 'stochastic' needs a device array (devices.DeviceArray), not FloatWeights"
        )

    def program(self, W, **kwargs) -> None:
        """Set the weights (keyword options of device programming are ignored)."""
        W = self._asarray("W", W)
        if W.shape != self.W.shape:
            raise ValueError(f"W must have shape {self.W.shape}, got {W.shape}")
        self.W = self._clip(W.copy())

    def needs_refresh(self, threshold: float = 0.9) -> np.ndarray:
        """Never: float weights do not saturate."""
        return self._xp.zeros(self.W.shape, dtype=bool)

    def refresh(self, mask, **kwargs) -> int:
        """No-op (returns 0)."""
        return 0

    def saturation(self) -> dict:
        """Fractions of weights at the clip bounds ``+w_max`` (high) and ``-w_max`` (low); 0
        without clipping."""
        if self.w_max is None or self.W.size == 0:
            return {"high": 0.0, "low": 0.0}
        return {
            "high": float((self.W >= self.w_max).mean()),
            "low": float((self.W <= -self.w_max).mean()),
        }


#: What a device array must offer for :class:`DeviceWeights` to complete it.
_DEVICE_NEEDS = (
    "shape",
    "mapping",
    "weights",
    "matmul",
    "rmatmul",
    "pulse",
    "pulse_request",
    "pulse_update",
    "nominal_step",
    "program",
    "needs_refresh",
    "refresh",
    "saturation",
    "read_conductances",
    "device",
    "alpha",
)


class DeviceWeights:
    """Adapter that completes a :class:`devices.DeviceArray` to the :class:`WeightArray`
    protocol.

    Every attribute is the array's own (reads, pulses, refresh, counters, ...); the adapter adds
    :meth:`state_counts` (A1 of the adaptive rule, from the array's public
    ``read_conductances``, ``device`` and ``alpha``), lets :meth:`pulse_request` take the
    protocol's ``rng`` (device arrays draw counter-based numbers of their own) and refuses
    :meth:`add` with a clear message.

    Parameters
    ----------
    array : devices.DeviceArray
    """

    def __init__(self, array):
        self.array = array

    def __getattr__(self, name):
        # only called for names the adapter does not define: the array's own attributes
        return getattr(self.__dict__["array"], name)

    @property
    def shape(self) -> tuple[int, int]:
        """``(out_features, in_features)``."""
        return self.array.shape

    @property
    def mapping(self) -> str:
        """The array's mapping (``"reference"`` or ``"differential"``)."""
        return self.array.mapping

    def add(self, dW) -> None:
        """Not available: device weights change by pulses only.

        Raises
        ------
        ValueError
            Always.
        """
        raise ValueError("rule 'software' trains float weights (FloatWeights), not a device array")

    def pulse_request(self, dW, *, rng: np.random.Generator | None = None, **options) -> dict:
        """:meth:`devices.DeviceArray.pulse_request` (``rng`` unused: the array draws its own
        counter-based numbers)."""
        return self.array.pulse_request(dW, **options)

    def state_counts(
        self,
        dW,
        *,
        method: str = "bidirectional",
        side: str = "both",
        theta: float = 0.5,
        n_max: int | None = None,
        rounding: str = "nearest",
        state_cap: float | None = None,
        rng: np.random.Generator | None = None,
    ):
        """A1: per-device counts from the present conductance on the nominal curve.

        Each device's count is the distance, in pulses of the device model's nominal inverse
        curve, between its present (noisy) conductance and the conductance that gives the
        requested change; ``state_cap`` limits it to that multiple of the nominal count (at
        least 1). Then rounded like :func:`pulse_counts`.

        Returns
        -------
        (n_plus, n_minus)
            Routed counts (not applied).
        """
        arr = self.array
        dev = arr.device
        up, dn = arr.nominal_step(method, side)
        how = route(method, arr.mapping, side)
        G = arr.read_conductances(noise=True)
        xp = array_module(G)
        dW = to_device(dW, xp) if xp is not np else dW
        alpha = arr.alpha
        pos = dW >= 0
        mag = xp.abs(dW)

        def coord(Gd, branch):
            # the device model's nominal inverse curve is numpy code: evaluated on the host
            if xp is np:
                return dev.pulses(Gd, branch)
            return to_device(dev.pulses(asnumpy(Gd), branch), xp)

        def one(Gd, dG, potentiate, nominal):
            tgt = xp.clip(Gd + xp.where(potentiate, dG, -dG), dev.gmin, dev.gmax)
            xa = xp.where(potentiate, coord(Gd, "ltp"), coord(Gd, "ltd"))
            xb = xp.where(potentiate, coord(tgt, "ltp"), coord(tgt, "ltd"))
            r = xp.abs(xb - xa)
            if state_cap is not None:
                r = xp.minimum(r, xp.maximum(state_cap * nominal, 1.0))
            return pulse_counts(r, theta=theta, rounding=rounding, n_max=n_max, rng=rng)

        nominal = xp.where(pos, mag / up, mag / dn)
        if how == "unidirectional":
            # G+ rises for dW > 0, G- rises for dW < 0; both on the LTP branch
            target_dev = xp.where(pos, G[0], G[1])
            n = one(target_dev, mag / alpha, xp.ones_like(pos), nominal)
            return xp.where(pos, n, 0), xp.where(pos, 0, n)
        if how == "single":
            n = one(G[0], mag / alpha, pos, nominal)
            return xp.where(pos, n, -n), None
        half = mag / (2 * alpha)
        n_p = one(G[0], half, pos, nominal)
        n_m = one(G[1], half, ~pos, nominal)
        return xp.where(pos, n_p, -n_p), xp.where(pos, -n_m, n_m)

    def __repr__(self) -> str:
        return f"DeviceWeights({self.array!r})"
