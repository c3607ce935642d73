"""`dlref verify` rows for the recurrent cells: dlref vs flax NNX cells with copied weights.

The flax cells keep one ``Linear`` per gate and input (``LSTMCell``: ``ii, if_, ig, io`` on
``x`` without bias and ``hi, hf, hg, ho`` on ``h`` with bias; ``SimpleCell``: ``dense_i``
with bias and ``dense_h`` without). :func:`flax_lstm_cell` and :func:`flax_rnn_cell` copy a
dlref parameter dict into fresh flax cells (gate block ``k`` of ``w_ih``/``w_hh``/``b`` goes to
the ``k``-th Linear) and run them, so they take the same arguments as the dlref cells and are
differentiable with respect to every argument.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from dlref.nn import lstm_cell, rnn_cell
from dlref.verify import Case

_GATES = (("ii", "hi"), ("if_", "hf"), ("ig", "hg"), ("io", "ho"))


def flax_lstm_cell(params: dict, carry: tuple, x: jax.Array) -> tuple:
    """flax ``nnx.LSTMCell`` with dlref's parameters; carry ``(h, c)`` in and out."""
    n_in, hidden = params["w_ih"].shape[0], params["w_hh"].shape[0]
    dtype = params["w_ih"].dtype
    cell = nnx.LSTMCell(n_in, hidden, param_dtype=dtype, dtype=dtype, rngs=nnx.Rngs(0))
    for k, (wi, wh) in enumerate(_GATES):
        block = slice(k * hidden, (k + 1) * hidden)
        getattr(cell, wi).kernel[...] = params["w_ih"][:, block]
        getattr(cell, wh).kernel[...] = params["w_hh"][:, block]
        getattr(cell, wh).bias[...] = params["b"][block]
    h, c = carry
    (c_new, h_new), _ = cell((c, h), x)
    return h_new, c_new


def flax_rnn_cell(params: dict, h: jax.Array, x: jax.Array) -> jax.Array:
    """flax ``nnx.SimpleCell`` with dlref's parameters."""
    n_in, hidden = params["w_ih"].shape[0], params["w_hh"].shape[0]
    dtype = params["w_ih"].dtype
    cell = nnx.SimpleCell(n_in, hidden, param_dtype=dtype, dtype=dtype, rngs=nnx.Rngs(0))
    cell.dense_i.kernel[...] = params["w_ih"]
    cell.dense_i.bias[...] = params["b"]
    cell.dense_h.kernel[...] = params["w_hh"]
    new, _ = cell(h, x)
    return new


def random_params(key: jax.Array, n_in: int, hidden: int, gates: int, dtype=jnp.float64) -> dict:
    """Random cell parameters of scale ~1/sqrt(fan_in) (non-zero biases)."""
    k1, k2, k3 = jax.random.split(key, 3)
    g = gates * hidden
    return {
        "w_ih": jax.random.normal(k1, (n_in, g), dtype) / jnp.sqrt(n_in),
        "w_hh": jax.random.normal(k2, (hidden, g), dtype) / jnp.sqrt(hidden),
        "b": 0.5 * jax.random.normal(k3, (g,), dtype),
    }


def _lstm_args(key):
    kp, kx, kh, kc = jax.random.split(key, 4)
    params = random_params(kp, 3, 5, 4)
    return (
        jax.random.normal(kx, (4, 3), jnp.float64),
        jax.random.normal(kh, (4, 5), jnp.float64),
        jax.random.normal(kc, (4, 5), jnp.float64),
        params,
    )


def _rnn_args(key):
    kp, kx, kh = jax.random.split(key, 3)
    params = random_params(kp, 3, 5, 1)
    return (
        jax.random.normal(kx, (4, 3), jnp.float64),
        jax.random.normal(kh, (4, 5), jnp.float64),
        params,
    )


CASES: list[Case] = [
    Case(
        "nn.lstm_cell",
        "flax.nnx.LSTMCell",
        lambda x, h, c, p: lstm_cell(p, (h, c), x),
        lambda x, h, c, p: flax_lstm_cell(p, (h, c), x),
        _lstm_args,
        argnums=(0, 1, 2, 3),
        rtol=1e-12,
    ),
    Case(
        "nn.rnn_cell",
        "flax.nnx.SimpleCell",
        lambda x, h, p: rnn_cell(p, h, x),
        lambda x, h, p: flax_rnn_cell(p, h, x),
        _rnn_args,
        argnums=(0, 1, 2),
        rtol=1e-12,
    ),
]
