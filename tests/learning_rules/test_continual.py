"""CLASSP, its baselines, EWC and SI (specs/classp.md sections 1, 6, 7, 9.1, 9.2)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import devices
from learning_rules import FloatWeights
from learning_rules.continual import (
    CLASSP,
    EWC,
    SGD,
    SI,
    AdaGrad,
    Adam,
    DeviceCLASSP,
    classp_step,
    fisher_diagonal,
    make_optimizer,
    memory_bytes,
)

W0 = np.array([0.5, -0.3, 0.1])
G1 = np.array([0.2, 0.05, -0.3])
G2 = np.array([-0.15, 0.2, 0.05])


def _two_steps(**kw):
    acc = np.zeros(3)
    w1, _, acc, m1 = classp_step(W0, G1, acc, lr=0.1, **kw)
    w2, _, acc, m2 = classp_step(w1, G2, acc, lr=0.1, **kw)
    return w1, w2, acc, m1, m2


@pytest.mark.parametrize(
    "kw, w1, w2, acc",
    [
        (
            {"p": 2, "eps": 0, "threshold": 0.01},
            [0.4, -0.3, 0.2],
            [0.46, -0.4, 0.2],
            [0.0625, 0.04, 0.09],
        ),
        (
            {"p": 1, "eps": 0, "threshold": 0.01},
            [0.4, -0.3, 0.2],
            [0.4428571428571, -0.4, 0.2],
            [0.35, 0.2, 0.3],
        ),
        (
            {"p": 2, "eps": 0.01, "threshold": 0.01, "accumulate": "after"},
            [0.3, -0.3, 0.4],
            [0.3670820393250, -0.5, 0.4],
            [0.0625, 0.04, 0.09],
        ),
        (
            {"p": 2, "threshold": 0.01, "scaling": False},
            [0.48, -0.3, 0.13],
            [0.495, -0.32, 0.13],
            [0.0625, 0.04, 0.09],
        ),
        (
            {"p": 2, "eps": 0, "threshold": 0.01, "legacy_reference": True},
            [0.4552786404500, -0.3223606797750, 0.1547722557505],
            [0.4806332680919, -0.3623606797750, 0.1463207132032],
            [0.35, 0.25, 0.35],
        ),
        (
            {"p": 2, "eps": 0, "threshold": 1.0, "legacy_reference": True},
            [0.5, -0.3, 0.1],
            [0.5, -0.3, 0.1],
            [0, 0, 0],
        ),
        (
            {"p": 2, "eps": 0, "threshold": 0},
            [0.4, -0.4, 0.2],
            [0.46, -0.4970142500145, 0.1835601012695],
            [0.0625, 0.0425, 0.0925],
        ),
    ],
)
def test_hand_computed_cases(kw, w1, w2, acc):
    got1, got2, got_acc, _, _ = _two_steps(**kw)
    np.testing.assert_allclose(got1, w1, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got2, w2, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got_acc, acc, rtol=0, atol=1e-12)


def test_p2_threshold0_equals_adagrad_step_for_step():
    rng = np.random.default_rng(0)
    shape = (4, 5)
    w_c = w_a = rng.normal(size=shape)
    c, a = CLASSP(lr=0.05, p=2, eps=0.0, threshold=0.0), AdaGrad(lr=0.05, eps=0.0)
    sc, sa = c.init_state(shape), a.init_state(shape)
    for _ in range(100):
        g = rng.normal(size=shape)
        g[g == 0] = 1e-3
        w_c, sc = c.step(w_c, g, sc)
        w_a, sa = a.step(w_a, g, sa)
        np.testing.assert_allclose(w_c, w_a, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(sc["acc"], sa["acc"], rtol=1e-12)


def test_adagrad_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    w = rng.normal(size=6)
    t = torch.tensor(w.copy(), requires_grad=True)
    opt = torch.optim.Adagrad([t], lr=0.1, eps=1e-10)
    a = AdaGrad(lr=0.1)
    st = a.init_state(6)
    for _ in range(20):
        g = rng.normal(size=6)
        t.grad = torch.tensor(g)
        opt.step()
        w, st = a.step(w, g, st)
    np.testing.assert_allclose(w, t.detach().numpy(), rtol=1e-12)


def test_adam_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    w = rng.normal(size=6)
    t = torch.tensor(w.copy(), requires_grad=True)
    opt = torch.optim.Adam([t], lr=0.01)
    a = Adam(lr=0.01)
    st = a.init_state(6)
    for _ in range(20):
        g = rng.normal(size=6)
        t.grad = torch.tensor(g)
        opt.step()
        w, st = a.step(w, g, st)
    np.testing.assert_allclose(w, t.detach().numpy(), rtol=1e-10)


@pytest.mark.parametrize("p", [1.0, 2.0, 1.5])
@pytest.mark.parametrize("accumulate", ["before", "after"])
def test_threshold_mask_and_accumulator(p, accumulate):
    rng = np.random.default_rng(3)
    theta = 0.04
    c = CLASSP(lr=0.1, p=p, eps=0.0, threshold=theta, accumulate=accumulate)
    w = rng.normal(size=(8, 8))
    st = c.init_state(w.shape)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(30):
            g = rng.normal(scale=0.2, size=w.shape)
            g[0, 0] = 0.0
            acc_before = st["acc"].copy()
            dw, st_new, mask = c.update_masked(g, st)
            under = g * g <= theta
            np.testing.assert_array_equal(mask, ~under)
            assert np.all(dw[under] == 0.0)
            assert np.all(np.isfinite(dw))
            np.testing.assert_array_equal(st_new["acc"][under], acc_before[under])
            np.testing.assert_allclose(
                st_new["acc"][~under], acc_before[~under] + np.abs(g[~under]) ** p, rtol=1e-12
            )
            # input state untouched (pure)
            np.testing.assert_array_equal(st["acc"], acc_before)
            w, st = w + dw, st_new


def test_scaling_off_theta0_is_sgd():
    rng = np.random.default_rng(4)
    w = rng.normal(size=5)
    g = rng.normal(size=5)
    wc, _ = CLASSP(lr=0.3, scaling=False).step(w, g, {"acc": np.zeros(5)})
    ws, _ = SGD(lr=0.3).step(w, g, {})
    np.testing.assert_allclose(wc, ws, rtol=0, atol=1e-15)


def test_memory_bytes():
    shape = (10, 20)
    n = 200 * 8
    assert SGD().memory_bytes(SGD().init_state(shape)) == 0
    assert CLASSP().memory_bytes(CLASSP().init_state(shape)) == n
    assert AdaGrad().memory_bytes(AdaGrad().init_state(shape)) == n + 8
    assert Adam().memory_bytes(Adam().init_state(shape)) == 2 * n + 8
    e = EWC()
    st = e.init_state(shape)
    assert e.memory_bytes(st) == 0
    st = e.consolidate(st, np.zeros(shape), np.zeros(shape))
    st = e.consolidate(st, np.zeros(shape), np.zeros(shape))
    assert e.memory_bytes(st) == 4 * n
    assert memory_bytes([st, st]) == 8 * n


# ---------------------------------------------------------------------------- EWC
def _net_grads(W1, W2, x, y):
    """2-2-1 linear-tanh net, loss 0.5 (out - y)^2 per sample; per-sample grads by hand."""
    h = np.tanh(W1 @ x)
    out = W2 @ h
    e = out - y
    g2 = e * h[None, :]
    dh = (W2[0] * e) * (1 - h * h)
    g1 = np.outer(dh, x)
    return g1, g2


def test_ewc_fisher_penalty_and_gradient_by_hand():
    W1 = np.array([[0.3, -0.2], [0.1, 0.4]])
    W2 = np.array([[0.5, -0.6]])
    xs = np.array([[1.0, 0.0], [0.5, -1.0], [0.0, 2.0], [1.0, 1.0]])
    ys = np.array([1.0, -1.0, 0.5, 0.0])
    per_sample = [_net_grads(W1, W2, x, y) for x, y in zip(xs, ys, strict=True)]
    # batches of 2: mean-loss gradient per batch
    b1 = [(per_sample[0][k] + per_sample[1][k]) / 2 for k in range(2)]
    b2 = [(per_sample[2][k] + per_sample[3][k]) / 2 for k in range(2)]
    for k in range(2):
        ref = fisher_diagonal([b1[k], b2[k]], 4, "reference")
        np.testing.assert_allclose(ref, (b1[k] ** 2 + b2[k] ** 2) / 4, rtol=1e-14)
        bat = fisher_diagonal([b1[k], b2[k]], 4, "batch")
        np.testing.assert_allclose(bat, (b1[k] ** 2 + b2[k] ** 2) / 2, rtol=1e-14)
        smp = fisher_diagonal([ps[k] for ps in per_sample], 4, "sample")
        np.testing.assert_allclose(smp, sum(ps[k] ** 2 for ps in per_sample) / 4, rtol=1e-14)
    F = fisher_diagonal([b1[0], b2[0]], 4)
    e = EWC(base=SGD(lr=0.01), lam=3.0)
    st = e.consolidate(e.init_state(W1.shape), W1, F)
    w = W1 + np.array([[0.1, -0.2], [0.05, 0.0]])
    hand = 3.0 * np.sum(F * (w - W1) ** 2)
    assert e.penalty_value(w, st) == pytest.approx(hand, rel=1e-14)
    assert e.replace(half=True).penalty_value(w, st) == pytest.approx(hand / 2, rel=1e-14)
    np.testing.assert_allclose(e.penalty_grad(w, st), 2 * 3.0 * F * (w - W1), rtol=1e-14)
    # numerical gradient of the penalty
    h = 1e-6
    num = np.zeros_like(w)
    for i in np.ndindex(w.shape):
        d = np.zeros_like(w)
        d[i] = h
        num[i] = (e.penalty_value(w + d, st) - e.penalty_value(w - d, st)) / (2 * h)
    np.testing.assert_allclose(e.penalty_grad(w, st), num, rtol=1e-6, atol=1e-12)
    g = np.ones_like(w)
    dw, _ = e.update(g, st, w=w)
    np.testing.assert_allclose(dw, -0.01 * (g + 2 * 3.0 * F * (w - W1)), rtol=1e-14)


def test_ewc_default_lambda_and_stability_warning():
    assert EWC().lam == 5000
    e = EWC(base=SGD(lr=0.1), lam=5000)
    st = e.init_state(3)
    with pytest.warns(RuntimeWarning, match="unstable"):
        e.consolidate(st, np.zeros(3), np.array([0.0, 1e-2, 0.0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        e.consolidate(st, np.zeros(3), np.array([0.0, 1e-4, 0.0]))


def test_ewc_implicit_step_is_proximal():
    e = EWC(base=SGD(lr=0.1), lam=100.0, penalty="implicit")
    anchor = np.array([1.0, -1.0])
    F = np.array([0.5, 2.0])
    st = e.consolidate(e.init_state(2), anchor, F, warn=False)
    w = np.array([0.0, 0.0])
    g = np.array([0.3, -0.2])
    w_new, _ = e.step(w, g, st)
    # w_new solves w_new = w - lr (g + coef F (w_new - anchor))
    resid = w_new - (w - 0.1 * (g + e.coef * F * (w_new - anchor)))
    np.testing.assert_allclose(resid, 0, atol=1e-14)


# ---------------------------------------------------------------------------- device CLASSP
def test_device_classp_spec_pulse_table():
    rows = [
        (DeviceCLASSP(rule=CLASSP(lr=0.1, threshold=0.01, p=2, eps=0)), [-4, 0, 4], [2, -4, 0]),
        (
            DeviceCLASSP(rule=CLASSP(lr=0.1, threshold=0.01, p=1, eps=1), accumulator="pulses"),
            [-1, 0, 1],
            [0, -1, 0],
        ),
    ]
    for dc, n1, n2 in rows:
        w = FloatWeights(W0[None, :], w_max=None, step=0.025)
        st = dc.init_state(w.shape)
        st, s1 = dc.update(w, G1[None, :], st)
        st, s2 = dc.update(w, G2[None, :], st)
        np.testing.assert_array_equal(s1["counts"][0], n1)
        np.testing.assert_array_equal(s2["counts"][0], n2)
        np.testing.assert_allclose(w.W[0], W0 + 0.025 * (np.add(n1, n2)), atol=1e-12)


@pytest.mark.parametrize("accumulator", ["gradient", "pulses"])
@pytest.mark.parametrize("preset", ["ideal", "epiram"])
def test_device_classp_never_pulses_under_threshold(accumulator, preset):
    rng = np.random.default_rng(5)
    arr = devices.DeviceArray((6, 7), devices.get(preset), mapping="reference", seed=1)
    arr.program(rng.uniform(-0.5, 0.5, size=(6, 7)), mode="ideal")
    eps = 1.0 if accumulator == "pulses" else 1e-5
    theta = 0.01
    dc = DeviceCLASSP(rule=CLASSP(lr=0.5, threshold=theta, eps=eps), accumulator=accumulator)
    st = dc.init_state(arr.shape)
    total = 0
    for _ in range(15):
        g = rng.normal(scale=0.15, size=arr.shape)
        before = arr.pulse_counts()
        st, stats = dc.update(arr, g, st)
        after = arr.pulse_counts()
        per_syn = (after["ltp"] - before["ltp"] + after["ltd"] - before["ltd"]).sum(axis=0)
        under = g * g <= theta
        assert under.any() and (~under).any()
        assert np.all(per_syn[under] == 0)
        np.testing.assert_array_equal(np.abs(stats["counts"]), per_syn)
        assert stats["pulses"] == per_syn.sum()
        total += stats["pulses"]
    assert total > 0


def test_bad_arguments_name_the_parameter():
    with pytest.raises(ValueError, match="threshold"):
        CLASSP(threshold=-1)
    with pytest.raises(ValueError, match="p must"):
        CLASSP(p=0)
    with pytest.raises(ValueError, match="accumulate.*'before'"):
        CLASSP(accumulate="befor")
    with pytest.raises(ValueError, match="lr"):
        SGD(lr=0)
    with pytest.raises(ValueError, match="optimizer.*'classp'"):
        make_optimizer("clasp")
    with pytest.raises(ValueError, match="estimator"):
        fisher_diagonal([np.ones(2)], 2, "full")
    with pytest.raises(ValueError, match="accumulator"):
        DeviceCLASSP(accumulator="both")
    with pytest.raises(ValueError, match="lam"):
        EWC(lam=-1)


@pytest.mark.parametrize(
    "kw",
    [
        {"p": 1.0, "threshold": 0.01, "eps": 1e-5},
        {"p": 2.0, "threshold": 0.0, "eps": 0.0},
        {"p": 2.0, "threshold": 0.02, "eps": 0.01, "accumulate": "after"},
        {"p": 1.0, "threshold": 0.01, "scaling": False},
    ],
)
def test_torch_optimizer_matches_numpy_core(kw):
    torch = pytest.importorskip("torch")
    from synapse_sim.nn.classp_optim import CLASSP as TorchCLASSP

    rng = np.random.default_rng(6)
    w = rng.normal(size=(5, 4))
    t = torch.tensor(w.copy(), requires_grad=True)
    opt = TorchCLASSP([t], lr=0.1, **kw)
    c = CLASSP(lr=0.1, **kw)
    st = c.init_state(w.shape)
    for _ in range(25):
        g = rng.normal(scale=0.2, size=w.shape)
        t.grad = torch.tensor(g)
        opt.step()
        w, st = c.step(w, g, st)
    np.testing.assert_allclose(t.detach().numpy(), w, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(opt.state[t]["acc"].numpy(), st["acc"], rtol=1e-12)
    with pytest.raises(ValueError, match="threshold"):
        TorchCLASSP([t], threshold=-1.0)


# ---------------------------------------------------------------------------- SI
def test_si_path_integral_importance_and_penalty_by_hand():
    """Two SGD steps with fixed gradients (lr 0.1, xi 1e-3, c 0.1), computed by hand.

    w0 = [0.5, -0.3]; g1 = [0.2, -0.1] -> w1 = [0.48, -0.29]; g2 = [0.4, 0.0] ->
    w2 = [0.44, -0.29]. omega = -g1 (w1 - w0) - g2 (w2 - w1) = [0.004 + 0.016, 0.001];
    Delta = w2 - w0 = [-0.06, 0.01]; Omega = omega / (Delta^2 + xi) = [0.02 / 0.0046,
    0.001 / 0.0011].
    """
    si = SI(base=SGD(lr=0.1), c=0.1, xi=1e-3, penalty="explicit")
    w0 = np.array([0.5, -0.3])
    st = si.init_state(2)
    w1, st = si.step(w0, np.array([0.2, -0.1]), st)
    np.testing.assert_allclose(w1, [0.48, -0.29], rtol=1e-14)
    w2, st = si.step(w1, np.array([0.4, 0.0]), st)
    np.testing.assert_allclose(w2, [0.44, -0.29], rtol=1e-14)
    # the second step's contribution enters at consolidation (realized change w2 - w1)
    np.testing.assert_allclose(st["omega"], [0.004, 0.001], rtol=1e-12)
    st = si.consolidate(st, w2)
    Omega = np.array([0.02 / 0.0046, 0.001 / 0.0011])
    np.testing.assert_allclose(st["importance"], Omega, rtol=1e-12)
    np.testing.assert_array_equal(st["anchor"], w2)
    np.testing.assert_array_equal(st["omega"], 0.0)
    w = np.array([0.5, -0.2])
    # c * sum Omega (w - w~)^2 = 0.1 * (4.3478... * 0.0036 + 0.90909... * 0.0081)
    assert si.penalty_value(w, st) == pytest.approx(0.00230158102766798, rel=1e-12)
    np.testing.assert_allclose(
        si.penalty_grad(w, st), [0.0521739130434783, 0.0163636363636364], rtol=1e-12
    )
    g = np.array([0.1, 0.1])
    dw, st2 = si.update(g, st, w=w)
    np.testing.assert_allclose(dw, -0.1 * (g + si.penalty_grad(w, st)), rtol=1e-14)
    # importance accumulates over tasks: a second task with no movement adds nothing
    st3 = si.consolidate(st2, w)
    np.testing.assert_allclose(st3["importance"], Omega, rtol=1e-12)


def test_si_uses_the_realized_change():
    """When the weights passed to the next update differ from w + dw (clipping, pulse rounding),
    the path integral follows the realized change."""
    si = SI(base=SGD(lr=1.0), c=1.0, xi=0.5)
    st = si.init_state(3)
    w0 = np.array([0.0, 0.2, -0.1])
    g = np.array([0.4, -0.2, 0.0])
    dw, st = si.update(g, st, w=w0)
    np.testing.assert_allclose(dw, -g)
    realized = w0 + np.array([-0.3, 0.0, 0.0])  # first element moved less, second not at all
    st = si.consolidate(st, realized)
    omega = -g * (realized - w0)
    np.testing.assert_allclose(st["importance"], omega / ((realized - w0) ** 2 + 0.5), rtol=1e-14)
    assert st["importance"][1] == 0.0 and st["importance"][2] == 0.0


def test_si_implicit_step_is_proximal_and_stable():
    si = SI(base=SGD(lr=0.1), c=50.0, xi=1e-3)
    assert si.implicit and si.penalty == "auto"
    assert not SI(base=Adam(lr=1e-3)).implicit
    st = si.consolidate(si.init_state(2), np.array([1.0, -1.0]))  # anchor of a finished task
    np.testing.assert_array_equal(st["importance"], 0.0)  # no update yet: no importance
    st = dict(st, importance=np.array([2.0, 0.5]))
    w = np.zeros(2)
    g = np.array([0.3, -0.2])
    w_new, _ = si.step(w, g, st)
    resid = w_new - (w - 0.1 * (g + si.penalty_grad(w_new, st)))
    np.testing.assert_allclose(resid, 0.0, atol=1e-14)
    # explicit: lr * 2c * max Omega = 0.1 * 100 * 2 = 20 >= 2 -> warning on consolidation
    ex = si.replace(penalty="explicit")
    st0 = ex.init_state(2)
    st0 = dict(st0, importance=np.array([2.0, 0.5]))
    with pytest.warns(RuntimeWarning, match="SI penalty step is unstable"):
        ex.consolidate(st0, np.zeros(2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        si.consolidate(st0, np.zeros(2))  # implicit: no warning
    # the explicit step oscillates with growing amplitude on the penalty alone, the implicit
    # step converges to the anchor
    st_e = dict(ex.consolidate(ex.init_state(1), np.ones(1)), importance=np.array([2.0]))
    st_i = dict(si.consolidate(si.init_state(1), np.ones(1)), importance=np.array([2.0]))
    we = wi = np.zeros(1)
    for _ in range(20):
        we, st_e = ex.step(we, np.zeros(1), st_e)
        wi, st_i = si.step(wi, np.zeros(1), st_i)
    assert abs(we[0] - 1.0) > 1.0 and abs(wi[0] - 1.0) < 1e-6


def test_si_memory_and_bad_arguments():
    si = SI()
    st = si.init_state((4, 5))
    assert si.memory_bytes(st) == 5 * 20 * 8 + 1
    assert make_optimizer("si", lr=0.05, c=0.2).base.lr == 0.05
    with pytest.raises(ValueError, match="c must be >= 0"):
        SI(c=-1)
    with pytest.raises(ValueError, match="xi must be > 0"):
        SI(xi=0)
    with pytest.raises(ValueError, match="penalty.*'auto'"):
        SI(penalty="prox")
    with pytest.raises(ValueError, match="implicit"):
        SI(base=Adam(), penalty="implicit")
    with pytest.raises(ValueError, match="base must be"):
        SI(base=CLASSP())
    with pytest.raises(ValueError, match="needs the current weights"):
        si.update(np.ones(2), si.init_state(2))
