"""DNN, CNN and RNN: weight sharing in space and in time, counted."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from dlref._checks import check_int
from dlref.experiments._common import check_counts, check_ints
from dlref.model_summary import summary
from dlref.nn import RNN, Conv, rnn_cell, scan_rnn


def _count(fn, params, x) -> int:
    return summary(fn, params, x, data_argnum=1, print_fn=None).totals.params


def parameter_sharing(
    *,
    image_size: int = 8,
    in_channels: int = 1,
    features: int = 32,
    kernel: int = 3,
    input_size: int = 8,
    hidden: int = 32,
    lengths: Sequence[int] = (1, 8, 64),
    seed: int = 0,
) -> dict[str, int | dict[int, int]]:
    """Parameters of a dense layer, a convolution and an RNN that compute maps of the same shape.

    .. math:: P_{dense} = (HWC)(HWO) + HWO,\\quad P_{conv} = K^2 C O + O,\\quad
              P_{RNN}(T) = IH + H^2 + H \\ \\ (\\text{any } T),\\quad
              P_{untied}(T) = T\\,(IH + H^2 + H)

    Counted by :func:`dlref.summary` (the parameter arrays the traced computation reads) for
    a dense layer (``nnx.Linear``) and a ``K×K`` convolution (:class:`dlref.nn.Conv`, SAME
    padding) that both map an ``H×W×C`` image to an ``H×W×O`` feature map, and for
    :func:`dlref.nn.scan_rnn` of :func:`dlref.nn.rnn_cell` over ``T`` steps. The guide
    (DNN、CNN、RNN和LSTM的区别): the dense layer connects every input to every output; the
    convolution connects locally and shares its weights across positions; the RNN shares its
    weights across time steps, so its size does not depend on ``T`` (``untied`` is what
    separate weights per step would cost).

    Args:
      image_size: ``H = W``.
      in_channels: ``C``.
      features: output channels ``O``.
      kernel: ``K``.
      input_size: RNN input features ``I``.
      hidden: RNN hidden size ``H``.
      lengths: the sequence lengths ``T``.
      seed: seeds the initialisations.

    Returns:
      ``{"dense", "conv": int, "rnn": {T: int}, "untied": {T: int}}``.

    Raises:
      TypeError: an argument (or an entry of ``lengths``) that is not an int.
      ValueError: a size below 1, no length, a negative ``seed``.

    Example:
      >>> r = parameter_sharing()
      >>> r["conv"], r["rnn"][1] == r["rnn"][64]
      (320, True)
    """
    op = "parameter_sharing"
    check_counts(
        op,
        image_size=image_size,
        in_channels=in_channels,
        features=features,
        kernel=kernel,
        input_size=input_size,
        hidden=hidden,
    )
    check_ints(lengths, "lengths", op)
    check_int(seed, "seed", op, minimum=0)
    rngs = nnx.Rngs(seed)
    hw = image_size * image_size
    x = jnp.zeros((1, image_size, image_size, in_channels))
    dense = nnx.Linear(hw * in_channels, hw * features, rngs=rngs)
    gd, p_dense = nnx.split(dense)

    def dense_fn(p, x):
        return nnx.merge(gd, p)(x.reshape(x.shape[0], -1)).reshape(*x.shape[:3], features)

    conv_layer = Conv(in_channels, features, kernel, rngs=rngs)
    gc, p_conv = nnx.split(conv_layer)

    def conv_fn(p, x):
        return nnx.merge(gc, p)(x)

    rnn_params = RNN(input_size, hidden, rngs=rngs).params

    def rnn_fn(p, xs):
        return scan_rnn(rnn_cell, p, jnp.zeros((xs.shape[0], hidden)), xs)[1]

    rnn = {}
    for t in lengths:
        rnn[int(t)] = _count(rnn_fn, rnn_params, jnp.zeros((1, int(t), input_size)))
    per_step = sum(int(v.size) for v in jax.tree.leaves(rnn_params))
    return {
        "dense": _count(dense_fn, p_dense, x),
        "conv": _count(conv_fn, p_conv, x),
        "rnn": rnn,
        "untied": {int(t): int(t) * per_step for t in lengths},
    }
