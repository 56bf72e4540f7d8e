"""Fit a device preset to measured conductance-vs-pulse cycles and plot data vs fit.

Fits the shipped example file (``devices/data/example_measurements.csv``: three devices, three
cycles each, sampled by ``examples/make_example_measurements.py`` from a known device) or a CSV
of your own in the same layout (``device,cycle,branch,pulse,conductance``; see
``devices.fitting``), prints the fitted parameters and goodness of fit, and saves the figure.

Run: ``python examples/fit_device.py [data.csv] [figure.png]``

The fitted model is an ordinary device model: ``devices.DeviceArray(shape, result.model)`` or
``dataclasses.replace(result.model, c2c...)``; ``result.lut`` is the look-up-table alternative.
"""

from __future__ import annotations

import json
import sys
from importlib import resources

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from devices import fitting  # noqa: E402


def main(path=None, figure: str = "fit_device.png"):
    path = path or None  # "" (from the command line) means the example file
    if path is None:
        path = resources.files("devices").joinpath("data/example_measurements.csv")
    result = fitting.fit_csv(path)
    print(result.summary())
    print("per device (NL LTP, NL LTD, Gmax [S]):")
    for i, m in zip(result.device_ids, result.device_models, strict=True):
        print(f"  {i}: {m.nl_ltp:+.3f} {m.nl_ltd:+.3f} {m.gmax:.4e}")
    print("parameters:", json.dumps(result.params))
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    result.plot(ax=axes[0])
    result.plot(ax=axes[1], normalized=True)
    axes[1].set_title("normalized to the nominal range")
    fig.tight_layout()
    fig.savefig(figure, dpi=120)
    print(f"saved {figure}")
    return result


if __name__ == "__main__":
    main(*sys.argv[1:3])
