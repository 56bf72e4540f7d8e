"""Shared setup for the kernel parity tests: ``test_kernels.py`` (numba vs numpy) and
``cuda_sim_kernels.py`` (CUDA simulator vs numpy, run in a subprocess).

Not a test file (the name does not start with ``test_``). The test folders have no
``__init__.py``, so pytest puts this folder on ``sys.path`` and both import it as
``kernel_cases``.
"""

from __future__ import annotations

import zlib

import numpy as np

import devices

RTOL = 1e-12

#: Every device family the kernels implement, with the variability each case switches on.
FAMILIES = (
    "exp_d2d",
    "exp_mixed_signs",
    "linear",
    "constant_step",
    "soft_bounds",
    "linear_step",
    "lut",
)


def seed_of(*parts):
    """A fixed seed per parameter combination (independent of PYTHONHASHSEED)."""
    return zlib.crc32(repr(parts).encode())


def family_device(name, lut):
    """The test device of family case ``name`` (``lut``: the ``lut_device`` fixture)."""
    return {
        "exp_d2d": lambda: devices.get(
            "ag_a_si", sigma_nl=1.0, sigma_levels=0.1, sigma_gmin=0.1, sigma_gmax=0.05
        ),
        "exp_mixed_signs": lambda: devices.get("gst_pcm", sigma_nl=0.5),
        "linear": lambda: devices.get("ideal", levels_ltp=64, levels_ltd=48),
        "constant_step": lambda: devices.get("constant_step"),
        "soft_bounds": lambda: devices.get("soft_bounds"),
        "linear_step": lambda: devices.StepDevice(
            model="linear_step",
            gamma_up=0.6,
            gamma_down=1.4,
            up_down=0.1,
            dw_min=0.01,
            variability=devices.Variability().replace(sigma_step=0.2, sigma_bounds=0.1),
        ),
        "lut": lambda: lut.with_variability(sigma_gmax=0.05, sigma_gmin=0.05),
    }[name]()


class State:
    """Flat device state for the kernels, built from a DeviceArray's sampled parameters."""

    def __init__(self, dev, shape, k, seed, rng):
        mapping = "differential" if k == 2 else "reference"
        arr = devices.DeviceArray(shape, dev, mapping=mapping, seed=seed, backend="numpy")
        n = arr.n_devices
        self.fam = dev.family
        self.prm, self.const, self.lut_up, self.lut_dn = arr.prm, arr.const, arr.lut_up, arr.lut_dn
        self.gmin_i, self.gmax_i = arr.gmin_i, arr.gmax_i
        self.P = max(dev.levels("ltp"), dev.levels("ltd"))
        self.G = arr.gmin_i + rng.uniform(0, 1, n) * (arr.gmax_i - arr.gmin_i)
        self.G[:3] = arr.gmin_i[:3]
        self.G[3:6] = arr.gmax_i[3:6]
        self.Gw = self.G * 1.01
        self.tau = rng.uniform(0, 100, n)
        self.frozen = (rng.random(n) < 0.1).astype(np.uint8)
        self.budget = np.where(rng.random(n) < 0.3, rng.integers(1, 40, n), np.inf).astype(float)
        self.cnt_up = rng.integers(0, 15, n).astype(np.int64)
        self.cnt_dn = rng.integers(0, 15, n).astype(np.int64)
        self.cnt_prog = rng.integers(0, 5, n).astype(np.int64)
        self.cnt_reset = rng.integers(0, 2, n).astype(np.int64)
        # the weight cache the update kernels keep current
        self.alpha = arr.alpha
        self.gref = -1.0 if k == 2 else arr.g_ref
        self.N = n // k
        self.W = self.alpha * (self.G[: self.N] - (self.G[self.N :] if k == 2 else self.gref))

    def copy(self):
        c = object.__new__(State)
        c.__dict__.update(
            {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in self.__dict__.items()}
        )
        return c

    def assert_equal(self, other):
        np.testing.assert_allclose(self.G, other.G, rtol=RTOL, atol=0)
        np.testing.assert_allclose(self.Gw, other.Gw, rtol=RTOL, atol=0)
        np.testing.assert_allclose(self.W, other.W, rtol=RTOL, atol=1e-15)
        for k in ("tau", "frozen", "cnt_up", "cnt_dn", "cnt_prog", "cnt_reset"):
            np.testing.assert_array_equal(getattr(self, k), getattr(other, k), err_msg=k)

    def dev_args(self):
        """The device-model arguments of every kernel, in kernel order."""
        return (self.fam, self.prm, self.const, self.lut_up, self.lut_dn)

    def cnt_args(self):
        """The freeze/endurance/counter arguments of every kernel, in kernel order."""
        return (self.frozen, self.budget, self.cnt_up, self.cnt_dn, self.cnt_prog, self.cnt_reset)


def call_write(mod, s, n, c2c, base, prog):
    mod.write(s.G, s.Gw, s.tau, n, *s.dev_args(), c2c, base, *s.cnt_args(), prog)


def call_update(mod, s, c2c, bases, xbits, dbits, xneg, dneg, n_out, n_in, route):
    return mod.pulse_update(
        s.G, s.Gw, s.tau, *s.dev_args(), c2c, bases, *s.cnt_args(), xbits, dbits, xneg, dneg,
        n_out, n_in, route, s.W, s.alpha, s.gref,
    )  # fmt: skip


def draw_trains(rng, arr, B, n_out, n_in, bl):
    """Random signed pulse trains for ``B`` samples (``bl`` long at most; sample 1 empty)."""
    BL = rng.integers(1, bl + 1, B)
    BL[0] = bl
    px = rng.uniform(0, 1, (B, n_in)) * (rng.random((B, n_in)) < 0.8)
    pd = rng.uniform(0, 1, (B, n_out))
    px[1] = 0.0  # an empty sample
    xbits = arr._draw_bits(px, BL, bl)
    dbits = arr._draw_bits(pd, BL, bl)
    xneg = rng.random((B, n_in)) < 0.5
    dneg = rng.random((B, n_out)) < 0.5
    return xbits, dbits, xneg, dneg
