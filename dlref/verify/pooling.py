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


def _lax_form(nd, window, stride=None, padding=0, dilation=None, **count):
    """dlref's pooling settings in lax's form: per-dimension tuples and ``(lo, hi)`` pads."""

    def per_dim(v):
        return (v,) * nd if isinstance(v, int) else tuple(v)

    return dict(
        window=per_dim(window),
        stride=per_dim(window if stride is None else stride),
        pads=((padding, padding),) * nd,
        **({} if dilation is None else {"dilation": per_dim(dilation)}),
        **count,
    )


def _lax_pool(op, nd, settings):
    """The lax counterpart of dlref's ``op`` (max_pool or avg_pool) with ``settings``."""
    if op is max_pool:
        return functools.partial(_lax_max, **_lax_form(nd, **settings))
    return functools.partial(_lax_avg, **_lax_form(nd, **{"count_include_pad": True, **settings}))


def _pool_case(op, label, counterpart, shape, argnums=(0,), **settings):
    """``pooling.<op> (label)`` on a ``shape`` input against its lax counterpart."""
    ref = _lax_pool(op, len(shape) - 2, settings)
    name = f"pooling.{op.__name__} ({label})"
    return Case(name, counterpart, functools.partial(op, **settings), ref, _normal(shape), argnums)


# 3×3 windows at stride 2 with padding 1: overlapping windows, some partly in the padding
_OVERLAP = dict(window=3, stride=2, padding=1)
_IMG = (2, 9, 8, 3)


def _backward_case(op, backward, label, counterpart, **settings):
    """``pooling.<backward>`` against ``jax.vjp`` of the lax ``op``, both with ``_OVERLAP``."""
    forward = _lax_pool(op, 2, dict(**_OVERLAP, **settings))

    def ref(x, ct):
        return jax.vjp(forward, x)[1](ct)[0]

    def make(key):
        kx, kc = jax.random.split(key)
        return (
            jax.random.normal(kx, _IMG, "float64"),
            jax.random.normal(kc, (2, 5, 4, 3), "float64"),
        )

    fn = functools.partial(backward, **_OVERLAP, **settings)
    return Case(f"pooling.{backward.__name__} ({label})", counterpart, fn, ref, make, (1,))


CASES = [
    _pool_case(max_pool, "2-D, overlapping, padded", "lax.reduce_window(max)", _IMG, **_OVERLAP),
    _pool_case(
        max_pool,
        "1-D, dilated; value only",
        "lax.reduce_window(max, window_dilation)",
        (2, 11, 3),
        (),
        window=3,
        stride=1,
        dilation=2,
        padding=1,
    ),
    _pool_case(
        avg_pool,
        "2-D, count_include_pad=True",
        "lax.reduce_window(add) / k^2",
        _IMG,
        window=(3, 2),
        stride=(2, 1),
        padding=1,
    ),
    _pool_case(
        avg_pool,
        "2-D, count_include_pad=False",
        "lax.reduce_window(add) / reduce_window(ones)",
        _IMG,
        count_include_pad=False,
        **_OVERLAP,
    ),
    _pool_case(avg_pool, "3-D", "lax.reduce_window(add) / k^3", (2, 4, 6, 4, 2), window=2),
    *(
        Case(
            f"pooling.{op.__name__}",
            f"jnp.{reduce.__name__}(axis=spatial)",
            op,
            functools.partial(reduce, axis=(1, 2)),
            _normal((3, 5, 4, 6)),
        )
        for op, reduce in ((global_max_pool, jnp.max), (global_avg_pool, jnp.mean))
    ),
    _backward_case(
        max_pool, max_pool_backward, "2-D, overlapping, padded", "jax.vjp(lax.reduce_window(max))"
    ),
    _backward_case(
        avg_pool,
        avg_pool_backward,
        "2-D, count_include_pad=False",
        "jax.vjp(lax.reduce_window(add) / reduce_window(ones))",
        count_include_pad=False,
    ),
]
