"""The ``synapse-sim`` command line: ``devices``, ``zoo``, ``--version`` and its errors."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import devices
from devices.presets import short_citation
from synapse_sim.cli.app import build_parser, main
from synapse_sim.cli.common import jsonable, progress_bar

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _strict_json(text):
    def reject(token):
        raise AssertionError(f"invalid JSON constant {token}")

    return json.loads(text, parse_constant=reject)


def _assert_one_line_error(rc, err):
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("synapse-sim: error: ")
    assert "Traceback" not in err


def _assert_pngs(folder: Path, names):
    for name in names:
        png = folder / f"{name}.png"
        assert png.is_file(), png
        data = png.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 1000


def test_devices_table_lists_every_preset(capsys):
    assert main(["devices"]) == 0
    out, err = capsys.readouterr()
    rows = out.splitlines()
    assert rows[0].split()[:2] == ["name", "family"]
    assert [r.split()[0] for r in rows[2:]] == devices.names()
    pcmo = next(r for r in rows if r.startswith("pcmo "))
    assert "50/50" in pcmo and "3.68/-6.76" in pcmo and "Park et al." in pcmo
    assert err == ""  # no progress bar and no warnings when not on a terminal


def test_devices_json_matches_models(capsys):
    assert main(["devices", "--json"]) == 0
    records = _strict_json(capsys.readouterr().out)
    assert [r["name"] for r in records] == devices.names()
    for rec in records:
        model = devices.get(rec["name"])
        assert rec["levels_ltp"] == model.levels("ltp")
        assert rec["levels_ltd"] == model.levels("ltd")
        assert rec["family"] == type(model).__name__
        assert rec["gmin"] == model.gmin and rec["gmax"] == model.gmax
    ideal = records[devices.names().index("ideal")]
    assert ideal["a_ltp"] is None  # inf (a linear branch) becomes null
    assert ideal["variability"]["endurance_n50"] is None
    assert records[0]["published"]["online_accuracy_v3"] == pytest.approx(0.72)


def test_devices_selected_by_name(capsys):
    assert main(["devices", "--json", "pcmo", "epiram"]) == 0
    assert [r["name"] for r in _strict_json(capsys.readouterr().out)] == ["pcmo", "epiram"]


def test_devices_plot_writes_one_png_per_preset(tmp_path, capsys):
    out = tmp_path / "new" / "figs"
    assert main(["devices", "--plot", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.png" for n in devices.names())
    _assert_pngs(out, devices.names())
    assert f"wrote {len(devices.names())} figures" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["devices", "--plot", "/proc/forbidden/x"], "cannot create output directory"),
        (["devices", "pcmoo"], "did you mean 'pcmo'"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["devices", "--bogus"], "unrecognized arguments: --bogus"),
        (["zoo", "--out"], "expected one argument"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(argv, expected, capsys):
    rc = main(argv)
    out, err = capsys.readouterr()
    _assert_one_line_error(rc, err)
    assert expected in err
    assert out == ""


def test_output_path_that_is_a_file(tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    rc = main(["zoo", "--out", str(blocker), "--quiet"])
    _assert_one_line_error(rc, capsys.readouterr().err)


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "devices" in capsys.readouterr().err


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("synapse-sim ")


def test_help_exits_zero(capsys):
    assert main(["devices", "--help"]) == 0
    assert "--plot" in capsys.readouterr().out


def test_zoo_writes_table_and_pngs(tmp_path, capsys):
    out = tmp_path / "zoo"
    assert main(["zoo", "--out", str(out), "--quiet"]) == 0
    printed, err = capsys.readouterr()
    assert err == ""
    _assert_pngs(out, devices.names())
    md = (out / "devices.md").read_text()
    table = [line for line in md.splitlines() if line.startswith("|")]
    assert len(table) == 2 + len(devices.names())
    for name in devices.names():
        assert f"| {name} " in md and f"({name}.png)" in md
    assert table[0] in printed


def test_every_command_is_registered():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert {"devices", "zoo", "demo", "train", "show", "compare", "sweep"} <= set(sub.choices)
    for name, p in sub.choices.items():
        func = p.get_default("func")
        # one module per command: synapse_sim/cli/<name>.py
        assert callable(func) and func.__module__ == f"synapse_sim.cli.{name}", (name, func)
        assert func.__name__ in ("run", f"cmd_{name}"), (name, func)


def test_short_citation():
    short = short_citation
    assert short(devices.get("ag_a_si").citation) == "Jo et al., Nano Letters 2010"
    assert short(devices.get("pcmo").citation) == "Park et al., IEDM 2013"
    assert short(devices.get("soft_bounds").citation) == "Rasch et al., IEEE AICAS 2021"
    assert short(devices.get("ideal").citation) == "Project definition"
    assert all(len(short(devices.get(n).citation)) <= 40 for n in devices.names())


def test_jsonable_replaces_non_finite_values():
    import numpy as np

    obj = {"a": math.inf, "b": [np.float64("nan"), (1, 2)], "c": np.int64(3), "d": np.ones(2)}
    out = jsonable(obj)
    assert out == {"a": None, "b": [None, [1, 2]], "c": 3, "d": [1.0, 1.0]}
    json.dumps(out, allow_nan=False)


def _console_script():
    found = Path(sys.executable).parent / "synapse-sim"
    if found.exists():
        return str(found)
    which = shutil.which("synapse-sim")
    if which is None:
        pytest.skip("the synapse-sim console script is not installed (pip install -e .)")
    return which


def test_console_script(tmp_path):
    exe = _console_script()
    ok = subprocess.run(
        [exe, "devices", "--json"], capture_output=True, text=True, timeout=120, check=False
    )
    assert ok.returncode == 0, ok.stderr
    assert [r["name"] for r in _strict_json(ok.stdout)] == devices.names()
    bad = subprocess.run(
        [exe, "devices", "--plot", "/proc/forbidden/x"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    _assert_one_line_error(bad.returncode, bad.stderr)
    assert bad.stdout == ""


@pytest.mark.parametrize(
    "quiet, stdout_tty, stderr_tty, shown",
    [
        (False, True, True, True),
        (True, True, True, False),
        (False, False, True, False),
        (False, True, False, False),
    ],
)
def test_progress_bar_only_on_a_terminal(quiet, stdout_tty, stderr_tty, shown, monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: stdout_tty)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: stderr_tty)
    bar = progress_bar([1, 2], quiet=quiet, desc="test")
    assert bar.disable is (not shown)
    bar.close()


def test_given_fields_takes_the_options_named_like_config_fields():
    """``continual``/``qat`` pass every given option named like a config field, nothing else:
    an option left out keeps the config default, an excluded one is left to the command."""
    from synapse_sim.cli.common import given_fields
    from synapse_sim.studies.continual import ContinualConfig
    from synapse_sim.studies.qat import QATConfig

    parser = build_parser()
    args = parser.parse_args(["continual", "--lr-after", "0.2", "--si-c", "0.5", "--tasks", "3"])
    kw = given_fields(args, ContinualConfig)
    assert kw == {"lr_after": 0.2, "si_c": 0.5, "biases": False}  # --tasks is n_tasks
    assert ContinualConfig(**kw) == ContinualConfig(lr_after=0.2, si_c=0.5)
    args = parser.parse_args(["qat", "--no-cga", "--bits", "2", "--bits", "3", "--seed", "4"])
    assert given_fields(args, QATConfig, exclude=("cga",)) == {"bits": (2, 3), "seed": 4}
    assert given_fields(args, QATConfig)["cga"] == "no-cga"  # why qat excludes it
