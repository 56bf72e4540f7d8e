"""Truncated state sets of Expectation Truncation (``specs/sparse_coding.md`` section 4).

:func:`multi_cause_states` lists the states with 2..gamma causes among ``H'`` candidates,
:func:`prior_mass` gives ET's ``A`` and ``B``, :class:`StateSet` holds one ``(H, H', gamma,
values)`` set with its moments; used by :class:`~learning_rules.sparse_coding.ETModel`.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy.special import comb

__all__ = ["StateSet", "check_int", "multi_cause_states", "prior_mass"]


def multi_cause_states(h_prime: int, gamma: int, values=(1.0,)) -> np.ndarray:
    """Every state with 2 to ``gamma`` non-zero entries over ``h_prime`` candidate positions.

    Parameters
    ----------
    h_prime : int
        Number of candidate positions.
    gamma : int
        Largest number of non-zero entries.
    values : sequence of float
        The non-zero values (every combination of them is listed).

    Returns
    -------
    ndarray, shape (M, h_prime)
        Ordered by number of causes, then by position combination, then by value combination.
    """
    rows = []
    for g in range(2, gamma + 1):
        for pos in itertools.combinations(range(h_prime), g):
            for vals in itertools.product(values, repeat=g):
                r = np.zeros(h_prime)
                r[list(pos)] = vals
                rows.append(r)
    if not rows:
        return np.zeros((0, h_prime))
    return np.array(rows)


def prior_mass(pi: float, H: int, gamma: int) -> tuple[float, float]:
    """Prior mass ``A(pi, gamma)`` and activity ``B(pi, gamma)`` of states with <= gamma causes.

    Parameters
    ----------
    pi : float
        Probability that one latent is non-zero.
    H : int
        Number of latents.
    gamma : int
        Largest number of active latents kept by ET.

    Returns
    -------
    A, B : float
        ``A = sum_{g<=gamma} C(H,g) pi^g (1-pi)^(H-g)``, ``B = sum_{g<=gamma} g C(H,g) ...``.
    """
    g = np.arange(gamma + 1)
    p = comb(H, g) * pi**g * (1.0 - pi) ** (H - g)
    return float(p.sum()), float((g * p).sum())


def check_int(name, value, lo, hi=None):
    """``value`` as an int in ``[lo, hi]``, else a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ValueError(f"{name} must be {rng}, got {value!r}")
    return int(value)


class StateSet:
    """The truncated state set of one ``(H, H', gamma, values)``.

    State order (every point): the zero state, the singletons latent-major (``1 + h K' + k`` for
    value ``values[k]``), then the ``M`` multi-cause states over the point's candidates.

    Attributes
    ----------
    states : ndarray, shape (M, H')
        Multi-cause states over the candidate positions.
    outer : ndarray, shape (M, H'^2)
        ``s s^T`` of every multi-cause state, flattened.
    n_active : ndarray, shape (S,)
        ``|s|`` of every state.
    counts : ndarray, shape (S, 1 + K')
        Number of zeros (column 0) and of each non-zero value per state.
    """

    def __init__(self, H: int, h_prime: int, gamma: int, values):
        self.H, self.h_prime, self.gamma = int(H), int(h_prime), int(gamma)
        self.values = np.asarray(values, dtype=np.float64)
        K = len(self.values)
        st = multi_cause_states(h_prime, gamma, self.values)
        self.states = st
        self.outer = (st[:, :, None] * st[:, None, :]).reshape(len(st), self.h_prime**2)
        self.n_single = H * K
        self.n_active = np.concatenate(
            [[0.0], np.ones(H * K), np.count_nonzero(st, axis=1).astype(np.float64)]
        )
        S = len(self.n_active)
        C = np.zeros((S, 1 + K))
        for k in range(K):
            C[1 + k : 1 + H * K : K, 1 + k] = 1.0
            C[1 + H * K :, 1 + k] = np.count_nonzero(st == self.values[k], axis=1)
        C[:, 0] = H - self.n_active
        self.counts = C
        self.n_states = S

    # ---------------------------------------------------------------- moments over the set
    def mean(self, q, cand):
        """Per-point posterior mean ``<s>`` (N, H)."""
        N = q.shape[0]
        H, K = self.H, len(self.values)
        Es = q[:, 1 : 1 + H * K].reshape(N, H, K) @ self.values
        qm = q[:, 1 + H * K :]
        if qm.shape[1]:
            Es[np.arange(N)[:, None], cand] += qm @ self.states
        return Es

    def second_moment(self, q, cand):
        """Sum over points of ``<s s^T>`` (H, H)."""
        H, K = self.H, len(self.values)
        N = q.shape[0]
        qs = q[:, 1 : 1 + H * K].reshape(N, H, K)
        Ess = np.diag((qs @ self.values**2).sum(axis=0))
        qm = q[:, 1 + H * K :]
        if qm.shape[1]:
            local = qm @ self.outer
            idx = cand[:, :, None] * H + cand[:, None, :]
            Ess += np.bincount(idx.ravel(), weights=local.ravel(), minlength=H * H).reshape(H, H)
        return Ess

    def marginals(self, q, cand):
        """``P(s_h != 0)`` per point (N, H)."""
        N = q.shape[0]
        H, K = self.H, len(self.values)
        P = q[:, 1 : 1 + H * K].reshape(N, H, K).sum(axis=2)
        qm = q[:, 1 + H * K :]
        if qm.shape[1]:
            P[np.arange(N)[:, None], cand] += qm @ (self.states != 0)
        return P

    def vectors(self, idx, cand):
        """Full ``(N, k, H)`` state vectors of state indices ``idx`` (N, k)."""
        N, k = idx.shape
        H, K = self.H, len(self.values)
        S = np.zeros((N, k, H))
        single = (idx >= 1) & (idx < 1 + H * K)
        j = np.where(single, idx - 1, 0)
        hh, vv = j // K, j % K
        n_i, k_i = np.nonzero(single)
        S[n_i, k_i, hh[single]] = self.values[vv[single]]
        multi = idx >= 1 + H * K
        n_i, k_i = np.nonzero(multi)
        local = self.states[idx[multi] - 1 - H * K]
        S[n_i[:, None], k_i[:, None], cand[n_i]] = local
        return S
