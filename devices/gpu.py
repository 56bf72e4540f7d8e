"""GPU availability, detected without ever breaking a CPU machine.

cupy imports on machines without a GPU and fails only on first use, so availability is decided
by a guarded trial allocation. The GPU backend (``backend="cupy"``: state in cupy arrays, numba
CUDA kernels from :mod:`devices.kernels.cuda`) also needs numba's CUDA target on a real GPU;
:func:`gpu_backend_status` checks both and says why the backend cannot be used. The test backend
``"cuda-sim"`` runs the same kernels on numpy arrays under numba's CUDA simulator
(:func:`cuda_sim_status`).
"""

from __future__ import annotations

import functools
import os
import warnings

__all__ = ["cupy_status", "cuda_sim_status", "gpu_backend_status"]

_SIM_ENV = "NUMBA_ENABLE_CUDASIM"

#: numba's warning on a launch of few blocks (matched by message: numba-cuda raises its own
#: NumbaPerformanceWarning class). The package's launches are sized by the array (one thread per
#: device), so a small array gets a small grid by design and the warning is silenced for them.
LOW_OCCUPANCY_MESSAGE = r"(?s).*Grid size \d+ will likely result in GPU under-util"


@functools.lru_cache(maxsize=1)
def cupy_status() -> tuple[bool, str]:
    """Whether cupy and a usable GPU are present, with the reason in words.

    Returns
    -------
    (bool, str)
        ``(True, "cupy X on <device>")`` or ``(False, reason)``; never raises.
    """
    try:
        import cupy
    except ImportError:
        return False, "cupy is not installed (pip install 'synapse-sim[gpu]')"
    except Exception as exc:  # a broken CUDA install can fail at import time too
        return False, f"cupy failed to import: {type(exc).__name__}: {exc}"
    try:
        x = cupy.arange(4, dtype=cupy.float64)
        float((x * 2).sum())
        name = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)["name"]
        name = name.decode() if isinstance(name, bytes) else str(name)
    except Exception as exc:
        return False, f"cupy is installed but no GPU is usable: {type(exc).__name__}: {exc}"
    return True, f"cupy {cupy.__version__} on {name}"


def _numba_cuda_is_simulator(cuda) -> bool:
    return getattr(cuda.jit, "__module__", "").startswith("numba.cuda.simulator")


def gpu_backend_status() -> tuple[bool, str]:
    """Whether ``backend="cupy"`` can run: a usable GPU through cupy, and numba's CUDA target
    (not the simulator) on it. Never raises.

    Returns
    -------
    (bool, str)
        ``(True, description)`` or ``(False, reason)``.
    """
    ok, why = cupy_status()
    if not ok:
        return ok, why
    try:
        from numba import cuda
    except Exception as exc:  # pragma: no cover - numba is a dependency
        return False, f"numba.cuda failed to import: {type(exc).__name__}: {exc}"
    if _numba_cuda_is_simulator(cuda):
        return False, (
            f"{_SIM_ENV}=1 is set, so numba.cuda is the CPU simulator; unset it to run the CUDA "
            "kernels on the GPU"
        )
    try:
        if not cuda.is_available():
            return (
                False,
                f"{why}, but numba cannot use the GPU (numba.cuda.is_available() is False)",
            )
    except Exception as exc:
        return False, f"{why}, but numba's CUDA target failed: {type(exc).__name__}: {exc}"
    ok, probe = _cuda_kernel_probe()
    if not ok:
        return False, f"{why}, but {probe}"
    return True, why


@functools.lru_cache(maxsize=1)
def _cuda_kernel_probe() -> tuple[bool, str]:
    """Compile and launch one tiny numba CUDA kernel on a cupy array, once per process.

    ``numba.cuda.is_available()`` says only that a driver and a GPU answer; the first compilation
    is what loads numba's CUDA typing and lowering registries, and a numba-cuda that does not fit
    the installed numpy fails there. Seen on a GPU machine (2026-12-04): numba-cuda 0.30.4 with
    numpy 2.5 raised ``AttributeError: module 'numpy' has no attribute 'row_stack'`` at the first
    kernel launch, because its array registry registers an overload of ``np.row_stack``, which
    numpy 2.5 removed (it was an alias of ``np.vstack``). The probe loads the registries with that
    alias present for the duration of the load only (numba keeps the function object it got; nothing
    looks the name up later), and numpy is left as it was.

    Returns
    -------
    (bool, str)
        ``(True, "")`` or ``(False, reason)``; never raises.
    """
    import numpy as np

    alias = "row_stack"  # the name numpy 2.5 removed (an alias of vstack)
    added = not hasattr(np, alias)
    if added:
        setattr(np, alias, np.vstack)
    try:
        import cupy
        from numba import cuda

        def _double(a):  # pragma: no cover - runs on a GPU only
            i = cuda.grid(1)
            if i < a.size:
                a[i] = 2.0 * a[i]

        x = cupy.ones(4, dtype=cupy.float64)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=LOW_OCCUPANCY_MESSAGE)
            cuda.jit(_double)[1, 32](x)
        if float(x.sum()) != 8.0:
            return False, "a numba CUDA kernel ran on a cupy array and gave a wrong result"
    except Exception as exc:
        import numba

        return False, (
            f"numba cannot compile and launch a CUDA kernel (numba {numba.__version__}, "
            f"numpy {np.__version__}): {type(exc).__name__}: {exc}"
        )
    finally:
        if added:
            delattr(np, alias)
    return True, ""


def cuda_sim_status() -> tuple[bool, str]:
    """Whether ``backend="cuda-sim"`` (the CUDA kernels on numpy arrays under numba's CUDA
    simulator, for testing the GPU code path on a CPU) can run. Never raises.

    Returns
    -------
    (bool, str)
        ``(True, "numba CUDA simulator")`` or ``(False, reason)``.
    """
    if os.environ.get(_SIM_ENV) != "1":
        return False, (
            f"it runs the CUDA kernels under numba's CUDA simulator, which needs {_SIM_ENV}=1 in "
            "the environment before numba.cuda is first imported (a testing backend: use "
            "'numba' on a CPU, 'cupy' on a GPU)"
        )
    try:
        from numba import cuda
    except Exception as exc:  # pragma: no cover - numba is a dependency
        return False, f"numba.cuda failed to import: {type(exc).__name__}: {exc}"
    if not _numba_cuda_is_simulator(cuda):
        return False, (
            f"{_SIM_ENV}=1 is set but numba.cuda was imported before it was set, so it is not "
            "the simulator; set it before starting Python"
        )
    return True, "numba CUDA simulator"
