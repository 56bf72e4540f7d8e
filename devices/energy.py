"""Device-level energy and latency of what device arrays did (``docs/ENERGY.md``).

The arrays count, per device, the LTP, LTD and programming pulses and the RESETs they applied
and the reads they made (:meth:`devices.DeviceArray.pulse_counts`,
:meth:`devices.DeviceArray.read_counts`). An :class:`EnergyModel` prices them:

* a write pulse of amplitude ``V`` and width ``t`` into a device of conductance ``G`` costs
  ``V^2 G t`` (the Joule energy of the pulse), or a fixed energy per pulse where the model says
  so (``ltp_energy`` / ``ltd_energy``, for devices whose paper gives one). Programming pulses
  are LTP pulses, a RESET costs one LTD pulse;
* a device read costs ``V_read^2 G t_read``. A whole-array read (one input vector) reads every
  device at the full read voltage, so the figure is an upper bound for inputs ``|x| <= 1``
  encoded in amplitude;
* converters, when an array has them: an ADC conversion costs ``FOM_W 2^bits`` (Walden's figure
  of merit with the converter's bits as its effective number of bits), a DAC conversion a
  fixed ``dac_energy``. One array read converts every input (DAC) and every output (ADC).

Latency: every device of an array is pulsed in parallel and a device's pulses come one after
another, so the write time of an interval is the longest pulse sequence of any device in it
(sum of its pulse widths); every whole-array read takes ``t_read + t_adc``; subset reads
(write-verify, refresh) take ``t_read`` per read of the most-read device.

This is **device-level** energy: the arrays only, no drivers, decoders, wires, sense amplifiers
or digital periphery (unlike NeuroSim's circuit-level model), and the reference column of the
``reference`` mapping is not counted.

The conductance of a device during an interval is the mean of its conductance at the start and
at the end of the interval (:class:`EnergyMeter`); for one pulse that is the mean of the
conductance before and after it, and reads between writes see the conductance exactly. Meter an
array after every write for exact accounting; coarser intervals (an epoch) approximate it, and
the write latency of a coarser interval is then a lower bound.

>>> import devices, numpy as np
>>> from devices.energy import EnergyMeter, EnergyModel, Pulse
>>> arr = devices.DeviceArray((2, 3), devices.get("ideal", c2c_sigma=0), mapping="reference")
>>> m = EnergyMeter(arr, EnergyModel(ltp=Pulse(1.0, 1e-6), ltd=Pulse(1.0, 1e-6)))
>>> _ = arr.matmul(np.ones(3))
>>> r = m.update()
>>> r.reads, r.write_energy
(6, 0.0)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from .models import DeviceModel
from .validation import check_int, check_real
from .xp import asnumpy

__all__ = [
    "Pulse",
    "EnergyModel",
    "EnergyReport",
    "EnergyMeter",
    "DEFAULT_PULSE",
    "preset_pulses",
    "summary",
    "network_summary",
]


@dataclass(frozen=True)
class Pulse:
    """A write pulse: amplitude in volts (the sign is the polarity) and width in seconds.

    Parameters
    ----------
    amplitude : float
        Volts, finite and non-zero.
    width : float
        Seconds, finite and > 0.
    """

    amplitude: float
    width: float

    def __post_init__(self):
        a = check_real("pulse amplitude (V)", self.amplitude)
        if a == 0:
            raise ValueError("pulse amplitude (V) must be non-zero, got 0.0")
        object.__setattr__(self, "amplitude", a)
        object.__setattr__(
            self, "width", check_real("pulse width (s)", self.width, lo=0.0, lo_open=True)
        )

    def energy(self, g):
        """Joule energy ``V^2 G t`` of this pulse into conductance ``g`` (siemens)."""
        return self.amplitude**2 * self.width * g


#: Pulse used for a device without published pulse data (the ideal and step presets, fitted
#: devices): 1 V, 100 ns. A placeholder with no source: give the device's own pulses.
DEFAULT_PULSE = Pulse(1.0, 100e-9)


def preset_pulses(name: str | None) -> tuple[Pulse, Pulse] | None:
    """LTP and LTD pulses of a published preset (``pulse_ltp_num`` / ``pulse_ltd_num`` of
    ``devices/data/device_presets.json``), or None when the name has none."""
    from .presets import published

    rec = published()["presets"].get(name) if name else None
    if not rec or not rec.get("pulse_ltp_num") or not rec.get("pulse_ltd_num"):
        return None
    p, d = rec["pulse_ltp_num"], rec["pulse_ltd_num"]
    return Pulse(p["amplitude_V"], p["width_s"]), Pulse(d["amplitude_V"], d["width_s"])


@dataclass(frozen=True, kw_only=True)
class EnergyModel:
    """Prices of pulses, reads and conversions (every field overridable).

    Parameters
    ----------
    ltp, ltd : Pulse or None
        Write pulses. None: the preset's published pulses (:func:`preset_pulses`, by the device
        name), else :data:`DEFAULT_PULSE`.
    ltp_energy, ltd_energy : float or None
        Fixed energy per pulse in joules (a paper's figure), used instead of ``V^2 G t``.
    v_read : float
        Read voltage (default 0.2 V: a small-signal read well below the switching voltages of
        the presets; an assumption, not a published figure).
    t_read : float
        Read time per read (default 10 ns; an assumption).
    adc_fom : float
        Walden figure of merit of the ADCs, joules per conversion step (energy per conversion
        ``adc_fom * 2**bits``; R. H. Walden, IEEE JSAC 17(4):539-550, 1999). Default 10 fJ: the
        order of moderate-resolution SAR ADCs in B. Murmann's ADC performance survey (the best
        reach about 1 fJ); an assumption to override with your converter's figure.
    dac_energy : float
        Energy per DAC conversion in joules (default 0: no established figure of merit; set it
        for your input drivers).
    t_adc : float
        Conversion time added to every whole-array read (default 0 s; columns convert in
        parallel).
    adc_bits, dac_bits : int or None
        Converter resolution; None takes the array's ``adc`` / ``dac`` quantizer (an array
        without one has no conversions); 0 means no converter.
    """

    ltp: Pulse | None = None
    ltd: Pulse | None = None
    ltp_energy: float | None = None
    ltd_energy: float | None = None
    v_read: float = 0.2
    t_read: float = 10e-9
    adc_fom: float = 10e-15
    dac_energy: float = 0.0
    t_adc: float = 0.0
    adc_bits: int | None = None
    dac_bits: int | None = None

    def __post_init__(self):
        for nm in ("ltp", "ltd"):
            v = getattr(self, nm)
            if v is not None and not isinstance(v, Pulse):
                raise TypeError(f"{nm} must be a devices.energy.Pulse or None, got {v!r}")
        for nm in ("ltp_energy", "ltd_energy"):
            v = getattr(self, nm)
            if v is not None:
                object.__setattr__(self, nm, check_real(nm, v, lo=0.0))
        check_real("v_read", self.v_read, lo=0.0)
        check_real("t_read", self.t_read, lo=0.0)
        check_real("adc_fom", self.adc_fom, lo=0.0)
        check_real("dac_energy", self.dac_energy, lo=0.0)
        check_real("t_adc", self.t_adc, lo=0.0)
        for nm in ("adc_bits", "dac_bits"):
            v = getattr(self, nm)
            if v is not None:
                check_int(nm, v, lo=0, hi=32)

    def replace(self, **changes) -> EnergyModel:
        """A copy with ``changes`` (validated)."""
        names = {f.name for f in dataclasses.fields(self)}
        for k in changes:
            if k not in names:
                from .validation import check_choice

                check_choice("energy model field", k, sorted(names))
        return dataclasses.replace(self, **changes)

    def pulses(self, device: DeviceModel | None = None) -> tuple[Pulse, Pulse, str]:
        """LTP and LTD pulses for ``device`` and where they come from (``"model"``,
        ``"preset"`` or ``"default"``)."""
        pre = preset_pulses(getattr(device, "name", None))
        src = "model" if self.ltp is not None and self.ltd is not None else None
        ltp = self.ltp or (pre[0] if pre else DEFAULT_PULSE)
        ltd = self.ltd or (pre[1] if pre else DEFAULT_PULSE)
        if src is None:
            src = "preset" if pre else "default"
        return ltp, ltd, src

    def to_dict(self) -> dict:
        """Plain dict (JSON-able)."""
        d = dataclasses.asdict(self)
        for nm in ("ltp", "ltd"):
            if d[nm] is not None:
                d[nm] = {"amplitude_V": d[nm]["amplitude"], "width_s": d[nm]["width"]}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> EnergyModel:
        """The model of :meth:`to_dict`."""
        d = dict(d)
        for nm in ("ltp", "ltd"):
            if d.get(nm) is not None:
                d[nm] = Pulse(d[nm]["amplitude_V"], d[nm]["width_s"])
        return cls(**d)


#: Energy fields of :class:`EnergyReport` (joules) and latency fields (seconds).
_ENERGY = ("write_energy", "read_energy", "adc_energy", "dac_energy")
_LATENCY = ("write_latency", "read_latency")
_COUNTS = ("pulses", "resets", "reads", "adc_conversions", "dac_conversions")


@dataclass
class EnergyReport:
    """Energy (J), latency (s) and the counts they come from, for one array or summed.

    Attributes
    ----------
    write_energy, read_energy, adc_energy, dac_energy : float
        Joules.
    write_latency, read_latency : float
        Seconds.
    pulses, resets, reads, adc_conversions, dac_conversions : int
        Device pulses (LTP + LTD + programming), RESETs, device reads, conversions.
    pulse_source : str
        Where the pulses came from (``model``, ``preset``, ``default``; ``mixed`` in a sum).
    """

    write_energy: float = 0.0
    read_energy: float = 0.0
    adc_energy: float = 0.0
    dac_energy: float = 0.0
    write_latency: float = 0.0
    read_latency: float = 0.0
    pulses: int = 0
    resets: int = 0
    reads: int = 0
    adc_conversions: int = 0
    dac_conversions: int = 0
    pulse_source: str = field(default="")

    @property
    def energy(self) -> float:
        """Total energy in joules."""
        return sum(getattr(self, k) for k in _ENERGY)

    @property
    def latency(self) -> float:
        """Total latency in seconds (writes and reads one after another)."""
        return self.write_latency + self.read_latency

    def __add__(self, other: EnergyReport) -> EnergyReport:
        if not isinstance(other, EnergyReport):
            return NotImplemented
        kw = {k: getattr(self, k) + getattr(other, k) for k in (*_ENERGY, *_LATENCY, *_COUNTS)}
        srcs = {s for s in (self.pulse_source, other.pulse_source) if s}
        kw["pulse_source"] = srcs.pop() if len(srcs) == 1 else ("mixed" if srcs else "")
        return EnergyReport(**kw)

    def to_dict(self) -> dict:
        """Every field plus ``energy`` and ``latency`` totals (plain floats and ints)."""
        d = dataclasses.asdict(self)
        d["energy"] = self.energy
        d["latency"] = self.latency
        return d

    def metrics(self) -> dict:
        """Per-epoch metric names and values (floats): ``energy_J``, ``energy_write_J``,
        ``energy_read_J``, ``energy_adc_J``, ``energy_dac_J``, ``latency_s``,
        ``latency_write_s``, ``latency_read_s``, ``device_reads``."""
        return {
            "energy_J": float(self.energy),
            "energy_write_J": float(self.write_energy),
            "energy_read_J": float(self.read_energy),
            "energy_adc_J": float(self.adc_energy),
            "energy_dac_J": float(self.dac_energy),
            "latency_s": float(self.latency),
            "latency_write_s": float(self.write_latency),
            "latency_read_s": float(self.read_latency),
            "device_reads": float(self.reads),
        }

    def __str__(self) -> str:
        return (
            f"energy {self.energy:.4g} J (write {self.write_energy:.4g}, read "
            f"{self.read_energy:.4g}, ADC {self.adc_energy:.4g}, DAC {self.dac_energy:.4g}); "
            f"latency {self.latency:.4g} s; {self.pulses} pulses, {self.reads} reads"
        )


def _bits(override, quantizer) -> int:
    if override is not None:
        return int(override)
    return int(quantizer.bits) if quantizer is not None else 0


class EnergyMeter:
    """Energy and latency of one device array since the meter was made.

    Parameters
    ----------
    array : devices.DeviceArray
    model : EnergyModel, optional
        Default ``EnergyModel()`` (the preset's pulses, default read and converter figures).

    Notes
    -----
    Each :meth:`update` prices the counts since the previous one at the mean of the devices'
    conductances then and now (see the module notes) and adds the result to :attr:`total`.
    """

    def __init__(self, array, model: EnergyModel | None = None):
        if not hasattr(array, "read_counts") or not hasattr(array, "pulse_counts"):
            raise TypeError(f"array must be a devices.DeviceArray, got {type(array).__name__}")
        model = EnergyModel() if model is None else model
        if not isinstance(model, EnergyModel):
            raise TypeError(f"model must be a devices.energy.EnergyModel, got {model!r}")
        self.array = array
        self.model = model
        self.ltp, self.ltd, self.pulse_source = model.pulses(array.device)
        self.total = EnergyReport(pulse_source=self.pulse_source)
        self._prev = self._snapshot()

    def _snapshot(self) -> dict:
        a = self.array
        pc = a.pulse_counts()
        snap = {k: asnumpy(pc[k]).reshape(-1).astype(np.int64) for k in ("ltp", "ltd", "prog")}
        snap["resets"] = asnumpy(pc["resets"]).reshape(-1).astype(np.int64)
        snap["dev_reads"] = asnumpy(a.cnt_read).reshape(-1).astype(np.int64)
        snap["vectors"] = dict(a.array_reads)
        snap["G"] = np.array(asnumpy(a.G), dtype=np.float64).reshape(-1)
        return snap

    def update(self) -> EnergyReport:
        """Price what the array did since the last update; return that increment (also added
        to :attr:`total`)."""
        m, a = self.model, self.array
        now = self._snapshot()
        prev = self._prev
        g = 0.5 * (prev["G"] + now["G"])
        d = {k: now[k] - prev[k] for k in ("ltp", "ltd", "prog", "resets", "dev_reads")}
        n_up = d["ltp"] + d["prog"]  # programming pulses are LTP pulses
        n_dn = d["ltd"] + d["resets"]  # a RESET costs one LTD pulse
        e_up = m.ltp_energy if m.ltp_energy is not None else self.ltp.energy(g)
        e_dn = m.ltd_energy if m.ltd_energy is not None else self.ltd.energy(g)
        write_e = float(np.sum(n_up * e_up) + np.sum(n_dn * e_dn))
        per_dev_t = n_up * self.ltp.width + n_dn * self.ltd.width
        write_t = float(per_dev_t.max()) if per_dev_t.size else 0.0
        dv = {k: now["vectors"][k] - prev["vectors"].get(k, 0) for k in now["vectors"]}
        vectors = sum(dv.values())
        read_unit = m.v_read**2 * m.t_read
        read_e = read_unit * (vectors * float(np.sum(g)) + float(np.sum(d["dev_reads"] * g)))
        sub = int(d["dev_reads"].max()) if d["dev_reads"].size else 0
        read_t = vectors * (m.t_read + m.t_adc) + sub * m.t_read
        # conversions: forward reads convert the inputs (DAC) and outputs (ADC), backward the
        # reverse; whole-device reads ("other") and subset reads convert nothing here
        n_in, n_out = a.in_features, a.out_features
        dac_n = dv.get("forward", 0) * n_in + dv.get("backward", 0) * n_out
        adc_n = dv.get("forward", 0) * n_out + dv.get("backward", 0) * n_in
        adc_b, dac_b = _bits(m.adc_bits, a.adc), _bits(m.dac_bits, a.dac)
        adc_n, dac_n = (adc_n if adc_b else 0), (dac_n if dac_b else 0)
        rep = EnergyReport(
            write_energy=write_e,
            read_energy=float(read_e),
            adc_energy=adc_n * m.adc_fom * 2.0**adc_b if adc_b else 0.0,
            dac_energy=dac_n * m.dac_energy if dac_b else 0.0,
            write_latency=write_t,
            read_latency=float(read_t),
            pulses=int(d["ltp"].sum() + d["ltd"].sum() + d["prog"].sum()),
            resets=int(d["resets"].sum()),
            reads=int(vectors * a.n_devices + d["dev_reads"].sum()),
            adc_conversions=int(adc_n),
            dac_conversions=int(dac_n),
            pulse_source=self.pulse_source,
        )
        self._prev = now
        self.total = self.total + rep
        return rep


def summary(array, model: EnergyModel | None = None) -> EnergyReport:
    """Energy and latency of everything ``array`` counted since it was built, priced at its
    present conductances (one interval: see :class:`EnergyMeter` for per-interval pricing)."""
    meter = EnergyMeter(array, model)
    zero = {k: np.zeros_like(v) for k, v in meter._prev.items() if k not in ("vectors", "G")}
    meter._prev = {**zero, "vectors": {}, "G": meter._prev["G"]}
    return meter.update()


def network_summary(layers, model: EnergyModel | None = None) -> EnergyReport:
    """:func:`summary` summed over the device arrays of ``layers`` (other weights are
    skipped: float weights cost nothing here)."""
    total = EnergyReport()
    for layer in layers:
        if hasattr(layer, "read_counts"):
            total = total + summary(layer, model)
    return total
