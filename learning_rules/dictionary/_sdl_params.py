"""Parameter checks of :class:`~learning_rules.dictionary.SDL` (specs/dictionary_learning.md)."""

from __future__ import annotations

import numbers

from ._common import LINK_CHOICES, check_choice, check_int, check_real, check_triple
from ._device import check_device

__all__ = ["Cfg", "validate_params", "MODES", "SOLVERS", "PREDICT_CODES", "CONSTRAINTS", "STEPS"]

MODES = ("filter", "feature")
SOLVERS = ("bcd", "lpgd")
PREDICT_CODES = ("naive", "exhaustive")
CONSTRAINTS = ("ball", "device")
STEPS = ("lipschitz", "backtracking")


class Cfg:
    """Validated parameters used by the solver loops."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


def validate_params(est, p: int, n: int) -> Cfg:
    """Check the parameters of a :class:`~learning_rules.dictionary.SDL` for data with ``p``
    features and ``n`` samples; every error names the parameter, its value and what is allowed."""
    mode = check_choice("mode", est.mode, MODES)
    solver = check_choice("solver", est.solver, SOLVERS)
    check_choice("link", est.link, LINK_CHOICES)
    r = check_int("n_components", est.n_components, lo=1)
    if isinstance(est.xi, str):
        if est.xi != "mle":
            raise ValueError(f"xi must be a float >= 0 or 'mle', got {est.xi!r}")
        if solver == "lpgd":
            raise ValueError("xi='mle' is for solver='bcd'; solver='lpgd' needs a float xi > 0")
        xi = "mle"
    else:
        xi = check_real("xi", est.xi, lo=0.0)
    nu = check_real("nu", est.nu, lo=0.0)
    nonneg = check_triple("nonneg", est.nonneg, "bool")
    l1 = check_triple("l1", est.l1, "float")
    l2 = check_triple("l2", est.l2, "float")
    max_iter = check_int("max_iter", est.max_iter, lo=1)
    inner = check_int("inner_steps", est.inner_steps, lo=1)
    tol = check_real("tol", est.tol, lo=0.0)
    check_choice("predict_code", est.predict_code, PREDICT_CODES)
    constraint = check_choice("constraint", est.constraint, CONSTRAINTS)
    if isinstance(est.threshold, str):
        check_choice("threshold", est.threshold, ("youden",))
    else:
        check_real("threshold", est.threshold, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    tr = est.trust_radius
    trust = None
    if tr is not None:
        if isinstance(tr, numbers.Real) and not isinstance(tr, bool):
            trust = (check_real("trust_radius", tr, lo=0.0, lo_open=True), 1.0)
        else:
            try:
                c, b = tr
            except (TypeError, ValueError):
                raise ValueError(
                    f"trust_radius must be None, c > 0 or (c, b), got {tr!r}"
                ) from None
            c = check_real("trust_radius[0]", c, lo=0.0, lo_open=True)
            trust = None if b is None else (c, check_real("trust_radius[1]", b, lo=0.0))
    if not (isinstance(est.init, str) and est.init == "random") and not isinstance(est.init, dict):
        raise ValueError(f"init must be 'random' or a dict of start arrays, got {est.init!r}")
    if isinstance(est.init, dict):
        bad = set(est.init) - {"W", "H", "beta", "Gamma"}
        if bad:
            raise ValueError(f"init dict keys must be among W, H, beta, Gamma, got {sorted(bad)}")
    if solver == "lpgd":
        if any(nonneg):
            raise ValueError(
                f"solver='lpgd' is for signed problems: nonneg must be (False, False, False), "
                f"got {est.nonneg!r}"
            )
        if any(l1) or any(l2):
            raise ValueError("solver='lpgd' takes no l1/l2 penalties (they must be zeros)")
        if not xi > 0:
            raise ValueError(f"solver='lpgd' needs xi > 0, got {est.xi!r}")
        if r > min(p, n):
            raise ValueError(
                f"n_components must be <= min(n_features, n_samples) = {min(p, n)} for "
                f"solver='lpgd', got {r}"
            )
        if est.device is not None:
            raise ValueError("device= is for solver='bcd' (LPGD works on float lifted variables)")
    opts, w_max = check_device(est.device, est.device_options)
    return Cfg(
        mode=mode,
        solver=solver,
        r=r,
        xi=xi,
        nu=nu,
        nonneg=nonneg,
        l1=l1,
        l2=l2,
        max_iter=max_iter,
        inner_steps=inner,
        step=check_choice("step", est.step, STEPS),
        tol=tol,
        trust=trust,
        constraint=constraint,
        w_max=w_max,
        opts=opts,
    )
