"""numba's thread pool and torch's thread count (issue 15): starting numba's OpenMP pool must not
change ``torch.set_num_threads``, and results stay bit for bit.

Each check runs in a fresh process: numba starts its pool once per process, and the pytest
process has started it long before. torch applies ``set_num_threads`` to its OpenMP runtime
lazily (on its first parallel operation or ``get_num_threads``), and numba's start reaches that
runtime only after it: the child processes ask for the count first, as any torch work would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import devices  # noqa: E402
from devices.threads import openmp_thread_counts, start_numba_threads  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]

# a parallel numba function of the user's own (prange): its first call would start the pool
_PAR = (
    "from numba import njit, prange\n"
    "@njit(parallel=True)\n"
    "def par(a):\n"
    "    s = 0.0\n"
    "    for i in prange(a.size):\n"
    "        s += a[i]\n"
    "    return s\n"
)

# the same converted step as _converted_step below, printed as JSON
_STEP = (
    "import hashlib, json, numpy as np, torch\n"
    "from torch import nn\n"
    "from synapse_sim.nn import DeviceSGD, convert\n"
    "def converted_step():\n"
    "    torch.manual_seed(3)\n"
    "    model = nn.Sequential(nn.Linear(12, 9), nn.ReLU(), nn.Linear(9, 4))\n"
    "    hw = convert(model, device='constant_step', rule='stochastic', seed=5)\n"
    "    opt = DeviceSGD(hw, lr=0.05, rule='stochastic')\n"
    "    g = torch.Generator().manual_seed(1)\n"
    "    x, y = torch.rand(6, 12, generator=g), torch.randint(0, 4, (6,), generator=g)\n"
    "    for _ in range(3):\n"
    "        opt.zero_grad()\n"
    "        nn.functional.cross_entropy(hw(x), y).backward()\n"
    "        opt.step()\n"
    "    w = np.concatenate([hw[i].array.weights().ravel() for i in (0, 2)])\n"
    "    return hashlib.sha256(w.tobytes()).hexdigest()\n"
)


def _run(code: str) -> dict:
    env = dict(os.environ, NUMBA_NUM_THREADS="2")  # a pool of 2 even on a 1-core machine
    env.pop("OMP_NUM_THREADS", None)
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _converted_step() -> str:
    ns: dict = {}
    exec(_STEP, ns)  # noqa: S102 - the snippet the child processes run
    return ns["converted_step"]()


def test_numba_pool_started_raw_resets_torch_threads():
    """The mechanism the package guards against (so the tests below can fail): numba's OpenMP
    layer, started directly, sets torch's thread count to numba's."""
    out = _run(
        "import json, numba, torch\n"
        "torch.set_num_threads(1)\nassert torch.get_num_threads() == 1\n"
        "numba.get_num_threads()\n"
        "print(json.dumps({'layer': numba.threading_layer(), 'torch': torch.get_num_threads()}))\n"
    )
    if out["layer"] != "omp":
        pytest.skip(f"numba's threading layer here is {out['layer']!r}, not OpenMP")
    assert out["torch"] == 2


def test_device_array_keeps_torch_threads():
    out = _run(
        "import json, numpy as np, torch\n"
        "torch.set_num_threads(1)\nassert torch.get_num_threads() == 1\n"
        "import devices\n"
        "from devices.threads import openmp_thread_counts, start_numba_threads\n"
        + _PAR
        + "a = devices.DeviceArray((8, 16), devices.get('constant_step'), seed=0, "
        "backend='numba')\n"
        "counts = openmp_thread_counts()\n"
        "again = start_numba_threads()\n"
        "a.pulse_update(np.full((2, 16), 0.5), np.full((2, 8), -0.5), 0.05)\n"
        "par(np.ones(1000))\n"
        "import numba\n"
        "print(json.dumps({'torch': torch.get_num_threads(), 'numba': numba.get_num_threads(),"
        " 'again': again, 'counts': counts, 'after': openmp_thread_counts()}))\n"
    )
    assert out["torch"] == 1
    assert out["numba"] == 2  # numba's kernels keep their own threads
    assert out["again"] is False  # started once, by the array
    assert out["counts"] == out["after"]  # no OpenMP runtime's count moved


@pytest.mark.gate  # issue 15's acceptance: a fresh process with torch and the bridge (~10 s)
def test_converted_step_keeps_torch_threads_and_results():
    out = _run(
        "import json, numpy as np, torch\n"
        "torch.set_num_threads(1)\nassert torch.get_num_threads() == 1\n"
        + _STEP
        + _PAR
        + "h = converted_step()\n"
        "par(np.ones(1000))\n"
        "print(json.dumps({'torch': torch.get_num_threads(), 'hash': h,"
        " 'hash2': converted_step()}))\n"
    )
    assert out["torch"] == 1
    # bit for bit: a fresh process, the same process after the pool started, and this one
    assert out["hash"] == out["hash2"] == _converted_step()


def test_start_numba_threads_is_idempotent_here():
    start_numba_threads()  # the pytest process started numba's pool long ago
    before = openmp_thread_counts()
    assert start_numba_threads() is False
    assert openmp_thread_counts() == before
    assert all(isinstance(n, int) and n >= 1 for n in before.values())
    # the kernels still run with numba's own threads
    a = devices.DeviceArray((4, 4), devices.get("ideal"), seed=0, backend="numba")
    w0 = a.weights().copy()
    a.pulse_update(np.full(4, 0.5), np.full(4, -0.5), 0.1)
    assert not np.array_equal(a.weights(), w0)


def test_array_work_runs_blas_at_one_thread_and_restores_the_count():
    """run_array_work holds numpy's BLAS at one thread during the call (through the C
    functions it looks up once) and puts the count back afterwards, also after an error."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from synapse_sim.nn.tensors import ArrayThreads

    def blas_threads():
        info = [i for i in threadpool_info() if i["user_api"] == "blas"]
        mine = [i for i in info if "numpy" in i["filepath"]] or info
        return [i["num_threads"] for i in mine]

    if not blas_threads():
        pytest.skip("no BLAS library found by threadpoolctl")
    work = ArrayThreads()
    with threadpool_limits(2, user_api="blas"):
        before = blas_threads()
        seen = work(blas_threads)
        assert set(seen) == {1}
        assert blas_threads() == before

        def boom():
            raise RuntimeError("inside")

        with pytest.raises(RuntimeError, match="inside"):
            work(boom)
        assert blas_threads() == before


def test_array_work_time_counts_the_calls_and_their_wall_time():
    """run_array_work keeps the wall time spent inside its calls, failed calls included, and
    a converted model's training step adds one call per read and per layer update."""
    import time

    import torch
    import torch.nn.functional as F

    from synapse_sim.nn import DeviceSGD, convert
    from synapse_sim.nn.tensors import ArrayThreads, run_array_work

    work = ArrayThreads()
    assert (work.seconds, work.calls) == (0.0, 0)
    assert work(time.sleep, 0.02) is None
    assert work.calls == 1 and work.seconds >= 0.02  # at least the time slept (no upper bound)

    def boom():
        time.sleep(0.01)
        raise RuntimeError("inside")

    with pytest.raises(RuntimeError, match="inside"):
        work(boom)
    assert work.calls == 2 and work.seconds >= 0.03
    work.reset()
    assert (work.seconds, work.calls) == (0.0, 0)

    torch.manual_seed(0)
    net = convert(
        torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3)),
        device="ideal",
        rule="stochastic",
        seed=0,
    )
    opt = DeviceSGD(net, lr=0.1, rule="stochastic")
    x, y = torch.randn(4, 6), torch.tensor([0, 1, 2, 0])
    run_array_work.reset()
    t0 = time.perf_counter()
    opt.zero_grad()
    F.cross_entropy(net(x), y).backward()
    opt.step()
    wall = time.perf_counter() - t0
    # two forward reads, one backward read (the first layer's input needs no gradient),
    # two updates
    assert run_array_work.calls == 5
    assert 0.0 < run_array_work.seconds <= wall
