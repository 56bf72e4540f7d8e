"""Inference over time: a trained network programmed onto devices, read as they drift.

:class:`InferConfig` names the device preset, the programming mode (``ideal`` / ``open_loop`` /
``verify``, :meth:`devices.DeviceArray.program`), the inference model of
:mod:`devices.inference` (programming noise, drift, 1/f read noise), the times after
programming and the number of device instances. :class:`InferStudy` programs every layer of a
:class:`Network` onto fresh device arrays for each instance, reads the weights at each time and
measures test accuracy, once as read and once with global drift compensation (a reference read
of each array with an all-ones input right after programming and again at each time; the ratio
rescales the array's outputs, as aihwkit's ``GlobalDriftCompensation`` and Joshi et al. 2020 do).

The network (:class:`~synapse_sim.studies.infer_network.Network`) comes from a ``train`` or
``compare`` (``mlp``) results file with saved weights (:meth:`Network.from_results`) or from a
torch MLP, plain or converted with :func:`synapse_sim.nn.convert` (:meth:`Network.from_torch`).
Each layer's weights are divided by their largest magnitude before programming (the device
range holds ``[-1, 1]``) and the outputs multiplied back (``weight_scaling="max"``).

Results: ``results.h5`` of kind ``infer``, one run per (programming, compensation), one "epoch"
per time (metrics ``time_s``, ``test_accuracy`` = mean over instances, ``test_accuracy_std``,
``test_accuracy_sem``, ``test_accuracy_min``, ``test_accuracy_max``), the per-instance
accuracies in ``final``;
``inference.png`` (accuracy vs time, log axis, confidence band and min-max band over
instances) and ``results.md``.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

import devices
from devices.converters import PartialSumADC
from devices.inference import ProgrammedArray, inference_model
from devices.validation import check_choice, check_int, check_real, did_you_mean

from .base import RunContext, field_errors, run_study
from .infer_network import Network

__all__ = [
    "DEFAULT_TIMES",
    "InferConfig",
    "InferResult",
    "InferStudy",
    "Network",
    "infer",
    "parse_time",
    "format_time",
    "infer_records",
    "markdown_table",
    "plot_inference",
]

#: Default evaluation times: 1 s, 1 h, 1 day, 1 month (30 days), 1 year (365 days).
DEFAULT_TIMES = (1.0, 3600.0, 86400.0, 30 * 86400.0, 365 * 86400.0)
_UNITS = {"s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0,
          "mo": 30 * 86400.0, "y": 365 * 86400.0}  # fmt: skip
PROGRAM_MODES = devices.PROGRAM_MODES
WEIGHT_SCALINGS = ("max", "none")


def parse_time(text) -> float:
    """Seconds of ``text``: a number of seconds or a number with a unit (``s``, ``m``/``min``,
    ``h``, ``d``, ``w``, ``mo`` = 30 days, ``y`` = 365 days), e.g. ``"1h"``, ``"30d"``."""
    if isinstance(text, (int, float, np.integer, np.floating)) and not isinstance(text, bool):
        return check_real("time", text, lo=0.0, lo_open=True)
    m = re.fullmatch(r"\s*([-+0-9.eE]+)\s*([a-z]*)\s*", str(text))
    if m is None or (m.group(2) and m.group(2) not in _UNITS):
        unit = m.group(2) if m else ""
        hint = did_you_mean(unit, list(_UNITS)) if unit else ""
        raise ValueError(
            f"time must be a number of seconds or a number with a unit "
            f"({', '.join(_UNITS)}), got {text!r}{hint}"
        )
    try:
        v = float(m.group(1))
    except ValueError:
        raise ValueError(f"time must start with a number, got {text!r}") from None
    return check_real("time", v * _UNITS.get(m.group(2) or "s"), lo=0.0, lo_open=True)


def format_time(t: float) -> str:
    """Short label of ``t`` seconds (``1 s``, ``1 h``, ``1 d``, ``30 d``, ``1 y``)."""
    for unit, s in (("y", 365 * 86400.0), ("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if t >= s:
            return f"{t / s:.3g} {unit}"
    return f"{t:.3g} s"


@dataclass(frozen=True, kw_only=True)
class InferConfig:
    """An inference-over-time experiment.

    Parameters
    ----------
    source : str or None
        A ``train`` or ``compare`` results file with saved weights (None when a
        :class:`Network` is given).
    run : str or None
        Run of ``source`` (default ``software``, else the first run with weights).
    device : str
        Device preset (:func:`devices.names`).
    overrides : dict
        Preset overrides (:func:`devices.get`).
    mapping : {"differential", "reference"}
    program : {"ideal", "open_loop", "verify"}
        Programming mode (:meth:`devices.DeviceArray.program`).
    noise : str
        Inference model (:func:`devices.inference.inference_model`): ``pcm`` (Joshi et al.
        2020), ``pcm_drift``, ``constant``, ``none``.
    noise_overrides : dict
        Fields of the inference model to replace.
    times : tuple of float
        Seconds after programming (each > 0).
    instances : int
        Device instances (fresh device draws, programming noise, drift exponents, reads).
    calibration_time : float
        When the drift-compensation reference is read (seconds after programming).
    weight_scaling : {"max", "none"}
        Divide each layer by its largest weight magnitude before programming (outputs scaled
        back), or program the weights as they are (clipped to ``[-1, 1]``).
    dataset : str or None
        Test data (default: the source's training dataset).
    max_test : int or None
        Use only the first ``max_test`` test samples.
    dac_bits : int or None
        A uniform DAC on ``[0, 1]`` at every layer's input (inputs outside are clipped), as
        ``train --dac-bits``; None: analog inputs.
    adc_bits : int or None
        NeuroSim's partial-sum ADC (:class:`devices.converters.PartialSumADC`) on every
        layer's column currents, as ``train --adc-bits``; None: analog outputs.
    seed : int
        Seed of every device draw and read.
    """

    source: str | None = None
    run: str | None = None
    device: str = "gst_pcm"
    overrides: dict = field(default_factory=dict)
    mapping: str = "differential"
    program: str = "ideal"
    noise: str = "pcm"
    noise_overrides: dict = field(default_factory=dict)
    times: tuple = DEFAULT_TIMES
    instances: int = 10
    calibration_time: float = 1.0
    weight_scaling: str = "max"
    dataset: str | None = None
    max_test: int | None = None
    dac_bits: int | None = None
    adc_bits: int | None = None
    seed: int = 0

    def __post_init__(self):
        with field_errors("device"):
            if self.device not in devices.names():
                raise ValueError(
                    f"device must be a preset ({', '.join(devices.names())}), got "
                    f"{self.device!r}{did_you_mean(self.device, devices.names())}"
                )
            devices.get(self.device, **self.overrides)
        with field_errors("mapping"):
            check_choice("mapping", self.mapping, devices.MAPPINGS)
        with field_errors("program"):
            check_choice("program", self.program, PROGRAM_MODES)
        with field_errors("noise"):
            inference_model(self.noise, **self.noise_overrides)
        with field_errors("times"):
            ts = self.times if isinstance(self.times, (tuple, list)) else (self.times,)
            if not ts:
                raise ValueError("times must hold at least one time")
            ts = tuple(parse_time(t) for t in ts)
            if len(set(ts)) != len(ts):
                raise ValueError(f"times must be distinct, got {ts!r}")
            object.__setattr__(self, "times", ts)
        with field_errors("instances"):
            object.__setattr__(self, "instances", check_int("instances", self.instances, lo=1))
        with field_errors("calibration_time"):
            check_real("calibration_time", self.calibration_time, lo=0.0, lo_open=True)
        with field_errors("weight_scaling"):
            check_choice("weight_scaling", self.weight_scaling, WEIGHT_SCALINGS)
        with field_errors("max_test"):
            if self.max_test is not None:
                check_int("max_test", self.max_test, lo=1)
        for name in ("dac_bits", "adc_bits"):
            with field_errors(name):
                if getattr(self, name) is not None:
                    check_int(name, getattr(self, name), lo=1, hi=16)
        with field_errors("seed"):
            check_int("seed", self.seed, lo=0)

    def to_dict(self) -> dict:
        """Plain dict (JSON-able)."""
        return dataclasses.asdict(self)


@dataclass
class InferResult:
    """What :func:`infer` returns.

    Attributes
    ----------
    times : tuple of float
    accuracy : dict
        Run label -> array ``(instances, times)`` of test accuracies.
    software_accuracy : float
        The network's accuracy with its own float weights.
    path, table, files
        Results file, markdown table, files written.
    """

    times: tuple
    accuracy: dict
    software_accuracy: float
    path: Path | None = None
    table: str = ""
    files: list = field(default_factory=list)

    def summary(self) -> dict:
        """Label -> ``{"mean", "std", "sem", "min", "max"}`` arrays over time: mean over
        instances, their sample standard deviation (spread of one instance), the standard error
        of the mean ``std / sqrt(n)`` (the confidence band narrows as ``1/sqrt(n)``), extremes."""
        out = {}
        for lab, a in self.accuracy.items():
            n = a.shape[0]
            sd = a.std(axis=0, ddof=1) if n > 1 else np.zeros(a.shape[1])
            out[lab] = {
                "mean": a.mean(axis=0),
                "std": sd,
                "sem": sd / np.sqrt(n),
                "min": a.min(axis=0),
                "max": a.max(axis=0),
            }
        return out


def _seed(seed: int, *keys: int) -> int:
    return int(np.random.SeedSequence([int(seed), *keys]).generate_state(1)[0])


class InferStudy:
    """The :class:`~synapse_sim.studies.base.Study` of :func:`infer`.

    Parameters
    ----------
    config : InferConfig
    network : Network, optional
        The network (instead of ``config.source``).
    data : Dataset, optional
        Test data (instead of loading the source's dataset / ``config.dataset``).
    """

    kind = "infer"
    uses_torch = False

    def __init__(self, config: InferConfig, *, network: Network | None = None, data=None):
        if not isinstance(config, InferConfig):
            raise TypeError(f"config must be an InferConfig, got {type(config).__name__}")
        if network is None and config.source is None:
            raise ValueError(
                "give a network or InferConfig(source=...) (a train or compare results file)"
            )
        if network is not None and not isinstance(network, Network):
            raise TypeError(f"network must be a Network, got {type(network).__name__}")
        self.config = config
        self.network = network
        self.data = data
        self.seed = int(config.seed)
        self.source_info: dict = {}

    def prepare(self) -> None:
        """Load the network and the test data; check that they fit."""
        from ..data.datasets import load_dataset

        cfg = self.config
        if self.network is None:
            with field_errors("source"):
                self.network, self.source_info = Network.from_results(cfg.source, cfg.run)
        if self.data is None:
            tc = self.source_info.get("train", {})
            name = cfg.dataset or tc.get("dataset")
            if name is None:
                raise ValueError("dataset must be given (the network has no training config)")
            same = cfg.dataset is None or cfg.dataset == tc.get("dataset")
            self.data = load_dataset(
                name,
                seed=int(tc.get("seed", 0)) if same else 0,
                neurosim=bool(tc.get("neurosim_input", False)) and same,
            )
        x = self.data.x_test
        n_in = self.network.weights[0].shape[1]
        if x.shape[1] != n_in:
            raise ValueError(
                f"the network takes {n_in} inputs but the test data have {x.shape[1]} features"
            )
        self.model = devices.get(cfg.device, **cfg.overrides)
        self.noise = inference_model(cfg.noise, **cfg.noise_overrides)
        self.converters = {}
        if cfg.dac_bits is not None:
            self.converters["dac"] = devices.UniformQuantizer(bits=cfg.dac_bits, lo=0.0, hi=1.0)
        if cfg.adc_bits is not None:
            self.converters["adc"] = PartialSumADC(bits=cfg.adc_bits)

    def results_config(self) -> dict:
        """Root config of ``results.h5``."""
        return {
            "infer": self.config.to_dict(),
            "source": {k: v for k, v in self.source_info.items()},
            "sizes": [self.network.weights[0].shape[1]]
            + [W.shape[0] for W in self.network.weights],
            "noise_model": dataclasses.asdict(self.noise),
        }

    def labels(self) -> tuple[str, str]:
        """Run labels: as read, and with global drift compensation."""
        base = f"{self.config.device}-{self.config.program}"
        return base, f"{base}-gdc"

    def program(self, instance: int) -> tuple[list, list]:
        """Programmed arrays of every layer for ``instance`` and the output scales."""
        cfg = self.config
        states, scales = [], []
        for li, W in enumerate(self.network.weights):
            s = float(np.max(np.abs(W))) if cfg.weight_scaling == "max" else 1.0
            s = s if s > 0 else 1.0
            arr = devices.DeviceArray(
                W.shape, self.model, mapping=cfg.mapping, seed=_seed(cfg.seed, 11, instance, li)
            )
            arr.program(W / s, mode=cfg.program)
            rng = np.random.default_rng([cfg.seed, 17, instance, li])
            states.append(ProgrammedArray(arr, self.noise, rng, **self.converters))
            scales.append(s)
        return states, scales

    def execute(self, ctx: RunContext) -> InferResult:
        """Program, age and read every instance; write the runs (see :func:`infer`)."""
        cfg, net = self.config, self.network
        x, y = self.data.x_test, self.data.y_test
        if cfg.max_test is not None:
            x, y = x[: cfg.max_test], y[: cfg.max_test]
        times = cfg.times
        n_i, n_t = cfg.instances, len(times)
        acc = np.zeros((2, n_i, n_t))
        sw = net.accuracy(x, y)
        bar = ctx.bar(n_i * n_t, "instances x times", unit="point")
        for i in range(n_i):
            states, scales = self.program(i)
            ref0 = [st.reference_read(cfg.calibration_time) for st in states]
            for j, t in enumerate(times):
                if self.converters:  # one read of the conductances, the products converted
                    Wt, prods = None, [partial(st.product, st.conductances(t)) for st in states]
                else:
                    Wt, prods = [st.weights(t) for st in states], None
                acc[0, i, j] = net.accuracy(x, y, Wt, scales, prods)
                gdc = []
                for st, r0, s in zip(states, ref0, scales, strict=True):
                    r = st.reference_read(t)
                    gdc.append(s * (r0 / r if r > 0 else 1.0))
                acc[1, i, j] = net.accuracy(x, y, Wt, gdc, prods)
                bar.update(1)
        bar.close()
        labels = self.labels()
        result = InferResult(times, {labels[0]: acc[0], labels[1]: acc[1]}, sw)
        writer = ctx.writer
        if writer is not None:
            summ = result.summary()
            for k, lab in enumerate(labels):
                writer.add_run(
                    lab,
                    device=cfg.device,
                    rule="inference",
                    dataset=self.data.name,
                    epochs=n_t,
                    config={
                        "program": cfg.program,
                        "mapping": cfg.mapping,
                        "noise": cfg.noise,
                        "compensation": bool(k),
                        "instances": n_i,
                    },
                )
                s = summ[lab]
                for j, t in enumerate(times):
                    writer.append_epoch(
                        lab,
                        time_s=t,
                        test_accuracy=s["mean"][j],
                        test_accuracy_std=s["std"][j],
                        test_accuracy_sem=s["sem"][j],
                        test_accuracy_min=s["min"][j],
                        test_accuracy_max=s["max"][j],
                    )
                writer.set_final(
                    lab,
                    {
                        "software_accuracy": sw,
                        "instances": n_i,
                        "accuracy_per_instance": acc[k],
                        "times_s": np.asarray(times),
                    },
                )
                writer.mark_complete(lab)
        return result

    def save_outputs(self, result: InferResult, out: Path) -> list[Path]:
        """``inference.png`` and ``results.md``; sets ``result.files`` and ``result.table``."""
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        out = Path(out)
        fig, ax = plt.subplots(figsize=(6, 4))
        plot_inference(result, ax=ax)
        fig.tight_layout()
        png = out / "inference.png"
        fig.savefig(png, dpi=120)
        plt.close(fig)
        result.table = markdown_table(result)
        md = out / "results.md"
        md.write_text(result.table)
        result.files = [p for p in (result.path, png, md) if p is not None]
        return result.files


def infer(
    config: InferConfig,
    *,
    network: Network | None = None,
    data=None,
    out=None,
    progress: bool | None = None,
    plots: bool = True,
) -> InferResult:
    """Program a trained network onto device arrays and measure test accuracy over time.

    Parameters
    ----------
    config : InferConfig
    network : Network, optional
        Instead of ``config.source``.
    data : Dataset, optional
        Test data (default: the source's dataset, same split).
    out : str or Path, optional
        Folder for ``results.h5``, ``inference.png`` and ``results.md``.
    progress : bool, optional
    plots : bool
        Write the figure and table (with ``out``).

    Returns
    -------
    InferResult
    """
    study = InferStudy(config, network=network, data=data)
    return run_study(study, out=out, progress=progress, outputs=plots)


def markdown_table(result: InferResult) -> str:
    """Markdown table: one row per time, mean +- std (over instances) per run."""
    summ = result.summary()
    labs = list(summ)
    n = next(iter(result.accuracy.values())).shape[0]
    head = (
        f"Test accuracy over time after programming ({n} device instances, mean +- std; "
        f"software {result.software_accuracy:.4f}).\n\n"
    )
    rows = ["| time | " + " | ".join(labs) + " |", "|---" * (len(labs) + 1) + "|"]
    for j, t in enumerate(result.times):
        cells = [f"{summ[lab]['mean'][j]:.4f} +- {summ[lab]['std'][j]:.4f}" for lab in labs]
        rows.append(f"| {format_time(t)} | " + " | ".join(cells) + " |")
    return head + "\n".join(rows) + "\n"


def plot_inference(result: InferResult, ax=None):
    """Accuracy vs time (log axis) per run: mean over instances with error bars of the 95%
    confidence interval of the mean (1.96 standard errors) and a shaded band from the worst
    to the best instance; the software accuracy as a dashed line. Returns the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    t = np.asarray(result.times)
    for lab, s in result.summary().items():
        line = ax.errorbar(t, s["mean"], yerr=1.96 * s["sem"], marker="o", capsize=3, label=lab)
        ax.fill_between(t, s["min"], s["max"], color=line[0].get_color(), alpha=0.2)
    ax.axhline(result.software_accuracy, color="k", ls="--", lw=1, label="software")
    ax.set_xscale("log")
    ax.set_xlabel("time after programming (s)")
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=8)
    return ax


def infer_records(path) -> list[dict]:
    """One JSON-able record per run of an ``infer`` results file: label, times and the
    accuracy statistics per time, the software accuracy."""
    from ..results.store import read_results

    res = read_results(path)
    out = []
    for lab, r in res["runs"].items():
        m = r["metrics"]
        rec = {"label": lab, "device": r["device"], "complete": r["complete"], **r["config"]}
        for k in ("time_s", "test_accuracy", "test_accuracy_std", "test_accuracy_sem",
                  "test_accuracy_min", "test_accuracy_max"):  # fmt: skip
            rec[k] = [float(v) for v in m.get(k, [])]
        sw = r["final"].get("software_accuracy")
        rec["software_accuracy"] = None if sw is None else float(sw)
        out.append(rec)
    return out
