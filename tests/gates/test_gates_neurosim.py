"""Gates of docs/NEUROSIM.md section 4 (``neurosim_compat``) and of the demo's ideal device.

* ``neurosim_compat`` EpiRAM trains: NeuroSim's protocol on our split, seed 0, 3 blocks of
  2,000 random draws (6,000 presentations). Measured on the shared 2-core machine (2026-12-02,
  third session, after the ziggurat normals): 78.0% (seeds 1, 2: 79.0%, 73.0%); the floor is 75%.
* The ideal device with stochastic rounding tracks the software twin: NeuroSim's network,
  2 epochs of the first 2,000 images, seed 0. Measured: software 70.8%, ideal with stochastic
  rounding 72.1%, ideal with round-half-up 59.6% (the dead zone of a 256-level device, not a
  bug: the demo's table says so). Gate: within 2 points, and round-half-up at least 5 below.
"""

from __future__ import annotations

import pytest

from synapse_sim import RunSpec, TrainConfig, train
from synapse_sim.data import load_dataset

pytestmark = pytest.mark.gate


@pytest.fixture(scope="module")
def data():
    return load_dataset("mnist5k", seed=0, neurosim=True)


def test_neurosim_compat_epiram_above_its_floor(data):
    cfg = TrainConfig(neurosim_compat=True, schedule="draws:3x2000", seed=0)
    res = train(cfg, [RunSpec(device="epiram")], data=data, progress=False)
    acc = res.history["epiram-bidirectional"]["test_accuracy"]
    assert acc[-1] >= 0.75, acc


def test_ideal_device_with_stochastic_rounding_tracks_software(data):
    cfg = TrainConfig(neurosim_input=True, epochs=2, max_train=2000, seed=0)
    runs = [
        RunSpec(device="software"),
        RunSpec(device="ideal", rule_options={"rounding": "stochastic"}, label="ideal-stochastic"),
        RunSpec(device="ideal"),
    ]
    h = train(cfg, runs, data=data, progress=False).history
    sw = h["software"]["test_accuracy"][-1]
    st = h["ideal-stochastic"]["test_accuracy"][-1]
    nearest = h["ideal-bidirectional"]["test_accuracy"][-1]
    assert abs(st - sw) <= 0.02, (sw, st)
    assert nearest <= sw - 0.05, (sw, nearest)
