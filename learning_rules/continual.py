"""Continual learning: CLASSP on weight arrays and the diagonal Fisher (``specs/classp.md``).

The optimizers themselves (SGD, Adam, AdaGrad, CLASSP, EWC, SI; one definition each) live in
:mod:`learning_rules.optimizers` and are re-exported here, so ``learning_rules.continual.X``
keeps working. This module adds :class:`DeviceCLASSP`, which turns the CLASSP rule into pulse
counts on any :class:`~learning_rules.weights.WeightArray`, and :func:`fisher_diagonal` for EWC.

This module never imports ``synapse_sim`` or torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from devices.validation import check_choice, check_int, check_real

from .optimizers import (
    CLASSP,
    EWC,
    OPTIMIZERS,
    SGD,
    SI,
    AdaGrad,
    Adam,
    Optimizer,
    classp_step,
    classp_update,
    make_optimizer,
    memory_bytes,
)
from .weights import as_weight_array, pulse_counts

__all__ = [
    "OPTIMIZERS",
    "FISHER_ESTIMATORS",
    "Optimizer",
    "classp_step",
    "classp_update",
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

FISHER_ESTIMATORS = ("reference", "batch", "sample")


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
    check_choice("estimator", estimator, FISHER_ESTIMATORS)
    check_int("n_samples", n_samples, lo=1)
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
        check_choice("accumulator", self.accumulator, ("gradient", "pulses"))
        check_choice("method", self.method, ("bidirectional", "unidirectional"))
        check_choice("side", self.side, ("both", "plus"))
        check_choice("rounding", self.rounding, ("nearest", "stochastic"))
        check_real("dz_theta", self.dz_theta, lo=0.0, lo_open=True, hi=1.0)
        if self.n_max is not None:
            check_int("n_max", self.n_max, lo=1)
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
        # pulse accumulator: the step reads A as it stands; A grows by the pulses applied
        dw, _, mask = classp_update(
            g,
            state["acc"],
            lr=r.lr,
            threshold=r.threshold,
            eps=r.eps,
            p=r.p,
            accumulate="after",
            scaling=r.scaling,
            inc=0.0,
        )
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
            :class:`~learning_rules.FloatWeights` (an ideal linear device of step ``w.step``),
            :class:`devices.DeviceArray` or any implementation of the protocol.
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
            None with stochastic rounding) and ``suppressed`` (fraction of elements masked
            out).
        """
        w = as_weight_array(w)
        g = np.asarray(g, dtype=np.float64)
        if g.shape != tuple(w.shape):
            raise ValueError(f"g must have shape {tuple(w.shape)}, got {g.shape}")
        dw, state, mask = self.request(g, state)
        n = self.counts(w, dw) if self.rounding == "nearest" else None
        res = w.pulse_request(
            dw,
            method=self.method,
            side=self.side,
            theta=self.dz_theta,
            n_max=self.n_max,
            rounding=self.rounding,
            rng=rng,
        )
        if self.accumulator == "pulses":
            state = {"acc": state["acc"] + np.abs(n)}
        refreshes = 0
        if self.method == "unidirectional":
            need = w.needs_refresh(0.9)
            refreshes = int(w.refresh(need)) if need.any() else 0
        stats = {
            "pulses": int(res["pulses"]),
            "refreshes": refreshes,
            "mask": mask,
            "counts": n,
            "suppressed": float(1.0 - mask.mean()) if mask.size else 0.0,
        }
        return state, stats
