"""CUDA kernels (devices/kernels/cuda.py) equal the numpy reference on the same random draws,
run under the numba CUDA simulator (issue #9).

The simulator must be switched on (``NUMBA_ENABLE_CUDASIM=1``) before ``numba.cuda`` is first
imported, so the parity tests live in ``cuda_sim_kernels.py`` and run here in a subprocess with
the variable set.
"""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from devices.kernels import reference as ref

HERE = Path(__file__).resolve().parent


def run_under_simulator(path: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run a pytest file in a fresh interpreter with the numba CUDA simulator on."""
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", str(path), "-q", "-x", "-p", "no:cacheprovider",
         "-m", "not slow", "-W", "error::RuntimeWarning"],
        env=env, capture_output=True, text=True, timeout=timeout, cwd=HERE.parents[1],
    )  # fmt: skip


def test_cuda_kernels_equal_reference_under_simulator():
    """Every CUDA kernel (write, write_sparse, read_noisy, pulse_update, pulse_request, verify)
    equals the reference: all families, routes, rounding modes (cuda_sim_kernels.py)."""
    r = run_under_simulator(HERE / "cuda_sim_kernels.py")
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-3000:]
    m = re.search(r"(\d+) passed", r.stdout)
    assert m and int(m.group(1)) >= 40, r.stdout[-800:]
    assert "skipped" not in r.stdout.splitlines()[-1], r.stdout[-800:]


def test_cuda_kernels_have_reference_signatures():
    """Same host-callable names and parameters as the reference (read from the source, without
    importing numba.cuda into this process)."""
    src = (HERE.parents[1] / "devices" / "kernels" / "cuda.py").read_text()
    for fn in ("write", "write_sparse", "read_noisy", "pulse_update", "pulse_request", "verify"):
        params = list(inspect.signature(getattr(ref, fn)).parameters)
        m = re.search(rf"^def {fn}\(([^)]*)\)", src, re.M)
        assert m, fn
        got = [p.split("=")[0].strip() for p in m.group(1).replace("\n", " ").split(",")]
        got = [p for p in got if p]  # names only (a default is not part of the comparison)
        assert got == params, fn


def test_import_devices_does_not_load_numba_cuda():
    code = "import sys, devices; print('numba.cuda' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=HERE.parents[1], timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def _nvvm_home():
    home = os.environ.get("CUDA_HOME")
    if home and list(Path(home).glob("nvvm/lib*/libnvvm.so*")):
        return home
    return None


@pytest.mark.slow
@pytest.mark.skipif(
    _nvvm_home() is None, reason="needs CUDA_HOME with libNVVM (see cuda_ptx_check.py)"
)
def test_cuda_kernels_compile_to_ptx():
    """The kernels type and lower on the real CUDA target (sm_90), not only in the simulator."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    r = subprocess.run([sys.executable, str(HERE / "cuda_ptx_check.py")], capture_output=True,
                       text=True, env=env, cwd=HERE.parents[1], timeout=600)  # fmt: skip
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert r.stdout.count("characters of PTX") == 7, r.stdout
