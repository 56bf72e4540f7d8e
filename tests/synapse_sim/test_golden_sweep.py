"""Golden sweep: the sweep engine reproduces, bit for bit, what it wrote before its rebuild.

``golden/sweep_small.json`` was recorded by ``golden/make_golden_sweep.py`` at commit 1e5e187,
before the sweep moved onto :class:`synapse_sim.ResultsWriter` and was split into modules. Every
metric is compared through ``float.hex`` (exact), weights through sha256 digests.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

_HERE = Path(__file__).with_name("golden")
_spec = importlib.util.spec_from_file_location("make_golden_sweep", _HERE / "make_golden_sweep.py")
golden = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(golden)

EXPECTED = json.loads((_HERE / "sweep_small.json").read_text())


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
    assert got == EXPECTED, _diff(got, EXPECTED)


@pytest.mark.slow
def test_process_sweep_equals_golden(tmp_path):
    got = golden.run(tmp_path, workers=2)
    assert got == EXPECTED, _diff(got, EXPECTED)
