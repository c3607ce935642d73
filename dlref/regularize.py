r"""Regularization: dropout, L1/L2 penalties, value and global-norm clipping, early stopping.

Dropout (inverted Bernoulli and Gaussian multiplicative noise) is the identity in inference
(``train=False``) and preserves the expectation in training: :math:`\mathbb{E}[y] = x`;
randomness comes only from the ``key`` argument.

The penalties and clipping functions take any pytree of floating arrays (a params or a grads
tree); :class:`EarlyStopping` is an immutable pytree whose :meth:`EarlyStopping.update` returns
a new state, so it works in a Python loop and as a ``lax.scan`` / ``jax.jit`` carry.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from dlref._checks import (
    as_array,
    check_bool,
    check_choice,
    check_floating,
    check_in_range,
    check_int,
    check_key,
    check_real,
    normalize_axes,
)

__all__ = [
    "dropout",
    "gaussian_dropout",
    "l1_penalty",
    "l2_penalty",
    "clip_by_value",
    "clip_by_global_norm",
    "EarlyStopping",
]

# --------------------------------------------------------------------------------------------
# dropout


def _check_common(key: Any, x: Any, rate: Any, train: Any, op: str) -> jax.Array:
    check_key(key, op)
    check_bool(train, "train", op)
    x = as_array(x, "x", op)
    check_floating(x, "x", op)
    check_in_range(rate, 0.0, 1.0, "rate", op, hi_closed=False)
    return x


def _is_zero(rate: Any) -> bool:
    return not isinstance(rate, jax.core.Tracer) and float(rate) == 0.0


def _noise_shape(shape: tuple[int, ...], broadcast_dims: Sequence[int], op: str) -> tuple:
    axes = normalize_axes(broadcast_dims, len(shape), op, name="broadcast_dims", allow_empty=True)
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def dropout(
    key: jax.Array,
    x: jax.Array,
    rate: float,
    *,
    train: bool = True,
    broadcast_dims: Sequence[int] = (),
) -> jax.Array:
    r"""Inverted dropout: zero each unit with probability ``rate``, scale the kept ones.

    .. math::
        y = \frac{m \odot x}{1 - p},\qquad m_i \sim \text{Bernoulli}(1 - p),

    so :math:`\mathbb{E}[y] = x` and, for :math:`x = 1`, :math:`\mathrm{Var}[y] = p/(1 - p)`.
    In inference (``train=False``) and for ``rate = 0`` it is the identity.

    Matches flax's ``nnx.Dropout(rate, broadcast_dims=...)`` called with the same key
    (``rngs=key``) bit for bit (the mask is ``jax.random.bernoulli(key, 1 - rate, shape)``),
    and PyTorch's ``F.dropout``. The study guide describes dropout without the ``1/(1 - p)`` scaling
    (erratum 15, docs/errata.md): unscaled, the training-time expectation is :math:`(1 - p)\,x`.

    Under differentiation :math:`\partial y_i/\partial x_i = m_i/(1 - p)`.

    Args:
      key: a ``jax.random`` key; the same key gives the same mask.
      x: input of any shape, floating.
      rate: the drop probability :math:`p` in ``[0, 1)``.
      train: ``False`` returns ``x`` unchanged. A Python bool.
      broadcast_dims: axes along which the mask is shared (e.g. ``(1, 2)`` for channels-last
        spatial dropout of ``(N, H, W, C)``), as flax.

    Returns:
      ``y`` with the shape and dtype of ``x``.

    Raises:
      ValueError: ``rate`` outside ``[0, 1)``; ``broadcast_dims`` not axes of ``x`` (out of
        range or repeated).
      TypeError: ``key`` not a ``jax.random`` key; non-floating ``x``; ``train`` not a bool;
        ``rate`` not a real number; ``broadcast_dims`` not ints.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> y = dropout(jax.random.key(0), jnp.ones(8), 0.5)
      >>> sorted(set(y.tolist())) in ([0.0, 2.0], [0.0], [2.0])   # kept units scaled by 2
      True

    References:
      Srivastava et al., "Dropout: A Simple Way to Prevent Neural Networks from Overfitting",
      JMLR 15, 2014, https://jmlr.org/papers/v15/srivastava14a.html.
    """
    op = "dropout"
    x = _check_common(key, x, rate, train, op)
    shape = _noise_shape(x.shape, broadcast_dims, op)
    if not train or _is_zero(rate):
        return x
    keep_prob = 1.0 - rate
    mask = jnp.broadcast_to(jax.random.bernoulli(key, p=keep_prob, shape=shape), x.shape)
    return lax.select(mask, x / jnp.asarray(keep_prob, x.dtype), jnp.zeros_like(x))


def gaussian_dropout(
    key: jax.Array,
    x: jax.Array,
    rate: float,
    *,
    train: bool = True,
) -> jax.Array:
    r"""Gaussian dropout: multiply each unit by independent :math:`\mathcal{N}(1, p/(1 - p))` noise.

    .. math::
        y = x \odot \xi,\qquad \xi_i = 1 + \sqrt{\tfrac{p}{1 - p}}\, z_i,\quad
        z_i \sim \mathcal{N}(0, 1),

    which has the same mean (:math:`x`) and variance (:math:`x^2 p/(1 - p)`) as inverted
    :func:`dropout`. Identity in inference and for ``rate = 0``. Matches Keras'
    ``GaussianDropout(rate)``. The study guide suggests it as the variance-robust alternative to
    dropout before batch norm; the study guide gives no formula (erratum 15, docs/errata.md).

    Under differentiation :math:`\partial y_i/\partial x_i = \xi_i`.

    Args:
      key: a ``jax.random`` key.
      x: input of any shape, floating.
      rate: :math:`p` in ``[0, 1)``; the noise variance is ``rate / (1 - rate)``.
      train: ``False`` returns ``x`` unchanged. A Python bool.

    Returns:
      ``y`` with the shape and dtype of ``x``.

    Raises:
      ValueError: ``rate`` outside ``[0, 1)``.
      TypeError: ``key`` not a ``jax.random`` key; non-floating ``x``; ``train`` not a bool;
        ``rate`` not a real number.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> x = jnp.array([1.0, 2.0])
      >>> bool(jnp.all(gaussian_dropout(jax.random.key(0), x, 0.5, train=False) == x))
      True

    References:
      Srivastava et al., "Dropout: A Simple Way to Prevent Neural Networks from Overfitting",
      JMLR 15, 2014, section 10 (multiplicative Gaussian noise).
    """
    op = "gaussian_dropout"
    x = _check_common(key, x, rate, train, op)
    if not train or _is_zero(rate):
        return x
    std = jnp.sqrt(jnp.asarray(rate, x.dtype) / (1 - jnp.asarray(rate, x.dtype)))
    noise = 1 + std * jax.random.normal(key, x.shape, x.dtype)
    return x * noise


# --------------------------------------------------------------------------------------------
# penalties and clipping


def _float_leaves(tree: Any, op: str) -> list[jax.Array]:
    leaves = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        where = jax.tree_util.keystr(path) or "<root>"
        leaf = as_array(leaf, f"the leaf at {where}", op)
        if not jnp.issubdtype(leaf.dtype, jnp.floating):
            raise TypeError(
                f"{op}: every leaf must have a floating dtype, got {leaf.dtype} at {where}"
            )
        leaves.append(leaf)
    return leaves


def _is_static_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def l1_penalty(params: Any) -> jax.Array:
    r"""L1 penalty: the sum of absolute values over every leaf.

    .. math:: \Omega(w) = \sum_i |w_i|,\qquad \partial\Omega/\partial w_i = \operatorname{sign}(w_i)

    Under differentiation the subgradient at :math:`w_i = 0` is 0 (``sign(0) = 0``, as
    PyTorch's ``abs``), which leaves exact zeros in place; ``jnp.abs`` (and so optax) gives 1
    there. Equals ``optax.tree.norm(params, ord=1)``. Multiply by your
    :math:`\lambda` and add to the loss.

    Args:
      params: a pytree of floating arrays (e.g. a flax ``nnx.state(model, nnx.Param)``).

    Returns:
      A scalar of the leaves' result dtype (0.0 for an empty tree).

    Raises:
      TypeError: a leaf is not floating.

    Example:
      >>> import jax.numpy as jnp
      >>> float(l1_penalty({"w": jnp.array([1.0, -2.0]), "b": jnp.array(0.5)}))
      3.5
    """
    leaves = _float_leaves(params, "l1_penalty")
    # w·sign(w) == |w| exactly, and its derivative is sign(w): 0 at w = 0
    terms = (jnp.sum(leaf * jnp.sign(leaf)) for leaf in leaves)
    return sum(terms, start=jnp.zeros((), _dtype(leaves)))


def l2_penalty(params: Any) -> jax.Array:
    r"""L2 penalty (weight decay): **half** the squared Euclidean norm of all leaves.

    .. math:: \Omega(w) = \tfrac12 \sum_i w_i^2,\qquad \nabla\Omega(w) = w

    With the factor ½, adding :math:`\lambda\,\Omega(w)` to the loss adds :math:`\lambda w` to
    the gradient: exactly ``optax.add_decayed_weights(λ)`` (coupled weight decay; AdamW's
    decoupled decay is not a loss term). Equals ``optax.l2_loss`` summed over leaves and
    ``0.5 * optax.tree.norm(params, squared=True)``. Keras' ``L2(l)`` and PyTorch's
    ``weight_decay`` conventions differ by this factor: Keras adds :math:`l\sum w^2`
    (gradient :math:`2lw`), PyTorch's ``weight_decay=λ`` adds :math:`\lambda w` to the gradient
    (= this penalty times λ).

    Args:
      params: a pytree of floating arrays, as for :func:`l1_penalty`.

    Returns:
      A scalar, of the same dtype as :func:`l1_penalty`'s.

    Raises:
      TypeError: a leaf is not floating.

    Example:
      >>> import jax.numpy as jnp
      >>> float(l2_penalty({"w": jnp.array([3.0, -4.0])}))       # ½·(9 + 16)
      12.5
    """
    leaves = _float_leaves(params, "l2_penalty")
    total = sum((jnp.sum(jnp.square(leaf)) for leaf in leaves), start=jnp.zeros((), _dtype(leaves)))
    return 0.5 * total


def _dtype(leaves: list[jax.Array]) -> Any:
    return jnp.result_type(*leaves) if leaves else jnp.result_type(float)


def clip_by_value(tree: Any, lo: float, hi: float) -> Any:
    r"""Clamp every element of every leaf to ``[lo, hi]``.

    .. math:: y = \min(\max(x, lo), hi)

    Values match ``optax.clip(hi)`` when ``lo = -hi`` and ``jnp.clip``. Under
    differentiation the gradient is 1 on the closed interval :math:`lo \le x \le hi` and 0
    outside, as PyTorch's ``clamp``; ``jnp.clip`` instead gives ½ at exactly ``lo`` or ``hi``.

    Args:
      tree: a pytree of floating arrays.
      lo: lower bound (a number, or an array broadcastable to each leaf).
      hi: upper bound, ``lo <= hi``.

    Returns:
      A pytree of the same structure, shapes and dtypes.

    Raises:
      ValueError: ``lo > hi`` (for Python numbers).
      TypeError: a leaf is not floating; ``lo`` or ``hi`` not a real number or real array.

    Example:
      >>> import jax.numpy as jnp
      >>> clip_by_value({"g": jnp.array([-3.0, 0.5, 9.0])}, -1.0, 1.0)["g"].tolist()
      [-1.0, 0.5, 1.0]
    """
    op = "clip_by_value"
    check_real(lo, "lo", op, scalar=False)
    check_real(hi, "hi", op, scalar=False)
    if _is_static_number(lo) and _is_static_number(hi) and lo > hi:
        raise ValueError(f"{op}: lo must be <= hi, got lo={lo!r} and hi={hi!r}")
    _float_leaves(tree, op)

    def clip(x):
        x = jnp.asarray(x)
        inside = (x >= lo) & (x <= hi)
        lo_, hi_ = jnp.asarray(lo, x.dtype), jnp.asarray(hi, x.dtype)
        outside = jax.lax.stop_gradient(jnp.clip(x, lo_, hi_))  # 0 gradient w.r.t. x outside
        return jnp.where(inside, x, outside)

    return jax.tree.map(clip, tree)


def clip_by_global_norm(tree: Any, max_norm: float) -> tuple[Any, jax.Array]:
    r"""Rescale a tree so that its global L2 norm is at most ``max_norm``.

    .. math::
        \|g\| = \sqrt{\textstyle\sum_{\text{leaves}} \sum_i g_i^2},\qquad
        g' = \begin{cases} g & \|g\| < \text{max\_norm} \\
                           g \cdot \text{max\_norm} / \|g\| & \text{otherwise.} \end{cases}

    Equal to the update of ``optax.clip_by_global_norm(max_norm)`` (same comparison, same
    operation order). PyTorch's ``clip_grad_norm_`` instead multiplies by
    ``min(1, max_norm / (‖g‖ + 1e-6))``. The all-zero tree is returned unchanged with norm 0
    and finite gradients (the gradient of the norm at 0 is taken as 0).

    The norm is computed as ``s · ‖g / s‖`` with ``s`` the power of two just below
    ``max |g_i|`` (a constant for differentiation): dividing by a power of two is exact, so
    the norm equals optax's bit for bit wherever ``Σ g_i²`` neither overflows nor underflows,
    and stays right where it would: ``{"a": [1e20, 1e20]}`` in float32 has norm ``1.41e20``
    and clips to ``[0.707, 0.707]`` (optax: norm ``inf``, leaves 0). NaN anywhere makes the norm
    and every leaf NaN, and an infinite entry makes the norm ``inf``, both as in optax.

    Args:
      tree: a pytree of floating arrays (usually gradients).
      max_norm: the largest allowed global norm, ``> 0``.

    Returns:
      ``(clipped, norm)``: the rescaled tree (same structure, shapes, dtypes) and the global
      norm of the *input* tree (a scalar).

    Raises:
      ValueError: ``max_norm <= 0``.
      TypeError: a leaf is not floating; ``max_norm`` not a real number.

    Example:
      >>> import jax.numpy as jnp
      >>> g, n = clip_by_global_norm({"a": jnp.array([3.0]), "b": jnp.array([4.0])}, 1.0)
      >>> float(n), round(float(g["a"][0]), 4), round(float(g["b"][0]), 4)
      (5.0, 0.6, 0.8)

    References:
      Pascanu, Mikolov & Bengio, "On the difficulty of training recurrent neural networks",
      ICML 2013, https://arxiv.org/abs/1211.5063.
    """
    op = "clip_by_global_norm"
    check_in_range(max_norm, 0.0, math.inf, "max_norm", op, lo_closed=False)
    leaves = _float_leaves(tree, op)
    dtype = _dtype(leaves)
    s = _pow2_below_max_abs(leaves, dtype)
    sq = sum((jnp.sum(jnp.square(leaf / s)) for leaf in leaves), start=jnp.zeros((), dtype))
    zero = sq == 0  # NaN is not 0: it propagates through the sqrt
    norm_s = jnp.where(zero, 0, jnp.sqrt(jnp.where(zero, 1, sq)))  # ‖g/s‖; grad 0 at the origin
    norm = s * norm_s
    trigger = norm < max_norm
    safe_norm_s = jnp.where(trigger, 1, norm_s)  # no 1/0 in the unselected branch

    def clip(t):
        # (t/s)/‖g/s‖ is t/‖g‖ bit for bit (exact scaling), and its derivative in the norm,
        # -(t/s)/‖g/s‖², cannot overflow as t/‖g‖² would (to 0: a wrong gradient)
        t = jnp.asarray(t)
        scaled = ((t.astype(dtype) / s) / safe_norm_s) * max_norm
        return jnp.where(trigger, t, scaled.astype(t.dtype))

    return jax.tree.map(clip, tree), norm


def _pow2_below_max_abs(leaves: list[jax.Array], dtype: Any) -> jax.Array:
    """The power of two ``s`` with ``m / 2 < s <= m`` for ``m = max |leaf_i|`` (at most
    ``2^(maxexp - 2)``; 1 where ``m`` is 0, subnormal, NaN or inf), a constant for
    differentiation: ``|g / s| < 4``."""
    amax = jnp.zeros((), dtype)
    for leaf in leaves:
        if leaf.size:
            amax = jnp.maximum(amax, jnp.max(jnp.abs(leaf)).astype(dtype))
    amax = jax.lax.stop_gradient(amax)
    _, e = jnp.frexp(amax)
    # s <= 2^(maxexp - 2) keeps 1/s normal (XLA's CPU divide may multiply by the reciprocal
    # and flush a subnormal one to 0); then |g / s| < 4
    e = jnp.minimum(e - 1, jnp.finfo(dtype).maxexp - 2)
    normal = jnp.isfinite(amax) & (amax >= jnp.finfo(dtype).tiny)
    return jnp.where(normal, jnp.ldexp(jnp.ones((), dtype), e), jnp.ones((), dtype))


def _select(cond: Any, a: Any, b: Any) -> Any:
    """``a if cond else b`` for Python values; ``jnp.where`` once any input is a JAX array."""
    if any(isinstance(v, jax.Array) for v in (cond, a, b)):
        return jnp.where(cond, a, b)
    return a if cond else b


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class EarlyStopping:
    r"""Early stopping as an immutable state machine (a pytree).

    A metric *improves* when it beats the best value so far by more than ``min_delta``:

    .. math::
        \text{min: } \text{best} - m > \delta,\qquad \text{max: } m - \text{best} > \delta .

    Each non-improving update increments ``wait``; improving resets it to 0. ``should_stop``
    becomes true when ``wait`` reaches ``patience`` — after ``patience`` consecutive updates
    without improvement — and stays true (until :meth:`reset`). This is Keras' ``EarlyStopping``
    and PyTorch Lightning's rule. flax's ``flax.training.early_stopping.EarlyStopping`` checks
    ``patience_count >= patience`` *before* incrementing and so stops one update later:
    flax ``patience=p`` behaves as dlref ``patience=p + 1`` (same strict ``min_delta`` test).

    ``update`` is pure: with Python-number metrics it computes in Python (exact float64
    comparisons); with JAX arrays it uses ``jnp.where``, so the state can be a
    ``lax.scan``/``jit`` carry (``patience``, ``min_delta`` and ``mode`` are static).

    Attributes:
      patience: non-improving updates tolerated before stopping, an int ``>= 1``.
      min_delta: the margin an update must beat ``best`` by, ``>= 0``.
      mode: ``"min"`` (a loss) or ``"max"`` (an accuracy).
      best: the best metric so far (``+inf`` for ``"min"``, ``-inf`` for ``"max"`` at first).
      wait: consecutive non-improving updates.
      improved: whether the last update improved (e.g. to checkpoint the model).
      should_stop: whether to stop training.

    Example:
      >>> s = EarlyStopping(patience=2)
      >>> stops = []
      >>> for loss in [4, 3, 3, 3, 2]:
      ...     s = s.update(loss)
      ...     stops.append(bool(s.should_stop))
      >>> stops
      [False, False, False, True, True]
    """

    patience: int = dataclasses.field(metadata=dict(static=True))
    min_delta: float = dataclasses.field(default=0.0, metadata=dict(static=True))
    mode: str = dataclasses.field(default="min", metadata=dict(static=True))
    best: Any = None
    wait: Any = 0
    improved: Any = False
    should_stop: Any = False

    def __post_init__(self):
        op = "EarlyStopping"
        check_int(self.patience, "patience", op, minimum=1)
        if not _is_static_number(self.min_delta):
            raise TypeError(f"{op}: min_delta must be a Python number, got {self.min_delta!r}")
        if not self.min_delta >= 0:
            raise ValueError(f"{op}: min_delta must be >= 0, got {self.min_delta!r}")
        check_choice(self.mode, ("min", "max"), "mode", op)
        if self.best is None:
            object.__setattr__(self, "best", math.inf if self.mode == "min" else -math.inf)

    def update(self, metric: Any) -> EarlyStopping:
        """Feed one metric value; return the new state.

        Args:
          metric: the monitored value (a Python number or a real scalar array). NaN never
            improves.

        Returns:
          The new :class:`EarlyStopping`; read ``.should_stop`` and ``.improved``.

        Raises:
          TypeError: ``metric`` is not a real number (a string, ``None``, a bool).
          ValueError: ``metric`` is an array of rank > 0.
        """
        check_real(metric, "metric", "EarlyStopping.update")
        gain = self.best - metric if self.mode == "min" else metric - self.best
        improved = gain > self.min_delta
        wait = _select(improved, 0, self.wait + 1)
        return dataclasses.replace(
            self,
            best=_select(improved, metric, self.best),
            wait=wait,
            improved=improved,
            should_stop=self.should_stop | (wait >= self.patience),
        )

    def reset(self) -> EarlyStopping:
        """A fresh state with the same ``patience``, ``min_delta`` and ``mode``.

        Returns:
          ``EarlyStopping(patience, min_delta, mode)``.
        """
        return EarlyStopping(self.patience, self.min_delta, self.mode)
