"""Golden results of every study: small seeded runs, recorded bit for bit.

Each function of :data:`STUDIES` runs one small study (a few hundred digits, one or two epochs,
tiny networks) through its public entry point, into a temporary folder, reads the written
``results.h5`` back and returns a canonical JSON-able record: the file's config, seed and kind,
and per run its attributes, every per-epoch metric (wall-clock times left out), its final
statistics and its stored weights. Floats are kept exactly (JSON round-trips Python floats;
NaN and infinities become strings); arrays of more than 16 values become their shape, dtype, sum,
sum of squares, minimum, maximum, first values and a SHA-256 of their bytes.

``tests/synapse_sim/test_golden_studies.py`` reruns every study and compares with
``golden/studies_<name>.json``: integers, strings and shapes exactly, floats to a relative
1e-5 (see the test's docstring for why not bit for bit). The files were recorded at commit
c018045 (before the splits of issue #14 and the kernel records) with::

    PYTHONPATH=. python tests/synapse_sim/golden/make_golden.py            # all studies
    PYTHONPATH=. python tests/synapse_sim/golden/make_golden.py train qat  # some of them

Regenerate only when a result changes on purpose (physics, a deliberate default), and say so
in the commit message. Bit for bit the numbers hold on one machine and backend (numba on the CPU,
one BLAS thread); another CPU or BLAS build rounds differently in the last bits. ``main`` writes
:func:`machine` to ``golden/recorded_on.json``: where it matches, the test compares bit for bit
(floats exactly, SHA-256 digests too), elsewhere floats to 1e-5 relative.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import sys
import tempfile
from pathlib import Path

import numpy as np

GOLDEN = Path(__file__).resolve().parent
#: Per-epoch metrics that measure wall-clock time (never reproducible).
TIME_KEYS = frozenset({"epoch_time", "task_time"})
#: Config keys that record the machine rather than the result.
VOLATILE = frozenset({"versions", "created", "updated"})


# ----------------------------------------------------------------------------- canonical form
def canon(value):
    """A JSON-able, exactly comparable form of ``value``."""
    if isinstance(value, dict):
        return {str(k): canon(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [canon(v) for v in value]
    if isinstance(value, np.ndarray):
        if value.size <= 16:
            return {"dtype": str(value.dtype), "values": canon(value.tolist())}
        a = np.ascontiguousarray(value)
        digest = hashlib.sha256(str(a.dtype).encode() + str(a.shape).encode() + a.tobytes())
        rec = {"shape": list(a.shape), "dtype": str(a.dtype), "sha256": digest.hexdigest()}
        if a.dtype.kind in "fiub":
            f = a.astype(np.float64).ravel()
            with np.errstate(all="ignore"):
                rec.update(
                    sum=canon(float(np.sum(f))),
                    sumsq=canon(float(np.dot(f, f))),
                    min=canon(float(np.min(f))),
                    max=canon(float(np.max(f))),
                    head=canon(f[:4].tolist()),
                )
        return rec
    if isinstance(value, np.generic):
        return canon(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return repr(value)


def results_record(path) -> dict:
    """Canonical record of a results file (see the module docstring)."""
    from synapse_sim.results.store import read_results

    res = read_results(path)
    runs = {}
    for label, run in res["runs"].items():
        runs[label] = {
            "device": run["device"],
            "rule": run["rule"],
            "dataset": run["dataset"],
            "epochs": run["epochs"],
            "epochs_done": run["epochs_done"],
            "complete": run["complete"],
            "config": run["config"],
            "metrics": {k: v for k, v in run["metrics"].items() if k not in TIME_KEYS},
            "final": run["final"],
            "weights": run["weights"],
        }
    return canon(
        {
            "schema_version": res["schema_version"],
            "kind": res["kind"],
            "seed": res["seed"],
            "complete": res["complete"],
            "config": res["config"],
            "runs": runs,
        }
    )


@contextlib.contextmanager
def _folder():
    with tempfile.TemporaryDirectory(prefix="golden-") as tmp:
        yield Path(tmp)


def _cli(argv) -> str:
    """Run the command line; return what it printed (a failure raises)."""
    from synapse_sim.cli.app import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(argv)
    if rc != 0:
        raise RuntimeError(f"synapse-sim {' '.join(argv)} exited with {rc}")
    return buf.getvalue()


# ----------------------------------------------------------------------------- the studies
def study_train() -> dict:
    """Software twin + epiram and pcmo, bidirectional and unidirectional, on digits."""
    from synapse_sim import RunSpec, TrainConfig, train

    cfg = TrainConfig(
        dataset="digits",
        hidden=(12,),
        epochs=2,
        batch_size=4,
        lr=(0.3, 0.15),
        max_train=240,
        seed=5,
    )
    runs = [RunSpec(device="software")] + [
        RunSpec(device=d, rule=r)
        for d in ("epiram", "pcmo")
        for r in ("bidirectional", "unidirectional")
    ]
    runs.append(RunSpec(device="ag_a_si", rule="stochastic", label="ag-stochastic"))
    with _folder() as out:
        res = train(cfg, runs, out=out, progress=False, save_weights=True)
        rec = results_record(res.path)
    rec["returned"] = canon({"history_keys": {k: sorted(v) for k, v in res.history.items()}})
    return rec


def study_train_cli() -> dict:
    """``synapse-sim train`` (CLI options -> config -> results) on digits."""
    with _folder() as out:
        _cli(
            [
                "train",
                "--dataset",
                "digits",
                "--hidden",
                "10",
                "--epochs",
                "1",
                "--batch-size",
                "8",
                "--max-train",
                "160",
                "--device",
                "epiram",
                "--device",
                "pcmo",
                "--rule",
                "bidirectional",
                "--rule",
                "unidirectional",
                "--seed",
                "2",
                "--save-weights",
                "--quiet",
                "--out",
                str(out),
            ]
        )
        return results_record(out / "results.h5")


def study_compare() -> dict:
    """Tiny torch MLP and CNN, software and two device rules."""
    from synapse_sim import compare

    rec = {}
    with _folder() as out:
        compare(
            model="mlp",
            dataset="digits",
            devices=("epiram",),
            rules=("bidirectional", "unidirectional"),
            epochs=2,
            batch_size=32,
            lr=0.1,
            seed=1,
            max_train=128,
            out=out / "mlp",
            progress=False,
            save_weights=True,
            plots=False,
        )
        rec["mlp"] = results_record(out / "mlp" / "results.h5")
        compare(
            model="cnn",
            dataset="digits",
            devices=("pcmo",),
            rules=("bidirectional",),
            epochs=1,
            batch_size=32,
            lr=0.1,
            seed=2,
            max_train=96,
            rule_options={"rounding": "stochastic"},
            out=out / "cnn",
            progress=False,
            save_weights=True,
            plots=False,
        )
        rec["cnn"] = results_record(out / "cnn" / "results.h5")
    return rec


def _continual_configs():
    from synapse_sim.studies.continual import ContinualConfig

    small = {
        "dataset": "digits",
        "max_per_task": 120,
        "hidden": (12,),
        "epochs_per_task": 1,
        "batch_size": 16,
        "seed": 3,
    }
    return {
        "classp-software": ContinualConfig(benchmark="split", n_tasks=3, scenario="task", **small),
        "ewc-biases": ContinualConfig(
            benchmark="split",
            n_tasks=2,
            scenario="domain",
            optimizer="ewc",
            lam=100.0,
            biases=True,
            **small,
        ),
        "si-pulsed": ContinualConfig(
            benchmark="permuted",
            n_tasks=2,
            optimizer="si",
            pulse_step=0.01,
            epochs_first_task=2,
            **small,
        ),
        "classp-device": ContinualConfig(
            benchmark="split", n_tasks=2, optimizer="classp", device="epiram", **small
        ),
        "adam-device": ContinualConfig(
            benchmark="permuted", n_tasks=2, optimizer="adam", lr=1e-3, device="pcmo", **small
        ),
        "sgd-sklearn-split": ContinualConfig(
            benchmark="split",
            n_tasks=2,
            optimizer="sgd",
            split="sklearn",
            test_fraction=0.3,
            lr_after=0.05,
            **small,
        ),
    }


def study_continual() -> dict:
    """Continual learning: CLASSP, EWC, SI, Adam, SGD; software, pulsed floats, devices."""
    from synapse_sim.studies.continual import run_continual

    rec = {}
    with _folder() as out:
        for name, cfg in _continual_configs().items():
            res = run_continual(cfg, out=out / name, progress=False)
            rec[name] = results_record(res.path)
    return rec


def study_continual_cli() -> dict:
    """``synapse-sim continual`` with every default that the CLI and the API might disagree on
    given explicitly."""
    with _folder() as out:
        _cli(
            [
                "continual",
                "--benchmark",
                "split",
                "--scenario",
                "class",
                "--dataset",
                "digits",
                "--tasks",
                "2",
                "--optimizer",
                "adam",
                "--lr",
                "0.001",
                "--hidden",
                "10",
                "--epochs-per-task",
                "1",
                "--max-per-task",
                "100",
                "--seed",
                "4",
                "--quiet",
                "--out",
                str(out),
            ]
        )
        return results_record(out / "results.h5")


def study_qat() -> dict:
    """QAT: uniform, LSQ, StatsQ and device levels at 2 bits, with and without CGA."""
    from synapse_sim.studies.qat import run_qat

    with _folder() as out:
        run_qat(
            dataset="digits",
            bits=(2,),
            quantizers=("uniform", "lsq", "statsq", "levels:epiram"),
            cga=(False, True),
            epochs=2,
            seed=1,
            out=out,
            progress=False,
            hidden=(16,),
            batch_size=32,
            max_train=200,
        )
        rec = {"lib": results_record(out / "results.h5")}
        md = (out / "results.md").read_text()
    rec["table"] = md
    with _folder() as out:
        _cli(
            [
                "qat",
                "--bits",
                "3",
                "--quantizer",
                "statsq",
                "--act-bits",
                "4",
                "--epochs",
                "2",
                "--hidden",
                "12",
                "--seed",
                "2",
                "--cga",
                "--quiet",
                "--out",
                str(out),
            ]
        )
        rec["cli"] = results_record(out / "results.h5")
    return rec


def study_bars() -> dict:
    """The bars test: BSC on float weights and on an epiram array, DSC on floats (3 EM steps)."""
    rec = {}
    with _folder() as out:
        for name, argv in {
            "bsc-float": ["--model", "bsc", "--seed", "1", "--iterations", "3"],
            "bsc-epiram": [
                "--model",
                "bsc",
                "--seed",
                "2",
                "--iterations",
                "3",
                "--device",
                "epiram",
            ],
            "dsc-float": ["--model", "dsc", "--seed", "0", "--iterations", "2"],
        }.items():
            _cli(["bars", *argv, "--quiet", "--out", str(out / name)])
            rec[name] = results_record(out / name / "results.h5")
    return rec


#: name -> function returning the canonical record.
STUDIES = {
    "train": study_train,
    "train_cli": study_train_cli,
    "compare": study_compare,
    "continual": study_continual,
    "continual_cli": study_continual_cli,
    "qat": study_qat,
    "bars": study_bars,
}


def machine() -> dict:
    """What decides the last bits of a result on this machine: the BLAS build and the kernels it
    picked for this CPU, and the CPU numba compiles for. Written beside the goldens
    (``recorded_on.json``); the test compares bit for bit where it matches, to 1e-5 elsewhere."""
    import llvmlite.binding as llvm
    from threadpoolctl import threadpool_info

    blas = sorted(  # numpy's own BLAS (scipy's copy is listed only once scipy is imported)
        f"{d.get('internal_api')} {d.get('version')} {d.get('architecture')}"
        for d in threadpool_info()
        if d.get("user_api") == "blas" and "numpy" in str(d.get("filepath", ""))
    )
    return {"blas": blas, "cpu": llvm.get_host_cpu_name(), "numpy": np.__version__}


#: Float tolerances of :func:`diff_records` off the recording machine (the test's docstring).
REL_TOL, ABS_TOL = 1e-5, 1e-12
#: Float tolerance (relative and absolute) of :func:`diff_records` off the recording machine
#: under the paths a caller names ``loose``: runs whose quantizers turn a last-bit difference
#: into another rounding decision (the test's docstring).
LOOSE_TOL = 1e-3


def diff_records(expected, got, where="", out=None, exact=False, loose=()):
    """Paths where two canonical records differ (at most 10); ``exact``: floats and digests bit
    for bit, else floats to :data:`REL_TOL` / :data:`ABS_TOL` (:data:`LOOSE_TOL` under a path
    that starts with one of ``loose``) and digests (``.../sha256``) skipped. Integers, strings
    and types are compared exactly either way."""
    out = [] if out is None else out
    if len(out) >= 10:
        return out
    if isinstance(expected, dict) and isinstance(got, dict):
        for k in sorted(set(expected) | set(got)):
            if k not in got or k not in expected:
                out.append(f"{where}/{k}: only in {'golden' if k in expected else 'new run'}")
            else:
                diff_records(expected[k], got[k], f"{where}/{k}", out, exact, loose)
    elif isinstance(expected, list) and isinstance(got, list) and len(expected) == len(got):
        for i, (e, g) in enumerate(zip(expected, got, strict=True)):
            diff_records(e, g, f"{where}[{i}]", out, exact, loose)
    elif not exact and where.endswith("/sha256"):
        pass  # machine-dependent in the last bits; the statistics beside it are compared
    elif not exact and type(expected) is float and type(got) is float:
        lo = any(where.startswith(p) for p in loose)
        rel, ab = (LOOSE_TOL, LOOSE_TOL) if lo else (REL_TOL, ABS_TOL)
        if not math.isclose(expected, got, rel_tol=rel, abs_tol=ab):
            out.append(f"{where}: golden {expected!r}, now {got!r}")
    elif expected != got or type(expected) is not type(got):
        out.append(f"{where}: golden {expected!r}, now {got!r}")
    return out


def golden_path(name: str) -> Path:
    """The JSON file of study ``name``."""
    return GOLDEN / f"studies_{name}.json"


def main(names=None) -> None:
    """Record the golden files of ``names`` (default: every study)."""
    import time

    (GOLDEN / "recorded_on.json").write_text(json.dumps(machine(), indent=1) + "\n")
    for name in names or STUDIES:
        t0 = time.perf_counter()
        rec = STUDIES[name]()
        golden_path(name).write_text(json.dumps(rec, indent=1, sort_keys=True) + "\n")
        print(f"{name}: {time.perf_counter() - t0:.1f} s -> {golden_path(name)}")


if __name__ == "__main__":
    main(sys.argv[1:])
