"""Variability of synapse devices, composed of separate optional parts (``specs/devices.md`` s.3).

A :class:`Variability` holds up to six parts; each part is a frozen dataclass and ``None`` means
"off". Parts compose freely, e.g. ``Variability(d2d=DeviceToDevice(sigma_nl=1.0),
c2c=CycleToCycle(0.035))``. :meth:`Variability.replace` accepts flat keys (``sigma_nl=0.5``,
``c2c_sigma=0``, ``read_sigma=0.02``, ...) so sweeps and ``devices.get(name, **overrides)`` can
address any parameter by one name.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from .validation import check_choice, check_real

__all__ = [
    "DeviceToDevice",
    "CycleToCycle",
    "Stuck",
    "ReadNoise",
    "Drift",
    "Endurance",
    "Variability",
    "FLAT_KEYS",
]


@dataclass(frozen=True, kw_only=True)
class DeviceToDevice:
    """Device-to-device spread, sampled once per device when an array is built.

    Parameters
    ----------
    sigma_nl : float
        Standard deviation of the NL labels in NL units (exponential model); labels are clipped
        to [-9, 9]. Independent draws for LTP and LTD unless ``nl_shared``.
    nl_shared : bool
        Use one draw for both branches.
    sigma_gmin, sigma_gmax : float
        Relative spreads of Gmin and Gmax (``Gmax_i = Gmax (1 + sigma_gmax xi)``); devices with
        ``Gmin_i <= 0`` or ``Gmin_i >= Gmax_i`` are redrawn (100 tries).
    sigma_levels : float
        Relative spread of the pulse counts (``P_i = max(2, round(P (1 + sigma_levels xi)))``).
    sigma_step : float
        Step models: relative spread of ``dw_min`` (one draw shared by both directions).
    sigma_asym : float
        Step models: spread of the up/down asymmetry ``beta``.
    sigma_bounds : float
        Step models: relative spread of ``b_min``/``b_max``.
    """

    sigma_nl: float = 0.0
    nl_shared: bool = False
    sigma_gmin: float = 0.0
    sigma_gmax: float = 0.0
    sigma_levels: float = 0.0
    sigma_step: float = 0.0
    sigma_asym: float = 0.0
    sigma_bounds: float = 0.0

    def __post_init__(self):
        for f in (
            "sigma_nl",
            "sigma_gmin",
            "sigma_gmax",
            "sigma_levels",
            "sigma_step",
            "sigma_asym",
            "sigma_bounds",
        ):
            check_real(f, getattr(self, f), lo=0.0)
        if not isinstance(self.nl_shared, bool):
            raise TypeError(f"nl_shared must be a bool, got {self.nl_shared!r}")


@dataclass(frozen=True, kw_only=True)
class CycleToCycle:
    """Cycle-to-cycle write noise.

    Parameters
    ----------
    sigma : float
        Exponential and look-up-table devices: fraction of the conductance range, the write of
        ``n`` pulses adds ``N(0, (sigma * dG * sqrt(|n|))^2)`` (NeuroSim convention). Step models:
        fraction of the step size at the starting state.
    """

    sigma: float = 0.0

    def __post_init__(self):
        check_real("c2c_sigma", self.sigma, lo=0.0)


@dataclass(frozen=True, kw_only=True)
class Stuck:
    """Fractions of devices stuck at Gmin, at Gmax, or at a uniform random conductance.

    Stuck devices ignore writes, resets and programming; pulses sent to them are still counted.
    """

    p_gmin: float = 0.0
    p_gmax: float = 0.0
    p_random: float = 0.0

    def __post_init__(self):
        for f in ("p_gmin", "p_gmax", "p_random"):
            check_real(f"p_stuck_{f[2:]}", getattr(self, f), lo=0.0, hi=1.0)
        total = self.p_gmin + self.p_gmax + self.p_random
        if total > 1.0:
            raise ValueError(f"stuck fractions must add up to at most 1, got {total!r}")


@dataclass(frozen=True, kw_only=True)
class ReadNoise:
    """Read noise: each read sees ``G (1 + sigma xi)``, independent per device and read."""

    sigma: float = 0.0

    def __post_init__(self):
        check_real("read_sigma", self.sigma, lo=0.0)


@dataclass(frozen=True, kw_only=True)
class Drift:
    """Power-law conductance drift ``G(tau) = G_w (max(tau, t0)/t0)^(-nu_i)``, clipped at Gmin.

    Parameters
    ----------
    nu : float
        Mean drift exponent.
    sigma_nu : float
        Device-to-device spread of the exponent (normal, truncated at 0).
    t0 : float
        Reference time in seconds (> 0).
    """

    nu: float = 0.0
    sigma_nu: float = 0.0
    t0: float = 1.0

    def __post_init__(self):
        check_real("drift_nu", self.nu, lo=0.0)
        check_real("drift_sigma_nu", self.sigma_nu, lo=0.0)
        check_real("drift_t0", self.t0, lo=0.0, lo_open=True)


@dataclass(frozen=True, kw_only=True)
class Endurance:
    """Endurance: a device freezes after a budget ``N_i ~ LogNormal(ln n50, sigma)`` of pulses.

    Pulses counted are LTP + LTD + programming pulses; a RESET counts as one.
    """

    n50: float = math.inf
    sigma: float = 0.0

    def __post_init__(self):
        check_real("endurance_n50", self.n50, lo=1.0, allow_inf=True)
        check_real("endurance_sigma", self.sigma, lo=0.0)


_PARTS = {
    "d2d": DeviceToDevice,
    "c2c": CycleToCycle,
    "stuck": Stuck,
    "read": ReadNoise,
    "drift": Drift,
    "endurance": Endurance,
}

#: Flat parameter names accepted by :meth:`Variability.replace` -> (part, field).
FLAT_KEYS = {
    **{f.name: ("d2d", f.name) for f in dataclasses.fields(DeviceToDevice)},
    "c2c_sigma": ("c2c", "sigma"),
    "p_stuck_gmin": ("stuck", "p_gmin"),
    "p_stuck_gmax": ("stuck", "p_gmax"),
    "p_stuck_random": ("stuck", "p_random"),
    "read_sigma": ("read", "sigma"),
    "drift_nu": ("drift", "nu"),
    "drift_sigma_nu": ("drift", "sigma_nu"),
    "drift_t0": ("drift", "t0"),
    "endurance_n50": ("endurance", "n50"),
    "endurance_sigma": ("endurance", "sigma"),
}


@dataclass(frozen=True, kw_only=True)
class Variability:
    """All variability of a device model; every part is optional (``None`` = off).

    Parameters
    ----------
    d2d : DeviceToDevice or None
    c2c : CycleToCycle or None
    stuck : Stuck or None
    read : ReadNoise or None
    drift : Drift or None
    endurance : Endurance or None
    reset_sigma : float
        Spread of the conductance after a RESET, ``Gmin + |N(0, reset_sigma dG)|``.
    """

    d2d: DeviceToDevice | None = None
    c2c: CycleToCycle | None = None
    stuck: Stuck | None = None
    read: ReadNoise | None = None
    drift: Drift | None = None
    endurance: Endurance | None = None
    reset_sigma: float = field(default=0.0)

    def __post_init__(self):
        for name, cls in _PARTS.items():
            v = getattr(self, name)
            if v is not None and not isinstance(v, cls):
                raise TypeError(f"{name} must be a {cls.__name__} or None, got {v!r}")
        check_real("reset_sigma", self.reset_sigma, lo=0.0)

    # convenient views ---------------------------------------------------------------
    @property
    def c2c_sigma(self) -> float:
        """Cycle-to-cycle sigma (0 when off)."""
        return self.c2c.sigma if self.c2c is not None else 0.0

    @property
    def read_sigma(self) -> float:
        """Read-noise sigma (0 when off)."""
        return self.read.sigma if self.read is not None else 0.0

    def flat(self) -> dict:
        """All parameters as one flat dict of :data:`FLAT_KEYS` (parts off give defaults)."""
        out = {}
        for key, (part, fname) in FLAT_KEYS.items():
            obj = getattr(self, part)
            obj = obj if obj is not None else _PARTS[part]()
            out[key] = getattr(obj, fname)
        out["reset_sigma"] = self.reset_sigma
        return out

    def replace(self, **changes) -> Variability:
        """Return a copy with flat keys (see :data:`FLAT_KEYS`) or whole parts replaced.

        Examples
        --------
        >>> Variability().replace(sigma_nl=0.5, c2c_sigma=0.02).c2c_sigma
        0.02
        """
        parts = {name: getattr(self, name) for name in _PARTS}
        reset = self.reset_sigma
        per_part: dict[str, dict] = {}
        for key, value in changes.items():
            if key in _PARTS:
                parts[key] = value
            elif key == "reset_sigma":
                reset = value
            elif key in FLAT_KEYS:
                part, fname = FLAT_KEYS[key]
                per_part.setdefault(part, {})[fname] = value
            else:
                allowed = sorted([*FLAT_KEYS, *_PARTS, "reset_sigma"])
                check_choice("variability parameter", key, allowed)
        for part, kw in per_part.items():
            cur = parts[part] if parts[part] is not None else _PARTS[part]()
            parts[part] = dataclasses.replace(cur, **kw)
        return Variability(**parts, reset_sigma=reset)


NO_VARIABILITY = Variability()
