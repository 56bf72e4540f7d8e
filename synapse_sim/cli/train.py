"""``synapse-sim train``: an MLP on device presets beside its software twin.

Options left out take the :class:`~synapse_sim.studies.train.TrainConfig` defaults (also
``--neurosim-input``: on for every dataset but ``digits``).
"""

from __future__ import annotations

import argparse

from .argtypes import int_at_least
from .common import (
    add_overwrite_option,
    given,
    output_dir,
    print_written,
    show_progress,
    write_mode,
)

__all__ = ["add_parser", "run", "add_train_options", "add_backend_option", "train_config"]

#: TrainConfig fields set by :func:`add_train_options` (option ``--a-b`` for field ``a_b``).
TRAIN_FIELDS = (
    "dataset",
    "hidden",
    "activation",
    "loss",
    "init",
    "epochs",
    "batch_size",
    "lr",
    "seed",
    "device_seed",
    "rounding",
    "theta",
    "n_max",
    "refresh_threshold",
    "refresh_mode",
    "max_train",
    "backend",
    "weight_noise",
    "refresh",
    "refresh_margin",
    "neurosim_input",
    "schedule",
    "dac_bits",
    "adc_bits",
    "read",
    "neurosim_compat",
)


def add_backend_option(p) -> None:
    """``--backend`` of the training commands (checked by the trainer: a bad name or an
    unavailable GPU is a one-line error, exit 2)."""
    p.add_argument(
        "--backend",
        default=None,
        help="array backend: auto (numba on the CPU), numpy, numba, cupy (GPU) or cuda-sim "
        "(tests; needs NUMBA_ENABLE_CUDASIM=1); default auto",
    )


def add_train_options(p) -> None:
    """The network, schedule and rule options of ``train`` (defaults: TrainConfig's)."""
    p.add_argument("--dataset", default=None, help="mnist5k, digits or idx:PATH (default mnist5k)")
    p.add_argument(
        "--neurosim-input",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="NeuroSim input format: 20x20 crop, binarized (28x28 data only; "
        "default on, off for digits)",
    )
    p.add_argument(
        "--hidden",
        type=int_at_least(1),
        nargs="+",
        default=None,
        metavar="N",
        help="hidden layer sizes (default 100)",
    )
    p.add_argument("--activation", default=None, help="sigmoid (default) or relu")
    p.add_argument("--loss", default=None, help="sse (NeuroSim, default) or ce (softmax)")
    p.add_argument("--init", default=None, help="neurosim (default) or uniform")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default 5)")
    p.add_argument("--batch-size", type=int, default=None, help="batch size (default 1)")
    p.add_argument(
        "--lr",
        type=float,
        nargs="+",
        default=None,
        metavar="LR",
        help="learning rate, one per layer or one for all (default 0.4 0.2)",
    )
    p.add_argument("--seed", type=int, default=None, help="seed (default 0)")
    p.add_argument("--device-seed", type=int, default=None, help="seed of the device draws")
    p.add_argument(
        "--rounding", default=None, help="pulse-count rounding: nearest (default) or stochastic"
    )
    p.add_argument("--theta", type=float, default=None, help="dead-zone threshold (default 0.5)")
    p.add_argument("--n-max", type=int, default=None, help="max pulses per update")
    p.add_argument(
        "--refresh-threshold",
        type=float,
        default=None,
        help="unidirectional refresh threshold (default 0.9)",
    )
    p.add_argument("--refresh-mode", default=None, help="ideal, open_loop or verify (default)")
    p.add_argument(
        "--refresh",
        default=None,
        help="refresh policy of unidirectional rules: threshold (default), hysteresis or "
        "preemptive (docs/REFRESH.md)",
    )
    p.add_argument(
        "--refresh-margin",
        type=float,
        default=None,
        help="hysteresis margin of --refresh hysteresis/preemptive (default 0.1)",
    )
    p.add_argument("--max-train", type=int, default=None, help="use only N training images")
    p.add_argument(
        "--schedule",
        default=None,
        metavar="SCHED",
        help="epochs:E (shuffled epochs, as --epochs) or draws:BxN (B blocks of N random draws "
        "with replacement, test after every block; NeuroSim: draws:125x8000)",
    )
    p.add_argument(
        "--dac-bits", type=int, default=None, help="uniform DAC on [0, 1] at every array input"
    )
    p.add_argument(
        "--adc-bits", type=int, default=None, help="NeuroSim's partial-sum ADC on the column sums"
    )
    p.add_argument(
        "--read",
        default=None,
        help="forward read: weight (W x, default) or current (NeuroSim's: half W x on the "
        "reference mapping)",
    )
    p.add_argument(
        "--neurosim-compat",
        action="store_true",
        default=None,
        help="train the device runs as NeuroSim's hardware does (1-bit hidden DAC, 8-bit "
        "partial-sum ADC, current read, its pulse counts and initial programming)",
    )
    add_backend_option(p)
    p.add_argument(
        "--weight-noise",
        type=float,
        default=None,
        metavar="SIGMA",
        help="hardware-aware training of the software twin: Gaussian weight noise on every "
        "training read, relative to the layer's largest weight (default 0: off)",
    )
    p.add_argument("--save-weights", action="store_true", help="store final weights")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def train_config(args):
    """The TrainConfig of the options (a bad value raises naming the option)."""
    from ..studies.train import TrainConfig
    from .common import option_error

    kw = given(args, TRAIN_FIELDS)
    try:
        return TrainConfig(**kw)
    except (ValueError, TypeError) as exc:
        raise option_error(exc, {}) from None


def add_parser(subparsers) -> None:
    """Register ``synapse-sim train``."""
    p = subparsers.add_parser(
        "train",
        help="train an MLP on device presets beside its software twin",
        description="Train a multilayer perceptron in software and on device arrays with the "
        "same initial weights and data order; writes results.h5, PNGs and "
        "results.md to --out.",
    )
    p.add_argument(
        "--device",
        action="append",
        default=None,
        metavar="NAME",
        help="device preset, 'software', or a fitted device's NAME_fit.json from synapse-sim "
        "fit (repeat for several; default epiram)",
    )
    p.add_argument(
        "--rule",
        action="append",
        default=None,
        metavar="RULE",
        help="bidirectional, unidirectional, stochastic or adaptive (repeat; "
        "default bidirectional)",
    )
    p.add_argument("--mapping", default=None, help="reference or differential (default: by rule)")
    p.add_argument("--no-software", action="store_true", help="skip the software twin")
    p.add_argument("--out", default="runs/train", metavar="DIR", help="output folder")
    p.add_argument(
        "--energy",
        action="store_true",
        help="record device-level energy and latency per epoch (docs/ENERGY.md)",
    )
    add_overwrite_option(p, resume=True)
    add_train_options(p)
    p.set_defaults(func=run)


def device_arg(value: str):
    """A ``--device`` value: a preset name, or a JSON file holding a device model (a fit record
    of ``synapse-sim fit``, or :func:`devices.fitting.model_to_dict`)."""
    if value.endswith(".json"):
        from devices.fitting import load_model

        return load_model(value)
    return value


def report(result) -> int:
    """Print the table and the files of a train-layout result; exit status 0."""
    print(result.table, end="")
    print_written(result.files)
    return 0


def run(args) -> int:
    """Run ``synapse-sim train``."""
    from ..studies.base import run_study
    from ..studies.train import RunSpec, TrainStudy, resolve_backend

    config = train_config(args)
    resolve_backend(config.backend)  # an unavailable GPU fails before the output folder exists
    devs = args.device or ["epiram"]
    rules = args.rule or ["bidirectional"]
    runs = []
    if "software" in devs or not args.no_software:
        runs.append(RunSpec(device="software"))
    for d in devs:
        if d == "software":
            continue
        for r in rules:
            runs.append(RunSpec(device=device_arg(d), rule=r, mapping=args.mapping))
    out = output_dir(args.out, "--out")
    study = TrainStudy(config, runs, save_weights=args.save_weights, energy=args.energy or None)
    return report(
        run_study(study, out=out, progress=show_progress(args.quiet), mode=write_mode(args))
    )
