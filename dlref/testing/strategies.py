r"""Hypothesis strategies for convolution, transposed convolution and pooling geometries.

Every configuration these draw is *valid*: ``dlref.conv`` / ``conv_transpose`` /
``max_pool`` / ``avg_pool`` accept it and produce a non-empty output, and ``lax`` computes
the same shape. Each is a frozen dataclass whose :meth:`kwargs` are the keyword arguments of
the dlref op and whose :meth:`inputs` draws random arrays of the right shapes, so a property
test of your own kernel is a few lines::

    from hypothesis import given
    import dlref
    from dlref.testing import assert_op_close
    from dlref.testing.strategies import conv_configs

    @given(conv_configs(ranks=(2,)))
    def test_my_conv(cfg):
        x, w = cfg.inputs(jax.random.key(0), jnp.float32)
        assert_op_close(lambda x, w: my_conv(x, w, **cfg.kwargs()),
                        lambda x, w: dlref.conv(x, w, **cfg.kwargs()), x, w)

Shapes stay small (spatial sizes up to a few times the dilated kernel, a handful of
channels) so that every draw compiles and runs in milliseconds on a CPU; hypothesis shrinks a
failure towards rank 1, kernel 1, stride 1, no padding.

Needs hypothesis (``pip install 'dlref[testing]'``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dlref.shapes import conv_output_size, conv_transpose_output_size

__all__ = [
    "PADDING_FORMS",
    "ConvConfig",
    "ConvTransposeConfig",
    "PoolConfig",
    "arrays",
    "conv_configs",
    "conv_transpose_configs",
    "pool_configs",
]

PADDING_FORMS = ("int", "per_dim", "pairs", "VALID", "SAME")


def _as_key(key: Any) -> jax.Array:
    if isinstance(key, int) and not isinstance(key, bool):
        return jax.random.key(key)
    return key


def _normal(key: jax.Array, shape: tuple[int, ...], dtype: Any) -> jax.Array:
    return jax.random.normal(key, shape, jnp.float32).astype(dtype)


def _pairs(padding: Any, nd: int) -> tuple[tuple[int, int], ...] | None:
    """``(lo, hi)`` per dim of a numeric padding form; ``None`` for the strings."""
    if isinstance(padding, str):
        return None
    if isinstance(padding, int):
        return ((padding, padding),) * nd
    return tuple(p if isinstance(p, tuple) else (p, p) for p in padding)


@dataclasses.dataclass(frozen=True)
class ConvConfig:
    """One valid :func:`dlref.conv` geometry (channels-last).

    Attributes:
      input_shape: ``(N, *spatial, C_in)``.
      kernel_shape: ``(*kernel, C_in // groups, C_out)`` (HWIO).
      stride: one int per spatial dim.
      padding: any dlref padding form (an int, ints per dim, ``(lo, hi)`` pairs,
        ``"VALID"`` or ``"SAME"``).
      dilation: one int per spatial dim.
      groups: channel groups (``groups == C_in`` is depthwise).
    """

    input_shape: tuple[int, ...]
    kernel_shape: tuple[int, ...]
    stride: tuple[int, ...]
    padding: Any
    dilation: tuple[int, ...]
    groups: int

    @property
    def nd(self) -> int:
        """The spatial rank."""
        return len(self.kernel_shape) - 2

    @property
    def output_shape(self) -> tuple[int, ...]:
        """``(N, *out, C_out)`` by :func:`dlref.shapes.conv_output_size`."""
        sizes = self.input_shape[1:-1]
        k = self.kernel_shape[:-2]
        if self.padding == "VALID":
            pads = ((0, 0),) * self.nd
        elif self.padding == "SAME":
            return (self.input_shape[0], *(-(-n // s) for n, s in zip(sizes, self.stride)),
                    self.kernel_shape[-1])  # fmt: skip
        else:
            pads = _pairs(self.padding, self.nd)
        out = conv_output_size(sizes, k, self.stride, pads, self.dilation)
        return (self.input_shape[0], *out, self.kernel_shape[-1])

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`dlref.conv`: stride, padding, dilation, groups."""
        return dict(
            stride=self.stride, padding=self.padding, dilation=self.dilation, groups=self.groups
        )

    def inputs(self, key: Any, dtype: Any = jnp.float32) -> tuple[jax.Array, jax.Array]:
        """Standard normal ``(x, w)`` of this geometry (``key`` a jax key or an int seed)."""
        kx, kw = jax.random.split(_as_key(key))
        return _normal(kx, self.input_shape, dtype), _normal(kw, self.kernel_shape, dtype)


@dataclasses.dataclass(frozen=True)
class ConvTransposeConfig:
    """One valid :func:`dlref.conv_transpose` geometry (channels-last).

    Attributes:
      input_shape: ``(N, *spatial, C_in_t)``.
      kernel_shape: ``(*kernel, C_out_t // groups, C_in_t)``: the kernel of the forward conv
        it is the adjoint of (PyTorch's ``ConvTranspose`` weight moved to channels-last).
      stride: one int per spatial dim.
      padding: an int, ints per dim or ``(lo, hi)`` pairs (no strings).
      output_padding: one int per dim, each below the stride or the dilation of its dim.
      dilation: one int per spatial dim.
      groups: channel groups.
    """

    input_shape: tuple[int, ...]
    kernel_shape: tuple[int, ...]
    stride: tuple[int, ...]
    padding: Any
    output_padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int

    @property
    def nd(self) -> int:
        """The spatial rank."""
        return len(self.kernel_shape) - 2

    @property
    def output_shape(self) -> tuple[int, ...]:
        """``(N, *out, C_out_t)`` by PyTorch's size rule."""
        pads = _pairs(self.padding, self.nd)
        out = tuple(
            conv_transpose_output_size(n, k, s, 0, a, d) - lo - hi
            for n, k, s, a, d, (lo, hi) in zip(
                self.input_shape[1:-1], self.kernel_shape[:-2], self.stride,
                self.output_padding, self.dilation, pads,
            )
        )  # fmt: skip
        return (self.input_shape[0], *out, self.kernel_shape[-2] * self.groups)

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`dlref.conv_transpose`."""
        return dict(
            stride=self.stride, padding=self.padding, output_padding=self.output_padding,
            dilation=self.dilation, groups=self.groups,
        )  # fmt: skip

    def inputs(self, key: Any, dtype: Any = jnp.float32) -> tuple[jax.Array, jax.Array]:
        """Standard normal ``(x, w)`` of this geometry (``key`` a jax key or an int seed)."""
        kx, kw = jax.random.split(_as_key(key))
        return _normal(kx, self.input_shape, dtype), _normal(kw, self.kernel_shape, dtype)


@dataclasses.dataclass(frozen=True)
class PoolConfig:
    """One valid pooling geometry (channels-last) for ``kind`` ``"max"`` or ``"avg"``.

    Attributes:
      kind: ``"max"`` (:func:`dlref.max_pool`) or ``"avg"`` (:func:`dlref.avg_pool`).
      input_shape: ``(N, *spatial, C)``.
      window: one int per spatial dim.
      stride: one int per spatial dim.
      padding: ``(lo, hi)`` per dim, each at most ``window // 2`` (PyTorch's rule).
      dilation: one int per dim (always 1 for ``"avg"``).
      ceil_mode: PyTorch's ``ceil_mode``.
      count_include_pad: PyTorch's ``count_include_pad`` (``"avg"`` only).
    """

    kind: str
    input_shape: tuple[int, ...]
    window: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]
    dilation: tuple[int, ...]
    ceil_mode: bool
    count_include_pad: bool

    @property
    def nd(self) -> int:
        """The spatial rank."""
        return len(self.window)

    @property
    def output_shape(self) -> tuple[int, ...]:
        """``(N, *out, C)`` with PyTorch's ``ceil_mode`` rule."""
        out = conv_output_size(
            self.input_shape[1:-1], self.window, self.stride, self.padding, self.dilation,
            ceil_mode=self.ceil_mode,
        )  # fmt: skip
        return (self.input_shape[0], *out, self.input_shape[-1])

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments of the pooling op after ``(x, window)``."""
        kw = dict(stride=self.stride, padding=self.padding, ceil_mode=self.ceil_mode)
        if self.kind == "max":
            kw["dilation"] = self.dilation
        else:
            kw["count_include_pad"] = self.count_include_pad
        return kw

    def inputs(self, key: Any, dtype: Any = jnp.float32) -> tuple[jax.Array]:
        """A ``(x,)`` of distinct values (a random permutation of a grid, no ties in a window,
        so max pooling has a unique argmax and finite differences are reliable)."""
        n = math.prod(self.input_shape)
        perm = jax.random.permutation(_as_key(key), n).astype(jnp.float32)
        x = (perm - (n - 1) / 2) / max(n, 1) * 4.0  # distinct values in [-2, 2]
        return (x.reshape(self.input_shape).astype(dtype),)


def _padding_form(draw, form: str, nd: int, max_pad: Sequence[int]) -> Any:
    pads = tuple((draw(st.integers(0, m)), draw(st.integers(0, m))) for m in max_pad)
    if form == "int":
        return draw(st.integers(0, min(max_pad)))
    if form == "per_dim":
        return tuple(lo for lo, _ in pads)
    if form == "pairs":
        return pads
    return form  # "VALID" / "SAME"


def _check_forms(forms: Sequence[str], allowed: Sequence[str], op: str) -> tuple[str, ...]:
    forms = tuple(forms)
    if not forms or not set(forms) <= set(allowed):
        raise ValueError(
            f"{op}: padding_forms must be a non-empty subset of {allowed}, got {forms}"
        )
    return forms


def _check_ranks(ranks: Sequence[int], op: str) -> tuple[int, ...]:
    ranks = tuple(ranks)
    if not ranks or not set(ranks) <= {1, 2, 3}:
        raise ValueError(f"{op}: ranks must be a non-empty subset of (1, 2, 3), got {ranks}")
    return ranks


def _check_positive(op: str, **values: int) -> None:
    for name, v in values.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{op}: {name} must be a positive int, got {v!r}")


@st.composite
def conv_configs(
    draw,
    ranks: Sequence[int] = (1, 2, 3),
    max_kernel: int = 3,
    max_stride: int = 3,
    max_dilation: int = 2,
    groups: bool = True,
    padding_forms: Sequence[str] = PADDING_FORMS,
    *,
    max_batch: int = 2,
    max_channels_per_group: int = 2,
    strided_dilation: bool = True,
) -> ConvConfig:
    """Draw a valid :class:`ConvConfig`.

    Args:
      ranks: spatial ranks to draw from.
      max_kernel: largest kernel size per dim (2 for rank 3, to keep draws small).
      max_stride: largest stride.
      max_dilation: largest dilation.
      groups: also draw grouped (2 or 3 groups) and depthwise (with a channel multiplier)
        convolutions; ``False`` keeps ``groups=1``.
      padding_forms: any of :data:`PADDING_FORMS`.
      max_batch: largest batch size.
      max_channels_per_group: largest ``C_in / groups`` and ``C_out / groups``.
      strided_dilation: ``False`` never draws stride > 1 and dilation > 1 in the same dim
        (the input gradient of such a conv is a conv dilated on both sides, which XLA's CPU
        compiler in jaxlib 0.11 can abort on).

    Returns:
      A hypothesis strategy of :class:`ConvConfig`.
    """
    op = "conv_configs"
    ranks = _check_ranks(ranks, op)
    forms = _check_forms(padding_forms, PADDING_FORMS, op)
    _check_positive(op, max_kernel=max_kernel, max_stride=max_stride, max_dilation=max_dilation,
                    max_batch=max_batch, max_channels_per_group=max_channels_per_group)  # fmt: skip
    nd = draw(st.sampled_from(ranks))
    kmax = min(max_kernel, 2) if nd == 3 else max_kernel
    k = tuple(draw(st.integers(1, kmax)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, max_stride)) for _ in range(nd))
    dilation = tuple(
        draw(st.integers(1, max_dilation)) if (strided_dilation or s == 1) else 1 for s in stride
    )
    g = draw(st.sampled_from((1, 2, 3))) if groups else 1
    depthwise = groups and draw(st.booleans())
    cin_g = 1 if depthwise else draw(st.integers(1, max_channels_per_group))
    cout_g = draw(st.integers(1, max_channels_per_group))
    form = draw(st.sampled_from(forms))
    padding = _padding_form(draw, form, nd, [2] * nd)
    # Inputs at least as large as the dilated kernel, so an output exists for every padding.
    sizes = tuple(
        draw(st.integers(d * (kk - 1) + 1, d * (kk - 1) + 3)) for kk, d in zip(k, dilation)
    )
    batch = draw(st.integers(1, max_batch))
    return ConvConfig(
        input_shape=(batch, *sizes, cin_g * g),
        kernel_shape=(*k, cin_g, cout_g * g),
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=g,
    )


@st.composite
def conv_transpose_configs(
    draw,
    ranks: Sequence[int] = (1, 2, 3),
    max_kernel: int = 3,
    max_stride: int = 3,
    max_dilation: int = 2,
    groups: bool = True,
    padding_forms: Sequence[str] = ("int", "per_dim", "pairs"),
    *,
    max_batch: int = 2,
    max_channels_per_group: int = 2,
    strided_dilation: bool = True,
) -> ConvTransposeConfig:
    """Draw a valid :class:`ConvTransposeConfig`, ``output_padding`` included.

    Args:
      ranks: spatial ranks to draw from.
      max_kernel: largest kernel size per dim (2 for rank 3).
      max_stride: largest stride.
      max_dilation: largest dilation.
      groups: also draw grouped convolutions.
      padding_forms: any of ``"int"``, ``"per_dim"``, ``"pairs"`` (transposed convolution
        takes no padding strings).
      max_batch: largest batch size.
      max_channels_per_group: largest channels per group.
      strided_dilation: ``False`` never draws stride > 1 and dilation > 1 in the same dim.

    Returns:
      A hypothesis strategy of :class:`ConvTransposeConfig`.
    """
    op = "conv_transpose_configs"
    ranks = _check_ranks(ranks, op)
    forms = _check_forms(padding_forms, ("int", "per_dim", "pairs"), op)
    _check_positive(op, max_kernel=max_kernel, max_stride=max_stride, max_dilation=max_dilation,
                    max_batch=max_batch, max_channels_per_group=max_channels_per_group)  # fmt: skip
    nd = draw(st.sampled_from(ranks))
    kmax = min(max_kernel, 2) if nd == 3 else max_kernel
    k = tuple(draw(st.integers(1, kmax)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, max_stride)) for _ in range(nd))
    dilation = tuple(
        draw(st.integers(1, max_dilation)) if (strided_dilation or s == 1) else 1 for s in stride
    )
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    sizes = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    # The full (uncropped) output along each dim; the padding may crop all but one pixel of it.
    full = [
        conv_transpose_output_size(n, kk, s, 0, a, d)
        for n, kk, s, a, d in zip(sizes, k, stride, output_padding, dilation)
    ]
    max_pad = [max(0, min(2, (f - 1) // 2)) for f in full]
    form = draw(st.sampled_from(forms))
    padding = _padding_form(draw, form, nd, max_pad)
    g = draw(st.sampled_from((1, 2, 3))) if groups else 1
    cin_g = draw(st.integers(1, max_channels_per_group))
    cout_g = draw(st.integers(1, max_channels_per_group))
    batch = draw(st.integers(1, max_batch))
    return ConvTransposeConfig(
        input_shape=(batch, *sizes, cin_g * g),
        kernel_shape=(*k, cout_g, cin_g * g),
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
        groups=g,
    )


@st.composite
def pool_configs(
    draw,
    ranks: Sequence[int] = (1, 2, 3),
    kinds: Sequence[str] = ("max", "avg"),
    max_window: int = 3,
    max_stride: int = 3,
    max_dilation: int = 2,
    *,
    max_batch: int = 2,
    max_channels: int = 2,
) -> PoolConfig:
    """Draw a valid :class:`PoolConfig`, ``ceil_mode`` and ``count_include_pad`` included.

    Valid means: padding at most ``window // 2`` per side, the dilated window no larger than
    the padded input, and (max pooling with dilation) no window that sees only padding.

    Args:
      ranks: spatial ranks to draw from.
      kinds: ``"max"`` and/or ``"avg"``.
      max_window: largest window per dim (2 for rank 3).
      max_stride: largest stride.
      max_dilation: largest dilation (max pooling only).
      max_batch: largest batch size.
      max_channels: largest channel count.

    Returns:
      A hypothesis strategy of :class:`PoolConfig`.
    """
    op = "pool_configs"
    ranks = _check_ranks(ranks, op)
    kinds = tuple(kinds)
    if not kinds or not set(kinds) <= {"max", "avg"}:
        raise ValueError(f"{op}: kinds must be a non-empty subset of ('max', 'avg'), got {kinds}")
    _check_positive(op, max_window=max_window, max_stride=max_stride, max_dilation=max_dilation,
                    max_batch=max_batch, max_channels=max_channels)  # fmt: skip
    kind = draw(st.sampled_from(kinds))
    nd = draw(st.sampled_from(ranks))
    wmax = min(max_window, 2) if nd == 3 else max_window
    window = tuple(draw(st.integers(1, wmax)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, max_stride)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, max_dilation)) if kind == "max" else 1 for _ in range(nd))
    padding = tuple((draw(st.integers(0, k // 2)), draw(st.integers(0, k // 2))) for k in window)
    sizes = tuple(
        draw(st.integers(max(1, d * (k - 1) + 1 - lo - hi), d * (k - 1) + 4))
        for k, d, (lo, hi) in zip(window, dilation, padding)
    )
    ceil_mode = draw(st.booleans())
    count_include_pad = draw(st.booleans()) if kind == "avg" else True
    # Dilated max windows can straddle the input and see only padding: redraw without padding.
    for n, k, s, d, (lo, hi) in zip(sizes, window, stride, dilation, padding):
        out = conv_output_size(n, k, s, (lo, hi), d, ceil_mode=ceil_mode)
        starts = np.arange(out) * s - lo
        pos = starts[:, None] + np.arange(k)[None, :] * d
        if not ((pos >= 0) & (pos < n)).any(axis=1).all():
            padding = ((0, 0),) * nd
            break
    batch = draw(st.integers(1, max_batch))
    channels = draw(st.integers(1, max_channels))
    return PoolConfig(
        kind=kind,
        input_shape=(batch, *sizes, channels),
        window=window,
        stride=stride,
        padding=padding,
        dilation=dilation,
        ceil_mode=ceil_mode,
        count_include_pad=count_include_pad,
    )


@st.composite
def arrays(
    draw,
    shape: Sequence[int],
    dtype: Any = np.float64,
    elements: st.SearchStrategy | None = None,
    *,
    min_gap: float = 0.0,
    avoid: Sequence[float] = (),
) -> np.ndarray:
    """Draw a floating NumPy array, optionally without ties and away from kinks.

    Args:
      shape: the array's shape.
      dtype: a floating dtype.
      elements: a hypothesis strategy of floats; default finite values in ``[-4, 4]``.
      min_gap: every two entries differ by at least this much (no ties: max pooling's argmax
        is unique and finite differences with a step below ``min_gap / 2`` cannot cross it).
      avoid: points (kinks: 0 for relu, ±δ for Huber) every entry keeps ``min_gap`` away
        from.

    Returns:
      A hypothesis strategy of arrays. With ``min_gap``, the values are a random
      permutation of an evenly spaced grid (shifted off ``avoid``), which hypothesis can
      still shrink.
    """
    op = "arrays"
    shape = tuple(shape)
    if not jnp.issubdtype(jnp.dtype(dtype), jnp.floating):
        raise TypeError(f"{op}: dtype must be floating, got {dtype!r}")
    if min_gap < 0:
        raise ValueError(f"{op}: min_gap must be >= 0, got {min_gap!r}")
    if min_gap == 0 and not avoid:
        elems = elements or st.floats(-4.0, 4.0, allow_nan=False, width=32)
        return draw(hnp.arrays(np.dtype(dtype), shape, elements=elems))
    n = math.prod(shape)
    gap = max(min_gap, 1e-3)
    perm = np.asarray(draw(st.permutations(range(n))), np.float64) if n else np.zeros(0)
    offset = draw(st.floats(0.25, 0.75))
    values = (perm - n / 2 + offset) * gap
    for a in avoid:  # move the grid half a gap off every point to avoid
        near = np.abs(values - a) < gap / 2
        values = np.where(near, values + np.sign(values - a + 1e-300) * gap / 2, values)
    return values.reshape(shape).astype(dtype)
