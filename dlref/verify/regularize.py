"""`dlref verify` rows for dlref.regularize: optax's tree norms and gradient transformations."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from dlref.regularize import clip_by_global_norm, clip_by_value, l1_penalty, l2_penalty
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
