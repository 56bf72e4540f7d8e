"""The network that :mod:`synapse_sim.studies.infer` programs onto devices.

:class:`Network` is a chain of weight matrices with digital biases and an activation after
each hidden layer, evaluated in numpy (float64). It comes from

* a ``train`` results file with saved weights (``--save-weights``; no biases, the file's
  activation) or a ``compare`` results file with saved weights (``--model mlp``: weights
  ``layer<i>`` and biases ``bias<i>``, ReLU), :meth:`Network.from_results`;
* a torch model, :meth:`Network.from_torch`: an ``nn.Sequential`` MLP of ``nn.Linear`` layers,
  or the same model converted with :func:`synapse_sim.nn.convert`, whose
  :class:`~synapse_sim.nn.DeviceLinear` layers give the weights read from their devices
  (noise-free) and their digital biases.

Anything else (convolutions, pooling, normalization, other activations, containers whose
``forward`` is not a plain chain) is refused with a ``TypeError`` naming the layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from devices.validation import check_choice, did_you_mean

__all__ = ["Network", "ACTIVATIONS"]

#: Activations of the hidden layers.
ACTIVATIONS = ("sigmoid", "relu", "tanh", "identity")
#: Output activations that keep the argmax (strictly monotone, or softmax), dropped.
_OUTPUT_OK = ("Sigmoid", "Tanh", "Softmax", "LogSoftmax")
_SUPPORTED = (
    "Network.from_torch takes MLPs: nn.Linear or DeviceLinear layers (synapse_sim.nn.convert) "
    "in nn.Sequential, with ReLU, Sigmoid or Tanh between them (Flatten, Dropout and Identity "
    "are skipped; Sigmoid, Tanh, Softmax or LogSoftmax may follow the last layer)"
)


def _act(name: str, z: np.ndarray) -> np.ndarray:
    if name == "sigmoid":
        return 0.5 * (1.0 + np.tanh(0.5 * z))
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "tanh":
        return np.tanh(z)
    return z


def _torch_chain(model, name: str = "") -> list:
    """``(name, module)`` of the leaves of ``model`` in call order; only ``nn.Sequential``
    containers are opened (their forward is the chain of their children)."""
    from torch import nn

    children = list(model.named_children())
    if not children:
        return [(name, model)]
    if not isinstance(model, nn.Sequential):
        label = repr(name) if name else "the model itself"
        raise TypeError(
            f"module {label} is a {type(model).__name__} with sub-modules, whose forward may "
            f"not be a plain chain; {_SUPPORTED}. Put the layers in an nn.Sequential"
        )
    out = []
    for child_name, child in children:
        out += _torch_chain(child, f"{name}.{child_name}" if name else child_name)
    return out


def _refuse(name: str, module, why: str = "") -> TypeError:
    kind = type(module).__name__
    if "Conv" in kind or "Pool" in kind:
        why = why or "convolution and pooling layers are not supported (inference programs MLPs)"
    return TypeError(f"layer {name!r} is a {kind}: {why + '; ' if why else ''}{_SUPPORTED}")


@dataclass(frozen=True)
class Network:
    """A feed-forward network of weight matrices, evaluated in numpy.

    Parameters
    ----------
    weights : tuple of numpy.ndarray
        ``(out, in)`` matrices, input layer first (shapes chain).
    biases : tuple of numpy.ndarray or None
        One vector per layer (digital, not on devices), or None.
    activations : tuple of str
        Activation after each hidden layer (``sigmoid``, ``relu``, ``tanh``, ``identity``);
        the output layer's activation is monotone and left out (the prediction is the argmax).
    """

    weights: tuple
    biases: tuple | None = None
    activations: tuple = ()

    def __post_init__(self):
        Ws = tuple(np.asarray(W, dtype=np.float64) for W in self.weights)
        if not Ws:
            raise ValueError("weights must hold at least one matrix")
        for i, W in enumerate(Ws):
            if W.ndim != 2:
                raise ValueError(f"weights[{i}] must be a 2-D (out, in) matrix, got {W.shape}")
            if not np.all(np.isfinite(W)):
                raise ValueError(f"weights[{i}] contains NaN or infinite values")
            if i and W.shape[1] != Ws[i - 1].shape[0]:
                raise ValueError(
                    f"weights[{i}] has {W.shape[1]} inputs but weights[{i - 1}] has "
                    f"{Ws[i - 1].shape[0]} outputs"
                )
        object.__setattr__(self, "weights", Ws)
        if self.biases is not None:
            bs = tuple(np.asarray(b, dtype=np.float64).reshape(-1) for b in self.biases)
            if len(bs) != len(Ws) or any(b.size != W.shape[0] for b, W in zip(bs, Ws, strict=True)):
                raise ValueError("biases must hold one vector of length out per layer")
            if not all(np.all(np.isfinite(b)) for b in bs):
                raise ValueError("biases contain NaN or infinite values")
            object.__setattr__(self, "biases", bs)
        acts = self.activations
        if isinstance(acts, str):
            acts = (acts,) * (len(Ws) - 1)
        acts = tuple(acts)
        if len(acts) != len(Ws) - 1:
            raise ValueError(
                f"activations must name one activation per hidden layer ({len(Ws) - 1}), "
                f"got {acts!r}"
            )
        for a in acts:
            check_choice("activation", a, ACTIVATIONS)
        object.__setattr__(self, "activations", acts)

    def logits(self, x, weights=None, scales=None, products=None) -> np.ndarray:
        """Output pre-activations of ``x`` with ``weights`` (default: the network's own), each
        layer's product multiplied by ``scales[i]`` (default 1) before its bias.
        ``products[i]``, when given, computes layer ``i``'s product of its input instead
        (an array read through converters, :meth:`devices.inference.ProgrammedArray.product`).
        """
        Ws = self.weights if weights is None else weights
        a = np.asarray(x, dtype=np.float64)
        n = len(Ws)
        for i, W in enumerate(Ws):
            z = a @ W.T if products is None else products[i](a)
            if scales is not None:
                z = z * scales[i]
            if self.biases is not None:
                z = z + self.biases[i]
            a = _act(self.activations[i], z) if i < n - 1 else z
        return a

    def accuracy(self, x, y, weights=None, scales=None, products=None) -> float:
        """Fraction of ``x`` classified as ``y`` (arguments as :meth:`logits`)."""
        z = self.logits(x, weights, scales, products)
        return float(np.mean(z.argmax(axis=1) == np.asarray(y)))

    @classmethod
    def from_torch(cls, model) -> Network:
        """The network of a torch MLP: ``nn.Linear`` layers, or the
        :class:`~synapse_sim.nn.DeviceLinear` layers of a model converted with
        :func:`synapse_sim.nn.convert` (weights read from the devices without read noise, the
        digital biases), in ``nn.Sequential`` with ``nn.ReLU`` / ``nn.Sigmoid`` / ``nn.Tanh``
        between them. ``nn.Flatten``, ``nn.Dropout`` and ``nn.Identity`` are skipped; a
        Sigmoid, Tanh, Softmax or LogSoftmax after the last layer is dropped (it keeps the
        argmax). A converted layer's DAC/ADC and read noise are not taken over: inference
        reads with the devices and converters of
        :class:`~synapse_sim.studies.infer.InferConfig`.

        Raises
        ------
        TypeError
            For any other layer (convolutions, pooling, normalization, other activations,
            two activations in a row, a ReLU after the last layer, a non-``Sequential``
            container), naming the layer.
        """
        from torch import nn

        from ..nn.layers import DeviceLinear

        acts_of = {nn.ReLU: "relu", nn.Sigmoid: "sigmoid", nn.Tanh: "tanh"}
        Ws, bs, acts, pending, last = [], [], [], None, None
        for name, m in _torch_chain(model):
            if isinstance(m, (nn.Linear, DeviceLinear)):
                if pending is not None and type(pending[1]) not in acts_of:
                    raise _refuse(pending[0], pending[1], "a softmax between linear layers is "
                                  "not supported")  # fmt: skip
                if Ws:
                    acts.append("identity" if pending is None else acts_of[type(pending[1])])
                pending, last = None, name
                w = m.weight.detach().cpu().double()
                Ws.append(w.numpy().reshape(w.shape[0], -1))
                b = m.bias
                bs.append(np.zeros(w.shape[0]) if b is None else b.detach().cpu().double().numpy())
            elif type(m) in acts_of or isinstance(m, (nn.Softmax, nn.LogSoftmax)):
                if not Ws:
                    raise _refuse(name, m, "an activation before the first linear layer is not "
                                  "supported")  # fmt: skip
                if pending is not None:
                    raise _refuse(name, m, f"two activations in a row ({pending[0]!r} is a "
                                  f"{type(pending[1]).__name__}) are not supported")  # fmt: skip
                pending = (name, m)
            elif isinstance(m, (nn.Flatten, nn.Dropout, nn.Identity)):
                continue
            else:
                raise _refuse(name, m)
        if not Ws:
            raise ValueError(f"the model has no nn.Linear or DeviceLinear layer; {_SUPPORTED}")
        if pending is not None and type(pending[1]).__name__ not in _OUTPUT_OK:
            raise _refuse(pending[0], pending[1], f"after the last linear layer ({last!r}) it "
                          "changes the predicted class when all outputs are negative (only "
                          f"{', '.join(_OUTPUT_OK)} may follow it)")  # fmt: skip
        return cls(tuple(Ws), tuple(bs), tuple(acts))

    @classmethod
    def from_results(cls, path, run: str | None = None) -> tuple[Network, dict]:
        """The network of run ``run`` of a results file with saved weights
        (``--save-weights``): a ``train`` file (no biases, its activation) or a ``compare``
        file of the ``mlp`` model (weights ``layer<i>``, biases ``bias<i>``, ReLU). Returns it
        with ``{"train": the file's training config, "run": the run label, "kind": ...}``.

        Default run: ``software`` when it has weights, else the first run that has.
        """
        from ..results.store import read_results

        res = read_results(path)
        kind = res["kind"]
        if kind not in ("train", "compare"):
            raise ValueError(
                f"source {str(path)!r} is a {kind!r} results file; infer reads 'train' and "
                "'compare' files with saved weights"
            )
        runs = res["runs"]
        with_w = [lab for lab, r in runs.items() if r["weights"]]
        if not with_w:
            raise ValueError(
                f"no run of {str(path)!r} stores weights; run {kind} with --save-weights "
                "(save_weights=True)"
            )
        if run is None:
            run = "software" if "software" in with_w else with_w[0]
        if run not in with_w:
            raise ValueError(
                f"run must be one of {', '.join(map(repr, with_w))} (runs with weights), "
                f"got {run!r}{did_you_mean(run, with_w)}"
            )
        w = runs[run]["weights"]
        n = len([k for k in w if k.startswith("layer")])
        Ws = tuple(w[f"layer{i}"] for i in range(n))
        cfg = dict(res["config"].get("train", {}))
        info = {"train": cfg, "run": run, "kind": kind}
        if kind == "train":
            act = cfg.get("activation", "sigmoid")
            return cls(Ws, None, (act,) * (len(Ws) - 1)), info
        from .compare import MODEL_ACTIVATIONS

        model = cfg.get("model")
        layers = [str(s) for s in res["config"].get("sizes", [])]
        convs = [s for s in layers if not s.startswith("linear")]
        if convs or model not in MODEL_ACTIVATIONS:
            raise ValueError(
                f"source {str(path)!r} holds a compare {model!r} model with layers "
                f"{', '.join(convs) or '?'}: infer programs MLPs of linear layers only "
                "(compare --model mlp)"
            )
        if any(f"bias{i}" not in w for i in range(n)):
            raise ValueError(
                f"run {run!r} of {str(path)!r} stores weights but no biases (written before "
                "compare saved them); run compare again with --save-weights"
            )
        bs = tuple(w[f"bias{i}"] for i in range(n))
        act = MODEL_ACTIVATIONS[model]
        return cls(Ws, bs, (act,) * (len(Ws) - 1)), info
