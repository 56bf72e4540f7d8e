"""numpy's own BLAS matrix-vector product and ``tanh`` loop, called from compiled code.

The fused batch-1 presentation (:func:`devices.kernels.online.present_block`) must compute the
numbers the general path computes with numpy (``MLP.forward`` / ``MLP.backward``): a
layer's read is ``np.matmul`` of one row, which numpy hands to its BLAS as a matrix-vector
product (``cblas_dgemv``), and the logistic is formed from ``np.tanh``, numpy's own SIMD loop
(not the C library's ``tanh``, whose last bits differ). Reimplementing either would change the
last bits of the results. This module finds the same two functions numpy calls, the ILP64
``cblas_dgemv`` of the BLAS numpy is linked to and the float64 inner loop of ``np.tanh``, and
calls them from numba through their addresses (:func:`gemv`, :func:`tanh_loop`), with the
arguments numpy passes, so the products and activations are numpy's bit for bit.

Whether that holds is checked on this installation, not assumed: :func:`hooks` compares both
calls with numpy on test rows (the layer shapes of the caller included) and returns ``None``
when a symbol is missing or any bit differs; the caller then keeps the numpy path. The
addresses travel as integer arguments (a ctypes function as a global would be baked into the
compiled code and keep numba from caching it).
"""

from __future__ import annotations

import ctypes
import functools
import struct
import sys
import sysconfig
from pathlib import Path

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

__all__ = ["Hooks", "hooks", "gemv", "tanh_loop", "row_times", "row_tanh"]

#: cblas enums (``cblas.h``)
ROW_MAJOR = 101
COL_MAJOR = 102
TRANS = 112
#: ILP64 names of ``cblas_dgemv`` (64-bit integer arguments) in the BLAS builds numpy ships
#: (``scipy-openblas64``) or links to
_GEMV_NAMES = ("scipy_cblas_dgemv64_", "cblas_dgemv64_")


class Hooks(tuple):
    """``(gemv, tanh, tanh_data)``: the addresses of numpy's ILP64 ``cblas_dgemv``, of the
    float64 loop of ``np.tanh`` and of that loop's data pointer (see :func:`hooks`)."""

    __slots__ = ()


@intrinsic
def _gemv_call(typingctx, fn, order, m, n, a, lda, x, y):
    """``cblas_dgemv(order, Trans, m, n, 1.0, a, lda, x, 1, 0.0, y, 1)`` through the address
    ``fn`` (addresses and sizes as int64)."""
    sig = types.void(types.int64, types.int64, types.int64, types.int64, types.int64,
                     types.int64, types.int64, types.int64)  # fmt: skip

    def codegen(context, builder, signature, args):
        fn_, order_, m_, n_, a_, lda_, x_, y_ = args
        i32, i64, dbl = ir.IntType(32), ir.IntType(64), ir.DoubleType()
        ptr = ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(
            ir.VoidType(), [i32, i32, i64, i64, dbl, ptr, i64, ptr, i64, dbl, ptr, i64]
        )
        f = builder.inttoptr(fn_, fnty.as_pointer())
        one64 = ir.Constant(i64, 1)
        builder.call(
            f,
            [
                builder.trunc(order_, i32),
                ir.Constant(i32, TRANS),
                m_,
                n_,
                ir.Constant(dbl, 1.0),
                builder.inttoptr(a_, ptr),
                lda_,
                builder.inttoptr(x_, ptr),
                one64,
                ir.Constant(dbl, 0.0),
                builder.inttoptr(y_, ptr),
                one64,
            ],
        )
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _loop_call(typingctx, fn, args, dims, steps, data):
    """A numpy inner loop ``fn(char **args, npy_intp *dims, npy_intp *steps, void *data)``."""
    sig = types.void(types.int64, types.int64, types.int64, types.int64, types.int64)

    def codegen(context, builder, signature, argv):
        fn_, args_, dims_, steps_, data_ = argv
        ptr = ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [ptr, ptr, ptr, ptr])
        f = builder.inttoptr(fn_, fnty.as_pointer())
        builder.call(f, [builder.inttoptr(v, ptr) for v in (args_, dims_, steps_, data_)])
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, inline="always", error_model="numpy")
def _addr(a):
    return np.int64(a.ctypes.data)


@njit(cache=True, inline="always", error_model="numpy")
def gemv(fn, W, x, y, trans):
    """``y = x @ W.T`` (``trans`` False: ``W`` of shape (out, in), ``x`` of ``in``) or
    ``y = x @ W`` (``trans`` True: ``x`` of ``out``, ``y`` of ``in``) for a C-contiguous
    2-D ``W`` given flat, as ``np.matmul`` of the 1-row ``x`` computes them: the BLAS call numpy
    makes for a row times a matrix, ``fn`` its address. ``W.size`` must be ``x.size * y.size``."""
    if trans:  # d @ W: W row-major (out, in), transposed
        _gemv_call(fn, ROW_MAJOR, x.size, y.size, _addr(W), y.size, _addr(x), _addr(y))
    else:  # a @ W.T: W (out, in) read column-major as (in, out), transposed
        _gemv_call(fn, COL_MAJOR, x.size, y.size, _addr(W), x.size, _addr(x), _addr(y))


@njit(cache=True, inline="always", error_model="numpy")
def tanh_loop(fn, data, z, scratch):
    """``np.tanh(z, out=z)`` for a contiguous float64 ``z``: numpy's loop at address ``fn``
    (``data``: its data pointer) on the whole row in one call, as numpy calls it.
    ``scratch``: an int64 array of at least 5 entries (the loop's argument arrays)."""
    p = _addr(z)
    scratch[0] = p  # args: input, output
    scratch[1] = p
    scratch[2] = z.size  # dimensions
    scratch[3] = 8  # steps
    scratch[4] = 8
    base = _addr(scratch)
    _loop_call(fn, base, base + 16, base + 24, data)


@njit(cache=True, error_model="numpy")
def row_times(fn, W, x, y, trans):
    """:func:`gemv` as a kernel of its own (the self-check of :func:`hooks`)."""
    gemv(fn, W, x, y, trans)


@njit(cache=True, error_model="numpy")
def row_tanh(fn, data, z):
    """:func:`tanh_loop` as a kernel of its own (the self-check of :func:`hooks`)."""
    tanh_loop(fn, data, z, np.empty(5, np.int64))


def _tanh_loop_address():
    """Address and data pointer of the float64 loop ``np.tanh`` uses (the first ``d->d`` of
    its loop list: the ufunc's type resolution takes the first match), read from the public
    ``PyUFuncObject`` layout (``numpy/ufuncobject.h``: after the object header, four ints, then
    the ``functions`` and ``data`` arrays and ``ntypes``)."""
    if (
        sys.implementation.name != "cpython"
        or sysconfig.get_config_var("Py_GIL_DISABLED")  # another object header
        or struct.calcsize("P") != 8
    ):
        return None
    uf = np.tanh
    head = ctypes.string_at(id(uf), 16 + 16 + 8 + 8 + 4)
    _, _, nin, nout, _, _, functions, data, ntypes = struct.unpack("qqiiiiqqi", head)
    if (nin, nout) != (1, 1) or ntypes != len(uf.types) or not functions:
        return None
    k = uf.types.index("d->d")
    fn = (ctypes.c_void_p * ntypes).from_address(functions)[k]
    dp = (ctypes.c_void_p * ntypes).from_address(data)[k] if data else None
    return (fn, dp or 0) if fn else None


def _gemv_address():
    """Address of an ILP64 ``cblas_dgemv`` of a BLAS library loaded in this process, numpy's
    own first (the libraries ``threadpoolctl`` finds, those installed with numpy ahead of the
    others; the self-check of :func:`hooks` decides whether the products are numpy's)."""
    from threadpoolctl import threadpool_info

    home = str(Path(np.__file__).resolve().parent.parent)
    paths = [i["filepath"] for i in threadpool_info() if i.get("user_api") == "blas"]
    paths.sort(key=lambda f: not (f.startswith(home) and "numpy" in Path(f).parent.name))
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in _GEMV_NAMES:
            fn = getattr(lib, name, None)
            if fn is not None:
                return ctypes.cast(fn, ctypes.c_void_p).value
    return None


def _same(a, b) -> bool:
    return a.shape == b.shape and np.array_equal(a.view(np.uint64), b.view(np.uint64))


@functools.cache
def hooks(shapes: tuple = ()) -> Hooks | None:
    """numpy's ``cblas_dgemv`` and ``tanh`` loop, checked against numpy, or ``None``.

    Parameters
    ----------
    shapes : tuple of (int, int)
        Layer shapes ``(out, in)`` the caller will multiply (checked with the fixed test
        shapes; a shape with one output or one input is refused: numpy takes a dot product
        for one output, and one input is not a case the hooks are checked for).

    Returns
    -------
    Hooks or None
        ``None`` when a symbol is missing, a shape has one output or one input, or any bit of
        a test row differs from ``np.matmul`` / ``np.tanh``.
    """
    try:
        fn = _gemv_address()
        th = _tanh_loop_address()
    except (OSError, ValueError, AttributeError, ImportError, KeyError):
        return None
    if fn is None or th is None or any(o < 2 or i < 2 for o, i in shapes):
        return None
    rng = np.random.default_rng(20261205)
    for out, inp in {(2, 3), (10, 100), (100, 400), (7, 129), *shapes}:
        W = rng.normal(size=(out, inp)) * rng.uniform(0.01, 2.0)
        x = rng.normal(size=(1, inp)) * (rng.uniform(size=inp) < 0.6)
        d = rng.normal(size=(1, out))
        y = np.empty(out)
        b = np.empty(inp)
        row_times(fn, W.reshape(-1), x[0], y, False)
        row_times(fn, W.reshape(-1), d[0], b, True)
        if not (_same(y, np.matmul(x, W.T)[0]) and _same(b, np.matmul(d, W)[0])):
            return None
    z = np.concatenate(
        [rng.normal(scale=s, size=n) for s, n in ((0.3, 257), (3.0, 100), (30.0, 31), (1e-6, 9))]
        + [np.array([0.0, -0.0, 20.0, -20.0, 1e-310, np.inf, -np.inf, 710.0])]
    )
    for n in (1, 7, 100, z.size):
        t = z[:n].copy()
        row_tanh(th[0], th[1], t)
        if not _same(t, np.tanh(z[:n])):
            return None
    return Hooks((fn, th[0], th[1]))
