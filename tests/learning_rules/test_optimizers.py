"""The optimizer hooks studies use (learning_rules.optimizers) and the one CLASSP update."""

import numpy as np
import pytest

from learning_rules import continual, optimizers
from learning_rules.optimizers import (
    CLASSP,
    EWC,
    OPTIMIZERS,
    SGD,
    SI,
    Adam,
    classp_step,
    classp_update,
    make_optimizer,
)


def test_one_definition_reexported_by_continual():
    for name in ("SGD", "Adam", "AdaGrad", "CLASSP", "EWC", "SI", "classp_step", "make_optimizer"):
        assert getattr(continual, name) is getattr(optimizers, name)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_hooks_drive_every_optimizer_without_type_tests(name):
    """One loop for all six: update_masked, needs_weights, needs_fisher, end_task."""
    opt = make_optimizer(name)
    rng = np.random.default_rng(0)
    w = rng.normal(size=(3, 4))
    state = opt.init_state(w.shape)
    for _ in range(3):
        g = rng.normal(size=w.shape)
        dw, state, mask = opt.update_masked(g, state, w=w if opt.needs_weights else None)
        assert dw.shape == w.shape and np.all(np.isfinite(dw))
        assert (mask is None) == (name != "classp")
        w = w + dw
    fisher = np.ones_like(w) if opt.needs_fisher else None
    st2 = opt.end_task(state, w, fisher, warn=False)
    assert opt.needs_fisher == (name == "ewc") and opt.needs_weights == (name in ("ewc", "si"))
    if name == "ewc":
        assert st2["fisher"].shape == (1, *w.shape)
        with pytest.raises(ValueError, match="Fisher"):
            opt.end_task(state, w)
    elif name == "si":
        np.testing.assert_array_equal(st2["anchor"], w)
    else:
        assert st2 is state
    assert (opt.pulsed() is not None) == (name == "classp")


def test_update_masked_equals_update():
    rng = np.random.default_rng(1)
    for opt in (SGD(lr=0.1), Adam(), CLASSP(threshold=0.2), SI(), EWC()):
        w = rng.normal(size=5)
        g = rng.normal(size=5)
        s = opt.init_state(5)
        a, sa = opt.update(g, s, w=w)
        b, sb, _ = opt.update_masked(g, s, w=w)
        np.testing.assert_array_equal(a, b)
        assert sa.keys() == sb.keys()


def test_classp_pulsed_is_device_classp():
    rule = CLASSP(lr=0.2, threshold=0.01)
    dev = rule.pulsed(accumulator="pulses", n_max=3)
    assert isinstance(dev, continual.DeviceCLASSP) and dev.rule is rule and dev.n_max == 3


def test_classp_update_matches_an_elementwise_loop():
    """The vectorized core against a plain per-element reading of the rule."""
    rng = np.random.default_rng(2)
    g = rng.normal(scale=0.5, size=200)
    acc = rng.uniform(0, 2, size=200)
    for accumulate in ("before", "after"):
        for scaling in (True, False):
            dw, acc_new, mask = classp_update(
                g,
                acc,
                lr=0.1,
                threshold=0.05,
                eps=1e-3,
                p=1.5,
                accumulate=accumulate,
                scaling=scaling,
            )
            for i in range(g.size):
                if g[i] ** 2 <= 0.05:
                    assert dw[i] == 0 and acc_new[i] == acc[i] and not mask[i]
                    continue
                a = acc[i] + abs(g[i]) ** 1.5
                # numpy's vectorized power may differ from the scalar one by an ulp on some CPUs
                assert acc_new[i] == pytest.approx(a, rel=1e-15)
                base = a if accumulate == "before" else acc[i]
                want = -0.1 * g[i] / (1e-3 + base) ** (1 / 1.5) if scaling else -0.1 * g[i]
                assert dw[i] == pytest.approx(want, rel=1e-14)


def test_classp_update_on_torch_matches_numpy():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    g = rng.normal(size=(4, 6))
    acc = rng.uniform(0, 1, size=(4, 6))
    kw = dict(lr=0.05, threshold=0.1, eps=1e-5, p=2.0, accumulate="after", scaling=True)
    dn, an, mn = classp_update(g, acc, **kw)
    dt, at, mt = classp_update(torch.from_numpy(g), torch.from_numpy(acc), xp=torch, **kw)
    np.testing.assert_array_equal(dt.numpy(), dn)
    np.testing.assert_array_equal(at.numpy(), an)
    np.testing.assert_array_equal(mt.numpy(), mn)
    _, dw, _, _ = classp_step(None, g, acc, **kw)
    np.testing.assert_array_equal(dw, dn)


def test_bad_arguments_one_exception_style():
    with pytest.raises(TypeError, match="scaling must be True or False"):
        CLASSP(scaling="yes")
    with pytest.raises(TypeError, match="lr must be a real number"):
        SGD(lr="0.1")
    with pytest.raises(TypeError, match="half"):
        EWC(half=1)
    with pytest.raises(TypeError, match="n_samples must be an integer"):
        continual.fisher_diagonal([np.ones(2)], 2.5)
    with pytest.raises(ValueError, match="n_max must be >= 1"):
        continual.DeviceCLASSP(n_max=0)
