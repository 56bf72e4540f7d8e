"""numpy's PCG64 stream inside compiled code: the stochastic pulse-train update's trains drawn
and packed in one pass, leaping over the numbers that cannot set a bit.

PCG64 (M. E. O'Neill, "PCG: a family of simple fast space-efficient statistically good
algorithms for random number generation", HMC-CS-2014-0905, 2014; ``numpy.random.PCG64``) keeps
a 128-bit linear congruential state, ``s <- a s + c (mod 2^128)`` with the multiplier
``a = 0x2360ED051FC65DA44385DF649FCCF645`` and the stream's odd increment ``c``; each 64-bit
output is the XSL-RR function of the new state, ``rotr64(hi ^ lo, hi >> 58)``. numpy's 32-bit
draws (``Generator.random(dtype=float32)`` takes one per number: ``(u32 >> 8) 2^-24``) hand out
the low half of an output and keep its high half for the next draw (``has_uint32`` and
``uinteger`` in the generator's state).

The trains of one update take ``B (n_x + n_d) max(BL)`` such numbers in C order (the trains of
``x``, then those of ``d``), but a train whose probability is 0 (a zero input or error: most of
an MNIST image, every inactive relu unit) or 1 sets its bits without looking at them, and the
numbers past a sample's own train length ``BL[b]`` are never looked at either. numpy draws them
all, about 2 ns per 64-bit output here (the state update is a chain of dependent 128-bit
multiplies). :func:`draw_trains` draws only the numbers that decide a bit and leaps over the
others with the LCG's jump-ahead: ``k`` steps are the affine map ``s <- A_k s + C_k``, composed
from a table of the maps of ``2^i`` steps (:func:`jump_table`), so a leap costs a multiply-add
per set bit of ``k`` instead of ``k`` of them. The generator is left in the state numpy's draws
leave it in. The 128-bit arithmetic is LLVM's ``i128`` (:func:`_mul_add`).

The bits are those of ``PulseUpdates._draw_bits`` on the same probabilities: bit ``t`` of train
``(b, r)`` is set iff ``t < BL[b]`` and ``u32 >> 8 < th[b, r]`` for the ``t``-th number of the
train (``th = ceil(float32(p) 2^24)``; tests compare both the bits and the generator state).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

__all__ = ["MULTIPLIER", "draw_trains", "jump_table", "read_state", "write_state"]

#: PCG64's 128-bit LCG multiplier (O'Neill 2014; numpy's ``PCG64``).
MULTIPLIER = 0x2360ED051FC65DA44385DF649FCCF645
_MASK64 = (1 << 64) - 1
_MASK128 = (1 << 128) - 1
#: Bits of the jump table (leaps of up to 2^64 - 1 steps).
_JUMP_BITS = 64
_I128 = ir.IntType(128)
_I64 = ir.IntType(64)
_U64 = types.uint64


@intrinsic
def _mul_add(typingctx, s_hi, s_lo, a_hi, a_lo, c_hi, c_lo):
    """``(s a + c) mod 2^128`` of 128-bit numbers given as ``(hi, lo)`` uint64 halves."""
    sig = types.UniTuple(_U64, 2)(_U64, _U64, _U64, _U64, _U64, _U64)

    def codegen(context, builder, signature, args):
        def join(hi, lo):
            h = builder.shl(builder.zext(hi, _I128), ir.Constant(_I128, 64))
            return builder.or_(h, builder.zext(lo, _I128))

        s = join(args[0], args[1])
        a = join(args[2], args[3])
        c = join(args[4], args[5])
        r = builder.add(builder.mul(s, a), c)
        lo = builder.trunc(r, _I64)
        hi = builder.trunc(builder.lshr(r, ir.Constant(_I128, 64)), _I64)
        return context.make_tuple(builder, signature.return_type, (hi, lo))

    return sig, codegen


@njit(cache=True, inline="always")
def _output(hi, lo):
    """XSL-RR: the 64-bit output of state ``(hi, lo)``."""
    x = hi ^ lo
    r = hi >> np.uint64(58)
    return (x >> r) | (x << ((np.uint64(64) - r) & np.uint64(63)))


@njit(cache=True, inline="always")
def _leap(hi, lo, k, jt):
    """The state ``k >= 1`` steps after ``(hi, lo)``: one multiply-add per set bit of ``k``
    (row 0 of the table is a single step)."""
    i = 0
    while k:
        if k & 1:
            hi, lo = _mul_add(hi, lo, jt[i, 0], jt[i, 1], jt[i, 2], jt[i, 3])
        k >>= 1
        i += 1
    return hi, lo


_LOW32 = np.uint64(0xFFFFFFFF)
_S8 = np.uint64(8)
_S32 = np.uint64(32)
_ONE = np.uint64(1)


@njit(cache=True)
def _trains(hi, lo, taken, out, jt, pending, pend_val, th, BL, used, q0, words):
    """Bits of the trains ``th`` (shape ``(B, n)``) whose numbers start at position ``q0`` of
    the call's stream (``words`` zero on entry). The state ``(hi, lo)`` is ``taken`` steps
    from the call's first state and ``out`` its output (when ``taken > 0``); returns them
    after the trains."""
    B, n = th.shape
    pend = 1 if pending else 0
    a_hi, a_lo, c_hi, c_lo = jt[0, 0], jt[0, 1], jt[0, 2], jt[0, 3]  # one step
    for b in range(B):
        lb = min(BL[b], used)
        for r in range(n):
            t_hr = np.uint64(th[b, r])
            if lb <= 0 or t_hr == 0:
                continue  # no bit set: the numbers are not looked at
            if t_hr >= np.uint64(1 << 24):  # probability 1: every bit below BL[b]
                for t in range(lb):
                    words[b, r, t >> 6] |= _ONE << np.uint64(t & 63)
                continue
            q = q0 + (b * n + r) * used  # the train's first number
            # the bits are set without a branch on the numbers (they are random: a branch on
            # each would be mispredicted half the time), a word at a time
            w = np.uint64(0)
            wi = 0
            t = 0
            if pend and q == 0:  # the pending half
                w = np.uint64((pend_val >> _S8) < t_hr)
                t = 1
            while t < lb:
                f = q + t - pend  # its fresh half
                m = (f >> 1) + 1  # the steps that produce its output
                if m != taken:
                    if m == taken + 1:  # the next output (a train's numbers run on)
                        hi, lo = _mul_add(hi, lo, a_hi, a_lo, c_hi, c_lo)
                    else:
                        hi, lo = _leap(hi, lo, m - taken, jt)
                    taken = m
                    out = _output(hi, lo)
                if (t >> 6) != wi:
                    words[b, r, wi] = w
                    w = np.uint64(0)
                    wi = t >> 6
                u = (out >> _S32) if f & 1 else (out & _LOW32)
                w |= np.uint64((u >> _S8) < t_hr) << np.uint64(t & 63)
                t += 1
            words[b, r, wi] = w
    return hi, lo, taken, out


@njit(cache=True)
def _draw(s_hi, s_lo, jt, pending, pend_val, thx, thd, BL, used, xbits, dbits):
    """The trains of ``x`` and then ``d``; returns ``(hi, lo, has_uint32, uinteger)`` of the
    generator after the ``B (n_x + n_d) used`` numbers (``has_uint32`` -1: the pending half
    was the only number, -2: there were none; see :func:`write_state`)."""
    B, nx = thx.shape
    total = B * (nx + thd.shape[1]) * used
    zero = np.int64(0)  # not a literal 0, for which numba would compile _trains a second time
    hi, lo, taken, out = _trains(s_hi, s_lo, zero, np.uint64(0), jt, pending, pend_val, thx, BL,
                                 used, zero, xbits)  # fmt: skip
    hi, lo, taken, out = _trains(hi, lo, taken, out, jt, pending, pend_val, thd, BL, used,
                                 B * nx * used, dbits)  # fmt: skip
    if total == 0:
        return hi, lo, -2, np.uint64(0)
    fresh = total - 1 if pending else total
    if fresh == 0:
        return hi, lo, -1, np.uint64(0)
    m = (fresh + 1) >> 1  # outputs the numbers take
    if m != taken:
        hi, lo = _leap(hi, lo, m - taken, jt)
    last = _output(hi, lo)
    return hi, lo, fresh & 1, last >> np.uint64(32)


def jump_table(inc: int) -> np.ndarray:
    """The affine maps of ``2^i`` steps of the LCG with increment ``inc``, ``i < 64``, as rows
    ``(A_hi, A_lo, C_hi, C_lo)`` (uint64): ``s <- A s + C (mod 2^128)``."""
    rows = np.empty((_JUMP_BITS, 4), dtype=np.uint64)
    a, c = MULTIPLIER, inc & _MASK128
    for i in range(_JUMP_BITS):
        rows[i] = (a >> 64, a & _MASK64, c >> 64, c & _MASK64)
        c = (c * (a + 1)) & _MASK128  # two maps of 2^i steps: A (A s + C) + C
        a = (a * a) & _MASK128
    return rows


#: Jump tables by increment (one per generator stream; a few are kept).
_TABLES: dict[int, np.ndarray] = {}


def read_state(bg, st=None) -> tuple:
    """``(s_hi, s_lo, table, pending, pending_value)`` of a PCG64 bit generator: its state's
    halves, the jump table of its increment, whether a 32-bit half is pending and that half
    (``st``: its ``state`` dict when the caller has it)."""
    st = bg.state if st is None else st
    s, inc = st["state"]["state"], st["state"]["inc"]
    table = _TABLES.get(inc)
    if table is None:
        if len(_TABLES) >= 64:
            _TABLES.clear()
        table = _TABLES[inc] = jump_table(inc)
    return (
        np.uint64(s >> 64), np.uint64(s & _MASK64), table, bool(st["has_uint32"]),
        np.uint64(st["uinteger"]),
    )  # fmt: skip


def write_state(bg, hi, lo, has_uint32, uinteger, st=None) -> None:
    """Set a PCG64 bit generator's state to ``(hi, lo)`` with its pending half (``has_uint32``
    -1: the pending flag cleared and ``uinteger`` kept, as numpy leaves them; -2: nothing
    changes). ``st``: the generator's ``state`` dict as read before (updated and set here)."""
    if has_uint32 == -2:
        return
    st = bg.state if st is None else st
    st["state"]["state"] = (int(hi) << 64) | int(lo)
    if has_uint32 < 0:
        st["has_uint32"] = 0
    else:
        st["has_uint32"] = int(has_uint32)
        st["uinteger"] = int(uinteger)
    bg.state = st


def draw_trains(bg, thx, thd, BL, used: int, xbits, dbits) -> None:
    """Set the bits of the trains of ``x`` and ``d`` (``xbits``/``dbits`` zero on entry, shape
    ``(B, n, words)``) from a PCG64 bit generator's next ``B (n_x + n_d) used`` 32-bit numbers
    and advance it past them (module docs)."""
    st = bg.state  # read once: numpy builds the dict on every access
    s_hi, s_lo, table, pending, pend = read_state(bg, st)
    hi, lo, has, uint = _draw(s_hi, s_lo, table, pending, pend, thx, thd,
                              np.ascontiguousarray(BL, dtype=np.int64), int(used), xbits,
                              dbits)  # fmt: skip
    write_state(bg, hi, lo, has, uint, st)
