"""Gate of the E4 drift finding (docs/REPRODUCTION.md "Why the outputs drift negative",
``examples/e4_drift.py``).

Unidirectional ``neurosim_compat`` on pcmo, seed 1, 3 blocks of 8,000 random draws (the
collapsing run of ``examples/e4_collapse.py``, cut at block 3), and variants that change one
thing. Measured 2026-12-03 (branch drift): every output goes negative within the first 100
presentations in the collapsing run (mean z2 +0.32 -> -8.3) and in the float software twin
(float SGD, no device: +0.35 -> -6.6), so the plunge needs no device; after 3 blocks the
software twin's target output is back at +1.9 (the nine others at -8.4), the collapsing run's
target output stays at -3.4 (43% test accuracy), and a linear output array (the hidden array
unchanged) brings it back to +1.3 (81%). Thresholds with a margin: both plunge below -5 by
presentation 100; after 3 blocks the collapsing run's target z2 is below -2, the twin's and the
linear output array's above +0.5, and the linear output array is at least 20 points more
accurate.
"""

from __future__ import annotations

import runpy
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from synapse_sim.studies.train import RunSpec, TrainConfig, train

pytestmark = pytest.mark.gate

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def e4d():
    """The example script's functions (``runpy``: its ``main`` is not run)."""
    return SimpleNamespace(**runpy.run_path(str(ROOT / "examples" / "e4_drift.py")))


@pytest.fixture(scope="module")
def runs(e4d):
    by_name = {v.name: v for v in e4d.VARIANTS}
    return {n: e4d.run("pcmo", 1, 3, by_name[n]) for n in ("base", "float_sgd", "linear_output")}


def test_block_runner_reproduces_train(e4d, runs):
    """The script's block-by-block runner (with its early probes) trains what ``train`` trains."""
    cfg = TrainConfig(
        dataset="mnist5k", neurosim_input=True, hidden=(100,), lr=e4d.LR, batch_size=1,
        init="neurosim", seed=1, schedule="draws:3x8000", neurosim_compat=True,
    )  # fmt: skip
    res = train(cfg, [RunSpec(device="pcmo", rule="unidirectional")], progress=False)
    want = res.history["pcmo-unidirectional"]["test_accuracy"]
    got = [b["test_accuracy"] for b in runs["base"]["blocks"]]
    np.testing.assert_array_equal(got, want)


def test_outputs_plunge_without_a_device_but_only_the_nonlinear_output_array_keeps_them(runs):
    first_100 = {n: next(e for e in r["early"] if e["presented"] == 100) for n, r in runs.items()}
    # the plunge: every output pushed negative in 100 presentations, with or without a device
    assert runs["base"]["early"][0]["z2_mean"] > 0
    assert first_100["base"]["z2_mean"] < -5
    assert first_100["float_sgd"]["z2_mean"] < -5
    # the recovery of the target output: not in the collapsing run, in the software twin and
    # with a linear output array
    last = {n: r["blocks"][-1] for n, r in runs.items()}
    assert last["base"]["z2_target"] < -2
    assert last["float_sgd"]["z2_target"] > 0.5
    assert last["linear_output"]["z2_target"] > 0.5
    assert last["linear_output"]["test_accuracy"] > last["base"]["test_accuracy"] + 0.20


def test_books_balance_in_sum_but_pull_each_weight_toward_zero(e4d, runs):
    """The ledger (general path, reads around every output update) trains what the fused runner
    trains. After the first 1,000 presentations the output array's up pulses (on G+) and down
    pulses (on G-) realize the same change per pulse in sum (measured 1.51 / 1.51 steps), from
    devices at the same point of their curve (g 0.55 / 0.55), and the refreshes move the weights
    by a negligible amount (15 of 4.8e5 steps); split by the weight's sign, the pulse toward zero
    realizes about 40% more than the pulse away from it (w < 0: up 1.73, down 1.24; w > 0: up
    1.23, down 1.69 steps), on the nonlinear pair only."""
    led = e4d.ledger("pcmo", 1, 1)
    by_count = {r["presented"]: r for r in led["rows"]}
    early = {e["presented"]: e for e in runs["base"]["early"]}
    assert by_count[100]["z2_mean"] == early[100]["z2_mean"]
    assert by_count[8000]["test_accuracy"] == runs["base"]["blocks"][0]["test_accuracy"]
    b = by_count[8000]  # presentations 1,000 - 8,000
    up, dn = b["real_up"] / b["n_up"], b["real_dn"] / b["n_dn"]
    assert up > 1.2 and dn > 1.2  # the nonlinear device's gain
    assert abs(up - dn) < 0.05 * dn
    assert abs(b["g_up"] - b["g_dn"]) < 0.05
    assert abs(b["refresh_dw"]) < 0.01 * b["real_dn"]
    # toward zero: up on negative weights, down on positive ones
    neg = (b["real_up_neg"] / b["n_up_neg"]) / (b["real_dn_neg"] / b["n_dn_neg"])
    pos = (b["real_dn_pos"] / b["n_dn_pos"]) / (b["real_up_pos"] / b["n_up_pos"])
    assert neg > 1.2 and pos > 1.2
    # the linear output array barely does it (measured 1.05 and 1.08)
    by_name = {v.name: v for v in e4d.VARIANTS}
    lin = {r["presented"]: r for r in e4d.ledger("pcmo", 1, 1, by_name["linear_output"])["rows"]}
    c = lin[8000]
    neg = (c["real_up_neg"] / c["n_up_neg"]) / (c["real_dn_neg"] / c["n_dn_neg"])
    pos = (c["real_dn_pos"] / c["n_dn_pos"]) / (c["real_up_pos"] / c["n_up_pos"])
    assert neg < 1.15 and pos < 1.15
