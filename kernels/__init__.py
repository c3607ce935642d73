"""Convolution kernels (shipped as ``dlref.kernels``): jitted im2col and Pallas implicit GEMM.

This package may use ``dlref._checks`` and ``dlref.shapes``, never ``dlref.conv``: the
``impl=`` dispatch lives in ``dlref.conv`` and calls into here.
"""

__all__: list[str] = []
