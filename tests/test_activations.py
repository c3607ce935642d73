"""dlref.activations against jax.nn, jax.grad, and the seed errata 8 and 9."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dlref import activations as A
from dlref.testing import assert_op_close, check_op_gradients, rel_err

ELEMENTWISE = {
    "sigmoid": (A.sigmoid, jax.nn.sigmoid),
    "tanh": (A.tanh, jax.nn.tanh),
    "relu": (A.relu, jax.nn.relu),
    "leaky_relu": (A.leaky_relu, jax.nn.leaky_relu),
    "softplus": (A.softplus, jax.nn.softplus),
}
AXIS = {
    "softmax": (A.softmax, jax.nn.softmax),
    "log_softmax": (A.log_softmax, jax.nn.log_softmax),
}
ALL = {**ELEMENTWISE, **AXIS}
SMOOTH = ["sigmoid", "tanh", "softplus", "softmax", "log_softmax"]

# Float64 agreement with jax.nn: a few ulps (eps = 2.2e-16), normwise over the array; stricter
# than dlref.testing's float64 default (1e-12), which allows for different algorithms.
RTOL64 = 1e-14


def sample(key, shape=(5, 7), scale=3.0, dtype=jnp.float64):
    return scale * jax.random.normal(key, shape, dtype)


# --------------------------------------------------------------------------------------------
# values and gradients against jax.nn


@pytest.mark.parametrize("name", list(ALL))
def test_values_match_jax_nn_float64(name, key, x64):
    ours, ref = ALL[name]
    x = sample(key)
    np.testing.assert_allclose(ours(x), ref(x), rtol=RTOL64, atol=1e-300)


@pytest.mark.parametrize("name", list(ALL))
def test_values_match_jax_nn_float32(name, key):
    ours, ref = ALL[name]
    x = sample(key, dtype=jnp.float32)
    got, want = ours(x), ref(x)
    assert got.dtype == jnp.float32
    # float32: eps = 1.2e-7; a few ulps of the largest value.
    assert rel_err(got, want) <= 5e-7


@pytest.mark.parametrize("name", list(ALL))
def test_vjp_and_jvp_match_jax_nn_same_directions(name, key, x64):
    # value, VJP (one random cotangent through both) and JVP (one random tangent through both)
    ours, ref = ALL[name]
    assert_op_close(ours, ref, sample(key), rtol=RTOL64, key=key)


@pytest.mark.parametrize("name", SMOOTH)
def test_check_grads_order2(name, key, x64):
    ours, _ = ALL[name]
    check_op_gradients(jax.jit(ours), sample(key, (3, 4)), order=2)


@pytest.mark.parametrize("name", ["relu", "leaky_relu"])
def test_check_grads_order2_away_from_kink(name, key, x64):
    ours, _ = ALL[name]
    x = sample(key, (3, 4))
    # check_op_gradients steps 1e-4 in float64 (entries move by < 1e-3): stay 0.1 from the kink
    x = jnp.where(jnp.abs(x) < 0.1, 0.5, x)
    check_op_gradients(jax.jit(ours), x, order=2)


def test_leaky_relu_slope_argument(key, x64):
    x = sample(key)
    np.testing.assert_allclose(A.leaky_relu(x, 0.2), jax.nn.leaky_relu(x, 0.2), rtol=0, atol=0)
    g = jax.grad(lambda s: A.leaky_relu(x, s).sum())(0.2)
    # d/dα Σ leaky_relu(x, α) = Σ_{x<0} x, written out directly.
    np.testing.assert_allclose(g, np.sum(np.where(np.asarray(x) < 0, np.asarray(x), 0.0)))


# --------------------------------------------------------------------------------------------
# subgradients at the kinks (pinned: docs/contract.md and the docstrings)


def test_relu_subgradient_at_zero_is_zero():
    assert jax.grad(A.relu)(0.0) == 0.0
    assert jax.grad(jax.nn.relu)(0.0) == 0.0  # the convention dlref follows
    assert jax.jvp(A.relu, (0.0,), (1.0,))[1] == 0.0
    assert jax.grad(A.relu)(1e-30) == 1.0
    assert jax.grad(A.relu)(-1e-30) == 0.0


def test_leaky_relu_subgradient_at_zero_is_one():
    assert jax.grad(A.leaky_relu)(0.0) == 1.0
    assert jax.grad(jax.nn.leaky_relu)(0.0) == 1.0
    assert jax.grad(A.leaky_relu)(-1e-30) == pytest.approx(0.01, rel=1e-7)
    assert jax.grad(lambda x: A.leaky_relu(x, 0.3))(-1.0) == pytest.approx(0.3, rel=1e-7)


def test_smooth_derivatives_at_zero():
    # Exact values: σ'(0) = 1/4, tanh'(0) = 1, softplus'(0) = σ(0) = 1/2, σ''(0) = 0.
    assert jax.grad(A.sigmoid)(0.0) == 0.25
    assert jax.grad(A.tanh)(0.0) == 1.0
    assert jax.grad(A.softplus)(0.0) == 0.5
    assert jax.grad(jax.grad(A.sigmoid))(0.0) == 0.0
    assert jax.grad(jax.grad(A.tanh))(0.0) == 0.0


# --------------------------------------------------------------------------------------------
# jit, vmap, dtypes


@pytest.mark.parametrize("name", list(ALL))
def test_jit_and_vmap_agree_with_eager(name, key):
    ours, _ = ALL[name]
    x = sample(key, (4, 6), dtype=jnp.float32)
    eager = ours(x)
    # XLA may fuse the jitted graph differently: agreement to a couple of float32 ulps.
    np.testing.assert_allclose(jax.jit(ours)(x), eager, rtol=3e-7, atol=1e-37)
    np.testing.assert_allclose(jax.vmap(ours)(x), eager, rtol=3e-7, atol=1e-37)


def test_softmax_axis(key, x64):
    x = sample(key, (3, 4, 5))
    for axis in (0, -2):
        np.testing.assert_allclose(A.softmax(x, axis), jax.nn.softmax(x, axis), rtol=RTOL64)
        np.testing.assert_allclose(
            A.log_softmax(x, axis), jax.nn.log_softmax(x, axis), rtol=RTOL64, atol=1e-300
        )
        np.testing.assert_allclose(A.softmax(x, axis).sum(axis), 1.0, rtol=1e-15)


@pytest.mark.parametrize("name", list(ALL))
def test_float64_preserved(name, x64):
    ours, _ = ALL[name]
    x = jnp.array([[-1.5, 0.25, 2.0]], jnp.float64)
    assert ours(x).dtype == jnp.float64
    assert jax.grad(lambda v: ours(v).sum())(x).dtype == jnp.float64


@pytest.mark.parametrize("name", list(ALL))
def test_bfloat16_in_bfloat16_out(name):
    ours, ref = ALL[name]
    x = jnp.array([[-3.0, -0.5, 0.0, 0.75, 4.0]], jnp.bfloat16)
    assert ours(x).dtype == jnp.bfloat16
    # bfloat16 (eps = 2^-7) against jax.nn in float32 on the same rounded inputs: value, VJP
    # and JVP within dlref.testing's bfloat16 tolerance (2e-2, ~2.6 ulps). softmax's JVP
    # p * (t - <p, t>) cancels terms of the size of t (standard normal, O(1)) down to ~0.02
    # here, so its bfloat16 roundoff is absolute: atol = the tolerance times that O(1) scale
    # (jax.nn.softmax in bfloat16 errs exactly as much, 0.19 relative to its output).
    assert_op_close(ours, ref, x, reference_dtype=jnp.float32, atol=2e-2)


@pytest.mark.parametrize("name", list(ALL))
def test_integer_input_is_a_type_error(name):
    ours, _ = ALL[name]
    with pytest.raises(TypeError, match=f"{name}: x must have a floating dtype, got int32"):
        ours(jnp.array([[1, 2, 3]], jnp.int32))


@pytest.mark.parametrize("name", list(AXIS))
def test_axis_errors(name):
    ours, _ = AXIS[name]
    with pytest.raises(ValueError, match=rf"{name}: axis must lie in \[-2, 2\).*got 2"):
        ours(jnp.zeros((2, 3)), 2)
    with pytest.raises(ValueError, match=rf"{name}: axis must lie in \[0, 0\)"):
        ours(jnp.float32(1.0))
    with pytest.raises(TypeError, match=f"{name}: axis must be an int, got None"):
        ours(jnp.zeros((2, 3)), None)


# --------------------------------------------------------------------------------------------
# extreme inputs


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("name", list(ALL))
def test_extreme_inputs_finite_values_and_gradients(name, dtype, x64):
    ours, ref = ALL[name]
    x = jnp.array([[-1e4, -50.0, -1.0, 0.0, 1.0, 50.0, 1e4]], dtype)
    w = jnp.arange(1.0, 8.0, dtype=dtype)
    y = ours(x)
    g = jax.grad(lambda v: jnp.sum(ours(v) * w))(x)
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(g))
    eps = float(jnp.finfo(dtype).eps)
    np.testing.assert_allclose(y, ref(x), rtol=8 * eps, atol=0)
    # gradients too, with the same cotangent w: normwise, a few ulps of the largest entry
    # (tanh'(50) = 4e^-100 is kept here where jax.nn's 1 - tanh² rounds it to 0).
    assert rel_err(g, jax.grad(lambda v: jnp.sum(ref(v) * w))(x)) <= 8 * eps


def test_extreme_values_are_the_limits(x64):
    x = jnp.array([-1e4, 1e4])
    np.testing.assert_array_equal(A.sigmoid(x), [0.0, 1.0])
    np.testing.assert_array_equal(A.tanh(x), [-1.0, 1.0])
    np.testing.assert_array_equal(A.softplus(x), [0.0, 1e4])
    np.testing.assert_array_equal(jax.vmap(jax.grad(A.softplus))(x), [0.0, 1.0])
    # log_softmax([-1e4, 1e4]) = [-2e4 - log(1 + e^-2e4), -log(1 + e^-2e4)] = [-2e4, 0].
    np.testing.assert_array_equal(A.log_softmax(x), [-2e4, 0.0])
    np.testing.assert_array_equal(A.softmax(x), [0.0, 1.0])


def test_sigmoid_keeps_relative_precision_in_the_tail(x64):
    # σ(-40) = e^-40 / (1 + e^-40); in float64 1/(1+e^40) would be the same, but the
    # derivative σ(1−σ) at +40 cancels to 0 while e/(1+e)² keeps it: σ'(40) = e^-40/(1+e^-40)².
    e = np.exp(-40.0)
    assert float(A.sigmoid(-40.0)) == pytest.approx(e / (1 + e), rel=1e-15)
    assert float(jax.grad(A.sigmoid)(40.0)) == pytest.approx(e / (1 + e) ** 2, rel=1e-15)
    assert float(jax.grad(A.tanh)(20.0)) == pytest.approx(4 * np.exp(-40.0), rel=1e-15)


# --------------------------------------------------------------------------------------------
# properties (hypothesis)

finite = st.floats(-1e4, 1e4, allow_nan=False, width=64)


@given(x=finite)
def test_sigmoid_tanh_relations(x):
    with jax.enable_x64(True):
        s = float(A.sigmoid(x))
        assert 0.0 <= s <= 1.0
        assert s + float(A.sigmoid(-x)) == pytest.approx(1.0, abs=2e-16)
        # tanh(x) = 2σ(2x) − 1 (absolute error: σ near 1 has absolute precision eps)
        assert float(A.tanh(x)) == pytest.approx(2 * float(A.sigmoid(2 * x)) - 1, abs=1e-15)
        # softplus(x) − softplus(−x) = x
        assert float(A.softplus(x) - A.softplus(-x)) == pytest.approx(x, abs=1e-12)


@given(xs=st.lists(finite, min_size=1, max_size=6))
def test_softmax_is_a_distribution_and_shift_invariant(xs):
    with jax.enable_x64(True):
        x = jnp.array(xs)
        p = A.softmax(x)
        assert np.all(np.asarray(p) >= 0)
        assert float(p.sum()) == pytest.approx(1.0, abs=1e-14)
        np.testing.assert_allclose(A.softmax(x + 123.0), p, rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(np.exp(A.log_softmax(x)), p, rtol=1e-12, atol=1e-300)


# --------------------------------------------------------------------------------------------
# seed errata


def test_seed_errata_8_linear_activations_compose_to_a_linear_map(key, x64):
    """erratum 8 (docs/errata.md): the activation must be non-linear; linear layers compose to
    one."""
    # The guide's arm, composed in NumPy (independent of dlref): a two-layer network with the
    # linear activation f(h) = h is the single affine map x -> x W1 W2 + (b1 W2 + b2)...
    rng = np.random.default_rng(8)
    w1, b1 = rng.normal(size=(1, 16)), rng.normal(size=16)
    w2, b2 = rng.normal(size=(16, 1)), rng.normal(size=1)
    x = np.linspace(-1.0, 1.0, 21)[:, None]  # contains -1, 0 and 1
    linear_net = (x @ w1 + b1) @ w2 + b2
    np.testing.assert_allclose(linear_net, x @ (w1 @ w2) + (b1 @ w2 + b2), rtol=1e-12, atol=1e-12)
    # ...so on |x| it does no better than the best affine map, whose error is at least 1/2 on
    # any grid containing -1, 0, 1 (Chebyshev: a x + c misses 1, 0, 1 there by |a + c - 1|,
    # |c|, |c - a - 1|, which cannot all be below 1/2). Least squares (NumPy) shows it.
    design = np.concatenate([x, np.ones_like(x)], 1)
    coef, *_ = np.linalg.lstsq(design, np.abs(x[:, 0]), rcond=None)
    assert np.max(np.abs(design @ coef - np.abs(x[:, 0]))) >= 0.5
    # dlref's relu makes one 2-unit hidden layer exact: |x| = relu(x) + relu(-x), against
    # NumPy's np.maximum.
    hidden = np.asarray(A.relu(jnp.asarray(x) * jnp.array([[1.0, -1.0]])))
    np.testing.assert_array_equal(hidden, np.maximum(x * np.array([[1.0, -1.0]]), 0.0))
    np.testing.assert_array_equal(hidden @ np.array([1.0, 1.0]), np.abs(x[:, 0]))
    # A random relu network (dlref.relu, jax.grad) has an x-dependent slope, equal to NumPy's
    # piecewise-constant sum_j w2_j w1_j [x w1_j + b1_j > 0] away from the kinks.
    k1, k2, k3 = jax.random.split(key, 3)
    v1, c1 = jax.random.normal(k1, (1, 16)), jax.random.normal(k2, (16,))
    v2 = jax.random.normal(k3, (16, 1))
    xs = jnp.linspace(-2.0, 2.0, 9)
    slope = jax.vmap(jax.grad(lambda t: (A.relu(jnp.reshape(t, (1, 1)) @ v1 + c1) @ v2)[0, 0]))(xs)
    n1, nc, n2 = np.asarray(v1)[0], np.asarray(c1), np.asarray(v2)[:, 0]
    pre = np.asarray(xs)[:, None] * n1 + nc
    assert np.min(np.abs(pre)) > 1e-6  # no grid point sits on a kink
    np.testing.assert_allclose(np.asarray(slope), ((pre > 0) * n1 * n2).sum(1), rtol=1e-12)
    assert np.ptp(np.asarray(slope)) > 0  # not one linear map


def test_seed_errata_9_derivative_ranges(x64):
    """erratum 9 (docs/errata.md): σ' ∈ (0, 1/4], tanh' ∈ (0, 1]; maxima at 0, never 0 for moderate
    x."""
    x = jnp.arange(-3000, 3001) / 100.0  # step 0.01; x[3000] is exactly 0
    ds = jax.vmap(jax.grad(A.sigmoid))(x)
    dt = jax.vmap(jax.grad(A.tanh))(x)
    assert float(x[3000]) == 0.0 and float(ds[3000]) == 0.25 and float(dt[3000]) == 1.0
    # Upper bounds, up to one float64 rounding of e/(1+e)² near x = 0 (eps = 2^-52).
    assert float(ds.max()) <= 0.25 * (1 + 2**-51) and float(dt.max()) <= 1.0 * (1 + 2**-51)
    assert int(jnp.argmax(ds)) in (2999, 3000, 3001)
    assert float(ds.min()) > 0.0 and float(dt.min()) > 0.0  # the seed's closed bound 0
    # σ' = σ(1 − σ) and tanh' = 1 − tanh² agree with jax.nn's derivatives here.
    ref_ds = jax.vmap(jax.grad(jax.nn.sigmoid))(x)
    assert rel_err(ds, ref_ds) <= RTOL64
