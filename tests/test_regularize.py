"""dlref.regularize against optax (tree norms, add_decayed_weights, clip, clip_by_global_norm),
flax.training.early_stopping, and dropout against flax's nnx.Dropout and theory.

Dropout: flax's nnx.Dropout bit for bit, and the moments of both dropouts against
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
import optax
import pytest
from flax import nnx
from flax.training.early_stopping import EarlyStopping as FlaxEarlyStopping
from jax.test_util import check_grads

from dlref.regularize import (
    EarlyStopping,
    clip_by_global_norm,
    clip_by_value,
    dropout,
    gaussian_dropout,
    l1_penalty,
    l2_penalty,
)


def _tree(key, dtype=jnp.float64, scale=1.0):
    k1, k2, k3 = jax.random.split(key, 3)
    return {
        "dense": {
            "w": scale * jax.random.normal(k1, (3, 4), dtype),
            "b": jnp.arange(4.0, dtype=dtype),
        },
        "conv": [scale * jax.random.normal(k2, (2, 2, 1, 3), dtype)],
        "scalar": scale * jax.random.normal(k3, (), dtype),
    }


def _close(a, b, rtol=1e-13, atol=0.0):
    jax.tree.map(
        lambda x, y: np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol),
        a,
        b,
    )


# --------------------------------------------------------------------------------------------
# penalties


def test_l1_penalty_matches_optax_and_subgradient(key, x64):
    p = _tree(key)
    _close(l1_penalty(p), optax.tree.norm(p, ord=1))
    g = jax.grad(l1_penalty)(p)
    _close(g, jax.tree.map(jnp.sign, p))
    assert float(g["dense"]["b"][0]) == 0.0  # subgradient at w = 0 is 0 (b[0] == 0.0)
    assert float(jax.grad(jnp.abs)(0.0)) == 1.0  # jnp.abs (and optax's L1 norm) choose 1
    assert l1_penalty(p).dtype == jnp.float64


def test_l2_penalty_is_half_squared_norm_with_gradient_w(key, x64):
    p = _tree(key)
    _close(l2_penalty(p), 0.5 * optax.tree.norm(p, squared=True))
    _close(l2_penalty(p), sum(jnp.sum(optax.l2_loss(leaf)) for leaf in jax.tree.leaves(p)))
    _close(jax.grad(l2_penalty)(p), p)  # the factor 1/2 makes the gradient exactly w
    assert l2_penalty(p).dtype == jnp.float64
    check_grads(l2_penalty, (p,), order=2, modes=["fwd", "rev"])


def test_l2_penalty_gradient_equals_optax_add_decayed_weights(key, x64):
    """λ·∇l2_penalty is the update optax.add_decayed_weights(λ) adds to zero gradients."""
    p = _tree(key)
    lam = 3e-4
    tx = optax.add_decayed_weights(lam)
    zeros = jax.tree.map(jnp.zeros_like, p)
    upd, _ = tx.update(zeros, tx.init(p), p)
    _close(jax.grad(lambda p: lam * l2_penalty(p))(p), upd)


def test_l1_check_grads_away_from_zero(key, x64):
    p = jax.tree.map(lambda a: a + jnp.where(a >= 0, 0.5, -0.5), _tree(key))
    check_grads(l1_penalty, (p,), order=2, modes=["fwd", "rev"])


def test_penalties_empty_tree_jit_and_extremes():
    assert float(l1_penalty({})) == 0.0 and float(l2_penalty([])) == 0.0
    p = {"w": jnp.array([1e4, -1e4])}
    assert float(jax.jit(l2_penalty)(p)) == 1e8  # ½·2·1e8 (exact in float32)
    assert float(jax.jit(l1_penalty)(p)) == 2e4


# --------------------------------------------------------------------------------------------
# clipping


def test_clip_by_value_matches_optax_and_jnp(key, x64):
    t = _tree(key, scale=3.0)
    _close(clip_by_value(t, -1.0, 1.0), optax.clip(1.0).update(t, optax.clip(1.0).init(t))[0])
    _close(clip_by_value(t, -0.5, 2.0), jax.tree.map(lambda a: jnp.clip(a, -0.5, 2.0), t))
    assert clip_by_value(t, -1.0, 1.0)["scalar"].dtype == jnp.float64


def test_clip_by_value_check_grads_jit_vmap(key, x64):
    w = 3.0 * jax.random.normal(key, (3, 4), jnp.float64)
    # away from the kinks at ±1 (finite differences step ~1e-3 in float64)
    w = jnp.where(jnp.abs(jnp.abs(w) - 1.0) < 0.1, 0.5, w)
    f = lambda w: clip_by_value(w, -1.0, 1.0)  # noqa: E731
    check_grads(jax.jit(f), (w,), order=2, modes=["fwd", "rev"])
    _close(jax.jit(f)(w), f(w), rtol=0)
    _close(jax.vmap(f)(w), f(w), rtol=0)


def test_penalties_vmap_over_a_stack_of_trees(key, x64):
    stacked = jax.tree.map(lambda a: jnp.stack([a, -2 * a]), _tree(key))
    for f in (l1_penalty, l2_penalty):
        got = jax.vmap(f)(stacked)
        want = [f(jax.tree.map(lambda a, i=i: a[i], stacked)) for i in range(2)]
        _close(got, jnp.stack(want), rtol=1e-14)


def test_clip_by_value_subgradient_is_one_on_the_closed_interval(x64):
    x = jnp.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    g = jax.grad(lambda x: jnp.sum(clip_by_value(x, -1.0, 1.0)))(x)
    np.testing.assert_array_equal(np.asarray(g), [0.0, 1.0, 1.0, 1.0, 0.0])  # PyTorch clamp
    g_jnp = jax.grad(lambda x: jnp.sum(jnp.clip(x, -1.0, 1.0)))(x)
    np.testing.assert_array_equal(np.asarray(g_jnp), [0.0, 0.5, 1.0, 0.5, 0.0])  # jnp.clip
    jit_g = jax.jit(jax.grad(lambda x: jnp.sum(clip_by_value(x, -1.0, 1.0))))(x)
    np.testing.assert_array_equal(np.asarray(jit_g), np.asarray(g))


@pytest.mark.parametrize("max_norm", [0.5, 1e3])  # clipped, untouched
def test_clip_by_global_norm_equals_optax(key, x64, max_norm):
    t = _tree(key)
    clipped, norm = clip_by_global_norm(t, max_norm)
    tx = optax.clip_by_global_norm(max_norm)
    want, _ = tx.update(t, tx.init(t))
    _close(clipped, want, rtol=1e-15)
    _close(norm, optax.tree.norm(t), rtol=1e-15)
    got_norm = optax.tree.norm(clipped)
    _close(got_norm, min(max_norm, float(norm)), rtol=1e-14)
    # gradients against optax with the same cotangent
    ct = jax.tree.map(lambda a: jnp.cos(a) + 0.1, t)
    g = jax.vjp(lambda t: clip_by_global_norm(t, max_norm)[0], t)[1](ct)
    g_ref = jax.vjp(lambda t: tx.update(t, tx.init(t))[0], t)[1](ct)
    _close(g, g_ref, rtol=1e-12, atol=1e-15)


def test_clip_by_global_norm_check_grads_jit_vmap(key, x64):
    t = _tree(key)
    check_grads(lambda t: clip_by_global_norm(t, 0.5), (t,), order=2, modes=["fwd", "rev"])
    _close(jax.jit(clip_by_global_norm, static_argnums=1)(t, 0.5), clip_by_global_norm(t, 0.5))
    _close(jax.jit(clip_by_global_norm)(t, 0.5), clip_by_global_norm(t, 0.5))  # traced max_norm
    xs = jnp.stack([jnp.array([3.0, 4.0]), jnp.array([0.3, 0.4])])
    got, norms = jax.vmap(lambda x: clip_by_global_norm(x, 1.0))(xs)
    _close(got, jnp.array([[0.6, 0.8], [0.3, 0.4]]), rtol=1e-15)  # 3-4-5 triangle by hand
    _close(norms, jnp.array([5.0, 0.5]), rtol=1e-15)


def test_clip_by_global_norm_zero_and_extreme_trees_are_finite(x64):
    z = {"a": jnp.zeros(3), "b": jnp.zeros((2, 2))}
    clipped, norm = clip_by_global_norm(z, 1.0)
    _close(clipped, z)
    assert float(norm) == 0.0
    g = jax.grad(
        lambda t: jnp.sum(clip_by_global_norm(t, 1.0)[0]["a"]) + clip_by_global_norm(t, 1.0)[1]
    )(z)
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(g))
    big = {"a": jnp.full((4,), 1e4)}
    clipped, norm = clip_by_global_norm(big, 1.0)
    _close(norm, 2e4, rtol=1e-15)
    _close(clipped["a"], np.full(4, 0.5), rtol=1e-15)
    empty, n0 = clip_by_global_norm({}, 1.0)
    assert empty == {} and float(n0) == 0.0


def test_clip_by_global_norm_keeps_leaf_dtypes():
    t = {"a": jnp.ones(3, jnp.bfloat16), "b": jnp.ones(2, jnp.float32) * 10}
    clipped, _ = clip_by_global_norm(t, 1.0)
    assert clipped["a"].dtype == jnp.bfloat16 and clipped["b"].dtype == jnp.float32


def test_regularize_errors():
    bad = {"w": jnp.ones(2), "step": jnp.array(3)}
    for f in (l1_penalty, l2_penalty):
        with pytest.raises(
            TypeError, match=r"every leaf must have a floating dtype, got int32 at \['step'\]"
        ):
            f(bad)
    with pytest.raises(TypeError, match="every leaf must have a floating dtype"):
        clip_by_value(bad, -1.0, 1.0)
    with pytest.raises(TypeError, match="every leaf must have a floating dtype"):
        clip_by_global_norm(bad, 1.0)
    with pytest.raises(ValueError, match="lo must be <= hi, got lo=1.0 and hi=-1.0"):
        clip_by_value({"w": jnp.ones(2)}, 1.0, -1.0)
    for m in (-1.0, 0.0):
        with pytest.raises(
            ValueError, match=r"clip_by_global_norm: max_norm must lie in \(0.0, inf\]"
        ):
            clip_by_global_norm({"w": jnp.ones(2)}, m)
    with pytest.raises(TypeError, match="max_norm must be a number"):
        clip_by_global_norm({"w": jnp.ones(2)}, True)


# --------------------------------------------------------------------------------------------
# early stopping

SEQUENCES = [
    [4, 3, 3, 3, 2, 2, 2, 2, 1, 1],  # flax's docstring example
    [1.0, 0.9995, 0.999, 0.998, 0.9, 0.95, 0.96, 0.97, 0.85, 0.86, 0.87, 0.88, 0.89],
    [5, float("nan"), 4, 4.5, 4.4, 4.3, 3, 2.9999],
    [0.3, 0.2, 0.1, 0.05],
]


@pytest.mark.parametrize("seq", SEQUENCES)
@pytest.mark.parametrize("patience", [1, 2, 3])
@pytest.mark.parametrize("min_delta", [0.0, 1e-3])
def test_early_stopping_matches_flax_with_patience_plus_one(seq, patience, min_delta):
    """flax stops one update later than Keras/dlref: flax(patience=p-1) == dlref(patience=p)."""
    ours = EarlyStopping(patience=patience, min_delta=min_delta)
    theirs = FlaxEarlyStopping(min_delta=min_delta, patience=patience - 1)
    for m in seq:
        ours, theirs = ours.update(m), theirs.update(m)
        assert bool(ours.should_stop) == theirs.should_stop
        assert bool(ours.improved) == theirs.has_improved
        assert float(ours.best) == float(theirs.best_metric)
        assert int(ours.wait) == theirs.patience_count


@pytest.mark.parametrize("seq", SEQUENCES)
def test_early_stopping_max_mode_is_min_mode_on_negated_metric(seq):
    a = EarlyStopping(patience=2, min_delta=1e-3, mode="max")
    b = EarlyStopping(patience=2, min_delta=1e-3, mode="min")
    for m in seq:
        a, b = a.update(-m), b.update(m)
        assert (bool(a.should_stop), bool(a.improved), int(a.wait)) == (
            bool(b.should_stop),
            bool(b.improved),
            int(b.wait),
        )


def test_early_stopping_keras_semantics_by_hand():
    # patience=2, min_delta=0.1: 1.0 improves (from inf); 0.95 is within min_delta (wait 1);
    # 0.85 beats 1.0 by 0.15 (improves, wait 0); 0.8, 0.79 do not beat 0.85 by > 0.1 -> stop
    # after the second of them (Keras: "number of epochs with no improvement").
    s = EarlyStopping(patience=2, min_delta=0.1)
    trace = []
    for m in [1.0, 0.95, 0.85, 0.8, 0.79, 0.1]:
        s = s.update(m)
        trace.append((bool(s.improved), int(s.wait), bool(s.should_stop)))
    assert trace == [
        (True, 0, False),
        (False, 1, False),
        (True, 0, False),
        (False, 1, False),
        (False, 2, True),
        (True, 0, True),  # should_stop stays set; reset() clears it
    ]
    assert float(s.best) == 0.1
    r = s.reset()
    assert r == EarlyStopping(patience=2, min_delta=0.1)
    assert r.best == float("inf") and not r.should_stop


def test_early_stopping_is_a_pytree_under_scan_and_jit():
    seq = SEQUENCES[1]
    s = EarlyStopping(patience=2, min_delta=1e-3)

    def step(s, m):
        s = s.update(m)
        return s, (s.should_stop, s.improved, s.wait)

    _, (stop, imp, wait) = jax.lax.scan(step, s, jnp.asarray(seq, jnp.float32))
    py = s
    for i, m in enumerate(seq):
        py = py.update(float(np.float32(m)))
        assert (bool(stop[i]), bool(imp[i]), int(wait[i])) == (
            bool(py.should_stop),
            bool(py.improved),
            int(py.wait),
        )
    jitted = jax.jit(lambda s, m: s.update(m))(s, 3.0)
    assert bool(jitted.improved) and float(jitted.best) == 3.0
    assert EarlyStopping(patience=3, mode="max").best == float("-inf")
    assert len(jax.tree.leaves(s)) == 4


def test_early_stopping_errors():
    with pytest.raises(ValueError, match="patience must be >= 1, got 0"):
        EarlyStopping(patience=0)
    with pytest.raises(TypeError, match="patience must be an int"):
        EarlyStopping(patience=2.5)
    with pytest.raises(ValueError, match="min_delta must be >= 0, got -0.1"):
        EarlyStopping(patience=1, min_delta=-0.1)
    with pytest.raises(TypeError, match="min_delta must be a Python number"):
        EarlyStopping(patience=1, min_delta="0.1")
    with pytest.raises(ValueError, match=r"mode must be one of \('min', 'max'\), got 'auto'"):
        EarlyStopping(patience=1, mode="auto")


# --------------------------------------------------------------------------------------------
# dropout

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
    """erratum 15 (docs/errata.md): without the 1/(1-p) scaling the training mean is (1-p)·x, not
    x."""
    rate = 0.5
    y = np.asarray(dropout(jax.random.key(4), jnp.ones(N), rate), np.float64)
    # the guide's dropout, drawn by NumPy independently of dlref: a Bernoulli(1 - p) keep-mask
    # applied to x = 1 without scaling
    unscaled = np.ones(N) * (np.random.default_rng(15).random(N) >= rate)
    # dlref keeps a unit as exactly 1/(1 - p) and drops it to exactly 0
    assert set(np.unique(y).tolist()) == {0.0, 1 / (1 - rate)}
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
    with pytest.raises(TypeError, match=f"{f.__name__}: train must be a bool, got 'yes'"):
        f(key, x, 0.5, train="yes")
    with pytest.raises(TypeError, match="x must have a floating dtype"):
        f(key, jnp.ones(3, jnp.int32), 0.5)
    with pytest.raises(TypeError, match="rate must be a number"):
        f(key, x, None)


def test_dropout_broadcast_dims_error(key):
    with pytest.raises(ValueError, match=r"dropout: broadcast_dims 2 is out of range .* rank 2"):
        dropout(key, jnp.ones((2, 3)), 0.5, broadcast_dims=(2,))
    with pytest.raises(ValueError, match=r"dropout: broadcast_dims must not repeat an axis"):
        dropout(key, jnp.ones((2, 3)), 0.5, broadcast_dims=(1, -1))
    with pytest.raises(TypeError, match=r"dropout: broadcast_dims must be an int or a tuple"):
        dropout(key, jnp.ones((2, 3)), 0.5, broadcast_dims=(True,))


# --------------------------------------------------------------------------------------------
# issue 11: clip_by_global_norm neither hides NaN nor overflows; keys, leaves, numbers typed


def test_clip_by_global_norm_nan_and_inf_match_optax():
    tx = optax.clip_by_global_norm(1.0)
    for bad in (float("nan"), float("inf")):
        t = {"a": jnp.array([bad, 1.0]), "b": jnp.array([2.0])}
        clipped, norm = clip_by_global_norm(t, 1.0)
        want, _ = tx.update(t, tx.init(t))
        # before: NaN gave norm 0.0 and the tree unclipped
        np.testing.assert_array_equal(np.asarray(norm), np.asarray(optax.tree.norm(t)))
        for a, b in zip(jax.tree.leaves(clipped), jax.tree.leaves(want), strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # NaN == NaN here


def test_clip_by_global_norm_does_not_overflow_or_underflow():
    big = {"a": jnp.array([1e20, 1e20], jnp.float32)}  # Σ g² = 2e40 > float32 max
    clipped, norm = clip_by_global_norm(big, 1.0)
    np.testing.assert_allclose(norm, np.sqrt(2.0) * 1e20, rtol=1e-6)  # hand: √2·1e20
    np.testing.assert_allclose(clipped["a"], [2**-0.5, 2**-0.5], rtol=1e-6)
    assert float(optax.tree.norm(big)) == np.inf  # optax: inf, and the leaves become 0
    tiny = {"a": jnp.array([1e-30, 1e-30], jnp.float32)}  # Σ g² = 2e-60 underflows to 0
    clipped, norm = clip_by_global_norm(tiny, 1e-31)
    np.testing.assert_allclose(norm, np.sqrt(2.0) * 1e-30, rtol=1e-6)
    np.testing.assert_allclose(clipped["a"], [2**-0.5 * 1e-31] * 2, rtol=1e-6)
    assert float(optax.tree.norm(tiny)) == 0.0  # optax: 0, so nothing would be clipped


def test_clip_by_global_norm_scaling_is_exact_and_keeps_gradients(key, x64):
    # in range, equal to optax bit for bit (the power-of-two scale is exact); max|g| ~ 10: s = 8
    t = jax.tree.map(lambda a: 10 * a, _tree(key, jnp.float32))
    tx = optax.clip_by_global_norm(3.0)
    got, norm = clip_by_global_norm(t, 3.0)
    np.testing.assert_array_equal(np.asarray(norm), np.asarray(optax.tree.norm(t)))
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(tx.update(t, tx.init(t))[0])):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # at 1e200 (float64: Σ g² overflows) the clipped tree is homogeneous of degree 0, so its
    # VJP at c·t is the VJP at t divided by c (c = 1e200; the VJP at t is optax's)
    t = _tree(key)
    ct = jax.tree.map(jnp.cos, t)
    f = lambda t: clip_by_global_norm(t, 0.5)[0]  # noqa: E731
    g1 = jax.vjp(f, t)[1](ct)[0]
    g_big = jax.vjp(f, jax.tree.map(lambda a: 1e200 * a, t))[1](ct)[0]
    _close(jax.tree.map(lambda a: 1e200 * a, g_big), g1, rtol=1e-13, atol=1e-300)


def test_regularize_types_name_the_op(key):
    x = jnp.ones(3)
    for bad in (0, None, jnp.zeros(2), jax.random.split(key, 2)):
        with pytest.raises(TypeError, match="dropout: key must be one jax.random key"):
            dropout(bad, x, 0.5)
    dropout(jax.random.PRNGKey(0), x, 0.5)  # a legacy raw key is a key
    with pytest.raises(TypeError, match="gaussian_dropout: rate must be a number, got '0.5'"):
        gaussian_dropout(key, x, "0.5")
    with pytest.raises(TypeError, match=r"l1_penalty: the leaf at \['w'\] must be an array"):
        l1_penalty({"w": "abc"})
    with pytest.raises(TypeError, match="clip_by_value: lo must be a number, got 'a'"):
        clip_by_value({"w": x}, "a", 1.0)
    with pytest.raises(TypeError, match="clip_by_global_norm: max_norm must be a number"):
        clip_by_global_norm({"w": x}, "1")
    with pytest.raises(TypeError, match=r"EarlyStopping: mode must be one of \('min', 'max'\)"):
        EarlyStopping(patience=1, mode=None)
    with pytest.raises(TypeError, match="EarlyStopping.update: metric must be a number"):
        EarlyStopping(patience=1).update("0.5")
