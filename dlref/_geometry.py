r"""Geometric transforms: flips, affine resampling (``affine``, ``rotate``, ``scale``,
``translate``) and crops, each with its random variant. Public through :mod:`dlref.augment`,
whose docstring states the conventions (image layout, coordinates, boundary modes, per-image
random draws); the sampler itself is :mod:`dlref._interpolation`.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dlref._checks import as_tuple, check_in_range, check_key, check_nonnegative, check_real
from dlref._image import (
    check_image,
    check_range,
    jit_on_images,
    jit_per_image,
    uniform,
)
from dlref._interpolation import check_mode, warp

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
    check_image(image, "flip_left_right")
    return jnp.flip(image, axis=-2)


def flip_up_down(image: jax.Array) -> jax.Array:
    r"""Mirror an image (or each image of a batch) vertically: reverse the row axis.

    .. math:: y_{i,j,c} = x_{H-1-i,\,j,\,c}

    Matches ``dm_pix.flip_up_down`` and ``tf.image.flip_up_down``; an involution.

    Args:
      image: as :func:`flip_left_right`.

    Returns:
      An array of the same shape and dtype.

    Raises:
      ValueError: as :func:`flip_left_right` (rank).
      TypeError: as :func:`flip_left_right` (dtype).

    Example:
      >>> flip_up_down(jnp.array([[[0.0]], [[1.0]]])).ravel().tolist()
      [1.0, 0.0]
    """
    check_image(image, "flip_up_down")
    return jnp.flip(image, axis=-3)


def _random_flip(op: str, key: Any, image: Any, p: Any, *, axis: int) -> jax.Array:
    """The body of both random flips: check, then flip ``axis`` of each image (0 rows, 1
    columns) with probability ``p``."""
    check_key(key, op)
    check_image(image, op)
    check_nonnegative(p, "probability p", op, upper=1.0)
    return jit_per_image(_random_flip1, (axis,), key, image, p)


def _random_flip1(k, im, p, axis):
    flip = jax.random.bernoulli(k, jnp.asarray(p, float))  # an int p (0 or 1) is a probability
    return jnp.where(flip, jnp.flip(im, axis=axis), im)


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
    return _random_flip("random_flip_left_right", key, image, p, axis=1)


def random_flip_up_down(key: jax.Array, image: jax.Array, *, p: float = 0.5) -> jax.Array:
    r"""Flip up-down with probability ``p`` (independently per image of a batch).

    .. math:: y = \begin{cases} \mathrm{flip}(x) & u < p \\ x & \text{otherwise}\end{cases}

    The draw is that of :func:`random_flip_left_right`. torchvision's
    ``RandomVerticalFlip(p)``.

    Args:
      key, image, p: as :func:`random_flip_left_right`.

    Returns:
      An array of the same shape and dtype.

    Raises:
      ValueError: as :func:`random_flip_left_right` (rank, ``p``).
      TypeError: as :func:`random_flip_left_right` (dtype).

    Example:
      >>> x = jnp.array([[[0.0]], [[1.0]]])
      >>> random_flip_up_down(jax.random.key(0), x, p=0.0).ravel().tolist()
      [0.0, 1.0]
    """
    return _random_flip("random_flip_up_down", key, image, p, axis=0)


# --------------------------------------------------------------------------------------------
# Affine resampling: affine, rotate, scale, translate
# --------------------------------------------------------------------------------------------


def _check_warp(op: str, image: Any, mode: Any, cval: Any) -> None:
    """The checks every resampling transform shares."""
    check_image(image, op)
    check_mode(mode, op)
    check_real(cval, "cval", op)


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
      NaN in ``matrix`` gives NaN (in every mode).

    Raises:
      ValueError: bad rank, ``matrix`` not of shape ``(2, 3)``, unknown ``mode``.
      TypeError: if ``image`` is not floating, ``matrix`` or ``cval`` not real.

    Example:
      >>> x = jnp.array([[0.0], [1.0], [2.0]])[:, :, None]  # (3, 1, 1): rows 0, 1, 2
      >>> affine(x, jnp.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.0]])).ravel().tolist()
      [0.5, 1.5, 0.0]
    """
    _check_warp("affine", image, mode, cval)
    check_real(matrix, "matrix", "affine", shapes=((2, 3),))
    hw = tuple(image.shape[-3:-1])
    return jit_on_images(_warp1, (hw, mode), image, matrix, cval)


def _warp1(im, matrix, cval, hw, mode):
    return warp(im, matrix, hw, mode, cval)


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
      angle: scalar angle in radians (differentiable almost everywhere); a NaN angle gives a
        NaN image.
      mode: one of :data:`MODES`.
      cval: fill value for ``"constant"`` / ``"grid-constant"``.

    Returns:
      An array of the same shape and dtype as ``image``.

    Raises:
      ValueError: bad rank, unknown ``mode``, ``angle`` not a scalar.
      TypeError: if ``image`` is not floating, ``angle`` or ``cval`` not real.

    Example:
      >>> x = jnp.arange(9.0).reshape(3, 3, 1)
      >>> rotate(x, jnp.pi / 2)[..., 0].round(4).tolist()  # right column moves to the top row
      [[2.0, 5.0, 8.0], [1.0, 4.0, 7.0], [0.0, 3.0, 6.0]]
    """
    _check_warp("rotate", image, mode, cval)
    check_real(angle, "angle", "rotate")
    return jit_on_images(_rotate1, (mode,), image, angle, cval)


def _rotate1(im, angle, cval, mode):
    hw = im.shape[:2]
    return warp(im, _rotation_matrix(jnp.asarray(angle, im.dtype), hw, im.dtype), hw, mode, cval)


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
      factor: scalar or ``(s_row, s_col)``; non-zero and finite (a negative factor mirrors
        about the centre; NaN gives a NaN image). A concrete zero or infinity is refused;
        under ``jit`` a traced one cannot be: a zero then gives a NaN image, an infinity the
        centre value everywhere.
      mode, cval: as :func:`rotate`.

    Returns:
      An array of the same shape and dtype as ``image``.

    Raises:
      ValueError: bad rank, unknown ``mode``, ``factor`` of another shape, zero or infinite.
      TypeError: if ``image`` is not floating, ``factor`` or ``cval`` not real.

    Example:
      >>> x = jnp.array([0.0, 1.0, 2.0, 3.0, 4.0]).reshape(1, 5, 1)
      >>> scale(x, 2.0).ravel().tolist()
      [1.0, 1.5, 2.0, 2.5, 3.0]
    """
    _check_warp("scale", image, mode, cval)
    check_real(factor, "factor", "scale", shapes=((), (2,)))
    if not isinstance(factor, jax.core.Tracer):
        f = np.asarray(factor, np.float64)
        if np.any(f == 0) or np.any(np.isinf(f)):
            raise ValueError(f"scale: factor must be non-zero and finite, got {factor!r}")
    return jit_on_images(_scale1, (mode,), image, factor, cval)


def _scale1(im, factor, cval, mode):
    hw = im.shape[:2]
    matrix = _about_centre(jnp.diag(1 / _pair(factor, im.dtype)), hw, im.dtype)
    return warp(im, matrix, hw, mode, cval)


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
      shift: scalar (both axes) or ``(d_row, d_col)`` in pixels; NaN gives a NaN image.
      mode, cval: as :func:`rotate`.

    Returns:
      An array of the same shape and dtype as ``image``.

    Raises:
      ValueError: bad rank, unknown ``mode``, ``shift`` of another shape.
      TypeError: if ``image`` is not floating, ``shift`` or ``cval`` not real.

    Example:
      >>> x = jnp.array([1.0, 2.0, 3.0]).reshape(1, 3, 1)
      >>> translate(x, (0, 1)).ravel().tolist()
      [0.0, 1.0, 2.0]
    """
    _check_warp("translate", image, mode, cval)
    check_real(shift, "shift", "translate", shapes=((), (2,)))
    return jit_on_images(_translate1, (mode,), image, shift, cval)


def _translate1(im, shift, cval, mode):
    d = _pair(shift, im.dtype)
    matrix = jnp.concatenate([jnp.eye(2, dtype=im.dtype), -d[:, None]], axis=1)
    return warp(im, matrix, im.shape[:2], mode, cval)


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
      max_angle: the largest absolute angle in radians (finite, ``>= 0``).
      mode, cval: as :func:`rotate`.

    Returns:
      An array of the same shape and dtype as ``image``.

    Raises:
      ValueError: bad rank, unknown ``mode``, negative or non-finite ``max_angle``.
      TypeError: if ``image`` is not floating, ``key`` not a key, a number not real.

    Example:
      >>> x = jnp.ones((4, 4, 1))
      >>> random_rotate(jax.random.key(0), x, 0.0).sum().item()
      16.0
    """
    check_key(key, "random_rotate")
    _check_warp("random_rotate", image, mode, cval)
    check_nonnegative(max_angle, "max_angle", "random_rotate")
    return jit_per_image(_random_rotate1, (mode,), key, image, max_angle, cval)


def _random_rotate1(k, im, max_angle, cval, mode):
    return _rotate1(im, uniform(k, -max_angle, max_angle, im.dtype), cval, mode)


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
      upper: largest factor (``>= lower``, finite).
      mode, cval: as :func:`scale`.

    Returns:
      An array of the same shape and dtype as ``image``.

    Raises:
      ValueError: bad rank, unknown ``mode``, not ``0 < lower <= upper < inf``.
      TypeError: if ``image`` is not floating, ``key`` not a key, a number not real.

    Example:
      >>> x = jnp.ones((4, 4, 1))
      >>> random_scale(jax.random.key(0), x, 1.0, 1.0).sum().item()
      16.0
    """
    check_key(key, "random_scale")
    _check_warp("random_scale", image, mode, cval)
    check_range(lower, upper, "random_scale", lo=0.0, lo_closed=False)
    return jit_per_image(_random_scale1, (mode,), key, image, lower, upper, cval)


def _random_scale1(k, im, lower, upper, cval, mode):
    return _scale1(im, uniform(k, lower, upper, im.dtype), cval, mode)


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
      mode, cval: as :func:`translate`.

    Returns:
      An array of the same shape and dtype as ``image``.

    Raises:
      ValueError: bad rank, unknown ``mode``, a fraction outside ``[0, 1]`` or more than two.
      TypeError: if ``image`` is not floating, ``key`` not a key, a number not real.

    Example:
      >>> x = jnp.ones((4, 4, 1))
      >>> random_translate(jax.random.key(0), x, 0.0).sum().item()
      16.0
    """
    op = "random_translate"
    check_key(key, op)
    _check_warp(op, image, mode, cval)
    check_real(max_shift, "max_shift", op, shapes=((), (2,)), finite=True)
    if not isinstance(max_shift, jax.core.Tracer):
        for f in np.atleast_1d(np.asarray(max_shift)):
            check_in_range(f, 0.0, 1.0, "max_shift", op)
    return jit_per_image(_random_translate1, (mode,), key, image, max_shift, cval)


def _random_translate1(k, im, max_shift, cval, mode):
    size = jnp.asarray(im.shape[:2], im.dtype)
    d = uniform(k, -1.0, 1.0, im.dtype, (2,)) * _pair(max_shift, im.dtype) * size
    return _translate1(im, d, cval, mode)


# --------------------------------------------------------------------------------------------
# Crops
# --------------------------------------------------------------------------------------------


def _check_size(size: Any, image: jax.Array, op: str) -> tuple[int, int]:
    h, w = as_tuple(size, 2, "size", op, minimum=1)
    if h > image.shape[-3] or w > image.shape[-2]:
        raise ValueError(
            f"{op}: crop size {(h, w)} must be at most the image size {image.shape[-3:-1]}"
        )
    return h, w


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
      TypeError: if ``image`` is not floating, ``key`` not a key, ``size`` not ints.

    Example:
      >>> x = jnp.arange(4.0).reshape(2, 2, 1)
      >>> random_crop(jax.random.key(0), x, (2, 2)).ravel().tolist()
      [0.0, 1.0, 2.0, 3.0]
    """
    check_key(key, "random_crop")
    check_image(image, "random_crop")
    h, w = _check_size(size, image, "random_crop")
    return jit_per_image(_random_crop1, (h, w), key, image)


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
      scale: range of the box area as a fraction of ``H·W``, ``0 < s_0 <= s_1 <= 1``
        (Python numbers or concrete arrays: they shape the compiled program).
      ratio: range of the box aspect ratio ``w_b / h_b``, ``0 < r_0 <= r_1 < inf``.

    Returns:
      ``(h, w, C)`` or ``(N, h, w, C)``, same dtype.

    Raises:
      ValueError: bad rank, bad ``size``, bad ``scale`` or ``ratio`` ranges.
      TypeError: if ``image`` is not floating, ``key`` not a key, ``size`` not ints,
        ``scale`` or ``ratio`` not pairs of real numbers.

    Example:
      >>> x = jnp.full((8, 8, 3), 0.5)
      >>> random_resized_crop(jax.random.key(0), x, (4, 4)).shape
      (4, 4, 3)
    """
    op = "random_resized_crop"
    check_key(key, op)
    check_image(image, op)
    size = as_tuple(size, 2, "size", op, minimum=1)
    if max(size) > np.iinfo(np.int32).max:
        raise ValueError(f"{op}: size must fit in int32, got {size}")
    for name, pair in (("scale", scale), ("ratio", ratio)):
        check_real(pair, name, op, shapes=((2,),))
        check_range(pair[0], pair[1], op, lo=0.0, lo_closed=False, what=name)
    check_in_range(scale[1], 0.0, 1.0, "scale upper", op)
    static = (size, tuple(float(v) for v in scale), tuple(float(v) for v in ratio))
    return jit_per_image(_random_resized_crop1, static, key, image)


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
    return warp(im, matrix, (ho, wo), "nearest", 0.0)
