"""Recurrent cells and small flax NNX networks built on dlref's reference ops.

Two layers live here:

* **Functional cells** on explicit parameter dicts: :func:`rnn_cell`, :func:`lstm_cell` and
  :func:`scan_rnn`, which runs any cell over a sequence with ``lax.scan``. Parameters follow
  PyTorch's layout transposed to ``x @ W`` form (``w_ih`` is ``(I, G·H)``) and PyTorch's gate
  order (input, forget, cell, output), so weights copy over from ``torch.nn.LSTM`` with one
  transpose and ``b = b_ih + b_hh``.
* **flax NNX modules** whose forward passes call the dlref ops (``dlref.convolution``,
  ``dlref.pooling``, ``dlref.norm``, ``dlref.regularize``, ``dlref.activations``):
  :class:`Conv`, :class:`BatchNorm`,
  :class:`Dropout`, :class:`MLP`, :class:`CNN`, :class:`ResNetBlock`, :class:`RNN`,
  :class:`LSTM`. They follow nnx's mode convention: ``model.train()`` sets every
  ``deterministic`` and ``use_running_average`` attribute to ``False`` (dropout active, batch
  statistics used and the running ones updated), ``model.eval()`` sets them to ``True``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax import lax

from dlref._checks import (
    as_tuple,
    check_bool,
    check_choice,
    check_floating,
    check_in_range,
    check_int,
    check_nonnegative,
    check_rank,
    check_real,
    normalize_padding,
)
from dlref.activations import relu, sigmoid, tanh
from dlref.convolution import IMPLS, conv
from dlref.norm import BatchNormState, batch_norm
from dlref.pooling import max_pool
from dlref.regularize import dropout

__all__ = [
    "rnn_cell",
    "lstm_cell",
    "scan_rnn",
    "Conv",
    "BatchNorm",
    "Dropout",
    "MLP",
    "CNN",
    "ResNetBlock",
    "RNN",
    "LSTM",
]

# --------------------------------------------------------------------------------------------
# Functional cells
# --------------------------------------------------------------------------------------------


def _check_arrays(op: str, named: dict[str, Any]) -> None:
    """Raise ``TypeError`` unless every value is a JAX or NumPy array."""
    for name, value in named.items():
        if not isinstance(value, jax.Array | np.ndarray):
            raise TypeError(
                f"{op}: {name} must be a JAX or NumPy array, got {type(value).__name__}"
            )


def _check_cell(op: str, params: Any, h: Any, x: Any, gates: int) -> int:
    """Validate a cell's parameter dict against ``h`` and ``x``; return the hidden size H."""
    if not isinstance(params, dict):
        raise TypeError(
            f"{op}: params must be a dict with keys 'w_ih', 'w_hh', 'b', got "
            f"{type(params).__name__}"
        )
    if not {"w_ih", "w_hh", "b"} <= set(params):
        raise ValueError(
            f"{op}: params must be a dict with keys 'w_ih', 'w_hh', 'b', got {sorted(params)}"
        )
    w_ih, w_hh, b = params["w_ih"], params["w_hh"], params["b"]
    _check_arrays(op, {"params['w_ih']": w_ih, "params['w_hh']": w_hh, "params['b']": b, "h": h})
    _check_arrays(op, {"x": x})
    check_rank(w_ih, 2, "params['w_ih']", op)
    check_rank(w_hh, 2, "params['w_hh']", op)
    check_rank(b, 1, "params['b']", op)
    hidden = jnp.shape(w_hh)[0]
    want = gates * hidden
    if jnp.shape(w_hh) != (hidden, want) or jnp.shape(w_ih)[1] != want or jnp.shape(b) != (want,):
        raise ValueError(
            f"{op}: params must have w_ih (I, {gates}H), w_hh (H, {gates}H), b ({gates}H,) with "
            f"H = w_hh.shape[0] = {hidden}, got w_ih {jnp.shape(w_ih)}, w_hh {jnp.shape(w_hh)}, "
            f"b {jnp.shape(b)}"
        )
    if jnp.ndim(x) < 1 or jnp.shape(x)[-1] != jnp.shape(w_ih)[0]:
        raise ValueError(
            f"{op}: input features x.shape[-1] must equal w_ih.shape[0]={jnp.shape(w_ih)[0]}, "
            f"got x of shape {jnp.shape(x)}"
        )
    if jnp.ndim(h) < 1 or jnp.shape(h)[-1] != hidden:
        raise ValueError(
            f"{op}: hidden state h.shape[-1] must equal H={hidden}, got h of shape {jnp.shape(h)}"
        )
    check_floating(x, "x", op)
    check_floating(h, "h", op)
    for name in ("w_ih", "w_hh", "b"):
        check_floating(params[name], f"params[{name!r}]", op)
    try:
        jnp.broadcast_shapes(jnp.shape(x)[:-1], jnp.shape(h)[:-1])
    except ValueError:
        raise ValueError(
            f"{op}: the batch dims of x {jnp.shape(x)[:-1]} and h {jnp.shape(h)[:-1]} must "
            f"broadcast, got x of shape {jnp.shape(x)} and h of shape {jnp.shape(h)}"
        ) from None
    return hidden


def rnn_cell(params: dict, h: jax.Array, x: jax.Array) -> jax.Array:
    """One step of the Elman (vanilla) recurrent cell.

    .. math:: h' = \\tanh(x W_{ih} + h W_{hh} + b)

    Matches flax ``nnx.SimpleCell`` (``dense_i`` kernel = ``w_ih``, its bias = ``b``,
    ``dense_h`` kernel = ``w_hh``) and PyTorch's ``nn.RNNCell`` with ``w_ih = weight_ih.T``,
    ``w_hh = weight_hh.T``, ``b = bias_ih + bias_hh``.

    Args:
      params: ``{"w_ih": (I, H), "w_hh": (H, H), "b": (H,)}``.
      h: the previous hidden state, ``(..., H)``.
      x: the input at this step, ``(..., I)``; leading (batch) dims broadcast with ``h``'s.

    Returns:
      The new hidden state ``h'``, ``(..., H)``.

    Raises:
      ValueError: if ``params`` lacks a key or has inconsistent shapes, if ``x.shape[-1]``
        is not ``I`` or ``h.shape[-1]`` is not ``H``, or if their batch dims do not
        broadcast.
      TypeError: if ``x``, ``h`` or a parameter is not floating point.

    Example:
      >>> p = {"w_ih": jnp.ones((1, 1)), "w_hh": jnp.ones((1, 1)), "b": jnp.zeros(1)}
      >>> rnn_cell(p, jnp.zeros(1), jnp.array([0.5]))  # tanh(0.5)
      Array([0.46211717], dtype=float32)

    References:
      Elman, "Finding structure in time", Cognitive Science 14, 1990.
    """
    _check_cell("rnn_cell", params, h, x, 1)
    return jnp.tanh(x @ params["w_ih"] + h @ params["w_hh"] + params["b"])


def lstm_cell(
    params: dict, carry: tuple[jax.Array, jax.Array], x: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """One step of the LSTM cell, gates in PyTorch's order (input, forget, cell, output).

    .. math::
        [z_i, z_f, z_g, z_o] = x W_{ih} + h W_{hh} + b, \\quad
        i = \\sigma(z_i),\\ f = \\sigma(z_f),\\ g = \\tanh(z_g),\\ o = \\sigma(z_o),

        c' = f \\odot c + i \\odot g, \\qquad h' = o \\odot \\tanh(c')

    The cell state ``c`` is updated *additively*: :math:`\\partial c'/\\partial c = f`
    (elementwise, no weight matrix and no squashing), so while the forget gate stays near 1
    the gradient flows back through many steps — why the LSTM eases the vanishing gradient of
    :func:`rnn_cell`, whose Jacobian :math:`\\mathrm{diag}(1 - h'^2) W_{hh}^T` is applied at
    every step. The study guide's LSTM section is empty (erratum 17, docs/errata.md); this is its
    content.

    Matches flax ``nnx.LSTMCell`` with ``w_ih = [ii | if_ | ig | io]`` kernels concatenated
    on the last axis, ``w_hh = [hi | hf | hg | ho]`` kernels and ``b`` their biases (flax's
    carry is ordered ``(c, h)``, dlref's ``(h, c)`` as PyTorch's); PyTorch's ``nn.LSTMCell``
    with ``w_ih = weight_ih.T``, ``w_hh = weight_hh.T``, ``b = bias_ih + bias_hh``.

    Args:
      params: ``{"w_ih": (I, 4H), "w_hh": (H, 4H), "b": (4H,)}``, gate blocks of width ``H``
        in the order i, f, g, o.
      carry: ``(h, c)``, each ``(..., H)``.
      x: the input at this step, ``(..., I)``.

    Returns:
      The new carry ``(h', c')``, each ``(..., H)``.

    Raises:
      ValueError: if ``params`` lacks a key or has inconsistent shapes, if ``carry`` is not a
        pair, if ``x.shape[-1]`` is not ``I`` or ``h.shape[-1]`` is not ``H``, or if their
        batch dims do not broadcast.
      TypeError: if ``x``, ``h``, ``c`` or a parameter is not floating point.

    Example:
      >>> p = {"w_ih": jnp.zeros((1, 4)), "w_hh": jnp.zeros((1, 4)), "b": jnp.zeros(4)}
      >>> h, c = lstm_cell(p, (jnp.zeros(1), jnp.ones(1)), jnp.ones(1))
      >>> c, h  # every gate 0.5, g = 0: c' = 0.5 * 1, h' = 0.5 * tanh(0.5)
      (Array([0.5], dtype=float32), Array([0.23105858], dtype=float32))

    References:
      Hochreiter & Schmidhuber, "Long short-term memory", Neural Computation 9, 1997.
      Gers, Schmidhuber & Cummins, "Learning to forget", Neural Computation 12, 2000.
    """
    if not isinstance(carry, tuple | list) or len(carry) != 2:
        raise ValueError(f"lstm_cell: carry must be a pair (h, c), got {type(carry).__name__}")
    h, c = carry
    hidden = _check_cell("lstm_cell", params, h, x, 4)
    if jnp.shape(c) != jnp.shape(h):
        raise ValueError(
            f"lstm_cell: h and c must have the same shape, got {jnp.shape(h)} and {jnp.shape(c)}"
        )
    check_floating(c, "c", "lstm_cell")
    z = x @ params["w_ih"] + h @ params["w_hh"] + params["b"]
    zi, zf, zg, zo = (z[..., k * hidden : (k + 1) * hidden] for k in range(4))
    c_new = jax.nn.sigmoid(zf) * c + jax.nn.sigmoid(zi) * jnp.tanh(zg)
    h_new = jax.nn.sigmoid(zo) * jnp.tanh(c_new)
    return h_new, c_new


def scan_rnn(
    cell: Callable[[Any, Any, jax.Array], Any],
    params: Any,
    carry: Any,
    xs: jax.Array,
    *,
    time_major: bool = False,
) -> tuple[Any, jax.Array]:
    """Run a recurrent cell over a sequence with ``lax.scan``.

    .. math:: s_t = \\mathrm{cell}(\\theta, s_{t-1}, x_t),\\quad y_t = h_t,\\quad t = 1..T

    The output at each step is the hidden state: the carry itself when it is an array
    (:func:`rnn_cell`), its first element when it is a tuple (``(h, c)`` of
    :func:`lstm_cell`). Matches flax ``nnx.RNN`` over the same cell (returning all steps) and
    PyTorch's ``nn.RNN``/``nn.LSTM`` output (``batch_first=not time_major``).

    Args:
      params: the cell's parameters, passed unchanged to every step.
      cell: ``cell(params, carry, x_t) -> carry``, e.g. :func:`rnn_cell` or :func:`lstm_cell`.
      carry: the initial state (``h0``, or ``(h0, c0)``), batch dims first.
      xs: the inputs: ``(N, T, I)`` (or ``(T, N, I)`` with ``time_major=True``), or an
        unbatched ``(T, I)``.
      time_major: whether the time axis of a rank-3 ``xs`` comes first.

    Returns:
      ``(final_carry, ys)`` with ``ys`` of shape ``(N, T, H)`` (``(T, N, H)`` if
      ``time_major``; ``(T, H)`` for unbatched input).

    Raises:
      ValueError: if ``xs`` is not of rank 2 or 3, or if one step of ``cell`` does not map
        the carry to a carry of the same shapes and dtypes (e.g. a batch of ``xs`` that is not
        the carry's); and whatever ``cell`` raises for mismatched sizes.
      TypeError: if ``cell`` is not callable, ``xs`` not floating or ``time_major`` not a bool.

    Example:
      >>> p = {"w_ih": jnp.ones((1, 1)), "w_hh": jnp.zeros((1, 1)), "b": jnp.zeros(1)}
      >>> h, ys = scan_rnn(rnn_cell, p, jnp.zeros(1), jnp.zeros((3, 1)))
      >>> ys.shape
      (3, 1)

    References:
      Goodfellow, Bengio & Courville, *Deep Learning*, ch. 10 (MIT Press, 2016).
    """
    op = "scan_rnn"
    if not callable(cell):
        raise TypeError(f"{op}: cell must be a callable cell(params, carry, x), got {cell!r}")
    _check_arrays(op, {"xs": xs})
    ndim = check_rank(xs, (2, 3), "xs (time, features) or (batch, time, features)", op)
    check_floating(xs, "xs", op)
    check_bool(time_major, "time_major", op)
    seq = xs if (ndim == 2 or time_major) else jnp.swapaxes(xs, 0, 1)
    _check_step(op, cell, params, carry, seq[0] if seq.shape[0] else seq.sum(0))

    def step(state, x_t):
        new = cell(params, state, x_t)
        out = new[0] if isinstance(new, tuple | list) else new
        return new, out

    final, ys = lax.scan(step, carry, seq)
    if ndim == 3 and not time_major:
        ys = jnp.swapaxes(ys, 0, 1)
    return final, ys


def _check_step(op: str, cell: Callable, params: Any, carry: Any, x_t: Any) -> None:
    """Raise unless one step of ``cell`` maps ``carry`` to a carry of the same structure,
    shapes and dtypes (what ``lax.scan`` needs), checked abstractly with ``jax.eval_shape``;
    what the cell raises is raised again under this function's name."""
    leaves = jax.tree.leaves(carry)
    if not leaves or not all(isinstance(a, jax.Array | np.ndarray) for a in leaves):
        raise TypeError(f"{op}: carry must be an array or a tuple of arrays, got {carry!r:.80}")
    try:
        new = jax.eval_shape(lambda c, x: cell(params, c, x), carry, x_t)
    except (TypeError, ValueError) as e:
        kind = TypeError if isinstance(e, TypeError) else ValueError
        raise kind(f"{op}: the cell fails on one step: {e}") from e

    def spec(tree):
        return jax.tree.map(lambda a: (tuple(jnp.shape(a)), jnp.result_type(a)), tree)

    try:
        same = jax.tree.structure(new) == jax.tree.structure(carry) and spec(new) == spec(carry)
    except TypeError:
        same = False
    if not same:
        raise ValueError(
            f"{op}: one step must map the carry to a carry of the same shapes and dtypes, got "
            f"{spec(carry)} -> {spec(new)} (is the batch of xs, {jnp.shape(x_t)[:-1]}, the "
            f"carry's?)"
        )


# --------------------------------------------------------------------------------------------
# flax NNX modules
# --------------------------------------------------------------------------------------------

_ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": relu,
    "tanh": tanh,
    "sigmoid": sigmoid,
}


def _activation(name: str, op: str) -> Callable[[jax.Array], jax.Array]:
    if not isinstance(name, str):
        raise TypeError(f"{op}: activation must be one of {tuple(_ACTIVATIONS)}, got {name!r}")
    check_choice(name, tuple(_ACTIVATIONS), "activation", op)
    return _ACTIVATIONS[name]


def _check_rngs(rngs: Any, op: str) -> None:
    if not isinstance(rngs, nnx.Rngs):
        raise TypeError(f"{op}: rngs must be an nnx.Rngs, got {type(rngs).__name__}")


def _check_rate(rate: Any, name: str, op: str) -> None:
    """A dropout rate: a real number in ``[0, 1)``."""
    check_real(rate, name, op)
    check_in_range(rate, 0.0, 1.0, name, op, hi_closed=False)


def _check_widths(widths: Any, name: str, op: str) -> tuple[int, ...]:
    """A sequence of layer widths, each an int >= 1."""
    if not isinstance(widths, Sequence) or isinstance(widths, str):
        raise TypeError(f"{op}: {name} must be a sequence of ints, got {widths!r}")
    return tuple(check_int(w, name, op, minimum=1) for w in widths)


class Conv(nnx.Module):
    """A 2-D convolution layer whose forward pass is :func:`dlref.convolution.conv` (channels-last).

    .. math:: y = \\mathrm{conv}(x, W) + b

    Matches ``flax.nnx.Conv`` (kernel ``(kh, kw, C_in, C_out)``, LeCun-normal init, zero bias).

    Args:
      in_features: input channels ``C_in``.
      out_features: output channels ``C_out``.
      kernel_size: an int or ``(kh, kw)``.
      stride: an int or a pair.
      padding: any padding form of :func:`dlref.convolution.conv` (default ``"SAME"``).
      use_bias: whether to add a bias.
      impl: the ``impl=`` of :func:`dlref.convolution.conv`.
      rngs: ``nnx.Rngs`` for the initialisation.

    Returns:
      A module mapping ``(N, H, W, C_in)`` to ``(N, H', W', C_out)``.

    Raises:
      ValueError: a size or stride below 1, a bad ``padding``, an unknown ``impl``.
      TypeError: a size that is not an int, ``use_bias`` not a bool, ``rngs`` not an
        ``nnx.Rngs``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        kernel_size: int | Sequence[int],
        *,
        stride: int | Sequence[int] = 1,
        padding: Any = "SAME",
        use_bias: bool = True,
        impl: str = "xla",
        rngs: nnx.Rngs,
    ):
        op = "Conv"
        in_features = check_int(in_features, "in_features", op, minimum=1)
        out_features = check_int(out_features, "out_features", op, minimum=1)
        kh, kw = as_tuple(kernel_size, 2, "kernel_size", op, minimum=1)
        as_tuple(stride, 2, "stride", op, minimum=1)
        if not (isinstance(padding, str) and padding.upper() in ("SAME", "VALID")):
            normalize_padding(padding, 2, op)
        check_bool(use_bias, "use_bias", op)
        if not isinstance(impl, str):
            raise TypeError(f"{op}: impl must be one of {IMPLS}, got {impl!r}")
        check_choice(impl, IMPLS, "impl", op)
        _check_rngs(rngs, op)
        shape = (kh, kw, in_features, out_features)
        self.kernel = nnx.Param(nnx.initializers.lecun_normal()(rngs.params(), shape))
        self.bias = nnx.Param(jnp.zeros((out_features,))) if use_bias else None
        self.stride = stride
        self.padding = padding
        self.impl = impl

    def __call__(self, x: jax.Array) -> jax.Array:
        y = conv(x, self.kernel[...], stride=self.stride, padding=self.padding, impl=self.impl)
        return y if self.bias is None else y + self.bias[...]


class BatchNorm(nnx.Module):
    """Batch normalisation over every axis but the last, on :func:`dlref.norm.batch_norm`.

    .. math:: y = \\gamma\\,\\frac{x - \\mu_B}{\\sqrt{\\sigma_B^2 + \\epsilon}} + \\beta

    In training mode (``use_running_average=False``, set by ``model.train()``) it normalises
    with the batch statistics and updates the running ones, PyTorch's rule
    ``running = (1 − momentum)·running + momentum·batch`` with the unbiased batch variance; in
    inference mode (``model.eval()``) it uses the running statistics. The running statistics
    are ``nnx.BatchStat`` variables ``mean`` and ``var`` (the fields of
    :class:`dlref.norm.BatchNormState`). Matches ``torch.nn.BatchNorm{1,2}d`` and
    ``flax.nnx.BatchNorm(momentum=1 − momentum)`` up to flax's biased running variance.

    Args:
      num_features: the size of the last (feature) axis.
      momentum: weight of the new batch in the running statistics (PyTorch convention).
      eps: added to the variance.
      use_running_average: start in inference mode.
      rngs: unused (accepted for the nnx constructor convention).

    Returns:
      A module mapping ``(..., C)`` to the same shape.

    Raises:
      ValueError: ``num_features < 1``, ``momentum`` outside ``[0, 1]``, ``eps`` not
        positive and finite; (on call) an input whose last axis is not ``num_features``.
      TypeError: ``num_features`` not an int, ``use_running_average`` not a bool; (on call) a
        non-floating input.
    """

    def __init__(
        self,
        num_features: int,
        *,
        momentum: float = 0.1,
        eps: float = 1e-5,
        use_running_average: bool = False,
        rngs: nnx.Rngs | None = None,
    ):
        del rngs
        op = "BatchNorm"
        num_features = check_int(num_features, "num_features", op, minimum=1)
        check_nonnegative(momentum, "momentum", op, upper=1.0)
        check_real(eps, "eps", op, finite=True)
        check_in_range(eps, 0.0, float("inf"), "eps", op, lo_closed=False)
        check_bool(use_running_average, "use_running_average", op)
        self.scale = nnx.Param(jnp.ones((num_features,)))
        self.bias = nnx.Param(jnp.zeros((num_features,)))
        self.mean = nnx.BatchStat(jnp.zeros((num_features,)))
        self.var = nnx.BatchStat(jnp.ones((num_features,)))
        self.momentum = momentum
        self.eps = eps
        self.use_running_average = use_running_average

    @property
    def state(self) -> BatchNormState:
        """The running statistics as a :class:`dlref.norm.BatchNormState`."""
        return BatchNormState(self.mean[...], self.var[...])

    def __call__(self, x: jax.Array) -> jax.Array:
        _check_arrays("BatchNorm", {"x": x})
        check_floating(x, "x", "BatchNorm")
        if jnp.ndim(x) < 1 or jnp.shape(x)[-1] != self.scale.shape[0]:
            raise ValueError(
                f"BatchNorm: the last axis of x must hold num_features={self.scale.shape[0]} "
                f"features, got x of shape {jnp.shape(x)}"
            )
        train = not self.use_running_average
        y, new = batch_norm(
            x,
            self.scale[...],
            self.bias[...],
            self.state,
            train=train,
            momentum=self.momentum,
            eps=self.eps,
        )
        if train:
            self.mean[...] = new.mean
            self.var[...] = new.var
        return y


class Dropout(nnx.Module):
    """Inverted dropout on :func:`dlref.regularize.dropout`, active unless ``deterministic``.

    .. math:: y = x \\odot m / (1 - p),\\quad m_i \\sim \\mathrm{Bernoulli}(1 - p)

    Matches ``flax.nnx.Dropout`` (same ``deterministic`` attribute, keys from the
    ``"dropout"`` stream of ``rngs``) and ``torch.nn.Dropout``.

    Args:
      rate: the probability ``p`` of dropping a unit.
      deterministic: start in inference mode (identity).
      rngs: ``nnx.Rngs``; its ``"dropout"`` stream (or ``"default"``) draws the masks.

    Returns:
      A module mapping ``x`` to an array of the same shape.

    Raises:
      ValueError: ``rate`` outside ``[0, 1)``.
      TypeError: ``rate`` not a number, ``deterministic`` not a bool, ``rngs`` not an
        ``nnx.Rngs``.
    """

    def __init__(self, rate: float, *, deterministic: bool = False, rngs: nnx.Rngs):
        _check_rate(rate, "rate", "Dropout")
        check_bool(deterministic, "deterministic", "Dropout")
        _check_rngs(rngs, "Dropout")
        self.rate = rate
        self.deterministic = deterministic
        self.rngs = rngs["dropout"].fork()

    def __call__(self, x: jax.Array) -> jax.Array:
        if self.deterministic or self.rate == 0.0:
            return x
        return dropout(self.rngs(), x, self.rate, train=True)


def _flatten(x: jax.Array, in_features: int, op: str) -> jax.Array:
    _check_arrays(op, {"x": x})
    check_rank(x, tuple(range(2, 6)), "x (batch, ...features)", op)
    check_floating(x, "x", op)
    n = 1
    for d in x.shape[1:]:
        n *= d
    if n != in_features:
        raise ValueError(
            f"{op}: input features must equal in_features={in_features}, got x of shape "
            f"{x.shape} ({n} features per example)"
        )
    return x.reshape(x.shape[0], n)


class MLP(nnx.Module):
    """A multilayer perceptron: ``[Linear → (BN) → activation → (dropout)] × L → Linear``.

    .. math:: a_{l} = \\phi(\\mathrm{BN}(a_{l-1} W_l + b_l)) \\;(+\\, a_{l-1}\\ \\text{if residual})

    Inputs are flattened after the batch axis. Kernels are He-normal for ReLU and
    LeCun-normal for sigmoid/tanh (flax's default), biases zero. With ``residual=True`` every
    hidden layer whose input and output widths agree adds its input (a pre-activation-free
    residual connection, He et al. 2016).

    Args:
      in_features: features per example after flattening.
      hidden_features: the width of each hidden layer (its length is the depth).
      out_features: the output size (e.g. classes).
      activation: ``"relu"``, ``"tanh"`` or ``"sigmoid"`` (the dlref activations).
      batch_norm: insert :class:`BatchNorm` before each activation.
      dropout: the dropout rate after each activation (0 disables it).
      residual: add identity shortcuts around hidden layers of equal width.
      rngs: ``nnx.Rngs`` for initialisation and dropout.

    Returns:
      A module mapping ``(N, ...)`` to logits ``(N, out_features)``.

    Raises:
      ValueError: a size below 1, an unknown activation, ``dropout`` outside ``[0, 1)``, or
        (on call) an input whose per-example size is not ``in_features``.
      TypeError: a size that is not an int, a flag that is not a bool, ``rngs`` not an
        ``nnx.Rngs``; (on call) a non-floating input.
    """

    def __init__(
        self,
        in_features: int,
        hidden_features: Sequence[int],
        out_features: int,
        *,
        activation: str = "relu",
        batch_norm: bool = False,
        dropout: float = 0.0,
        residual: bool = False,
        rngs: nnx.Rngs,
    ):
        op = "MLP"
        in_features = check_int(in_features, "in_features", op, minimum=1)
        hidden_features = _check_widths(hidden_features, "hidden_features", op)
        out_features = check_int(out_features, "out_features", op, minimum=1)
        _activation(activation, op)
        check_bool(batch_norm, "batch_norm", op)
        _check_rate(dropout, "dropout", op)
        check_bool(residual, "residual", op)
        _check_rngs(rngs, op)
        self.activation = activation
        init = (
            nnx.initializers.he_normal()
            if activation == "relu"
            else nnx.initializers.lecun_normal()
        )
        self.in_features = in_features
        self.residual = residual
        dims = [in_features, *hidden_features]
        self.linears = nnx.List(
            [
                nnx.Linear(a, b, kernel_init=init, rngs=rngs)
                for a, b in zip(dims[:-1], dims[1:], strict=True)
            ]
        )
        self.norms = nnx.List([BatchNorm(d, rngs=rngs) for d in dims[1:]] if batch_norm else [])
        self.dropouts = nnx.List(
            [Dropout(dropout, rngs=rngs) for _ in dims[1:]] if dropout > 0 else []
        )
        self.head = nnx.Linear(dims[-1], out_features, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        act = _ACTIVATIONS[self.activation]
        a = _flatten(x, self.in_features, "MLP")
        for i, linear in enumerate(self.linears):
            z = linear(a)
            if self.norms:
                z = self.norms[i](z)
            z = act(z)
            if self.dropouts:
                z = self.dropouts[i](z)
            a = a + z if (self.residual and z.shape == a.shape) else z
        return self.head(a)


class CNN(nnx.Module):
    """A small CNN: ``[Conv3×3 → BN → ReLU → MaxPool2] × len(channels) → dropout → Linear``.

    .. math:: \\text{logits} = W\\,\\mathrm{drop}(\\mathrm{flat}(
              \\mathrm{pool}(\\mathrm{relu}(\\mathrm{BN}(\\mathrm{conv}(\\cdots))))))

    Built on :func:`dlref.convolution.conv`, :func:`dlref.norm.batch_norm`,
    :func:`dlref.activations.relu`, :func:`dlref.pooling.max_pool` and
    :func:`dlref.regularize.dropout`. Sized for 8×8 digits: two blocks leave a 2×2 map.

    Args:
      in_channels: input channels (1 for digits).
      num_classes: output logits.
      image_size: the input height = width (to size the classifier).
      channels: output channels of each conv block.
      dropout: dropout rate before the classifier.
      rngs: ``nnx.Rngs``.

    Returns:
      A module mapping ``(N, H, W, C)`` to logits ``(N, num_classes)``.

    Raises:
      ValueError: a size below 1, an ``image_size`` that the pooling would shrink to
        nothing (below ``2 ** len(channels)``), ``dropout`` outside ``[0, 1)``, or (on call)
        an input that is not ``(N, image_size, image_size, in_channels)``.
      TypeError: a size that is not an int, ``rngs`` not an ``nnx.Rngs``; (on call) a
        non-floating input.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        image_size: int = 8,
        channels: Sequence[int] = (32, 64),
        dropout: float = 0.3,
        rngs: nnx.Rngs,
    ):
        op = "CNN"
        in_channels = check_int(in_channels, "in_channels", op, minimum=1)
        num_classes = check_int(num_classes, "num_classes", op, minimum=1)
        channels = _check_widths(channels, "channels", op)
        image_size = check_int(image_size, "image_size", op, minimum=2 ** len(channels))
        _check_rate(dropout, "dropout", op)
        _check_rngs(rngs, op)
        dims = [in_channels, *channels]
        self.convs = nnx.List(
            [
                Conv(a, b, 3, use_bias=False, rngs=rngs)
                for a, b in zip(dims[:-1], dims[1:], strict=True)
            ]
        )
        self.norms = nnx.List([BatchNorm(b, rngs=rngs) for b in dims[1:]])
        size = image_size
        for _ in channels:
            size //= 2
        self.in_shape = (image_size, image_size, in_channels)
        self.dropout = Dropout(dropout, rngs=rngs)
        self.head = nnx.Linear(size * size * dims[-1], num_classes, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        _check_arrays("CNN", {"x": x})
        check_rank(x, 4, "x (N, H, W, C)", "CNN")
        check_floating(x, "x", "CNN")
        if tuple(x.shape[1:]) != self.in_shape:
            raise ValueError(
                f"CNN: input must have shape (N, *{self.in_shape}), got {tuple(x.shape)}"
            )
        for conv_layer, norm in zip(self.convs, self.norms, strict=True):
            x = max_pool(relu(norm(conv_layer(x))), 2)
        x = self.dropout(x.reshape(x.shape[0], -1))
        return self.head(x)


class ResNetBlock(nnx.Module):
    """The ResNet basic block: ``relu(BN(conv3×3(relu(BN(conv3×3(x))))) + shortcut(x))``.

    .. math:: y = \\mathrm{relu}(\\mathcal{F}(x) + P x)

    ``P`` is the identity, or a 1×1 strided conv + BN ("option B") when the stride or the
    channel count changes. Matches torchvision's ``BasicBlock`` (convs without bias).

    Args:
      in_channels: input channels.
      out_channels: output channels.
      stride: stride of the first 3×3 conv and of the projection.
      rngs: ``nnx.Rngs``.

    Returns:
      A module mapping ``(N, H, W, C_in)`` to ``(N, ⌈H/s⌉, ⌈W/s⌉, C_out)``.

    Raises:
      ValueError: a channel count or stride below 1.
      TypeError: one that is not an int, ``rngs`` not an ``nnx.Rngs``.

    References:
      He, Zhang, Ren & Sun, "Deep residual learning for image recognition", CVPR 2016.
    """

    def __init__(self, in_channels: int, out_channels: int, *, stride: int = 1, rngs: nnx.Rngs):
        op = "ResNetBlock"
        in_channels = check_int(in_channels, "in_channels", op, minimum=1)
        out_channels = check_int(out_channels, "out_channels", op, minimum=1)
        stride = check_int(stride, "stride", op, minimum=1)
        _check_rngs(rngs, op)
        self.conv1 = Conv(in_channels, out_channels, 3, stride=stride, use_bias=False, rngs=rngs)
        self.bn1 = BatchNorm(out_channels, rngs=rngs)
        self.conv2 = Conv(out_channels, out_channels, 3, use_bias=False, rngs=rngs)
        self.bn2 = BatchNorm(out_channels, rngs=rngs)
        if stride != 1 or in_channels != out_channels:
            self.proj = Conv(in_channels, out_channels, 1, stride=stride, use_bias=False, rngs=rngs)
            self.proj_bn = BatchNorm(out_channels, rngs=rngs)
        else:
            self.proj = None
            self.proj_bn = None

    def __call__(self, x: jax.Array) -> jax.Array:
        y = relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        shortcut = x if self.proj is None else self.proj_bn(self.proj(x))
        return relu(y + shortcut)


class _Recurrent(nnx.Module):
    """Shared parts of :class:`RNN` and :class:`LSTM`."""

    gates: int = 1
    cell: Callable = staticmethod(rnn_cell)
    name: str = "RNN"

    def __init__(
        self,
        in_features: int,
        hidden_features: int,
        *,
        out_features: int | None = None,
        rngs: nnx.Rngs,
    ):
        op = self.name
        in_features = check_int(in_features, "in_features", op, minimum=1)
        hidden_features = check_int(hidden_features, "hidden_features", op, minimum=1)
        if out_features is not None:
            out_features = check_int(out_features, "out_features", op, minimum=1)
        _check_rngs(rngs, op)
        g, hid = self.gates, hidden_features
        self.in_features = in_features
        self.hidden_features = hidden_features
        self.w_ih = nnx.Param(
            nnx.initializers.lecun_normal()(rngs.params(), (in_features, g * hid))
        )
        blocks = [nnx.initializers.orthogonal()(rngs.params(), (hid, hid)) for _ in range(g)]
        self.w_hh = nnx.Param(jnp.concatenate(blocks, axis=1))
        self.b = nnx.Param(self._init_bias(hid))
        self.head = nnx.Linear(hid, out_features, rngs=rngs) if out_features else None

    def _init_bias(self, hidden: int) -> jax.Array:
        return jnp.zeros((self.gates * hidden,))

    @property
    def params(self) -> dict:
        """The parameters as the dict of :func:`rnn_cell` / :func:`lstm_cell`."""
        return {"w_ih": self.w_ih[...], "w_hh": self.w_hh[...], "b": self.b[...]}

    def initial_carry(self, batch: int) -> Any:
        """The zero initial carry for ``batch`` sequences."""
        return jnp.zeros((batch, self.hidden_features))

    def sequence(self, xs: jax.Array) -> jax.Array:
        """All hidden states ``(N, T, H)`` for inputs ``(N, T, I)`` (zero initial state)."""
        _check_arrays(self.name, {"xs": xs})
        check_rank(xs, 3, "xs (batch, time, features)", self.name)
        check_floating(xs, "xs", self.name)
        if xs.shape[1] < 1:
            raise ValueError(f"{self.name}: xs must hold at least one time step, got {xs.shape}")
        if xs.shape[-1] != self.in_features:
            raise ValueError(
                f"{self.name}: input features xs.shape[-1] must equal in_features="
                f"{self.in_features}, got xs of shape {xs.shape}"
            )
        _, ys = scan_rnn(type(self).cell, self.params, self.initial_carry(xs.shape[0]), xs)
        return ys

    def __call__(self, xs: jax.Array) -> jax.Array:
        h_last = self.sequence(xs)[:, -1]
        return h_last if self.head is None else self.head(h_last)


class RNN(_Recurrent):
    """An Elman RNN over :func:`rnn_cell` and :func:`scan_rnn`, with an optional linear head.

    .. math:: h_t = \\tanh(x_t W_{ih} + h_{t-1} W_{hh} + b),\\quad y = h_T W + c

    Initialisation: ``w_ih`` LeCun-normal, ``w_hh`` orthogonal, ``b`` zero (flax's
    ``SimpleCell``). ``.sequence(xs)`` returns every hidden state.

    Args:
      in_features: input features ``I`` per step.
      hidden_features: hidden size ``H``.
      out_features: size of the linear head on ``h_T``; ``None`` returns ``h_T`` itself.
      rngs: ``nnx.Rngs``.

    Returns:
      A module mapping ``(N, T, I)`` to ``(N, out_features)`` (or ``(N, H)``).

    Raises:
      ValueError: a size below 1; (on call) ``xs`` not rank 3, without time steps, or
        ``xs.shape[-1] != in_features``.
      TypeError: a size that is not an int, ``rngs`` not an ``nnx.Rngs``; (on call) a
        non-floating ``xs``.
    """

    gates = 1
    cell = staticmethod(rnn_cell)
    name = "RNN"


class LSTM(_Recurrent):
    """An LSTM over :func:`lstm_cell` and :func:`scan_rnn`, with an optional linear head.

    .. math:: (h_t, c_t) = \\mathrm{lstm\\_cell}(\\theta, (h_{t-1}, c_{t-1}), x_t),
              \\quad y = h_T W + c

    Initialisation: ``w_ih`` LeCun-normal, each gate block of ``w_hh`` orthogonal, ``b`` zero
    except the forget-gate block, set to 1 (Jozefowicz et al. 2015) so that early in
    training the cell state is kept. ``.sequence(xs)`` returns every hidden state.

    The arguments (``in_features``, ``hidden_features``, ``out_features``, ``rngs``), the module
    returned (``(N, T, I)`` to ``(N, out_features)``, or ``(N, H)``) and the errors are those
    of :class:`RNN`.

    References:
      Jozefowicz, Zaremba & Sutskever, "An empirical exploration of recurrent network
      architectures", ICML 2015.
    """

    gates = 4
    cell = staticmethod(lstm_cell)
    name = "LSTM"

    def _init_bias(self, hidden: int) -> jax.Array:
        return jnp.zeros((4 * hidden,)).at[hidden : 2 * hidden].set(1.0)

    def initial_carry(self, batch: int) -> Any:
        """The zero initial carry ``(h0, c0)`` for ``batch`` sequences."""
        z = jnp.zeros((batch, self.hidden_features))
        return (z, z)
