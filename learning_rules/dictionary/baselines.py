"""Baselines of ``specs/dictionary_learning.md`` section 8: online dictionary learning
(Mairal et al. 2010), NMF (projected-gradient BCD or Lee-Seung updates), ridge logistic /
multinomial regression (LR) and factorize-then-regress (MF-LR)."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin

from ._common import (
    LINK_CHOICES,
    Link,
    check_choice,
    check_int,
    check_real,
    project_W,
    resolve_link,
    ridge_link_fit,
    spectral_norm,
)
from ._device import check_device, make_array, write_target
from ._lasso import lasso_cd
from .estimator import as_generator, check_data, check_fitted, check_labels

__all__ = ["OnlineDictionaryLearning", "NMF", "LogisticRidge", "MFLogistic"]


class OnlineDictionaryLearning(TransformerMixin, BaseEstimator):
    """Online dictionary learning [M1]: ``min (1/2)||x - D a||^2 + alpha ||a||_1``,
    ``||d_j||_2 <= 1``.

    Per mini-batch: lasso codes by coordinate descent (numba kernel), ``A <- rho A + sum a a^T``,
    ``B <- rho B + sum x a^T``, then ``dict_sweeps`` block-coordinate sweeps
    ``u_j = d_j + (b_j - D a_j) / A_jj``, ``d_j = u_j / max(1, ||u_j||)``.

    Parameters
    ----------
    n_components : int
    alpha : float >= 0
        L1 weight of the codes.
    batch_size : int
    n_epochs : int
        Passes over the data in :meth:`fit` (shuffled each epoch).
    forget : float in (0, 1]
        Forgetting factor ``rho`` of the statistics.
    positive_code, positive_dict : bool
        Nonnegative codes / dictionary.
    dict_sweeps : int
        Column sweeps per mini-batch.
    resample_dead : bool
        Replace atoms with ``A_jj`` near 0 by a random sample of the batch (else leave them).
    code_max_iter, code_tol : int, float
        Coordinate-descent sweeps and tolerance of the codes.
    random_state : None, int, numpy.random.RandomState or numpy.random.Generator
    backend : {"numba", "numpy"}
        Lasso kernel.
    device : devices.DeviceModel or None
        Keep the dictionary on a ``DeviceArray`` of shape ``(p, r)``: each mini-batch reads D
        once (read noise and converters apply), codes and the new dictionary are computed
        digitally from that read, and the change is written as a pulse request (or
        program-and-verify), ``specs/dictionary_learning.md`` section 9.
    device_options : dict or None
        As for :class:`SupervisedDictionaryLearning` (``seed``, ``method``, ``rounding``, ...).
    update : {"targets", "rank_one"}
        Dictionary update per mini-batch: the column sweeps of [M1] (default), or the
        crossbar-style rank-one step ``dD = eta (X - D A) A^T / batch`` (then projected).
    eta : float > 0
        Step of ``update="rank_one"``.

    Attributes
    ----------
    components_ : ndarray (r, p)
        Atoms as rows.
    n_iter_ : int
        Mini-batches seen.
    pulses_ : ndarray of int
        Device pulses per mini-batch (device runs); ``device_array_`` holds the array.
    """

    def __init__(
        self,
        n_components,
        *,
        alpha=1.0,
        batch_size=256,
        n_epochs=10,
        forget=1.0,
        positive_code=False,
        positive_dict=False,
        dict_sweeps=1,
        resample_dead=False,
        code_max_iter=1000,
        code_tol=1e-4,
        random_state=None,
        backend="numba",
        device=None,
        device_options=None,
        update="targets",
        eta=0.1,
    ):
        self.device = device
        self.device_options = device_options
        self.update = update
        self.eta = eta
        self.n_components = n_components
        self.alpha = alpha
        self.batch_size = batch_size
        self.n_epochs = n_epochs
        self.forget = forget
        self.positive_code = positive_code
        self.positive_dict = positive_dict
        self.dict_sweeps = dict_sweeps
        self.resample_dead = resample_dead
        self.code_max_iter = code_max_iter
        self.code_tol = code_tol
        self.random_state = random_state
        self.backend = backend

    def _validate(self):
        check_int("n_components", self.n_components, lo=1)
        check_real("alpha", self.alpha, lo=0.0)
        check_int("batch_size", self.batch_size, lo=1)
        check_int("n_epochs", self.n_epochs, lo=1)
        check_real("forget", self.forget, lo=0.0, hi=1.0, lo_open=True)
        check_int("dict_sweeps", self.dict_sweeps, lo=1)
        check_int("code_max_iter", self.code_max_iter, lo=1)
        check_real("code_tol", self.code_tol, lo=0.0)
        check_choice("backend", self.backend, ("numba", "numpy"))
        check_choice("update", self.update, ("targets", "rank_one"))
        check_real("eta", self.eta, lo=0.0, lo_open=True)
        return check_device(self.device, self.device_options)

    def _init(self, X, rng):
        opts, w_max = self._validate()
        n, p = X.shape
        r = self.n_components
        idx = rng.choice(n, size=r, replace=r > n)
        D = X[idx].T.copy()
        D += 1e-3 * rng.standard_normal(D.shape)  # break ties between duplicated samples
        self._D = project_W(D / np.maximum(np.linalg.norm(D, axis=0), 1e-12), self.positive_dict)
        self._A = np.zeros((r, r))
        self._B = np.zeros((p, r))
        self._rng = rng
        self.n_features_in_ = p
        self.n_iter_ = 0
        self._array, self._opts, self._pulses = None, opts, []
        if self.device is not None:
            self._array = make_array((p, r), self.device, opts, w_max, self._D)
            self._D = self._array.weights(noise=False)

    def _codes(self, Xc, D):
        G = D.T @ D
        C = D.T @ Xc
        A0 = np.zeros_like(C)
        return lasso_cd(
            G, C, A0, float(self.alpha), bool(self.positive_code), int(self.code_max_iter),
            float(self.code_tol), backend=self.backend,
        )  # fmt: skip

    def _step(self, Xb):
        Xc = Xb.T
        D_read = self._D if self._array is None else self._array.weights(noise=True)
        D = D_read.copy()
        a = self._codes(Xc, D)
        rho = float(self.forget)
        self._A = rho * self._A + a @ a.T
        self._B = rho * self._B + Xc @ a.T
        A, B = self._A, self._B
        if self.update == "rank_one":
            D = D + float(self.eta) * ((Xc - D @ a) @ a.T) / Xc.shape[1]
            D = project_W(D, self.positive_dict)
        for _ in range(int(self.dict_sweeps) if self.update == "targets" else 0):
            for j in range(D.shape[1]):
                ajj = A[j, j]
                if ajj < 1e-10:
                    if self.resample_dead:
                        d = Xc[:, self._rng.integers(Xc.shape[1])].copy()
                        D[:, j] = d / max(np.linalg.norm(d), 1e-12)
                    continue
                u = D[:, j] + (B[:, j] - D @ A[:, j]) / ajj
                if self.positive_dict:
                    u = np.maximum(u, 0.0)
                D[:, j] = u / max(1.0, float(np.linalg.norm(u)))
        if self._array is None:
            self._D = D
        else:
            self._pulses.append(write_target(self._array, D_read, D, self._opts))
            self._D = self._array.weights(noise=False)
        self.n_iter_ += 1

    def fit(self, X, y=None):
        """Learn the dictionary from ``X`` (n_samples, n_features) over ``n_epochs``."""
        X = check_data(self, X, reset=True)
        self._init(X, as_generator(self.random_state))
        n = X.shape[0]
        bs = int(self.batch_size)
        for _ in range(int(self.n_epochs)):
            order = self._rng.permutation(n)
            for s in range(0, n, bs):
                self._step(X[order[s : s + bs]])
        self._finish()
        return self

    def partial_fit(self, X, y=None):
        """Update with one mini-batch ``X`` (initializing from it on the first call)."""
        first = not hasattr(self, "_D")
        X = check_data(self, X, reset=first)
        if first:
            self._init(X, as_generator(self.random_state))
        self._step(X)
        self._finish()
        return self

    def _finish(self):
        self.components_ = self._D.T.copy()
        if self._array is not None:
            self.pulses_ = np.array(self._pulses, dtype=np.int64)
            self.device_array_ = self._array
            self.device_counters_ = self._array.counters()

    def transform(self, X):
        """Lasso codes of ``X`` on the learned dictionary, shape (n, r)."""
        check_fitted(self, "components_")
        X = check_data(self, X, reset=False)
        return self._codes(X.T, self.components_.T).T


class NMF(TransformerMixin, BaseEstimator):
    """Nonnegative matrix factorization ``min ||X - W H||_F^2``, ``W, H >= 0``.

    ``solver="pg"``: the BCD of section 4 with the loss term off (``inner_steps`` projected
    gradient steps per block, columns of W in the unit ball); ``"mu"``: Lee-Seung multiplicative
    updates (columns of W rescaled to unit norm after each update, H compensated).

    Parameters
    ----------
    n_components : int
    max_iter : int
    inner_steps : int
    solver : {"pg", "mu"}
    tol : float
        Stop when the relative decrease of the objective over 10 iterations is below ``tol``.
    random_state : None, int, numpy.random.RandomState or numpy.random.Generator

    Attributes
    ----------
    components_ : ndarray (r, p)
        ``W^T``.
    objective_ : ndarray
        ``||X - WH||^2`` at the start and after every iteration.
    reconstruction_err_ : float
        Frobenius norm of the final residual.
    """

    def __init__(
        self, n_components, *, max_iter=300, inner_steps=5, solver="pg", tol=0.0,
        random_state=None,
    ):  # fmt: skip
        self.n_components = n_components
        self.max_iter = max_iter
        self.inner_steps = inner_steps
        self.solver = solver
        self.tol = tol
        self.random_state = random_state

    def fit(self, X, y=None):
        """Factorize ``X`` (n_samples, n_features); negative entries are allowed in the data
        (the factors stay nonnegative)."""
        self.fit_transform(X)
        return self

    def fit_transform(self, X, y=None):
        """Fit and return the codes ``H^T`` (n, r)."""
        X = check_data(self, X, reset=True)
        r = check_int("n_components", self.n_components, lo=1)
        max_iter = check_int("max_iter", self.max_iter, lo=1)
        inner = check_int("inner_steps", self.inner_steps, lo=1)
        solver = check_choice("solver", self.solver, ("pg", "mu"))
        tol = check_real("tol", self.tol, lo=0.0)
        rng = as_generator(self.random_state)
        Xc = X.T
        p, n = Xc.shape
        W = project_W(rng.random((p, r)), True)
        H = np.maximum(np.linalg.lstsq(W, Xc, rcond=None)[0], 0.0)
        if solver == "mu":
            H = np.maximum(H, 1e-3)  # multiplicative updates cannot leave exact zeros
            Xp = np.maximum(Xc, 0.0)
        obj = [float(np.sum((Xc - W @ H) ** 2))]
        for it in range(max_iter):
            if solver == "pg":
                WtW, WtX = W.T @ W, W.T @ Xc
                L = 2.0 * spectral_norm(WtW)
                for _ in range(inner):
                    H = np.maximum(H - 2.0 * (WtW @ H - WtX) / L, 0.0)
                HHt, XHt = H @ H.T, Xc @ H.T
                L = 2.0 * spectral_norm(HHt)
                if L > 0:
                    for _ in range(inner):
                        W = project_W(W - 2.0 * (W @ HHt - XHt) / L, True)
            else:
                H *= (W.T @ Xp) / np.maximum(W.T @ W @ H, 1e-300)
                W *= (Xp @ H.T) / np.maximum(W @ (H @ H.T), 1e-300)
                c = np.maximum(np.linalg.norm(W, axis=0), 1e-300)
                W /= c
                H *= c[:, None]
            obj.append(float(np.sum((Xc - W @ H) ** 2)))
            if tol > 0 and it >= 10 and obj[-11] - obj[-1] <= tol * obj[-11]:
                break
        self.components_ = W.T.copy()
        self.objective_ = np.array(obj)
        self.n_iter_ = len(obj) - 1
        self.reconstruction_err_ = float(np.sqrt(obj[-1]))
        return H.T.copy()

    def transform(self, X):
        """Nonnegative least-squares codes on the learned dictionary, shape (n, r)."""
        from .sdl import sparse_codes

        check_fitted(self, "components_")
        X = check_data(self, X, reset=False)
        return sparse_codes(X.T, self.components_.T, nonneg=True).T


class LogisticRidge(ClassifierMixin, BaseEstimator):
    """Ridge logistic / multinomial regression on ``[X; X_aux]`` (the LR baseline; Newton).

    Parameters
    ----------
    link : {"auto", "logistic", "multinomial"}
        ``"auto"`` (default): logistic for two classes, multinomial (first class in sorted order
        as the reference) for more.
    nu : float >= 0
        Ridge on the slopes (the intercept is free).
    max_iter : int
        Most Newton iterations.

    Attributes
    ----------
    coef_ : ndarray (kappa, p + q)
        Slopes (``kappa = K - 1``: class 0 is the reference); ``components_`` is the same array.
    intercept_ : ndarray (kappa,)
    classes_ : ndarray
    link_ : str
        The link used.
    n_iter_ : int
        Newton iterations run.
    n_features_in_ : int
    """

    def __init__(self, *, link="auto", nu=1.0, max_iter=100):
        self.link = link
        self.nu = nu
        self.max_iter = max_iter

    def fit(self, X, y, X_aux=None):
        """Fit on ``[X, X_aux]`` (n, p + q) and labels ``y`` (n,)."""
        check_choice("link", self.link, LINK_CHOICES)
        nu = check_real("nu", self.nu, lo=0.0)
        check_int("max_iter", self.max_iter, lo=1)
        F = self._stack(X, X_aux, fitting=True)
        y = check_labels(y, F.shape[0])
        classes = np.unique(y)
        link = resolve_link(self.link, classes.size)
        if classes.size < 2 or (link == "logistic" and classes.size != 2):
            raise ValueError(
                f"y has {classes.size} class{'es' if classes.size != 1 else ''}; link={link!r} "
                f"needs {'2' if link == 'logistic' else '>= 2'}"
            )
        self.classes_ = classes
        self.link_ = link
        K = classes.size
        self._link = Link(link, K if link == "multinomial" else None)
        idx = np.searchsorted(classes, y)
        Y = np.zeros((K - 1, y.size))
        m = idx > 0
        Y[idx[m] - 1, np.flatnonzero(m)] = 1.0
        Z = np.ones((1, y.size))
        b, g, _, n_iter = ridge_link_fit(
            self._link, Y, F.T, Z, np.zeros((K - 1, F.shape[1])), np.zeros((K - 1, 1)), nu,
            max_iter=int(self.max_iter), return_n_iter=True,
        )  # fmt: skip
        self.coef_ = self.components_ = b
        self.intercept_ = g[:, 0]
        self.n_iter_ = n_iter
        return self

    def _stack(self, X, X_aux, fitting=False):
        X = check_data(self, X, reset=fitting)
        if fitting:
            self.n_aux_ = 0
        if X_aux is None and self.n_aux_:
            raise ValueError(f"X_aux with {self.n_aux_} columns is required (as in fit)")
        if X_aux is None:
            return X
        A = check_data(self, X_aux, reset=fitting, name="X_aux", n_samples=X.shape[0])
        if fitting:
            self.n_aux_ = A.shape[1]
        elif A.shape[1] != self.n_aux_:
            raise ValueError(f"X_aux must have {self.n_aux_} columns (as in fit), got {A.shape[1]}")
        return np.hstack([X, A])

    def _linear(self, X, X_aux):
        check_fitted(self, "coef_")
        F = self._stack(X, X_aux)
        return self.coef_ @ F.T + self.intercept_[:, None]

    def decision_function(self, X, X_aux=None):
        """Linear predictor: (n,) for two classes (log-odds of the second), (n, K) for the
        multinomial link (reference column 0), so that the argmax is the prediction."""
        D = self._linear(X, X_aux)
        if self.link_ == "logistic":
            return D[0]
        return np.vstack([np.zeros((1, D.shape[1])), D]).T

    def predict_proba(self, X, X_aux=None):
        """Class probabilities (n, K)."""
        D = self._linear(X, X_aux)
        P = self._link.mean(D)
        return np.vstack([1.0 - P.sum(axis=0), P]).T

    def predict(self, X, X_aux=None):
        """Most probable class."""
        P = self.predict_proba(X, X_aux)
        return self.classes_[np.argmax(P, axis=1)]

    def score(self, X, y, X_aux=None) -> float:
        """Accuracy."""
        return float(np.mean(self.predict(X, X_aux) == np.asarray(y)))


class MFLogistic(ClassifierMixin, TransformerMixin, BaseEstimator):
    """MF-LR: an unsupervised factorization with ``r`` components (NMF for nonnegative data,
    else truncated SVD), then :class:`LogisticRidge` on ``[W^T x, x_aux]`` (filter features).

    Parameters
    ----------
    n_components : int
        At most ``min(n_samples, n_features)``.
    factorization : {"auto", "nmf", "svd"}
    link : {"auto", "logistic", "multinomial"}
    nu : float
    nmf_iter : int
    random_state : None, int, numpy.random.RandomState or numpy.random.Generator

    Attributes
    ----------
    components_ : ndarray (r, p)
    lr_ : LogisticRidge
        The regression on the filter features.
    classes_ : ndarray
    factorization_ : str
    n_features_in_ : int
    """

    def __init__(
        self, n_components, *, factorization="auto", link="auto", nu=1.0, nmf_iter=300,
        random_state=None,
    ):  # fmt: skip
        self.n_components = n_components
        self.factorization = factorization
        self.link = link
        self.nu = nu
        self.nmf_iter = nmf_iter
        self.random_state = random_state

    def fit(self, X, y, X_aux=None):
        """Factorize ``X`` then regress ``y`` on the filter features."""
        X = check_data(self, X, reset=True)
        y = check_labels(y, X.shape[0])
        r = check_int("n_components", self.n_components, lo=1, hi=min(X.shape))
        fac = check_choice("factorization", self.factorization, ("auto", "nmf", "svd"))
        if fac == "auto":
            fac = "nmf" if X.min() >= 0 else "svd"
        if fac == "nmf":
            nmf = NMF(r, max_iter=self.nmf_iter, random_state=self.random_state).fit(X)
            W = nmf.components_.T
        else:
            W = np.linalg.svd(X.T, full_matrices=False)[0][:, :r]
        self.factorization_ = fac
        self.components_ = W.T.copy()
        self.lr_ = LogisticRidge(link=self.link, nu=self.nu).fit(X @ W, y, X_aux)
        self.classes_ = self.lr_.classes_
        return self

    def transform(self, X):
        """Filter features ``W^T x``, shape (n, r)."""
        check_fitted(self, "lr_")
        return check_data(self, X, reset=False) @ self.components_.T

    def decision_function(self, X, X_aux=None):
        """Linear predictor of :attr:`lr_` (see :meth:`LogisticRidge.decision_function`)."""
        F = self.transform(X)
        return self.lr_.decision_function(F, X_aux)

    def predict_proba(self, X, X_aux=None):
        """Class probabilities."""
        F = self.transform(X)
        return self.lr_.predict_proba(F, X_aux)

    def predict(self, X, X_aux=None):
        """Predicted labels."""
        F = self.transform(X)
        return self.lr_.predict(F, X_aux)

    def score(self, X, y, X_aux=None) -> float:
        """Accuracy."""
        return float(np.mean(self.predict(X, X_aux) == np.asarray(y)))
