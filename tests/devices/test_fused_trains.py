"""The fused host path of ``DeviceArray.pulse_update`` on numba arrays (issue 15): train lengths,
probabilities, signs, call bases and the finite check in one compiled pass, the trains of ``x``
and ``d`` from the generator's next outputs (PCG64's drawn in compiled code by
``devices._pcg64``, other generators' as one block). It must give the run of the numpy path
(``array_update._FUSED_TRAINS = False``, the code it replaced) bit for bit: the same pulses,
device states, weights, counters and generator state, step after step."""

from __future__ import annotations

import numpy as np
import pytest

import devices
from devices import _rng, array_update


def _run(monkeypatch, fused, *, shape, batch, steps=3, seed=3, odd=False, philox=False,
         zero_rows=True, scale=1.0, **kw):  # fmt: skip
    monkeypatch.setattr(array_update, "_FUSED_TRAINS", fused)
    mapping = kw.pop("mapping", "reference")
    arr = devices.DeviceArray(
        shape, devices.get("constant_step"), mapping=mapping, seed=seed, backend="numba"
    )
    if philox:  # another bit generator: the uniforms come from Generator.random
        arr._rng = np.random.Generator(np.random.Philox(seed))
    if odd:  # a pending 32-bit half in PCG64's state
        arr._rng.random(1, dtype=np.float32)
    r = np.random.default_rng(seed + 1)
    outs = []
    for _ in range(steps):
        x = r.uniform(-1, 1, (batch, shape[1])) * scale
        d = r.uniform(-1, 1, (batch, shape[0])) * scale
        x[:, : shape[1] // 3] = np.maximum(x[:, : shape[1] // 3], 0.0)  # some zeros
        if zero_rows and batch > 1:
            x[0] = 0.0  # inactive samples: probability 0 on their rows
            d[1] = 0.0
        o = arr.pulse_update(x if batch > 1 else x[0], d if batch > 1 else d[0], **kw)
        outs.append((o["coincidences"], o["clipped"], np.asarray(o["bl"]).tolist()))
    return arr, outs


CASES = [
    dict(shape=(6, 9), batch=5, lr=0.1),
    dict(shape=(6, 9), batch=5, lr=0.2, bl=100, odd=True, mapping="differential"),
    dict(shape=(6, 9), batch=1, lr=0.1, bl_management=False, odd=True, method="unidirectional",
         mapping="differential"),
    dict(shape=(6, 9), batch=3, lr=0.5, update_management=False, scale=30.0),  # clipping
    dict(shape=(5, 7), batch=4, lr=0.3, bl=256, bl_management=False, side="plus",
         mapping="differential"),
    dict(shape=(7, 5), batch=3, lr=0.1, philox=True),
    dict(shape=(7, 5), batch=3, lr=0.1, philox=True, bl=70, bl_management=False),
    dict(shape=(40, 120), batch=10, lr=0.01),  # the training regime: one block
    dict(shape=(40, 120), batch=10, lr=0.01, philox=True),
    dict(shape=(40, 120), batch=16, lr=0.01, bl=200, bl_management=False),  # blocks of samples
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=range(len(CASES)))
def test_fused_path_is_the_numpy_path(monkeypatch, case):
    a, oa = _run(monkeypatch, True, **case)
    b, ob = _run(monkeypatch, False, **case)
    assert oa == ob
    assert a.counter == b.counter
    np.testing.assert_equal(a._rng.bit_generator.state, b._rng.bit_generator.state)
    for k, v, w in zip(a.state._fields, a.state, b.state, strict=True):
        np.testing.assert_array_equal(v, w, err_msg=k)
    np.testing.assert_array_equal(a.weights(), b.weights())


def test_small_blocks_are_the_same_numbers(monkeypatch):
    """Forced into blocks of a sample or less, the fused path still draws the same trains
    (blocks are drawn for bit generators other than PCG64, whose trains devices/_pcg64.py
    draws in one pass)."""
    case = dict(shape=(9, 13), batch=6, lr=0.2, bl=40, bl_management=False, philox=True)
    b, ob = _run(monkeypatch, False, **case)
    monkeypatch.setattr(array_update, "_RAW_BLOCK", 5)
    a, oa = _run(monkeypatch, True, **case)
    assert oa == ob
    np.testing.assert_equal(a._rng.bit_generator.state, b._rng.bit_generator.state)
    np.testing.assert_array_equal(a.G, b.G)


def test_setup_values_are_the_numpy_values():
    """:func:`_train_setup` against the numpy arithmetic it replaces, on rough inputs."""
    r = np.random.default_rng(0)
    B, nx, nd = 7, 11, 5
    x = r.normal(size=(B, nx)) * np.exp(r.uniform(-20, 20, (B, 1)))
    d = r.normal(size=(B, nd)) * np.exp(r.uniform(-20, 20, (B, 1)))
    x[2] = 0.0
    d[4] = -0.0
    lr, dw, bl, key, counter = 0.37, 1.7e-3, 31, 2**64 - 5, 2**63 + 11
    for blm in (True, False):
        for um in (True, False):
            BL = np.empty(B, np.int64)
            thx, thd = np.empty((B, nx), np.uint32), np.empty((B, nd), np.uint32)
            xn, dn = np.empty((B, nx), bool), np.empty((B, nd), bool)
            bases = np.empty(B, np.uint64)
            clipped, bad = array_update._train_setup(
                x, d, lr, dw, bl, blm, um, np.uint64(key), np.uint64(counter), BL, thx, thd,
                xn, dn, bases,
            )  # fmt: skip
            assert bad == 0
            # the numpy path of pulse_update
            xm, dm = np.abs(x).max(axis=1), np.abs(d).max(axis=1)
            act = (xm > 0) & (dm > 0)
            xs, ds = np.where(act, xm, 1.0), np.where(act, dm, 1.0)
            if blm:
                BLn = np.clip(np.ceil(lr * xs * ds / dw), 1, bl).astype(np.int64)
            else:
                BLn = np.full(B, bl, dtype=np.int64)
            C = np.sqrt(lr / (dw * BLn))
            fx, fd = (C * np.sqrt(ds / xs), C * np.sqrt(xs / ds)) if um else (C, C)
            px = np.where(act, fx, 0.0)[:, None] * np.abs(x)
            pd = np.where(act, fd, 0.0)[:, None] * np.abs(d)
            assert clipped == np.count_nonzero(px > 1) + np.count_nonzero(pd > 1)
            np.testing.assert_array_equal(BL, BLn)
            for th, p in ((thx, px), (thd, pd)):
                p32 = np.minimum(p, 1.0).astype(np.float32)
                np.testing.assert_array_equal(th, np.ceil(p32 * np.float32(2**24)))
            np.testing.assert_array_equal(xn, x < 0)
            np.testing.assert_array_equal(dn, d < 0)
            np.testing.assert_array_equal(bases, _rng.call_bases(key, counter, B))


@pytest.mark.parametrize("bad", ["x", "d"])
def test_non_finite_input_changes_nothing(bad):
    arr = devices.DeviceArray((4, 6), devices.get("constant_step"), seed=1, backend="numba")
    before = arr.state_dict()
    rng_state, counter = arr._rng.bit_generator.state, arr.counter
    x, d = np.ones((3, 6)), np.ones((3, 4))
    (x if bad == "x" else d)[2, 1] = np.inf if bad == "x" else np.nan
    with pytest.raises(ValueError, match=f"{bad} contains NaN or infinite values"):
        arr.pulse_update(x, d, 0.1)
    assert arr._rng.bit_generator.state == rng_state and arr.counter == counter
    for k, v in arr.state_dict().items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)


def test_seeded_stochastic_training_is_unchanged(monkeypatch):
    """A seeded training run with the stochastic rule: the fused path gives the numpy path's
    run (metrics, pulse counts, weights) exactly."""
    from synapse_sim.data.datasets import load_dataset
    from synapse_sim.studies.train import RunSpec, TrainConfig, train

    cfg = TrainConfig(
        dataset="digits", hidden=(16,), epochs=2, max_train=200, batch_size=10, seed=2, lr=(0.05,)
    )
    data = load_dataset("digits", seed=2)
    res, calls = [], []
    setup = array_update._train_setup

    def counted(*a):
        calls.append(1)
        return setup(*a)

    monkeypatch.setattr(array_update, "_train_setup", counted)
    for fused in (True, False):
        monkeypatch.setattr(array_update, "_FUSED_TRAINS", fused)
        res.append(
            train(cfg, [RunSpec(device="constant_step", rule="stochastic")], data=data,
                  progress=False)
        )  # fmt: skip
    (a, b) = res
    # the first run took the fused path: 2 layers, 20 steps, 2 epochs
    assert len(calls) == 2 * 20 * 2
    for k, v in a.history["constant_step-stochastic"].items():
        if k != "epoch_time":
            assert v == b.history["constant_step-stochastic"][k], k
    assert a.history["constant_step-stochastic"]["pulses"][-1] > 0
    for wa, wb in zip(
        a.weights["constant_step-stochastic"], b.weights["constant_step-stochastic"], strict=True
    ):
        np.testing.assert_array_equal(wa, wb)


def test_abs_max_bits_is_the_largest_magnitude_and_flags_non_finite():
    """The integer maximum behind :func:`_train_setup`'s maxima and finite check: the bits of
    ``max |v|`` for finite rows (signed zeros, subnormals, the largest double, mixed signs),
    and at or above +inf's bits for any inf or NaN of either sign."""
    tiny = np.nextafter(0.0, 1.0)
    big = np.finfo(np.float64).max
    rows = [
        [0.0, -0.0],
        [-0.0],
        [tiny, -tiny, 0.0],
        [-3.5, 2.0, 3.25, -1e-300],
        [big, -big, 1.0],
        [-5e-324, 1e-310, -2e-310],
    ]
    r = np.random.default_rng(4)
    rows.append(list(r.normal(size=1001) * np.exp(r.uniform(-700, 700, 1001))))
    for row in rows:
        v = np.array(row, dtype=np.float64)
        m = array_update._abs_max_bits(v.view(np.uint64))
        assert m < array_update._INF_BITS
        got = np.array([m], dtype=np.uint64).view(np.float64)[0]
        assert got == np.abs(v).max() and not np.signbit(got)
    nan_neg = np.array([-np.nan]).view(np.uint64) | np.uint64(1 << 63)
    for bad in (np.inf, -np.inf, np.nan, nan_neg.view(np.float64)[0]):
        v = np.array([1.0, bad, -2.0])
        assert array_update._abs_max_bits(v.view(np.uint64)) >= array_update._INF_BITS
