"""Shared pieces of the dictionary estimators: checks, links, projections, ridge-link solver.

Samples are columns inside the math (``specs/dictionary_learning.md`` section 2): ``X`` is
``(p, n)``, ``W`` ``(p, r)``, ``H`` ``(r, n)``, ``beta`` ``(kappa, r)``, ``Gamma``
``(kappa, 1 + q)``, ``Z = [1; X']``. The public estimators take scikit-learn layout and transpose.
"""

from __future__ import annotations

import numpy as np

from devices.validation import check_choice, check_int, check_real

__all__ = [
    "LINKS",
    "LINK_CHOICES",
    "resolve_link",
    "Link",
    "project_W",
    "spectral_norm",
    "ridge_link_fit",
]

LINKS = ("logistic", "multinomial")
#: Values of the estimators' ``link`` parameter: ``"auto"`` is logistic for two classes (or a 0/1
#: label matrix) and multinomial for more.
LINK_CHOICES = ("auto", *LINKS)


def resolve_link(link, n_classes: int, multilabel: bool = False) -> str:
    """The link used for ``n_classes`` labels: ``link`` itself, or the choice of ``"auto"``."""
    link = check_choice("link", link, LINK_CHOICES)
    if link == "auto":
        return "logistic" if multilabel or n_classes == 2 else "multinomial"
    return link


def check_triple(name: str, value, kind: str):
    """A 3-tuple (H, W, beta) of bools (``kind="bool"``) or non-negative floats."""
    try:
        vals = tuple(value)
    except TypeError:
        raise ValueError(f"{name} must be a 3-tuple for (H, W, beta), got {value!r}") from None
    if len(vals) != 3:
        raise ValueError(f"{name} must be a 3-tuple for (H, W, beta), got {value!r}")
    if kind == "bool":
        for v in vals:
            if not isinstance(v, (bool, np.bool_)):
                raise TypeError(f"{name} must hold three bools for (H, W, beta), got {value!r}")
        return tuple(bool(v) for v in vals)
    return tuple(check_real(f"{name}[{i}]", v, lo=0.0) for i, v in enumerate(vals))


def spectral_norm(M) -> float:
    """Largest singular value (0 for an empty matrix)."""
    if M.size == 0:
        return 0.0
    return float(np.linalg.norm(M, 2))


def project_W(W, nonneg: bool, constraint: str = "ball", w_max: float = 1.0):
    """Projection onto ``C_W``: clip at 0 if ``nonneg``, then each column into the unit ball
    (``constraint="ball"``) or every entry into ``[-w_max, w_max]`` (``"device"``, a box)."""
    if nonneg:
        W = np.maximum(W, 0.0)
    if constraint == "device":
        return np.clip(W, -w_max, w_max)
    norms = np.sqrt(np.einsum("ij,ij->j", W, W))
    return W / np.maximum(1.0, norms)[None, :]


def soft(x, t):
    """Soft threshold ``sign(x) max(|x| - t, 0)``."""
    return np.sign(x) * np.maximum(np.abs(x) - t, 0.0)


def prox_step(V, t_l1, nonneg: bool):
    """Prox of ``t_l1 ||.||_1`` (plus the orthant if ``nonneg``)."""
    if nonneg:
        return np.maximum(V - t_l1, 0.0)
    if t_l1 > 0:
        return soft(V, t_l1)
    return V


class Link:
    """Loss ``l(Y, D)``, its gradient ``dl/dD``, the inverse link and the curvature bound.

    ``link="logistic"``: kappa independent Bernoulli rows; ``"multinomial"``: ``K`` classes with
    class 0 as reference (``kappa = K - 1`` rows).
    """

    def __init__(self, name: str, K: int | None = None):
        self.name = check_choice("link", name, LINKS)
        self.K = K
        # curvature bound of l in D: logistic 1/4; multinomial K = 2 is logistic (1/4), for
        # K >= 3 the largest eigenvalue of Bohning's bound 1/2 (I - 1 1^T / K) is 1/2.
        if self.name == "logistic" or K == 2:
            self.c_l = 0.25
        else:
            self.c_l = 0.5

    def loss(self, Y, D) -> float:
        if self.name == "logistic":
            return float(np.sum(np.logaddexp(0.0, D)) - np.sum(Y * D))
        m = np.maximum(0.0, D.max(axis=0))
        lse = m + np.log(np.exp(-m) + np.exp(D - m).sum(axis=0))
        return float(np.sum(lse) - np.sum(Y * D))

    def mean(self, D):
        """``E[Y | D]`` for the kappa modelled rows (sigmoid or softmax without the reference)."""
        if self.name == "logistic":
            return _sigmoid(D)
        m = np.maximum(0.0, D.max(axis=0))
        e = np.exp(D - m)
        return e / (np.exp(-m) + e.sum(axis=0))

    def grad(self, Y, D):
        return self.mean(D) - Y

    def hess_weights(self, D):
        """Per-sample Hessian blocks ``(n, kappa, kappa)`` of l in D."""
        P = self.mean(D)
        if self.name == "logistic":
            w = P * (1.0 - P)
            out = np.zeros((D.shape[1], D.shape[0], D.shape[0]))
            idx = np.arange(D.shape[0])
            out[:, idx, idx] = w.T
            return out
        Pt = P.T
        out = -Pt[:, :, None] * Pt[:, None, :]
        idx = np.arange(D.shape[0])
        out[:, idx, idx] += Pt
        return out


def _sigmoid(D):
    out = np.empty_like(D)
    pos = D >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-D[pos]))
    e = np.exp(D[~pos])
    out[~pos] = e / (1.0 + e)
    return out


def ridge_objective(link, Y, F, Z, beta, Gamma, nu, offset=None) -> float:
    D = beta @ F + Gamma @ Z
    if offset is not None:
        D = D + offset
    return link.loss(Y, D) + 0.5 * nu * float(np.sum(beta * beta))


def ridge_link_fit(link, Y, F, Z, beta0, Gamma0, nu, *, max_iter=50, return_n_iter=False):
    """Minimize ``l(Y, beta F + Gamma Z) + (nu/2) ||beta||^2`` by damped Newton steps with a
    backtracking line search, from ``(beta0, Gamma0)``.

    Every accepted step lowers the objective (the result is never worse than the start). The
    Newton direction is invariant under ``F -> c F``, ``nu -> nu c^2`` (``beta -> beta / c``),
    which the scaling identity of section 10 (D5) relies on.

    Returns
    -------
    beta, Gamma, objective
        And the number of Newton iterations run when ``return_n_iter``.
    """
    kappa, r = beta0.shape
    m = Gamma0.shape[1]
    Fz = np.vstack([F, Z])  # (r + m, n)
    d = r + m
    theta = np.hstack([beta0, Gamma0]).copy()  # (kappa, d)
    pen = np.zeros(d)
    pen[:r] = nu
    f = link.loss(Y, theta @ Fz) + 0.5 * nu * float(np.sum(theta[:, :r] ** 2))
    n_iter = 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007 (the count is returned)
        D = theta @ Fz
        G = link.grad(Y, D)  # (kappa, n)
        g = G @ Fz.T + pen[None, :] * theta  # (kappa, d)
        S = link.hess_weights(D)  # (n, kappa, kappa)
        # Hessian over vec(theta) in (c, j) order: sum_i S_i[c, c'] Fz[j, i] Fz[j', i]
        Hs = np.einsum("iab,ji,ki->ajbk", S, Fz, Fz, optimize=True).reshape(kappa * d, kappa * d)
        Hs[np.diag_indices_from(Hs)] += np.tile(pen, kappa)
        damp = 1e-10 * (np.trace(Hs) / Hs.shape[0] + 1e-300)
        Hs[np.diag_indices_from(Hs)] += damp
        try:
            step = np.linalg.solve(Hs, g.ravel()).reshape(kappa, d)
        except np.linalg.LinAlgError:
            step = g / (np.abs(Hs).sum() + 1.0)
        dec = float(np.sum(g * step))
        if not np.isfinite(dec) or dec <= 0:
            break
        scale = max(abs(f), 1.0)
        if dec < 1e-12 * scale:
            # quadratic regime: one last full Newton step puts the parameters at machine
            # precision (so runs that differ only by rounding agree), then stop
            cand = theta - step
            fc = link.loss(Y, cand @ Fz) + 0.5 * nu * float(np.sum(cand[:, :r] ** 2))
            if fc <= f + 1e-14 * scale:
                theta, f = cand, fc
            break
        t = 1.0
        accepted = False
        for _ls in range(40):
            cand = theta - t * step
            fc = link.loss(Y, cand @ Fz) + 0.5 * nu * float(np.sum(cand[:, :r] ** 2))
            if fc <= f - 1e-4 * t * dec:
                accepted = True
                break
            t *= 0.5
        if not accepted:
            break
        progress = f - fc
        theta, f = cand, fc
        if progress <= 1e-15 * scale:
            break
    if return_n_iter:
        return theta[:, :r].copy(), theta[:, r:].copy(), f, n_iter
    return theta[:, :r].copy(), theta[:, r:].copy(), f


__all__ += ["check_choice", "check_int", "check_real", "check_triple", "soft", "prox_step"]
