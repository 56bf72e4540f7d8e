"""Where the fused batch-1 update's time goes: its kernel call replayed on saved states.

Usage: python benchmarks/replay_online.py [--device ag_a_si] [--rule unidirectional]
[--compat] [--refresh hysteresis] [--presentations 40] [--repeats 7]

Trains the NeuroSim study's 400-100-10 network (``NEUROSIM_REFERENCE``, as
``benchmarks/bench_online.py``) on the fused path for 600 presentations, times the update of
each of the next 300 inside the run (``OnlineTrainer._apply``: the kernel call with its bit of
Python; median; the trainer runs its per-presentation loop, whose update is the same
``step_layers`` kernel as the whole-presentation blocks', because a block calls ``_apply`` only
for a presentation it hands back) and the whole presentation (mean), then saves, for each of
the next ``--presentations`` presentations, the array states and the rows the update kernel
reads. Each saved presentation's ``step_layers`` call is then timed from its own state
(restored before every call; the fastest of ``--repeats`` calls) in four ways:

* ``in a row``: each presentation replayed ``--repeats`` times back to back (the processor's
  branch predictors learn that one presentation);
* ``in turn``: the presentations replayed one after the other, ``--repeats`` rounds (every call
  a different presentation, as in a run);
* ``in turn, cold``: as ``in turn`` with a 64 MB stream through the caches before each call;
* ``in turn, no refresh``: as ``in turn`` with the refresh threshold set to 0 (the writes and
  the request loop alone).

Printed in us per presentation (the sum of the fastest calls over the presentations), with the
devices written, pulses and refreshes per presentation, and a hash of the state after the first
presentation (the same on every tree that computes the same numbers).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devices.kernels import online as kern  # noqa: E402
from synapse_sim.data.datasets import load_dataset  # noqa: E402
from synapse_sim.models.online import online_trainer  # noqa: E402
from synapse_sim.studies.experiments import NEUROSIM_REFERENCE  # noqa: E402
from synapse_sim.studies.train import (  # noqa: E402
    MLP,
    RunSpec,
    build_layers,
    initial_weights,
    make_rule,
)

_THR = 6  # slot of the refresh threshold in the packed floats (devices.kernels.online.pack)
_COUNTER = 5  # slot of the call counter in the packed ints


def _setup(device, rule_name, compat, refresh):
    cfg = NEUROSIM_REFERENCE
    if compat:
        cfg = dataclasses.replace(cfg, neurosim_compat=True)
    data = load_dataset(cfg.dataset, seed=cfg.seed, neurosim=cfg.neurosim_input)
    sizes = [data.x_train.shape[1], *cfg.hidden, data.n_classes]
    W0 = initial_weights(sizes, cfg.init, np.random.default_rng([cfg.seed, 1]), cfg.w_max)
    spec = RunSpec(
        device=device, rule=rule_name, rule_options={"refresh": refresh} if refresh else {}
    )
    net = MLP(build_layers(spec, cfg, W0))
    fast = online_trainer(net, make_rule(spec, cfg), cfg.layer_lr(len(W0)))
    if fast is None:
        raise SystemExit(f"{device} {rule_name}: the fused path does not cover this run")
    return data, net, fast


def _snapshot(net, fast):
    layers = [
        ([a.copy() for a in arr.state], arr.weight_cache().copy(), arr.refreshes.copy(),
         arr.counter)
        for arr in net.layers
    ]  # fmt: skip
    rows = ([a.copy() for a in fast._xin], [d.copy() for d in fast._din])
    return layers, fast._ipk.copy(), rows


def _restore(net, fast, snap):
    layers, ipk, (xin, din) = snap
    for arr, (st, wc, refr, counter) in zip(net.layers, layers, strict=True):
        for a, b in zip(arr.state, st, strict=True):
            a[...] = b
        arr.weight_cache()[...] = wc
        arr.refreshes[...] = refr
        arr.counter = counter
    fast._ipk[...] = ipk
    for a, b in zip(fast._xin, xin, strict=True):
        a[...] = b
    for a, b in zip(fast._din, din, strict=True):
        a[...] = b


def _call(net, fast, snap, flush):
    _restore(net, fast, snap)
    args = fast._kernel_layers()
    for li, arr in enumerate(net.layers):
        fast._ipk[li, _COUNTER] = arr.counter
    if flush is not None:
        flush[::8] += 1.0
    t = time.perf_counter()
    out = kern.step_layers(args, 0, len(net.layers))
    return time.perf_counter() - t, out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="ag_a_si")
    ap.add_argument("--rule", default="unidirectional")
    ap.add_argument("--compat", action="store_true", help="neurosim_compat=True")
    ap.add_argument("--refresh", default=None, help="refresh policy (default: the rule's)")
    ap.add_argument("--presentations", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args(argv)
    for name in ("presentations", "repeats"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    data, net, fast = _setup(args.device, args.rule, args.compat, args.refresh)
    fast._hk = None  # the per-presentation loop: every update goes through _apply (timed, saved)
    x, y = data.x_train, data.y_train
    eye = np.eye(data.n_classes)
    rng = np.random.default_rng(0)
    fast.epoch(x, y, eye, rng.integers(0, x.shape[0], 600), 0)
    apply = fast._apply
    spent = []

    def timed(lo, hi, step, *args):
        t = time.perf_counter()
        out = apply(lo, hi, step, *args)
        spent.append(time.perf_counter() - t)
        return out

    fast._apply = timed  # the update inside a training run: 300 presentations
    t0 = time.perf_counter()
    fast.epoch(x, y, eye, rng.integers(0, x.shape[0], 300), 600)
    whole = (time.perf_counter() - t0) / 300
    snaps = []

    def saving(lo, hi, step, *args):
        snaps.append(_snapshot(net, fast))
        return apply(lo, hi, step, *args)

    fast._apply = saving
    fast.epoch(x, y, eye, rng.integers(0, x.shape[0], args.presentations), 900)
    fast._apply = apply

    def in_row(flush=None):
        return [min(_call(net, fast, s, flush)[0] for _ in range(args.repeats)) for s in snaps]

    def in_turn(flush=None):
        best = [np.inf] * len(snaps)
        for _ in range(args.repeats):
            for k, s in enumerate(snaps):
                best[k] = min(best[k], _call(net, fast, s, flush)[0])
        return best

    written = []
    pulses = refreshes = 0
    for s in snaps:
        _restore(net, fast, s)
        before = [arr.state[5] + arr.state[6] for arr in net.layers]
        _, out = _call(net, fast, s, None)
        pulses += out[1]
        refreshes += out[2]
        written.append(
            [
                int(((arr.state[5] + arr.state[6]) != b).sum())
                for arr, b in zip(net.layers, before, strict=True)
            ]  # fmt: skip
        )
    _call(net, fast, snaps[0], None)
    h = hashlib.sha1()
    for arr in net.layers:
        for a in arr.state:
            h.update(np.ascontiguousarray(a).tobytes())
    n = len(snaps)
    label = f"{args.device} {args.rule}" + (" compat" if args.compat else "")
    label += f" refresh={args.refresh}" if args.refresh else ""
    per_layer = np.mean(written, axis=0).round(1).tolist()
    print(
        f"{label}: {n} presentations; devices written per presentation (per layer) {per_layer}, "
        f"pulses {pulses / n:.0f}, refreshes {refreshes / n:.1f}; state hash after the first "
        f"{h.hexdigest()[:16]}"
    )
    flush = np.zeros(8 << 20)
    rows = [("in a row", in_row()), ("in turn", in_turn()), ("in turn, cold", in_turn(flush))]
    thr = fast._fpk[:, _THR].copy()
    fast._fpk[:, _THR] = 0.0
    try:
        rows.append(("in turn, no refresh", in_turn()))
    finally:
        fast._fpk[:, _THR] = thr
    print(f"  {'in a training run':<22} {1e6 * float(np.median(spent)):6.1f} us per presentation "
          f"(median; mean {1e6 * float(np.mean(spent)):.1f}; the whole presentation, mean "
          f"{1e6 * whole:.1f})")  # fmt: skip
    for name, ts in rows:
        print(f"  {name:<22} {1e6 * sum(ts) / n:6.1f} us per presentation")


if __name__ == "__main__":
    main()
