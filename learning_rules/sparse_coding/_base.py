"""Shared Expectation-Truncation machinery of the ProSper models (``specs/sparse_coding.md``).

:class:`ETModel` runs the EM loop common to BSC, TSC, DSC, MCA, MMCA and GSC: the truncated state
sets (zero state, every singleton with every non-zero value, every multi-cause state with 2 to
``gamma`` causes among a point's ``H'`` candidates), deterministic annealing and the other schedule
keys, ET's data truncation (keep the points with the largest ``Z_n``, ties by index), the
truncated log-likelihood, inference (top-k states, marginals, adaptive ``H'``/``gamma``), Dask data
parallelism (E-step and sufficient statistics per chunk of data points, sums on the driver) and a
dictionary held on a device array (read once per iteration, M-step target written by pulses).

A model supplies the pieces that differ: the candidate selection, the log-joints over the state
set, the sufficient statistics of its M-step and the M-step itself.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import numpy as np
from scipy.special import logsumexp
from sklearn.base import BaseEstimator, TransformerMixin

from devices import DeviceArray, DeviceModel
from devices.validation import check_choice

from ..dictionary.estimator import as_generator, check_data, check_fitted
from ..pulse_bp import DEFAULT_REFRESH_THRESHOLD
from ._kernels import resolve_backend
from ._states import StateSet, check_int, multi_cause_states, prior_mass
from .schedule import Schedule, as_schedule

__all__ = ["ETModel", "StateSet", "multi_cause_states", "prior_mass"]

#: Keys of ``device_options`` (keyword arguments of :class:`devices.DeviceArray`).
ARRAY_KEYS = ("mapping", "variability", "seed", "backend", "w_max", "dac", "adc")
#: Keys of ``pulse_options`` (``pulse_request`` arguments and the refresh programming mode).
PULSE_KEYS = ("method", "side", "theta", "n_max", "rounding", "refresh_threshold", "refresh_mode")

_PI_MIN = 1e-5
_SIGMA_MIN = 1e-6


def _is_dask(Y) -> bool:
    return type(Y).__module__.split(".")[0] == "dask" and hasattr(Y, "to_delayed")


class ETModel(TransformerMixin, BaseEstimator, ABC):
    """Base class of the models trained with Expectation Truncation (scikit-learn estimators:
    ``get_params``, ``set_params``, ``clone``, ``fit_transform`` from
    :class:`sklearn.base.BaseEstimator` and :class:`sklearn.base.TransformerMixin`).

    Parameters
    ----------
    n_components : int
        Number of latents ``H``.
    h_prime : int, optional
        Candidate latents per point ``H'`` (``gamma <= h_prime <= n_components``).
    gamma : int, optional
        Most non-zero latents in a truncated state (``1 <= gamma <= h_prime``).
    schedule : Schedule or dict, optional
        Annealing schedule (spec section 5); default: the model's published schedule when
        ``anneal`` is True, else ``T = 1`` and no data truncation.
    n_iter : int, optional
        EM iterations of :meth:`fit` (default ``schedule.steps`` or the published count).
    anneal : bool
        Choose the default schedule (ignored when ``schedule`` is given).
    learn : tuple of str
        Parameters to learn (a subset of the model's ``learnable``).
    random_state : None, int, numpy.random.RandomState or numpy.random.Generator
        Seed of the initialization and of the schedule's noise keys.
    backend : {"auto", "numpy", "numba"} or None
        E-step kernels (default numba).
    weights : devices.DeviceArray, optional
        Hold ``W`` (shape ``(D, H)``) on this array (spec section 9): the initial ``W`` is
        programmed exactly (``mode="ideal"``), each iteration reads ``W`` once (read noise
        applies), runs the E-step with the read, and requests ``eta (W_new - W_read)`` as pulses
        (:meth:`devices.DeviceArray.pulse_request`).
    eta : float
        Fraction of the M-step change requested from the device (``0 < eta <= 1``).
    pulse_options : dict, optional
        Keyword arguments of ``pulse_request`` (``method``, ``side``, ``theta``, ``n_max``,
        ``rounding``, ``refresh_threshold``) and ``refresh_mode`` (``"verify"`` by default).
        ``method="unidirectional"`` refreshes (:meth:`devices.DeviceArray.refresh`) the pairs
        that pass ``refresh_threshold`` (default 0.9, as :class:`learning_rules.PulseRule`)
        after each write; ``n_refreshes_`` counts the refreshed pairs.
    device : devices.DeviceModel, optional
        Like ``weights``, but the estimator builds the ``(n_features, n_components)`` array
        itself in :meth:`fit` (so it fits data of any width and leaves the caller's objects
        alone, as scikit-learn expects) and keeps it as ``device_array_``.
    device_options : dict, optional
        Keyword arguments of that :class:`devices.DeviceArray`: ``mapping``, ``variability``,
        ``seed``, ``backend``, ``w_max``, ``dac``, ``adc``.
    """

    #: Parameters that can be learned.
    learnable: tuple[str, ...] = ("W", "pi", "sigma")
    #: Non-zero latent values.
    values = np.array([1.0])
    #: MCA and MMCA always anneal the prior too.
    _anneal_prior_always = False
    _default_steps = 150
    _default_hp = 8
    _default_gamma = 5

    def __init__(
        self,
        n_components: int,
        *,
        h_prime: int | None = None,
        gamma: int | None = None,
        schedule: Schedule | dict | None = None,
        n_iter: int | None = None,
        anneal: bool = True,
        learn: tuple[str, ...] | None = None,
        random_state=None,
        backend: str | None = None,
        weights=None,
        eta: float = 1.0,
        pulse_options: dict | None = None,
        device=None,
        device_options: dict | None = None,
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
        self.weights = weights
        self.eta = eta
        self.pulse_options = pulse_options
        self.device = device
        self.device_options = device_options

    # ------------------------------------------------------------------ hooks
    @staticmethod
    @abstractmethod
    def _default_schedule(steps: int, anneal: bool = True) -> Schedule:
        """The published schedule of the model."""

    def _validate_extra(self) -> None:
        """Model-specific parameter checks (called by :meth:`_validate`); none by default."""
        return None

    @abstractmethod
    def _init_params(self, Y, rng) -> dict:
        """Initial parameters (``standard_init``) as a dict."""

    @abstractmethod
    def _select(self, Y, theta, ss: StateSet) -> np.ndarray:
        """Candidate latents (N, H'), sorted."""

    @abstractmethod
    def _log_joints(self, Y, cand, theta, ss: StateSet):
        """``(lj, lp)``: log-joints at ``T = 1`` (N, S) and log-priors ((S,) or (N, S))."""

    @abstractmethod
    def _suff_stats(self, Y, q, cand, theta, ss: StateSet) -> dict:
        """Sums over the points of ``Y`` of the M-step's sufficient statistics."""

    @abstractmethod
    def _mstep(self, st: dict, theta: dict, n_use: int, D: int) -> dict:
        """New parameters from the summed statistics (only the learned ones change)."""

    @abstractmethod
    def _p_active(self, theta) -> float | None:
        """Prior probability that one latent is non-zero (None: no data truncation, A = 1)."""

    @abstractmethod
    def _draw_states(self, rng, n) -> np.ndarray:
        """``n`` latent states from the fitted prior."""

    @abstractmethod
    def _generate(self, S, rng) -> np.ndarray:
        """Data from states ``S`` under the fitted model."""

    @abstractmethod
    def _theta(self) -> dict:
        """The current parameters as a dict."""

    @abstractmethod
    def _set_theta(self, theta: dict) -> None:
        """Publish parameters as fitted attributes."""

    def _init_activity(self) -> float:
        """Initial probability that a latent is non-zero: ``1 / H`` (``1 / 2`` for ``H = 1``,
        where ``1 / H`` would be a degenerate prior)."""
        return 1.0 / max(self._H, 2)

    def _nonzero_values(self) -> np.ndarray:
        """The non-zero latent values of the state sets."""
        return np.asarray(self.values, dtype=np.float64)

    def _prep_theta(self, theta: dict) -> dict:
        """Hook: adjust parameters before the E-step (e.g. MCA clips a device read)."""
        return theta

    def _sigma_scalar(self, theta) -> float:
        return float(theta["sigma"])

    # ------------------------------------------------------------------ validation
    def _validate(self):
        H = check_int("n_components", self.n_components, 1)
        hp = (
            min(H, self._default_hp)
            if self.h_prime is None
            else check_int("h_prime", self.h_prime, 1, H)
        )
        if self.gamma is None:
            g = min(hp, self._default_gamma)
        else:
            if isinstance(self.gamma, (int, np.integer)) and not isinstance(self.gamma, bool):
                if self.gamma > hp:
                    raise ValueError(
                        f"gamma must be <= h_prime (1 <= gamma <= h_prime <= n_components), got "
                        f"gamma={self.gamma!r}, h_prime={hp}"
                    )
            g = check_int("gamma", self.gamma, 1, hp)
        if not isinstance(self.anneal, (bool, np.bool_)):
            raise ValueError(f"anneal must be a bool, got {self.anneal!r}")
        schedule = as_schedule(
            self.schedule, self.n_iter, self.anneal, self._default_schedule, self._default_steps
        )
        learn = self.learnable if self.learn is None else self.learn
        learn = (learn,) if isinstance(learn, str) else tuple(learn)
        bad = [p for p in learn if p not in self.learnable]
        if bad:
            raise ValueError(f"learn must be a subset of {self.learnable}, got {self.learn!r}")
        backend = resolve_backend(self.backend)
        rs = self.random_state
        if not (rs is None or isinstance(rs, np.random.Generator | np.random.RandomState)):
            check_int("random_state", rs, 0)
        eta = self.eta
        if isinstance(eta, bool) or not isinstance(eta, (int, float, np.integer, np.floating)):
            raise ValueError(f"eta must be a float in (0, 1], got {eta!r}")
        if not 0.0 < float(eta) <= 1.0:
            raise ValueError(f"eta must be in (0, 1], got {eta!r}")
        if self.weights is not None:
            w = self.weights
            if not all(hasattr(w, a) for a in ("weights", "pulse_request", "program", "shape")):
                raise ValueError(
                    "weights must be a devices.DeviceArray (weights/pulse_request/program), got "
                    f"{type(w).__name__}"
                )
            if tuple(w.shape)[1] != H:
                raise ValueError(
                    f"weights must have shape (n_features, {H}) (n_components columns), got "
                    f"{tuple(w.shape)}"
                )
        if self.device is not None:
            if self.weights is not None:
                raise ValueError("give weights= (a device array) or device= (a model), not both")
            if not isinstance(self.device, DeviceModel):
                raise TypeError(
                    f"device must be a devices.DeviceModel or None, got {self.device!r}"
                )
        do = {} if self.device_options is None else self.device_options
        if not isinstance(do, dict):
            raise ValueError(f"device_options must be a dict or None, got {do!r}")
        bad = sorted(set(do) - set(ARRAY_KEYS))
        if bad:
            raise ValueError(f"device_options has unknown keys {bad}; allowed: {list(ARRAY_KEYS)}")
        po = {} if self.pulse_options is None else self.pulse_options
        if not isinstance(po, dict):
            raise ValueError(f"pulse_options must be a dict or None, got {po!r}")
        for key in po:
            check_choice("pulse_options key", key, PULSE_KEYS)
        self._H, self._hp, self._gamma = H, hp, g
        self._schedule, self._learn, self._backend = schedule, set(learn), backend
        self._ss = StateSet(H, hp, g, self._nonzero_values())
        self._validate_extra()

    # ------------------------------------------------------------------ E-step
    def _estep(self, Y, theta, beta=1.0, anneal_prior=False, ss=None):
        """Candidates, log-joints at T = 1, annealed ``log Z_n`` and posterior ``q``."""
        ss = self._ss if ss is None else ss
        cand = self._select(Y, theta, ss)
        lj, lp = self._log_joints(Y, cand, theta, ss)
        if beta == 1.0:
            F = lj
        else:
            ap = anneal_prior or self._anneal_prior_always
            F = (beta if ap else 1.0) * lp + beta * (lj - lp)
        logZ = logsumexp(F, axis=1)
        q = np.exp(F - logZ[:, None])
        return cand, lj, logZ, q

    def _chunk_scores(self, Y, theta, beta, ap):
        """Dask pass 1: annealed ``log Z_n`` and ``logsumexp`` of the T = 1 log-joints."""
        _, lj, logZ, _ = self._estep(Y, theta, beta, ap)
        return logZ, logsumexp(lj, axis=1)

    def _chunk_stats(self, Y, mask, theta, beta, ap):
        """Dask pass 2: sufficient statistics of the kept points of one chunk."""
        Yk = Y[mask]
        if Yk.shape[0] == 0:
            return None
        cand, lj, logZ, q = self._estep(Yk, theta, beta, ap)
        return self._suff_stats(Yk, q, cand, theta, self._ss)

    # ------------------------------------------------------------------ EM
    def _check_fitted(self):
        check_fitted(self, "W_")

    def _reset(self, Y0, D, init=None):
        self._validate()
        self._rng = as_generator(self.random_state)
        theta = self._init_params(Y0, self._rng)
        if init is not None:
            theta = self._start_from(theta, init)
        self.n_features_in_ = D
        self.n_reads_ = 0
        self.n_pulses_ = 0
        self.n_refreshes_ = 0
        self._array = self.weights
        if self.device is not None:
            self._array = DeviceArray((D, self._H), self.device, **(self.device_options or {}))
            self.device_array_ = self._array
        if self._array is not None:
            if tuple(self._array.shape) != (D, self._H):
                raise ValueError(
                    f"weights must have shape ({D}, {self._H}) (n_features, n_components), got "
                    f"{tuple(self._array.shape)}"
                )
            self._array.program(theta["W"], mode="ideal")
            theta["W"] = self._array.weights(noise=False)
        self._set_theta(theta)
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

    def _perturb(self, theta, v, rng):
        """Schedule noise keys ``W_noise``, ``pi_noise``, ``sigma_noise``."""
        theta = dict(theta)
        if v["W_noise"] > 0:
            theta["W"] = theta["W"] + rng.normal(0.0, v["W_noise"], theta["W"].shape)
        if v["pi_noise"] > 0:
            pi = np.asarray(theta["pi"], dtype=np.float64)
            pi = np.clip(pi + rng.normal(0.0, v["pi_noise"], pi.shape), _PI_MIN, 1 - _PI_MIN)
            theta["pi"] = float(pi) if pi.ndim == 0 else pi
        if v["sigma_noise"] > 0 and np.ndim(theta.get("sigma", None)) == 0 and "sigma" in theta:
            theta["sigma"] = max(theta["sigma"] + rng.normal(0.0, v["sigma_noise"]), _SIGMA_MIN)
        return theta

    def _n_use(self, theta, N, c):
        p1 = self._p_active(theta)
        if p1 is None:
            return N, 1.0
        A, _ = prior_mass(p1, self._H, self._gamma)
        n_use = int(math.floor(N * (1.0 - (1.0 - A) * c)))
        return min(max(n_use, 1), N), A

    def _em_step(self, Y):
        t = self.n_iter_
        v = self._schedule.values(t)
        beta = 1.0 / v["T"]
        ap = v["anneal_prior"] > 0.5
        rng = self._rng
        dask_in = _is_dask(Y)
        frac = v["partial"]
        if 0.0 < frac < 1.0:
            if dask_in:
                raise ValueError("schedule key 'partial' < 1 is not supported with Dask input")
            n_sub = max(1, int(round(frac * Y.shape[0])))
            Y = Y[np.sort(rng.choice(Y.shape[0], n_sub, replace=False))]
        if dask_in and v["data_noise"] > 0:
            raise ValueError("schedule key 'data_noise' > 0 is not supported with Dask input")
        theta = self._perturb(self._theta(), v, rng)
        if self._array is not None:
            theta["W"] = self._array.weights(noise=True)  # one read of every device
            self.n_reads_ += 1
        theta = self._prep_theta(theta)
        theta["_T"] = v["T"]
        N, D = Y.shape
        if dask_in:
            st, L, n_use = self._em_dask(Y, theta, beta, ap, v)
        else:
            cand, lj, logZ, q = self._estep(Y, theta, beta, ap)
            n_use, A = self._n_use(theta, N, v["Ncut_factor"])
            keep = np.sort(np.argsort(-logZ, kind="stable")[:n_use])
            L = float(np.mean(logsumexp(lj[keep], axis=1)) - math.log(A))
            Yk = Y[keep]
            if v["data_noise"] > 0:
                Yk = Yk + rng.normal(0.0, v["data_noise"], Yk.shape)
            st = self._suff_stats(Yk, q[keep], cand[keep], theta, self._ss)
        new = self._mstep(st, theta, n_use, D)
        new.pop("_T", None)
        if self._array is not None and "W" in self._learn:
            dW = float(self.eta) * (new["W"] - theta["W"])
            self._write(dW)
            new["W"] = self._array.weights(noise=False)
        elif self._array is not None:
            new["W"] = self._array.weights(noise=False)
        self._set_theta(new)
        h = self._hist
        for k, val in (
            ("log_likelihood", L),
            ("n_use", n_use),
            ("pi", new["pi"]),
            ("sigma", self._sigma_scalar(new)),
            ("T", v["T"]),
            ("Ncut_factor", v["Ncut_factor"]),
        ):
            h[k].append(val)
        self.n_iter_ = t + 1
        self._publish()

    def _write(self, dW):
        """Request ``dW`` as pulses; with the unidirectional method (or a ``refresh_threshold``)
        refresh the flagged pairs."""
        opts = dict(self.pulse_options or {})
        mode = opts.pop("refresh_mode", "verify")
        if opts.get("method") == "unidirectional":
            opts.setdefault("refresh_threshold", DEFAULT_REFRESH_THRESHOLD)
        res = self._array.pulse_request(dW, **opts)
        self.n_pulses_ += int(res["pulses"])
        mask = res["needs_refresh"]
        if mask is not None and mask.any():
            self.n_refreshes_ += int(self._array.refresh(mask, mode=mode))

    def _em_dask(self, Y, theta, beta, ap, v):
        """One E-step over the chunks of a Dask array; sums the statistics on the driver."""
        import dask

        chunks = list(Y.to_delayed().ravel())
        bounds = np.cumsum([0, *Y.chunks[0]])
        scores = dask.compute(
            *[dask.delayed(self._chunk_scores)(c, theta, beta, ap) for c in chunks]
        )
        logZ = np.concatenate([s[0] for s in scores])
        lse = np.concatenate([s[1] for s in scores])
        N = logZ.shape[0]
        n_use, A = self._n_use(theta, N, v["Ncut_factor"])
        keep = np.sort(np.argsort(-logZ, kind="stable")[:n_use])
        mask = np.zeros(N, dtype=bool)
        mask[keep] = True
        L = float(np.mean(lse[keep]) - math.log(A))
        parts = dask.compute(
            *[
                dask.delayed(self._chunk_stats)(c, mask[bounds[i] : bounds[i + 1]], theta, beta, ap)
                for i, c in enumerate(chunks)
            ]
        )
        st = None
        for p in parts:
            if p is None:
                continue
            st = dict(p) if st is None else {k: st[k] + p[k] for k in st}
        return st, L, n_use

    def _prepare_input(self, Y, D=None):
        if _is_dask(Y):
            if Y.ndim != 2:
                raise ValueError(f"Y must have shape (n_samples, n_features), got {Y.shape}")
            if D is not None and Y.shape[1] != D:
                raise ValueError(f"Y must have {D} features (as in fit), got {Y.shape[1]}")
            Y = Y.astype(np.float64).rechunk({1: -1})
            import dask.array as da

            if not bool(da.isfinite(Y).all().compute()):
                raise ValueError("Y contains NaN or infinite values")
            return Y, Y[: min(Y.shape[0], 100000)].compute()
        Y = check_data(self, Y, reset=D is None, name="Y")
        return Y, Y

    def _start_from(self, theta, init):
        """``theta`` with the entries of ``init`` (same keys and shapes) put in its place."""
        bad = sorted(set(init) - set(theta))
        if bad:
            raise ValueError(f"init has unknown keys {bad}; allowed: {sorted(theta)}")
        theta = dict(theta)
        for k, v in init.items():
            v = np.asarray(v, dtype=np.float64)
            if v.shape != np.shape(theta[k]):
                raise ValueError(f"init[{k!r}] must have shape {np.shape(theta[k])}, got {v.shape}")
            theta[k] = float(v) if v.ndim == 0 else v.copy()
        return theta

    def fit(self, Y, y=None, init=None):
        """Initialize (``standard_init``) and run the schedule's EM iterations.

        Parameters
        ----------
        Y : array_like or dask.array.Array, shape (n_samples, n_features)
            Training data. A Dask array is processed chunk by chunk (rows): every E-step and
            the sufficient statistics are computed per chunk and summed on the driver (the
            current Dask scheduler runs them); the result equals the single-array run up to
            summation order. The initialization uses (at most) the first 100000 points.
        y : ignored
        init : dict, optional
            Start from these parameters instead of ``standard_init`` (keys as the fitted
            attributes without the underscore, e.g. ``{"W": W, "pi": 0.2, "sigma": 2.0}``;
            missing keys keep their ``standard_init`` value, which is still drawn so that the
            random stream does not depend on ``init``).

        Returns
        -------
        self
        """
        Y, Y0 = self._prepare_input(Y)
        self._reset(Y0, Y.shape[1], init)
        for _ in range(self._schedule.steps):
            self._em_step(Y)
        return self

    def partial_fit(self, Y, y=None):
        """One EM iteration at the next schedule position (initializes on the first call).

        Parameters
        ----------
        Y : array_like or dask.array.Array, shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        if not hasattr(self, "W_"):
            Y, Y0 = self._prepare_input(Y)
            self._reset(Y0, Y.shape[1])
        else:
            Y, _ = self._prepare_input(Y, D=self.n_features_in_)
        self._em_step(Y)
        return self

    # ------------------------------------------------------------------ inference
    def infer(
        self,
        Y,
        top_k: int = 5,
        adaptive: bool = True,
        h_prime_max: int | None = None,
        gamma_max: int | None = None,
    ):
        """Posterior summary of new data at ``T = 1`` over the truncated state sets.

        Parameters
        ----------
        Y : array_like, shape (n_samples, n_features)
        top_k : int
            Number of most probable states returned per point (at most the size of the
            smallest state set).
        adaptive : bool
            Recompute the points whose MAP state has exactly ``gamma`` active causes with
            ``H' + 1`` and ``gamma + 1`` (each capped by its maximum and by ``H``) until no such
            point is left or the caps are reached (default True, spec section 6; False uses the
            training state sets ``H'``, ``gamma`` for every point).
        h_prime_max, gamma_max : int, optional
            Caps of the adaptive search (default ``H' + 3`` and ``gamma + 3``).

        Returns
        -------
        dict
            ``states`` (N, top_k, H) and ``probs`` (N, top_k) of the most probable states,
            ``marginals`` (N, H) ``P(s_h != 0)``, ``mean`` (N, H) ``E[s_h]``, ``log_z`` (N,)
            truncated ``log p(y_n)`` (without the prior-mass correction), ``candidates``
            (N, H'_max, -1 padded), ``h_prime`` and ``gamma`` (N,) used per point.
        """
        self._check_fitted()
        Y = check_data(self, Y, reset=False, name="Y")
        top_k = check_int("top_k", top_k, 1, self._ss.n_states)
        H = self._H
        hp_max = min(H, self._hp + 3 if h_prime_max is None else h_prime_max)
        g_max = self._gamma + 3 if gamma_max is None else gamma_max
        if h_prime_max is not None:
            check_int("h_prime_max", h_prime_max, self._hp)
        if gamma_max is not None:
            check_int("gamma_max", gamma_max, self._gamma)
        if not adaptive:
            hp_max, g_max = self._hp, self._gamma
        N = Y.shape[0]
        out = {
            "states": np.zeros((N, top_k, H)),
            "probs": np.zeros((N, top_k)),
            "marginals": np.zeros((N, H)),
            "mean": np.zeros((N, H)),
            "log_z": np.zeros(N),
            "candidates": np.full((N, max(hp_max, self._hp)), -1, dtype=np.int64),
            "h_prime": np.full(N, self._hp, dtype=np.int64),
            "gamma": np.full(N, self._gamma, dtype=np.int64),
        }
        theta = self._prep_theta(self._theta())
        theta["_T"] = 1.0
        todo = np.arange(N)
        hp, g, ss = self._hp, self._gamma, self._ss
        while True:
            cand, lj, logZ, q = self._estep(Y[todo], theta, ss=ss)
            idx = np.argsort(-q, axis=1, kind="stable")[:, :top_k]
            vec = ss.vectors(idx, cand)
            out["states"][todo] = vec
            out["probs"][todo] = np.take_along_axis(q, idx, axis=1)
            out["marginals"][todo] = ss.marginals(q, cand)
            out["mean"][todo] = ss.mean(q, cand)
            out["log_z"][todo] = logZ
            out["candidates"][todo] = -1
            out["candidates"][todo, : cand.shape[1]] = cand
            out["h_prime"][todo], out["gamma"][todo] = hp, g
            hp2 = min(hp + 1, hp_max, H)
            g2 = min(g + 1, g_max, hp2)
            if not adaptive or (hp2, g2) == (hp, g):
                break
            flagged = np.count_nonzero(vec[:, 0, :], axis=1) == g
            if not np.any(flagged):
                break
            todo = todo[flagged]
            hp, g = hp2, g2
            ss = StateSet(H, hp, g, self._nonzero_values())
        return out

    def transform(self, Y):
        """Posterior marginals ``P(s_h != 0 | y_n)``, shape (n_samples, n_components).

        Over the training state sets (``H'``, ``gamma``; no adaptive growth, like :meth:`score`);
        ``infer(Y)["marginals"]`` gives the adaptive ones.
        """
        return self.infer(Y, top_k=1, adaptive=False)["marginals"]

    def score(self, Y, y=None) -> float:
        """Truncated log-likelihood per point of ``Y`` (all points, ``T = 1``)."""
        self._check_fitted()
        Y = check_data(self, Y, reset=False, name="Y")
        theta = self._prep_theta(self._theta())
        theta["_T"] = 1.0
        _, lj, logZ, _ = self._estep(Y, theta)
        _, A = self._n_use(theta, 1, 0.0)
        return float(np.mean(logZ) - math.log(A))

    def sample(self, n_samples: int = 1, random_state=None):
        """Draw ``(Y, S)`` from the fitted model (GSC: ``S`` holds ``s * z``)."""
        self._check_fitted()
        n = check_int("n_samples", n_samples, 1)
        rng = as_generator(random_state)
        S = self._draw_states(rng, n)
        return self._generate(S, rng), S
