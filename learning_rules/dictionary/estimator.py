"""scikit-learn plumbing shared by the estimators of :mod:`learning_rules` (dictionary learning
and sparse coding).

The estimators derive from :class:`sklearn.base.BaseEstimator` (``get_params``, ``set_params``,
``clone``, ``__sklearn_tags__``); this module adds what they share on top of it: the data check
(:func:`check_data`: dense, real, finite, 2-D; the feature count remembered from ``fit``), the
random state (:func:`as_generator`: ``None``, an int, a ``numpy.random.RandomState`` or a
``numpy.random.Generator``), the fitted check (:func:`check_fitted`, raising
:class:`NotFittedError`, a subclass of scikit-learn's) and the label check of the classifiers
(:func:`check_labels`).
"""

from __future__ import annotations

import numbers

import numpy as np
import sklearn.exceptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, column_or_1d, validate_data

__all__ = ["NotFittedError", "as_generator", "check_data", "check_fitted", "check_labels"]


class NotFittedError(sklearn.exceptions.NotFittedError):
    """Raised when an estimator is used before :meth:`fit` (a
    :class:`sklearn.exceptions.NotFittedError`, so also a ``ValueError`` and an
    ``AttributeError``)."""


def as_generator(random_state) -> np.random.Generator:
    """A ``numpy.random.Generator`` from ``random_state``.

    Parameters
    ----------
    random_state : None, int >= 0, numpy.random.RandomState or numpy.random.Generator
        ``None``: fresh entropy; an int: ``numpy.random.default_rng(int)`` (the seeded streams of
        the package); a ``RandomState`` (scikit-learn's convention): a Generator seeded by one
        draw from it (so the state advances, as scikit-learn estimators do); a ``Generator``:
        used as is.

    Returns
    -------
    numpy.random.Generator
    """
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None:
        return np.random.default_rng()
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(int(random_state.randint(np.iinfo(np.int64).max)))
    if (
        isinstance(random_state, numbers.Integral)
        and not isinstance(random_state, (bool, np.bool_))
        and random_state >= 0
    ):
        return np.random.default_rng(int(random_state))
    raise ValueError(
        "random_state must be None, a non-negative int, a numpy.random.RandomState or a "
        f"numpy.random.Generator, got {random_state!r}"
    )


def check_data(estimator, X, *, reset: bool, name: str = "X", n_samples: int | None = None):
    """``X`` as a finite, real float64 array of shape (n_samples, n_features).

    Sparse matrices are refused (``TypeError`` naming ``.toarray()``), complex data, NaN,
    infinities, empty arrays and anything not 2-D raise ``ValueError``. With ``reset`` the
    feature count (and the column names of a DataFrame) is stored on ``estimator`` as
    ``n_features_in_`` (``feature_names_in_``); otherwise ``X`` must match what ``fit`` saw
    (scikit-learn's message ``X has k features, but ... is expecting m features``).

    Parameters
    ----------
    estimator : BaseEstimator
    X : array_like
    reset : bool
        True in ``fit`` (store the feature count), False afterwards (check it).
    name : str
        Name of the argument in messages.
    n_samples : int, optional
        Required number of rows (side covariates such as ``X_aux``: then the feature count is
        neither stored nor checked here).

    Returns
    -------
    ndarray of float64
    """
    if hasattr(X, "toarray") or hasattr(X, "tocsr"):  # scipy.sparse (matrix or array)
        raise TypeError(
            f"{name}: sparse input is not supported by {type(estimator).__name__}; pass a dense "
            f"array ({name}.toarray())"
        )
    if not hasattr(X, "shape"):  # a list or another array-like without names
        X = np.asarray(X)
    if len(X.shape) != 2:
        raise ValueError(
            f"{name} must have shape (n_samples, n_features), got {tuple(X.shape)}. Reshape your "
            f"data: {name}.reshape(-1, 1) for a single feature, {name}.reshape(1, -1) for a "
            "single sample"
        )
    if n_samples is None:  # the data (not side covariates): feature count and names
        validate_data(estimator, X, reset=reset, skip_check_array=True)
    out = check_array(X, dtype=np.float64, input_name=name)
    if n_samples is not None and out.shape[0] != n_samples:
        raise ValueError(f"{name} must have {n_samples} rows (one per sample), got {out.shape[0]}")
    return out


def check_fitted(estimator, attribute: str) -> None:
    """Raise :class:`NotFittedError` unless ``estimator`` has ``attribute`` (set by ``fit``)."""
    if not hasattr(estimator, attribute):
        raise NotFittedError(
            f"This {type(estimator).__name__} instance is not fitted yet; call fit() first"
        )


def check_labels(y, n_samples: int, *, multilabel: bool = False):
    """Classification targets: a 1-D array of ``n_samples`` labels.

    A column vector ``(n, 1)`` is raveled with scikit-learn's ``DataConversionWarning``;
    continuous targets are refused (:func:`sklearn.utils.multiclass.check_classification_targets`).
    With ``multilabel``, a ``(n, k)`` 0/1 matrix (``k >= 2``) is returned as is.
    """
    if y is None:
        raise ValueError("this classifier requires y to be passed, but the target y is None")
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = column_or_1d(y, warn=True)
    if y.ndim == 2 and multilabel:
        if y.shape[0] != n_samples:
            raise ValueError(f"y must have {n_samples} rows (one per sample), got {y.shape[0]}")
        if not np.all((y == 0) | (y == 1)):
            raise ValueError("y as a 2-D label matrix must hold only 0 and 1")
        return y
    if y.ndim != 1 or y.shape[0] != n_samples:
        raise ValueError(f"y must have shape ({n_samples},), got {y.shape}")
    check_classification_targets(y)
    return y
