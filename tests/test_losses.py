"""dlref.losses against optax, NumPy oracles written here, jax.grad, and seed errata 11-14."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.special
import sklearn.metrics

from dlref import losses as L
from dlref.testing import assert_op_close, check_op_gradients, rel_err

# float64 agreement (eps = 2.2e-16), normwise over the array: ~450 ulps, stricter than
# dlref.testing's float64 default (1e-12), which allows for different algorithms.
RTOL64 = 1e-13
N, C = 6, 5


# ---- NumPy oracles (formulas as PyTorch documents them; never the code under test) --------


def np_log_softmax(z):
    z = np.asarray(z, np.float64)
    m = z.max(-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(-1, keepdims=True))


def np_weston_watkins(s, y, margin=1.0):
    """C × PyTorch's MultiMarginLoss(p=1): Σ_{j≠y} max(0, margin − s_y + s_j)."""
    s = np.asarray(s, np.float64)
    out = np.zeros(s.shape[0])
    for i in range(s.shape[0]):
        for j in range(s.shape[1]):
            if j != y[i]:
                out[i] += max(0.0, margin - s[i, y[i]] + s[i, j])
    return out


def np_smooth_l1(d, beta):
    """PyTorch SmoothL1Loss: 0.5 d²/β if |d| < β else |d| − 0.5β."""
    a = np.abs(d)
    return np.where(a < beta, 0.5 * d**2 / max(beta, 1e-300), a - 0.5 * beta)


# ---- inputs ---------------------------------------------------------------------------------


def logits_and_labels(key, n=N, c=C):
    k1, k2, k3 = jax.random.split(key, 3)
    z = 2.0 * jax.random.normal(k1, (n, c))
    y = jax.random.randint(k2, (n,), 0, c)
    soft = jax.nn.softmax(jax.random.normal(k3, (n, c)))
    return z, y, soft


def away_from(x, kinks, gap=0.05):
    """Move entries of x within `gap` of any kink to kink + 3·gap (finite differences)."""
    for k in kinks:
        x = jnp.where(jnp.abs(x - k) < gap, k + 3 * gap, x)
    return x


# --------------------------------------------------------------------------------------------
# against optax: values, VJPs (same cotangent) and JVPs (same tangent); reduction="none", float64


def test_softmax_cross_entropy_integer_labels_vs_optax(key, x64):
    z, y, _ = logits_and_labels(key)
    ours = lambda z: L.softmax_cross_entropy(z, y, reduction="none")  # noqa: E731
    ref = lambda z: optax.softmax_cross_entropy_with_integer_labels(z, y)  # noqa: E731
    assert_op_close(ours, ref, z, key=key, rtol=RTOL64)


def test_softmax_cross_entropy_soft_labels_vs_optax(key, x64):
    z, y, soft = logits_and_labels(key)
    ours = lambda z, t: L.softmax_cross_entropy(z, t, reduction="none")  # noqa: E731
    assert_op_close(ours, optax.softmax_cross_entropy, z, soft, key=key, rtol=RTOL64)
    onehot = jax.nn.one_hot(y, C, dtype=z.dtype)
    assert rel_err(ours(z, onehot), L.softmax_cross_entropy(z, y, reduction="none")) <= RTOL64


def test_sigmoid_binary_cross_entropy_vs_optax(key, x64):
    k1, k2 = jax.random.split(key)
    z = 3.0 * jax.random.normal(k1, (N, C))
    t = jax.random.uniform(k2, (N, C))
    ours = lambda z, t: L.sigmoid_binary_cross_entropy(z, t, reduction="none")  # noqa: E731
    assert_op_close(ours, optax.sigmoid_binary_cross_entropy, z, t, key=key, rtol=RTOL64)


def test_kl_divergence_vs_optax_and_scipy(key, x64):
    _, _, p = logits_and_labels(key)
    q = jax.nn.softmax(jax.random.normal(jax.random.fold_in(key, 1), (N, C)))
    p = p.at[0, 1].set(0.0).at[3, :2].set(0.0)  # zeros in p: 0·log 0 = 0
    p = p / p.sum(-1, keepdims=True)
    ours = lambda p, q: L.kl_divergence(p, q, reduction="none")  # noqa: E731
    # optax's convention: (log_predictions, targets) = (log q, p).
    ref = lambda p, q: optax.kl_divergence(jnp.log(q), p)  # noqa: E731
    # w.r.t. q, with zeros in p
    assert_op_close(ours, ref, p, q, argnums=(1,), key=key, rtol=RTOL64)
    # w.r.t. p too (optax's is NaN where p = 0, hence positive p here)
    p_pos = jax.nn.softmax(jax.random.normal(jax.random.fold_in(key, 2), (N, C)))
    assert_op_close(ours, ref, p_pos, q, key=key, rtol=RTOL64)
    assert (
        rel_err(ours(p, q), scipy.special.rel_entr(np.asarray(p), np.asarray(q)).sum(-1)) <= RTOL64
    )
    # where p = 0 dlref's gradient is finite: ∂/∂p_i = −log q_i (the log p_i + 1 dropped);
    # elsewhere log p_i + 1 − log q_i (NumPy).
    pn, qn = np.asarray(p), np.asarray(q)
    want = np.where(pn > 0, np.log(np.where(pn > 0, pn, 1)) + 1 - np.log(qn), -np.log(qn))
    assert rel_err(jax.grad(lambda p: L.kl_divergence(p, q, reduction="sum"))(p), want) <= RTOL64
    assert np.isnan(np.asarray(jax.grad(lambda p: ref(p, q).sum())(p))).any()


def test_hinge_loss_vs_optax(key, x64):
    k1, k2 = jax.random.split(key)
    s = away_from(2.0 * jax.random.normal(k1, (N, C)), [-1.0, 1.0])
    t = jnp.where(jax.random.bernoulli(k2, 0.5, (N, C)), 1.0, -1.0)
    ours = lambda s: L.hinge_loss(s, t, reduction="none")  # noqa: E731
    assert_op_close(ours, lambda s: optax.hinge_loss(s, t), s, key=key, rtol=RTOL64)
    # margin m: max(0, m − y s) = m · max(0, 1 − y (s/m))
    assert (
        rel_err(L.hinge_loss(s, t, 2.5, reduction="none"), 2.5 * optax.hinge_loss(s / 2.5, t))
        <= RTOL64
    )


def test_multiclass_hinge_crammer_singer_vs_optax(key, x64):
    z, y, _ = logits_and_labels(key)
    ours = lambda z: L.multiclass_hinge_loss(z, y, reduction="none")  # noqa: E731
    ref = lambda z: optax.losses.multiclass_hinge_loss(z, y)  # noqa: E731
    assert_op_close(ours, ref, z, key=key, rtol=RTOL64)


def test_multiclass_hinge_weston_watkins_vs_pytorch_formula(key, x64):
    z, y, _ = logits_and_labels(key)
    got = L.multiclass_hinge_loss(z, y, variant="weston_watkins", reduction="none")
    assert rel_err(got, np_weston_watkins(z, np.asarray(y))) <= RTOL64
    got = L.multiclass_hinge_loss(z, y, margin=0.3, variant="weston_watkins", reduction="none")
    assert rel_err(got, np_weston_watkins(z, np.asarray(y), margin=0.3)) <= RTOL64
    # PyTorch's MultiMarginLoss divides by C: "mean" of it = our mean / C.
    torch_style = np_weston_watkins(z, np.asarray(y)).mean() / C
    assert (
        rel_err(L.multiclass_hinge_loss(z, y, variant="weston_watkins") / C, torch_style) <= RTOL64
    )


def test_l2_loss_is_mean_squared_error_twice_optax_l2(key, x64):
    k1, k2 = jax.random.split(key)
    p, t = jax.random.normal(k1, (N, C)), jax.random.normal(k2, (N, C))
    ours = lambda p, t: L.l2_loss(p, t, reduction="none")  # noqa: E731
    assert_op_close(ours, lambda p, t: 2.0 * optax.l2_loss(p, t), p, t, key=key, rtol=RTOL64)
    assert_op_close(ours, optax.squared_error, p, t, key=key, rtol=RTOL64)
    assert rel_err(L.l2_loss(p, t), np.mean((np.asarray(p) - np.asarray(t)) ** 2)) <= RTOL64
    # the factor: optax.l2_loss carries Bishop's 1/2
    assert rel_err(L.l2_loss(p, t), 2.0 * optax.l2_loss(p, t).mean()) <= RTOL64


@pytest.mark.parametrize("delta", [1.0, 0.3, 2.5])
def test_huber_loss_vs_optax(delta, key, x64):
    k1, k2 = jax.random.split(key)
    p, t = 2 * jax.random.normal(k1, (N, C)), jax.random.normal(k2, (N, C))
    p = t + away_from(p - t, [-delta, delta])
    ours = lambda p, t: L.huber_loss(p, t, delta, reduction="none")  # noqa: E731
    ref = lambda p, t: optax.huber_loss(p, t, delta=delta)  # noqa: E731
    assert_op_close(ours, ref, p, t, key=key, rtol=RTOL64)


@pytest.mark.parametrize("beta", [1.0, 0.3, 2.5])
def test_smooth_l1_loss_vs_pytorch_formula_and_huber_relation(beta, key, x64):
    k1, k2 = jax.random.split(key)
    p, t = 2 * jax.random.normal(k1, (N, C)), jax.random.normal(k2, (N, C))
    got = L.smooth_l1_loss(p, t, beta, reduction="none")
    assert rel_err(got, np_smooth_l1(np.asarray(p - t), beta)) <= RTOL64
    # huber(δ) = δ · smooth_l1(β = δ); optax.huber_loss(δ)/δ = smooth_l1(δ)
    assert rel_err(L.huber_loss(p, t, beta, reduction="none"), beta * got) <= RTOL64
    assert_op_close(
        lambda p: L.smooth_l1_loss(p, t, beta, reduction="none"),
        lambda p: optax.huber_loss(p, t, delta=beta) / beta,
        t + away_from(p - t, [-beta, beta]),
        key=key,
        rtol=RTOL64,
    )


def test_smooth_l1_beta_zero_is_l1(key, x64):
    p, t = jax.random.normal(key, (N,)), jnp.zeros(N)
    assert rel_err(L.smooth_l1_loss(p, t, 0.0, reduction="none"), np.abs(np.asarray(p))) <= RTOL64
    g = jax.grad(lambda p: L.smooth_l1_loss(p, t, 0.0))(p)
    assert np.all(np.isfinite(g))
    assert rel_err(g, np.sign(np.asarray(p)) / N) <= RTOL64


def test_l1_loss_vs_numpy(key, x64):
    k1, k2 = jax.random.split(key)
    p, t = jax.random.normal(k1, (N, C)), jax.random.normal(k2, (N, C))
    assert (
        rel_err(L.l1_loss(p, t, reduction="none"), np.abs(np.asarray(p) - np.asarray(t))) <= RTOL64
    )
    g = jax.grad(lambda p: L.l1_loss(p, t, reduction="sum"))(p)
    assert rel_err(g, np.sign(np.asarray(p) - np.asarray(t))) <= RTOL64


def test_cross_entropy_vs_numpy(key, x64):
    _, y, soft = logits_and_labels(key)
    probs = jax.nn.softmax(jax.random.normal(jax.random.fold_in(key, 7), (N, C)))
    want = -(np.asarray(soft) * np.log(np.asarray(probs))).sum(-1)
    assert rel_err(L.cross_entropy(probs, soft, reduction="none"), want) <= RTOL64
    want_idx = -np.log(np.asarray(probs)[np.arange(N), np.asarray(y)])
    assert rel_err(L.cross_entropy(probs, y, reduction="none"), want_idx) <= RTOL64
    # cross_entropy(softmax(z), y) = softmax_cross_entropy(z, y)
    z = jnp.log(probs) + 3.0
    assert rel_err(L.cross_entropy(jax.nn.softmax(z), y), L.softmax_cross_entropy(z, y)) <= 1e-14
    # gradient w.r.t. probs: −y/p (NumPy)
    g = jax.grad(lambda p: L.cross_entropy(p, soft, reduction="sum"))(probs)
    assert rel_err(g, -np.asarray(soft) / np.asarray(probs)) <= RTOL64


def test_zero_one_loss_vs_sklearn(key, x64):
    z, y, soft = logits_and_labels(key, n=40)
    want = sklearn.metrics.zero_one_loss(np.asarray(y), np.asarray(z).argmax(-1))
    assert float(L.zero_one_loss(z, y)) == pytest.approx(want, rel=1e-15)
    want = sklearn.metrics.zero_one_loss(np.asarray(soft).argmax(-1), np.asarray(z).argmax(-1))
    assert float(L.zero_one_loss(z, soft)) == pytest.approx(want, rel=1e-15)
    np.testing.assert_array_equal(jax.grad(L.zero_one_loss)(z, y), np.zeros(z.shape))
    # ties go to the first maximal class (jnp.argmax)
    tie = jnp.array([[1.0, 1.0]])
    assert float(L.zero_one_loss(tie, jnp.array([0]))) == 0.0
    assert float(L.zero_one_loss(tie, jnp.array([1]))) == 1.0


def test_exponential_loss_vs_numpy(key, x64):
    k1, k2 = jax.random.split(key)
    s = jax.random.normal(k1, (N, C))
    t = jnp.where(jax.random.bernoulli(k2, 0.5, (N, C)), 1, -1)  # int targets are cast
    got = L.exponential_loss(s, t, reduction="none")
    assert rel_err(got, np.exp(-np.asarray(t) * np.asarray(s))) <= RTOL64
    g = jax.grad(lambda s: L.exponential_loss(s, t, reduction="sum"))(s)
    assert rel_err(g, -np.asarray(t) * np.exp(-np.asarray(t) * np.asarray(s))) <= RTOL64


# --------------------------------------------------------------------------------------------
# reductions, second-order gradients, jit/vmap, dtypes


def _all_losses(key):
    """(name, fn(a, b, **kw), a, b, per-row?) for every loss, in float64."""
    z, y, soft = logits_and_labels(key)
    k1, k2 = jax.random.split(key)
    s = 2 * jax.random.normal(k1, (N, C))
    pm = jnp.where(jax.random.bernoulli(k2, 0.5, (N, C)), 1.0, -1.0)
    p = jax.nn.softmax(z)
    return [
        ("zero_one_loss", L.zero_one_loss, z, y, True),
        ("cross_entropy", L.cross_entropy, p, soft, True),
        ("softmax_cross_entropy", L.softmax_cross_entropy, z, y, True),
        ("sigmoid_binary_cross_entropy", L.sigmoid_binary_cross_entropy, s, soft, False),
        ("kl_divergence", L.kl_divergence, soft, p, True),
        ("hinge_loss", L.hinge_loss, s, pm, False),
        ("multiclass_hinge_loss", L.multiclass_hinge_loss, z, y, True),
        ("exponential_loss", L.exponential_loss, s, pm, False),
        ("l1_loss", L.l1_loss, s, soft, False),
        ("l2_loss", L.l2_loss, s, soft, False),
        ("huber_loss", L.huber_loss, s, soft, False),
        ("smooth_l1_loss", L.smooth_l1_loss, s, soft, False),
    ]


NAMES = [c[0] for c in _all_losses(jax.random.key(0))]


@pytest.mark.parametrize("name", NAMES)
def test_reductions(name, key, x64):
    (case,) = [c for c in _all_losses(key) if c[0] == name]
    _, fn, a, b, per_row = case
    none = fn(a, b, reduction="none")
    assert none.shape == ((N,) if per_row else (N, C))
    assert none.dtype == jnp.float64
    assert rel_err(fn(a, b, reduction="sum"), np.sum(np.asarray(none))) <= 1e-15
    assert rel_err(fn(a, b, reduction="mean"), np.mean(np.asarray(none))) <= 1e-15
    assert rel_err(fn(a, b), np.mean(np.asarray(none))) <= 1e-15  # default "mean"
    with pytest.raises(ValueError, match=f"{name}: reduction must be one of .*got 'avg'"):
        fn(a, b, reduction="avg")


SMOOTH_CASES = {
    "cross_entropy": lambda a, b: L.cross_entropy(jax.nn.softmax(a), b),
    "softmax_cross_entropy": L.softmax_cross_entropy,
    "sigmoid_binary_cross_entropy": L.sigmoid_binary_cross_entropy,
    "kl_divergence": lambda a, b: L.kl_divergence(b, jax.nn.softmax(a)),
    "exponential_loss": L.exponential_loss,
    "l2_loss": L.l2_loss,
}


@pytest.mark.parametrize("name", list(SMOOTH_CASES))
def test_check_grads_order2_smooth(name, key, x64):
    z, _, soft = logits_and_labels(key, n=3, c=4)
    check_op_gradients(jax.jit(SMOOTH_CASES[name]), z, soft, order=2)


def test_check_grads_order2_piecewise_away_from_kinks(key, x64):
    z, y, soft = logits_and_labels(key, n=3, c=4)
    s = away_from(z, [-1.0, 1.0])
    pm = jnp.sign(soft - 0.25)
    p = soft + away_from(z - soft, [-1.0, 0.0, 1.0])

    # One sum (one compilation) of every piecewise loss; generic random scores are away from
    # the multiclass kinks and ties.
    def total(s, p, z):
        out = L.hinge_loss(s, pm) + L.l1_loss(p, soft) + L.huber_loss(p, soft)
        out = out + L.smooth_l1_loss(p, soft) + L.multiclass_hinge_loss(z, y)
        return out + L.multiclass_hinge_loss(z, y, variant="weston_watkins")

    check_op_gradients(jax.jit(total), s, p, z, order=2)


@pytest.mark.parametrize("name", NAMES)
def test_jit_and_vmap_agree_with_eager(name, key):
    (case,) = [c for c in _all_losses(key) if c[0] == name]
    _, fn, a, b, _ = case
    eager = fn(a, b, reduction="none")
    jitted = jax.jit(lambda a, b: fn(a, b, reduction="none"))(a, b)
    # float32: a couple of ulps from a different XLA fusion
    np.testing.assert_allclose(jitted, eager, rtol=1e-6, atol=1e-6)
    mapped = jax.vmap(lambda a, b: fn(a[None], b[None], reduction="sum"))(a, b)
    want = eager if eager.ndim == 1 else eager.sum(-1)
    np.testing.assert_allclose(mapped, want, rtol=1e-6, atol=1e-6)


def test_float32_stays_float32_and_bfloat16_works(key):
    z, y, soft = logits_and_labels(key)
    assert L.softmax_cross_entropy(z, y).dtype == jnp.float32
    zb = z.astype(jnp.bfloat16)
    out = L.softmax_cross_entropy(zb, y, reduction="none")
    assert out.dtype == jnp.bfloat16
    # bfloat16 against float32 on the same rounded logits: value, VJP and JVP within
    # dlref.testing's bfloat16 tolerance (2e-2, ~2.6 ulps of eps = 2^-7).
    ours = lambda z: L.softmax_cross_entropy(z, y, reduction="none")  # noqa: E731
    assert_op_close(ours, ours, zb, reference_dtype=jnp.float32)
    assert L.l2_loss(zb, zb).dtype == jnp.bfloat16


# --------------------------------------------------------------------------------------------
# extreme inputs and subgradients at kinks


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_extreme_logits_give_finite_values_and_gradients(dtype, x64):
    z = jnp.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [0.0, 1e4, -1e4]], dtype)
    y = jnp.array([1, 2, 2])
    soft = jnp.array([[0.0, 1.0, 0.0], [0.2, 0.3, 0.5], [1 / 3, 1 / 3, 1 / 3]], dtype)
    pm = jnp.array([[1.0, -1.0, 1.0]] * 3, dtype)
    fns = [
        lambda z: L.softmax_cross_entropy(z, y),
        lambda z: L.softmax_cross_entropy(z, soft),
        lambda z: L.sigmoid_binary_cross_entropy(z, soft),
        lambda z: L.hinge_loss(z, pm),
        lambda z: L.multiclass_hinge_loss(z, y),
        lambda z: L.multiclass_hinge_loss(z, y, variant="weston_watkins"),
        lambda z: L.l1_loss(z, soft),
        lambda z: L.l2_loss(z, soft),
        lambda z: L.huber_loss(z, soft),
        lambda z: L.smooth_l1_loss(z, soft),
        lambda z: L.zero_one_loss(z, y),
    ]
    for f in fns:
        v, g = jax.value_and_grad(f)(z)
        assert v.dtype == dtype and np.isfinite(v) and np.all(np.isfinite(g))
    # values and VJPs (same cotangent) at these extremes against optax, to a few ulps
    refs = [
        (
            L.softmax_cross_entropy,
            lambda z: optax.softmax_cross_entropy_with_integer_labels(z, y),
            y,
        ),
        (L.softmax_cross_entropy, lambda z: optax.softmax_cross_entropy(z, soft), soft),
        (
            L.sigmoid_binary_cross_entropy,
            lambda z: optax.sigmoid_binary_cross_entropy(z, soft),
            soft,
        ),
        (L.hinge_loss, lambda z: optax.hinge_loss(z, pm), pm),
        (L.huber_loss, lambda z: optax.huber_loss(z, soft), soft),
        (L.l2_loss, lambda z: optax.squared_error(z, soft), soft),
    ]
    tol = 8 * float(jnp.finfo(dtype).eps)
    for ours, ref, t in refs:
        v, pull = jax.vjp(lambda z, ours=ours, t=t: ours(z, t, reduction="none"), z)
        v_ref, pull_ref = jax.vjp(ref, z)
        ct = jnp.linspace(0.5, 1.5, v.size, dtype=dtype).reshape(v.shape)
        assert rel_err(v, v_ref) <= tol
        assert rel_err(pull(ct)[0], pull_ref(ct)[0]) <= tol
    # softmax CE with label 1 in row 0 (logit −1e4 vs max 1e4): −z_y + logsumexp = 2e4.
    assert float(L.softmax_cross_entropy(z[:1], y[:1])) == 2e4


def test_exponential_loss_overflows_to_inf_not_nan(x64):
    # e^{1e4} is not representable: documented overflow to inf, never NaN.
    v = L.exponential_loss(jnp.array([1e4, -1e4]), jnp.array([-1.0, -1.0]), reduction="none")
    assert float(v[0]) == np.inf and float(v[1]) == 0.0
    g = jax.grad(lambda s: L.exponential_loss(s, jnp.array([-1.0, -1.0]), reduction="sum"))(
        jnp.array([1e4, -1e4])
    )
    assert float(g[0]) == np.inf and float(g[1]) == 0.0


def test_probabilities_exactly_zero_and_one(x64):
    probs = jnp.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    onehot = jnp.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    v, g = jax.value_and_grad(lambda p: L.cross_entropy(p, onehot, reduction="sum"))(probs)
    # row 0: −log 1 = 0 (0·log 0 = 0 for the other classes); row 1: p_y = 0, log clamped at
    # −100 (PyTorch's BCELoss rule) → 100.
    assert float(v) == 100.0 and np.all(np.isfinite(g))
    np.testing.assert_array_equal(g[0], [-1.0, 0.0, 0.0])  # −y/p at p = 1; 0 where y = 0
    np.testing.assert_array_equal(g[1], [0.0, 0.0, 0.0])  # p_y = 0: the clamp is flat there
    assert float(L.cross_entropy(probs, jnp.array([0, 0]), reduction="sum")) == 100.0
    # KL with zeros in p (0·log 0 = 0) and in q where p = 0
    p = jnp.array([[0.5, 0.5, 0.0]])
    q = jnp.array([[0.25, 0.75, 0.0]])
    v, (gp, gq) = jax.value_and_grad(L.kl_divergence, argnums=(0, 1))(p, q)
    want = 0.5 * np.log(0.5 / 0.25) + 0.5 * np.log(0.5 / 0.75)  # hand formula
    assert float(v) == pytest.approx(want, rel=1e-15)
    assert np.all(np.isfinite(gp)) and np.all(np.isfinite(gq))
    assert float(gq[0, 2]) == 0.0 and float(gp[0, 2]) == 100.0  # −log q clamped: −(−100)
    # q = 0 where p > 0: finite through the clamp
    v = L.kl_divergence(jnp.array([[1.0, 0.0]]), jnp.array([[0.0, 1.0]]))
    assert float(v) == 100.0
    # sigmoid BCE with targets exactly 0/1 at huge logits
    v = L.sigmoid_binary_cross_entropy(jnp.array([1e4, -1e4]), jnp.array([1.0, 0.0]))
    assert float(v) == 0.0


def test_subgradients_at_kinks(x64):
    # hinge: y·s = m → 0 (relu'(0) = 0); optax's jnp.maximum gives −y/2 there
    assert float(jax.grad(lambda s: L.hinge_loss(s, jnp.array(1.0)))(jnp.array(1.0))) == 0.0
    assert float(jax.grad(lambda s: L.hinge_loss(s, jnp.array(1.0)))(jnp.array(0.999))) == -1.0
    # multiclass Crammer–Singer at the kink 1 + max_{j≠y} s_j − s_y = 0 → gradient 0
    g = jax.grad(lambda s: L.multiclass_hinge_loss(s, jnp.array([0])))(jnp.array([[1.0, 0.0]]))
    np.testing.assert_array_equal(g, [[0.0, 0.0]])
    # ties among the wrong classes share the gradient equally
    g = jax.grad(lambda s: L.multiclass_hinge_loss(s, jnp.array([0])))(jnp.array([[0.0, 0.5, 0.5]]))
    np.testing.assert_array_equal(g, [[-1.0, 0.5, 0.5]])
    # l1 at d = 0: sign(0) = 0 (PyTorch); jnp.abs would give 1
    assert float(jax.grad(lambda p: L.l1_loss(p, jnp.array(0.0)))(jnp.array(0.0))) == 0.0
    # huber / smooth L1 are C¹: at |d| = δ the slope is δ / 1 from both sides
    assert float(jax.grad(lambda p: L.huber_loss(p, jnp.array(0.0), 2.0))(2.0)) == 2.0
    assert float(jax.grad(lambda p: L.smooth_l1_loss(p, jnp.array(0.0), 2.0))(2.0)) == 1.0
    assert float(jax.grad(lambda p: L.huber_loss(p, jnp.array(0.0)))(0.0)) == 0.0


# --------------------------------------------------------------------------------------------
# bad input


def test_errors_non_float_inputs():
    zi = jnp.zeros((2, 3), jnp.int32)
    with pytest.raises(TypeError, match="softmax_cross_entropy: logits must have a floating"):
        L.softmax_cross_entropy(zi, jnp.array([0, 1]))
    with pytest.raises(TypeError, match="l2_loss: predictions must have a floating dtype"):
        L.l2_loss(zi, zi)
    with pytest.raises(TypeError, match="kl_divergence: q must have a floating dtype"):
        L.kl_divergence(jnp.ones((2, 3)), zi)
    with pytest.raises(TypeError, match="hinge_loss: targets must have a real dtype"):
        L.hinge_loss(jnp.ones(3), jnp.ones(3, jnp.complex64))


def test_errors_float_labels_where_indices_needed():
    z = jnp.zeros((4, 3))
    with pytest.raises(TypeError, match=r"labels of shape \(4,\) are class indices and must"):
        L.softmax_cross_entropy(z, jnp.array([0.0, 1.0, 2.0, 1.0]))
    with pytest.raises(TypeError, match="multiclass_hinge_loss: labels must be integer class"):
        L.multiclass_hinge_loss(z, jnp.eye(3)[jnp.array([0, 1, 2, 1])])
    with pytest.raises(TypeError, match="zero_one_loss: labels must be integer class indices or"):
        L.zero_one_loss(z, jnp.array([True, False, True, True]))


def test_errors_label_shapes():
    z = jnp.zeros((4, 3))
    with pytest.raises(ValueError, match=r"integer labels must have shape .*\(4,\), got \(3,\)"):
        L.softmax_cross_entropy(z, jnp.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"soft labels must have the shape of logits \(4, 3\)"):
        L.cross_entropy(z + 1 / 3, jnp.ones((4, 2)) / 2)
    with pytest.raises(ValueError, match=r"logits must have at least one dimension"):
        L.softmax_cross_entropy(jnp.float32(1.0), jnp.int32(0))
    with pytest.raises(ValueError, match=r"scores must have at least 2 classes.*\(4, 1\)"):
        L.multiclass_hinge_loss(jnp.zeros((4, 1)), jnp.zeros(4, jnp.int32))


def test_errors_prediction_target_shapes():
    with pytest.raises(ValueError, match=r"l1_loss: predictions and targets must have the same"):
        L.l1_loss(jnp.zeros((2, 3)), jnp.zeros((3,)))
    with pytest.raises(ValueError, match=r"kl_divergence: p and q must have the same shape"):
        L.kl_divergence(jnp.ones((2, 3)) / 3, jnp.ones((2, 4)) / 4)
    with pytest.raises(ValueError, match=r"sigmoid_binary_cross_entropy: predictions and targ"):
        L.sigmoid_binary_cross_entropy(jnp.zeros((2, 3)), jnp.zeros((2, 1)))


def test_errors_concrete_labels_out_of_range():
    z = jnp.zeros((3, 4))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\).*got values in \[0, 4\]"):
        L.softmax_cross_entropy(z, jnp.array([0, 4, 1]))
    with pytest.raises(ValueError, match=r"multiclass_hinge_loss: labels must lie in \[0, 4\)"):
        L.multiclass_hinge_loss(z, np.array([-1, 0, 1]))
    with pytest.raises(ValueError, match=r"cross_entropy: labels must lie in \[0, 4\)"):
        L.cross_entropy(z + 0.25, jnp.array([0, 9, 1]))


def test_traced_out_of_range_labels_give_nan():
    z = jnp.zeros((3, 4))
    labels = jnp.array([0, 4, -1])
    for f in (L.softmax_cross_entropy, L.cross_entropy, L.zero_one_loss, L.multiclass_hinge_loss):
        out = jax.jit(lambda z, y, f=f: f(z + 0.25, y, reduction="none"))(z, labels)
        assert np.isfinite(out[0]) and np.isnan(out[1]) and np.isnan(out[2])


def test_errors_parameters():
    a = jnp.zeros(3)
    with pytest.raises(ValueError, match=r"huber_loss: delta must lie in \(0.0, inf\], got 0"):
        L.huber_loss(a, a, 0.0)
    with pytest.raises(ValueError, match=r"smooth_l1_loss: beta must lie in \[0.0, inf\]"):
        L.smooth_l1_loss(a, a, -1.0)
    with pytest.raises(ValueError, match=r"variant must be one of .*got 'svm'"):
        L.multiclass_hinge_loss(jnp.zeros((2, 3)), jnp.array([0, 1]), variant="svm")


# --------------------------------------------------------------------------------------------
# seed errata


def test_seed_errata_11_softmax_loss(key, x64):
    """The seed's −Σ e^{z_i}/Σ e^{z_j} is the constant −1 with zero gradient."""
    z, y, _ = logits_and_labels(key)

    def seed_loss(z):  # erratum 11 (docs/errata.md), transcribed
        e = jnp.exp(z)
        return -jnp.sum(e / jnp.sum(e, -1, keepdims=True), -1)

    np.testing.assert_allclose(seed_loss(z), -np.ones(N), rtol=1e-15)
    g = jax.grad(lambda z: seed_loss(z).sum())(z)
    assert np.max(np.abs(g)) < 1e-15  # constant: no training signal
    assert (
        rel_err(
            L.softmax_cross_entropy(z, y, reduction="none"),
            optax.softmax_cross_entropy_with_integer_labels(z, y),
        )
        <= RTOL64
    )
    # −z_y + logsumexp(z) (the correct rule) responds to the logits: gradient softmax − onehot
    g = jax.grad(L.softmax_cross_entropy)(z, y)
    assert rel_err(g, (np.asarray(jax.nn.softmax(z)) - np.eye(C)[np.asarray(y)]) / N) <= RTOL64


def test_seed_errata_12_kl_divergence(x64):
    """The seed's Σ log p − log q differs from KL and can be negative; KL ≥ 0."""
    p = jnp.array([0.9, 0.05, 0.05])
    q = jnp.array([0.1, 0.45, 0.45])
    seed = float(jnp.sum(jnp.log(p) - jnp.log(q)))  # erratum 12 (docs/errata.md), transcribed
    kl = float(L.kl_divergence(p, q))
    # by hand: log(0.9/0.1) + 2 log(0.05/0.45) = log 9 − 2 log 9 = −log 9 < 0
    assert seed == pytest.approx(-np.log(9.0), rel=1e-14) and seed < 0
    assert kl == pytest.approx(float(scipy.special.rel_entr(p, q).sum()), rel=1e-14)
    assert kl == pytest.approx(float(optax.kl_divergence(jnp.log(q), p)), rel=1e-14)
    assert kl > 0 and kl != pytest.approx(seed)
    assert float(L.kl_divergence(p, p)) == 0.0


def test_seed_errata_13_hinge(x64):
    """The seed's max(0, Y·f) penalises correct predictions; max(0, 1 − Y·f) does not."""
    s = jnp.array([3.0, 0.5, -2.0])
    y = jnp.array([1.0, 1.0, 1.0])  # first two correct, the last wrong
    seed = jnp.maximum(0.0, y * s)  # erratum 13 (docs/errata.md), transcribed
    np.testing.assert_array_equal(seed, [3.0, 0.5, 0.0])  # most loss on the best prediction
    ours = L.hinge_loss(s, y, reduction="none")
    np.testing.assert_array_equal(ours, [0.0, 0.5, 3.0])  # hand: max(0, 1 − y s)
    assert rel_err(ours, optax.hinge_loss(s, y)) <= 0.0


def test_seed_errata_14_l2_gradient_linear_huber_bounded(x64):
    """L2's gradient grows linearly in the error (not "explodes"); Huber / smooth L1 bound it."""
    d = jnp.array([0.5, 1.0, 10.0, 100.0, 1e4])
    t = jnp.zeros_like(d)
    g2 = jax.grad(lambda p: L.l2_loss(p, t, reduction="sum"))(d)
    np.testing.assert_array_equal(g2, 2 * np.asarray(d))  # exactly 2d: linear
    gh = jax.grad(lambda p: L.huber_loss(p, t, 2.0, reduction="sum"))(d)
    np.testing.assert_array_equal(gh, [0.5, 1.0, 2.0, 2.0, 2.0])  # min(|d|, δ = 2)
    gs = jax.grad(lambda p: L.smooth_l1_loss(p, t, reduction="sum"))(d)
    np.testing.assert_array_equal(gs, [0.5, 1.0, 1.0, 1.0, 1.0])  # min(|d|/β, 1)
