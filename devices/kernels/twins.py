"""Serial or parallel twin of a kernel, chosen per call site by measured speed.

Every numba kernel has a serial and a parallel twin that give the same results bit for bit
(``numba_cpu``'s module comments). Which one is faster depends on the machine at run time: on
an idle machine the parallel twin of the sparse pulse-train update ran at 0.52-0.56x the
serial twin's time on the MNIST MLP's layers (BENCHMARKS.md, ``layout_sparse.py --twins``), but
with one core taken by another process its barrier waited for a descheduled thread, about
22 ms per call, 26-45x the serial twin (``--busy``). A fixed size threshold has to pick one
of these regimes for everybody.

:class:`TwinChoice` picks by measurement instead, for one call site (a kernel on arrays of one
size). It times the calls and keeps an estimate of each twin's time per call: a running mean
for the twin in use, the latest try for the other. It runs the faster one, and tries the other
again once the twin in use has run ``probe_ratio`` times the other's estimated cost since the
last try, so that trying costs at most about ``1 / probe_ratio`` of the run, even when a try
stalls. The first call of each twin (numba's compilation or cache load) is not counted. When
load arrives mid-run, the parallel twin's first slow call raises its estimate above the serial
one's and the next call runs serially; when the load leaves, a later try finds the parallel
twin fast again (after about ``probe_ratio`` stalled calls' worth of serial work).

The choice never changes results (the twins are bit-identical), only which of them runs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import numba

from ..threads import start_numba_threads

__all__ = ["TwinChoice", "cores_available", "numba_threads", "timed_twin"]

#: a twin's estimate: weight of the newest call (exponentially weighted mean of the call times)
EWMA = 0.5
#: try the other twin again after the current one has run this many times its estimated cost
PROBE_RATIO = 20.0
#: measured calls of each twin before the first choice (after the uncounted first call)
WARMUP = 2
#: switch only when the other twin's estimate is below this fraction of the current one's
HYSTERESIS = 0.95


def cores_available() -> int:
    """CPU cores this process may run on (its affinity mask), 1 where that is unknown."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def numba_threads() -> int:
    """numba's thread count, its pool started the package's way (``devices.threads``: the
    first start would otherwise reset torch's OpenMP thread count)."""
    start_numba_threads()
    return numba.get_num_threads()


class TwinChoice:
    """Serial (``False``) or parallel (``True``) twin for one call site, by measured time.

    Parameters
    ----------
    probe_ratio : float
        Try the twin not in use once the one in use has spent ``probe_ratio`` times the other's
        estimated cost per call since the last try (> 1; the probing overhead is about
        ``1 / probe_ratio``).
    warmup : int
        Counted calls of each twin, alternated, before the estimates decide (>= 1).

    Use :meth:`pick` before a call and :meth:`record` with its wall time after it.
    """

    __slots__ = ("est", "calls", "cur", "spent", "probe_ratio", "warmup", "probes")

    def __init__(self, probe_ratio: float = PROBE_RATIO, warmup: int = WARMUP):
        if not probe_ratio > 1.0:
            raise ValueError(f"probe_ratio must be > 1; got {probe_ratio!r}")
        if int(warmup) < 1:
            raise ValueError(f"warmup must be >= 1; got {warmup!r}")
        self.probe_ratio = float(probe_ratio)
        self.warmup = int(warmup)
        self.est: list[float | None] = [None, None]  # seconds per call: [serial, parallel]
        self.calls = [0, 0]  # calls made, the uncounted first one included
        self.cur = False  # the twin in use
        self.spent = 0.0  # seconds the twin in use has run since the other was last tried
        self.probes = 0  # tries of the twin not in use (after the warm-up)

    def pick(self) -> bool:
        """The twin to run next: True for the parallel one."""
        for twin in (False, True):  # warm-up: each twin's uncounted call and counted calls
            if self.calls[twin] < 1 + self.warmup and self.calls[twin] <= self.calls[not twin]:
                return twin
        other = not self.cur
        if self.spent >= self.probe_ratio * self.est[other]:
            return other
        return self.cur

    def record(self, twin: bool, seconds: float) -> None:
        """Count a call of ``twin`` (True: parallel) that took ``seconds`` of wall time."""
        twin = bool(twin)
        warming = min(self.calls) < 1 + self.warmup
        self.calls[twin] += 1
        if self.calls[twin] == 1:
            return  # compilation or cache load
        e = self.est[twin]
        if warming or twin == self.cur:
            self.est[twin] = float(seconds) if e is None else e + EWMA * (float(seconds) - e)
        if warming:
            if None not in self.est:
                self.cur = self.est[True] < self.est[False]
            return
        if twin == self.cur:
            self.spent += float(seconds)
        else:  # a try of the other twin: its newest time is the news (load came or went)
            self.est[twin] = float(seconds)
            self.probes += 1
            self.spent = 0.0
        other = not self.cur
        if self.est[other] < HYSTERESIS * self.est[self.cur]:
            self.cur = other
            self.spent = 0.0


def timed_twin(sites: dict, key: Any, serial: Callable, parallel: Callable, *args: Any) -> Any:
    """Call ``serial(*args)`` or ``parallel(*args)``, as the :class:`TwinChoice` of ``key`` in
    ``sites`` picks (made on first use; ``sites`` is cleared when it holds over 256 sites), and
    record the call's time. On a single core, or with numba at one thread (the sweep's worker
    processes), always the serial twin."""
    if cores_available() < 2 or numba_threads() < 2:
        return serial(*args)
    choice = sites.get(key)
    if choice is None:
        if len(sites) >= 256:
            sites.clear()
        choice = sites[key] = TwinChoice()
    twin = choice.pick()
    t0 = time.perf_counter()
    out = (parallel if twin else serial)(*args)
    choice.record(twin, time.perf_counter() - t0)
    return out
