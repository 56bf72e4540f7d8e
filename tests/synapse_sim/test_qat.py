"""Low-bit QAT driver (synapse_sim.studies.qat) and ``synapse-sim qat``: tiny digits runs."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from synapse_sim.cli.app import main  # noqa: E402
from synapse_sim.data.datasets import batches, load_dataset  # noqa: E402
from synapse_sim.results.store import read_results  # noqa: E402
from synapse_sim.studies.qat import QATMLP, check_qat_args, run_qat, train_step  # noqa: E402

FINAL_KEYS = {"bits", "quantizer", "cga", "oscillating_fraction", "final_test_accuracy"}
EPOCH_KEYS = {
    "train_accuracy",
    "train_loss",
    "test_accuracy",
    "test_loss",
    "oscillating_fraction",
    "oscillation_events",
    "flips",
    "frozen_fraction",
    "lr",
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """3 epochs (the last one annealing), W2 LSQ and StatsQ, without and with CGA, plus float."""
    out = tmp_path_factory.mktemp("qat")
    res = run_qat(
        "digits",
        bits=(2,),
        quantizers=("lsq", "statsq"),
        cga=(False, True),
        epochs=3,
        cga_epochs=1,
        seed=0,
        out=out,
        progress=False,
    )
    return res, out


@pytest.fixture(scope="module")
def w2_run():
    """8 epochs (cosine 3e-3 -> 1e-3, then 3 epochs at 1e-3): float, W2 LSQ and StatsQ+CGA."""
    return run_qat(
        "digits",
        bits=(2,),
        quantizers=("lsq", "statsq"),
        cga=(False, True),
        epochs=8,
        cga_epochs=3,
        seed=0,
        progress=False,
    )


def test_run_qat_writes_results(tiny):
    res, out = tiny
    assert {p.name for p in out.iterdir()} >= {"results.h5", "oscillation.png", "results.md"}
    data = read_results(out / "results.h5")
    assert data["kind"] == "qat" and data["complete"]
    labels = ["float", "w2-lsq", "w2-lsq-cga", "w2-statsq", "w2-statsq-cga"]
    assert list(data["runs"]) == labels
    steps = res.settings["steps_per_epoch"] * 3
    for label, run in data["runs"].items():
        assert run["complete"] and run["epochs_done"] == 3
        fin = run["final"]
        assert FINAL_KEYS <= set(fin)
        assert fin["final_test_accuracy"] == pytest.approx(run["metrics"]["test_accuracy"][-1])
        if label == "float":
            assert fin["bits"] == 32 and fin["quantizer"] == "float" and not fin["cga"]
            assert np.isnan(fin["oscillating_fraction"])
            continue
        assert EPOCH_KEYS <= set(run["metrics"])
        assert fin["bits"] == 2 and fin["quantizer"] in ("lsq", "statsq")
        assert fin["cga"] == label.endswith("-cga")
        assert 0.0 < fin["oscillating_fraction"] < 1.0
        assert fin["oscillating_fraction_per_step"].shape == (steps,)
        assert fin["oscillating_fraction_per_step"][-1] == fin["oscillating_fraction"]
        frozen = run["metrics"]["frozen_fraction"]
        # CGA acts only in the last epoch, and there it freezes almost every weight (BR 0.005)
        assert np.all(frozen[:2] == 0)
        assert (frozen[2] > 0.9) if fin["cga"] else (frozen[2] == 0)
    md = (out / "results.md").read_text()
    assert "w2-statsq-cga" in md and "oscillation.png" in md


@pytest.mark.parametrize("quantizer", ["statsq", "lsq", "uniform"])
def test_cga_frozen_weights_keep_their_codes(quantizer):
    ds = load_dataset("digits", seed=0, test_fraction=0.3)
    X = torch.as_tensor(ds.x_train, dtype=torch.float32)
    Y = torch.as_tensor(ds.y_train)
    model = QATMLP((64, 32, 10), quantizer, 2, seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    rng = np.random.default_rng(0)
    for idx in batches(X.shape[0], 32, rng):  # one epoch of ordinary QAT: Adam has momentum
        train_step(model, opt, X[idx], Y[idx])
    n_frozen = changed_new_scale = 0
    for idx in itertools.islice(batches(X.shape[0], 32, rng), 10):
        w0 = [layer.weight.detach().clone() for layer in model.layers]
        s0 = [layer.scale() for layer in model.layers]
        c0 = [layer.codes() for layer in model.layers]
        # a wide band (0.2 code units) so that a good share of the weights keeps training
        info = train_step(model, opt, X[idx], Y[idx], cga=True, boundary_range=0.2)
        assert 0.0 < info["frozen_fraction"] < 1.0
        for layer, frozen, w, s, c in zip(model.layers, info["frozen"], w0, s0, c0, strict=True):
            fm = torch.from_numpy(frozen)
            assert torch.equal(layer.weight.detach()[fm], w[fm])  # latent values, bitwise
            assert (opt.state[layer.weight]["exp_avg"][fm] != 0).any()  # Adam would move them
            assert not torch.equal(layer.weight.detach()[~fm], w[~fm])  # the others train
            np.testing.assert_array_equal(layer.codes(s)[frozen], c[frozen])  # scale held
            n_frozen += int(frozen.sum())
            changed_new_scale += int((layer.codes()[frozen] != c[frozen]).sum())
    # with the scale recomputed (StatsQ/uniform statistic, LSQ's trained step) frozen codes
    # move only when the step itself moves a boundary past them: rare
    assert changed_new_scale <= 0.01 * n_frozen


def test_float_baseline_accuracy(w2_run):
    rec = {r["label"]: r for r in w2_run.records}
    assert rec["float"]["final_test_accuracy"] >= 0.94  # measured 0.959 (seed 0)
    # 2-bit weights cost little on digits: measured w2-lsq +0.4, w2-statsq -1.1 points against
    # float (one seed, 8 epochs; 540 test images, one image = 0.19 points). Spec 7.2 allows 3
    # points at W2 for the 3-seed, 40-epoch mean; 2 points here = the measured gap + 5 images.
    for label in ("w2-lsq", "w2-statsq"):
        assert rec[label]["final_test_accuracy"] >= rec["float"]["final_test_accuracy"] - 0.02


def test_statsq_cga_oscillates_less_than_lsq(w2_run):
    """OFQ's claim on the tiny setting: W2 StatsQ+CGA ends with fewer oscillating weights."""
    rec = {r["label"]: r for r in w2_run.records}
    lsq, ofq = rec["w2-lsq"], rec["w2-statsq-cga"]
    # measured (seed 0): oscillating fraction 0.0349 (LSQ) vs 0.0133 (StatsQ+CGA); oscillation
    # events in the 3 annealing epochs 861 vs 35
    assert ofq["oscillating_fraction"] <= lsq["oscillating_fraction"]
    assert ofq["anneal_events"] <= 0.2 * lsq["anneal_events"]
    assert ofq["anneal_events"] <= 0.2 * rec["w2-statsq"]["anneal_events"]
    # with a learned step the boundaries keep moving: CGA removes much less of LSQ's oscillation
    assert rec["w2-lsq-cga"]["anneal_events"] > 0.4 * lsq["anneal_events"]
    # measured 0.944 (StatsQ+CGA) vs 0.963 (LSQ): -1.9 points after 8 epochs, 3 of them with
    # frozen weights; spec 7.2 asks -1 point after 50 epochs. 2.5 points = measured + 3 images.
    assert ofq["final_test_accuracy"] >= lsq["final_test_accuracy"] - 0.025


def test_cli_qat_and_show_json(tmp_path, capsys):
    out = tmp_path / "q"
    argv = ["qat", "--bits", "2", "--quantizer", "statsq", "--cga", "--dataset", "digits"]
    rc = main([*argv, "--epochs", "2", "--out", str(out), "--quiet", "--no-float"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "w2-statsq-cga" in text and "results.h5" in text
    assert main(["show", str(out), "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["label"] for r in records] == ["w2-statsq-cga"]
    r = records[0]
    keys = {"bits", "quantizer", "cga", "oscillating_fraction", "final_test_accuracy", "complete"}
    assert keys <= set(r)
    assert (r["bits"], r["quantizer"], r["cga"], r["complete"]) == (2, "statsq", True, True)
    assert 0.0 <= r["oscillating_fraction"] < 1.0
    # 2 epochs, the second with CGA freezing: measured 0.852 (run_qat, same settings, seed 0)
    assert 0.80 <= r["final_test_accuracy"] <= 1.0
    assert main(["show", str(out)]) == 0
    assert "w2-statsq-cga" in capsys.readouterr().out


def test_show_json_float_baseline(tiny, capsys):
    _, out = tiny
    assert main(["show", str(out / "results.h5"), "--json"]) == 0
    records = {r["label"]: r for r in json.loads(capsys.readouterr().out)}
    assert records["float"]["oscillating_fraction"] is None
    assert records["float"]["bits"] == 32
    assert records["w2-lsq-cga"]["cga"] is True


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--bits", "9"], "--bits"),
        (["--bits", "0"], "--bits"),
        (["--quantizer", "lsqq"], "--quantizer"),
        (["--dataset", "cifar"], "--dataset"),
        (["--epochs", "0"], "--epochs"),
        (["--epochs", "1"], "--epochs"),
        (["--epochs", "3", "--cga-epochs", "3"], "--cga-epochs"),
        (["--boundary-range", "0.5"], "--boundary-range"),
        (["--lr", "-1"], "--lr"),
        (["--lr", "0.001", "--lr-min", "0.01"], "--lr-min"),
        (["--batch-size", "0"], "--batch-size"),
        (["--cga", "--no-cga"], "--no-cga"),
        (["--bits", "two"], "--bits"),
    ],
)
def test_cli_bad_arguments(tmp_path, capsys, args, option):
    out = tmp_path / "never"
    assert main(["qat", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("synapse-sim: error:")
    assert option in lines[0]
    assert not out.exists()  # nothing trained, nothing written


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"bits": (2, 9)}, "bits"),
        ({"quantizers": ("pact",)}, "quantizers"),
        ({"cga": ("yes",)}, "cga"),
        ({"dataset": "mnist"}, "dataset"),
        ({"epochs": 1, "cga": (True,)}, "epochs"),
        ({"epochs": 4, "cga_epochs": 4}, "cga_epochs"),
        ({"boundary_range": -0.1}, "boundary_range"),
    ],
)
def test_check_qat_args_names_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name} "):
        check_qat_args(**kwargs)


# -- spec section 7.2 settings: split, device levels, activation quantization -----------------


def test_load_split_is_the_specs_stratified_split():
    from synapse_sim.studies.qat import load_split

    x_tr, y_tr, x_te, y_te = load_split("digits", 0)
    assert x_tr.shape == (1257, 64) and x_te.shape == (540, 64)
    assert x_tr.max() == 1.0 and x_tr.min() == 0.0  # digits / 16
    # stratified: every class holds the same share of the test set to within one sample
    counts = np.bincount(y_te, minlength=10)
    totals = counts + np.bincount(y_tr, minlength=10)
    assert np.all(np.abs(counts - 0.3 * totals) <= 1)
    again = load_split("digits", 0)
    np.testing.assert_array_equal(again[1], y_tr)
    assert not np.array_equal(load_split("digits", 1)[1], y_tr)
    # the training seed does not change the split
    a = run_qat("digits", bits=(2,), quantizers=("statsq",), cga=(False,), epochs=1, seed=3)
    assert a.settings["n_train"] == 1257 and a.settings["n_test"] == 540


def test_levels_of_a_linear_preset_train_like_statsq():
    """LevelGrid of a linear device (preset ``ideal``, 2**b states) is the StatsQ grid."""
    from synapse_sim.studies.qat import QuantLinear

    torch.manual_seed(0)
    for bits in (2, 3, 4):
        g1 = torch.Generator().manual_seed(5)
        g2 = torch.Generator().manual_seed(5)
        a = QuantLinear(64, 32, "statsq", bits, generator=g1)
        b = QuantLinear(64, 32, "levels:ideal", bits, generator=g2)
        assert b.bits == bits
        torch.testing.assert_close(b.quantized_weight(), a.quantized_weight(), rtol=0, atol=1e-6)
        np.testing.assert_allclose(b.scale() * b.core.table.max(), a.scale() * (1 - 2.0**-bits))
        # the identity STE of StatsQ
        w = b.quantized_weight()
        w.sum().backward()
        assert torch.equal(b.weight.grad, torch.ones_like(b.weight))


def test_device_levels_run_and_labels():
    res = run_qat(
        "digits",
        bits=(2, 3),
        quantizers=("statsq", "levels:epiram", "levels:alox_hfo2:full"),
        cga=(False, True),
        epochs=2,
        cga_epochs=1,
    )
    labels = [r["label"] for r in res.records]
    assert labels == [
        "float",
        "w2-statsq",
        "w2-statsq-cga",
        "w2-levels-epiram",
        "w2-levels-epiram-cga",
        "w6-levels-alox_hfo2-full",  # 41 levels need 6 bits; trained once, not per bit width
        "w6-levels-alox_hfo2-full-cga",
        "w3-statsq",
        "w3-statsq-cga",
        "w3-levels-epiram",
        "w3-levels-epiram-cga",
    ]
    rec = {r["label"]: r for r in res.records}
    assert rec["w3-levels-epiram"]["quantizer"] == "levels:epiram"
    # 2 epochs, seed 0; measured float 0.894. Without CGA the 2-, 3- and 6-bit grids (StatsQ,
    # epiram's and alox_hfo2's levels) end within 0.6 points of float (-0.6 ... +0.7): after two
    # epochs the weights are far from converged, so the grid's error is small against the
    # training error. With CGA the second epoch trains only the unfrozen weights: measured
    # 0.843-0.867.
    fl = rec["float"]["final_test_accuracy"]
    for r in res.records[1:]:
        if r["cga"]:
            assert 0.80 <= r["final_test_accuracy"] <= 1.0, r["label"]
        else:
            assert r["final_test_accuracy"] >= fl - 0.02, r["label"]


@pytest.mark.parametrize(
    ("quantizer", "match"),
    [("levels:epirom", "epiram"), ("levels:epiram:half", "levels:PRESET:full"), ("level", "")],
)
def test_bad_device_level_names(quantizer, match):
    with pytest.raises(ValueError, match=rf"^quantizers.*{match}"):
        check_qat_args(quantizers=(quantizer,))


def test_activation_quantizer_init_and_grid():
    from synapse_sim.studies.qat import load_split

    x_tr = torch.as_tensor(load_split("digits")[0], dtype=torch.float32)
    model = QATMLP((64, 128, 10), "lsq", 3, seed=0, act_bits=3)
    model.init_activation_steps(x_tr[:256])
    aq = model.act_quant[0]
    h = torch.relu(model.layers[0](x_tr[:256]))
    expect = 2 * h.detach().double().abs().mean() / np.sqrt(7)
    assert float(aq.step.detach()) == pytest.approx(float(expect), rel=1e-6)
    # hidden outputs lie on {0, s, ..., 7 s}; the step trains
    a = aq(h)
    codes = (a / aq.step).detach().numpy()
    np.testing.assert_allclose(codes, np.clip(np.round(codes), 0, 7), atol=1e-4)
    assert codes.max() == pytest.approx(7, abs=1e-4) and codes.min() == 0
    loss = torch.nn.functional.cross_entropy(model(x_tr[:64]), torch.zeros(64, dtype=torch.long))
    loss.backward()
    assert aq.step.grad is not None and float(aq.step.grad.abs().sum()) > 0
    with pytest.raises(ValueError, match="act_bits"):
        QATMLP((64, 8, 10), "lsq", 3, act_bits=9)


def test_run_qat_act_bits_labels_and_accuracy(tmp_path):
    res = run_qat(
        "digits",
        bits=(4,),
        quantizers=("lsq", "statsq"),
        cga=(False,),
        epochs=3,
        act_bits=4,
        out=tmp_path,
    )
    rec = {r["label"]: r for r in res.records}
    assert set(rec) == {"float", "w4a4-lsq", "w4a4-statsq"}
    assert rec["float"]["act_bits"] == 32 and rec["w4a4-lsq"]["act_bits"] == 4
    # 4-bit weights and activations, 3 epochs: measured +0.7 (LSQ) and -0.6 (StatsQ) points
    # against float 0.919 (seed 0). Spec 7.2 allows 2 points at W4A4 (40 epochs, 3 seeds);
    # 1.5 points here = the measured gap + 5 test images.
    for label in ("w4a4-lsq", "w4a4-statsq"):
        assert rec[label]["final_test_accuracy"] >= rec["float"]["final_test_accuracy"] - 0.015
    data = read_results(tmp_path / "results.h5")
    assert data["runs"]["w4a4-lsq"]["config"]["act_bits"] == 4


def test_cli_device_levels_and_act_bits(tmp_path, capsys):
    out = tmp_path / "q"
    argv = ["qat", "--bits", "2", "--quantizer", "statsq", "--device-levels", "epiram"]
    argv += ["--no-cga", "--epochs", "1", "--act-bits", "2", "--no-float", "--quiet"]
    assert main([*argv, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "w2a2-statsq" in text and "w2a2-levels-epiram" in text
    assert main(["show", str(out), "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert {r["act_bits"] for r in records} == {2}
    for args, option in (
        (["--device-levels", "epirom"], "--device-levels"),
        (["--act-bits", "0"], "--act-bits"),
        (["--split-seed", "-1"], "--split-seed"),
    ):
        assert main(["qat", *args, "--out", str(tmp_path / "never")]) == 2
        assert option in capsys.readouterr().err
    assert not (tmp_path / "never").exists()


# -- spec section 7.2 training gates -----------------------------------------------------------

GATE = {"epochs": 40, "cga_epochs": 0, "lr": 3e-3, "lr_min": 1e-5, "cga": (False,)}
TOLERANCE = {4: 1.0, 3: 1.5, 2: 3.0}


def _gate_means(dataset, seeds, act_bits=None, **kw):
    acc: dict = {}
    for seed in seeds:
        res = run_qat(
            dataset,
            bits=(2, 3, 4),
            quantizers=("lsq", "statsq"),
            seed=seed,
            act_bits=act_bits,
            **{**GATE, **kw},
        )
        for r in res.records:
            acc.setdefault(r["label"], []).append(100 * r["final_test_accuracy"])
    return {k: float(np.mean(v)) for k, v in acc.items()}


@pytest.mark.parametrize(
    "dataset",
    [
        pytest.param("digits", marks=pytest.mark.gate),
        # the longest gate (3 seeds x 20 mnist5k epochs): `make slow`, to keep `make gates`
        # near its 30-minute budget on 2 cores
        pytest.param("mnist5k", marks=pytest.mark.slow),
    ],
)
def test_gate_weight_quantizers_within_tolerance_of_fp32(dataset):
    """Spec 7.2 (digits 40 epochs; mnist5k 20 epochs): mean of 3 seeds near fp32."""
    kw = {} if dataset == "digits" else {"epochs": 20}
    m = _gate_means(dataset, (0, 1, 2), **kw)
    assert m["float"] > (96.5 if dataset == "digits" else 92.0)
    for b, tol in TOLERANCE.items():
        for q in ("lsq", "statsq"):
            assert m[f"w{b}-{q}"] >= m["float"] - tol, (b, q, m)


@pytest.mark.gate
def test_gate_weights_and_activations_within_tolerance_of_fp32():
    """Spec 7.2 W/A on digits (LSQ unsigned per-tensor activations): within 2 / 3 / 4 points."""
    tol = {4: 2.0, 3: 3.0, 2: 4.0}
    for b in (2, 3, 4):
        m = _gate_means("digits", (0, 1, 2), act_bits=b)
        for q in ("lsq", "statsq"):
            assert m[f"w{b}a{b}-{q}"] >= m["float"] - tol[b], (b, q, m)


def _oscillation_runs(seed, bits, lr_min=1e-3):
    """40 epochs cosine 3e-3 -> lr_min, then 10 epochs at lr_min (CGA anneals), spec 7.2.

    LSQ and StatsQ without CGA, StatsQ with CGA; same initial weights and data order.
    """
    kw = {"epochs": 50, "cga_epochs": 10, "lr": 3e-3, "lr_min": lr_min, "seed": seed}
    plain = run_qat("digits", bits, ("lsq", "statsq"), (False,), float_baseline=False, **kw)
    cga = run_qat("digits", bits, ("statsq",), (True,), float_baseline=False, **kw)
    return plain.records + cga.records


def _check_oscillation_gate(rec, b):
    lsq, sq, ofq = rec[f"w{b}-lsq"], rec[f"w{b}-statsq"], rec[f"w{b}-statsq-cga"]
    assert ofq["anneal_events"] <= 0.2 * lsq["anneal_events"], (b, rec)
    assert ofq["anneal_events"] <= 0.2 * sq["anneal_events"], (b, rec)
    assert ofq["final_test_accuracy"] >= lsq["final_test_accuracy"] - 0.01, (b, rec)


def test_gate_oscillation_statsq_cga_vs_lsq_seed0():
    """Spec 7.2 oscillation gate, seed 0, W2 and W4 (final lr 1e-3)."""
    rec = {r["label"]: r for r in _oscillation_runs(0, (2, 4))}
    for b in (2, 4):
        _check_oscillation_gate(rec, b)


@pytest.mark.gate
def test_gate_oscillation_three_seeds():
    """Spec 7.2 oscillation gate on the mean of 3 seeds (final lr 1e-3)."""
    sums: dict = {}
    for seed in (0, 1, 2):
        for r in _oscillation_runs(seed, (2, 4)):
            d = sums.setdefault(r["label"], {"anneal_events": 0.0, "final_test_accuracy": 0.0})
            d["anneal_events"] += r["anneal_events"] / 3
            d["final_test_accuracy"] += r["final_test_accuracy"] / 3
    for b in (2, 4):
        _check_oscillation_gate(sums, b)
