"""Strong versions of default tests that could hardly fail (issue 17).

Each test here replaces a weak check in a file owned elsewhere; the weak one is named in its
docstring and is to be deleted there:

- the short bars runs of DSC/MCA/MMCA/GSC ``assert 0 <= n_rec <= 10``
  (tests/learning_rules/test_sparse_models.py::test_models_short_bars_run);
- the torch bridge's read-noise check ``torch.allclose(a, clean, atol=0.5)``
  (tests/synapse_sim/test_torch_bridge.py::test_read_noise_reaches_forward_reads);
- the D4 online dictionary's default stand-in, which only beats its own random start
  (tests/learning_rules/test_dictionary_learning.py::test_d4_online_dl_short).

Seeded, thresholds from measured values with a margin; default run except the D4 comparison
(marker ``gate``: scikit-learn's batch fit takes minutes).
"""

from __future__ import annotations

import numpy as np
import pytest

from learning_rules.dictionary import OnlineDictionaryLearning
from learning_rules.sparse_coding import (
    BARS_SETTINGS,
    MODELS,
    bars_data,
    bars_dictionary,
    match_fields,
)

W_BARS = 10.0 * bars_dictionary(10)


def _short_bars_fit(name, seed, steps, n):
    """The published bars setting of ``name`` (spec section 7), shortened to ``steps``/``n``."""
    cfg = BARS_SETTINGS[name]
    keys = {"dsc": ("values", "pi", "sigma"), "gsc": ("pi", "mu", "psi_sq", "sigma_sq")}
    p = {k: cfg[k] for k in keys.get(name, ("pi", "sigma"))}
    Y, _ = bars_data(name, {"W": W_BARS, **p}, n, seed)
    kw = {"values": cfg["values"]} if name == "dsc" else {}
    m = MODELS[name](
        10, h_prime=cfg["h_prime"], gamma=cfg["gamma"], n_iter=steps, random_state=seed, **kw
    ).fit(Y[: int(cfg["train_fraction"] * n)])
    fields = m.W_ * m.mu_ if name == "gsc" else m.W_
    truth = W_BARS * cfg["mu"] if name == "gsc" else W_BARS
    return m, match_fields(fields, truth, sign_invariant=name == "tsc")[2]


@pytest.mark.parametrize(
    ("name", "n", "floor"),
    # seed 0, 30 EM steps (the annealing schedule compressed to 30), N as in the weak test.
    # Measured recovered bars: DSC 10, MCA 8, MMCA 8, GSC 10; the floor leaves 2 bars for a
    # deliberate change of the initialization or schedule (30 steps end before MCA and MMCA have
    # settled; their published runs, 300 steps, recover 10 and 9.5 on average).
    [("dsc", 400, 8), ("mca", 300, 6), ("mmca", 300, 6), ("gsc", 600, 8)],
)
def test_short_bars_runs_recover_bars(name, n, floor):
    """Replaces ``assert 0 <= n_rec <= 10`` of test_models_short_bars_run."""
    m, n_rec = _short_bars_fit(name, 0, 30, n)
    assert n_rec >= floor, (name, n_rec)
    assert m.log_likelihood_[-1] > m.log_likelihood_[0]


def test_read_noise_forward_has_the_read_statistics():
    """Replaces ``torch.allclose(a, clean, atol=0.5)`` of test_read_noise_reaches_forward_reads.

    Each forward pass reads the array once: over many passes the outputs are unbiased (mean
    equal to the clean product within 4 standard errors) and their spread equals that of
    ``x @ W_read.T`` with ``W_read`` from independent array reads (``weights(noise=True)``),
    within 10% (1000 samples: the relative standard error of a standard deviation is 2.2%).
    """
    torch = pytest.importorskip("torch")
    import synapse_sim

    layer = synapse_sim.DeviceLinear(20, 10, device="ideal", read_sigma=0.05, bias=False)
    x = torch.ones(1, 20, dtype=torch.float64)
    n = 1000
    with torch.no_grad():
        fwd = torch.cat([layer(x) for _ in range(n)]).numpy()
    clean = (x @ layer.weight.T).numpy()[0]
    reads = np.stack([layer.array.weights(noise=True).sum(axis=1) for _ in range(n)])
    s_fwd, s_read = fwd.std(axis=0, ddof=1), reads.std(axis=0, ddof=1)
    assert np.all(s_fwd > 0)
    np.testing.assert_array_less(np.abs(fwd.mean(axis=0) - clean), 4 * s_fwd / np.sqrt(n))
    np.testing.assert_allclose(s_fwd / s_read, 1.0, atol=0.10)
    # and the spread is read noise of the size asked for, not of the weights: 5% multiplicative
    # noise on conductances of at most Gmax gives a per-output std far below the outputs' range
    assert s_fwd.max() < 0.5 * np.abs(clean).max() + 0.5


def _digits_centred():
    from sklearn.datasets import load_digits

    X = load_digits().data / 16.0
    return X - X.mean(axis=0)


def _lasso_objective(X, D, alpha):
    from sklearn.decomposition import sparse_encode

    U = sparse_encode(X, D, algorithm="lasso_cd", alpha=alpha)
    R = X - U @ D
    return 0.5 * np.sum(R * R) + alpha * np.abs(U).sum()


@pytest.mark.gate  # 240 s on the loaded 2-core machine (scikit-learn's batch fit dominates)
def test_online_dictionary_close_to_sklearn_batch():
    """Replaces the D4 default stand-in (test_d4_online_dl_short): a small D4 against
    scikit-learn's batch ``DictionaryLearning`` on the same data and lasso objective.

    r = 8, alpha = 0.05 (the first D4 setting); scikit-learn 50 iterations, ours 3 epochs.
    Measured ratio of lasso objectives 1.007 (seed 0); D4 allows 1.10 at full length, the bound
    here is 1.05.
    """
    from sklearn.decomposition import DictionaryLearning

    X = _digits_centred()
    sk = DictionaryLearning(
        8, alpha=0.05, fit_algorithm="cd", transform_algorithm="lasso_cd", max_iter=50,
        random_state=0,
    ).fit(X)  # fmt: skip
    ours = OnlineDictionaryLearning(8, alpha=0.05, n_epochs=3, batch_size=64, random_state=0)
    ratio = _lasso_objective(X, ours.fit(X).components_, 0.05) / _lasso_objective(
        X, sk.components_, 0.05
    )
    assert ratio <= RATIO_BOUND, ratio


RATIO_BOUND = 1.05
