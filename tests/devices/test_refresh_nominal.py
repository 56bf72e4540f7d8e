"""The refresh's host path (``devices/array_program.py``): the nominal LTP coordinates it
programs toward (``Programming._nominal_pulses``: on the numba backend the kernels' own inverse,
within an ulp or so of ``device.pulses`` and equal to it where both take the same operations; on
the numpy backend the short path of linear step devices gives ``device.pulses`` bit for bit and
other models take ``device.pulses`` itself), and a verify refresh
that updates the weight cache once at the end and skips the freeze test where every budget is
infinite leaves the state of the step-by-step path (stuck devices, budgets that run out)."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

import devices
from devices import array_program
from devices.array_program import Programming
from devices.kernels import numba_cpu


def _conductances(model, rng, n=4000):
    """Conductances across the range, beyond both ends and at the ends exactly."""
    lo, hi = model.gmin, model.gmax
    span = hi - lo
    G = rng.uniform(lo - 0.2 * span, hi + 0.2 * span, n)
    G[:4] = (lo, hi, lo - span, hi + span)
    return G


@pytest.mark.parametrize("name", ["constant_step", "linear_step", "soft_bounds", "epiram"])
def test_nominal_pulses_equal_device_pulses(name):
    model = devices.get(name)
    arr = devices.DeviceArray((4, 5), model, mapping="differential", seed=1, backend="numpy")
    G = _conductances(model, np.random.default_rng(3))
    got = arr._nominal_pulses(G)
    want = model.pulses(G, "ltp")
    assert got.dtype == want.dtype and got.shape == want.shape
    assert np.array_equal(got.view(np.int64), want.view(np.int64))


@njit(cache=False)
def _kernel_inverse(fam, G, pn, const, lut, out):
    for i in range(G.size):
        out[i] = numba_cpu.nominal_x_one(fam, G[i], pn, const, lut)


@pytest.mark.parametrize(
    "name", ["constant_step", "linear_step", "soft_bounds", "epiram", "ag_a_si", "ideal"]
)
def test_numba_backend_takes_the_kernels_inverse(name):
    """On the numba backend the host's coordinates are the ones the fused kernels compute
    (``numba_cpu.nominal_x_one``, the batch-1 kernel's and the fused refresh's) bit for bit;
    they stay within a few ulp of ``device.pulses`` (numpy's ``log1p`` / ``log``) and equal it
    where both take the same operations (linear step devices, the linear exponential one)."""
    model = devices.get(name)
    arr = devices.DeviceArray((4, 5), model, mapping="differential", seed=1, backend="numba")
    G = _conductances(model, np.random.default_rng(5))
    got = arr._nominal_pulses(G)
    pn, const, lut, _ = model._nominal()
    want = np.empty_like(G)
    _kernel_inverse(model.family, G, np.ascontiguousarray(pn[:, 0]), const, lut, want)
    assert np.array_equal(got.view(np.int64), want.view(np.int64))
    ref = model.pulses(G, "ltp")
    fin = np.isfinite(ref)
    assert np.array_equal(np.isfinite(got), fin)
    assert np.allclose(got[fin], ref[fin], rtol=1e-13, atol=1e-12)
    if name in ("constant_step", "linear_step", "ideal"):
        assert np.array_equal(got.view(np.int64), ref.view(np.int64))


def test_nominal_pulses_short_path_taken_only_for_linear_step():
    calls = []

    class Spy:
        def __init__(self, model):
            self.model = model

        def __getattr__(self, k):
            return getattr(self.model, k)

        def pulses(self, G, branch="ltp"):
            calls.append(branch)
            return self.model.pulses(G, branch)

    G = np.linspace(1e-7, 5e-6, 7)
    for backend in ("numpy", "numba"):
        for name, short in (("constant_step", True), ("soft_bounds", False), ("epiram", False)):
            arr = devices.DeviceArray((2, 3), devices.get(name), mapping="differential", seed=0,
                                      backend=backend)  # fmt: skip
            arr.device = Spy(arr.device)
            calls.clear()
            arr._nominal_pulses(G)
            # numba: the kernels' inverse for every model, never device.pulses
            assert (calls == []) == (short or backend == "numba")
    # NaN goes to device.pulses, which refuses it
    arr = devices.DeviceArray((2, 3), devices.get("constant_step"), mapping="differential")
    with pytest.raises(ValueError, match="NaN"):
        arr._nominal_pulses(np.array([1e-6, np.nan]))


@pytest.mark.parametrize("mode", ["verify", "open_loop"])
def test_refresh_state_unchanged_by_short_path(mode, monkeypatch):
    def run(general):
        monkeypatch.undo()
        # the host path (the numba backend's fused refresh does not call _nominal_pulses)
        monkeypatch.setattr(array_program, "_FUSED_REFRESH", False)
        if general:
            monkeypatch.setattr(
                Programming, "_nominal_pulses", lambda self, G: self.device.pulses(G, "ltp")
            )
        model = devices.get("constant_step")
        arr = devices.DeviceArray((12, 17), model, mapping="differential", seed=5)
        rng = np.random.default_rng(7)
        arr.program(rng.uniform(-0.9, 0.9, arr.shape), mode="verify")
        arr.pulse_request(rng.normal(0, 0.05, arr.shape), method="unidirectional")
        n = arr.refresh(rng.random(arr.shape) < 0.3, mode=mode)
        return n, [np.array(a) for a in arr.state], np.array(arr.weight_cache()), arr.counter

    n0, s0, w0, c0 = run(general=True)
    n1, s1, w1, c1 = run(general=False)
    assert n0 == n1 > 0 and c0 == c1
    for a, b in zip(s0, s1, strict=True):
        assert np.array_equal(a, b)
    assert np.array_equal(w0, w1)


def _old_refresh(arr, mask):
    """The verify refresh as it was written before: a weight-cache update after the RESET and
    after the verify, the general nominal inverse, the freeze test on every RESET."""
    xp = np
    syn = xp.flatnonzero(mask)
    N = arr.out_features * arr.in_features
    g = arr._read_subset(xp.concatenate([syn, syn + N]))
    w = arr.alpha * (g[: syn.size] - g[syn.size :])
    arr._program(syn, w, "verify", "one_sided")
    arr.refreshes[syn] += 1
    return int(syn.size)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"p_stuck_gmin": 0.1, "p_stuck_gmax": 0.05},
        {"endurance_n50": 40.0, "endurance_sigma": 0.5, "p_stuck_random": 0.05},
    ],
)
@pytest.mark.parametrize("name", ["constant_step", "soft_bounds"])
def test_verify_refresh_equals_step_by_step(name, overrides, monkeypatch):
    def run(old):
        model = devices.get(name, **overrides)
        arr = devices.DeviceArray((9, 14), model, mapping="differential", seed=11)
        rng = np.random.default_rng(2)
        arr.program(rng.uniform(-0.9, 0.9, arr.shape), mode="verify")
        arr.weight_cache()
        done = 0
        for _ in range(6):
            arr.pulse_request(rng.normal(0, 0.1, arr.shape), method="unidirectional")
            mask = rng.random(arr.shape) < 0.25
            done += _old_refresh(arr, mask) if old else arr.refresh(mask, mode="verify")
        return arr, done

    with monkeypatch.context() as m:
        m.setattr(Programming, "_nominal_pulses", lambda self, G: self.device.pulses(G, "ltp"))
        a0, n0 = run(old=True)
    a1, n1 = run(old=False)
    assert n0 == n1 > 0
    if "endurance_n50" in overrides:
        assert a1.frozen.any()  # budgets ran out during the resets and writes
    for f, x, y in zip(a0.state._fields, a0.state, a1.state, strict=True):
        assert np.array_equal(x, y), f
    for f in ("refreshes", "cnt_read"):
        assert np.array_equal(getattr(a0, f), getattr(a1, f)), f
    assert a0.counter == a1.counter and a0.subset_reads == a1.subset_reads
    assert np.array_equal(a0.weight_cache(), a1.weight_cache())
    # the cache is the weights of the final conductances
    assert np.array_equal(a1.weight_cache(), a1._weights_from(a1.G))
