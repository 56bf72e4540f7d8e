"""Every study script of ``examples/`` runs end to end in a tiny configuration.

The docs' numbers come from these scripts (docs/REPRODUCTION.md, CONTINUAL.md, QUANTIZATION.md,
SPARSE_CODING.md, DICTIONARY_LEARNING.md "Reproduce"); a renamed API or a broken option would
otherwise only show when someone reruns a study. Each script runs as a user runs it (a fresh
interpreter, the repository root as working directory) with the smallest schedule it accepts,
and the test checks what it writes. The claims themselves are checked by the other gate files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.gate

ROOT = Path(__file__).resolve().parents[2]


def _run(script: str, *args, timeout: int = 600) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def neurosim_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    text = _run("neurosim_study.py", "--epochs", 1, "--seeds", 0, "--out", out)
    return out, text


def test_neurosim_study_and_report(neurosim_study, tmp_path):
    out, text = neurosim_study
    assert (out / "seed0" / "results.h5").exists()
    assert "epiram-unidirectional" in text
    abl = tmp_path / "ablation"
    _run("refresh_ablation.py", "--epochs", 1, "--out", abl)
    assert (abl / "results.h5").exists()
    report = _run("study_report.py", out, "--ablation", abl)
    assert "| alox_hfo2 |" in report and "software twin" in report


def test_e1_response_sweeps(tmp_path):
    text = _run("e1_response_sweeps.py", "--epochs", 1, "--out", tmp_path)
    assert "software" in text and "rho" in text.lower()


def test_symmetry_point_drift():
    text = _run("symmetry_point_drift.py", "--epochs", 1, "--min-pulses", 10)
    assert "pcmo" in text and "alox_hfo2" in text


def test_continual_study(tmp_path):
    args = ["--benchmarks", "permuted", "--tasks", 2, "--max-per-task", 200, "--epochs", 1]
    args += ["--devices", "software", "--optimizers", "sgd", "classp", "--seeds", 0]
    _run("continual_study.py", *args, "--out", tmp_path)
    rows = json.loads((tmp_path / "continual_study.json").read_text())
    assert sorted(r["optimizer"] for r in rows) == ["classp", "sgd"]


def test_sparse_coding_study(tmp_path):
    _run("sparse_coding_study.py", "--part", "recovery", "--models", "bsc", "dsc",
         "--seeds", "0", "--steps", 5, "--n", 200, "--out", tmp_path)  # fmt: skip
    assert len(json.loads((tmp_path / "recovery_bsc_dsc.json").read_text())) == 2


def test_sparse_coding_study_lca_claims(tmp_path):
    """docs/SPARSE_CODING.md "LCA on device presets": on the ideal device the codes equal the
    float ones; read-verify programming keeps LCA within a few percent of the float codes on the
    three non-ideal presets (median over 5 device instances); open-loop programming moves them
    more. The statistic is a max over codes, so one device's draw can move it (taox_hfox seed 0:
    0.196, seeds 1-4: 0.001-0.067): the claim is about the median."""
    _run("sparse_coding_study.py", "--part", "lca", "--seeds", "0-4", "--out", tmp_path)
    rows = {r["weights"]: r for r in json.loads((tmp_path / "lca.json").read_text())}
    # measured (the doc's table, medians over seeds 0-4): verify 0.046 / 0.003 / 0.054, open
    # loop 0.399 / 0.164 / 0.461 (ag_a_si / epiram / taox_hfox)
    assert rows["ideal (verify)"]["dcode"] < 1e-3 and rows["ideal (open_loop)"]["dcode"] < 1e-3
    for preset in ("ag_a_si", "epiram", "taox_hfox"):
        verify, open_loop = rows[f"{preset} (verify)"], rows[f"{preset} (open_loop)"]
        assert verify["dcode"] <= 0.08, (preset, verify)
        assert open_loop["dcode"] > 2 * verify["dcode"], (preset, verify, open_loop)


def test_dictionary_learning_study_device_claims(tmp_path):
    """docs/DICTIONARY_LEARNING.md, device sections, seed 0 (the doc: seeds 0-2).

    BCD on P-NMF: 256 levels or more reproduce the float objective (doc +0.015% / +0.38%); at
    64 levels the dead zone freezes W (doc +85%); stochastic rounding removes most of that (doc
    +6.1%). Online DL: insensitive to the level count (ideal 64 levels 1.007 of float, epiram
    1.010), while the strongly asymmetric ag_a_si costs 46% (1.46).
    """
    _run("dictionary_learning_study.py", "--seeds", 1, "--parts", "device,device-odl",
         "--out", tmp_path)  # fmt: skip
    res = json.loads((tmp_path / "results.json").read_text())
    bcd = {k: v["objective_excess"] for k, v in res["device"].items() if isinstance(v, dict)}
    assert bcd["ideal 2048"] <= 0.01 and bcd["ideal 256"] <= 0.02, bcd
    assert bcd["ideal 64"] >= 0.3, bcd
    assert bcd["ideal 64 stochastic"] <= bcd["ideal 64"] / 3, bcd
    odl = {k: v["objective_vs_float"]["mean"] for k, v in res["device-odl"].items()
           if isinstance(v, dict)}  # fmt: skip
    assert odl["ideal 64"] <= 1.03 and odl["epiram"] <= 1.05, odl
    assert odl["ag_a_si"] >= 1.2, odl


def test_vit_qkr(tmp_path):
    out = tmp_path / "vit.json"
    _run("vit_qkr.py", "--seeds", 0, "--epochs", 1, "--bits", 2, "--json", out)
    assert out.exists()
