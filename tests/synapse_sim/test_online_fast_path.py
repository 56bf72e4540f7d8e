"""The fused batch-1 path (synapse_sim.models.online) equals the general path bit for bit."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import devices
from learning_rules import PulseRule
from synapse_sim.data.datasets import load_dataset
from synapse_sim.models.mlp import MLP
from synapse_sim.models.online import online_trainer, why_not
from synapse_sim.studies.experiments import NEUROSIM_REFERENCE
from synapse_sim.studies.train import RunSpec, build_layers, initial_weights, make_rule, train

CFG = NEUROSIM_REFERENCE


@pytest.fixture(scope="module")
def data():
    return load_dataset(CFG.dataset, seed=CFG.seed, neurosim=CFG.neurosim_input)


def _reference_loop(net, rule, lrs, x, y, eye, order, rng):
    """The general batch-1 loop of TrainStudy.execute: MLP methods and PulseRule.update."""
    correct, loss_sum, pulses, refreshes = 0, 0.0, 0, 0
    for step, i in enumerate(order):
        ib = np.array([i])
        acts, zs = net.forward(x[ib])
        loss, d_out = net.loss_and_delta(acts[-1], eye[y[ib]])
        correct += int(np.sum(acts[-1].argmax(axis=1) == y[ib]))
        loss_sum = loss_sum + loss.sum()
        deltas = net.backward(acts, zs, d_out)
        for li, layer in enumerate(net.layers):
            st = rule.update(layer, acts[li], deltas[li], lrs[li], rng=rng, step=step)
            pulses += st["pulses"]
            refreshes += st["refreshes"]
    return correct, float(loss_sum), pulses, refreshes


def _state(layers):
    keys = ("G", "Gw", "tau", "frozen", "cnt_up", "cnt_dn", "cnt_prog", "cnt_reset", "refreshes")
    return [({k: getattr(a, k).copy() for k in keys}, a.counter, a.weights()) for a in layers]


CASES = [
    ("pcmo", "bidirectional", {}, {}),
    ("ideal", "bidirectional", {"rounding": "stochastic"}, {}),
    ("epiram", "unidirectional", {}, {}),
    ("ag_a_si", "unidirectional", {"refresh_mode": "ideal"}, {}),
    ("ag_a_si", "unidirectional", {"refresh": "hysteresis", "n_max": 3}, {}),
    ("alox_hfo2", "bidirectional", {}, {"mapping": "differential"}),
    (
        "pcmo",
        "unidirectional",
        {},
        {
            "overrides": {
                "sigma_nl": 0.5,
                "sigma_gmin": 0.1,
                "p_stuck_gmin": 0.01,
                "endurance_n50": 400,
            }
        },
    ),
    ("constant_step", "unidirectional", {}, {}),
]


@pytest.mark.parametrize(("device", "rule", "opts", "spec_kw"), CASES)
def test_fused_equals_general_bit_for_bit(data, device, rule, opts, spec_kw):
    spec = RunSpec(device=device, rule=rule, rule_options=opts, **spec_kw)
    sizes = [data.x_train.shape[1], *CFG.hidden, data.n_classes]
    W0 = initial_weights(sizes, CFG.init, np.random.default_rng([3, 1]), CFG.w_max)
    lrs = CFG.layer_lr(len(W0))
    r = make_rule(spec, CFG)
    net_ref = MLP(build_layers(spec, CFG, W0))
    net_new = MLP(build_layers(spec, CFG, W0))
    fast = online_trainer(net_new, r, lrs)
    assert fast is not None, why_not(net_new, r)
    eye = np.eye(data.n_classes)
    order = np.random.default_rng(5).integers(0, data.x_train.shape[0], 300)
    x, y = data.x_train, data.y_train
    ref = _reference_loop(net_ref, r, lrs, x, y, eye, order, np.random.default_rng(0))
    new = fast.epoch(x, y, eye, order)
    assert new == ref  # correct, loss sum (exact float), pulses, refreshes
    assert ref[2] > 0
    for (s_ref, c_ref, w_ref), (s_new, c_new, w_new) in zip(
        _state(net_ref.layers), _state(net_new.layers), strict=True
    ):
        assert c_new == c_ref
        np.testing.assert_array_equal(w_new, w_ref)
        for k in s_ref:
            np.testing.assert_array_equal(s_new[k], s_ref[k], err_msg=k)


def test_unidirectional_cases_refresh(data):
    """The unidirectional cases above do exercise the refresh (verify) part of the kernel."""
    spec = RunSpec(device="epiram", rule="unidirectional")
    sizes = [data.x_train.shape[1], *CFG.hidden, data.n_classes]
    W0 = initial_weights(sizes, CFG.init, np.random.default_rng([3, 1]), CFG.w_max)
    net = MLP(build_layers(spec, CFG, W0))
    fast = online_trainer(net, make_rule(spec, CFG), CFG.layer_lr(2))
    _, _, _, refreshes = fast.epoch(data.x_train, data.y_train, np.eye(10), np.arange(50))
    assert refreshes > 0
    assert sum(int(a.cnt_prog.sum()) for a in net.layers) > 0


def _net(**array_kw):
    W0 = initial_weights([6, 4, 3], "neurosim", np.random.default_rng(0))
    dev = array_kw.pop("device", devices.get("pcmo"))
    layers = []
    for W in W0:
        a = devices.DeviceArray(W.shape, dev, mapping="differential", seed=1, **array_kw)
        a.program(W)
        layers.append(a)
    return MLP(layers)


@pytest.mark.parametrize(
    ("net_kw", "rule", "reason"),
    [
        ({"adc": devices.UniformQuantizer(bits=8, lo=-10.0, hi=10.0)}, PulseRule(), "DAC/ADC"),
        ({"dac": devices.UniformQuantizer(bits=1, lo=0.0, hi=1.0)}, PulseRule(), "DAC/ADC"),
        ({"device": devices.get("pcmo", read_sigma=0.02)}, PulseRule(), "read"),
        ({}, PulseRule.named("adaptive"), "adaptive"),
        ({}, PulseRule.named("stochastic"), "stochastic"),
        ({}, PulseRule.named("unidirectional", refresh="preemptive"), "preemptive"),
        ({}, PulseRule.named("unidirectional", refresh_every=2), "refresh_every"),
        ({"backend": "numpy"}, PulseRule(), "backend"),
        ({"read": "current"}, PulseRule(), "read='current'"),
        ({"count": "neurosim"}, PulseRule(), "count='neurosim'"),
    ],
)
def test_uncovered_settings_keep_the_general_path(net_kw, rule, reason):
    net = _net(**net_kw)
    assert reason in why_not(net, rule)
    assert online_trainer(net, rule, (0.1, 0.1)) is None


def test_train_uses_the_fused_path_and_matches_general(data, monkeypatch):
    """train() at batch 1 (fused) gives the same history as the general loop (batch 1 forced
    through the general code by making the fused path unavailable)."""
    cfg = dataclasses.replace(CFG, epochs=1, max_train=150)
    runs = [RunSpec(device="epiram", rule="unidirectional"), RunSpec(device="pcmo")]
    fused = train(cfg, runs, data=data, progress=False)
    import synapse_sim.studies.train as train_mod

    monkeypatch.setattr(train_mod, "online_trainer", lambda *a: None)
    general = train(cfg, runs, data=data, progress=False)
    for label, h in general.history.items():
        for k, v in h.items():
            if k != "epoch_time":
                assert fused.history[label][k] == v, (label, k)
        for a, b in zip(general.weights[label], fused.weights[label], strict=True):
            np.testing.assert_array_equal(a, b)
