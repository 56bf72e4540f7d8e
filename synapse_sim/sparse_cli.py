"""``synapse-sim bars``: the bars test of probabilistic sparse coding (``specs/sparse_coding.md``).

Registered in :mod:`synapse_sim.cli` through :func:`_add_bars`. Runs the published bars setting of
the chosen model (``bsc`` or ``tsc`` so far) and writes ``results.h5`` (``kind="bars"``, one run
labelled by the model, per-iteration ``log_likelihood``, ``pi``, ``sigma``, ``n_use``, ``T``;
final ``recovered_bars``, ``pi``, ``sigma``, ``matched_cost_max``, test-set ``score``; weights
``W``) and ``fields.png`` (the learned fields) to ``--out``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ._argtypes import int_at_least

__all__ = ["BARS_MODELS", "run_bars"]

#: Models the ``bars`` command can run.
BARS_MODELS = ("bsc", "tsc")


def _add_bars(subparsers) -> None:
    p = subparsers.add_parser(
        "bars",
        help="the bars test of probabilistic sparse coding (BSC/TSC, Expectation Truncation)",
        description="Generate the 5x5 bars data (H = 10) from the model (BSC or TSC), train it "
        "with the published setting (annealing and ET data truncation) and report recovered "
        "bars, pi, sigma and the likelihood curve; writes results.h5 and fields.png to --out.",
    )
    p.add_argument("--model", default="bsc", choices=BARS_MODELS, help="model (default bsc)")
    p.add_argument(
        "--seed", type=int_at_least(0), default=0, help="seed of data and init (default 0)"
    )
    p.add_argument("--out", default="runs/bars", metavar="DIR", help="output folder")
    p.add_argument(
        "--iterations",
        type=int_at_least(1),
        default=None,
        metavar="N",
        help="EM iterations (default: the published setting, bsc 150, tsc 300); the schedule "
        "is stretched",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar and no curve printout")
    p.set_defaults(func=_cmd_bars)


def run_bars(model: str, seed: int, out, iterations: int | None = None, progress: bool = False):
    """Run the bars test and write ``results.h5`` and ``fields.png`` into ``out``.

    Parameters
    ----------
    model : {"bsc", "tsc"}
        Model.
    seed : int
        Seed of the data (``numpy.random.default_rng(seed)``) and of the initialization.
    out : path
        Output folder (created).
    iterations : int, optional
        EM iterations (default: the published setting).
    progress : bool
        Show a tqdm bar.

    Returns
    -------
    dict
        ``model``, ``recovered_bars``, ``pi``, ``sigma``, ``log_likelihood`` (list),
        ``matched_costs`` (list), ``test_score``, ``files`` (list of paths).
    """
    import numpy as np
    from tqdm import tqdm

    from learning_rules.sparse_coding import (
        BARS_SETTINGS,
        BSC,
        TSC,
        Schedule,
        bars_data,
        bars_dictionary,
        match_fields,
        plot_fields,
    )

    from .store import ResultsWriter

    if model not in BARS_MODELS:
        raise ValueError(f"model must be one of {BARS_MODELS}, got {model!r}")
    cfg = BARS_SETTINGS[model]
    steps = cfg["steps"] if iterations is None else int(iterations)
    out = Path(out)
    W_gt = cfg["amplitude"] * bars_dictionary(cfg["H"])
    rng = np.random.default_rng(seed)
    Y, _ = bars_data(model, {"W": W_gt, "pi": cfg["pi"], "sigma": cfg["sigma"]}, cfg["N"], rng)
    n_train = int(cfg["train_fraction"] * cfg["N"])
    Y_train, Y_test = Y[:n_train], Y[n_train:]
    schedule = Schedule(steps, T=cfg["T"], Ncut_factor=cfg["Ncut_factor"])
    est = {"bsc": BSC, "tsc": TSC}[model](
        cfg["H"],
        h_prime=cfg["h_prime"],
        gamma=cfg["gamma"],
        schedule=schedule,
        random_state=seed,
    )
    config = {
        "model": model,
        "H": cfg["H"],
        "D": int(W_gt.shape[0]),
        "N": cfg["N"],
        "n_train": n_train,
        "h_prime": cfg["h_prime"],
        "gamma": cfg["gamma"],
        "pi_true": cfg["pi"],
        "sigma_true": cfg["sigma"],
        "amplitude": cfg["amplitude"],
        "steps": steps,
        "schedule": {"T": cfg["T"], "Ncut_factor": cfg["Ncut_factor"]},
    }
    path = out / "results.h5"
    with ResultsWriter(path, config, seed=seed, kind="bars") as w:
        w.add_run(model, device="float", rule="et", dataset="bars", epochs=steps, config=config)
        for _ in tqdm(range(steps), desc=f"{model} bars", disable=not progress, leave=False):
            est.partial_fit(Y_train)
            w.append_epoch(
                model,
                log_likelihood=est.log_likelihood_[-1],
                pi=est.pi_,
                sigma=est.sigma_,
                n_use=int(est.n_use_[-1]),
                T=est.schedule_values_["T"][-1],
            )
        _, costs, n_rec = match_fields(est.W_, W_gt, sign_invariant=model == "tsc")
        test_score = est.score(Y_test)
        w.set_final(
            model,
            {
                "recovered_bars": n_rec,
                "pi": est.pi_,
                "sigma": est.sigma_,
                "matched_cost_max": float(costs.max()),
                "test_score": test_score,
            },
            weights={"W": est.W_},
        )
        w.mark_complete(model)
    png = out / "fields.png"
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 2.4), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    plot_fields(
        est.W_,
        ax=ax,
        title=f"{model.upper()} learned fields, seed {seed}: {n_rec}/{cfg['H']} bars, "
        f"pi={est.pi_:.3f}, sigma={est.sigma_:.3f}",
    )
    fig.savefig(png, dpi=100)
    return {
        "model": model,
        "recovered_bars": n_rec,
        "pi": est.pi_,
        "sigma": est.sigma_,
        "log_likelihood": est.log_likelihood_.tolist(),
        "matched_costs": costs.tolist(),
        "test_score": test_score,
        "files": [path, png],
    }


def _cmd_bars(args) -> int:
    from .cli import _output_dir

    out = _output_dir(args.out, "--out")
    tty = sys.stdout.isatty() and sys.stderr.isatty()
    info = run_bars(
        args.model, args.seed, out, iterations=args.iterations, progress=not args.quiet and tty
    )
    ll = info["log_likelihood"]
    print(f"model: {info['model']}  seed: {args.seed}  iterations: {len(ll)}")
    print(f"recovered bars: {info['recovered_bars']}/10 (matched cost < 1.0)")
    print(f"pi: {info['pi']:.4f} (true 0.2)  sigma: {info['sigma']:.4f} (true 2.0)")
    print(f"log-likelihood per point: first {ll[0]:.4f}, last {ll[-1]:.4f}")
    if not args.quiet:
        stride = max(1, len(ll) // 10)
        curve = ", ".join(f"{t}: {ll[t]:.3f}" for t in range(0, len(ll), stride))
        print(f"log-likelihood curve (iteration: value): {curve}")
    print(f"wrote {', '.join(str(f) for f in info['files'])}")
    return 0


def is_bars_file(path) -> bool:
    """True when ``path`` is an HDF5 results file with the root attribute ``kind == "bars"``."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            kind = f.attrs.get("kind", "")
    except OSError:
        return False
    if isinstance(kind, bytes):
        kind = kind.decode()
    return kind == "bars"


def show_bars(path, as_json: bool = False) -> int:
    """Print a bars results file (model, recovered bars, pi, sigma, log-likelihood curve).

    Parameters
    ----------
    path : path
        ``results.h5`` written by ``synapse-sim bars``.
    as_json : bool
        One JSON object per run (a list) instead of a text summary.

    Returns
    -------
    int
        Exit status 0.
    """
    import json

    from .store import read_results

    res = read_results(path)
    records = []
    for label, run in res["runs"].items():
        final = run["final"]
        records.append(
            {
                "model": label,
                "recovered_bars": final.get("recovered_bars"),
                "pi": final.get("pi"),
                "sigma": final.get("sigma"),
                "log_likelihood": [float(v) for v in run["metrics"].get("log_likelihood", [])],
            }
        )
    if as_json:
        print(json.dumps(records, indent=2))
    else:
        for r in records:
            ll = r["log_likelihood"]
            last = f"{ll[-1]:.4f}" if ll else "-"
            print(
                f"{r['model']}: recovered bars {r['recovered_bars']}/10, pi {r['pi']:.4f}, "
                f"sigma {r['sigma']:.4f}, final log-likelihood {last} ({len(ll)} iterations)"
            )
    return 0
