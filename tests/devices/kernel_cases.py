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
from devices.kernels.records import DeviceParams, DeviceState

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

    def records(self, c2c):
        """The kernels' two records over this state's arrays (writes land in them)."""
        st = DeviceState.make(**{k: getattr(self, k) for k in DeviceState._fields})
        pa = DeviceParams.make(fam=self.fam, prm=self.prm, const=self.const, lut_up=self.lut_up,
                               lut_dn=self.lut_dn, c2c=c2c, gmin=self.gmin_i)  # fmt: skip
        return st, pa


def call_write(mod, s, n, c2c, base, prog):
    mod.write(*s.records(c2c), n, base, prog)


def call_update(mod, s, c2c, bases, xbits, dbits, xneg, dneg, n_out, n_in, route):
    return mod.pulse_update(
        *s.records(c2c), bases, xbits, dbits, xneg, dneg, n_out, n_in, route, s.W, s.alpha,
        s.gref,
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


def check_counters_land_in_their_fields(mod):
    """Through kernel module ``mod``: potentiation counts only in ``cnt_up``, depression only in
    ``cnt_dn``, programming only in ``cnt_prog`` (write, pulse_request, pulse_update, verify),
    each by exactly the pulses sent."""
    dev = devices.get("ideal", levels_ltp=64, levels_ltd=64)
    rng = np.random.default_rng(11)
    n_out, n_in = 4, 5
    s = State(dev, (n_out, n_in), 2, seed=1, rng=rng)
    s.frozen[:] = 0
    s.budget[:] = np.inf
    s.G[:] = dev.gmin + 0.5 * dev.dG
    fields = ("cnt_up", "cnt_dn", "cnt_prog", "cnt_reset")
    for k in fields:
        getattr(s, k)[:] = 0

    def deltas(before):
        return {k: getattr(s, k) - before[k] for k in fields}

    def snap():
        return {k: getattr(s, k).copy() for k in fields}

    def only(d, field, want):
        for k in fields:
            np.testing.assert_array_equal(d[k], want if k == field else 0, err_msg=k)

    n = rng.integers(0, 6, s.G.size).astype(np.int64)
    n[0] = 3  # at least one pulse
    for sign, prog, field in ((1, False, "cnt_up"), (-1, False, "cnt_dn"), (1, True, "cnt_prog")):
        before = snap()
        call_write(mod, s, sign * n, 0.0, np.uint64(5), prog)
        only(deltas(before), field, n)
    # pulse_request: positive requests on G+ only (route 0)
    N = n_out * n_in
    step = 1.0 / 64
    before = snap()
    need = np.zeros(N, dtype=bool)
    sent, bad = mod.pulse_request(*s.records(0.0), np.full(N, 2.0 * step), step, step, 0.5, 0,
                                  False, 0, np.uint64(1), np.uint64(2), 0.0, 0.5 / 64, dev.dG,
                                  need, s.W, s.alpha, s.gref)  # fmt: skip
    d = deltas(before)
    assert (sent, bad) == (2 * N, 0)
    only(d, "cnt_up", np.r_[np.full(N, 2), np.zeros(N, dtype=np.int64)])
    # pulse_update: every coincidence potentiates (signs differ), push-pull: G- depresses
    arr = devices.DeviceArray((n_out, n_in), dev, seed=1, backend="numpy")
    xbits, dbits, _, _ = draw_trains(rng, arr, 3, n_out, n_in, 31)
    xneg = np.zeros((3, n_in), dtype=bool)
    dneg = np.ones((3, n_out), dtype=bool)
    before = snap()
    total = call_update(mod, s, 0.0, np.arange(3, dtype=np.uint64), xbits, dbits, xneg, dneg,
                        n_out, n_in, 1)  # fmt: skip
    d = deltas(before)
    assert total > 0
    assert d["cnt_up"][:N].sum() == total and d["cnt_dn"][N:].sum() == total
    np.testing.assert_array_equal(d["cnt_up"][:N], d["cnt_dn"][N:])
    assert not d["cnt_up"][N:].any() and not d["cnt_dn"][:N].any()
    assert not d["cnt_prog"].any() and not d["cnt_reset"].any()
    # verify: programming pulses only
    idx = np.arange(0, N, 3)
    s.G[idx] = s.gmin_i[idx]
    target = dev.gmin + 0.6 * dev.dG
    x_t = np.full(idx.size, dev.pulses(np.array([target]), "ltp")[0])
    before = snap()
    mod.verify(*s.records(0.0), idx, np.full(idx.size, target), x_t, 1e-3 * dev.dG, 128, 0.0,
               np.uint64(3), 0, dev._nominal()[0])  # fmt: skip
    d = deltas(before)
    assert d["cnt_prog"][idx].min() > 0
    assert not d["cnt_prog"][np.setdiff1d(np.arange(s.G.size), idx)].any()
    assert not d["cnt_up"].any() and not d["cnt_dn"].any() and not d["cnt_reset"].any()
