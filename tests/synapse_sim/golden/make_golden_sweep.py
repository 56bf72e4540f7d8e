"""Regenerate tests/synapse_sim/golden/sweep_small.json (run from the repository root).

    python tests/synapse_sim/golden/make_golden_sweep.py

The file was recorded at commit 1e5e187 (the pure move of the sweep code into
``synapse_sim/sweep/``) before the sweep was rebuilt on :class:`synapse_sim.ResultsWriter`;
``tests/synapse_sim/test_golden_sweep.py`` checks that every later version reproduces it bit
for bit. Regenerate only when the physics of a run deliberately changes (and say so).
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

#: The golden sweep: 2 x 2 points x 2 device instances + the software twin, tiny training.
SPEC = {
    "sweep": {"instances": 2, "save_weights": True, "software": True},
    "train": {"dataset": "digits", "hidden": [8], "epochs": 2, "max_train": 120, "seed": 3},
    "run": {"rule": "unidirectional"},
    "axes": {"device": ["epiram", "pcmo"], "c2c_sigma": [0.0, 0.02]},
}
GOLDEN = Path(__file__).with_name("sweep_small.json")


def digest(arr) -> str:
    """sha256 of an array's dtype, shape and bytes."""
    a = np.ascontiguousarray(arr)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())
    return h.hexdigest()


def content(path) -> dict:
    """Everything of a sweep file that does not depend on execution (no times, no order)."""
    from synapse_sim.sweep import read_sweep

    res = read_sweep(path)
    runs = {}
    for label, run in sorted(res["runs"].items()):
        runs[label] = {
            "attrs": {k: run[k] for k in ("device", "rule", "dataset", "epochs")},
            "config": json.loads(run["config"])
            if isinstance(run["config"], str)
            else run["config"],
            "metrics": {
                k: [float(x).hex() for x in np.asarray(v).ravel()]
                for k, v in sorted(run["metrics"].items())
                if k != "epoch_time"
            },
            "final": json.loads(json.dumps(run["final"], sort_keys=True, default=str)),
            "weights": {k: digest(v) for k, v in sorted((run["weights"] or {}).items())},
        }
    return {"seed": int(res["seed"]), "complete": bool(res["complete"]), "runs": runs}


def run(out, **kwargs) -> dict:
    from synapse_sim.sweep import run_sweep

    run_sweep(SPEC, out, progress=False, **kwargs)
    return content(Path(out) / "sweep.h5")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        data = run(tmp)
    GOLDEN.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN} ({len(data['runs'])} runs)", file=sys.stderr)
