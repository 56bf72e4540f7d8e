"""Sparse coding: BSC with Expectation Truncation, the bars test, LCA (specs/sparse_coding.md).

Acceptance checks covered: SC1 (exact posterior, BSC and TSC; full and truncated state sets),
SC2 (monotone EM, BSC and TSC; BSC with its offset ``mu``),
SC3 (bars test; the published setting in the slow marker), SC4 for TSC (short form; published
setting in the slow marker), SC5 (numba kernel == numpy reference), SC6 (schedules), SC7 (LCA).
DSC, MCA, MMCA, GSC, SC8 (EM on device arrays) and Dask are tested in test_sparse_models.py and
test_sparse_dask.py.
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import ortho_group

import devices
from learning_rules import FloatWeights
from learning_rules.sparse_coding import (
    BSC,
    RECOVERY_THRESHOLD,
    TSC,
    Schedule,
    bars_data,
    bars_dictionary,
    bsc_schedule,
    lca,
    lca_dictionary,
    log_joint_linear_numba,
    log_joint_linear_reference,
    match_fields,
    multi_cause_states,
    prior_mass,
    soft_threshold,
)

W_BARS = 10.0 * bars_dictionary(10)


def _bars(seed, n=1000, pi=0.2, sigma=2.0, W=W_BARS):
    Y, S = bars_data("bsc", {"W": W, "pi": pi, "sigma": sigma}, n, np.random.default_rng(seed))
    return Y, S


def _fitted(H, D, h_prime, gamma, seed=0, cls=None):
    """A BSC (or ``cls``) with random parameters set by hand (no training)."""
    rng = np.random.default_rng(seed)
    m = (cls or BSC)(H, h_prime=h_prime, gamma=gamma, n_iter=1, backend="numpy", random_state=seed)
    m._validate()
    m.W_ = rng.normal(0.0, 1.5, (D, H))
    m.pi_ = 0.3
    m.sigma_ = 0.8
    m.n_features_in_ = D
    return m, rng


def _brute_log_joint(Y, W, pi, sigma, states, ternary=False):
    """log p(s, y) for every state (rows of ``states``) by direct evaluation."""
    D, H = W.shape
    k = np.count_nonzero(states, axis=1)
    p_on = pi / 2 if ternary else pi
    log_prior = k * math.log(p_on) + (H - k) * math.log(1 - pi)
    resid = Y[:, None, :] - (states @ W.T)[None, :, :]
    r2 = (resid**2).sum(axis=2)
    return log_prior[None, :] - 0.5 * D * math.log(2 * math.pi * sigma**2) - r2 / (2 * sigma**2)


ALL6 = np.array(list(itertools.product([0.0, 1.0], repeat=6)))


def _key(s):
    return tuple(np.asarray(s).astype(int))


# ----------------------------------------------------------------------------- SC1
def test_estep_full_state_set_equals_brute_force():
    H, D = 6, 9
    m, rng = _fitted(H, D, h_prime=H, gamma=H)
    Y = rng.normal(0.0, 2.0, (7, D))
    S_all = m._ss.n_active.size
    assert S_all == 2**H
    cand, lj, logZ, q = m._estep(Y, m._theta())
    vecs = m._ss.vectors(np.tile(np.arange(S_all), (len(Y), 1)), cand)
    brute = _brute_log_joint(Y, m.W_, m.pi_, m.sigma_, ALL6)
    index = {_key(s): i for i, s in enumerate(ALL6)}
    for n in range(len(Y)):
        order = [index[_key(s)] for s in vecs[n]]
        assert sorted(order) == list(range(2**H))  # every state exactly once
        np.testing.assert_allclose(lj[n], brute[n, order], rtol=1e-12, atol=0)
    # posterior moments and marginals
    post = np.exp(brute - logsumexp(brute, axis=1, keepdims=True))
    Es, Ess = m._ss.mean(q, cand), m._ss.second_moment(q, cand)
    np.testing.assert_allclose(Es, post @ ALL6, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(Ess, np.einsum("ns,si,sj->ij", post, ALL6, ALL6), rtol=1e-10)
    np.testing.assert_allclose(m.transform(Y), post @ ALL6, rtol=1e-10, atol=1e-14)
    # top-k states and their probabilities
    info = m.infer(Y, top_k=3)
    for n in range(len(Y)):
        best = np.argsort(-post[n], kind="stable")[:3]
        np.testing.assert_allclose(info["probs"][n], post[n, best], rtol=1e-10)
        np.testing.assert_array_equal(info["states"][n], ALL6[best])
    # with gamma = H' = H the truncated likelihood is the exact one (A = 1)
    exact = np.mean(logsumexp(brute, axis=1))
    assert m.score(Y) == pytest.approx(exact, rel=1e-10)


def test_estep_truncated_equals_brute_force_restricted_to_state_set():
    H, D, hp, gamma = 6, 9, 4, 3
    m, rng = _fitted(H, D, h_prime=hp, gamma=gamma, seed=1)
    Y = rng.normal(0.0, 2.0, (6, D))
    cand, lj, logZ, q = m._estep(Y, m._theta())
    brute = _brute_log_joint(Y, m.W_, m.pi_, m.sigma_, ALL6)
    k = ALL6.sum(axis=1)
    for n in range(len(Y)):
        outside = np.ones(H, bool)
        outside[cand[n]] = False
        in_K = (k <= 1) | ((k <= gamma) & (ALL6[:, outside].sum(axis=1) == 0))
        assert in_K.sum() == lj.shape[1]
        ref = brute[n, in_K]
        post = np.exp(ref - logsumexp(ref))
        np.testing.assert_allclose(logZ[n], logsumexp(ref), rtol=1e-12)
        np.testing.assert_allclose(m.transform(Y[n : n + 1])[0], post @ ALL6[in_K], rtol=1e-10)
    # candidates are the H' largest cosines
    cos = (Y @ m.W_) / np.linalg.norm(m.W_, axis=0) / np.linalg.norm(Y, axis=1)[:, None]
    for n in range(len(Y)):
        assert set(cand[n]) == set(np.argsort(-cos[n])[:hp])


ALL6_TERNARY = np.array(list(itertools.product([-1.0, 0.0, 1.0], repeat=6)))


def test_tsc_estep_full_state_set_equals_brute_force():
    H, D = 6, 9
    m, rng = _fitted(H, D, h_prime=H, gamma=H, seed=2, cls=TSC)
    Y = rng.normal(0.0, 2.0, (5, D))
    assert m._ss.n_active.size == 3**H
    cand, lj, logZ, q = m._estep(Y, m._theta())
    vecs = m._ss.vectors(np.tile(np.arange(3**H), (len(Y), 1)), cand)
    brute = _brute_log_joint(Y, m.W_, m.pi_, m.sigma_, ALL6_TERNARY, ternary=True)
    index = {_key(s): i for i, s in enumerate(ALL6_TERNARY)}
    for n in range(len(Y)):
        order = [index[_key(s)] for s in vecs[n]]
        assert sorted(order) == list(range(3**H))
        np.testing.assert_allclose(lj[n], brute[n, order], rtol=1e-12, atol=0)
    post = np.exp(brute - logsumexp(brute, axis=1, keepdims=True))
    Es, Ess = m._ss.mean(q, cand), m._ss.second_moment(q, cand)
    np.testing.assert_allclose(Es, post @ ALL6_TERNARY, rtol=1e-10, atol=1e-13)
    Ess_ref = np.einsum("ns,si,sj->ij", post, ALL6_TERNARY, ALL6_TERNARY)
    np.testing.assert_allclose(Ess, Ess_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(m.transform(Y), post @ (ALL6_TERNARY != 0), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(m.infer(Y)["mean"], Es, rtol=1e-12, atol=1e-14)
    assert m.score(Y) == pytest.approx(np.mean(logsumexp(brute, axis=1)), rel=1e-10)


def test_tsc_truncated_equals_brute_force_restricted():
    """SC1 with H' < H (TSC): the posterior is brute force restricted to K_n."""
    H, D, hp, gamma = 6, 9, 4, 2
    m, rng = _fitted(H, D, h_prime=hp, gamma=gamma, seed=4, cls=TSC)
    Y = rng.normal(0.0, 2.0, (6, D))
    cand, lj, logZ, q = m._estep(Y, m._theta())
    brute = _brute_log_joint(Y, m.W_, m.pi_, m.sigma_, ALL6_TERNARY, ternary=True)
    k = np.count_nonzero(ALL6_TERNARY, axis=1)
    for n in range(len(Y)):
        outside = np.ones(H, bool)
        outside[cand[n]] = False
        in_K = (k <= 1) | ((k <= gamma) & (np.count_nonzero(ALL6_TERNARY[:, outside], axis=1) == 0))
        assert in_K.sum() == lj.shape[1] == 1 + 2 * H + math.comb(hp, 2) * 4
        ref = brute[n, in_K]
        np.testing.assert_allclose(logZ[n], logsumexp(ref), rtol=1e-12)
        np.testing.assert_allclose(np.sort(lj[n]), np.sort(ref), rtol=1e-12)
        post = np.exp(ref - logsumexp(ref))
        np.testing.assert_allclose(
            m.transform(Y[n : n + 1])[0], post @ (ALL6_TERNARY[in_K] != 0), rtol=1e-10, atol=1e-13
        )


def test_tsc_candidates_are_best_singletons():
    m, rng = _fitted(10, 25, h_prime=4, gamma=3, seed=3, cls=TSC)
    Y = rng.normal(0.0, 3.0, (8, 25))
    cand = m._select(Y, m._theta(), m._ss)
    single = np.array([[v, h] for h in range(10) for v in (-1.0, 1.0)])
    for n in range(len(Y)):
        r2 = [np.sum((Y[n] - v * m.W_[:, int(h)]) ** 2) for v, h in single]
        best = []
        for j in np.argsort(r2, kind="stable"):
            h = int(single[j, 1])
            if h not in best:
                best.append(h)
        assert set(cand[n]) == set(best[:4])


def test_tsc_monotone_and_short_bars_run():
    W6 = 10.0 * bars_dictionary(6)
    Y, _ = bars_data("tsc", {"W": W6, "pi": 0.3, "sigma": 2.0}, 200, np.random.default_rng(0))
    m = TSC(6, h_prime=6, gamma=6, n_iter=25, anneal=False, random_state=0).fit(Y)
    L = m.log_likelihood_
    assert np.all(np.diff(L) >= -1e-10 * np.abs(L[:-1]))
    # SC4 default form: published sizes, short run, finite and improving
    Y, S = bars_data("tsc", {"W": W_BARS, "pi": 0.2, "sigma": 2.0}, 300, np.random.default_rng(0))
    assert set(np.unique(S)) == {-1.0, 0.0, 1.0}
    m = TSC(10, h_prime=7, gamma=5, n_iter=30, random_state=0).fit(Y)
    assert np.all(np.isfinite(m.W_)) and np.isfinite(m.pi_) and np.isfinite(m.sigma_)
    assert m.log_likelihood_[-1] > m.log_likelihood_[0]
    assert m.schedule_values_["T"][0] == 2.0 and m.schedule_values_["T"][-1] == 1.0


@pytest.mark.slow
def test_tsc_bars_published():
    """SC4 (TSC): published setting (300 steps), seeds 0-9, mean recovered bars >= 8.0."""
    n_rec = []
    for seed in range(10):
        Y, _ = bars_data("tsc", {"W": W_BARS, "pi": 0.2, "sigma": 2.0}, 1000, seed)
        m = TSC(10, h_prime=7, gamma=5, random_state=seed).fit(Y[:900])
        n_rec.append(match_fields(m.W_, W_BARS, sign_invariant=True)[2])
    assert np.mean(n_rec) >= 8.0


def test_multi_cause_states_and_prior_mass():
    st = multi_cause_states(8, 5)
    assert st.shape == (sum(math.comb(8, g) for g in range(2, 6)), 8)
    assert len({_key(s) for s in st}) == len(st)
    assert st.sum(axis=1).min() == 2 and st.sum(axis=1).max() == 5
    A, B = prior_mass(0.2, 10, 10)
    assert A == pytest.approx(1.0) and B == pytest.approx(2.0)
    A, B = prior_mass(0.2, 10, 5)
    assert 0.99 < A < 1.0 and B < 2.0


# ----------------------------------------------------------------------------- SC5
@pytest.mark.parametrize("values", [(1.0,), (-1.0, 1.0)])
@pytest.mark.parametrize("beta", [1.0, 0.3])
def test_numba_log_joint_equals_reference(values, beta):
    rng = np.random.default_rng(3)
    N, D, H, hp, gamma = 40, 25, 10, 6, 4
    Y = rng.normal(0, 3, (N, D))
    W = rng.normal(0, 2, (D, H))
    cand = np.sort(np.argsort(rng.random((N, H)), axis=1)[:, :hp], axis=1)
    vals = np.array(values)
    states = multi_cause_states(hp, gamma, values)
    lp = rng.normal(0, 1, 1 + H * len(values) + len(states))
    ref = log_joint_linear_reference(Y, W, cand, states, lp, 1.7, beta, vals)
    fast = log_joint_linear_numba(Y, W, cand, states, lp, 1.7, beta, vals)
    assert ref.shape == (N, 1 + H * len(values) + len(states))
    np.testing.assert_allclose(fast, ref, rtol=1e-10, atol=1e-10)


def test_numba_and_numpy_fits_agree():
    Y, _ = _bars(0, n=300)
    a = BSC(10, h_prime=8, gamma=5, n_iter=5, backend="numpy", random_state=0).fit(Y)
    b = BSC(10, h_prime=8, gamma=5, n_iter=5, backend="numba", random_state=0).fit(Y)
    np.testing.assert_allclose(a.W_, b.W_, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(a.log_likelihood_, b.log_likelihood_, rtol=1e-10)


# ----------------------------------------------------------------------------- SC2
def _bars6_data(seed, n=300):
    W = 10.0 * bars_dictionary(6)
    return _bars(seed, n=n, pi=0.3, sigma=2.0, W=W)[0]


@pytest.mark.parametrize("seed", [0, 1])
def test_em_monotone_exact(seed):
    Y = _bars6_data(seed)
    m = BSC(6, h_prime=6, gamma=6, n_iter=100, anneal=False, random_state=seed).fit(Y)
    L = m.log_likelihood_
    assert np.all(np.diff(L) >= -1e-10 * np.abs(L[:-1]))
    assert L[-1] > L[0]


def test_em_truncated_no_large_decrease():
    Y, _ = _bars(0, n=400)
    m = BSC(10, h_prime=8, gamma=5, n_iter=40, anneal=False, random_state=0).fit(Y)
    L = m.log_likelihood_
    assert np.all(np.diff(L) >= -1e-6 * np.abs(L[:-1]))
    assert np.all(m.n_use_ == len(Y))  # Ncut_factor = 0 keeps every point


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(5))
@pytest.mark.gate  # SC2: exact TSC EM is monotone, seeds 0-4 (make gates)
def test_tsc_em_monotone_exact_published(seed):
    """SC2 (TSC): gamma = H' = H = 6, T = 1, all parameters, 100 iterations."""
    W = 10.0 * bars_dictionary(6)
    Y, _ = bars_data("tsc", {"W": W, "pi": 0.3, "sigma": 2.0}, 900, np.random.default_rng(seed))
    m = TSC(6, h_prime=6, gamma=6, n_iter=100, anneal=False, random_state=seed).fit(Y)
    L = m.log_likelihood_
    assert np.all(np.diff(L) >= -1e-10 * np.abs(L[:-1]))


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(5))
@pytest.mark.gate  # SC2: BSC EM monotone at the published sizes (make gates)
def test_em_monotone_published_sizes(seed):
    Y = _bars6_data(seed, n=900)
    m = BSC(6, h_prime=6, gamma=6, n_iter=100, anneal=False, random_state=seed).fit(Y)
    L = m.log_likelihood_
    assert np.all(np.diff(L) >= -1e-10 * np.abs(L[:-1]))
    Y, _ = _bars(seed, n=900)
    m = BSC(10, h_prime=8, gamma=5, n_iter=100, anneal=False, random_state=seed).fit(Y)
    L = m.log_likelihood_
    assert np.all(np.diff(L) >= -1e-6 * np.abs(L[:-1]))


# ----------------------------------------------------------------------------- BSC offset mu
def test_bsc_offset_estep_is_the_centered_model():
    """With ``offset=True`` every E-step quantity is the plain model's on ``y - mu``."""
    H, D = 6, 9
    m, rng = _fitted(H, D, h_prime=4, gamma=3, seed=5)
    mo = BSC(H, h_prime=4, gamma=3, n_iter=1, backend="numpy", offset=True)
    mo._validate()
    mu = rng.normal(0.0, 3.0, D)
    mo._set_theta({**m._theta(), "mu": mu})
    mo.n_features_in_ = D
    Y = rng.normal(0.0, 2.0, (8, D)) + mu
    a, b = m._estep(Y - mu, m._theta()), mo._estep(Y, mo._theta())
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert mo.score(Y) == m.score(Y - mu)
    Ys, _ = mo.sample(4000, random_state=0)
    np.testing.assert_allclose(Ys.mean(axis=0), mu + m.W_.sum(axis=1) * m.pi_, atol=0.3)


def test_bsc_offset_em_learns_mu():
    """SC2-style exact EM with the offset (gamma = H' = H): monotone, mu and the bars recovered;
    the M-step's mu is the spec's ``mean(y) - W_new mean<s>``."""
    W6 = 10.0 * bars_dictionary(6)
    mu = np.linspace(-3.0, 5.0, 9)
    Y = _bars(0, n=300, pi=0.3, sigma=2.0, W=W6)[0] + mu
    m = BSC(6, h_prime=6, gamma=6, n_iter=60, anneal=False, random_state=0, offset=True).fit(Y)
    L = m.log_likelihood_
    assert np.all(np.diff(L) >= -1e-10 * np.abs(L[:-1]))
    assert match_fields(m.W_, W6)[2] == 6
    assert np.max(np.abs(m.mu_ - mu)) < 0.6 and abs(m.sigma_ - 2.0) < 0.1
    plain = BSC(6, h_prime=6, gamma=6, n_iter=60, anneal=False, random_state=0).fit(Y)
    assert plain.log_likelihood_[-1] < L[-1] - 1.0 and not hasattr(plain, "mu_")
    assert "offset" in m.get_params() and not plain.get_params()["offset"]
    # one M-step by hand: stationarity in mu
    th = m._theta()
    cand, lj, logZ, q = m._estep(Y, th)
    st = m._suff_stats(Y, q, cand, th, m._ss)
    new = m._mstep(st, th, len(Y), 9)
    np.testing.assert_allclose(new["mu"], (st["S_y"] - new["W"] @ st["S_s"]) / len(Y), atol=1e-9)
    # W fixed: mu is the same formula with the current W
    m.set_params(learn=("pi", "sigma"))
    m._validate()
    fixed = m._mstep(st, th, len(Y), 9)
    np.testing.assert_array_equal(fixed["W"], th["W"])
    np.testing.assert_allclose(fixed["mu"], (st["S_y"] - th["W"] @ st["S_s"]) / len(Y))


# ----------------------------------------------------------------------------- SC6
def test_schedule_values():
    s = bsc_schedule(150)
    T = [s.value("T", t) for t in (0, 99, 100, 119, 120, 149)]
    np.testing.assert_allclose(
        T, [5.0, 5 - 4 * 99 / 120, 5 - 4 * 100 / 120, 5 - 4 * 119 / 120, 1, 1]
    )
    nc = [s.value("Ncut_factor", t) for t in (0, 99, 100, 119, 120, 149)]
    np.testing.assert_allclose(nc, [0.0, 0.99, 1.0, 1.0, 1.0, 1.0])
    tut = Schedule(50, T=[(15, 1.0), (-10, 1.0)])
    assert all(tut.value("T", t) == 1.0 for t in (0, 14, 15, 40, 49))
    keys = ("partial", "W_noise", "pi_noise", "sigma_noise", "data_noise")
    for key, default in zip(keys, (1.0, 0.0, 0.0, 0.0, 0.0), strict=True):
        assert all(s.value(key, t) == default for t in (0, 99, 149))
    assert s.value("anneal_prior", 0) == 0.0
    # ... and have no effect: explicit defaults reproduce the plain run exactly
    Y, _ = _bars(0, n=200)
    a = BSC(10, h_prime=6, gamma=3, n_iter=4, anneal=False, random_state=0).fit(Y)
    zero = dict.fromkeys(keys[1:], 0.0)
    b = BSC(10, h_prime=6, gamma=3, random_state=0, schedule=Schedule(4, partial=1.0, **zero))
    b.fit(Y)
    np.testing.assert_array_equal(a.W_, b.W_)
    np.testing.assert_array_equal(a.log_likelihood_, b.log_likelihood_)


def test_fit_follows_schedule():
    Y, _ = _bars(0, n=300)
    m = BSC(10, h_prime=8, gamma=5, n_iter=9, random_state=0).fit(Y)
    expected = [bsc_schedule(9).value("T", t) for t in range(9)]
    np.testing.assert_allclose(m.schedule_values_["T"], expected)
    assert m.schedule_values_["T"][0] == 5.0 and m.schedule_values_["T"][-1] == 1.0
    # data truncation switched on at the end: fewer points than N
    assert m.n_use_[0] == len(Y) and m.n_use_[-1] < len(Y)
    assert len(m.log_likelihood_) == len(m.pi_history_) == len(m.sigma_history_) == 9


# ----------------------------------------------------------------------------- SC3
def _bars_run(seed, steps):
    Y, _ = _bars(seed)
    m = BSC(10, h_prime=8, gamma=5, n_iter=steps, random_state=seed).fit(Y[:900])
    _, costs, n_rec = match_fields(m.W_, W_BARS)
    ok = n_rec == 10 and abs(m.pi_ - 0.2) <= 0.03 and abs(m.sigma_ - 2.0) / 2.0 <= 0.10
    return ok, m, costs


def test_bsc_bars_recovery_short():
    """SC3 default form: seeds 0-2, 50 steps, at least 2 of 3 full recoveries."""
    results = [_bars_run(seed, 50) for seed in range(3)]
    n_ok = sum(ok for ok, _, _ in results)
    assert n_ok >= 2, [(m.pi_, m.sigma_, c.max()) for _, m, c in results]
    for ok, m, costs in results:
        assert np.all(np.isfinite(m.W_)) and m.log_likelihood_[-1] > m.log_likelihood_[0]
        if ok:
            assert costs.max() < 0.3  # calibrated margin: recovered bars cost 0.10-0.19


@pytest.mark.slow
def test_bsc_bars_recovery_published():
    """SC3: published setting (150 steps), seeds 0-9, at least 8 of 10."""
    n_ok = sum(_bars_run(seed, 150)[0] for seed in range(10))
    assert n_ok >= 8


# ----------------------------------------------------------------------------- estimator API
def test_partial_fit_transform_sample_and_params():
    Y, S = _bars(1, n=300)
    m = BSC(10, h_prime=8, gamma=5, n_iter=4, random_state=1)
    assert m.get_params()["h_prime"] == 8
    m.set_params(gamma=4)
    assert m.gamma == 4
    for _ in range(3):
        m.partial_fit(Y)
    assert m.n_iter_ == 3 and len(m.log_likelihood_) == 3
    P = m.transform(Y[:20])
    assert P.shape == (20, 10) and np.all((P >= 0) & (P <= 1 + 1e-12))
    Ys, Ss = m.sample(5, random_state=0)
    assert Ys.shape == (5, 25) and Ss.shape == (5, 10)
    assert np.isfinite(m.score(Y))
    with pytest.raises(ValueError, match="features"):
        m.transform(np.zeros((3, 24)))
    with pytest.raises(ValueError, match="not fitted"):
        BSC(10).transform(Y)
    # reproducible
    a = BSC(10, n_iter=3, random_state=5).fit(Y)
    b = BSC(10, n_iter=3, random_state=5).fit(Y)
    np.testing.assert_array_equal(a.W_, b.W_)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n_components": 0}, "n_components"),
        ({"n_components": 10, "h_prime": 11}, "h_prime"),
        ({"n_components": 10, "h_prime": 6, "gamma": 7}, "gamma"),
        ({"n_components": 10, "gamma": 0}, "gamma"),
        ({"n_components": 10, "n_iter": 0}, "n_iter"),
        ({"n_components": 10, "learn": ("W", "mu")}, "learn"),
        ({"n_components": 10, "backend": "cuda"}, "backend"),
        ({"n_components": 10, "schedule": {"Temp": 2.0}}, "Temp"),
        ({"n_components": 10, "schedule": {"T": [(0, -1.0)]}}, "T"),
        ({"n_components": 10, "random_state": -1}, "random_state"),
        ({"n_components": 10, "schedule": Schedule(10), "n_iter": 5}, "n_iter"),
    ],
)
def test_bad_parameters_raise_at_fit(kwargs, name):
    Y, _ = _bars(0, n=50)
    m = BSC(**kwargs)  # constructing never fails
    with pytest.raises(ValueError, match=name):
        m.fit(Y)


def test_bad_data_raises():
    Y, _ = _bars(0, n=50)
    Y[3, 4] = np.nan
    with pytest.raises(ValueError, match="Y contains NaN"):
        BSC(10).fit(Y)
    with pytest.raises(ValueError, match="Y must have shape"):
        BSC(10).fit(np.zeros(25))


# ----------------------------------------------------------------------------- bars
def test_bars_dictionary_layout():
    W = bars_dictionary(10)
    assert W.shape == (25, 10)
    img = W.reshape(5, 5, 10)
    assert np.all(img[2, :, 2] == 1) and img[:, :, 2].sum() == 5  # horizontal bar of row 2
    assert np.all(img[:, 3, 8] == 1) and img[:, :, 8].sum() == 5  # vertical bar of column 3
    with pytest.raises(ValueError, match="H"):
        bars_dictionary(7)


def test_bars_data_statistics():
    Y, S = _bars(0, n=4000)
    assert Y.shape == (4000, 25) and S.shape == (4000, 10)
    assert abs(S.mean() - 0.2) < 0.01
    assert np.std(Y - S @ W_BARS.T) == pytest.approx(2.0, rel=0.03)
    with pytest.raises(ValueError, match="model"):
        bars_data("xyz", {"W": W_BARS, "pi": 0.2, "sigma": 2.0}, 10)


@pytest.mark.parametrize("method", ["optimal", "greedy"])
def test_match_fields(method):
    rng = np.random.default_rng(0)
    perm = rng.permutation(10)
    W = W_BARS[:, perm] + rng.normal(0, 0.2, W_BARS.shape)
    assignment, costs, n = match_fields(W, W_BARS, method=method)
    assert n == 10
    np.testing.assert_array_equal(perm[assignment], np.arange(10))
    assert costs.max() < RECOVERY_THRESHOLD
    # destroy two bars: a field that mixes two bars and a blank field
    W[:, assignment[0]] = 0.0
    W[:, assignment[5]] = W_BARS[:, 5] + W_BARS[:, 6]
    _, _, n = match_fields(W, W_BARS, method=method)
    assert n == 8
    _, _, n = match_fields(-W_BARS, W_BARS, sign_invariant=True, method=method)
    assert n == 10


# ----------------------------------------------------------------------------- SC7: LCA
def test_lca_orthonormal_is_soft_threshold():
    Phi = ortho_group.rvs(16, random_state=0)
    x = np.random.default_rng(1).normal(0, 1, (5, 16))
    a = lca(x, Phi, lam=0.4, n_steps=500)
    np.testing.assert_allclose(a, soft_threshold(x @ Phi, 0.4), atol=1e-6)
    assert np.count_nonzero(a) < a.size  # the threshold sparsifies
    a1 = lca(x[0], FloatWeights(Phi, w_max=None), lam=0.4, n_steps=500, threshold="nonneg")
    np.testing.assert_allclose(a1, soft_threshold(x[0] @ Phi, 0.4, "nonneg"), atol=1e-6)


def test_lca_overcomplete_reduces_energy():
    rng = np.random.default_rng(2)
    Phi = rng.normal(0, 1, (16, 32))
    Phi /= np.linalg.norm(Phi, axis=0)
    x = rng.normal(0, 1, 16)
    lam = 0.2

    def energy(a):
        return 0.5 * np.sum((x - Phi @ a) ** 2) + lam * np.abs(a).sum()

    a = lca(x, Phi, lam, n_steps=400)
    # the LCA fixed point is the lasso solution: better than the thresholded projection
    assert energy(a) < energy(soft_threshold(Phi.T @ x, lam)) - 1e-3
    assert energy(a) < energy(np.zeros(32))


def test_lca_on_ideal_device_matches_float():
    rng = np.random.default_rng(3)
    D, H = 16, 24
    Phi = rng.normal(0, 1, (D, H))
    Phi /= np.linalg.norm(Phi, axis=0)
    x = rng.normal(0, 1, (4, D))
    dev = devices.get("ideal", c2c_sigma=0, levels_ltp=4096, levels_ltd=4096)
    arr = lca_dictionary(Phi, dev, seed=0)
    assert arr.shape == (D, H)
    a_float = lca(x, Phi, 0.2)
    a_dev = lca(x, arr, 0.2)
    assert np.max(np.abs(a_dev - a_float)) < 1e-2 * np.max(np.abs(a_float))


def test_lca_device_read_noise_changes_codes():
    rng = np.random.default_rng(4)
    Phi = ortho_group.rvs(16, random_state=4)
    x = rng.normal(0, 1, 16)
    dev = devices.get("ideal", c2c_sigma=0, read_sigma=0.05)
    arr = lca_dictionary(Phi, dev, seed=0)
    a_dev = lca(x, arr, 0.3)
    a_ref = soft_threshold(Phi.T @ x, 0.3)
    assert np.all(np.isfinite(a_dev))
    assert 0 < np.max(np.abs(a_dev - a_ref)) < 0.5 * np.max(np.abs(a_ref))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"lam": -1.0}, "lam"),
        ({"lam": 0.1, "dt_tau": 0.0}, "dt_tau"),
        ({"lam": 0.1, "threshold": "relu"}, "threshold"),
        ({"lam": 0.1, "n_steps": -1}, "n_steps"),
    ],
)
def test_lca_bad_parameters(kwargs, name):
    with pytest.raises(ValueError, match=name):
        lca(np.ones(4), np.eye(4), **kwargs)
    with pytest.raises(ValueError, match="x must have shape"):
        lca(np.ones(5), np.eye(4), 0.1)


# ----------------------------------------------------------------------------- CLI
def test_cli_bars_writes_results(tmp_path, capsys):
    from synapse_sim.cli.app import main
    from synapse_sim.results.store import read_results

    rc = main(
        [
            "bars",
            "--model",
            "bsc",
            "--seed",
            "0",
            "--out",
            str(tmp_path),
            "--iterations",
            "6",
            "--quiet",
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "recovered bars" in text and "pi" in text
    res = read_results(tmp_path / "results.h5")
    assert res["kind"] == "bars" and res["complete"]
    run = res["runs"]["bsc"]
    assert len(run["metrics"]["log_likelihood"]) == 6
    assert set(run["metrics"]) >= {"log_likelihood", "pi", "sigma"}
    assert 0 <= run["final"]["recovered_bars"] <= 10
    assert run["final"]["pi"] == pytest.approx(run["metrics"]["pi"][-1])
    assert run["weights"]["W"].shape == (25, 10)
    assert (tmp_path / "fields.png").stat().st_size > 1000
    capsys.readouterr()
    assert main(["show", "--json", str(tmp_path)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown[0]["model"] == "bsc" and len(shown[0]["log_likelihood"]) == 6
    assert shown[0]["recovered_bars"] == run["final"]["recovered_bars"]


def test_cli_bars_bad_arguments(tmp_path, capsys):
    from synapse_sim.cli.app import main

    assert main(["bars", "--model", "xyz", "--out", str(tmp_path)]) == 2  # unknown model
    assert main(["bars", "--iterations", "0", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("synapse-sim: error:") == 2
