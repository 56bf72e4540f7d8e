"""Maximal Causes Analysis (MCA) and its signed variant (MMCA) with Expectation Truncation.

``specs/sparse_coding.md`` ([MCA], [MMCA]): binary latents ``s_h ~ Bernoulli(pi)`` and a
non-linear superposition, ``ybar_d = max_h s_h W_dh`` (MCA, ``W >= W_tol``) or the field of
largest magnitude wins with its sign (MMCA); Gaussian noise ``N(0, sigma^2 I)``. During learning
the hard max is replaced by a smooth one with exponent ``rho`` tied to the temperature:
``rho = 1 / (1 - 1 / T_rho)``, ``T_rho = max(T, 1.05)`` (MCA, ``rho = 21`` at ``T = 1``) or
``max(T, 1.2)`` with ``rho`` clipped to ``[1, 35]`` (MMCA, ``rho = 6`` at ``T = 1``). The
temperature always acts on the prior too (``F = beta log p(s, y)``).

M-step: the fixed point ``W_dh = sum_n <A_dh>_n y_nd / sum_n <A_dh>_n`` with ``A_dh`` the
derivative weight of the smooth max (1 for singletons; ``singleton_weight="w2"`` gives the
reference code's ``W_dh^2``), ``pi`` as BSC (``pi_new = pi (A / B) <|s|>``; the spec's formula
divides by ``H`` twice, see :mod:`learning_rules.sparse_coding.bsc`), ``sigma^2`` the expected
squared residual under the E-step's parameters at the current ``rho``. MCA clips ``W >= W_tol``;
MMCA damps each entry with ``lam = max(1 - exp(-sum_n <A_dh>_n / 2.5), 0.2)`` and keeps
``|W| >= 1e-4`` (sign kept).
"""

from __future__ import annotations

import math

import numpy as np

from ._base import _SIGMA_MIN
from ._kernels import KIND_MCA, KIND_MMCA, log_joint_max, max_stats
from .bsc import LinearET
from .schedule import Schedule

__all__ = ["MCA", "MMCA", "W_TOL", "mca_schedule", "rho_of_T"]

#: Smallest MCA weight (and smallest MMCA weight magnitude).
W_TOL = 1e-4


def mca_schedule(steps: int = 300, anneal: bool = True) -> Schedule:
    """The published MCA/MMCA bars schedule (T 4 -> 1 at 0.8, Ncut_factor 0 -> 1 at 2/3)."""
    if not anneal:
        return Schedule(steps)
    return Schedule(steps, T=[(0, 4.0), (0.8, 1.0)], Ncut_factor=[(0, 0.0), (2 / 3, 1.0)])


def rho_of_T(T: float, model: str = "mca") -> float:
    """Smoothing exponent of the max at temperature ``T`` (spec section 5).

    Parameters
    ----------
    T : float
        Temperature (> 0).
    model : {"mca", "mmca"}

    Returns
    -------
    float
    """
    if model == "mca":
        return 1.0 / (1.0 - 1.0 / max(T, 1.05))
    if model == "mmca":
        return float(np.clip(1.0 / (1.0 - 1.0 / max(T, 1.2)), 1.0, 35.0))
    raise ValueError(f"model must be 'mca' or 'mmca', got {model!r}")


class MCA(LinearET):
    """Maximal Causes Analysis with Expectation Truncation (scikit-learn style).

    Parameters
    ----------
    n_components : int
        Number of latents ``H``.
    singleton_weight : {"one", "w2"}
        Weight of singleton states in the ``W`` update: 1 (follows from the smooth max, the
        default) or ``W_dh^2`` (the reference implementation, for comparison).
    h_prime, gamma, schedule, n_iter, anneal, learn, random_state, backend, weights, eta,
    pulse_options, device, device_options
        As :class:`~learning_rules.sparse_coding.BSC` (defaults ``H' = 8``, ``gamma = 5``, the
        published schedule ``T`` 4 -> 1 at 0.8, ``Ncut_factor`` 0 -> 1 at 2/3, 300 steps).

    Notes
    -----
    Candidates: the ``H'`` latents with the smallest ``sum_d |max(W_dh, y_d) - y_d|``. The
    log-likelihood of each iteration is evaluated at ``T = 1`` with that iteration's ``rho``.
    """

    _kind = KIND_MCA
    _model = "mca"
    _anneal_prior_always = True
    _default_schedule = staticmethod(mca_schedule)
    _default_steps = 300
    _default_hp = 8

    def __init__(
        self,
        n_components: int,
        *,
        singleton_weight: str = "one",
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
    ):
        super().__init__(
            n_components, h_prime=h_prime, gamma=gamma, schedule=schedule, n_iter=n_iter,
            anneal=anneal, learn=learn, random_state=random_state, backend=backend,
            weights=weights, eta=eta, pulse_options=pulse_options, device=device,
            device_options=device_options,
        )  # fmt: skip
        self.singleton_weight = singleton_weight

    def _validate_extra(self):
        if self.singleton_weight not in ("one", "w2"):
            raise ValueError(
                f"singleton_weight must be 'one' or 'w2', got {self.singleton_weight!r}"
            )

    def _rho(self, theta):
        return rho_of_T(theta.get("_T", 1.0), self._model)

    def _init_params(self, Y, rng):
        theta = super()._init_params(Y, rng)
        theta["W"] = self._clip_W(theta["W"])
        return theta

    def _clip_W(self, W):
        return np.maximum(W, W_TOL)

    def _prep_theta(self, theta):
        theta = dict(theta)
        theta["W"] = self._clip_W(theta["W"])
        return theta

    def _select(self, Y, theta, ss):
        """Candidates: the ``H'`` latents with the smallest ``sum_d |max(W_dh, y_d) - y_d|``."""
        W = theta["W"]
        score = np.abs(np.maximum(W[None, :, :], Y[:, :, None]) - Y[:, :, None]).sum(axis=1)
        cand = np.argsort(score, axis=1, kind="stable")[:, : ss.h_prime]
        return np.sort(cand, axis=1).astype(np.int64)

    def _log_joints(self, Y, cand, theta, ss):
        lp = self._log_prior_states(theta["pi"], ss)
        lj = log_joint_max(
            Y, theta["W"], cand, ss.states, lp, theta["sigma"], 1.0, self._rho(theta),
            self._kind, backend=self._backend,
        )  # fmt: skip
        return lj, lp

    def _suff_stats(self, Y, q, cand, theta, ss):
        w2 = self._kind == KIND_MCA and self.singleton_weight == "w2"
        num, den, r2 = max_stats(
            Y, theta["W"], cand, ss.states, q, self._rho(theta), self._kind, w2,
            backend=self._backend,
        )  # fmt: skip
        return {"num": num, "den": den, "r2": r2, "counts": q.sum(axis=0) @ ss.counts}

    def _w_update(self, st, W):
        den = st["den"]
        ok = den > 1e-300
        W_new = np.where(ok, st["num"] / np.where(ok, den, 1.0), 0.0)
        return self._clip_W(W_new)

    def _mstep(self, st, theta, n_use, D):
        W = theta["W"]
        W_new = self._w_update(st, W) if "W" in self._learn else W
        if "sigma" in self._learn:
            sigma = max(math.sqrt(max(st["r2"], 0.0) / (D * n_use)), _SIGMA_MIN)
        else:
            sigma = theta["sigma"]
        pi = self._pi_update(theta["pi"], st["counts"], n_use) if "pi" in self._learn else None
        return {"W": W_new, "pi": theta["pi"] if pi is None else pi, "sigma": float(sigma)}

    def _generate(self, S, rng):
        n, D = S.shape[0], self.W_.shape[0]
        return max_superposition(self.W_, S, self._model) + self.sigma_ * rng.standard_normal(
            (n, D)
        )


class MMCA(MCA):
    """Signed maximal causes: the field of largest magnitude wins (scikit-learn style).

    Parameters and attributes as :class:`MCA` (defaults ``H' = 7``, ``gamma = 5``, the published
    schedule ``T`` 4 -> 1 at 0.8, ``Ncut_factor`` 0 -> 1 at 2/3, 300 steps); ``singleton_weight``
    must be ``"one"``. Candidates: the ``H'`` latents with the smallest ``||W_h - y||^2``.
    """

    _kind = KIND_MMCA
    _model = "mmca"
    _default_hp = 7

    def _validate_extra(self):
        if self.singleton_weight != "one":
            raise ValueError(
                f"singleton_weight must be 'one' for MMCA, got {self.singleton_weight!r}"
            )

    def _clip_W(self, W):
        return np.where(W >= 0, np.maximum(W, W_TOL), np.minimum(W, -W_TOL))

    def _select(self, Y, theta, ss):
        """Candidates: the ``H'`` latents with the smallest ``||W_h - y||^2``."""
        W = theta["W"]
        score = ((Y[:, :, None] - W[None, :, :]) ** 2).sum(axis=1)
        cand = np.argsort(score, axis=1, kind="stable")[:, : ss.h_prime]
        return np.sort(cand, axis=1).astype(np.int64)

    def _w_update(self, st, W):
        den = st["den"]
        ok = den > 1e-300
        W_new = np.where(ok, st["num"] / np.where(ok, den, 1.0), 0.0)
        lam = np.maximum(1.0 - np.exp(-den / 2.5), 0.2)
        return self._clip_W(lam * W_new + (1.0 - lam) * W)


def max_superposition(W, S, model: str = "mca") -> np.ndarray:
    """Hard-max superposition of binary states ``S`` (n, H) with fields ``W`` (D, H).

    Parameters
    ----------
    W : ndarray, shape (D, H)
    S : ndarray, shape (n, H)
        Binary states.
    model : {"mca", "mmca"}
        ``max_h s_h W_dh`` or the active ``W_dh`` of largest magnitude (sign kept); 0 where no
        latent is active.

    Returns
    -------
    ndarray, shape (n, D)
    """
    W = np.asarray(W, dtype=np.float64)
    act = np.asarray(S, dtype=np.float64)[:, None, :] != 0  # (n, 1, H)
    if model == "mca":
        return np.where(act, W[None, :, :], -np.inf).max(axis=2).clip(min=0.0) * act.any(axis=2)
    if model != "mmca":
        raise ValueError(f"model must be 'mca' or 'mmca', got {model!r}")
    mag = np.where(act, np.abs(W)[None, :, :], -1.0)
    j = mag.argmax(axis=2)  # (n, D)
    out = np.take_along_axis(np.broadcast_to(W[None], mag.shape), j[:, :, None], axis=2)[:, :, 0]
    return np.where(act.any(axis=2), out, 0.0)
