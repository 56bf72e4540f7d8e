"""Networks for ``synapse-sim infer`` from ``compare`` results and from converted torch models
(``synapse_sim.studies.infer_network``)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from synapse_sim.cli.app import main  # noqa: E402
from synapse_sim.data.datasets import load_dataset  # noqa: E402
from synapse_sim.nn import convert  # noqa: E402
from synapse_sim.results.store import ResultsWriter, read_results  # noqa: E402
from synapse_sim.studies.compare import compare  # noqa: E402
from synapse_sim.studies.infer import InferConfig, Network, infer  # noqa: E402


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0)


@pytest.fixture(scope="module")
def compare_run(tmp_path_factory):
    """A tiny compare run of the mlp (64-256-128-10, ReLU) in software and on the ideal
    device, weights and biases saved."""
    out = tmp_path_factory.mktemp("compare")
    compare("mlp", "digits", devices=("ideal",), rules=("bidirectional",), epochs=3,
            batch_size=16, lr=0.3, max_train=300, out=out, save_weights=True, plots=False,
            progress=False)  # fmt: skip
    return out


@pytest.mark.parametrize("run", ["software", "ideal-bidirectional"])
def test_compare_run_infers_exactly_like_software(compare_run, digits, run):
    path = compare_run / "results.h5"
    res = read_results(path)
    stored = res["runs"][run]["weights"]
    assert sorted(stored) == ["bias0", "bias1", "bias2", "layer0", "layer1", "layer2"]
    assert [stored[f"bias{i}"].shape for i in range(3)] == [(256,), (128,), (10,)]
    assert all(np.any(stored[f"bias{i}"] != 0) for i in range(3))
    net, info = Network.from_results(path, run)
    assert info["kind"] == "compare" and info["run"] == run
    assert net.activations == ("relu", "relu")
    # the same network as compare evaluated in torch (float32 there: at most one test image
    # may fall the other way; leaving out the biases or the ReLUs costs far more)
    sw = net.accuracy(digits.x_test, digits.y_test)
    recorded = res["runs"][run]["metrics"]["test_accuracy"][-1]
    assert abs(sw - recorded) <= 1.0 / len(digits.y_test) + 1e-12
    assert sw > 0.5
    inf = infer(
        InferConfig(
            source=str(path),
            run=run,
            device="ideal",
            noise="none",
            instances=2,
            times=(1.0, 3.15e7),
        ),  # fmt: skip
        progress=False,
    )
    assert inf.software_accuracy == sw
    for acc in inf.accuracy.values():
        assert acc.shape == (2, 2)
        assert np.all(acc == sw)


def test_cli_infer_reads_a_compare_file(compare_run, tmp_path, capsys):
    out = tmp_path / "inf"
    args = ["--device", "ideal", "--noise", "none", "--instances", "1", "--times", "1s", "1y"]
    rc = main(["infer", str(compare_run), *args, "--out", str(out), "--quiet"])
    assert rc == 0
    capsys.readouterr()
    res = read_results(out / "results.h5")
    assert res["config"]["source"]["kind"] == "compare"
    run = res["runs"]["ideal-ideal"]
    np.testing.assert_array_equal(
        run["metrics"]["test_accuracy"], [run["final"]["software_accuracy"]] * 2
    )
    # converters: recorded in the config; a bad width is one error line naming the option
    conv = ["--dac-bits", "8", "--adc-bits", "10", "--out", str(tmp_path / "c"), "--quiet"]
    assert main(["infer", str(compare_run), *args, *conv]) == 0
    cfg = read_results(tmp_path / "c" / "results.h5")["config"]["infer"]
    assert (cfg["dac_bits"], cfg["adc_bits"]) == (8, 10)
    capsys.readouterr()
    assert main(["infer", str(compare_run), "--adc-bits", "0", "--out", str(tmp_path / "x")]) == 2
    assert "--adc-bits: adc_bits must be >= 1" in capsys.readouterr().err


def test_compare_cnn_and_files_without_biases_are_refused(tmp_path):
    cnn = tmp_path / "cnn"
    compare("cnn", "digits", devices=(), epochs=1, max_train=32, out=cnn, save_weights=True,
            plots=False, progress=False)  # fmt: skip
    with pytest.raises(ValueError, match=r"'cnn' model with layers conv1x8k3, conv8x16k3"):
        Network.from_results(cnn / "results.h5")
    # a compare file written before compare stored biases
    old = tmp_path / "old.h5"
    w = ResultsWriter(old, {"train": {"model": "mlp"}, "sizes": ["linear64x10"]}, seed=0,
                      kind="compare")  # fmt: skip
    w.add_run("software", device="software", rule="software", dataset="digits", epochs=1)
    w.set_final("software", {}, weights={"layer0": np.ones((10, 64))})
    w.mark_complete("software")
    w.close(complete=True)
    with pytest.raises(ValueError, match="no biases.*compare again with --save-weights"):
        Network.from_results(old)
    with pytest.raises(ValueError, match="no biases"):
        infer(InferConfig(source=str(old)), progress=False)


def _fit(model, digits, steps=60):
    """Full-batch SGD on 400 training images, one torch thread (tiny matrices)."""
    x = torch.from_numpy(digits.x_train[:400]).float()
    y = torch.from_numpy(digits.y_train[:400])
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(steps):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    return model


@pytest.mark.parametrize("act", [nn.ReLU, nn.Sigmoid, nn.Tanh])
def test_converted_torch_model_infers_exactly_like_software(digits, act):
    torch.manual_seed(1)
    model = _fit(nn.Sequential(nn.Flatten(), nn.Linear(64, 24), act(), nn.Dropout(0.1),
                               nn.Linear(24, 10), nn.LogSoftmax(dim=1)), digits)  # fmt: skip
    model.eval()
    conv = convert(model, device="ideal", rule="bidirectional", w_max=4.0)
    net = Network.from_torch(conv)
    x = digits.x_test
    with torch.no_grad():
        ref = conv(torch.from_numpy(x)).numpy()  # LogSoftmax keeps the argmax
        plain = model(torch.from_numpy(x).float()).numpy()
    np.testing.assert_array_equal(net.logits(x).argmax(1), ref.argmax(1))
    # the network holds the weights as read from the devices (1024 levels), not the originals
    np.testing.assert_allclose(net.weights[0], conv[1].weight.numpy(), rtol=0, atol=0)
    np.testing.assert_allclose(net.biases[1], model[4].bias.detach().double().numpy())
    assert np.mean(net.logits(x).argmax(1) == plain.argmax(1)) > 0.95
    sw = net.accuracy(x, digits.y_test)
    assert sw > 0.6
    res = infer(InferConfig(device="ideal", noise="none", instances=2, times=(1.0, 3600.0)),
                network=net, data=digits, progress=False)  # fmt: skip
    assert res.software_accuracy == sw
    assert all(np.all(a == sw) for a in res.accuracy.values())


@pytest.mark.parametrize(
    ("model", "match"),
    [
        (
            lambda: nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(72, 10)),
            r"layer '0' is a Conv2d: convolution and pooling layers are not supported",
        ),
        (
            lambda: convert(
                nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(72, 10))
            ),
            r"layer '0' is a DeviceConv2d: convolution",
        ),
        (lambda: nn.Sequential(nn.Linear(4, 4), nn.MaxPool1d(2)), r"'1' is a MaxPool1d"),
        (
            lambda: nn.Sequential(nn.Linear(4, 4), nn.LeakyReLU(), nn.Linear(4, 2)),
            r"layer '1' is a LeakyReLU: Network.from_torch takes MLPs",
        ),
        (
            lambda: nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)),
            r"'1' is a BatchNorm1d",
        ),
        (
            lambda: nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Tanh(), nn.Linear(4, 2)),
            r"layer '2' is a Tanh: two activations in a row",
        ),
        (lambda: nn.Sequential(nn.ReLU(), nn.Linear(4, 2)), r"'0' is a ReLU: an activation before"),
        (
            lambda: nn.Sequential(nn.Linear(4, 4), nn.Softmax(1), nn.Linear(4, 2)),
            r"'1' is a Softmax: a softmax between linear layers",
        ),
        (
            lambda: nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2), nn.ReLU()),
            r"layer '3' is a ReLU: after the last linear layer \('2'\)",
        ),
        (
            lambda: nn.Sequential(nn.Sequential(nn.Linear(4, 4)), nn.TransformerEncoderLayer(4, 1)),
            r"module '1' is a TransformerEncoderLayer with sub-modules",
        ),
        (lambda: nn.Sequential(nn.Flatten()), "no nn.Linear or DeviceLinear layer"),
    ],  # fmt: skip
)
def test_unsupported_torch_layers_are_refused_by_name(model, match):
    with pytest.raises((TypeError, ValueError), match=match):
        Network.from_torch(model())


def test_nested_sequential_and_bias_free_layers(digits):
    torch.manual_seed(2)
    model = nn.Sequential(nn.Sequential(nn.Linear(64, 16, bias=False), nn.Tanh()),
                          nn.Sequential(nn.Linear(16, 10)))  # fmt: skip
    net = Network.from_torch(model.double())
    assert net.activations == ("tanh",) and np.all(net.biases[0] == 0)
    x = digits.x_test[:40]
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(net.logits(x), ref, rtol=1e-12, atol=1e-12)
