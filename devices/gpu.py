"""GPU availability, detected without ever breaking a CPU machine.

cupy imports on machines without a GPU and fails only on first use, so availability is decided
by a guarded trial allocation. The cupy kernels themselves are not part of this release (the GPU
backend is planned); asking for ``backend="cupy"`` says why it cannot be used.
"""

from __future__ import annotations

import functools

__all__ = ["cupy_status"]


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
