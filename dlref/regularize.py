r"""Regularization: L1/L2 penalties, value and global-norm clipping, early stopping.

The penalties and clipping functions take any pytree of floating arrays (a params or a grads
tree); :class:`EarlyStopping` is an immutable pytree whose :meth:`EarlyStopping.update` returns
a new state, so it works in a Python loop and as a ``lax.scan`` / ``jax.jit`` carry.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["l1_penalty", "l2_penalty", "clip_by_value", "clip_by_global_norm", "EarlyStopping"]


def _float_leaves(tree: Any, op: str) -> list[jax.Array]:
    leaves = [jnp.asarray(leaf) for leaf in jax.tree.leaves(tree)]
    for path, leaf in zip(jax.tree_util.tree_flatten_with_path(tree)[0], leaves, strict=True):
        if not jnp.issubdtype(leaf.dtype, jnp.floating):
            where = jax.tree_util.keystr(path[0]) or "<root>"
            raise TypeError(
                f"{op}: every leaf must have a floating dtype, got {leaf.dtype} at {where}"
            )
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
      params: a pytree of floating arrays.

    Returns:
      A scalar of the leaves' result dtype (0.0 for an empty tree).

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
      TypeError: a leaf is not floating.

    Example:
      >>> import jax.numpy as jnp
      >>> clip_by_value({"g": jnp.array([-3.0, 0.5, 9.0])}, -1.0, 1.0)["g"].tolist()
      [-1.0, 0.5, 1.0]
    """
    op = "clip_by_value"
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

    Args:
      tree: a pytree of floating arrays (usually gradients).
      max_norm: the largest allowed global norm, ``> 0``.

    Returns:
      ``(clipped, norm)``: the rescaled tree (same structure, shapes, dtypes) and the global
      norm of the *input* tree (a scalar).

    Raises:
      ValueError: ``max_norm <= 0``.
      TypeError: a leaf is not floating.

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
    if isinstance(max_norm, bool):
        raise TypeError(f"{op}: max_norm must be a number, got {max_norm!r}")
    if _is_static_number(max_norm) and not max_norm > 0:
        raise ValueError(f"{op}: max_norm must be > 0, got {max_norm!r}")
    leaves = _float_leaves(tree, op)
    sq = sum((jnp.sum(jnp.square(leaf)) for leaf in leaves), start=jnp.zeros((), _dtype(leaves)))
    nonzero = sq > 0
    norm = jnp.where(nonzero, jnp.sqrt(jnp.where(nonzero, sq, 1)), 0)  # grad 0 at the origin
    trigger = norm < max_norm
    safe_norm = jnp.where(trigger, 1, norm)  # no 1/0 in the unselected branch

    def clip(t):
        t = jnp.asarray(t)
        return jnp.where(trigger, t, (t / safe_norm.astype(t.dtype)) * max_norm)

    return jax.tree.map(clip, tree), norm


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
        if isinstance(self.patience, bool) or not isinstance(self.patience, int):
            raise TypeError(f"{op}: patience must be an int, got {self.patience!r}")
        if self.patience < 1:
            raise ValueError(f"{op}: patience must be >= 1, got {self.patience!r}")
        if not _is_static_number(self.min_delta):
            raise TypeError(f"{op}: min_delta must be a Python number, got {self.min_delta!r}")
        if not self.min_delta >= 0:
            raise ValueError(f"{op}: min_delta must be >= 0, got {self.min_delta!r}")
        if self.mode not in ("min", "max"):
            raise ValueError(f"{op}: mode must be one of ('min', 'max'), got {self.mode!r}")
        if self.best is None:
            object.__setattr__(self, "best", math.inf if self.mode == "min" else -math.inf)

    def update(self, metric: Any) -> EarlyStopping:
        """Feed one metric value; return the new state.

        Args:
          metric: the monitored value (a Python number or a scalar array). NaN never improves.

        Returns:
          The new :class:`EarlyStopping`; read ``.should_stop`` and ``.improved``.
        """
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
