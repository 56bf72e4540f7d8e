"""Plots of device-variability sweeps (matplotlib imported lazily; functions take ``ax=None``).

:func:`plot_sweep` draws a metric against one swept parameter with the spread over device
instances (mean ± std band, every instance as a dot); :func:`plot_sweep_heatmap` draws the mean
over instances against two parameters. Both read ``sweep.h5`` (or its folder), what
:func:`synapse_sim.sweep.read_sweep` returns, or a list of
:func:`synapse_sim.sweep.sweep_records`.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .aggregate import sweep_records
from .spec import is_number

__all__ = ["plot_sweep", "plot_sweep_heatmap", "save_sweep_plots"]

_PERCENT = ("final_test_accuracy", "final_train_accuracy")


def _records(source):
    return source if isinstance(source, list) else sweep_records(source)


def _axes(ax, figsize=(6, 4)):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=figsize)
    return ax


def _swept(records) -> dict:
    """Axis name -> sorted-by-first-appearance values, over the device runs."""
    axes: dict = {}
    for r in records:
        if r["point"] is None:
            continue
        for k, v in r["params"].items():
            vals = axes.setdefault(k, [])
            if v not in vals:
                vals.append(v)
    return axes


def _select(records, where):
    where = dict(where or {})
    axes = _swept(records)
    for k, v in where.items():
        if k not in axes:
            raise ValueError(f"where: {k!r} is not a swept parameter; swept: {', '.join(axes)}")
        if v not in axes[k]:
            raise ValueError(f"where: {k}={v!r} is not a value of the sweep; values: {axes[k]}")
    return [
        r
        for r in records
        if r["point"] is not None and all(r["params"].get(k) == v for k, v in where.items())
    ]


def _label(name: str) -> str:
    return name.replace("_", " ")


def _metric_label(metric: str) -> str:
    return _label(metric) + (" [%]" if metric in _PERCENT else "")


def plot_sweep(
    source,
    x: str,
    *,
    metric: str = "final_test_accuracy",
    hue: str | None = None,
    where: dict | None = None,
    software: bool = True,
    ax=None,
):
    """A metric against one swept parameter, with the spread over device instances.

    Parameters
    ----------
    source : path, dict or list of records
    x : str
        Axis name (as in the spec, e.g. ``"sigma_nl"`` or ``"levels_ltp+levels_ltd"``).
    metric : str
        A record key (``final_test_accuracy``, ``pulses``, ``refreshes``, ...).
    hue : str, optional
        Another axis: one line per value. Default: one line per combination of the other
        swept parameters (after ``where``).
    where : dict, optional
        Keep only points with these parameter values.
    software : bool
        Draw the software twin as a dashed line (accuracy metrics).
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
        Lines: mean over instances; band: mean ± std; dots: individual instances.
    """
    records = _records(source)
    axes = _swept(records)
    if x not in axes:
        raise ValueError(f"x: {x!r} is not a swept parameter; swept: {', '.join(axes) or 'none'}")
    if hue is not None and hue not in axes:
        raise ValueError(f"hue: {hue!r} is not a swept parameter; swept: {', '.join(axes)}")
    sel = [r for r in _select(records, where) if r["complete"] and r.get(metric) is not None]
    scale = 100.0 if metric in _PERCENT else 1.0
    numeric = all(is_number(v) for v in axes[x])
    xpos = {v: (float(v) if numeric else i) for i, v in enumerate(axes[x])}
    others = [hue] if hue is not None else [k for k in axes if k != x and k not in (where or {})]
    groups: dict = {}
    for r in sel:
        gkey = tuple((k, r["params"].get(k)) for k in others)
        groups.setdefault(gkey, {}).setdefault(r["params"][x], []).append(r[metric] * scale)
    ax = _axes(ax)
    for i, (gkey, by_x) in enumerate(groups.items()):
        color = f"C{i % 10}"
        xs = [v for v in axes[x] if v in by_x]
        px = np.array([xpos[v] for v in xs])
        mean = np.array([np.mean(by_x[v]) for v in xs])
        std = np.array([np.std(by_x[v], ddof=1) if len(by_x[v]) > 1 else 0.0 for v in xs])
        label = ", ".join(f"{k}={v:g}" if is_number(v) else f"{k}={v}" for k, v in gkey) or None
        ax.plot(px, mean, "-o", color=color, ms=4, label=label)
        ax.fill_between(px, mean - std, mean + std, color=color, alpha=0.2, lw=0)
        for v in xs:
            vals = by_x[v]
            ax.plot([xpos[v]] * len(vals), vals, ".", color=color, alpha=0.6, ms=5)
    if software and metric in _PERCENT:
        sw = [
            r for r in records if r["point"] is None and r["complete"] and r.get(metric) is not None
        ]
        if sw:
            ax.axhline(sw[0][metric] * scale, color="k", ls="--", lw=1, label="software")
    if not numeric:
        ax.set_xticks(list(xpos.values()), [str(v) for v in axes[x]])
    ax.set_xlabel(_label(x))
    ax.set_ylabel(_metric_label(metric))
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, frameon=False)
    return ax


def plot_sweep_heatmap(
    source,
    x: str,
    y: str,
    *,
    metric: str = "final_test_accuracy",
    where: dict | None = None,
    annotate: bool = True,
    ax=None,
):
    """Mean over device instances of a metric against two swept parameters.

    Parameters
    ----------
    source : path, dict or list of records
    x, y : str
        Axis names.
    metric : str
    where : dict, optional
        Fix the other swept parameters (required when they have several values).
    annotate : bool
        Write the value in every cell.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    records = _records(source)
    axes = _swept(records)
    for name, key in (("x", x), ("y", y)):
        if key not in axes:
            raise ValueError(
                f"{name}: {key!r} is not a swept parameter; swept: {', '.join(axes) or 'none'}"
            )
    if x == y:
        raise ValueError("x and y must be different parameters")
    free = [k for k in axes if k not in (x, y) and k not in (where or {}) and len(axes[k]) > 1]
    if free:
        raise ValueError(
            f"where: fix the other swept parameters ({', '.join(free)}), e.g. "
            f"where={{{free[0]!r}: {axes[free[0]][0]!r}}}"
        )
    sel = [r for r in _select(records, where) if r["complete"] and r.get(metric) is not None]
    scale = 100.0 if metric in _PERCENT else 1.0
    grid = np.full((len(axes[y]), len(axes[x])), np.nan)
    cells: dict = {}
    for r in sel:
        cells.setdefault((r["params"][y], r["params"][x]), []).append(r[metric] * scale)
    for (vy, vx), vals in cells.items():
        grid[axes[y].index(vy), axes[x].index(vx)] = np.mean(vals)
    ax = _axes(ax)
    im = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis")
    ax.figure.colorbar(im, ax=ax, label="mean " + _metric_label(metric))
    fmt = [f"{v:g}" if is_number(v) else str(v) for v in axes[x]]
    ax.set_xticks(range(len(axes[x])), fmt)
    ax.set_yticks(range(len(axes[y])), [f"{v:g}" if is_number(v) else str(v) for v in axes[y]])
    ax.set_xlabel(_label(x))
    ax.set_ylabel(_label(y))
    if annotate:
        finite = grid[np.isfinite(grid)]
        mid = (finite.max() + finite.min()) / 2 if finite.size else 0.0
        for (iy, ix), v in np.ndenumerate(grid):
            if np.isfinite(v):
                ax.text(
                    ix, iy, f"{v:.3g}", ha="center", va="center", fontsize=8,
                    color="k" if v > mid else "w",
                )  # fmt: skip
    return ax


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def save_sweep_plots(source, out) -> list[Path]:
    """Write ``sweep_<axis>.png`` for every swept parameter with several values, and
    ``sweep_heatmap.png`` for the first two (other parameters at their first value).

    Parameters
    ----------
    source : path, dict or list of records
    out : str or Path
        Folder for the PNGs.

    Returns
    -------
    list of Path
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    records = _records(source)
    out = Path(out)
    axes = {k: v for k, v in _swept(records).items() if len(v) > 1}
    paths = []
    for x in axes:
        fig = Figure(figsize=(6, 4), layout="constrained")
        FigureCanvasAgg(fig)
        others = [k for k in axes if k != x]
        where = {k: axes[k][0] for k in others[1:]}  # at most one line per value of one axis
        plot_sweep(records, x, hue=others[0] if others else None, where=where, ax=fig.add_subplot())
        path = out / f"sweep_{_slug(x)}.png"
        fig.savefig(path, dpi=100)
        paths.append(path)
    if len(axes) >= 2:
        x, y, *rest = list(axes)
        fig = Figure(figsize=(6, 4.5), layout="constrained")
        FigureCanvasAgg(fig)
        where = {k: axes[k][0] for k in rest}
        ax = plot_sweep_heatmap(records, x, y, where=where, ax=fig.add_subplot())
        if where:
            ax.set_title(", ".join(f"{k}={v}" for k, v in where.items()), fontsize=9)
        path = out / "sweep_heatmap.png"
        fig.savefig(path, dpi=100)
        paths.append(path)
    return paths
