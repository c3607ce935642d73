"""`dlref verify` rows for dlref.dropout.

Dropout is random, so the only deterministic counterpart is another implementation driven by
the same key: flax's ``nnx.Dropout`` called with ``rngs=key`` draws its mask with
``jax.random.bernoulli(key, 1 - rate, shape)`` exactly as dlref does, so this row checks the
key convention, the mask orientation (True = keep), the 1/(1 - rate) scaling and the gradient
against an independently written module. ``gaussian_dropout`` has no flax or optax
counterpart (Keras' ``GaussianDropout`` is not a dependency); its moments are tested
statistically in tests/test_dropout.py instead, so it has no row here.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from dlref.dropout import dropout
from dlref.verify import Case

_KEY = 1234
RATE = 0.3


def _dlref(x, broadcast_dims=()):
    return dropout(jax.random.key(_KEY), x, RATE, broadcast_dims=broadcast_dims)


def _flax(x, broadcast_dims=()):
    layer = nnx.Dropout(RATE, broadcast_dims=broadcast_dims)
    return layer(x, deterministic=False, rngs=jax.random.key(_KEY))


CASES = [
    Case(
        "dropout.dropout",
        "flax.nnx.Dropout (same key)",
        _dlref,
        _flax,
        lambda key: (jax.random.normal(key, (8, 5, 5, 3), jnp.float64),),
    ),
    Case(
        "dropout.dropout(broadcast_dims)",
        "flax.nnx.Dropout(broadcast_dims) (same key)",
        lambda x: _dlref(x, (1, 2)),
        lambda x: _flax(x, (1, 2)),
        lambda key: (jax.random.normal(key, (8, 5, 5, 3), jnp.float64),),
    ),
]
