"""The kernels' records (devices/kernels/records.py): a record with a missing, unknown, mistyped,
misshapen or shared field is refused naming the field; the array's attributes are its records'
fields; counters land in their own fields through every CPU kernel (the CUDA kernels: the same
check in cuda_sim_kernels.py, under the simulator)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from kernel_cases import check_counters_land_in_their_fields

import devices
from devices.kernels import numba_cpu as nb
from devices.kernels import reference as ref
from devices.kernels.records import DeviceParams, DeviceState

N = 6


def state_fields(**over):
    f = {
        "G": np.full(N, 1e-6),
        "Gw": np.full(N, 1e-6),
        "tau": np.zeros(N),
        "frozen": np.zeros(N, np.uint8),
        "budget": np.full(N, np.inf),
        "cnt_up": np.zeros(N, np.int64),
        "cnt_dn": np.zeros(N, np.int64),
        "cnt_prog": np.zeros(N, np.int64),
        "cnt_reset": np.zeros(N, np.int64),
    }
    return {**f, **over}


def params_fields(**over):
    f = {
        "fam": 0,
        "prm": np.zeros((8, N)),
        "const": np.zeros(4),
        "lut_up": np.linspace(0, 1, 3),
        "lut_dn": np.linspace(0, 1, 3),
        "c2c": 0.01,
        "gmin": np.zeros(N),
    }
    return {**f, **over}


def test_good_records_keep_their_arrays():
    f = state_fields()
    st = DeviceState.make(**f)
    assert all(getattr(st, k) is f[k] for k in DeviceState._fields)
    assert st.n == N
    pa = DeviceParams.make(**params_fields(fam=np.int64(2), c2c=np.float64(0.5)))
    assert type(pa.fam) is int and type(pa.c2c) is float and pa.n == N
    assert pa.with_c2c(0.0).c2c == 0.0 and pa.with_c2c(0.0).prm is pa.prm


@pytest.mark.parametrize(
    ("over", "exc", "match"),
    [
        ({"cnt_dn": np.zeros(N)}, TypeError, r"DeviceState\.cnt_dn .*int64.*got dtype float64"),
        ({"frozen": np.zeros(N, bool)}, TypeError, r"DeviceState\.frozen .*dtype uint8"),
        ({"budget": np.zeros(N, np.int64)}, TypeError, r"DeviceState\.budget .*dtype float64"),
        ({"tau": np.zeros(N + 1)}, TypeError, r"DeviceState\.tau .*\(6,\), got .*\(7,\)"),
        ({"G": np.zeros((N, 1))}, TypeError, r"DeviceState\.G must be .*shape \(n,\)"),
        ({"Gw": [0.0] * N}, TypeError, r"DeviceState\.Gw must be an array, got list"),
        ({"cnt_reset": np.zeros(2 * N, np.int64)[::2]}, ValueError, "cnt_reset must be C-cont"),
    ],
)
def test_state_field_errors_name_the_field(over, exc, match):
    with pytest.raises(exc, match=match):
        DeviceState.make(**state_fields(**over))


def test_state_missing_unknown_and_shared_fields_are_refused():
    f = state_fields()
    del f["cnt_dn"]
    with pytest.raises(TypeError, match=r"missing \['cnt_dn'\]"):
        DeviceState.make(**f)
    with pytest.raises(TypeError, match=r"unknown \['cnt_down'\]"):
        DeviceState.make(**state_fields(cnt_down=np.zeros(N, np.int64)))
    c = np.zeros(N, np.int64)
    with pytest.raises(ValueError, match=r"\.cnt_dn and DeviceState\.cnt_up are the same"):
        DeviceState.make(**state_fields(cnt_up=c, cnt_dn=c))
    with pytest.raises(TypeError):  # keyword-only: positional fields cannot trade places
        DeviceState.make(*state_fields().values())


def test_positional_swap_of_differently_typed_fields_is_refused():
    """frozen (uint8) and budget (float64) given in each other's place."""
    f = state_fields()
    f["frozen"], f["budget"] = f["budget"], f["frozen"]
    with pytest.raises(TypeError, match=r"DeviceState\.frozen"):
        DeviceState.make(**f)


@pytest.mark.parametrize(
    ("over", "exc", "match"),
    [
        ({"fam": 3}, ValueError, r"DeviceParams\.fam must be one of \(0, 1, 2\), got 3"),
        ({"fam": True}, ValueError, r"DeviceParams\.fam"),
        ({"c2c": -0.1}, ValueError, r"DeviceParams\.c2c must be finite and >= 0, got -0\.1"),
        ({"c2c": "x"}, TypeError, r"DeviceParams\.c2c must be a real number"),
        ({"prm": np.zeros((8, N + 1))}, TypeError, r"DeviceParams\.gmin .*shape \(7,\), got"),
        ({"prm": np.zeros((7, N))}, TypeError, r"DeviceParams\.prm"),
        ({"const": np.zeros(3)}, TypeError, r"DeviceParams\.const .*\(4,\)"),
        ({"lut_dn": np.zeros(1)}, ValueError, r"DeviceParams\.lut_dn must hold at least 2"),
        ({"gmin": np.zeros(N, np.float32)}, TypeError, r"DeviceParams\.gmin .*dtype float64"),
    ],
)
def test_params_field_errors_name_the_field(over, exc, match):
    with pytest.raises(exc, match=match):
        DeviceParams.make(**params_fields(**over))


def test_array_attributes_are_the_record_fields():
    a = devices.DeviceArray((3, 4), devices.get("soft_bounds"), seed=0, backend="numpy")
    assert a.G is a.state.G and a.cnt_dn is a.state.cnt_dn and a.prm is a.params.prm
    assert a.gmin_i is a.params.gmin
    assert a.params.fam == 1 and a.params.c2c == a.variability.c2c_sigma
    assert a.state.n == a.params.n == a.n_devices
    new = np.zeros(a.n_devices, np.int64)
    a.cnt_up = new  # an assignment rebuilds the record around the new array
    assert a.state.cnt_up is new
    with pytest.raises(TypeError, match=r"DeviceState\.cnt_up .*dtype int64"):
        a.cnt_up = np.zeros(a.n_devices)
    assert a.state.cnt_up is new  # a refused assignment leaves the record as it was
    with pytest.raises(TypeError, match=r"DeviceParams\.gmin"):
        a.gmin_i = np.zeros(a.n_devices + 1)


def test_pickle_round_trip_and_pre_record_pickles():
    a = devices.DeviceArray((3, 4), devices.get("ag_a_si"), seed=0, backend="numpy")
    a.pulse(np.full((3, 4), 5))
    b = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(b.G, a.G)
    assert b.counters() == a.counters()
    # a pickle from before the records held the fields as plain attributes
    old = dict(a.__dict__)
    old.pop("_k")
    st, pa = old.pop("state"), old.pop("params")
    old.update({k: v.copy() for k, v in st._asdict().items()})
    old.update({k: getattr(pa, k).copy() for k in ("prm", "const", "lut_up", "lut_dn")})
    old["gmin_i"] = pa.gmin.copy()
    c = object.__new__(devices.DeviceArray)
    c.__setstate__(old)
    c.pulse(np.full((3, 4), -2))
    a.pulse(np.full((3, 4), -2))
    np.testing.assert_array_equal(c.G, a.G)
    assert c.counters() == a.counters()


@pytest.mark.parametrize("mod", [ref, nb], ids=["numpy", "numba"])
def test_counters_land_in_their_fields(mod):
    check_counters_land_in_their_fields(mod)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_array_up_pulses_count_as_ltp_only(backend):
    a = devices.DeviceArray((5, 6), devices.get("ag_a_si"), mapping="reference", seed=2,
                            backend=backend)  # fmt: skip
    n = np.random.default_rng(0).integers(0, 4, (5, 6))
    a.pulse(n)
    c = a.counters()
    assert (c["pulses_ltp"], c["pulses_ltd"], c["pulses_prog"]) == (int(n.sum()), 0, 0)
    a.pulse(-n)
    c = a.counters()
    assert (c["pulses_ltp"], c["pulses_ltd"]) == (int(n.sum()), int(n.sum()))
