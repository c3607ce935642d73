"""Convolution kernels (shipped as ``dlref.kernels``): jitted im2col and Pallas implicit GEMM.

* :func:`im2col_conv`, :func:`im2col_input_grad`, :func:`im2col_weight_grad`, :func:`im2col`,
  :func:`col2im` (``dlref.kernels.im2col``);
* :func:`pallas_conv` (with a fused epilogue), :func:`pallas_conv_input_grad`,
  :func:`pallas_conv_weight_grad` (``dlref.kernels.pallas_igemm``; imported on first use, so
  ``import dlref`` does not import Pallas);
* the primitives they bind, ``dlref_conv``, ``dlref_conv_transpose`` and
  ``dlref_conv_weight_grad``, with JVP, transpose and batching rules
  (``dlref.kernels.primitives``);
* :class:`ConvBlocks`, :func:`choose_blocks` (``dlref.kernels.blocks``) and the tuning table
  (``dlref.kernels.tuning``).

This package may use ``dlref._checks`` and ``dlref.shapes``, never ``dlref.convolution``: the
``impl=`` dispatch lives in ``dlref.convolution`` and calls into here.
"""

from dlref.kernels.blocks import ConvBlocks, ConvGeometry, choose_blocks, conv_geometry
from dlref.kernels.im2col import (
    col2im,
    im2col,
    im2col_conv,
    im2col_input_grad,
    im2col_weight_grad,
)
from dlref.kernels.tuning import TuningEntry, TuningTable, default_table

_PALLAS = ("pallas_conv", "pallas_conv_input_grad", "pallas_conv_weight_grad")

__all__ = [
    "ConvBlocks",
    "ConvGeometry",
    "TuningEntry",
    "TuningTable",
    "choose_blocks",
    "col2im",
    "conv_geometry",
    "default_table",
    "im2col",
    "im2col_conv",
    "im2col_input_grad",
    "im2col_weight_grad",
    "pallas_conv",
    "pallas_conv_input_grad",
    "pallas_conv_weight_grad",
]


def __getattr__(name):
    if name in _PALLAS:
        from dlref.kernels import pallas_igemm

        return getattr(pallas_igemm, name)
    raise AttributeError(f"module 'dlref.kernels' has no attribute {name!r}")
