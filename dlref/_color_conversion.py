r"""RGB ↔ HSV, all channels in ``[0, 1]`` (hue in turns), on any array whose last axis holds
the 3 channels — dm-pix's ``color_conversion.py`` and ``tf.image``'s conversions.

:func:`rgb_to_hsv` and :func:`hsv_to_rgb` validate and call the jitted bodies
:func:`_rgb_to_hsv` and :func:`_hsv_to_rgb`, which the HSV adjustments of :mod:`dlref.augment`
reuse. NaN in a pixel makes every channel of that pixel NaN: the safe divisions test
``<= 0`` (false for NaN) rather than ``> 0``, so a NaN never selects the zero branch.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from dlref._image import check_image


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
    maximum the first of R, G, B wins, as in ``colorsys``. NaN in a pixel gives NaN in all
    three of its channels.

    Args:
      image: floating RGB in ``[0, 1]`` of any shape ``(..., 3)``: one pixel ``(3,)``, pixels
        ``(P, 3)``, an image ``(H, W, 3)``, a batch ``(N, H, W, 3)``.

    Returns:
      HSV array of the same shape and dtype.

    Raises:
      ValueError: rank 0, or a last axis that is not 3.
      TypeError: if ``image`` is not a floating array.

    Example:
      >>> hsv = rgb_to_hsv(jnp.array([1.0, 0.5, 0.0]))  # orange; colorsys: (1/12, 1, 1)
      >>> [round(v, 4) for v in hsv.tolist()]
      [0.0833, 1.0, 1.0]
    """
    check_image(image, "rgb_to_hsv", channels=3, ranks=None)
    return _rgb_to_hsv(image)


@jax.jit
def _rgb_to_hsv(image):
    r, g, b = image[..., 0], image[..., 1], image[..., 2]
    v = jnp.maximum(jnp.maximum(r, g), b)
    delta = v - jnp.minimum(jnp.minimum(r, g), b)
    black, grey = v <= 0, delta <= 0  # False for NaN, so NaN reaches the division
    s = jnp.where(black, 0, delta / jnp.where(black, 1, v))
    safe_d = jnp.where(grey, 1, delta)
    h = jnp.where(
        v == r,
        (g - b) / safe_d,
        jnp.where(v == g, (b - r) / safe_d + 2, (r - g) / safe_d + 4),
    )
    h = jnp.where(grey, 0, h / 6)
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
      image: floating HSV of any shape ``(..., 3)`` (as :func:`rgb_to_hsv`).

    Returns:
      RGB array of the same shape and dtype.

    Raises:
      ValueError: as :func:`rgb_to_hsv`: rank 0, or a last axis that is not 3.
      TypeError: a non-floating ``image``.

    Example:
      >>> hsv_to_rgb(jnp.array([[[1 / 3, 1.0, 0.5]]])).ravel().round(4).tolist()  # green
      [0.0, 0.5, 0.0]
    """
    check_image(image, "hsv_to_rgb", channels=3, ranks=None)
    return _hsv_to_rgb(image[..., 0], image[..., 1], image[..., 2])


@jax.jit
def _hsv_to_rgb(h, s, v):
    dh = jnp.mod(h, 1) * 6
    fr = jnp.clip(jnp.abs(dh - 3) - 1, 0, 1)
    fg = jnp.clip(2 - jnp.abs(dh - 2), 0, 1)
    fb = jnp.clip(2 - jnp.abs(dh - 4), 0, 1)
    return jnp.stack([v * (1 - s + s * f) for f in (fr, fg, fb)], axis=-1)
