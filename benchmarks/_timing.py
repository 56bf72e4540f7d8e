"""Timing helper shared by the benchmark scripts (not a benchmark itself)."""

from __future__ import annotations

import contextlib
import importlib
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


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


def ab_ratios(times):
    """Summary of an in-process A/B: ``times`` = (this tree's call times, the base's), paired
    call by call (seconds); their medians in microseconds and the median and quartiles of the
    per-call ratio."""
    ratio = [p / q for p, q in zip(*times, strict=True)]
    return {
        "new_us": 1e6 * statistics.median(times[0]),
        "base_us": 1e6 * statistics.median(times[1]),
        "ratio_median": statistics.median(ratio),
        "ratio_q1": float(np.percentile(ratio, 25)),
        "ratio_q3": float(np.percentile(ratio, 75)),
    }


@contextlib.contextmanager
def kernels_at(rev):
    """``devices.kernels.numba_cpu`` as of git revision ``rev``, loaded beside this tree's.

    The file of ``rev`` is written to a temporary module (``devices/kernels/_ab_rev.py``,
    git-ignored, removed on exit) so that it compiles against this tree's helpers; an in-process
    A/B then calls both kernels alternately on the same inputs, the only comparison that
    resolves a 20% change on a machine whose speed drifts by 1.5x within minutes.
    """
    src = subprocess.run(
        ["git", "show", f"{rev}:devices/kernels/numba_cpu.py"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    tmp = ROOT / "devices" / "kernels" / "_ab_rev.py"
    tmp.write_text(src)
    try:
        yield importlib.import_module("devices.kernels._ab_rev")
    finally:
        tmp.unlink()
