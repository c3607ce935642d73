"""dlref.norm against flax (nnx.BatchNorm / LayerNorm / GroupNorm / InstanceNorm), scikit-learn,
lax.conv_general_dilated and NumPy oracles written here."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sklearn.preprocessing as skp
from flax import nnx
from hypothesis import given
from hypothesis import strategies as st
from jax import lax
from jax.test_util import check_grads

from dlref.norm import (
    BatchNormState,
    batch_norm,
    fold_batch_norm,
    group_norm,
    instance_norm,
    layer_norm,
    min_max_scale,
    standardize,
)

# --------------------------------------------------------------------------------------------
# oracles (NumPy, float64) and flax wrappers


def np_batch_norm_train(x, scale, bias, mean, var, momentum, eps):
    x = np.asarray(x, np.float64)
    axes = tuple(range(x.ndim - 1))
    m = x.size // x.shape[-1]
    mu = x.mean(axis=axes)
    s2 = ((x - mu) ** 2).mean(axis=axes)  # biased
    y = (x - mu) / np.sqrt(s2 + eps) * scale + bias
    new_mean = (1 - momentum) * mean + momentum * mu
    new_var = (1 - momentum) * var + momentum * s2 * m / (m - 1)  # unbiased
    return y, new_mean, new_var


def np_normalize(x, axes, eps):
    x = np.asarray(x, np.float64)
    mu = x.mean(axis=axes, keepdims=True)
    s2 = ((x - mu) ** 2).mean(axis=axes, keepdims=True)
    return (x - mu) / np.sqrt(s2 + eps)


def flax_batch_norm(x, scale, bias, mean, var, *, train, flax_momentum, eps):
    """nnx.BatchNorm as a pure function: (y, running mean, running var) after one call."""
    m = nnx.BatchNorm(
        x.shape[-1],
        use_running_average=not train,
        momentum=flax_momentum,
        epsilon=eps,
        use_fast_variance=False,
        dtype=x.dtype,
        param_dtype=x.dtype,
        rngs=nnx.Rngs(0),
    )
    m.scale.set_value(scale)
    m.bias.set_value(bias)
    m.mean.set_value(mean)
    m.var.set_value(var)
    y = m(x)
    return y, m.mean[...], m.var[...]


def _set_affine(m, scale, bias):
    m.scale.set_value(scale)
    m.bias.set_value(bias)
    return m


def flax_layer_norm(x, scale, bias, *, axes, eps):
    shape = tuple(x.shape[a] for a in axes)
    m = nnx.LayerNorm(
        shape[-1] if len(shape) == 1 else 1,
        reduction_axes=axes,
        feature_axes=axes,
        epsilon=eps,
        use_fast_variance=False,
        param_dtype=x.dtype,
        rngs=nnx.Rngs(0),
    )
    return _set_affine(m, scale, bias)(x)


def flax_group_norm(x, scale, bias, *, num_groups, eps):
    m = nnx.GroupNorm(
        x.shape[-1],
        num_groups=num_groups,
        epsilon=eps,
        use_fast_variance=False,
        param_dtype=x.dtype,
        rngs=nnx.Rngs(0),
    )
    return _set_affine(m, scale, bias)(x)


def flax_instance_norm(x, scale, bias, *, eps):
    m = nnx.InstanceNorm(
        x.shape[-1], epsilon=eps, use_fast_variance=False, param_dtype=x.dtype, rngs=nnx.Rngs(0)
    )
    return _set_affine(m, scale, bias)(x)


def _inputs(key, shape, dtype=jnp.float64):
    k1, k2, k3, k4, k5 = jax.random.split(key, 5)
    c = shape[-1]
    x = 2.0 * jax.random.normal(k1, shape, dtype) + 0.5
    scale = jax.random.uniform(k2, (c,), dtype, 0.5, 2.0)
    bias = jax.random.normal(k3, (c,), dtype)
    mean = jax.random.normal(k4, (c,), dtype)
    var = jax.random.uniform(k5, (c,), dtype, 0.5, 2.0)
    return x, scale, bias, BatchNormState(mean, var)


def _assert_close(a, b, rtol=1e-12, atol=1e-12):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)


# --------------------------------------------------------------------------------------------
# batch_norm


@pytest.mark.parametrize("shape", [(8, 3), (4, 5, 5, 3), (2, 3, 4, 2, 2)])
def test_batch_norm_train_matches_numpy(key, x64, shape):
    x, scale, bias, state = _inputs(key, shape)
    y, new = batch_norm(x, scale, bias, state, train=True, momentum=0.1, eps=1e-5)
    want_y, want_mean, want_var = np_batch_norm_train(x, scale, bias, *state, 0.1, 1e-5)
    _assert_close(y, want_y)
    _assert_close(new.mean, want_mean)
    _assert_close(new.var, want_var)
    assert isinstance(new, BatchNormState)


def test_batch_norm_train_matches_flax_and_converts_momentum(key, x64):
    x, scale, bias, state = _inputs(key, (6, 4, 4, 3))
    momentum = 0.1
    y, new = batch_norm(x, scale, bias, state, train=True, momentum=momentum, eps=1e-5)
    # flax's momentum weights the OLD value: flax 0.9 == PyTorch/dlref 0.1.
    fy, fmean, fvar = flax_batch_norm(
        x, scale, bias, *state, train=True, flax_momentum=1 - momentum, eps=1e-5
    )
    _assert_close(y, fy)
    _assert_close(new.mean, fmean)
    # flax stores the BIASED batch variance; dlref (PyTorch) the unbiased one: they differ ...
    m = x.size // x.shape[-1]
    assert np.all(np.abs(np.asarray(new.var - fvar)) > 1e-4)
    # ... by exactly the factor m/(m-1) on the batch term of the moving average.
    batch_term_dlref = (new.var - (1 - momentum) * state.var) / momentum
    batch_term_flax = (fvar - (1 - momentum) * state.var) / momentum
    _assert_close(batch_term_dlref, batch_term_flax * m / (m - 1), rtol=1e-10)


def test_batch_norm_train_grad_matches_flax(key, x64):
    x, scale, bias, state = _inputs(key, (5, 3, 4))
    ct = jax.random.normal(jax.random.fold_in(key, 1), x.shape, x.dtype)

    def ours(x, scale, bias):
        return batch_norm(x, scale, bias, state, train=True, momentum=0.1, eps=1e-5)[0]

    def theirs(x, scale, bias):
        return flax_batch_norm(x, scale, bias, *state, train=True, flax_momentum=0.9, eps=1e-5)[0]

    g_ours = jax.vjp(ours, x, scale, bias)[1](ct)
    g_theirs = jax.vjp(theirs, x, scale, bias)[1](ct)
    for a, b in zip(g_ours, g_theirs, strict=True):
        _assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_batch_norm_inference_matches_flax_and_keeps_state(key, x64):
    x, scale, bias, state = _inputs(key, (4, 3, 3, 5))
    y, new = batch_norm(x, scale, bias, state, train=False, momentum=0.1, eps=1e-3)
    fy, _, _ = flax_batch_norm(x, scale, bias, *state, train=False, flax_momentum=0.9, eps=1e-3)
    _assert_close(y, fy)
    assert new is state
    want = (np.asarray(x) - state.mean) / np.sqrt(state.var + 1e-3) * scale + bias
    _assert_close(y, want)
    ct = jax.random.normal(jax.random.fold_in(key, 1), x.shape, x.dtype)
    g = jax.vjp(lambda x: batch_norm(x, scale, bias, state, train=False)[0], x)[1](ct)[0]
    g_f = jax.vjp(
        lambda x: flax_batch_norm(x, scale, bias, *state, train=False, flax_momentum=0.9, eps=1e-5)[
            0
        ],
        x,
    )[1](ct)[0]
    _assert_close(g, g_f)


def test_batch_norm_none_affine_is_identity_affine(key, x64):
    x, _, _, state = _inputs(key, (6, 2))
    one, zero = jnp.ones(2), jnp.zeros(2)
    a = batch_norm(x, None, None, state, train=True)
    b = batch_norm(x, one, zero, state, train=True)
    _assert_close(a[0], b[0], rtol=0, atol=0)


@pytest.mark.parametrize("train", [True, False])
def test_batch_norm_check_grads(key, x64, train):
    x, scale, bias, state = _inputs(key, (4, 3, 2))

    def f(x, scale, bias):
        y, new = batch_norm(x, scale, bias, state, train=train, momentum=0.3)
        return y, new.mean, new.var

    check_grads(jax.jit(f), (x, scale, bias), order=2, modes=["fwd", "rev"])  # jit: ~half the time


def test_batch_norm_jit_vmap_scan(key, x64):
    x, scale, bias, state = _inputs(key, (3, 6, 4))  # vmap over 3 independent models

    def f(x, st):
        return batch_norm(x, scale, bias, st, train=True, momentum=0.2)

    states = jax.tree.map(lambda a: jnp.stack([a, 2 * a, a + 1]), state)
    got = jax.vmap(f)(x, states)
    eager = [f(x[i], jax.tree.map(lambda a, i=i: a[i], states)) for i in range(3)]
    want = jax.tree.map(lambda *a: jnp.stack(a), *eager)
    jax.tree.map(lambda a, b: _assert_close(a, b, rtol=1e-14, atol=1e-14), got, want)
    jax.tree.map(
        lambda a, b: _assert_close(a, b, rtol=1e-14, atol=1e-14),
        jax.jit(f)(x[0], state),
        f(x[0], state),
    )


def test_batch_norm_running_stats_follow_the_ema_closed_form(key, x64):
    """Feeding the same batch n times: running = b + (init - b)·(1 - momentum)^n exactly."""
    x, scale, bias, state = _inputs(key, (16, 3))
    momentum, n = 0.1, 30

    def step(st, _):
        return batch_norm(x, scale, bias, st, train=True, momentum=momentum)[1], None

    final, _ = lax.scan(step, state, None, length=n)
    xb = np.asarray(x)
    b_mean, b_var = xb.mean(0), xb.var(0, ddof=1)
    decay = (1 - momentum) ** n
    _assert_close(final.mean, b_mean + (state.mean - b_mean) * decay, rtol=1e-12)
    _assert_close(final.var, b_var + (state.var - b_var) * decay, rtol=1e-12)


def test_batch_norm_state_keeps_its_dtype_and_output_follows_x(key):
    x = jax.random.normal(key, (4, 3), jnp.bfloat16)
    st = BatchNormState.create(3, jnp.float32)
    y, new = batch_norm(x, None, None, st, train=True)
    assert y.dtype == jnp.bfloat16
    assert new.mean.dtype == new.var.dtype == jnp.float32
    with jax.enable_x64(True):
        y64, _ = batch_norm(jnp.asarray(x, jnp.float64), None, None, st, train=True)
        assert y64.dtype == jnp.float64


def test_batch_norm_extreme_and_constant_channels_are_finite(x64):
    x = jnp.array([[1e4, 5.0], [-1e4, 5.0], [3e3, 5.0]])  # channel 1 is constant
    scale, bias = jnp.array([2.0, 3.0]), jnp.array([0.0, -1.0])
    st = BatchNormState.create(2, jnp.float64)

    def f(x):
        return batch_norm(x, scale, bias, st, train=True)[0]

    y = f(x)
    assert np.all(np.isfinite(y))
    _assert_close(y[:, 1], -1.0 * np.ones(3))  # constant channel -> bias
    want_y, want_mean, want_var = np_batch_norm_train(x, scale, bias, *st, 0.1, 1e-5)
    _assert_close(y, want_y)
    new = batch_norm(x, scale, bias, st, train=True)[1]
    _assert_close(new.mean, want_mean)
    _assert_close(new.var, want_var)
    g = jax.grad(lambda x: jnp.sum(f(x) * jnp.arange(6.0).reshape(3, 2)))(x)
    assert np.all(np.isfinite(g))


@given(
    seed=st.integers(0, 2**16),
    shift=st.floats(-100, 100),
    spread=st.floats(0.1, 10),
)
def test_batch_norm_train_output_is_standardized(seed, shift, spread):
    """Per channel, y (no affine) has mean 0 and biased variance sigma²/(sigma² + eps)."""
    c = 3  # one shape only: JAX compiles once
    with jax.enable_x64(True):
        x = shift + spread * jax.random.normal(jax.random.key(seed), (4, 3, c), jnp.float64)
        y, _ = batch_norm(x, None, None, BatchNormState.create(c, jnp.float64), train=True)
        s2 = np.asarray(x).var(axis=(0, 1))
        _assert_close(np.asarray(y).mean(axis=(0, 1)), np.zeros(c), atol=1e-10)
        _assert_close(np.asarray(y).var(axis=(0, 1)), s2 / (s2 + 1e-5), rtol=1e-10)


def test_seed_errata_10_eps_inside_the_square_root(x64):
    """erratum 10 (docs/errata.md): the seed's (x - mu)/(sqrt(var) + eps) is not batch norm."""
    x = jnp.array([[0.0], [0.02]])  # mean 0.01, biased var 1e-4, sqrt(var) = 0.01
    eps = 1e-3
    y, _ = batch_norm(x, None, None, BatchNormState.create(1, jnp.float64), train=True, eps=eps)
    correct = np.array([-0.01, 0.01]) / np.sqrt(1e-4 + eps)  # +-0.30151...
    seed = np.array([-0.01, 0.01]) / (np.sqrt(1e-4) + eps)  # +-0.90909...
    _assert_close(y[:, 0], correct)
    assert np.max(np.abs(np.asarray(y[:, 0]) - seed)) > 0.5
    fy, _, _ = flax_batch_norm(
        x,
        jnp.ones(1),
        jnp.zeros(1),
        jnp.zeros(1),
        jnp.ones(1),
        train=True,
        flax_momentum=0.9,
        eps=eps,
    )
    _assert_close(y, fy)  # flax agrees with the eps-inside form


def test_batch_norm_state_is_a_pytree():
    st = BatchNormState.create(4)
    assert st.mean.shape == st.var.shape == (4,)
    np.testing.assert_array_equal(st.var, np.ones(4))
    doubled = jax.tree.map(lambda a: 2 * a, st)
    assert isinstance(doubled, BatchNormState)
    assert len(jax.tree.leaves(st)) == 2
    with pytest.raises(ValueError, match="num_features must be >= 0"):
        BatchNormState.create(-1)
    assert BatchNormState.create(0).mean.shape == (0,)  # zero channels: empty statistics
    with pytest.raises(TypeError, match="num_features must be an int"):
        BatchNormState.create(2.0)


def test_batch_norm_errors():
    x = jnp.ones((4, 3))
    st = BatchNormState.create(3)
    with pytest.raises(ValueError, match="x must have rank >= 2"):
        batch_norm(jnp.ones(3), None, None, st, train=True)
    with pytest.raises(TypeError, match="x must have a floating dtype"):
        batch_norm(jnp.ones((4, 3), jnp.int32), None, None, st, train=True)
    with pytest.raises(TypeError, match="batch_norm: train must be a bool, got 1"):
        batch_norm(x, None, None, st, train=1)
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match=r"momentum must lie in \[0.0, 1.0\]"):
            batch_norm(x, None, None, st, train=True, momentum=bad)
    with pytest.raises(ValueError, match=r"batch_norm: eps must lie in \(0.0, inf\), got 0.0"):
        batch_norm(x, None, None, st, train=True, eps=0.0)
    with pytest.raises(TypeError, match="batch_norm: eps must be a number, got '1e-5'"):
        batch_norm(x, None, None, st, train=True, eps="1e-5")
    with pytest.raises(ValueError, match=r"state.mean must have shape \(C,\) = \(3,\)"):
        batch_norm(x, None, None, BatchNormState(jnp.zeros(4), jnp.ones(3)), train=True)
    with pytest.raises(ValueError, match=r"state.var must have shape \(C,\) = \(3,\)"):
        batch_norm(x, None, None, BatchNormState(jnp.zeros(3), jnp.ones((3, 1))), train=True)
    with pytest.raises(TypeError, match=r"batch_norm: state must be a \(mean, var\) pair"):
        batch_norm(x, None, None, jnp.zeros(3), train=True)
    with pytest.raises(TypeError, match="batch_norm: state.var must have a floating dtype"):
        batch_norm(x, None, None, (jnp.zeros(3), jnp.ones(3, jnp.int32)), train=True)
    with pytest.raises(ValueError, match=r"scale must have shape \(3,\)"):
        batch_norm(x, jnp.ones(2), None, st, train=True)
    with pytest.raises(TypeError, match="bias must have a floating dtype"):
        batch_norm(x, None, jnp.zeros(3, jnp.int32), st, train=True)
    with pytest.raises(ValueError, match="more than one value per channel"):
        batch_norm(jnp.ones((1, 3)), None, None, st, train=True)
    # one value per channel is fine in inference
    y, _ = batch_norm(jnp.ones((1, 3)), None, None, st, train=False)
    assert y.shape == (1, 3)


# --------------------------------------------------------------------------------------------
# fold_batch_norm


def _conv(x, w, groups, layout="NHWC"):
    dn = ("NHWC", "HWIO", "NHWC") if layout == "NHWC" else ("NCHW", "OIHW", "NCHW")
    return lax.conv_general_dilated(
        x,
        w,
        (1, 1),
        "SAME",
        dimension_numbers=dn,
        feature_group_count=groups,
        precision=lax.Precision.HIGHEST,
    )


def _np_bn_inference(z, st, scale, bias, eps, channel_axis=-1):
    shape = [1] * z.ndim
    shape[channel_axis] = -1
    r = lambda a: np.reshape(np.asarray(a), shape)  # noqa: E731
    return (np.asarray(z) - r(st.mean)) / np.sqrt(r(st.var) + eps) * r(scale) + r(bias)


@pytest.mark.parametrize("groups,with_bias", [(1, True), (2, False)])
def test_fold_batch_norm_equals_conv_then_bn(key, x64, groups, with_bias):
    kx, kw, kb, kp = jax.random.split(key, 4)
    x = jax.random.normal(kx, (2, 5, 5, 4), jnp.float64)
    w = jax.random.normal(kw, (3, 3, 4 // groups, 6), jnp.float64)
    b = jax.random.normal(kb, (6,), jnp.float64) if with_bias else None
    _, scale, bias, st = _inputs(kp, (1, 6))
    eps = 1e-3
    w2, b2 = fold_batch_norm(w, b, st, scale, bias, eps)
    z = _conv(x, w, groups) + (0.0 if b is None else b)
    want = _np_bn_inference(z, st, scale, bias, eps)
    _assert_close(_conv(x, w2, groups) + b2, want, rtol=1e-12, atol=1e-12)
    assert w2.shape == w.shape and b2.shape == (6,)


def test_fold_batch_norm_oihw_layout_and_dense(key, x64):
    kx, kw, kb, kp = jax.random.split(key, 4)
    _, scale, bias, st = _inputs(kp, (1, 6))
    x = jax.random.normal(kx, (2, 4, 5, 5), jnp.float64)
    w = jax.random.normal(kw, (6, 4, 3, 3), jnp.float64)  # OIHW
    b = jax.random.normal(kb, (6,), jnp.float64)
    w2, b2 = fold_batch_norm(w, b, st, scale, bias, layout="NCHW")
    want = _np_bn_inference(_conv(x, w, 1, "NCHW") + b[:, None, None], st, scale, bias, 1e-5, 1)
    _assert_close(_conv(x, w2, 1, "NCHW") + b2[:, None, None], want)
    # a dense layer (C_in, C_out) is HWIO without spatial dims; scale/bias None = 1/0
    xd = jax.random.normal(kx, (7, 4), jnp.float64)
    wd = jax.random.normal(kw, (4, 6), jnp.float64)
    w3, b3 = fold_batch_norm(wd, None, st, None, None)
    _assert_close(xd @ w3 + b3, _np_bn_inference(xd @ wd, st, np.ones(6), np.zeros(6), 1e-5))


def test_fold_batch_norm_check_grads(key, x64):
    _, scale, bias, st = _inputs(key, (1, 3))
    w = jax.random.normal(key, (2, 2, 2, 3), jnp.float64)
    b = jnp.arange(3.0)
    f = lambda w, b, s, t: fold_batch_norm(w, b, st, s, t)  # noqa: E731
    check_grads(jax.jit(f), (w, b, scale, bias), order=2, modes=["fwd", "rev"])
    eager = f(w, b, scale, bias)
    assert eager[0].dtype == eager[1].dtype == jnp.float64
    for a, e in zip(jax.jit(f)(w, b, scale, bias), eager, strict=True):
        _assert_close(a, e, rtol=1e-14, atol=0)
    # vmap over a stack of two kernels (and biases): each folded as on its own
    ws, bs = jnp.stack([w, -2 * w]), jnp.stack([b, b + 1])
    got = jax.vmap(f, (0, 0, None, None))(ws, bs, scale, bias)
    for i in range(2):
        for a, e in zip(got, f(ws[i], bs[i], scale, bias), strict=True):
            _assert_close(a[i], e, rtol=1e-14, atol=0)


def test_fold_batch_norm_errors():
    st = BatchNormState.create(3)
    w = jnp.ones((3, 3, 2, 3))
    with pytest.raises(ValueError, match="layout must be one of"):
        fold_batch_norm(w, None, st, None, None, layout="HWIO")
    with pytest.raises(ValueError, match="w must have rank >= 2"):
        fold_batch_norm(jnp.ones(3), None, st, None, None)
    with pytest.raises(TypeError, match="w must have a floating dtype"):
        fold_batch_norm(jnp.ones((2, 3), jnp.int32), None, st, None, None)
    with pytest.raises(ValueError, match=r"b must have shape \(3,\)"):
        fold_batch_norm(w, jnp.ones(2), st, None, None)
    with pytest.raises(ValueError, match=r"state.var must have shape \(C_out,\) = \(2,\)"):
        fold_batch_norm(
            jnp.ones((3, 2)), None, BatchNormState(jnp.zeros(2), jnp.ones(3)), None, None
        )
    with pytest.raises(ValueError, match=r"fold_batch_norm: eps must lie in \(0.0, inf\)"):
        fold_batch_norm(w, None, st, None, None, -1e-5)
    with pytest.raises(TypeError, match=r"fold_batch_norm: state must be a \(mean, var\) pair"):
        fold_batch_norm(w, None, None, None, None)


# --------------------------------------------------------------------------------------------
# layer / group / instance norm


@pytest.mark.parametrize("shape,axis", [((4, 7), -1), ((2, 3, 5), (1, 2)), ((2, 3, 4), (0, 2))])
def test_layer_norm_matches_flax_values_and_grads(key, x64, shape, axis):
    x, _, _, _ = _inputs(key, shape)
    axes = tuple(sorted(a % len(shape) for a in ((axis,) if isinstance(axis, int) else axis)))
    pshape = tuple(shape[a] for a in axes)
    k1, k2, k3 = jax.random.split(jax.random.fold_in(key, 1), 3)
    scale = jax.random.uniform(k1, pshape, jnp.float64, 0.5, 2)
    bias = jax.random.normal(k2, pshape, jnp.float64)
    eps = 1e-5

    def ours(x, s, b):
        return layer_norm(x, scale=s, bias=b, axis=axis, eps=eps)

    def theirs(x, s, b):
        return flax_layer_norm(x, s, b, axes=axes, eps=eps)

    _assert_close(ours(x, scale, bias), theirs(x, scale, bias))
    bshape = [shape[a] if a in axes else 1 for a in range(len(shape))]
    want = np_normalize(x, axes, eps) * np.reshape(scale, bshape) + np.reshape(bias, bshape)
    _assert_close(ours(x, scale, bias), want)
    ct = jax.random.normal(k3, shape, jnp.float64)
    for a, b in zip(
        jax.vjp(ours, x, scale, bias)[1](ct), jax.vjp(theirs, x, scale, bias)[1](ct), strict=True
    ):
        _assert_close(a, b, rtol=1e-10)


def test_layer_norm_default_eps_is_pytorchs_not_flaxs(x64):
    x = jnp.array([[0.0, 1e-3]])  # variance 2.5e-7, comparable to eps
    got = layer_norm(x)
    _assert_close(got, np_normalize(x, (1,), 1e-5))
    flax_default = nnx.LayerNorm(2, param_dtype=jnp.float64, rngs=nnx.Rngs(0))(x)  # eps 1e-6
    assert np.max(np.abs(np.asarray(got - flax_default))) > 0.1


@pytest.mark.parametrize("shape,groups", [((2, 4, 4, 6), 3), ((3, 5, 4), 1), ((2, 3, 3, 4), 4)])
def test_group_norm_matches_flax_values_and_grads(key, x64, shape, groups):
    x, scale, bias, _ = _inputs(key, shape)
    eps = 1e-5

    def ours(x, s, b):
        return group_norm(x, groups, scale=s, bias=b, eps=eps)

    def theirs(x, s, b):
        return flax_group_norm(x, s, b, num_groups=groups, eps=eps)

    _assert_close(ours(x, scale, bias), theirs(x, scale, bias))
    ct = jax.random.normal(jax.random.fold_in(key, 1), shape, jnp.float64)
    for a, b in zip(
        jax.vjp(ours, x, scale, bias)[1](ct), jax.vjp(theirs, x, scale, bias)[1](ct), strict=True
    ):
        _assert_close(a, b, rtol=1e-10)


def test_group_norm_extremes_are_layer_and_instance_norm(key, x64):
    x, _, _, _ = _inputs(key, (2, 3, 3, 4))
    _assert_close(group_norm(x, 1), np_normalize(x, (1, 2, 3), 1e-5))
    _assert_close(group_norm(x, 4), instance_norm(x), rtol=1e-14, atol=1e-14)
    # group layout: channels [0, 1] form group 0 (contiguous, as PyTorch and flax)
    want = np.concatenate(
        [np_normalize(x[..., :2], (1, 2, 3), 1e-5), np_normalize(x[..., 2:], (1, 2, 3), 1e-5)], -1
    )
    _assert_close(group_norm(x, 2), want)


@pytest.mark.parametrize("shape", [(2, 5, 3), (2, 3, 4, 3), (1, 2, 2, 2, 2)])
def test_instance_norm_matches_flax_values_and_grads(key, x64, shape):
    x, scale, bias, _ = _inputs(key, shape)

    def ours(x, s, b):
        return instance_norm(x, scale=s, bias=b, eps=1e-5)

    def theirs(x, s, b):
        return flax_instance_norm(x, s, b, eps=1e-5)

    _assert_close(ours(x, scale, bias), theirs(x, scale, bias))
    _assert_close(
        ours(x, scale, bias), np_normalize(x, tuple(range(1, len(shape) - 1)), 1e-5) * scale + bias
    )
    ct = jax.random.normal(jax.random.fold_in(key, 1), shape, jnp.float64)
    for a, b in zip(
        jax.vjp(ours, x, scale, bias)[1](ct), jax.vjp(theirs, x, scale, bias)[1](ct), strict=True
    ):
        _assert_close(a, b, rtol=1e-10)


NORMS = {
    "layer_norm": lambda x, s, b: layer_norm(x, scale=s, bias=b),
    "group_norm": lambda x, s, b: group_norm(x, 2, scale=s, bias=b),
    "instance_norm": lambda x, s, b: instance_norm(x, scale=s, bias=b),
}


@pytest.mark.parametrize("name", NORMS)
def test_norms_check_grads_jit_vmap_dtype(key, x64, name):
    f = NORMS[name]
    x, scale, bias, _ = _inputs(key, (2, 3, 4))
    check_grads(jax.jit(f), (x, scale, bias), order=2, modes=["fwd", "rev"])
    y = f(x, scale, bias)
    assert y.dtype == jnp.float64
    _assert_close(jax.jit(f)(x, scale, bias), y, rtol=1e-14, atol=1e-14)
    xs = jnp.stack([x, 2 * x + 1])
    _assert_close(
        jax.vmap(f, (0, None, None))(xs, scale, bias),
        jnp.stack([f(xs[0], scale, bias), f(xs[1], scale, bias)]),
        rtol=1e-14,
        atol=1e-14,
    )


@pytest.mark.parametrize("name", NORMS)
def test_norms_extreme_and_constant_inputs_are_finite(name):
    f = NORMS[name]
    x = jnp.array([[[1e4, 3.0, -1e4, 0.0]], [[2.0, 2.0, 2.0, 2.0]]]).transpose(0, 1, 2)
    x = jnp.concatenate([x, x[:, :, ::-1]], axis=1)  # (2, 2, 4); example 1 is constant
    s, b = jnp.ones(4), jnp.zeros(4)
    y = f(x, s, b)
    assert np.all(np.isfinite(y))
    np.testing.assert_array_equal(np.asarray(y[1]), np.zeros((2, 4)))
    # example 0 against the float64 NumPy oracle; float32 stats of ±1e4 data: a few ulps of
    # the normalized values (|y| <= 2)
    x0 = np.asarray(x[:1], np.float64)
    want = {
        "layer_norm": lambda: np_normalize(x0, (2,), 1e-5),
        "group_norm": lambda: np.concatenate(
            [np_normalize(x0[..., :2], (1, 2), 1e-5), np_normalize(x0[..., 2:], (1, 2), 1e-5)], -1
        ),
        "instance_norm": lambda: np_normalize(x0, (1,), 1e-5),
    }[name]()
    _assert_close(y[:1], want, rtol=0, atol=8 * 2 * float(jnp.finfo(jnp.float32).eps))
    g = jax.grad(lambda x: jnp.sum(f(x, s, b) * jnp.arange(16.0).reshape(2, 2, 4)))(x)
    assert np.all(np.isfinite(g))
    assert f(x.astype(jnp.bfloat16), s, b).dtype == jnp.bfloat16


def test_layer_group_instance_norm_errors():
    x = jnp.ones((2, 3, 4))
    with pytest.raises(ValueError, match="axis 3 is out of range"):
        layer_norm(x, axis=3)
    with pytest.raises(ValueError, match="axis must not repeat"):
        layer_norm(x, axis=(1, -2))
    with pytest.raises(ValueError, match="at least one axis"):
        layer_norm(x, axis=())
    with pytest.raises(TypeError, match="axis must be an int or a tuple of ints"):
        layer_norm(x, axis=1.0)
    with pytest.raises(ValueError, match=r"scale must have shape \(4,\)"):
        layer_norm(x, scale=jnp.ones(3))
    with pytest.raises(ValueError, match="x must have rank >= 1"):
        layer_norm(jnp.float32(1.0))
    with pytest.raises(TypeError, match="x must have a floating dtype"):
        layer_norm(jnp.ones(3, jnp.int32))
    with pytest.raises(ValueError, match=r"layer_norm: eps must lie in \(0.0, inf\), got 0"):
        layer_norm(x, eps=0)
    with pytest.raises(
        ValueError, match="num_groups=3 must be a positive divisor of the channels C=4"
    ):
        group_norm(x, 3)
    with pytest.raises(ValueError, match="num_groups=0 must be a positive divisor"):
        group_norm(x, 0)
    with pytest.raises(TypeError, match="num_groups must be an int"):
        group_norm(x, 2.0)
    with pytest.raises(ValueError, match="x must have rank >= 2"):
        group_norm(jnp.ones(4), 2)
    with pytest.raises(ValueError, match=r"bias must have shape \(4,\)"):
        group_norm(x, 2, bias=jnp.ones(2))
    with pytest.raises(ValueError, match="x must have rank >= 3"):
        instance_norm(jnp.ones((2, 4)))
    with pytest.raises(ValueError, match=r"scale must have shape \(4,\)"):
        instance_norm(x, scale=jnp.ones((1, 4)))


# --------------------------------------------------------------------------------------------
# min_max_scale, standardize


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("feature_range", [(0, 1), (-1.0, 2.0)])
def test_min_max_scale_matches_sklearn(key, x64, axis, feature_range):
    x = np.array(jax.random.normal(key, (6, 4), jnp.float64))
    x[:, 2] = 3.25  # a constant column
    got = min_max_scale(jnp.asarray(x), axis, feature_range)
    want = skp.minmax_scale(x, feature_range=feature_range, axis=axis)
    _assert_close(got, want)
    if axis == 0:
        np.testing.assert_array_equal(np.asarray(got[:, 2]), np.full(6, feature_range[0]))


def test_min_max_scale_seed_formula_and_axis_none(x64):
    x = jnp.array([[2.0, 4.0], [6.0, 10.0]])
    # seed: x' = (x - min)/(max - min), here over all elements: min 2, max 10
    _assert_close(min_max_scale(x, None), (np.asarray(x) - 2.0) / 8.0)


def test_min_max_scale_subgradient_splits_ties(x64):
    """Two entries tie for the minimum: each receives half of d y / d min (jnp.min's rule)."""
    x = jnp.array([1.0, 1.0, 2.0, 3.0])
    g = jax.grad(lambda x: min_max_scale(x, 0)[2])(x)
    # y2 = (x2 - mn)/(mx - mn); dy2/dmn = -1/2 + 1/4 = -1/4 (split in two), dy2/dx2 = 1/2,
    # dy2/dmx = -(x2 - mn)/(mx - mn)^2 = -1/4 (hand-derived at mn=1, mx=3, x2=2)
    _assert_close(g, [-1 / 8, -1 / 8, 1 / 2, -1 / 4], rtol=1e-15)


def test_min_max_scale_grads_jit_vmap(key, x64):
    x = jax.random.normal(key, (5, 3), jnp.float64)  # no ties almost surely
    f = lambda x: min_max_scale(x, 0, (-1.0, 1.0))  # noqa: E731
    check_grads(jax.jit(f), (x,), order=2, modes=["fwd", "rev"])
    _assert_close(jax.jit(f)(x), f(x), rtol=1e-14, atol=1e-14)
    _assert_close(jax.vmap(f, 1, 1)(x), f(x), rtol=1e-14, atol=1e-14)
    assert f(x).dtype == jnp.float64


@pytest.mark.parametrize("axis", [0, 1, None])
def test_standardize_matches_sklearn(key, x64, axis):
    x = np.asarray(3.0 + 2.0 * jax.random.normal(key, (8, 5), jnp.float64))
    got = standardize(jnp.asarray(x), axis)
    want = skp.scale(x.ravel()).reshape(x.shape) if axis is None else skp.scale(x, axis=axis)
    _assert_close(got, want)


def test_standardize_ddof_one_and_biased_default_differ(key, x64):
    x = np.asarray(jax.random.normal(key, (5, 3), jnp.float64))
    mu = x.mean(0)
    _assert_close(standardize(jnp.asarray(x), 0, ddof=1), (x - mu) / x.std(0, ddof=1))
    ratio = np.asarray(standardize(jnp.asarray(x), 0) / standardize(jnp.asarray(x), 0, ddof=1))
    _assert_close(ratio, np.full((5, 3), np.sqrt(5 / 4)))  # sqrt(m/(m-1)), m = 5


def test_standardize_constant_feature_is_zero_not_nan(x64):
    x = jnp.array([[0.1, 1.0], [0.1, 2.0], [0.1, 4.0]])  # 0.1 is not exact: mean has rounding
    z = standardize(x, 0)
    np.testing.assert_array_equal(np.asarray(z[:, 0]), np.zeros(3))
    _assert_close(skp.scale(np.asarray(x))[:, 0], np.zeros(3), atol=1e-12)  # sklearn: ~0
    g = jax.grad(lambda x: jnp.sum(standardize(x, 0) * jnp.arange(6.0).reshape(3, 2)))(x)
    assert np.all(np.isfinite(g))
    np.testing.assert_array_equal(np.asarray(g[:, 0]), np.zeros(3))
    big = standardize(jnp.array([[1e4], [-1e4], [3.0]]), 0)
    assert np.all(np.isfinite(big))
    _assert_close(big, skp.scale(np.array([[1e4], [-1e4], [3.0]])))


def test_standardize_grads_jit_vmap(key, x64):
    x = jax.random.normal(key, (5, 3), jnp.float64)
    f = lambda x: standardize(x, 0)  # noqa: E731
    check_grads(jax.jit(f), (x,), order=2, modes=["fwd", "rev"])
    _assert_close(jax.jit(f)(x), f(x), rtol=1e-14, atol=1e-14)
    _assert_close(jax.vmap(f, 1, 1)(x), f(x), rtol=1e-14, atol=1e-14)
    assert f(x).dtype == jnp.float64
    assert standardize(x.astype(jnp.float32), 0).dtype == jnp.float32


def test_scaling_errors():
    x = jnp.ones((3, 2))
    with pytest.raises(ValueError, match=r"feature_range must have lo < hi, got \(1, 1\)"):
        min_max_scale(x, 0, (1, 1))
    with pytest.raises(ValueError, match="feature_range must be a pair"):
        min_max_scale(x, 0, (0, 1, 2))
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        min_max_scale(x, 2)
    with pytest.raises(TypeError, match="x must have a floating dtype"):
        min_max_scale(jnp.ones((3, 2), jnp.int32), 0)
    with pytest.raises(ValueError, match=r"ddof must be one of \(0, 1\)"):
        standardize(x, 0, ddof=2)
    with pytest.raises(ValueError, match="ddof=1 needs more than 1 values per feature"):
        standardize(jnp.ones((1, 2)), 0, ddof=1)
    with pytest.raises(ValueError, match="axis must not repeat"):
        standardize(x, (0, 0))
    with pytest.raises(TypeError, match="x must have a floating dtype"):
        standardize(jnp.ones((3, 2), jnp.int32), 0)


def test_min_max_scale_bfloat16_scales_in_float32():
    # 16-bit inputs are scaled in float32 and rounded once: equal to the float32 result cast
    # to bfloat16 (scaling in bfloat16 would round (x - min) and the quotient separately).
    x = jnp.linspace(-3.0, 5.0, 97, dtype=jnp.float32).astype(jnp.bfloat16)
    got = min_max_scale(x, 0, (-1.0, 2.0))
    want = min_max_scale(x.astype(jnp.float32), 0, (-1.0, 2.0)).astype(jnp.bfloat16)
    assert got.dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(got, np.float32), np.asarray(want, np.float32))


# --------------------------------------------------------------------------------------------
# issue 11: no overflow where the result is representable, NaN propagates, empty inputs,
# any (mean, var) pair as state, no bias = zero bias, flags and numbers typed


def test_statistics_do_not_overflow_where_the_result_is_representable():
    big = jnp.array([[1e30, -1e30]], jnp.float32)  # variance 1e60 > float32 max
    one = np.array([[1.0, -1.0]], np.float32)  # (x - 0)/1e30, hand-derived
    # flax (and the plain formula) overflow: var = inf, y = 0 (the documented contrast)
    flax_y = nnx.LayerNorm(2, use_fast_variance=False, rngs=nnx.Rngs(0))(big)
    np.testing.assert_array_equal(np.asarray(flax_y), np.zeros((1, 2)))
    np.testing.assert_allclose(layer_norm(big), one, rtol=1e-6)
    np.testing.assert_allclose(standardize(big, 1), one, rtol=1e-6)
    np.testing.assert_allclose(group_norm(big, 1), one, rtol=1e-6)
    np.testing.assert_allclose(instance_norm(big.T[None]), one.T[None], rtol=1e-6)
    y, st = batch_norm(big.T, None, None, BatchNormState.create(1), train=True)
    np.testing.assert_allclose(y, one.T, rtol=1e-6)
    assert float(st.mean[0]) == 0.0 and float(st.var[0]) == np.inf  # 0.1·2e60: not representable
    # min-max: max - min = 6e38 overflows float32; the scaled span does not
    huge = jnp.array([3e38, -3e38, 0.0], jnp.float32)
    np.testing.assert_allclose(min_max_scale(huge, 0), [1.0, 0.0, 0.5], rtol=1e-6)


def test_large_inputs_keep_values_and_gradients_of_the_float64_oracle(key):
    """float32 at |x| ~ 1e30 against flax in float64 (where 1e60 is representable), with the
    same cotangent: values and gradients to float32 accuracy."""
    x32 = (1e30 * jax.random.normal(key, (2, 5))).astype(jnp.float32)
    ct = jax.random.normal(jax.random.fold_in(key, 1), (2, 5))
    g32 = jax.vjp(layer_norm, x32)[1](ct)[0]
    with jax.enable_x64(True):
        x64 = jnp.asarray(x32, jnp.float64)
        ref = nnx.LayerNorm(5, use_fast_variance=False, param_dtype=jnp.float64, rngs=nnx.Rngs(0))
        ref.epsilon = 1e-5
        y64, vjp = jax.vjp(ref, x64)
        g64 = vjp(jnp.asarray(ct, jnp.float64))[0]
        np.testing.assert_allclose(layer_norm(x32), y64, rtol=1e-5, atol=1e-6)
        # gradients scale as 1/|x| ~ 1e-30, still float32 normals
        np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-4 * float(jnp.max(jnp.abs(g64))))


def test_scaled_statistics_are_bit_for_bit_the_plain_formula_in_range(key):
    """Dividing by a power of two is exact: data with max|x| in [4, 8) (so s = 4) normalizes
    to exactly what the plain two-pass formula gives."""
    x = 4.0 + 3.9 * jax.random.uniform(key, (3, 6), minval=-1.0, maxval=1.0)
    mu = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(x - mu), axis=-1, keepdims=True)
    plain = (x - mu) * jax.lax.rsqrt(var + 1e-5)
    np.testing.assert_array_equal(np.asarray(layer_norm(x)), np.asarray(plain))


def test_nan_propagates_per_reduction():
    x = jnp.array([[1.0, float("nan"), 3.0], [1.0, 2.0, 4.0]])
    for y in (layer_norm(x), standardize(x, 1), min_max_scale(x, 1), group_norm(x, 1)):
        assert np.all(np.isnan(y[0])) and np.all(np.isfinite(y[1]))
    y, st = batch_norm(x.T, None, None, BatchNormState.create(2), train=True)  # channel 0 NaN
    assert np.all(np.isnan(y[:, 0])) and np.all(np.isfinite(y[:, 1]))
    assert np.isnan(st.mean[0]) and np.isnan(st.var[0]) and np.isfinite(st.var[1])


@pytest.mark.parametrize(
    "f",
    [
        lambda x: layer_norm(x),
        lambda x: group_norm(x, 1),
        lambda x: instance_norm(x[None]),
        lambda x: min_max_scale(x, 0),
        lambda x: standardize(x, 0),
    ],
    ids=["layer_norm", "group_norm", "instance_norm", "min_max_scale", "standardize"],
)
@pytest.mark.parametrize("shape", [(0, 3), (3, 0)])
def test_empty_input_gives_empty_output(f, shape):
    # before: "zero-size array to reduction operation min which has no identity"
    x = jnp.zeros(shape)
    y = f(x)
    assert y.size == 0 and y.dtype == x.dtype


def test_batch_norm_zero_channels_and_any_state_pair():
    # zero channels: empty output, empty statistics (before: ZeroDivisionError)
    y, st = batch_norm(jnp.zeros((4, 0)), None, None, BatchNormState.create(0), train=True)
    assert y.shape == (4, 0) and st.mean.shape == (0,)
    x = jnp.array([[1.0, 2.0], [3.0, 6.0], [5.0, 1.0]])
    mean, var = jnp.zeros(2), jnp.ones(2)
    want_y, want = batch_norm(x, None, None, BatchNormState(mean, var), train=True)
    for pair in ((mean, var), [mean, var]):  # before: AttributeError: 'tuple' ... 'mean'
        got_y, got = batch_norm(x, None, None, pair, train=True)
        assert type(got) is type(pair)  # the container type is kept: a stable scan carry
        np.testing.assert_array_equal(got_y, want_y)
        np.testing.assert_array_equal(got[0], want.mean)
        np.testing.assert_array_equal(got[1], want.var)
    final, _ = lax.scan(
        lambda s, _: (batch_norm(x, None, None, s, train=True)[1], None), (mean, var), None, 3
    )
    assert isinstance(final, tuple) and not isinstance(final, BatchNormState)
    w = jnp.ones((3, 2))
    np.testing.assert_array_equal(
        fold_batch_norm(w, None, (mean, var), None, None)[0],
        fold_batch_norm(w, None, BatchNormState(mean, var), None, None)[0],
    )


def test_fold_batch_norm_no_bias_is_zero_bias_bit_for_bit(key):
    w = jax.random.normal(key, (3, 3, 2, 4))
    st = BatchNormState(jnp.array([0.0, 1.0, -2.0, 0.5]), jnp.array([1.0, 2.0, 0.5, 4.0]))
    scale, bias = jnp.array([1.0, 2.0, 0.5, 1.5]), jnp.array([0.0, 0.1, -0.1, 1.0])
    for layout, wl in (("NHWC", w), ("NCHW", jnp.transpose(w, (3, 2, 0, 1)))):
        a = fold_batch_norm(wl, None, st, scale, bias, layout=layout)
        b = fold_batch_norm(wl, jnp.zeros(4), st, scale, bias, layout=layout)
        for u, v in zip(a, b, strict=True):
            np.testing.assert_array_equal(np.asarray(u), np.asarray(v))
            assert not np.any(np.signbit(np.asarray(a[1])[np.asarray(a[1]) == 0]))  # no -0.0


def test_norm_numbers_and_flags_are_typed():
    x = jnp.ones((4, 3))
    st = BatchNormState.create(3)
    with pytest.raises(TypeError, match="batch_norm: momentum must be a number, got '0.1'"):
        batch_norm(x, None, None, st, train=True, momentum="0.1")
    with pytest.raises(TypeError, match="batch_norm: eps must be a number, got True"):
        batch_norm(x, None, None, st, train=True, eps=True)
    with pytest.raises(TypeError, match="batch_norm: train must be a bool, got 'no'"):
        batch_norm(x, None, None, st, train="no")
    with pytest.raises(TypeError, match="batch_norm: scale must be an array, got 'a'"):
        batch_norm(x, "a", None, st, train=True)
    with pytest.raises(TypeError, match="standardize: ddof must be an int, got True"):
        standardize(x, 0, ddof=True)  # before: True == 1 passed the choice check
    with pytest.raises(TypeError, match="standardize: ddof must be an int, got 1.0"):
        standardize(x, 0, ddof=1.0)
    with pytest.raises(TypeError, match=r"min_max_scale: feature_range\[0\] must be a number"):
        min_max_scale(x, 0, ("0", 1))
    with pytest.raises(TypeError, match="fold_batch_norm: layout must be one of"):
        fold_batch_norm(jnp.ones((2, 3)), None, st, None, None, layout=None)
    with pytest.raises(TypeError, match="layer_norm: x must be an array, got None"):
        layer_norm(None)
