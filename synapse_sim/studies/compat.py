"""NeuroSim compatibility of the trainer: schedules, converter settings and ``neurosim_compat``.

:class:`~synapse_sim.studies.train.TrainConfig` takes three groups of settings from here:

* the **schedule** (``schedule="epochs:E"``: one shuffled pass over the training set per
  epoch; ``schedule="draws:BxN"``: ``B`` blocks of ``N`` images drawn with replacement, the
  test set evaluated after every block, as MLP+NeuroSim V3.0 does with 125 x 8,000);
* the **array converters** any run can use (``dac_bits``: a uniform DAC on ``[0, 1]`` at every
  array input; ``adc_bits``: NeuroSim's partial-sum ADC, :class:`devices.converters.
  PartialSumADC`; ``read``: the forward read scale), all on the forward read only;
* **``neurosim_compat=True``**, which sets them the way NeuroSim's hardware trains the
  400-100-10 network (``docs/NEUROSIM.md`` section 3): binarized inputs, a 1-bit DAC (the
  hidden activation enters the second array as ``a >= 0.5``), the current-mode read against a
  mid-range reference (half the weighted sum), an 8-bit partial-sum ADC, squared error,
  NeuroSim's pulse counts (with its float cast) and its initial programming (``(w + 1) / 2
  (Gmax - Gmin)`` without the Gmin offset, clipped). Backpropagation uses the analog hidden
  activation and the weights read cell by cell (converters on the forward read only).
"""

from __future__ import annotations

import re

import numpy as np

from devices import UniformQuantizer
from devices.converters import PartialSumADC, check_read

__all__ = [
    "SCHEDULE_KINDS",
    "parse_schedule",
    "resolve_neurosim_input",
    "schedule_string",
    "block_orders",
    "config_schedule",
    "drop_defaults",
    "schedule_record",
    "schedule_words",
    "CONFIG_DEFAULTS",
    "compat_fields",
    "array_options",
    "program_initial",
]

#: Schedule kinds: shuffled epochs, or blocks of random draws with replacement.
SCHEDULE_KINDS = ("epochs", "draws")
_SCHEDULE = re.compile(r"^\s*(epochs)\s*:\s*(\d+)\s*$|^\s*(draws)\s*:\s*(\d+)\s*[xX*]\s*(\d+)\s*$")
#: NeuroSim's converters and read in compat mode.
COMPAT_DAC_BITS = 1
COMPAT_ADC_BITS = 8


def _bad(name, value, allowed):
    exc = ValueError(f"{name} must be {allowed}, got {value!r}")
    exc.field = name
    return exc


def resolve_neurosim_input(config) -> bool:
    """``config.neurosim_input``, or its default when None: on for every dataset but
    ``digits`` (8x8 images cannot be cropped to 20x20)."""
    if config.neurosim_input is None:
        return not str(config.dataset).startswith("digits")
    return bool(config.neurosim_input)


def parse_schedule(schedule: str) -> tuple[str, int, int | None]:
    """Parse ``"epochs:E"`` or ``"draws:BxN"``.

    Returns
    -------
    (kind, blocks, draws_per_block)
        ``("epochs", E, None)`` or ``("draws", B, N)``.
    """
    m = _SCHEDULE.match(schedule) if isinstance(schedule, str) else None
    if m is None or any(int(g) < 1 for g in m.groups() if g is not None and g.isdigit()):
        raise _bad(
            "schedule", schedule, "'epochs:E' or 'draws:BxN' with whole numbers >= 1 (e.g. "
            "'draws:125x8000', NeuroSim's 1 M presentations)"
        )  # fmt: skip
    if m.group(1):
        return "epochs", int(m.group(2)), None
    return "draws", int(m.group(4)), int(m.group(5))


def schedule_string(kind: str, blocks: int, draws: int | None) -> str:
    """The canonical text of a schedule (as recorded in ``results.h5``)."""
    return f"epochs:{blocks}" if kind == "epochs" else f"draws:{blocks}x{draws}"


def config_schedule(config) -> str:
    """The schedule a ``TrainConfig`` runs, in canonical form (``epochs:E`` or ``draws:BxN``)."""
    return config.schedule if config.schedule is not None else f"epochs:{config.epochs}"


#: The NeuroSim fields of ``TrainConfig`` and their defaults (left out of its ``to_dict`` at
#: these values).
CONFIG_DEFAULTS = {
    "schedule": None,
    "dac_bits": None,
    "adc_bits": None,
    "read": "weight",
    "neurosim_compat": False,
}


def drop_defaults(d: dict) -> dict:
    """``d`` without the NeuroSim fields that hold their defaults (:data:`CONFIG_DEFAULTS`)."""
    return {k: v for k, v in d.items() if k not in CONFIG_DEFAULTS or v != CONFIG_DEFAULTS[k]}


def schedule_record(config) -> dict:
    """What ``results.h5`` records of the schedule: ``{"schedule": "draws:BxN"}`` for a draws
    schedule, nothing for the epoch schedule (recorded as ``epochs``)."""
    return {} if config.schedule is None else {"schedule": config.schedule}


def schedule_words(train_cfg: dict) -> str:
    """The schedule of a recorded train config in words (``"5 epochs"``, ``"10 blocks of 8000
    random draws"``)."""
    sched = train_cfg.get("schedule")
    if not sched:
        return f"{train_cfg.get('epochs')} epochs"
    _, blocks, draws = parse_schedule(sched)
    return f"{blocks} blocks of {draws} random draws"


def block_orders(schedule: str, n: int, batch_size: int, rng: np.random.Generator, batches):
    """Index arrays of the batches of one block (one evaluation period) of ``schedule``.

    Parameters
    ----------
    schedule : str
        Canonical schedule (:func:`schedule_string`).
    n : int
        Training samples.
    batch_size : int
    rng : numpy.random.Generator
        The data-order generator (epochs: one permutation per block; draws: one
        ``rng.integers(0, n, N)`` per block).
    batches : callable
        :func:`synapse_sim.data.batches` (the epoch order).

    Returns
    -------
    list of numpy.ndarray
    """
    kind, _, draws = parse_schedule(schedule)
    if kind == "epochs":
        return list(batches(n, batch_size, rng))
    idx = rng.integers(0, n, size=draws)
    return [idx[s : s + batch_size] for s in range(0, draws, batch_size)]


def compat_fields(config) -> dict:
    """Checked and resolved values of the NeuroSim fields of a ``TrainConfig`` (``epochs`` from
    the schedule, a draws schedule in canonical form, and what ``neurosim_compat`` implies).

    Raises
    ------
    ValueError
        A bad schedule, converter width or read name, or a setting that contradicts
        ``neurosim_compat`` (loss, activation, rounding), naming the field.
    """
    out = {}
    if config.schedule is not None:
        kind, blocks, draws = parse_schedule(config.schedule)
        # an epoch schedule is the epochs field (None keeps dataclasses.replace(epochs=...)
        # working); a draws schedule is kept in canonical form and sets epochs to its blocks
        out["schedule"] = None if kind == "epochs" else schedule_string(kind, blocks, draws)
        out["epochs"] = blocks
    for name in ("dac_bits", "adc_bits"):
        v = getattr(config, name)
        if v is not None and (
            not isinstance(v, (int, np.integer)) or isinstance(v, bool) or not 1 <= v <= 16
        ):
            raise _bad(name, v, "None or an integer from 1 to 16")
    try:
        check_read(config.read)
    except ValueError as exc:
        exc.field = "read"
        raise
    if not isinstance(config.neurosim_compat, (bool, np.bool_)):
        raise _bad("neurosim_compat", config.neurosim_compat, "True or False")
    if config.neurosim_compat:
        for name, want in (("loss", "sse"), ("activation", "sigmoid"), ("rounding", "nearest")):
            if getattr(config, name) != want:
                raise _bad(name, getattr(config, name), f"{want!r} with neurosim_compat=True")
        out["neurosim_input"] = True
        out["read"] = "current"
        out["dac_bits"] = COMPAT_DAC_BITS if config.dac_bits is None else config.dac_bits
        out["adc_bits"] = COMPAT_ADC_BITS if config.adc_bits is None else config.adc_bits
    return out


def array_options(config, spec) -> dict:
    """Extra :class:`devices.DeviceArray` keywords of a run (empty when every NeuroSim setting
    is off, so existing runs build exactly the arrays they always did)."""
    opts = {}
    if config.dac_bits is not None:
        opts["dac"] = UniformQuantizer(bits=int(config.dac_bits), lo=0.0, hi=1.0)
    if config.adc_bits is not None:
        opts["adc"] = PartialSumADC(bits=int(config.adc_bits))
    if config.read != "weight":
        opts["read"] = config.read
    if opts:
        opts["converters"] = "forward"
    if config.neurosim_compat and spec.rule == "bidirectional":
        opts["count"] = "neurosim"
    return opts


def program_initial(arr, W, form: str, neurosim: bool) -> None:
    """Program the initial weights ``W`` (ideal writes). With ``neurosim`` and one device per
    synapse, NeuroSim's initial write ``G = (w / w_max + 1) / 2 (Gmax - Gmin)`` without the
    Gmin offset, clipped into the device range (``docs/NEUROSIM.md`` fact 4): the weights read
    back ``w - 2 w_max Gmin / (Gmax - Gmin)``, ``-w_max`` where the clip acts."""
    if neurosim and arr.mapping == "reference":
        dev = arr.device
        W = W - 2.0 * arr.w_max * dev.gmin / dev.dG
    arr.program(W, mode="ideal", form=form)
