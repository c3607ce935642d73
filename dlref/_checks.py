"""Shared argument normalisation and validation.

Every public op validates its static arguments (ranks, shapes, dtypes, Python ints and
strings) at trace time through these helpers, so that every message has the same shape::

    f"{op}: {what} must be {rule}, got {value!r}"

Nothing here looks at array *values* under tracing: that would break under ``jax.jit``. The
one exception, :func:`concrete_range`, reads the values of *concrete* arrays (an eager call)
and returns ``None`` for traced ones, so the caller's check simply does not run under ``jit``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

REDUCTIONS = ("mean", "sum", "none")


def check_int(value: Any, name: str, op: str, *, minimum: int | None = None) -> int:
    """Return ``value`` as a Python int, or raise.

    Python and NumPy integers are accepted; ``bool`` (an ``int`` subclass), floats, strings
    and everything else are not.

    Raises:
      TypeError: ``value`` is not an integer.
      ValueError: ``value`` is below ``minimum``.
    """
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        raise TypeError(f"{op}: {name} must be an int, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {value!r}")
    return int(value)


def _describe(value: Any) -> str:
    """A short description of ``value`` for a message: arrays by dtype and shape."""
    if isinstance(value, jax.Array | np.ndarray):
        return f"an array of dtype {value.dtype} and shape {value.shape}"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_real(
    value: Any,
    name: str,
    op: str,
    *,
    scalar: bool = True,
    shapes: Sequence[tuple[int, ...]] | None = None,
    finite: bool = False,
) -> None:
    """Raise unless ``value`` is a real number: a Python or NumPy int or float (not a bool), or
    an integer or floating array (NumPy, JAX, traced, or a nested sequence of numbers).

    The allowed shapes are ``shapes`` when given, else ``()`` when ``scalar``, else any. Strings
    such as ``"0.1"``, ``None``, bools and complex numbers are rejected rather than converted,
    so a typo cannot reach ``jnp`` and fail there with a message that does not name the op.
    With ``finite=True`` a concrete NaN or infinity is refused (a traced value is not looked at).

    Raises:
      TypeError: ``value`` is not a real number or real array.
      ValueError: its shape is not allowed, or (``finite``) it is NaN or infinite.
    """
    if shapes is None and scalar:
        shapes = ((),)
    if value is None or isinstance(value, bool | np.bool_ | str | bytes):
        raise TypeError(f"{op}: {name} must be a number, got {_describe(value)}")
    if isinstance(value, jax.Array | np.ndarray):
        dtype, shape = value.dtype, tuple(value.shape)
    elif isinstance(value, int | float | np.integer | np.floating):
        dtype, shape = np.asarray(value).dtype, ()
    else:
        try:
            arr = np.asarray(value)
        except (TypeError, ValueError) as e:
            raise TypeError(f"{op}: {name} must be a number, got {_describe(value)}") from e
        if arr.dtype.kind in "OUSbc":
            raise TypeError(f"{op}: {name} must be a number, got {_describe(value)}")
        dtype, shape = arr.dtype, tuple(arr.shape)
    if not (jnp.issubdtype(dtype, jnp.integer) or jnp.issubdtype(dtype, jnp.floating)):
        what = _describe(value) if isinstance(value, jax.Array | np.ndarray) else repr(value)
        raise TypeError(f"{op}: {name} must be a real number, got {what}")
    if shapes is not None and shape not in {tuple(s) for s in shapes}:
        want = " or ".join("a scalar" if s == () else f"shape {tuple(s)}" for s in shapes)
        got = f"an array of shape {shape}" if hasattr(value, "shape") else repr(value)
        raise ValueError(f"{op}: {name} must be {want}, got {got}")
    if finite and not isinstance(value, jax.core.Tracer):
        if not np.all(np.isfinite(np.asarray(value, np.float64))):
            raise ValueError(f"{op}: {name} must be finite, got {value!r}")


def check_nonnegative(value: Any, name: str, op: str, *, upper: float = float("inf")) -> None:
    """Raise unless ``value`` is a finite real scalar in ``[0, upper]`` (traced: type and
    shape only).

    Raises:
      TypeError: ``value`` is not a real number.
      ValueError: ``value`` is not a scalar, is NaN or infinite, or lies outside ``[0, upper]``.
    """
    check_real(value, name, op, finite=True)
    check_in_range(value, 0.0, upper, name, op)


def check_key(key: Any, op: str, name: str = "key") -> None:
    """Raise ``TypeError`` unless ``key`` is one ``jax.random`` key.

    Accepted: a typed key (``jax.random.key(seed)``, shape ``()``) or a legacy raw key
    (``jax.random.PRNGKey(seed)``: a ``uint32`` array of shape ``(2,)``), traced or not.

    Raises:
      TypeError: anything else (an int seed, a float array, ``None``, a batch of keys).
    """
    if isinstance(key, jax.Array | np.ndarray):
        dtype = key.dtype
        if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key) and key.ndim == 0:
            return
        if dtype == np.uint32 and key.shape == (2,):
            return
    raise TypeError(
        f"{op}: {name} must be one jax.random key (jax.random.key(seed)), got {_describe(key)}"
    )


def as_array(value: Any, name: str, op: str) -> jax.Array:
    """``jnp.asarray(value)``, with a message naming the op when ``value`` is no array.

    Raises:
      TypeError: ``value`` cannot be an array (a string, ``None``, a dict, an object).
      ValueError: a ragged nested list.
    """
    if value is None or isinstance(value, str | bytes | dict):
        raise TypeError(f"{op}: {name} must be an array, got {value!r}")
    try:
        return jnp.asarray(value)
    except TypeError as e:
        raise TypeError(f"{op}: {name} must be an array, got {type(value).__name__}") from e
    except ValueError as e:
        raise ValueError(f"{op}: {name} must be a rectangular array, got {value!r}") from e


def concrete_range(x: Any) -> tuple[float, float] | None:
    """``(min, max)`` of the non-NaN values of a *concrete* array; ``None`` when ``x`` is
    traced (under ``jit``, ``vmap``, ``grad``: its values do not exist yet), empty, or all NaN.

    NaN is left out on purpose: a check built on this must let NaN through to the result, where
    it propagates (docs/contract.md), instead of raising.
    """
    if isinstance(x, jax.core.Tracer):
        return None
    values = np.asarray(x)
    values = values[~np.isnan(values)] if np.issubdtype(values.dtype, np.floating) else values
    if values.size == 0:
        return None
    return values.min().item(), values.max().item()


def check_values_in_range(x: Any, lo: float, hi: float, name: str, op: str) -> None:
    """Raise ``ValueError`` if a *concrete* array has a value outside ``[lo, hi]``.

    NaN is let through (it propagates to the op's result), and traced arrays are not looked at
    (under ``jit`` the values do not exist yet): see :func:`concrete_range`.
    """
    extrema = concrete_range(x)
    if extrema is not None and (extrema[0] < lo or extrema[1] > hi):
        raise ValueError(
            f"{op}: {name} must lie in [{lo}, {hi}], got values in [{extrema[0]}, {extrema[1]}]"
        )


def check_bool(value: Any, name: str, op: str) -> bool:
    """Return ``value`` if it is a Python (or NumPy) bool, else raise ``TypeError``.

    Flags select code paths at trace time, so a truthy string such as ``"no"`` must not pass
    for ``True``.
    """
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{op}: {name} must be a bool, got {value!r}")
    return bool(value)


def normalize_axes(
    axis: Any, ndim: int, op: str, *, name: str = "axis", allow_empty: bool = False
) -> tuple[int, ...]:
    """Return sorted non-negative axes; ``axis`` an int or a sequence of ints in [-ndim, ndim).

    Raises:
      TypeError: an axis that is not an int.
      ValueError: an axis out of range, a repeated axis, or (unless ``allow_empty``) no axis.
    """
    items = (axis,) if isinstance(axis, int | np.integer) and not isinstance(axis, bool) else axis
    if not isinstance(items, Sequence) or isinstance(items, str):
        raise TypeError(f"{op}: {name} must be an int or a tuple of ints, got {axis!r}")
    out = []
    for a in items:
        if isinstance(a, bool | np.bool_) or not isinstance(a, int | np.integer):
            raise TypeError(f"{op}: {name} must be an int or a tuple of ints, got {axis!r}")
        if not -ndim <= a < ndim:
            raise ValueError(f"{op}: {name} {a} is out of range for an input of rank {ndim}")
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: {name} must not repeat an axis, got {axis!r}")
    if not out and not allow_empty:
        raise ValueError(f"{op}: {name} must name at least one axis, got {axis!r}")
    return tuple(sorted(out))


def as_tuple(value: Any, n: int, name: str, op: str, *, minimum: int | None = None) -> tuple:
    """Return ``value`` as a tuple of ``n`` Python ints (an int is repeated ``n`` times).

    Raises:
      TypeError: if an entry is not an int.
      ValueError: if a tuple has the wrong length, or an entry is below ``minimum``.
    """
    if isinstance(value, bool | np.bool_):
        raise TypeError(f"{op}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    if isinstance(value, int | np.integer):
        out = (int(value),) * n
    elif isinstance(value, Sequence) and not isinstance(value, str):
        out = tuple(value)
        if len(out) != n:
            raise ValueError(
                f"{op}: {name} must be an int or a tuple of {n} ints (one per spatial "
                f"dimension), got {value!r} of length {len(out)}"
            )
    else:
        raise TypeError(f"{op}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    for v in out:
        if isinstance(v, bool | np.bool_) or not isinstance(v, int | np.integer):
            raise TypeError(f"{op}: {name} must contain Python ints, got {value!r}")
        if minimum is not None and v < minimum:
            raise ValueError(f"{op}: {name} must be >= {minimum}, got {value!r}")
    return tuple(int(v) for v in out)


def as_shape(value: Any, name: str, op: str) -> tuple[int, ...]:
    """Return ``value`` (a sequence of ints >= 0, e.g. an array's shape) as a tuple of ints.

    Raises:
      TypeError: ``value`` is not a sequence (``None``, a string, an int), or an entry is not
        an int.
      ValueError: a negative entry.
    """
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise TypeError(f"{op}: {name} must be a tuple of ints (a shape), got {value!r}")
    for v in value:
        if isinstance(v, bool | np.bool_) or not isinstance(v, int | np.integer):
            raise TypeError(f"{op}: {name} must be a tuple of ints (a shape), got {value!r}")
        if v < 0:
            raise ValueError(f"{op}: {name} must not hold a negative size, got {value!r}")
    return tuple(int(v) for v in value)


def same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """The (lo, hi) padding of ``"SAME"`` (TensorFlow/lax rule: the extra pad goes high).

    .. math:: out = \\lceil n / s \\rceil,\\quad
              total = \\max(0, (out - 1) s + d (k - 1) + 1 - n),\\quad
              lo = \\lfloor total / 2 \\rfloor,\\ hi = total - lo
    """
    out = -(-size // stride)
    total = max(0, (out - 1) * stride + dilation * (kernel - 1) + 1 - size)
    return total // 2, total - total // 2


def normalize_padding(
    padding: Any,
    n: int,
    op: str,
    *,
    sizes: Sequence[int] | None = None,
    window: Sequence[int] | None = None,
    stride: Sequence[int] | None = None,
    dilation: Sequence[int] | None = None,
    allow_strings: bool = True,
) -> tuple[tuple[int, int], ...]:
    """Normalise any padding form (docs/contract.md) to a tuple of ``n`` ``(lo, hi)`` pairs.

    Accepted: an int (same on both sides of every dim), a tuple of ``n`` ints (symmetric per
    dim), a tuple of ``n`` ``(lo, hi)`` pairs, ``"VALID"`` (no padding) and ``"SAME"`` (needs
    ``sizes``, ``window``, ``stride`` and ``dilation``; see :func:`same_padding`).

    Raises:
      ValueError: unknown string, wrong length, negative padding.
      TypeError: entries that are not ints.
    """
    if isinstance(padding, str):
        if not allow_strings:
            raise ValueError(f"{op}: padding must be an int or tuple here, got {padding!r}")
        mode = padding.upper()
        if mode == "VALID":
            return ((0, 0),) * n
        if mode == "SAME":
            if sizes is None or window is None:
                raise ValueError(f"{op}: padding='SAME' needs the input sizes and the window")
            stride = stride or (1,) * n
            dilation = dilation or (1,) * n
            return tuple(
                same_padding(sz, k, s, d)
                for sz, k, s, d in zip(sizes, window, stride, dilation, strict=True)
            )
        raise ValueError(
            f"{op}: padding must be an int, a tuple, 'VALID' or 'SAME', got {padding!r}"
        )
    if isinstance(padding, bool):
        raise TypeError(f"{op}: padding must be an int, a tuple or a string, got {padding!r}")
    if isinstance(padding, int):
        pairs = ((padding, padding),) * n
    elif isinstance(padding, Sequence):
        items = tuple(padding)
        if len(items) != n:
            raise ValueError(
                f"{op}: padding must have one entry per spatial dimension ({n}), got {padding!r}"
            )
        pairs = []
        for item in items:
            if isinstance(item, int) and not isinstance(item, bool):
                pairs.append((item, item))
            elif isinstance(item, Sequence) and not isinstance(item, str) and len(item) == 2:
                pairs.append(tuple(item))
            else:
                raise ValueError(
                    f"{op}: each padding entry must be an int or a (lo, hi) pair, got {padding!r}"
                )
        pairs = tuple(pairs)
    else:
        raise TypeError(f"{op}: padding must be an int, a tuple or a string, got {padding!r}")
    for lo, hi in pairs:
        for v in (lo, hi):
            if isinstance(v, bool | np.bool_) or not isinstance(v, int | np.integer):
                raise TypeError(f"{op}: padding must contain Python ints, got {padding!r}")
            if v < 0:
                raise ValueError(f"{op}: padding must be non-negative, got {padding!r}")
    return pairs


def check_rank(x: Any, ranks: int | Sequence[int], name: str, op: str) -> int:
    """Raise ``ValueError`` unless ``x.ndim`` is one of ``ranks``; return the rank."""
    allowed = (ranks,) if isinstance(ranks, int) else tuple(ranks)
    ndim = jnp.ndim(x)
    if ndim not in allowed:
        want = " or ".join(str(r) for r in allowed)
        raise ValueError(
            f"{op}: {name} must have rank {want}, got rank {ndim} with shape {jnp.shape(x)}"
        )
    return ndim


def check_min_rank(x: Any, rank: int, name: str, op: str) -> None:
    """Raise ``ValueError`` unless ``x.ndim >= rank``."""
    if jnp.ndim(x) < rank:
        raise ValueError(f"{op}: {name} must have rank >= {rank}, got shape {jnp.shape(x)}")


def check_floating(x: Any, name: str, op: str) -> None:
    """Raise ``TypeError`` unless ``x`` is an array (or number) with a floating dtype.

    ``None``, strings (which ``jnp.result_type`` would read as dtype names), dicts and other
    objects are refused with a message naming ``op``.
    """
    if x is None or isinstance(x, str | bytes | dict):
        raise TypeError(f"{op}: {name} must be a floating array, got {_describe(x)}")
    try:
        dtype = jnp.result_type(x)
    except TypeError as e:
        raise TypeError(f"{op}: {name} must be a floating array, got {_describe(x)}") from e
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"{op}: {name} must have a floating dtype, got {dtype}")


def check_dtype(value: Any, name: str, op: str) -> np.dtype:
    """Return ``jnp.dtype(value)`` for a dtype or dtype name, else raise ``TypeError``.

    ``None`` (which NumPy would read as float64), numbers and unknown names are refused.
    """
    if value is None or isinstance(value, bool | int | float | complex | jax.Array | np.ndarray):
        raise TypeError(f"{op}: {name} must be a dtype, got {_describe(value)}")
    try:
        return jnp.dtype(value)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{op}: {name} must be a dtype, got {_describe(value)}") from e


def accumulation_dtype(dtype: Any) -> Any:
    """The dtype to accumulate sums and statistics in: float32 for the 16-bit floats, ``dtype``
    (float32 or float64) otherwise, i.e. ``promote_types(dtype, float32)``. The one definition
    used by every op and kernel."""
    return jnp.promote_types(dtype, jnp.float32)


def check_same_shape(a: Any, b: Any, names: tuple[str, str], op: str) -> None:
    """Raise ``ValueError`` unless ``a`` and ``b`` have the same shape."""
    if jnp.shape(a) != jnp.shape(b):
        raise ValueError(
            f"{op}: {names[0]} and {names[1]} must have the same shape, "
            f"got {jnp.shape(a)} and {jnp.shape(b)}"
        )


def check_in_range(
    value: Any,
    lo: float,
    hi: float,
    name: str,
    op: str,
    *,
    lo_closed: bool = True,
    hi_closed: bool = True,
) -> None:
    """Raise unless ``value`` is a real number (:func:`check_real`) in the given interval.

    Traced values (under ``jit``) have their type checked but not their value: only static
    facts are validated. NaN lies in no interval.

    Raises:
      TypeError: ``value`` is not a real number or real scalar array.
      ValueError: ``value`` lies outside the interval, or is an array of rank > 0.
    """
    check_real(value, name, op)
    if isinstance(value, jax.core.Tracer):
        return
    v = float(value)
    ok_lo = v >= lo if lo_closed else v > lo
    ok_hi = v <= hi if hi_closed else v < hi
    if not (ok_lo and ok_hi):
        interval = f"{'[' if lo_closed else '('}{lo}, {hi}{']' if hi_closed else ')'}"
        raise ValueError(f"{op}: {name} must lie in {interval}, got {value!r}")


def check_reduction(reduction: str, op: str) -> None:
    """Raise unless ``reduction`` is ``"mean"``, ``"sum"`` or ``"none"`` (:func:`check_choice`)."""
    check_choice(reduction, REDUCTIONS, "reduction", op)


def reduce_loss(values: jax.Array, reduction: str, op: str) -> jax.Array:
    """Apply ``reduction`` to per-example loss ``values`` (validated first)."""
    check_reduction(reduction, op)
    if reduction == "mean":
        return jnp.mean(values)
    if reduction == "sum":
        return jnp.sum(values)
    return values


def check_choice(value: Any, choices: Sequence[Any], name: str, op: str) -> None:
    """Raise unless ``value`` is one of ``choices``.

    Raises:
      TypeError: the choices are strings and ``value`` is not one (``None``, a number, a list).
      ValueError: ``value`` is not among ``choices``.
    """
    choices = tuple(choices)
    if all(isinstance(c, str) for c in choices) and not isinstance(value, str):
        raise TypeError(f"{op}: {name} must be one of {choices}, got {value!r}")
    try:
        found = not isinstance(value, bool | np.bool_) and any(value == c for c in choices)
    except (TypeError, ValueError):  # an array compares elementwise: not a choice
        found = False
    if not found:
        raise ValueError(f"{op}: {name} must be one of {choices}, got {value!r}")
