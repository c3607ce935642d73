"""dlref.dropout: flax's nnx.Dropout bit for bit, and the moments of both dropouts against
theory with bounds derived from the sample size (fixed keys, so the tests are deterministic).

Bounds: for n i.i.d. samples with variance s2 and fourth central moment mu4, the sample mean
has standard error sqrt(s2/n) and the mean of (y - E[y])² has sqrt((mu4 - s2²)/n), exactly. A
correct implementation falls within 5 standard errors with probability > 1 - 6e-7 per check.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.test_util import check_grads

from dlref.dropout import dropout, gaussian_dropout

N = 200_000  # samples per statistical check


def bernoulli_moments(rate):
    """Moments of y = b/q, b ~ Bernoulli(q), q = 1 - rate (inverted dropout of x = 1)."""
    q = 1.0 - rate
    var = rate / q  # E[y²] - 1 = 1/q - 1
    mu4 = q * (1 - q) * (1 - 3 * q + 3 * q * q) / q**4  # central 4th moment of b, scaled by 1/q⁴
    return 1.0, var, mu4


def gaussian_moments(rate):
    """Moments of y = 1 + s·z, z ~ N(0, 1), s² = rate/(1 - rate)."""
    var = rate / (1.0 - rate)
    return 1.0, var, 3.0 * var**2


def assert_moments(y, mean, var, mu4, n_se=5.0):
    """Sample mean and the second moment about the TRUE mean, each within n_se standard errors.

    mean((y - mean)²) is itself a mean of i.i.d. terms with variance mu4 - var², so its
    standard error is exact (no O(1/n) bias term as for the sample variance). At rate 0.5 it
    is 0: |y - 1| = 1 for every sample, and the check is exact up to rounding (1e-12).
    """
    y = np.asarray(y, np.float64).ravel()
    n = y.size
    se_mean = math.sqrt(var / n)
    se_var = math.sqrt((mu4 - var**2) / n)
    assert abs(y.mean() - mean) < n_se * se_mean, (y.mean(), mean, se_mean)
    m2 = np.mean((y - mean) ** 2)
    assert abs(m2 - var) <= n_se * se_var + 1e-12, (m2, var, se_var)


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_dropout_mean_and_variance_match_theory(rate):
    y = dropout(jax.random.key(1), jnp.ones(N), rate)
    assert_moments(y, *bernoulli_moments(rate))
    kept = np.asarray(y) != 0
    np.testing.assert_array_equal(np.asarray(y)[kept], np.float32(1 / (1 - rate)))
    # fraction kept: binomial, sd sqrt(q(1-q)/n)
    q = 1 - rate
    assert abs(kept.mean() - q) < 5 * math.sqrt(q * (1 - q) / N)


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_gaussian_dropout_mean_and_variance_match_theory(rate):
    y = gaussian_dropout(jax.random.key(2), jnp.ones(N), rate)
    assert_moments(y, *gaussian_moments(rate))


def test_dropout_expectation_preserved_elementwise():
    """E[dropout(x)] = x for each element: average over 4000 keys, 5 SE per element."""
    x = jnp.array([-3.0, 0.5, 2.0, 10.0])
    rate, k = 0.3, 4000
    keys = jax.random.split(jax.random.key(3), k)
    ys = np.asarray(jax.vmap(lambda kk: dropout(kk, x, rate))(keys), np.float64)
    se = np.abs(np.asarray(x)) * math.sqrt(rate / (1 - rate) / k)
    assert np.all(np.abs(ys.mean(0) - np.asarray(x)) < 5 * se)


@pytest.mark.parametrize("rate", [0.0, 0.25, 0.9])
@pytest.mark.parametrize("broadcast_dims", [(), (1, 2)])
def test_dropout_matches_flax_bit_for_bit(key, rate, broadcast_dims):
    x = jax.random.normal(key, (2, 3, 4, 5))
    k = jax.random.fold_in(key, 7)
    ours = dropout(k, x, rate, broadcast_dims=broadcast_dims)
    theirs = nnx.Dropout(rate, broadcast_dims=broadcast_dims)(x, deterministic=False, rngs=k)
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))
    if broadcast_dims:  # one mask per (example, channel), shared over space
        zero = np.asarray(ours) == 0
        assert np.all(zero == zero[:, :1, :1, :])


def test_eval_mode_and_rate_zero_are_identity(key):
    x = jax.random.normal(key, (3, 4))
    for f in (dropout, gaussian_dropout):
        np.testing.assert_array_equal(np.asarray(f(key, x, 0.7, train=False)), np.asarray(x))
        np.testing.assert_array_equal(np.asarray(f(key, x, 0.0)), np.asarray(x))
        assert jax.grad(lambda x, f=f: jnp.sum(f(key, x, 0.7, train=False)))(x).tolist() == (
            np.ones((3, 4)).tolist()
        )


def test_dropout_gradient_is_mask_over_keep_prob(key, x64):
    x = jax.random.normal(key, (50,), jnp.float64)
    ct = jax.random.normal(jax.random.fold_in(key, 1), (50,), jnp.float64)
    k, rate = jax.random.fold_in(key, 2), 0.4
    g = jax.grad(lambda x: jnp.sum(dropout(k, x, rate) * ct))(x)
    mask = jax.random.bernoulli(k, 0.6, (50,))  # the documented mask
    np.testing.assert_allclose(np.asarray(g), np.where(mask, ct / 0.6, 0.0), rtol=1e-15)
    y = dropout(k, x, rate)
    np.testing.assert_allclose(np.asarray(y), np.where(mask, np.asarray(x) / 0.6, 0.0), rtol=1e-15)


def test_gaussian_dropout_gradient_is_the_noise(key, x64):
    x = jax.random.uniform(key, (50,), jnp.float64, 0.5, 2.0)
    k = jax.random.fold_in(key, 2)
    noise = np.asarray(gaussian_dropout(k, jnp.ones(50, jnp.float64), 0.3))
    y = gaussian_dropout(k, x, 0.3)
    np.testing.assert_allclose(np.asarray(y), np.asarray(x) * noise, rtol=1e-15)
    g = jax.grad(lambda x: jnp.sum(gaussian_dropout(k, x, 0.3)))(x)
    np.testing.assert_allclose(np.asarray(g), noise, rtol=1e-15)
    # the noise is 1 + sqrt(p/(1-p))·N(0,1) with N(0,1) drawn by jax.random.normal(key)
    z = np.asarray(jax.random.normal(k, (50,), jnp.float64))
    np.testing.assert_allclose(noise, 1 + math.sqrt(0.3 / 0.7) * z, rtol=1e-14)


@pytest.mark.parametrize("f", [dropout, gaussian_dropout])
def test_check_grads_order2_with_a_fixed_key(key, x64, f):
    """With the key fixed both are linear in x: first and second derivatives (the latter 0)."""
    x = jax.random.normal(key, (3, 4), jnp.float64)
    k = jax.random.fold_in(key, 5)
    check_grads(lambda x: f(k, x, 0.4), (x,), order=2, modes=["fwd", "rev"])


def test_seed_errata_15_unscaled_dropout_shifts_the_expectation():
    """SEED_ERRATA 15: without the 1/(1-p) scaling the training mean is (1-p)·x, not x."""
    rate = 0.5
    y = np.asarray(dropout(jax.random.key(4), jnp.ones(N), rate), np.float64)
    unscaled = y * (1 - rate)  # the seed's dropout: the mask alone
    _, var, _ = bernoulli_moments(rate)
    se_inverted = math.sqrt(var / N)
    se_unscaled = math.sqrt(rate * (1 - rate) / N)  # Bernoulli(1 - p) variance
    assert abs(y.mean() - 1.0) < 5 * se_inverted
    assert abs(unscaled.mean() - (1 - rate)) < 5 * se_unscaled
    assert abs(unscaled.mean() - 1.0) > 100 * se_unscaled  # the shift the seed misses


def test_jit_vmap_dtypes_and_traced_rate(key):
    # jit may fuse 1 + s·z into an fma and round differently: a few float32 ulps (2^-20); a
    # different mask would differ by O(1).
    def same(a, b):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2.0**-20, atol=2.0**-20)

    x = jax.random.normal(key, (4, 6))
    for f in (dropout, gaussian_dropout):
        same(jax.jit(lambda k, x, f=f: f(k, x, 0.3))(key, x), f(key, x, 0.3))
        keys = jax.random.split(key, 3)
        got = jax.vmap(lambda k, f=f: f(k, x, 0.3))(keys)
        for i in range(3):
            same(got[i], f(keys[i], x, 0.3))
        # a traced rate (not validated at trace time) gives the same values
        same(jax.jit(lambda r, f=f: f(key, x, r))(0.3), f(key, x, 0.3))
        assert f(key, x.astype(jnp.bfloat16), 0.3).dtype == jnp.bfloat16
        with jax.enable_x64(True):
            assert f(key, jnp.ones(3, jnp.float64), 0.3).dtype == jnp.float64
        big = f(key, jnp.full((8,), 1e4), 0.9)
        assert np.all(np.isfinite(big))
        gb = jax.grad(lambda x, f=f: jnp.sum(f(key, x, 0.9)))(jnp.full((8,), 1e4))
        assert np.all(np.isfinite(gb))
        # linear in x: the value at 1e4 is 1e4 times the value at 1 (the gradient)
        same(big / 1e4, gb)


def test_different_keys_give_different_masks(key):
    a = dropout(jax.random.key(10), jnp.ones(256), 0.5)
    b = dropout(jax.random.key(11), jnp.ones(256), 0.5)
    assert np.any(np.asarray(a) != np.asarray(b))


@pytest.mark.parametrize("f", [dropout, gaussian_dropout])
def test_errors(key, f):
    x = jnp.ones(3)
    for bad in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match=r"rate must lie in \[0.0, 1.0\)"):
            f(key, x, bad)
    with pytest.raises(TypeError, match="train must be a Python bool"):
        f(key, x, 0.5, train="yes")
    with pytest.raises(TypeError, match="x must have a floating dtype"):
        f(key, jnp.ones(3, jnp.int32), 0.5)
    with pytest.raises(TypeError, match="rate must be a number"):
        f(key, x, None)


def test_dropout_broadcast_dims_error(key):
    with pytest.raises(ValueError, match=r"broadcast_dims must be axes of x \(rank 2\)"):
        dropout(key, jnp.ones((2, 3)), 0.5, broadcast_dims=(2,))
