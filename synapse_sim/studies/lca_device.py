"""LCA sparse inference with the bars dictionary programmed onto a device array.

One measurement (:func:`lca_point`): 200 bars images (5 x 5 bars, spike probability 0.2, pixel
noise 0.2, data seed 0), the unit-norm bars dictionary (25 x 10) programmed onto a differential
array of a preset (``w_max = max |Phi|``, read-verify or open-loop programming, device seed
``seed``), LCA codes (non-negative threshold ``lam``, ``n_steps`` steps, dt/tau 0.1) compared
with the codes of the float dictionary (``docs/SPARSE_CODING.md``, "LCA on device presets").
Sweeps run it with ``[sweep] study = "lca"``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from devices.validation import check_choice, check_int, check_real

from .base import field_errors

__all__ = ["LCA_PROGRAM_MODES", "LCAConfig", "lca_point"]

#: Programming modes of the dictionary (:meth:`devices.DeviceArray.program`).
LCA_PROGRAM_MODES = ("verify", "open_loop", "ideal")


@dataclass(frozen=True, kw_only=True)
class LCAConfig:
    """One LCA measurement on a device array.

    Parameters
    ----------
    device : str
        Device preset of the array.
    overrides : dict
        Device parameters replaced on the preset (:func:`devices.get`).
    program : {"verify", "open_loop", "ideal"}
        How the dictionary is programmed.
    seed : int
        Seed of the device array (the device instance; the data are fixed).
    n_points : int
        Number of images.
    lam : float
        LCA threshold.
    n_steps : int
        LCA Euler steps.
    """

    device: str = "ideal"
    overrides: dict = field(default_factory=dict)
    program: str = "verify"
    seed: int = 0
    n_points: int = 200
    lam: float = 0.5
    n_steps: int = 200

    def __post_init__(self):
        import devices

        with field_errors("device"):
            check_choice("device", self.device, devices.names())
        with field_errors("overrides"):
            if not isinstance(self.overrides, dict):
                raise TypeError(f"overrides must be a dict, got {self.overrides!r}")
            devices.get(self.device, **self.overrides)
        with field_errors("program"):
            check_choice("program", self.program, LCA_PROGRAM_MODES)
        with field_errors("seed"):
            check_int("seed", self.seed, lo=0)
        with field_errors("n_points"):
            check_int("n_points", self.n_points, lo=1)
        with field_errors("lam"):
            check_real("lam", self.lam, lo=0.0)
        with field_errors("n_steps"):
            check_int("n_steps", self.n_steps, lo=1)

    def to_dict(self) -> dict:
        """The fields as a plain dict."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def _codes_stats(Y, Phi, a) -> tuple[float, float]:
    err = np.linalg.norm(Y - a @ Phi.T, axis=1) / np.linalg.norm(Y, axis=1)
    return float(np.mean(err)), float(np.mean(a != 0))


def lca_point(config: LCAConfig) -> dict:
    """Run one LCA measurement (see the module docstring).

    Returns
    -------
    dict
        ``rel_error`` (mean ``||x - Phi a|| / ||x||`` with the float ``Phi``), ``active``
        (fraction of non-zero codes), ``code_diff`` (largest code difference to the float run
        relative to the largest float code), ``w_error`` (largest ``|W - Phi|`` of the array),
        ``rel_error_float`` and ``active_float`` (the float run).
    """
    import devices
    from learning_rules.sparse_coding import bars_data, bars_dictionary, lca, lca_dictionary

    Phi = bars_dictionary(10) / np.sqrt(5.0)
    Y, _ = bars_data("bsc", {"W": bars_dictionary(10), "pi": 0.2, "sigma": 0.2}, config.n_points, 0)
    kw = {"n_steps": config.n_steps, "threshold": "nonneg"}
    a_f = lca(Y, Phi, config.lam, **kw)
    model = devices.get(config.device, **config.overrides)
    arr = lca_dictionary(Phi, model, seed=config.seed, mode=config.program)
    a_d = lca(Y, arr, config.lam, **kw)
    err, active = _codes_stats(Y, Phi, a_d)
    err_f, active_f = _codes_stats(Y, Phi, a_f)
    return {
        "rel_error": err,
        "active": active,
        "code_diff": float(np.max(np.abs(a_d - a_f)) / np.max(np.abs(a_f))),
        "w_error": float(np.max(np.abs(arr.weights() - Phi))),
        "rel_error_float": err_f,
        "active_float": active_f,
    }
