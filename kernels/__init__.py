"""Convolution kernels (shipped as ``dlref.kernels``): jitted im2col and Pallas implicit GEMM.

This package may use ``dlref._checks`` and ``dlref.shapes``, never ``dlref.conv``: the
``impl=`` dispatch lives in ``dlref.conv`` and calls into here.
"""

from dlref.kernels.im2col import im2col_conv
from dlref.kernels.pallas_conv import ConvBlocks, choose_blocks, pallas_conv

__all__ = ["ConvBlocks", "choose_blocks", "im2col_conv", "pallas_conv"]
