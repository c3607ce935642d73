"""Shape arithmetic: output sizes of convolution, pooling and transposed convolution.

This module sits at the bottom of dlref's dependency graph (only ``_checks`` below it), so the
ops and the kernels can all use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _is_seq(v: Any) -> bool:
    return isinstance(v, Sequence) and not isinstance(v, str)


def _check_int(v: Any, name: str, op: str, minimum: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"{op}: {name} must be an int, got {v!r}")
    if v < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {v!r}")
    return v


def _pad_pair(p: Any, op: str) -> tuple[int, int]:
    if _is_seq(p):
        if len(p) != 2:
            raise ValueError(f"{op}: padding must be an int or a (lo, hi) pair, got {p!r}")
        lo, hi = p
    else:
        lo = hi = p
    return _check_int(lo, "padding", op, 0), _check_int(hi, "padding", op, 0)


def _per_dim(n: Sequence[int], value: Any, name: str, op: str) -> list:
    """Broadcast a scalar to one entry per dimension; a tuple must have one per dimension."""
    m = len(n)
    if not _is_seq(value):
        return [value] * m
    if len(value) != m:
        raise ValueError(f"{op}: {name} must have one entry per dimension ({m}), got {value!r}")
    return list(value)


def _conv_output_size_1d(n, k, s, p, d, ceil_mode, op) -> int:
    n = _check_int(n, "input size n", op, 1)
    k = _check_int(k, "kernel size k", op, 1)
    s = _check_int(s, "stride s", op, 1)
    d = _check_int(d, "dilation d", op, 1)
    lo, hi = _pad_pair(p, op)
    span = n + lo + hi - d * (k - 1) - 1  # last valid start of the dilated window
    if span < 0:
        raise ValueError(
            f"{op}: the dilated kernel d*(k-1)+1={d * (k - 1) + 1} is larger than the padded "
            f"input n+lo+hi={n + lo + hi}; there is no output"
        )
    if not ceil_mode:
        return span // s + 1
    out = -(-span // s) + 1
    # PyTorch's pooling rule: the last window must start inside the input or the left padding.
    if (out - 1) * s >= n + lo:
        out -= 1
    return out


def conv_output_size(n, k, s=1, p=0, d=1, *, ceil_mode=False):
    r"""Output size of a convolution or pooling window along one (or each) spatial dimension.

    .. math::
        out = \left\lfloor \frac{n + p_{lo} + p_{hi} - d\,(k - 1) - 1}{s} \right\rfloor + 1

    With ``ceil_mode=True`` the floor becomes a ceiling, and — PyTorch's rule for pooling — a
    last window that would start inside the right padding is dropped
    (``if (out - 1)·s >= n + p_lo: out -= 1``).

    Matches the output shapes of ``lax.conv_general_dilated``, ``lax.reduce_window`` and
    PyTorch's ``Conv*d`` / ``MaxPool*d`` / ``AvgPool*d``. The seed writes the first formula with
    ``p`` as the *total* padding and the summary formula with ``p`` per side (SEED_ERRATA 1);
    here ``p`` is per side, or an explicit ``(lo, hi)`` pair.

    Args:
      n: input size, an int, or a tuple with one int per spatial dimension.
      k: kernel (window) size; an int or one per dimension.
      s: stride, >= 1; an int or one per dimension.
      p: padding on each side (int) or a ``(lo, hi)`` pair; with tuple ``n``, also a tuple of
        those, one per dimension.
      d: dilation, >= 1; an int or one per dimension.
      ceil_mode: round up instead of down, with PyTorch's pooling rule above.

    Returns:
      The output size: an int, or a tuple of ints when ``n`` is a tuple.

    Raises:
      ValueError: non-positive size, kernel, stride or dilation, negative padding, or a
        dilated kernel larger than the padded input (no output).
      TypeError: non-integer arguments.

    Example:
      >>> conv_output_size(224, 7, s=2, p=3)   # ResNet stem
      112
      >>> conv_output_size(5, 2, s=2, ceil_mode=True)
      3

    References:
      Dumoulin and Visin, "A guide to convolution arithmetic for deep learning", 2016,
      https://arxiv.org/abs/1603.07285.
    """
    op = "conv_output_size"
    if not _is_seq(n):
        return _conv_output_size_1d(n, k, s, p, d, ceil_mode, op)
    n = list(n)
    ks, ss, ds = (_per_dim(n, v, nm, op) for v, nm in ((k, "k"), (s, "s"), (d, "d")))
    ps = _per_dim(n, p, "p", op)
    return tuple(
        _conv_output_size_1d(*args, ceil_mode, op) for args in zip(n, ks, ss, ps, ds, strict=True)
    )


def _conv_transpose_output_size_1d(n, k, s, p, output_padding, d, op) -> int:
    n = _check_int(n, "input size n", op, 1)
    k = _check_int(k, "kernel size k", op, 1)
    s = _check_int(s, "stride s", op, 1)
    d = _check_int(d, "dilation d", op, 1)
    p = _check_int(p, "padding p", op, 0)
    op_ = _check_int(output_padding, "output_padding", op, 0)
    if op_ >= s and op_ >= d:
        raise ValueError(
            f"{op}: output_padding={op_} must be smaller than either stride s={s} or "
            f"dilation d={d} (PyTorch's rule)"
        )
    out = (n - 1) * s - 2 * p + d * (k - 1) + op_ + 1
    if out < 1:
        raise ValueError(f"{op}: padding p={p} leaves no output (size {out})")
    return out


def conv_transpose_output_size(n, k, s=1, p=0, output_padding=0, d=1):
    r"""Output size of a transposed convolution (PyTorch's ``ConvTranspose*d`` rule).

    .. math:: out = (n - 1)\,s - 2p + d\,(k - 1) + output\_padding + 1

    It inverts :func:`conv_output_size`: a convolution with the same ``k, s, p, d`` maps
    ``out`` back to ``n``; ``output_padding`` (smaller than ``s`` or ``d``) picks among the
    ``s`` input sizes that a strided convolution maps to the same ``n``. The seed's
    ``(n − 1)·s + k`` is the special case ``p = 0, d = 1, output_padding = 0``
    (SEED_ERRATA 2).

    Args:
      n: input size; an int or a tuple with one int per spatial dimension.
      k: kernel size; an int or one per dimension.
      s: stride; an int or one per dimension.
      p: padding removed from each side of the full output; an int or one per dimension.
      output_padding: extra size added to one side; an int or one per dimension.
      d: dilation; an int or one per dimension.

    Returns:
      The output size: an int, or a tuple of ints when ``n`` is a tuple.

    Raises:
      ValueError: ``output_padding`` not smaller than ``s`` or ``d``, non-positive sizes, or
        padding that leaves no output.
      TypeError: non-integer arguments.

    Example:
      >>> conv_transpose_output_size(4, 3, s=2, p=1, output_padding=1)   # 4 -> 8
      8
    """
    op = "conv_transpose_output_size"
    if not _is_seq(n):
        return _conv_transpose_output_size_1d(n, k, s, p, output_padding, d, op)
    n = list(n)
    vals = [
        _per_dim(n, v, nm, op)
        for v, nm in ((k, "k"), (s, "s"), (p, "p"), (output_padding, "output_padding"), (d, "d"))
    ]
    return tuple(_conv_transpose_output_size_1d(*args, op) for args in zip(n, *vals, strict=True))
