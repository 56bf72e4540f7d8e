"""Small versions of the claims of docs/QUANTIZATION.md that have no gate elsewhere.

The spec 7.2 gates (weights within 1.0 / 1.5 / 3.0 points of fp32 at W4 / W3 / W2 on digits and
mnist5k, weights and activations within 2 / 3 / 4 points, the 3-seed oscillation gate) are
``tests/synapse_sim/test_qat.py`` (marker ``gate``); the seed-0 oscillation gate runs in the
default suite. "A linear device with P = 2^b - 1 gives the b-bit StatsQ grid" is
``tests/devices/test_level_grid.py`` (default suite).

Not gated: "QKR brings nothing measurable in the tiny ViT" (a null result inside the seed spread;
``examples/vit_qkr.py`` runs in ``test_gates_examples.py``), and the speed table (benchmarks are
measured by ``benchmarks/``, never asserted).
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.gate


def test_device_grids_cost_little_against_uniform_and_statsq(synapse_cli, tmp_path):
    """Doc: on digits every device grid is within 0.4 points of the uniform and StatsQ grids at
    the same bit width (3 seeds, 40 epochs), even PCMO's strongly compressed response.

    Small version: W3, seed 0, 12 epochs, no CGA; EpiRAM and PCMO levels against uniform and
    StatsQ. Threshold: within 1.5 points of the better of the two (8 test images; one seed
    spreads by about 0.3 points in the doc's table).
    """
    args = ["qat", "--dataset", "digits", "--bits", 3, "--no-cga", "--epochs", 12, "--seed", 0]
    args += ["--quantizer", "uniform", "--quantizer", "statsq"]
    args += ["--device-levels", "epiram", "--device-levels", "pcmo", "--no-float"]
    acc = {r["label"]: 100 * r["final_test_accuracy"] for r in synapse_cli(*args, out=tmp_path)}
    ref = max(acc["w3-uniform"], acc["w3-statsq"])
    # passes at seed 0 (measured once, 266 s on the loaded machine; the accuracies were not
    # recorded: a failing run prints them)
    for label in ("w3-levels-epiram", "w3-levels-pcmo"):
        assert acc[label] >= ref - 1.5, acc
