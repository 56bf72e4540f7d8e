"""scikit-learn's own estimator checks on every public estimator of :mod:`learning_rules`.

``parametrize_with_checks`` runs scikit-learn 1.9's API and legacy checks on each estimator with
its default parameters (only the required ``n_components`` given and the iteration counts made
small so the checks stay fast) and, where the estimator takes a device, with ``device=``. A check
that cannot apply is listed in :func:`expected_failed_checks` with its reason (scikit-learn's
``expected_failed_checks`` mechanism); every other check must pass.

The sparse-coding models also take ``weights=``, a device array made by the caller and
programmed in place; it has one fixed shape, so scikit-learn's checks (data of many widths,
clones that must not share state) do not apply to it: ``device=`` is the scikit-learn-style way
to put the dictionary on a device, and is what is checked here.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

import devices
from learning_rules.dictionary import (
    NMF,
    SDL,
    LogisticRidge,
    MFLogistic,
    OnlineDictionaryLearning,
)
from learning_rules.sparse_coding import BSC, DSC, GSC, MCA, MMCA, TSC

IDEAL = devices.get("ideal", c2c_sigma=0, levels_ltp=256, levels_ltd=256)


ESTIMATORS = [
    SDL(3, max_iter=10),
    LogisticRidge(),
    MFLogistic(2, nmf_iter=20),
    NMF(2, max_iter=50),
    OnlineDictionaryLearning(2, n_epochs=2),
    BSC(3, n_iter=3),
    TSC(3, n_iter=3),
    DSC(3, n_iter=3),
    MCA(3, n_iter=3),
    MMCA(3, n_iter=3),
    GSC(3, n_iter=3),
    # the dictionary on a device array
    SDL(3, max_iter=5, device=IDEAL, device_options={"seed": 0}),
    OnlineDictionaryLearning(2, n_epochs=2, device=IDEAL, device_options={"seed": 0}),
    BSC(3, n_iter=3, device=IDEAL, device_options={"seed": 0, "w_max": 4.0}),
]
#: The other sparse-coding models on a device (the device path is ETModel's, shared by all).
SLOW_ESTIMATORS = [
    cls(3, n_iter=3, device=IDEAL, device_options={"seed": 0, "w_max": 4.0})
    for cls in (TSC, DSC, MCA, MMCA, GSC)
]


def expected_failed_checks(estimator) -> dict[str, str]:
    """Checks that cannot apply to ``estimator``, with the reason (none at present: fitted
    device runs pickle since ``devices.DeviceArray`` re-resolves its kernels on unpickling)."""
    return {}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.slow
@parametrize_with_checks(SLOW_ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_estimator_checks_device_models(estimator, check):
    check(estimator)


# ----------------------------------------------------------------------------- the ecosystem
def _multiclass(seed=0, n=150, p=6, k=3):
    rng = np.random.default_rng(seed)
    centers = 3.0 * rng.standard_normal((k, p))
    y = np.arange(n) % k
    return centers[y] + rng.standard_normal((n, p)), y


def test_model_selection_and_pipelines():
    """cross_val_score, GridSearchCV, make_pipeline and clone take the estimators as they take
    scikit-learn's own; link="auto" handles three classes."""
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = _multiclass()
    scores = cross_val_score(LogisticRidge(), X, y, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.9
    grid = GridSearchCV(LogisticRidge(), {"nu": [1e-2, 1.0, 1e4]}, cv=3).fit(X, y)
    assert grid.best_params_["nu"] in (1e-2, 1.0) and grid.best_score_ > 0.9
    pipe = make_pipeline(StandardScaler(), LogisticRidge()).fit(X, y)
    assert pipe.score(X, y) > 0.9
    sdl = SDL(3, nonneg=(False, False, False), max_iter=20, random_state=0)
    assert cross_val_score(sdl, X, y, cv=3).min() > 0.8
    c = clone(SDL(3, xi=0.3, random_state=np.random.RandomState(1)))
    assert c.get_params()["xi"] == 0.3 and c.n_components == 3
    # a transformer inside a pipeline: dictionary features, then the classifier
    pipe = make_pipeline(NMF(3, max_iter=30, random_state=0), LogisticRidge())
    assert pipe.fit(np.abs(X), y).score(np.abs(X), y) > 0.5


def test_multinomial_decision_function_has_K_columns():
    X, y = _multiclass(1)
    for est in (
        LogisticRidge(link="multinomial"),
        SDL(3, link="multinomial", nonneg=(False, False, False), max_iter=10, random_state=0),
        MFLogistic(3, link="multinomial"),
    ):
        est.fit(X, y)
        D = est.decision_function(X)
        assert D.shape == (X.shape[0], 3)
        np.testing.assert_array_equal(est.classes_[np.argmax(D, axis=1)], est.predict(X))
        np.testing.assert_array_equal(np.argmax(D, axis=1), np.argmax(est.predict_proba(X), axis=1))
        assert np.all(D[:, 0] == 0)  # the reference class
    Xb, yb = X[y < 2], y[y < 2]
    lr = LogisticRidge().fit(Xb, yb)
    assert lr.decision_function(Xb).shape == (Xb.shape[0],) and lr.link_ == "logistic"
    np.testing.assert_array_equal(lr.decision_function(Xb) > 0, lr.predict(Xb) == 1)


def test_contract_errors():
    """The failures of issue 19 each raise scikit-learn's error (or work)."""
    import scipy.sparse as sp
    from sklearn.exceptions import DataConversionWarning, NotFittedError

    X, y = _multiclass(2)
    Xb, yb = X[y < 2], y[y < 2]
    for est in (
        SDL(2, max_iter=2, random_state=0),
        LogisticRidge(),
        MFLogistic(2),
        NMF(2),
        BSC(3, n_iter=1),
    ):
        needs_y = not isinstance(est, NMF | BSC)
        args = (yb,) if needs_y else ()
        with pytest.raises(ValueError, match="Complex data not supported"):
            est.fit(Xb + 1j, *args)
        with pytest.raises(TypeError, match="sparse input is not supported"):
            est.fit(sp.csr_matrix(Xb), *args)
        with pytest.raises(NotFittedError, match="not fitted"):
            est.predict(Xb) if hasattr(est, "predict") else est.transform(Xb)
        if needs_y:
            with pytest.raises(ValueError, match="Unknown label type"):
                est.fit(Xb, yb + 0.5 * np.arange(yb.size) / yb.size)
            flat = est.fit(Xb, yb).predict(Xb)
            with pytest.warns(DataConversionWarning, match="column-vector y"):
                est.fit(Xb, yb[:, None])
            np.testing.assert_array_equal(est.predict(Xb), flat)
    lr = LogisticRidge(max_iter=3).fit(Xb, yb)
    assert 1 <= lr.n_iter_ <= 3
    assert LogisticRidge().fit(Xb, yb).n_iter_ > lr.n_iter_


@pytest.mark.parametrize("seed", [None, 3, np.random.RandomState(3), np.random.default_rng(3)])
def test_random_state_kinds(seed):
    X, y = _multiclass(3)
    Xb, yb = X[y < 2], y[y < 2]
    m = SDL(2, max_iter=3, random_state=seed).fit(Xb, yb)
    assert np.all(np.isfinite(m.components_))
    b = BSC(3, n_iter=2, random_state=seed).fit(Xb)
    assert np.all(np.isfinite(b.W_))
    with pytest.raises(ValueError, match="random_state"):
        SDL(2, max_iter=1, random_state=-1).fit(Xb, yb)
    with pytest.raises(ValueError, match="random_state"):
        SDL(2, max_iter=1, random_state="zero").fit(Xb, yb)


def test_int_seed_keeps_the_seeded_stream():
    """An int seed means numpy.random.default_rng(seed), as before: the same result as the
    Generator itself; a RandomState is a different (but reproducible) stream."""
    X, y = _multiclass(4)
    Xb, yb = X[y < 2], y[y < 2]
    a = SDL(2, max_iter=3, random_state=5).fit(Xb, yb)
    b = SDL(2, max_iter=3, random_state=np.random.default_rng(5)).fit(Xb, yb)
    np.testing.assert_array_equal(a.components_, b.components_)
    c = SDL(2, max_iter=3, random_state=np.random.RandomState(5)).fit(Xb, yb)
    d = SDL(2, max_iter=3, random_state=np.random.RandomState(5)).fit(Xb, yb)
    np.testing.assert_array_equal(c.components_, d.components_)


@pytest.mark.parametrize("device", [None, IDEAL])
def test_pickle_and_deepcopy_fitted(device):
    """A fitted estimator survives pickle and deepcopy with the same predictions (device runs
    included)."""
    import copy

    X, y = _multiclass(5)
    Xb, yb = X[y < 2], y[y < 2]
    kw = {} if device is None else {"device": device, "device_options": {"seed": 0}}
    ests = [
        SDL(2, max_iter=3, random_state=0, **kw).fit(Xb, yb),
        OnlineDictionaryLearning(2, n_epochs=1, random_state=0, **kw).fit(Xb),
        BSC(3, n_iter=2, random_state=0, **kw).fit(X),
    ]
    if device is None:
        ests += [
            LogisticRidge().fit(X, y),
            MFLogistic(2).fit(X, y),
            NMF(2, max_iter=5, random_state=0).fit(np.abs(X)),
            GSC(3, n_iter=2, random_state=0).fit(X),
        ]
    for est in ests:
        Xe = np.abs(X) if isinstance(est, NMF) else (Xb if hasattr(est, "classes_") else X)
        if isinstance(est, SDL):
            Xe = Xb
        ref = est.predict(Xe) if hasattr(est, "predict") else est.transform(Xe)
        for twin in (pickle.loads(pickle.dumps(est)), copy.deepcopy(est)):
            out = twin.predict(Xe) if hasattr(twin, "predict") else twin.transform(Xe)
            np.testing.assert_array_equal(out, ref)
