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
from .array_program import FORMS, PROGRAM_MODES, Programming
from .array_update import METHODS, SIDES, PulseUpdates
from .models import DeviceModel
from .quantizers import UniformQuantizer
from .validation import check_choice, check_int, check_real
from .variability import Variability
from .xp import asnumpy, get_xp, is_cupy_array, to_device

__all__ = ["DeviceArray", "MAPPINGS", "PROGRAM_MODES", "METHODS", "SIDES", "FORMS"]

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
)


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
    dac, adc : UniformQuantizer, optional
        Converters on the array inputs and on the column outputs of every read.
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
        adc: UniformQuantizer | None = None,
        trains: str = "host",
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
        for nm, q in (("dac", dac), ("adc", adc)):
            if q is not None and not isinstance(q, UniformQuantizer):
                raise TypeError(f"{nm} must be a devices.UniformQuantizer or None, got {q!r}")
        self.dac, self.adc = dac, adc
        self.trains = check_choice("trains", trains, TRAINS)
        self.backend = _resolve_backend(backend)
        self._k = backends.kernels(self.backend)
        if seed is not None:
            seed = check_int("seed", seed, lo=0)
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._init_state()

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
        self.prm, self.const, self.lut_up, self.lut_dn = dev.kernel_params(n, rng)
        self.key = int(rng.integers(0, 2**63, dtype=np.int64)) * 2 + int(rng.integers(0, 2))
        self.counter = 0
        self.gmin_i = self.prm[0] if dev.family != 1 else self._step_gbounds()[0]
        self.gmax_i = self.prm[1] if dev.family != 1 else self._step_gbounds()[1]
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
        self.frozen = (self.stuck > 0).astype(np.uint8)
        # endurance budgets
        if var.endurance is not None and math.isfinite(var.endurance.n50):
            e = var.endurance
            self.budget = np.maximum(
                1.0, np.round(np.exp(math.log(e.n50) + e.sigma * rng.standard_normal(n)))
            )
        else:
            self.budget = np.full(n, np.inf)
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
        self.G = G
        self.Gw = G.copy()
        self.tau = np.zeros(n)
        self.cnt_up = np.zeros(n, dtype=np.int64)
        self.cnt_dn = np.zeros(n, dtype=np.int64)
        self.cnt_prog = np.zeros(n, dtype=np.int64)
        self.cnt_reset = np.zeros(n, dtype=np.int64)
        self.refreshes = np.zeros(self.out_features * self.in_features, dtype=np.int64)
        self._wcache = None
        self._place_state()

    def _place_state(self):
        """Move the state to the backend's array module (built on the host, with the host
        generator, so every backend starts from the same state) and derive the bounds."""
        xp = self._xp
        if xp is not np:
            for k in _STATE_KEYS:
                setattr(self, k, to_device(getattr(self, k), xp))
        self.gmin_i = self.prm[0] if self.device.family != 1 else self._step_gbounds()[0]
        self.gmax_i = self.prm[1] if self.device.family != 1 else self._step_gbounds()[1]

    def _step_gbounds(self):
        gmin_n, gmax_n, bmin_n, bmax_n = self.const
        scale = (gmax_n - gmin_n) / (bmax_n - bmin_n)
        return gmin_n + (self.prm[0] - bmin_n) * scale, gmin_n + (self.prm[1] - bmin_n) * scale

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
        return self._view(self._read_G() if noise else self.G).copy()

    def weights(self, noise: bool = False) -> np.ndarray:
        """Effective weight matrix ``(out, in)``.

        Parameters
        ----------
        noise : bool
            Apply read noise (one read) instead of returning the noise-free weights.
        """
        if noise and self.variability.read_sigma > 0:
            return self._weights_from(self._read_G())
        return self._clean_weights().copy()

    def _clean_weights(self) -> np.ndarray:
        """Noise-free weights, cached until the next state change (do not modify)."""
        if self._wcache is None:
            self._wcache = self._weights_from(self.G)
        return self._wcache

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

    def _check_vec(self, name, x, n):
        xp = self._xp
        x = self._asarray(name, x, xp.float64)
        if x.ndim not in (1, 2) or x.shape[-1] != n:
            raise ValueError(f"{name} must have shape ({n},) or (batch, {n}), got {x.shape}")
        if not bool(xp.all(xp.isfinite(x))):
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
        if self.dac is not None:
            v = self.dac(v, self._rng)
        W = self._clean_weights() if self.variability.read_sigma <= 0 else self.weights(True)
        y = v @ W if transpose else v @ W.T
        return self.adc(y, self._rng) if self.adc is not None else y

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
        self._k.write(
            self.G,
            self.Gw,
            self.tau,
            n_flat,
            self.device.family,
            self.prm,
            self.const,
            self.lut_up,
            self.lut_dn,
            float(self.variability.c2c_sigma),
            np.uint64(self._next_base()),
            self.frozen,
            self.budget,
            self.cnt_up,
            self.cnt_dn,
            self.cnt_prog,
            self.cnt_reset,
            bool(prog),
        )

    def _write_sparse(self, idx, counts, prog=False):
        """Write ``counts`` pulses to the devices ``idx`` (unique) and update the weight cache
        of their synapses."""
        self._k.write_sparse(
            self.G, self.Gw, self.tau, idx, counts, self.device.family, self.prm, self.const,
            self.lut_up, self.lut_dn, float(self.variability.c2c_sigma),
            np.uint64(self._next_base()), self.frozen, self.budget, self.cnt_up, self.cnt_dn,
            self.cnt_prog, self.cnt_reset, bool(prog))  # fmt: skip
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
        }

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        """Full state as numpy arrays and plain values (no pickled objects): enough to resume
        bit for bit with :meth:`load_state_dict` on an array built with the same arguments."""
        st = {k: np.array(asnumpy(getattr(self, k))) for k in _STATE_KEYS}
        st["key"] = np.array(self.key, dtype=np.uint64)
        st["counter"] = np.array(self.counter, dtype=np.int64)
        st["rng_state"] = np.frombuffer(
            json.dumps(self._rng.bit_generator.state).encode(), dtype=np.uint8
        ).copy()
        return st

    def load_state_dict(self, state: dict) -> None:
        """Restore a state from :meth:`state_dict` (shapes must match this array)."""
        self._changed()
        for k in _STATE_KEYS:
            cur = getattr(self, k)
            new = asnumpy(state[k])
            if new.shape != cur.shape:
                raise ValueError(f"state[{k!r}] has shape {new.shape}, expected {cur.shape}")
            setattr(self, k, to_device(new.astype(cur.dtype, copy=True), self._xp))
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
        return st

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._k = backends.kernels(_resolve_backend(self.backend))

    def __repr__(self) -> str:
        name = self.device.name or type(self.device).__name__
        return (
            f"DeviceArray(shape={self.shape}, device={name!r}, "
            f"mapping={self.mapping!r}, backend={self.backend!r}, seed={self.seed!r})"
        )
