"""Fit a device preset to measured potentiation/depression cycles (``specs/devices.md`` s.1-3).

A measurement is a set of *sweeps*: an LTP sweep reads the conductance after 0, 1, 2, ...
identical potentiation pulses, an LTD sweep after 0, 1, 2, ... depression pulses (pulse numbers
count from the start of the sweep; 0 is the state before its first pulse, and readings may skip
pulses). Several cycles and several devices may be given.

What is fitted
--------------
The exponential NL-label model of :class:`devices.ExpDevice`: one ``Gmin``/``Gmax`` pair, and
per branch the pulse count ``P_b`` (the largest pulse number of that branch's sweeps unless
given) and the shape ``a_b = A_b / P_b``, reported as the NeuroSim label ``NL_b`` through the
same mapping as :mod:`devices.nl`. The LTP sweep follows ``f_LTP(p)`` from Gmin and the LTD
sweep walks ``f_LTD`` back from Gmax.

Two estimators (``method``):

``"markov"`` (default)
    The model's own noise: a write moves the state along its branch and adds
    ``c2c_sigma * dG * N(0, 1)`` per pulse, then clips to ``[Gmin, Gmax]``, so a sweep is a Markov
    chain and the mean of the next reading given the present one is exact,
    ``mu = f_b(clip(f_b^-1(G) +- n, 0, P_b))``. The parameters and ``c2c_sigma`` maximize the
    likelihood of every one-step transition (Gaussian, censored where readings sit exactly at a
    clipped bound), starting from the curve fit below. This is unbiased where the curve fit is
    not: with cycle-to-cycle noise the *mean* sweep never reaches the bounds (readings are
    clipped there and pulled back), so a curve through the data underestimates the range.
    Standard errors come from the Gauss-Newton information of the transitions.
``"curve"``
    Least squares of every reading against the noise-free curve (the usual NeuroSim-style fit);
    right for a reproducible curve seen through read noise. ``c2c_sigma`` is still estimated
    from the one-step residuals (in the model's units) at the fitted parameters.

Noise-free data (readings on the curve to 1e-9 of the range) are fitted by the curve fit alone,
which is then exact.

Several devices: every device is fitted on its own sweeps; the nominal model takes the mean
labels and range, the pooled ``c2c_sigma``, and a device-to-device spread
(:class:`devices.DeviceToDevice`): ``sigma_nl`` from the spread of the labels of both branches
(less the mean squared standard error of a label, so that estimation noise is not counted as
spread) and relative ``sigma_gmin``/``sigma_gmax``. A spread of the pulse counts is not
estimated (every device shares the measurement protocol).

The alternative look-up-table model (:class:`devices.LUTDevice`) is the cycle-averaged curve at
every integer pulse number (missing pulse numbers interpolated), made monotone by isotonic
regression; with strong cycle-to-cycle noise it inherits the range bias of a mean curve.

CSV layout (:func:`read_csv`, :func:`write_csv`, :func:`fit_csv`)
----------------------------------------------------------------
One reading per row, a header line, ``#`` comment lines allowed::

    device,cycle,branch,pulse,conductance
    d0,0,ltp,0,1.02e-06
    d0,0,ltp,1,1.31e-06
    ...
    d0,0,ltd,0,9.97e-06

``device`` (any label; optional column, default one device) and ``cycle`` (integer; optional,
default 0) name the sweep together with ``branch`` (``ltp``/``ltd``, also ``potentiation`` /
``depression``, any case); ``pulse`` is the pulse number within the sweep (integer >= 0);
``conductance`` is in siemens.
"""

from __future__ import annotations

from ._estimators import CSV_COLUMNS, METHODS
from .data import fit_csv, read_csv, sample_cycles, write_csv
from .estimate import fit
from .model_dict import load_model, model_from_dict, model_to_dict, with_overrides
from .result import FitResult

__all__ = [
    "FitResult",
    "fit",
    "fit_csv",
    "read_csv",
    "write_csv",
    "sample_cycles",
    "CSV_COLUMNS",
    "METHODS",
    "model_to_dict",
    "model_from_dict",
    "with_overrides",
    "load_model",
]
