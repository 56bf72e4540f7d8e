"""The refresh policy of unidirectional rules as a train option (``--refresh``)."""

from __future__ import annotations

import contextlib
import io

import pytest

from synapse_sim import RunSpec, TrainConfig, train
from synapse_sim.results.store import read_results

CFG = dict(dataset="digits", hidden=(8,), epochs=2, batch_size=1, lr=(0.6, 0.3), max_train=120)
RUN = [RunSpec(device="epiram", rule="unidirectional")]


def test_default_is_the_spec_trigger_and_not_recorded():
    cfg = TrainConfig(**CFG)
    assert cfg.refresh == "threshold" and cfg.refresh_margin == 0.1
    d = cfg.to_dict()
    assert "refresh" not in d and "refresh_margin" not in d  # older records stay as they were
    d = TrainConfig(**CFG, refresh="hysteresis", refresh_margin=0.2).to_dict()
    assert d["refresh"] == "hysteresis" and d["refresh_margin"] == 0.2


def test_hysteresis_refreshes_less_than_the_threshold_trigger():
    runs = {}
    for policy in ("threshold", "hysteresis"):
        res = train(TrainConfig(**CFG, refresh=policy), RUN, progress=False)
        runs[policy] = sum(res.history["epiram-unidirectional"]["refreshes"])
    assert runs["threshold"] > 0
    assert runs["hysteresis"] < runs["threshold"]


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"refresh": "lazy"}, "refresh"),
        ({"refresh_margin": 0.0}, "refresh_margin"),
        ({"refresh_margin": 0.95}, "refresh_margin"),  # not below the threshold 0.9
        ({"refresh_margin": "0.1"}, "refresh_margin"),
        ({"refresh_margin": True}, "refresh_margin"),
    ],
)
def test_bad_refresh_options_name_the_field(kw, field):
    with pytest.raises(ValueError, match=field) as ei:
        TrainConfig(**CFG, **kw)
    assert getattr(ei.value, "field", field) == field


def test_cli_refresh_option_is_recorded(tmp_path):
    from synapse_sim.cli.app import main

    out = tmp_path / "r"
    args = ["train", "--dataset", "digits", "--hidden", "8", "--epochs", "1", "--max-train",
            "40", "--device", "epiram", "--rule", "unidirectional", "--no-software",
            "--refresh", "hysteresis", "--refresh-margin", "0.15", "--quiet", "--out",
            str(out)]  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(args) == 0
    cfg = read_results(out / "results.h5")["config"]["train"]
    assert cfg["refresh"] == "hysteresis" and cfg["refresh_margin"] == 0.15
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main([*args[:-1], str(tmp_path / "bad"), "--refresh", "never"]) == 2
    assert "--refresh: refresh must be one of" in err.getvalue()
    assert not (tmp_path / "bad").exists()  # refused before the output folder exists
