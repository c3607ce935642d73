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


def _unreduced(loss, *settings):
    """``loss(a, b, *settings, reduction="none")``: per-example values, as optax returns."""
    return lambda a, b: loss(a, b, *settings, reduction="none")


# (op, its settings, the row's tag, counterpart, its label, inputs, arguments differentiated)
_ROWS = [
    (
        L.softmax_cross_entropy,
        (),
        " (int)",
        optax.softmax_cross_entropy_with_integer_labels,
        "optax.softmax_cross_entropy_with_integer_labels",
        _logits_int,
        (0,),
    ),
    (
        L.softmax_cross_entropy,
        (),
        " (soft)",
        optax.softmax_cross_entropy,
        "optax.softmax_cross_entropy",
        _logits_soft,
        (0, 1),
    ),
    (
        L.sigmoid_binary_cross_entropy,
        (),
        "",
        optax.sigmoid_binary_cross_entropy,
        "optax.sigmoid_binary_cross_entropy",
        _logits_unit,
        (0, 1),
    ),
    (
        L.kl_divergence,
        (),
        "",
        lambda p, q: optax.kl_divergence(jnp.log(q), p),
        "optax.kl_divergence(log q, p)",
        _two_dists,
        (0, 1),
    ),
    (L.hinge_loss, (), "", optax.hinge_loss, "optax.hinge_loss", _scores_pm1, (0,)),
    (
        L.multiclass_hinge_loss,
        (),
        " (CS)",
        optax.losses.multiclass_hinge_loss,
        "optax.losses.multiclass_hinge_loss",
        _logits_int,
        (0,),
    ),
    (
        L.l2_loss,
        (),
        "",
        lambda p, t: 2.0 * optax.l2_loss(p, t),
        "2 * optax.l2_loss",
        _regression,
        (0, 1),
    ),
    (
        L.huber_loss,
        (1.5,),
        "",
        lambda p, t: optax.huber_loss(p, t, delta=1.5),
        "optax.huber_loss",
        _regression,
        (0, 1),
    ),
    (
        L.smooth_l1_loss,
        (0.5,),
        "",
        lambda p, t: optax.huber_loss(p, t, delta=0.5) / 0.5,
        "optax.huber_loss(delta=b) / b",
        _regression,
        (0, 1),
    ),
]

CASES: list[Case] = [
    Case(f"losses.{op.__name__}{tag}", label, _unreduced(op, *settings), ref, make, argnums)
    for op, settings, tag, ref, label, make, argnums in _ROWS
]
