"""Comparison of an op with a reference: values, VJPs and JVPs as normwise relative errors."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.test_util import check_grads

__all__ = ["TOLERANCES", "assert_op_close", "check_op_gradients", "rel_err", "tolerance"]

MODES = ("value", "vjp", "jvp")

# Normwise relative tolerance per dtype: max|a - b| <= atol + rtol·max|b| per output leaf.
# Each is a few hundred to a few thousand units of roundoff (eps = 2.2e-16, 1.2e-7, 7.8e-3,
# 9.8e-4): room for the different summation orders of two correct implementations over up to
# ~1e4 terms (a sum of K terms differs by about sqrt(K)·eps normwise between orders), and far
# below what a wrong answer produces (a missing tap or a wrong index is an O(1) error). jax's
# own test tolerances (jax._src.public_test_util.default_tolerance: 1e-15, 1e-6, 1e-2, 1e-3)
# are elementwise and meant for identical algorithms; ours are looser for float64 and float32,
# where the algorithms differ, and the same order for the 16-bit types, whose single rounding
# of the output already costs eps/2.
TOLERANCES: dict[str, float] = {
    "float64": 1e-10,
    "float32": 1e-5,
    "bfloat16": 2e-2,
    "float16": 2e-3,
}

# Finite-difference steps for check_op_gradients: about eps^(1/3) of the dtype, the step that
# balances the O(h²) truncation of central differences against the O(eps/h) roundoff.
_FD_STEP = {"float64": 1e-4, "float32": 5e-3}
_FD_TOL = {"float64": 1e-5, "float32": 2e-3}  # jax's default_gradient_tolerance


def _dtype_name(dtype: Any) -> str:
    return jnp.dtype(dtype).name


def tolerance(dtype: Any) -> float:
    """The default normwise relative tolerance of ``dtype`` (see :data:`TOLERANCES`).

    .. math:: \\text{pass} \\iff \\max|a - b| \\le atol + rtol \\cdot \\max|b|

    =========  ======  ============================================================
    dtype      rtol    why
    =========  ======  ============================================================
    float64    1e-10   ~5e5 ulps: different summation orders over large reductions
    float32    1e-5    ~80 ulps: float32 accumulation in different orders
    bfloat16   2e-2    ~2.5 ulps (eps 7.8e-3): one rounding of the output, plus inputs
    float16    2e-3    ~2 ulps (eps 9.8e-4)
    =========  ======  ============================================================

    Args:
      dtype: a floating dtype (anything ``jnp.dtype`` accepts).

    Returns:
      The relative tolerance, a float.

    Raises:
      TypeError: ``dtype`` is not one of the floating dtypes above.

    Example:
      >>> tolerance("float32")
      1e-05
    """
    try:
        name = _dtype_name(dtype)
    except TypeError as e:
        raise TypeError(f"tolerance: dtype must be a floating dtype, got {dtype!r}") from e
    if name not in TOLERANCES:
        raise TypeError(f"tolerance: dtype must be one of {tuple(TOLERANCES)}, got {name!r}")
    return TOLERANCES[name]


def _is_float(x: Any) -> bool:
    return hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.floating)


def _least_precise(trees: Sequence[Any]) -> str:
    names = {_dtype_name(x.dtype) for t in trees for x in jax.tree.leaves(t) if _is_float(x)}
    known = [n for n in TOLERANCES if n in names]
    if not known:
        return "float32"
    return max(known, key=TOLERANCES.__getitem__)


def _errors(a: Any, b: Any) -> tuple[float, float]:
    """``(max|a - b|, max|b|)`` in float64, NaN and ±inf required at the same places."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape:
        return np.inf, 0.0
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    inf_mismatch = np.isinf(a) | np.isinf(b)
    inf_mismatch &= ~((a == b) & np.isinf(b))
    if np.any(nan_a != nan_b) or np.any(inf_mismatch):
        return np.inf, 0.0
    finite = np.isfinite(b)
    if not finite.any():
        return 0.0, 0.0
    diff = np.abs(a[finite] - b[finite])
    return float(diff.max()), float(np.abs(b[finite]).max())


def rel_err(a: Any, b: Any) -> float:
    """Normwise relative error of ``a`` against ``b``: ``max|a - b| / max|b|`` over all leaves.

    .. math:: \\mathrm{err}(a, b) = \\frac{\\max_i |a_i - b_i|}{\\max_i |b_i|}

    NaN and ±inf must sit at the same places in both (they are then ignored); otherwise the
    error is ``inf``. An all-zero ``b`` gives ``max|a|`` divided by the smallest normal
    float64, i.e. ``inf`` unless ``a`` is zero too.

    Args:
      a: an array or pytree of arrays (the computed value).
      b: the same structure (the expected value).

    Returns:
      The error as a Python float.

    Raises:
      ValueError: the two pytrees have different structures.

    Example:
      >>> rel_err(jnp.array([1.0, 2.5]), jnp.array([1.0, 2.0]))  # 0.5 / 2
      0.25
    """
    la, ta = jax.tree.flatten(a)
    lb, tb = jax.tree.flatten(b)
    if ta != tb:
        raise ValueError(f"rel_err: the pytrees differ: {ta} and {tb}")
    diff = scale = 0.0
    for u, v in zip(la, lb, strict=True):
        d, s = _errors(u, v)
        diff, scale = max(diff, d), max(scale, s)
    if diff == 0.0:
        return 0.0
    return diff / max(scale, np.finfo(np.float64).tiny)


def _random_like(key: jax.Array, tree: Any) -> Any:
    """Standard normal leaves of the same shapes and dtypes (float0 zeros for non-floats)."""
    leaves, treedef = jax.tree.flatten(tree)
    keys = jax.random.split(key, max(1, len(leaves)))
    out = []
    for k, leaf in zip(keys, leaves, strict=False):
        if _is_float(leaf):
            out.append(jax.random.normal(k, jnp.shape(leaf), jnp.float32).astype(leaf.dtype))
        else:
            out.append(np.zeros(jnp.shape(leaf), jax.dtypes.float0))
    return jax.tree.unflatten(treedef, out)


def _cast_like(tree: Any, like: Any) -> Any:
    return jax.tree.map(lambda t, x: t.astype(x.dtype) if _is_float(x) else t, tree, like)


def _compare(mode: str, got: Any, want: Any, rtol: float, atol: float | None) -> None:
    pg, tg = jax.tree_util.tree_flatten_with_path(got)
    pw, tw = jax.tree_util.tree_flatten_with_path(want)
    if tg != tw:
        raise AssertionError(
            f"assert_op_close: {mode}: fn and reference return different structures: {tg} and {tw}"
        )
    pairs = [(p, u, v) for (p, u), (_, v) in zip(pg, pw, strict=True) if _is_float(v)]
    if atol is None:  # errors relative to the largest reference leaf of this mode
        scales = [_errors(v, v)[1] for _, _, v in pairs]
        atol = rtol * max([0.0, *scales])
    for path, u, v in pairs:
        where = jax.tree_util.keystr(path) or "<root>"
        if jnp.shape(u) != jnp.shape(v):
            raise AssertionError(
                f"assert_op_close: {mode}: output leaf {where} has shape {jnp.shape(u)}, the "
                f"reference {jnp.shape(v)}"
            )
        diff, scale = _errors(u, v)
        if not diff <= atol + rtol * scale:
            err = diff / max(scale, np.finfo(np.float64).tiny)
            raise AssertionError(
                f"assert_op_close: {mode}: output leaf {where} (shape {jnp.shape(v)}): normwise "
                f"relative error {err:.3g} exceeds the tolerance rtol={rtol:.3g}, atol={atol:.3g} "
                f"(max|fn - reference| = {diff:.3g}, max|reference| = {scale:.3g}; NaN or inf "
                f"at different places counts as inf)"
            )


def assert_op_close(
    fn: Callable,
    reference: Callable,
    *args: Any,
    modes: Sequence[str] = MODES,
    rtol: float | None = None,
    atol: float | None = None,
    key: Any = None,
) -> None:
    r"""Assert that ``fn`` agrees with ``reference`` in value, VJP and JVP on ``args``.

    .. math::
        \frac{\max|f(x) - r(x)|}{\max|r(x)|},\quad
        \frac{\max|\bar u^\top \partial f(x) - \bar u^\top \partial r(x)|}{\max|\bar u^\top
        \partial r(x)|},\quad
        \frac{\max|\partial f(x)\, t - \partial r(x)\, t|}{\max|\partial r(x)\, t|}

    each at most ``rtol`` (plus ``atol``), per output leaf: the values; the VJPs with one
    random cotangent ``ū`` (standard normal, drawn from ``key``) passed through both; the JVPs
    with one random tangent ``t`` for every floating input leaf. Integer inputs (labels,
    indices) are not differentiated. One random direction catches a wrong gradient with
    probability 1; it is how jax's own ``check_grads`` probes.

    ``fn`` and ``reference`` must return the same pytree structure and shapes; dtypes may
    differ (both are compared in float64). NaN and ±inf must appear at the same places.

    Args:
      fn: the function under test, called as ``fn(*args)``.
      reference: the trusted function, called the same way.
      *args: arrays or pytrees of arrays.
      modes: any of ``"value"``, ``"vjp"``, ``"jvp"``.
      rtol: relative tolerance; default :func:`tolerance` of the least precise floating
        dtype among the inputs and ``fn``'s outputs.
      atol: absolute tolerance; default ``rtol`` times the largest ``max|reference|`` over
        the output leaves of that mode (so a leaf that is zero in exact arithmetic may carry
        roundoff of the others' size).
      key: a ``jax.random`` key or an int seed for the cotangent and tangents; default 0.

    Returns:
      None.

    Raises:
      AssertionError: a mismatch; the message names the mode, the output leaf, the error
        and the tolerance.
      ValueError: an unknown mode.

    Example:
      >>> import jax.numpy as jnp
      >>> assert_op_close(jnp.tanh, lambda x: 2 * jax.nn.sigmoid(2 * x) - 1, jnp.ones(3))
    """
    op = "assert_op_close"
    if isinstance(modes, str) or not set(modes) <= set(MODES) or not modes:
        raise ValueError(f"{op}: modes must be a non-empty subset of {MODES}, got {modes!r}")
    if key is None:
        key = jax.random.key(0)
    elif isinstance(key, int) and not isinstance(key, bool):
        key = jax.random.key(key)
    k_ct, k_t = jax.random.split(key)
    if "vjp" in modes:
        got, pull = jax.vjp(fn, *args)
        want, pull_ref = jax.vjp(reference, *args)
    else:
        got, want = fn(*args), reference(*args)
    if rtol is None:
        rtol = tolerance(_least_precise([args, got]))
    if "value" in modes:
        _compare("value", got, want, rtol, atol)
    if "vjp" in modes:
        ct = _random_like(k_ct, want)
        _compare("vjp", pull(_cast_like(ct, got)), pull_ref(ct), rtol, atol)
    if "jvp" in modes:
        tangents = _random_like(k_t, args)
        _, t_got = jax.jvp(fn, args, tangents)
        _, t_want = jax.jvp(reference, args, tangents)
        _compare("jvp", t_got, t_want, rtol, atol)


def check_op_gradients(
    fn: Callable,
    *args: Any,
    order: int = 2,
    modes: Sequence[str] = ("fwd", "rev"),
    eps: float | None = None,
    rtol: float | None = None,
    atol: float | None = None,
) -> None:
    r"""``jax.test_util.check_grads`` with the step and tolerance chosen from the dtype.

    .. math:: \partial f(x)\,t \approx \frac{f(x + h t) - f(x - h t)}{2h}

    checked in one random direction ``t`` for every order up to ``order``, in forward
    (``"fwd"``: JVP) and reverse (``"rev"``: VJP) mode. The step ``h`` is about
    ``eps^(1/3)`` of the dtype (1e-4 for float64, 5e-3 for float32), which balances the
    ``O(h²)`` truncation error against the ``O(eps/h)`` roundoff; the tolerances are jax's
    ``default_gradient_tolerance`` (1e-5, 2e-3). Only floating arguments are differentiated;
    integer ones are held fixed.

    Finite differences are unreliable where ``f`` is not smooth within ``h`` of ``x``:
    kinks (relu at 0, |x| at 0, a hinge at its margin, clipping at its bounds) and ties
    (two equal maxima in a max pool window, equal logits in an argmax). Draw inputs away
    from them (:func:`dlref.testing.strategies.arrays` with ``min_gap`` and
    ``avoid``), and assert the chosen subgradient at the kink directly. 16-bit floats have
    too few digits for any step: check in float32 or float64 and compare the 16-bit op
    with :func:`assert_op_close` instead.

    Args:
      fn: the function, called as ``fn(*args)``.
      *args: arrays (float64 under ``jax.enable_x64`` recommended).
      order: the highest derivative order to check (1, 2 or 3).
      modes: ``("fwd", "rev")`` or one of them.
      eps: the finite-difference step; default from the dtype.
      rtol: relative tolerance; default from the dtype.
      atol: absolute tolerance; default from the dtype.

    Returns:
      None.

    Raises:
      AssertionError: a derivative disagrees with finite differences.
      TypeError: no floating argument, or a 16-bit floating one.
      ValueError: ``order`` not a positive int or an unknown mode.

    Example:
      >>> with jax.enable_x64(True):
      ...     check_op_gradients(jnp.sin, jnp.linspace(0.1, 1.0, 4))
    """
    op = "check_op_gradients"
    if isinstance(order, bool) or not isinstance(order, int) or order < 1:
        raise ValueError(f"{op}: order must be a positive int, got {order!r}")
    if isinstance(modes, str) or not modes or not set(modes) <= {"fwd", "rev"}:
        raise ValueError(f"{op}: modes must be a non-empty subset of ('fwd', 'rev'), got {modes!r}")
    floats = [i for i, a in enumerate(args) if all(_is_float(x) for x in jax.tree.leaves(a))]
    floats = [i for i in floats if jax.tree.leaves(args[i])]
    if not floats:
        raise TypeError(f"{op}: no floating argument to differentiate, got {args!r}")
    name = _least_precise([args[i] for i in floats])
    if name not in _FD_STEP:
        raise TypeError(
            f"{op}: finite differences need float32 or float64 arguments, got {name} "
            f"(check a 16-bit op with assert_op_close against a float32 reference)"
        )

    def diff_fn(*diff_args):
        full = list(args)
        for i, a in zip(floats, diff_args, strict=True):
            full[i] = a
        return fn(*full)

    tol = _FD_TOL[name]
    check_grads(
        diff_fn,
        tuple(args[i] for i in floats),
        order,
        modes=tuple(modes),
        eps=_FD_STEP[name] if eps is None else eps,
        rtol=tol if rtol is None else rtol,
        atol=tol if atol is None else atol,
    )
