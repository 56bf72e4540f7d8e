"""Small versions of the claims of docs/CONTINUAL.md ("What agrees with the spec").

Run through ``synapse-sim continual`` (CLI defaults: MLP 784-100-10, batch 16, the optimizers'
default rates), seed 0. The spec's two acceptance gates (9.3 split digits, 9.4 permuted
MNIST-5k) are ``tests/synapse_sim/test_continual_gates.py`` (marker ``gate`` on 9.4).

Not gated, with the reason:
- the pair benchmark (MNIST then Fashion-MNIST) needs the user's Fashion-MNIST IDX files;
- "far more robust to a coarse pulse step" on ``epiram``: issue 17 questions it (the baselines'
  rates were not tuned for the device); only the measured fact behind it, that Adam and AdaGrad
  send no pulse on ``epiram`` at their software rates, is gated;
- "the price is plasticity" (CLASSP's final-task accuracy below SGD's): at this small size the
  gap is within test-set noise (notebook 06: 0.833 against 0.837, 4 of 1,000 images; on `ideal`
  the sign flips); the doc's 5-task numbers are not reproduced by a short run;
- the SGD-forgetting cause (pulses of 0.005) and the memory table are measured once in the doc.
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
