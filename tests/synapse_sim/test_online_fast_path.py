"""The fused batch-1 path (synapse_sim.models.online) equals the general path bit for bit."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from online_cases import arrays_equal as _arrays_equal
from online_cases import small_net as _net

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
    """Every array's whole state (``state_dict``: conductances, counters, the per-device read
    counts and the read totals by kind, the call counter, ...) and its weights."""
    return [(a.state_dict(), a.counter, a.weights()) for a in layers]


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


def _assert_equal_runs(data, spec, cfg, seed, n=300):
    """Train two copies of a network ``n`` presentations, the general loop and the fused path;
    assert the same metrics and the same array state bit for bit. Returns the metrics."""
    sizes = [data.x_train.shape[1], *cfg.hidden, data.n_classes]
    W0 = initial_weights(sizes, cfg.init, np.random.default_rng([seed, 1]), cfg.w_max)
    lrs = cfg.layer_lr(len(W0))
    r = make_rule(spec, cfg)
    net_ref = MLP(build_layers(spec, cfg, W0))
    net_new = MLP(build_layers(spec, cfg, W0))
    fast = online_trainer(net_new, r, lrs)
    assert fast is not None, why_not(net_new, r)
    eye = np.eye(data.n_classes)
    order = np.random.default_rng(seed + 2).integers(0, data.x_train.shape[0], n)
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
    return ref


@pytest.mark.parametrize(("device", "rule", "opts", "spec_kw"), CASES)
def test_fused_equals_general_bit_for_bit(data, device, rule, opts, spec_kw):
    spec = RunSpec(device=device, rule=rule, rule_options=opts, **spec_kw)
    _assert_equal_runs(data, spec, CFG, seed=3)


#: ``neurosim_compat`` (``train --neurosim-compat``: 1-bit DAC, current read, 8-bit partial-sum
#: ADC on the forward read, NeuroSim's counts with the bidirectional rule), seeds of the initial
#: weights and the presentation order
COMPAT_CASES = [
    ("epiram", "bidirectional", 3),
    ("epiram", "unidirectional", 4),
    ("ag_a_si", "bidirectional", 5),
    ("ag_a_si", "unidirectional", 6),
]


@pytest.mark.parametrize(("device", "rule", "seed"), COMPAT_CASES)
def test_fused_equals_general_with_neurosim_compat(data, device, rule, seed):
    cfg = dataclasses.replace(CFG, neurosim_compat=True)
    spec = RunSpec(device=device, rule=rule)
    correct, _, _, refreshes = _assert_equal_runs(data, spec, cfg, seed)
    assert correct > 0
    if rule == "unidirectional":
        assert refreshes > 0


@pytest.mark.parametrize(
    "fields",
    [
        {"dac_bits": 2, "adc_bits": 6},  # multi-bit DAC (inputs not whole numbers), weight read
        {"read": "current"},  # the current read without converters
        {"read": "current", "adc_bits": 8, "n_max": 2},  # analog inputs into the ADC, a cap
    ],
)
def test_fused_equals_general_with_array_converters(data, fields):
    cfg = dataclasses.replace(CFG, **fields)
    for spec in (RunSpec(device="pcmo"), RunSpec(device="epiram", rule="unidirectional")):
        _assert_equal_runs(data, spec, cfg, seed=7, n=150)


def test_uniform_adc_on_both_reads_matches_general():
    """A deterministic uniform ADC and DAC acting on the forward and the backward read
    (``converters="both"``), one device per synapse, NeuroSim counts, on a small network."""
    kw = {
        "dac": devices.UniformQuantizer(bits=3, lo=0.0, hi=1.0),
        "adc": devices.UniformQuantizer(bits=6, lo=-4.0, hi=4.0),
        "mapping": "reference",
        "count": "neurosim",
    }
    nets = [_net(**kw), _net(**kw)]
    rule = PulseRule()
    fast = online_trainer(nets[1], rule, (0.5, 0.5))
    assert fast is not None, why_not(nets[1], rule)
    rng = np.random.default_rng(1)
    x = rng.random((40, 6))
    y = rng.integers(0, 3, 40)
    eye = np.eye(3)
    order = np.arange(40)
    ref = _reference_loop(nets[0], rule, (0.5, 0.5), x, y, eye, order, np.random.default_rng(0))
    assert fast.epoch(x, y, eye, order) == ref
    assert ref[2] > 0
    for a, b in zip(nets[0].layers, nets[1].layers, strict=True):
        np.testing.assert_array_equal(a.G, b.G)
        assert a.counter == b.counter


def test_neurosim_counts_at_the_dead_zone_edge():
    """Requests on and next to the rounding boundaries of NeuroSim's count (half a step, one and
    a half steps, the cast's lost pulse) give the general path's pulses in the fused kernel."""
    dev = devices.get("ideal", levels_ltp=97, levels_ltd=97, c2c_sigma=0.0)
    W0 = np.zeros((4, 8))
    arrs = []
    for _ in range(2):
        a = devices.DeviceArray(W0.shape, dev, mapping="reference", count="neurosim", seed=2)
        a.program(W0, mode="ideal")
        arrs.append(a)
    up = arrs[0].nominal_step()[0]
    edges = []
    for k in (0.5, 1.5, 7.0, 14.0, 25.0):
        v = k * up
        edges += [v, np.nextafter(v, 0.0), np.nextafter(v, 1.0)]
    req = np.array(edges[:32] + [0.0] * (32 - len(edges[:32])))
    sign = np.where(np.arange(32) % 2 == 0, 1.0, -1.0)
    dW = (req * sign).reshape(4, 8)
    rule = PulseRule()
    # the general path: the request itself; the fused path, column by column: x = e_i, lr = 1,
    # d = -dW[:, i] (no noise: the call bases do not matter)
    ref = arrs[0].pulse_request(dW)
    # two layers (only the first is trained): the kernel is compiled once per network depth,
    # and the other tests' networks have two
    top = devices.DeviceArray((3, 4), dev, mapping="reference", count="neurosim", seed=3)
    net = MLP([arrs[1], top])
    fast = online_trainer(net, rule, (1.0, 1.0))
    total = 0
    for i in range(8):
        x = np.zeros(8)
        x[i] = 1.0
        p, _ = fast.update_layer(0, x, -dW[:, i].copy())
        total += p
    assert total == ref["pulses"] > 0
    np.testing.assert_array_equal(arrs[1].G, arrs[0].G)


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


@pytest.mark.parametrize(
    ("net_kw", "rule", "reason"),
    [
        (
            {"adc": devices.UniformQuantizer(bits=8, lo=-10.0, hi=10.0, stochastic=True)},
            PulseRule(),
            "stochastic ADC",
        ),
        (
            {"dac": devices.UniformQuantizer(bits=2, lo=0.0, hi=1.0, stochastic=True)},
            PulseRule(),
            "stochastic DAC",
        ),
        ({"device": devices.get("pcmo", read_sigma=0.02)}, PulseRule(), "read"),
        ({}, PulseRule.named("adaptive"), "adaptive"),
        ({}, PulseRule.named("stochastic"), "stochastic"),
        ({}, PulseRule.named("unidirectional", refresh="preemptive"), "preemptive"),
        ({}, PulseRule.named("unidirectional", refresh_every=2), "refresh_every"),
        ({"backend": "numpy"}, PulseRule(), "backend"),
        ({"count": "neurosim"}, PulseRule.named("unidirectional"), "count='neurosim'"),
        ({"count": "neurosim"}, PulseRule(rounding="stochastic"), "count='neurosim'"),
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


def test_metered_runs_take_the_fused_path_with_the_same_energy(data, monkeypatch):
    """An energy-metered run at batch 1 takes the fused path and records what the general
    loop records: the fused path counts the forward reads and the refresh's and verify's
    device reads as the arrays' own methods do, so the energy and latency per epoch are the
    same numbers."""
    import synapse_sim.studies.train as train_mod

    cfg = dataclasses.replace(CFG, epochs=2, max_train=120)
    runs = [RunSpec(device="ag_a_si", rule="unidirectional"), RunSpec(device="epiram")]
    real, used = train_mod.online_trainer, []

    def counted(*a):
        t = real(*a)
        used.append(t is not None)
        return t

    monkeypatch.setattr(train_mod, "online_trainer", counted)
    fused = train(cfg, runs, data=data, progress=False, energy=True)
    assert used == [True, True]
    monkeypatch.setattr(train_mod, "online_trainer", lambda *a: None)
    general = train(cfg, runs, data=data, progress=False, energy=True)
    for label, h in general.history.items():
        assert h["energy_read_J"][0] > 0 and h["energy_write_J"][0] > 0
        for k, v in h.items():
            if k != "epoch_time":
                assert fused.history[label][k] == v, (label, k)
        assert fused.final[label]["energy"] == general.final[label]["energy"]
        for a, b in zip(general.arrays[label], fused.arrays[label], strict=True):
            assert a.read_counts() == b.read_counts()
            _arrays_equal(a, b)
    rc = general.arrays["ag_a_si-unidirectional"][0].read_counts()
    assert rc["refresh"] > 0 and rc["verify"] > 0  # the refreshes' reads are in the comparison


@pytest.mark.parametrize(("bits", "lo", "hi"), [(1, 0.0, 1.0), (3, 0.0, 1.0), (4, -2.0, 3.0)])
def test_quantize_row_equals_the_quantizer(bits, lo, hi):
    from devices.kernels.online import quantize_row

    q = devices.UniformQuantizer(bits=bits, lo=lo, hi=hi)
    rng = np.random.default_rng(bits)
    edges = q.lo + q.step * (np.arange(2**bits) + 0.5)  # rounding boundaries and their ulps
    a = np.concatenate(
        [rng.uniform(lo - 1, hi + 1, 200), edges, np.nextafter(edges, -np.inf),
         np.nextafter(edges, np.inf), [lo, hi, -0.0, 0.0, np.inf, -np.inf]]
    )  # fmt: skip
    out = np.empty_like(a)
    status, total = quantize_row(a, q.lo, q.hi, q.step, float(2**bits - 1), out)
    ref = q(a)
    np.testing.assert_array_equal(out, ref)
    assert status == (1 if np.all(ref == np.round(ref)) else 0)
    if status == 1:
        assert total == ref.sum()
    assert quantize_row(np.array([0.2, np.nan]), lo, hi, q.step, 1.0, np.empty(2))[0] == -1


def test_partial_sums_equal_the_adc():
    from devices.converters import PartialSumADC
    from devices.kernels.online import partial_sums

    adc = PartialSumADC(bits=8)
    rng = np.random.default_rng(0)
    rows, i_range = 400, 3.7e-6
    step = adc.step(rows, i_range)
    i_col = np.concatenate([rng.uniform(0, rows * i_range, 300), step * np.arange(5.0)])
    for i_ref in (rng.uniform(0, rows * i_range, i_col.size), np.array([0.3 * rows * i_range])):
        out = np.empty_like(i_col)
        partial_sums(i_col, i_ref, step, step / i_range, 1.5, out)
        ref = 1.5 * adc.digitize(i_col, i_ref, rows=rows, i_range=i_range)
        np.testing.assert_array_equal(out, ref)


def _two_nets(**array_kw):
    nets = [_net(**array_kw), _net(**array_kw)]
    return nets, PulseRule.named("unidirectional")


@pytest.mark.parametrize("bad_layer", [0, 1])
def test_non_finite_error_stops_where_the_general_path_stops(bad_layer):
    """One kernel call updates every layer; a NaN in one layer's error raises as the general
    path does (``PulseRule.update`` refuses it), after the layers before it were updated and
    before any layer after it."""
    nets, rule = _two_nets()
    fast = online_trainer(nets[1], rule, (0.5, 0.5))
    rng = np.random.default_rng(3)
    xs = (rng.random(6), rng.random(4))
    ds = [rng.normal(0.0, 2.0, 4), rng.normal(0.0, 2.0, 3)]
    ds[bad_layer][1] = np.nan
    with pytest.raises(ValueError) as general:
        for li, layer in enumerate(nets[0].layers):
            rule.update(layer, xs[li][None, :], ds[li][None, :], 0.5, step=0)
    with pytest.raises(ValueError) as fused:
        fast._update(0, 2, xs, tuple(ds), 0)
    assert str(fused.value) == str(general.value)
    for a, b in zip(nets[0].layers, nets[1].layers, strict=True):
        _arrays_equal(a, b)
    if bad_layer == 1:  # the first layer was written
        assert nets[1].layers[0].cnt_up.sum() + nets[1].layers[0].cnt_dn.sum() > 0


def test_overflowing_requests_raise_after_the_other_synapses():
    """A request that overflows (finite x and error, infinite product) is skipped and reported
    as the general path reports it; the layer's other synapses are written, later layers not."""
    nets, rule = _two_nets()
    fast = online_trainer(nets[1], rule, (0.5, 0.5))
    xs = (np.array([1.0, 0.0, 1e300, 0.5, 1.0, 0.2]), np.full(4, 0.5))
    ds = (np.array([1e10, 0.0, 0.0, 0.0]), np.array([0.5, -0.5, 0.2]))
    with pytest.raises(ValueError) as general:
        for li, layer in enumerate(nets[0].layers):
            rule.update(layer, xs[li][None, :], ds[li][None, :], 0.5, step=0)
    with pytest.raises(ValueError) as fused:
        fast._update(0, 2, xs, ds, 0)
    assert str(fused.value) == str(general.value)
    for a, b in zip(nets[0].layers, nets[1].layers, strict=True):
        _arrays_equal(a, b)


def test_replaced_state_is_picked_up():
    """The kernel's arguments are packed once and kept; a layer whose state is replaced (a
    restored checkpoint) is packed again, so the fused path keeps equal to the general one."""
    nets, rule = _two_nets()
    fast = online_trainer(nets[1], rule, (0.5, 0.5))
    rng = np.random.default_rng(5)
    x = rng.random((30, 6))
    y = rng.integers(0, 3, 30)
    eye = np.eye(3)
    _reference_loop(nets[0], rule, (0.5, 0.5), x, y, eye, np.arange(15), None)
    fast.epoch(x, y, eye, np.arange(15))
    saved = [a.state_dict() for a in nets[0].layers]
    _reference_loop(nets[0], rule, (0.5, 0.5), x, y, eye, np.arange(15, 30), None)
    for a, st in zip(nets[1].layers, saved, strict=True):  # a different state object, same values
        a.load_state_dict(st)
    before = [a.G.copy() for a in nets[1].layers]
    fast.epoch(x, y, eye, np.arange(15, 30), 15)
    # the second half trained the replaced state (not a stale packed copy) ...
    assert any(not np.array_equal(g, a.G) for g, a in zip(before, nets[1].layers, strict=True))
    # ... exactly as the general path did
    for a, b in zip(nets[0].layers, nets[1].layers, strict=True):
        _arrays_equal(a, b)


def test_one_kernel_type_for_uniform_and_varied_devices():
    """layer_tuples passes the arrays themselves, so devices with and without device-to-device
    variation (uniform or varied parameter rows, bounds, budgets) give the kernel the same
    numba types: one compiled kernel serves both (each new specialization costs minutes)."""
    from numba import typeof

    from devices.kernels.online import layer_tuples

    plain = _net()  # no variability: one value per row
    varied = _net(device=devices.get("pcmo", sigma_nl=0.5, sigma_gmin=0.1))
    types = []
    for net in (plain, varied):
        raw = [(a.state, a.params, a.weights().reshape(-1), a.gmax_i, a.lut_up, a.refreshes,
                a.cnt_read) for a in net.layers]  # fmt: skip
        out = layer_tuples(raw)
        for (st, pa, W, gmax_i, lut_n, refreshes, reads), t in zip(raw, out, strict=True):
            assert all(x is y for x, y in zip(t[0], st, strict=True))
            assert all(x is y for x, y in zip(t[1], pa, strict=True))
            assert t[2] is W and t[3] is gmax_i and t[4] is lut_n and t[5] is refreshes
            assert t[6] is reads
        types.append(typeof(out))
    assert types[0] == types[1]


def test_uniform_constants_go_in_as_one_entry_of_the_same_type():
    """compact_uniform passes a per-device constant that is the same on every device as one
    entry (one column of ``prm``) with the numba type of the array it replaces, so the kernel
    is not compiled again; varied constants go in as they are. (The runs above, fused against
    general, cover its results.)"""
    from numba import typeof

    from devices.kernels.online import compact_uniform

    plain = _net()
    varied = _net(device=devices.get("pcmo", sigma_nl=0.5, sigma_gmin=0.1))
    for net, uniform in ((plain, True), (varied, False)):
        for a in net.layers:
            st, pa, gmax_i = compact_uniform(a.state, a.params, a.gmax_i)
            pairs = ((st.budget, a.state.budget), (pa.prm, a.params.prm),
                     (pa.gmin, a.params.gmin), (gmax_i, a.gmax_i))  # fmt: skip
            for new, old in pairs:
                assert typeof(new) == typeof(old)
                if uniform:
                    assert new.shape == old.shape[:-1] + (1,)
                    assert np.array_equal(new[..., 0], old[..., 0])
            assert st.G is a.state.G and pa.lut_up is a.params.lut_up
            if not uniform:
                assert pa.prm is a.params.prm and pa.gmin is a.params.gmin


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_numpy_step_matches_general(activation):
    """The plain numpy step (a ReLU network; a sigmoid network given 1-D targets, which skips
    the element-wise kernels) equals the general loop bit for bit."""
    nets = [_net(), _net()]
    for net in nets:
        net.activation = activation
    rule = PulseRule()
    fast = online_trainer(nets[1], rule, (0.5, 0.5))
    rng = np.random.default_rng(2)
    x = rng.random((40, 6))
    y = rng.integers(0, 3, 40)
    eye = np.eye(3)
    ref = _reference_loop(nets[0], rule, (0.5, 0.5), x, y, eye, np.arange(40), None)
    correct, loss_sum, pulses = 0, 0.0, 0
    for k in range(40):
        c, loss, p, _ = fast.step(x[k : k + 1], int(y[k]), eye[y[k]], k)  # 1-D target row
        assert isinstance(loss, float)
        correct, loss_sum, pulses = correct + c, loss_sum + loss, pulses + p
    assert (correct, float(loss_sum), pulses) == ref[:3]
    assert pulses > 0
    for a, b in zip(nets[0].layers, nets[1].layers, strict=True):
        _arrays_equal(a, b)


def test_rows_of_the_wrong_size_are_refused():
    """The kernel reads each layer's rows from buffers of the layer's sizes; a row of another
    size is refused with the layer, the row and the size it takes, before anything is written."""
    nets, rule = _two_nets()
    fast = online_trainer(nets[1], rule, (0.5, 0.5))
    before = nets[1].layers[0].G.copy()
    with pytest.raises(ValueError, match=r"layer 0: x has shape \(5,\); the layer takes \(6,\)"):
        fast._update(0, 2, (np.ones(5), np.ones(4)), (np.ones(4), np.ones(3)), 0)
    with pytest.raises(ValueError, match=r"layer 1: d has shape \(2,\); the layer takes \(3,\)"):
        fast.update_layer(1, np.ones(4), np.ones(2))
    assert np.array_equal(nets[1].layers[0].G, before)


@pytest.mark.parametrize("n", [1, 3, 7, 8, 9, 10, 15, 16, 17, 100, 128, 129, 200, 1000, 4097])
def test_row_sum_is_numpys_sum(n):
    """The loss of a sigmoid step is summed in the kernel as numpy sums (pairwise): the same
    number as ``a.sum()`` and ``a[None].sum(axis=1)``, for values over ten decades, signed
    zeros included; ``sse_output`` returns that sum of its squared errors."""
    from devices.kernels import online as kern

    rng = np.random.default_rng(n)
    for _ in range(50):
        a = rng.standard_normal(n) * 10.0 ** rng.integers(-5, 5, n)
        assert kern.row_sum(a) == a.sum() == a[None].sum(axis=1)[0]
    z = np.full(n, -0.0)
    assert np.signbit(kern.row_sum(z)) == np.signbit(z.sum())
    t = np.tanh(rng.standard_normal(n))
    target = np.zeros(n)
    target[0] = 1.0
    out, sq, d = np.empty(n), np.empty(n), np.empty(n)
    _, loss = kern.sse_output(t, target, 0, out, sq, d)
    o = 0.5 * (1.0 + t)
    assert loss == ((target - o) * (target - o)).sum()
