"""``DeviceSGD``: a torch optimizer that trains device-backed layers through a pulse rule."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import torch
from torch import nn

from learning_rules import PulseRule

from .layers import DeviceLayer, run_array_work

__all__ = ["DeviceSGD"]

_STATE_KEY = "device_sgd"


_SGD_DEFAULTS = {"momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0, "nesterov": False}


def _check_lr(name: str, lr) -> float:
    if isinstance(lr, torch.Tensor) and lr.numel() == 1:
        lr = lr.item()
    if isinstance(lr, bool) or not isinstance(lr, (int, float, np.floating, np.integer)):
        raise ValueError(f"{name} must be a positive finite number, got {lr!r}")
    v = _as_float(lr)
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a positive finite number, got {lr!r}")
    return v


def _as_float(v) -> float:
    """A real scalar as a float, inf for an int too large for one (math.isfinite then reads
    it: numpy's isfinite costs about 1 us on a scalar, a few times a step)."""
    try:
        return float(v)
    except OverflowError:
        return math.inf


def _check_sgd_options(opts: dict, where: str) -> dict:
    """``torch.optim.SGD``'s options, validated (finite, >= 0; Nesterov needs momentum and no
    dampening)."""
    out = {}
    for k, v in opts.items():
        if k == "nesterov":
            if not isinstance(v, (bool, np.bool_)):
                raise ValueError(f"{where}: nesterov must be True or False, got {v!r}")
            out[k] = bool(v)
            continue
        ok = not isinstance(v, bool) and isinstance(v, (int, float, np.floating, np.integer))
        if not ok or not math.isfinite(_as_float(v)) or v < 0:
            raise ValueError(f"{where}: {k} must be a finite number >= 0, got {v!r}")
        out[k] = float(v)
    if out.get("nesterov") and (out.get("momentum", 0) <= 0 or out.get("dampening", 0) != 0):
        raise ValueError(f"{where}: nesterov=True needs momentum > 0 and dampening = 0")
    return out


def _make_rule(rule, options) -> PulseRule:
    if isinstance(rule, PulseRule):
        if options:
            rule = rule.replace(**options)
    else:
        if rule == "software":
            raise ValueError(
                "rule 'software' trains float weights; train the unconverted model with "
                "torch.optim.SGD instead"
            )
        rule = PulseRule.named(rule, **options)
    if rule.method == "software":
        raise ValueError("DeviceSGD needs a pulse rule, got method='software'")
    return rule


def _converted_rule(layers):
    """The rule device ``layers`` were converted for (their ``converted_rule``, set by
    :func:`synapse_sim.convert`): ``"bidirectional"`` when none was (layers built directly),
    ``ValueError`` when they name different rules."""
    found = {}  # the rules as PulseRules (a name and its named rule are one), first given form
    for layer in layers:
        r = getattr(layer, "converted_rule", None)
        if r is not None:
            found.setdefault(_make_rule(r, {}), r)
    if not found:
        return "bidirectional"
    if len(found) > 1:
        names = ", ".join(repr(r) for r in found.values())
        raise ValueError(
            f"DeviceSGD: the device layers were converted for different rules ({names}); pass "
            "the rule to train them with: DeviceSGD(model, lr=..., rule=...)"
        )
    return next(iter(found.values()))


def _split(items, where):
    """Tensors and device layers from a mix of tensors and modules."""
    params, layers = [], []
    if isinstance(items, (torch.Tensor, nn.Module)):
        items = [items]
    for it in items:
        if isinstance(it, nn.Module):
            for m in it.modules():
                if isinstance(m, DeviceLayer):
                    layers.append(m)
            # a layer's stash_token is bookkeeping, not a trained parameter (keeping it out
            # also keeps the optimizer state dict's layout)
            tokens = {id(m.stash_token) for m in layers}
            params.extend(p for p in it.parameters() if id(p) not in tokens)
        elif isinstance(it, torch.Tensor):
            params.append(it)
        else:
            raise TypeError(
                f"{where} must hold tensors or modules (device layers), got {type(it).__name__}"
            )
    return params, layers


class DeviceSGD(torch.optim.Optimizer):
    """SGD for models with device-backed layers: pulses for device weights, SGD for the rest.

    The weights of :class:`DeviceLinear` / :class:`DeviceConv2d` layers are updated through a
    :class:`learning_rules.PulseRule` from what their backward pass stashed (layer input ``x``
    and output gradient ``delta``): the rule requests ``dW = -lr * delta^T x``, which is the
    SGD step on the same loss (``delta`` already carries the loss's ``1/batch``), and turns it
    into pulses. Ordinary parameters (biases, digital layers) get plain SGD,
    ``p <- p - lr * grad``. A normal loop (``zero_grad``, ``backward``, ``step``) works
    unchanged.

    Parameters
    ----------
    params : torch.nn.Module, iterable or list of dict
        The model (its device layers and its parameters), or an iterable of tensors and
        modules, or parameter groups: dicts with ``"params"`` (tensors and/or modules; a module
        brings its device layers and its parameters) and optionally ``"lr"`` (per-layer
        learning rates).
    lr : float
        Learning rate (default of the groups).
    momentum, dampening, weight_decay : float
        ``torch.optim.SGD``'s options (default 0), applied as torch applies them to the
        digital parameters. Device weights are updated by the pulse rule, which keeps no
        momentum buffer and no weight decay: a group holding device layers must keep
        ``momentum`` and ``weight_decay`` at 0 (``ValueError`` otherwise, also when a
        scheduler such as ``OneCycleLR`` sets them: pass ``cycle_momentum=False``). They are
        in the defaults so that schedulers which look for them work.
    nesterov : bool
        Nesterov momentum (digital parameters; needs ``momentum > 0`` and ``dampening = 0``).
    rule : str, learning_rules.PulseRule or None
        ``bidirectional``, ``unidirectional``, ``stochastic`` or ``adaptive``, or a rule.
        Default (None): the rule the model's device layers were converted for
        (``convert(model, rule=...)``, kept as each layer's ``converted_rule``), so a model
        converted for the stochastic rule trains with it without naming it twice;
        ``"bidirectional"`` for layers built directly. Layers converted for different rules
        need an explicit ``rule`` (``ValueError`` otherwise).
    seed : int
        Seed of the optimizer's own random numbers (stochastic rounding in the non-fused paths;
        device arrays draw theirs from their own counters).
    **rule_options
        :class:`learning_rules.PulseRule` fields (``rounding="stochastic"``, ``n_max=8``, ...).

    Attributes
    ----------
    rule : learning_rules.PulseRule
    last_stats : dict
        ``pulses`` and ``refreshes`` of the last :meth:`step`.
    totals : dict
        ``pulses`` and ``refreshes`` since construction (saved in the state dict).

    Notes
    -----
    A device layer that was run forward and backward several times before :meth:`step` gets
    one update with all stashed rows (the sum of the requests, as torch accumulates
    gradients). :meth:`zero_grad` also drops the stashes. Unidirectional rules need layers with
    ``mapping="differential"`` (``convert(..., rule="unidirectional")`` picks it).
    """

    def __init__(
        self,
        params,
        lr: float = 0.01,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        rule=None,
        seed: int = 0,
        **rule_options,
    ):
        lr = _check_lr("lr", lr)
        sgd = _check_sgd_options(
            {
                "momentum": momentum,
                "dampening": dampening,
                "weight_decay": weight_decay,
                "nesterov": nesterov,
            },
            "DeviceSGD",
        )
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        # with rule=None the rule comes from the layers, known once the groups are added
        self.rule = None if rule is None else _make_rule(rule, rule_options)
        self._layers: list[list[DeviceLayer]] = []
        self._rng = np.random.default_rng(seed)
        self._step_count = 0
        self.last_stats = {"pulses": 0, "refreshes": 0}
        self.totals = {"pulses": 0, "refreshes": 0}
        if isinstance(params, nn.Module):
            params = [{"params": [params]}]
        else:
            params = list(params)
            if params and not isinstance(params[0], dict):
                params = [{"params": params}]
        super().__init__(params, {"lr": lr, **sgd})
        if not any(self._layers):
            raise ValueError(
                "DeviceSGD found no device-backed layers in params; pass the converted model "
                "(DeviceSGD(model, lr=...)) or put its layers in the parameter groups "
                "(use torch.optim.SGD for a model without device layers)"
            )
        if self.rule is None:
            self.rule = _make_rule(_converted_rule(self.device_layers), rule_options)
            for layer in self.device_layers:
                self._check_layer(layer)

    def add_param_group(self, param_group: dict) -> None:
        """Add a group: ``"params"`` may hold tensors and modules (see the class docs)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, got {type(param_group).__name__}")
        group = dict(param_group)
        params, layers = _split(group.get("params", []), "params")
        if "lr" in group:
            group["lr"] = _check_lr("lr of a parameter group", group["lr"])
        given = {k: group[k] for k in _SGD_DEFAULTS if k in group}
        group.update(_check_sgd_options(given, "a DeviceSGD parameter group"))
        seen = {id(layer) for g in self._layers for layer in g}
        dup = [layer for layer in layers if id(layer) in seen]
        if dup:
            raise ValueError(f"a device layer appears in more than one group: {dup[0]!r}")
        uniq = list({id(layer): layer for layer in layers}.values())
        for layer in uniq:
            self._check_layer(layer)
        # torch forbids the same tensor in two groups; a module's params may repeat here
        group["params"] = list({id(p): p for p in params}.values())
        super().add_param_group(group)
        added = self.param_groups[-1]
        if uniq and (added["momentum"] or added["weight_decay"]):
            self.param_groups.pop()
            bad = "momentum" if added["momentum"] else "weight_decay"
            raise ValueError(
                f"DeviceSGD: {bad}={added[bad]!r} for a group with device layers; the pulse "
                "rule keeps no momentum buffer or weight decay for device weights (use 0, or "
                "put the digital parameters in a group of their own)"
            )
        self._layers.append(uniq)

    def _check_layer(self, layer) -> None:
        if self.rule is None:  # DeviceSGD(rule=None) while its groups are added: checked after
            return
        m = self.rule.method
        uses_uni = m == "unidirectional" or (
            m == "stochastic" and self.rule.stochastic_method == "unidirectional"
        )
        if uses_uni and layer.array.mapping != "differential":
            raise ValueError(
                f"rule method {m!r} needs device layers with mapping='differential', but "
                f"{type(layer).__name__} has mapping={layer.array.mapping!r}; convert with "
                f"rule={m!r} (or mapping='differential')"
            )

    @property
    def device_layers(self) -> list:
        """The device layers this optimizer trains, in group order."""
        return [layer for g in self._layers for layer in g]

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Zero parameter gradients and drop the device layers' stashed ``(x, delta)``."""
        super().zero_grad(set_to_none=set_to_none)
        for layer in self.device_layers:
            layer.clear_stash()
            layer.stash_token.grad = None

    @torch.no_grad()
    def step(self, closure=None):
        """One update: pulses on every device layer with a stash, SGD on the parameters.

        Parameters
        ----------
        closure : callable, optional
            Re-evaluates the model and returns the loss (run with gradients enabled).

        Returns
        -------
        The closure's loss, or None.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        pulses = refreshes = 0
        for gi, (group, layers) in enumerate(zip(self.param_groups, self._layers, strict=True)):
            lr = _check_lr(f"lr of parameter group {gi}", group["lr"])
            opts = _check_sgd_options({k: group[k] for k in _SGD_DEFAULTS}, f"parameter group {gi}")
            for p in group["params"]:
                if p.grad is not None:
                    self._sgd(p, lr, opts)
            for layer in layers:
                got = layer.take_stash()
                if got is None:
                    continue
                if opts["momentum"] or opts["weight_decay"]:
                    bad = "momentum" if opts["momentum"] else "weight_decay"
                    raise ValueError(
                        f"DeviceSGD: {bad}={opts[bad]!r} in parameter group {gi}, which holds "
                        f"device layers ({type(layer).__name__}): a pulse rule turns each "
                        "step's (x, delta) rows into pulses and keeps no momentum buffer or "
                        "weight decay for device weights; set them to 0 for groups with device "
                        "layers (they work for digital-only groups). With OneCycleLR pass "
                        "cycle_momentum=False."
                    )
                x, delta = got
                st = run_array_work(self._update, layer, x, delta, lr)
                pulses += int(st["pulses"])
                refreshes += int(st["refreshes"])
        self._step_count += 1
        self.last_stats = {"pulses": pulses, "refreshes": refreshes}
        self.totals["pulses"] += pulses
        self.totals["refreshes"] += refreshes
        return loss

    def _sgd(self, p: torch.Tensor, lr: float, opts: dict) -> None:
        """torch's SGD step on a digital parameter (momentum, dampening, weight decay,
        Nesterov as in ``torch.optim.SGD``)."""
        g = p.grad
        if opts["weight_decay"]:
            g = g.add(p, alpha=opts["weight_decay"])
        mu = opts["momentum"]
        if mu:
            st = self.state[p]
            buf = st.get("momentum_buffer")
            if buf is None:
                buf = st["momentum_buffer"] = torch.clone(g).detach()
            else:
                buf.mul_(mu).add_(g, alpha=1 - opts["dampening"])
            g = g.add(buf, alpha=mu) if opts["nesterov"] else buf
        p.add_(g, alpha=-lr)

    def _update(self, layer, x, delta, lr):
        return self.rule.update(layer.array, x, delta, lr, rng=self._rng, step=self._step_count)

    # ------------------------------------------------------------------ state
    def _rule_json(self) -> str:
        return json.dumps(dataclasses.asdict(self.rule), sort_keys=True)

    def state_dict(self) -> dict:
        """torch's optimizer state plus ``"device_sgd"``: the rule, step counter, totals and
        the RNG state (a uint8 tensor of its JSON), so training resumes bit for bit. Holds
        tensors and plain values only (``torch.load(..., weights_only=True)`` reads it)."""
        sd = super().state_dict()
        rng = json.dumps(self._rng.bit_generator.state).encode()
        sd[_STATE_KEY] = {
            "rule": self._rule_json(),
            "step": int(self._step_count),
            "totals": dict(self.totals),
            "rng_state": torch.from_numpy(np.frombuffer(rng, dtype=np.uint8).copy()),
            "n_layers": [len(g) for g in self._layers],
        }
        return sd

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore a state from :meth:`state_dict`.

        Raises
        ------
        ValueError
            The state was saved with another rule or another layout of device layers, or is
            not a DeviceSGD state.
        """
        if not isinstance(state_dict, dict) or _STATE_KEY not in state_dict:
            raise ValueError(
                "state_dict is not a DeviceSGD state (no 'device_sgd' entry); it was saved by "
                "another optimizer"
            )
        state_dict = dict(state_dict)
        extra = state_dict.pop(_STATE_KEY)
        if extra["rule"] != self._rule_json():
            raise ValueError(
                f"state_dict was saved with rule {extra['rule']}, this optimizer has "
                f"{self._rule_json()}"
            )
        n_layers = [len(g) for g in self._layers]
        if list(extra["n_layers"]) != n_layers:
            raise ValueError(
                f"state_dict has device layers per group {list(extra['n_layers'])}, this "
                f"optimizer has {n_layers}"
            )
        super().load_state_dict(state_dict)
        rng = extra["rng_state"]
        raw = rng.numpy().tobytes() if isinstance(rng, torch.Tensor) else bytes(rng)
        self._rng.bit_generator.state = json.loads(raw.decode())
        self._step_count = int(extra["step"])
        self.totals = {k: int(v) for k, v in extra["totals"].items()}
