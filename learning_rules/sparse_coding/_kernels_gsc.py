"""E-step kernels of GSC (spike-and-slab): per state a g x g Cholesky of ``Lambda_s``, Woodbury
for ``log det C_s`` and the quadratic form, and the slab moments; numpy reference and numba
version (parallel over data points) with one signature (``specs/sparse_coding.md`` section 3).
"""

from __future__ import annotations

import math

import numpy as np

from ._kernels import HAVE_NUMBA, resolve_backend

__all__ = ["gsc_estep", "gsc_estep_reference", "gsc_estep_numba"]

if HAVE_NUMBA:
    from numba import njit, prange


def _state_support(cand_n, states, H):
    """Active latents of every state of one point: list of index arrays in state order."""
    sup = [np.zeros(0, dtype=np.int64)]
    sup += [np.array([h], dtype=np.int64) for h in range(H)]
    sup += [cand_n[np.flatnonzero(s)] for s in states]
    return sup


def _psi_block(psi_sq, a):
    """``Psi_s`` of the active latents ``a`` and its log-determinant (diagonal or full ``Psi``)."""
    if psi_sq.ndim == 2:
        P = psi_sq[np.ix_(a, a)]
        return np.linalg.inv(P), np.linalg.slogdet(P)[1]
    return np.diag(1.0 / psi_sq[a]), float(np.sum(np.log(psi_sq[a])))


def gsc_estep_reference(
    U, G, yy, logdet_sigma, cand, states, lp, mu, psi_sq, D, moments=None, cross=False
):
    """GSC log-joints (slab integrated out) per state, numpy reference (loops over points).

    Parameters
    ----------
    U : ndarray, shape (N, H)
        ``W^T Sigma^-1 y_n``.
    G : ndarray, shape (H, H)
        ``W^T Sigma^-1 W``.
    yy : ndarray, shape (N,)
        ``y_n^T Sigma^-1 y_n``.
    logdet_sigma : float
        ``log det Sigma``.
    cand : ndarray of int, shape (N, H')
    states : ndarray, shape (M, H')
        Binary multi-cause states over the candidates.
    lp : ndarray, shape (N, 1 + H + M)
        Log-priors of the states.
    mu : ndarray, shape (H,)
        Slab means.
    psi_sq : ndarray, shape (H,) or (H, H)
        Slab variances (diagonal ``Psi``) or the full slab covariance ``Psi``; a state uses the
        block ``Psi_s`` of its active latents, ``Lambda_s = G_ss + Psi_s^-1``.
    D : int
        Data dimension.
    moments : ndarray, shape (N, 1 + H + M), optional
        Posterior ``q``; when given, return the per-point moments ``(Es, Esz, Eszsz)`` of shapes
        (N, H), (N, H), (N, H, H) instead of the log-joints.
    cross : bool
        With ``moments``: also return ``Essz`` (N, H, H), ``Essz[n, h, k] = <s_h s_k z_h>_n``
        (the full-``Psi`` M-step needs it).

    Returns
    -------
    ndarray, shape (N, 1 + H + M), or the tuple of moments
    """
    psi_sq = np.asarray(psi_sq, dtype=np.float64)
    N, H = U.shape
    const = -0.5 * D * math.log(2.0 * math.pi)
    S = lp.shape[1]
    lj = np.empty((N, S))
    if moments is not None:
        Es, Esz, Eszsz = np.zeros((N, H)), np.zeros((N, H)), np.zeros((N, H, H))
        Essz = np.zeros((N, H, H)) if cross else None
    for n in range(N):
        for j, a in enumerate(_state_support(cand[n], states, H)):
            if a.size == 0:
                if moments is None:
                    lj[n, j] = lp[n, j] + const - 0.5 * (logdet_sigma + yy[n])
                continue
            Gs = G[np.ix_(a, a)]
            Pinv, ld_psi = _psi_block(psi_sq, a)
            Lam = Gs + Pinv
            b = U[n, a] - Gs @ mu[a]
            v = np.linalg.solve(Lam, b)
            if moments is None:
                quad = yy[n] - 2.0 * mu[a] @ U[n, a] + mu[a] @ Gs @ mu[a] - b @ v
                ld = logdet_sigma + ld_psi + np.linalg.slogdet(Lam)[1]
                lj[n, j] = lp[n, j] + const - 0.5 * (ld + quad)
            else:
                qq = moments[n, j]
                kap = mu[a] + v
                Es[n, a] += qq
                Esz[n, a] += qq * kap
                Eszsz[n][np.ix_(a, a)] += qq * (np.linalg.inv(Lam) + np.outer(kap, kap))
                if cross:
                    Essz[n][np.ix_(a, a)] += qq * kap[:, None]
    if moments is not None:
        return (Es, Esz, Eszsz, Essz) if cross else (Es, Esz, Eszsz)
    return lj


def _chol(A, g):
    """In-place lower Cholesky of ``A[:g, :g]`` (reads the lower triangle); returns log det."""
    ld = 0.0
    for j in range(g):
        s = A[j, j]
        for k in range(j):
            s -= A[j, k] * A[j, k]
        s = math.sqrt(s)
        A[j, j] = s
        ld += 2.0 * math.log(s)
        for i in range(j + 1, g):
            t = A[i, j]
            for k in range(j):
                t -= A[i, k] * A[j, k]
            A[i, j] = t / s
    return ld


def _chol_solve(L, g, rhs, tmp, out):
    """``out = (L L^T)^-1 rhs`` with the Cholesky factor ``L`` (two triangular solves)."""
    for i in range(g):
        t = rhs[i]
        for k in range(i):
            t -= L[i, k] * tmp[k]
        tmp[i] = t / L[i, i]
    for i in range(g - 1, -1, -1):
        t = tmp[i]
        for k in range(i + 1, g):
            t -= L[k, i] * out[k]
        out[i] = t / L[i, i]


def _gsc_state(G, U, mu, psi2, full, act, g, n, Lc, b, v, P, e, x):
    """Cholesky of ``Lambda_s`` into Lc, ``b = u_s - G_ss mu_s``, ``v = Lambda^-1 b``.

    ``psi2`` is ``(1, H)`` (diagonal ``Psi``) or ``(H, H)`` (``full``); ``P``, ``e``, ``x`` are
    scratch. Returns ``log det Lambda_s + log det Psi_s``.
    """
    for i in range(g):
        hi = act[i]
        acc = U[n, hi]
        for k in range(g):
            acc -= G[hi, act[k]] * mu[act[k]]
        b[i] = acc
        for k in range(g):
            Lc[i, k] = G[hi, act[k]]
    ld_psi = 0.0
    if full:
        for i in range(g):
            for k in range(g):
                P[i, k] = psi2[act[i], act[k]]
        ld_psi = _chol(P, g)
        for c in range(g):  # Lc += Psi_s^-1, column by column
            for i in range(g):
                e[i] = 0.0
            e[c] = 1.0
            _chol_solve(P, g, e, v, x)
            for i in range(g):
                Lc[i, c] += x[i]
    else:
        for i in range(g):
            p = psi2[0, act[i]]
            Lc[i, i] += 1.0 / p
            ld_psi += math.log(p)
    ld = _chol(Lc, g)
    _chol_solve(Lc, g, b, e, v)
    return ld + ld_psi


def _gsc_support(states, cand, n, m, H, act):
    """Active latents of state index ``m`` (layout: zero, singletons, multi) into ``act``."""
    if m == 0:
        return 0
    if m <= H:
        act[0] = m - 1
        return 1
    g = 0
    for i in range(cand.shape[1]):
        if states[m - 1 - H, i] != 0.0:
            act[g] = cand[n, i]
            g += 1
    return g


def _gsc_log_joint_py(U, G, yy, logdet_sigma, cand, states, lp, mu, psi2, full, D, out):
    N, H = U.shape
    Hp = cand.shape[1]
    S = lp.shape[1]
    const = -0.5 * D * math.log(2.0 * math.pi)
    for n in prange(N):
        act = np.empty(max(Hp, 1), dtype=np.int64)
        Lc = np.empty((Hp + 1, Hp + 1))
        P = np.empty((Hp + 1, Hp + 1))
        b = np.empty(Hp + 1)
        v = np.empty(Hp + 1)
        e = np.empty(Hp + 1)
        x = np.empty(Hp + 1)
        for m in range(S):
            g = _gsc_support(states, cand, n, m, H, act)
            if g == 0:
                out[n, m] = lp[n, m] + const - 0.5 * (logdet_sigma + yy[n])
                continue
            ld = _gsc_state(G, U, mu, psi2, full, act, g, n, Lc, b, v, P, e, x)
            quad = yy[n]
            for i in range(g):
                hi = act[i]
                quad -= 2.0 * mu[hi] * U[n, hi]
                for k in range(g):
                    quad += mu[hi] * G[hi, act[k]] * mu[act[k]]
                quad -= b[i] * v[i]
            out[n, m] = lp[n, m] + const - 0.5 * (logdet_sigma + ld + quad)


def _gsc_moments_py(U, G, cand, states, q, mu, psi2, full, cross, Es, Esz, Eszsz, Essz):
    N, H = U.shape
    Hp = cand.shape[1]
    S = q.shape[1]
    for n in prange(N):
        act = np.empty(max(Hp, 1), dtype=np.int64)
        Lc = np.empty((Hp + 1, Hp + 1))
        P = np.empty((Hp + 1, Hp + 1))
        b = np.empty(Hp + 1)
        v = np.empty(Hp + 1)
        e = np.empty(Hp + 1)
        x = np.empty(Hp + 1)
        r = np.empty(Hp + 1)
        for m in range(1, S):
            qq = q[n, m]
            if qq == 0.0:
                continue
            g = _gsc_support(states, cand, n, m, H, act)
            _gsc_state(G, U, mu, psi2, full, act, g, n, Lc, b, v, P, e, x)
            for i in range(g):
                hi = act[i]
                Es[n, hi] += qq
                kap_i = mu[hi] + v[i]
                Esz[n, hi] += qq * kap_i
                if cross:
                    for k in range(g):
                        Essz[n, hi, act[k]] += qq * kap_i
            for c in range(g):  # column c of Lambda^-1 by two triangular solves
                for i in range(g):
                    r[i] = 0.0
                r[c] = 1.0
                _chol_solve(Lc, g, r, e, x)
                kc = mu[act[c]] + v[c]
                for i in range(g):
                    Eszsz[n, act[i], act[c]] += qq * (x[i] + (mu[act[i]] + v[i]) * kc)


if HAVE_NUMBA:
    _chol = njit(cache=True)(_chol)
    _chol_solve = njit(cache=True)(_chol_solve)
    _gsc_state = njit(cache=True)(_gsc_state)
    _gsc_support = njit(cache=True)(_gsc_support)
    _gsc_log_joint_par = njit(cache=True, parallel=True)(_gsc_log_joint_py)
    _gsc_moments_par = njit(cache=True, parallel=True)(_gsc_moments_py)


def gsc_estep_numba(
    U, G, yy, logdet_sigma, cand, states, lp, mu, psi_sq, D, moments=None, cross=False
):
    """Numba version of :func:`gsc_estep_reference` (parallel over data points)."""
    if not HAVE_NUMBA:  # pragma: no cover
        raise RuntimeError("backend 'numba' needs the numba package (pip install numba)")
    c = np.ascontiguousarray
    args_common = (
        c(U, dtype=np.float64),
        c(G, dtype=np.float64),
    )
    cand = c(cand, dtype=np.int64)
    states = c(states, dtype=np.float64)
    mu = c(mu, dtype=np.float64)
    psi_sq = np.asarray(psi_sq, dtype=np.float64)
    full = psi_sq.ndim == 2
    psi2 = c(psi_sq if full else psi_sq.reshape(1, -1))
    N, H = U.shape
    if moments is None:
        out = np.empty(lp.shape)
        _gsc_log_joint_par(
            *args_common, c(yy, dtype=np.float64), float(logdet_sigma), cand, states,
            c(lp, dtype=np.float64), mu, psi2, full, int(D), out,
        )  # fmt: skip
        return out
    Es, Esz, Eszsz = np.zeros((N, H)), np.zeros((N, H)), np.zeros((N, H, H))
    Essz = np.zeros((N, H, H)) if cross else np.zeros((1, 1, 1))
    _gsc_moments_par(
        *args_common, cand, states, c(moments, dtype=np.float64), mu, psi2, full, bool(cross),
        Es, Esz, Eszsz, Essz,
    )  # fmt: skip
    return (Es, Esz, Eszsz, Essz) if cross else (Es, Esz, Eszsz)


def gsc_estep(
    U, G, yy, logdet_sigma, cand, states, lp, mu, psi_sq, D, moments=None, cross=False,
    backend=None,
):  # fmt: skip
    """Dispatch for the GSC E-step (log-joints, or moments when ``moments`` is given)."""
    f = gsc_estep_numba if resolve_backend(backend) == "numba" else gsc_estep_reference
    return f(U, G, yy, logdet_sigma, cand, states, lp, mu, psi_sq, D, moments, cross)
