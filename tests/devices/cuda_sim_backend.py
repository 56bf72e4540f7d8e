"""DeviceArray(backend="cuda-sim") equals backend="numpy" after sequences of operations: the
GPU backend's code path (array code over the array module, the CUDA kernels and their host
wrappers) run end to end on a CPU under numba's CUDA simulator.

Not collected by an ordinary test run: ``tests/devices/test_cuda_backend.py`` runs it in a
subprocess with ``NUMBA_ENABLE_CUDASIM=1``. By hand::

    NUMBA_ENABLE_CUDASIM=1 python -m pytest tests/devices/cuda_sim_backend.py -q
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from backend_cases import run_sequence, sequence_converters, sequence_device, train_cnn

import devices

if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":  # pragma: no cover - guarded by the runner
    pytest.skip("needs NUMBA_ENABLE_CUDASIM=1", allow_module_level=True)

FLOATS = ("G", "Gw")
EXACT = ("tau", "frozen", "cnt_up", "cnt_dn", "cnt_prog", "cnt_reset", "refreshes")
#: Conductances agree to rounding: the reference's vectorized numpy expm1/log1p/power and the
#: C library's scalar functions (which the simulator and numba call) can differ in the last bit.
RTOL = 1e-12


def assert_same(a, b):
    for k in FLOATS:
        np.testing.assert_allclose(getattr(a, k), getattr(b, k), rtol=RTOL, atol=0, err_msg=k)
    for k in EXACT:
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k), err_msg=k)
    np.testing.assert_allclose(a.weights(), b.weights(), rtol=1e-9, atol=1e-15)
    assert a.counter == b.counter
    assert a.counters() == b.counters()


def assert_exact(a, b):
    """Bit for bit: the numba CPU kernels and the CUDA kernels under the simulator do the same
    scalar float operations in the same order with the same C library functions."""
    for k in FLOATS + EXACT:
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k), err_msg=k)
    np.testing.assert_array_equal(a.weights(), b.weights())
    assert a.counter == b.counter


def check_all(arrs):
    """numpy == cuda-sim to rounding, numba == cuda-sim bit for bit."""
    assert_same(arrs[0], arrs[2])
    assert_exact(arrs[1], arrs[2])


BACKENDS = ("numpy", "numba", "cuda-sim")


def assert_outputs(u, v):
    for p, q in zip(u, v, strict=True):
        if isinstance(p, np.ndarray) and p.dtype.kind == "f":
            np.testing.assert_allclose(p, q, rtol=1e-9, atol=1e-12)
        else:
            np.testing.assert_array_equal(p, q)


def make(backend, dev, mapping="differential", **kw):
    return devices.DeviceArray((5, 7), dev, mapping=mapping, seed=11, backend=backend, **kw)


def test_cuda_sim_backend_is_selected():
    arr = make("cuda-sim", devices.get("ideal"))
    assert arr.backend == "cuda-sim"
    from devices.kernels import cuda

    assert arr._k is cuda and cuda.SIMULATOR
    assert isinstance(arr.G, np.ndarray)


@pytest.mark.parametrize(
    "device",
    ["ag_a_si", "soft_bounds", "lut"],
)
def test_training_sequence_equals_numpy(device, lut_device):
    """pulse, pulse_update (all routes), pulse_request (both roundings, refresh flags),
    refresh, reads with noise and converters, drift."""
    dev = sequence_device(device, lut_device)
    arrs = [make(b, dev, **sequence_converters()) for b in BACKENDS]
    out = [run_sequence(a) for a in arrs]
    check_all(arrs)
    assert_outputs(out[0], out[2])
    for p, q in zip(out[1], out[2], strict=True):
        np.testing.assert_array_equal(p, q)
    assert out[2][2] > 0  # coincidences of the first update


@pytest.mark.parametrize("mode", ["ideal", "open_loop", "verify"])
@pytest.mark.parametrize("mapping", ["differential", "reference"])
def test_program_equals_numpy(mode, mapping):
    dev = devices.get("ag_a_si", sigma_nl=0.5, c2c_sigma=0.02, read_sigma=0.02, reset_sigma=0.01)
    arrs = [make(b, dev, mapping=mapping) for b in BACKENDS]
    W = np.random.default_rng(1).uniform(-0.9, 0.9, (5, 7))
    mask = np.random.default_rng(2).random((5, 7)) < 0.7
    for a in arrs:
        a.program(W, mode=mode)
        a.program(-W, mode=mode, mask=mask)
    check_all(arrs)
    if mode != "ideal":
        assert arrs[2].counters()["pulses_prog"] > 0
    # programming lands near the targets (on the cuda-sim array too)
    err = np.abs(arrs[2].weights() - np.where(mask, -W, W))
    assert np.median(err) < 0.25  # per-seed median over 40 seeds: 0.13, at most 0.21


def test_state_dict_round_trip_continues_in_lockstep():
    dev = devices.get("gst_pcm", c2c_sigma=0.03)
    a, b = make("numpy", dev), make("cuda-sim", dev)
    rng = np.random.default_rng(3)
    x, d = rng.uniform(-1, 1, (3, 7)), rng.uniform(-1, 1, (3, 5))
    for arr in (a, b):
        arr.pulse_update(x, d, lr=0.5)
    c = make("cuda-sim", dev)
    c.load_state_dict(b.state_dict())
    for arr in (a, c):
        arr.pulse_update(x, d, lr=0.5)
    assert_same(a, c)


@pytest.mark.parametrize("rule", ["bidirectional", "stochastic", "unidirectional"])
def test_converted_cnn_trains_identically(rule):
    """A converted CNN (conv + linear layers on device arrays) trained with DeviceSGD: the
    cuda-sim backend gives the numba backend's losses and weights bit for bit."""
    pytest.importorskip("torch")
    runs = [train_cnn(backend, rule) for backend in ("numba", "cuda-sim")]
    (la, wa, ta), (lb, wb, tb) = runs
    assert la == lb and ta == tb and ta["pulses"] > 0
    for u, v in zip(wa, wb, strict=True):
        np.testing.assert_array_equal(u, v)


def test_device_trains_equal_on_every_backend():
    """trains='device' (counter-based trains, drawn by a CUDA kernel on the CUDA backends):
    the same updates on numpy, numba and cuda-sim."""
    dev = devices.get("soft_bounds", c2c_sigma=0.1)
    arrs = [make(b, dev, trains="device") for b in BACKENDS]
    rng = np.random.default_rng(8)
    x, d = rng.uniform(-1, 1, (4, 7)), rng.uniform(-1, 1, (4, 5))
    res = [a.pulse_update(x, d, lr=0.4, bl=40) for a in arrs]
    assert res[0]["coincidences"] == res[1]["coincidences"] == res[2]["coincidences"] > 0
    check_all(arrs)
