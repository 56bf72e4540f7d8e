"""Timing helper shared by the benchmark scripts (not a benchmark itself)."""

from __future__ import annotations

import statistics
import time


def median_time(fn, repeats):
    """Median wall time in seconds of ``repeats`` calls of ``fn()``, after one warm-up call."""
    fn()  # warm-up (JIT compile, caches)
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def median_times(fn, repeats):
    """Median wall time and median process CPU time (all threads) in seconds of ``repeats``
    calls of ``fn()``, after one warm-up call. On a shared machine the CPU time is the better
    measure of the work (it does not count time the process waited for a core); the wall time
    is what a user sees on an idle machine only."""
    fn()
    ts, cs = [], []
    for _ in range(repeats):
        c = time.process_time()
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
        cs.append(time.process_time() - c)
    return statistics.median(ts), statistics.median(cs)
