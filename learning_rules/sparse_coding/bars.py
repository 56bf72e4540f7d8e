"""The bars test: generator, recovery score and a figure of learned fields.

``specs/sparse_coding.md`` section 7: ``H`` bars on an ``R x R`` image (``R = H / 2``), latent
``i < R`` is the horizontal bar of row ``i``, latent ``R + i`` the vertical bar of column ``i``.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "BARS_SETTINGS",
    "RECOVERY_THRESHOLD",
    "bars_data",
    "bars_dictionary",
    "fields_mosaic",
    "match_fields",
    "plot_fields",
]

#: Matched cost (mean absolute pixel error) below which a bar counts as recovered: a tenth of the
#: bar amplitude 10. Calibrated margins: recovered bars cost 0.10-0.19, missed ones >= 1.5.
RECOVERY_THRESHOLD = 1.0

#: What every published bars setting shares (spec section 7).
_BARS_COMMON = {
    "H": 10,
    "N": 1000,
    "gamma": 5,
    "pi": 0.2,
    "sigma": 2.0,
    "amplitude": 10.0,
    "Ncut_factor": [(0, 0.0), (2 / 3, 1.0)],
    "train_fraction": 0.9,
}

#: The published example setting of each implemented model (spec section 7).
BARS_SETTINGS = {
    "bsc": {**_BARS_COMMON, "h_prime": 8, "steps": 150, "T": [(0, 5.0), (0.8, 1.0)]},
    "tsc": {**_BARS_COMMON, "h_prime": 7, "steps": 300, "T": [(0, 2.0), (0.7, 1.0)]},
    "dsc": {
        **_BARS_COMMON,
        "h_prime": 7,
        "values": (0.0, 1.0, 2.0),
        "pi": (0.8, 0.15, 0.05),
        "steps": 100,
        "T": [(0, 2.0), (0.7, 1.0)],
    },
    "mca": {**_BARS_COMMON, "h_prime": 8, "steps": 300, "T": [(0, 4.0), (0.8, 1.0)]},
    "mmca": {**_BARS_COMMON, "h_prime": 7, "steps": 300, "T": [(0, 4.0), (0.8, 1.0)]},
    "gsc": {
        **_BARS_COMMON,
        "N": 10000,
        "h_prime": 7,
        "gamma": 4,
        "mu": 1.0,
        "psi_sq": 1.0,
        "sigma_sq": 1.0,
        "sigma": 1.0,
        "steps": 150,
        "T": [(0, 4.0), (0.8, 1.0)],
        "Ncut_factor": 0.0,
    },
}


def bars_dictionary(H: int = 10, negative: bool = False, rng=None) -> np.ndarray:
    """Bar fields with pixel value 1, shape ``(D, H)`` with ``D = (H / 2)^2``.

    Parameters
    ----------
    H : int
        Number of bars (even, >= 2).
    negative : bool
        Give every bar a random sign (drawn from ``rng``).
    rng : int, numpy.random.Generator or None
        Seed for the signs.

    Returns
    -------
    ndarray, shape (D, H)
    """
    if isinstance(H, bool) or not isinstance(H, (int, np.integer)) or H < 2 or H % 2:
        raise ValueError(f"H must be an even int >= 2, got {H!r}")
    R = H // 2
    W = np.zeros((R, R, H))
    for i in range(R):
        W[i, :, i] = 1.0  # horizontal bar of row i
        W[:, i, R + i] = 1.0  # vertical bar of column i
    W = W.reshape(R * R, H)
    if negative:
        signs = np.random.default_rng(rng).choice([-1.0, 1.0], size=H)
        W = W * signs
    return W


def bars_data(model: str, params: dict, n: int, rng=None):
    """Draw ``n`` points from a sparse coding model with the given (ground-truth) parameters.

    Parameters
    ----------
    model : {"bsc", "tsc", "dsc", "mca", "mmca", "gsc"}
        Generative model. BSC: ``s ~ Bernoulli(pi)``; TSC: ``s = +-1`` with probability
        ``pi / 2`` each, else 0; DSC: ``s_h = values[k]`` with probability ``pi[k]``; these
        three superpose linearly, ``y = W s + N(0, sigma^2 I)``. MCA: ``y_d = max_h s_h W_dh``;
        MMCA: the active field of largest magnitude wins (sign kept); both with Bernoulli(pi)
        latents and noise ``N(0, sigma^2 I)``. GSC: ``s_h ~ Bernoulli(pi_h)``,
        ``z ~ N(mu, diag(psi_sq))``, ``y = W (s * z) + N(0, sigma_sq I)``.
    params : dict
        ``W`` (D x H) and ``pi``, ``sigma`` (BSC, TSC, MCA, MMCA); ``values``, ``pi`` (one
        probability per value), ``sigma`` (DSC); ``pi``, ``mu``, ``psi_sq`` (scalars or
        H-vectors) and ``sigma_sq`` (GSC).
    n : int
        Number of points.
    rng : int, numpy.random.Generator or None
        Seed.

    Returns
    -------
    Y : ndarray, shape (n, D)
    S : ndarray, shape (n, H)
        The latent states that generated ``Y`` (GSC: ``s * z``).
    """
    models = ("bsc", "tsc", "dsc", "mca", "mmca", "gsc")
    if model not in models:
        raise ValueError(f"model must be one of {models}, got {model!r}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    need = {
        "dsc": ("W", "values", "pi", "sigma"),
        "gsc": ("W", "pi", "mu", "psi_sq", "sigma_sq"),
    }.get(model, ("W", "pi", "sigma"))
    missing = [k for k in need if k not in params]
    if missing:
        raise ValueError(f"params is missing {missing} (model {model!r} needs {list(need)})")
    W = np.asarray(params["W"], dtype=np.float64)
    if W.ndim != 2:
        raise ValueError(f"params['W'] must be a (D, H) matrix, got shape {W.shape}")
    rng = np.random.default_rng(rng)
    D, H = W.shape
    if model == "gsc":
        pi = np.broadcast_to(np.asarray(params["pi"], dtype=np.float64), (H,))
        mu = np.broadcast_to(np.asarray(params["mu"], dtype=np.float64), (H,))
        psi = np.broadcast_to(np.asarray(params["psi_sq"], dtype=np.float64), (H,))
        if np.any((pi <= 0) | (pi >= 1)):
            raise ValueError(f"params['pi'] must be in (0, 1), got {params['pi']!r}")
        if np.any(psi < 0) or float(params["sigma_sq"]) < 0:
            raise ValueError("params['psi_sq'] and params['sigma_sq'] must be >= 0")
        s = rng.random((n, H)) < pi
        z = mu + np.sqrt(psi) * rng.standard_normal((n, H))
        S = np.where(s, z, 0.0)
        Y = S @ W.T + math.sqrt(float(params["sigma_sq"])) * rng.standard_normal((n, D))
        return Y, S
    sigma = float(params["sigma"])
    if not sigma >= 0.0:
        raise ValueError(f"params['sigma'] must be >= 0, got {sigma!r}")
    if model == "dsc":
        vals = np.asarray(params["values"], dtype=np.float64)
        pi = np.asarray(params["pi"], dtype=np.float64)
        if pi.shape != vals.shape or np.any(pi < 0) or abs(pi.sum() - 1.0) > 1e-9:
            raise ValueError(
                f"params['pi'] must be probabilities (one per value, sum 1), got {params['pi']!r}"
            )
        S = vals[rng.choice(len(vals), size=(n, H), p=pi)]
        Y = S @ W.T + sigma * rng.standard_normal((n, D))
        return Y, S
    pi = float(params["pi"])
    if not 0.0 < pi < 1.0:
        raise ValueError(f"params['pi'] must be in (0, 1), got {pi!r}")
    u = rng.random((n, H))
    if model == "tsc":
        S = np.where(u < pi / 2, -1.0, np.where(u < pi, 1.0, 0.0))
    else:
        S = (u < pi).astype(np.float64)
    if model in ("mca", "mmca"):
        from .mca import max_superposition

        Ybar = max_superposition(W, S, model)
    else:
        Ybar = S @ W.T
    Y = Ybar + sigma * rng.standard_normal((n, D))
    return Y, S


def match_fields(
    W,
    W_gt,
    *,
    sign_invariant: bool = False,
    threshold: float = RECOVERY_THRESHOLD,
    method: str = "optimal",
):
    """Match learned fields to true bars and count the recovered ones.

    The cost of pairing true field ``i`` with learned field ``j`` is the mean absolute pixel
    error ``C_ij = (1/D) sum_d |W_gt[d, i] - W[d, j]|``. Bar ``i`` is recovered when its matched
    cost is below ``threshold`` (default :data:`RECOVERY_THRESHOLD` = 1.0, a tenth of the bar
    amplitude 10).

    Parameters
    ----------
    W : array_like, shape (D, H)
        Learned fields (columns).
    W_gt : array_like, shape (D, H_gt)
        True fields, ``H_gt <= H``.
    sign_invariant : bool
        Compare with ``min(C(W_j), C(-W_j))`` (signed models).
    threshold : float
        Recovery threshold on the matched cost.
    method : {"optimal", "greedy"}
        ``optimal``: minimum-cost assignment (``scipy.optimize.linear_sum_assignment``);
        ``greedy``: repeatedly take the cheapest remaining (true, learned) pair.

    Returns
    -------
    assignment : ndarray of int, shape (H_gt,)
        Learned field matched to each true field.
    costs : ndarray, shape (H_gt,)
        Matched costs.
    n_recovered : int
        Number of true fields with cost below ``threshold``.
    """
    W = np.asarray(W, dtype=np.float64)
    W_gt = np.asarray(W_gt, dtype=np.float64)
    if W.ndim != 2 or W_gt.ndim != 2 or W.shape[0] != W_gt.shape[0]:
        raise ValueError(
            f"W and W_gt must be (D, H) matrices with the same D, got {W.shape} and {W_gt.shape}"
        )
    if W_gt.shape[1] > W.shape[1]:
        raise ValueError(f"W has fewer fields ({W.shape[1]}) than W_gt ({W_gt.shape[1]})")
    if method not in ("optimal", "greedy"):
        raise ValueError(f"method must be 'optimal' or 'greedy', got {method!r}")
    C = np.abs(W_gt[:, :, None] - W[:, None, :]).mean(axis=0)
    if sign_invariant:
        C = np.minimum(C, np.abs(W_gt[:, :, None] + W[:, None, :]).mean(axis=0))
    if method == "optimal":
        from scipy.optimize import linear_sum_assignment

        rows, cols = linear_sum_assignment(C)
        assignment = np.empty(W_gt.shape[1], dtype=np.int64)
        assignment[rows] = cols
    else:
        assignment = np.full(W_gt.shape[1], -1, dtype=np.int64)
        Cw = C.copy()
        for _ in range(W_gt.shape[1]):
            i, j = np.unravel_index(np.argmin(Cw), Cw.shape)
            assignment[i] = j
            Cw[i, :] = np.inf
            Cw[:, j] = np.inf
    costs = C[np.arange(W_gt.shape[1]), assignment]
    return assignment, costs, int(np.count_nonzero(costs < threshold))


def fields_mosaic(W, shape=None, pad: int = 1) -> np.ndarray:
    """Tile the fields (columns of ``W``) into one image, NaN between tiles.

    Parameters
    ----------
    W : array_like, shape (D, H)
    shape : tuple of int, optional
        Shape of one field (default square).
    pad : int
        Pixels between tiles.

    Returns
    -------
    ndarray, 2-D
    """
    W = np.asarray(W, dtype=np.float64)
    D, H = W.shape
    if shape is None:
        r = int(round(D**0.5))
        if r * r != D:
            raise ValueError(f"fields of {D} pixels are not square; give shape")
        shape = (r, r)
    h, w = shape
    cols = int(np.ceil(H**0.5)) if H > 10 else H
    rows = int(np.ceil(H / cols))
    img = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad), np.nan)
    for k in range(H):
        r, c = divmod(k, cols)
        img[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = W[:, k].reshape(
            h, w
        )
    return img


def plot_fields(W, shape=None, ax=None, title=None):
    """Draw the fields of ``W`` as one tiled image.

    Parameters
    ----------
    W : array_like, shape (D, H)
    shape : tuple of int, optional
        Shape of one field (default square).
    ax : matplotlib.axes.Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 1.8))
    img = fields_mosaic(W, shape)
    lim = np.nanmax(np.abs(img)) or 1.0
    ax.imshow(img, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return ax
