r"""Image augmentation on the accelerator: geometric, colour and noise transforms, online and
offline, every one of them jittable and vmappable.

Conventions shared by every function here:

* **Images** are floating arrays with values in ``[0, 1]``, either one image ``(H, W, C)`` or a
  batch ``(N, H, W, C)`` (channels last). Integer images raise ``TypeError``; convert with
  ``image.astype(jnp.float32) / 255`` first. The dtype is kept (float64 stays float64).
* **Deterministic transforms** (``rotate``, ``adjust_contrast``, ...) apply the *same* parameter
  to every image of a batch.
* **Random transforms** take the key first. On one image they draw their parameters from
  ``key`` exactly as their docstring says (so a draw can be replayed). On a batch they draw
  *independent* parameters per image: ``random_x(key, images)[i] ==
  random_x(jax.random.split(key, N)[i], images[i])`` (``vmap`` over split keys).
* **Geometry** (``affine``, ``rotate``, ``scale``, ``translate``) uses array coordinates
  ``(row, col)``, the centre of pixel ``[i, j]`` sitting at ``(i, j)``, and *pull* (inverse,
  output → input) resampling with bilinear interpolation, as ``scipy.ndimage.affine_transform``
  (``order=1``) and ``dm_pix.affine_transform`` do. Boundary ``mode`` names follow SciPy:
  ``"constant"`` (``cval`` outside ``[0, n-1]``, no interpolation with it: SciPy and dm-pix;
  unlike them, coordinates within 1e-3 px outside count as the edge, so a float32 rotation by
  90° or 360° keeps its border, which rounding of ``cos``/``sin`` would otherwise drop),
  ``"grid-constant"`` (the image is padded with ``cval`` and interpolated into it),
  ``"nearest"``, ``"reflect"`` (half-sample symmetric, ``d c b a | a b c d | d c b a``) and
  ``"mirror"`` (whole-sample symmetric, ``d c b | a b c d | c b a``).
* **Colour** transforms that go through HSV need 3 channels (RGB); hue, saturation and value lie
  in ``[0, 1]`` (hue in turns, not degrees), as in ``colorsys`` and dm-pix.

Online augmentation is :func:`augment_batch` (one jitted call per batch, independent random
parameters per image); offline augmentation is :func:`expand_dataset` (a data set multiplied by
``factor``). Both read a *policy*, a tuple of :class:`Transform`.

References:
  Krizhevsky, Sutskever, Hinton, "ImageNet Classification with Deep Convolutional Neural
  Networks", NeurIPS 2012 (PCA colour / lighting augmentation, random crops and flips).
  https://papers.nips.cc/paper/4824
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dlref._checks import check_choice, check_floating, check_in_range, check_int, check_rank

__all__ = [
    "MODES",
    "Transform",
    "adjust_brightness",
    "adjust_contrast",
    "adjust_saturation",
    "adjust_value",
    "affine",
    "augment_batch",
    "expand_dataset",
    "fit_pca_color",
    "flip_left_right",
    "flip_up_down",
    "gaussian_noise",
    "hsv_to_rgb",
    "pca_color",
    "random_brightness",
    "random_contrast",
    "random_crop",
    "random_flip_left_right",
    "random_flip_up_down",
    "random_gaussian_noise",
    "random_resized_crop",
    "random_rotate",
    "random_salt_and_pepper",
    "random_saturation",
    "random_scale",
    "random_translate",
    "random_value",
    "rgb_to_hsv",
    "rotate",
    "salt_and_pepper",
    "scale",
    "translate",
]

MODES = ("constant", "grid-constant", "nearest", "reflect", "mirror")

# "constant" mode counts coordinates up to this many pixels outside [0, n - 1] as inside (the
# edge value), so that float32 rotations by multiples of 90° keep their border pixels.
_EDGE_TOL = 1e-3


# --------------------------------------------------------------------------------------------
# Validation and batching helpers
# --------------------------------------------------------------------------------------------


def _check_image(image: Any, op: str, *, channels: int | None = None) -> int:
    """Validate an image or a batch; return its rank (3 or 4)."""
    rank = check_rank(image, (3, 4), "image", op)
    check_floating(image, "image", op)
    if channels is not None and jnp.shape(image)[-1] != channels:
        raise ValueError(
            f"{op}: image must have {channels} channels (RGB) in its last axis, "
            f"got shape {jnp.shape(image)}"
        )
    return rank


def _check_range(lower: Any, upper: Any, op: str, *, lo: float = -math.inf) -> None:
    if isinstance(lower, jax.core.Tracer) or isinstance(upper, jax.core.Tracer):
        return
    if not lo <= float(lower) <= float(upper):
        raise ValueError(f"{op}: need {lo} <= lower <= upper, got lower={lower!r}, upper={upper!r}")


def _per_image(single: Callable, key: jax.Array, image: jax.Array) -> jax.Array:
    """Apply ``single(key, image3)`` to one image, or to a batch with independent keys."""
    if image.ndim == 3:
        return single(key, image)
    keys = jax.random.split(key, image.shape[0])
    return jax.vmap(single)(keys, image)


def _on_images(single: Callable, image: jax.Array) -> jax.Array:
    """Apply ``single(image3)`` to one image or to each image of a batch."""
    return single(image) if image.ndim == 3 else jax.vmap(single)(image)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _jit_per_image(single: Callable, static: tuple, key: jax.Array, image: jax.Array, *params):
    """Jitted :func:`_per_image` of ``single(key, image3, *params, *static)``.

    ``single`` is a module-level function (a stable cache key); ``static`` holds the hashable
    arguments that shape the program (mode, sizes), ``params`` the traced ones. One compiled
    program per shape instead of dozens of op-by-op dispatches when called eagerly.
    """
    return _per_image(lambda k, im: single(k, im, *params, *static), key, image)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _jit_on_images(single: Callable, static: tuple, image: jax.Array, *params):
    """Jitted :func:`_on_images` of ``single(image3, *params, *static)``."""
    return _on_images(lambda im: single(im, *params, *static), image)


def _uniform(key: jax.Array, lo: Any, hi: Any, dtype: Any, shape: tuple = ()) -> jax.Array:
    return jax.random.uniform(key, shape, dtype, minval=lo, maxval=hi)


# --------------------------------------------------------------------------------------------
# Flips
# --------------------------------------------------------------------------------------------


def flip_left_right(image: jax.Array) -> jax.Array:
    r"""Mirror an image (or each image of a batch) horizontally: reverse the column axis.

    .. math:: y_{i,j,c} = x_{i,\,W-1-j,\,c}

    Matches ``dm_pix.flip_left_right`` and ``tf.image.flip_left_right``; an involution.

    Args:
      image: ``(H, W, C)`` or ``(N, H, W, C)`` floating array.

    Returns:
      An array of the same shape and dtype.

    Raises:
      ValueError: if ``image`` is not rank 3 or 4.
      TypeError: if ``image`` is not floating.

    Example:
      >>> flip_left_right(jnp.array([[[0.0], [1.0]]])).ravel().tolist()
      [1.0, 0.0]
    """
    _check_image(image, "flip_left_right")
    return jnp.flip(image, axis=-2)


def flip_up_down(image: jax.Array) -> jax.Array:
    r"""Mirror an image (or each image of a batch) vertically: reverse the row axis.

    .. math:: y_{i,j,c} = x_{H-1-i,\,j,\,c}

    Matches ``dm_pix.flip_up_down`` and ``tf.image.flip_up_down``; an involution.

    Args:
      image: ``(H, W, C)`` or ``(N, H, W, C)`` floating array.

    Returns:
      An array of the same shape and dtype.

    Raises:
      ValueError: if ``image`` is not rank 3 or 4.
      TypeError: if ``image`` is not floating.

    Example:
      >>> flip_up_down(jnp.array([[[0.0]], [[1.0]]])).ravel().tolist()
      [1.0, 0.0]
    """
    _check_image(image, "flip_up_down")
    return jnp.flip(image, axis=-3)


def _check_p(p: Any, op: str) -> None:
    check_in_range(p, 0.0, 1.0, "probability p", op)


def _random_flip1(k, im, p, axis):
    return jnp.where(jax.random.bernoulli(k, p), jnp.flip(im, axis=axis), im)


def random_flip_left_right(key: jax.Array, image: jax.Array, *, p: float = 0.5) -> jax.Array:
    r"""Flip left-right with probability ``p`` (independently per image of a batch).

    .. math:: y = \begin{cases} \mathrm{flip}(x) & u < p \\ x & \text{otherwise}\end{cases}

    The draw is ``jax.random.bernoulli(key, p)``. Matches ``dm_pix.random_flip_left_right``
    up to the key use; torchvision's ``RandomHorizontalFlip(p)``.

    Args:
      key: a ``jax.random`` key.
      image: ``(H, W, C)`` or ``(N, H, W, C)`` floating array.
      p: probability of flipping, in ``[0, 1]``.

    Returns:
      An array of the same shape and dtype.

    Raises:
      ValueError: bad rank, or ``p`` outside ``[0, 1]``.
      TypeError: if ``image`` is not floating.

    Example:
      >>> x = jnp.array([[[0.0], [1.0]]])
      >>> random_flip_left_right(jax.random.key(0), x, p=1.0).ravel().tolist()
      [1.0, 0.0]
    """
    _check_image(image, "random_flip_left_right")
    _check_p(p, "random_flip_left_right")
    return _jit_per_image(_random_flip1, (1,), key, image, p)


def random_flip_up_down(key: jax.Array, image: jax.Array, *, p: float = 0.5) -> jax.Array:
    r"""Flip up-down with probability ``p`` (independently per image of a batch).

    .. math:: y = \begin{cases} \mathrm{flip}(x) & u < p \\ x & \text{otherwise}\end{cases}

    The draw is ``jax.random.bernoulli(key, p)``. torchvision's ``RandomVerticalFlip(p)``.

    Args:
      key: a ``jax.random`` key.
      image: ``(H, W, C)`` or ``(N, H, W, C)`` floating array.
      p: probability of flipping, in ``[0, 1]``.

    Returns:
      An array of the same shape and dtype.

    Raises:
      ValueError: bad rank, or ``p`` outside ``[0, 1]``.
      TypeError: if ``image`` is not floating.

    Example:
      >>> x = jnp.array([[[0.0]], [[1.0]]])
      >>> random_flip_up_down(jax.random.key(0), x, p=0.0).ravel().tolist()
      [0.0, 1.0]
    """
    _check_image(image, "random_flip_up_down")
    _check_p(p, "random_flip_up_down")
    return _jit_per_image(_random_flip1, (0,), key, image, p)


# --------------------------------------------------------------------------------------------
# Geometry: bilinear pull resampling
# --------------------------------------------------------------------------------------------


def _fold_index(i: jax.Array, n: int, mode: str) -> jax.Array:
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


def _bilinear(image: jax.Array, rows: jax.Array, cols: jax.Array, mode: str, cval: Any):
    """Sample ``image`` (H, W, C) at real coordinates ``rows``, ``cols`` (any equal shape)."""
    h, w, c = image.shape
    flat = image.reshape(h * w, c)
    r0f = jnp.floor(rows)
    c0f = jnp.floor(cols)
    fr = (rows - r0f)[..., None]
    fc = (cols - c0f)[..., None]
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
        v = flat[_fold_index(ri, h, mode) * w + _fold_index(ci, w, mode)]
        if mode == "grid-constant":
            valid = (ri >= 0) & (ri < h) & (ci >= 0) & (ci < w)
            v = jnp.where(valid[..., None], v, cval)
        out = out + wgt * v
    if mode == "constant":
        e = _EDGE_TOL
        inside = (rows >= -e) & (rows <= h - 1 + e) & (cols >= -e) & (cols <= w - 1 + e)
        out = jnp.where(inside[..., None], out, cval)
    return out


def _warp(image: jax.Array, matrix: jax.Array, out_hw: tuple[int, int], mode: str, cval: Any):
    """Pull-resample one image (H, W, C) through a (2, 3) output→input matrix."""
    dt = image.dtype
    matrix = jnp.asarray(matrix, dt)
    ho, wo = out_hw
    r, c = jnp.meshgrid(jnp.arange(ho, dtype=dt), jnp.arange(wo, dtype=dt), indexing="ij")
    rows = matrix[0, 0] * r + matrix[0, 1] * c + matrix[0, 2]
    cols = matrix[1, 0] * r + matrix[1, 1] * c + matrix[1, 2]
    return _bilinear(image, rows, cols, mode, cval)


def _check_mode(mode: str, op: str) -> None:
    check_choice(mode, MODES, "mode", op)


def affine(
    image: jax.Array,
    matrix: jax.Array,
    *,
    mode: str = "constant",
    cval: float = 0.0,
) -> jax.Array:
    r"""Resample an image through an affine map from output to input coordinates (bilinear).

    .. math::
        \begin{pmatrix} r_{in} \\ c_{in} \end{pmatrix} = A
        \begin{pmatrix} r_{out} \\ c_{out} \\ 1 \end{pmatrix},\qquad
        y[r_{out}, c_{out}] = \mathrm{bilinear}(x, r_{in}, c_{in})

    Coordinate convention: ``matrix`` is the **inverse** (pull, output → input) map, on
    **(row, col)** array coordinates with pixel **centres at integers** (pixel ``[0, 0]`` is
    centred at ``(0, 0)``, the top-left pixel's top-left corner is ``(-0.5, -0.5)``). The
    identity is ``[[1, 0, 0], [0, 1, 0]]``; ``[[1, 0, -2], [0, 1, 0]]`` moves the content 2 rows
    *down*. To apply a forward (push) map ``F``, pass the first two rows of ``inv(F)`` (3 × 3).

    Matches ``scipy.ndimage.affine_transform(x[..., c], A[:, :2], offset=A[:, 2], order=1,
    mode=mode, cval=cval)`` per channel, and ``dm_pix.affine_transform`` (modes ``"constant"``
    and ``"nearest"``) with the 3-D matrix ``[[A[0,0], A[0,1], 0, A[0,2]], [A[1,0], A[1,1], 0,
    A[1,2]], [0, 0, 1, 0]]``. torchvision's ``affine`` and OpenCV's ``warpAffine`` take
    ``(x, y)`` = ``(col, row)`` coordinates; torchvision builds the inverse map for you from
    forward parameters about the image centre, and OpenCV expects the forward map unless
    ``WARP_INVERSE_MAP``.

    Args:
      image: ``(H, W, C)`` or ``(N, H, W, C)`` floating array (one matrix for the whole batch;
        vmap for one matrix per image).
      matrix: ``(2, 3)`` array, the output → input map above. Differentiable.
      mode: one of :data:`MODES` (see the module docstring).
      cval: the fill value of ``"constant"`` and ``"grid-constant"``.

    Returns:
      An array of the same shape and dtype as ``image``. Differentiable in ``image`` (linear)
      and, almost everywhere, in ``matrix`` (the bilinear weights have kinks at integers).

    Raises:
      ValueError: bad rank, ``matrix`` not of shape ``(2, 3)``, unknown ``mode``.
      TypeError: if ``image`` is not floating.

    Example:
      >>> x = jnp.array([[0.0], [1.0], [2.0]])[:, :, None]  # (3, 1, 1): rows 0, 1, 2
      >>> affine(x, jnp.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.0]])).ravel().tolist()
      [0.5, 1.5, 0.0]
    """
    _check_image(image, "affine")
    _check_mode(mode, "affine")
    if np.shape(matrix) != (2, 3):
        raise ValueError(f"affine: matrix must have shape (2, 3), got {np.shape(matrix)}")
    hw = tuple(image.shape[-3:-1])
    return _jit_on_images(_warp1, (hw, mode), image, matrix, cval)


def _warp1(im, matrix, cval, hw, mode):
    return _warp(im, matrix, hw, mode, cval)


def _about_centre(linear: jax.Array, hw: tuple[int, int], dtype: Any) -> jax.Array:
    """(2, 3) output→input matrix applying ``linear`` (2, 2) about the image centre."""
    centre = (jnp.asarray(hw, dtype) - 1) / 2
    offset = centre - linear @ centre
    return jnp.concatenate([linear, offset[:, None]], axis=1)


def _rotation_matrix(angle: jax.Array, hw: tuple[int, int], dtype: Any) -> jax.Array:
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    linear = jnp.stack([jnp.stack([cos, sin]), jnp.stack([-sin, cos])])
    return _about_centre(linear, hw, dtype)


def rotate(
    image: jax.Array,
    angle: Any,
    *,
    mode: str = "constant",
    cval: float = 0.0,
) -> jax.Array:
    r"""Rotate counter-clockwise by ``angle`` radians about the image centre (bilinear).

    .. math::
        \begin{pmatrix} r_{in} - r_0 \\ c_{in} - c_0 \end{pmatrix} =
        \begin{pmatrix} \cos\theta & \sin\theta \\ -\sin\theta & \cos\theta \end{pmatrix}
        \begin{pmatrix} r_{out} - r_0 \\ c_{out} - c_0 \end{pmatrix},\quad
        (r_0, c_0) = \left(\tfrac{H-1}{2}, \tfrac{W-1}{2}\right)

    Counter-clockwise as displayed (row axis pointing down). The output keeps the input size;
    corners are filled by ``mode`` (``"constant"`` with ``cval`` by default, ``"reflect"`` for
    a mirror fill). Matches ``dm_pix.rotate(x, angle, mode=mode, cval=cval)`` (``"constant"``,
    ``"nearest"``) and :func:`affine` with that matrix (so ``scipy.ndimage.affine_transform``);
    torchvision's ``rotate`` takes degrees and defaults to nearest-neighbour interpolation.

    Args:
      image: ``(H, W, C)`` or ``(N, H, W, C)`` floating array.
      angle: scalar angle in radians (differentiable almost everywhere).
      mode: one of :data:`MODES`.
      cval: fill value for ``"constant"`` / ``"grid-constant"``.

    Returns:
      An array of the same shape and dtype as ``image``.

    Raises:
      ValueError: bad rank or unknown ``mode``.
      TypeError: if ``image`` is not floating.

    Example:
      >>> x = jnp.arange(9.0).reshape(3, 3, 1)
      >>> rotate(x, jnp.pi / 2)[..., 0].round(4).tolist()  # right column moves to the top row
      [[2.0, 5.0, 8.0], [1.0, 4.0, 7.0], [0.0, 3.0, 6.0]]
    """
    _check_image(image, "rotate")
    _check_mode(mode, "rotate")
    return _jit_on_images(_rotate1, (mode,), image, angle, cval)


def _rotate1(im, angle, cval, mode):
    hw = im.shape[:2]
    return _warp(im, _rotation_matrix(jnp.asarray(angle, im.dtype), hw, im.dtype), hw, mode, cval)


def _pair(value: Any, dtype: Any) -> jax.Array:
    v = jnp.asarray(value, dtype)
    return jnp.broadcast_to(v, (2,)) if v.ndim == 0 else v


def scale(
    image: jax.Array,
    factor: Any,
    *,
    mode: str = "constant",
    cval: float = 0.0,
) -> jax.Array:
    r"""Zoom by ``factor`` about the image centre, keeping the output size (bilinear).

    .. math:: r_{in} - r_0 = (r_{out} - r_0) / s_r,\qquad c_{in} - c_0 = (c_{out} - c_0) / s_c

    ``factor > 1`` zooms in (crops the centre), ``factor < 1`` zooms out (borders filled by
    ``mode``). The study guide's 缩放 / 尺度变换. Matches :func:`affine` with ``diag(1/s)`` about
    the centre; torchvision's ``affine(scale=s)`` (nearest by default) and albumentations'
    ``Affine(scale=s)``. No antialiasing: strong zoom-out aliases (as in those).

    Args:
      image: ``(H, W, C)`` or ``(N, H, W, C)`` floating array.
      factor: scalar or ``(s_row, s_col)``; must be non-zero.
      mode: one of :data:`MODES`.
      cval: fill value for ``"constant"`` / ``"grid-constant"``.

    Returns:
      An array of the same shape and dtype as ``image``.

    Raises:
      ValueError: bad rank or unknown ``mode``.
      TypeError: if ``image`` is not floating.

    Example:
      >>> x = jnp.array([0.0, 1.0, 2.0, 3.0, 4.0]).reshape(1, 5, 1)
      >>> scale(x, 2.0).ravel().tolist()
      [1.0, 1.5, 2.0, 2.5, 3.0]
    """
    _check_image(image, "scale")
    _check_mode(mode, "scale")
    return _jit_on_images(_scale1, (mode,), image, factor, cval)


def _scale1(im, factor, cval, mode):
    hw = im.shape[:2]
    matrix = _about_centre(jnp.diag(1 / _pair(factor, im.dtype)), hw, im.dtype)
    return _warp(im, matrix, hw, mode, cval)


def translate(
    image: jax.Array,
    shift: Any,
    *,
    mode: str = "constant",
    cval: float = 0.0,
) -> jax.Array:
    r"""Shift the content by ``shift = (d_row, d_col)`` pixels (fractional: bilinear).

    .. math:: y[r, c] = x[r - d_r,\ c - d_c]

    Positive ``d_row`` moves the content down, positive ``d_col`` right; vacated pixels are
    filled by ``mode``. The study guide's 平移变换. Matches :func:`affine` with
    ``[[1, 0, -d_r], [0, 1, -d_c]]``; torchvision's ``affine(translate=(dx, dy))`` is in
    ``(col, row)`` order and integer pixels.

    Args:
      image: ``(H, W, C)`` or ``(N, H, W, C)`` floating array.
      shift: scalar (both axes) or ``(d_row, d_col)`` in pixels.
      mode: one of :data:`MODES`.
      cval: fill value for ``"constant"`` / ``"grid-constant"``.

    Returns:
      An array of the same shape and dtype as ``image``.

    Raises:
      ValueError: bad rank or unknown ``mode``.
      TypeError: if ``image`` is not floating.

    Example:
      >>> x = jnp.array([1.0, 2.0, 3.0]).reshape(1, 3, 1)
      >>> translate(x, (0, 1)).ravel().tolist()
      [0.0, 1.0, 2.0]
    """
    _check_image(image, "translate")
    _check_mode(mode, "translate")
    return _jit_on_images(_translate1, (mode,), image, shift, cval)


def _translate1(im, shift, cval, mode):
    d = _pair(shift, im.dtype)
    matrix = jnp.concatenate([jnp.eye(2, dtype=im.dtype), -d[:, None]], axis=1)
    return _warp(im, matrix, im.shape[:2], mode, cval)


def random_rotate(
    key: jax.Array,
    image: jax.Array,
    max_angle: float,
    *,
    mode: str = "constant",
    cval: float = 0.0,
) -> jax.Array:
    r"""Rotate by a random angle ``θ ~ U(-max_angle, max_angle)`` radians (per image).

    .. math:: y = \mathrm{rotate}(x, \theta),\quad \theta \sim \mathcal{U}(-a, a)

    The draw is ``jax.random.uniform(key, (), dtype, -max_angle, max_angle)``. torchvision's
    ``RandomRotation(degrees)`` (degrees, nearest by default).

    Args:
      key: a ``jax.random`` key.
      image: ``(H, W, C)`` or ``(N, H, W, C)`` floating array.
      max_angle: the largest absolute angle in radians (``>= 0``).
      mode: one of :data:`MODES`.
      cval: fill value for ``"constant"`` / ``"grid-constant"``.

    Returns:
      An array of the same shape and dtype as ``image``.

    Raises:
      ValueError: bad rank, unknown ``mode``, negative ``max_angle``.
      TypeError: if ``image`` is not floating.

    Example:
      >>> x = jnp.ones((4, 4, 1))
      >>> random_rotate(jax.random.key(0), x, 0.0).sum().item()
      16.0
    """
    _check_image(image, "random_rotate")
    _check_mode(mode, "random_rotate")
    check_in_range(max_angle, 0.0, math.inf, "max_angle", "random_rotate")

    return _jit_per_image(_random_rotate1, (mode,), key, image, max_angle, cval)


def _random_rotate1(k, im, max_angle, cval, mode):
    return _rotate1(im, _uniform(k, -max_angle, max_angle, im.dtype), cval, mode)


def random_scale(
    key: jax.Array,
    image: jax.Array,
    lower: float,
    upper: float,
    *,
    mode: str = "constant",
    cval: float = 0.0,
) -> jax.Array:
    r"""Zoom about the centre by ``s ~ U(lower, upper)``, the same on both axes (per image).

    .. math:: y = \mathrm{scale}(x, s),\quad s \sim \mathcal{U}(\mathrm{lower}, \mathrm{upper})

    The draw is ``jax.random.uniform(key, (), dtype, lower, upper)``. torchvision's
    ``RandomAffine(degrees=0, scale=(lower, upper))``.

    Args:
      key: a ``jax.random`` key.
      image: ``(H, W, C)`` or ``(N, H, W, C)`` floating array.
      lower: smallest factor (``> 0``).
      upper: largest factor (``>= lower``).
      mode: one of :data:`MODES`.
      cval: fill value for ``"constant"`` / ``"grid-constant"``.

    Returns:
      An array of the same shape and dtype as ``image``.

    Raises:
      ValueError: bad rank, unknown ``mode``, not ``0 < lower <= upper``.
      TypeError: if ``image`` is not floating.

    Example:
      >>> x = jnp.ones((4, 4, 1))
      >>> random_scale(jax.random.key(0), x, 1.0, 1.0).sum().item()
      16.0
    """
    _check_image(image, "random_scale")
    _check_mode(mode, "random_scale")
    _check_range(lower, upper, "random_scale", lo=1e-12)

    return _jit_per_image(_random_scale1, (mode,), key, image, lower, upper, cval)


def _random_scale1(k, im, lower, upper, cval, mode):
    return _scale1(im, _uniform(k, lower, upper, im.dtype), cval, mode)


def random_translate(
    key: jax.Array,
    image: jax.Array,
    max_shift: Any,
    *,
    mode: str = "constant",
    cval: float = 0.0,
) -> jax.Array:
    r"""Shift by ``d_r ~ U(-f_r H, f_r H)``, ``d_c ~ U(-f_c W, f_c W)`` pixels (per image).

    .. math:: y = \mathrm{translate}(x, (d_r, d_c))

    ``max_shift`` is a *fraction* of the image size, so a policy works at any resolution. The
    draw is ``jax.random.uniform(key, (2,), dtype, -1, 1) * max_shift * (H, W)``. torchvision's
    ``RandomAffine(degrees=0, translate=(f_c, f_r))`` (note its ``(x, y)`` order).

    Args:
      key: a ``jax.random`` key.
      image: ``(H, W, C)`` or ``(N, H, W, C)`` floating array.
      max_shift: fraction in ``[0, 1]``, a scalar or ``(f_row, f_col)``.
      mode: one of :data:`MODES`.
      cval: fill value for ``"constant"`` / ``"grid-constant"``.

    Returns:
      An array of the same shape and dtype as ``image``.

    Raises:
      ValueError: bad rank, unknown ``mode``, a fraction outside ``[0, 1]``.
      TypeError: if ``image`` is not floating.

    Example:
      >>> x = jnp.ones((4, 4, 1))
      >>> random_translate(jax.random.key(0), x, 0.0).sum().item()
      16.0
    """
    _check_image(image, "random_translate")
    _check_mode(mode, "random_translate")
    for f in np.atleast_1d(np.asarray(max_shift, dtype=object)):
        check_in_range(f, 0.0, 1.0, "max_shift", "random_translate")

    return _jit_per_image(_random_translate1, (mode,), key, image, max_shift, cval)


def _random_translate1(k, im, max_shift, cval, mode):
    size = jnp.asarray(im.shape[:2], im.dtype)
    d = _uniform(k, -1.0, 1.0, im.dtype, (2,)) * _pair(max_shift, im.dtype) * size
    return _translate1(im, d, cval, mode)


# --------------------------------------------------------------------------------------------
# Crops
# --------------------------------------------------------------------------------------------


def _check_size(size: Any, image: jax.Array, op: str) -> tuple[int, int]:
    if isinstance(size, int) and not isinstance(size, bool):
        size = (size, size)
    if (
        not isinstance(size, Sequence)
        or len(size) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in size)
    ):
        raise ValueError(f"{op}: size must be an int or a (height, width) pair, got {size!r}")
    h, w = image.shape[-3:-1]
    if not (1 <= size[0] <= h and 1 <= size[1] <= w):
        raise ValueError(
            f"{op}: crop size {tuple(size)} must be positive and at most the image size {(h, w)}"
        )
    return tuple(size)


def random_crop(key: jax.Array, image: jax.Array, size: Any) -> jax.Array:
    r"""Cut a ``size = (h, w)`` window at a uniformly random integer offset (per image).

    .. math:: y = x[t : t + h,\ l : l + w],\quad t \sim \mathcal{U}\{0..H-h\},\
              l \sim \mathcal{U}\{0..W-w\}

    The draw is ``t, l = jax.random.randint(key, (2,), 0, (H - h + 1, W - w + 1))``.
    dm-pix's ``random_crop`` and torchvision's ``RandomCrop`` (without padding) do the same
    (their key use differs). AlexNet's 224 × 224 crops of 256 × 256 images.

    Args:
      key: a ``jax.random`` key.
      image: ``(H, W, C)`` or ``(N, H, W, C)`` floating array.
      size: an int or ``(h, w)``, at most the image size.

    Returns:
      ``(h, w, C)`` or ``(N, h, w, C)``, same dtype.

    Raises:
      ValueError: bad rank, or a crop larger than the image (or not positive).
      TypeError: if ``image`` is not floating.

    Example:
      >>> x = jnp.arange(4.0).reshape(2, 2, 1)
      >>> random_crop(jax.random.key(0), x, (2, 2)).ravel().tolist()
      [0.0, 1.0, 2.0, 3.0]
    """
    _check_image(image, "random_crop")
    h, w = _check_size(size, image, "random_crop")
    return _jit_per_image(_random_crop1, (h, w), key, image)


def _random_crop1(k, im, h, w):
    hi = jnp.array([im.shape[0] - h + 1, im.shape[1] - w + 1])
    t, left = jax.random.randint(k, (2,), 0, hi)
    return jax.lax.dynamic_slice(im, (t, left, 0), (h, w, im.shape[2]))


def random_resized_crop(
    key: jax.Array,
    image: jax.Array,
    size: Any,
    *,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> jax.Array:
    r"""Crop a random box of random area and aspect ratio, then resize it to ``size`` (bilinear).

    .. math::
        a \sim \mathcal{U}(s_0, s_1)\,HW,\quad \log\rho \sim \mathcal{U}(\log r_0, \log r_1),\quad
        h_b = \min(\sqrt{a/\rho}, H),\ w_b = \min(\sqrt{a\rho}, W)

    The box's top-left corner ``(t, l)`` is uniform in ``[0, H - h_b] × [0, W - w_b]`` (real
    valued) and output pixel ``(i, j)`` samples input ``(t + (i + ½) h_b / h - ½,
    l + (j + ½) w_b / w - ½)`` (pixel-centre aligned, like ``jax.image.resize``), with edge
    clamping. The draw is ``u = jax.random.uniform(key, (4,), dtype)`` for area, log-ratio, top
    and left in that order. The Inception / torchvision ``RandomResizedCrop``, except that
    torchvision retries up to 10 times and then falls back to a centre crop where this clamps
    the box into the image in one draw (jit-friendly), and torchvision antialiases when
    shrinking (this does not).

    Args:
      key: a ``jax.random`` key.
      image: ``(H, W, C)`` or ``(N, H, W, C)`` floating array.
      size: output ``(h, w)`` (an int for square).
      scale: range of the box area as a fraction of ``H·W``, ``0 < s_0 <= s_1 <= 1``.
      ratio: range of the box aspect ratio ``w_b / h_b``, ``0 < r_0 <= r_1``.

    Returns:
      ``(h, w, C)`` or ``(N, h, w, C)``, same dtype.

    Raises:
      ValueError: bad rank, bad ``size``, bad ``scale`` or ``ratio`` ranges.
      TypeError: if ``image`` is not floating.

    Example:
      >>> x = jnp.full((8, 8, 3), 0.5)
      >>> random_resized_crop(jax.random.key(0), x, (4, 4)).shape
      (4, 4, 3)
    """
    op = "random_resized_crop"
    _check_image(image, op)
    if isinstance(size, int) and not isinstance(size, bool):
        size = (size, size)
    if (
        not isinstance(size, Sequence)
        or len(size) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in size)
    ):
        raise ValueError(f"{op}: size must be a positive int or (height, width), got {size!r}")
    _check_range(scale[0], scale[1], op, lo=1e-12)
    check_in_range(scale[1], 0.0, 1.0, "scale[1]", op)
    _check_range(ratio[0], ratio[1], op, lo=1e-12)
    static = (tuple(size), tuple(float(v) for v in scale), tuple(float(v) for v in ratio))
    return _jit_per_image(_random_resized_crop1, static, key, image)


def _random_resized_crop1(k, im, size, scale, ratio):
    ho, wo = size
    dt = im.dtype
    hh, ww = im.shape[:2]
    u = jax.random.uniform(k, (4,), dt)
    area = (scale[0] + (scale[1] - scale[0]) * u[0]) * hh * ww
    log_r = math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * u[1]
    rho = jnp.exp(log_r)
    hb = jnp.minimum(jnp.sqrt(area / rho), hh)
    wb = jnp.minimum(jnp.sqrt(area * rho), ww)
    t = u[2] * (hh - hb)
    left = u[3] * (ww - wb)
    sr, sc = hb / ho, wb / wo
    zero = jnp.zeros((), dt)
    matrix = jnp.stack(
        [
            jnp.stack([sr, zero, t + 0.5 * sr - 0.5]),
            jnp.stack([zero, sc, left + 0.5 * sc - 0.5]),
        ]
    )
    return _warp(im, matrix, (ho, wo), "nearest", 0.0)


# --------------------------------------------------------------------------------------------
# Colour: HSV conversions and adjustments
# --------------------------------------------------------------------------------------------


def rgb_to_hsv(image: jax.Array) -> jax.Array:
    r"""Convert RGB to HSV, all channels in ``[0, 1]`` (hue in turns).

    .. math::
        V = \max(R,G,B),\ \ \Delta = V - \min(R,G,B),\ \ S = \Delta / V\ (0 \text{ if } V=0),\\
        H = \tfrac16\begin{cases}
          (G - B)/\Delta \bmod 6 & V = R \\ (B - R)/\Delta + 2 & V = G \\
          (R - G)/\Delta + 4 & V = B \end{cases}\quad (H = 0 \text{ if } \Delta = 0)

    Matches ``colorsys.rgb_to_hsv`` per pixel and ``dm_pix.rgb_to_hsv`` (tf.image). Under
    differentiation, grey pixels (``Δ = 0``) have zero hue gradient and black pixels
    (``V = 0``) zero saturation gradient (safe divisions, as dm-pix), and at ties of the
    maximum the first of R, G, B wins, as in ``colorsys``.

    Args:
      image: ``(H, W, 3)`` or ``(N, H, W, 3)`` floating RGB in ``[0, 1]``.

    Returns:
      HSV array of the same shape and dtype.

    Raises:
      ValueError: bad rank, or not 3 channels.
      TypeError: if ``image`` is not floating.

    Example:
      >>> hsv = rgb_to_hsv(jnp.array([[[1.0, 0.5, 0.0]]]))  # orange; colorsys: (1/12, 1, 1)
      >>> [round(v, 4) for v in hsv.ravel().tolist()]
      [0.0833, 1.0, 1.0]
    """
    _check_image(image, "rgb_to_hsv", channels=3)
    return _rgb_to_hsv(image)


@jax.jit
def _rgb_to_hsv(image):
    r, g, b = image[..., 0], image[..., 1], image[..., 2]
    v = jnp.maximum(jnp.maximum(r, g), b)
    delta = v - jnp.minimum(jnp.minimum(r, g), b)
    safe_v = jnp.where(v > 0, v, 1)
    safe_d = jnp.where(delta > 0, delta, 1)
    s = jnp.where(v > 0, delta / safe_v, 0)
    h = jnp.where(
        v == r,
        (g - b) / safe_d,
        jnp.where(v == g, (b - r) / safe_d + 2, (r - g) / safe_d + 4),
    )
    h = jnp.where(delta > 0, h / 6, 0)
    h = h + (h < 0)  # (G - B)/Δ in [-1, 0) wraps to [5/6, 1)
    return jnp.stack([h, s, v], axis=-1)


def hsv_to_rgb(image: jax.Array) -> jax.Array:
    r"""Convert HSV (all in ``[0, 1]``, hue in turns and wrapping) to RGB.

    .. math::
        (R, G, B) = V\,\bigl(1 - S + S\,(f_R, f_G, f_B)\bigr),\quad
        f_R = \mathrm{clip}(|6H' - 3| - 1),\ f_G = \mathrm{clip}(2 - |6H' - 2|),\
        f_B = \mathrm{clip}(2 - |6H' - 4|),\ H' = H \bmod 1

    (``clip`` to ``[0, 1]``: the piecewise-linear hue ramps.) Matches ``colorsys.hsv_to_rgb``
    and ``dm_pix.hsv_to_rgb``; the inverse of :func:`rgb_to_hsv` on ``[0, 1]³``.

    Args:
      image: ``(H, W, 3)`` or ``(N, H, W, 3)`` floating HSV.

    Returns:
      RGB array of the same shape and dtype.

    Raises:
      ValueError: bad rank, or not 3 channels.
      TypeError: if ``image`` is not floating.

    Example:
      >>> hsv_to_rgb(jnp.array([[[1 / 3, 1.0, 0.5]]])).ravel().round(4).tolist()  # green
      [0.0, 0.5, 0.0]
    """
    _check_image(image, "hsv_to_rgb", channels=3)
    return _hsv_to_rgb(image[..., 0], image[..., 1], image[..., 2])


@jax.jit
def _hsv_to_rgb(h, s, v):
    dh = jnp.mod(h, 1) * 6
    fr = jnp.clip(jnp.abs(dh - 3) - 1, 0, 1)
    fg = jnp.clip(2 - jnp.abs(dh - 2), 0, 1)
    fb = jnp.clip(2 - jnp.abs(dh - 4), 0, 1)
    return jnp.stack([v * (1 - s + s * f) for f in (fr, fg, fb)], axis=-1)


def adjust_saturation(image: jax.Array, factor: Any) -> jax.Array:
    r"""Multiply the HSV saturation by ``factor`` (clipped to ``[0, 1]``); hue and value kept.

    .. math:: (H, S, V) = \mathrm{hsv}(x),\quad y = \mathrm{rgb}\bigl(H,\
              \mathrm{clip}(\mathrm{factor}\cdot S, 0, 1),\ V\bigr)

    The study guide's 对比度变换 (change S and V in HSV, keep H). Matches
    ``dm_pix.adjust_saturation`` and ``tf.image.adjust_saturation`` (both multiplicative in HSV). It
    differs from torchvision's and augmax's ``adjust_saturation``, which blend linearly in RGB with
    the grey (luma) image, ``factor·x + (1 - factor)·gray`` (that changes V and, for factor > 1,
    clips per channel), and from albumentations' ``HueSaturationValue``, whose
    ``sat_shift_limit`` *adds* to S. ``factor = 0`` gives grey ``(V, V, V)``.

    Args:
      image: ``(H, W, 3)`` or ``(N, H, W, 3)`` floating RGB in ``[0, 1]``.
      factor: non-negative scalar.

    Returns:
      RGB array of the same shape and dtype.

    Raises:
      ValueError: bad rank, or not 3 channels.
      TypeError: if ``image`` is not floating.

    Example:
      >>> adjust_saturation(jnp.array([[[1.0, 0.5, 0.0]]]), 0.5).ravel().tolist()
      [1.0, 0.75, 0.5]
    """
    _check_image(image, "adjust_saturation", channels=3)
    return _adjust_saturation(image, factor)


@jax.jit
def _adjust_saturation(image, factor):
    hsv = _rgb_to_hsv(image)
    s = jnp.clip(hsv[..., 1] * jnp.asarray(factor, image.dtype), 0, 1)
    return _hsv_to_rgb(hsv[..., 0], s, hsv[..., 2])


def adjust_value(image: jax.Array, factor: Any) -> jax.Array:
    r"""Multiply the HSV value by ``factor`` (clipped to ``[0, 1]``); hue and saturation kept.

    .. math:: y = x \cdot \frac{\mathrm{clip}(\mathrm{factor}\cdot V, 0, 1)}{V},\quad
              V = \max(R, G, B)\quad (y = x \text{ where } V = 0)

    which equals ``hsv_to_rgb(H, S, clip(factor·V))`` exactly (RGB is linear in V at fixed H,
    S) and is smooth in ``x`` where ``V > 0``. The study guide's 对比度变换 (the V half). It is
    torchvision's ``adjust_brightness`` (``clamp(factor·x)``) only when no channel clips: that
    clamps each channel separately and so shifts hue, this keeps it. albumentations'
    ``val_shift_limit`` adds to V instead.

    Args:
      image: ``(H, W, 3)`` or ``(N, H, W, 3)`` floating RGB in ``[0, 1]``.
      factor: non-negative scalar.

    Returns:
      RGB array of the same shape and dtype.

    Raises:
      ValueError: bad rank, or not 3 channels.
      TypeError: if ``image`` is not floating.

    Example:
      >>> adjust_value(jnp.array([[[0.8, 0.4, 0.0]]]), 2.0).ravel().tolist()  # V clips at 1
      [1.0, 0.5, 0.0]
    """
    _check_image(image, "adjust_value", channels=3)
    return _adjust_value(image, factor)


@jax.jit
def _adjust_value(image, factor):
    v = jnp.max(image, axis=-1, keepdims=True)
    safe_v = jnp.where(v > 0, v, 1)
    new_v = jnp.clip(v * jnp.asarray(factor, image.dtype), 0, 1)
    return jnp.where(v > 0, image * (new_v / safe_v), image)


def adjust_contrast(image: jax.Array, factor: Any) -> jax.Array:
    r"""Scale each channel's deviation from its per-image spatial mean by ``factor``.

    .. math:: y_{i,j,c} = \mu_c + \mathrm{factor}\,(x_{i,j,c} - \mu_c),\quad
              \mu_c = \tfrac{1}{HW}\textstyle\sum_{i,j} x_{i,j,c}

    Matches ``dm_pix.adjust_contrast`` and ``tf.image.adjust_contrast`` (per-channel mean, no
    clipping: values may leave ``[0, 1]``; :func:`augment_batch` clips at the end).
    torchvision's ``adjust_contrast`` blends with the mean of the *grey* image (one scalar for
    all channels) and clamps to ``[0, 1]``. Any number of channels.

    Args:
      image: ``(H, W, C)`` or ``(N, H, W, C)`` floating array (means per image of a batch).
      factor: scalar; 1 is the identity, 0 the flat mean image.

    Returns:
      An array of the same shape and dtype.

    Raises:
      ValueError: bad rank.
      TypeError: if ``image`` is not floating.

    Example:
      >>> adjust_contrast(jnp.array([[[0.25], [0.75]]]), 2.0).ravel().tolist()  # mean 0.5
      [0.0, 1.0]
    """
    _check_image(image, "adjust_contrast")
    return _adjust_contrast(image, factor)


@jax.jit
def _adjust_contrast(image, factor):
    mean = jnp.mean(image, axis=(-3, -2), keepdims=True)
    return mean + jnp.asarray(factor, image.dtype) * (image - mean)


def adjust_brightness(image: jax.Array, delta: Any) -> jax.Array:
    r"""Add ``delta`` to every channel.

    .. math:: y = x + \delta

    Matches ``dm_pix.adjust_brightness`` and ``tf.image.adjust_brightness`` (additive, no
    clipping). torchvision's ``adjust_brightness`` is *multiplicative* (``clamp(factor·x)``):
    see :func:`adjust_value` for the HSV form of that.

    Args:
      image: ``(H, W, C)`` or ``(N, H, W, C)`` floating array.
      delta: scalar shift.

    Returns:
      An array of the same shape and dtype.

    Raises:
      ValueError: bad rank.
      TypeError: if ``image`` is not floating.

    Example:
      >>> adjust_brightness(jnp.array([[[0.25]]]), 0.5).item()
      0.75
    """
    _check_image(image, "adjust_brightness")
    return image + jnp.asarray(delta, image.dtype)


def _random_factor1(k, im, lower, upper, adjust):
    return adjust(im, _uniform(k, lower, upper, im.dtype))


def _random_factor(name: str, adjust: Callable, impl: Callable, channels: int | None):
    op = f"random_{name}"

    def fn(key: jax.Array, image: jax.Array, lower: float, upper: float) -> jax.Array:
        _check_image(image, op, channels=channels)
        _check_range(lower, upper, op, lo=0.0)
        return _jit_per_image(_random_factor1, (impl,), key, image, lower, upper)

    fn.__name__ = fn.__qualname__ = op
    fn.__doc__ = rf"""Apply :func:`{adjust.__name__}` with ``factor ~ U(lower, upper)`` per image.

    .. math:: y = \mathrm{{{adjust.__name__}}}(x, f),\quad f \sim \mathcal{{U}}(l, u)

    The draw is ``jax.random.uniform(key, (), dtype, lower, upper)``; a batch gets one factor
    per image. See :func:`{adjust.__name__}` for how it differs from dm-pix / torchvision.

    Args:
      key: a ``jax.random`` key.
      image: ``(H, W, {channels or "C"})`` or ``(N, H, W, {channels or "C"})`` floating array.
      lower: smallest factor (``>= 0``).
      upper: largest factor (``>= lower``).

    Returns:
      An array of the same shape and dtype.

    Raises:
      ValueError: bad rank{", not 3 channels" if channels else ""}, not ``0 <= lower <= upper``.
      TypeError: if ``image`` is not floating.

    Example:
      >>> x = jnp.full((2, 2, 3), 0.5)
      >>> {op}(jax.random.key(0), x, 1.0, 1.0).mean().item()
      0.5
    """
    return fn


random_saturation = _random_factor("saturation", adjust_saturation, _adjust_saturation, 3)
random_value = _random_factor("value", adjust_value, _adjust_value, 3)
random_contrast = _random_factor("contrast", adjust_contrast, _adjust_contrast, None)


def random_brightness(key: jax.Array, image: jax.Array, max_delta: float) -> jax.Array:
    r"""Add ``δ ~ U(-max_delta, max_delta)`` to every channel (one δ per image).

    .. math:: y = x + \delta,\quad \delta \sim \mathcal{U}(-d, d)

    The draw is ``jax.random.uniform(key, (), dtype, -max_delta, max_delta)``. Matches
    ``dm_pix.random_brightness`` up to the key use.

    Args:
      key: a ``jax.random`` key.
      image: ``(H, W, C)`` or ``(N, H, W, C)`` floating array.
      max_delta: non-negative bound.

    Returns:
      An array of the same shape and dtype.

    Raises:
      ValueError: bad rank, negative ``max_delta``.
      TypeError: if ``image`` is not floating.

    Example:
      >>> random_brightness(jax.random.key(0), jnp.full((1, 1, 1), 0.5), 0.0).item()
      0.5
    """
    _check_image(image, "random_brightness")
    check_in_range(max_delta, 0.0, math.inf, "max_delta", "random_brightness")

    return _jit_per_image(_random_brightness1, (), key, image, max_delta)


def _random_brightness1(k, im, max_delta):
    return im + _uniform(k, -max_delta, max_delta, im.dtype)


# --------------------------------------------------------------------------------------------
# Noise
# --------------------------------------------------------------------------------------------


def gaussian_noise(key: jax.Array, image: jax.Array, sigma: Any) -> jax.Array:
    r"""Add i.i.d. Gaussian noise of standard deviation ``sigma`` to every channel of every pixel.

    .. math:: y = x + \sigma\,\varepsilon,\quad \varepsilon \sim \mathcal{N}(0, 1)

    The study guide's 噪声扰动 (Gaussian). ``ε = jax.random.normal(key, image.shape, dtype)`` (the
    whole batch at once, so independent across images). No clipping (:func:`augment_batch`
    clips at the end). albumentations' ``GaussNoise`` is parameterised by the variance.

    Args:
      key: a ``jax.random`` key.
      image: ``(H, W, C)`` or ``(N, H, W, C)`` floating array.
      sigma: non-negative standard deviation (in ``[0, 1]`` pixel units).

    Returns:
      An array of the same shape and dtype.

    Raises:
      ValueError: bad rank, negative ``sigma``.
      TypeError: if ``image`` is not floating.

    Example:
      >>> gaussian_noise(jax.random.key(0), jnp.full((2, 2, 1), 0.5), 0.0).mean().item()
      0.5
    """
    _check_image(image, "gaussian_noise")
    check_in_range(sigma, 0.0, math.inf, "sigma", "gaussian_noise")
    return _gaussian_noise(key, image, sigma)


@jax.jit
def _gaussian_noise(key, image, sigma):
    eps = jax.random.normal(key, image.shape, image.dtype)
    return image + jnp.asarray(sigma, image.dtype) * eps


def random_gaussian_noise(key: jax.Array, image: jax.Array, max_sigma: float) -> jax.Array:
    r"""Gaussian noise with a random level ``σ ~ U(0, max_sigma)`` per image.

    .. math:: y = x + \sigma\,\varepsilon,\quad \sigma \sim \mathcal{U}(0, s),\
              \varepsilon \sim \mathcal{N}(0, I)

    On one image: ``k1, k2 = jax.random.split(key)``, ``σ = uniform(k1, (), dtype, 0,
    max_sigma)``, then ``gaussian_noise(k2, image, σ)``.

    Args:
      key: a ``jax.random`` key.
      image: ``(H, W, C)`` or ``(N, H, W, C)`` floating array.
      max_sigma: non-negative bound.

    Returns:
      An array of the same shape and dtype.

    Raises:
      ValueError: bad rank, negative ``max_sigma``.
      TypeError: if ``image`` is not floating.

    Example:
      >>> random_gaussian_noise(jax.random.key(0), jnp.full((2, 2, 1), 0.5), 0.0).mean().item()
      0.5
    """
    _check_image(image, "random_gaussian_noise")
    check_in_range(max_sigma, 0.0, math.inf, "max_sigma", "random_gaussian_noise")

    return _jit_per_image(_random_gaussian_noise1, (), key, image, max_sigma)


def _random_gaussian_noise1(k, im, max_sigma):
    k1, k2 = jax.random.split(k)
    return _gaussian_noise(k2, im, _uniform(k1, 0.0, max_sigma, im.dtype))


def salt_and_pepper(
    key: jax.Array,
    image: jax.Array,
    amount: Any,
    *,
    salt_vs_pepper: float = 0.5,
) -> jax.Array:
    r"""Set a random fraction ``amount`` of pixels to white (salt) or black (pepper).

    .. math:: y_{ij} = \begin{cases} 1 & u_{ij} < a\,q \\ 0 & a\,q \le u_{ij} < a \\
              x_{ij} & \text{otherwise}\end{cases},\quad u_{ij} \sim \mathcal{U}(0, 1)

    with ``a = amount`` and ``q = salt_vs_pepper``: each pixel (all its channels together) is
    corrupted with probability ``a``, and a corrupted pixel is salt with probability ``q``. The
    study guide's 椒盐噪声. ``u = jax.random.uniform(key, image.shape[:-1] + (1,), dtype)``.
    ``skimage.util.random_noise(mode="s&p")`` corrupts each *channel* independently (coloured
    specks); this corrupts whole pixels (white and black specks).

    Args:
      key: a ``jax.random`` key.
      image: ``(H, W, C)`` or ``(N, H, W, C)`` floating array.
      amount: fraction of pixels corrupted, in ``[0, 1]``.
      salt_vs_pepper: fraction of the corrupted pixels set to 1, in ``[0, 1]``.

    Returns:
      An array of the same shape and dtype. Differentiable in ``image`` (gradient 1 on kept
      pixels, 0 on corrupted ones).

    Raises:
      ValueError: bad rank, ``amount`` or ``salt_vs_pepper`` outside ``[0, 1]``.
      TypeError: if ``image`` is not floating.

    Example:
      >>> x = jnp.full((2, 2, 3), 0.5)
      >>> salt_and_pepper(jax.random.key(0), x, 1.0, salt_vs_pepper=1.0).mean().item()
      1.0
    """
    op = "salt_and_pepper"
    _check_image(image, op)
    check_in_range(amount, 0.0, 1.0, "amount", op)
    check_in_range(salt_vs_pepper, 0.0, 1.0, "salt_vs_pepper", op)
    return _salt_and_pepper(key, image, amount, salt_vs_pepper)


@jax.jit
def _salt_and_pepper(key, image, amount, salt_vs_pepper):
    dt = image.dtype
    u = jax.random.uniform(key, (*image.shape[:-1], 1), dt)
    amount = jnp.asarray(amount, dt)
    salt = u < amount * jnp.asarray(salt_vs_pepper, dt)
    pepper = (u < amount) & ~salt
    return jnp.where(salt, jnp.ones((), dt), jnp.where(pepper, jnp.zeros((), dt), image))


def random_salt_and_pepper(
    key: jax.Array,
    image: jax.Array,
    max_amount: float,
    *,
    salt_vs_pepper: float = 0.5,
) -> jax.Array:
    r"""Salt-and-pepper noise with a random ``amount ~ U(0, max_amount)`` per image.

    .. math:: y = \mathrm{salt\_and\_pepper}(x, a),\quad a \sim \mathcal{U}(0, m)

    On one image: ``k1, k2 = jax.random.split(key)``, ``a = uniform(k1, (), dtype, 0,
    max_amount)``, then ``salt_and_pepper(k2, image, a, salt_vs_pepper=...)``.

    Args:
      key: a ``jax.random`` key.
      image: ``(H, W, C)`` or ``(N, H, W, C)`` floating array.
      max_amount: in ``[0, 1]``.
      salt_vs_pepper: fraction of corrupted pixels set to 1, in ``[0, 1]``.

    Returns:
      An array of the same shape and dtype.

    Raises:
      ValueError: bad rank, ``max_amount`` or ``salt_vs_pepper`` outside ``[0, 1]``.
      TypeError: if ``image`` is not floating.

    Example:
      >>> x = jnp.full((2, 2, 3), 0.5)
      >>> random_salt_and_pepper(jax.random.key(0), x, 0.0).mean().item()
      0.5
    """
    op = "random_salt_and_pepper"
    _check_image(image, op)
    check_in_range(max_amount, 0.0, 1.0, "max_amount", op)
    check_in_range(salt_vs_pepper, 0.0, 1.0, "salt_vs_pepper", op)

    return _jit_per_image(_random_salt_and_pepper1, (), key, image, max_amount, salt_vs_pepper)


def _random_salt_and_pepper1(k, im, max_amount, salt_vs_pepper):
    k1, k2 = jax.random.split(k)
    return _salt_and_pepper(k2, im, _uniform(k1, 0.0, max_amount, im.dtype), salt_vs_pepper)


# --------------------------------------------------------------------------------------------
# PCA colour augmentation (AlexNet lighting)
# --------------------------------------------------------------------------------------------


def fit_pca_color(images: jax.Array) -> tuple[jax.Array, jax.Array]:
    r"""Eigen-decompose the RGB covariance of a whole data set (AlexNet's lighting PCA).

    .. math:: \Sigma = \tfrac{1}{P}\textstyle\sum_p (x_p - \bar x)(x_p - \bar x)^\top
              = V \,\mathrm{diag}(\lambda)\, V^\top,\quad \lambda_1 \ge \lambda_2 \ge \lambda_3

    over all ``P`` pixels of all images (population covariance, ``ddof=0``), so
    ``Σλ = tr Σ`` is the total RGB variance. Each eigenvector's largest-magnitude entry is made
    positive (the sign is otherwise arbitrary). Fit once on the training set; albumentations'
    ``FancyPCA`` instead re-fits on each image, which is not what AlexNet describes.

    Args:
      images: ``(H, W, 3)`` or ``(N, H, W, 3)`` floating RGB.

    Returns:
      ``(eigvals, eigvecs)``: ``(3,)`` descending eigenvalues and ``(3, 3)`` eigenvectors as
      columns, in the images' dtype.

    Raises:
      ValueError: bad rank, or not 3 channels.
      TypeError: if ``images`` is not floating.

    Example:
      >>> x = jnp.array([[[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]])  # grey only: one component
      >>> [round(v, 4) for v in fit_pca_color(x)[0].tolist()]
      [0.75, 0.0, 0.0]

    References:
      Krizhevsky et al. 2012, section 4.1 ("altering the intensities of the RGB channels").
    """
    _check_image(images, "fit_pca_color", channels=3)
    pixels = images.reshape(-1, 3)
    centred = pixels - jnp.mean(pixels, axis=0)
    cov = centred.T @ centred / pixels.shape[0]
    eigvals, eigvecs = jnp.linalg.eigh(cov)
    eigvals, eigvecs = eigvals[::-1], eigvecs[:, ::-1]
    idx = jnp.argmax(jnp.abs(eigvecs), axis=0)
    sign = jnp.sign(eigvecs[idx, jnp.arange(3)])
    return jnp.maximum(eigvals, 0), eigvecs * jnp.where(sign == 0, 1, sign)


def pca_color(
    key: jax.Array,
    image: jax.Array,
    eigvals: Any,
    eigvecs: Any,
    *,
    sigma: float = 0.1,
) -> jax.Array:
    r"""AlexNet lighting: add ``Σ_i α_i λ_i p_i`` to every pixel, ``α ~ N(0, σ²I₃)`` per image.

    .. math:: y_{ij} = x_{ij} + [p_1, p_2, p_3]\,(\alpha_1\lambda_1, \alpha_2\lambda_2,
              \alpha_3\lambda_3)^\top,\quad \alpha \sim \mathcal{N}(0, \sigma^2 I)

    with ``(λ, p)`` from :func:`fit_pca_color` on the *training set*. One α per image (all its
    pixels share it); ``α = sigma * jax.random.normal(key, (3,), dtype)``. The study guide's
    颜色变换 ("PCA in the RGB space of the training set", cut off there: erratum 16
    (docs/errata.md)). No clipping. fb.resnet.torch's ``Lighting`` does the same on ``[0, 1]``
    pixels; albumentations' ``FancyPCA`` fits the PCA on each image instead.

    Args:
      key: a ``jax.random`` key.
      image: ``(H, W, 3)`` or ``(N, H, W, 3)`` floating RGB.
      eigvals: ``(3,)`` eigenvalues.
      eigvecs: ``(3, 3)`` eigenvectors as columns.
      sigma: standard deviation of α (AlexNet: 0.1).

    Returns:
      An array of the same shape and dtype.

    Raises:
      ValueError: bad rank, not 3 channels, ``eigvals``/``eigvecs`` of the wrong shape,
        negative ``sigma``.
      TypeError: if ``image`` is not floating.

    Example:
      >>> x = jnp.full((2, 2, 3), 0.5)
      >>> y = pca_color(jax.random.key(0), x, jnp.ones(3), jnp.eye(3), sigma=0.0)
      >>> y.mean().item()
      0.5

    References:
      Krizhevsky et al. 2012, section 4.1.
    """
    op = "pca_color"
    _check_image(image, op, channels=3)
    check_in_range(sigma, 0.0, math.inf, "sigma", op)
    if np.shape(eigvals) != (3,) or np.shape(eigvecs) != (3, 3):
        raise ValueError(
            f"{op}: eigvals must have shape (3,) and eigvecs (3, 3), "
            f"got {np.shape(eigvals)} and {np.shape(eigvecs)}"
        )

    return _jit_per_image(
        _pca_color1, (), key, image, jnp.asarray(eigvals), jnp.asarray(eigvecs), sigma
    )


def _pca_color1(k, im, eigvals, eigvecs, sigma):
    lam = eigvals.astype(im.dtype)
    vecs = eigvecs.astype(im.dtype)
    alpha = sigma * jax.random.normal(k, (3,), im.dtype)
    return im + vecs @ (alpha * lam)


# --------------------------------------------------------------------------------------------
# Policies: online (augment_batch) and offline (expand_dataset)
# --------------------------------------------------------------------------------------------

_REGISTRY: dict[str, Callable] = {
    "flip_left_right": lambda k, x: random_flip_left_right(k, x, p=1.0),
    "flip_up_down": lambda k, x: random_flip_up_down(k, x, p=1.0),
    "rotate": random_rotate,
    "scale": random_scale,
    "translate": random_translate,
    "crop": random_crop,
    "resized_crop": random_resized_crop,
    "saturation": random_saturation,
    "value": random_value,
    "contrast": random_contrast,
    "brightness": random_brightness,
    "gaussian_noise": random_gaussian_noise,
    "salt_and_pepper": random_salt_and_pepper,
    "pca_color": pca_color,
}


def _freeze(value: Any) -> Any:
    """Arrays and lists become nested tuples of Python numbers (hashable, static under jit)."""
    if isinstance(value, (jax.Array, np.ndarray)):
        return _freeze(np.asarray(value).tolist())
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


@dataclasses.dataclass(frozen=True)
class Transform:
    """One step of an augmentation policy: a random transform applied with probability ``p``.

    ``name`` is one of ``"flip_left_right"``, ``"flip_up_down"``, ``"rotate"``, ``"scale"``,
    ``"translate"``, ``"crop"``, ``"resized_crop"``, ``"saturation"``, ``"value"``,
    ``"contrast"``, ``"brightness"``, ``"gaussian_noise"``, ``"salt_and_pepper"``,
    ``"pca_color"`` — the ``random_*`` function of that name (``pca_color`` itself for the
    last) — or any callable ``fn(key, image, *args, **kwargs)`` on one ``(H, W, C)`` image.
    ``args`` are its positional ranges (``Transform("rotate", 0.5, (0.3,))`` calls
    ``random_rotate(key, image, 0.3)`` on half the images) and ``kwargs`` its keyword options
    as a dict or ``(name, value)`` pairs. Arrays in ``args``/``kwargs`` are frozen to nested
    tuples, so a policy (a tuple of Transforms) is hashable and jit treats it as static.

    Attributes:
      name: a registered name (above) or a callable.
      p: probability of applying it, in ``[0, 1]``.
      args: positional parameters (ranges) after ``(key, image)``.
      kwargs: keyword parameters, stored as sorted ``(name, value)`` pairs.
    """

    name: str | Callable
    p: float = 1.0
    args: tuple = ()
    kwargs: Any = ()

    def __post_init__(self):
        if isinstance(self.name, str) and self.name not in _REGISTRY:
            raise ValueError(
                f"Transform: name must be one of {tuple(_REGISTRY)} or a callable, "
                f"got {self.name!r}"
            )
        if not isinstance(self.name, str) and not callable(self.name):
            raise ValueError(f"Transform: name must be a string or a callable, got {self.name!r}")
        check_in_range(self.p, 0.0, 1.0, "probability p", "Transform")
        kwargs = self.kwargs.items() if isinstance(self.kwargs, dict) else self.kwargs
        object.__setattr__(self, "args", _freeze(tuple(self.args)))
        object.__setattr__(self, "kwargs", tuple(sorted((k, _freeze(v)) for k, v in kwargs)))

    @property
    def fn(self) -> Callable:
        """The function called as ``fn(key, image, *args, **kwargs)``."""
        return _REGISTRY[self.name] if isinstance(self.name, str) else self.name


def _check_policy(policy: Any, op: str) -> tuple:
    if isinstance(policy, Transform):
        policy = (policy,)
    policy = tuple(policy)
    for t in policy:
        if not isinstance(t, Transform):
            raise ValueError(f"{op}: policy entries must be Transform, got {t!r}")
    return policy


def _apply_policy(key: jax.Array, image: jax.Array, policy: tuple, op: str) -> jax.Array:
    """One image (H, W, C): transform t uses ``split(key, len(policy))[t]``, split again into
    (gate key, transform key)."""
    keys = jax.random.split(key, max(len(policy), 1))
    for t, k in zip(policy, keys, strict=False):
        if t.p == 0:
            continue
        k_gate, k_fn = jax.random.split(k)
        out = t.fn(k_fn, image, *t.args, **dict(t.kwargs))
        if t.p < 1:
            if out.shape != image.shape:
                raise ValueError(
                    f"{op}: transform {t.name!r} changes the image shape {image.shape} -> "
                    f"{out.shape}, so its probability p must be 1, got p={t.p}"
                )
            out = jnp.where(jax.random.bernoulli(k_gate, t.p), out, image)
        image = out.astype(image.dtype)
    return image


def _augment_impl(key, images, policy, clip, batch_size):
    def single(k, im):
        return _apply_policy(k, im, policy, "augment_batch")

    if images.ndim == 3 or batch_size is None:
        out = _per_image(single, key, images)
    else:  # same keys as _per_image, computed batch_size images at a time
        keys = jax.random.split(key, images.shape[0])
        out = jax.lax.map(lambda a: single(*a), (keys, images), batch_size=batch_size)
    return jnp.clip(out, 0, 1) if clip else out


_augment_jit = jax.jit(_augment_impl, static_argnames=("policy", "clip", "batch_size"))


def _check_batch_size(batch_size: Any, op: str) -> None:
    if batch_size is not None:
        check_int(batch_size, "batch_size", op, minimum=1)


def augment_batch(
    key: jax.Array,
    images: jax.Array,
    policy: Sequence[Transform],
    *,
    clip: bool = True,
    batch_size: int | None = None,
) -> jax.Array:
    r"""Online augmentation: apply a policy to a batch in one jitted call, new draws per image.

    .. math:: y_n = \mathrm{clip}\bigl(T_K \circ \cdots \circ T_1(x_n; k_n)\bigr),\quad
              k_n = \mathrm{split}(key, N)_n

    Each transform ``t`` runs on image ``n`` with probability ``t.p`` and random parameters of
    its own; keys: image ``n`` of a batch uses ``k_n = jax.random.split(key, N)[n]``, transform
    ``t`` then ``jax.random.split(k_n, len(policy))[t]``, split into (gate, parameter) keys.
    So ``augment_batch(key, images)[n] == augment_batch(k_n, images[n])`` (a single image
    ``(H, W, C)`` uses ``key`` itself). The policy is static: a new policy compiles once, the
    same policy and shapes reuse the compiled program. The study guide's 在线增强.

    Args:
      key: a ``jax.random`` key.
      images: ``(N, H, W, C)`` (or one ``(H, W, C)``) floating images in ``[0, 1]``.
      policy: a :class:`Transform` or a sequence of them, applied in order.
      clip: clip the result to ``[0, 1]`` (contrast, brightness, noise and PCA leave it).
      batch_size: ``None`` vmaps over the whole batch (best on accelerators); an int runs
        ``jax.lax.map`` over chunks of that many images inside the same jitted call, which is
        faster on CPUs for large images (cache-sized working set: 2× at 224×224, see
        ``bench/augment_bench.py``). Same keys, same images either way.

    Returns:
      The augmented images: ``(N, H', W', C)`` (``H' × W'`` differs only through crops).

    Raises:
      ValueError: bad rank; an entry that is not a Transform; a shape-changing transform
        (crop) with ``p < 1``; a bad ``batch_size``; whatever a transform raises for its ranges.
      TypeError: if ``images`` is not floating.

    Example:
      >>> x = jnp.array([[[[0.0], [1.0]]]])  # (1, 1, 2, 1)
      >>> policy = (Transform("flip_left_right", p=1.0),)
      >>> augment_batch(jax.random.key(0), x, policy).ravel().tolist()
      [1.0, 0.0]
    """
    _check_image(images, "augment_batch")
    policy = _check_policy(policy, "augment_batch")
    _check_batch_size(batch_size, "augment_batch")
    return _augment_jit(key, images, policy, bool(clip), batch_size)


def expand_dataset(
    key: jax.Array,
    images: jax.Array,
    labels: Any,
    factor: int,
    policy: Sequence[Transform],
    *,
    clip: bool = True,
    keep_original: bool = False,
    batch_size: int | None = None,
) -> tuple[jax.Array, Any]:
    r"""Offline augmentation: ``N`` images become ``factor · N`` (the study guide's 离线增强).

    .. math:: \mathrm{out}[jN + n] = \mathrm{augment\_batch}(\mathrm{fold\_in}(key, j),
              \mathrm{images})[n],\quad j = 0..\mathrm{factor}-1

    Copy ``j`` (rows ``j·N .. (j+1)·N - 1``) is exactly ``augment_batch(jax.random.fold_in(key,
    j), images, policy)``, so the same key gives the same images online or offline, and copy
    ``j`` can be regenerated alone. With ``keep_original=True`` copy 0 is the unaugmented data
    (copies ``j ≥ 1`` unchanged). Labels (any pytree with leading axis ``N``) are tiled the
    same way: ``labels_out[jN + n] = labels[n]``.

    Args:
      key: a ``jax.random`` key.
      images: ``(N, H, W, C)`` floating images in ``[0, 1]``.
      labels: array or pytree of arrays with leading axis ``N``.
      factor: number of copies, an int ``>= 1``.
      policy: a :class:`Transform` or a sequence of them.
      clip: clip to ``[0, 1]`` (see :func:`augment_batch`).
      keep_original: make copy 0 the original images.
      batch_size: as in :func:`augment_batch`.

    Returns:
      ``(images_out, labels_out)`` with leading axis ``factor · N``.

    Raises:
      ValueError: ``images`` not rank 4, ``factor < 1``, labels' leading axis not ``N``, or any
        error of :func:`augment_batch`.
      TypeError: if ``images`` is not floating or ``factor`` not an int.

    Example:
      >>> x = jnp.array([[[[0.0], [1.0]]]])  # (1, 1, 2, 1)
      >>> out, y = expand_dataset(jax.random.key(0), x, jnp.array([7]), 2,
      ...                         (Transform("flip_left_right"),), keep_original=True)
      >>> out.ravel().tolist(), y.tolist()
      ([0.0, 1.0, 1.0, 0.0], [7, 7])
    """
    op = "expand_dataset"
    check_rank(images, 4, "images", op)
    _check_image(images, op)
    factor = check_int(factor, "factor", op, minimum=1)
    n = images.shape[0]
    for leaf in jax.tree.leaves(labels):
        if jnp.shape(leaf)[:1] != (n,):
            raise ValueError(
                f"{op}: labels must have leading axis N={n} like images, got shape "
                f"{jnp.shape(leaf)}"
            )
    policy = _check_policy(policy, op)
    _check_batch_size(batch_size, op)
    copies = []
    for j in range(factor):
        if j == 0 and keep_original:
            copies.append(images)
        else:
            k = jax.random.fold_in(key, j)
            copies.append(_augment_jit(k, images, policy, bool(clip), batch_size))
    out = jnp.concatenate(copies, axis=0)
    tiled = jax.tree.map(lambda a: jnp.concatenate([jnp.asarray(a)] * factor, axis=0), labels)
    return out, tiled
