"""Output-size calculators against the shapes the lax ops actually produce."""

from __future__ import annotations

import jax.numpy as jnp
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from jax import lax

from dlref.shapes import conv_output_size, conv_transpose_output_size


@given(
    n=st.integers(1, 20),
    k=st.integers(1, 5),
    s=st.integers(1, 4),
    lo=st.integers(0, 3),
    hi=st.integers(0, 3),
    d=st.integers(1, 3),
)
def test_conv_output_size_matches_lax(n, k, s, lo, hi, d):
    if n + lo + hi < d * (k - 1) + 1:
        with pytest.raises(ValueError, match="there is no output"):
            conv_output_size(n, k, s, (lo, hi), d)
        return
    x = jnp.zeros((1, n, 1))
    w = jnp.zeros((k, 1, 1))
    y = lax.conv_general_dilated(
        x, w, (s,), [(lo, hi)], rhs_dilation=(d,), dimension_numbers=("NWC", "WIO", "NWC")
    )
    assert conv_output_size(n, k, s, (lo, hi), d) == y.shape[1]


def test_ceil_mode_pytorch_rule():
    # PyTorch docs example values: MaxPool1d(k=2, s=2, ceil_mode=True) on n=5 -> 3
    assert conv_output_size(5, 2, 2, ceil_mode=True) == 3
    assert conv_output_size(5, 2, 2) == 2
    # Worked by hand from PyTorch's rule (out-1)*s >= n + p_lo -> drop the last window:
    # n=4, k=2, s=2, p=1: ceil(4/2)+1 = 3; the third window starts at 4 < n + p_lo = 5, kept.
    # n=3, k=2, s=2, p=1: ceil(3/2)+1 = 3; the third window starts at 4 >= n + p_lo = 4, dropped.
    assert conv_output_size(4, 2, 2, 1, ceil_mode=True) == 3
    assert conv_output_size(3, 2, 2, 1, ceil_mode=True) == 2


def test_per_dimension_tuples():
    assert conv_output_size((224, 200), 7, 2, 3) == (112, 100)
    assert conv_output_size((5, 6), (3, 2), (1, 2), ((1, 1), 0)) == (5, 3)
    assert conv_transpose_output_size((4, 5), 3, 2, 1, (1, 0)) == (8, 9)
    with pytest.raises(ValueError, match=r"k must have one entry per dimension \(2\)"):
        conv_output_size((5, 6), (3, 3, 3))


def test_conv_transpose_output_size_inverts_conv():
    # PyTorch ConvTranspose2d docs: (in-1)*s - 2p + d(k-1) + output_padding + 1
    assert conv_transpose_output_size(4, 3, 2, 1, 1) == 8
    assert conv_output_size(8, 3, 2, 1) == 4
    # the study guide's (in-1)*s + k holds only for p=0, d=1, output_padding=0 (erratum 2)
    assert conv_transpose_output_size(4, 3, 2) == (4 - 1) * 2 + 3
    assert conv_transpose_output_size(4, 3, 2, 1) != (4 - 1) * 2 + 3


def test_bad_input():
    with pytest.raises(ValueError, match="stride s must be >= 1, got 0"):
        conv_output_size(5, 3, 0)
    with pytest.raises(ValueError, match="kernel size k must be >= 1"):
        conv_output_size(5, 0)
    with pytest.raises(ValueError, match="padding must be >= 0"):
        conv_output_size(5, 3, 1, -1)
    with pytest.raises(TypeError, match="input size n must be an int"):
        conv_output_size(5.0, 3)
    with pytest.raises(ValueError, match="output_padding=2 must be smaller than either stride"):
        conv_transpose_output_size(4, 3, 2, 0, 2)
    with pytest.raises(ValueError, match="leaves no output"):
        conv_transpose_output_size(1, 1, 1, 1)


# ============================================================================================
# Sizes against the ops that produce them
# ============================================================================================

import functools  # noqa: E402
import math  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402
from hypothesis import settings  # noqa: E402

from dlref._checks import same_padding  # noqa: E402
from dlref.model_summary import summary  # noqa: E402
from dlref.shapes import (  # noqa: E402
    ReceptiveField,
    activation_bytes,
    activation_flops,
    batch_norm_flops,
    conv_flops,
    conv_params,
    pool_flops,
    receptive_field,
)
from tests._helpers import padding_taps, xla_cost  # noqa: E402

DN1 = ("NWC", "WIO", "NWC")
DN2 = ("NHWC", "HWIO", "NHWC")


def _torch_pool_out(n, k, pad_l, pad_r, s, d, ceil_mode):
    """PyTorch's ``pooling_output_shape_pad_lr`` (aten/src/ATen/native/Pool.h), transcribed."""
    num = n + pad_l + pad_r - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)
    out = num // s + 1  # div_rtn: floor division
    if ceil_mode and (out - 1) * s >= n + pad_l:
        out -= 1
    return out


@given(
    n=st.integers(1, 12),
    k=st.integers(1, 4),
    s=st.integers(1, 3),
    lo=st.integers(0, 2),
    hi=st.integers(0, 2),
    d=st.integers(1, 2),
)
def test_conv_output_size_matches_reduce_window(n, k, s, lo, hi, d):
    if n + lo + hi < d * (k - 1) + 1:
        with pytest.raises(ValueError, match="there is no output"):
            conv_output_size(n, k, s, (lo, hi), d, ceil_mode=True)
        return
    y = lax.reduce_window(
        jnp.zeros((1, n, 1)),
        -jnp.inf,
        lax.max,
        (1, k, 1),
        (1, s, 1),
        ((0, 0), (lo, hi), (0, 0)),
        window_dilation=(1, d, 1),
    )
    assert conv_output_size(n, k, s, (lo, hi), d) == y.shape[1]


@settings(max_examples=8)
@given(
    n=st.integers(2, 9),
    k=st.integers(1, 3),
    s=st.integers(1, 3),
    p=st.integers(0, 1),
    d=st.integers(1, 2),
    ceil_mode=st.booleans(),
)
def test_sizes_match_dlref_conv_and_pool(n, k, s, p, d, ceil_mode):
    from dlref.convolution import conv
    from dlref.pooling import avg_pool, max_pool

    if n + 2 * p < d * (k - 1) + 1 or 2 * p > k:  # PyTorch pooling needs p <= k/2
        return
    x = jnp.ones((1, n, n + 1, 1))
    want = conv_output_size((n, n + 1), k, s, p, d)
    assert conv(x, jnp.ones((k, k, 1, 1)), stride=s, padding=p, dilation=d).shape[1:3] == want
    want_pool = conv_output_size((n, n + 1), k, s, p, d, ceil_mode=ceil_mode)
    assert want_pool == tuple(_torch_pool_out(m, k, p, p, s, d, ceil_mode) for m in (n, n + 1))
    y = max_pool(x, k, stride=s, padding=p, dilation=d, ceil_mode=ceil_mode)
    assert y.shape[1:3] == want_pool
    if d == 1:
        assert avg_pool(x, k, stride=s, padding=p, ceil_mode=ceil_mode).shape[1:3] == want_pool


@given(
    n=st.integers(1, 6),
    k=st.integers(1, 4),
    s=st.integers(1, 3),
    p=st.integers(0, 2),
    d=st.integers(1, 2),
    op_=st.integers(0, 2),
)
def test_conv_transpose_output_size_matches_lax(n, k, s, p, d, op_):
    """The transposed conv as lax writes it: dilate the input by s, pad d(k-1)-p (+op hi)."""
    if op_ >= max(s, d):
        with pytest.raises(ValueError, match=f"output_padding={op_} must be smaller than either"):
            conv_transpose_output_size(n, k, s, p, op_, d)
        return
    lo, hi = d * (k - 1) - p, d * (k - 1) - p + op_
    expected_out = (n - 1) * s + 1 + lo + hi - d * (k - 1)
    if expected_out < 1:
        with pytest.raises(ValueError, match="leaves no output"):
            conv_transpose_output_size(n, k, s, p, op_, d)
        return
    x = jnp.zeros((1, n, 1))
    xp = lax.pad(x, 0.0, ((0, 0, 0), (max(lo, 0), max(hi, 0), s - 1), (0, 0, 0)))
    xp = xp[:, max(-lo, 0) : xp.shape[1] - max(-hi, 0)]
    y = lax.conv_general_dilated(
        xp, jnp.zeros((k, 1, 1)), (1,), "VALID", rhs_dilation=(d,), dimension_numbers=DN1
    )
    assert conv_transpose_output_size(n, k, s, p, op_, d) == y.shape[1]


def test_conv_transpose_output_size_matches_dlref_conv_transpose():
    from dlref.convolution import conv_transpose

    x = jnp.ones((1, 4, 5, 2))
    w = jnp.ones((3, 3, 3, 2))  # (*k, C_out_t, C_in_t)
    y = conv_transpose(x, w, stride=2, padding=1, output_padding=1)
    assert y.shape[1:3] == conv_transpose_output_size((4, 5), 3, 2, 1, 1)


# ============================================================================================
# Receptive fields
# ============================================================================================


def test_receptive_field_known_values():
    # two 3x3 convs see 5x5, three see 7x7 (Simonyan & Zisserman 2015, VGG paper, sec. 2.3)
    assert [f.size for f in receptive_field([(3,), (3,), (3,)])] == [3, 5, 7]
    # Distill 2019 (Araujo et al.), worked by hand from its recursion:
    # conv 7/2 p3: r=7 j=2 start=3-3=0; max pool 3/2 p1: r=7+2*2=11, j=4, start=0+(1-1)*2=0
    assert receptive_field([(7, 2, 3), (3, 2, 1)]) == [
        ReceptiveField(7, 2, 0.0),
        ReceptiveField(11, 4, 0.0),
    ]
    # dilated 3x3, d=2 sees 5x5 (seed 空洞卷积); even kernel -> half-integer start
    assert receptive_field([(3, 1, 0, 2)]) == [ReceptiveField(5, 1, 2.0)]
    assert receptive_field([(2, 2)]) == [ReceptiveField(2, 2, 0.5)]
    # per-dimension tuples: a 3x1 then 1x3 conv (factorized, Inception v3) sees 3x3
    rf = receptive_field([((3, 1), 1, ((1, 1), 0)), ((1, 3), (1, 2), (0, 1))])
    assert rf[-1] == ReceptiveField((3, 3), (1, 2), (0.0, 0.0))


def _conv1d(x, k, s, p, d):
    w = jnp.ones((k, 1, 1), x.dtype)  # all-positive weights: supports never cancel
    return lax.conv_general_dilated(x, w, (s,), [p], rhs_dilation=(d,), dimension_numbers=DN1)


def _support_bounds(f, n):
    """Min and max input index in the support of the Jacobian row of every output unit."""
    x = jnp.ones((1, n, 1))
    jac = jax.jit(jax.jacrev(lambda x: f(x)[0, :, 0]))(x)[:, 0, :, 0]  # (n_out, n)
    nz = np.asarray(jac) != 0
    return [(np.flatnonzero(r).min(), np.flatnonzero(r).max()) if r.any() else None for r in nz]


def _check_fields(bounds, n, size, jump, start):
    inside = 0
    for u, bound in enumerate(bounds):
        lo = start + u * jump - (size - 1) / 2
        hi = start + u * jump + (size - 1) / 2
        if bound is None:  # a unit that sees only padding
            assert lo < 0 or hi > n - 1
            continue
        smin, smax = bound
        assert lo <= smin and smax <= hi  # the support lies in the computed field
        if lo >= 0 and hi <= n - 1:  # a field inside the input is reached end to end
            assert (smin, smax) == (lo, hi)
            inside += 1
    assert inside > 0


_layer = st.tuples(st.integers(1, 4), st.integers(1, 3), st.integers(0, 2), st.integers(1, 3))


@settings(max_examples=10)
@given(layers=st.lists(_layer, min_size=1, max_size=3))
def test_receptive_field_matches_gradient_support_sequential(layers):
    n = 8 + 3 * receptive_field(layers)[-1].size

    def f(x):
        for k, s, p, d in layers:
            x = jax.nn.relu(_conv1d(x, k, s, (p, p), d))
        return x

    last = receptive_field(layers)[-1]
    _check_fields(_support_bounds(f, n), n, last.size, last.jump, last.start)
    # summary's dataflow agrees with the sequential formula on every conv row
    rows = summary(f, jax.ShapeDtypeStruct((1, n, 1), jnp.float32), print_fn=None).rows
    rf = receptive_field(layers)
    assert [(r.receptive_field, r.jump, r.start) for r in rows] == [
        ((f.size,), (f.jump,), (f.start,)) for f in rf
    ]


_branch_layer = st.tuples(st.integers(1, 4), st.integers(1, 2))  # (kernel, dilation)


@settings(max_examples=10)
@given(
    trunk=_layer,
    a=st.lists(_branch_layer, min_size=1, max_size=3),
    b=st.lists(_branch_layer, min_size=1, max_size=2),
    strides=st.lists(st.integers(1, 2), min_size=3, max_size=3),
    head=st.integers(1, 3),
)
# Found by hypothesis: a field of 121 on the input of 120 the test used to have.
@example(trunk=(1, 3, 0, 1), a=[(1, 1), (3, 2), (4, 2)], b=[(1, 1)], strides=[2, 2, 1], head=3)
def test_receptive_field_matches_gradient_support_branching(trunk, a, b, strides, head):
    """Two branches with 'SAME' (lo, hi) padding — asymmetric, so their fields are misaligned
    — joined by an add; summary's union must equal the support of the gradient."""
    sa = strides[: len(a)]
    sb = [math.prod(sa)] + [1] * (len(b) - 1)  # same total stride: outputs of equal size
    # The input is sized from the fields it checks: each path's field (the formula, no
    # padding) bounds the join's, which is at most their sum when misaligned; three times that
    # plus two jumps leaves units whose whole field lies inside the input.
    paths = [
        receptive_field([trunk, *[(k, s, 0, d) for (k, d), s in zip(br, ss)], (head, 1, 0, 1)])[-1]
        for br, ss in ((a, sa), (b, sb))
    ]
    n = 8 + 3 * sum(f.size for f in paths) + 2 * paths[0].jump

    def branch(x, layers, ss):
        for (k, d), s in zip(layers, ss):
            x = jax.nn.relu(_conv1d(x, k, s, same_padding(x.shape[1], k, s, d), d))
        return x

    def f(x):
        k, s, p, d = trunk
        x = _conv1d(x, k, s, (p, p), d)
        y = jax.nn.relu(branch(x, a, sa) + branch(x, b, sb))
        return _conv1d(y, head, 1, (0, 0), 1)

    s = summary(f, jax.ShapeDtypeStruct((1, n, 1), jnp.float32), print_fn=None)
    last = s.rows[-1]
    (size,), (jump,), (start,) = last.receptive_field, last.jump, last.start
    _check_fields(_support_bounds(f, n), n, size, jump, start)
    # the join is the largest field over the two paths (or larger, when misaligned)
    add_row = next(r for r in s.rows if r.op.startswith("add"))
    branch_rows = [r for r in s.rows[1:] if r.op.startswith("conv")][: len(a) + len(b)]
    assert add_row.receptive_field[0] >= max(r.receptive_field[0] for r in branch_rows)


def test_receptive_field_2d_gradient_support_non_square():
    layers = [((3, 5), (2, 1), ((1, 1), (2, 2)), (1, 2)), ((3, 3), 2, 0, 1)]

    def f(x):
        for k, s, p, d in layers:
            s, d = (s, s) if isinstance(s, int) else s, (d, d) if isinstance(d, int) else d
            p = p if isinstance(p, tuple) else ((p, p), (p, p))
            x = lax.conv_general_dilated(
                x, jnp.ones((*k, 1, 1)), s, p, rhs_dilation=d, dimension_numbers=DN2
            )
        return x

    x = jnp.ones((1, 21, 23, 1))
    y = f(x)
    u = (y.shape[1] // 2, y.shape[2] // 2)
    g = np.asarray(jax.grad(lambda x: f(x)[0, u[0], u[1], 0])(x)[0, :, :, 0]) != 0
    rf = receptive_field(layers)[-1]
    for dim, axis in ((0, 1), (1, 0)):
        idx = np.flatnonzero(g.any(axis=axis))
        centre = rf.start[dim] + u[dim] * rf.jump[dim]
        half = (rf.size[dim] - 1) / 2
        assert (idx.min(), idx.max()) == (centre - half, centre + half)


# ============================================================================================
# Parameters
# ============================================================================================


def test_conv_params_against_flax():
    from flax import nnx

    def count(module, kind):
        return sum(math.prod(x.shape) for x in jax.tree.leaves(nnx.state(module, kind)))

    def abstract(cls, *args, **kwargs):  # shapes only: no random initialization to compile
        return nnx.eval_shape(lambda: cls(*args, **kwargs, rngs=nnx.Rngs(0)))

    for c, o, k, g, bias in [(4, 6, 3, 1, True), (4, 6, 3, 2, False), (6, 6, (3, 5), 6, True)]:
        ks = k if isinstance(k, tuple) else (k, k)
        conv = abstract(nnx.Conv, c, o, ks, feature_group_count=g, use_bias=bias)
        bn = abstract(nnx.BatchNorm, o)
        p = conv_params(c, o, k, groups=g, bias=bias, batch_norm=True)
        assert p.weight + p.bias == count(conv, nnx.Param)
        assert p.bn == count(bn, nnx.Param)
        assert p.bn_stats == count(bn, nnx.BatchStat)
        assert p.total == p.trainable + p.non_trainable
    # depthwise separable = depthwise (groups=C) + pointwise 1x1 (MobileNet, Howard et al. 2017)
    dw = abstract(nnx.Conv, 8, 8, (3, 3), feature_group_count=8, use_bias=False)
    pw = abstract(nnx.Conv, 8, 16, (1, 1), use_bias=False)
    sep = conv_params(8, 16, 3, bias=False, separable=True)
    assert sep.trainable == count(dw, nnx.Param) + count(pw, nnx.Param) == 8 * 9 + 8 * 16


# ============================================================================================
# FLOPs against XLA's cost analysis
# ============================================================================================


@pytest.mark.parametrize(
    "size,k,s,pad,d,c,o,g",
    [
        ((8, 8), 3, 1, ((0, 0), (0, 0)), 1, 3, 4, 1),
        ((8, 8), 3, 1, ((1, 1), (1, 1)), 1, 3, 4, 1),
        ((9, 7), 3, 2, ((1, 1), (2, 0)), 2, 4, 6, 2),
        ((10, 10), (5, 3), 3, ((2, 2), (1, 1)), 1, 2, 2, 1),
    ],
)
def test_conv_flops_vs_xla_cost_analysis(size, k, s, pad, d, c, o, g):
    """XLA on the CPU counts 2 flops per tap that lands inside the input; taps on padding
    zeros are skipped. So: dense 2·MACs − 2·(padding taps)·(C/g)·O·N = XLA, exactly."""
    ks = k if isinstance(k, tuple) else (k, k)
    n = 2
    x = jnp.zeros((n, *size, c))
    w = jnp.zeros((*ks, c // g, o))
    b = jnp.zeros((o,))

    def f(x, w, b):
        y = lax.conv_general_dilated(
            x, w, (s, s), pad, rhs_dilation=(d, d), dimension_numbers=DN2, feature_group_count=g
        )
        return y + b

    per_dim = [padding_taps(size[i], ks[i], s, *pad[i], d) for i in range(2)]
    outs = [p[1] for p in per_dim]
    # taps on padding in 2-D = all pairs - pairs inside in both dims
    inside = math.prod(outs[i] * ks[i] - per_dim[i][0] for i in range(2))
    pad_taps = math.prod(outs) * math.prod(ks) - inside
    macs = n * o * math.prod(outs) * (c // g) * math.prod(ks)  # hand formula
    kw = dict(stride=s, padding=pad, dilation=d, groups=g, batch=n)
    assert conv_flops(c, o, ks, size, **kw) == macs
    xla = xla_cost(f, x, w, b)
    bias_adds = n * o * math.prod(outs)
    assert conv_flops(c, o, ks, size, convention="flops", **kw) == 2 * macs + bias_adds
    assert conv_flops(c, o, ks, size, convention="flops", **kw) - xla == (
        2 * pad_taps * (c // g) * o * n
    )
    assert conv_flops(c, o, ks, size, convention="flops", count_padding=False, **kw) == xla


def test_dense_pool_activation_flops_vs_xla():
    x = jnp.zeros((2, 9, 9, 3))
    # max pool 3/2, padding 1: XLA pads with -inf and counts K-1 comparisons per output
    pool = functools.partial(
        lax.reduce_window,
        init_value=-jnp.inf,
        computation=lax.max,
        window_dimensions=(1, 3, 3, 1),
        window_strides=(1, 2, 2, 1),
        padding=((0, 0), (1, 1), (1, 1), (0, 0)),
    )
    assert pool_flops(3, 3, 9, stride=2, padding=1, batch=2) == xla_cost(pool, x)
    assert pool_flops(3, 3, 9, stride=2, padding=1, batch=2, convention="macs") == 0
    for kind, fn in [
        ("relu", jax.nn.relu),
        ("leaky_relu", jax.nn.leaky_relu),
        ("sigmoid", jax.nn.sigmoid),
        ("tanh", jnp.tanh),
    ]:
        assert activation_flops(x.shape, kind=kind) == xla_cost(fn, x), kind
    # dense: summary's 2·MACs + bias adds = XLA
    s = summary(
        lambda x, w, b: x @ w + b,
        jnp.zeros((4, 5)),
        jnp.zeros((5, 7)),
        jnp.zeros(7),
        convention="flops",
        print_fn=None,
    )
    assert s.totals.flops == xla_cost(
        lambda x, w, b: x @ w + b, *map(jnp.zeros, [(4, 5), (5, 7), 7])
    )
    assert s.totals.params == 5 * 7 + 7


def test_batch_norm_flops_and_activation_bytes():
    assert batch_norm_flops((2, 4, 4, 8)) == 3 * 256  # sub, mul, add per element
    assert batch_norm_flops(256, train=True) == 6 * 256
    assert batch_norm_flops(256, convention="macs") == 0
    # nnx.BatchNorm in inference: summary's flops (sub, mul, add on the data path) agree
    from flax import nnx

    bn = nnx.BatchNorm(8, use_running_average=True, rngs=nnx.Rngs(0))
    s = summary(lambda x: bn(x), jnp.zeros((2, 4, 4, 8)), convention="flops", print_fn=None)
    assert s.totals.flops == batch_norm_flops((2, 4, 4, 8))
    assert [r.op for r in s.rows] == ["bn"] and s.totals.params == 4 * 8  # closed over: γ, β, μ, σ²
    assert activation_bytes((2, 4, 4, 8)) == 256 * 4
    assert activation_bytes((2, 4, 4, 8), dtype=jnp.bfloat16) == 256 * 2
    assert activation_bytes([(2, 3), (5,)], dtype="float64") == 11 * 8
    assert s.totals.activation_bytes == jnp.zeros((2, 4, 4, 8)).nbytes


# ============================================================================================
# summary
# ============================================================================================


# ============================================================================================
# Seed errata 4-7 (docs/errata.md)
# ============================================================================================


def _seed_outFromIn(isz, net, layernum):  # noqa: N802 - the seed's name, transcribed verbatim
    totstride = 1
    insize = isz
    for layer in range(layernum):
        fsize, stride, pad, dilation = net[layer]
        outsize = (insize - fsize + 2 * pad) / stride + 1
        insize = outsize
        totstride = totstride * stride
    return outsize, totstride


def _seed_inFromOut_dilated(net, layernum):  # noqa: N802 - seed's top-down recursion, with d
    RF = 1  # noqa: N806
    for layer in reversed(range(layernum)):
        fsize, stride, pad, dilation = net[layer]
        RF = (RF - 1) * stride + dilation * (fsize - 1) + 1  # noqa: N806
    return RF


def test_seed_errata_4_outFromIn_computes_sizes_not_fields():
    net = [(3, 1, 1, 1), (3, 2, 1, 2), (3, 1, 1, 1)]
    out, tot = _seed_outFromIn(32, net, len(net))
    rf = receptive_field(net)[-1]
    # outFromIn returns the output size (a float in Python 3) and the total stride ...
    assert isinstance(out, float) and tot == rf.jump == 2
    # ... not the receptive field, which the seed's recursion F = (F'-1)s + d(k-1) + 1 gives
    assert rf.size == _seed_inFromOut_dilated(net, len(net)) == 11
    assert out != rf.size
    # and it ignores the dilation it unpacks: the true output size differs
    assert (
        conv_output_size(conv_output_size(conv_output_size(32, 3, 1, 1), 3, 2, 1, 2), 3, 1, 1) == 15
    )
    assert out == 16.5  # (32 - 3 + 2) / 2 + 1, with d = 2 dropped and no floor


def test_seed_errata_5_params_with_batch_norm():
    c, k, o = 64, 3, 128
    seed = c * k * k * o + 3 * o  # seed 参数量: C·K·K·O + 3·O
    p = conv_params(c, o, k, bias=True, batch_norm=True)
    assert p.trainable == seed  # the seed counts a bias AND γ, β ...
    torch_style = conv_params(c, o, k, bias=False, batch_norm=True)  # torchvision: no bias
    assert torch_style.trainable == seed - o
    assert torch_style.non_trainable == 2 * o  # ... and leaves out the running mean and var
    assert conv_params(c, o, k, groups=4).weight == seed // 1 - 3 * o - c * k * k * o * 3 // 4


def test_seed_errata_6_height_width_typo():
    h, w, k, s, p_total = 32, 16, 3, 1, 2  # non-square input, total padding 2
    seed_positions = ((h - k + p_total) // s + 1) * ((h - k + p_total) // s + 1)  # H twice
    y = lax.conv_general_dilated(
        jnp.zeros((1, h, w, 1)),
        jnp.zeros((k, k, 1, 1)),
        (s, s),
        ((1, 1), (1, 1)),
        dimension_numbers=DN2,
    )
    actual = y.shape[1] * y.shape[2]
    assert seed_positions != actual == 32 * 16
    assert math.prod(conv_output_size((h, w), k, s, 1)) == actual
    assert conv_flops(1, 1, k, (h, w), padding=1, bias=False) == actual * k * k


def test_seed_errata_7_channel_additions_per_element():
    b, c, h, w, k, o = 2, 3, 6, 5, 3, 4
    ho, wo = h - k + 1, w - k + 1
    seed = b * o * (c * ho * wo * (2 * k * k - 1) + (c - 1))  # seed 计算量 step 5
    # exact count, element by element: C·K² products and C·K² − 1 additions per output
    exact = b * o * ho * wo * (c * k * k + c * k * k - 1)
    assert conv_flops(c, o, k, (h, w), batch=b, convention="seed") == seed
    assert exact - seed == b * o * (c - 1) * (ho * wo - 1)  # the C-1 additions per element
    assert conv_flops(c, o, k, (h, w), batch=b, convention="flops", bias=False) == exact + (
        b * o * ho * wo
    )  # 2·MACs: the "−1" is dropped by convention, a bias adds it back exactly
    assert (
        conv_flops(c, o, k, (h, w), batch=b, convention="flops", bias=True)
        == 2 * (b * o * ho * wo * c * k * k) + b * o * ho * wo
    )


# ============================================================================================
# Bad input
# ============================================================================================


def test_bad_input_receptive_field_params_flops():
    with pytest.raises(ValueError, match="layers must be a non-empty sequence"):
        receptive_field([])
    with pytest.raises(ValueError, match=r"layer 1 must be a \(kernel, stride, padding"):
        receptive_field([(3,), 5])
    with pytest.raises(ValueError, match="kernel of layer 0 must be >= 1, got 0"):
        receptive_field([(0,)])
    with pytest.raises(ValueError, match="stride of layer 0 must be >= 1, got 0"):
        receptive_field([(3, 0)])
    with pytest.raises(ValueError, match="dilation of layer 0 must be >= 1, got -1"):
        receptive_field([(3, 1, 0, -1)])
    with pytest.raises(ValueError, match="padding must be >= 0"):
        receptive_field([(3, 1, -1)])
    with pytest.raises(ValueError, match="layer 1 must have a per-dimension kernel tuple"):
        receptive_field([((3, 3),), (3,)])
    with pytest.raises(ValueError, match="layer 1 kernel must have 2 entries"):
        receptive_field([((3, 3),), ((3, 3, 3),)])
    with pytest.raises(ValueError, match=r"stride of layer 0 must have one entry per dim"):
        receptive_field([((3, 3), (1, 1, 1))])
    with pytest.raises(ValueError, match="must be divisible by groups=4"):
        conv_params(6, 8, 3, groups=4)
    with pytest.raises(ValueError, match="separable=True fixes the groups"):
        conv_params(6, 8, 3, groups=2, separable=True)
    with pytest.raises(ValueError, match="separable=True fixes the groups"):
        conv_flops(6, 8, 3, 8, groups=2, separable=True)
    with pytest.raises(ValueError, match="must be divisible by groups=4"):
        conv_flops(6, 8, 3, 8, groups=4)
    with pytest.raises(ValueError, match="kernel size k must be >= 1"):
        conv_params(3, 4, 0)
    with pytest.raises(ValueError, match="kernel size k must have 2 entries"):
        conv_flops(3, 4, (3, 3, 3), (8, 8))
    with pytest.raises(ValueError, match="kernel size k must have 3 entries"):
        conv_flops(3, 4, (3, 3), (8, 8, 8))
    with pytest.raises(ValueError, match="there is no output"):
        conv_flops(3, 4, 5, 3)
    with pytest.raises(ValueError, match="there is no output"):
        pool_flops(3, 5, 3)
    for fn in (
        lambda c: conv_flops(3, 4, 3, 8, convention=c),
        lambda c: pool_flops(3, 2, 8, convention=c),
        lambda c: activation_flops(8, convention=c),
        lambda c: batch_norm_flops(8, convention=c),
        lambda c: summary(jnp.sin, jnp.ones(3), convention=c),
    ):
        with pytest.raises(ValueError, match=r"convention must be one of .*got 'gflops'"):
            fn("gflops")
    with pytest.raises(ValueError, match="kind must be one of"):
        pool_flops(3, 2, 8, kind="l2")
    with pytest.raises(ValueError, match="kind must be one of"):
        activation_flops(8, kind="gelu")
    with pytest.raises(ValueError, match="shape entry must be >= 0"):
        activation_bytes((2, -1))
    with pytest.raises(ValueError, match="output_padding=2 must be smaller than either stride"):
        conv_transpose_output_size(4, 3, 2, 0, 2, 2)  # not smaller than stride or dilation


# --------------------------------------------------------------------------------------------
# issue 11: flags are bools (a truthy string is not True), errors name the public op


def test_flags_must_be_bools():
    # before: conv_params(3, 8, 3, bias="no") counted the bias ("no" is truthy)
    with pytest.raises(TypeError, match="conv_params: bias must be a bool, got 'no'"):
        conv_params(3, 8, 3, bias="no")
    with pytest.raises(TypeError, match="conv_params: batch_norm must be a bool, got 1"):
        conv_params(3, 8, 3, batch_norm=1)
    with pytest.raises(TypeError, match="conv_params: separable must be a bool"):
        conv_params(3, 8, 3, separable="yes")
    with pytest.raises(TypeError, match="conv_flops: bias must be a bool, got 'no'"):
        conv_flops(3, 8, 3, 8, bias="no")
    with pytest.raises(TypeError, match="conv_flops: count_padding must be a bool"):
        conv_flops(3, 8, 3, 8, count_padding=0)
    with pytest.raises(TypeError, match="pool_flops: ceil_mode must be a bool"):
        pool_flops(3, 2, 8, ceil_mode="True")
    with pytest.raises(TypeError, match="conv_output_size: ceil_mode must be a bool, got 1"):
        conv_output_size(5, 2, 2, ceil_mode=1)
    with pytest.raises(TypeError, match="batch_norm_flops: train must be a bool"):
        batch_norm_flops((1, 4), train="no")


def test_choices_and_dtypes_name_the_op():
    with pytest.raises(TypeError, match=r"activation_flops: kind must be one of .*got \['relu'\]"):
        activation_flops((2, 3), kind=["relu"])  # before: TypeError "unhashable type: 'list'"
    with pytest.raises(TypeError, match="pool_flops: convention must be one of .*got None"):
        pool_flops(3, 2, 8, convention=None)
    with pytest.raises(ValueError, match="pool_flops: kind must be one of .*got 'min'"):
        pool_flops(3, 2, 8, kind="min")
    with pytest.raises(TypeError, match="activation_bytes: dtype must be a NumPy/JAX dtype"):
        activation_bytes((2, 3), dtype="bogus")


def test_nested_size_errors_name_the_public_op():
    # before: "conv_output_size: ..." from inside conv_flops / pool_flops
    with pytest.raises(ValueError, match="conv_flops: the dilated kernel"):
        conv_flops(3, 8, 5, 2)
    with pytest.raises(ValueError, match="pool_flops: the dilated kernel"):
        pool_flops(3, 5, 2)
    with pytest.raises(TypeError, match="conv_flops: stride s must be an int"):
        conv_flops(3, 8, 3, 8, stride=1.5)
