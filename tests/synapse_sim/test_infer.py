"""The inference-over-time study (``synapse_sim.studies.infer``) and ``synapse-sim infer``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from synapse_sim.cli.app import main
from synapse_sim.data.datasets import load_dataset
from synapse_sim.results.store import read_results
from synapse_sim.studies.infer import (
    DEFAULT_TIMES,
    InferConfig,
    Network,
    format_time,
    infer,
    parse_time,
)
from synapse_sim.studies.train import TrainConfig, train


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0)


@pytest.fixture(scope="module")
def trained(digits):
    """A small sigmoid MLP trained in software on 8x8 digits (about 95% test accuracy)."""
    cfg = TrainConfig(dataset="digits", hidden=(32,), epochs=6, init="uniform", lr=(0.1,),
                      loss="ce", batch_size=8)  # fmt: skip
    r = train(cfg, ["software"], data=digits, progress=False)
    return Network(r.weights["software"], None, ("sigmoid",))


def test_ideal_device_without_noise_equals_software_exactly(trained, digits):
    res = infer(
        InferConfig(device="ideal", noise="none", program="ideal", instances=3),
        network=trained,
        data=digits,
        progress=False,
    )
    sw = trained.accuracy(digits.x_test, digits.y_test)
    assert res.software_accuracy == sw
    for acc in res.accuracy.values():
        assert acc.shape == (3, len(DEFAULT_TIMES))
        assert np.all(acc == sw)


def test_drift_lowers_accuracy_and_compensation_recovers_most(trained, digits):
    res = infer(
        InferConfig(noise="pcm_drift", instances=8, times=(1.0, 3.15e7)),
        network=trained,
        data=digits,
        progress=False,
    )
    raw, gdc = (res.accuracy[k].mean(axis=0) for k in ("gst_pcm-ideal", "gst_pcm-ideal-gdc"))
    sw = res.software_accuracy
    assert raw[0] == pytest.approx(sw, abs=0.005)  # no drift before t0 = 20 s
    loss = sw - raw[1]
    assert loss > 0.01
    assert sw - gdc[1] < 0.5 * loss  # compensation recovers more than half of the loss


def test_more_instances_narrow_the_band_as_one_over_sqrt_n(trained, digits):
    """Instances are independent draws: the variance of a mean over k instances falls as 1/k
    (F-test on group means of 2 and of 8 instances of 96), and the reported standard error
    is std / sqrt(n)."""
    res = infer(
        InferConfig(noise="pcm", instances=96, times=(3.15e7,), seed=5),
        network=trained,
        data=digits,
        progress=False,
    )
    a = res.accuracy["gst_pcm-ideal"][:, 0]
    assert len(np.unique(a)) > 10
    v2 = a.reshape(48, 2).mean(axis=1).var(ddof=1)
    v8 = a.reshape(12, 8).mean(axis=1).var(ddof=1)
    ratio = (v2 / v8) / 4.0  # ~ F(47, 11) when var(mean of k) = sigma^2 / k
    from scipy import stats

    lo, hi = stats.f.ppf([0.001, 0.999], 47, 11)
    assert lo < ratio < hi
    s = res.summary()["gst_pcm-ideal"]
    assert s["sem"][0] == pytest.approx(a.std(ddof=1) / np.sqrt(96))


def test_seed_reproduces_and_instances_differ(trained, digits):
    cfg = InferConfig(noise="pcm", instances=2, times=(3600.0,), seed=3)
    a = infer(cfg, network=trained, data=digits, progress=False).accuracy
    b = infer(cfg, network=trained, data=digits, progress=False).accuracy
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_bad_inputs_name_the_parameter():
    with pytest.raises(ValueError, match="time must be > 0"):
        InferConfig(times=(-1.0,))
    with pytest.raises(ValueError, match="time must be > 0"):
        InferConfig(times=(0,))
    with pytest.raises(ValueError, match="did you mean 'gst_pcm'"):
        InferConfig(device="gst_pcn")
    with pytest.raises(ValueError, match="program must be one of"):
        InferConfig(program="verified")
    with pytest.raises(ValueError, match="instances must be >= 1"):
        InferConfig(instances=0)
    with pytest.raises(ValueError, match="times must be distinct"):
        InferConfig(times=("1h", 3600))
    with pytest.raises(ValueError, match="did you mean 'y'"):
        parse_time("1yr")
    with pytest.raises(ValueError, match="give a network"):
        infer(InferConfig())
    with pytest.raises(ValueError, match="weights\\[1\\] has 5 inputs"):
        Network((np.ones((4, 3)), np.ones((2, 5))), None, ("relu",))


def test_time_parsing():
    assert parse_time("1h") == 3600.0 and parse_time("30d") == 30 * 86400.0
    assert parse_time("1y") == DEFAULT_TIMES[-1] and parse_time("1mo") == DEFAULT_TIMES[-2]
    assert parse_time("2.5") == 2.5 and parse_time(7) == 7.0
    assert [format_time(t) for t in DEFAULT_TIMES] == ["1 s", "1 h", "1 d", "30 d", "1 y"]


def test_from_torch_matches_torch(digits):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(64, 20), torch.nn.ReLU(), torch.nn.Linear(20, 10)
    ).double()
    net = Network.from_torch(model)
    x = digits.x_test[:50]
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(net.logits(x), ref, rtol=1e-12, atol=1e-12)
    with pytest.raises(TypeError, match="Conv2d"):
        Network.from_torch(torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3)))


def test_cli_infer_writes_results_and_show(tmp_path, capsys):
    src = tmp_path / "train"
    cfg = TrainConfig(dataset="digits", hidden=(16,), epochs=1, init="uniform", lr=(0.1,))
    train(cfg, ["software"], out=src, save_weights=True, progress=False)
    out = tmp_path / "inf"
    rc = main(["infer", str(src), "--instances", "2", "--times", "1s", "1d", "--out", str(out),
               "--quiet"])  # fmt: skip
    assert rc == 0
    printed = capsys.readouterr().out
    assert "| 1 d |" in printed and "inference.png" in printed
    res = read_results(out / "results.h5")
    assert res["kind"] == "infer" and res["complete"]
    run = res["runs"]["gst_pcm-ideal-gdc"]
    np.testing.assert_array_equal(run["metrics"]["time_s"], [1.0, 86400.0])
    assert run["final"]["accuracy_per_instance"].shape == (2, 2)
    assert main(["show", str(out), "--json"]) == 0
    recs = json.loads(capsys.readouterr().out)
    assert [r["label"] for r in recs] == ["gst_pcm-ideal", "gst_pcm-ideal-gdc"]
    assert recs[1]["test_accuracy"] == pytest.approx(list(run["metrics"]["test_accuracy"]))
    # bad input: one error line, exit status 2, nothing written
    assert main(["infer", str(src), "--times", "-1", "--out", str(tmp_path / "x")]) == 2
    assert "--times: time must be > 0" in capsys.readouterr().err
    assert main(["infer", str(src), "--device", "nope", "--out", str(tmp_path / "y")]) == 2
    assert "--device" in capsys.readouterr().err
    assert main(["infer", str(src), "--run", "epiram", "--out", str(tmp_path / "z")]) == 2
    assert "runs with weights" in capsys.readouterr().err


def test_source_without_weights_is_refused(tmp_path):
    cfg = TrainConfig(dataset="digits", hidden=(8,), epochs=1, init="uniform", lr=(0.1,))
    train(cfg, ["software"], out=tmp_path, progress=False)
    with pytest.raises(ValueError, match="--save-weights"):
        infer(InferConfig(source=str(tmp_path / "results.h5")))


@pytest.mark.parametrize("program", ["open_loop", "verify"])
def test_device_programming_modes_land_near_software(trained, digits, program):
    """Open-loop and verified programming on gst_pcm (its levels, spread and write noise), read
    1 s after programming without the inference model's noise: both classify (above 50%) and
    verify stays within 2 points of software."""
    res = infer(
        InferConfig(noise="none", program=program, instances=2, times=(1.0,)),
        network=trained,
        data=digits,
        progress=False,
    )
    acc = res.accuracy["gst_pcm-" + program][:, 0]
    assert np.all(acc > 0.5)
    if program == "verify":
        assert np.all(acc > res.software_accuracy - 0.02)


@pytest.mark.parametrize("mapping", ["differential", "reference"])
@pytest.mark.parametrize("adc", ["partial_sum", "uniform"])
def test_converted_product_equals_the_array_read(mapping, adc):
    """ProgrammedArray.product through a DAC and an ADC reads what DeviceArray.matmul reads
    with the same converters (ideal device, no inference noise: the same conductances)."""
    import devices
    from devices.converters import PartialSumADC
    from devices.inference import ProgrammedArray, inference_model

    rng = np.random.default_rng(4)
    W = rng.uniform(-1, 1, (6, 20))
    x = rng.uniform(0, 1, (30, 20))
    conv = {
        "dac": devices.UniformQuantizer(bits=3, lo=0.0, hi=1.0),
        "adc": PartialSumADC(bits=5)
        if adc == "partial_sum"
        else devices.UniformQuantizer(bits=5, lo=-4.0, hi=4.0),
    }
    arr = devices.DeviceArray(W.shape, devices.get("ideal"), mapping=mapping, seed=0, **conv)
    arr.program(W)
    pa = ProgrammedArray(arr, inference_model("none"), np.random.default_rng(0), **conv)
    y = pa.product(pa.conductances(1.0), x)
    ref = arr.matmul(x)
    np.testing.assert_allclose(y, ref, rtol=0, atol=1e-12)
    assert not np.allclose(y, x @ arr.weights().T)  # the converters did act


def test_converters_in_inference_reads(trained, digits):
    """16-bit converters leave the ideal device at the software accuracy (to 2 test images);
    a 2-bit ADC costs accuracy; without converters nothing changes (exact test above)."""
    sw = trained.accuracy(digits.x_test, digits.y_test)
    base = {"device": "ideal", "noise": "none", "instances": 1, "times": (1.0,)}
    fine = InferConfig(**base, dac_bits=16, adc_bits=16)
    for acc in infer(fine, network=trained, data=digits, progress=False).accuracy.values():
        assert abs(acc[0, 0] - sw) <= 2 / len(digits.y_test)
    coarse = infer(InferConfig(**base, adc_bits=2), network=trained, data=digits, progress=False)
    assert coarse.accuracy["ideal-ideal"][0, 0] < sw - 0.05
    with pytest.raises(ValueError, match="dac_bits must be >= 1"):
        InferConfig(dac_bits=0)
    with pytest.raises(ValueError, match="adc_bits must be <= 16"):
        InferConfig(adc_bits=17)
