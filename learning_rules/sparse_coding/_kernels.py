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

__all__ = ["log_joint_linear", "log_joint_linear_reference", "log_joint_linear_numba"]

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
    """``None``/``"auto"`` -> numba when available, else numpy; check explicit names."""
    if backend is None or backend == "auto":
        return "numba" if HAVE_NUMBA else "numpy"
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS} or 'auto'/None, got {backend!r}")
    if backend == "numba" and not HAVE_NUMBA:  # pragma: no cover
        raise ValueError("backend='numba' needs the numba package (pip install numba)")
    return backend


def log_joint_linear(Y, W, cand, states, log_prior_states, sigma, beta, values, backend=None):
    """Dispatch to the numpy reference or the numba kernel (see the reference for parameters)."""
    if resolve_backend(backend) == "numba":
        return log_joint_linear_numba(Y, W, cand, states, log_prior_states, sigma, beta, values)
    return log_joint_linear_reference(Y, W, cand, states, log_prior_states, sigma, beta, values)
