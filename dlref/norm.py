r"""Normalization: batch, layer, group and instance norm; BN folding; feature scaling.

Every op is channels-last: ``x`` has shape ``(N, *spatial, C)`` and per-channel parameters have
shape ``(C,)``. Statistics are computed in at least float32 (float64 stays float64) with the
two-pass variance :math:`\frac1m\sum (x - \mu)^2`, and the output has the dtype of ``x``.

The statistics never overflow while the result is representable: each reduction first divides
``x`` by a power of two ``s`` with ``max|x| / 4 < s <= max|x|`` (``s = 1`` when ``max|x| < 2``),
normalizes ``x / s`` with ``eps / s²`` and so computes the same function; dividing by a power
of two is exact, so for data that does not overflow the result is bit for bit that of the
plain formula. ``layer_norm([1e30, -1e30])`` in float32 is ``[1, -1]`` here; flax's
``nnx.LayerNorm``, ``nnx.GroupNorm``, ``nnx.InstanceNorm`` and ``nnx.BatchNorm`` give ``[0, 0]``
(the variance ``1e60`` overflows to ``inf``), and PyTorch's float32 kernels, which accumulate
the variance in float32 too (Welford), overflow the same way. ``s`` is a constant for
differentiation (``stop_gradient``): the formula is the same function of ``x`` for every ``s``,
so gradients of every order are those of the plain formula. NaN in a reduction gives NaN for
all of its outputs; an empty input gives an empty output.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from dlref._checks import (
    accumulation_dtype,
    as_array,
    check_bool,
    check_choice,
    check_floating,
    check_in_range,
    check_int,
    check_min_rank,
    check_real,
    normalize_axes,
)

__all__ = [
    "BatchNormState",
    "batch_norm",
    "fold_batch_norm",
    "layer_norm",
    "group_norm",
    "instance_norm",
    "min_max_scale",
    "standardize",
]


class BatchNormState(NamedTuple):
    """Running statistics of :func:`batch_norm`: a pytree of two ``(C,)`` arrays.

    A ``NamedTuple``, so it passes through ``jax.jit``, ``jax.vmap``, ``lax.scan`` and
    ``jax.tree`` functions unchanged. PyTorch initialises ``mean`` to zeros and ``var`` to
    ones (:meth:`create`); flax does the same.

    Attributes:
      mean: running mean, shape ``(C,)``.
      var: running **unbiased** variance, shape ``(C,)``.
    """

    mean: jax.Array
    var: jax.Array

    @classmethod
    def create(cls, num_features: int, dtype: Any = jnp.float32) -> BatchNormState:
        """Fresh state: ``mean = 0``, ``var = 1`` (PyTorch and flax initial values).

        Args:
          num_features: the channel count ``C`` (0 gives empty statistics).
          dtype: dtype of both arrays.

        Returns:
          A :class:`BatchNormState` with two ``(C,)`` arrays.
        """
        num_features = check_int(num_features, "num_features", "BatchNormState.create", minimum=0)
        return cls(jnp.zeros((num_features,), dtype), jnp.ones((num_features,), dtype))


# --------------------------------------------------------------------------------------------
# private helpers


def _check_eps(eps: Any, op: str) -> None:
    # eps > 0 keeps constant channels finite; a traced eps is type-checked only
    check_in_range(eps, 0.0, math.inf, "eps", op, lo_closed=False, hi_closed=False)


def _input(x: Any, min_rank: int, op: str) -> jax.Array:
    x = as_array(x, "x", op)
    check_min_rank(x, min_rank, "x", op)
    check_floating(x, "x", op)
    return x


def _check_param(p: Any, shape: tuple[int, ...], name: str, op: str) -> Any:
    if p is None:
        return None
    p = as_array(p, name, op)
    check_floating(p, name, op)
    if p.shape != shape:
        raise ValueError(f"{op}: {name} must have shape {shape}, got {p.shape}")
    return p


def _state_pair(state: Any, c: int, op: str, what: str = "C") -> tuple[jax.Array, jax.Array]:
    """``(mean, var)`` of any pair: a :class:`BatchNormState`, another NamedTuple, a tuple or a
    list; both floating arrays of shape ``(c,)``."""
    if not isinstance(state, tuple | list) or len(state) != 2:
        raise TypeError(
            f"{op}: state must be a (mean, var) pair such as BatchNormState(mean, var), got "
            f"{type(state).__name__}"
        )
    out = []
    for name, stat in zip(("state.mean", "state.var"), state, strict=True):
        stat = as_array(stat, name, op)
        check_floating(stat, name, op)
        if stat.shape != (c,):
            raise ValueError(
                f"{op}: {name} must have shape ({what},) = ({c},) to match the channels, got "
                f"{stat.shape}"
            )
        out.append(stat)
    return out[0], out[1]


def _like_state(state: Any, mean: jax.Array, var: jax.Array) -> Any:
    """``(mean, var)`` in the container type of ``state`` (so a ``lax.scan`` carry keeps its
    structure): a NamedTuple of the same class, else a tuple or a list."""
    if hasattr(type(state), "_fields"):
        return type(state)(mean, var)
    return type(state)((mean, var))


def _pow2_scale(x: jax.Array, axes: tuple[int, ...]) -> jax.Array:
    """Per reduction over ``axes`` (kept as size-1 dims), the power of two ``s >= 1`` with
    ``max|x| / 2 < s <= max|x|`` (``s = 1`` when ``max|x| < 2``, or is NaN or inf; at most
    ``2^(maxexp - 2)``); a constant for differentiation. Dividing by it is exact and bounds
    ``|x / s|`` by 4."""
    amax = lax.stop_gradient(jnp.max(jnp.abs(x), axis=axes, keepdims=True))
    _, e = jnp.frexp(amax)  # amax = f·2^e, f in [0.5, 1); NaN and inf give e = 0
    # at most 2^(maxexp - 2), so 1/s is a normal number too (XLA's CPU divide may multiply by
    # the reciprocal and flush a subnormal one to 0); then |x / s| < 4
    e = jnp.minimum(e - 1, jnp.finfo(x.dtype).maxexp - 2)
    s = jnp.ldexp(jnp.ones_like(amax), e)
    return jnp.where(s > 1, s, jnp.ones_like(s))


def _normalize(
    x: jax.Array, axes: tuple[int, ...], eps: Any
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``((x - μ)/sqrt(σ² + eps), μ, σ²)`` over ``axes`` (biased σ², two-pass), computed on
    ``x / s`` (module docstring) so that no intermediate overflows where the result does not.

    ``μ`` and ``σ²`` are returned in the units of ``x``, kept as size-1 dims (``σ²`` is ``inf``
    where the true variance exceeds the dtype, e.g. ``1e60`` in float32).
    """
    s = _pow2_scale(x, axes)
    xs = x / s
    mean = jnp.mean(xs, axis=axes, keepdims=True)
    d = xs - mean
    var = jnp.mean(jnp.square(d), axis=axes, keepdims=True)
    # eps/s² may underflow to 0 for huge s; then var + eps_s is 0 only for a constant slice,
    # where d = 0: the floor at `tiny` keeps 0·rsqrt finite (y = 0) instead of 0·inf = NaN.
    tiny = jnp.finfo(x.dtype).tiny
    y = d * lax.rsqrt(jnp.maximum(var + eps / s / s, tiny))
    return y, mean * s, (var * s) * s


def _affine(y: jax.Array, scale: Any, bias: Any) -> jax.Array:
    if scale is not None:
        y = y * scale
    if bias is not None:
        y = y + bias
    return y


# --------------------------------------------------------------------------------------------
# batch norm


def batch_norm(
    x: jax.Array,
    scale: jax.Array | None,
    bias: jax.Array | None,
    state: BatchNormState,
    *,
    train: bool,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> tuple[jax.Array, BatchNormState]:
    r"""Batch normalization over every axis but the last (channels-last).

    Training, with :math:`m` values per channel (``m = x.size // C``):

    .. math::
        \mu_B = \frac1m \sum_i x_i,\qquad
        \sigma_B^2 = \frac1m \sum_i (x_i - \mu_B)^2,\qquad
        y = \gamma\,\frac{x - \mu_B}{\sqrt{\sigma_B^2 + \epsilon}} + \beta,

    .. math::
        \hat\mu \leftarrow (1 - \text{momentum})\,\hat\mu + \text{momentum}\,\mu_B,\qquad
        \hat\sigma^2 \leftarrow (1 - \text{momentum})\,\hat\sigma^2
            + \text{momentum}\,\frac{m}{m - 1}\,\sigma_B^2 .

    Inference: :math:`y = \gamma (x - \hat\mu)/\sqrt{\hat\sigma^2 + \epsilon} + \beta`, and the
    state is returned unchanged.

    Matches PyTorch's ``nn.BatchNorm{1,2,3}d`` (momentum weights the *new* batch, the running
    variance is unbiased). flax's ``nnx.BatchNorm`` normalizes identically but its ``momentum``
    weights the *old* value (flax ``0.99`` = dlref ``0.01``) and it stores the *biased* batch
    variance. The study guide divides by :math:`\sqrt{\sigma^2} + \epsilon` (erratum 10,
    docs/errata.md); every framework and Ioffe & Szegedy put :math:`\epsilon` inside the square
    root.

    The new running statistics are cast to the dtype of ``state`` and returned in its container
    type (``state`` may be any ``(mean, var)`` pair: a :class:`BatchNormState`, a tuple, a list),
    so the state's structure is stable as a ``lax.scan`` carry. Under ``jax.grad`` gradients flow
    through the batch statistics (the full batch-norm backward pass).

    The batch statistics are computed on ``x / s`` (module docstring): ``x = [[1e30], [-1e30]]``
    in float32 normalizes to ``[[1], [-1]]`` (flax's ``nnx.BatchNorm`` and PyTorch give 0s); the
    running variance then becomes ``inf``, the true value ``1e60`` not being representable.
    NaN in a channel gives NaN for that channel's outputs and statistics. Zero channels give
    an empty output.

    Args:
      x: input ``(N, *spatial, C)``, floating.
      scale: :math:`\gamma`, shape ``(C,)``, or ``None`` for 1.
      bias: :math:`\beta`, shape ``(C,)``, or ``None`` for 0.
      state: the running statistics, a :class:`BatchNormState` (or any ``(mean, var)`` pair)
        of two floating ``(C,)`` arrays.
      train: ``True`` normalizes with batch statistics and updates ``state``; ``False`` uses
        the running statistics. A Python bool.
      momentum: weight of the new batch statistics in the running average, in ``[0, 1]``.
      eps: added to the variance inside the square root, ``> 0``.

    Returns:
      ``(y, new_state)``: ``y`` of the shape and dtype of ``x``; ``new_state`` of the type of
      ``state`` (``state`` itself in inference).

    Raises:
      ValueError: ``x`` of rank < 2; a parameter or statistic whose shape is not ``(C,)``;
        ``momentum`` outside ``[0, 1]``; ``eps <= 0``; training with one value per channel
        (the unbiased variance needs ``m >= 2``).
      TypeError: non-floating ``x``, parameters or statistics; ``state`` not a pair; ``train``
        not a bool; ``momentum`` or ``eps`` not a real number.

    Example:
      >>> import jax.numpy as jnp
      >>> x = jnp.array([[1.0], [3.0]])      # m = 2, mean 2, biased var 1, unbiased var 2
      >>> y, s = batch_norm(x, None, None, BatchNormState.create(1), train=True,
      ...                   momentum=0.5, eps=1e-5)
      >>> [round(float(v), 4) for v in y[:, 0]], float(s.mean[0]), float(s.var[0])
      ([-1.0, 1.0], 1.0, 1.5)

    References:
      Ioffe & Szegedy, "Batch Normalization: Accelerating Deep Network Training by Reducing
      Internal Covariate Shift", https://arxiv.org/abs/1502.03167, 2015.
    """
    op = "batch_norm"
    x = _input(x, 2, op)
    train = check_bool(train, "train", op)
    check_in_range(momentum, 0.0, 1.0, "momentum", op)
    _check_eps(eps, op)
    c = x.shape[-1]
    scale = _check_param(scale, (c,), "scale", op)
    bias = _check_param(bias, (c,), "bias", op)
    run_mean, run_var = _state_pair(state, c, op)
    cdt = accumulation_dtype(x.dtype)
    xf = x.astype(cdt)
    if not train:
        y = (xf - run_mean.astype(cdt)) * lax.rsqrt(run_var.astype(cdt) + eps)
        return _affine(y, scale, bias).astype(x.dtype), state
    m = math.prod(x.shape[:-1])
    if m < 2:
        raise ValueError(
            f"{op}: training needs more than one value per channel (the unbiased running "
            f"variance divides by m - 1), got x of shape {x.shape}"
        )
    if c == 0:
        return x, _like_state(state, run_mean, run_var)
    y, mean, var = _normalize(xf, tuple(range(x.ndim - 1)), eps)
    mean, var = mean.reshape(c), var.reshape(c)
    unbiased = var * (m / (m - 1))
    new_state = _like_state(
        state,
        ((1 - momentum) * run_mean + momentum * mean).astype(run_mean.dtype),
        ((1 - momentum) * run_var + momentum * unbiased).astype(run_var.dtype),
    )
    return _affine(y, scale, bias).astype(x.dtype), new_state


def fold_batch_norm(
    w: jax.Array,
    b: jax.Array | None,
    state: BatchNormState,
    scale: jax.Array | None,
    bias: jax.Array | None,
    eps: float = 1e-5,
    *,
    layout: str = "NHWC",
) -> tuple[jax.Array, jax.Array]:
    r"""Fold an inference-mode batch norm into the preceding convolution (or dense layer).

    With :math:`s = \gamma / \sqrt{\hat\sigma^2 + \epsilon}` per output channel,

    .. math::
        w' = w \cdot s,\qquad b' = (b - \hat\mu)\, s + \beta,

    so that ``conv(x, w') + b' == batch_norm(conv(x, w) + b, ..., train=False)`` exactly in
    real arithmetic (the convolution is linear in ``w``, per output channel).

    Matches PyTorch's ``torch.nn.utils.fuse_conv_bn_weights``.

    Args:
      w: kernel ``(*kernel, C_in // groups, C_out)`` (HWIO, ``layout="NHWC"``) or
        ``(C_out, C_in // groups, *kernel)`` (OIHW, ``layout="NCHW"``). A dense weight
        ``(C_in, C_out)`` is the HWIO case with no spatial dims.
      b: conv bias ``(C_out,)`` or ``None`` (no bias: the same result as zeros).
      state: the BN's running statistics, a :class:`BatchNormState` or any ``(mean, var)``
        pair of two ``(C_out,)`` arrays.
      scale: :math:`\gamma`, ``(C_out,)`` or ``None`` for 1.
      bias: :math:`\beta`, ``(C_out,)`` or ``None`` for 0.
      eps: the BN's epsilon, ``> 0``.
      layout: ``"NHWC"`` (kernel HWIO, output channels last) or ``"NCHW"`` (kernel OIHW,
        output channels first).

    Returns:
      ``(w', b')``: ``w'`` of the shape and dtype of ``w``, ``b'`` of shape ``(C_out,)``.

    Raises:
      ValueError: ``w`` of rank < 2; a per-channel array whose shape is not ``(C_out,)``;
        ``eps <= 0``; unknown ``layout``.
      TypeError: non-floating ``w`` or per-channel arrays; ``state`` not a pair; ``layout`` not
        a string; ``eps`` not a real number.

    Example:
      >>> import jax.numpy as jnp
      >>> st = BatchNormState(jnp.array([1.0]), jnp.array([4.0 - 1e-5]))  # sqrt(var+eps) = 2
      >>> w2, b2 = fold_batch_norm(jnp.ones((1, 1, 1, 1)), jnp.array([3.0]), st,
      ...                          jnp.array([2.0]), jnp.array([0.5]))
      >>> float(w2.reshape(())), float(b2[0])                # s = 1; (3 - 1)·1 + 0.5
      (1.0, 2.5)

    References:
      Jacob et al., "Quantization and Training of Neural Networks for Efficient
      Integer-Arithmetic-Only Inference", https://arxiv.org/abs/1712.05877, 2018 (section 3.2).
    """
    op = "fold_batch_norm"
    check_choice(layout, ("NHWC", "NCHW"), "layout", op)
    w = as_array(w, "w", op)
    check_min_rank(w, 2, "w", op)
    check_floating(w, "w", op)
    _check_eps(eps, op)
    c_out = w.shape[-1] if layout == "NHWC" else w.shape[0]
    b = _check_param(b, (c_out,), "b", op)
    scale = _check_param(scale, (c_out,), "scale", op)
    bias = _check_param(bias, (c_out,), "bias", op)
    mean, var = _state_pair(state, c_out, op, "C_out")
    cdt = accumulation_dtype(w.dtype)
    s = lax.rsqrt(var.astype(cdt) + eps)
    if scale is not None:
        s = s * scale
    b = jnp.zeros((c_out,), cdt) if b is None else b  # no bias is a zero bias, bit for bit
    b_new = _affine((b - mean) * s, None, bias)
    s_w = s if layout == "NHWC" else s.reshape((c_out,) + (1,) * (w.ndim - 1))
    return (w * s_w).astype(w.dtype), b_new.astype(w.dtype)


# --------------------------------------------------------------------------------------------
# layer / group / instance norm


def layer_norm(
    x: jax.Array,
    *,
    scale: jax.Array | None = None,
    bias: jax.Array | None = None,
    axis: int | Sequence[int] = -1,
    eps: float = 1e-5,
) -> jax.Array:
    r"""Layer normalization: normalize each example over ``axis`` (default: the features).

    .. math::
        y = \gamma\,\frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta,\qquad
        \mu, \sigma^2 \text{ the mean and biased variance over } \texttt{axis}.

    Matches flax's ``nnx.LayerNorm(reduction_axes=axis, feature_axes=axis)`` (whose default
    ``epsilon`` is 1e-6) and PyTorch's ``nn.LayerNorm(x.shape[axis...])`` (eps 1e-5, the default
    here): ``scale`` and ``bias`` are elementwise over the normalized dims. Unlike both, the
    statistics cannot overflow while the result is representable (module docstring):
    ``layer_norm([1e30, -1e30])`` in float32 is ``[1, -1]``, not flax's ``[0, 0]``.

    Args:
      x: input of any rank >= 1, floating.
      scale: :math:`\gamma` with shape ``tuple(x.shape[a] for a in sorted(axis))``, or ``None``.
      bias: :math:`\beta`, same shape, or ``None``.
      axis: the axis or axes to normalize over.
      eps: added to the variance inside the square root, ``> 0``.

    Returns:
      ``y`` with the shape and dtype of ``x``.

    Raises:
      ValueError: ``axis`` out of range, repeated or empty; ``scale``/``bias`` of the wrong
        shape; ``eps <= 0``.
      TypeError: non-floating ``x``; ``axis`` not ints.

    Example:
      >>> import jax.numpy as jnp
      >>> y = layer_norm(jnp.array([1.0, 2.0, 3.0]), eps=1e-5)   # mean 2, var 2/3
      >>> [round(float(v), 4) for v in y]
      [-1.2247, 0.0, 1.2247]

    References:
      Ba, Kiros & Hinton, "Layer Normalization", https://arxiv.org/abs/1607.06450, 2016.
    """
    op = "layer_norm"
    x = _input(x, 1, op)
    _check_eps(eps, op)
    axes = normalize_axes(axis, x.ndim, op)
    pshape = tuple(x.shape[a] for a in axes)
    scale = _check_param(scale, pshape, "scale", op)
    bias = _check_param(bias, pshape, "bias", op)
    if x.size == 0:
        return x
    bshape = tuple(x.shape[a] if a in axes else 1 for a in range(x.ndim))
    y, _, _ = _normalize(x.astype(accumulation_dtype(x.dtype)), axes, eps)
    y = _affine(
        y,
        None if scale is None else jnp.reshape(scale, bshape),
        None if bias is None else jnp.reshape(bias, bshape),
    )
    return y.astype(x.dtype)


def group_norm(
    x: jax.Array,
    num_groups: int,
    *,
    scale: jax.Array | None = None,
    bias: jax.Array | None = None,
    eps: float = 1e-5,
) -> jax.Array:
    r"""Group normalization (channels-last): per example, per group of ``C // G`` channels.

    The channels are split into ``num_groups`` contiguous groups (channels
    ``[g·C/G, (g+1)·C/G)``); each example's group is normalized over its spatial positions and
    its channels:

    .. math::
        y_{n,\dots,c} = \gamma_c\,\frac{x_{n,\dots,c} - \mu_{n,g(c)}}
                        {\sqrt{\sigma^2_{n,g(c)} + \epsilon}} + \beta_c .

    ``num_groups = 1`` is layer norm over ``(*spatial, C)``; ``num_groups = C`` is
    :func:`instance_norm`. Matches flax's ``nnx.GroupNorm(num_groups=G)`` (default ``epsilon``
    1e-6) and PyTorch's ``nn.GroupNorm`` (eps 1e-5, the default here) moved to channels-last,
    except that the statistics do not overflow while the result is representable (module
    docstring: flax gives 0 for a group ``[1e30, -1e30]`` in float32, dlref ``[1, -1]``).

    Args:
      x: input ``(N, *spatial, C)``, rank >= 2, floating.
      num_groups: ``G``, a positive int dividing ``C``.
      scale: :math:`\gamma`, shape ``(C,)``, or ``None``.
      bias: :math:`\beta`, shape ``(C,)``, or ``None``.
      eps: added to the variance inside the square root, ``> 0``.

    Returns:
      ``y`` with the shape and dtype of ``x``.

    Raises:
      ValueError: rank < 2; ``num_groups`` < 1 or not dividing ``C``; parameter shapes;
        ``eps <= 0``.
      TypeError: non-floating ``x``; ``num_groups`` not an int.

    Example:
      >>> import jax.numpy as jnp
      >>> x = jnp.array([[1.0, 3.0, 10.0, 10.0]])     # groups {1, 3} and {10, 10}
      >>> [round(float(v), 4) for v in group_norm(x, 2)[0]]
      [-1.0, 1.0, 0.0, 0.0]

    References:
      Wu & He, "Group Normalization", https://arxiv.org/abs/1803.08494, 2018.
    """
    op = "group_norm"
    x = _input(x, 2, op)
    num_groups = check_int(num_groups, "num_groups", op)
    c = x.shape[-1]
    if num_groups < 1 or c % num_groups:
        raise ValueError(
            f"{op}: num_groups={num_groups} must be a positive divisor of the channels C={c}"
        )
    _check_eps(eps, op)
    scale = _check_param(scale, (c,), "scale", op)
    bias = _check_param(bias, (c,), "bias", op)
    if x.size == 0:
        return x
    xf = x.astype(accumulation_dtype(x.dtype))
    xg = xf.reshape(x.shape[:-1] + (num_groups, c // num_groups))
    axes = tuple(range(1, x.ndim - 1)) + (x.ndim,)  # spatial dims and the within-group dim
    y = _normalize(xg, axes, eps)[0].reshape(x.shape)
    return _affine(y, scale, bias).astype(x.dtype)


def instance_norm(
    x: jax.Array,
    *,
    scale: jax.Array | None = None,
    bias: jax.Array | None = None,
    eps: float = 1e-5,
) -> jax.Array:
    r"""Instance normalization (channels-last): per example and channel, over space.

    .. math::
        y_{n,\dots,c} = \gamma_c\,\frac{x_{n,\dots,c} - \mu_{n,c}}
                        {\sqrt{\sigma^2_{n,c} + \epsilon}} + \beta_c,

    :math:`\mu_{n,c}, \sigma^2_{n,c}` the mean and biased variance over the spatial axes.
    Equal to ``group_norm(x, C)``. Matches flax's ``nnx.InstanceNorm`` (default ``epsilon``
    1e-6) and PyTorch's ``nn.InstanceNorm{1,2,3}d(affine=True, track_running_stats=False)``
    (eps 1e-5, the default here), except that the statistics do not overflow while the result
    is representable (module docstring).

    Args:
      x: input ``(N, *spatial, C)`` with at least one spatial axis, floating.
      scale: :math:`\gamma`, shape ``(C,)``, or ``None``.
      bias: :math:`\beta`, likewise.
      eps: added to the variance, ``> 0`` (as in :func:`group_norm`).

    Returns:
      ``y`` with the shape and dtype of ``x``.

    Raises:
      ValueError: rank < 3 (no spatial axis); else as :func:`group_norm`.
      TypeError: non-floating ``x``.

    Example:
      >>> import jax.numpy as jnp
      >>> x = jnp.array([[[0.0, 5.0], [2.0, 5.0]]])   # (N=1, L=2, C=2)
      >>> instance_norm(x)[0, :, 0].round(4).tolist(), instance_norm(x)[0, :, 1].tolist()
      ([-1.0, 1.0], [0.0, 0.0])

    References:
      Ulyanov, Vedaldi & Lempitsky, "Instance Normalization: The Missing Ingredient for Fast
      Stylization", https://arxiv.org/abs/1607.08022, 2016.
    """
    op = "instance_norm"
    x = _input(x, 3, op)
    _check_eps(eps, op)
    c = x.shape[-1]
    scale = _check_param(scale, (c,), "scale", op)
    bias = _check_param(bias, (c,), "bias", op)
    if x.size == 0:
        return x
    xf = x.astype(accumulation_dtype(x.dtype))
    y, _, _ = _normalize(xf, tuple(range(1, x.ndim - 1)), eps)
    return _affine(y, scale, bias).astype(x.dtype)


# --------------------------------------------------------------------------------------------
# feature scaling


def _reduce_axes(axis: Any, ndim: int, op: str) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    return normalize_axes(axis, ndim, op)


def min_max_scale(
    x: jax.Array,
    axis: int | Sequence[int] | None,
    feature_range: tuple[float, float] = (0, 1),
) -> jax.Array:
    r"""Min-max (linear) scaling of each feature to ``feature_range``.

    .. math::
        y = lo + (hi - lo)\,\frac{x - \min x}{\max x - \min x},

    min and max taken over ``axis``. A constant feature (max = min) maps to ``lo``, as in
    scikit-learn (no NaN). Matches ``sklearn.preprocessing.minmax_scale(x, feature_range,
    axis=axis)``; the study guide's :math:`x' = (x - \min)/(\max - \min)` is ``feature_range=(0,
    1)``.

    Under differentiation min and max follow ``jnp.min``/``jnp.max``: when several entries tie
    for the extreme, the gradient is split equally among them.

    ``max x − min x`` is taken on ``x / s`` (module docstring), so ``[3e38, -3e38]`` in float32
    scales to ``[1, 0]`` (the plain formula gives ``inf / inf = NaN``). NaN in a feature gives
    NaN for that feature; an empty input gives an empty output.

    Args:
      x: data, floating; e.g. ``(n_samples, n_features)`` with ``axis=0``.
      axis: the axis or axes over which min and max are taken (``None``: all).
      feature_range: ``(lo, hi)``, real numbers with ``lo < hi``.

    Returns:
      ``y`` with the shape and dtype of ``x``.

    Raises:
      ValueError: ``axis`` out of range or repeated; ``lo >= hi``; ``feature_range`` not a pair.
      TypeError: non-floating ``x``; ``axis`` or ``feature_range`` entries of the wrong type.

    Example:
      >>> import jax.numpy as jnp
      >>> min_max_scale(jnp.array([[1.0, 5.0], [3.0, 5.0]]), 0).tolist()
      [[0.0, 0.0], [1.0, 0.0]]
    """
    op = "min_max_scale"
    x = _input(x, 0, op)
    axes = _reduce_axes(axis, x.ndim, op)
    if not isinstance(feature_range, tuple | list) or len(feature_range) != 2:
        raise ValueError(f"{op}: feature_range must be a pair (lo, hi), got {feature_range!r}")
    lo, hi = feature_range
    check_real(lo, "feature_range[0]", op)
    check_real(hi, "feature_range[1]", op)
    if not any(isinstance(v, jax.core.Tracer) for v in (lo, hi)) and not lo < hi:
        raise ValueError(f"{op}: feature_range must have lo < hi, got {feature_range!r}")
    if x.size == 0:
        return x
    xa = x.astype(accumulation_dtype(x.dtype))  # 16-bit floats are scaled in float32
    xa = xa / _pow2_scale(xa, axes)  # exact; max - min cannot overflow
    xmin = jnp.min(xa, axis=axes, keepdims=True)
    xmax = jnp.max(xa, axis=axes, keepdims=True)
    span = xmax - xmin
    constant = span == 0
    unit = (xa - xmin) / jnp.where(constant, 1, span)  # safe divisor: no NaN in either branch
    return (lo + (hi - lo) * unit).astype(x.dtype)


def standardize(
    x: jax.Array,
    axis: int | Sequence[int] | None,
    *,
    ddof: int = 0,
) -> jax.Array:
    r"""Zero-mean, unit-variance scaling (z-score) of each feature.

    .. math::
        z = \frac{x - \mu}{\sigma},\qquad
        \sigma^2 = \frac{1}{m - \text{ddof}} \sum (x - \mu)^2,

    over ``axis``; by default the **biased** (``ddof=0``) standard deviation, as
    ``sklearn.preprocessing.scale`` / ``StandardScaler`` (``ddof=1`` is R's ``scale``). A
    constant feature (all values equal) maps to exactly 0 instead of 0/0 (scikit-learn gives 0
    up to rounding); no epsilon is added, so non-constant features are scaled exactly.

    Under differentiation the constant-feature branch is constant: its gradient is 0.

    Mean and deviation are taken on ``x / s`` (module docstring), so ``[1e30, -1e30]`` in
    float32 standardizes to ``[1, -1]`` (the plain formula overflows to ``inf`` and gives
    ``[0, 0]``; scikit-learn computes in float64). NaN in a feature gives NaN for that feature;
    an empty input gives an empty output.

    Args:
      x: data, floating; e.g. ``(n_samples, n_features)`` with ``axis=0``.
      axis: the axis or axes over which mean and deviation are taken (``None``: all).
      ddof: delta degrees of freedom, 0 or 1 (an int).

    Returns:
      ``z`` with the shape and dtype of ``x``.

    Raises:
      ValueError: ``axis`` out of range or repeated; ``ddof`` not 0 or 1; ``ddof=1`` with a
        single value per feature.
      TypeError: non-floating ``x``; ``axis`` or ``ddof`` not ints.

    Example:
      >>> import jax.numpy as jnp
      >>> standardize(jnp.array([[1.0, 7.0], [3.0, 7.0]]), 0).tolist()   # mean 2, std 1
      [[-1.0, 0.0], [1.0, 0.0]]
    """
    op = "standardize"
    x = _input(x, 0, op)
    ddof = check_int(ddof, "ddof", op)
    check_choice(ddof, (0, 1), "ddof", op)
    axes = _reduce_axes(axis, x.ndim, op)
    if x.size == 0:
        return x
    m = math.prod(x.shape[a] for a in axes)
    if m - ddof < 1:
        raise ValueError(f"{op}: ddof={ddof} needs more than {ddof} values per feature, got {m}")
    xf = x.astype(accumulation_dtype(x.dtype))
    xf = xf / _pow2_scale(xf, axes)  # exact; z is invariant to the scale
    mean = jnp.mean(xf, axis=axes, keepdims=True)
    d = xf - mean
    var = jnp.sum(jnp.square(d), axis=axes, keepdims=True) / (m - ddof)
    constant = jnp.max(x, axis=axes, keepdims=True) == jnp.min(x, axis=axes, keepdims=True)
    safe_var = jnp.where(constant, 1, var)
    z = jnp.where(constant, 0, d * lax.rsqrt(safe_var))
    return z.astype(x.dtype)
