"""`dlref verify` rows for dlref.regularize: optax's tree norms and gradient transformations, and
flax's dropout.

Dropout is random, so the only deterministic counterpart is another implementation driven by
the same key: flax's ``nnx.Dropout`` called with ``rngs=key`` draws its mask with
``jax.random.bernoulli(key, 1 - rate, shape)`` exactly as dlref does, so this row checks the
key convention, the mask orientation (True = keep), the 1/(1 - rate) scaling and the gradient
against an independently written module. ``gaussian_dropout`` has no flax or optax
counterpart (Keras' ``GaussianDropout`` is not a dependency); its moments are tested
statistically in tests/test_regularize.py instead, so it has no row here.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from dlref.regularize import clip_by_global_norm, clip_by_value, dropout, l1_penalty, l2_penalty
from dlref.verify import Case


def _tree(key, scale=1.0):
    k1, k2, k3 = jax.random.split(key, 3)
    return (
        {
            "w": scale * jax.random.normal(k1, (4, 3), jnp.float64),
            "b": scale * jax.random.normal(k2, (3,), jnp.float64),
            "conv": [scale * jax.random.normal(k3, (3, 3, 2, 2), jnp.float64)],
        },
    )


def _optax_global_clip(tree, max_norm=1.0):
    tx = optax.clip_by_global_norm(max_norm)
    clipped, _ = tx.update(tree, tx.init(tree))
    return clipped, optax.tree.norm(tree)


def _optax_clip(tree, hi=1.0):
    tx = optax.clip(hi)
    return tx.update(tree, tx.init(tree))[0]


CASES = [
    Case(
        "regularize.l1_penalty",
        "optax.tree.norm(ord=1)",
        l1_penalty,
        lambda t: optax.tree.norm(t, ord=1),
        _tree,
    ),
    Case(
        "regularize.l2_penalty",
        "0.5 * optax.tree.norm(squared=True)",
        l2_penalty,
        lambda t: 0.5 * optax.tree.norm(t, squared=True),
        _tree,
    ),
    Case(
        "regularize.clip_by_value",
        "optax.clip",
        lambda t: clip_by_value(t, -1.0, 1.0),
        _optax_clip,
        lambda key: _tree(key, 2.0),
    ),
    Case(
        "regularize.clip_by_global_norm",
        "optax.clip_by_global_norm",
        lambda t: clip_by_global_norm(t, 1.0),
        _optax_global_clip,
        _tree,
    ),
]

_KEY = 1234
RATE = 0.3


def _dlref(x, broadcast_dims=()):
    return dropout(jax.random.key(_KEY), x, RATE, broadcast_dims=broadcast_dims)


def _flax(x, broadcast_dims=()):
    layer = nnx.Dropout(RATE, broadcast_dims=broadcast_dims)
    return layer(x, deterministic=False, rngs=jax.random.key(_KEY))


CASES += [
    Case(
        "regularize.dropout",
        "flax.nnx.Dropout (same key)",
        _dlref,
        _flax,
        lambda key: (jax.random.normal(key, (8, 5, 5, 3), jnp.float64),),
    ),
    Case(
        "regularize.dropout(broadcast_dims)",
        "flax.nnx.Dropout(broadcast_dims) (same key)",
        lambda x: _dlref(x, (1, 2)),
        lambda x: _flax(x, (1, 2)),
        lambda key: (jax.random.normal(key, (8, 5, 5, 3), jnp.float64),),
    ),
]
