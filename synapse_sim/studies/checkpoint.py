"""Per-epoch checkpoints of a training run, for ``--resume``.

A checkpoint is a nested dict of numpy arrays and plain numbers (no pickled objects) that the
results file stores beside the run's metrics (:meth:`ResultsWriter.set_checkpoint`, written in
the same atomic snapshot as the epoch): the epoch index, the update counter, the state of every
weight array (a device array's :meth:`~devices.DeviceArray.state_dict`: conductances, sampled
device parameters, counters, its counter-based random key and generator; float weights: the
matrix) and the states of the run's random generators. Loading it into freshly built layers and
generators continues the run bit for bit.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from devices.xp import array_module, asnumpy, to_device

__all__ = [
    "write_epoch",
    "resume_point",
    "torch_checkpoint",
    "restore_torch_checkpoint",
    "rng_state",
    "set_rng_state",
    "layers_state",
    "load_layers_state",
    "run_checkpoint",
    "restore_checkpoint",
]


def rng_state(rng: np.random.Generator) -> np.ndarray:
    """The state of ``rng`` as a uint8 array (its bit generator's state as JSON bytes)."""
    return np.frombuffer(json.dumps(rng.bit_generator.state).encode(), dtype=np.uint8).copy()


def set_rng_state(rng: np.random.Generator, state) -> None:
    """Restore a state from :func:`rng_state` into ``rng`` (same bit generator type)."""
    st = json.loads(bytes(np.asarray(state, dtype=np.uint8)).decode())
    kind = type(rng.bit_generator).__name__
    if st.get("bit_generator") != kind:
        raise ValueError(
            f"checkpoint random state is for {st.get('bit_generator')!r}, this generator is "
            f"{kind!r}"
        )
    rng.bit_generator.state = st


def layers_state(layers: Sequence) -> dict[str, dict[str, Any]]:
    """``layer<i>`` -> the state of each weight array (``state_dict()`` of a device array,
    ``{"W": matrix}`` of float weights), as numpy arrays."""
    out = {}
    for i, layer in enumerate(layers):
        if hasattr(layer, "state_dict"):
            out[f"layer{i}"] = layer.state_dict()
        else:
            out[f"layer{i}"] = {"W": np.array(asnumpy(layer.W))}
    return out


def load_layers_state(layers: Sequence, state: Mapping[str, Any]) -> None:
    """Load :func:`layers_state` output into ``layers`` (built with the same arguments)."""
    if len(state) != len(layers):
        raise ValueError(f"checkpoint holds {len(state)} layers, the network has {len(layers)}")
    for i, layer in enumerate(layers):
        st = state[f"layer{i}"]
        if hasattr(layer, "load_state_dict"):
            layer.load_state_dict(st)
        else:
            W = np.asarray(st["W"], dtype=np.float64)
            if W.shape != tuple(layer.shape):
                raise ValueError(
                    f"checkpoint layer{i} has shape {W.shape}, the network's is {layer.shape}"
                )
            layer.W = to_device(W.copy(), array_module(layer.W))


def run_checkpoint(epoch: int, step: int, layers: Sequence, rngs: Mapping[str, Any]) -> dict:
    """The checkpoint of a run after ``epoch`` finished epochs and ``step`` updates.

    Parameters
    ----------
    epoch, step : int
    layers : sequence of weight arrays
    rngs : mapping
        Name -> :class:`numpy.random.Generator` of the run (data order, rounding, ...).
    """
    return {
        "epoch": np.int64(epoch),
        "step": np.int64(step),
        "layers": layers_state(layers),
        "rngs": {name: rng_state(rng) for name, rng in rngs.items()},
    }


def restore_checkpoint(state: Mapping[str, Any], layers: Sequence, rngs: Mapping[str, Any]):
    """Load a :func:`run_checkpoint` into ``layers`` and ``rngs``; return ``(epoch, step)``."""
    load_layers_state(layers, state["layers"])
    missing = set(rngs) - set(state["rngs"])
    if missing:
        raise ValueError(f"checkpoint has no state for the random generators {sorted(missing)}")
    for name, rng in rngs.items():
        set_rng_state(rng, state["rngs"][name])
    return int(state["epoch"]), int(state["step"])


def write_epoch(writer, label: str, metrics: Mapping, checkpoint: Callable | None = None) -> None:
    """Append one epoch of ``metrics`` to run ``label`` and, when ``checkpoint`` is given,
    store ``checkpoint()`` as its checkpoint, both in one atomic snapshot."""
    with writer.transaction():
        writer.append_epoch(label, **metrics)
        if checkpoint is not None:
            writer.set_checkpoint(label, checkpoint())


def resume_point(writer, label: str, resumed, hist: Mapping, restore: Callable) -> tuple[int, int]:
    """Where run ``label`` continues in a resumed results file.

    Parameters
    ----------
    writer : ResultsWriter or None
    label : str
    resumed : set of str
        Labels found in the file when it was opened.
    hist : dict
        ``metric -> list``, extended with the epochs already in the file.
    restore : callable
        ``restore(checkpoint) -> (epoch, step)`` loads a checkpoint into the run's objects.

    Returns
    -------
    (int, int)
        The first epoch still to run and the update counter (``(0, 0)`` for a new run).
    """
    ckpt = writer.checkpoint(label) if writer is not None and label in resumed else None
    if ckpt is None:
        return 0, 0
    first, step = restore(ckpt)
    if writer.epochs_done(label) != first:
        raise ValueError(
            f"cannot resume run {label!r}: the file holds {writer.epochs_done(label)} "
            f"epochs but its checkpoint is after epoch {first} (damaged file)"
        )
    done = writer.metrics(label)
    for k in hist:
        hist[k].extend(done.get(k, [])[:first])
    return first, step


def torch_checkpoint(
    epoch: int,
    model,
    optimizer,
    rngs: Mapping[str, Any],
    *,
    step: int = 0,
    extra: Mapping[str, Any] | None = None,
) -> dict:
    """The checkpoint of a torch run: the model's and the optimizer's ``state_dict`` (device
    layers' state included) as the bytes of :func:`torch.save` (read back with
    ``torch.load(weights_only=True)``: tensors and plain containers only), and the states of
    ``rngs``.

    ``step`` (the update counter) and ``extra`` (a study's own state: numbers, numeric arrays
    and nested dicts of those, stored under ``"extra"``) are optional."""
    import torch

    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, buf)
    out = {
        "epoch": np.int64(epoch),
        "step": np.int64(step),
        "torch": np.frombuffer(buf.getvalue(), dtype=np.uint8).copy(),
        "rngs": {name: rng_state(rng) for name, rng in rngs.items()},
    }
    if extra is not None:
        out["extra"] = dict(extra)
    return out


def restore_torch_checkpoint(state: Mapping[str, Any], model, optimizer, rngs: Mapping[str, Any]):
    """Load a :func:`torch_checkpoint` into ``model``, ``optimizer`` and ``rngs``; return
    ``(epoch, step)``."""
    import torch

    raw = io.BytesIO(np.asarray(state["torch"], dtype=np.uint8).tobytes())
    st = torch.load(raw, weights_only=True, map_location="cpu")
    model.load_state_dict(st["model"])
    optimizer.load_state_dict(st["optimizer"])
    for name, rng in rngs.items():
        set_rng_state(rng, state["rngs"][name])
    return int(state["epoch"]), int(state["step"])
