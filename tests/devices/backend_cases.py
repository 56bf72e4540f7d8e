"""Shared cases of the backend parity tests: ``cuda_sim_backend.py`` (the CUDA kernels under
numba's simulator, in a subprocess) and ``test_gpu_cupy.py`` (the same kernels on a GPU).

Not a test file (the name does not start with ``test_``); pytest puts this folder on ``sys.path``
(the test folders have no ``__init__.py``), so both import it as ``backend_cases``.
"""

from __future__ import annotations

import numpy as np

import devices


def sequence_device(device, lut_device):
    """The noisy device of the training sequence: ``device`` a preset name or ``"lut"``."""
    if device == "lut":
        return lut_device.with_variability(sigma_gmin=0.05, c2c_sigma=0.02, read_sigma=0.01)
    return devices.get(
        device, c2c_sigma=0.02, read_sigma=0.01, endurance_n50=400, p_stuck_gmin=0.03
    )


def sequence_converters():
    """A 6-bit DAC and a stochastic 8-bit ADC (keyword arguments of ``DeviceArray``)."""
    return {"dac": devices.UniformQuantizer(bits=6, lo=-1, hi=1),
            "adc": devices.UniformQuantizer(bits=8, lo=-4, hi=4, stochastic=True)}  # fmt: skip


def run_sequence(a, on=np.asarray):
    """pulse, pulse_update (three routes), pulse_request (both roundings, refresh flags), refresh,
    reads with noise and converters and drift on a 5 x 7 array ``a``, its inputs moved to the
    array's memory by ``on``. Returns the outputs in order; item 2 is the first update's
    coincidences."""
    rng = np.random.default_rng(5)
    n_plus = on(rng.integers(-9, 10, (5, 7)))
    n_minus = on(rng.integers(-9, 10, (5, 7)))
    x = on(rng.uniform(-1, 1, (4, 7)))
    d = on(rng.uniform(-1, 1, (4, 5)))
    dW = on(rng.normal(0, 0.1, (5, 7)))
    res = [a.matmul(x), a.rmatmul(d)]
    a.pulse(n_plus, n_minus)
    for method, side in (("bidirectional", "both"), ("bidirectional", "plus"),
                         ("unidirectional", "both")):  # fmt: skip
        r = a.pulse_update(x, d, lr=0.3, bl=31, method=method, side=side)
        res += [r["coincidences"], r["clipped"], r["bl"]]
    for rounding in ("nearest", "stochastic"):
        r = a.pulse_request(dW, rounding=rounding, n_max=4, refresh_threshold=0.5)
        res += [r["pulses"], r["needs_refresh"]]
    res.append(a.refresh(a.needs_refresh(0.5), mode="verify"))
    a.age(100.0)
    res += [a.weights(noise=True), a.saturated("high"), a.matmul(x)]
    return res


def train_cnn(backend, rule, to_gpu=None, steps=3):
    """A small CNN (conv + linear, float64) converted to ``backend`` device layers and trained
    ``steps`` steps with DeviceSGD on fixed data. ``to_gpu(model, x, y)`` moves the model and the
    data (CUDA tensors for ``backend="cupy"``). Returns (losses, the layers' weights as numpy
    arrays, the optimizer's totals)."""
    import torch
    from torch import nn

    from synapse_sim.nn import DeviceSGD, convert

    torch.manual_seed(0)
    base = nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3)
    ).double()
    x = torch.rand(6, 1, 6, 6, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    mapping = "differential" if rule == "unidirectional" else None
    hw = convert(base, device="ag_a_si", rule=rule, mapping=mapping, seed=2, backend=backend,
                 c2c_sigma=0.02, read_sigma=0.01)  # fmt: skip
    if to_gpu is not None:
        hw, x, y = to_gpu(hw, x, y)
    opt = DeviceSGD(hw, lr=5.0, rule=rule, seed=3)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        out = hw(x)
        assert out.device == x.device
        loss = nn.functional.cross_entropy(out, y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    weights = [m.array.weights() for m in hw if hasattr(m, "array")]
    weights = [w.get() if hasattr(w, "get") else w for w in weights]  # cupy -> numpy
    return losses, weights, opt.totals
