"""Why the outputs of unidirectional `neurosim_compat` drift negative (one change at a time).

``examples/e4_collapse.py`` shows that unidirectional ``neurosim_compat`` on pcmo (seed 1) and
hzo_fefet (seed 2) collapses because the output layer saturates (every output pre-activation
about -6) and its requests then fall into the dead zone. This script asks why the outputs drift
negative: it reruns the collapsing configuration (NeuroSim's 400-100-10 network, MNIST-5k,
batch 1, blocks of 8,000 random draws, the rule's ``nearest`` rounding) and variants that each
change **one** thing, and tracks after every block, on the 1,000 test images, the output
layer's pre-activation as the network computes it (``z2``, compat's read with its ADC), split
into the target output and the nine others, with the mean output weight (read back), the
number of active hidden units (the 1-bit activations that enter the output array) and the
output layer's refreshes.

``--ledger`` adds bookkeeping runs on the general path (the same numbers as the fused path;
3 blocks by default): for every update of one array (the output array of the collapsing run and
of the run with a linear output array, the hidden array of the collapsing run) it adds up the
requested change (``-lr delta^T x``, in nominal steps), split into up requests (sent to G+) and
down requests (sent to G-), the pulses sent, the change they realized (read back, before any
refresh), where on its curve the pulsed device sat, and what the refreshes changed, per segment
(the first 100 and 1,000 presentations, then per block).

``--seeds 0 1 2`` runs the variants for those training seeds of every preset instead of the
collapsing seed and prints a table over seeds (``OUT/e4_drift_seeds.json``). Runs already in
the JSON file are kept (a rerun only adds what is missing).

Usage::

    python examples/e4_drift.py --out runs/e4_drift --ledger     # the trajectories, the books
    python examples/e4_drift.py --out runs/e4_drift --seeds 0 1 2 \\
        --variants base stochastic linear linear_hidden linear_output no_c2c refresh_ideal \\
        float_deadzone float_sgd
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from learning_rules import FloatWeights, PulseRule, program_form
from learning_rules.weights import as_weight_array
from synapse_sim.data.datasets import batches, load_dataset
from synapse_sim.models.mlp import MLP, initial_weights
from synapse_sim.models.online import online_trainer
from synapse_sim.studies import compat
from synapse_sim.studies.train import RunSpec, TrainConfig, build_layers, make_rule

LR = (0.4, 0.2)
DRAWS = 8000
#: Presentations of the first block after which the output layer is probed too.
EARLY = (100, 300, 1000, 3000)


@dataclasses.dataclass(frozen=True)
class Variant:
    """One run: the collapsing configuration with (at most) one thing changed."""

    name: str
    change: str
    rule: str = "unidirectional"
    overrides: tuple = ()
    rule_options: tuple = ()
    config: tuple = ()
    float_twin: str = ""  # "deadzone": float weights, the rule's rounding; "sgd": float SGD
    #: float dead-zone twin: a pulse toward zero realizes this many times a pulse away from it
    #: (mean 1 step), the nonlinear pair's pull measured by the books (1: none)
    pull: float = 1.0
    #: initial weights: "rule" (as train() programs them), "shifted" (NeuroSim's initial
    #: programming without the Gmin offset, which compat gives the reference mapping only:
    #: every weight lowered by 2 w_max Gmin / (Gmax - Gmin)) or "plain" (the weights as drawn)
    init: str = "rule"
    #: the overrides and rule options act on this layer only (0: hidden, 1: output; None: every
    #: layer); per-layer rule options train on the general path
    only_layer: int | None = None


#: The variants, each one change from ``base`` (the collapsing configuration).
VARIANTS = (
    Variant("base", "none (the collapsing run)"),
    Variant("stochastic", "rounding='stochastic' (no dead zone)",
            rule_options=(("rounding", "stochastic"),)),
    Variant("linear", "linear device (nl_ltp = nl_ltd = 0), same levels and c2c noise",
            overrides=(("nl_ltp", 0.0), ("nl_ltd", 0.0))),
    Variant("linear_hidden", "linear device in the hidden array only",
            overrides=(("nl_ltp", 0.0), ("nl_ltd", 0.0)), only_layer=0),
    Variant("linear_output", "linear device in the output array only",
            overrides=(("nl_ltp", 0.0), ("nl_ltd", 0.0)), only_layer=1),
    Variant("stochastic_hidden", "rounding='stochastic' in the hidden array only",
            rule_options=(("rounding", "stochastic"),), only_layer=0),
    Variant("stochastic_output", "rounding='stochastic' in the output array only",
            rule_options=(("rounding", "stochastic"),), only_layer=1),
    Variant("no_c2c", "c2c noise off", overrides=(("c2c_sigma", 0.0),)),
    Variant("refresh_ideal", "refresh_mode='ideal' (exact re-programming)",
            config=(("refresh_mode", "ideal"),)),
    Variant("refresh_0.99", "refresh_threshold 0.99 (instead of 0.9)",
            config=(("refresh_threshold", 0.99),)),
    Variant("bidirectional", "rule 'bidirectional' (compat: reference mapping, NeuroSim counts)",
            rule="bidirectional"),
    Variant("init_shifted", "initial weights lowered as compat programs the bidirectional "
            "rule's (NeuroSim's write without the Gmin offset)", init="shifted"),
    Variant("float_deadzone", "float weights (no device, no converters) with the dead zone "
            "of the device step", float_twin="deadzone"),
    Variant("float_deadzone_pull", "float weights with the dead zone and the nonlinear pair's "
            "pull toward zero (pulse toward zero / away as measured: pcmo 1.40, hzo_fefet 1.22; "
            "one change from 'float_deadzone')", float_twin="deadzone", pull=-1.0),
    Variant("float_sgd", "float weights, float SGD (the software twin; no dead zone)",
            float_twin="sgd"),
    Variant("bidirectional_plain", "rule 'bidirectional' with the initial weights as drawn "
            "(no Gmin shift; one change from 'bidirectional')", rule="bidirectional",
            init="plain"),
)  # fmt: skip

#: The books' pull toward zero of the nonlinear output array after the first 1,000
#: presentations (realized step of a pulse toward zero over one away from it; ``--ledger``).
PULL = {"pcmo": 1.40, "hzo_fefet": 1.22}


class PulledWeights(FloatWeights):
    """Float weights whose pulse toward zero realizes ``pull`` times a pulse away from zero
    (the two averaging one ``step``): the nonlinear pair's pull without its device."""

    def __init__(self, W, *, pull: float = 1.0, **kw):
        super().__init__(W, **kw)
        self.toward = 2.0 * pull / (1.0 + pull)
        self.away = 2.0 / (1.0 + pull)

    def pulse(self, n_plus, n_minus=None) -> None:
        n = np.asarray(n_plus, dtype=float)
        if n_minus is not None:
            n = n - np.asarray(n_minus, dtype=float)
        toward = n * self.W < 0
        self.add(self.step * n * np.where(toward, self.toward, self.away))


#: (preset, seed): the collapsing runs of the E4 table.
CASES = (("pcmo", 1), ("hzo_fefet", 2))


def setup(preset: str, seed: int, blocks: int, v: Variant):
    """Config, run spec, data and the network of one run, built as :func:`train` builds them."""
    cfg = TrainConfig(
        dataset="mnist5k", neurosim_input=True, hidden=(100,), lr=LR, batch_size=1,
        init="neurosim", seed=seed, schedule=f"draws:{blocks}x{DRAWS}",
        neurosim_compat=True, **dict(v.config),
    )  # fmt: skip
    opts = dict(v.rule_options) if v.only_layer is None else {}
    spec = RunSpec(device=preset, rule=v.rule, rule_options=opts)
    changed = dataclasses.replace(
        spec, overrides=dict(v.overrides), rule_options=dict(v.rule_options)
    )
    data = load_dataset("mnist5k", seed=seed, neurosim=True)
    sizes = [data.x_train.shape[1], *cfg.hidden, data.n_classes]
    W0 = initial_weights(sizes, cfg.init, np.random.default_rng([seed, 1]), cfg.w_max)
    layers = build_layers(changed, cfg, W0)
    if v.only_layer is not None:  # the other layers as in the collapsing run
        plain = build_layers(spec, cfg, W0)
        layers = [
            a if i == v.only_layer else p
            for i, (a, p) in enumerate(zip(layers, plain, strict=True))
        ]
    rule = make_rule(spec, cfg)
    if v.only_layer is not None and v.rule_options:  # one rule per layer (the general path)
        rule = [make_rule(changed if i == v.only_layer else spec, cfg) for i in range(len(W0))]
    if v.init != "rule":
        for arr, W in zip(layers, W0, strict=True):
            shift = 2.0 * arr.w_max * arr.device.gmin / arr.device.dG
            arr.program(W - shift if v.init == "shifted" else W, mode="ideal",
                        form=program_form(spec.rule, spec.mapping))  # fmt: skip
    if v.float_twin:
        # the device run's steps on float weights: only the dead zone's quantization is left
        steps = [a.nominal_step(spec.rule)[0] for a in layers]
        pull = PULL[preset] if v.pull < 0 else v.pull
        layers = [
            PulledWeights(W, w_max=cfg.w_max, step=s, pull=pull)
            for W, s in zip(W0, steps, strict=True)
        ]
        rule = (
            PulseRule.named("bidirectional", rounding=rule.rounding, theta=rule.theta)
            if v.float_twin == "deadzone"
            else PulseRule.named("software")
        )
    return cfg, spec, data, MLP(layers, cfg.activation, cfg.loss), rule


def probe(net, data) -> dict:
    """The output layer on the test images, as the network computes it."""
    acts, zs = net.forward(data.x_test)
    z2 = np.asarray(zs[-1])
    target = np.eye(z2.shape[1], dtype=bool)[data.y_test]
    out = acts[-1]
    W2 = np.asarray(net.layers[-1].weights())
    return {
        "test_accuracy": float((out.argmax(axis=1) == data.y_test).mean()),
        "z2_mean": float(z2.mean()),
        "z2_target": float(z2[target].mean()),
        "z2_other": float(z2[~target].mean()),
        "w2_mean": float(W2.mean()),
        "hidden_active": float((acts[1] >= 0.5).sum(axis=1).mean()),
        "refreshes_out": int(np.sum(getattr(net.layers[-1], "refreshes", 0))),
    }


def run(preset: str, seed: int, blocks: int, v: Variant) -> dict:
    """Train one variant block by block (the fused batch-1 path where it applies, else the
    general loop of :func:`train`), probing the output layer after every block."""
    cfg, _, data, net, rule = setup(preset, seed, blocks, v)
    lrs = cfg.layer_lr(len(net.layers))
    eye = np.eye(data.n_classes)
    rules = rule if isinstance(rule, list) else [rule] * len(net.layers)
    fast = None if isinstance(rule, list) else online_trainer(net, rule, lrs)
    data_rng = np.random.default_rng([seed, 2])
    round_rng = np.random.default_rng([seed, 3])
    sched = compat.config_schedule(cfg)
    xtr, ytr = data.x_train, data.y_train

    def present(perm, step) -> float:
        if fast is not None:
            return float(fast.epoch(xtr, ytr, eye, perm, step)[2])
        pulses = 0
        for k, i in enumerate(perm):
            acts, zs = net.forward(xtr[i : i + 1])
            _, d_out = net.loss_and_delta(acts[-1], eye[ytr[i : i + 1]])
            deltas = net.backward(acts, zs, d_out)
            for li, layer in enumerate(net.layers):
                st = rules[li].update(
                    layer, acts[li], deltas[li], lrs[li], rng=round_rng, step=step + k
                )
                pulses += st["pulses"]
        return float(pulses)

    t0, step = time.time(), 0
    early = [{**probe(net, data), "presented": 0}]
    rows = []
    for block in range(blocks):
        perm = np.concatenate(compat.block_orders(sched, xtr.shape[0], 1, data_rng, batches))
        cuts = [c for c in EARLY if c < perm.size] if block == 0 else []
        pulses, lo = 0.0, 0
        for hi in [*cuts, perm.size]:
            pulses += present(perm[lo:hi], step + lo)
            if hi < perm.size:
                early.append({**probe(net, data), "presented": hi})
            lo = hi
        step += perm.size
        rows.append({**probe(net, data), "pulses": pulses})
    return {"preset": preset, "seed": seed, "variant": v.name, "change": v.change,
            "early": early, "blocks": rows, "seconds": time.time() - t0}  # fmt: skip


#: Presentations of the first block at which the ledger closes a segment.
LEDGER_CUTS = (100, 1000)
#: (variant, array) the ledger books: the output array of the collapsing run and of the run
#: with a linear output array, and the hidden array of the collapsing run.
LEDGER_BOOKS = (("base", 1), ("linear_output", 1), ("base", 0))
LEDGER_KEYS = (
    "req_up", "req_dn", "n_up", "n_dn", "real_up", "real_dn", "g_up", "g_dn", "refresh_dw",
    "refreshes", "refresh_neg", "refresh_lo", "n_up_neg", "n_dn_neg", "real_up_neg",
    "real_dn_neg", "n_up_pos", "n_dn_pos", "real_up_pos", "real_dn_pos",
)  # fmt: skip


def ledger(preset: str, seed: int, blocks: int, v: Variant | None = None, layer: int = 1) -> dict:
    """A run (the collapsing one by default) on the general path with the output layer's books
    per segment (the first 100 and 1,000 presentations, then per block): the requested change
    in nominal steps split into up (G+) and down (G-) requests, the pulses sent, the change they
    realized (read back before any refresh), the mean normalized conductance of the device
    each pulse went to (``g_up`` for G+, ``g_dn`` for G-, weighted by pulses), and the
    refreshes (count, of negative weights, the smaller device's mean ``g``, the change in
    weight they made). ``layer``: the array booked (1: the output array, 0: the hidden one)."""
    v = VARIANTS[0] if v is None else v
    cfg, _, data, net, rule = setup(preset, seed, blocks, v)
    if (
        isinstance(rule, list)
        or rule.method != "unidirectional"
        or rule.refresh != "threshold"
        or rule.pulse_count != "nominal"
    ):
        raise ValueError("the ledger follows the unidirectional rule's nominal threshold path")
    lrs = cfg.layer_lr(len(net.layers))
    eye = np.eye(data.n_classes)
    out = net.layers[layer]
    dev = out.device
    step_w = out.nominal_step("unidirectional")[0]
    data_rng = np.random.default_rng([seed, 2])
    round_rng = np.random.default_rng([seed, 3])
    counting = dict(method=rule.method, side=rule.side, theta=rule.theta, n_max=rule.n_max,
                    rounding=rule.rounding, rng=round_rng)  # fmt: skip
    sched = compat.config_schedule(cfg)
    xtr, ytr = data.x_train, data.y_train
    step, rows = 0, []
    b = dict.fromkeys(LEDGER_KEYS, 0.0)
    for block in range(blocks):
        order = compat.block_orders(sched, xtr.shape[0], 1, data_rng, batches)
        for k, idx in enumerate(order):
            acts, zs = net.forward(xtr[idx])
            _, d_out = net.loss_and_delta(acts[-1], eye[ytr[idx]])
            deltas = net.backward(acts, zs, d_out)
            for li, arr in enumerate(net.layers):  # the other arrays as PulseRule.update does
                if li != layer:
                    rule.update(arr, acts[li], deltas[li], lrs[li], rng=round_rng, step=step)
            # the booked array: what PulseRule.update does (unidirectional, nominal counts,
            # threshold refresh), with reads in between
            dW = rule.request(acts[layer], deltas[layer], lrs[layer])
            w0 = out.weights()
            g0 = (out.conductances - dev.gmin) / dev.dG  # (2, out, in): G+ and G-
            res = as_weight_array(out).pulse_request(
                dW, refresh_threshold=rule.refresh_threshold, **counting
            )
            w1 = out.weights()
            r = np.abs(dW) / step_w
            sent = np.floor(r) + (r - np.floor(r) >= rule.theta)  # nearest (the ledger's rule)
            if rule.rounding != "nearest":
                raise ValueError("the ledger counts nearest rounding")
            up, dn = dW > 0, dW < 0
            b["req_up"] += r[up].sum()
            b["req_dn"] += r[dn].sum()
            b["n_up"] += sent[up].sum()
            b["n_dn"] += sent[dn].sum()
            b["real_up"] += (w1 - w0)[up].sum() / step_w
            b["real_dn"] += -(w1 - w0)[dn].sum() / step_w
            for sign, pairs in (("neg", w0 < 0), ("pos", w0 > 0)):  # by the weight's sign
                b[f"n_up_{sign}"] += sent[up & pairs].sum()
                b[f"n_dn_{sign}"] += sent[dn & pairs].sum()
                b[f"real_up_{sign}"] += (w1 - w0)[up & pairs].sum() / step_w
                b[f"real_dn_{sign}"] += -(w1 - w0)[dn & pairs].sum() / step_w
            b["g_up"] += (sent * g0[0])[up].sum()
            b["g_dn"] += (sent * g0[1])[dn].sum()
            mask = res["needs_refresh"]
            if mask is not None and mask.any():
                g1 = (out.conductances - dev.gmin) / dev.dG
                out.refresh(mask, mode=rule.refresh_mode)
                b["refresh_dw"] += (out.weights() - w1)[mask].sum() / step_w
                b["refreshes"] += mask.sum()
                b["refresh_neg"] += (w1[mask] < 0).sum()
                b["refresh_lo"] += np.minimum(g1[0], g1[1])[mask].sum()
            step += 1
            done = k + 1
            if (block == 0 and done in LEDGER_CUTS) or done == len(order):
                row = {key: float(val) for key, val in b.items()}
                row["g_up"] = row["g_up"] / row["n_up"] if row["n_up"] else float("nan")
                row["g_dn"] = row["g_dn"] / row["n_dn"] if row["n_dn"] else float("nan")
                if row["refreshes"]:
                    row["refresh_lo"] /= row["refreshes"]
                rows.append({**row, "presented": step, **probe(net, data)})
                b = dict.fromkeys(LEDGER_KEYS, 0.0)
    return {"preset": preset, "seed": seed, "variant": v.name, "change": v.change,
            "layer": layer, "rows": rows}  # fmt: skip


def _in_order(results: list[dict]) -> list[dict]:
    """``results`` by preset (:data:`CASES`), seed and variant (:data:`VARIANTS`) order."""
    presets = [p for p, _ in CASES]
    names = [v.name for v in VARIANTS]
    return sorted(results, key=lambda r: (presets.index(r["preset"]), r["seed"],
                                          names.index(r["variant"])))  # fmt: skip


def trajectory(r: dict) -> dict:
    """``{presentations: probe}`` of a run (the early probes and one per block)."""
    out = {e["presented"]: e for e in r["early"]}
    out.update({DRAWS * (k + 1): b for k, b in enumerate(r["blocks"])})
    return out


def _count(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 else str(n)


#: Presentations shown in the z2 table (those the runs reached).
MARKS = (0, 100, 1000, 8000, 40000, 80000, 200000, 400000, 1000000)


def z2_table(results: list[dict]) -> str:
    """Mean output pre-activation (test images) over the presentations, and the last state."""
    last = min(max(trajectory(r)) for r in results)
    marks = [m for m in MARKS if m <= last]
    head = (
        "| preset | seed | change from the collapsing run | "
        + " | ".join(f"z2 @{_count(m)}" for m in marks)
        + " | target / other z2, last | mean W2, block 1 / last | active hidden, start / last "
        "| output refreshes | acc. last (%) | pulses, last block |"
    )
    lines = [head, "|---|---:|---|" + "---:|" * (len(marks) + 6)]
    for r in _in_order(results):
        t = trajectory(r)
        z = " | ".join(f"{t[m]['z2_mean']:+.2f}" for m in marks)
        e = r["blocks"][-1]
        lines.append(
            f"| {r['preset']} | {r['seed']} | {r['change']} | {z} | {e['z2_target']:+.2f} / "
            f"{e['z2_other']:+.2f} | {r['blocks'][0]['w2_mean']:+.3f} / {e['w2_mean']:+.3f} | "
            f"{t[0]['hidden_active']:.0f} / {e['hidden_active']:.0f} | "
            f"{e['refreshes_out']} | {100 * e['test_accuracy']:.1f} | {e['pulses']:.3g} |"
        )
    return "\n".join(lines)


def _ratio(b: dict, num: str, den: str) -> str:
    return f"{b[num] / b[den]:.2f}" if b.get(den) else "-"


def ledger_table(led: dict) -> str:
    """The output layer's books per segment (in nominal steps, summed over the segment)."""
    head = (
        "| presentations | requested up / down (steps) | sent up / down (pulses) | realized "
        "up / down (steps) | realized per pulse up / down | g of the pulsed device, G+ / G- | "
        "per pulse up / down, w < 0 | per pulse up / down, w > 0 | refreshes (of w < 0) | "
        "refresh dw (steps) | z2 target / other |"
    )
    array = "output" if led["layer"] == 1 else "hidden"
    lines = [f"{led['preset']} seed {led['seed']}, {led['change']}, the {array} array:", "", head,
             "|" + "---:|" * 11]  # fmt: skip
    lo = 0
    for b in led["rows"]:
        pu = b["real_up"] / b["n_up"] if b["n_up"] else float("nan")
        pd = b["real_dn"] / b["n_dn"] if b["n_dn"] else float("nan")
        sg = " | ".join(
            f"{_ratio(b, 'real_up_' + k, 'n_up_' + k)} / {_ratio(b, 'real_dn_' + k, 'n_dn_' + k)}"
            for k in ("neg", "pos")
        )
        lines.append(
            f"| {_count(lo)}-{_count(b['presented'])} | {b['req_up']:.3g} / {b['req_dn']:.3g} | "
            f"{b['n_up']:.3g} / {b['n_dn']:.3g} | {b['real_up']:.3g} / {b['real_dn']:.3g} | "
            f"{pu:.2f} / {pd:.2f} | {b['g_up']:.2f} / {b['g_dn']:.2f} | {sg} | "
            f"{b['refreshes']:.3g} ({b['refresh_neg']:.3g}) | {b['refresh_dw']:+.0f} | "
            f"{b['z2_target']:+.2f} / {b['z2_other']:+.2f} |"
        )
        lo = b["presented"]
    return "\n".join(lines)


def seed_table(results: list[dict]) -> str:
    """Per preset and variant over seeds: the last block's test accuracy and target / other
    z2 (means, and the accuracy of each seed), the mean z2 after 100 presentations, and the
    active hidden units at the end of each seed's run."""
    groups: dict = {}
    for r in _in_order(results):
        groups.setdefault((r["preset"], r["variant"], r["change"]), []).append(r)
    head = (
        "| preset | change from the collapsing run | seeds | acc. last (%), per seed | "
        "mean acc. | target z2, last (mean) | other z2, last (mean) | z2 @100 (mean) | "
        "active hidden, last, per seed |"
    )
    lines = [head, "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for (preset, _, change), rs in groups.items():
        rs = sorted(rs, key=lambda r: r["seed"])
        acc = [100 * r["blocks"][-1]["test_accuracy"] for r in rs]
        tgt = np.mean([r["blocks"][-1]["z2_target"] for r in rs])
        oth = np.mean([r["blocks"][-1]["z2_other"] for r in rs])
        z100 = np.mean([trajectory(r)[100]["z2_mean"] for r in rs])
        seeds = ", ".join(str(r["seed"]) for r in rs)
        hid = " / ".join(f"{r['blocks'][-1]['hidden_active']:.0f}" for r in rs)
        lines.append(
            f"| {preset} | {change} | {seeds} | {' / '.join(f'{a:.1f}' for a in acc)} | "
            f"{np.mean(acc):.1f} | {tgt:+.2f} | {oth:+.2f} | {z100:+.2f} | {hid} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--blocks", type=int, default=25, help="blocks of 8,000 draws per run")
    ap.add_argument("--variants", nargs="*", default=[v.name for v in VARIANTS],
                    choices=[v.name for v in VARIANTS])  # fmt: skip
    ap.add_argument("--presets", nargs="*", default=[p for p, _ in CASES],
                    choices=[p for p, _ in CASES])  # fmt: skip
    ap.add_argument("--seeds", nargs="*", type=int, default=None,
                    help="training seeds (default: the collapsing seed of each preset); runs "
                    "already in OUT/e4_drift_seeds.json are kept")  # fmt: skip
    ap.add_argument("--ledger", action="store_true", help="also the output layer's books")
    ap.add_argument("--ledger-blocks", type=int, default=3)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    cases = [(p, s) for p, s in CASES if p in args.presets]
    name = "e4_drift.json"
    if args.seeds is not None:
        cases = [(p, s) for p, _ in cases for s in args.seeds]
        name = "e4_drift_seeds.json"
    path = args.out / name
    results = json.loads(path.read_text()) if path.exists() else []
    done = {(r["preset"], r["seed"], r["variant"], len(r["blocks"])) for r in results}
    for preset, seed in cases:
        for v in VARIANTS:
            if v.name not in args.variants or (preset, seed, v.name, args.blocks) in done:
                continue
            r = run(preset, seed, args.blocks, v)
            results.append(r)
            e = r["blocks"][-1]
            acc = 100 * e["test_accuracy"]
            print(f"{preset} seed {seed} {v.name}: z2 {e['z2_mean']:+.2f}, {acc:.1f}% "
                  f"({r['seconds']:.0f} s)", flush=True)  # fmt: skip
            path.write_text(json.dumps(results, indent=1))
    results = [r for r in results if len(r["blocks"]) == args.blocks]
    text = z2_table(results) if args.seeds is None else seed_table(results)
    if args.ledger:
        by_name = {v.name: v for v in VARIANTS}
        books = []
        for preset, seed in cases:
            for vname, layer in LEDGER_BOOKS:
                books.append(ledger(preset, seed, args.ledger_blocks, by_name[vname], layer))
                (args.out / "e4_drift_ledger.json").write_text(json.dumps(books, indent=1))
                text += "\n\n" + ledger_table(books[-1])
    (args.out / name.replace(".json", ".md")).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
