"""dlref.pooling against lax.reduce_window (+ the avg divisor), its jax.grad, and NumPy oracles."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax import lax
from jax.test_util import check_grads

from dlref.pooling import avg_pool, global_avg_pool, global_max_pool, max_pool
from tests import oracles


def run_fast(f, *args):
    """``jax.jit(f)(*args)``: one compiled program per drawn configuration."""
    return jax.jit(f)(*args)


def value_and_vjp(f, x, ct):
    def both(x, ct):
        y, pullback = jax.vjp(f, x)
        return y, pullback(ct)[0]

    return run_fast(both, x, ct)


def normal(seed, shape, dtype=np.float64):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape).astype(dtype))


def assert_close(a, b, rtol):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * max(float(np.max(np.abs(b))), 1.0))


@st.composite
def pool_configs(draw, *, ranks=(1, 2, 3), dilation=False, ceil=True, forms=("int", "pairs")):
    """Rank, window, stride (None = window), padding within PyTorch's k // 2, sizes, seed."""
    nd = draw(st.sampled_from(ranks))
    kmax = 3 if nd < 3 else 2
    window = tuple(draw(st.integers(1, kmax)) for _ in range(nd))
    stride = draw(st.one_of(st.none(), st.tuples(*(st.integers(1, 3) for _ in range(nd)))))
    dil = tuple(draw(st.integers(1, 2)) if dilation else 1 for _ in range(nd))
    pads = tuple((draw(st.integers(0, k // 2)), draw(st.integers(0, k // 2))) for k in window)
    form = draw(st.sampled_from(forms))
    padding = pads[0][0] if form == "int" else tuple(pads) if form == "pairs" else form
    if form == "int":
        pads = ((min(pads[0][0], min(window) // 2),) * 2,) * nd
        padding = pads[0][0]
    sizes = tuple(draw(st.integers(d * (k - 1) + 1, d * (k - 1) + 4)) for k, d in zip(window, dil))
    return dict(
        nd=nd,
        window=window,
        stride=stride,
        dilation=dil,
        pads=pads,
        padding=padding,
        sizes=sizes,
        ceil_mode=draw(st.booleans()) if ceil else False,
        batch=draw(st.integers(1, 2)),
        channels=draw(st.integers(1, 2)),
        seed=draw(st.integers(0, 2**16)),
    )


def lax_max_pool(x, window, stride, pads, dilation):
    return lax.reduce_window(
        x,
        -jnp.inf,
        lax.max,
        (1, *window, 1),
        (1, *stride, 1),
        ((0, 0), *pads, (0, 0)),
        window_dilation=(1, *dilation, 1),
    )


def lax_avg_pool(x, window, stride, pads, count_include_pad):
    """reduce_window sum / divisor; the divisor is the same reduce_window over ones padded with
    ones (padding counted) or zeros (not counted) — floor mode, so no ceil overhang."""
    dims, strides, p = (1, *window, 1), (1, *stride, 1), ((0, 0), *pads, (0, 0))
    total = lax.reduce_window(x, 0.0, lax.add, dims, strides, p)
    ones = jnp.pad(jnp.ones(x.shape, x.dtype), p, constant_values=1.0 if count_include_pad else 0)
    count = lax.reduce_window(ones, 0.0, lax.add, dims, strides, "VALID")
    return total / count


# --------------------------------------------------------------------------------------------
# against lax.reduce_window and its jax.grad (floor mode; no ties: continuous random inputs)


@settings(max_examples=20)
@given(cfg=pool_configs(dilation=True, ceil=False))
def test_max_pool_matches_lax_values_and_grad(cfg):
    with jax.enable_x64(True):
        x = normal(cfg["seed"], (cfg["batch"], *cfg["sizes"], cfg["channels"]))
        stride = cfg["stride"] or cfg["window"]
        f = functools.partial(
            max_pool,
            window=cfg["window"],
            stride=cfg["stride"],
            padding=cfg["padding"],
            dilation=cfg["dilation"],
        )
        ref = functools.partial(
            lax_max_pool,
            window=cfg["window"],
            stride=stride,
            pads=cfg["pads"],
            dilation=cfg["dilation"],
        )
        want = jax.eval_shape(ref, x)
        ct = normal(cfg["seed"] + 1, want.shape)
        if cfg["dilation"] == (1,) * cfg["nd"]:
            got, g_got = value_and_vjp(f, x, ct)
            want, g_want = value_and_vjp(ref, x, ct)
            assert_close(g_got, g_want, 1e-14)
        else:  # lax has no gradient with window_dilation: values here, the oracle checks grads
            got, want = run_fast(f, x), run_fast(ref, x)
        assert got.dtype == jnp.float64
        assert_close(got, want, 1e-14)


@settings(max_examples=20)
@given(cfg=pool_configs(ceil=False), count_include_pad=st.booleans())
def test_avg_pool_matches_lax_values_and_grad(cfg, count_include_pad):
    with jax.enable_x64(True):
        x = normal(cfg["seed"], (cfg["batch"], *cfg["sizes"], cfg["channels"]))
        stride = cfg["stride"] or cfg["window"]
        f = functools.partial(
            avg_pool,
            window=cfg["window"],
            stride=cfg["stride"],
            padding=cfg["padding"],
            count_include_pad=count_include_pad,
        )
        ref = functools.partial(
            lax_avg_pool,
            window=cfg["window"],
            stride=stride,
            pads=cfg["pads"],
            count_include_pad=count_include_pad,
        )
        ct = normal(cfg["seed"] + 1, jax.eval_shape(ref, x).shape)
        got, g_got = value_and_vjp(f, x, ct)
        want, g_want = value_and_vjp(ref, x, ct)
        assert_close(got, want, 1e-13)
        assert_close(g_got, g_want, 1e-13)


# --------------------------------------------------------------------------------------------
# against the NumPy oracle (PyTorch's loops): ties, dilation, ceil_mode, count_include_pad


@settings(max_examples=20)
@given(cfg=pool_configs(ranks=(1, 2), dilation=True))
def test_max_pool_matches_oracle_with_ties(cfg):
    with jax.enable_x64(True):
        rng = np.random.default_rng(cfg["seed"])
        shape = (cfg["batch"], *cfg["sizes"], cfg["channels"])
        x = jnp.asarray(rng.integers(0, 3, shape).astype(np.float64))  # many ties
        stride = cfg["stride"] or cfg["window"]
        f = functools.partial(
            max_pool,
            window=cfg["window"],
            stride=cfg["stride"],
            padding=cfg["padding"],
            dilation=cfg["dilation"],
            ceil_mode=cfg["ceil_mode"],
        )
        want, _ = oracles.max_pool(
            x, None, cfg["window"], stride, cfg["pads"], cfg["dilation"], cfg["ceil_mode"]
        )
        ct = jnp.asarray(rng.integers(1, 5, want.shape).astype(np.float64))
        _, want_grad = oracles.max_pool(
            x, ct, cfg["window"], stride, cfg["pads"], cfg["dilation"], cfg["ceil_mode"]
        )
        got, g_got = value_and_vjp(f, x, ct)
        np.testing.assert_array_equal(got, want)  # integer-valued: exact
        np.testing.assert_array_equal(g_got, want_grad)


@settings(max_examples=20)
@given(cfg=pool_configs(ranks=(1, 2)), count_include_pad=st.booleans())
def test_avg_pool_matches_oracle_ceil_mode_and_divisor(cfg, count_include_pad):
    with jax.enable_x64(True):
        x = normal(cfg["seed"], (cfg["batch"], *cfg["sizes"], cfg["channels"]))
        stride = cfg["stride"] or cfg["window"]
        f = functools.partial(
            avg_pool,
            window=cfg["window"],
            stride=cfg["stride"],
            padding=cfg["padding"],
            ceil_mode=cfg["ceil_mode"],
            count_include_pad=count_include_pad,
        )
        want, _ = oracles.avg_pool(
            x, None, cfg["window"], stride, cfg["pads"], cfg["ceil_mode"], count_include_pad
        )
        ct = normal(cfg["seed"] + 1, want.shape)
        _, want_grad = oracles.avg_pool(
            x, ct, cfg["window"], stride, cfg["pads"], cfg["ceil_mode"], count_include_pad
        )
        got, g_got = value_and_vjp(f, x, ct)
        assert_close(got, want, 1e-13)
        assert_close(g_got, want_grad, 1e-13)


def test_hand_computed_pytorch_rules():
    # PyTorch MaxPool1d docs rule: n=5, k=2, s=2, ceil_mode -> 3 windows [1,3] [3,2] [5]
    x = jnp.array([1.0, 3.0, 3.0, 2.0, 5.0]).reshape(1, 5, 1)
    np.testing.assert_array_equal(max_pool(x, 2, ceil_mode=True)[0, :, 0], [3, 3, 5])
    np.testing.assert_array_equal(max_pool(x, 2)[0, :, 0], [3, 3])
    # first max gets the gradient: windows [1,3,3] [3,3,2] [3,2,5] -> 3 at 1, 3 at 1, 5 at 4
    g = jax.grad(lambda x: max_pool(x, 3, stride=1).sum())(x)[0, :, 0]
    np.testing.assert_array_equal(g, [0, 2, 0, 0, 1])
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
    g = jax.grad(lambda x: avg_pool(x, 2, padding=1, count_include_pad=False).sum())(x)
    np.testing.assert_allclose(g[0, :, 0], [1.0, 0.5, 0.5, 1.0])
    g = jax.grad(lambda x: avg_pool(x, 2, padding=1).sum())(x)
    np.testing.assert_allclose(g[0, :, 0], [0.5, 0.5, 0.5, 0.5])


def test_lax_max_gradient_on_ties_is_backend_defined_dlref_takes_the_first():
    # 2x2 windows with stride 1 over a plateau: dlref sends each window's cotangent to its
    # first (top-left) maximal element, as PyTorch does.
    x = jnp.ones((1, 3, 3, 1))
    g = jax.grad(lambda x: max_pool(x, 2, stride=1).sum())(x)[0, :, :, 0]
    np.testing.assert_array_equal(g, [[1, 1, 0], [1, 1, 0], [0, 0, 0]])


# --------------------------------------------------------------------------------------------
# second order, jit / vmap, dtypes, extremes


def test_check_grads_order_2(x64, seed):
    # custom_vjp has no JVP rule, so only reverse mode; inputs without ties (away from kinks)
    x = normal(seed, (1, 5, 4, 2))
    check_grads(lambda x: max_pool(x, (2, 2), stride=1, padding=1), (x,), order=2, modes=["rev"])
    check_grads(
        lambda x: avg_pool(x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
        (x,),
        order=2,
        modes=["rev"],
    )
    check_grads(global_max_pool, (x,), order=2, modes=["rev"])
    check_grads(global_avg_pool, (x,), order=2, modes=["fwd", "rev"])


def test_jit_and_vmap_agree_with_eager(seed):
    x = normal(seed, (3, 2, 7, 6, 3), np.float32)
    for f in (
        functools.partial(max_pool, window=3, stride=2, padding=1, dilation=(1, 2)),
        functools.partial(avg_pool, window=(3, 2), stride=2, padding=1, ceil_mode=True),
        global_max_pool,
        global_avg_pool,
    ):
        eager = jnp.stack([f(xi) for xi in x])
        np.testing.assert_allclose(jax.jit(f)(x[0]), eager[0], rtol=1e-6)
        np.testing.assert_allclose(jax.vmap(f)(x), eager, rtol=1e-6)
        g = jax.grad(lambda x, f=f: f(x).sum())
        np.testing.assert_allclose(jax.vmap(g)(x), jnp.stack([g(xi) for xi in x]), rtol=1e-6)


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
        assert jax.grad(lambda x, f=f: f(x).astype(jnp.float32).sum())(x).dtype == dtype


def test_float64_stays_float64(x64):
    x = jnp.ones((1, 4, 4, 1), jnp.float64)
    for f in (lambda x: max_pool(x, 2), lambda x: avg_pool(x, 2), global_max_pool, global_avg_pool):
        assert f(x).dtype == jnp.float64
        assert jax.grad(lambda x, f=f: f(x).sum())(x).dtype == jnp.float64


def test_extreme_finite_inputs():
    x = jnp.array([1e4, -1e4, 3e38, -3e38]).reshape(1, 4, 1)
    for f in (lambda x: max_pool(x, 2, padding=1), lambda x: avg_pool(x, 2, stride=1)):
        y, g = jax.value_and_grad(lambda x, f=f: f(x)[0, 0, 0])(x)
        assert np.isfinite(y) and np.all(np.isfinite(g))


# --------------------------------------------------------------------------------------------
# global pools


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_global_pools_match_jnp(nd, x64, seed):
    x = normal(seed, (2, *(3,) * nd, 4))
    axes = tuple(range(1, nd + 1))
    ct = normal(seed + 1, (2, 4))
    for f, ref in (
        (global_max_pool, lambda x: jnp.max(x, axes)),
        (global_avg_pool, lambda x: jnp.mean(x, axes)),
    ):
        got, g_got = value_and_vjp(f, x, ct)
        want, g_want = value_and_vjp(ref, x, ct)
        assert_close(got, want, 1e-14)
        assert_close(g_got, g_want, 1e-14)


def test_global_max_pool_tie_goes_to_the_first_jnp_max_splits_it():
    x = jnp.array([1.0, 4.0, 4.0]).reshape(1, 3, 1)
    np.testing.assert_array_equal(
        jax.grad(lambda x: global_max_pool(x).sum())(x).ravel(), [0, 1, 0]
    )
    np.testing.assert_array_equal(jax.grad(lambda x: jnp.max(x))(x).ravel(), [0, 0.5, 0.5])


# --------------------------------------------------------------------------------------------
# bad input

X = jnp.ones((1, 5, 5, 2))
BAD_POOL = [
    (dict(window=0), "window must be >= 1"),
    (dict(window=(2, 2, 2)), r"x \(N, 3 spatial dims, C\) must have rank 5"),
    (dict(window=(2,) * 4), "window must be an int or a tuple of 1-3 ints"),
    (dict(window=6), "larger than the padded input"),
    (dict(window=3, stride=0), "stride must be >= 1"),
    (dict(window=2, padding=-1), "padding must be non-negative"),
    (dict(window=2, padding=2), r"at most half the window"),
    (dict(window=(3, 3), padding=((1, 2), (0, 0))), r"at most half the window"),
    (dict(window=2, padding="FULL"), "padding must be an int, a tuple, 'VALID' or 'SAME'"),
]


@pytest.mark.parametrize("kwargs,match", BAD_POOL)
@pytest.mark.parametrize("pool", [max_pool, avg_pool])
def test_pool_bad_input(pool, kwargs, match):
    kwargs = dict(kwargs)
    window = kwargs.pop("window")
    with pytest.raises(ValueError, match=match):
        pool(X, window, **kwargs)


def test_max_pool_bad_dilation_and_empty_window():
    with pytest.raises(ValueError, match="dilation must be >= 1"):
        max_pool(X, 2, dilation=0)
    with pytest.raises(ValueError, match=r"larger than the padded input"):
        max_pool(X, 2, dilation=5)
    # taps at -1 and 3 of a 3-long input padded (1, 1): both in the padding
    with pytest.raises(ValueError, match="covers only padding"):
        max_pool(jnp.ones((1, 3, 1)), 2, stride=1, padding=1, dilation=4)


def test_pool_bad_rank_and_dtype():
    for pool in (max_pool, avg_pool):
        with pytest.raises(ValueError, match="must have rank 3 or 4 or 5"):
            pool(jnp.ones((5, 5)), 2)
        with pytest.raises(TypeError, match="floating dtype"):
            pool(jnp.ones((1, 5, 5, 1), jnp.int32), 2)
    for pool in (global_max_pool, global_avg_pool):
        with pytest.raises(ValueError, match="must have rank 3 or 4 or 5"):
            pool(jnp.ones((5, 5)))
        with pytest.raises(TypeError, match="floating dtype"):
            pool(jnp.ones((1, 5, 1), jnp.int32))
