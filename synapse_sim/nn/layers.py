"""Device-backed torch layers: :class:`DeviceLinear` and :class:`DeviceConv2d`.

The weight matrix of a layer lives in a :class:`devices.DeviceArray`; torch sees no weight
parameter. Forward is one array read (``array.matmul``: read noise, DAC/ADC), the input gradient
is one transposed read (``array.rmatmul``). For the weights the backward pass produces no torch
gradient: it stashes the layer input ``x`` and the output gradient ``grad_output`` on the module,
and :class:`synapse_sim.nn.DeviceSGD` hands them to a :class:`learning_rules.PulseRule`, which
turns ``-lr * grad_output^T x`` into pulses. The bias is digital: an ordinary
``nn.Parameter`` trained by plain SGD.

The array work of the bridge (reads, rule updates) runs with BLAS at one thread
(:data:`run_array_work`): the products of one step are small, and BLAS worker threads spinning
beside torch's and numba's pools slowed a converted model's step about twofold.

Tensors cross to numpy on the CPU (``x.detach().numpy()`` and ``torch.from_numpy``, views where
the dtype is already float64). With the GPU backend (``backend="cupy"``, ``docs/GPU.md``) CUDA
tensors cross to cupy and back through DLPack, without copies (:func:`tensor_to_array`,
:func:`array_to_tensor`). A tensor on a device the array's backend does not run on raises a
``TypeError`` that says what to do.
"""

from __future__ import annotations

import abc
import copy
import functools
import json
import math
import warnings
import weakref

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import devices
from devices.xp import asnumpy

from .tensors import (
    GPU_TENSOR_DEVICE,
    array_matmul,
    array_to_tensor,
    gpu_message,
    layer_output,
    numpy_to_tensor,
    on_gpu,
    resolve_device,
    run_array_work,
    tensor_to_array,
    tensor_to_numpy,
    tensor_to_numpy_like,
)

__all__ = [
    "DeviceLinear",
    "DeviceConv2d",
    "DeviceLayer",
    "array_to_tensor",
    "tensor_to_array",
    "gpu_message",
    "resolve_device",
    "run_array_work",
]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


_TOKEN = "stash_token"
#: Stashed backward passes at which a layer warns that nothing consumes them.
_STASH_WARN = 1000


def _drop_token_key(module, state_dict, prefix, local_metadata) -> None:
    """State-dict hook: the stash token is bookkeeping, not state."""
    state_dict.pop(prefix + _TOKEN, None)


def _fill_token_key(module, state_dict, prefix, *args) -> None:
    """Load pre-hook: state dicts carry no stash token; keep the layer's own."""
    state_dict.setdefault(prefix + _TOKEN, module.stash_token.detach().clone())


def _on_token_grad(layer_ref, token) -> None:
    layer = layer_ref()
    if layer is not None:
        layer._confirm_pending(token)


class DeviceLayer(nn.Module, abc.ABC):
    """Base of the device-backed layers (holds the array, the stash and the extra state).

    Attributes
    ----------
    array : devices.DeviceArray
        The crossbar holding the weight matrix.
    bias : torch.nn.Parameter or None
        Digital bias (trained by plain SGD).
    stash_token : torch.nn.Parameter
        A one-element marker (not saved in state dicts, not trained): its gradient counts the
        backward passes whose ``(x, delta)`` rows wait in the stash, so that zeroing the
        model's gradients (``model.zero_grad()``) drops those rows too.
    converted_rule : str, learning_rules.PulseRule or None
        The rule :func:`synapse_sim.convert` converted the layer for (its ``rule``), which
        :class:`DeviceSGD` trains it with unless given another; None for a layer built
        directly.

    Notes
    -----
    The array function is once differentiable (second derivatives raise: the weights are
    not torch parameters), takes float32, float64, float16 and bfloat16 inputs (the output
    has the input's dtype; the read runs in float64) and supports ``torch.func.vmap`` (the
    mapped rows are read as one batch); other ``torch.func`` transforms raise
    ``NotImplementedError``.
    """

    converted_rule = None  # set on the layers convert() makes

    def _setup(
        self,
        shape,
        device,
        *,
        mapping,
        form,
        w_max,
        seed,
        backend,
        dac,
        adc,
        device_overrides,
    ):
        name = type(self).__name__
        model = resolve_device(device, device_overrides, name)
        if form not in ("one_sided", "centered"):
            raise ValueError(f"form must be 'one_sided' or 'centered', got {form!r}")
        self.array = devices.DeviceArray(
            shape,
            model,
            mapping=mapping,
            seed=seed,
            backend=backend,
            w_max=w_max,
            dac=dac,
            adc=adc,
        )
        self.form = form
        self._stash: list = []
        self._pending: list = []

    def _add_token(self) -> None:
        """Register :attr:`stash_token` (after the bias, which keeps the bias first)."""
        self.stash_token = nn.Parameter(torch.zeros(1))
        self.register_state_dict_post_hook(_drop_token_key)
        self.register_load_state_dict_pre_hook(_fill_token_key)

    def __deepcopy__(self, memo):
        """Deep copy (the array's kernel module is shared, everything else copied)."""
        cls = type(self)
        new = cls.__new__(cls)
        memo[id(self)] = new
        for k, v in self.__dict__.items():
            if k == "array":
                arr = type(v).__new__(type(v))
                memo[id(v)] = arr
                arr.__dict__.update(
                    {
                        ak: (av if ak == "_k" else copy.deepcopy(av, memo))
                        for ak, av in vars(v).items()
                    }
                )
                new.__dict__[k] = arr
            elif k in ("_stash", "_pending"):
                new.__dict__[k] = []
            elif k == "_token_hooked":
                continue
            else:
                new.__dict__[k] = copy.deepcopy(v, memo)
        return new

    # ------------------------------------------------------------------ weights
    def _matrix_to_weight(self, m: np.ndarray) -> np.ndarray:
        return m

    def _weight_to_matrix(self, w: np.ndarray) -> np.ndarray:
        return w

    @property
    def weight(self) -> torch.Tensor:
        """Effective weights read from the devices (noise-free), a fresh float64 tensor.

        Read-only: it is not a parameter and writing to it does not change the devices; use
        :meth:`program`.
        """
        return layer_output(self._matrix_to_weight(self.array.weights()), self, torch.float64)

    @property
    @abc.abstractmethod
    def weight_shape(self) -> tuple:
        """Shape of :attr:`weight` (the torch layout)."""

    def program(self, weight, *, mode: str = "ideal", clip: bool = False) -> None:
        """Write weights onto the devices.

        Parameters
        ----------
        weight : torch.Tensor or array_like
            In the torch layout of this layer (:attr:`weight_shape`).
        mode : {"ideal", "open_loop", "verify"}
            Programming mode of :meth:`devices.DeviceArray.program`.
        clip : bool
            Clip weights outside ``[-w_max, w_max]`` instead of raising ``ValueError``.
        """
        if isinstance(weight, torch.Tensor):
            if weight.device.type == GPU_TENSOR_DEVICE and on_gpu(self):
                weight = weight.detach().cpu()  # programming validates on the host
            weight = tensor_to_numpy(weight, f"{type(self).__name__}.program")
        w = np.asarray(asnumpy(weight), dtype=np.float64)
        if w.shape != tuple(self.weight_shape):
            raise ValueError(
                f"weight must have shape {tuple(self.weight_shape)}, got {tuple(w.shape)}"
            )
        if not np.all(np.isfinite(w)):
            raise ValueError("weight contains NaN or infinite values")
        w_max = self.array.w_max
        big = float(np.abs(w).max(initial=0.0))
        if big > w_max and not clip:
            raise ValueError(
                f"weights reach |W| = {big:.4g}, outside the device range [-w_max, w_max] with "
                f"w_max={w_max:g}; pass w_max={_nice_wmax(big)} (or larger) to represent them, "
                "or clip=True to clip them"
            )
        self.array.program(self._weight_to_matrix(w), mode=mode, form=self.form)

    # ------------------------------------------------------------------ autograd glue
    def _apply_array(self, x2d: torch.Tensor) -> torch.Tensor:
        if not x2d.is_cpu and not on_gpu(self):
            raise TypeError(gpu_message(type(self).__name__, f"a tensor on {str(x2d.device)!r}"))
        if self._pending and torch.is_grad_enabled():
            # rows of a backward pass that did not accumulate gradients (torch.autograd.grad)
            self._pending.clear()
        token = self.stash_token
        if self.__dict__.get("_token_hooked") is not token:
            token.register_post_accumulate_grad_hook(
                functools.partial(_on_token_grad, weakref.ref(self))
            )
            self.__dict__["_token_hooked"] = token
        return array_matmul(x2d, token, self)

    def _confirm_pending(self, token) -> None:
        """The backward passes stashed since the last accumulation reached ``token.grad``.

        ``token.grad`` is the number of accumulated passes since the gradients were last
        zeroed; when it equals the pending passes, ``zero_grad`` (of the model or of an
        optimizer) ran in between and the older rows are dropped.
        """
        n = len(self._pending)
        if token.grad is not None and token.grad.item() <= n:
            self._stash.clear()
        self._stash.extend(self._pending)
        self._pending.clear()
        if len(self._stash) == _STASH_WARN:
            warnings.warn(
                f"{type(self).__name__} holds the rows of {_STASH_WARN} backward passes waiting "
                "for an optimizer step (gradients accumulated without zero_grad() or step()); "
                "the stash grows with every further pass until one of them is called",
                RuntimeWarning,
                stacklevel=2,
            )

    @property
    def stash_rows(self) -> int:
        """Rows (``x``, ``delta`` pairs) stashed for the next update."""
        return sum(int(x.shape[0]) for x, _ in self._stash)

    def take_stash(self):
        """The stashed ``(x, delta)`` of the backward passes since the last call (or ``None``).

        Only backward passes that accumulated into the gradients count (``loss.backward()``;
        not ``torch.autograd.grad``), and only those since the gradients were last zeroed:
        ``model.zero_grad()`` drops the rows as the optimizer's ``zero_grad`` does. This is
        what ``stash_token`` is for: a one-element parameter whose gradient counts the
        accumulated backward passes through the layer (it is not saved in state dicts).

        Returns
        -------
        tuple of numpy.ndarray (cupy.ndarray with the GPU backend) or None
            ``x`` of shape ``(n, in)`` and ``delta`` of shape ``(n, out)`` (several backward
            passes are concatenated along the first axis: the rule's update sums over it,
            which matches torch's gradient accumulation). The stash is emptied.
        """
        g = self.stash_token.grad
        self._pending.clear()
        if g is None or g.item() == 0.0:
            self._stash.clear()
        if not self._stash:
            return None
        xs, ds = zip(*self._stash, strict=True)
        self._stash.clear()
        if len(xs) == 1:
            return xs[0], ds[0]
        xp = self.array._xp
        return xp.concatenate(xs), xp.concatenate(ds)

    def clear_stash(self) -> None:
        """Drop stashed inputs and output gradients (called by ``DeviceSGD.zero_grad``)."""
        self._stash.clear()
        self._pending.clear()

    # ------------------------------------------------------------------ state
    def _meta(self) -> dict:
        a = self.array
        return {
            "layer": type(self).__name__,
            "shape": [int(a.out_features), int(a.in_features)],
            "mapping": a.mapping,
            "device": a.device.name or type(a.device).__name__,
            "w_max": float(a.w_max),
        }

    def get_extra_state(self) -> dict:
        """The device state as tensors (no pickled objects; see :meth:`set_extra_state`)."""
        st = {k: numpy_to_tensor(v) for k, v in self.array.state_dict().items()}
        st["meta"] = json.dumps(self._meta(), sort_keys=True)
        return st

    def set_extra_state(self, state) -> None:
        """Restore the device state saved by :meth:`get_extra_state`.

        Raises
        ------
        ValueError
            The state belongs to a layer of another shape, mapping, device preset or range.
        """
        if not isinstance(state, dict) or "meta" not in state:
            raise ValueError(
                f"{type(self).__name__}: the extra state is not a device-layer state "
                f"(got {type(state).__name__})"
            )
        saved = json.loads(state["meta"])
        mine = self._meta()
        diff = [k for k in mine if saved.get(k) != mine[k]]
        if diff:
            detail = ", ".join(f"{k}: saved {saved.get(k)!r}, this layer {mine[k]!r}" for k in diff)
            raise ValueError(
                f"{type(self).__name__} state_dict does not match this layer ({detail})"
            )
        ref = self.array.state_dict()
        missing = [k for k in ref if k not in state and k not in devices.array.OPTIONAL_STATE_KEYS]
        if missing:
            raise ValueError(f"{type(self).__name__} state_dict lacks {', '.join(missing)}")
        self.array.load_state_dict(
            {k: tensor_to_numpy_like(state[k], ref[k]) for k in ref if k in state}
        )
        self.clear_stash()

    def _extra_repr_device(self) -> str:
        a = self.array
        name = a.device.name or type(a.device).__name__
        r = self.converted_rule  # a name, or a PulseRule (its method; the repr is long)
        rule = (
            "" if r is None else f", rule={r!r}" if isinstance(r, str)
            else f", rule=PulseRule(method={r.method!r}, ...)"
        )  # fmt: skip
        return f"device={name!r}, mapping={a.mapping!r}, w_max={a.w_max:g}{rule}"


def _nice_wmax(big: float) -> str:
    return f"{math.ceil(big * 100) / 100:g}"


def _check_int(name, v, lo=1):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    return int(v)


def _pair(name, v, lo):
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
        return (_check_int(name, v[0], lo), _check_int(name, v[1], lo))
    v = _check_int(name, v, lo)
    return (v, v)


def _bias_init(bias: torch.Tensor, fan_in: int) -> None:
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    nn.init.uniform_(bias, -bound, bound)


def _default_weight(shape, fan_in) -> np.ndarray:
    """torch's default Linear/Conv2d initialisation (kaiming uniform, a = sqrt(5))."""
    w = torch.empty(shape, dtype=torch.float64)
    nn.init.kaiming_uniform_(w, a=math.sqrt(5))
    return w.numpy()


class DeviceLinear(DeviceLayer):
    """A linear layer ``y = x W^T + b`` whose ``W`` lives in a device array.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool
        Add a digital bias (an ``nn.Parameter``, trained by plain SGD).
    device : str or devices.DeviceModel
        The synapse device: a preset name of :func:`devices.names` (``"ideal"``,
        ``"epiram"``, ...) or a model. Not a torch device (``backend`` picks CPU or GPU).
    mapping : {"differential", "reference"}
        A differential pair (the default, as for :class:`devices.DeviceArray`; the
        unidirectional and adaptive rules need it), or one device against a mid-range reference
        (:func:`synapse_sim.convert` picks the rule's own default mapping).
    form : {"one_sided", "centered"}
        Programming form of the differential pair (see :meth:`devices.DeviceArray.program`).
    w_max : float
        Weight range ``[-w_max, w_max]`` of the array.
    seed : int
        Seed of the array (device-to-device draws, write noise, pulse trains).
    backend : {"auto", "numpy", "numba", "cupy"}
        Kernels of the array; ``"cupy"`` keeps it on the GPU and takes CUDA tensors
        (``docs/GPU.md``).
    dac, adc : devices.UniformQuantizer, optional
        Converters on the array inputs and column outputs of every read.
    weight : array_like, optional
        Initial weights ``(out_features, in_features)`` (default: torch's ``nn.Linear``
        initialisation from torch's global RNG), programmed with ``mode="ideal"``.
    **device_overrides
        Passed to :func:`devices.get` (e.g. ``c2c_sigma=0``).

    Notes
    -----
    The array has shape ``(out_features, in_features)``; :attr:`weight` is the noise-free
    effective weight matrix read from it. Inputs of shape ``(..., in_features)`` are flattened
    to ``(n, in_features)`` for the read.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        device="ideal",
        mapping: str = "differential",
        form: str = "one_sided",
        w_max: float = 1.0,
        seed: int | None = 0,
        backend: str = "auto",
        dac=None,
        adc=None,
        weight=None,
        **device_overrides,
    ):
        super().__init__()
        self.in_features = _check_int("in_features", in_features)
        self.out_features = _check_int("out_features", out_features)
        self._setup(
            (self.out_features, self.in_features),
            device,
            mapping=mapping,
            form=form,
            w_max=w_max,
            seed=seed,
            backend=backend,
            dac=dac,
            adc=adc,
            device_overrides=device_overrides,
        )
        if bias:
            self.bias = nn.Parameter(torch.empty(self.out_features))
            _bias_init(self.bias.data, self.in_features)
        else:
            self.register_parameter("bias", None)
        self._add_token()
        if weight is None:
            weight = _default_weight(self.weight_shape, self.in_features)
        self.program(weight)

    @property
    def weight_shape(self) -> tuple:
        """``(out_features, in_features)``."""
        return (self.out_features, self.in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x W^T + b`` through one array read."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"DeviceLinear input must be a torch.Tensor, got {type(x).__name__}")
        if x.shape[-1:] != (self.in_features,):
            raise ValueError(
                f"DeviceLinear input must have shape (..., {self.in_features}), "
                f"got {tuple(x.shape)}"
            )
        if x.dim() == 2:  # (batch, in): no views to record
            y = self._apply_array(x)
        else:
            lead = x.shape[:-1]
            y = self._apply_array(x.reshape(-1, self.in_features))
            y = y.reshape(*lead, self.out_features)
        b = self.bias
        if b is None:
            return y
        return y + (b if b.dtype == y.dtype else b.to(y.dtype))

    def extra_repr(self) -> str:  # noqa: D102
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, {self._extra_repr_device()}"
        )


class DeviceConv2d(DeviceLayer):
    """A 2-D convolution whose kernel lives in a device array (im2col on the crossbar).

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size, stride, padding, dilation : int or (int, int)
        As in ``nn.Conv2d`` (``padding`` also ``"valid"``, or ``"same"`` with stride 1).
    groups : int
        Only 1 (one crossbar holds the whole kernel matrix); other values raise
        ``ValueError``.
    bias : bool
        Digital bias (an ``nn.Parameter``).
    padding_mode : {"zeros", "reflect", "replicate", "circular"}
        As in ``nn.Conv2d``.
    device, mapping, form, w_max, seed, backend, dac, adc, **device_overrides
        As in :class:`DeviceLinear`.
    weight : array_like, optional
        Initial kernel ``(out_channels, in_channels, kh, kw)`` (default: torch's
        ``nn.Conv2d`` initialisation).

    Notes
    -----
    Mapping onto the array: the kernel ``(out_channels, in_channels, kh, kw)`` is the array
    matrix ``(out_channels, in_channels * kh * kw)``, column ``c * kh * kw + i * kw + j``
    (``weight.reshape(out_channels, -1)``, the channel-major order of
    ``torch.nn.functional.unfold``). A forward pass unfolds the input into patches of shape
    ``(batch * L, in_channels * kh * kw)`` (``L`` output positions), reads the array once for
    all of them and folds the result back to ``(batch, out_channels, H_out, W_out)``. The
    learning rule sees ``x`` = these patches and ``delta`` = the output gradient reshaped to
    ``(batch * L, out_channels)``, so a kernel weight's update sums over batch and positions.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        *,
        device="ideal",
        mapping: str = "differential",
        form: str = "one_sided",
        w_max: float = 1.0,
        seed: int | None = 0,
        backend: str = "auto",
        dac=None,
        adc=None,
        weight=None,
        **device_overrides,
    ):
        super().__init__()
        self.in_channels = _check_int("in_channels", in_channels)
        self.out_channels = _check_int("out_channels", out_channels)
        self.kernel_size = _pair("kernel_size", kernel_size, 1)
        self.stride = _pair("stride", stride, 1)
        self.dilation = _pair("dilation", dilation, 1)
        if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups != 1:
            raise ValueError(
                f"DeviceConv2d does not support groups={groups!r}: one crossbar holds the whole "
                "kernel matrix (groups=1 only; keep grouped convolutions digital)"
            )
        if padding_mode not in _PADDING_MODES:
            raise ValueError(
                f"padding_mode must be one of {', '.join(map(repr, _PADDING_MODES))}, got "
                f"{padding_mode!r}"
            )
        self.padding_mode = padding_mode
        if isinstance(padding, str):
            if padding == "valid":
                padding = 0
            elif padding == "same":
                kh, kw = self.kernel_size
                dh, dw = self.dilation
                if self.stride != (1, 1) or (dh * (kh - 1)) % 2 or (dw * (kw - 1)) % 2:
                    raise ValueError(
                        "padding='same' needs stride 1 and an even total padding "
                        "dilation * (kernel_size - 1), got "
                        f"kernel_size={self.kernel_size}, stride={self.stride}, "
                        f"dilation={self.dilation}"
                    )
                padding = (dh * (kh - 1) // 2, dw * (kw - 1) // 2)
            else:
                raise ValueError(
                    f"padding must be an int, a pair, 'valid' or 'same', got {padding!r}"
                )
        self.padding = _pair("padding", padding, 0)
        kh, kw = self.kernel_size
        fan_in = self.in_channels * kh * kw
        self._setup(
            (self.out_channels, fan_in),
            device,
            mapping=mapping,
            form=form,
            w_max=w_max,
            seed=seed,
            backend=backend,
            dac=dac,
            adc=adc,
            device_overrides=device_overrides,
        )
        if bias:
            self.bias = nn.Parameter(torch.empty(self.out_channels))
            _bias_init(self.bias.data, fan_in)
        else:
            self.register_parameter("bias", None)
        self._add_token()
        if weight is None:
            weight = _default_weight(self.weight_shape, fan_in)
        self.program(weight)

    @property
    def weight_shape(self) -> tuple:
        """``(out_channels, in_channels, kh, kw)``."""
        return (self.out_channels, self.in_channels, *self.kernel_size)

    def _matrix_to_weight(self, m):
        return m.reshape(self.weight_shape)

    def _weight_to_matrix(self, w):
        return w.reshape(self.out_channels, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Convolution through one array read of all unfolded patches."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"DeviceConv2d input must be a torch.Tensor, got {type(x).__name__}")
        unbatched = x.dim() == 3
        if unbatched:
            x = x.unsqueeze(0)
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"DeviceConv2d input must have shape (batch, {self.in_channels}, H, W) or "
                f"({self.in_channels}, H, W), got {tuple(x.shape)}"
            )
        n, _, h, w = x.shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        dh, dw = self.dilation
        ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
        wo = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
        if ho < 1 or wo < 1:
            raise ValueError(
                f"DeviceConv2d input {h}x{w} is smaller than the kernel {kh}x{kw} "
                f"(padding {self.padding}, dilation {self.dilation})"
            )
        if self.padding_mode != "zeros" and (ph or pw):
            x = F.pad(x, (pw, pw, ph, ph), mode=self.padding_mode)
            ph = pw = 0
        cols = F.unfold(x, (kh, kw), dilation=(dh, dw), padding=(ph, pw), stride=(sh, sw))
        patches = cols.transpose(1, 2).reshape(n * ho * wo, -1)
        y = self._apply_array(patches)  # (n * L, out)
        y = y.reshape(n, ho * wo, self.out_channels).transpose(1, 2)
        y = y.reshape(n, self.out_channels, ho, wo)
        if self.bias is not None:
            y = y + self.bias.to(y.dtype).view(1, -1, 1, 1)
        return y.squeeze(0) if unbatched else y

    def extra_repr(self) -> str:  # noqa: D102
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
            f"padding_mode={self.padding_mode!r}, bias={self.bias is not None}, "
            f"{self._extra_repr_device()}"
        )
