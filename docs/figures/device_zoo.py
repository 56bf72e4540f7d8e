"""Write the README's device-zoo figure: the nominal response of every preset.

Usage (``make figures``): ``python docs/figures/device_zoo.py docs/figures/device_zoo.png``.
The same grid as the first figure of ``notebooks/01_device_zoo.ipynb``.
"""

from __future__ import annotations

import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

import devices  # noqa: E402


def main(path: str) -> None:
    names = devices.names()
    cols = 4
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(16, 3.3 * rows), layout="constrained")
    for ax, name in zip(axes.flat, names, strict=False):
        # nominal curves: the step presets' own device-to-device spread is switched off
        devices.plot_response(devices.get(name).with_variability(d2d=None), ax=ax)
        ax.set_xlabel("pulse number")
    for ax in list(axes.flat)[len(names) :]:
        ax.set_visible(False)
    fig.savefig(path, dpi=80)
    print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/figures/device_zoo.png")
