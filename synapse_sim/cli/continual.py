"""``synapse-sim continual``: continual-learning benchmarks (CLASSP and baselines).

Options left out take the :class:`~synapse_sim.studies.continual.ContinualConfig` defaults (5
tasks for permuted and split, 2 for domain-shift; learning rate 0.1, Adam 1e-3, AdaGrad 0.01).
:func:`show_continual` prints a ``kind == "continual"`` results file for ``synapse-sim show``.
"""

from __future__ import annotations

from pathlib import Path

from .common import (
    add_hidden_option,
    add_output_options,
    fmt,
    given_fields,
    make_config,
    print_records,
    results_kind,
    run_into_out,
)

__all__ = ["add_parser", "run", "is_continual_file", "show_continual"]


def add_parser(subparsers) -> None:
    """Register ``synapse-sim continual`` (option defaults: ContinualConfig's)."""
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
        default=None,
        help="permuted, split, domain-shift (digits then MNIST-5k at 8x8) or pair (the datasets "
        "of --task-data); default permuted",
    )
    p.add_argument("--scenario", default=None, help="split: task, domain or class")
    p.add_argument("--dataset", default=None, help="permuted/split: mnist5k (default) or digits")
    p.add_argument(
        "--tasks",
        type=int,
        default=None,
        help="number of tasks (default: 5 permuted/split, 2 domain-shift, all of --task-data)",
    )
    p.add_argument(
        "--task-data",
        nargs="+",
        default=None,
        metavar="DATASET",
        help="pair: one dataset per task, e.g. idx:MNIST_DIR idx:FASHION_DIR",
    )
    p.add_argument(
        "--optimizer",
        default=None,
        help="classp, sgd, adam, adagrad, ewc or si (default classp)",
    )
    p.add_argument("--device", default=None, help="'software' or a device preset")
    p.add_argument(
        "--pulse-step",
        type=float,
        default=None,
        help="software only: round every update to pulses of this size on float weights "
        "(an ideal linear device, e.g. 0.005)",
    )
    p.add_argument("--epochs-per-task", type=int, default=None, help="epochs per task (default 2)")
    p.add_argument(
        "--epochs-first-task",
        type=int,
        default=None,
        help="epochs of task 1 (the paper's shape: E1 unscaled, then --epochs-per-task)",
    )
    p.add_argument("--batch-size", type=int, default=None, help="batch size (default 16)")
    add_hidden_option(p, "100")
    p.add_argument(
        "--lr",
        type=float,
        default=None,
        help="learning rate / CLASSP alpha (default 0.1; adam 1e-3, adagrad 0.01)",
    )
    p.add_argument("--lr-after", type=float, default=None, help="CLASSP alpha after task 1")
    p.add_argument("--threshold", type=float, default=None, help="CLASSP theta (default 1e-5)")
    p.add_argument("--eps", type=float, default=None, help="CLASSP eps (default 1e-5)")
    p.add_argument("--p", type=float, default=None, help="CLASSP exponent (default 1)")
    p.add_argument("--accumulator", default=None, help="device CLASSP: gradient or pulses")
    p.add_argument("--lam", type=float, default=None, help="EWC lambda (default 5000)")
    p.add_argument("--fisher", default=None, help="EWC Fisher: reference, batch, sample")
    p.add_argument("--si-c", type=float, default=None, help="SI strength c (default 0.1)")
    p.add_argument("--si-xi", type=float, default=None, help="SI damping xi (default 1e-3)")
    p.add_argument("--biases", action="store_true", help="float biases in every layer")
    p.add_argument(
        "--no-clip",
        action="store_true",
        help="software: do not clip weights to [-1, 1] (w_max None)",
    )
    p.add_argument(
        "--split",
        default=None,
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
    p.add_argument("--n-max", type=int, default=None, help="device pulse cap (default 31)")
    add_output_options(p, out="runs/continual", resume=True)
    p.set_defaults(func=run)


#: ContinualConfig field -> option (where it is not the field's name with dashes).
OPTIONS = {"n_tasks": "tasks"}


def run(args) -> int:
    """Run ``synapse-sim continual``."""
    from ..studies.continual import ContinualConfig, ContinualStudy

    kw = given_fields(args, ContinualConfig)  # --tasks is n_tasks: named in OPTIONS
    if args.tasks is not None:
        kw["n_tasks"] = args.tasks
    if args.no_clip:
        kw["w_max"] = None
    cfg = make_config(ContinualConfig, kw, OPTIONS)
    try:  # load the data before creating the output folder (a missing IDX file is an error)
        tasks = cfg.load_tasks()
    except (ValueError, OSError) as exc:
        opt = "--task-data" if cfg.benchmark == "pair" else "--benchmark"
        raise ValueError(f"{opt}: {exc}") from None
    study = ContinualStudy(cfg, tasks=tasks)
    res = run_into_out(study, args)
    m = res.metrics
    print(
        f"{study.label}: average accuracy {m['average_accuracy']:.4f}, forgetting "
        f"{m['forgetting']:.4f}, backward transfer {m['backward_transfer']:.4f}, final task "
        f"{m['final_task_accuracy']:.4f}"
    )
    print(f"wrote {res.path} and {res.path.parent / f'accuracy_matrix_{study.label}.png'}")
    return 0


def is_continual_file(path) -> bool:
    """True when ``path`` is a results file whose root attribute ``kind`` is ``continual``."""
    return results_kind(path) == "continual"


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
    return print_records(
        records,
        as_json,
        lambda r: (
            f"{r['label']}: average accuracy {fmt(r['average_accuracy'])}, forgetting "
            f"{fmt(r['forgetting'])}, complete {r['complete']}"
        ),
    )
