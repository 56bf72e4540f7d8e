"""Binary Sparse Coding trained with Expectation Truncation (``specs/sparse_coding.md``).

Model: ``s_h ~ Bernoulli(pi)`` (one scalar ``pi``), ``y = W s + N(0, sigma^2 I)``. The posterior of
each point is truncated to ``K_n`` = zero state, every singleton, and every state with 2 to
``gamma`` active latents among the point's ``H'`` candidates (selected by the cosine between
``y`` and the fields). Deterministic annealing (temperature ``T``) and ET's data truncation follow
a :class:`~learning_rules.sparse_coding.Schedule`.
"""

from __future__ import annotations

import inspect
import itertools
import math

import numpy as np
from scipy.special import comb, logsumexp

from ._kernels import log_joint_linear, resolve_backend
from .schedule import Schedule, as_schedule, bsc_schedule, tsc_schedule

__all__ = ["BSC", "TSC", "multi_cause_states", "prior_mass"]

_PI_MIN = 1e-5
_SIGMA_MIN = 1e-6


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
        Probability that one latent is active.
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


def _check_int(name, value, lo, hi=None):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ValueError(f"{name} must be {rng}, got {value!r}")
    return int(value)


def _check_data(Y, name="Y", D=None):
    try:
        Y = np.asarray(Y, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be a numeric array of shape (n_samples, n_features)"
        ) from None
    if Y.ndim != 2 or Y.shape[0] < 1 or Y.shape[1] < 1:
        raise ValueError(f"{name} must have shape (n_samples, n_features), got {Y.shape}")
    if D is not None and Y.shape[1] != D:
        raise ValueError(f"{name} must have {D} features (as in fit), got {Y.shape[1]}")
    if not np.all(np.isfinite(Y)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return Y


class BSC:
    """Binary Sparse Coding with Expectation Truncation (scikit-learn style).

    Parameters
    ----------
    n_components : int
        Number of latents ``H``.
    h_prime : int, optional
        Candidate latents per point ``H'`` (``gamma <= h_prime <= n_components``); default
        ``min(n_components, 8)``.
    gamma : int, optional
        Most active latents in a truncated state (``1 <= gamma <= h_prime``); default
        ``min(h_prime, 5)``.
    schedule : Schedule or dict, optional
        Annealing schedule (section 5 of the spec); a dict gives the curves, ``n_iter`` the steps.
        Default: the published BSC schedule (``T`` 5 -> 1 at 0.8, ``Ncut_factor`` 0 -> 1 at 2/3)
        when ``anneal`` is True, else ``T = 1`` and no data truncation.
    n_iter : int, optional
        EM iterations of :meth:`fit` (default ``schedule.steps``, or 150).
    anneal : bool
        Choose the default schedule (ignored when ``schedule`` is given).
    learn : tuple of str
        Parameters to learn, a subset of ``("W", "pi", "sigma")``.
    random_state : int, numpy.random.Generator or None
        Seed of the initialization and of the schedule's noise keys.
    backend : {"auto", "numpy", "numba"} or None
        E-step kernel (default numba when available).

    Attributes
    ----------
    W_ : ndarray, shape (n_features, n_components)
        Learned fields (columns).
    pi_, sigma_ : float
        Learned prior activation and noise level.
    log_likelihood_ : ndarray
        Truncated log-likelihood per data point, one per iteration (evaluated at ``T = 1`` with the
        parameters that entered the iteration, on the kept points).
    n_use_ : ndarray of int
        Points kept by data truncation, per iteration.
    pi_history_, sigma_history_ : ndarray
        ``pi`` and ``sigma`` after each iteration.
    schedule_values_ : dict of str to ndarray
        ``T`` and ``Ncut_factor`` used at each iteration.
    n_iter_ : int
        EM iterations done.

    Examples
    --------
    >>> from learning_rules.sparse_coding import BSC, bars_dictionary, bars_data
    >>> W_gt = 10 * bars_dictionary(10)
    >>> Y, _ = bars_data("bsc", {"W": W_gt, "pi": 0.2, "sigma": 2.0}, 500, 0)
    >>> model = BSC(10, h_prime=8, gamma=5, n_iter=30, random_state=0).fit(Y)  # doctest: +SKIP
    """

    values = np.array([1.0])
    _default_schedule = staticmethod(bsc_schedule)
    _default_steps = 150

    def __init__(
        self,
        n_components: int,
        *,
        h_prime: int | None = None,
        gamma: int | None = None,
        schedule: Schedule | dict | None = None,
        n_iter: int | None = None,
        anneal: bool = True,
        learn: tuple[str, ...] = ("W", "pi", "sigma"),
        random_state=None,
        backend: str | None = None,
    ):
        self.n_components = n_components
        self.h_prime = h_prime
        self.gamma = gamma
        self.schedule = schedule
        self.n_iter = n_iter
        self.anneal = anneal
        self.learn = learn
        self.random_state = random_state
        self.backend = backend

    # ------------------------------------------------------------------ sklearn plumbing
    def get_params(self, deep: bool = True) -> dict:
        """Constructor parameters (scikit-learn convention)."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {n: getattr(self, n) for n in names}

    def set_params(self, **params):
        """Set constructor parameters; returns self."""
        valid = self.get_params()
        for k, v in params.items():
            if k not in valid:
                raise ValueError(
                    f"invalid parameter {k!r} for {type(self).__name__}; valid: {sorted(valid)}"
                )
            setattr(self, k, v)
        return self

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(n_components={self.n_components!r}, "
            f"h_prime={self.h_prime!r}, gamma={self.gamma!r})"
        )

    # ------------------------------------------------------------------ validation
    def _validate(self):
        H = _check_int("n_components", self.n_components, 1)
        hp = min(H, 8) if self.h_prime is None else _check_int("h_prime", self.h_prime, 1, H)
        if self.h_prime is not None and self.h_prime > H:  # pragma: no cover - caught above
            raise ValueError
        g = min(hp, 5) if self.gamma is None else _check_int("gamma", self.gamma, 1, hp)
        if not isinstance(self.anneal, (bool, np.bool_)):
            raise ValueError(f"anneal must be a bool, got {self.anneal!r}")
        schedule = as_schedule(
            self.schedule, self.n_iter, self.anneal, self._default_schedule, self._default_steps
        )
        learn = (self.learn,) if isinstance(self.learn, str) else tuple(self.learn)
        bad = [p for p in learn if p not in ("W", "pi", "sigma")]
        if bad:
            raise ValueError(f"learn must be a subset of ('W', 'pi', 'sigma'), got {self.learn!r}")
        backend = resolve_backend(self.backend)
        rs = self.random_state
        if not (rs is None or isinstance(rs, np.random.Generator)):
            _check_int("random_state", rs, 0)
        self._H, self._hp, self._gamma = H, hp, g
        self._schedule, self._learn, self._backend = schedule, set(learn), backend
        self._states = multi_cause_states(hp, g, self.values)
        st = self._states
        self._state_outer = (st[:, :, None] * st[:, None, :]).reshape(len(st), -1)
        self._n_active = np.concatenate(
            [[0.0], np.ones(H * len(self.values)), np.count_nonzero(self._states, axis=1)]
        )

    # ------------------------------------------------------------------ model pieces
    def _log_prior_states(self, pi):
        H = self._H
        return H * math.log1p(-pi) + self._n_active * math.log(pi / (1.0 - pi))

    def _prior_mass(self, pi):
        return prior_mass(pi, self._H, self._gamma)

    def _pi_update(self, pi, mean_activity):
        # pi_new = (pi H A / B) <|s|> / H: the factor pi H A / B corrects for the states ET
        # leaves out (1 when gamma = H); a fixed point satisfies B / A = <|s|>.
        A, B = self._prior_mass(pi)
        return pi * A / B * mean_activity

    def _init_params(self, Y, rng):
        sigma0 = float(np.mean(np.std(Y, axis=0)))
        sigma0 = max(sigma0, 1e-3)
        W = np.mean(Y, axis=0)[:, None] + rng.normal(0.0, sigma0 / 4.0, (Y.shape[1], self._H))
        return W, 1.0 / self._H, sigma0

    def _draw_states(self, rng, n):
        return (rng.random((n, self._H)) < self.pi_).astype(np.float64)

    def _select(self, Y, W):
        """Candidates: the ``H'`` latents with the largest cosine ``<W_h, y>/(|W_h| |y|)``."""
        wn = np.linalg.norm(W, axis=0)
        yn = np.linalg.norm(Y, axis=1)
        score = (Y @ W) / np.maximum(wn[None, :] * yn[:, None], 1e-300)
        cand = np.argsort(-score, axis=1, kind="stable")[:, : self._hp]
        return np.sort(cand, axis=1).astype(np.int64)

    # ------------------------------------------------------------------ E-step
    def _estep(self, Y, W, pi, sigma, beta=1.0, anneal_prior=False):
        """Log-joints at T = 1 and the annealed posterior over each point's state set."""
        cand = self._select(Y, W)
        lp = self._log_prior_states(pi)
        lj = log_joint_linear(
            Y, W, cand, self._states, lp, sigma, 1.0, self.values, backend=self._backend
        )
        if beta == 1.0:
            F = lj
        else:
            F = (beta if anneal_prior else 1.0) * lp[None, :] + beta * (lj - lp[None, :])
        logZ = logsumexp(F, axis=1)
        q = np.exp(F - logZ[:, None])
        return cand, lj, logZ, q

    def _moments(self, q, cand):
        """Per-point ``<s>`` (N, H) and the sum over points of ``<s s^T>`` (H, H)."""
        N = q.shape[0]
        H, K = self._H, len(self.values)
        qs = q[:, 1 : 1 + H * K].reshape(N, H, K)
        qm = q[:, 1 + H * K :]
        Es = self._mean(q, cand)
        Ess = np.diag((qs @ self.values**2).sum(axis=0))
        if qm.shape[1]:
            local = qm @ self._state_outer  # (N, H'^2): sum_m q_nm s_m s_m^T
            idx = cand[:, :, None] * H + cand[:, None, :]
            Ess += np.bincount(idx.ravel(), weights=local.ravel(), minlength=H * H).reshape(H, H)
        return Es, Ess

    def _mean(self, q, cand):
        """Per-point posterior mean ``<s>`` (N, H)."""
        N = q.shape[0]
        H, K = self._H, len(self.values)
        Es = q[:, 1 : 1 + H * K].reshape(N, H, K) @ self.values
        qm = q[:, 1 + H * K :]
        if qm.shape[1]:
            Es[np.arange(N)[:, None], cand] += qm @ self._states
        return Es

    def _marginals(self, q, cand):
        """``P(s_h != 0)`` per point."""
        N = q.shape[0]
        H, K = self._H, len(self.values)
        P = q[:, 1 : 1 + H * K].reshape(N, H, K).sum(axis=2)
        qm = q[:, 1 + H * K :]
        if qm.shape[1]:
            P[np.arange(N)[:, None], cand] += qm @ (self._states != 0)
        return P

    # ------------------------------------------------------------------ EM
    def _check_fitted(self):
        if not hasattr(self, "W_"):
            raise ValueError(f"this {type(self).__name__} is not fitted yet; call fit first")

    def _reset(self, Y):
        self._validate()
        rs = self.random_state
        self._rng = rs if isinstance(rs, np.random.Generator) else np.random.default_rng(rs)
        self.W_, self.pi_, self.sigma_ = self._init_params(Y, self._rng)
        self.n_features_in_ = Y.shape[1]
        self.n_iter_ = 0
        self._hist = {k: [] for k in ("log_likelihood", "n_use", "pi", "sigma", "T", "Ncut_factor")}
        self._publish()

    def _publish(self):
        h = self._hist
        self.log_likelihood_ = np.array(h["log_likelihood"], dtype=np.float64)
        self.n_use_ = np.array(h["n_use"], dtype=np.int64)
        self.pi_history_ = np.array(h["pi"], dtype=np.float64)
        self.sigma_history_ = np.array(h["sigma"], dtype=np.float64)
        self.schedule_values_ = {k: np.array(h[k], dtype=np.float64) for k in ("T", "Ncut_factor")}

    def _em_step(self, Y):
        t = self.n_iter_
        v = self._schedule.values(t)
        rng = self._rng
        beta = 1.0 / v["T"]
        if 0.0 < v["partial"] < 1.0:
            n_sub = max(1, int(math.floor(v["partial"] * Y.shape[0])))
            Y = Y[np.sort(rng.choice(Y.shape[0], n_sub, replace=False))]
        W, pi, sigma = self.W_, self.pi_, self.sigma_
        if v["W_noise"] > 0:
            W = W + rng.normal(0.0, v["W_noise"], W.shape)
        if v["pi_noise"] > 0:
            pi = float(np.clip(pi + rng.normal(0.0, v["pi_noise"]), _PI_MIN, 1 - _PI_MIN))
        if v["sigma_noise"] > 0:
            sigma = max(sigma + rng.normal(0.0, v["sigma_noise"]), _SIGMA_MIN)
        cand, lj, logZ, q = self._estep(Y, W, pi, sigma, beta, v["anneal_prior"] > 0.5)
        # ET data truncation: keep the points with the largest Z_n (ties by index)
        N = Y.shape[0]
        A, _ = self._prior_mass(pi)
        n_use = int(math.floor(N * (1.0 - (1.0 - A) * v["Ncut_factor"])))
        n_use = min(max(n_use, 1), N)
        keep = np.sort(np.argsort(-logZ, kind="stable")[:n_use])
        L = float(np.mean(logsumexp(lj[keep], axis=1)) - math.log(A))
        Yk, qk, ck = Y[keep], q[keep], cand[keep]
        if v["data_noise"] > 0:
            Yk = Yk + rng.normal(0.0, v["data_noise"], Yk.shape)
        Es, S_ss = self._moments(qk, ck)
        S_sy = Es.T @ Yk
        S_yy = float(np.einsum("nd,nd->", Yk, Yk))
        D = Y.shape[1]
        W_new = np.linalg.lstsq(S_ss, S_sy, rcond=None)[0].T if "W" in self._learn else W
        if "sigma" in self._learn:
            r2 = S_yy - 2.0 * np.trace(W_new @ S_sy) + np.trace(W_new.T @ W_new @ S_ss)
            sigma_new = max(math.sqrt(max(r2, 0.0) / (D * n_use)), _SIGMA_MIN)
        else:
            sigma_new = sigma
        if "pi" in self._learn:
            act = float(np.sum(qk @ self._n_active)) / n_use
            pi_new = float(np.clip(self._pi_update(pi, act), _PI_MIN, 1.0 - _PI_MIN))
        else:
            pi_new = pi
        self.W_, self.pi_, self.sigma_ = W_new, pi_new, float(sigma_new)
        h = self._hist
        for k, val in (
            ("log_likelihood", L),
            ("n_use", n_use),
            ("pi", pi_new),
            ("sigma", self.sigma_),
            ("T", v["T"]),
            ("Ncut_factor", v["Ncut_factor"]),
        ):
            h[k].append(val)
        self.n_iter_ = t + 1
        self._publish()

    def fit(self, Y, y=None):
        """Initialize (``standard_init``) and run ``n_iter`` EM iterations.

        Parameters
        ----------
        Y : array_like, shape (n_samples, n_features)
            Training data.
        y : ignored

        Returns
        -------
        self
        """
        Y = _check_data(Y)
        self._reset(Y)
        for _ in range(self._schedule.steps):
            self._em_step(Y)
        return self

    def partial_fit(self, Y, y=None):
        """One EM iteration at the next schedule position (initializes on the first call).

        Parameters
        ----------
        Y : array_like, shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        if not hasattr(self, "W_"):
            Y = _check_data(Y)
            self._reset(Y)
        else:
            Y = _check_data(Y, D=self.n_features_in_)
        self._em_step(Y)
        return self

    # ------------------------------------------------------------------ inference
    def _state_vectors(self, idx, cand):
        """Full ``(N, k, H)`` state vectors of state indices ``idx`` (N, k)."""
        N, k = idx.shape
        H, K = self._H, len(self.values)
        S = np.zeros((N, k, H))
        rows = np.arange(N)[:, None]
        single = (idx >= 1) & (idx < 1 + H * K)
        j = np.where(single, idx - 1, 0)
        hh, vv = j // K, j % K
        n_i, k_i = np.nonzero(single)
        S[n_i, k_i, hh[single]] = self.values[vv[single]]
        multi = idx >= 1 + H * K
        n_i, k_i = np.nonzero(multi)
        m = idx[multi] - 1 - H * K
        local = self._states[m]  # (nm, H')
        S[n_i[:, None], k_i[:, None], cand[n_i]] = local
        del rows
        return S

    def infer(self, Y, top_k: int = 5):
        """Posterior summary of new data at ``T = 1`` over the truncated state sets.

        Parameters
        ----------
        Y : array_like, shape (n_samples, n_features)
        top_k : int
            Number of most probable states returned per point.

        Returns
        -------
        dict
            ``states`` (N, top_k, H) and ``probs`` (N, top_k) of the most probable states,
            ``marginals`` (N, H) ``P(s_h != 0)``, ``mean`` (N, H) ``E[s_h]``, ``log_z`` (N,)
            truncated ``log p(y_n)`` (without the prior-mass correction), ``candidates``
            (N, H').
        """
        self._check_fitted()
        Y = _check_data(Y, D=self.n_features_in_)
        n_states = len(self._n_active)
        top_k = _check_int("top_k", top_k, 1, n_states)
        cand, lj, logZ, q = self._estep(Y, self.W_, self.pi_, self.sigma_)
        idx = np.argsort(-q, axis=1, kind="stable")[:, :top_k]
        return {
            "states": self._state_vectors(idx, cand),
            "probs": np.take_along_axis(q, idx, axis=1),
            "marginals": self._marginals(q, cand),
            "mean": self._mean(q, cand),
            "log_z": logZ,
            "candidates": cand,
        }

    def transform(self, Y):
        """Posterior marginals ``P(s_h != 0 | y_n)``, shape (n_samples, n_components)."""
        return self.infer(Y, top_k=1)["marginals"]

    def score(self, Y, y=None) -> float:
        """Truncated log-likelihood per point of ``Y`` (all points, ``T = 1``)."""
        self._check_fitted()
        Y = _check_data(Y, D=self.n_features_in_)
        _, lj, logZ, _ = self._estep(Y, self.W_, self.pi_, self.sigma_)
        return float(np.mean(logZ) - math.log(self._prior_mass(self.pi_)[0]))

    def sample(self, n_samples: int = 1, random_state=None):
        """Draw ``(Y, S)`` from the fitted model."""
        self._check_fitted()
        n = _check_int("n_samples", n_samples, 1)
        rng = np.random.default_rng(random_state)
        S = self._draw_states(rng, n)
        Y = S @ self.W_.T + self.sigma_ * rng.standard_normal((n, self.W_.shape[0]))
        return Y, S


class TSC(BSC):
    """Ternary Sparse Coding with Expectation Truncation (scikit-learn style).

    Model: ``s_h`` in ``{-1, 0, 1}`` with ``p(+1) = p(-1) = pi / 2``, ``y = W s + N(0, sigma^2 I)``.
    Candidates are the ``H'`` latents with the largest singleton log-joint (over both signs);
    states and M-steps as :class:`BSC` (the ``pi`` update uses the same prior-mass correction,
    with ``pi`` the probability that a latent is non-zero). Parameters and attributes as
    :class:`BSC`; the default schedule is the published TSC one (``T`` 2 -> 1 at 0.7,
    ``Ncut_factor`` 0 -> 1 at 2/3, 300 steps). :meth:`transform` returns ``P(s_h != 0)``;
    :meth:`infer` also gives ``E[s_h]``. Fields are identifiable up to sign.
    """

    values = np.array([-1.0, 1.0])
    _default_schedule = staticmethod(tsc_schedule)
    _default_steps = 300

    def _log_prior_states(self, pi):
        return self._H * math.log1p(-pi) + self._n_active * math.log(pi / (2.0 * (1.0 - pi)))

    def _select(self, Y, W):
        """Candidates: the first ``H'`` distinct latents by singleton log-joint, descending."""
        wy = Y @ W  # (N, H)
        g = np.einsum("dh,dh->h", W, W)
        # -||y - v W_h||^2 up to ||y||^2 for v = +-1; the prior is equal for all singletons
        score = np.maximum(2.0 * wy, -2.0 * wy) - g[None, :]
        cand = np.argsort(-score, axis=1, kind="stable")[:, : self._hp]
        return np.sort(cand, axis=1).astype(np.int64)

    def _draw_states(self, rng, n):
        u = rng.random((n, self._H))
        return np.where(u < self.pi_ / 2, -1.0, np.where(u < self.pi_, 1.0, 0.0))
