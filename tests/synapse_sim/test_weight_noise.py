"""Hardware-aware training: weight-noise injection (``TrainConfig.weight_noise``)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from learning_rules import FloatWeights
from synapse_sim.cli.app import main
from synapse_sim.data.datasets import load_dataset
from synapse_sim.models.noisy import NoisyWeights
from synapse_sim.studies.infer import InferConfig, Network, infer
from synapse_sim.studies.train import TrainConfig, train


def test_noisy_reads_have_the_stated_spread_and_share_one_draw_per_step():
    rng = np.random.default_rng(0)
    W = rng.uniform(-0.5, 0.5, (40, 30))
    layer = FloatWeights(W)
    nw = NoisyWeights(layer, 0.1, np.random.default_rng(1))
    with pytest.raises(RuntimeError, match="matmul"):
        nw.rmatmul(np.ones(40))
    Wn = nw.matmul(np.eye(30)).T  # rows of the identity read the noisy matrix
    np.testing.assert_allclose(nw.rmatmul(np.eye(40)), Wn)  # backward: the same draw
    noise = (Wn - W).ravel()
    sig = 0.1 * np.abs(W).max()
    n = noise.size
    lo, hi = stats.chi2.ppf([0.0005, 0.9995], n) / n
    assert lo < np.mean(noise**2) / sig**2 < hi
    assert abs(noise.mean()) < 4 * sig / np.sqrt(n)
    assert not np.allclose(nw.matmul(np.eye(30)).T, Wn)  # a fresh draw per forward read
    np.testing.assert_array_equal(layer.weights(), W)  # the stored weights are untouched
    with pytest.raises(ValueError, match="weight_noise must be > 0"):
        NoisyWeights(layer, 0.0, rng)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0)


def _cfg(**kw):
    return TrainConfig(dataset="digits", hidden=(16,), epochs=2, init="uniform", lr=(0.1,),
                       loss="ce", batch_size=8, **kw)  # fmt: skip


def test_weight_noise_changes_only_the_software_twin_and_is_seeded(digits):
    base = train(_cfg(), ["software", "epiram"], data=digits, progress=False)
    a = train(_cfg(weight_noise=0.2), ["software", "epiram"], data=digits, progress=False)
    b = train(_cfg(weight_noise=0.2), ["software", "epiram"], data=digits, progress=False)

    def timeless(h):
        return {k: v for k, v in h.items() if k != "epoch_time"}

    assert timeless(a.history["software"]) == timeless(b.history["software"])
    assert a.history["software"]["train_loss"] != base.history["software"]["train_loss"]
    h0, h1 = base.history["epiram-bidirectional"], a.history["epiram-bidirectional"]
    assert timeless(h0) == timeless(h1)
    assert "weight_noise" not in _cfg().to_dict() and _cfg(weight_noise=0.1).to_dict()[
        "weight_noise"
    ] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="weight_noise must be a number in"):
        _cfg(weight_noise=-0.1)


def test_cli_weight_noise_option(tmp_path, capsys):
    assert main(["train", "--dataset", "digits", "--weight-noise", "-1", "--out",
                 str(tmp_path)]) == 2  # fmt: skip
    assert "--weight-noise" in capsys.readouterr().err


@pytest.mark.slow
def test_weight_noise_makes_the_network_robust_to_drift():
    """MNIST-5k (NeuroSim input), sigmoid 400-100-10: trained with weight noise 0.2, the
    uncompensated accuracy a year after programming on PCM (Joshi et al. model) falls less
    than that of the network trained without noise (measured: 2.9 points vs about 0)."""
    data = load_dataset("mnist5k", seed=0, neurosim=True)
    drop = {}
    for wn in (0.0, 0.2):
        cfg = TrainConfig(dataset="mnist5k", neurosim_input=True, hidden=(100,), epochs=10,
                          init="uniform", lr=(0.1,), loss="ce", batch_size=16,
                          weight_noise=wn)  # fmt: skip
        r = train(cfg, ["software"], data=data, progress=False)
        net = Network(r.weights["software"], None, ("sigmoid",))
        res = infer(InferConfig(instances=5, times=(1.0, 3.1536e7)), network=net, data=data,
                    progress=False)  # fmt: skip
        m = res.accuracy["gst_pcm-ideal"].mean(axis=0)
        drop[wn] = m[0] - m[1]
    assert drop[0.0] > 0.015
    assert drop[0.2] < 0.5 * drop[0.0]
