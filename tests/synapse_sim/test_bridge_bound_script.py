"""``benchmarks/bridge_bound.py`` measures a lower bound of the torch bridge's epoch with a bare
path that must do the same array work as the package (BENCHMARKS.md, "The bridge with no
glue"). Its claim rests on the two paths ending with the same conductances bit for bit: this
runs the script on a few steps and checks that it says so (the script uses the arrays' internals,
so a refactoring that breaks the bare path shows up here)."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bridge_bound(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import bridge_bound

    yield bridge_bound
    sys.modules.pop("bridge_bound", None)


def test_bare_path_does_the_packages_array_work(bridge_bound, tmp_path, capsys):
    argv = ["--rounds", "1", "--epochs", "2", "--steps", "12", "--aihwkit-epoch", "2.0"]
    out = bridge_bound.main([*argv, "--json", str(tmp_path / "b.json")])
    assert out["same_conductances"] is True
    assert set(out["median_s"]) == {"package", "bare", "software"}
    assert all(v > 0 for v in out["median_s"].values())
    text = capsys.readouterr().out
    assert "ended with the same conductances: True" in text
    assert "times faster than aihwkit (2 s)" in text
    assert (tmp_path / "b.json").exists()


@pytest.mark.parametrize(
    "argv, msg",
    [(["--epochs", "1"], "--epochs must be at least 2"), (["--steps", "401"], "--steps must be"),
     (["--aihwkit-epoch", "0"], "--aihwkit-epoch must be > 0")],
)  # fmt: skip
def test_bad_options_are_refused(bridge_bound, argv, msg, capsys):
    with pytest.raises(SystemExit):
        bridge_bound.main(argv)
    assert msg in capsys.readouterr().err
