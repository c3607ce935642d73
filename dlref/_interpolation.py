r"""Bilinear pull resampling with SciPy's boundary modes: the sampler under the geometric
transforms of :mod:`dlref.augment` (as dm-pix keeps ``interpolation.py`` apart from its
``augment.py``).

Coordinates are ``(row, col)`` array coordinates, the centre of pixel ``[i, j]`` at ``(i, j)``.
:func:`warp` maps every output pixel through a ``(2, 3)`` output → input matrix and
:func:`bilinear` reads the input there, with the boundary ``mode`` deciding what lies outside
``[0, n - 1]`` (see the :mod:`dlref.augment` docstring for the five modes).

NaN coordinates (a NaN angle, shift or matrix) give NaN, in every mode: the ``"constant"`` mode
tests *outside* (false for NaN) rather than *inside*, so a NaN is never replaced by ``cval``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from dlref._checks import check_choice

MODES = ("constant", "grid-constant", "nearest", "reflect", "mirror")

# "constant" mode counts coordinates up to this many pixels outside [0, n - 1] as inside (the
# edge value), so that float32 rotations by multiples of 90° keep their border pixels.
EDGE_TOL = 1e-3


def check_mode(mode: Any, op: str) -> None:
    """Raise unless ``mode`` is one of :data:`MODES`."""
    if not isinstance(mode, str):
        raise TypeError(f"{op}: mode must be one of {MODES}, got {mode!r}")
    check_choice(mode, MODES, "mode", op)


def fold_index(i: jax.Array, n: int, mode: str) -> jax.Array:
    """Map integer indices (any value) into ``[0, n)`` by the boundary ``mode``."""
    if mode == "reflect":  # half-sample symmetric, period 2n
        i = jnp.mod(i, 2 * n)
        return jnp.where(i >= n, 2 * n - 1 - i, i)
    if mode == "mirror":  # whole-sample symmetric, period 2n - 2
        if n == 1:
            return jnp.zeros_like(i)
        i = jnp.mod(i, 2 * n - 2)
        return jnp.where(i >= n, 2 * n - 2 - i, i)
    return jnp.clip(i, 0, n - 1)


def bilinear(image: jax.Array, rows: jax.Array, cols: jax.Array, mode: str, cval: Any):
    """Sample ``image`` (H, W, C) at real coordinates ``rows``, ``cols`` (any equal shape)."""
    h, w, c = image.shape
    flat = image.reshape(h * w, c)
    r0f = jnp.floor(rows)
    c0f = jnp.floor(cols)
    fr = (rows - r0f)[..., None]
    fc = (cols - c0f)[..., None]
    # XLA casts a NaN to index 0 (and saturates infinities); the NaN weights keep the sample NaN
    r0 = r0f.astype(jnp.int32)
    c0 = c0f.astype(jnp.int32)
    cval = jnp.asarray(cval, image.dtype)
    out = jnp.zeros((*rows.shape, c), image.dtype)
    for dr, dc, wgt in (
        (0, 0, (1 - fr) * (1 - fc)),
        (0, 1, (1 - fr) * fc),
        (1, 0, fr * (1 - fc)),
        (1, 1, fr * fc),
    ):
        ri, ci = r0 + dr, c0 + dc
        v = flat[fold_index(ri, h, mode) * w + fold_index(ci, w, mode)]
        if mode == "grid-constant":
            valid = (ri >= 0) & (ri < h) & (ci >= 0) & (ci < w)
            v = jnp.where(valid[..., None], v, cval)
        out = out + wgt * v
    if mode == "constant":
        e = EDGE_TOL
        outside = (rows < -e) | (rows > h - 1 + e) | (cols < -e) | (cols > w - 1 + e)
        out = jnp.where(outside[..., None], cval, out)
    return out


def warp(image: jax.Array, matrix: jax.Array, out_hw: tuple[int, int], mode: str, cval: Any):
    """Pull-resample one image (H, W, C) through a (2, 3) output→input matrix."""
    dt = image.dtype
    matrix = jnp.asarray(matrix, dt)
    ho, wo = out_hw
    r, c = jnp.meshgrid(jnp.arange(ho, dtype=dt), jnp.arange(wo, dtype=dt), indexing="ij")
    rows = matrix[0, 0] * r + matrix[0, 1] * c + matrix[0, 2]
    cols = matrix[1, 0] * r + matrix[1, 1] * c + matrix[1, 2]
    return bilinear(image, rows, cols, mode, cval)
