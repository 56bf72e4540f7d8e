"""The one numpy multilayer perceptron over weight arrays (train, continual; sweeps through train).

Its layers are :class:`learning_rules.WeightArray` s: float weights (the software twin) or
device arrays; the array code follows the inputs' array module (numpy or cupy).
"""

from .mlp import ACTIVATIONS, INITS, LOSSES, MLP, initial_weights

__all__ = ["ACTIVATIONS", "INITS", "LOSSES", "MLP", "initial_weights"]
