"""``--resume`` of ``qat`` and ``continual``: a study stopped part-way and resumed ends bit for bit
as an uninterrupted one (epoch times aside).

The crash is simulated as in ``test_resume.py``: an exception raised inside the results writer
when epoch k + 1 of a chosen run is about to be written (here: in the study's ``write_epoch``).
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from synapse_sim.results.store import ResumeMismatchError, read_results
from synapse_sim.studies.base import run_study

pytest.importorskip("torch")


class Crash(Exception):
    """The simulated crash."""


def _crash_at(monkeypatch, module, label: str, epoch: int):
    """Make ``module.write_epoch`` raise :class:`Crash` before it writes epoch ``epoch``
    (1-based) of run ``label``, as a kill between two epochs would."""
    write_epoch = module.write_epoch

    def crashing(writer, lab, metrics, checkpoint=None):
        if lab == label and writer.epochs_done(lab) == epoch - 1:
            raise Crash(f"simulated crash before epoch {epoch} of {lab}")
        write_epoch(writer, lab, metrics, checkpoint)

    monkeypatch.setattr(module, "write_epoch", crashing)


def _same_files(a: dict, b: dict, epochs: int) -> None:
    assert b["complete"]
    assert list(a["runs"]) == list(b["runs"])
    for label in a["runs"]:
        ra, rb = a["runs"][label], b["runs"][label]
        assert ra["epochs_done"] == rb["epochs_done"] == epochs
        assert ra["complete"] and rb["complete"]
        assert set(ra["metrics"]) == set(rb["metrics"])
        for k, v in ra["metrics"].items():
            if k not in ("epoch_time", "task_time"):  # wall-clock times
                assert np.array_equal(v, rb["metrics"][k]), (label, k)
        assert set(ra["weights"] or {}) == set(rb["weights"] or {})
        for k in ra["weights"] or {}:
            assert ra["weights"][k].tobytes() == rb["weights"][k].tobytes(), (label, k)
        assert repr(ra["final"]) == repr(rb["final"]), label


def _no_checkpoints(path) -> None:
    with h5py.File(path, "r") as f:
        assert not any("checkpoint" in f["runs"][lab] for lab in f["runs"])


# ----------------------------------------------------------------------------------- qat

from synapse_sim.studies import qat  # noqa: E402
from synapse_sim.studies.qat import QATConfig, QATStudy  # noqa: E402

QAT = QATConfig(
    dataset="digits",
    bits=(2,),
    quantizers=("lsq", "statsq"),
    cga=(False, True),
    epochs=3,
    cga_epochs=1,
    hidden=(8,),
    max_train=160,
    act_bits=2,
    seed=1,
)


@pytest.fixture(scope="module")
def qat_full(tmp_path_factory):
    out = tmp_path_factory.mktemp("qat_full")
    res = run_study(QATStudy(QAT), out=out, outputs=False)
    return read_results(out / "results.h5"), res


def _same_qat_result(a, b) -> None:
    assert repr(a.records) == repr(b.records)
    assert list(a.history) == list(b.history)
    for lab in a.history:
        assert a.history[lab] == b.history[lab], lab
        assert set(a.steps[lab]) == set(b.steps[lab])
        for k in a.steps[lab]:
            assert a.steps[lab][k].tobytes() == b.steps[lab][k].tobytes(), (lab, k)


@pytest.mark.parametrize("run,epoch", [(4, 3), (2, 2)])
def test_qat_resume_after_crash_is_bit_identical(tmp_path, monkeypatch, qat_full, run, epoch):
    full, full_res = qat_full
    labels = list(full["runs"])
    assert labels[0] == "float" and len(labels) == 5
    label = labels[run]
    with monkeypatch.context() as m:
        _crash_at(m, qat, label, epoch)
        with pytest.raises(Crash):
            run_study(QATStudy(QAT), out=tmp_path, outputs=False)
    part = read_results(tmp_path / "results.h5")
    assert not part["complete"]
    assert part["runs"][label]["epochs_done"] == epoch - 1
    with h5py.File(tmp_path / "results.h5", "r") as f:
        g = f["runs"][label]
        assert int(g["checkpoint/epoch"][()]) == epoch - 1
        assert "tracker" in g["checkpoint/extra"]
    with pytest.raises(FileExistsError, match="--resume"):
        run_study(QATStudy(QAT), out=tmp_path, mode="new", outputs=False)
    res = run_study(QATStudy(QAT), out=tmp_path, mode="resume", outputs=False)
    done = read_results(tmp_path / "results.h5")
    _same_files(full, done, QAT.epochs)
    _same_qat_result(full_res, res)
    _no_checkpoints(tmp_path / "results.h5")
    with pytest.raises(FileExistsError, match="nothing to resume"):
        run_study(QATStudy(QAT), out=tmp_path, mode="resume", outputs=False)


def test_qat_resume_refuses_another_config(tmp_path, monkeypatch):
    cfg = QATConfig(**{**QAT.__dict__, "quantizers": ("lsq",), "cga": (False,)})
    with monkeypatch.context() as m:
        _crash_at(m, qat, "w2a2-lsq", 2)
        with pytest.raises(Crash):
            run_study(QATStudy(cfg), out=tmp_path, outputs=False)
    before = (tmp_path / "results.h5").read_bytes()
    other = QATConfig(**{**cfg.__dict__, "lr": 1e-2})
    with pytest.raises(ResumeMismatchError, match=r"different configuration.*lr"):
        run_study(QATStudy(other), out=tmp_path, mode="resume", outputs=False)
    assert (tmp_path / "results.h5").read_bytes() == before


def test_qat_cli_has_resume(tmp_path, capsys):
    from synapse_sim.cli.app import main

    assert main(["qat", "--resume", "--overwrite", "--out", str(tmp_path)]) == 2
    assert "--overwrite: not allowed with argument --resume" in capsys.readouterr().err


# ----------------------------------------------------------------------------- continual

from synapse_sim.studies import continual  # noqa: E402
from synapse_sim.studies.continual import ContinualConfig, ContinualStudy  # noqa: E402


def _continual(**kw) -> ContinualConfig:
    base = dict(
        benchmark="permuted",
        dataset="digits",
        n_tasks=3,
        max_per_task=120,
        hidden=(10,),
        epochs_per_task=1,
        biases=True,
        seed=2,
    )
    return ContinualConfig(**{**base, **kw})


def _same_continual_result(a, b) -> None:
    assert a.accuracy_matrix.tobytes() == b.accuracy_matrix.tobytes()
    assert repr(a.metrics) == repr(b.metrics)
    for k in a.history:
        if k != "task_time":
            assert a.history[k] == b.history[k], k
    for la, lb in zip(a.layers, b.layers, strict=True):
        assert np.asarray(la.weights()).tobytes() == np.asarray(lb.weights()).tobytes()
    for sa, sb in zip(a.opt_states, b.opt_states, strict=True):
        assert set(sa) == set(sb)
        for k in sa:
            assert (
                np.array_equal(sa[k], sb[k]) and np.asarray(sa[k]).dtype == np.asarray(sb[k]).dtype
            ), k


@pytest.mark.parametrize(
    "kw,task",
    [
        ({"optimizer": "classp"}, 2),
        ({"optimizer": "ewc", "lam": 10.0}, 3),
        ({"optimizer": "si"}, 2),
        pytest.param({"optimizer": "classp", "device": "epiram"}, 3, marks=pytest.mark.slow),
        pytest.param({"optimizer": "adam"}, 3, marks=pytest.mark.slow),
    ],
    ids=["classp", "ewc", "si", "classp-epiram", "adam"],
)
def test_continual_resume_after_crash_is_bit_identical(tmp_path, monkeypatch, kw, task):
    cfg = _continual(**kw)
    full, part = tmp_path / "full", tmp_path / "part"
    full_res = run_study(ContinualStudy(cfg), out=full, outputs=False)
    label = ContinualStudy(cfg).label
    with monkeypatch.context() as m:
        _crash_at(m, continual, label, task)
        with pytest.raises(Crash):
            run_study(ContinualStudy(cfg), out=part, outputs=False)
    got = read_results(part / "results.h5")
    assert not got["complete"] and got["runs"][label]["epochs_done"] == task - 1
    with h5py.File(part / "results.h5", "r") as f:
        assert int(f["runs"][label]["checkpoint/epoch"][()]) == task - 1
    with pytest.raises(FileExistsError, match="--resume"):
        run_study(ContinualStudy(cfg), out=part, mode="new", outputs=False)
    res = run_study(ContinualStudy(cfg), out=part, mode="resume", outputs=False)
    a, b = read_results(full / "results.h5"), read_results(part / "results.h5")
    _same_files(a, b, cfg.n_tasks)
    _same_continual_result(full_res, res)
    _no_checkpoints(part / "results.h5")


def test_continual_resume_refuses_another_config(tmp_path, monkeypatch):
    cfg = _continual(optimizer="si")
    with monkeypatch.context() as m:
        _crash_at(m, continual, ContinualStudy(cfg).label, 2)
        with pytest.raises(Crash):
            run_study(ContinualStudy(cfg), out=tmp_path, outputs=False)
    before = (tmp_path / "results.h5").read_bytes()
    other = _continual(optimizer="si", si_c=0.5)
    with pytest.raises(ResumeMismatchError, match=r"different configuration.*si_c"):
        run_study(ContinualStudy(other), out=tmp_path, mode="resume", outputs=False)
    assert (tmp_path / "results.h5").read_bytes() == before


def test_continual_cli_has_resume(tmp_path, capsys):
    from synapse_sim.cli.app import main

    assert main(["continual", "--resume", "--overwrite", "--out", str(tmp_path)]) == 2
    assert "--overwrite: not allowed with argument --resume" in capsys.readouterr().err
