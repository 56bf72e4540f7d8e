"""Plots of training results (matplotlib imported lazily; every function takes ``ax=None``)."""

from __future__ import annotations

import numpy as np

__all__ = [
    "plot_accuracy",
    "plot_weight_histograms",
    "plot_conductance_occupancy",
    "save_run_plots",
]


def _axes(ax, figsize=(6, 4)):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=figsize)
    return ax


def plot_accuracy(history: dict, ax=None, *, metric: str = "test_accuracy"):
    """Accuracy per epoch of every configuration in one figure.

    Parameters
    ----------
    history : dict
        ``label -> {metric: sequence per epoch}`` (``TrainResult.history``, or the ``metrics``
        of :func:`synapse_sim.results.store.read_results` runs).
    ax : matplotlib.axes.Axes, optional
    metric : str
        Which series to plot.

    Returns
    -------
    matplotlib.axes.Axes
    """
    from matplotlib.ticker import MaxNLocator

    ax = _axes(ax)
    colors: dict = {}
    styles = {"bidirectional": "-", "unidirectional": "--", "adaptive": ":", "stochastic": "-."}
    for label, h in history.items():
        y = np.asarray(h[metric], dtype=float) * 100
        x = np.arange(1, y.size + 1)
        dev, _, rule = label.partition("-")
        if label == "software":
            style = {"color": "k", "lw": 2.2, "ls": "-"}
        else:
            colors.setdefault(dev, f"C{len(colors) % 10}")
            style = {"color": colors[dev], "ls": styles.get(rule, "-")}
        ax.plot(x, y, marker="o", ms=3, label=label, **style)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric.replace("_", " ") + " [%]")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, frameon=False, ncol=2)
    return ax


def plot_weight_histograms(
    weights: dict,
    ax=None,
    *,
    layer: int = 0,
    bins: int = 60,
    reference: str = "software",
    labels=None,
):
    """Histograms of final weights of one layer, device configurations vs the software twin.

    Parameters
    ----------
    weights : dict
        ``label -> list of weight matrices``.
    ax : matplotlib.axes.Axes, optional
    layer : int
    bins : int
    reference : str
        Label drawn as a black outline behind the others.
    labels : list of str, optional
        Which configurations to draw (default: all).

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = _axes(ax)
    labels = [k for k in weights if k != reference] if labels is None else list(labels)
    shown = [weights[k][layer] for k in labels] + (
        [weights[reference][layer]] if reference in weights else []
    )
    lo = min(float(np.min(w)) for w in shown)
    hi = max(float(np.max(w)) for w in shown)
    edges = np.linspace(lo, hi, bins + 1)
    if reference in weights:
        ax.hist(
            weights[reference][layer].ravel(),
            bins=edges,
            histtype="step",
            color="k",
            lw=1.5,
            label=reference,
        )
    for i, label in enumerate(labels):
        ax.hist(
            weights[label][layer].ravel(),
            bins=edges,
            histtype="stepfilled",
            alpha=0.45,
            color=f"C{i % 10}",
            label=label,
        )
    ax.set_xlabel(f"weight (layer {layer})")
    ax.set_ylabel("synapses")
    ax.set_yscale("log")
    ax.legend(fontsize=7, frameon=False)
    return ax


def plot_conductance_occupancy(arrays: dict, ax=None, *, layer: int = 0, bins: int = 50):
    """Occupancy of the normalized conductance range by the devices of one layer.

    Parameters
    ----------
    arrays : dict
        ``label -> list of weight arrays``; labels whose arrays are not device arrays are
        skipped.
    ax : matplotlib.axes.Axes, optional
    layer : int
    bins : int

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = _axes(ax)
    edges = np.linspace(0, 1, bins + 1)
    for i, (label, layers) in enumerate(arrays.items()):
        arr = layers[layer]
        if not hasattr(arr, "conductances"):
            continue
        g = (arr.conductances - arr.device.gmin) / arr.device.dG
        h, _ = np.histogram(g.ravel(), bins=edges)
        ax.step(edges[:-1], h / h.sum(), where="post", color=f"C{i % 10}", label=label)
    ax.set_xlabel(f"normalized conductance (layer {layer})")
    ax.set_ylabel("fraction of devices")
    ax.set_yscale("log")
    ax.legend(fontsize=7, frameon=False)
    return ax


def save_run_plots(result, out) -> list:
    """Write ``accuracy.png``, ``weights.png`` and ``conductance.png`` for a training result.

    Parameters
    ----------
    result : TrainResult
    out : path-like
        Directory.

    Returns
    -------
    list of pathlib.Path
    """
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    fig, axs = plt.subplots(1, 2, figsize=(11, 4))
    plot_accuracy(result.history, axs[0], metric="test_accuracy")
    plot_accuracy(result.history, axs[1], metric="train_accuracy")
    fig.tight_layout()
    paths.append(out / "accuracy.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    n_layers = len(next(iter(result.weights.values())))
    configs = [k for k in result.weights if k != "software"] or ["software"]
    fig, axs = plt.subplots(
        n_layers, len(configs), figsize=(3.4 * len(configs), 2.8 * n_layers), squeeze=False
    )
    for li in range(n_layers):
        for ci, label in enumerate(configs):
            plot_weight_histograms(result.weights, axs[li, ci], layer=li, labels=[label])
            axs[li, ci].set_title(label if li == 0 else "", fontsize=9)
    fig.tight_layout()
    paths.append(out / "weights.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    if any(hasattr(layers[0], "conductances") for layers in result.arrays.values()):
        fig, axs = plt.subplots(1, n_layers, figsize=(5 * n_layers, 3.8), squeeze=False)
        for li in range(n_layers):
            plot_conductance_occupancy(result.arrays, axs[0, li], layer=li)
        fig.tight_layout()
        paths.append(out / "conductance.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    return paths
