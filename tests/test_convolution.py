"""dlref.convolution against lax.conv_general_dilated, its vjp, a NumPy loop oracle and the seed."""

from __future__ import annotations

import functools
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax import lax
from jax.test_util import check_grads

from dlref._checks import normalize_padding
from dlref.convolution import conv, conv_transpose, depthwise_separable_conv
from dlref.kernels import ConvGeometry
from dlref.testing import rel_err, tolerance
from tests import oracles

# ---- implementations under test: DLREF_IMPL=reference,xla,im2col,pallas selects them ----
IMPLS = [i for i in os.environ.get("DLREF_IMPL", "reference,xla,im2col,pallas").split(",")]  # noqa: C416

HIGHEST = lax.Precision.HIGHEST
DN = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC"), 3: ("NDHWC", "DHWIO", "NDHWC")}
PAD_FORMS = ("int", "per_dim", "pairs", "VALID", "SAME")
# float64 comparisons: normwise relative error per leaf (dlref.testing.rel_err) within
# dlref.testing.tolerance(float64), i.e. summation-order roundoff, never an O(1) mistake
TOL64 = tolerance(jnp.float64)


def lax_conv(x, w, stride, padding, dilation, groups):
    """The counterpart: lax.conv_general_dilated at HIGHEST precision (padding as lax takes)."""
    return lax.conv_general_dilated(
        x,
        w,
        stride,
        padding,
        rhs_dilation=dilation,
        dimension_numbers=DN[w.ndim - 2],
        feature_group_count=groups,
        precision=HIGHEST,
    )


def as_lax_padding(padding, nd):
    """A dlref padding form in the form lax takes (strings pass through unchanged)."""
    if isinstance(padding, str):
        return padding
    if isinstance(padding, int):
        return [(padding, padding)] * nd
    return [p if isinstance(p, tuple) else (p, p) for p in padding]


@st.composite
def conv_configs(draw, *, ranks=(1, 2, 3), pad_forms=PAD_FORMS, strided_dilation=True):
    """Rank 1-3, stride, dilation, every padding form, groups incl. depthwise x multiplier.

    ``strided_dilation=False`` keeps stride and dilation from both exceeding 1 in the same
    dimension (see test_conv_transpose_is_the_vjp_of_conv).
    """
    nd = draw(st.sampled_from(ranks))
    kmax = 3 if nd < 3 else 2
    k = tuple(draw(st.integers(1, kmax)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) if strided_dilation or s == 1 else 1 for s in stride)
    groups = draw(st.sampled_from((1, 2, 3)))
    depthwise = draw(st.booleans())
    cin_g = 1 if depthwise else draw(st.integers(1, 2))
    cout_g = draw(st.integers(1, 2))  # the channel multiplier when depthwise
    form = draw(st.sampled_from(pad_forms))
    pads = [(draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(nd)]
    padding = {
        "int": pads[0][0],
        "per_dim": tuple(lo for lo, _ in pads),
        "pairs": tuple(pads),
        "VALID": "VALID",
        "SAME": "SAME",
    }[form]
    # Inputs at least as large as the dilated kernel: an output exists for every padding.
    sizes = tuple(
        draw(st.integers(d * (kk - 1) + 1, d * (kk - 1) + 3)) for kk, d in zip(k, dilation)
    )
    batch = draw(st.integers(1, 2))
    seed = draw(st.integers(0, 2**16))
    return dict(
        nd=nd,
        k=k,
        stride=stride,
        dilation=dilation,
        groups=groups,
        cin=cin_g * groups,
        cout=cout_g * groups,
        padding=padding,
        sizes=sizes,
        batch=batch,
        seed=seed,
    )


def make_inputs(cfg, dtype=np.float64):
    """Random x (N, *sizes, C_in) and w (*k, C_in/G, C_out) from NumPy (no jax compiles)."""
    rng = np.random.default_rng(cfg["seed"])
    x = rng.standard_normal((cfg["batch"], *cfg["sizes"], cfg["cin"])).astype(dtype)
    w = rng.standard_normal((*cfg["k"], cfg["cin"] // cfg["groups"], cfg["cout"])).astype(dtype)
    return jnp.asarray(x), jnp.asarray(w)


def normal(seed, shape, dtype=np.float64):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape).astype(dtype))


def conv_kwargs(cfg, impl):
    return dict(
        stride=cfg["stride"],
        padding=cfg["padding"],
        dilation=cfg["dilation"],
        groups=cfg["groups"],
        impl=impl,
    )


# Pallas runs in interpret mode on the CPU (a compile of the emulated kernel per example): its
# property tests stop after PALLAS_EXAMPLES examples (the first ones hypothesis draws, the same
# in every derandomized run); the other impls run the full max_examples.
PALLAS_EXAMPLES = 5
_examples_run: dict[tuple[str, str], int] = {}


def budget_spent(test: str, impl: str) -> bool:
    """Whether ``impl`` has run its share of examples of property test ``test``."""
    if impl != "pallas":
        return False
    n = _examples_run.get((test, impl), 0) + 1
    _examples_run[(test, impl)] = n
    return n > PALLAS_EXAMPLES


# Property tests compile each drawn configuration once, as one jitted program. (Compiling with
# xla_backend_optimization_level=0 was faster but made XLA's CPU compiler abort now and then.)


def fast(f):
    """``jax.jit`` (eager reference convs would compile op by op: slow)."""
    return jax.jit(f)


def shape_of(f, *args, **kwargs):
    """The output shape, traced without compiling anything."""
    return jax.eval_shape(functools.partial(f, **kwargs), *args).shape


def run_fast(f, *args):
    """``jax.jit(f)(*args)``."""
    return jax.jit(f)(*args)


def lax_conv_args(cfg):
    """``cfg``'s (stride, (lo, hi) pads, dilation, groups), the positional tail of lax_conv."""
    return cfg["stride"], as_lax_padding(cfg["padding"], cfg["nd"]), cfg["dilation"], cfg["groups"]


def value_and_vjp(f, args, ct):
    """``f(*args)`` and its vjp with cotangent ``ct``, in one jitted program."""

    def both(args, ct):
        y, pullback = jax.vjp(f, *args)
        return y, pullback(ct)

    return run_fast(both, args, ct)


# --------------------------------------------------------------------------------------------
# values and gradients against lax (hypothesis: examples per property in @settings)


@pytest.mark.parametrize("impl", IMPLS)
@settings(max_examples=15)
@given(cfg=conv_configs())
def test_conv_matches_lax_values_and_vjp(impl, cfg):
    """Values against lax; VJPs against jax.vjp of lax, except where stride > 1 and dilation > 1
    share a dimension: jax's input gradient of such a lax conv can abort XLA's CPU compiler
    (jaxlib 0.11.2, see test_strided_dilated_input_gradient_aborts_xla_lax_but_not_dlref), so
    the oracle there is the NumPy loop (tests/oracles.conv_vjp)."""
    if budget_spent("test_conv_matches_lax_values_and_vjp", impl):
        return
    with jax.enable_x64(True):
        x, w = make_inputs(cfg)
        lax_args = lax_conv_args(cfg)
        out_shape = jax.eval_shape(lambda x, w: lax_conv(x, w, *lax_args), x, w).shape
        ct = normal(cfg["seed"] + 1, out_shape)
        got, (gx, gw) = value_and_vjp(functools.partial(conv, **conv_kwargs(cfg, impl)), (x, w), ct)
        if strided_dilation(cfg["stride"], cfg["dilation"]):
            want = run_fast(lambda x, w: lax_conv(x, w, *lax_args), x, w)
            pairs = normalize_padding(
                cfg["padding"],
                cfg["nd"],
                "oracle",
                sizes=cfg["sizes"],
                window=cfg["k"],
                stride=cfg["stride"],
                dilation=cfg["dilation"],
            )
            wx, ww = oracles.conv_vjp(
                x, w, ct, cfg["stride"], pairs, cfg["dilation"], cfg["groups"]
            )
        else:
            want, (wx, ww) = value_and_vjp(lambda x, w: lax_conv(x, w, *lax_args), (x, w), ct)
        assert got.dtype == jnp.float64
        assert rel_err(got, want) <= TOL64
        assert rel_err(gx, wx) <= TOL64
        assert rel_err(gw, ww) <= TOL64


def strided_dilation(stride, dilation) -> bool:
    """Stride > 1 and dilation > 1 in one dimension."""
    return any(s > 1 and d > 1 for s, d in zip(stride, dilation, strict=True))


# jax's input gradient of this lax conv aborts jaxlib 0.11.2's CPU compiler (SIGABRT, "Window
# dimensions do not match RHS shape" in the algebraic simplifier); found by hypothesis.
ABORTS_XLA = dict(
    x=(2, 7, 4, 6), w=(3, 2, 2, 6), stride=(3, 2), padding=1, dilation=(2, 1), groups=3
)


def test_strided_dilated_input_gradient_aborts_xla_lax_but_not_dlref():
    """The abort is real (reproduced in a subprocess, so it cannot kill the test worker), and
    dlref.conv(impl="xla") of the same configuration differentiates without it."""
    c = ABORTS_XLA
    code = f"""
import jax, jax.numpy as jnp
from jax import lax
jax.config.update("jax_enable_x64", True)
x, w = jnp.ones({c["x"]}), jnp.ones({c["w"]})
f = lambda x: lax.conv_general_dilated(x, w, {c["stride"]}, [(1, 1), (1, 1)],
    rhs_dilation={c["dilation"]}, dimension_numbers=("NHWC", "HWIO", "NHWC"),
    feature_group_count={c["groups"]}).sum()
jax.jit(jax.grad(f))(x).block_until_ready()
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "Window dimensions do not match RHS shape" in proc.stderr
    with jax.enable_x64(True):
        x, w = normal(1, c["x"]), normal(2, c["w"])
        kw = {k: c[k] for k in ("stride", "padding", "dilation", "groups")}
        y = conv(x, w, impl="xla", **kw)
        ct = normal(3, y.shape)
        _, (gx, gw) = value_and_vjp(functools.partial(conv, impl="xla", **kw), (x, w), ct)
        wx, ww = oracles.conv_vjp(x, w, ct, c["stride"], ((1, 1), (1, 1)), c["dilation"], 3)
        assert rel_err(gx, wx) <= TOL64
        assert rel_err(gw, ww) <= TOL64


def test_no_impl_hands_xla_a_conv_dilated_on_both_sides_at_any_order():
    """Second and third derivatives of the ABORTS_XLA configuration: impl="xla" (and "auto",
    which picks it) compiled in a subprocess (an abort would be reported, not kill the
    worker); the kernel impls lower to no XLA convolution at all, at any order."""
    c = ABORTS_XLA
    kw = {k: c[k] for k in ("stride", "padding", "dilation", "groups")}
    code = f"""
import jax, jax.numpy as jnp
from dlref.convolution import conv
jax.config.update("jax_enable_x64", True)
x, w = jnp.ones({c["x"]}), jnp.ones({c["w"]})
for impl in ("xla", "auto"):
    loss = lambda x, w: jnp.sum(jnp.tanh(conv(x, w, impl=impl, **{kw!r})))
    hvp = lambda x, w: jax.jvp(jax.grad(loss, (0, 1)), (x, w), (x, w))[1]
    third = lambda x, w: jax.jvp(hvp, (x, w), (x, w))[1]
    jax.block_until_ready(jax.jit(third)(x, w))
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]
    x = jax.ShapeDtypeStruct(c["x"], jnp.float32)
    w = jax.ShapeDtypeStruct(c["w"], jnp.float32)
    for impl in ("reference", "im2col", "pallas"):

        def loss(x, w, impl=impl):
            return jnp.sum(jnp.tanh(conv(x, w, impl=impl, **kw)))

        def hvp(x, w, loss=loss):
            return jax.jvp(jax.grad(loss, (0, 1)), (x, w), (x, w))[1]

        text = jax.jit(hvp).lower(x, w).as_text()
        assert "convolution" not in text, impl


@pytest.mark.parametrize("impl", IMPLS)
@settings(max_examples=15)
@given(cfg=conv_configs(pad_forms=("int", "per_dim", "pairs"), strided_dilation=False))
def test_conv_transpose_is_the_vjp_of_conv(impl, cfg):
    """conv_transpose(y, w) == vjp of lax conv wrt x, output_padding choosing x's size; and its
    own gradients (wrt y and w) equal those of that vjp (the double vjp of the lax op).

    The oracle, jax's vjp of a conv with stride > 1 and dilation > 1 in one dimension, is itself
    a conv that XLA's CPU compiler can abort on (see dlref.convolution._dispatch), so those configs
    are checked against the NumPy oracle instead (test_conv_transpose_matches_numpy_oracle and
    test_conv_transpose_with_strided_dilation_does_not_abort_xla)."""
    if budget_spent("test_conv_transpose_is_the_vjp_of_conv", impl):
        return
    with jax.enable_x64(True):
        x, w = make_inputs(cfg)
        lax_args = lax_conv_args(cfg)
        y_shape = jax.eval_shape(lambda x: lax_conv(x, w, *lax_args), x).shape
        # the remainder that a strided conv drops is the output_padding that restores n
        output_padding = tuple(
            (n + lo + hi - d * (kk - 1) - 1) % s
            for n, (lo, hi), d, kk, s in zip(
                cfg["sizes"], lax_args[1], cfg["dilation"], cfg["k"], cfg["stride"]
            )
        )
        y = normal(cfg["seed"] + 7, y_shape)
        ct = normal(cfg["seed"] + 8, x.shape)

        def ref(y, w):  # the input-gradient of the lax conv, as a function of (y, w)
            return jax.vjp(lambda x: lax_conv(x, w, *lax_args), x)[1](y)[0]

        def fn(y, w):
            return conv_transpose(y, w, output_padding=output_padding, **conv_kwargs(cfg, impl))

        got, g_got = value_and_vjp(fn, (y, w), ct)
        want, g_want = value_and_vjp(ref, (y, w), ct)
        assert got.shape == x.shape
        assert rel_err(got, want) <= TOL64
        for u, v in zip(g_got, g_want, strict=True):  # per leaf: each to its own scale
            assert rel_err(u, v) <= TOL64


@pytest.mark.parametrize("impl", IMPLS)
def test_conv_transpose_with_strided_dilation_does_not_abort_xla(impl, x64):
    """A configuration on which jaxlib 0.11.2's CPU compiler aborts the process when it is
    given as one lhs- and rhs-dilated conv (found by hypothesis: SIGABRT in the algebraic
    simplifier). dlref hands XLA the zero-interleaved input instead; the value matches the
    NumPy scatter oracle and the gradients match those of the reference impl."""
    stride, dilation, padding, groups = (3, 2), (2, 1), 1, 3
    y = normal(19431, (2, 2, 3, 6))
    w = normal(19432, (3, 2, 2, 6))  # (*k, C_out_t/G, C_in_t)
    kwargs = dict(stride=stride, padding=padding, output_padding=(1, 0), dilation=dilation)
    f = functools.partial(conv_transpose, groups=groups, impl=impl, **kwargs)
    ct = normal(19433, (2, 7, 4, 6))
    got, g_got = value_and_vjp(f, (y, w), ct)
    want = oracles.conv_transpose(y, w, stride, ((1, 1), (1, 1)), (1, 0), dilation, groups)
    assert rel_err(got, want) <= TOL64
    ref = functools.partial(conv_transpose, groups=groups, impl="reference", **kwargs)
    for u, v in zip(g_got, value_and_vjp(ref, (y, w), ct)[1], strict=True):
        assert rel_err(u, v) <= TOL64


# --------------------------------------------------------------------------------------------
# NumPy loop oracle (tests/oracles.py) on small cases


@pytest.mark.parametrize("impl", IMPLS)
@settings(max_examples=15)
@given(cfg=conv_configs(ranks=(1, 2), pad_forms=("int", "pairs")))
def test_conv_matches_numpy_oracle(impl, cfg):
    if budget_spent("test_conv_matches_numpy_oracle", impl):
        return
    with jax.enable_x64(True):
        x, w = make_inputs(cfg)
        got = run_fast(functools.partial(conv, **conv_kwargs(cfg, impl)), x, w)
        want = oracles.conv(x, w, *lax_conv_args(cfg))
        assert rel_err(got, want) <= TOL64


@pytest.mark.parametrize("impl", IMPLS)
@settings(max_examples=15)
@given(cfg=conv_configs(ranks=(1, 2), pad_forms=("int", "pairs")), data=st.data())
def test_conv_transpose_matches_numpy_oracle(impl, cfg, data):
    if budget_spent("test_conv_transpose_matches_numpy_oracle", impl):
        return
    with jax.enable_x64(True):
        pads = as_lax_padding(cfg["padding"], cfg["nd"])
        output_padding = tuple(
            data.draw(st.integers(0, max(s, d) - 1), label="output_padding")
            for s, d in zip(cfg["stride"], cfg["dilation"])
        )
        _, w = make_inputs(cfg)  # the conv kernel (*k, C_in/G, C_out) is the transpose's kernel
        y = normal(cfg["seed"] + 3, (cfg["batch"], *cfg["sizes"], cfg["cout"]))
        kwargs = dict(conv_kwargs(cfg, impl), output_padding=output_padding)
        sizes_out = [
            (n - 1) * s - lo - hi + d * (kk - 1) + a + 1
            for n, s, (lo, hi), d, kk, a in zip(
                cfg["sizes"], cfg["stride"], pads, cfg["dilation"], cfg["k"], output_padding
            )
        ]
        if min(sizes_out) < 1:
            with pytest.raises(ValueError, match="leaves no output"):
                conv_transpose(y, w, **kwargs)
            return
        got = run_fast(functools.partial(conv_transpose, **kwargs), y, w)
        want = oracles.conv_transpose(
            y, w, cfg["stride"], pads, output_padding, cfg["dilation"], cfg["groups"]
        )
        assert rel_err(got, want) <= TOL64


@pytest.mark.parametrize("impl", IMPLS)
def test_hand_computed_examples(impl):
    # d2l §7.2 (cross-correlation): X = arange(9) as 3x3, K = [[0,1],[2,3]] -> [[19,25],[37,43]]
    x = jnp.arange(9.0).reshape(1, 3, 3, 1)
    k = jnp.array([[0.0, 1.0], [2.0, 3.0]]).reshape(2, 2, 1, 1)
    np.testing.assert_array_equal(conv(x, k, impl=impl)[0, ..., 0], [[19, 25], [37, 43]])
    # d2l §14.10 (transposed conv): X = K = [[0,1],[2,3]] -> [[0,0,1],[0,4,6],[4,12,9]]
    x = jnp.array([[0.0, 1.0], [2.0, 3.0]]).reshape(1, 2, 2, 1)
    np.testing.assert_array_equal(
        conv_transpose(x, k, impl=impl)[0, ..., 0], [[0, 0, 1], [0, 4, 6], [4, 12, 9]]
    )
    # d2l §14.10: stride 2 -> [[0,0,0,1],[0,0,2,3],[0,2,0,3],[4,6,6,9]]
    np.testing.assert_array_equal(
        conv_transpose(x, k, stride=2, impl=impl)[0, ..., 0],
        [[0, 0, 0, 1], [0, 0, 2, 3], [0, 2, 0, 3], [4, 6, 6, 9]],
    )


# --------------------------------------------------------------------------------------------
# second-order gradients, jit / vmap, dtypes


# One small configuration per op, with every option that changes the index arithmetic (Pallas
# runs in interpret mode here, so the shapes are tiny): a 2-D grouped conv with stride, dilation
# and (lo, hi) padding; a 1-D strided, dilated, grouped transposed conv with output_padding; a
# 1-D separable conv (depthwise with multiplier 2, then 1x1).
OPS = {
    "conv": (
        conv,
        dict(stride=(2, 1), padding=((1, 0), (1, 2)), dilation=(1, 2), groups=2),
        [(1, 5, 5, 4), (2, 2, 2, 6)],
    ),
    "conv_transpose": (
        conv_transpose,
        dict(stride=2, padding=1, output_padding=1, dilation=2, groups=2),
        [(1, 4, 4), (2, 3, 4)],
    ),
    "separable": (
        depthwise_separable_conv,
        dict(padding="SAME"),
        [(1, 7, 2), (3, 1, 4), (1, 4, 3)],
    ),
}
TABLE_IMPLS = [*IMPLS, "auto"] if "auto" not in IMPLS else IMPLS  # auto: also picked impls


def _transformations(fn, args, ct, tangents, batched):
    """Every transformation of ``fn`` at ``args`` (one jitted program per impl and op).

    ``batched`` are the arguments with a leading axis of 2 for vmap (and its Python loop).
    The loss is nonlinear (tanh) so that its Hessian is not zero (a conv is linear in each
    argument)."""
    last = len(args) - 1

    def loss(*a):
        return jnp.sum(jnp.tanh(fn(*a)) * ct)

    def loop(axes):
        rows = []
        for i in range(2):
            rows.append(fn(*(b[i] if ax == 0 else a for a, b, ax in zip(args, batched, axes))))
        return jnp.stack(rows)

    first, only_last = (0,) + (None,) * last, (None,) * last + (0,)
    everything = (0,) * len(args)
    y, pull = jax.vjp(fn, *args)
    grad_w = jax.grad(loss, argnums=last)
    return {
        "jit": y,
        "vjp": pull(ct),
        "grad": jax.grad(loss, argnums=tuple(range(len(args))))(*args),
        "jvp": jax.jvp(fn, args, tangents)[1],
        "linearize": jax.linearize(fn, *args)[1](*tangents),
        "jacfwd": jax.jacfwd(fn, argnums=last)(*args),
        "jacrev": jax.jacrev(fn, argnums=last)(*args),
        "hessian": jax.hessian(loss, argnums=last)(*args),
        "jvp_of_grad": jax.jvp(grad_w, args, tangents)[1],
        "order_3": jax.jvp(lambda *a: jax.jvp(grad_w, a, tangents)[1], args, tangents)[1],
        "vmap_x": jax.vmap(fn, first)(*(batched[0], *args[1:])),
        "loop_x": loop(first),
        "vmap_w": jax.vmap(fn, only_last)(*(*args[:-1], batched[-1])),
        "loop_w": loop(only_last),
        "vmap_all": jax.vmap(fn, everything)(*batched),
        "loop_all": loop(everything),
        "per_example_grad": jax.vmap(grad_w, first)(*(batched[0], *args[1:])),
    }


def _table_inputs(op):
    fn, kwargs, shapes = OPS[op]
    args = tuple(normal(10 + i, s) for i, s in enumerate(shapes))
    tangents = tuple(normal(20 + i, s) for i, s in enumerate(shapes))
    batched = [normal(30 + i, (2, *s)) for i, s in enumerate(shapes)]
    out = jax.eval_shape(functools.partial(fn, **kwargs), *args).shape
    return fn, kwargs, args, tangents, batched, normal(40, out)


@functools.cache
def _xla_transformations(op):
    """impl="xla" (lax.conv_general_dilated and lax's own rules): the counterpart."""
    with jax.enable_x64(True):
        fn, kwargs, args, tangents, batched, ct = _table_inputs(op)
        f = functools.partial(fn, impl="xla", **kwargs)
        out = jax.jit(lambda *a: _transformations(f, *a))(args, ct, tangents, batched)
        return jax.tree.map(np.asarray, out)


@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("impl", TABLE_IMPLS)
def test_every_transformation_at_every_order(impl, op, x64):
    """The table: jit, vjp, grad, jvp, linearize, jacfwd, jacrev, hessian, jvp of grad (a
    Hessian-vector product), a third-order derivative, vmap over x, over the kernel and over
    both (against a Python loop), and per-example gradients, in float64, for every impl;
    each against impl="xla" (lax's rules) to dlref.testing.tolerance(float64) = 1e-12."""
    fn, kwargs, args, tangents, batched, ct = _table_inputs(op)
    f = functools.partial(fn, impl=impl, **kwargs)
    got = jax.jit(lambda *a: _transformations(f, *a))(args, ct, tangents, batched)
    want = _xla_transformations(op)
    tol = TOL64
    bad = {name: rel_err(got[name], want[name]) for name in want}
    bad = {name: e for name, e in bad.items() if not e <= tol}
    for v in ("x", "w", "all"):
        e = rel_err(got[f"vmap_{v}"], got[f"loop_{v}"])
        if not e <= tol:
            bad[f"vmap_{v} vs loop"] = e
    assert not bad, f"{op}, impl={impl}: relative errors above {tol}: {bad}"


def _all_ops(impl):
    """Every op of the table in one function (one check_grads per impl), and its arguments."""
    args, fns = [], []
    for op in OPS:
        fn, kwargs, shapes = OPS[op]
        fns.append((functools.partial(fn, impl=impl, **kwargs), len(args), len(shapes)))
        args += [normal(50 + len(args), s) for s in shapes]

    def f(*a):
        return tuple(fn(*a[i : i + n]) for fn, i, n in fns)

    return f, tuple(args)


@pytest.mark.parametrize("impl", IMPLS)
def test_check_grads_order_2_both_modes(impl, x64):
    """jax.test_util.check_grads(order=2, modes=("fwd", "rev")) in float64, every op at once
    (finite differences against forward and reverse mode, and against their derivatives)."""
    f, args = _all_ops(impl)
    check_grads(jax.jit(f), args, order=2, modes=("fwd", "rev"))


def test_auto_is_exactly_the_implementation_it_picks(x64):
    """impl="auto" traces to the same program as the impls it picks (dlref.convolution
    .auto_impl), so their check_grads rows cover it: on the CPU, XLA for the grouped conv and
    the transposed conv, the per-tap reference for the depthwise half and im2col's matmul for
    the pointwise half of the separable conv."""
    f_auto, args = _all_ops("auto")
    (_, kw_conv, _), (_, kw_t, _), (_, kw_sep, _) = OPS.values()

    def f_picked(x, w, y, wt, x1, wd, wp):
        a = conv(x, w, impl="xla", **kw_conv)
        b = conv_transpose(y, wt, impl="xla", **kw_t)
        h = conv(x1, wd, groups=x1.shape[-1], impl="reference", **kw_sep)
        return a, b, conv(h, wp, impl="im2col")

    assert str(jax.make_jaxpr(f_auto)(*args)) == str(jax.make_jaxpr(f_picked)(*args))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_low_precision_accumulates_in_float32(impl, dtype, seed):
    # 9 taps, centre tap 1 and the others 2^-8 on an input of ones: the exact sum 1 + 8·2^-8 =
    # 1.03125 is representable in both dtypes, but a running bf16 sum stalls at 1 (1 + 2^-8
    # rounds to 1); float32 accumulation then one rounding gets it exactly.
    x = jnp.ones((1, 3, 3, 1), dtype)
    w = jnp.full((3, 3, 1, 1), 2.0**-8, dtype).at[0, 0].set(1.0)
    y = fast(functools.partial(conv, impl=impl))(x, w)
    assert y.dtype == dtype
    assert float(y[0, 0, 0, 0]) == 1.03125
    t = fast(functools.partial(conv_transpose, impl=impl))(jnp.ones((1, 1, 1, 1), dtype), w)
    assert t.dtype == dtype
    # random inputs: within one rounding of the float32 result on the upcast inputs
    x = normal(seed, (2, 6, 6, 32), np.float32).astype(dtype)
    w = (normal(seed + 1, (3, 3, 16, 8), np.float32) / 12).astype(dtype)
    f = functools.partial(conv, padding=1, groups=2, impl=impl)
    y = fast(f)(x, w)
    ref = lax_conv(x.astype(jnp.float32), w.astype(jnp.float32), (1, 1), [(1, 1)] * 2, (1, 1), 2)
    eps = float(jnp.finfo(dtype).eps)
    np.testing.assert_allclose(np.asarray(y, np.float32), ref, rtol=eps / 2 + 1e-6, atol=1e-5)
    gx, gw = fast(jax.grad(lambda x, w: f(x, w).sum(), (0, 1)))(x, w)
    assert gx.dtype == dtype and gw.dtype == dtype


@pytest.mark.parametrize("impl", IMPLS)
def test_float64_stays_float64(impl, x64):
    x = jnp.ones((1, 5, 3), jnp.float64)
    w = jnp.ones((2, 3, 4), jnp.float64)
    assert conv(x, w, impl=impl).dtype == jnp.float64
    assert conv_transpose(x, jnp.ones((2, 4, 3)), impl=impl).dtype == jnp.float64
    g = jax.grad(lambda w: conv(x, w, impl=impl).sum())(w)
    assert g.dtype == jnp.float64


@pytest.mark.parametrize("impl", IMPLS)
def test_extreme_finite_inputs(impl):
    x = jnp.full((1, 4, 4, 2), 1e4)
    w = jnp.full((3, 3, 2, 2), -1e4)
    y, g = fast(jax.value_and_grad(lambda x: conv(x, w, padding=1, impl=impl).sum()))(x)
    assert np.isfinite(y) and np.all(np.isfinite(g))


# --------------------------------------------------------------------------------------------
# layouts, special cases, correspondences


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("nd,alias", [(1, "NCW"), (2, "NCHW"), (3, "NCDHW"), (3, "NCHW")])
def test_nchw_layout_is_a_transpose(impl, nd, alias, seed):
    x = normal(seed, (2, *(5,) * nd, 4), np.float32)
    w = normal(seed + 1, (*(2,) * nd, 2, 6), np.float32)
    to_first = (0, nd + 1, *range(1, nd + 1))
    w_oihw = jnp.transpose(w, (nd + 1, nd, *range(nd)))
    kw_ = dict(stride=2, padding=1, groups=2, impl=impl)
    y = fast(functools.partial(conv, layout=alias, **kw_))(jnp.transpose(x, to_first), w_oihw)
    want = fast(functools.partial(conv, **kw_))(x, w)
    np.testing.assert_allclose(y, jnp.transpose(want, to_first), atol=1e-5)
    # conv_transpose: PyTorch's (C_in_t, C_out_t/groups, *k) weight, passed as it is
    w_t = normal(seed + 2, (*(3,) * nd, 3, 4), np.float32)  # channels-last: (*k, C_out_t/G, C_in_t)
    kw_t = dict(stride=2, padding=1, output_padding=1, groups=2, impl=impl)
    y_t = fast(functools.partial(conv_transpose, layout=alias, **kw_t))(
        jnp.transpose(x, to_first), jnp.transpose(w_t, (nd + 1, nd, *range(nd)))
    )
    want_t = jnp.transpose(fast(functools.partial(conv_transpose, **kw_t))(x, w_t), to_first)
    assert y_t.shape == (2, 6, *(10,) * nd)  # (5-1)*2 - 2 + 2 + 1 + 1 = 10, C_out_t = 3*2
    np.testing.assert_allclose(y_t, want_t, atol=1e-5)


def test_layout_alias_at_the_wrong_rank():
    with pytest.raises(ValueError, match="names a 1-D layout"):
        conv(jnp.ones((1, 4, 4, 1)), jnp.ones((2, 2, 1, 1)), layout="NCW")


@pytest.mark.parametrize("impl", IMPLS)
def test_conv_transpose_vs_lax_conv_transpose(impl, x64, seed):
    # groups=1: PyTorch's padding p is lax.conv_transpose's padding (d(k-1)-p, d(k-1)-p+a) on
    # the dilated input, and w is passed as the forward conv's HWIO kernel, transpose_kernel=True
    x, w = normal(seed, (2, 5, 4, 3)), normal(seed + 1, (3, 2, 6, 3))
    s, p, a, d = (2, 3), (1, 0), (1, 2), (2, 1)
    lax_pad = [
        (dd * (kk - 1) - pp, dd * (kk - 1) - pp + aa) for kk, pp, aa, dd in zip((3, 2), p, a, d)
    ]
    want = lax.conv_transpose(
        x,
        w,
        s,
        lax_pad,
        rhs_dilation=d,
        dimension_numbers=DN[2],
        transpose_kernel=True,
        precision=HIGHEST,
    )
    got = conv_transpose(x, w, stride=s, padding=p, output_padding=a, dilation=d, impl=impl)
    assert got.shape == (2, (5 - 1) * 2 - 2 + 2 * 2 + 1 + 1, (4 - 1) * 3 - 0 + 1 + 2 + 1, 6)
    assert rel_err(got, want) <= TOL64
    # lax's "VALID" is TensorFlow's rule out = n*s + max(k_eff - s, 0): PyTorch's p = 0 where
    # s <= k_eff (dim 0: k_eff = 5, s = 2), plus output_padding s - k_eff where s > k (dim 1)
    valid = lax.conv_transpose(
        x,
        w,
        s,
        "VALID",
        rhs_dilation=d,
        dimension_numbers=DN[2],
        transpose_kernel=True,
        precision=HIGHEST,
    )
    assert valid.shape[1:3] == (5 * 2 + 3, 4 * 3 + 0)
    got = conv_transpose(x, w, stride=s, dilation=d, output_padding=(0, 1), impl=impl)
    assert rel_err(got, valid) <= TOL64


@pytest.mark.parametrize("impl", IMPLS)
def test_depthwise_with_channel_multiplier_is_per_channel_conv(impl, x64, seed):
    x, w = normal(seed, (2, 6, 5, 3)), normal(seed + 1, (3, 3, 1, 6))  # C_in=3, multiplier 2
    got = conv(x, w, padding=1, groups=3, impl=impl)
    for c in range(3):  # output channel c*2 + j sees input channel c only
        for j in range(2):
            want = lax_conv(
                x[..., c : c + 1],
                w[..., c * 2 + j : c * 2 + j + 1],
                (1, 1),
                [(1, 1)] * 2,
                (1, 1),
                1,
            )
            assert rel_err(got[..., c * 2 + j : c * 2 + j + 1], want) <= TOL64


@pytest.mark.parametrize("impl", IMPLS)
def test_one_by_one_conv_is_a_matmul_over_channels(impl, x64, seed):
    x, w = normal(seed, (2, 4, 5, 6)), normal(seed + 1, (1, 1, 6, 3))
    want = np.einsum("nhwc,co->nhwo", np.asarray(x), np.asarray(w[0, 0]))
    assert rel_err(conv(x, w, impl=impl), want) <= TOL64
    # strided 1x1 (ResNet downsampling shortcut) keeps every other pixel
    assert rel_err(conv(x, w, stride=2, impl=impl), want[:, ::2, ::2]) <= TOL64


@pytest.mark.parametrize("impl", IMPLS)
def test_depthwise_separable_conv_and_its_parameter_savings(impl, x64, seed):
    x = normal(seed, (1, 8, 8, 16))
    w_dw, w_pw = normal(seed + 1, (3, 3, 1, 16)), normal(seed + 2, (1, 1, 16, 32))
    got = depthwise_separable_conv(x, w_dw, w_pw, stride=2, padding=1, impl=impl)
    h = lax_conv(x, w_dw, (2, 2), [(1, 1)] * 2, (1, 1), 16)
    assert rel_err(got, lax_conv(h, w_pw, (1, 1), "VALID", (1, 1), 1)) <= TOL64
    # parameters, counted from array sizes: 3*3*16 + 16*32 = 656 vs a full 3x3 conv 3*3*16*32
    full = jnp.zeros((3, 3, 16, 32))
    assert w_dw.size + w_pw.size == 656 and full.size == 4608
    assert full.size / (w_dw.size + w_pw.size) == pytest.approx(1 / (1 / 32 + 1 / 9))
    # NCHW: PyTorch's depthwise (C*M, 1, k, k) and pointwise (C_out, C*M, 1, 1) weights
    got_nchw = depthwise_separable_conv(
        jnp.moveaxis(x, -1, 1),
        jnp.transpose(w_dw, (3, 2, 0, 1)),
        jnp.transpose(w_pw, (3, 2, 0, 1)),
        stride=2,
        padding=1,
        layout="NCHW",
        impl=impl,
    )
    assert rel_err(got_nchw, jnp.moveaxis(got, -1, 1)) <= TOL64


# --------------------------------------------------------------------------------------------
# errata 1-3 (docs/errata.md)


def test_seed_errata_1_padding_total_vs_per_side_and_dilation():
    x = jnp.zeros((1, 7, 1))
    # p = 1 per side (p_total = 2), k = 3, s = 2: out = 4
    out = shape_of(conv, x, jnp.zeros((3, 1, 1)), stride=2, padding=1)[1]
    assert out == (7 - 3 + 2 * 1) // 2 + 1 == 4  # the seed's summary formula, p per side
    assert out == (7 - 3 + 2 + 2) // 2  # its item 3, (n - k + p_h + s)/s with p_h the *total*
    assert out != (7 - 3 + 1 + 2) // 2  # item 3 read with p per side is wrong
    # dilation (missing from the seed) enlarges the kernel to d(k-1)+1; (lo, hi) pairs are
    # general: out = floor((n + lo + hi - d(k-1) - 1)/s) + 1, checked against lax
    w = jnp.zeros((3, 1, 1))
    out = shape_of(conv, x, w, stride=2, padding=((2, 1),), dilation=3)[1]
    want = shape_of(lax_conv, x, w, stride=(2,), padding=[(2, 1)], dilation=(3,), groups=1)[1]
    assert out == want == (7 + 2 + 1 - 3 * 2 - 1) // 2 + 1 == 2
    assert out != (7 - 3 + 3) // 2 + 1  # the seed's formula, ignoring dilation


def test_seed_errata_2_transposed_conv_size():
    x = jnp.zeros((1, 4, 1))
    w = jnp.zeros((3, 1, 1))
    assert shape_of(conv_transpose, x, w, stride=2)[1] == (4 - 1) * 2 + 3 == 9  # seed: p=0 holds
    out = shape_of(conv_transpose, x, w, stride=2, padding=1, output_padding=1, dilation=1)[1]
    assert out == (4 - 1) * 2 - 2 * 1 + 1 * (3 - 1) + 1 + 1 == 8  # PyTorch's rule
    assert out != (4 - 1) * 2 + 3  # the seed's formula
    out = shape_of(conv_transpose, x, w, stride=2, dilation=2)[1]
    assert out == (4 - 1) * 2 + 2 * (3 - 1) + 1 == 11 != (4 - 1) * 2 + 3
    # and it inverts conv's size: conv maps 8 back to 4
    assert shape_of(conv, jnp.zeros((1, 8, 1)), w, stride=2, padding=1)[1] == 4


def test_seed_errata_3_dilation_keeps_the_size_only_with_stride_1_and_matching_padding(x64):
    x = normal(0, (1, 9, 9, 1))
    w3 = normal(1, (3, 3, 1, 1))
    # stride 1, padding d(k-1)/2 = 2: size kept
    assert shape_of(conv, x, w3, dilation=2, padding=2)[1:3] == (9, 9)
    assert shape_of(conv, x, w3, dilation=2, padding=1)[1:3] == (7, 7)  # other padding: not kept
    assert shape_of(conv, x, w3, dilation=2, padding=2, stride=2)[1:3] == (5, 5)  # stride: not
    # 3x3 with d=2 is a 5x5 kernel with zeros between the taps: the same field, 9 parameters
    w5 = jnp.zeros((5, 5, 1, 1)).at[::2, ::2].set(w3)
    assert rel_err(fast(functools.partial(conv, dilation=2))(x, w3), fast(conv)(x, w5)) <= TOL64
    # the receptive field of one output pixel is 5x5: its gradient's support spans 5 rows/cols
    g = fast(jax.grad(lambda x: conv(x, w3, dilation=2)[0, 2, 2, 0]))(x)[0, :, :, 0]
    rows, cols = np.nonzero(np.asarray(g))
    assert (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) == (5, 5)
    assert w3.size == 9 < w5.size == 25


# --------------------------------------------------------------------------------------------
# bad input

X2, W2 = jnp.ones((1, 5, 5, 4)), jnp.ones((3, 3, 2, 6))
BAD_CONV = [
    (dict(x=jnp.ones((1, 5, 5, 3)), groups=1), "channel mismatch"),
    (dict(w=jnp.ones((3, 3, 4, 6)), groups=2), "channel mismatch"),
    (dict(groups=3, w=jnp.ones((3, 3, 1, 6))), r"C_in=4 must be divisible by groups=3"),
    (dict(groups=2, w=jnp.ones((3, 3, 2, 5))), r"C_out=5 must be divisible by groups=2"),
    (dict(groups=0), "groups must be >= 1"),
    (dict(w=jnp.ones((3, 2, 6))), "input x must have rank 3"),
    (dict(w=jnp.ones((3,) * 5 + (2, 6))), "kernel w must have rank 3, 4 or 5"),
    (dict(w=jnp.ones((6, 6, 2, 6))), "larger than the padded input"),
    (dict(dilation=3), "larger than the padded input"),
    (dict(stride=0), "stride must be >= 1"),
    (dict(dilation=(1, 0)), "dilation must be >= 1"),
    (dict(padding=-1), "padding must be non-negative"),
    (dict(padding=((0, 1), (-1, 0))), "padding must be non-negative"),
    (dict(padding="FULL"), "padding must be an int, a tuple, 'VALID' or 'SAME'"),
    (dict(layout="NHCW"), "layout must be one of"),
    (dict(layout="NDHWC"), "names a 3-D layout"),
    (dict(impl="cudnn"), "impl must be one of"),
]


@pytest.mark.parametrize("kwargs,match", BAD_CONV)
def test_conv_bad_input(kwargs, match):
    kwargs = dict(kwargs)
    x, w = kwargs.pop("x", X2), kwargs.pop("w", W2)
    with pytest.raises(ValueError, match=match):
        conv(x, w, **{"groups": 2, **kwargs})


def test_conv_bad_types():
    with pytest.raises(TypeError, match="must have a floating dtype"):
        conv(jnp.ones((1, 5, 5, 4), jnp.int32), W2, groups=2)
    with pytest.raises(TypeError, match="groups must be an int"):
        conv(X2, W2, groups=2.0)
    with pytest.raises(TypeError, match="stride must contain Python ints"):
        conv(X2, W2, groups=2, stride=(1, 1.5))


Y2, WT = jnp.ones((1, 4, 4, 6)), jnp.ones((3, 3, 2, 6))  # (*k, C_out_t/G, C_in_t)
BAD_TRANSPOSE = [
    (dict(w=jnp.ones((3, 3, 2, 4))), "channel mismatch"),
    (dict(groups=4), r"C_in=6 must be divisible by groups=4"),
    (dict(w=jnp.ones((3, 2, 6))), "input x must have rank 3"),
    (dict(stride=2, output_padding=2), "output_padding=.* must be smaller than either"),
    (dict(stride=1, dilation=1, output_padding=1), "must be smaller than either"),
    (dict(output_padding=-1), "output_padding must be >= 0"),
    (dict(stride=0), "stride must be >= 1"),
    (dict(dilation=0), "dilation must be >= 1"),
    (dict(padding=-1), "padding must be non-negative"),
    (dict(padding="SAME"), "padding must be an int or tuple here"),
    (dict(padding=4), "leaves no output"),
    (dict(layout="CHWN"), "layout must be one of"),
    (dict(impl="fft"), "impl must be one of"),
]


@pytest.mark.parametrize("kwargs,match", BAD_TRANSPOSE)
def test_conv_transpose_bad_input(kwargs, match):
    kwargs = dict(kwargs)
    w = kwargs.pop("w", WT)
    with pytest.raises(ValueError, match=match):
        conv_transpose(Y2, w, **kwargs)


@pytest.mark.parametrize("impl", IMPLS)
def test_output_padding_below_dilation_is_allowed(impl, x64):
    # PyTorch's rule is "smaller than stride OR dilation": stride 1, dilation 2 allows 1; the
    # forward conv of that size has one more output than the input, whose adjoint the kernels
    # take of the input padded with a zero (xla interleaves and pads instead)
    y, w = normal(0, (1, 4, 5, 6)), normal(1, (3, 3, 2, 6))
    kw = dict(dilation=2, output_padding=1, padding=1, groups=3)
    got = conv_transpose(y, w, impl=impl, **kw)
    assert got.shape == (1, 7, 8, 6)  # (4-1) - 2 + 2*(3-1) + 1 + 1 = 7, (5-1) - 2 + 4 + 2 = 8
    assert rel_err(got, conv_transpose(y, w, impl="xla", **kw)) <= TOL64
    assert conv_transpose(Y2, WT, dilation=2, output_padding=1).shape == (1, 9, 9, 2)


def test_depthwise_separable_bad_pointwise():
    with pytest.raises(ValueError, match="pointwise kernel must be 1x1"):
        depthwise_separable_conv(X2, jnp.ones((3, 3, 1, 4)), jnp.ones((3, 3, 4, 2)))


# --------------------------------------------------------------------------------------------
# impl dispatch to dlref.kernels (the contract the kernels package implements)


def _conv_eqns(fn, *args, name="dlref_conv"):
    return [e for e in jax.make_jaxpr(fn)(*args).eqns if e.primitive.name == name]


def test_kernels_get_validated_channels_last_arguments(x64):
    # NCHW, OIHW: C_in 4, C_out 6, groups 2; "SAME" at stride 2 resolved to (lo, hi) pairs
    x, w = normal(0, (2, 4, 7, 6)), normal(1, (6, 2, 3, 3))
    kw = dict(stride=2, padding="SAME", groups=2, layout="NCHW")
    want = conv(x, w, impl="xla", **kw)
    assert rel_err(conv(x, w, impl="im2col", **kw), want) <= TOL64
    (eqn,) = _conv_eqns(functools.partial(conv, impl="im2col", **kw), x, w)
    assert [v.aval.shape for v in eqn.invars] == [(2, 7, 6, 4), (3, 3, 2, 6)]
    assert eqn.params["impl"] == "im2col"
    assert eqn.params["geometry"] == ConvGeometry(
        in_sizes=(7, 6),
        kernel=(3, 3),
        stride=(2, 2),
        padding=((1, 1), (0, 1)),
        dilation=(1, 1),
        out_sizes=(4, 3),
        groups=2,
        c_in=4,
        c_out=6,
    )


def test_conv_transpose_binds_the_input_gradient_of_its_forward_conv(x64):
    # conv_transpose is dlref_conv_transpose with the geometry of the conv it is the adjoint
    # of: that conv maps the 12-pixel output, (6-1)*2 - 2*1 + (3-1) + 1 + 1 (PyTorch's rule),
    # back to the 6-pixel input.
    x, wt = normal(0, (1, 6, 6, 2)), normal(2, (3, 3, 4, 2))  # (*k, C_out_t, C_in_t)
    kw = dict(stride=2, padding=1, output_padding=1)
    f = functools.partial(conv_transpose, impl="im2col", **kw)
    (eqn,) = _conv_eqns(f, x, wt, name="dlref_conv_transpose")
    geo = eqn.params["geometry"]
    assert (geo.in_sizes, geo.out_sizes, geo.c_in, geo.c_out) == ((12, 12), (6, 6), 4, 2)
    assert (geo.stride, geo.padding) == ((2, 2), ((1, 1), (1, 1)))
    assert rel_err(f(x, wt), conv_transpose(x, wt, impl="xla", **kw)) <= TOL64


def test_auto_on_the_cpu_never_runs_pallas(x64):
    # dlref.convolution.auto_impl's CPU rule (from dlref bench's CPU suite): XLA for a dense
    # 3x3, the per-tap reference for a depthwise conv, im2col's matmul for a 1x1
    x = normal(0, (1, 6, 6, 4))
    cases = [
        (normal(1, (3, 3, 4, 8)), dict(padding=1), None),
        (normal(2, (3, 3, 1, 8)), dict(padding=1, groups=4), "reference"),
        (normal(3, (1, 1, 4, 8)), {}, "im2col"),
    ]
    for w, kw, impl in cases:
        eqns = _conv_eqns(functools.partial(conv, impl="auto", **kw), x, w)
        assert [e.params["impl"] for e in eqns] == ([] if impl is None else [impl])
        assert rel_err(conv(x, w, impl="auto", **kw), conv(x, w, impl="xla", **kw)) <= TOL64


H100 = jax.sharding.AbstractDevice(device_kind="NVIDIA H100", num_cores=None, platform="gpu")
H100_MESH = jax.sharding.AbstractMesh(
    (1,), ("x",), (jax.sharding.AxisType.Explicit,), abstract_device=H100
)


@pytest.mark.parametrize(
    "measured,pallas_ms,xla_ms,want",
    [(True, 0.05, 0.08, "pallas"), (True, 0.09, 0.08, "xla"), (False, 0.05, 0.08, "xla")],
    ids=["measured-faster", "measured-slower", "unmeasured"],
)
def test_auto_on_a_gpu_picks_pallas_only_where_a_measured_entry_beat_xla(
    measured, pallas_ms, xla_ms, want, tmp_path, monkeypatch
):
    from dlref.kernels import tuning

    x = jax.ShapeDtypeStruct((8, 56, 56, 64), jnp.bfloat16)
    w = jax.ShapeDtypeStruct((3, 3, 64, 64), jnp.bfloat16)
    sig = tuning.signature_of(x.shape, w.shape, padding=1)
    entry = tuning.TuningEntry(
        "NVIDIA H100",
        sig,
        "bfloat16",
        tuning.ConvBlocks(),
        measured,
        "test",
        pallas_ms,
        xla_time_ms=xla_ms,
    )
    tuning.TuningTable([entry]).save(tmp_path / "t.json")
    monkeypatch.setenv(tuning.ENV_VAR, str(tmp_path / "t.json"))
    with jax.sharding.use_abstract_mesh(H100_MESH):
        jaxpr = jax.make_jaxpr(functools.partial(conv, padding=1, impl="auto"))(x, w)
    names = {e.primitive.name: e.params.get("impl") for e in jaxpr.eqns}
    if want == "pallas":
        assert names.get("dlref_conv") == "pallas"
    else:
        assert "conv_general_dilated" in names and "dlref_conv" not in names


def test_pallas_is_not_imported_with_dlref():
    # The primitives (dlref.kernels.primitives) are light; Pallas is imported on first use.
    code = (
        "import sys, dlref, dlref.convolution; "
        "print(any(m.startswith('jax.experimental.pallas') for m in sys.modules), "
        "'dlref.kernels.pallas_igemm' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize(
    "fn", ["conv", "conv_transpose", "im2col_conv", "pallas_conv"], ids=lambda f: f
)
def test_non_int_groups_is_a_type_error_everywhere(fn):
    # One validation (dlref.kernels.blocks.conv_geometry, through _checks.check_int): one
    # exception type for one fault, whichever entry point.
    from dlref import kernels

    f = {"conv": conv, "conv_transpose": conv_transpose}.get(fn) or getattr(kernels, fn)
    with pytest.raises(TypeError, match=r"groups must be an int, got 1\.5"):
        f(jnp.ones((1, 4, 4, 2)), jnp.ones((3, 3, 2, 2)), groups=1.5)
