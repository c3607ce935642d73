"""dlref.summary: the per-layer table read from a jaxpr, against XLA's cost analysis and the
closed formulas of dlref.shapes."""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from jax import lax
from jax.extend import core as jex_core

import dlref
from dlref.model_summary import summary
from dlref.shapes import (
    CONVENTIONS,
    activation_flops,
    conv_flops,
    conv_output_size,
    pool_flops,
    receptive_field,
)
from dlref.testing.strategies import (
    PoolConfig,
    conv_configs,
    conv_transpose_configs,
    pool_configs,
)
from tests._helpers import padding_taps, xla_cost

DN2 = ("NHWC", "HWIO", "NHWC")


def test_summary_flops_vs_xla_for_a_branching_cnn():
    def net(x, w1, b1, w2, w3):
        y = jax.nn.relu(
            lax.conv_general_dilated(x, w1, (2, 2), [(1, 1), (1, 1)], dimension_numbers=DN2) + b1
        )
        z = lax.reduce_window(
            y, -jnp.inf, lax.max, (1, 3, 3, 1), (1, 1, 1, 1), ((0, 0), (1, 1), (1, 1), (0, 0))
        )
        a = lax.conv_general_dilated(
            z, w2, (1, 1), [(2, 2), (2, 2)], rhs_dilation=(2, 2), dimension_numbers=DN2
        )
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
    s = summary(
        f,
        params,
        stats,
        jnp.ones((1, 6, 6, 2)),
        data_argnum=2,
        non_trainable_argnums=(1,),
        print_fn=None,
    )
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


# --------------------------------------------------------------------------------------------
# dlref's own ops: every conv impl and every pooling gives the table of its definition
# (issue 11). Expected values are dlref.shapes' closed formulas (receptive_field, conv_flops,
# pool_flops), written apart from the walker, or worked by hand where stated.


IMPLS = ["reference", "xla", "im2col", "pallas", "auto"]


def _small_cnn(impl):
    def net(x, w1, b1, w2):
        y = jax.nn.relu(dlref.conv(x, w1, padding=2, dilation=2, impl=impl) + b1)
        y = dlref.max_pool(y, 3, stride=2, padding=1, ceil_mode=True)
        y = jax.nn.relu(dlref.conv(y, w2, stride=2, groups=2, impl=impl))
        y = dlref.avg_pool(y, 2, stride=1, padding=1, count_include_pad=False)
        return dlref.global_avg_pool(y)

    return net


@pytest.mark.parametrize("impl", IMPLS)
def test_every_conv_impl_and_pooling_gives_the_table_of_its_definition(impl):
    args = [jnp.zeros(s) for s in [(2, 10, 9, 2), (3, 3, 2, 4), (4,), (3, 3, 2, 6)]]
    s = summary(_small_cnn(impl), *args, convention="flops", print_fn=None)
    assert [r.op for r in s.rows] == [
        "conv 3×3 d2 +bias+relu",
        "max_pool 3×3/2",
        "conv 3×3/2 g2 +relu",
        "avg_pool 2×2",
        "global_avg_pool",
    ]
    # output shapes by hand: (10+4-5)+1 = 10, (9+4-5)+1 = 9; ceil((10+2-3)/2)+1 = 6,
    # ceil((9+2-3)/2)+1 = 5; (6-3)//2+1 = 2, (5-3)//2+1 = 2; 2+2-2+1 = 3
    assert [r.shape for r in s.rows] == [
        (2, 10, 9, 4),
        (2, 6, 5, 4),
        (2, 2, 2, 6),
        (2, 3, 3, 6),
        (2, 6),
    ]
    fields = receptive_field([(3, 1, 2, 2), (3, 2, 1, 1), (3, 2, 0, 1), (2, 1, 1, 1)])
    assert [r.receptive_field for r in s.rows] == [(f.size,) * 2 for f in fields] + [None]
    assert [r.jump for r in s.rows] == [(f.jump,) * 2 for f in fields] + [None]
    assert [r.params for r in s.rows] == [3 * 3 * 2 * 4 + 4, 0, 3 * 3 * 2 * 6, 0, 0]
    relu = activation_flops
    assert [r.flops for r in s.rows] == [
        conv_flops(2, 4, 3, (10, 9), padding=2, dilation=2, batch=2, convention="flops")
        + relu((2, 10, 9, 4)),  # conv_flops' bias=True counts the bias add
        pool_flops(4, 3, (10, 9), stride=2, padding=1, ceil_mode=True, batch=2),
        conv_flops(4, 6, 3, (6, 5), stride=2, groups=2, batch=2, bias=False, convention="flops")
        + relu((2, 2, 2, 6)),
        pool_flops(6, 2, (2, 2), stride=1, padding=1, batch=2, kind="avg"),
        pool_flops(6, 3, (3, 3), batch=2, kind="avg"),
    ]
    macs = summary(_small_cnn(impl), *args, print_fn=None).totals.flops
    assert macs == conv_flops(2, 4, 3, (10, 9), padding=2, dilation=2, batch=2) + conv_flops(
        4, 6, 3, (6, 5), stride=2, groups=2, batch=2
    )


def test_issue_11_relu_conv_field_and_pool_parameters():
    x, w = jnp.ones((1, 8, 8, 4)), jnp.ones((3, 3, 4, 4))
    for impl in ("reference", "im2col"):  # were (3,) and (1, 1)
        s = summary(
            lambda x, impl=impl: jax.nn.relu(dlref.conv(x, w, padding=1, impl=impl)),
            x,
            print_fn=None,
        )
        assert s.totals.receptive_field == (3, 3) and s.totals.params == w.size
    for k in (2, 3, 4):  # avg_pool(x, 3, stride=1, padding=1) had 64 "parameters" (its divisor)
        for f in (dlref.avg_pool, dlref.max_pool):
            for cip in ({"count_include_pad": False} if f is dlref.avg_pool else {}, {}):
                s = summary(
                    lambda x, f=f, k=k, c=cip: f(x, k, stride=1, padding=1, **c), x, print_fn=None
                )
                assert s.totals.params == 0 and s.totals.receptive_field == (k, k)


POOLS = [
    # (dlref op, the lax.reduce_window form of the same pooling, pool_flops arguments)
    (
        lambda x: dlref.max_pool(x, (3, 2), stride=(2, 1), padding=1, dilation=(1, 2)),
        lambda x: lax.reduce_window(
            x,
            -jnp.inf,
            lax.max,
            (1, 3, 2, 1),
            (1, 2, 1, 1),
            ((0, 0), (1, 1), (1, 1), (0, 0)),
            window_dilation=(1, 1, 2, 1),
        ),
        dict(k=(3, 2), stride=(2, 1), padding=1, dilation=(1, 2)),
    ),
    (
        lambda x: dlref.avg_pool(x, 3, stride=2, padding=1),
        lambda x: (
            lax.reduce_window(
                x, 0.0, lax.add, (1, 3, 3, 1), (1, 2, 2, 1), ((0, 0), (1, 1), (1, 1), (0, 0))
            )
            / 9
        ),
        dict(k=3, stride=2, padding=1, kind="avg"),
    ),
    (dlref.global_max_pool, lambda x: jnp.max(x, axis=(1, 2)), dict(k=(9, 8))),
    (dlref.global_avg_pool, lambda x: jnp.mean(x, axis=(1, 2)), dict(k=(9, 8), kind="avg")),
]


@pytest.mark.parametrize("pool,lax_pool,kw", POOLS)
def test_pooling_rows_equal_their_one_primitive_form(pool, lax_pool, kw):
    x = jax.ShapeDtypeStruct((2, 9, 8, 3), jnp.float32)
    (got,), (want,) = (
        summary(f, x, convention="flops", print_fn=None).rows for f in (pool, lax_pool)
    )
    assert got == want
    k = kw.pop("k")
    assert got.flops == pool_flops(3, k, (9, 8), batch=2, **kw)


def test_fields_survive_flatten_and_unflatten():
    # a 3x3 conv, then its (N, H, W, C) output flattened to (N·H·W, C) for a matmul (a 1x1
    # conv written as a dense layer) and unflattened: the 3x3 field comes back
    w, m = jnp.ones((3, 3, 2, 4)), jnp.ones((4, 5))

    def f(x):
        y = lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=DN2)
        return (y.reshape(-1, 4) @ m).reshape(2, 6, 5, 5)

    s = summary(f, jnp.ones((2, 8, 7, 2)), print_fn=None)
    assert [(r.op, r.receptive_field) for r in s.rows] == [("conv 3×3", (3, 3)), ("dense", (3, 3))]
    # a flatten into a dense layer: its units see everything
    s = summary(
        lambda x: x.reshape(2, -1) @ jnp.ones((8 * 7 * 2, 3)), jnp.ones((2, 8, 7, 2)), print_fn=None
    )
    assert s.rows[0].receptive_field is None


def test_a_tap_loop_of_ones_own_reads_as_a_conv():
    # dlref.testing's docstring example: a 1-D conv as a sum of shifted slices times weights
    w = jnp.array([1.0, -2.0, 0.5])
    s = summary(
        lambda x: sum(x[:, t : t + 6] * w[t] for t in range(3)), jnp.ones((1, 8, 1)), print_fn=None
    )
    (row,) = s.rows
    assert (row.op, row.receptive_field, row.params, row.flops) == ("conv 3", (3,), 3, 6 * 3)


# --------------------------------------------------------------------------------------------
# the kernels' primitive: `dlref_conv` with a `geometry` parameter (the contract with the
# kernels helper), exercised here with a stand-in that has an abstract evaluation only


class Geometry(NamedTuple):
    in_sizes: tuple
    kernel: tuple
    stride: tuple
    padding: tuple
    dilation: tuple
    out_sizes: tuple
    groups: int
    c_in: int
    c_out: int


dlref_conv_p = jex_core.Primitive("dlref_conv")
dlref_conv_p.def_abstract_eval(
    lambda x, w, *rest, geometry: jax.core.ShapedArray(
        (x.shape[0], *geometry.out_sizes, geometry.c_out), x.dtype
    )
)


def _geometry(in_sizes, kernel, stride, padding, dilation, groups, c_in, c_out):
    out = conv_output_size(in_sizes, kernel, stride, padding, dilation)
    return Geometry(in_sizes, kernel, stride, padding, dilation, out, groups, c_in, c_out)


def test_dlref_conv_primitive_rule():
    g1 = _geometry((9, 8), (3, 2), (2, 1), ((1, 1), (0, 2)), (1, 2), 2, 4, 6)
    g2 = _geometry(g1.out_sizes, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1, 6, 6)

    def net(x, w1, b1, w2, scale, shift):
        y = dlref_conv_p.bind(x, w1, b1, geometry=g1)
        return jax.nn.relu(dlref_conv_p.bind(y, w2, scale, shift, y, geometry=g2))

    args = [jnp.zeros(s) for s in [(2, 9, 8, 4), (3, 2, 2, 6), (6,), (3, 3, 6, 6), (6,), (6,)]]
    s = summary(net, *args, convention="flops", print_fn=None)
    assert [r.op for r in s.rows] == ["conv 3×2/2×1 d1×2 g2 +bias", "conv 3×3 +bn+add+relu"]
    n_out = 2 * math.prod(g1.out_sizes) * 6
    assert [r.shape for r in s.rows] == [(2, *g1.out_sizes, 6)] * 2
    # per axis (height, width) the two layers, as (kernel, stride, padding, dilation); the
    # residual operand (the first conv's output) lies inside the second conv's field
    height = receptive_field([(3, 2, (1, 1), 1), (3, 1, (1, 1), 1)])
    width = receptive_field([(2, 1, (0, 2), 2), (3, 1, (1, 1), 1)])
    assert [r.receptive_field for r in s.rows] == [(h.size, w.size) for h, w in zip(height, width)]
    assert [r.jump for r in s.rows] == [(h.jump, w.jump) for h, w in zip(height, width)]
    assert [r.params for r in s.rows] == [3 * 2 * 2 * 6 + 6, 3 * 3 * 6 * 6 + 6 + 6]
    first = dict(stride=(2, 1), padding=((1, 1), (0, 2)), dilation=(1, 2), groups=2, batch=2)
    assert [r.flops for r in s.rows] == [
        conv_flops(4, 6, (3, 2), (9, 8), **first, bias=True, convention="flops"),
        conv_flops(6, 6, 3, g1.out_sizes, padding=1, batch=2, bias=False, convention="flops")
        + 3 * n_out
        + n_out,  # scale, shift, residual add; relu
    ]
    macs = summary(net, *args, print_fn=None).totals.flops
    assert macs == conv_flops(4, 6, (3, 2), (9, 8), **first) + conv_flops(
        6, 6, 3, g1.out_sizes, padding=1, batch=2
    )


def test_a_scan_counts_its_body_once_per_step():
    # an RNN over 7 steps: x_t @ w_ih (3 -> 5) and h @ w_hh (5 -> 5) per step, batch 2; the
    # state h starts as zeros (off the data path) and joins it after the first step
    def rnn(x, w_ih, w_hh):
        def step(h, x_t):
            h = jnp.tanh(x_t @ w_ih + h @ w_hh)
            return h, h

        return lax.scan(step, jnp.zeros((2, 5)), jnp.swapaxes(x, 0, 1))[1]

    s = summary(rnn, jnp.ones((2, 7, 3)), jnp.ones((3, 5)), jnp.ones((5, 5)), print_fn=None)
    assert s.totals.flops == 7 * 2 * (3 * 5 + 5 * 5)
    assert s.totals.params == 3 * 5 + 5 * 5


def _rows(fn, *args, convention):
    return [
        (r.op, r.shape, r.receptive_field, r.jump, r.start, r.params, r.flops)
        for r in summary(fn, *args, convention=convention, print_fn=None).rows
    ]


def _same_rows_for_every_impl(fn, cfg, convention):
    """The summary rows of ``fn(x, w, impl)`` on ``cfg``'s float32 shapes for impl "xla",
    "reference" and (on outputs wider than one pixel) "im2col", asserted equal; "xla"'s rows."""
    x = jax.ShapeDtypeStruct(cfg.input_shape, jnp.float32)
    w = jax.ShapeDtypeStruct(cfg.kernel_shape, jnp.float32)
    impls = ["xla", "reference"] + (["im2col"] if min(cfg.output_shape[1:-1]) > 1 else [])
    rows = {
        impl: _rows(functools.partial(fn, impl=impl), x, w, convention=convention) for impl in impls
    }
    for impl in impls:
        assert rows[impl] == rows["xla"], impl
    return rows["xla"]


@settings(max_examples=15)
@given(cfg=conv_configs(strided_dilation=False), convention=st.sampled_from(CONVENTIONS))
def test_conv_impls_give_the_same_rows_for_any_geometry(cfg, convention):
    # lax.conv_general_dilated (impl="xla") is one primitive; "reference" a loop over taps,
    # "im2col" taps stacked and contracted: one row each, the same. (Strided dilation is left
    # out: impl="xla" then runs at stride 1 and slices, which costs stride times the work.
    # Today's im2col is left out on 1-pixel outputs: there its reshapes between size-1 axes are
    # no-ops that jax drops, so no walk can tell its axes apart; it becomes the dlref_conv
    # primitive, with its own rule, when the kernels helper's work is merged.)
    rows = _same_rows_for_every_impl(
        lambda x, w, impl: jax.nn.relu(dlref.conv(x, w, impl=impl, **cfg.kwargs())),
        cfg,
        convention,
    )
    ((op, shape, field, *_),) = rows
    assert op.startswith("conv ") and op.endswith(" +relu") and shape == cfg.output_shape


@settings(max_examples=10)
@given(cfg=conv_transpose_configs(), convention=st.sampled_from(CONVENTIONS))
def test_conv_transpose_impls_give_the_same_rows_for_any_geometry(cfg, convention):
    # "reference" is the tap loop over the zero-interleaved input (lax.pad with interior
    # padding), "xla" lhs_dilation (or, with dilation too, the same interleaved input)
    rows = _same_rows_for_every_impl(
        lambda x, w, impl: dlref.conv_transpose(x, w, impl=impl, **cfg.kwargs()), cfg, convention
    )
    # with stride 1 a transposed convolution is a convolution (of the flipped kernel)
    name = "conv_transpose " if max(cfg.stride) > 1 else "conv "
    assert rows[0][0].startswith(name)


def _lax_pool(cfg: PoolConfig):
    """The same pooling as one ``lax.reduce_window`` (ceil_mode: more padding on the right)."""
    sizes, out = cfg.input_shape[1:-1], cfg.output_shape[1:-1]
    hi = [
        max(hi, (o - 1) * s + d * (k - 1) + 1 - n - lo)
        for n, o, k, s, d, (lo, hi) in zip(
            sizes, out, cfg.window, cfg.stride, cfg.dilation, cfg.padding
        )
    ]
    pads = ((0, 0), *((lo, h) for (lo, _), h in zip(cfg.padding, hi)), (0, 0))
    dims, strides, dil = (1, *cfg.window, 1), (1, *cfg.stride, 1), (1, *cfg.dilation, 1)
    if cfg.kind == "max":
        return lambda x: lax.reduce_window(
            x, -jnp.inf, lax.max, dims, strides, pads, window_dilation=dil
        )
    # divisor: a window sum over ones (off the data path), whatever its padding rule
    return lambda x: (
        lax.reduce_window(x, 0.0, lax.add, dims, strides, pads)
        / lax.reduce_window(jnp.ones(x.shape), 0.0, lax.add, dims, strides, pads)
    )


@settings(max_examples=15)
@given(cfg=pool_configs(), convention=st.sampled_from(CONVENTIONS))
def test_pooling_rows_equal_one_reduce_window_for_any_geometry(cfg, convention):
    # a 1-tap window pools nothing: dlref's is a strided slice then (no row), lax's is not
    assume(math.prod(cfg.window) > 1)
    # pool_configs (dlref.testing) can draw a dilated window larger than an unpadded input
    # (its fallback for windows that see only padding drops the padding); skip those
    assume(
        all(
            d * (k - 1) + 1 <= n + lo + hi
            for n, k, d, (lo, hi) in zip(
                cfg.input_shape[1:-1], cfg.window, cfg.dilation, cfg.padding
            )
        )
    )
    x = jax.ShapeDtypeStruct(cfg.input_shape, jnp.float32)
    pool = dlref.max_pool if cfg.kind == "max" else dlref.avg_pool
    got = _rows(lambda x: pool(x, cfg.window, **cfg.kwargs()), x, convention=convention)
    assert got == _rows(_lax_pool(cfg), x, convention=convention)
    assert got[0][1] == cfg.output_shape
