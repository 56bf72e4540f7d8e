"""Acceptance gates of specs/classp.md 9.3 (split digits, domain-incremental; default) and 9.4
(permuted MNIST-5k; slow), in the spec's exact settings.

Measured with this package (the tables are printed by the tests, ``pytest -s``):

9.3, seeds 0-2 (mean; the spec calibrates seeds 0-4 of a NumPy prototype):

    rule                         ACC     F      final   pulses   (spec: ACC / F / final / pulses)
    SGD lr 0.1                   0.797   0.240  0.972   6.8e4    (0.821 / 0.207 / 0.968 / 7.0e4)
    CLASSP 0.1 -> 0.03           0.843   0.043  0.692   4.9e4    (0.842 / 0.033 / 0.634 / 4.9e4)
    CLASSP pulses, eps 1, 0.3    0.827   0.092  0.796   2.2e4    (0.832 / 0.068 / 0.753 / 2.3e4)

9.4, seeds 0-1, split seed 0 for both: SGD ACC 0.828, F 0.063 (seed 0: 0.076, seed 1: 0.050),
final 0.875, pulses 2.37e6; CLASSP ACC 0.856, F -0.001, final 0.839, pulses 2.29e6; pulse
accumulator ACC 0.827, F 0.025, final 0.822, pulses 1.22e6 (spec: 0.799 / 0.120 / 0.871 /
2.36e6; 0.858 / 0.004 / 0.845 / 2.34e6; 0.828 / 0.039 / 0.836 / 1.23e6). SGD's forgetting
depends strongly on the seed: with the split following the seed (seed 1 -> split 1), SGD F is
0.154 on seed 1 and the two-seed mean 0.115. Without pulses (float weights) SGD F is 0.034:
the pulse rounding (dead zone |lr g| < 0.0025) is what makes SGD forget as much as the
spec's calibration says.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings

import numpy as np
import pytest

from synapse_sim.studies.continual import (
    SPLIT_DIGITS_RULES,
    ContinualConfig,
    run_continual,
    split_digits_config,
)
from synapse_sim.studies.train import initial_weights

# 9.3: the setting is synapse_sim.studies.continual.split_digits_config (digits, domain-incremental,
# MLP 64-100-2 with float biases, pulsed weights dw_nom 0.005).
RULES_93 = SPLIT_DIGITS_RULES


def _measure(config, rules, seeds):
    """Mean metrics over ``seeds`` per rule; ``config(**rule, seed=...)`` builds the run."""
    out = {}
    for name, kw in rules.items():
        rows = []
        for seed in seeds:
            res = run_continual(config(**kw, seed=seed), progress=False)
            m = res.metrics
            rows.append(
                (
                    m["average_accuracy"],
                    m["forgetting"],
                    m["final_task_accuracy"],
                    res.final["total_pulses"],
                )
            )
        out[name] = dict(zip(("acc", "f", "final", "pulses"), np.mean(rows, axis=0), strict=True))
    return out


def _table(res) -> str:
    lines = ["rule            ACC     F       final   pulses"]
    for name, r in res.items():
        lines.append(
            f"{name:15s} {r['acc']:.3f}   {r['f']:+.3f}  {r['final']:.3f}   {r['pulses']:.3g}"
        )
    return "\n".join(lines)


def test_split_digits_setting_is_the_spec():
    """The configuration really is 64-100-2 with zero biases and Glorot-uniform weights."""
    cfg = split_digits_config(**RULES_93["sgd"], seed=0)
    tasks = cfg.load_tasks()
    assert [t.name for t in tasks] == ["0v1", "2v3", "4v5", "6v7", "8v9"]
    n_train = sum(t.x_train.shape[0] for t in tasks)
    n_test = sum(t.x_test.shape[0] for t in tasks)
    assert (n_train, n_test) == (1257, 540)  # 70 / 30 of 1,797
    assert all(t.n_outputs == 2 and t.x_train.shape[1] == 64 for t in tasks)
    assert max(t.x_train.max() for t in tasks) == 1.0  # digits / 16
    res = run_continual(dataclasses.replace(cfg, n_tasks=1), progress=False)
    W1, W2 = (layer.weights() for layer in res.layers)
    assert W1.shape == (100, 64) and W2.shape == (2, 100)
    W0 = initial_weights([64, 100, 2], "uniform", np.random.default_rng([0, 1]), np.inf)
    assert np.abs(W0[0]).max() <= np.sqrt(6 / 164) and np.abs(W0[1]).max() <= np.sqrt(6 / 102)
    # realized changes are whole pulses of 0.005 (no clipping), and the pulses add up
    for W, Wi in zip((W1, W2), W0, strict=True):
        n = (W - Wi) / 0.005
        np.testing.assert_allclose(n, np.round(n), atol=1e-6)
    assert res.final["total_pulses"] >= sum(
        np.abs(np.round((W - Wi) / 0.005)).sum() for W, Wi in zip((W1, W2), W0, strict=True)
    )
    assert res.final["memory_bytes"] == 0


def test_split_digits_domain_incremental_gate():
    """specs/classp.md 9.3 gate, seeds 0-2 (about 2 s)."""
    res = _measure(split_digits_config, RULES_93, seeds=(0, 1, 2))
    print("\n" + _table(res))
    sgd, cl, cp = res["sgd"], res["classp"], res["classp-pulses"]
    assert cl["f"] <= sgd["f"] - 0.10
    assert cl["acc"] >= sgd["acc"] - 0.02
    assert cl["pulses"] <= 0.85 * sgd["pulses"]
    assert cp["pulses"] <= 0.5 * sgd["pulses"]
    assert cp["f"] <= sgd["f"] - 0.05
    # SGD does forget in this setting and learns the last task (the gate can fail)
    assert sgd["f"] > 0.1 and sgd["final"] > 0.9


def test_split_digits_other_scenarios_and_ewc_warning():
    """Reported, not gated (9.3): task-incremental is easy for every rule, class-incremental
    defeats every rule; EWC with the "batch" Fisher at lambda 5000 crosses the stability
    bound and must warn."""
    f_task = {
        n: run_continual(
            split_digits_config(scenario="task", **RULES_93[n], seed=0), progress=False
        )
        for n in ("sgd", "classp")
    }
    f_class = {
        n: run_continual(
            split_digits_config(scenario="class", **RULES_93[n], seed=0), progress=False
        )
        for n in ("sgd", "classp")
    }
    for n in ("sgd", "classp"):
        print(
            f"{n}: task-incremental F {f_task[n].metrics['forgetting']:.3f}, "
            f"class-incremental F {f_class[n].metrics['forgetting']:.3f}"
        )
        assert f_task[n].metrics["average_accuracy"] > 0.9
        assert f_task[n].metrics["forgetting"] < 0.05
    # SGD forgets almost everything class-incrementally (measured 0.993, seed 0). CLASSP with
    # alpha 0.03 after task 1 forgets less (measured 0.530, seed 0; the spec reports 0.97-0.99)
    # because it stops learning new classes on pulsed weights: docs/CONTINUAL.md, gated in
    # tests/gates/test_gates_continual.py (the class-incremental test).
    assert f_class["sgd"].metrics["forgetting"] > 0.9
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_continual(
            split_digits_config(optimizer="ewc", lr=0.1, lam=5000.0, fisher="batch", seed=0),
            progress=False,
        )
    assert any("EWC penalty step is unstable" in str(w.message) for w in caught)


# 9.4: MNIST-5k / 255, stratified 4,000 / 1,000 split with seed 0 (the package's split);
# 3 tasks, identity then two permutations of seed 1234; MLP 784-100-10; 2 epochs per task,
# batch 16; same pulse setting (ideal linear device, dw_nom 0.005, n_max 31).
PERMUTED = {
    "benchmark": "permuted",
    "n_tasks": 3,
    "dataset": "mnist5k",
    "split_seed": 0,
    "perm_seed": 1234,
    "hidden": (100,),
    "epochs_per_task": 2,
    "batch_size": 16,
    "pulse_step": 0.005,
    "n_max": 31,
}
RULES_94 = {
    "sgd": {"optimizer": "sgd", "lr": 0.1},
    "classp": {"optimizer": "classp", "lr": 0.1, "threshold": 1e-5, "eps": 1e-5, "p": 1.0},
    "classp-pulses": {
        "optimizer": "classp",
        "lr": 0.1,
        "lr_after": 1.0,
        "threshold": 0.0,
        "eps": 1.0,
        "accumulator": "pulses",
    },
}


@pytest.mark.gate
def test_permuted_mnist5k_gate():
    """specs/classp.md 9.4 gate, seeds 0-1 (about 40 s)."""
    res = _measure(functools.partial(ContinualConfig, **PERMUTED), RULES_94, seeds=(0, 1))
    print("\n" + _table(res))
    sgd, cl, cp = res["sgd"], res["classp"], res["classp-pulses"]
    assert cl["f"] <= 0.5 * sgd["f"]
    assert cl["final"] >= sgd["final"] - 0.05
    assert cp["pulses"] <= 0.7 * sgd["pulses"]
    assert sgd["f"] > 0.05  # SGD forgets here (the gate can fail)
