"""Optimizers over numpy weights: SGD, Adam, AdaGrad, CLASSP, EWC and SI (``specs/classp.md``).

One definition each; numpy functional cores with explicit state and one interface:
``init_state(shape) -> dict``; ``update(g, state, w=None) -> (dw, state)`` (the change for
gradient ``g`` of the loss to *minimize*; the input state is not modified; ``w`` only where
``needs_weights``, EWC and SI); ``step(w, g, state) -> (w + dw, state)``;
``memory_bytes(state)`` (SGD 0; AdaGrad and CLASSP one float per weight; Adam two; EWC two per
weight per consolidated task; SI five per weight; plus the base optimizer's). The hooks a study
uses to drive any of them without testing their type:

``update_masked(g, state, w=None) -> (dw, state, mask)``
    :meth:`update` plus the mask of the elements the rule let through (``None``: all; only
    CLASSP masks).
``needs_weights``, ``needs_fisher``, ``end_task(state, w, fisher=None) -> state``
    What :meth:`update` and :meth:`end_task` need; at the end of a task EWC and SI consolidate,
    the others keep their state.
``pulsed(**options)``
    The rule as pulses on a weight array (:class:`~learning_rules.continual.DeviceCLASSP` for
    CLASSP), or ``None``.

CLASSP (Ludwig 2024) per element: only where ``g^2 > threshold`` the accumulator grows by
``|g|^p`` and the weight moves by ``-lr * g / (eps + A)^(1/p)`` (``accumulate="before"``: the
current gradient enters ``A`` first; ``"after"``: the paper's equation, sum up to ``t-1``);
``scaling=False`` applies ``-lr * g`` on the mask while ``A`` grows. :func:`classp_update` is
the one definition of the update, written over an array namespace so that the torch optimizer
(:class:`synapse_sim.nn.CLASSP`) runs the same code on tensors. Never imports torch.
"""

from __future__ import annotations

import abc
import dataclasses
import warnings
from dataclasses import dataclass

import numpy as np

from devices.validation import check_bool, check_choice, check_real

__all__ = [
    "OPTIMIZERS",
    "Optimizer",
    "classp_update",
    "classp_step",
    "SGD",
    "Adam",
    "AdaGrad",
    "CLASSP",
    "EWC",
    "SI",
    "make_optimizer",
    "memory_bytes",
]

OPTIMIZERS = ("sgd", "adam", "adagrad", "classp", "ewc", "si")


def memory_bytes(state) -> int:
    """Bytes held by the numpy arrays of an optimizer state (dict, or list of dicts)."""
    if state is None:
        return 0
    if isinstance(state, (list, tuple)):
        return sum(memory_bytes(s) for s in state)
    return int(sum(v.nbytes for v in state.values() if isinstance(v, np.ndarray)))


# ---------------------------------------------------------------------------- CLASSP core
def classp_update(
    g,
    acc,
    *,
    lr: float,
    threshold: float = 0.0,
    eps: float = 1e-5,
    p: float = 1.0,
    accumulate: str = "before",
    scaling: bool = True,
    mask=None,
    inc=None,
    xp=np,
):
    """The CLASSP update, elementwise over any array namespace (numpy, cupy, torch).

    Where ``mask`` (default ``g^2 > threshold``) holds, ``A`` grows by ``inc`` (default
    ``|g|^p``) and the change is ``-lr * g / (eps + A)^(1/p)`` (``A`` after the increment for
    ``accumulate="before"``, before it for ``"after"``), or ``-lr * g`` without ``scaling``;
    elsewhere both stay. Arguments are not checked (the callers' configs are): the arithmetic
    runs in the dtype of ``g``.

    Parameters
    ----------
    g, acc : array
        Gradient and accumulator of one weight array (same shape and namespace).
    lr, threshold, eps, p, accumulate, scaling
        As :class:`CLASSP`.
    mask, inc : array, optional
        Override the update mask and the accumulator increment (the released code's
        tensor-level threshold; a pulse accumulator kept elsewhere passes ``inc=0``).
    xp : module
        The array namespace (``numpy`` by default; ``torch`` for tensors).

    Returns
    -------
    (dw, acc_new, mask)
    """
    if mask is None:
        mask = g * g > threshold
    if inc is None:
        inc = xp.abs(g) ** p
    acc_new = xp.where(mask, acc + inc, acc)
    if not scaling:
        return xp.where(mask, -lr * g, 0.0), acc_new, mask
    denom = (eps + (acc_new if accumulate == "before" else acc)) ** (1.0 / p)
    ok = mask & (denom > 0)
    return xp.where(ok, -lr * g / xp.where(ok, denom, 1.0), 0.0), acc_new, mask


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
    """One CLASSP step on numpy arrays (pure function; checks its arguments).

    Parameters
    ----------
    w : ndarray or None
        Weights (only used to return ``w + dw``; ``None`` returns ``None`` for it).
    g, acc : ndarray
        Gradient of the loss and accumulator ``A`` (sum of ``|g|^p`` over past updates).
    lr, threshold, eps, p, accumulate, scaling
        As :class:`CLASSP`.
    legacy_reference : bool
        Reproduce the released code: the tensor is updated as a whole when
        ``float(any(g^2 != 0)) > threshold``, and ``A += |g|`` whatever ``p``.

    Returns
    -------
    (w_new, dw, acc_new, mask)
        New weights (or None), the change, the new accumulator and the boolean update mask.
    """
    lr = check_real("lr", lr, lo=0.0, lo_open=True)
    threshold = check_real("threshold", threshold, lo=0.0)
    eps = check_real("eps", eps, lo=0.0)
    p = check_real("p", p, lo=0.0, lo_open=True)
    check_choice("accumulate", accumulate, ("before", "after"))
    check_bool("scaling", scaling)
    check_bool("legacy_reference", legacy_reference)
    g = np.asarray(g, dtype=np.float64)
    acc = np.asarray(acc, dtype=np.float64)
    if acc.shape != g.shape:
        raise ValueError(f"acc must have the gradient's shape {g.shape}, got {acc.shape}")
    mask = inc = None
    if legacy_reference:
        mask = np.full(g.shape, float(bool(np.any(g * g))) > threshold)
        inc = np.abs(g)
    dw, acc_new, mask = classp_update(
        g,
        acc,
        lr=lr,
        threshold=threshold,
        eps=eps,
        p=p,
        accumulate=accumulate,
        scaling=scaling,
        mask=mask,
        inc=inc,
    )
    w_new = None if w is None else np.asarray(w, dtype=np.float64) + dw
    return w_new, dw, acc_new, mask


# ---------------------------------------------------------------------------- optimizers
class Optimizer(abc.ABC):
    """Base of the numpy optimizers (see the module docs for the interface and hooks)."""

    name = "base"
    #: Whether :meth:`update` needs the current weights ``w``.
    needs_weights = False
    #: Whether :meth:`end_task` needs the task's diagonal Fisher.
    needs_fisher = False

    def init_state(self, shape) -> dict:
        """Fresh state for a weight array of ``shape``."""
        return {}

    @abc.abstractmethod
    def update(self, g, state, w=None):
        """``(dw, new_state)`` for gradient ``g`` (every optimizer defines it)."""

    def update_masked(self, g, state, w=None):
        """``(dw, new_state, mask)``: :meth:`update` plus the update mask (``None``: every
        element is updated)."""
        dw, state = self.update(g, state, w=w)
        return dw, state, None

    def step(self, w, g, state):
        """``(w + dw, new_state)`` for gradient ``g``."""
        dw, state = self.update(g, state, w=w)
        return np.asarray(w, dtype=np.float64) + dw, state

    def end_task(self, state, w, fisher=None, *, warn: bool = True) -> dict:
        """State after a task that ended at weights ``w`` (unchanged here; EWC and SI
        consolidate)."""
        return state

    def pulsed(self, **options):
        """The rule as pulses on a weight array, or ``None`` (no pulse form; CLASSP has one)."""
        return None

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
class SGD(Optimizer):
    """Plain SGD without momentum: ``dw = -lr * g``.

    Parameters
    ----------
    lr : float
        Learning rate (> 0).
    """

    lr: float = 0.1
    name = "sgd"

    def __post_init__(self):
        check_real("lr", self.lr, lo=0.0, lo_open=True)

    def update(self, g, state, w=None):
        """``(-lr * g, state)``."""
        return -self.lr * np.asarray(g, dtype=np.float64), dict(state)


@dataclass(frozen=True, kw_only=True)
class Adam(Optimizer):
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
        check_real("lr", self.lr, lo=0.0, lo_open=True)
        check_real("beta1", self.beta1, lo=0.0, hi=1.0, hi_open=True)
        check_real("beta2", self.beta2, lo=0.0, hi=1.0, hi_open=True)
        check_real("eps", self.eps, lo=0.0)

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
class AdaGrad(Optimizer):
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
        check_real("lr", self.lr, lo=0.0, lo_open=True)
        check_real("eps", self.eps, lo=0.0)
        check_real("lr_decay", self.lr_decay, lo=0.0)
        check_real("initial_accumulator_value", self.initial_accumulator_value, lo=0.0)

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
class CLASSP(Optimizer):
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
        check_real("lr", self.lr, lo=0.0, lo_open=True)
        check_real("threshold", self.threshold, lo=0.0)
        check_real("eps", self.eps, lo=0.0)
        check_real("p", self.p, lo=0.0, lo_open=True)
        check_choice("accumulate", self.accumulate, ("before", "after"))
        check_bool("scaling", self.scaling)
        check_bool("legacy_reference", self.legacy_reference)

    def init_state(self, shape) -> dict:
        """Accumulator ``acc`` (zeros)."""
        return {"acc": np.zeros(shape)}

    def update(self, g, state, w=None):
        """CLASSP change (zero where ``g^2 <= threshold``)."""
        dw, state, _ = self.update_masked(g, state)
        return dw, state

    def pulsed(self, **options):
        """:class:`~learning_rules.continual.DeviceCLASSP` of this rule with ``options``
        (``accumulator``, ``method``, ``side``, ``dz_theta``, ``n_max``, ``rounding``)."""
        from .continual import DeviceCLASSP  # the pulse form builds on this module

        return DeviceCLASSP(rule=self, **options)

    def update_masked(self, g, state, w=None):
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


def _check_base(base, penalty: str) -> None:
    """Base of a penalty method: SGD, Adam or AdaGrad (SGD for the implicit step)."""
    if not isinstance(base, (SGD, Adam, AdaGrad)):
        raise ValueError(
            f"base must be an SGD, Adam or AdaGrad optimizer, got {type(base).__name__}"
        )
    if penalty == "implicit" and not isinstance(base, SGD):
        raise ValueError("penalty='implicit' needs base=SGD(...)")


@dataclass(frozen=True, kw_only=True)
class EWC(Optimizer):
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

    base: Optimizer = dataclasses.field(default_factory=lambda: SGD(lr=0.1))
    lam: float = 5000.0
    half: bool = False
    penalty: str = "explicit"
    name = "ewc"
    needs_weights = True
    needs_fisher = True

    def __post_init__(self):
        check_real("lam", self.lam, lo=0.0)
        check_bool("half", self.half)
        _check_base(self.base, check_choice("penalty", self.penalty, ("explicit", "implicit")))

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

    def end_task(self, state, w, fisher=None, *, warn: bool = True) -> dict:
        """:meth:`consolidate` (``fisher`` is required)."""
        if fisher is None:
            raise ValueError("EWC.end_task needs the task's diagonal Fisher (fisher=...)")
        return self.consolidate(state, w, fisher, warn=warn)

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
class SI(Optimizer):
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
    State per weight: ``omega`` (running path integral), ``importance`` (``Omega``), ``anchor``
    (``w~``, start of the current task), ``w_last``, ``g_last`` (previous step). Negative
    ``omega`` (a step that raised the loss) is kept as the paper writes it. An explicit step on
    the penalty is unstable when ``lr * 2 c max Omega >= 2``; :meth:`consolidate` warns then
    (on split digits ``Omega`` reaches about 100, so ``lr = 0.1`` with ``c = 0.1`` diverges with
    the explicit step; hence the implicit default on SGD).
    """

    base: Optimizer = dataclasses.field(default_factory=lambda: SGD(lr=0.1))
    c: float = 0.1
    xi: float = 1e-3
    penalty: str = "auto"
    name = "si"
    needs_weights = True

    _OWN = ("omega", "importance", "anchor", "w_last", "g_last", "started")

    def __post_init__(self):
        check_real("c", self.c, lo=0.0)
        check_real("xi", self.xi, lo=0.0, lo_open=True)
        _check_base(
            self.base, check_choice("penalty", self.penalty, ("auto", "explicit", "implicit"))
        )

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

    def end_task(self, state, w, fisher=None, *, warn: bool = True) -> dict:
        """:meth:`consolidate` (``fisher`` is not used)."""
        return self.consolidate(state, w, warn=warn)

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


def make_optimizer(name: str, **kwargs):
    """Optimizer by name (:data:`OPTIMIZERS`) with its fields; ``ewc`` and ``si`` take ``lr``
    for their SGD base, then ``lam``, ``half``, ``penalty`` (EWC) or ``c``, ``xi`` (SI)."""
    check_choice("optimizer", name, OPTIMIZERS)
    if name in ("ewc", "si"):
        base = SGD(lr=kwargs.pop("lr", 0.1))
        return (EWC if name == "ewc" else SI)(base=base, **kwargs)
    return {"sgd": SGD, "adam": Adam, "adagrad": AdaGrad, "classp": CLASSP}[name](**kwargs)
