"""Torch straight-through quantizers agree with the numpy cores of devices.quantizers."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import devices  # noqa: E402
from devices import LSQ, StatsQ, Uniform  # noqa: E402
from synapse_sim.nn.quant import (  # noqa: E402
    LSQFakeQuant,
    StatsQFakeQuant,
    UniformFakeQuant,
    grad_scale,
    lsq_fake_quant,
    statsq_fake_quant,
    ste_round,
    uniform_fake_quant,
)


def _t(a, grad=False):
    return torch.tensor(np.asarray(a), dtype=torch.float64, requires_grad=grad)


def _away_from_edges(u, lo, hi, eps=1e-3):
    """Mask of pre-rounding codes not within ``eps`` of a rounding boundary or a clip edge."""
    frac = np.abs(u - np.floor(u) - 0.5)
    return (frac > eps) & (np.abs(u - lo) > eps) & (np.abs(u - hi) > eps)


def test_idioms():
    u = _t([0.5, 1.5, 2.5, -0.5, 0.2], grad=True)
    y = ste_round(u)
    assert y.tolist() == [0.0, 2.0, 2.0, -0.0, 0.0]  # half to even, like numpy rint
    y.sum().backward()
    assert u.grad.tolist() == [1.0] * 5
    s = _t(0.7, grad=True)
    v = grad_scale(s, 0.25)
    assert v.item() == 0.7
    (3 * v).backward()
    assert s.grad.item() == pytest.approx(0.75)


@pytest.mark.parametrize(
    "q",
    [
        Uniform(4, 1.0),
        Uniform(3, 1.0, narrow=False),
        Uniform(1, 0.8),
        Uniform(4, (-0.3, 1.2)),
        Uniform(3, np.array([0.5, 1.0, 2.0]), axis=0),
        Uniform(5, axis=0),
    ],
)
def test_uniform_ste_matches_numpy(q):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 200))
    xt = _t(x, grad=True)
    y = uniform_fake_quant(xt, q)
    np.testing.assert_array_equal(y.detach().numpy(), q.fake(x))
    y.sum().backward()
    s = q.scale(x)
    u = x / s + q.zero_point(s)  # unclipped pre-rounding code
    lo, hi = q.code_range
    keep = _away_from_edges(u, lo, hi)
    grad = xt.grad.numpy()
    np.testing.assert_array_equal(grad[keep], q.grad_input(x)[keep])
    # identity STE inside the range, zero where the input was clipped
    inside = (u > lo) & (u < hi)
    assert np.all(grad[inside & keep] == 1.0)
    assert np.all(grad[~inside & keep] == 0.0)
    if q.range is not None:  # a fixed range clips some of the N(0, 1) data
        assert (~inside & keep).any()


def test_uniform_identity_ste_and_module():
    x = _t([-3.0, 0.2, 3.0], grad=True)
    uniform_fake_quant(x, Uniform(3, 1.0), ste="identity").sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 1.0]
    m = UniformFakeQuant(3, 1.0)
    x2 = torch.tensor([-3.0, 0.2, 3.0], requires_grad=True)
    out = m(x2)
    assert out.tolist() == pytest.approx([-1.0, 1 / 3, 1.0])
    out.sum().backward()
    assert x2.grad.tolist() == [0.0, 1.0, 0.0]
    with pytest.raises(ValueError, match="ste"):
        uniform_fake_quant(x, Uniform(3, 1.0), ste="clip")


@pytest.mark.parametrize(
    "q", [Uniform(3, 1.0, rounding="stochastic"), Uniform(1, 1.0, rounding="stochastic")]
)
def test_stochastic_uniform_matches_numpy_on_the_same_draws(q):
    rng = np.random.default_rng(1)
    x = rng.uniform(-1.2, 1.2, size=1000)
    noise = rng.random(x.shape)
    y = uniform_fake_quant(_t(x), q, noise=_t(noise))
    np.testing.assert_array_equal(y.numpy(), q.fake(x, noise=noise))
    # unbiased in torch too
    xs = torch.full((100_000,), 0.3, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    ys = uniform_fake_quant(xs, q, generator=g)
    gap = 2.0 if q.bits == 1 else 1 / 3
    p = (0.3 - float(np.floor(0.3 / gap) * gap)) / gap if q.bits > 1 else 0.65
    se = gap * np.sqrt(p * (1 - p) / xs.numel())
    assert abs(ys.mean().item() - 0.3) < 4 * se


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("axis", [None, 0])
def test_lsq_forward_and_gradients_match_numpy_formula(bits, signed, axis):
    rng = np.random.default_rng(bits)
    v = rng.normal(size=(4, 30))
    if not signed:
        v = np.abs(v)
    core = LSQ(bits, signed=signed, axis=axis)
    step = core.scale(v) * rng.uniform(0.5, 1.5, size=np.shape(core.scale(v)))
    step = step.reshape(-1) if axis is not None else step.reshape(())
    g_out = rng.normal(size=v.shape)

    vt, st = _t(v, grad=True), _t(step, grad=True)
    y = lsq_fake_quant(vt, st, bits, signed, axis)
    np.testing.assert_array_equal(y.detach().numpy(), core.fake(v, step))
    y.backward(_t(g_out))

    gv, gs = devices.lsq_gradients(v, step, bits, signed, axis, grad_output=g_out)
    s_b = step.reshape(-1, 1) if axis is not None else step
    qn, qp = core.bounds
    keep = _away_from_edges(v / s_b, -qn, qp)
    assert keep.mean() > 0.9
    # same formulas: the two agree to rounding (exact ties at a clip edge are excluded)
    np.testing.assert_allclose(vt.grad.numpy()[keep], gv[keep], rtol=1e-14, atol=0)
    np.testing.assert_allclose(st.grad.numpy(), gs, rtol=1e-10, atol=1e-12)
    inside = (v / s_b > -qn) & (v / s_b < qp)
    assert np.all(vt.grad.numpy()[~inside & keep] == 0.0)
    # the gradient scale is really applied: without it the step gradient is sqrt(N Q_P) larger
    n = v.size if axis is None else v.shape[1]
    gv0, gs0 = devices.lsq_gradients(v, step, bits, signed, axis, grad_output=g_out, n=1)
    np.testing.assert_allclose(gs0, gs * np.sqrt(n), rtol=1e-10)


def test_lsq_step_gradient_central_difference():
    """d/ds equals a central difference of the surrogate with the rounding residual held fixed."""
    rng = np.random.default_rng(5)
    v = rng.normal(size=(2, 50))
    core = LSQ(3)
    step = core.scale(v).reshape(-1)
    qn, qp = core.bounds
    s_b = step.reshape(-1, 1)
    u0 = v / s_b
    keep = _away_from_edges(u0, -qn, qp)
    assert keep.sum() > 80
    residual = core.quantize(v, step) - u0  # round(u) - u, held constant
    inside = (u0 > -qn) & (u0 < qp)
    clipped = np.clip(np.rint(u0), -qn, qp)

    def surrogate(s):  # identity inside the range (v + s * residual), clip outside (s * code)
        s = s.reshape(-1, 1)
        return np.where(inside, v + s * residual, s * clipped)

    h = 1e-4 * step
    fd = (surrogate(step + h) - surrogate(step - h)) / (2 * h.reshape(-1, 1))
    np.testing.assert_allclose(core.grad_step(v, step)[keep], fd[keep], rtol=1e-6, atol=1e-9)
    # torch autograd, with the factor k, on the kept entries only
    k = 1 / np.sqrt(50 * qp)
    vt, st = _t(v), _t(step, grad=True)
    lsq_fake_quant(vt, st, 3, axis=0).backward(_t(keep.astype(float)))
    np.testing.assert_allclose(st.grad.numpy(), k * np.where(keep, fd, 0).sum(axis=1), rtol=1e-6)
    # the central difference of the input: 1 inside, 0 outside
    vt = _t(v, grad=True)
    lsq_fake_quant(vt, _t(step), 3, axis=0).backward(_t(keep.astype(float)))
    np.testing.assert_array_equal(vt.grad.numpy()[keep], inside[keep].astype(float))


def test_lsq_module_learns_step_and_initializes_from_data():
    torch.manual_seed(0)
    w = torch.randn(3, 16)
    m = LSQFakeQuant(bits=2, axis=0, num_channels=3)
    out = m(w)
    expected = LSQ(2).scale(w.double().numpy()).ravel()
    np.testing.assert_allclose(m.step.detach().numpy(), expected, rtol=1e-6)
    assert bool(m.initialized)
    out.pow(2).sum().backward()
    assert m.step.grad is not None and m.step.grad.shape == (3,)
    assert torch.all(torch.isfinite(m.step.grad))
    state = m.state_dict()
    assert set(state) == {"step", "initialized"}


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("axis", [0, None])
def test_statsq_matches_numpy_and_has_identity_gradient(bits, axis):
    rng = np.random.default_rng(bits)
    w = rng.normal(size=(5, 12))
    w[0, 0] = 10.0  # clipped entry still gets gradient 1
    wt = _t(w, grad=True)
    y = statsq_fake_quant(wt, bits, axis)
    # equal up to the last bit of the mean (torch and numpy sum in different orders)
    np.testing.assert_allclose(y.detach().numpy(), StatsQ(bits, axis=axis).fake(w), rtol=1e-14)
    g = rng.normal(size=w.shape)
    y.backward(_t(g))
    np.testing.assert_array_equal(wt.grad.numpy(), g)
    m = StatsQFakeQuant(bits, axis=axis)
    np.testing.assert_array_equal(m(_t(w)).numpy(), y.detach().numpy())


def test_statsq_two_bit_grid_in_torch():
    w = torch.randn(4, 64, dtype=torch.float64)
    y = statsq_fake_quant(w, 2)
    s = 2 * w.abs().mean(dim=1, keepdim=True)
    ratios = torch.unique(torch.round(y / s * 1e9) / 1e9)
    assert set(ratios.tolist()) <= {-0.75, -0.25, 0.25, 0.75}
    assert torch.all(y != 0)


def test_float32_inputs():
    x = torch.randn(3, 8)
    assert uniform_fake_quant(x, Uniform(4, 1.0)).dtype == torch.float32
    assert statsq_fake_quant(x, 2).dtype == torch.float32
    np.testing.assert_allclose(
        statsq_fake_quant(x, 3).numpy(), StatsQ(3).fake(x.double().numpy()), rtol=1e-6, atol=1e-6
    )


# -- LevelGrid (a device's levels as a quantizer) ----------------------------------------------


@pytest.mark.parametrize(
    "grid",
    [
        devices.quantizers.LevelGrid.from_device("epiram", n_states=8, axis=0, scaling="mean"),
        devices.quantizers.LevelGrid.from_device("alox_hfo2", "differential", 0.4),
        devices.quantizers.LevelGrid(
            np.sort(np.random.default_rng(4).normal(size=(6, 5)), axis=1), axis=0
        ),
    ],
    ids=["epiram-8", "alox-diff", "per-channel"],
)
def test_level_grid_torch_matches_numpy_and_ste(grid):
    from synapse_sim.nn.quant import LevelGridFakeQuant, level_grid_fake_quant

    w = np.random.default_rng(0).normal(0, 0.3, (6, 20))
    x = _t(w, grad=True)
    y = level_grid_fake_quant(x, grid)
    np.testing.assert_array_equal(y.detach().numpy(), grid.fake(w))
    g_up = np.random.default_rng(1).normal(size=w.shape)
    y.backward(_t(g_up))
    np.testing.assert_array_equal(x.grad.numpy(), g_up * grid.grad_input(w))
    x2 = _t(w, grad=True)
    LevelGridFakeQuant(grid, ste="identity")(x2).sum().backward()
    np.testing.assert_array_equal(x2.grad.numpy(), np.ones_like(w))


def test_level_grid_torch_bad_inputs():
    from synapse_sim.nn.quant import LevelGridFakeQuant, level_grid_fake_quant

    grid = devices.quantizers.LevelGrid([0.0, 1.0])
    with pytest.raises(TypeError, match="grid"):
        level_grid_fake_quant(_t([0.1]), Uniform(2, 1.0))
    with pytest.raises(ValueError, match="ste"):
        LevelGridFakeQuant(grid, ste="soft")
    with pytest.raises(ValueError, match="rounding"):
        level_grid_fake_quant(
            _t([0.1]), devices.quantizers.LevelGrid([0, 1], rounding="stochastic")
        )
    with pytest.raises(ValueError, match="NaN"):
        level_grid_fake_quant(_t([np.nan]), grid)
