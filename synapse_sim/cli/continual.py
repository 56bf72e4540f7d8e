"""``synapse-sim continual``: continual-learning benchmarks (CLASSP and baselines).

Registered in :data:`synapse_sim.cli.main.COMMANDS` through :func:`_add_continual`;
:func:`show_continual` prints ``show --json`` records of a ``kind == "continual"`` file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

__all__ = ["is_continual_file", "show_continual"]


def _add_continual(subparsers) -> None:
    p = subparsers.add_parser(
        "continual",
        help="continual learning: permuted / split MNIST-5k, digits -> MNIST, IDX pairs; "
        "CLASSP or a baseline",
        description="Train an MLP through a sequence of tasks (permuted or split MNIST-5k, "
        "digits then MNIST-5k at 8x8, or a pair of user datasets such as MNIST then "
        "Fashion-MNIST IDX folders) with one optimizer, in software, on pulsed float weights or "
        "on a device preset; writes results.h5 (accuracy matrix, average accuracy, forgetting, "
        "backward transfer) and an accuracy-matrix PNG.",
    )
    p.add_argument(
        "--benchmark",
        default="permuted",
        help="permuted, split, domain-shift (digits then MNIST-5k at 8x8) or pair (the datasets "
        "of --task-data); default permuted",
    )
    p.add_argument("--scenario", default="class", help="split: task, domain or class")
    p.add_argument(
        "--dataset", default="mnist5k", help="permuted/split: mnist5k (default) or digits"
    )
    p.add_argument(
        "--tasks",
        type=int,
        default=None,
        help="number of tasks (default: 5 permuted/split, 2 domain-shift, all of --task-data)",
    )
    p.add_argument(
        "--task-data",
        nargs="+",
        default=[],
        metavar="DATASET",
        help="pair: one dataset per task, e.g. idx:MNIST_DIR idx:FASHION_DIR",
    )
    p.add_argument(
        "--optimizer",
        default="classp",
        help="classp, sgd, adam, adagrad, ewc or si (default classp)",
    )
    p.add_argument("--device", default="software", help="'software' or a device preset")
    p.add_argument(
        "--pulse-step",
        type=float,
        default=None,
        help="software only: round every update to pulses of this size on float weights "
        "(an ideal linear device, e.g. 0.005)",
    )
    p.add_argument("--epochs-per-task", type=int, default=2, help="epochs per task (default 2)")
    p.add_argument(
        "--epochs-first-task",
        type=int,
        default=None,
        help="epochs of task 1 (the paper's shape: E1 unscaled, then --epochs-per-task)",
    )
    p.add_argument("--batch-size", type=int, default=16, help="batch size (default 16)")
    p.add_argument("--hidden", type=int, nargs="+", default=[100], metavar="N")
    p.add_argument("--lr", type=float, default=None, help="learning rate / CLASSP alpha")
    p.add_argument("--lr-after", type=float, default=None, help="CLASSP alpha after task 1")
    p.add_argument("--threshold", type=float, default=1e-5, help="CLASSP theta (default 1e-5)")
    p.add_argument("--eps", type=float, default=1e-5, help="CLASSP eps (default 1e-5)")
    p.add_argument("--p", type=float, default=1.0, help="CLASSP exponent (default 1)")
    p.add_argument("--accumulator", default="gradient", help="device CLASSP: gradient or pulses")
    p.add_argument("--lam", type=float, default=5000.0, help="EWC lambda (default 5000)")
    p.add_argument("--fisher", default="reference", help="EWC Fisher: reference, batch, sample")
    p.add_argument("--si-c", type=float, default=0.1, help="SI strength c (default 0.1)")
    p.add_argument("--si-xi", type=float, default=1e-3, help="SI damping xi (default 1e-3)")
    p.add_argument("--biases", action="store_true", help="float biases in every layer")
    p.add_argument(
        "--no-clip",
        action="store_true",
        help="software: do not clip weights to [-1, 1] (w_max None)",
    )
    p.add_argument(
        "--split",
        default="package",
        help="train/test split of mnist5k/digits: package (default) or sklearn",
    )
    p.add_argument(
        "--split-seed", type=int, default=None, help="seed of the split (default --seed)"
    )
    p.add_argument(
        "--test-fraction",
        type=float,
        default=None,
        help="held-out fraction of mnist5k/digits (default 0.2 / 0.25)",
    )
    p.add_argument("--max-per-task", type=int, default=None, help="training images per task")
    p.add_argument("--n-max", type=int, default=31, help="device pulse cap (default 31)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--out", default="runs/continual", metavar="DIR", help="output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_continual)


_DEFAULT_LR = {"classp": 0.1, "sgd": 0.1, "ewc": 0.1, "si": 0.1, "adam": 1e-3, "adagrad": 0.01}
_DEFAULT_TASKS = {"domain-shift": 2}


def _cmd_continual(args) -> int:
    from ..studies.continual import ContinualConfig, run_continual
    from .main import _output_dir

    if args.tasks is None:
        args.tasks = (
            max(len(args.task_data), 1)
            if args.benchmark == "pair"
            else _DEFAULT_TASKS.get(args.benchmark, 5)
        )
    if args.tasks < 1:
        raise ValueError(f"--tasks must be an integer >= 1, got {args.tasks}")
    if args.epochs_per_task < 1:
        raise ValueError(f"--epochs-per-task must be an integer >= 1, got {args.epochs_per_task}")
    lr = args.lr if args.lr is not None else _DEFAULT_LR.get(args.optimizer, 0.1)
    try:
        cfg = ContinualConfig(
            benchmark=args.benchmark,
            scenario=args.scenario,
            n_tasks=args.tasks,
            task_data=tuple(args.task_data),
            dataset=args.dataset,
            w_max=None if args.no_clip else 1.0,
            split=args.split,
            split_seed=args.split_seed,
            test_fraction=args.test_fraction,
            biases=args.biases,
            pulse_step=args.pulse_step,
            epochs_first_task=args.epochs_first_task,
            si_c=args.si_c,
            si_xi=args.si_xi,
            optimizer=args.optimizer,
            device=args.device,
            epochs_per_task=args.epochs_per_task,
            batch_size=args.batch_size,
            hidden=tuple(args.hidden),
            lr=lr,
            lr_after=args.lr_after,
            threshold=args.threshold,
            eps=args.eps,
            p=args.p,
            accumulator=args.accumulator,
            lam=args.lam,
            fisher=args.fisher,
            max_per_task=args.max_per_task,
            n_max=args.n_max,
            seed=args.seed,
        )
    except ValueError as exc:
        raise ValueError(f"--{_option_of(str(exc))}: {exc}") from None
    try:  # load the data before creating the output folder (a missing IDX file is an error)
        tasks = cfg.load_tasks()
    except (ValueError, OSError) as exc:
        opt = "--task-data" if cfg.benchmark == "pair" else "--benchmark"
        raise ValueError(f"{opt}: {exc}") from None
    out = _output_dir(args.out, "--out")
    res = run_continual(cfg, out=out, tasks=tasks, progress=not args.quiet and sys.stderr.isatty())
    m = res.metrics
    label = f"{cfg.optimizer}-{cfg.device}"
    print(
        f"{label}: average accuracy {m['average_accuracy']:.4f}, forgetting "
        f"{m['forgetting']:.4f}, backward transfer {m['backward_transfer']:.4f}, final task "
        f"{m['final_task_accuracy']:.4f}"
    )
    print(f"wrote {res.path} and {out / f'accuracy_matrix_{label}.png'}")
    return 0


_OPTION_NAMES = {
    "n_tasks": "tasks",
    "epochs_per_task": "epochs-per-task",
    "batch_size": "batch-size",
    "lr_after": "lr-after",
    "max_per_task": "max-per-task",
    "n_max": "n-max",
    "task_data": "task-data",
    "epochs_first_task": "epochs-first-task",
    "pulse_step": "pulse-step",
    "split_seed": "split-seed",
    "test_fraction": "test-fraction",
    "si_c": "si-c",
    "si_xi": "si-xi",
}


def _option_of(message: str) -> str:
    """The command-line option that a ``ValueError`` message starting with a field names."""
    field = message.split(" ", 1)[0]
    return _OPTION_NAMES.get(field, field.replace("_", "-"))


def is_continual_file(path) -> bool:
    """True when ``path`` is a results file whose root attribute ``kind`` is ``continual``."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            kind = f.attrs.get("kind", "")
    except OSError:
        return False
    if isinstance(kind, bytes):
        kind = kind.decode()
    return kind == "continual"


def show_continual(path, *, as_json: bool) -> int:
    """Print the runs of a continual results file (``--json``: one object per run)."""
    from ..results.store import read_results

    res = read_results(Path(path))
    records = []
    for label, run in res["runs"].items():
        fin = run["final"]
        R = fin.get("accuracy_matrix")
        records.append(
            {
                "label": label,
                "device": run["device"],
                "optimizer": fin.get("optimizer", run["rule"]),
                "accuracy_matrix": None if R is None else [[float(v) for v in row] for row in R],
                "average_accuracy": fin.get("average_accuracy"),
                "forgetting": fin.get("forgetting"),
                "backward_transfer": fin.get("backward_transfer"),
                "pulses": fin.get("total_pulses"),
                "complete": bool(run["complete"] and res["complete"]),
            }
        )
    if as_json:
        from .main import _jsonable

        print(json.dumps(_jsonable(records), indent=2, allow_nan=False))
    else:
        for r in records:
            acc = r["average_accuracy"]
            forg = r["forgetting"]
            print(
                f"{r['label']}: average accuracy "
                f"{'-' if acc is None else f'{acc:.4f}'}, forgetting "
                f"{'-' if forg is None else f'{forg:.4f}'}, complete {r['complete']}"
            )
    return 0
