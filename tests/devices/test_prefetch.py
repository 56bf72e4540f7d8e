"""The prefetch intrinsics of ``devices/kernels/prefetch.py``: they compile for 1-d and 2-d arrays
of any layout and integer index type, change no value, refuse other arguments at typing time,
and every kernel module that compiles them in is guarded against a stale numba cache."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit
from numba.core.errors import TypingError

from devices.kernels.prefetch import prefetch, prefetch_row


@njit(cache=False)
def _touch_all(a, b):
    """Prefetch every element of ``a`` (1-d) and ``b`` (2-d), then sum both."""
    for i in range(a.size):
        prefetch(a, i)
    for r in range(b.shape[0]):
        for i in range(b.shape[1]):
            prefetch_row(b, r, np.int32(i))
    return a.sum() + b.sum()


@njit(cache=False)
def _sum_only(a, b):
    return a.sum() + b.sum()


@pytest.mark.parametrize("order", ["C", "F"])
def test_prefetch_changes_nothing(order):
    rng = np.random.default_rng(0)
    a = rng.random(1000)
    b = np.asarray(rng.random((8, 300)), order=order)
    a0, b0 = a.copy(), b.copy(order="K")
    got = _touch_all(a, b)
    assert got == _sum_only(a0, b0)
    assert np.array_equal(a, a0) and np.array_equal(b, b0)
    # a strided view (neither C nor F contiguous) and an integer array
    v = b[:, ::3]
    c = np.arange(50, dtype=np.int64)
    assert _touch_all(c, v) == _sum_only(c, v)


def test_prefetch_refuses_what_is_not_an_array_index_pair():
    @njit(cache=False)
    def scalar(x):
        prefetch(x, 0)

    @njit(cache=False)
    def float_index(a):
        prefetch(a, 1.5)

    @njit(cache=False)
    def wrong_rank(a):
        prefetch_row(a, 0, 0)

    with pytest.raises(TypingError):
        scalar(1.0)
    with pytest.raises(TypingError):
        float_index(np.zeros(3))
    with pytest.raises(TypingError):
        wrong_rank(np.zeros(3))


def test_kernel_modules_that_compile_it_in_are_guarded():
    import devices.kernels.numba_cpu as nb

    assert '"prefetch.py"' in open(nb.__file__).read()
