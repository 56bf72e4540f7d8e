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


@contextlib.contextmanager
def serial_twins(nc):
    """Inside: the kernels of ``nc`` (``devices.kernels.numba_cpu``) run their serial twin below
    the fixed parallel thresholds, as before the measured twin choice (devices/kernels/twins.py),
    so a script that times or captures the serial twin's calls in training sees every call. A
    tree without the choice (``--tree``) is left as it is."""
    names = [n for n in ("_ADAPT_MIN", "_ADAPT_MIN_UPDATE") if hasattr(nc, n)]
    old = {n: getattr(nc, n) for n in names}
    for n in names:
        setattr(nc, n, 1 << 62)
    try:
        yield
    finally:
        for n, v in old.items():
            setattr(nc, n, v)


def bridge_mlp():
    """The torch bridge's benchmark network (issue #15): MNIST-5k as float32 tensors ``X, Y``,
    the 784-256-128-10 relu MLP ``soft`` (torch seed 0) and ``hw``, its
    ``convert(..., device="constant_step", rule="stochastic")``; returns ``(X, Y, soft, hw)``.
    Used by bench_torch.py, layout_sparse.py and ab_twins.py."""
    import torch

    from synapse_sim.data.datasets import load_dataset
    from synapse_sim.nn import convert

    data = load_dataset("mnist5k", seed=0)
    X = torch.from_numpy(data.x_train.astype(np.float32))
    Y = torch.from_numpy(data.y_train)
    soft = bridge_soft_mlp()
    return X, Y, soft, convert(soft, device="constant_step", rule="stochastic")


def bridge_soft_mlp():
    """The software 784-256-128-10 relu MLP of :func:`bridge_mlp`, initialised with torch seed 0
    (needs only torch: also used by ``_peer_child.py`` in aihwkit's interpreter)."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10)
    )
