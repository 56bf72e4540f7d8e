"""The accuracy matrix of continual learning: its metrics and its heatmap."""

from __future__ import annotations

import numpy as np

__all__ = ["continual_metrics", "plot_accuracy_matrix"]


def continual_metrics(R) -> dict:
    """Metrics of an accumulated accuracy matrix ``R`` (T x T, row i = after task i).

    Returns
    -------
    dict
        ``average_accuracy`` (mean of the last row), ``backward_transfer``
        (mean_{j<T-1} R[T-1, j] - R[j, j]), ``forgetting``
        (mean_{j<T-1} max_{l in j..T-2} R[l, j] - R[T-1, j]), ``final_task_accuracy`` and
        ``mean_diagonal``. BWT and forgetting are 0 for a single task.
    """
    R = np.asarray(R, dtype=np.float64)
    if R.ndim != 2 or R.shape[0] != R.shape[1] or R.shape[0] < 1:
        raise ValueError(f"R must be a square T x T matrix with T >= 1, got shape {R.shape}")
    T = R.shape[0]
    last = R[T - 1]
    if T > 1:
        bwt = float(np.mean([last[j] - R[j, j] for j in range(T - 1)]))
        forg = float(np.mean([R[j : T - 1, j].max() - last[j] for j in range(T - 1)]))
    else:
        bwt = forg = 0.0
    return {
        "average_accuracy": float(last.mean()),
        "backward_transfer": bwt,
        "forgetting": forg,
        "final_task_accuracy": float(R[T - 1, T - 1]),
        "mean_diagonal": float(np.mean(np.diag(R))),
    }


def plot_accuracy_matrix(R, *, task_names=None, ax=None, title=None):
    """Heatmap of the accuracy matrix (row i = after task i, column j = task j).

    Parameters
    ----------
    R : array_like, shape (T, T)
    task_names : list of str, optional
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    R = np.asarray(R, dtype=np.float64)
    if R.ndim != 2:
        raise ValueError(f"R must be a 2-D matrix, got shape {R.shape}")
    if ax is None:
        _, ax = plt.subplots(figsize=(1.2 * R.shape[1] + 2, 1.0 * R.shape[0] + 1.5))
    im = ax.imshow(R, vmin=0, vmax=1, cmap="viridis")
    names = task_names or [str(j) for j in range(R.shape[1])]
    ax.set_xticks(range(R.shape[1]), names)
    ax.set_yticks(range(R.shape[0]), [f"after {n}" for n in names[: R.shape[0]]])
    for i in range(R.shape[0]):
        for j in range(R.shape[1]):
            if np.isfinite(R[i, j]):
                ax.text(
                    j,
                    i,
                    f"{R[i, j]:.2f}",
                    ha="center",
                    va="center",
                    color="w" if R[i, j] < 0.6 else "k",
                    fontsize=8,
                )
    ax.set_xlabel("evaluated task")
    ax.set_ylabel("trained through")
    if title:
        ax.set_title(title)
    ax.figure.colorbar(im, ax=ax, label="test accuracy")
    return ax
