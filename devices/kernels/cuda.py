"""numba CUDA kernels; same names, host signatures and random draws as :mod:`.reference`.

The host functions pick a grid (one CUDA thread per device, per synapse or per programmed
device) and launch ``@cuda.jit`` kernels on arrays that expose the CUDA array interface: cupy
arrays on a GPU, plain numpy arrays under the numba CUDA simulator (``NUMBA_ENABLE_CUDASIM=1`` set
before ``numba.cuda`` is first imported), which runs every CUDA thread as a Python thread, so the
logic of these kernels is tested on CPU machines against the reference. Scalar results (pulse
totals, skipped requests, the longest verify sequence) are accumulated with atomics in a small
device array and read back once at the end of a call.

This module imports ``numba.cuda`` at import time; :func:`devices.kernels.get_kernels` imports it
only when a CUDA backend is asked for, so ``import devices`` never loads it.

Per-element math is :mod:`.numba_cpu`'s own functions recompiled as device functions, so
under the simulator (Python floats, the C library's ``expm1``/``log1p``) results equal the
reference to rounding; on a GPU, libdevice's math functions and fused multiply-add contraction
can differ in the last bits (parity to a relative 1e-12, not bit for bit).
"""

from __future__ import annotations

import contextlib
import math
import types as _pytypes
import warnings

import numpy as np
from numba import config as _nb_config
from numba import cuda

from ..gpu import LOW_OCCUPANCY_MESSAGE
from . import numba_cpu as _cpu
from .records import DeviceParams, DeviceState

#: True when the kernels run under the numba CUDA simulator (numpy arrays, Python threads).
SIMULATOR = bool(_nb_config.ENABLE_CUDASIM)


#: Threads per block (small under the simulator: one Python thread per CUDA thread).
THREADS = 32 if SIMULATOR else 256

_ONE = np.uint64(1)


# ----------------------------------------------------------------------------- device functions
#: Per-device math shared with :mod:`.numba_cpu`: the same Python functions, compiled here as
#: CUDA device functions. They are rebound to a copy of that module's namespace in which every
#: shared helper is replaced by its CUDA twin, so their calls resolve to device functions (under
#: the simulator, to simulated ones) and their constants are numba_cpu's.
_TWIN_NS = dict(vars(_cpu))


def _device_twin(name: str):
    f = getattr(_cpu, name).py_func
    g = _pytypes.FunctionType(f.__code__, _TWIN_NS, name, f.__defaults__, f.__closure__)
    g.__doc__ = f.__doc__
    _TWIN_NS[name] = twin = cuda.jit(device=True)(g)
    return twin


_mix = _device_twin("_mix")
_uniform = _device_twin("_uniform")
_open_unit = _device_twin("_open_unit")
_normal_slow = _device_twin("_normal_slow")
_normal = _device_twin("_normal")
_call_base = _device_twin("_call_base")
_clip = _device_twin("_clip")
_exp_fwd = _device_twin("_exp_fwd")
_exp_inv = _device_twin("_exp_inv")
_lut_inv = _device_twin("_lut_inv")
_lut_fwd = _device_twin("_lut_fwd")
_pow_int = _device_twin("_pow_int")
_step_coord = _device_twin("_step_coord")
_step_conductance = _device_twin("_step_conductance")
_log1p_series = _device_twin("_log1p_series")
_expm1_series = _device_twin("_expm1_series")
_step_log1p = _device_twin("_step_log1p")
_step_expm1 = _device_twin("_step_expm1")
_step_noise = _device_twin("_step_noise")
_col = _device_twin("_col")
_exp_branch = _device_twin("_exp_branch")
_exp_start = _device_twin("_exp_start")
_exp_land = _device_twin("_exp_land")
_apply_one = _device_twin("_apply_one")
_write_book = _device_twin("_write_book")
_write_one = _device_twin("_write_one")
_count = _device_twin("_count")
_nominal_x = _device_twin("_nominal_x")
_nominal_G = _device_twin("_nominal_G")
_verify_reuse = _device_twin("_verify_reuse")
_verify_look = _device_twin("_verify_look")
_verify_go = _device_twin("_verify_go")
_verify_one = _device_twin("_verify_one")
_flag_refresh = _device_twin("_flag_refresh")


@cuda.jit(device=True)
def _route_write(s, N, sgn, c, route, G, Gw, tau, fam, prm, const, lut_up, lut_dn, c2c, base,
                 frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset):  # fmt: skip
    """Route ``sgn * c`` pulses of synapse ``s``: one device (0), push-pull (1) or the
    potentiation side of the pair (2). Returns the device pulses sent. (The CPU twin also
    refreshes the cached weight; the CUDA kernels do that with ``_weight``.)"""
    if route == 0:
        _write_one(s, sgn * c, G, Gw, tau, fam, prm, const, lut_up, lut_dn, c2c, base, frozen,
                   budget, cnt_up, cnt_dn, cnt_prog, cnt_reset, False)  # fmt: skip
        return c
    if route == 1:
        _write_one(s, sgn * c, G, Gw, tau, fam, prm, const, lut_up, lut_dn, c2c, base, frozen,
                   budget, cnt_up, cnt_dn, cnt_prog, cnt_reset, False)  # fmt: skip
        _write_one(N + s, -sgn * c, G, Gw, tau, fam, prm, const, lut_up, lut_dn, c2c, base,
                   frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset, False)  # fmt: skip
        return 2 * c
    tgt = s if sgn > 0 else N + s
    _write_one(tgt, c, G, Gw, tau, fam, prm, const, lut_up, lut_dn, c2c, base, frozen, budget,
               cnt_up, cnt_dn, cnt_prog, cnt_reset, False)  # fmt: skip
    return c


@cuda.jit(device=True)
def _weight(s, N, G, alpha, gref):
    if gref < 0.0:
        return alpha * (G[s] - G[N + s])
    return alpha * (G[s] - gref)


# ----------------------------------------------------------------------------- kernels
# Every update kernel starts with the fields of the two records, in their order
# (DeviceState._fields, then DeviceParams._fields): the host wrappers below unpack the records
# there (``*state, *params``), and _check_record_order() verifies the order at import.
@cuda.jit
def _k_write(G, Gw, tau, frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset, fam, prm, const,
             lut_up, lut_dn, c2c, gmin, n, base, prog):  # fmt: skip
    i = cuda.grid(1)
    if i < G.size and n[i] != 0:
        _write_one(i, n[i], G, Gw, tau, fam, prm, const, lut_up, lut_dn, c2c, base, frozen,
                   budget, cnt_up, cnt_dn, cnt_prog, cnt_reset, prog)  # fmt: skip


@cuda.jit
def _k_write_sparse(G, Gw, tau, frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset, fam, prm,
                    const, lut_up, lut_dn, c2c, gmin, idx, counts, base, prog):  # fmt: skip
    k = cuda.grid(1)
    if k < idx.size and counts[k] != 0:
        _write_one(idx[k], counts[k], G, Gw, tau, fam, prm, const, lut_up, lut_dn, c2c, base,
                   frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset, prog)  # fmt: skip


@cuda.jit
def _k_read(G, sigma, base, out):
    i = cuda.grid(1)
    if i < G.size:
        out[i] = G[i] * (1.0 + sigma * _normal(base, i))


@cuda.jit
def _k_update(G, Gw, tau, frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset, fam, prm, const,
              lut_up, lut_dn, c2c, gmin, bases, xbits, dbits, xneg, dneg, n_in, N, route, W,
              alpha, gref, tot):  # fmt: skip
    """One thread per synapse: the samples one after another (the device state is per synapse,
    so threads never share a device)."""
    s = cuda.grid(1)
    if s >= N:
        return
    j = s // n_in
    i = s - j * n_in
    acc = 0
    for b in range(xbits.shape[0]):
        c = 0
        for w in range(xbits.shape[2]):
            c += cuda.popc(xbits[b, i, w] & dbits[b, j, w])
        if c == 0:
            continue
        sgn = 1 if dneg[b, j] != xneg[b, i] else -1
        acc += c
        _route_write(s, N, sgn, c, route, G, Gw, tau, fam, prm, const, lut_up, lut_dn, c2c,
                     bases[b], frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset)  # fmt: skip
    W[s] = _weight(s, N, G, alpha, gref)
    if acc != 0:
        cuda.atomic.add(tot, 0, acc)


@cuda.jit
def _k_request(G, Gw, tau, frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset, fam, prm, const,
               lut_up, lut_dn, c2c, gmin, dW, step_up, step_dn, theta, n_max, stochastic, route,
               base, base_r, thr, half_step, dg_nom, need, W, alpha, gref, tot):  # fmt: skip
    s = cuda.grid(1)
    N = dW.size
    if s >= N:
        return
    v = dW[s]
    if not math.isfinite(v):
        cuda.atomic.add(tot, 1, 1)
        return
    if v != 0.0:
        n = _count(v, s, step_up, step_dn, theta, n_max, stochastic, base_r)
        if n > 0:
            sent = _route_write(s, N, 1 if v > 0.0 else -1, n, route, G, Gw, tau, fam, prm,
                                const, lut_up, lut_dn, c2c, base, frozen, budget, cnt_up,
                                cnt_dn, cnt_prog, cnt_reset)  # fmt: skip
            cuda.atomic.add(tot, 0, sent)
            if thr > 0.0 and _flag_refresh(s, N, G, gmin, dg_nom, thr, half_step):
                need[s] = True
    W[s] = _weight(s, N, G, alpha, gref)


@cuda.jit
def _k_verify(G, Gw, tau, frozen, budget, cnt_up, cnt_dn, cnt_prog, cnt_reset, fam, prm, const,
              lut_up, lut_dn, c2c, gmin, idx, target, x_t, tol_g, cap, read_sigma, key, c0, pn,
              tot):  # fmt: skip
    k = cuda.grid(1)
    if k >= idx.size:
        return
    w = _verify_one(k, G, Gw, tau, idx, target, x_t, tol_g, cap, read_sigma, key, c0, fam, prm,
                    const, lut_up, lut_dn, pn, c2c, frozen, budget, cnt_up, cnt_dn, cnt_prog,
                    cnt_reset)  # fmt: skip
    if w > 0:
        cuda.atomic.max(tot, 0, w)


@cuda.jit
def _k_trains(p, BL, base, nw, out):
    """One thread per row ``(b, r)``: the bits of :func:`devices.xp.pulse_trains`."""
    k = cuda.grid(1)
    n = p.shape[1]
    if k >= p.shape[0] * n:
        return
    b = k // n
    r = k - b * n
    pr = p[b, r]
    L = BL[b]
    row = np.uint64(k) * np.uint64(nw * 64)
    for w in range(nw):
        word = np.uint64(0)
        for q in range(64):
            t = w * 64 + q
            if t < L and _uniform(base, row + np.uint64(t)) < pr:
                word |= _ONE << np.uint64(q)
        out[b, r, w] = word


# ----------------------------------------------------------------------------- host side
@contextlib.contextmanager
def _launching():
    """Under the simulator, the 64-bit hash runs on numpy scalars, which wrap around as CUDA
    integers do but warn about it; the wrap-around is the intended arithmetic, so exactly that
    warning is silenced for the duration of a launch. On a GPU, numba's "Grid size N will likely
    result in GPU under-utilization" is silenced instead: a small array gets a small grid by
    design (one thread per device), and the warning told users nothing they could change (seen on
    an H200 at grids of 1 to 100 blocks of 256 threads). The message is matched, not the class:
    numba-cuda raises its own NumbaPerformanceWarning."""
    if not SIMULATOR:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=LOW_OCCUPANCY_MESSAGE)
            yield
        return
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message=r"(?s).*overflow encountered in scalar (multiply|add)",
            category=RuntimeWarning,
        )
        yield


def _blocks(n: int) -> int:
    return max(1, (int(n) + THREADS - 1) // THREADS)


def _launch(kernel, n, *args):
    """Launch ``kernel`` with one thread per item of ``n``."""
    with _launching():
        kernel[_blocks(n), THREADS](*args)


def _like(G, a, dtype):
    """``a`` as a contiguous array of ``dtype`` on the device (array module) of ``G``."""
    if isinstance(G, np.ndarray):
        return np.ascontiguousarray(a, dtype=dtype)
    from ..xp import array_module

    xp = array_module(G)
    return xp.ascontiguousarray(xp.asarray(a, dtype=dtype))


def _scalars(tot):
    """Host copy of a small result array (one transfer at the end of a call)."""
    return tot if isinstance(tot, np.ndarray) else tot.get()


def _record_args(state, params):
    """The kernels' leading arguments: the fields of both records, scalars typed."""
    pa = params._replace(fam=int(params.fam), c2c=float(params.c2c))
    return (*state, *pa)


def write(state, params, n, base, prog):
    """Apply signed pulse counts ``n`` to the devices of ``state`` in place (see module docs)."""
    if state.G.size == 0:
        return
    _launch(_k_write, state.G.size, *_record_args(state, params), n, np.uint64(base), bool(prog))


def write_sparse(state, params, idx, counts, base, prog):
    """:func:`write` for the devices ``idx`` (unique) only, with their counts."""
    G = state.G
    idx = _like(G, idx, np.int64)
    if idx.size == 0:
        return
    counts = _like(G, counts, np.int64)
    _launch(_k_write_sparse, idx.size, *_record_args(state, params), idx, counts,
            np.uint64(base), bool(prog))  # fmt: skip


def read_noisy(G, sigma, base, out):
    """``out = G * (1 + sigma * xi)``, one normal per device."""
    if G.size == 0:
        return
    _launch(_k_read, G.size, G, float(sigma), np.uint64(base), out)


def pulse_update(state, params, bases, xbits, dbits, xneg, dneg, n_out, n_in, route, W, alpha,
                 gref, prm_dm=None):  # fmt: skip
    """Stochastic pulse-train update, one sample after another (see module docs); ``prm_dm``
    (the parameter table in device-major order, a layout hint of the numba kernel) is not
    used here."""
    G = state.G
    N = int(n_out) * int(n_in)
    tot = _like(G, np.zeros(1), np.int64)
    if N == 0:
        return 0
    _launch(_k_update, N, *_record_args(state, params),
        _like(G, bases, np.uint64), xbits, dbits, xneg, dneg, int(n_in), N, int(route), W,
        float(alpha), float(gref), tot,
    )  # fmt: skip
    return int(_scalars(tot)[0])


def pulse_request(state, params, dW, step_up, step_dn, theta, n_max, stochastic, route, base,
                  base_r, thr, half_step, dg_nom, need, W, alpha, gref, prm_dm=None):  # fmt: skip
    """Requested weight changes -> rounded pulse counts -> routed writes, in one pass
    (``prm_dm``, the numba kernel's device-major table, is not used here)."""
    tot = _like(state.G, np.zeros(2), np.int64)
    if dW.size:
        _launch(_k_request, dW.size, *_record_args(state, params),
            dW, float(step_up), float(step_dn), float(theta), int(n_max), bool(stochastic),
            int(route), np.uint64(base), np.uint64(base_r), float(thr), float(half_step),
            float(dg_nom), need, W, float(alpha), float(gref), tot,
        )  # fmt: skip
    res = _scalars(tot)
    return int(res[0]), int(res[1])


def verify(state, params, idx, target, x_t, tol_g, cap, read_sigma, key, c0, prm_nom):
    """Program-and-verify devices ``idx`` toward ``target`` (see the reference docstring)."""
    G = state.G
    idx = _like(G, idx, np.int64)
    if idx.size == 0:
        return 0
    tot = _like(G, np.zeros(1), np.int64)
    pn = _like(G, prm_nom[:, 0], np.float64)
    _launch(_k_verify, idx.size, *_record_args(state, params),
        idx, _like(G, target, np.float64), _like(G, x_t, np.float64), float(tol_g), int(cap),
        float(read_sigma), np.uint64(key), int(c0), pn, tot,
    )  # fmt: skip
    return int(_scalars(tot)[0])


def pulse_trains(p, BL, bl, base):
    """Bit-packed Bernoulli trains from the counter-based generator, drawn on the device of
    ``p``: the same bits as :func:`devices.xp.pulse_trains` (see there)."""
    B, n = p.shape
    nw = (int(bl) + 63) // 64
    from ..xp import array_module

    out = array_module(p).zeros((B, n, nw), dtype=np.uint64)
    if B * n:
        _launch(_k_trains, B * n, _like(p, p, np.float64), _like(p, BL, np.int64),
                np.uint64(base), nw, out)  # fmt: skip
    return out


def _check_record_order():
    """Each update kernel's leading parameters are the record fields in record order, so the
    host wrappers' ``*state, *params`` lands every field where the kernel reads it."""
    want = (*DeviceState._fields, *DeviceParams._fields)
    for kern in (_k_write, _k_write_sparse, _k_update, _k_request, _k_verify):
        code = kern.py_func.__code__
        got = code.co_varnames[: code.co_argcount][: len(want)]
        if got != want:
            raise RuntimeError(
                f"{code.co_name} takes {got} before its own arguments, expected the record "
                f"fields {want}"
            )


_check_record_order()
