"""Device-level energy and latency of a short training run, per device, and the same network
trained on a device fitted from measurements (``docs/ENERGY.md``).

Trains a 64-16-10 MLP on scikit-learn's 8x8 digits (400 images, 2 epochs, batch 8) with pulse
backprop on three published presets (their pulse amplitudes and widths come from
``devices/data/device_presets.json``) and on the device fitted from the shipped example
measurements (``devices/data/example_measurements.csv``, which has no published pulses: the
placeholder pulse of ``devices.energy.DEFAULT_PULSE`` prices it), records energy per epoch and
prints the accuracy table and the energy table that ``synapse-sim energy`` prints.

Run: ``python examples/energy_report.py [OUT_DIR]`` (default ``runs/energy``; about 30 s).
"""

from __future__ import annotations

import sys
import warnings
from importlib import resources

from devices import fitting
from devices.energy import EnergyModel
from synapse_sim import RunSpec, TrainConfig, train
from synapse_sim.studies.energy import energy_table
from synapse_sim.studies.train import markdown_report


def main(out: str = "runs/energy") -> str:
    """Train, write ``OUT/results.h5``, print and return the energy table."""
    cfg = TrainConfig(
        dataset="digits",
        hidden=(16,),
        epochs=2,
        batch_size=8,
        lr=(0.3, 0.15),
        max_train=400,
        seed=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        csv = resources.files("devices").joinpath("data/example_measurements.csv")
        fitted = fitting.fit_csv(csv, name="example_fit").model
    runs = [
        RunSpec(device="software"),
        RunSpec(device="epiram", rule="bidirectional"),
        RunSpec(device="taox_hfox", rule="bidirectional"),
        RunSpec(device="ag_a_si", rule="unidirectional"),
        RunSpec(device=fitted, rule="bidirectional"),
    ]
    # the defaults, written out: 0.2 V / 10 ns reads, ADC FOM 10 fJ/step (no ADCs here)
    model = EnergyModel(v_read=0.2, t_read=10e-9)
    res = train(cfg, runs, out=out, progress=False, energy=model)
    print(markdown_report(res.path), end="")
    return energy_table(res.path)


if __name__ == "__main__":
    main(*sys.argv[1:2])
