"""The trainer with ``backend="cupy"`` on a real GPU, against the plain numpy
reference backend (the same runs from the same seeds; no CPU kernels to compile).

Skipped, with the reason, where no GPU is usable; ``cuda_sim_train.py`` runs the same code path on a
CPU under numba's CUDA simulator, bit for bit. On a GPU the compiled kernels (libdevice, fused
multiply-add) agree with the CPU to rounding, so losses and weights are compared with a tolerance
and accuracies and pulse totals exactly. The torch bridge on CUDA tensors:
``tests/devices/test_gpu_cupy.py``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from devices import gpu
from synapse_sim.studies.train import RunSpec, TrainConfig, train

_OK, _WHY = gpu.gpu_backend_status()
if not _OK:  # pragma: no cover - the usual case off a GPU machine
    pytest.skip(f"backend='cupy' is not usable here: {_WHY}", allow_module_level=True)

import cupy  # noqa: E402 - only on a GPU machine

TINY = TrainConfig(
    dataset="digits", hidden=(16,), epochs=2, max_train=200, batch_size=10, lr=(0.4, 0.2), seed=1
)
OVERRIDES = {"c2c_sigma": 0.02, "read_sigma": 0.01}
RTOL = 1e-8


def host(a):
    return cupy.asnumpy(a) if isinstance(a, cupy.ndarray) else np.asarray(a)


@pytest.mark.parametrize(
    ("rule", "mapping"),
    [("bidirectional", "reference"), ("unidirectional", None), ("stochastic", None)],
)
def test_mlp_trains_like_reference(rule, mapping):
    runs = [RunSpec(device="ag_a_si", rule=rule, mapping=mapping, overrides=OVERRIDES)]
    label = runs[0].label
    res = {b: train(dataclasses.replace(TINY, backend=b), runs, progress=False)
           for b in ("numpy", "cupy")}  # fmt: skip
    g, c = res["cupy"], res["numpy"]
    assert g.arrays[label][0].backend == "cupy"
    h, k = g.history[label], c.history[label]
    assert sum(h["pulses"]) > 0
    for key in ("train_accuracy", "test_accuracy", "pulses"):
        assert h[key] == k[key], (key, h[key], k[key])
    for key in ("train_loss", "test_loss"):
        np.testing.assert_allclose(h[key], k[key], rtol=RTOL, err_msg=key)
    for u, v in zip(g.weights[label], c.weights[label], strict=True):
        np.testing.assert_allclose(host(u), host(v), rtol=RTOL, atol=1e-12)
