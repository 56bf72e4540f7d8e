"""PyTorch contracts of the torch bridge (issue 19): attention modules, shared modules,
``model.zero_grad()``, SGD options and schedulers, second derivatives, dtypes, ``torch.func``,
dilation, gradcheck, copies."""

from __future__ import annotations

import copy
import io

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from synapse_sim.nn import DeviceConv2d, DeviceLinear, DeviceSGD, convert  # noqa: E402


# ----------------------------------------------------------------------------- attention
def test_multihead_attention_out_proj_is_refused_not_silently_skipped():
    with pytest.raises(TypeError, match=r"'out_proj'.*F\.multi_head_attention_forward"):
        convert(nn.MultiheadAttention(8, 2))
    with pytest.raises(TypeError, match="out_proj.*bypassed"):
        convert(nn.MultiheadAttention(8, 2), layers=["out_proj"])


def test_transformer_encoder_layer_is_refused_and_names_the_layers():
    torch.manual_seed(0)
    enc = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, batch_first=True)
    with pytest.raises(TypeError, match=r"self_attn\.out_proj.*'linear1', 'linear2'"):
        convert(enc)
    with pytest.raises(TypeError, match="fast path"):
        convert(enc, layers=["linear2"])


def test_transformer_decoder_feed_forward_converts_and_matches():
    torch.manual_seed(0)
    dec = nn.TransformerDecoderLayer(8, 2, dim_feedforward=16, dropout=0.0, batch_first=True)
    dec.eval()
    with pytest.raises(TypeError, match="out_proj"):
        convert(dec)  # both attention blocks' out_proj
    hw = convert(dec, layers=["linear1", "linear2"])
    assert isinstance(hw.linear1, DeviceLinear) and isinstance(hw.linear2, DeviceLinear)
    x, mem = torch.randn(2, 3, 8), torch.randn(2, 4, 8)
    y = hw(x, mem)
    assert y.dtype == torch.float32 and y.shape == (2, 3, 8)
    # ideal devices: weights within one conductance level (2/1024) of the originals
    torch.testing.assert_close(y, dec(x, mem), rtol=0, atol=0.05)


# ----------------------------------------------------------------------------- sharing
class _Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = self.a
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(torch.relu(self.b(torch.relu(self.a(x)))))


@pytest.mark.parametrize("layers", [None, ["a"], ["b"], ["b", "head"]])
def test_shared_module_stays_shared(layers):
    torch.manual_seed(0)
    m = _Tied()
    hw = convert(m, device="ideal", layers=layers)
    assert isinstance(hw.a, DeviceLinear)
    assert hw.a is hw.b
    assert m.a is m.b and isinstance(m.a, nn.Linear)  # the original is untouched
    assert len([mod for mod in hw.modules() if isinstance(mod, DeviceLinear)]) == (
        1 if layers in (["a"], ["b"]) else 2
    )
    x = torch.randn(5, 4)
    torch.testing.assert_close(hw(x), m(x), rtol=0, atol=0.02)
    # one layer used twice: both uses stash rows, one update
    opt = DeviceSGD(hw, lr=0.1)
    hw(x).sum().backward()
    assert hw.a.stash_rows == 10
    opt.step()
    assert hw.a.stash_rows == 0


# ----------------------------------------------------------------------------- zero_grad
def _lin(seed=0):
    torch.manual_seed(seed)
    return convert(nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 3)), device="ideal")


@pytest.mark.parametrize("set_to_none", [True, False])
def test_model_zero_grad_drops_the_stash(set_to_none):
    hw = _lin()
    opt = DeviceSGD(hw, lr=0.5)
    w = [hw[0].weight, hw[2].weight]
    hw(torch.randn(3, 6)).sum().backward()
    hw.zero_grad(set_to_none=set_to_none)  # the model's, not the optimizer's
    opt.step()
    assert torch.equal(hw[0].weight, w[0]) and torch.equal(hw[2].weight, w[1])
    assert opt.last_stats == {"pulses": 0, "refreshes": 0}


def test_step_after_model_zero_grad_applies_only_the_later_pass():
    x1, x2 = torch.randn(4, 6), torch.randn(4, 6)
    a, b = _lin(), _lin()
    oa, ob = DeviceSGD(a, lr=0.3), DeviceSGD(b, lr=0.3)
    a(x1).pow(2).sum().backward()
    a.zero_grad()
    a(x2).pow(2).sum().backward()
    oa.step()
    b(x2).pow(2).sum().backward()
    ob.step()
    assert oa.last_stats["pulses"] > 0
    for la, lb in zip(a, b, strict=True):
        if isinstance(la, DeviceLinear):
            assert torch.equal(la.weight, lb.weight)
            assert torch.equal(la.bias, lb.bias)


def test_backward_loops_without_step_keep_the_stash_bounded():
    hw = _lin()
    x = torch.randn(5, 6)
    for _ in range(50):
        hw.zero_grad()
        hw(x).sum().backward()
    assert hw[0].stash_rows == 5 and hw[2].stash_rows == 5
    # torch.autograd.grad accumulates nothing, so it stashes nothing either
    hw.zero_grad()
    xr = x.clone().requires_grad_(True)
    for _ in range(50):
        (gx,) = torch.autograd.grad(hw(xr).sum(), xr)
    hw(x).sum().backward()
    assert hw[0].stash_rows == 5
    # accumulation without zero_grad keeps every pass (as torch sums gradients)
    hw(x).sum().backward()
    assert hw[0].stash_rows == 10 and hw[0].stash_token.grad.item() == 2


def test_stash_token_is_not_state():
    hw = _lin()
    sd = hw.state_dict()
    assert not any("stash_token" in k for k in sd)
    other = _lin(seed=1)
    other.load_state_dict(sd)  # strict: no missing token key
    torch.testing.assert_close(other[0].weight, hw[0].weight, rtol=0, atol=0)
    # nor an optimizer parameter: DeviceSGD's groups (and state dict layout) hold the biases
    opt = DeviceSGD(hw, lr=0.1)
    assert [tuple(p.shape) for p in opt.param_groups[0]["params"]] == [(4,), (3,)]
    hw(torch.randn(2, 6)).sum().backward()
    opt.zero_grad()
    assert hw[0].stash_token.grad is None and hw[0].take_stash() is None


# ----------------------------------------------------------------------------- SGD options
def test_device_sgd_carries_sgd_defaults_and_onecycle_constructs():
    hw = _lin()
    opt = DeviceSGD(hw, lr=0.1)
    for k, v in {"momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0, "nesterov": False}.items():
        assert opt.defaults[k] == v and opt.param_groups[0][k] == v
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=10)
    assert opt.param_groups[0]["momentum"] == pytest.approx(0.95)
    hw(torch.randn(3, 6)).sum().backward()
    with pytest.raises(ValueError, match="momentum=0.95.*cycle_momentum=False"):
        opt.step()
    del sched


def test_onecycle_without_momentum_cycling_trains():
    hw = _lin()
    opt = DeviceSGD(hw, lr=0.1)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=0.2, total_steps=6, cycle_momentum=False
    )
    lrs = []
    for _ in range(6):
        opt.zero_grad()
        hw(torch.randn(4, 6)).pow(2).sum().backward()
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert opt.totals["pulses"] > 0
    assert max(lrs) > 10 * min(lrs)


@pytest.mark.parametrize(
    "opts",
    [
        {"momentum": 0.9},
        {"momentum": 0.9, "dampening": 0.3},
        {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
        {"weight_decay": 0.1},
    ],
)
def test_sgd_options_on_digital_groups_match_torch_sgd(opts):
    torch.manual_seed(0)
    dig = nn.Linear(3, 2)
    ref = copy.deepcopy(dig)
    hw = _lin()
    opt = DeviceSGD([{"params": [hw]}, {"params": dig.parameters(), **opts}], lr=0.1)
    ref_opt = torch.optim.SGD(ref.parameters(), lr=0.1, **opts)
    for _ in range(4):
        xd = torch.randn(5, 3)
        for net, o in ((dig, opt), (ref, ref_opt)):
            o.zero_grad()
            net(xd).pow(2).sum().backward()
            o.step()
    torch.testing.assert_close(dig.weight, ref.weight, rtol=0, atol=1e-7)
    torch.testing.assert_close(dig.bias, ref.bias, rtol=0, atol=1e-7)


def test_sgd_options_are_validated():
    hw = _lin()
    with pytest.raises(ValueError, match="momentum=0.9 for a group with device layers"):
        DeviceSGD(hw, lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="weight_decay"):
        DeviceSGD(hw, lr=0.1, weight_decay=1e-4)
    with pytest.raises(ValueError, match="momentum must be a finite number >= 0, got -1"):
        DeviceSGD(hw, lr=0.1, momentum=-1)
    with pytest.raises(ValueError, match="nesterov=True needs momentum > 0"):
        DeviceSGD([{"params": [hw]}, {"params": [nn.Parameter(torch.ones(1))]}], nesterov=True)
    with pytest.raises(ValueError, match="lr must be a positive finite number, got inf"):
        DeviceSGD(hw, lr=float("inf"))
    for bad in (10**400, np.float32("inf"), 0, -0.5):  # an int too large for a float, too
        with pytest.raises(ValueError, match="lr must be a positive finite number"):
            DeviceSGD(hw, lr=bad)
    with pytest.raises(ValueError, match="dampening must be a finite number >= 0"):
        DeviceSGD(hw, lr=0.1, dampening=10**400)
    assert DeviceSGD(hw, lr=3).param_groups[0]["lr"] == 3.0  # an int lr is a number
    opt = DeviceSGD(hw, lr=np.float32(0.1))  # numpy scalars are numbers too
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)
    opt.param_groups[0]["lr"] = float("nan")
    hw(torch.randn(2, 6)).sum().backward()
    with pytest.raises(ValueError, match="lr of parameter group 0"):
        opt.step()


# ----------------------------------------------------------------------------- autograd
def test_second_derivatives_raise_instead_of_losing_the_layer_term():
    layer = DeviceLinear(4, 3, device="ideal").double()
    x = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    (gx,) = torch.autograd.grad(layer(x).pow(2).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="differentiate twice"):
        gx.pow(2).sum().backward()  # a gradient penalty
    with pytest.raises(RuntimeError):
        torch.autograd.gradgradcheck(layer, (x,))


def _conv(**kw):
    return DeviceConv2d(2, 3, 3, device="ideal", **kw).double()


@pytest.mark.parametrize(
    "make,shape",
    [
        (lambda: DeviceLinear(5, 3, device="ideal").double(), (4, 5)),
        (lambda: DeviceLinear(5, 3, bias=False, device="ideal").double(), (2, 3, 5)),
        (lambda: DeviceLinear(5, 3, device="ideal", mapping="differential").double(), (4, 5)),
        (lambda: _conv(padding=1), (2, 2, 5, 5)),
        (lambda: _conv(stride=2, dilation=(2, 1), padding="valid"), (1, 2, 7, 6)),
        (lambda: _conv(padding=1, padding_mode="reflect", bias=False), (2, 5, 5)),
    ],
)
def test_gradcheck_every_device_layer_ideal_float64(make, shape):
    layer = make()
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x,), eps=1e-6, atol=1e-6)
    if layer.bias is not None:
        assert torch.autograd.gradcheck(lambda b: layer(x.detach()) + 0 * b.sum(), (layer.bias,))


# ----------------------------------------------------------------------------- dtypes
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("bias", [True, False])
def test_low_precision_inputs_keep_their_dtype(dtype, bias):
    layer = DeviceLinear(6, 4, bias=bias, device="ideal")
    x = torch.randn(3, 6)
    xl = x.to(dtype).requires_grad_(True)
    y = layer(xl)
    assert y.dtype == dtype
    torch.testing.assert_close(y.float(), layer(x.to(dtype).float()), rtol=0.02, atol=0.02)
    y.float().sum().backward()
    assert xl.grad.dtype == dtype
    xs, ds = layer.take_stash()
    assert xs.dtype == np.float64 and ds.shape == (3, 4)
    conv = DeviceConv2d(1, 2, 3, padding=1, bias=bias, device="ideal")
    assert conv(torch.randn(2, 1, 5, 5).to(dtype)).dtype == dtype


def test_complex_and_integer_inputs_are_refused():
    layer = DeviceLinear(2, 2, device="ideal")
    with pytest.raises(TypeError, match="floating-point"):
        layer(torch.ones(1, 2, dtype=torch.int64))


def _node_names(fn, seen=None) -> set:
    """Class names of the autograd graph's nodes from ``fn`` down."""
    seen = set() if seen is None else seen
    if fn is not None and type(fn).__name__ not in seen:
        seen.add(type(fn).__name__)
        for nxt, _ in fn.next_functions:
            _node_names(nxt, seen)
    return seen


@pytest.mark.parametrize("shape", [(4, 6), (2, 3, 6)])
def test_plain_function_path_equals_the_transform_capable_one(shape, monkeypatch):
    """Outside torch.func the layer's read goes through the plain autograd function (no
    setup_context: torch binds no arguments per call); it must give the same outputs, input
    gradients and stashed rows, bit for bit, as ArrayMatmul itself (which vmap needs)."""
    from synapse_sim.nn import tensors

    torch.manual_seed(3)
    layer = DeviceLinear(6, 4, device="epiram", seed=2)
    twin = copy.deepcopy(layer)
    x = torch.randn(*shape, requires_grad=True)
    xt = x.detach().clone().requires_grad_(True)
    y = layer(x)
    with monkeypatch.context() as m:  # as if a transform were active: ArrayMatmul itself
        m.setattr(tensors, "_transforms_active", lambda: True)
        yt = twin(xt)
    assert "_ArrayMatmulPlainBackward" in _node_names(y.grad_fn)
    assert "ArrayMatmulBackward" in _node_names(yt.grad_fn)
    torch.testing.assert_close(y, yt, rtol=0, atol=0)
    g = torch.randn(*shape[:-1], 4)
    y.backward(g)
    yt.backward(g)
    torch.testing.assert_close(x.grad, xt.grad, rtol=0, atol=0)
    (xs, ds), (xs_t, ds_t) = layer.take_stash(), twin.take_stash()
    np.testing.assert_array_equal(xs, xs_t)
    np.testing.assert_array_equal(ds, ds_t)
    with pytest.raises(RuntimeError, match="differentiate twice"):  # the plain path too
        (gx,) = torch.autograd.grad(layer(x).pow(2).sum(), x, create_graph=True)
        gx.sum().backward()


def test_forward_mode_ad_is_refused_clearly_on_the_plain_path():
    """Dual tensors (torch.autograd.forward_ad) are not a torch.func transform: the layer takes
    its plain autograd function, whose jvp must refuse with the same message."""
    import torch.autograd.forward_ad as fwad

    layer = DeviceLinear(3, 2, device="ideal")
    x = torch.randn(4, 3)
    with fwad.dual_level(), pytest.raises(NotImplementedError, match="other than vmap"):
        layer(fwad.make_dual(x, torch.ones_like(x)))


def test_noncontiguous_and_float64_inputs_read_the_same_rows():
    layer = DeviceLinear(5, 3, device="ideal")
    x = torch.randn(5, 4)  # x.T is a non-contiguous (4, 5) view
    y = layer(x.T)
    torch.testing.assert_close(y, layer(x.T.contiguous()), rtol=0, atol=0)
    y64 = layer(x.T.double())
    assert y64.dtype == torch.float64
    torch.testing.assert_close(y64, layer(x.T.contiguous().double()), rtol=0, atol=0)
    torch.testing.assert_close(y64.float(), y, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="x contains NaN or infinite values"):
        layer(torch.full((2, 5), float("nan")))


# ----------------------------------------------------------------------------- torch.func
def test_vmap_is_one_batched_read():
    layer = DeviceLinear(6, 4, device="ideal")
    x = torch.randn(5, 6)
    torch.testing.assert_close(torch.func.vmap(layer)(x), layer(x), rtol=0, atol=0)
    conv = DeviceConv2d(1, 2, 3, device="ideal")
    xc = torch.randn(3, 1, 6, 6)
    torch.testing.assert_close(torch.func.vmap(conv)(xc), conv(xc), rtol=0, atol=1e-6)
    xb = torch.randn(2, 5, 6)  # in_dims=1: the mapped axis is not the first
    torch.testing.assert_close(
        torch.func.vmap(layer, in_dims=1)(xb), layer(xb.transpose(0, 1)), rtol=0, atol=0
    )


@pytest.mark.parametrize("transform", ["grad", "jacrev", "jvp"])
def test_other_func_transforms_are_refused_clearly(transform):
    layer = DeviceLinear(3, 2, device="ideal")
    x = torch.randn(4, 3)
    with pytest.raises(NotImplementedError, match="torch.func transforms other than vmap"):
        if transform == "grad":
            torch.func.grad(lambda z: layer(z).sum())(x)
        elif transform == "jacrev":
            torch.func.jacrev(layer)(x[0])
        else:
            torch.func.jvp(layer, (x,), (torch.ones_like(x),))


# ----------------------------------------------------------------------------- conv options
def test_conv_dilation_and_padding_modes_match_nn_conv2d():
    torch.manual_seed(0)
    for kw in (
        {"dilation": 2, "padding": 2},
        {"dilation": (2, 1), "padding": "same"},
        {"dilation": 3, "stride": (1, 2), "padding": 1},
        {"padding": 1, "padding_mode": "circular"},
        {"padding": (1, 2), "padding_mode": "replicate", "dilation": 2},
    ):
        ref = nn.Conv2d(2, 3, 3, **kw).double()
        hw = convert(ref, device="ideal")
        assert isinstance(hw, DeviceConv2d) and hw.dilation == ref.dilation
        with torch.no_grad():
            ref.weight.copy_(hw.weight)
        x = torch.randn(2, 2, 9, 8, dtype=torch.float64)
        torch.testing.assert_close(hw.double()(x), ref(x), rtol=0, atol=1e-10)


def test_conv_unsupported_options_are_named():
    with pytest.raises(ValueError, match="groups=2"):
        DeviceConv2d(2, 2, 3, groups=2)
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        DeviceConv2d(2, 2, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match="dilation must be an integer >= 1, got 0"):
        DeviceConv2d(2, 2, 3, dilation=0)
    with pytest.raises(TypeError, match="groups=2"):
        convert(nn.Conv2d(2, 2, 3, groups=2))


# ----------------------------------------------------------------------------- copies
def _one_step_pulses(model, x):
    opt = DeviceSGD(model, lr=0.5)
    model(x).pow(2).sum().backward()
    opt.step()
    assert opt.last_stats["pulses"] > 0


def test_deepcopy_of_a_converted_model_is_independent():
    hw = _lin()
    twin = copy.deepcopy(hw)
    x = torch.randn(3, 6)
    torch.testing.assert_close(twin(x), hw(x), rtol=0, atol=0)
    _one_step_pulses(twin, x)
    assert not torch.equal(twin[0].weight, hw[0].weight)
    # the copy's stash bookkeeping is its own
    twin.zero_grad()
    hw(x).sum().backward()
    assert hw[0].stash_rows == 3 and twin[0].stash_rows == 0


def _save_load(model):
    buf = io.BytesIO()
    torch.save(model, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=False)


def test_torch_save_of_a_whole_converted_model():
    hw = _lin()
    back = _save_load(hw)
    x = torch.randn(3, 6)
    torch.testing.assert_close(back(x), hw(x), rtol=0, atol=0)
    _one_step_pulses(back, x)
