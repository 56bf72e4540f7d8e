"""The GPU backend of DeviceArray on a machine without a GPU (issue #9): backend selection and
its error messages, the array-module helpers, and (in a subprocess, under numba's CUDA
simulator) the whole backend="cuda-sim" code path against the numpy and numba backends."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import devices
from devices import _rng, gpu, xp

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


@pytest.fixture(autouse=True)
def _fresh_status():
    gpu.cupy_status.cache_clear()
    yield
    gpu.cupy_status.cache_clear()


def test_cuda_sim_backend_equals_cpu_backends():
    """DeviceArray(backend='cuda-sim') equals numpy (rtol 1e-12) and numba (bit for bit) after
    pulse / pulse_update / pulse_request / program / refresh / reads / drift
    (cuda_sim_backend.py, run with NUMBA_ENABLE_CUDASIM=1)."""
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    r = subprocess.run(
        [sys.executable, "-m", "pytest", str(HERE / "cuda_sim_backend.py"), "-q", "-x",
         "-p", "no:cacheprovider", "-W", "error::RuntimeWarning"],
        env=env, capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-3000:]
    m = re.search(r"(\d+) passed", r.stdout)
    assert m and int(m.group(1)) >= 8, r.stdout[-800:]
    assert "skipped" not in r.stdout.splitlines()[-1], r.stdout[-800:]


# ------------------------------------------------------------------------------------ selection
def test_cuda_sim_without_env_var_says_how(monkeypatch):
    monkeypatch.delenv("NUMBA_ENABLE_CUDASIM", raising=False)
    with pytest.raises(
        ValueError, match=r"backend='cuda-sim' is not available: .*NUMBA_ENABLE_CUDASIM=1"
    ):
        devices.DeviceArray((2, 3), devices.get("ideal"), backend="cuda-sim")


def test_cuda_sim_after_numba_cuda_import_is_refused():
    """Setting the variable after numba.cuda was imported cannot switch the simulator on."""
    code = (
        "import os, numba.cuda, devices\n"
        "os.environ['NUMBA_ENABLE_CUDASIM'] = '1'\n"
        "try:\n"
        "    devices.DeviceArray((2, 3), devices.get('ideal'), backend='cuda-sim')\n"
        "except ValueError as e:\n"
        "    print(e)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       cwd=ROOT, timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "backend='cuda-sim' is not available" in r.stdout
    assert "imported before" in r.stdout


def test_cupy_backend_names_reason_without_cupy(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)
    ok, why = gpu.gpu_backend_status()
    assert not ok and "not installed" in why
    with pytest.raises(ValueError, match=r"backend='cupy' is not available: cupy is not installed"):
        devices.DeviceArray((2, 3), devices.get("ideal"), backend="cupy")


def test_cupy_backend_needs_numba_cuda_target(monkeypatch):
    """cupy usable but numba cannot reach a GPU (as here): refused, with the reason."""
    monkeypatch.setattr(gpu, "cupy_status", lambda: (True, "cupy 13 on Fake GPU"))
    fake_cuda = types.SimpleNamespace(jit=types.SimpleNamespace(__module__="numba.cuda.x"),
                                      is_available=lambda: False)  # fmt: skip
    import numba

    monkeypatch.setattr(numba, "cuda", fake_cuda, raising=False)
    monkeypatch.setitem(sys.modules, "numba.cuda", fake_cuda)
    ok, why = gpu.gpu_backend_status()
    assert not ok and "numba cannot use the GPU" in why and "Fake GPU" in why
    with pytest.raises(ValueError, match=r"backend='cupy' is not available: .*numba cannot"):
        devices.DeviceArray((2, 3), devices.get("ideal"), backend="cupy")


def test_cupy_backend_refused_when_simulator_is_on(monkeypatch):
    monkeypatch.setattr(gpu, "cupy_status", lambda: (True, "cupy 13 on Fake GPU"))
    sim_cuda = types.SimpleNamespace(
        jit=types.SimpleNamespace(__module__="numba.cuda.simulator.api"), is_available=lambda: True
    )
    import numba

    monkeypatch.setattr(numba, "cuda", sim_cuda, raising=False)
    monkeypatch.setitem(sys.modules, "numba.cuda", sim_cuda)
    ok, why = gpu.gpu_backend_status()
    assert not ok and "simulator" in why


def test_unknown_backend_lists_choices():
    with pytest.raises(
        ValueError, match=r"backend.*'cuda-sim'.*'cupy'|backend.*'cupy'.*'cuda-sim'"
    ):
        devices.DeviceArray((2, 3), devices.get("ideal"), backend="gpu")


def test_auto_stays_on_cpu_and_state_is_numpy():
    arr = devices.DeviceArray((2, 3), devices.get("ideal"))
    assert arr.backend == "numba"
    assert arr._xp is np and isinstance(arr.G, np.ndarray)


# ------------------------------------------------------------------------------------ xp helpers
def test_get_xp_and_conversions():
    assert xp.get_xp("numpy") is np and xp.get_xp("cuda-sim") is np and xp.get_xp("numba") is np
    a = np.arange(5.0)
    assert xp.array_module(a) is np and not xp.is_cupy_array(a)
    assert xp.asnumpy(a) is a
    assert xp.to_device([1, 2], np, dtype=np.float64).dtype == np.float64
    assert xp.asnumpy([1, 2]).tolist() == [1, 2]


def test_from_dlpack_is_a_view():
    a = np.arange(6.0)
    v = xp.from_dlpack(a, np)
    a[0] = 42.0
    assert v[0] == 42.0 and v.shape == a.shape


def test_xp_normals_equal_rng_reference(rng):
    """The array-module normals (RESET noise, subset reads) are the _rng numbers exactly."""
    base = _rng.call_base(987654321, 17)
    idx = rng.integers(0, 2**40, 2000)
    np.testing.assert_array_equal(xp.normal(np, base, idx), _rng.normal_np(base, idx))
    j = rng.integers(0, 2**62, 2000).astype(np.uint64)
    np.testing.assert_array_equal(xp.uniform(np, base, j), _rng.uniform_np(base, j))
    # and they are normal: mean 0, variance 1 within sampling error
    z = xp.normal(np, base, np.arange(20000))
    assert abs(z.mean()) < 0.05 and abs(z.var() - 1) < 0.05


# ------------------------------------------------------------------------------------ torch bridge
# The GPU crossing (CUDA tensor <-> cupy through DLPack) cannot run without a GPU; its logic is
# tested on the CPU: the same helpers with numpy as the array module, and the layers' GPU route
# switched on for a CPU backend (so forward, backward and the stash go through DLPack).
def test_dlpack_helpers_share_memory():
    torch = pytest.importorskip("torch")
    from synapse_sim.nn.layers import array_to_tensor, tensor_to_array

    t = torch.arange(6, dtype=torch.float64).reshape(2, 3)
    a = tensor_to_array(t, np)
    t[0, 0] = 7.0
    assert a[0, 0] == 7.0 and a.dtype == np.float64 and a.shape == (2, 3)
    b = array_to_tensor(a)
    a[1, 2] = -1.0
    assert b[1, 2].item() == -1.0
    # float32 and non-contiguous inputs: one cast/copy, same values
    t32 = torch.rand(3, 4, dtype=torch.float32).T
    np.testing.assert_array_equal(tensor_to_array(t32, np), t32.double().numpy())
    assert tensor_to_array(t32, np).flags.c_contiguous
    assert array_to_tensor(a, torch.float32).dtype == torch.float32
    with pytest.raises(TypeError, match="floating-point"):
        tensor_to_array(torch.arange(3), np)


def test_layer_gpu_route_through_dlpack_matches_cpu_route(monkeypatch):
    torch = pytest.importorskip("torch")
    from synapse_sim.nn import layers, tensors

    torch.manual_seed(0)
    x = torch.rand(5, 6, dtype=torch.float64)
    runs = []
    for gpu_route in (False, True):
        if gpu_route:
            monkeypatch.setattr(tensors, "GPU_BACKENDS", ("numba",))
            monkeypatch.setattr(tensors, "GPU_TENSOR_DEVICE", "cpu")
            monkeypatch.setattr(layers, "GPU_TENSOR_DEVICE", "cpu")
        torch.manual_seed(1)  # the initial weights come from torch's generator
        lin = layers.DeviceLinear(6, 3, device="ideal", seed=4, backend="numba", read_sigma=0.02)
        xi = x.clone().requires_grad_(True)
        y = lin(xi)
        y.pow(2).sum().backward()
        xs, ds = lin.take_stash()
        if gpu_route:  # the stashed input is a view of the tensor (no copy)
            assert xs.ctypes.data == xi.data_ptr()
        runs.append((y.detach(), xi.grad, xs, ds, lin.weight))
    for u, v in zip(*runs, strict=True):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))
    # with the GPU route on, a tensor on another device is refused with what to do
    lin = layers.DeviceLinear(6, 3, device="ideal", backend="numba")
    with pytest.raises(TypeError, match="array is on the GPU.*move the inputs to CUDA"):
        lin(torch.rand(2, 6, device="meta"))


def test_cpu_layer_refuses_cuda_like_tensors_with_guidance():
    torch = pytest.importorskip("torch")
    from synapse_sim.nn.layers import DeviceLinear

    lin = DeviceLinear(4, 2, device="ideal")
    with pytest.raises(TypeError, match="backend='cupy'"):
        lin(torch.empty(3, 4, device="meta"))
    with pytest.raises(TypeError, match="not a torch device.*backend='cupy'"):
        DeviceLinear(4, 2, device="cuda")


# ------------------------------------------------------------------------------------ benchmark
def _bench(*args, sim=False):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    if sim:
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "bench_update.py"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)


@pytest.mark.skipif(gpu.gpu_backend_status()[0], reason="a GPU is usable here")
def test_bench_cupy_without_gpu_exits_with_reason():
    r = _bench("--backend", "cupy")
    assert r.returncode != 0
    assert "--backend cupy: not available:" in r.stderr and r.stdout == ""


def test_bench_gpu_path_runs_under_simulator(tmp_path):
    """The --backend code path, end to end on tiny arrays under the simulator."""
    out = tmp_path / "b.json"
    r = _bench("--backend", "cuda-sim", "--sizes", "4", "--repeats", "1", "--json", str(out),
               sim=True)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    import json

    rows = json.loads(out.read_text())
    assert {row["op"] for row in rows} == {"pulse", "pulse_update"} and len(rows) == 11
    assert {row.get("trains") for row in rows} == {None, "host", "device"}
    assert all(row["backend"] == "cuda-sim" for row in rows)
    dense = [row for row in rows if row.get("regime") == "dense"]
    assert all(row["pulses_per_sample_weight"] > 1 for row in dense)


def test_cpu_array_refuses_gpu_arrays_with_guidance():
    """A cupy array handed to a CPU-backend array: a TypeError naming the parameter and what
    to do (a stand-in class from a module named cupy; no cupy needed)."""
    fake_cupy = types.ModuleType("cupy")
    exec("class ndarray:\n    pass\n", fake_cupy.__dict__)
    fake_cupy.ndarray.__module__ = "cupy._core.core"
    gpu_arr = fake_cupy.ndarray()
    arr = devices.DeviceArray((2, 3), devices.get("ideal"), backend="numpy")
    with pytest.raises(TypeError, match=r"x is a cupy \(GPU\) array.*backend='cupy'"):
        arr.matmul(gpu_arr)
    with pytest.raises(TypeError, match=r"dW is a cupy"):
        arr.pulse_request(gpu_arr)
    with pytest.raises(TypeError, match=r"n_plus is a cupy"):
        arr.pulse(gpu_arr)
    with pytest.raises(TypeError, match=r"W is a cupy"):
        arr.program(gpu_arr)


# ------------------------------------------------------------------------------------ trains
def test_counter_based_trains_are_bernoulli():
    """devices.xp.pulse_trains: bit density p within sampling error, nothing past BL, p = 0
    and p = 1 exact, a pure function of the base."""
    p = np.array([[0.0, 0.1, 0.5, 0.9, 1.0]] * 200)
    BL = np.tile([100, 37], 100)
    bits = xp.pulse_trains(np, p, BL, 100, 31337)
    assert bits.shape == (200, 5, 2) and bits.dtype == np.uint64
    ones = np.bitwise_count(bits).sum(axis=-1)  # (200, 5)
    np.testing.assert_array_equal(ones[:, 0], 0)
    np.testing.assert_array_equal(ones[:, 4], BL)
    dens = ones.sum(axis=0) / BL.sum()
    se = np.sqrt(p[0] * (1 - p[0]) / BL.sum())
    assert np.all(np.abs(dens - p[0]) <= 5 * se + 1e-12)
    # no bit at or past BL (bit t of a row is bit t % 64 of word t // 64)
    short = bits[1::2]
    assert np.all(short[:, :, 1] == 0) and np.all(short[:, :, 0] >> np.uint64(37) == 0)
    np.testing.assert_array_equal(bits, xp.pulse_trains(np, p, BL, 100, 31337))
    assert not np.array_equal(bits, xp.pulse_trains(np, p, BL, 100, 31338))


def test_device_trains_numpy_equals_numba_and_differs_from_host():
    dev = devices.get("constant_step")
    rng = np.random.default_rng(2)
    x, d = rng.uniform(-1, 1, (3, 6)), rng.uniform(-1, 1, (3, 4))
    out = {}
    for backend in ("numpy", "numba"):
        for trains in ("host", "device"):
            a = devices.DeviceArray((4, 6), dev, seed=5, backend=backend, trains=trains)
            a.pulse_update(x, d, lr=0.5, bl=31)
            out[backend, trains] = a.weights()
    np.testing.assert_allclose(out["numpy", "device"], out["numba", "device"], rtol=1e-12)
    assert not np.allclose(out["numba", "device"], out["numba", "host"])


def test_bad_trains_value_is_named():
    with pytest.raises(ValueError, match=r"trains must be one of 'host', 'device', got 'gpu'"):
        devices.DeviceArray((2, 3), devices.get("ideal"), trains="gpu")


def test_gpu_launch_silences_only_numbas_low_occupancy_warning(monkeypatch):
    """On a GPU a small array launches a small grid by design: numba's low-occupancy warning is
    silenced for the launch (matched by its message), other warnings still reach the user."""
    import warnings

    from devices.kernels import cuda as kc

    monkeypatch.setattr(kc, "SIMULATOR", False)
    msg = "\x1b[1mGrid size 1 will likely result in GPU under-utilization due to low occupancy."
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with kc._launching():
            warnings.warn(msg, UserWarning, stacklevel=1)
            warnings.warn("overflow encountered in scalar multiply", RuntimeWarning, stacklevel=1)
        warnings.warn(msg, UserWarning, stacklevel=1)  # outside a launch: not ours to silence
    assert [str(w.message) for w in seen] == ["overflow encountered in scalar multiply", msg]


def test_gpu_kernels_script_runs_under_simulator(tmp_path):
    """benchmarks/gpu_kernels.py (the split of a GPU pulse() call) runs its code path on the CPU
    under the simulator: the kernel is part of the call, the fields are counted, every kernel is
    listed (registers unknown there)."""
    out = tmp_path / "k.json"
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_kernels.py"), "--backend",
                        "cuda-sim", "--size", "4", "--repeats", "1", "--json", str(out)],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    row = json.loads(out.read_text())
    # the kernel's share is a ratio of two separately timed medians (one repeat here): positive
    # and finite, not bounded (a timing bound failed under load: 1.59)
    assert row["devices"] == 32 and 0 < row["kernel_share_of_call"] < float("inf")
    # G, Gw, tau, counters, budget, frozen and the parameter rows: well over 100 bytes a device
    assert 100 < row["bytes_per_device_fields"] < 1000
    names = {k["kernel"] for k in row["kernels"]}
    assert {"_k_write", "_k_update", "_k_request"} <= names
    assert all(k["registers"] is None for k in row["kernels"])
