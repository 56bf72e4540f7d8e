"""The torch bridge: device-backed layers, convert, DeviceSGD, state dicts, compare (issue 5)."""

from __future__ import annotations

import copy
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import devices  # noqa: E402
from synapse_sim.nn import DeviceConv2d, DeviceLinear, DeviceSGD, convert  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
IDEAL_STEP = 2.0 / 1024  # reference mapping, w_max = 1, 1024 levels


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _cnn(seed=0, flat=48):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 6, (3, 2), stride=(1, 2), padding=(1, 0)),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(flat, 10),
    )


def _digits(n=64, seed=0):
    from synapse_sim.data.datasets import load_dataset

    ds = load_dataset("digits", seed=seed)
    x = torch.from_numpy(ds.x_train[:n].reshape(-1, 1, 8, 8))
    y = torch.from_numpy(ds.y_train[:n])
    return x, y


# ----------------------------------------------------------------------------- layers
def test_linear_forward_and_input_grad_match_nn_linear():
    layer = DeviceLinear(7, 5, device="ideal", seed=1)
    ref = nn.Linear(7, 5).double()
    with torch.no_grad():
        ref.weight.copy_(layer.weight)
        ref.bias.copy_(layer.bias)
    layer.double()
    x = torch.randn(3, 4, 7, dtype=torch.float64, requires_grad=True)
    xr = x.detach().clone().requires_grad_(True)
    y, yr = layer(x), ref(xr)
    assert y.shape == (3, 4, 5)
    torch.testing.assert_close(y, yr, rtol=0, atol=1e-10)
    g = torch.randn_like(y)
    y.backward(g)
    yr.backward(g)
    torch.testing.assert_close(x.grad, xr.grad, rtol=0, atol=1e-10)
    torch.testing.assert_close(layer.bias.grad, ref.bias.grad, rtol=0, atol=1e-10)
    # no weight gradient: the weight is not a parameter; the rule gets (x, delta) instead
    # (stash_token: a one-element marker whose gradient counts the stashed backward passes)
    assert [n for n, _ in layer.named_parameters()] == ["bias", "stash_token"]
    xs, ds = layer.take_stash()
    np.testing.assert_allclose(xs, x.detach().reshape(-1, 7).numpy(), rtol=0, atol=0)
    np.testing.assert_allclose(ds, g.reshape(-1, 5).numpy(), rtol=0, atol=0)
    assert layer.take_stash() is None


def test_conv_forward_and_input_grad_match_nn_conv():
    layer = DeviceConv2d(3, 4, (3, 2), stride=(2, 1), padding=(1, 2), device="ideal", seed=2)
    ref = nn.Conv2d(3, 4, (3, 2), stride=(2, 1), padding=(1, 2)).double()
    with torch.no_grad():
        ref.weight.copy_(layer.weight)
        ref.bias.copy_(layer.bias)
    layer.double()
    x = torch.randn(2, 3, 7, 6, dtype=torch.float64, requires_grad=True)
    xr = x.detach().clone().requires_grad_(True)
    y, yr = layer(x), ref(xr)
    assert y.shape == yr.shape
    torch.testing.assert_close(y, yr, rtol=0, atol=1e-10)
    g = torch.randn_like(y)
    y.backward(g)
    yr.backward(g)
    torch.testing.assert_close(x.grad, xr.grad, rtol=0, atol=1e-10)
    # the rule's view: patches (batch * L, in * kh * kw) and delta (batch * L, out)
    xs, ds = layer.take_stash()
    L = y.shape[2] * y.shape[3]
    assert xs.shape == (2 * L, 3 * 3 * 2) and ds.shape == (2 * L, 4)
    # sum over rows of delta^T x is the kernel gradient torch would compute
    np.testing.assert_allclose(
        (ds.T @ xs).reshape(4, 3, 3, 2), ref.weight.grad.numpy(), rtol=0, atol=1e-10
    )


def test_weight_is_a_fresh_read_only_tensor():
    layer = DeviceLinear(4, 3, device="ideal")
    w = layer.weight
    w.zero_()
    assert layer.weight.abs().sum() > 0
    with pytest.raises(AttributeError):
        layer.weight = torch.zeros(3, 4)
    conv = DeviceConv2d(2, 3, 3, device="ideal")
    assert conv.weight.shape == (3, 2, 3, 3)
    np.testing.assert_array_equal(conv.weight.reshape(3, -1).numpy(), conv.array.weights())


def test_read_noise_reaches_forward_reads():
    layer = DeviceLinear(20, 10, device="ideal", read_sigma=0.05, bias=False)
    x = torch.ones(1, 20, dtype=torch.float64)
    with torch.no_grad():
        a, b = layer(x), layer(x)
    assert not torch.equal(a, b)
    # the statistics of the noisy reads: test_strong_versions.py::
    # test_read_noise_forward_has_the_read_statistics


# ----------------------------------------------------------------------------- convert
def test_convert_preserves_outputs_and_leaves_model_alone():
    model = _cnn().double()
    before = copy.deepcopy(model.state_dict())
    hw = convert(model, device="ideal", rule="bidirectional")
    kinds = [type(m).__name__ for m in hw]
    assert kinds == [
        "DeviceConv2d",
        "ReLU",
        "MaxPool2d",
        "DeviceConv2d",
        "ReLU",
        "Flatten",
        "DeviceLinear",
    ]
    x = torch.rand(5, 1, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(hw(x), model(x), rtol=0, atol=1e-10)
    for k, v in model.state_dict().items():  # the original is untouched
        assert torch.equal(v, before[k])
    assert isinstance(model[0], nn.Conv2d)


def test_convert_subset_and_mapping():
    model = _cnn()
    hw = convert(model, device="epiram", rule="unidirectional", layers=["6"])
    assert isinstance(hw[0], nn.Conv2d) and not isinstance(hw[0], DeviceConv2d)
    assert isinstance(hw[6], DeviceLinear)
    assert hw[6].array.mapping == "differential"  # the rule's default
    assert convert(model, rule="stochastic")[6].array.mapping == "reference"
    # a top-level Linear converts to a layer
    assert isinstance(convert(nn.Linear(3, 2)), DeviceLinear)


def test_convert_range_check():
    lin = nn.Linear(3, 2)
    with torch.no_grad():
        lin.weight.fill_(1.7)
    with pytest.raises(ValueError, match=r"w_max=1.7"):
        convert(lin)
    hw = convert(lin, w_max=2.0)
    torch.testing.assert_close(hw.weight, torch.full((2, 3), 1.7, dtype=torch.float64))
    with pytest.warns(UserWarning, match="clipped"):
        clipped = convert(lin, clip=True)
    assert float(clipped.weight.max()) == pytest.approx(1.0)


def test_convert_does_not_move_torch_rng():
    model = nn.Linear(4, 4)
    state = torch.get_rng_state()
    convert(model)
    assert torch.equal(torch.get_rng_state(), state)


# ----------------------------------------------------------------------------- optimizer
@pytest.mark.parametrize("rounding,tol", [("stochastic", 1.0), ("nearest", 0.5)])
def test_one_step_moves_weights_like_sgd(rounding, tol):
    model = _cnn(seed=4).double()
    hw = convert(model, device="ideal", rule="bidirectional")
    sw = copy.deepcopy(model)
    x, y = _digits(32)
    lr = 2.0
    opt_sw = torch.optim.SGD(sw.parameters(), lr=lr)
    opt_hw = DeviceSGD(hw, lr=lr, rule="bidirectional", rounding=rounding)
    for net, opt in ((sw, opt_sw), (hw, opt_hw)):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    moved = 0.0
    for i in (0, 3, 6):
        w_sw = sw[i].weight.detach()
        w_hw = hw[i].weight
        err = (w_hw - w_sw).abs().max().item()
        assert err <= tol * IDEAL_STEP + 1e-12, (i, err / IDEAL_STEP)
        moved = max(moved, (w_sw - model[i].weight).abs().max().item())
        torch.testing.assert_close(hw[i].bias, sw[i].bias, rtol=0, atol=1e-12)
    assert moved > 20 * IDEAL_STEP  # the step is many pulses: the test can fail
    assert opt_hw.last_stats["pulses"] > 0


def test_param_groups_give_per_layer_lr():
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    hw = convert(model, device="ideal")
    opt = DeviceSGD([{"params": [hw[0]], "lr": 1.0}, {"params": [hw[2]], "lr": 1e-9}], lr=0.1)
    assert opt.param_groups[0]["lr"] == 1.0 and len(opt.device_layers) == 2
    w0, w2 = hw[0].weight, hw[2].weight
    b2 = hw[2].bias.detach().clone()
    x = torch.randn(8, 6)
    nn.functional.cross_entropy(hw(x), torch.randint(0, 3, (8,))).backward()
    opt.step()
    assert not torch.equal(hw[0].weight, w0)
    assert torch.equal(hw[2].weight, w2)  # far below half a pulse: dead zone
    assert torch.allclose(hw[2].bias.detach(), b2, atol=1e-8)


def test_zero_grad_clears_the_stash():
    hw = convert(nn.Linear(4, 2), device="ideal")
    opt = DeviceSGD(hw, lr=0.5)
    w = hw.weight
    hw(torch.randn(3, 4)).sum().backward()
    opt.zero_grad()
    opt.step()
    assert torch.equal(hw.weight, w)
    assert opt.last_stats == {"pulses": 0, "refreshes": 0}


def _digits_loader(seed=0, n=256, bs=32):
    x, y = _digits(n, seed)
    rng = np.random.default_rng(seed)
    while True:
        idx = torch.from_numpy(rng.permutation(n))
        for s in range(0, n, bs):
            yield x[idx[s : s + bs]].float(), y[idx[s : s + bs]]


def _train_steps(net, opt, batches, k):
    losses = []
    for _ in range(k):
        xb, yb = next(batches)
        opt.zero_grad()
        loss = nn.functional.cross_entropy(net(xb), yb)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize(
    "preset,rule,opts",
    [("epiram", "bidirectional", {"rounding": "stochastic"}), ("ag_a_si", "unidirectional", {})],
)
def test_state_dict_round_trip_resumes_bit_for_bit(preset, rule, opts, tmp_path):
    model = _cnn(seed=5)
    kw = dict(device=preset, rule=rule, seed=11, sigma_nl=0.3)
    # uninterrupted
    a = convert(model, **kw)
    opt_a = DeviceSGD(a, lr=0.2, rule=rule, seed=3, **opts)
    data_a = _digits_loader()
    loss_a = _train_steps(a, opt_a, data_a, 12)
    # interrupted after 5 steps, saved, loaded into fresh objects
    b = convert(model, **kw)
    opt_b = DeviceSGD(b, lr=0.2, rule=rule, seed=3, **opts)
    data_b = _digits_loader()
    loss_b = _train_steps(b, opt_b, data_b, 5)
    path = tmp_path / "ckpt.pt"
    torch.save({"model": b.state_dict(), "opt": opt_b.state_dict()}, path)
    del b, opt_b
    ck = torch.load(path, weights_only=True)
    c = convert(_cnn(seed=99), **kw)  # other weights: the state dict must overwrite them
    opt_c = DeviceSGD(c, lr=0.2, rule=rule, seed=77, **opts)
    c.load_state_dict(ck["model"])
    opt_c.load_state_dict(ck["opt"])
    loss_b += _train_steps(c, opt_c, data_b, 7)
    assert loss_a == loss_b
    for i in (0, 3, 6):
        assert torch.equal(a[i].weight, c[i].weight)
        assert torch.equal(a[i].bias, c[i].bias)
        assert a[i].array.counters() == c[i].array.counters()
    assert opt_a.totals == opt_c.totals and opt_a.totals["pulses"] > 0


def test_state_dict_is_tensors_only():
    hw = convert(_cnn(), device="epiram")
    opt = DeviceSGD(hw, lr=0.1)
    buf = io.BytesIO()
    torch.save({"m": hw.state_dict(), "o": opt.state_dict()}, buf)
    buf.seek(0)
    ck = torch.load(buf, weights_only=True)
    extra = ck["m"]["0._extra_state"]
    assert all(isinstance(v, (torch.Tensor, str)) for v in extra.values())
    assert json.loads(extra["meta"])["device"] == "epiram"


# ----------------------------------------------------------------------------- training
def test_cnn_on_digits_ideal_tracks_software_and_nonlinear_learns():
    from synapse_sim import compare

    # 10 epochs, batch 16, lr 0.1, stochastic rounding; the ideal device follows the software
    # trajectory step by step, so the last epochs agree to well within 2 points
    res = compare(
        "cnn",
        "digits",
        devices=["ideal", "epiram"],
        rules=["bidirectional"],
        epochs=10,
        batch_size=16,
        lr=0.1,
        rule_options={"rounding": "stochastic"},
        seed=0,
    )
    sw = max(res.history["software"]["test_accuracy"][-3:])
    ideal = max(res.history["ideal-bidirectional"]["test_accuracy"][-3:])
    epiram = max(res.history["epiram-bidirectional"]["test_accuracy"][-3:])
    assert sw > 0.9
    assert abs(ideal - sw) <= 0.02, (ideal, sw)
    assert epiram > 0.6, epiram  # nonlinear, asymmetric, noisy: still far above 10 % chance
    assert sum(res.history["epiram-bidirectional"]["pulses"]) > 0
    assert res.final["epiram-bidirectional"]["total_pulses_ltp"] > 0


def test_compare_cli_writes_results_that_show_reads(tmp_path, capsys):
    from synapse_sim.cli.app import main
    from synapse_sim.results.store import read_results

    out = tmp_path / "cmp"
    rc = main(
        [
            "compare",
            "--model",
            "mlp",
            "--dataset",
            "digits",
            "--device",
            "ideal",
            "--rule",
            "unidirectional",
            "--epochs",
            "2",
            "--max-train",
            "200",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert rc == 0
    res = read_results(out / "results.h5")
    assert res["complete"]
    assert list(res["runs"]) == ["software", "ideal-unidirectional"]
    run = res["runs"]["ideal-unidirectional"]
    assert run["metrics"]["test_accuracy"].shape == (2,)
    assert {"pulses", "refreshes", "saturated_high", "epoch_time"} <= set(run["metrics"])
    assert run["final"]["total_pulses_ltp"] > 0
    assert (out / "accuracy.png").exists() and (out / "results.md").exists()
    capsys.readouterr()
    assert main(["show", str(out)]) == 0
    text = capsys.readouterr().out
    assert "ideal-unidirectional" in text and "software" in text


def test_import_synapse_sim_does_not_import_torch():
    code = (
        "import sys, synapse_sim, synapse_sim.cli.app\n"
        "synapse_sim.cli.app.build_parser()\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "assert callable(synapse_sim.compare)\n"
        "assert synapse_sim.DeviceSGD.__name__ == 'DeviceSGD'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


# ----------------------------------------------------------------------------- bad use
@pytest.mark.parametrize(
    "layer,pattern",
    [
        (nn.BatchNorm1d(4), "BatchNorm1d"),
        (nn.LSTM(4, 4), "LSTM"),
        (nn.Conv2d(2, 4, 3, groups=2), "groups=2"),
        (nn.Conv1d(2, 4, 3), "Conv1d"),  # (dilated Conv2d is supported since issue 19)
    ],
)
def test_unsupported_layers_are_named(layer, pattern):
    model = nn.Sequential(nn.Linear(4, 4), layer)
    with pytest.raises(TypeError, match=pattern) as info:
        convert(model, layers=["0", "1"])
    assert "'1'" in str(info.value)
    if "groups" in pattern:
        with pytest.raises(TypeError, match="DeviceConv2d supports"):
            convert(model)  # a conv the bridge cannot map is not skipped silently


def test_unknown_names_suggest_close_matches():
    model = nn.Sequential(nn.Linear(4, 4))
    with pytest.raises(ValueError, match="did you mean 'epiram'"):
        convert(model, device="epirem")
    with pytest.raises(ValueError, match="did you mean 'unidirectional'"):
        convert(model, rule="unidirectonal")
    with pytest.raises(ValueError, match="no module named '1'"):
        convert(model, layers=["1"])
    with pytest.raises(ValueError, match="did you mean 'epiram'"):
        DeviceLinear(3, 2, device="epirm")


def test_mismatched_state_dicts_are_refused():
    small = convert(nn.Sequential(nn.Linear(6, 4)), device="ideal")
    other_in = convert(nn.Sequential(nn.Linear(5, 4)), device="ideal")
    with pytest.raises(ValueError, match="shape"):
        other_in.load_state_dict(small.state_dict())
    other_dev = convert(nn.Sequential(nn.Linear(6, 4)), device="epiram")
    with pytest.raises(ValueError, match="device"):
        other_dev.load_state_dict(small.state_dict())
    plain = nn.Sequential(nn.Linear(6, 4))
    with pytest.raises(RuntimeError, match="_extra_state"):
        small.load_state_dict(plain.state_dict())
    opt = DeviceSGD(small, lr=0.1, rule="bidirectional")
    opt2 = DeviceSGD(copy.deepcopy(small), lr=0.1, rule="stochastic")
    with pytest.raises(ValueError, match="rule"):
        opt2.load_state_dict(opt.state_dict())
    with pytest.raises(ValueError, match="not a DeviceSGD state"):
        opt.load_state_dict(torch.optim.SGD(plain.parameters(), lr=0.1).state_dict())


def test_gpu_tensors_and_torch_devices_get_a_clear_error():
    layer = DeviceLinear(4, 2, device="ideal")
    with pytest.raises(TypeError, match="GPU backend"):
        layer(torch.empty(3, 4, device="meta"))
    with pytest.raises(TypeError, match="GPU backend"):
        DeviceLinear(4, 2, device="cuda")
    with pytest.raises(TypeError, match="not a torch device"):
        convert(nn.Linear(4, 2), device="cpu")
    if torch.cuda.is_available():  # pragma: no cover - CPU-only CI
        with pytest.raises(TypeError, match="GPU backend"):
            layer(torch.randn(3, 4, device="cuda"))


def test_optimizer_misuse():
    plain = nn.Linear(4, 2)
    with pytest.raises(ValueError, match="no device-backed layers"):
        DeviceSGD(plain.parameters(), lr=0.1)
    hw = convert(plain, rule="bidirectional")  # reference mapping
    with pytest.raises(ValueError, match="mapping='differential'"):
        DeviceSGD(hw, lr=0.1, rule="unidirectional")
    with pytest.raises(ValueError, match="lr must be"):
        DeviceSGD(hw, lr=-1)
    with pytest.raises(ValueError, match="torch.optim.SGD"):
        DeviceSGD(hw, lr=0.1, rule="software")
    with pytest.raises(ValueError, match="more than one group"):
        DeviceSGD([{"params": [hw]}, {"params": [hw]}], lr=0.1)
    with pytest.raises(ValueError, match="in_features"):
        DeviceLinear(0, 2)
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 4\)"):
        hw(torch.randn(3, 5))
    with pytest.raises(ValueError, match="devices"):
        __import__("synapse_sim").compare(devices=["idael"], epochs=1)
    assert devices.get("ideal").levels("ltp") == 1024  # IDEAL_STEP above relies on it
