"""dlref.testing: assert_op_close, op_errors, check_op_gradients, tolerance, rel_err, strategies."""

from __future__ import annotations

import functools
import math
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax import lax

import dlref
from dlref.testing import (
    TOLERANCES,
    assert_op_close,
    check_op_gradients,
    op_errors,
    rel_err,
    tolerance,
)
from dlref.testing.strategies import (
    ConvConfig,
    PoolConfig,
    arrays,
    conv_configs,
    conv_transpose_configs,
    pool_configs,
)
from tests.oracles import _pool_out_size

# --------------------------------------------------------------------------------------------
# import hygiene


def test_import_dlref_and_dlref_testing_do_not_import_hypothesis():
    code = (
        "import sys, dlref, dlref.testing\n"
        "dlref.testing.assert_op_close\n"
        "assert 'hypothesis' not in sys.modules, sorted(m for m in sys.modules if 'hypo' in m)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# --------------------------------------------------------------------------------------------
# tolerance and rel_err


def test_tolerance_table():
    # The table documented in dlref.testing._compare.TOLERANCES and tolerance()'s docstring.
    assert TOLERANCES == {"float64": 1e-12, "float32": 1e-5, "bfloat16": 2e-2, "float16": 2e-3}
    assert tolerance(jnp.float32) == 1e-5 and tolerance("bfloat16") == 2e-2
    assert tolerance(np.dtype("float16")) == 2e-3
    # each is a few ulps (16-bit) to a few thousand ulps (float64) of its dtype's eps
    for name, tol in TOLERANCES.items():
        assert 2 <= tol / float(jnp.finfo(name).eps) <= 5000
    with pytest.raises(TypeError, match="tolerance: dtype must be one of .* got 'int32'"):
        tolerance(jnp.int32)
    with pytest.raises(TypeError, match="tolerance: dtype must be a floating dtype"):
        tolerance("no-such-dtype")


@pytest.mark.parametrize("dtype", list(TOLERANCES))
def test_tolerance_separates_roundoff_from_a_wrong_conv(dtype):
    """Why the table holds these values: dlref.conv in each dtype against the float64
    reference on the same rounded inputs stays below it; a padding off by one does not."""
    with jax.enable_x64(True):
        kx, kw = jax.random.split(jax.random.key(0))
        x = jax.random.normal(kx, (1, 7, 7, 8), jnp.float64).astype(dtype)
        w = jax.random.normal(kw, (3, 3, 8, 8), jnp.float64).astype(dtype)
        ref = functools.partial(dlref.conv, padding=1)
        off_by_one = functools.partial(dlref.conv, padding=((1, 1), (0, 2)))
        errs = op_errors(
            jax.jit(ref), jax.jit(ref), x, w, reference_dtype=jnp.float64, modes=("value", "vjp")
        )
        worst = max(e for m in errs.values() for e in m.values())
        assert worst <= tolerance(dtype)
        if dtype != "float64":  # the roundoff is there: the test can see it
            assert worst >= tolerance(dtype) / 1000
        bad = op_errors(
            jax.jit(off_by_one), jax.jit(ref), x, w, reference_dtype=jnp.float64, modes=("value",)
        )
        assert bad["value"]["out"] > 10 * tolerance(dtype)


def test_rel_err_is_normwise():
    # max|a-b| = 0.1, max|b| = 10 -> 0.01
    assert rel_err(jnp.array([10.0, 1.0]), jnp.array([10.0, 1.1])) == pytest.approx(0.01, rel=1e-5)
    assert rel_err(jnp.zeros(3), jnp.zeros(3)) == 0.0
    assert rel_err(jnp.ones(3), jnp.zeros(3)) == math.inf
    # over all leaves of a pytree: 0.5 / 4
    a = {"u": jnp.array([1.0, 2.5]), "v": jnp.array([4.0])}
    b = {"u": jnp.array([1.0, 2.0]), "v": jnp.array([4.0])}
    assert rel_err(a, b) == 0.125


def test_rel_err_nan_inf_and_shapes():
    nan, inf = jnp.nan, jnp.inf
    # NaN anywhere gives NaN (NaN propagates), so `rel_err(a, b) <= tol` fails on it
    for a, b in (([nan, 1.0], [nan, 1.0]), ([nan, 1.0], [1.0, 1.0]), ([1.0, 1.0], [nan, 1.0])):
        err = rel_err(jnp.array(a), jnp.array(b))
        assert math.isnan(err) and not err <= 1.0, (a, b, err)
    assert math.isnan(
        rel_err({"u": jnp.ones(2), "v": np.array([nan])}, {"u": jnp.ones(2), "v": np.ones(1)})
    )
    assert rel_err(jnp.array([inf, 2.0]), jnp.array([inf, 2.0])) == 0.0
    assert rel_err(jnp.array([-inf, 2.0]), jnp.array([inf, 2.0])) == math.inf
    assert rel_err(jnp.ones(3), jnp.ones(4)) == math.inf
    with pytest.raises(ValueError, match="rel_err: the pytrees differ"):
        rel_err((jnp.ones(2),), [jnp.ones(2)])


@pytest.mark.parametrize("x64", [False, True])
def test_rel_err_reduces_accelerator_arrays_where_they_live_with_the_host_answer(x64):
    """Jax arrays on a GPU/TPU are reduced on the device (dlref.kernels.bench and
    bench/gpu_check.py compare ResNet activations); the device reductions, run here on CPU
    arrays, give exactly the host path's (diff, scale) on every NaN/inf/zero case."""
    from dlref.testing._compare import _diff_scale, _diff_scale_device

    nan, inf = np.nan, np.inf
    cases = [
        ([10.0, 1.0], [10.0, 1.1]),
        ([nan, 1.0], [nan, 1.0]),
        ([nan, 1.0], [1.0, 1.0]),
        ([1.0, 1.0], [nan, 1.0]),
        ([inf, 2.0], [inf, 2.0]),
        ([-inf, 2.0], [inf, 2.0]),
        ([inf, 2.0], [3.0, 2.0]),
        ([nan, inf], [nan, inf]),
        ([1.0, 0.0], [0.0, 0.0]),
        ([0.0], [0.0]),
    ]
    with jax.enable_x64(x64):
        for a, b in cases:
            a, b = jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.bfloat16)
            mismatch, any_finite, diff, scale = jax.device_get(_diff_scale_device(a, b))
            got = (np.inf, 0.0) if mismatch else (diff, scale) if any_finite else (0.0, 0.0)
            assert tuple(map(float, got)) == _diff_scale(a, b), (a, b)


# --------------------------------------------------------------------------------------------
# assert_op_close / op_errors


def _wrong_vjp():
    """The identity with a doubled VJP (and no JVP)."""

    @jax.custom_vjp
    def f(x):
        return x

    f.defvjp(lambda x: (x, None), lambda _, ct: (2 * ct,))
    return f


def _wrong_jvp():
    """The identity with a doubled JVP (hence a doubled VJP too)."""

    @jax.custom_jvp
    def f(x):
        return x

    f.defjvp(lambda p, t: (p[0], 2 * t[0]))
    return f


def test_assert_op_close_passes_on_an_equivalent_formula():
    x = jnp.linspace(-2.0, 2.0, 7)
    assert_op_close(jnp.tanh, lambda x: 2 * jax.nn.sigmoid(2 * x) - 1, x)


def test_wrong_value_names_mode_leaf_error_and_tolerance():
    with pytest.raises(
        AssertionError,
        match=r"assert_op_close: value: output leaf out \(shape \(3,\)\): normwise relative "
        r"error 0\.1 exceeds the tolerance rtol=1e-05",
    ):
        assert_op_close(lambda x: 1.1 * x, lambda x: x, jnp.ones(3))


def test_wrong_vjp_is_caught_and_named():
    f = _wrong_vjp()
    assert_op_close(f, lambda x: x, jnp.ones(3), modes=("value",))  # the values agree
    with pytest.raises(AssertionError, match=r"vjp: output leaf args\[0\] .*error 1 exceeds"):
        assert_op_close(f, lambda x: x, jnp.ones(3), modes=("value", "vjp"))


def test_wrong_jvp_is_caught_and_named():
    f = _wrong_jvp()
    with pytest.raises(AssertionError, match=r"jvp: output leaf out .*error 1 exceeds"):
        assert_op_close(f, lambda x: x, jnp.ones(3), modes=("jvp",))
    # without a JVP rule the jvp mode raises jax's error, it does not pass
    with pytest.raises(TypeError, match="can't apply forward-mode autodiff"):
        assert_op_close(_wrong_vjp(), lambda x: x, jnp.ones(3), modes=("jvp",))


def test_pytrees_in_and_out_name_the_leaf():
    params = {"w": jnp.arange(1.0, 4.0), "b": jnp.array(0.5)}
    x = jnp.array([0.5, -1.0, 2.0])

    def ref(p, x):
        y = p["w"] * x + p["b"]
        return y, {"sum": y.sum()}

    def bad_grad_w(p, x):  # the value is right; the gradient w.r.t. w is doubled
        w = 2 * p["w"] - jax.lax.stop_gradient(p["w"])
        return ref({"w": w, "b": p["b"]}, x)

    assert_op_close(ref, ref, params, x)
    errs = op_errors(bad_grad_w, ref, params, x)
    assert errs["value"] == {"out[0]": 0.0, "out[1]['sum']": 0.0}
    assert set(errs["vjp"]) == {"args[0]['b']", "args[0]['w']", "args[1]"}
    assert errs["vjp"]["args[0]['w']"] > 0.5 and errs["vjp"]["args[1]"] == 0.0
    with pytest.raises(AssertionError, match=r"vjp: output leaf args\[0\]\['w'\]"):
        assert_op_close(bad_grad_w, ref, params, x, modes=("vjp",))
    with pytest.raises(AssertionError, match=r"jvp: output leaf out\[0\]"):
        assert_op_close(bad_grad_w, ref, params, x, modes=("jvp",))


def test_integer_arguments_are_held_fixed_and_integer_outputs_compared_exactly():
    z = jnp.array([[0.1, 2.0, -1.0], [3.0, 0.5, 0.2]])
    labels = jnp.array([1, 2])

    def loss(z, y):
        return -jnp.take_along_axis(jax.nn.log_softmax(z), y[:, None], 1)[:, 0], z.argmax(-1)

    assert_op_close(loss, loss, z, labels)
    shifted = lambda z, y: (loss(z, y)[0], loss(z, y)[1] + 1)  # noqa: E731
    with pytest.raises(AssertionError, match=r"value: integer output leaf out\[1\] differs"):
        assert_op_close(shifted, loss, z, labels)


def test_float64_under_x64_uses_the_float64_tolerance():
    with jax.enable_x64(True):
        x = jnp.linspace(0.1, 1.0, 5)
        assert x.dtype == jnp.float64
        f = lambda x: x * (1 + 1e-9)  # noqa: E731 - fine in float32, wrong in float64
        with pytest.raises(AssertionError, match="rtol=1e-12"):
            assert_op_close(f, lambda x: x, x)
        assert_op_close(f, lambda x: x, x.astype(jnp.float32))
        # the cotangent and tangent are float64 too: a 1e-14 change in the VJP is seen
        errs = op_errors(lambda x: x + 1e-14 * jnp.sin(x), lambda x: x, x)
        assert 1e-16 < errs["vjp"]["args[0]"] < 1e-13


def test_reference_dtype_compares_a_16_bit_op_with_a_precise_reference():
    x = jnp.linspace(-3.0, 3.0, 64, dtype=jnp.float32).astype(jnp.bfloat16)
    # jax.nn.gelu in bfloat16 against itself in float32, on the same rounded inputs
    assert_op_close(jax.nn.gelu, jax.nn.gelu, x, reference_dtype=jnp.float32)
    errs = op_errors(jax.nn.gelu, jax.nn.gelu, x, reference_dtype=jnp.float32)
    assert 0 < errs["value"]["out"] <= 2e-2  # bfloat16 rounding, seen and within tolerance
    # a 5% slip in bfloat16 is caught at the bfloat16 tolerance
    with pytest.raises(AssertionError, match="rtol=0.02"):
        assert_op_close(lambda x: 1.05 * jax.nn.gelu(x), jax.nn.gelu, x, reference_dtype="float32")


def test_zero_reference_leaf_is_measured_against_the_mode():
    x = jnp.array([1.0, 2.0, 3.0])

    def ref(x):
        return x, jnp.zeros(2)

    def roundoff(x):  # a structural zero computed as 3e-8 in float32: roundoff of the others
        return x, jnp.full(2, 3e-8)

    assert_op_close(roundoff, ref, x, modes=("value",))
    with pytest.raises(AssertionError, match=r"value: output leaf out\[1\]"):
        assert_op_close(lambda x: (x, jnp.full(2, 1e-3)), ref, x, modes=("value",))
    # explicit atol
    assert_op_close(lambda x: x + 1e-3, lambda x: x, x, atol=2e-3, modes=("value",))


def test_nan_and_inf_must_sit_at_the_same_places():
    x = jnp.array([-1.0, 0.0, 4.0])
    assert_op_close(jnp.log, jnp.log, x, modes=("value",))  # nan, -inf, log 4 on both sides
    with pytest.raises(AssertionError, match="error inf exceeds"):
        assert_op_close(lambda x: jnp.log(jnp.abs(x)), jnp.log, x, modes=("value",))


def test_same_directions_through_both_sides():
    # Two copies of one function give exactly zero errors in every mode: the cotangent and
    # tangent are the same arrays on both sides, and so is the key's draw.
    x = jax.random.normal(jax.random.key(3), (4, 5))
    errs = op_errors(jnp.sin, jnp.sin, x, key=7)
    assert errs == {"value": {"out": 0.0}, "vjp": {"args[0]": 0.0}, "jvp": {"out": 0.0}}


def test_argument_errors():
    x = jnp.ones(3)
    with pytest.raises(ValueError, match=r"assert_op_close: modes must be a non-empty subset"):
        assert_op_close(jnp.sin, jnp.sin, x, modes="value")
    with pytest.raises(ValueError, match=r"assert_op_close: modes must be .*got \('grad',\)"):
        assert_op_close(jnp.sin, jnp.sin, x, modes=("grad",))
    with pytest.raises(TypeError, match="assert_op_close: key must be a jax.random key"):
        assert_op_close(jnp.sin, jnp.sin, x, key="seed")
    with pytest.raises(ValueError, match=r"modes \['vjp', 'jvp'\] need a floating array"):
        assert_op_close(jnp.negative, jnp.negative, jnp.arange(3))
    with pytest.raises(ValueError, match="assert_op_close: argnums must be positions"):
        assert_op_close(jnp.sin, jnp.sin, x, argnums=(1,))
    with pytest.raises(AssertionError, match="fn and reference return different pytrees"):
        assert_op_close(lambda x: (x,), lambda x: [x], x)
    with pytest.raises(AssertionError, match=r"output leaf out has shape \(1, 3\), the ref"):
        assert_op_close(lambda x: x[None], lambda x: x, x, modes=("value",))
    with pytest.raises(TypeError, match="reference_dtype must be floating"):
        assert_op_close(jnp.sin, jnp.sin, x, reference_dtype=jnp.int32)
    with pytest.raises(TypeError, match=r"no default tolerance for \['float8_e4m3fn'\]"):
        assert_op_close(lambda x: x, lambda x: x, x.astype(jnp.float8_e4m3fn), modes=("value",))
    with pytest.raises(ValueError, match="op_errors: modes must be"):
        op_errors(jnp.sin, jnp.sin, x, modes=())


# --------------------------------------------------------------------------------------------
# check_op_gradients


def test_check_op_gradients_float64_and_float32():
    with jax.enable_x64(True):
        check_op_gradients(jax.jit(jnp.sin), jnp.linspace(0.1, 1.0, 4), order=2)
    check_op_gradients(jax.jit(jnp.sin), jnp.linspace(0.1, 1.0, 4))


def test_check_op_gradients_catches_a_wrong_derivative():
    f = _wrong_jvp()
    with jax.enable_x64(True):
        with pytest.raises(AssertionError):
            check_op_gradients(f, jnp.linspace(0.1, 1.0, 4), order=1, modes=("fwd",))
        with pytest.raises(AssertionError):
            check_op_gradients(f, jnp.linspace(0.1, 1.0, 4), order=1, modes=("rev",))


def test_check_op_gradients_holds_integers_and_argnums_fixed():
    with jax.enable_x64(True):
        z = jnp.array([[0.1, 2.0, -1.0], [3.0, 0.5, 0.2]])
        y = jnp.array([1, 2])
        scale = jnp.array(2.0)

        def loss(z, y, scale):
            picked = jnp.take_along_axis(jax.nn.log_softmax(z * scale), y[:, None], 1)
            return -picked.sum()

        check_op_gradients(jax.jit(loss), z, y, scale, order=1)
        check_op_gradients(jax.jit(loss), z, y, scale, argnums=(2,), order=1)


def test_check_op_gradients_errors():
    with pytest.raises(TypeError, match="check_op_gradients: finite differences need float32"):
        check_op_gradients(jnp.sin, jnp.ones(3, jnp.bfloat16))
    with pytest.raises(TypeError, match="check_op_gradients: no floating array argument"):
        check_op_gradients(jnp.negative, jnp.arange(3))
    with pytest.raises(ValueError, match="check_op_gradients: order must be a positive int"):
        check_op_gradients(jnp.sin, jnp.ones(3), order=0)
    with pytest.raises(ValueError, match="check_op_gradients: modes must be a non-empty"):
        check_op_gradients(jnp.sin, jnp.ones(3), modes=("backward",))


# --------------------------------------------------------------------------------------------
# strategies: every draw is valid (thousands of draws, shapes only: nothing is compiled)

_DN = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC"), 3: ("NDHWC", "DHWIO", "NDHWC")}


def _spec(shape):
    return jax.ShapeDtypeStruct(shape, jnp.float32)


def _lax_conv_shape(x_shape, w_shape, stride, pads, dilation, groups, lhs_dilation=None):
    return jax.eval_shape(
        lambda x, w: lax.conv_general_dilated(
            x,
            w,
            stride,
            pads,
            lhs_dilation=lhs_dilation,
            rhs_dilation=dilation,
            dimension_numbers=_DN[len(stride)],
            feature_group_count=groups,
        ),
        _spec(x_shape),
        _spec(w_shape),
    ).shape


def _check_conv(cfg: ConvConfig) -> None:
    x, w = _spec(cfg.input_shape), _spec(cfg.kernel_shape)
    # dlref's validation and shapes (impl="xla" traces one lax op: no tap loop to trace)
    got = jax.eval_shape(functools.partial(dlref.conv, **cfg.kwargs(), impl="xla"), x, w)
    assert got.shape == cfg.output_shape
    # lax's own shape rule, on the explicit pairs and on the string itself
    args = (cfg.input_shape, cfg.kernel_shape, cfg.stride)
    assert _lax_conv_shape(*args, cfg.padding_pairs, cfg.dilation, cfg.groups) == got.shape
    if isinstance(cfg.padding, str):
        assert _lax_conv_shape(*args, cfg.padding, cfg.dilation, cfg.groups) == got.shape
    assert min(got.shape) >= 1


def _check_conv_transpose(cfg) -> None:
    x, w = _spec(cfg.input_shape), _spec(cfg.kernel_shape)
    got = jax.eval_shape(functools.partial(dlref.conv_transpose, **cfg.kwargs(), impl="xla"), x, w)
    assert got.shape == cfg.output_shape and min(got.shape) >= 1
    assert all(a < max(s, d) for a, s, d in zip(cfg.output_padding, cfg.stride, cfg.dilation))
    k = cfg.kernel_shape[:-2]
    # lax: the same size as a conv of the zero-interleaved input with the flipped kernel
    pads = [
        (d * (kk - 1) - lo, d * (kk - 1) - hi + a)
        for kk, d, a, (lo, hi) in zip(k, cfg.dilation, cfg.output_padding, cfg.padding_pairs)
    ]
    g, cout_g, cin = cfg.groups, cfg.kernel_shape[-2], cfg.kernel_shape[-1]
    w_fwd = (*k, cin // g, cout_g * g)
    shape = _lax_conv_shape(
        cfg.input_shape, w_fwd, (1,) * cfg.nd, pads, cfg.dilation, g, lhs_dilation=cfg.stride
    )
    assert shape == got.shape
    # the adjoint: the forward conv maps the output size back to the input size
    if all(a < s for a, s in zip(cfg.output_padding, cfg.stride)):
        back = _lax_conv_shape(
            got.shape, cfg.kernel_shape, cfg.stride, cfg.padding_pairs, cfg.dilation, g
        )
        assert back[1:-1] == cfg.input_shape[1:-1]


def _check_pool(cfg: PoolConfig, trace: bool) -> None:
    pairs = cfg.padding_pairs
    assert all(max(lo, hi) <= k // 2 for k, (lo, hi) in zip(cfg.window, pairs))
    sizes = cfg.input_shape[1:-1]
    # PyTorch's output size, written apart from dlref (tests/oracles.py)
    want = tuple(
        _pool_out_size(n, k, s, lo, hi, d, cfg.ceil_mode)
        for n, k, s, d, (lo, hi) in zip(sizes, cfg.window, cfg.stride, cfg.dilation, pairs)
    )
    assert cfg.output_shape == (cfg.input_shape[0], *want, cfg.input_shape[-1])
    assert min(want) >= 1
    # every window sees an input pixel (else max pooling would return -inf)
    for n, k, s, d, (lo, _), o in zip(sizes, cfg.window, cfg.stride, cfg.dilation, pairs, want):
        pos = (np.arange(o) * s - lo)[:, None] + np.arange(k)[None, :] * d
        assert ((pos >= 0) & (pos < n)).any(axis=1).all()
    if not cfg.ceil_mode:  # lax's shape rule knows no ceil mode
        shape = jax.eval_shape(
            lambda x: lax.reduce_window(
                x,
                -jnp.inf,
                lax.max,
                (1, *cfg.window, 1),
                (1, *cfg.stride, 1),
                ((0, 0), *pairs, (0, 0)),
                window_dilation=(1, *cfg.dilation, 1),
            ),
            _spec(cfg.input_shape),
        ).shape
        assert shape == cfg.output_shape
    if trace:  # dlref accepts it (tracing its tap loop, a few ms)
        op = dlref.max_pool if cfg.kind == "max" else dlref.avg_pool
        got = jax.eval_shape(lambda x: op(x, cfg.window, **cfg.kwargs()), _spec(cfg.input_shape))
        assert got.shape == cfg.output_shape


# Batches of draws per example amortise hypothesis's per-example cost: 60 x 25 conv, 40 x 25
# transposed conv and 40 x 25 pooling configurations, 3500 in all, traced for shapes only.
_MANY = settings(max_examples=60, deadline=None)


@_MANY
@given(st.lists(conv_configs(), min_size=25, max_size=25))
def test_conv_configs_are_all_valid(cfgs):
    for cfg in cfgs:
        _check_conv(cfg)


@settings(_MANY, max_examples=40)
@given(st.lists(conv_transpose_configs(), min_size=25, max_size=25))
def test_conv_transpose_configs_are_all_valid(cfgs):
    for cfg in cfgs:
        _check_conv_transpose(cfg)


@settings(_MANY, max_examples=40)
@given(st.lists(pool_configs(padding_forms=("int", "per_dim", "pairs")), min_size=25, max_size=25))
def test_pool_configs_are_all_valid(cfgs):
    for i, cfg in enumerate(cfgs):
        _check_pool(cfg, trace=i < 3)


@settings(max_examples=30, deadline=None)
@given(
    conv_configs(
        ranks=(1, 2), max_stride=2, groups=False, padding_forms=("SAME",), strided_dilation=False
    ),
    conv_transpose_configs(ranks=(3,), padding_forms=("int",), groups=False),
    pool_configs(ranks=(2,), kinds=("avg",)),
)
def test_strategy_arguments_are_respected(conv, tconv, pool):
    assert conv.nd in (1, 2) and conv.padding == "SAME" and conv.groups == 1
    assert max(conv.stride) <= 2
    assert all(s == 1 or d == 1 for s, d in zip(conv.stride, conv.dilation))
    assert tconv.nd == 3 and isinstance(tconv.padding, int) and max(tconv.kernel_shape[:3]) <= 2
    assert pool.kind == "avg" and pool.nd == 2 and pool.dilation == (1, 1)
    assert all(len(p) == 2 for p in pool.padding)  # pairs by default


def test_strategy_argument_errors():
    with pytest.raises(ValueError, match=r"conv_configs: ranks must be a non-empty subset"):
        conv_configs(ranks=(4,))
    with pytest.raises(ValueError, match=r"conv_configs: padding_forms must be .*'same'"):
        conv_configs(padding_forms=("same",))
    with pytest.raises(ValueError, match="conv_configs: max_kernel must be a positive int"):
        conv_configs(max_kernel=0)
    with pytest.raises(ValueError, match="conv_transpose_configs: padding_forms must be"):
        conv_transpose_configs(padding_forms=("SAME",))
    with pytest.raises(ValueError, match="pool_configs: kinds must be a non-empty subset"):
        pool_configs(kinds=("min",))
    with pytest.raises(ValueError, match="pool_configs: max_batch must be a positive int"):
        pool_configs(max_batch=True)


def test_pool_inputs_are_distinct_in_every_dtype(x64):
    cfg = PoolConfig(
        "max", (2, 7, 7, 7, 2), (2, 2, 2), (1, 1, 1), ((1, 1),) * 3, (1, 1, 1), False, True
    )
    for dtype in TOLERANCES:
        (x,) = cfg.inputs(jax.random.key(0), dtype)
        v = np.asarray(x, np.float64).ravel()
        assert x.dtype == dtype and x.shape == cfg.input_shape
        assert np.unique(v).size == v.size and np.abs(v).max() <= 2.0


# --------------------------------------------------------------------------------------------
# strategies.arrays: its promise holds on every draw (NumPy only)


@settings(max_examples=150, deadline=None)
@given(
    st.data(),
    st.sampled_from(list(TOLERANCES)),
    st.integers(0, 40),
    st.floats(0.0, 0.2),
    st.lists(st.floats(-5.0, 5.0), max_size=3),
)
def test_arrays_keep_min_gap_between_entries_and_from_avoid(data, dtype, n, gap, avoid):
    lo, hi = -4.0, 4.0
    # leave room for the margins against rounding (bfloat16's spacing at 4 is 0.03): what
    # does not fit raises, tested in test_arrays_errors
    if (n + 2 * len(avoid)) * (gap + 0.07) > 7.5:
        return
    x = data.draw(arrays((n,), dtype, min_gap=gap, avoid=avoid, min_value=lo, max_value=hi))
    assert x.dtype == dtype and x.shape == (n,)
    v = np.asarray(x, np.float64)  # the values after rounding to dtype
    assert np.all((v >= lo) & (v <= hi))
    if n > 1 and gap > 0:
        assert np.min(np.diff(np.sort(v))) >= gap
    for a in avoid:
        assert np.all(np.abs(v - a) >= gap) and np.all(v != a)


@settings(max_examples=30, deadline=None)
@given(arrays((3, 4), np.float32, min_gap=0.25, avoid=(0.0,), min_value=-2.0, max_value=2.0))
def test_arrays_tight_packing(x):
    # 12 entries 0.25 apart and 0.25 from 0 in [-2, 2]: 2.75 of the 3.5 that fit
    v = np.sort(np.asarray(x, np.float64).ravel())
    assert np.min(np.diff(v)) >= 0.25 and np.min(np.abs(v)) >= 0.25


@settings(max_examples=30, deadline=None)
@given(arrays((5,), jnp.bfloat16), arrays((2, 2), np.float16, elements=st.just(1.5)))
def test_arrays_without_gaps(x, y):
    assert x.dtype == jnp.bfloat16 and np.all(np.abs(np.asarray(x, np.float64)) <= 4.0)
    assert y.dtype == np.float16 and np.all(y == 1.5)


def test_arrays_errors():
    with pytest.raises(ValueError, match=r"arrays: 40 entries 0.25 apart .* do not fit"):
        arrays((40,), min_gap=0.25, min_value=-4.0, max_value=4.0)
    with pytest.raises(ValueError, match="arrays: elements cannot be combined with min_gap"):
        arrays((3,), elements=st.just(1.0), min_gap=0.1)
    with pytest.raises(ValueError, match="arrays: min_gap must be a finite number >= 0"):
        arrays((3,), min_gap=-1.0)
    with pytest.raises(ValueError, match="arrays: need finite min_value <= max_value"):
        arrays((3,), min_value=1.0, max_value=0.0)
    with pytest.raises(TypeError, match="arrays: dtype must be a floating dtype"):
        arrays((3,), np.int32)


# --------------------------------------------------------------------------------------------
# the README's example, as written, and a wrong kernel caught and shrunk

README = pathlib.Path(__file__).parent.parent / "README.md"


def _readme_example() -> str:
    """The code block of the README's "Test your own kernel" section, preceded by blank lines so
    that line numbers in a traceback are the README's."""
    readme = README.read_text()
    section = readme.index("## Test your own kernel")
    start = readme.index("```python\n", section) + len("```python\n")
    end = readme.index("```", start)
    return "\n" * readme.count("\n", 0, start) + readme[start:end]


# The README's example, run from the README itself: pytest collects its test_my_conv here.
_README = {}
exec(compile(_readme_example(), str(README), "exec"), _README)
test_my_conv = _README["test_my_conv"]


def test_the_readme_example_is_a_property_test_of_dlref_conv():
    """The block defines what the README says: a hypothesis test over 2-D conv geometries whose
    kernel under test is lax's conv through dlref (so it passes), comparing all three modes."""
    src = _readme_example()
    assert "@given(conv_configs(ranks=(2,)))" in src and "assert_op_close(" in src
    assert "modes=" not in src  # value, vjp and jvp: the defaults
    assert _README["my_conv"].keywords == {"impl": "xla"}
    assert test_my_conv.hypothesis.inner_test.__name__ == "test_my_conv"


def _conv_transpose_unflipped(x, w, *, stride, padding, output_padding, dilation, groups):
    """A transposed conv written as a conv of the zero-interleaved input, with its bug: the
    kernel's taps are not flipped (right only when the kernel is symmetric, e.g. 1 tap)."""
    nd = w.ndim - 2
    k, (cout_g, cin) = w.shape[:nd], w.shape[nd:]
    if isinstance(padding, int):
        padding = (padding,) * nd
    pairs = [p if isinstance(p, tuple) else (p, p) for p in padding]
    pads = [
        (d * (kk - 1) - lo, d * (kk - 1) - hi + a)
        for kk, d, a, (lo, hi) in zip(k, dilation, output_padding, pairs)
    ]
    cfg = [(0, 0, 0), *((lo, hi, s - 1) for (lo, hi), s in zip(pads, stride)), (0, 0, 0)]
    xd = lax.pad(x, jnp.zeros((), x.dtype), cfg)
    wg = w.reshape(*k, cout_g, groups, cin // groups)
    wt = jnp.swapaxes(wg, nd, nd + 2).reshape(*k, cin // groups, groups * cout_g)
    return dlref.conv(xd, wt, dilation=dilation, groups=groups)  # missing: jnp.flip(wt, taps)


def test_a_wrong_kernel_is_caught_and_shrunk_to_a_minimal_configuration():
    @settings(max_examples=10, deadline=None, derandomize=True, database=None)
    @given(conv_transpose_configs(ranks=(1,)))
    def test_my_conv_transpose(cfg):
        x, w = cfg.inputs(0)
        assert_op_close(
            lambda x, w: _conv_transpose_unflipped(x, w, **cfg.kwargs()),
            lambda x, w: dlref.conv_transpose(x, w, **cfg.kwargs()),
            x,
            w,
            modes=("value",),
        )

    with pytest.raises(AssertionError, match="assert_op_close: value: output leaf out") as info:
        test_my_conv_transpose()
    report = "\n".join(getattr(info.value, "__notes__", []))
    # the smallest failing geometry: one pixel, one channel, and a kernel of two taps (a
    # one-tap kernel is its own flip)
    minimal = (
        "ConvTransposeConfig(input_shape=(1, 1, 1),\n     kernel_shape=(2, 1, 1),\n"
        "     stride=(1,),\n     padding=0,\n     output_padding=(0,),\n     dilation=(1,),\n"
        "     groups=1)"
    )
    assert minimal in report, report
