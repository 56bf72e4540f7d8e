"""Lasso codes by cyclic coordinate descent: numba kernel and numpy reference.

For each column ``x`` of ``X`` solve ``min_a (1/2) ||x - D a||^2 + alpha ||a||_1`` (``a >= 0`` when
``positive``) with the Gram matrix ``G = D^T D`` and ``c = D^T x``. One sweep updates
``a_j <- S(a_j + (c_j - (G a)_j) / G_jj, alpha / G_jj)`` for ``j = 0..r-1`` in order; a column
stops after the sweep whose largest change is ``<= tol * max(|a|)`` or after ``max_iter`` sweeps.
Both implementations do the same operations in the same order.
"""

from __future__ import annotations

import numpy as np

__all__ = ["lasso_cd", "lasso_cd_reference", "lasso_cd_numba", "BACKENDS"]

BACKENDS = ("numpy", "numba")

try:
    from numba import njit, prange

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover
    HAVE_NUMBA = False


def _coordinate(old, rcj, gjj, alpha, positive):
    """One coordinate update ``S(a_j + rc_j / G_jj, alpha / G_jj)`` (``rc_j = (c - G a)_j``);
    the soft threshold clips at 0 when ``positive``. Shared by the reference and the kernel."""
    z = old + rcj / gjj
    t = alpha / gjj
    if positive:
        return z - t if z > t else 0.0
    if z > t:
        return z - t
    if z < -t:
        return z + t
    return 0.0


def lasso_cd_reference(G, C, A0, alpha, positive, max_iter, tol):
    """Numpy reference (a Python loop per column and coordinate: slow, the ground truth).

    Parameters
    ----------
    G : ndarray (r, r)
        ``D^T D``.
    C : ndarray (r, n)
        ``D^T X``.
    A0 : ndarray (r, n)
        Start (copied).
    alpha : float
    positive : bool
    max_iter : int
    tol : float

    Returns
    -------
    ndarray (r, n)
    """
    r, n = C.shape
    A = np.array(A0, dtype=np.float64, copy=True)
    for i in range(n):
        a = A[:, i]
        # residual correlation c - G a, kept up to date
        rc = C[:, i] - G @ a
        for _ in range(max_iter):
            dmax = 0.0
            amax = 0.0
            for j in range(r):
                gjj = G[j, j]
                if gjj <= 0.0:
                    continue
                old = a[j]
                new = _coordinate(old, rc[j], gjj, alpha, positive)
                d = new - old
                if d != 0.0:
                    a[j] = new
                    rc -= d * G[:, j]
                if abs(d) > dmax:
                    dmax = abs(d)
                if abs(new) > amax:
                    amax = abs(new)
            if dmax <= tol * amax or amax == 0.0:
                break
    return A


if HAVE_NUMBA:
    _coordinate_jit = njit(cache=True, inline="always")(_coordinate)

    @njit(cache=True, parallel=True)
    def _lasso_cd_numba(G, C, A, alpha, positive, max_iter, tol):  # pragma: no cover - jit
        r, n = C.shape
        for i in prange(n):
            rc = np.empty(r)
            for k in range(r):
                s = C[k, i]
                for j in range(r):
                    s -= G[k, j] * A[j, i]
                rc[k] = s
            for _ in range(max_iter):
                dmax = 0.0
                amax = 0.0
                for j in range(r):
                    gjj = G[j, j]
                    if gjj <= 0.0:
                        continue
                    old = A[j, i]
                    new = _coordinate_jit(old, rc[j], gjj, alpha, positive)
                    d = new - old
                    if d != 0.0:
                        A[j, i] = new
                        for k in range(r):
                            rc[k] -= d * G[k, j]
                    if abs(d) > dmax:
                        dmax = abs(d)
                    if abs(new) > amax:
                        amax = abs(new)
                if dmax <= tol * amax or amax == 0.0:
                    break
        return A


def lasso_cd_numba(G, C, A0, alpha, positive, max_iter, tol):
    """Numba kernel (parallel over columns); same arguments as :func:`lasso_cd_reference`."""
    if not HAVE_NUMBA:  # pragma: no cover
        raise ValueError("backend='numba' needs the numba package")
    A = np.array(A0, dtype=np.float64, copy=True, order="C")
    return _lasso_cd_numba(
        np.ascontiguousarray(G, dtype=np.float64),
        np.ascontiguousarray(C, dtype=np.float64),
        A,
        float(alpha),
        bool(positive),
        int(max_iter),
        float(tol),
    )


def lasso_cd(G, C, A0, alpha, positive=False, max_iter=1000, tol=1e-4, backend="numba"):
    """Dispatch to the numba kernel (default) or the numpy reference."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "numba" and HAVE_NUMBA:
        return lasso_cd_numba(G, C, A0, alpha, positive, max_iter, tol)
    return lasso_cd_reference(G, C, A0, alpha, positive, max_iter, tol)
