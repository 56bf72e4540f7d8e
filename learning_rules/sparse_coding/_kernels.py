"""E-step kernels of the linear models (BSC): log-joints over the truncated state sets.

Both implementations share one signature and one state layout (``specs/sparse_coding.md``
section 4): for each data point the state set is the zero state, then every singleton with every
non-zero value (latent-major: ``h * K' + k``), then the ``M`` multi-cause states, which are given
once as a ``(M, H')`` matrix of values over the point's ``H'`` candidate latents ``cand[n]``.

The squared residual uses ``||y - W s||^2 = ||y||^2 - 2 s^T (W^T y) + s^T (W^T W) s``.
"""

from __future__ import annotations

import math

import numpy as np

from devices import backends

__all__ = [
    "log_joint_linear",
    "log_joint_linear_reference",
    "log_joint_linear_numba",
    "log_joint_max",
    "log_joint_max_reference",
    "log_joint_max_numba",
    "max_stats",
    "max_stats_reference",
    "max_stats_numba",
    "gsc_estep",
    "gsc_estep_reference",
    "gsc_estep_numba",
]

try:  # numba is a dependency of the package; keep a clean fallback anyway
    from numba import njit, prange

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover
    HAVE_NUMBA = False


def log_joint_linear_reference(Y, W, cand, states, log_prior_states, sigma, beta, values):
    """Annealed log-joints ``log p(s) + beta log p(y_n | s)`` of every state (numpy reference).

    Parameters
    ----------
    Y : ndarray, shape (N, D)
        Data points.
    W : ndarray, shape (D, H)
        Dictionary (column ``h`` is the field of latent ``h``).
    cand : ndarray of int, shape (N, H')
        Candidate latents of each point.
    states : ndarray, shape (M, H')
        Values of the multi-cause states over the candidate positions.
    log_prior_states : ndarray, shape (1 + H K' + M,)
        ``log p(s)`` (already multiplied by ``beta`` when the prior is annealed), in state order.
    sigma : float
        Noise standard deviation.
    beta : float
        Inverse temperature applied to ``log p(y | s)``.
    values : ndarray, shape (K',)
        The non-zero latent values (BSC: ``[1.0]``).

    Returns
    -------
    ndarray, shape (N, 1 + H K' + M)
    """
    N, D = Y.shape
    H = W.shape[1]
    const = -0.5 * D * math.log(2.0 * math.pi * sigma**2)
    yy = np.einsum("nd,nd->n", Y, Y)
    WY = Y @ W  # (N, H): W^T y_n
    G = W.T @ W  # (H, H)
    # zero state
    r2_zero = yy[:, None]
    # singletons v e_h: ||y||^2 - 2 v (W^T y)_h + v^2 G_hh, ordered (h, value)
    r2_single = (
        yy[:, None, None]
        - 2.0 * WY[:, :, None] * values[None, None, :]
        + np.diag(G)[None, :, None] * values[None, None, :] ** 2
    ).reshape(N, H * len(values))
    # multi-cause states over each point's candidates
    WYc = np.take_along_axis(WY, cand, axis=1)  # (N, H')
    Gc = G[cand[:, :, None], cand[:, None, :]]  # (N, H', H')
    lin = WYc @ states.T  # (N, M)
    quad = np.einsum("mi,nij,mj->nm", states, Gc, states)
    r2_multi = yy[:, None] - 2.0 * lin + quad
    r2 = np.concatenate([r2_zero, r2_single, r2_multi], axis=1)
    return log_prior_states[None, :] + beta * (const - r2 / (2.0 * sigma**2))


if HAVE_NUMBA:

    @njit(cache=True, parallel=True)
    def _log_joint_linear_numba(Y, W, cand, states, log_prior_states, sigma, beta, values, out):
        N, D = Y.shape
        H = W.shape[1]
        Hp = cand.shape[1]
        M = states.shape[0]
        K = values.shape[0]
        const = -0.5 * D * math.log(2.0 * math.pi * sigma * sigma)
        inv = 1.0 / (2.0 * sigma * sigma)
        G = np.zeros((H, H))
        for a in range(H):
            for b in range(H):
                acc = 0.0
                for d in range(D):
                    acc += W[d, a] * W[d, b]
                G[a, b] = acc
        # sparse form of the multi-cause states: positions and values of the non-zero entries
        nz = np.zeros((M, Hp), dtype=np.int64)
        sv = np.zeros((M, Hp))
        nnz = np.zeros(M, dtype=np.int64)
        for m in range(M):
            c = 0
            for i in range(Hp):
                if states[m, i] != 0.0:
                    nz[m, c] = i
                    sv[m, c] = states[m, i]
                    c += 1
            nnz[m] = c
        for n in prange(N):
            yy = 0.0
            for d in range(D):
                yy += Y[n, d] * Y[n, d]
            wy = np.zeros(H)
            for h in range(H):
                acc = 0.0
                for d in range(D):
                    acc += W[d, h] * Y[n, d]
                wy[h] = acc
            out[n, 0] = log_prior_states[0] + beta * (const - yy * inv)
            j = 1
            for h in range(H):
                for k in range(K):
                    v = values[k]
                    r2 = yy - 2.0 * v * wy[h] + v * v * G[h, h]
                    out[n, j] = log_prior_states[j] + beta * (const - r2 * inv)
                    j += 1
            wyc = np.empty(Hp)
            gc = np.empty((Hp, Hp))
            for i in range(Hp):
                wyc[i] = wy[cand[n, i]]
                for k in range(Hp):
                    gc[i, k] = G[cand[n, i], cand[n, k]]
            for m in range(M):
                lin = 0.0
                quad = 0.0
                for a in range(nnz[m]):
                    i = nz[m, a]
                    si = sv[m, a]
                    lin += si * wyc[i]
                    row = 0.0
                    for b in range(nnz[m]):
                        row += gc[i, nz[m, b]] * sv[m, b]
                    quad += si * row
                r2 = yy - 2.0 * lin + quad
                out[n, j + m] = log_prior_states[j + m] + beta * (const - r2 * inv)


def log_joint_linear_numba(Y, W, cand, states, log_prior_states, sigma, beta, values):
    """Numba version of :func:`log_joint_linear_reference` (parallel over data points).

    Same parameters and result as :func:`log_joint_linear_reference`.
    """
    if not HAVE_NUMBA:  # pragma: no cover
        raise RuntimeError("backend 'numba' needs the numba package (pip install numba)")
    Y = np.ascontiguousarray(Y, dtype=np.float64)
    W = np.ascontiguousarray(W, dtype=np.float64)
    cand = np.ascontiguousarray(cand, dtype=np.int64)
    states = np.ascontiguousarray(states, dtype=np.float64)
    lp = np.ascontiguousarray(log_prior_states, dtype=np.float64)
    values = np.ascontiguousarray(values, dtype=np.float64)
    out = np.empty((Y.shape[0], lp.shape[0]))
    _log_joint_linear_numba(Y, W, cand, states, lp, float(sigma), float(beta), values, out)
    return out


BACKENDS = ("numpy", "numba")


def resolve_backend(backend) -> str:
    """``None``/``"auto"`` -> numba when available, else numpy; check explicit names
    (:func:`devices.backends.resolve`)."""
    if backend is None:
        backend = "auto"
    return backends.resolve(backend, backends.CPU_BACKENDS)


def log_joint_linear(Y, W, cand, states, log_prior_states, sigma, beta, values, backend=None):
    """Dispatch to the numpy reference or the numba kernel (see the reference for parameters)."""
    if resolve_backend(backend) == "numba":
        return log_joint_linear_numba(Y, W, cand, states, log_prior_states, sigma, beta, values)
    return log_joint_linear_reference(Y, W, cand, states, log_prior_states, sigma, beta, values)


# ================================================================ max models (MCA, MMCA)
#: ``kind`` codes of the max-superposition kernels.
KIND_MCA, KIND_MMCA = 0, 1


def _smooth_max_reference(Wa, rho, kind):
    """Smooth superposition ``Wbar`` over the last axis of ``Wa`` (active fields), scaled by
    the largest magnitude so that large ``rho`` does not overflow."""
    mx = np.max(np.abs(Wa), axis=-1)
    safe = np.where(mx > 0, mx, 1.0)
    Z = Wa / safe[..., None]
    if kind == KIND_MCA:
        t = np.sum(np.abs(Z) ** rho, axis=-1)
        return np.where(mx > 0, safe * t ** (1.0 / rho), 0.0)
    t = np.sum(np.sign(Z) * np.abs(Z) ** rho, axis=-1)
    return np.where(mx > 0, safe * np.sign(t) * np.abs(t) ** (1.0 / rho), 0.0)


def _max_weights_reference(Wa, Wbar, rho, kind):
    """``A_dh`` of the max M-step for the active fields ``Wa`` (..., g) given ``Wbar`` (...)."""
    if kind == KIND_MCA:
        ratio = Wa / np.where(Wbar[..., None] != 0, Wbar[..., None], 1.0)
        ratio = np.where(Wbar[..., None] != 0, ratio, 1.0)
        return np.abs(ratio) ** (rho - 1.0)
    den = np.abs(Wbar[..., None])
    ratio = np.where(den > 0, np.abs(Wa) / np.where(den > 0, den, 1.0), 1.0)
    return np.minimum(ratio, 1.0) ** (rho - 1.0)


def log_joint_max_reference(Y, W, cand, states, log_prior_states, sigma, beta, rho, kind):
    """Log-joints of the max models (numpy reference): ``log p(s) + beta log p(y | s)``.

    Same state layout as :func:`log_joint_linear_reference` with the single non-zero value 1;
    the superposition of a multi-cause state is the smooth max with exponent ``rho``
    (``kind`` 0: MCA ``(sum_h s_h W_dh^rho)^(1/rho)``; 1: MMCA, largest magnitude wins with its
    sign). Singletons and the zero state are exact.

    Returns
    -------
    ndarray, shape (N, 1 + H + M)
    """
    N, D = Y.shape
    const = -0.5 * D * math.log(2.0 * math.pi * sigma**2)
    yy = np.einsum("nd,nd->n", Y, Y)
    r2_single = ((Y[:, :, None] - W[None, :, :]) ** 2).sum(axis=1)  # (N, H)
    M = states.shape[0]
    r2_multi = np.empty((N, M))
    Wc = np.transpose(W[:, cand], (1, 0, 2))  # (N, D, H')
    for m in range(M):
        act = np.flatnonzero(states[m])
        Wbar = _smooth_max_reference(Wc[:, :, act], rho, kind)  # (N, D)
        r2_multi[:, m] = ((Y - Wbar) ** 2).sum(axis=1)
    r2 = np.concatenate([yy[:, None], r2_single, r2_multi], axis=1)
    return log_prior_states[None, :] + beta * (const - r2 / (2.0 * sigma**2))


def max_stats_reference(Y, W, cand, states, q, rho, kind, singleton_w2=False):
    """Sufficient statistics of the max M-step (numpy reference).

    Returns
    -------
    num : ndarray, shape (D, H)
        ``sum_n sum_s q_n(s) A_dh(s) y_nd``.
    den : ndarray, shape (D, H)
        ``sum_n sum_s q_n(s) A_dh(s)``.
    r2 : float
        ``sum_n sum_s q_n(s) ||y_n - Wbar(s)||^2``.
    """
    H = W.shape[1]
    qs = q[:, 1 : 1 + H]
    A1 = W**2 if singleton_w2 else np.ones_like(W)
    num = (Y.T @ qs) * A1
    den = qs.sum(axis=0)[None, :] * A1
    r2 = float(q[:, 0] @ np.einsum("nd,nd->n", Y, Y))
    r2 += float(np.sum(qs * ((Y[:, :, None] - W[None, :, :]) ** 2).sum(axis=1)))
    Wc = np.transpose(W[:, cand], (1, 0, 2))
    for m in range(states.shape[0]):
        act = np.flatnonzero(states[m])
        qm = q[:, 1 + H + m]
        Wa = Wc[:, :, act]  # (N, D, g)
        Wbar = _smooth_max_reference(Wa, rho, kind)
        r2 += float(qm @ ((Y - Wbar) ** 2).sum(axis=1))
        A = _max_weights_reference(Wa, Wbar, rho, kind) * qm[:, None, None]  # (N, D, g)
        h = cand[:, act]  # (N, g)
        for j in range(len(act)):
            np.add.at(num.T, h[:, j], A[:, :, j] * Y)
            np.add.at(den.T, h[:, j], A[:, :, j])
    return num, den, r2


def _max_tables(W, rho):
    """Per-pixel scale ``Wmax_d = max_h |W_dh|``, ``P = (|W| / Wmax)^rho`` (signed for MMCA via
    ``sgn``) and ``Q = P^((rho - 1) / rho)``: the kernels need one power per (point, state,
    pixel) instead of one per active field."""
    Wmax = np.max(np.abs(W), axis=1)
    safe = np.where(Wmax > 0, Wmax, 1.0)
    R = np.abs(W) / safe[:, None]
    P = R**rho
    Q = R ** (rho - 1.0)
    return np.ascontiguousarray(Wmax), np.ascontiguousarray(P), np.ascontiguousarray(Q)


def _log_joint_max_py(Y, W, Wmax, P, cand, states, log_prior_states, sigma, beta, rho, kind, out):
    N, D = Y.shape
    H = W.shape[1]
    Hp = cand.shape[1]
    M = states.shape[0]
    const = -0.5 * D * math.log(2.0 * math.pi * sigma * sigma)
    inv = 1.0 / (2.0 * sigma * sigma)
    for n in prange(N):
        yy = 0.0
        for d in range(D):
            yy += Y[n, d] * Y[n, d]
        out[n, 0] = log_prior_states[0] + beta * (const - yy * inv)
        for h in range(H):
            r2 = 0.0
            for d in range(D):
                e = Y[n, d] - W[d, h]
                r2 += e * e
            out[n, 1 + h] = log_prior_states[1 + h] + beta * (const - r2 * inv)
        act = np.empty(Hp, dtype=np.int64)
        for m in range(M):
            g = 0
            for i in range(Hp):
                if states[m, i] != 0.0:
                    act[g] = cand[n, i]
                    g += 1
            r2 = 0.0
            for d in range(D):
                t = _tsum(W, P, d, act, g, kind)
                wb = _wbar_t(t, Wmax[d], rho)
                e = Y[n, d] - wb
                r2 += e * e
            out[n, 1 + H + m] = log_prior_states[1 + H + m] + beta * (const - r2 * inv)


def _tsum_py(W, P, d, act, g, kind):
    t = 0.0
    for a in range(g):
        h = act[a]
        if kind == 0 or W[d, h] > 0:
            t += P[d, h]
        elif W[d, h] < 0:
            t -= P[d, h]
    return t


def _wbar_t(t, wmax, rho):
    if wmax == 0.0 or t == 0.0:
        return 0.0
    if t > 0:
        return wmax * t ** (1.0 / rho)
    return -wmax * (-t) ** (1.0 / rho)


def _max_stats_py(Y, W, Wmax, P, Q, cand, states, q, rho, kind, singleton_w2, num, den):
    """Serial accumulation (no races); returns the expected squared residual."""
    N, D = Y.shape
    H = W.shape[1]
    Hp = cand.shape[1]
    M = states.shape[0]
    ex = (rho - 1.0) / rho
    r2 = 0.0
    act = np.empty(Hp, dtype=np.int64)
    for n in range(N):
        yy = 0.0
        for d in range(D):
            yy += Y[n, d] * Y[n, d]
        r2 += q[n, 0] * yy
        for h in range(H):
            qh = q[n, 1 + h]
            if qh == 0.0:
                continue
            acc = 0.0
            for d in range(D):
                e = Y[n, d] - W[d, h]
                acc += e * e
                a = W[d, h] * W[d, h] if singleton_w2 else 1.0
                num[d, h] += qh * a * Y[n, d]
                den[d, h] += qh * a
            r2 += qh * acc
        for m in range(M):
            qm = q[n, 1 + H + m]
            if qm == 0.0:
                continue
            g = 0
            for i in range(Hp):
                if states[m, i] != 0.0:
                    act[g] = cand[n, i]
                    g += 1
            acc = 0.0
            for d in range(D):
                t = _tsum(W, P, d, act, g, kind)
                # one power per pixel: |t|^(1/rho) = |t| |t|^(-ex), and
                # A_dh = (|W_dh| / |Wbar_d|)^(rho - 1) = Q_dh |t|^(-ex)
                if t == 0.0 or Wmax[d] == 0.0:
                    wb = 0.0
                    scale = 0.0
                else:
                    scale = abs(t) ** (-ex)
                    wb = Wmax[d] * t * scale
                e = Y[n, d] - wb
                acc += e * e
                for a in range(g):
                    h = act[a]
                    A = Q[d, h] * scale if wb != 0.0 else 1.0
                    if kind == 1 and A > 1.0:
                        A = 1.0
                    num[d, h] += qm * A * Y[n, d]
                    den[d, h] += qm * A
            r2 += qm * acc
    return r2


if HAVE_NUMBA:
    _tsum = njit(cache=True)(_tsum_py)
    _wbar_t = njit(cache=True)(_wbar_t)
    _log_joint_max_par = njit(cache=True, parallel=True)(_log_joint_max_py)
    _max_stats_nb = njit(cache=True)(_max_stats_py)


def log_joint_max_numba(Y, W, cand, states, log_prior_states, sigma, beta, rho, kind):
    """Numba version of :func:`log_joint_max_reference` (parallel over data points)."""
    if not HAVE_NUMBA:  # pragma: no cover
        raise RuntimeError("backend 'numba' needs the numba package (pip install numba)")
    lp = np.ascontiguousarray(log_prior_states, dtype=np.float64)
    out = np.empty((Y.shape[0], lp.shape[0]))
    W = np.ascontiguousarray(W, dtype=np.float64)
    Wmax, P, _ = _max_tables(W, float(rho))
    _log_joint_max_par(
        np.ascontiguousarray(Y, dtype=np.float64),
        W,
        Wmax,
        P,
        np.ascontiguousarray(cand, dtype=np.int64),
        np.ascontiguousarray(states, dtype=np.float64),
        lp,
        float(sigma),
        float(beta),
        float(rho),
        int(kind),
        out,
    )
    return out


def max_stats_numba(Y, W, cand, states, q, rho, kind, singleton_w2=False):
    """Numba version of :func:`max_stats_reference`."""
    if not HAVE_NUMBA:  # pragma: no cover
        raise RuntimeError("backend 'numba' needs the numba package (pip install numba)")
    D, H = W.shape
    num = np.zeros((D, H))
    den = np.zeros((D, H))
    W = np.ascontiguousarray(W, dtype=np.float64)
    Wmax, P, Q = _max_tables(W, float(rho))
    r2 = _max_stats_nb(
        np.ascontiguousarray(Y, dtype=np.float64),
        W,
        Wmax,
        P,
        Q,
        np.ascontiguousarray(cand, dtype=np.int64),
        np.ascontiguousarray(states, dtype=np.float64),
        np.ascontiguousarray(q, dtype=np.float64),
        float(rho),
        int(kind),
        bool(singleton_w2),
        num,
        den,
    )
    return num, den, float(r2)


def log_joint_max(Y, W, cand, states, lp, sigma, beta, rho, kind, backend=None):
    """Dispatch for the max models' log-joints."""
    if resolve_backend(backend) == "numba":
        return log_joint_max_numba(Y, W, cand, states, lp, sigma, beta, rho, kind)
    return log_joint_max_reference(Y, W, cand, states, lp, sigma, beta, rho, kind)


def max_stats(Y, W, cand, states, q, rho, kind, singleton_w2=False, backend=None):
    """Dispatch for the max models' sufficient statistics."""
    if resolve_backend(backend) == "numba":
        return max_stats_numba(Y, W, cand, states, q, rho, kind, singleton_w2)
    return max_stats_reference(Y, W, cand, states, q, rho, kind, singleton_w2)


# ================================================================ GSC (spike-and-slab)
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
