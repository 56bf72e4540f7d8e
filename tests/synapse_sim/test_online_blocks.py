"""Whole presentations in one kernel call (``OnlineTrainer`` epochs of sigmoid networks): the
same numbers as presentation after presentation, and numpy's own product and ``tanh`` called
from compiled code."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from online_cases import arrays_equal as _arrays_equal
from online_cases import small_net as _net

import devices
from devices.kernels import numpy_calls
from devices.kernels import online as kern
from learning_rules import PulseRule
from synapse_sim.data.datasets import load_dataset
from synapse_sim.models.mlp import MLP
from synapse_sim.models.online import online_trainer
from synapse_sim.studies.experiments import NEUROSIM_REFERENCE
from synapse_sim.studies.train import RunSpec, build_layers, initial_weights, make_rule

CFG = NEUROSIM_REFERENCE

pytestmark = pytest.mark.skipif(
    numpy_calls.hooks() is None,
    reason="numpy's BLAS gemv or tanh loop is not reachable on this installation",
)


@pytest.fixture(scope="module")
def data():
    return load_dataset(CFG.dataset, seed=CFG.seed, neurosim=CFG.neurosim_input)


class _Counted:
    """``present_block`` with a count of its calls and presentations."""

    def __init__(self, monkeypatch):
        self.calls = 0
        self.done = 0
        real = kern.present_block

        def counted(args, blk, k0, k1):
            out = real(args, blk, k0, k1)
            self.calls += 1
            self.done += int(out[1]) - k0
            return out

        monkeypatch.setattr(kern, "present_block", counted)


def _pair(data, spec, cfg, seed):
    """Two copies of the study network: one trained presentation by presentation, one whole
    presentations at a time."""
    sizes = [data.x_train.shape[1], *cfg.hidden, data.n_classes]
    W0 = initial_weights(sizes, cfg.init, np.random.default_rng([seed, 1]), cfg.w_max)
    lrs = cfg.layer_lr(len(W0))
    rule = make_rule(spec, cfg)
    nets = [MLP(build_layers(spec, cfg, W0)) for _ in range(2)]
    slow, fast = (online_trainer(net, rule, lrs) for net in nets)
    slow._hk = None  # the per-presentation loop
    return nets, slow, fast


def _assert_same(nets):
    for a, b in zip(*(net.layers for net in nets), strict=True):
        _arrays_equal(a, b)
        np.testing.assert_array_equal(a.weight_cache(), b.weight_cache())
        assert a.array_reads == b.array_reads
        assert a.subset_reads == b.subset_reads


CASES = [
    ("pcmo", "bidirectional", {}, False),
    ("ag_a_si", "unidirectional", {}, False),
    ("epiram", "unidirectional", {"refresh": "hysteresis"}, False),
    ("ideal", "bidirectional", {"rounding": "stochastic"}, False),
    ("epiram", "bidirectional", {}, True),
    ("ag_a_si", "unidirectional", {}, True),
]


@pytest.mark.parametrize(("device", "rule", "opts", "compat"), CASES)
def test_blocks_equal_presentations_bit_for_bit(data, monkeypatch, device, rule, opts, compat):
    cfg = dataclasses.replace(CFG, neurosim_compat=compat)
    nets, slow, fast = _pair(data, RunSpec(device=device, rule=rule, rule_options=opts), cfg, 4)
    assert fast._hk is not None
    x, y = data.x_train, data.y_train
    eye = np.eye(data.n_classes)
    # more than one block, and a last block that is not full
    order = np.random.default_rng(9).integers(0, x.shape[0], 2 * 128 + 37)
    counted = _Counted(monkeypatch)
    ref = slow.epoch(x, y, eye, order, 5)
    assert counted.calls == 0
    got = fast.epoch(x, y, eye, order, 5)
    assert counted.calls == 3 and counted.done == order.size
    assert got == ref  # correct, loss sum (the same float), pulses, refreshes
    assert ref[2] > 0
    _assert_same(nets)


@pytest.mark.parametrize(
    "fields",
    [
        {"read": "current"},  # the plain product, scaled
        {"read": "current", "adc_bits": 8},  # analog inputs into the partial-sum ADC
        {"dac_bits": 2, "read": "current", "adc_bits": 6},  # multi-bit DAC, partial sums
    ],
)
def test_blocks_with_converters(data, fields):
    cfg = dataclasses.replace(CFG, **fields)
    for spec in (RunSpec(device="pcmo"), RunSpec(device="epiram", rule="unidirectional")):
        nets, slow, fast = _pair(data, spec, cfg, 7)
        assert fast._hk is not None
        x, y = data.x_train, data.y_train
        eye = np.eye(data.n_classes)
        order = np.random.default_rng(3).integers(0, x.shape[0], 150)
        assert fast.epoch(x, y, eye, order) == slow.epoch(x, y, eye, order)
        _assert_same(nets)


def test_uncovered_networks_keep_the_per_presentation_loop():
    rule = PulseRule.named("unidirectional")
    # a uniform ADC on the weight read is a Python object the kernel does not call
    adc = devices.UniformQuantizer(bits=6, lo=-4.0, hi=4.0)
    assert online_trainer(_net(adc=adc), rule, (0.5, 0.5))._hk is None
    # nor is a converter on the backward read
    dac = devices.UniformQuantizer(bits=3, lo=0.0, hi=1.0)
    both = _net(dac=dac, adc=adc, mapping="reference", count="neurosim")
    assert online_trainer(both, PulseRule(), (0.5, 0.5))._hk is None
    relu = _net()
    relu.activation = "relu"
    assert online_trainer(relu, rule, (0.5, 0.5))._hk is None
    assert online_trainer(_net(), rule, (0.5, 0.5))._hk is not None


def _small_pair(**array_kw):
    nets = [_net(**array_kw), _net(**array_kw)]
    rule = PulseRule.named("unidirectional")
    slow, fast = (online_trainer(net, rule, (0.5, 0.5)) for net in nets)
    slow._hk = None
    rng = np.random.default_rng(5)
    return nets, slow, fast, rng.random((40, 6)), rng.integers(0, 3, 40), np.eye(3)


def test_a_label_outside_the_targets_is_presented_as_before(monkeypatch):
    """A negative label takes the last target row on both paths (numpy indexing); the block
    kernel hands that presentation to the per-presentation step and goes on."""
    nets, slow, fast, x, y, eye = _small_pair()
    y[[3, 17]] = -1
    counted = _Counted(monkeypatch)
    order = np.arange(40)
    assert fast.epoch(x, y, eye, order) == slow.epoch(x, y, eye, order)
    assert counted.calls == 3  # stopped twice, resumed after each
    _assert_same(nets)
    y[20] = 3  # past the last row: both raise at the same presentation
    for t in (slow, fast):
        with pytest.raises(IndexError):
            t.epoch(x, y, eye, order, 40)
    _assert_same(nets)


@pytest.mark.parametrize("dac", [False, True])
@pytest.mark.parametrize("value", [np.nan, np.inf, 1e300])
def test_non_finite_rows_stop_where_the_per_presentation_loop_stops(value, dac):
    """A row that makes a layer's input or error non-finite (NaN, inf) or saturates the
    network (1e300), with or without a DAC on the reads: both paths raise the same error at
    the same presentation, or finish with the same results."""
    kw = {"dac": devices.UniformQuantizer(bits=2, lo=0.0, hi=1.0), "converters": "forward"}
    kw = kw if dac else {}
    nets, slow, fast, x, y, eye = _small_pair(**kw)
    assert fast._hk is not None
    x[11, 2] = value
    order = np.arange(40)
    outcomes = []
    for t in (slow, fast):
        try:
            outcomes.append(t.epoch(x, y, eye, order))
        except ValueError as err:
            outcomes.append(str(err))
    assert outcomes[0] == outcomes[1]
    if not np.isfinite(value):
        assert isinstance(outcomes[0], str)
    _assert_same(nets)


def test_read_only_inputs_and_other_label_types(monkeypatch):
    nets, slow, fast, x, y, eye = _small_pair()
    counted = _Counted(monkeypatch)
    x.setflags(write=False)
    order = np.arange(20)
    assert fast.epoch(x, y, eye, order) == slow.epoch(x, y, eye, order)
    assert counted.calls == 0  # read-only x: presentation by presentation
    x = x.copy()
    y8 = y.astype(np.uint8)
    order = np.arange(20, 40)[::-1].astype(np.int32)
    assert fast.epoch(x, y8, eye, order, 20) == slow.epoch(x, y8, eye, order, 20)
    assert counted.calls == 1
    order = -np.arange(1, 31)  # negative indexes count from the end, as numpy's
    assert fast.epoch(x, y, eye, order, 40) == slow.epoch(x, y, eye, order, 40)
    assert counted.calls == 2
    _assert_same(nets)


def test_the_progress_bar_counts_every_presentation():
    nets, slow, fast, x, y, eye = _small_pair()

    class Bar:
        n = 0

        def update(self, k):
            self.n += k

    bar = Bar()
    order = np.random.default_rng(0).integers(0, 40, 300)
    fast.epoch(x, y, eye, order, bar=bar)
    assert bar.n == 300


@pytest.mark.parametrize(("out", "inp"), [(2, 2), (3, 1000), (50, 2), (100, 400), (10, 100)])
def test_gemv_is_numpys_product(out, inp):
    fn = numpy_calls.hooks()[0]
    rng = np.random.default_rng(out * inp)
    for _ in range(20):
        W = rng.normal(size=(out, inp)) * rng.uniform(1e-3, 10.0)
        x = rng.normal(size=(1, inp)) * (rng.uniform(size=inp) < 0.5)
        d = rng.normal(size=(1, out))
        y = np.empty(out)
        b = np.empty(inp)
        numpy_calls.row_times(fn, W.reshape(-1), x[0], y, False)
        numpy_calls.row_times(fn, W.reshape(-1), d[0], b, True)
        np.testing.assert_array_equal(y, np.matmul(x, W.T)[0])
        np.testing.assert_array_equal(b, np.matmul(d, W)[0])


def test_tanh_loop_is_numpys_tanh():
    _, fn, dp = numpy_calls.hooks()
    rng = np.random.default_rng(1)
    z = np.concatenate([rng.normal(scale=s, size=999) for s in (1e-8, 0.1, 1.0, 5.0, 40.0)])
    for n in (1, 2, 3, 8, 9, 64, 100, 1001, z.size):
        t = z[:n].copy()
        numpy_calls.row_tanh(fn, dp, t)
        assert np.array_equal(t.view(np.uint64), np.tanh(z[:n]).view(np.uint64))


def test_hooks_refuse_what_they_cannot_match(monkeypatch):
    assert numpy_calls.hooks(((1, 5),)) is None  # numpy takes a dot product for one output
    assert numpy_calls.hooks(((4, 1),)) is None
    monkeypatch.setattr(numpy_calls, "_GEMV_NAMES", ("no_such_symbol_dgemv",))
    numpy_calls.hooks.cache_clear()
    try:
        assert numpy_calls.hooks(((3, 4),)) is None
    finally:
        monkeypatch.undo()
        numpy_calls.hooks.cache_clear()
    assert numpy_calls.hooks(((3, 4),)) is not None
