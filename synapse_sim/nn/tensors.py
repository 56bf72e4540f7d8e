"""Tensors <-> device arrays for the torch bridge, and the thread discipline of its array work.

Used by :mod:`synapse_sim.nn.layers`: CPU tensors cross to numpy (views where the dtype is
already float64), CUDA tensors to cupy through DLPack (:func:`tensor_to_array`,
:func:`array_to_tensor`); :func:`layer_input` / :func:`layer_output` pick the way from a layer's
backend; :data:`run_array_work` runs array reads and updates with BLAS at one thread
(:class:`ArrayThreads`); :func:`resolve_device` turns a preset name into a device model with
clear errors for torch device names; :class:`ArrayMatmul` is the autograd function of a
layer's read.
"""

from __future__ import annotations

import inspect
import time

import numpy as np
import torch

import devices
from devices.threads import start_numba_threads
from devices.xp import GPU_BACKENDS

__all__ = [
    "ArrayMatmul",
    "array_matmul",
    "ArrayThreads",
    "FUNC_MESSAGE",
    "GPU_TENSOR_DEVICE",
    "TORCH_DEVICE_NAMES",
    "array_to_tensor",
    "gpu_message",
    "layer_input",
    "layer_output",
    "numpy_to_tensor",
    "on_gpu",
    "resolve_device",
    "run_array_work",
    "tensor_to_array",
    "tensor_to_numpy",
    "tensor_to_numpy_like",
]

#: Names of torch device types (a ``device=`` argument naming one of them is a mistake).
TORCH_DEVICE_NAMES = ("cpu", "cuda", "mps", "meta", "xpu")


def gpu_message(where: str, what) -> str:
    """The error text for ``what`` (a CUDA tensor...) given to a layer whose array is on the CPU."""
    return (
        f"{where} got {what}; this layer's array runs on the CPU (numpy/numba kernels): move "
        "the inputs to the CPU (.cpu()), or build the layer with backend='cupy' to use the GPU "
        "backend (cupy arrays, CUDA tensors through DLPack; docs/GPU.md)"
    )


def tensor_to_array(t: torch.Tensor, xp):
    """A float64, C-contiguous ``xp`` array sharing memory with ``t`` through DLPack.

    No copy when ``t`` is already float64 and contiguous (otherwise one cast/copy on ``t``'s
    own device). ``xp`` is numpy for CPU tensors and cupy for CUDA tensors.

    Parameters
    ----------
    t : torch.Tensor
        A floating-point tensor.
    xp : module
        numpy or cupy.
    """
    if not t.is_floating_point():
        raise TypeError(f"tensor_to_array needs a floating-point tensor, got dtype {t.dtype}")
    t = t.detach()
    if t.dtype != torch.float64:
        t = t.to(torch.float64)
    return xp.from_dlpack(t.contiguous())


def array_to_tensor(a, dtype: torch.dtype | None = None) -> torch.Tensor:
    """A torch tensor sharing memory with the array ``a`` (numpy or cupy) through DLPack,
    cast to ``dtype`` when given (a copy only then)."""
    t = torch.from_dlpack(a)
    return t if dtype is None or t.dtype == dtype else t.to(dtype)


#: torch device type of the tensors a GPU-backend layer takes.
GPU_TENSOR_DEVICE = "cuda"


def on_gpu(layer) -> bool:
    """The layer's array runs on the GPU backend."""
    return layer.array.backend in GPU_BACKENDS


def layer_input(t: torch.Tensor, layer, where: str):
    """Input of the layer's array: a numpy array for the CPU backends, a cupy view (DLPack)
    of a CUDA tensor for the GPU backend."""
    if not on_gpu(layer):
        return tensor_to_numpy(t, where)
    if t.device.type != GPU_TENSOR_DEVICE:
        raise TypeError(
            f"{where} got a tensor on device {str(t.device)!r}, but this layer's array is on "
            "the GPU (backend='cupy'): move the inputs to CUDA (.cuda())"
        )
    return tensor_to_array(t, layer.array._xp)


def layer_output(a, layer, dtype: torch.dtype) -> torch.Tensor:
    """Output of the layer's array as a tensor of ``dtype`` (CPU, or CUDA via DLPack)."""
    if not on_gpu(layer):
        np_dtype = _NUMPY_FLOATS.get(dtype)
        if np_dtype is not None:  # numpy's cast: the same values as torch's, 2-3x faster here
            return torch.from_numpy(a.astype(np_dtype, copy=False))
        return torch.from_numpy(a).to(dtype)
    return array_to_tensor(a, dtype)


#: torch dtypes whose numpy twin casts the reads' float64 results (bfloat16 has none)
_NUMPY_FLOATS = {torch.float32: np.float32, torch.float64: np.float64}


def tensor_to_numpy(t: torch.Tensor, where: str) -> np.ndarray:
    """A float64 numpy view (or copy) of a CPU tensor."""
    dt = t.dtype
    usual = t.is_cpu and (dt is torch.float32 or dt is torch.float64)  # the layers' input
    if not usual:
        if t.device.type != "cpu":
            raise TypeError(gpu_message(where, f"a tensor on device {str(t.device)!r}"))
        if not (t.is_floating_point()):
            raise TypeError(f"{where} needs a floating-point tensor, got dtype {t.dtype}")
    t = t.detach()
    if not usual:  # bfloat16 / float16 have no numpy twin
        t = t.to(torch.float64)
    try:
        a = t.numpy()
    except RuntimeError as e:  # a functorch-wrapped tensor has no storage
        raise NotImplementedError(FUNC_MESSAGE.format(where=where)) from e
    return np.ascontiguousarray(a, dtype=np.float64)


#: Error text for torch.func transforms the layers cannot support (``{where}``: the layer).
FUNC_MESSAGE = (
    "{where}: torch.func transforms other than vmap (grad, jacrev, jacfwd, jvp, ...) are "
    "not supported: the layer reads a physical device array outside torch and its weights "
    "are not torch parameters; use loss.backward() or torch.autograd.grad (first derivatives)"
)


def resolve_device(device, overrides: dict, where: str) -> devices.DeviceModel:
    """A preset name (with overrides) or a model, with a clear error for torch devices."""
    if isinstance(device, torch.device) or (
        isinstance(device, str) and device.split(":")[0] in TORCH_DEVICE_NAMES
    ):
        if str(device).startswith("cuda"):
            raise TypeError(
                f"{where} got device={str(device)!r}; device names the synapse device (a preset "
                "such as 'ideal' or 'epiram'), not a torch device: to run on the GPU pass "
                "backend='cupy' (the GPU backend: cupy arrays, CUDA tensors through DLPack; "
                "docs/GPU.md)"
            )
        raise TypeError(
            f"{where}: device names the synapse device (a preset of devices.names() such as "
            f"'ideal' or 'epiram', or a devices model), not a torch device; got {device!r}"
        )
    if isinstance(device, devices.DeviceModel):
        if overrides:
            raise TypeError(
                f"{where}: device overrides ({', '.join(overrides)}) need a preset name; "
                "apply them to a model with dataclasses.replace / with_variability"
            )
        return device
    if not isinstance(device, str):
        raise TypeError(
            f"{where}: device must be a preset name or a devices.DeviceModel, got {device!r}"
        )
    return devices.get(device, **overrides)


def numpy_to_tensor(a: np.ndarray) -> torch.Tensor:
    """A CPU tensor holding a copy of ``a`` (uint64 kept bit for bit as int64)."""
    a = np.array(a, order="C", copy=True)  # (ascontiguousarray would make 0-d arrays 1-d)
    if a.dtype == np.uint64:  # torch stores uint64 poorly: keep the bits as int64
        a = a.view(np.int64)
    return torch.from_numpy(a)


def tensor_to_numpy_like(t, like: np.ndarray) -> np.ndarray:
    """``t`` as a numpy array of ``like``'s dtype (the inverse of :func:`numpy_to_tensor`)."""
    a = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    if a.shape != like.shape:
        return a  # DeviceArray.load_state_dict reports the shape mismatch
    if a.dtype != like.dtype and a.dtype.itemsize == like.dtype.itemsize and a.dtype.kind in "iu":
        return a.view(like.dtype)
    return a.astype(like.dtype, copy=False)


class ArrayThreads:
    """Runs the array work of the bridge (reads and updates) without starting a thread fight.

    A converted model's step interleaves small torch ops with small array reads (numpy
    products, OpenBLAS) and numba kernels (OpenMP). Each of these runtimes keeps its own worker
    threads spinning for a while after a call; with two or three spinning pools on a few cores
    the main thread loses its core, and plain torch ops beside the reads slow down several
    times. The products of one step are small (a batch of rows times one layer), so BLAS gains
    nothing from threads there: the bridge runs them with BLAS at one thread (no OpenBLAS
    spinners; the count is restored after each call). Single-thread products also make a
    seeded run independent of the machine's core count.

    numba's OpenMP threading layer sets the OpenMP thread count of the calling thread when it
    starts its pool, which resets ``torch.set_num_threads`` (numba's calls reach torch's
    ``libgomp``). The pool is started once, on the first use, by
    :func:`devices.threads.start_numba_threads`, which puts torch's count back (as device
    arrays do when they load the numba kernels).

    It also keeps the wall time its calls took (:attr:`seconds`, :attr:`calls`): how much of a
    converted model's step is the simulation of the arrays, and how much torch and the bridge
    around it. ``reset()`` starts the count again. The count is meant for one training thread:
    calls made by several threads at once may lose some of their time from it.
    """

    def __init__(self):
        self._calls: list | None = None
        #: wall seconds spent inside the calls (the array reads and rule updates themselves)
        self.seconds = 0.0
        #: calls made (each read or update of one layer is one call)
        self.calls = 0

    def reset(self) -> None:
        """Set :attr:`seconds` and :attr:`calls` to 0."""
        self.seconds = 0.0
        self.calls = 0

    def _start(self) -> None:
        from threadpoolctl import ThreadpoolController

        blas = [c for c in ThreadpoolController().lib_controllers if c.user_api == "blas"]
        # the array reads are numpy products: numpy's BLAS is the one to hold at one thread
        # (other copies, such as scipy's, stay as they are; all of them if none is numpy's)
        mine = [c for c in blas if "numpy" in str(getattr(c, "filepath", ""))]
        self._calls = [_thread_calls(c) for c in mine or blas]
        start_numba_threads()  # now, not inside a later layer call; keeps torch's count

    def __call__(self, fn, *args):
        if self._calls is None:
            self._start()
        old = [(put, n) for get, put in self._calls if (n := get()) is not None and n != 1]
        for put, _ in old:
            put(1)
        t0 = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.seconds += time.perf_counter() - t0
            self.calls += 1
            for put, n in old:
                put(n)


def _thread_calls(c):
    """``(get, set)`` of a threadpoolctl BLAS controller's thread count: OpenBLAS's own C
    functions, looked up once, where the controller exposes them (threadpoolctl looks the
    symbol up on every call: several us a layer call); else the controller's methods."""
    sym = getattr(c, "_get_symbol", None)
    if getattr(c, "internal_api", None) == "openblas" and callable(sym):
        omp = getattr(c, "threading_layer", None) == "openmp"  # threadpoolctl's choice too
        get = sym("omp_get_max_threads" if omp else "openblas_get_num_threads")
        put = sym("omp_set_num_threads" if omp else "openblas_set_num_threads")
        if get is not None and put is not None:
            return get, put
    return c.get_num_threads, c.set_num_threads


#: ``run_array_work(fn, *args)``: call ``fn(*args)`` (array reads, rule updates) with BLAS at
#: one thread; see :class:`ArrayThreads`.
run_array_work = ArrayThreads()


def _backward(ctx, grad):
    """:class:`ArrayMatmul`'s backward: ``dx = array.rmatmul(grad)``, the rows stashed."""
    layer = ctx.layer
    gn = layer_input(grad, layer, type(layer).__name__)
    gx = gt = None
    if ctx.needs_input_grad[1]:
        layer._pending.append((ctx.xn, gn))
        gt = torch.ones(1, dtype=ctx.token_like[0], device=ctx.token_like[1])
    if ctx.needs_input_grad[0]:
        gx = layer_output(run_array_work(layer.array.rmatmul, gn), layer, ctx.dtype)
    return gx, gt, None


_backward_once = torch.autograd.function.once_differentiable(_backward)


class ArrayMatmul(torch.autograd.Function):
    """``y = array.matmul(x)``; backward: ``dx = array.rmatmul(g)`` and ``(x, g)`` stashed.

    ``token`` is the layer's ``stash_token``: its gradient counts the backward
    passes whose rows were accumulated (see ``DeviceLayer.take_stash``). The function is
    once differentiable (the weight is not a torch parameter, so second derivatives cannot be
    formed) and supports ``torch.func.vmap`` (the mapped rows are one batched read).
    """

    @staticmethod
    def forward(x2d, token, layer):  # noqa: D102
        xn = layer_input(x2d, layer, type(layer).__name__)
        layer.__dict__["_last_read"] = xn  # (nn.Module.__setattr__ is slow)
        return layer_output(run_array_work(layer.array.matmul, xn), layer, x2d.dtype)

    @staticmethod
    def setup_context(ctx, inputs, output):  # noqa: D102
        x2d, token, layer = inputs
        ctx.layer = layer
        ctx.xn = layer.__dict__.pop("_last_read", None)
        ctx.dtype = x2d.dtype
        ctx.token_like = (token.dtype, token.device)

    @staticmethod
    def backward(ctx, grad):  # noqa: D102
        if torch.is_grad_enabled():  # backward(create_graph=True): no second derivatives
            return _backward_once(ctx, grad)
        # a plain backward pass runs without grad mode: once_differentiable's wrapper would
        # only add its no_grad context (several us a layer) and return the same outputs
        return _backward(ctx, grad)

    @staticmethod
    def jvp(ctx, *tangents):  # noqa: D102
        raise NotImplementedError(FUNC_MESSAGE.format(where=type(ctx.layer).__name__))

    @staticmethod
    def vmap(info, in_dims, x2d, token, layer):  # noqa: D102
        x_dim, t_dim, _ = in_dims
        if t_dim is not None:
            raise ValueError(f"{type(layer).__name__}: vmap over the stash token is not supported")
        if x_dim is None:
            return ArrayMatmul.apply(x2d, token, layer), None
        x = x2d.movedim(x_dim, 0)
        b = x.shape[0]
        y = ArrayMatmul.apply(x.reshape(-1, x.shape[-1]), token, layer)
        return y.reshape(b, -1, y.shape[-1]), 0


# torch's Function.apply binds the arguments to ``forward``'s signature on every call (for
# classes with a setup_context); inspect.signature rebuilds it from the code object each time
# (about 40 us, three times a step in a converted MLP) unless the function carries it
ArrayMatmul.forward.__signature__ = inspect.signature(ArrayMatmul.forward)


class _ArrayMatmulPlain(torch.autograd.Function):
    """:class:`ArrayMatmul` in torch's older form (``forward(ctx, ...)``, no ``setup_context``),
    for calls outside ``torch.func`` transforms (:func:`array_matmul`): torch's ``apply`` then
    binds no arguments to a signature (about 20-25 us a call). The same forward, context and
    backward; transforms need :class:`ArrayMatmul`'s ``setup_context`` and ``vmap``."""

    @staticmethod
    def forward(ctx, x2d, token, layer):  # noqa: D102
        y = ArrayMatmul.forward(x2d, token, layer)
        ArrayMatmul.setup_context(ctx, (x2d, token, layer), y)
        return y

    backward = staticmethod(ArrayMatmul.backward)
    jvp = staticmethod(ArrayMatmul.jvp)  # forward-mode AD (dual tensors) is refused the same way


_transforms_active = getattr(torch._C, "_are_functorch_transforms_active", None)


def array_matmul(x2d: torch.Tensor, token: torch.Tensor, layer) -> torch.Tensor:
    """``ArrayMatmul.apply(x2d, token, layer)``: the plain form when no ``torch.func`` transform
    is active (the same result and gradients, less of torch's per-call work)."""
    if _transforms_active is None or _transforms_active():
        return ArrayMatmul.apply(x2d, token, layer)
    return _ArrayMatmulPlain.apply(x2d, token, layer)
