"""Numba CPU kernels; same names, signatures and random draws as :mod:`.reference`."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
from numba import njit, prange
from numba.core.cpu import ParallelOptions
from numba.core.errors import NumbaPerformanceWarning

from .._rng import INV53, M1, M2, PHI, PHI2, PHI2X2, ZIG_F, ZIG_LAYERS, ZIG_R, ZIG_X
from .bits import LITTLE_ENDIAN, PACK8, trailing_zeros
from .cache import drop_stale_cache
from .prefetch import prefetch, prefetch_row
from .records import PRM_ROWS
from .reference import EXPM1_SERIES_MAX, LOG1P_SERIES_MAX
from .reference import expm1_series as _ref_expm1_series
from .reference import log1p_series as _ref_log1p_series
from .twins import numba_threads, timed_twin

# the ziggurat tables of devices/_rng.py, the series thresholds of reference.py and the
# constants of bits.py are compiled in as constants, and the intrinsics of prefetch.py and
# bits.py compiled in
_HERE = Path(__file__).parent
_DEPS = (_HERE.parent / "_rng.py", _HERE / "prefetch.py", _HERE / "reference.py",
         _HERE / "bits.py")  # fmt: skip
drop_stale_cache(__file__, *(str(d) for d in _DEPS))

warnings.filterwarnings(
    "ignore",
    message=r"(?s).*parallel=True.*no transformation for parallel execution",
    category=NumbaPerformanceWarning,
    # numba names either its own module or, when it compiles a kernel here, this file's path
    module=r"(numba\.|.*devices[/\\.]kernels[/\\.])",
)

_M1 = np.uint64(M1)
_M2 = np.uint64(M2)
_PHI2 = np.uint64(PHI2)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_ONE = np.uint64(1)
_TWO = np.uint64(2)
_S8 = np.uint64(8)
_PHI = np.uint64(PHI)
_PHI2X2 = np.uint64(PHI2X2)
_ZMASK = np.uint64(ZIG_LAYERS - 1)
_ZX = ZIG_X  # global arrays: frozen into the compiled code as constants
_ZF = ZIG_F
_LIN_K = 1e-8


# Inlining and compile time. numba's inline="always" inlines at the level of its own IR: at every
# call site it runs the callee's untyped pipeline again (which inlines the callee's own callees)
# and deep-copies the result twice, so the cost grows with the number of call sites in the whole
# expanded tree, not with the number of functions (numba/numba#9204, NVIDIA/numba-cuda#688). The
# fused batch-1 kernel (online.py), which inlined every layer's update with its writes, refresh
# and program-and-verify, took about 2 minutes to compile; the pulse-train update (_update_ser)
# 1.7 (benchmarks/bench_compile.py, BENCHMARKS.md). So only what the SIMD lanes and the per-synapse
# loops need inlined at numba's level stays inline="always" (the lane passes and their leaves
# _mix, _clip, _popcount, _pow_int_bits, _listed; the write and its array-taking helpers, whose
# array arguments would otherwise be reference-counted per call). The program-and-verify of a
# list of devices (_verify_many), online.py's per-layer update (_layer_body) and the leaves that
# take no array (_normal, _uniform, _exp_fwd, _exp_inv, _step_noise, _count, ...) are separate
# functions, which LLVM still inlines where it pays (the request kernel's code calls none of
# them). They are compiled by the parallel pipeline with every transformation off
# (_SERIAL_PIPELINE), like the serial twins (_SERIAL_NOTE): compiled by the plain pipeline, the
# fused batch-1 kernel ran 1.4-1.6x slower (wall). A call of _layer_body or _verify_many passes some
# twenty arrays (reference-counted): about 1 us per presentation of the fused kernel (pcmo 7.1-7.7
# -> 8.0-8.2 us). Not so for _update_tile and _request_chunk, which the parallel twins call inside
# their prange: a callee compiled that way there made the dense update 3.7x slower (measured
# before the options below were a ParallelOptions: probably the nested parallel regions described
# there), and compiled plainly the sparse rows 1.7-1.9x slower; they stay inlined (the tiles
# inlined into _update_tiles, the chunks into _request_chunks, which are not: called once a
# kernel or a thread). Most figures above for the serial pipeline were measured on functions
# that, being compiled after the first, actually got numba's full parallel pipeline; for
# functions without array calls the two give the same loops (the dense update and the torch
# bridge epoch: no difference, BENCHMARKS.md).
#
# The options are a ParallelOptions, not the dict numba documents: numba reads a dict by popping
# its keys (numba 0.68, cpu_options.ParallelOptions), so a dict shared by several functions set
# the options of the first one compiled in a process, and every later one got numba's defaults,
# every transformation on (np.zeros and np.ones became parallel regions: _tile_lanes, called in
# the parallel update's prange, then launched a nested region a row, 4-5x slower; which function
# came first depended on the compile order). tests/devices/test_kernel_cache.py checks it.
_SERIAL_PIPELINE = ParallelOptions({
    "comprehension": False, "prange": True, "numpy": False, "reduction": False, "setitem": False,
    "stencil": False, "fusion": False, "inplace_binop": False,
})  # fmt: skip


@njit(cache=True, inline="always", error_model="numpy")
def _mix(z):
    z = z ^ (z >> _S30)
    z = z * _M1
    z = z ^ (z >> _S27)
    z = z * _M2
    return z ^ (z >> _S31)


@njit(cache=True, parallel=_SERIAL_PIPELINE, error_model="numpy")
def _uniform(base, j):
    h = _mix(base + j * _PHI2)
    return (float(h >> _S11) + 0.5) * INV53


@njit(cache=True, parallel=_SERIAL_PIPELINE, error_model="numpy")
def _open_unit(h):
    return (float(h >> _S11) + 0.5) * INV53


@njit(cache=True, error_model="numpy")
def _normal_slow(s, h, x, lay):
    """Rare branch of :func:`_normal` (about 1% of draws): wedge test or tail, then restarts."""
    k = _ONE
    while True:
        if lay == 0:  # the exact tail beyond r
            while True:
                t = -math.log(_open_unit(_mix(s + k * _PHI))) / ZIG_R
                y = -math.log(_open_unit(_mix(s + (k + _ONE) * _PHI)))
                k += _TWO
                if y + y > t * t:
                    break
            x = ZIG_R + t
            break
        u = _open_unit(_mix(s + k * _PHI))
        k += _ONE
        if _ZF[lay] + u * (_ZF[lay + 1] - _ZF[lay]) < math.exp(-0.5 * x * x):
            break
        h = _mix(s + k * _PHI)
        k += _ONE
        lay = np.int64(h & _ZMASK)
        x = float(h >> _S11) * INV53 * _ZX[lay]
        if x < _ZX[lay + 1]:
            break
    return -x if (h >> _S8) & _ONE else x


@njit(cache=True, parallel=_SERIAL_PIPELINE, error_model="numpy")
def _normal(base, i):
    """Standard normal of device ``i`` (ziggurat, :func:`devices._rng.normal_xp`)."""
    s = base + np.uint64(i) * _PHI2X2
    h = _mix(s)
    lay = np.int64(h & _ZMASK)
    x = float(h >> _S11) * INV53 * _ZX[lay]
    if x < _ZX[lay + 1]:
        return -x if (h >> _S8) & _ONE else x
    return _normal_slow(s, h, x, lay)


@njit(cache=True, inline="always", error_model="numpy")
def _clip(v, lo, hi):
    return lo if v < lo else (hi if v > hi else v)


@njit(cache=True, parallel=_SERIAL_PIPELINE, error_model="numpy")
def _exp_fwd(u, k, e):
    if abs(k) < _LIN_K:
        return u
    return math.expm1(-k * u) / e


@njit(cache=True, parallel=_SERIAL_PIPELINE, error_model="numpy")
def _exp_inv(g, k, e):
    if abs(k) < _LIN_K:
        return g
    y = g * e
    if y == 0.0:  # log1p(+-0) is +-0 exactly: a device at Gmin costs no library call
        return -y / k
    return -math.log1p(y) / k


@njit(cache=True, inline="always", error_model="numpy")
def _lut_inv(g, table):
    p = table.size - 1
    g = _clip(g, table[0], table[p])
    lo = 0
    hi = p
    # largest idx with table[idx] <= g, capped at p - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if table[mid] <= g:
            lo = mid
        else:
            hi = mid
    return lo + (g - table[lo]) / (table[lo + 1] - table[lo])


@njit(cache=True, inline="always", error_model="numpy")
def _lut_fwd(x, table):
    p = table.size - 1
    x = _clip(x, 0.0, float(p))
    idx = int(math.floor(x))
    if idx > p - 1:
        idx = p - 1
    return table[idx] + (x - idx) * (table[idx + 1] - table[idx])


# A write of n pulses to a step device with a slope needs r^n, log1p and expm1 (its closed form
# and the moment-matched noise of its n pulses). They are computed here from +, -, * and sqrt
# where that is exact to about an ulp: r^n by repeated squaring (n is a whole number), log1p and
# expm1 by their Taylor series on the small arguments a write sees (eps^2 = (c2c dw gam / r)^2
# is about 1e-7 for soft_bounds, and the exponent of the noise factor a few hundredths), the C
# library beyond those. The same operations in the same order on every path (the scalar write,
# the SIMD lanes of the pulse-train update below, the numpy reference, the CUDA kernels), so the
# paths agree bit for bit; and LLVM vectorizes them, which it does not do with library calls.
# log1p(z) by its series below LOG1P_SERIES_MAX (terms to z^5 / 5: the next is below 2^-54 of
# z), expm1(y) below EXPM1_SERIES_MAX in magnitude (terms to y^9 / 9!: the next below 2^-54 of
# y); the thresholds are the reference's.


@njit(cache=True, parallel=_SERIAL_PIPELINE, error_model="numpy")
def _pow_int(r, n):
    """``r ** n`` for a whole ``n >= 0`` by repeated squaring (``n = 1`` gives ``r`` exactly)."""
    out = 1.0
    b = r
    k = n
    while k > 0:
        if k & 1:
            out = out * b
        b = b * b
        k >>= 1
    return out


@njit(cache=True, inline="always", error_model="numpy")
def _pow_int_bits(r, n, nbits):
    """:func:`_pow_int` as a fixed loop over the ``nbits`` low bits of ``n`` (``n < 2**nbits``),
    with selects instead of branches (SIMD lanes): the same products in the same order, and
    ``out * 1.0`` is ``out`` exactly, so the same result."""
    out = 1.0
    b = r
    for t in range(nbits):
        out = out * (b if (n >> t) & 1 else 1.0)
        b = b * b
    return out


# the reference's own series functions (plain arithmetic), compiled here
_log1p_series = njit(cache=True, inline="always", error_model="numpy")(_ref_log1p_series)
_expm1_series = njit(cache=True, inline="always", error_model="numpy")(_ref_expm1_series)


@njit(cache=True, parallel=_SERIAL_PIPELINE, error_model="numpy")
def _step_log1p(z):
    return _log1p_series(z) if z < LOG1P_SERIES_MAX else math.log1p(z)


@njit(cache=True, parallel=_SERIAL_PIPELINE, error_model="numpy")
def _step_expm1(y):
    return _expm1_series(y) if abs(y) < EXPM1_SERIES_MAX else math.expm1(y)


@njit(cache=True, inline="always", error_model="numpy")
def _step_coord(G, bmin, bmax, const):
    """Coordinate of conductance ``G`` on a step device with bounds ``bmin``, ``bmax``
    (``const``: the nominal Gmin, Gmax, bmin, bmax of the map between the two)."""
    return _clip(const[2] + (G - const[0]) / (const[1] - const[0]) * (const[3] - const[2]), bmin,
                 bmax)  # fmt: skip


@njit(cache=True, inline="always", error_model="numpy")
def _step_conductance(un, bmin, bmax, const):
    """Conductance of coordinate ``un``, clipped to ``bmin``, ``bmax`` first."""
    u = _clip(un, bmin, bmax)
    return const[0] + (u - const[2]) / (const[3] - const[2]) * (const[1] - const[0])


@njit(cache=True, parallel=_SERIAL_PIPELINE, error_model="numpy")
def _step_noise(am, u0, r, rm, dw, gam, c2c, xi):
    """Noise of ``am`` pulses of a step model with slope ``gam != 0`` (``reference._step_noise``):
    one pulse exactly, several as a moment-matched log-normal factor on ``v = 1 + gam u``."""
    v0 = 1.0 + gam * u0
    if am == 1.0:
        return c2c * dw * abs(v0) * xi
    eps = c2c * dw * gam / r
    s2 = am * _step_log1p(eps * eps)
    return v0 * rm * _step_expm1(math.sqrt(s2) * xi - 0.5 * s2) / gam


@njit(cache=True, inline="always", error_model="numpy")
def _col(a, i):
    """Index of device ``i`` in a per-device constant ``a`` (the last axis runs over devices):
    ``i``, or 0 when ``a`` holds one entry for every device (the fused batch-1 kernel passes
    constants that are the same on every device so, :func:`devices.kernels.online.
    compact_uniform`: one cache line instead of one per device and row)."""
    return 0 if a.shape[-1] == 1 else i


@njit(cache=True, inline="always", error_model="numpy")
def _exp_branch(prm, j, up):
    """``(k, P, e)`` of the ``up`` (or down) branch of an exponential-model device with
    parameter column ``j``."""
    if up:
        return prm[2, j], prm[4, j], prm[6, j]
    return prm[3, j], prm[5, j], prm[7, j]


@njit(cache=True, inline="always", error_model="numpy")
def _exp_start(G, prm, j, up):
    """Pulse coordinate of conductance ``G`` on the ``up`` (or down) branch of an
    exponential-model device with parameter column ``j`` (the first half of a write)."""
    gmin = prm[0, j]
    dG = prm[1, j] - gmin
    k, P, e = _exp_branch(prm, j, up)
    g = _clip((G - gmin) / dG, 0.0, 1.0)
    return P * _exp_inv(g, k, e)


@njit(cache=True, inline="always", error_model="numpy")
def _exp_land(x0, m, i, prm, j, c2c, base):
    """Conductance of exponential-model device ``i`` after ``m`` (nonzero) signed pulses from
    coordinate ``x0`` (:func:`_exp_start`), with its cycle-to-cycle noise (the second half)."""
    gmin = prm[0, j]
    gmax = prm[1, j]
    dG = gmax - gmin
    k, P, e = _exp_branch(prm, j, m > 0)
    x1 = _clip(x0 + m, 0.0, P)
    G1 = gmin + dG * _exp_fwd(x1 / P, k, e)
    if c2c > 0.0:
        G1 += c2c * dG * math.sqrt(float(abs(m))) * _normal(base, i)
    return _clip(G1, gmin, gmax)


@njit(cache=True, inline="always", error_model="numpy")
def _apply_one(fam, G, m, i, prm, const, lut_up, lut_dn, c2c, base):
    """New conductance of device i after m (nonzero) signed pulses (``prm`` with one column: the
    parameters of every device, see :func:`_col`)."""
    am = float(abs(m))
    up = m > 0
    j = _col(prm, i)
    if fam == 0:
        return _exp_land(_exp_start(G, prm, j, up), m, i, prm, j, c2c, base)
    if fam == 1:
        bmin = prm[0, j]
        bmax = prm[1, j]
        u0 = _step_coord(G, bmin, bmax, const)
        if up:
            s = 1.0
            dw = prm[2, j]
            gam = prm[4, j]
        else:
            s = -1.0
            dw = prm[3, j]
            gam = prm[5, j]
        r = 1.0 + s * dw * gam
        if abs(r - 1.0) < 1e-15:
            un = u0 + s * am * dw
            if c2c > 0.0:
                un += c2c * dw * abs(1.0 + gam * u0) * math.sqrt(am) * _normal(base, i)
        else:
            rm = _pow_int(r, abs(m))
            un = rm * u0 + s * dw * (rm - 1.0) / (r - 1.0)
            if c2c > 0.0:
                un += _step_noise(am, u0, r, rm, dw, gam, c2c, _normal(base, i))
        return _step_conductance(un, bmin, bmax, const)
    gmin = prm[0, j]
    gmax = prm[1, j]
    dG = gmax - gmin
    g = _clip((G - gmin) / dG, 0.0, 1.0)
    table = lut_up if up else lut_dn
    p = float(table.size - 1)
    x0 = _lut_inv(g, table)
    x1 = _clip(x0 + m, 0.0, p)
    G1 = gmin + dG * _lut_fwd(x1, table)
    if c2c > 0.0:
        G1 += c2c * dG * math.sqrt(am) * _normal(base, i)
    return _clip(G1, gmin, gmax)


@njit(cache=True, inline="always", error_model="numpy")
def _write_book(i, m, frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset, prog):
    """The bookkeeping of a write of ``m`` signed pulses to device ``i`` (pulse counters,
    endurance limit, freezing): returns the pulses to apply, 0 for none."""
    am = abs(m)
    cap = budget[_col(budget, i)]
    limited = cap != math.inf  # an endurance limit (else the counters are not read)
    used = cnt_up[i] + cnt_dn[i] + cnt_prog[i] + cnt_reset[i] if limited else 0
    if prog:
        cnt_prog[i] += am
    elif m > 0:
        cnt_up[i] += am
    else:
        cnt_dn[i] += am
    if frozen[i] != 0:
        return 0
    m_eff = m
    if limited:
        remaining = cap - used
        if remaining <= 0.0:
            frozen[i] = 1
            return 0
        if am > remaining:
            r = int(math.floor(remaining))
            m_eff = r if m > 0 else -r
        if used + am >= cap:
            frozen[i] = 1
    return m_eff


@njit(cache=True, inline="always", error_model="numpy")
def _write_one(i, m, G, Gw, tau, fam, prm, const, lut_up, lut_dn, c2c, base, frozen, budget,
               cnt_up, cnt_dn, cnt_prog, cnt_reset, prog):  # fmt: skip
    m_eff = _write_book(i, m, frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset, prog)
    if m_eff == 0:
        return
    G1 = _apply_one(fam, G[i], m_eff, i, prm, const, lut_up, lut_dn, c2c, base)
    G[i] = G1
    Gw[i] = G1
    tau[i] = 0.0


@njit(cache=True, inline="always", error_model="numpy")
def _write_many(ne, tgt, ms, xs, G, Gw, tau, fam, prm, const, lut_up, lut_dn, c2c, base, frozen,
                budget, cnt_up, cnt_dn, cnt_prog, cnt_reset):  # fmt: skip
    """:func:`_write_one` of ``ms[e]`` pulses to device ``tgt[e]`` for ``e < ne``, every device
    listed at most once (``ms`` is overwritten with the pulses applied, ``xs`` is scratch).

    The same float operations on the same values as one :func:`_write_one` after the other (the
    devices are independent and the noise is indexed by device), so the same results; an
    exponential-model device's write is split in two passes (its coordinate, ``log1p``; its
    landing, ``expm1``) whose iterations do not depend on each other, so the processor overlaps
    the library calls of successive devices instead of waiting for each one's chain of
    divisions and calls (a write is latency-bound on its own)."""
    for e in range(ne):
        ms[e] = _write_book(tgt[e], ms[e], frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset,
                            False)  # fmt: skip
    if fam == 0:
        for e in range(ne):
            if ms[e] != 0:
                i = tgt[e]
                xs[e] = _exp_start(G[i], prm, _col(prm, i), ms[e] > 0)
        for e in range(ne):
            m = ms[e]
            if m != 0:
                i = tgt[e]
                G1 = _exp_land(xs[e], m, i, prm, _col(prm, i), c2c, base)
                G[i] = G1
                Gw[i] = G1
                tau[i] = 0.0
        return
    for e in range(ne):
        m = ms[e]
        if m != 0:
            i = tgt[e]
            G1 = _apply_one(fam, G[i], m, i, prm, const, lut_up, lut_dn, c2c, base)
            G[i] = G1
            Gw[i] = G1
            tau[i] = 0.0


# fmt: off
# Every kernel has a parallel and a serial twin. Work below these sizes runs serially: a
# parallel region costs a few microseconds on an idle machine, but when another process holds
# a core its barrier waits for a descheduled thread (milliseconds), which a serial pass of a
# few hundred thousand devices (well under a millisecond) never does. The twins are two
# separately written functions (not one function jitted twice), so that numba's on-disk cache
# keeps them apart; the per-element work lives in one inlined helper each.
#
# _SERIAL_NOTE: the serial twins are compiled with parallel=True too, although their loops are
# plain ranges: numba's parallel pipeline produced 2.5x faster code for the same loop here
# (numba 0.68; 57 vs 146 ns per device write, benchmarks/bench_update.py). numba warns that no
# parallel transformation was possible; that warning is expected and filtered below.
#
# Between the _ADAPT_MIN sizes and the _PARALLEL_MIN sizes the pulse-train update and the pulse
# requests (the training paths) run the twin that twins.TwinChoice measures to be faster for
# that call site: the parallel one on an idle machine (about 0.55x the serial one's time on the
# MNIST MLP's layers), the serial one while another process holds the cores.
_PARALLEL_MIN = 1 << 21          # devices per write / read / request
_PARALLEL_MIN_UPDATE = 1 << 22   # samples x devices per pulse-train update
_ADAPT_MIN = 1 << 15             # devices per request
_ADAPT_MIN_UPDATE = 1 << 18      # samples x devices per pulse-train update
_SITES: dict = {}                # call site -> twins.TwinChoice


# ----------------------------------------------------------------------------- write
# The jitted entry points take the two records (devices/kernels/records.py) and unpack them
# once. The host functions hand them over as plain tuples (same fields, same order): numba's
# dispatcher types a plain tuple of arrays from its fast fingerprint, a NamedTuple through
# Python-level typing (about 2 microseconds more per call).
@njit(cache=True, parallel=True, error_model="numpy")
def _write_par(st, pa, n, base, prog):
    G, Gw, tau, frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset = st
    fam, prm, const, lut_up, lut_dn, c2c, gmin = pa
    for ip in prange(G.size):
        i = np.int64(ip)
        if n[i] != 0:
            _write_one(i, n[i], G, Gw, tau, fam, prm, const, lut_up, lut_dn, c2c, base, frozen,
                       budget, cnt_up, cnt_dn, cnt_prog, cnt_reset, prog)


@njit(cache=True, parallel=True, error_model="numpy")  # see _SERIAL_NOTE
def _write_ser(st, pa, n, base, prog):
    G, Gw, tau, frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset = st
    fam, prm, const, lut_up, lut_dn, c2c, gmin = pa
    for i in range(G.size):
        if n[i] != 0:
            _write_one(i, n[i], G, Gw, tau, fam, prm, const, lut_up, lut_dn, c2c, base, frozen,
                       budget, cnt_up, cnt_dn, cnt_prog, cnt_reset, prog)


def write(state, params, n, base, prog):
    """Apply signed pulse counts ``n`` to the devices of ``state`` in place (see module docs)."""
    kern = _write_par if state.G.size >= _PARALLEL_MIN else _write_ser
    kern(tuple(state), tuple(params), n, np.uint64(base), bool(prog))


@njit(cache=True, parallel=True, error_model="numpy")  # serial loop; see _SERIAL_NOTE
def _write_sparse_ser(st, pa, idx, counts, base, prog):
    G, Gw, tau, frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset = st
    fam, prm, const, lut_up, lut_dn, c2c, gmin = pa
    for k in range(idx.size):
        if counts[k] != 0:
            _write_one(idx[k], counts[k], G, Gw, tau, fam, prm, const, lut_up, lut_dn, c2c, base,
                       frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset, prog)


def write_sparse(state, params, idx, counts, base, prog):
    """:func:`write` for the devices ``idx`` (unique) only, with their counts."""
    _write_sparse_ser(tuple(state), tuple(params), np.asarray(idx, dtype=np.int64),
                      np.asarray(counts, dtype=np.int64), np.uint64(base), bool(prog))


# ----------------------------------------------------------------------------- read
@njit(cache=True, parallel=True, error_model="numpy")
def _read_par(G, sigma, base, out):
    for i in prange(G.size):
        out[i] = G[i] * (1.0 + sigma * _normal(base, i))


@njit(cache=True, parallel=True, error_model="numpy")  # see _SERIAL_NOTE
def _read_ser(G, sigma, base, out):
    for i in range(G.size):
        out[i] = G[i] * (1.0 + sigma * _normal(base, i))


def read_noisy(G, sigma, base, out):
    """``out = G * (1 + sigma * xi)``, one normal per device."""
    kern = _read_par if G.size >= _PARALLEL_MIN else _read_ser
    kern(G, float(sigma), np.uint64(base), out)


# ----------------------------------------------------------------------------- routing
@njit(cache=True, parallel=_SERIAL_PIPELINE, error_model="numpy")
def _route_target(s, N, sgn, c, route, q):
    """Device and signed pulses of the ``q``-th write (``q < 2`` for push-pull, else 0) of
    ``sgn * c`` pulses of synapse ``s`` routed as in :func:`_route_write`."""
    if route == 0:
        return s, sgn * c
    if route == 1:
        return (s, sgn * c) if q == 0 else (N + s, -sgn * c)
    return (s if sgn > 0 else N + s), c


@njit(cache=True, inline="always", error_model="numpy")
def _cache_weight(s, N, G, W, alpha, gref):
    """Refresh the cached weight ``W[s]`` of synapse ``s`` from its conductances (``gref < 0``:
    a differential pair, device ``N + s`` the other; else the reference ``gref``)."""
    W[s] = alpha * (G[s] - (G[N + s] if gref < 0.0 else gref))


@njit(cache=True, inline="always", error_model="numpy")
def _route_write(s, N, sgn, c, route, G, Gw, tau, fam, prm, const, lut_up, lut_dn, c2c, base,
                 frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset, W, alpha, gref):
    """Route ``sgn * c`` pulses of synapse ``s``: one device (0), push-pull (1) or the
    potentiation side of a differential pair (2), then refresh the cached weight ``W[s]``
    (``gref < 0``: differential pair). Returns the device pulses sent."""
    nq = 2 if route == 1 else 1
    for q in range(nq):
        tgt, mq = _route_target(s, N, sgn, c, route, q)
        _write_one(tgt, mq, G, Gw, tau, fam, prm, const, lut_up, lut_dn, c2c, base, frozen,
                   budget, cnt_up, cnt_dn, cnt_prog, cnt_reset, False)
    _cache_weight(s, N, G, W, alpha, gref)
    return c * nq


@njit(cache=True, inline="always", error_model="numpy")
def _prefetch_write(i, up, fam, G, Gw, tau, prm, frozen, budget, cnt_up, cnt_dn):
    """Prefetch the cache lines a write of device ``i`` (up: potentiation) reads and writes
    (:mod:`.prefetch`: no effect on any value); per-device constants held once (:func:`_col`)
    are not fetched."""
    prefetch(G, i)
    prefetch(Gw, i)
    prefetch(tau, i)
    prefetch(frozen, i)
    prefetch(cnt_up if up else cnt_dn, i)
    if budget.shape[-1] != 1:
        prefetch(budget, i)
    if prm.shape[-1] != 1:
        prefetch_row(prm, 0, i)
        prefetch_row(prm, 1, i)
        if fam != 2:  # the branch's rows: exponential (k, P, e), step (dw, gam)
            r = 2 if up else 3
            prefetch_row(prm, r, i)
            prefetch_row(prm, r + 2, i)
            if fam == 0:
                prefetch_row(prm, r + 4, i)


@njit(cache=True, inline="always", error_model="numpy")
def _prefetch_route(s, N, sgn, route, fam, G, Gw, tau, prm, frozen, budget, cnt_up, cnt_dn, W):
    """:func:`_prefetch_write` of the devices a write of synapse ``s`` routed as in
    :func:`_route_write` touches, and of its cached weight."""
    prefetch(W, s)
    if route == 2:
        _prefetch_write(s if sgn > 0 else N + s, True, fam, G, Gw, tau, prm, frozen, budget,
                        cnt_up, cnt_dn)
        return
    _prefetch_write(s, sgn > 0, fam, G, Gw, tau, prm, frozen, budget, cnt_up, cnt_dn)
    if route == 1:
        _prefetch_write(N + s, sgn < 0, fam, G, Gw, tau, prm, frozen, budget, cnt_up, cnt_dn)


# ----------------------------------------------------------------------------- pulse trains
@njit(cache=True, inline="always", error_model="numpy")
def _popcount(x):
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return int((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


@njit(cache=True, inline="always", error_model="numpy")
def _compact(xb, nzx):
    """Indices of the rows whose train has any pulse (only those can coincide)."""
    m = 0
    for i in range(xb.shape[0]):
        any_bit = False
        for w in range(xb.shape[1]):
            if xb[i, w] != 0:
                any_bit = True
        if any_bit:
            nzx[m] = i
            m += 1
    return m


_AHEAD = 4                       # inputs between a synapse's prefetch and its write


@njit(cache=True, inline="always", error_model="numpy")
def _update_row(b, j, m, nzx, xbits, dbits, xneg, dneg, n_in, N, route, G, Gw, tau, fam, prm,
                const, lut_up, lut_dn, c2c, base, frozen, budget, cnt_up, cnt_dn, cnt_prog,
                cnt_reset, W, alpha, gref):
    """Row ``j`` of sample ``b``, synapse by synapse (the rows ``nzx[b, :m]`` with a pulse).
    Indexes the batch arrays in place: a view per (row, sample) costs reference counting, and
    most rows of a sparse batch are empty."""
    acc = 0
    row_empty = True
    for w in range(dbits.shape[2]):
        if dbits[b, j, w] != 0:
            row_empty = False
    if row_empty:
        return 0
    # the synapses of a sparse row lie far apart in a state larger than the cache: their lines
    # are fetched _AHEAD inputs before their writes (whether or not they coincide), so that
    # the misses of successive writes overlap
    s0 = j * n_in
    for t in range(min(m, _AHEAD)):
        i = nzx[b, t]
        _prefetch_route(s0 + i, N, 1 if dneg[b, j] != xneg[b, i] else -1, route, fam, G, Gw, tau,
                        prm, frozen, budget, cnt_up, cnt_dn, W)
    for t in range(m):
        if t + _AHEAD < m:
            i = nzx[b, t + _AHEAD]
            _prefetch_route(s0 + i, N, 1 if dneg[b, j] != xneg[b, i] else -1, route, fam, G,
                            Gw, tau, prm, frozen, budget, cnt_up, cnt_dn, W)
        i = nzx[b, t]
        c = 0
        for w in range(xbits.shape[2]):
            c += _popcount(xbits[b, i, w] & dbits[b, j, w])
        if c == 0:
            continue
        acc += c
        sgn = 1 if dneg[b, j] != xneg[b, i] else -1
        _route_write(j * n_in + i, N, sgn, c, route, G, Gw, tau, fam, prm, const, lut_up, lut_dn,
                     c2c, base, frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset, W, alpha,
                     gref)
    return acc


# Cache blocking: every sample of the batch is applied to one tile of rows while the tile's
# device state (about 270 bytes per synapse of a differential pair: conductances, parameter rows,
# counters, budget) is in the core's cache, then the next tile. Each synapse still receives the
# samples in batch order with the same draws, so results equal a sample-after-sample pass bit
# for bit; the tiles are independent, so the parallel twin runs them on all cores.
_TILE_BYTES = 1 << 18            # target state per tile (256 KiB; L2 is 512 KiB per core here)
_BYTES_PER_SYNAPSE = 272
_TILES_PER_THREAD = 8            # the parallel twin's sparse tiles: at least this many a thread


def _tile_rows(n_in, n_out):
    """Rows per tile: about ``_TILE_BYTES`` of device state, at least one row."""
    return int(min(n_out, max(1, _TILE_BYTES // (_BYTES_PER_SYNAPSE * max(n_in, 1)))))


@njit(cache=True, inline="always", error_model="numpy")
def _sparse_rows(rows, nzx, ms, n_in, n_out, tile_bytes, min_tiles):
    """Rows per tile of a batch written synapse by synapse (no lanes): a tile holds about
    ``tile_bytes`` of the state its writes can touch (its rows at the batch's active inputs,
    ``nzx[b, :ms[b]]`` over all samples), at least ``rows`` rows and, where ``rows`` allows,
    at least ``min_tiles`` tiles (the parallel twin's share per thread). Each tile of rows costs
    a fixed time whether or not it has a pulse (the serial twin's call of the inlined tile:
    about 0.09 us, BENCHMARKS.md), so rows of one input's worth of state (784-input layers: one
    row a tile) spent 23 us per call of the 784-256 layer on tiles alone. ``tile_bytes`` 0:
    ``rows``."""
    if tile_bytes <= 0:
        return rows
    seen = np.empty(n_in, dtype=np.bool_)
    for i in range(n_in):  # not np.zeros: a parallel region in the parallel=True serial twin
        seen[i] = False
    union = 0
    for b in range(ms.shape[0]):
        for k in range(ms[b]):
            i = nzx[b, k]
            union += not seen[i]
            seen[i] = True
    r = max(rows, tile_bytes // (_BYTES_PER_SYNAPSE * max(union, 1)))
    if min_tiles > 1:
        r = min(r, max(rows, (n_out + min_tiles - 1) // min_tiles))
    return min(r, max(n_out, 1))


@njit(cache=True, inline="always", error_model="numpy")
def _compact_all(bits, n):
    """Per sample, the (increasing) indices of the trains with any pulse (``nz[b, :ms[b]]``);
    returns ``(nz, ms)``. Used for the inputs (only those rows can coincide) and the errors
    (a tile visits only the output rows with a pulse)."""
    nz = np.empty((bits.shape[0], n), dtype=np.int64)
    ms = np.empty(bits.shape[0], dtype=np.int64)
    for b in range(bits.shape[0]):
        ms[b] = _compact(bits[b], nz[b])
    return nz, ms


@njit(cache=True, inline="always", error_model="numpy")
def _first_at_least(nz, b, m, v):
    """The first position k < m with ``nz[b, k] >= v`` (``nz[b, :m]`` increasing), else m."""
    lo = 0
    hi = m
    while lo < hi:
        mid = (lo + hi) >> 1
        if nz[b, mid] < v:
            lo = mid + 1
        else:
            hi = mid
    return lo


# ----------------------------------------------------------------------------- linear lanes
# The dense case of the pulse-train update on step devices without a slope (family 1 with
# gam = 0 on every device of a tile: constant_step and the like, aihwkit's own tile benchmark):
# a row (one output j, one sample) is written as passes over its contiguous run of synapses that
# LLVM turns into SIMD code (coincidences, normals, the write arithmetic with selects, the weight
# cache), instead of one branchy scalar write per coincidence. Lanes the passes cannot finish
# (the ziggurat's rare slow draw, a frozen device, an endurance budget that runs out) are left
# untouched and written by the scalar :func:`_write_one` afterwards; every device receives the
# same pulses from the same draws in the same sample order, so results are bit for bit those of
# the scalar path (tests/devices/test_kernel_lanes.py). Rows with few coincidences take the
# scalar writes (fewer lanes to do than a full pass).
# A row takes the lanes when at least 1/_LANE_ROW of its synapses coincide (and is considered only
# when at least that many of its sample's inputs are active): a lane pass costs every synapse of
# the row, a scalar write only the written ones, and on this machine the lanes came out ahead at
# about a quarter of the row written (single thread, 128 x 256 and 512 x 512 constant_step, batch
# 10: lanes / scalar 1.3 at 18% written, 0.8 at 30%, 0.45 at 60%; BENCHMARKS.md). 1/16, the
# earlier cut, sent the MNIST MLP's sparse training rows (20-40% of the inputs active, 5-35% of a
# row written) to the lanes at 1.5-2.3x the scalar rows' time.
_LANE_ROW = 4
_DENSE_SAMPLE = _LANE_ROW         # lanes considered when active inputs * this >= inputs
# _tile_lanes is not inlined (its work arrays would become parallel regions in the parallel=True
# kernels), but it writes the rows' scalar synapses too; it is compiled by the parallel pipeline
# with every transformation off (_SERIAL_PIPELINE), which gives those writes the code of the
# kernels' own (see _SERIAL_NOTE; scalar writes inside a lane tile 1.2-2.2x faster, scratch run).


@njit(cache=True, inline="always", error_model="numpy")
def _lane_counts(xb0, d0, xn, dn, cnt, sgnv):
    """Coincidences and signs of one row (one-word trains); returns (total, nonzero lanes)."""
    tot = 0
    nnz = 0
    for i in range(cnt.shape[0]):
        c = _popcount(xb0[i] & d0)
        cnt[i] = c
        sgnv[i] = 1 if dn != xn[i] else -1
        tot += c
        nnz += c != 0
    return tot, nnz


@njit(cache=True, inline="always", error_model="numpy")
def _lane_counts_words(xb, db, xn, dn, cnt, sgnv):
    """:func:`_lane_counts` for trains of several words."""
    tot = 0
    nnz = 0
    for i in range(cnt.shape[0]):
        c = 0
        for w in range(db.shape[0]):
            c += _popcount(xb[i, w] & db[w])
        cnt[i] = c
        sgnv[i] = 1 if dn != xn[i] else -1
        tot += c
        nnz += c != 0
    return tot, nnz


@njit(cache=True, inline="always", error_model="numpy")
def _lane_side(route, q, cnt, sgnv, m):
    """Signed device pulses of side ``q`` (0: the synapse's device, 1: its partner) per lane."""
    for i in range(cnt.shape[0]):
        c = cnt[i]
        sg = sgnv[i]
        if route == 0:
            v = sg * c
        elif route == 1:
            v = sg * c if q == 0 else -sg * c
        else:
            v = (c if sg > 0 else 0) if q == 0 else (c if sg < 0 else 0)
        m[i] = v


@njit(cache=True, inline="always", error_model="numpy")
def _lane_normals(base, off, m, z, ok):
    """The fast-path ziggurat draw of :func:`_normal` for devices ``off + i``; ``ok[i]`` is
    False where a written lane needs the slow path (:func:`_lane_slow_normals`). Returns the
    number of such lanes."""
    bad = 0
    for i in range(m.shape[0]):
        h = _mix(base + np.uint64(off + i) * _PHI2X2)
        lay = np.int64(h & _ZMASK)
        x = float(h >> _S11) * INV53 * _ZX[lay]
        fast = (x < _ZX[lay + 1]) | (m[i] == 0)
        ok[i] = fast
        bad += not fast
        z[i] = -x if (h >> _S8) & _ONE else x
    return bad


#: Eight lanes of ``ok`` all True, read as one word.
_OK8 = np.uint64(0x0101010101010101)


@njit(cache=True, inline="always", error_model="numpy")
def _lane_slow_normals(base, off, z, ok, okw):
    """The draws :func:`_lane_normals` left (about 1.5% of the written lanes): :func:`_normal`
    of device ``off + i`` for each lane with ``ok[i]`` False, which is then set, so the lane
    write takes these lanes too (before, the scalar write rewrote them after a scan of the
    whole row). ``okw`` is ``ok`` read as words (its length a multiple of 8, the lanes past the
    row True): the scan skips eight good lanes at a time."""
    for w in range(okw.shape[0]):
        if okw[w] != _OK8:
            for i in range(8 * w, 8 * w + 8):
                if not ok[i]:
                    z[i] = _normal(base, off + i)
                    ok[i] = True


@njit(cache=True, inline="always", error_model="numpy")
def _lane_step(m, G0, bmin, bmax, dw_up, dw_dn, c2c, z, const):
    """Family 1 with ``gam = 0`` (``_apply_one``'s ``r == 1`` branch, the same operations):
    the new conductance after ``m != 0`` pulses; ``abs(1 + gam u0) = 1`` drops out exactly."""
    am = float(abs(m))
    up = m > 0
    u0 = _step_coord(G0, bmin, bmax, const)
    dw = dw_up if up else dw_dn
    un = u0 + (1.0 if up else -1.0) * am * dw
    if c2c > 0.0:
        un += c2c * dw * math.sqrt(am) * z
    return _step_conductance(un, bmin, bmax, const)


#: Bits of the pulse counts the sloped lanes raise ``r`` to (a fixed loop, unrolled, so that the
#: lane loop stays innermost and vectorizes); larger counts take the scalar write.
_POW_BITS = 7


@njit(cache=True, inline="always", error_model="numpy")
def _lane_step_sloped(m, G0, bmin, bmax, dw_up, dw_dn, gam_up, gam_dn, c2c, z, const):
    """Family 1 with or without a slope (``_apply_one``'s step branch, the same operations on
    the same values, both branches computed and one selected): the new conductance after
    ``m != 0`` pulses, and whether the lane could compute it: fewer than ``2**_POW_BITS``
    pulses, and the series of the noise of a multi-pulse write with their arguments in range
    (else the scalar write, which falls back to the C library there, does the lane)."""
    am = float(abs(m))
    up = m > 0
    u0 = _step_coord(G0, bmin, bmax, const)
    s = 1.0 if up else -1.0
    dw = dw_up if up else dw_dn
    gam = gam_up if up else gam_dn
    r = 1.0 + s * dw * gam
    lin = abs(r - 1.0) < 1e-15
    un_lin = u0 + s * am * dw
    noise_lin = c2c * dw * abs(1.0 + gam * u0) * math.sqrt(am) * z
    rm = _pow_int_bits(r, abs(m), _POW_BITS)
    un_sl = rm * u0 + s * dw * (rm - 1.0) / (r - 1.0)
    v0 = 1.0 + gam * u0  # _step_noise
    eps = c2c * dw * gam / r
    zz = eps * eps
    s2 = am * _log1p_series(zz)
    y = math.sqrt(s2) * z - 0.5 * s2
    multi = v0 * rm * _expm1_series(y) / gam
    noise_sl = c2c * dw * abs(v0) * z if am == 1.0 else multi
    fine = (lin | (am == 1.0) | ((zz < LOG1P_SERIES_MAX) & (abs(y) < EXPM1_SERIES_MAX))) & (
        abs(m) < (1 << _POW_BITS))
    if c2c > 0.0:
        un = un_lin + noise_lin if lin else un_sl + noise_sl
    else:
        un = un_lin if lin else un_sl
    return _step_conductance(un, bmin, bmax, const), fine


@njit(cache=True, inline="always", error_model="numpy")
def _lane_commit(i, k, mi, am, wr, G0, G1, G, Gw, tau, cnt_up, cnt_dn, fix):
    """Store lane ``i``'s write (device ``k``) when ``wr``, else leave it (marked in ``fix``
    when it has pulses, for the scalar write); returns the mark."""
    f = (am != 0) & (not wr)
    fix[i] = f
    G[k] = G1 if wr else G0
    Gw[k] = G1 if wr else Gw[k]
    tau[k] = 0.0 if wr else tau[k]
    cnt_up[k] += am if (wr & (mi > 0)) else 0
    cnt_dn[k] += am if (wr & (mi < 0)) else 0
    return f


@njit(cache=True, inline="always", error_model="numpy")
def _lane_store(i, k, mi, am, simple, z, ok, G, Gw, tau, prm, const, c2c, cnt_up, cnt_dn, fix):
    """Lane ``i`` (device ``k``) of :func:`_lane_write`: write it if it can be finished here
    (``simple``, a fast draw), else leave it and mark it in ``fix``; returns the mark."""
    G0 = G[k]
    G1 = _lane_step(mi, G0, prm[0, k], prm[1, k], prm[2, k], prm[3, k], c2c, z[i], const)
    wr = (am != 0) & simple & ok[i]
    return _lane_commit(i, k, mi, am, wr, G0, G1, G, Gw, tau, cnt_up, cnt_dn, fix)


@njit(cache=True, inline="always", error_model="numpy")
def _lane_store_sloped(i, k, mi, am, simple, z, ok, G, Gw, tau, prm, const, c2c, cnt_up, cnt_dn,
                       fix):
    """:func:`_lane_store` for step devices with a slope (:func:`_lane_step_sloped`)."""
    G0 = G[k]
    G1, fine = _lane_step_sloped(mi, G0, prm[0, k], prm[1, k], prm[2, k], prm[3, k], prm[4, k],
                                 prm[5, k], c2c, z[i], const)
    wr = (am != 0) & simple & ok[i] & fine
    return _lane_commit(i, k, mi, am, wr, G0, G1, G, Gw, tau, cnt_up, cnt_dn, fix)


@njit(cache=True, inline="always", error_model="numpy")
def _lane_simple(k, am, frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset):
    """Device ``k`` can be written here: live, and its budget lasts past ``am`` more pulses."""
    used = cnt_up[k] + cnt_dn[k] + cnt_prog[k] + cnt_reset[k]
    return (frozen[k] == 0) & (used + am < budget[k]) & (not (am > budget[k] - used))


@njit(cache=True, error_model="numpy")
def _lane_write(unlimited, sloped, a, m, z, ok, G, Gw, tau, prm, const, c2c, frozen, budget,
                cnt_up, cnt_dn, cnt_prog, cnt_reset, fix):
    """:func:`_write_one` over the contiguous run of devices ``a + i`` (lane ``i`` of the work
    arrays ``m``, ``z``, ``ok``, ``fix``) for the lanes it can finish; marks the others in
    ``fix`` and returns their number. It indexes the whole state arrays (``a`` is unsigned, so
    the indexes need no wrap-around): a view of each array per row and side cost reference
    counting, about 0.9 us per dense row with the other passes' views (BENCHMARKS.md). Not
    inlined: inlined with its four loops, the tile kernel took about a minute longer to
    compile, for no measured gain. ``unlimited``: every
    budget of the run is infinite (the budget test is then ``frozen == 0``); ``sloped``: step
    devices with a slope (:func:`_lane_store_sloped`). One loop per case, so that each is a
    plain loop LLVM vectorizes."""
    nfix = 0
    if sloped and unlimited:
        for i in range(m.shape[0]):
            k = a + np.uint64(i)
            mi = m[i]
            nfix += _lane_store_sloped(i, k, mi, abs(mi), frozen[k] == 0, z, ok, G, Gw, tau, prm,
                                       const, c2c, cnt_up, cnt_dn, fix)
    elif sloped:
        for i in range(m.shape[0]):
            k = a + np.uint64(i)
            mi = m[i]
            am = abs(mi)
            simple = _lane_simple(k, am, frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset)
            nfix += _lane_store_sloped(i, k, mi, am, simple, z, ok, G, Gw, tau, prm, const, c2c,
                                       cnt_up, cnt_dn, fix)
    elif unlimited:
        for i in range(m.shape[0]):
            k = a + np.uint64(i)
            mi = m[i]
            nfix += _lane_store(i, k, mi, abs(mi), frozen[k] == 0, z, ok, G, Gw, tau, prm, const,
                                c2c, cnt_up, cnt_dn, fix)
    else:
        for i in range(m.shape[0]):
            k = a + np.uint64(i)
            mi = m[i]
            am = abs(mi)
            simple = _lane_simple(k, am, frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset)
            nfix += _lane_store(i, k, mi, am, simple, z, ok, G, Gw, tau, prm, const, c2c, cnt_up,
                                cnt_dn, fix)
    return nfix


@njit(cache=True, error_model="numpy")
def _lane_mode(fam, ms, n_out, n_in, route, prm, budget):
    """The lane mode of one update, for step models (family 1) when some sample has at least
    1/``_DENSE_SAMPLE`` of its inputs active: 1 (lanes) when no device the route writes has a
    slope (``prm[4] = prm[5] = 0``), 3 (the sloped lanes) otherwise; 2 and 4 when moreover every
    budget of those devices is infinite; else 0. Decided once per call (a scan of the parameter
    rows), and only for batches that can use it: a sparse batch pays nothing."""
    dense = False
    if fam == 1:
        for b in range(ms.shape[0]):
            dense |= ms[b] * _DENSE_SAMPLE >= n_in
    if not dense:
        return 0
    flat = True
    unl = True
    for k in range(n_out * n_in * (1 if route == 0 else 2)):
        flat &= (prm[4, k] == 0.0) & (prm[5, k] == 0.0)
        unl &= budget[k] == np.inf
    if flat:
        return 2 if unl else 1
    return 4 if unl else 3


@njit(cache=True, parallel=_SERIAL_PIPELINE, error_model="numpy")
def _lanes_scalar(routed, s, N, n_in, route, c, sgnv, fix, G, Gw, tau, fam, prm, const, lut_up,
                  lut_dn, c2c, base, frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset, W,
                  alpha, gref):
    """The scalar writes of a lane row, one of two jobs (``routed`` an int, never a literal):

    * ``routed`` 1: a row with few coincidences, synapse by synapse: synapses ``s + i`` with
      ``c[i]`` pulses of sign ``sgnv[i]``, routed and their cached weights refreshed as
      :func:`_route_write` does;
    * ``routed`` 0: the lanes of one side that the lane write left: devices ``s + i`` with
      ``fix[i]``, ``c[i]`` signed pulses (:func:`_write_one`).

    One function with one call of :func:`_write_one`, so that numba compiles the scalar write
    once for both jobs (two functions, or two calls, each compiled their own copy: about 5 s
    each of a first run). Not inlined into :func:`_tile_lanes`, which took about a minute
    longer to compile with the scalar write inlined there twice more. ``routed`` is passed as
    ``np.int64``: a constant argument is typed as a literal, and numba compiles (and inlines
    the writes into) a copy of the function for each value."""
    nq = 1 if routed == 0 or route != 1 else 2
    for i in range(n_in):
        if (c[i] == 0) if routed != 0 else (not fix[i]):
            continue
        for q in range(nq):
            if routed != 0:
                tgt, mq = _route_target(s + i, N, sgnv[i], c[i], route, q)
            else:
                tgt, mq = s + i, c[i]
            _write_one(tgt, mq, G, Gw, tau, fam, prm, const, lut_up, lut_dn, c2c, base, frozen,
                       budget, cnt_up, cnt_dn, cnt_prog, cnt_reset, False)
        if routed != 0:
            _cache_weight(s + i, N, G, W, alpha, gref)


@njit(cache=True, parallel=_SERIAL_PIPELINE, error_model="numpy")
def _tile_lanes(t, rows, nzx, ms, G, Gw, tau, fam, prm, const, lut_up, lut_dn, c2c, bases,
                frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset, xbits, dbits, xneg, dneg,
                n_out, n_in, route, W, alpha, gref, unlimited, sloped):
    """:func:`_update_tile` for a tile of step devices: a row (output ``j``, one sample, a
    train with pulses) of a sample with many active inputs lane by lane, the others synapse
    by synapse. Not inlined: its work arrays, inlined into the ``parallel=True`` kernels,
    became parallel regions. The small lane passes are inlined into it, and they and
    :func:`_lane_write` index the whole arrays (no view per row and side)."""
    N = n_out * n_in
    j0 = t * rows
    j1 = min(j0 + rows, n_out)
    cnt = np.empty(n_in, dtype=np.int64)
    sgnv = np.empty(n_in, dtype=np.int64)
    m = np.empty(n_in, dtype=np.int64)
    z = np.zeros(n_in, dtype=np.float64)
    ok = np.ones((n_in + 7) // 8 * 8, dtype=np.bool_)  # lanes past the row stay True
    okw = ok.view(np.uint64)
    fix = np.empty(n_in, dtype=np.bool_)
    words = dbits.shape[2]
    acc = 0
    for b in range(xbits.shape[0]):
        mb = ms[b]
        if mb == 0:
            continue
        base = bases[b]
        for j in range(j0, j1):
            if mb * _LANE_ROW < n_in:
                acc += _update_row(b, j, mb, nzx, xbits, dbits, xneg, dneg, n_in, N, route, G,
                                   Gw, tau, fam, prm, const, lut_up, lut_dn, c2c, base, frozen,
                                   budget, cnt_up, cnt_dn, cnt_prog, cnt_reset, W, alpha, gref)
                continue
            row_empty = True
            for w in range(words):
                if dbits[b, j, w] != 0:
                    row_empty = False
            if row_empty:  # before the passes: most rows of a sparse batch are empty
                continue
            if words == 1:
                tot, nnz = _lane_counts(xbits[b, :, 0], dbits[b, j, 0], xneg[b], dneg[b, j],
                                        cnt, sgnv)
            else:
                tot, nnz = _lane_counts_words(xbits[b], dbits[b, j], xneg[b], dneg[b, j], cnt,
                                              sgnv)
            if tot == 0:
                continue
            acc += tot
            s0 = j * n_in
            if nnz * _LANE_ROW < n_in:  # few coincidences: the scalar writes
                _lanes_scalar(np.int64(1), s0, N, n_in, route, cnt, sgnv, fix, G, Gw, tau, fam,
                              prm, const, lut_up, lut_dn, c2c, base, frozen, budget, cnt_up,
                              cnt_dn, cnt_prog, cnt_reset, W, alpha, gref)
                continue
            for q in range(1 if route == 0 else 2):
                a = q * N + s0
                _lane_side(route, q, cnt, sgnv, m)
                if c2c > 0.0 and _lane_normals(base, a, m, z, ok):
                    _lane_slow_normals(base, a, z, ok, okw)
                nfix = _lane_write(unlimited, sloped, np.uint64(a), m, z, ok, G, Gw, tau, prm,
                                   const, c2c, frozen, budget, cnt_up, cnt_dn, cnt_prog,
                                   cnt_reset, fix)
                if nfix:
                    _lanes_scalar(np.int64(0), a, N, n_in, route, m, sgnv, fix, G, Gw, tau, fam,
                                  prm, const, lut_up, lut_dn, c2c, base, frozen, budget, cnt_up,
                                  cnt_dn, cnt_prog, cnt_reset, W, alpha, gref)
            p = np.uint64(s0)
            if gref < 0.0:
                n = np.uint64(N) + p
                for i in range(n_in):
                    k = p + np.uint64(i)
                    W[k] = alpha * (G[k] - G[n + np.uint64(i)]) if cnt[i] != 0 else W[k]
            else:
                for i in range(n_in):
                    k = p + np.uint64(i)
                    W[k] = alpha * (G[k] - gref) if cnt[i] != 0 else W[k]
    return acc


@njit(cache=True, inline="always", error_model="numpy")
def _pick_table(prm_dm, prm):
    """The parameter table a scattered write reads: ``prm_dm`` when it is ``prm`` in
    device-major order (:func:`pulse_update`), else ``prm``."""
    same = prm_dm.shape[0] == prm.shape[0] and prm_dm.shape[1] == prm.shape[1]
    return prm_dm if same else prm


@njit(cache=True, inline="always", error_model="numpy")
def _update_tile(t, rows, nzx, ms, G, Gw, tau, fam, const, lut_up, lut_dn, c2c, bases, frozen,
                 budget, cnt_up, cnt_dn, cnt_prog, cnt_reset, trains, n_out, n_in, route, W,
                 alpha, gref, tbl):
    """All samples of the batch, in order, on the rows of tile ``t``, synapse by synapse
    (:func:`_update_row`, only the rows with a pulse); returns its coincidences. ``trains`` is
    ``(xbits, dbits, xneg, dneg, nzd, md)`` (one argument: numba inlines no function of more
    than 30; ``nzd[b, :md[b]]`` are the output rows of sample ``b`` with a pulse). ``tbl``: the
    parameter table the rows read (``prm``, or the same values in device-major order:
    :func:`pulse_update`)."""
    xbits, dbits, xneg, dneg, nzd, md = trains
    N = n_out * n_in
    j0 = t * rows
    j1 = min(j0 + rows, n_out)
    acc = 0
    for b in range(xbits.shape[0]):
        m = ms[b]
        if m == 0:
            continue
        k = _first_at_least(nzd, b, md[b], j0)
        while k < md[b] and nzd[b, k] < j1:
            acc += _update_row(b, nzd[b, k], m, nzx, xbits, dbits, xneg, dneg, n_in, N, route,
                               G, Gw, tau, fam, tbl, const, lut_up, lut_dn, c2c, bases[b],
                               frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset, W, alpha,
                               gref)
            k += 1
    return acc


@njit(cache=True, parallel=_SERIAL_PIPELINE, error_model="numpy")
def _update_tiles(t0, t1, rows, nzx, ms, G, Gw, tau, fam, const, lut_up, lut_dn, c2c, bases,
                  frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset, trains, n_out, n_in,
                  route, W, alpha, gref, tbl):
    """:func:`_update_tile` on tiles ``t0 <= t < t1`` in order; returns their coincidences.
    Compiled once for both rows kernels (inlined into each, and into the parallel one's loop
    body too, numba compiled the synapse-by-synapse writes three times: 25 + 14 s of a first
    run), and called once a kernel (serial) or once a thread (parallel): called once a tile of
    one row, its arguments' reference counts cost 6-8% of the 784-256 layer's sparse update."""
    acc = 0
    for t in range(t0, t1):
        acc += _update_tile(t, rows, nzx, ms, G, Gw, tau, fam, const, lut_up, lut_dn, c2c,
                            bases, frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset, trains,
                            n_out, n_in, route, W, alpha, gref, tbl)
    return acc


# The pulse-train update is two pairs of kernels. The rows kernels (_rows_ser, _rows_par) first
# decide the lane mode (_lane_mode); a batch without lanes (mode 0: every batch of sparse
# training, every model but the step models) is written there, synapse by synapse; a batch with
# lanes makes them return -mode, and the host calls the lane kernels (_lanes_ser, _lanes_par),
# which recompute the compact lists (a pass over the trains, nothing beside a dense update).
# Kept apart so that numba compiles the lanes (_tile_lanes and what it inlines, about 28 s of
# the first 40 bridge steps' 83 s from an empty cache) only for a process that takes them.
@njit(cache=True, parallel=True, error_model="numpy")
def _rows_par(st, pa, bases, xbits, dbits, xneg, dneg, n_out, n_in, route, W, alpha, gref, rows,
              prm_dm, sparse):
    G, Gw, tau, frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset = st
    fam, prm, const, lut_up, lut_dn, c2c, gmin = pa
    tbl = _pick_table(prm_dm, prm)
    nzx, ms = _compact_all(xbits, n_in)
    mode = _lane_mode(fam, ms, n_out, n_in, route, prm, budget)
    if mode > 0:
        return -mode
    nzd, md = _compact_all(dbits, n_out)
    rows = _sparse_rows(rows, nzx, ms, n_in, n_out, sparse[0], sparse[1])
    n_tiles = (n_out + rows - 1) // rows
    # one group of consecutive tiles a thread (sparse[1] is _TILES_PER_THREAD a thread; at
    # least 2 groups): numba splits a prange evenly between its threads, so each thread runs the
    # tiles it ran before, with one call (more calls, 8 a thread, cost 1-3% of a sparse update)
    n_groups = min(n_tiles, max(sparse[1] // _TILES_PER_THREAD, 2))
    tot = np.zeros(n_groups, dtype=np.int64)
    for gp in prange(n_groups):
        g = np.int64(gp)  # parfor indices may be unsigned; keep index arithmetic signed
        tot[g] = _update_tiles(g * n_tiles // n_groups, (g + 1) * n_tiles // n_groups, rows, nzx,
                               ms, G, Gw, tau, fam, const, lut_up, lut_dn, c2c, bases, frozen,
                               budget, cnt_up, cnt_dn, cnt_prog, cnt_reset,
                               (xbits, dbits, xneg, dneg, nzd, md), n_out, n_in, route, W,
                               alpha, gref, tbl)
    return tot.sum()


@njit(cache=True, parallel=True, error_model="numpy")  # see _SERIAL_NOTE
def _rows_ser(st, pa, bases, xbits, dbits, xneg, dneg, n_out, n_in, route, W, alpha, gref, rows,
              prm_dm, sparse):
    G, Gw, tau, frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset = st
    fam, prm, const, lut_up, lut_dn, c2c, gmin = pa
    tbl = _pick_table(prm_dm, prm)
    nzx, ms = _compact_all(xbits, n_in)
    mode = _lane_mode(fam, ms, n_out, n_in, route, prm, budget)
    if mode > 0:
        return -mode
    nzd, md = _compact_all(dbits, n_out)
    rows = _sparse_rows(rows, nzx, ms, n_in, n_out, sparse[0], 1)  # one thread: no least count
    # np.int64(0), not 0: numba would type the constant as a literal and compile a second
    # _update_tiles for it
    return _update_tiles(np.int64(0), (n_out + rows - 1) // rows, rows, nzx, ms, G, Gw, tau, fam,
                         const, lut_up, lut_dn, c2c, bases, frozen, budget, cnt_up, cnt_dn,
                         cnt_prog, cnt_reset, (xbits, dbits, xneg, dneg, nzd, md), n_out, n_in,
                         route, W, alpha, gref, tbl)


@njit(cache=True, parallel=True, error_model="numpy")
def _lanes_par(st, pa, bases, xbits, dbits, xneg, dneg, n_out, n_in, route, W, alpha, gref, rows,
               mode):
    G, Gw, tau, frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset = st
    fam, prm, const, lut_up, lut_dn, c2c, gmin = pa
    nzx, ms = _compact_all(xbits, n_in)
    n_tiles = (n_out + rows - 1) // rows
    tot = np.zeros(n_tiles, dtype=np.int64)
    for tp in prange(n_tiles):
        t = np.int64(tp)
        tot[t] = _tile_lanes(t, rows, nzx, ms, G, Gw, tau, fam, prm, const, lut_up, lut_dn, c2c,
                             bases, frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset, xbits,
                             dbits, xneg, dneg, n_out, n_in, route, W, alpha, gref,
                             (mode == 2) | (mode == 4), mode >= 3)
    return tot.sum()


@njit(cache=True, parallel=True, error_model="numpy")  # see _SERIAL_NOTE
def _lanes_ser(st, pa, bases, xbits, dbits, xneg, dneg, n_out, n_in, route, W, alpha, gref, rows,
               mode):
    G, Gw, tau, frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset = st
    fam, prm, const, lut_up, lut_dn, c2c, gmin = pa
    nzx, ms = _compact_all(xbits, n_in)
    total = 0
    for t in range((n_out + rows - 1) // rows):
        total += _tile_lanes(t, rows, nzx, ms, G, Gw, tau, fam, prm, const, lut_up, lut_dn, c2c,
                             bases, frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset, xbits,
                             dbits, xneg, dneg, n_out, n_in, route, W, alpha, gref,
                             (mode == 2) | (mode == 4), mode >= 3)
    return total


def _rows_then_lanes(rows_kernel, lanes_kernel, args):
    """``rows_kernel(*args)``, then, when the batch takes the lanes (a negative return: minus
    the lane mode), ``lanes_kernel`` on the same arguments but ``prm_dm`` and ``sparse`` (which
    only the rows read), with the mode. Returns the coincidences."""
    total = rows_kernel(*args)
    return total if total >= 0 else lanes_kernel(*args[:-2], -total)


def _update_ser(*args):
    """The serial pulse-train update of one batch (the arguments of :func:`_rows_ser`):
    :func:`_rows_ser`, then :func:`_lanes_ser` when the batch takes the lanes."""
    return _rows_then_lanes(_rows_ser, _lanes_ser, args)


def _update_par(*args):
    """:func:`_update_ser` on numba's threads (:func:`_rows_par`, :func:`_lanes_par`)."""
    return _rows_then_lanes(_rows_par, _lanes_par, args)


# the kernels' prm_dm when there is no device-major table: Fortran-ordered and not contiguous
# in C order (so both cases compile to one signature), with a row more than any parameter
# table (so :func:`_pick_table` never reads it)
_NO_TABLE = np.empty((PRM_ROWS + 1, 2), order="F")


def _table(prm_dm, params):
    """The kernels' ``prm_dm`` argument: ``prm_dm`` checked, or an empty table (read ``prm``)."""
    if prm_dm is None:
        return _NO_TABLE
    if prm_dm.shape != params.prm.shape or not prm_dm.flags.f_contiguous:
        raise ValueError(
            f"prm_dm must be params.prm in Fortran order, shape {params.prm.shape}; got shape "
            f"{prm_dm.shape}" + ("" if prm_dm.flags.f_contiguous else " not in Fortran order")
        )
    return prm_dm


def pulse_update(state, params, bases, xbits, dbits, xneg, dneg, n_out, n_in, route, W, alpha,
                 gref, prm_dm=None):
    """Stochastic pulse-train update: the samples in order on each synapse, cache-blocked over
    tiles of rows (see module docs).

    ``prm_dm``, optional: ``params.prm`` in device-major (Fortran) order
    (``np.asfortranarray(params.prm)``, the same values), read by the synapse-by-synapse rows:
    a device's parameters then lie in one or two cache lines instead of one line per parameter
    row, which on a sparse batch over a state larger than the cache is most of a write's misses.
    The dense lanes keep reading the row-major table (contiguous rows for SIMD loads). Results
    are the same either way."""
    rows = _tile_rows(n_in, n_out)
    work = state.G.size * xbits.shape[0]
    serial = n_out <= rows or work < min(_ADAPT_MIN_UPDATE, _PARALLEL_MIN_UPDATE)
    # sparse batches: tiles of about _TILE_BYTES of the state their writes touch, at least
    # _TILES_PER_THREAD a thread for the parallel twin (the count is an argument, not read in
    # the kernel: numba's get_num_threads there would keep the kernel out of the cache)
    sparse = (_TILE_BYTES, 1 if serial else _TILES_PER_THREAD * numba_threads())
    args = (tuple(state), tuple(params), np.asarray(bases, dtype=np.uint64), xbits, dbits, xneg,
            dneg, n_out, n_in, route, W, float(alpha), float(gref), rows, _table(prm_dm, params),
            sparse)
    if serial:
        return int(_update_ser(*args))
    if work >= _PARALLEL_MIN_UPDATE:
        return int(_update_par(*args))
    key = ("update", state.G.size, xbits.shape[0])
    return int(timed_twin(_SITES, key, _update_ser, _update_par, *args))


# ----------------------------------------------------------------------------- requests
@njit(cache=True, parallel=_SERIAL_PIPELINE, error_model="numpy")
def _count(v, s, step_up, step_dn, theta, n_max, stochastic, base_r):
    """Whole pulses for request ``v`` (dead zone ``theta`` or stochastic rounding), capped."""
    r = v / step_up if v > 0.0 else -v / step_dn
    fl = math.floor(r)
    frac = r - fl
    if stochastic:
        n = int(fl) + (1 if _uniform(base_r, np.uint64(s)) < frac else 0)
    else:
        n = int(fl) + (1 if frac >= theta else 0)
    if n_max > 0 and n > n_max:
        n = n_max
    return n


@njit(cache=True, inline="always", error_model="numpy")
def _flag_refresh(s, N, G, gmin_dev, dg_nom, thr, half_step):
    """Pair ``s`` needs a refresh: larger device at ``thr`` of the range while the other is
    more than half a nominal step above its own Gmin."""
    gp = (G[s] - gmin_dev[_col(gmin_dev, s)]) / dg_nom
    gm = (G[N + s] - gmin_dev[_col(gmin_dev, N + s)]) / dg_nom
    hi = gp if gp > gm else gm
    lo = gm if gp > gm else gp
    return hi >= thr and lo > half_step


# Requests are handled a chunk of synapses at a time. A first pass lists the synapses of the
# chunk whose request can write (outside the dead zone) without a branch per synapse: a branch
# on each synapse would be mispredicted at every written synapse, scattered over the layer
# (5-30% per batch), and at every one after it, about 20 ns each on this benchmark
# (_list_writes). The second pass writes the listed synapses in order, prefetching the lines of
# the write _AHEAD entries ahead, so that the misses of successive writes overlap. The writes
# keep their order and draws: results do not change.
_CHUNK = 1024                    # synapses per chunk (its list: 8 KiB)
_WORD = 64                       # synapses per bit mask of the listing


@njit(cache=True, inline="always", error_model="numpy")
def _listed(v, skip):
    """1 when request ``v`` is listed for a write: outside the dead zone ``|v| < skip`` and not
    zero (a NaN is listed, and counted as bad by the write pass), else 0."""
    return 1 - ((abs(v) < skip) | (v == 0.0))


@njit(cache=True, inline="always", error_model="numpy")
def _list_writes(c0, c1, dW, skip, lst, flags):
    """List in ``lst`` the synapses ``c0 <= s < c1`` with :func:`_listed` requests, in
    increasing order; returns their number. ``flags``: 64 bytes of scratch.

    64 synapses at a time: their 0/1 flags are stored as bytes by a loop that LLVM vectorizes
    (unsigned indexes: no wrap-around test), gathered into one 64-bit mask eight bytes per
    multiply (:data:`~.bits.PACK8`), and the mask's set bits listed one ``tzcnt`` each. Storing
    every index and advancing the count by the flag (the tail, and big-endian machines) costs a
    dependent store per synapse, about 0.9 ns a synapse; this way about 0.2 ns when 5% are listed
    (the first layer of the MNIST MLP at lr 0.01) and 0.75 ns when 90% are."""
    m = 0
    s = np.uint64(c0)
    end = np.uint64(c1)
    if LITTLE_ENDIAN:
        words = flags.view(np.uint64)
        while s + np.uint64(_WORD) <= end:
            for t in range(_WORD):
                flags[t] = _listed(dW[s + np.uint64(t)], skip)
            mask = np.uint64(0)
            for w in range(_WORD // 8):
                mask |= ((words[w] * PACK8) >> np.uint64(56)) << np.uint64(8 * w)
            while mask != 0:
                lst[m] = np.int64(s + trailing_zeros(mask))
                m += 1
                mask &= mask - np.uint64(1)
            s += np.uint64(_WORD)
    for q in range(np.int64(s), c1):
        lst[m] = q
        m += _listed(dW[q], skip)
    return m


@njit(cache=True, inline="always", error_model="numpy")
def _request_chunk(c0, c1, lst, flags, st, pa, prm_dm, dW, step_up, step_dn, theta, n_max,
                   stochastic, route, base, base_r, thr, half_step, dg_nom, need, W, alpha, gref):
    """Requests of synapses ``c0 <= s < c1`` (``lst``: room for their list, ``flags``: the
    scratch of :func:`_list_writes`); returns (device pulses sent, non-finite requests)."""
    G, Gw, tau, frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset = st
    fam, prm, const, lut_up, lut_dn, c2c, gmin = pa
    prm = _pick_table(prm_dm, prm)
    # requests below skip round to zero pulses (nearest rounding's dead zone)
    skip = 0.0 if stochastic else theta * min(step_up, step_dn)
    N = dW.size
    m = _list_writes(c0, c1, dW, skip, lst, flags)
    for t in range(min(m, _AHEAD)):
        s = lst[t]
        _prefetch_route(s, N, 1 if dW[s] > 0.0 else -1, route, fam, G, Gw, tau, prm, frozen,
                        budget, cnt_up, cnt_dn, W)
    total = 0
    bad = 0
    for t in range(m):
        if t + _AHEAD < m:
            s = lst[t + _AHEAD]
            _prefetch_route(s, N, 1 if dW[s] > 0.0 else -1, route, fam, G, Gw, tau, prm, frozen,
                            budget, cnt_up, cnt_dn, W)
        s = lst[t]
        v = dW[s]
        if not math.isfinite(v):
            bad += 1
            continue
        n = _count(v, s, step_up, step_dn, theta, n_max, stochastic, base_r)
        if n == 0:
            continue
        total += _route_write(s, N, 1 if v > 0.0 else -1, n, route, G, Gw, tau, fam, prm, const,
                              lut_up, lut_dn, c2c, base, frozen, budget, cnt_up, cnt_dn, cnt_prog,
                              cnt_reset, W, alpha, gref)
        if thr > 0.0:
            need[s] = _flag_refresh(s, N, G, gmin, dg_nom, thr, half_step)
    return total, bad


@njit(cache=True, parallel=_SERIAL_PIPELINE, error_model="numpy")
def _request_chunks(k0, k1, st, pa, prm_dm, dW, step_up, step_dn, theta, n_max, stochastic,
                    route, base, base_r, thr, half_step, dg_nom, need, W, alpha, gref):
    """:func:`_request_chunk` on chunks ``k0 <= k < k1`` in order (synapses ``k _CHUNK`` to
    ``(k + 1) _CHUNK``); returns (device pulses sent, non-finite requests). Compiled once for
    both request twins and called once a kernel (serial) or once per group of chunks (parallel),
    as :func:`_update_tiles`."""
    N = dW.size
    lst = np.empty(_CHUNK, dtype=np.int64)
    flags = np.empty(_WORD, dtype=np.uint8)
    total = 0
    bad = 0
    for k in range(k0, k1):
        c0 = k * _CHUNK
        sent, nbad = _request_chunk(
            c0, min(N, c0 + _CHUNK), lst, flags, st, pa, prm_dm, dW, step_up, step_dn, theta, n_max,
            stochastic, route, base, base_r, thr, half_step, dg_nom, need, W, alpha, gref)
        total += sent
        bad += nbad
    return total, bad


@njit(cache=True, parallel=True, error_model="numpy")
def _request_par(st, pa, dW, step_up, step_dn, theta, n_max, stochastic, route, base, base_r,
                 thr, half_step, dg_nom, need, W, alpha, gref, prm_dm, groups):
    """The request kernel on numba's threads: ``groups`` groups of consecutive chunks (at least
    2; one a thread), split between the threads as the chunks themselves were."""
    n_chunks = (dW.size + _CHUNK - 1) // _CHUNK
    n_groups = min(n_chunks, max(groups, 2))
    tot = np.zeros((n_groups, 2), dtype=np.int64)
    for gp in prange(n_groups):
        g = np.int64(gp)  # parfor indices may be unsigned; keep arithmetic signed
        tot[g, 0], tot[g, 1] = _request_chunks(
            g * n_chunks // n_groups, (g + 1) * n_chunks // n_groups, st, pa, prm_dm, dW, step_up,
            step_dn, theta, n_max, stochastic, route, base, base_r, thr, half_step, dg_nom, need,
            W, alpha, gref)
    return tot[:, 0].sum(), tot[:, 1].sum()


@njit(cache=True, parallel=True, error_model="numpy")  # see _SERIAL_NOTE
def _request_ser(st, pa, dW, step_up, step_dn, theta, n_max, stochastic, route, base, base_r,
                 thr, half_step, dg_nom, need, W, alpha, gref, prm_dm):
    # np.int64(0): a literal 0 would compile a second _request_chunks (see _rows_ser)
    return _request_chunks(
        np.int64(0), (dW.size + _CHUNK - 1) // _CHUNK, st, pa, prm_dm, dW, step_up, step_dn,
        theta, n_max, stochastic, route, base, base_r, thr, half_step, dg_nom, need, W, alpha,
        gref)


def pulse_request(state, params, dW, step_up, step_dn, theta, n_max, stochastic, route, base,
                  base_r, thr, half_step, dg_nom, need, W, alpha, gref, prm_dm=None):
    """Requested weight changes -> rounded pulse counts -> routed writes, in one pass.
    ``prm_dm``: as in :func:`pulse_update` (the written synapses are scattered over the array,
    so a device-major table saves most of a write's parameter misses here too)."""
    args = (tuple(state), tuple(params), dW, float(step_up), float(step_dn), float(theta),
            int(n_max), bool(stochastic), int(route), np.uint64(base), np.uint64(base_r),
            float(thr), float(half_step), float(dg_nom), need, W, float(alpha), float(gref),
            _table(prm_dm, params))
    n = state.G.size
    if n >= _PARALLEL_MIN:
        sent, bad = _request_threads(*args)
    elif n < _ADAPT_MIN or dW.size <= _CHUNK:
        sent, bad = _request_ser(*args)
    else:
        sent, bad = timed_twin(_SITES, ("request", n), _request_ser, _request_threads, *args)
    return int(sent), int(bad)


def _request_threads(*args):
    """:func:`_request_par` on the serial twin's arguments, with one group of chunks a thread
    (see :func:`_rows_par`)."""
    return _request_par(*args, numba_threads())
# ----------------------------------------------------------------------------- verify
_MASK_PHI = np.uint64(PHI)


@njit(cache=True, parallel=_SERIAL_PIPELINE, error_model="numpy")
def _call_base(key, counter):
    return _mix(key ^ (np.uint64(counter) * _MASK_PHI))


@njit(cache=True, inline="always", error_model="numpy")
def _nominal_x(fam, G, pn, const, lut_up):
    """Pulse coordinate of G on the nominal LTP curve (reference.coordinate, up branch)."""
    if fam == 0:
        g = _clip((G - pn[0]) / (pn[1] - pn[0]), 0.0, 1.0)
        return pn[4] * _exp_inv(g, pn[2], pn[6])
    if fam == 1:
        bmin = pn[0]
        u = _step_coord(G, pn[0], pn[1], const)
        dw = pn[2]
        r = 1.0 + dw * pn[4]
        if abs(r - 1.0) < 1e-15:
            return abs(u - bmin) / dw
        ustar = dw / (1.0 - r)
        ratio = (u - ustar) / (bmin - ustar)
        if not ratio > 0.0:
            return np.inf
        return math.log(ratio) / math.log(r)
    g = _clip((G - pn[0]) / (pn[1] - pn[0]), 0.0, 1.0)
    return _lut_inv(g, lut_up)


@njit(cache=True, inline="always", error_model="numpy")
def _nominal_G(fam, x, pn, const, lut_up):
    """Conductance at coordinate x of the nominal LTP curve (reference.curve, up branch)."""
    if fam == 0:
        P = pn[4]
        return pn[0] + (pn[1] - pn[0]) * _exp_fwd(_clip(x, 0.0, P) / P, pn[2], pn[6])
    if fam == 1:
        bmin = pn[0]
        bmax = pn[1]
        dw = pn[2]
        p = x if x > 0.0 else 0.0
        r = 1.0 + dw * pn[4]
        if abs(r - 1.0) < 1e-15:
            u = bmin + p * dw
        else:
            ustar = dw / (1.0 - r)
            u = ustar + (bmin - ustar) * r**p
        return _step_conductance(u, bmin, bmax, const)
    return pn[0] + (pn[1] - pn[0]) * _lut_fwd(x, lut_up)


@njit(cache=True, inline="always", error_model="numpy")
def _verify_reuse(i, fam, read_sigma, prm, pn, budget):
    """An exponential-model device with the nominal parameters and no endurance limit, read
    without noise: its write of ``chunk`` pulses from the reading lands, before the noise, on
    the curve point the verify step has just computed (the same float operations as
    :func:`_apply_one`'s, on the same values), so the write reuses it instead of computing the
    curve again (a log and an exp per step)."""
    j = _col(prm, i)
    return (fam == 0 and not read_sigma > 0.0 and budget[_col(budget, i)] == math.inf
            and prm[0, j] == pn[0] and prm[1, j] == pn[1] and prm[2, j] == pn[2]
            and prm[4, j] == pn[4] and prm[6, j] == pn[6])


@njit(cache=True, inline="always", error_model="numpy")
def _verify_look(k, t, G, idx, target, tol_g, read_sigma, key, c0, fam, pn, const, lut_up,
                 frozen):
    """Step ``t`` of the program-and-verify of the ``k``-th listed device, its read: returns
    (go on, error of the reading, pulse coordinate of the reading); a frozen device, or one
    read within ``tol_g`` of its target, is done (the coordinate is then not computed)."""
    s = 1 if read_sigma > 0.0 else 0
    i = idx[k]
    Gr = G[i]
    if s == 1:
        Gr = Gr * (1.0 + read_sigma * _normal(_call_base(key, c0 + t * (1 + s)), i))
    err = abs(Gr - target[k])
    if not (frozen[i] == 0 and err > tol_g):
        return False, err, 0.0
    return True, err, _nominal_x(fam, Gr, pn, const, lut_up)


@njit(cache=True, inline="always", error_model="numpy")
def _verify_go(k, t, err, x_r, used, G, Gw, tau, idx, target, x_t, cap, read_sigma, key, c0,
               fam, prm, const, lut_up, lut_dn, pn, c2c, frozen, budget, cnt_up, cnt_dn,
               cnt_prog, cnt_reset):
    """Step ``t`` of the program-and-verify of the ``k``-th listed device, its write (after
    :func:`_verify_look`; ``used`` pulses so far): half the remaining nominal pulses (one below
    four), if that brings the nominal curve closer to the target. Returns the pulses sent, -1
    when the device is done."""
    s = 1 if read_sigma > 0.0 else 0
    i = idx[k]
    rem = x_t[k] - x_r
    chunk = int(math.floor(rem / 2.0)) if rem >= 4.0 else 1
    if chunk > cap - used:
        chunk = cap - used
    nxt = _nominal_G(fam, x_r + chunk, pn, const, lut_up)
    if not (abs(nxt - target[k]) < err and chunk > 0):
        return -1
    if _verify_reuse(i, fam, read_sigma, prm, pn, budget):
        # _write_one of chunk > 0 programming pulses on a live, unlimited device
        cnt_prog[i] += chunk
        j = _col(prm, i)
        gmin = prm[0, j]
        gmax = prm[1, j]
        G1 = nxt
        if c2c > 0.0:
            G1 += (c2c * (gmax - gmin) * math.sqrt(float(chunk))
                   * _normal(_call_base(key, c0 + t), i))
        G1 = _clip(G1, gmin, gmax)
        G[i] = G1
        Gw[i] = G1
        tau[i] = 0.0
    else:
        _write_one(i, chunk, G, Gw, tau, fam, prm, const, lut_up, lut_dn, c2c,
                   _call_base(key, c0 + t * (1 + s) + s), frozen, budget, cnt_up, cnt_dn,
                   cnt_prog, cnt_reset, True)
    return chunk


@njit(cache=True, inline="always", error_model="numpy")
def _verify_one(k, G, Gw, tau, idx, target, x_t, tol_g, cap, read_sigma, key, c0, fam, prm,
                const, lut_up, lut_dn, pn, c2c, frozen, budget, cnt_up, cnt_dn, cnt_prog,
                cnt_reset):
    """Program-and-verify of the k-th listed device; returns its number of write steps."""
    used = 0
    w = 0
    for t in range(4 * cap + 8):
        go, err, x_r = _verify_look(k, t, G, idx, target, tol_g, read_sigma, key, c0, fam, pn,
                                    const, lut_up, frozen)
        if not go:
            break
        chunk = _verify_go(k, t, err, x_r, used, G, Gw, tau, idx, target, x_t, cap, read_sigma,
                           key, c0, fam, prm, const, lut_up, lut_dn, pn, c2c, frozen, budget,
                           cnt_up, cnt_dn, cnt_prog, cnt_reset)
        if chunk < 0:
            break
        used += chunk
        w = t + 1
    return w


@njit(cache=True, parallel=_SERIAL_PIPELINE, error_model="numpy")
def _verify_many(m, G, Gw, tau, idx, target, x_t, tol_g, cap, read_sigma, key, c0, fam, prm,
                 const, lut_up, lut_dn, pn, c2c, frozen, budget, cnt_up, cnt_dn, cnt_prog,
                 cnt_reset, used, act, errs, xrs):
    """:func:`_verify_one` of the first ``m`` listed devices (distinct), step by step across
    the devices instead of device after device: the same steps on the same values (the devices
    are independent, their noise indexed by device and step), so the same results, in passes
    whose iterations do not depend on each other (the reads with their ``log1p``, then the
    writes with their ``expm1``), which the processor overlaps. Returns the longest sequence
    of write steps. ``used``, ``act`` (int) and ``errs``, ``xrs`` (float) are scratch of at
    least ``m`` entries."""
    for k in range(m):
        act[k] = k
        used[k] = 0
    na = m
    wmax = 0
    for t in range(4 * cap + 8):
        if na == 0:
            break
        nb = 0
        for q in range(na):  # the reads; the devices still going move to the front
            k = act[q]
            go, err, x_r = _verify_look(k, t, G, idx, target, tol_g, read_sigma, key, c0, fam,
                                        pn, const, lut_up, frozen)
            if go:
                act[nb] = k
                errs[nb] = err
                xrs[nb] = x_r
                nb += 1
        na = 0
        for q in range(nb):  # the writes
            k = act[q]
            chunk = _verify_go(k, t, errs[q], xrs[q], used[k], G, Gw, tau, idx, target, x_t,
                               cap, read_sigma, key, c0, fam, prm, const, lut_up, lut_dn, pn,
                               c2c, frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset)
            if chunk >= 0:
                used[k] += chunk
                act[na] = k
                na += 1
                wmax = t + 1
    return wmax


@njit(cache=True, parallel=True, error_model="numpy")  # serial loop; see _SERIAL_NOTE
def _verify_ser(st, pa, idx, target, x_t, tol_g, cap, read_sigma, key, c0, pn):
    G, Gw, tau, frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset = st
    fam, prm, const, lut_up, lut_dn, c2c, gmin = pa
    m = idx.size
    return _verify_many(m, G, Gw, tau, idx, target, x_t, tol_g, cap, read_sigma, key, c0, fam,
                        prm, const, lut_up, lut_dn, pn, c2c, frozen, budget, cnt_up, cnt_dn,
                        cnt_prog, cnt_reset, np.empty(m, np.int64), np.empty(m, np.int64),
                        np.empty(m), np.empty(m))


def verify(state, params, idx, target, x_t, tol_g, cap, read_sigma, key, c0, prm_nom):
    """Program-and-verify devices ``idx`` toward ``target`` (see the reference docstring)."""
    return int(_verify_ser(tuple(state), tuple(params), np.asarray(idx, dtype=np.int64),
                           np.asarray(target, dtype=np.float64),
                           np.asarray(x_t, dtype=np.float64), float(tol_g), int(cap),
                           float(read_sigma), np.uint64(key), int(c0),
                           np.ascontiguousarray(prm_nom[:, 0])))
# fmt: on


# Per-element helpers shared with the fused kernels of :mod:`devices.kernels.online` and
# :mod:`devices.kernels.refresh` (public names of the same jitted functions, so those modules
# do not import private names).
count_one = _count
write_many = _write_many
route_target = _route_target
flag_refresh_one = _flag_refresh
verify_many = _verify_many
SERIAL_PIPELINE = _SERIAL_PIPELINE  # the compile options of the non-inlined helpers
verify_serial = _verify_ser  # the verify kernel itself, called (not inlined) by refresh.py
call_base_one = _call_base
nominal_x_one = _nominal_x
col_one = _col
clip_one = _clip
normal_one = _normal
