"""Small versions of the claims of docs/REPRODUCTION.md ("What agrees and what does not").

NeuroSim's reference network (400-100-10 sigmoid MLP, 20x20 binarized MNIST-5k, batch 1,
lr 0.4 / 0.2, NeuroSim's initial weights) for 2 epochs of the first 2,000 training images instead
of 10 epochs of 4,000, seed 0, one ``train`` call for all runs (same initial weights and data
order). The software twin ends at 70.8% here (91.5% in the doc), so the gaps are smaller than
the doc's and the thresholds are set from this setting's measured values (beside each, with a
margin). Accuracies are the final epoch's, in % of the 1,000 test images (one image = 0.1
point). The misses the doc reports (gst_pcm and epiram below software with the unidirectional
rule, hzo_fefet, the full order against NeuroSim) are reported misses, not claims: they are not
gated.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

import devices
from synapse_sim import RunSpec, TrainConfig, train

pytestmark = pytest.mark.gate

#: the reference setup of docs/REPRODUCTION.md, shortened
CONFIG = TrainConfig(
    dataset="mnist5k",
    neurosim_input=True,
    hidden=(100,),
    epochs=2,
    lr=(0.4, 0.2),
    batch_size=1,
    init="neurosim",
    seed=0,
    max_train=2000,
)
BOTH = ("bidirectional", "unidirectional")
LEVELS = (8, 32, 128, 1024)
NLS = (0, 2, 4, 6)


def _runs():
    runs = [RunSpec(device="software")]
    for preset in ("pcmo", "alox_hfo2", "ag_a_si", "epiram", "gst_pcm"):
        runs += [RunSpec(device=preset, rule=rule) for rule in BOTH]
    runs += [RunSpec(device=p, rule="unidirectional") for p in ("hzo_fefet", "taox_hfox", "ideal")]
    stoch = {"rounding": "stochastic"}
    runs.append(RunSpec(device="ideal", label="ideal-stoch", rule_options=stoch))
    runs += [
        RunSpec(device="ideal", label=f"levels{p}", overrides={"levels_ltp": p, "levels_ltd": p})
        for p in LEVELS
    ]
    runs += [
        RunSpec(
            device="epiram",
            label=f"nl{nl}",
            overrides={"nl_ltp": float(nl), "nl_ltd": -float(nl), "c2c_sigma": 0.0},
        )
        for nl in NLS
    ]
    return runs


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    res = train(CONFIG, _runs(), out=tmp_path_factory.mktemp("repro"), progress=False)
    acc = {k: 100 * h["test_accuracy"][-1] for k, h in res.history.items()}
    refr = {k: f.get("total_refreshes") for k, f in res.final.items()}
    print(f"\nfinal-epoch accuracy (%): {acc}\nrefreshes: {refr}")  # shown with -s
    return res, acc


def test_x1_ideal_device_with_stochastic_rounding_tracks_software(study):
    """X1: the ideal device with stochastic rounding trains within 1 point of software (doc:
    91.2 vs 91.5, 10 epochs, 3 seeds)."""
    _, acc = study
    # measured (seed 0): software 70.8, ideal with stochastic rounding 72.1
    assert acc["ideal-stoch"] >= acc["software"] - 2.0, acc


def test_x1_x2_levels_and_nonlinearity(study):
    """X1/X2: accuracy rises with the levels of a linear noise-free device (doc rho +1.00,
    round half up) and falls with |NL| of a symmetric 64-level device (doc rho -0.89)."""
    _, acc = study
    lv = [acc[f"levels{p}"] for p in LEVELS]
    nl = [acc[f"nl{n}"] for n in NLS]
    # measured: levels 8 / 32 / 128 / 1024 -> 8.9, 33.5, 43.0, 59.6 (rho +1.0)
    assert spearmanr(LEVELS, lv).statistic >= 0.8, lv
    # measured: NL 0 / 2 / 4 / 6 -> 36.6, 42.2, 19.9, 17.7 (rho -0.8 on 4 points, at the doc's
    # target itself); gated as "strong NL (4, 6) at least 10 points below weak NL (0, 2)"
    # (measured 16.7)
    assert min(nl[:2]) - max(nl[2:]) >= 10, nl


def test_x3_unidirectional_rescues_asymmetric_devices(study):
    """X3: the unidirectional rule rescues the asymmetric devices: alox_hfo2 (doc: +28.8, target
    >= 10), pcmo (doc: +11.5, target >= 5), epiram (doc: +21.0)."""
    _, acc = study
    gain = {p: acc[f"{p}-unidirectional"] - acc[f"{p}-bidirectional"] for p in BOTH_PRESETS}
    # measured (2 epochs of 2,000 images): alox_hfo2 +8.7, pcmo +10.9, epiram +11.5
    for preset in ("alox_hfo2", "pcmo", "epiram"):
        assert gain[preset] >= 4, gain


BOTH_PRESETS = ("pcmo", "alox_hfo2", "ag_a_si", "epiram", "gst_pcm")


def test_x3_ag_a_si_no_gain(study):
    """ag_a_si: the spec expects a tie rather than a gain; the doc measures -4.9 points."""
    _, acc = study
    # measured: unidirectional 50.3, bidirectional 66.0
    assert acc["ag_a_si-unidirectional"] <= acc["ag_a_si-bidirectional"] + 2.0, acc


def test_x5_good_devices_far_above_bad_ones(study):
    """X5: min(epiram, gst_pcm) exceeds max(pcmo, alox_hfo2) by > 30 points (bidirectional;
    doc: 35.1), and pcmo, alox_hfo2 are the two worst presets."""
    _, acc = study
    bi = {p: acc[f"{p}-bidirectional"] for p in BOTH_PRESETS}
    # measured: epiram 36.3, gst_pcm 57.5 against pcmo 21.5, alox_hfo2 26.1: 10.2 points after 2
    # short epochs (epiram's bidirectional run is still climbing); the order is the doc's
    assert min(bi["epiram"], bi["gst_pcm"]) - max(bi["pcmo"], bi["alox_hfo2"]) > 5, bi
    assert set(sorted(bi, key=bi.get)[:2]) == {"pcmo", "alox_hfo2"}, bi


def test_x7_symmetry_points_of_the_presets():
    """X7: the symmetry points g* of ag_a_si, pcmo and alox_hfo2 (doc and specs/devices.md:
    0.33693, 0.27220, 0.58098), where up and down steps are equal."""
    for name, g_ref in (("ag_a_si", 0.33693), ("pcmo", 0.27220), ("alox_hfo2", 0.58098)):
        dev = devices.get(name)
        G = dev.gmin + dev.dG * np.linspace(0.01, 0.99, 98_001)
        up = dev.conductance(dev.pulses(G, "ltp") + 1, "ltp") - G
        down = G - dev.conductance(dev.pulses(G, "ltd") - 1, "ltd")
        g_star = (G[np.argmin(np.abs(up - down))] - dev.gmin) / dev.dG
        assert g_star == pytest.approx(g_ref, abs=2e-4), name


def test_x8_refreshes_grow_with_levels(study):
    """X8 (the doc's finding against the spec's first-order argument): refreshes per synapse
    grow with the number of levels: hzo_fefet (32) < epiram (64) < gst_pcm (110) < ideal
    (1024) (doc: 0.24, 1.0, 2.7, 10.3 per synapse and epoch)."""
    res, _ = study
    order = ("hzo_fefet", "epiram", "gst_pcm", "ideal")
    # measured: 14,450 / 94,930 / 194,565 / 1,020,697 refreshes
    refr = [res.final[f"{p}-unidirectional"]["total_refreshes"] for p in order]
    assert refr == sorted(refr) and refr[0] < refr[-1], dict(zip(order, refr, strict=True))
