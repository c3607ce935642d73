"""Vanishing and exploding gradients: depth, activations, BN, shortcuts, init, clipping, time."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax import lax

from dlref._checks import check_int
from dlref.activations import relu
from dlref.experiments._common import (
    _INITS,
    check_choices,
    check_counts,
    check_positive,
    digits,
    init_mlp,
    mlp_apply,
    stable_norm,
)
from dlref.losses import l2_loss, softmax_cross_entropy
from dlref.nn import LSTM, MLP, RNN, lstm_cell, rnn_cell
from dlref.regularize import clip_by_global_norm
from dlref.train import adding_problem

VARIANTS = ("sigmoid", "tanh", "relu", "relu+bn", "residual")

# Per-layer factor by which ‖∂L/∂W‖ grows going back one layer, at initialisation, from mean
# field theory for wide layers (see vanishing_gradients): sigmoid ≤ 1/4 (an upper bound),
# tanh and He-ReLU 1, ReLU + BN √(π/(π − 1)).
THEORY_FACTOR = {
    "sigmoid": 0.25,
    "tanh": 1.0,
    "relu": 1.0,
    "relu+bn": math.sqrt(math.pi / (math.pi - 1)),
}


def _variant_mlp(variant: str, depth: int, width: int, seed: int) -> MLP:
    if variant not in VARIANTS:
        raise ValueError(f"vanishing_gradients: variant must be one of {VARIANTS}, got {variant!r}")
    activation = variant if variant in ("sigmoid", "tanh", "relu") else "relu"
    return MLP(
        64,
        [width] * depth,
        10,
        activation=activation,
        batch_norm=variant in ("relu+bn", "residual"),
        residual=variant == "residual",
        rngs=nnx.Rngs(seed),
    )


def vanishing_gradients(
    *,
    depth: int = 20,
    width: int = 64,
    batch_size: int = 256,
    variants: Sequence[str] = VARIANTS,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Per-layer gradient norms at initialisation of a deep MLP on a batch of digits.

    .. math:: g_l = \\lVert \\partial L / \\partial W_l \\rVert_F,\\quad l = 1..\\text{depth},
              \\qquad \\frac{g_{l}}{g_{l+1}} \\approx \\sqrt{\\sigma_w^2 n\\,
              \\mathbb{E}[\\phi'(z)^2]}

    The study guide claims sigmoid (and tanh) saturate and shrink the gradient layer by layer while
    ReLU, BN and residual connections keep it flowing. ``"residual"`` is ReLU + BN with an
    identity shortcut around every layer, as in a ResNet (without BN, identity shortcuts over
    He-initialised ReLU layers make the activations, and the gradients, grow with depth).
    Kernels use the init suited to each activation (He for ReLU, LeCun for sigmoid/tanh), so
    the comparison is not an init artefact.

    Mean field theory (wide layers, Poole et al. 2016; Schoenholz et al. 2017) predicts the
    per-layer factor above (:data:`THEORY_FACTOR`) for the backward signal ``∂L/∂z_l``, which
    the weight gradient ``h_{l−1}ᵀ ∂L/∂z_l`` follows where the forward activations keep their
    scale (sigmoid outputs in (0, 1), He-initialised ReLU, BN; tanh's slowly shrinking ones
    roughly cancel its slowly growing backward signal): for sigmoid at most ``1/4`` (``σ' ≤ 1/4``,
    ``σ_w² n = 1``); for tanh with LeCun init ``→ 1`` (the pre-activations shrink towards the
    linear regime, ``tanh'(0) = 1``: the "edge of chaos"); for ReLU with He init exactly 1
    (``σ_w² n = 2``, ``E[relu'²] = 1/2``). With BN before each ReLU the gradient *grows*
    backwards by ``√(π/(π−1)) ≈ 1.21`` per layer: BN divides the backward signal by the
    standard deviation of its input, ``√((π−1)/(2π))`` for a ReLU of a unit Gaussian, and
    the ReLU passes half of it (Yang et al. 2019, "A mean field theory of batch normalization").

    Args:
      depth: number of hidden layers.
      width: hidden width (64, the digit size, so residual shortcuts apply to every layer).
      batch_size: examples in the batch.
      variants: any of :data:`VARIANTS`.
      seed: seeds the initialisation and the split.

    Returns:
      ``{variant: array (depth,)}`` of gradient norms, input layer first.

    Raises:
      TypeError: an argument of the wrong type.
      ValueError: an unknown variant, no variant, ``depth`` or ``width`` below 1,
        ``batch_size`` below 2 (BN needs two examples), a negative ``seed``.

    Example:
      >>> g = vanishing_gradients(depth=3, variants=("sigmoid",))
      >>> g["sigmoid"].shape
      (3,)
    """
    op = "vanishing_gradients"
    check_counts(op, depth=depth, width=width)
    check_int(batch_size, "batch_size", op, minimum=2)
    check_choices(variants, VARIANTS, "variants", op, entry="variant")
    check_int(seed, "seed", op, minimum=0)
    x, y = digits(seed).train
    x, y = jnp.asarray(x[:batch_size]), jnp.asarray(y[:batch_size])
    out = {}
    for variant in variants:
        model = _variant_mlp(variant, depth, width, seed)
        model.train()
        grads = nnx.grad(lambda m: softmax_cross_entropy(m(x), y))(model)
        out[variant] = np.array(
            [float(jnp.linalg.norm(grads["linears"][i]["kernel"][...])) for i in range(depth)]
        )
    return out


def _per_layer_factor(norms: np.ndarray) -> float:
    """Geometric-mean factor by which ``norms`` grow from the last entry back to the first.

    Args:
      norms: per-layer gradient norms, input layer first (``(L,)``, ``L ≥ 2``).

    Returns:
      ``(norms[0] / norms[-1]) ** (1 / (L − 1))``.

    Example:
      >>> _per_layer_factor(np.array([8.0, 4.0, 2.0, 1.0]))
      2.0
    """
    norms = np.asarray(norms, float)
    return float((norms[0] / norms[-1]) ** (1 / (len(norms) - 1)))


EXPLODING_INITS = ("large", "xavier", "he")


def exploding_gradients(
    *,
    depth: int = 12,
    width: int = 64,
    batch_size: int = 64,
    learning_rate: float = 0.01,
    steps: int = 15,
    max_norm: float = 1.0,
    overflow_depth: int = 30,
    seed: int = 0,
) -> dict[str, dict]:
    """A deep ReLU MLP with a too-large initialisation: exploding gradients and two fixes.

    .. math:: \\frac{\\lVert \\partial L/\\partial h_l \\rVert}{\\lVert \\partial L/\\partial
              h_{l+1} \\rVert} \\approx \\sqrt{\\sigma_w^2\\, n / 2}

    Weights ``N(0, σ_w²)`` with ``σ_w² = 1`` ("large": the factor is ``√(n/2) = 5.66`` per
    layer for ``n = 64``), Xavier/Glorot (``σ_w² = 2/(n_in + n_out)``: ``√(1/2)`` for ReLU,
    the gradient slowly *vanishes*) or He (``σ_w² = 2/n_in``: exactly 1, He et al. 2015).
    The guide (梯度消失和梯度爆炸): gradients explode in deep networks with too-large initial
    weights, and the loss becomes NaN; the remedies include gradient clipping and better
    initialisation. Measured:

    * ``factor``: the per-layer growth, going back, of the backward signal ``‖∂L/∂h_l‖``
      (``h_l`` the output of hidden layer ``l``) at init, against ``theory_factor``. (The
      weight gradients ``∂L/∂W_l = h_{l−1}ᵀ ∂L/∂z_l`` of a plain stack are all of the same
      size: the forward activations grow by the same factor the backward signal shrinks; the
      explosion shows in their common size, ``weight_grad``, ∝ factor^depth);
    * ``global_norm_float32``: the global gradient norm at depth ``overflow_depth``, computed in
      float32 by :func:`dlref.clip_by_global_norm`: for "large" it is ``~10^23`` (``5.66^30 ≈
      10^22.6`` per layer), whose square is beyond float32's ``3.4·10^38`` — a plain sum of
      squares overflows to ``inf`` there, and clipping by ``inf`` would zero the update; dlref
      sums the squares of ``g / 2^k`` and stays finite, so clipping still works;
    * ``loss``: ``steps`` of SGD at ``learning_rate`` from each init at ``depth``; "large"
      diverges to ``inf``/NaN after its first step, "large_clipped" (the same, with
      ``clip_by_global_norm(max_norm)``) stays finite, "he" trains.

    Args:
      depth: hidden layers of the trained network.
      width: hidden width ``n``.
      batch_size: digits per step.
      learning_rate: SGD step size.
      steps: SGD steps.
      max_norm: the clipping threshold.
      overflow_depth: depth at which the float32 norm is measured.
      seed: seeds the weights, the batches and the split.

    Returns:
      ``{"per_layer": {init: (depth,) ‖∂L/∂h_l‖}, "factor": {init}, "theory_factor": {init},
      "weight_grad": {init: global norm of ∂L/∂W}, "global_norm_float32": {init}, "loss":
      {"large", "large_clipped", "xavier", "he": (steps + 1,)}}``.

    Raises:
      TypeError: an argument of the wrong type.
      ValueError: ``depth`` below 2 (the per-layer factor needs two layers), ``width``,
        ``batch_size``, ``steps`` or ``overflow_depth`` below 1, a ``learning_rate`` or
        ``max_norm`` that is not finite and positive, a negative ``seed``.

    Example:
      >>> r = exploding_gradients(depth=4, steps=2, overflow_depth=4)
      >>> r["theory_factor"]["he"]
      1.0
    """
    op = "exploding_gradients"
    check_int(depth, "depth", op, minimum=2)
    check_counts(op, width=width, batch_size=batch_size, steps=steps, overflow_depth=overflow_depth)
    check_positive(learning_rate, "learning_rate", op)
    check_positive(max_norm, "max_norm", op)
    check_int(seed, "seed", op, minimum=0)
    x, y = digits(seed).train
    xb, yb = jnp.asarray(x[:batch_size]), jnp.asarray(y[:batch_size])
    sizes = [x.shape[1], *[width] * depth, 10]

    def loss(p, xb, yb):
        return softmax_cross_entropy(mlp_apply(p, xb, relu), yb)

    def perturbed_loss(eps, p):  # eps[l] is added to hidden layer l's output: ∂L/∂eps = ∂L/∂h_l
        a = xb
        for (w, b), e in zip(p[:-1], eps, strict=True):
            a = relu(a @ w + b) + e
        w, b = p[-1]
        return softmax_cross_entropy(a @ w + b, yb)

    def init(name, sizes):
        return init_mlp(jax.random.key(seed), sizes, "normal" if name == "large" else name)

    out = {
        "per_layer": {},
        "weight_grad": {},
        "factor": {},
        "theory_factor": {},
        "global_norm_float32": {},
    }
    eps = [jnp.zeros((batch_size, width))] * depth
    # compiled once each: the three inits have the same shapes
    grads = jax.jit(lambda p: (jax.grad(perturbed_loss)(eps, p), jax.grad(loss)(p, xb, yb)))
    deep_norm = jax.jit(lambda p: clip_by_global_norm(jax.grad(loss)(p, xb, yb), max_norm)[1])
    for name in EXPLODING_INITS:
        g_h, g_w = grads(init(name, sizes))
        norms = np.asarray([stable_norm(g) for g in g_h])
        out["per_layer"][name] = norms
        out["factor"][name] = _per_layer_factor(norms)
        out["weight_grad"][name] = stable_norm(g_w)
        var = _INITS["normal" if name == "large" else name](width, width)
        out["theory_factor"][name] = math.sqrt(var * width / 2)
        deep = init(name, [x.shape[1], *[width] * overflow_depth, 10])
        out["global_norm_float32"][name] = float(deep_norm(deep))

    batches = jax.random.randint(jax.random.key(seed + 1), (steps, batch_size), 0, len(x))
    xj, yj = jnp.asarray(x), jnp.asarray(y)

    @functools.partial(jax.jit, static_argnums=2)
    def train(p, batches, clip):
        def step(p, idx):
            g = jax.grad(loss)(p, xj[idx], yj[idx])
            if clip:
                g, _ = clip_by_global_norm(g, max_norm)
            p = jax.tree.map(lambda a, ga: a - learning_rate * ga, p, g)
            return p, loss(p, xb, yb)

        return jnp.concatenate([loss(p, xb, yb)[None], jax.lax.scan(step, p, batches)[1]])

    out["loss"] = {
        "large": np.asarray(train(init("large", sizes), batches, False)),
        "large_clipped": np.asarray(train(init("large", sizes), batches, True)),
        "xavier": np.asarray(train(init("xavier", sizes), batches, False)),
        "he": np.asarray(train(init("he", sizes), batches, False)),
    }
    return out


def gradient_norms_through_time(
    *, length: int = 50, hidden: int = 32, batch_size: int = 32, seed: int = 0
) -> dict[str, np.ndarray]:
    """``‖∂L/∂h_t‖`` for every step ``t`` of an RNN and an LSTM at initialisation.

    .. math:: g_t = \\Big\\lVert \\frac{\\partial L}{\\partial h_t} \\Big\\rVert_F,
              \\quad L = \\mathrm{MSE}(w^\\top h_T, y) \\text{ on the adding problem}

    Computed by adding a zero perturbation ``ε_t`` to each hidden state inside the scan and
    differentiating with respect to it (``∂L/∂ε_t = ∂L/∂h_t``). For the RNN the gradient
    is multiplied by ``diag(1 − h_t²) W_hh^T`` at every step and decays geometrically
    backwards in time; the LSTM's additive cell path (``∂c_t/∂c_{t−1} = f_t``, forget
    bias 1) decays far more slowly. This fills the study guide's empty LSTM section (erratum 17,
    docs/errata.md).

    Args:
      length: sequence length ``T``.
      hidden: hidden size.
      batch_size: sequences in the batch.
      seed: seeds data and init.

    Returns:
      ``{"rnn": (T,), "lstm": (T,)}``, index ``t`` = step ``t`` (the last is ``T−1``).

    Raises:
      TypeError: an argument that is not an int.
      ValueError: ``length``, ``hidden`` or ``batch_size`` below 1, a negative ``seed``.

    Example:
      >>> g = gradient_norms_through_time(length=10)
      >>> g["rnn"].shape
      (10,)
    """
    op = "gradient_norms_through_time"
    check_counts(op, length=length, hidden=hidden, batch_size=batch_size)
    check_int(seed, "seed", op, minimum=0)
    key = jax.random.key(seed)
    xs, y = adding_problem(key, batch_size, length)
    out = {}
    for name, cls, cell in (("rnn", RNN, rnn_cell), ("lstm", LSTM, lstm_cell)):
        model = cls(2, hidden, out_features=1, rngs=nnx.Rngs(seed))
        params = model.params
        w, b = model.head.kernel[...], model.head.bias[...]
        carry0 = model.initial_carry(batch_size)

        def loss(eps, params=params, w=w, b=b, carry0=carry0, cell=cell):
            def step(carry, inp):
                x_t, e_t = inp
                new = cell(params, carry, x_t)
                new = (new[0] + e_t, new[1]) if isinstance(new, tuple) else new + e_t
                return new, None

            final, _ = lax.scan(step, carry0, (jnp.swapaxes(xs, 0, 1), eps))
            h = final[0] if isinstance(final, tuple) else final
            return l2_loss((h @ w + b)[:, 0], y)

        g = jax.grad(loss)(jnp.zeros((length, batch_size, hidden)))
        out[name] = np.asarray(jnp.sqrt(jnp.sum(g**2, axis=(1, 2))))
    return out
