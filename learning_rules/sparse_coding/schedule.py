"""Deterministic annealing schedules (``specs/sparse_coding.md`` section 5)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["Schedule", "SCHEDULE_DEFAULTS", "bsc_schedule", "tsc_schedule"]

#: Schedule keys and their values when a key is not given.
SCHEDULE_DEFAULTS: dict[str, float] = {
    "T": 1.0,
    "Ncut_factor": 0.0,
    "anneal_prior": 0.0,
    "W_noise": 0.0,
    "pi_noise": 0.0,
    "sigma_noise": 0.0,
    "data_noise": 0.0,
    "partial": 1.0,
}


class Schedule:
    """Piecewise-linear curves over ``steps`` EM iterations.

    Parameters
    ----------
    steps : int
        Number of EM iterations (``t = 0 .. steps - 1``).
    **curves
        One curve per key of :data:`SCHEDULE_DEFAULTS`, given as a constant or as a sequence of
        ``(position, value)`` points. An int position is an iteration, a float one a fraction
        of ``steps`` (floored), a negative position counts from the end. Before the first point
        the first value holds, after the last point the last value holds; in between values are
        interpolated linearly. ``anneal_prior`` is read as a bool (value > 0.5).

    Examples
    --------
    >>> s = Schedule(150, T=[(0, 5.0), (0.8, 1.0)])
    >>> float(s.value("T", 60)), float(s.value("T", 130))
    (3.0, 1.0)
    """

    def __init__(self, steps: int, **curves):
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
            raise ValueError(f"steps must be an int >= 1, got {steps!r}")
        self.steps = int(steps)
        self._points: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for key, curve in curves.items():
            if key not in SCHEDULE_DEFAULTS:
                raise ValueError(
                    f"unknown schedule key {key!r}; valid keys: {sorted(SCHEDULE_DEFAULTS)}"
                )
            self._points[key] = self._parse(key, curve)
        self.curves = dict(curves)

    def _position(self, key: str, p) -> int:
        if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)):
            raise ValueError(f"schedule {key!r}: position must be an int or float, got {p!r}")
        if isinstance(p, (float, np.floating)):
            pos = math.floor(abs(float(p)) * self.steps + 1e-9)
            pos = -pos if p < 0 else pos
        else:
            pos = int(p)
        return pos + self.steps if pos < 0 else pos

    def _parse(self, key: str, curve):
        if isinstance(curve, (bool, int, float, np.integer, np.floating)):
            pts = [(0, float(curve))]
        elif isinstance(curve, Sequence) and len(curve) > 0:
            pts = []
            for item in curve:
                try:
                    p, v = item
                except (TypeError, ValueError):
                    raise ValueError(
                        f"schedule {key!r}: points must be (position, value) pairs, got {item!r}"
                    ) from None
                pts.append((self._position(key, p), float(v)))
        else:
            raise ValueError(
                f"schedule {key!r} must be a number or a list of (position, value), got {curve!r}"
            )
        pos = np.array([p for p, _ in pts], dtype=np.float64)
        val = np.array([v for _, v in pts], dtype=np.float64)
        if np.any(np.diff(pos) < 0):
            raise ValueError(f"schedule {key!r}: positions must be non-decreasing, got {curve!r}")
        if not np.all(np.isfinite(val)):
            raise ValueError(f"schedule {key!r}: values must be finite, got {curve!r}")
        if key == "T" and np.any(val <= 0):
            raise ValueError(f"schedule 'T': temperatures must be > 0, got {curve!r}")
        return pos, val

    def value(self, key: str, t: int) -> float:
        """Value of curve ``key`` at iteration ``t`` (iterations past the end hold the last)."""
        if key not in SCHEDULE_DEFAULTS:
            raise ValueError(
                f"unknown schedule key {key!r}; valid keys: {sorted(SCHEDULE_DEFAULTS)}"
            )
        if key not in self._points:
            return SCHEDULE_DEFAULTS[key]
        pos, val = self._points[key]
        return float(np.interp(t, pos, val))

    def values(self, t: int) -> dict[str, float]:
        """All keys at iteration ``t``."""
        return {k: self.value(k, t) for k in SCHEDULE_DEFAULTS}

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.curves.items())
        return f"Schedule({self.steps}{', ' if inner else ''}{inner})"


def bsc_schedule(steps: int = 150, anneal: bool = True) -> Schedule:
    """The published BSC bars schedule (T 5 -> 1 at 0.8, Ncut_factor 0 -> 1 at 2/3).

    Parameters
    ----------
    steps : int
        EM iterations.
    anneal : bool
        False gives T = 1 and no data truncation throughout.

    Returns
    -------
    Schedule
    """
    if not anneal:
        return Schedule(steps)
    return Schedule(steps, T=[(0, 5.0), (0.8, 1.0)], Ncut_factor=[(0, 0.0), (2 / 3, 1.0)])


def tsc_schedule(steps: int = 300, anneal: bool = True) -> Schedule:
    """The published TSC bars schedule (T 2 -> 1 at 0.7, Ncut_factor 0 -> 1 at 2/3).

    Parameters
    ----------
    steps : int
        EM iterations.
    anneal : bool
        False gives T = 1 and no data truncation throughout.

    Returns
    -------
    Schedule
    """
    if not anneal:
        return Schedule(steps)
    return Schedule(steps, T=[(0, 2.0), (0.7, 1.0)], Ncut_factor=[(0, 0.0), (2 / 3, 1.0)])


def as_schedule(schedule, n_iter, anneal, default=bsc_schedule, default_steps=150) -> Schedule:
    """Resolve the estimator's ``schedule`` / ``n_iter`` / ``anneal`` into a :class:`Schedule`."""
    if n_iter is not None and (
        isinstance(n_iter, bool) or not isinstance(n_iter, (int, np.integer)) or n_iter < 1
    ):
        raise ValueError(f"n_iter must be an int >= 1 or None, got {n_iter!r}")
    if schedule is None:
        return default(default_steps if n_iter is None else int(n_iter), anneal=bool(anneal))
    if isinstance(schedule, Schedule):
        if n_iter is not None and int(n_iter) != schedule.steps:
            raise ValueError(
                f"n_iter={n_iter!r} disagrees with schedule.steps={schedule.steps}; give one"
            )
        return schedule
    if isinstance(schedule, Mapping):
        return Schedule(default_steps if n_iter is None else int(n_iter), **schedule)
    raise ValueError(
        f"schedule must be a Schedule, a dict of curves or None, got {type(schedule).__name__}"
    )
