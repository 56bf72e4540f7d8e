"""Fused batch-1 update of every layer of one presentation: request, rounding, routing, writes
and refresh in one call; and whole presentations of a sigmoid network (reads, loss, backward,
update), many per call (:func:`present_block`, with numpy's own product and ``tanh`` from
:mod:`.numpy_calls`).

The online (batch-1) pulse-backprop loop spends most of its time in Python between small numpy
operations: the ``(out, in)`` request ``dW = -lr d^T x``, the pulse-request kernel over every
synapse, the refresh mask and the refresh itself (read, RESET, program-and-verify).
:func:`step_layers` does all of it for every layer of one presentation in a single numba call and
computes exactly what :meth:`learning_rules.PulseRule.update` (with
:meth:`devices.DeviceArray.refresh`) computes (the same per-device functions of
:mod:`.numba_cpu`, the same counter-based random numbers, the same order of call bases), so a
fused run equals the general one bit for bit. (The verify targets' nominal coordinates are
the kernels' own inverse on both paths: on the numba backend ``Programming._nominal_pulses``
takes them from :func:`devices.kernels.refresh.nominal_coordinates`, not from numpy's
``log1p``, which differs from the C library's in the last bit for some arguments.)

Shortcuts that make it fast and change no result:

* ``dW[j, i] = (-lr d[j]) x[i]`` is one product (the general path's ``(out, 1) @ (1, in)`` matmul
  has a single term per element), formed where it is used instead of stored.
* With nearest rounding a request below ``theta`` nominal steps sends no pulse; a row whose largest
  request ``|(-lr d[j])| max|x|`` is below that never sends one (rounding is monotone), and a zero
  input never does, so only rows that can write and nonzero inputs are visited.
* The arguments that stay the same from one presentation to the next (every layer's records,
  cached weights, packed scalars, scratch space) are held in one numba object
  (:class:`KernelArgs`, built once per run by :func:`kernel_args`): numba's dispatch unboxes
  each array argument on every call (about 0.1 us each; some thirty per layer).
* Per-device constants that hold one value on every device (no device-to-device variation) go
  in as one entry (:func:`compact_uniform`): the same values from one cache line.

The element-wise parts of a sigmoid network's step (:func:`logistic_from_tanh`,
:func:`sse_output`, :func:`sigmoid_delta`) are small kernels with the float operations of the
numpy expressions they replace, in the same order.

Covered: bidirectional and unidirectional routing with nominal pulse counts, nearest or
stochastic rounding, refresh after every step (``refresh_every=1``) with ``verify`` or ``ideal``
programming, no read noise and no RESET noise. The caller (``synapse_sim.models.online``) checks
these and uses the general path otherwise.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from numba import njit, types
from numba.experimental import structref

from ..converters import neurosim_request_one
from .cache import drop_stale_cache
from .numba_cpu import (
    SERIAL_PIPELINE,
    call_base_one,
    col_one,
    count_one,
    flag_refresh_one,
    nominal_x_one,
    route_target,
    verify_many,
    write_many,
)
from .numpy_calls import gemv, tanh_loop

# this module's kernels call or inline the per-device functions of numba_cpu.py (and its tables)
# and NeuroSim's pulse count of converters.py
_HERE = Path(__file__).parent
_DEPS = (
    "kernels/numba_cpu.py",
    "kernels/reference.py",
    "kernels/numpy_calls.py",
    "_rng.py",
    "converters.py",
)
drop_stale_cache(__file__, *(str(_HERE.parent / d) for d in _DEPS))

__all__ = [
    "step_layers",
    "present_block",
    "BLOCK_DONE",
    "BLOCK_STEP",
    "BLOCK_LAYER",
    "BlockArgs",
    "block_args",
    "RC_SLOTS",
    "kernel_args",
    "layer_tuples",
    "compact_uniform",
    "KernelArgs",
    "make_buffers",
    "logistic_from_tanh",
    "sse_output",
    "row_sum",
    "sigmoid_delta",
    "quantize_row",
    "partial_sums",
    "pack",
    "FP_SLOTS",
    "IP_SLOTS",
    "REFRESH_VERIFY",
    "REFRESH_IDEAL",
]

#: Refresh programming codes of :func:`step_layers`.
REFRESH_VERIFY = 0
REFRESH_IDEAL = 1
#: Pulse-count rules of :func:`step_layers` (``DeviceArray(count=...)``).
COUNT_EXACT = 0
COUNT_NEUROSIM = 1

#: Slots of the packed scalars of one layer (a row of ``fpk`` / ``ipk`` of :func:`step_layers`);
#: a row of ``fpk`` continues with the nominal device parameters (8) and constants (4).
FP_SLOTS = ("lr", "step_up", "step_dn", "theta", "alpha", "gref", "thr", "half_step", "margin",
            "dg_nom", "w_max", "tol_g", "p_up", "p_dn", "w_range")  # fmt: skip
IP_SLOTS = ("n_max", "stochastic", "route", "mode", "cap", "counter", "count", "reads_refresh",
            "reads_verify")  # fmt: skip
_IP_READS_REFRESH = IP_SLOTS.index("reads_refresh")
_IP_READS_VERIFY = IP_SLOTS.index("reads_verify")
_IP_COUNTS = ("reads_refresh", "reads_verify")  # accumulated by the kernel
_NF = len(FP_SLOTS)


# fmt: off
@njit(cache=True, parallel=SERIAL_PIPELINE, error_model="numpy")
def _layer_body(x, d, fp, ip, key, st, pa, W, gmax_i, pn, const_n, lut_n, refreshes, cnt_read, nz,
                flagged, buf_i, buf_m, buf_a, buf_t, buf_x, buf_e, buf_r):
    """One layer's update (see :func:`step_layers`); returns (pulses, non-finite requests,
    pairs refreshed), pulses -1 when ``x`` or ``d`` is not finite (nothing changed)."""
    G, Gw, tau, frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset = st
    fam, prm, const, lut_up, lut_dn, c2c, gmin_i = pa
    neg_lr, step_up, step_dn, theta = -fp[0], fp[1], fp[2], fp[3]
    alpha, gref, thr, half_step, margin = fp[4], fp[5], fp[6], fp[7], fp[8]
    dg_nom, w_max, tol_g = fp[9], fp[10], fp[11]
    p_up, p_dn, w_range = fp[12], fp[13], fp[14]
    n_max, stochastic, route = ip[0], ip[1] != 0, ip[2]
    mode, cap, counter = ip[3], ip[4], ip[5]
    neurosim = ip[6] == 1
    n_out = d.size
    n_in = x.size
    N = n_out * n_in
    for i in range(n_in):
        if not math.isfinite(x[i]):
            return -1, 0, 0
    for j in range(n_out):
        if not math.isfinite(d[j]):
            return -1, 0, 0
    # the two call bases of DeviceArray.pulse_request (writes, stochastic rounding)
    base = call_base_one(key, counter)
    base_r = call_base_one(key, counter + 1)
    counter += 2
    ip[5] = counter
    k_nz = 0
    xmax = 0.0
    for i in range(n_in):
        if x[i] != 0.0:
            nz[k_nz] = i
            k_nz += 1
            if abs(x[i]) > xmax:
                xmax = abs(x[i])
    skip = 0.0 if stochastic else theta * min(step_up, step_dn)
    theta_n = theta
    if neurosim:
        # NeuroSim's count (its own rounding at theta of r = |v| P / w_range, then the cast)
        # turns the request into a whole number of steps, which the exact rule then rounds at
        # one half; no pulse while r < theta, i.e. below theta w_range / max(P) (with a margin
        # for rounding errors of r)
        theta_n = 0.5
        skip = theta * w_range / max(p_up, p_dn) * (1.0 - 1e-9)
        for j in range(n_out):  # an overflowing request: the general path decides (no writes)
            if not math.isfinite(abs(neg_lr * d[j]) * xmax):
                return -1, 0, 0
    total = 0
    bad = 0
    nf = 0
    nw = 0  # synapses written
    ne = 0  # device writes listed
    nq = 2 if route == 1 else 1
    for j in range(n_out):
        a = neg_lr * d[j]
        if a == 0.0 or abs(a) * xmax < skip:
            continue
        # with nearest rounding a row's pulses depend on the input value only (binarized
        # inputs: one value): the request and its count are formed once per run of equal inputs
        known = False
        last_x = 0.0
        what = 0  # 0: no pulse, 1: a non-finite request, 2: n pulses of the sign of v
        v = 0.0
        n = 0
        for q in range(k_nz):
            i = nz[q]
            s = j * n_in + i
            if stochastic or not known or x[i] != last_x:
                known = True
                last_x = x[i]
                v = a * x[i]
                what = 0
                if not (abs(v) < skip or v == 0.0):
                    if not math.isfinite(v):
                        what = 1
                    else:
                        if neurosim:
                            v = neurosim_request_one(v, p_up, p_dn, w_range, step_up, step_dn,
                                                     theta)
                        if v != 0.0:
                            n = count_one(v, s, step_up, step_dn, theta_n, n_max, stochastic,
                                          base_r)
                            what = 2 if n != 0 else 0
            if what == 0:
                continue
            if what == 1:
                bad += 1
                continue
            # listed here, written below all at once (the same writes: each device at most
            # once per presentation, its noise indexed by device)
            sgn = 1 if v > 0.0 else -1
            for q in range(nq):
                buf_i[ne], buf_m[ne] = route_target(s, N, sgn, n, route, q)
                ne += 1
            flagged[nw] = s
            nw += 1
            total += n * nq
    write_many(ne, buf_i, buf_m, buf_x, G, Gw, tau, fam, prm, const, lut_up, lut_dn, c2c, base,
               frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset)
    # the cached weights and the refresh flags of the synapses written, in the order written
    # (the list of flagged pairs overwrites the list written, never ahead of it)
    for k in range(nw):
        s = flagged[k]
        W[s] = alpha * (G[s] - (G[N + s] if gref < 0.0 else gref))
        if thr > 0.0 and flag_refresh_one(s, N, G, gmin_i, dg_nom, thr, half_step):
            if margin > 0.0:
                gp = (G[s] - gmin_i[col_one(gmin_i, s)]) / dg_nom
                gm = (G[N + s] - gmin_i[col_one(gmin_i, N + s)]) / dg_nom
                if (gp if gp < gm else gm) < margin:
                    continue
            flagged[nf] = s
            nf += 1
    if nf == 0 or bad > 0:  # non-finite requests: the general path raises before its refresh
        return total, bad, 0
    # refresh (DeviceArray.refresh): read w, targets of the one-sided form, RESET, program
    for k in range(nf):
        s = flagged[k]
        w = alpha * (G[s] - G[N + s])
        w = -w_max if w < -w_max else (w_max if w > w_max else w)
        sp = s
        sm = N + s
        aw = abs(w) / alpha
        gmin_p = gmin_i[col_one(gmin_i, sp)]
        gmin_m = gmin_i[col_one(gmin_i, sm)]
        act_p = max(gmin_p, gmin_m + aw)
        act_m = max(gmin_m, gmin_p + aw)
        buf_i[k] = sp
        buf_i[nf + k] = sm
        buf_t[k] = act_p if w >= 0 else act_m - aw
        buf_t[nf + k] = act_p - aw if w >= 0 else act_m
        # the refresh read of both devices (Programming._read_subset)
        cnt_read[sp] += 1
        cnt_read[sm] += 1
    ip[_IP_READS_REFRESH] += 2 * nf
    for k in range(2 * nf):
        i = buf_i[k]
        cnt_reset[i] += 1
        if frozen[i] == 0:
            g = gmin_i[col_one(gmin_i, i)]
            gx = gmax_i[col_one(gmax_i, i)]
            G[i] = g if g < gx else gx
            Gw[i] = G[i]
            tau[i] = 0.0
            cap_i = budget[col_one(budget, i)]
            if cap_i != math.inf:  # else never reached: the counters are not read
                used = cnt_up[i] + cnt_dn[i] + cnt_prog[i] + cnt_reset[i]
                if used >= cap_i:
                    frozen[i] = 1
    if mode == 1:  # ideal: set the conductances
        for k in range(2 * nf):
            i = buf_i[k]
            if frozen[i] == 0:
                t = buf_t[k]
                g = gmin_i[col_one(gmin_i, i)]
                gx = gmax_i[col_one(gmax_i, i)]
                G[i] = g if t < g else (gx if t > gx else t)
                Gw[i] = G[i]
                tau[i] = 0.0
    else:  # verify: devices whose target lies above Gmin, toward it
        # m not the literal 0: numba typed the call below with it, compiling verify_many twice
        m = np.int64(0)
        capf = float(cap)
        for k in range(2 * nf):
            i = buf_i[k]
            if buf_t[k] > gmin_i[col_one(gmin_i, i)] + 1e-12 * dg_nom:
                buf_i[m] = i
                buf_t[m] = buf_t[k]
                # the nominal LTP coordinate of the target (DeviceModel.pulses), at most cap
                xt = nominal_x_one(fam, buf_t[k], pn, const_n, lut_n)
                buf_x[m] = xt if xt < capf else capf
                m += 1
        wmax = verify_many(m, G, Gw, tau, buf_i, buf_t, buf_x, tol_g, cap, 0.0, key, counter,
                           fam, prm, const, lut_up, lut_dn, pn, c2c, frozen, budget, cnt_up,
                           cnt_dn, cnt_prog, cnt_reset, buf_m, buf_a, buf_e, buf_r)
        ip[5] = counter + wmax
        # every programmed device is read once per verify round (Programming._verify)
        for k in range(m):
            cnt_read[buf_i[k]] += wmax + 1
        ip[_IP_READS_VERIFY] += (wmax + 1) * m
    for k in range(nf):
        s = flagged[k]
        refreshes[s] += 1
        W[s] = alpha * (G[s] - G[N + s])
    return total, bad, nf


@structref.register
class _ArgsType(types.StructRef):
    def preprocess_fields(self, fields):
        return tuple((name, types.unliteral(typ)) for name, typ in fields)


class KernelArgs(structref.StructRefProxy):
    """The arguments of :func:`step_layers` that stay the same from one presentation to the
    next (built by :func:`kernel_args`): held in one numba object, so a call unboxes one
    argument instead of some twenty arrays per layer (numba's dispatch costs about 0.1 us per
    array)."""


structref.define_proxy(
    KernelArgs, _ArgsType, ["layers", "fpk", "ipk", "keys", "ibuf", "fbuf", "xs", "ds"]
)


@njit(cache=True)
def _make_args(layers, fpk, ipk, keys, ibuf, fbuf, xs, ds):
    return KernelArgs(layers, fpk, ipk, keys, ibuf, fbuf, xs, ds)


# inlined into its one caller, the whole-presentation kernel (compiled once with it); the layer
# body it calls is not (compile time: numba_cpu.py's note on inlining)
@njit(cache=True, inline="always", error_model="numpy")
def _step_layers(args, lo, hi):
    layers = args.layers
    xs = args.xs
    ds = args.ds
    fpk = args.fpk
    ipk = args.ipk
    keys = args.keys
    ibuf = args.ibuf
    fbuf = args.fbuf
    pulses = 0
    refreshed = 0
    for li in range(lo, hi):
        st, pa, W, gmax_i, lut_n, refreshes, cnt_read = layers[li]
        x = xs[li]
        d = ds[li]
        n_in = x.size
        N = d.size * n_in
        fp = fpk[li]
        total, bad, nf = _layer_body(
            x, d, fp, ipk[li], keys[li], st, pa, W, gmax_i, fp[_NF:_NF + 8],
            fp[_NF + 8:_NF + 12], lut_n, refreshes, cnt_read, ibuf[:n_in], ibuf[n_in:n_in + N],
            ibuf[n_in + N:n_in + 3 * N], ibuf[n_in + 3 * N:n_in + 5 * N],
            ibuf[n_in + 5 * N:n_in + 7 * N], fbuf[:2 * N], fbuf[2 * N:4 * N],
            fbuf[4 * N:6 * N], fbuf[6 * N:8 * N])
        if total < 0 or bad > 0:
            return li, pulses, refreshed, total, bad
        pulses += total
        refreshed += nf
    return hi, pulses, refreshed, 0, 0
# fmt: on


def pack(pn, const_n, **values) -> tuple[np.ndarray, np.ndarray]:
    """The packed scalars ``(fp, ip)`` of one layer (rows of ``fpk``, ``ipk`` of
    :func:`step_layers`) from keyword values named as in :data:`FP_SLOTS` and :data:`IP_SLOTS`
    (all required), the nominal device parameters ``pn`` (8) and constants ``const_n`` (4)."""
    fp = np.array([float(values[k]) for k in FP_SLOTS] + [float(v) for v in pn]
                  + [float(v) for v in const_n])  # fmt: skip
    if fp.size != _NF + 12:
        raise ValueError(f"pn and const_n must hold 8 and 4 values, got {len(pn)}, {len(const_n)}")
    # the read counters start at zero (the kernel adds to them; the caller empties them)
    ip = np.array([int(values.get(k, 0) if k in _IP_COUNTS else values[k]) for k in IP_SLOTS],
                  dtype=np.int64)  # fmt: skip
    return fp, ip


def layer_tuples(layers) -> tuple:
    """The per-layer tuples of :func:`kernel_args` from ``(state, params, W, gmax_i, lut_n,
    refreshes, cnt_read)`` per layer (records as :mod:`.records` ``NamedTuple`` s), the arrays
    themselves.

    Every array goes in as it is (C-contiguous), so the kernel has one numba type per network
    shape whatever the devices: a variant that passed uniform per-device constants as stride-0
    views (a quarter faster on presets without device-to-device variation) gave those arrays
    another layout, and every combination of uniform and varied fields compiled the kernel
    anew (minutes each on 2 cores).
    """
    # the records go in as plain tuples (see numba_cpu: cheaper to type than a NamedTuple)
    return tuple(
        (tuple(st), tuple(pa), W, gmax_i, lut_n, refreshes, cnt_read)
        for st, pa, W, gmax_i, lut_n, refreshes, cnt_read in layers
    )


def compact_uniform(state, params, gmax_i) -> tuple:
    """``(state, params, gmax_i)`` of one array for :func:`layer_tuples`, with each read-only
    per-device constant that holds the same value on every device (``params.prm`` row by row,
    ``params.gmin``, ``state.budget``, ``gmax_i``: a device without device-to-device variation
    or endurance spread) replaced by a one-entry copy (``prm``: one column). The kernel reads
    such an array at entry 0 for every device (:func:`devices.kernels.numba_cpu._col`): one
    cache line instead of one per device and row (some 5 MB of ``prm`` on the 400-100-10
    network), the same values, so the same results. The copies have the numba types of the
    arrays they replace (C-contiguous, writable), so the kernel is not compiled again; the
    kernel never writes them.

    Parameters
    ----------
    state, params : NamedTuple
        The array's records (:mod:`.records`).
    gmax_i : numpy.ndarray
        Per-device upper bounds.

    Returns
    -------
    (state, params, gmax_i)
        The records (``_replace`` d where compacted) and the bounds.
    """

    def one(a):
        return a[..., :1].copy() if a.shape[-1] > 1 and bool(np.all(a == a[..., :1])) else a

    state = state._replace(budget=one(state.budget))
    params = params._replace(prm=one(params.prm), gmin=one(params.gmin))
    return state, params, one(gmax_i)


def kernel_args(layers, fpk, ipk, keys, buffers, rows) -> KernelArgs:
    """The per-run arguments of :func:`step_layers`, held by reference (no copies: the kernel
    updates the arrays given here, and changes made to them here reach the kernel).

    Parameters
    ----------
    layers : tuple
        Per layer ``(state, params, W, gmax_i, lut_n, refreshes, cnt_read)`` (from
        :func:`layer_tuples`),
        every layer's tuple of the same types: the array's state and parameter records as plain
        tuples (``tuple(DeviceArray.state)``, :mod:`.records`; updated in place), its flat cached
        weights (kept current), per-device upper bounds, the nominal LTP table
        (``DeviceModel.kernel_params(1, None)``, for the verify targets' pulse coordinates) and
        its refresh count per synapse and read count per device (``DeviceArray.cnt_read``: the
        refresh's and the verify's reads; both updated in place).
    fpk, ipk : numpy.ndarray, shape (layers, ...)
        Rows of packed scalars (:func:`pack`): learning rate, nominal steps, dead zone, mapping
        (``alpha``, ``gref < 0``: differential pair), refresh threshold (0: none), half a
        nominal LTP step, hysteresis margin (0: the plain trigger), nominal range, weight range,
        verify tolerance in siemens, the branches' level counts and ``step_up * p_up`` (for
        NeuroSim's counts), nominal device parameters and constants; cap ``n_max`` (0: none),
        stochastic rounding, route, refresh programming (:data:`REFRESH_VERIFY` /
        :data:`REFRESH_IDEAL`), verify pulse cap, the array's call counter (advanced in place as
        ``DeviceArray._next_base`` would), the count rule (:data:`COUNT_EXACT`;
        :data:`COUNT_NEUROSIM`: the request replaced by
        :func:`devices.converters.neurosim_request_one` first, as ``DeviceArray(count=
        "neurosim")`` does) and two read totals the kernel adds to (``reads_refresh``,
        ``reads_verify``: the device reads of ``DeviceArray.subset_reads``; the caller moves
        them there and sets them back to zero).
    keys : numpy.ndarray of uint64
        The arrays' random keys.
    buffers : tuple of numpy.ndarray
        Scratch space from :func:`make_buffers`.
    rows : (tuple, tuple) of numpy.ndarray
        Per layer its input row and the error row of its output (float64, contiguous, of the
        layer's sizes), which :func:`step_layers` reads: the caller writes each presentation's
        rows into these arrays. (Held here rather than passed with each call: numba's dispatch
        types an array argument that comes with a ``StructRef`` through Python, about 0.4 us
        each.)
    """
    ibuf, fbuf = buffers
    xs, ds = rows
    return _make_args(layers, fpk, ipk, keys, ibuf, fbuf, tuple(xs), tuple(ds))


def step_layers(args: KernelArgs, lo: int, hi: int) -> tuple:
    """Batch-1 updates ``dW = -lr d^T x`` of layers ``lo .. hi - 1`` in one call: requests to
    pulses, writes and refreshes, layer after layer.

    Parameters
    ----------
    args : KernelArgs
        From :func:`kernel_args`.
    lo, hi : int
        First layer and one past the last; each reads its rows of ``args`` (the ``rows`` of
        :func:`kernel_args`).

    Returns
    -------
    (int, int, int, int, int)
        The first layer not completed (``hi``: all were), device pulses sent and pairs refreshed
        by the completed layers, and for a layer not completed its pulses (``-1``: ``x`` or
        ``d`` is not finite, nothing changed) and its non-finite requests skipped (its other
        synapses were updated).
    """
    # through the whole-presentation kernel (one compiled copy of the update: a kernel that
    # calls another compiles the callee into itself, about a minute on 2 cores)
    return _present_block(args, _no_block(), lo, hi, True)[:5]


@njit(cache=True, error_model="numpy")
def _quantize_row(a, lo, hi, step, qmax, out):
    exact = True
    total = 0.0
    for i in range(a.size):
        x = a[i]
        if x != x:
            return -1, 0.0
        c = x if x > lo else lo  # numpy's clip: max then min, in its comparison order
        c = c if c < hi else hi
        r = np.floor((c - lo) / step + 0.5)
        r = r if r > 0.0 else 0.0
        r = r if r < qmax else qmax
        v = lo + step * r
        out[i] = v
        if exact and (v != np.floor(v) or abs(v) > 2.0**40):
            exact = False
        total += v
    return (1 if exact and a.size <= 4096 else 0), total


def quantize_row(a, lo: float, hi: float, step: float, qmax: float, out) -> tuple[int, float]:
    """A deterministic :class:`devices.UniformQuantizer` (``lo``, ``hi``, ``step``, ``qmax =
    2**bits - 1``) of the row ``a`` into ``out``, with the same float operations (so the same
    numbers).

    Returns
    -------
    (int, float)
        ``-1`` when ``a`` holds a NaN (nothing usable: the quantizer itself raises), ``1`` when
        every output is a whole number (then the returned sum is exact, whatever the order of
        summation), else ``0``; and the sum of the outputs.
    """
    return _quantize_row(a, lo, hi, step, qmax, out)


@njit(cache=True, error_model="numpy")
def _partial_sums(i_col, i_ref, step, ratio, gain, out):
    one = i_ref.size == 1
    for j in range(i_col.size):
        r = i_ref[0] if one else i_ref[j]
        out[j] = gain * ((np.floor(i_col[j] / step) - np.floor(r / step)) * ratio)


def partial_sums(i_col, i_ref, step: float, ratio: float, gain: float, out) -> None:
    """``out = gain * ((floor(i_col / step) - floor(i_ref / step)) * ratio)``: the digitized
    column read of :meth:`devices.converters.PartialSumADC.digitize` (``ratio = step /
    i_range``) times the read gain, with its float operations.

    Parameters
    ----------
    i_col : numpy.ndarray, shape (out,)
        Column currents.
    i_ref : numpy.ndarray, shape (out,) or (1,)
        Reference currents (one value: the same for every column).
    step, ratio, gain : float
    out : numpy.ndarray, shape (out,)
    """
    _partial_sums(i_col, i_ref, step, ratio, gain, out)


# Element-wise parts of a sigmoid network's batch-1 step (synapse_sim.models.online), with the
# float operations of its numpy expressions in the same order (numba does not contract them).
@njit(cache=True, error_model="numpy")
def _logistic_from_tanh(t, out):
    for i in range(t.size):
        out[i] = 0.5 * (1.0 + t[i])


def logistic_from_tanh(t, out) -> None:
    """``out = 0.5 * (1.0 + t)``: the logistic ``0.5 * (1 + tanh(z / 2))`` once ``t =
    tanh(0.5 * z)`` is known (numpy computes ``tanh``)."""
    _logistic_from_tanh(t, out)


@njit(cache=True, inline="always", error_model="numpy")
def _pairwise_leaf(a, lo, n):
    """numpy's sum of a contiguous run of at most 128 terms: a plain loop below 8 terms, else
    eight running sums combined as a tree, then the rest one by one."""
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    while i < n - (n % 8):
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@njit(cache=True, inline="always", error_model="numpy")
def _pairwise_sum(a, lo, n):
    """``a[lo:lo + n].sum()`` as numpy forms it (its pairwise summation: runs of more than 128
    terms split in two halves, the first a multiple of 8, and summed as first + second), so the
    same number (added to numpy's starting +0.0, which turns a sum of -0.0 into +0.0); the
    halves walked with an explicit stack (a recursive numba function cannot be cached)."""
    if n <= 128:
        return 0.0 + _pairwise_leaf(a, lo, n)
    los = np.empty(130, np.int64)
    ns = np.empty(130, np.int64)
    stage = np.zeros(130, np.int64)
    vals = np.empty(130)
    sp = 0
    vp = 0
    los[0] = lo
    ns[0] = n
    while sp >= 0:
        m = ns[sp]
        if m <= 128:
            vals[vp] = _pairwise_leaf(a, los[sp], m)
            vp += 1
            sp -= 1
            continue
        n2 = m // 2
        n2 -= n2 % 8
        if stage[sp] == 0:  # the first half
            stage[sp] = 1
            los[sp + 1] = los[sp]
            ns[sp + 1] = n2
        elif stage[sp] == 1:  # the second half
            stage[sp] = 2
            los[sp + 1] = los[sp] + n2
            ns[sp + 1] = m - n2
        else:  # both summed: first + second
            vals[vp - 2] = vals[vp - 2] + vals[vp - 1]
            vp -= 1
            stage[sp] = 0
            sp -= 1
            continue
        sp += 1
        stage[sp] = 0
    return 0.0 + vals[0]


@njit(cache=True, error_model="numpy")
def _row_sum(a):
    return _pairwise_sum(a, 0, a.size)


def row_sum(a) -> float:
    """``a.sum()`` of a contiguous float64 row, the same number as numpy's (its pairwise
    summation); for tests of :func:`sse_output`'s loss."""
    return float(_row_sum(a))


@njit(cache=True, error_model="numpy")
def _sse_output(t, target, label, out, sq, d):
    best = 0
    for i in range(t.size):
        a = 0.5 * (1.0 + t[i])
        out[i] = a
        diff = target[i] - a
        sq[i] = diff * diff
        d[i] = -2.0 * diff * a * (1.0 - a)
        # numpy's argmax: the first maximum, or the first NaN
        if out[best] == out[best] and (a != a or a > out[best]):
            best = i
    return (1 if best == label else 0), _pairwise_sum(sq, 0, sq.size)


def sse_output(t, target, label: int, out, sq, d) -> tuple[int, float]:
    """The output layer of a sigmoid network with squared error, from ``t = tanh(0.5 z)``:
    ``out = 0.5 (1 + t)``, ``sq = (target - out)^2`` and the delta ``d = -2 (target - out)
    out (1 - out)`` (the expressions of ``MLP.loss_and_delta``); returns (1 when ``argmax(out)``
    (numpy's) is ``label``, else 0; the loss ``sq.sum()``, numpy's number: its pairwise
    summation)."""
    return _sse_output(t, target, label, out, sq, d)


@njit(cache=True, error_model="numpy")
def _sigmoid_delta(back, a, out):
    for i in range(a.size):
        out[i] = back[i] * (a[i] * (1.0 - a[i]))


def sigmoid_delta(back, a, out) -> None:
    """``out = back * (a * (1 - a))``: a sigmoid layer's delta (``MLP.backward``)."""
    _sigmoid_delta(back, a, out)


#: Status of :func:`present_block`: every presentation done; stopped before presentation ``k``
#: (its label is not a row of the targets, or its input holds a NaN where a DAC reads it: the
#: caller presents it its own way); stopped inside presentation ``k``, whose update left a
#: layer to the general path.
BLOCK_DONE = 0
BLOCK_STEP = 1
BLOCK_LAYER = 2
#: Columns of a row of ``rc`` (:func:`block_args`): what a layer's forward read does.
RC_SLOTS = ("dac", "lo", "hi", "step", "qmax", "psum", "p_step", "ratio", "gain", "scale",
            "g_ref", "differential")  # fmt: skip


@structref.register
class _BlockType(types.StructRef):
    def preprocess_fields(self, fields):
        return tuple((name, types.unliteral(typ)) for name, typ in fields)


class BlockArgs(structref.StructRefProxy):
    """The data and scratch of :func:`present_block` (built by :func:`block_args`)."""


_BLOCK_FIELDS = ["hk", "rc", "X", "Y", "eye", "order", "zbuf", "bbuf", "vbuf", "cbuf", "rbuf",
                 "out", "sq", "iscr", "acc", "facc"]  # fmt: skip
structref.define_proxy(BlockArgs, _BlockType, _BLOCK_FIELDS)


@njit(cache=True)
def _make_block(hk, rc, X, Y, eye, order, zbuf, bbuf, vbuf, cbuf, rbuf, out, sq, iscr, acc, facc):
    return BlockArgs(hk, rc, X, Y, eye, order, zbuf, bbuf, vbuf, cbuf, rbuf, out, sq, iscr, acc,
                     facc)  # fmt: skip


def block_args(hk, rc, X, Y, eye, order, shapes, acc=None, facc=None) -> BlockArgs:
    """The arguments of :func:`present_block` beyond the :class:`KernelArgs`.

    Parameters
    ----------
    hk : numpy.ndarray of int64
        ``(gemv, tanh loop, tanh data)``: the addresses of
        :func:`devices.kernels.numpy_calls.hooks` (zeros where only :func:`step_layers` runs).
    rc : numpy.ndarray, shape (layers, len(RC_SLOTS))
        Per layer its forward read (:data:`RC_SLOTS`): a DAC (``dac`` 1, with ``lo``, ``hi``,
        ``step`` and ``qmax = 2**bits - 1`` of its uniform quantizer), the partial-sum ADC of
        a current read (``psum`` 1, with its step, ``step / i_range`` and the read gain), or a
        scale of the plain product (``scale``, 0: none), the reference conductance and whether
        the layer is a differential pair (the ADC's reference column).
    X, Y, eye : numpy.ndarray
        Inputs (float64, C order, writable), labels (int64) and target rows (float64, C order).
    order : numpy.ndarray of int64
        The presentation order (indexes of ``X``: the caller checks them).
    shapes : sequence of (int, int)
        The layers' ``(out, in)`` (sizes the scratch).
    acc, facc : numpy.ndarray, optional
        The running totals of :func:`present_block` (int64 of 4, float64 of 1; zeros if not
        given): the caller keeps them to read the totals.
    """
    outs = [o for o, _ in shapes]
    ins = [i for _, i in shapes]
    return _make_block(
        np.ascontiguousarray(hk, dtype=np.int64), np.ascontiguousarray(rc, dtype=np.float64), X,
        np.ascontiguousarray(Y, dtype=np.int64), eye, np.ascontiguousarray(order, dtype=np.int64),
        np.empty(max(sum(outs), 1)), np.empty(max(ins[1:], default=1)), np.empty(max(ins)),
        np.empty(max(outs)), np.empty(max(outs)), np.empty(outs[-1]), np.empty(outs[-1]),
        np.empty(5, dtype=np.int64), np.zeros(4, dtype=np.int64) if acc is None else acc,
        np.zeros(1) if facc is None else facc,
    )  # fmt: skip


# fmt: off
@njit(cache=True, inline="always", error_model="numpy")
def _forward_read(rc, G, W, a, z, vbuf, cbuf, rbuf, fn_gemv):
    """The forward read ``z`` of one layer for the row ``a`` (``OnlineTrainer._read`` /
    ``DeviceArray.matmul``: DAC, product or column currents, partial-sum ADC or scale);
    False when the DAC finds a NaN (nothing usable: the caller's path raises)."""
    v = a
    exact = 0
    vsum = 0.0
    if rc[0] != 0.0:  # the DAC
        exact, vsum = _quantize_row(a, rc[1], rc[2], rc[3], rc[4], vbuf)
        if exact < 0:
            return False
        v = vbuf[:a.size]
    if rc[5] == 0.0:  # the product of the cached weights, scaled for a current read
        gemv(fn_gemv, W, v, z, False)
        if rc[9] != 0.0:
            for i in range(z.size):
                z[i] = z[i] * rc[9]
        return True
    # partial-sum ADC of the current read: the cell columns and the reference, digitized
    no = z.size
    N = no * v.size
    i_col = cbuf[:no]
    gemv(fn_gemv, G[:N], v, i_col, False)
    if rc[11] != 0.0:  # differential pair: the second devices' column
        i_ref = rbuf[:no]
        gemv(fn_gemv, G[N:2 * N], v, i_ref, False)
    else:
        i_ref = rbuf[:1]
        if exact == 1:  # a sum of whole numbers: exact in any order
            i_ref[0] = vsum * rc[10]
        else:
            i_ref[0] = _pairwise_sum(v, 0, v.size) * rc[10]
    _partial_sums(i_col, i_ref, rc[6], rc[7], rc[8], z)
    return True


@njit(cache=True, inline="always", error_model="numpy")
def _present_one(args, blk, k):
    """The forward read, loss and backward of presentation ``k`` of a block (its update
    follows): returns (done, correct, loss); not done when its label is not a row of the
    targets or a DAC found a NaN (nothing was changed but the rows)."""
    xs = args.xs
    ds = args.ds
    layers = args.layers
    n = len(ds)
    hk = blk.hk
    fn_gemv, fn_tanh, tanh_data = hk[0], hk[1], hk[2]
    X, eye, rc, zbuf, bbuf = blk.X, blk.eye, blk.rc, blk.zbuf, blk.bbuf
    idx = blk.order[k]
    yi = blk.Y[idx]
    if yi < 0 or yi >= eye.shape[0]:
        return False, 0, 0.0
    xin = xs[0]
    for i in range(xin.size):
        xin[i] = X[idx, i]
    # forward: MLP.forward of one row (the read, x 0.5, numpy's tanh, the logistic)
    a = xin
    off = 0
    z = zbuf[:1]
    for li in range(n):
        no = ds[li].size
        z = zbuf[off:off + no]
        off += no
        if not _forward_read(rc[li], layers[li][0][0], layers[li][2], a, z, blk.vbuf, blk.cbuf,
                             blk.rbuf, fn_gemv):
            return False, 0, 0.0
        for i in range(no):
            z[i] = z[i] * 0.5
        tanh_loop(fn_tanh, tanh_data, z, blk.iscr)
        if li < n - 1:
            _logistic_from_tanh(z, xs[li + 1])
            a = xs[li + 1]
    c, loss = _sse_output(z, eye[yi], yi, blk.out, blk.sq, ds[n - 1])
    # backward: MLP.backward's plain reads of the layers above and the sigmoid deltas
    for li in range(n - 2, -1, -1):
        br = bbuf[:xs[li + 1].size]
        gemv(fn_gemv, layers[li + 1][2], ds[li + 1], br, True)
        _sigmoid_delta(br, xs[li + 1], ds[li])
    return True, c, loss


@njit(cache=True, parallel=True, error_model="numpy")  # serial loop; see numba_cpu._SERIAL_NOTE
def _present_block(args, blk, k0, k1, update_only):
    # update_only (step_layers): the update of layers k0 .. k1 - 1 from the current rows, once;
    # else presentations k0 .. k1 - 1, each with the update of every layer. One call site of
    # the update for both.
    n = len(args.ds)
    lo, hi = (k0, k1) if update_only else (0, n)
    kb, ke = (0, 1) if update_only else (k0, k1)
    acc, facc = blk.acc, blk.facc
    correct, pulses, refreshed = acc[0], acc[1], acc[2]
    loss_sum = facc[0]
    status = BLOCK_DONE
    k_end = ke
    for k in range(kb, ke):
        c = 0
        loss = 0.0
        if not update_only:
            done, c, loss = _present_one(args, blk, k)
            if not done:
                status = BLOCK_STEP
                k_end = k
                break
        stop, p, r, p_stop, bad = _step_layers(args, lo, hi)
        if update_only:
            return stop, p, r, p_stop, bad, 0, 0, 0, 0.0
        if stop < n:  # a layer for the general path
            acc[0], acc[1], acc[2], acc[3] = correct, pulses, refreshed, k + 1 - k0
            facc[0] = loss_sum
            return BLOCK_LAYER, k, stop, p, r, p_stop, bad, c, loss
        correct += c
        loss_sum = loss_sum + loss
        pulses += p
        refreshed += r
    acc[0], acc[1], acc[2], acc[3] = correct, pulses, refreshed, k_end - k0
    facc[0] = loss_sum
    return status, k_end, 0, 0, 0, 0, 0, 0, 0.0
# fmt: on


_NO_BLOCK: list = []


def _no_block() -> BlockArgs:
    """The :class:`BlockArgs` of :func:`step_layers` (never read), made once, of the types
    :func:`block_args` gives (so both calls run one compiled kernel)."""
    if not _NO_BLOCK:
        z2 = np.zeros((1, 1))
        _NO_BLOCK.append(block_args(np.zeros(3), np.zeros((1, len(RC_SLOTS))), z2,
                                    np.zeros(1), z2.copy(), np.zeros(0), [(1, 1)]))  # fmt: skip
    return _NO_BLOCK[0]


def present_block(args: KernelArgs, blk: BlockArgs, k0: int, k1: int) -> tuple:
    """Presentations ``blk.order[k0:k1]`` of a sigmoid network with squared error, each one as
    ``OnlineTrainer`` presents it (forward read, loss, backward, :func:`step_layers`), in one
    call.

    The forward reads are those ``blk.rc`` describes (:func:`block_args`); the backward reads
    must be the plain products of the cached weights. Products and ``tanh`` are numpy's own
    (:mod:`.numpy_calls`), the element-wise parts the kernels below, in the order of the numpy
    path: the same numbers.

    Parameters
    ----------
    args : KernelArgs
        From :func:`kernel_args`; its rows are the network's input row, hidden activations and
        deltas (the sigmoid step's buffers).
    blk : BlockArgs
        From :func:`block_args`. Its ``acc`` (int64: correct, pulses, refreshes) and ``facc``
        (float64: the loss, summed presentation after presentation as the epoch loop sums it)
        are running totals the call adds to; ``acc[3]`` is set to the presentations of this
        call whose reads were made (read it even when the call is interrupted).
    k0, k1 : int
        The presentations of this call.

    Returns
    -------
    tuple
        ``(status, k, stop, pulses, refreshes, p_stop, bad, correct, loss)``:
        :data:`BLOCK_DONE` with ``k = k1``; :data:`BLOCK_STEP` before presentation ``k`` (not
        started: its label is not a row of ``eye``, or a DAC found a NaN); :data:`BLOCK_LAYER`
        inside presentation ``k``, whose forward and backward are done and whose update stopped
        at layer ``stop`` (for the general path): :func:`step_layers`'s result for it, and its
        correct count and loss (not added to the totals, nor are its pulses).
    """
    return _present_block(args, blk, k0, k1, False)


def make_buffers(shapes) -> tuple:
    """Scratch arrays of :func:`step_layers` for layers of the given ``(out, in)`` shapes."""
    n_i = max(i + 7 * o * i for o, i in shapes)
    n_f = max(8 * o * i for o, i in shapes)
    return np.empty(n_i, dtype=np.int64), np.empty(n_f)
