"""A float32 device state (G, Gw, tau; an experiment of issue #15's compact state) keeps the
statistics of the float64 state: mean step, cycle-to-cycle noise of single and multi-pulse
writes, and saturation at both bounds, for an exponential, a step and a soft-bounds device with
device-to-device spread. Both states start from the same values and draw the same numbers
(numpy reference kernels); only float32 rounding on store differs."""

from __future__ import annotations

import numpy as np
import pytest

import devices
from devices import _rng
from devices.kernels import reference as ref
from devices.kernels.records import DeviceState


def _state(G, dtype):
    n = G.size
    z = {k: np.zeros(n, np.int64) for k in ("cnt_up", "cnt_dn", "cnt_prog", "cnt_reset")}
    return DeviceState.make(
        G=G.astype(dtype), Gw=G.astype(dtype), tau=np.zeros(n, dtype),
        frozen=np.zeros(n, np.uint8), budget=np.full(n, np.inf), **z,
    )  # fmt: skip


def test_float32_state_is_accepted_only_as_a_whole():
    G = np.ones(4, np.float32)
    st = _state(G, np.float32)
    assert st.G.dtype == st.Gw.dtype == st.tau.dtype == np.float32
    with pytest.raises(TypeError, match=r"DeviceState\.Gw .*dtype float32"):
        DeviceState.make(**{**st._asdict(), "Gw": np.ones(4)})


@pytest.mark.parametrize("name", ["ag_a_si", "constant_step", "soft_bounds"])
def test_float32_state_keeps_step_noise_and_saturation(name):
    dev = devices.get(name)
    arr = devices.DeviceArray((50, 100), dev, mapping="reference", seed=1, backend="numpy")
    pa = arr.params
    assert pa.c2c > 0
    lo, hi = arr.gmin_i, arr.gmax_i
    G0 = (lo + 0.3 * (hi - lo)).astype(np.float32).astype(np.float64)  # same start for both
    s64, s32 = _state(G0, np.float64), _state(G0, np.float32)
    P = max(dev.levels("ltp"), dev.levels("ltd"))
    dG = dev.dG
    calls = [0]

    def both(n):
        base = _rng.call_base(7, calls[0])
        calls[0] += 1
        for s in (s64, s32):
            ref.write(s, pa, np.full(G0.size, n, np.int64), base, False)

    for n in (1, -1, 25, -25):  # single pulses exactly, multi-pulse writes in closed form
        g64, g32 = s64.G.copy(), s32.G.astype(np.float64)
        both(n)
        d64, d32 = s64.G - g64, s32.G - g32
        assert abs(d32.mean() - d64.mean()) < 1e-3 * abs(d64.mean()), n  # mean step
        assert abs(d32.std() / d64.std() - 1.0) < 1e-3, n  # noise
        # per device, float32 only rounds: far below one step
        assert np.max(np.abs(d32 - d64)) < 1e-3 * dG / P, n
    for sign, bound in ((1, hi), (-1, lo)):  # saturation at both bounds
        for _ in range(6):
            both(sign * max(10, P // 4))
        gap64, gap32 = np.abs(s64.G - bound), np.abs(s32.G - bound)
        assert gap64.mean() < 0.1 * dG  # saturated (soft bounds: close to the bound)
        at64, at32 = gap64 < 1e-5 * dG, gap32 < 1e-5 * dG  # clipped to the bound
        assert abs(at32.mean() - at64.mean()) <= 2e-3
        assert abs(gap32.mean() - gap64.mean()) < 1e-4 * dG
        assert abs(gap32.std() - gap64.std()) < 1e-4 * dG
