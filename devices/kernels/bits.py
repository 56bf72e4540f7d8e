"""Bit tricks for the numba kernels: the index of a word's lowest set bit, and eight 0/1 bytes
gathered into eight bits.

:func:`trailing_zeros` is a numba intrinsic (LLVM's ``cttz``: one ``tzcnt`` on x86 with BMI1),
callable from jitted code only. :data:`PACK8` gathers the eight bytes of a little-endian word
that each hold 0 or 1 into the top byte: ``(word * PACK8) >> 56`` has bit ``i`` set iff byte
``i`` is 1 (the products of distinct bytes land in distinct bits, so no carry reaches the top
byte). :data:`LITTLE_ENDIAN` says whether a uint8 array viewed as uint64 puts byte 0 lowest, as
that trick needs.
"""

from __future__ import annotations

import sys

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

__all__ = ["LITTLE_ENDIAN", "PACK8", "trailing_zeros"]

PACK8 = np.uint64(0x0102040810204080)
LITTLE_ENDIAN = sys.byteorder == "little"


@intrinsic
def trailing_zeros(typingctx, x):
    """The number of trailing zero bits of the unsigned 64-bit integer ``x`` (64 for 0)."""
    if not (isinstance(x, types.Integer) and x.bitwidth == 64 and not x.signed):
        return None

    def codegen(context, builder, sig, args):
        # the flag False: defined (64) for a zero input
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 0))

    return types.uint64(types.uint64), codegen
