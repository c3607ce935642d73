"""`dlref verify` rows for dlref.norm: flax NNX normalization layers with copied parameters.

Each ``flax_*`` wrapper builds a fresh flax module in the input's dtype, copies dlref's
arguments into its variables and calls it, so it takes the same arguments as the dlref side
and is differentiable with respect to all of them. flax's epsilon defaults (1e-6 for
LayerNorm/GroupNorm/InstanceNorm) are overridden with dlref's 1e-5, and ``use_fast_variance``
is off (flax's fast path computes E[x²] − E[x]², which loses digits).
"""

from __future__ import annotations

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


CASES = [
    Case(
        "norm.batch_norm(train=True)",
        "flax.nnx.BatchNorm (training)",
        _bn(True),
        lambda x, s, b: flax_batch_norm(x, s, b, train=True),
        _affine_args((8, 3, 3, 4)),
        argnums=(0, 1, 2),
    ),
    Case(
        "norm.batch_norm(train=False)",
        "flax.nnx.BatchNorm (use_running_average)",
        _bn(False),
        lambda x, s, b: flax_batch_norm(x, s, b, train=False),
        _affine_args((8, 3, 3, 4)),
        argnums=(0, 1, 2),
    ),
    Case(
        "norm.fold_batch_norm",
        "lax.conv_general_dilated + BN",
        dlref_folded_conv,
        conv_then_bn,
        _fold_args,
        argnums=(0, 1, 2, 3, 4),
    ),
    Case(
        "norm.layer_norm",
        "flax.nnx.LayerNorm",
        lambda x, s, b: layer_norm(x, scale=s, bias=b, eps=EPS),
        flax_layer_norm,
        _affine_args((4, 5, 6)),
        argnums=(0, 1, 2),
    ),
    Case(
        "norm.group_norm",
        "flax.nnx.GroupNorm",
        lambda x, s, b: group_norm(x, 2, scale=s, bias=b, eps=EPS),
        flax_group_norm,
        _affine_args((3, 4, 4, 6)),
        argnums=(0, 1, 2),
    ),
    Case(
        "norm.instance_norm",
        "flax.nnx.InstanceNorm",
        lambda x, s, b: instance_norm(x, scale=s, bias=b, eps=EPS),
        flax_instance_norm,
        _affine_args((3, 4, 4, 6)),
        argnums=(0, 1, 2),
    ),
    Case(
        "norm.standardize",
        "jax.nn.standardize(epsilon=0)",
        lambda x: standardize(x, 0),
        lambda x: jax.nn.standardize(x, axis=0, epsilon=0.0),
        lambda key: (3.0 + 2.0 * jax.random.normal(key, (16, 5), jnp.float64),),
    ),
]
