"""Shared fixtures for the ``devices`` tests."""

from __future__ import annotations

import numpy as np
import pytest

import devices

#: The published presets of specs/device_presets.json (the JSON keys, ideal included).
JSON_PRESETS = tuple(devices.published()["presets"])
#: Published exponential devices (no ideal).
PUBLISHED = tuple(k for k in JSON_PRESETS if k != "ideal")
STEP_PRESETS = ("constant_step", "soft_bounds", "linear_step")


@pytest.fixture
def rng():
    """A fixed-seed generator for test data."""
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def lut_device():
    """A small measured (look-up-table) device with a concave LTP and a convex LTD table."""
    p = np.arange(21)
    ltp = 1e-6 + 9e-6 * (1 - np.exp(-p / 8.0)) / (1 - np.exp(-20 / 8.0))
    q = np.arange(16)
    ltd = 1e-5 - 9e-6 * (1 - np.exp(-q / 5.0)) / (1 - np.exp(-15 / 5.0))
    return devices.LUTDevice(ltp=tuple(ltp), ltd=tuple(ltd), name="lut_test")


@pytest.fixture
def one_numba_thread():
    """Run numba kernels on one thread (long loops of tiny writes: a parallel launch costs far
    more than the work when the machine is shared). Restores the thread count afterwards."""
    import numba

    old = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(old)
