"""Array read converters in NeuroSim's form: the current-mode read and the partial-sum ADC.

A crossbar read sums currents along a column. :class:`devices.DeviceArray` can hand that sum on
in two scales (``read=``):

* ``"weight"`` (the default): ``y = W x``, the weighted sum in weight units;
* ``"current"``: ``y = w_max * sum_i x_i (I_i - I_ref,i) / (Imax - Imin)``, the column current
  minus the reference current, in units of one device's current range (MLP+NeuroSim V3.0's
  hardware read, ``docs/NEUROSIM.md`` fact 5). For one device against the mid-range reference
  (``mapping="reference"``, ``I_ref = (Imax + Imin) / 2``) one device's range spans two weight
  units, so this is **half** the weighted sum, ``0.5 W x``; for a differential pair
  (``I_ref = I-``) it is the weighted sum itself.

:class:`PartialSumADC` digitizes such a read the way NeuroSim forms its partial sums
(``docs/NEUROSIM.md`` fact 5): the cell column current and the reference current are each
converted to a whole number of steps, ``floor(I / step)`` with
``step = rows * (Imax - Imin) / (2**bits - 1)`` over *all* rows of the array (the full scale is
the column's whole current range), the two counts are subtracted, and the difference is
rescaled to the read's units. There is no clamp at ``2**bits - 1`` (NeuroSim compares the sum
with the range, not with ``rows * Imax``). The result is a whole number of steps of
``rows / (2**bits - 1)`` current units (``1.57`` on a 400-row array at 8 bits, in the
``"current"`` scale), and differs from the analog read by less than one step.

Inputs are used as they arrive: NeuroSim's 1-bit inputs (or a 1-bit DAC) make one read; a
multi-bit input is read here in one analog pass (NeuroSim reads it bit-serially, one partial
sum per bit).

No NeuroSim code is used here (its licence is non-commercial); the behaviour is described from
its source in ``docs/NEUROSIM.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from .validation import check_choice, check_int
from .xp import array_module

__all__ = [
    "PartialSumADC",
    "READS",
    "CONVERTER_SCOPES",
    "COUNT_RULES",
    "neurosim_counts",
    "neurosim_request",
    "neurosim_request_one",
]

#: Forward read scales of :class:`devices.DeviceArray` (``read=``).
READS = ("weight", "current")
#: Which reads the converters act on (``DeviceArray(converters=...)``): forward and backward,
#: or the forward read only (the backward read then uses the weights as read cell by cell).
CONVERTER_SCOPES = ("both", "forward")
#: Pulse-count rules of :meth:`devices.DeviceArray.pulse_request` (``count=``).
COUNT_RULES = ("exact", "neurosim")


@dataclass(frozen=True, kw_only=True)
class PartialSumADC:
    """NeuroSim's partial-sum ADC of a column read (see the module docstring).

    Parameters
    ----------
    bits : int
        ADC resolution, 1 to 24: ``2**bits - 1`` steps span one column's full current range.

    Examples
    --------
    >>> import numpy as np
    >>> adc = PartialSumADC(bits=8)
    >>> i_col = np.array([30.0]); i_ref = np.array([25.0])  # currents in units of Imax - Imin
    >>> float(adc.digitize(i_col, i_ref, rows=100, i_range=1.0)[0])  # doctest: +ELLIPSIS
    5.09...
    """

    bits: int

    def __post_init__(self):
        check_int("bits", self.bits, lo=1, hi=24)

    @property
    def levels(self) -> int:
        """Steps over the full scale: ``2**bits - 1``."""
        return 2**self.bits - 1

    def step(self, rows: int, i_range: float) -> float:
        """One ADC step in current units: ``rows * i_range / (2**bits - 1)``."""
        return rows * i_range / self.levels

    def digitize(self, i_col, i_ref, *, rows: int, i_range: float):
        """Partial sums of column currents ``i_col`` against reference currents ``i_ref``.

        Parameters
        ----------
        i_col, i_ref : array
            Column and reference currents (same shape; numpy or cupy), non-negative.
        rows : int
            Rows of the array (all of them: they set the full scale).
        i_range : float
            One device's current range ``Imax - Imin``.

        Returns
        -------
        array
            ``(floor(i_col / step) - floor(i_ref / step)) * step / i_range``: the digitized
            ``(i_col - i_ref) / i_range``.
        """
        xp = array_module(i_col)
        step = self.step(rows, i_range)
        digits = xp.floor(i_col / step) - xp.floor(i_ref / step)
        return digits * (step / i_range)

    def read(self, v, G, *, mapping: str, g_ref: float, i_range: float):
        """The digitized column read of inputs ``v`` on conductances ``G``: the column currents
        ``v G+^T`` against the reference currents (``v G-^T`` on a differential pair, else
        ``g_ref`` per active row), through :meth:`digitize` over all rows.

        Parameters
        ----------
        v : array, shape (batch, in)
            Inputs (after any DAC).
        G : array, shape (k, out, in)
            Conductances of the array's ``k`` devices per synapse (``k = 2``: differential).
        mapping : str
            ``"differential"`` or one device per synapse against ``g_ref``.
        g_ref, i_range : float
            Reference conductance; one device's range ``Gmax - Gmin``.

        Returns
        -------
        array, shape (batch, out)
            ``(i_col - i_ref) / i_range`` digitized (what a read of weight range 1 per device
            gives; multiply by the array's gain).
        """
        i_col = v @ G[0].T
        if mapping == "differential":
            i_ref = v @ G[1].T
        else:
            i_ref = v.sum(axis=-1, keepdims=True) * g_ref
        return self.digitize(i_col, i_ref, rows=G.shape[-1], i_range=i_range)


def neurosim_counts(dW, p_up: int, p_dn: int, w_range: float, theta: float = 0.5):
    """NeuroSim's pulse count of a requested change (``docs/NEUROSIM.md`` fact 1).

    ``k = round_half_away(|dW| P_b / w_range)`` with the branch's level count ``P_b`` (LTP for
    ``dW > 0``, LTD otherwise), then the integer cast of ``(k / P_b) * P_b``, which loses one
    pulse for some ``(k, P_b)`` through floating-point error (e.g. ``P = 97, k = 7``).

    Parameters
    ----------
    dW : array
        Requested weight changes.
    p_up, p_dn : int
        Levels of the LTP and LTD branches.
    w_range : float
        Weight span of one device's range (2 on NeuroSim's [-1, 1] one-device mapping).
    theta : float
        Round up from this fraction (NeuroSim: 0.5, half away from zero).

    Returns
    -------
    array of float
        Signed whole counts (positive: LTP).
    """
    xp = array_module(dW)
    P = xp.where(dW > 0, float(p_up), float(p_dn))
    r = xp.abs(dW) / w_range * P
    k = xp.floor(r)
    k = k + (r - k >= theta)
    k = xp.trunc((k / P) * P)
    return xp.where(dW > 0, k, -k)


def neurosim_request(dW, p_up: int, p_dn: int, up: float, dn: float, theta: float = 0.5):
    """``dW`` replaced by whole multiples of the nominal steps ``up`` / ``dn`` that round to
    NeuroSim's counts (:func:`neurosim_counts` with ``w_range = up * p_up``). numpy arrays take
    a numba kernel (equal to :func:`neurosim_counts`, tested), other array modules the array
    code."""
    if isinstance(dW, np.ndarray) and dW.dtype == np.float64:
        out = np.empty_like(dW)
        _neurosim_request_kernel(
            np.ascontiguousarray(dW).ravel(), out.reshape(-1), float(p_up), float(p_dn),
            float(up * p_up), float(up), float(dn), float(theta),
        )  # fmt: skip
        return out
    xp = array_module(dW)
    k = neurosim_counts(dW, p_up, p_dn, up * p_up, theta)
    return xp.where(k > 0, k * up, k * dn)


@numba.njit(cache=True, inline="always")
def neurosim_request_one(d, p_up, p_dn, w_range, up, dn, theta):
    """One request ``d`` replaced as :func:`neurosim_request` does (a jitted scalar function,
    also compiled into the fused batch-1 kernel of :mod:`devices.kernels.online`; ``p_up``,
    ``p_dn`` as floats, ``w_range = up * p_up``)."""
    if d == 0.0:  # most of a layer's requests on binary inputs
        return 0.0
    P = p_up if d > 0 else p_dn
    r = abs(d) / w_range * P
    k = math.floor(r)
    if r - k >= theta:
        k += 1.0
    k = float(int((k / P) * P))
    return k * up if d > 0 else -k * dn


@numba.njit(cache=True)
def _neurosim_request_kernel(dW, out, p_up, p_dn, w_range, up, dn, theta):
    for i in range(dW.size):
        out[i] = neurosim_request_one(dW[i], p_up, p_dn, w_range, up, dn, theta)


def check_read(read: str) -> str:
    """Check a read scale name (:data:`READS`)."""
    return check_choice("read", read, READS)
