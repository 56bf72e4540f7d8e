"""``devices.array_update.uniform24``: numpy's float32 uniforms as 24-bit integers, drawn in one
block, must be the very numbers of ``Generator.random(dtype=float32)`` and leave the generator
where ``random`` leaves it (the pulse trains of a seeded run stay bit for bit, issue 15)."""

from __future__ import annotations

import numpy as np
import pytest

import devices
from devices import array_update
from devices.array_update import uniform24


def _twins(seed, before):
    """Two generators in the same state, after ``before`` float32 draws (an odd count leaves a
    pending 32-bit half in PCG64's state)."""
    a, b = np.random.default_rng(seed), np.random.default_rng(seed)
    for g in (a, b):
        g.random(before, dtype=np.float32)
    return a, b


@pytest.mark.parametrize("before", [0, 1, 2, 3])
@pytest.mark.parametrize(
    "shape", [(1,), (2,), (3, 5), (4, 7, 31), (2, 3, 64), (0, 4), (1, 1, 1), (9, 999), (3, 1001, 7)]
)
def test_same_numbers_and_state_as_random(before, shape):
    a, b = _twins(7, before)
    want = a.random(shape, dtype=np.float32)
    got = uniform24(b, shape)
    assert got.shape == want.shape and got.dtype == np.uint32
    assert int(got.max(initial=0)) < (1 << 24)
    np.testing.assert_array_equal(got.astype(np.float32) * np.float32(2.0**-24), want)
    assert a.bit_generator.state == b.bit_generator.state
    # and every later draw agrees, in either precision
    np.testing.assert_array_equal(a.random(5, dtype=np.float32), b.random(5, dtype=np.float32))
    np.testing.assert_array_equal(a.random(3), b.random(3))


def test_long_sequence_of_mixed_draws():
    a, b = np.random.default_rng(11), np.random.default_rng(11)
    sizes = np.random.default_rng(0).integers(0, 50, size=40)
    for n in sizes:
        want = a.random(int(n), dtype=np.float32)
        got = uniform24(b, (int(n),))
        np.testing.assert_array_equal(got * np.float32(2.0**-24), want)
        if n % 3 == 0:  # interleave draws of other kinds
            np.testing.assert_array_equal(a.normal(size=2), b.normal(size=2))
    assert a.bit_generator.state == b.bit_generator.state


def test_other_bit_generators_take_random():
    a, b = np.random.Generator(np.random.Philox(3)), np.random.Generator(np.random.Philox(3))
    want = a.random((3, 9), dtype=np.float32)
    np.testing.assert_array_equal(uniform24(b, (3, 9)) * np.float32(2.0**-24), want)
    np.testing.assert_equal(a.bit_generator.state, b.bit_generator.state)


@pytest.mark.parametrize("path", ["fused", "blocks"])
@pytest.mark.parametrize("odd", [False, True])
@pytest.mark.parametrize(
    "B,n,bls",
    [
        (3, 9, (31, 5, 17)),  # few numbers: the float uniforms themselves
        (4, 700, (31, 31, 12, 31)),  # integers, two blocks of samples (3 + 1)
        (3, 3001, (31, 1, 30)),  # one sample per block, odd counts per block
        (2, 1200, (3, 2)),  # short trains: one byte of bits
        (2, 300, (100, 64)),  # two words per train
    ],
)
def test_draw_bits_match_the_float_definition(odd, B, n, bls, path, monkeypatch):
    """The array's trains equal the trains of the float comparison, with the generator left
    where the float draws leave it (also after an odd number of earlier draws), on both paths:
    the compiled bit-by-bit pass (few numbers) and the blocks of raw integers."""
    monkeypatch.setattr(array_update, "_FUSED_MAX", 1 << 40 if path == "fused" else -1)
    arr = devices.DeviceArray((6, 9), devices.get("constant_step"), seed=4)
    if odd:
        arr._rng.random(1, dtype=np.float32)
    twin = np.random.default_rng()
    twin.bit_generator.state = arr._rng.bit_generator.state
    p = np.random.default_rng(1).random((B, n))
    p[0, :3] = (0.0, 1.0, np.nextafter(np.float32(0.5), np.float32(0)))
    BL = np.array(bls)
    bl = max(31, int(BL.max()))
    words = arr._draw_bits(p, BL, bl)
    nw = (bl + 63) // 64
    assert words.shape == (B, n, nw) and words.dtype == np.uint64
    used = int(BL.max())
    u = twin.random((B, n, used), dtype=np.float32)
    want = np.zeros((B, n, 64 * nw), dtype=bool)
    want[:, :, :used] = (u < p[:, :, None].astype(np.float32)) & (
        np.arange(used) < BL[:, None, None]
    )
    t = np.arange(64 * nw)
    got = (words[:, :, t // 64] >> (t % 64).astype(np.uint64)) & np.uint64(1)
    np.testing.assert_array_equal(got.astype(bool), want)
    assert arr._rng.bit_generator.state == twin.bit_generator.state
