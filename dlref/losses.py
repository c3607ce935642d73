r"""Loss functions for classification and regression.

Conventions shared by every loss here:

* ``reduction`` (keyword-only) is ``"mean"`` (default), ``"sum"`` or ``"none"``. With
  ``"none"`` a *class* loss (:func:`zero_one_loss`, :func:`cross_entropy`,
  :func:`softmax_cross_entropy`, :func:`kl_divergence`, :func:`multiclass_hinge_loss`) returns
  one value per row, shape ``logits.shape[:-1]`` (classes on the last axis); an *elementwise*
  loss (:func:`sigmoid_binary_cross_entropy`, :func:`hinge_loss`, :func:`exponential_loss`,
  :func:`l1_loss`, :func:`l2_loss`, :func:`huber_loss`, :func:`smooth_l1_loss`) returns one
  value per element, the shape of its input. ``"mean"`` averages those values, as PyTorch's
  ``reduction="mean"`` does (optax's losses are unreduced, i.e. ``"none"``).
* Predictions and targets must have the same shape (no broadcasting), checked at trace time.
* Class targets are either integer class indices of shape ``logits.shape[:-1]`` or
  floating one-hot / soft distributions of shape ``logits.shape``; which one is decided from
  the dtype (and checked against the rank). Out-of-range indices cannot be seen at trace time:
  when the labels are concrete (eager call, not under ``jit``/``vmap``/``grad`` tracing of the
  labels) dlref checks them and raises ``ValueError``; under tracing an out-of-range index
  gives a NaN loss for that row (loud, never a plausible wrong number).
* Probabilities (:func:`cross_entropy`'s ``probs``, :func:`kl_divergence`'s ``p`` and ``q``),
  soft/one-hot targets and :func:`sigmoid_binary_cross_entropy`'s targets must lie in [0, 1].
  As for labels, concrete values are checked (``ValueError``); under tracing the check cannot
  run, and the formula's value comes out: a probability below 0 gives NaN (the log of a
  negative number), a probability above 1 or a target outside [0, 1] gives a finite value that
  is not a loss (possibly negative). NaN is not an out-of-range value: it is let through.
* NaN in any input gives NaN in the result, never a number: the ``log p`` clamp below lets NaN
  through (as PyTorch's ``clamp`` and ``jnp.clip`` do), and :func:`zero_one_loss` returns NaN
  for a row with a NaN score (``argmax`` alone would pick the NaN as the maximum).
* Extreme but finite inputs (logits ±1e4, probabilities exactly 0 or 1) give finite values and
  gradients, except :func:`exponential_loss`, whose true value ``e^{-y s}`` overflows the
  dtype once ``-y·s`` exceeds ``log(finfo.max)`` (≈ 88.7 in float32, 709.8 in float64).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from dlref._checks import (
    as_array,
    check_choice,
    check_floating,
    check_in_range,
    check_real,
    check_reduction,
    check_same_shape,
    check_values_in_range,
    concrete_range,
    reduce_loss,
)
from dlref.activations import log_softmax, relu, softplus

__all__ = [
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
]

# log p is clamped to at least this value where p is a probability that may be exactly 0,
# PyTorch's rule for BCELoss ("clamps its log function outputs to be greater than or equal
# to -100"), so that p = 0 gives a finite loss (and a zero gradient) instead of inf.
LOG_CLAMP = -100.0

MULTICLASS_HINGE_VARIANTS = ("crammer_singer", "weston_watkins")


# --------------------------------------------------------------------------------------------
# private helpers


def _floating(x, name: str, op: str) -> jax.Array:
    x = as_array(x, name, op)
    check_floating(x, name, op)
    return x


def _check_unit_interval(x: jax.Array, name: str, op: str) -> None:
    """Concrete values of ``x`` must lie in [0, 1] (NaN passes); traced ones are not looked at."""
    check_values_in_range(x, 0, 1, name, op)


def _real_targets(targets, pred: jax.Array, name: str, op: str) -> jax.Array:
    """Targets of an elementwise loss: same shape as ``pred``; ints and bools are cast."""
    targets = as_array(targets, name, op)
    check_same_shape(pred, targets, ("predictions", name), op)
    dtype = targets.dtype
    if jnp.issubdtype(dtype, jnp.complexfloating):
        raise TypeError(f"{op}: {name} must have a real dtype, got {dtype}")
    if not jnp.issubdtype(dtype, jnp.floating):
        targets = targets.astype(pred.dtype)
    return targets


def _class_logits(logits, name: str, op: str) -> jax.Array:
    logits = _floating(logits, name, op)
    if logits.ndim < 1:
        raise ValueError(
            f"{op}: {name} must have at least one dimension (classes last), got shape "
            f"{logits.shape}"
        )
    return logits


def _check_label_range(labels: jax.Array, num_classes: int, op: str) -> None:
    """Check concrete labels lie in [0, C); traced labels are not looked at (see module doc)."""
    extrema = concrete_range(labels)
    if extrema is None:
        return
    lo, hi = extrema
    if lo < 0 or hi >= num_classes:
        raise ValueError(
            f"{op}: labels must lie in [0, {num_classes}) for {num_classes} classes, "
            f"got values in [{lo}, {hi}]"
        )


def _class_targets(logits: jax.Array, labels, op: str, *, allow_soft: bool = True):
    """Classify ``labels`` as integer indices or distributions over the last axis of logits.

    Returns ``(kind, labels)`` with ``kind`` ``"index"`` or ``"dist"``.
    """
    labels = as_array(labels, "labels", op)
    dtype = labels.dtype
    batch = logits.shape[:-1]
    if jnp.issubdtype(dtype, jnp.integer):
        if labels.shape != batch:
            raise ValueError(
                f"{op}: integer labels must have shape logits.shape[:-1]={batch}, got "
                f"{labels.shape} (logits shape {logits.shape})"
            )
        _check_label_range(labels, logits.shape[-1], op)
        return "index", labels
    if jnp.issubdtype(dtype, jnp.floating):
        if labels.shape == batch:
            raise TypeError(
                f"{op}: labels of shape {labels.shape} are class indices and must have an "
                f"integer dtype, got {dtype}"
            )
        if not allow_soft:
            raise TypeError(f"{op}: labels must be integer class indices, got dtype {dtype}")
        if labels.shape != logits.shape:
            raise ValueError(
                f"{op}: one-hot or soft labels must have the shape of logits {logits.shape}, "
                f"got {labels.shape}"
            )
        _check_unit_interval(labels, "one-hot or soft labels", op)
        return "dist", labels
    raise TypeError(
        f"{op}: labels must be integer class indices or floating distributions, got {dtype}"
    )


def _pick(x: jax.Array, labels: jax.Array) -> jax.Array:
    """``x[..., labels]`` per row; NaN for an index outside [0, C) (traced labels only)."""
    c = x.shape[-1]
    valid = (labels >= 0) & (labels < c)
    safe = jnp.where(valid, labels, 0)
    picked = jnp.take_along_axis(x, safe[..., None], axis=-1)[..., 0]
    return jnp.where(valid, picked, jnp.asarray(jnp.nan, x.dtype))


def _clamped_log(p: jax.Array) -> jax.Array:
    """``max(log p, -100)``; ``p`` is replaced by 1 inside the log where it is 0.

    Only ``p == 0`` is special-cased (a test NaN fails), and ``jnp.maximum`` propagates NaN, so
    NaN stays NaN and a negative ``p`` gives NaN (the log of a negative number).
    """
    zero = p == 0
    logp = jnp.log(jnp.where(zero, jnp.ones_like(p), p))
    return jnp.where(zero, jnp.asarray(LOG_CLAMP, p.dtype), jnp.maximum(logp, LOG_CLAMP))


@jax.custom_jvp
def _abs(x: jax.Array) -> jax.Array:
    return jnp.abs(x)


@_abs.defjvp
def _abs_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    # |x|'(0) = sign(0) = 0, PyTorch's subgradient (jnp.abs alone uses 1 at 0).
    return jnp.abs(x), t * jnp.sign(x)


def _error(predictions, targets, op: str) -> jax.Array:
    predictions = _floating(predictions, "predictions", op)
    targets = _real_targets(targets, predictions, "targets", op)
    return predictions - targets


# --------------------------------------------------------------------------------------------
# classification


def zero_one_loss(logits, labels, *, reduction="mean") -> jax.Array:
    r"""Zero-one loss: 1 where the arg-max class is wrong, 0 where it is right.

    .. math::
        \ell(z, y) = [\arg\max_j z_j \ne y]

    With ``reduction="mean"`` this is the error rate (1 − accuracy). Ties in ``logits`` go to
    the first maximal class (``jnp.argmax``). One-hot or soft labels are reduced to their
    arg-max class. The loss is piecewise constant: its gradient is 0 wherever it exists, and
    dlref returns 0 everywhere — which is why it is evaluated, not trained on.

    A row with a NaN score (or a NaN soft label) gives NaN: ``jnp.argmax`` treats NaN as the
    maximum, which would turn a NaN into a plausible 0 or 1 (scikit-learn raises on NaN).

    Matches scikit-learn's ``zero_one_loss(normalize=True)`` on ``argmax(logits)``; no optax or
    PyTorch counterpart.

    Args:
      logits: floating scores, shape ``(..., C)``.
      labels: integer classes, shape ``(...)``, or one-hot/soft targets, shape ``(..., C)``.
      reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Returns:
      A scalar, or with ``reduction="none"`` one value per row, shape ``(...)``, of the dtype of
      ``logits``.

    Raises:
      TypeError: non-floating logits; floating labels of shape ``(...)``.
      ValueError: a labels shape that fits neither form; concrete labels outside [0, C);
        unknown ``reduction``.

    Example:
      >>> zero_one_loss(jnp.array([[2.0, 1.0], [0.0, 3.0]]), jnp.array([0, 0])).item()
      0.5
    """
    op = "zero_one_loss"
    check_reduction(reduction, op)
    logits = _class_logits(logits, "logits", op)
    kind, labels = _class_targets(logits, labels, op)
    logits = jax.lax.stop_gradient(logits)
    nan_row = jnp.any(jnp.isnan(logits), axis=-1)
    if kind == "dist":
        nan_row = nan_row | jnp.any(jnp.isnan(labels), axis=-1)
        labels = jnp.argmax(labels, axis=-1)
    predicted = jnp.argmax(logits, axis=-1)
    wrong = (predicted != labels).astype(logits.dtype)
    valid = (labels >= 0) & (labels < logits.shape[-1]) & ~nan_row
    wrong = jnp.where(valid, wrong, jnp.asarray(jnp.nan, logits.dtype))
    return reduce_loss(wrong, reduction, op)


def cross_entropy(probs, targets, *, reduction="mean") -> jax.Array:
    r"""Cross-entropy of predicted probabilities against target classes or distributions.

    .. math::
        \ell(p, y) = -\sum_c y_c \log p_c \qquad (= -\log p_y \text{ for a class index } y)

    with ``0 · log 0 = 0`` (a class with target 0 contributes nothing, even where ``p_c = 0``)
    and ``log p`` clamped at ``-100`` (PyTorch's ``BCELoss`` rule), so a predicted
    probability of exactly 0 for a target class gives the finite loss ``100·y_c`` and a zero
    gradient instead of ``inf``. For ``p_c ≥ e^{-100}`` no clamping happens. NaN passes the
    clamp (``max(NaN, −100) = NaN``, as PyTorch's ``clamp``), also where ``y_c = 0``
    (``0 · NaN = NaN``, as in optax's soft-label losses); with a class index only ``p_y``
    enters, so NaN elsewhere in the row does not (as PyTorch's ``nll_loss``). Prefer
    :func:`softmax_cross_entropy` on logits: it never needs the clamp.

    Matches PyTorch's ``F.nll_loss(torch.log(p), y)`` for class indices and
    ``F.cross_entropy``'s soft-target formula applied to probabilities; for a binary
    problem written as two columns, ``F.binary_cross_entropy``.

    Args:
      probs: floating probabilities, shape ``(..., C)``, each row summing to 1 (not checked).
      targets: integer classes, shape ``(...)``, or one-hot/soft floating targets, shape
        ``(..., C)``.
      reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Returns:
      A scalar, or with ``reduction="none"`` one value per row, shape ``(...)``.

    Raises:
      TypeError: non-floating probs; floating targets of shape ``(...)``.
      ValueError: a targets shape that fits neither form; concrete class indices outside
        [0, C); concrete probabilities or soft targets outside [0, 1] (not checked under
        ``jit``: see the module docstring); unknown ``reduction``.

    Example:
      >>> round(cross_entropy(jnp.array([[0.5, 0.25, 0.25]]), jnp.array([1])).item(), 6)
      1.386294
    """
    op = "cross_entropy"
    check_reduction(reduction, op)
    probs = _class_logits(probs, "probs", op)
    kind, targets = _class_targets(probs, targets, op)
    _check_unit_interval(probs, "probs", op)
    if kind == "index":
        values = -_pick(_clamped_log(probs), targets)
    else:
        # 0 · log 0 = 0 through the clamp (0 · −100); no mask, which would also hide a NaN p_c
        # where y_c = 0 (optax's soft-label losses give NaN there too: 0 · NaN = NaN)
        values = -jnp.sum(targets * _clamped_log(probs), axis=-1)
    return reduce_loss(values, reduction, op)


def softmax_cross_entropy(logits, labels, *, reduction="mean") -> jax.Array:
    r"""Cross-entropy of ``softmax(logits)`` against class indices or distributions.

    .. math::
        \ell(z, y) = -\sum_c y_c \log \mathrm{softmax}(z)_c
                   = \log\sum_j e^{z_j} - \sum_c y_c z_c
                   \quad(= -z_y + \log\sum_j e^{z_j} \text{ for a class index } y)

    (``Σ_c y_c = 1`` assumed for the middle form), computed from :func:`log_softmax`, so logits
    of ±1e4 give finite values and gradients. The gradient is ``softmax(z) − y``. The study guide's
    "softmax loss" ``−Σ e^{z_i}/Σ_j e^{z_j}`` is the constant −1 (erratum 11, docs/errata.md).

    Integer ``labels`` of shape ``logits.shape[:-1]`` are class indices; floating labels of
    ``logits.shape`` are one-hot or soft distributions.

    Matches ``optax.softmax_cross_entropy_with_integer_labels`` (indices) and
    ``optax.softmax_cross_entropy`` (distributions); PyTorch's ``F.cross_entropy(z, y)``
    (both forms, ``label_smoothing=0``).

    Args:
      logits: floating unnormalised log-probabilities, shape ``(..., C)``.
      labels: integer classes, shape ``(...)``, or floating targets, shape ``(..., C)``.
      reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Returns:
      A scalar, or with ``reduction="none"`` one value per row, shape ``(...)``.

    Raises:
      TypeError: non-floating logits; floating labels of shape ``(...)``.
      ValueError: a labels shape that fits neither form; concrete labels outside [0, C) or
        concrete soft labels outside [0, 1]; unknown ``reduction``.

    Example:
      >>> round(softmax_cross_entropy(jnp.zeros((1, 4)), jnp.array([2])).item(), 6)  # log 4
      1.386294
    """
    op = "softmax_cross_entropy"
    check_reduction(reduction, op)
    logits = _class_logits(logits, "logits", op)
    kind, labels = _class_targets(logits, labels, op)
    logp = log_softmax(logits, -1)
    if kind == "index":
        values = -_pick(logp, labels)
    else:
        values = -jnp.sum(labels * logp, axis=-1)
    return reduce_loss(values, reduction, op)


def sigmoid_binary_cross_entropy(logits, targets, *, reduction="mean") -> jax.Array:
    r"""Binary cross-entropy of ``sigmoid(logits)`` against targets in [0, 1], elementwise.

    .. math::
        \ell(z, y) = -y \log\sigma(z) - (1 - y)\log(1 - \sigma(z))
                   = \mathrm{softplus}(z) - y\,z
                   = \max(z, 0) - y\,z + \log(1 + e^{-|z|})

    The last form never overflows: logits of ±1e4 give finite values and gradients
    (``∂ℓ/∂z = σ(z) − y``).

    Matches ``optax.sigmoid_binary_cross_entropy``; PyTorch's
    ``F.binary_cross_entropy_with_logits`` (without ``weight`` / ``pos_weight``).

    Targets outside [0, 1] are rejected when concrete (optax and PyTorch accept them and
    return ``softplus(z) − y·z``, which can be negative); under ``jit`` they cannot be checked
    and give that value.

    Args:
      logits: floating logits, any shape.
      targets: targets in [0, 1] (0/1 labels or probabilities), the shape of ``logits``;
        integer and boolean targets are cast to the dtype of ``logits``.
      reduction: ``"mean"``, ``"sum"`` or ``"none"`` (one value per element).

    Returns:
      A scalar, or with ``reduction="none"`` an array of the shape of ``logits``.

    Raises:
      TypeError: non-floating logits.
      ValueError: shapes differ; concrete targets outside [0, 1]; unknown ``reduction``.

    Example:
      >>> round(sigmoid_binary_cross_entropy(jnp.array([0.0]), jnp.array([1.0])).item(), 6)
      0.693147
    """
    op = "sigmoid_binary_cross_entropy"
    check_reduction(reduction, op)
    logits = _floating(logits, "logits", op)
    targets = _real_targets(targets, logits, "targets", op)
    _check_unit_interval(targets, "targets", op)
    values = softplus(logits) - targets * logits
    return reduce_loss(values, reduction, op)


def kl_divergence(p, q, *, reduction="mean") -> jax.Array:
    r"""Kullback–Leibler divergence ``KL(p ‖ q)`` of distributions on the last axis.

    .. math::
        D_{KL}(p \,\|\, q) = \sum_i p_i (\log p_i - \log q_i) = -H(p) + H(p, q) \ge 0

    with ``0 · log 0 = 0``: an entry with ``p_i = 0`` contributes 0 whatever ``q_i`` is, and
    its gradient is finite (``∂/∂p_i = −log q_i`` there, the ``log p_i + 1`` term dropped;
    ``∂/∂q_i = 0``; optax's gradient w.r.t. ``p`` is NaN at such entries). ``log q`` is
    clamped at −100 (PyTorch's ``BCELoss`` rule, as :func:`cross_entropy`), so ``q_i = 0``
    where ``p_i > 0`` gives a finite value. NaN in ``p`` or ``q`` gives NaN for its row, as
    optax's ``kl_divergence`` does (even where ``p_i = 0``: ``0 · NaN = NaN``). Concrete ``p``
    and ``q`` must lie in [0, 1]; under ``jit`` a negative entry gives NaN.
    The study guide's ``Σ log p_i − log q_i`` drops the weights ``p_i`` and can be negative
    (erratum 12, docs/errata.md).

    Matches ``optax.kl_divergence(jnp.log(q), p)`` (optax takes log-predictions first, targets
    second) and ``scipy.special.rel_entr(p, q).sum(-1)``; PyTorch's
    ``F.kl_div(torch.log(q), p, reduction="sum")`` per row (PyTorch also takes log q first).

    Args:
      p: floating target distribution, shape ``(..., C)``, rows summing to 1 (not checked).
      q: floating predicted distribution, the shape of ``p``.
      reduction: ``"mean"``, ``"sum"`` or ``"none"`` (one value per row, shape ``(...)``);
        ``"mean"`` averages over rows, i.e. PyTorch's ``reduction="batchmean"``.

    Returns:
      A scalar, or with ``reduction="none"`` an array of shape ``(...)``.

    Raises:
      TypeError: non-floating ``p`` or ``q``.
      ValueError: shapes differ or are scalars; concrete values of ``p`` or ``q`` outside
        [0, 1]; unknown ``reduction``.

    Example:
      >>> round(kl_divergence(jnp.array([1.0, 0.0]), jnp.array([0.5, 0.5])).item(), 6)  # log 2
      0.693147
    """
    op = "kl_divergence"
    check_reduction(reduction, op)
    p = _class_logits(p, "p", op)
    q = _floating(q, "q", op)
    check_same_shape(p, q, ("p", "q"), op)
    _check_unit_interval(p, "p", op)
    _check_unit_interval(q, "q", op)
    log_p = jnp.log(jnp.where(p == 0, jnp.ones_like(p), p))  # 0 where p = 0; NaN stays NaN
    values = jnp.sum(p * (log_p - _clamped_log(q)), axis=-1)
    return reduce_loss(values, reduction, op)


def hinge_loss(scores, targets, margin=1.0, *, reduction="mean") -> jax.Array:
    r"""Binary hinge loss for targets in {−1, +1}, elementwise.

    .. math::
        \ell(s, y) = \max(0,\ m - y\,s)

    The score ``s`` is unbounded and ``y ∈ {−1, +1}``; the loss is 0 once the prediction is
    right with margin ``m``. Under differentiation the kink ``y·s = m`` takes the subgradient 0
    (as :func:`dlref.activations.relu`; optax's ``jnp.maximum`` gives half the slope there).
    The study guide's ``max(0, Y·f(x))`` with "y ∈ (−1, 1)" penalises correct predictions
    (erratum 13, docs/errata.md). Targets are not checked to be ±1 (a value check is impossible
    under ``jit``); other values simply scale the margin term.

    Matches ``optax.hinge_loss`` (``m = 1``); PyTorch's ``F.hinge_embedding_loss`` is a
    different loss (on distances), and ``F.soft_margin_loss`` is the logistic variant.

    Args:
      scores: floating decision values, any shape.
      targets: ±1 targets, the shape of ``scores`` (ints are cast).
      margin: the margin m (a number or scalar array), default 1.
      reduction: ``"mean"``, ``"sum"`` or ``"none"`` (one value per element).

    Returns:
      A scalar, or with ``reduction="none"`` an array of the shape of ``scores``.

    Raises:
      TypeError: non-floating scores.
      ValueError: shapes differ; unknown ``reduction``.

    Example:
      >>> hinge_loss(jnp.array([2.0, 0.5, -1.0]), jnp.array([1, 1, 1]), reduction="none").tolist()
      [0.0, 0.5, 2.0]
    """
    op = "hinge_loss"
    check_reduction(reduction, op)
    check_real(margin, "margin", op)
    scores = _floating(scores, "scores", op)
    targets = _real_targets(targets, scores, "targets", op)
    values = relu(margin - targets * scores)
    return reduce_loss(values, reduction, op)


def multiclass_hinge_loss(
    scores, labels, *, margin=1.0, variant="crammer_singer", reduction="mean"
) -> jax.Array:
    r"""Multiclass hinge (SVM) loss, Crammer–Singer or Weston–Watkins.

    .. math::
        \text{crammer\_singer:}\quad \ell(s, y) = \max\bigl(0,\ m + \max_{j \ne y} s_j - s_y\bigr)

        \text{weston\_watkins:}\quad \ell(s, y) = \sum_{j \ne y} \max(0,\ m + s_j - s_y)

    Crammer–Singer (the default) penalises only the strongest wrong class; it matches
    ``optax.multiclass_hinge_loss`` (``m = 1``), which computes
    ``max_j(s_j + 1 − [j = y]) − s_y``. Weston–Watkins sums over every wrong class; PyTorch's
    ``nn.MultiMarginLoss(p=1, margin=m)`` is it divided by the number of classes ``C``
    (``weston_watkins = C · MultiMarginLoss`` per example). Under differentiation a kink of
    ``max(0, ·)`` takes the subgradient 0 (as :func:`dlref.activations.relu`); ties among the
    highest wrong scores share the gradient equally (``jnp.max``'s rule).

    Args:
      scores: floating class scores, shape ``(..., C)`` with ``C ≥ 2``.
      labels: integer classes, shape ``(...)``.
      margin: the margin m (a number or scalar array), default 1.
      variant: ``"crammer_singer"`` or ``"weston_watkins"``.
      reduction: ``"mean"``, ``"sum"`` or ``"none"`` (one value per row, shape ``(...)``).

    Returns:
      A scalar, or with ``reduction="none"`` an array of shape ``(...)``.

    Raises:
      TypeError: non-floating scores; non-integer labels.
      ValueError: labels shape is not ``scores.shape[:-1]``; ``C < 2``; concrete labels outside
        [0, C); unknown ``variant`` or ``reduction``.

    Example:
      >>> s, y = jnp.array([[1.0, 0.5, 0.8]]), jnp.array([0])
      >>> round(multiclass_hinge_loss(s, y).item(), 6)  # max(0, 1 + 0.8 - 1)
      0.8
      >>> round(multiclass_hinge_loss(s, y, variant="weston_watkins").item(), 6)  # 0.5 + 0.8
      1.3

    References:
      Crammer and Singer, "On the algorithmic implementation of multiclass kernel-based
      vector machines", JMLR 2001. Weston and Watkins, "Support vector machines for
      multi-class pattern recognition", ESANN 1999.
    """
    op = "multiclass_hinge_loss"
    check_reduction(reduction, op)
    check_choice(variant, MULTICLASS_HINGE_VARIANTS, "variant", op)
    check_real(margin, "margin", op)
    scores = _class_logits(scores, "scores", op)
    if scores.shape[-1] < 2:
        raise ValueError(
            f"{op}: scores must have at least 2 classes on the last axis, got shape {scores.shape}"
        )
    _, labels = _class_targets(scores, labels, op, allow_soft=False)
    s_y = _pick(scores, labels)
    is_label = jnp.arange(scores.shape[-1]) == labels[..., None]
    margins = margin + scores - s_y[..., None]  # m + s_j - s_y
    if variant == "crammer_singer":
        neg_inf = jnp.asarray(-jnp.inf, scores.dtype)
        values = relu(jnp.max(jnp.where(is_label, neg_inf, margins), axis=-1))
    else:
        values = jnp.sum(jnp.where(is_label, jnp.zeros_like(margins), relu(margins)), axis=-1)
    return reduce_loss(values, reduction, op)


def exponential_loss(scores, targets, *, reduction="mean") -> jax.Array:
    r"""Exponential loss (AdaBoost's), elementwise, for targets in {−1, +1}.

    .. math::
        \ell(s, y) = e^{-y\,s}, \qquad \partial\ell/\partial s = -y\,e^{-y\,s}

    The value is exact until it overflows the dtype: ``-y·s > log(finfo.max)`` (≈ 88.7 in
    float32, 709.8 in float64) gives ``inf`` — the true value is not representable, and
    clipping it would hide that. This is the one loss here without finite values at |s| = 1e4.

    No optax or PyTorch counterpart.

    Args:
      scores: as :func:`hinge_loss`, and so are ``targets`` and ``reduction`` (there is no
        margin).

    Returns:
      The loss, reduced as :func:`hinge_loss`'s.

    Raises:
      TypeError: non-floating scores.
      ValueError: the errors of :func:`hinge_loss` (shapes, ``reduction``).

    Example:
      >>> exponential_loss(jnp.array([0.0]), jnp.array([1])).item()  # e^0
      1.0

    References:
      Freund and Schapire, "A decision-theoretic generalization of on-line learning and an
      application to boosting", 1997.
    """
    op = "exponential_loss"
    check_reduction(reduction, op)
    scores = _floating(scores, "scores", op)
    targets = _real_targets(targets, scores, "targets", op)
    return reduce_loss(jnp.exp(-targets * scores), reduction, op)


# --------------------------------------------------------------------------------------------
# regression


def l1_loss(predictions, targets, *, reduction="mean") -> jax.Array:
    r"""Absolute error, elementwise (mean: MAE).

    .. math::
        \ell(\hat y, y) = |\hat y - y|, \qquad
        \partial\ell/\partial\hat y = \operatorname{sign}(\hat y - y)

    Under differentiation the kink takes ``sign(0) = 0`` (PyTorch's subgradient; ``jnp.abs``
    alone would give 1).

    Matches PyTorch's ``nn.L1Loss``; optax has no l1 loss (``jnp.abs(p - t)``).

    Args:
      predictions: floating predictions, any shape.
      targets: targets of the same shape (ints are cast).
      reduction: ``"mean"``, ``"sum"`` or ``"none"`` (one value per element).

    Returns:
      A scalar, or with ``reduction="none"`` an array of the shape of ``predictions``.

    Raises:
      TypeError: non-floating predictions.
      ValueError: ``targets`` not of the shape of ``predictions``; unknown ``reduction``.

    Example:
      >>> l1_loss(jnp.array([1.0, 2.0]), jnp.array([0.0, 4.0])).item()  # (1 + 2) / 2
      1.5
    """
    op = "l1_loss"
    check_reduction(reduction, op)
    return reduce_loss(_abs(_error(predictions, targets, op)), reduction, op)


def l2_loss(predictions, targets, *, reduction="mean") -> jax.Array:
    r"""Squared error, elementwise (mean: MSE).

    .. math::
        \ell(\hat y, y) = (\hat y - y)^2, \qquad \partial\ell/\partial\hat y = 2(\hat y - y)

    The gradient grows *linearly* with the error (the study guide says it "explodes",
    erratum 14, docs/errata.md); :func:`huber_loss` and :func:`smooth_l1_loss` bound it.

    Matches PyTorch's ``nn.MSELoss`` and ``optax.squared_error``; it is **twice**
    ``optax.l2_loss``, which carries Bishop's factor 1/2.

    Args:
      predictions, targets, reduction: as :func:`l1_loss`.

    Returns:
      As :func:`l1_loss`: a scalar, or one value per element.

    Raises:
      TypeError: non-floating predictions.
      ValueError: as :func:`l1_loss`.

    Example:
      >>> l2_loss(jnp.array([1.0, 2.0]), jnp.array([0.0, 4.0])).item()  # (1 + 4) / 2
      2.5
    """
    op = "l2_loss"
    check_reduction(reduction, op)
    d = _error(predictions, targets, op)
    return reduce_loss(d * d, reduction, op)


def _thresholded_error(
    predictions, targets, threshold, name: str, reduction, op: str, *, allow_zero
):
    """The checks of :func:`huber_loss` and :func:`smooth_l1_loss`, then ``(d, |d|, threshold)``
    with ``d = predictions - targets`` and the threshold (``delta`` / ``beta``) in its dtype."""
    check_reduction(reduction, op)
    check_in_range(threshold, 0.0, float("inf"), name, op, lo_closed=allow_zero)
    d = _error(predictions, targets, op)
    return d, _abs(d), jnp.asarray(threshold, d.dtype)


def huber_loss(predictions, targets, delta=1.0, *, reduction="mean") -> jax.Array:
    r"""Huber loss: quadratic for small errors, linear (slope δ) for large ones; elementwise.

    .. math::
        \ell(d) = \begin{cases} \tfrac12 d^2 & |d| \le \delta \\
                                \delta\,(|d| - \tfrac12\delta) & |d| > \delta \end{cases},
        \qquad |\partial\ell/\partial d| = \min(|d|, \delta) \le \delta

    with ``d = predictions − targets``. ``huber_loss(δ) = δ · smooth_l1_loss(β=δ)``.

    Matches ``optax.huber_loss(delta=δ)`` and PyTorch's ``nn.HuberLoss(delta=δ)``.

    Args:
      predictions, targets: as :func:`l1_loss`.
      delta: the threshold δ > 0 (a number or scalar array), default 1.
      reduction: as :func:`l1_loss`.

    Returns:
      As :func:`l1_loss`: a scalar, or one value per element.

    Raises:
      TypeError: as :func:`l1_loss`.
      ValueError: as :func:`l1_loss`; ``delta ≤ 0`` (a Python number).

    Example:
      >>> huber_loss(jnp.array([0.5, 3.0]), jnp.zeros(2), reduction="none").tolist()
      [0.125, 2.5]

    References:
      Huber, "Robust estimation of a location parameter", Annals of Mathematical Statistics,
      1964.
    """
    op = "huber_loss"
    d, a, delta = _thresholded_error(
        predictions, targets, delta, "delta", reduction, op, allow_zero=False
    )
    values = jnp.where(a <= delta, 0.5 * d * d, delta * (a - 0.5 * delta))
    return reduce_loss(values, reduction, op)


def smooth_l1_loss(predictions, targets, beta=1.0, *, reduction="mean") -> jax.Array:
    r"""Smooth L1 loss (PyTorch's): quadratic below β, ``|d| − β/2`` above; elementwise.

    .. math::
        \ell(d) = \begin{cases} 0.5\, d^2 / \beta & |d| < \beta \\
                                |d| - 0.5\,\beta & |d| \ge \beta \end{cases},
        \qquad |\partial\ell/\partial d| = \min(|d|/\beta, 1) \le 1

    with ``d = predictions − targets``; ``β = 0`` is the L1 loss (as in PyTorch).
    ``smooth_l1_loss(β) = huber_loss(δ=β) / β`` for ``β > 0``.

    Matches PyTorch's ``nn.SmoothL1Loss(beta=β)`` (Fast R-CNN's loss for β = 1);
    ``optax.huber_loss(delta=β) / β``.

    Args:
      predictions, targets: as :func:`l1_loss`.
      beta: the threshold β ≥ 0 (a number or scalar array), default 1.
      reduction: as :func:`l1_loss`.

    Returns:
      As :func:`huber_loss`.

    Raises:
      TypeError: as :func:`l1_loss`.
      ValueError: as :func:`huber_loss`, with ``beta < 0`` for ``delta ≤ 0``.

    Example:
      >>> smooth_l1_loss(jnp.array([0.5, 3.0]), jnp.zeros(2), reduction="none").tolist()
      [0.125, 2.5]

    References:
      Girshick, "Fast R-CNN", ICCV 2015.
    """
    op = "smooth_l1_loss"
    d, a, beta = _thresholded_error(
        predictions, targets, beta, "beta", reduction, op, allow_zero=True
    )
    # With beta = 0 the quadratic branch is never taken; beta_safe keeps it (and its gradient)
    # finite all the same, since jnp.where differentiates both branches.
    beta_safe = jnp.where(beta > 0, beta, jnp.ones_like(beta))
    small = jnp.where(a < beta, d, jnp.zeros_like(d))
    values = jnp.where(a < beta, 0.5 * small * small / beta_safe, a - 0.5 * beta)
    return reduce_loss(values, reduction, op)
