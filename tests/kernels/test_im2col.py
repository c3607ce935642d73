"""dlref.kernels.im2col_conv against lax.conv_general_dilated and jax.grad of it."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _oracle import assert_conv_matches_lax, lax_conv, lax_patches

from dlref.kernels import col2im, im2col, im2col_conv, im2col_input_grad, im2col_weight_grad
from dlref.testing import rel_err

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
    assert_conv_matches_lax(im2col_conv, key, xs, ws, opts, 2e-6)


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
    # The primitives carry the im2col implementation into the backward pass: the gradient's
    # jaxpr holds the input-gradient (col2im) and weight-gradient primitives, and its lowered
    # program no XLA convolution, only pads, slices and dots.
    x, w, _ = _inputs(key, (1, 6, 6, 2), (3, 3, 2, 2))

    def loss(x, w):
        return im2col_conv(x, w, stride=2).sum()

    jaxpr = jax.make_jaxpr(jax.grad(loss, (0, 1)))(x, w)
    prims = {e.primitive.name: e.params.get("impl") for e in jaxpr.eqns}
    assert prims["dlref_conv_transpose"] == prims["dlref_conv_weight_grad"] == "im2col"
    text = jax.jit(jax.grad(loss, (0, 1))).lower(x, w).as_text()
    assert "convolution" not in text and "stablehlo.pad" in text and "dot_general" in text


BACKWARD = [CONFIGS[i] for i in (3, 5, 7)]
BACKWARD_IDS = [IDS[i] for i in (3, 5, 7)]


@pytest.mark.parametrize("xs,ws,opts", BACKWARD, ids=BACKWARD_IDS)
def test_explicit_backward_functions_match_lax(key, xs, ws, opts):
    x, w, kc = _inputs(key, xs, ws)
    dy = jax.random.normal(kc, jax.eval_shape(lambda x, w: lax_conv(x, w, **opts), x, w).shape)

    def both(x, w, dy):
        got = (
            im2col_input_grad(dy, w, x.shape, **opts),
            im2col_weight_grad(x, dy, ws[:-2], **opts),
        )
        return got, jax.vjp(lambda x, w: lax_conv(x, w, **opts), x, w)[1](dy)

    (got_dx, got_dw), (want_dx, want_dw) = jax.jit(both)(x, w, dy)
    assert rel_err(got_dx, want_dx) < 2e-6
    assert rel_err(got_dw, want_dw) < 2e-6


@pytest.mark.parametrize("xs,ws,opts", BACKWARD, ids=BACKWARD_IDS)
def test_col2im_is_what_autodiff_gives_for_im2col(key, xs, ws, opts):
    # im2col's columns are lax's patches (reordered); col2im, the scatter grouped by stride
    # residue, equals jax's linear transpose of the gather.
    x, _, kc = _inputs(key, xs, ws)
    k = ws[:-2]

    def all_of(x, kc):
        cols = im2col(x, k, **opts)
        ct = jax.random.normal(kc, cols.shape)
        (want,) = jax.linear_transpose(lambda x: im2col(x, k, **opts), x)(ct)
        return cols, lax_patches(x, k, **opts), col2im(ct, x.shape, k, **opts), want

    cols, lax_cols, got, want = jax.jit(all_of)(x, kc)
    assert rel_err(cols, lax_cols) == 0.0
    assert rel_err(got, want) < 1e-6


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
        ((1, 4, 4, 3), (3, 3, 1, 2), dict(groups=2), ValueError, "C_in=3 must be divisible"),
        ((1, 4, 4, 4), (3, 3, 2, 3), dict(groups=2), ValueError, "C_out=3 must be divisible"),
        ((1, 4, 4, 4), (3, 3, 4, 2), dict(groups=2), ValueError, r"w.shape\[-2\]=4"),
        ((1, 4, 4, 2), (3, 3, 2, 2), dict(groups=0), ValueError, "groups must be >= 1"),
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


def test_backward_function_errors():
    x, w, dy = jnp.ones((1, 4, 4, 2)), jnp.ones((3, 3, 2, 2)), jnp.ones((1, 2, 2, 2))
    with pytest.raises(ValueError, match=r"im2col_input_grad: dy must have .* \(1, 2, 2, 2\)"):
        im2col_input_grad(jnp.ones((1, 3, 2, 2)), w, x.shape)
    with pytest.raises(ValueError, match=r"im2col_weight_grad: dy must have"):
        im2col_weight_grad(x, jnp.ones((1, 3, 3, 2)), 3)
    with pytest.raises(ValueError, match=r"col2im: cols must have shape \(1, 4, 18\)"):
        col2im(jnp.ones((1, 4, 9)), x.shape, 3)
    with pytest.raises(TypeError, match="im2col: x must have a floating dtype"):
        im2col(jnp.ones((1, 4, 4, 2), jnp.int32), 3)
    assert im2col_weight_grad(x, dy, (3, 3)).shape == w.shape
