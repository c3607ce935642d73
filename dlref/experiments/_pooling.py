"""Pooling: translation invariance, and pooling before a convolution to save computation."""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from dlref._checks import check_in_range, check_int
from dlref.activations import relu
from dlref.convolution import conv
from dlref.experiments._common import (
    check_counts,
    check_fits_train,
    check_sequence,
    digits,
    fit_quietly,
)
from dlref.nn import Conv
from dlref.pooling import avg_pool, max_pool
from dlref.shapes import conv_flops
from dlref.train import evaluate


def _shift(x: jax.Array, dr: int, dc: int) -> jax.Array:
    """Move the content of ``(N, H, W, C)`` images by ``(dr, dc)`` pixels, filling with 0."""
    n, h, w, c = x.shape
    p = jnp.pad(x, ((0, 0), (abs(dr), abs(dr)), (abs(dc), abs(dc)), (0, 0)))
    return p[:, abs(dr) - dr : abs(dr) - dr + h, abs(dc) - dc : abs(dc) - dc + w]


def _check_shift(shift, what: str, op: str) -> None:
    """Raise unless ``shift`` is a ``(rows, cols)`` pair of ints."""
    if not isinstance(shift, Sequence) or isinstance(shift, str | bytes):
        raise TypeError(f"{op}: {what} must be a (rows, cols) pair of ints, got {shift!r}")
    if len(shift) != 2:
        raise ValueError(f"{op}: {what} must be a (rows, cols) pair of ints, got {shift!r}")
    for v in shift:
        check_int(v, what, op)


def pooling_translation_invariance(
    *,
    window: int = 2,
    shifts: Sequence[tuple[int, int]] = ((0, 1), (1, 0)),
    channels: int = 8,
    n_images: int = 256,
    seed: int = 0,
) -> dict[str, float]:
    """How much a 1-pixel shift of the input changes max pooling, average pooling and a strided
    convolution of a feature map.

    .. math:: \\Delta(f) = \\operatorname{mean}_{\\text{shifts}}
              \\frac{\\lVert f(\\mathrm{shift}(x)) - f(x) \\rVert}{\\lVert f(x) \\rVert}

    ``x`` is a feature map: digits through a random 3×3 convolution (``channels`` filters)
    and a ReLU, as the first layer of a CNN would give. Each ``f`` downsamples it by
    ``window`` (stride = window): :func:`dlref.max_pool`, :func:`dlref.avg_pool`, and a
    ``window×window`` convolution with stride ``window`` and random weights
    (:func:`dlref.conv`). ``"identity"`` is ``Δ`` of the feature map itself. A random linear
    map changes ``x`` and its shift by about the same relative amount as the input changes
    (it does not know which differences are shifts), so the strided convolution is the
    baseline; ``unchanged_max`` is the fraction of max-pool outputs that are exactly equal
    after the shift (the maximum stayed in its window). The guide (池化层的作用): pooling keeps
    "a degree" of translation invariance, max pooling in particular. Pooling is not exactly
    invariant (Zhang, "Making convolutional networks shift-invariant again", ICML 2019).

    Args:
      window: pooling window and stride.
      shifts: the ``(rows, cols)`` shifts, averaged over.
      channels: filters of the random first layer.
      n_images: digits used.
      seed: seeds the filters and the split.

    Returns:
      ``{"identity", "max_pool", "avg_pool", "strided_conv", "unchanged_max"}``.

    Raises:
      TypeError: an argument of the wrong type (a shift that is not a pair of ints).
      ValueError: a ``window`` outside ``[1, 8]`` (the digits are 8×8), no shift, a shift
        that is not a pair, ``channels`` or ``n_images`` below 1, a negative ``seed``.

    Example:
      >>> r = pooling_translation_invariance(n_images=16)
      >>> r["max_pool"] < r["strided_conv"]
      True
    """
    op = "pooling_translation_invariance"
    check_int(window, "window", op, minimum=1)
    check_in_range(window, 1, 8, "window", op)
    check_sequence(shifts, "shifts", op, lambda v, what: _check_shift(v, what, op))
    check_counts(op, channels=channels, n_images=n_images)
    check_int(seed, "seed", op, minimum=0)
    images = jnp.asarray(digits(seed, "image").train[0][:n_images])
    k1, k2 = jax.random.split(jax.random.key(seed))
    w1 = jax.random.normal(k1, (3, 3, 1, channels)) / 3.0
    w2 = jax.random.normal(k2, (window, window, channels, channels)) / (
        window * math.sqrt(channels)
    )

    def features(x):
        return relu(conv(x, w1, padding=1, impl="xla"))

    maps = {
        "identity": lambda f: f,
        "max_pool": lambda f: max_pool(f, window),
        "avg_pool": lambda f: avg_pool(f, window),
        "strided_conv": lambda f: conv(f, w2, stride=window, impl="xla"),
    }

    @jax.jit
    def measure(images):
        base = features(images)
        change = {name: 0.0 for name in maps}
        unchanged = 0.0
        for dr, dc in shifts:
            moved = features(_shift(images, dr, dc))
            for name, f in maps.items():
                a, b = f(base), f(moved)
                change[name] += jnp.linalg.norm(b - a) / jnp.linalg.norm(a) / len(shifts)
            same = max_pool(moved, window) == max_pool(base, window)
            unchanged += jnp.mean(same) / len(shifts)
        return change, unchanged

    change, unchanged = measure(images)
    out = {name: float(v) for name, v in change.items()}
    out["unchanged_max"] = float(unchanged)
    return out


class _PoolConvNet(nnx.Module):
    """``conv 3×3 → relu → max_pool 2`` (conv first) or ``max_pool 2 → conv 3×3 → relu``
    (pool first), then a linear classifier on the 4×4 map."""

    def __init__(self, order: str, channels: int, *, rngs: nnx.Rngs):
        self.order = order
        self.conv = Conv(1, channels, 3, rngs=rngs)
        self.head = nnx.Linear(4 * 4 * channels, 10, rngs=rngs)

    def __call__(self, x):
        if self.order == "conv_first":
            x = max_pool(relu(self.conv(x)), 2)
        else:
            x = relu(self.conv(max_pool(x, 2)))
        return self.head(x.reshape(x.shape[0], -1))


def pool_before_conv(
    *, channels: int = 16, epochs: int = 15, batch_size: int = 64, seed: int = 0
) -> dict[str, dict[str, float] | float]:
    """Pooling before a convolution instead of after it: computation saved, accuracy lost.

    .. math:: \\frac{\\mathrm{MACs}(\\text{conv on } H×W)}{\\mathrm{MACs}(\\text{conv on }
              H/2 × W/2)} = 4

    Two networks on the 8×8 digits, identical but for the order: ``conv 3×3 → relu →
    max_pool 2`` against ``max_pool 2 → conv 3×3 → relu`` (same parameters: the convolution
    has ``channels`` filters, the classifier sees a 4×4 map in both). The convolution's
    multiply–accumulates come from :func:`dlref.shapes.conv_flops`: pooling first makes the
    convolution run on a quarter of the positions. Both are trained with Adam for ``epochs``
    and evaluated on the validation and test splits together. The guide (怎么减少卷积层参数量,
    item 4) lists pooling before the convolution as a way to save computation; the price is
    that the convolution sees a quarter of the detail.

    Args:
      channels: convolution filters.
      epochs: training epochs.
      batch_size: batch size.
      seed: seeds the init, the shuffling and the split.

    Returns:
      ``{"macs": {"conv_first", "pool_first"}, "accuracy": {"conv_first", "pool_first"},
      "macs_ratio", "n_eval"}``.

    Raises:
      TypeError: an argument that is not an int.
      ValueError: ``channels`` or ``epochs`` below 1, a ``batch_size`` outside ``[1, N]``,
        a negative ``seed``.

    Example:
      >>> r = pool_before_conv(epochs=1)
      >>> r["macs_ratio"]
      4.0
    """
    op = "pool_before_conv"
    check_counts(op, channels=channels, epochs=epochs, batch_size=batch_size)
    check_int(seed, "seed", op, minimum=0)
    data = digits(seed, "image")
    n = len(data.train[1])
    check_fits_train(batch_size, n, "batch_size", op)
    held = (
        np.concatenate([data.val[0], data.test[0]]),
        np.concatenate([data.val[1], data.test[1]]),
    )
    macs = {
        "conv_first": conv_flops(1, channels, 3, 8, padding=1),
        "pool_first": conv_flops(1, channels, 3, 4, padding=1),
    }
    accuracy = {}
    for order in ("conv_first", "pool_first"):
        model = _PoolConvNet(order, channels, rngs=nnx.Rngs(seed))
        fit_quietly(
            model,
            optax.adam(3e-3),
            data,
            epochs=epochs,
            batch_size=batch_size,
            seed=seed,
            validate=False,
        )
        accuracy[order] = evaluate(model, held)["accuracy"]
    return {
        "macs": macs,
        "accuracy": accuracy,
        "macs_ratio": macs["conv_first"] / macs["pool_first"],
        "n_eval": len(held[1]),
    }
