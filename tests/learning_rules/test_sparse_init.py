"""``ETModel.fit(init=...)`` (start from given parameters) and ``GSC(data_truncation=True)``."""

from __future__ import annotations

import numpy as np
import pytest

from learning_rules.sparse_coding import BSC, GSC, Schedule, bars_data, bars_dictionary

W6 = 10.0 * bars_dictionary(6)


def _bsc_data(n=120, seed=0):
    return bars_data("bsc", {"W": W6, "pi": 0.3, "sigma": 2.0}, n, seed)[0]


def test_empty_init_is_the_standard_start():
    """``init={}`` draws the same standard start (same random stream): bit for bit."""
    Y = _bsc_data()
    a = BSC(6, h_prime=6, gamma=6, n_iter=5, random_state=3).fit(Y)
    b = BSC(6, h_prime=6, gamma=6, n_iter=5, random_state=3).fit(Y, init={})
    np.testing.assert_array_equal(a.W_, b.W_)
    np.testing.assert_array_equal(a.log_likelihood_, b.log_likelihood_)


def test_init_sets_the_start():
    """Parameters not learned stay at their ``init`` value; the first logged likelihood is the
    one of the start (evaluated before the M-step), so equal starts give equal first values."""
    Y = _bsc_data()
    m = BSC(6, h_prime=6, gamma=6, n_iter=3, learn=("sigma",), random_state=0)
    m.fit(Y, init={"W": W6, "pi": 0.3})
    np.testing.assert_array_equal(m.W_, W6)
    assert m.pi_ == 0.3
    other = BSC(6, h_prime=6, gamma=6, n_iter=1, random_state=5)
    other.fit(Y, init={"W": W6, "pi": 0.3, "sigma": float(m.sigma_history_[-1])})
    last = BSC(6, h_prime=6, gamma=6, n_iter=1, learn=("sigma",), random_state=0)
    last.fit(Y, init={"W": W6, "pi": 0.3, "sigma": float(m.sigma_history_[-1])})
    assert other.log_likelihood_[0] == last.log_likelihood_[0]


@pytest.mark.parametrize(
    "init,match",
    [({"W": np.zeros((9, 5))}, r"init\['W'\] must have shape \(9, 6\)"), ({"tau": 1.0}, "tau")],
)
def test_init_is_validated(init, match):
    with pytest.raises(ValueError, match=match):
        BSC(6, h_prime=6, gamma=6, n_iter=1).fit(_bsc_data(), init=init)


def test_gsc_data_truncation_keeps_et_fraction():
    """``data_truncation=True`` keeps ``floor(N (1 - (1 - A) c))`` points, ``A`` the prior mass
    of at most gamma causes at the mean ``pi_h``; the default keeps all."""
    from learning_rules.sparse_coding import prior_mass

    p = {"W": W6, "pi": 0.3, "mu": 1.0, "psi_sq": 1.0, "sigma_sq": 1.0}
    Y = bars_data("gsc", p, 200, 0)[0]
    kw = dict(h_prime=4, gamma=2, schedule=Schedule(2, Ncut_factor=1.0), random_state=0)
    keep = GSC(6, **kw).fit(Y)
    assert list(keep.n_use_) == [200, 200]
    cut = GSC(6, data_truncation=True, **kw).fit(Y)
    # iteration 1 truncates with the pi of iteration 0's M-step (the logged pi_history_[0])
    A = prior_mass(float(np.mean(cut.pi_history_[0])), 6, 2)[0]
    assert A < 1.0 and cut.n_use_[1] == int(np.floor(200 * A))
    assert cut.n_use_[0] < 200
    with pytest.raises(ValueError, match="data_truncation"):
        GSC(6, data_truncation="yes", n_iter=1).fit(Y)
