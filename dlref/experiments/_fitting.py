"""Under- and over-fitting, and what each regulariser does to the train/test gap."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dlref._checks import check_in_range, check_int, check_nonnegative
from dlref.activations import relu
from dlref.augment import Transform, expand_dataset
from dlref.experiments._common import check_counts, check_positive, check_sequence, digits, init_mlp
from dlref.losses import softmax_cross_entropy
from dlref.regularize import EarlyStopping, dropout, l2_penalty

REGIMES = ("underfit", "overfit", "l2", "dropout", "augmentation", "early_stopping")

# Shifts of up to ±1 pixel and ±10° rotations of the 8×8 digits: label-preserving.
AUGMENTATION_POLICY = (
    Transform("translate", p=0.5, args=(1 / 8,)),
    Transform("rotate", p=0.5, args=(math.radians(10),)),
)


def _check_transform(t, what: str, op: str) -> None:
    if not isinstance(t, Transform):
        raise TypeError(f"{op}: {what} must be a dlref.augment.Transform, got {t!r}")


def _forward(params, x, key, rate):
    """ReLU MLP with inverted dropout (``rate``, traced; 0 is the identity) after each hidden
    layer."""
    keys = jax.random.split(key, len(params))
    for (w, b), k in zip(params[:-1], keys, strict=False):
        x = dropout(k, relu(x @ w + b), rate)
    w, b = params[-1]
    return x @ w + b


def fitting_regimes(
    *,
    n_train: int = 128,
    steps: int = 160,
    eval_every: int = 4,
    patience: int = 5,
    l2: float = 1e-2,
    dropout_rate: float = 0.5,
    augment_factor: int = 8,
    label_noise: float = 0.25,
    learning_rate: float = 3e-3,
    batch_size: int = 32,
    policy: tuple = AUGMENTATION_POLICY,
    seed: int = 0,
) -> dict[str, dict]:
    """Under-fitting, over-fitting, and over-fitting reduced by L2, dropout, augmentation or
    early stopping.

    .. math:: \\text{gap} = L_{test} - L_{train}\\quad\\text{(cross-entropy, eval mode, after
              training)}

    Trained with Adam (batch ``batch_size``, ``steps`` steps) on only ``n_train`` digits, a
    fraction ``label_noise`` of them with a wrong label (uniform over the 9 others) — the
    guide's third cause of over-fitting, "数据不纯，包含大量的噪声，模型过度拟合噪声数据" — so
    that a wide network has something to memorise that does not generalise. The train loss is
    measured on those ``n_train`` digits (labels as given), the test loss on the test split
    (270 digits, true labels, never used in training):

    * ``"underfit"``: a 2-unit hidden layer (too little capacity: both losses stay high);
    * ``"overfit"``: two 256-unit ReLU layers, no regularisation (train loss → 0, a large gap);
    * ``"l2"``: the same with ``l2 · ½‖θ‖²`` added (:func:`dlref.regularize.l2_penalty`);
    * ``"dropout"``: the same with dropout ``dropout_rate`` after each hidden layer
      (:func:`dlref.regularize.dropout`);
    * ``"augmentation"``: the same trained on the digits plus ``augment_factor − 1`` randomly
      shifted and rotated copies (:func:`dlref.augment.expand_dataset`);
    * ``"early_stopping"``: the over-fitting run, watched by
      :class:`dlref.regularize.EarlyStopping` on the validation loss (evaluated every
      ``eval_every`` steps, patience ``patience``) and restored to its best evaluation —
      exactly what stopping the run there would give.

    Every run starts from the same weights and takes the same number of steps (one epoch is
    ``n_train / batch_size`` steps, ``augment_factor`` times more for the augmented set); the
    four wide runs are one compiled, vmapped program. The guide (解决过拟合现象的方法) lists data
    augmentation, regularisation, early stopping and dropout against over-fitting, and more
    capacity against under-fitting. With clean labels the same remedies shrink the gap too, but
    by a seed-dependent 10–40 % at this size; the label noise makes the effect large enough to
    assert.

    Args:
      n_train: training examples used.
      steps: Adam steps per run.
      eval_every: steps between evaluations (the curves, and early stopping).
      patience: early-stopping patience, in evaluations.
      l2: the L2 weight.
      dropout_rate: the dropout rate.
      augment_factor: copies of the training set (the original and ``augment_factor − 1``
        augmented ones).
      label_noise: the fraction of training labels replaced by a wrong one.
      learning_rate: Adam's step size.
      batch_size: examples per step.
      policy: the augmentation policy (a tuple of :class:`dlref.augment.Transform`).
      seed: seeds everything.

    Returns:
      ``{"train_curve", "val_curve": {regime: (steps / eval_every,)}, "train_loss",
      "test_loss", "gap", "train_accuracy", "test_accuracy": {regime: float},
      "best_eval": int, "stopped_early": bool}`` (the early-stopping run has the over-fitting
      run's curves up to its stop).

    Raises:
      TypeError: an argument of the wrong type (a policy entry that is not a
        :class:`dlref.augment.Transform`).
      ValueError: ``n_train`` outside ``[1, N]``, ``steps``, ``patience``,
        ``augment_factor`` or ``batch_size`` below 1, ``eval_every`` outside ``[1, steps]``,
        a negative or non-finite ``l2``, a ``dropout_rate`` outside ``[0, 1)``, a
        ``label_noise`` outside ``[0, 1]``, a non-positive ``learning_rate``, a negative
        ``seed``.

    Example:
      >>> r = fitting_regimes(steps=8, augment_factor=2)
      >>> sorted(r["gap"]) == sorted(REGIMES)
      True
    """
    op = "fitting_regimes"
    check_counts(
        op,
        n_train=n_train,
        steps=steps,
        eval_every=eval_every,
        patience=patience,
        augment_factor=augment_factor,
        batch_size=batch_size,
    )
    if eval_every > steps:
        raise ValueError(f"{op}: eval_every must lie in [1, steps={steps}], got {eval_every}")
    check_nonnegative(l2, "l2", op)
    check_in_range(dropout_rate, 0.0, 1.0, "dropout_rate", op, hi_closed=False)
    check_in_range(label_noise, 0.0, 1.0, "label_noise", op)
    check_positive(learning_rate, "learning_rate", op)
    check_sequence(
        policy, "policy", op, lambda v, what: _check_transform(v, what, op), min_length=0
    )
    check_int(seed, "seed", op, minimum=0)
    data = digits(seed)
    if n_train > len(data.train[1]):
        raise ValueError(
            f"{op}: n_train must lie in [1, {len(data.train[1])}] (the training set size), "
            f"got {n_train}"
        )
    rng = np.random.default_rng(seed)
    x, y = data.train[0][:n_train], data.train[1][:n_train].copy()
    noisy = rng.random(n_train) < label_noise
    y[noisy] = (y[noisy] + rng.integers(1, 10, noisy.sum())) % 10  # a wrong label
    # copy 0 is the original digits: rows 0 .. n_train - 1 serve the non-augmented runs
    x_aug, y_aug = expand_dataset(
        jax.random.key(seed),
        x.reshape(-1, 8, 8, 1),
        y,
        augment_factor,
        policy,
        keep_original=True,
    )
    xs, ys = jnp.asarray(x_aug).reshape(len(y_aug), -1), jnp.asarray(y_aug)
    xj, yj = jnp.asarray(x), jnp.asarray(y)
    (xv, yv), (xt, yt) = (tuple(map(jnp.asarray, s)) for s in (data.val, data.test))

    def batches(n):  # a new permutation of the n examples every epoch, as dlref.train.fit
        order = [rng.permutation(n) for _ in range(-(-steps * batch_size // n))]
        return np.concatenate(order)[: steps * batch_size].reshape(steps, batch_size)

    opt = optax.adam(learning_rate)
    evals = steps // eval_every

    def run(p, idx, key, rate, l2w):
        def loss(p, k, ib):
            data_loss = softmax_cross_entropy(_forward(p, xs[ib], k, rate), ys[ib])
            return data_loss + l2w * l2_penalty(p)

        def step(carry, inp):
            p, s = carry
            ib, k = inp
            u, s = opt.update(jax.grad(loss)(p, k, ib), s)
            return (optax.apply_updates(p, u), s), None

        def evaluation(carry, inp):
            carry, _ = jax.lax.scan(step, carry, inp)
            p = carry[0]
            no_drop = jax.random.key(0)
            train = softmax_cross_entropy(_forward(p, xj, no_drop, 0.0), yj)
            val = softmax_cross_entropy(_forward(p, xv, no_drop, 0.0), yv)
            return carry, (train, val, p)

        keys = jax.random.split(key, steps).reshape(evals, eval_every)
        inputs = (idx[: evals * eval_every].reshape(evals, eval_every, batch_size), keys)
        _, (train, val, snapshots) = jax.lax.scan(evaluation, (p, opt.init(p)), inputs)
        return train, val, snapshots

    def metrics(p, features, labels):
        logits = _forward(p, features, jax.random.key(0), 0.0)
        loss = float(softmax_cross_entropy(logits, labels))
        return loss, float(jnp.mean(jnp.argmax(logits, -1) == labels))

    key = jax.random.key(seed)
    wide = init_mlp(key, [x.shape[1], 256, 256, 10], "he")
    narrow = init_mlp(key, [x.shape[1], 2, 10], "he")
    # the four wide runs: overfit, l2, dropout, augmentation (vmapped, one compilation)
    names = ("overfit", "l2", "dropout", "augmentation")
    idx = np.stack([batches(n_train)] * 3 + [batches(len(y_aug))])
    rate = jnp.asarray([0.0, 0.0, dropout_rate, 0.0])
    l2w = jnp.asarray([0.0, l2, 0.0, 0.0])
    run_keys = jax.random.split(jax.random.fold_in(key, 1), 4)
    train_c, val_c, snaps = jax.jit(jax.vmap(run, in_axes=(None, 0, 0, 0, 0)))(
        wide, jnp.asarray(idx), run_keys, rate, l2w
    )
    under = jax.jit(run)(narrow, jnp.asarray(batches(n_train)), run_keys[0], 0.0, 0.0)

    out = {k: {} for k in ("train_curve", "val_curve")}
    final = {}
    for i, name in enumerate(names):
        out["train_curve"][name] = np.asarray(train_c[i])
        out["val_curve"][name] = np.asarray(val_c[i])
        final[name] = jax.tree.map(lambda a, i=i: a[i, -1], snaps)
    out["train_curve"]["underfit"] = np.asarray(under[0])
    out["val_curve"]["underfit"] = np.asarray(under[1])
    final["underfit"] = jax.tree.map(lambda a: a[-1], under[2])

    # early stopping on the over-fitting run's validation curve, best evaluation restored
    stopper, best, stop = EarlyStopping(patience=patience), 0, evals - 1
    val = out["val_curve"]["overfit"]
    for e, v in enumerate(val):
        stopper = stopper.update(float(v))
        best = e if v < val[best] else best
        if stopper.should_stop:
            stop = e
            break
    out["train_curve"]["early_stopping"] = out["train_curve"]["overfit"][: stop + 1]
    out["val_curve"]["early_stopping"] = val[: stop + 1]
    final["early_stopping"] = jax.tree.map(lambda a: a[0, best], snaps)
    out["best_eval"], out["stopped_early"] = best, bool(stop < evals - 1)

    for k in ("train_loss", "test_loss", "gap", "train_accuracy", "test_accuracy"):
        out[k] = {}
    for name in REGIMES:
        (tr, tra), (te, tea) = metrics(final[name], xj, yj), metrics(final[name], xt, yt)
        out["train_loss"][name], out["test_loss"][name] = tr, te
        out["train_accuracy"][name], out["test_accuracy"][name] = tra, tea
        out["gap"][name] = te - tr
    return out
