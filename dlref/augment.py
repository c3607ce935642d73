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

Where the code lives (every name is public here, and the ops at the top level, ``dlref.rotate``):
this module holds the policy machinery; the transforms are in ``dlref/_geometry.py`` (flips,
affine resampling, crops) and ``dlref/_photometric.py`` (colour, noise, PCA lighting), the
HSV conversions in ``dlref/_color_conversion.py``, the bilinear sampler in
``dlref/_interpolation.py`` and the shared checks and per-image batching in ``dlref/_image.py``.

References:
  Krizhevsky, Sutskever, Hinton, "ImageNet Classification with Deep Convolutional Neural
  Networks", NeurIPS 2012 (PCA colour / lighting augmentation, random crops and flips).
  https://papers.nips.cc/paper/4824
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dlref._checks import check_bool, check_int, check_key, check_nonnegative, check_rank
from dlref._color_conversion import hsv_to_rgb, rgb_to_hsv
from dlref._geometry import (
    affine,
    flip_left_right,
    flip_up_down,
    random_crop,
    random_flip_left_right,
    random_flip_up_down,
    random_resized_crop,
    random_rotate,
    random_scale,
    random_translate,
    rotate,
    scale,
    translate,
)
from dlref._image import check_image, per_image
from dlref._interpolation import MODES
from dlref._photometric import (
    adjust_brightness,
    adjust_contrast,
    adjust_saturation,
    adjust_value,
    fit_pca_color,
    gaussian_noise,
    pca_color,
    random_brightness,
    random_contrast,
    random_gaussian_noise,
    random_salt_and_pepper,
    random_saturation,
    random_value,
    salt_and_pepper,
)

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


# --------------------------------------------------------------------------------------------
# Transform: one step of a policy
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
    if isinstance(value, jax.core.Tracer):
        raise TypeError(
            "Transform: args and kwargs must be concrete (a policy is static under jit), got a "
            "traced array"
        )
    if isinstance(value, jax.Array | np.ndarray):
        return _freeze(np.asarray(value).tolist())
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


def _label(name: str | Callable) -> str:
    return repr(name) if isinstance(name, str) else getattr(name, "__name__", repr(name))


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
    tuples, so a policy (a tuple of Transforms) is hashable and jit treats it as static. That
    ``fn`` accepts ``args`` and ``kwargs`` is checked here; their values are checked by ``fn``
    when the policy runs.

    Attributes:
      name: a registered name (above) or a callable.
      p: probability of applying it, in ``[0, 1]``.
      args: positional parameters (ranges) after ``(key, image)``, a tuple or a list.
      kwargs: keyword parameters, stored as sorted ``(name, value)`` pairs.

    Raises:
      ValueError: an unknown name, ``p`` outside ``[0, 1]``.
      TypeError: ``name`` neither a string nor a callable, ``args`` not a tuple, ``kwargs``
        not a dict or pairs, arguments ``fn`` does not take, or unhashable arguments.
    """

    name: str | Callable
    p: float = 1.0
    args: tuple = ()
    kwargs: Any = ()

    def __post_init__(self):
        op = "Transform"
        if isinstance(self.name, str):
            if self.name not in _REGISTRY:
                raise ValueError(
                    f"{op}: name must be one of {tuple(_REGISTRY)} or a callable, got {self.name!r}"
                )
        elif not callable(self.name):
            raise TypeError(f"{op}: name must be a string or a callable, got {self.name!r}")
        check_nonnegative(self.p, "probability p", op, upper=1.0)
        if not isinstance(self.args, tuple | list):
            raise TypeError(
                f"{op}: args must be a tuple of positional parameters, got {self.args!r} "
                f"(write args=({self.args!r},) for one)"
            )
        kwargs = self.kwargs.items() if isinstance(self.kwargs, dict) else self.kwargs
        if not isinstance(kwargs, Sequence | type({}.items())) or not all(
            isinstance(kv, tuple | list) and len(kv) == 2 and isinstance(kv[0], str)
            for kv in kwargs
        ):
            raise TypeError(
                f"{op}: kwargs must be a dict or (name, value) pairs, got {self.kwargs!r}"
            )
        object.__setattr__(self, "args", _freeze(tuple(self.args)))
        object.__setattr__(self, "kwargs", tuple(sorted((k, _freeze(v)) for k, v in kwargs)))
        try:
            inspect.signature(self.fn).bind(None, None, *self.args, **dict(self.kwargs))
        except TypeError as e:
            raise TypeError(
                f"{op}: {_label(self.name)} does not take args={self.args!r}, "
                f"kwargs={dict(self.kwargs)!r} after (key, image): {e}"
            ) from e
        except ValueError:  # a callable without a signature (a builtin): checked when it runs
            pass
        try:
            hash(self)
        except TypeError as e:
            raise TypeError(
                f"{op}: args and kwargs must be hashable once arrays and lists are frozen to "
                f"tuples (numbers, strings, tuples), got args={self.args!r}, "
                f"kwargs={self.kwargs!r}"
            ) from e

    @property
    def fn(self) -> Callable:
        """The function called as ``fn(key, image, *args, **kwargs)``."""
        return _REGISTRY[self.name] if isinstance(self.name, str) else self.name


# --------------------------------------------------------------------------------------------
# Policies: online (augment_batch) and offline (expand_dataset)
# --------------------------------------------------------------------------------------------


def _check_policy(policy: Any, op: str) -> tuple:
    if isinstance(policy, Transform):
        return (policy,)
    if not isinstance(policy, Sequence) or isinstance(policy, str):
        raise TypeError(
            f"{op}: policy must be a Transform or a sequence of Transforms, got {policy!r}"
        )
    for t in policy:
        if not isinstance(t, Transform):
            raise TypeError(f"{op}: policy entries must be Transform, got {t!r}")
    return tuple(policy)


def _apply_policy(key: jax.Array, image: jax.Array, policy: tuple, op: str) -> jax.Array:
    """One image (H, W, C): transform t uses ``split(key, len(policy))[t]``, split again into
    (gate key, transform key)."""
    keys = jax.random.split(key, max(len(policy), 1))
    for t, k in zip(policy, keys, strict=False):
        if t.p == 0:
            continue
        k_gate, k_fn = jax.random.split(k)
        try:
            out = t.fn(k_fn, image, *t.args, **dict(t.kwargs))
        except (TypeError, ValueError) as e:  # the transform's own message, under our name
            kind = TypeError if isinstance(e, TypeError) else ValueError
            raise kind(f"{op}: transform {_label(t.name)}: {e}") from e
        if not isinstance(out, jax.Array):
            raise TypeError(
                f"{op}: transform {_label(t.name)} must return an array, got {type(out).__name__}"
            )
        if t.p < 1:
            if out.shape != image.shape:
                raise ValueError(
                    f"{op}: transform {_label(t.name)} changes the image shape {image.shape} -> "
                    f"{out.shape}, so its probability p must be 1, got p={t.p}"
                )
            out = jnp.where(jax.random.bernoulli(k_gate, t.p), out, image)
        image = out.astype(image.dtype)
    return image


def _augment_impl(key, images, policy, clip, batch_size):
    def single(k, im):
        return _apply_policy(k, im, policy, "augment_batch")

    if images.ndim == 3 or batch_size is None:
        out = per_image(single, key, images)
    else:  # same keys as per_image, computed batch_size images at a time
        keys = jax.random.split(key, images.shape[0])
        out = jax.lax.map(lambda a: single(*a), (keys, images), batch_size=batch_size)
    return jnp.clip(out, 0, 1) if clip else out


_augment_jit = jax.jit(_augment_impl, static_argnames=("policy", "clip", "batch_size"))


def _check_run(op: str, key: Any, images: Any, policy: Any, clip: Any, batch_size: Any) -> tuple:
    """The checks :func:`augment_batch` and :func:`expand_dataset` share; the policy as a tuple."""
    check_key(key, op)
    check_image(images, op, name="images")
    policy = _check_policy(policy, op)
    check_bool(clip, "clip", op)
    if batch_size is not None:
        check_int(batch_size, "batch_size", op, minimum=1)
    return policy


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
      ValueError: bad rank; a shape-changing transform (crop) with ``p < 1``; a
        ``batch_size`` below 1; whatever a transform raises for its ranges (its message
        after ``augment_batch: transform 'name':``).
      TypeError: ``images`` not floating, ``key`` not a key, ``policy`` not Transforms,
        ``clip`` not a bool, ``batch_size`` not an int.

    Example:
      >>> x = jnp.array([[[[0.0], [1.0]]]])  # (1, 1, 2, 1)
      >>> policy = (Transform("flip_left_right", p=1.0),)
      >>> augment_batch(jax.random.key(0), x, policy).ravel().tolist()
      [1.0, 0.0]
    """
    policy = _check_run("augment_batch", key, images, policy, clip, batch_size)
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
      TypeError: ``images`` not floating, ``factor`` not an int, ``keep_original`` not a
        bool, or any error of :func:`augment_batch`.

    Example:
      >>> x = jnp.array([[[[0.0], [1.0]]]])  # (1, 1, 2, 1)
      >>> out, y = expand_dataset(jax.random.key(0), x, jnp.array([7]), 2,
      ...                         (Transform("flip_left_right"),), keep_original=True)
      >>> out.ravel().tolist(), y.tolist()
      ([0.0, 1.0, 1.0, 0.0], [7, 7])
    """
    op = "expand_dataset"
    check_rank(images, 4, "images", op)
    policy = _check_run(op, key, images, policy, clip, batch_size)
    factor = check_int(factor, "factor", op, minimum=1)
    check_bool(keep_original, "keep_original", op)
    n = images.shape[0]
    for leaf in jax.tree.leaves(labels):
        if np.shape(leaf)[:1] != (n,):
            raise ValueError(
                f"{op}: labels must have leading axis N={n} like images, got shape {np.shape(leaf)}"
            )
    copies = []
    for j in range(factor):
        if j == 0 and keep_original:
            copies.append(images)
        else:
            k = jax.random.fold_in(key, j)
            copies.append(_augment_jit(k, images, policy, bool(clip), batch_size))
    out = jnp.concatenate(copies, axis=0)

    def tile(a):
        xp = jnp if isinstance(a, jax.Array) else np  # NumPy labels (strings too) stay NumPy
        return xp.concatenate([xp.asarray(a)] * factor, axis=0)

    return out, jax.tree.map(tile, labels)
