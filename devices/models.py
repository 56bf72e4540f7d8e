"""Device models: frozen, keyword-only, self-validating dataclasses (``specs/devices.md``).

Families
--------
:class:`ExpDevice`
    The exponential nonlinear model with NeuroSim NL labels for LTP and LTD (section 1-2).
:class:`LinearDevice`
    Constant conductance step per pulse (the exponential model's linear limit).
:class:`StepDevice`
    aihwkit-style step models on a device value ``u``: ``constant_step``, ``linear_step`` and
    ``soft_bounds`` (section 6), with up/down asymmetry.
:class:`LUTDevice`
    A measured device from conductance-vs-pulse arrays for LTP and LTD.

Every model reports its conductance after ``p`` pulses from the minimum (:meth:`conductance`),
the inverse (:meth:`pulses`), and its number of levels (:meth:`levels`, :meth:`n_states`).
Conductances are in siemens. Variability lives in :mod:`devices.variability` and is attached with
the ``variability`` field.
"""

from __future__ import annotations

import abc
import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from .kernels import FAM_EXP, FAM_LUT, FAM_STEP
from .kernels import reference as _ref
from .nl import NL_MAX, a_from_nl
from .nl_vec import a_from_nl_array
from .validation import check_choice, check_int, check_real
from .variability import NO_VARIABILITY, Variability

__all__ = ["DeviceModel", "ExpDevice", "LinearDevice", "StepDevice", "LUTDevice", "BRANCHES"]

BRANCHES = ("ltp", "ltd")
_D2D_EXP = {"sigma_nl", "nl_shared", "sigma_gmin", "sigma_gmax", "sigma_levels"}
_D2D_STEP = {"sigma_step", "sigma_asym", "sigma_bounds"}
_D2D_LUT = {"sigma_gmin", "sigma_gmax"}
_MAX_REDRAWS = 100


def _branch_is_up(branch: str) -> bool:
    return check_choice("branch", branch, BRANCHES) == "ltp"


@dataclass(frozen=True, kw_only=True)
class DeviceModel(abc.ABC):
    """Common interface of all device families (not instantiated directly).

    Parameters
    ----------
    gmin, gmax : float
        Conductance range in siemens, ``0 <= gmin < gmax``.
    variability : Variability
        Variability attached to the model (default: none).
    name : str
        Short name (the preset key for presets).
    citation : str
        Where the parameters come from.
    """

    family: ClassVar[int] = -1
    _d2d_keys: ClassVar[set] = set()

    gmin: float
    gmax: float
    variability: Variability = field(default=NO_VARIABILITY)
    name: str = ""
    citation: str = ""

    def __post_init__(self):
        gmin = check_real("gmin", self.gmin, lo=0.0)
        gmax = check_real("gmax", self.gmax, lo=0.0, lo_open=True)
        if not gmin < gmax:
            raise ValueError(f"gmin must be < gmax, got gmin={self.gmin!r} >= gmax={self.gmax!r}")
        object.__setattr__(self, "gmin", gmin)
        object.__setattr__(self, "gmax", gmax)
        if not isinstance(self.variability, Variability):
            raise TypeError(f"variability must be a devices.Variability, got {self.variability!r}")
        d2d = self.variability.d2d
        if d2d is not None:
            defaults = type(d2d)()
            for f in dataclasses.fields(d2d):
                if f.name not in self._d2d_keys and getattr(d2d, f.name) != getattr(
                    defaults, f.name
                ):
                    raise ValueError(
                        f"{f.name} is not accepted by {type(self).__name__} (device-to-device "
                        f"parameters it accepts: {', '.join(sorted(self._d2d_keys))})"
                    )

    # -- derived quantities ---------------------------------------------------------------
    @property
    def dG(self) -> float:
        """Conductance range ``gmax - gmin``."""
        return self.gmax - self.gmin

    @abc.abstractmethod
    def levels(self, branch: str = "ltp") -> int:
        """Number of pulses that cross the full range on a branch (``P_b``)."""

    def n_states(self, branch: str = "ltp") -> int:
        """Distinct conductances reached by whole pulses from the branch start (``P_b + 1``)."""
        return self.levels(branch) + 1

    @property
    def levels_ltp(self) -> int:
        """``levels("ltp")``."""
        return self.levels("ltp")

    @property
    def levels_ltd(self) -> int:
        """``levels("ltd")``."""
        return self.levels("ltd")

    # -- kernel parameters ------------------------------------------------------------------
    @abc.abstractmethod
    def kernel_params(self, n: int = 1, rng: np.random.Generator | None = None):
        """Per-device kernel parameters, sampled from the device-to-device spread if ``rng``.

        Parameters
        ----------
        n : int
            Number of devices.
        rng : numpy.random.Generator or None
            Generator for the device-to-device draws; ``None`` gives the nominal device.

        Returns
        -------
        prm : ndarray, shape (8, n)
            Family-specific rows (exponential: gmin, gmax, k_ltp, k_ltd, P_ltp, P_ltd,
            expm1(-k_ltp), expm1(-k_ltd) with ``k = 1/a``; step: b_min, b_max, dw_up, dw_down,
            gamma_up, gamma_down; table: gmin, gmax).
        const : ndarray, shape (4,)
        lut_up, lut_dn : ndarray
            Normalized tables (look-up-table devices; length-2 placeholders otherwise).
        """

    def _nominal(self):
        cache = self.__dict__.get("_nominal_cache")
        if cache is None:
            cache = self.kernel_params(1, None)
            object.__setattr__(self, "_nominal_cache", cache)
        return cache

    # -- response ---------------------------------------------------------------------------
    def conductance(self, p, branch: str = "ltp"):
        """Conductance at pulse coordinate ``p`` of a branch (``p`` pulses from the minimum).

        For ``"ltp"`` this is the conductance after ``p`` potentiation pulses from Gmin. The LTD
        branch uses the same rising coordinate: ``p`` depression pulses from Gmax reach
        ``conductance(levels("ltd") - p, "ltd")`` (see :meth:`depressed`).

        Parameters
        ----------
        p : array_like
            Pulse coordinate(s), clipped to ``[0, levels(branch)]``.
        branch : {"ltp", "ltd"}

        Returns
        -------
        numpy.ndarray
        """
        up = _branch_is_up(branch)
        p = np.asarray(p, dtype=np.float64)
        if np.any(np.isnan(p)):
            raise ValueError("p must not contain NaN")
        prm, const, lu, ld = self._nominal()
        pb = np.broadcast_to(prm[:, :1], (8, p.size)) if p.ndim else prm[:, 0]
        out = _ref.curve(self.family, p.ravel() if p.ndim else p, up, pb, const, lu, ld)
        return np.asarray(out).reshape(p.shape)

    def branch_length(self, branch: str = "ltp") -> float:
        """Length of a branch in pulses (``levels`` for most families; step models: the exact,
        possibly fractional ``(b_max - b_min) / dw``)."""
        return float(self.levels(branch))

    def depressed(self, p):
        """Conductance after ``p`` depression pulses from Gmax (noise-free)."""
        p = np.asarray(p, dtype=np.float64)
        return self.conductance(self.branch_length("ltd") - p, "ltd")

    def pulses(self, G, branch: str = "ltp"):
        """Inverse of :meth:`conductance`: pulse coordinate of conductance ``G`` on a branch."""
        up = _branch_is_up(branch)
        G = np.asarray(G, dtype=np.float64)
        if np.any(np.isnan(G)):
            raise ValueError("G must not contain NaN")
        prm, const, lu, ld = self._nominal()
        pb = np.broadcast_to(prm[:, :1], (8, G.size))
        x, _ = _ref.coordinate(self.family, G.ravel(), up, pb, const, lu, ld)
        return np.asarray(x).reshape(G.shape)

    def with_variability(self, variability: Variability | None = None, **flat) -> DeviceModel:
        """Copy with another variability, or with flat variability keys changed."""
        var = variability if variability is not None else self.variability
        if flat:
            var = var.replace(**flat)
        return dataclasses.replace(self, variability=var)

    def describe(self) -> dict:
        """JSON-able description (family, parameters, levels, variability)."""
        d = {
            "name": self.name,
            "family": type(self).__name__,
            "gmin": self.gmin,
            "gmax": self.gmax,
            "levels_ltp": self.levels("ltp"),
            "levels_ltd": self.levels("ltd"),
            "citation": self.citation,
        }
        for f in dataclasses.fields(self):
            if f.name not in d and f.name != "variability":
                v = getattr(self, f.name)
                d[f.name] = list(v) if isinstance(v, tuple) else v
        d["variability"] = self.variability.flat()
        return d


def _sample_range(gmin, gmax, d2d, n, rng):
    """Per-device Gmin/Gmax with relative spreads; redraw invalid devices (100 tries)."""
    gmin_i = np.full(n, gmin)
    gmax_i = np.full(n, gmax)
    if d2d is None or (d2d.sigma_gmin == 0 and d2d.sigma_gmax == 0) or rng is None:
        return gmin_i, gmax_i
    bad = np.ones(n, dtype=bool)
    for _ in range(_MAX_REDRAWS):
        k = int(bad.sum())
        gmax_i[bad] = gmax * (1.0 + d2d.sigma_gmax * rng.standard_normal(k))
        gmin_i[bad] = gmin * (1.0 + d2d.sigma_gmin * rng.standard_normal(k))
        bad = (gmin_i < 0) | (gmin_i >= gmax_i) | ((gmin_i <= 0) & (gmin > 0))
        if not bad.any():
            return gmin_i, gmax_i
    raise ValueError(
        f"sigma_gmin={d2d.sigma_gmin!r} / sigma_gmax={d2d.sigma_gmax!r} are too large: "
        f"{int(bad.sum())} devices still had Gmin_i <= 0 or Gmin_i >= Gmax_i after "
        f"{_MAX_REDRAWS} redraws"
    )


def _sample_levels(P, sigma, n, rng):
    if rng is None or sigma == 0:
        return np.full(n, float(P))
    return np.maximum(2.0, np.round(P * (1.0 + sigma * rng.standard_normal(n))))


def _placeholder_tables():
    t = np.array([0.0, 1.0])
    return t, t


@dataclass(frozen=True, kw_only=True)
class ExpDevice(DeviceModel):
    """Exponential nonlinear device labelled by NeuroSim NL values (``specs/devices.md`` s.1).

    ``f_b(x) = Gmin + B_b (1 - exp(-x / A_b))`` on ``x`` in ``[0, P_b]`` with
    ``A_b = a_b P_b`` and ``a_b`` found from the label by root finding (:func:`devices.a_from_nl`).

    Parameters
    ----------
    gmin, gmax : float
        Conductance range in siemens.
    levels_ltp, levels_ltd : int
        Pulses to cross the full range on each branch (``P``), >= 2.
    nl_ltp, nl_ltd : float
        NL labels in [-9, 9]; the sign is used as published (negative LTD labels: big first
        depression steps from Gmax). 0 is linear.
    variability, name, citation
        See :class:`DeviceModel`.

    Attributes
    ----------
    a_ltp, a_ltd : float
        Normalized shape parameters (``inf`` for a linear branch).
    """

    family: ClassVar[int] = FAM_EXP
    _d2d_keys: ClassVar[set] = _D2D_EXP

    levels_ltp: int = 64
    levels_ltd: int = 64
    nl_ltp: float = 0.0
    nl_ltd: float = 0.0
    a_ltp: float = field(init=False, repr=False, compare=False)
    a_ltd: float = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        super().__post_init__()
        for f in ("levels_ltp", "levels_ltd"):
            object.__setattr__(self, f, check_int(f, getattr(self, f), lo=2, hi=10**7))
        for f in ("nl_ltp", "nl_ltd"):
            object.__setattr__(self, f, check_real(f, getattr(self, f), lo=-NL_MAX, hi=NL_MAX))
        object.__setattr__(self, "a_ltp", a_from_nl(self.nl_ltp))
        object.__setattr__(self, "a_ltd", a_from_nl(self.nl_ltd))

    def levels(self, branch: str = "ltp") -> int:  # noqa: D102
        return self.levels_ltp if _branch_is_up(branch) else self.levels_ltd

    def kernel_params(self, n: int = 1, rng=None):  # noqa: D102
        d2d = self.variability.d2d if rng is not None else None
        prm = np.zeros((8, n))
        prm[0], prm[1] = _sample_range(self.gmin, self.gmax, d2d, n, rng)
        if d2d is not None and d2d.sigma_nl > 0:
            xi_up = rng.standard_normal(n)
            xi_dn = xi_up if d2d.nl_shared else rng.standard_normal(n)
            nl_up = np.clip(self.nl_ltp + d2d.sigma_nl * xi_up, -NL_MAX, NL_MAX)
            nl_dn = np.clip(self.nl_ltd + d2d.sigma_nl * xi_dn, -NL_MAX, NL_MAX)
            prm[2] = 1.0 / a_from_nl_array(nl_up)
            prm[3] = 1.0 / a_from_nl_array(nl_dn)
        else:
            prm[2] = 1.0 / self.a_ltp
            prm[3] = 1.0 / self.a_ltd
        sig_l = d2d.sigma_levels if d2d is not None else 0.0
        prm[4] = _sample_levels(self.levels_ltp, sig_l, n, rng)
        prm[5] = _sample_levels(self.levels_ltd, sig_l, n, rng)
        prm[6] = np.expm1(-prm[2])  # cached expm1(-k) of each branch
        prm[7] = np.expm1(-prm[3])
        lu, ld = _placeholder_tables()
        return prm, np.zeros(4), lu, ld


@dataclass(frozen=True, kw_only=True)
class LinearDevice(ExpDevice):
    """Linear device: a constant conductance step ``dG / P_b`` per pulse on each branch.

    The exponential model with ``nl_ltp = nl_ltd = 0`` (labels are fixed at 0; a device-to-device
    ``sigma_nl`` still bends individual devices).
    """

    def __post_init__(self):
        if self.nl_ltp != 0 or self.nl_ltd != 0:
            raise ValueError(
                f"LinearDevice has nl_ltp = nl_ltd = 0, got {self.nl_ltp!r}, "
                f"{self.nl_ltd!r}; use ExpDevice for a nonlinear response"
            )
        super().__post_init__()


STEP_MODELS = ("constant_step", "linear_step", "soft_bounds")


@dataclass(frozen=True, kw_only=True)
class StepDevice(DeviceModel):
    """aihwkit-style step model on a device value ``u`` in ``[b_min, b_max]`` (section 6).

    ``u`` maps linearly onto ``[gmin, gmax]``. One pulse in direction ``s`` (+1 up, -1 down):
    ``u <- u + s dw^s (1 + gamma^s u)``, with ``dw^s = dw_min (1 + s up_down)``,
    ``gamma^+ = -|gamma_up| / b_max``, ``gamma^- = -|gamma_down| / b_min``; closed forms for ``n``
    pulses. ``constant_step`` has ``gamma = 0``; ``soft_bounds`` has ``gamma_up = gamma_down = 1``
    (steps vanish at the bounds).

    Parameters
    ----------
    model : {"constant_step", "linear_step", "soft_bounds"}
    dw_min : float
        Nominal step of ``u`` per pulse (> 0).
    b_min, b_max : float
        Bounds of ``u`` (``b_min < 0 < b_max`` for ``linear_step``/``soft_bounds``).
    up_down : float
        Up/down asymmetry ``beta`` in (-1, 1).
    gamma_up, gamma_down : float
        Slopes of ``linear_step`` (ignored by the other models).
    gmin, gmax : float
        Conductance range that ``u`` maps onto (default: the ideal preset's 0.1 uS / 5 uS).
    """

    family: ClassVar[int] = FAM_STEP
    _d2d_keys: ClassVar[set] = _D2D_STEP

    gmin: float = 1e-7
    gmax: float = 5e-6
    model: str = "constant_step"
    dw_min: float = 0.001
    b_min: float = -0.6
    b_max: float = 0.6
    up_down: float = 0.0
    gamma_up: float = 0.0
    gamma_down: float = 0.0

    def __post_init__(self):
        super().__post_init__()
        check_choice("model", self.model, STEP_MODELS)
        dw = check_real("dw_min", self.dw_min, lo=0.0, lo_open=True)
        bmin = check_real("b_min", self.b_min)
        bmax = check_real("b_max", self.b_max)
        if not bmin < bmax:
            raise ValueError(f"b_min must be < b_max, got b_min={bmin!r}, b_max={bmax!r}")
        if self.model != "constant_step" and not (bmin < 0 < bmax):
            raise ValueError(
                f"{self.model} needs b_min < 0 < b_max, got b_min={bmin!r}, b_max={bmax!r}"
            )
        if dw >= bmax - bmin:
            raise ValueError(
                f"dw_min must be smaller than b_max - b_min = {bmax - bmin!r}, got {dw!r}"
            )
        check_real("up_down", self.up_down, lo=-1.0, hi=1.0, lo_open=True, hi_open=True)
        check_real("gamma_up", self.gamma_up)
        check_real("gamma_down", self.gamma_down)

    def _gammas(self):
        if self.model == "soft_bounds":
            return 1.0, 1.0
        if self.model == "constant_step":
            return 0.0, 0.0
        return abs(self.gamma_up), abs(self.gamma_down)

    def _bound_floor(self) -> float:
        """Smallest fraction of its nominal value a drawn bound may take (linear_step,
        soft_bounds): 5% of the bound, and at least four nominal steps times the slope."""
        g_up, g_dn = self._gammas()
        dw = self.dw_min * (1.0 + abs(self.up_down))
        need = max(4.0 * dw * max(g_up, 1.0) / self.b_max, 4.0 * dw * max(g_dn, 1.0) / -self.b_min)
        return min(1.0, max(0.05, need))

    def levels(self, branch: str = "ltp") -> int:
        """Effective number of levels ``round((b_max - b_min) / dw^s)``."""
        up = _branch_is_up(branch)
        dw = self.dw_min * (1.0 + (self.up_down if up else -self.up_down))
        return max(2, int(round((self.b_max - self.b_min) / dw)))

    def branch_length(self, branch: str = "ltp") -> float:  # noqa: D102
        up = _branch_is_up(branch)
        dw = self.dw_min * (1.0 + (self.up_down if up else -self.up_down))
        return (self.b_max - self.b_min) / dw

    def kernel_params(self, n: int = 1, rng=None):  # noqa: D102
        d2d = self.variability.d2d if rng is not None else None
        prm = np.zeros((8, n))
        if d2d is not None:
            xi_b = rng.standard_normal((2, n))
            xi_s = rng.standard_normal(n)
            xi_a = rng.standard_normal(n)
            bmax = self.b_max * (1.0 + d2d.sigma_bounds * xi_b[0])
            bmin = self.b_min * (1.0 + d2d.sigma_bounds * xi_b[1])
            bad = bmin >= bmax
            bmin[bad], bmax[bad] = self.b_min, self.b_max
            if self.model != "constant_step":
                # bounds keep their sign (a bound drawn across zero makes the slope gamma
                # change sign and the map diverge): clip at a floor that stays above a step
                floor_b = self._bound_floor()
                bmax = np.maximum(bmax, floor_b * self.b_max)
                bmin = np.minimum(bmin, floor_b * self.b_min)
            beta = self.up_down + d2d.sigma_asym * xi_a
            spread = d2d.sigma_step * xi_s
        else:
            bmax = np.full(n, self.b_max)
            bmin = np.full(n, self.b_min)
            beta = np.full(n, self.up_down)
            spread = np.zeros(n)
        floor = 1e-6 * self.dw_min
        prm[0], prm[1] = bmin, bmax
        prm[2] = np.maximum(self.dw_min * (1.0 + beta + spread), floor)
        prm[3] = np.maximum(self.dw_min * (1.0 - beta + spread), floor)
        g_up, g_dn = self._gammas()
        prm[4] = -g_up / bmax if g_up else 0.0
        prm[5] = -g_dn / bmin if g_dn else 0.0
        const = np.array([self.gmin, self.gmax, self.b_min, self.b_max])
        lu, ld = _placeholder_tables()
        return prm, const, lu, ld


@dataclass(frozen=True, kw_only=True)
class LUTDevice(DeviceModel):
    """Measured device: conductance vs pulse number for LTP and LTD.

    Parameters
    ----------
    ltp : sequence of float
        Conductance after 0, 1, ..., P_LTP potentiation pulses, strictly increasing from Gmin.
    ltd : sequence of float
        Conductance after 0, 1, ..., P_LTD depression pulses, strictly decreasing from Gmax.
    gmin, gmax : float, optional
        Range; default the smallest and largest value of both arrays.

    Notes
    -----
    Between integer pulse counts the response is linearly interpolated; the inverse is a
    monotone search. Device-to-device spread is limited to the range (``sigma_gmin``,
    ``sigma_gmax``), which rescales the measured curves per device.
    """

    family: ClassVar[int] = FAM_LUT
    _d2d_keys: ClassVar[set] = _D2D_LUT

    gmin: float = None  # type: ignore[assignment]
    gmax: float = None  # type: ignore[assignment]
    ltp: tuple = ()
    ltd: tuple = ()

    def __post_init__(self):
        arrs = {}
        for f in ("ltp", "ltd"):
            a = np.asarray(getattr(self, f), dtype=np.float64)
            if a.ndim != 1 or a.size < 2:
                raise ValueError(
                    f"{f} must be a 1-D sequence of at least 2 conductances, got shape {a.shape}"
                )
            if not np.all(np.isfinite(a)):
                raise ValueError(f"{f} must be finite (no NaN/inf)")
            arrs[f] = a
            object.__setattr__(self, f, tuple(float(v) for v in a))
        if not np.all(np.diff(arrs["ltp"]) > 0):
            raise ValueError("ltp must be strictly increasing (non-monotone measured data)")
        if not np.all(np.diff(arrs["ltd"]) < 0):
            raise ValueError("ltd must be strictly decreasing (non-monotone measured data)")
        lo = min(arrs["ltp"][0], arrs["ltd"][-1])
        hi = max(arrs["ltp"][-1], arrs["ltd"][0])
        if self.gmin is None:
            object.__setattr__(self, "gmin", float(lo))
        if self.gmax is None:
            object.__setattr__(self, "gmax", float(hi))
        super().__post_init__()
        if lo < self.gmin - 1e-12 * self.dG or hi > self.gmax + 1e-12 * self.dG:
            raise ValueError(
                f"measured conductances [{lo}, {hi}] lie outside gmin/gmax "
                f"[{self.gmin}, {self.gmax}]"
            )

    def levels(self, branch: str = "ltp") -> int:  # noqa: D102
        return len(self.ltp) - 1 if _branch_is_up(branch) else len(self.ltd) - 1

    def kernel_params(self, n: int = 1, rng=None):  # noqa: D102
        d2d = self.variability.d2d if rng is not None else None
        prm = np.zeros((8, n))
        prm[0], prm[1] = _sample_range(self.gmin, self.gmax, d2d, n, rng)
        lu = (np.asarray(self.ltp) - self.gmin) / self.dG
        ld = (np.asarray(self.ltd)[::-1] - self.gmin) / self.dG
        return prm, np.zeros(4), lu.copy(), ld.copy()
