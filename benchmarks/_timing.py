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
