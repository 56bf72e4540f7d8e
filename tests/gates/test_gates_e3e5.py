"""Small version of the clearest finding of docs/REPRODUCTION.md "E3 / X4 and E5 / X9".

X9 (specs/adaptive_bp.md 6.2): the adaptive rule's knob A1 (``pulse_count="state"``) raises the
accuracy of the unidirectional rule on the low-noise presets pcmo and hzo_fefet. The doc's E5
table (``examples/e5_adaptive.toml`` against ``examples/e5_baseline.toml``: 64-hidden-10 on the
8x8 digits, 3 epochs, 800 training images, 5 device seeds) measures +20.7 ± 6.9 points on pcmo
and +29.0 ± 9.7 on hzo_fefet, A1 ahead on every seed (smallest gain 15.1). Here one of those
runs is repeated exactly (device seed 1, training seed 0: the sweep's instance 1).
"""

from __future__ import annotations

import pytest

from synapse_sim import RunSpec, TrainConfig, train

pytestmark = pytest.mark.gate

#: the setting of examples/e5_adaptive.toml, instance 1
CONFIG = TrainConfig(
    dataset="digits", hidden=(64,), epochs=3, lr=(0.4, 0.2), max_train=800, seed=0, device_seed=1
)
PRESETS = ("pcmo", "hzo_fefet")
A1 = {"pulse_count": "state"}


@pytest.fixture(scope="module")
def accuracy(tmp_path_factory):
    runs = []
    for p in PRESETS:
        runs.append(RunSpec(device=p, rule="unidirectional", label=f"{p}-plain"))
        runs.append(RunSpec(device=p, rule="unidirectional", rule_options=A1, label=f"{p}-a1"))
    res = train(CONFIG, runs, out=tmp_path_factory.mktemp("e5"), progress=False)
    acc = {k: 100 * h["test_accuracy"][-1] for k, h in res.history.items()}
    print(f"\nfinal-epoch accuracy (%): {acc}")  # shown with -s
    return acc


@pytest.mark.parametrize("preset", PRESETS)
def test_x9_state_pulse_count_raises_low_noise_presets(accuracy, preset):
    """A1 gains at least 10 points (measured on this seed: pcmo 36.9 -> 57.3, +20.4; hzo_fefet
    44.7 -> 67.1, +22.4) and ends above 50% (chance is 10%)."""
    plain, a1 = accuracy[f"{preset}-plain"], accuracy[f"{preset}-a1"]
    assert a1 - plain >= 10.0, accuracy
    assert a1 >= 50.0, accuracy
