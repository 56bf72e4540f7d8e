"""Fused refresh of differential pairs on the numba CPU backend (issue #15).

:meth:`devices.DeviceArray.refresh` reads the masked pairs' weights, RESETs both devices and
programs each weight back on the side of its sign. Its host path (``devices/array_program.py``)
does that in some forty small numpy operations around the verify kernel; a unidirectional MNIST
run refreshes about three pairs per call, so those operations are most of its cost
(``benchmarks/bench_request.py --rule unidirectional`` times a call). :func:`refresh_pairs` does
all of it in one compiled call: the masked pairs from the mask, the read (with its read-noise
draw and read counts), the one-sided targets, the RESET (its noise, counters and freeze test),
the nominal LTP coordinates of the targets, the program-and-verify
(``numba_cpu.verify_serial``, the very kernel the host path calls), the weight
cache of the refreshed pairs and their refresh counts.

It computes what the host path computes, with the same float operations on the same values in
the same order and the same call bases (``DeviceArray._next_base``: one for the read when there
is read noise, one for the RESET when there is RESET noise, then the verify's), so the state,
the counters and the weight cache equal the host path's bit for bit
(``tests/devices/test_refresh_fused.py``). Before it changes anything it checks the weights it
read: a NaN there (a corrupted state) returns ``-1`` with nothing changed, and the caller runs
the host path, so such a state is handled as before.

Not covered (the caller, :meth:`devices.DeviceArray.refresh`, takes the host path): backends
other than numba and ``mode="open_loop"``. The verify's nominal LTP coordinates are the kernels'
own (:func:`devices.kernels.numba_cpu.nominal_x_one`) on both paths: on the numba backend the
host path takes them from :func:`nominal_coordinates` too (numpy's vectorized ``log1p`` /
``log`` differ from the C library's in the last bit for some inputs, so ``DeviceModel.pulses``
would not give the same targets for nonlinear exponential and sloped step devices).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from numba import njit

from .cache import drop_stale_cache
from .numba_cpu import call_base_one, clip_one, nominal_x_one, normal_one, verify_serial

# the kernel inlines the per-device functions of numba_cpu.py (and the tables of _rng.py)
_HERE = Path(__file__).parent
_DEPS = (_HERE / "numba_cpu.py", _HERE / "reference.py", _HERE.parent / "_rng.py")
drop_stale_cache(__file__, *(str(d) for d in _DEPS))

__all__ = ["refresh_pairs", "nominal_coordinates", "pack", "MODE_VERIFY", "MODE_IDEAL"]

#: Programming codes of :func:`refresh_pairs`.
MODE_VERIFY = 0
MODE_IDEAL = 1

_NO_W = np.zeros(0)
_SPAN = 256  # mask entries per block of _masked


# fmt: off
@njit(cache=True, error_model="numpy")
def _masked(mask):
    """Flat indices (C order) of the set entries of the contiguous boolean ``mask``, in order
    (``np.flatnonzero``). Its bytes are read in blocks of ``_SPAN``: a block whose OR is zero
    is skipped whole (a loop without branches, which the compiler vectorizes; a refresh mask
    holds a handful of pairs among up to 200k), the others and the tail are read entry by
    entry, once to count and once to list."""
    b8 = mask.reshape(mask.size).view(np.uint8)  # a view: one byte per entry
    size = b8.size
    nb = size // _SPAN
    blocks = np.empty(nb, dtype=np.int64)
    nz = 0
    for b in range(nb):
        acc = np.uint8(0)
        for i in range(_SPAN * b, _SPAN * b + _SPAN):
            acc |= b8[i]
        if acc != 0:
            blocks[nz] = b
            nz += 1
    tail = _SPAN * nb
    n = 0
    for k in range(nz):
        for i in range(_SPAN * blocks[k], _SPAN * blocks[k] + _SPAN):
            n += 1 if b8[i] != 0 else 0
    for i in range(tail, size):
        n += 1 if b8[i] != 0 else 0
    out = np.empty(n, dtype=np.int64)
    n = 0
    for k in range(nz):
        for i in range(_SPAN * blocks[k], _SPAN * blocks[k] + _SPAN):
            if b8[i] != 0:
                out[n] = i
                n += 1
    for i in range(tail, size):
        if b8[i] != 0:
            out[n] = i
            n += 1
    return out


@njit(cache=True, inline="always", error_model="numpy")
def _head(st, pa, mask, gmax_i, cnt_read, consts, counter, mode):
    """The masked pairs, their read, their targets and the RESET (with the ideal programming
    for ``MODE_IDEAL``); for ``MODE_VERIFY`` the devices to program listed first in ``dev``,
    ``tgt`` (``m`` of them). Returns ``(n, c, syn, dev, tgt, live0, m)``: pairs (``-1``: a NaN
    weight read, nothing changed), call counter, pair indices, devices and their targets,
    devices live before the RESET, devices to program."""
    G, Gw, tau, frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset = st
    fam, prm, const, lut_up, lut_dn, c2c, gmin_i = pa
    fp, cap, key, reset_on, pn, const_n, lut_n = consts
    alpha, w_max, read_sigma, rs_dg, eps = fp[0], fp[1], fp[2], fp[3], fp[4]
    syn = _masked(mask)
    n = syn.size
    dev = np.empty(2 * n, dtype=np.int64)
    tgt = np.empty(2 * n)
    live0 = np.empty(2 * n, dtype=np.bool_)  # live before the RESET (ideal: its cache)
    if n == 0:
        return 0, counter, syn, dev, tgt, live0, 0
    N = mask.size
    c = counter
    # the read (Programming._read_subset): one call base when there is read noise
    s = 1 if read_sigma > 0.0 else 0
    base_read = call_base_one(key, c) if s == 1 else np.uint64(0)
    c += s
    # the one-sided targets (Programming._targets), G+ devices first, then G-
    for k in range(n):
        sp = syn[k]
        sm = N + sp
        gp = G[sp]
        gm = G[sm]
        if s == 1:
            gp = gp * (1.0 + read_sigma * normal_one(base_read, sp))
            gm = gm * (1.0 + read_sigma * normal_one(base_read, sm))
        w = alpha * (gp - gm)
        if w != w:  # nothing changed yet: the host path takes over
            return -1, counter, syn, dev, tgt, live0, 0
        w = clip_one(w, -w_max, w_max)
        a = abs(w) / alpha
        gmin_p = gmin_i[sp]
        gmin_m = gmin_i[sm]
        act_p = gmin_m + a
        act_p = gmin_p if gmin_p >= act_p else act_p
        act_m = gmin_p + a
        act_m = gmin_m if gmin_m >= act_m else act_m
        dev[k] = sp
        dev[n + k] = sm
        tgt[k] = act_p if w >= 0 else act_m - a
        tgt[n + k] = act_p - a if w >= 0 else act_m
    for q in range(2 * n):
        cnt_read[dev[q]] += 1
    # the RESET (Programming._reset): one call base when there is RESET noise
    base_reset = call_base_one(key, c) if reset_on else np.uint64(0)
    c += 1 if reset_on else 0
    for q in range(2 * n):
        i = dev[q]
        cnt_reset[i] += 1
        live0[q] = frozen[i] == 0
        if frozen[i] != 0:
            continue
        g = gmin_i[i]
        if reset_on:
            g += abs(rs_dg * normal_one(base_reset, i))
        gx = gmax_i[i]
        G[i] = g if g <= gx else gx
        Gw[i] = G[i]
        tau[i] = 0.0
        cap_i = budget[i]
        if cap_i != math.inf:  # else never reached: the counters are not read
            if cnt_up[i] + cnt_dn[i] + cnt_prog[i] + cnt_reset[i] >= cap_i:
                frozen[i] = 1
    if mode == MODE_IDEAL:  # set the live devices to their targets (Programming._program)
        for q in range(2 * n):
            i = dev[q]
            if frozen[i] == 0:
                G[i] = clip_one(tgt[q], gmin_i[i], gmax_i[i])
                Gw[i] = G[i]
                tau[i] = 0.0
        return n, c, syn, dev, tgt, live0, 0
    # program-and-verify (Programming._program): the devices whose target lies above their
    # Gmin, in order
    m = 0
    for q in range(2 * n):
        i = dev[q]
        if tgt[q] > gmin_i[i] + eps:
            dev[m] = i
            tgt[m] = tgt[q]
            m += 1
    return n, c, syn, dev, tgt, live0, m


@njit(cache=True, inline="always", error_model="numpy")
def _tail(st, pa, N, syn, dev, tgt, x_t, live0, m, cnt_read, refreshes, W, has_w, consts, c,
          mode):
    """After :func:`_head`: the verify of the ``m`` listed devices toward their targets from
    their nominal coordinates ``x_t`` (Programming._verify), the weight cache and the refresh
    counts. Returns ``(c, steps)``: the call counter after it, the verify's write steps."""
    G, Gw, tau, frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset = st
    fam, prm, const, lut_up, lut_dn, c2c, gmin_i = pa
    fp, cap, key, reset_on, pn, const_n, lut_n = consts
    alpha, read_sigma, tol_g = fp[0], fp[2], fp[5]
    n = syn.size
    wsteps = 0
    if mode == MODE_VERIFY:
        s = 1 if read_sigma > 0.0 else 0
        # the host path's verify kernel itself, called (not inlined): compiled once for both
        wsteps = verify_serial(st, pa, dev[:m], tgt[:m], x_t, tol_g, cap, read_sigma, key, c, pn)
        c += wsteps * (1 + s) + s
        for q in range(m):
            cnt_read[dev[q]] += wsteps + 1
    for k in range(n):
        sp = syn[k]
        # the host path's caches: every pair after a verify; after the ideal programming, the
        # pairs with a device live before the RESET (the others did not change)
        if has_w and (mode == MODE_VERIFY or live0[k] or live0[n + k]):
            W[sp] = alpha * (G[sp] - G[N + sp])
        refreshes[sp] += 1
    return c, wsteps


@njit(cache=True, error_model="numpy")
def _refresh(st, pa, mask, gmax_i, cnt_read, refreshes, W, has_w, consts, counter, mode):
    fam = pa[0]
    fp, cap, key, reset_on, pn, const_n, lut_n = consts
    n, c, syn, dev, tgt, live0, m = _head(st, pa, mask, gmax_i, cnt_read, consts, counter, mode)
    if n <= 0:
        return n, c, 0, 0
    # the nominal LTP coordinates of the targets (Programming._nominal_pulses), at most cap
    x_t = np.empty(m)
    capf = float(cap)
    for q in range(m):
        xt = nominal_x_one(fam, tgt[q], pn, const_n, lut_n)
        x_t[q] = capf if xt > capf else xt  # numpy's minimum (a NaN stays)
    c, wsteps = _tail(st, pa, mask.size, syn, dev, tgt, x_t, live0, m, cnt_read, refreshes, W,
                      has_w, consts, c, mode)
    return n, c, wsteps, m


@njit(cache=True, error_model="numpy")
def _coordinates(fam, G, pn, const_n, lut_n, out):
    for i in range(G.size):
        out[i] = nominal_x_one(fam, G[i], pn, const_n, lut_n)
# fmt: on


def pack(*, alpha, w_max, read_sigma, reset_sigma, dG, tol_g, cap, key, pn, const_n, lut_n):
    """The constants of :func:`refresh_pairs` for one array, packed once (numba unboxes one
    tuple per call instead of a dozen arguments).

    Parameters
    ----------
    alpha, w_max : float
        Weight per siemens and weight range of the array.
    read_sigma, reset_sigma : float
        Read and RESET noise.
    dG : float
        The device's nominal range.
    tol_g : float
        Verify tolerance in siemens.
    cap : int
        Verify pulse cap per device (``2 P_LTP``).
    key : int
        The array's random key.
    pn, const_n, lut_n : numpy.ndarray
        Nominal device parameters (8), constants (4) and LTP table
        (``DeviceModel.kernel_params(1, None)``).

    Returns
    -------
    tuple
    """
    # the products of the host path's expressions, formed as it forms them
    fp = np.array([alpha, w_max, read_sigma, reset_sigma * dG, 1e-12 * dG, tol_g],
                  dtype=np.float64)  # fmt: skip
    return (fp, int(cap), np.uint64(key), bool(reset_sigma > 0),
            np.ascontiguousarray(pn, dtype=np.float64),
            np.ascontiguousarray(const_n, dtype=np.float64),
            np.ascontiguousarray(lut_n, dtype=np.float64))  # fmt: skip


def nominal_coordinates(fam, G, pn, const_n, lut_n):
    """The nominal LTP coordinates of conductances ``G`` (float64, any shape) as the kernels
    compute them (:func:`devices.kernels.numba_cpu.nominal_x_one`, the C library's ``log`` /
    ``log1p``): what ``Programming._nominal_pulses`` programs toward on the numba backend, so
    that the host path, this module's kernel and the fused batch-1 kernel
    (:mod:`.online`) share one set of numbers.

    Parameters
    ----------
    fam : int
        Family code.
    G : array_like
        Conductances (no NaN: the caller refuses them).
    pn, const_n, lut_n : numpy.ndarray
        Nominal parameters (8), family constants (4) and LTP table (``DeviceModel._nominal``).

    Returns
    -------
    numpy.ndarray
        Coordinates, the shape of ``G``.
    """
    G = np.ascontiguousarray(G, dtype=np.float64)
    out = np.empty(G.shape)
    _coordinates(int(fam), G.reshape(-1), np.ascontiguousarray(pn, dtype=np.float64),
                 np.ascontiguousarray(const_n, dtype=np.float64),
                 np.ascontiguousarray(lut_n, dtype=np.float64), out.reshape(-1))  # fmt: skip
    return out


def refresh_pairs(state, params, mask, gmax_i, cnt_read, refreshes, W, consts, counter, mode):
    """Refresh the pairs set in ``mask`` in one call (see the module docs).

    Parameters
    ----------
    state, params : DeviceState, DeviceParams
        The array's records (:mod:`.records`), changed in place.
    mask : numpy.ndarray of bool
        Pair mask, ``N`` entries in C order (``N`` synapses; devices ``s`` and ``N + s`` form
        pair ``s``); any layout (copied unless C-contiguous and writable).
    gmax_i : numpy.ndarray, shape (2 N,)
        Per-device upper bounds.
    cnt_read : numpy.ndarray of int64, shape (2 N,)
        Per-device read counts, advanced in place.
    refreshes : numpy.ndarray of int64, shape (N,)
        Per-pair refresh counts, advanced in place.
    W : numpy.ndarray, shape (N,), or None
        The flat weight cache (kept current for the refreshed pairs), or None for none.
    consts : tuple
        From :func:`pack`.
    counter : int
        The array's call counter before the refresh.
    mode : int
        :data:`MODE_VERIFY` or :data:`MODE_IDEAL`.

    Returns
    -------
    (int, int, int, int)
        Pairs refreshed (``-1``: a weight read as NaN, nothing changed), the call counter after
        the refresh, the verify's longest sequence of write steps and the devices it programmed
        (the caller counts ``(steps + 1) * devices`` verify reads).
    """
    has_w = W is not None
    fl = mask.flags
    if not (fl.c_contiguous and fl.writeable):  # one numba type per number of dimensions
        mask = np.array(mask, dtype=np.bool_, order="C")
    st, pa, W = tuple(state), tuple(params), W if has_w else _NO_W
    return _refresh(st, pa, mask, gmax_i, cnt_read, refreshes, W, has_w, consts, counter,
                    mode)  # fmt: skip
