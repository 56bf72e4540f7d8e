"""LCA sparse inference (Rozell et al. 2008) through the weight protocol.

The dictionary ``Phi`` (D x H, columns are atoms) is anything with ``matmul`` / ``rmatmul`` and
``shape == (D, H)``: a :class:`learning_rules.FloatWeights` (software) or a
:class:`devices.DeviceArray` (every read has the array's read noise and converters). With
``Phi`` stored as a ``(D, H)`` array, ``Phi a`` is ``matmul(a)`` and ``Phi^T x`` is
``rmatmul(x)``. One run costs one transposed read for ``b = Phi^T x`` and one forward plus one
transposed read per step for the inhibition ``Phi^T (Phi a) - a``.
"""

from __future__ import annotations

import numpy as np

from ..weights import FloatWeights

__all__ = ["THRESHOLDS", "lca", "lca_dictionary", "soft_threshold"]

THRESHOLDS = ("soft", "nonneg", "hard")


def soft_threshold(u, lam: float, kind: str = "soft") -> np.ndarray:
    """The LCA activation ``T_lambda(u)``.

    Parameters
    ----------
    u : array_like
        Internal states.
    lam : float
        Threshold (>= 0).
    kind : {"soft", "nonneg", "hard"}
        ``sign(u) max(|u| - lam, 0)``, ``max(u - lam, 0)`` or ``u [|u| > lam]``.

    Returns
    -------
    ndarray
    """
    u = np.asarray(u, dtype=np.float64)
    if kind == "soft":
        return np.sign(u) * np.maximum(np.abs(u) - lam, 0.0)
    if kind == "nonneg":
        return np.maximum(u - lam, 0.0)
    if kind == "hard":
        return np.where(np.abs(u) > lam, u, 0.0)
    raise ValueError(f"threshold must be one of {THRESHOLDS}, got {kind!r}")


def lca(
    x,
    dictionary,
    lam: float,
    *,
    n_steps: int = 200,
    dt_tau: float = 0.1,
    threshold: str = "soft",
    u0=None,
    return_state: bool = False,
):
    """Sparse codes of ``x`` by the locally competitive algorithm.

    Iterates ``u <- u + dt_tau (b - u - (Phi^T Phi a - a))``, ``a = T_lambda(u)``, with
    ``b = Phi^T x``, from ``u0`` (default 0).

    Parameters
    ----------
    x : array_like, shape (D,) or (batch, D)
        Inputs.
    dictionary : ndarray of shape (D, H), or a weight array with ``shape == (D, H)``
        A float array is wrapped in :class:`learning_rules.FloatWeights` (no clipping) so that the
        float and the device runs share one code path.
    lam : float
        Threshold (>= 0).
    n_steps : int
        Number of Euler steps (default 200).
    dt_tau : float
        Step size ``dt / tau`` in (0, 1] (default 0.1).
    threshold : {"soft", "nonneg", "hard"}
        Activation (see :func:`soft_threshold`).
    u0 : array_like, optional
        Initial internal state, shape ``(H,)`` or ``(batch, H)``.
    return_state : bool
        Also return the internal state ``u``.

    Returns
    -------
    a : ndarray, shape (H,) or (batch, H)
        Codes.
    u : ndarray
        Internal states (only with ``return_state``).
    """
    if isinstance(dictionary, np.ndarray):
        dictionary = FloatWeights(dictionary, w_max=None)
    if not (hasattr(dictionary, "matmul") and hasattr(dictionary, "rmatmul")):
        raise TypeError(
            "dictionary must be a (D, H) array or have matmul/rmatmul (FloatWeights, DeviceArray),"
            f" got {type(dictionary).__name__}"
        )
    D, H = dictionary.shape
    x = np.asarray(x, dtype=np.float64)
    if x.ndim not in (1, 2) or x.shape[-1] != D:
        raise ValueError(f"x must have shape ({D},) or (batch, {D}), got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("x contains NaN or infinite values")
    lam = float(lam)
    if not lam >= 0.0:
        raise ValueError(f"lam must be >= 0, got {lam!r}")
    if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 0:
        raise ValueError(f"n_steps must be an int >= 0, got {n_steps!r}")
    dt_tau = float(dt_tau)
    if not 0.0 < dt_tau <= 1.0:
        raise ValueError(f"dt_tau must be in (0, 1], got {dt_tau!r}")
    if threshold not in THRESHOLDS:
        raise ValueError(f"threshold must be one of {THRESHOLDS}, got {threshold!r}")
    b = dictionary.rmatmul(x)  # Phi^T x
    if u0 is None:
        u = np.zeros_like(b)
    else:
        u = np.array(np.broadcast_to(np.asarray(u0, dtype=np.float64), b.shape))
    for _ in range(int(n_steps)):
        a = soft_threshold(u, lam, threshold)
        inhibition = dictionary.rmatmul(dictionary.matmul(a)) - a  # (Phi^T Phi - I) a
        u = u + dt_tau * (b - u - inhibition)
    a = soft_threshold(u, lam, threshold)
    return (a, u) if return_state else a


def lca_dictionary(Phi, device, *, w_max: float | None = None, seed=None, mode="ideal", **kwargs):
    """Program a float dictionary onto a differential :class:`devices.DeviceArray`.

    Parameters
    ----------
    Phi : array_like, shape (D, H)
        Dictionary (columns are atoms).
    device : devices.DeviceModel
        Device model (e.g. ``devices.get("ideal", c2c_sigma=0)``).
    w_max : float, optional
        Weight range (default ``max |Phi|``).
    seed : int, optional
        Seed of the array.
    mode : {"ideal", "open_loop", "verify"}
        Programming mode of :meth:`devices.DeviceArray.program`.
    **kwargs
        Passed to :class:`devices.DeviceArray` (``dac``, ``adc``, ``backend``, ...).

    Returns
    -------
    devices.DeviceArray
        Shape ``(D, H)``.
    """
    import devices

    Phi = np.asarray(Phi, dtype=np.float64)
    if Phi.ndim != 2:
        raise ValueError(f"Phi must be a (D, H) matrix, got shape {Phi.shape}")
    if w_max is None:
        w_max = float(np.max(np.abs(Phi))) or 1.0
    arr = devices.DeviceArray(
        Phi.shape, device, mapping="differential", seed=seed, w_max=w_max, **kwargs
    )
    arr.program(Phi, mode=mode)
    return arr
