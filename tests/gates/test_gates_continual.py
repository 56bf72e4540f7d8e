"""Small versions of the claims of docs/CONTINUAL.md ("What agrees with the spec").

Run through ``synapse-sim continual`` (CLI defaults: MLP 784-100-10, batch 16, the optimizers'
default rates), seed 0. The spec's two acceptance gates (9.3 split digits, 9.4 permuted
MNIST-5k) are ``tests/synapse_sim/test_continual_gates.py`` (marker ``gate`` on 9.4).

Not gated, with the reason:
- the pair benchmark (MNIST then Fashion-MNIST) needs the user's Fashion-MNIST IDX files;
- "the price is plasticity" (CLASSP's final-task accuracy below SGD's): at this small size the
  gap is within test-set noise (notebook 06: 0.833 against 0.837, 4 of 1,000 images; on `ideal`
  the sign flips); the doc's 5-task numbers are not reproduced by a short run;
- the SGD-forgetting cause (pulses of 0.005) and the memory table are measured once in the doc.

Issue 17's findings: class-incremental CLASSP forgets less than the spec says only because it
stops learning (pulse dead zone), and with every rule's rate tuned on one grid CLASSP is not more
robust to ``epiram``'s coarse step than AdaGrad (the last two tests; the earlier "far more
robust" claim is withdrawn in the doc).
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gate

#: permuted MNIST-5k, 3 tasks of 1,000 training images, 2 epochs per task (notebook 06's setting)
PERMUTED = ["--benchmark", "permuted", "--tasks", 3, "--max-per-task", 1000, "--seed", 0]
OPTIMIZERS = {
    "sgd": ["--optimizer", "sgd"],
    "adam": ["--optimizer", "adam"],
    "adagrad": ["--optimizer", "adagrad"],
    "ewc-500": ["--optimizer", "ewc", "--lam", 500],
    "classp": ["--optimizer", "classp"],
}


def _metrics(rec):
    r = np.asarray(rec["accuracy_matrix"])
    return {
        "ACC": rec["average_accuracy"],
        "F": rec["forgetting"],
        "final": float(r[-1, -1]),
        "pulses": rec["pulses"],
    }


@pytest.fixture(scope="module")
def permuted(synapse_cli, tmp_path_factory):
    out = tmp_path_factory.mktemp("permuted")
    return {
        name: _metrics(synapse_cli("continual", *PERMUTED, *args, out=out / name)[0])
        for name, args in OPTIMIZERS.items()
    }


def test_classp_forgets_least_on_permuted(permuted):
    """CLASSP forgets least (doc, 5 tasks: F 0.013 against SGD 0.056, Adam 0.067, AdaGrad 0.038,
    EWC 0.027-0.030); here at most half of SGD's forgetting and below every baseline."""
    f = {k: v["F"] for k, v in permuted.items()}
    # measured (seed 0, notebook 06's setting): SGD 0.085, Adam 0.046, AdaGrad 0.025, EWC 0.085,
    # CLASSP 0.016
    assert f["classp"] <= 0.5 * f["sgd"], f
    assert f["classp"] == min(f.values()), f


def test_classp_average_accuracy_at_least_sgd(permuted):
    """ACC: CLASSP is the best or tied with the best (doc: 0.881 against EWC 500's 0.883)."""
    acc = {k: v["ACC"] for k, v in permuted.items()}
    assert acc["classp"] >= max(acc.values()) - 0.01, acc


def test_task_incremental_split_is_uninformative(synapse_cli, tmp_path):
    """9.3 / doc: on task-incremental split MNIST-5k every rule reaches ACC >= 0.97 with
    F <= 0.016 (software); here SGD and CLASSP, seed 0, the doc's 2 epochs per task (with 1
    epoch CLASSP measured ACC 0.941, F 0.051: the claim needs the doc's schedule)."""
    split = ["--benchmark", "split", "--scenario", "task", "--seed", 0]
    for name in ("sgd", "classp"):
        m = _metrics(synapse_cli("continual", *split, *OPTIMIZERS[name], out=tmp_path / name)[0])
        assert m["ACC"] >= 0.96 and m["F"] <= 0.03, (name, m)


def test_adaptive_rates_send_no_pulse_on_epiram(synapse_cli, tmp_path):
    """Doc (epiram): Adam and AdaGrad at their software rates send zero pulses (their steps stay
    in the dead zone of a 0.03125 nominal step); SGD at lr 0.1 does send pulses."""
    small = ["--benchmark", "permuted", "--tasks", 2, "--max-per-task", 300, "--seed", 0]
    small += ["--epochs-per-task", 1, "--device", "epiram"]
    pulses = {
        name: synapse_cli("continual", *small, *OPTIMIZERS[name], out=tmp_path / name)[0]["pulses"]
        for name in ("adam", "adagrad", "sgd")
    }
    assert pulses["adam"] == 0 and pulses["adagrad"] == 0, pulses
    assert pulses["sgd"] > 0, pulses


# Class-incremental split digits in the 9.3 setting (docs/CONTINUAL.md, "Class-incremental
# CLASSP"; examples/continual_classincr.py). CLASSP alpha 0.1 -> 0.03 forgets less than the
# spec's 0.97-0.99 only because, on weights pulsed in steps of 0.005, it stops learning new
# classes: each weight's scaled step alpha |g| / A falls below half a pulse after a few updates.
def _class_incremental(seeds=(0, 1, 2), **overrides):
    from synapse_sim.studies.continual import SPLIT_DIGITS_RULES, run_continual, split_digits_config

    rows = []
    for seed in seeds:
        cfg = split_digits_config(
            scenario="class", seed=seed, **{**SPLIT_DIGITS_RULES["classp"], **overrides}
        )
        m = run_continual(cfg, progress=False).metrics
        rows.append((m["forgetting"], m["final_task_accuracy"], m["mean_diagonal"]))
    return dict(zip(("F", "final", "diag"), np.mean(rows, axis=0), strict=True))


def test_class_incremental_classp_forgetting_is_lost_plasticity():
    """Seeds 0-2 (about 5 s). Measured: as in 9.3 F 0.437, final 0.050, mean diagonal 0.777;
    float weights F 0.993, final 0.925; alpha 0.05 after task 1 F 0.991, final 0.899; 20 epochs
    per later task F 0.460, final 0.000."""
    base = _class_incremental()
    assert base["F"] < 0.7 and base["final"] < 0.3, base  # "less forgetting" = no learning
    # one change at a time restores learning, and forgetting rises to the spec's 0.97-0.99
    for change in ({"pulse_step": None}, {"lr_after": 0.05}):
        m = _class_incremental(**change)
        assert m["F"] > 0.95 and m["final"] > 0.8 and m["diag"] > 0.95, (change, m)
    # more epochs do not help: the dead zone stops every step, not the epoch budget
    m = _class_incremental(epochs_first_task=5, epochs_per_task=20)
    assert m["final"] < 0.3 and m["F"] < 0.7, m


def test_tuned_baselines_match_classp_on_epiram():
    """docs/CONTINUAL.md (epiram, tuned rates; examples/continual_tuning.py): with each rule's
    rate taken from one grid, the gradient-proportional baselines learn on ``epiram`` and the best
    of them is at least as good as CLASSP, so CLASSP is not "far more robust to a coarse pulse
    step". Here 2 permuted tasks of 1,000 images, seed 0, the rates the 3-task grid chose.
    Measured: SGD 0.3 ACC 0.679, Adam 0.03 0.711, AdaGrad 0.03 0.727, CLASSP 0.3 0.670 (at
    the software rates Adam and AdaGrad stay at chance, see the test above)."""
    from synapse_sim.studies.continual import ContinualConfig, run_continual

    small = {"benchmark": "permuted", "n_tasks": 2, "max_per_task": 1000, "device": "epiram"}
    tuned = {"sgd": 0.3, "adam": 0.03, "adagrad": 0.03, "classp": 0.3}
    acc = {
        rule: run_continual(
            ContinualConfig(**small, optimizer=rule, lr=lr, seed=0), progress=False
        ).metrics["average_accuracy"]
        for rule, lr in tuned.items()
    }
    assert min(acc[r] for r in ("sgd", "adam", "adagrad")) > 0.6, acc
    assert max(acc[r] for r in ("sgd", "adam", "adagrad")) >= acc["classp"], acc
