"""`dlref verify` rows for dlref.norm: flax NNX normalization layers with copied parameters.

Each ``flax_*`` wrapper builds a fresh flax module in the input's dtype, copies dlref's
arguments into its variables and calls it, so it takes the same arguments as the dlref side
and is differentiable with respect to all of them. flax's epsilon defaults (1e-6 for
LayerNorm/GroupNorm/InstanceNorm) are overridden with dlref's 1e-5, and ``use_fast_variance``
is off (flax's fast path computes E[x²] − E[x]², which loses digits).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax

from dlref.norm import (
    BatchNormState,
    batch_norm,
    fold_batch_norm,
    group_norm,
    instance_norm,
    layer_norm,
    standardize,
)
from dlref.verify import Case

EPS = 1e-5


def _stats(c: int, dtype=jnp.float64) -> BatchNormState:
    """Fixed running statistics (inputs to the state, not differentiated), in the dtype of the
    other inputs and exact in every float dtype (multiples of 1/8), so that a bfloat16 run and
    its float64 reference see the same values."""
    i = jnp.arange(c, dtype=dtype)
    return BatchNormState(0.125 * i - 0.25, 0.5 + 0.25 * i)


def _copy(module, **values):
    for name, v in values.items():
        getattr(module, name).set_value(v)
    return module


def flax_batch_norm(x, scale, bias, *, train):
    c = x.shape[-1]
    st = _stats(c, x.dtype)
    m = nnx.BatchNorm(
        c,
        use_running_average=not train,
        epsilon=EPS,
        use_fast_variance=False,
        dtype=x.dtype,
        param_dtype=x.dtype,
        rngs=nnx.Rngs(0),
    )
    return _copy(m, scale=scale, bias=bias, mean=st.mean, var=st.var)(x)


def flax_layer_norm(x, scale, bias):
    m = nnx.LayerNorm(
        x.shape[-1], epsilon=EPS, use_fast_variance=False, param_dtype=x.dtype, rngs=nnx.Rngs(0)
    )
    return _copy(m, scale=scale, bias=bias)(x)


def flax_group_norm(x, scale, bias):
    m = nnx.GroupNorm(
        x.shape[-1],
        num_groups=2,
        epsilon=EPS,
        use_fast_variance=False,
        param_dtype=x.dtype,
        rngs=nnx.Rngs(0),
    )
    return _copy(m, scale=scale, bias=bias)(x)


def flax_instance_norm(x, scale, bias):
    m = nnx.InstanceNorm(
        x.shape[-1], epsilon=EPS, use_fast_variance=False, param_dtype=x.dtype, rngs=nnx.Rngs(0)
    )
    return _copy(m, scale=scale, bias=bias)(x)


def _conv(x, w):
    return lax.conv_general_dilated(
        x,
        w,
        (1, 1),
        "SAME",
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        precision=lax.Precision.HIGHEST,
    )


def dlref_folded_conv(x, w, b, scale, bias):
    w2, b2 = fold_batch_norm(w, b, _stats(w.shape[-1], w.dtype), scale, bias, EPS)
    return _conv(x, w2) + b2


def conv_then_bn(x, w, b, scale, bias):
    """The unfolded network: conv, bias, then inference BN written out."""
    st = _stats(w.shape[-1], w.dtype)
    z = _conv(x, w) + b
    return (z - st.mean) / jnp.sqrt(st.var + EPS) * scale + bias


def _affine_args(shape):
    def make(key):
        k1, k2, k3 = jax.random.split(key, 3)
        c = shape[-1]
        x = 1.5 * jax.random.normal(k1, shape, jnp.float64) + 0.3
        scale = jax.random.uniform(k2, (c,), jnp.float64, 0.5, 2.0)
        return x, scale, jax.random.normal(k3, (c,), jnp.float64)

    return make


def _fold_args(key):
    k = jax.random.split(key, 5)
    return (
        jax.random.normal(k[0], (2, 6, 6, 3), jnp.float64),
        jax.random.normal(k[1], (3, 3, 3, 4), jnp.float64),
        jax.random.normal(k[2], (4,), jnp.float64),
        jax.random.uniform(k[3], (4,), jnp.float64, 0.5, 2.0),
        jax.random.normal(k[4], (4,), jnp.float64),
    )


def _bn(train):
    def fn(x, scale, bias):
        return batch_norm(x, scale, bias, _stats(x.shape[-1], x.dtype), train=train, eps=EPS)[0]

    return fn


def _normed(op, *groups):
    """``op(x, *groups, scale=s, bias=b)``: a per-example normalisation on ``(x, s, b)``."""
    return lambda x, s, b: op(x, *groups, scale=s, bias=b, eps=EPS)


# (dlref op, its group count, flax counterpart, its name, the arguments)
_PER_EXAMPLE = [
    (layer_norm, (), flax_layer_norm, "LayerNorm", _affine_args((4, 5, 6))),
    (group_norm, (2,), flax_group_norm, "GroupNorm", _affine_args((3, 4, 4, 6))),
    (instance_norm, (), flax_instance_norm, "InstanceNorm", _affine_args((3, 4, 4, 6))),
]

_AFFINE = (0, 1, 2)  # the rows differentiate x, scale and bias

CASES = [
    *(
        Case(
            f"norm.batch_norm(train={train})",
            f"flax.nnx.BatchNorm ({mode})",
            _bn(train),
            functools.partial(flax_batch_norm, train=train),
            _affine_args((8, 3, 3, 4)),
            _AFFINE,
        )
        for train, mode in ((True, "training"), (False, "use_running_average"))
    ),
    Case(
        "norm.fold_batch_norm",
        "lax.conv_general_dilated + BN",
        dlref_folded_conv,
        conv_then_bn,
        _fold_args,
        argnums=(0, 1, 2, 3, 4),
    ),
    *(
        Case(f"norm.{op.__name__}", f"flax.nnx.{name}", _normed(op, *groups), ref, make, _AFFINE)
        for op, groups, ref, name, make in _PER_EXAMPLE
    ),
    Case(
        "norm.standardize",
        "jax.nn.standardize(epsilon=0)",
        lambda x: standardize(x, 0),
        lambda x: jax.nn.standardize(x, axis=0, epsilon=0.0),
        lambda key: (3.0 + 2.0 * jax.random.normal(key, (16, 5), jnp.float64),),
    ),
]
