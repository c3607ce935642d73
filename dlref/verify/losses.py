"""`dlref verify` rows for dlref.losses: each loss against optax, conventions converted.

optax's losses are unreduced (dlref ``reduction="none"``); the rows below compare per-example
values and their gradients. Left out, for want of an independent counterpart: zero_one_loss
(piecewise constant, no gradient to compare), cross_entropy on probabilities, the
Weston–Watkins multiclass hinge, exponential_loss, l1_loss and smooth_l1_loss (a jnp
transcription of the formula here would only repeat the code under test; tests/ checks them
against NumPy oracles, and smooth_l1 against ``optax.huber_loss / β``, row below).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from dlref import losses as L
from dlref.verify import Case

N, C = 8, 10


def _logits_int(key):
    k1, k2 = jax.random.split(key)
    return 2.0 * jax.random.normal(k1, (N, C), "float64"), jax.random.randint(k2, (N,), 0, C)


def _logits_soft(key):
    k1, k2 = jax.random.split(key)
    z = 2.0 * jax.random.normal(k1, (N, C), "float64")
    return z, jax.nn.softmax(jax.random.normal(k2, (N, C), "float64"))


def _logits_unit(key):
    k1, k2 = jax.random.split(key)
    z = 3.0 * jax.random.normal(k1, (N, C), "float64")
    return z, jax.random.uniform(k2, (N, C), "float64")


def _two_dists(key):
    k1, k2 = jax.random.split(key)
    p = jax.nn.softmax(jax.random.normal(k1, (N, C), "float64"))
    q = jax.nn.softmax(jax.random.normal(k2, (N, C), "float64"))
    return p, q


def _scores_pm1(key):
    k1, k2 = jax.random.split(key)
    s = 2.0 * jax.random.normal(k1, (N, C), "float64")
    y = jnp.where(jax.random.bernoulli(k2, 0.5, (N, C)), 1.0, -1.0)
    return s, y


def _regression(key):
    k1, k2 = jax.random.split(key)
    return 2.0 * jax.random.normal(k1, (N, C), "float64"), jax.random.normal(k2, (N, C), "float64")


CASES: list[Case] = [
    Case(
        "losses.softmax_cross_entropy (int)",
        "optax.softmax_cross_entropy_with_integer_labels",
        lambda z, y: L.softmax_cross_entropy(z, y, reduction="none"),
        optax.softmax_cross_entropy_with_integer_labels,
        _logits_int,
    ),
    Case(
        "losses.softmax_cross_entropy (soft)",
        "optax.softmax_cross_entropy",
        lambda z, y: L.softmax_cross_entropy(z, y, reduction="none"),
        optax.softmax_cross_entropy,
        _logits_soft,
        argnums=(0, 1),
    ),
    Case(
        "losses.sigmoid_binary_cross_entropy",
        "optax.sigmoid_binary_cross_entropy",
        lambda z, t: L.sigmoid_binary_cross_entropy(z, t, reduction="none"),
        optax.sigmoid_binary_cross_entropy,
        _logits_unit,
        argnums=(0, 1),
    ),
    Case(
        "losses.kl_divergence",
        "optax.kl_divergence(log q, p)",
        lambda p, q: L.kl_divergence(p, q, reduction="none"),
        lambda p, q: optax.kl_divergence(jnp.log(q), p),
        _two_dists,
        argnums=(0, 1),
    ),
    Case(
        "losses.hinge_loss",
        "optax.hinge_loss",
        lambda s, y: L.hinge_loss(s, y, reduction="none"),
        optax.hinge_loss,
        _scores_pm1,
    ),
    Case(
        "losses.multiclass_hinge_loss (CS)",
        "optax.losses.multiclass_hinge_loss",
        lambda s, y: L.multiclass_hinge_loss(s, y, reduction="none"),
        optax.losses.multiclass_hinge_loss,
        _logits_int,
    ),
    Case(
        "losses.l2_loss",
        "2 * optax.l2_loss",
        lambda p, t: L.l2_loss(p, t, reduction="none"),
        lambda p, t: 2.0 * optax.l2_loss(p, t),
        _regression,
        argnums=(0, 1),
    ),
    Case(
        "losses.huber_loss",
        "optax.huber_loss",
        lambda p, t: L.huber_loss(p, t, 1.5, reduction="none"),
        lambda p, t: optax.huber_loss(p, t, delta=1.5),
        _regression,
        argnums=(0, 1),
    ),
    Case(
        "losses.smooth_l1_loss",
        "optax.huber_loss(delta=b) / b",
        lambda p, t: L.smooth_l1_loss(p, t, 0.5, reduction="none"),
        lambda p, t: optax.huber_loss(p, t, delta=0.5) / 0.5,
        _regression,
        argnums=(0, 1),
    ),
]
