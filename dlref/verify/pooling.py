"""`dlref verify` rows for dlref.pooling: against lax.reduce_window (+ the divisor) and jnp."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from dlref.pooling import (
    avg_pool,
    avg_pool_backward,
    global_avg_pool,
    global_max_pool,
    max_pool,
    max_pool_backward,
)
from dlref.testing._values import distinct_values
from dlref.verify import Case


def _normal(shape):
    # values distinct in every dtype: `dlref verify --dtype bfloat16` rounds the inputs, and
    # a tie would split jnp.max's gradient where dlref gives it to the first maximum
    return lambda key: (distinct_values(key, shape, "float64"),)


def _lax_max(x, window, stride, pads, dilation=None):
    return lax.reduce_window(
        x,
        -jnp.inf,
        lax.max,
        (1, *window, 1),
        (1, *stride, 1),
        ((0, 0), *pads, (0, 0)),
        window_dilation=None if dilation is None else (1, *dilation, 1),
    )


def _lax_avg(x, window, stride, pads, count_include_pad):
    """Sum over the window / the same sum over ones padded with 1 (counted) or 0 (not)."""
    dims, strides, p = (1, *window, 1), (1, *stride, 1), ((0, 0), *pads, (0, 0))
    total = lax.reduce_window(x, 0.0, lax.add, dims, strides, p)
    fill = 1.0 if count_include_pad else 0.0
    ones = jnp.pad(jnp.ones_like(x), p, constant_values=fill)
    return total / lax.reduce_window(ones, 0.0, lax.add, dims, strides, "VALID")


CASES = [
    Case(
        "pooling.max_pool (2-D, overlapping, padded)",
        "lax.reduce_window(max)",
        functools.partial(max_pool, window=3, stride=2, padding=1),
        functools.partial(_lax_max, window=(3, 3), stride=(2, 2), pads=((1, 1), (1, 1))),
        _normal((2, 9, 8, 3)),
    ),
    Case(
        "pooling.max_pool (1-D, dilated; value only)",
        "lax.reduce_window(max, window_dilation)",
        functools.partial(max_pool, window=3, stride=1, dilation=2, padding=1),
        functools.partial(_lax_max, window=(3,), stride=(1,), pads=((1, 1),), dilation=(2,)),
        _normal((2, 11, 3)),
        argnums=(),
    ),
    Case(
        "pooling.avg_pool (2-D, count_include_pad=True)",
        "lax.reduce_window(add) / k^2",
        functools.partial(avg_pool, window=(3, 2), stride=(2, 1), padding=1),
        functools.partial(
            _lax_avg, window=(3, 2), stride=(2, 1), pads=((1, 1), (1, 1)), count_include_pad=True
        ),
        _normal((2, 9, 8, 3)),
    ),
    Case(
        "pooling.avg_pool (2-D, count_include_pad=False)",
        "lax.reduce_window(add) / reduce_window(ones)",
        functools.partial(avg_pool, window=3, stride=2, padding=1, count_include_pad=False),
        functools.partial(
            _lax_avg, window=(3, 3), stride=(2, 2), pads=((1, 1), (1, 1)), count_include_pad=False
        ),
        _normal((2, 9, 8, 3)),
    ),
    Case(
        "pooling.avg_pool (3-D)",
        "lax.reduce_window(add) / k^3",
        functools.partial(avg_pool, window=2),
        functools.partial(
            _lax_avg, window=(2, 2, 2), stride=(2, 2, 2), pads=((0, 0),) * 3, count_include_pad=True
        ),
        _normal((2, 4, 6, 4, 2)),
    ),
    Case(
        "pooling.global_max_pool",
        "jnp.max(axis=spatial)",
        global_max_pool,
        lambda x: jnp.max(x, axis=(1, 2)),
        _normal((3, 5, 4, 6)),
    ),
    Case(
        "pooling.global_avg_pool",
        "jnp.mean(axis=spatial)",
        global_avg_pool,
        lambda x: jnp.mean(x, axis=(1, 2)),
        _normal((3, 5, 4, 6)),
    ),
]


def _lax_max_vjp(x, ct):
    """``jax.vjp`` of ``lax.reduce_window(max)`` (3×3/2, padding 1), applied to ``ct``."""
    f = functools.partial(_lax_max, window=(3, 3), stride=(2, 2), pads=((1, 1), (1, 1)))
    return jax.vjp(f, x)[1](ct)[0]


def _lax_avg_vjp(x, ct):
    """``jax.vjp`` of the lax average (3×3/2, padding 1, padding not counted) on ``ct``."""
    f = functools.partial(
        _lax_avg, window=(3, 3), stride=(2, 2), pads=((1, 1), (1, 1)), count_include_pad=False
    )
    return jax.vjp(f, x)[1](ct)[0]


def _x_and_ct(x_shape, ct_shape):
    def make(key):
        kx, kc = jax.random.split(key)
        return (
            jax.random.normal(kx, x_shape, "float64"),
            jax.random.normal(kc, ct_shape, "float64"),
        )

    return make


CASES += [
    Case(
        "pooling.max_pool_backward (2-D, overlapping, padded)",
        "jax.vjp(lax.reduce_window(max))",
        functools.partial(max_pool_backward, window=3, stride=2, padding=1),
        _lax_max_vjp,
        _x_and_ct((2, 9, 8, 3), (2, 5, 4, 3)),
        argnums=(1,),
    ),
    Case(
        "pooling.avg_pool_backward (2-D, count_include_pad=False)",
        "jax.vjp(lax.reduce_window(add) / reduce_window(ones))",
        functools.partial(
            avg_pool_backward, window=3, stride=2, padding=1, count_include_pad=False
        ),
        _lax_avg_vjp,
        _x_and_ct((2, 9, 8, 3), (2, 5, 4, 3)),
        argnums=(1,),
    ),
]
