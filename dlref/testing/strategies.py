r"""Hypothesis strategies for convolution, transposed convolution and pooling geometries.

Every configuration these draw is *valid*: ``dlref.conv`` / ``conv_transpose`` /
``max_pool`` / ``avg_pool`` accept it and produce a non-empty output, and ``lax`` computes
the same shape (``tests/test_testing.py`` runs thousands of draws through both). Each is a
frozen dataclass whose :meth:`kwargs` are the keyword arguments of the dlref op and whose
:meth:`inputs` draws random arrays of the right shapes, so a property test of your own kernel
is a few lines::

    from hypothesis import given
    import dlref
    from dlref.testing import assert_op_close
    from dlref.testing.strategies import conv_configs

    @given(conv_configs(ranks=(2,)))
    def test_my_conv(cfg):
        x, w = cfg.inputs(jax.random.key(0), jnp.float32)
        assert_op_close(lambda x, w: my_conv(x, w, **cfg.kwargs()),
                        lambda x, w: dlref.conv(x, w, **cfg.kwargs()), x, w)

Shapes stay small (spatial sizes up to a few pixels past the dilated kernel, a handful of
channels) so that every draw runs in milliseconds on a CPU; on a failure hypothesis shrinks
towards rank 1, kernel 1, stride 1, no padding, one channel, so the configuration it prints is
the smallest one it found that still fails.

Needs hypothesis (``pip install 'dlref[testing]'``); ``import dlref.testing`` alone does not
import it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dlref._checks import same_padding
from dlref.shapes import conv_output_size, conv_transpose_output_size
from dlref.testing._values import distinct_values

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
_NUMERIC_FORMS = ("int", "per_dim", "pairs")


def _as_key(key: Any) -> jax.Array:
    if isinstance(key, int) and not isinstance(key, bool):
        return jax.random.key(key)
    return key


def _normal(key: jax.Array, shape: tuple[int, ...], dtype: Any) -> jax.Array:
    return jax.random.normal(key, shape, jnp.float32).astype(dtype)


def _normal_inputs(
    key: Any, input_shape: tuple[int, ...], kernel_shape: tuple[int, ...], dtype: Any
) -> tuple[jax.Array, jax.Array]:
    """Standard normal ``(x, w)`` of these shapes, from one key or int seed."""
    kx, kw = jax.random.split(_as_key(key))
    return _normal(kx, input_shape, dtype), _normal(kw, kernel_shape, dtype)


def _pairs(padding: Any, nd: int) -> tuple[tuple[int, int], ...]:
    """``(lo, hi)`` per dim of a numeric padding form (an int, ints per dim, pairs)."""
    if isinstance(padding, int):
        return ((padding, padding),) * nd
    return tuple(tuple(p) if isinstance(p, tuple) else (p, p) for p in padding)


# --------------------------------------------------------------------------------------------
# configurations


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
    def padding_pairs(self) -> tuple[tuple[int, int], ...]:
        """The padding as explicit ``(lo, hi)`` pairs ("SAME" resolved by lax's rule)."""
        if self.padding == "VALID":
            return ((0, 0),) * self.nd
        if self.padding == "SAME":
            return tuple(
                same_padding(n, k, s, d)
                for n, k, s, d in zip(
                    self.input_shape[1:-1], self.kernel_shape[:-2], self.stride, self.dilation
                )
            )
        return _pairs(self.padding, self.nd)

    @property
    def output_shape(self) -> tuple[int, ...]:
        """``(N, *out, C_out)`` by :func:`dlref.shapes.conv_output_size`."""
        out = conv_output_size(
            self.input_shape[1:-1],
            self.kernel_shape[:-2],
            self.stride,
            self.padding_pairs,
            self.dilation,
        )
        return (self.input_shape[0], *out, self.kernel_shape[-1])

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`dlref.conv`: stride, padding, dilation, groups."""
        return dict(
            stride=self.stride, padding=self.padding, dilation=self.dilation, groups=self.groups
        )

    def inputs(self, key: Any, dtype: Any = jnp.float32) -> tuple[jax.Array, jax.Array]:
        """Standard normal ``(x, w)`` of this geometry (``key`` a jax key or an int seed)."""
        return _normal_inputs(key, self.input_shape, self.kernel_shape, dtype)


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
    def padding_pairs(self) -> tuple[tuple[int, int], ...]:
        """The padding as explicit ``(lo, hi)`` pairs."""
        return _pairs(self.padding, self.nd)

    @property
    def output_shape(self) -> tuple[int, ...]:
        """``(N, *out, C_out_t)`` by PyTorch's size rule
        ``(n - 1)·s - lo - hi + d·(k - 1) + output_padding + 1``."""
        out = tuple(
            conv_transpose_output_size(n, k, s, 0, a, d) - lo - hi
            for n, k, s, a, d, (lo, hi) in zip(
                self.input_shape[1:-1],
                self.kernel_shape[:-2],
                self.stride,
                self.output_padding,
                self.dilation,
                self.padding_pairs,
            )
        )
        return (self.input_shape[0], *out, self.kernel_shape[-2] * self.groups)

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`dlref.conv_transpose`."""
        return dict(
            stride=self.stride,
            padding=self.padding,
            output_padding=self.output_padding,
            dilation=self.dilation,
            groups=self.groups,
        )

    def inputs(self, key: Any, dtype: Any = jnp.float32) -> tuple[jax.Array, jax.Array]:
        """Standard normal ``(x, w)`` of this geometry (``key`` a jax key or an int seed)."""
        return _normal_inputs(key, self.input_shape, self.kernel_shape, dtype)


@dataclasses.dataclass(frozen=True)
class PoolConfig:
    """One valid pooling geometry (channels-last) for ``kind`` ``"max"`` or ``"avg"``.

    Attributes:
      kind: ``"max"`` (:func:`dlref.max_pool`) or ``"avg"`` (:func:`dlref.avg_pool`).
      input_shape: ``(N, *spatial, C)``.
      window: one int per spatial dim.
      stride: one int per spatial dim.
      padding: ``(lo, hi)`` per dim, each at most ``window // 2`` (PyTorch's rule); an int or
        ints per dim when ``pool_configs`` is asked for those forms.
      dilation: one int per dim (always 1 for ``"avg"``).
      ceil_mode: PyTorch's ``ceil_mode``.
      count_include_pad: PyTorch's ``count_include_pad`` (``"avg"`` only; True for max).
    """

    kind: str
    input_shape: tuple[int, ...]
    window: tuple[int, ...]
    stride: tuple[int, ...]
    padding: Any
    dilation: tuple[int, ...]
    ceil_mode: bool
    count_include_pad: bool

    @property
    def nd(self) -> int:
        """The spatial rank."""
        return len(self.window)

    @property
    def padding_pairs(self) -> tuple[tuple[int, int], ...]:
        """The padding as explicit ``(lo, hi)`` pairs."""
        return _pairs(self.padding, self.nd)

    @property
    def output_shape(self) -> tuple[int, ...]:
        """``(N, *out, C)`` with PyTorch's ``ceil_mode`` rule."""
        out = conv_output_size(
            self.input_shape[1:-1],
            self.window,
            self.stride,
            self.padding_pairs,
            self.dilation,
            ceil_mode=self.ceil_mode,
        )
        return (self.input_shape[0], *out, self.input_shape[-1])

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments of the pooling op after ``(x, window)``:
        ``dlref.max_pool(x, cfg.window, **cfg.kwargs())``."""
        kw = dict(stride=self.stride, padding=self.padding, ceil_mode=self.ceil_mode)
        if self.kind == "max":
            kw["dilation"] = self.dilation
        else:
            kw["count_include_pad"] = self.count_include_pad
        return kw

    def inputs(self, key: Any, dtype: Any = jnp.float32) -> tuple[jax.Array]:
        """``(x,)`` of pairwise distinct values in ``[-2, 2]``, randomly placed.

        Distinct *in* ``dtype``: no ties anywhere, so max pooling has a unique argmax. In
        float32/float64 neighbouring values are ``4 / x.size`` apart; the central differences
        of order ``m`` with step ``h`` move two entries closer by at most ~``8·m·h``, so they
        cross no tie while that stays below ``4 / x.size`` (``check_op_gradients`` in float64,
        ``h = 1e-4``, order 2: up to ~2500 entries). In the 16-bit types the values are
        distinct representable numbers (for comparisons; take finite differences in float64).
        """
        dt = np.dtype(jnp.dtype(dtype))
        if dt.itemsize == 2:
            return (distinct_values(_as_key(key), self.input_shape, dt),)
        n = math.prod(self.input_shape)
        grid = (np.arange(n) - (n - 1) / 2) * (4.0 / max(n, 1))
        perm = np.asarray(jax.random.permutation(_as_key(key), n))
        return (jnp.asarray(grid[perm].reshape(self.input_shape), dt),)


# --------------------------------------------------------------------------------------------
# argument checks of the strategy factories (raised when the strategy is built)


def _check_forms(forms: Sequence[str], allowed: Sequence[str], op: str) -> tuple[str, ...]:
    forms = (forms,) if isinstance(forms, str) else tuple(forms)
    if not forms or not set(forms) <= set(allowed):
        raise ValueError(
            f"{op}: padding_forms must be a non-empty subset of {tuple(allowed)}, got {forms}"
        )
    return forms


def _check_ranks(ranks: Sequence[int], op: str) -> tuple[int, ...]:
    ranks = (ranks,) if isinstance(ranks, int) else tuple(ranks)
    if not ranks or not set(ranks) <= {1, 2, 3}:
        raise ValueError(f"{op}: ranks must be a non-empty subset of (1, 2, 3), got {ranks}")
    return ranks


def _check_positive(op: str, **values: int) -> None:
    for name, v in values.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < (0 if name == "max_padding" else 1):
            what = "a non-negative" if name == "max_padding" else "a positive"
            raise ValueError(f"{op}: {name} must be {what} int, got {v!r}")


def _dims(block: st.SearchStrategy, ranks: tuple[int, ...]) -> st.SearchStrategy[list]:
    """One ``block`` of draws per spatial dim, as a list whose length is the rank: hypothesis
    shrinks a list by deleting elements, so a failure found at rank 3 shrinks to the one
    dimension that matters, at rank 1."""
    dims = st.lists(block, min_size=min(ranks), max_size=max(ranks))
    return (
        dims
        if len(ranks) == max(ranks) - min(ranks) + 1
        else dims.filter(lambda d: len(d) in ranks)
    )


def _draw_side_padding(draw, form: str, shared: int | None, m: int) -> tuple[int, int]:
    """The ``(lo, hi)`` of one dim: ``shared`` for ``"int"``, none for the strings."""
    if form in ("VALID", "SAME"):
        return 0, 0
    if form == "int":
        return shared, shared
    lo = draw(st.integers(0, m))
    return (lo, lo) if form == "per_dim" else (lo, draw(st.integers(0, m)))


def _assemble_padding(form: str, pairs: Sequence[tuple[int, int]]) -> Any:
    """The padding of ``form`` with these per-dim pairs."""
    if form == "int":
        return pairs[0][0]
    if form == "per_dim":
        return tuple(lo for lo, _ in pairs)
    if form == "pairs":
        return tuple(pairs)
    return form  # "VALID" / "SAME"


class _ConvBounds(NamedTuple):
    """The size bounds of :func:`conv_configs` and :func:`conv_transpose_configs`."""

    max_kernel: int
    max_stride: int
    max_dilation: int
    max_padding: int
    max_batch: int
    max_channels_per_group: int


def _check_conv_args(
    op: str,
    ranks: Sequence[int],
    padding_forms: Sequence[str],
    allowed_forms: Sequence[str],
    bounds: _ConvBounds,
) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """The checked ranks and padding forms of a convolution strategy; its ``bounds`` must be
    positive ints (``max_padding`` non-negative)."""
    ranks = _check_ranks(ranks, op)
    forms = _check_forms(padding_forms, allowed_forms, op)
    _check_positive(op, **bounds._asdict())
    return ranks, forms


def _draw_taps(draw, bounds: _ConvBounds, strided_dilation: bool) -> tuple[int, int, int]:
    """``(kernel, stride, dilation)`` of one dim; dilation 1 where a stride > 1 was drawn and
    ``strided_dilation`` is off."""
    k = draw(st.integers(1, bounds.max_kernel))
    stride = draw(st.integers(1, bounds.max_stride))
    dilation = draw(st.integers(1, bounds.max_dilation)) if strided_dilation or stride == 1 else 1
    return k, stride, dilation


def _draw_channels(
    draw, bounds: _ConvBounds, groups: bool, *, depthwise: bool
) -> tuple[int, int, int, int]:
    """``(groups, channels in per group, channels out per group, batch)``; with ``depthwise``
    half the draws have one input channel per group (``C_in == groups``)."""
    g = draw(st.sampled_from((1, 2, 3))) if groups else 1
    one_in = depthwise and draw(st.booleans())
    cin_g = 1 if one_in else draw(st.integers(1, bounds.max_channels_per_group))
    cout_g = draw(st.integers(1, bounds.max_channels_per_group))
    batch = draw(st.integers(1, bounds.max_batch))
    return g, cin_g, cout_g, batch


# --------------------------------------------------------------------------------------------
# strategies


def conv_configs(
    ranks: Sequence[int] = (1, 2, 3),
    max_kernel: int = 3,
    max_stride: int = 3,
    max_dilation: int = 2,
    groups: bool = True,
    padding_forms: Sequence[str] = PADDING_FORMS,
    *,
    max_padding: int = 2,
    max_batch: int = 2,
    max_channels_per_group: int = 2,
    strided_dilation: bool = True,
) -> st.SearchStrategy[ConvConfig]:
    """A strategy of valid :class:`ConvConfig`: every geometry :func:`dlref.conv` takes.

    Spatial sizes run from the smallest that leaves an output (``max(1, d·(k-1) + 1 - lo -
    hi)``, any size for ``"SAME"``) to three past the dilated kernel, so inputs smaller than
    the kernel (padding makes up the rest), outputs of one pixel and strides that skip input
    pixels are all drawn.

    Args:
      ranks: spatial ranks to draw from.
      max_kernel: largest kernel size per dim (at most 2 for rank 3, to keep draws small).
      max_stride: largest stride.
      max_dilation: largest dilation.
      groups: also draw grouped (2 or 3 groups) and depthwise (``C_in == groups``, with a
        channel multiplier) convolutions; ``False`` keeps ``groups=1``.
      padding_forms: any of :data:`PADDING_FORMS`.
      max_padding: largest padding on each side (numeric forms).
      max_batch: largest batch size.
      max_channels_per_group: largest ``C_in / groups`` and ``C_out / groups``.
      strided_dilation: ``False`` never draws stride > 1 and dilation > 1 in the same dim.
        jax's input gradient of ``lax.conv_general_dilated`` for such a dim is a conv dilated
        on both sides, which XLA's CPU compiler in jaxlib 0.11 can abort on (SIGABRT, the
        whole process): pass ``False`` if *your* kernel differentiates through lax's conv.

    Returns:
      A hypothesis strategy of :class:`ConvConfig`.

    Raises:
      ValueError: an empty or unknown rank or padding form; a bound that is not a positive
        int.

    Example:
      >>> from hypothesis import given
      >>> @given(conv_configs(ranks=(2,), groups=False))
      ... def test_shape(cfg):
      ...     x, w = cfg.inputs(0)
      ...     assert dlref.conv(x, w, **cfg.kwargs()).shape == cfg.output_shape
    """
    bounds = _ConvBounds(
        max_kernel, max_stride, max_dilation, max_padding, max_batch, max_channels_per_group
    )
    ranks, forms = _check_conv_args("conv_configs", ranks, padding_forms, PADDING_FORMS, bounds)
    groups, strided_dilation = bool(groups), bool(strided_dilation)

    @st.composite
    def dim(draw, form: str, shared: int | None):
        k, stride, dilation = _draw_taps(draw, bounds, strided_dilation)
        lo, hi = _draw_side_padding(draw, form, shared, max_padding)
        span = dilation * (k - 1) + 1  # the dilated kernel
        low = {"SAME": 1, "VALID": span}.get(form, max(1, span - lo - hi))
        return k, stride, dilation, (lo, hi), draw(st.integers(low, span + 3))

    @st.composite
    def draw_config(draw) -> ConvConfig:
        form = draw(st.sampled_from(forms))
        shared = draw(st.integers(0, max_padding)) if form == "int" else None
        dims = draw(_dims(dim(form, shared), ranks))
        if len(dims) == 3:  # at most 2 x 2 x 2 taps: rank-3 draws stay cheap to compile
            dims = [(min(k, 2), *rest) for k, *rest in dims]
        k, stride, dilation, pairs, sizes = (tuple(v) for v in zip(*dims))
        g, cin_g, cout_g, batch = _draw_channels(draw, bounds, groups, depthwise=groups)
        return ConvConfig(
            input_shape=(batch, *sizes, cin_g * g),
            kernel_shape=(*k, cin_g, cout_g * g),
            stride=stride,
            padding=_assemble_padding(form, pairs),
            dilation=dilation,
            groups=g,
        )

    return draw_config()


def conv_transpose_configs(
    ranks: Sequence[int] = (1, 2, 3),
    max_kernel: int = 3,
    max_stride: int = 3,
    max_dilation: int = 2,
    groups: bool = True,
    padding_forms: Sequence[str] = _NUMERIC_FORMS,
    *,
    max_padding: int = 2,
    max_batch: int = 2,
    max_channels_per_group: int = 2,
    strided_dilation: bool = True,
) -> st.SearchStrategy[ConvTransposeConfig]:
    """A strategy of valid :class:`ConvTransposeConfig`, ``output_padding`` included.

    ``output_padding`` runs below ``max(stride, dilation)`` per dim (PyTorch's rule); the
    padding crops at most all but one pixel of the full output, so every output is non-empty.

    Args:
      ranks: spatial ranks to draw from.
      max_kernel: largest kernel size per dim (at most 2 for rank 3).
      max_stride: largest stride.
      max_dilation: largest dilation.
      groups: also draw grouped convolutions (2 or 3 groups).
      padding_forms: any of ``"int"``, ``"per_dim"``, ``"pairs"`` (transposed convolution
        takes no padding strings).
      max_padding: largest padding on each side.
      max_batch: largest batch size.
      max_channels_per_group: largest channels per group.
      strided_dilation: ``False`` never draws stride > 1 and dilation > 1 in the same dim
        (see :func:`conv_configs`).

    Returns:
      A hypothesis strategy of :class:`ConvTransposeConfig`.

    Raises:
      ValueError: as :func:`conv_configs`.

    Example:
      >>> strategy = conv_transpose_configs(ranks=(1,), padding_forms=("pairs",))
    """
    bounds = _ConvBounds(
        max_kernel, max_stride, max_dilation, max_padding, max_batch, max_channels_per_group
    )
    op = "conv_transpose_configs"
    ranks, forms = _check_conv_args(op, ranks, padding_forms, _NUMERIC_FORMS, bounds)
    groups, strided_dilation = bool(groups), bool(strided_dilation)

    @st.composite
    def dim(draw, form: str):
        k, stride, dilation = _draw_taps(draw, bounds, strided_dilation)
        output_padding = draw(st.integers(0, max(stride, dilation) - 1))
        n = draw(st.integers(1, 4))
        m = _max_crop(n, k, stride, output_padding, dilation, max_padding)
        pad = None if form == "int" else _draw_side_padding(draw, form, None, m)
        return k, stride, dilation, output_padding, n, m, pad

    def cap(k, stride, dilation, output_padding, n, m, pad):
        """At most 2 taps per dim (rank 3), the crop kept within the smaller output."""
        k = min(k, 2)
        m = _max_crop(n, k, stride, output_padding, dilation, max_padding)
        pad = None if pad is None else (min(pad[0], m), min(pad[1], m))
        return k, stride, dilation, output_padding, n, m, pad

    @st.composite
    def draw_config(draw) -> ConvTransposeConfig:
        form = draw(st.sampled_from(forms))
        dims = draw(_dims(dim(form), ranks))
        if len(dims) == 3:  # at most 2 x 2 x 2 taps: rank-3 draws stay cheap to compile
            dims = [cap(*d) for d in dims]
        if form == "int":
            shared = draw(st.integers(0, min(d[5] for d in dims)))
            dims = [(*d[:6], (shared, shared)) for d in dims]
        k, stride, dilation, output_padding, sizes, _, pairs = (tuple(v) for v in zip(*dims))
        g, cin_g, cout_g, batch = _draw_channels(draw, bounds, groups, depthwise=False)
        return ConvTransposeConfig(
            input_shape=(batch, *sizes, cin_g * g),
            kernel_shape=(*k, cout_g, cin_g * g),
            stride=stride,
            padding=_assemble_padding(form, pairs),
            output_padding=output_padding,
            dilation=dilation,
            groups=g,
        )

    return draw_config()


def _max_crop(n, k, stride, output_padding, dilation, max_padding) -> int:
    """The largest padding per side that leaves at least one pixel of the full output."""
    full = conv_transpose_output_size(n, k, stride, 0, output_padding, dilation)
    return min(max_padding, (full - 1) // 2)


def _windows_see_input(n, k, s, d, lo, hi, ceil_mode) -> bool:
    """Whether every (dilated) window along one dim covers at least one input pixel."""
    out = conv_output_size(n, k, s, (lo, hi), d, ceil_mode=ceil_mode)
    pos = (np.arange(out) * s - lo)[:, None] + np.arange(k)[None, :] * d
    return bool(((pos >= 0) & (pos < n)).any(axis=1).all())


def _fit_window(k, stride, dilation, pad, n, ceil_mode, k_max):
    """Cap the window at ``k_max`` taps (padding at half of it), then grow ``n`` until every
    window sees an input pixel (only dilated max windows can miss it)."""
    k = min(k, k_max)
    lo, hi = min(pad[0], k // 2), min(pad[1], k // 2)
    while not _windows_see_input(n, k, stride, dilation, lo, hi, ceil_mode):
        n += 1
    return k, stride, dilation, (lo, hi), n


def pool_configs(
    ranks: Sequence[int] = (1, 2, 3),
    kinds: Sequence[str] = ("max", "avg"),
    max_window: int = 3,
    max_stride: int = 3,
    max_dilation: int = 2,
    *,
    padding_forms: Sequence[str] = ("pairs",),
    max_batch: int = 2,
    max_channels: int = 2,
) -> st.SearchStrategy[PoolConfig]:
    """A strategy of valid :class:`PoolConfig`, ``ceil_mode`` and ``count_include_pad``
    included.

    Valid means what PyTorch and dlref require: padding at most ``window // 2`` per side, the
    dilated window no larger than the padded input, and (max pooling with dilation) no
    window that covers only padding — a size that would give one is grown until none does.

    Args:
      ranks: spatial ranks to draw from.
      kinds: ``"max"`` and/or ``"avg"``.
      max_window: largest window per dim (at most 2 for rank 3).
      max_stride: largest stride.
      max_dilation: largest dilation (max pooling only).
      padding_forms: any of ``"int"``, ``"per_dim"``, ``"pairs"`` (default pairs only, so
        ``cfg.padding`` is always ``(lo, hi)`` pairs unless asked).
      max_batch: largest batch size.
      max_channels: largest channel count.

    Returns:
      A hypothesis strategy of :class:`PoolConfig`.

    Raises:
      ValueError: an empty or unknown rank, kind or padding form; a bound that is not a
        positive int.

    Example:
      >>> strategy = pool_configs(ranks=(2,), kinds=("max",))
    """
    op = "pool_configs"
    ranks = _check_ranks(ranks, op)
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    if not kinds or not set(kinds) <= {"max", "avg"}:
        raise ValueError(f"{op}: kinds must be a non-empty subset of ('max', 'avg'), got {kinds}")
    forms = _check_forms(padding_forms, _NUMERIC_FORMS, op)
    _check_positive(
        op,
        max_window=max_window,
        max_stride=max_stride,
        max_dilation=max_dilation,
        max_batch=max_batch,
        max_channels=max_channels,
    )

    @st.composite
    def dim(draw, kind: str, form: str, ceil_mode: bool):
        k = draw(st.integers(1, max_window))
        stride = draw(st.integers(1, max_stride))
        dilation = draw(st.integers(1, max_dilation)) if kind == "max" else 1
        # "int" padding is shared by every dim: drawn after them (below), within all windows
        lo, hi = (0, 0) if form == "int" else _draw_side_padding(draw, form, None, k // 2)
        n = draw(st.integers(max(1, dilation * (k - 1) + 1 - lo - hi), dilation * (k - 1) + 4))
        return _fit_window(k, stride, dilation, (lo, hi), n, ceil_mode, k)

    @st.composite
    def draw_config(draw) -> PoolConfig:
        kind = draw(st.sampled_from(kinds))
        form = draw(st.sampled_from(forms))
        ceil_mode = draw(st.booleans())
        count_include_pad = draw(st.booleans()) if kind == "avg" else True
        dims = draw(_dims(dim(kind, form, ceil_mode), ranks))
        if len(dims) == 3:  # at most 2 x 2 x 2 taps: rank-3 draws stay cheap to compile
            dims = [_fit_window(*d, ceil_mode, 2) for d in dims]
        if form == "int":
            p = draw(st.integers(0, min(d[0] // 2 for d in dims)))
            dims = [_fit_window(*d[:3], (p, p), d[4], ceil_mode, d[0]) for d in dims]
        window, stride, dilation, pairs, sizes = (tuple(v) for v in zip(*dims))
        batch = draw(st.integers(1, max_batch))
        channels = draw(st.integers(1, max_channels))
        return PoolConfig(
            kind=kind,
            input_shape=(batch, *sizes, channels),
            window=window,
            stride=stride,
            padding=_assemble_padding(form, pairs),
            dilation=dilation,
            ceil_mode=ceil_mode,
            count_include_pad=count_include_pad,
        )

    return draw_config()


# --------------------------------------------------------------------------------------------
# arrays


def _ulp_bound(dtype: np.dtype, magnitude: float) -> float:
    """An upper bound on the spacing of ``dtype`` at ``|x| <= magnitude``."""
    eps = float(jnp.finfo(dtype).eps)
    tiny = float(jnp.finfo(dtype).tiny)
    m = max(magnitude, tiny)
    return 2.0 ** math.ceil(math.log2(m)) * eps


def _feasible(lo: float, hi: float, holes: Sequence[float], radius: float) -> np.ndarray:
    """``[lo, hi]`` minus the open intervals ``(a - radius, a + radius)``: sorted disjoint
    closed intervals, as rows ``(start, end)``."""
    parts = [(lo, hi)]
    for a in holes:
        nxt = []
        for c, d in parts:
            if a + radius <= c or a - radius >= d:
                nxt.append((c, d))
                continue
            if a - radius > c:
                nxt.append((c, a - radius))
            if a + radius < d:
                nxt.append((a + radius, d))
        parts = nxt
    return np.asarray([p for p in parts if p[1] > p[0]], np.float64).reshape(-1, 2)


def arrays(
    shape: int | Sequence[int],
    dtype: Any = np.float64,
    elements: st.SearchStrategy[float] | None = None,
    *,
    min_value: float = -4.0,
    max_value: float = 4.0,
    min_gap: float = 0.0,
    avoid: Sequence[float] = (),
) -> st.SearchStrategy[np.ndarray]:
    r"""A strategy of floating NumPy arrays, optionally without ties and away from kinks.

    .. math::
        |x_i - x_j| \ge \text{min\_gap}\ (i \ne j), \qquad
        |x_i - a| \ge \text{min\_gap}\ (a \in \text{avoid}), \qquad
        \text{min\_value} \le x_i \le \text{max\_value}

    all three checked on the values *after* rounding to ``dtype``. With ``avoid`` and
    ``min_gap=0``, entries only differ from each point of ``avoid``. The values are built so
    that no draw is rejected: ``n`` numbers ``v`` are drawn in ``[0, L - (n-1)·gap]``
    (``L`` the length of the allowed set), each is shifted by ``gap`` times its rank, and the
    result is laid onto the allowed set with the holes around ``avoid`` cut out — a monotone
    map that never shrinks a distance. Hypothesis shrinks ``v`` to zeros, i.e. to the
    evenly spaced array ``min_value, min_value + gap, ...``.

    Finite differences with step ``h`` (``check_op_gradients``) cannot cross a kink or a tie
    if ``min_gap`` is a few times ``4·order·h``, e.g. 1e-2 in float64.

    Args:
      shape: the array's shape.
      dtype: a floating dtype (float16, bfloat16, float32, float64).
      elements: a hypothesis strategy of each entry, used as is when neither ``min_gap`` nor
        ``avoid`` is given; default finite floats in ``[min_value, max_value]``.
      min_value: smallest value.
      max_value: largest value.
      min_gap: every two entries, and every entry and every point of ``avoid``, differ by at
        least this much.
      avoid: points to keep ``min_gap`` away from (kinks: 0 for relu, ±δ for Huber, ±1 for
        a hinge's margin).

    Returns:
      A hypothesis strategy of ``np.ndarray`` of ``dtype`` and ``shape``.

    Raises:
      TypeError: a non-floating dtype.
      ValueError: a negative ``min_gap``, ``min_value > max_value``, ``elements`` together
        with ``min_gap``/``avoid``, or more entries than fit ``min_gap`` apart in the range.

    Example:
      >>> strategy = arrays((3, 4), min_gap=0.01, avoid=(0.0,))  # relu: no ties, no kinks
    """
    op = "arrays"
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    try:
        dt = np.dtype(jnp.dtype(dtype))
    except TypeError as e:
        raise TypeError(f"{op}: dtype must be a floating dtype, got {dtype!r}") from e
    if not jnp.issubdtype(dt, jnp.floating):
        raise TypeError(f"{op}: dtype must be a floating dtype, got {dt}")
    lo, hi, gap = float(min_value), float(max_value), float(min_gap)
    avoid = tuple(sorted({float(a) for a in avoid}))
    if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
        raise ValueError(f"{op}: need finite min_value <= max_value, got {lo}, {hi}")
    if not gap >= 0.0 or not math.isfinite(gap):
        raise ValueError(f"{op}: min_gap must be a finite number >= 0, got {min_gap!r}")
    n = math.prod(shape)

    if gap == 0.0 and not avoid:
        if elements is None:
            width = 16 if dt == np.float16 else 32 if dt.itemsize <= 4 else 64
            elements = st.floats(lo, hi, allow_nan=False, allow_infinity=False, width=width)
        # drawn in float64 and rounded: bfloat16 has no hypothesis dtype of its own
        return hnp.arrays(np.float64, shape, elements=elements).map(lambda a: a.astype(dt))
    if elements is not None:
        raise ValueError(
            f"{op}: elements cannot be combined with min_gap or avoid (the values are "
            f"constructed); give the range as min_value and max_value"
        )

    # Work in float64 with margins that survive the rounding to dt (each value moves by at
    # most half a spacing of dt, at most ``ulp``) and the float64 arithmetic below (a few
    # float64 ulps): shrink the range by that, widen the gaps by it.
    ulp = _ulp_bound(dt, max(abs(lo), abs(hi)))
    margin = ulp + 8 * _ulp_bound(np.dtype(np.float64), max(abs(lo), abs(hi), hi - lo))
    pair_gap = gap + margin if gap > 0 else 0.0
    radius = gap + margin
    parts = _feasible(lo + margin, hi - margin, avoid, radius)
    starts = parts[:, 0]
    cum = np.concatenate([[0.0], np.cumsum(parts[:, 1] - parts[:, 0])])
    room = cum[-1] - (n - 1) * pair_gap
    if n and (room < 0 or not parts.size):
        raise ValueError(
            f"{op}: {n} entries {min_gap} apart and {min_gap} away from {avoid} do not fit in "
            f"[{min_value}, {max_value}] in {dt} (widen the range or lower min_gap)"
        )

    def build(v: np.ndarray) -> np.ndarray:
        flat = v.reshape(-1)
        rank = np.empty(n, np.int64)
        rank[np.argsort(flat, kind="stable")] = np.arange(n)
        w = np.minimum(flat + rank * pair_gap, cum[-1])  # in [0, L], gaps >= pair_gap
        j = np.clip(np.searchsorted(cum, w, side="right") - 1, 0, len(starts) - 1)
        x = (starts[j] + (w - cum[j])).astype(dt)
        _check_arrays(x.astype(np.float64), lo, hi, gap, avoid)
        return x.reshape(shape)

    if n == 0:
        return st.just(np.zeros(shape, dt))
    return hnp.arrays(np.float64, shape, elements=st.floats(0.0, max(room, 0.0))).map(build)


def _check_arrays(x: np.ndarray, lo: float, hi: float, gap: float, avoid: tuple) -> None:
    """The promise of :func:`arrays`, checked on every draw (a failure is a dlref bug)."""
    ok = bool(np.all((x >= lo) & (x <= hi)))
    if x.size > 1 and gap > 0:
        ok &= bool(np.min(np.diff(np.sort(x))) >= gap)
    for a in avoid:
        ok &= bool(np.all(np.abs(x - a) >= gap) and np.all(x != a))
    if not ok:
        raise AssertionError(f"arrays: internal error, a draw breaks its promise: {x}")
