"""The trainers' ``backend`` (issue #9): names and availability checked with the reason, the
backend recorded in the results, and (in a subprocess, under numba's CUDA simulator) training
with ``backend="cuda-sim"`` giving the CPU backends' history: the GPU training path run end to
end on a CPU (``cuda_sim_train.py``)."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from devices import gpu
from synapse_sim.cli.app import main
from synapse_sim.results.store import read_results
from synapse_sim.studies.experiments import run_training
from synapse_sim.studies.train import BACKENDS, RunSpec, TrainConfig, resolve_backend, train

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TINY = TrainConfig(dataset="digits", hidden=(4,), epochs=1, max_train=30, batch_size=10)


@pytest.fixture(autouse=True)
def _fresh_status():
    gpu.cupy_status.cache_clear()
    yield
    gpu.cupy_status.cache_clear()


def _no_gpu_backend() -> str:
    ok, why = gpu.gpu_backend_status()
    if ok:  # pragma: no cover - only on a GPU machine
        pytest.skip("a GPU is usable here: backend='cupy' is available")
    return why


def _sim(marker: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", str(HERE / "cuda_sim_train.py"), "-q", "-x",
         "-p", "no:cacheprovider", "-m", marker],
        env=env, capture_output=True, text=True, timeout=900, cwd=ROOT,
    )  # fmt: skip


def _passed(r, at_least: int) -> None:
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-3000:]
    m = re.search(r"(\d+) passed", r.stdout)
    assert m and int(m.group(1)) >= at_least, r.stdout[-800:]
    assert "skipped" not in r.stdout.splitlines()[-1], r.stdout[-800:]


@pytest.mark.gate  # ~50 s on 2 cores (a subprocess under the CUDA simulator): `make gates`
def test_cuda_sim_training_equals_cpu_backends():
    """The MLP trainer with backend='cuda-sim' equals numba bit for bit and numpy to rounding for
    the bidirectional (both mappings), unidirectional, stochastic and adaptive rules, the
    software twin, stochastic rounding, and ``synapse-sim train --backend cuda-sim``."""
    _passed(_sim("not slow"), 7)


@pytest.mark.slow
def test_cuda_sim_compare_equals_numba():
    """``compare`` (a converted torch CNN) with backend='cuda-sim' equals numba bit for bit."""
    _passed(_sim("slow"), 1)


# ------------------------------------------------------------------------ names and availability
def test_bad_backend_lists_choices_and_suggests():
    with pytest.raises(ValueError, match=r"backend must be one of 'auto', 'numpy', 'numba', "
                                         r"'cupy', 'cuda-sim', got 'gpu'"):  # fmt: skip
        TrainConfig(backend="gpu")
    with pytest.raises(ValueError, match=r"did you mean 'cupy'"):
        TrainConfig(backend="cuppy")
    with pytest.raises(ValueError, match="backend must be one of"):
        resolve_backend(None)


def test_names_resolve():
    assert resolve_backend("auto") == "numba"
    for b in ("numpy", "numba"):
        assert resolve_backend(b) == b
    assert set(BACKENDS) == {"auto", "numpy", "numba", "cupy", "cuda-sim"}
    # the config only checks the name: a GPU config can be built (and stored) anywhere
    assert TrainConfig(backend="cupy").to_dict()["backend"] == "cupy"


def test_cupy_unavailable_says_why_before_training(tmp_path):
    why = _no_gpu_backend()
    cfg = dataclasses.replace(TINY, backend="cupy")
    with pytest.raises(ValueError) as exc:
        train(cfg, ["software"], out=tmp_path / "run")
    msg = str(exc.value)
    assert msg.startswith("backend='cupy' is not available: ") and why in msg
    assert not (tmp_path / "run" / "results.h5").exists()  # refused before writing


def test_cuda_sim_needs_the_simulator():
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":  # pragma: no cover
        pytest.skip("the simulator is on in this process")
    cfg = dataclasses.replace(TINY, backend="cuda-sim")
    with pytest.raises(ValueError, match=r"backend='cuda-sim' is not available: .*"
                                         r"NUMBA_ENABLE_CUDASIM=1"):  # fmt: skip
        train(cfg, ["software"])


@pytest.mark.parametrize("command", ["train", "compare", "demo"])
def test_cli_cupy_without_gpu_is_one_line_error(command, tmp_path, capsys):
    why = _no_gpu_backend()
    out = tmp_path / "out"
    argv = {
        "train": ["train", "--dataset", "digits", "--epochs", "1", "--quiet"],
        "compare": ["compare", "--epochs", "1", "--quiet"],
        "demo": ["demo", "--epochs", "1", "--quiet"],
    }[command]
    rc = main([*argv, "--out", str(out), "--backend", "cupy"])
    err = capsys.readouterr().err
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("synapse-sim: error: backend='cupy'"), err
    assert " ".join(why.split()) in lines[0]
    assert not out.exists()  # nothing created


def test_cli_compare_bad_backend_name(tmp_path, capsys):
    rc = main(["compare", "--quiet", "--out", str(tmp_path / "c"), "--backend", "nunba"])
    err = capsys.readouterr().err
    assert rc == 2 and "did you mean 'numba'" in err and len(err.strip().splitlines()) == 1


# ------------------------------------------------------------------------ recorded in the results
def test_backend_recorded_and_override(tmp_path):
    """``auto`` is recorded as asked (train.backend) and as resolved (config.backend, per run);
    ``run_training(backend=...)`` replaces the config's; numpy and numba train alike."""
    runs = [RunSpec(device="software"), RunSpec(device="ag_a_si")]
    res = {}
    for asked in ("auto", "numpy"):
        out = tmp_path / asked
        info = run_training(TINY, runs, out, progress=False, plots=False, backend=asked)
        r = read_results(out / "results.h5")
        resolved = "numba" if asked == "auto" else asked
        assert r["config"]["train"]["backend"] == asked
        assert r["config"]["backend"] == resolved
        assert {run["config"]["backend"] for run in r["runs"].values()} == {resolved}
        assert info["result"].arrays["ag_a_si-bidirectional"][0].backend == resolved
        res[asked] = info["result"].history
    for label in res["auto"]:
        for k in ("test_accuracy", "train_accuracy", "pulses"):
            assert res["auto"][label][k] == res["numpy"][label][k], (label, k)
