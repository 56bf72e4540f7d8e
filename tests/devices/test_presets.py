"""The preset registry (specs/devices.md s.6-7, device_presets.json; acceptance D1, D4)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import JSON_PRESETS, PUBLISHED, STEP_PRESETS

import devices

D4 = {
    "ag_a_si": (0.726974, 0.076124),
    "taox_hfox": (0.503960, 0.437741),
    "pcmo": (0.840653, 0.006777),
    "alox_hfo2": (0.688818, 0.439711),
    "gst_pcm": (0.510394, 0.731381),
    "epiram": (0.549443, 0.450557),
    "hzo_fefet": (0.670880, 0.643171),
    "ideal": (0.5, 0.5),
}


# ------------------------------------------------------------------------------------ D1
@pytest.mark.parametrize("key", JSON_PRESETS)
def test_json_preset_loads_with_derived_range(key):
    rec = devices.published()["presets"][key]
    dev = devices.get(key)
    assert key in devices.names()
    for b in ("ltp", "ltd"):
        lv = getattr(dev, f"levels_{b}")
        assert type(lv) is int
        assert lv == rec[f"levels_{b}"]
        assert dev.levels(b) == lv
    assert rec["gmax_S"] == pytest.approx(1.0 / rec["r_on_ohm"], rel=1e-5)
    assert rec["gmin_S"] == pytest.approx(rec["gmax_S"] / rec["on_off"], rel=1e-5)
    assert dev.gmax == pytest.approx(1.0 / rec["r_on_ohm"], rel=1e-5)
    assert dev.gmin == pytest.approx(dev.gmax / rec["on_off"], rel=1e-5)
    assert dev.nl_ltp == rec["nl_ltp"] and dev.nl_ltd == rec["nl_ltd"]
    assert dev.variability.c2c_sigma == rec["c2c_sigma"]
    assert dev.name == key
    assert dev.citation == rec["reference"] and dev.citation


def test_registry_order_and_contents():
    names = devices.names()
    assert names[: len(PUBLISHED)] == list(PUBLISHED)
    assert set(JSON_PRESETS) | set(STEP_PRESETS) <= set(names)
    assert len(names) == len(set(names))
    assert isinstance(devices.get("ideal"), devices.LinearDevice)
    for k in PUBLISHED:
        assert type(devices.get(k)) is devices.ExpDevice


@pytest.mark.parametrize("name", devices.names())
def test_every_preset_is_usable(name):
    dev = devices.get(name)
    assert dev.citation and dev.name == name
    assert dev.gmin < dev.gmax
    for mapping in devices.MAPPINGS:
        arr = devices.DeviceArray((2, 3), dev, mapping=mapping, seed=0, backend="numpy")
        w = arr.weights()
        assert w.shape == (2, 3) and np.all(np.isfinite(w))
    info = devices.info(name)
    assert info["name"] == name
    assert ("published" in info) == (name in JSON_PRESETS)


# ------------------------------------------------------------------------------------ D4
@pytest.mark.parametrize("key", sorted(D4))
def test_half_range_conductances(key):
    """D4: normalized conductance after floor(P/2) LTP pulses from Gmin and floor(P/2) LTD
    pulses from Gmax (noise-free), through the model and through an array write."""
    up, dn = D4[key]
    dev = devices.get(key)
    P, Q = dev.levels_ltp, dev.levels_ltd
    g_up = (dev.conductance(P // 2) - dev.gmin) / dev.dG
    g_dn = (dev.depressed(Q // 2) - dev.gmin) / dev.dG
    assert g_up == pytest.approx(up, abs=1e-6)
    assert g_dn == pytest.approx(dn, abs=1e-6)
    for backend in ("numpy", "numba"):
        arr = devices.DeviceArray(
            (1, 2), devices.get(key, c2c_sigma=0), mapping="reference", seed=0, backend=backend
        )
        arr.G[:] = [dev.gmin, dev.gmax]
        arr.pulse(np.array([[P // 2, -(Q // 2)]]))
        np.testing.assert_allclose((arr.G - dev.gmin) / dev.dG, [up, dn], atol=1e-6, rtol=0)


# --------------------------------------------------------------------------------- get()
def test_get_overrides_model_fields_and_variability():
    base = devices.get("epiram")
    v = devices.get("epiram", levels_ltp=32, nl_ltd=-2.0, c2c_sigma=0, sigma_nl=0.5)
    assert v.levels_ltp == 32 and v.levels_ltd == base.levels_ltd
    assert v.nl_ltd == -2.0 and v.a_ltd == pytest.approx(devices.a_from_nl(-2.0))
    assert v.variability.c2c_sigma == 0.0
    assert v.variability.d2d.sigma_nl == 0.5
    # the registry entry is untouched
    assert devices.get("epiram") == base
    assert base.variability.c2c_sigma == 0.02 and base.variability.d2d is None


def test_get_with_whole_variability_and_flat_keys_combined():
    var = devices.Variability(read=devices.ReadNoise(sigma=0.05))
    v = devices.get("ag_a_si", variability=var, p_stuck_gmax=0.1)
    assert v.variability.read_sigma == 0.05
    assert v.variability.stuck.p_gmax == 0.1
    assert v.variability.c2c is None  # replaced wholesale


def test_get_overrides_are_validated():
    with pytest.raises(ValueError, match="gmin"):
        devices.get("epiram", gmin=1.0)
    with pytest.raises(ValueError, match="nl_ltp"):
        devices.get("ideal", nl_ltp=1.0)
    with pytest.raises(ValueError, match="levels_ltd"):
        devices.get("pcmo", levels_ltd=1)


def test_get_returns_frozen_instances():
    dev = devices.get("pcmo")
    with pytest.raises(dataclasses.FrozenInstanceError):
        dev.levels_ltp = 3  # type: ignore[misc]
    assert devices.get("pcmo").levels_ltp == 50


def test_step_presets_follow_the_spec_table():
    for name in STEP_PRESETS:
        dev = devices.get(name)
        assert isinstance(dev, devices.StepDevice)
        assert dev.model == name
        assert (dev.dw_min, dev.b_min, dev.b_max, dev.up_down) == (0.001, -0.6, 0.6, 0.0)
        d2d = dev.variability.d2d
        assert (d2d.sigma_step, d2d.sigma_asym, d2d.sigma_bounds) == (0.3, 0.01, 0.3)
        assert dev.variability.c2c_sigma == 0.3
        assert dev.levels("ltp") == dev.levels("ltd") == 1200
    assert (devices.get("linear_step").gamma_up, devices.get("linear_step").gamma_down) == (0, 0)


def test_published_table_is_parsed_json():
    pub = devices.published()
    assert pub["schema_version"] == 1
    assert set(pub["presets"]) == set(JSON_PRESETS)
    assert {"ag_a_si", "taox_hfox", "pcmo", "alox_hfo2", "gst_pcm", "epiram", "hzo_fefet"} <= set(
        PUBLISHED
    )
