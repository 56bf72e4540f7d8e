"""The bars test of probabilistic sparse coding (``specs/sparse_coding.md``).

Runs the published bars setting of one model (``bsc``, ``tsc``, ``dsc``, ``mca``, ``mmca`` or
``gsc``), optionally with the dictionary on a device array, and writes ``results.h5``
(``kind="bars"``, one run labelled by the model, per-iteration ``log_likelihood``, ``pi`` (the
probability that a latent is non-zero; mean over latents for GSC), ``sigma``, ``n_use``, ``T``;
final ``recovered_bars``, ``pi`` (scalar, or the vector of DSC/GSC), ``sigma``,
``matched_cost_max``, test-set ``score``, device ``pulses`` and ``reads``; weights ``W``) and
``fields.png`` (the learned fields).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from devices.validation import check_choice, check_int

from .base import RunContext, field_errors, run_study

__all__ = [
    "BARS_MODELS",
    "BARS_RULES",
    "BARS_W_RANGE",
    "BarsConfig",
    "BarsStudy",
    "bars_point",
    "run_bars",
]

#: Models the bars test can run.
BARS_MODELS = ("bsc", "tsc", "dsc", "mca", "mmca", "gsc")

#: Update methods of the dictionary on a device array (``pulse_request`` ``method``).
BARS_RULES = ("bidirectional", "unidirectional")

#: Weight range of the device array in the bars test (1.6 x the bar amplitude, spec section 9).
BARS_W_RANGE = 16.0


@dataclass(frozen=True, kw_only=True)
class BarsConfig:
    """One bars test.

    Parameters
    ----------
    model : {"bsc", "tsc", "dsc", "mca", "mmca", "gsc"}
    seed : int
        Seed of the data (``numpy.random.default_rng(seed)``), of the initialization and of
        the device array.
    iterations : int or None
        EM iterations (default: the published setting; the schedule is stretched).
    device : str or None
        Device preset: ``W`` lives on a differential array of that preset with weight range
        ``[-16, 16]`` (spec section 9; full EM step, nominal pulse rule). None: float weights.
    rule : {"bidirectional", "unidirectional"}
        Update method of the array (unidirectional: pairs past 0.9 of the range are refreshed
        with read-verify, as :class:`learning_rules.PulseRule` does). Needs ``device``.
    overrides : dict
        Device parameters replaced on the preset (``levels_ltp``, ``nl_ltp``, ``c2c_sigma``,
        ``sigma_gmax``, ...; :func:`devices.get`). Needs ``device``.
    """

    model: str = "bsc"
    seed: int = 0
    iterations: int | None = None
    device: str | None = None
    rule: str = "bidirectional"
    overrides: dict = field(default_factory=dict)

    def __post_init__(self):
        with field_errors("model"):
            if self.model not in BARS_MODELS:
                raise ValueError(f"model must be one of {BARS_MODELS}, got {self.model!r}")
        with field_errors("seed"):
            check_int("seed", self.seed, lo=0)
        if self.iterations is not None:
            with field_errors("iterations"):
                check_int("iterations", self.iterations, lo=1)
        if self.device is not None:
            import devices

            with field_errors("device"):
                check_choice("device", self.device, devices.names())
        with field_errors("rule"):
            check_choice("rule", self.rule, BARS_RULES)
        with field_errors("overrides"):
            if not isinstance(self.overrides, dict):
                raise TypeError(f"overrides must be a dict, got {self.overrides!r}")
        if self.device is None and (self.overrides or self.rule != "bidirectional"):
            bad = "overrides" if self.overrides else "rule"
            with field_errors(bad):
                raise ValueError(
                    f"{bad} {getattr(self, bad)!r} needs a device (float weights have no device "
                    "parameters and no pulse rule)"
                )
        if self.device is not None and self.overrides:
            with field_errors("overrides"):
                self.device_model()

    def device_model(self):
        """The device model of the array (the preset with ``overrides``), or None."""
        if self.device is None:
            return None
        import devices

        return devices.get(self.device, **self.overrides)

    def to_dict(self) -> dict:
        """The fields as a plain dict."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def run_bars(
    model: str,
    seed: int,
    out,
    iterations: int | None = None,
    progress: bool = False,
    device: str | None = None,
    mode: str = "overwrite",
):
    """Run the bars test and write ``results.h5`` and ``fields.png`` into ``out``.

    Parameters
    ----------
    model : {"bsc", "tsc", "dsc", "mca", "mmca", "gsc"}
        Model.
    seed : int
        Seed of the data, of the initialization and of the device array.
    out : path
        Output folder (created).
    iterations : int, optional
        EM iterations (default: the published setting).
    progress : bool
        Show a tqdm bar.
    device : str, optional
        Device preset name (see :class:`BarsConfig`).

    Returns
    -------
    dict
        ``model``, ``recovered_bars``, ``pi``, ``p_active``, ``sigma``, ``log_likelihood``
        (list), ``matched_costs`` (list), ``test_score``, ``pulses``, ``files`` (list of paths).
    """
    config = BarsConfig(model=model, seed=seed, iterations=iterations, device=device)
    return run_study(BarsStudy(config), out=Path(out), progress=progress, threads=None, mode=mode)


def bars_point(config: BarsConfig) -> dict:
    """Run one bars test in memory (no files; what a sweep runs per point and instance).

    Returns
    -------
    dict
        What :func:`run_bars` returns, without ``files``.
    """
    from .base import RunContext

    study = BarsStudy(config)
    study.prepare()
    result = study.execute(RunContext(writer=None, progress=False))
    result.pop("files")
    return result


def _p_active(est, model):
    if model == "dsc":
        return float(1.0 - est.pi_[0])
    if model == "gsc":
        return float(np.mean(est.pi_))
    return float(est.pi_)


class BarsStudy:
    """The :class:`~synapse_sim.studies.base.Study` of :func:`run_bars`."""

    kind = "bars"
    uses_torch = False

    def __init__(self, config: BarsConfig):
        self.config = config
        self.seed = config.seed

    def prepare(self) -> None:
        """Draw the data and build the estimator (and device array)."""
        from learning_rules.sparse_coding import (
            BARS_SETTINGS,
            MODELS,
            Schedule,
            bars_data,
            bars_dictionary,
        )

        model, seed, device = self.config.model, self.config.seed, self.config.device
        cfg = self.settings = BARS_SETTINGS[model]
        iterations = self.config.iterations
        self.steps = steps = cfg["steps"] if iterations is None else int(iterations)
        self.W_gt = W_gt = cfg["amplitude"] * bars_dictionary(cfg["H"])
        rng = np.random.default_rng(seed)
        keys = {"dsc": ("values", "pi", "sigma"), "gsc": ("pi", "mu", "psi_sq", "sigma_sq")}
        params = {k: cfg[k] for k in keys.get(model, ("pi", "sigma"))}
        Y, _ = bars_data(model, {"W": W_gt, **params}, cfg["N"], rng)
        self.n_train = n_train = int(cfg["train_fraction"] * cfg["N"])
        self.Y_train, self.Y_test = Y[:n_train], Y[n_train:]
        schedule = Schedule(steps, T=cfg["T"], Ncut_factor=cfg["Ncut_factor"])
        kwargs = {"values": cfg["values"]} if model == "dsc" else {}
        arr = None
        if device is not None:
            import devices

            arr = devices.DeviceArray(
                (W_gt.shape[0], cfg["H"]),
                self.config.device_model(),
                w_max=BARS_W_RANGE,
                seed=seed,
            )
        self.est = MODELS[model](
            cfg["H"],
            h_prime=cfg["h_prime"],
            gamma=cfg["gamma"],
            schedule=schedule,
            random_state=seed,
            weights=arr,
            pulse_options=None if arr is None else {"method": self.config.rule},
            **kwargs,
        )
        self.params = params

    def results_config(self) -> dict:
        """Root config of ``results.h5`` (also the run's config)."""
        cfg, model = self.settings, self.config.model
        extra = {}  # written only when set (files of the default run stay as they were)
        if self.config.rule != "bidirectional":
            extra["rule"] = self.config.rule
        if self.config.overrides:
            extra["overrides"] = dict(self.config.overrides)
        return {
            "model": model,
            "H": cfg["H"],
            "D": int(self.W_gt.shape[0]),
            "N": cfg["N"],
            "n_train": self.n_train,
            "h_prime": cfg["h_prime"],
            "gamma": cfg["gamma"],
            "truth": {k: np.asarray(v, dtype=np.float64) for k, v in self.params.items()},
            "amplitude": cfg["amplitude"],
            "steps": self.steps,
            "device": self.config.device or "float",
            "schedule": {"T": cfg["T"], "Ncut_factor": cfg["Ncut_factor"]},
            **extra,
        }

    def execute(self, ctx: RunContext) -> dict:
        """EM iterations, then the matched fields and the test score."""
        from learning_rules.sparse_coding import match_fields

        model, est, cfg, w = self.config.model, self.est, self.settings, ctx.writer
        device = self.config.device
        if w is not None:
            w.add_run(
                model,
                device=device or "float",
                rule="et",
                dataset="bars",
                epochs=self.steps,
                config=self.results_config(),
            )
        pulses, refreshes = [], []
        for _ in ctx.bar(desc=f"{model} bars", unit="it", iterable=range(self.steps)):
            before = (getattr(est, "n_pulses_", 0), getattr(est, "n_refreshes_", 0))
            est.partial_fit(self.Y_train)
            pulses.append(int(est.n_pulses_ - before[0]))
            refreshes.append(int(est.n_refreshes_ - before[1]))
            if w is not None:
                w.append_epoch(
                    model,
                    log_likelihood=est.log_likelihood_[-1],
                    pi=_p_active(est, model),
                    sigma=est.sigma_,
                    n_use=int(est.n_use_[-1]),
                    T=est.schedule_values_["T"][-1],
                )
        self.fields = fields = est.W_ * est.mu_ if model == "gsc" else est.W_
        truth = self.W_gt * cfg["mu"] if model == "gsc" else self.W_gt
        _, costs, n_rec = match_fields(fields, truth, sign_invariant=model == "tsc")
        test_score = est.score(self.Y_test)
        pi_final = np.asarray(est.pi_, dtype=np.float64)
        if w is not None:
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
            "refreshes": int(est.n_refreshes_),
            "history": {
                "log_likelihood": est.log_likelihood_.tolist(),
                "sigma": est.sigma_history_.tolist(),
                "pulses": pulses,
                "refreshes": refreshes,
            },
            "files": [],
        }

    def save_outputs(self, result: dict, out: Path) -> list[Path]:
        """``fields.png``; ``result["files"]`` lists the results file and the figure."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        from learning_rules.sparse_coding import plot_fields

        model, est = self.config.model, self.est
        png = Path(out) / "fields.png"
        fig = Figure(figsize=(8, 2.4), layout="constrained")
        FigureCanvasAgg(fig)
        plot_fields(
            self.fields,
            ax=fig.subplots(),
            title=f"{model.upper()} learned fields, seed {self.config.seed}: "
            f"{result['recovered_bars']}/{self.settings['H']} bars, "
            f"pi={_p_active(est, model):.3f}, sigma={est.sigma_:.3f}",
        )
        fig.savefig(png, dpi=100)
        result["files"] = [Path(out) / "results.h5", png]
        return [png]
