"""``synapse-sim bars``: the bars test of probabilistic sparse coding (``specs/sparse_coding.md``).

Registered in :mod:`synapse_sim.cli.main` through :func:`_add_bars`. Runs the published bars
setting of
the chosen model (``bsc``, ``tsc``, ``dsc``, ``mca``, ``mmca`` or ``gsc``), optionally with the
dictionary on a device array (``--device PRESET``), and writes ``results.h5`` (``kind="bars"``,
one run labelled by the model, per-iteration ``log_likelihood``, ``pi`` (the probability that a
latent is non-zero; mean over latents for GSC), ``sigma``, ``n_use``, ``T``; final
``recovered_bars``, ``pi`` (scalar, or the vector of DSC/GSC), ``sigma``, ``matched_cost_max``,
test-set ``score``, device ``pulses`` and ``reads``; weights ``W``) and ``fields.png`` (the
learned fields) to ``--out``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from .argtypes import int_at_least

__all__ = ["BARS_MODELS", "run_bars"]

#: Models the ``bars`` command can run.
BARS_MODELS = ("bsc", "tsc", "dsc", "mca", "mmca", "gsc")

#: Weight range of the device array in the bars test (1.6 x the bar amplitude, spec section 9).
BARS_W_RANGE = 16.0


def _preset(name: str) -> str:
    """argparse type: a device preset name."""
    import argparse

    import devices

    if name not in devices.names():
        raise argparse.ArgumentTypeError(
            f"unknown device preset {name!r}; choose from {', '.join(devices.names())}"
        )
    return name


def _add_bars(subparsers) -> None:
    p = subparsers.add_parser(
        "bars",
        help="the bars test of probabilistic sparse coding (BSC, TSC, DSC, MCA, MMCA, GSC)",
        description="Generate the 5x5 bars data (H = 10) from the model, train it with the "
        "published setting (Expectation Truncation, annealing, data truncation) and report "
        "recovered bars, pi, sigma and the likelihood curve; writes results.h5 and fields.png "
        "to --out. With --device the dictionary lives on a device array of that preset.",
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
        help="EM iterations (default: the published setting: bsc 150, tsc 300, dsc 100, mca "
        "300, mmca 300, gsc 150); the schedule is stretched",
    )
    p.add_argument(
        "--device",
        default=None,
        type=_preset,
        metavar="PRESET",
        help="hold W on a differential device array of this preset (weight range +-16; "
        "default: float weights)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar and no curve printout")
    p.set_defaults(func=_cmd_bars)


def _p_active(est, model):
    if model == "dsc":
        return float(1.0 - est.pi_[0])
    if model == "gsc":
        return float(np.mean(est.pi_))
    return float(est.pi_)


def run_bars(
    model: str,
    seed: int,
    out,
    iterations: int | None = None,
    progress: bool = False,
    device: str | None = None,
):
    """Run the bars test and write ``results.h5`` and ``fields.png`` into ``out``.

    Parameters
    ----------
    model : {"bsc", "tsc", "dsc", "mca", "mmca", "gsc"}
        Model.
    seed : int
        Seed of the data (``numpy.random.default_rng(seed)``), of the initialization and of
        the device array.
    out : path
        Output folder (created).
    iterations : int, optional
        EM iterations (default: the published setting).
    progress : bool
        Show a tqdm bar.
    device : str, optional
        Device preset name: ``W`` lives on a differential array of that preset with weight range
        ``[-16, 16]`` (spec section 9; full EM step, nominal pulse rule).

    Returns
    -------
    dict
        ``model``, ``recovered_bars``, ``pi``, ``sigma``, ``log_likelihood`` (list),
        ``matched_costs`` (list), ``test_score``, ``files`` (list of paths).
    """
    from tqdm import tqdm

    from learning_rules.sparse_coding import (
        BARS_SETTINGS,
        MODELS,
        Schedule,
        bars_data,
        bars_dictionary,
        match_fields,
        plot_fields,
    )

    from ..results.store import ResultsWriter

    if model not in BARS_MODELS:
        raise ValueError(f"model must be one of {BARS_MODELS}, got {model!r}")
    cfg = BARS_SETTINGS[model]
    steps = cfg["steps"] if iterations is None else int(iterations)
    out = Path(out)
    W_gt = cfg["amplitude"] * bars_dictionary(cfg["H"])
    rng = np.random.default_rng(seed)
    keys = {"dsc": ("values", "pi", "sigma"), "gsc": ("pi", "mu", "psi_sq", "sigma_sq")}
    params = {k: cfg[k] for k in keys.get(model, ("pi", "sigma"))}
    Y, _ = bars_data(model, {"W": W_gt, **params}, cfg["N"], rng)
    n_train = int(cfg["train_fraction"] * cfg["N"])
    Y_train, Y_test = Y[:n_train], Y[n_train:]
    schedule = Schedule(steps, T=cfg["T"], Ncut_factor=cfg["Ncut_factor"])
    kwargs = {"values": cfg["values"]} if model == "dsc" else {}
    arr = None
    if device is not None:
        import devices

        arr = devices.DeviceArray(
            (W_gt.shape[0], cfg["H"]), devices.get(device), w_max=BARS_W_RANGE, seed=seed
        )
    est = MODELS[model](
        cfg["H"],
        h_prime=cfg["h_prime"],
        gamma=cfg["gamma"],
        schedule=schedule,
        random_state=seed,
        weights=arr,
        **kwargs,
    )
    config = {
        "model": model,
        "H": cfg["H"],
        "D": int(W_gt.shape[0]),
        "N": cfg["N"],
        "n_train": n_train,
        "h_prime": cfg["h_prime"],
        "gamma": cfg["gamma"],
        "truth": {k: np.asarray(v, dtype=np.float64) for k, v in params.items()},
        "amplitude": cfg["amplitude"],
        "steps": steps,
        "device": device or "float",
        "schedule": {"T": cfg["T"], "Ncut_factor": cfg["Ncut_factor"]},
    }
    path = out / "results.h5"
    with ResultsWriter(path, config, seed=seed, kind="bars") as w:
        w.add_run(
            model, device=device or "float", rule="et", dataset="bars", epochs=steps, config=config
        )
        for _ in tqdm(range(steps), desc=f"{model} bars", disable=not progress, leave=False):
            est.partial_fit(Y_train)
            w.append_epoch(
                model,
                log_likelihood=est.log_likelihood_[-1],
                pi=_p_active(est, model),
                sigma=est.sigma_,
                n_use=int(est.n_use_[-1]),
                T=est.schedule_values_["T"][-1],
            )
        fields = est.W_ * est.mu_ if model == "gsc" else est.W_
        truth = W_gt * cfg["mu"] if model == "gsc" else W_gt
        _, costs, n_rec = match_fields(fields, truth, sign_invariant=model == "tsc")
        test_score = est.score(Y_test)
        pi_final = np.asarray(est.pi_, dtype=np.float64)
        w.set_final(
            model,
            {
                "recovered_bars": n_rec,
                "pi": float(pi_final) if pi_final.ndim == 0 else pi_final,
                "sigma": est.sigma_,
                "matched_cost_max": float(costs.max()),
                "test_score": test_score,
                "pulses": int(est.n_pulses_),
                "reads": int(est.n_reads_),
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
        fields,
        ax=ax,
        title=f"{model.upper()} learned fields, seed {seed}: {n_rec}/{cfg['H']} bars, "
        f"pi={_p_active(est, model):.3f}, sigma={est.sigma_:.3f}",
    )
    fig.savefig(png, dpi=100)
    return {
        "model": model,
        "recovered_bars": n_rec,
        "pi": pi_final.tolist() if pi_final.ndim else float(pi_final),
        "p_active": _p_active(est, model),
        "sigma": est.sigma_,
        "log_likelihood": est.log_likelihood_.tolist(),
        "matched_costs": costs.tolist(),
        "test_score": test_score,
        "pulses": int(est.n_pulses_),
        "files": [path, png],
    }


def _cmd_bars(args) -> int:
    from .main import _output_dir

    out = _output_dir(args.out, "--out")
    tty = sys.stdout.isatty() and sys.stderr.isatty()
    info = run_bars(
        args.model,
        args.seed,
        out,
        iterations=args.iterations,
        progress=not args.quiet and tty,
        device=args.device,
    )
    ll = info["log_likelihood"]
    from learning_rules.sparse_coding import BARS_SETTINGS

    cfg = BARS_SETTINGS[args.model]
    pi_txt = (
        f"{info['pi']:.4f}"
        if isinstance(info["pi"], float)
        else "[" + ", ".join(f"{p:.3f}" for p in info["pi"]) + "]"
    )
    print(f"model: {info['model']}  seed: {args.seed}  iterations: {len(ll)}")
    print(f"recovered bars: {info['recovered_bars']}/10 (matched cost < 1.0)")
    print(f"pi: {pi_txt} (true {cfg['pi']})  sigma: {info['sigma']:.4f} (true {cfg['sigma']})")
    if args.device is not None:
        print(f"device: {args.device}  pulses: {info['pulses']}")
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

    from ..results.store import read_results

    res = read_results(path)
    records = []
    for label, run in res["runs"].items():
        final = run["final"]
        pi = final.get("pi")
        if isinstance(pi, np.ndarray):
            pi = pi.tolist() if pi.ndim else float(pi)
        records.append(
            {
                "model": label,
                "recovered_bars": final.get("recovered_bars"),
                "pi": pi,
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
            pi = r["pi"]
            pi = (
                f"{pi:.4f}"
                if isinstance(pi, float)
                else "[" + ", ".join(f"{p:.3f}" for p in pi) + "]"
            )
            print(
                f"{r['model']}: recovered bars {r['recovered_bars']}/10, pi {pi}, "
                f"sigma {r['sigma']:.4f}, final log-likelihood {last} ({len(ll)} iterations)"
            )
    return 0
