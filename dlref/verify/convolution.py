"""`dlref verify` rows for dlref.convolution: against lax.conv_general_dilated and its vjp."""

from __future__ import annotations

import functools

import jax
from jax import lax

from dlref.convolution import conv, conv_transpose, depthwise_separable_conv
from dlref.verify import Case

_DN = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC"), 3: ("NDHWC", "DHWIO", "NDHWC")}


def lax_conv(x, w, stride, padding, dilation=None, groups=1):
    """The channels-last ``lax.conv_general_dilated`` at HIGHEST precision (the rows' reference)."""
    return lax.conv_general_dilated(
        x,
        w,
        stride,
        padding,
        rhs_dilation=dilation,
        dimension_numbers=_DN[w.ndim - 2],
        feature_group_count=groups,
        precision=lax.Precision.HIGHEST,
    )


def _normal(*shapes):
    def make(key):
        keys = jax.random.split(key, len(shapes))
        return tuple(jax.random.normal(k, s, "float64") for k, s in zip(keys, shapes))

    return make


def _transpose_ref(y, w):
    # the input-gradient of the forward conv: stride 2, padding 1, dilation (1, 2), groups 2,
    # on a (2, 8, 9, 4) input, which output_padding (1, 0) selects
    x = jax.numpy.zeros((2, 8, 9, 4), y.dtype)
    f = functools.partial(
        lax_conv, w=w, stride=(2, 2), padding=[(1, 1)] * 2, dilation=(1, 2), groups=2
    )
    return jax.vjp(lambda x: f(x), x)[1](y)[0]


CASES = [
    Case(
        "convolution.conv (2-D, stride, dilation, (lo, hi) padding)",
        "lax.conv_general_dilated",
        functools.partial(conv, stride=(2, 1), padding=((1, 2), (0, 1)), dilation=(2, 1)),
        functools.partial(lax_conv, stride=(2, 1), padding=((1, 2), (0, 1)), dilation=(2, 1)),
        _normal((2, 9, 8, 3), (3, 3, 3, 5)),
        argnums=(0, 1),
    ),
    Case(
        "convolution.conv (depthwise x2, SAME)",
        "lax.conv_general_dilated(feature_group_count)",
        functools.partial(conv, stride=2, padding="SAME", groups=4),
        functools.partial(lax_conv, stride=(2, 2), padding="SAME", groups=4),
        _normal((2, 7, 7, 4), (3, 3, 1, 8)),
        argnums=(0, 1),
    ),
    Case(
        "convolution.conv (grouped, impl=xla)",
        "lax.conv_general_dilated(feature_group_count)",
        functools.partial(conv, padding=1, groups=2, impl="xla"),
        functools.partial(lax_conv, stride=(1, 1), padding=[(1, 1)] * 2, groups=2),
        _normal((2, 6, 6, 4), (3, 3, 2, 6)),
        argnums=(0, 1),
    ),
    Case(
        "convolution.conv (1-D)",
        "lax.conv_general_dilated",
        functools.partial(conv, stride=3, padding=2, dilation=2),
        functools.partial(lax_conv, stride=(3,), padding=[(2, 2)], dilation=(2,)),
        _normal((3, 17, 2), (4, 2, 3)),
        argnums=(0, 1),
    ),
    Case(
        "convolution.conv (3-D)",
        "lax.conv_general_dilated",
        functools.partial(conv, stride=(1, 2, 2), padding=1),
        functools.partial(lax_conv, stride=(1, 2, 2), padding=[(1, 1)] * 3),
        _normal((1, 4, 6, 5, 2), (3, 3, 3, 2, 3)),
        argnums=(0, 1),
    ),
    Case(
        "convolution.conv_transpose (groups, output_padding)",
        "jax.vjp(lax.conv_general_dilated) wrt input",
        functools.partial(
            conv_transpose, stride=2, padding=1, output_padding=(1, 0), dilation=(1, 2), groups=2
        ),
        _transpose_ref,
        _normal((2, 4, 4, 6), (3, 3, 2, 6)),
        argnums=(0, 1),
    ),
    Case(
        "convolution.depthwise_separable_conv",
        "lax.conv_general_dilated (depthwise then 1x1)",
        functools.partial(depthwise_separable_conv, stride=2, padding=1),
        lambda x, wd, wp: lax_conv(
            lax_conv(x, wd, (2, 2), [(1, 1)] * 2, groups=3), wp, (1, 1), "VALID"
        ),
        _normal((2, 8, 8, 3), (3, 3, 1, 6), (1, 1, 6, 4)),
        argnums=(0, 1, 2),
    ),
]
