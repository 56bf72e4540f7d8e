"""Convert a torch model: put its ``nn.Linear`` / ``nn.Conv2d`` weights on device arrays."""

from __future__ import annotations

import copy
import difflib
import warnings

import numpy as np
import torch
from torch import nn

import learning_rules
from learning_rules import RULES, PulseRule

from .layers import DeviceConv2d, DeviceLayer, DeviceLinear, gpu_message, resolve_device

__all__ = ["convert", "default_mapping", "SUPPORTED_LAYERS"]

#: Layer types :func:`convert` can put on devices.
SUPPORTED_LAYERS = (nn.Linear, nn.Conv2d)


def _rule_name(rule) -> str:
    if isinstance(rule, PulseRule):
        return rule.method
    if rule not in RULES or rule == "software":
        allowed = [r for r in RULES if r != "software"]
        close = difflib.get_close_matches(str(rule), allowed, n=2)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(
            f"rule must be a learning_rules.PulseRule or one of {', '.join(allowed)}, "
            f"got {rule!r}{hint}"
        )
    return rule


def default_mapping(rule) -> str:
    """The mapping a rule uses by default: ``reference`` for bidirectional and stochastic,
    ``differential`` for unidirectional and adaptive (as in :func:`synapse_sim.train`)."""
    return learning_rules.default_mapping(_rule_name(rule))


def _layer_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([int(seed), 7, index]).generate_state(1)[0])


def _check_supported(name: str, mod: nn.Module) -> None:
    label = repr(name) if name else "the model itself"
    if isinstance(mod, DeviceLayer):
        raise TypeError(f"layer {label} is already a device layer ({type(mod).__name__})")
    if not isinstance(mod, SUPPORTED_LAYERS) or isinstance(mod, nn.modules.lazy.LazyModuleMixin):
        raise TypeError(
            f"layer {label} is a {type(mod).__name__}, which cannot be put on devices; "
            "supported types: nn.Linear, nn.Conv2d (leave it out of layers= to keep it digital)"
        )
    if isinstance(mod, nn.Conv2d) and mod.groups != 1:
        raise TypeError(
            f"layer {label} is an nn.Conv2d with groups={mod.groups}; DeviceConv2d supports "
            "groups=1 only (leave it out of layers= to keep it digital)"
        )


#: Modules that read the weights of some of their child layers directly (not by calling them),
#: so a device layer in their place would be bypassed: ``(type, child names, why)``.
_DIRECT_READERS = (
    (
        nn.MultiheadAttention,
        ("out_proj",),
        "nn.MultiheadAttention passes out_proj.weight to F.multi_head_attention_forward "
        "instead of calling out_proj (and keeps its input projection in in_proj_weight, not "
        "in a layer)",
    ),
    (
        nn.TransformerEncoderLayer,
        ("linear1", "linear2"),
        "nn.TransformerEncoderLayer's inference fast path (eval mode, batch_first) reads "
        "linear1.weight and linear2.weight directly",
    ),
)


def _bypassed(name: str, modules: dict) -> str | None:
    """Why the layer ``name`` would be bypassed by its parent (``_DIRECT_READERS``), or None."""
    parent_name, _, child = name.rpartition(".")
    parent = modules.get(parent_name) if name else None
    for kind, children, why in _DIRECT_READERS:
        if isinstance(parent, kind) and child in children:
            return why
    return None


def _check_not_bypassed(chosen: list, paths: dict, modules: dict) -> None:
    """Refuse layers whose parent reads their weight directly, naming what to convert."""
    bad = {}
    for n in chosen:
        for place in paths[id(modules[n])]:
            why = _bypassed(place, modules)
            if why is not None:
                bad.setdefault(n, (place, why))
    if not bad:
        return
    keep = [n for n in chosen if n not in bad]
    hint = f" (e.g. layers={keep!r})" if keep and len(keep) <= 8 else ""
    place, why = next(iter(bad.values()))
    raise TypeError(
        f"layer {place!r} cannot be put on devices: {why}, so a device layer there would be "
        f"bypassed; leave {'it' if len(bad) == 1 else ', '.join(map(repr, bad))} out of "
        f"layers= to keep {'it' if len(bad) == 1 else 'them'} digital{hint}"
    )


def _build(old, W, has_bias, common):
    if isinstance(old, nn.Conv2d):
        return DeviceConv2d(
            old.in_channels,
            old.out_channels,
            tuple(old.kernel_size),
            stride=tuple(old.stride),
            padding=old.padding,
            dilation=tuple(old.dilation),
            padding_mode=old.padding_mode,
            bias=has_bias,
            weight=W,
            **common,
        )
    return DeviceLinear(old.in_features, old.out_features, bias=has_bias, weight=W, **common)


def convert(
    model: nn.Module,
    device="ideal",
    rule="bidirectional",
    layers=None,
    mapping: str | None = None,
    seed: int = 0,
    *,
    w_max: float = 1.0,
    clip: bool = False,
    backend: str = "auto",
    dac=None,
    adc=None,
    **device_overrides,
) -> nn.Module:
    """A copy of ``model`` with its linear and convolution layers on device arrays.

    Parameters
    ----------
    model : torch.nn.Module
        The model (left unchanged; a deep copy is converted). Must be on the CPU.
    device : str or devices.DeviceModel
        Synapse device preset (``"ideal"``, ``"epiram"``, ... of :func:`devices.names`) or a
        model. An unknown name raises ``ValueError`` with close matches.
    rule : str or learning_rules.PulseRule
        The rule the model will be trained with (``bidirectional``, ``unidirectional``,
        ``stochastic`` or ``adaptive``): it picks the default mapping and the programming form,
        and is kept as each converted layer's ``converted_rule``, the rule
        :class:`DeviceSGD` trains them with unless told otherwise.
    layers : list of str, optional
        Names (as in ``model.named_modules()``) of the layers to convert; default: every
        ``nn.Linear`` and ``nn.Conv2d``. Other layers stay as they were.
    mapping : {"reference", "differential"}, optional
        Default: ``reference`` for bidirectional and stochastic, ``differential`` for
        unidirectional and adaptive.
    seed : int
        Seed of the device arrays; layer ``i`` (in ``named_modules`` order among the converted
        layers) gets a seed derived from ``(seed, i)``.
    w_max : float
        Weight range ``[-w_max, w_max]`` of every array (default 1, the NeuroSim range).
        Weights are programmed as they are (no rescaling), so ``w_max`` must cover them.
    clip : bool
        If a layer's largest ``|W|`` exceeds ``w_max``: ``False`` (default) raises a
        ``ValueError`` that names the layer and suggests a ``w_max``; ``True`` clips them
        to the range with a ``UserWarning``.
    backend : {"auto", "numpy", "numba", "cupy"}
        Kernel backend of every array (``"cupy"`` needs a usable GPU; ``docs/GPU.md``).
    dac, adc : devices.UniformQuantizer, optional
        Converters of every converted layer.
    **device_overrides
        Passed to :func:`devices.get` (e.g. ``c2c_sigma=0``).

    Returns
    -------
    torch.nn.Module
        The converted copy: :class:`DeviceLinear` / :class:`DeviceConv2d` in place of the
        chosen layers, with the original weights programmed (``mode="ideal"``) and the bias
        copied (it stays a digital ``nn.Parameter``). A layer shared by several parents
        (``m.a is m.b``) becomes one device layer in all of its places.

    Raises
    ------
    TypeError
        A named layer is not an ``nn.Linear`` / ``nn.Conv2d`` (or is a grouped conv); a layer
        whose parent reads its weight without calling it (``out_proj`` of
        ``nn.MultiheadAttention``, ``linear1`` / ``linear2`` of
        ``nn.TransformerEncoderLayer``: leave them out with ``layers=``); the model has CUDA
        parameters.
    ValueError
        Unknown layer name, preset, rule or mapping; weights outside ``[-w_max, w_max]``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    rule_name = _rule_name(rule)
    mapping = learning_rules.resolve_mapping(rule_name, mapping)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    model_dev = resolve_device(device, device_overrides, "convert")
    for name, t in [*model.named_parameters(), *model.named_buffers()]:
        if t.device.type != "cpu":
            raise TypeError(gpu_message("convert", f"parameter {name!r} on {str(t.device)!r}"))

    modules = dict(model.named_modules(remove_duplicate=False))
    if layers is None:
        chosen = [
            n
            for n, m in modules.items()
            if isinstance(m, SUPPORTED_LAYERS) and not isinstance(m, DeviceLayer)
        ]
    else:
        if isinstance(layers, str):
            layers = [layers]
        chosen = []
        for n in layers:
            if n not in modules:
                close = difflib.get_close_matches(str(n), [k for k in modules if k], n=3)
                hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
                raise ValueError(
                    f"layers: model has no module named {n!r}{hint} (names as in "
                    "model.named_modules())"
                )
            if n not in chosen:
                chosen.append(n)
        order = list(modules)
        chosen.sort(key=order.index)
    # a module reachable under several names (m.a is m.b) is converted once and put in every
    # place it occupies, so the tie survives; layers= may name any of its places
    paths: dict[int, list[str]] = {}
    for n, m in modules.items():
        paths.setdefault(id(m), []).append(n)
    chosen = list({id(modules[n]): paths[id(modules[n])][0] for n in chosen}.values())
    for n in chosen:
        _check_supported(n, modules[n])
    _check_not_bypassed(chosen, paths, modules)

    form = learning_rules.program_form(rule_name, mapping)
    new = copy.deepcopy(model)
    new_modules = dict(new.named_modules(remove_duplicate=False))
    for i, name in enumerate(chosen):
        old = new_modules[name]
        common = dict(
            device=model_dev,
            mapping=mapping,
            form=form,
            w_max=w_max,
            seed=_layer_seed(seed, i),
            backend=backend,
            dac=dac,
            adc=adc,
        )
        W = old.weight.detach().to(torch.float64).numpy()
        big = float(np.abs(W).max(initial=0.0))
        if big > w_max and not clip:
            raise ValueError(
                f"layer {name!r}: weights reach |W| = {big:.4g}, outside [-w_max, w_max] with "
                f"w_max={w_max:g}; pass w_max={np.ceil(big * 100) / 100:g} (or larger) to "
                "represent them, or clip=True to clip them"
            )
        if big > w_max:
            warnings.warn(
                f"layer {name!r}: weights up to |W| = {big:.4g} clipped to w_max={w_max:g}",
                stacklevel=2,
            )
            W = np.clip(W, -w_max, w_max)
        has_bias = old.bias is not None
        with torch.random.fork_rng(devices=[]):  # the bias init must not move torch's RNG
            layer = _build(old, W, has_bias, common)
        if has_bias:
            layer.bias = nn.Parameter(
                old.bias.detach().clone(), requires_grad=old.bias.requires_grad
            )
        layer.train(old.training)
        layer.converted_rule = rule  # DeviceSGD's default rule for this layer
        if name == "":
            return layer
        for place in paths[id(modules[name])]:
            parent_name, _, child = place.rpartition(".")
            parent = new.get_submodule(parent_name) if parent_name else new
            setattr(parent, child, layer)
    return new
