"""`dlref verify` rows for dlref.activations: each function against its jax.nn namesake."""

from __future__ import annotations

import jax

from dlref import activations as A
from dlref.verify import Case


def _x(key):
    return (3.0 * jax.random.normal(key, (8, 16), "float64"),)


CASES: list[Case] = [
    Case("activations.sigmoid", "jax.nn.sigmoid", A.sigmoid, jax.nn.sigmoid, _x),
    Case("activations.tanh", "jax.nn.tanh", A.tanh, jax.nn.tanh, _x),
    Case("activations.relu", "jax.nn.relu", A.relu, jax.nn.relu, _x),
    Case(
        "activations.leaky_relu",
        "jax.nn.leaky_relu",
        lambda x: A.leaky_relu(x, 0.1),
        lambda x: jax.nn.leaky_relu(x, 0.1),
        _x,
    ),
    Case("activations.softplus", "jax.nn.softplus", A.softplus, jax.nn.softplus, _x),
    Case("activations.softmax", "jax.nn.softmax", A.softmax, jax.nn.softmax, _x),
    Case("activations.log_softmax", "jax.nn.log_softmax", A.log_softmax, jax.nn.log_softmax, _x),
]
