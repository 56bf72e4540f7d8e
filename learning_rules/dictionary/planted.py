"""Planted problems of the acceptance checks (``specs/dictionary_learning.md`` section 10).

Each generator returns ``(X, y, W_star, H_star)`` in scikit-learn layout: ``X`` is
``(n, p)``, ``y`` ``(n,)``, ``W_star`` ``(p, r)`` and ``H_star`` ``(r, n)`` (columns are samples in
the spec's math). All draws come from ``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["planted_nmf", "planted_sub", "planted_disc", "PLANTED_TRAIN"]

#: Training sizes of the planted problems (the rest is the test set).
PLANTED_TRAIN = {"nmf": 800, "sub": 400, "disc": 400}


def _sigmoid(u):
    return 1.0 / (1.0 + np.exp(-u))


def planted_nmf(seed: int, *, p: int = 50, r: int = 6, n: int = 1000, noise: float = 0.1):
    """P-NMF: sparse nonnegative ``W*`` (entries ``U[0,1)`` kept with probability 0.3, columns
    normalized), 3 active atoms per column of ``H*`` with values ``U[0.5, 1.5]``, Gaussian noise,
    ``y ~ Bernoulli(sigmoid(u - mean(u)))`` with ``u = 4 h_1 - 4 h_2``."""
    rng = np.random.default_rng(seed)
    W = rng.random((p, r)) * (rng.random((p, r)) < 0.3)
    for j in range(r):  # guard against an empty column
        if not W[:, j].any():
            W[rng.integers(p), j] = rng.random() + 0.1
    W /= np.linalg.norm(W, axis=0)
    H = np.zeros((r, n))
    for i in range(n):
        act = rng.choice(r, size=3, replace=False)
        H[act, i] = rng.uniform(0.5, 1.5, size=3)
    X = W @ H + noise * rng.standard_normal((p, n))
    u = 4.0 * H[0] - 4.0 * H[1]
    y = (rng.random(n) < _sigmoid(u - u.mean())).astype(np.int64)
    return X.T, y, W, H


def planted_sub(seed: int, *, p: int = 40, r: int = 4, n: int = 600, noise: float = 0.1,
                multiclass: bool = False):  # fmt: skip
    """P-sub: Gaussian ``W*`` with normalized columns, ``H* ~ N(0, 1)``, noise 0.1,
    ``y ~ Bernoulli(sigmoid((2, -2, 1, 0) . h))``; ``multiclass=True`` gives the K = 3 labels
    ``argmax(h_1, h_2, h_3)``."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((p, r))
    W /= np.linalg.norm(W, axis=0)
    H = rng.standard_normal((r, n))
    X = W @ H + noise * rng.standard_normal((p, n))
    coef = np.zeros(r)
    coef[: min(r, 4)] = np.array([2.0, -2.0, 1.0, 0.0])[: min(r, 4)]
    u = coef @ H
    y = (rng.random(n) < _sigmoid(u)).astype(np.int64)
    if multiclass:
        y = np.argmax(H[:3], axis=0).astype(np.int64)
    return X.T, y, W, H


def planted_disc(seed: int, *, p: int = 40, n: int = 600, noise: float = 0.1):
    """P-disc: orthonormal ``[W_s, u]`` (QR of a Gaussian), strong codes ``N(0, 9)`` on the 3
    columns of ``W_s``, a weak code ``N(0, 0.25)`` on ``u``, ``y ~ Bernoulli(sigmoid(8 h_u))``.
    Returns ``W_star = [W_s, u]`` and the 4 codes."""
    rng = np.random.default_rng(seed)
    Q = np.linalg.qr(rng.standard_normal((p, 4)))[0]
    Hs = 3.0 * rng.standard_normal((3, n))
    hu = 0.5 * rng.standard_normal(n)
    H = np.vstack([Hs, hu])
    X = Q @ H + noise * rng.standard_normal((p, n))
    y = (rng.random(n) < _sigmoid(8.0 * hu)).astype(np.int64)
    return X.T, y, Q, H
