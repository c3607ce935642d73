"""What the image transforms of :mod:`dlref.augment` share: argument checks in one voice, and
the per-image batching (one image, or a batch with one split key per image) under one jit.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from dlref._checks import check_floating, check_rank, check_real


def check_image(
    image: Any,
    op: str,
    *,
    name: str = "image",
    channels: int | None = None,
    ranks: tuple[int, ...] | None = (3, 4),
) -> int:
    """Validate an image ``(H, W, C)`` or a batch ``(N, H, W, C)``; return its rank.

    ``ranks=None`` accepts any rank >= 1 (an array of pixels, for the colour conversions).
    An empty batch (``N = 0``) passes; an image without rows, columns or channels does not.

    Raises:
      TypeError: ``image`` is not a JAX or NumPy array, or not floating.
      ValueError: bad rank, no pixels, or not ``channels`` channels in the last axis.
    """
    if not isinstance(image, jax.Array | np.ndarray):
        raise TypeError(f"{op}: {name} must be a JAX or NumPy array, got {type(image).__name__}")
    if ranks is None:
        if image.ndim < 1:
            raise ValueError(f"{op}: {name} must have rank >= 1, got shape {image.shape}")
        rank = image.ndim
    else:
        rank = check_rank(image, ranks, name, op)
    # objects, strings, times: jnp cannot even name such a dtype
    if isinstance(image, np.ndarray) and image.dtype.kind in "OSUmM":
        raise TypeError(f"{op}: {name} must have a floating dtype, got {image.dtype}")
    check_floating(image, name, op)
    if channels is not None and image.shape[-1] != channels:
        raise ValueError(
            f"{op}: {name} must have {channels} channels (RGB) in its last axis, "
            f"got shape {image.shape}"
        )
    if ranks is not None and 0 in image.shape[-3:]:
        raise ValueError(
            f"{op}: {name} must have at least one row, column and channel, got shape {image.shape}"
        )
    return rank


def check_range(
    lower: Any, upper: Any, op: str, *, lo: float, lo_closed: bool = True, what: str = ""
) -> None:
    """Raise unless ``lower`` and ``upper`` are finite real scalars with ``lo <= lower <= upper``
    (``lo < lower`` when not ``lo_closed``); ``what`` names the pair in the message."""
    prefix = f"{what} " if what else ""
    check_real(lower, f"{prefix}lower", op, finite=True)
    check_real(upper, f"{prefix}upper", op, finite=True)
    if isinstance(lower, jax.core.Tracer) or isinstance(upper, jax.core.Tracer):
        return
    low, up = float(lower), float(upper)
    if not ((lo <= low if lo_closed else lo < low) and low <= up):
        rel = "<=" if lo_closed else "<"
        raise ValueError(
            f"{op}: need {lo} {rel} {prefix}lower <= {prefix}upper, got lower={lower!r}, "
            f"upper={upper!r}"
        )


def per_image(single: Callable, key: jax.Array, image: jax.Array) -> jax.Array:
    """Apply ``single(key, image3)`` to one image, or to a batch with independent keys."""
    if image.ndim == 3:
        return single(key, image)
    keys = jax.random.split(key, image.shape[0])
    return jax.vmap(single)(keys, image)


def on_images(single: Callable, image: jax.Array) -> jax.Array:
    """Apply ``single(image3)`` to one image or to each image of a batch."""
    return single(image) if image.ndim == 3 else jax.vmap(single)(image)


@functools.partial(jax.jit, static_argnums=(0, 1))
def jit_per_image(single: Callable, static: tuple, key: jax.Array, image: jax.Array, *params):
    """Jitted :func:`per_image` of ``single(key, image3, *params, *static)``.

    ``single`` is a module-level function (a stable cache key); ``static`` holds the hashable
    arguments that shape the program (mode, sizes), ``params`` the traced ones. One compiled
    program per shape instead of dozens of op-by-op dispatches when called eagerly.
    """
    return per_image(lambda k, im: single(k, im, *params, *static), key, image)


@functools.partial(jax.jit, static_argnums=(0, 1))
def jit_on_images(single: Callable, static: tuple, image: jax.Array, *params):
    """Jitted :func:`on_images` of ``single(image3, *params, *static)``."""
    return on_images(lambda im: single(im, *params, *static), image)


def uniform(key: jax.Array, lo: Any, hi: Any, dtype: Any, shape: tuple = ()) -> jax.Array:
    """``jax.random.uniform(key, shape, dtype, lo, hi)``: the documented draw of every range."""
    return jax.random.uniform(key, shape, dtype, minval=lo, maxval=hi)


def check_factor(value: Any, name: str, op: str, *, minimum: float = -math.inf) -> None:
    """Raise unless ``value`` is a real scalar, not infinite, and ``>= minimum``.

    A NaN passes (it propagates to the output, as in ``lax``); an infinity does not (it turns
    finite pixels into NaN, e.g. ``0 · inf``). Traced values are not looked at.
    """
    check_real(value, name, op)
    if isinstance(value, jax.core.Tracer) or math.isnan(float(value)):
        return
    if math.isinf(float(value)) or float(value) < minimum:
        raise ValueError(f"{op}: {name} must be finite and >= {minimum}, got {value!r}")
