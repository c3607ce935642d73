"""Convolution kernels (shipped as ``dlref.kernels``): jitted im2col and Pallas implicit GEMM.

This package may use ``dlref._checks`` and ``dlref.shapes``, never ``dlref.convolution``: the
``impl=`` dispatch lives in ``dlref.convolution`` and calls into here.
"""

from dlref.kernels.im2col import im2col_conv
from dlref.kernels.pallas_igemm import ConvBlocks, choose_blocks, pallas_conv
from dlref.kernels.tuning import TuningEntry, TuningTable, default_table

__all__ = [
    "ConvBlocks",
    "TuningEntry",
    "TuningTable",
    "choose_blocks",
    "default_table",
    "im2col_conv",
    "pallas_conv",
]
