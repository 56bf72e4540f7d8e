"""Discrete Sparse Coding with Expectation Truncation (``specs/sparse_coding.md``, [DSC]).

Latents take values in a user set ``phi = (phi_1 .. phi_K)`` that contains 0, with a categorical
prior ``pi_k`` per value (one vector shared by all latents); ``y = W s + N(0, sigma^2 I)``.
"""

from __future__ import annotations

import numpy as np

from .bsc import LinearET
from .schedule import Schedule

__all__ = ["DSC", "dsc_schedule"]

_PI_FLOOR = 1e-6


def dsc_schedule(steps: int = 100, anneal: bool = True) -> Schedule:
    """The published DSC bars schedule (T 2 -> 1 at 0.7, Ncut_factor 0 -> 1 at 2/3)."""
    if not anneal:
        return Schedule(steps)
    return Schedule(steps, T=[(0, 2.0), (0.7, 1.0)], Ncut_factor=[(0, 0.0), (2 / 3, 1.0)])


class DSC(LinearET):
    """Discrete Sparse Coding with Expectation Truncation (scikit-learn style).

    Parameters
    ----------
    n_components : int
        Number of latents ``H``.
    values : sequence of float
        The latent values ``phi`` (distinct, finite, containing 0), e.g. ``(0, 1, 2)``.
    h_prime, gamma, schedule, n_iter, anneal, random_state, backend, weights, eta,
    pulse_options, device, device_options
        As :class:`~learning_rules.sparse_coding.BSC` (default ``H' = 7``, ``gamma = 5``, the
        published DSC schedule ``T`` 2 -> 1 at 0.7, ``Ncut_factor`` 0 -> 1 at 2/3, 100 steps).
    learn : tuple of str, optional
        Subset of ``("W", "pi", "sigma")``.

    Attributes
    ----------
    W_ : ndarray, shape (n_features, n_components)
    pi_ : ndarray, shape (K,)
        Prior probability of each value of ``values`` (sums to 1).
    sigma_ : float
    values_ : ndarray, shape (K,)
        The values, in the order of ``pi_``.

    Notes
    -----
    Candidates: the first ``H'`` distinct latents by singleton log-joint (prior included),
    descending. M-step: ``W``, ``sigma`` as BSC; ``pi_k = sum_n <c_k(s)>_n / (H N_use)`` (zeros
    counted as ``H - |s|``), each entry floored at 1e-6 with the floor's mass taken from the
    others (no prior-mass correction). Data truncation uses ``p1 = 1 - pi_0``. Initialization:
    ``pi_0 = 1 - 1/H``, the rest spread evenly over the non-zero values.
    """

    _default_schedule = staticmethod(dsc_schedule)
    _default_steps = 100
    _default_hp = 7

    def __init__(
        self,
        n_components: int,
        *,
        values=(0.0, 1.0, 2.0),
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
        self.values = values

    def _validate(self):
        try:
            phi = np.asarray(self.values, dtype=np.float64).ravel()
        except (TypeError, ValueError):
            raise ValueError(f"values must be a sequence of numbers, got {self.values!r}") from None
        if phi.size < 2 or not np.all(np.isfinite(phi)) or len(np.unique(phi)) != phi.size:
            raise ValueError(
                f"values must hold >= 2 distinct finite numbers including 0, got {self.values!r}"
            )
        if not np.any(phi == 0.0):
            raise ValueError(f"values must contain 0, got {self.values!r}")
        self.values_ = np.concatenate([[0.0], phi[phi != 0.0]])
        self._nz = phi[phi != 0.0]
        super()._validate()

    def _nonzero_values(self):
        return self._nz

    def _log_p_values(self, pi):
        return np.log(np.asarray(pi, dtype=np.float64))

    def _init_pi(self):
        K1 = len(self._nz)
        p0 = 1.0 - self._init_activity()
        return np.concatenate([[p0], np.full(K1, (1.0 - p0) / K1)])

    def _p_active(self, theta):
        return float(1.0 - theta["pi"][0])

    def _pi_update(self, pi, counts, n_use):
        p = np.asarray(counts, dtype=np.float64) / (self._H * n_use)
        p = p / p.sum()
        low = p < _PI_FLOOR
        if np.any(low):
            deficit = float(np.sum(_PI_FLOOR - p[low]))
            p[low] = _PI_FLOOR
            p[~low] -= deficit * p[~low] / p[~low].sum()
        return p

    def _perturb(self, theta, v, rng):
        theta = super()._perturb(theta, v, rng)
        if v["pi_noise"] > 0:
            theta["pi"] = theta["pi"] / theta["pi"].sum()
        return theta

    def _draw_states(self, rng, n):
        idx = rng.choice(len(self.values_), size=(n, self._H), p=self.pi_)
        return self.values_[idx]
