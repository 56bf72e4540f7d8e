"""E-step kernels of the linear (BSC, TSC, DSC) and max (MCA, MMCA) models over the truncated
state sets (GSC's kernels: ``_kernels_gsc``).

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
