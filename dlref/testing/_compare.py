"""Comparison of an op with a reference: values, VJPs and JVPs as normwise relative errors."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.test_util import check_grads

from dlref import _checks

__all__ = [
    "MODES",
    "TOLERANCES",
    "assert_op_close",
    "check_op_gradients",
    "op_errors",
    "rel_err",
    "tolerance",
]

MODES = ("value", "vjp", "jvp")

# The default tolerance of each dtype, as a normwise relative error of one output leaf:
#   max|fn - reference| <= rtol * max|reference|.
# Two correct implementations of one op differ by roundoff: in float32/float64 mostly from
# summing in a different order (a sum of K terms moves by up to ~K·eps of its largest term,
# typically sqrt(K)·eps; K runs to ~1e3-1e4 in a conv's reductions), in the 16-bit types from
# the one rounding of each output (eps/2) plus whatever the op rounds in between. A wrong
# answer (a missing tap, a kernel not flipped, a padding off by one) is an O(1) error. Each
# entry sits between the two:
#   float64   1e-12  ~4500 ulps (eps 2.2e-16): reductions in another order, plus ops such as
#                    normalisations that lose a few digits to cancellation (x - mean(x)).
#   float32   1e-5   ~84 ulps (eps 1.2e-7): float32 accumulation in another order.
#   bfloat16  2e-2   ~2.6 ulps (eps 7.8e-3): the output's rounding, an intermediate or two.
#   float16   2e-3   ~2 ulps (eps 9.8e-4): the same.
# jax's own test tolerances (jax._src.public_test_util.default_tolerance: 1e-15, 1e-6, 1e-2,
# 1e-3) are per element and meant for the *same* algorithm run twice; ours compare different
# algorithms, so float64 and float32 are looser, and the 16-bit entries are twice jax's, i.e.
# about two ulps, because both sides see the same rounded inputs and only the op's own
# roundings count (the reference runs in higher precision, see ``reference_dtype``).
TOLERANCES: dict[str, float] = {
    "float64": 1e-12,
    "float32": 1e-5,
    "bfloat16": 2e-2,
    "float16": 2e-3,
}

# Finite-difference steps and tolerances for check_op_gradients (see its docstring).
_FD_STEP = {"float64": 1e-4, "float32": 5e-3}
_FD_TOL = {"float64": 1e-5, "float32": 2e-3}


def _dtype_name(dtype: Any) -> str:
    return jnp.dtype(dtype).name


def tolerance(dtype: Any) -> float:
    r"""The default normwise relative tolerance of ``dtype`` (:data:`TOLERANCES`).

    .. math:: \text{pass} \iff \max_i |a_i - b_i| \le rtol \cdot \max_i |b_i|

    per output leaf ``a`` of the op under test and ``b`` of the reference.

    =========  ======  =================================================================
    dtype      rtol    why
    =========  ======  =================================================================
    float64    1e-12   ~4500 ulps: other summation orders, cancellation in normalisations
    float32    1e-5    ~84 ulps: float32 accumulation in another order (K ~ 1e4 terms)
    bfloat16   2e-2    ~2.6 ulps (eps 7.8e-3): the output's rounding and one or two more
    float16    2e-3    ~2 ulps (eps 9.8e-4): the same
    =========  ======  =================================================================

    A wrong op (a missing tap, an unflipped kernel, a padding off by one) errs by O(1), far
    above every entry. jax's own tests use 1e-15, 1e-6, 1e-2, 1e-3 per element for the same
    algorithm run twice; these compare two *different* algorithms, hence looser for float64
    and float32. For 16-bit inputs compare against a reference run in float32 or float64 on
    the same rounded inputs (``assert_op_close(..., reference_dtype=jnp.float32)``), so that
    only the op's own roundings count.

    The error is relative to the output's magnitude, so an output that *cancels* terms much
    larger than itself (softmax's JVP ``p·(t - <p, t>)``, ``x - mean(x)`` far from 0) carries
    their roundoff in any correct implementation: give ``atol`` the tolerance times the size
    of those terms.

    Args:
      dtype: a floating dtype (anything ``jnp.dtype`` accepts).

    Returns:
      The relative tolerance, a float.

    Raises:
      TypeError: ``dtype`` is not one of the floating dtypes above.

    Example:
      >>> tolerance("float32")
      1e-05
      >>> tolerance(jnp.bfloat16)
      0.02
    """
    try:
        name = _dtype_name(dtype)
    except TypeError as e:
        raise TypeError(f"tolerance: dtype must be a floating dtype, got {dtype!r}") from e
    if name not in TOLERANCES:
        raise TypeError(f"tolerance: dtype must be one of {tuple(TOLERANCES)}, got {name!r}")
    return TOLERANCES[name]


# --------------------------------------------------------------------------------------------
# errors


def _is_array(x: Any) -> bool:
    return isinstance(x, jax.Array | np.ndarray | np.generic)


def _is_float(x: Any) -> bool:
    return hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.floating)


def _on_accelerator(*xs: Any) -> bool:
    """All of ``xs`` are jax arrays, at least one on a non-CPU device."""
    if not all(isinstance(x, jax.Array) for x in xs):
        return False
    try:
        return any(d.platform != "cpu" for x in xs for d in x.devices())
    except Exception:  # noqa: BLE001  (a tracer, a deleted buffer: the host path decides)
        return False


@jax.jit
def _diff_scale_device(a: jax.Array, b: jax.Array) -> tuple[jax.Array, ...]:
    """:func:`_diff_scale`'s reductions where the arrays live, in the widest float jax has
    (float64 under x64, else float32: every jax float converts exactly). Returns the flags
    (NaN or ±inf placed differently, any finite entry of ``b``) and the two maxima."""
    wide = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
    a, b = a.astype(wide), b.astype(wide)
    inf_a, inf_b = jnp.isinf(a), jnp.isinf(b)
    mismatch = jnp.any(jnp.isnan(a) != jnp.isnan(b)) | jnp.any(inf_a != inf_b)
    mismatch |= jnp.any(inf_b & (a != b))
    finite = jnp.isfinite(b)
    diff = jnp.max(jnp.where(finite, jnp.abs(a - b), 0), initial=0)
    scale = jnp.max(jnp.where(finite, jnp.abs(b), 0), initial=0)
    return mismatch, jnp.any(finite), diff, scale


def _diff_scale(a: Any, b: Any) -> tuple[float, float]:
    """``(max|a - b|, max|b|)`` over the finite entries of ``b``: in NumPy float64 on the host,
    or, for jax arrays on an accelerator, reduced there (a ResNet activation is not copied to
    the host to compare it).

    NaN and ±inf must sit at the same places (with the same sign) in both; otherwise the
    difference is ``inf``. Shapes must agree (else ``inf``).
    """
    if np.shape(a) != np.shape(b):
        return np.inf, 0.0
    if _on_accelerator(a, b):
        mismatch, any_finite, diff, scale = jax.device_get(_diff_scale_device(a, b))
        if mismatch:
            return np.inf, 0.0
        return (float(diff), float(scale)) if any_finite else (0.0, 0.0)
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if np.any(np.isnan(a) != np.isnan(b)):
        return np.inf, 0.0
    inf_a, inf_b = np.isinf(a), np.isinf(b)
    if np.any(inf_a != inf_b) or np.any(a[inf_b] != b[inf_b]):
        return np.inf, 0.0
    finite = np.isfinite(b)
    if not finite.any():
        return 0.0, 0.0
    diff = np.abs(a[finite] - b[finite])
    return float(diff.max()), float(np.abs(b[finite]).max())


def _ratio(diff: float, scale: float) -> float:
    if diff == 0.0:
        return 0.0
    return diff / scale if scale > 0.0 else float("inf")


def rel_err(a: Any, b: Any) -> float:
    r"""Normwise relative error of ``a`` against ``b`` over all leaves of two pytrees.

    .. math:: \mathrm{err}(a, b) = \frac{\max_i |a_i - b_i|}{\max_i |b_i|}

    with both maxima over every entry of every leaf. It reads "how many digits of the largest
    entries agree", and unlike an elementwise relative error it does not blow up at entries
    that are zero in ``b`` but roundoff in ``a``. A NaN anywhere in ``a`` or ``b`` gives NaN
    (NaN propagates, so ``assert rel_err(a, b) <= tol`` fails on it, as on every comparison
    with NaN). ±inf must sit at the same places, with the same sign, in both (they are then
    left out); otherwise, or if a shape differs, the error is ``inf``. An all-zero ``b``
    gives ``0`` when ``a`` is zero too and ``inf`` otherwise. (:func:`assert_op_close` and
    :func:`op_errors` instead count NaN at the same places in both as agreement: they check
    that an op propagates NaN where its reference does.)

    Args:
      a: an array or pytree of arrays (the computed value).
      b: the same structure (the expected value).

    Returns:
      The error as a Python float (NaN when either side holds a NaN).

    Raises:
      ValueError: the two pytrees have different structures.

    Example:
      >>> rel_err(jnp.array([1.0, 2.5]), jnp.array([1.0, 2.0]))  # 0.5 / 2
      0.25
      >>> rel_err(jnp.array([jnp.nan, 2.0]), jnp.array([jnp.nan, 2.0]))
      nan
    """
    la, ta = jax.tree.flatten(a)
    lb, tb = jax.tree.flatten(b)
    if ta != tb:
        raise ValueError(f"rel_err: the pytrees differ: {ta} and {tb}")
    if any(_has_nan(v) for v in la + lb):
        return float("nan")
    diff = scale = 0.0
    for u, v in zip(la, lb, strict=True):
        d, s = _diff_scale(u, v)
        diff, scale = max(diff, d), max(scale, s)
    return _ratio(diff, scale)


def _has_nan(x: Any) -> bool:
    """Whether a floating leaf holds a NaN (reduced where a jax array lives)."""
    if isinstance(x, jax.Array):
        return _is_float(x) and bool(jnp.any(jnp.isnan(x)))
    x = np.asarray(x)
    return x.dtype.kind in "fc" and bool(np.any(np.isnan(x)))


class _Leaf(NamedTuple):
    """One compared leaf of one mode."""

    name: str
    shape: tuple[int, ...]
    ref_shape: tuple[int, ...]
    diff: float  # max|fn - reference|
    scale: float  # max|reference| of the leaf, or of the mode where the leaf is all zero
    exact: bool = False  # an integer leaf: equal or not

    @property
    def error(self) -> float:
        return _ratio(self.diff, self.scale)


def _leaf(name: str, u: Any, v: Any) -> _Leaf | None:
    shape, ref_shape = tuple(jnp.shape(u)), tuple(jnp.shape(v))
    if jnp.result_type(v) == jax.dtypes.float0:
        return None  # the tangent of an integer output: nothing to compare
    if _is_float(v) or _is_float(u):
        return _Leaf(name, shape, ref_shape, *_diff_scale(u, v))
    # integers, booleans: equal or not
    same = shape == ref_shape and bool(np.array_equal(np.asarray(u), np.asarray(v)))
    return _Leaf(name, shape, ref_shape, 0.0 if same else np.inf, 1.0, True)


def _rescale(leaves: list[_Leaf | None]) -> list[_Leaf]:
    """A float leaf that is all zero in the reference is measured against the largest leaf
    of its mode (a structural zero may carry the others' roundoff); all zero: exactly."""
    leaves = [lf for lf in leaves if lf is not None]
    top = max([lf.scale for lf in leaves if not lf.exact] + [0.0])
    return [lf._replace(scale=top) if not lf.exact and lf.scale == 0.0 else lf for lf in leaves]


def _output_leaves(mode: str, got: Any, want: Any) -> list[_Leaf]:
    pg, tg = jax.tree_util.tree_flatten_with_path(got)
    pw, tw = jax.tree_util.tree_flatten_with_path(want)
    if tg != tw:
        raise AssertionError(
            f"assert_op_close: {mode}: fn and reference return different pytrees: {tg} and {tw}"
        )
    return _rescale(
        [_leaf("out" + jax.tree_util.keystr(p), u, v) for (p, u), (_, v) in zip(pg, pw)]
    )


def _as_key(key: Any, op: str) -> jax.Array:
    if key is None:
        return jax.random.key(0)
    if isinstance(key, int | np.integer) and not isinstance(key, bool):
        return jax.random.key(int(key))
    if isinstance(key, jax.Array) and (
        jnp.issubdtype(key.dtype, jax.dtypes.prng_key) or key.dtype == jnp.uint32
    ):
        return key
    raise TypeError(f"{op}: key must be a jax.random key or an int seed, got {key!r}")


def _check_callable(f: Any, name: str, op: str) -> None:
    if not callable(f):
        raise TypeError(f"{op}: {name} must be callable, got {f!r}")


def _check_tolerance(value: Any, name: str, op: str) -> float | None:
    """``None`` (the dtype's default) or a finite real scalar >= 0, as a float."""
    if value is None:
        return None
    _checks.check_nonnegative(value, name, op)
    return float(value)


def _calling(f: Callable, name: str, op: str) -> Callable:
    """``f`` whose ``TypeError`` / ``ValueError`` (e.g. ``args`` that do not fit its signature)
    is re-raised naming ``op`` and which side raised it; the original is chained."""

    def g(*a):
        try:
            return f(*a)
        except (TypeError, ValueError) as e:
            raise type(e)(f"{op}: calling {name} on args raised {type(e).__name__}: {e}") from e

    return g


def _check_modes(modes: Any, op: str) -> tuple[str, ...]:
    if isinstance(modes, str) or not modes or not set(modes) <= set(MODES):
        raise ValueError(f"{op}: modes must be a non-empty subset of {MODES}, got {modes!r}")
    return tuple(modes)


def _split(args: tuple, argnums: Any, op: str):
    """Flatten ``args``; return (paths, leaves, treedef, indices of the differentiated leaves)."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(args)
    if argnums is None:
        argnums = range(len(args))
    else:
        argnums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
        for i in argnums:
            if isinstance(i, bool) or not isinstance(i, int) or not -len(args) <= i < len(args):
                raise ValueError(
                    f"{op}: argnums must be positions of args (0..{len(args) - 1}), got {argnums}"
                )
        argnums = {i % len(args) for i in argnums}
    argnums = set(argnums)
    paths = ["args" + jax.tree_util.keystr(p) for p, _ in flat]
    leaves = [v for _, v in flat]
    diff = [
        i for i, (p, v) in enumerate(flat) if p[0].idx in argnums and _is_array(v) and _is_float(v)
    ]
    return paths, leaves, treedef, diff


def _closure(f: Callable, leaves: list, treedef: Any, diff: list[int]) -> Callable:
    """``f`` as a function of the differentiated leaves only (the others held fixed)."""

    def g(*diff_leaves):
        full = list(leaves)
        for i, v in zip(diff, diff_leaves, strict=True):
            full[i] = v
        return f(*jax.tree.unflatten(treedef, full))

    return g


def _common(a_dtype: Any, b_dtype: Any) -> Any:
    """The less precise of two floating dtypes (values representable exactly in both)."""
    return min((jnp.dtype(a_dtype), jnp.dtype(b_dtype)), key=lambda d: jnp.finfo(d).nmant)


def _random_pair(key: jax.Array, got: Any, want: Any) -> tuple[Any, Any]:
    """Standard normal leaves shaped like ``want``, rounded to the less precise of the two
    dtypes so that ``fn`` and the reference receive the *same* values (float0 zeros for
    integer leaves)."""
    lg, _ = jax.tree.flatten(got)
    lw, treedef = jax.tree.flatten(want)
    keys = jax.random.split(key, max(1, len(lw)))
    a, b = [], []
    for k, u, v in zip(keys, lg, lw, strict=False):
        if _is_float(v) and _is_float(u):
            base = jax.random.normal(k, jnp.shape(v), jnp.float32).astype(_common(u.dtype, v.dtype))
            a.append(base.astype(u.dtype))
            b.append(base.astype(v.dtype))
        else:
            zero = np.zeros(jnp.shape(v), jax.dtypes.float0)
            a.append(np.zeros(jnp.shape(u), jax.dtypes.float0))
            b.append(zero)
    return jax.tree.unflatten(treedef, a), jax.tree.unflatten(treedef, b)


def _compare_modes(
    op: str,
    fn: Callable,
    reference: Callable,
    args: tuple,
    modes: Sequence[str],
    key: Any,
    argnums: Any,
    reference_dtype: Any,
    jit: bool,
) -> tuple[dict[str, list[_Leaf]], list[Any]]:
    """The leaves of every mode, and the floating dtypes of fn's inputs and outputs: the work
    of :func:`op_errors` and :func:`assert_op_close`, whose arguments it takes in their order
    (``op`` names the caller in messages)."""
    _check_callable(fn, "fn", op)
    _check_callable(reference, "reference", op)
    modes = _check_modes(modes, op)
    k_ct, k_t = jax.random.split(_as_key(key, op))
    paths, leaves, treedef, diff = _split(tuple(args), argnums, op)
    if reference_dtype is None:
        ref_leaves = leaves
    else:
        if not jnp.issubdtype(
            _checks.check_dtype(reference_dtype, "reference_dtype", op), jnp.floating
        ):
            raise TypeError(f"{op}: reference_dtype must be floating, got {reference_dtype!r}")
        ref_leaves = [
            jnp.asarray(v, reference_dtype) if _is_array(v) and _is_float(v) else v for v in leaves
        ]
    grads = [m for m in modes if m != "value"]
    if grads and not diff:
        raise ValueError(
            f"{op}: modes {grads} need a floating array argument to differentiate; got none "
            f"(Python scalars and integer arrays are held fixed)"
        )
    f = _closure(_calling(fn, "fn", op), leaves, treedef, diff)
    r = _closure(_calling(reference, "reference", op), ref_leaves, treedef, diff)
    if jit:
        f, r = jax.jit(f), jax.jit(r)
    primals = [leaves[i] for i in diff]
    ref_primals = [ref_leaves[i] for i in diff]
    out: dict[str, list[_Leaf]] = {}
    if "vjp" in modes:
        got, pull = jax.vjp(f, *primals)
        want, pull_ref = jax.vjp(r, *ref_primals)
    else:
        got, want = f(*primals), r(*ref_primals)
    dtypes = [v.dtype for v in jax.tree.leaves((primals, got)) if _is_float(v)]
    if "value" in modes:
        out["value"] = _output_leaves("value", got, want)
    if "vjp" in modes:
        _output_leaves("vjp", got, want)  # the same structure, or AssertionError
        ct, ct_ref = _random_pair(k_ct, got, want)
        pairs = zip(diff, pull(ct), pull_ref(ct_ref), strict=True)
        out["vjp"] = _rescale([_leaf(paths[i], u, v) for i, u, v in pairs])
    if "jvp" in modes:
        t, t_ref = _random_pair(k_t, primals, ref_primals)
        _, t_got = jax.jvp(f, tuple(primals), tuple(t))
        _, t_want = jax.jvp(r, tuple(ref_primals), tuple(t_ref))
        out["jvp"] = _output_leaves("jvp", t_got, t_want)
    return out, dtypes


def op_errors(
    fn: Callable,
    reference: Callable,
    *args: Any,
    modes: Sequence[str] = MODES,
    key: Any = None,
    argnums: int | Sequence[int] | None = None,
    reference_dtype: Any = None,
    jit: bool = False,
) -> dict[str, dict[str, float]]:
    r"""The errors :func:`assert_op_close` checks, without asserting: one per mode and leaf.

    .. math:: \mathrm{err}_\ell = \frac{\max_i |a_{\ell,i} - b_{\ell,i}|}{\max_i |b_{\ell,i}|}

    for every output leaf ``ℓ`` of the values (``"value"``), of the input gradients with one
    random cotangent (``"vjp"``, one leaf per differentiated input leaf) and of the output
    tangents with one random tangent (``"jvp"``). A leaf that is all zero in the reference is
    measured against the largest leaf of its mode instead. Integer leaves give 0 (equal) or
    ``inf``. Used by ``dlref verify`` for its tables.

    Args:
      fn: the function under test, called as ``fn(*args)``.
      reference: the trusted function, called the same way.
      *args: arrays or pytrees of arrays.
      modes: any of ``"value"``, ``"vjp"``, ``"jvp"``.
      key: a ``jax.random`` key or an int seed for the cotangent and tangent; default 0.
      argnums: the positions of ``args`` to differentiate; default all. Only floating
        array leaves are differentiated; the others are held fixed.
      reference_dtype: run ``reference`` on the floating inputs cast to this dtype (e.g.
        float64 for a bfloat16 op: both see the same rounded inputs).
      jit: compile ``fn`` and ``reference`` (as :func:`assert_op_close`).

    Returns:
      ``{mode: {leaf name: error}}``; leaf names are ``"out"``, ``"out[0]"``,
      ``"out['y']"`` for outputs and ``"args[1]"``, ``"args[0]['w']"`` for input gradients.

    Raises:
      AssertionError: ``fn`` and ``reference`` return different pytree structures.
      ValueError: an unknown mode or argnum; a gradient mode with nothing to differentiate.
      TypeError: a bad key or reference_dtype.

    Example:
      >>> errs = op_errors(jnp.sin, lambda x: 1.01 * jnp.sin(x), jnp.ones(3), modes=("value",))
      >>> round(errs["value"]["out"], 6)  # 0.01 sin(1) / (1.01 sin(1))
      0.009901
    """
    leaves, _ = _compare_modes(
        "op_errors", fn, reference, args, modes, key, argnums, reference_dtype, jit
    )
    return {m: {lf.name: lf.error for lf in ls} for m, ls in leaves.items()}


def _least_precise(dtypes: Sequence[Any], op: str) -> str:
    names = {_dtype_name(d) for d in dtypes}
    unknown = names - set(TOLERANCES)
    if unknown:
        raise TypeError(
            f"{op}: no default tolerance for {sorted(unknown)}; pass rtol (the table covers "
            f"{tuple(TOLERANCES)})"
        )
    if not names:
        return "float32"  # integer-only ops: exact comparisons, rtol unused
    return max(names, key=TOLERANCES.__getitem__)


def assert_op_close(
    fn: Callable,
    reference: Callable,
    *args: Any,
    modes: Sequence[str] = MODES,
    rtol: float | None = None,
    atol: float | None = None,
    key: Any = None,
    argnums: int | Sequence[int] | None = None,
    reference_dtype: Any = None,
    jit: bool = False,
) -> None:
    r"""Assert that ``fn`` agrees with ``reference`` in value, VJP and JVP on ``args``.

    .. math::
        \max|a_\ell - b_\ell| \le atol + rtol \cdot \max|b_\ell|
        \quad\text{for every leaf } \ell \text{ of }
        \big(f(x),\ r(x)\big),\
        \big(\bar u^\top \partial f(x),\ \bar u^\top \partial r(x)\big),\
        \big(\partial f(x)\, t,\ \partial r(x)\, t\big)

    the values; the VJPs with one random cotangent ``ū`` (standard normal, from ``key``)
    passed through both; the JVPs with one random tangent ``t`` passed through both. The
    error of a leaf is normwise, ``max|a - b| / max|b|`` (:func:`op_errors`), so it reads as
    "digits of the largest entries that agree" and does not blow up at near-zero entries. One
    random direction catches a wrong derivative with probability 1; jax's ``check_grads``
    probes the same way.

    Only floating *array* leaves of ``args`` (all of them, or those under ``argnums``) are
    differentiated; integer arrays (labels, indices) and Python scalars are held fixed.
    ``fn`` and ``reference`` must return the same pytree; dtypes may differ (both are compared
    in float64). NaN and ±inf must appear at the same places; integer outputs must be equal.
    Works under ``jax.enable_x64`` (draws are made in float32 and rounded to the less precise
    of the two dtypes, so both sides get identical cotangents and tangents).

    Args:
      fn: the function under test, called as ``fn(*args)``.
      reference: the trusted function, called the same way.
      *args: arrays or pytrees of arrays.
      modes: any of ``"value"``, ``"vjp"``, ``"jvp"``.
      rtol: relative tolerance; default :func:`tolerance` of the least precise floating
        dtype among ``fn``'s differentiated inputs and its outputs.
      atol: absolute tolerance; default 0. (A reference leaf that is all zero is measured
        against the largest leaf of the mode, so structural zeros need no ``atol``.)
      key: a ``jax.random`` key or an int seed for the cotangent and tangent; default 0.
      argnums: positions of ``args`` to differentiate; default all.
      reference_dtype: run ``reference`` on the floating inputs cast to this dtype, e.g.
        ``jnp.float32`` (or float64 under x64) when ``fn`` is a bfloat16 kernel.
      jit: compile ``fn`` and ``reference`` with ``jax.jit`` (one compilation per side and
        mode, as kernels run in practice) instead of running them op by op (default). Which
        is cheaper depends on the op: op by op wins for small graphs whose shapes change at
        every hypothesis example; jit for larger graphs checked at one shape.

    Returns:
      None.

    Raises:
      AssertionError: a mismatch; the message names the mode, the output leaf, the error and
        the tolerance.
      ValueError: an unknown mode or argnum; a gradient mode with nothing to differentiate.
      TypeError: a bad key or reference_dtype; no default tolerance for the dtype.

    Example:
      >>> assert_op_close(jnp.tanh, lambda x: 2 * jax.nn.sigmoid(2 * x) - 1, jnp.ones(3))
      >>> try:
      ...     assert_op_close(jnp.sin, jnp.cos, jnp.ones(3), modes=("value",))
      ... except AssertionError as e:
      ...     print(str(e)[:74])
      assert_op_close: value: output leaf out (shape (3,)): normwise relative er
    """
    op = "assert_op_close"
    rtol = _check_tolerance(rtol, "rtol", op)
    atol = _check_tolerance(atol, "atol", op)
    leaves, dtypes = _compare_modes(
        op, fn, reference, args, modes, key, argnums, reference_dtype, jit
    )
    if rtol is None:
        rtol = tolerance(_least_precise(dtypes, op))
    atol = 0.0 if atol is None else atol
    for mode in _check_modes(modes, op):
        for lf in leaves[mode]:
            if lf.shape != lf.ref_shape:
                raise AssertionError(
                    f"{op}: {mode}: output leaf {lf.name} has shape {lf.shape}, the reference "
                    f"{lf.ref_shape}"
                )
            if lf.exact and lf.diff != 0.0:
                raise AssertionError(f"{op}: {mode}: integer output leaf {lf.name} differs")
            if not lf.diff <= atol + rtol * lf.scale:
                raise AssertionError(
                    f"{op}: {mode}: output leaf {lf.name} (shape {lf.shape}): normwise relative "
                    f"error {lf.error:.3g} exceeds the tolerance rtol={rtol:.3g}"
                    + (f", atol={atol:.3g}" if atol else "")
                    + f" (max|fn - reference| = {lf.diff:.3g}, max|reference| = "
                    f"{lf.scale:.3g}; NaN or inf at different places counts as inf)"
                )


def check_op_gradients(
    fn: Callable,
    *args: Any,
    order: int = 2,
    modes: Sequence[str] = ("fwd", "rev"),
    eps: float | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    argnums: int | Sequence[int] | None = None,
) -> None:
    r"""``jax.test_util.check_grads`` with the step and tolerance chosen from the dtype.

    .. math:: \partial f(x)\,t \approx \frac{f(x + h t) - f(x - h t)}{2h}

    checked in one random direction ``t`` for every order up to ``order``, in forward
    (``"fwd"``: JVP) and reverse (``"rev"``: VJP) mode, elementwise with ``atol`` and
    ``rtol``. Defaults by dtype (the least precise differentiated one):

    =========  ==========  ===========  ====================================================
    dtype      step ``h``  tolerance    why
    =========  ==========  ===========  ====================================================
    float64    1e-4        1e-5         jax's defaults: truncation ``h²`` ~ 1e-8, roundoff
                                        ``eps/h`` ~ 2e-12
    float32    5e-3        2e-3         ``h ≈ eps^(1/3)`` balances truncation ``h²`` against
                                        roundoff ``eps/h`` (both ~3e-5); jax's tolerance
    =========  ==========  ===========  ====================================================

    Finite differences are unreliable where ``f`` is not smooth within a few steps of ``x``
    (the central difference of order ``n`` samples ``x ± n·h·t`` with ``t`` standard normal,
    so entries move by up to ~``4·n·h``):

    * kinks: relu and ``|x|`` at 0, a hinge at its margin, Huber at ``±δ``, clipping at its
      bounds, a ceil/floor;
    * ties: two equal maxima in a max-pool window, equal logits under an argmax or a
      multiclass hinge, equal values under a sort.

    Avoid them by drawing inputs that keep ``min_gap`` from each kink and from each other,
    ``min_gap`` a few times ``4·order·h`` (e.g. 1e-2 in float64):
    :func:`dlref.testing.strategies.arrays` with ``min_gap`` and ``avoid``, or
    ``PoolConfig.inputs`` (distinct values); then assert the chosen subgradient *at* the kink
    directly (``jax.grad(relu)(0.0) == 0``). 16-bit floats have too few digits for any step:
    check the derivative in float32 or float64 and compare the 16-bit op with
    :func:`assert_op_close` (``reference_dtype``).

    Args:
      fn: the function, called as ``fn(*args)``.
      *args: arrays or pytrees of arrays (float64 under ``jax.enable_x64`` recommended).
      order: the highest derivative order to check (1, 2 or 3).
      modes: ``("fwd", "rev")`` or one of them.
      eps: the finite-difference step; default from the dtype.
      rtol: relative tolerance; default from the dtype.
      atol: absolute tolerance; default from the dtype.
      argnums: positions of ``args`` to differentiate; default all. Only floating array
        leaves are differentiated; integer arrays and Python scalars are held fixed.

    Returns:
      None.

    Raises:
      AssertionError: a derivative disagrees with finite differences.
      TypeError: no floating array to differentiate, or a 16-bit one.
      ValueError: ``order`` not a positive int, an unknown mode or argnum.

    Example:
      >>> with jax.enable_x64(True):
      ...     check_op_gradients(jnp.sin, jnp.linspace(0.1, 1.0, 4))
    """
    op = "check_op_gradients"
    _check_callable(fn, "fn", op)
    eps = _check_tolerance(eps, "eps", op)
    if eps == 0.0:
        raise ValueError(f"{op}: eps must be > 0, got {eps!r}")
    rtol = _check_tolerance(rtol, "rtol", op)
    atol = _check_tolerance(atol, "atol", op)
    if isinstance(order, bool) or not isinstance(order, int) or order < 1:
        raise ValueError(f"{op}: order must be a positive int, got {order!r}")
    if isinstance(modes, str) or not modes or not set(modes) <= {"fwd", "rev"}:
        raise ValueError(f"{op}: modes must be a non-empty subset of ('fwd', 'rev'), got {modes!r}")
    _, leaves, treedef, diff = _split(tuple(args), argnums, op)
    if not diff:
        raise TypeError(f"{op}: no floating array argument to differentiate, got {args!r}")
    names = {_dtype_name(leaves[i].dtype) for i in diff}
    if not names <= set(_FD_STEP):
        raise TypeError(
            f"{op}: finite differences need float32 or float64 arguments, got "
            f"{sorted(names - set(_FD_STEP))} (check a 16-bit op with assert_op_close against "
            f"a float32 reference)"
        )
    name = "float32" if "float32" in names else "float64"
    tol = _FD_TOL[name]
    check_grads(
        _closure(_calling(fn, "fn", op), leaves, treedef, diff),
        tuple(leaves[i] for i in diff),
        order,
        modes=tuple(modes),
        eps=_FD_STEP[name] if eps is None else eps,
        rtol=tol if rtol is None else rtol,
        atol=tol if atol is None else atol,
    )
