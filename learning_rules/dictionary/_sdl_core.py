"""Objectives, block gradients and the two solvers of supervised dictionary learning.

``specs/dictionary_learning.md`` sections 2-4 (columns are samples here). Pure functions on
plain arrays so tests can check gradients by finite differences and compare the solvers'
histories.
"""

from __future__ import annotations

import numpy as np

from ._common import Link, project_W, prox_step, ridge_link_fit, ridge_objective, spectral_norm

__all__ = [
    "sdl_objective",
    "predictor",
    "grad_H",
    "grad_W",
    "lifted_objective",
    "lowrank",
]


def predictor(mode, X, Z, W, H, beta, Gamma):
    """Linear predictor ``D`` (kappa x n): filter ``beta W^T X + Gamma Z``, feature
    ``beta H + Gamma Z``."""
    if mode == "filter":
        return beta @ (W.T @ X) + Gamma @ Z
    return beta @ H + Gamma @ Z


def sdl_objective(mode, link: Link, X, Y, Z, W, H, beta, Gamma, xi, nu, l1, l2) -> float:
    """``f_filt`` or ``f_feat`` of section 2 with the penalties ``R`` (l1, l2 for H, W, beta)."""
    R = X - W @ H
    f = link.loss(Y, predictor(mode, X, Z, W, H, beta, Gamma)) + xi * float(np.sum(R * R))
    f += 0.5 * nu * float(np.sum(beta * beta))
    f += l1[0] * float(np.abs(H).sum()) + l2[0] * float(np.sum(H * H))
    f += l1[1] * float(np.abs(W).sum()) + l2[1] * float(np.sum(W * W))
    f += l1[2] * float(np.abs(beta).sum()) + l2[2] * float(np.sum(beta * beta))
    return f


def grad_H(mode, link, X, Y, Z, W, H, beta, Gamma, xi, l2H):
    """Gradient of the smooth part of the H-block objective, and its Lipschitz bound."""
    G = 2.0 * xi * (W.T @ (W @ H - X)) + 2.0 * l2H * H
    L = 2.0 * xi * spectral_norm(W.T @ W) + 2.0 * l2H
    if mode == "feature":
        Gl = link.grad(Y, beta @ H + Gamma @ Z)
        G = G + beta.T @ Gl
        L += link.c_l * spectral_norm(beta) ** 2
    return G, L


def grad_W(mode, link, X, Y, Z, W, H, beta, Gamma, xi, l2W, X_norm2=None):
    """Gradient of the smooth part of the W-block objective, and its Lipschitz bound."""
    G = 2.0 * xi * ((W @ H - X) @ H.T) + 2.0 * l2W * W
    L = 2.0 * xi * spectral_norm(H @ H.T) + 2.0 * l2W
    if mode == "filter":
        Gl = link.grad(Y, beta @ (W.T @ X) + Gamma @ Z)
        G = G + X @ (Gl.T @ beta)
        if X_norm2 is None:
            X_norm2 = spectral_norm(X) ** 2
        L += link.c_l * spectral_norm(beta) ** 2 * X_norm2
    return G, L


def lifted_objective(mode, link, X, Y, Z, A, B, Gamma, xi, nu) -> float:
    """``g(A, B, Gamma)`` of section 3."""
    D = (A.T @ X if mode == "filter" else A) + Gamma @ Z
    R = X - B
    return link.loss(Y, D) + xi * float(np.sum(R * R)) + 0.5 * nu * float(np.sum(A * A))


def lowrank(M, r, seed=0):
    """Best rank-``r`` factors ``U (m x r), S (r,), Vt (r x k)`` of ``M``: exact SVD while
    ``min(M.shape) <= 2000``, else a randomized SVD with 7 power iterations and a fixed seed."""
    m, k = M.shape
    if min(m, k) <= 2000:
        if k > 2 * m:  # wide: SVD of the small triangular factor of M^T = Q R
            Q, R = np.linalg.qr(M.T)
            U, S, Wt = np.linalg.svd(R.T, full_matrices=False)
            return U[:, :r], S[:r], (Q @ Wt[:r].T).T
        if m > 2 * k:  # tall: M = Q R
            Q, R = np.linalg.qr(M)
            U, S, Vt = np.linalg.svd(R, full_matrices=False)
            return Q @ U[:, :r], S[:r], Vt[:r]
        U, S, Vt = np.linalg.svd(M, full_matrices=False)
        return U[:, :r], S[:r], Vt[:r]
    rng = np.random.default_rng(seed)
    k = min(r + 10, min(M.shape))
    Q = np.linalg.qr(M @ rng.standard_normal((M.shape[1], k)))[0]
    for _ in range(7):
        Q = np.linalg.qr(M.T @ Q)[0]
        Q = np.linalg.qr(M @ Q)[0]
    Ub, S, Vt = np.linalg.svd(Q.T @ M, full_matrices=False)
    return (Q @ Ub)[:, :r], S[:r], Vt[:r]


# ---------------------------------------------------------------------- BCD blocks
class BCDState:
    """Mutable state of one BCD run (float W, or W read from / written to a weight array)."""

    def __init__(self, W, H, beta, Gamma):
        self.W, self.H, self.beta, self.Gamma = W, H, beta, Gamma


def trust_shrink(old, new, radius):
    """Shorten ``new - old`` to length ``radius`` (no-op when ``radius`` is None)."""
    if radius is None:
        return new
    d = new - old
    nd = float(np.sqrt(np.sum(d * d)))
    if nd <= radius or nd == 0.0:
        return new
    return old + (radius / nd) * d


def block_H(cfg, link, X, Y, Z, W, H, beta, Gamma, xi, radius):
    """``inner_steps`` proximal gradient steps on H with W, beta, Gamma fixed."""
    H0 = H
    for _ in range(cfg.inner_steps):
        G, L = grad_H(cfg.mode, link, X, Y, Z, W, H, beta, Gamma, xi, cfg.l2[0])
        if L <= 0:
            break
        H = prox_step(H - G / L, cfg.l1[0] / L, cfg.nonneg[0])
    return trust_shrink(H0, H, radius)


def _w_step(cfg, W, G, L):
    """One projected proximal gradient step ``W - G / L`` (L1 prox, nonnegativity, ball)."""
    V = W - G / L
    if cfg.nonneg[1]:
        V = np.maximum(V - cfg.l1[1] / L, 0.0)
    elif cfg.l1[1] > 0:
        V = prox_step(V, cfg.l1[1] / L, False)
    return project_W(V, cfg.nonneg[1], cfg.constraint, cfg.w_max)


def block_W(cfg, link, X, Y, Z, W, H, beta, Gamma, xi, radius, X_norm2):
    """``inner_steps`` projected (proximal) gradient steps on W from ``W``.

    ``cfg.step == "lipschitz"`` (default): step ``1/L`` with the global bound ``L`` of
    :func:`grad_W`. ``"backtracking"``: start from the bound of the reconstruction term alone
    and double ``L`` until the sufficient-decrease condition of proximal gradient,
    ``F(W+) <= F(W) + <G, W+ - W> + (L/2) ||W+ - W||^2`` (``F`` the smooth part), holds, at most
    up to the global bound (where it always holds), so every step still decreases f.
    """
    W0 = W
    search = getattr(cfg, "step", "lipschitz") == "backtracking"
    no_l1 = (0.0, 0.0, 0.0)
    for _ in range(cfg.inner_steps):
        G, L = grad_W(cfg.mode, link, X, Y, Z, W, H, beta, Gamma, xi, cfg.l2[1], X_norm2)
        if L <= 0:
            break
        if not search:
            W = _w_step(cfg, W, G, L)
            continue
        f0 = sdl_objective(cfg.mode, link, X, Y, Z, W, H, beta, Gamma, xi, 0.0, no_l1, cfg.l2)
        Lt = 2.0 * xi * spectral_norm(H @ H.T) + 2.0 * cfg.l2[1]
        Lt = L if Lt <= 0 else min(Lt, L)
        while True:
            Wn = _w_step(cfg, W, G, Lt)
            d = Wn - W
            f1 = sdl_objective(cfg.mode, link, X, Y, Z, Wn, H, beta, Gamma, xi, 0.0, no_l1, cfg.l2)
            if Lt >= L or f1 <= f0 + float(np.sum(G * d)) + 0.5 * Lt * float(np.sum(d * d)):
                break
            Lt = min(2.0 * Lt, L)
        W = Wn
    return trust_shrink(W0, W, radius)


def block_beta(cfg, link, F, Y, Z, beta, Gamma, radius):
    """The (beta, Gamma) block: ridge regression with link on features ``[F; Z]``.

    Newton (``ridge_link_fit``) when beta is signed and has no L1 term, otherwise
    ``inner_steps`` proximal gradient steps; accepted only if it lowers the block objective.
    """
    nu_eff = cfg.nu + 2.0 * cfg.l2[2]

    def obj(b, g):
        return ridge_objective(link, Y, F, Z, b, g, nu_eff) + cfg.l1[2] * float(np.abs(b).sum())

    f0 = obj(beta, Gamma)
    if not cfg.nonneg[2] and cfg.l1[2] == 0:
        b, g, _ = ridge_link_fit(link, Y, F, Z, beta, Gamma, nu_eff)
    else:
        L = link.c_l * spectral_norm(np.vstack([F, Z])) ** 2 + nu_eff
        b, g = beta, Gamma
        for _ in range(cfg.inner_steps):
            Gl = link.grad(Y, b @ F + g @ Z)
            b = prox_step(b - (Gl @ F.T + nu_eff * b) / L, cfg.l1[2] / L, cfg.nonneg[2])
            g = g - (Gl @ Z.T) / L
    if radius is not None:
        old = np.hstack([beta, Gamma])
        new = trust_shrink(old, np.hstack([b, g]), radius)
        b, g = new[:, : beta.shape[1]], new[:, beta.shape[1] :]
    if obj(b, g) <= f0:
        return b, g
    return beta, Gamma
