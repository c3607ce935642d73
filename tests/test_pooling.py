"""dlref.pooling against lax.reduce_window (+ the avg divisor), jnp, the NumPy oracles of
tests/oracles.py (PyTorch's loops), finite differences, and every jax transformation."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax import lax

from dlref.pooling import (
    avg_pool,
    avg_pool_backward,
    global_avg_pool,
    global_max_pool,
    max_pool,
    max_pool_backward,
)
from dlref.testing import assert_op_close, check_op_gradients, rel_err, tolerance
from dlref.testing.strategies import PoolConfig, arrays, pool_configs
from tests import oracles

F64 = tolerance("float64")


def _with_input(configs, **array_kw):
    """(config, x): x drawn by ``dlref.testing.strategies.arrays`` for the config's shape."""
    return configs.flatmap(
        lambda cfg: st.tuples(st.just(cfg), arrays(cfg.input_shape, np.float64, **array_kw))
    )


def _overhang(cfg: PoolConfig) -> tuple[int, ...]:
    """ceil_mode's extra right padding: how far the last window reaches past the declared
    padding (PyTorch's windows, ``cfg.output_shape``)."""
    return tuple(
        max(0, (o - 1) * s + d * (k - 1) + 1 - (n + lo + hi))
        for n, o, k, s, d, (lo, hi) in zip(
            cfg.input_shape[1:-1],
            cfg.output_shape[1:-1],
            cfg.window,
            cfg.stride,
            cfg.dilation,
            cfg.padding,
        )
    )


def lax_max_pool(x, cfg: PoolConfig):
    """``lax.reduce_window(max)``; ceil_mode is extra −∞ padding on the right."""
    pads = ((0, 0), *((lo, hi + e) for (lo, hi), e in zip(cfg.padding, _overhang(cfg))), (0, 0))
    dims, strides = (1, *cfg.window, 1), (1, *cfg.stride, 1)
    return lax.reduce_window(
        x, -jnp.inf, lax.max, dims, strides, pads, window_dilation=(1, *cfg.dilation, 1)
    )


def lax_avg_pool(x, cfg: PoolConfig):
    """``reduce_window(add) / divisor``; the divisor is the same window sum over ones padded
    with ones (padding counted) or zeros (not counted), and zeros over the ceil overhang."""
    dims, strides = (1, *cfg.window, 1), (1, *cfg.stride, 1)
    declared = ((0, 0), *cfg.padding, (0, 0))
    overhang = ((0, 0), *((0, e) for e in _overhang(cfg)), (0, 0))
    total = lax.reduce_window(jnp.pad(x, declared), 0.0, lax.add, dims, strides, overhang)
    fill = 1.0 if cfg.count_include_pad else 0.0
    ones = jnp.pad(jnp.pad(jnp.ones_like(x), declared, constant_values=fill), overhang)
    return total / lax.reduce_window(ones, 0.0, lax.add, dims, strides, "VALID")


def _pool(cfg: PoolConfig):
    op = max_pool if cfg.kind == "max" else avg_pool
    return jax.jit(functools.partial(op, window=cfg.window, **cfg.kwargs()))


def _oracle(cfg: PoolConfig, x, ct):
    if cfg.kind == "max":
        return oracles.max_pool(
            x, ct, cfg.window, cfg.stride, cfg.padding, cfg.dilation, cfg.ceil_mode
        )
    return oracles.avg_pool(
        x, ct, cfg.window, cfg.stride, cfg.padding, cfg.ceil_mode, cfg.count_include_pad
    )


def _backward(cfg: PoolConfig):
    op = max_pool_backward if cfg.kind == "max" else avg_pool_backward
    return jax.jit(functools.partial(op, window=cfg.window, **cfg.kwargs()))


# --------------------------------------------------------------------------------------------
# against lax.reduce_window: value, VJP and JVP (no ties: distinct inputs), ceil_mode included


@settings(max_examples=10)
@given(case=_with_input(pool_configs(), min_gap=1e-3))
def test_pools_match_lax_value_vjp_jvp(case):
    cfg, x = case
    with jax.enable_x64(True):
        x = jnp.asarray(x)
        ref = jax.jit(
            functools.partial(lax_max_pool if cfg.kind == "max" else lax_avg_pool, cfg=cfg)
        )
        # lax has no derivative of a max with window_dilation: values only, the oracle test
        # below checks those gradients
        dilated = cfg.kind == "max" and cfg.dilation != (1,) * cfg.nd
        modes = ("value",) if dilated else ("value", "vjp", "jvp")
        assert_op_close(_pool(cfg), ref, x, modes=modes)
        assert _pool(cfg)(x).dtype == jnp.float64


# --------------------------------------------------------------------------------------------
# against the NumPy oracles (PyTorch's loops): ties, dilation, ceil_mode, count_include_pad;
# the explicit backward rules equal autodiff of the forward


@settings(max_examples=10)
@given(case=_with_input(pool_configs(ranks=(1, 2))), data=st.data())
def test_pools_and_backward_rules_match_oracle_with_ties(case, data):
    cfg, x = case
    x = np.floor(x) % 3  # values in {0, 1, 2}: many ties
    ct = np.floor(data.draw(arrays(cfg.output_shape, np.float64))) + 5  # integers in [1, 8]
    want, want_grad = _oracle(cfg, x, ct)
    with jax.enable_x64(True):
        x, ct = jnp.asarray(x), jnp.asarray(ct)
        y, pullback = jax.vjp(_pool(cfg), x)
        (autodiff,) = pullback(ct)
        explicit = _backward(cfg)(x, ct)
    if cfg.kind == "max":  # integer-valued data and cotangents: every sum is exact
        np.testing.assert_array_equal(y, want)
        np.testing.assert_array_equal(autodiff, want_grad)
        np.testing.assert_array_equal(explicit, want_grad)
    else:
        for got, expected in ((y, want), (autodiff, want_grad), (explicit, want_grad)):
            assert rel_err(got, expected) <= F64


# --------------------------------------------------------------------------------------------
# finite differences, every transformation, nested


POOLS = {
    "max_pool": lambda x: max_pool(x, (2, 3), stride=(1, 2), padding=1, dilation=(2, 1)),
    "max_pool_ceil": lambda x: max_pool(x, 3, stride=2, padding=1, ceil_mode=True),
    "avg_pool": lambda x: avg_pool(
        x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False
    ),
    "global_max_pool": global_max_pool,
    "global_avg_pool": global_avg_pool,
}


def _distinct(shape, seed):
    """Distinct values 0.05 apart (no ties within 1e-4, the finite-difference step)."""
    n = int(np.prod(shape))
    perm = np.random.default_rng(seed).permutation(n)
    return jnp.asarray((perm - n / 2) * 0.05, jnp.float64).reshape(shape)


def test_check_grads_order_2_fwd_and_rev(x64, seed):
    # all of them at once (one compiled program per derivative), inputs without ties
    pools = jax.jit(lambda x: {name: f(x) for name, f in POOLS.items() if name != "max_pool_ceil"})
    check_op_gradients(pools, _distinct((1, 4, 3, 2), seed), order=2)


def test_check_grads_order_3(x64, seed):
    # the custom rule nests: a small max pool to third order
    f = lambda x: max_pool(x, 2, stride=1, padding=1)  # noqa: E731
    check_op_gradients(jax.jit(f), _distinct((1, 3, 1), seed), order=3)


@pytest.mark.parametrize("name", ["max_pool", "avg_pool", "global_max_pool"])
def test_every_transformation_agrees(name, x64, seed):
    f = POOLS[name]
    x = _distinct((1, 4, 3, 1), seed)
    t = _distinct(x.shape, seed + 1) / 7  # a tangent
    y = jax.jit(f)(x)
    ct = _distinct(y.shape, seed + 2) / 7  # a cotangent
    # vmap over an extra leading axis against a Python loop, of the op and of its gradient
    xs = jnp.stack([x, -x, 2 * x])
    g = jax.jit(jax.grad(lambda x: jnp.vdot(f(x), ct)))
    vf, vg = jax.jit(jax.vmap(f)), jax.jit(jax.vmap(g))
    assert rel_err(vf(xs), jnp.stack([jax.jit(f)(xi) for xi in xs])) <= F64
    assert rel_err(vg(xs), jnp.stack([g(xi) for xi in xs])) <= F64
    # forward and reverse mode are one linear map: <ct, J t> = <J^T ct, t>, = linearize, = J
    (vjp,) = jax.jit(lambda x, ct: jax.vjp(f, x)[1](ct))(x, ct)
    jvp = jax.jit(lambda x, t: jax.jvp(f, (x,), (t,))[1])(x, t)
    assert abs(jnp.vdot(ct, jvp) - jnp.vdot(vjp, t)) <= F64 * abs(jnp.vdot(ct, jvp))
    assert rel_err(jax.linearize(f, x)[1](t), jvp) <= F64
    jf, jr = jax.jit(jax.jacfwd(f))(x), jax.jit(jax.jacrev(f))(x)
    assert rel_err(jf, jr) <= F64
    assert rel_err(jnp.tensordot(jf, t, x.ndim), jvp) <= F64
    # order 2: the ops are piecewise linear (f'' = 0), so the Hessian of ½|f|² is JᵀJ,
    # by forward-over-reverse (hessian) and forward-over-reverse on a vector (jvp of grad)
    half_sq = lambda x: 0.5 * jnp.sum(f(x) ** 2)  # noqa: E731
    jmat = jr.reshape(y.size, x.size)
    want = (jmat.T @ jmat).reshape(x.shape + x.shape)
    assert rel_err(jax.jit(jax.hessian(half_sq))(x), want) <= F64
    hvp = jax.jit(lambda x, t: jax.jvp(jax.grad(half_sq), (x,), (t,))[1])(x, t)
    assert rel_err(hvp, jnp.tensordot(want, t, x.ndim)) <= F64


# --------------------------------------------------------------------------------------------
# subgradients at ties, NaN, hand-computed PyTorch rules


def grad_of_sum(f):
    """``jax.grad`` of ``sum(f(x))``, compiled once (eager autodiff of a tap loop is slow)."""
    return jax.jit(jax.grad(lambda x: jnp.sum(f(x))))


def test_hand_computed_pytorch_rules():
    # PyTorch MaxPool1d docs rule: n=5, k=2, s=2, ceil_mode -> 3 windows [1,3] [3,2] [5]
    x = jnp.array([1.0, 3.0, 3.0, 2.0, 5.0]).reshape(1, 5, 1)
    np.testing.assert_array_equal(max_pool(x, 2, ceil_mode=True)[0, :, 0], [3, 3, 5])
    np.testing.assert_array_equal(max_pool(x, 2)[0, :, 0], [3, 3])
    # AvgPool1d(3, stride=2, padding=1, ceil_mode=True) on [1,2,3,4] (worked by hand from
    # PyTorch's C++ loop): windows start at -1, 1, 3 -> [pad,1,2] [2,3,4] [4,pad,overhang].
    # divisors: 3, 3, and min(3+3, 4+1) - 3 = 2 (declared pad counted, overhang not)
    x = jnp.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 4, 1)
    y = avg_pool(x, 3, stride=2, padding=1, ceil_mode=True)[0, :, 0]
    np.testing.assert_allclose(y, [3 / 3, 9 / 3, 4 / 2])
    y = avg_pool(x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)[0, :, 0]
    np.testing.assert_allclose(y, [3 / 2, 9 / 3, 4 / 1])
    # a window that would start in the right padding is dropped: n=3, k=2, s=2, p=1:
    # ceil((3+2-2)/2)+1 = 3 windows, the third starts at 4 - 1 = 3 >= n -> dropped -> 2
    x = jnp.array([1.0, 2.0, 3.0]).reshape(1, 3, 1)
    assert avg_pool(x, 2, padding=1, ceil_mode=True).shape == (1, 2, 1)
    assert max_pool(x, 2, padding=1, ceil_mode=True).shape == (1, 2, 1)


def test_avg_gradient_is_spread_over_counted_elements():
    # [pad,1] [2,3] [4,pad]: count_include_pad=False divides the edge windows by 1, True by 2
    x = jnp.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 4, 1)
    g = grad_of_sum(lambda x: avg_pool(x, 2, padding=1, count_include_pad=False))(x)
    np.testing.assert_array_equal(g[0, :, 0], [1.0, 0.5, 0.5, 1.0])
    g = grad_of_sum(lambda x: avg_pool(x, 2, padding=1))(x)
    np.testing.assert_array_equal(g[0, :, 0], [0.5, 0.5, 0.5, 0.5])
    ct = jnp.ones((1, 3, 1))
    np.testing.assert_array_equal(avg_pool_backward(x, ct, 2, padding=1)[0, :, 0], g[0, :, 0])


def test_first_max_wins_on_ties_in_both_modes():
    # windows [1,3,3] [3,3,2] [3,2,5] (stride 1): the 3 at index 1 is the first max of the
    # first two windows, the 5 at index 4 of the third
    x = jnp.array([1.0, 3.0, 3.0, 2.0, 5.0]).reshape(1, 5, 1)
    f = lambda x: max_pool(x, 3, stride=1)  # noqa: E731
    np.testing.assert_array_equal(grad_of_sum(f)(x)[0, :, 0], [0, 2, 0, 0, 1])
    jac = jax.jit(jax.jacfwd(f))(x)[
        0, :, 0, 0, :, 0
    ]  # rows: windows, columns: inputs (forward mode)
    np.testing.assert_array_equal(jac, [[0, 1, 0, 0, 0], [0, 1, 0, 0, 0], [0, 0, 0, 0, 1]])
    ct = jnp.array([1.0, 10.0, 100.0]).reshape(1, 3, 1)
    np.testing.assert_array_equal(
        max_pool_backward(x, ct, 3, stride=1)[0, :, 0], [0, 11, 0, 0, 100]
    )
    # 2x2 windows with stride 1 over a plateau: each window's top-left element
    g = grad_of_sum(lambda x: max_pool(x, 2, stride=1))(jnp.ones((1, 3, 3, 1)))[0, :, :, 0]
    np.testing.assert_array_equal(g, [[1, 1, 0], [1, 1, 0], [0, 0, 0]])
    # global: the first of the tied maxima; jnp.max splits the gradient instead
    x = jnp.array([1.0, 4.0, 4.0]).reshape(1, 3, 1)
    np.testing.assert_array_equal(grad_of_sum(global_max_pool)(x).ravel(), [0, 1, 0])
    np.testing.assert_array_equal(jax.jit(jax.jacfwd(global_max_pool))(x).ravel(), [0, 1, 0])
    np.testing.assert_array_equal(jax.grad(lambda x: jnp.max(x))(x).ravel(), [0, 0.5, 0.5])


def test_all_minus_inf_window_sends_its_gradient_to_its_first_input_element():
    # padding is -inf too, yet never receives the gradient: windows [pad, x0], [x1, x2]
    # (PyTorch's loop starts at the first input element)
    x = jnp.full((1, 3, 1), -jnp.inf)
    y, g = jax.jit(jax.value_and_grad(lambda x: max_pool(x, 2, padding=1).sum()))(x)
    assert y == -jnp.inf
    np.testing.assert_array_equal(g.ravel(), [1, 1, 0])


def test_nan_propagates_and_its_first_occurrence_takes_the_gradient():
    nan = jnp.nan
    # issue 11: [1, nan] used to pool to 1.0 with gradient [1, 0]
    x = jnp.array([1.0, nan]).reshape(1, 2, 1)
    assert jnp.isnan(max_pool(x, 2)).all() and jnp.isnan(global_max_pool(x)).all()
    cfg = PoolConfig(
        kind="max",
        input_shape=(1, 2, 1),
        window=(2,),
        stride=(2,),
        padding=((0, 0),),
        dilation=(1,),
        ceil_mode=False,
        count_include_pad=True,
    )
    assert jnp.isnan(lax_max_pool(x, cfg)).all()  # as lax.reduce_window does
    for f in (lambda x: max_pool(x, 2), global_max_pool):
        np.testing.assert_array_equal(grad_of_sum(f)(x).ravel(), [0, 1])
    # two NaNs: the first one (row-major) takes the gradient, in both modes
    x = jnp.array([2.0, nan, 3.0, nan]).reshape(1, 4, 1)
    for f in (lambda x: max_pool(x, 4), global_max_pool):
        np.testing.assert_array_equal(grad_of_sum(f)(x).ravel(), [0, 1, 0, 0])
        np.testing.assert_array_equal(jax.jit(jax.jacfwd(f))(x).ravel(), [0, 1, 0, 0])
    ct = jnp.ones((1, 1, 1))
    np.testing.assert_array_equal(max_pool_backward(x, ct, 4).ravel(), [0, 1, 0, 0])
    # average: a NaN reaches every window it is in, and no other
    y = avg_pool(jnp.array([1.0, nan, 3.0, 4.0]).reshape(1, 4, 1), 2)
    assert jnp.isnan(y[0, 0, 0]) and y[0, 1, 0] == 3.5


# --------------------------------------------------------------------------------------------
# dtypes, extremes, empty inputs


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_low_precision_sums_in_float32(dtype):
    # 3-wide windows of [1, 2^-8, 2^-8]: the sum 1 + 2^-7 is exact in both dtypes, a running
    # bf16 sum loses each 2^-8 (1 + 2^-8 rounds to 1)
    x = jnp.array([1.0, 2.0**-8, 2.0**-8] * 2, dtype).reshape(1, 6, 1)
    y = avg_pool(x, 3, count_include_pad=True)
    assert y.dtype == dtype
    assert float(y[0, 0, 0]) == float(jnp.asarray((1 + 2.0**-7) / 3, dtype))
    assert global_avg_pool(x).dtype == dtype
    assert float(global_avg_pool(x)[0, 0]) == float(jnp.asarray((1 + 2.0**-7) / 3, dtype))
    for f in (lambda x: max_pool(x, 2), lambda x: avg_pool(x, 2), global_max_pool):
        assert f(x).dtype == dtype
        assert (
            jax.eval_shape(jax.grad(lambda x, f=f: f(x).astype(jnp.float32).sum()), x).dtype
            == dtype
        )


def test_float64_stays_float64(x64):
    x = jnp.ones((1, 4, 4, 1), jnp.float64)
    for f in (lambda x: max_pool(x, 2), lambda x: avg_pool(x, 2), global_max_pool, global_avg_pool):
        assert jax.eval_shape(f, x).dtype == jnp.float64
        assert jax.eval_shape(jax.grad(lambda x, f=f: f(x).sum()), x).dtype == jnp.float64
        assert jax.eval_shape(lambda x, f=f: jax.jvp(f, (x,), (x,))[1], x).dtype == jnp.float64


def test_extreme_finite_inputs():
    x = jnp.array([1e4, -1e4, 3e38, -3e38]).reshape(1, 4, 1)
    for f in (lambda x: max_pool(x, 2, padding=1), lambda x: avg_pool(x, 2, stride=1)):
        y, g = jax.jit(jax.value_and_grad(lambda x, f=f: f(x)[0, 0, 0]))(x)
        assert np.isfinite(y) and np.all(np.isfinite(g))


def test_empty_batch_or_channels_give_empty_outputs_empty_space_raises():
    for shape, out in (((0, 5, 2), (0, 2)), ((2, 5, 0), (2, 0))):
        x = jnp.ones(shape)
        assert max_pool(x, 2).shape == avg_pool(x, 2).shape == (*shape[:1], 2, shape[-1])
        assert global_max_pool(x).shape == global_avg_pool(x).shape == out
        assert (
            grad_of_sum(lambda x: max_pool(x, 2).sum() + global_max_pool(x).sum())(x).shape == shape
        )
    for pool in (global_max_pool, global_avg_pool):  # issue 11: batch 0 was a ZeroDivisionError
        with pytest.raises(ValueError, match=f"{pool.__name__}: x must have at least one spatial"):
            pool(jnp.ones((1, 0, 2)))
    for pool in (max_pool, avg_pool):
        with pytest.raises(ValueError, match=f"{pool.__name__}: x must have at least one element"):
            pool(jnp.ones((1, 4, 0, 2)), 1)


@pytest.mark.parametrize("nd", [1, 3])  # rank 2: every other test
def test_global_pools_match_jnp(nd, x64, seed):
    x = _distinct((2, *(3,) * nd, 4), seed)
    axes = tuple(range(1, nd + 1))
    pools = jax.jit(lambda x: (global_max_pool(x), global_avg_pool(x)))
    jnp_pools = jax.jit(lambda x: (jnp.max(x, axes), jnp.mean(x, axes)))
    assert_op_close(pools, jnp_pools, x, key=seed)


# --------------------------------------------------------------------------------------------
# bad input

X = jnp.ones((1, 5, 5, 2))
BAD_POOL = [
    (dict(window=0), ValueError, "window must be >= 1"),
    (dict(window=(2, 2, 2)), ValueError, r"x \(N, 3 spatial dims, C\) must have rank 5"),
    (dict(window=(2,) * 4), ValueError, "window must be an int or a tuple of 1-3 ints"),
    (dict(window=6), ValueError, "larger than the padded input"),
    (dict(window=3, stride=0), ValueError, "stride must be >= 1"),
    (dict(window=2, padding=-1), ValueError, "padding must be non-negative"),
    (dict(window=2, padding=2), ValueError, r"at most half the window"),
    (dict(window=(3, 3), padding=((1, 2), (0, 0))), ValueError, r"at most half the window"),
    (dict(window=2, padding="FULL"), ValueError, "padding must be an int, a tuple, 'VALID'"),
    # sizes are ints, flags are bools (issue 11: count_include_pad="no" counted the padding)
    (dict(window=2.0), TypeError, "window must be an int, got 2.0"),
    (dict(window=True), TypeError, "window must be an int, got True"),
    (dict(window="2"), TypeError, "window must be an int, got '2'"),
    (dict(window=(2, 2.0)), TypeError, "window must contain Python ints"),
    (dict(window=2, stride=1.0), TypeError, "stride must be an int or a tuple"),
    (dict(window=2, stride=(1, True)), TypeError, "stride must contain Python ints"),
    (dict(window=2, padding=1.0), TypeError, "padding must be an int, a tuple or a string"),
    (dict(window=2, ceil_mode="no"), TypeError, "ceil_mode must be a bool, got 'no'"),
    (dict(window=2, ceil_mode=1), TypeError, "ceil_mode must be a bool, got 1"),
]


@pytest.mark.parametrize("kwargs,exc,match", BAD_POOL)
@pytest.mark.parametrize("pool", [max_pool, avg_pool, max_pool_backward, avg_pool_backward])
def test_pool_bad_input(pool, kwargs, exc, match):
    kwargs = dict(kwargs)
    window = kwargs.pop("window")
    args = (X,) if pool in (max_pool, avg_pool) else (X, jnp.ones((1, 2, 2, 2)))
    with pytest.raises(exc, match=f"^{pool.__name__}: .*{match}"):
        pool(*args, window, **kwargs)


@pytest.mark.parametrize("pool", [avg_pool, avg_pool_backward])
def test_count_include_pad_must_be_a_bool(pool):
    args = (X,) if pool is avg_pool else (X, jnp.ones((1, 2, 2, 2)))
    for flag in ("no", 0, None):
        with pytest.raises(TypeError, match=f"^{pool.__name__}: count_include_pad must be a bool"):
            pool(*args, 2, count_include_pad=flag)
    with pytest.raises(TypeError, match="max_pool: .*dilation"):
        max_pool(X, 2, dilation=1.5)


def test_max_pool_bad_dilation_and_empty_window():
    with pytest.raises(ValueError, match="max_pool: dilation must be >= 1"):
        max_pool(X, 2, dilation=0)
    with pytest.raises(ValueError, match=r"max_pool: .*larger than the padded input"):
        max_pool(X, 2, dilation=5)
    # taps at -1 and 3 of a 3-long input padded (1, 1): both in the padding
    with pytest.raises(ValueError, match="max_pool: .*covers only padding"):
        max_pool(jnp.ones((1, 3, 1)), 2, stride=1, padding=1, dilation=4)


def test_backward_bad_cotangent():
    for f in (max_pool_backward, avg_pool_backward):
        with pytest.raises(
            ValueError,
            match=rf"^{f.__name__}: ct must have the pooled output's "
            r"shape \(1, 2, 2, 2\), got \(1, 2, 2\)",
        ):
            f(X, jnp.ones((1, 2, 2)), 2)
        with pytest.raises(TypeError, match=f"^{f.__name__}: ct must have a floating dtype"):
            f(X, jnp.ones((1, 2, 2, 2), jnp.int32), 2)


def test_pool_bad_rank_and_dtype():
    for pool in (max_pool, avg_pool):
        with pytest.raises(ValueError, match=f"{pool.__name__}: .*must have rank 3 or 4 or 5"):
            pool(jnp.ones((5, 5)), 2)
        with pytest.raises(TypeError, match=f"{pool.__name__}: x must have a floating dtype"):
            pool(jnp.ones((1, 5, 5, 1), jnp.int32), 2)
    for pool in (global_max_pool, global_avg_pool):
        with pytest.raises(ValueError, match=f"{pool.__name__}: .*must have rank 3 or 4 or 5"):
            pool(jnp.ones((5, 5)))
        with pytest.raises(TypeError, match=f"{pool.__name__}: x must have a floating dtype"):
            pool(jnp.ones((1, 5, 1), jnp.int32))
