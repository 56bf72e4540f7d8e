"""Dictionaries on a :class:`devices.DeviceArray` (``specs/dictionary_learning.md`` section 9).

The array holds the dictionary ``W`` as a ``(p, r)`` crossbar (``out = p`` rows, ``in = r``
columns): reconstructions ``W h`` are forward reads (``matmul``), filter features ``W^T x``
transposed reads (``rmatmul``). A solver reads W once per block, computes a target digitally and
writes the change as a pulse request (``adaptive_bp.md`` 3.5 nominal rule) or programs the
target with read-verify.
"""

from __future__ import annotations

from devices import DeviceArray, DeviceModel

from ._common import check_choice, check_real

__all__ = ["DEVICE_KEYS", "check_device", "make_array", "write_target"]

#: Keys of ``device_options``.
DEVICE_KEYS = (
    "mapping",
    "w_max",
    "seed",
    "backend",
    "dac",
    "adc",
    "variability",
    "method",
    "side",
    "theta",
    "n_max",
    "rounding",
    "write",
    "init_program",
)


def check_device(device, device_options) -> tuple[dict, float]:
    """Validate ``device`` and ``device_options``; return the options dict and ``w_max``."""
    if device is not None and not isinstance(device, DeviceModel):
        raise TypeError(f"device must be a devices.DeviceModel or None, got {device!r}")
    if device_options is not None and not isinstance(device_options, dict):
        raise TypeError(f"device_options must be a dict or None, got {device_options!r}")
    opts = dict(device_options or {})
    bad = set(opts) - set(DEVICE_KEYS)
    if bad:
        raise ValueError(
            f"device_options has unknown keys {sorted(bad)}; allowed: {list(DEVICE_KEYS)}"
        )
    if "write" in opts:
        check_choice("device_options['write']", opts["write"], ("pulses", "verify"))
    w_max = check_real("device_options['w_max']", opts.get("w_max", 1.0), lo=0.0, lo_open=True)
    return opts, w_max


def make_array(shape, device, opts, w_max, W0) -> DeviceArray:
    """Build the array and program the start ``W0`` (``init_program`` mode, default ideal;
    differential pairs centred so that push-pull pulses move W both ways)."""
    arr = DeviceArray(
        shape,
        device,
        mapping=opts.get("mapping", "differential"),
        variability=opts.get("variability"),
        seed=opts.get("seed", None),
        backend=opts.get("backend", "auto"),
        w_max=w_max,
        dac=opts.get("dac"),
        adc=opts.get("adc"),
    )
    form = "centered" if arr.mapping == "differential" else "one_sided"
    arr.program(W0, mode=opts.get("init_program", "ideal"), form=form)
    return arr


def write_target(arr: DeviceArray, W_read, W_target, opts) -> int:
    """Write ``W_target`` given the read ``W_read``: a pulse request for ``W_target - W_read``
    (default) or program-and-verify (``write="verify"``). Returns the device pulses sent."""
    if opts.get("write", "pulses") == "verify":
        before = arr.counters()
        arr.program(W_target, mode="verify", form="one_sided")
        after = arr.counters()
        return int(sum(after[k] - before[k] for k in ("pulses_ltp", "pulses_ltd", "pulses_prog")))
    res = arr.pulse_request(
        W_target - W_read,
        method=opts.get("method", "bidirectional"),
        side=opts.get("side", "both"),
        theta=opts.get("theta", 0.5),
        n_max=opts.get("n_max"),
        rounding=opts.get("rounding", "nearest"),
    )
    return int(res["pulses"])
