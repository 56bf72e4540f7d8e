"""Every study reproduces its golden results bit for bit (``golden/make_golden.py``).

The golden files were recorded before the studies were reorganised around
:func:`synapse_sim.studies.base.run_study`; a refactoring that changes any number (a metric, a
final statistic, a weight's bytes, the recorded config) fails here. Floats are compared exactly.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "golden"))
import make_golden  # noqa: E402

pytest.importorskip("torch")


def _diff(expected, got, where="", out=None):
    """Paths where two canonical records differ (at most 10)."""
    out = [] if out is None else out
    if len(out) >= 10:
        return out
    if isinstance(expected, dict) and isinstance(got, dict):
        for k in sorted(set(expected) | set(got)):
            if k not in got or k not in expected:
                out.append(f"{where}/{k}: only in {'golden' if k in expected else 'new run'}")
            else:
                _diff(expected[k], got[k], f"{where}/{k}", out)
    elif isinstance(expected, list) and isinstance(got, list) and len(expected) == len(got):
        for i, (e, g) in enumerate(zip(expected, got, strict=True)):
            _diff(e, g, f"{where}[{i}]", out)
    elif expected != got or type(expected) is not type(got):
        out.append(f"{where}: golden {expected!r}, now {got!r}")
    return out


@pytest.mark.parametrize("name", sorted(make_golden.STUDIES))
def test_study_matches_golden(name):
    expected = json.loads(make_golden.golden_path(name).read_text())
    got = json.loads(json.dumps(make_golden.STUDIES[name]()))  # same JSON round trip
    diffs = _diff(expected, got)
    assert not diffs, f"study {name!r} differs from its golden results:\n" + "\n".join(diffs)


def test_canonical_form_is_exact():
    import numpy as np

    x = 0.1 + 0.2
    assert json.loads(json.dumps(make_golden.canon(x))) == x  # no rounding through JSON
    a = np.arange(20.0)
    b = a.copy()
    b[7] = np.nextafter(b[7], np.inf)  # one ulp
    assert make_golden.canon(a) != make_golden.canon(b)
    assert make_golden.canon(a) == make_golden.canon(a.copy())
    assert make_golden.canon(float("nan")) == "nan"
    assert _diff({"a": [1.0, 2.0]}, {"a": [1.0, 2.0000000000000004]}) == [
        "/a[1]: golden 2.0, now 2.0000000000000004"
    ]
