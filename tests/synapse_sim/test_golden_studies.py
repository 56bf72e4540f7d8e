"""Every study reproduces its golden results (``golden/make_golden.py``).

The golden files were recorded before a refactoring (the last time at c018045, before the
module splits and kernel records of issue #14); a refactoring that changes any number (a metric,
a final statistic, the statistics of a weight array, a pulse count, the recorded config) fails
here. On the machine the goldens were recorded on (``golden/recorded_on.json``: the BLAS build
and the kernels it picked, the CPU numba compiles for) everything is compared bit for bit:
floats exactly and the SHA-256 of every weight array. On another machine integers, strings,
shapes and dtypes are compared exactly and floats to a relative 1e-5 (absolute 1e-12 near zero),
without the digests: the same code rounds differently in the last bit there (OpenBLAS picks its
kernels per CPU: goldens recorded on one machine differed by 1-3 ulp on another), and the
studies that train torch networks in float32 carry those differences through training: on a
znver3 CPU the same code ended up to 2.4e-6 (relative) from the goldens recorded on znver5, in
float32 losses and weights and in the float64 statistics of float32 arrays (a relative 1e-9,
the tolerance before, is below one float32 ulp). Any change of an algorithm moves these numbers
by far more, and changes pulse counts and other integers, which are compared exactly.

One run is compared more loosely off the recording machine (``LOOSE``): the QAT study's CLI
run quantizes activations to 4 bits, so a float32 difference in the last bit moves an
activation that lies on a rounding boundary to the next level. On an Intel Xeon (Sapphire
Rapids class, torch's MKL on AVX-512) one of its 1,257 training images was classified
differently after the second epoch (train accuracy 0.28401 against the golden 0.28321) and its
losses moved by 5e-5 (relative), the same code on the base and the changed tree. Its floats are
compared to 1e-3 (relative and absolute: one image in a thousand), its integers exactly.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "golden"))
import make_golden  # noqa: E402

pytest.importorskip("torch")


RECORDED_ON = json.loads((make_golden.GOLDEN / "recorded_on.json").read_text())
#: Bit for bit where the goldens were recorded (module docstring).
EXACT = make_golden.machine() == RECORDED_ON


#: The comparison (``make_golden.diff_records``; module docstring).
_diff = make_golden.diff_records
#: Paths of a study compared to ``make_golden.LOOSE_TOL`` off the recording machine (module
#: docstring).
LOOSE = {"qat": ("/cli/",)}


@pytest.mark.parametrize("name", sorted(make_golden.STUDIES))
def test_study_matches_golden(name):
    expected = json.loads(make_golden.golden_path(name).read_text())
    got = json.loads(json.dumps(make_golden.STUDIES[name]()))  # same JSON round trip
    diffs = _diff(expected, got, exact=EXACT, loose=LOOSE.get(name, ()))
    how = "bit for bit" if EXACT else "to 1e-5, LOOSE paths 1e-3 (not the recorded_on.json machine)"
    assert not diffs, f"study {name!r} differs from its golden results ({how}):\n" + "\n".join(
        diffs
    )


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
    # the comparison: floats to 1e-5 relative (a last-bit difference passes, 20 float32 ulps
    # pass, 1e-4 fails); integers exactly, int never equal to float, sha256 ignored
    assert _diff({"a": [1.0, 2.0]}, {"a": [1.0, 2.0000000000000004]}) == []
    assert _diff({"a": [2.0]}, {"a": [2.0 * (1 + 20 * 2.0**-24)]}) == []
    assert _diff({"a": [1.0, 2.0]}, {"a": [1.0, 2.0002]}) == ["/a[1]: golden 2.0, now 2.0002"]
    assert _diff({"n": 3}, {"n": 4}) == ["/n: golden 3, now 4"]
    assert _diff({"n": 3}, {"n": 3.0}) == ["/n: golden 3, now 3.0"]
    assert _diff({"w": {"sha256": "ab"}}, {"w": {"sha256": "cd"}}) == []
    # on the recording machine: bit for bit
    assert _diff({"a": [2.0]}, {"a": [2.0000000000000004]}, exact=True) == [
        "/a[0]: golden 2.0, now 2.0000000000000004"
    ]
    assert _diff({"w": {"sha256": "ab"}}, {"w": {"sha256": "cd"}}, exact=True) != []
    # a loose path (off the recording machine only): 1e-3 relative and absolute
    one_image = {"cli": {"acc": [0.2832140015910899]}}
    moved = {"cli": {"acc": [0.2840095465393795]}}
    assert _diff(one_image, moved) != []
    assert _diff(one_image, moved, loose=("/cli/",)) == []
    assert _diff(one_image, moved, loose=("/lib/",)) != []
    assert _diff(one_image, {"cli": {"acc": [0.2932]}}, loose=("/cli/",)) != []
    assert _diff(one_image, moved, exact=True, loose=("/cli/",)) != []
    assert _diff({"cli": {"n": 3}}, {"cli": {"n": 4}}, loose=("/cli/",)) != []
    rec = make_golden.canon(np.arange(20.0))
    assert rec["sum"] == 190.0 and rec["sumsq"] == 2470.0 and rec["max"] == 19.0
