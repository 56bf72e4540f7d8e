"""Kernels that apply pulses and read device arrays, one module per backend.

Every backend module exposes the same functions with the same signatures. The device state and
the device parameters travel as two records (:mod:`.records`): ``state``, a
:class:`~.records.DeviceState` (``G, Gw, tau, frozen, budget, cnt_up, cnt_dn, cnt_prog,
cnt_reset``, changed in place), and ``params``, a :class:`~.records.DeviceParams` (``fam, prm,
const, lut_up, lut_dn, c2c, gmin``); a :class:`devices.DeviceArray` owns one of each.

``write(state, params, n, base, prog)``
    Apply signed pulse counts ``n`` (one per device, flat arrays) in place.
``write_sparse(state, params, idx, counts, base, prog)``
    ``write`` restricted to the devices ``idx`` (programming and refresh touch few devices).
``verify(state, params, idx, target, x_t, tol_g, cap, read_sigma, key, c0, prm_nom)``
    Program-and-verify loop of :meth:`devices.DeviceArray.program` (reads and trains per device,
    with call bases derived from the array key and counter); returns the longest train count.
``read_noisy(G, sigma, base, out)``
    ``out = G * (1 + sigma * xi)`` with one counter-based normal per device.
``pulse_update(state, params, bases, xbits, dbits, xneg, dneg, n_out, n_in, route, W, alpha,
gref, prm_dm=None)``
    Stochastic pulse-train update: coincidence counts of bit-packed trains, routed to the devices
    and written sample after sample; returns the total number of coincidences. ``prm_dm``: the
    parameter table in device-major order, read by the numba kernel's sparse rows (the other
    backends ignore it; the results are the same).
``pulse_request(state, params, dW, step_up, step_dn, theta, n_max, stochastic, route, base,
base_r, thr, half_step, dg_nom, need, W, alpha, gref, prm_dm=None)``
    Requested weight changes to rounded, routed pulse counts and writes in one pass (the pulse
    backprop hot path); flags written pairs that need a refresh; returns ``(device pulses,
    non-finite requests skipped)``. ``prm_dm``: as for ``pulse_update``.

The two update kernels keep a cached weight matrix ``W`` (flat, one entry per synapse) current
for the synapses they write: ``W = alpha (G+ - G-)`` when ``gref < 0`` (differential pair), else
``alpha (G - gref)``.

``reference`` is plain numpy and is the ground truth; ``numba_cpu`` is the fast CPU version;
``cuda`` holds numba CUDA kernels with host wrappers of the same signatures (cupy arrays on a GPU,
numpy arrays under the numba CUDA simulator; imported only when asked for). Random
numbers come from :mod:`devices._rng` (a pure function of a per-call ``base`` and the device
index), so all backends draw the same numbers.

Two modules hold fused numba CPU kernels beyond this common set, built from ``numba_cpu``'s
per-device functions, each computing what the general path computes for the cases its docs
list: :mod:`.online` (a batch-1 presentation of every layer) and :mod:`.refresh`
(:meth:`devices.DeviceArray.refresh` in one call).

Family codes (``fam``): 0 exponential / linear (``specs/devices.md`` section 1), 1 step models
(section 6), 2 measured look-up table. Route codes (``route``): 0 one device (reference mapping or
G+ only), 1 differential push-pull, 2 unidirectional.
"""

from __future__ import annotations

FAM_EXP = 0
FAM_STEP = 1
FAM_LUT = 2

ROUTE_SINGLE = 0
ROUTE_PUSH_PULL = 1
ROUTE_UNIDIRECTIONAL = 2

BACKENDS = ("numpy", "numba", "numba_cuda")


def get_kernels(backend: str):
    """Return the kernel module of a backend (``"numpy"``, ``"numba"`` or ``"numba_cuda"``).

    Parameters
    ----------
    backend : str
        ``"numpy"`` (the reference), ``"numba"`` (CPU) or ``"cuda"`` (numba CUDA kernels; this
        imports ``numba.cuda``, so the simulator, if wanted, must be switched on before).

    Returns
    -------
    module
        A module with ``write``, ``read_noisy`` and ``pulse_update``.
    """
    if backend == "numpy":
        from . import reference

        return reference
    if backend == "numba":
        from . import numba_cpu

        return numba_cpu
    if backend == "numba_cuda":
        from . import cuda

        return cuda
    raise ValueError(f"backend must be one of {BACKENDS} (or 'auto'), got {backend!r}")
