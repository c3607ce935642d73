"""Feature normalization and batch normalization: conditioning, scale invariance, saturation,
learning-rate tolerance, statistics, and the dropout/BN variance shift."""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.scipy.special import erfc

from dlref._checks import check_in_range, check_int
from dlref.activations import relu, sigmoid
from dlref.experiments._common import (
    check_counts,
    check_fits_train,
    check_positive,
    check_sequence,
    digits,
    first_below,
    fit_quietly,
)
from dlref.losses import l2_loss, softmax_cross_entropy
from dlref.model_summary import summary
from dlref.nn import MLP, BatchNorm, Dropout
from dlref.norm import BatchNormState, batch_norm


def feature_normalization(
    *, tolerance: float = 1e-3, max_steps: int = 3000, seed: int = 0
) -> dict[str, dict]:
    """Gradient descent on least squares with raw and with standardised features.

    .. math:: \\kappa = \\frac{\\lambda_{max}(H)}{\\lambda_{min}(H)},\\qquad
              L_t - L^* \\le \\Big(1 - \\frac{1}{\\kappa}\\Big)^{2t} (L_0 - L^*)
              \\ \\text{for}\\ \\eta = 1/\\lambda_{max}

    A linear model (with bias) regresses the digit's value on its pixels under
    :func:`dlref.l2_loss`: a quadratic whose Hessian ``H`` (``jax.hessian``) is constant.
    ``"raw"`` uses the pixels as loaded (``[0, 1]``, all positive, unequal variances);
    ``"standardized"`` z-scores them with the training statistics (:func:`dlref.standardize`
    does the same per batch). Pixels constant over the training set are dropped from both (they
    make ``H`` singular). Gradient descent runs with ``η = 1/λ_max`` (the largest step that
    is safe for each problem's own curvature) until ``L ≤ L* + tolerance·(L_0 − L*)``, with
    ``L*`` from ``numpy.linalg.lstsq``; ``bound`` is the worst-case iteration count of the
    formula above. The guide (为什么要做归一化): unnormalised features make the loss surface
    "flat" (elongated), gradient descent zig-zags and needs many more steps.

    Args:
      tolerance: the target's fraction of the initial loss gap.
      max_steps: gradient-descent steps.
      seed: seeds the split.

    Returns:
      ``{"raw" | "standardized": {"kappa", "lambda_max", "lambda_min", "steps" (int or
      None), "bound", "loss" (max_steps,) loss curve, "eigenvalues"}}``.

    Raises:
      TypeError: an argument of the wrong type.
      ValueError: a ``tolerance`` outside ``(0, 1]``, ``max_steps`` below 1, a negative
        ``seed``.

    Example:
      >>> r = feature_normalization(max_steps=10)
      >>> r["standardized"]["kappa"] < r["raw"]["kappa"]
      True
    """
    op = "feature_normalization"
    check_in_range(tolerance, 0.0, 1.0, "tolerance", op, lo_closed=False)
    check_int(max_steps, "max_steps", op, minimum=1)
    check_int(seed, "seed", op, minimum=0)
    d = digits(seed)
    x_raw, labels = d.train
    keep = x_raw.std(0) > 0
    x_raw = x_raw[:, keep].astype(np.float64)
    x_std = (x_raw - x_raw.mean(0)) / x_raw.std(0)
    y = labels.astype(np.float64)

    def loss(v, xj, yj):
        return l2_loss(xj @ v[:-1] + v[-1], yj)

    # compiled once for both problems (same shapes)
    hessian = jax.jit(jax.hessian(loss))

    @jax.jit
    def descend(v, xj, yj, lr):
        def step(v, _):
            v = v - lr * jax.grad(loss)(v, xj, yj)
            return v, loss(v, xj, yj)

        return jax.lax.scan(step, v, None, length=max_steps)[1]

    out = {}
    for name, x in (("raw", x_raw), ("standardized", x_std)):
        design = np.concatenate([x, np.ones((len(x), 1))], 1)
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        best = float(np.mean((design @ coef - y) ** 2))
        xj, yj = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
        v0 = jnp.zeros(x.shape[1] + 1, jnp.float32)
        eig = np.linalg.eigvalsh(np.asarray(hessian(v0, xj, yj), np.float64))
        lam_max, lam_min = float(eig[-1]), float(eig[0])
        kappa = lam_max / lam_min
        curve = np.asarray(descend(v0, xj, yj, jnp.float32(1.0 / lam_max)), np.float64)
        loss0 = float(loss(v0, xj, yj))
        target = best + tolerance * (loss0 - best)
        bound = math.ceil(math.log(tolerance) / (2 * math.log1p(-1 / kappa)))
        out[name] = {
            "kappa": kappa,
            "lambda_max": lam_max,
            "lambda_min": lam_min,
            "steps": first_below(curve, target),
            "bound": bound,
            "loss": curve,
            "eigenvalues": eig,
        }
    return out


def _bn_layer_loss(w, x, y, head, eps):
    z = x @ w
    h, _ = batch_norm(z, None, None, BatchNormState.create(w.shape[1]), train=True, eps=eps)
    return softmax_cross_entropy(relu(h) @ head, y)


def bn_scale_invariance(
    *,
    scales: Sequence[float] = (0.1, 1.0, 10.0, 100.0),
    learning_rate: float = 10.0,
    steps: int = 30,
    eps: float = 1e-12,
    width: int = 32,
    batch_size: int = 256,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Why BN tolerates large learning rates: the loss ignores the scale of the weights before it.

    .. math:: L(aW) = L(W),\\qquad \\nabla L(aW) = \\tfrac1a \\nabla L(W),\\qquad
              \\langle \\nabla L(W), W \\rangle = 0,

    .. math:: \\lVert W_{t+1} \\rVert^2
              = \\lVert W_t \\rVert^2 + \\eta^2 \\lVert \\nabla L(W_t) \\rVert^2

    The network ``x → xW → BN (train mode) → relu → head`` on a batch of digits. BN divides by
    the batch standard deviation, so scaling ``W`` by ``a`` changes nothing downstream (up to
    ``eps``; PyTorch's 1e-5 leaves a relative error of about ``eps/(2 a² σ²)``), and the
    gradient with respect to ``aW`` is the gradient with respect to ``W`` divided by ``a``.
    Differentiating ``L(aW) = L(W)`` in ``a`` gives Euler's identity: the gradient is
    orthogonal to ``W``. So plain SGD can only *grow* ``‖W‖`` (Pythagoras above), and the
    effective step on the direction of ``W``, ``η/‖W‖²``, shrinks by itself after a too-large
    step: the guide's "权重的缩放值会被抹去" and why a large ``η`` does not blow up
    (Arora, Li & Lyu 2019).

    Args:
      scales: the factors ``a``.
      learning_rate: SGD step size of the training run (large on purpose).
      steps: SGD steps on ``W`` (the head fixed).
      eps: BN's epsilon.
      width: width of the BN layer.
      batch_size: digits in the batch.
      seed: seeds the weights and the split.

    Returns:
      ``{"scales", "output_change" (relative change of the loss), "grad_ratio"
      (``a·‖∇L(aW)‖/‖∇L(W)‖``), "euler" (``|⟨∇L, W⟩|/(‖∇L‖‖W‖)`` per scale),
      "weight_norm" (steps + 1,), "effective_lr" (steps + 1,), "pythagoras_error" (steps,)
      relative}``.

    Raises:
      TypeError: an argument of the wrong type.
      ValueError: no scale, a scale, ``learning_rate`` or ``eps`` that is not finite and
        positive, ``steps`` or ``width`` below 1, ``batch_size`` below 2 (BN needs two
        examples for a variance), a negative ``seed``.

    Example:
      >>> r = bn_scale_invariance(steps=2)
      >>> bool(np.all(np.diff(r["weight_norm"]) >= 0))
      True
    """
    op = "bn_scale_invariance"
    check_sequence(scales, "scales", op, lambda v, what: check_positive(v, what, op))
    check_positive(learning_rate, "learning_rate", op)
    check_int(steps, "steps", op, minimum=1)
    check_positive(eps, "eps", op)
    check_int(width, "width", op, minimum=1)
    check_int(batch_size, "batch_size", op, minimum=2)
    check_int(seed, "seed", op, minimum=0)
    x, y = digits(seed).train
    x, y = jnp.asarray(x[:batch_size]), jnp.asarray(y[:batch_size])
    kw, kh = jax.random.split(jax.random.key(seed))
    w = jax.random.normal(kw, (x.shape[1], width)) / math.sqrt(x.shape[1])
    head = jax.random.normal(kh, (width, 10)) / math.sqrt(width)

    def loss(w):
        return _bn_layer_loss(w, x, y, head, eps)

    grad = jax.jit(jax.grad(loss))
    base_loss, base_grad = float(loss(w)), grad(w)
    base_norm = float(jnp.linalg.norm(base_grad))
    change, ratio, euler = [], [], []
    for a in scales:
        ga = grad(a * w)
        change.append(abs(float(loss(a * w)) - base_loss) / abs(base_loss))
        ratio.append(a * float(jnp.linalg.norm(ga)) / base_norm)
        euler.append(
            abs(float(jnp.vdot(ga, a * w)))
            / (float(jnp.linalg.norm(ga)) * float(jnp.linalg.norm(a * w)))
        )
    norms, pyth = [float(jnp.linalg.norm(w))], []
    for _ in range(steps):
        g = grad(w)
        w_new = w - learning_rate * g
        expected = norms[-1] ** 2 + learning_rate**2 * float(jnp.vdot(g, g))
        pyth.append(abs(float(jnp.vdot(w_new, w_new)) - expected) / expected)
        w = w_new
        norms.append(float(jnp.linalg.norm(w)))
    norms = np.asarray(norms)
    return {
        "scales": np.asarray(scales, float),
        "output_change": np.asarray(change),
        "grad_ratio": np.asarray(ratio),
        "euler": np.asarray(euler),
        "weight_norm": norms,
        "effective_lr": learning_rate / norms**2,
        "pythagoras_error": np.asarray(pyth),
    }


# sigma'(z) < 0.1 * sigma'(0) = 0.025  <=>  |z| > 2 arccosh(1 / (2 sqrt(0.025)))
SATURATION_Z = 2 * math.acosh(1 / (2 * math.sqrt(0.025)))


def bn_saturation(
    *,
    depth: int = 6,
    width: int = 64,
    weight_std: float = 1.0,
    batch_size: int = 256,
    seed: int = 0,
) -> dict[str, np.ndarray | float]:
    """A sigmoid MLP with too-large weights, with and without BN before every sigmoid.

    .. math:: \\text{saturated} = \\frac{\\#\\{|z| > z_s\\}}{B \\cdot \\text{width}},\\quad
              \\sigma'(z_s) = \\tfrac{1}{10}\\sigma'(0),\\ z_s \\approx 3.64;\\qquad
              \\text{with BN: } \\le 1/z_s^2 \\approx 0.076 \\text{ (Chebyshev)}

    Weights ``N(0, weight_std²)`` (1.0 is 8× the LeCun scale for width 64) push the
    pre-activations ``z`` of a plain sigmoid network deep into the flat tails, where
    ``σ'(z) < σ'(0)/10``, and the gradient dies there (the guide: BN 把输入拉回到非线性函数的
    敏感区域). BN (train mode, ``γ = 1``, ``β = 0``) gives every unit batch mean 0 and
    variance ≤ 1, so by Chebyshev's inequality at most ``1/z_s²`` of a unit's batch can be
    saturated, whatever the weights.

    Args:
      depth: hidden layers.
      width: hidden width.
      weight_std: standard deviation of every weight.
      batch_size: digits in the batch.
      seed: seeds the weights and the split.

    Returns:
      ``{"plain" | "bn": (depth,) saturated fraction per layer, "predicted_plain": (depth,)
      the fraction predicted without BN from the previous layer's outputs ``a_i`` (over the
      draw of the weights ``z_i ~ N(0, s²‖a_i‖²)``, so ``P(|z_i| > z_s) = erfc(z_s/(s‖a_i‖√2))``),
      "chebyshev_bound": 1/z_s², "z_s"}``.

    Raises:
      TypeError: an argument of the wrong type.
      ValueError: ``depth`` or ``width`` below 1, ``batch_size`` below 2, a ``weight_std``
        that is not finite and positive, a negative ``seed``.

    Example:
      >>> r = bn_saturation(depth=2)
      >>> bool(np.all(r["bn"] <= r["chebyshev_bound"]))
      True
    """
    op = "bn_saturation"
    check_counts(op, depth=depth, width=width)
    check_positive(weight_std, "weight_std", op)
    check_int(batch_size, "batch_size", op, minimum=2)
    check_int(seed, "seed", op, minimum=0)
    x = jnp.asarray(digits(seed).train[0][:batch_size])
    keys = jax.random.split(jax.random.key(seed), depth)
    sizes = [x.shape[1], *[width] * depth]
    ws = [weight_std * jax.random.normal(k, (a, b)) for k, a, b in zip(keys, sizes[:-1], sizes[1:])]

    def forward(ws, use_bn):
        a, zs = x, []
        for w in ws:
            z = a @ w
            if use_bn:
                z, _ = batch_norm(z, None, None, BatchNormState.create(w.shape[1]), train=True)
            zs.append(z)
            a = sigmoid(z)
        return zs

    out = {"chebyshev_bound": 1 / SATURATION_Z**2, "z_s": SATURATION_Z}
    for name, use_bn in (("plain", False), ("bn", True)):
        zs = forward(ws, use_bn)
        out[name] = np.asarray([float(jnp.mean(jnp.abs(z) > SATURATION_Z)) for z in zs])
    # Without BN, given the previous layer's outputs a_i, z_i = a_i · w is N(0, s²‖a_i‖²)
    # over the draw of w: P(|z_i| > z_s) = erfc(z_s / (s ‖a_i‖ √2)).
    inputs = [x] + [sigmoid(z) for z in forward(ws, False)[:-1]]
    out["predicted_plain"] = np.asarray(
        [
            float(jnp.mean(erfc(SATURATION_Z / (weight_std * jnp.linalg.norm(a, axis=1) * 2**0.5))))
            for a in inputs
        ]
    )
    return out


def bn_full_batch_statistics(
    *, hidden: int = 64, batch_size: int = 32, learning_rate: float = 1e-3, seed: int = 0
) -> dict[str, np.ndarray | float]:
    """Why BN does not normalise with full-training-set statistics: cost and staleness.

    .. math:: \\text{drift}_t = \\operatorname{mean}_c
              \\frac{|\\mu_c(\\theta_t) - \\mu_c(\\theta_0)|}{\\sigma_c(\\theta_t)},\\qquad
              \\text{batch noise} = \\frac{1}{\\sqrt{B}}

    ``μ_c(θ)``, ``σ_c(θ)`` are the mean and standard deviation of BN's input over the whole
    training set for the current weights. One epoch of Adam on an MLP ``64 → hidden → BN →
    relu → 10``: statistics computed over the full set at the start of the epoch are stale
    after a few steps — their error (the drift, in units of the current standard deviation)
    exceeds the standard error ``1/√B`` of a fresh minibatch mean. Keeping them fresh would
    mean a forward pass over all ``N`` examples per step, ``N/B`` times the work of the step's
    own forward pass (``cost_ratio``, from :func:`dlref.summary` of the layer below BN at
    batch ``N`` and ``B``). The guide (BN训练时为什么不用全量训练集的均值和方差) gives
    over-fitting as the reason; the measurable reasons are these two.

    Args:
      hidden: width of the BN layer.
      batch_size: minibatch size ``B``.
      learning_rate: Adam's step size.
      seed: seeds init, shuffling and the split.

    Returns:
      ``{"drift": (steps + 1,) (0 at step 0), "batch_noise": 1/√B, "steps": ⌊N/B⌋,
      "cost_ratio": MACs(N)/MACs(B), "n": N}``.

    Raises:
      TypeError: an argument of the wrong type.
      ValueError: ``hidden`` below 1, ``batch_size`` outside ``[2, N]``, a non-positive
        ``learning_rate``, a negative ``seed``.

    Example:
      >>> r = bn_full_batch_statistics(batch_size=512)
      >>> r["drift"].shape, r["cost_ratio"] > 2
      ((3,), True)
    """
    op = "bn_full_batch_statistics"
    check_int(hidden, "hidden", op, minimum=1)
    check_int(batch_size, "batch_size", op, minimum=2)
    check_positive(learning_rate, "learning_rate", op)
    check_int(seed, "seed", op, minimum=0)
    x, y = digits(seed).train
    n = len(x)
    check_fits_train(batch_size, n, "batch_size", op, minimum=2)
    steps = n // batch_size
    xj, yj = jnp.asarray(x), jnp.asarray(y)
    k1, k2 = jax.random.split(jax.random.key(seed))
    params = {
        "w1": jax.random.normal(k1, (x.shape[1], hidden)) * math.sqrt(2 / x.shape[1]),
        "b1": jnp.zeros(hidden),
        "w2": jax.random.normal(k2, (hidden, 10)) / math.sqrt(hidden),
        "b2": jnp.zeros(10),
    }

    def pre_bn(p, xb):
        return xb @ p["w1"] + p["b1"]

    def loss(p, xb, yb):
        h, _ = batch_norm(pre_bn(p, xb), None, None, BatchNormState.create(hidden), train=True)
        return softmax_cross_entropy(relu(h) @ p["w2"] + p["b2"], yb)

    order = np.random.default_rng(seed).permutation(n)[: steps * batch_size]
    batches = jnp.asarray(order.reshape(steps, batch_size))
    opt = optax.adam(learning_rate)
    mu0 = jnp.mean(pre_bn(params, xj), 0)

    @jax.jit
    def epoch(p):
        def step(carry, idx):
            p, s = carry
            g = jax.grad(loss)(p, xj[idx], yj[idx])
            u, s = opt.update(g, s)
            p = optax.apply_updates(p, u)
            z = pre_bn(p, xj)
            return (p, s), jnp.mean(jnp.abs(jnp.mean(z, 0) - mu0) / jnp.std(z, 0))

        return jax.lax.scan(step, (p, opt.init(p)), batches)[1]

    drift = np.concatenate([[0.0], np.asarray(epoch(params))])

    def macs(b):
        s = summary(
            pre_bn,
            params,
            jax.ShapeDtypeStruct((b, x.shape[1]), jnp.float32),
            data_argnum=1,
            print_fn=None,
        )
        return s.totals.flops

    return {
        "drift": drift,
        "batch_noise": 1 / math.sqrt(batch_size),
        "steps": steps,
        "cost_ratio": macs(n) / macs(batch_size),
        "n": n,
    }


def lr_sensitivity(
    *,
    learning_rates: Sequence[float] = (0.01, 0.1, 1.0, 3.0),
    epochs: int = 3,
    depth: int = 4,
    width: int = 64,
    batch_size: int = 64,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Validation accuracy after SGD training over a learning-rate sweep, with and without BN.

    .. math:: \\mathrm{acc}(\\eta),\\ \\eta \\in \\text{learning\\_rates}

    The study guide claims BN makes training less sensitive to the learning rate (BN undoes the
    scale of the weights, so a large step does not push pre-activations into saturation; see
    :func:`bn_scale_invariance`).

    Args:
      learning_rates: plain-SGD step sizes.
      epochs: epochs per run.
      depth: hidden layers of the ReLU MLP.
      width: hidden width.
      batch_size: batch size.
      seed: seeds init, split and shuffling.

    Returns:
      ``{"learning_rate": (K,), "bn": (K,), "no_bn": (K,)}`` (a diverged run scores its
      accuracy on non-finite outputs, i.e. about chance).

    Raises:
      TypeError: an argument of the wrong type.
      ValueError: no learning rate, a learning rate that is not finite and positive,
        ``epochs``, ``depth`` or ``width`` below 1, ``batch_size`` below 2 (BN) or above the
        training set, a negative ``seed``.

    Example:
      >>> r = lr_sensitivity(learning_rates=(0.1,), epochs=1)
      >>> sorted(r)
      ['bn', 'learning_rate', 'no_bn']
    """
    op = "lr_sensitivity"
    check_sequence(
        learning_rates, "learning_rates", op, lambda v, what: check_positive(v, what, op)
    )
    check_counts(op, epochs=epochs, depth=depth, width=width)
    check_int(batch_size, "batch_size", op, minimum=2)
    check_int(seed, "seed", op, minimum=0)
    data = digits(seed)
    check_fits_train(batch_size, len(data.train[1]), "batch_size", op, minimum=2)
    res = {"bn": [], "no_bn": []}
    for lr in learning_rates:
        for name, bn in (("bn", True), ("no_bn", False)):
            model = MLP(64, [width] * depth, 10, batch_norm=bn, rngs=nnx.Rngs(seed))
            h = fit_quietly(
                model, optax.sgd(lr), data, epochs=epochs, batch_size=batch_size, seed=seed
            )
            acc = h.val_accuracy[-1]
            res[name].append(acc if np.isfinite(h.val_loss[-1]) else 0.1)
    return {
        "learning_rate": np.asarray(learning_rates, float),
        "bn": np.asarray(res["bn"]),
        "no_bn": np.asarray(res["no_bn"]),
    }


class _OrderNet(nnx.Module):
    """``fc → relu → [dropout] → fc → BN → relu → [dropout] → head`` (one of the two dropouts)."""

    def __init__(self, order: str, rate: float, *, rngs: nnx.Rngs):
        self.order = order
        self.fc1 = nnx.Linear(64, 128, rngs=rngs)
        self.fc2 = nnx.Linear(128, 128, rngs=rngs)
        self.bn = BatchNorm(128)
        self.drop = Dropout(rate, rngs=rngs)
        self.head = nnx.Linear(128, 10, rngs=rngs)

    def bn_input(self, x):
        a = relu(self.fc1(x))
        if self.order == "dropout_before_bn":
            a = self.drop(a)
        return self.fc2(a)

    def __call__(self, x):
        z = relu(self.bn(self.bn_input(x)))
        if self.order == "bn_before_dropout":
            z = self.drop(z)
        return self.head(z)


def dropout_bn_variance_shift(
    *, rate: float = 0.5, epochs: int = 5, batch_size: int = 64, seed: int = 0
) -> dict[str, dict[str, float]]:
    """Dropout before BN vs after it: the variance shift between training and inference.

    .. math:: \\text{shift} = \\frac{1}{C}\\sum_c
              \\frac{\\mathrm{Var}_{test}[z_c]}{\\hat\\sigma^2_{running,c}}

    ``z`` is the input of the BN layer. With dropout *before* BN, BN's running variance is
    learned on dropped-out, rescaled inputs (inverted dropout inflates the second moment by
    ``1/(1-p)``) but at inference the inputs are not dropped, so the variance BN divides by
    is wrong (shift < 1); with BN before dropout BN never sees dropout (shift ≈ 1). The study
    guide's "BN and dropout conflict" paragraph, measured.

    Args:
      rate: dropout rate.
      epochs: training epochs (Adam 1e-3).
      batch_size: batch size.
      seed: seeds everything.

    Returns:
      ``{"dropout_before_bn" | "bn_before_dropout": {"shift", "train_var_ratio",
      "val_accuracy"}}``; ``train_var_ratio`` is the same ratio with the input variance
      measured in train mode (≈ 1 for both: BN's statistics match what it saw).

    Raises:
      TypeError: an argument of the wrong type.
      ValueError: a ``rate`` outside ``[0, 1)``, ``epochs`` below 1, ``batch_size`` outside
        ``[2, N]``, a negative ``seed``.

    Example:
      >>> r = dropout_bn_variance_shift(epochs=1)
      >>> r["dropout_before_bn"]["shift"] < r["bn_before_dropout"]["shift"]
      True

    References:
      Li, Chen, Hu & Yang, "Understanding the disharmony between dropout and batch
      normalization by variance shift", CVPR 2019.
    """
    op = "dropout_bn_variance_shift"
    check_in_range(rate, 0.0, 1.0, "rate", op, hi_closed=False)
    check_int(epochs, "epochs", op, minimum=1)
    check_int(batch_size, "batch_size", op, minimum=2)
    check_int(seed, "seed", op, minimum=0)
    data = digits(seed)
    check_fits_train(batch_size, len(data.train[1]), "batch_size", op, minimum=2)
    xv = jnp.asarray(data.val[0])
    out = {}
    for order in ("dropout_before_bn", "bn_before_dropout"):
        model = _OrderNet(order, rate, rngs=nnx.Rngs(params=seed, dropout=seed + 1))
        h = fit_quietly(
            model, optax.adam(1e-3), data, epochs=epochs, batch_size=batch_size, seed=seed
        )
        running = np.asarray(model.bn.var[...])
        model.eval()
        test_var = np.var(np.asarray(model.bn_input(xv)), axis=0, ddof=1)
        model.train()
        train_var = np.var(np.asarray(model.bn_input(xv)), axis=0, ddof=1)
        model.eval()
        out[order] = {
            "shift": float(np.mean(test_var / running)),
            "train_var_ratio": float(np.mean(train_var / running)),
            "val_accuracy": h.val_accuracy[-1],
        }
    return out
