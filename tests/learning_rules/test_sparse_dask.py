"""Dask data parallelism of the Expectation-Truncation models (specs/sparse_coding.md SC5, sec. 8).

A Dask array is processed chunk by chunk (rows): the E-step, ``Z_n`` and the sufficient
statistics per chunk, the data-truncation threshold and the sums on the driver. The result must
equal the single-array run (same kept points, parameters to 1e-10 relative).
"""

from __future__ import annotations

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
import dask  # noqa: E402

from learning_rules.sparse_coding import (  # noqa: E402
    BARS_SETTINGS,
    MODELS,
    Schedule,
    bars_data,
    bars_dictionary,
)

W_BARS = 10.0 * bars_dictionary(10)


def _data(name, n, seed=0):
    cfg = BARS_SETTINGS[name]
    keys = {"dsc": ("values", "pi", "sigma"), "gsc": ("pi", "mu", "psi_sq", "sigma_sq")}
    p = {k: cfg[k] for k in keys.get(name, ("pi", "sigma"))}
    return bars_data(name, {"W": W_BARS, **p}, n, seed)[0]


def _assert_same(a, b):
    np.testing.assert_array_equal(a.n_use_, b.n_use_)  # the same kept points
    np.testing.assert_allclose(b.log_likelihood_, a.log_likelihood_, rtol=1e-10)
    for attr in ("W_", "pi_", "sigma_", "mu_", "psi_sq_", "sigma_sq_"):
        if hasattr(a, attr):
            x, y = np.asarray(getattr(a, attr)), np.asarray(getattr(b, attr))
            np.testing.assert_allclose(y, x, rtol=1e-10, atol=1e-10 * np.max(np.abs(x)))


@pytest.mark.parametrize(
    ("name", "extra"),
    [("bsc", {}), ("bsc", {"offset": True}), ("dsc", {}), ("mca", {}), ("gsc", {}),
     ("gsc", {"psi_type": "full"})],
)  # fmt: skip
def test_dask_four_chunks_equal_single_array(name, extra):
    Y = _data(name, 400)
    # data truncation active from the first iteration: the kept set must match exactly
    sched = Schedule(5, T=[(0, 2.0), (4, 1.0)], Ncut_factor=1.0)
    kw = {"h_prime": 6, "gamma": 3, "schedule": sched, "random_state": 0, **extra}
    a = MODELS[name](10, **kw).fit(Y)
    Yd = da.from_array(Y, chunks=(100, 25))
    assert Yd.numblocks == (4, 1)
    with dask.config.set(scheduler="synchronous"):
        b = MODELS[name](10, **kw).fit(Yd)
    _assert_same(a, b)
    if name != "gsc":
        assert a.n_use_[0] < len(Y)  # truncation did drop points


def test_dask_threaded_scheduler_and_uneven_chunks():
    Y = _data("bsc", 330)
    kw = {"h_prime": 8, "gamma": 5, "n_iter": 5, "random_state": 1}
    a = MODELS["bsc"](10, **kw).fit(Y)
    Yd = da.from_array(Y, chunks=((100, 7, 123, 100), (10, 15)))  # column chunks are merged
    with dask.config.set(scheduler="threads"):
        b = MODELS["bsc"](10, **kw).fit(Yd)
    _assert_same(a, b)
    # partial_fit on a Dask array continues the same run
    c = MODELS["bsc"](10, **kw)
    for _ in range(5):
        c.partial_fit(Yd)
    _assert_same(a, c)


def test_dask_bad_input():
    Y = _data("bsc", 60)
    Yd = da.from_array(Y, chunks=(20, 25))
    m = MODELS["bsc"](10, schedule={"data_noise": 0.1}, n_iter=2, random_state=0)
    with pytest.raises(ValueError, match="data_noise"):
        m.fit(Yd)
    m = MODELS["bsc"](10, schedule={"partial": 0.5}, n_iter=2, random_state=0)
    with pytest.raises(ValueError, match="partial"):
        m.fit(Yd)
    Yn = Y.copy()
    Yn[3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        MODELS["bsc"](10, n_iter=1).fit(da.from_array(Yn, chunks=(20, 25)))
    with pytest.raises(ValueError, match="features"):
        MODELS["bsc"](10, n_iter=1).fit(Y).partial_fit(da.from_array(Y[:, :24], chunks=20))


@pytest.mark.slow
@pytest.mark.gate  # SC5: EM on a Dask LocalCluster == serial (make gates)
def test_dask_distributed_local_cluster():
    """With a ``dask.distributed`` client active the chunks run on its workers (processes)."""
    distributed = pytest.importorskip("distributed")
    Y = _data("bsc", 300)
    kw = {"h_prime": 8, "gamma": 5, "n_iter": 4, "random_state": 2}
    a = MODELS["bsc"](10, **kw).fit(Y)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster:
        with distributed.Client(cluster):
            b = MODELS["bsc"](10, **kw).fit(da.from_array(Y, chunks=(75, 25)))
    _assert_same(a, b)
