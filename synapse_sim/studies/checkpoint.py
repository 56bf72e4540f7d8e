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

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from devices.xp import array_module, asnumpy, to_device

__all__ = [
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
