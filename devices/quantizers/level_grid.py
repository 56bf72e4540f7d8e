"""A device is a quantizer with a level table: :class:`LevelGrid` rounds to the nearest
entry of a sorted table, e.g. the weight levels of a device preset (``specs/quantizers.md``
section 5).
"""

from __future__ import annotations

import numpy as np

from ..validation import check_choice, check_int, check_real
from .base import (
    ROUNDING_MODES,
    STAT_MIN_SCALE,
    KernelCalls,
    Quantizer,
    as_input,
    channel_shape,
    check_axis,
    check_backend,
    draw_noise,
    norm_axis,
    reduce_channels,
)

__all__ = ["LevelGrid", "LEVEL_SCALINGS", "DEVICE_MAPPINGS"]


#: How :class:`LevelGrid` scales its table to the data: not at all, to ``max|x|``, or with the
#: StatsQ statistic ``2 mean|x|``.
LEVEL_SCALINGS = ("fixed", "absmax", "mean")
#: Weight mappings of :meth:`LevelGrid.from_device`.
DEVICE_MAPPINGS = ("reference", "differential")


def _check_table(levels, axis) -> np.ndarray:
    try:
        t = np.array(levels, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"levels must be a 1-D or 2-D array of numbers, got {levels!r}") from None
    if t.ndim not in (1, 2):
        raise ValueError(
            f"levels must be 1-D (one table) or 2-D (one table per channel), got shape {t.shape}"
        )
    if t.shape[-1] < 2:
        raise ValueError(f"levels must hold at least 2 entries per table, got shape {t.shape}")
    if not np.all(np.isfinite(t)):
        raise ValueError("levels must be finite (no NaN or inf)")
    if np.any(np.diff(t, axis=-1) <= 0):
        raise ValueError("levels must be strictly increasing along the last axis")
    if t.ndim == 2 and axis is None:
        raise ValueError("per-channel tables (2-D levels) need axis (e.g. axis=0)")
    t.setflags(write=False)
    return t


class LevelGrid(Quantizer):
    """Quantize to the nearest entry of a sorted table of levels (a device's weight levels).

    The code of ``x`` is the index of the nearest table entry (boundaries at the midpoints
    between neighbours). Internally ``x / s`` is mapped to the *index coordinate*
    ``u = i + (v - t_i) / (t_{i+1} - t_i)`` for ``t_i <= v <= t_{i+1}`` (piecewise linear, so
    the midpoint of two entries sits at ``u = i + 0.5``); nearest rounding is
    ``clip(rint(u), 0, L - 1)`` (an exact midpoint goes to the even index) and stochastic
    rounding ``floor(u + xi)``, which picks the upper neighbour with probability
    ``(v - t_i) / (t_{i+1} - t_i)`` (unbiased between the outer entries). CGA reads ``u``:
    the distance of ``u`` to ``floor(u) + 0.5`` is the distance to the nearest midpoint divided
    by the local spacing.

    A uniform quantizer is the LevelGrid of a linear device: ``Uniform(b, r)`` (narrow) has the
    table of a linear device with ``P = 2**b - 2`` pulses against a mid-range reference, and
    StatsQ the table of one with ``P = 2**b - 1`` (:meth:`from_device`).

    Parameters
    ----------
    levels : array_like
        Strictly increasing table, shape ``(L,)``, or one table per channel, ``(C, L)`` (needs
        ``axis``). ``L >= 2``.
    axis : int or None
        Channel axis of per-channel tables and scales, or None (one table, one scale).
    scaling : {"fixed", "absmax", "mean"}
        How the table is scaled to the data (the step ``s``; levels are ``s * table``):
        ``"fixed"``: ``s = 1`` (the table is in the units of ``x``); ``"absmax"``:
        ``s_c = max|x_c| / max|t_c|``; ``"mean"``: ``s_c = 2 mean|x_c| (L - 1) / L / max|t_c|``,
        the StatsQ statistic (the LevelGrid of a linear ``2**b``-level table then equals
        :class:`StatsQ` at ``b`` bits).
    rounding : {"nearest", "stochastic"}
        Nearest entry, or stochastic rounding between the two neighbours.
    backend : {"auto", "numpy", "numba"}
        Kernels (see :class:`Uniform`).

    Attributes
    ----------
    table : numpy.ndarray
        The (read-only) table.
    bits : int
        ``ceil(log2(L))``, the bits needed to address the table (informational; at most 8 is
        not required).

    Examples
    --------
    >>> g = LevelGrid([-1.0, -0.2, 0.1, 1.0])
    >>> g.quantize([-0.7, -0.5, 0.0, 0.6]).tolist()
    [0, 1, 2, 3]
    >>> g.fake([-0.7, -0.5, 0.0, 0.6]).tolist()
    [-1.0, -0.2, 0.1, 1.0]
    """

    def __init__(
        self,
        levels,
        *,
        axis=None,
        scaling: str = "fixed",
        rounding: str = "nearest",
        backend: str = "auto",
    ):
        self.backend = check_backend(backend)
        self.axis = check_axis(axis)
        self.table = _check_table(levels, self.axis)
        self.scaling = check_choice("scaling", scaling, LEVEL_SCALINGS)
        self.rounding = check_choice("rounding", rounding, ROUNDING_MODES)
        self.n_levels = int(self.table.shape[-1])
        self.bits = max(1, int(np.ceil(np.log2(self.n_levels))))

    def __repr__(self) -> str:
        return (
            f"LevelGrid(<{self.n_levels} levels"
            f"{'' if self.table.ndim == 1 else f' x {self.table.shape[0]} channels'}>, "
            f"axis={self.axis}, scaling={self.scaling!r}, rounding={self.rounding!r})"
        )

    @property
    def per_channel_table(self) -> bool:
        """True when every channel has its own table."""
        return self.table.ndim == 2

    @property
    def code_range(self) -> tuple[int, int]:
        """Smallest and largest code: table indices ``(0, L - 1)``."""
        return 0, self.n_levels - 1

    # -- construction from a device --------------------------------------------------------
    @classmethod
    def from_device(
        cls,
        device,
        mapping: str = "reference",
        w_range: float = 1.0,
        *,
        n_states: int | None = None,
        axis=None,
        scaling: str = "fixed",
        rounding: str = "nearest",
        backend: str = "auto",
    ) -> LevelGrid:
        """The weight levels of a device, from its LTP response ``G(p)``, ``p = 0..P``.

        Parameters
        ----------
        device : str or devices.DeviceModel
            A preset name (:func:`devices.names`) or a device model (its nominal response;
            device-to-device variability is not sampled).
        mapping : {"reference", "differential"}
            ``"reference"``: one device against the mid-range reference,
            ``w = 2 w_range (G - G_ref) / (Gmax - Gmin)``: ``P + 1`` levels in
            ``[-w_range, w_range]``. ``"differential"``: a pair with unidirectional updates
            (one device at Gmin, the other along its LTP branch),
            ``w = +-w_range (G(p) - Gmin) / (Gmax - Gmin)``: ``2P + 1`` levels, 0 included.
        w_range : float
            Weight range ``W > 0`` (the ``w_max`` of :class:`devices.DeviceArray`).
        n_states : int, optional
            Use ``n_states`` equally spaced pulse coordinates ``p_k = k P / (n_states - 1)``
            instead of every whole pulse (a coarser programming step with the same response
            shape; fractional coordinates follow the model's continuous response). ``None``:
            ``P + 1`` states.
        axis, scaling, rounding, backend
            As :class:`LevelGrid`.

        Returns
        -------
        LevelGrid

        Examples
        --------
        >>> from devices.models import LinearDevice
        >>> dev = LinearDevice(gmin=0.0, gmax=1.0, levels_ltp=3, levels_ltd=3)
        >>> np.round(LevelGrid.from_device(dev, w_range=0.75).table, 12).tolist()
        [-0.75, -0.25, 0.25, 0.75]
        """
        from ..models import DeviceModel
        from ..presets import get

        if isinstance(device, str):
            model = get(device)
        elif isinstance(device, DeviceModel):
            model = device
        else:
            raise TypeError(
                f"device must be a preset name or a devices.DeviceModel, got {device!r}"
            )
        mapping = check_choice("mapping", mapping, DEVICE_MAPPINGS)
        w = check_real("w_range", w_range, lo=0.0, lo_open=True)
        P = int(model.levels("ltp"))
        if n_states is None:
            p = np.arange(P + 1, dtype=np.float64)
        else:
            n = check_int("n_states", n_states, lo=2)
            p = np.arange(n, dtype=np.float64) * (P / (n - 1))
            p[-1] = P
        G = np.asarray(model.conductance(p, "ltp"), dtype=np.float64)
        if mapping == "reference":
            g_ref = 0.5 * (model.gmin + model.gmax)
            table = 2.0 * w * (G - g_ref) / model.dG
        else:
            g = w * (G - model.gmin) / model.dG
            g[0] = 0.0
            table = np.concatenate([-g[:0:-1], g])
        if np.any(np.diff(table) <= 0):
            raise ValueError(
                f"device {getattr(model, 'name', '') or type(model).__name__!r} gives levels "
                "that are not strictly increasing (response saturates); use fewer n_states"
            )
        return cls(table, axis=axis, scaling=scaling, rounding=rounding, backend=backend)

    # -- geometry ---------------------------------------------------------------------------
    def _table_for(self, shape, axis) -> np.ndarray:
        """The table as ``(C, L)`` for per-channel use along ``axis`` (or ``(L,)``)."""
        if not self.per_channel_table:
            return self.table
        c = shape[axis] if axis is not None and len(shape) else None
        if c != self.table.shape[0]:
            raise ValueError(
                f"per-channel levels have {self.table.shape[0]} tables, but the input has "
                f"{c} channels along axis {self.axis} (shape {tuple(shape)})"
            )
        return self.table

    def _tmax(self) -> np.ndarray:
        return np.abs(self.table).max(axis=-1)

    def scale(self, x=None) -> np.ndarray:
        """Step ``s`` per tensor or per channel (see ``scaling``), in the broadcast shape of ``x``.

        Parameters
        ----------
        x : array_like, optional
            Data (required unless ``scaling="fixed"``).
        """
        if self.scaling == "fixed":
            if x is None:
                return np.asarray(1.0)
            x = np.asarray(x)
            axis = norm_axis(self.axis, x.ndim)
            return np.ones(channel_shape(x.shape, axis))
        if x is None:
            raise ValueError(f"x is required to compute the scale with scaling={self.scaling!r}")
        x = as_input("x", x)
        axis = norm_axis(self.axis, x.ndim)
        tmax = self._tmax()
        if self.per_channel_table:
            self._table_for(x.shape, axis)
            tmax = tmax.reshape(channel_shape(x.shape, axis))
        if self.scaling == "absmax":
            r = reduce_channels(np.abs(x), axis, np.max)
        else:
            L = self.n_levels
            r = 2.0 * reduce_channels(np.abs(x), axis, np.mean) * (L - 1) / L
        return np.maximum(r, STAT_MIN_SCALE) / tmax

    def _default_scale(self):
        return np.asarray(1.0) if self.scaling == "fixed" else None

    def _per_row(self, a: np.ndarray, axis, fn) -> np.ndarray:
        """Apply ``fn(rows, table)`` with channels first (per-channel tables), else directly."""
        if not self.per_channel_table:
            return fn(a, self.table)
        t = self._table_for(a.shape, axis)
        moved = np.moveaxis(a, axis, 0)
        out = np.empty(moved.shape, dtype=np.float64)
        for c in range(t.shape[0]):
            out[c] = fn(moved[c], t[c])
        return np.moveaxis(out, 0, axis)

    @staticmethod
    def _index_coordinate(v: np.ndarray, t: np.ndarray) -> np.ndarray:
        i = np.clip(np.searchsorted(t, v, side="right") - 1, 0, t.size - 2)
        lo = t[i]
        return i + (v - lo) / (t[i + 1] - lo)

    def _u_raw(self, x, s):
        axis = norm_axis(self.axis, x.ndim)
        v = x / s
        u = self._per_row(v, axis, self._index_coordinate)
        return np.clip(u, 0.0, self.n_levels - 1.0)

    def _round(self, u, rng, noise):
        hi = self.n_levels - 1
        if self.rounding == "stochastic":
            xi = draw_noise(u.shape, rng, noise)
            return np.clip(np.floor(u + xi), 0, hi)
        return np.clip(np.rint(u), 0, hi)

    def _kernel_calls(self, k, shape, axis, s_flat, B, C):
        tables = self._table_for(shape, axis)
        tables = np.ascontiguousarray(tables.reshape(-1, self.n_levels))
        stochastic = self.rounding == "stochastic"
        return KernelCalls(
            stochastic=stochastic,
            values=lambda q, out: k.table_values(q, s_flat, tables, B, C, out),
            codes=lambda xf, xi, out: k.table_codes(xf, s_flat, tables, B, C, stochastic, xi, out),
            fake=lambda xf, xi, out: k.table_fake(xf, s_flat, tables, B, C, stochastic, xi, out),
        )

    def _value(self, q, s):
        axis = norm_axis(self.axis, q.ndim)
        idx = q.astype(np.int64)
        return s * self._per_row(idx, axis, lambda k, t: t[k])

    def dequantize(self, q, scale=None) -> np.ndarray:
        """Values ``s * table[q]`` of table indices ``q``.

        Parameters
        ----------
        q : array_like of int
            Indices in ``[0, L - 1]``.
        scale : array_like, optional
            The step used to quantize (default 1 with ``scaling="fixed"``; required otherwise).
        """
        if scale is None:
            if self.scaling != "fixed":
                raise ValueError(f"scale is required to dequantize with scaling={self.scaling!r}")
            scale = 1.0
        return super().dequantize(q, scale)

    def levels(self, scale=None) -> np.ndarray:
        """Representable values: ``s * table``, shape ``(L,)`` or ``(C, L)``.

        Parameters
        ----------
        scale : array_like, optional
            Scalar step or one per channel (default 1 with ``scaling="fixed"``).
        """
        s = self._levels_scale(scale, f"with scaling={self.scaling!r}")
        if s.ndim == 0 or s.size == 1:
            return float(s.reshape(())) * self.table
        return s.reshape(-1, 1) * self.table

    def midpoints(self) -> np.ndarray:
        """Decision boundaries of the unscaled table, shape ``(L - 1,)`` or ``(C, L - 1)``."""
        return 0.5 * (self.table[..., 1:] + self.table[..., :-1])

    def grad_input(self, x, scale=None, *, ste: str = "clipped") -> np.ndarray:
        """Straight-through derivative ``d fake / d x``.

        Parameters
        ----------
        x : array_like
            Input.
        scale : array_like, optional
            Step; default ``self.scale(x)``.
        ste : {"clipped", "identity"}
            ``"clipped"``: 1 between the outer entries, 0 outside; ``"identity"``: 1 everywhere.
        """

        def inside(x, s):
            axis = norm_axis(self.axis, x.ndim)
            return self._per_row(x / s, axis, lambda r, t: (r >= t[0]) & (r <= t[-1]))

        return self._ste_grad(x, scale, ste, inside)
