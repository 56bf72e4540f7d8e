"""Side-by-side comparison of torch models in software and on synapse devices.

:func:`compare` trains a small CNN or an MLP with plain ``torch.optim.SGD`` (the software model)
and, converted with :func:`synapse_sim.nn.convert`, with :class:`synapse_sim.nn.DeviceSGD` on
every device preset and rule asked for. Every run starts from the same initial weights and sees
the same data order. Results go to ``results.h5`` in the layout of :func:`synapse_sim.train`
(so ``synapse-sim show`` reads it), with ``accuracy.png``, ``weights.png``, ``conductance.png``
and ``results.md``. This module imports torch only when a function runs.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["compare", "build_model", "MODELS"]

#: Models of :func:`compare`.
MODELS = ("cnn", "mlp")
_METRICS = (
    "train_accuracy",
    "train_loss",
    "test_accuracy",
    "test_loss",
    "pulses",
    "refreshes",
    "saturated_high",
    "saturated_low",
    "epoch_time",
)


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


def _check_list(name, values, allowed=None):
    if isinstance(values, str):
        values = [values]
    values = list(values)
    if allowed is not None:
        import difflib

        for v in values:
            if v not in allowed:
                close = difflib.get_close_matches(str(v), list(allowed), n=3)
                hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
                raise ValueError(f"{name} must be among {', '.join(allowed)}, got {v!r}{hint}")
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
        Store the final weight matrices in the results file.
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

    Returns
    -------
    synapse_sim.TrainResult
        ``history``, ``final`` (device counters), ``weights`` (weight matrices; conv kernels as
        ``(out, in * kh * kw)``), ``arrays`` (device arrays; float weights for software) and
        ``path``.
    """
    import torch
    import torch.nn.functional as F
    from threadpoolctl import threadpool_limits

    import devices as devices_pkg
    from learning_rules import RULES, FloatWeights

    from ..data.datasets import batches, load_dataset
    from ..nn.conversion import convert, default_mapping
    from ..nn.optim import DeviceSGD
    from .train import TrainResult, _final_stats, _saturation, resolve_backend

    if model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}, got {model!r}")
    for name, v in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    if max_train is not None and (not isinstance(max_train, (int, np.integer)) or max_train < 1):
        raise ValueError(f"max_train must be None or an integer >= 1, got {max_train!r}")
    devs = _check_list("devices", devices, devices_pkg.names())
    rule_list = _check_list("rules", rules, [r for r in RULES if r != "software"])
    rule_options = dict(rule_options or {})
    device_overrides = dict(device_overrides or {})
    runs = [("software", "software", "software")] if software else []
    runs += [(f"{d}-{r}", d, r) for d in devs for r in rule_list]
    if not runs:
        raise ValueError("nothing to train: give devices and rules, or software=True")
    for _, d, _ in runs:
        if d != "software":
            devices_pkg.get(d, **device_overrides)  # validate overrides up front
    if progress is None:
        progress = sys.stderr.isatty()
    resolved = resolve_backend(backend)
    tdev = torch.device("cpu")
    if resolved == "cupy":
        if not torch.cuda.is_available():
            raise ValueError(
                "backend='cupy' needs torch with CUDA (torch.cuda.is_available() is False); "
                "install a CUDA build of torch or use backend 'numba'"
            )
        tdev = torch.device("cuda")

    data = load_dataset(dataset, seed=int(seed))
    xtr, ytr = data.x_train, data.y_train
    if max_train is not None:
        xtr, ytr = xtr[:max_train], ytr[:max_train]
    shape = data.image_shape if len(data.image_shape) == 2 else (1, data.n_features)
    net0 = build_model(model, shape, data.n_classes, seed=int(seed))

    def as_input(x):
        t = torch.from_numpy(x.astype(np.float32))
        return (t.reshape(-1, 1, *shape) if model == "cnn" else t).to(tdev)

    xtr_t, xte_t = as_input(xtr), as_input(data.x_test)
    ytr_t, yte_t = torch.from_numpy(ytr).to(tdev), torch.from_numpy(data.y_test).to(tdev)

    writer = None
    if out is not None:
        from ..results.store import ResultsWriter

        cfg = {
            "train": {
                "model": model,
                "dataset": dataset,
                "epochs": int(epochs),
                "batch_size": int(batch_size),
                "lr": float(lr),
                "seed": int(seed),
                "max_train": max_train,
                "loss": "ce",
                "backend": backend,
            },
            "runs": [{"label": lab, "device": d, "rule": r} for lab, d, r in runs],
            "sizes": _describe(net0),
            "backend": resolved,
            "dataset_info": {
                k: v for k, v in data.info.items() if isinstance(v, (str, int, float, bool))
            },
        }
        writer = ResultsWriter(Path(out) / "results.h5", cfg, seed=int(seed), kind="compare")
    history, final, weights, arrays = {}, {}, {}, {}
    n_batches = math.ceil(xtr.shape[0] / batch_size)
    from tqdm.auto import tqdm

    try:
        with threadpool_limits(limits=threads, user_api="blas"), _torch_threads(threads):
            for label, dev, rule in runs:
                if dev == "software":
                    net = _copy(net0).to(tdev)
                    opt = torch.optim.SGD(net.parameters(), lr=lr)
                    run_cfg = {"model": model, "backend": resolved}
                else:
                    mp = mapping if mapping is not None else default_mapping(rule)
                    net = convert(
                        net0,
                        device=dev,
                        rule=rule,
                        mapping=mp,
                        seed=int(seed),
                        backend=backend,
                        **device_overrides,
                    ).to(tdev)
                    opt = DeviceSGD(net, lr=lr, rule=rule, seed=int(seed), **rule_options)
                    run_cfg = {
                        "model": model,
                        "mapping": mp,
                        "overrides": device_overrides,
                        "rule_options": rule_options,
                        "backend": resolved,
                    }
                if writer is not None:
                    writer.add_run(
                        label,
                        device=dev,
                        rule=rule,
                        dataset=dataset,
                        epochs=int(epochs),
                        config=run_cfg,
                    )
                layers = [m.array for m in getattr(opt, "device_layers", [])]
                data_rng = np.random.default_rng([int(seed), 2])
                hist = {k: [] for k in _METRICS}
                bar = tqdm(
                    total=epochs * n_batches,
                    desc=label,
                    disable=not progress,
                    leave=False,
                    unit="batch",
                )
                for _epoch in range(epochs):
                    t0 = time.perf_counter()
                    net.train()
                    correct, loss_sum, pulses, refreshes = 0, 0.0, 0, 0
                    for idx in batches(xtr.shape[0], batch_size, data_rng):
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
                    sat_hi, sat_lo = _saturation(layers)
                    metrics = {
                        "train_accuracy": correct / xtr.shape[0],
                        "train_loss": loss_sum / xtr.shape[0],
                        "test_accuracy": test_acc,
                        "test_loss": test_loss,
                        "pulses": float(pulses),
                        "refreshes": float(refreshes),
                        "saturated_high": sat_hi,
                        "saturated_low": sat_lo,
                        "epoch_time": elapsed,
                    }
                    for k, v in metrics.items():
                        hist[k].append(v)
                    if writer is not None:
                        writer.append_epoch(label, **metrics)
                bar.close()
                wl = _weight_layers(net)
                mats = [
                    m.weight.detach().cpu().to(torch.float64).reshape(m.weight.shape[0], -1).numpy()
                    for m in wl
                ]
                history[label] = hist
                final[label] = _final_stats(layers)
                weights[label] = mats
                arrays[label] = layers if layers else [FloatWeights(W, w_max=None) for W in mats]
                if writer is not None:
                    w = {f"layer{i}": W for i, W in enumerate(mats)} if save_weights else None
                    writer.set_final(label, final[label], weights=w)
                    writer.mark_complete(label)
    except BaseException:
        if writer is not None:
            writer.close(complete=False)
        raise
    result = TrainResult(history, final, weights, arrays, None)
    if writer is not None:
        writer.close(complete=True)
        result.path = Path(out) / "results.h5"
        from .experiments import markdown_report

        if plots:
            from ..results.plots import save_run_plots

            save_run_plots(result, out)
        (Path(out) / "results.md").write_text(markdown_report(result.path))
    return result


class _torch_threads:
    """Context manager: torch intra-op threads set to ``n`` (None: unchanged), then restored."""

    def __init__(self, n):
        self.n = n

    def __enter__(self):
        import torch

        self.old = torch.get_num_threads()
        if self.n is not None:
            torch.set_num_threads(int(self.n))
        return self

    def __exit__(self, *exc):
        import torch

        torch.set_num_threads(self.old)


def _copy(model):
    import copy

    return copy.deepcopy(model)


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


# ---------------------------------------------------------------------------- command line
def _add_compare(subparsers) -> None:
    """Register ``synapse-sim compare``."""
    p = subparsers.add_parser(
        "compare",
        help="train a torch CNN or MLP in software and on device presets side by side",
        description="Train a small torch CNN or MLP with plain SGD (software) and, converted "
        "to device-backed layers, with DeviceSGD on each preset and rule; writes results.h5, "
        "PNG figures and results.md to --out (read back with 'synapse-sim show').",
    )
    p.add_argument("--model", default="cnn", help="cnn or mlp (default cnn)")
    p.add_argument("--dataset", default="digits", help="digits, mnist5k or idx:PATH")
    p.add_argument(
        "--device",
        action="append",
        default=None,
        metavar="PRESET",
        help="device preset (repeat; default ideal and epiram)",
    )
    p.add_argument(
        "--rule",
        action="append",
        default=None,
        metavar="RULE",
        help="bidirectional, unidirectional, stochastic or adaptive (repeat; default "
        "bidirectional)",
    )
    p.add_argument("--mapping", default=None, help="reference or differential (default: by rule)")
    p.add_argument(
        "--rounding",
        default=None,
        help="pulse-count rounding: nearest (default) or stochastic (lets small batch-mean "
        "updates through the dead zone)",
    )
    p.add_argument("--epochs", type=int, default=5, help="epochs (default 5)")
    p.add_argument("--batch-size", type=int, default=32, help="batch size (default 32)")
    p.add_argument("--lr", type=float, default=0.1, help="learning rate (default 0.1)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--max-train", type=int, default=None, help="use only N training images")
    p.add_argument(
        "--backend",
        default="auto",
        help="array backend: auto (numba on the CPU), numpy, numba, cupy (GPU; needs torch "
        "with CUDA) or cuda-sim (tests; needs NUMBA_ENABLE_CUDASIM=1); default auto",
    )
    p.add_argument("--no-software", action="store_true", help="skip the software model")
    p.add_argument("--save-weights", action="store_true", help="store final weights")
    p.add_argument("--out", default="runs/compare", metavar="DIR", help="output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_compare)


def _cmd_compare(args) -> int:
    """Run ``synapse-sim compare``."""
    from ..cli.main import _output_dir
    from .experiments import markdown_report
    from .train import resolve_backend

    resolve_backend(args.backend)  # an unavailable GPU fails before the output folder exists
    out = _output_dir(args.out, "--out")
    opts = {"rounding": args.rounding} if args.rounding is not None else {}
    res = compare(
        model=args.model,
        dataset=args.dataset,
        devices=args.device or ["ideal", "epiram"],
        rules=args.rule or ["bidirectional"],
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        software=not args.no_software,
        mapping=args.mapping,
        rule_options=opts,
        max_train=args.max_train,
        out=out,
        progress=not args.quiet and sys.stderr.isatty(),
        save_weights=args.save_weights,
        backend=args.backend,
    )
    print(markdown_report(res.path), end="")
    files = [res.path, *(out / f for f in ("accuracy.png", "weights.png", "results.md"))]
    print(f"wrote {', '.join(str(f) for f in files if f.exists())}")
    return 0
