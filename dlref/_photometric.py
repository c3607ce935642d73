r"""Photometric transforms: colour adjustments (HSV saturation and value, contrast,
brightness), noise (Gaussian, salt and pepper) and AlexNet's PCA lighting, each with its random
variant. Public through :mod:`dlref.augment`, whose docstring states the conventions.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from dlref._checks import check_key, check_nonnegative, check_real
from dlref._color_conversion import _hsv_to_rgb, _rgb_to_hsv
from dlref._image import (
    check_factor,
    check_image,
    check_range,
    jit_per_image,
    uniform,
)

# --------------------------------------------------------------------------------------------
# Colour adjustments
# --------------------------------------------------------------------------------------------


def _adjust(
    op: str,
    body: Callable,
    image: Any,
    factor: Any,
    *,
    channels: int | None = None,
    minimum: float = -math.inf,
) -> jax.Array:
    """The body of :func:`adjust_saturation`, :func:`adjust_value` and :func:`adjust_contrast`:
    check ``image`` and the scalar ``factor``, then ``body(image, factor)``."""
    check_image(image, op, channels=channels)
    check_factor(factor, "factor", op, minimum=minimum)
    return body(image, factor)


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
      factor: non-negative finite scalar (NaN gives NaN).

    Returns:
      RGB array of the same shape and dtype.

    Raises:
      ValueError: bad rank, not 3 channels, ``factor`` negative, infinite or not a scalar.
      TypeError: if ``image`` is not floating or ``factor`` not real.

    Example:
      >>> adjust_saturation(jnp.array([[[1.0, 0.5, 0.0]]]), 0.5).ravel().tolist()
      [1.0, 0.75, 0.5]
    """
    return _adjust("adjust_saturation", _adjust_saturation, image, factor, channels=3, minimum=0.0)


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
      image, factor: as :func:`adjust_saturation`.

    Returns:
      RGB array of the same shape and dtype.

    Raises:
      ValueError: as :func:`adjust_saturation` (rank, channels, ``factor``).
      TypeError: as :func:`adjust_saturation`.

    Example:
      >>> adjust_value(jnp.array([[[0.8, 0.4, 0.0]]]), 2.0).ravel().tolist()  # V clips at 1
      [1.0, 0.5, 0.0]
    """
    return _adjust("adjust_value", _adjust_value, image, factor, channels=3, minimum=0.0)


@jax.jit
def _adjust_value(image, factor):
    v = jnp.max(image, axis=-1, keepdims=True)
    black = v <= 0  # False for NaN: a NaN channel makes the whole pixel NaN
    new_v = jnp.clip(v * jnp.asarray(factor, image.dtype), 0, 1)
    return jnp.where(black, image, image * (new_v / jnp.where(black, 1, v)))


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
      factor: finite scalar; 1 is the identity, 0 the flat mean image, negative inverts
        (NaN gives NaN).

    Returns:
      An array of the same shape and dtype.

    Raises:
      ValueError: bad rank, ``factor`` infinite or not a scalar.
      TypeError: if ``image`` is not floating or ``factor`` not real.

    Example:
      >>> adjust_contrast(jnp.array([[[0.25], [0.75]]]), 2.0).ravel().tolist()  # mean 0.5
      [0.0, 1.0]
    """
    return _adjust("adjust_contrast", _adjust_contrast, image, factor)


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
      delta: finite scalar shift (NaN gives NaN).

    Returns:
      An array of the same shape and dtype.

    Raises:
      ValueError: as :func:`adjust_contrast`, for ``delta``.
      TypeError: likewise.

    Example:
      >>> adjust_brightness(jnp.array([[[0.25]]]), 0.5).item()
      0.75
    """
    check_image(image, "adjust_brightness")
    check_factor(delta, "delta", "adjust_brightness")
    return image + jnp.asarray(delta, image.dtype)


def _random_factor(
    op: str, adjust: Callable, key: Any, image: Any, lower: Any, upper: Any, channels: int | None
) -> jax.Array:
    """The body of :func:`random_saturation`, :func:`random_value` and :func:`random_contrast`:
    check, then ``adjust(image, f)`` with ``f = uniform(key, (), dtype, lower, upper)``."""
    check_key(key, op)
    check_image(image, op, channels=channels)
    check_range(lower, upper, op, lo=0.0)
    return jit_per_image(_random_factor1, (adjust,), key, image, lower, upper)


def _random_factor1(k, im, lower, upper, adjust):
    return adjust(im, uniform(k, lower, upper, im.dtype))


def _random_level(
    op: str, single: Callable, key: Any, image: Any, bound: Any, name: str
) -> jax.Array:
    """The body of :func:`random_brightness` and :func:`random_gaussian_noise`: check, then
    ``single(k, im, bound)`` per image; ``bound`` (called ``name``) is finite and ``>= 0``."""
    check_key(key, op)
    check_image(image, op)
    check_nonnegative(bound, name, op)
    return jit_per_image(single, (), key, image, bound)


def random_saturation(key: jax.Array, image: jax.Array, lower: float, upper: float) -> jax.Array:
    r"""Apply :func:`adjust_saturation` with ``factor ~ U(lower, upper)`` per image.

    .. math:: y = \mathrm{adjust\_saturation}(x, f),\quad f \sim \mathcal{U}(l, u)

    The draw is ``jax.random.uniform(key, (), dtype, lower, upper)``; a batch gets one factor
    per image. See :func:`adjust_saturation` for how it differs from dm-pix / torchvision.

    Args:
      key: a ``jax.random`` key.
      image: ``(H, W, 3)`` or ``(N, H, W, 3)`` floating RGB.
      lower: smallest factor (``>= 0``).
      upper: largest factor (``>= lower``, finite).

    Returns:
      An array of the same shape and dtype.

    Raises:
      ValueError: bad rank, not 3 channels, not ``0 <= lower <= upper < inf``.
      TypeError: if ``image`` is not floating, ``key`` not a key, a bound not real.

    Example:
      >>> x = jnp.full((2, 2, 3), 0.5)
      >>> random_saturation(jax.random.key(0), x, 1.0, 1.0).mean().item()
      0.5
    """
    return _random_factor(
        "random_saturation", _adjust_saturation, key, image, lower, upper, channels=3
    )


def random_value(key: jax.Array, image: jax.Array, lower: float, upper: float) -> jax.Array:
    r"""Apply :func:`adjust_value` with ``factor ~ U(lower, upper)`` per image.

    .. math:: y = \mathrm{adjust\_value}(x, f),\quad f \sim \mathcal{U}(l, u)

    The draw is that of :func:`random_saturation`. See :func:`adjust_value` for how it differs
    from torchvision's brightness.

    Args:
      key, image, lower, upper: as :func:`random_saturation`.

    Returns:
      An array of the same shape and dtype.

    Raises:
      ValueError: as :func:`random_saturation`.
      TypeError: likewise.

    Example:
      >>> x = jnp.full((2, 2, 3), 0.5)
      >>> random_value(jax.random.key(0), x, 1.0, 1.0).mean().item()
      0.5
    """
    return _random_factor("random_value", _adjust_value, key, image, lower, upper, channels=3)


def random_contrast(key: jax.Array, image: jax.Array, lower: float, upper: float) -> jax.Array:
    r"""Apply :func:`adjust_contrast` with ``factor ~ U(lower, upper)`` per image.

    .. math:: y = \mathrm{adjust\_contrast}(x, f),\quad f \sim \mathcal{U}(l, u)

    The draw is that of :func:`random_saturation`. Matches ``dm_pix.random_contrast`` up to the
    key use.

    Args:
      image: ``(H, W, C)`` or ``(N, H, W, C)`` floating array, any number of channels.
      key, lower, upper: as :func:`random_saturation`.

    Returns:
      An array of the same shape and dtype.

    Raises:
      ValueError: as :func:`random_saturation`, without its channel rule.
      TypeError: as :func:`random_saturation`.

    Example:
      >>> x = jnp.full((2, 2, 3), 0.5)
      >>> random_contrast(jax.random.key(0), x, 1.0, 1.0).mean().item()
      0.5
    """
    return _random_factor("random_contrast", _adjust_contrast, key, image, lower, upper, None)


def random_brightness(key: jax.Array, image: jax.Array, max_delta: float) -> jax.Array:
    r"""Add ``δ ~ U(-max_delta, max_delta)`` to every channel (one δ per image).

    .. math:: y = x + \delta,\quad \delta \sim \mathcal{U}(-d, d)

    The draw is ``jax.random.uniform(key, (), dtype, -max_delta, max_delta)``. Matches
    ``dm_pix.random_brightness`` up to the key use.

    Args:
      key: a ``jax.random`` key.
      image: ``(H, W, C)`` or ``(N, H, W, C)`` floating array.
      max_delta: non-negative finite bound.

    Returns:
      An array of the same shape and dtype.

    Raises:
      ValueError: bad rank, negative or non-finite ``max_delta``.
      TypeError: if ``image`` is not floating, ``key`` not a key, ``max_delta`` not real.

    Example:
      >>> random_brightness(jax.random.key(0), jnp.full((1, 1, 1), 0.5), 0.0).item()
      0.5
    """
    return _random_level(
        "random_brightness", _random_brightness1, key, image, max_delta, "max_delta"
    )


def _random_brightness1(k, im, max_delta):
    return im + uniform(k, -max_delta, max_delta, im.dtype)


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
      sigma: non-negative finite standard deviation (in ``[0, 1]`` pixel units); NaN gives
        NaN. A concrete infinity is refused; under ``jit`` a traced one is not checked and
        gives ``±inf`` (or NaN) pixels.

    Returns:
      An array of the same shape and dtype.

    Raises:
      ValueError: bad rank, negative or infinite ``sigma``, ``sigma`` not a scalar.
      TypeError: if ``image`` is not floating, ``key`` not a key, ``sigma`` not real.

    Example:
      >>> gaussian_noise(jax.random.key(0), jnp.full((2, 2, 1), 0.5), 0.0).mean().item()
      0.5
    """
    check_key(key, "gaussian_noise")
    check_image(image, "gaussian_noise")
    check_factor(sigma, "sigma", "gaussian_noise", minimum=0.0)
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
      key, image: as :func:`random_brightness`.
      max_sigma: non-negative finite bound, as :func:`random_brightness`'s ``max_delta``.

    Returns:
      An array of the same shape and dtype.

    Raises:
      ValueError: as :func:`random_brightness`, for ``max_sigma``.
      TypeError: if ``image`` is not floating, ``key`` not a key, ``max_sigma`` not real.

    Example:
      >>> random_gaussian_noise(jax.random.key(0), jnp.full((2, 2, 1), 0.5), 0.0).mean().item()
      0.5
    """
    op = "random_gaussian_noise"
    return _random_level(op, _random_gaussian_noise1, key, image, max_sigma, "max_sigma")


def _random_gaussian_noise1(k, im, max_sigma):
    k1, k2 = jax.random.split(k)
    return _gaussian_noise(k2, im, uniform(k1, 0.0, max_sigma, im.dtype))


def _check_salt_and_pepper(
    op: str, key: Any, image: Any, name: str, amount: Any, salt_vs_pepper: Any
) -> None:
    """The checks of :func:`salt_and_pepper` and :func:`random_salt_and_pepper`: both
    fractions (``amount``, called ``name``, and ``salt_vs_pepper``) lie in ``[0, 1]``."""
    check_key(key, op)
    check_image(image, op)
    check_nonnegative(amount, name, op, upper=1.0)
    check_nonnegative(salt_vs_pepper, "salt_vs_pepper", op, upper=1.0)


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
      amount: fraction of pixels corrupted, in ``[0, 1]``. A concrete NaN is refused; under
        ``jit`` a traced NaN corrupts no pixel.
      salt_vs_pepper: fraction of the corrupted pixels set to 1, in ``[0, 1]``.

    Returns:
      An array of the same shape and dtype. Differentiable in ``image`` (gradient 1 on kept
      pixels, 0 on corrupted ones).

    Raises:
      ValueError: bad rank, ``amount`` or ``salt_vs_pepper`` outside ``[0, 1]`` or NaN.
      TypeError: if ``image`` is not floating, ``key`` not a key, a fraction not real.

    Example:
      >>> x = jnp.full((2, 2, 3), 0.5)
      >>> salt_and_pepper(jax.random.key(0), x, 1.0, salt_vs_pepper=1.0).mean().item()
      1.0
    """
    _check_salt_and_pepper("salt_and_pepper", key, image, "amount", amount, salt_vs_pepper)
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
      TypeError: if ``image`` is not floating, ``key`` not a key, a fraction not real.

    Example:
      >>> x = jnp.full((2, 2, 3), 0.5)
      >>> random_salt_and_pepper(jax.random.key(0), x, 0.0).mean().item()
      0.5
    """
    op = "random_salt_and_pepper"
    _check_salt_and_pepper(op, key, image, "max_amount", max_amount, salt_vs_pepper)
    return jit_per_image(_random_salt_and_pepper1, (), key, image, max_amount, salt_vs_pepper)


def _random_salt_and_pepper1(k, im, max_amount, salt_vs_pepper):
    k1, k2 = jax.random.split(k)
    return _salt_and_pepper(k2, im, uniform(k1, 0.0, max_amount, im.dtype), salt_vs_pepper)


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
      ValueError: bad rank, not 3 channels, or no image at all (``N = 0``).
      TypeError: if ``images`` is not floating.

    Example:
      >>> x = jnp.array([[[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]])  # grey only: one component
      >>> [round(v, 4) for v in fit_pca_color(x)[0].tolist()]
      [0.75, 0.0, 0.0]

    References:
      Krizhevsky et al. 2012, section 4.1 ("altering the intensities of the RGB channels").
    """
    check_image(images, "fit_pca_color", name="images", channels=3)
    if images.size == 0:
        raise ValueError(f"fit_pca_color: images must hold a pixel, got shape {images.shape}")
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
      sigma: standard deviation of α (AlexNet: 0.1), non-negative and finite.

    Returns:
      An array of the same shape and dtype.

    Raises:
      ValueError: bad rank, not 3 channels, ``eigvals``/``eigvecs`` of the wrong shape,
        negative or infinite ``sigma``.
      TypeError: if ``image`` is not floating, ``key`` not a key, a parameter not real.

    Example:
      >>> x = jnp.full((2, 2, 3), 0.5)
      >>> y = pca_color(jax.random.key(0), x, jnp.ones(3), jnp.eye(3), sigma=0.0)
      >>> y.mean().item()
      0.5

    References:
      Krizhevsky et al. 2012, section 4.1.
    """
    op = "pca_color"
    check_key(key, op)
    check_image(image, op, channels=3)
    check_factor(sigma, "sigma", op, minimum=0.0)
    check_real(eigvals, "eigvals", op, shapes=((3,),))
    check_real(eigvecs, "eigvecs", op, shapes=((3, 3),))
    return jit_per_image(
        _pca_color1, (), key, image, jnp.asarray(eigvals), jnp.asarray(eigvecs), sigma
    )


def _pca_color1(k, im, eigvals, eigvecs, sigma):
    lam = eigvals.astype(im.dtype)
    vecs = eigvecs.astype(im.dtype)
    alpha = sigma * jax.random.normal(k, (3,), im.dtype)
    return im + vecs @ (alpha * lam)
