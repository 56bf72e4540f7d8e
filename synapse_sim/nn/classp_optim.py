"""CLASSP as a ``torch.optim.Optimizer``: the one CLASSP update
(:func:`learning_rules.optimizers.classp_update`) run on tensors."""

from __future__ import annotations

import torch

from learning_rules.optimizers import CLASSP as _CLASSPConfig
from learning_rules.optimizers import classp_update

__all__ = ["CLASSP"]


class CLASSP(torch.optim.Optimizer):
    """CLASSP (Ludwig 2024) with per-element threshold and ``|g|^p`` accumulator.

    Parameters
    ----------
    params : iterable
        Parameters or parameter groups.
    lr, threshold, eps, p, accumulate, scaling
        As :class:`learning_rules.optimizers.CLASSP` (validated there).

    Notes
    -----
    ``step(closure=None, **overrides)`` accepts per-call overrides of the group values (as the
    reference code); :meth:`set_phase` changes them for every group. State key ``"acc"``.
    """

    def __init__(
        self, params, lr=0.1, threshold=0.0, eps=1e-5, p=1.0, accumulate="before", scaling=True
    ):
        _CLASSPConfig(
            lr=lr, threshold=threshold, eps=eps, p=p, accumulate=accumulate, scaling=scaling
        )
        defaults = dict(
            lr=lr, threshold=threshold, eps=eps, p=p, accumulate=accumulate, scaling=scaling
        )
        super().__init__(params, defaults)

    def set_phase(self, **values) -> None:
        """Set ``lr``, ``scaling``, ... in every parameter group."""
        for group in self.param_groups:
            _CLASSPConfig(**{k: group[k] for k in self.defaults} | values)
            group.update(values)

    def average_acc(self) -> float:
        """Mean accumulator over all parameters (0 before the first step)."""
        tot = n = 0.0
        for st in self.state.values():
            if "acc" in st:
                tot += float(st["acc"].sum())
                n += st["acc"].numel()
        return tot / n if n else 0.0

    @torch.no_grad()
    def step(self, closure=None, **overrides):
        """One CLASSP step (per-call overrides of the group values allowed)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            h = {k: overrides.get(k, group[k]) for k in self.defaults}
            if overrides:
                _CLASSPConfig(**h)
            for prm in group["params"]:
                if prm.grad is None:
                    continue
                g = prm.grad
                st = self.state[prm]
                if "acc" not in st:
                    st["acc"] = torch.zeros_like(prm)
                dw, acc_new, _ = classp_update(
                    g,
                    st["acc"],
                    lr=h["lr"],
                    threshold=h["threshold"],
                    eps=h["eps"],
                    p=h["p"],
                    accumulate=h["accumulate"],
                    scaling=h["scaling"],
                    xp=torch,
                )
                st["acc"].copy_(acc_new)
                prm.add_(dw)
        return loss
