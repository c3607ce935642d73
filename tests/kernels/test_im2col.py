"""dlref.kernels.im2col_conv against lax.conv_general_dilated and jax.grad of it."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _oracle import lax_conv, rel_err, vjp_both
from jax.test_util import check_grads

from dlref.kernels import im2col_conv

# (x shape, w shape, options): every option of conv, 1-3 spatial dims.
CONFIGS = [
    ((2, 9, 3), (3, 3, 4), dict(stride=2, padding=1)),
    ((1, 10, 2), (3, 2, 2), dict(padding="SAME", dilation=3)),
    ((2, 7, 8, 4), (3, 3, 4, 6), dict(stride=(2, 1), padding=((1, 2), (0, 1)))),
    ((1, 8, 7, 4), (3, 2, 2, 6), dict(stride=2, padding="SAME", dilation=(1, 2), groups=2)),
    ((2, 6, 6, 4), (3, 3, 1, 8), dict(padding=1, groups=4)),  # depthwise, multiplier 2
    ((1, 5, 6, 4, 2), (2, 3, 2, 2, 3), dict(stride=(1, 2, 1), padding=(1, 0, 1))),
    ((1, 4, 4, 3), (4, 4, 3, 2), dict(padding="VALID")),  # kernel as large as the input
    ((1, 11, 10, 3), (3, 3, 3, 4), dict(stride=3, padding=2, dilation=2)),  # taps share lattices
]
IDS = ["1d-s2", "1d-same-d3", "2d-pairs", "2d-groups", "2d-depthwise", "3d", "2d-full", "2d-s3-d2"]


def _inputs(key, xs, ws, dtype=jnp.float32):
    kx, kw, kc = jax.random.split(key, 3)
    return (
        jax.random.normal(kx, xs, dtype),
        jax.random.normal(kw, ws, dtype),
        kc,
    )


@pytest.mark.parametrize("xs,ws,opts", CONFIGS, ids=IDS)
def test_values_and_grads_match_lax(key, xs, ws, opts):
    x, w, kc = _inputs(key, xs, ws)

    def f(x, w):
        return im2col_conv(x, w, **opts)

    def ref(x, w):
        return lax_conv(x, w, **opts)

    got, want, g_got, g_want = jax.jit(lambda x, w: vjp_both(f, ref, (x, w), kc))(x, w)
    assert got.shape == want.shape and got.dtype == jnp.float32
    assert rel_err(got, want) < 2e-6
    for a, b in zip(g_got, g_want, strict=True):
        assert a.shape == b.shape
        assert rel_err(a, b) < 2e-6


@pytest.mark.parametrize("dtype,tol", [(jnp.bfloat16, 1e-2), (jnp.float16, 2e-3)])
def test_low_precision_keeps_dtype(key, dtype, tol):
    xs, ws, opts = CONFIGS[3]
    x, w, _ = _inputs(key, xs, ws)
    y = im2col_conv(x.astype(dtype), w.astype(dtype), **opts)
    assert y.dtype == dtype
    # Reference: float32 HIGHEST on the same rounded inputs.
    want = lax_conv(
        x.astype(dtype).astype(jnp.float32), w.astype(dtype).astype(jnp.float32), **opts
    )
    assert rel_err(y, want) < tol


def test_backward_is_the_explicit_col2im(key):
    # The custom_vjp is used: the gradient's jaxpr has no convolution, only pads and dots.
    x, w, _ = _inputs(key, (1, 6, 6, 2), (3, 3, 2, 2))
    jaxpr = str(jax.make_jaxpr(jax.grad(lambda x, w: im2col_conv(x, w, stride=2).sum()))(x, w))
    assert "conv_general_dilated" not in jaxpr
    assert "pad" in jaxpr and "dot_general" in jaxpr


def test_check_grads_float64(key, x64):
    x, w, _ = _inputs(key, (1, 5, 4, 2), (2, 3, 1, 4), jnp.float64)

    def f(x, w):
        return im2col_conv(x, w, stride=(2, 1), padding=1, dilation=(1, 2), groups=2)

    assert f(x, w).dtype == jnp.float64
    # custom_vjp has no forward mode: reverse over reverse, to second order.
    check_grads(f, (x, w), order=2, modes=["rev"])


def test_jit_and_vmap_agree_with_eager(key):
    x, w, _ = _inputs(key, (3, 2, 6, 5, 2), (3, 3, 2, 3))

    def f(x):
        return im2col_conv(x, w, stride=2, padding=1)

    eager = jnp.stack([f(xi) for xi in x])
    np.testing.assert_allclose(jax.vmap(f)(x), eager, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(jax.jit(jax.vmap(f))(x), eager, rtol=1e-6, atol=1e-6)


def test_worked_example():
    # [1, 2, 3, 4] * [1, 1] -> sums of neighbours (docstring example).
    x = jnp.arange(1.0, 5.0).reshape(1, 4, 1)
    np.testing.assert_array_equal(im2col_conv(x, jnp.ones((2, 1, 1)))[0, :, 0], [3.0, 5.0, 7.0])


def test_extreme_inputs_are_finite():
    x = jnp.full((1, 5, 5, 2), 1e4)
    w = jnp.full((3, 3, 2, 2), -1e4)
    y, g = jax.value_and_grad(lambda x, w: im2col_conv(x, w, padding=1).sum(), (0, 1))(x, w)
    assert jnp.isfinite(y) and all(bool(jnp.isfinite(t).all()) for t in g)


@pytest.mark.parametrize(
    "xs,ws,kw,err,match",
    [
        ((1, 4, 4, 2), (3, 3, 2), {}, ValueError, "x must have rank 3"),
        ((1, 4, 4, 2), (3, 3, 2, 2, 2, 2, 2), {}, ValueError, "w must have rank"),
        ((1, 4, 4, 3), (3, 3, 1, 2), dict(groups=2), ValueError, "C=3 must be divisible"),
        ((1, 4, 4, 4), (3, 3, 2, 3), dict(groups=2), ValueError, "O=3 must be divisible"),
        ((1, 4, 4, 4), (3, 3, 4, 2), dict(groups=2), ValueError, r"w.shape\[-2\]=4"),
        ((1, 4, 4, 2), (3, 3, 2, 2), dict(groups=0), ValueError, "groups must be a positive"),
        ((1, 2, 2, 2), (3, 3, 2, 2), {}, ValueError, "larger than the padded input"),
        ((1, 4, 4, 2), (3, 3, 2, 2), dict(stride=0), ValueError, "stride must be >= 1"),
        ((1, 4, 4, 2), (3, 3, 2, 2), dict(padding="FULL"), ValueError, "padding must be"),
    ],
)
def test_errors(xs, ws, kw, err, match):
    with pytest.raises(err, match=match):
        im2col_conv(jnp.ones(xs), jnp.ones(ws), **kw)


def test_integer_input_is_a_type_error():
    with pytest.raises(TypeError, match="x must have a floating dtype"):
        im2col_conv(jnp.ones((1, 4, 4, 2), jnp.int32), jnp.ones((3, 3, 2, 2)))
