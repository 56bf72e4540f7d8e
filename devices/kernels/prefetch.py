"""Software prefetch for the numba kernels: ask the processor to bring a cache line in ahead of use.

A sparse update writes devices scattered over a state far larger than the cache (the torch
bridge's 784-256 layer: one coincidence every few hundred synapses), and each write of a device
touches a dozen per-device arrays (conductances, counters, parameter rows): a dozen cache misses
in a chain the processor cannot see past, because the next write's addresses come from the
next coincidence, which the out-of-order window does not reach. :func:`prefetch` issues the
loads of a write a few coincidences ahead (LLVM's ``llvm.prefetch``, an x86 ``prefetchw`` or an
AArch64 ``prfm``), so the misses of successive writes overlap. A prefetch has no effect on any
value: results are bit for bit those without it.

Both functions are numba intrinsics, callable from jitted code only.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["prefetch", "prefetch_row"]

# llvm.prefetch(ptr, rw, locality, cache type): a write (1), keep in all levels (3), data (1)
_RW, _LOCALITY, _DATA = 1, 3, 1


def _emit(context, builder, sig, args):
    aryty = sig.args[0]
    ary = context.make_array(aryty)(context, builder, args[0])
    pairs = zip(args[1:], sig.args[1:], strict=True)
    indices = [context.cast(builder, v, t, types.intp) for v, t in pairs]
    ptr = cgutils.get_item_pointer(context, builder, aryty, ary, indices, wraparound=False,
                                   boundscheck=False)  # fmt: skip
    i8p = builder.bitcast(ptr, ir.IntType(8).as_pointer())
    i32 = ir.IntType(32)
    fnty = ir.FunctionType(ir.VoidType(), [i8p.type, i32, i32, i32])
    fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
    builder.call(fn, [i8p] + [ir.Constant(i32, v) for v in (_RW, _LOCALITY, _DATA)])
    return context.get_dummy_value()


@intrinsic
def prefetch(typingctx, arr, i):
    """Prefetch (for writing) the cache line of ``arr[i]`` (a 1-d array, ``i`` an integer in
    range: an address outside the array is not an error for the processor, but is never
    useful)."""
    if not (isinstance(arr, types.Array) and arr.ndim == 1 and isinstance(i, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        return _emit(context, builder, sig, args)

    return types.void(arr, i), codegen


@intrinsic
def prefetch_row(typingctx, arr, r, i):
    """Prefetch (for writing) the cache line of ``arr[r, i]`` (a 2-d array)."""
    ok = isinstance(arr, types.Array) and arr.ndim == 2
    if not (ok and isinstance(r, types.Integer) and isinstance(i, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        return _emit(context, builder, sig, args)

    return types.void(arr, r, i), codegen
