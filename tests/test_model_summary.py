"""dlref.summary: the per-layer table read from a jaxpr, against XLA's cost analysis and the
closed formulas of dlref.shapes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest
from jax import lax

from dlref.model_summary import summary
from dlref.shapes import conv_flops
from tests._helpers import padding_taps, xla_cost

DN2 = ("NHWC", "HWIO", "NHWC")


def test_summary_flops_vs_xla_for_a_branching_cnn():
    def net(x, w1, b1, w2, w3):
        y = jax.nn.relu(
            lax.conv_general_dilated(x, w1, (2, 2), [(1, 1), (1, 1)], dimension_numbers=DN2) + b1
        )
        z = lax.reduce_window(y, -jnp.inf, lax.max, (1, 3, 3, 1), (1, 1, 1, 1),
                              ((0, 0), (1, 1), (1, 1), (0, 0)))  # fmt: skip
        a = lax.conv_general_dilated(z, w2, (1, 1), [(2, 2), (2, 2)], rhs_dilation=(2, 2),
                                     dimension_numbers=DN2)  # fmt: skip
        b = lax.conv_general_dilated(z, w3, (1, 1), "VALID", dimension_numbers=DN2)
        return jnp.mean(jnp.tanh(a + b), axis=(1, 2))

    args = [jnp.zeros(s) for s in [(2, 16, 16, 3), (3, 3, 3, 8), (8,), (3, 3, 8, 8), (1, 1, 8, 8)]]
    s = summary(net, *args, convention="flops", print_fn=None)
    # padding taps of the two padded convs (NumPy oracle), times C_in·C_out·N, times 2
    t1, _ = padding_taps(16, 3, 2, 1, 1, 1)
    t2, _ = padding_taps(8, 3, 1, 2, 2, 2)
    pad1 = (8 * 3 * 8 * 3 - (8 * 3 - t1) ** 2) * 3 * 8 * 2
    pad2 = (8 * 3 * 8 * 3 - (8 * 3 - t2) ** 2) * 8 * 8 * 2
    assert s.totals.flops - 2 * (pad1 + pad2) == xla_cost(net, *args)
    assert s.totals.params == 3 * 3 * 3 * 8 + 8 + 3 * 3 * 8 * 8 + 8 * 8
    macs = summary(net, *args, print_fn=None).totals.flops
    assert macs == (2 * 8 * 8 * 8) * (27 + 72 + 8)  # N·H'W'·O · (C·K²) per conv


def test_summary_descends_into_jit_checkpoint_custom_vjp(capsys):
    @jax.custom_vjp
    def act(x):
        return jnp.maximum(x, 0.0)

    act.defvjp(lambda x: (act(x), x), lambda x, g: (g * (x > 0),))

    @jax.jit
    def conv(x, w):
        return lax.conv_general_dilated(x, w, (2, 2), "VALID", dimension_numbers=DN2)

    w1, w2 = jnp.ones((3, 3, 2, 4)), jnp.ones((2, 2, 4, 5))  # closed over: constants

    @jax.checkpoint
    def f(x):
        return act(conv(act(conv(x, w1)), w2))

    s = summary(f, jnp.ones((1, 15, 15, 2)))
    assert [r.op for r in s.rows] == ["conv 3×3/2 +relu", "conv 2×2/2 +relu"]
    assert s.totals.params == w1.size + w2.size
    assert s.totals.receptive_field == (5, 5) and s.totals.jump == (4, 4)
    assert [r.shape for r in s.rows] == [(1, 7, 7, 4), (1, 3, 3, 5)]
    assert "total: params 152" in capsys.readouterr().out


def test_summary_conventions_match_conv_flops():
    w = jnp.ones((3, 3, 4, 6))

    def f(x):
        return lax.conv_general_dilated(x, w, (2, 1), ((1, 1), (0, 2)), dimension_numbers=DN2)

    x = jax.ShapeDtypeStruct((2, 11, 7, 4), jnp.float32)
    kw = dict(stride=(2, 1), padding=((1, 1), (0, 2)), batch=2, bias=False)
    for conv in ("macs", "flops", "seed"):
        got = summary(f, x, convention=conv, print_fn=None).totals.flops
        assert got == conv_flops(4, 6, 3, (11, 7), convention=conv, **kw), conv


def test_summary_non_trainable_and_pytrees():
    def f(params, stats, x):
        y = lax.conv_general_dilated(x, params["w"], (1, 1), "SAME", dimension_numbers=DN2)
        return (y - stats["mean"]) * params["scale"]

    params = {"w": jnp.ones((3, 3, 2, 4)), "scale": jnp.ones(4)}
    stats = {"mean": jnp.zeros(4)}
    s = summary(f, params, stats, jnp.ones((1, 6, 6, 2)), data_argnum=2,
                non_trainable_argnums=(1,), print_fn=None)  # fmt: skip
    assert (s.totals.params, s.totals.non_trainable) == (72 + 4, 4)
    assert len(s.rows) == 1 and s.rows[0].op == "conv 3×3 +shift+scale"


def test_bad_input_summary():
    with pytest.raises(ValueError, match="fn has no array inputs; pass example arguments"):
        summary(lambda: jnp.ones(3))
    with pytest.raises(ValueError, match="fn has no array inputs: argument 0 must be an array"):
        summary(lambda s: s, "abc")
    with pytest.raises(ValueError, match="fn has no array inputs: argument 0"):
        summary(lambda t: t, ())
    with pytest.raises(ValueError, match="data_argnum=3 must index the 1 example arguments"):
        summary(jnp.sin, jnp.ones(3), data_argnum=3)
