"""The fused refresh of the numba backend (``devices/kernels/refresh.py``, issue #15) against the
host path (``Programming.refresh`` with ``array_program._FUSED_REFRESH`` off): conductances,
written conductances, drift clocks, freeze flags, pulse and RESET counters, read counts, refresh
counts, the call counter, the read tallies and the weight cache equal bit for bit, with read,
RESET and cycle-to-cycle noise, stuck devices and endurance budgets that run out; what the fused
path does not cover takes the host path; bad input keeps its errors."""

from __future__ import annotations

import numpy as np
import pytest

import devices
from devices import array_program
from devices.kernels import refresh as kr

NOISY = {"read_sigma": 0.05, "reset_sigma": 0.3, "c2c_sigma": 0.1}
WORN = {"endurance_n50": 40.0, "endurance_sigma": 0.5}
STUCK = {"p_stuck_gmin": 0.1, "p_stuck_gmax": 0.05, "p_stuck_random": 0.05}


@pytest.fixture
def spy(monkeypatch):
    """Calls of the fused kernel: pairs refreshed per call (-1: it declined)."""
    calls = []
    real = kr.refresh_pairs

    def counted(*a, **k):
        r = real(*a, **k)
        calls.append(r[0])
        return r

    monkeypatch.setattr(kr, "refresh_pairs", counted)
    return calls


def _bits(a):
    """An array's bytes as integers (floats compared bit for bit: NaN payloads, signed zeros)."""
    a = np.ascontiguousarray(np.asarray(a))
    return a.view(np.int64) if a.dtype == np.float64 else a


def _snapshot(arr) -> dict:
    snap = {f: _bits(v).copy() for f, v in zip(arr.state._fields, arr.state, strict=True)}
    snap.update(cnt_read=arr.cnt_read.copy(), refreshes=arr.refreshes.copy())
    snap.update(counter=arr.counter, subset_reads=dict(arr.subset_reads))
    snap.update(array_reads=dict(arr.array_reads))
    wc = arr._wcache
    snap["wcache"] = None if wc is None else _bits(wc).copy()
    return snap


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], np.ndarray):
            assert np.array_equal(a[k], b[k]), k
        else:
            assert a[k] == b[k], k


def _run(model, mode, *, fused, rounds=6, p=0.25, cache=True, shape=(9, 14), seed=11):
    """Program, then pulse requests of a unidirectional rule, each followed by a refresh."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(array_program, "_FUSED_REFRESH", fused)
        arr = devices.DeviceArray(shape, model, mapping="differential", seed=seed)
        rng = np.random.default_rng(2)
        arr.program(rng.uniform(-0.9, 0.9, arr.shape), mode="verify")
        if cache:
            arr.weight_cache()
        done = []
        for _ in range(rounds):
            arr.pulse_request(rng.normal(0, 0.1, arr.shape), method="unidirectional")
            if not cache:
                arr._changed()  # the request made the cache current: drop it
            done.append(arr.refresh(rng.random(arr.shape) < p, mode=mode))
        return arr, done


def _compare(model, mode, spy, **kw):
    a0, n0 = _run(model, mode, fused=False, **kw)
    assert spy == []
    a1, n1 = _run(model, mode, fused=True, **kw)
    assert n0 == n1 and sum(n0) > 0
    assert spy == n1  # the fused kernel did every refresh
    _assert_same(_snapshot(a0), _snapshot(a1))
    return a1


CASES = [
    ("constant_step", {}),
    ("constant_step", {"c2c_sigma": 0.0}),
    ("constant_step", {"read_sigma": 0.05}),
    ("constant_step", {"reset_sigma": 0.5}),
    ("constant_step", NOISY),
    ("constant_step", STUCK),
    ("constant_step", {**WORN, **NOISY}),
    ("linear_step", NOISY),
    ("ideal", {}),
    ("ideal", {**NOISY, **WORN}),
]


@pytest.mark.parametrize("mode", ["verify", "ideal"])
@pytest.mark.parametrize(("name", "overrides"), CASES)
def test_fused_refresh_equals_host_path(name, overrides, mode, spy):
    arr = _compare(devices.get(name, **overrides), mode, spy)
    if "endurance_n50" in overrides:
        assert (arr.frozen > arr.stuck.astype(bool)).any()  # budgets ran out (not stuck ones)
        assert arr.counters()["refreshes"] > 0


@pytest.mark.parametrize("mode", ["verify", "ideal"])
def test_lut_device(lut_device, mode, spy):
    model = lut_device.with_variability(read_sigma=0.05, reset_sigma=0.3, c2c_sigma=0.05)
    assert model.family == 2
    _compare(model, mode, spy)


@pytest.mark.parametrize("mode", ["verify", "ideal"])
@pytest.mark.parametrize(("name", "overrides"), [("soft_bounds", NOISY), ("epiram", NOISY),
                                                 ("epiram", {**WORN, **STUCK})])  # fmt: skip
def test_models_with_a_log_inverse(name, overrides, mode, spy, monkeypatch):
    """Nominal inverses with ``log`` / ``log1p``: the kernel computes the verify's coordinates
    itself, and the host path takes the same numbers (``_nominal_pulses`` on the numba backend,
    the kernels' inverse), so one call and the same results."""
    calls = []
    real = array_program.Programming._nominal_pulses

    def counted(self, G):
        calls.append(len(G))
        return real(self, G)

    monkeypatch.setattr(array_program.Programming, "_nominal_pulses", counted)
    _compare(devices.get(name, **overrides), mode, spy)
    if mode == "verify":
        assert len(calls) == len(spy) + 2  # the host path's refreshes; program() in each run
    else:
        assert len(calls) == 2  # program() in each run


def test_kernel_coordinates_for_covered_models(spy, monkeypatch):
    """Covered models: the kernel's own nominal coordinates, no host step."""
    calls = []
    real = array_program.Programming._nominal_pulses
    monkeypatch.setattr(array_program.Programming, "_nominal_pulses",
                        lambda self, G: calls.append(1) or real(self, G))  # fmt: skip
    _run(devices.get("constant_step", **NOISY), "verify", fused=True)
    assert spy and len(calls) == 1  # program() only


def test_without_weight_cache(spy):
    a0, _ = _run(devices.get("constant_step", **NOISY), "verify", fused=False, cache=False)
    a1, _ = _run(devices.get("constant_step", **NOISY), "verify", fused=True, cache=False)
    assert a1._wcache is None and spy
    _assert_same(_snapshot(a0), _snapshot(a1))
    assert np.array_equal(a0.weights(), a1.weights())


@pytest.mark.parametrize("mode", ["verify", "ideal"])
def test_empty_mask_changes_nothing(mode):
    arr = devices.DeviceArray((7, 9), devices.get("constant_step", **NOISY), seed=3)
    arr.program(np.full(arr.shape, 0.5), mode="verify")
    arr.weight_cache()
    before = _snapshot(arr)
    assert arr.refresh(np.zeros(arr.shape, dtype=bool), mode=mode) == 0
    _assert_same(before, _snapshot(arr))


def _odd_masks(shape, rng):
    """A plain mask, a transposed view, a strided view, a read-only one and one whose data
    starts off an 8-byte boundary."""
    base = rng.random(shape) < 0.2
    t = np.ascontiguousarray(base.T).T
    wide = np.zeros((shape[0], 2 * shape[1]), dtype=bool)
    wide[:, ::2] = base
    ro = base.copy()
    ro.flags.writeable = False
    buf = np.zeros(base.size + 3, dtype=bool)
    off = buf[3:].reshape(shape)
    off[...] = base
    return [base, t, wide[:, ::2], ro, off]


@pytest.mark.parametrize("k", range(5))
def test_mask_layouts(k, spy):
    """Mask layouts other than a contiguous aligned array give the same refresh."""
    shape = (13, 21)  # 273 entries: not a multiple of 8 nor of a block
    outs = []
    for fused in (False, True):
        with pytest.MonkeyPatch.context() as m:
            m.setattr(array_program, "_FUSED_REFRESH", fused)
            arr = devices.DeviceArray(shape, devices.get("constant_step", **NOISY), seed=4)
            rng = np.random.default_rng(5)
            arr.program(rng.uniform(-0.9, 0.9, shape), mode="verify")
            arr.weight_cache()
            mask = _odd_masks(shape, np.random.default_rng(6))[k]
            assert arr.refresh(mask) == int(mask.sum()) > 0
            outs.append(_snapshot(arr))
    assert spy == [outs[0]["refreshes"].sum()]
    _assert_same(*outs)


@pytest.mark.parametrize("size", [1, 7, 8, 255, 256, 257, 1000, 4096, 4103])
def test_masked_equals_flatnonzero(size):
    rng = np.random.default_rng(size)
    for p in (0.0, 0.001, 0.05, 0.5, 1.0):
        flat = rng.random(size) < p
        for mask in (flat, np.concatenate([[False], flat])[1:], flat.reshape(1, size)):
            got = kr._masked(mask)
            assert got.dtype == np.int64
            assert np.array_equal(got, np.flatnonzero(mask))


def test_nan_weight_takes_the_host_path(spy):
    """A NaN conductance read in a masked pair: the kernel changes nothing and declines; the
    host path's result stands."""
    outs = []
    for fused in (False, True):
        with pytest.MonkeyPatch.context() as m:
            m.setattr(array_program, "_FUSED_REFRESH", fused)
            arr = devices.DeviceArray((5, 6), devices.get("constant_step", **NOISY), seed=8)
            arr.program(np.full(arr.shape, 0.6), mode="verify")
            arr.weight_cache()
            arr.G[3] = np.nan  # bypasses load_state_dict's check: a corrupted state
            mask = np.zeros(arr.shape, dtype=bool)
            mask.ravel()[[1, 3, 7]] = True
            outs.append((arr.refresh(mask), _snapshot(arr)))
    assert spy == [-1]
    assert outs[0][0] == outs[1][0] == 3
    _assert_same(outs[0][1], outs[1][1])


def test_bad_input_keeps_its_errors():
    arr = devices.DeviceArray((4, 5), devices.get("constant_step"), seed=0)
    with pytest.raises(ValueError, match=r"mask must be a boolean array of shape \(4, 5\)"):
        arr.refresh(np.zeros((5, 4), dtype=bool))
    with pytest.raises(ValueError, match="mask must be a boolean array"):
        arr.refresh(np.zeros((4, 5), dtype=np.int64))
    with pytest.raises(ValueError, match="mode"):
        arr.refresh(np.ones((4, 5), dtype=bool), mode="fast")
    ref = devices.DeviceArray((4, 5), devices.get("constant_step"), mapping="reference", seed=0)
    with pytest.raises(ValueError, match="mapping='differential'"):
        ref.refresh(np.ones((4, 5), dtype=bool))


def test_other_backends_and_open_loop_take_the_host_path(spy):
    model = devices.get("constant_step", **NOISY)
    _run(model, "open_loop", fused=True, rounds=2)
    arr = devices.DeviceArray((6, 7), model, seed=1, backend="numpy")
    arr.program(np.full(arr.shape, 0.5), mode="verify")
    assert arr.refresh(np.ones(arr.shape, dtype=bool)) == 42
    assert spy == []


def test_short_training_run_equals_host_path(spy):
    """A seeded unidirectional run (mini-batches: the general update path, which refreshes
    after every step) with read, RESET and cycle-to-cycle noise: the same history and the
    same final arrays with the fused refresh as with the host path."""
    from synapse_sim import RunSpec, TrainConfig, train

    cfg = TrainConfig(dataset="digits", hidden=(16,), epochs=2, batch_size=10, lr=(0.2, 0.1),
                      max_train=300, seed=3)  # fmt: skip
    runs = [RunSpec(device="constant_step", rule="unidirectional", overrides=NOISY)]
    res = []
    for fused in (False, True):
        with pytest.MonkeyPatch.context() as m:
            m.setattr(array_program, "_FUSED_REFRESH", fused)
            res.append(train(cfg, runs, progress=False))
    assert len(spy) > 10 and all(n > 0 for n in spy)
    h0, h1 = ({k: v for k, v in r.history["constant_step-unidirectional"].items()
               if "time" not in k} for r in res)  # fmt: skip
    assert h0 == h1 and sum(h1["refreshes"]) == sum(spy)
    for a0, a1 in zip(*(r.arrays["constant_step-unidirectional"] for r in res), strict=True):
        _assert_same(_snapshot(a0), _snapshot(a1))
