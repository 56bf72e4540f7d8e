"""Small versions of the claims of docs/SPARSE_CODING.md (bars test per model, devices, LCA, the
GSC sigma cause) and of docs/DICTIONARY_LEARNING.md's BCD ablation.

The published settings of spec section 7 (5 x 5 bars, H = 10, amplitude 10, 90% of N for
training) with fewer seeds than the doc's 10 (the 10-seed runs stay ``slow``: 11.5 minutes).
"All bars": every true bar matched (optimal assignment) with mean absolute pixel error < 1.0.
SC2 (monotone EM at the published sizes), SC8 (ideal device equals float, seeds 0-4) and the
Dask LocalCluster check are tests/learning_rules/ tests marked ``gate`` through
tests/gates/conftest.py; the LCA-on-devices claims are checked on the output of
examples/sparse_coding_study.py (test_gates_examples.py).

BCD SDL on ten-class digits: the line search removes the underfit (15 iterations, about 10 s).
GSC's inflated sigma: one EM step from the truth, truncated against exact inference and ET's
data truncation (test_gsc_sigma_inflation_is_the_truncation, about 10 s).

Not gated, with the reason: the E-step timing table (speed is measured by scripts, never
asserted); GSC with a full slab covariance "neither variant recovered the bars" (a negative
finding on one construction, measured once); the device table's Ag:a-Si row (9-10 bars, its
likelihood 9-17 nats worse) is one run per seed with no margin to gate.
"""

from __future__ import annotations

import numpy as np
import pytest

from learning_rules.sparse_coding import (
    BARS_SETTINGS,
    MODELS,
    bars_data,
    bars_dictionary,
    match_fields,
)

pytestmark = pytest.mark.gate

W_BARS = 10.0 * bars_dictionary(10)


def _fit(name, seed, steps=None, n=None):
    """Published setting of ``name``; optionally shortened to ``steps`` EM steps, ``n`` points."""
    cfg = BARS_SETTINGS[name]
    keys = {"dsc": ("values", "pi", "sigma"), "gsc": ("pi", "mu", "psi_sq", "sigma_sq")}
    p = {k: cfg[k] for k in keys.get(name, ("pi", "sigma"))}
    n = cfg["N"] if n is None else n
    Y, _ = bars_data(name, {"W": W_BARS, **p}, n, seed)
    kw = {"values": cfg["values"]} if name == "dsc" else {}
    m = MODELS[name](
        10, h_prime=cfg["h_prime"], gamma=cfg["gamma"], n_iter=steps, random_state=seed, **kw
    ).fit(Y[: int(cfg["train_fraction"] * n)])
    fields = m.W_ * m.mu_ if name == "gsc" else m.W_
    truth = W_BARS * cfg["mu"] if name == "gsc" else W_BARS
    return m, match_fields(fields, truth, sign_invariant=name == "tsc")[2]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bsc_recovers_all_bars(seed):
    """SC3 / doc: BSC, published setting: all 10 bars in 10/10 seeds, pi 0.186-0.206, sigma
    1.97-1.99 (gate: |pi - 0.2| <= 0.03, |sigma - 2| / 2 <= 0.1). Measured seeds 0-2: 10 bars,
    pi 0.206 / 0.196 / 0.203, sigma 1.982 / 1.971 / 1.988."""
    m, n_rec = _fit("bsc", seed)
    assert n_rec == 10
    assert abs(m.pi_ - 0.2) <= 0.03 and abs(m.sigma_ - 2.0) / 2.0 <= 0.1


@pytest.mark.parametrize("seed", [0, 1])
def test_dsc_recovers_all_bars_and_priors(seed):
    """SC4 / doc: DSC (values 0, 1, 2), published setting: all bars in 10/10 seeds,
    max |pi - pi_gt| 0.0016-0.0066 (gate 0.02), sigma 1.98-2.02."""
    m, n_rec = _fit("dsc", seed)
    assert n_rec == 10
    assert np.max(np.abs(np.asarray(m.pi_) - np.asarray(BARS_SETTINGS["dsc"]["pi"]))) <= 0.02
    assert abs(m.sigma_ - 2.0) <= 0.1


def test_gsc_sigma_inflation_is_the_truncation():
    """Doc, "GSC: where the inflated sigma comes from": at the published setting (H = 10,
    H' = 7, gamma = 4) one EM step from the true parameters (T = 1, seed 0, 900 of 1000 points)
    inflates sigma to 1.17 (measured 1.17 / 1.28 / 1.17 for seeds 0-2), exact inference
    (H' = gamma = 10) keeps it at 1.00 (0.99-1.00), and ET's data truncation
    (``data_truncation=True``, c = 1) brings the truncated step back near 1. Here on 450 of 500
    points (measured: noise 0.992, exact 0.988, truncated 1.176, cut 1.037)."""
    from learning_rules.sparse_coding import GSC, Schedule

    cfg = BARS_SETTINGS["gsc"]
    truth = {"W": W_BARS, "pi": np.full(10, 0.2), "mu": np.ones(10), "psi_sq": np.ones(10),
             "sigma_sq": 1.0}  # fmt: skip
    Y, S = bars_data("gsc", truth, 500, 0)
    Y, S = Y[:450], S[:450]
    noise = float(np.sqrt(np.mean((Y - S @ W_BARS.T) ** 2)))
    assert abs(noise - 1.0) < 0.05  # the data have the stated noise level

    def step(hp, g, **kw):
        m = GSC(10, h_prime=hp, gamma=g, schedule=Schedule(1, **kw.pop("sched", {})), **kw)
        return m.fit(Y, init=truth).sigma_

    exact = step(10, 10)
    published = step(cfg["h_prime"], cfg["gamma"])
    cut = step(cfg["h_prime"], cfg["gamma"], data_truncation=True, sched={"Ncut_factor": 1.0})
    assert abs(exact - noise) < 0.03
    assert published > 1.10
    assert cut < 1.07 and cut < published - 0.1


def test_bcd_line_search_fixes_digits_underfit():
    """docs/DICTIONARY_LEARNING.md, "BCD on ten-class digits: ablation": the W step 1/L of the
    global bound is what keeps BCD underfitting (100 iterations: training accuracy 0.934, f 7403;
    with the line search 0.994, f 1744). Small version: 15 iterations, seed 0,
    training data (measured: f 7942 against 2998, training accuracy 0.927 against 0.997)."""
    from threadpoolctl import threadpool_limits

    from learning_rules.dictionary import SDL
    from synapse_sim.data import load_dataset

    ds = load_dataset("digits", seed=0)
    X, y = ds.x_train, ds.y_train
    kw = dict(link="multinomial", xi=1.0, nu=1e-2, max_iter=15, random_state=0, tol=0.0)
    with threadpool_limits(limits=1, user_api="blas"):
        base = SDL(16, **kw).fit(X, y)
        ls = SDL(16, step="backtracking", **kw).fit(X, y)
    assert np.all(np.diff(ls.objective_) <= 1e-10 * np.abs(ls.objective_[:-1]))
    assert ls.objective_[-1] < 0.5 * base.objective_[-1]
    assert ls.score(X, y) > base.score(X, y) + 0.04


def test_bars_sweep_nonlinearity_needs_the_unidirectional_rule(tmp_path):
    """docs/SPARSE_CODING.md "Sparse coding on devices: sweeps", small version through the sweep
    engine: BSC with W on EpiRAM (64 levels, no cycle-to-cycle noise), 40 EM steps, seeds 0-1.
    At NL 0 both rules recover all bars; at NL 4 the bidirectional rule loses them (measured
    0 bars, sigma 4.5-5.2, seeds 0-2) and the unidirectional rule keeps them (10 bars, sigma
    1.97-1.99, about 100 refreshes per run)."""
    from synapse_sim.sweep import aggregate, run_sweep

    spec = {
        "sweep": {"study": "bars", "instances": 2, "software": False},
        "bars": {"model": "bsc", "iterations": 40, "device": "epiram",
                 "overrides": {"c2c_sigma": 0.0}},
        "axes": {"nl_ltp+nl_ltd": [0.0, 4.0], "rule": ["bidirectional", "unidirectional"]},
    }  # fmt: skip
    res = run_sweep(spec, tmp_path, progress=False)
    assert res.complete
    rows = {
        (r["params"]["nl_ltp+nl_ltd"], r["params"]["rule"]): r
        for r in aggregate(res.path, metrics=("recovered_bars", "sigma", "refreshes"))
    }
    for rule in ("bidirectional", "unidirectional"):
        assert min(rows[0.0, rule]["recovered_bars_values"]) >= 9, rows[0.0, rule]
    nl_bi, nl_uni = rows[4.0, "bidirectional"], rows[4.0, "unidirectional"]
    assert max(nl_bi["recovered_bars_values"]) <= 3 and min(nl_bi["sigma_values"]) > 3.0, nl_bi
    assert min(nl_uni["recovered_bars_values"]) >= 9 and max(nl_uni["sigma_values"]) < 2.2
    assert min(nl_uni["refreshes_values"]) > 0  # the rule's refreshes do the work
