"""The GPU backend (``backend="cupy"``: cupy state, numba CUDA kernels) on a real GPU, against the
plain numpy reference (``backend="numpy"``, which the numba CPU backend equals to a relative 1e-12
and which needs no compilation): the same operations from the same seeds give the same state.

Skipped, with the reason, where no GPU is usable (every CI machine here): the same code path runs
on a CPU under numba's CUDA simulator in ``cuda_sim_backend.py``, bit for bit. On a GPU the
compiled kernels use libdevice's math functions and fused multiply-add, so conductances agree to
rounding (``RTOL``), not bit for bit; the discrete state (pulse counters, frozen flags, pulse
totals) is compared exactly, since the random draws (counter-based on the device, the array's
numpy generator on the host) are the same on every backend.
"""

from __future__ import annotations

import numpy as np
import pytest
from backend_cases import run_sequence, sequence_converters, sequence_device, train_cnn

import devices
from devices import gpu

_OK, _WHY = gpu.gpu_backend_status()
if not _OK:  # pragma: no cover - the usual case off a GPU machine
    pytest.skip(f"backend='cupy' is not usable here: {_WHY}", allow_module_level=True)

import cupy  # noqa: E402 - only on a GPU machine

#: Relative tolerance of conductances and weights (last-bit differences of libdevice and FMA,
#: carried through a few dozen writes).
RTOL = 1e-9
FLOATS = ("G", "Gw")
EXACT = ("tau", "frozen", "cnt_up", "cnt_dn", "cnt_prog", "cnt_reset", "refreshes")


def host(a):
    """A numpy copy of a cupy array (anything else unchanged)."""
    return cupy.asnumpy(a) if isinstance(a, cupy.ndarray) else a


def assert_close(ref, g):
    """Reference array ``ref`` and cupy array ``g`` hold the same state (floats to rounding)."""
    assert isinstance(g.G, cupy.ndarray)
    for k in FLOATS:
        np.testing.assert_allclose(host(getattr(g, k)), getattr(ref, k), rtol=RTOL, atol=0,
                                   err_msg=k)  # fmt: skip
    for k in EXACT:
        np.testing.assert_array_equal(host(getattr(g, k)), getattr(ref, k), err_msg=k)
    np.testing.assert_allclose(host(g.weights()), ref.weights(), rtol=RTOL, atol=1e-15)
    assert g.counter == ref.counter
    assert g.counters() == ref.counters()


def assert_outputs(u, v):
    for p, q in zip(u, v, strict=True):
        p, q = host(p), host(q)
        if isinstance(p, np.ndarray) and p.dtype.kind == "f":
            np.testing.assert_allclose(q, p, rtol=RTOL, atol=1e-12)
        else:
            np.testing.assert_array_equal(q, p)


def make(backend, dev, shape=(5, 7), mapping="differential", **kw):
    return devices.DeviceArray(shape, dev, mapping=mapping, seed=11, backend=backend, **kw)


def test_cupy_backend_is_selected():
    arr = make("cupy", devices.get("ideal"))
    from devices.kernels import cuda

    assert arr.backend == "cupy" and arr._k is cuda and not cuda.SIMULATOR
    assert isinstance(arr.G, cupy.ndarray) and isinstance(arr.weights(), cupy.ndarray)


@pytest.mark.parametrize("device", ["ag_a_si", "soft_bounds", "lut"])
def test_training_sequence_matches_reference(device, lut_device):
    """pulse, pulse_update (all routes), pulse_request (both roundings, refresh flags), refresh,
    reads with noise and converters, drift: the cupy array follows the numpy reference array."""
    dev = sequence_device(device, lut_device)
    arrs = [make(b, dev, **sequence_converters()) for b in ("numpy", "cupy")]
    out = [run_sequence(arrs[0]), run_sequence(arrs[1], on=cupy.asarray)]
    assert_close(*arrs)
    assert_outputs(*out)
    assert out[1][2] > 0  # coincidences of the first update


@pytest.mark.parametrize("mode", ["ideal", "open_loop", "verify"])
@pytest.mark.parametrize("mapping", ["differential", "reference"])
def test_program_matches_reference(mode, mapping):
    dev = devices.get("ag_a_si", sigma_nl=0.5, c2c_sigma=0.02, read_sigma=0.02, reset_sigma=0.01)
    arrs = [make(b, dev, mapping=mapping) for b in ("numpy", "cupy")]
    W = np.random.default_rng(1).uniform(-0.9, 0.9, (5, 7))
    mask = np.random.default_rng(2).random((5, 7)) < 0.7
    for a in arrs:
        on = cupy.asarray if a.backend == "cupy" else np.asarray
        a.program(on(W), mode=mode)
        a.program(on(-W), mode=mode, mask=on(mask))
    assert_close(*arrs)
    if mode != "ideal":
        assert arrs[1].counters()["pulses_prog"] > 0


@pytest.mark.parametrize("trains", ["host", "device"])
@pytest.mark.parametrize("preset", ["constant_step", "soft_bounds"])
def test_large_update_matches_reference(preset, trains):
    """A 256 x 256 dense pulse_update (aihwkit's tile benchmark, BL 31) and a sparse BL 1 one:
    the same coincidences and the same conductances to rounding, many blocks and warps deep."""
    dev = devices.get(preset)
    arrs = [make(b, dev, shape=(256, 256), trains=trains) for b in ("numpy", "cupy")]
    rng = np.random.default_rng(3)
    W = rng.uniform(-0.1, 0.1, (256, 256))
    x, d = rng.uniform(-1, 1, (100, 256)), rng.uniform(-1, 1, (100, 256))
    xs = np.where(rng.random((10, 256)) < 0.05, 1.0, 0.0)
    ds = np.where(rng.random((10, 256)) < 0.05, -1.0, 0.0)
    info = []
    for a in arrs:
        on = cupy.asarray if a.backend == "cupy" else np.asarray
        a.program(on(W))
        r1 = a.pulse_update(on(x), on(d), 0.01, 31, bl_management=False, update_management=False)
        r2 = a.pulse_update(on(xs), on(ds), 1.0, 1, bl_management=False, update_management=False)
        info.append((r1["coincidences"], r2["coincidences"]))
    assert info[0] == info[1] and min(info[0]) > 0
    assert_close(*arrs)


def test_device_trains_match_reference():
    dev = devices.get("soft_bounds", c2c_sigma=0.1)
    arrs = [make(b, dev, trains="device") for b in ("numpy", "cupy")]
    rng = np.random.default_rng(8)
    x, d = rng.uniform(-1, 1, (4, 7)), rng.uniform(-1, 1, (4, 5))
    res = [a.pulse_update(x if a.backend == "numpy" else cupy.asarray(x),
                          d if a.backend == "numpy" else cupy.asarray(d), lr=0.4, bl=40)
           for a in arrs]  # fmt: skip
    assert res[0]["coincidences"] == res[1]["coincidences"] > 0
    assert_close(*arrs)


def test_state_dict_round_trip_continues_in_lockstep():
    dev = devices.get("gst_pcm", c2c_sigma=0.03)
    a, b = make("numpy", dev), make("cupy", dev)
    rng = np.random.default_rng(3)
    x, d = rng.uniform(-1, 1, (3, 7)), rng.uniform(-1, 1, (3, 5))
    a.pulse_update(x, d, lr=0.5)
    b.pulse_update(cupy.asarray(x), cupy.asarray(d), lr=0.5)
    sd = b.state_dict()
    assert all(not isinstance(v, cupy.ndarray) for v in sd.values())
    c = make("cupy", dev)
    c.load_state_dict(sd)
    a.pulse_update(x, d, lr=0.5)
    c.pulse_update(cupy.asarray(x), cupy.asarray(d), lr=0.5)
    assert_close(a, c)


@pytest.mark.parametrize("rule", ["bidirectional", "stochastic"])
def test_converted_model_on_cuda_tensors_trains_like_reference(rule):
    """convert(..., backend="cupy").cuda() takes CUDA tensors (DLPack to cupy and back) and
    follows the numpy reference model: losses to rounding, the same pulse totals."""
    pytest.importorskip("torch")
    la, wa, ta = train_cnn("numpy", rule)
    lb, wb, tb = train_cnn("cupy", rule, to_gpu=lambda m, x, y: (m.cuda(), x.cuda(), y.cuda()))
    np.testing.assert_allclose(lb, la, rtol=RTOL)
    assert ta == tb and ta["pulses"] > 0
    for u, v in zip(wa, wb, strict=True):
        np.testing.assert_allclose(v, u, rtol=RTOL, atol=1e-12)
