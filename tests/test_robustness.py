"""Issue 11 regressions for dlref.losses and dlref.activations: no silent wrong answer.

NaN propagates (as in jax.nn and optax), out-of-range concrete data raises, wrong types raise a
TypeError naming the op, and empty inputs give the documented empty result. (The other modules'
regressions live in their own test files; the whole-API property is in tests/test_api.py.)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dlref import activations as A
from dlref import losses as L

NAN = float("nan")

# --------------------------------------------------------------------------------------------
# NaN propagates


def test_cross_entropy_nan_probability_is_nan_not_the_clamp():
    # before: the clamp's `p > 0` test sent NaN to log-clamp -100 and the loss read 100.0
    p = jnp.array([[NAN, 0.5, 0.5], [0.2, 0.3, 0.5]])
    per_row = L.cross_entropy(p, jnp.array([0, 2]), reduction="none")
    assert np.isnan(per_row[0]) and float(per_row[1]) == pytest.approx(-np.log(0.5), rel=1e-6)
    soft = jnp.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    assert np.isnan(L.cross_entropy(p, soft, reduction="none")[0])
    # with a class index only p_y enters (-log p_y, PyTorch's nll_loss): NaN elsewhere does not
    assert float(L.cross_entropy(p, jnp.array([1, 2]), reduction="none")[0]) == pytest.approx(
        -np.log(0.5), rel=1e-6
    )
    # the clamp itself still works: p_y = 0 gives log-clamp 100 (PyTorch's BCELoss rule)
    assert float(L.cross_entropy(jnp.array([[0.0, 1.0]]), jnp.array([0]))) == 100.0
    # and so does NaN under jit, where the value check is not run
    assert np.isnan(jax.jit(L.cross_entropy)(p, jnp.array([0, 2])))


def test_kl_divergence_nan_matches_optax():
    p, q = jnp.array([[0.5, 0.5]]), jnp.array([[NAN, 0.5]])
    assert np.isnan(L.kl_divergence(p, q))  # before: 49.65 (NaN hit the log clamp)
    assert np.isnan(optax.kl_divergence(jnp.log(q), p)[0])  # optax: NaN as well
    # NaN in q where p = 0 still propagates, as in optax (0 · NaN = NaN)
    p0, q0 = jnp.array([[1.0, 0.0]]), jnp.array([[1.0, NAN]])
    assert np.isnan(L.kl_divergence(p0, q0))
    assert np.isnan(optax.kl_divergence(jnp.log(q0), p0)[0])
    assert np.isnan(L.kl_divergence(jnp.array([[NAN, 0.5]]), jnp.array([[0.5, 0.5]])))


def test_zero_one_loss_nan_score_is_nan():
    # jnp.argmax takes NaN for the maximum: row 0 would read "class 0 predicted, label 1: 1.0"
    z = jnp.array([[NAN, 0.5, 0.2], [0.1, 0.9, 0.0]])
    got = L.zero_one_loss(z, jnp.array([1, 1]), reduction="none")
    assert np.isnan(got[0]) and float(got[1]) == 0.0
    assert np.isnan(L.zero_one_loss(z, jnp.array([1, 1])))
    soft = jnp.array([[0.0, NAN, 1.0], [0.0, 1.0, 0.0]])  # a NaN soft label, finite scores
    got = L.zero_one_loss(jnp.abs(jnp.nan_to_num(z)), soft, reduction="none")
    assert np.isnan(got[0]) and float(got[1]) == 0.0


@pytest.mark.parametrize(
    "name",
    [
        "zero_one_loss",
        "cross_entropy",
        "softmax_cross_entropy",
        "sigmoid_binary_cross_entropy",
        "kl_divergence",
        "hinge_loss",
        "multiclass_hinge_loss",
        "exponential_loss",
        "l1_loss",
        "l2_loss",
        "huber_loss",
        "smooth_l1_loss",
    ],
)
def test_every_loss_propagates_nan_of_either_argument(name):
    """NaN in one row of either (floating) argument: that row's loss is NaN, the other not."""
    fn = getattr(L, name)
    a = jnp.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    if name in ("zero_one_loss", "softmax_cross_entropy", "cross_entropy", "kl_divergence"):
        b = jnp.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])  # a distribution per row
    elif name == "multiclass_hinge_loss":
        b = jnp.array([2, 0])  # integer labels only
    elif name in ("hinge_loss", "exponential_loss"):
        b = jnp.array([[1.0, -1.0, 1.0], [-1.0, 1.0, 1.0]])
    else:
        b = jnp.array([[0.0, 1.0, 0.5], [1.0, 0.0, 0.25]])
    for which in (0, 1) if jnp.issubdtype(b.dtype, jnp.floating) else (0,):
        args = [a, b]
        args[which] = args[which].at[0, 1].set(NAN)
        out = np.asarray(fn(*args, reduction="none"))
        assert np.all(np.isnan(out[0])) if out.ndim == 1 else np.isnan(out[0, 1]), (which, out)
        assert np.all(np.isfinite(out[1])), (which, out)


@pytest.mark.parametrize("name", A.__all__)
def test_every_activation_propagates_nan_like_jax_nn(name):
    x = jnp.array([[-2.0, NAN, 3.0], [0.5, 1.0, -1.0]])
    ours, theirs = getattr(A, name)(x), getattr(jax.nn, name)(x)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))  # same NaN pattern
    assert np.isnan(ours[0, 1])


# --------------------------------------------------------------------------------------------
# out-of-range data: concrete values checked, traced values documented


def test_cross_entropy_probabilities_outside_unit_interval():
    # before: -0.405 (= -log 1.5), a negative "cross-entropy"
    with pytest.raises(
        ValueError, match=r"cross_entropy: probs must lie in \[0, 1\], got values in \[-0.5, 1.5\]"
    ):
        L.cross_entropy(jnp.array([[1.5, -0.5]]), jnp.array([0]))
    with pytest.raises(ValueError, match=r"cross_entropy: one-hot or soft labels must lie in"):
        L.cross_entropy(jnp.array([[0.5, 0.5]]), jnp.array([[1.5, -0.5]]))
    with pytest.raises(ValueError, match=r"softmax_cross_entropy: one-hot or soft labels must lie"):
        L.softmax_cross_entropy(jnp.zeros((1, 2)), jnp.array([[2.0, -1.0]]))
    # under jit the check cannot run; the module docstring says what comes out: the formula's
    # value for p > 1 (-log 1.5 < 0, hand-computed) and NaN for p < 0 (log of a negative)
    got = jax.jit(lambda p, y: L.cross_entropy(p, y, reduction="none"))(
        jnp.array([[1.5, -0.5], [1.5, -0.5]]), jnp.array([0, 1])
    )
    assert float(got[0]) == pytest.approx(-np.log(1.5), rel=1e-6) and np.isnan(got[1])


def test_sigmoid_bce_targets_outside_unit_interval():
    z = jnp.array([1.0, -1.0])
    for bad in ([2.0, 0.0], [0.0, -1.0]):  # before: accepted
        with pytest.raises(ValueError, match=r"sigmoid_binary_cross_entropy: targets must lie in"):
            L.sigmoid_binary_cross_entropy(z, jnp.array(bad))
    L.sigmoid_binary_cross_entropy(z, jnp.array([1, 0]))  # 0/1 ints and bools are fine
    L.sigmoid_binary_cross_entropy(z, jnp.array([True, False]))
    # under jit: softplus(1) - 2·1 = log(1 + e) - 2 (hand formula), negative
    got = jax.jit(lambda z, t: L.sigmoid_binary_cross_entropy(z, t, reduction="none"))(
        z, jnp.array([2.0, 0.0])
    )
    assert float(got[0]) == pytest.approx(np.log1p(np.e) - 2.0, rel=1e-6) and float(got[0]) < 0


def test_kl_divergence_negative_probabilities():
    with pytest.raises(ValueError, match=r"kl_divergence: p must lie in \[0, 1\]"):
        L.kl_divergence(jnp.array([[1.5, -0.5]]), jnp.array([[0.5, 0.5]]))  # before: 1.30
    with pytest.raises(ValueError, match=r"kl_divergence: q must lie in \[0, 1\]"):
        L.kl_divergence(jnp.array([[0.5, 0.5]]), jnp.array([[1.5, -0.5]]))
    # under jit a negative entry gives NaN (the log of a negative number)
    assert np.isnan(jax.jit(L.kl_divergence)(jnp.array([[1.5, -0.5]]), jnp.array([[0.5, 0.5]])))


def test_nan_is_not_an_out_of_range_value():
    # the concrete check skips NaN, which must reach the result (docs/contract.md)
    assert np.isnan(L.cross_entropy(jnp.array([[NAN, 0.5]]), jnp.array([0])))
    assert np.isnan(L.sigmoid_binary_cross_entropy(jnp.zeros(2), jnp.array([NAN, 1.0])))
    assert np.isnan(L.kl_divergence(jnp.array([[NAN, NAN]]), jnp.array([[NAN, NAN]])))


# --------------------------------------------------------------------------------------------
# types and empty inputs


def test_scalar_parameters_must_be_real_numbers():
    x = jnp.array([-1.0, 2.0])
    with pytest.raises(TypeError, match="leaky_relu: negative_slope must be a number, got '0.1'"):
        A.leaky_relu(x, "0.1")  # before: jax internals ("Only integer scalar arrays ...")
    with pytest.raises(TypeError, match="leaky_relu: negative_slope must be a number, got True"):
        A.leaky_relu(x, True)
    with pytest.raises(ValueError, match=r"leaky_relu: negative_slope must be a scalar"):
        A.leaky_relu(x, jnp.ones(2))
    # a scalar array, traced or not, is a number (vmap over slopes)
    slopes = jnp.array([0.1, 0.5])
    got = jax.vmap(lambda a: A.leaky_relu(x, a))(slopes)
    want = np.array([[-0.1, 2.0], [-0.5, 2.0]], np.float32)  # hand: slope·(-1), 2
    np.testing.assert_array_equal(got, want)
    y = jnp.array([1.0, -1.0])
    with pytest.raises(TypeError, match="hinge_loss: margin must be a number, got '1'"):
        L.hinge_loss(x, y, "1")
    with pytest.raises(TypeError, match="multiclass_hinge_loss: margin must be a number"):
        L.multiclass_hinge_loss(jnp.zeros((1, 2)), jnp.array([0]), margin=None)
    with pytest.raises(TypeError, match="huber_loss: delta must be a number, got '1.0'"):
        L.huber_loss(x, y, "1.0")  # before: float("1.0") passed the range check
    with pytest.raises(TypeError, match="smooth_l1_loss: beta must be a number, got True"):
        L.smooth_l1_loss(x, y, True)
    with pytest.raises(TypeError, match="l2_loss: reduction must be one of .*got 3"):
        L.l2_loss(x, y, reduction=3)


def test_non_array_inputs_name_the_op():
    with pytest.raises(TypeError, match="l2_loss: predictions must be an array, got 'abc'"):
        L.l2_loss("abc", jnp.zeros(3))
    with pytest.raises(TypeError, match="softmax_cross_entropy: labels must be an array, got None"):
        L.softmax_cross_entropy(jnp.zeros((2, 3)), None)
    with pytest.raises(ValueError, match="relu: x must be a rectangular array"):
        A.relu([[1.0], [1.0, 2.0]])
    np.testing.assert_array_equal(A.relu([-1.0, 2.0]), [0.0, 2.0])  # lists are arrays


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape,axis", [((0,), -1), ((2, 0), -1), ((0, 3), -1), ((0, 3), 0)])
def test_softmax_of_an_empty_input_is_empty_like_jax_nn(name, shape, axis):
    # before: "zero-size array to reduction operation max which has no identity"
    x = jnp.zeros(shape)
    got = getattr(A, name)(x, axis)
    assert got.shape == shape and got.dtype == x.dtype
    assert getattr(jax.nn, name)(x, axis).shape == shape
