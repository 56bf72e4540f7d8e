"""Binary and Ternary Sparse Coding with Expectation Truncation (``specs/sparse_coding.md``).

Model: ``y = W s + N(0, sigma^2 I)`` with BSC ``s_h ~ Bernoulli(pi)`` or TSC ``s_h`` in
``{-1, 0, 1}`` (``p(+-1) = pi / 2``). :class:`LinearET` holds what the linear models (BSC, TSC and
:class:`~learning_rules.sparse_coding.DSC`) share: the log-joints through
``||y - W s||^2 = ||y||^2 - 2 s^T W^T y + s^T W^T W s`` (numba kernel with a numpy reference),
the sufficient statistics ``S_ss``, ``S_sy``, ``S_yy`` and the closed-form M-step
``W = S_sy^T S_ss^-1`` with ``sigma`` the expected residual under the new ``W``.

The ``pi`` update of BSC and TSC is ``pi_new = pi (A / B) <|s|>``, with ``<|s|>`` the mean posterior
activity per kept point and ``A``, ``B`` the prior mass and activity of the states with at most
``gamma`` causes (:func:`prior_mass`). The spec's section 4 formula divides by ``H`` twice
(``(pi A / B) sum_n <|s|>_n / (H N_use)``, a known spec error); this package keeps the form above,
which equals ``<|s|> / H`` when ``gamma = H`` (``A = 1``, ``B = H pi``) and whose fixed point
satisfies ``B / A = <|s|>``.

BSC's optional offset ``mu`` (``offset=True``; spec section 4): ``y -> y - mu`` throughout
(candidate selection, log-joints, sampling), ``mu`` learned jointly with ``W`` as the last column of
the augmented dictionary ``[W, mu]`` of the augmented state ``[s, 1]``; its stationarity condition
is the spec's ``mu = mean(y) - W_new mean<s>``.
"""

from __future__ import annotations

import math

import numpy as np

from ._base import (
    _PI_MIN,
    _SIGMA_MIN,
    ETModel,
    StateSet,
    multi_cause_states,
    prior_mass,
)
from ._kernels import log_joint_linear
from .schedule import bsc_schedule, tsc_schedule

__all__ = ["BSC", "TSC", "LinearET", "multi_cause_states", "prior_mass"]


class LinearET(ETModel):
    """Linear superposition ``W s`` with Gaussian noise: shared E- and M-step of BSC, TSC, DSC."""

    #: Learn an offset ``mu`` (BSC only; see :class:`BSC`).
    offset = False

    # ---------------------------------------------------------------- parameters
    def _theta(self):
        th = {"W": self.W_, "pi": self.pi_, "sigma": self.sigma_}
        if self.offset:
            th["mu"] = self.mu_
        return th

    def _set_theta(self, theta):
        self.W_ = np.asarray(theta["W"], dtype=np.float64)
        pi = theta["pi"]
        self.pi_ = float(pi) if np.ndim(pi) == 0 else np.asarray(pi, dtype=np.float64)
        self.sigma_ = float(theta["sigma"])
        if self.offset:
            self.mu_ = np.asarray(theta["mu"], dtype=np.float64)

    def _init_params(self, Y, rng):
        sigma0 = max(float(np.mean(np.std(Y, axis=0))), 1e-3)
        W = np.mean(Y, axis=0)[:, None] + rng.normal(0.0, sigma0 / 4.0, (Y.shape[1], self._H))
        th = {"W": W, "pi": self._init_pi(), "sigma": sigma0}
        if self.offset:
            th["mu"] = np.zeros(Y.shape[1])  # the first M-step fits it
        return th

    def _centered(self, Y, theta):
        """``Y - mu`` with the offset, else ``Y``."""
        return Y - theta["mu"] if self.offset else Y

    def _init_pi(self):
        return self._init_activity()

    def _log_p_values(self, pi):
        """``log p(s_h = v)`` for ``v`` in ``(0, *values)``."""
        return np.array([math.log1p(-pi), math.log(pi)])

    def _log_prior_states(self, pi, ss: StateSet):
        return ss.counts @ self._log_p_values(pi)

    def _p_active(self, theta):
        return float(theta["pi"])

    # ---------------------------------------------------------------- E-step
    def _log_joints(self, Y, cand, theta, ss):
        lp = self._log_prior_states(theta["pi"], ss)
        lj = log_joint_linear(
            self._centered(Y, theta), theta["W"], cand, ss.states, lp, theta["sigma"], 1.0,
            ss.values, backend=self._backend,
        )  # fmt: skip
        return lj, lp

    def _singleton_scores(self, Y, theta):
        """Singleton log-joints up to a per-point constant, (N, H, K')."""
        W, sigma = theta["W"], theta["sigma"]
        wy = Y @ W
        g = np.einsum("dh,dh->h", W, W)
        v = self._nonzero_values()
        r2 = -2.0 * wy[:, :, None] * v + g[None, :, None] * v**2
        lpv = self._log_p_values(theta["pi"])[1:]
        return lpv[None, None, :] - r2 / (2.0 * sigma**2)

    def _select(self, Y, theta, ss):
        """Candidates: the first ``H'`` distinct latents by singleton log-joint, descending."""
        score = self._singleton_scores(Y, theta).max(axis=2)
        cand = np.argsort(-score, axis=1, kind="stable")[:, : ss.h_prime]
        return np.sort(cand, axis=1).astype(np.int64)

    def _suff_stats(self, Y, q, cand, theta, ss):
        Es = ss.mean(q, cand)
        st = {
            "S_ss": ss.second_moment(q, cand),
            "S_sy": Es.T @ Y,
            "S_yy": float(np.einsum("nd,nd->", Y, Y)),
            "counts": q.sum(axis=0) @ ss.counts,
        }
        if self.offset:
            st["S_s"] = Es.sum(axis=0)
            st["S_y"] = Y.sum(axis=0)
        return st

    def _augment(self, st, n_use):
        """Statistics of the augmented state ``[s, 1]`` (offset as an always-on latent)."""
        H = st["S_ss"].shape[0]
        S_ss = np.empty((H + 1, H + 1))
        S_ss[:H, :H] = st["S_ss"]
        S_ss[:H, H] = S_ss[H, :H] = st["S_s"]
        S_ss[H, H] = n_use
        return S_ss, np.vstack([st["S_sy"], st["S_y"][None, :]])

    # ---------------------------------------------------------------- M-step
    def _mstep(self, st, theta, n_use, D):
        W = theta["W"]
        S_ss, S_sy = st["S_ss"], st["S_sy"]
        mu_new = None
        if self.offset:
            # joint update of [W, mu] (W not learned: mu = (sum y - W sum <s>) / N_use)
            S_ss, S_sy = self._augment(st, n_use)
            if "W" in self._learn:
                Wa = np.linalg.lstsq(S_ss, S_sy, rcond=None)[0].T
            else:
                Wa = np.column_stack([W, (st["S_y"] - W @ st["S_s"]) / n_use])
            W_new, mu_new = Wa[:, :-1], Wa[:, -1]
        else:
            Wa = W_new = np.linalg.lstsq(S_ss, S_sy, rcond=None)[0].T if "W" in self._learn else W
        if "sigma" in self._learn:
            r2 = st["S_yy"] - 2.0 * np.trace(Wa @ S_sy) + np.trace(Wa.T @ Wa @ S_ss)
            sigma = max(math.sqrt(max(r2, 0.0) / (D * n_use)), _SIGMA_MIN)
        else:
            sigma = theta["sigma"]
        pi = self._pi_update(theta["pi"], st["counts"], n_use) if "pi" in self._learn else None
        new = {"W": W_new, "pi": theta["pi"] if pi is None else pi, "sigma": float(sigma)}
        if self.offset:
            new["mu"] = mu_new
        return new

    def _pi_update(self, pi, counts, n_use):
        # pi_new = pi (A / B) <|s|>: the factor pi H A / B corrects for the states ET leaves out
        # (1 when gamma = H); a fixed point satisfies B / A = <|s|>. See the module docstring
        # for the spec's double division by H.
        A, B = prior_mass(pi, self._H, self._gamma)
        act = float(np.sum(counts[1:])) / n_use
        return float(np.clip(pi * A / B * act, _PI_MIN, 1.0 - _PI_MIN))

    # ---------------------------------------------------------------- sampling
    def _draw_states(self, rng, n):
        return (rng.random((n, self._H)) < self.pi_).astype(np.float64)

    def _generate(self, S, rng):
        Y = S @ self.W_.T + self.sigma_ * rng.standard_normal((S.shape[0], self.W_.shape[0]))
        return Y + self.mu_ if self.offset else Y


class BSC(LinearET):
    """Binary Sparse Coding with Expectation Truncation (scikit-learn style).

    Model: ``s_h ~ Bernoulli(pi)`` (one scalar ``pi``), ``y = W s + N(0, sigma^2 I)``. Candidates
    are the ``H'`` latents with the largest cosine ``<W_h, y> / (|W_h| |y|)``.

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
    learn : tuple of str, optional
        Parameters to learn, a subset of ``("W", "pi", "sigma")`` (default all).
    random_state : None, int, numpy.random.RandomState or numpy.random.Generator
        Seed of the initialization and of the schedule's noise keys.
    backend : {"auto", "numpy", "numba"} or None
        E-step kernel (default numba when available).
    weights : devices.DeviceArray, optional
        Hold ``W`` on a device array (see :class:`~learning_rules.sparse_coding.ETModel`).
    eta : float
        Fraction of the M-step change requested from the device array.
    pulse_options : dict, optional
        Keyword arguments of ``DeviceArray.pulse_request``.
    device, device_options : devices.DeviceModel and dict, optional
        Let the estimator build the device array in :meth:`fit` (kept as ``device_array_``;
        see :class:`~learning_rules.sparse_coding.ETModel`).
    offset : bool
        Learn an offset ``mu`` (D-vector; spec section 4, off by default): the model becomes
        ``y = mu + W s + noise``. ``mu`` starts at 0 and is learned jointly with ``W`` (as the
        column of an always-active latent), so its update is ``mean(y) - W_new mean<s>`` over
        the kept points; with ``"W"`` not in ``learn`` it is that formula with the current
        ``W``. It is always learned when ``offset`` is True and stays in float registers when
        ``W`` is on a device array.

    Attributes
    ----------
    W_ : ndarray, shape (n_features, n_components)
        Learned fields (columns).
    pi_, sigma_ : float
        Learned prior activation and noise level.
    mu_ : ndarray, shape (n_features,)
        Learned offset (only with ``offset=True``).
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
    n_reads_, n_pulses_, n_refreshes_ : int
        Full reads of, pulses sent to and pairs refreshed on ``weights`` (0 without a device
        array).

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
        schedule=None,
        n_iter: int | None = None,
        anneal: bool = True,
        learn=None,
        random_state=None,
        backend: str | None = None,
        weights=None,
        eta: float = 1.0,
        pulse_options: dict | None = None,
        device=None,
        device_options: dict | None = None,
        offset: bool = False,
    ):
        super().__init__(
            n_components, h_prime=h_prime, gamma=gamma, schedule=schedule, n_iter=n_iter,
            anneal=anneal, learn=learn, random_state=random_state, backend=backend,
            weights=weights, eta=eta, pulse_options=pulse_options, device=device,
            device_options=device_options,
        )  # fmt: skip
        self.offset = offset

    def _validate_extra(self):
        if not isinstance(self.offset, (bool, np.bool_)):
            raise ValueError(f"offset must be a bool (True or False), got {self.offset!r}")

    def _select(self, Y, theta, ss):
        """Candidates: the ``H'`` latents with the largest cosine of ``W_h`` and ``y - mu``."""
        Y = self._centered(Y, theta)
        W = theta["W"]
        wn = np.linalg.norm(W, axis=0)
        yn = np.linalg.norm(Y, axis=1)
        score = (Y @ W) / np.maximum(wn[None, :] * yn[:, None], 1e-300)
        cand = np.argsort(-score, axis=1, kind="stable")[:, : ss.h_prime]
        return np.sort(cand, axis=1).astype(np.int64)


class TSC(LinearET):
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
    _default_hp = 7

    def _log_p_values(self, pi):
        lh = math.log(pi / 2.0)
        return np.array([math.log1p(-pi), lh, lh])

    def _draw_states(self, rng, n):
        u = rng.random((n, self._H))
        return np.where(u < self.pi_ / 2, -1.0, np.where(u < self.pi_, 1.0, 0.0))
