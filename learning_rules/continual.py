"""Optimizers for continual learning: CLASSP and its baselines (``specs/classp.md``).

Numpy functional cores with explicit state. Every optimizer has the same interface:

``init_state(shape) -> dict``
    Fresh state for one weight array (a dict of numpy arrays; SGD has none).
``update(g, state, w=None) -> (dw, state)``
    The change to add to the weights for gradient ``g`` (of the loss to *minimize*), and the
    new state (a new dict; the input state is not modified). ``w`` is needed only by EWC.
``step(w, g, state) -> (w_new, state)``
    ``w + dw``.
``memory_bytes(state) -> int``
    Bytes of optimizer state (SGD 0; AdaGrad and CLASSP one float per weight; Adam two;
    EWC two per weight per consolidated task, plus its base optimizer; SI five per weight,
    plus its base optimizer).

CLASSP (Ludwig 2024) per element: only where ``g^2 > threshold`` the accumulator grows by
``|g|^p`` and the weight moves by ``-lr * g / (eps + A)^(1/p)`` (``accumulate="before"``: the
current gradient enters ``A`` first; ``"after"``: the paper's equation, sum up to ``t-1``).
``scaling=False`` applies plain ``-lr * g`` on the mask while ``A`` keeps growing.
:class:`DeviceCLASSP` turns the rule into pulse counts on a weight array.

This module never imports ``synapse_sim`` or torch.
"""

from __future__ import annotations

import abc
import dataclasses
import math
import warnings
from dataclasses import dataclass

import numpy as np

from .pulse_bp import pulse_counts, route_counts
from .weights import FloatWeights

__all__ = [
    "OPTIMIZERS",
    "FISHER_ESTIMATORS",
    "classp_step",
    "SGD",
    "Adam",
    "AdaGrad",
    "CLASSP",
    "EWC",
    "SI",
    "DeviceCLASSP",
    "make_optimizer",
    "fisher_diagonal",
    "memory_bytes",
]

OPTIMIZERS = ("sgd", "adam", "adagrad", "classp", "ewc", "si")
FISHER_ESTIMATORS = ("reference", "batch", "sample")


def _choice(name, value, choices):
    if value not in choices:
        import difflib

        close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=2)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(
            f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}{hint}"
        )
    return value


def _real(name, value, *, lo=None, lo_open=False, hi=None, hi_open=False):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    bad = not math.isfinite(v)
    if lo is not None:
        bad |= v <= lo if lo_open else v < lo
    if hi is not None:
        bad |= v >= hi if hi_open else v > hi
    if bad:
        lo_s = "" if lo is None else (f"> {lo}" if lo_open else f">= {lo}")
        hi_s = "" if hi is None else (f"< {hi}" if hi_open else f"<= {hi}")
        rng = " and ".join(s for s in (lo_s, hi_s) if s) or "finite"
        raise ValueError(f"{name} must be {rng}, got {value!r}")
    return v


def memory_bytes(state) -> int:
    """Bytes held by the numpy arrays of an optimizer state (dict, or list of dicts)."""
    if state is None:
        return 0
    if isinstance(state, (list, tuple)):
        return sum(memory_bytes(s) for s in state)
    return int(sum(v.nbytes for v in state.values() if isinstance(v, np.ndarray)))


# ---------------------------------------------------------------------------- CLASSP core
def classp_step(
    w,
    g,
    acc,
    *,
    lr: float,
    threshold: float = 0.0,
    eps: float = 1e-5,
    p: float = 1.0,
    accumulate: str = "before",
    scaling: bool = True,
    legacy_reference: bool = False,
):
    """One CLASSP step (pure function).

    Parameters
    ----------
    w : ndarray or None
        Weights (only used to return ``w + dw``; ``None`` returns ``None`` for it).
    g : ndarray
        Gradient of the loss.
    acc : ndarray
        Accumulator ``A`` (sum of ``|g|^p`` over past updates of each element).
    lr : float
        Step ``alpha`` (> 0).
    threshold : float
        ``theta >= 0``: an element is updated only where ``g^2 > theta``.
    eps : float
        ``eps >= 0`` inside the root.
    p : float
        Exponent ``p > 0``.
    accumulate : {"before", "after"}
        Whether the current ``|g|^p`` enters the denominator of this step.
    scaling : bool
        ``False``: step ``-lr * g`` on the mask, the accumulator still grows.
    legacy_reference : bool
        Reproduce the released code: the tensor is updated as a whole when
        ``float(any(g^2 != 0)) > threshold``, and ``A += |g|`` whatever ``p``.

    Returns
    -------
    (w_new, dw, acc_new, mask)
        New weights (or None), the change, the new accumulator and the boolean update mask.
    """
    lr = _real("lr", lr, lo=0.0, lo_open=True)
    threshold = _real("threshold", threshold, lo=0.0)
    eps = _real("eps", eps, lo=0.0)
    p = _real("p", p, lo=0.0, lo_open=True)
    _choice("accumulate", accumulate, ("before", "after"))
    g = np.asarray(g, dtype=np.float64)
    acc = np.asarray(acc, dtype=np.float64)
    if acc.shape != g.shape:
        raise ValueError(f"acc must have the gradient's shape {g.shape}, got {acc.shape}")
    if legacy_reference:
        on = float(bool(np.any(g * g))) > threshold
        mask = np.full(g.shape, on)
        inc = np.abs(g)
    else:
        mask = g * g > threshold
        inc = np.abs(g) ** p
    acc_new = acc.copy()
    dw = np.zeros_like(g)
    if mask.any():
        gm = g[mask]
        prev = acc[mask]
        now = prev + inc[mask]
        acc_new[mask] = now
        if scaling:
            denom = (eps + (now if accumulate == "before" else prev)) ** (1.0 / p)
            with np.errstate(divide="ignore", invalid="ignore"):
                step = np.where(denom > 0, -lr * gm / np.where(denom > 0, denom, 1.0), 0.0)
            dw[mask] = step
        else:
            dw[mask] = -lr * gm
    w_new = None if w is None else np.asarray(w, dtype=np.float64) + dw
    return w_new, dw, acc_new, mask


# ---------------------------------------------------------------------------- optimizers
class _Base(abc.ABC):
    name = "base"

    def init_state(self, shape) -> dict:
        """Fresh state for a weight array of ``shape``."""
        return {}

    @abc.abstractmethod
    def update(self, g, state, w=None):
        """``(dw, new_state)`` for gradient ``g`` (every optimizer defines it)."""

    def step(self, w, g, state):
        """``(w + dw, new_state)`` for gradient ``g``."""
        dw, state = self.update(g, state, w=w)
        return np.asarray(w, dtype=np.float64) + dw, state

    def memory_bytes(self, state) -> int:
        """Bytes of optimizer state (see :func:`memory_bytes`)."""
        return memory_bytes(state)

    def replace(self, **changes):
        """Copy with fields changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """Name and fields (JSON-able)."""
        return {"name": self.name, **dataclasses.asdict(self)}


@dataclass(frozen=True, kw_only=True)
class SGD(_Base):
    """Plain SGD without momentum: ``dw = -lr * g``.

    Parameters
    ----------
    lr : float
        Learning rate (> 0).
    """

    lr: float = 0.1
    name = "sgd"

    def __post_init__(self):
        _real("lr", self.lr, lo=0.0, lo_open=True)

    def update(self, g, state, w=None):
        """``(-lr * g, state)``."""
        return -self.lr * np.asarray(g, dtype=np.float64), dict(state)


@dataclass(frozen=True, kw_only=True)
class Adam(_Base):
    """Adam with bias correction (torch defaults; no weight decay).

    Parameters
    ----------
    lr : float
    beta1, beta2 : float
        In [0, 1).
    eps : float
        Added outside the root (>= 0).
    """

    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    name = "adam"

    def __post_init__(self):
        _real("lr", self.lr, lo=0.0, lo_open=True)
        _real("beta1", self.beta1, lo=0.0, hi=1.0, hi_open=True)
        _real("beta2", self.beta2, lo=0.0, hi=1.0, hi_open=True)
        _real("eps", self.eps, lo=0.0)

    def init_state(self, shape) -> dict:
        """``m``, ``v`` (zeros) and the step count ``t``."""
        return {"m": np.zeros(shape), "v": np.zeros(shape), "t": np.zeros((), dtype=np.int64)}

    def update(self, g, state, w=None):
        """Adam step."""
        g = np.asarray(g, dtype=np.float64)
        t = int(state["t"]) + 1
        m = self.beta1 * state["m"] + (1 - self.beta1) * g
        v = self.beta2 * state["v"] + (1 - self.beta2) * g * g
        mhat = m / (1 - self.beta1**t)
        vhat = v / (1 - self.beta2**t)
        dw = -self.lr * mhat / (np.sqrt(vhat) + self.eps)
        return dw, {"m": m, "v": v, "t": np.asarray(t, dtype=np.int64)}


@dataclass(frozen=True, kw_only=True)
class AdaGrad(_Base):
    """AdaGrad with torch semantics: ``A += g^2``; ``dw = -clr g / (sqrt(A) + eps)``,
    ``clr = lr / (1 + (t - 1) lr_decay)``.

    Parameters
    ----------
    lr : float
    eps : float
        Outside the root (>= 0; torch default 1e-10).
    lr_decay : float
    initial_accumulator_value : float
    """

    lr: float = 0.01
    eps: float = 1e-10
    lr_decay: float = 0.0
    initial_accumulator_value: float = 0.0
    name = "adagrad"

    def __post_init__(self):
        _real("lr", self.lr, lo=0.0, lo_open=True)
        _real("eps", self.eps, lo=0.0)
        _real("lr_decay", self.lr_decay, lo=0.0)
        _real("initial_accumulator_value", self.initial_accumulator_value, lo=0.0)

    def init_state(self, shape) -> dict:
        """Accumulator ``acc`` and step count ``t``."""
        return {
            "acc": np.full(shape, float(self.initial_accumulator_value)),
            "t": np.zeros((), dtype=np.int64),
        }

    def update(self, g, state, w=None):
        """AdaGrad step."""
        g = np.asarray(g, dtype=np.float64)
        t = int(state["t"]) + 1
        clr = self.lr / (1 + (t - 1) * self.lr_decay)
        acc = state["acc"] + g * g
        denom = np.sqrt(acc) + self.eps
        with np.errstate(divide="ignore", invalid="ignore"):
            dw = np.where(denom > 0, -clr * g / np.where(denom > 0, denom, 1.0), 0.0)
        return dw, {"acc": acc, "t": np.asarray(t, dtype=np.int64)}


@dataclass(frozen=True, kw_only=True)
class CLASSP(_Base):
    """CLASSP: adjustment suppression and sparsity promotion (per element, as the paper).

    Parameters
    ----------
    lr : float
        ``alpha`` (> 0), a step in weight units for ``p = 1``.
    threshold : float
        ``theta >= 0``; elements with ``g^2 <= theta`` are neither updated nor accumulated.
    eps : float
        ``>= 0``, inside the root.
    p : float
        Exponent (> 0).
    accumulate : {"before", "after"}
        ``before``: add the current ``|g|^p`` to ``A`` first (README / released code);
        ``after``: the paper's equation (sum to ``t-1``).
    scaling : bool
        ``False``: SGD steps on the mask while the accumulator still grows (the paper's first
        task).
    legacy_reference : bool
        The released code's tensor-level threshold and ``|g|`` accumulator.
    """

    lr: float = 0.1
    threshold: float = 0.0
    eps: float = 1e-5
    p: float = 1.0
    accumulate: str = "before"
    scaling: bool = True
    legacy_reference: bool = False
    name = "classp"

    def __post_init__(self):
        _real("lr", self.lr, lo=0.0, lo_open=True)
        _real("threshold", self.threshold, lo=0.0)
        _real("eps", self.eps, lo=0.0)
        _real("p", self.p, lo=0.0, lo_open=True)
        _choice("accumulate", self.accumulate, ("before", "after"))

    def init_state(self, shape) -> dict:
        """Accumulator ``acc`` (zeros)."""
        return {"acc": np.zeros(shape)}

    def update(self, g, state, w=None):
        """CLASSP change (zero where ``g^2 <= threshold``)."""
        dw, state, _ = self.update_masked(g, state)
        return dw, state

    def update_masked(self, g, state):
        """``(dw, new_state, mask)``: :meth:`update` plus the boolean update mask."""
        _, dw, acc, mask = classp_step(
            None,
            g,
            state["acc"],
            lr=self.lr,
            threshold=self.threshold,
            eps=self.eps,
            p=self.p,
            accumulate=self.accumulate,
            scaling=self.scaling,
            legacy_reference=self.legacy_reference,
        )
        return dw, {"acc": acc}, mask


@dataclass(frozen=True, kw_only=True)
class EWC(_Base):
    """Elastic weight consolidation around a base optimizer.

    Penalty ``c * lambda * sum_k sum_i F_k,i (w_i - w*_k,i)^2`` with ``c = 1`` (the reference
    scripts, the default) or ``c = 1/2`` (``half=True``, the EWC paper). Its gradient is added
    to the loss gradient before the base optimizer's step. After each task call
    :meth:`consolidate` with the task's final weights and diagonal Fisher.

    Parameters
    ----------
    base : optimizer
        :class:`SGD` (default ``SGD(lr=0.1)``), :class:`Adam`, :class:`AdaGrad`.
    lam : float
        ``lambda >= 0`` (default 5000).
    half : bool
        Use ``lambda / 2`` (EWC paper) instead of ``lambda`` (reference scripts).
    penalty : {"explicit", "implicit"}
        ``implicit``: exact proximal step (base SGD only).
    """

    base: _Base = dataclasses.field(default_factory=lambda: SGD(lr=0.1))
    lam: float = 5000.0
    half: bool = False
    penalty: str = "explicit"
    name = "ewc"

    def __post_init__(self):
        if not isinstance(self.base, (SGD, Adam, AdaGrad)):
            raise ValueError(
                f"base must be an SGD, Adam or AdaGrad optimizer, got {type(self.base).__name__}"
            )
        _real("lam", self.lam, lo=0.0)
        _choice("penalty", self.penalty, ("explicit", "implicit"))
        if self.penalty == "implicit" and not isinstance(self.base, SGD):
            raise ValueError("penalty='implicit' needs base=SGD(...)")

    @property
    def coef(self) -> float:
        """Multiplier of ``F (w - w*)`` in the penalty gradient (``2 lambda c``)."""
        return self.lam if self.half else 2.0 * self.lam

    def init_state(self, shape) -> dict:
        """Base state plus empty stacks ``fisher`` and ``anchor`` of shape ``(0, *shape)``."""
        st = dict(self.base.init_state(shape))
        st["fisher"] = np.zeros((0, *tuple(np.atleast_1d(shape))))
        st["anchor"] = np.zeros((0, *tuple(np.atleast_1d(shape))))
        return st

    @staticmethod
    def _split(state):
        base = {k: v for k, v in state.items() if k not in ("fisher", "anchor")}
        return base, state["fisher"], state["anchor"]

    def penalty_value(self, w, state) -> float:
        """The penalty at weights ``w``."""
        _, F, A = self._split(state)
        w = np.asarray(w, dtype=np.float64)
        c = 0.5 if self.half else 1.0
        return float(c * self.lam * np.sum(F * (w[None] - A) ** 2))

    def penalty_grad(self, w, state):
        """Gradient of the penalty at ``w``."""
        _, F, A = self._split(state)
        w = np.asarray(w, dtype=np.float64)
        if F.shape[0] == 0:
            return np.zeros_like(w)
        return self.coef * np.sum(F * (w[None] - A), axis=0)

    def update(self, g, state, w=None):
        """Base step on ``g + penalty gradient`` (or the implicit proximal step)."""
        if w is None:
            raise ValueError("EWC.update needs the current weights w")
        base_state, F, A = self._split(state)
        g = np.asarray(g, dtype=np.float64)
        w = np.asarray(w, dtype=np.float64)
        if self.penalty == "implicit" and F.shape[0]:
            lr = self.base.lr
            Fs = F.sum(axis=0)
            FA = (F * A).sum(axis=0)
            w_new = (w - lr * g + lr * self.coef * FA) / (1 + lr * self.coef * Fs)
            dw, nb = w_new - w, dict(base_state)
        else:
            dw, nb = self.base.update(g + self.penalty_grad(w, state), base_state, w=w)
        nb["fisher"], nb["anchor"] = F, A
        return dw, nb

    def consolidate(self, state, w, fisher, *, warn: bool = True) -> dict:
        """New state with anchor ``w`` and Fisher ``fisher`` of a finished task appended.

        Warns (``RuntimeWarning``) when an explicit SGD step on the penalty is unstable:
        ``lr * coef * max_i sum_k F_k,i >= 2``.
        """
        w = np.asarray(w, dtype=np.float64)
        fisher = np.asarray(fisher, dtype=np.float64)
        if fisher.shape != w.shape:
            raise ValueError(f"fisher must have the weights' shape {w.shape}, got {fisher.shape}")
        st = dict(state)
        st["fisher"] = np.concatenate([state["fisher"], fisher[None]])
        st["anchor"] = np.concatenate([state["anchor"], w[None]])
        if warn and self.penalty == "explicit" and hasattr(self.base, "lr"):
            bound = self.base.lr * self.coef * float(st["fisher"].sum(axis=0).max(initial=0.0))
            if bound >= 2:
                warnings.warn(
                    f"EWC penalty step is unstable: lr * 2 * lambda * max F = {bound:.3g} >= 2 "
                    "(lower lam or lr, or use penalty='implicit')",
                    RuntimeWarning,
                    stacklevel=2,
                )
        return st


@dataclass(frozen=True, kw_only=True)
class SI(_Base):
    """Synaptic Intelligence (Zenke, Poole and Ganguli 2017) around a base optimizer.

    While a task is trained, every weight accumulates the path integral
    ``omega_i += -g_i * delta_i`` of the task-loss gradient ``g`` (without the penalty) along
    the weight's *realized* change ``delta`` (so pulse rounding and clipping are accounted
    for: the change of one step is taken as the difference of the weights passed to the next
    :meth:`update`, or to :meth:`consolidate`). At the end of a task :meth:`consolidate` adds
    ``omega / (Delta^2 + xi)`` to the importance ``Omega`` (``Delta`` = weight change over the
    task), resets ``omega`` and moves the anchor ``w~`` to the task's final weights. Later
    tasks minimize ``L + c * sum_i Omega_i (w_i - w~_i)^2`` (no factor 1/2, as the paper's
    surrogate loss); the penalty gradient ``2 c Omega (w - w~)`` is added to ``g`` before the
    base step.

    Parameters
    ----------
    base : optimizer
        :class:`SGD` (default ``SGD(lr=0.1)``), :class:`Adam` or :class:`AdaGrad`.
    c : float
        Penalty strength ``c >= 0`` (default 0.1).
    xi : float
        Damping ``xi > 0`` of the normalization (default 1e-3).
    penalty : {"auto", "explicit", "implicit"}
        ``explicit``: the penalty gradient joins ``g`` in the base step; ``implicit`` (base SGD
        only): the exact proximal step ``w <- (w - lr g + lr 2c Omega+ w~) / (1 + lr 2c
        Omega+)`` with ``Omega+ = max(Omega, 0)``, stable for any ``c``; ``auto`` (default):
        implicit on SGD, explicit otherwise.

    Notes
    -----
    State (per weight): ``omega`` (running path integral), ``importance`` (``Omega``),
    ``anchor`` (``w~``, the weights at the start of the current task), ``w_last`` and
    ``g_last`` (the previous step's weights and gradient), plus the base state: five floats
    per weight. Negative ``omega`` (a step that raised the loss) is kept as the paper writes
    it. An explicit step on the penalty is unstable when ``lr * 2 c max Omega >= 2``;
    :meth:`consolidate` warns then (on split digits ``Omega`` reaches about 100, so ``lr = 0.1``
    with ``c = 0.1`` diverges with the explicit step; hence the implicit default on SGD).
    """

    base: _Base = dataclasses.field(default_factory=lambda: SGD(lr=0.1))
    c: float = 0.1
    xi: float = 1e-3
    penalty: str = "auto"
    name = "si"

    _OWN = ("omega", "importance", "anchor", "w_last", "g_last", "started")

    def __post_init__(self):
        if not isinstance(self.base, (SGD, Adam, AdaGrad)):
            raise ValueError(
                f"base must be an SGD, Adam or AdaGrad optimizer, got {type(self.base).__name__}"
            )
        _real("c", self.c, lo=0.0)
        _real("xi", self.xi, lo=0.0, lo_open=True)
        _choice("penalty", self.penalty, ("auto", "explicit", "implicit"))
        if self.penalty == "implicit" and not isinstance(self.base, SGD):
            raise ValueError("penalty='implicit' needs base=SGD(...)")

    @property
    def implicit(self) -> bool:
        """Whether the penalty is applied as the proximal (implicit) step."""
        return self.penalty == "implicit" or (self.penalty == "auto" and isinstance(self.base, SGD))

    def init_state(self, shape) -> dict:
        """Base state plus zero ``omega``, ``importance``, ``anchor``, ``w_last``, ``g_last``.

        ``anchor`` (the start of the first task) is set from the weights at the first
        :meth:`update` (``started`` is 0 until then); :meth:`consolidate` sets it afterwards.
        """
        st = dict(self.base.init_state(shape))
        for k in ("omega", "importance", "anchor", "w_last", "g_last"):
            st[k] = np.zeros(shape)
        st["started"] = np.zeros((), dtype=np.int8)
        return st

    def _base_state(self, state):
        return {k: v for k, v in state.items() if k not in self._OWN}

    def penalty_value(self, w, state) -> float:
        """``c * sum Omega (w - w~)^2``."""
        w = np.asarray(w, dtype=np.float64)
        return float(self.c * np.sum(state["importance"] * (w - state["anchor"]) ** 2))

    def penalty_grad(self, w, state):
        """``2 c Omega (w - w~)``."""
        w = np.asarray(w, dtype=np.float64)
        return 2.0 * self.c * state["importance"] * (w - state["anchor"])

    def _integrate(self, state, w):
        """``omega`` after adding the previous step's ``-g_last * (w - w_last)``."""
        if not int(state["started"]):
            return state["omega"]
        return state["omega"] - state["g_last"] * (w - state["w_last"])

    def update(self, g, state, w=None):
        """Base step on ``g + penalty gradient``; records ``g`` and ``w`` for the path integral."""
        if w is None:
            raise ValueError("SI.update needs the current weights w")
        g = np.asarray(g, dtype=np.float64)
        w = np.asarray(w, dtype=np.float64)
        if g.shape != w.shape:
            raise ValueError(f"g must have the weights' shape {w.shape}, got {g.shape}")
        omega = self._integrate(state, w)
        anchor = state["anchor"] if int(state["started"]) else w.copy()
        if self.implicit:
            k = self.base.lr * 2.0 * self.c * np.maximum(state["importance"], 0.0)
            w_new = (w - self.base.lr * g + k * state["anchor"]) / (1.0 + k)
            dw, nb = w_new - w, self._base_state(state)
        else:
            dw, nb = self.base.update(g + self.penalty_grad(w, state), self._base_state(state), w=w)
        nb.update(
            omega=omega,
            importance=state["importance"],
            anchor=anchor,
            w_last=w.copy(),
            g_last=g.copy(),
            started=np.ones((), dtype=np.int8),
        )
        return dw, nb

    def consolidate(self, state, w, *, warn: bool = True) -> dict:
        """End of a task at final weights ``w``: ``Omega += omega / ((w - w~)^2 + xi)``.

        Then ``omega = 0`` and the anchor becomes ``w``. Warns (``RuntimeWarning``) when an
        explicit SGD step on the penalty is unstable (``lr * 2 c max Omega >= 2``).
        """
        w = np.asarray(w, dtype=np.float64)
        if w.shape != state["omega"].shape:
            raise ValueError(f"w must have shape {state['omega'].shape}, got {w.shape}")
        st = dict(state)
        if int(state["started"]):
            omega = self._integrate(state, w)
            delta = w - state["anchor"]
            st["importance"] = state["importance"] + omega / (delta * delta + self.xi)
        st["omega"] = np.zeros_like(w)
        st["anchor"] = w.copy()
        st["w_last"] = w.copy()
        st["g_last"] = np.zeros_like(w)
        st["started"] = np.ones((), dtype=np.int8)
        if warn and not self.implicit and hasattr(self.base, "lr"):
            bound = self.base.lr * 2.0 * self.c * float(st["importance"].max(initial=0.0))
            if bound >= 2:
                warnings.warn(
                    f"SI penalty step is unstable: lr * 2 * c * max Omega = {bound:.3g} >= 2 "
                    "(lower c or lr)",
                    RuntimeWarning,
                    stacklevel=2,
                )
        return st


def fisher_diagonal(grads, n_samples: int, estimator: str = "reference"):
    """Diagonal Fisher from squared gradients.

    Parameters
    ----------
    grads : iterable of ndarray
        ``reference`` / ``batch``: the mean-loss gradient of each mini-batch; ``sample``: the
        gradient of each single sample.
    n_samples : int
        Number of training samples of the task.
    estimator : {"reference", "batch", "sample"}
        ``reference``: sum of squared mini-batch gradients / ``n_samples``; ``batch``: the same
        sum / number of batches; ``sample``: mean of squared per-sample gradients.

    Returns
    -------
    ndarray
    """
    _choice("estimator", estimator, FISHER_ESTIMATORS)
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise ValueError(f"n_samples must be an integer >= 1, got {n_samples!r}")
    total = None
    count = 0
    for gr in grads:
        gr = np.asarray(gr, dtype=np.float64)
        total = gr * gr if total is None else total + gr * gr
        count += 1
    if total is None:
        raise ValueError("grads must hold at least one gradient")
    if estimator == "reference":
        return total / n_samples
    return total / count


def make_optimizer(name: str, **kwargs):
    """Optimizer by name: ``sgd``, ``adam``, ``adagrad``, ``classp``, ``ewc`` or ``si``.

    ``ewc`` takes ``lr`` (of its SGD base), ``lam``, ``half`` and ``penalty``; ``si`` takes
    ``lr`` (of its SGD base), ``c`` and ``xi``.
    """
    _choice("optimizer", name, OPTIMIZERS)
    if name == "ewc":
        lr = kwargs.pop("lr", 0.1)
        return EWC(base=SGD(lr=lr), **kwargs)
    if name == "si":
        lr = kwargs.pop("lr", 0.1)
        return SI(base=SGD(lr=lr), **kwargs)
    cls = {"sgd": SGD, "adam": Adam, "adagrad": AdaGrad, "classp": CLASSP}[name]
    return cls(**kwargs)


# ---------------------------------------------------------------------------- on devices
@dataclass(frozen=True, kw_only=True)
class DeviceCLASSP:
    """CLASSP as pulse counts on a weight array (``specs/classp.md`` section 7).

    Only elements with ``g^2 > threshold`` can receive pulses; the requested change is rounded
    to whole pulses of the array's nominal step with the dead zone ``dz_theta``.

    Parameters
    ----------
    rule : CLASSP
        The rule (``lr``, ``threshold``, ``eps``, ``p``, ``accumulate``, ``scaling``).
    accumulator : {"gradient", "pulses"}
        ``gradient``: ``A += |g|^p`` on the mask (the paper); ``pulses``: ``A`` counts the
        pulse events applied to each synapse (signed count magnitude ``|n|``; ``eps`` is then
        in pulses, 1 is a good value). ``pulses`` needs ``rounding="nearest"``.
    method : {"bidirectional", "unidirectional"}
    side : {"both", "plus"}
    dz_theta : float
        Dead zone of the pulse rounding, in (0, 1].
    n_max : int or None
        Cap of pulses per synapse and update.
    rounding : {"nearest", "stochastic"}
    """

    rule: CLASSP = dataclasses.field(default_factory=CLASSP)
    accumulator: str = "gradient"
    method: str = "bidirectional"
    side: str = "both"
    dz_theta: float = 0.5
    n_max: int | None = None
    rounding: str = "nearest"

    def __post_init__(self):
        if not isinstance(self.rule, CLASSP):
            raise ValueError(f"rule must be a CLASSP instance, got {type(self.rule).__name__}")
        if self.rule.legacy_reference:
            raise ValueError("DeviceCLASSP needs rule.legacy_reference=False")
        _choice("accumulator", self.accumulator, ("gradient", "pulses"))
        _choice("method", self.method, ("bidirectional", "unidirectional"))
        _choice("side", self.side, ("both", "plus"))
        _choice("rounding", self.rounding, ("nearest", "stochastic"))
        _real("dz_theta", self.dz_theta, lo=0.0, lo_open=True, hi=1.0)
        if self.n_max is not None and (
            isinstance(self.n_max, bool)
            or not isinstance(self.n_max, (int, np.integer))
            or self.n_max < 1
        ):
            raise ValueError(f"n_max must be a positive integer or None, got {self.n_max!r}")
        if self.accumulator == "pulses" and self.rounding != "nearest":
            raise ValueError("accumulator='pulses' needs rounding='nearest'")

    def replace(self, **changes):
        """Copy with fields changed."""
        return dataclasses.replace(self, **changes)

    def init_state(self, shape) -> dict:
        """Accumulator ``acc`` (zeros)."""
        return {"acc": np.zeros(shape)}

    def memory_bytes(self, state) -> int:
        """Bytes of state (one float per weight)."""
        return memory_bytes(state)

    def request(self, g, state):
        """``(dw, new_state, mask)`` before rounding (state updated for ``gradient`` only)."""
        r = self.rule
        g = np.asarray(g, dtype=np.float64)
        if self.accumulator == "gradient":
            return r.update_masked(g, state)
        mask = g * g > r.threshold
        dw = np.zeros_like(g)
        if mask.any():
            if r.scaling:
                prev = state["acc"][mask]
                denom = (r.eps + prev) ** (1.0 / r.p)
                with np.errstate(divide="ignore", invalid="ignore"):
                    dw[mask] = np.where(
                        denom > 0, -r.lr * g[mask] / np.where(denom > 0, denom, 1.0), 0.0
                    )
            else:
                dw[mask] = -r.lr * g[mask]
        return dw, dict(state), mask

    def counts(self, w, dw):
        """Signed pulse counts per synapse for request ``dw`` (nearest rounding)."""
        up, dn = w.nominal_step(self.method, self.side)
        rr = np.where(dw >= 0, dw / up, -dw / dn)
        n = pulse_counts(rr, theta=self.dz_theta, rounding="nearest", n_max=self.n_max)
        return np.where(dw >= 0, n, -n)

    def update(self, w, g, state, *, rng: np.random.Generator | None = None):
        """Apply one CLASSP update to weight array ``w`` as pulses.

        Parameters
        ----------
        w : WeightArray
            :class:`FloatWeights` (an ideal linear device of step ``w.step``) or
            :class:`devices.DeviceArray`.
        g : ndarray
            Gradient of the loss, shape ``w.shape``.
        state : dict
            From :meth:`init_state`.
        rng : numpy.random.Generator, optional
            For stochastic rounding on float weights.

        Returns
        -------
        (state, stats)
            New state; ``stats`` has ``pulses`` (pulse events sent), ``refreshes``, ``mask``
            (elements the threshold let through), ``counts`` (signed per-synapse counts, or
            None with stochastic rounding on a device array) and ``suppressed`` (fraction of
            elements masked out).
        """
        g = np.asarray(g, dtype=np.float64)
        if g.shape != tuple(w.shape):
            raise ValueError(f"g must have shape {tuple(w.shape)}, got {g.shape}")
        dw, state, mask = self.request(g, state)
        n = None
        if hasattr(w, "pulse_request"):
            if self.rounding == "nearest":
                n = self.counts(w, dw)
            res = w.pulse_request(
                dw,
                method=self.method,
                side=self.side,
                theta=self.dz_theta,
                n_max=self.n_max,
                rounding=self.rounding,
            )
            pulses = int(res["pulses"])
        else:
            mapping = getattr(w, "mapping", "float")
            if self.rounding == "nearest":
                n = self.counts(w, dw)
            else:
                if rng is None:
                    raise ValueError("rng is required for rounding='stochastic' on float weights")
                up, dn = w.nominal_step(self.method, self.side)
                rr = np.where(dw >= 0, dw / up, -dw / dn)
                k = pulse_counts(rr, rounding="stochastic", n_max=self.n_max, rng=rng)
                n = np.where(dw >= 0, k, -k)
            n_plus, n_minus = route_counts(n, self.method, mapping, self.side)
            pulses = int(np.abs(n).sum())
            if pulses:
                w.pulse(n_plus, n_minus)
        if self.accumulator == "pulses":
            state = {"acc": state["acc"] + np.abs(n)}
        refreshes = 0
        if self.method == "unidirectional" and not isinstance(w, FloatWeights):
            need = w.needs_refresh(0.9)
            refreshes = int(w.refresh(need)) if need.any() else 0
        stats = {
            "pulses": pulses,
            "refreshes": refreshes,
            "mask": mask,
            "counts": n,
            "suppressed": float(1.0 - mask.mean()) if mask.size else 0.0,
        }
        return state, stats
