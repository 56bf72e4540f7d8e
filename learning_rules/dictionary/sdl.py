"""Supervised dictionary learning with auxiliary covariates (SDL-filter and SDL-feature).

``specs/dictionary_learning.md`` sections 2-6 and 9: one dictionary that explains the features
and predicts the labels, by block coordinate descent (BCD, signed or nonnegative, optional trust
region, optionally with the dictionary on a :class:`devices.DeviceArray`) or by the lifted
low-rank projected gradient descent (LPGD, signed, ridge start).
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin

from . import _sdl_core as core
from ._common import (
    Link,
    project_W,
    prox_step,
    resolve_link,
    ridge_link_fit,
    spectral_norm,
)
from ._device import make_array, write_target
from ._sdl_params import (  # noqa: F401 (the choices stay importable from here)
    CONSTRAINTS,
    MODES,
    PREDICT_CODES,
    SOLVERS,
    STEPS,
    validate_params,
)
from .estimator import as_generator, check_data, check_fitted, check_labels

__all__ = ["SupervisedDictionaryLearning", "SDL", "sparse_codes"]


def sparse_codes(X, W, *, nonneg=False, l1=0.0, l2=0.0, max_iter=300, tol=1e-10):
    """Codes ``argmin_{h in C_H} ||x - W h||^2 + l1 ||h||_1 + l2 ||h||^2`` for columns of ``X``.

    Least squares when signed with no penalty; otherwise accelerated proximal gradient (FISTA
    with restart on increase).

    Parameters
    ----------
    X : ndarray, shape (p, n)
    W : ndarray, shape (p, r)

    Returns
    -------
    ndarray, shape (r, n)
    """
    if not nonneg and l1 == 0:
        G = W.T @ W + l2 * np.eye(W.shape[1])
        return np.linalg.lstsq(G, W.T @ X, rcond=None)[0]
    G = W.T @ W
    WtX = W.T @ X
    L = 2.0 * spectral_norm(G) + 2.0 * l2
    if L <= 0:
        return np.zeros((W.shape[1], X.shape[1]))
    H = prox_step(np.linalg.lstsq(W, X, rcond=None)[0], 0.0, nonneg)
    Yk, t = H.copy(), 1.0
    for _ in range(max_iter):
        grad = 2.0 * (G @ Yk - WtX) + 2.0 * l2 * Yk
        Hn = prox_step(Yk - grad / L, l1 / L, nonneg)
        tn = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
        diff = Hn - H
        Yk = Hn + ((t - 1.0) / tn) * diff
        t = tn
        if float(np.sum(diff * diff)) <= tol * (float(np.sum(H * H)) + 1e-300):
            H = Hn
            break
        H = Hn
    return H


class SupervisedDictionaryLearning(ClassifierMixin, TransformerMixin, BaseEstimator):
    """Supervised dictionary learning with auxiliary covariates (Lee, Lyu, Yao 2022).

    Minimizes, with ``X`` ``(p, n)`` the data as columns, ``Z = [1; X']`` and ``D`` the linear
    predictor, ``l(Y, D) + xi ||X - W H||_F^2 + (nu/2) ||beta||_F^2 + R(W, H, beta)`` with
    ``D = beta W^T X + Gamma Z`` (``mode="filter"``) or ``D = beta H + Gamma Z``
    (``mode="feature"``), over ``||W_:j|| <= 1`` (and ``W >= 0``, ``H >= 0`` when asked).

    Parameters
    ----------
    n_components : int
        Dictionary size ``r``.
    mode : {"filter", "feature"}
        The classifier reads ``W^T x`` (filter) or the codes ``h`` (feature).
    solver : {"bcd", "lpgd"}
        Block coordinate descent (section 4) or lifted low-rank projected gradient descent
        (section 3; signed only, ridge start).
    link : {"auto", "logistic", "multinomial"}
        Bernoulli rows (binary ``y`` or an ``(n, kappa)`` 0/1 matrix, ``kappa >= 2``) or K
        classes (first class in sorted order is the reference); ``"auto"`` (default): logistic
        for two classes or a label matrix, multinomial for more. A column vector ``y`` of shape
        ``(n, 1)`` is raveled (with scikit-learn's ``DataConversionWarning``).
    xi : float >= 0 or "mle"
        Weight of the reconstruction term; ``"mle"`` (BCD) re-estimates
        ``xi = p n / (2 ||X - WH||^2)`` after each iteration.
    nu : float >= 0
        Ridge on ``beta`` (on ``A`` for LPGD).
    nonneg : tuple of 3 bool
        Nonnegativity of (H, W, beta).
    l1, l2 : tuple of 3 float >= 0
        L1 and squared-L2 penalties on (H, W, beta) (BCD only).
    max_iter : int
        Outer iterations of :meth:`fit`.
    inner_steps : int
        Gradient steps per block (BCD).
    step : {"lipschitz", "backtracking"}
        BCD W block: step ``1/L`` with the global Lipschitz bound (default), or a backtracking
        line search from the reconstruction term's bound up to the global one (every step
        still decreases f).
    trust_radius : None, float or (float, float or None)
        ``c`` or ``(c, b)`` of the trust region ``r_t = c (t+1)^-b / log(t+2)`` (BCD); ``b``
        defaults to 1; ``None`` (or ``b=None``) disables it.
    init : "random" or dict
        BCD start: ``W ~ U[0,1)`` projected, ``beta ~ U(-1, 1)``, H by least squares on W,
        ``Gamma = 0``; or a dict with any of ``W`` (p x r), ``H`` (r x n), ``beta``
        (kappa x r), ``Gamma`` (kappa x (1+q)) that replaces those draws. LPGD always starts
        from the ridge fit.
    predict_code : {"naive", "exhaustive"}
        Feature mode: codes of new points without (naive) or with the label (exhaustive, binary).
    threshold : float in (0, 1) or "youden"
        Binary decision threshold on the probability.
    tol : float
        Stop when the relative decrease of f over 10 iterations is below ``tol``.
    random_state : None, int, numpy.random.RandomState or numpy.random.Generator
    device : devices.DeviceModel or None
        BCD only: the dictionary lives on a ``DeviceArray`` of shape ``(p, r)`` with this device.
    device_options : dict or None
        ``mapping``, ``w_max``, ``seed``, ``backend``, ``dac``, ``adc``, ``variability`` (array),
        ``method``, ``side``, ``theta``, ``n_max``, ``rounding`` (pulse requests),
        ``write`` (``"pulses"`` or ``"verify"``), ``init_program`` (mode of the first write,
        default ``"ideal"``, form ``"centered"``).
    constraint : {"ball", "device"}
        W constraint: column unit ball, or the device's box ``[-w_max, w_max]``.

    Attributes
    ----------
    components_ : ndarray (r, p)
        Dictionary atoms as rows (``W^T``).
    coef_ : ndarray (kappa, r)
        ``beta``.
    intercept_ : ndarray (kappa,)
    coef_aux_ : ndarray (kappa, q)
    codes_ : ndarray (n, r)
        Training codes ``H^T``.
    objective_ : ndarray
        BCD: f at the start and after every block update; LPGD: g at the start and after every
        iteration.
    n_iter_ : int
    classes_ : ndarray
    link_ : str
        The link used (``link`` with ``"auto"`` resolved).
    n_features_in_ : int
    pulses_ : ndarray of int
        Device pulses per iteration (device runs).
    device_array_ : devices.DeviceArray
        The array holding W (device runs).
    """

    def __init__(
        self,
        n_components,
        *,
        mode="filter",
        solver="bcd",
        link="auto",
        xi=1.0,
        nu=1e-3,
        nonneg=(True, True, False),
        l1=(0.0, 0.0, 0.0),
        l2=(0.0, 0.0, 0.0),
        max_iter=100,
        inner_steps=5,
        step="lipschitz",
        trust_radius=None,
        init="random",
        predict_code="naive",
        threshold=0.5,
        tol=1e-6,
        random_state=None,
        device=None,
        device_options=None,
        constraint="ball",
    ):
        self.n_components = n_components
        self.mode = mode
        self.solver = solver
        self.link = link
        self.xi = xi
        self.nu = nu
        self.nonneg = nonneg
        self.l1 = l1
        self.l2 = l2
        self.max_iter = max_iter
        self.inner_steps = inner_steps
        self.step = step
        self.trust_radius = trust_radius
        self.init = init
        self.predict_code = predict_code
        self.threshold = threshold
        self.tol = tol
        self.random_state = random_state
        self.device = device
        self.device_options = device_options
        self.constraint = constraint

    # ------------------------------------------------------------------ validation
    def _validate(self, p, n):
        return validate_params(self, p, n)

    def _labels(self, y, n):
        y = check_labels(y, n, multilabel=self.link in ("auto", "logistic"))
        if y.ndim == 2:
            self.classes_ = np.array([0, 1])
            self._multilabel = True
            self.link_ = resolve_link(self.link, 2, multilabel=True)
            return y.T.astype(np.float64)
        classes = np.unique(y)
        if classes.size < 2:
            raise ValueError(f"y must hold at least 2 classes, got 1 class: {classes.tolist()}")
        self._multilabel = False
        self.link_ = resolve_link(self.link, classes.size)
        if self.link_ == "logistic" and classes.size != 2:
            raise ValueError(
                f"link='logistic' needs binary y (or a 0/1 matrix); got {classes.size} classes, "
                "use link='multinomial' or 'auto'"
            )
        self.classes_ = classes
        idx = np.searchsorted(classes, y)
        Y = np.zeros((classes.size - 1, n))
        m = idx > 0
        Y[idx[m] - 1, np.flatnonzero(m)] = 1.0
        return Y

    def _aux(self, X_aux, n, fitting=False):
        if X_aux is None:
            if not fitting and getattr(self, "n_aux_", 0) > 0:
                raise ValueError(f"X_aux with {self.n_aux_} columns is required (as in fit)")
            return np.ones((1, n))
        A = check_data(self, X_aux, reset=fitting, name="X_aux", n_samples=n)
        if not fitting and A.shape[1] != self.n_aux_:
            raise ValueError(f"X_aux must have {self.n_aux_} columns (as in fit), got {A.shape[1]}")
        return np.vstack([np.ones((1, n)), A.T])

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y, X_aux=None):
        """Fit on ``X`` (n_samples, n_features), labels ``y`` and optional covariates
        ``X_aux`` (n_samples, q). Returns self."""
        self._start(X, y, X_aux)
        for _ in range(self._cfg.max_iter):
            self._iterate()
            if self._converged():
                break
        self._finish()
        return self

    def partial_fit(self, X, y, X_aux=None, *, classes=None):
        """One outer iteration on ``(X, y, X_aux)``: initializes on the first call or when the
        number of samples changes (the iterations run on one data set); a different number of
        features than the first call raises.

        ``classes`` (scikit-learn's convention) may name the labels; they must be those in
        ``y``."""
        if classes is not None:
            seen = np.unique(check_labels(y, np.shape(y)[0], multilabel=True))
            if not np.array_equal(np.unique(np.asarray(classes)), seen):
                raise ValueError(
                    f"classes must be the labels present in y ({seen.tolist()}), got "
                    f"{np.asarray(classes).tolist()}"
                )
        fitted = hasattr(self, "_st")
        if fitted:
            check_data(self, X, reset=False)
        if not fitted or self._st_data_shape != np.shape(X):
            self._start(X, y, X_aux)
        self._iterate()
        self._finish()
        return self

    def _start(self, X, y, X_aux):
        X = check_data(self, X, reset=True)
        n, p = X.shape
        cfg = self._validate(p, n)
        Y = self._labels(y, n)
        Z = self._aux(X_aux, n, fitting=True)
        self.n_aux_ = Z.shape[0] - 1
        kappa = Y.shape[0]
        K = Y.shape[0] + 1 if self.link_ == "multinomial" else None
        self._link = Link(self.link_, K)
        self._cfg = cfg
        self._Xc, self._Y, self._Z = X.T.copy(), Y, Z
        self._X_norm2 = spectral_norm(self._Xc) ** 2
        self._st_data_shape = X.shape
        self._xi = 1.0 if cfg.xi == "mle" else cfg.xi
        self._it = 0
        self._obj = []
        self._pulses = []
        self._array = None
        rng = as_generator(self.random_state)
        if cfg.solver == "lpgd":
            self._lpgd_start(kappa)
        else:
            self._bcd_start(rng, p, n, kappa)
        self._st = True

    # ---------------------------------------------------------------- BCD
    def _bcd_start(self, rng, p, n, kappa):
        cfg = self._cfg
        init = self.init if isinstance(self.init, dict) else {}
        W = project_W(rng.random((p, cfg.r)), cfg.nonneg[1], cfg.constraint, cfg.w_max)
        beta = rng.uniform(-1.0, 1.0, size=(kappa, cfg.r))
        if cfg.nonneg[2]:
            beta = np.abs(beta)
        W = np.array(init.get("W", W), dtype=np.float64)
        beta = np.array(init.get("beta", beta), dtype=np.float64)
        if W.shape != (p, cfg.r):
            raise ValueError(f"init['W'] must have shape {(p, cfg.r)}, got {W.shape}")
        if beta.shape != (kappa, cfg.r):
            raise ValueError(f"init['beta'] must have shape {(kappa, cfg.r)}, got {beta.shape}")
        if "H" in init:
            H = np.array(init["H"], dtype=np.float64)
            if H.shape != (cfg.r, n):
                raise ValueError(f"init['H'] must have shape {(cfg.r, n)}, got {H.shape}")
        else:
            H = np.linalg.lstsq(W, self._Xc, rcond=None)[0]
            if cfg.nonneg[0]:
                H = np.maximum(H, 0.0)
        Gamma = np.array(init.get("Gamma", np.zeros((kappa, self._Z.shape[0]))), dtype=np.float64)
        if Gamma.shape != (kappa, self._Z.shape[0]):
            raise ValueError(
                f"init['Gamma'] must have shape {(kappa, self._Z.shape[0])}, got {Gamma.shape}"
            )
        self._W, self._H, self._beta, self._Gamma = W, H, beta, Gamma
        self._array = None
        if self.device is not None:
            arr = make_array((p, cfg.r), self.device, cfg.opts, cfg.w_max, W)
            self._array = arr
            self._W = arr.weights(noise=False)
        self._obj.append(self._f())

    def _f(self):
        cfg = self._cfg
        return core.sdl_objective(
            cfg.mode, self._link, self._Xc, self._Y, self._Z, self._W, self._H, self._beta,
            self._Gamma, self._xi, cfg.nu, cfg.l1, cfg.l2,
        )  # fmt: skip

    def _radius(self):
        tr = self._cfg.trust
        if tr is None:
            return None
        c, b = tr
        t = self._it
        return c * (t + 1.0) ** (-b) / math.log(t + 2.0)

    def _read_W(self):
        if self._array is None:
            return self._W
        return self._array.weights(noise=True)

    def _write_W(self, W_read, W_target):
        pulses = write_target(self._array, W_read, W_target, self._cfg.opts)
        self._W = self._array.weights(noise=False)
        return pulses

    def _features(self, W):
        """Filter features ``W^T X`` (transposed read on a device)."""
        if self._array is None:
            return W.T @ self._Xc
        return self._array.rmatmul(self._Xc.T).T

    def _block_H(self, radius):
        cfg = self._cfg
        W = self._read_W()
        self._H = core.block_H(
            cfg, self._link, self._Xc, self._Y, self._Z, W, self._H, self._beta, self._Gamma,
            self._xi, radius,
        )  # fmt: skip
        self._obj.append(self._f())

    def _block_W(self, radius):
        cfg = self._cfg
        W_read = self._read_W()
        W_new = core.block_W(
            cfg, self._link, self._Xc, self._Y, self._Z, W_read, self._H, self._beta,
            self._Gamma, self._xi, radius, self._X_norm2,
        )  # fmt: skip
        if self._array is None:
            self._W = W_new
        else:
            self._pulses[-1] += self._write_W(W_read, W_new)
        self._obj.append(self._f())

    def _block_beta(self, radius):
        cfg = self._cfg
        F = self._features(self._read_W()) if cfg.mode == "filter" else self._H
        b, g = core.block_beta(
            cfg, self._link, F, self._Y, self._Z, self._beta, self._Gamma, radius
        )
        if self._array is not None and cfg.mode == "filter":
            # the block was solved on noisy reads: keep it only if f (clean W) does not rise
            old = (self._beta, self._Gamma)
            f_old = self._obj[-1]
            self._beta, self._Gamma = b, g
            if self._f() > f_old:
                self._beta, self._Gamma = old
        else:
            self._beta, self._Gamma = b, g
        self._obj.append(self._f())

    def _iterate(self):
        cfg = self._cfg
        if cfg.solver == "lpgd":
            self._lpgd_iterate()
            self._it += 1
            return
        radius = self._radius()
        self._pulses.append(0)
        if cfg.mode == "filter":
            self._block_H(radius)
            self._block_W(radius)
            self._block_beta(radius)
        else:
            self._block_W(radius)
            self._block_beta(radius)
            self._block_H(radius)
        if cfg.xi == "mle":
            R = self._Xc - self._W @ self._H
            rss = float(np.sum(R * R))
            self._xi = self._Xc.size / (2.0 * max(rss, 1e-300))
        self._it += 1

    def _converged(self):
        tol = self._cfg.tol
        if tol <= 0 or self._it < 10:
            return False
        per = 1 if self._cfg.solver == "lpgd" else 3
        f_now = self._obj[-1]
        f_then = self._obj[-1 - 10 * per]
        return (f_then - f_now) <= tol * abs(f_then)

    # ---------------------------------------------------------------- LPGD
    def _lpgd_start(self, kappa):
        cfg = self._cfg
        X, Y, Z, link = self._Xc, self._Y, self._Z, self._link
        F = X
        b, g, _ = ridge_link_fit(
            link, Y, F, Z, np.zeros((kappa, X.shape[0])), np.zeros((kappa, Z.shape[0])), 1.0
        )
        A = b.T.copy() if cfg.mode == "filter" else b @ X
        self._Gamma = g
        LA = link.c_l * self._X_norm2 + cfg.nu if cfg.mode == "filter" else link.c_l + cfg.nu
        self._s = math.sqrt(LA / (2.0 * self._xi))
        zn = spectral_norm(Z) ** 2
        self._L_Gamma = link.c_l * zn + 1e-12 * max(zn, 1.0)
        self._A, self._B = self._project(A, X.copy())
        self._obj.append(self._g())
        self._lpgd_factors()

    def _g(self):
        return core.lifted_objective(
            self._cfg.mode, self._link, self._Xc, self._Y, self._Z, self._A, self._B,
            self._Gamma, self._xi, self._cfg.nu,
        )  # fmt: skip

    def _project(self, A, B):
        s, r = self._s, self._cfg.r
        if self._cfg.mode == "filter":
            M = np.hstack([s * A, B])
            U, S, Vt = core.lowrank(M, r)
            P = (U * S) @ Vt
            k = A.shape[1]
            return P[:, :k] / s, P[:, k:]
        M = np.vstack([s * A, B])
        U, S, Vt = core.lowrank(M, r)
        P = (U * S) @ Vt
        k = A.shape[0]
        return P[:k] / s, P[k:]

    def _lpgd_iterate(self):
        cfg = self._cfg
        X, Y, Z, link = self._Xc, self._Y, self._Z, self._link
        A, B, s = self._A, self._B, self._s
        lin = A.T @ X if cfg.mode == "filter" else A
        Gl = link.grad(Y, lin + self._Gamma @ Z)
        self._Gamma = self._Gamma - (Gl @ Z.T) / self._L_Gamma
        Gl = link.grad(Y, lin + self._Gamma @ Z)
        gA = (X @ Gl.T if cfg.mode == "filter" else Gl) + cfg.nu * A
        gB = -2.0 * self._xi * (X - B)
        step = 1.0 / (2.0 * self._xi)
        A_s = s * A - step * gA / s
        B_s = B - step * gB
        self._A, self._B = self._project(A_s / s, B_s)
        self._obj.append(self._g())

    def _lpgd_factors(self):
        cfg = self._cfg
        s, r = self._s, cfg.r
        if cfg.mode == "filter":
            M = np.hstack([s * self._A, self._B])
            U, S, Vt = core.lowrank(M, r)
            SV = S[:, None] * Vt
            k = self._A.shape[1]
            self._W = U
            self._beta = (SV[:, :k] / s).T
            self._H = SV[:, k:]
        else:
            M = np.vstack([s * self._A, self._B])
            U, S, Vt = core.lowrank(M, r)
            k = self._A.shape[0]
            H = S[:, None] * Vt
            beta = U[:k] / s
            W = U[k:]
            c = np.sqrt(np.sum(W * W, axis=0))
            c = np.where(c > 0, c, 1.0)
            self._W, self._H, self._beta = W / c, H * c[:, None], beta / c

    # ---------------------------------------------------------------- finish / predict
    def _finish(self):
        if self._cfg.solver == "lpgd":
            self._lpgd_factors()
        self.components_ = self._W.T.copy()
        self.coef_ = self._beta.copy()
        self.intercept_ = self._Gamma[:, 0].copy()
        self.coef_aux_ = self._Gamma[:, 1:].copy()
        self.codes_ = self._H.T.copy()
        self.objective_ = np.array(self._obj)
        self.n_iter_ = self._it
        self.xi_ = self._xi
        if self._array is not None:
            self.pulses_ = np.array(self._pulses, dtype=np.int64)
            self.device_array_ = self._array
            self.device_counters_ = self._array.counters()
        self.threshold_ = 0.5
        if self.threshold == "youden":
            self.threshold_ = self._youden()
        elif not isinstance(self.threshold, str):
            self.threshold_ = float(self.threshold)

    def _youden(self):
        if self.link_ != "logistic" or self._multilabel:
            raise ValueError("threshold='youden' needs binary labels with link='logistic'")
        P = self._link.mean(self._decision(self._Xc, self._Z))[0]
        y = self._Y[0] > 0.5
        order = np.argsort(-P, kind="stable")
        ps, ys = P[order], y[order]
        tp = np.cumsum(ys) / max(ys.sum(), 1)
        fp = np.cumsum(~ys) / max((~ys).sum(), 1)
        # only thresholds at the last of ties
        last = np.r_[ps[1:] != ps[:-1], True]
        j = np.argmax(np.where(last, tp - fp, -np.inf))
        return float(ps[j])

    def _codes(self, Xc):
        cfg = self._cfg
        return sparse_codes(
            Xc, self._W, nonneg=cfg.nonneg[0], l1=cfg.l1[0] / max(self._xi, 1e-300),
            l2=cfg.l2[0] / max(self._xi, 1e-300),
        )  # fmt: skip

    def _decision(self, Xc, Z):
        if self._cfg.mode == "filter":
            return self._beta @ (self._W.T @ Xc) + self._Gamma @ Z
        return self._beta @ self._codes(Xc) + self._Gamma @ Z

    def _prep(self, X, X_aux):
        check_fitted(self, "components_")
        X = check_data(self, X, reset=False)
        return X.T, self._aux(X_aux, X.shape[0])

    def decision_function(self, X, X_aux=None):
        """Linear predictor: shape (n,) for binary labels (positive: the second class), (n, K)
        for the multinomial link (column 0, the reference class, is 0, so the argmax is the
        prediction), (n, kappa) for a label matrix."""
        Xc, Z = self._prep(X, X_aux)
        D = self._decision(Xc, Z)
        if self.link_ == "multinomial":
            return np.vstack([np.zeros((1, D.shape[1])), D]).T
        return D[0] if D.shape[0] == 1 and not self._multilabel else D.T

    def predict_proba(self, X, X_aux=None):
        """Class probabilities (n, K); multi-label logistic: (n, kappa) of ``P(y_c = 1)``."""
        Xc, Z = self._prep(X, X_aux)
        P = self._link.mean(self._decision(Xc, Z))
        if self._multilabel:
            return P.T
        if self.link_ == "logistic":
            return np.vstack([1.0 - P[0], P[0]]).T
        return np.vstack([1.0 - P.sum(axis=0), P]).T

    def predict(self, X, X_aux=None):
        """Predicted labels."""
        Xc, Z = self._prep(X, X_aux)
        if self._cfg.mode == "feature" and self.predict_code == "exhaustive":
            return self._predict_exhaustive(Xc, Z)
        P = self._link.mean(self._decision(Xc, Z))
        if self._multilabel:
            return (P.T >= self.threshold_).astype(np.int64)
        if self.link_ == "logistic":
            return self.classes_[(P[0] >= self.threshold_).astype(np.int64)]
        full = np.vstack([1.0 - P.sum(axis=0), P])
        return self.classes_[np.argmax(full, axis=0)]

    def _predict_exhaustive(self, Xc, Z):
        if self.link_ != "logistic" or self._multilabel:
            raise ValueError("predict_code='exhaustive' needs binary labels with link='logistic'")
        cfg, link = self._cfg, self._link
        W, beta, Gamma, xi = self._W, self._beta, self._Gamma, self._xi
        n = Xc.shape[1]
        H0 = self._codes(Xc)
        L = 2 * xi * spectral_norm(W.T @ W) + 2 * cfg.l2[0] + link.c_l * spectral_norm(beta) ** 2
        objs = []
        for lab in (0.0, 1.0):
            Y = np.full((1, n), lab)
            H = H0.copy()
            for _ in range(200):
                G = 2 * xi * (W.T @ (W @ H - Xc)) + 2 * cfg.l2[0] * H
                G += beta.T @ link.grad(Y, beta @ H + Gamma @ Z)
                H = prox_step(H - G / L, cfg.l1[0] / L, cfg.nonneg[0])
            D = beta @ H + Gamma @ Z
            R = Xc - W @ H
            per = xi * np.sum(R * R, axis=0) + np.logaddexp(0, D[0]) - lab * D[0]
            per += cfg.l1[0] * np.abs(H).sum(axis=0) + cfg.l2[0] * np.sum(H * H, axis=0)
            objs.append(per)
        return self.classes_[(objs[1] < objs[0]).astype(np.int64)]

    def transform(self, X):
        """Filter: ``W^T x`` per sample; feature: the codes. Shape (n, r)."""
        check_fitted(self, "components_")
        X = check_data(self, X, reset=False)
        if self._cfg.mode == "filter":
            return X @ self._W
        return self._codes(X.T).T

    def score(self, X, y, X_aux=None) -> float:
        """Accuracy of :meth:`predict`."""
        pred = self.predict(X, X_aux)
        y = np.asarray(y)
        return float(np.mean(np.all(pred == y, axis=1) if pred.ndim == 2 else pred == y))


SDL = SupervisedDictionaryLearning
