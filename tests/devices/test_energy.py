"""Read counters of device arrays and the energy/latency model (``devices.energy``)."""

from __future__ import annotations

import numpy as np
import pytest

import devices
from devices.energy import (
    DEFAULT_PULSE,
    EnergyMeter,
    EnergyModel,
    EnergyReport,
    Pulse,
    network_summary,
    preset_pulses,
    summary,
)
from devices.presets import PUBLISHED, published
from devices.quantizers import UniformQuantizer


def _ideal(shape=(2, 3), mapping="reference", **kw):
    return devices.DeviceArray(
        shape, devices.get("ideal", c2c_sigma=0), mapping=mapping, seed=1, **kw
    )


# ----------------------------------------------------------------------------- read counters
@pytest.mark.parametrize("mapping,k", [("reference", 1), ("differential", 2)])
def test_whole_array_reads_count_every_device(mapping, k):
    m, n = 3, 4
    arr = _ideal((m, n), mapping)
    arr.matmul(np.ones((5, n)))  # 5 vectors
    arr.matmul(np.ones(n))  # 1 vector
    arr.rmatmul(np.ones((2, m)))
    arr.weights()  # a noise-free peek is not a read
    arr.read_conductances(noise=False)
    arr.weights(noise=True)
    rc = arr.read_counts()
    assert rc["forward"] == 6 * k * m * n
    assert rc["backward"] == 2 * k * m * n
    assert rc["other"] == k * m * n
    assert rc["verify"] == rc["refresh"] == 0
    assert rc["total"] == 9 * k * m * n
    assert (rc["array_forward"], rc["array_backward"], rc["array_other"]) == (6, 2, 1)
    np.testing.assert_array_equal(arr.pulse_counts()["reads"], np.full((k, m, n), 9))


def test_noisy_read_is_counted_once_and_draws_unchanged():
    dev = devices.get("ideal", c2c_sigma=0, read_sigma=0.05)
    a = devices.DeviceArray((3, 4), dev, seed=3)
    b = devices.DeviceArray((3, 4), dev, seed=3)
    x = np.linspace(-1, 1, 8).reshape(2, 4)
    y = a.matmul(x)
    # the same draw as the read it replaces: weights(noise=True) of an identical array
    W = b.weights(noise=True)
    np.testing.assert_array_equal(y, x @ W.T)
    assert a.read_counts()["forward"] == 2 * a.n_devices
    assert a.read_counts()["other"] == 0


def test_refresh_and_verify_reads():
    arr = _ideal((2, 3), "differential")
    arr.program(np.full((2, 3), 0.5), mode="ideal")
    mask = np.zeros((2, 3), dtype=bool)
    mask[0, :2] = True
    arr.refresh(mask, mode="ideal")
    rc = arr.read_counts()
    assert rc["refresh"] == 4  # 2 pairs x 2 devices, one read each
    per = arr.pulse_counts()["reads"]
    assert per.sum() == 4 and per[:, 0, :2].min() == 1
    # write-verify: every programmed device is read once per round, the same number of rounds
    arr2 = _ideal((2, 3), "reference")
    arr2.program(np.full((2, 3), 0.5), mode="verify")
    reads = arr2.pulse_counts()["reads"].ravel()
    assert arr2.read_counts()["verify"] == reads.sum() > 0
    assert np.all(reads == reads[0]) and reads[0] >= 2
    # rounds = trains + 1 on a noise-free linear device: pulses are halved until under 4
    assert reads[0] <= arr2.pulse_counts()["prog"].max() + 1


def test_read_counts_survive_state_dict_and_old_states_load():
    arr = _ideal()
    arr.matmul(np.ones((3, 3)))
    arr.program(np.full((2, 3), 0.25), mode="verify")
    st = arr.state_dict()
    new = _ideal()
    new.load_state_dict(st)
    assert new.read_counts() == arr.read_counts()
    old = {k: v for k, v in st.items() if k not in ("cnt_read", "read_counts")}
    new2 = _ideal()
    new2.load_state_dict(old)
    assert new2.read_counts()["total"] == 0


# ----------------------------------------------------------------------------- energy
def test_energy_of_a_pulse_sequence_equals_hand_computation():
    arr = _ideal((1, 1), "reference")
    V, t = 2.5, 3e-6
    meter = EnergyMeter(arr, EnergyModel(ltp=Pulse(V, t), ltd=Pulse(-V, t)))
    dev = arr.device
    step = dev.dG / dev.levels("ltp")
    g0 = arr.g_ref
    seq = [1, 1, 1, -1, 1]
    g, hand = g0, 0.0
    for n in seq:
        arr.pulse(np.array([[n]]))
        meter.update()
        g_new = g + n * step
        hand += V**2 * t * 0.5 * (g + g_new)  # mean conductance over the pulse
        g = g_new
    assert meter.total.write_energy == pytest.approx(hand, rel=1e-12)
    assert meter.total.pulses == len(seq)
    assert meter.total.write_latency == pytest.approx(len(seq) * t)
    assert meter.total.read_energy == 0.0


def test_multi_pulse_write_latency_is_longest_device_sequence():
    arr = _ideal((1, 3), "reference")
    ltp, ltd = Pulse(1.0, 1e-6), Pulse(-1.0, 5e-6)
    meter = EnergyMeter(arr, EnergyModel(ltp=ltp, ltd=ltd))
    arr.pulse(np.array([[3, -1, 0]]))
    r = meter.update()
    assert r.write_latency == pytest.approx(max(3 * 1e-6, 1 * 5e-6))
    assert r.pulses == 4


def test_zero_pulses_cost_zero_write_energy():
    arr = _ideal()
    meter = EnergyMeter(arr)
    arr.matmul(np.ones((4, 3)))
    arr.pulse(np.zeros((2, 3), dtype=int))
    r = meter.update()
    assert r.write_energy == 0.0 and r.write_latency == 0.0 and r.pulses == 0
    assert r.read_energy > 0
    assert summary(_ideal()).energy == 0.0


def test_read_energy_hand_computation_and_linear_in_counts_and_v_squared():
    arr = _ideal((2, 3), "differential")
    arr.program(np.array([[0.5, -0.25, 0.0], [1.0, -1.0, 0.1]]), mode="ideal")
    model = EnergyModel(v_read=0.3, t_read=7e-9)
    meter = EnergyMeter(arr, model)
    arr.matmul(np.ones((4, 3)))
    r1 = meter.update()
    hand = 4 * 0.3**2 * 7e-9 * arr.conductances.sum()
    assert r1.read_energy == pytest.approx(hand, rel=1e-12)
    assert r1.reads == 4 * arr.n_devices
    assert r1.read_latency == pytest.approx(4 * 7e-9)
    arr.matmul(np.ones((8, 3)))
    r2 = meter.update()
    assert r2.read_energy == pytest.approx(2 * r1.read_energy, rel=1e-12)
    # V^2: the same reads at twice the voltage cost four times as much
    arr2 = _ideal((2, 3), "differential")
    arr2.program(np.array([[0.5, -0.25, 0.0], [1.0, -1.0, 0.1]]), mode="ideal")
    arr2.matmul(np.ones((4, 3)))
    r3 = summary(arr2, model.replace(v_read=0.6))
    assert r3.read_energy == pytest.approx(4 * r1.read_energy, rel=1e-12)


def test_write_energy_linear_in_counts_and_v_squared():
    def run(V, reps):
        arr = _ideal((2, 2), "reference")
        arr.program(np.zeros((2, 2)), mode="ideal")
        m = EnergyMeter(arr, EnergyModel(ltp=Pulse(V, 1e-6), ltd=Pulse(-V, 1e-6)))
        for _ in range(reps):  # +1 then -1: the conductances return, one interval each
            arr.pulse(np.ones((2, 2), dtype=int))
            m.update()
            arr.pulse(-np.ones((2, 2), dtype=int))
            m.update()
        return m.total.write_energy

    e1 = run(1.0, 1)
    assert run(1.0, 3) == pytest.approx(3 * e1, rel=1e-12)
    assert run(3.0, 1) == pytest.approx(9 * e1, rel=1e-12)


def test_fixed_energy_per_pulse_and_resets():
    arr = _ideal((1, 2), "differential")
    m = EnergyMeter(arr, EnergyModel(ltp_energy=2e-12, ltd_energy=5e-12))
    arr.pulse(np.array([[2, 0]]), np.array([[0, 1]]))  # n > 0 is LTP on either device
    assert m.update().write_energy == pytest.approx(3 * 2e-12)
    arr.pulse(np.array([[-1, 0]]))
    assert m.update().write_energy == pytest.approx(5e-12)
    arr.refresh(np.array([[True, False]]), mode="ideal")  # 2 RESETs (LTD-priced) + ideal write
    r = m.update()
    assert r.resets == 2 and r.write_energy == pytest.approx(2 * 5e-12)


def test_preset_pulses_come_from_the_json():
    recs = published()["presets"]
    for name in PUBLISHED:
        ltp, ltd, src = EnergyModel().pulses(devices.get(name))
        assert src == "preset"
        assert ltp.amplitude == recs[name]["pulse_ltp_num"]["amplitude_V"]
        assert ltp.width == recs[name]["pulse_ltp_num"]["width_s"]
        assert ltd.amplitude == recs[name]["pulse_ltd_num"]["amplitude_V"]
        assert ltd.width == recs[name]["pulse_ltd_num"]["width_s"]
    assert preset_pulses("ideal") is None
    assert EnergyModel().pulses(devices.get("ideal"))[2] == "default"
    assert EnergyModel().pulses(devices.get("ideal"))[0] == DEFAULT_PULSE
    # the published pulse prices a write: epiram LTP is 5 V / 5 us
    arr = devices.DeviceArray((1, 1), devices.get("epiram", c2c_sigma=0), mapping="reference")
    m = EnergyMeter(arr)
    g0 = float(arr.conductances.ravel()[0])
    arr.pulse(np.array([[1]]))
    g1 = float(arr.conductances.ravel()[0])
    assert m.update().write_energy == pytest.approx(25 * 5e-6 * 0.5 * (g0 + g1), rel=1e-12)


def test_converter_energy_walden_fom():
    adc = UniformQuantizer(bits=4, lo=-4.0, hi=4.0)
    dac = UniformQuantizer(bits=3, lo=-1.0, hi=1.0)
    arr = _ideal((2, 5), adc=adc, dac=dac)
    model = EnergyModel(adc_fom=1e-15, dac_energy=3e-15)
    m = EnergyMeter(arr, model)
    arr.matmul(np.zeros((3, 5)))
    arr.rmatmul(np.zeros(2))
    r = m.update()
    assert r.adc_conversions == 3 * 2 + 1 * 5
    assert r.dac_conversions == 3 * 5 + 1 * 2
    assert r.adc_energy == pytest.approx(11 * 1e-15 * 2**4)
    assert r.dac_energy == pytest.approx(17 * 3e-15)
    # no converters: no conversions; a bits override adds them
    plain = _ideal((2, 5))
    plain.matmul(np.zeros(5))
    assert summary(plain).adc_energy == 0.0
    assert summary(plain, EnergyModel(adc_bits=8)).adc_conversions == 2


def test_network_summary_sums_arrays_and_skips_float_weights():
    from learning_rules import FloatWeights

    a, b = _ideal((2, 3)), _ideal((3, 2))
    a.matmul(np.ones(3))
    b.matmul(np.ones(2))
    tot = network_summary([a, FloatWeights(np.zeros((2, 2))), b])
    assert tot.reads == a.n_devices + b.n_devices
    assert tot.read_energy == pytest.approx(summary(a).read_energy + summary(b).read_energy)
    assert tot.pulse_source == "default"
    assert set(tot.to_dict()) >= {"energy", "latency", "write_energy", "reads"}
    assert (EnergyReport(pulse_source="preset") + tot).pulse_source == "mixed"


@pytest.mark.parametrize(
    "make,exc,words",
    [
        (lambda: Pulse(0.0, 1e-6), ValueError, "amplitude"),
        (lambda: Pulse(1.0, 0.0), ValueError, "width"),
        (lambda: Pulse(float("nan"), 1e-6), ValueError, "amplitude"),
        (lambda: EnergyModel(v_read=-0.1), ValueError, "v_read"),
        (lambda: EnergyModel(t_read=float("inf")), ValueError, "t_read"),
        (lambda: EnergyModel(adc_fom=-1.0), ValueError, "adc_fom"),
        (lambda: EnergyModel(adc_bits=-1), ValueError, "adc_bits"),
        (lambda: EnergyModel(ltp=(1.0, 1e-6)), TypeError, "ltp"),
        (lambda: EnergyModel(ltd_energy=-1e-12), ValueError, "ltd_energy"),
        (lambda: EnergyModel().replace(v_raed=0.1), ValueError, "v_read"),
        (lambda: EnergyMeter(np.zeros((2, 2))), TypeError, "DeviceArray"),
        (lambda: EnergyMeter(_ideal(), model="fast"), TypeError, "EnergyModel"),
    ],
)
def test_bad_parameters_raise_clearly(make, exc, words):
    with pytest.raises(exc, match=words):
        make()


def test_model_dict_round_trip():
    m = EnergyModel(ltp=Pulse(1.5, 2e-6), v_read=0.1, adc_bits=6)
    assert EnergyModel.from_dict(m.to_dict()) == m
