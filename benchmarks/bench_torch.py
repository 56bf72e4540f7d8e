"""Epoch time of the torch bridge: the small CNN in software vs converted, and the bridge's
overhead over the numpy trainer for the same MLP, in one run.

Usage: python benchmarks/bench_torch.py [--epochs 3] [--dataset mnist5k] [--tree DIR] [--json OUT]

``--tree DIR`` imports the package from another checkout (an A/B of two trees, same script).

1. CNN (conv 1->8 3x3, pool, conv 8->16 3x3, pool, linear -> 10) on the dataset, batch 32,
   lr 0.1: software (``torch.optim.SGD``), converted on ``ideal`` and on ``epiram``
   (bidirectional, reference mapping, stochastic rounding), via :func:`synapse_sim.compare`.
2. The 784-256-128-10 relu MLP of ``benchmarks/bench_train.py`` (MNIST-5k, batch 10, lr 0.01,
   cross-entropy) on ``epiram`` with the bidirectional rule, through the torch bridge
   (:func:`synapse_sim.compare`, lr 0.1 on the batch-mean loss) and through the numpy trainer
   (:func:`synapse_sim.train`, lr 0.01 on the batch sum: the same requested steps); the
   software twins of both are timed too (initial weights differ: torch's vs Glorot).

Each configuration trains ``--epochs`` epochs; the first (JIT compilation, caches) is dropped
and the median of the others is reported. torch and BLAS run one thread (as in the trainers).

3. ``--only step`` (issue 15, the thread fight): a plain user loop, with the process's default
   thread counts, of the 784-256-128-10 relu MLP, batch 10, cross-entropy, converted with
   ``convert(..., device="constant_step", rule="stochastic")`` and trained by ``DeviceSGD``
   (stochastic rule), next to the same loop on the unconverted model with
   ``torch.optim.SGD``. Reported (medians over steps, rounds interleaved so that a load change
   hits every configuration alike): the software step, the converted step, the converted
   step with the array work run as the process's BLAS threads have it (the fight the bridge
   now avoids), the array work alone (the reads and rule updates of one step captured before
   training, replayed on the same arrays, no torch), process CPU time per step (spinning
   threads show up there), the bound the issue sets (software step + array work; the
   converted step's CPU time is reported as a ratio to it), and one epoch of the MNIST-5k
   training set (4,000 images, 400 steps) in software and converted. The learning rate is
   ``--lr`` (default 0.05, the issue's setting). Also the converted step without its array
   work (reads return a fixed array, rule updates do nothing; the bridge's own cost: tensors,
   autograd, checks, stash): the bound holds when it costs at most the software step.

   The replayed step underestimates the array work of training: as the model trains its
   hidden activations grow, and with them the pulses of every update (2-3x the coincidences
   of the first steps, a few hundred steps in at lr 0.05). So the converted steps also
   report their own array work, timed by the package (``run_array_work.seconds``: the wall
   time of the reads and updates inside each step), the rest of each step (torch and the
   bridge around the arrays, in training), the bound with that work (software step + the
   converted steps' array work, wall) and the converted epoch's array work. Two more converted
   steps keep their reads and replace the rule updates, by nothing and by a pass over a 32 MB
   array (which evicts the caches about as the update kernels' device state does); what each
   leaves beside its array work shows how much of torch's and the bridge's cost in training
   is the caches the updates evict.

4. ``--only threads`` (issue 15, numba's pool and torch's thread count): fresh child processes,
   each a user loop that sets ``torch.set_num_threads(1)``, runs a numba device-array update
   (a 256 x 784 ``constant_step`` array, as the numpy trainer would) and then plain torch
   steps of the MLP. In one kind of child numba's pool is started directly
   (``numba.get_num_threads()``, what any first parallel numba call did before the package kept
   the OpenMP counts), in the other the device array starts it
   (:func:`devices.threads.start_numba_threads`). Children alternate, ``--rounds`` of each;
   reported: torch's thread count after the numba work and the torch step before and after it
   (median wall and CPU ms per step).
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import statistics
import sys
from pathlib import Path


def _root() -> Path:
    """This checkout, or the one ``--tree DIR`` names (read before the package is imported:
    an A/B of two trees with the same script)."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--tree", type=Path, default=None)
    tree = pre.parse_known_args()[0].tree
    return (tree or Path(__file__).parents[1]).resolve()


sys.path.insert(0, str(_root()))

from _timing import bridge_mlp  # noqa: E402  (this script's folder, whatever --tree says)

from synapse_sim.data.datasets import load_dataset  # noqa: E402
from synapse_sim.studies.compare import compare  # noqa: E402
from synapse_sim.studies.train import RunSpec, TrainConfig, train  # noqa: E402


def _median(h):
    t = h["epoch_time"]
    return statistics.median(t[1:] if len(t) > 1 else t)


class _plain_array_calls:
    """Context: the bridge's array work run without its BLAS limit (the old behaviour)."""

    def __enter__(self):
        from synapse_sim.nn import optim, tensors

        self.mods, self.old = (tensors, optim), tensors.run_array_work
        for m in self.mods:
            m.run_array_work = lambda fn, *a: fn(*a)
        return self

    def __exit__(self, *exc):
        for m in self.mods:
            m.run_array_work = self.old


class _updates_replaced:
    """Context: the converted step with its reads kept and the optimizer's rule updates
    replaced, by nothing (``stream_mb`` 0) or by one pass over a ``stream_mb`` MB array per
    step (the first layer's update; it runs where the updates run, inside ``run_array_work``,
    and evicts the caches about as the update kernels' device state does). The arrays are not
    changed while it holds: what is left of a step beside its array work is then torch and the
    bridge, with and without the eviction."""

    def __init__(self, stream_mb: int = 0):
        self.stream_mb = stream_mb

    def __enter__(self):
        import numpy as np

        from synapse_sim.nn import DeviceSGD

        self.update = DeviceSGD._update
        big = np.ones(self.stream_mb * (1 << 20) // 8) if self.stream_mb else None

        def update(opt, layer, x, delta, lr):
            if big is not None and layer is opt.device_layers[0]:
                big.sum()
            return {"pulses": 0, "refreshes": 0}

        DeviceSGD._update = update
        return self

    def __exit__(self, *exc):
        from synapse_sim.nn import DeviceSGD

        DeviceSGD._update = self.update


class _no_array_work(_updates_replaced):
    """Context: the converted step without its array work (the bridge's own cost). Reads
    return a fixed array of the right shape and the optimizer's rule updates do nothing; the
    tensors, autograd nodes, checks and stash of every layer call stay as they are. The
    arrays are not changed while it holds."""

    def __enter__(self):
        import numpy as np

        import devices

        super().__enter__()
        self.read = devices.DeviceArray._read_product
        zeros = {}

        def read(arr, v, transpose):
            shape = (v.shape[0], arr.in_features if transpose else arr.out_features)
            return zeros.setdefault(shape, np.zeros(shape))

        devices.DeviceArray._read_product = read
        return self

    def __exit__(self, *exc):
        import devices

        devices.DeviceArray._read_product = self.read
        super().__exit__(*exc)


def _mlp_step_rows(rounds: int, steps: int, epoch: bool, lr: float = 0.05) -> list[dict]:
    """The thread-fight benchmark (section 3 of the module docs)."""
    import time

    import numpy as np
    import torch
    import torch.nn.functional as F

    from synapse_sim.nn import DeviceLayer, DeviceSGD
    from synapse_sim.nn.layers import run_array_work

    X, Y, soft, hw = bridge_mlp()
    s_opt = torch.optim.SGD(soft.parameters(), lr=lr)
    h_opt = DeviceSGD(hw, lr=lr, rule="stochastic")
    dev_layers = [m for m in hw.modules() if isinstance(m, DeviceLayer)]
    pos = {"soft": 0, "hw": 0}

    def step(net, opt, key):
        s = pos[key] % (X.shape[0] - 10)
        pos[key] += 10
        opt.zero_grad()
        F.cross_entropy(net(X[s : s + 10]), Y[s : s + 10]).backward()
        opt.step()

    # the array work of one converted step, captured from a real step
    F.cross_entropy(hw(X[:10]), Y[:10]).backward()
    work = [(m.array, *m.take_stash()) for m in dev_layers]
    hw.zero_grad()
    rng = np.random.default_rng(0)

    def array_work(_net=None, _opt=None, _key=None):
        # the calls the bridge makes, the way it makes them (run_array_work)
        for a, x, _ in work:
            run_array_work(a.matmul, x)
        for a, _, d in work[1:]:  # the first layer's input needs no gradient
            run_array_work(a.rmatmul, d)
        for a, x, d in work:
            run_array_work(functools.partial(h_opt.rule.update, rng=rng), a, x, d, lr)

    class _noop:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

    configs = {
        "software step": (soft, s_opt, "soft", _noop),
        "converted step": (hw, h_opt, "hw", _noop),
        "converted step, BLAS threads as the process has them": (
            hw,
            h_opt,
            "hw",
            _plain_array_calls,
        ),
        "array work alone (one step captured before training, replayed)": (
            None,
            None,
            None,
            _noop,
        ),
        "converted step without its array work (the bridge's own cost)": (
            hw,
            h_opt,
            "hw",
            _no_array_work,
        ),
        "converted step, rule updates stubbed (reads kept)": (
            hw,
            h_opt,
            "hw",
            _updates_replaced,
        ),
        "converted step, rule updates replaced by a 32 MB stream": (
            hw,
            h_opt,
            "hw",
            functools.partial(_updates_replaced, 32),
        ),
    }
    wall = {k: [] for k in configs}
    cpu = {k: [] for k in configs}
    # the array work inside each converted step (the package's own count of the time spent in
    # its reads and updates, ``run_array_work.seconds``; zero on trees without it): the work
    # of the steps actually trained, whose activations and errors (and so pulses) grow as the
    # model trains, unlike the one step replayed by "array work alone"
    counted = hasattr(run_array_work, "seconds")
    inside = {k: [] for k in configs}
    for _ in range(3):  # warm-up (numba caches, thread pools)
        for net, opt, key, ctx in configs.values():
            with ctx():
                (step if net is not None else array_work)(net, opt, key)
    for _ in range(rounds):
        for k, (net, opt, key, ctx) in configs.items():
            fn = step if net is not None else array_work
            with ctx():
                c0 = time.process_time()
                for _ in range(steps):
                    a0 = run_array_work.seconds if counted else 0.0
                    t0 = time.perf_counter()
                    fn(net, opt, key)
                    wall[k].append(time.perf_counter() - t0)
                    inside[k].append((run_array_work.seconds if counted else 0.0) - a0)
                cpu[k].append((time.process_time() - c0) / steps)
    rows = [
        {
            "bench": "mlp-step",
            "label": k,
            "step_ms": 1e3 * statistics.median(wall[k]),
            "cpu_ms_per_step": 1e3 * statistics.median(cpu[k]),
        }
        for k in configs
    ]
    # the bound the issue asks for: a converted step costs the software step plus the array
    # work, nothing more (the bridge's own overhead is the difference); first with the one
    # step replayed, then (below) with the array work of the converted steps themselves
    by = {r["label"]: r for r in rows}
    soft_r, work_r, conv_r = (
        by["software step"],
        by["array work alone (one step captured before training, replayed)"],
        by["converted step"],
    )
    bound = {
        "bench": "mlp-step",
        "label": "software step + that replayed array work",
        "step_ms": soft_r["step_ms"] + work_r["step_ms"],
        "cpu_ms_per_step": soft_r["cpu_ms_per_step"] + work_r["cpu_ms_per_step"],
    }
    conv_r["ratio_to_bound_cpu"] = conv_r["cpu_ms_per_step"] / bound["cpu_ms_per_step"]
    # the bound holds when the bridge's own cost is at most the software step
    own = by["converted step without its array work (the bridge's own cost)"]
    own["ratio_to_software_cpu"] = own["cpu_ms_per_step"] / soft_r["cpu_ms_per_step"]
    rows.append(bound)
    if counted:
        key = "converted step"
        work_in = 1e3 * statistics.median(inside[key])
        rest = 1e3 * statistics.median([w - a for w, a in zip(wall[key], inside[key], strict=True)])
        rows += [
            {
                "bench": "mlp-step",
                "label": "array work inside the converted steps",
                "step_ms": work_in,
            },
            {
                "bench": "mlp-step",
                "label": "converted step minus its array work (bridge + torch, training)",
                "step_ms": rest,
            },
            {
                "bench": "mlp-step",
                "label": "software step + the converted steps' array work (the bound)",
                "step_ms": soft_r["step_ms"] + work_in,
            },
        ]
        conv_r["ratio_to_bound_wall"] = conv_r["step_ms"] / rows[-1]["step_ms"]
        # why torch and the bridge cost more in training than stubbed: the same step with the
        # updates stubbed, and with a stream in their place (the caches evicted)
        for key in (
            "converted step, rule updates stubbed (reads kept)",
            "converted step, rule updates replaced by a 32 MB stream",
        ):
            rows.append(
                {
                    "bench": "mlp-step",
                    "label": key.replace("converted step, ", "") + ": minus its array work",
                    "step_ms": 1e3
                    * statistics.median(
                        [w - a for w, a in zip(wall[key], inside[key], strict=True)]
                    ),
                }
            )
    base = rows[0]["step_ms"]
    for r in rows:
        r["ratio_to_software"] = r["step_ms"] / base
    if epoch:
        for label, (net, opt, key) in {
            "software epoch": (soft, s_opt, "soft"),
            "converted epoch": (hw, h_opt, "hw"),
        }.items():
            pos[key] = 0
            a0 = run_array_work.seconds if counted else 0.0
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(X.shape[0] // 10):
                step(net, opt, key)
            rows.append(
                {
                    "bench": "mlp-epoch",
                    "label": label,
                    "epoch_s": time.perf_counter() - t0,
                    "cpu_s": time.process_time() - c0,
                }
            )
            if counted and net is hw:
                rows[-1]["array_work_s"] = run_array_work.seconds - a0
        rows[-1]["ratio_to_software"] = rows[-1]["epoch_s"] / rows[-2]["epoch_s"]
        rows[-1]["cpu_ratio_to_software"] = rows[-1]["cpu_s"] / rows[-2]["cpu_s"]
    return rows


def _threads_child(mode: str, steps: int, conn) -> None:
    """One child of section 4: torch steps before and after numba work (``mode``: how
    numba's pool starts, ``"numba"`` directly or ``"package"`` by the device array)."""
    import time

    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch import nn

    import devices

    torch.set_num_threads(1)
    torch.get_num_threads()  # torch applies the count to its OpenMP runtime now
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10)
    )
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    X, Y = torch.rand(1000, 784), torch.randint(0, 10, (1000,))

    def steps_ms():
        wall, c0 = [], time.process_time()
        for i in range(steps):
            s = (10 * i) % 990
            t0 = time.perf_counter()
            opt.zero_grad()
            F.cross_entropy(net(X[s : s + 10]), Y[s : s + 10]).backward()
            opt.step()
            wall.append(time.perf_counter() - t0)
        return 1e3 * statistics.median(wall), 1e3 * (time.process_time() - c0) / steps

    steps_ms()  # warm-up
    before = steps_ms()
    if mode == "numba":
        import numba

        numba.get_num_threads()
    a = devices.DeviceArray((256, 784), devices.get("constant_step"), seed=0, backend="numba")
    rng = np.random.default_rng(0)
    for _ in range(3):
        a.pulse_update(rng.random((10, 784)), rng.random((10, 256)) - 0.5, 0.05)
    threads = torch.get_num_threads()
    after = steps_ms()
    conn.send({"mode": mode, "torch_threads": threads, "before": before, "after": after})
    conn.close()


def _threads_rows(rounds: int, steps: int) -> list[dict]:
    """Section 4 of the module docs: children of both kinds, alternating."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    got = {"numba": [], "package": []}
    for _ in range(rounds):
        for mode in got:
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_threads_child, args=(mode, steps, child))
            p.start()
            got[mode].append(parent.recv())
            p.join()
    labels = {
        "numba": "numba's pool started directly (before)",
        "package": "numba's pool started by the package (now)",
    }

    def med(res, key, i):
        return statistics.median(r[key][i] for r in res)

    rows = []
    for mode, res in got.items():
        rows.append(
            {
                "bench": "threads",
                "label": labels[mode],
                "torch_threads_after": sorted({r["torch_threads"] for r in res}),
                "step_ms_before": med(res, "before", 0),
                "cpu_ms_before": med(res, "before", 1),
                "step_ms_after": med(res, "after", 0),
                "cpu_ms_after": med(res, "after", 1),
            }
        )
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--dataset", default="mnist5k")
    ap.add_argument("--device", default="epiram", help="nonlinear preset (default epiram)")
    ap.add_argument(
        "--only", choices=["step", "epochs", "threads"], default=None, help="one section"
    )
    ap.add_argument("--rounds", type=int, default=5, help="step section: interleaved rounds")
    ap.add_argument("--steps", type=int, default=20, help="step section: steps per round")
    ap.add_argument("--no-epoch", action="store_true", help="step section: skip the epochs")
    ap.add_argument("--lr", type=float, default=0.05, help="step section: learning rate")
    ap.add_argument(
        "--torch-threads", type=int, default=None, help="step section: torch.set_num_threads"
    )
    ap.add_argument("--tree", type=Path, default=None, help="import the package from DIR")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    import torch

    if args.torch_threads is not None:
        torch.set_num_threads(args.torch_threads)
    print(
        f"python {platform.python_version()}, torch {torch.__version__}, "
        f"torch threads {torch.get_num_threads()}"
    )
    rows = []
    if args.only == "threads":
        rows = _threads_rows(args.rounds, args.steps)
        for r in rows:
            print(
                f"{r['label']:44s} torch threads after {r['torch_threads_after']}  torch step "
                f"before {r['step_ms_before']:6.2f} ms (cpu {r['cpu_ms_before']:6.2f})  after "
                f"{r['step_ms_after']:6.2f} ms (cpu {r['cpu_ms_after']:6.2f})"
            )
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1))
        return rows
    if args.only != "epochs":
        rows += _mlp_step_rows(args.rounds, args.steps, not args.no_epoch, args.lr)
        for r in rows:
            t = f"{r['step_ms']:8.2f} ms/step" if "step_ms" in r else f"{r['epoch_s']:8.2f} s   "
            cpu = f"cpu {r['cpu_ms_per_step']:7.2f} ms/step" if "cpu_ms_per_step" in r else ""
            cpu = f"cpu {r['cpu_s']:8.2f} s" if "cpu_s" in r else cpu
            ratio = (
                f"x{r['ratio_to_software']:5.2f} vs software" if "ratio_to_software" in r else ""
            )
            if "cpu_ratio_to_software" in r:
                ratio += f"  cpu x{r['cpu_ratio_to_software']:5.2f}"
            if "ratio_to_bound_cpu" in r:
                ratio += f"  cpu x{r['ratio_to_bound_cpu']:5.2f} vs software + array work"
            if "ratio_to_software_cpu" in r:
                ratio += f"  cpu x{r['ratio_to_software_cpu']:5.2f} vs software"
            if "ratio_to_bound_wall" in r:
                ratio += f"  x{r['ratio_to_bound_wall']:5.2f} vs software + its array work"
            if "array_work_s" in r:
                ratio += f"  (array work {r['array_work_s']:.2f} s)"
            print(f"{r['bench']:10s} {r['label']:55s} {t} {cpu:22s} {ratio}")
    if args.only == "step":
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1))
        return rows
    print(f"dataset {args.dataset}")
    step_rows, rows = rows, []

    cnn = compare(
        "cnn",
        args.dataset,
        devices=["ideal", args.device],
        rules=["bidirectional"],
        epochs=args.epochs,
        batch_size=32,
        lr=0.1,
        seed=0,
        rule_options={"rounding": "stochastic"},
        progress=False,
    )
    soft = _median(cnn.history["software"])
    for label, h in cnn.history.items():
        t = _median(h)
        rows.append(
            {
                "bench": "cnn",
                "label": label,
                "epoch_s": t,
                "ratio_to_software": t / soft,
                "final_test_accuracy": h["test_accuracy"][-1],
            }
        )

    cfg = TrainConfig(
        dataset="mnist5k",
        hidden=(256, 128),
        activation="relu",
        loss="ce",
        init="uniform",
        batch_size=10,
        epochs=args.epochs,
        lr=(0.01,),
        seed=0,
    )
    data = load_dataset("mnist5k", seed=0)
    numpy_res = train(
        cfg,
        [RunSpec(device="software"), RunSpec(device=args.device, rule="bidirectional")],
        data=data,
        progress=False,
    )
    bridge = compare(
        "mlp",
        "mnist5k",
        devices=[args.device],
        rules=["bidirectional"],
        epochs=args.epochs,
        batch_size=10,
        lr=0.01 * 10,  # mean-reduced loss: the same step as the trainer's summed delta
        seed=0,
        progress=False,
    )
    for kind, res in (("mlp-numpy", numpy_res), ("mlp-torch-bridge", bridge)):
        for label, h in res.history.items():
            rows.append(
                {
                    "bench": kind,
                    "label": label,
                    "epoch_s": _median(h),
                    "final_test_accuracy": h["test_accuracy"][-1],
                }
            )
    dev_label = f"{args.device}-bidirectional"
    by = {(r["bench"], r["label"]): r for r in rows}
    for lab in ("software", dev_label):
        b, n = by[("mlp-torch-bridge", lab)], by[("mlp-numpy", lab)]
        b["ratio_to_numpy_trainer"] = b["epoch_s"] / n["epoch_s"]
    for r in rows:
        extra = ""
        if "ratio_to_software" in r:
            extra = f"x{r['ratio_to_software']:5.2f} vs software"
        if "ratio_to_numpy_trainer" in r:
            extra = f"x{r['ratio_to_numpy_trainer']:5.2f} vs numpy trainer"
        print(
            f"{r['bench']:17s} {r['label']:24s} {r['epoch_s']:7.3f} s/epoch  {extra:26s} "
            f"test acc {r['final_test_accuracy']:.3f}"
        )
    rows = step_rows + rows
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    main()
