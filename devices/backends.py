"""The one backend registry: a name -> (array module, kernel module), availability with reasons.

Every part of the package that offers ``backend=`` resolves it here, so the names, the meaning of
``"auto"`` and the error messages are the same everywhere.

Backends
--------
``numpy``
    Plain numpy kernels: the readable reference, the ground truth of every test.
``numba``
    numba CPU kernels (threads where it pays). ``"auto"`` resolves to it when numba imports.
``cupy``
    State in cupy arrays on an NVIDIA GPU, numba CUDA kernels (device arrays only).
``cuda-sim``
    The same CUDA kernels under numba's CUDA simulator, with numpy arrays: the CPU tests of the GPU
    code path (device arrays only; very slow, for tests).

Kinds of code accept different subsets (:data:`ARRAY_BACKENDS` for device arrays and trainers,
:data:`CPU_BACKENDS` for the quantizer, sparse-coding and lasso kernels, which have no CUDA
version); :func:`resolve` takes the subset as ``allowed``.
"""

from __future__ import annotations

from .validation import did_you_mean

__all__ = [
    "ARRAY_BACKENDS",
    "CPU_BACKENDS",
    "CUDA_KERNEL_BACKENDS",
    "GPU_BACKENDS",
    "available",
    "kernels",
    "resolve",
    "xp_of",
]

#: Backends of device arrays, trainers and sweeps (``"auto"`` first).
ARRAY_BACKENDS = ("auto", "numpy", "numba", "cupy", "cuda-sim")
#: Backends of CPU-only kernels (quantizers, sparse-coding E-steps, lasso).
CPU_BACKENDS = ("auto", "numpy", "numba")
#: Backends whose state lives on a GPU in cupy arrays.
GPU_BACKENDS = ("cupy",)
#: Backends that run the numba CUDA kernels (on a GPU, or under the simulator).
CUDA_KERNEL_BACKENDS = ("cupy", "cuda-sim")

#: Kernel module name (``devices.kernels.get_kernels``) of each resolved array backend.
_KERNEL_MODULE = {
    "numpy": "numpy",
    "numba": "numba",
    "cupy": "numba_cuda",
    "cuda-sim": "numba_cuda",
}


def available(name: str) -> tuple[bool, str]:
    """Whether a (non-``auto``) backend can run here, and why not.

    Returns
    -------
    (bool, str)
        ``(True, "")`` or ``(False, reason)``; never raises on a machine without a GPU.
    """
    if name == "numpy":
        return True, ""
    if name == "numba":
        try:
            import numba  # noqa: F401
        except ImportError as exc:  # pragma: no cover - numba is a dependency
            return False, f"numba does not import ({exc})"
        return True, ""
    if name == "cupy":
        from .gpu import gpu_backend_status

        return gpu_backend_status()
    if name == "cuda-sim":
        from .gpu import cuda_sim_status

        return cuda_sim_status()
    return False, f"unknown backend {name!r}"


def resolve(backend, allowed=ARRAY_BACKENDS, *, name: str = "backend") -> str:
    """Check a backend name against ``allowed`` and that it runs here; return the resolved name.

    Parameters
    ----------
    backend : str
        A name from ``allowed``. ``"auto"`` is numba (the CPU, also on a GPU machine: a CPU
        machine must never break, and the GPU backend returns cupy arrays), or numpy without numba.
    allowed : tuple of str
        The names this caller supports (:data:`ARRAY_BACKENDS` or :data:`CPU_BACKENDS`).
    name : str
        Parameter name used in error messages.

    Returns
    -------
    str
        The resolved backend (never ``"auto"``).

    Raises
    ------
    ValueError
        Unknown name (with the choices and a close match), or a backend that cannot run here
        (with the reason: cupy not installed, no usable GPU, ...).
    """
    if not isinstance(backend, str) or backend not in allowed:
        raise ValueError(
            f"{name} must be one of {', '.join(map(repr, allowed))}, got {backend!r}"
            f"{did_you_mean(backend, allowed)}"
        )
    if backend == "auto":
        ok, _ = available("numba")
        return "numba" if ok else "numpy"
    ok, why = available(backend)
    if not ok:
        alt = "; use backend='numba' (CPU) instead" if backend == "cupy" else ""
        raise ValueError(f"{name}={backend!r} is not available: {why}{alt}")
    return backend


def kernels(backend: str):
    """Kernel module (``devices.kernels``) of a resolved array backend.

    The numba backend starts numba's thread pool here, once, keeping the process's OpenMP
    thread counts (:func:`devices.threads.start_numba_threads`: torch's among them).
    """
    from .kernels import get_kernels

    if backend == "numba":
        from .threads import start_numba_threads

        start_numba_threads()
    return get_kernels(_KERNEL_MODULE[backend])


def xp_of(backend: str):
    """Array module of a resolved backend: cupy for ``"cupy"``, numpy otherwise."""
    if backend in GPU_BACKENDS:
        import cupy

        return cupy
    import numpy

    return numpy
