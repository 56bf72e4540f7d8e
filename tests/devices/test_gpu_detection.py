"""GPU detection never breaks a CPU machine, and asking for the GPU backend says why not."""

import sys
import types

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
