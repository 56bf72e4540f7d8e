"""GPU detection never breaks a CPU machine, and asking for the GPU backend says why not."""

import sys
import types
import warnings

import pytest

import devices
from devices import gpu


@pytest.fixture(autouse=True)
def _fresh_status():
    gpu.cupy_status.cache_clear()
    yield
    gpu.cupy_status.cache_clear()


def test_missing_cupy_is_reported(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy -> ImportError
    ok, why = gpu.cupy_status()
    assert ok is False and "not installed" in why


def test_cupy_without_gpu_is_reported(monkeypatch):
    fake = types.ModuleType("cupy")
    fake.float64 = float

    def arange(*a, **k):
        raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")

    fake.arange = arange
    monkeypatch.setitem(sys.modules, "cupy", fake)
    ok, why = gpu.cupy_status()
    assert ok is False
    assert "no GPU is usable" in why and "cudaErrorNoDevice" in why


def test_asking_for_cupy_backend_names_parameter_and_reason(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)
    with pytest.raises(ValueError, match=r"backend='cupy' is not available: cupy is not installed"):
        devices.DeviceArray((2, 3), devices.get("ideal"), backend="cupy")


def test_auto_backend_stays_on_cpu():
    assert devices.DeviceArray((2, 3), devices.get("ideal")).backend in ("numba", "numpy")


def _fake_gpu(monkeypatch, launch):
    """cupy and numba.cuda as on a GPU machine, with ``launch(array)`` standing for a kernel's
    first compilation and launch."""
    import numba
    import numpy as np

    gpu._cuda_kernel_probe.cache_clear()
    monkeypatch.setattr(gpu, "cupy_status", lambda: (True, "cupy 14 on Fake GPU"))
    fake_cupy = types.ModuleType("cupy")
    fake_cupy.float64 = np.float64
    fake_cupy.ones = lambda n, dtype=None: np.ones(n, dtype=dtype)
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy)

    class _Kernel:
        def __getitem__(self, grid):
            return launch

    fake_cuda = types.SimpleNamespace(
        jit=lambda f: _Kernel(), is_available=lambda: True, grid=lambda n: 0
    )
    fake_cuda.jit.__module__ = "numba.cuda.api"
    monkeypatch.setattr(numba, "cuda", fake_cuda, raising=False)
    monkeypatch.setitem(sys.modules, "numba.cuda", fake_cuda)


def test_kernel_that_cannot_compile_is_reported(monkeypatch):
    """numba.cuda.is_available() is True but the first kernel compilation fails (numba-cuda 0.30.4
    with numpy 2.5, seen on a GPU machine): the backend is refused with the error, not at the
    first pulse."""

    def launch(a):
        raise AttributeError("module 'numpy' has no attribute 'foo'")

    _fake_gpu(monkeypatch, launch)
    try:
        ok, why = gpu.gpu_backend_status()
        assert not ok
        assert "Fake GPU" in why and "numba cannot compile and launch a CUDA kernel" in why
        assert "AttributeError" in why and "'foo'" in why
        with pytest.raises(ValueError, match=r"backend='cupy' is not available: .*compile"):
            devices.DeviceArray((2, 3), devices.get("ideal"), backend="cupy")
    finally:
        gpu._cuda_kernel_probe.cache_clear()


def test_probe_lends_numpy_row_stack_only_while_numba_loads(monkeypatch):
    """On a numpy without ``row_stack`` the probe compiles with the alias present, and numpy is
    left without it afterwards; a kernel that runs and doubles its array passes."""
    import numpy as np

    seen = []

    def launch(a):
        seen.append(getattr(np, "row_stack", None) is np.vstack)
        warnings.warn("Grid size 1 will likely result in GPU under-utilization", stacklevel=1)
        a *= 2.0

    monkeypatch.delattr(np, "row_stack", raising=False)
    _fake_gpu(monkeypatch, launch)
    try:
        with warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("always")
            ok, why = gpu.gpu_backend_status()
        assert ok and why == "cupy 14 on Fake GPU"
        assert not warned  # the probe's one-block grid is not the user's concern
        assert seen == [True] and not hasattr(np, "row_stack")
        gpu.gpu_backend_status()  # once per process
        assert seen == [True]
    finally:
        gpu._cuda_kernel_probe.cache_clear()


def test_probe_reports_a_wrong_result(monkeypatch):
    _fake_gpu(monkeypatch, lambda a: None)  # the kernel "ran" and changed nothing
    try:
        ok, why = gpu.gpu_backend_status()
        assert not ok and "wrong result" in why
    finally:
        gpu._cuda_kernel_probe.cache_clear()
