"""Quantization-aware training helpers: the oscillation tracker and confidence-guided annealing.

Numpy functional cores (``specs/quantizers.md`` sections 3.2 and 3.3):

- :class:`OscillationTracker` follows the integer code of every weight across optimizer steps
  and keeps the exponential moving average of oscillation events of Nagel et al. (2022).
- :func:`cga_frozen_mask` / :func:`cga_freeze_mask` give the weights that confidence-guided
  annealing (CGA, OFQ; Liu, Liu, Cheng 2023) freezes: those whose pre-rounding code lies farther
  than ``boundary_range`` from every interior rounding boundary. :func:`cga_restore` puts the
  frozen latent weights back after an optimizer step, so their codes cannot change.

Inputs may be numpy arrays or CPU torch tensors (converted with ``.detach().cpu().numpy()``);
torch itself is never imported here.
"""

from __future__ import annotations

import numpy as np

from devices.validation import check_real

__all__ = [
    "OscillationTracker",
    "cga_frozen_mask",
    "cga_freeze_mask",
    "cga_restore",
    "level_grid_distance",
    "cga_level_frozen_mask",
]


def _to_numpy(name: str, a) -> np.ndarray:
    if hasattr(a, "detach") and hasattr(a, "cpu"):  # a torch tensor, without importing torch
        a = a.detach().cpu().numpy()
    a = np.asarray(a, dtype=np.float64)
    if np.isnan(a).any():
        raise ValueError(f"{name} must not contain NaN")
    return a


class OscillationTracker:
    """Per-weight oscillation statistics of integer codes (Nagel et al., ICML 2022).

    After every optimizer step pass the integer codes ``q_t`` to :meth:`update`. With
    ``d_t = sign(q_t - q_{t-1})`` (a jump of several levels counts once)::

        flip_t = d_t != 0
        osc_t  = d_t != 0 and d_t == -last_dir      # reverses the most recent nonzero move
        last_dir <- d_t where d_t != 0              # starts at 0: the first move never counts
        f_t    = m * osc_t + (1 - m) * f_{t-1},  f_0 = 0

    The first call only records the codes.

    Parameters
    ----------
    momentum : float
        EMA momentum ``m`` in ``(0, 1]`` (0.01).
    tau : float
        Default threshold of :meth:`oscillating_fraction` (0.005).

    Attributes
    ----------
    frequency : numpy.ndarray or None
        EMA oscillation frequency ``f`` per weight (None before the first update).
    flips, events : numpy.ndarray or None
        Per weight, the number of flips / oscillation events summed over all updates.
    last_flips, last_events : int
        Flips and oscillation events of the most recent update (all weights).
    steps : int
        Number of moves seen (updates after the first).

    Examples
    --------
    >>> t = OscillationTracker()
    >>> for q in [0, 1, 0, 1, 1, 2, 1]:
    ...     _ = t.update([q])
    >>> int(t.flips.sum()), int(t.events.sum()), round(float(t.frequency[0]), 10)
    (5, 3, 0.0293089501)
    """

    def __init__(self, momentum: float = 0.01, tau: float = 0.005):
        self.momentum = check_real("momentum", momentum, lo=0.0, hi=1.0, lo_open=True)
        self.tau = check_real("tau", tau, lo=0.0)
        self.reset()

    def reset(self) -> None:
        """Forget all history."""
        self.frequency = None
        self.flips = None
        self.events = None
        self.last_flips = 0
        self.last_events = 0
        self.steps = 0
        self._prev = None
        self._last_dir = None

    def state_dict(self) -> dict:
        """The tracker's whole state (numbers and array copies; enough to continue bit for bit
        with :meth:`load_state_dict`). Arrays not yet created (before the first update) are left
        out."""
        st = {
            "momentum": self.momentum,
            "tau": self.tau,
            "last_flips": self.last_flips,
            "last_events": self.last_events,
            "steps": self.steps,
        }
        arrays = {
            "frequency": self.frequency,
            "flips": self.flips,
            "events": self.events,
            "prev": self._prev,
            "last_dir": self._last_dir,
        }
        st.update({k: v.copy() for k, v in arrays.items() if v is not None})
        return st

    def load_state_dict(self, state) -> None:
        """Restore a state from :meth:`state_dict` (values may come back from a file as numpy
        scalars or arrays; each is given the type the tracker uses).

        Parameters
        ----------
        state : mapping
        """
        missing = {"momentum", "tau", "last_flips", "last_events", "steps"} - set(state)
        if missing:
            raise ValueError(f"tracker state lacks {sorted(missing)}")
        self.reset()
        self.momentum = check_real("momentum", float(np.asarray(state["momentum"])), lo=0.0)
        self.tau = check_real("tau", float(np.asarray(state["tau"])), lo=0.0)
        for k in ("last_flips", "last_events", "steps"):
            setattr(self, k, int(np.asarray(state[k])))
        if "prev" in state:
            self._prev = np.array(state["prev"])
            self._last_dir = np.array(state["last_dir"], dtype=np.int8)
            self.frequency = np.array(state["frequency"], dtype=np.float64)
            self.flips = np.array(state["flips"], dtype=np.int64)
            self.events = np.array(state["events"], dtype=np.int64)

    def update(self, q_int) -> OscillationTracker:
        """Record the codes after one optimizer step.

        Parameters
        ----------
        q_int : array_like
            Integer codes (any shape, constant across calls; integer-valued floats allowed).

        Returns
        -------
        OscillationTracker
            ``self``.
        """
        q = _to_numpy("q_int", q_int)
        if self._prev is None:
            self._prev = q.copy()
            self._last_dir = np.zeros(q.shape, dtype=np.int8)
            self.frequency = np.zeros(q.shape)
            self.flips = np.zeros(q.shape, dtype=np.int64)
            self.events = np.zeros(q.shape, dtype=np.int64)
            return self
        if q.shape != self._prev.shape:
            raise ValueError(
                f"q_int must keep the shape of the first update {self._prev.shape}, got {q.shape}"
            )
        d = np.sign(q - self._prev).astype(np.int8)
        moved = d != 0
        osc = moved & (d == -self._last_dir)
        self._last_dir = np.where(moved, d, self._last_dir)
        m = self.momentum
        self.frequency = m * osc + (1.0 - m) * self.frequency
        self.flips += moved
        self.events += osc
        self.last_flips = int(moved.sum())
        self.last_events = int(osc.sum())
        self.steps += 1
        self._prev = q.copy()
        return self

    def oscillating_fraction(self, threshold: float | None = None) -> float:
        """Share of weights whose EMA frequency exceeds ``threshold`` (default ``tau``).

        Parameters
        ----------
        threshold : float, optional
            Frequency threshold; default :attr:`tau`.
        """
        if self.frequency is None:
            raise ValueError("no codes recorded yet: call update() first")
        t = self.tau if threshold is None else check_real("threshold", threshold, lo=0.0)
        if self.frequency.size == 0:
            return 0.0
        return float(np.mean(self.frequency > t))


def cga_frozen_mask(u, code_range, boundary_range: float = 0.005) -> np.ndarray:
    """Weights CGA freezes, from their pre-rounding codes.

    Interior rounding boundaries lie at ``i + 0.5`` for ``i = q_min .. q_max - 1``. A weight is
    *low-confidence* (keeps training) when
    ``|u - (floor(u) + 0.5)| <= boundary_range`` and ``q_min <= floor(u) <= q_max - 1``;
    every other weight is frozen.

    Parameters
    ----------
    u : array_like
        Pre-rounding codes (``Quantizer.pre_round``: StatsQ ``u``, LSQ ``clip(v/s, -Q_N, Q_P)``).
    code_range : tuple of int
        ``(q_min, q_max)``, e.g. ``Quantizer.code_range``.
    boundary_range : float
        Half-width ``BR`` of the band around each boundary, in code units, ``0 <= BR < 0.5``
        (OFQ uses 0.005).

    Returns
    -------
    numpy.ndarray of bool
        True where the weight is frozen.

    Examples
    --------
    >>> cga_frozen_mask([0.7, -0.9, -0.3, -2.5], (-2, 1), 0.25).tolist()
    [False, True, False, True]
    """
    u = _to_numpy("u", u)
    br = check_real("boundary_range", boundary_range, lo=0.0, hi=0.5, hi_open=True)
    try:
        q_min, q_max = (int(c) for c in code_range)
    except (TypeError, ValueError):
        raise ValueError(f"code_range must be (q_min, q_max), got {code_range!r}") from None
    if q_min >= q_max:
        raise ValueError(f"code_range must have q_min < q_max, got {code_range!r}")
    fl = np.floor(u)
    low_confidence = (np.abs(u - (fl + 0.5)) <= br) & (fl >= q_min) & (fl <= q_max - 1)
    return ~low_confidence


def cga_freeze_mask(weights, quantizer, scale=None, boundary_range: float = 0.005) -> np.ndarray:
    """CGA freeze mask of latent weights under a quantizer of :mod:`devices.quantizers`.

    Parameters
    ----------
    weights : array_like
        Latent (float) weights.
    quantizer : devices.Quantizer
        Any quantizer of the family (``Uniform``, ``LSQ``, ``StatsQ``).
    scale : array_like, optional
        The step (LSQ: the learned step); default ``quantizer.scale(weights)``.
    boundary_range : float
        Band half-width ``BR`` in code units (0.005).

    Returns
    -------
    numpy.ndarray of bool
        True where the weight is frozen, shape of ``weights``.
    """
    w = _to_numpy("weights", weights)
    u = quantizer.pre_round(w, scale)
    return cga_frozen_mask(u, quantizer.code_range, boundary_range)


def cga_restore(weights_after, weights_before, frozen) -> np.ndarray:
    """Put the frozen latent weights back to their values before the optimizer step.

    Parameters
    ----------
    weights_after : array_like
        Weights after the step (momentum and weight decay may have moved frozen entries).
    weights_before : array_like
        Weights before the step.
    frozen : array_like of bool
        The mask of :func:`cga_frozen_mask` computed before the step.

    Returns
    -------
    numpy.ndarray
        ``weights_after`` with frozen entries replaced by ``weights_before`` (bitwise).
    """
    after = np.asarray(weights_after)
    before = np.asarray(weights_before)
    frozen = np.asarray(frozen, dtype=bool)
    if not (after.shape == before.shape == frozen.shape):
        raise ValueError(
            "weights_after, weights_before and frozen must have one shape, got "
            f"{after.shape}, {before.shape}, {frozen.shape}"
        )
    return np.where(frozen, before, after)


def level_grid_distance(x, levels) -> np.ndarray:
    """Distance of ``x`` to the nearest decision midpoint of a level table, in local spacings.

    For ``t_i <= x <= t_{i+1}`` the result is ``|x - (t_i + t_{i+1}) / 2| / (t_{i+1} - t_i)``,
    in ``[0, 0.5]``: 0 on a boundary (least confident), 0.5 on a level. This is the CGA
    confidence of a non-uniform grid (``specs/quantizers.md`` section 5); on a uniform grid it is
    the distance of the pre-rounding code to ``floor(u) + 0.5``. Values outside the table get
    ``inf`` (clipped: no boundary to cross outward).

    Parameters
    ----------
    x : array_like
        Values in the units of the table (already divided by any scale).
    levels : array_like
        Strictly increasing 1-D table (at least 2 entries).

    Returns
    -------
    numpy.ndarray
        Shape of ``x``.

    Examples
    --------
    >>> level_grid_distance([0.0, 0.15, 0.6], [-1.0, 0.0, 0.2, 1.0]).round(6).tolist()
    [0.5, 0.25, 0.0]
    """
    x = _to_numpy("x", x)
    t = _to_numpy("levels", levels)
    if t.ndim != 1 or t.size < 2 or np.any(np.diff(t) <= 0):
        raise ValueError("levels must be a strictly increasing 1-D table with >= 2 entries")
    i = np.clip(np.searchsorted(t, x, side="right") - 1, 0, t.size - 2)
    lo, hi = t[i], t[i + 1]
    d = np.abs(x - 0.5 * (lo + hi)) / (hi - lo)
    return np.where((x < t[0]) | (x > t[-1]), np.inf, d)


def cga_level_frozen_mask(x, levels, boundary_range: float = 0.005) -> np.ndarray:
    """CGA freeze mask for a level table: frozen unless within ``BR`` local spacings of a midpoint.

    Equals :func:`cga_frozen_mask` on the index coordinate of :class:`devices.quantizers.
    LevelGrid` (``LevelGrid.pre_round``), and on a uniform table the mask of the uniform
    quantizer.

    Parameters
    ----------
    x : array_like
        Values in table units.
    levels : array_like
        Strictly increasing 1-D table.
    boundary_range : float
        Band half-width ``BR`` in units of the local spacing, ``0 <= BR < 0.5``.

    Returns
    -------
    numpy.ndarray of bool
        True where frozen.
    """
    br = check_real("boundary_range", boundary_range, lo=0.0, hi=0.5, hi_open=True)
    return ~(level_grid_distance(x, levels) <= br)
