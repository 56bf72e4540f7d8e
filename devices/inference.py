"""What happens to programmed conductances after training: programming noise, drift, read noise.

An :class:`InferenceNoise` model describes three inference-time effects on top of whatever
conductances a :class:`~devices.DeviceArray` reached when it was programmed
(:meth:`~devices.DeviceArray.program` in mode ``ideal``, ``open_loop`` or ``verify``). They act on
``x = (G - Gmin_i) / dG``, the conductance above the device's own Gmin in units of the nominal
range (``g`` below is the same quantity, used as the state variable of the laws):

1. **Programming noise** (G-dependent): ``x_p = x + sigma_p(x) xi`` with
   ``sigma_p(g) = max(c0 + c1 g + c2 g^2, 0)``, clipped to the device's own range. Drawn once.
2. **Drift** (power law, per-device exponent): ``x(t) = x_p (max(t, t0)/t0)^(-nu_i)`` with
   ``nu_i ~ N(mu_nu(g), sigma_nu(g))`` truncated at 0 and drawn once per device, where
   ``mu_nu(g) = clip(a ln g + b, lo, hi)`` and ``sigma_nu(g)`` likewise (constant when ``a = 0``).
3. **Read noise** (1/f-like, growing with the time since programming):
   ``x_read = x(t) (1 + s(g, t) xi)`` with ``s(g, t) = Q_s(g) sqrt(ln((t + t_r) / (2 t_r)))``,
   ``Q_s(g) = min(q g^(-e), q_max)``, drawn afresh for every read. The array's own white read noise
   (``Variability.read_sigma``, relative to the whole ``G``) adds to it.

The published PCM laws are written for devices whose reset state is ``G ~ 0``; our presets have a
finite ON/OFF ratio, so the laws act on the conductance above Gmin (with ``Gmin = 0`` this is the
published form, and the drift is the law of ``specs/devices.md`` 3.6 and
:meth:`DeviceArray.age`) [recon]: a device left at its Gmin by one-sided programming neither drifts
nor picks up 1/f noise, as a reset PCM device with ``G ~ 0`` would not.

The ``pcm`` model carries the phase-change-memory numbers published by Nandakumar et al. (2019)
and Joshi et al. (2020), fitted there on measured PCM arrays; ``docs/INFERENCE.md`` lists every
parameter with its source. Models are frozen dataclasses; variants come from :func:`inference_model`
with overrides (``dataclasses.replace``).

:class:`ProgrammedArray` is the state one device instance carries through time: the conductances
right after programming (with programming noise), the drift exponents, and the device's bounds.
Its :meth:`~ProgrammedArray.weights` gives the weight matrix of one read at any time since
programming (a closed form in ``t``: times need not be visited in order).

References
----------
S. R. Nandakumar et al., "Phase-change memory models for deep learning training and inference",
ICECS 2019. V. Joshi et al., "Accurate deep neural network inference using computational
phase-change memory", Nature Communications 11, 2473 (2020), Methods (PCM model).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from .validation import check_real, did_you_mean

__all__ = [
    "InferenceNoise",
    "ProgrammedArray",
    "INFERENCE_MODELS",
    "inference_model",
    "inference_model_names",
    "drift_conductance",
    "draw_drift_exponents",
]

# Published PCM model (Joshi et al. 2020, Methods; Nandakumar et al. 2019), conductances
# normalized by G_max = 25 uS. Programming noise: sigma_p = 0.26348 + 1.9650 g - 1.1731 g^2 (uS).
_PCM_RANGE_US = 25.0
_PCM_PROG_US = (0.26348, 1.9650, -1.1731)


@dataclass(frozen=True, kw_only=True)
class InferenceNoise:
    """Programming noise, drift and read noise of programmed devices (module docstring).

    Parameters
    ----------
    name : str
        Label of the model.
    prog_coeff : tuple of 3 float
        ``(c0, c1, c2)`` of the programming-noise standard deviation
        ``max(c0 + c1 g + c2 g^2, 0)``, in units of the conductance range.
    nu_slope, nu_offset, nu_min, nu_max : float
        Mean drift exponent ``clip(nu_slope ln g + nu_offset, nu_min, nu_max)``.
    sigma_nu_slope, sigma_nu_offset, sigma_nu_min, sigma_nu_max : float
        Spread of the drift exponent, same form.
    t0 : float
        Drift reference time in seconds (no drift before it).
    read_q, read_q_exponent, read_q_max : float
        ``Q_s(g) = min(read_q g^(-read_q_exponent), read_q_max)`` of the 1/f read noise.
    t_read : float
        Read duration in seconds (the 1/f noise integrates from it).
    g_floor : float
        Smallest normalized conductance used inside ``ln g`` and ``g^(-e)``.
    """

    name: str = "custom"
    prog_coeff: tuple = (0.0, 0.0, 0.0)
    nu_slope: float = 0.0
    nu_offset: float = 0.0
    nu_min: float = 0.0
    nu_max: float = math.inf
    sigma_nu_slope: float = 0.0
    sigma_nu_offset: float = 0.0
    sigma_nu_min: float = 0.0
    sigma_nu_max: float = math.inf
    t0: float = 1.0
    read_q: float = 0.0
    read_q_exponent: float = 0.0
    read_q_max: float = math.inf
    t_read: float = 250e-9
    g_floor: float = 1e-7

    def __post_init__(self):
        pc = tuple(self.prog_coeff)
        if len(pc) != 3:
            raise ValueError(
                f"prog_coeff must hold 3 numbers (c0, c1, c2), got {self.prog_coeff!r}"
            )
        object.__setattr__(
            self, "prog_coeff", tuple(check_real(f"prog_coeff[{i}]", c) for i, c in enumerate(pc))
        )
        for f in ("nu_slope", "sigma_nu_slope", "nu_offset", "sigma_nu_offset"):
            check_real(f, getattr(self, f))
        for lo, hi in (("nu_min", "nu_max"), ("sigma_nu_min", "sigma_nu_max")):
            a = check_real(lo, getattr(self, lo), lo=0.0)
            b = check_real(hi, getattr(self, hi), lo=0.0, allow_inf=True)
            if b < a:
                raise ValueError(f"{hi} must be >= {lo} ({a}), got {b!r}")
        check_real("t0", self.t0, lo=0.0, lo_open=True)
        check_real("read_q", self.read_q, lo=0.0)
        check_real("read_q_exponent", self.read_q_exponent, lo=0.0)
        check_real("read_q_max", self.read_q_max, lo=0.0, allow_inf=True)
        check_real("t_read", self.t_read, lo=0.0, lo_open=True)
        check_real("g_floor", self.g_floor, lo=0.0, lo_open=True, hi=1.0)

    # ------------------------------------------------------------------ the three laws
    def _g(self, g):
        return np.maximum(np.asarray(g, dtype=np.float64), self.g_floor)

    def prog_sigma(self, g) -> np.ndarray:
        """Programming-noise standard deviation (fraction of the range) at normalized ``g``."""
        g = np.asarray(g, dtype=np.float64)
        c0, c1, c2 = self.prog_coeff
        return np.maximum(c0 + c1 * g + c2 * g * g, 0.0)

    def nu_stats(self, g) -> tuple[np.ndarray, np.ndarray]:
        """Mean and spread of the drift exponent at normalized ``g``."""
        lg = np.log(self._g(g))
        mu = np.clip(self.nu_slope * lg + self.nu_offset, self.nu_min, self.nu_max)
        sd = np.clip(self.sigma_nu_slope * lg + self.sigma_nu_offset, self.sigma_nu_min,
                     self.sigma_nu_max)  # fmt: skip
        return mu, sd

    def read_sigma(self, g, t: float) -> np.ndarray:
        """Relative 1/f read-noise standard deviation at normalized ``g``, ``t`` seconds after
        programming (0 where ``t`` is shorter than a read)."""
        q = np.minimum(self.read_q * self._g(g) ** (-self.read_q_exponent), self.read_q_max)
        return q * math.sqrt(max(math.log((t + self.t_read) / (2.0 * self.t_read)), 0.0))

    def with_overrides(self, **kw) -> InferenceNoise:
        """A copy with fields replaced (unknown names raise with a suggestion)."""
        names = [f.name for f in dataclasses.fields(self)]
        for k in kw:
            if k not in names:
                raise ValueError(
                    f"unknown inference-noise parameter {k!r}{did_you_mean(k, names)}; "
                    f"allowed: {', '.join(names)}"
                )
        return dataclasses.replace(self, **kw)


# Drift law of the PCM model (Joshi et al. 2020, Methods): mean and spread of nu against ln g.
_PCM_DRIFT = {
    "nu_slope": -0.0155,
    "nu_offset": 0.0244,
    "nu_min": 0.049,
    "nu_max": 0.1,
    "sigma_nu_slope": -0.0125,
    "sigma_nu_offset": -0.0059,
    "sigma_nu_min": 0.008,
    "sigma_nu_max": 0.045,
    "t0": 20.0,
}

#: The named inference models (``docs/INFERENCE.md`` has the parameter table and sources).
INFERENCE_MODELS: dict[str, InferenceNoise] = {
    "none": InferenceNoise(name="none"),
    # Joshi et al. 2020 (Methods) / Nandakumar et al. 2019: PCM fitted on measured arrays.
    "pcm": InferenceNoise(
        name="pcm",
        prog_coeff=tuple(c / _PCM_RANGE_US for c in _PCM_PROG_US),
        **_PCM_DRIFT,
        read_q=0.0088,
        read_q_exponent=0.65,
        read_q_max=0.2,
        t_read=250e-9,
    ),
    # the drift law of "pcm" alone (no programming or read noise): isolates drift
    "pcm_drift": InferenceNoise(name="pcm_drift", **_PCM_DRIFT),
    # state-independent drift, the example setting of specs/devices.md 3.6 [recon]
    "constant": InferenceNoise(
        name="constant",
        nu_offset=0.1,
        nu_max=0.1,
        nu_min=0.1,
        sigma_nu_offset=0.05,
        sigma_nu_min=0.05,
        sigma_nu_max=0.05,
        t0=1.0,
    ),
}


def inference_model_names() -> list[str]:
    """Names of :data:`INFERENCE_MODELS`."""
    return list(INFERENCE_MODELS)


def inference_model(name: str | InferenceNoise = "pcm", **overrides) -> InferenceNoise:
    """A named inference model, optionally with fields replaced.

    Parameters
    ----------
    name : str or InferenceNoise
        One of :func:`inference_model_names` (or a model, returned with the overrides).
    **overrides
        Fields of :class:`InferenceNoise` to replace.

    Returns
    -------
    InferenceNoise
    """
    if isinstance(name, InferenceNoise):
        model = name
    else:
        if name not in INFERENCE_MODELS:
            raise ValueError(
                f"noise must be one of {', '.join(map(repr, INFERENCE_MODELS))}, got {name!r}"
                f"{did_you_mean(name, list(INFERENCE_MODELS))}"
            )
        model = INFERENCE_MODELS[name]
    return model.with_overrides(**overrides) if overrides else model


def draw_drift_exponents(model: InferenceNoise, g, rng: np.random.Generator) -> np.ndarray:
    """Per-device drift exponents ``nu_i ~ N(mu_nu(g), sigma_nu(g))`` truncated at 0 (negative
    draws are redrawn, up to 100 times, then set to 0)."""
    mu, sd = model.nu_stats(g)
    mu = np.broadcast_to(mu, np.shape(g))
    sd = np.broadcast_to(sd, np.shape(g))
    nu = mu + sd * rng.standard_normal(np.shape(g))
    for _ in range(100):
        neg = nu < 0
        if not neg.any():
            break
        nu[neg] = mu[neg] + sd[neg] * rng.standard_normal(int(neg.sum()))
    return np.maximum(nu, 0.0)


def drift_conductance(xp, nu, t: float, t0: float) -> np.ndarray:
    """Power-law drift ``xp (max(t, t0)/t0)^(-nu)`` of conductances ``xp >= 0`` (above Gmin)."""
    r = max(float(t), t0) / t0
    if r == 1.0:
        return np.array(xp, dtype=np.float64)
    return xp * np.exp(-math.log(r) * np.asarray(nu))


class ProgrammedArray:
    """One programmed device array as it ages: conductances, drift exponents, bounds.

    Parameters
    ----------
    array : DeviceArray
        A programmed array (numpy state; the GPU backend's state is copied to the host).
    model : InferenceNoise
    rng : numpy.random.Generator
        Draws the programming noise and the drift exponents now, the read noise later.
    dac : devices.UniformQuantizer, optional
        Input converter of :meth:`product` (as ``DeviceArray(dac=...)``).
    adc : devices.UniformQuantizer or devices.converters.PartialSumADC, optional
        Output converter of :meth:`product` (as ``DeviceArray(adc=...)``).

    Notes
    -----
    Stuck and worn-out devices (the array's ``frozen`` flag) get neither programming noise nor
    drift. The weight mapping is the array's (``alpha``, differential or reference).
    """

    def __init__(
        self, array, model: InferenceNoise, rng: np.random.Generator, *, dac=None, adc=None
    ):
        from .converters import PartialSumADC
        from .quantizers import UniformQuantizer
        from .xp import asnumpy

        if not isinstance(model, InferenceNoise):
            raise TypeError(f"model must be a devices.inference.InferenceNoise, got {model!r}")
        if dac is not None and not isinstance(dac, UniformQuantizer):
            raise TypeError(f"dac must be a devices.UniformQuantizer or None, got {dac!r}")
        if adc is not None and not isinstance(adc, (UniformQuantizer, PartialSumADC)):
            raise TypeError(
                f"adc must be a devices.UniformQuantizer, a devices.converters.PartialSumADC or "
                f"None, got {adc!r}"
            )
        self.dac, self.adc = dac, adc
        self.model = model
        self.rng = rng
        self.mapping = array.mapping
        self.alpha = float(array.alpha)
        self.g_ref = float(array.g_ref)
        self.read_sigma_array = float(array.variability.read_sigma)
        self.dG = float(array.device.dG)
        self.gmin = asnumpy(array.gmin_i).astype(np.float64)
        self.gmax = asnumpy(array.gmax_i).astype(np.float64)
        G = asnumpy(array.G).astype(np.float64)
        frozen = asnumpy(array.frozen) > 0
        x = np.maximum(G - self.gmin, 0.0) / self.dG
        sp = model.prog_sigma(x)
        if np.any(sp > 0):
            noisy = np.clip(x + sp * rng.standard_normal(x.shape), 0.0,
                            (self.gmax - self.gmin) / self.dG)  # fmt: skip
            x = np.where(frozen, x, noisy)
        self.xp = x
        self.nu = np.where(frozen, 0.0, draw_drift_exponents(model, x, rng))
        self.k = array.n_per_synapse
        self.shape = array.shape

    def conductances(self, t: float, *, noise: bool = True) -> np.ndarray:
        """Flat conductances ``t`` seconds after programming (one read when ``noise``)."""
        t = check_real("t", t, lo=0.0)
        x = drift_conductance(self.xp, self.nu, t, self.model.t0)
        if noise:
            s = self.model.read_sigma(self.xp, t)
            if np.any(s > 0):
                x = x * (1.0 + s * self.rng.standard_normal(x.shape))
        G = self.gmin + self.dG * x
        if noise and self.read_sigma_array > 0:
            G = G * (1.0 + self.read_sigma_array * self.rng.standard_normal(G.shape))
        return G

    def weights(self, t: float, *, noise: bool = True) -> np.ndarray:
        """Weight matrix ``(out, in)`` read ``t`` seconds after programming."""
        return self._weights_of(self.conductances(t, noise=noise))

    def _weights_of(self, G) -> np.ndarray:
        G = np.asarray(G).reshape(self.k, *self.shape)
        if self.mapping == "differential":
            return self.alpha * (G[0] - G[1])
        return self.alpha * (G[0] - self.g_ref)

    def product(self, G, x) -> np.ndarray:
        """Forward read ``x W^T`` (weight units) of the conductances ``G`` (one read of
        :meth:`conductances`) through the converters: the DAC on ``x``, then the ADC on the
        column sums; a :class:`~devices.converters.PartialSumADC` digitizes the column and
        reference currents as ``DeviceArray.matmul`` does. Without converters, ``x @ W.T``.

        Parameters
        ----------
        G : numpy.ndarray
            Flat conductances (:meth:`conductances`).
        x : numpy.ndarray, shape (batch, in)
        """
        from .converters import PartialSumADC

        v = np.asarray(x, dtype=np.float64)
        if self.dac is not None:
            v = self.dac(v, self.rng)
        if isinstance(self.adc, PartialSumADC):
            Gv = np.asarray(G).reshape(self.k, *self.shape)
            y = self.adc.read(v, Gv, mapping=self.mapping, g_ref=self.g_ref, i_range=self.dG)
            return self.alpha * self.dG * y
        y = v @ self._weights_of(G).T
        return y if self.adc is None else self.adc(y, self.rng)

    def reference_read(self, t: float) -> float:
        """Global drift compensation reference: ``sum |W_read 1|``, the summed magnitude of the
        column outputs for an all-ones input (one read ``t`` seconds after programming).

        The ratio of this read right after programming to the same read at ``t`` rescales the
        array's outputs at ``t`` (global drift compensation as in Joshi et al. 2020).
        """
        return float(np.abs(self.weights(t).sum(axis=1)).sum())
