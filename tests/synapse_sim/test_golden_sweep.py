"""Golden sweep: the sweep engine reproduces, bit for bit, what it wrote before its rebuild.

``golden/sweep_small.json`` was recorded by ``golden/make_golden_sweep.py`` at commit 1e5e187,
before the sweep moved onto :class:`synapse_sim.ResultsWriter` and was split into modules. Every
metric is compared through ``float.hex`` (exact), weights through sha256 digests.

Bit for bit holds where numpy's OpenBLAS runs the kernels the goldens were recorded with
(``golden/recorded_on.json``; OpenBLAS picks its kernels per CPU). On a CPU where it picks others
(its AVX-512 "SkylakeX" kernels on a Zen 4, for one) the software twin's float matmuls round
differently in the last bits: there the same code, run with ``OPENBLAS_CORETYPE=Haswell``, still
reproduces the file bit for bit, and without it the software run's metrics and weight digests
differ. So off those kernels the comparison is the studies' one (``make_golden.diff_records``):
integers, strings and configs exactly, metrics and final statistics to a relative 1e-5, weight
digests skipped.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

_HERE = Path(__file__).with_name("golden")
_spec = importlib.util.spec_from_file_location("make_golden_sweep", _HERE / "make_golden_sweep.py")
golden = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(golden)
sys.path.insert(0, str(_HERE))
import make_golden  # noqa: E402

EXPECTED = json.loads((_HERE / "sweep_small.json").read_text())
#: numpy's BLAS runs the kernels the goldens were recorded with: compare bit for bit
EXACT = (
    make_golden.machine()["blas"] == json.loads((_HERE / "recorded_on.json").read_text())["blas"]
)


def _loose(rec: dict) -> dict:
    """``rec`` for :func:`make_golden.diff_records` off the recorded kernels: metrics as floats
    (from ``float.hex``), weight digests under ``sha256`` keys (skipped there)."""
    runs = {}
    for label, run in rec["runs"].items():
        run = dict(run)
        run["metrics"] = {k: [float.fromhex(h) for h in v] for k, v in run["metrics"].items()}
        run["weights"] = {k: {"sha256": d} for k, d in run["weights"].items()}
        runs[label] = run
    return {**rec, "runs": runs}


def _differences(got: dict) -> list[str]:
    """Where a sweep differs from the golden: bit for bit on the recorded BLAS kernels (the
    labels and fields that differ), else as :func:`make_golden.diff_records` compares."""
    if EXACT:
        return [] if got == EXPECTED else _diff(got, EXPECTED) or ["(top-level fields)"]
    return make_golden.diff_records(_loose(EXPECTED), _loose(got))


def _diff(got: dict, want: dict) -> list[str]:
    """Labels and fields that differ (for a readable failure)."""
    out = []
    for label in sorted(set(got["runs"]) | set(want["runs"])):
        g, w = got["runs"].get(label), want["runs"].get(label)
        if g is None or w is None:
            out.append(f"{label}: {'missing' if g is None else 'unexpected'}")
            continue
        out += [f"{label}.{k}" for k in w if g.get(k) != w[k]]
    return out


def test_serial_sweep_equals_golden(tmp_path):
    got = golden.run(tmp_path)
    assert got["complete"] and len(got["runs"]) == 9
    assert not _differences(got), _differences(got)


def test_loose_comparison_still_catches_changed_results():
    """Off the recorded kernels the comparison still fails on a changed metric, pulse count or
    config value, and passes a last-bit difference of a metric."""
    label = next(iter(EXPECTED["runs"]))
    run = EXPECTED["runs"][label]
    metric = next(k for k, v in run["metrics"].items() if v and float.fromhex(v[-1]) != 0.0)

    def changed(fn):
        rec = json.loads(json.dumps(EXPECTED))
        fn(rec["runs"][label])
        return make_golden.diff_records(_loose(EXPECTED), _loose(rec))

    def ulp(r):
        r["metrics"][metric][-1] = math.nextafter(float.fromhex(r["metrics"][metric][-1]), 0).hex()

    def rel(r):
        r["metrics"][metric][-1] = (float.fromhex(r["metrics"][metric][-1]) * 1.001).hex()

    def digest(r):
        r["weights"] = {k: "0" * 64 for k in r["weights"]}

    def config(r):
        r["config"] = {**r["config"], "seed": -1}

    assert changed(ulp) == [] and changed(digest) == []
    assert changed(rel) and changed(config)
    counts = [k for k, v in run["final"].items() if type(v) is int and v]
    assert counts  # the runs' pulse and refresh counts
    assert changed(lambda r: r["final"].__setitem__(counts[0], r["final"][counts[0]] + 1))


@pytest.mark.slow
def test_process_sweep_equals_golden(tmp_path):
    got = golden.run(tmp_path, workers=2)
    assert got["complete"] and len(got["runs"]) == 9
    assert not _differences(got), _differences(got)
