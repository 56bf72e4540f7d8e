"""Crossbar arrays of synapse devices (``specs/devices.md`` sections 3-5).

A :class:`DeviceArray` of shape ``(out_features, in_features)`` holds one device per synapse
(``mapping="reference"``, read against a mid-range reference) or a differential pair
(``mapping="differential"``, ``w = alpha (G+ - G-)``). It stores per-device state and the per-device
parameters sampled once from the device-to-device spread, and knows physics only: reads (with read
noise and converters), signed pulses, the stochastic pulse-train update, programming, refresh,
saturation, drift and counters. Learning rules decide what to do with it.
"""

from __future__ import annotations

import json
import math

import numpy as np

from . import _rng, backends
from . import converters as _conv
from .array_program import FORMS, PROGRAM_MODES, Programming
from .array_update import METHODS, SIDES, PulseUpdates
from .kernels.records import DeviceParams, DeviceState, field_property
from .models import DeviceModel
from .quantizers import UniformQuantizer
from .validation import check_choice, check_int, check_real
from .variability import Variability
from .xp import asnumpy, get_xp, is_cupy_array, to_device

__all__ = ["DeviceArray", "MAPPINGS", "PROGRAM_MODES", "METHODS", "SIDES", "FORMS", "READ_KINDS"]

#: Weight mappings: a differential pair, or one device against a mid-range reference.
MAPPINGS = ("differential", "reference")
#: Where pulse_update draws its pulse trains (see DeviceArray).
TRAINS = ("host", "device")
_STATE_KEYS = (
    "G",
    "Gw",
    "tau",
    "prm",
    "const",
    "lut_up",
    "lut_dn",
    "frozen",
    "stuck",
    "budget",
    "nu",
    "cnt_up",
    "cnt_dn",
    "cnt_prog",
    "cnt_reset",
    "refreshes",
    "cnt_read",
)
#: State keys added after the first release (read counters): a saved state without them loads
#: (the counters start at zero).
OPTIONAL_STATE_KEYS = ("cnt_read", "read_counts")
#: Kinds of read counted by :meth:`DeviceArray.read_counts`: whole-array reads (one per input
#: vector: ``forward`` matmul, ``backward`` rmatmul, ``other`` noisy weight/conductance reads)
#: and per-device reads of subsets (``verify`` rounds of write-verify, ``refresh`` reads).
READ_KINDS = ("forward", "backward", "other", "verify", "refresh")


def _resolve_backend(backend: str) -> str:
    """Check a backend name and its availability (:func:`devices.backends.resolve`)."""
    return backends.resolve(backend, backends.ARRAY_BACKENDS)


class DeviceArray(PulseUpdates, Programming):
    """A rows x cols crossbar whose weights live in synapse devices.

    Parameters
    ----------
    shape : tuple of int
        ``(out_features, in_features)``.
    device : DeviceModel
        The device model (e.g. ``devices.get("ag_a_si")``).
    mapping : {"differential", "reference"}
        Differential pair ``w = alpha (G+ - G-)`` with ``alpha = w_max / (Gmax - Gmin)``, or one
        device against the mid-range reference, ``w = 2 w_max (G - G_ref) / (Gmax - Gmin)``.
        Nominal Gmin/Gmax are used, so device-to-device range spread appears as weight error.
    variability : Variability, optional
        Replaces ``device.variability`` (default: the device's own).
    seed : int or None
        Seed of everything random in this array (device draws, write noise, pulse trains).
    backend : {"auto", "numpy", "numba", "cupy", "cuda-sim"}
        Kernel implementation; ``auto`` picks numba. ``cupy`` keeps the state in cupy arrays on
        the GPU and runs the numba CUDA kernels (reads, weights and counters come back as cupy
        arrays; ``docs/GPU.md``). ``cuda-sim`` runs the same CUDA kernels on numpy arrays under
        numba's CUDA simulator (needs ``NUMBA_ENABLE_CUDASIM=1``; slow, for testing the GPU code
        path on a CPU). All backends draw the same random numbers.
    w_max : float
        Weight range ``[-w_max, w_max]`` (default 1, the NeuroSim V3.0 range).
    dac : UniformQuantizer, optional
        Converter on the array inputs of every read (e.g. ``UniformQuantizer(bits=1, lo=0,
        hi=1)``: NeuroSim's 1-bit hidden activation, ``a >= 0.5 -> 1``).
    adc : UniformQuantizer or PartialSumADC, optional
        Converter on the column outputs of every read: a uniform quantizer of the result, or
        NeuroSim's partial-sum ADC (:class:`devices.converters.PartialSumADC`: the column and
        reference currents each truncated to whole steps of the column's full range).
    read : {"weight", "current"}
        Scale of the forward read (:mod:`devices.converters`): ``W x``, or the column current
        minus the reference current in units of one device's range, ``w_max * sum x (I -
        I_ref) / (Imax - Imin)``; with ``mapping="reference"`` (NeuroSim's one device plus a
        mid-range reference) that is ``0.5 W x``, with ``"differential"`` it is ``W x``. The
        backward read :meth:`rmatmul` is always in weight units.
    converters : {"both", "forward"}
        Reads the DAC and ADC act on: both, or :meth:`matmul` only (:meth:`rmatmul` then uses
        the weights as read cell by cell, as NeuroSim's backpropagation does).
    count : {"exact", "neurosim"}
        Pulse counts of :meth:`pulse_request`: exact rounding of ``|dW| / step``, or NeuroSim's
        (:func:`devices.converters.neurosim_counts`: the same rounding followed by the float
        cast that loses a pulse for some level counts; needs ``rounding="nearest"``).
    trains : {"host", "device"}
        Random pulse trains of :meth:`pulse_update`: ``"host"`` draws them with the array's
        numpy generator (the same trains on every backend; on the GPU backend the
        probabilities go to the host and the packed trains come back), ``"device"`` from the
        counter-based generator where the state lives (a CUDA kernel on the GPU; the same
        trains on every backend too, but not the ones of ``"host"``).

    Notes
    -----
    Devices start at their own Gmin (differential: ``w = 0``) or at the reference conductance
    (reference mapping: ``w = 0``). Device index layout: ``G`` has shape ``(k, out, in)`` with
    ``k = 2`` (G+, G-) for the differential mapping and ``k = 1`` for the reference mapping.
    """

    def __init__(
        self,
        shape,
        device: DeviceModel,
        *,
        mapping: str = "differential",
        variability: Variability | None = None,
        seed: int | None = None,
        backend: str = "auto",
        w_max: float = 1.0,
        dac: UniformQuantizer | None = None,
        adc: UniformQuantizer | _conv.PartialSumADC | None = None,
        trains: str = "host",
        read: str = "weight",
        converters: str = "both",
        count: str = "exact",
    ):
        if not isinstance(device, DeviceModel):
            raise TypeError(
                f"device must be a devices model (e.g. devices.get('epiram')), got {device!r}"
            )
        try:
            rows, cols = shape
        except (TypeError, ValueError):
            raise ValueError(f"shape must be (out_features, in_features), got {shape!r}") from None
        self.out_features = check_int("shape[0]", rows, lo=1)
        self.in_features = check_int("shape[1]", cols, lo=1)
        self.mapping = check_choice("mapping", mapping, MAPPINGS)
        if variability is not None:
            if not isinstance(variability, Variability):
                raise TypeError(f"variability must be a devices.Variability, got {variability!r}")
            device = device.with_variability(variability)
        self.device = device
        self.variability = device.variability
        self.w_max = check_real("w_max", w_max, lo=0.0, lo_open=True)
        if dac is not None and not isinstance(dac, UniformQuantizer):
            raise TypeError(f"dac must be a devices.UniformQuantizer or None, got {dac!r}")
        if adc is not None and not isinstance(adc, (UniformQuantizer, _conv.PartialSumADC)):
            raise TypeError(
                f"adc must be a devices.UniformQuantizer, a devices.converters.PartialSumADC or "
                f"None, "
                f"got {adc!r}"
            )
        self.dac, self.adc = dac, adc
        self.read = check_choice("read", read, _conv.READS)
        self.converters = check_choice("converters", converters, _conv.CONVERTER_SCOPES)
        self.count = check_choice("count", count, _conv.COUNT_RULES)
        self.trains = check_choice("trains", trains, TRAINS)
        self.backend = _resolve_backend(backend)
        self._k = backends.kernels(self.backend)
        if seed is not None:
            seed = check_int("seed", seed, lo=0)
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._init_state()

    # the kernels' records own these arrays; the attributes read and write the records
    G = field_property("state", "G")
    Gw = field_property("state", "Gw")
    tau = field_property("state", "tau")
    frozen = field_property("state", "frozen")
    budget = field_property("state", "budget")
    cnt_up = field_property("state", "cnt_up")
    cnt_dn = field_property("state", "cnt_dn")
    cnt_prog = field_property("state", "cnt_prog")
    cnt_reset = field_property("state", "cnt_reset")
    prm = field_property("params", "prm")
    const = field_property("params", "const")
    lut_up = field_property("params", "lut_up")
    lut_dn = field_property("params", "lut_dn")
    gmin_i = field_property("params", "gmin")

    # ------------------------------------------------------------------ construction
    @property
    def _xp(self):
        """Array module of the state: numpy, or cupy for the GPU backend."""
        return get_xp(self.backend)

    @property
    def shape(self) -> tuple[int, int]:
        """``(out_features, in_features)``."""
        return (self.out_features, self.in_features)

    @property
    def n_per_synapse(self) -> int:
        """Devices per synapse: 2 (differential) or 1 (reference)."""
        return 2 if self.mapping == "differential" else 1

    @property
    def n_devices(self) -> int:
        """Total number of devices."""
        return self.n_per_synapse * self.out_features * self.in_features

    def _init_state(self):
        rng = self._rng
        n = self.n_devices
        var = self.variability
        dev = self.device
        prm, const, lut_up, lut_dn = dev.kernel_params(n, rng)
        gmin, self.gmax_i = self._bounds(prm, const)
        self.params = DeviceParams.make(
            fam=dev.family, prm=prm, const=const, lut_up=lut_up, lut_dn=lut_dn,
            c2c=var.c2c_sigma, gmin=gmin,
        )  # fmt: skip
        self.key = int(rng.integers(0, 2**63, dtype=np.int64)) * 2 + int(rng.integers(0, 2))
        self.counter = 0
        # stuck devices
        self.stuck = np.zeros(n, dtype=np.uint8)
        G = self.gmin_i.copy()
        if self.mapping == "reference":
            G[:] = np.clip(self.g_ref, self.gmin_i, self.gmax_i)
        if var.stuck is not None:
            u = rng.random(n)
            s = var.stuck
            lo = u < s.p_gmin
            hi = (u >= s.p_gmin) & (u < s.p_gmin + s.p_gmax)
            rnd = (u >= s.p_gmin + s.p_gmax) & (u < s.p_gmin + s.p_gmax + s.p_random)
            G[lo] = self.gmin_i[lo]
            G[hi] = self.gmax_i[hi]
            r = rng.random(n)
            G[rnd] = (self.gmin_i + r * (self.gmax_i - self.gmin_i))[rnd]
            self.stuck[lo] = 1
            self.stuck[hi] = 2
            self.stuck[rnd] = 3
        frozen = (self.stuck > 0).astype(np.uint8)
        # endurance budgets
        if var.endurance is not None and math.isfinite(var.endurance.n50):
            e = var.endurance
            budget = np.maximum(
                1.0, np.round(np.exp(math.log(e.n50) + e.sigma * rng.standard_normal(n)))
            )
        else:
            budget = np.full(n, np.inf)
        # drift exponents (normal truncated at 0 by redrawing)
        self.nu = np.zeros(n)
        self.t0 = 1.0
        if var.drift is not None:
            d = var.drift
            self.t0 = d.t0
            nu = d.nu + d.sigma_nu * rng.standard_normal(n)
            for _ in range(100):
                neg = nu < 0
                if not neg.any():
                    break
                nu[neg] = d.nu + d.sigma_nu * rng.standard_normal(int(neg.sum()))
            self.nu = np.maximum(nu, 0.0)
        counters = ("cnt_up", "cnt_dn", "cnt_prog", "cnt_reset")
        counts = {k: np.zeros(n, dtype=np.int64) for k in counters}
        self.state = DeviceState.make(
            G=G, Gw=G.copy(), tau=np.zeros(n), frozen=frozen, budget=budget, **counts
        )
        self.refreshes = np.zeros(self.out_features * self.in_features, dtype=np.int64)
        # reads: whole-array reads (input vectors) by kind, per-device reads of subsets
        self.cnt_read = np.zeros(n, dtype=np.int64)
        self.array_reads = {"forward": 0, "backward": 0, "other": 0}
        self.subset_reads = {"verify": 0, "refresh": 0}
        self._wcache = None
        self._place_state()

    def _place_state(self):
        """Move the state to the backend's array module (built on the host, with the host
        generator, so every backend starts from the same state) and derive the bounds."""
        xp = self._xp
        if xp is not np:
            for k in _STATE_KEYS:
                setattr(self, k, to_device(getattr(self, k), xp))
        self.gmin_i, self.gmax_i = self._bounds(self.prm, self.const)

    def _bounds(self, prm, const):
        """Per-device conductance bounds ``(gmin, gmax)``: the parameter rows, or for step
        models the bounds ``b_min``, ``b_max`` mapped to conductance."""
        if self.device.family != 1:
            return prm[0], prm[1]
        gmin_n, gmax_n, bmin_n, bmax_n = const
        scale = (gmax_n - gmin_n) / (bmax_n - bmin_n)
        return gmin_n + (prm[0] - bmin_n) * scale, gmin_n + (prm[1] - bmin_n) * scale

    # ------------------------------------------------------------------ mapping constants
    @property
    def alpha(self) -> float:
        """Weight per siemens: ``w_max / dG`` (differential) or ``2 w_max / dG`` (reference)."""
        f = 1.0 if self.mapping == "differential" else 2.0
        return f * self.w_max / self.device.dG

    @property
    def g_ref(self) -> float:
        """Reference conductance (mid-range) of the reference mapping."""
        return 0.5 * (self.device.gmin + self.device.gmax)

    def nominal_step(self, method: str = "bidirectional", side: str = "both"):
        """Weight change of one pulse event on a linear device of the same range and levels.

        Parameters
        ----------
        method : {"bidirectional", "unidirectional"}
        side : {"both", "plus"}
            Differential bidirectional: push-pull on both devices, or G+ only.

        Returns
        -------
        (float, float)
            Step up and step down (``specs/devices.md`` section 4 table).
        """
        check_choice("method", method, METHODS)
        check_choice("side", side, SIDES)
        P_up, P_dn = self.device.levels("ltp"), self.device.levels("ltd")
        W = self.w_max
        if self.mapping == "reference":
            if method == "unidirectional":
                raise ValueError("method='unidirectional' needs mapping='differential'")
            return 2 * W / P_up, 2 * W / P_dn
        if method == "unidirectional":
            return W / P_up, W / P_up
        if side == "plus":
            return W / P_up, W / P_dn
        s = W * (1.0 / P_up + 1.0 / P_dn)
        return s, s

    # ------------------------------------------------------------------ state views
    def _view(self, a):
        return a.reshape(self.n_per_synapse, self.out_features, self.in_features)

    @property
    def conductances(self) -> np.ndarray:
        """Conductances, shape ``(k, out, in)`` (a copy)."""
        return self._view(self.G).copy()

    def _next_base(self) -> int:
        base = _rng.call_base(self.key, self.counter)
        self.counter += 1
        return base

    def _weights_from(self, G):
        Gv = self._view(G)
        if self.mapping == "differential":
            return self.alpha * (Gv[0] - Gv[1])
        return self.alpha * (Gv[0] - self.g_ref)

    def _read_G(self):
        s = self.variability.read_sigma
        if s <= 0:
            return self.G
        out = self._xp.empty_like(self.G)
        self._k.read_noisy(self.G, s, np.uint64(self._next_base()), out)
        return out

    def read_conductances(self, noise: bool = True) -> np.ndarray:
        """Conductances as read, shape ``(k, out, in)`` (one read: read noise if ``noise``)."""
        if noise:
            self.array_reads["other"] += 1
        return self._view(self._read_G() if noise else self.G).copy()

    def weights(self, noise: bool = False) -> np.ndarray:
        """Effective weight matrix ``(out, in)``.

        Parameters
        ----------
        noise : bool
            Apply read noise (one read) instead of returning the noise-free weights.
        """
        if noise:
            self.array_reads["other"] += 1
        if noise and self.variability.read_sigma > 0:
            return self._weights_from(self._read_G())
        return self._clean_weights().copy()

    def _clean_weights(self) -> np.ndarray:
        """Noise-free weights, cached until the next state change (do not modify)."""
        if self._wcache is None:
            self._wcache = self._weights_from(self.G)
        return self._wcache

    def weight_cache(self) -> np.ndarray:
        """The noise-free weights ``(out, in)`` as cached between state changes: not a copy
        (do not modify; fused update kernels keep it current in place)."""
        return self._clean_weights()

    def _changed(self) -> None:
        self._wcache = None

    def _gref_code(self) -> float:
        """Reference conductance for the kernels' weight cache (-1: differential pair)."""
        return -1.0 if self.mapping == "differential" else self.g_ref

    # ------------------------------------------------------------------ reads
    def _asarray(self, name, a, dtype=None):
        """``a`` as an array of the backend's module; a GPU array given to a CPU backend is
        refused with what to do (instead of cupy's implicit-conversion error)."""
        xp = self._xp
        if xp is np and is_cupy_array(a):
            raise TypeError(
                f"{name} is a cupy (GPU) array but this array's backend is {self.backend!r} "
                "(CPU): pass numpy arrays (cupy.asnumpy), or build the array with backend='cupy'"
            )
        return xp.asarray(a, dtype=dtype)

    def _check_vec(self, name, x, n, *, finite: bool = True):
        """``x`` as a float64 array of shape ``(n,)`` or ``(batch, n)``; also checked for NaN
        and infinite values unless ``finite`` is False (a caller that checks them itself)."""
        xp = self._xp
        x = self._asarray(name, x, xp.float64)
        if x.ndim not in (1, 2) or x.shape[-1] != n:
            raise ValueError(f"{name} must have shape ({n},) or (batch, {n}), got {x.shape}")
        # one reduction when all is well: a NaN or infinite value makes the sum non-finite (a
        # sum that overflows sends finite values to the element-wise check)
        if finite and not bool(xp.isfinite(x.sum())) and not bool(xp.all(xp.isfinite(x))):
            raise ValueError(f"{name} contains NaN or infinite values")
        return x

    def matmul(self, x) -> np.ndarray:
        """Forward read ``y = W x`` (one array read: read noise, DAC on ``x``, ADC on ``y``).

        Parameters
        ----------
        x : array_like, shape (in,) or (batch, in)

        Returns
        -------
        numpy.ndarray, shape (out,) or (batch, out)
        """
        return self._read_product(self._check_vec("x", x, self.in_features), transpose=False)

    def rmatmul(self, d) -> np.ndarray:
        """Backward (transposed) read ``d W`` with the same converters and read noise.

        Parameters
        ----------
        d : array_like, shape (out,) or (batch, out)

        Returns
        -------
        numpy.ndarray, shape (in,) or (batch, in)
        """
        return self._read_product(self._check_vec("d", d, self.out_features), transpose=True)

    def _read_product(self, v, transpose: bool) -> np.ndarray:
        """One array read: DAC on ``v``, ``v W^T`` (or ``v W``), ADC on the result."""
        self.array_reads["backward" if transpose else "forward"] += 1 if v.ndim == 1 else v.shape[0]
        if transpose and self.converters == "forward":
            W = (
                self._clean_weights()
                if self.variability.read_sigma <= 0
                else self._weights_from(self._read_G())
            )
            return v @ W
        if not transpose and (self.read == "current" or isinstance(self.adc, _conv.PartialSumADC)):
            return self._column_read(v)
        if self.dac is not None:
            v = self.dac(v, self._rng)
        W = (
            self._clean_weights()
            if self.variability.read_sigma <= 0
            else self._weights_from(self._read_G())
        )
        y = v @ W if transpose else v @ W.T
        return self.adc(y, self._rng) if self.adc is not None else y

    def _column_read(self, v) -> np.ndarray:
        """Forward read through the column currents (``read="current"`` and/or a
        :class:`~devices.converters.PartialSumADC`; :mod:`devices.converters`)."""
        if self.dac is not None:
            v = self.dac(v, self._rng)
        gain = self.w_max if self.read == "current" else self.alpha * self.device.dG
        if not isinstance(self.adc, _conv.PartialSumADC):
            W = (
                self._clean_weights()
                if self.variability.read_sigma <= 0
                else self._weights_from(self._read_G())
            )
            y = (v @ W.T) * (gain / (self.alpha * self.device.dG))
            return self.adc(y, self._rng) if self.adc is not None else y
        Gv = self._view(self._read_G())
        y = self.adc.read(v, Gv, mapping=self.mapping, g_ref=self.g_ref, i_range=self.device.dG)
        return gain * y

    # ------------------------------------------------------------------ writes
    def _check_counts(self, name, n):
        xp = self._xp
        a = self._asarray(name, n)
        if a.shape != self.shape:
            raise ValueError(f"{name} must have shape {self.shape}, got {a.shape}")
        if a.dtype.kind == "b" or a.dtype.kind not in "iuf":
            raise TypeError(f"{name} must hold integer pulse counts, got dtype {a.dtype}")
        if a.dtype.kind == "f":
            if not bool(xp.all(xp.isfinite(a))):
                raise ValueError(f"{name} contains NaN or infinite pulse counts")
            if not bool(xp.all(a == xp.round(a))):
                raise ValueError(f"{name} must hold whole pulse counts, got non-integer values")
        if a.size and bool(xp.max(xp.abs(a)) > 2**31):
            raise ValueError(f"{name} has pulse counts beyond 2**31 per write")
        return a.astype(np.int64, copy=False).ravel()

    def _write(self, n_flat, prog=False):
        self._changed()
        self._k.write(self.state, self.params, n_flat, np.uint64(self._next_base()), bool(prog))

    def _write_sparse(self, idx, counts, prog=False):
        """Write ``counts`` pulses to the devices ``idx`` (unique) and update the weight cache
        of their synapses."""
        self._k.write_sparse(
            self.state, self.params, idx, counts, np.uint64(self._next_base()), bool(prog)
        )
        self._touch(idx)

    def _touch(self, idx):
        """Recompute the cached weights of the synapses of devices ``idx`` (if cached)."""
        if self._wcache is None or idx.size == 0:
            return
        N = self.out_features * self.in_features
        syn = self._xp.unique(idx % N)
        Wf = self._wcache.reshape(-1)
        ref = self.G[syn + N] if self.mapping == "differential" else self.g_ref
        Wf[syn] = self.alpha * (self.G[syn] - ref)

    def pulse(self, n_plus, n_minus=None) -> None:
        """Apply signed pulse counts: ``n > 0`` potentiates (LTP), ``n < 0`` depresses (LTD).

        One write per device, whatever ``|n|`` (closed forms), with cycle-to-cycle noise scaled
        by ``sqrt(|n|)``.

        Parameters
        ----------
        n_plus : array_like of int, shape (out, in)
            Counts for G+ (or the single device of the reference mapping).
        n_minus : array_like of int, shape (out, in), optional
            Counts for G- (differential mapping only).
        """
        xp = self._xp
        n = xp.zeros(self.n_devices, dtype=xp.int64)
        N = self.out_features * self.in_features
        n[:N] = self._check_counts("n_plus", n_plus)
        if n_minus is not None:
            nm = self._check_counts("n_minus", n_minus)
            if self.mapping == "reference":
                if bool(xp.any(nm)):
                    raise ValueError(
                        "n_minus must be None for mapping='reference' (one device per synapse)"
                    )
            else:
                n[N:] = nm
        self._write(n)

    # ------------------------------------------------------------------ drift
    def age(self, seconds: float) -> None:
        """Advance time by ``seconds``: power-law drift from the last written conductance."""
        seconds = check_real("seconds", seconds, lo=0.0)
        self.tau += seconds
        live = (self.frozen == 0) & (self.nu > 0)
        if not live.any():
            return
        xp = self._xp
        t = xp.maximum(self.tau[live], self.t0) / self.t0
        self._changed()
        self.G[live] = xp.maximum(self.Gw[live] * t ** (-self.nu[live]), self.gmin_i[live])

    # ------------------------------------------------------------------ counters
    def counters(self) -> dict:
        """Totals: LTP, LTD and programming pulses, RESETs, refreshes, stuck and worn devices."""
        return {
            "pulses_ltp": int(self.cnt_up.sum()),
            "pulses_ltd": int(self.cnt_dn.sum()),
            "pulses_prog": int(self.cnt_prog.sum()),
            "resets": int(self.cnt_reset.sum()),
            "refreshes": int(self.refreshes.sum()),
            "stuck": int((self.stuck > 0).sum()),
            "worn_out": int(((self.frozen > 0) & (self.stuck == 0)).sum()),
        }

    def pulse_counts(self) -> dict:
        """Per-device counters, each of shape ``(k, out, in)`` (refreshes: ``(out, in)``)."""
        return {
            "ltp": self._view(self.cnt_up).copy(),
            "ltd": self._view(self.cnt_dn).copy(),
            "prog": self._view(self.cnt_prog).copy(),
            "resets": self._view(self.cnt_reset).copy(),
            "refreshes": self.refreshes.reshape(self.shape).copy(),
            "reads": self._view(self.cnt_read).copy() + sum(self.array_reads.values()),
        }

    def read_counts(self) -> dict:
        """Device reads by kind (see :data:`READ_KINDS`) and in total.

        One whole-array read (one input vector of :meth:`matmul` / :meth:`rmatmul`, or one
        noisy :meth:`weights` / :meth:`read_conductances`) reads every device once, so it counts
        :attr:`n_devices` device reads; a batch of ``B`` vectors counts ``B`` array reads.
        Verify rounds and refresh reads count the devices they read.

        Returns
        -------
        dict
            ``<kind>`` (device reads of each kind), ``total``, and ``array_<kind>`` (whole-array
            reads, i.e. input vectors, of the whole-array kinds).
        """
        n = self.n_devices
        out = {k: v * n for k, v in self.array_reads.items()}
        out.update(self.subset_reads)
        out["total"] = sum(out[k] for k in READ_KINDS)
        out.update({f"array_{k}": v for k, v in self.array_reads.items()})
        return out

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        """Full state as numpy arrays and plain values (no pickled objects): enough to resume
        bit for bit with :meth:`load_state_dict` on an array built with the same arguments."""
        st = {k: np.array(asnumpy(getattr(self, k))) for k in _STATE_KEYS}
        st["read_counts"] = np.array(
            [*self.array_reads.values(), *self.subset_reads.values()], dtype=np.int64
        )
        st["key"] = np.array(self.key, dtype=np.uint64)
        st["counter"] = np.array(self.counter, dtype=np.int64)
        st["rng_state"] = np.frombuffer(
            json.dumps(self._rng.bit_generator.state).encode(), dtype=np.uint8
        ).copy()
        return st

    def load_state_dict(self, state: dict) -> None:
        """Restore a state from :meth:`state_dict` (shapes must match this array; NaN values
        are refused before anything is loaded)."""
        for k in _STATE_KEYS:  # check everything first: a refused state leaves the array as is
            if k in OPTIONAL_STATE_KEYS and k not in state:
                continue
            new = np.asarray(asnumpy(state[k]))
            if new.dtype.kind == "f" and np.isnan(new).any():
                raise ValueError(
                    f"state[{k!r}] contains {int(np.isnan(new).sum())} NaN value(s); a device "
                    "state must be finite (a damaged or foreign checkpoint)"
                )
        self._changed()
        for k in _STATE_KEYS:
            cur = getattr(self, k)
            if k in OPTIONAL_STATE_KEYS and k not in state:  # saved before reads were counted
                state = {**state, k: np.zeros(cur.shape, dtype=np.int64)}
            new = asnumpy(state[k])
            if new.shape != cur.shape:
                raise ValueError(f"state[{k!r}] has shape {new.shape}, expected {cur.shape}")
            setattr(self, k, to_device(new.astype(cur.dtype, copy=True), self._xp))
        rc = [int(v) for v in np.asarray(state.get("read_counts", np.zeros(5, np.int64)))]
        self.array_reads = dict(zip(self.array_reads, rc[:3], strict=True))
        self.subset_reads = dict(zip(self.subset_reads, rc[3:], strict=True))
        self.key = int(np.asarray(state["key"]))
        self.counter = int(np.asarray(state["counter"]))
        self._rng.bit_generator.state = json.loads(
            bytes(np.asarray(state["rng_state"], dtype=np.uint8)).decode()
        )
        self._place_state()

    def __getstate__(self) -> dict:
        """Pickle / deep-copy support: the kernel module is not stored (a module cannot be
        pickled); it is looked up again by backend name when the array is restored."""
        st = self.__dict__.copy()
        st.pop("_k", None)
        st.pop("_refresh_cache", None)  # derived from the device model (array_program.py)
        st.pop("_prm_dm", None)  # derived from params.prm (array_update.py)
        return st

    def __setstate__(self, state: dict) -> None:
        if "state" not in state:  # pickled before the records: fields were plain attributes
            state = dict(state)
            state["state"] = DeviceState.make(**{k: state.pop(k) for k in DeviceState._fields})
            pa = {k: state.pop(k) for k in ("prm", "const", "lut_up", "lut_dn")}
            state["params"] = DeviceParams.make(
                **pa, fam=state["device"].family, c2c=state["variability"].c2c_sigma,
                gmin=state.pop("gmin_i"),
            )  # fmt: skip
        self.__dict__.update(state)
        self._k = backends.kernels(_resolve_backend(self.backend))

    def __repr__(self) -> str:
        name = self.device.name or type(self.device).__name__
        return (
            f"DeviceArray(shape={self.shape}, device={name!r}, "
            f"mapping={self.mapping!r}, backend={self.backend!r}, seed={self.seed!r})"
        )
