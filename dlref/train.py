"""Training: data, an optax loop for the NNX models of :mod:`dlref.nn`, and ``dlref train``.

* Data: :func:`load_digits` (scikit-learn's 8×8 digits, shipped with the package, split
  train / validation / test with a fixed seed) and :func:`adding_problem` (a generated
  sequence task for recurrent models).
* :func:`fit`: any optax optimizer, L1/L2 penalties (:mod:`dlref.regularize`), gradient
  clipping by global norm, early stopping, train/eval modes, a metrics :class:`History`, a
  tqdm progress bar, the best model checkpointed to disk, and data-parallel training over a
  ``jax.sharding`` mesh (batch sharded, parameters replicated).
* :func:`evaluate`, :func:`save_checkpoint`, :func:`load_checkpoint`.
* :func:`cli_main`, the ``dlref train mlp|cnn|lstm`` command.

The loop is functional: the model is split once (``nnx.split``) into a graph definition,
its ``nnx.Param`` leaves and the rest (batch statistics, RNG counters); one jitted step maps
``(params, rest, opt_state, batch)`` to their new values. ``model.train()`` / ``model.eval()``
are applied before splitting, so the training and evaluation graphs differ only in the static
``deterministic`` / ``use_running_average`` flags.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import os
import pathlib
import sys
import time
import zipfile
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from dlref._checks import (
    check_bool,
    check_choice,
    check_in_range,
    check_int,
    check_key,
    check_nonnegative,
    check_real,
)
from dlref.losses import l2_loss, softmax_cross_entropy
from dlref.regularize import EarlyStopping, clip_by_global_norm, l1_penalty, l2_penalty

__all__ = [
    "Splits",
    "History",
    "load_digits",
    "adding_problem",
    "fit",
    "evaluate",
    "save_checkpoint",
    "load_checkpoint",
    "data_parallel_mesh",
    "cli_main",
]

Data = tuple[Any, Any]

# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


class Splits(NamedTuple):
    """Train / validation / test splits, each an ``(x, y)`` pair of NumPy arrays."""

    train: Data
    val: Data
    test: Data


_LAYOUTS = ("image", "flat", "sequence")


def load_digits(
    *, seed: int = 0, val_fraction: float = 0.15, test_fraction: float = 0.15, layout="image"
) -> Splits:
    """scikit-learn's 8×8 handwritten digits, scaled to [0, 1] and split with a fixed seed.

    .. math:: x = \\text{pixel} / 16 \\in [0, 1],\\quad y \\in \\{0, \\dots, 9\\}

    1797 images; the split is stratified by class (``sklearn.model_selection.train_test_split``
    with ``random_state=seed``), so the same seed always gives the same split.

    Args:
      seed: the seed of the split.
      val_fraction: fraction of all examples held out for validation.
      test_fraction: fraction of all examples held out for testing.
      layout: ``"image"`` gives ``x`` of shape ``(N, 8, 8, 1)`` (for :class:`dlref.nn.CNN`),
        ``"flat"`` ``(N, 64)`` (for :class:`dlref.nn.MLP`), ``"sequence"`` ``(N, 8, 8)``:
        the rows read top to bottom as 8 steps of 8 features (for the recurrent models).

    Returns:
      :class:`Splits` of ``(x float32, y int32)`` pairs.

    Raises:
      ValueError: for an unknown layout, fractions outside (0, 1) or summing to 1 or more, a
        negative seed.
      TypeError: a seed that is not an int, fractions that are not numbers.

    Example:
      >>> s = load_digits(layout="flat")
      >>> s.train[0].shape, s.val[0].shape, s.test[0].shape
      ((1257, 64), (270, 64), (270, 64))

    References:
      Alpaydin & Kaynak, "Optical recognition of handwritten digits", UCI repository, 1998.
    """
    from sklearn.datasets import load_digits as _sk_digits
    from sklearn.model_selection import train_test_split

    op = "load_digits"
    check_int(seed, "seed", op, minimum=0)
    if not isinstance(layout, str):
        raise TypeError(f"{op}: layout must be one of {_LAYOUTS}, got {layout!r}")
    check_choice(layout, _LAYOUTS, "layout", op)
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        check_real(value, name, op)
        check_in_range(value, 0, 1, name, op, lo_closed=False)
    if val_fraction + test_fraction >= 1:
        raise ValueError(
            f"load_digits: val_fraction + test_fraction must be < 1, got "
            f"{val_fraction} + {test_fraction}"
        )
    data = _sk_digits()
    x = (data.images / 16.0).astype(np.float32)
    y = data.target.astype(np.int32)
    n = len(y)
    n_test = round(test_fraction * n)
    n_val = round(val_fraction * n)
    x_rest, x_test, y_rest, y_test = train_test_split(
        x, y, test_size=n_test, random_state=seed, stratify=y
    )
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=n_val, random_state=seed, stratify=y_rest
    )

    def shape(a):
        if layout == "image":
            return a[..., None]
        if layout == "flat":
            return a.reshape(len(a), -1)
        return a

    return Splits((shape(x_train), y_train), (shape(x_val), y_val), (shape(x_test), y_test))


def adding_problem(key: jax.Array, n: int, length: int) -> tuple[jax.Array, jax.Array]:
    """The adding problem: sum the two marked numbers of a long sequence.

    .. math:: x_t = (u_t, m_t),\\ u_t \\sim U[0, 1],\\ m \\text{ one-hot at } a < T/2 \\text{
              and } b \\ge T/2,\\quad y = u_a + u_b

    One marker falls in the first half and one in the second, so the model must carry
    ``u_a`` over at least ``T/2`` steps; predicting the mean (1.0) gives an MSE of 1/6.

    Args:
      key: a ``jax.random`` key.
      n: number of sequences.
      length: the sequence length ``T`` (at least 2).

    Returns:
      ``(x, y)``: ``x`` of shape ``(n, length, 2)`` (value, marker) and ``y`` of shape ``(n,)``.

    Raises:
      ValueError: if ``n < 1`` or ``length < 2``.
      TypeError: ``key`` not a ``jax.random`` key, ``n`` or ``length`` not an int.

    Example:
      >>> x, y = adding_problem(jax.random.key(0), 4, 10)
      >>> x.shape, y.shape, float(x[0, :, 1].sum())
      ((4, 10, 2), (4,), 2.0)

    References:
      Hochreiter & Schmidhuber, "Long short-term memory", Neural Computation 9, 1997 (exp. 4).
    """
    check_key(key, "adding_problem")
    n = check_int(n, "n", "adding_problem", minimum=1)
    length = check_int(length, "length", "adding_problem", minimum=2)
    k_u, k_a, k_b = jax.random.split(key, 3)
    half = length // 2
    u = jax.random.uniform(k_u, (n, length))
    a = jax.random.randint(k_a, (n,), 0, half)
    b = jax.random.randint(k_b, (n,), half, length)
    marks = jax.nn.one_hot(a, length) + jax.nn.one_hot(b, length)
    y = jnp.sum(u * marks, axis=1)
    return jnp.stack([u, marks], axis=-1), y


# --------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------

_SAVED = nnx.Any(nnx.Param, nnx.BatchStat)


def _check_path(path: Any, op: str) -> pathlib.Path:
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"{op}: path must be a str or os.PathLike, got {path!r:.80}")
    path = pathlib.Path(path)
    if not path.name:
        raise ValueError(f"{op}: path must name a file, got {str(path)!r}")
    return path


def _flat_state(model: nnx.Module) -> tuple[dict[str, Any], Any, Any]:
    state = nnx.state(model, _SAVED)
    leaves, treedef = jax.tree_util.tree_flatten_with_path(state)
    named = {jax.tree_util.keystr(path): leaf for path, leaf in leaves}
    return named, treedef, state


def save_checkpoint(model: nnx.Module, path: str | pathlib.Path) -> pathlib.Path:
    """Write a model's parameters and batch statistics to a NumPy ``.npz`` file.

    .. math:: \\text{file} = \\{\\text{path of leaf}: \\text{leaf}\\}
              \\text{ for every nnx.Param and nnx.BatchStat}

    RNG counters are not saved (they do not affect evaluation). Plays the role of
    ``orbax.checkpoint`` / ``flax.serialization.to_bytes`` with a plain, inspectable file.

    Args:
      model: an NNX module.
      path: the file to write (``.npz`` is appended by NumPy if missing).

    Returns:
      The path written.

    Raises:
      TypeError: ``model`` not an NNX module, ``path`` not a path.
      ValueError: the file cannot be written (its message names the OS error).

    Example:
      >>> import tempfile; from dlref.nn import MLP
      >>> m = MLP(4, [3], 2, rngs=nnx.Rngs(0))
      >>> p = save_checkpoint(m, tempfile.mkdtemp() + "/m.npz"); p.name
      'm.npz'
    """
    op = "save_checkpoint"
    _check_model(model, op)
    path = _check_path(path, op)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    named, _, _ = _flat_state(model)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **{k: np.asarray(v) for k, v in named.items()})
    except OSError as e:
        raise ValueError(f"{op}: cannot write {path}: {e}") from e
    return path


def load_checkpoint(model: nnx.Module, path: str | pathlib.Path) -> nnx.Module:
    """Load a :func:`save_checkpoint` file into ``model`` (in place) and return it.

    .. math:: \\theta \\leftarrow \\text{file}

    Args:
      model: a module of the same architecture as the one saved.
      path: the ``.npz`` file.

    Returns:
      ``model``, with its parameters and batch statistics replaced by the file's.

    Raises:
      ValueError: if the file cannot be read (missing, not an ``.npz``) or its entries or
        shapes do not match the model's.
      TypeError: ``model`` not an NNX module, ``path`` not a path.

    Example:
      >>> import tempfile; from dlref.nn import MLP
      >>> p = save_checkpoint(MLP(4, [3], 2, rngs=nnx.Rngs(0)), tempfile.mkdtemp() + "/m")
      >>> m = load_checkpoint(MLP(4, [3], 2, rngs=nnx.Rngs(1)), p)
      >>> float(m.head.bias[0])
      0.0
    """
    op = "load_checkpoint"
    _check_model(model, op)
    path = _check_path(path, op)
    named, treedef, _ = _flat_state(model)
    try:
        with np.load(path) as f:
            stored = {k: f[k] for k in f.files}
    except (OSError, ValueError, AttributeError, zipfile.BadZipFile) as e:
        raise ValueError(f"load_checkpoint: cannot read a checkpoint from {path}: {e}") from e
    if set(stored) != set(named):
        missing = sorted(set(named) - set(stored))
        extra = sorted(set(stored) - set(named))
        raise ValueError(
            f"load_checkpoint: {path} does not match the model: missing {missing}, "
            f"unexpected {extra}"
        )
    leaves = []
    for k, v in named.items():
        if stored[k].shape != tuple(v.shape):
            raise ValueError(
                f"load_checkpoint: {k} has shape {stored[k].shape} in {path}, the model "
                f"expects {tuple(v.shape)}"
            )
        leaves.append(jnp.asarray(stored[k], dtype=v.dtype))
    nnx.update(model, jax.tree.unflatten(treedef, leaves))
    return model


# --------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class History:
    """Per-epoch metrics of :func:`fit` (``accuracy`` entries are ``nan`` for regression).

    Attributes:
      train_loss: mean data loss over the epoch's training batches (penalties excluded).
      train_accuracy: training accuracy over the epoch's batches (train mode).
      val_loss: validation loss in eval mode (empty without validation data).
      val_accuracy: validation accuracy in eval mode.
      epoch_time: wall seconds per epoch (the first includes compilation).
      best_epoch: the epoch (0-based) of the best validation loss, or ``None``.
      stopped_early: whether early stopping ended training.
    """

    train_loss: list[float] = dataclasses.field(default_factory=list)
    train_accuracy: list[float] = dataclasses.field(default_factory=list)
    val_loss: list[float] = dataclasses.field(default_factory=list)
    val_accuracy: list[float] = dataclasses.field(default_factory=list)
    epoch_time: list[float] = dataclasses.field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False


def _mse(pred: jax.Array, y: jax.Array) -> jax.Array:
    return l2_loss(jnp.reshape(pred, jnp.shape(y)), y)


_LOSSES: dict[str, Callable] = {"cross_entropy": softmax_cross_entropy, "mse": _mse}


def _loss_fn(loss: str | Callable, op: str) -> Callable:
    if callable(loss):
        return loss
    if not isinstance(loss, str):
        raise TypeError(f"{op}: loss must be one of {tuple(_LOSSES)} or a callable, got {loss!r}")
    check_choice(loss, tuple(_LOSSES), "loss", op)
    return _LOSSES[loss]


def _correct(out: jax.Array, y: jax.Array) -> jax.Array:
    if out.ndim == y.ndim + 1 and jnp.issubdtype(y.dtype, jnp.integer):
        return jnp.sum(jnp.argmax(out, axis=-1) == y)
    return jnp.array(jnp.nan)


def data_parallel_mesh(*, devices: Any = None) -> Mesh:
    """A 1-D device mesh with axis ``"data"`` for data-parallel :func:`fit`.

    .. math:: \\text{mesh} = (d_0, \\dots, d_{D-1}) \\text{ along } \\texttt{"data"}

    Args:
      devices: a non-empty sequence of ``jax.Device`` (default: ``jax.devices()``).

    Returns:
      A ``jax.sharding.Mesh`` of shape ``(D,)``.

    Raises:
      TypeError: ``devices`` is not a sequence of devices.
      ValueError: ``devices`` is empty.

    Example:
      >>> data_parallel_mesh().axis_names
      ('data',)
    """
    op = "data_parallel_mesh"
    if devices is None:
        devices = jax.devices()
    if not isinstance(devices, Sequence) or not all(isinstance(d, jax.Device) for d in devices):
        raise TypeError(f"{op}: devices must be a sequence of jax.Device, got {devices!r}")
    if not devices:
        raise ValueError(f"{op}: devices must name at least one device, got {devices!r}")
    return Mesh(np.asarray(list(devices)), ("data",))


# -- argument checks ---------------------------------------------------------------------------


def _check_model(model: Any, op: str) -> None:
    if not isinstance(model, nnx.Module):
        raise TypeError(f"{op}: model must be a flax nnx.Module, got {type(model).__name__}")


def _check_data(data: Any, name: str, op: str) -> tuple[np.ndarray, np.ndarray]:
    """``data`` as a pair of NumPy arrays with as many (at least one) examples each."""
    if not isinstance(data, tuple | list) or len(data) != 2:
        raise TypeError(f"{op}: {name} must be a pair (x, y) of arrays, got {type(data).__name__}")
    pair = []
    for part, array in zip("xy", data, strict=True):
        try:
            a = np.asarray(array)
        except (TypeError, ValueError) as e:
            raise TypeError(f"{op}: {name} {part} must be an array, got {array!r:.80}") from e
        if a.dtype.kind not in "biuf" or a.ndim < 1:
            raise TypeError(
                f"{op}: {name} {part} must be a numeric array with a leading example axis, got "
                f"dtype {a.dtype} and shape {a.shape}"
            )
        pair.append(a)
    x, y = pair
    if len(x) != len(y):
        raise ValueError(
            f"{op}: {name} x and y must hold as many examples, got {len(x)} and {len(y)}"
        )
    if len(x) == 0:
        raise ValueError(f"{op}: {name} must hold at least one example, got none")
    return x, y


def _check_against_model(
    graphdef: Any, state: tuple, loss: Any, loss_fn: Callable, data: tuple, name: str, op: str
) -> None:
    """Trace (``jax.eval_shape``: no FLOPs) the model on the first two examples, check the
    targets against its outputs, then trace the loss: a model or loss that fails, targets that
    do not fit, or a loss that is not a scalar raise here, before any step runs."""
    x, y = data
    try:
        out = jax.eval_shape(lambda p, r, xb: nnx.merge(graphdef, p, r)(xb), *state, x[:2])
    except (TypeError, ValueError) as e:
        raise ValueError(f"{op}: the model does not accept {name} x of shape {x.shape}: {e}") from e
    _check_targets(tuple(out.shape), y, loss, name, op)
    try:
        value = jax.eval_shape(loss_fn, out, y[:2])
    except (TypeError, ValueError) as e:
        raise ValueError(f"{op}: the loss fails on the outputs and {name} y: {e}") from e
    if getattr(value, "shape", None) != ():
        raise ValueError(f"{op}: the loss must return a scalar, got {value}")


def _check_targets(out_shape: tuple, y: np.ndarray, loss: Any, name: str, op: str) -> None:
    """Concrete checks of the targets of the built-in losses against the model's outputs."""
    if loss == "cross_entropy" and y.dtype.kind in "biu":
        classes = out_shape[-1]
        if y.shape[1:] != out_shape[1:-1]:
            raise ValueError(
                f"{op}: {name} integer labels must have shape (N, *{out_shape[1:-1]}) for "
                f"outputs (N, *{out_shape[1:]}), got {y.shape}"
            )
        if y.size and (y.min() < 0 or y.max() >= classes):
            raise ValueError(
                f"{op}: {name} labels must lie in [0, {classes}) (the model's {classes} "
                f"outputs), got values in [{y.min()}, {y.max()}]"
            )
    elif loss == "cross_entropy" and y.shape[1:] != out_shape[1:]:
        raise ValueError(
            f"{op}: {name} targets for loss='cross_entropy' must be integer labels or "
            f"probabilities of the outputs' shape (N, *{out_shape[1:]}), got {y.dtype} {y.shape}"
        )
    elif loss == "mse" and math.prod(y.shape[1:]) != math.prod(out_shape[1:]):
        hint = "; integer class labels need loss='cross_entropy'" if y.dtype.kind in "biu" else ""
        raise ValueError(
            f"{op}: {name} targets for loss='mse' must have one value per output "
            f"({out_shape[1:]} per example), got shape {y.shape}{hint}"
        )


def _check_loop_options(
    op: str, n: int, epochs: Any, batch_size: Any, l1: Any, l2: Any, clip_norm: Any, **flags: Any
) -> int:
    """The scalar options of :func:`fit`; returns ``epochs`` as an int."""
    epochs = check_int(epochs, "epochs", op, minimum=1)
    check_int(batch_size, "batch_size", op, minimum=1)
    if batch_size > n:
        raise ValueError(
            f"{op}: batch_size must lie in [1, {n}] (the training set size), got {batch_size}"
        )
    check_nonnegative(l1, "l1", op)
    check_nonnegative(l2, "l2", op)
    if clip_norm is not None:
        check_real(clip_norm, "clip_norm", op, finite=True)
        check_in_range(clip_norm, 0.0, math.inf, "clip_norm", op, lo_closed=False)
    for name, value in flags.items():
        check_bool(value, name, op)
    return epochs


# -- the jitted steps --------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnums=(0, 1))
def _eval_step(graphdef: Any, loss_fn: Callable, params, rest, x, y):
    """Loss and number of correct predictions in one call, compiled once per model structure,
    loss and shapes (``graphdef`` and ``loss_fn`` are static: hashed, not traced)."""
    out = nnx.merge(graphdef, params, rest)(x)
    return loss_fn(out, y), _correct(out, y)


def _train_step_fn(
    graphdef: Any,
    optimizer: optax.GradientTransformation,
    loss_fn: Callable,
    l1: float,
    l2: float,
    clip_norm: float | None,
) -> Callable:
    """The jitted step ``(params, rest, opt_state, x, y) -> (params, rest, opt_state, loss,
    correct)``: penalised objective, gradient (clipped), optimizer update."""

    def objective(m, x, y):
        out = m(x)
        data_loss = loss_fn(out, y)
        total = data_loss
        if l1 or l2:
            p = nnx.state(m, nnx.Param)
            if l1:
                total = total + l1 * l1_penalty(p)
            if l2:
                total = total + l2 * l2_penalty(p)
        return total, (data_loss, _correct(out, y))

    @jax.jit
    def train_step(params, rest, opt_state, x, y):  # the name of the compiled module
        m = nnx.merge(graphdef, params, rest)
        grads, (data_loss, correct) = nnx.grad(objective, has_aux=True)(m, x, y)
        if clip_norm is not None:
            grads, _ = clip_by_global_norm(grads, clip_norm)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        rest = nnx.state(m, nnx.Not(nnx.Param))
        return optax.apply_updates(params, updates), rest, opt_state, data_loss, correct

    return train_step


# -- the epoch loop and the best epoch ---------------------------------------------------------


@dataclasses.dataclass
class _Best:
    """The lowest validation loss so far, its epoch and its (host) weights."""

    loss: float = math.inf
    epoch: int | None = None
    state: Any = None

    def offer(self, epoch: int, loss: float, state: tuple) -> bool:
        """Keep ``state`` if ``loss`` beats the best so far; return whether it did."""
        if not loss < self.loss:
            return False
        self.loss, self.epoch, self.state = loss, epoch, jax.device_get(state)
        return True


def _run_epoch(step, state, x, y, order, batch_size, place) -> tuple[tuple, float, float]:
    """One pass over ``order`` in full batches; returns the new state, mean loss, accuracy."""
    steps = len(order) // batch_size
    losses, correct = [], []
    for s in range(steps):
        idx = order[s * batch_size : (s + 1) * batch_size]
        *state, value, right = step(*state, *place((x[idx], y[idx])))
        losses.append(value)
        correct.append(right)
    mean_loss = float(np.mean(jax.device_get(losses)))
    return tuple(state), mean_loss, float(np.sum(jax.device_get(correct))) / (steps * batch_size)


def evaluate(
    model: nnx.Module, data: Data, *, loss: str | Callable = "cross_entropy"
) -> dict[str, float]:
    """Loss and accuracy of ``model`` on ``data`` in eval mode (the model is left in eval mode).

    .. math:: \\text{loss} = \\frac{1}{N}\\sum_i \\ell(f(x_i), y_i),\\quad
              \\text{accuracy} = \\frac{1}{N}\\sum_i [\\arg\\max f(x_i) = y_i]

    The evaluation step is compiled once per model structure, loss and data shape, and reused
    by later calls (and by :func:`fit`).

    Args:
      model: an NNX module mapping a batch ``x`` to outputs.
      data: ``(x, y)``; the whole set is evaluated in one call.
      loss: ``"cross_entropy"`` (:func:`dlref.losses.softmax_cross_entropy`), ``"mse"``
        (:func:`dlref.losses.l2_loss`) or a callable ``(outputs, y) -> scalar``.

    Returns:
      ``{"loss": float, "accuracy": float}`` (accuracy ``nan`` unless ``y`` is integer labels).

    Raises:
      ValueError: an unknown loss name; ``x`` and ``y`` of different lengths or empty; labels
        outside ``[0, C)`` or targets that do not fit the model's outputs; an ``x`` the model
        does not accept; a loss that fails on the outputs or is not a scalar.
      TypeError: ``model`` not an NNX module, ``data`` not a pair of numeric arrays, ``loss``
        neither a name nor a callable.

    Example:
      >>> from dlref.nn import MLP
      >>> m = MLP(2, [4], 2, rngs=nnx.Rngs(0))
      >>> sorted(evaluate(m, (np.zeros((3, 2), np.float32), np.zeros(3, np.int32))))
      ['accuracy', 'loss']
    """
    op = "evaluate"
    _check_model(model, op)
    loss_fn = _loss_fn(loss, op)
    x, y = _check_data(data, "data", op)
    model.eval()
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    _check_against_model(graphdef, (params, rest), loss, loss_fn, (x, y), "data", op)
    value, correct = _eval_step(graphdef, loss_fn, params, rest, jnp.asarray(x), jnp.asarray(y))
    return {"loss": float(value), "accuracy": float(correct) / len(y)}


def fit(
    model: nnx.Module,
    optimizer: optax.GradientTransformation,
    train: Data,
    *,
    val: Data | None = None,
    epochs: int = 10,
    batch_size: int = 64,
    loss: str | Callable = "cross_entropy",
    l1: float = 0.0,
    l2: float = 0.0,
    clip_norm: float | None = None,
    early_stopping: EarlyStopping | None = None,
    checkpoint: str | pathlib.Path | None = None,
    restore_best: bool = True,
    mesh: Mesh | None = None,
    seed: int = 0,
    progress: bool = True,
) -> History:
    """Train an NNX model in place with an optax optimizer; return the metrics history.

    .. math:: \\theta \\leftarrow \\theta + \\mathrm{opt}\\big(\\mathrm{clip}(\\nabla_\\theta
              [\\tfrac{1}{B}\\textstyle\\sum_{i \\in B} \\ell(f_\\theta(x_i), y_i)
              + \\lambda_1 \\lVert\\theta\\rVert_1 + \\lambda_2 \\lVert\\theta\\rVert_2^2])\\big)

    Each epoch shuffles the training set (NumPy, seeded by ``seed`` and the epoch) and runs
    ``len(train) // batch_size`` full batches (the remainder is dropped, so every step has the
    same shape and one compilation serves all) in train mode, then evaluates on ``val`` in
    eval mode. With ``val``: the epoch with the lowest validation loss is the best one; it is
    written to ``checkpoint`` (see :func:`save_checkpoint`) and, with ``restore_best``,
    loaded back at the end; ``early_stopping`` (a :class:`dlref.regularize.EarlyStopping`)
    watches the validation loss. The penalties apply to every ``nnx.Param`` (biases and BN
    scales included), as ``weight_decay`` does in ``torch.optim.SGD``.

    Everything checkable is checked before the first step: the argument types, that ``x`` and
    ``y`` hold as many examples, that the model accepts ``x`` (abstractly, no compute), and for
    the built-in losses that the targets fit the outputs (integer labels in ``[0, C)`` for
    ``"cross_entropy"``, one value per output for ``"mse"``).

    With ``mesh`` (see :func:`data_parallel_mesh`), each batch is sharded over the mesh's
    first axis and the parameters, optimizer state and batch statistics are replicated; jit
    inserts the gradient all-reduce. Results equal single-device training to float rounding
    (batch-norm statistics are those of the global batch).

    Matches the usual flax NNX + optax loop (``nnx.Optimizer`` with ``nnx.value_and_grad``),
    written functionally; PyTorch's ``model.train()`` / ``optimizer.step()`` loop.

    Args:
      model: an NNX module (e.g. from :mod:`dlref.nn`), updated in place; left in eval mode.
      optimizer: any ``optax.GradientTransformation``.
      train: ``(x, y)`` training arrays.
      val: optional ``(x, y)`` validation arrays.
      epochs: maximum number of epochs, an int ``>= 1``.
      batch_size: examples per step (divisible by the mesh size when ``mesh`` is given).
      loss: ``"cross_entropy"``, ``"mse"`` or a callable ``(outputs, y) -> scalar``.
      l1: weight of :func:`dlref.regularize.l1_penalty` in the objective.
      l2: weight of :func:`dlref.regularize.l2_penalty` in the objective.
      clip_norm: clip the gradient to this global norm
        (:func:`dlref.regularize.clip_by_global_norm`); ``None`` disables it.
      early_stopping: stop when the validation loss stops improving (needs ``val``).
      checkpoint: file to which the best model is saved (needs ``val``).
      restore_best: load the best epoch's weights at the end (needs ``val``).
      mesh: a device mesh for data-parallel training, or ``None`` for one device.
      seed: seeds the shuffling (an int ``>= 0``).
      progress: show a tqdm progress bar (on stderr).

    Returns:
      The :class:`History` of per-epoch metrics.

    Raises:
      ValueError: an unknown loss; ``epochs < 1``; a ``batch_size`` below 1, above the
        training set size or not divisible by the devices of ``mesh``; negative or non-finite
        penalties or ``clip_norm``; ``x`` and ``y`` of different lengths; labels outside
        ``[0, C)`` or targets that do not fit the outputs; an ``x`` the model does not accept;
        a loss that fails on the outputs or is not a scalar; ``early_stopping``/``checkpoint``
        without ``val``.
      TypeError: ``model`` not an NNX module, ``optimizer`` not an optax transformation,
        data not pairs of numeric arrays, a non-int ``epochs``/``batch_size``/``seed``, a
        non-bool flag, ``early_stopping``/``mesh``/``checkpoint`` of the wrong type.

    Example:
      >>> from dlref.nn import MLP
      >>> x = np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32)
      >>> y = (x[:, 0] > 0).astype(np.int32)
      >>> m = MLP(2, [8], 2, rngs=nnx.Rngs(0))
      >>> h = fit(m, optax.adam(0.05), (x, y), epochs=20, batch_size=32, progress=False)
      >>> h.train_accuracy[-1] > 0.9
      True
    """
    op = "fit"
    # -- checks: everything before the first step
    _check_model(model, op)
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(
            f"{op}: optimizer must be an optax.GradientTransformation (e.g. optax.adam(1e-3)), "
            f"got {optimizer!r:.80}"
        )
    loss_fn = _loss_fn(loss, op)
    x_train, y_train = _check_data(train, "train", op)
    n = len(x_train)
    epochs = _check_loop_options(
        op, n, epochs, batch_size, l1, l2, clip_norm, restore_best=restore_best, progress=progress
    )
    check_int(seed, "seed", op, minimum=0)
    if early_stopping is not None and not isinstance(early_stopping, EarlyStopping):
        raise TypeError(
            f"{op}: early_stopping must be an EarlyStopping or None, got {early_stopping!r:.80}"
        )
    if checkpoint is not None and not isinstance(checkpoint, str | os.PathLike):
        raise TypeError(f"{op}: checkpoint must be a path or None, got {checkpoint!r:.80}")
    if val is None and (early_stopping is not None or checkpoint is not None):
        raise ValueError("fit: early_stopping and checkpoint need validation data (val=...)")
    if mesh is not None and not isinstance(mesh, Mesh):
        raise TypeError(f"{op}: mesh must be a jax.sharding.Mesh or None, got {mesh!r:.80}")
    if mesh is not None and batch_size % mesh.devices.size:
        raise ValueError(
            f"fit: batch_size={batch_size} must be divisible by the number of devices "
            f"in the mesh ({mesh.devices.size}) for data-parallel training"
        )
    model.eval()
    eval_graphdef = nnx.graphdef(model)
    model.train()
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    _check_against_model(
        eval_graphdef, (params, rest), loss, loss_fn, (x_train, y_train), "train", op
    )
    if val is not None:
        x_val, y_val = _check_data(val, "val", op)
        _check_against_model(
            eval_graphdef, (params, rest), loss, loss_fn, (x_val, y_val), "val", op
        )

    # -- set-up: shardings, optimizer state, the compiled steps
    batch_sharding = replicated = None
    if mesh is not None:
        batch_sharding = NamedSharding(mesh, P(mesh.axis_names[0]))
        replicated = NamedSharding(mesh, P())

    def place(tree, sharding=batch_sharding):
        return tree if sharding is None else jax.device_put(tree, sharding)

    state = place((params, rest, optimizer.init(params)), replicated)
    train_step = _train_step_fn(graphdef, optimizer, loss_fn, l1, l2, clip_norm)
    if val is not None:
        x_val, y_val = place((jnp.asarray(x_val), jnp.asarray(y_val)), replicated)

    # -- the epoch loop
    from tqdm.auto import tqdm

    history = History()
    stopper = early_stopping.reset() if early_stopping is not None else None
    best = _Best()
    bar = tqdm(range(epochs), desc="fit", unit="epoch", disable=not progress, file=sys.stderr)
    for epoch in bar:
        start = time.perf_counter()
        order = np.random.default_rng([seed, epoch]).permutation(n)
        state, train_loss, train_acc = _run_epoch(
            train_step, state, x_train, y_train, order, batch_size, place
        )
        history.train_loss.append(train_loss)
        history.train_accuracy.append(train_acc)
        postfix = {"loss": f"{train_loss:.4f}"}
        if val is not None:
            v_loss, v_right = _eval_step(eval_graphdef, loss_fn, *state[:2], x_val, y_val)
            v_loss = float(v_loss)
            history.val_loss.append(v_loss)
            history.val_accuracy.append(float(v_right) / len(y_val))
            postfix.update(val_loss=f"{v_loss:.4f}", val_acc=f"{history.val_accuracy[-1]:.3f}")
            if best.offer(epoch, v_loss, state[:2]) and checkpoint is not None:
                nnx.update(model, *best.state)
                save_checkpoint(model, checkpoint)
            if stopper is not None:
                stopper = stopper.update(v_loss)
                history.stopped_early = bool(stopper.should_stop)
        history.epoch_time.append(time.perf_counter() - start)
        bar.set_postfix(postfix)
        if history.stopped_early:
            break
    bar.close()

    # -- the result: the best (or last) weights, in eval mode
    history.best_epoch = best.epoch
    nnx.update(model, *(best.state if restore_best and best.state is not None else state[:2]))
    model.eval()
    return history


# --------------------------------------------------------------------------------------------
# `dlref train`
# --------------------------------------------------------------------------------------------

# model name -> (digits layout, default epochs, learning rate)
_MODELS = {"mlp": ("flat", 40, 3e-3), "cnn": ("image", 15, 3e-3), "lstm": ("sequence", 40, 5e-3)}


def _build(name: str, seed: int) -> nnx.Module:
    from dlref.nn import CNN, LSTM, MLP

    rngs = nnx.Rngs(params=seed, dropout=seed + 1)
    if name == "mlp":
        return MLP(64, [128, 64], 10, batch_norm=True, dropout=0.1, rngs=rngs)
    if name == "cnn":
        return CNN(1, 10, rngs=rngs)
    return LSTM(8, 64, out_features=10, rngs=rngs)


def _arg(convert: Callable[[str], Any], ok: Callable[[Any], bool], rule: str) -> Callable:
    """An argparse ``type=``: ``convert(text)``, refused (exit status 2) unless ``ok`` holds."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text!r}")
        return value

    return parse


def cli_main(argv: list[str]) -> int:
    """``dlref train MODEL``: train a built-in model on digits and print its test accuracy.

    .. math:: \\text{accuracy} = \\frac{1}{N_{test}}\\sum_i [\\arg\\max f(x_i) = y_i]

    Args:
      argv: the arguments after ``train``: ``MODEL`` (``mlp``, ``cnn`` or ``lstm``) and
        options ``--epochs``, ``--batch-size``, ``--lr``, ``--seed``, ``--checkpoint``,
        ``--no-progress``.

    Returns:
      The exit status: 0 on success, 2 for bad arguments (an unknown model, ``--epochs`` or
      ``--batch-size`` below 1, a ``--lr`` that is not a finite positive number, a negative
      ``--seed``), with argparse's usage message on stderr.

    Raises:
      TypeError: ``argv`` is not a list of strings.

    Example:
      >>> cli_main(["resnet"])  # doctest: +SKIP
      dlref train: unknown model 'resnet'; choose one of mlp, cnn, lstm
      2
    """
    if not isinstance(argv, list | tuple) or not all(isinstance(a, str) for a in argv):
        raise TypeError(f"cli_main: argv must be a list of strings, got {argv!r:.80}")
    parser = argparse.ArgumentParser(
        prog="dlref train", description="Train a built-in model on scikit-learn's digits."
    )
    parser.add_argument("model", help="one of: " + ", ".join(_MODELS))
    parser.add_argument(
        "--epochs",
        type=_arg(int, lambda v: v >= 1, "an int >= 1"),
        default=None,
        help="default: per model",
    )
    parser.add_argument("--batch-size", type=_arg(int, lambda v: v >= 1, "an int >= 1"), default=64)
    parser.add_argument(
        "--lr",
        type=_arg(float, lambda v: 0 < v < math.inf, "a finite number > 0"),
        default=None,
        help="Adam learning rate (default: per model)",
    )
    parser.add_argument("--seed", type=_arg(int, lambda v: v >= 0, "an int >= 0"), default=0)
    parser.add_argument("--checkpoint", default=None, help="save the best model to this .npz")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse exits on --help and on errors
        return int(e.code or 0)
    if args.model not in _MODELS:
        print(
            f"dlref train: unknown model {args.model!r}; choose one of {', '.join(_MODELS)}",
            file=sys.stderr,
        )
        return 2
    layout, epochs, lr = _MODELS[args.model]
    epochs = epochs if args.epochs is None else args.epochs
    lr = lr if args.lr is None else args.lr
    data = load_digits(seed=args.seed, layout=layout)
    model = _build(args.model, args.seed)
    start = time.perf_counter()
    try:
        history = fit(
            model,
            optax.adam(lr),
            data.train,
            val=data.val,
            epochs=epochs,
            batch_size=args.batch_size,
            checkpoint=args.checkpoint,
            seed=args.seed,
            progress=not args.no_progress,
        )
    except ValueError as e:
        print(f"dlref train: {e}", file=sys.stderr)
        return 2
    wall = time.perf_counter() - start
    test = evaluate(model, data.test)
    print(
        f"{args.model}: test accuracy {test['accuracy']:.4f} (test loss {test['loss']:.4f}; "
        f"best epoch {history.best_epoch} of {len(history.train_loss)}; {wall:.1f} s)"
    )
    return 0
