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
import pathlib
import sys
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from dlref._checks import check_choice, check_in_range
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
      ValueError: for an unknown layout or fractions outside (0, 1) summing to 1 or more.

    Example:
      >>> s = load_digits(layout="flat")
      >>> s.train[0].shape, s.val[0].shape, s.test[0].shape
      ((1257, 64), (270, 64), (270, 64))

    References:
      Alpaydin & Kaynak, "Optical recognition of handwritten digits", UCI repository, 1998.
    """
    from sklearn.datasets import load_digits as _sk_digits
    from sklearn.model_selection import train_test_split

    check_choice(layout, _LAYOUTS, "layout", "load_digits")
    check_in_range(val_fraction, 0, 1, "val_fraction", "load_digits", lo_closed=False)
    check_in_range(test_fraction, 0, 1, "test_fraction", "load_digits", lo_closed=False)
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

    Example:
      >>> x, y = adding_problem(jax.random.key(0), 4, 10)
      >>> x.shape, y.shape, float(x[0, :, 1].sum())
      ((4, 10, 2), (4,), 2.0)

    References:
      Hochreiter & Schmidhuber, "Long short-term memory", Neural Computation 9, 1997 (exp. 4).
    """
    if n < 1 or length < 2:
        raise ValueError(f"adding_problem: need n >= 1 and length >= 2, got n={n}, length={length}")
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

    Example:
      >>> import tempfile; from dlref.nn import MLP
      >>> m = MLP(4, [3], 2, rngs=nnx.Rngs(0))
      >>> p = save_checkpoint(m, tempfile.mkdtemp() + "/m.npz"); p.name
      'm.npz'
    """
    path = pathlib.Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    named, _, _ = _flat_state(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{k: np.asarray(v) for k, v in named.items()})
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
      ValueError: if the file's entries or shapes do not match the model's.

    Example:
      >>> import tempfile; from dlref.nn import MLP
      >>> p = save_checkpoint(MLP(4, [3], 2, rngs=nnx.Rngs(0)), tempfile.mkdtemp() + "/m")
      >>> m = load_checkpoint(MLP(4, [3], 2, rngs=nnx.Rngs(1)), p)
      >>> float(m.head.bias[0])
      0.0
    """
    named, treedef, _ = _flat_state(model)
    with np.load(pathlib.Path(path)) as f:
        stored = {k: f[k] for k in f.files}
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


_LOSSES: dict[str, Callable] = {
    "cross_entropy": softmax_cross_entropy,
    "mse": lambda pred, y: l2_loss(jnp.reshape(pred, jnp.shape(y)), y),
}


def _loss_fn(loss: str | Callable, op: str) -> Callable:
    if callable(loss):
        return loss
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
      devices: the devices (default: ``jax.devices()``).

    Returns:
      A ``jax.sharding.Mesh`` of shape ``(D,)``.

    Example:
      >>> data_parallel_mesh().axis_names
      ('data',)
    """
    devices = jax.devices() if devices is None else list(devices)
    return Mesh(np.asarray(devices), ("data",))


def _eval_fn(graphdef: Any, loss_fn: Callable) -> Callable:
    @jax.jit
    def step(params, rest, x, y):
        out = nnx.merge(graphdef, params, rest)(x)
        return loss_fn(out, y), _correct(out, y)

    return step


def evaluate(
    model: nnx.Module, data: Data, *, loss: str | Callable = "cross_entropy"
) -> dict[str, float]:
    """Loss and accuracy of ``model`` on ``data`` in eval mode (the model is left in eval mode).

    .. math:: \\text{loss} = \\frac{1}{N}\\sum_i \\ell(f(x_i), y_i),\\quad
              \\text{accuracy} = \\frac{1}{N}\\sum_i [\\arg\\max f(x_i) = y_i]

    Args:
      model: an NNX module mapping a batch ``x`` to outputs.
      data: ``(x, y)``; the whole set is evaluated in one call.
      loss: ``"cross_entropy"`` (:func:`dlref.losses.softmax_cross_entropy`), ``"mse"``
        (:func:`dlref.losses.l2_loss`) or a callable ``(outputs, y) -> scalar``.

    Returns:
      ``{"loss": float, "accuracy": float}`` (accuracy ``nan`` unless ``y`` is integer labels).

    Raises:
      ValueError: for an unknown loss name.

    Example:
      >>> from dlref.nn import MLP
      >>> m = MLP(2, [4], 2, rngs=nnx.Rngs(0))
      >>> sorted(evaluate(m, (np.zeros((3, 2), np.float32), np.zeros(3, np.int32))))
      ['accuracy', 'loss']
    """
    loss_fn = _loss_fn(loss, "evaluate")
    model.eval()
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    x, y = data
    value, correct = _eval_fn(graphdef, loss_fn)(params, rest, jnp.asarray(x), jnp.asarray(y))
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
      epochs: maximum number of epochs.
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
      seed: seeds the shuffling.
      progress: show a tqdm progress bar (on stderr).

    Returns:
      The :class:`History` of per-epoch metrics.

    Raises:
      ValueError: for an unknown loss, ``epochs < 1``, a ``batch_size`` below 1 or above the
        training set size, a ``batch_size`` not divisible by the number of devices of ``mesh``,
        negative penalties or ``clip_norm``, or ``early_stopping``/``checkpoint`` without
        ``val``.

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
    loss_fn = _loss_fn(loss, op)
    if epochs < 1:
        raise ValueError(f"fit: epochs must be >= 1, got {epochs}")
    x_train, y_train = np.asarray(train[0]), np.asarray(train[1])
    n = len(x_train)
    if batch_size < 1 or batch_size > n:
        raise ValueError(
            f"fit: batch_size must lie in [1, {n}] (the training set size), got {batch_size}"
        )
    if l1 < 0 or l2 < 0:
        raise ValueError(f"fit: penalties must be non-negative, got l1={l1}, l2={l2}")
    if clip_norm is not None and clip_norm <= 0:
        raise ValueError(f"fit: clip_norm must be positive or None, got {clip_norm}")
    if val is None and (early_stopping is not None or checkpoint is not None):
        raise ValueError("fit: early_stopping and checkpoint need validation data (val=...)")
    if mesh is not None:
        n_dev = mesh.devices.size
        if batch_size % n_dev:
            raise ValueError(
                f"fit: batch_size={batch_size} must be divisible by the number of devices "
                f"in the mesh ({n_dev}) for data-parallel training"
            )
        batch_sharding = NamedSharding(mesh, P(mesh.axis_names[0]))
        replicated = NamedSharding(mesh, P())
    else:
        batch_sharding = replicated = None

    def place(tree, sharding):
        return tree if sharding is None else jax.device_put(tree, sharding)

    model.eval()
    eval_graphdef = nnx.graphdef(model)
    model.train()
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    opt_state = optimizer.init(params)
    params, rest, opt_state = place((params, rest, opt_state), replicated)

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
    def train_step(params, rest, opt_state, x, y):
        m = nnx.merge(graphdef, params, rest)
        grads, (data_loss, correct) = nnx.grad(objective, has_aux=True)(m, x, y)
        if clip_norm is not None:
            grads, _ = clip_by_global_norm(grads, clip_norm)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        rest = nnx.state(m, nnx.Not(nnx.Param))
        return optax.apply_updates(params, updates), rest, opt_state, data_loss, correct

    evaluate_step = _eval_fn(eval_graphdef, loss_fn)
    if val is not None:
        x_val, y_val = place((jnp.asarray(val[0]), jnp.asarray(val[1])), replicated)

    from tqdm.auto import tqdm

    history = History()
    stopper = early_stopping.reset() if early_stopping is not None else None
    best_loss, best_state = np.inf, None
    steps = n // batch_size
    bar = tqdm(range(epochs), desc="fit", unit="epoch", disable=not progress, file=sys.stderr)
    for epoch in bar:
        start = time.perf_counter()
        order = np.random.default_rng([seed, epoch]).permutation(n)
        losses, correct = [], []
        for s in range(steps):
            idx = order[s * batch_size : (s + 1) * batch_size]
            xb, yb = place((x_train[idx], y_train[idx]), batch_sharding)
            params, rest, opt_state, value, right = train_step(params, rest, opt_state, xb, yb)
            losses.append(value)
            correct.append(right)
        history.train_loss.append(float(np.mean(jax.device_get(losses))))
        history.train_accuracy.append(float(np.sum(jax.device_get(correct))) / (steps * batch_size))
        postfix = {"loss": f"{history.train_loss[-1]:.4f}"}
        stop = False
        if val is not None:
            v_loss, v_right = evaluate_step(params, rest, x_val, y_val)
            v_loss = float(v_loss)
            history.val_loss.append(v_loss)
            history.val_accuracy.append(float(v_right) / len(y_val))
            postfix.update(val_loss=f"{v_loss:.4f}", val_acc=f"{history.val_accuracy[-1]:.3f}")
            if v_loss < best_loss:
                best_loss, history.best_epoch = v_loss, epoch
                best_state = jax.device_get((params, rest))
                if checkpoint is not None:
                    nnx.update(model, *best_state)
                    save_checkpoint(model, checkpoint)
            if stopper is not None:
                stopper = stopper.update(v_loss)
                stop = bool(stopper.should_stop)
        history.epoch_time.append(time.perf_counter() - start)
        bar.set_postfix(postfix)
        if stop:
            history.stopped_early = True
            break
    bar.close()
    if restore_best and best_state is not None:
        params, rest = best_state
    nnx.update(model, params, rest)
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


def cli_main(argv: list[str]) -> int:
    """``dlref train MODEL``: train a built-in model on digits and print its test accuracy.

    .. math:: \\text{accuracy} = \\frac{1}{N_{test}}\\sum_i [\\arg\\max f(x_i) = y_i]

    Args:
      argv: the arguments after ``train``: ``MODEL`` (``mlp``, ``cnn`` or ``lstm``) and
        options ``--epochs``, ``--batch-size``, ``--lr``, ``--seed``, ``--checkpoint``,
        ``--no-progress``.

    Returns:
      The exit status: 0 on success, 2 for bad arguments (an unknown model included).

    Example:
      >>> cli_main(["resnet"])  # doctest: +SKIP
      dlref train: unknown model 'resnet'; choose one of mlp, cnn, lstm
      2
    """
    parser = argparse.ArgumentParser(
        prog="dlref train", description="Train a built-in model on scikit-learn's digits."
    )
    parser.add_argument("model", help="one of: " + ", ".join(_MODELS))
    parser.add_argument("--epochs", type=int, default=None, help="default: per model")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=None, help="Adam learning rate")
    parser.add_argument("--seed", type=int, default=0)
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
    epochs = args.epochs or epochs
    lr = args.lr or lr
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
