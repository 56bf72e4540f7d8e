"""The measured choice between a kernel's serial and parallel twin (devices/kernels/twins.py).

The policy is driven here by synthetic call times (no clock): it must settle on the faster
twin, leave it within a call when it turns slow (load arriving on the other core), find it
again when it recovers, keep its probing cost near ``1 / probe_ratio`` of the run, and ignore
each twin's first (compiling) call. The kernels' results do not depend on the choice: the
sites in the pulse-train update and the pulse requests run either twin bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest

import devices
from devices.kernels import numba_cpu as nb
from devices.kernels import twins
from devices.kernels.twins import TwinChoice


def _run(choice, cost, calls):
    """Drive ``choice`` for ``calls`` calls with ``cost(i, twin)`` seconds each; returns the
    twins run and the total time."""
    picked, total = [], 0.0
    for i in range(calls):
        t = choice.pick()
        s = cost(i, t)
        choice.record(t, s)
        picked.append(t)
        total += s
    return np.array(picked), total


def test_warmup_alternates_and_ignores_first_calls():
    c = TwinChoice(warmup=2)
    seen = []
    for _ in range(6):
        t = c.pick()
        seen.append(t)
        # the first call of each twin is a compilation: huge, and must not count
        c.record(t, 100.0 if c.calls[t] == 0 else (1.0 if t else 2.0))
    assert seen == [False, True, False, True, False, True]
    assert c.est == [2.0, 1.0]
    assert c.cur is True and c.pick() is True


@pytest.mark.parametrize("par_cost, expect", [(0.5, True), (2.0, False)])
def test_settles_on_faster_twin_with_bounded_probing(par_cost, expect):
    c = TwinChoice(probe_ratio=20.0)
    picked, total = _run(c, lambda i, t: par_cost if t else 1.0, 2000)
    tail = picked[100:]
    best = min(par_cost, 1.0)
    assert np.mean(tail == expect) > 0.9
    # every call at the faster twin's cost would take best * calls: probes cost little more
    assert total < 1.1 * best * 2000 + 10.0


def test_load_arriving_and_leaving():
    """Parallel 0.55 s idle; from call 300 to 700 each parallel call stalls at 25 s (a busy
    core, about 45x the serial 1.0 s); afterwards idle again. (In seconds of a real call, ~0.6
    ms serial: load is left within one call and found gone within about half a second.)"""

    def cost(i, t):
        if not t:
            return 1.0
        return 25.0 if 300 <= i < 700 else 0.55

    c = TwinChoice(probe_ratio=20.0)
    picked, _ = _run(c, cost, 2000)
    # before the load: parallel
    assert np.mean(picked[50:300]) > 0.9
    # the first stalled call moves the choice to serial at once
    stalled = [i for i in range(300, 700) if picked[i]]
    assert stalled[0] == 300 and not picked[301]
    # while loaded, the parallel tries cost at most ~1/probe_ratio of the serial time
    assert len(stalled) * 25.0 <= 0.1 * (400 - len(stalled)) * 1.0 + 25.0 * 2
    # after the load has left, the choice returns to parallel
    # within about probe_ratio stalled calls' worth of serial calls (the last try's cost)
    back = [i for i in range(700, 1980) if all(picked[i : i + 20])]
    assert back and back[0] < 700 + 2 * 20 * 25


def test_bad_parameters_refused():
    with pytest.raises(ValueError, match="probe_ratio"):
        TwinChoice(probe_ratio=1.0)
    with pytest.raises(ValueError, match="warmup"):
        TwinChoice(warmup=0)


@pytest.mark.parametrize("where", ["cores_available", "numba_threads"])
def test_single_core_or_thread_runs_serial(monkeypatch, where):
    monkeypatch.setattr(twins, where, lambda: 1)
    sites = {}
    for _ in range(10):
        assert twins.timed_twin(sites, "k", lambda: "ser", lambda: "par") == "ser"
    assert sites == {}


def test_sites_are_bounded():
    sites = {i: TwinChoice() for i in range(256)}
    twins.timed_twin(sites, "new", lambda: 0, lambda: 0)
    assert len(sites) <= 2 and "new" in sites


def _layer(seed=3):
    arr = devices.DeviceArray((96, 128), devices.get("constant_step"), seed=seed, backend="numba")
    return arr


@pytest.mark.parametrize("forced", [None, False, True])
def test_pulse_update_site_bit_for_bit(monkeypatch, forced):
    """The update in the measured band gives the same state whichever twin each call runs
    (forced serial, forced parallel, or the choice's own alternation)."""
    monkeypatch.setattr(nb, "_ADAPT_MIN_UPDATE", 1)
    monkeypatch.setattr(nb, "_SITES", {})
    if forced is not None:
        monkeypatch.setattr(twins.TwinChoice, "pick", lambda self: forced)
    rng = np.random.default_rng(0)
    arr = _layer()
    for _ in range(8):
        x = rng.uniform(-1, 1, (6, 128))
        d = rng.uniform(-1, 1, (6, 96))
        arr.pulse_update(x, d, 0.05, bl=7)
    if forced is None:
        (site,) = nb._SITES.values()
        assert min(site.calls) >= 2  # both twins ran
    ref = _layer()
    monkeypatch.setattr(nb, "_ADAPT_MIN_UPDATE", 1 << 62)
    monkeypatch.setattr(nb, "_PARALLEL_MIN_UPDATE", 1 << 62)
    rng = np.random.default_rng(0)
    for _ in range(8):
        x = rng.uniform(-1, 1, (6, 128))
        d = rng.uniform(-1, 1, (6, 96))
        ref.pulse_update(x, d, 0.05, bl=7)
    np.testing.assert_array_equal(arr.state.G, ref.state.G)
    np.testing.assert_array_equal(arr.weights(), ref.weights())


@pytest.mark.parametrize("forced", [None, False, True])
def test_pulse_request_site_bit_for_bit(monkeypatch, forced):
    """Pulse requests (unidirectional, with refresh flags) in the measured band: the same
    pulses, flags and state whichever twin runs."""
    monkeypatch.setattr(nb, "_SITES", {})

    def run(adapt):
        monkeypatch.setattr(nb, "_ADAPT_MIN", adapt)
        a = devices.DeviceArray((7, 400), devices.get("constant_step"), seed=3,
                                mapping="differential")  # fmt: skip
        a.program(np.random.default_rng(0).uniform(-0.5, 0.5, (7, 400)), form="centered")
        rng = np.random.default_rng(9)
        out = []
        for _ in range(8):
            dW = rng.normal(0, 0.05, (7, 400)) * (rng.random((7, 400)) < 0.3)
            r = a.pulse_request(dW, method="unidirectional", refresh_threshold=0.6)
            out.append((r["pulses"], r["needs_refresh"].copy()))
        return a, out

    if forced is not None:
        monkeypatch.setattr(twins.TwinChoice, "pick", lambda self: forced)
    a, out = run(1)
    if forced is None:
        (site,) = nb._SITES.values()
        assert min(site.calls) >= 2
    ref, ref_out = run(1 << 62)
    for (p, f), (q, g) in zip(out, ref_out, strict=True):
        assert p == q
        np.testing.assert_array_equal(f, g)
    for name in a.state._fields:
        np.testing.assert_array_equal(getattr(a.state, name), getattr(ref.state, name), name)
