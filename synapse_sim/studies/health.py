"""Checks of a training run's health after each epoch: a learning rate so large that most
devices are driven to a conductance bound gets a warning, a non-finite loss stops the run.

Saturation is judged against the run's start: a unidirectional rule on a differential pair
programs one device of each pair at its lower bound, so half the devices are "saturated" before
any update; only what training adds counts."""

from __future__ import annotations

import math
import warnings

__all__ = ["SATURATION_WARNING", "SATURATION_RISE", "TrainingHealthWarning", "check_epoch"]

#: Fraction of saturated devices (at either bound) above which a run is warned about ...
SATURATION_WARNING = 0.5
#: ... when training added at least this fraction to the saturation at the start.
SATURATION_RISE = 0.25


class TrainingHealthWarning(RuntimeWarning):
    """Most devices of a run are saturated (usually a learning rate far too large)."""


def check_epoch(
    label: str, epoch: int, metrics: dict, lr, *, warned: bool = False, start: float = 0.0
) -> bool:
    """Check one epoch's metrics of run ``label``; return whether a warning was issued.

    Parameters
    ----------
    label : str
        The run.
    epoch : int
        The epoch just finished (1-based, in messages).
    metrics : dict
        ``train_loss``, ``test_loss``, ``saturated_high``, ``saturated_low``.
    lr : float or tuple
        The learning rate(s), named in the messages.
    warned : bool
        A warning was already issued for this run (no second one).
    start : float
        Saturated fraction of the run's devices before training.

    Raises
    ------
    FloatingPointError
        The training or test loss is not finite: the run stops at once (its earlier epochs
        stay in the results file).
    """
    for key in ("train_loss", "test_loss"):
        value = float(metrics.get(key, 0.0))
        if not math.isfinite(value):
            exc = FloatingPointError(
                f"run {label!r}: {key} is {value} after epoch {epoch}; training stopped "
                f"(lr={lr!r} is probably too large for this network)"
            )
            exc.field = "lr"
            raise exc
    sat = float(metrics.get("saturated_high", 0.0)) + float(metrics.get("saturated_low", 0.0))
    if sat > SATURATION_WARNING and sat - start >= SATURATION_RISE and not warned:
        warnings.warn(
            f"run {label!r}: {100 * sat:.0f}% of the devices are saturated at a conductance "
            f"bound after epoch {epoch} ({100 * start:.0f}% before training): the updates are "
            f"clipped and learning stalls; lr={lr!r} is probably too large",
            TrainingHealthWarning,
            stacklevel=3,
        )
        return True
    return warned
