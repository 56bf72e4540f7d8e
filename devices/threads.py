"""numba's CPU thread pool, started once without changing the process's OpenMP thread counts.

numba's default threading layer on Linux is GNU OpenMP. When it starts its pool it calls
``omp_set_num_threads(NUMBA_NUM_THREADS)``, and that call reaches the first OpenMP runtime the
process loaded: with torch imported, torch's own ``libgomp``. A process that had set
``torch.set_num_threads(1)`` (as the trainers and the benchmarks do) then runs torch's
operations on all cores again after its first numba kernel. On a busy machine every parallel
region of torch then waits for a descheduled worker thread (milliseconds per operation, 10-50x
slower steps).

:func:`start_numba_threads` starts numba's pool once (the numba backend of
:func:`devices.backends.kernels` calls it) and puts every OpenMP runtime's thread count back to
what it was. numba's kernels keep their own thread count (``numba.get_num_threads()``), so their
results and speed do not change.
"""

from __future__ import annotations

import threading

__all__ = ["openmp_thread_counts", "start_numba_threads"]

_lock = threading.Lock()
_started = False


def _openmp_controllers() -> list:
    from threadpoolctl import ThreadpoolController

    return [c for c in ThreadpoolController().lib_controllers if c.user_api == "openmp"]


def openmp_thread_counts() -> dict[str, int]:
    """The thread count of every OpenMP runtime loaded in this process, by library path."""
    return {str(c.filepath): int(c.num_threads) for c in _openmp_controllers()}


def start_numba_threads() -> bool:
    """Start numba's thread pool now (once per process), keeping the OpenMP thread counts.

    Returns
    -------
    bool
        True when this call started the pool, False when it was started before (by this
        function or by an earlier parallel numba call, whose change this cannot undo).
    """
    global _started
    if _started:
        return False
    with _lock:
        if _started:
            return False
        import numba

        _started = True
        try:
            numba.threading_layer()  # raises while no layer is loaded
            return False
        except ValueError:
            pass
        before = [(c, int(c.num_threads)) for c in _openmp_controllers()]
        numba.get_num_threads()  # loads the threading layer and starts its pool
        for c, n in before:
            if int(c.num_threads) != n:
                c.set_num_threads(n)
        return True
