"""dlref.kernels.pallas_conv in interpret mode against lax.conv_general_dilated and jax.grad.

Interpret mode is slow: shapes are tiny and each test jits one value-and-vjp function.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _oracle import assert_conv_matches_lax, lax_conv, lax_conv_epilogue, vjp_both
from jax.experimental.pallas import tpu as pltpu
from jax.test_util import check_grads

from dlref.kernels import (
    ConvBlocks,
    choose_blocks,
    pallas_conv,
    pallas_conv_input_grad,
    pallas_conv_weight_grad,
)
from dlref.testing import rel_err

CONFIGS = [
    ((2, 7, 6, 3), (3, 3, 3, 5), dict(stride=2, padding=1)),
    ((1, 6, 5, 4), (2, 3, 2, 6), dict(padding="SAME", dilation=(2, 1), groups=2)),
    ((2, 6, 6, 4), (3, 3, 1, 4), dict(stride=2, padding=1, groups=4)),  # depthwise
    ((1, 9, 3), (3, 1, 6), dict(padding=((2, 1),), groups=3)),  # depthwise, multiplier 2, 1-D
    ((1, 4, 5, 4, 2), (2, 2, 3, 2, 3), dict(stride=(1, 2, 1), padding=(0, 1, 1))),  # 3-D
]
IDS = ["2d-s2", "2d-groups-dil", "depthwise-s2", "1d-depthwise-x2", "3d"]
# Tolerances per dtype: relative to max|reference| (float32 accumulation everywhere).
TOL = {jnp.float32: 1e-5, jnp.bfloat16: 1.5e-2, jnp.float16: 2e-3}


@pytest.mark.parametrize("xs,ws,opts", CONFIGS, ids=IDS)
def test_values_and_grads_match_lax(key, xs, ws, opts):
    assert_conv_matches_lax(pallas_conv, key, xs, ws, opts, TOL[jnp.float32])


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_low_precision_values_and_grads(key, dtype):
    kx, kw, kc = jax.random.split(key, 3)
    x = jax.random.normal(kx, (2, 6, 6, 4)).astype(dtype)
    w = jax.random.normal(kw, (3, 3, 4, 8)).astype(dtype)

    def f(x, w):
        return pallas_conv(x, w, stride=2, padding=1)

    # Reference in float32 HIGHEST on the same rounded inputs.
    def ref(x, w):
        return lax_conv(x.astype(jnp.float32), w.astype(jnp.float32), stride=2, padding=1)

    got, want, g_got, g_want = jax.jit(lambda x, w: vjp_both(f, ref, (x, w), kc))(x, w)
    assert got.dtype == dtype  # bf16 in, bf16 out
    assert rel_err(got, want) < TOL[dtype]
    for a, b in zip(g_got, g_want, strict=True):
        assert a.dtype == dtype and rel_err(a, b) < TOL[dtype]


def _fused(x, w, bias, scale, shift, residual, **kwargs):
    """pallas_conv with every epilogue operand, positionally (in lax_conv_epilogue's order)."""
    return pallas_conv(x, w, bias=bias, scale=scale, shift=shift, residual=residual, **kwargs)


@pytest.mark.parametrize("activation", ["none", "relu", "leaky_relu", "sigmoid", "tanh"])
def test_fused_epilogue_and_its_gradient(key, activation):
    ks = jax.random.split(key, 7)
    x, w = jax.random.normal(ks[0], (1, 5, 6, 3)), jax.random.normal(ks[1], (3, 3, 3, 4))
    bias, scale, shift = (jax.random.normal(k, (4,)) for k in ks[2:5])
    residual = jax.random.normal(ks[5], (1, 5, 6, 4))
    opts = dict(padding=1)

    def f(*a):
        return _fused(*a, activation=activation, negative_slope=0.2, **opts)

    def ref(*a):
        return lax_conv_epilogue(*a, activation=activation, slope=0.2, **opts)

    args = (x, w, bias, scale, shift, residual)
    got, want, g_got, g_want = jax.jit(lambda *a: vjp_both(f, ref, a, ks[6]))(*args)
    assert rel_err(got, want) < 1e-5
    for a, b in zip(g_got, g_want, strict=True):
        assert a.shape == b.shape and rel_err(a, b) < 1e-5


def test_out_dtype_and_partial_epilogue(key):
    kx, kw, kb = jax.random.split(key, 3)
    x, w = jax.random.normal(kx, (1, 4, 4, 2)), jax.random.normal(kw, (1, 1, 2, 3))
    b = jax.random.normal(kb, (3,))
    y = pallas_conv(x, w, shift=b, out_dtype=jnp.bfloat16)
    assert y.dtype == jnp.bfloat16
    assert rel_err(y, lax_conv(x, w) + b) < 1e-2


@pytest.mark.parametrize("activation,want", [("relu", 0.0), ("leaky_relu", 1.0)])
def test_subgradient_at_zero(activation, want):
    # x = 0 makes every pre-activation exactly 0: relu'(0) = 0, leaky_relu'(0) = 1.
    x, w = jnp.zeros((1, 3, 3, 1)), jnp.ones((1, 1, 1, 1))
    g = jax.grad(lambda b: pallas_conv(x, w, bias=b, activation=activation).sum())(jnp.zeros(1))
    np.testing.assert_array_equal(g, [9.0 * want])  # 9 output pixels, each contributing act'(0)


def test_tpu_variant_interpreted(key):
    # interpret=pltpu.InterpretParams() runs the TPU variant (128-channel blocks, block_m a
    # multiple of 8) in the generic interpreter.
    kx, kw, kc = jax.random.split(key, 3)
    x, w = jax.random.normal(kx, (1, 6, 6, 3)), jax.random.normal(kw, (3, 3, 3, 5))

    def f(x, w):
        return pallas_conv(x, w, stride=2, padding=1, interpret=pltpu.InterpretParams())

    def ref(x, w):
        return lax_conv(x, w, stride=2, padding=1)

    (eqn,) = [e for e in jax.make_jaxpr(f)(x, w).eqns if e.primitive.name == "dlref_conv"]
    assert eqn.params["options"].backend == "tpu"
    got, want, g_got, g_want = jax.jit(lambda x, w: vjp_both(f, ref, (x, w), kc))(x, w)
    assert rel_err(got, want) < 1e-5
    for a, b in zip(g_got, g_want, strict=True):
        assert rel_err(a, b) < 1e-5


def test_fused_epilogue_differentiates_to_second_order(key, x64):
    # check_grads(order=2) in both modes through the fused kernel: the epilogue's derivatives
    # are jnp around the kernel's outputs (y and the pre-scale u), the conv's are the kernels.
    ks = jax.random.split(key, 6)
    x, w = (
        jax.random.normal(ks[0], (1, 3, 3, 2), jnp.float64),
        jax.random.normal(ks[1], (2, 2, 2, 2), jnp.float64),
    )
    bias, scale, shift = (jax.random.normal(k, (2,), jnp.float64) for k in ks[2:5])
    residual = jax.random.normal(ks[5], (1, 4, 4, 2), jnp.float64)

    def f(*a):
        return _fused(*a, padding=1, activation="tanh")

    args = (x, w, bias, scale, shift, residual)
    assert f(*args).dtype == jnp.float64
    check_grads(jax.jit(f), args, order=2, modes=("fwd", "rev"))

    # and the Hessian-vector product equals the unfused lax graph's
    def loss(f):
        return lambda *a: jnp.sum(f(*a) ** 2)

    def ref(*a):
        return lax_conv_epilogue(*a, activation="tanh", padding=1)

    hvp = lambda g: jax.jvp(jax.grad(loss(g), tuple(range(6))), args, args)[1]  # noqa: E731
    assert rel_err(jax.jit(lambda: hvp(f))(), hvp(ref)) < 1e-10


@pytest.mark.parametrize("xs,ws,opts", [CONFIGS[0], CONFIGS[2]], ids=[IDS[0], IDS[2]])
def test_explicit_backward_kernels_match_lax(key, xs, ws, opts):
    kx, kw, kc = jax.random.split(key, 3)
    x, w = jax.random.normal(kx, xs), jax.random.normal(kw, ws)
    y, pull = jax.vjp(lambda x, w: lax_conv(x, w, **opts), x, w)
    dy = jax.random.normal(kc, y.shape)
    want_dx, want_dw = pull(dy)
    got_dx, got_dw = jax.jit(
        lambda dy, x, w: (
            pallas_conv_input_grad(dy, w, xs, **opts),
            pallas_conv_weight_grad(x, dy, ws[:-2], **opts),
        )
    )(dy, x, w)
    assert rel_err(got_dx, want_dx) < TOL[jnp.float32]
    assert rel_err(got_dw, want_dw) < TOL[jnp.float32]


def test_worked_example():
    # conv([1, 2, 3, 4], [1, 1]) = [3, 5, 7]; bias -4 and relu -> [0, 1, 3] (docstring).
    x = jnp.arange(1.0, 5.0).reshape(1, 4, 1)
    y = pallas_conv(x, jnp.ones((2, 1, 1)), bias=jnp.array([-4.0]), activation="relu")
    np.testing.assert_array_equal(y[0, :, 0], [0.0, 1.0, 3.0])


def test_explicit_blocks_give_the_same_answer(key):
    kx, kw = jax.random.split(key)
    x, w = jax.random.normal(kx, (1, 6, 6, 20)), jax.random.normal(kw, (3, 3, 20, 20))
    # block_k = 16 < C_in = 20: two channel blocks per tap, the second zero-padded.
    y = pallas_conv(x, w, padding=1, block=ConvBlocks(block_m=16, block_n=16, block_k=16))
    assert rel_err(y, lax_conv(x, w, padding=1)) < 1e-5


def test_choose_blocks_heuristic():
    b = choose_blocks(3, 64, 12544, jnp.bfloat16)  # the ResNet stem
    assert (b.block_k, b.block_n, b.block_m) == (16, 64, 128)
    b = choose_blocks(512, 512, 63, jnp.float32)
    assert (b.block_k, b.block_n, b.block_m) == (32, 128, 64)
    for v in (b.block_m, b.block_n, b.block_k):
        assert v >= 16 and v & (v - 1) == 0  # Triton: powers of two, tl.dot needs >= 16
    t = choose_blocks(64, 64, 3136, jnp.float32, backend="tpu")
    assert t.block_m % 8 == 0 and t.block_n % 128 == 0 and t.block_k % 128 == 0


@pytest.mark.parametrize(
    "kw,err,match",
    [
        (dict(activation="gelu"), ValueError, "activation must be one of"),
        (dict(bias=jnp.ones(3)), ValueError, r"bias must have shape \(2,\)"),
        (dict(residual=jnp.ones((1, 4, 4, 2))), ValueError, "residual must have the output"),
        (dict(scale=jnp.ones(2, jnp.int32)), TypeError, "scale must have a floating dtype"),
        (dict(block=(16, 16, 16)), TypeError, "block must be a ConvBlocks"),
        (dict(interpret=False), NotImplementedError, "compiled kernels need a GPU or TPU"),
        (
            dict(interpret=pltpu.InterpretParams(), block=ConvBlocks(block_m=12)),
            NotImplementedError,
            r"\(8, 128\) tiling",
        ),
        (dict(groups=3), ValueError, "divisible by groups=3"),
    ],
)
def test_errors(kw, err, match):
    with pytest.raises(err, match=match):
        pallas_conv(jnp.ones((1, 4, 4, 2)), jnp.ones((2, 2, 2, 2)), **kw)


@pytest.mark.parametrize("activation", ["none", "relu", "leaky_relu", "sigmoid", "tanh"])
def test_epilogue_reference_matches_jax_nn(activation):
    # epilogue_reference is written without the kernel's helpers; here it meets jax.nn's
    # activations (the oracle the fused kernel's tests use is tests/kernels/_oracle.py's).
    from dlref.kernels.pallas_igemm import epilogue_reference

    z = jnp.linspace(-3.0, 3.0, 13)
    want = {
        "none": z,
        "relu": jax.nn.relu(z),
        "leaky_relu": jax.nn.leaky_relu(z, 0.2),
        "sigmoid": jax.nn.sigmoid(z),
        "tanh": jnp.tanh(z),
    }[activation]
    got = epilogue_reference(
        z - 1.0,
        bias=jnp.array(2.0),
        scale=jnp.array(1.0),
        shift=jnp.array(-1.0),
        activation=activation,
        negative_slope=0.2,
    )
    assert rel_err(got, want) < 1e-6
