"""Outputs of the QAT study: run labels, the result record, the accuracy table and the
oscillation figure."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["QATResult", "qat_label", "qat_table", "plot_oscillation", "save_qat_outputs"]


def qat_label(bits: int | None, quantizer: str | None, cga: bool, act_bits=None) -> str:
    """Run label: ``w2-statsq``, ``w2-statsq-cga``, ``w2a2-lsq``, or ``float`` for the baseline.

    Colons of device-level names become dashes (``w3-levels-epiram``).

    Parameters
    ----------
    bits : int or None
        Weight bit width (None for the float baseline).
    quantizer : str or None
        Quantizer name (None for the float baseline).
    cga : bool
        Whether the run anneals with CGA.
    act_bits : int, optional
        Activation bit width (None: float activations).

    Returns
    -------
    str
    """
    if quantizer is None:
        return "float"
    a = "" if act_bits is None else f"a{act_bits}"
    return f"w{bits}{a}-{quantizer.replace(':', '-')}" + ("-cga" if cga else "")


@dataclass
class QATResult:
    """What :func:`run_qat` returns.

    Attributes
    ----------
    records : list of dict
        One per run: ``label``, ``bits``, ``quantizer``, ``cga``, ``final_test_accuracy``,
        ``final_train_accuracy``, ``oscillating_fraction`` (NaN for the float baseline),
        ``anneal_events`` / ``anneal_flips`` (oscillation events / flips summed over the last
        ``cga_epochs`` epochs), ``total_events``, ``total_flips``, ``n_weights``.
    history : dict
        ``label -> {metric: list per epoch}``.
    steps : dict
        ``label -> {"oscillating_fraction", "events", "flips", "frozen_fraction", "lr"}``,
        numpy arrays with one entry per optimizer step.
    settings : dict
        The resolved settings (``cga_epochs``, learning rates, sizes, ...).
    path : Path or None
        ``results.h5`` when ``out`` was given.
    files : list of Path
        Everything written.
    table : str
        The markdown accuracy table of ``results.md``.
    """

    records: list = field(default_factory=list)
    history: dict = field(default_factory=dict)
    steps: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    path: Path | None = None
    files: list = field(default_factory=list)
    table: str = ""


# ----------------------------------------------------------------------------- outputs


def qat_table(records) -> str:
    """Markdown accuracy table of :func:`run_qat` records.

    Parameters
    ----------
    records : list of dict
        ``QATResult.records``.

    Returns
    -------
    str
    """
    header = (
        "| label | bits | quantizer | CGA | test acc (%) | oscillating fraction "
        "| osc. events (final phase) | flips (total) |"
    )
    lines = [header, "|---|---:|---|---|---:|---:|---:|---:|"]
    for r in records:
        osc = r["oscillating_fraction"]
        osc_text = "-" if osc is None or not math.isfinite(osc) else f"{osc:.4f}"
        quantized = r["quantizer"] != "float"
        lines.append(
            f"| {r['label']} | {r['bits'] if quantized else 'fp32'} | {r['quantizer']} | "
            f"{'yes' if r['cga'] else 'no'} | {100 * r['final_test_accuracy']:.2f} | "
            f"{osc_text} | {r['anneal_events'] if quantized else '-'} | "
            f"{r['total_flips'] if quantized else '-'} |"
        )
    return "\n".join(lines) + "\n"


def plot_oscillation(steps: dict, ax=None, *, anneal_start: int | None = None, title=None):
    """Oscillating fraction per optimizer step of several runs.

    Parameters
    ----------
    steps : dict
        ``label -> {"oscillating_fraction": array per step}`` (``QATResult.steps``); runs
        without codes (the float baseline) are skipped. Labels ending in ``-cga`` are dashed.
    ax : matplotlib.axes.Axes, optional
    anneal_start : int, optional
        Step at which the constant-rate (CGA) phase starts; drawn as a vertical line.
    title : str, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6, 4))
    colors: dict = {}
    for label, s in steps.items():
        y = np.asarray(s.get("oscillating_fraction", ()), dtype=float)
        if y.size == 0:
            continue
        base = label.removesuffix("-cga")
        colors.setdefault(base, f"C{len(colors) % 10}")
        ls = "--" if label.endswith("-cga") else "-"
        ax.plot(np.arange(1, y.size + 1), y, color=colors[base], ls=ls, lw=1.2, label=label)
    if anneal_start is not None:
        ax.axvline(anneal_start, color="0.5", lw=0.8, ls=":", label="CGA phase")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("oscillating fraction")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, frameon=False)
    if title:
        ax.set_title(title)
    return ax


def save_qat_outputs(result, out: Path) -> list[Path]:
    """Write ``oscillation.png`` and ``results.md`` of a :class:`~synapse_sim.studies.qat.QATResult`
    into ``out``; return their paths."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    s = result.settings
    anneal_start = (s["epochs"] - s["cga_epochs"]) * s["steps_per_epoch"]
    run_bits = {r["label"]: r["bits"] for r in result.records if r["quantizer"] != "float"}
    bits = sorted(set(run_bits.values())) or list(s["bits"])
    fig = Figure(figsize=(5.5 * len(bits), 4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(bits), squeeze=False)[0]
    for ax, b in zip(axes, bits, strict=True):
        runs = {k: v for k, v in result.steps.items() if run_bits.get(k) == b}
        plot_oscillation(
            runs,
            ax=ax,
            anneal_start=anneal_start if s["cga_epochs"] else None,
            title=f"W{b}, {s['dataset']}",
        )
    png = out / "oscillation.png"
    fig.savefig(png, dpi=100)
    md = out / "results.md"
    md.write_text(
        f"# Low-bit QAT on {s['dataset']}\n\n"
        f"MLP {'-'.join(map(str, s['sizes']))}, Adam, {s['epochs']} epochs (cosine "
        f"{s['lr']:g} -> {s['lr_min']:g}, then {s['cga_epochs']} epochs at {s['lr_min']:g} "
        f"in which CGA runs anneal with BR {s['boundary_range']:g}), seed {s['seed']}. "
        f"Oscillating fraction: share of weights with EMA oscillation frequency > {s['tau']:g} "
        "at the end.\n\n"
        f"{result.table}\n![oscillation](oscillation.png)\n"
    )
    return [png, md]
