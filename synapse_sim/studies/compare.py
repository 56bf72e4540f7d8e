"""Side-by-side comparison of torch models in software and on synapse devices.

:func:`compare` trains a small CNN or an MLP with plain ``torch.optim.SGD`` (the software model)
and, converted with :func:`synapse_sim.nn.convert`, with :class:`synapse_sim.nn.DeviceSGD` on
every device preset and rule asked for. Every run starts from the same initial weights and sees
the same data order. Results go to ``results.h5`` in the layout of :func:`synapse_sim.train`
(so ``synapse-sim show`` reads it), with ``accuracy.png``, ``weights.png``, ``conductance.png``
and ``results.md``. This module imports torch only when a function runs.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from devices.validation import did_you_mean

from ..data.datasets import batches, load_dataset
from .base import RunContext, field_errors, run_study
from .checkpoint import restore_torch_checkpoint, resume_point, torch_checkpoint, write_epoch
from .energy import ENERGY_METRICS, EnergyTracker, resolve_energy
from .train import (
    BACKENDS,
    TRAIN_METRICS,
    TrainResult,
    epoch_metrics,
    final_stats,
    resolve_backend,
    save_report,
    write_final,
)

__all__ = ["compare", "build_model", "MODELS", "MODEL_ACTIVATIONS", "CompareConfig", "CompareStudy"]

#: Models of :func:`compare`.
MODELS = ("cnn", "mlp")
#: The activation after each hidden layer of each model of :func:`build_model`.
MODEL_ACTIVATIONS = {"cnn": "relu", "mlp": "relu"}


def build_model(name: str, image_shape, n_classes: int = 10, *, seed: int = 0):
    """The small CNN or the MLP of :func:`compare`, initialised from ``seed``.

    ``cnn``: conv 1->8 3x3 (padding 1), relu, maxpool 2, conv 8->16 3x3 (padding 1), relu,
    maxpool 2, linear -> ``n_classes`` (8x8 digits: 16*2*2 = 64 inputs; 28x28: 16*7*7 = 784).
    ``mlp``: ``n_pixels``-256-128-``n_classes`` with relu.

    Parameters
    ----------
    name : {"cnn", "mlp"}
    image_shape : tuple of int
        ``(H, W)`` of the images.
    n_classes : int
    seed : int
        Seed of the initial weights (torch's default initialisation, drawn from a forked RNG
        so the global torch RNG is left alone).

    Returns
    -------
    torch.nn.Sequential
        float32 model; the CNN takes ``(batch, 1, H, W)``, the MLP ``(batch, H * W)``.
    """
    import torch
    from torch import nn

    if name not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}, got {name!r}")
    h, w = (int(v) for v in image_shape)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if name == "cnn":
            if h < 4 or w < 4:
                raise ValueError(f"the cnn needs images of at least 4x4, got {h}x{w}")
            flat = 16 * (h // 2 // 2) * (w // 2 // 2)
            return nn.Sequential(
                nn.Conv2d(1, 8, 3, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Conv2d(8, 16, 3, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Flatten(),
                nn.Linear(flat, n_classes),
            )
        return nn.Sequential(
            nn.Linear(h * w, 256),
            nn.ReLU(),
            nn.Linear(256, 128),
            nn.ReLU(),
            nn.Linear(128, n_classes),
        )


def _describe(model) -> list:
    from torch import nn

    out = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d) or type(m).__name__ == "DeviceConv2d":
            out.append(f"conv{m.in_channels}x{m.out_channels}k{m.kernel_size[0]}")
        elif isinstance(m, nn.Linear) or type(m).__name__ == "DeviceLinear":
            out.append(f"linear{m.in_features}x{m.out_features}")
    return out


def _weight_layers(model) -> list:
    from torch import nn

    from ..nn.layers import DeviceLayer

    return [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d, DeviceLayer))]


@dataclass(frozen=True, kw_only=True)
class CompareConfig:
    """What :func:`compare` trains (see its parameters); validates itself.

    Parameters
    ----------
    model : {"cnn", "mlp"}
    dataset : str
    devices : tuple of str
    rules : tuple of str
    epochs, batch_size : int
    lr : float
    seed : int
    software : bool
    mapping : str or None
    rule_options, device_overrides : dict
    max_train : int or None
    backend : str
    """

    model: str = "cnn"
    dataset: str = "digits"
    devices: tuple = ("ideal", "epiram")
    rules: tuple = ("bidirectional",)
    epochs: int = 5
    batch_size: int = 32
    lr: float = 0.1
    seed: int = 0
    software: bool = True
    mapping: str | None = None
    rule_options: dict = field(default_factory=dict)
    device_overrides: dict = field(default_factory=dict)
    max_train: int | None = None
    backend: str = "auto"

    def __post_init__(self):
        import devices as devices_pkg
        from learning_rules import RULES

        with field_errors("model"):
            if self.model not in MODELS:
                raise ValueError(f"model must be one of {', '.join(MODELS)}, got {self.model!r}")
        for name in ("epochs", "batch_size"):
            v = getattr(self, name)
            with field_errors(name):
                if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                    raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        with field_errors("seed"):
            v = self.seed
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise ValueError(f"seed must be an integer >= 0, got {v!r}")
        with field_errors("lr"):
            v = self.lr
            if not (isinstance(v, (int, float)) and v > 0 and math.isfinite(v)):
                raise ValueError(f"lr must be a positive finite number, got {v!r}")
        with field_errors("max_train"):
            v = self.max_train
            if v is not None and (not isinstance(v, (int, np.integer)) or v < 1):
                raise ValueError(f"max_train must be None or an integer >= 1, got {v!r}")
        object.__setattr__(
            self, "devices", _check_list("devices", self.devices, devices_pkg.names())
        )
        rules = [r for r in RULES if r != "software"]
        object.__setattr__(self, "rules", _check_list("rules", self.rules, rules))
        object.__setattr__(self, "rule_options", dict(self.rule_options or {}))
        object.__setattr__(self, "device_overrides", dict(self.device_overrides or {}))
        if not self.runs():
            raise ValueError("nothing to train: give devices and rules, or software=True")
        with field_errors("device_overrides"):
            for d in self.devices:
                devices_pkg.get(d, **self.device_overrides)  # validate overrides up front
        with field_errors("backend"):
            if not isinstance(self.backend, str) or self.backend not in BACKENDS:
                resolve_backend(self.backend)  # raises with the choices

    def runs(self) -> list[tuple[str, str, str]]:
        """``(label, device, rule)`` of every run, the software model first."""
        runs = [("software", "software", "software")] if self.software else []
        return runs + [(f"{d}-{r}", d, r) for d in self.devices for r in self.rules]


def _check_list(name, values, allowed) -> tuple:
    if isinstance(values, str):
        values = [values]
    values = tuple(values)
    for v in values:
        if v not in allowed:
            err = ValueError(
                f"{name} must be among {', '.join(allowed)}, got {v!r}{did_you_mean(v, allowed)}"
            )
            err.field = name
            raise err
    return values


def compare(
    model: str = "cnn",
    dataset: str = "digits",
    devices=("ideal", "epiram"),
    rules=("bidirectional",),
    *,
    epochs: int = 5,
    batch_size: int = 32,
    lr: float = 0.1,
    seed: int = 0,
    software: bool = True,
    mapping: str | None = None,
    rule_options: dict | None = None,
    device_overrides: dict | None = None,
    max_train: int | None = None,
    out=None,
    progress: bool | None = None,
    save_weights: bool = False,
    plots: bool = True,
    threads: int | None = 1,
    backend: str = "auto",
    energy=None,
):
    """Train a torch model in software and on device presets side by side.

    Parameters
    ----------
    model : {"cnn", "mlp"}
        See :func:`build_model`.
    dataset : str
        ``digits`` (8x8), ``mnist5k`` (28x28) or ``idx:PATH``.
    devices : sequence of str
        Device presets (:func:`devices.names`).
    rules : sequence of str
        ``bidirectional``, ``unidirectional``, ``stochastic``, ``adaptive``; every device is
        trained with every rule (label ``device-rule``).
    epochs, batch_size : int
    lr : float
        Learning rate of the software SGD and of :class:`synapse_sim.nn.DeviceSGD`.
    seed : int
        Seed of the initial weights, data order, the train/test split and the device arrays.
    software : bool
        Also train the unconverted model with ``torch.optim.SGD`` (label ``software``).
    mapping : {"reference", "differential"}, optional
        Default per rule (see :func:`synapse_sim.nn.convert`).
    rule_options : dict, optional
        :class:`learning_rules.PulseRule` fields for every device run. With a batch-mean
        loss the per-step requests are small; on devices with few levels,
        ``{"rounding": "stochastic"}`` lets them through the dead zone of nearest rounding.
    device_overrides : dict, optional
        Passed to :func:`devices.get` for every preset.
    max_train : int, optional
        Use only the first ``max_train`` training images.
    out : path-like, optional
        Folder for ``results.h5`` (written after every epoch), PNGs and ``results.md``.
    progress : bool, optional
        tqdm bar (default: when stderr is a terminal).
    save_weights : bool
        Store the final weight matrices (``layer<i>``) and biases (``bias<i>``) in the results
        file (``synapse-sim infer`` programs an ``mlp`` run from them).
    plots : bool
        Write the PNG figures (with ``out``).
    threads : int or None
        torch intra-op threads and BLAS threads while training (default 1: the matrices of
        one step are small and more threads only add overhead); restored afterwards. ``None``
        leaves them alone.
    backend : {"auto", "numpy", "numba", "cupy", "cuda-sim"}
        Array backend of the converted layers. ``cupy`` trains on the GPU: the models (the
        software one too) and the data go to CUDA and the device arrays' state to cupy
        (``docs/GPU.md``); it needs torch with CUDA. ``cuda-sim`` runs the GPU code path on a
        CPU under numba's CUDA simulator (tests).
    energy : None, bool, devices.energy.EnergyModel or dict
        Record device-level energy and latency of the device layers per epoch (``True``: the
        default :class:`devices.energy.EnergyModel`; ``docs/ENERGY.md``).

    Returns
    -------
    synapse_sim.TrainResult
        ``history``, ``final`` (device counters), ``weights`` (weight matrices; conv kernels as
        ``(out, in * kh * kw)``), ``arrays`` (device arrays; float weights for software) and
        ``path``.
    """
    config = CompareConfig(
        model=model,
        dataset=dataset,
        devices=devices,
        rules=rules,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        software=software,
        mapping=mapping,
        rule_options=rule_options or {},
        device_overrides=device_overrides or {},
        max_train=max_train,
        backend=backend,
    )
    study = CompareStudy(config, save_weights=save_weights, plots=plots, energy=energy)
    return run_study(study, out=out, progress=progress, threads=threads)


class CompareStudy:
    """The :class:`~synapse_sim.studies.base.Study` of :func:`compare`.

    Parameters
    ----------
    config : CompareConfig
    save_weights : bool
    plots : bool
    checkpoints : bool
        With a results file, store each run's checkpoint (model, optimizer and data-order
        states) with every epoch, so that a killed run resumes bit for bit
        (``run_study(mode="resume")``, ``--resume``).
    energy : None, bool, devices.energy.EnergyModel or dict
        Record device-level energy and latency of the device layers per epoch (as
        :func:`synapse_sim.train` does; ``docs/ENERGY.md``). A resumed run meters the epochs it
        runs; its final energy totals cover those epochs only.
    """

    kind = "compare"
    uses_torch = True

    def __init__(
        self,
        config: CompareConfig,
        *,
        save_weights=False,
        plots=True,
        checkpoints=True,
        energy=None,
    ):
        self.config = config
        self.energy = resolve_energy(energy)
        self.save_weights = save_weights
        self.plots = plots
        self.checkpoints = bool(checkpoints)
        self.seed = int(config.seed)

    def prepare(self) -> None:
        """Resolve the backend (a missing GPU fails first), load the data, build the model."""
        import torch

        cfg = self.config
        self.resolved = resolve_backend(cfg.backend)
        self.tdev = torch.device("cpu")
        if self.resolved == "cupy":
            if not torch.cuda.is_available():
                raise ValueError(
                    "backend='cupy' needs torch with CUDA (torch.cuda.is_available() is "
                    "False); install a CUDA build of torch or use backend 'numba'"
                )
            self.tdev = torch.device("cuda")
        self.data = load_dataset(cfg.dataset, seed=int(cfg.seed))
        d = self.data
        self.shape = d.image_shape if len(d.image_shape) == 2 else (1, d.n_features)
        self.net0 = build_model(cfg.model, self.shape, d.n_classes, seed=int(cfg.seed))

    def results_config(self) -> dict:
        """Root config of ``results.h5`` (the layout of :func:`synapse_sim.train`)."""
        cfg = self.config
        energy = {} if self.energy is None else {"energy": self.energy.to_dict()}
        return {
            **energy,
            "train": {
                "model": cfg.model,
                "dataset": cfg.dataset,
                "epochs": int(cfg.epochs),
                "batch_size": int(cfg.batch_size),
                "lr": float(cfg.lr),
                "seed": int(cfg.seed),
                "max_train": cfg.max_train,
                "loss": "ce",
                "backend": cfg.backend,
            },
            "runs": [{"label": lab, "device": d, "rule": r} for lab, d, r in cfg.runs()],
            "sizes": _describe(self.net0),
            "backend": self.resolved,
            "dataset_info": {
                k: v for k, v in self.data.info.items() if isinstance(v, (str, int, float, bool))
            },
        }

    def execute(self, ctx: RunContext) -> TrainResult:
        """Train the software model and every device run (see :func:`compare`)."""
        import torch
        import torch.nn.functional as F

        from learning_rules import FloatWeights

        from ..nn.conversion import convert, default_mapping
        from ..nn.optim import DeviceSGD

        cfg, data, tdev, shape = self.config, self.data, self.tdev, self.shape
        seed, lr, writer = int(cfg.seed), cfg.lr, ctx.writer
        xtr, ytr = data.x_train, data.y_train
        if cfg.max_train is not None:
            xtr, ytr = xtr[: cfg.max_train], ytr[: cfg.max_train]

        def as_input(x):
            t = torch.from_numpy(x.astype(np.float32))
            return (t.reshape(-1, 1, *shape) if cfg.model == "cnn" else t).to(tdev)

        xtr_t, xte_t = as_input(xtr), as_input(data.x_test)
        ytr_t, yte_t = torch.from_numpy(ytr).to(tdev), torch.from_numpy(data.y_test).to(tdev)
        history, final, weights, arrays = {}, {}, {}, {}
        n_batches = math.ceil(xtr.shape[0] / cfg.batch_size)
        # runs found in a resumed file continue from their checkpoint (or start again)
        resumed = set(writer.labels) if writer is not None else set()
        for label, dev, rule in cfg.runs():
            if dev == "software":
                net = copy.deepcopy(self.net0).to(tdev)
                opt = torch.optim.SGD(net.parameters(), lr=lr)
                run_cfg = {"model": cfg.model, "backend": self.resolved}
            else:
                mp = cfg.mapping if cfg.mapping is not None else default_mapping(rule)
                net = convert(
                    self.net0,
                    device=dev,
                    rule=rule,
                    mapping=mp,
                    seed=seed,
                    backend=cfg.backend,
                    **cfg.device_overrides,
                ).to(tdev)
                opt = DeviceSGD(net, lr=lr, rule=rule, seed=seed, **cfg.rule_options)
                run_cfg = {
                    "model": cfg.model,
                    "mapping": mp,
                    "overrides": cfg.device_overrides,
                    "rule_options": cfg.rule_options,
                    "backend": self.resolved,
                }
            if writer is not None and not (label in resumed and writer.checkpoint(label)):
                writer.add_run(
                    label,
                    device=dev,
                    rule=rule,
                    dataset=cfg.dataset,
                    epochs=int(cfg.epochs),
                    config=run_cfg,
                    replace=True,
                )
            layers = [m.array for m in getattr(opt, "device_layers", [])]
            rngs = {"data": np.random.default_rng([seed, 2])}
            data_rng = rngs["data"]
            hist = {k: [] for k in TRAIN_METRICS}
            if self.energy is not None and EnergyTracker(layers, self.energy).active:
                hist.update({k: [] for k in ENERGY_METRICS})
            restore = partial(restore_torch_checkpoint, model=net, optimizer=opt, rngs=rngs)
            first, _ = resume_point(writer, label, resumed, hist, restore)
            # metered from the (restored) state on
            meter = EnergyTracker(layers, self.energy) if self.energy is not None else None
            bar = ctx.bar(cfg.epochs * n_batches, label)
            bar.update(first * n_batches)
            for _epoch in range(first, cfg.epochs):
                t0 = time.perf_counter()
                net.train()
                correct, loss_sum, pulses, refreshes = 0, 0.0, 0, 0
                for idx in batches(xtr.shape[0], cfg.batch_size, data_rng):
                    ib = torch.from_numpy(idx).to(tdev)
                    xb, yb = xtr_t[ib], ytr_t[ib]
                    opt.zero_grad()
                    logits = net(xb)
                    loss = F.cross_entropy(logits, yb)
                    loss.backward()
                    opt.step()
                    correct += int((logits.argmax(1) == yb).sum())
                    loss_sum += float(loss.detach()) * len(idx)
                    if dev != "software":
                        pulses += opt.last_stats["pulses"]
                        refreshes += opt.last_stats["refreshes"]
                    bar.update(1)
                elapsed = time.perf_counter() - t0
                test_acc, test_loss = _evaluate(net, xte_t, yte_t)
                metrics = epoch_metrics(
                    layers,
                    xtr.shape[0],
                    correct,
                    loss_sum,
                    test_acc,
                    test_loss,
                    pulses,
                    refreshes,
                    elapsed,
                )
                if meter is not None:
                    metrics.update(meter.epoch())
                for k, v in metrics.items():
                    hist[k].append(v)
                if writer is not None:  # the epoch and its checkpoint, atomically
                    ckpt = partial(torch_checkpoint, _epoch + 1, net, opt, rngs)
                    write_epoch(writer, label, metrics, ckpt if self.checkpoints else None)
            bar.close()
            mats = [
                m.weight.detach().cpu().to(torch.float64).reshape(m.weight.shape[0], -1).numpy()
                for m in _weight_layers(net)
            ]
            biases = [_bias(m) for m in _weight_layers(net)]
            history[label] = hist
            final[label] = final_stats(layers)
            if meter is not None and meter.active:
                final[label]["energy"] = meter.final()
            weights[label] = mats
            arrays[label] = layers if layers else [FloatWeights(W, w_max=None) for W in mats]
            if writer is not None and label not in writer.completed:
                write_final(writer, label, final[label], mats, self.save_weights, biases)
        return TrainResult(history, final, weights, arrays, None)

    def save_outputs(self, result: TrainResult, out: Path) -> list[Path]:
        """PNG figures (when :attr:`plots`) and ``results.md``."""
        return save_report(result, out, plots=self.plots)


def _bias(layer) -> np.ndarray:
    """The digital bias of a weight layer as float64 (zeros when it has none)."""
    import torch

    if layer.bias is None:
        return np.zeros(layer.weight.shape[0])
    return layer.bias.detach().cpu().to(torch.float64).numpy()


def _evaluate(net, x, y, chunk: int = 1000):
    import torch
    import torch.nn.functional as F

    net.eval()
    correct, loss = 0, 0.0
    with torch.no_grad():
        for s in range(0, x.shape[0], chunk):
            logits = net(x[s : s + chunk])
            correct += int((logits.argmax(1) == y[s : s + chunk]).sum())
            loss += float(F.cross_entropy(logits, y[s : s + chunk], reduction="sum"))
    return correct / x.shape[0], loss / x.shape[0]
