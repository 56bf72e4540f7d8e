"""One side of ``benchmarks/bench_aihwkit.py`` in its own process (not a benchmark itself).

Usage: python benchmarks/_peer_child.py {aihwkit,synapse_sim} TASK.json

``TASK.json`` holds ``{"task": "dense" | "mlp", ...}`` (the driver writes it); the result is
printed as one JSON line on stdout. The ``aihwkit`` side needs only numpy, torch and aihwkit
(it runs in the interpreter that has aihwkit, which need not have synapse_sim's dependencies);
the ``synapse_sim`` side imports this checkout's package. Both sides run the same work with the
same inputs: the dense tile update (``dense``) and the MNIST-5k MLP epochs (``mlp``), see the
driver's docstring.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from _timing import bridge_soft_mlp, median_times

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------- the dense update
def _dense_inputs(size, batch):
    rng = np.random.default_rng(3)
    w0 = rng.uniform(-0.1, 0.1, (size, size))
    x = rng.uniform(-1, 1, (batch, size))
    d = rng.uniform(-1, 1, (batch, size))
    return w0, x, d


def _dense_aihwkit(size, preset, bl, lr, batch, repeats, mapping):
    import torch
    from aihwkit.simulator.configs import ConstantStepDevice, SingleRPUConfig, SoftBoundsDevice
    from aihwkit.simulator.tiles import AnalogTile

    if mapping != "reference":
        return None  # one device per cross-point is the only layout of SingleRPUConfig
    device = {"constant_step": ConstantStepDevice, "soft_bounds": SoftBoundsDevice}[preset]()
    cfg = SingleRPUConfig(device=device)
    cfg.update.update_bl_management = False
    cfg.update.update_management = False
    cfg.update.desired_bl = bl
    tile = AnalogTile(size, size, cfg)
    tile.set_learning_rate(lr)
    w0, x, d = _dense_inputs(size, batch)
    tile.set_weights(torch.from_numpy(w0.astype(np.float32)))
    xt = torch.from_numpy(x.astype(np.float32))
    dt = torch.from_numpy(d.astype(np.float32))
    return median_times(lambda: tile.update(xt, dt), repeats), None


def _dense_ours(size, preset, bl, lr, batch, repeats, mapping):
    sys.path.insert(0, str(ROOT))
    import devices

    arr = devices.DeviceArray((size, size), devices.get(preset), seed=0, mapping=mapping)
    w0, x, d = _dense_inputs(size, batch)
    arr.program(w0)
    info = {}

    def run():
        info.update(arr.pulse_update(x, d, lr, bl, bl_management=False, update_management=False))

    # between the twins' size thresholds the kernel's first calls try (and compile) both twins
    # (devices/kernels/twins.py); done here, outside the timed calls (at 512 and above, the
    # sizes of aihwkit's benchmark, the parallel twin always runs)
    for _ in range(8):
        run()
    t = median_times(run, repeats)
    return t, info["coincidences"] / (batch * size * size)


def dense(side, task):
    """ns per sample x weight (wall and CPU), per (size, preset, mapping, BL)."""
    fn = _dense_aihwkit if side == "aihwkit" else _dense_ours
    rows = []
    for size in task["sizes"]:
        for preset in task["presets"]:
            for mapping in task["mappings"]:
                for bl in task["bls"]:
                    lr = task["lr"] * bl / 31  # the pulse probabilities of BL 31 at every BL
                    out = fn(size, preset, bl, lr, task["batch"], task["repeats"], mapping)
                    if out is None:
                        continue
                    (wall, cpu), dens = out
                    work = task["batch"] * size * size
                    rows.append({"size": size, "preset": preset, "mapping": mapping, "bl": bl,
                                 "wall_ns": wall / work * 1e9, "cpu_ns": cpu / work * 1e9,
                                 "pulses_per_sample_weight": dens})  # fmt: skip
    return rows


# ---------------------------------------------------------------------------- the MLP epochs
def _mlp_data(task):
    import torch

    z = np.load(task["data"])
    return (torch.from_numpy(z["x_train"]), torch.from_numpy(z["y_train"]),
            torch.from_numpy(z["x_test"]), torch.from_numpy(z["y_test"]))  # fmt: skip


def mlp(side, task):
    """Seconds per epoch (batch ``task["batch"]``, lr ``task["lr"]``, cross-entropy) of the
    software MLP (``torch.optim.SGD``) and of its converted twin, and the twin's test accuracy."""
    import torch
    import torch.nn.functional as F

    if task["torch_threads"]:
        torch.set_num_threads(task["torch_threads"])
    X, Y, Xt, Yt = _mlp_data(task)
    soft = bridge_soft_mlp()
    if side == "aihwkit":
        from aihwkit.nn.conversion import convert_to_analog
        from aihwkit.optim import AnalogSGD
        from aihwkit.simulator.configs import ConstantStepDevice, SingleRPUConfig

        hw = convert_to_analog(bridge_soft_mlp(), SingleRPUConfig(device=ConstantStepDevice()))
        h_opt = AnalogSGD(hw.parameters(), lr=task["lr"])
        h_opt.regroup_param_groups(hw)
    else:
        sys.path.insert(0, str(ROOT))
        from synapse_sim.nn import DeviceSGD, convert

        hw = convert(bridge_soft_mlp(), device="constant_step", rule="stochastic")
        h_opt = DeviceSGD(hw, lr=task["lr"], rule="stochastic")
    s_opt = torch.optim.SGD(soft.parameters(), lr=task["lr"])
    B = task["batch"]

    def epoch(net, opt):
        t0, c0 = time.perf_counter(), time.process_time()
        for s in range(0, X.shape[0] - B + 1, B):
            opt.zero_grad()
            F.cross_entropy(net(X[s : s + B]), Y[s : s + B]).backward()
            opt.step()
        return time.perf_counter() - t0, time.process_time() - c0

    out = {"torch_threads": torch.get_num_threads()}
    for name, net, opt in (("software", soft, s_opt), ("device", hw, h_opt)):
        ts = [epoch(net, opt) for _ in range(task["epochs"] + 1)][1:]  # the first: warm-up
        out[f"{name}_s"] = statistics.median(t for t, _ in ts)
        out[f"{name}_cpu_s"] = statistics.median(c for _, c in ts)
        with torch.no_grad():
            out[f"{name}_test_acc"] = float((net(Xt).argmax(1) == Yt).float().mean())
    return out


def main():
    side, path = sys.argv[1], sys.argv[2]
    if side not in ("aihwkit", "synapse_sim"):
        raise SystemExit(f"side must be aihwkit or synapse_sim, got {side!r}")
    task = json.loads(Path(path).read_text())
    result = {"dense": dense, "mlp": mlp}[task["task"]](side, task)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
