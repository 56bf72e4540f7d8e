"""Generate ``devices/data/example_measurements.csv``: measured-style cycles of a known device.

The device is made up (not a preset) so that the example is a fit of something unseen:
an exponential device with NL +1.8 (LTP) / -2.6 (LTD), 60 pulses per branch, 1 uS .. 10 uS,
1 % cycle-to-cycle noise and a device-to-device spread of 0.3 NL units and 5 % of Gmax.
Three devices, three cycles each, read after every pulse, written through
:func:`devices.fitting.sample_cycles` (a ``DeviceArray`` pulsed one pulse at a time) and
:func:`devices.fitting.write_csv`. Re-running it reproduces the file bit for bit.

Run: ``python examples/make_example_measurements.py [output.csv]``
"""

from __future__ import annotations

import sys
from pathlib import Path

import devices
from devices import fitting

#: The device the example file was sampled from (what a fit should find).
TRUE_DEVICE = devices.ExpDevice(
    gmin=1e-6,
    gmax=1e-5,
    levels_ltp=60,
    levels_ltd=60,
    nl_ltp=1.8,
    nl_ltd=-2.6,
    variability=devices.Variability(
        c2c=devices.CycleToCycle(sigma=0.01),
        d2d=devices.DeviceToDevice(sigma_nl=0.3, sigma_gmax=0.05),
    ),
    name="example_true",
)


def main(out: str | None = None) -> Path:
    path = (
        Path(out)
        if out
        else Path(__file__).resolve().parents[1] / ("devices/data/example_measurements.csv")
    )
    data = fitting.sample_cycles(TRUE_DEVICE, n_cycles=3, n_devices=3, seed=2026)
    fitting.write_csv(path, data)
    print(f"wrote {path} ({sum(len(g) for g in data['g_ltp'] + data['g_ltd'])} readings)")
    return path


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
