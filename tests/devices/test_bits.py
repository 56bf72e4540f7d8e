"""The bit helpers of ``devices/kernels/bits.py``: ``trailing_zeros`` (LLVM's ``cttz``) against
its definition, ``PACK8``'s byte gather against numpy's own packing, the typing refusals, and the
cache guard of the kernel module that compiles them in."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit
from numba.core.errors import TypingError

from devices.kernels.bits import LITTLE_ENDIAN, PACK8, trailing_zeros


@njit(cache=False)
def _tz(x):
    return trailing_zeros(x)


def test_trailing_zeros_equals_its_definition():
    rng = np.random.default_rng(0)
    words = [int(w) for w in rng.integers(1, 2**63, 200, dtype=np.uint64)]
    words += [1 << k for k in range(64)] + [(1 << 64) - 1, 3 << 62, 1 << 63]
    for w in words:
        want = (w & -w).bit_length() - 1  # the position of the lowest set bit
        assert _tz(np.uint64(w)) == want, hex(w)
    assert _tz(np.uint64(0)) == 64  # defined for zero


def test_trailing_zeros_refuses_other_types():
    @njit(cache=False)
    def signed(x):
        return trailing_zeros(x)

    with pytest.raises(TypingError):
        signed(np.int64(4))
    with pytest.raises(TypingError):
        signed(4.0)


@pytest.mark.skipif(not LITTLE_ENDIAN, reason="PACK8 gathers the bytes of little-endian words")
def test_pack8_gathers_bytes_into_bits_like_packbits():
    rng = np.random.default_rng(1)
    flags = (rng.random((500, 8)) < 0.5).astype(np.uint8)
    flags[0] = 0
    flags[1] = 1
    got = (flags.view(np.uint64)[:, 0] * PACK8) >> np.uint64(56)
    want = np.packbits(flags, axis=1, bitorder="little")[:, 0]
    np.testing.assert_array_equal(got, want.astype(np.uint64))


def test_kernel_module_that_compiles_them_in_is_guarded():
    import devices.kernels.numba_cpu as nb

    assert '"bits.py"' in open(nb.__file__).read()
