"""DSC, MCA, MMCA, GSC, EM on a device array, inference, ``bars`` (specs/sparse_coding.md).

Acceptance checks: SC1 (exact posterior on tiny models: DSC, MCA, MMCA, GSC with all three Sigma
types and diagonal or full Psi; the full-Psi M-step against brute force), SC2 (monotone EM for DSC),
SC4 (short runs of every model in the default command; the published settings in the slow marker),
SC5 (numba kernels == numpy references), SC8 (BSC on an ideal device equals the float run; counters
add up). BSC/TSC checks live in test_sparse_coding.py, Dask in test_sparse_dask.py.
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

import devices
from learning_rules.sparse_coding import (
    BARS_SETTINGS,
    BSC,
    DSC,
    GSC,
    MCA,
    MMCA,
    MODELS,
    W_TOL,
    bars_data,
    bars_dictionary,
    gsc_estep_numba,
    gsc_estep_reference,
    log_joint_max_numba,
    log_joint_max_reference,
    match_fields,
    max_stats_numba,
    max_stats_reference,
    max_superposition,
    multi_cause_states,
    rho_of_T,
)

W_BARS = 10.0 * bars_dictionary(10)
W6 = 10.0 * bars_dictionary(6)


def _key(s):
    return tuple(np.round(np.asarray(s), 9))


def _setup(cls, H, D, hp, gamma, theta, **kw):
    """A model with parameters set by hand (no training)."""
    m = cls(H, h_prime=hp, gamma=gamma, n_iter=1, backend="numpy", **kw)
    m._validate()
    m._set_theta(theta)
    m.n_features_in_ = D
    return m


def _posterior_checks(m, Y, lj, q, cand, brute_lj, all_states):
    """Log-joints matched by state, moments, marginals, top-k against brute force."""
    S = len(all_states)
    vecs = m._ss.vectors(np.tile(np.arange(S), (len(Y), 1)), cand)
    index = {_key(s): i for i, s in enumerate(all_states)}
    post = np.exp(brute_lj - logsumexp(brute_lj, axis=1, keepdims=True))
    for n in range(len(Y)):
        order = [index[_key(s)] for s in vecs[n]]
        assert sorted(order) == list(range(S))  # every state exactly once
        np.testing.assert_allclose(lj[n], brute_lj[n, order], rtol=1e-12, atol=0)
    Es = m._ss.mean(q, cand)
    np.testing.assert_allclose(Es, post @ all_states, rtol=1e-10, atol=1e-13)
    Ess = m._ss.second_moment(q, cand)
    ref = np.einsum("ns,si,sj->ij", post, all_states, all_states)
    np.testing.assert_allclose(Ess, ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(m.transform(Y), post @ (all_states != 0), rtol=1e-10, atol=1e-13)
    info = m.infer(Y, top_k=3)
    for n in range(len(Y)):
        best = np.argsort(-post[n], kind="stable")[:3]
        np.testing.assert_allclose(info["probs"][n], post[n, best], rtol=1e-10)
        np.testing.assert_allclose(info["states"][n], all_states[best])
    return post


# ----------------------------------------------------------------------------- SC1: DSC
DSC_VALUES = (0.0, 1.0, 2.0)
ALL_DSC = np.array(list(itertools.product(DSC_VALUES, repeat=6)))


def _dsc_brute(Y, W, pi, sigma, states, values=DSC_VALUES):
    D = W.shape[0]
    idx = np.searchsorted(np.array(values), states)
    log_prior = np.log(np.asarray(pi))[idx].sum(axis=1)
    r2 = ((Y[:, None, :] - (states @ W.T)[None]) ** 2).sum(axis=2)
    return log_prior[None] - 0.5 * D * math.log(2 * math.pi * sigma**2) - r2 / (2 * sigma**2)


def test_dsc_estep_full_state_set_equals_brute_force():
    rng = np.random.default_rng(0)
    H, D = 6, 9
    theta = {"W": rng.normal(0, 1.2, (D, H)), "pi": np.array([0.6, 0.3, 0.1]), "sigma": 0.9}
    m = _setup(DSC, H, D, H, H, theta, values=DSC_VALUES)
    assert m._ss.n_states == 3**H
    Y = rng.normal(0, 2, (5, D))
    cand, lj, logZ, q = m._estep(Y, m._theta())
    brute = _dsc_brute(Y, theta["W"], theta["pi"], theta["sigma"], ALL_DSC)
    post = _posterior_checks(m, Y, lj, q, cand, brute, ALL_DSC)
    np.testing.assert_allclose(m.infer(Y)["mean"], post @ ALL_DSC, rtol=1e-10, atol=1e-13)
    # gamma = H' = H: the truncated likelihood is the exact one (A = 1)
    assert m.score(Y) == pytest.approx(np.mean(logsumexp(brute, axis=1)), rel=1e-10)


def test_dsc_truncated_equals_brute_force_restricted():
    rng = np.random.default_rng(1)
    H, D, hp, gamma = 6, 9, 4, 2
    theta = {"W": rng.normal(0, 1.2, (D, H)), "pi": np.array([0.7, 0.2, 0.1]), "sigma": 1.1}
    m = _setup(DSC, H, D, hp, gamma, theta, values=(0, 1, 2))
    Y = rng.normal(0, 2, (6, D))
    cand, lj, logZ, q = m._estep(Y, m._theta())
    brute = _dsc_brute(Y, theta["W"], theta["pi"], theta["sigma"], ALL_DSC)
    k = np.count_nonzero(ALL_DSC, axis=1)
    for n in range(len(Y)):
        outside = np.ones(H, bool)
        outside[cand[n]] = False
        in_K = (k <= 1) | ((k <= gamma) & (np.count_nonzero(ALL_DSC[:, outside], axis=1) == 0))
        assert in_K.sum() == lj.shape[1] == 1 + 2 * H + math.comb(hp, 2) * 4
        np.testing.assert_allclose(logZ[n], logsumexp(brute[n, in_K]), rtol=1e-12)
        # candidates: first H' distinct latents by singleton log-joint (prior included)
        single = [
            (brute[n, i], int(np.flatnonzero(s)[0])) for i, s in enumerate(ALL_DSC) if k[i] == 1
        ]
        best = []
        for _, h in sorted(single, key=lambda t: -t[0]):
            if h not in best:
                best.append(h)
        assert set(cand[n]) == set(best[:hp])


def test_dsc_signed_values_and_prior_update():
    rng = np.random.default_rng(2)
    H, D = 4, 9
    vals = (-2.0, 0.0, 1.5)
    theta = {"W": rng.normal(0, 1, (D, H)), "pi": np.array([0.7, 0.2, 0.1]), "sigma": 1.0}
    m = _setup(DSC, H, D, H, H, theta, values=vals)
    np.testing.assert_array_equal(m.values_, [0.0, -2.0, 1.5])  # pi_ order: 0 first
    all_s = np.array(list(itertools.product([0.0, -2.0, 1.5], repeat=H)))
    Y = rng.normal(0, 2, (4, D))
    cand, lj, logZ, q = m._estep(Y, m._theta())
    idx = np.select([all_s == 0.0, all_s == -2.0, all_s == 1.5], [0, 1, 2])
    lp = np.log(theta["pi"])[idx].sum(axis=1)
    r2 = ((Y[:, None, :] - (all_s @ theta["W"].T)[None]) ** 2).sum(axis=2)
    brute = lp[None] - 0.5 * D * math.log(2 * math.pi) - r2 / 2
    _posterior_checks(m, Y, lj, q, cand, brute, all_s)
    # the pi update: expected value counts / (H N), floored at 1e-6, sums to 1
    p = m._pi_update(theta["pi"], np.array([10.0, 1e-9, 2.0]), 3)
    assert p.sum() == pytest.approx(1.0) and p.min() == pytest.approx(1e-6)


# ----------------------------------------------------------------------------- SC1: MCA, MMCA
ALL_BIN = np.array(list(itertools.product([0.0, 1.0], repeat=5)))


def _smooth(W, s, rho, model):
    act = np.flatnonzero(s)
    if act.size == 0:
        return np.zeros(W.shape[0])
    Wa = W[:, act]
    if model == "mca":
        return (Wa**rho).sum(axis=1) ** (1.0 / rho)
    t = (np.sign(Wa) * np.abs(Wa) ** rho).sum(axis=1)
    return np.sign(t) * np.abs(t) ** (1.0 / rho)


def _max_brute(Y, W, pi, sigma, rho, model, states=ALL_BIN):
    D, H = W.shape
    k = states.sum(axis=1)
    lp = k * math.log(pi) + (H - k) * math.log(1 - pi)
    Wbar = np.array([_smooth(W, s, rho, model) for s in states])  # (S, D)
    r2 = ((Y[:, None, :] - Wbar[None]) ** 2).sum(axis=2)
    return lp[None] - 0.5 * D * math.log(2 * math.pi * sigma**2) - r2 / (2 * sigma**2), Wbar


@pytest.mark.parametrize("cls", [MCA, MMCA])
def test_max_models_full_state_set_equals_brute_force(cls):
    rng = np.random.default_rng(3)
    H, D = 5, 9
    model = cls.__name__.lower()
    W = rng.uniform(0.5, 4.0, (D, H)) if cls is MCA else rng.normal(0, 2, (D, H))
    theta = {"W": W, "pi": 0.3, "sigma": 1.3}
    m = _setup(cls, H, D, H, H, theta)
    Y = rng.normal(1, 2, (5, D))
    th = m._theta()
    th["_T"] = 1.0
    cand, lj, logZ, q = m._estep(Y, th)
    rho = rho_of_T(1.0, model)
    assert rho == pytest.approx(21.0 if cls is MCA else 6.0)
    brute, Wbar = _max_brute(Y, W, 0.3, 1.3, rho, model)
    post = _posterior_checks(m, Y, lj, q, cand, brute, ALL_BIN)
    # M-step statistics: sum_n sum_s q A_dh y_nd, sum q A_dh, expected residual
    st = m._suff_stats(Y, q, cand, th, m._ss)
    num, den, r2 = np.zeros((D, H)), np.zeros((D, H)), 0.0
    for j, s in enumerate(ALL_BIN):
        act = np.flatnonzero(s)
        r2 += float(post[:, j] @ ((Y - Wbar[j]) ** 2).sum(axis=1))
        for h in act:
            if len(act) == 1:
                A = np.ones(D)
            elif cls is MCA:
                A = (W[:, h] / Wbar[j]) ** (rho - 1)
            else:
                A = np.minimum(np.abs(W[:, h]) / np.abs(Wbar[j]), 1.0) ** (rho - 1)
            num[:, h] += A * (post[:, j] @ Y)
            den[:, h] += A * post[:, j].sum()
    np.testing.assert_allclose(st["num"], num, rtol=1e-10)
    np.testing.assert_allclose(st["den"], den, rtol=1e-10)
    assert st["r2"] == pytest.approx(r2, rel=1e-10)
    # the annealed posterior anneals the prior too (always, for the max models)
    th["_T"] = 2.0
    _, lj2, _, q2 = m._estep(Y, th, beta=0.5)
    F = 0.5 * lj2
    np.testing.assert_allclose(q2, np.exp(F - logsumexp(F, axis=1, keepdims=True)), rtol=1e-10)


def test_max_superposition_and_smooth_limit():
    rng = np.random.default_rng(4)
    W = rng.uniform(0.1, 5.0, (9, 4))
    S = np.array([[1, 0, 1, 1], [0, 0, 0, 0], [0, 1, 0, 0]], dtype=float)
    hard = max_superposition(W, S, "mca")
    np.testing.assert_allclose(hard[0], W[:, [0, 2, 3]].max(axis=1))
    assert np.all(hard[1] == 0) and np.allclose(hard[2], W[:, 1])
    # the smooth max approaches the hard max as rho grows (and is exact for singletons)
    for rho in (5.0, 20.0, 100.0):
        err = np.abs(_smooth(W, S[0], rho, "mca") - hard[0]).max()
        assert err <= hard[0].max() * (3 ** (1 / rho) - 1) + 1e-12
    Ws = rng.normal(0, 3, (9, 4))
    mm = max_superposition(Ws, S, "mmca")
    j = np.abs(Ws[:, [0, 2, 3]]).argmax(axis=1)
    np.testing.assert_allclose(mm[0], Ws[:, [0, 2, 3]][np.arange(9), j])
    assert rho_of_T(4.0, "mca") == pytest.approx(4 / 3)
    assert rho_of_T(1.0, "mmca") == pytest.approx(6.0) and rho_of_T(1.001, "mmca") == pytest.approx(
        6.0
    )


# ----------------------------------------------------------------------------- SC1: GSC
def _psi_full(rng, H):
    A = rng.normal(0, 0.5, (H, H))
    return A @ A.T + 0.3 * np.eye(H)


def _psi_block(psi, a):
    return psi[np.ix_(a, a)] if psi.ndim == 2 else np.diag(psi[a])


def _gsc_theta(rng, H, D, kind, psi_type="diagonal"):
    if kind == "scalar":
        sig = 0.7
    elif kind == "diagonal":
        sig = rng.uniform(0.3, 1.5, D)
    else:
        A = rng.normal(0, 0.5, (D, D))
        sig = A @ A.T + 0.5 * np.eye(D)
    return {
        "W": rng.normal(0, 1.5, (D, H)),
        "pi": rng.uniform(0.1, 0.6, H),
        "mu": rng.normal(0, 1, H),
        "psi_sq": rng.uniform(0.3, 2.0, H) if psi_type == "diagonal" else _psi_full(rng, H),
        "sigma_sq": sig,
    }


@pytest.mark.parametrize("psi_type", ["diagonal", "full"])
@pytest.mark.parametrize("kind", ["scalar", "diagonal", "full"])
def test_gsc_estep_equals_gaussian_computation(kind, psi_type):
    rng = np.random.default_rng(5)
    H, D = 4, 6
    theta = _gsc_theta(rng, H, D, kind, psi_type)
    m = _setup(GSC, H, D, H, H, theta, sigma_sq_type=kind, psi_type=psi_type)
    Y = rng.normal(0, 2, (4, D))
    cand, lj, logZ, q = m._estep(Y, m._theta())
    all_s = np.array(list(itertools.product([0.0, 1.0], repeat=H)))
    Sigma = GSC._sigma_full(theta["sigma_sq"], D)
    W, mu, psi, pi = theta["W"], theta["mu"], theta["psi_sq"], theta["pi"]
    S = len(all_s)
    vecs = m._ss.vectors(np.tile(np.arange(S), (len(Y), 1)), cand)
    for n in range(len(Y)):
        for j in range(S):
            s = vecs[n, j]
            a = np.flatnonzero(s)
            lprior = np.sum(np.where(s > 0, np.log(pi), np.log1p(-pi)))
            Ws = W[:, a]
            P = _psi_block(psi, a)
            C = Sigma + Ws @ P @ Ws.T
            ref = multivariate_normal.logpdf(Y[n], Ws @ mu[a], C)
            assert lj[n, j] - lprior == pytest.approx(ref, rel=1e-10)
            if a.size == 0:
                continue
            # slab posterior (kappa, Lambda^-1) by conditioning the joint Gaussian of (y, z_s)
            onehot = np.zeros((1, S))
            onehot[0, j] = 1.0
            Es, Esz, Eszsz = m.posterior_moments(Y[n : n + 1], onehot, cand[n : n + 1])
            # joint covariance of (z_s, y): [[P, P Ws^T], [Ws P, C]]; condition z_s on y
            K = P @ Ws.T @ np.linalg.inv(C)
            kappa = mu[a] + K @ (Y[n] - Ws @ mu[a])
            cov = P - K @ Ws @ P
            np.testing.assert_allclose(Es[0], s, atol=1e-14)
            np.testing.assert_allclose(Esz[0, a], kappa, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(
                Eszsz[0][np.ix_(a, a)], cov + np.outer(kappa, kappa), rtol=1e-10, atol=1e-12
            )
    # gamma = H' = H: the truncated likelihood is exact
    assert m.score(Y) == pytest.approx(np.mean(logsumexp(lj, axis=1)), rel=1e-12)


def test_gsc_candidates_are_best_singleton_marginals():
    rng = np.random.default_rng(6)
    H, D = 8, 6
    theta = _gsc_theta(rng, H, D, "diagonal")
    m = _setup(GSC, H, D, 3, 2, theta, sigma_sq_type="diagonal")
    Y = rng.normal(0, 2, (5, D))
    cand = m._select(Y, m._theta(), m._ss)
    Sigma = np.diag(theta["sigma_sq"])
    for n in range(len(Y)):
        sc = [
            multivariate_normal.logpdf(
                Y[n],
                theta["mu"][h] * theta["W"][:, h],
                Sigma + theta["psi_sq"][h] * np.outer(theta["W"][:, h], theta["W"][:, h]),
            )
            for h in range(H)
        ]
        assert set(cand[n]) == set(np.argsort(sc)[::-1][:3])


# ----------------------------------------------------------------------------- SC5: kernels
@pytest.mark.parametrize("kind", [0, 1])
@pytest.mark.parametrize("beta", [1.0, 0.4])
def test_numba_max_kernels_equal_reference(kind, beta):
    rng = np.random.default_rng(7)
    N, D, H, hp, gamma = 30, 25, 10, 6, 4
    Y = rng.normal(2, 3, (N, D))
    W = rng.uniform(W_TOL, 8, (D, H)) if kind == 0 else rng.normal(0, 4, (D, H))
    cand = np.sort(np.argsort(rng.random((N, H)), axis=1)[:, :hp], axis=1)
    states = multi_cause_states(hp, gamma)
    lp = rng.normal(0, 1, 1 + H + len(states))
    for rho in (1.3, 6.0, 21.0):
        ref = log_joint_max_reference(Y, W, cand, states, lp, 1.7, beta, rho, kind)
        fast = log_joint_max_numba(Y, W, cand, states, lp, 1.7, beta, rho, kind)
        np.testing.assert_allclose(fast, ref, rtol=1e-10, atol=1e-10)
        q = np.exp(ref - logsumexp(ref, axis=1, keepdims=True))
        for w2 in (False, True):
            a = max_stats_reference(Y, W, cand, states, q, rho, kind, w2)
            b = max_stats_numba(Y, W, cand, states, q, rho, kind, w2)
            for x, y in zip(a, b, strict=True):
                np.testing.assert_allclose(y, x, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("psi_type", ["diagonal", "full"])
def test_numba_gsc_kernels_equal_reference(psi_type):
    rng = np.random.default_rng(8)
    H, D, hp, gamma, N = 8, 12, 5, 3, 20
    theta = _gsc_theta(rng, H, D, "full", psi_type)
    m = _setup(GSC, H, D, hp, gamma, theta, sigma_sq_type="full", psi_type=psi_type)
    Y = rng.normal(0, 2, (N, D))
    th = m._theta()
    U, G, yy, logdet = m._precompute(Y, th)
    cand = m._select(Y, th, m._ss)
    lp = m._log_prior(cand, th["pi"], m._ss)
    args = (U, G, yy, logdet, cand, m._ss.states, lp, th["mu"], th["psi_sq"], D)
    ref = gsc_estep_reference(*args)
    fast = gsc_estep_numba(*args)
    np.testing.assert_allclose(fast, ref, rtol=1e-10, atol=1e-10)
    q = np.exp(ref - logsumexp(ref, axis=1, keepdims=True))
    for cross in (False, True):
        a = gsc_estep_reference(*args, moments=q, cross=cross)
        b = gsc_estep_numba(*args, moments=q, cross=cross)
        assert len(a) == len(b) == (4 if cross else 3)
        for x, y in zip(a, b, strict=True):
            np.testing.assert_allclose(y, x, rtol=1e-10, atol=1e-12)
    # <s_h s_k z_h> summed over h = k is <s_h z_h>
    Es, Esz, _, Essz = gsc_estep_reference(*args, moments=q, cross=True)
    np.testing.assert_allclose(np.diagonal(Essz, axis1=1, axis2=2), Esz, rtol=1e-12, atol=1e-14)


def _gsc_brute_moments(theta, Y, Sigma):
    """Exact posterior over all 2^H states with the slab moments per state (brute force)."""
    W, mu, psi, pi = theta["W"], theta["mu"], theta["psi_sq"], theta["pi"]
    H = W.shape[1]
    all_s = np.array(list(itertools.product([0.0, 1.0], repeat=H)))
    out = []
    for y in Y:
        lj, mom = [], []
        for s in all_s:
            a = np.flatnonzero(s)
            lprior = np.sum(np.where(s > 0, np.log(pi), np.log1p(-pi)))
            Ws, P = W[:, a], _psi_block(psi, a)
            C = Sigma + Ws @ P @ Ws.T
            lj.append(lprior + multivariate_normal.logpdf(y, Ws @ mu[a], C))
            K = P @ Ws.T @ np.linalg.inv(C)
            mom.append((a, mu[a] + K @ (y - Ws @ mu[a]), P - K @ Ws @ P))
        post = np.exp(np.array(lj) - logsumexp(lj))
        out.append((post, mom))
    return all_s, out


def test_gsc_full_psi_mstep_equals_brute_force():
    """Full-Psi M-step (spec section 4): Psi_hk = sum <s_h s_k (z_h - mu_h)(z_k - mu_k)> /
    sum <s_h s_k>, with every expectation by brute-force Gaussian conditioning (gamma = H' = H)."""
    rng = np.random.default_rng(11)
    H, D, N = 4, 6, 40
    theta = _gsc_theta(rng, H, D, "diagonal", "full")
    m = _setup(GSC, H, D, H, H, theta, sigma_sq_type="diagonal", psi_type="full")
    # data from the model itself, so the pairwise estimate is positive definite
    s = rng.random((N, H)) < 0.6
    z = theta["mu"] + rng.standard_normal((N, H)) @ np.linalg.cholesky(theta["psi_sq"]).T
    Y = (s * z) @ theta["W"].T + rng.normal(0, 1, (N, D)) * np.sqrt(theta["sigma_sq"])
    th = m._theta()
    cand, lj, logZ, q = m._estep(Y, th)
    st = m._suff_stats(Y, q, cand, th, m._ss)
    new = m._mstep(st, th, N, D)
    all_s, per_point = _gsc_brute_moments(theta, Y, np.diag(theta["sigma_sq"]))
    S_s, S_sz, S_ss = np.zeros(H), np.zeros(H), np.zeros((H, H))
    for post, mom in per_point:
        for p, (a, kap, _cov) in zip(post, mom, strict=True):
            S_s[a] += p
            S_sz[a] += p * kap
            S_ss[np.ix_(a, a)] += p
    mu_ref = S_sz / S_s
    num = np.zeros((H, H))
    for post, mom in per_point:
        for p, (a, kap, cov) in zip(post, mom, strict=True):
            d = kap - mu_ref[a]
            num[np.ix_(a, a)] += p * (cov + np.outer(d, d))
    psi_ref = num / S_ss
    assert np.linalg.eigvalsh(psi_ref).min() > 1e-3  # the PD projection is inactive here
    np.testing.assert_allclose(new["mu"], mu_ref, rtol=1e-10)
    np.testing.assert_allclose(new["psi_sq"], psi_ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(np.diag(new["psi_sq"]), np.diag(num) / S_s, rtol=1e-9)
    np.testing.assert_allclose(st["S_ss"], S_ss, rtol=1e-10)
    # the diagonal variant gives the diagonal of the same estimate
    m2 = _setup(GSC, H, D, H, H, theta, sigma_sq_type="diagonal", psi_type="diagonal")
    st2 = m2._suff_stats(Y, q, cand, th, m2._ss)
    assert "S_ssz" not in st2
    d2 = m2._mstep(st2, {**th, "psi_sq": np.diag(th["psi_sq"])}, N, D)
    np.testing.assert_allclose(d2["psi_sq"], np.diag(psi_ref), rtol=1e-9)


def test_gsc_full_psi_projection_and_fit():
    """A pairwise estimate that is not PD is symmetrized with eigenvalues floored; never
    co-active pairs keep their value. A short full-Psi fit is finite, improves L and keeps Psi
    PD; numba and numpy fits agree; samples follow Psi."""
    st = {
        "S_ss": np.array([[2.0, 1.0, 0.0], [1.0, 2.0, 1.0], [0.0, 1.0, 2.0]]),
        "S_ssz": np.zeros((3, 3)),
        "S_zz": np.array([[2.0, 1.9, 0.0], [1.9, 2.0, -1.9], [0.0, -1.9, 2.0]]),
    }
    old = 0.25 * np.eye(3) + 0.1
    P = GSC._psi_full_update(st, np.zeros(3), old)
    raw = np.array([[1.0, 1.9, 0.1], [1.9, 1.0, -1.9], [0.1, -1.9, 1.0]])
    assert np.linalg.eigvalsh(raw).min() < 0
    np.testing.assert_allclose(P, P.T)
    assert np.linalg.eigvalsh(P).min() == pytest.approx(1e-6, rel=1e-6)
    ev, V = np.linalg.eigh(raw)
    np.testing.assert_allclose(P, (V * np.maximum(ev, 1e-6)) @ V.T, atol=1e-12)

    rng = np.random.default_rng(12)
    H, D, N = 6, 9, 400
    W = 10.0 * bars_dictionary(H)
    Psi = 0.5 * np.eye(H) + 0.5  # correlated slabs
    s = rng.random((N, H)) < 0.3
    z = 1.0 + rng.standard_normal((N, H)) @ np.linalg.cholesky(Psi).T
    Y = (s * z) @ W.T + rng.normal(0, 1, (N, D))
    kw = {"h_prime": 6, "gamma": 6, "anneal": False, "random_state": 0}
    b = GSC(H, psi_type="full", backend="numpy", n_iter=3, **kw).fit(Y[:60])
    c = GSC(H, psi_type="full", backend="numba", n_iter=3, **kw).fit(Y[:60])
    np.testing.assert_allclose(c.W_, b.W_, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(c.psi_sq_, b.psi_sq_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(c.log_likelihood_, b.log_likelihood_, rtol=1e-10)
    a = GSC(H, psi_type="full", backend="numba", n_iter=15, **kw).fit(Y)
    assert a.psi_sq_.shape == (H, H) and np.linalg.eigvalsh(a.psi_sq_).min() > 0
    np.testing.assert_allclose(a.psi_sq_, a.psi_sq_.T)
    L = a.log_likelihood_
    assert np.all(np.isfinite(L)) and L[-1] > L[0]
    Ys, Ss = a.sample(20000, random_state=1)
    both = (Ss[:, 0] != 0) & (Ss[:, 1] != 0)
    emp = np.cov(Ss[both][:, :2].T)
    np.testing.assert_allclose(emp, a.psi_sq_[:2, :2], atol=0.15 * np.abs(a.psi_sq_).max())


@pytest.mark.parametrize("name", ["dsc", "mca", "gsc"])
def test_numba_and_numpy_fits_agree(name):
    Y, _ = _model_data(name, 0, n=150)
    kw = {"n_iter": 3, "random_state": 0, "h_prime": 5, "gamma": 3}
    a = MODELS[name](10, backend="numpy", **kw).fit(Y)
    b = MODELS[name](10, backend="numba", **kw).fit(Y)
    np.testing.assert_allclose(a.W_, b.W_, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(a.log_likelihood_, b.log_likelihood_, rtol=1e-10)


# ----------------------------------------------------------------------------- SC2: DSC
def _dsc6_data(seed, n=300):
    p = {"W": W6, "values": DSC_VALUES, "pi": (0.7, 0.2, 0.1), "sigma": 2.0}
    return bars_data("dsc", p, n, np.random.default_rng(seed))[0]


def test_dsc_em_monotone_exact():
    Y = _dsc6_data(0)
    m = DSC(6, h_prime=6, gamma=6, n_iter=40, anneal=False, random_state=0).fit(Y)
    L = m.log_likelihood_
    assert np.all(np.diff(L) >= -1e-10 * np.abs(L[:-1]))
    assert L[-1] > L[0] and m.pi_.sum() == pytest.approx(1.0)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(5))
@pytest.mark.gate  # SC2: exact DSC EM is monotone, seeds 0-4 (make gates)
def test_dsc_em_monotone_exact_published(seed):
    Y = _dsc6_data(seed, n=900)
    m = DSC(6, h_prime=6, gamma=6, n_iter=100, anneal=False, random_state=seed).fit(Y)
    L = m.log_likelihood_
    assert np.all(np.diff(L) >= -1e-10 * np.abs(L[:-1]))


# ----------------------------------------------------------------------------- SC4
def _model_data(name, seed, n=None):
    cfg = BARS_SETTINGS[name]
    keys = {"dsc": ("values", "pi", "sigma"), "gsc": ("pi", "mu", "psi_sq", "sigma_sq")}
    p = {k: cfg[k] for k in keys.get(name, ("pi", "sigma"))}
    return bars_data(name, {"W": W_BARS, **p}, cfg["N"] if n is None else n, seed)


def _bars_fit(name, seed, steps=None, n=None):
    cfg = BARS_SETTINGS[name]
    Y, _ = _model_data(name, seed, n)
    n_train = int(cfg["train_fraction"] * len(Y))
    kw = {"values": cfg["values"]} if name == "dsc" else {}
    m = MODELS[name](
        10, h_prime=cfg["h_prime"], gamma=cfg["gamma"], n_iter=steps, random_state=seed, **kw
    ).fit(Y[:n_train])
    fields = m.W_ * m.mu_ if name == "gsc" else m.W_
    truth = W_BARS * cfg["mu"] if name == "gsc" else W_BARS
    _, costs, n_rec = match_fields(fields, truth, sign_invariant=name == "tsc")
    return m, n_rec


@pytest.mark.parametrize(("name", "n"), [("dsc", 400), ("mca", 300), ("mmca", 300), ("gsc", 600)])
def test_models_short_bars_run(name, n):
    """SC4 default form: one seed, 30 steps, finite outputs and the last L above the first."""
    m, n_rec = _bars_fit(name, 0, steps=30, n=n)
    assert np.all(np.isfinite(m.W_)) and np.all(np.isfinite(m.pi_)) and np.isfinite(m.sigma_)
    assert np.all(np.isfinite(m.log_likelihood_)) and len(m.log_likelihood_) == 30
    assert m.log_likelihood_[-1] > m.log_likelihood_[0]
    # bar recovery itself: tests/test_strong_versions.py::test_short_bars_runs_recover_bars
    if name == "mca":
        assert m.W_.min() >= W_TOL
    if name == "mmca":
        assert np.abs(m.W_).min() >= W_TOL
    if name in ("dsc", "mca", "mmca"):
        assert m.n_use_[-1] < m.n_use_[0]  # data truncation switched on
    else:
        assert np.all(m.n_use_ == m.n_use_[0])  # GSC does not truncate data


@pytest.mark.slow
def test_dsc_bars_published():
    """SC4 (DSC): all bars and max |pi - pi_gt| <= 0.02 in >= 8/10 seeds."""
    ok = 0
    for seed in range(10):
        m, n_rec = _bars_fit("dsc", seed)
        ok += n_rec == 10 and np.max(np.abs(m.pi_ - np.array([0.8, 0.15, 0.05]))) <= 0.02
    assert ok >= 8


@pytest.mark.slow
def test_mca_bars_published():
    """SC4 (MCA): all bars in >= 6/10 seeds."""
    assert sum(_bars_fit("mca", seed)[1] == 10 for seed in range(10)) >= 6


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mmca", "gsc"])
def test_mmca_gsc_bars_published(name):
    """SC4 (MMCA, GSC): mean recovered bars >= 6.0 over seeds 0-9."""
    assert np.mean([_bars_fit(name, seed)[1] for seed in range(10)]) >= 6.0


# ----------------------------------------------------------------------------- SC8: device
def _ideal_array(seed, levels=2048):
    dev = devices.get("ideal", c2c_sigma=0, levels_ltp=levels, levels_ltd=levels)
    return devices.DeviceArray((25, 10), dev, w_max=16.0, seed=seed)


def _device_vs_float(seed, steps, preset_array=None):
    Y, _ = _model_data("bsc", seed)
    Y = Y[:900]
    a = BSC(10, h_prime=8, gamma=5, n_iter=steps, random_state=seed).fit(Y)
    arr = _ideal_array(seed) if preset_array is None else preset_array
    c0 = arr.counters()
    b = BSC(10, h_prime=8, gamma=5, n_iter=steps, random_state=seed, weights=arr).fit(Y)
    c1 = arr.counters()
    sent = sum(c1[k] - c0[k] for k in ("pulses_ltp", "pulses_ltd", "pulses_prog"))
    return a, b, arr, sent


def test_device_em_ideal_equals_float():
    """SC8 default form: seed 1, 50 steps (the float run recovers all bars)."""
    a, b, arr, sent = _device_vs_float(1, 50)
    n_a, n_b = match_fields(a.W_, W_BARS)[2], match_fields(b.W_, W_BARS)[2]
    assert n_a == n_b == 10
    assert abs(b.sigma_ - a.sigma_) <= 0.02 * a.sigma_
    # counters add up: every pulse counted once, one full read per iteration
    assert b.n_reads_ == b.n_iter_ == 50
    assert b.n_pulses_ == sent > 0
    # W_ is what the array holds
    np.testing.assert_array_equal(b.W_, arr.weights())


def test_device_em_updates_are_whole_pulses():
    """On a noise-free linear device the realized change of every weight per iteration is a
    whole number of nominal steps (16 / levels; except at a conductance bound) and the dead
    zone drops changes below half a step: a coarse array sends far fewer pulses and its fields
    depart from the float run."""
    Y, _ = _model_data("bsc", 1)
    Y = Y[:900]
    a = BSC(10, h_prime=8, gamma=5, n_iter=12, random_state=1).fit(Y)
    pulses = {}
    for levels in (16, 2048):
        arr = _ideal_array(1, levels=levels)
        b = BSC(10, h_prime=8, gamma=5, n_iter=12, random_state=1, weights=arr)
        step = 16.0 / levels
        for _ in range(12):
            W0 = b.W_.copy() if hasattr(b, "W_") else None
            b.partial_fit(Y)
            if W0 is not None:
                k = (b.W_ - W0) / step
                # (a device that reaches its conductance bound stops part-way)
                assert np.mean(np.abs(k - np.round(k)) > 1e-6) <= 0.01
        pulses[levels] = b.n_pulses_
        assert np.all(np.isfinite(b.W_)) and np.isfinite(b.sigma_)
        if levels == 16:
            assert np.max(np.abs(b.W_ - a.W_)) > 0.05
    assert pulses[16] < pulses[2048] / 10


def test_device_parameter_equals_weights_array():
    """``device=`` builds the array ``weights=`` would take (same seed and options): the same
    run bit for bit, the caller's objects untouched; both at once, or unknown options, raise."""
    Y, _ = _model_data("bsc", 1)
    Y = Y[:300]
    dev = devices.get("ideal", c2c_sigma=0, levels_ltp=64, levels_ltd=64)
    arr = devices.DeviceArray((25, 10), dev, w_max=16.0, seed=3)
    a = BSC(10, h_prime=6, gamma=3, n_iter=4, random_state=1, weights=arr).fit(Y)
    opts = {"w_max": 16.0, "seed": 3}
    b = BSC(10, h_prime=6, gamma=3, n_iter=4, random_state=1, device=dev, device_options=opts)
    b.fit(Y)
    np.testing.assert_array_equal(a.W_, b.W_)
    assert a.n_pulses_ == b.n_pulses_ > 0 and b.sigma_ == a.sigma_
    assert b.device_array_.shape == (25, 10) and opts == {"w_max": 16.0, "seed": 3}
    np.testing.assert_array_equal(b.device_array_.weights(), b.W_)
    with pytest.raises(ValueError, match="not both"):
        BSC(10, n_iter=1, weights=arr, device=dev).fit(Y)
    with pytest.raises(ValueError, match="unknown keys"):
        BSC(10, n_iter=1, device=dev, device_options={"sead": 1}).fit(Y)
    with pytest.raises(TypeError, match="device must be a devices.DeviceModel"):
        BSC(10, n_iter=1, device="ideal").fit(Y)


@pytest.mark.slow
@pytest.mark.gate  # SC8: ideal device == float, seeds 0-4 (make gates)
def test_device_em_ideal_equals_float_published():
    """SC8: published setting, seeds 0-4: same recovered bars, sigma within 2%."""
    for seed in range(5):
        a, b, _, sent = _device_vs_float(seed, 150)
        assert match_fields(a.W_, W_BARS)[2] == match_fields(b.W_, W_BARS)[2]
        assert abs(b.sigma_ - a.sigma_) <= 0.02 * a.sigma_
        assert b.n_pulses_ == sent and b.n_reads_ == 150


# ----------------------------------------------------------------------------- inference
def test_infer_adaptive_grows_state_sets():
    Y, _ = _model_data("bsc", 2, n=400)
    m = BSC(10, h_prime=8, gamma=5, n_iter=20, random_state=2).fit(Y)
    Yt, _ = bars_data("bsc", {"W": W_BARS, "pi": 0.45, "sigma": 2.0}, 60, 3)  # many causes
    m.set_params(h_prime=4, gamma=2)
    m._validate()
    fixed = m.infer(Yt, top_k=2, adaptive=False)
    adapt = m.infer(Yt, top_k=2, adaptive=True, h_prime_max=7, gamma_max=5)
    # spec section 6: adaptive is the default
    default = m.infer(Yt, top_k=2, h_prime_max=7, gamma_max=5)
    for k in ("probs", "states", "h_prime", "gamma"):
        np.testing.assert_array_equal(default[k], adapt[k])
    # transform stays on the training state sets
    np.testing.assert_array_equal(m.transform(Yt), fixed["marginals"])
    hit = np.count_nonzero(fixed["states"][:, 0], axis=1) == 2
    assert hit.any() and (~hit).any()
    # points whose MAP state did not reach gamma are unchanged
    for k in ("probs", "marginals", "mean", "log_z"):
        np.testing.assert_array_equal(adapt[k][~hit], fixed[k][~hit])
    assert np.all(adapt["h_prime"][~hit] == 4) and np.all(adapt["h_prime"][hit] >= 5)
    assert adapt["h_prime"].max() <= 7 and adapt["gamma"].max() <= 5
    # a larger state set can only add probability mass
    assert np.all(adapt["log_z"][hit] >= fixed["log_z"][hit] - 1e-12)
    assert np.all(adapt["gamma"] <= adapt["h_prime"])


def test_sample_shapes_and_statistics():
    for name in ("dsc", "mca", "mmca", "gsc"):
        Y, _ = _model_data(name, 0, n=200)
        m = MODELS[name](10, h_prime=5, gamma=3, n_iter=2, random_state=0).fit(Y)
        Ys, Ss = m.sample(3000, random_state=1)
        assert Ys.shape == (3000, 25) and Ss.shape == (3000, 10)
        if name == "dsc":
            freq = [np.mean(Ss == v) for v in m.values_]
            np.testing.assert_allclose(freq, m.pi_, atol=0.02)
        elif name == "gsc":
            assert np.mean(Ss != 0) == pytest.approx(np.mean(m.pi_), abs=0.02)
        else:
            assert np.mean(Ss) == pytest.approx(m.pi_, abs=0.02)
            resid = Ys - max_superposition(m.W_, Ss, name)
            assert np.std(resid) == pytest.approx(m.sigma_, rel=0.05)


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("cls", "kwargs", "match"),
    [
        (DSC, {"values": (1, 2)}, "values must contain 0"),
        (DSC, {"values": (0, 1, 1)}, "values"),
        (DSC, {"values": "abc"}, "values"),
        (MCA, {"singleton_weight": "w3"}, "singleton_weight"),
        (MMCA, {"singleton_weight": "w2"}, "singleton_weight"),
        (GSC, {"sigma_sq_type": "block"}, "sigma_sq_type"),
        (
            GSC,
            {"psi_type": "scalar"},
            r"psi_type must be one of \('diagonal', 'full'\), got 'scalar'",
        ),
        (BSC, {"offset": "yes"}, "offset must be a bool"),
        (GSC, {"learn": ("W", "tau")}, "learn"),
        (BSC, {"h_prime": 4, "gamma": 5}, "gamma must be <= h_prime.*gamma=5, h_prime=4"),
        (BSC, {"eta": 0.0}, "eta"),
        (BSC, {"eta": 1.5}, "eta"),
        (BSC, {"weights": np.zeros((25, 10))}, "weights must be a devices.DeviceArray"),
        (BSC, {"pulse_options": 3}, "pulse_options"),
    ],
)
def test_bad_parameters_raise(cls, kwargs, match):
    Y, _ = _model_data("bsc", 0, n=50)
    with pytest.raises(ValueError, match=match):
        cls(10, n_iter=1, **kwargs).fit(Y)


def test_bad_device_shape_and_bars_params():
    Y, _ = _model_data("bsc", 0, n=50)
    arr = devices.DeviceArray((25, 8), devices.get("ideal"), w_max=16.0, seed=0)
    with pytest.raises(ValueError, match="weights must have shape"):
        BSC(10, n_iter=1, weights=arr).fit(Y)
    arr = devices.DeviceArray((24, 10), devices.get("ideal"), w_max=16.0, seed=0)
    with pytest.raises(ValueError, match="weights must have shape"):
        BSC(10, n_iter=1, weights=arr).fit(Y)
    with pytest.raises(ValueError, match="missing"):
        bars_data("gsc", {"W": W_BARS, "pi": 0.2}, 10)
    with pytest.raises(ValueError, match="pi"):
        bars_data("dsc", {"W": W_BARS, "values": (0, 1), "pi": (0.5, 0.6), "sigma": 1.0}, 10)


# ----------------------------------------------------------------------------- CLI
@pytest.mark.parametrize(("model", "device"), [("dsc", None), ("gsc", None), ("mmca", "ideal")])
def test_cli_bars_models(tmp_path, capsys, model, device):
    from synapse_sim.cli.app import main
    from synapse_sim.results.store import read_results

    argv = ["bars", "--model", model, "--out", str(tmp_path), "--iterations", "3", "--quiet"]
    if device:
        argv += ["--device", device]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "recovered bars" in out and (device is None or "pulses" in out)
    run = read_results(tmp_path / "results.h5")["runs"][model]
    assert len(run["metrics"]["log_likelihood"]) == 3
    assert run["weights"]["W"].shape == (25, 10)
    assert (run["final"]["pulses"] > 0) == (device is not None)
    capsys.readouterr()
    assert main(["show", "--json", str(tmp_path)]) == 0
    shown = json.loads(capsys.readouterr().out)[0]
    assert shown["model"] == model and len(shown["log_likelihood"]) == 3
    assert set(shown) >= {"model", "recovered_bars", "pi", "sigma", "log_likelihood"}
    if model in ("dsc", "gsc"):
        assert len(shown["pi"]) == (3 if model == "dsc" else 10)
        assert model != "dsc" or sum(shown["pi"]) == pytest.approx(1.0)
    assert main(["bars", "--device", "nope", "--out", str(tmp_path)]) == 2
